//! Output printed while jobs run (`--line-buffer`, `-u`), instead of whole per job.
//!
//! Every worker writes to the same two streams, each behind a mutex. With
//! [`Live::Lines`], a worker holds back a job's partial line until its newline comes
//! (or the job ends), and writes whole lines only: lines from different jobs
//! interleave, but never a half line with another. With [`Live::Ungrouped`], bytes are
//! written as they arrive, as GNU parallel's `-u` does: fastest, and mixed freely.

use std::io::{self, Write};
use std::sync::{Mutex, PoisonError};

/// How live output is cut.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Live {
    /// Whole lines (`--line-buffer`).
    Lines,
    /// Bytes as they come (`-u`, `--ungroup`).
    Ungrouped,
}

/// The streams every job writes to while it runs.
pub struct LiveOutput {
    /// How output is cut.
    pub mode: Live,
    out: Mutex<Box<dyn Write + Send>>,
    err: Mutex<Box<dyn Write + Send>>,
    /// The first write error (a closed stdout): the run stops on it.
    failed: Mutex<Option<io::Error>>,
}

impl std::fmt::Debug for LiveOutput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveOutput")
            .field("mode", &self.mode)
            .finish()
    }
}

impl LiveOutput {
    /// Live output to `out` and `err`.
    pub fn new(mode: Live, out: Box<dyn Write + Send>, err: Box<dyn Write + Send>) -> Self {
        Self {
            mode,
            out: Mutex::new(out),
            err: Mutex::new(err),
            failed: Mutex::new(None),
        }
    }

    /// The first write error, taken (so it is reported once).
    pub fn take_error(&self) -> Option<io::Error> {
        self.failed
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
    }

    /// A writer for one job's stdout (`stderr = false`) or stderr, prefixing every
    /// line with `tag`.
    pub fn writer<'a>(&'a self, stderr: bool, tag: Option<&'a [u8]>) -> JobWriter<'a> {
        JobWriter {
            live: self,
            stream: if stderr { &self.err } else { &self.out },
            tag,
            pending: Vec::new(),
            at_line_start: true,
        }
    }

    fn record(&self, err: io::Error) {
        let mut failed = self.failed.lock().unwrap_or_else(PoisonError::into_inner);
        if failed.is_none() {
            *failed = Some(err);
        }
    }
}

/// One job's side of a live stream.
pub struct JobWriter<'a> {
    live: &'a LiveOutput,
    stream: &'a Mutex<Box<dyn Write + Send>>,
    tag: Option<&'a [u8]>,
    /// With [`Live::Lines`]: the start of a line whose newline has not come yet.
    pending: Vec<u8>,
    /// With [`Live::Ungrouped`] and a tag: whether the next byte starts a line.
    at_line_start: bool,
}

impl JobWriter<'_> {
    /// Writes `bytes` (whole lines, or anything with `-u`) under the stream's lock.
    fn emit(&mut self, bytes: &[u8]) -> io::Result<()> {
        if bytes.is_empty() {
            return Ok(());
        }
        let mut stream = self.stream.lock().unwrap_or_else(PoisonError::into_inner);
        let written = match self.tag {
            None => stream.write_all(bytes),
            Some(tag) => {
                // The same tagging as grouped output, carried on from this job's
                // last write.
                let mut tagged = super::Tagged {
                    out: &mut **stream,
                    tag,
                    at_line_start: self.at_line_start,
                };
                let written = tagged.write_all(bytes);
                self.at_line_start = tagged.at_line_start;
                written
            }
        }
        .and_then(|()| stream.flush());
        if let Err(err) = &written {
            self.live
                .record(io::Error::new(err.kind(), err.to_string()));
        }
        written
    }

    /// Writes what is held back: the job's last line, without a newline. Called when
    /// the job ends.
    pub fn finish(&mut self) -> io::Result<()> {
        let pending = std::mem::take(&mut self.pending);
        self.emit(&pending)
    }
}

impl Write for JobWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self.live.mode {
            Live::Ungrouped => self.emit(buf)?,
            Live::Lines => match buf.iter().rposition(|&b| b == b'\n') {
                None => self.pending.extend_from_slice(buf),
                Some(last) => {
                    let (lines, rest) = buf.split_at(last + 1);
                    if self.pending.is_empty() {
                        self.emit(lines)?;
                    } else {
                        let mut whole = std::mem::take(&mut self.pending);
                        whole.extend_from_slice(lines);
                        self.emit(&whole)?;
                    }
                    self.pending.extend_from_slice(rest);
                }
            },
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::SharedBuf;

    #[test]
    fn lines_from_two_jobs_interleave_whole_and_tagged() {
        let out = SharedBuf::default();
        let live = LiveOutput::new(Live::Lines, Box::new(out.clone()), Box::new(io::sink()));
        let mut a = live.writer(false, Some(b"A\t"));
        let mut b = live.writer(false, Some(b"B\t"));
        a.write_all(b"one ").unwrap();
        b.write_all(b"x\ny").unwrap();
        a.write_all(b"two\nthree").unwrap();
        b.finish().unwrap();
        a.finish().unwrap();
        let text = out.text();
        assert_eq!(text, "B\tx\nA\tone two\nB\tyA\tthree");
    }

    #[test]
    fn ungrouped_writes_at_once() {
        let out = SharedBuf::default();
        let live = LiveOutput::new(Live::Ungrouped, Box::new(out.clone()), Box::new(io::sink()));
        let mut a = live.writer(false, None);
        a.write_all(b"par").unwrap();
        assert_eq!(out.bytes(), b"par");
    }
}
