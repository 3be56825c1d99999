//! Item 58, `simulate_pipeline`: fixed worker threads fed by a closable queue.
//!
//! The main thread computes each cell's state and neighbour count and puts the query on
//! the input queue (fan-out); `workers` threads run the slow `game_logic` I/O and put
//! `(y, x, outcome)` on the output queue; the main thread takes exactly one outcome per
//! cell (fan-in). The workers and queues live across generations and are stopped by
//! closing the input queue.
//!
//! I/O parallelism is capped at the worker count: a generation takes at least
//! `ceil(cells / workers)` round trips. The input queue is bounded (twice the worker
//! count), so the main thread never runs far ahead of the workers. The output queue is
//! unbounded on purpose: workers must never block on it while the main thread is still
//! feeding the input, and it holds at most one generation, which the next grid holds anyway.
//!
//! **What Rust changes.** The book has the workers catch the exception, ship it through
//! the queue as a value and re-raise it in the main thread by hand; here the outcome is a
//! typed `io::Result` that cannot be forgotten.

use std::io;
use std::num::NonZeroUsize;
use std::sync::Arc;

use super::{Engine, FanIn, Strategy, ask, query};
use crate::life::cell_io::{CellLogic, CellQuery};
use crate::life::error::LifeError;
use crate::life::grid::{Cell, Grid};
use crate::queue::{ClosableQueue, Workers};

/// What a game_logic worker hands back: the cell and its next state or error.
pub(crate) type Outcome = (usize, usize, io::Result<Cell>);

/// A stage of `workers` threads answering queries through the blocking seam. Shared by
/// both pipelines.
pub(crate) fn start_logic_stage<L: CellLogic>(
    logic: Arc<L>,
    workers: NonZeroUsize,
    input: &Arc<ClosableQueue<CellQuery>>,
    output: &Arc<ClosableQueue<Outcome>>,
) -> io::Result<Workers> {
    Workers::start(
        "life-logic",
        workers.get(),
        input,
        output,
        move |q: CellQuery| (q.y, q.x, ask(&*logic, q)),
    )
}

/// One generation through a pipeline: puts one job per cell on `input` (fan-out), then
/// takes one outcome per cell from `output` into the next grid (fan-in).
pub(crate) fn feed_and_gather<T>(
    grid: &Grid,
    input: &ClosableQueue<T>,
    job: impl Fn(usize, usize) -> T,
    output: &ClosableQueue<Outcome>,
    strategy: Strategy,
) -> Result<Grid, LifeError> {
    for (y, x) in grid.positions() {
        // Puts fail only once the engine is stopped, which cannot happen mid-step.
        if input.put(job(y, x)).is_err() {
            return Err(LifeError::Stopped { strategy });
        }
    }
    let mut fan_in = FanIn::new(grid)?;
    for _ in 0..grid.len() {
        // Every query yields exactly one outcome (panics included), and the output queue
        // is closed only at shutdown, so this cannot run dry during a step.
        let (y, x, outcome) = output.get().ok_or(LifeError::Stopped { strategy })?;
        fan_in.record(y, x, outcome);
    }
    fan_in.finish()
}

/// The pipeline engine: one stage of game_logic workers.
pub(crate) struct Pipeline {
    input: Arc<ClosableQueue<CellQuery>>,
    output: Arc<ClosableQueue<Outcome>>,
    workers: Option<Workers>,
}

impl Pipeline {
    pub(crate) fn new<L: CellLogic>(logic: Arc<L>, workers: NonZeroUsize) -> io::Result<Self> {
        let input = Arc::new(ClosableQueue::bounded(workers.get().saturating_mul(2)));
        let output = Arc::new(ClosableQueue::unbounded());
        let workers = start_logic_stage(logic, workers, &input, &output)?;
        Ok(Self {
            input,
            output,
            workers: Some(workers),
        })
    }

    fn stop(&mut self) -> Result<(), LifeError> {
        self.input.close();
        if let Some(workers) = self.workers.take() {
            workers.join()?;
        }
        self.output.close();
        Ok(())
    }
}

impl Engine for Pipeline {
    fn step(&mut self, grid: &Arc<Grid>) -> Result<Grid, LifeError> {
        let job = |y, x| query(grid, y, x);
        feed_and_gather(grid, &self.input, job, &self.output, Strategy::Pipeline)
    }

    fn shutdown(mut self: Box<Self>) -> Result<(), LifeError> {
        self.stop()
    }
}

impl Drop for Pipeline {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}
