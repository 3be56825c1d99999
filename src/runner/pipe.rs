//! `--pipe`: standard input cut into blocks, each block one job's standard input.
//!
//! A block is about `--block` bytes, cut at a record boundary (after `--recend`,
//! before `--recstart`, or between the two when both are given), so no record is ever
//! split between two jobs; with `-N`, a block is N records instead. Blocks are read as
//! jobs can take them: the reader holds at most one block ahead, so memory stays near
//! (jobs running + jobs queued + 2) × block, whatever the input's size.

use std::io::{self, Read};

use memchr::memmem;

/// How to cut the input.
#[derive(Clone, Debug)]
pub struct PipeOptions {
    /// Bytes per block, about: the cut is at the last record boundary before it.
    pub block: usize,
    /// The string that ends a record (`\n` by default; may be empty with `recstart`).
    pub recend: Vec<u8>,
    /// The string that starts a record (none by default).
    pub recstart: Vec<u8>,
    /// With `-N`: records per block, instead of a size.
    pub records: Option<usize>,
    /// `--regexp`: the boundary is a match of this regex (see [`PipeOptions::regexp`]),
    /// and `recend`/`recstart` are not used.
    pub regex: Option<regex::bytes::Regex>,
    /// `--header REGEX`: what it matches at the start of the input is the header,
    /// given again at the start of every block.
    pub header: Option<regex::bytes::Regex>,
    /// `-r`: blocks of white space only are dropped.
    pub skip_blank: bool,
    /// `--group-by N`: a record is a run of lines whose column N (split at this regex)
    /// is the same, so a block never splits such a group.
    pub group_by: Option<(usize, regex::bytes::Regex)>,
    /// `-L N`: a record is N lines (newlines counted from the block's start), so a
    /// block holds a multiple of N lines; a last record of fewer lines is a block of
    /// its own, as in GNU parallel. (With `-N M` as well, `records` is M × N lines.)
    pub lines: Option<usize>,
}

impl PipeOptions {
    /// The boundary regex of `--regexp`: `recend` then `recstart`, both regexes; a
    /// block is cut between the two. Fails, naming the flags, if they do not compile.
    pub fn regexp(recend: &str, recstart: &str) -> Result<regex::bytes::Regex, String> {
        regex::bytes::Regex::new(&format!("(?:{recend})({recstart})")).map_err(|e| {
            format!("--recend {recend:?} and --recstart {recstart:?} are not a regex: {e}")
        })
    }
}

impl Default for PipeOptions {
    fn default() -> Self {
        Self {
            block: 1 << 20,
            recend: b"\n".to_vec(),
            recstart: Vec::new(),
            records: None,
            regex: None,
            header: None,
            skip_blank: false,
            lines: None,
            group_by: None,
        }
    }
}

/// A record longer than this many blocks is cut where it stands, so one endless
/// record cannot take all memory.
const MAX_BLOCKS_PER_RECORD: usize = 64;

/// Reads blocks of whole records.
pub struct Blocks {
    reader: Box<dyn Read + Send>,
    options: PipeOptions,
    /// Read but not yet handed out.
    buf: Vec<u8>,
    eof: bool,
    /// The header, once read (`None` before the first block).
    header: Option<Vec<u8>>,
}

impl Blocks {
    /// Blocks of `reader`.
    pub fn new(reader: Box<dyn Read + Send>, mut options: PipeOptions) -> Self {
        // An empty --recend and --recstart make every byte a record, as in GNU
        // parallel: `-N 2` is 2 bytes, and a block is cut at exactly --block bytes.
        options.block = options.block.max(1);
        Self {
            reader,
            options,
            buf: Vec::new(),
            eof: false,
            header: None,
        }
    }

    /// Reads the header (`--header`) before the first block: the regex's match at the
    /// very start of the input, looked for within the first block's bytes.
    fn read_header(&mut self) -> io::Result<Vec<u8>> {
        let Some(regex) = self.options.header.clone() else {
            return Ok(Vec::new());
        };
        self.fill(self.options.block.max(64 * 1024))?;
        let end = regex
            .find(&self.buf)
            .filter(|m| m.start() == 0)
            .map_or(0, |m| m.end());
        Ok(self.buf.drain(..end).collect())
    }

    /// Reads until `buf` holds `want` bytes or the input ends.
    fn fill(&mut self, want: usize) -> io::Result<()> {
        while self.buf.len() < want && !self.eof {
            let room = (want - self.buf.len()) as u64;
            // `read_to_end` reads into spare capacity without zeroing it first.
            match (&mut self.reader).take(room).read_to_end(&mut self.buf) {
                Ok(0) => self.eof = true,
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Where a block may end: after the last record boundary within `buf[..limit]`,
    /// else after the first one past it (a record longer than a block goes whole);
    /// with `-N`, after the Nth boundary. Never at 0.
    fn cut(&self, limit: usize) -> Option<usize> {
        if let Some((column, colsep)) = &self.options.group_by {
            let boundaries = group_starts(&self.buf, *column, colsep, self.eof);
            return pick(boundaries.into_iter(), self.options.records, limit);
        }
        if let Some(regex) = &self.options.regex {
            // Where recstart's group begins: after recend's match.
            let boundaries = regex
                .captures_iter(&self.buf)
                .filter_map(|c| c.get(1))
                .map(|m| m.start());
            return pick(boundaries, self.options.records, limit);
        }
        if let Some(lines) = self
            .options
            .lines
            .filter(|&n| n > 1 && self.options.records.is_none())
        {
            // Every Nth newline ends a record.
            let boundaries = memchr::memchr_iter(b'\n', &self.buf)
                .enumerate()
                .filter(|(i, _)| (i + 1) % lines == 0)
                .map(|(_, at)| at + 1);
            return pick(boundaries, None, limit);
        }
        let (end, start) = (&self.options.recend, &self.options.recstart);
        let mut separator = end.clone();
        separator.extend_from_slice(start);
        let mut boundaries = memmem::find_iter(&self.buf, &separator)
            .map(|at| at + end.len())
            .filter(|&p| p > 0);
        match self.options.records {
            Some(n) => boundaries.nth(n.max(1) - 1),
            None => {
                let window = &self.buf[..(limit + start.len()).min(self.buf.len())];
                memmem::rfind_iter(window, &separator)
                    .map(|at| at + end.len())
                    .find(|&p| p > 0 && p <= limit)
                    .or_else(|| boundaries.next())
            }
        }
    }

    /// The next block, or `None` at the end of the input.
    pub fn next_block(&mut self) -> io::Result<Option<Vec<u8>>> {
        let header = match &self.header {
            Some(header) => header.clone(),
            None => {
                let header = self.read_header()?;
                self.header.insert(header).clone()
            }
        };
        let mut block = self.next_body()?;
        while self.options.skip_blank && block.as_ref().is_some_and(|b| b.trim_ascii().is_empty()) {
            block = self.next_body()?;
        }
        Ok(block.map(|body| match header.is_empty() {
            true => body,
            false => [header, body].concat(),
        }))
    }

    /// The next block, without the header.
    fn next_body(&mut self) -> io::Result<Option<Vec<u8>>> {
        let block = self.options.block;
        let mut want = match self.options.records {
            Some(_) => block,
            None => block + self.options.recstart.len(),
        };
        loop {
            self.fill(want)?;
            if self.buf.is_empty() {
                return Ok(None);
            }
            let limit = match self.options.records {
                Some(_) => self.buf.len(),
                None => block.min(self.buf.len()),
            };
            let last = self.eof && self.options.records.is_none() && self.buf.len() <= block;
            let at = match self.cut(limit) {
                // -L: a last record of fewer than N lines is a block of its own.
                Some(at)
                    if last
                        && self.options.lines.is_some_and(|n| n > 1)
                        && self.options.records.is_none() =>
                {
                    Some(at)
                }
                // What is left fits one block: it is the last block.
                _ if last => Some(self.buf.len()),
                // A size block that is full, or an -N block: cut here.
                Some(at)
                    if self.options.records.is_some() || self.buf.len() >= block || self.eof =>
                {
                    Some(at)
                }
                _ if self.eof => Some(self.buf.len()),
                _ if self.buf.len() >= MAX_BLOCKS_PER_RECORD * block => Some(self.buf.len()),
                _ => None,
            };
            if let Some(at) = at {
                // The rest starts the next block, in a buffer with room for all of it.
                let mut next = Vec::with_capacity(want.max(self.buf.len() - at) + 64 * 1024);
                next.extend_from_slice(&self.buf[at..]);
                self.buf.truncate(at);
                return Ok(Some(std::mem::replace(&mut self.buf, next)));
            }
            // No boundary yet: one record is longer than a block; read on.
            want = self.buf.len() * 2;
        }
    }
}

/// Where each group of `--group-by` starts in `buf` (never at 0): the start of every
/// whole line whose key differs from the line before's. A last line without its
/// newline counts only at the end of the input (`eof`).
fn group_starts(buf: &[u8], column: usize, colsep: &regex::bytes::Regex, eof: bool) -> Vec<usize> {
    let key = |line: &[u8]| -> Vec<u8> {
        let line = line.strip_suffix(b"\n").unwrap_or(line);
        colsep.split(line).nth(column).unwrap_or_default().to_vec()
    };
    let mut starts = Vec::new();
    let mut previous: Option<Vec<u8>> = None;
    let mut at = 0;
    while at < buf.len() {
        let end = match memchr::memchr(b'\n', &buf[at..]) {
            Some(i) => at + i + 1,
            None if eof => buf.len(),
            None => break,
        };
        let this = key(&buf[at..end]);
        if previous.as_ref().is_some_and(|p| *p != this) {
            starts.push(at);
        }
        previous = Some(this);
        at = end;
    }
    starts
}

/// The cut among `boundaries` (ascending, none at 0): the Nth with `-N N`, else the
/// last within `limit`, else the first past it.
fn pick(
    boundaries: impl Iterator<Item = usize>,
    records: Option<usize>,
    limit: usize,
) -> Option<usize> {
    let mut boundaries = boundaries.filter(|&p| p > 0);
    match records {
        Some(n) => boundaries.nth(n.max(1) - 1),
        None => {
            let (mut within, mut first) = (None, None);
            for p in boundaries {
                first.get_or_insert(p);
                if p > limit {
                    break;
                }
                within = Some(p);
            }
            within.or(first)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blocks(input: &'static [u8], options: PipeOptions) -> Vec<String> {
        let mut blocks = Blocks::new(Box::new(input), options);
        let mut out = Vec::new();
        while let Some(b) = blocks.next_block().unwrap() {
            out.push(String::from_utf8(b).unwrap());
        }
        out
    }

    #[test]
    fn blocks_end_at_the_last_record_end_within_the_size() {
        let options = PipeOptions {
            block: 8,
            ..PipeOptions::default()
        };
        assert_eq!(
            blocks(b"aaa\nbbb\nccc\nd", options.clone()),
            ["aaa\nbbb\n", "ccc\nd"]
        );
        // A record longer than a block is passed whole.
        assert_eq!(
            blocks(b"0123456789abc\nx\n", options),
            ["0123456789abc\n", "x\n"]
        );
    }

    #[test]
    fn regex_boundaries_cut_between_recend_and_recstart() {
        let regex = |end, start| PipeOptions {
            regex: Some(PipeOptions::regexp(end, start).unwrap()),
            ..PipeOptions::default()
        };
        let by_one = |end, start| PipeOptions {
            records: Some(1),
            ..regex(end, start)
        };
        assert_eq!(
            blocks(b"r1;r2,r3;", by_one("[;,]", "")),
            ["r1;", "r2,", "r3;"]
        );
        assert_eq!(
            blocks(b"ab\nc\nab\nd\n", by_one("b\n", "c|d")),
            ["ab\n", "c\nab\n", "d\n"]
        );
        // By size: the last boundary within the block, else the first after it.
        let sized = PipeOptions {
            block: 6,
            ..regex("\n", "[a-c]")
        };
        assert_eq!(
            blocks(b"a1\nxx\nb2\nc3\nyy\n", sized),
            ["a1\nxx\n", "b2\n", "c3\nyy\n"]
        );
        assert!(PipeOptions::regexp("(", "").is_err());
    }

    #[test]
    fn the_header_starts_every_block_and_counts_as_no_record() {
        let options = PipeOptions {
            records: Some(2),
            header: Some(regex::bytes::Regex::new("(.*\n){2}").unwrap()),
            ..PipeOptions::default()
        };
        assert_eq!(
            blocks(b"H1\nH2\na\nb\nc\n", options.clone()),
            ["H1\nH2\na\nb\n", "H1\nH2\nc\n"]
        );
        // Only a match at the very start is a header.
        let later = PipeOptions {
            header: Some(regex::bytes::Regex::new("b\n").unwrap()),
            ..options
        };
        assert_eq!(blocks(b"a\nb\nc\n", later), ["a\nb\n", "c\n"]);
    }

    #[test]
    fn group_by_cuts_only_where_the_column_changes() {
        let by = |records, block| PipeOptions {
            block,
            records,
            group_by: Some((1, regex::bytes::Regex::new(",").unwrap())),
            ..PipeOptions::default()
        };
        let input = b"a,1\nb,1\nc,2\nd,2\ne,1\n";
        assert_eq!(
            blocks(input, by(Some(1), 1 << 20)),
            ["a,1\nb,1\n", "c,2\nd,2\n", "e,1\n"]
        );
        assert_eq!(
            blocks(input, by(None, 10)),
            ["a,1\nb,1\n", "c,2\nd,2\n", "e,1\n"]
        );
        assert_eq!(
            blocks(input, by(Some(2), 1 << 20)),
            ["a,1\nb,1\nc,2\nd,2\n", "e,1\n"]
        );
        // A last line without a newline is a line like the others.
        assert_eq!(blocks(b"a,1\nb,2", by(Some(1), 1 << 20)), ["a,1\n", "b,2"]);
    }

    #[test]
    fn l_lines_make_a_record_and_a_short_last_record_stands_alone() {
        let by = |lines, block| PipeOptions {
            block,
            lines: Some(lines),
            ..PipeOptions::default()
        };
        let ten = b"1\n2\n3\n4\n5\n6\n7\n8\n9\n10\n";
        assert_eq!(
            blocks(ten, by(3, 1 << 20)),
            ["1\n2\n3\n4\n5\n6\n7\n8\n9\n", "10\n"]
        );
        assert_eq!(
            blocks(ten, by(2, 5)),
            ["1\n2\n", "3\n4\n", "5\n6\n", "7\n8\n", "9\n10\n"]
        );
        // A record longer than a block goes whole.
        assert_eq!(blocks(b"1\n2\n3\n", by(3, 2)), ["1\n2\n3\n"]);
    }

    #[test]
    fn n_records_per_block_and_record_start_strings() {
        let by_two = PipeOptions {
            records: Some(2),
            ..PipeOptions::default()
        };
        assert_eq!(
            blocks(b"1\n2\n3\n4\n5\n", by_two),
            ["1\n2\n", "3\n4\n", "5\n"]
        );
        let bytes = PipeOptions {
            recend: Vec::new(),
            records: Some(2),
            ..PipeOptions::default()
        };
        assert_eq!(blocks(b"1\n2\n3", bytes), ["1\n", "2\n", "3"]);
        let fasta = PipeOptions {
            block: 4,
            recend: Vec::new(),
            recstart: b">".to_vec(),
            ..PipeOptions::default()
        };
        assert_eq!(blocks(b">a\nAC\n>b\nGT\n", fasta), [">a\nAC\n", ">b\nGT\n"]);
        let both = PipeOptions {
            block: 6,
            recend: b"END\n".to_vec(),
            recstart: b"BEGIN".to_vec(),
            ..PipeOptions::default()
        };
        assert_eq!(
            blocks(b"BEGIN 1 END\nBEGIN 2 END\n", both),
            ["BEGIN 1 END\n", "BEGIN 2 END\n"]
        );
    }

    #[test]
    fn every_byte_is_in_exactly_one_block() {
        let input: Vec<u8> = (0..50_000u32)
            .flat_map(|i| format!("{i}\n").into_bytes())
            .collect();
        let input: &'static [u8] = Box::leak(input.into_boxed_slice());
        let options = PipeOptions {
            block: 1000,
            ..PipeOptions::default()
        };
        let out = blocks(input, options);
        assert!(out.iter().all(|b| b.ends_with('\n') && b.len() <= 1000));
        assert_eq!(out.concat().as_bytes(), input);
    }
}
