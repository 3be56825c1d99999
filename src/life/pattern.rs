//! Reading starting positions from files: the book's rows, plaintext `.cells`, RLE, and
//! Life 1.05 and 1.06.
//!
//! * **Rows** (the book's `str(grid)`): one line per row, `*` alive and `-` empty.
//! * **Plaintext** (`.cells`): `O` alive and `.` empty; lines starting with `!` are comments.
//! * **RLE** (`.rle`, the Life community's standard): `#` comment lines, a header
//!   `x = W, y = H[, rule = B3/S23]`, then runs such as `2o3b$` ending with `!`. The
//!   rule may be written `B3/S23`, `23/3` or `Life`; golly's bounded torus, as in
//!   `B3/S23:T72,72`, makes the grid that torus (concur's grid *is* a torus). Other
//!   bounded grids (a plane with dead edges, a Klein bottle, ...) are refused with why.
//! * **Life 1.06** (`#Life 1.06`): one `x y` pair per living cell.
//! * **Life 1.05** (`#Life 1.05`, `.lif`): blocks `#P x y` of `*`/`.` rows; `#N` or
//!   `#R 23/3` for Conway's rule.
//!
//! The format comes from the extension (`.rle`, `.cells`, `.lif`), else from the
//! content. Short rows are padded with empty cells. A UTF-8 byte-order mark is skipped,
//! and comment lines may hold any bytes (old files carry Latin-1 names); elsewhere a
//! byte that is not UTF-8 is an error with its line. Every error names the file, the
//! line and the reason.

use std::io::Read;
use std::path::{Path, PathBuf};

use thiserror::Error;

use super::grid::{Cell, Grid, GridError, MAX_CELLS};
use super::rule::Rule;

/// The file formats concur reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PatternFormat {
    /// The book's rows of `*` and `-`.
    Rows,
    /// Plaintext `.cells`: `O` and `.`, `!` comments.
    Plaintext,
    /// Run-length encoded `.rle`.
    Rle,
    /// Life 1.05: `#P x y` blocks of `*` and `.` rows.
    Life105,
    /// Life 1.06: one `x y` pair per living cell.
    Life106,
}

/// A pattern file that could not be used.
#[derive(Debug, Error)]
pub enum PatternError {
    /// The file could not be read.
    #[error("cannot read pattern file {}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        #[source]
        source: std::io::Error,
    },
    /// The file is larger than any pattern concur reads (a device such as
    /// `/dev/zero`, or the wrong file).
    #[error("{} is larger than {} MiB: not a pattern file", path.display(), max >> 20)]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// The limit, in bytes.
        max: u64,
    },
    /// The file's content is not a valid pattern.
    #[error("{}:{line}: {reason}", path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong there.
        reason: String,
    },
}

/// A parse failure inside a text, before it is tied to a file.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("line {line}: {reason}")]
pub struct ParseError {
    /// 1-based line number.
    pub line: usize,
    /// What is wrong there.
    pub reason: String,
}

impl ParseError {
    fn new(line: usize, reason: impl Into<String>) -> Self {
        Self {
            line,
            reason: reason.into(),
        }
    }
}

/// The largest pattern file read: far more than the largest grid's RLE, and a bound
/// for a "file" that never ends.
pub const MAX_FILE_BYTES: u64 = 128 << 20;

/// A pattern as read from a file: its grid, its format, whether the file fixed the
/// grid's size itself (golly's `:T` torus), where it sits on the plane, and its rule.
#[derive(Clone, Debug)]
pub struct Loaded {
    /// The pattern's cells: its bounding box, or its torus.
    pub grid: Grid,
    /// The format it was read as.
    pub format: PatternFormat,
    /// Whether the file gave the grid's size (an RLE rule with `:Tw,h`).
    pub torus: bool,
    /// The plane coordinates `(x, y)` of the grid's top-left cell, as Golly places the
    /// pattern: Life 1.05/1.06 at their own coordinates, RLE at its `#CXRLE Pos=x,y`,
    /// and anything else with its top-left cell at the origin.
    pub origin: (i64, i64),
    /// The rule the file names (Conway's if it names none).
    pub rule: Rule,
}

/// What a parser returns: the cells and what the file says about them.
#[derive(Clone, Debug)]
pub struct Parsed {
    /// The cells: the pattern's bounding box (or its whole torus).
    pub grid: Grid,
    /// Where the grid's top-left cell sits on the plane, if the file says.
    pub origin: Option<(i64, i64)>,
    /// The rule, if the file names one.
    pub rule: Option<Rule>,
    /// Golly's torus `(width, height)`, if the file gives one.
    pub torus: Option<(usize, usize)>,
}

impl Parsed {
    fn grid(grid: Grid) -> Self {
        Self {
            grid,
            origin: None,
            rule: None,
            torus: None,
        }
    }
}

/// Reads a pattern file, choosing the format from its extension or content.
pub fn load(path: &Path) -> Result<Grid, PatternError> {
    load_pattern(path).map(|loaded| loaded.grid)
}

/// Reads a pattern file, and says what it was.
pub fn load_pattern(path: &Path) -> Result<Loaded, PatternError> {
    let read_error = |source| PatternError::Read {
        path: path.to_owned(),
        source,
    };
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|file| file.take(MAX_FILE_BYTES + 1).read_to_end(&mut bytes))
        .map_err(read_error)?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(PatternError::TooLarge {
            path: path.to_owned(),
            max: MAX_FILE_BYTES,
        });
    }
    let invalid = |e: ParseError| PatternError::Invalid {
        path: path.to_owned(),
        line: e.line,
        reason: e.reason,
    };
    let text = decode(&bytes).map_err(invalid)?;
    let format = detect(path, &text);
    let parsed = parse_pattern(&text, format).map_err(invalid)?;
    Ok(Loaded {
        origin: parsed.origin.unwrap_or((0, 0)),
        rule: parsed.rule.unwrap_or_default(),
        torus: parsed.torus.is_some(),
        grid: parsed.grid,
        format,
    })
}

/// The file's bytes as text: without a byte-order mark, with comment lines (`#`, `!`)
/// decoded leniently, and any other line required to be UTF-8.
pub fn decode(bytes: &[u8]) -> Result<String, ParseError> {
    let bytes = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(bytes);
    if let Ok(text) = std::str::from_utf8(bytes) {
        return Ok(text.to_owned());
    }
    let mut text = String::with_capacity(bytes.len());
    for (i, line) in bytes.split_inclusive(|&b| b == b'\n').enumerate() {
        match std::str::from_utf8(line) {
            Ok(line) => text.push_str(line),
            Err(_) if line.trim_ascii_start().starts_with(b"#") || line.starts_with(b"!") => {
                text.push_str(&String::from_utf8_lossy(line));
            }
            Err(e) => {
                let bad = line[e.valid_up_to()];
                return Err(ParseError::new(
                    i + 1,
                    format!(
                        "not UTF-8 text: byte 0x{bad:02X} at column {}",
                        e.valid_up_to() + 1
                    ),
                ));
            }
        }
    }
    Ok(text)
}

/// Picks the format: `.rle`, `.cells` and `.lif` by extension, otherwise by the first
/// content line.
pub fn detect(path: &Path, text: &str) -> PatternFormat {
    let first = text.lines().map(str::trim).find(|l| !l.is_empty());
    let life = |l: &str| {
        if l.starts_with("#Life 1.06") {
            Some(PatternFormat::Life106)
        } else if l.starts_with("#Life 1.05") {
            Some(PatternFormat::Life105)
        } else {
            None
        }
    };
    if let Some(format) = first.and_then(life) {
        return format;
    }
    match path.extension().and_then(|e| e.to_str()) {
        Some(e) if e.eq_ignore_ascii_case("rle") => return PatternFormat::Rle,
        Some(e) if e.eq_ignore_ascii_case("cells") => return PatternFormat::Plaintext,
        Some(e) if e.eq_ignore_ascii_case("lif") || e.eq_ignore_ascii_case("life") => {
            return PatternFormat::Life105;
        }
        _ => {}
    }
    match first {
        Some(l) if l.starts_with('#') || l.starts_with("x ") || l.starts_with("x=") => {
            PatternFormat::Rle
        }
        Some(l) if l.starts_with('!') || l.contains(['O', '.']) => PatternFormat::Plaintext,
        _ => PatternFormat::Rows,
    }
}

/// Parses a pattern text in the given format.
///
/// ```
/// use concur::life::pattern::{parse, PatternFormat};
///
/// let glider = parse("#N Glider\nx = 3, y = 3, rule = B3/S23\nbob$2bo$3o!\n", PatternFormat::Rle).unwrap();
/// assert_eq!(glider.to_string(), "-*-\n--*\n***");
/// ```
pub fn parse(text: &str, format: PatternFormat) -> Result<Grid, ParseError> {
    parse_pattern(text, format).map(|parsed| parsed.grid)
}

/// Parses a pattern text in the given format, keeping its position, rule and torus.
pub fn parse_pattern(text: &str, format: PatternFormat) -> Result<Parsed, ParseError> {
    match format {
        PatternFormat::Rows => parse_grid_lines(text, None, ('*', '-')).map(Parsed::grid),
        PatternFormat::Plaintext => parse_grid_lines(text, Some('!'), ('O', '.')).map(Parsed::grid),
        PatternFormat::Rle => parse_rle(text),
        PatternFormat::Life105 => parse_life105(text),
        PatternFormat::Life106 => parse_life106(text),
    }
}

fn grid_error(line: usize, err: GridError) -> ParseError {
    ParseError::new(line, err.to_string())
}

/// Rows and plaintext share one shape: a character per cell, a line per row.
fn parse_grid_lines(
    text: &str,
    comment: Option<char>,
    (alive, empty): (char, char),
) -> Result<Grid, ParseError> {
    let mut rows: Vec<Vec<Cell>> = Vec::new();
    let mut last_line = 0;
    for (i, line) in text.lines().enumerate() {
        let number = i + 1;
        last_line = number;
        if comment.is_some_and(|c| line.starts_with(c)) {
            continue;
        }
        let line = line.trim_end();
        let mut row = Vec::with_capacity(line.len());
        for (col, ch) in line.chars().enumerate() {
            row.push(match ch {
                c if c == alive => Cell::Alive,
                c if c == empty => Cell::Empty,
                other => {
                    return Err(ParseError::new(
                        number,
                        format!(
                            "column {}: unexpected {other:?}; expected {alive:?} (alive) or {empty:?} (empty)",
                            col + 1
                        ),
                    ));
                }
            });
        }
        rows.push(row);
    }
    // Blank lines at the end are the file's trailing whitespace, not empty rows.
    while rows.last().is_some_and(Vec::is_empty) {
        rows.pop();
    }
    if rows.iter().all(Vec::is_empty) {
        return Err(ParseError::new(
            last_line.max(1),
            "the pattern has no cells",
        ));
    }
    Grid::from_rows(&rows).map_err(|e| grid_error(last_line, e))
}

fn parse_rle(text: &str) -> Result<Parsed, ParseError> {
    let mut lines = text.lines().enumerate().map(|(i, l)| (i + 1, l.trim()));
    let mut origin = None;
    let (header_line, header) = lines
        .by_ref()
        .find(|(_, l)| {
            if let Some(pos) = l.strip_prefix("#CXRLE").and_then(cxrle_pos) {
                origin = Some(pos);
            }
            !l.is_empty() && !l.starts_with('#')
        })
        .ok_or_else(|| ParseError::new(1, "missing the RLE header `x = W, y = H`"))?;
    let RleHeader {
        width,
        height,
        rule,
        torus,
    } = parse_rle_header(header).map_err(|r| ParseError::new(header_line, r))?;
    // Living runs as (row, first column, length). Like Golly, the header's size is a
    // hint: rows wider, or more of them, are read as written.
    let mut runs: Vec<(usize, usize, usize)> = Vec::new();
    let (mut wide, mut high) = (width, height);
    let (mut y, mut x) = (0usize, 0usize);
    let mut count: Option<usize> = None;
    let mut last_line = header_line;
    for (number, line) in lines {
        last_line = number;
        if line.starts_with('#') {
            continue;
        }
        for ch in line.chars() {
            match ch {
                '0'..='9' => {
                    let digit = ch as usize - '0' as usize;
                    let n = count
                        .unwrap_or(0)
                        .checked_mul(10)
                        .and_then(|n| n.checked_add(digit))
                        .ok_or_else(|| ParseError::new(number, "run count is too large"))?;
                    count = Some(n);
                }
                'b' | 'o' => {
                    let run = count.take().unwrap_or(1);
                    let end = x
                        .checked_add(run)
                        .filter(|&end| end <= MAX_CELLS)
                        .ok_or_else(|| {
                            ParseError::new(number, format!("row {} is too wide", y + 1))
                        })?;
                    if ch == 'o' && run > 0 {
                        runs.push((y, x, run));
                        wide = wide.max(end);
                        high = high.max(y + 1);
                    }
                    x = end;
                }
                '$' => {
                    y = y.saturating_add(count.take().unwrap_or(1));
                    x = 0;
                }
                '!' => {
                    if count.is_some() {
                        return Err(ParseError::new(
                            number,
                            "a run count must be followed by b, o or $",
                        ));
                    }
                    let mut grid = Grid::new(high.max(1), wide.max(1))
                        .map_err(|e| grid_error(header_line, e))?;
                    for &(y, x, n) in &runs {
                        for col in x..x + n {
                            grid.set_at(y, col, Cell::Alive);
                        }
                    }
                    let grid = match torus {
                        None => grid,
                        // The torus is the grid; where the pattern sits on it does not
                        // change how it runs, so it goes top-left as with --size.
                        Some((tw, th)) => Grid::embed(&grid, th, tw).map_err(|_| {
                            ParseError::new(
                                header_line,
                                format!(
                                    "the {}x{} pattern is larger than its {tw}x{th} torus",
                                    grid.width(),
                                    grid.height()
                                ),
                            )
                        })?,
                    };
                    return Ok(Parsed {
                        grid,
                        origin,
                        rule,
                        torus,
                    });
                }
                c if c.is_whitespace() => {}
                c if c.is_ascii_alphabetic() => {
                    return Err(ParseError::new(
                        number,
                        format!(
                            "state {c:?} is not supported; two-state patterns use b (empty) and o (alive)"
                        ),
                    ));
                }
                c => {
                    return Err(ParseError::new(
                        number,
                        format!("unexpected {c:?} in RLE data"),
                    ));
                }
            }
        }
    }
    Err(ParseError::new(
        last_line,
        "missing the closing `!`: is the file truncated?",
    ))
}

/// Golly's `#CXRLE Pos=x,y Gen=N` line: the position of the pattern's top-left cell.
fn cxrle_pos(rest: &str) -> Option<(i64, i64)> {
    let pos = rest
        .split_whitespace()
        .find_map(|w| w.strip_prefix("Pos="))?;
    let (x, y) = pos.split_once(',')?;
    Some((x.trim().parse().ok()?, y.trim().parse().ok()?))
}

/// An RLE header: the pattern's size, its rule, and golly's torus (width, height) if
/// it gives one.
struct RleHeader {
    width: usize,
    height: usize,
    rule: Option<Rule>,
    torus: Option<(usize, usize)>,
}

/// Parses `x = 3, y = 3, rule = B3/S23[:T72,72]`.
fn parse_rle_header(header: &str) -> Result<RleHeader, String> {
    // The rule comes last, and golly's torus suffix holds a comma of its own.
    let (fields, rule) = match header.find("rule") {
        Some(at) => (&header[..at], Some(&header[at + "rule".len()..])),
        None => (header, None),
    };
    let (mut width, mut height) = (None, None);
    for field in fields.split(',').filter(|f| !f.trim().is_empty()) {
        let (key, value) = field.split_once('=').ok_or_else(|| {
            format!(
                "expected `key = value` in the header, found {:?}",
                field.trim()
            )
        })?;
        let (key, value) = (key.trim(), value.trim());
        match key {
            "x" | "y" => {
                let n: usize = value
                    .parse()
                    .map_err(|_| format!("{key} = {value:?} is not a whole number"))?;
                if key == "x" {
                    width = Some(n);
                } else {
                    height = Some(n);
                }
            }
            other => return Err(format!("unknown header field {other:?}")),
        }
    }
    let (rule, torus) = match rule {
        Some(rule) => {
            let value = rule.trim_start().strip_prefix('=').ok_or_else(|| {
                format!(
                    "expected `rule = B3/S23` in the header, found {:?}",
                    rule.trim()
                )
            })?;
            let (rule, torus) = parse_rule(value.trim())?;
            (Some(rule), torus)
        }
        None => (None, None),
    };
    match (width, height) {
        (Some(width), Some(height)) => Ok(RleHeader {
            width,
            height,
            rule,
            torus,
        }),
        _ => Err("the header needs both x and y, as in `x = 3, y = 3`".to_owned()),
    }
}

/// Reads a rule (any B/S rule, in Golly's spellings) and golly's bounded-grid suffix:
/// `B3/S23:T72,72` is Conway's rule on a torus 72 wide and 72 high.
fn parse_rule(value: &str) -> Result<(Rule, Option<(usize, usize)>), String> {
    let (rule, bounds) = match value.split_once(':') {
        Some((rule, bounds)) => (rule.trim(), Some(bounds.trim())),
        None => (value.trim(), None),
    };
    let rule: Rule = rule
        .parse()
        .map_err(|e: super::rule::RuleError| e.to_string())?;
    let Some(bounds) = bounds else {
        return Ok((rule, None));
    };
    let mut chars = bounds.chars();
    let kind = chars.next().unwrap_or(' ').to_ascii_uppercase();
    let dims = chars.as_str();
    let what = match kind {
        'T' => None,
        'P' => Some("a plane whose edges are dead"),
        'K' => Some("a Klein bottle"),
        'C' => Some("a cross-surface"),
        'S' => Some("a sphere"),
        _ => return Err(format!("unknown bounded grid :{bounds}")),
    };
    if let Some(what) = what {
        return Err(format!(
            "bounded grid :{bounds} ({what}) is not supported: concur's grid is a torus, whose \
             edges wrap around; use :T{dims} for a torus of that size, or no suffix"
        ));
    }
    if dims.contains(['+', '-', '*']) {
        return Err(format!(
            "bounded grid :{bounds} is a shifted or twisted torus; concur supports plain tori (:T72,72)"
        ));
    }
    let (w, h) = dims.split_once(',').unwrap_or((dims, dims));
    let size = |n: &str| -> Result<usize, String> {
        match n.trim().parse::<usize>() {
            Ok(0) => Err(format!(
                "bounded grid :{bounds} is infinite in one direction; concur's torus is finite"
            )),
            Ok(n) => Ok(n),
            Err(_) => Err(format!(
                "bounded grid :{bounds} needs whole numbers, as in :T72,72"
            )),
        }
    };
    Ok((rule, Some((size(w)?, size(h)?))))
}

/// Living cells given by coordinates (with the line that gave each), placed in the
/// smallest grid that holds them.
fn grid_from_cells(
    cells: &[(usize, i64, i64)],
    last_line: usize,
    rule: Option<Rule>,
) -> Result<Parsed, ParseError> {
    let (Some(min_x), Some(max_x), Some(min_y), Some(max_y)) = (
        cells.iter().map(|c| c.1).min(),
        cells.iter().map(|c| c.1).max(),
        cells.iter().map(|c| c.2).min(),
        cells.iter().map(|c| c.2).max(),
    ) else {
        return Err(ParseError::new(
            last_line.max(1),
            "the pattern has no living cells",
        ));
    };
    let span = |lo: i64, hi: i64| usize::try_from(i128::from(hi) - i128::from(lo) + 1).ok();
    let (width, height) = match (span(min_x, max_x), span(min_y, max_y)) {
        (Some(w), Some(h)) => (w, h),
        _ => return Err(ParseError::new(last_line, "the cells are too far apart")),
    };
    let mut grid = Grid::new(height, width).map_err(|e| {
        let line = cells
            .iter()
            .find(|c| c.1 == max_x || c.2 == max_y)
            .map_or(last_line, |c| c.0);
        grid_error(line, e)
    })?;
    for &(_, x, y) in cells {
        // Within [min, max] by construction, so the offsets fit.
        grid.set_at((y - min_y) as usize, (x - min_x) as usize, Cell::Alive);
    }
    Ok(Parsed {
        grid,
        origin: Some((min_x, min_y)),
        rule,
        torus: None,
    })
}

fn coordinate(word: Option<&str>, line: usize) -> Result<i64, ParseError> {
    let word = word.ok_or_else(|| ParseError::new(line, "expected two whole numbers, x and y"))?;
    word.parse().map_err(|_| {
        ParseError::new(
            line,
            format!("{} is not a whole number", crate::lines::excerpt(word, 40)),
        )
    })
}

/// Life 1.06: `#` lines, then one `x y` per living cell.
fn parse_life106(text: &str) -> Result<Parsed, ParseError> {
    let mut cells = Vec::new();
    let mut last_line = 0;
    for (i, line) in text.lines().enumerate() {
        let number = i + 1;
        last_line = number;
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut words = line.split_whitespace();
        let x = coordinate(words.next(), number)?;
        let y = coordinate(words.next(), number)?;
        if words.next().is_some() {
            return Err(ParseError::new(
                number,
                "expected two whole numbers, x and y",
            ));
        }
        cells.push((number, x, y));
    }
    grid_from_cells(&cells, last_line, None)
}

/// Life 1.05: `#D` text, `#N` or `#R 23/3` for the rule, and blocks: `#P x y`, then rows
/// of `*` (alive) and `.` (empty) from that corner down.
fn parse_life105(text: &str) -> Result<Parsed, ParseError> {
    let mut cells = Vec::new();
    let mut named_rule = None;
    let (mut origin, mut row) = ((0i64, 0i64), 0i64);
    let mut last_line = 0;
    for (i, line) in text.lines().enumerate() {
        let number = i + 1;
        last_line = number;
        let line = line.trim_end();
        if let Some(rest) = line.strip_prefix("#P") {
            // A bare `#P` is the origin, as Golly reads it (its own acorn.lif has one).
            let mut words = rest.split_whitespace();
            origin = match words.next() {
                None => (0, 0),
                first => (
                    coordinate(first, number)?,
                    coordinate(words.next(), number)?,
                ),
            };
            row = 0;
            continue;
        }
        if let Some(rule) = line.strip_prefix("#R") {
            let rule: Rule = rule
                .trim()
                .parse()
                .map_err(|e: super::rule::RuleError| ParseError::new(number, e.to_string()))?;
            named_rule = Some(rule);
            continue;
        }
        if line.trim() == "#N" {
            named_rule = Some(Rule::CONWAY);
            continue;
        }
        if line.starts_with('#') {
            continue; // #Life, #D, #N, and others
        }
        for (col, ch) in line.chars().enumerate() {
            match ch {
                '*' => cells.push((number, origin.0 + col as i64, origin.1 + row)),
                '.' => {}
                other => {
                    return Err(ParseError::new(
                        number,
                        format!(
                            "column {}: unexpected {other:?}; expected '*' (alive) or '.' (empty)",
                            col + 1
                        ),
                    ));
                }
            }
        }
        row += 1;
    }
    grid_from_cells(&cells, last_line, named_rule)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_format_reads_the_book_glider() {
        let text = "---*-----\n----*----\n--***----\n---------\n---------\n";
        assert_eq!(parse(text, PatternFormat::Rows).unwrap(), Grid::glider());
    }

    #[test]
    fn plaintext_skips_comments_and_pads_rows() {
        let text = "!Name: Glider\n!\n.O\n..O\nOOO\n";
        let grid = parse(text, PatternFormat::Plaintext).unwrap();
        assert_eq!(grid.to_string(), "-*-\n--*\n***");
    }

    #[test]
    fn rle_runs_and_blank_rows() {
        let text = "x = 4, y = 4\n2o$$3bo$4o!";
        let grid = parse(text, PatternFormat::Rle).unwrap();
        assert_eq!(grid.to_string(), "**--\n----\n---*\n****");
    }

    #[test]
    fn rle_data_may_span_lines() {
        let text = "x = 3, y = 2\n3o\n$\nobo!\n";
        assert_eq!(
            parse(text, PatternFormat::Rle).unwrap().to_string(),
            "***\n*-*"
        );
    }

    #[test]
    fn errors_name_line_and_reason() {
        let err = parse("--*\n-x-\n", PatternFormat::Rows).unwrap_err();
        assert_eq!(err.line, 2);
        assert!(err.reason.contains("column 2: unexpected 'x'"), "{err}");

        // As in Golly, the header's size is a hint: wider rows and more rows are read.
        let wide = parse("x = 2, y = 1\n3o!", PatternFormat::Rle).unwrap();
        assert_eq!(wide.to_string(), "***");
        let tall = parse("x = 1, y = 1\n2$o!", PatternFormat::Rle).unwrap();
        assert_eq!(tall.to_string(), "-\n-\n*");

        let err = parse("x = 2, y = 1, rule = B2n3/S23\no!", PatternFormat::Rle).unwrap_err();
        assert!(err.reason.contains("non-totalistic"), "{err}");
        let err = parse("x = 2, y = 1, rule = 23/3/2\no!", PatternFormat::Rle).unwrap_err();
        assert!(err.reason.contains("Generations"), "{err}");
        let highlife =
            parse_pattern("x = 2, y = 1, rule = B36/S23\no!", PatternFormat::Rle).unwrap();
        assert_eq!(highlife.rule, Some("B36/S23".parse().unwrap()));

        let err = parse("x = 2, y = 1, rule = B3/S23:P72,72\no!", PatternFormat::Rle).unwrap_err();
        assert!(
            err.reason
                .contains(":P72,72 (a plane whose edges are dead) is not supported")
                && err.reason.contains("use :T72,72"),
            "{err}"
        );
        let err = parse("x = 2, y = 1, rule = B3/S23:T72,0\no!", PatternFormat::Rle).unwrap_err();
        assert!(err.reason.contains("infinite in one direction"), "{err}");

        let err = parse("x = 2, y = 2\no$o", PatternFormat::Rle).unwrap_err();
        assert!(err.reason.contains("missing the closing `!`"), "{err}");

        let err = parse("!only a comment\n", PatternFormat::Plaintext).unwrap_err();
        assert!(err.reason.contains("no cells"), "{err}");

        // An empty pattern (Golly writes one as x = 0, y = 0) is an empty cell.
        let empty = parse("x = 0, y = 0\n!", PatternFormat::Rle).unwrap();
        assert_eq!((empty.height(), empty.width(), empty.alive()), (1, 1, 0));
    }

    #[test]
    fn conways_rule_under_any_of_its_names_and_golly_tori() {
        for rule in ["B3/S23", "b3s23", "23/3", "Life", "S23/B3"] {
            let text = format!("x = 3, y = 1, rule = {rule}\n3o!");
            assert_eq!(
                parse(&text, PatternFormat::Rle).unwrap().to_string(),
                "***",
                "{rule}"
            );
        }
        // A glider on golly's 6x5 torus: the grid is the torus.
        let text = "#C on a bounded grid\nx = 3, y = 3, rule = B3/S23:T6,5\nbo$2bo$3o!\n";
        let grid = parse(text, PatternFormat::Rle).unwrap();
        assert_eq!((grid.height(), grid.width()), (5, 6));
        assert_eq!(grid.to_string(), "-*----\n--*---\n***---\n------\n------");
        let square = parse("x = 1, y = 1, rule = B3/S23:T4\no!", PatternFormat::Rle).unwrap();
        assert_eq!((square.height(), square.width()), (4, 4));
        let err = parse("x = 9, y = 1, rule = B3/S23:T4,4\n9o!", PatternFormat::Rle).unwrap_err();
        assert!(err.reason.contains("larger than its 4x4 torus"), "{err}");
    }

    #[test]
    fn byte_order_marks_and_latin1_comments() {
        let bom = b"\xef\xbb\xbfx = 3, y = 1, rule = B3/S23\n3o!\n";
        let text = decode(bom).unwrap();
        assert_eq!(detect(Path::new("a.rle"), &text), PatternFormat::Rle);
        assert_eq!(parse(&text, PatternFormat::Rle).unwrap().to_string(), "***");
        // "#O Zoë" in Latin-1: the comment is kept (lossily), the pattern read.
        let latin1 = b"#N Glider\n#O Zo\xeb\nx = 3, y = 1\n3o!\n";
        let text = decode(latin1).unwrap();
        assert_eq!(parse(&text, PatternFormat::Rle).unwrap().to_string(), "***");
        // Outside a comment, the byte is an error with its line and column.
        let err = decode(b"x = 3, y = 1\n3o\xeb!\n").unwrap_err();
        assert_eq!(
            (err.line, err.reason.as_str()),
            (2, "not UTF-8 text: byte 0xEB at column 3")
        );
    }

    #[test]
    fn life_105_and_106() {
        let glider106 = "#Life 1.06\n1 0\n2 1\n0 2\n1 2\n2 2\n";
        assert_eq!(
            detect(Path::new("g.lif"), glider106),
            PatternFormat::Life106
        );
        let grid = parse(glider106, PatternFormat::Life106).unwrap();
        assert_eq!(grid.to_string(), "-*-\n--*\n***");
        // Negative coordinates are fine: the box starts at the smallest.
        let shifted = parse("#Life 1.06\n-5 -5\n-3 -4\n", PatternFormat::Life106).unwrap();
        assert_eq!(shifted.to_string(), "*--\n--*");
        let glider105 = "#Life 1.05\n#D A glider\n#N\n#P -1 -1\n.*.\n..*\n***\n";
        assert_eq!(
            detect(Path::new("g.lif"), glider105),
            PatternFormat::Life105
        );
        assert_eq!(parse(glider105, PatternFormat::Life105).unwrap(), grid);
        // Two blocks, apart.
        let blocks = "#Life 1.05\n#R 23/3\n#P 0 0\n**\n#P 4 1\n*\n";
        assert_eq!(
            parse(blocks, PatternFormat::Life105).unwrap().to_string(),
            "**---\n----*"
        );
        let rule = parse_pattern("#Life 1.05\n#R 34/34\n*\n", PatternFormat::Life105).unwrap();
        assert_eq!(rule.rule, Some("B34/S34".parse().unwrap()));
        let err = parse("#Life 1.05\n#R 34/34/3\n*\n", PatternFormat::Life105).unwrap_err();
        assert_eq!(err.line, 2);
        // A bare #P is the origin, as in Golly's own acorn.lif.
        let acorn = "#Life 1.05\n#D Acorn\n#N\n#P\n.*\n...*\n**..***\n";
        let parsed = parse_pattern(acorn, PatternFormat::Life105).unwrap();
        assert_eq!((parsed.grid.alive(), parsed.origin), (7, Some((0, 0))));
        let err = parse("#Life 1.05\n#P 3\n*\n", PatternFormat::Life105).unwrap_err();
        assert_eq!(err.line, 2);
        let err = parse("#Life 1.06\n1 x\n", PatternFormat::Life106).unwrap_err();
        assert_eq!(
            (err.line, err.reason.as_str()),
            (2, "\"x\" is not a whole number")
        );
        let err = parse("#Life 1.06\n0 0\n1000000 1000000\n", PatternFormat::Life106).unwrap_err();
        assert!(err.reason.contains("larger than the limit"), "{err}");
        let err = parse("#Life 1.06\n", PatternFormat::Life106).unwrap_err();
        assert!(err.reason.contains("no living cells"), "{err}");
    }

    #[test]
    fn detection_by_extension_then_content() {
        let p = Path::new;
        assert_eq!(detect(p("a.RLE"), "***"), PatternFormat::Rle);
        assert_eq!(detect(p("a.cells"), "***"), PatternFormat::Plaintext);
        assert_eq!(detect(p("a.txt"), "x = 1, y = 1\no!"), PatternFormat::Rle);
        assert_eq!(detect(p("a"), "!c\n.O"), PatternFormat::Plaintext);
        assert_eq!(detect(p("a"), "-*-"), PatternFormat::Rows);
    }
}
