//! `concur life bench`: the book's latency claims, measured.
//!
//! Each case runs in a fresh child process (`concur life ... --json`), so its peak RSS
//! and thread count are its own, hyperfine-style. Optionally the same cases run through
//! the book's Python programs (`--python`), giving a baseline taken on the same machine
//! in the same run.
//!
//! The cases: every strategy at 45 cells (the book's 5×9 glider) and at 10,000 cells
//! (100×100), and `async` at 100,000 cells (250×400), all with 100 ms of I/O per cell.
//! At 10,000 cells the pipelines and the pool run with 1,000 workers, and `serial` is not
//! run: its floor is 1,000 s per generation.

use std::io::Write;
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use serde::Serialize;
use thiserror::Error;

use super::report::RunSummary;
use super::strategy::Strategy;
use crate::measure::{ServerProcess, ServerStartError};
use crate::report::{Axis, LineChart, Panel, Point, Provenance, Series, Stroke, first_seen};

/// The book's programs (items 56–60) as one Python script, used as the baseline.
pub(crate) const PYTHON_REFERENCE: &str = include_str!("../../benches/python/life_book.py");

/// One measured configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Case {
    /// The strategy.
    pub strategy: Strategy,
    /// Rows.
    pub height: usize,
    /// Columns.
    pub width: usize,
    /// Worker count, for strategies that have one.
    pub workers: Option<NonZeroUsize>,
    /// Steps to time; the median is reported.
    pub generations: usize,
}

impl Case {
    /// `height × width`.
    pub(crate) fn cells(&self) -> usize {
        self.height * self.width
    }

    /// The `life` arguments that run this case with `latency` of simulated I/O, or
    /// against the rules server at `rules` (whose latency is its own).
    pub(crate) fn args(&self, latency: Duration, rules: Option<&str>) -> Vec<String> {
        let io = match rules {
            Some(addr) => ["--rules".to_owned(), addr.to_owned()],
            None => ["--latency".to_owned(), format!("{}us", latency.as_micros())],
        };
        let mut args = vec![
            "--mode".to_owned(),
            self.strategy.name().to_owned(),
            "--size".to_owned(),
            format!("{}x{}", self.height, self.width),
        ];
        args.extend(io);
        args.extend([
            "--generations".to_owned(),
            self.generations.to_string(),
            "--json".to_owned(),
        ]);
        if (self.height, self.width) != (5, 9) {
            // Anything but the book's glider board gets a reproducible random fill.
            args.extend(["--random", "0.3", "--seed", "1"].map(str::to_owned));
        }
        if let Some(w) = self.workers {
            args.extend(["--jobs".to_owned(), w.to_string()]);
        }
        args
    }
}

/// The standard cases. `generations` overrides every case's step count.
pub(crate) fn standard_cases(generations: Option<usize>) -> Vec<Case> {
    let w = NonZeroUsize::new;
    let case = |strategy, (height, width), workers, gens| Case {
        strategy,
        height,
        width,
        workers,
        generations: generations.unwrap_or(gens),
    };
    let mut cases = vec![case(Strategy::Serial, (5, 9), None, 2)];
    for strategy in &Strategy::ALL[1..] {
        cases.push(case(*strategy, (5, 9), strategy.default_workers(), 5));
    }
    // 1,024 and 10,000 cells, so each line of the chart has a middle point.
    for size in [(32, 32), (100, 100)] {
        cases.push(case(Strategy::ThreadPerCell, size, None, 3));
        for strategy in [Strategy::Pipeline, Strategy::PhasedPipeline, Strategy::Pool] {
            cases.push(case(strategy, size, w(1000), 3));
        }
        cases.push(case(Strategy::Async, size, None, 5));
    }
    cases.push(case(Strategy::Async, (250, 400), None, 5));
    cases
}

/// The cases of `life bench --rules`: every strategy of the book at 45 cells, then
/// async at 10,000, 100,000 and 1,000,000 cells, all through a real rules server.
pub(crate) fn rules_cases(generations: Option<usize>) -> Vec<Case> {
    let case = |strategy, (height, width), gens| Case {
        strategy,
        height,
        width,
        workers: Strategy::default_workers(strategy),
        generations: generations.unwrap_or(gens),
    };
    let mut cases = vec![case(Strategy::Serial, (5, 9), 2)];
    for strategy in &Strategy::ALL[1..] {
        cases.push(case(*strategy, (5, 9), 5));
    }
    for size in [(100, 100), (250, 400), (1000, 1000)] {
        cases.push(case(Strategy::Async, size, 5));
    }
    cases
}

/// A `concur life rules-server` child process for the bench, killed when dropped.
#[derive(Debug)]
pub(crate) struct RulesServerProcess(ServerProcess);

impl RulesServerProcess {
    /// Starts `program life rules-server` on a free loopback port with `latency`.
    pub(crate) fn start(program: &Path, latency: Duration) -> Result<Self, BenchError> {
        let latency = format!("{}us", latency.as_micros());
        let args = ["life", "rules-server", "--quiet", "--addr", "127.0.0.1:0"];
        let server = ServerProcess::start(program, &[&args[..], &["--latency", &latency]].concat());
        Ok(Self(server?))
    }

    /// The server's address, for `--rules`.
    pub(crate) fn addr(&self) -> &str {
        self.0.addr()
    }

    /// CPU time the server has used so far, in seconds.
    pub(crate) fn cpu_seconds(&self) -> Option<f64> {
        self.0.cpu_seconds()
    }
}

/// A measured case, as printed by `concur life bench --json`.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct CaseResult {
    /// Strategy name.
    pub strategy: String,
    /// Cells in the grid.
    pub cells: usize,
    /// Worker count, if the strategy has one.
    pub workers: Option<usize>,
    /// Steps timed.
    pub generations: usize,
    /// The least a generation can take: see [`Strategy::io_floor`].
    pub io_floor_seconds: f64,
    /// concur's median seconds per generation.
    pub seconds_per_generation: f64,
    /// concur's fastest and slowest generation, in seconds.
    pub generation_range: Option<(f64, f64)>,
    /// `seconds_per_generation / io_floor_seconds`.
    pub vs_floor: f64,
    /// Peak threads of concur's process.
    pub peak_threads: Option<usize>,
    /// Peak RSS of concur's process, MiB.
    pub peak_rss_mb: Option<f64>,
    /// The Python baseline's median seconds per generation, when `--python` was given.
    pub python_seconds_per_generation: Option<f64>,
    /// The Python baseline's fastest and slowest generation, in seconds.
    pub python_generation_range: Option<(f64, f64)>,
    /// The Python baseline's peak RSS, MiB.
    pub python_peak_rss_mb: Option<f64>,
    /// Why the Python baseline has no figure for this case, if it failed.
    pub python_error: Option<String>,
    /// With `--rules`: concur's CPU time per cell asked, in µs, start-up included.
    pub client_cpu_us_per_cell: Option<f64>,
    /// With `--rules`: the server's CPU time per cell answered, in µs.
    pub server_cpu_us_per_cell: Option<f64>,
}

/// A case that could not be measured.
#[derive(Debug, Error)]
pub(crate) enum BenchError {
    /// The child could not be started.
    #[error("cannot run {program}")]
    Spawn {
        /// The program.
        program: PathBuf,
        /// What the OS said.
        #[source]
        source: std::io::Error,
    },
    /// The bench's rules server did not start.
    #[error("the rules server did not start")]
    Server(#[from] ServerStartError),
    /// The child failed or printed no summary.
    #[error("{strategy} at {cells} cells failed ({status}): {stderr}")]
    Case {
        /// The case's strategy.
        strategy: Strategy,
        /// The case's cells.
        cells: usize,
        /// The exit status.
        status: String,
        /// The end of its stderr.
        stderr: String,
    },
    /// A HashLife case (concur's or Golly's) failed, or the two disagreed.
    #[error("{}: {reason}", program.display())]
    Peer {
        /// The program that failed.
        program: PathBuf,
        /// What went wrong.
        reason: String,
    },
}

/// Runs one case in a child process and reads its summary line.
///
/// `program` is `concur` itself, or a Python interpreter when `python_script` is given
/// (the script is fed on stdin, so nothing is written to disk).
pub(crate) fn run_case(
    program: &Path,
    python_script: Option<&str>,
    case: &Case,
    latency: Duration,
    rules: Option<&str>,
) -> Result<RunSummary, BenchError> {
    let mut command = Command::new(program);
    match python_script {
        Some(_) => command.arg("-"),
        None => command.arg("life"),
    };
    command
        .args(case.args(latency, rules))
        .stdin(if python_script.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let spawn_error = |source| BenchError::Spawn {
        program: program.to_owned(),
        source,
    };
    let mut child = command.spawn().map_err(spawn_error)?;
    if let (Some(script), Some(mut stdin)) = (python_script, child.stdin.take()) {
        // A failed write shows up as the child's own error below.
        let _ = stdin.write_all(script.as_bytes());
    }
    let output = child.wait_with_output().map_err(spawn_error)?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let summary = stdout
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .and_then(|l| serde_json::from_str::<RunSummary>(l).ok());
    match summary {
        Some(summary) if output.status.success() => Ok(summary),
        _ => {
            let stderr = String::from_utf8_lossy(&output.stderr);
            let tail: Vec<&str> = stderr.lines().rev().take(3).collect();
            Err(BenchError::Case {
                strategy: case.strategy,
                cells: case.cells(),
                status: output.status.to_string(),
                stderr: tail.into_iter().rev().collect::<Vec<_>>().join(" / "),
            })
        }
    }
}

/// Turns a case's summaries into a result row.
pub(crate) fn result(
    case: &Case,
    latency: Duration,
    ours: &RunSummary,
    python: Option<Result<RunSummary, BenchError>>,
    server_cpu_seconds: Option<f64>,
) -> CaseResult {
    let asked = (case.cells() * case.generations) as f64;
    let per_cell = |seconds: f64| seconds * 1e6 / asked;
    let floor = case
        .strategy
        .io_floor(case.cells(), case.workers, latency)
        .as_secs_f64();
    let (python_ok, python_error) = match python {
        Some(Ok(summary)) => (Some(summary), None),
        Some(Err(err)) => (None, Some(err.to_string())),
        None => (None, None),
    };
    CaseResult {
        strategy: case.strategy.name().to_owned(),
        cells: case.cells(),
        workers: case.workers.map(NonZeroUsize::get),
        generations: case.generations,
        io_floor_seconds: floor,
        seconds_per_generation: ours.seconds_per_generation,
        generation_range: ours.step_range,
        vs_floor: if floor > 0.0 {
            ours.seconds_per_generation / floor
        } else {
            f64::NAN
        },
        peak_threads: ours.peak_threads,
        peak_rss_mb: ours.peak_rss_mb,
        python_seconds_per_generation: python_ok.as_ref().map(|s| s.seconds_per_generation),
        python_generation_range: python_ok.as_ref().and_then(|s| s.step_range),
        python_peak_rss_mb: python_ok.and_then(|s| s.peak_rss_mb),
        python_error,
        client_cpu_us_per_cell: server_cpu_seconds.and(ours.cpu_seconds).map(per_cell),
        server_cpu_us_per_cell: server_cpu_seconds.map(per_cell),
    }
}

/// The chart of a bench's results: seconds per generation against cells (log-log),
/// a line per strategy with the book's Python dashed beside it and the I/O floors
/// drawn, and peak RSS against cells.
pub(crate) fn chart(results: &[CaseResult], latency: Duration, command: &str) -> LineChart {
    // A line per strategy and worker count: the pipelines and the pool run with
    // their default workers at 45 cells and with 1,000 beyond, and a line between
    // the two would mix two configurations.
    let lines = first_seen(results.iter().map(|r| (r.strategy.as_str(), r.workers)));
    let label = |strategy: &str, workers: Option<usize>| {
        let configs = lines.iter().filter(|(s, _)| *s == strategy).count();
        match workers {
            Some(w) if configs > 1 => format!("{strategy} ({w})"),
            _ => strategy.to_owned(),
        }
    };
    let colour = |name: &str| {
        Strategy::ALL
            .iter()
            .position(|s| s.name() == name)
            .unwrap_or(Strategy::ALL.len())
    };
    let line = |name: String,
                (strategy, workers): (&str, Option<usize>),
                stroke,
                point: &dyn Fn(&CaseResult) -> Option<Point>| {
        let mut points: Vec<Point> = results
            .iter()
            .filter(|r| r.strategy == strategy && r.workers == workers)
            .filter_map(point)
            .collect();
        points.sort_by(|a, b| a.x.total_cmp(&b.x));
        Series {
            name,
            colour: colour(strategy),
            stroke,
            points,
        }
    };
    let mut time = Vec::new();
    let mut memory = Vec::new();
    for (python, stroke) in [(false, Stroke::Solid), (true, Stroke::Dashed)] {
        for &(strategy, workers) in &lines {
            let name = label(strategy, workers);
            let name = if python {
                format!("Python: {name}")
            } else {
                name
            };
            time.push(line(name.clone(), (strategy, workers), stroke, &|r| {
                let (median, range) = if python {
                    (r.python_seconds_per_generation?, r.python_generation_range)
                } else {
                    (r.seconds_per_generation, r.generation_range)
                };
                Some(Point::with_range(r.cells as f64, median, range))
            }));
            memory.push(line(name, (strategy, workers), stroke, &|r| {
                let rss = if python {
                    r.python_peak_rss_mb
                } else {
                    r.peak_rss_mb
                };
                Some(Point::new(r.cells as f64, rss?))
            }));
        }
    }
    // The floors span the cells measured: one latency when every cell waits at
    // once, and cells x latency when they wait one after another.
    let cells = results.iter().map(|r| r.cells as f64);
    let (least, most) = (
        cells.clone().fold(f64::INFINITY, f64::min),
        cells.fold(0.0, f64::max),
    );
    let wait = latency.as_secs_f64();
    if least <= most && wait > 0.0 {
        let floor = |name: &str, at: &dyn Fn(f64) -> f64| Series {
            name: name.to_owned(),
            colour: 0,
            stroke: Stroke::Floor,
            points: vec![Point::new(least, at(least)), Point::new(most, at(most))],
        };
        time.push(floor("I/O floor: every cell at once", &|_| wait));
        time.push(floor("I/O floor: one cell at a time", &|c| c * wait));
    }
    LineChart {
        title: format!(
            "Game of Life with {} of I/O per cell: time per generation and memory",
            humantime::format_duration(latency)
        ),
        panels: vec![
            Panel {
                title: "seconds per generation (median; whiskers: fastest-slowest)".into(),
                x: Axis::log("cells"),
                y: Axis::log("seconds per generation"),
                series: time,
            },
            Panel {
                title: "peak resident memory".into(),
                x: Axis::log("cells"),
                y: Axis::log("peak RSS (MiB)"),
                series: memory,
            },
        ],
        provenance: Provenance::here(
            "each case in its own process; concur solid, the book's Python dashed; (N): N workers",
            command,
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn case(strategy: &str, cells: usize, workers: Option<usize>, seconds: f64) -> CaseResult {
        CaseResult {
            strategy: strategy.into(),
            cells,
            workers,
            generations: 3,
            io_floor_seconds: 0.1,
            seconds_per_generation: seconds,
            generation_range: Some((seconds * 0.9, seconds * 1.1)),
            vs_floor: seconds / 0.1,
            peak_threads: None,
            peak_rss_mb: Some(8.0),
            python_seconds_per_generation: (strategy == "async").then_some(seconds * 2.0),
            python_generation_range: None,
            python_peak_rss_mb: None,
            python_error: None,
            client_cpu_us_per_cell: None,
            server_cpu_us_per_cell: None,
        }
    }

    #[test]
    fn the_chart_draws_a_line_per_strategy_and_worker_count() {
        let results = [
            case("pipeline", 45, Some(5), 0.9),
            case("async", 45, None, 0.1),
            case("pipeline", 10_000, Some(1000), 1.0),
            case("pipeline", 1024, Some(1000), 0.2),
            case("async", 10_000, None, 0.11),
        ];
        let chart = chart(&results, Duration::from_millis(100), "test");
        let time = &chart.panels[0].series;
        let named = |name: &str| {
            time.iter()
                .find(|s| s.name == name)
                .unwrap_or_else(|| panic!("no series {name}"))
        };
        // Five workers and a thousand are two lines; async has one configuration.
        let xs = |name: &str| named(name).points.iter().map(|p| p.x).collect::<Vec<_>>();
        assert_eq!(xs("pipeline (5)"), [45.0]);
        assert_eq!(xs("pipeline (1000)"), [1024.0, 10_000.0]);
        assert_eq!(xs("async"), [45.0, 10_000.0]);
        assert_eq!(named("Python: async").points[1].y, 0.22);
        assert!(named("Python: pipeline (5)").points.is_empty());
        // The medians carry their ranges; the floors span the cells measured.
        let first = named("async").points[0];
        let (fast, slow) = first.range.expect("a range");
        assert!(fast < first.y && first.y < slow, "{first:?}");
        let floor = named("I/O floor: one cell at a time");
        assert_eq!((floor.points[0].x, floor.points[1].x), (45.0, 10_000.0));
        assert!((floor.points[1].y - 1000.0).abs() < 1e-9);
    }

    #[test]
    fn standard_cases_cover_the_issue_targets() {
        let cases = standard_cases(None);
        let has = |s: Strategy, cells: usize, workers: Option<usize>| {
            cases.iter().any(|c| {
                c.strategy == s && c.cells() == cells && c.workers.map(NonZeroUsize::get) == workers
            })
        };
        for s in Strategy::ALL {
            assert!(
                has(s, 45, s.default_workers().map(NonZeroUsize::get)),
                "{s} at 45"
            );
        }
        assert!(has(Strategy::Async, 10_000, None));
        assert!(has(Strategy::Async, 100_000, None));
        // A middle point on every line but serial's.
        assert!(has(Strategy::ThreadPerCell, 1024, None));
        assert!(has(Strategy::Async, 1024, None));
        for s in [Strategy::Pipeline, Strategy::PhasedPipeline, Strategy::Pool] {
            assert!(has(s, 1024, Some(1000)), "{s} at 1,024");
        }
        assert!(has(Strategy::ThreadPerCell, 10_000, None));
        for s in [Strategy::Pipeline, Strategy::PhasedPipeline, Strategy::Pool] {
            assert!(
                has(s, 10_000, Some(1000)),
                "{s} at 10,000 with 1,000 workers"
            );
        }
        assert!(
            !has(Strategy::Serial, 10_000, None),
            "serial would take 1,000 s per generation"
        );
    }

    #[test]
    fn case_arguments_round_trip_the_configuration() {
        let case = Case {
            strategy: Strategy::Pool,
            height: 100,
            width: 100,
            workers: NonZeroUsize::new(1000),
            generations: 3,
        };
        let args = case.args(Duration::from_millis(100), None).join(" ");
        assert_eq!(
            args,
            "--mode pool --size 100x100 --latency 100000us --generations 3 --json \
             --random 0.3 --seed 1 --jobs 1000"
        );
        let args = case
            .args(Duration::from_millis(100), Some("127.0.0.1:7"))
            .join(" ");
        assert_eq!(
            args,
            "--mode pool --size 100x100 --rules 127.0.0.1:7 --generations 3 --json \
             --random 0.3 --seed 1 --jobs 1000"
        );
    }
}
