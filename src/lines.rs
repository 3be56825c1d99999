//! Reading lines from input nobody vouches for: sockets, pairs files, pattern files.
//!
//! Two hazards recur wherever concur reads text from outside:
//!
//! * **A line without end.** A client that sends a gigabyte without a newline, or a
//!   "file" that is `/dev/zero`, must not make concur buffer it all. [`read_line`] and
//!   [`read_line_async`] stop as soon as a line passes its limit, holding at most that
//!   many bytes.
//! * **Echoing input back.** An error message that quotes what it refused must not
//!   grow with it: 1,000 control bytes quoted whole become a 5 KB reply, and a 100 MB
//!   line a 100 MB log line. [`excerpt`] quotes a bounded, escaped prefix.
//!
//! Lines come back as bytes; each caller decides what a non-UTF-8 line means (a
//! protocol error for the guessing game, a line-numbered error for a pairs file, a
//! comment that may hold anything in a pattern file).

use std::io::{self, BufRead};

use thiserror::Error;
#[cfg(feature = "async")]
use tokio::io::{AsyncBufRead, AsyncBufReadExt};

/// Why no line could be read.
#[derive(Debug, Error)]
pub enum LineError {
    /// The line passed the limit before its newline; reading stopped there.
    #[error("line longer than {max} bytes")]
    TooLong {
        /// The limit, in bytes.
        max: usize,
    },
    /// The input failed.
    #[error(transparent)]
    Io(#[from] io::Error),
}

/// Moves bytes from `available` into `line` up to a newline. Returns how many bytes of
/// `available` were used and whether the line is complete.
fn scan(line: &mut Vec<u8>, available: &[u8], max: usize) -> Result<(usize, bool), LineError> {
    let (take, complete) = match available.iter().position(|&b| b == b'\n') {
        Some(i) => (i, true),
        None => (available.len(), false),
    };
    if line.len() + take > max {
        return Err(LineError::TooLong { max });
    }
    line.extend_from_slice(&available[..take]);
    Ok((take + usize::from(complete), complete))
}

/// Reads one line (without its newline) of at most `max` bytes; `Ok(None)` at the end
/// of the input. A last line without a newline still counts as a line.
///
/// ```
/// use concur::lines::{LineError, read_line};
///
/// let mut input = &b"12 18\n7, 21"[..];
/// assert_eq!(read_line(&mut input, 64).unwrap(), Some(b"12 18".to_vec()));
/// assert_eq!(read_line(&mut input, 64).unwrap(), Some(b"7, 21".to_vec()));
/// assert_eq!(read_line(&mut input, 64).unwrap(), None);
///
/// let mut zeros = std::io::BufReader::new(std::io::repeat(0));
/// assert!(matches!(read_line(&mut zeros, 4096), Err(LineError::TooLong { max: 4096 })));
/// ```
pub fn read_line(reader: &mut impl BufRead, max: usize) -> Result<Option<Vec<u8>>, LineError> {
    let mut line = Vec::new();
    loop {
        let available = match reader.fill_buf() {
            Ok(available) => available,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(LineError::Io(e)),
        };
        if available.is_empty() {
            return Ok((!line.is_empty()).then_some(line));
        }
        let (used, complete) = scan(&mut line, available, max)?;
        reader.consume(used);
        if complete {
            return Ok(Some(line));
        }
    }
}

/// The async form of [`read_line`] (with the `async` feature).
#[cfg(feature = "async")]
pub async fn read_line_async<R: AsyncBufRead + Unpin>(
    reader: &mut R,
    max: usize,
) -> Result<Option<Vec<u8>>, LineError> {
    let mut line = Vec::new();
    loop {
        let available = reader.fill_buf().await?;
        if available.is_empty() {
            return Ok((!line.is_empty()).then_some(line));
        }
        let (used, complete) = scan(&mut line, available, max)?;
        reader.consume(used);
        if complete {
            return Ok(Some(line));
        }
    }
}

/// `text` quoted and escaped as Rust's `{:?}` does, cut to its first `max` bytes (at a
/// character boundary) with `…` marking the cut. The result is at most about `6 × max`
/// bytes whatever the input (the longest escape, `\u{1f}`, is 6 bytes).
///
/// ```
/// use concur::lines::excerpt;
///
/// assert_eq!(excerpt("HELLO", 80), "\"HELLO\"");
/// assert_eq!(excerpt("abcdefgh", 4), "\"abcd…\"");
/// assert_eq!(excerpt("a\u{1}b", 80), "\"a\\u{1}b\"");
/// ```
pub fn excerpt(text: &str, max: usize) -> String {
    let mut end = text.len().min(max);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let mut quoted = format!("{:?}", &text[..end]);
    if end < text.len() {
        quoted.pop(); // the closing quote
        quoted.push_str("…\"");
    }
    quoted
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_limits_and_the_last_unterminated_line() {
        let mut input = io::BufReader::with_capacity(4, &b"NUMBER\nPARAMS 1 5\nlast"[..]);
        assert_eq!(read_line(&mut input, 64).unwrap().unwrap(), b"NUMBER");
        assert_eq!(read_line(&mut input, 64).unwrap().unwrap(), b"PARAMS 1 5");
        assert_eq!(read_line(&mut input, 64).unwrap().unwrap(), b"last");
        assert!(read_line(&mut input, 64).unwrap().is_none());

        let mut long = io::BufReader::new(&[b'x'; 100][..]);
        assert!(matches!(
            read_line(&mut long, 10),
            Err(LineError::TooLong { max: 10 })
        ));
        // Exactly the limit is fine.
        let mut exact = io::BufReader::new(&b"0123456789\n"[..]);
        assert_eq!(read_line(&mut exact, 10).unwrap().unwrap(), b"0123456789");
    }

    #[cfg(feature = "async")]
    #[tokio::test]
    async fn the_async_reader_agrees() {
        let mut input = tokio::io::BufReader::with_capacity(3, &b"REPORT Warmer\nNUMBER\n"[..]);
        assert_eq!(
            read_line_async(&mut input, 64).await.unwrap().unwrap(),
            b"REPORT Warmer"
        );
        assert_eq!(
            read_line_async(&mut input, 64).await.unwrap().unwrap(),
            b"NUMBER"
        );
        assert!(read_line_async(&mut input, 64).await.unwrap().is_none());
        let mut long = tokio::io::BufReader::new(&[b'y'; 50][..]);
        assert!(matches!(
            read_line_async(&mut long, 8).await,
            Err(LineError::TooLong { max: 8 })
        ));
    }

    #[test]
    fn excerpts_are_bounded_whatever_the_input() {
        let controls = "\u{1}".repeat(1000);
        let quoted = excerpt(&controls, 80);
        assert!(quoted.len() <= 6 * 80 + 8, "{} bytes", quoted.len());
        assert!(quoted.ends_with("…\""), "{quoted}");
        // A cut never splits a character.
        assert_eq!(excerpt("ééé", 3), "\"é…\"");
        assert_eq!(excerpt("", 80), "\"\"");
    }
}
