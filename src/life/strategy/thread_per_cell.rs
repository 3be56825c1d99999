//! Item 57, `simulate_threaded`: a new OS thread for every cell, every generation.
//!
//! Each thread reads the previous generation and writes its cell into a
//! [`LockingGrid`]; the main thread fans in by joining them all.
//!
//! **What Rust changes.** The book lists three problems. Two remain: thread start-up
//! cost and memory (each thread still needs a stack; concur asks for 128 KiB instead of
//! the OS's 8 MiB default, but 10,000 threads per generation is still 10,000 `clone`
//! calls). The third goes away: the previous generation is shared as `&Grid`, and the
//! borrow checker proves it is read-only, so only the next grid needs a lock. And the
//! book's worst surprise, that `Thread` swallows the `OSError` and prints it to stderr,
//! cannot happen: a thread's result comes back through `join`, so the error reaches the
//! caller. When the OS refuses a thread, the spawn error is returned, naming which
//! thread of how many, after the threads already started are joined. Some OS limits
//! abort a process instead of refusing the thread (see [`crate::limits`]), so those are
//! checked before each generation and treated as a refusal.

use std::io;
use std::sync::Arc;
use std::thread;

use super::{Engine, FirstFailure, ask, panicked, query};
use crate::executor::panic_message;
use crate::life::cell_io::CellLogic;
use crate::life::error::LifeError;
use crate::life::grid::{Grid, LockingGrid};
use crate::limits::thread_budget;

/// Stack size of a cell thread. A cell does one I/O call and a lock; 128 KiB is ample.
const CELL_STACK: usize = 128 * 1024;

/// The thread-per-cell engine. It keeps no threads between generations.
pub(crate) struct ThreadPerCell<L> {
    logic: Arc<L>,
}

impl<L: CellLogic> ThreadPerCell<L> {
    pub(crate) fn new(logic: Arc<L>) -> Self {
        Self { logic }
    }
}

impl<L: CellLogic> Engine for ThreadPerCell<L> {
    fn step(&mut self, grid: &Arc<Grid>) -> Result<Grid, LifeError> {
        let grid: &Grid = grid;
        let logic: &L = &self.logic;
        let next = LockingGrid::new(grid.height(), grid.width())?;
        let total = grid.len();
        let mut failures = FirstFailure::default();
        // Past this many threads the OS would abort the process instead of refusing.
        let budget = thread_budget(CELL_STACK);
        let spawn_error = thread::scope(|scope| {
            let mut threads = Vec::with_capacity(total);
            let mut spawn_error = None;
            for (i, (y, x)) in grid.positions().enumerate() {
                if let Some(budget) = budget.as_ref().filter(|b| i >= b.threads) {
                    spawn_error = Some(LifeError::Spawn {
                        number: i + 1,
                        total,
                        source: io::Error::other(format!(
                            "the OS allows about {} more threads here ({})",
                            budget.threads, budget.limit
                        )),
                    });
                    break;
                }
                let next = &next;
                let spawned =
                    thread::Builder::new()
                        .stack_size(CELL_STACK)
                        .spawn_scoped(scope, move || {
                            // step_cell: read the old grid, ask, write the new grid.
                            let state = ask(logic, query(grid, y, x))?;
                            next.set(y as isize, x as isize, state);
                            Ok(())
                        });
                match spawned {
                    Ok(handle) => threads.push(((y, x), handle)),
                    Err(source) => {
                        spawn_error = Some(LifeError::Spawn {
                            number: i + 1,
                            total,
                            source,
                        });
                        break;
                    }
                }
            }
            // Fan in: every started thread is joined, even after a spawn failure.
            for ((y, x), handle) in threads {
                match handle.join() {
                    Ok(Ok(())) => {}
                    Ok(Err(err)) => failures.note(y, x, err),
                    Err(payload) => failures.note(y, x, panicked(&panic_message(payload.as_ref()))),
                }
            }
            spawn_error
        });
        if let Some(err) = spawn_error {
            return Err(err);
        }
        failures.check()?;
        Ok(next.into_inner())
    }

    fn shutdown(self: Box<Self>) -> Result<(), LifeError> {
        Ok(())
    }
}
