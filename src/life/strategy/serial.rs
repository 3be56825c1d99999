//! Item 56, `simulate`: one thread visits every cell in turn.
//!
//! With 100 ms of I/O per cell, 45 cells take 4.5 s per generation and 10,000 cells
//! take over 16 minutes: the latency problem the rest of the chapter solves.

use std::sync::Arc;

use super::{Engine, FanIn, ask, query};
use crate::life::cell_io::CellLogic;
use crate::life::error::LifeError;
use crate::life::grid::Grid;

/// The serial engine: no threads, no queues.
pub(crate) struct Serial<L> {
    logic: Arc<L>,
}

impl<L: CellLogic> Serial<L> {
    pub(crate) fn new(logic: Arc<L>) -> Self {
        Self { logic }
    }
}

impl<L: CellLogic> Engine for Serial<L> {
    fn step(&mut self, grid: &Arc<Grid>) -> Result<Grid, LifeError> {
        let mut fan_in = FanIn::new(grid)?;
        for (y, x) in grid.positions() {
            let outcome = ask(&*self.logic, query(grid, y, x));
            let failed = outcome.is_err();
            fan_in.record(y, x, outcome);
            if failed {
                // The book's `simulate` raises at the first failing cell.
                break;
            }
        }
        fan_in.finish()
    }

    fn shutdown(self: Box<Self>) -> Result<(), LifeError> {
        Ok(())
    }
}
