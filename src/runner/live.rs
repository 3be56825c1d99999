//! Output printed while jobs run (`--line-buffer`, `-u`), instead of whole per job.
//!
//! Every worker writes to the same two streams, each behind a mutex. With
//! [`Live::Lines`], a worker holds back a job's partial line until its newline comes
//! (or the job ends), and writes whole lines only: lines from different jobs
//! interleave, but never a half line with another. With [`Live::Ungrouped`], bytes are
//! written as they arrive, as GNU parallel's `-u` does: fastest, and mixed freely.
//!
//! With `-k` ([`LiveOutput::in_order`]), only the oldest job still to be printed
//! writes live; every later job's lines are held (in a [`Spool`]: memory, then an
//! unnamed file) and printed when it becomes the oldest, after which it too writes
//! live. The output is then in input order, and the oldest job is seen as it runs, as
//! in GNU parallel's `-k --line-buffer`.

use std::collections::HashMap;
use std::io::{self, Write};
use std::sync::{Mutex, PoisonError};

use crate::process::Spool;

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
    /// With `-k`: which job writes live, and what later jobs wrote meanwhile.
    order: Option<Mutex<Order>>,
}

/// `-k` with live output: the job that is printed now, and the held output of later
/// ones (stdout, stderr).
#[derive(Default)]
struct Order {
    front: usize,
    held: HashMap<usize, [Spool; 2]>,
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
            order: None,
        }
    }

    /// Live output in input order (`-k`): job 1 writes live first.
    pub fn in_order(mut self) -> Self {
        self.order = Some(Mutex::new(Order {
            front: 1,
            held: HashMap::new(),
        }));
        self
    }

    /// With `-k`: every job before `seq` has been printed, so `seq` writes live from
    /// now on, after what it wrote while it waited. A no-op without `-k`.
    pub fn advance_to(&self, seq: usize) {
        let Some(order) = &self.order else {
            return;
        };
        let mut order = order.lock().unwrap_or_else(PoisonError::into_inner);
        order.front = seq;
        if let Some([mut out, mut err]) = order.held.remove(&seq) {
            for (spool, stream) in [(&mut out, &self.out), (&mut err, &self.err)] {
                let mut stream = stream.lock().unwrap_or_else(PoisonError::into_inner);
                if let Err(err) = spool.copy_to(&mut **stream).and_then(|()| stream.flush()) {
                    self.record(err);
                }
            }
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
    pub fn writer<'a>(&'a self, seq: usize, stderr: bool, tag: Option<&'a [u8]>) -> JobWriter<'a> {
        JobWriter {
            live: self,
            seq,
            stderr,
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
    /// The job's sequence number (for `-k`).
    seq: usize,
    stderr: bool,
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
        // With -k, a job that is not the oldest to print writes to its held spool.
        let mut order = self
            .live
            .order
            .as_ref()
            .map(|order| order.lock().unwrap_or_else(PoisonError::into_inner));
        if let Some(order) = order.as_deref_mut()
            && order.front != self.seq
        {
            let spool = &mut order.held.entry(self.seq).or_default()[usize::from(self.stderr)];
            return self.write_tagged(spool, bytes);
        }
        let mut stream = self.stream.lock().unwrap_or_else(PoisonError::into_inner);
        let written = self
            .write_tagged(&mut **stream, bytes)
            .and_then(|()| stream.flush());
        if let Err(err) = &written {
            self.live
                .record(io::Error::new(err.kind(), err.to_string()));
        }
        written
    }

    /// Writes `bytes` to `out`, each line tagged if a tag is set: the same tagging as
    /// grouped output, carried on from this job's last write.
    fn write_tagged(&mut self, out: &mut dyn Write, bytes: &[u8]) -> io::Result<()> {
        match self.tag {
            None => out.write_all(bytes),
            Some(tag) => {
                let mut tagged = super::Tagged {
                    out,
                    tag,
                    at_line_start: self.at_line_start,
                };
                let written = tagged.write_all(bytes);
                self.at_line_start = tagged.at_line_start;
                written
            }
        }
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
        let mut a = live.writer(1, false, Some(b"A\t"));
        let mut b = live.writer(2, false, Some(b"B\t"));
        a.write_all(b"one ").unwrap();
        b.write_all(b"x\ny").unwrap();
        a.write_all(b"two\nthree").unwrap();
        b.finish().unwrap();
        a.finish().unwrap();
        let text = out.text();
        assert_eq!(text, "B\tx\nA\tone two\nB\tyA\tthree");
    }

    #[test]
    fn in_order_only_the_oldest_job_writes_live() {
        let (out, err) = (SharedBuf::default(), SharedBuf::default());
        let live =
            LiveOutput::new(Live::Lines, Box::new(out.clone()), Box::new(err.clone())).in_order();
        let mut first = live.writer(1, false, None);
        let mut second = live.writer(2, false, None);
        let mut second_err = live.writer(2, true, None);
        second.write_all(b"2a\n").unwrap();
        second_err.write_all(b"2e\n").unwrap();
        first.write_all(b"1a\n").unwrap();
        assert_eq!(out.text(), "1a\n", "job 1 is live, job 2 held");
        first.write_all(b"1b\n").unwrap();
        first.finish().unwrap();
        live.advance_to(2);
        assert_eq!(out.text(), "1a\n1b\n2a\n");
        assert_eq!(err.text(), "2e\n");
        second.write_all(b"2b\n").unwrap();
        assert_eq!(out.text(), "1a\n1b\n2a\n2b\n", "job 2 is live now");
    }

    #[test]
    fn ungrouped_writes_at_once() {
        let out = SharedBuf::default();
        let live = LiveOutput::new(Live::Ungrouped, Box::new(out.clone()), Box::new(io::sink()));
        let mut a = live.writer(1, false, None);
        a.write_all(b"par").unwrap();
        assert_eq!(out.bytes(), b"par");
    }
}
