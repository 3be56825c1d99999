//! Design 2 (item 62): blocking tailers run through `spawn_blocking` (the book's
//! `run_in_executor`), handing their lines to an async writer task through the runtime
//! handle (the book's `run_coroutine_threadsafe`).

use std::io;
use std::sync::Arc;

use tokio::io::{AsyncWrite, AsyncWriteExt};

use super::merge_threads::tail_blocking;
use super::writer::Output;
use super::{Batch, Feed, Shared, TailError, TailOptions, header_bytes};

/// Spawns `future`, timing its polls when `--debug-slow` is on.
pub(crate) fn spawn_watched<F>(
    options: &TailOptions,
    shared: &Shared,
    name: String,
    future: F,
) -> tokio::task::JoinHandle<F::Output>
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    match options.debug_slow {
        Some(threshold) => {
            let log = Arc::clone(&shared.log);
            tokio::spawn(super::debug::Watched::new(name, threshold, log, future))
        }
        None => tokio::spawn(future),
    }
}

/// A multi-threaded runtime with room for one blocking thread per file (files can keep
/// coming with `--glob`, so the room is what the OS allows).
pub(crate) fn runtime() -> Result<tokio::runtime::Runtime, TailError> {
    let room = crate::limits::thread_budget(2 << 20).map_or(16_384, |b| b.threads.max(64));
    tokio::runtime::Builder::new_multi_thread()
        .max_blocking_threads(room)
        .thread_name("tail-runtime")
        .enable_all()
        .build()
        .map_err(TailError::Start)
}

/// Runs the mixed design until stopped.
pub(crate) fn run(
    mut feed: Feed,
    options: &TailOptions,
    output: Output,
    shared: &Arc<Shared>,
) -> Result<(), TailError> {
    let runtime = runtime()?;
    runtime.block_on(async {
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Batch>(64);
        let mut out: Box<dyn AsyncWrite + Send + Unpin> = match output {
            Output::Stdout => Box::new(tokio::io::stdout()),
            Output::File(file) => Box::new(tokio::fs::File::from_std(file)),
        };
        let writer_shared = Arc::clone(shared);
        let writer = spawn_watched(options, shared, "merged-output writer".into(), async move {
            let mut last = None;
            while let Some(batch) = rx.recv().await {
                let mut header = header_bytes(&batch, &mut last);
                let mut n = header.len() + batch.bytes.len();
                let mut written = out.write_all(&header).await;
                if written.is_ok() {
                    written = out.write_all(&batch.bytes).await;
                }
                let mut marks: Vec<_> = batch.mark.into_iter().collect();
                while written.is_ok() {
                    let Ok(more) = rx.try_recv() else { break };
                    header = header_bytes(&more, &mut last);
                    n += header.len() + more.bytes.len();
                    written = out.write_all(&header).await;
                    if written.is_ok() {
                        written = out.write_all(&more.bytes).await;
                    }
                    marks.extend(more.mark);
                }
                if let Err(err) = written.and(out.flush().await) {
                    writer_shared.write_failed(err);
                    return;
                }
                writer_shared.committed(n as u64, marks);
            }
        });
        let handle = tokio::runtime::Handle::current();
        let mut tailers = Vec::new();
        while let Some(tailer) = feed.recv().await {
            let (tx, shared, handle) = (tx.clone(), Arc::clone(shared), handle.clone());
            tailers.push(tokio::task::spawn_blocking(move || {
                tail_blocking(tailer, &shared, |batch| {
                    // From this blocking thread, wait on the async send: the runtime's
                    // run_coroutine_threadsafe(...).result().
                    handle
                        .block_on(tx.send(batch))
                        .map_err(|_| io::Error::other("the writer stopped"))
                });
            }));
        }
        drop(tx);
        for tailer in tailers {
            let _ = tailer.await;
        }
        let _ = writer.await;
    });
    Ok(())
}
