//! concur's own design (`--mode events`, the default): one thread does everything, as
//! GNU tail does. It waits on inotify, reads the files whose events came, and writes
//! their lines with one `write` per round. Nothing is handed from thread to thread, so
//! a line costs the least CPU here: the book's designs pay one thread wake-up (two
//! context switches) per event on top.
//!
//! Standard input and FIFOs still get a reader thread each (their reads block); it
//! kicks the loop when a chunk arrives.

use std::io::{BufWriter, Write};
use std::sync::Arc;
use std::time::Instant;

use super::writer::Output;
use super::{Feed, Mark, Shared, TailError, TailOptions, Tailer, poll_once};

/// A followed file in the loop, and when it was last looked at.
struct Entry {
    tailer: Tailer,
    polled: Instant,
}

/// Runs the one-thread design until stopped, or until every source has ended.
pub(crate) fn run(
    mut feed: Feed,
    options: &TailOptions,
    output: Output,
    shared: &Arc<Shared>,
) -> Result<(), TailError> {
    let mut out = BufWriter::with_capacity(256 * 1024, output.into_writer());
    let mut entries: Vec<Entry> = Vec::new();
    let mut feed_open = true;
    let interval = options.interval;
    loop {
        while feed_open {
            match feed.try_recv() {
                Ok(tailer) => {
                    if tailer.source.is_streamed()
                        && let Some(kick) = shared.watch.as_ref().and_then(|w| w.kicker())
                    {
                        tailer.wake.set_kick(kick);
                    }
                    entries.push(Entry {
                        tailer,
                        polled: Instant::now() - interval,
                    });
                }
                Err(tokio::sync::mpsc::error::TryRecvError::Empty) => break,
                Err(tokio::sync::mpsc::error::TryRecvError::Disconnected) => feed_open = false,
            }
        }
        let stopping = shared.stopping();
        // Only the marks are kept until the flush: a batch's bytes go as soon as they
        // are written (a round can read a 100 MB line in 4 MiB batches).
        let mut marks: Vec<Mark> = Vec::new();
        let mut bytes = 0u64;
        let mut failed = None;
        let mut timer = false;
        entries.retain_mut(|entry| {
            if failed.is_some() {
                return true;
            }
            let on_timer = shared.sleep_for(&entry.tailer.source).is_some();
            let due = stopping
                || entry.tailer.wake.take_woken()
                || (on_timer && entry.polled.elapsed() >= interval);
            if !due {
                timer |= on_timer;
                return true;
            }
            entry.polled = Instant::now();
            loop {
                let step = poll_once(&mut entry.tailer.source, &entry.tailer.wake, shared);
                if !step.batch.bytes.is_empty()
                    && let Err(err) = out.write_all(&step.batch.bytes)
                {
                    failed = Some(err);
                    return true;
                }
                bytes += step.batch.bytes.len() as u64;
                marks.extend(step.batch.mark);
                if step.done {
                    shared.release(entry.tailer.source.path(), &entry.tailer.wake);
                    return false;
                }
                if !step.more {
                    break;
                }
            }
            timer |= shared.sleep_for(&entry.tailer.source).is_some();
            true
        });
        if let Some(err) = failed.or_else(|| out.flush().err()) {
            shared.write_failed(err);
            return Ok(());
        }
        if bytes > 0 || !marks.is_empty() {
            shared.committed(bytes, marks);
        }
        if stopping || (entries.is_empty() && !feed_open) {
            if !stopping {
                shared.stop(); // every source ended (standard input, FIFOs)
            }
            return Ok(());
        }
        let timeout = timer.then_some(interval);
        match &shared.watch {
            Some(watch) => {
                watch.pump(shared.halt.fd(), timeout);
            }
            None => {
                let _ = shared.halt.subscribe().recv_timeout(interval);
            }
        }
    }
}
