//! Where a long-running component's lines go: a [`Sink`], and a [`Printer`] thread that
//! writes them to a file descriptor without ever stalling the component or growing it.
//!
//! A server that prints a transcript line per request, straight or through an
//! unbounded queue, hands control of its own memory and liveness to whoever reads its
//! output. A client that sends requests as fast as the socket takes them grows the
//! queue without bound (55 MB/s was measured); a paused pager stalls every writer, and
//! then shutdown, which waits for the output to drain. So a [`Printer`]:
//!
//! * owns the output on one thread (one writer per output, so lines never mix);
//! * takes lines through a **bounded** queue with `try_send`: when the queue is full,
//!   the line is dropped and counted, and the caller goes on at once;
//! * [`finish`](Printer::finish)es by a deadline: what the output has not taken by then
//!   is counted as unwritten, and the thread, blocked in `write(2)`, is left behind for
//!   the process exit to end.
//!
//! It writes through its own duplicate of the descriptor, not through
//! [`std::io::Stdout`], whose lock a thread blocked in `write` would hold forever.
//!
//! Lines are the caller's to bound in length; the queue bounds their number.

use std::fmt;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::Instant;

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, TrySendError};
use serde::Serialize;

/// Where a component's lines go: a transcript, a log. Cheap to clone; the default
/// discards everything.
#[derive(Clone, Default)]
pub struct Sink(Option<Arc<dyn Fn(String) + Send + Sync>>);

impl fmt::Debug for Sink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_some() {
            "Sink(..)"
        } else {
            "Sink(null)"
        })
    }
}

impl Sink {
    /// Discards every line.
    pub fn null() -> Self {
        Sink(None)
    }

    /// Calls `f` with every line. `f` runs on the caller's thread, so it must not block.
    pub fn new(f: impl Fn(String) + Send + Sync + 'static) -> Self {
        Sink(Some(Arc::new(f)))
    }

    /// Collects lines in memory, for tests and the tour.
    pub fn collect() -> (Self, Arc<Mutex<Vec<String>>>) {
        let lines = Arc::new(Mutex::new(Vec::new()));
        let target = Arc::clone(&lines);
        let sink = Sink::new(move |line| {
            target
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(line);
        });
        (sink, lines)
    }

    /// Sends a line, unless this sink discards (then `line` is never called).
    pub fn send(&self, line: impl FnOnce() -> String) {
        if let Some(f) = &self.0 {
            f(line());
        }
    }
}

/// What became of the lines sent to a [`Printer`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct PrinterStats {
    /// Lines written to the output.
    pub written: u64,
    /// Lines refused because the queue was full: the output did not keep up.
    pub dropped: u64,
    /// Lines queued but never written: the output failed (a closed pipe), or had not
    /// taken them by the deadline given to [`Printer::finish`].
    pub unwritten: u64,
}

#[derive(Default)]
struct Counts {
    accepted: AtomicU64,
    written: AtomicU64,
    dropped: AtomicU64,
    refused_after_failure: AtomicU64,
}

/// A thread that writes lines to one output, fed by a bounded queue that drops and
/// counts what does not fit. See the [module documentation](self).
///
/// ```
/// use concur::sink::Printer;
/// use std::time::{Duration, Instant};
///
/// let printer = Printer::spawn("doc-printer", Vec::new(), 2, "").unwrap();
/// let sink = printer.sink();
/// for i in 0..1000 {
///     sink.send(|| format!("line {i}"));
/// }
/// let stats = printer.finish(Instant::now() + Duration::from_secs(5));
/// // Every line is accounted for: written, or dropped when the queue was full.
/// assert_eq!(stats.written + stats.dropped + stats.unwritten, 1000);
/// ```
pub struct Printer {
    /// Lines, then `None` to ask the thread to finish: one queue, so the thread sleeps
    /// on a plain `recv` (a `select!` over two channels costs several microseconds more
    /// per wake-up, which a transcript line per request pays).
    queue: Sender<Option<String>>,
    capacity: usize,
    counts: Arc<Counts>,
    /// Disconnected when the thread ends.
    ended: Receiver<()>,
    thread: Option<JoinHandle<()>>,
}

impl fmt::Debug for Printer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Printer")
            .field("capacity", &self.capacity)
            .field("stats", &self.stats())
            .finish()
    }
}

/// Lines written per flush at most, so the written count keeps up with a fast output.
const BATCH: usize = 1024;

impl Printer {
    /// Starts a thread named `name` that writes each line, preceded by `prefix` and
    /// followed by a newline, to `out`. At most `capacity` lines wait in the queue.
    pub fn spawn(
        name: &str,
        out: impl Write + Send + 'static,
        capacity: usize,
        prefix: &str,
    ) -> io::Result<Self> {
        let (queue, lines) = crossbeam_channel::bounded::<Option<String>>(capacity.max(1));
        let (ended_tx, ended) = crossbeam_channel::bounded::<()>(0);
        let counts = Arc::new(Counts::default());
        let thread_counts = Arc::clone(&counts);
        let prefix = prefix.to_owned();
        let thread = thread::Builder::new()
            .name(name.to_owned())
            .spawn(move || {
                let _ended = ended_tx; // dropped when this thread ends, however it ends
                write_lines(out, &prefix, &lines, &thread_counts);
            })?;
        Ok(Self {
            queue,
            capacity: capacity.max(1),
            counts,
            ended,
            thread: Some(thread),
        })
    }

    /// A printer to this process's stdout, through a duplicate of descriptor 1.
    pub fn stdout(name: &str, capacity: usize, prefix: &str) -> io::Result<Self> {
        let fd = rustix::io::dup(rustix::stdio::stdout())?;
        Self::spawn(name, File::from(fd), capacity, prefix)
    }

    /// A printer to this process's stderr, through a duplicate of descriptor 2.
    pub fn stderr(name: &str, capacity: usize, prefix: &str) -> io::Result<Self> {
        let fd = rustix::io::dup(rustix::stdio::stderr())?;
        Self::spawn(name, File::from(fd), capacity, prefix)
    }

    /// How many lines the queue holds at most.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// A sink that queues each line without waiting: a line that does not fit is
    /// dropped and counted.
    pub fn sink(&self) -> Sink {
        let (queue, counts) = (self.queue.clone(), Arc::clone(&self.counts));
        Sink::new(move |line| match queue.try_send(Some(line)) {
            Ok(()) => {
                counts.accepted.fetch_add(1, Ordering::Relaxed);
            }
            Err(TrySendError::Full(_)) => {
                counts.dropped.fetch_add(1, Ordering::Relaxed);
            }
            Err(TrySendError::Disconnected(_)) => {
                counts.refused_after_failure.fetch_add(1, Ordering::Relaxed);
            }
        })
    }

    /// Queues a line that matters (a final report), waiting for room until `deadline`.
    /// Returns whether it was queued.
    pub fn send_until(&self, line: String, deadline: Instant) -> bool {
        let queued = self.queue.send_deadline(Some(line), deadline).is_ok();
        if queued {
            self.counts.accepted.fetch_add(1, Ordering::Relaxed);
        }
        queued
    }

    /// The counts so far. `unwritten` here counts lines still queued.
    pub fn stats(&self) -> PrinterStats {
        let accepted = self.counts.accepted.load(Ordering::Relaxed);
        let written = self.counts.written.load(Ordering::Relaxed);
        PrinterStats {
            written,
            dropped: self.counts.dropped.load(Ordering::Relaxed),
            unwritten: accepted.saturating_sub(written)
                + self.counts.refused_after_failure.load(Ordering::Relaxed),
        }
    }

    /// Writes what is queued and stops, waiting for the output until `deadline` at the
    /// latest. A thread still blocked in `write` then is left behind: it holds only its
    /// own descriptor and ends with the process.
    pub fn finish(mut self, deadline: Instant) -> PrinterStats {
        // Behind every line already queued; if the queue stays full until the
        // deadline, the output is stalled and the thread is left behind anyway.
        let _ = self.queue.send_deadline(None, deadline);
        // Nothing is ever sent on `ended`: it disconnects when the thread ends.
        if self.ended.recv_deadline(deadline) == Err(RecvTimeoutError::Disconnected)
            && let Some(thread) = self.thread.take()
        {
            let _ = thread.join();
        }
        self.stats()
    }
}

impl Drop for Printer {
    fn drop(&mut self) {
        // Without a deadline nothing is waited for: finish() is the orderly way.
        let _ = self.queue.try_send(None);
    }
}

/// The printer thread: writes lines in batches until asked to finish (a `None`, after
/// the lines queued before it) or until the output fails.
fn write_lines(out: impl Write, prefix: &str, lines: &Receiver<Option<String>>, counts: &Counts) {
    let mut out = BufWriter::with_capacity(64 << 10, out);
    let mut batch = Vec::with_capacity(BATCH);
    let mut finishing = false;
    while !finishing {
        match lines.recv() {
            Ok(Some(line)) => batch.push(line),
            Ok(None) | Err(_) => break,
        }
        while batch.len() < BATCH {
            match lines.try_recv() {
                Ok(Some(line)) => batch.push(line),
                Ok(None) => {
                    finishing = true;
                    break;
                }
                Err(_) => break,
            }
        }
        let written = batch
            .iter()
            .try_for_each(|line| {
                out.write_all(prefix.as_bytes())?;
                out.write_all(line.as_bytes())?;
                out.write_all(b"\n")
            })
            .and_then(|()| out.flush());
        if written.is_err() {
            return; // a closed pipe or a full disk: stop writing, never stop the caller
        }
        counts
            .written
            .fetch_add(batch.len() as u64, Ordering::Relaxed);
        batch.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// An output that blocks every write until the test lets it go.
    struct Stalled(Receiver<()>);

    impl Write for Stalled {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            let _ = self.0.recv();
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_stalled_output_neither_blocks_the_sender_nor_grows_the_queue() {
        let (release, stall) = crossbeam_channel::unbounded();
        let printer = Printer::spawn("test-stalled", Stalled(stall), 16, "").unwrap();
        let sink = printer.sink();
        let start = Instant::now();
        for i in 0..100_000 {
            sink.send(|| format!("Server: {i} is Warmer"));
        }
        // No send waited on the output (generous: 100,000 try_sends take milliseconds).
        assert!(start.elapsed() < Duration::from_secs(5));
        let stats = printer.stats();
        // At most the queue plus the batch the thread took before it stalled.
        assert!(
            stats.dropped >= 100_000 - 16 - BATCH as u64,
            "{stats:?}: lines were held instead of dropped"
        );
        // finish() returns by its deadline although the output never moves again.
        let start = Instant::now();
        let stats = printer.finish(Instant::now() + Duration::from_millis(200));
        assert!(start.elapsed() < Duration::from_secs(5));
        assert_eq!(stats.written, 0);
        assert_eq!(stats.written + stats.dropped + stats.unwritten, 100_000);
        drop(release);
    }

    #[test]
    fn a_healthy_output_gets_every_line_in_order() {
        let shared = crate::testing::SharedBuf::default();
        let printer = Printer::spawn("test-healthy", shared.clone(), 8, "> ").unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        for i in 0..100 {
            assert!(printer.send_until(format!("{i}"), deadline));
        }
        let stats = printer.finish(deadline);
        assert_eq!(
            stats,
            PrinterStats {
                written: 100,
                dropped: 0,
                unwritten: 0
            }
        );
        let text = shared.text();
        let expected: String = (0..100).map(|i| format!("> {i}\n")).collect();
        assert_eq!(text, expected);
    }

    #[test]
    fn a_failed_output_stops_the_thread_and_counts_the_rest() {
        struct Broken;
        impl Write for Broken {
            fn write(&mut self, _: &[u8]) -> io::Result<usize> {
                Err(io::ErrorKind::BrokenPipe.into())
            }
            fn flush(&mut self) -> io::Result<()> {
                Err(io::ErrorKind::BrokenPipe.into())
            }
        }
        let printer = Printer::spawn("test-broken", Broken, 4, "").unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        assert!(printer.send_until("first".into(), deadline));
        while !printer.thread.as_ref().is_some_and(JoinHandle::is_finished) {
            thread::sleep(Duration::from_millis(1));
        }
        let sink = printer.sink();
        sink.send(|| "after the failure".into());
        let stats = printer.finish(deadline);
        assert_eq!(stats.written, 0);
        assert_eq!(stats.unwritten, 2, "{stats:?}");
    }
}
