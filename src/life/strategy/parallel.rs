//! Not in the book: Life with no per-cell I/O, at the speed of the hardware.
//!
//! Item 64 ends the chapter by moving CPU-bound work onto every core. Once the rule no
//! longer waits on the network, that is all Life is: this strategy packs the grid 64
//! cells to a word ([`PackedGrid`]), applies the rule with word-wide full adders, and
//! splits the rows across cores with rayon. The grid stays packed between generations;
//! it is unpacked only when someone asks for the cells.
//!
//! It never calls the I/O seam, so `--latency`, `--rules` and `--fail-at` do not apply.

use std::ops::ControlFlow;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::Engine;
use crate::life::error::LifeError;
use crate::life::grid::Grid;
use crate::life::packed::PackedGrid;
use crate::life::rule::Rule;
use crate::life::simulation::Generation;

/// The packed, bit-parallel engine, applying its rule. Its threads are rayon's global pool.
pub(crate) struct Parallel(pub(crate) Rule);

impl Engine for Parallel {
    fn step(&mut self, grid: &Arc<Grid>) -> Result<Grid, LifeError> {
        Ok(PackedGrid::from_grid(grid).step_with(self.0).to_grid())
    }

    fn run(
        &mut self,
        grid: Grid,
        generations: usize,
        observe: &mut dyn FnMut(&Generation<'_>) -> ControlFlow<()>,
    ) -> Result<Grid, LifeError> {
        let mut now = PackedGrid::from_grid(&grid);
        drop(grid);
        let mut next = now.clone();
        if observe(&Generation::packed(0, &now, Duration::ZERO)).is_continue() {
            for index in 1..=generations {
                let start = Instant::now();
                now.step_into_with(&mut next, self.0);
                let elapsed = start.elapsed();
                std::mem::swap(&mut now, &mut next);
                if observe(&Generation::packed(index, &now, elapsed)).is_break() {
                    break;
                }
            }
        }
        Ok(now.to_grid())
    }

    fn shutdown(self: Box<Self>) -> Result<(), LifeError> {
        Ok(())
    }
}
