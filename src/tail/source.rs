//! One followed file: reading what it gains, cutting it into whole lines, and coping
//! with truncation and rotation. Every tailing design uses this one core.

use std::fs::File;
use std::io;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use thiserror::Error;

/// The most bytes one poll reads from one file before returning, so that one busy file
/// cannot starve the others (and a batch stays a reasonable size).
const MAX_BATCH: usize = 4 << 20;

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

/// How to follow a file.
#[derive(Clone, Copy, Debug, Default)]
pub struct FollowOptions {
    /// Start at the current end instead of the beginning.
    pub from_end: bool,
    /// Follow the *name*: reopen when the file is replaced (rotated), and wait for a
    /// missing file to appear.
    pub follow_name: bool,
}

/// What one poll found.
#[derive(Debug, Default)]
pub struct Polled {
    /// New bytes were read.
    pub grew: bool,
    /// The batch limit stopped the read: poll again without waiting.
    pub more: bool,
    /// Events worth telling the user about (a truncation, a rotation).
    pub notes: Vec<String>,
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
}

impl Reader {
    fn open(path: &Path, from_end: bool) -> io::Result<Self> {
        let file = File::open(path)?;
        let meta = file.metadata()?;
        let offset = if from_end { meta.len() } else { 0 };
        let mut reader = Reader {
            file,
            id: (meta.dev(), meta.ino()),
            offset,
            partial: Vec::new(),
            fingerprint: Vec::new(),
        };
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

    /// The bytes in `from..to`, or fewer if the file now ends before `to`. A file can
    /// be truncated between any two system calls, so running short is an answer, not
    /// an error: an error here would drop a file that is merely being rotated.
    fn read_up_to(&self, from: u64, to: u64) -> io::Result<Vec<u8>> {
        let mut bytes = vec![0; (to - from) as usize];
        let mut filled = 0;
        while filled < bytes.len() {
            match self
                .file
                .read_at(&mut bytes[filled..], from + filled as u64)
            {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        bytes.truncate(filled);
        Ok(bytes)
    }

    /// Whether the file was truncated: shorter than our offset, or no longer holding
    /// the bytes we last read just before it (truncated, then rewritten past us).
    fn truncated(&self) -> io::Result<bool> {
        let len = self.file.metadata()?.len();
        if len < self.offset {
            return Ok(true);
        }
        if self.fingerprint.is_empty() {
            return Ok(false);
        }
        // The file may be truncated after `metadata` too; then fewer bytes come back,
        // which differ from the fingerprint, and that is the right answer.
        let from = self.offset - self.fingerprint.len() as u64;
        Ok(self.read_up_to(from, self.offset)? != self.fingerprint)
    }

    /// Reads what the file gained; appends its complete lines to `out`.
    fn read_lines(
        &mut self,
        prefix: &[u8],
        buf: &mut [u8],
        out: &mut Vec<u8>,
    ) -> io::Result<(bool, bool)> {
        let mut total = 0;
        loop {
            let n = match self.file.read_at(buf, self.offset) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if n == 0 {
                return Ok((total > 0, false));
            }
            let data = &buf[..n];
            self.offset += n as u64;
            total += n;
            let keep = FINGERPRINT.min(n);
            let old = FINGERPRINT.saturating_sub(keep).min(self.fingerprint.len());
            self.fingerprint.drain(..self.fingerprint.len() - old);
            self.fingerprint.extend_from_slice(&data[n - keep..]);
            split_lines(prefix, &mut self.partial, data, out);
            if total >= MAX_BATCH {
                return Ok((true, true));
            }
        }
    }

    /// Emits an unfinished last line that will never be finished (its file was rotated
    /// or truncated, or tailing stops), with a newline added, so that nothing is lost.
    fn flush_partial(&mut self, prefix: &[u8], out: &mut Vec<u8>) {
        if !self.partial.is_empty() {
            out.extend_from_slice(prefix);
            out.append(&mut self.partial);
            out.push(b'\n');
        }
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
}

impl Source {
    /// Starts following `path`. With `--prefix`, every line is written as `path: line`.
    /// A missing file is an error, unless the name is followed (then it is awaited).
    pub fn open(path: &Path, prefix: bool, options: FollowOptions) -> Result<Self, SourceError> {
        let current = match Reader::open(path, options.from_end) {
            Ok(reader) => Some(reader),
            Err(e) if options.follow_name && e.kind() == io::ErrorKind::NotFound => None,
            Err(source) => {
                return Err(SourceError::Open {
                    path: path.to_owned(),
                    source,
                });
            }
        };
        Ok(Self {
            path: path.to_owned(),
            prefix: if prefix {
                format!("{}: ", path.display()).into_bytes()
            } else {
                Vec::new()
            },
            options,
            current,
            retired: None,
            buf: vec![0; 256 * 1024],
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

    fn read_error(&self, source: io::Error) -> SourceError {
        SourceError::Read {
            path: self.path.clone(),
            source,
        }
    }

    /// Reads whatever the file gained since the last poll and appends its complete
    /// lines to `out`.
    pub fn poll(&mut self, out: &mut Vec<u8>) -> Result<Polled, SourceError> {
        let mut polled = Polled::default();
        if self.options.follow_name {
            self.check_name(out, &mut polled)
                .map_err(|e| self.read_error(e))?;
        }
        let Source {
            prefix,
            buf,
            retired,
            current,
            path,
            ..
        } = self;
        if let Some((old, last_grew)) = retired {
            let (grew, more) =
                old.read_lines(prefix, buf, out)
                    .map_err(|source| SourceError::Read {
                        path: path.clone(),
                        source,
                    })?;
            polled.grew |= grew;
            polled.more |= more;
            if grew {
                *last_grew = Instant::now();
            } else if last_grew.elapsed() >= RETIRE_AFTER {
                old.flush_partial(prefix, out);
                *retired = None;
            }
        }
        if let Some(reader) = current {
            let truncated = reader.truncated().map_err(|source| SourceError::Read {
                path: path.clone(),
                source,
            })?;
            if truncated {
                reader.flush_partial(prefix, out);
                reader.offset = 0;
                reader.fingerprint.clear();
                polled.notes.push(format!(
                    "{}: file truncated; reading it from the start",
                    path.display()
                ));
            }
            let (grew, more) =
                reader
                    .read_lines(prefix, buf, out)
                    .map_err(|source| SourceError::Read {
                        path: path.clone(),
                        source,
                    })?;
            polled.grew |= grew;
            polled.more |= more;
        }
        Ok(polled)
    }

    /// With `follow_name`: notices the name pointing at a new file (rotation) or a
    /// missing file appearing.
    fn check_name(&mut self, out: &mut Vec<u8>, polled: &mut Polled) -> io::Result<()> {
        let meta = match std::fs::metadata(&self.path) {
            Ok(meta) => meta,
            // Renamed away and not recreated yet: keep reading the open file.
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e),
        };
        let id = (meta.dev(), meta.ino());
        if self.current.as_ref().is_some_and(|r| r.id == id) {
            return Ok(());
        }
        let reader = match Reader::open(&self.path, false) {
            Ok(reader) => reader,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()), // gone again
            Err(e) => return Err(e),
        };
        match self.current.replace(reader) {
            Some(old) => {
                // A second rotation before the first old file went quiet: finish it.
                if let Some((mut older, _)) = self.retired.take() {
                    older.read_lines(&self.prefix, &mut self.buf, out)?;
                    older.flush_partial(&self.prefix, out);
                }
                self.retired = Some((old, Instant::now()));
                polled.notes.push(format!(
                    "{}: replaced (rotated); following the new file",
                    self.path.display()
                ));
            }
            None => polled
                .notes
                .push(format!("{}: appeared; following it", self.path.display())),
        }
        Ok(())
    }

    /// The final poll when tailing stops: reads what is left, then emits any unfinished
    /// last lines (with a newline) so that nothing read is lost.
    pub fn finish(&mut self, out: &mut Vec<u8>) -> Result<Polled, SourceError> {
        let mut polled = Polled::default();
        loop {
            let step = self.poll(out)?;
            polled.grew |= step.grew;
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
        Ok(polled)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

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
        let path = dir.path().join("log");
        std::fs::write(&path, b"1\n").unwrap();
        let options = FollowOptions {
            follow_name: true,
            ..FollowOptions::default()
        };
        let mut source = Source::open(&path, false, options).unwrap();
        let mut out = Vec::new();
        source.poll(&mut out).unwrap();
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
    fn a_missing_file_is_awaited_when_following_the_name() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("later.log");
        assert!(Source::open(&path, false, FollowOptions::default()).is_err());
        let options = FollowOptions {
            follow_name: true,
            ..FollowOptions::default()
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
        let reader = Reader::open(&path, false).unwrap();
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
}
