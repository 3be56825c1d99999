//! Items 56-60 in the tour: the glider, the latency story, errors, and scale.

use std::io::Write;
use std::num::NonZeroUsize;
use std::sync::Arc;
use std::time::Duration;

use super::{TourError, TourOptions, chain, heading};
use crate::life::report::median_seconds;
use crate::life::{ColumnPrinter, Grid, LifeError, SimulatedIo, Simulation, Strategy};
use crate::measure::PeakThreads;

/// Runs the Life part of the tour.
pub(super) fn run(out: &mut dyn Write, options: TourOptions) -> Result<(), TourError> {
    life_glider(out)?;
    life_latency(out, options)?;
    life_errors(out)?;
    if !options.quick {
        life_scale(out)?;
    }
    Ok(())
}

/// Item 56: the book's glider, printed in the book's columns.
fn life_glider(out: &mut dyn Write) -> Result<(), TourError> {
    heading(
        out,
        "Item 56: Conway's Game of Life, the chapter's running example",
    )?;
    writeln!(
        out,
        "The book's 5x9 glider over four generations, moving down and to the right:\n"
    )?;
    let mut sim = Simulation::new(Strategy::Serial, None, Arc::new(SimulatedIo::default()))?;
    let mut columns = ColumnPrinter::default();
    sim.run(Grid::glider(), 4, |g| columns.push(&g.grid()))?;
    sim.shutdown()?;
    writeln!(out, "{columns}")?;
    Ok(())
}

/// The book's claim about a strategy at 45 cells, in its own words.
fn claim(strategy: Strategy) -> &'static str {
    match strategy {
        Strategy::Serial => "45 x 100 ms = 4.5 s",
        Strategy::ThreadPerCell => "~100 ms, any size",
        Strategy::Pipeline => "bounded by 5 workers",
        Strategy::PhasedPipeline => "bounded by 5 workers",
        Strategy::Pool => "bounded by 10 workers",
        Strategy::Async => "~100 ms, any size",
        Strategy::Parallel => "(not in the book)",
    }
}

/// Items 56-60: every strategy on the glider with slow I/O, against its I/O floor.
fn life_latency(out: &mut dyn Write, options: TourOptions) -> Result<(), TourError> {
    let latency = options.latency();
    let generations = options.generations();
    heading(out, "Items 56-60: fan-out and fan-in for slow I/O")?;
    writeln!(
        out,
        "Each of the 45 cells does {} ms of I/O per generation. The I/O floor is the least a\n\
         generation can take: serial pays every round trip, thread-per-cell and async overlap\n\
         them all, and the pipelines and pool overlap as many as they have workers.\n",
        latency.as_millis()
    )?;
    writeln!(
        out,
        "{:<16} {:<34} {:<22} {:>9} {:>9} {:>7}",
        "strategy", "book", "book's claim", "I/O floor", "measured", "xfloor"
    )?;
    let mut finals: Vec<(Strategy, Grid)> = Vec::new();
    for strategy in Strategy::ALL {
        let io = Arc::new(SimulatedIo::new(latency));
        let mut sim = Simulation::new(strategy, None, io)?;
        let mut times = Vec::new();
        let last = sim.run(Grid::glider(), generations, |g| {
            if g.index > 0 {
                times.push(g.elapsed);
            }
        })?;
        sim.shutdown()?;
        let measured = median_seconds(&times);
        let floor = strategy
            .io_floor(45, strategy.default_workers(), latency)
            .as_secs_f64();
        writeln!(
            out,
            "{:<16} {:<34} {:<22} {:>7.3} s {:>7.3} s {:>6.2}x",
            strategy.name(),
            strategy.book(),
            claim(strategy),
            floor,
            measured,
            measured / floor
        )?;
        out.flush()?;
        finals.push((strategy, last));
    }
    let serial = &finals[0].1;
    let agree = finals.iter().all(|(_, grid)| grid == serial);
    writeln!(
        out,
        "\nAll six strategies produced {} grids after {generations} generation(s).",
        if agree { "identical" } else { "DIFFERENT" }
    )?;
    writeln!(
        out,
        "Rust: the previous generation is shared read-only (Arc<Grid>), so only\n\
         thread-per-cell's next grid takes a lock; the book locks every get and set."
    )?;
    Ok(())
}

/// Item 57: errors reach the caller under every strategy.
fn life_errors(out: &mut dyn Write) -> Result<(), TourError> {
    heading(out, "Item 57: errors must reach the code that fanned out")?;
    writeln!(
        out,
        "The book's Thread prints the OSError to stderr and the caller never sees it.\n\
         Here cell (2, 3) fails its I/O under each strategy:\n"
    )?;
    for strategy in Strategy::ALL {
        let io = Arc::new(SimulatedIo::default().failing_at(2, 3));
        let mut sim = Simulation::new(strategy, None, io)?;
        let outcome = sim.run(Grid::glider(), 1, |_| {});
        let shutdown = sim.shutdown();
        let text = match (outcome, shutdown) {
            (Err(err), _) => format!("Err: {}", chain(&err)),
            (Ok(_), Err(err)) => format!("shutdown failed: {}", chain(&err)),
            (Ok(_), Ok(())) => "Ok (the error was lost!)".to_owned(),
        };
        writeln!(out, "{:<16} {text}", strategy.name())?;
    }
    Ok(())
}

// The book's Python programs (benches/python/life_book.py, CPython 3.11) on the project's
// 2-core machine, seconds per generation with 100 ms of I/O per cell, measured with
// `concur life bench --python python3` (see the README). Quoted, not re-measured here.
const PYTHON_10K_THREAD_PER_CELL: f64 = 1.71;
const PYTHON_10K_ASYNCIO: f64 = 0.22;
const PYTHON_100K_ASYNCIO: f64 = 2.64;

/// Items 57 and 60 at scale: a thread per cell against a task per cell.
fn life_scale(out: &mut dyn Write) -> Result<(), TourError> {
    heading(
        out,
        "Items 57 and 60 at scale: a thread per cell or a task per cell",
    )?;
    writeln!(
        out,
        "The book: 10,000 threads \"couldn't even fit in the memory of my machine\", while\n\
         coroutines handle tens of thousands of concurrent I/O calls. 100 ms of I/O per cell:\n"
    )?;
    writeln!(
        out,
        "{:<16} {:>8} {:>10} {:>13} {:>15}",
        "strategy", "cells", "measured", "peak threads", "Python (bench)"
    )?;
    let runs = [
        (
            Strategy::ThreadPerCell,
            (100, 100),
            1,
            PYTHON_10K_THREAD_PER_CELL,
        ),
        (Strategy::Async, (100, 100), 2, PYTHON_10K_ASYNCIO),
        (Strategy::Async, (250, 400), 2, PYTHON_100K_ASYNCIO),
    ];
    for (strategy, (h, w), generations, python) in runs {
        let grid = Grid::random(h, w, 0.3, 1).map_err(LifeError::from)?;
        let io = Arc::new(SimulatedIo::new(Duration::from_millis(100)));
        let mut sim = Simulation::new(strategy, None::<NonZeroUsize>, io)?;
        let threads = PeakThreads::start(Duration::from_millis(2));
        let mut times = Vec::new();
        sim.run(grid, generations, |g| {
            if g.index > 0 {
                times.push(g.elapsed);
            }
        })?;
        sim.shutdown()?;
        let peak = threads
            .finish()
            .map_or_else(|| "-".to_owned(), |n| n.to_string());
        writeln!(
            out,
            "{:<16} {:>8} {:>8.3} s {:>13} {:>13.2} s",
            strategy.name(),
            h * w,
            median_seconds(&times),
            peak,
            python
        )?;
        out.flush()?;
    }
    writeln!(
        out,
        "\nRust: a task is a few hundred bytes and the runtime uses both cores; 10,000\n\
         threads do start (with 128 KiB stacks), but each costs a clone() and a join."
    )?;
    Ok(())
}
