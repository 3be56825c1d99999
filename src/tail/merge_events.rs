//! concur's own design (`--mode events`, the default): one thread does everything, as
//! GNU tail does. It waits on inotify, reads the files whose events came, and writes
//! their lines with one `write` per round. Nothing is handed from thread to thread, so
//! a line costs the least CPU here: the book's designs pay one thread wake-up (two
//! context switches) per event on top.
//!
//! Standard input and FIFOs still get a reader thread each (their reads block); it
//! kicks the loop when a chunk arrives.

use std::collections::{HashMap, HashSet};
use std::io::{BufWriter, Write};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use super::writer::Output;
use super::{Feed, Mark, Shared, TailError, TailOptions, Tailer, header_bytes, lock, poll_once};

/// A followed file in the loop, and when it was last looked at.
struct Entry {
    tailer: Tailer,
    polled: Instant,
}

/// Runs the one-thread design until stopped, or until every source has ended.
///
/// A round looks only at the files whose wake fired (each wake pushes its file's id
/// onto `ready`) and at the few that need the timer, so one busy file among 2,000
/// quiet ones costs the same as one alone.
pub(crate) fn run(
    mut feed: Feed,
    options: &TailOptions,
    output: Output,
    shared: &Arc<Shared>,
) -> Result<(), TailError> {
    let mut out = BufWriter::with_capacity(256 * 1024, output.into_writer());
    let mut entries: HashMap<u64, Entry> = HashMap::new();
    let ready: Arc<Mutex<Vec<u64>>> = Arc::default();
    // Files that need looking at on the timer (all of them without inotify).
    let mut timed: HashSet<u64> = HashSet::new();
    let mut next_id = 0u64;
    let mut feed_open = true;
    let mut last_header = None;
    let interval = options.interval;
    loop {
        while feed_open {
            match feed.try_recv() {
                Ok(tailer) => {
                    let id = next_id;
                    next_id += 1;
                    // Streams are woken from their reader thread: that must end the
                    // pump too. Files are woken from inside it.
                    let pump_kick = if tailer.source.is_streamed() {
                        shared.watch.as_ref().and_then(|w| w.kicker())
                    } else {
                        None
                    };
                    let queue = Arc::clone(&ready);
                    tailer.wake.set_kick(Arc::new(move || {
                        queue
                            .lock()
                            .unwrap_or_else(PoisonError::into_inner)
                            .push(id);
                        if let Some(kick) = &pump_kick {
                            kick();
                        }
                    }));
                    // A new file is looked at first, woken or not.
                    lock(&ready).push(id);
                    entries.insert(
                        id,
                        Entry {
                            tailer,
                            polled: Instant::now(),
                        },
                    );
                }
                Err(tokio::sync::mpsc::error::TryRecvError::Empty) => break,
                Err(tokio::sync::mpsc::error::TryRecvError::Disconnected) => feed_open = false,
            }
        }
        let stopping = shared.stopping();
        let mut due: Vec<u64> = if stopping {
            entries.keys().copied().collect()
        } else {
            let mut due = std::mem::take(&mut *lock(&ready));
            due.extend(timed.iter().filter(|id| {
                entries
                    .get(id)
                    .is_some_and(|e| e.polled.elapsed() >= interval)
            }));
            due
        };
        due.sort_unstable();
        due.dedup();
        // Only the marks are kept until the flush: a batch's bytes go as soon as they
        // are written (a round can read a 100 MB line in 4 MiB batches).
        let mut marks: Vec<Mark> = Vec::new();
        let mut bytes = 0u64;
        let mut failed = None;
        'files: for id in due {
            let Some(entry) = entries.get_mut(&id) else {
                continue;
            };
            entry.polled = Instant::now();
            entry.tailer.wake.take_woken();
            loop {
                let step = poll_once(
                    &mut entry.tailer.source,
                    &entry.tailer.wake,
                    entry.tailer.header.as_ref(),
                    shared,
                );
                let header = header_bytes(&step.batch, &mut last_header);
                if !step.batch.bytes.is_empty()
                    && let Err(err) = out
                        .write_all(&header)
                        .and_then(|()| out.write_all(&step.batch.bytes))
                {
                    failed = Some(err);
                    break 'files;
                }
                bytes += (header.len() + step.batch.bytes.len()) as u64;
                marks.extend(step.batch.mark);
                if step.done {
                    shared.release(entry.tailer.source.path(), &entry.tailer.wake);
                    entries.remove(&id);
                    timed.remove(&id);
                    continue 'files;
                }
                if !step.more {
                    break;
                }
            }
            if shared.sleep_for(&entry.tailer.source).is_some() {
                timed.insert(id);
            } else {
                timed.remove(&id);
            }
        }
        if let Some(err) = failed.or_else(|| out.flush().err()) {
            shared.write_failed(err);
            return Ok(());
        }
        if bytes > 0 || !marks.is_empty() {
            shared.committed(bytes, marks);
        }
        if stopping || (entries.is_empty() && !feed_open) {
            // Every source ended (standard input, FIFOs, names given up): `run` sees
            // that nothing stopped it, and stops the rest.
            return Ok(());
        }
        let timer = !timed.is_empty();
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
