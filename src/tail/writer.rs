//! The merged output, and item 63's `WriteThread`.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;
use std::sync::Arc;
use std::thread::{self, JoinHandle};

use super::{Batch, Shared, TailError, header_bytes};

/// Where merged lines go.
#[derive(Debug)]
pub enum Output {
    /// Standard output.
    Stdout,
    /// A file, created (or truncated) when tailing starts.
    File(File),
}

impl Output {
    /// Opens `path` for writing (created, and truncated unless `append`), or standard
    /// output; an error names the path.
    pub fn open(path: Option<&Path>, append: bool) -> Result<Self, TailError> {
        match path {
            None => Ok(Output::Stdout),
            Some(path) => std::fs::OpenOptions::new()
                .create(true)
                .write(true)
                .append(append)
                .truncate(!append)
                .open(path)
                .map(Output::File)
                .map_err(|source| TailError::Output {
                    path: path.to_owned(),
                    source,
                }),
        }
    }

    /// A blocking writer for it.
    pub fn into_writer(self) -> Box<dyn Write + Send> {
        match self {
            Output::Stdout => Box::new(io::stdout()),
            Output::File(file) => Box::new(file),
        }
    }
}

/// Item 63's `WriteThread`: a thread that owns the output and writes the batches sent
/// to its queue, so that the async tailers never block on a write. The queue is a
/// tokio channel: tasks `send().await` (waiting, without blocking, when the writer
/// falls behind) and the thread takes batches with `blocking_recv`.
pub struct WriteThread {
    handle: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for WriteThread {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WriteThread")
    }
}

/// Writes batches until the channel closes, flushing whenever the queue runs dry.
pub(crate) fn write_all_batches(
    mut next: impl FnMut() -> Option<Batch>,
    mut try_next: impl FnMut() -> Option<Batch>,
    out: &mut dyn Write,
    shared: &Shared,
) {
    let mut out = BufWriter::with_capacity(256 * 1024, out);
    // Only the marks wait for the flush: each batch's bytes go once written.
    let mut marks = Vec::new();
    let mut last = None;
    let mut write = |out: &mut BufWriter<_>, batch: &Batch| {
        let header = header_bytes(batch, &mut last);
        out.write_all(&header)?;
        out.write_all(&batch.bytes)?;
        Ok::<_, std::io::Error>(header.len() + batch.bytes.len())
    };
    while let Some(batch) = next() {
        let mut written = write(&mut out, &batch);
        marks.extend(batch.mark);
        // Take whatever else is queued before paying for a flush.
        while let Ok(so_far) = written {
            match try_next() {
                Some(more) => {
                    written = write(&mut out, &more).map(|n| so_far + n);
                    marks.extend(more.mark);
                }
                None => break,
            }
        }
        match written.and_then(|n| out.flush().map(|()| n)) {
            Ok(n) => {
                shared.committed(n as u64, marks.drain(..));
            }
            Err(err) => {
                shared.write_failed(err);
                return;
            }
        }
    }
}

impl WriteThread {
    /// Starts the thread; it writes what `queue` delivers until every sender is gone.
    pub(crate) fn start(
        output: Output,
        mut queue: tokio::sync::mpsc::Receiver<Batch>,
        shared: Arc<Shared>,
    ) -> Result<Self, TailError> {
        let handle = thread::Builder::new()
            .name("tail-writer".into())
            .spawn(move || {
                let mut out = output.into_writer();
                let queue = std::cell::RefCell::new(&mut queue);
                write_all_batches(
                    || queue.borrow_mut().blocking_recv(),
                    || queue.borrow_mut().try_recv().ok(),
                    &mut out,
                    &shared,
                );
            })
            .map_err(TailError::Start)?;
        Ok(Self {
            handle: Some(handle),
        })
    }

    /// Waits for the thread to write everything sent before the senders were dropped.
    pub fn join(mut self) {
        if let Some(handle) = self.handle.take() {
            let _ = handle.join();
        }
    }
}
