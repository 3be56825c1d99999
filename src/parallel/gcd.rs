//! The book's deliberately slow gcd, its ten pairs, and pairs files.

use std::fmt;
use std::io::BufRead;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use thiserror::Error;

use super::pool::Task;
use crate::lines::{LineError, excerpt};

/// The book's ten pairs.
pub const BOOK_PAIRS: [(u64, u64); 10] = [
    (1963309, 2265973),
    (2030677, 3814172),
    (1551645, 2229620),
    (2039045, 2020802),
    (1823712, 1924928),
    (2293129, 1020491),
    (1281238, 2273782),
    (3823812, 4237281),
    (3812741, 4729139),
    (1292391, 2123811),
];

/// The largest number a pairs file may hold: the kernel counts down from the smaller
/// number of a pair one step at a time, so larger numbers would run for hours.
pub const MAX_NUMBER: u64 = u32::MAX as u64;

/// The book's gcd: count down from `min(a, b)` until both divide. A benchmark kernel
/// for CPU-bound work, not a gcd library (Euclid's algorithm takes a few steps).
///
/// ```
/// use concur::parallel::gcd::slow_gcd;
///
/// assert_eq!(slow_gcd(1823712, 1924928), 32);
/// assert_eq!(slow_gcd(7, 7), 7);
/// ```
pub fn slow_gcd(a: u64, b: u64) -> u64 {
    let low = a.min(b);
    for i in (1..=low).rev() {
        if a.is_multiple_of(i) && b.is_multiple_of(i) {
            return i;
        }
    }
    // Unreachable for positive numbers: 1 divides both.
    1
}

/// One gcd to compute, as a pool task.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GcdTask(pub u64, pub u64);

impl fmt::Display for GcdTask {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "({}, {})", self.0, self.1)
    }
}

impl Task for GcdTask {
    type Output = u64;
    const NAME: &'static str = "gcd";

    fn run(&self) -> u64 {
        slow_gcd(self.0, self.1)
    }
}

/// A pairs file that cannot be used.
#[derive(Debug, Error)]
pub enum PairsError {
    /// The file could not be read.
    #[error("cannot read the pairs file {}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        #[source]
        source: std::io::Error,
    },
    /// A line is not a valid pair.
    #[error("{}:{line}: {reason}", path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        reason: String,
    },
    /// The file holds no pair at all (it is empty, or only comments).
    #[error("{}: no pairs", path.display())]
    Empty {
        /// The file.
        path: PathBuf,
    },
}

/// The longest line a pairs file may have. A pair needs about 25 bytes; the limit stops
/// a file such as `/dev/zero` from being read into memory whole.
pub const MAX_LINE: usize = 4096;

/// How many characters of a bad number an error quotes.
const QUOTE_MAX: usize = 40;

fn number(word: &str) -> Result<u64, String> {
    let n: u64 = word
        .parse()
        .map_err(|_| format!("{} is not a whole number", excerpt(word, QUOTE_MAX)))?;
    if n == 0 {
        return Err("0 has no divisors to count down from; numbers start at 1".into());
    }
    if n > MAX_NUMBER {
        return Err(format!(
            "{n} is too large for this benchmark kernel (at most {MAX_NUMBER})"
        ));
    }
    Ok(n)
}

/// One line of a pairs file: `Ok(None)` for a blank or comment line.
fn parse_line(raw: &str) -> Result<Option<(u64, u64)>, String> {
    let mut body = raw.split('#').next().unwrap_or("").trim();
    if body.is_empty() {
        return Ok(None);
    }
    // `(a, b)` and `(a, b),` as in a Python list; the parentheses must pair up.
    let opened = body.starts_with('(');
    if opened {
        body = body[1..].trim_start();
    }
    if let Some(rest) = body.strip_suffix(',') {
        body = rest.trim_end();
    }
    let closed = body.ends_with(')');
    if closed {
        body = body[..body.len() - 1].trim_end();
    }
    match (opened, closed) {
        (true, false) => return Err("unbalanced parentheses: `(` without `)`".into()),
        (false, true) => return Err("unbalanced parentheses: `)` without `(`".into()),
        _ => {}
    }
    if body.contains(['(', ')']) {
        return Err("one pair per line, in at most one pair of parentheses".into());
    }
    let words: Vec<&str> = body
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|w| !w.is_empty())
        .collect();
    match words.as_slice() {
        [a, b] => Ok(Some((number(a)?, number(b)?))),
        _ => Err(format!("expected two numbers, found {}", words.len())),
    }
}

/// Reads pairs, one per line: two numbers separated by spaces and/or a comma, optionally
/// in parentheses, as in `(1963309, 2265973)`. Blank lines and `#` comments are skipped;
/// a UTF-8 byte-order mark is ignored. Lines are read at most [`MAX_LINE`] bytes at a
/// time, and at most [`super::MAX_TASKS`] pairs are taken. An error gives the 1-based
/// line number and the reason; no pair at all is not an error here.
pub fn parse_pairs_from(input: impl BufRead) -> Result<Vec<(u64, u64)>, (usize, String)> {
    let mut input = input;
    let mut pairs = Vec::new();
    for number in 1.. {
        let line = match crate::lines::read_line(&mut input, MAX_LINE) {
            Ok(Some(line)) => line,
            Ok(None) => break,
            Err(LineError::TooLong { max }) => {
                return Err((number, format!("line longer than {max} bytes")));
            }
            Err(LineError::Io(e)) => return Err((number, format!("cannot read it: {e}"))),
        };
        let text = std::str::from_utf8(&line).map_err(|_| (number, "not UTF-8 text".to_owned()))?;
        let text = if number == 1 {
            text.strip_prefix('\u{feff}').unwrap_or(text)
        } else {
            text
        };
        if let Some(pair) = parse_line(text).map_err(|reason| (number, reason))? {
            if pairs.len() == super::MAX_TASKS {
                return Err((number, format!("more than {} pairs", super::MAX_TASKS)));
            }
            pairs.push(pair);
        }
    }
    Ok(pairs)
}

/// [`parse_pairs_from`] over a text.
pub fn parse_pairs(text: &str) -> Result<Vec<(u64, u64)>, (usize, String)> {
    parse_pairs_from(text.as_bytes())
}

/// Reads a pairs file; errors name the file and the line. A file with no pair at all
/// is an error too.
pub fn read_pairs(path: &Path) -> Result<Vec<(u64, u64)>, PairsError> {
    let file = std::fs::File::open(path).map_err(|source| PairsError::Read {
        path: path.to_owned(),
        source,
    })?;
    let pairs = parse_pairs_from(std::io::BufReader::new(file)).map_err(|(line, reason)| {
        PairsError::Invalid {
            path: path.to_owned(),
            line,
            reason,
        }
    })?;
    if pairs.is_empty() {
        return Err(PairsError::Empty {
            path: path.to_owned(),
        });
    }
    Ok(pairs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_books_pairs_and_their_gcds() {
        // Checked independently with Python's math.gcd.
        let expected = [1, 1, 5, 1, 32, 1, 14, 9, 1, 9];
        let got: Vec<u64> = BOOK_PAIRS.iter().map(|&(a, b)| slow_gcd(a, b)).collect();
        assert_eq!(got, expected);
    }

    #[test]
    fn pairs_files() {
        assert_eq!(
            parse_pairs("# the book\n(1963309, 2265973),\n12 18\n\n7,21\n"),
            Ok(vec![(1963309, 2265973), (12, 18), (7, 21)])
        );
        assert_eq!(
            parse_pairs("1 2\n3 x\n").unwrap_err(),
            (2, "\"x\" is not a whole number".into())
        );
        assert_eq!(
            parse_pairs("1 2 3\n").unwrap_err().1,
            "expected two numbers, found 3"
        );
        assert!(
            parse_pairs("0 5\n")
                .unwrap_err()
                .1
                .contains("numbers start at 1")
        );
        assert!(
            parse_pairs("5 99999999999\n")
                .unwrap_err()
                .1
                .contains("too large")
        );
    }

    #[test]
    fn what_hostile_or_odd_files_get() {
        // A byte-order mark, as Windows editors write, is not part of the first number.
        assert_eq!(parse_pairs("\u{feff}12 18\n"), Ok(vec![(12, 18)]));
        // Parentheses must pair up.
        for line in ["(1, 2", "1, 2)", "((1, 2)", "(1, 2))", "(1, (2)"] {
            let err = parse_pairs(line).unwrap_err();
            assert_eq!(err.0, 1, "{line}");
            assert!(err.1.contains("parenthes"), "{line}: {}", err.1);
        }
        assert_eq!(
            parse_pairs("(1, 2),\n( 3 , 4 )\n"),
            Ok(vec![(1, 2), (3, 4)])
        );
        // A long bad number is quoted by its first 40 characters; a 10 MB one stops at
        // the line limit, unquoted.
        let long = "9".repeat(4000);
        let err = parse_pairs(&format!("1 2\n7 x{long}\n")).unwrap_err();
        assert_eq!(err.0, 2);
        assert!(err.1.len() < 100, "{} bytes", err.1.len());
        assert!(err.1.ends_with("…\" is not a whole number"), "{}", err.1);
        let huge = "9".repeat(10 << 20);
        let err = parse_pairs(&format!("1 2\n7 {huge}\n")).unwrap_err();
        assert_eq!(err, (2, format!("line longer than {MAX_LINE} bytes")));
        // Nothing but comments is no error at this level (read_pairs refuses it).
        assert_eq!(parse_pairs("# nothing\n\n"), Ok(vec![]));
        // A line without end stops at the limit instead of filling memory.
        let zeros = std::io::BufReader::new(std::io::repeat(0));
        assert_eq!(
            parse_pairs_from(zeros).unwrap_err(),
            (1, format!("line longer than {MAX_LINE} bytes"))
        );
        let err = parse_pairs_from(&b"1 2\n\xff\xfe 3\n"[..]).unwrap_err();
        assert_eq!(err, (2, "not UTF-8 text".to_owned()));
    }
}
