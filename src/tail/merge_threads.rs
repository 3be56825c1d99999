//! Design 1 (the book's Example 3): a thread per file, writing through a locked writer.

use std::io::{self, BufWriter, Write};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;
use std::time::Duration;

use super::wake::Wake;
use super::writer::Output;
use super::{Shared, Source, TailError, TailOptions, poll_once};

/// A blocking tailer: poll, hand the lines to `emit`, wait for a wake (or `interval`),
/// again, until stopped. Shared with the mixed design, whose tailers are the same.
pub(crate) fn tail_blocking(
    mut source: Source,
    wake: &Wake,
    shared: &Shared,
    interval: Duration,
    mut emit: impl FnMut(Vec<u8>) -> io::Result<()>,
) {
    loop {
        let step = poll_once(&mut source, shared);
        if !step.batch.is_empty()
            && let Err(err) = emit(step.batch)
        {
            shared.write_failed(err);
            return;
        }
        if step.done {
            return;
        }
        if !step.more {
            wake.wait(interval);
        }
    }
}

/// Runs the threaded design until stopped.
pub(crate) fn run(
    sources: Vec<Source>,
    options: &TailOptions,
    output: Output,
    shared: &Arc<Shared>,
) -> Result<(), TailError> {
    // Batches are whole lines, and each is written under the lock in one go: lines from
    // different files can follow each other but never mix.
    let writer = Mutex::new(BufWriter::with_capacity(256 * 1024, output.into_writer()));
    let mut started = Ok(());
    thread::scope(|scope| {
        for (i, source) in sources.into_iter().enumerate() {
            let (writer, tailer_shared, wake) =
                (&writer, Arc::clone(shared), Arc::clone(&shared.wakes[i]));
            let spawned = thread::Builder::new()
                .name(format!("tail-{i}"))
                .spawn_scoped(scope, move || {
                    let shared = tailer_shared;
                    tail_blocking(source, &wake, &shared, options.interval, |batch| {
                        let mut out = writer.lock().unwrap_or_else(PoisonError::into_inner);
                        out.write_all(&batch)?;
                        out.flush()?;
                        shared
                            .bytes
                            .fetch_add(batch.len() as u64, Ordering::Relaxed);
                        Ok(())
                    });
                });
            if let Err(err) = spawned {
                started = Err(TailError::Start(err));
                shared.stop();
                break;
            }
        }
    });
    started
}
