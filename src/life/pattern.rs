//! Reading starting positions from files: the book's rows, plaintext `.cells`, and RLE.
//!
//! * **Rows** (the book's `str(grid)`): one line per row, `*` alive and `-` empty.
//! * **Plaintext** (`.cells`): `O` alive and `.` empty; lines starting with `!` are comments.
//! * **RLE** (`.rle`, the Life community's standard): `#` comment lines, a header
//!   `x = W, y = H[, rule = B3/S23]`, then runs such as `2o3b$` ending with `!`.
//!
//! The format comes from the extension (`.rle`, `.cells`), else from the content. Short
//! rows are padded with empty cells. Every error names the file, the line and the reason.

use std::path::{Path, PathBuf};

use thiserror::Error;

use super::grid::{Cell, Grid, GridError};

/// The file formats concur reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PatternFormat {
    /// The book's rows of `*` and `-`.
    Rows,
    /// Plaintext `.cells`: `O` and `.`, `!` comments.
    Plaintext,
    /// Run-length encoded `.rle`.
    Rle,
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

/// Reads a pattern file, choosing the format from its extension or content.
pub fn load(path: &Path) -> Result<Grid, PatternError> {
    let text = std::fs::read_to_string(path).map_err(|source| PatternError::Read {
        path: path.to_owned(),
        source,
    })?;
    let format = detect(path, &text);
    parse(&text, format).map_err(|e| PatternError::Invalid {
        path: path.to_owned(),
        line: e.line,
        reason: e.reason,
    })
}

/// Picks the format: `.rle` and `.cells` by extension, otherwise by the first content line.
pub fn detect(path: &Path, text: &str) -> PatternFormat {
    match path.extension().and_then(|e| e.to_str()) {
        Some(e) if e.eq_ignore_ascii_case("rle") => return PatternFormat::Rle,
        Some(e) if e.eq_ignore_ascii_case("cells") => return PatternFormat::Plaintext,
        _ => {}
    }
    let first = text.lines().map(str::trim).find(|l| !l.is_empty());
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
    match format {
        PatternFormat::Rows => parse_grid_lines(text, None, ('*', '-')),
        PatternFormat::Plaintext => parse_grid_lines(text, Some('!'), ('O', '.')),
        PatternFormat::Rle => parse_rle(text),
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

fn parse_rle(text: &str) -> Result<Grid, ParseError> {
    let mut lines = text.lines().enumerate().map(|(i, l)| (i + 1, l.trim()));
    let (header_line, header) = lines
        .by_ref()
        .find(|(_, l)| !l.is_empty() && !l.starts_with('#'))
        .ok_or_else(|| ParseError::new(1, "missing the RLE header `x = W, y = H`"))?;
    let (width, height) = parse_rle_header(header).map_err(|r| ParseError::new(header_line, r))?;
    let mut grid = Grid::new(height, width).map_err(|e| grid_error(header_line, e))?;

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
                        .filter(|&end| end <= width)
                        .ok_or_else(|| {
                            ParseError::new(
                                number,
                                format!("row {} is wider than the header's x = {width}", y + 1),
                            )
                        })?;
                    if y >= height {
                        return Err(ParseError::new(
                            number,
                            format!("more rows than the header's y = {height}"),
                        ));
                    }
                    if ch == 'o' {
                        for col in x..end {
                            grid.set_at(y, col, Cell::Alive);
                        }
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
                    return Ok(grid);
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

/// Parses `x = 3, y = 3, rule = B3/S23` into (width, height).
fn parse_rle_header(header: &str) -> Result<(usize, usize), String> {
    let (mut width, mut height) = (None, None);
    for field in header.split(',') {
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
            "rule" => {
                let rule = value.to_ascii_uppercase();
                if rule != "B3/S23" && rule != "23/3" && rule != "S23/B3" {
                    return Err(format!(
                        "rule {value} is not supported; concur runs Conway's B3/S23"
                    ));
                }
            }
            other => return Err(format!("unknown header field {other:?}")),
        }
    }
    match (width, height) {
        (Some(w), Some(h)) => Ok((w, h)),
        _ => Err("the header needs both x and y, as in `x = 3, y = 3`".to_owned()),
    }
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

        let err = parse("x = 2, y = 1\n3o!", PatternFormat::Rle).unwrap_err();
        assert_eq!(
            (err.line, err.reason.as_str()),
            (2, "row 1 is wider than the header's x = 2")
        );

        let err = parse("x = 2, y = 1, rule = B36/S23\no!", PatternFormat::Rle).unwrap_err();
        assert!(err.reason.contains("B36/S23 is not supported"), "{err}");

        let err = parse("x = 2, y = 2\no$o", PatternFormat::Rle).unwrap_err();
        assert!(err.reason.contains("missing the closing `!`"), "{err}");

        let err = parse("x = 1, y = 1\n2$o!", PatternFormat::Rle).unwrap_err();
        assert!(
            err.reason.contains("more rows than the header's y = 1"),
            "{err}"
        );

        let err = parse("!only a comment\n", PatternFormat::Plaintext).unwrap_err();
        assert!(err.reason.contains("no cells"), "{err}");

        let err = parse("x = 0, y = 3\n!", PatternFormat::Rle).unwrap_err();
        assert!(err.reason.contains("at least 1 row and 1 column"), "{err}");
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
