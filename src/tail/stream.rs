//! Sources that can only be read forward: standard input, FIFOs, sockets, character
//! devices. Their reads block, so each gets a thread that reads chunks and hands them
//! over, waking the tailer; the end of input closes the source.

use std::fs::File;
use std::io;
use std::path::PathBuf;
use std::sync::Arc;

use super::shape::Shape;
use super::source::{MAX_BATCH, Polled, Start, cut_long_line, flush_line, split_lines};
use super::wake::Wake;

/// A source that can only be read forward: standard input, a FIFO, a pipe. A thread
/// does the blocking reads and hands chunks over; end of input closes the source.
#[derive(Debug)]
pub(crate) struct Stream {
    /// Where the reads come from, until the reader thread starts (on `attach`).
    input: Option<StreamInput>,
    chunks: Option<crossbeam_channel::Receiver<io::Result<Vec<u8>>>>,
    partial: Vec<u8>,
    ended: bool,
    /// What `-n`/`-c` asked for, applied by the reader thread.
    start: Start,
}

#[derive(Debug)]
pub(crate) enum StreamInput {
    /// Already open (standard input).
    Open(File),
    /// A FIFO, opened by the reader thread (the open waits for a writer).
    Fifo(PathBuf),
}

impl Stream {
    /// Starts the reader thread (once); every chunk it reads wakes `wake`.
    pub(crate) fn start(&mut self, wake: Arc<Wake>) {
        let Some(input) = self.input.take() else {
            return;
        };
        let (tx, rx) = crossbeam_channel::bounded(16);
        self.chunks = Some(rx);
        let start = self.start;
        let spawned = std::thread::Builder::new()
            .name("tail-stream".into())
            .spawn(move || {
                use std::io::Read;
                let mut file = match input {
                    StreamInput::Open(file) => file,
                    StreamInput::Fifo(path) => match File::open(&path) {
                        Ok(file) => file,
                        Err(e) => {
                            let _ = tx.send(Err(e));
                            wake.wake();
                            return;
                        }
                    },
                };
                let mut shape = Shape::new(start);
                let mut left = last_bytes_of_device(&file, start);
                if left.is_some() {
                    shape = Shape::Pass;
                }
                let mut buf = vec![0; 64 * 1024];
                while left != Some(0) {
                    let n = match file.read(&mut buf) {
                        Ok(0) => break,
                        Ok(n) => n,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                        Err(e) => {
                            let _ = tx.send(Err(e));
                            wake.wake();
                            return;
                        }
                    };
                    let n = left.map_or(n, |left| n.min(usize::try_from(left).unwrap_or(n)));
                    if let Some(left) = &mut left {
                        *left -= n as u64;
                    }
                    let passed = shape.push(&buf[..n]);
                    if passed.is_empty() {
                        continue;
                    }
                    if tx.send(Ok(passed.to_vec())).is_err() {
                        return;
                    }
                    wake.wake();
                }
                let kept = shape.finish();
                if !kept.is_empty() {
                    let _ = tx.send(Ok(kept));
                }
                drop(tx); // the end of input
                wake.wake();
            });
        if spawned.is_err() {
            // No thread, no input: end it rather than wait for ever.
            self.ended = true;
            self.chunks = None;
        }
    }
}

impl Stream {
    /// A stream reading `input` once [started](Self::start), from where `start` says
    /// (the last lines or bytes are known only at the end of input).
    pub(crate) fn new(input: StreamInput, start: Start) -> Self {
        Self {
            input: Some(input),
            chunks: None,
            partial: Vec::new(),
            ended: false,
            start,
        }
    }

    /// Takes the chunks read so far and appends their complete lines to `out`; at the
    /// end of input, the unfinished last line too, and the source is closed.
    pub(crate) fn poll(
        &mut self,
        prefix: &[u8],
        max_line: usize,
        marker: &[u8],
        out: &mut Vec<u8>,
        polled: &mut Polled,
    ) -> io::Result<()> {
        let mut total = 0;
        while let Some(chunks) = &self.chunks {
            match chunks.try_recv() {
                Ok(Ok(data)) => {
                    total += data.len();
                    split_lines(prefix, &mut self.partial, &data, out);
                    if cut_long_line(prefix, &mut self.partial, max_line, marker, out) {
                        polled.cut += 1;
                    }
                    if total >= MAX_BATCH {
                        polled.more = true;
                        break;
                    }
                }
                Ok(Err(err)) => return Err(err),
                Err(crossbeam_channel::TryRecvError::Empty) => break,
                Err(crossbeam_channel::TryRecvError::Disconnected) => {
                    self.ended = true;
                    self.chunks = None;
                }
            }
        }
        polled.grew |= total > 0;
        if self.ended {
            self.finish(prefix, out);
            polled.closed = true;
        }
        Ok(())
    }

    /// Writes out the unfinished last line, with a newline (tailing stops).
    pub(crate) fn finish(&mut self, prefix: &[u8], out: &mut Vec<u8>) {
        flush_line(prefix, &mut self.partial, out);
    }
}

/// `-c N` on a device that can seek from its end (`/dev/zero`, a disk): positions it N
/// bytes before the end and returns N, the bytes to read then (as GNU tail does). Such
/// a device never ends, so keeping the last N of a forward read would wait for ever.
fn last_bytes_of_device(file: &File, start: Start) -> Option<u64> {
    use std::os::unix::fs::FileTypeExt;
    let Start::LastBytes(n) = start else {
        return None;
    };
    let kind = file.metadata().ok()?.file_type();
    if !(kind.is_char_device() || kind.is_block_device()) {
        return None;
    }
    let back = i64::try_from(n).ok()?;
    rustix::fs::seek(file, rustix::fs::SeekFrom::End(-back)).ok()?;
    Some(n)
}
