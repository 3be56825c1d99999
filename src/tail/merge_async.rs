//! Design 3 (item 63): async tailer tasks, and a dedicated writer thread with its own
//! queue, so that writing the output never blocks the runtime.

use std::sync::Arc;

use super::merge_mixed::{runtime, spawn_watched};
use super::writer::{Output, WriteThread};
use super::{Batch, Feed, Shared, TailError, TailOptions, Tailer, poll_once};

/// Runs the async design until stopped.
pub(crate) fn run(
    mut feed: Feed,
    options: &TailOptions,
    output: Output,
    shared: &Arc<Shared>,
) -> Result<(), TailError> {
    let runtime = runtime()?;
    let (tx, rx) = tokio::sync::mpsc::channel::<Batch>(64);
    let writer = WriteThread::start(output, rx, Arc::clone(shared))?;
    runtime.block_on(async {
        let mut tailers = Vec::new();
        while let Some(Tailer {
            source,
            wake,
            header,
        }) = feed.recv().await
        {
            let name = format!("tail {}", source.path().display());
            let (tx, task_shared) = (tx.clone(), Arc::clone(shared));
            tailers.push(spawn_watched(options, shared, name, async move {
                let shared = task_shared;
                let mut source = source;
                loop {
                    // The read is blocking file I/O: off the runtime, as the book's
                    // `await loop.run_in_executor(None, readline, handle)`.
                    let (poll_shared, poll_wake) = (Arc::clone(&shared), Arc::clone(&wake));
                    let header = header.clone();
                    let Ok((back, step)) = tokio::task::spawn_blocking(move || {
                        let step =
                            poll_once(&mut source, &poll_wake, header.as_ref(), &poll_shared);
                        (source, step)
                    })
                    .await
                    else {
                        return;
                    };
                    source = back;
                    if !step.batch.is_empty() && tx.send(step.batch).await.is_err() {
                        return; // the writer stopped on an error, already recorded
                    }
                    if step.done {
                        shared.release(source.path(), &wake);
                        return;
                    }
                    if !step.more {
                        wake.wait_async(shared.sleep_for(&source)).await;
                    }
                }
            }));
        }
        drop(tx);
        for tailer in tailers {
            let _ = tailer.await;
        }
    });
    writer.join();
    Ok(())
}
