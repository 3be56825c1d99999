//! Driving generations: one loop for every strategy.

use std::borrow::Cow;
use std::num::NonZeroUsize;
use std::ops::ControlFlow;
use std::sync::Arc;
use std::time::Duration;

use super::cell_io::{AsyncCellLogic, CellLogic};
use super::error::LifeError;
use super::grid::Grid;
use super::hashlife::TorusStepper;
use super::packed::PackedGrid;
use super::rule::Rule;
use super::strategy::parallel::Parallel;
use super::strategy::phased_pipeline::PhasedPipeline;
use super::strategy::pipeline::Pipeline;
use super::strategy::pool::Pool;
use super::strategy::serial::Serial;
#[cfg(feature = "async")]
use super::strategy::tasks::Tasks;
use super::strategy::thread_per_cell::ThreadPerCell;
use super::strategy::{Engine, Strategy};

/// One finished generation, as seen by a [`Simulation::run`] observer.
#[derive(Debug, Clone, Copy)]
pub struct Generation<'a> {
    /// 0 for the starting grid, then 1, 2, ...
    pub index: usize,
    /// How long the step that produced it took (zero for generation 0).
    pub elapsed: Duration,
    board: Board<'a>,
}

/// The grid of a generation, in whichever form the strategy computed it.
#[derive(Debug, Clone, Copy)]
enum Board<'a> {
    Cells(&'a Grid),
    Packed(&'a PackedGrid),
}

impl<'a> Generation<'a> {
    /// A generation held as a plain grid.
    pub(crate) fn cells(index: usize, grid: &'a Grid, elapsed: Duration) -> Self {
        Self {
            index,
            elapsed,
            board: Board::Cells(grid),
        }
    }

    /// A generation held packed, 64 cells to a word (`--mode parallel`).
    pub(crate) fn packed(index: usize, grid: &'a PackedGrid, elapsed: Duration) -> Self {
        Self {
            index,
            elapsed,
            board: Board::Packed(grid),
        }
    }

    /// The grid of this generation. Borrowed when the strategy holds a plain grid;
    /// unpacked (one pass over the cells) when it holds a packed one.
    pub fn grid(&self) -> Cow<'a, Grid> {
        match self.board {
            Board::Cells(grid) => Cow::Borrowed(grid),
            Board::Packed(packed) => Cow::Owned(packed.to_grid()),
        }
    }

    /// How many cells are alive, without unpacking.
    pub fn alive(&self) -> usize {
        match self.board {
            Board::Cells(grid) => grid.alive(),
            Board::Packed(packed) => packed.alive(),
        }
    }
}

/// A strategy, set up and ready to step grids. Its threads, queues or runtime live until
/// it is shut down or dropped, so they are reused across generations as in the book.
///
/// ```
/// use concur::life::{Grid, SimulatedIo, Simulation, Strategy};
/// use std::sync::Arc;
/// use std::time::Duration;
///
/// let io = Arc::new(SimulatedIo::new(Duration::ZERO));
/// let mut sim = Simulation::new(Strategy::Pool, None, io).unwrap();
/// let last = sim.run(Grid::glider(), 4, |_| {}).unwrap();
/// sim.shutdown().unwrap();
/// assert_eq!(last.alive(), 5); // a glider is still a glider
/// ```
pub struct Simulation {
    strategy: Strategy,
    workers: Option<NonZeroUsize>,
    engine: Box<dyn Engine>,
}

impl std::fmt::Debug for Simulation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Simulation")
            .field("strategy", &self.strategy)
            .field("workers", &self.workers)
            .finish_non_exhaustive()
    }
}

impl Simulation {
    /// Sets up `strategy` over `logic`. `workers` defaults to the book's count for the
    /// pipelines and the pool, and is an error for strategies that have no worker count.
    pub fn new<L>(
        strategy: Strategy,
        workers: Option<NonZeroUsize>,
        logic: Arc<L>,
    ) -> Result<Self, LifeError>
    where
        L: CellLogic + AsyncCellLogic,
    {
        Self::with_rule(strategy, workers, logic, Rule::CONWAY)
    }

    /// As [`new`](Self::new), for a rule other than Conway's. The book's strategies ask
    /// `logic` for every cell (give it the same rule, as with
    /// [`SimulatedIo::with_rule`](super::SimulatedIo::with_rule)); `parallel` and
    /// `hashlife` do no I/O and apply `rule` themselves.
    pub fn with_rule<L>(
        strategy: Strategy,
        workers: Option<NonZeroUsize>,
        logic: Arc<L>,
        rule: Rule,
    ) -> Result<Self, LifeError>
    where
        L: CellLogic + AsyncCellLogic,
    {
        let default = strategy.default_workers();
        if workers.is_some() && default.is_none() {
            return Err(LifeError::WorkersNotApplicable { strategy });
        }
        let workers = workers.or(default);
        let start = |source| LifeError::Start { strategy, source };
        let engine: Box<dyn Engine> = match (strategy, workers) {
            (Strategy::Serial, _) => Box::new(Serial::new(logic)),
            (Strategy::ThreadPerCell, _) => Box::new(ThreadPerCell::new(logic)),
            #[cfg(feature = "async")]
            (Strategy::Async, _) => Box::new(Tasks::new(logic).map_err(start)?),
            #[cfg(not(feature = "async"))]
            (Strategy::Async, _) => {
                return Err(start(std::io::Error::new(
                    std::io::ErrorKind::Unsupported,
                    "the async strategy needs concur's `async` feature (tokio)",
                )));
            }
            (Strategy::Pipeline, Some(w)) => Box::new(Pipeline::new(logic, w).map_err(start)?),
            (Strategy::PhasedPipeline, Some(w)) => {
                Box::new(PhasedPipeline::new(logic, w).map_err(start)?)
            }
            (Strategy::Pool, Some(w)) => Box::new(Pool::new(logic, w).map_err(start)?),
            (Strategy::Parallel, _) => Box::new(Parallel(rule)),
            (Strategy::Hashlife, _) => Box::new(TorusHashlife(TorusStepper::new(rule))),
            (Strategy::Pipeline | Strategy::PhasedPipeline | Strategy::Pool, None) => {
                unreachable!("these strategies have a default worker count")
            }
        };
        Ok(Self {
            strategy,
            workers,
            engine,
        })
    }

    /// The strategy in use.
    pub fn strategy(&self) -> Strategy {
        self.strategy
    }

    /// The worker count in use, for strategies that have one.
    pub fn workers(&self) -> Option<NonZeroUsize> {
        self.workers
    }

    /// Computes the generation after `grid`. Every cell reads `grid` and writes the
    /// returned grid, so cells move in lockstep.
    pub fn step(&mut self, grid: &Arc<Grid>) -> Result<Grid, LifeError> {
        self.engine.step(grid)
    }

    /// Runs `generations` steps from `grid`, calling `observe` with generation 0 and then
    /// after every step, and returns the last grid.
    pub fn run(
        &mut self,
        grid: Grid,
        generations: usize,
        mut observe: impl FnMut(&Generation<'_>),
    ) -> Result<Grid, LifeError> {
        self.run_until(grid, generations, |generation| {
            observe(generation);
            ControlFlow::Continue(())
        })
    }

    /// As [`run`](Self::run), but stops early when `observe` breaks (a viewer that
    /// quit); returns the last grid computed.
    pub fn run_until(
        &mut self,
        grid: Grid,
        generations: usize,
        mut observe: impl FnMut(&Generation<'_>) -> ControlFlow<()>,
    ) -> Result<Grid, LifeError> {
        self.engine.run(grid, generations, &mut observe)
    }

    /// Stops and joins every worker, reporting any that panicked. Dropping a
    /// `Simulation` also stops and joins them, silently.
    pub fn shutdown(self) -> Result<(), LifeError> {
        self.engine.shutdown()
    }
}

/// HashLife on the grid's torus, one generation per step.
struct TorusHashlife(TorusStepper);

impl super::strategy::Engine for TorusHashlife {
    fn step(&mut self, grid: &Arc<Grid>) -> Result<Grid, LifeError> {
        Ok(self.0.step(grid))
    }

    fn shutdown(self: Box<Self>) -> Result<(), LifeError> {
        Ok(())
    }
}
