//! The book's client, threaded and async: two games, transcripts, and per-request
//! latencies for the load generator.

use std::io::{self, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use thiserror::Error;
use tokio::io::{AsyncBufRead, AsyncWrite, AsyncWriteExt};

use super::lines::{ReadError, read_line, read_line_async};
use super::player::{BOOK_GAMES, Player};
use super::protocol::{Command, ProtocolError};

/// The longest reply line a client accepts.
const MAX_REPLY: usize = 1024;

/// What went wrong for a client.
#[derive(Debug, Error)]
pub enum ClientError {
    /// The server could not be reached.
    #[error("cannot connect to {addr}")]
    Connect {
        /// The server's address.
        addr: SocketAddr,
        /// What the OS said.
        #[source]
        source: io::Error,
    },
    /// The connection failed mid-game.
    #[error("connection to the server failed")]
    Io(#[from] io::Error),
    /// The server closed the connection while a reply was expected.
    #[error("the server closed the connection")]
    Closed,
    /// The server answered with an error line.
    #[error("the server said: {0}")]
    Server(String),
    /// The server sent something that is not a number.
    #[error("expected a number from the server, got {0:?}")]
    Unexpected(String),
}

fn read_error(err: ReadError) -> ClientError {
    match err {
        ReadError::Io(e) => ClientError::Io(e),
        ReadError::Protocol(ProtocolError::LineTooLong { max }) => {
            ClientError::Unexpected(format!("a reply longer than {max} bytes"))
        }
        ReadError::Protocol(e) => ClientError::Unexpected(e.to_string()),
    }
}

fn number(reply: Option<String>) -> Result<i64, ClientError> {
    let reply = reply.ok_or(ClientError::Closed)?;
    if let Some(message) = reply.strip_prefix("ERROR ") {
        return Err(ClientError::Server(message.to_owned()));
    }
    reply
        .trim_end_matches('\r')
        .parse()
        .map_err(|_| ClientError::Unexpected(reply))
}

/// One guess of the client's transcript: which of the book's games (from 1), the
/// number the server guessed, and the client's verdict. Shown as the book prints it,
/// `Client: 4 is Warmer`; serialized as `{"game":1,"guess":4,"decision":"Warmer"}`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Round {
    /// The game, from 1.
    pub game: usize,
    /// The server's guess.
    pub guess: i64,
    /// The client's verdict on it.
    pub decision: super::Decision,
}

impl std::fmt::Display for Round {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(&format!("Client: {} is {}", self.guess, self.decision))
    }
}

impl serde::Serialize for Round {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut round = serializer.serialize_struct("Round", 3)?;
        round.serialize_field("game", &self.game)?;
        round.serialize_field("guess", &self.guess)?;
        round.serialize_field("decision", self.decision.as_str())?;
        round.end()
    }
}

/// The client's transcript line for one guess.
fn line(game: usize, guess: i64, decision: super::Decision) -> Round {
    Round {
        game,
        guess,
        decision,
    }
}

/// Plays the book's two games over a blocking connection and returns the client's
/// transcript (`Client: N is DECISION`).
pub fn play_threaded(addr: SocketAddr) -> Result<Vec<Round>, ClientError> {
    let stream =
        TcpStream::connect(addr).map_err(|source| ClientError::Connect { addr, source })?;
    stream.set_nodelay(true)?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut writer = &stream;
    let mut transcript = Vec::new();
    // Commands that expect no reply wait in `pending` and go out with the next NUMBER,
    // one write per round trip.
    let mut pending = String::new();
    for (game, (lo, hi, secret, count)) in BOOK_GAMES.into_iter().enumerate() {
        pending.push_str(&format!("{}\n", Command::Params { lo, hi }));
        let mut player = Player::new(secret);
        for _ in 0..count {
            pending.push_str("NUMBER\n");
            writer.write_all(pending.as_bytes())?;
            pending.clear();
            let guess = number(read_line(&mut reader, MAX_REPLY).map_err(read_error)?)?;
            let decision = player.judge(guess);
            pending.push_str(&format!("{}\n", Command::Report(decision)));
            transcript.push(line(game + 1, guess, decision));
            if player.found() {
                break;
            }
        }
        pending.push_str("PARAMS 0 -1\n");
    }
    writer.write_all(pending.as_bytes())?;
    stream.shutdown(std::net::Shutdown::Write)?;
    Ok(transcript)
}

/// Plays the book's two games over an async connection, recording the round-trip time
/// of every `NUMBER` request in `latencies`, and returns the client's transcript.
pub async fn play_async<R, W>(
    reader: &mut R,
    writer: &mut W,
    latencies: &mut Vec<Duration>,
) -> Result<Vec<Round>, ClientError>
where
    R: AsyncBufRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut transcript = Vec::new();
    let mut pending = String::new();
    for (game, (lo, hi, secret, count)) in BOOK_GAMES.into_iter().enumerate() {
        pending.push_str(&format!("{}\n", Command::Params { lo, hi }));
        let mut player = Player::new(secret);
        for _ in 0..count {
            pending.push_str("NUMBER\n");
            let start = Instant::now();
            writer.write_all(pending.as_bytes()).await?;
            pending.clear();
            let reply = read_line_async(reader, MAX_REPLY)
                .await
                .map_err(read_error)?;
            latencies.push(start.elapsed());
            let guess = number(reply)?;
            let decision = player.judge(guess);
            pending.push_str(&format!("{}\n", Command::Report(decision)));
            transcript.push(line(game + 1, guess, decision));
            if player.found() {
                break;
            }
        }
        pending.push_str("PARAMS 0 -1\n");
    }
    writer.write_all(pending.as_bytes()).await?;
    writer.shutdown().await?;
    Ok(transcript)
}

/// Connects and plays the book's two games with the async client.
pub async fn play_async_at(
    addr: SocketAddr,
    latencies: &mut Vec<Duration>,
) -> Result<Vec<Round>, ClientError> {
    let stream = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|source| ClientError::Connect { addr, source })?;
    stream.set_nodelay(true)?;
    let (read_half, mut write_half) = stream.into_split();
    let mut reader = tokio::io::BufReader::new(read_half);
    play_async(&mut reader, &mut write_half, latencies).await
}
