//! The I/O seam: where each cell's rule talks to the outside world.
//!
//! The book makes `game_logic` do a blocking `my_socket.recv(100)`, the "massively
//! multiplayer" twist that turns Life into a latency problem. concur keeps that I/O behind
//! two small traits:
//!
//! * [`CellLogic`] is the blocking form, used by every thread-based strategy;
//! * [`AsyncCellLogic`] is the async form, used by the tokio strategy.
//!
//! [`SimulatedIo`] implements both: it waits out a configurable round trip (`--latency`)
//! and can fail one cell with the book's `OSError('Problem with I/O')` (`--fail-at`).
//! A real network rules server plugs in by implementing the same two traits.

use std::future::Future;
use std::io;
use std::panic::AssertUnwindSafe;
use std::time::Duration;

use futures_util::FutureExt;
use futures_util::future::join_all;

use super::grid::Cell;
use super::rule::game_logic;
use super::strategy::panicked;
use crate::executor::panic_message;

/// What a cell sends across the seam: where it is, its state and its neighbour count.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CellQuery {
    /// Row of the cell.
    pub y: usize,
    /// Column of the cell.
    pub x: usize,
    /// The cell's state in the previous generation.
    pub state: Cell,
    /// Living neighbours in the previous generation.
    pub neighbors: u8,
}

/// The blocking form of the seam: decide a cell's next state, possibly doing slow I/O.
///
/// Implementations are shared by many threads at once, hence `Send + Sync`.
pub trait CellLogic: Send + Sync + 'static {
    /// Blocks until the next state of `query`'s cell is known, or the I/O fails.
    fn next_state(&self, query: CellQuery) -> io::Result<Cell>;
}

/// The async form of the seam, for strategies that run cells as futures.
pub trait AsyncCellLogic: Send + Sync + 'static {
    /// Resolves to the next state of `query`'s cell, or the I/O error.
    fn next_state_async(&self, query: CellQuery) -> impl Future<Output = io::Result<Cell>> + Send;

    /// Resolves to the next states of a batch of cells whose I/O starts together, one
    /// outcome per query, in order.
    ///
    /// The default is the book's coroutine per cell: every cell's
    /// [`next_state_async`](Self::next_state_async) in flight at once, joined. A panic
    /// in one of them becomes that cell's error. Implementations may overlap a batch
    /// more cheaply, as [`SimulatedIo`] does with one deadline for the whole batch.
    fn next_states_async(
        &self,
        queries: Vec<CellQuery>,
    ) -> impl Future<Output = Vec<io::Result<Cell>>> + Send {
        let cells = queries.into_iter().map(|query| {
            let cell = AssertUnwindSafe(self.next_state_async(query)).catch_unwind();
            async move {
                cell.await
                    .unwrap_or_else(|payload| Err(panicked(&panic_message(payload.as_ref()))))
            }
        });
        join_all(cells)
    }
}

/// The book's simulated I/O: every cell waits `latency`, then applies [`game_logic`].
///
/// The cell at `fail_at`, if any, fails with `Problem with I/O` after waiting.
///
/// ```
/// use concur::life::{Cell, CellLogic, CellQuery, SimulatedIo};
/// use std::time::Duration;
///
/// let io = SimulatedIo::new(Duration::ZERO).failing_at(1, 2);
/// let query = |y, x| CellQuery { y, x, state: Cell::Empty, neighbors: 3 };
/// assert_eq!(io.next_state(query(0, 0)).unwrap(), Cell::Alive);
/// assert_eq!(io.next_state(query(1, 2)).unwrap_err().to_string(), "Problem with I/O");
/// ```
#[derive(Clone, Debug, Default)]
pub struct SimulatedIo {
    latency: Duration,
    fail_at: Option<(usize, usize)>,
}

impl SimulatedIo {
    /// Simulated I/O taking `latency` per cell, failing nowhere.
    pub fn new(latency: Duration) -> Self {
        Self {
            latency,
            fail_at: None,
        }
    }

    /// Makes the cell at (y, x) fail every time it is asked.
    pub fn failing_at(mut self, y: usize, x: usize) -> Self {
        self.fail_at = Some((y, x));
        self
    }

    /// The simulated round trip per cell.
    pub fn latency(&self) -> Duration {
        self.latency
    }

    fn answer(&self, query: CellQuery) -> io::Result<Cell> {
        if self.fail_at == Some((query.y, query.x)) {
            return Err(io::Error::other("Problem with I/O"));
        }
        Ok(game_logic(query.state, query.neighbors))
    }
}

impl CellLogic for SimulatedIo {
    fn next_state(&self, query: CellQuery) -> io::Result<Cell> {
        if !self.latency.is_zero() {
            std::thread::sleep(self.latency);
        }
        self.answer(query)
    }
}

impl AsyncCellLogic for SimulatedIo {
    async fn next_state_async(&self, query: CellQuery) -> io::Result<Cell> {
        if !self.latency.is_zero() {
            tokio::time::sleep(self.latency).await;
        }
        self.answer(query)
    }

    /// Every cell of the batch starts its round trip now and ends it `latency` later:
    /// one deadline for the batch instead of a timer per cell. The answers are worked
    /// out first, so the batch holds one result per cell while it waits.
    async fn next_states_async(&self, queries: Vec<CellQuery>) -> Vec<io::Result<Cell>> {
        let deadline = tokio::time::Instant::now() + self.latency;
        let answers = queries.into_iter().map(|q| self.answer(q)).collect();
        if !self.latency.is_zero() {
            tokio::time::sleep_until(deadline).await;
        }
        answers
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(y: usize, x: usize) -> CellQuery {
        CellQuery {
            y,
            x,
            state: Cell::Alive,
            neighbors: 2,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn async_form_waits_the_latency_in_virtual_time() {
        let io = SimulatedIo::new(Duration::from_millis(100));
        let start = tokio::time::Instant::now();
        assert_eq!(io.next_state_async(query(0, 0)).await.unwrap(), Cell::Alive);
        assert_eq!(start.elapsed(), Duration::from_millis(100));
    }

    #[tokio::test(start_paused = true)]
    async fn async_form_fails_at_the_chosen_cell() {
        let io = SimulatedIo::new(Duration::from_millis(5)).failing_at(3, 4);
        assert!(io.next_state_async(query(4, 3)).await.is_ok());
        let err = io.next_state_async(query(3, 4)).await.unwrap_err();
        assert_eq!(err.to_string(), "Problem with I/O");
    }
}
