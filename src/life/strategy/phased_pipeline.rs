//! Item 58, `simulate_phased_pipeline`: a count_neighbors stage, then a game_logic stage.
//!
//! The main thread puts one job per cell on the input queue; `workers` count threads
//! compute the cell's state and neighbour count and pass the query on; `workers` logic
//! threads do the slow I/O; the main thread gathers one outcome per cell. Shutdown is
//! the book's: close the input, join the count stage, close the middle queue, join the
//! logic stage.
//!
//! **What Rust changes.** The book must switch to a `LockingGrid` because count workers
//! read the grid from other threads. Here each job carries an `Arc<Grid>` of the previous
//! generation: shared, immutable, and read without any lock.

use std::io;
use std::num::NonZeroUsize;
use std::sync::Arc;

use super::pipeline::{Outcome, feed_and_gather, start_logic_stage};
use super::{Engine, Strategy, query};
use crate::life::cell_io::{CellLogic, CellQuery};
use crate::life::error::LifeError;
use crate::life::grid::Grid;
use crate::queue::{ClosableQueue, Workers};

/// A count_neighbors job: which cell, and the generation to read.
type CountJob = (usize, usize, Arc<Grid>);

/// The phased pipeline engine.
pub(crate) struct PhasedPipeline {
    input: Arc<ClosableQueue<CountJob>>,
    logic_queue: Arc<ClosableQueue<CellQuery>>,
    output: Arc<ClosableQueue<Outcome>>,
    stages: Option<(Workers, Workers)>,
}

impl PhasedPipeline {
    pub(crate) fn new<L: CellLogic>(logic: Arc<L>, workers: NonZeroUsize) -> io::Result<Self> {
        let capacity = workers.get().saturating_mul(2);
        let input = Arc::new(ClosableQueue::bounded(capacity));
        let logic_queue = Arc::new(ClosableQueue::bounded(capacity));
        let output = Arc::new(ClosableQueue::unbounded());
        let counters = Workers::start(
            "life-count",
            workers.get(),
            &input,
            &logic_queue,
            |(y, x, grid): CountJob| query(&grid, y, x),
        )?;
        let deciders = match start_logic_stage(logic, workers, &logic_queue, &output) {
            Ok(deciders) => deciders,
            Err(err) => {
                input.close();
                let _ = counters.join();
                return Err(err);
            }
        };
        Ok(Self {
            input,
            logic_queue,
            output,
            stages: Some((counters, deciders)),
        })
    }

    fn stop(&mut self) -> Result<(), LifeError> {
        self.input.close();
        let Some((counters, deciders)) = self.stages.take() else {
            return Ok(());
        };
        let counted = counters.join();
        self.logic_queue.close();
        let decided = deciders.join();
        self.output.close();
        counted?;
        decided?;
        Ok(())
    }
}

impl Engine for PhasedPipeline {
    fn step(&mut self, grid: &Arc<Grid>) -> Result<Grid, LifeError> {
        let job = |y, x| (y, x, Arc::clone(grid));
        feed_and_gather(
            grid,
            &self.input,
            job,
            &self.output,
            Strategy::PhasedPipeline,
        )
    }

    fn shutdown(mut self: Box<Self>) -> Result<(), LifeError> {
        self.stop()
    }
}

impl Drop for PhasedPipeline {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}
