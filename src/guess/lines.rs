//! Reading newline-terminated lines with a length limit, blocking and async.
//!
//! A line longer than the limit is an error as soon as the limit is passed, so a client
//! that sends a gigabyte without a newline, or stalls half-way through a line, holds at
//! most `max` bytes of server memory. Both readers share `scan`; they differ only in
//! how they refill the buffer.

use std::io::{self, BufRead};

use tokio::io::{AsyncBufRead, AsyncBufReadExt};

use super::protocol::ProtocolError;

/// Why no line could be read.
#[derive(Debug)]
pub enum ReadError {
    /// The line broke the protocol (too long, not UTF-8).
    Protocol(ProtocolError),
    /// The connection failed.
    Io(io::Error),
}

/// Moves bytes from `available` into `line` up to a newline. Returns how many bytes of
/// `available` were used and whether the line is complete.
fn scan(line: &mut Vec<u8>, available: &[u8], max: usize) -> Result<(usize, bool), ProtocolError> {
    let (take, complete) = match available.iter().position(|&b| b == b'\n') {
        Some(i) => (i, true),
        None => (available.len(), false),
    };
    if line.len() + take > max {
        return Err(ProtocolError::LineTooLong { max });
    }
    line.extend_from_slice(&available[..take]);
    Ok((take + usize::from(complete), complete))
}

fn finish(line: &[u8]) -> Result<String, ReadError> {
    std::str::from_utf8(line)
        .map(str::to_owned)
        .map_err(|_| ReadError::Protocol(ProtocolError::NotUtf8))
}

/// Reads one line (without its newline) of at most `max` bytes; `Ok(None)` at the end
/// of the stream. A last line without a newline still counts as a line.
pub fn read_line(reader: &mut impl BufRead, max: usize) -> Result<Option<String>, ReadError> {
    let mut line = Vec::new();
    loop {
        let available = match reader.fill_buf() {
            Ok(available) => available,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(ReadError::Io(e)),
        };
        if available.is_empty() {
            return if line.is_empty() {
                Ok(None)
            } else {
                finish(&line).map(Some)
            };
        }
        let (used, complete) = scan(&mut line, available, max).map_err(ReadError::Protocol)?;
        reader.consume(used);
        if complete {
            return finish(&line).map(Some);
        }
    }
}

/// The async form of [`read_line`].
pub async fn read_line_async<R: AsyncBufRead + Unpin>(
    reader: &mut R,
    max: usize,
) -> Result<Option<String>, ReadError> {
    let mut line = Vec::new();
    loop {
        let available = reader.fill_buf().await.map_err(ReadError::Io)?;
        if available.is_empty() {
            return if line.is_empty() {
                Ok(None)
            } else {
                finish(&line).map(Some)
            };
        }
        let (used, complete) = scan(&mut line, available, max).map_err(ReadError::Protocol)?;
        reader.consume(used);
        if complete {
            return finish(&line).map(Some);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_limits_and_the_last_unterminated_line() {
        let mut input = io::BufReader::with_capacity(4, &b"NUMBER\nPARAMS 1 5\nlast"[..]);
        assert_eq!(
            read_line(&mut input, 64).unwrap().as_deref(),
            Some("NUMBER")
        );
        assert_eq!(
            read_line(&mut input, 64).unwrap().as_deref(),
            Some("PARAMS 1 5")
        );
        assert_eq!(read_line(&mut input, 64).unwrap().as_deref(), Some("last"));
        assert!(read_line(&mut input, 64).unwrap().is_none());

        let mut long = io::BufReader::new(&[b'x'; 100][..]);
        assert!(matches!(
            read_line(&mut long, 10),
            Err(ReadError::Protocol(ProtocolError::LineTooLong { max: 10 }))
        ));
        let mut bad = io::BufReader::new(&b"\xff\xfe\n"[..]);
        assert!(matches!(
            read_line(&mut bad, 10),
            Err(ReadError::Protocol(ProtocolError::NotUtf8))
        ));
    }

    #[tokio::test]
    async fn the_async_reader_agrees() {
        let mut input = tokio::io::BufReader::with_capacity(3, &b"REPORT Warmer\nNUMBER\n"[..]);
        assert_eq!(
            read_line_async(&mut input, 64).await.unwrap().as_deref(),
            Some("REPORT Warmer")
        );
        assert_eq!(
            read_line_async(&mut input, 64).await.unwrap().as_deref(),
            Some("NUMBER")
        );
        assert!(read_line_async(&mut input, 64).await.unwrap().is_none());
        let mut long = tokio::io::BufReader::new(&[b'y'; 50][..]);
        assert!(matches!(
            read_line_async(&mut long, 8).await,
            Err(ReadError::Protocol(_))
        ));
    }
}
