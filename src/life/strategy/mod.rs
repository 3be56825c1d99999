//! The fan-out strategies the book compares, one small file each, over one shared model.
//!
//! Every strategy turns the previous generation into the next one and must give the
//! same grid as [`serial`]. They differ only in *how* the slow per-cell I/O is overlapped:
//!
//! | strategy | book | shape |
//! |---|---|---|
//! | [`serial`] | item 56 `simulate` | one thread |
//! | [`thread_per_cell`] | item 57 `simulate_threaded` | a new thread per cell per generation, writing into a `LockingGrid` |
//! | [`pipeline`] | item 58 `simulate_pipeline` | fixed workers fed by a `ClosableQueue` |
//! | [`phased_pipeline`] | item 58 `simulate_phased_pipeline` | count_neighbors workers, then game_logic workers |
//! | [`pool`] | item 59 `simulate_pool` | a thread pool with submit/result futures |
//! | [`tasks`] | item 60 `simulate` (asyncio) | a coroutine per cell, driven by one task per core |
//! | [`parallel`] | (none: no I/O) | the grid packed 64 cells to a word, rows split across cores |

pub mod parallel;
pub mod phased_pipeline;
pub mod pipeline;
pub mod pool;
pub mod serial;
#[cfg(feature = "async")]
pub mod tasks;
pub mod thread_per_cell;

use std::fmt;
use std::io;
use std::num::NonZeroUsize;
use std::ops::ControlFlow;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::cell_io::{CellLogic, CellQuery};
use super::error::LifeError;
use super::grid::{Cell, Grid};
use super::rule::count_neighbors;
use super::simulation::Generation;
use crate::executor::panic_message;

/// Which way to fan out (`--mode`).
///
/// ```
/// use std::time::Duration;
/// use concur::life::Strategy;
///
/// // The least a generation of 45 cells can take at 100 ms per cell's I/O:
/// let floor = |s: Strategy| s.io_floor(45, None, Duration::from_millis(100));
/// assert_eq!(floor(Strategy::Serial), Duration::from_millis(4500)); // one after another
/// assert_eq!(floor(Strategy::Pool), Duration::from_millis(500)); // 10 at a time: 5 rounds
/// assert_eq!(floor(Strategy::Async), Duration::from_millis(100)); // all at once
/// assert_eq!(Strategy::ALL.len(), 6); // the book's six, each doing the I/O
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
#[serde(rename_all = "kebab-case")]
pub enum Strategy {
    /// Item 56: one thread, one cell after another.
    Serial,
    /// Item 57: a new OS thread per cell per generation.
    ThreadPerCell,
    /// Item 58: fixed worker threads fed by a closable queue.
    Pipeline,
    /// Item 58: count_neighbors workers, then game_logic workers.
    PhasedPipeline,
    /// Item 59: a fixed thread pool with submit/result futures.
    Pool,
    /// Item 60: a coroutine per cell, fan-out then gather.
    Async,
    /// No per-cell I/O: the grid packed 64 cells to a word, the rule applied
    /// bit-parallel, rows split across cores. The speed of the hardware.
    Parallel,
    /// No per-cell I/O: Gosper's HashLife, its nine sub-results on every core. On the
    /// unbounded plane it jumps `2^k` generations at once; on a torus it steps one
    /// generation at a time, as Golly does with bounded grids.
    Hashlife,
}

impl Strategy {
    /// Every strategy of the book, in its order: each one asks the I/O seam for every
    /// cell. [`Strategy::Parallel`] is not among them: it does no I/O.
    pub const ALL: [Strategy; 6] = [
        Strategy::Serial,
        Strategy::ThreadPerCell,
        Strategy::Pipeline,
        Strategy::PhasedPipeline,
        Strategy::Pool,
        Strategy::Async,
    ];

    /// The name used on the command line.
    pub const fn name(self) -> &'static str {
        match self {
            Strategy::Serial => "serial",
            Strategy::ThreadPerCell => "thread-per-cell",
            Strategy::Pipeline => "pipeline",
            Strategy::PhasedPipeline => "phased-pipeline",
            Strategy::Pool => "pool",
            Strategy::Async => "async",
            Strategy::Parallel => "parallel",
            Strategy::Hashlife => "hashlife",
        }
    }

    /// The book's item and function this strategy rebuilds.
    pub const fn book(self) -> &'static str {
        match self {
            Strategy::Serial => "item 56, simulate",
            Strategy::ThreadPerCell => "item 57, simulate_threaded",
            Strategy::Pipeline => "item 58, simulate_pipeline",
            Strategy::PhasedPipeline => "item 58, simulate_phased_pipeline",
            Strategy::Pool => "item 59, simulate_pool",
            Strategy::Async => "item 60, asyncio simulate",
            Strategy::Parallel => "item 64's lesson: compute on every core",
            Strategy::Hashlife => "Gosper's HashLife, its sub-results on every core",
        }
    }

    /// Whether the strategy asks the I/O seam for each cell (every one but `parallel`
    /// and `hashlife`).
    pub const fn does_io(self) -> bool {
        !matches!(self, Strategy::Parallel | Strategy::Hashlife)
    }

    /// The book's worker count for strategies that have one: 5 for the pipelines
    /// (per stage), 10 for the pool. `None` for the others.
    pub fn default_workers(self) -> Option<NonZeroUsize> {
        match self {
            Strategy::Pipeline | Strategy::PhasedPipeline => NonZeroUsize::new(5),
            Strategy::Pool => NonZeroUsize::new(10),
            _ => None,
        }
    }

    /// The I/O floor of one generation: the least time it can take when each cell's
    /// I/O takes `latency` and everything else is free.
    ///
    /// Serial pays every round trip in turn; thread-per-cell and async overlap them all;
    /// the pipelines and the pool overlap `workers` at a time, so they need
    /// `ceil(cells / workers)` rounds.
    pub fn io_floor(
        self,
        cells: usize,
        workers: Option<NonZeroUsize>,
        latency: Duration,
    ) -> Duration {
        let rounds = match self {
            Strategy::Parallel | Strategy::Hashlife => 0,
            Strategy::Serial => cells,
            Strategy::ThreadPerCell | Strategy::Async => 1,
            Strategy::Pipeline | Strategy::PhasedPipeline | Strategy::Pool => {
                let w = workers
                    .or(self.default_workers())
                    .map_or(1, NonZeroUsize::get);
                cells.div_ceil(w)
            }
        };
        latency.saturating_mul(u32::try_from(rounds).unwrap_or(u32::MAX))
    }
}

impl fmt::Display for Strategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One strategy's engine: its long-lived resources plus the step function.
pub(crate) trait Engine {
    /// Computes the generation after `grid`.
    fn step(&mut self, grid: &Arc<Grid>) -> Result<Grid, LifeError>;

    /// Runs `generations` steps from `grid`, showing `observe` generation 0 and then
    /// every step, until it breaks; returns the last grid. Engines that keep the grid in another form
    /// between steps (packed) override it.
    fn run(
        &mut self,
        grid: Grid,
        generations: usize,
        observe: &mut dyn FnMut(&Generation<'_>) -> ControlFlow<()>,
    ) -> Result<Grid, LifeError> {
        let mut grid = Arc::new(grid);
        if observe(&Generation::cells(0, &grid, Duration::ZERO)).is_break() {
            return Ok(Arc::unwrap_or_clone(grid));
        }
        for index in 1..=generations {
            let start = Instant::now();
            let next = self.step(&grid)?;
            let elapsed = start.elapsed();
            grid = Arc::new(next);
            if observe(&Generation::cells(index, &grid, elapsed)).is_break() {
                break;
            }
        }
        Ok(Arc::unwrap_or_clone(grid))
    }

    /// Stops and joins every worker, reporting any that panicked. Dropping an engine
    /// does the same but cannot report.
    fn shutdown(self: Box<Self>) -> Result<(), LifeError>;
}

/// What the cell at (y, x) sends across the seam: its state and neighbour count.
pub(crate) fn query(grid: &Grid, y: usize, x: usize) -> CellQuery {
    CellQuery {
        y,
        x,
        state: grid.cell_at(y, x),
        neighbors: count_neighbors(grid, y, x),
    }
}

/// Asks the blocking seam, turning a panic in the cell's logic into that cell's error,
/// so no strategy can lose a cell (or hang waiting for it) because of a panic.
pub(crate) fn ask<L: CellLogic + ?Sized>(logic: &L, query: CellQuery) -> io::Result<Cell> {
    catch_unwind(AssertUnwindSafe(|| logic.next_state(query)))
        .unwrap_or_else(|payload| Err(panicked(&panic_message(payload.as_ref()))))
}

/// The I/O error recorded for a cell whose logic panicked.
pub(crate) fn panicked(message: &str) -> io::Error {
    io::Error::other(format!("cell logic panicked: {message}"))
}

/// The failure to report when cells fail: the first in row-major order, whatever order
/// the outcomes arrived in, so every strategy reports the same cell as `serial` does.
#[derive(Default)]
pub(crate) struct FirstFailure(Option<(usize, usize, io::Error)>);

impl FirstFailure {
    /// Notes that the cell at (y, x) failed.
    pub(crate) fn note(&mut self, y: usize, x: usize, err: io::Error) {
        if self
            .0
            .as_ref()
            .is_none_or(|(fy, fx, _)| (y, x) < (*fy, *fx))
        {
            self.0 = Some((y, x, err));
        }
    }

    /// `Ok` if no cell failed, else the first failure.
    pub(crate) fn check(self) -> Result<(), LifeError> {
        match self.0 {
            None => Ok(()),
            Some((y, x, source)) => Err(LifeError::Cell { y, x, source }),
        }
    }
}

/// Fan-in: gathers every cell's outcome into the next grid.
pub(crate) struct FanIn {
    next: Grid,
    failure: FirstFailure,
}

impl FanIn {
    pub(crate) fn new(like: &Grid) -> Result<Self, LifeError> {
        Ok(Self {
            next: Grid::new(like.height(), like.width())?,
            failure: FirstFailure::default(),
        })
    }

    /// Records one cell's outcome.
    pub(crate) fn record(&mut self, y: usize, x: usize, outcome: io::Result<Cell>) {
        match outcome {
            Ok(state) => self.next.set_at(y, x, state),
            Err(err) => self.failure.note(y, x, err),
        }
    }

    /// Records one cell's outcome by its row-major index: no division unless it failed
    /// (a million-cell gather is otherwise two divisions a cell, on one thread).
    #[cfg(feature = "async")]
    pub(crate) fn record_index(&mut self, index: usize, outcome: io::Result<Cell>) {
        match outcome {
            Ok(state) => self.next.set_index(index, state),
            Err(err) => {
                let width = self.next.width();
                self.failure.note(index / width, index % width, err);
            }
        }
    }

    /// The next grid, or the first failure.
    pub(crate) fn finish(self) -> Result<Grid, LifeError> {
        self.failure.check().map(|()| self.next)
    }
}
