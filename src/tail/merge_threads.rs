//! Design 1 (the book's Example 3): a thread per file, writing through a locked writer.

use std::io::{self, BufWriter, Write};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;

use super::writer::Output;
use super::{Batch, Feed, Shared, TailError, TailOptions, Tailer, header_bytes, poll_once};

/// A blocking tailer: poll, hand the lines to `emit`, sleep until woken (or, for a file
/// inotify cannot speak for, `interval`), again, until stopped or the file is closed.
/// Shared with the mixed design, whose tailers are the same.
pub(crate) fn tail_blocking(
    tailer: Tailer,
    shared: &Shared,
    mut emit: impl FnMut(Batch) -> io::Result<()>,
) {
    let Tailer {
        mut source,
        wake,
        header,
    } = tailer;
    loop {
        let step = poll_once(&mut source, &wake, header.as_ref(), shared);
        if !step.batch.is_empty()
            && let Err(err) = emit(step.batch)
        {
            shared.write_failed(err);
            return;
        }
        if step.done {
            shared.release(source.path(), &wake);
            return;
        }
        if !step.more {
            wake.wait(shared.sleep_for(&source));
        }
    }
}

/// Runs the threaded design until stopped.
pub(crate) fn run(
    mut feed: Feed,
    _options: &TailOptions,
    output: Output,
    shared: &Arc<Shared>,
) -> Result<(), TailError> {
    // Batches are whole lines, and each is written under the lock in one go: lines from
    // different files can follow each other but never mix.
    let writer = Mutex::new((
        BufWriter::with_capacity(256 * 1024, output.into_writer()),
        None,
    ));
    let mut started = Ok(());
    thread::scope(|scope| {
        let mut i = 0;
        while let Some(tailer) = feed.blocking_recv() {
            let (writer, tailer_shared) = (&writer, Arc::clone(shared));
            i += 1;
            let spawned = thread::Builder::new()
                .name(format!("tail-{i}"))
                .spawn_scoped(scope, move || {
                    let shared = tailer_shared;
                    tail_blocking(tailer, &shared, |batch| {
                        let mut guard = writer.lock().unwrap_or_else(PoisonError::into_inner);
                        let (out, last) = &mut *guard;
                        let header = header_bytes(&batch, last);
                        out.write_all(&header)?;
                        out.write_all(&batch.bytes)?;
                        out.flush()?;
                        // Under the writer's lock: the positions match the output.
                        shared.committed((header.len() + batch.bytes.len()) as u64, batch.mark);
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
