//! Where the jobs' arguments come from, in GNU parallel's terms: standard input, `-a`
//! files, `:::` lists and `::::` files; records split by a delimiter (newline, NUL with
//! `-0`, any byte with `-d`) and into columns (`--colsep`); several sources combined
//! into their cartesian product, or paired (`:::+`, `--link`); and records grouped
//! into jobs (`-N`, `-n`, `-X`, `-m`).
//!
//! Arguments are bytes from end to end: a file name that is not UTF-8 reaches the job
//! as it was read. Memory stays bounded for the first input source, which is streamed
//! (a job list of any size on standard input starts jobs at once); the other sources of
//! a product are read whole first, as they must be, since each is walked many times.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, BufRead, BufReader};
use std::path::PathBuf;

use regex::bytes::Regex;
use thiserror::Error;

/// One input source.
#[derive(Clone, Debug)]
pub enum Source {
    /// Standard input (also `-a -` and `:::: -`).
    Stdin,
    /// A file read record by record (`-a FILE`, `:::: FILE`).
    File(PathBuf),
    /// Arguments given on the command line (`::: a b c`).
    List(Vec<Vec<u8>>),
}

impl Source {
    fn name(&self) -> String {
        match self {
            Source::Stdin => "standard input".into(),
            Source::File(path) => path.display().to_string(),
            Source::List(_) => "the ::: list".into(),
        }
    }
}

/// A source and how it joins the one before it.
#[derive(Clone, Debug)]
pub struct Input {
    /// Where the records come from.
    pub source: Source,
    /// `:::+` / `::::+`: paired with the previous source (the shorter one decides how
    /// many jobs there are), instead of multiplied with it.
    pub linked: bool,
}

/// How records are grouped into one job.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Grouping {
    /// One record per job (the default).
    One,
    /// Up to N records per job (`-N`, `-n`); 0: one record per job, with no values
    /// (GNU parallel's `-N0`: the command runs once per record, with none of it).
    Records(usize),
    /// As many records as fit on one command line (`-X`, `-m`); once the input has
    /// ended, what is left is spread evenly over the job slots, as GNU parallel does.
    Fill,
}

/// Everything about reading the input.
#[derive(Clone, Debug)]
pub struct InputOptions {
    /// The sources, in command-line order; none means standard input.
    pub inputs: Vec<Input>,
    /// `--link`: pair every source, the shorter ones wrapping around.
    pub link_all: bool,
    /// The byte that ends a record.
    pub delimiter: Vec<u8>,
    /// `--colsep` given: each column is trimmed of white space at both ends, as GNU
    /// parallel does (`--trim lr`).
    pub trim: bool,
    /// Set when a NUL byte was read with another delimiter than NUL: as in GNU
    /// parallel, it becomes the two characters `\0` (a NUL cannot be in an argument).
    pub nul_replaced: std::sync::Arc<std::sync::atomic::AtomicBool>,
    /// `--colsep`: split each record into columns.
    pub colsep: Option<Regex>,
    /// `--header :`: the first record of each source names its columns.
    pub header: bool,
    /// A record longer than this is not run; its job is reported unusable.
    pub max_record: usize,
    /// How records become jobs.
    pub grouping: Grouping,
    /// Job slots, for spreading the last records with [`Grouping::Fill`].
    pub slots: usize,
    /// With [`Grouping::Fill`], the argument bytes one job may hold.
    pub fill_bytes: usize,
    /// `-r`: records that are empty or only white space are skipped.
    pub skip_blank: bool,
    /// `-E STR`: a record equal to STR ends its source; it and the rest are not read.
    pub eof: Option<Vec<u8>>,
    /// `--csv`: records are CSV rows with this field separator (a quoted field may
    /// hold the separator, `""` for a quote, and newlines: such a record goes on to
    /// the next line). Used instead of `colsep`.
    pub csv: Option<u8>,
}

impl InputOptions {
    /// Newline-delimited standard input, one record per job, 1 MiB per record.
    pub fn new() -> Self {
        Self {
            inputs: Vec::new(),
            link_all: false,
            delimiter: b"\n".to_vec(),
            trim: false,
            nul_replaced: Default::default(),
            colsep: None,
            header: false,
            max_record: 1 << 20,
            csv: None,
            grouping: Grouping::One,
            slots: 1,
            fill_bytes: DEFAULT_FILL_BYTES,
            skip_blank: false,
            eof: None,
        }
    }
}

impl Default for InputOptions {
    fn default() -> Self {
        Self::new()
    }
}

/// The longest command line a `-X`/`-m` job gets, in bytes: GNU parallel's usable
/// length on Linux. It finds the longest command line the system runs (130,329 bytes
/// by its search, under the 131,072 a single argument may hold), keeps 3,000 for
/// wrapping and halves the rest, for remote jobs whose lines it encodes.
pub const DEFAULT_FILL_BYTES: usize = (130_329 - 3000) / 2;

/// One record's share of a job's command line.
pub type RecordCost = std::sync::Arc<dyn Fn(&[Vec<u8>]) -> usize + Send + Sync>;

/// What a job's command line costs for `-X`/`-m`: a fixed part, and each record's
/// share (see [`Template::fill_cost`](super::Template::fill_cost)).
#[derive(Clone)]
pub struct FillCost {
    /// The command's own text.
    pub base: usize,
    /// One record's share of the line.
    pub per_record: RecordCost,
}

impl Default for FillCost {
    /// Each value with a space and a pair of quotes.
    fn default() -> Self {
        Self {
            base: 0,
            per_record: std::sync::Arc::new(|values| values.iter().map(|v| v.len() + 3).sum()),
        }
    }
}

impl std::fmt::Debug for FillCost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FillCost")
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

/// The arguments of one job: `records` records of `columns` values each, flattened.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct JobArgs {
    /// Every value, record after record.
    pub values: Vec<Vec<u8>>,
    /// Values per record.
    pub columns: usize,
}

impl JobArgs {
    /// A job with one record.
    pub fn single(values: Vec<Vec<u8>>) -> Self {
        let columns = values.len();
        Self { values, columns }
    }

    /// The records, each a slice of `columns` values.
    pub fn records(&self) -> impl Iterator<Item = &[Vec<u8>]> {
        self.values.chunks(self.columns.max(1))
    }

    /// Every value, joined by `separator`, for tags and display.
    pub fn joined(&self, separator: &[u8]) -> Vec<u8> {
        self.values.join(separator)
    }
}

/// What the input failed with.
#[derive(Debug, Error)]
pub enum InputError {
    /// A source could not be opened or read.
    #[error("cannot read {name} (record {record})")]
    Read {
        /// Which source.
        name: String,
        /// The record being read, 1-based.
        record: usize,
        /// What failed.
        #[source]
        source: io::Error,
    },
    /// The sources held in memory (all but the first of a product, and every source
    /// of `--link`) passed [`MAX_HELD_RECORDS`] records or [`MAX_HELD_BYTES`] bytes.
    #[error(
        "{name} is held in memory (it is combined with every record of the sources before \
         it), and the held sources may hold at most {max_records} records and {max_bytes} in all"
    )]
    TooLarge {
        /// The source that passed the limit.
        name: String,
        /// The record limit.
        max_records: usize,
        /// The byte limit, in words.
        max_bytes: String,
    },
    /// A `--pipepart` file could not be opened.
    #[error("cannot open {name}")]
    Open {
        /// Which file.
        name: String,
        /// What failed.
        #[source]
        source: io::Error,
    },
    /// A `--pipepart` file could not be read where a part was being cut.
    #[error("cannot read {name} at byte {offset}")]
    Part {
        /// Which file.
        name: String,
        /// Where reading failed.
        offset: u64,
        /// What failed.
        #[source]
        source: io::Error,
    },
    /// A `--pipepart` input is not a file that can be cut (a pipe, a terminal).
    #[error("{name} is not a seekable file: --pipepart cuts regular files and block devices")]
    NotSeekable {
        /// Which input.
        name: String,
    },
    /// A `--header` source had no header record.
    #[error("{name} has no header record for --header")]
    NoHeader {
        /// Which source.
        name: String,
    },
}

/// A record of one source, or why it cannot be used (it was too long).
type Record = Result<Vec<Vec<u8>>, String>;

/// Reads one source record by record.
struct Reader {
    name: String,
    kind: ReaderKind,
    delimiter: Vec<u8>,
    max: usize,
    colsep: Option<Regex>,
    trim: bool,
    nul_replaced: std::sync::Arc<std::sync::atomic::AtomicBool>,
    number: usize,
    skip_blank: bool,
    eof: Option<Vec<u8>>,
    /// `-E`'s string was read: the source is over.
    ended: bool,
    csv: Option<u8>,
}

enum ReaderKind {
    Stream(Box<dyn BufRead + Send>),
    List(std::vec::IntoIter<Vec<u8>>),
}

impl Reader {
    fn open(source: &Source, options: &InputOptions) -> Result<Self, InputError> {
        let name = source.name();
        let kind = match source {
            Source::Stdin => ReaderKind::Stream(Box::new(BufReader::new(io::stdin()))),
            Source::File(path) => {
                let file = File::open(path).map_err(|source| InputError::Read {
                    name: name.clone(),
                    record: 0,
                    source,
                })?;
                ReaderKind::Stream(Box::new(BufReader::with_capacity(64 * 1024, file)))
            }
            // As in GNU parallel, a value holding the delimiter is several records.
            Source::List(values) => ReaderKind::List(
                values
                    .iter()
                    .flat_map(|v| split_records(v, &options.delimiter))
                    .collect::<Vec<_>>()
                    .into_iter(),
            ),
        };
        Ok(Self {
            name,
            kind,
            delimiter: options.delimiter.clone(),
            max: options.max_record,
            colsep: options.colsep.clone(),
            trim: options.trim,
            nul_replaced: options.nul_replaced.clone(),
            number: 0,
            skip_blank: options.skip_blank,
            eof: options.eof.clone(),
            ended: false,
            csv: options.csv,
        })
    }

    fn from_stream(name: &str, stream: Box<dyn BufRead + Send>, options: &InputOptions) -> Self {
        Self {
            name: name.to_owned(),
            kind: ReaderKind::Stream(stream),
            delimiter: options.delimiter.clone(),
            max: options.max_record,
            colsep: options.colsep.clone(),
            trim: options.trim,
            nul_replaced: options.nul_replaced.clone(),
            number: 0,
            skip_blank: options.skip_blank,
            eof: options.eof.clone(),
            ended: false,
            csv: options.csv,
        }
    }

    fn next(&mut self) -> Result<Option<Record>, InputError> {
        let Some(separator) = self.csv else {
            return self.next_plain();
        };
        // A CSV record goes on while a quoted field is open (an odd count of quotes).
        let mut record: Option<Vec<u8>> = None;
        loop {
            match self.next_plain()? {
                None => break,
                Some(Err(reason)) => return Ok(Some(Err(reason))),
                Some(Ok(mut columns)) => {
                    let line = columns.pop().unwrap_or_default();
                    let whole = match record.take() {
                        Some(mut open) => {
                            open.extend_from_slice(&self.delimiter);
                            open.extend_from_slice(&line);
                            open
                        }
                        None => line,
                    };
                    if bytecount_quotes(&whole).is_multiple_of(2) {
                        record = Some(whole);
                        break;
                    }
                    record = Some(whole);
                }
            }
        }
        Ok(record.map(|line| {
            csv_fields(&line, separator).ok_or_else(|| {
                format!(
                    "record {} of {} is not valid CSV; not run: {}",
                    self.number,
                    self.name,
                    crate::lines::excerpt(&String::from_utf8_lossy(&line), 80)
                )
            })
        }))
    }

    fn next_plain(&mut self) -> Result<Option<Record>, InputError> {
        let raw = loop {
            if self.ended {
                return Ok(None);
            }
            let raw = match &mut self.kind {
                ReaderKind::List(values) => values.next().map(Ok),
                ReaderKind::Stream(stream) => {
                    read_record(stream.as_mut(), &self.delimiter, self.max).map_err(|source| {
                        InputError::Read {
                            name: self.name.clone(),
                            record: self.number + 1,
                            source,
                        }
                    })?
                }
            };
            if let Some(Ok(bytes)) = &raw {
                // -E: the end-of-file string ends this source, unread and unrun.
                if self.eof.as_deref() == Some(bytes.as_slice()) {
                    self.ended = true;
                    return Ok(None);
                }
                // -r: blank records are skipped.
                if self.skip_blank && bytes.trim_ascii().is_empty() {
                    self.number += 1;
                    continue;
                }
            }
            break raw;
        };
        let Some(raw) = raw else { return Ok(None) };
        self.number += 1;
        let raw = match raw {
            Ok(bytes) if self.delimiter != [0] && bytes.contains(&0) => {
                self.nul_replaced
                    .store(true, std::sync::atomic::Ordering::Relaxed);
                let mut replaced = Vec::with_capacity(bytes.len() + 8);
                for b in bytes {
                    match b {
                        0 => replaced.extend_from_slice(b"\\0"),
                        b => replaced.push(b),
                    }
                }
                Ok(replaced)
            }
            raw => raw,
        };
        Ok(Some(match raw {
            Ok(bytes) if self.csv.is_some() => Ok(vec![bytes]),
            Ok(bytes) => Ok(match &self.colsep {
                Some(re) => re
                    .split(&bytes)
                    .map(|c| if self.trim { c.trim_ascii() } else { c }.to_vec())
                    .collect(),
                None => vec![bytes],
            }),
            Err((head, len)) => Err(format!(
                "record {} of {} is {len} bytes, longer than --max-line-bytes {}; not run: {}",
                self.number,
                self.name,
                self.max,
                crate::lines::excerpt(&String::from_utf8_lossy(&head), 80)
            )),
        }))
    }

    /// Marks this reader as held in memory: past [`MAX_HELD_BYTES`] read (skipped
    /// over-long records included, so an endless one such as `/dev/zero` stops too),
    /// reading fails.
    fn hold(&mut self) {
        if let ReaderKind::Stream(stream) = &mut self.kind {
            let inner = std::mem::replace(stream, Box::new(io::empty()));
            *stream = Box::new(Capped {
                inner,
                left: MAX_HELD_BYTES,
            });
        }
    }

    fn read_all(mut self, held: &mut Held) -> Result<Vec<Record>, InputError> {
        self.hold();
        let mut all = Vec::new();
        while let Some(record) = self.next()? {
            held.add(&self.name, &record)?;
            all.push(record);
        }
        Ok(all)
    }
}

/// The most records the held sources (all but the first of a product, and every
/// source of `--link`) may hold in all: 1 Mi (about 150 bytes of memory each).
pub const MAX_HELD_RECORDS: usize = 1 << 20;

/// The most bytes of arguments the held sources may hold in all: 256 MiB.
pub const MAX_HELD_BYTES: u64 = 256 << 20;

/// A stream that fails once `left` bytes have been read from it.
struct Capped {
    inner: Box<dyn BufRead + Send>,
    left: u64,
}

impl io::Read for Capped {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let available = self.fill_buf()?;
        let n = available.len().min(buf.len());
        buf[..n].copy_from_slice(&available[..n]);
        self.consume(n);
        Ok(n)
    }
}

impl BufRead for Capped {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        let left = self.left;
        let available = self.inner.fill_buf()?;
        if left == 0 && !available.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::FileTooLarge,
                format!(
                    "it is held in memory (combined with every record of the sources before \
                     it), and held sources may be at most {}",
                    crate::limits::format_bytes(MAX_HELD_BYTES)
                ),
            ));
        }
        Ok(&available[..available
            .len()
            .min(usize::try_from(left).unwrap_or(usize::MAX))])
    }

    fn consume(&mut self, amount: usize) {
        self.left = self.left.saturating_sub(amount as u64);
        self.inner.consume(amount);
    }
}

/// What the held sources hold so far, against [`MAX_HELD_RECORDS`] and
/// [`MAX_HELD_BYTES`].
#[derive(Default)]
struct Held {
    records: usize,
    bytes: u64,
}

impl Held {
    fn add(&mut self, name: &str, record: &Record) -> Result<(), InputError> {
        self.records += 1;
        self.bytes += match record {
            Ok(values) => values.iter().map(|v| v.len() as u64 + 1).sum(),
            Err(reason) => reason.len() as u64,
        };
        if self.records > MAX_HELD_RECORDS || self.bytes > MAX_HELD_BYTES {
            return Err(InputError::TooLarge {
                name: name.to_owned(),
                max_records: MAX_HELD_RECORDS,
                max_bytes: crate::limits::format_bytes(MAX_HELD_BYTES),
            });
        }
        Ok(())
    }
}

/// A record's bytes, or the first bytes and the length of one that was too long.
type RawRecord = Result<Vec<u8>, (Vec<u8>, u64)>;

/// How many `"` a line holds.
fn bytecount_quotes(line: &[u8]) -> usize {
    memchr::memchr_iter(b'"', line).count()
}

/// A CSV row's fields (RFC 4180: a field in quotes may hold the separator, newlines
/// and `""` for a quote); `None` if it is malformed (text after a closing quote, or a
/// quote left open).
fn csv_fields(line: &[u8], separator: u8) -> Option<Vec<Vec<u8>>> {
    let mut fields = Vec::new();
    let mut field = Vec::new();
    let mut i = 0;
    loop {
        if line.get(i) == Some(&b'"') {
            // A quoted field: up to the quote not doubled.
            i += 1;
            loop {
                match line.get(i) {
                    None => return None,
                    Some(b'"') if line.get(i + 1) == Some(&b'"') => {
                        field.push(b'"');
                        i += 2;
                    }
                    Some(b'"') => {
                        i += 1;
                        break;
                    }
                    Some(&b) => {
                        field.push(b);
                        i += 1;
                    }
                }
            }
            match line.get(i) {
                None => {
                    fields.push(field);
                    return Some(fields);
                }
                Some(&b) if b == separator => {
                    fields.push(std::mem::take(&mut field));
                    i += 1;
                }
                Some(_) => return None,
            }
        } else {
            match memchr::memchr(separator, &line[i..]) {
                Some(at) => {
                    fields.push(line[i..i + at].to_vec());
                    i += at + 1;
                }
                None => {
                    fields.push(line[i..].to_vec());
                    return Some(fields);
                }
            }
        }
    }
}

/// `value` split into records at `delimiter`; a delimiter at its very end ends the
/// last record (it starts no empty one), as Perl's `split` has it.
fn split_records(value: &[u8], delimiter: &[u8]) -> Vec<Vec<u8>> {
    if delimiter.is_empty() || value.is_empty() {
        return vec![value.to_vec()];
    }
    let mut records = Vec::new();
    let mut rest = value;
    while let Some(i) = memchr::memmem::find(rest, delimiter) {
        records.push(rest[..i].to_vec());
        rest = &rest[i + delimiter.len()..];
    }
    if !rest.is_empty() {
        records.push(rest.to_vec());
    }
    records
}

/// Where the delimiter ends a record in `available`, given the `tail` of the bytes
/// before it (a delimiter of several bytes may straddle two reads): the bytes of
/// `available` before it (negative: the delimiter began in `tail`), and the bytes of
/// `available` up to its end.
fn find_delimiter(tail: &[u8], available: &[u8], delimiter: &[u8]) -> Option<(isize, usize)> {
    if let [byte] = delimiter {
        return memchr::memchr(*byte, available).map(|i| (i as isize, i + 1));
    }
    let window = [tail, available].concat();
    let pos = memchr::memmem::find(&window, delimiter)?;
    let start = pos as isize - tail.len() as isize;
    Some((start, pos + delimiter.len() - tail.len()))
}

/// Reads one record (without its delimiter). A record longer than `max` is skipped to
/// its end and comes back as `Err((first bytes, length))`, holding at most `max` bytes.
fn read_record(
    reader: &mut dyn BufRead,
    delimiter: &[u8],
    max: usize,
) -> io::Result<Option<RawRecord>> {
    let mut record = Vec::new();
    let mut too_long: Option<u64> = None;
    let mut seen_any = false;
    // The last bytes read, for a delimiter that straddles two reads.
    let mut tail: Vec<u8> = Vec::new();
    let keep = delimiter.len().saturating_sub(1);
    loop {
        let available = match reader.fill_buf() {
            Ok(available) => available,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if available.is_empty() {
            if !seen_any {
                return Ok(None);
            }
            break;
        }
        seen_any = true;
        let (take, used, complete, back) = match find_delimiter(&tail, available, delimiter) {
            Some((start, end)) if start >= 0 => (start as usize, end, true, 0),
            Some((start, end)) => (0, end, true, start.unsigned_abs()),
            None => (available.len(), available.len(), false, 0),
        };
        match &mut too_long {
            Some(len) => *len = (*len + take as u64).saturating_sub(back as u64),
            None if record.len() + take > max + back => {
                too_long = Some((record.len() + take - back) as u64);
                record.truncate(80);
            }
            None => {
                record.truncate(record.len() - back);
                record.extend_from_slice(&available[..take]);
            }
        }
        if too_long.is_some() && record.len() < 80 {
            let room = 80 - record.len();
            record.extend_from_slice(&available[..take.min(room)]);
        }
        if keep > 0 && !complete {
            tail.extend_from_slice(available);
            let cut = tail.len().saturating_sub(keep);
            tail.drain(..cut);
        }
        reader.consume(used);
        if complete {
            break;
        }
    }
    Ok(Some(match too_long {
        Some(len) => Err((record, len)),
        None => Ok(record),
    }))
}

/// The jobs' arguments, in order: an iterator over `Ok(job)` or `Err(reason)` for a
/// job that cannot run, ending early with an [`InputError`] if a source fails.
pub struct Jobs {
    /// The first group of sources, streamed.
    first: Group,
    /// The other groups, read whole: their records are walked once per earlier record.
    rest: Vec<Vec<Record>>,
    /// The record of the first group being combined with the rest, and where the walk
    /// over the rest stands.
    current: Option<(Record, Vec<usize>)>,
    grouping: Grouping,
    slots: usize,
    fill_bytes: usize,
    fill_cost: FillCost,
    /// Records read ahead for [`Grouping::Fill`], waiting to become jobs.
    pending: VecDeque<Record>,
    ended: bool,
    /// Records per job once the input has ended, with [`Grouping::Fill`].
    spread: Option<usize>,
    /// Column names from `--header`, in column order.
    names: Vec<String>,
    /// Whether the first group gave a record yet.
    first_seen: bool,
    /// Every other group was empty (each stands for one empty value; with an empty
    /// first group too there is no job at all).
    rest_all_empty: bool,
}

/// Sources paired with each other (`:::+`, `--link`).
struct Group {
    readers: Vec<Reader>,
    /// With `--link`, shorter sources wrap around: they are read whole.
    wrapped: Option<(Vec<Vec<Record>>, usize)>,
}

impl Group {
    fn next(&mut self) -> Result<Option<Record>, InputError> {
        if let Some((all, at)) = &mut self.wrapped {
            let longest = all.iter().map(Vec::len).max().unwrap_or(0);
            if *at >= longest || all.iter().any(Vec::is_empty) {
                return Ok(None);
            }
            let parts: Vec<&Record> = all
                .iter()
                .map(|records| &records[*at % records.len()])
                .collect();
            *at += 1;
            return Ok(Some(concat(parts.into_iter().cloned())));
        }
        let mut parts = Vec::with_capacity(self.readers.len());
        for reader in &mut self.readers {
            match reader.next()? {
                Some(record) => parts.push(record),
                None => return Ok(None),
            }
        }
        Ok(Some(concat(parts.into_iter())))
    }
}

/// The columns of several records side by side; unusable if any part is.
fn concat(parts: impl Iterator<Item = Record>) -> Record {
    let mut values = Vec::new();
    for part in parts {
        values.extend(part?);
    }
    Ok(values)
}

impl Jobs {
    /// Opens every source. `stdin` replaces standard input (for tests and embedding);
    /// with no sources, standard input (or `stdin`) is the only one.
    pub fn open(
        options: &InputOptions,
        stdin: Option<Box<dyn BufRead + Send>>,
    ) -> Result<Self, InputError> {
        let mut stdin = stdin;
        let default = [Input {
            source: Source::Stdin,
            linked: false,
        }];
        let inputs = if options.inputs.is_empty() {
            &default[..]
        } else {
            &options.inputs[..]
        };
        let mut readers = Vec::new();
        for input in inputs {
            let reader = match (&input.source, stdin.take()) {
                (Source::Stdin, Some(stream)) => {
                    Reader::from_stream("standard input", stream, options)
                }
                (source, taken) => {
                    stdin = taken;
                    Reader::open(source, options)?
                }
            };
            readers.push((reader, input.linked));
        }
        let mut names = Vec::new();
        if options.header {
            for (reader, _) in &mut readers {
                let Some(Ok(columns)) = reader.next()? else {
                    return Err(InputError::NoHeader {
                        name: reader.name.clone(),
                    });
                };
                // A header line ending in \r\n names its last column without the \r.
                names.extend(columns.iter().map(|c| {
                    String::from_utf8_lossy(c.strip_suffix(b"\r").unwrap_or(c)).into_owned()
                }));
            }
        }
        // Split into groups: `--link` makes one; `:::+` joins its predecessor's.
        let mut groups: Vec<Vec<Reader>> = Vec::new();
        for (reader, linked) in readers {
            match groups.last_mut() {
                Some(group) if linked || options.link_all => group.push(reader),
                _ => groups.push(vec![reader]),
            }
        }
        let mut held = Held::default();
        let groups: Vec<Result<Group, InputError>> = groups
            .into_iter()
            .map(|readers| {
                if options.link_all && readers.len() > 1 {
                    let all = readers
                        .into_iter()
                        .map(|reader| reader.read_all(&mut held))
                        .collect::<Result<Vec<_>, _>>()?;
                    Ok(Group {
                        readers: Vec::new(),
                        wrapped: Some((all, 0)),
                    })
                } else {
                    Ok(Group {
                        readers,
                        wrapped: None,
                    })
                }
            })
            .collect();
        let mut groups = groups.into_iter();
        let first = groups.next().unwrap_or(Ok(Group {
            readers: Vec::new(),
            wrapped: None,
        }))?;
        let mut rest = Vec::new();
        for group in groups {
            let mut group = group?;
            group.readers.iter_mut().for_each(Reader::hold);
            let mut records = Vec::new();
            while let Some(record) = group.next()? {
                let name = group
                    .readers
                    .first()
                    .map_or("the --link sources", |r| &r.name);
                held.add(name, &record)?;
                records.push(record);
            }
            rest.push(records);
        }
        // As in GNU parallel, an empty source among several is one empty value.
        let rest_all_empty = !rest.is_empty() && rest.iter().all(Vec::is_empty);
        for records in &mut rest {
            if records.is_empty() {
                records.push(Ok(vec![Vec::new()]));
            }
        }
        Ok(Self {
            first,
            rest,
            current: None,
            grouping: options.grouping,
            slots: options.slots.max(1),
            fill_bytes: options.fill_bytes.max(1),
            fill_cost: FillCost::default(),
            pending: VecDeque::new(),
            ended: false,
            spread: None,
            names,
            first_seen: false,
            rest_all_empty,
        })
    }

    /// Sets what a job's command line costs for `-X`/`-m` (once the command is known).
    pub fn set_fill_cost(&mut self, cost: FillCost) {
        self.fill_cost = cost;
    }

    /// Column names from `--header :`, in column order (empty without it).
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// The next record of the cartesian product: the first group varies slowest.
    fn next_record(&mut self) -> Result<Option<Record>, InputError> {
        loop {
            if let Some((record, at)) = &mut self.current {
                let record = record.clone();
                let parts = std::iter::once(record).chain(
                    at.iter()
                        .zip(&self.rest)
                        .map(|(&i, records)| records[i].clone()),
                );
                let combined = concat(parts);
                // Advance the odometer; the last source varies fastest.
                let mut carry = true;
                for (i, records) in at.iter_mut().zip(&self.rest).rev() {
                    *i += 1;
                    if *i < records.len() {
                        carry = false;
                        break;
                    }
                    *i = 0;
                }
                if carry {
                    self.current = None;
                }
                return Ok(Some(combined));
            }
            let record = match self.first.next()? {
                Some(record) => record,
                // An empty first source among others with values: one empty value.
                None if !self.first_seen && !self.rest.is_empty() && !self.rest_all_empty => {
                    Ok(vec![Vec::new()])
                }
                None => return Ok(None),
            };
            self.first_seen = true;
            self.current = Some((record, vec![0; self.rest.len()]));
        }
    }

    /// The next job.
    pub fn next_job(&mut self) -> Result<Option<Result<JobArgs, String>>, InputError> {
        let take = match self.grouping {
            Grouping::One => 1,
            Grouping::Records(n) => n.max(1),
            Grouping::Fill => {
                // Read ahead until one record more than fits, or the input ends. As in
                // GNU parallel, a line fits while it is shorter than the limit.
                let cost = self.fill_cost.clone();
                let size = |record: &Record| record.as_ref().map_or(0, |v| (cost.per_record)(v));
                let mut bytes: usize = cost.base + self.pending.iter().map(size).sum::<usize>();
                while !self.ended && bytes < self.fill_bytes {
                    match self.next_record()? {
                        Some(record) => {
                            bytes += size(&record);
                            self.pending.push_back(record);
                        }
                        None => self.ended = true,
                    }
                }
                if self.ended && bytes < self.fill_bytes {
                    // Spread what is left over the job slots, in equal jobs.
                    let slots = self.slots;
                    let left = self.pending.len();
                    *self
                        .spread
                        .get_or_insert_with(|| left.div_ceil(slots).max(1))
                } else {
                    self.pending.len().saturating_sub(1).max(1)
                }
            }
        };
        // Not sized by `take` (up to MAX_RECORDS_PER_JOB): the input may end first.
        let mut records = Vec::with_capacity(take.min(64));
        while records.len() < take {
            let record = match self.pending.pop_front() {
                Some(record) => record,
                None => match self.next_record()? {
                    Some(record) => record,
                    None => break,
                },
            };
            records.push(record);
        }
        if records.is_empty() {
            return Ok(None);
        }
        let mut job = JobArgs::default();
        for record in records {
            match record {
                Ok(values) => {
                    job.columns = values.len();
                    job.values.extend(values);
                }
                Err(reason) => return Ok(Some(Err(reason))),
            }
        }
        if self.grouping == Grouping::Records(0) {
            job = JobArgs::default();
        }
        Ok(Some(Ok(job)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(values: &[&str], linked: bool) -> Input {
        Input {
            source: Source::List(values.iter().map(|v| v.as_bytes().to_vec()).collect()),
            linked,
        }
    }

    fn all(options: &InputOptions, stdin: &'static [u8]) -> Vec<String> {
        let mut jobs = Jobs::open(options, Some(Box::new(stdin))).unwrap();
        let mut out = Vec::new();
        while let Some(job) = jobs.next_job().unwrap() {
            out.push(match job {
                Ok(job) => String::from_utf8(job.joined(b" ")).unwrap(),
                Err(reason) => format!("ERR {reason}"),
            });
        }
        out
    }

    #[test]
    fn lists_multiply_with_the_last_varying_fastest_and_link_pairs() {
        let mut options = InputOptions::new();
        options.inputs = vec![list(&["a", "b"], false), list(&["1", "2"], false)];
        assert_eq!(all(&options, b""), ["a 1", "a 2", "b 1", "b 2"]);
        options.inputs = vec![list(&["a", "b", "c"], false), list(&["1", "2"], true)];
        assert_eq!(all(&options, b""), ["a 1", "b 2"]);
        options.inputs[1].linked = false;
        options.link_all = true;
        assert_eq!(all(&options, b""), ["a 1", "b 2", "c 1"]);
    }

    /// A delimiter of several bytes is found wherever the reads cut it, and a lone
    /// first byte of it is data.
    #[test]
    fn blank_records_are_skipped_and_the_eof_string_ends_its_source() {
        let mut options = InputOptions::new();
        options.skip_blank = true;
        assert_eq!(all(&options, b"a\n \t\n\nb\n"), ["a", "b"]);
        options.skip_blank = false;
        options.eof = Some(b"END".to_vec());
        // Only a whole record ends it; each source ends on its own.
        assert_eq!(all(&options, b"xEND\nEND\nnever\n"), ["xEND"]);
        options.inputs = vec![list(&["a", "END", "b"], false), list(&["1", "2"], false)];
        assert_eq!(all(&options, b""), ["a 1", "a 2"]);
        // A skipped record still counts: the over-long one is named as record 3.
        options.eof = None;
        options.inputs.clear();
        options.skip_blank = true;
        options.max_record = 4;
        let reported = all(&options, b" \nok\ntoolong\n");
        assert_eq!(reported[0], "ok");
        assert!(reported[1].starts_with("ERR record 3 of "), "{reported:?}");
    }

    #[test]
    fn a_delimiter_of_several_bytes_straddles_reads() {
        for capacity in 1..6 {
            let mut input = io::BufReader::with_capacity(capacity, &b"ab\r\ncd\re\r\n\r\nf"[..]);
            let mut records = Vec::new();
            while let Some(record) = read_record(&mut input, b"\r\n", 100).unwrap() {
                records.push(record.unwrap());
            }
            assert_eq!(
                records,
                [&b"ab"[..], b"cd\re", b"", b"f"],
                "capacity {capacity}"
            );
        }
        assert_eq!(split_records(b"a,b,", b","), [b"a".to_vec(), b"b".to_vec()]);
        assert_eq!(split_records(b"", b","), [Vec::<u8>::new()]);
    }

    #[test]
    fn csv_fields_follow_rfc_4180() {
        let f = |line: &str| {
            csv_fields(line.as_bytes(), b',').map(|fields| {
                fields
                    .into_iter()
                    .map(|f| String::from_utf8(f).unwrap())
                    .collect::<Vec<_>>()
            })
        };
        assert_eq!(f(r#"a,"b,c",d"#).unwrap(), ["a", "b,c", "d"]);
        assert_eq!(
            f("\"multi\nline\",x,\"q\"\"uote\"").unwrap(),
            ["multi\nline", "x", "q\"uote"]
        );
        assert_eq!(f("a,,").unwrap(), ["a", "", ""]);
        assert_eq!(f(r#""""#).unwrap(), [""]);
        assert!(f(r#""open"#).is_none());
        assert!(f(r#""a"b,c"#).is_none());
    }

    #[test]
    fn records_split_on_the_delimiter_and_columns_on_colsep() {
        let mut options = InputOptions::new();
        options.delimiter = vec![0];
        assert_eq!(all(&options, b"a\nb\0c"), ["a\nb", "c"]);
        options.delimiter = b"\n".to_vec();
        options.colsep = Some(Regex::new(",").unwrap());
        let mut jobs = Jobs::open(&options, Some(Box::new(&b"x,y\n"[..]))).unwrap();
        let job = jobs.next_job().unwrap().unwrap().unwrap();
        assert_eq!(job, JobArgs::single(vec![b"x".to_vec(), b"y".to_vec()]));
    }

    #[test]
    fn a_record_past_the_limit_is_reported_and_the_next_is_read() {
        let mut options = InputOptions::new();
        options.max_record = 4;
        let out = all(&options, b"ok\n0123456789\nnext\n");
        assert_eq!(out[0], "ok");
        assert!(
            out[1].starts_with("ERR record 2 of standard input is 10 bytes"),
            "{out:?}"
        );
        assert!(out[1].contains("\"0123456789\""), "{out:?}");
        assert_eq!(out[2], "next");
    }

    #[test]
    fn grouping_takes_n_records_or_spreads_the_last_over_the_slots() {
        let mut options = InputOptions::new();
        options.grouping = Grouping::Records(2);
        assert_eq!(all(&options, b"a\nb\nc\n"), ["a b", "c"]);
        options.grouping = Grouping::Fill;
        options.slots = 4;
        assert_eq!(
            all(&options, b"1\n2\n3\n4\n5\n6\n7\n"),
            ["1 2", "3 4", "5 6", "7"]
        );
        options.fill_bytes = 9; // two 1-byte records, counted as 4 bytes each, fill a job
        options.slots = 1;
        assert_eq!(all(&options, b"1\n2\n3\n4\n5\n"), ["1 2", "3 4", "5"]);
    }

    #[test]
    fn header_names_the_columns_and_is_not_a_job() {
        let mut options = InputOptions::new();
        options.header = true;
        options.inputs = vec![list(&["x", "a"], false), list(&["y", "1", "2"], false)];
        let jobs = Jobs::open(&options, None).unwrap();
        assert_eq!(jobs.names(), ["x", "y"]);
        assert_eq!(all(&options, b""), ["a 1", "a 2"]);
    }
}
