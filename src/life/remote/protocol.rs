//! The rules protocol: fixed-size little-endian binary frames over TCP.
//!
//! ```text
//! greeting  server → client, once, on accept        8 bytes
//!   b"LIFE" | version: u16 = 1 | status: u16 = 0 (ready)
//! refusal   server → client, instead of the greeting, then the server closes
//!   b"LIFE" | version: u16 = 1 | status: u16 = 1 (refused) | len: u16 | len bytes of UTF-8: why
//! request   client → server                         16 bytes
//!   id: u32 | y: u32 | x: u32 | state: u8 (0 empty, 1 alive) | neighbors: u8 (0-8) | reserved: u16 = 0
//! reply     server → client                         8 bytes, + len bytes
//!   id: u32 | status: u8 (0 empty, 1 alive, 2 error) | reserved: u8 = 0 | len: u16
//!   then, for status 2 only, len bytes of UTF-8: why the cell failed
//! ```
//!
//! The id is the client's: the server echoes it, so replies may come in any order and
//! any number of requests can be in flight on one connection. A request the server
//! cannot read (a state of 7, 12 neighbours) gets an error reply naming the field; the
//! connection stays usable.

use super::super::grid::Cell;
use super::super::rule::Rule;
use crate::life::CellQuery;

/// The server's first eight bytes: magic, version, and status 0 (ready).
pub const GREETING: [u8; 8] = *b"LIFE\x01\x00\x00\x00";

/// The greeting's status when the server refuses the connection (it is full).
pub const STATUS_REFUSED: u16 = 1;

/// The refusal a server sends instead of the greeting, saying why, before it closes.
/// The reason is cut to 200 bytes (at a character boundary).
pub fn refusal(why: &str) -> Vec<u8> {
    let mut end = why.len().min(200);
    while !why.is_char_boundary(end) {
        end -= 1;
    }
    let mut out = GREETING[..6].to_vec();
    out.extend_from_slice(&STATUS_REFUSED.to_le_bytes());
    out.extend_from_slice(&(end as u16).to_le_bytes());
    out.extend_from_slice(&why.as_bytes()[..end]);
    out
}
/// Bytes in a request.
pub const REQUEST_LEN: usize = 16;
/// Bytes in a reply's header (an error reply adds its text).
pub const REPLY_HEADER_LEN: usize = 8;

const STATUS_EMPTY: u8 = 0;
const STATUS_ALIVE: u8 = 1;
const STATUS_ERROR: u8 = 2;

/// Appends the request for `query` under `id`.
pub fn encode_request(id: u32, query: &CellQuery, out: &mut Vec<u8>) {
    // Grids hold at most MAX_CELLS (10^8) cells, so a coordinate fits in a u32.
    let coordinate = |v: usize| u32::try_from(v).unwrap_or(u32::MAX);
    // Built on the stack and appended once: one capacity check per frame, not six.
    let mut frame = [0u8; REQUEST_LEN];
    frame[0..4].copy_from_slice(&id.to_le_bytes());
    frame[4..8].copy_from_slice(&coordinate(query.y).to_le_bytes());
    frame[8..12].copy_from_slice(&coordinate(query.x).to_le_bytes());
    frame[12] = u8::from(query.state.is_alive());
    frame[13] = query.neighbors;
    out.extend_from_slice(&frame);
}

/// A request as the server reads it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Request {
    /// The client's id, echoed in the reply.
    pub id: u32,
    /// Row.
    pub y: u32,
    /// Column.
    pub x: u32,
    /// The cell's state, or why the frame is unreadable.
    pub body: Result<(Cell, u8), &'static str>,
}

/// Reads one request frame.
pub fn decode_request(frame: &[u8; REQUEST_LEN]) -> Request {
    let word = |i: usize| u32::from_le_bytes([frame[i], frame[i + 1], frame[i + 2], frame[i + 3]]);
    let body = match (frame[12], frame[13], frame[14..16] == [0, 0]) {
        (_, _, false) => Err("malformed request: reserved bytes are not zero"),
        (state, _, _) if state > 1 => Err("malformed request: state is not 0 or 1"),
        (_, n, _) if n > 8 => Err("malformed request: more than 8 neighbours"),
        (state, n, _) => Ok((if state == 1 { Cell::Alive } else { Cell::Empty }, n)),
    };
    Request {
        id: word(0),
        y: word(4),
        x: word(8),
        body,
    }
}

/// Appends the reply to `request`: the next state by Conway's rule, or `error`.
pub fn encode_reply(id: u32, outcome: Result<Cell, &str>, out: &mut Vec<u8>) {
    out.extend_from_slice(&id.to_le_bytes());
    match outcome {
        Ok(cell) => {
            out.push(if cell.is_alive() {
                STATUS_ALIVE
            } else {
                STATUS_EMPTY
            });
            out.extend_from_slice(&[0, 0, 0]);
        }
        Err(reason) => {
            let text = &reason.as_bytes()[..reason.len().min(u16::MAX as usize)];
            out.push(STATUS_ERROR);
            out.push(0);
            out.extend_from_slice(&(text.len() as u16).to_le_bytes());
            out.extend_from_slice(text);
        }
    }
}

/// The server's answer to a readable request under `rule`.
pub fn answer(rule: Rule, state: Cell, neighbors: u8) -> Cell {
    rule.next(state, neighbors)
}

/// One reply as the client reads it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reply {
    /// The id of the request it answers.
    pub id: u32,
    /// The next state, or the server's reason for failing the cell.
    pub outcome: Result<Cell, String>,
}

/// Reads the reply at the start of `bytes`: `Ok(None)` if it is not all there yet,
/// else the reply and its length, or why it is malformed.
pub fn decode_reply(bytes: &[u8]) -> Result<Option<(Reply, usize)>, String> {
    if bytes.len() < REPLY_HEADER_LEN {
        return Ok(None);
    }
    let id = u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
    let len = u16::from_le_bytes([bytes[6], bytes[7]]) as usize;
    if bytes[5] != 0 {
        return Err(format!("reply {id}: reserved byte is {}, not 0", bytes[5]));
    }
    let outcome = match (bytes[4], len) {
        (STATUS_EMPTY, 0) => Ok(Cell::Empty),
        (STATUS_ALIVE, 0) => Ok(Cell::Alive),
        (STATUS_ERROR, len) => {
            let Some(text) = bytes.get(REPLY_HEADER_LEN..REPLY_HEADER_LEN + len) else {
                return Ok(None);
            };
            Err(String::from_utf8_lossy(text).into_owned())
        }
        (STATUS_EMPTY | STATUS_ALIVE, len) => {
            return Err(format!(
                "reply {id}: a state reply carries {len} bytes of text"
            ));
        }
        (status, _) => return Err(format!("reply {id}: unknown status {status}")),
    };
    let used = REPLY_HEADER_LEN + if outcome.is_err() { len } else { 0 };
    Ok(Some((Reply { id, outcome }, used)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_round_trips() {
        let query = CellQuery {
            y: 70_000,
            x: 3,
            state: Cell::Alive,
            neighbors: 8,
        };
        let mut frame = Vec::new();
        encode_request(0xdead_beef, &query, &mut frame);
        let frame: [u8; REQUEST_LEN] = frame.try_into().unwrap();
        let request = decode_request(&frame);
        assert_eq!(
            (request.id, request.y, request.x, request.body),
            (0xdead_beef, 70_000, 3, Ok((Cell::Alive, 8)))
        );
    }

    #[test]
    fn unreadable_requests_say_which_field() {
        let mut frame = [0u8; REQUEST_LEN];
        frame[13] = 9;
        assert_eq!(
            decode_request(&frame).body,
            Err("malformed request: more than 8 neighbours")
        );
        frame[13] = 0;
        frame[12] = 2;
        assert_eq!(
            decode_request(&frame).body,
            Err("malformed request: state is not 0 or 1")
        );
    }

    #[test]
    fn replies_round_trip_and_wait_for_their_text() {
        let mut bytes = Vec::new();
        encode_reply(7, Ok(Cell::Alive), &mut bytes);
        encode_reply(8, Err("Problem with I/O"), &mut bytes);
        let (first, used) = decode_reply(&bytes).unwrap().unwrap();
        assert_eq!((first.id, first.outcome, used), (7, Ok(Cell::Alive), 8));
        let rest = &bytes[used..];
        assert_eq!(
            decode_reply(&rest[..10]),
            Ok(None),
            "text not all there yet"
        );
        let (second, used) = decode_reply(rest).unwrap().unwrap();
        assert_eq!(second.outcome, Err("Problem with I/O".to_owned()));
        assert_eq!(used, rest.len());
    }

    #[test]
    fn malformed_replies_are_errors() {
        assert!(decode_reply(&[1, 0, 0, 0, 9, 0, 0, 0]).is_err());
        assert!(decode_reply(&[1, 0, 0, 0, 1, 0, 5, 0]).is_err());
        assert!(decode_reply(&[1, 0, 0, 0, 1, 1, 0, 0]).is_err());
    }
}
