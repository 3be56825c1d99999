//! Items 56-60 in the tour: the glider, the latency story, errors, and scale.

use std::io::Write;
use std::num::NonZeroUsize;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{TourCharts, TourError, TourOptions, chain, heading};
use crate::life::remote::{self, RulesClient, RulesServerConfig};
use crate::life::report::median_seconds;
use crate::life::{ColumnPrinter, Grid, LifeError, SimulatedIo, Simulation, Strategy};
use crate::measure::PeakThreads;
use crate::report::{Bar, BarChart, BarGroup, Provenance};

/// The latency story's heading.
const LATENCY: &str = "Items 56-60: fan-out and fan-in for slow I/O";

/// Runs the Life part of the tour, with the latency story's chart.
pub(super) fn run(
    out: &mut dyn Write,
    options: TourOptions,
    charts: &mut TourCharts,
) -> Result<(), TourError> {
    life_glider(out)?;
    charts.add(LATENCY, life_latency(out, options)?);
    life_rules_server(out, options)?;
    life_errors(out)?;
    life_compute(out, options)?;
    life_hashlife(out, options)?;
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

/// Runs `sim` for `generations` steps from `grid` and shuts it down; returns the last
/// grid and the median seconds per step.
fn timed_run(sim: Simulation, grid: Grid, generations: usize) -> Result<(Grid, f64), TourError> {
    timed_run_with_range(sim, grid, generations).map(|(grid, median, _)| (grid, median))
}

/// [`timed_run`], with the fastest and the slowest step.
fn timed_run_with_range(
    mut sim: Simulation,
    grid: Grid,
    generations: usize,
) -> Result<(Grid, f64, (f64, f64)), TourError> {
    let mut times = Vec::new();
    let last = sim.run(grid, generations, |g| {
        if g.index > 0 {
            times.push(g.elapsed);
        }
    })?;
    sim.shutdown()?;
    let secs = times.iter().map(Duration::as_secs_f64);
    let range = (
        secs.clone().fold(f64::INFINITY, f64::min),
        secs.fold(0.0, f64::max),
    );
    Ok((last, median_seconds(&times), range))
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
        Strategy::Parallel | Strategy::Hashlife => "(not in the book)",
    }
}

/// Items 56-60: every strategy on the glider with slow I/O, against its I/O floor.
fn life_latency(out: &mut dyn Write, options: TourOptions) -> Result<BarChart, TourError> {
    let latency = options.latency();
    let generations = options.generations();
    heading(out, LATENCY)?;
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
    let mut groups = Vec::new();
    for strategy in Strategy::ALL {
        let io = Arc::new(SimulatedIo::new(latency));
        let sim = Simulation::new(strategy, None, io)?;
        let (last, measured, (fastest, slowest)) =
            timed_run_with_range(sim, Grid::glider(), generations)?;
        let floor = strategy
            .io_floor(45, strategy.default_workers(), latency)
            .as_secs_f64();
        let bar = |series: &str, median: f64, range: (f64, f64), note: String| Bar {
            series: series.into(),
            median,
            min: range.0,
            max: range.1,
            note,
        };
        groups.push(BarGroup {
            label: strategy.name().to_owned(),
            bars: vec![
                bar("I/O floor", floor, (floor, floor), String::new()),
                bar(
                    "concur measured",
                    measured,
                    (fastest, slowest),
                    format!("{:.2}x", measured / floor),
                ),
            ],
        });
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
    Ok(BarChart {
        title: format!(
            "Items 56-60: a generation of 45 cells, each doing {} ms of I/O",
            latency.as_millis()
        ),
        y_label: "seconds per generation (median; whiskers: min-max)".into(),
        groups,
        provenance: Provenance::here(
            format!(
                "{generations} generation(s) per strategy; the floor is the least the I/O allows; labels: measured / floor"
            ),
            options.command(),
        ),
    })
}

/// The book's network I/O for real: the glider through a rules server on loopback.
fn life_rules_server(out: &mut dyn Write, options: TourOptions) -> Result<(), TourError> {
    let latency = options.latency();
    let generations = options.generations();
    heading(out, "Items 56-60 over a real network: a rules server")?;
    writeln!(
        out,
        "The book's game_logic stands for a network call. Here it is one: the tour starts\n\
         `concur life rules-server` in-process on 127.0.0.1, answering each cell after\n\
         {} ms, and the strategies ask it over TCP (4 multiplexed connections).\n",
        latency.as_millis()
    )?;
    let server = RulesServerThread::start(latency)?;
    let expected = {
        let io = Arc::new(SimulatedIo::default());
        let mut sim = Simulation::new(Strategy::Serial, None, io)?;
        let last = sim.run(Grid::glider(), generations, |_| {})?;
        sim.shutdown()?;
        last
    };
    writeln!(
        out,
        "{:<16} {:>9} {:>9} {:>7}  grid",
        "strategy", "I/O floor", "measured", "xfloor"
    )?;
    for strategy in [Strategy::ThreadPerCell, Strategy::Pool, Strategy::Async] {
        let client = RulesClient::new(
            server.addr,
            server.addr.to_string(),
            Duration::from_secs(10),
        );
        let sim = Simulation::new(strategy, None, Arc::new(client))?;
        let (last, measured) = timed_run(sim, Grid::glider(), generations)?;
        let floor = strategy
            .io_floor(45, strategy.default_workers(), latency)
            .as_secs_f64();
        writeln!(
            out,
            "{:<16} {:>7.3} s {:>7.3} s {:>6.2}x  {}",
            strategy.name(),
            floor,
            measured,
            measured / floor,
            if last == expected {
                "same as serial without a server"
            } else {
                "DIFFERENT from serial"
            }
        )?;
        out.flush()?;
    }
    let answered = server.stop();
    writeln!(
        out,
        "\nThe server answered {answered} requests. Requests carry ids, so 45 threads or\n\
         a million futures share the same few sockets (`concur life bench --rules`)."
    )?;
    // A second server, so that the flood is not counted above.
    let server = RulesServerThread::start(latency)?;
    let flooded = flood_without_reading(server.addr).map_err(TourError::Demo)?;
    drop(server);
    let mib = flooded as f64 / f64::from(1 << 20);
    if flooded < FLOOD_CAP {
        writeln!(
            out,
            "A client that sends requests and never reads a reply could send {mib:.1} MiB before\n\
             its writes blocked: the server queues at most {} of replies per connection and\n\
             then stops reading it, so TCP holds the client back (the rest of what it sent\n\
             sits in the two kernels' socket buffers).",
            crate::limits::format_bytes(remote::server::DEFAULT_MAX_QUEUED_BYTES as u64)
        )?;
    } else {
        writeln!(
            out,
            "A client that sends requests and never reads a reply sent {mib:.0} MiB without its\n\
             writes ever blocking: the server did not hold it back."
        )?;
    }
    Ok(())
}

/// The most a flooding client sends in the tour.
const FLOOD_CAP: u64 = 256 << 20;

/// Sends valid requests to `addr` as fast as it takes them, reading nothing, until a
/// write blocks for 300 ms (or [`FLOOD_CAP`] went); returns the bytes sent.
fn flood_without_reading(addr: std::net::SocketAddr) -> std::io::Result<u64> {
    use std::io::Write as _;
    let mut socket = std::net::TcpStream::connect(addr)?;
    socket.set_write_timeout(Some(Duration::from_millis(300)))?;
    let mut batch = Vec::new();
    let query = crate::life::CellQuery {
        y: 1,
        x: 1,
        state: crate::life::Cell::Empty,
        neighbors: 3,
    };
    for id in 0..4096 {
        remote::protocol::encode_request(id, &query, &mut batch);
    }
    let mut sent = 0u64;
    while sent < FLOOD_CAP {
        match socket.write(&batch) {
            Ok(n) => sent += n as u64,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                break;
            }
            Err(e) => return Err(e),
        }
    }
    Ok(sent)
}

/// A rules server on a loopback port, served by its own thread until stopped.
struct RulesServerThread {
    addr: std::net::SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<std::io::Result<u64>>>,
}

impl RulesServerThread {
    fn start(latency: Duration) -> Result<Self, TourError> {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(TourError::Demo)?;
        let addr = listener.local_addr().map_err(TourError::Demo)?;
        listener.set_nonblocking(true).map_err(TourError::Demo)?;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("tour-rules-server".into())
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()?;
                runtime.block_on(async move {
                    let listener = tokio::net::TcpListener::from_std(listener)?;
                    let config = RulesServerConfig {
                        latency,
                        ..RulesServerConfig::default()
                    };
                    let stats = remote::serve(listener, config, async {
                        let _ = stopped.await;
                    })
                    .await?;
                    Ok(stats.answered)
                })
            })
            .map_err(TourError::Demo)?;
        Ok(Self {
            addr,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// Stops the server; returns the requests it answered (0 if it failed).
    fn stop(mut self) -> u64 {
        self.shut().unwrap_or(0)
    }

    fn shut(&mut self) -> Option<u64> {
        let _ = self.stop.take()?.send(());
        self.thread.take()?.join().ok()?.ok()
    }
}

impl Drop for RulesServerThread {
    fn drop(&mut self) {
        self.shut();
    }
}

/// Past the book: Life with no I/O at all, serial against packed words on every core.
fn life_compute(out: &mut dyn Write, options: TourOptions) -> Result<(), TourError> {
    heading(
        out,
        "Past the book: the same rule at the speed of the hardware",
    )?;
    let (side, generations) = if options.quick { (256, 5) } else { (2048, 20) };
    writeln!(
        out,
        "With no I/O per cell, Life is pure computation. --mode parallel packs 64 cells\n\
         into a word, applies the rule with full adders over whole words, and splits the rows\n\
         over both cores (rayon). On a {side}x{side} random grid:\n"
    )?;
    let grid = Grid::random(side, side, 0.3, 1).map_err(LifeError::from)?;
    let mut rates = Vec::new();
    let mut finals = Vec::new();
    for (strategy, steps) in [(Strategy::Serial, 2), (Strategy::Parallel, generations)] {
        let io = Arc::new(SimulatedIo::default());
        let sim = Simulation::new(strategy, None, io)?;
        let (last, seconds) = timed_run(sim, grid.clone(), steps)?;
        let rate = (side * side) as f64 / seconds.max(1e-9);
        writeln!(
            out,
            "{:<16} {:>12.0} M cell-updates/s",
            strategy.name(),
            rate / 1e6
        )?;
        rates.push(rate);
        finals.push((steps, last));
    }
    // Both ran from the same grid; compare at the serial run's generation.
    let mut check = Simulation::new(Strategy::Parallel, None, Arc::new(SimulatedIo::default()))?;
    let parallel_at_2 = check.run(grid, finals[0].0, |_| {})?;
    check.shutdown()?;
    writeln!(
        out,
        "\nparallel is {:.0}x serial, and {} (the README has the 4096x4096 figure).",
        rates[1] / rates[0],
        if parallel_at_2 == finals[0].1 {
            "bit-identical to it"
        } else {
            "DIFFERENT from it"
        }
    )?;
    Ok(())
}

/// Past Golly: HashLife on the unbounded plane, its sub-results on both cores.
fn life_hashlife(out: &mut dyn Write, options: TourOptions) -> Result<(), TourError> {
    use crate::life::hashlife::Universe;
    use crate::life::hashlife_bench::GUN;
    use crate::life::pattern::{PatternFormat, parse};
    use crate::life::rule::Rule;
    heading(
        out,
        "Past Golly: HashLife, a billion generations, on every core",
    )?;
    writeln!(
        out,
        "A pattern file runs on the unbounded plane. --mode hashlife (Gosper's algorithm)\n\
         memoises the future of every distinct square, so a glider gun's 2^30 generations\n\
         cost a few thousand squares. The nine sub-results of a square are independent:\n\
         here they go to rayon, which Golly's HashLife does not do.\n"
    )?;
    let gun = parse(GUN, PatternFormat::Rle)?;
    let start = Instant::now();
    let mut universe = Universe::from_grid(&gun, (0, 0), Rule::CONWAY, true)?;
    universe.advance(1 << 30)?;
    let seconds = start.elapsed().as_secs_f64();
    let alive = universe.population();
    writeln!(
        out,
        "Gosper gun, 2^30 generations in one jump: {alive} cells in {:.1} ms, {} squares\n\
         (bgolly 3.3 counts 178957021: {}).",
        seconds * 1000.0,
        universe.nodes(),
        if alive == 178_957_021 {
            "the same"
        } else {
            "DIFFERENT"
        }
    )?;
    let (side, generations) = if options.quick {
        (256, 1000)
    } else {
        (1024, 10_000)
    };
    let soup = Grid::random(side, side, 0.3, 1).map_err(LifeError::from)?;
    let mut times = Vec::new();
    let mut counts = Vec::new();
    for parallel in [false, true] {
        let start = Instant::now();
        let mut universe = Universe::from_grid(&soup, (0, 0), Rule::CONWAY, parallel)?;
        universe.advance(generations)?;
        times.push(start.elapsed().as_secs_f64());
        counts.push(universe.population());
    }
    writeln!(
        out,
        "A 30% {side}x{side} soup, {generations} generations: {:.2} s on one thread, {:.2} s on\n\
         {} threads ({:.2}x), {} cells either way{}.",
        times[0],
        times[1],
        rayon::current_num_threads(),
        times[0] / times[1].max(1e-9),
        counts[1],
        if counts[0] == counts[1] {
            ""
        } else {
            " (DIFFERENT counts!)"
        }
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
