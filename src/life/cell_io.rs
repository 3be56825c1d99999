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
use std::time::{Duration, Instant};

use futures_util::FutureExt;
use futures_util::future::join_all;

use super::grid::Cell;
use super::rule::Rule;
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
/// Implementations are shared by many threads at once, hence `Send + Sync`. A logic
/// used with [`Simulation`](crate::life::Simulation) implements the async form too
/// (which may simply answer at once).
///
/// ```
/// use std::io;
/// use std::sync::Arc;
/// use concur::life::{AsyncCellLogic, Cell, CellLogic, CellQuery, Grid, Simulation, Strategy};
///
/// /// HighLife's rule (B36/S23) with no I/O: a rule of one's own through the seam.
/// struct HighLife;
///
/// impl CellLogic for HighLife {
///     fn next_state(&self, q: CellQuery) -> io::Result<Cell> {
///         let born = q.state == Cell::Empty && matches!(q.neighbors, 3 | 6);
///         let stays = q.state == Cell::Alive && matches!(q.neighbors, 2 | 3);
///         Ok(if born || stays { Cell::Alive } else { Cell::Empty })
///     }
/// }
///
/// impl AsyncCellLogic for HighLife {
///     async fn next_state_async(&self, q: CellQuery) -> io::Result<Cell> {
///         self.next_state(q)
///     }
/// }
///
/// // A blinker blinks under HighLife too.
/// let mut grid = Grid::new(5, 5).unwrap();
/// for x in 1..4 {
///     grid.set(2, x, Cell::Alive);
/// }
/// let mut sim = Simulation::new(Strategy::Pool, None, Arc::new(HighLife)).unwrap();
/// let next = sim.step(&Arc::new(grid.clone())).unwrap();
/// assert_eq!(next.get(1, 2), Cell::Alive);
/// assert_eq!(next.get(2, 1), Cell::Empty);
/// assert_eq!(sim.step(&Arc::new(next)).unwrap(), grid);
/// ```
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

/// The book's simulated I/O: every cell waits `latency`, then applies the rule
/// (the book's [`game_logic`](super::game_logic) unless [`with_rule`](Self::with_rule)).
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
    rule: Rule,
}

impl SimulatedIo {
    /// Simulated I/O taking `latency` per cell, failing nowhere.
    pub fn new(latency: Duration) -> Self {
        Self {
            latency,
            fail_at: None,
            rule: Rule::CONWAY,
        }
    }

    /// Answers with `rule` instead of Conway's.
    pub fn with_rule(mut self, rule: Rule) -> Self {
        self.rule = rule;
        self
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
        Ok(self.rule.next(query.state, query.neighbors))
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
            sleep_until(now() + self.latency).await;
        }
        self.answer(query)
    }

    /// Every cell of the batch starts its round trip now and ends it `latency` later:
    /// one deadline for the batch instead of a timer per cell. The answers are worked
    /// out first, so the batch holds one result per cell while it waits.
    async fn next_states_async(&self, queries: Vec<CellQuery>) -> Vec<io::Result<Cell>> {
        let deadline = now() + self.latency;
        let answers = queries.into_iter().map(|q| self.answer(q)).collect();
        if !self.latency.is_zero() {
            sleep_until(deadline).await;
        }
        answers
    }
}

/// The time on the clock [`sleep_until`] waits on: tokio's (which tests may pause).
#[cfg(feature = "async")]
fn now() -> Instant {
    tokio::time::Instant::now().into_std()
}

/// The time on the clock [`sleep_until`] waits on.
#[cfg(not(feature = "async"))]
fn now() -> Instant {
    Instant::now()
}

/// Waits until `deadline` on tokio's timer (with the `async` feature, which the async
/// strategy needs anyway).
#[cfg(feature = "async")]
async fn sleep_until(deadline: Instant) {
    tokio::time::sleep_until(deadline.into()).await;
}

/// Waits until `deadline` without a runtime (the library built without its `async`
/// feature, polled by the caller's own executor): a helper thread wakes the future at
/// the deadline. One thread per wait is costly, but it blocks no executor.
#[cfg(not(feature = "async"))]
async fn sleep_until(deadline: Instant) {
    use std::sync::{Arc, Mutex, PoisonError};
    use std::task::{Poll, Waker};

    let waker: Arc<Mutex<Option<Waker>>> = Arc::default();
    let mut helper = None;
    std::future::poll_fn(|cx| {
        if Instant::now() >= deadline {
            return Poll::Ready(());
        }
        *waker.lock().unwrap_or_else(PoisonError::into_inner) = Some(cx.waker().clone());
        if helper.is_none() {
            let waker = Arc::clone(&waker);
            let spawned = std::thread::Builder::new()
                .name("simulated-io".into())
                .spawn(move || {
                    std::thread::sleep(deadline.saturating_duration_since(Instant::now()));
                    if let Some(waker) = waker.lock().unwrap_or_else(PoisonError::into_inner).take()
                    {
                        waker.wake();
                    }
                });
            match spawned {
                Ok(handle) => helper = Some(handle),
                // No thread to spare: wait here rather than never wake.
                Err(_) => {
                    std::thread::sleep(deadline.saturating_duration_since(Instant::now()));
                    return Poll::Ready(());
                }
            }
        }
        Poll::Pending
    })
    .await;
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

    #[cfg(feature = "async")]
    #[tokio::test(start_paused = true)]
    async fn async_form_waits_the_latency_in_virtual_time() {
        let io = SimulatedIo::new(Duration::from_millis(100));
        let start = tokio::time::Instant::now();
        assert_eq!(io.next_state_async(query(0, 0)).await.unwrap(), Cell::Alive);
        assert_eq!(start.elapsed(), Duration::from_millis(100));
    }

    /// Without tokio, a helper thread wakes the future: polled by a plain executor, it
    /// is pending at first and ready no earlier than the latency.
    #[cfg(not(feature = "async"))]
    #[test]
    fn without_a_runtime_the_async_form_wakes_after_the_latency() {
        let io = SimulatedIo::new(Duration::from_millis(30));
        let start = Instant::now();
        let cells =
            futures_util::future::join_all((0..3).map(|x| io.next_state_async(query(0, x))));
        let cells = futures_executor_block_on(cells);
        assert!(start.elapsed() >= Duration::from_millis(30));
        assert!(cells.iter().all(|cell| matches!(cell, Ok(Cell::Alive))));
    }

    /// A minimal `block_on`: parks the thread until the future's waker unparks it.
    #[cfg(not(feature = "async"))]
    fn futures_executor_block_on<F: Future>(future: F) -> F::Output {
        use std::sync::Arc;
        use std::task::{Context, Poll, Wake};
        struct Unpark(std::thread::Thread);
        impl Wake for Unpark {
            fn wake(self: Arc<Self>) {
                self.0.unpark();
            }
        }
        let waker = Arc::new(Unpark(std::thread::current())).into();
        let mut cx = Context::from_waker(&waker);
        let mut future = std::pin::pin!(future);
        loop {
            match future.as_mut().poll(&mut cx) {
                Poll::Ready(output) => return output,
                Poll::Pending => std::thread::park(),
            }
        }
    }

    #[cfg(not(feature = "async"))]
    #[test]
    fn the_async_strategy_says_it_needs_the_feature() {
        let logic = std::sync::Arc::new(SimulatedIo::new(Duration::ZERO));
        let err = crate::life::Simulation::new(crate::life::Strategy::Async, None, logic)
            .expect_err("refused without the async feature");
        assert!(
            crate::error_chain(&err).contains("needs concur's `async` feature"),
            "{err}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn async_form_fails_at_the_chosen_cell() {
        let io = SimulatedIo::new(Duration::from_millis(5)).failing_at(3, 4);
        assert!(io.next_state_async(query(4, 3)).await.is_ok());
        let err = io.next_state_async(query(3, 4)).await.unwrap_err();
        assert_eq!(err.to_string(), "Problem with I/O");
    }
}
