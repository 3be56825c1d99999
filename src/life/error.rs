//! What can end a simulation.

use std::io;

use thiserror::Error;

use super::footprint::human;
use super::grid::GridError;
use super::strategy::Strategy;
use crate::queue::WorkerPanicked;

/// Why a simulation stopped. Each variant says where.
///
/// Messages follow the error-chain convention: the cause is the [`source`], so print
/// with `{:#}` (anyhow) or walk the chain to get, for example,
/// `SimulationError at (2, 3): Problem with I/O`.
///
/// [`source`]: std::error::Error::source
#[derive(Debug, Error)]
pub enum LifeError {
    /// A cell's I/O failed: the book's `SimulationError(y, x)`.
    #[error("SimulationError at ({y}, {x})")]
    Cell {
        /// Row of the failing cell.
        y: usize,
        /// Column of the failing cell.
        x: usize,
        /// The I/O error it raised.
        #[source]
        source: io::Error,
    },
    /// thread-per-cell hit the OS's limit on threads (or memory for their stacks).
    #[error("cannot spawn thread {number} of {total}")]
    Spawn {
        /// 1-based number of the thread that failed to start.
        number: usize,
        /// Threads this generation needed.
        total: usize,
        /// What the OS said.
        #[source]
        source: io::Error,
    },
    /// A strategy's long-lived workers (threads or runtime) could not be started.
    #[error("cannot start the {strategy} workers")]
    Start {
        /// The strategy being set up.
        strategy: Strategy,
        /// What the OS said.
        #[source]
        source: io::Error,
    },
    /// A strategy's workers stopped before the generation was complete. It cannot happen
    /// while the engine is in use; it is reported rather than returning a partial grid.
    #[error("the {strategy} workers stopped before the generation was complete")]
    Stopped {
        /// The strategy whose workers stopped.
        strategy: Strategy,
    },
    /// `--jobs` was given to a strategy that has no worker count.
    #[error(
        "--jobs applies to pipeline, phased-pipeline and pool, not {strategy} (hashlife and \
         parallel take it as their thread count)"
    )]
    WorkersNotApplicable {
        /// The strategy that was asked.
        strategy: Strategy,
    },
    /// The next generation's grid could not be made.
    #[error(transparent)]
    Grid(#[from] GridError),
    /// A worker thread panicked outside any cell's logic.
    #[error(transparent)]
    WorkerPanicked(#[from] WorkerPanicked),
    /// The run would need more memory than the machine (or its limits) can give.
    #[error(
        "{cells} cells with --mode {strategy} need about {} ({} bytes per cell), \
         but only {} is available ({limit}); try a smaller grid, or --mode serial, \
         pipeline or phased-pipeline",
        human(*needed),
        strategy.bytes_per_cell(),
        human(*available)
    )]
    NotEnoughMemory {
        /// The strategy asked for.
        strategy: Strategy,
        /// Cells in the grid.
        cells: usize,
        /// The estimate, in bytes.
        needed: u64,
        /// What is available, in bytes.
        available: u64,
        /// The limit that says so.
        limit: String,
    },
}

impl LifeError {
    /// The failing cell, for errors that have one.
    pub fn cell(&self) -> Option<(usize, usize)> {
        match self {
            LifeError::Cell { y, x, .. } => Some((*y, *x)),
            _ => None,
        }
    }
}
