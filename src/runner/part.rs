//! `--pipepart`: files cut into parts of whole records, each part one job's stdin.
//!
//! Unlike `--pipe`, no data passes through the runner: a part is a byte range of the
//! file, found by reading a few bytes around each cut, and the job's stdin is fed from
//! the page cache by `splice(2)` ([`FileRange`]). Cuts follow GNU parallel's rule: the
//! next cut is the first record boundary at or after the last cut plus the block size,
//! so parts are at least a block long (the last one may be shorter).

use std::collections::VecDeque;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::Arc;

use memchr::memmem;

use super::input::InputError;
use super::pipe::PipeOptions;
use crate::process::FileRange;

/// How big a part is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PartSize {
    /// About this many bytes (at least, up to the next record boundary).
    Bytes(u64),
    /// `--block -N`: the files' total size cut into N parts per job slot.
    PerSlot(u64),
}

/// What GNU parallel uses when `--block` is not given: 10 parts per job slot.
pub const DEFAULT_PART_SIZE: PartSize = PartSize::PerSlot(10);

/// How far past a candidate cut to read at once while looking for a boundary.
const WINDOW: usize = 128 * 1024;

/// The parts of some files, in order, one file after the other.
pub struct Parts {
    files: VecDeque<PathBuf>,
    options: PipeOptions,
    block: u64,
    current: Option<Cutting>,
}

/// The file being cut.
struct Cutting {
    name: String,
    file: Arc<File>,
    len: u64,
    /// The `--header`, fed before every part.
    head: Arc<[u8]>,
    /// Where the next part starts.
    next: u64,
}

impl Parts {
    /// Parts of `files` (each must be a regular file or a block device), `size` each,
    /// with `slots` job slots for [`PartSize::PerSlot`]. Fails, naming the file, if one
    /// is missing or cannot be cut (a pipe).
    pub fn new(
        files: Vec<PathBuf>,
        options: PipeOptions,
        size: PartSize,
        slots: usize,
    ) -> Result<Self, InputError> {
        let mut total = 0u64;
        for path in &files {
            total = total.saturating_add(open(path)?.1);
        }
        let block = match size {
            PartSize::Bytes(n) => n.max(1),
            // GNU parallel's: 1 + size / slots / N.
            PartSize::PerSlot(n) => 1 + total / slots.max(1) as u64 / n.max(1),
        };
        Ok(Self {
            files: files.into(),
            options,
            block,
            current: None,
        })
    }

    /// The size parts are cut at (at least; up to the next record boundary).
    pub fn block(&self) -> u64 {
        self.block
    }

    /// The next part, or `None` when every file is cut.
    pub fn next_part(&mut self) -> Result<Option<FileRange>, InputError> {
        loop {
            if let Some(cutting) = &self.current
                && cutting.next < cutting.len
            {
                let start = cutting.next;
                let end = self.cut(start)?;
                let cutting = self.current.as_mut().expect("checked above");
                cutting.next = end;
                let range = FileRange::new(Arc::clone(&cutting.file), start, end - start)
                    .with_head(Arc::clone(&cutting.head));
                return Ok(Some(range));
            }
            // This file is done (a file that is all header gives no part, as in GNU
            // parallel): on to the next.
            let Some(path) = self.files.pop_front() else {
                self.current = None;
                return Ok(None);
            };
            let (file, len) = open(&path)?;
            let name = path.display().to_string();
            let head = self.header(&file, &name)?;
            self.current = Some(Cutting {
                name,
                file: Arc::new(file),
                len,
                next: head.len() as u64,
                head: Arc::from(head),
            });
        }
    }

    /// The `--header` at the start of the file: what the regex matches there, looked
    /// for within the first block (at least 64 KiB).
    fn header(&self, file: &File, name: &str) -> Result<Vec<u8>, InputError> {
        let Some(regex) = &self.options.header else {
            return Ok(Vec::new());
        };
        let want = usize::try_from(self.block)
            .unwrap_or(usize::MAX)
            .clamp(64 * 1024, 1 << 26);
        let start = read_at(file, 0, want, name)?;
        let end = regex
            .find(&start)
            .filter(|m| m.start() == 0)
            .map_or(0, |m| m.end());
        Ok(start[..end].to_vec())
    }

    /// Where the part starting at `start` ends: the first record boundary at or after
    /// `start + block`, or the end of the file.
    fn cut(&self, start: u64) -> Result<u64, InputError> {
        let cutting = self.current.as_ref().expect("a file is being cut");
        let (len, file, name) = (cutting.len, &cutting.file, &cutting.name);
        let from = start.saturating_add(self.block);
        if from >= len {
            return Ok(len);
        }
        let (end, begin) = (&self.options.recend, &self.options.recstart);
        let mut separator = end.clone();
        separator.extend_from_slice(begin);
        if separator.is_empty() && self.options.regex.is_none() {
            // Records end anywhere.
            return Ok(from);
        }
        let mut buf = Vec::new();
        loop {
            let more = read_at(file, from + buf.len() as u64, WINDOW, name)?;
            let at_end = more.len() < WINDOW;
            buf.extend_from_slice(&more);
            let found = match &self.options.regex {
                Some(regex) => regex
                    .captures(&buf)
                    .and_then(|c| c.get(1))
                    .map(|m| m.start()),
                None => memmem::find(&buf, &separator).map(|i| i + end.len()),
            };
            if let Some(i) = found {
                return Ok((from + i as u64).min(len));
            }
            if at_end {
                return Ok(len);
            }
        }
    }
}

/// Opens a file to cut, with its size.
fn open(path: &std::path::Path) -> Result<(File, u64), InputError> {
    let name = path.display().to_string();
    // Checked before opening: opening a FIFO would wait for a writer.
    let kind = std::fs::metadata(path)
        .map_err(|source| InputError::Open {
            name: name.clone(),
            source,
        })?
        .file_type();
    use std::os::unix::fs::FileTypeExt;
    if !kind.is_file() && !kind.is_block_device() {
        return Err(InputError::NotSeekable { name });
    }
    let file = File::open(path).map_err(|source| InputError::Open {
        name: name.clone(),
        source,
    })?;
    let meta = file.metadata().map_err(|source| InputError::Open {
        name: name.clone(),
        source,
    })?;
    let len = if meta.file_type().is_block_device() {
        // A block device's size is where seeking to its end lands.
        use std::io::Seek;
        (&file)
            .seek(io::SeekFrom::End(0))
            .map_err(|source| InputError::Part {
                name: name.clone(),
                offset: 0,
                source,
            })?
    } else if meta.is_file() {
        meta.len()
    } else {
        return Err(InputError::NotSeekable { name });
    };
    Ok((file, len))
}

/// Up to `want` bytes of `file` from `offset` (fewer only at its end).
fn read_at(file: &File, offset: u64, want: usize, name: &str) -> Result<Vec<u8>, InputError> {
    let mut buf = vec![0u8; want];
    let mut got = 0;
    while got < want {
        match file.read_at(&mut buf[got..], offset + got as u64) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(source) => {
                return Err(InputError::Part {
                    name: name.to_owned(),
                    offset: offset + got as u64,
                    source,
                });
            }
        }
    }
    buf.truncate(got);
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    /// The parts of `data`, as (header + range) bytes, read back from the file.
    fn parts(data: &[u8], options: PipeOptions, size: PartSize) -> Vec<String> {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        file.write_all(data).unwrap();
        let mut parts = Parts::new(vec![file.path().to_owned()], options, size, 2).unwrap();
        let mut out = Vec::new();
        while let Some(part) = parts.next_part().unwrap() {
            let (offset, len) = part.span();
            let mut text = part_head(&part);
            text.push_str(
                std::str::from_utf8(&data[offset as usize..(offset + len) as usize]).unwrap(),
            );
            out.push(text);
        }
        out
    }

    fn part_head(part: &FileRange) -> String {
        String::from_utf8(part.head().to_vec()).unwrap()
    }
    #[test]
    fn a_cut_is_the_first_record_end_at_or_after_the_block() {
        let by = |n| PartSize::Bytes(n);
        let options = PipeOptions::default();
        // 4 bytes in: "b" at 4 is not an end; the next "\n" (at 5) is.
        assert_eq!(
            parts(b"aaa\nbb\ncc\nd\n", options.clone(), by(4)),
            ["aaa\nbb\n", "cc\nd\n"]
        );
        // A newline right at the candidate ends the part there.
        assert_eq!(
            parts(b"aaa\nbbb\n", options.clone(), by(3)),
            ["aaa\n", "bbb\n"]
        );
        // No end after the candidate: the rest is one part.
        assert_eq!(parts(b"aaaaaaa", options.clone(), by(2)), ["aaaaaaa"]);
        assert!(parts(b"", options, by(2)).is_empty());
    }

    #[test]
    fn every_byte_is_in_exactly_one_part_whole_records_only() {
        let data: Vec<u8> = (0..20_000u32)
            .flat_map(|i| format!("{i}\n").into_bytes())
            .collect();
        for size in [
            PartSize::Bytes(1),
            PartSize::Bytes(777),
            PartSize::PerSlot(3),
        ] {
            let out = parts(&data, PipeOptions::default(), size);
            assert!(out.iter().all(|p| p.ends_with('\n')), "{size:?}");
            assert_eq!(out.concat().as_bytes(), &data[..], "{size:?}");
            if size == PartSize::PerSlot(3) {
                // 2 slots × 3 parts each.
                assert_eq!(out.len(), 6);
            }
        }
    }

    #[test]
    fn record_starts_and_regexes_cut_between_records() {
        let fasta = PipeOptions {
            recend: Vec::new(),
            recstart: b">".to_vec(),
            ..PipeOptions::default()
        };
        assert_eq!(
            parts(b">a\nAC\n>b\nGT\n>c\n", fasta, PartSize::Bytes(1)),
            [">a\nAC\n", ">b\nGT\n", ">c\n"]
        );
        let regex = PipeOptions {
            regex: Some(PipeOptions::regexp("[;,]", "r").unwrap()),
            ..PipeOptions::default()
        };
        assert_eq!(
            parts(b"r1;r2,r3;", regex, PartSize::Bytes(1)),
            ["r1;", "r2,", "r3;"]
        );
    }

    #[test]
    fn the_header_is_fed_before_every_part() {
        let options = PipeOptions {
            header: Some(regex::bytes::Regex::new(".*\n").unwrap()),
            ..PipeOptions::default()
        };
        assert_eq!(
            parts(b"H\na\nb\n", options.clone(), PartSize::Bytes(1)),
            ["H\na\n", "H\nb\n"]
        );
        // A file that is all header has no part to run, as in GNU parallel.
        assert!(parts(b"H\n", options, PartSize::Bytes(1)).is_empty());
    }

    #[test]
    fn a_pipe_or_a_missing_file_is_refused_by_name() {
        let missing = Parts::new(
            vec!["/nonexistent/part".into()],
            PipeOptions::default(),
            PartSize::Bytes(1),
            1,
        );
        let err = missing.err().unwrap().to_string();
        assert!(err.contains("/nonexistent/part"), "{err}");
        let fifo = tempfile::tempdir().unwrap();
        let path = fifo.path().join("fifo");
        rustix::fs::mkfifoat(
            rustix::fs::CWD,
            &path,
            rustix::fs::Mode::RUSR | rustix::fs::Mode::WUSR,
        )
        .unwrap();
        let err = Parts::new(vec![path], PipeOptions::default(), PartSize::Bytes(1), 1)
            .err()
            .unwrap()
            .to_string();
        assert!(
            err.contains("fifo") && err.contains("not a seekable file"),
            "{err}"
        );
    }
}
