//! The number-guessing game over TCP, threaded and async (item 61).
//!
//! The book ports a threaded line-protocol server and client to asyncio, to show how
//! blocking I/O code moves to coroutines. concur has both forms of both ends, wire
//! compatible with the book's programs, and one shared model under them:
//!
//! * [`protocol`]: the three commands and their errors;
//! * [`Session`]: the server's game state, fed one line at a time, with no I/O;
//! * [`Player`]: the client's verdicts (`Unsure`, `Warmer`, `Colder`, `Correct`);
//! * [`lines`]: bounded line reading, blocking and async;
//! * [`server`]: [`serve_threads`] (a thread per connection) and [`serve_async`] (a
//!   task per connection), both with graceful shutdown;
//! * [`client`]: [`play_threaded`] and [`play_async_at`];
//! * [`load`]: thousands of async clients at once, with latency percentiles.
//!
//! **What Rust changes.** Porting is the same move as in Python: the session logic is
//! untouched, only the reads and writes gain `.await`. Here the logic is literally the
//! same code: `Session` and `Player` never do I/O, so neither port can drift from the
//! other. Bad input ends only its own session with an `ERROR` line, where the book
//! raises, and the book's endless loop on an exhausted range is an error reply.

pub mod client;
mod epoll;
pub mod lines;
pub mod load;
mod player;
pub mod protocol;
pub mod server;
mod session;

pub use client::{ClientError, Round, play_async, play_async_at, play_threaded};
pub use epoll::serve_epoll;
pub use player::{BOOK_GAMES, Player};
pub use protocol::{Command, Decision, ProtocolError, parse};
pub use server::{
    SERVER_FULL, ServerConfig, ServerStats, SessionLimit, Sink, bind, serve_async, serve_threads,
    thread_session_limit,
};
pub use session::{Response, Session};
