//! Item 60, asyncio `simulate`: a coroutine per cell, fan-out then gather.
//!
//! The book's shape is kept: every cell's I/O is a future (`step_cell` awaiting the
//! async seam), all of a generation's futures are in flight at once, and the generation
//! gathers them. Because a waiting future is a small state machine, not a thread, a
//! generation takes about one round trip at 45 cells, 10,000 or ten million.
//!
//! **What changed for scale.** The first version spawned one tokio task per cell, as
//! asyncio's `create_task` does. At a million cells that cost ~1.6 µs and ~580 bytes per
//! cell, nearly all of it spawning, scheduling and joining tasks. Now:
//!
//! * **one task per core** ("shard") drives its share of the cells' futures, so nothing
//!   is spawned per cell and no cell's result goes through a `JoinHandle`;
//! * cells are handed to the seam in **batches** of [`BATCH`] whose I/O starts
//!   together ([`AsyncCellLogic::next_states_async`]). The seam's default joins one
//!   future per cell, the book's coroutine per cell; [`SimulatedIo`] instead waits once
//!   per batch on one deadline, which is the same wait for every cell in it (all of
//!   them started at the same instant), without a timer per cell. The network client
//!   sends a batch's requests in one write and awaits each reply.
//!
//! **What Rust changes.** The runtime runs the shards on every core, where asyncio runs
//! all coroutines on one thread. Shards share the previous generation as an
//! `Arc<Grid>`; a shard that panics is reported as its first cell's error, as an
//! exception would be by `gather`.
//!
//! [`SimulatedIo`]: crate::life::SimulatedIo

use std::io;
use std::ops::Range;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use futures_util::FutureExt;
use futures_util::future::join_all;
use tokio::runtime::Runtime;

use super::{Engine, FanIn, panicked, query};
use crate::life::cell_io::{AsyncCellLogic, CellQuery};
use crate::life::error::LifeError;
use crate::life::grid::{Cell, Grid};

/// Cells handed to the seam together: their I/O starts at the same instant.
pub const BATCH: usize = 1024;

/// The book's `step_cell` for a batch of cells: their queries, then their I/O.
///
/// The queries are built when the future first runs, not before, so only the batches
/// in flight hold them.
async fn step_cells<L: AsyncCellLogic>(
    grid: &Grid,
    logic: &L,
    cells: Range<usize>,
) -> Vec<io::Result<Cell>> {
    let width = grid.width();
    let queries: Vec<CellQuery> = cells.map(|i| query(grid, i / width, i % width)).collect();
    logic.next_states_async(queries).await
}

/// One shard: every batch of `cells` in flight at once, gathered in order.
async fn shard<L: AsyncCellLogic>(
    grid: Arc<Grid>,
    logic: Arc<L>,
    cells: Range<usize>,
) -> Vec<io::Result<Cell>> {
    let batches = cells.clone().step_by(BATCH).map(|start| {
        let end = (start + BATCH).min(cells.end);
        // A seam whose batch form panics fails the batch's cells, not the whole shard.
        let batch = AssertUnwindSafe(step_cells(&grid, &*logic, start..end)).catch_unwind();
        async move {
            batch.await.unwrap_or_else(|payload| {
                let message = crate::executor::panic_message(payload.as_ref());
                (start..end).map(|_| Err(panicked(&message))).collect()
            })
        }
    });
    join_all(batches).await.into_iter().flatten().collect()
}

/// Computes the generation after `grid`: fan out every cell's I/O, then gather.
///
/// Call it inside a tokio runtime with the timer enabled (for [`SimulatedIo`]). Tests
/// run it under `tokio::time::pause` to check, in virtual time, that all cells overlap.
///
/// [`SimulatedIo`]: crate::life::SimulatedIo
pub async fn simulate<L: AsyncCellLogic>(
    grid: Arc<Grid>,
    logic: Arc<L>,
) -> Result<Grid, LifeError> {
    // Fan out: one shard per core (a few more, so that a slow one does not hold up the
    // generation), each a contiguous run of cells in row-major order.
    let cores = tokio::runtime::Handle::current().metrics().num_workers();
    let cells = grid.len();
    let per_shard = cells.div_ceil(cores * 2).max(BATCH);
    let shards: Vec<_> = (0..cells)
        .step_by(per_shard)
        .map(|start| {
            let range = start..(start + per_shard).min(cells);
            let task = tokio::spawn(shard(Arc::clone(&grid), Arc::clone(&logic), range.clone()));
            (range, task)
        })
        .collect();
    // Fan in (gather), in cell order.
    let width = grid.width();
    let mut fan_in = FanIn::new(&grid)?;
    for (range, task) in shards {
        match task.await {
            Ok(outcomes) => {
                for (i, outcome) in range.zip(outcomes) {
                    fan_in.record_index(i, outcome);
                }
            }
            Err(err) => {
                let err = if err.is_panic() {
                    panicked(&crate::executor::panic_message(err.into_panic().as_ref()))
                } else {
                    io::Error::other(err)
                };
                fan_in.record(range.start / width, range.start % width, Err(err));
            }
        }
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
            .enable_all()
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
        // Every shard was awaited, so nothing is left to cancel; this joins the workers.
        drop(self.runtime);
        Ok(())
    }
}
