//! Item 60, asyncio `simulate`: a tokio task per cell, fan-out then gather.
//!
//! Every cell becomes a task that awaits the async seam; the generation waits for all of
//! them. Because a waiting task is a small state machine, not a thread, every cell's I/O
//! overlaps: a generation takes one round trip at 45 cells, 10,000 or 100,000.
//!
//! **What Rust changes.** A task costs a few hundred bytes, not a thread stack, and the
//! runtime runs tasks on every core, where asyncio runs them all on one thread. Tasks
//! share the previous generation as an `Arc<Grid>`, and each returns its next state
//! through its `JoinHandle`, so no lock is needed; a task that panics is reported as its
//! cell's error, as an exception would be by `gather`.

use std::io;
use std::sync::Arc;

use tokio::runtime::Runtime;

use super::{Engine, FanIn, panicked, query};
use crate::life::cell_io::AsyncCellLogic;
use crate::life::error::LifeError;
use crate::life::grid::Grid;

/// Computes the generation after `grid` with one spawned task per cell.
///
/// Call it inside a tokio runtime with the timer enabled (for [`SimulatedIo`]). Tests
/// run it under `tokio::time::pause` to check, in virtual time, that all cells overlap.
///
/// [`SimulatedIo`]: crate::life::SimulatedIo
pub async fn simulate<L: AsyncCellLogic>(
    grid: Arc<Grid>,
    logic: Arc<L>,
) -> Result<Grid, LifeError> {
    // Fan out.
    let tasks: Vec<_> = grid
        .positions()
        .map(|(y, x)| {
            let q = query(&grid, y, x);
            let logic = Arc::clone(&logic);
            (
                (y, x),
                tokio::spawn(async move { logic.next_state_async(q).await }),
            )
        })
        .collect();
    // Fan in (gather), in cell order.
    let mut fan_in = FanIn::new(&grid)?;
    for ((y, x), task) in tasks {
        let outcome = match task.await {
            Ok(outcome) => outcome,
            Err(err) if err.is_panic() => Err(panicked(&crate::executor::panic_message(
                err.into_panic().as_ref(),
            ))),
            Err(err) => Err(io::Error::other(err)),
        };
        fan_in.record(y, x, outcome);
    }
    fan_in.finish()
}

/// The async engine: a multi-threaded tokio runtime that lives across generations.
pub(crate) struct Tasks<L> {
    runtime: Runtime,
    logic: Arc<L>,
}

impl<L: AsyncCellLogic> Tasks<L> {
    pub(crate) fn new(logic: Arc<L>) -> io::Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .thread_name("life-async")
            .enable_time()
            .build()?;
        Ok(Self { runtime, logic })
    }
}

impl<L: AsyncCellLogic> Engine for Tasks<L> {
    fn step(&mut self, grid: &Arc<Grid>) -> Result<Grid, LifeError> {
        self.runtime
            .block_on(simulate(Arc::clone(grid), Arc::clone(&self.logic)))
    }

    fn shutdown(self: Box<Self>) -> Result<(), LifeError> {
        // Every task was awaited, so nothing is left to cancel; this joins the workers.
        drop(self.runtime);
        Ok(())
    }
}
