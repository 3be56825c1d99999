//! The book's network I/O, for real: the rules as a TCP service, and its clients.
//!
//! In the book, each cell's `game_logic` stands for a call to a remote service. concur
//! makes that service real: `concur life rules-server` ([`server::serve`]) answers
//! each cell's request with its next state after a configurable delay, and
//! [`RulesClient`] plugs into the same [`CellLogic`]/[`AsyncCellLogic`] seam as the
//! simulated I/O, so every strategy can run against it (`concur life --rules`).
//!
//! The wire format is in [`protocol`]: fixed-size binary frames with request ids, so
//! many requests share one connection and replies may come in any order.
//!
//! [`CellLogic`]: super::CellLogic
//! [`AsyncCellLogic`]: super::AsyncCellLogic

mod client;
pub mod protocol;
pub mod server;
#[cfg(test)]
mod tests;

pub use client::RulesClient;
pub use server::{RulesServerConfig, RulesServerStats, serve};
