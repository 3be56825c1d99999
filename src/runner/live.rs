//! Output printed while jobs run (`--line-buffer`, `-u`), instead of whole per job.
//!
//! Every worker writes to the same two streams, each behind a mutex. With
//! [`Live::Lines`], a worker holds back a job's partial line until its newline comes
//! (or the job ends), and writes whole lines only: lines from different jobs
//! interleave, but never a half line with another. With [`Live::Ungrouped`], bytes are
//! written as they arrive, as GNU parallel's `-u` does: fastest, and mixed freely.
//!
//! A job lost with its host (`-S`) runs again on another, from the start. What its lost
//! attempts printed is kept as a [`Printed`] record (a hash and a length per line), and
//! the next attempt prints only what goes past it: its lines that match the record,
//! in order, are not printed again. If the new attempt prints something else where the
//! record has a line, it has diverged (the job does not repeat itself): from there on,
//! everything it prints is printed, and [`Replayed::diverged_at`] says where.
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
            replay: None,
        }
    }

    fn record(&self, err: io::Error) {
        let mut failed = self.failed.lock().unwrap_or_else(PoisonError::into_inner);
        if failed.is_none() {
            *failed = Some(err);
        }
    }
}

/// What lost attempts of one job printed live (`-S`), stdout and stderr, for the
/// next attempt to skip. See the module's documentation.
#[derive(Clone, Debug, Default)]
pub struct Printed {
    streams: [PrintedStream; 2],
}

impl Printed {
    /// The record of stdout and of stderr, for [`JobWriter::replaying`].
    pub fn streams(&mut self) -> (&mut PrintedStream, &mut PrintedStream) {
        let [out, err] = &mut self.streams;
        (out, err)
    }
}

/// The lines one stream of a job's lost attempts printed.
#[derive(Clone, Debug, Default)]
pub struct PrintedStream {
    /// Each whole line, newline included: its length and hash.
    lines: Vec<(usize, u64)>,
    /// With `-u`: what was printed after the last whole line (length, hash).
    partial: Option<(usize, u64)>,
    /// More lines than [`MAX_RECORDED_LINES`] were printed: the rest were not kept.
    overflowed: bool,
}

/// The most lines a record keeps per stream (16 bytes each): past them, a new attempt
/// prints its lines again, and says so.
pub const MAX_RECORDED_LINES: usize = 1 << 22;

/// FNV-1a, carried on from `hash` (start from [`FNV_START`]): a line's identity in a
/// [`Printed`] record.
fn fnv(mut hash: u64, bytes: &[u8]) -> u64 {
    for &b in bytes {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash
}

const FNV_START: u64 = 0xcbf2_9ce4_8422_2325;

/// How one attempt went against its stream's record: the lines it did not print
/// again, and the line (1-based) where it printed something else, if it did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Replayed {
    /// Lines (and a `-u` partial line) that matched the record and were not printed.
    pub skipped: usize,
    /// Where the attempt first differed from the record.
    pub diverged_at: Option<usize>,
    /// The record had overflowed: lines past it were printed again.
    pub overflowed: bool,
}

/// One attempt's walk along a [`PrintedStream`].
struct Replay<'a> {
    record: &'a mut PrintedStream,
    /// Whole lines this attempt has produced.
    line: usize,
    /// The current line so far: its length and hash.
    len: usize,
    hash: u64,
    /// With `-u`, while the attempt still matches the record: the current line,
    /// held until it can be compared.
    held: Vec<u8>,
    report: Replayed,
}

impl Replay<'_> {
    /// Whether the attempt may still be repeating the record (so output is held or
    /// compared, not printed).
    fn replaying(&self) -> bool {
        self.report.diverged_at.is_none()
            && (self.line < self.record.lines.len() || self.record.partial.is_some())
    }

    /// A whole line of the attempt: whether it is new (to be printed). Keeps the record
    /// up to date: a line past the record, or after a difference, joins it.
    fn whole_line(&mut self, line: &[u8]) -> bool {
        let key = (line.len(), fnv(FNV_START, line));
        self.line_done(key)
    }

    fn line_done(&mut self, key: (usize, u64)) -> bool {
        let at = self.line;
        self.line += 1;
        (self.len, self.hash) = (0, FNV_START);
        if self.report.diverged_at.is_none() {
            if self.record.lines.get(at) == Some(&key) {
                self.report.skipped += 1;
                return false;
            }
            if at < self.record.lines.len() || self.record.partial.is_some() {
                self.report.diverged_at = Some(at + 1);
            }
            self.record.lines.truncate(at);
            self.record.partial = None;
        }
        if self.record.lines.len() == at {
            if at < MAX_RECORDED_LINES {
                self.record.lines.push(key);
            } else {
                self.record.overflowed = true;
            }
        }
        true
    }

    /// With `-u`: bytes of the attempt, as they come; what to print now goes to `out`.
    fn bytes(&mut self, mut bytes: &[u8], out: &mut Vec<u8>) {
        while !bytes.is_empty() {
            if !self.replaying() {
                // Past the record: printed as it comes, and recorded line by line.
                let (piece, rest) = match bytes.iter().position(|&b| b == b'\n') {
                    Some(end) => bytes.split_at(end + 1),
                    None => (bytes, &[][..]),
                };
                self.hash = fnv(self.hash, piece);
                self.len += piece.len();
                out.extend_from_slice(piece);
                if piece.ends_with(b"\n") {
                    self.line_done((self.len, self.hash));
                }
                bytes = rest;
                continue;
            }
            let (piece, rest) = match bytes.iter().position(|&b| b == b'\n') {
                Some(end) => bytes.split_at(end + 1),
                None => (bytes, &[][..]),
            };
            self.held.extend_from_slice(piece);
            bytes = rest;
            let whole = self.held.ends_with(b"\n");
            // Past the record's whole lines, its partial line: compared once as much
            // of this line has come, or the line ended shorter.
            if self.line == self.record.lines.len()
                && let Some((len, hash)) = self.record.partial
                && (self.held.len() >= len || whole)
            {
                let held = std::mem::take(&mut self.held);
                self.record.partial = None;
                let same = held.len() >= len && fnv(FNV_START, &held[..len]) == hash;
                let printed = if same {
                    self.report.skipped += 1;
                    &held[len..]
                } else {
                    self.report.diverged_at = Some(self.line + 1);
                    &held[..]
                };
                // What is left of this line goes out as output past the record.
                self.hash = fnv(FNV_START, &held[..held.len() - printed.len()]);
                self.len = held.len() - printed.len();
                self.bytes(printed, out);
                continue;
            }
            if whole {
                let held = std::mem::take(&mut self.held);
                if self.whole_line(&held) {
                    out.extend_from_slice(&held);
                }
            }
        }
    }

    /// The attempt was lost: what it printed of its last line (with `-u`) joins the
    /// record. Held bytes were printed before (they still match the record, which
    /// keeps them).
    fn lost(&mut self) {
        if !self.replaying() && self.len > 0 {
            self.record.partial = Some((self.len, self.hash));
        }
        self.report.overflowed = self.record.overflowed;
    }

    /// The attempt ended with `pending` left (a last line without a newline, with
    /// `--line-buffer`). If it printed less than the record holds, or something else
    /// at its end, it differed there; what it still held goes out with `pending`.
    fn ended(&mut self, pending: &[u8], out: &mut Vec<u8>) {
        if self.replaying() {
            self.report.diverged_at = Some(self.line + 1);
        }
        out.append(&mut self.held);
        out.extend_from_slice(pending);
        self.report.overflowed = self.record.overflowed;
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
    /// A job run again after a lost attempt: what was printed before.
    replay: Option<Replay<'a>>,
}

impl<'a> JobWriter<'a> {
    /// Prints only what goes past `record`, what earlier, lost attempts of this job
    /// printed on this stream, and adds to it (see the module's documentation).
    pub fn replaying(mut self, record: &'a mut PrintedStream) -> Self {
        self.replay = Some(Replay {
            record,
            line: 0,
            len: 0,
            hash: FNV_START,
            held: Vec::new(),
            report: Replayed::default(),
        });
        self
    }

    /// How this attempt went against its record (with [`replaying`](Self::replaying)).
    pub fn replayed(&self) -> Option<Replayed> {
        self.replay.as_ref().map(|replay| replay.report)
    }

    /// The attempt was lost with its host: its last line, not yet printed, is dropped
    /// (with `--line-buffer`; the next attempt prints it), and the record keeps what
    /// was printed. Call it instead of [`finish`](Self::finish).
    pub fn abandon(&mut self) {
        self.pending.clear();
        if let Some(replay) = &mut self.replay {
            replay.lost();
        }
    }

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
        match &mut self.replay {
            None => self.emit(&pending),
            Some(replay) => {
                let mut out = Vec::new();
                replay.ended(&pending, &mut out);
                self.emit(&out)
            }
        }
    }

    /// Whole lines, or bytes with `-u`, less what an earlier attempt printed.
    fn emit_new(&mut self, bytes: &[u8]) -> io::Result<()> {
        let Some(replay) = &mut self.replay else {
            return self.emit(bytes);
        };
        let mut out = Vec::new();
        match self.live.mode {
            Live::Ungrouped => replay.bytes(bytes, &mut out),
            Live::Lines => {
                for line in bytes.split_inclusive(|&b| b == b'\n') {
                    if replay.whole_line(line) {
                        out.extend_from_slice(line);
                    }
                }
            }
        }
        self.emit(&out)
    }
}

impl Write for JobWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self.live.mode {
            Live::Ungrouped => self.emit_new(buf)?,
            Live::Lines => match buf.iter().rposition(|&b| b == b'\n') {
                None => self.pending.extend_from_slice(buf),
                Some(last) => {
                    let (lines, rest) = buf.split_at(last + 1);
                    if self.pending.is_empty() {
                        self.emit_new(lines)?;
                    } else {
                        let mut whole = std::mem::take(&mut self.pending);
                        whole.extend_from_slice(lines);
                        self.emit_new(&whole)?;
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

    /// Runs attempts of one job, each writing `pieces` to stdout; every attempt but
    /// the last is lost. Returns what was printed, and the last attempt's report.
    fn attempts(mode: Live, runs: &[&[&str]]) -> (String, Option<Replayed>) {
        let out = SharedBuf::default();
        let live = LiveOutput::new(mode, Box::new(out.clone()), Box::new(io::sink()));
        let mut printed = Printed::default();
        let mut report = None;
        for (i, pieces) in runs.iter().enumerate() {
            let (record, _) = printed.streams();
            let mut writer = live.writer(1, false, None).replaying(record);
            for piece in *pieces {
                writer.write_all(piece.as_bytes()).unwrap();
            }
            if i + 1 < runs.len() {
                writer.abandon();
            } else {
                writer.finish().unwrap();
            }
            report = writer.replayed();
        }
        (out.text(), report)
    }

    #[test]
    fn a_job_run_again_prints_only_what_its_lost_attempts_did_not() {
        // The lost attempt's unfinished line is not printed: the next one prints it.
        let (text, report) = attempts(Live::Lines, &[&["a\nb\nc"], &["a\nb\nc\nd\n"]]);
        assert_eq!(text, "a\nb\nc\nd\n");
        assert_eq!(report.unwrap().skipped, 2);
        assert_eq!(report.unwrap().diverged_at, None);
        // Three attempts, each getting further.
        let (text, _) = attempts(
            Live::Lines,
            &[&["a\n"], &["a\n", "b\n"], &["a\nb\n", "c\n"]],
        );
        assert_eq!(text, "a\nb\nc\n");
        // With -u, bytes in any pieces, a partial line included.
        let (text, report) = attempts(Live::Ungrouped, &[&["a\nb", "c"], &["a", "\nb", "cd\ne"]]);
        assert_eq!(text, "a\nbcd\ne");
        assert_eq!(report.unwrap().skipped, 2, "a whole line and a partial one");
        // The record follows what was printed: a third attempt after a second that
        // got further prints only the rest.
        let (text, _) = attempts(
            Live::Ungrouped,
            &[&["a\nb"], &["a\nbc\nd"], &["a\nbc\nde\n"]],
        );
        assert_eq!(text, "a\nbc\nde\n");
    }

    #[test]
    fn a_run_again_that_prints_something_else_is_printed_from_there_and_said() {
        let (text, report) = attempts(Live::Lines, &[&["a\nb\n"], &["a\nX\nc\n"]]);
        assert_eq!(text, "a\nb\nX\nc\n");
        assert_eq!(report.unwrap().diverged_at, Some(2));
        // Ending short of what the lost attempt printed is a difference too.
        let (text, report) = attempts(Live::Lines, &[&["a\nb\n"], &["a\n"]]);
        assert_eq!(text, "a\nb\n");
        assert_eq!(report.unwrap().diverged_at, Some(2));
        // With -u, a different partial line.
        let (text, report) = attempts(Live::Ungrouped, &[&["ab"], &["ax\n"]]);
        assert_eq!(text, "abax\n");
        assert_eq!(report.unwrap().diverged_at, Some(1));
        // A job never lost has no report, and prints as it comes.
        let (text, report) = attempts(Live::Ungrouped, &[&["a", "b\n"]]);
        assert_eq!(text, "ab\n");
        assert_eq!(report.unwrap(), Replayed::default());
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
