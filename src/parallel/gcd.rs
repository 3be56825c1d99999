//! The book's deliberately slow gcd, its ten pairs, and pairs files.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use thiserror::Error;

use super::pool::Task;

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
}

fn number(word: &str) -> Result<u64, String> {
    let n: u64 = word
        .parse()
        .map_err(|_| format!("{word:?} is not a whole number"))?;
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

/// Parses pairs, one per line: two numbers separated by spaces and/or a comma, optionally
/// in parentheses, as in `(1963309, 2265973)`. Blank lines and `#` comments are skipped.
pub fn parse_pairs(text: &str) -> Result<Vec<(u64, u64)>, (usize, String)> {
    let mut pairs = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let inner = line.trim_start_matches('(').trim_end_matches([')', ',']);
        let words: Vec<&str> = inner
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|w| !w.is_empty())
            .collect();
        match words.as_slice() {
            [a, b] => {
                let a = number(a).map_err(|r| (i + 1, r))?;
                let b = number(b).map_err(|r| (i + 1, r))?;
                pairs.push((a, b));
            }
            _ => {
                return Err((
                    i + 1,
                    format!("expected two numbers, found {}", words.len()),
                ));
            }
        }
    }
    Ok(pairs)
}

/// Reads a pairs file; errors name the file and the line.
pub fn read_pairs(path: &Path) -> Result<Vec<(u64, u64)>, PairsError> {
    let text = std::fs::read_to_string(path).map_err(|source| PairsError::Read {
        path: path.to_owned(),
        source,
    })?;
    parse_pairs(&text).map_err(|(line, reason)| PairsError::Invalid {
        path: path.to_owned(),
        line,
        reason,
    })
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
}
