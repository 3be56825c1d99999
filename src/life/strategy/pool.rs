//! Item 59, `simulate_pool`: submit every cell to a fixed thread pool, then wait on the
//! futures in order.
//!
//! This is the book's favourite thread-based answer: no per-generation thread start-up,
//! bounded memory, and errors come back through `result()`. Like the pipeline, its I/O
//! parallelism is capped at the worker count (10 by default).
//!
//! **What Rust changes.** The book submits `step_cell`, which writes into a `LockingGrid`.
//! Here each task returns its cell's next state through its handle, so the next grid is
//! written by the main thread alone and needs no lock.

use std::io;
use std::num::NonZeroUsize;
use std::sync::Arc;

use super::{Engine, FanIn, ask, query};
use crate::executor::ThreadPool;
use crate::life::cell_io::CellLogic;
use crate::life::error::LifeError;
use crate::life::grid::Grid;

/// The pool engine.
pub(crate) struct Pool<L> {
    pool: ThreadPool,
    logic: Arc<L>,
}

impl<L: CellLogic> Pool<L> {
    pub(crate) fn new(logic: Arc<L>, workers: NonZeroUsize) -> io::Result<Self> {
        Ok(Self {
            pool: ThreadPool::new("life-pool", workers)?,
            logic,
        })
    }
}

impl<L: CellLogic> Engine for Pool<L> {
    fn step(&mut self, grid: &Arc<Grid>) -> Result<Grid, LifeError> {
        // Fan out: one task per cell.
        let futures: Vec<_> = grid
            .positions()
            .map(|(y, x)| {
                let (grid, logic) = (Arc::clone(grid), Arc::clone(&self.logic));
                (
                    (y, x),
                    self.pool.submit(move || ask(&*logic, query(&grid, y, x))),
                )
            })
            .collect();
        // Fan in: wait for each result in submission order.
        let mut fan_in = FanIn::new(grid)?;
        for ((y, x), future) in futures {
            let outcome = future
                .result()
                .unwrap_or_else(|err| Err(io::Error::other(err)));
            fan_in.record(y, x, outcome);
        }
        fan_in.finish()
    }

    fn shutdown(self: Box<Self>) -> Result<(), LifeError> {
        // Dropping the pool joins its threads; tasks catch their own panics.
        drop(self.pool);
        Ok(())
    }
}
