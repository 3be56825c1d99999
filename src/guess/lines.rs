//! The game's lines: [`crate::lines`]' bounded reading, with the protocol's rules on top
//! (a line must be UTF-8; a line past the limit is a protocol error).

use std::io::{self, BufRead};

use tokio::io::AsyncBufRead;

use super::protocol::ProtocolError;
use crate::lines::{self, LineError};

/// Why no line could be read.
#[derive(Debug)]
pub enum ReadError {
    /// The line broke the protocol (too long, not UTF-8).
    Protocol(ProtocolError),
    /// The connection failed.
    Io(io::Error),
}

fn finish(line: Result<Option<Vec<u8>>, LineError>) -> Result<Option<String>, ReadError> {
    match line {
        Ok(None) => Ok(None),
        // No copy: the bytes become the string.
        Ok(Some(bytes)) => String::from_utf8(bytes)
            .map(Some)
            .map_err(|_| ReadError::Protocol(ProtocolError::NotUtf8)),
        Err(LineError::TooLong { max }) => {
            Err(ReadError::Protocol(ProtocolError::LineTooLong { max }))
        }
        Err(LineError::Io(e)) => Err(ReadError::Io(e)),
    }
}

/// Reads one line (without its newline) of at most `max` bytes; `Ok(None)` at the end
/// of the stream. A last line without a newline still counts as a line.
pub fn read_line(reader: &mut impl BufRead, max: usize) -> Result<Option<String>, ReadError> {
    finish(lines::read_line(reader, max))
}

/// The async form of [`read_line`].
pub async fn read_line_async<R: AsyncBufRead + Unpin>(
    reader: &mut R,
    max: usize,
) -> Result<Option<String>, ReadError> {
    finish(lines::read_line_async(reader, max).await)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protocol_errors_for_long_and_non_utf8_lines() {
        let mut input = io::BufReader::new(&b"NUMBER\n"[..]);
        assert_eq!(
            read_line(&mut input, 64).unwrap().as_deref(),
            Some("NUMBER")
        );
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
}
