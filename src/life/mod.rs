//! Conway's Game of Life whose cells do slow I/O, made concurrent every way the book
//! compares (items 56–60).
//!
//! The book's motivation: in a "massively multiplayer" Life, each cell's `game_logic`
//! must do network I/O. At 100 ms per round trip, a serial generation of 45 cells takes
//! 4.5 s; the fix is to fan the I/O out and fan the results back in. One model serves
//! every strategy:
//!
//! * [`grid`]: the torus [`Grid`] (and the book's [`LockingGrid`]);
//! * [`rule`]: [`count_neighbors`] and [`game_logic`], and any B/S [`Rule`](rule::Rule);
//! * [`cell_io`]: the I/O seam, blocking and async, with [`SimulatedIo`];
//! * [`remote`]: the same seam over TCP, to a real rules server;
//! * [`strategy`]: one small file per fan-out strategy;
//! * [`packed`]: the grid 64 cells to a word, for `--mode parallel`;
//! * [`hashlife`]: Gosper's HashLife on the unbounded plane, on every core;
//! * [`Simulation`]: the loop that drives any strategy;
//! * [`footprint`]: the memory a run needs, checked before it starts;
//! * [`pattern`] and [`ColumnPrinter`]: input files and the book's column output;
//! * [`save`]: the grid written back out as RLE or `.cells`.
//!
//! Watching a run (in the terminal or as a GIF) and the measurements behind the book's
//! claims are the command line's (`concur life --animate`, `concur life bench`).
//!
//! **What Rust changes.** Threads cost less than the book's 8 MB (the stack size is
//! ours to choose) but still cost a `clone` each; async tasks cost bytes, and run on
//! every core. The previous generation is immutable while the next is built, and the
//! compiler knows it, so only thread-per-cell's next grid needs a lock. No strategy can
//! swallow a cell's error: every fan-in returns a `Result`.

#[cfg(feature = "cli")]
pub(crate) mod bench;
pub mod cell_io;
mod columns;
mod error;
pub mod footprint;
pub mod grid;
pub mod hashlife;
#[cfg(feature = "cli")]
pub(crate) mod hashlife_bench;
pub mod packed;
pub mod pattern;
pub mod plane;
#[cfg(feature = "async")]
pub mod remote;
pub mod report;
pub mod rule;
pub mod save;
mod simulation;
pub mod strategy;
#[cfg(feature = "cli")]
pub(crate) mod view;

pub use cell_io::{AsyncCellLogic, CellLogic, CellQuery, SimulatedIo};
pub use columns::ColumnPrinter;
pub use error::LifeError;
pub use grid::{Cell, Grid, GridError, LockingGrid, MAX_CELLS};
pub use pattern::PatternError;
pub use rule::{count_neighbors, game_logic};
pub use simulation::{Generation, Simulation};
pub use strategy::Strategy;
