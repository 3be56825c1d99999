//! One followed file: reading what it gains, cutting it into whole lines, and coping
//! with truncation and rotation. Every tailing design uses this one core.

use std::collections::HashMap;
use std::fs::File;
use std::io;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use thiserror::Error;

use super::state::{HEAD, Position, dir_of, find_by_inode, hex, starts_with, unhex, written_since};
use super::stream::{Stream, StreamInput};
use super::wake::Wake;

/// The most bytes one poll reads from one file before returning, so that one busy file
/// cannot starve the others (and a batch stays a reasonable size).
pub(crate) const MAX_BATCH: usize = 4 << 20;

/// How many of the last bytes read are kept to recognise the file on the next poll.
const FINGERPRINT: usize = 16;

/// After a rotation, how long the old file is still drained for writers that have not
/// reopened yet.
pub const RETIRE_AFTER: Duration = Duration::from_secs(1);

/// A file that cannot be followed.
#[derive(Debug, Error)]
pub enum SourceError {
    /// It could not be opened.
    #[error("cannot open {}", path.display())]
    Open {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        #[source]
        source: io::Error,
    },
    /// Reading it failed.
    #[error("cannot read {}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        #[source]
        source: io::Error,
    },
}

/// Where to start reading a file when it is first opened (files that appear later, or
/// replace a rotated one, are read from their start).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Start {
    /// From the first byte (concur's default).
    #[default]
    Beginning,
    /// The last N lines (`-n N`; `--from-end` is `-n 0`). An unfinished last line
    /// counts as a line, as in GNU tail.
    LastLines(u64),
    /// From line K, counting from 1 (`-n +K`).
    FromLine(u64),
    /// The last N bytes (`-c N`).
    LastBytes(u64),
    /// From byte K, counting from 1 (`-c +K`).
    FromByte(u64),
}

/// The longest unfinished line held in memory before it is written out in pieces
/// (`--max-line-bytes`, 1 MiB by default).
pub const DEFAULT_MAX_LINE: usize = 1 << 20;

/// How to follow a file.
#[derive(Clone, Copy, Debug)]
pub struct FollowOptions {
    /// Where to start reading.
    pub start: Start,
    /// Follow the *name*: reopen when the file is replaced (rotated), and wait for a
    /// missing file to appear.
    pub follow_name: bool,
    /// Keep trying a file that cannot be opened or looked at (`--retry`), instead of
    /// giving it up.
    pub retry: bool,
    /// Cut an unfinished line that grows past this many bytes.
    pub max_line: usize,
    /// Drain and close the file once its name has been gone for [`RETIRE_AFTER`]
    /// (files found by `--glob`), instead of waiting for the name to come back.
    pub close_when_gone: bool,
}

impl Default for FollowOptions {
    fn default() -> Self {
        Self {
            start: Start::Beginning,
            follow_name: false,
            retry: false,
            max_line: DEFAULT_MAX_LINE,
            close_when_gone: false,
        }
    }
}

/// What one poll found.
#[derive(Debug, Default)]
pub struct Polled {
    /// New bytes were read.
    pub grew: bool,
    /// The batch limit stopped the read: poll again without waiting.
    pub more: bool,
    /// Events worth telling the user about (a truncation, a rotation, a file that
    /// cannot be read, or can be again).
    pub notes: Vec<String>,
    /// Lines cut at `max_line`.
    pub cut: u64,
    /// The file was drained and closed (its name gone, with `close_when_gone`).
    pub closed: bool,
    /// It was closed because it can no longer be followed (its name gone without
    /// `--retry`, or replaced by a directory): a failure.
    pub gave_up: bool,
}

/// What one `read_lines` did.
#[derive(Clone, Copy, Debug, Default)]
struct Read {
    grew: bool,
    more: bool,
    cut: u64,
    /// The file no longer holds what was read (truncated): nothing was consumed.
    truncated: bool,
    /// Another source took the file over (its name now leads there): nothing was read.
    taken: bool,
}

/// Where one source has read a file up to, shared so that another source can take the
/// file over: when a followed name comes to lead to a file another source is reading
/// (`mv a b` with both followed by name), the new one goes on from there, and each line
/// is printed once.
#[derive(Debug)]
struct Hold {
    /// The offset of the first byte not yet written out (an unfinished line is not).
    pos: u64,
    taken: bool,
}

/// The files being read in one run, by (device, inode).
#[derive(Debug, Default)]
pub(crate) struct Readers(Mutex<HashMap<FileId, Weak<Mutex<Hold>>>>);

/// (device, inode).
type FileId = (u64, u64);

fn hold_lock(hold: &Mutex<Hold>) -> std::sync::MutexGuard<'_, Hold> {
    hold.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Readers {
    /// Records that `reader` reads its file. With `take_over`, a source already
    /// reading it gives it up, and `reader` goes on from where that one was; returns
    /// whether that happened.
    fn claim(&self, reader: &mut Reader, take_over: bool) -> io::Result<bool> {
        let mut map = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        map.retain(|_, hold| hold.strong_count() > 0);
        let mut took = false;
        if let Some(other) = map.get(&reader.id).and_then(Weak::upgrade) {
            if !take_over {
                return Ok(false); // the same file named twice: each reads it
            }
            let mut other = hold_lock(&other);
            if !other.taken {
                other.taken = true;
                reader.seek(other.pos)?;
                took = true;
            }
        }
        let hold = Arc::new(Mutex::new(Hold {
            pos: reader.offset - reader.partial.len() as u64,
            taken: false,
        }));
        map.insert(reader.id, Arc::downgrade(&hold));
        reader.hold = Some(hold);
        Ok(took)
    }
}

/// An open file and where we are in it.
#[derive(Debug)]
struct Reader {
    file: File,
    /// (device, inode): the file's identity, to notice when the name points elsewhere.
    id: (u64, u64),
    offset: u64,
    /// The bytes of an unfinished last line.
    partial: Vec<u8>,
    /// The last bytes read, to notice a file truncated and rewritten past our offset.
    fingerprint: Vec<u8>,
    /// Its first bytes (up to [`HEAD`]), to know it again after a restart.
    head: Vec<u8>,
    /// Lines read at open from a file whose size reads 0 (`/proc/version`), to be
    /// given out by the first poll.
    preface: Vec<u8>,
    /// This reader's claim on the file, which another source may take over.
    hold: Option<Arc<Mutex<Hold>>>,
}

/// Reads `buf.len()` bytes at `at`, or fewer if the file ends first.
fn read_up_to_at(file: &File, buf: &mut [u8], at: u64) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match file.read_at(&mut buf[filled..], at + filled as u64) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// The offset after which the last `n` lines of a `len`-byte file begin.
fn last_lines_offset(file: &File, len: u64, n: u64) -> io::Result<u64> {
    if n == 0 {
        return Ok(len);
    }
    let mut buf = vec![0; 64 * 1024];
    let (mut pos, mut need) = (len, n);
    while pos > 0 {
        let from = pos.saturating_sub(buf.len() as u64);
        let got = read_up_to_at(file, &mut buf[..(pos - from) as usize], from)?;
        for i in (0..got).rev() {
            let at = from + i as u64;
            // The newline that ends the last line does not start a line.
            if buf[i] == b'\n' && at + 1 != len {
                need -= 1;
                if need == 0 {
                    return Ok(at + 1);
                }
            }
        }
        pos = from;
    }
    Ok(0)
}

/// The offset of line `k` (from 1), or the end if the file has fewer lines.
fn line_offset(file: &File, len: u64, k: u64) -> io::Result<u64> {
    let mut skip = k.saturating_sub(1);
    if skip == 0 {
        return Ok(0);
    }
    let mut buf = vec![0; 64 * 1024];
    let mut pos = 0;
    while pos < len {
        let got = read_up_to_at(file, &mut buf, pos)?;
        if got == 0 {
            break;
        }
        for (i, &b) in buf[..got].iter().enumerate() {
            if b == b'\n' {
                skip -= 1;
                if skip == 0 {
                    return Ok(pos + i as u64 + 1);
                }
            }
        }
        pos += got as u64;
    }
    Ok(len)
}

impl Reader {
    fn open(path: &Path, start: Start) -> io::Result<Self> {
        let file = File::open(path)?;
        Self::from_file(file, start)
    }

    fn from_file(file: File, start: Start) -> io::Result<Self> {
        let meta = file.metadata()?;
        if meta.is_dir() {
            return Err(io::ErrorKind::IsADirectory.into());
        }
        let len = meta.len();
        if len == 0 && matches!(start, Start::LastLines(1..) | Start::LastBytes(1..)) {
            return Self::read_whole(file, (meta.dev(), meta.ino()), start);
        }
        let offset = match start {
            Start::Beginning => 0,
            Start::LastLines(n) => last_lines_offset(&file, len, n)?,
            Start::FromLine(k) => line_offset(&file, len, k)?,
            Start::LastBytes(n) => len.saturating_sub(n),
            Start::FromByte(k) => k.saturating_sub(1).min(len),
        };
        let mut reader = Reader {
            file,
            id: (meta.dev(), meta.ino()),
            offset,
            partial: Vec::new(),
            fingerprint: Vec::new(),
            head: Vec::new(),
            preface: Vec::new(),
            hold: None,
        };
        reader.head = reader.read_up_to(0, HEAD as u64)?;
        if offset > 0 {
            let from = offset.saturating_sub(FINGERPRINT as u64);
            let fingerprint = reader.read_up_to(from, offset)?;
            // Shorter means the file shrank since `metadata`: the length check on the
            // next poll notices that, so no fingerprint is needed.
            if fingerprint.len() as u64 == offset - from {
                reader.fingerprint = fingerprint;
            }
        }
        Ok(reader)
    }

    /// A file whose size reads 0 but which has content (`/proc/version`): read to its
    /// end, keeping the last lines or bytes asked for, to give out at the first poll.
    fn read_whole(file: File, id: (u64, u64), start: Start) -> io::Result<Self> {
        let mut shape = super::shape::Shape::new(start);
        let mut buf = vec![0; 64 * 1024];
        let (mut offset, mut last) = (0u64, Vec::new());
        loop {
            let n = match file.read_at(&mut buf, offset) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            let _ = shape.push(&buf[..n]);
            offset += n as u64;
            last.extend_from_slice(&buf[..n]);
            let keep = last.len().saturating_sub(FINGERPRINT);
            last.drain(..keep);
        }
        Ok(Reader {
            file,
            id,
            offset,
            partial: Vec::new(),
            fingerprint: last,
            head: Vec::new(),
            preface: shape.finish(),
            hold: None,
        })
    }

    /// Moves to `pos` (from where another source had read the file up to).
    fn seek(&mut self, pos: u64) -> io::Result<()> {
        self.partial.clear();
        self.offset = pos;
        let from = pos.saturating_sub(FINGERPRINT as u64);
        let fingerprint = self.read_up_to(from, pos)?;
        self.fingerprint = if fingerprint.len() as u64 == pos - from {
            fingerprint
        } else {
            Vec::new()
        };
        Ok(())
    }

    /// The bytes in `from..to`, or fewer if the file now ends before `to`. A file can
    /// be truncated between any two system calls, so running short is an answer, not
    /// an error: an error here would drop a file that is merely being rotated.
    fn read_up_to(&self, from: u64, to: u64) -> io::Result<Vec<u8>> {
        let mut bytes = vec![0; (to - from) as usize];
        let filled = read_up_to_at(&self.file, &mut bytes, from)?;
        bytes.truncate(filled);
        Ok(bytes)
    }

    /// Reads what the file gained; appends its complete lines to `out`, and cuts an
    /// unfinished line that grew past `max_line` (writing it out with `marker`).
    ///
    /// One `pread` per call in the common case: it starts at the fingerprint (the last
    /// bytes read), so the same read that brings the new bytes also shows whether the
    /// file was truncated (the fingerprint is short or differs: `truncated` is set and
    /// nothing is consumed). A short read is the end of the file for now.
    fn read_lines(
        &mut self,
        prefix: &[u8],
        buf: &mut [u8],
        out: &mut Vec<u8>,
        max_line: usize,
        marker: &[u8],
    ) -> io::Result<Read> {
        let Some(hold) = self.hold.clone() else {
            return self.read_lines_unheld(prefix, buf, out, max_line, marker);
        };
        // Held while reading, so that a source taking the file over starts exactly
        // where this one stopped.
        let mut hold = hold_lock(&hold);
        if hold.taken {
            return Ok(Read {
                taken: true,
                ..Read::default()
            });
        }
        let read = self.read_lines_unheld(prefix, buf, out, max_line, marker)?;
        hold.pos = self.offset - self.partial.len() as u64;
        Ok(read)
    }

    fn read_lines_unheld(
        &mut self,
        prefix: &[u8],
        buf: &mut [u8],
        out: &mut Vec<u8>,
        max_line: usize,
        marker: &[u8],
    ) -> io::Result<Read> {
        let mut total = 0;
        let mut read = Read::default();
        let mut check = self.fingerprint.len();
        if check == 0 && self.offset > 0 {
            // No fingerprint to check against: the length is the only sign.
            read.truncated = self.file.metadata()?.len() < self.offset;
            if read.truncated {
                return Ok(read);
            }
        }
        loop {
            let from = self.offset - check as u64;
            let n = match self.file.read_at(buf, from) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if check > 0 {
                if n < check || buf[..check] != self.fingerprint[..] {
                    read.truncated = true;
                    return Ok(read);
                }
                if n == check {
                    return Ok(read); // nothing new
                }
            } else if n == 0 {
                read.grew = total > 0;
                return Ok(read);
            }
            let data = &buf[check..n];
            let got = data.len();
            // Keep the first bytes of this generation of the file (after a truncation
            // the file starts again): they tell its copies from other files.
            let start = self.offset;
            if start < HEAD as u64 && self.head.len() as u64 == start {
                let want = (HEAD - self.head.len()).min(got);
                self.head.extend_from_slice(&data[..want]);
            }
            self.offset += got as u64;
            total += got;
            let keep = FINGERPRINT.min(got);
            let old = FINGERPRINT.saturating_sub(keep).min(self.fingerprint.len());
            self.fingerprint.drain(..self.fingerprint.len() - old);
            self.fingerprint.extend_from_slice(&data[got - keep..]);
            split_lines(prefix, &mut self.partial, data, out);
            if cut_long_line(prefix, &mut self.partial, max_line, marker, out) {
                read.cut += 1;
            }
            read.grew = true;
            if total >= MAX_BATCH {
                read.more = true;
                return Ok(read);
            }
            if n < buf.len() {
                return Ok(read); // a short read: the end, for now
            }
            check = 0; // the rest follows on directly
        }
    }

    /// Where this file has been written out up to, for `--state`.
    fn position(&mut self) -> Position {
        if self.head.len() < HEAD
            && self.offset > self.head.len() as u64
            && let Ok(head) = self.read_up_to(0, HEAD as u64)
        {
            self.head = head;
        }
        Position {
            dev: self.id.0,
            ino: self.id.1,
            pos: self.offset - self.partial.len() as u64,
            head: hex(&self.head),
            // The bytes before `pos` are the fingerprint only when no line is unfinished.
            tail: if self.partial.is_empty() {
                hex(&self.fingerprint)
            } else {
                String::new()
            },
        }
    }

    /// Resumes reading `file` at a saved position.
    fn resume(file: File, saved: &Position) -> io::Result<Self> {
        let meta = file.metadata()?;
        Ok(Reader {
            file,
            id: (meta.dev(), meta.ino()),
            offset: saved.pos,
            partial: Vec::new(),
            fingerprint: unhex(&saved.tail),
            head: unhex(&saved.head),
            preface: Vec::new(),
            hold: None,
        })
    }

    /// Emits an unfinished last line that will never be finished (its file was rotated
    /// or truncated, or tailing stops), with a newline added, so that nothing is lost.
    fn flush_partial(&mut self, prefix: &[u8], out: &mut Vec<u8>) {
        flush_line(prefix, &mut self.partial, out);
    }
}

/// Appends the complete lines of `partial + data` to `out`, each after `prefix`, and
/// keeps the unfinished rest in `partial`.
pub(crate) fn split_lines(prefix: &[u8], partial: &mut Vec<u8>, data: &[u8], out: &mut Vec<u8>) {
    let Some(last) = data.iter().rposition(|&b| b == b'\n') else {
        partial.extend_from_slice(data);
        return;
    };
    let (complete, rest) = data.split_at(last + 1);
    if prefix.is_empty() {
        // No per-line work: the unfinished line from before, then every line at once.
        out.append(partial);
        out.extend_from_slice(complete);
    } else {
        let mut start = 0;
        for end in complete
            .iter()
            .enumerate()
            .filter(|&(_, &b)| b == b'\n')
            .map(|(i, _)| i)
        {
            out.extend_from_slice(prefix);
            if start == 0 {
                out.append(partial);
            }
            out.extend_from_slice(&complete[start..=end]);
            start = end + 1;
        }
    }
    partial.extend_from_slice(rest);
}

/// Writes out an unfinished line that grew to `max_line` bytes, ending it with
/// `marker`, and gives its memory back. Returns whether it cut.
pub(crate) fn cut_long_line(
    prefix: &[u8],
    partial: &mut Vec<u8>,
    max_line: usize,
    marker: &[u8],
    out: &mut Vec<u8>,
) -> bool {
    if partial.len() < max_line {
        return false;
    }
    out.extend_from_slice(prefix);
    out.extend_from_slice(partial);
    out.extend_from_slice(marker);
    // The next long line starts small again.
    *partial = Vec::new();
    true
}

/// Emits an unfinished last line that will never be finished, with a newline added,
/// so that nothing read is lost.
pub(crate) fn flush_line(prefix: &[u8], partial: &mut Vec<u8>, out: &mut Vec<u8>) {
    if !partial.is_empty() {
        out.extend_from_slice(prefix);
        out.append(partial);
        out.push(b'\n');
    }
}

/// Names that rotation tools give a file's copies, so `app.log` → `app.log.1`,
/// `app.log-20261204`; compressed copies cannot be read back and are skipped.
pub(crate) fn is_copy_name(name: &[u8], base: &[u8]) -> bool {
    const PACKED: [&[u8]; 5] = [b".gz", b".bz2", b".xz", b".zst", b".lz4"];
    name.len() > base.len()
        && name.starts_with(base)
        && matches!(name[base.len()], b'.' | b'-' | b'_')
        && !PACKED.iter().any(|ext| name.ends_with(ext))
}

/// After a truncation: the copy (`copytruncate`'s `app.log.1`) that holds what the file
/// had before, found by holding our last bytes read at our offset and being longer.
///
/// Last bytes alone can be ambiguous (many log lines end alike), so the copy must also
/// begin with the file's first bytes, and a copy already read from is never used again.
fn find_copy(path: &Path, reader: &Reader, used: &[(u64, u64)]) -> Option<(PathBuf, File)> {
    use std::os::unix::ffi::OsStrExt;
    if reader.fingerprint.is_empty() || reader.head.is_empty() {
        return None;
    }
    let dir = dir_of(path);
    let base = path.file_name()?.as_bytes();
    let from = reader.offset - reader.fingerprint.len() as u64;
    let mut best: Option<(std::time::SystemTime, PathBuf, File)> = None;
    for entry in std::fs::read_dir(dir).ok()?.flatten() {
        if !is_copy_name(entry.file_name().as_bytes(), base) {
            continue;
        }
        let Ok(file) = File::open(entry.path()) else {
            continue;
        };
        let Ok(meta) = file.metadata() else { continue };
        let id = (meta.dev(), meta.ino());
        if id == reader.id || used.contains(&id) || meta.len() <= reader.offset {
            continue;
        }
        if !starts_with(&file, &reader.head) {
            continue;
        }
        let mut held = vec![0; reader.fingerprint.len()];
        if read_up_to_at(&file, &mut held, from).ok() != Some(held.len())
            || held != reader.fingerprint
        {
            continue;
        }
        let modified = meta.modified().unwrap_or(std::time::UNIX_EPOCH);
        if best.as_ref().is_none_or(|(m, _, _)| modified > *m) {
            best = Some((modified, entry.path(), file));
        }
    }
    best.map(|(_, path, file)| (path, file))
}

/// How `check_name` found the name.
#[derive(Debug, PartialEq, Eq)]
enum Name {
    /// It still names the file we read (or a new one, now opened).
    Followed,
    /// Nothing by that name now.
    Missing,
    /// A directory by that name now: nothing to follow there.
    Untailable,
}

/// A file being followed: its path, its open reader, and (after a rotation) the old
/// file still being drained.
#[derive(Debug)]
pub struct Source {
    path: PathBuf,
    prefix: Vec<u8>,
    options: FollowOptions,
    current: Option<Reader>,
    /// The file the name pointed to before a rotation, and when it last grew.
    retired: Option<(Reader, Instant)>,
    buf: Vec<u8>,
    /// What stops us from opening or looking at the file, already told once.
    trouble: Option<String>,
    /// Since when the name has been missing.
    gone_since: Option<Instant>,
    /// Written after the piece of a line cut at `max_line`.
    marker: Vec<u8>,
    /// Standard input or a FIFO instead of a file.
    stream: Option<Stream>,
    /// Lines and notes from resuming (`--state`), given out by the first poll.
    pending: Vec<u8>,
    pending_notes: Vec<String>,
    /// The positions last handed to the writer (`--state`), to send only changes.
    pub(crate) last_mark: Vec<Position>,
    /// Copies already read from after a truncation (device, inode).
    copies_read: Vec<(u64, u64)>,
    /// The files every source of this run reads, for taking one over (by name).
    readers: Option<Arc<Readers>>,
    /// A file was opened since [`take_opened`](Self::take_opened) last said so.
    opened: bool,
    /// Given up: the name can no longer be followed.
    gave_up: bool,
}

/// The name standard input goes by in messages and prefixes.
const STDIN_NAME: &str = "standard input";

impl Source {
    /// Starts following `path`. With `--prefix`, every line is written as `path: line`.
    /// A missing file is an error, unless the name is followed (then it is awaited); a
    /// file that cannot be opened is an error unless `retry` is set (then it is tried
    /// again, and [`trouble`](Self::trouble) says why it is not open).
    pub fn open(path: &Path, prefix: bool, options: FollowOptions) -> Result<Self, SourceError> {
        if path == Path::new("-") {
            return Self::open_stdin(prefix, options);
        }
        let mut trouble = None;
        let current = match Reader::open(path, options.start) {
            Ok(reader) => Some(reader),
            Err(e)
                if options.follow_name && options.retry && e.kind() == io::ErrorKind::NotFound =>
            {
                None
            }
            Err(e) if options.retry && e.kind() != io::ErrorKind::IsADirectory => {
                trouble = Some(describe(path, &e));
                None
            }
            Err(source) => {
                return Err(SourceError::Open {
                    path: path.to_owned(),
                    source,
                });
            }
        };
        let mut source = Self::new(path, path.display().to_string(), prefix, options, None);
        source.current = current;
        source.trouble = trouble;
        source.take_preface();
        Ok(source)
    }

    /// Standard input when it is a regular file (`concur tail < app.log`): followed
    /// by descriptor, as it has no name to follow.
    fn open_stdin(prefix: bool, options: FollowOptions) -> Result<Self, SourceError> {
        let open_error = |source: io::Error| SourceError::Open {
            path: PathBuf::from(STDIN_NAME),
            source,
        };
        if crate::stdio::stdin_was_closed() {
            return Err(open_error(io::Error::from_raw_os_error(
                rustix::io::Errno::BADF.raw_os_error(),
            )));
        }
        let fd = rustix::io::dup(rustix::stdio::stdin()).map_err(|e| open_error(e.into()))?;
        let reader = Reader::from_file(File::from(fd), options.start).map_err(open_error)?;
        let by_descriptor = FollowOptions {
            follow_name: false,
            retry: false,
            ..options
        };
        let mut source = Self::new(
            Path::new("-"),
            STDIN_NAME.to_owned(),
            prefix,
            by_descriptor,
            None,
        );
        source.current = Some(reader);
        source.take_preface();
        Ok(source)
    }

    /// A source of `path`, nothing open yet.
    fn new(
        path: &Path,
        display: String,
        prefix: bool,
        options: FollowOptions,
        stream: Option<Stream>,
    ) -> Self {
        Self {
            path: path.to_owned(),
            prefix: if prefix {
                format!("{display}: ").into_bytes()
            } else {
                Vec::new()
            },
            options,
            current: None,
            retired: None,
            buf: if stream.is_some() {
                Vec::new()
            } else {
                vec![0; 256 * 1024]
            },
            trouble: None,
            gone_since: None,
            marker: format!(" [concur: line cut at {} bytes]\n", options.max_line).into_bytes(),
            stream,
            pending: Vec::new(),
            pending_notes: Vec::new(),
            last_mark: Vec::new(),
            copies_read: Vec::new(),
            readers: None,
            opened: true,
            gave_up: false,
        }
    }

    /// Gives out, at the first poll, what a file of size 0 held when it was opened.
    fn take_preface(&mut self) {
        if let Some(reader) = &mut self.current {
            let preface = std::mem::take(&mut reader.preface);
            split_lines(
                &self.prefix,
                &mut reader.partial,
                &preface,
                &mut self.pending,
            );
        }
    }

    /// Joins the run: the files this source reads can be taken over by another source
    /// whose name comes to lead to them, and it can take theirs.
    pub(crate) fn join(&mut self, readers: &Arc<Readers>) -> Result<(), SourceError> {
        self.readers = Some(Arc::clone(readers));
        let mut claimed = Ok(false);
        if let Some((old, _)) = &mut self.retired {
            claimed = readers.claim(old, false);
        }
        if let Some(current) = &mut self.current {
            claimed = claimed.and_then(|_| readers.claim(current, false));
        }
        claimed.map(|_| ()).map_err(|e| self.read_error(e))
    }

    /// The open file, once after each time one is opened (to watch it by descriptor).
    pub(crate) fn take_opened(&mut self) -> Option<std::os::fd::BorrowedFd<'_>> {
        use std::os::fd::AsFd;
        if !std::mem::take(&mut self.opened) {
            return None;
        }
        self.current.as_ref().map(|r| r.file.as_fd())
    }

    /// The name used in messages, headers and JSON: the path, or "standard input".
    pub fn display_name(&self) -> String {
        if self.is_stdin() {
            STDIN_NAME.to_owned()
        } else {
            self.path.display().to_string()
        }
    }

    /// Whether this is standard input.
    pub fn is_stdin(&self) -> bool {
        self.path == Path::new("-")
    }

    /// Whether the file is followed by name (`-F`, `--follow=name`), not by descriptor.
    pub fn follows_name(&self) -> bool {
        self.options.follow_name
    }

    /// Follows `path` from where a previous run saved it had got to (`--state`): files
    /// the name no longer points to (rotated while concur was down) are found by inode
    /// and drained first; the file under the name is resumed at its position, or read
    /// from its start if it is new.
    pub fn resume(
        path: &Path,
        prefix: bool,
        options: FollowOptions,
        saved: &[Position],
        saved_at: Option<std::time::SystemTime>,
    ) -> Result<Self, SourceError> {
        let resumed = FollowOptions {
            start: Start::Beginning,
            ..options
        };
        let mut source = Self::open(path, prefix, resumed)?;
        let named = source.current.take();
        let dir = dir_of(path);
        let mut olds = Vec::new();
        let mut current = None;
        for position in saved {
            let head = unhex(&position.head);
            if let Some(named) = &named
                && named.id == (position.dev, position.ino)
                && starts_with(&named.file, &head)
            {
                let file = named.file.try_clone().map_err(|e| source.read_error(e))?;
                current = Some(Reader::resume(file, position).map_err(|e| source.read_error(e))?);
                continue;
            }
            match find_by_inode(dir, position.dev, position.ino, &head) {
                Some((found, file)) => {
                    source.pending_notes.push(format!(
                        "{}: rotated while concur was stopped; draining {} from byte {}",
                        path.display(),
                        found.display(),
                        position.pos
                    ));
                    olds.push(Reader::resume(file, position).map_err(|e| source.read_error(e))?);
                }
                None => source.pending_notes.push(format!(
                    "{}: the file read up to byte {} when concur stopped is gone (deleted or compressed); what was written to it after that is lost",
                    path.display(),
                    position.pos
                )),
            }
        }
        // Files created and rotated away while concur was stopped: no position covers
        // them, and they were written after the state was saved. Read them whole.
        if let Some(since) = saved_at {
            let known: Vec<(u64, u64)> = saved.iter().map(|p| (p.dev, p.ino)).collect();
            for (found, file) in written_since(path, since) {
                let Ok(meta) = file.metadata() else { continue };
                let id = (meta.dev(), meta.ino());
                if known.contains(&id) || named.as_ref().is_some_and(|n| n.id == id) {
                    continue;
                }
                source.pending_notes.push(format!(
                    "{}: {} was written and rotated while concur was stopped; reading it whole",
                    path.display(),
                    found.display()
                ));
                olds.push(
                    Reader::from_file(file, Start::Beginning).map_err(|e| source.read_error(e))?,
                );
            }
        }
        // Every older file but the last is drained now; the last is retired as after a
        // rotation, and the file under the name (resumed, or new) is current.
        let last_old = olds.pop();
        for mut old in olds {
            loop {
                let read = old
                    .read_lines(
                        &source.prefix,
                        &mut source.buf,
                        &mut source.pending,
                        options.max_line,
                        &source.marker,
                    )
                    .map_err(|e| source.read_error(e))?;
                if !read.more {
                    break;
                }
            }
            old.flush_partial(&source.prefix, &mut source.pending);
        }
        source.retired = last_old.map(|old| (old, Instant::now()));
        source.current = current.or(named);
        Ok(source)
    }

    /// Where each open file of this source has been written out up to (the retired
    /// one first), for `--state`. Empty for standard input and FIFOs.
    pub fn positions(&mut self) -> Vec<Position> {
        let mut positions = Vec::new();
        if let Some((old, _)) = &mut self.retired {
            positions.push(old.position());
        }
        if let Some(current) = &mut self.current {
            positions.push(current.position());
        }
        positions
    }

    /// Follows standard input (`-`) or a FIFO: read forward until its end, then closed.
    /// Reading starts once the source is attached to its tailer.
    pub fn open_stream(
        path: &Path,
        prefix: bool,
        options: FollowOptions,
    ) -> Result<Self, SourceError> {
        let stdin = path == Path::new("-");
        let input = if stdin {
            let open_error = |source: io::Error| SourceError::Open {
                path: PathBuf::from(STDIN_NAME),
                source,
            };
            if crate::stdio::stdin_was_closed() {
                return Err(open_error(io::Error::from_raw_os_error(
                    rustix::io::Errno::BADF.raw_os_error(),
                )));
            }
            let fd = rustix::io::dup(rustix::stdio::stdin()).map_err(|e| open_error(e.into()))?;
            StreamInput::Open(File::from(fd))
        } else {
            StreamInput::Fifo(path.to_owned())
        };
        let display = if stdin {
            STDIN_NAME.to_owned()
        } else {
            path.display().to_string()
        };
        let stream = Stream::new(input, options.start);
        Ok(Self::new(path, display, prefix, options, Some(stream)))
    }

    /// Whether `path` names something only readable forward (`-`, a FIFO, a socket, a
    /// character device), which [`open_stream`](Self::open_stream) follows.
    pub fn is_stream(path: &Path) -> bool {
        use std::os::unix::fs::FileTypeExt;
        if path == Path::new("-") {
            // A regular file on standard input is read like any file, and followed.
            return crate::stdio::stdin_was_closed()
                || !rustix::fs::fstat(rustix::stdio::stdin()).is_ok_and(|st| {
                    rustix::fs::FileType::from_raw_mode(st.st_mode)
                        == rustix::fs::FileType::RegularFile
                });
        }
        std::fs::metadata(path).is_ok_and(|m| {
            let t = m.file_type();
            t.is_fifo() || t.is_socket() || t.is_char_device() || t.is_block_device()
        })
    }

    /// Gives the source its tailer's wake, for sources whose data arrives on their own
    /// (a stream's reader thread wakes the tailer with each chunk).
    pub(crate) fn attach(&mut self, wake: &Arc<Wake>) {
        if let Some(stream) = &mut self.stream {
            stream.start(Arc::clone(wake));
        }
    }

    /// Whether this is standard input or a FIFO (read forward by its own thread).
    pub fn is_streamed(&self) -> bool {
        self.stream.is_some()
    }

    /// A stream's poll: the chunks its reader thread has read.
    fn poll_stream(&mut self, out: &mut Vec<u8>, polled: &mut Polled) -> Result<(), SourceError> {
        let Some(stream) = &mut self.stream else {
            return Ok(());
        };
        stream
            .poll(
                &self.prefix,
                self.options.max_line,
                &self.marker,
                out,
                polled,
            )
            .map_err(|source| SourceError::Read {
                path: self.path.clone(),
                source,
            })
    }

    /// The followed path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether the file is open (with `follow_name`, a missing file is not, yet).
    pub fn is_open(&self) -> bool {
        self.current.is_some()
    }

    /// Why the file is not being read, if something stops it (with `retry`).
    pub fn trouble(&self) -> Option<&str> {
        self.trouble.as_deref()
    }

    /// Whether this file needs looking at on a timer even when inotify works: an old
    /// file still drained after a rotation (its writes come under another name), a file
    /// being retried, or a name gone that will be closed.
    pub fn needs_polling(&self) -> bool {
        self.stream.is_none()
            && (self.retired.is_some()
                || self.trouble.is_some()
                || ((self.options.close_when_gone
                    || (self.options.follow_name && !self.options.retry))
                    && self.gone_since.is_some()))
    }

    fn read_error(&self, source: io::Error) -> SourceError {
        SourceError::Read {
            path: self.path.clone(),
            source,
        }
    }

    /// Tells of a problem once; with `retry` the file is tried again later.
    fn troubled(&mut self, err: &io::Error, polled: &mut Polled) {
        let told = describe(&self.path, err);
        if self.trouble.as_deref() != Some(told.as_str()) {
            polled.notes.push(if self.current.is_some() {
                format!("{told}; still reading the open file, retrying")
            } else {
                format!("{told}; retrying")
            });
            self.trouble = Some(told);
        }
    }

    fn untroubled(&mut self, polled: &mut Polled) {
        if self.trouble.take().is_some() {
            polled.notes.push(format!(
                "{}: accessible again; following it",
                self.path.display()
            ));
        }
    }

    /// Reads whatever the file gained since the last poll and appends its complete
    /// lines to `out`.
    pub fn poll(&mut self, out: &mut Vec<u8>) -> Result<Polled, SourceError> {
        self.poll_with(out, true)
    }

    /// [`poll`](Self::poll), looking at the name (for a rotation) only when
    /// `name_may_have_changed`: a wake for a plain write needs just the read.
    pub fn poll_with(
        &mut self,
        out: &mut Vec<u8>,
        name_may_have_changed: bool,
    ) -> Result<Polled, SourceError> {
        let mut polled = Polled::default();
        if !self.pending.is_empty() || !self.pending_notes.is_empty() {
            polled.grew = !self.pending.is_empty();
            out.append(&mut self.pending);
            polled.notes.append(&mut self.pending_notes);
        }
        if self.stream.is_some() {
            self.poll_stream(out, &mut polled)?;
            return Ok(polled);
        }
        if self.gave_up {
            polled.closed = true;
            return Ok(polled);
        }
        if (self.options.follow_name && name_may_have_changed) || self.current.is_none() {
            match self.check_name(out, &mut polled) {
                Ok(Name::Followed) => {
                    self.gone_since = None;
                    if self.current.is_some() {
                        self.untroubled(&mut polled);
                    }
                }
                Ok(Name::Missing) => {
                    if self.gone_since.is_none() && self.options.follow_name {
                        polled.notes.push(format!(
                            "{}: has become inaccessible (no such file){}",
                            self.path.display(),
                            if self.current.is_some() {
                                "; still reading the open file"
                            } else {
                                ""
                            }
                        ));
                    }
                    self.gone_since.get_or_insert_with(Instant::now);
                }
                Ok(Name::Untailable) if self.options.follow_name && self.options.retry => {
                    // As GNU tail -F: said once, and the name is waited for.
                    let told = format!(
                        "{}: has been replaced with an untailable file (a directory); waiting for a file by that name",
                        self.path.display()
                    );
                    if self.trouble.as_deref() != Some(told.as_str()) {
                        polled.notes.push(told.clone());
                        self.trouble = Some(told);
                    }
                    self.gone_since.get_or_insert_with(Instant::now);
                }
                Ok(Name::Untailable) => {
                    self.give_up(
                        out,
                        &mut polled,
                        "has been replaced with an untailable file",
                    );
                    return Ok(polled);
                }
                Err(e) if self.options.retry => self.troubled(&e, &mut polled),
                Err(e) => return Err(self.read_error(e)),
            }
        }
        let (max_line, follow_name) = (self.options.max_line, self.options.follow_name);
        let Source {
            prefix,
            buf,
            retired,
            current,
            path,
            marker,
            copies_read,
            ..
        } = self;
        if let Some((old, last_grew)) = retired {
            let read = old
                .read_lines(prefix, buf, out, max_line, marker)
                .map_err(|source| SourceError::Read {
                    path: path.clone(),
                    source,
                })?;
            polled.grew |= read.grew;
            polled.more |= read.more;
            polled.cut += read.cut;
            if read.taken {
                *retired = None; // another source reads it now, from where we were
            } else if read.grew {
                *last_grew = Instant::now();
            } else if read.truncated || last_grew.elapsed() >= RETIRE_AFTER {
                old.flush_partial(prefix, out);
                *retired = None;
            }
        }
        if let Some(reader) = current {
            let read = reader
                .read_lines(prefix, buf, out, max_line, marker)
                .and_then(|read| {
                    if !read.truncated {
                        return Ok(read);
                    }
                    if follow_name {
                        recover_from_copy(
                            path,
                            reader,
                            copies_read,
                            prefix,
                            buf,
                            out,
                            &mut polled,
                        )?;
                    }
                    reader.flush_partial(prefix, out);
                    reader.offset = 0;
                    reader.fingerprint.clear();
                    reader.head.clear();
                    polled.notes.push(format!(
                        "{}: file truncated; reading it from the start",
                        path.display()
                    ));
                    reader.read_lines(prefix, buf, out, max_line, marker)
                });
            match read {
                Ok(read) if read.taken => {
                    // Our name led elsewhere, and the file is followed under its new
                    // name now; ours is looked at again.
                    *current = None;
                }
                Ok(read) => {
                    polled.grew |= read.grew;
                    polled.more |= read.more;
                    polled.cut += read.cut;
                }
                Err(e) if self.options.retry => self.troubled(&e, &mut polled),
                Err(e) => return Err(self.read_error(e)),
            }
        }
        let gone_long = self.retired.is_none()
            && !polled.grew
            && self
                .gone_since
                .is_some_and(|since| since.elapsed() >= RETIRE_AFTER);
        if gone_long && self.options.close_when_gone {
            if let Some(reader) = &mut self.current {
                reader.flush_partial(&self.prefix, out);
            }
            self.current = None;
            polled.closed = true;
            polled
                .notes
                .push(format!("{}: gone; drained and closed", self.path.display()));
        } else if gone_long && self.options.follow_name && !self.options.retry {
            // --follow=name without --retry: a name that is gone is not waited for.
            self.give_up(out, &mut polled, "is gone (no --retry)");
        }
        Ok(polled)
    }

    /// Stops following this name for good (a failure): drains what is open first.
    fn give_up(&mut self, out: &mut Vec<u8>, polled: &mut Polled, why: &str) {
        if let Some((mut old, _)) = self.retired.take() {
            let _ = old.read_lines(&self.prefix, &mut self.buf, out, usize::MAX, b"");
            old.flush_partial(&self.prefix, out);
        }
        if let Some(mut reader) = self.current.take() {
            let _ = reader.read_lines(&self.prefix, &mut self.buf, out, usize::MAX, b"");
            reader.flush_partial(&self.prefix, out);
        }
        self.gave_up = true;
        polled.closed = true;
        polled.gave_up = true;
        polled.notes.push(format!(
            "{}: {why}; giving up on this name",
            self.path.display()
        ));
    }

    /// With `follow_name` (or a file not open yet): notices the name pointing at a new
    /// file (rotation) or a missing file appearing.
    fn check_name(&mut self, out: &mut Vec<u8>, polled: &mut Polled) -> io::Result<Name> {
        let meta = match std::fs::metadata(&self.path) {
            Ok(meta) => meta,
            // Renamed away and not recreated yet: keep reading the open file.
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Name::Missing),
            Err(e) => return Err(e),
        };
        if meta.is_dir() {
            return Ok(Name::Untailable);
        }
        let id = (meta.dev(), meta.ino());
        if self.current.as_ref().is_some_and(|r| r.id == id) {
            return Ok(Name::Followed);
        }
        // A file opened for the first time starts where asked; a rotated one at 0.
        let first = self.current.is_none() && self.retired.is_none() && self.trouble.is_some();
        let start = if first {
            self.options.start
        } else {
            Start::Beginning
        };
        let mut reader = match Reader::open(&self.path, start) {
            Ok(reader) => reader,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Name::Missing),
            Err(e) if e.kind() == io::ErrorKind::IsADirectory => return Ok(Name::Untailable),
            Err(e) => return Err(e),
        };
        let preface = std::mem::take(&mut reader.preface);
        split_lines(&self.prefix, &mut reader.partial, &preface, out);
        if let Some(readers) = &self.readers
            && readers.claim(&mut reader, self.options.follow_name)?
        {
            polled.notes.push(format!(
                "{}: now names a file followed under another name; going on from where that was read up to",
                self.path.display()
            ));
        }
        self.opened = true;
        match self.current.replace(reader) {
            Some(old) => {
                // A second rotation before the first old file went quiet: finish it.
                if let Some((mut older, _)) = self.retired.take() {
                    loop {
                        let read = older.read_lines(
                            &self.prefix,
                            &mut self.buf,
                            out,
                            self.options.max_line,
                            &self.marker,
                        )?;
                        polled.cut += read.cut;
                        if !read.more {
                            break;
                        }
                    }
                    older.flush_partial(&self.prefix, out);
                }
                self.retired = Some((old, Instant::now()));
                polled.notes.push(format!(
                    "{}: replaced (rotated); following the new file",
                    self.path.display()
                ));
            }
            None if self.trouble.is_none() => polled
                .notes
                .push(format!("{}: appeared; following it", self.path.display())),
            None => {}
        }
        Ok(Name::Followed)
    }

    /// The final poll when tailing stops: reads what is left, then emits any unfinished
    /// last lines (with a newline) so that nothing read is lost.
    pub fn finish(&mut self, out: &mut Vec<u8>) -> Result<Polled, SourceError> {
        let mut polled = Polled::default();
        loop {
            let step = self.poll(out)?;
            polled.grew |= step.grew;
            polled.cut += step.cut;
            polled.notes.extend(step.notes);
            if !step.more {
                break;
            }
        }
        let prefix = &self.prefix;
        if let Some((old, _)) = &mut self.retired {
            old.flush_partial(prefix, out);
        }
        if let Some(reader) = &mut self.current {
            reader.flush_partial(prefix, out);
        }
        if let Some(stream) = &mut self.stream {
            stream.finish(prefix, out);
        }
        Ok(polled)
    }
}

/// `path: what went wrong`, for a note.
fn describe(path: &Path, err: &io::Error) -> String {
    let what = match err.kind() {
        io::ErrorKind::NotFound => "no such file",
        io::ErrorKind::PermissionDenied => "permission denied",
        _ => "cannot read it",
    };
    format!("{}: {what} ({err})", path.display())
}

/// On a truncation, reads what the file held past our offset from the copy a
/// `copytruncate` rotation made of it, so the lines written before the copy but not
/// yet read are not lost. Only lines written between the copy and the truncation,
/// which are in neither file, remain lost.
fn recover_from_copy(
    path: &Path,
    reader: &mut Reader,
    used: &mut Vec<(u64, u64)>,
    prefix: &[u8],
    buf: &mut [u8],
    out: &mut Vec<u8>,
    polled: &mut Polled,
) -> io::Result<()> {
    let Some((copy_path, copy)) = find_copy(path, reader, used) else {
        return Ok(());
    };
    let meta = copy.metadata()?;
    used.push((meta.dev(), meta.ino()));
    if used.len() > 8 {
        used.remove(0);
    }
    let mut copy = Reader {
        file: copy,
        id: (meta.dev(), meta.ino()),
        offset: reader.offset,
        partial: std::mem::take(&mut reader.partial),
        fingerprint: std::mem::take(&mut reader.fingerprint),
        head: Vec::new(),
        preface: Vec::new(),
        hold: None,
    };
    let before = copy.offset;
    loop {
        // No cutting here: a line finished in the copy is finished whole.
        let read = copy.read_lines(prefix, buf, out, usize::MAX, b"")?;
        if !read.more {
            break;
        }
    }
    reader.partial = std::mem::take(&mut copy.partial);
    polled.notes.push(format!(
        "{}: read the {} bytes it held past our offset from its copy {}",
        path.display(),
        copy.offset - before,
        copy_path.display()
    ));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    /// `name` in `dir` holding `contents`, followed by name and read once (the lines
    /// read are returned).
    fn followed(dir: &Path, name: &str, contents: &[u8]) -> (PathBuf, Source, Vec<u8>) {
        let path = dir.join(name);
        std::fs::write(&path, contents).unwrap();
        let options = FollowOptions {
            follow_name: true,
            ..FollowOptions::default()
        };
        let mut source = Source::open(&path, false, options).unwrap();
        let mut out = Vec::new();
        source.poll(&mut out).unwrap();
        (path, source, out)
    }

    #[test]
    fn split_lines_keeps_partial_lines_and_adds_prefixes() {
        let mut partial = Vec::new();
        let mut out = Vec::new();
        split_lines(b"", &mut partial, b"one\ntw", &mut out);
        assert_eq!(
            (out.as_slice(), partial.as_slice()),
            (&b"one\n"[..], &b"tw"[..])
        );
        split_lines(b"", &mut partial, b"o\nthree\n", &mut out);
        assert_eq!(out, b"one\ntwo\nthree\n");
        assert!(partial.is_empty());

        let mut out = Vec::new();
        split_lines(b"f: ", &mut partial, b"a", &mut out);
        split_lines(b"f: ", &mut partial, b"b\nc\nd", &mut out);
        assert_eq!(out, b"f: ab\nf: c\n");
        assert_eq!(partial, b"d");
    }

    #[test]
    fn a_partial_line_waits_for_its_end() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        let mut file = File::create(&path).unwrap();
        let mut source = Source::open(&path, false, FollowOptions::default()).unwrap();
        let mut out = Vec::new();
        file.write_all(b"hello ").unwrap();
        assert!(source.poll(&mut out).unwrap().grew);
        assert!(out.is_empty(), "held until complete");
        file.write_all(b"world\n").unwrap();
        source.poll(&mut out).unwrap();
        assert_eq!(out, b"hello world\n");
    }

    #[test]
    fn truncation_is_noticed_even_after_the_file_regrew_past_us() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        std::fs::write(&path, b"first line\nsecond line\n").unwrap();
        let mut source = Source::open(&path, false, FollowOptions::default()).unwrap();
        let mut out = Vec::new();
        source.poll(&mut out).unwrap();
        // Truncate and rewrite, longer than before, before the next poll.
        std::fs::write(&path, b"new content that is longer than the old one\n").unwrap();
        out.clear();
        let polled = source.poll(&mut out).unwrap();
        assert_eq!(out, b"new content that is longer than the old one\n");
        assert!(polled.notes[0].contains("truncated"), "{:?}", polled.notes);
    }

    #[test]
    fn rotation_drains_the_old_file_then_follows_the_new_one() {
        let dir = tempfile::tempdir().unwrap();
        let (path, mut source, mut out) = followed(dir.path(), "log", b"1\n");
        let mut old = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        old.write_all(b"2\n").unwrap();
        std::fs::rename(&path, dir.path().join("log.1")).unwrap();
        std::fs::write(&path, b"3\n").unwrap();
        old.write_all(b"late\n").unwrap(); // a writer that has not reopened yet
        source.poll(&mut out).unwrap();
        old.write_all(b"later\n").unwrap();
        source.poll(&mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        // Old file's lines in their order, the new file's too; none lost or doubled.
        let old_lines: Vec<&str> = lines.iter().copied().filter(|l| *l != "3").collect();
        assert_eq!(old_lines, ["1", "2", "late", "later"]);
        assert_eq!(lines.iter().filter(|l| **l == "3").count(), 1);
    }

    #[test]
    fn a_missing_file_is_awaited_when_following_the_name_with_retry() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("later.log");
        assert!(Source::open(&path, false, FollowOptions::default()).is_err());
        let by_name = FollowOptions {
            follow_name: true,
            ..FollowOptions::default()
        };
        // --follow=name without --retry: not awaited (GNU: "no files remaining").
        assert!(Source::open(&path, false, by_name).is_err());
        let options = FollowOptions {
            retry: true,
            ..by_name
        };
        let mut source = Source::open(&path, true, options).unwrap();
        assert!(!source.is_open());
        std::fs::write(&path, b"hi\n").unwrap();
        let mut out = Vec::new();
        let polled = source.poll(&mut out).unwrap();
        assert!(polled.notes[0].contains("appeared"));
        assert_eq!(out, format!("{}: hi\n", path.display()).as_bytes());
    }
    #[test]
    fn reading_past_the_end_is_short_not_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        std::fs::write(&path, b"0123456789").unwrap();
        let reader = Reader::open(&path, Start::Beginning).unwrap();
        assert_eq!(reader.read_up_to(4, 8).unwrap(), b"4567");
        assert_eq!(reader.read_up_to(6, 16).unwrap(), b"6789");
        assert_eq!(reader.read_up_to(12, 16).unwrap(), b"");
    }

    /// The race that dropped files in CI: a truncation landing between the length
    /// check and the fingerprint read made the read fail, and the file was given up.
    /// Before the fix this failed within about 0.1 s on a 2-core machine.
    #[test]
    fn truncations_racing_the_poll_never_make_the_file_fail() {
        use std::sync::atomic::{AtomicBool, Ordering};
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        std::fs::write(&path, b"").unwrap();
        let mut source = Source::open(&path, false, FollowOptions::default()).unwrap();
        let stop = AtomicBool::new(false);
        std::thread::scope(|scope| {
            let writer = scope.spawn(|| {
                let file = std::fs::OpenOptions::new()
                    .append(true)
                    .open(&path)
                    .unwrap();
                while !stop.load(Ordering::Relaxed) {
                    for _ in 0..50 {
                        (&file).write_all(b"event 00000\n").unwrap();
                    }
                    file.set_len(0).unwrap();
                }
            });
            let started = Instant::now();
            let mut out = Vec::new();
            let mut result = Ok(());
            while started.elapsed() < Duration::from_secs(1) {
                out.clear();
                if let Err(e) = source.poll(&mut out) {
                    result = Err(e);
                    break;
                }
            }
            stop.store(true, Ordering::Relaxed);
            writer.join().unwrap();
            result.unwrap();
        });
    }

    /// copytruncate: lines on disk but not read when the truncation came are read
    /// from the copy; only what was written between the copy and the truncation (in
    /// neither file) could be lost.
    #[test]
    fn a_copytruncate_rotation_reads_what_it_missed_from_the_copy() {
        let dir = tempfile::tempdir().unwrap();
        let (path, mut source, mut out) = followed(dir.path(), "app.log", b"1\n2\n3\n");
        assert_eq!(out, b"1\n2\n3\n");
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        file.write_all(b"4\n5\n").unwrap();
        // Decoys: a copy of something else, and a compressed copy.
        std::fs::write(dir.path().join("app.log.2"), b"old old old old\n9\n").unwrap();
        std::fs::write(dir.path().join("app.log.1.gz"), b"1\n2\n3\n4\n5\n").unwrap();
        std::fs::copy(&path, dir.path().join("app.log.1")).unwrap();
        file.set_len(0).unwrap();
        file.write_all(b"6\n").unwrap();
        out.clear();
        let polled = source.poll(&mut out).unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), "4\n5\n6\n");
        assert!(
            polled.notes.iter().any(|n| n.contains("from its copy")),
            "{:?}",
            polled.notes
        );
    }

    #[test]
    fn copy_names_are_what_rotation_tools_make() {
        assert!(is_copy_name(b"app.log.1", b"app.log"));
        assert!(is_copy_name(b"app.log-20261204", b"app.log"));
        assert!(!is_copy_name(b"app.log.1.gz", b"app.log"));
        assert!(!is_copy_name(b"app.logger", b"app.log"));
        assert!(!is_copy_name(b"app.log", b"app.log"));
    }

    #[test]
    fn the_last_lines_start_where_gnu_tail_starts_them() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        std::fs::write(&path, b"a\nb\nc\n").unwrap();
        let file = File::open(&path).unwrap();
        assert_eq!(last_lines_offset(&file, 6, 1).unwrap(), 4);
        assert_eq!(last_lines_offset(&file, 6, 3).unwrap(), 0);
        assert_eq!(last_lines_offset(&file, 6, 0).unwrap(), 6);
        assert_eq!(line_offset(&file, 6, 2).unwrap(), 2);
        assert_eq!(line_offset(&file, 6, 9).unwrap(), 6);
    }

    /// Many log lines end alike, so the last bytes read can match an older copy at the
    /// same offset: the copy must also begin as the file did.
    #[test]
    fn an_older_copy_whose_last_bytes_match_is_not_read() {
        let dir = tempfile::tempdir().unwrap();
        let (path, mut source, mut out) =
            followed(dir.path(), "app.log", b"gen2 line one xxxxxxxxxxxxxxxx\n");
        std::fs::write(
            dir.path().join("app.log.2"),
            b"gen1 line one xxxxxxxxxxxxxxxx\ngen1 line two xxxxxxxxxxxxxxxx\n",
        )
        .unwrap();
        let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        file.set_len(0).unwrap();
        (&file).write_all(b"gen3\n").unwrap();
        out.clear();
        source.poll(&mut out).unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), "gen3\n");
    }
}
