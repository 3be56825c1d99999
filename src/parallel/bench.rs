//! `concur gcd bench`: the book's item-64 claims, measured.
//!
//! The workload is the book's ten pairs repeated `scale` times, with `scale` chosen so the
//! serial run takes about `target_seconds`. Each mode runs a few times and the median is
//! kept; speed-ups are ratios against the serial median of the same run. The process
//! pool's own cost per task is measured on tasks that do (almost) nothing, with the
//! automatic chunk size and with one task per request (Python's default). Optionally the
//! book's program runs in a Python interpreter on the same machine as the baseline.

use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use super::gcd::BOOK_PAIRS;
use super::pool::{PoolError, PoolOptions};
use super::{Mode, run};
use crate::process::CancelToken;

/// The book's program (item 64) as a Python script, used as the baseline.
pub(crate) const PYTHON_REFERENCE: &str = include_str!("../../benches/python/gcd_book.py");

/// Trivial tasks timed to find the pool's own cost per task.
const OVERHEAD_TASKS: usize = 20_000;

/// What to measure.
#[derive(Clone, Debug)]
pub(crate) struct BenchOptions {
    /// Serial work to size the runs for, in seconds.
    pub target_seconds: f64,
    /// Runs per mode; the median is kept.
    pub repeats: usize,
    /// A Python interpreter to run the book's program in, as the baseline.
    pub python: Option<PathBuf>,
}

/// The book's program, timed in CPython on the same machine.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct PythonBaseline {
    /// The interpreter's version.
    pub python: String,
    /// The ten pairs serially, median seconds.
    pub serial_seconds: f64,
    /// With a two-thread `ThreadPoolExecutor`, median seconds.
    pub threads_seconds: f64,
    /// With a two-process `ProcessPoolExecutor`, median seconds.
    pub processes_seconds: f64,
}

/// The measured figures.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct BenchReport {
    /// Times the ten pairs were repeated.
    pub scale: usize,
    /// Tasks per run (`10 × scale`).
    pub tasks: usize,
    /// Threads and worker processes.
    pub workers: usize,
    /// Median seconds, serially.
    pub serial_seconds: f64,
    /// Median seconds on `workers` threads.
    pub threads_seconds: f64,
    /// `serial / threads`.
    pub threads_speedup: f64,
    /// Median seconds on `workers` processes, automatic chunks.
    pub processes_seconds: f64,
    /// `serial / processes`.
    pub processes_speedup: f64,
    /// The fastest and slowest serial, threads and processes runs, seconds.
    pub ranges: ModeRanges,
    /// The pool's own cost per trivial task with automatic chunks, microseconds.
    pub pool_overhead_us_per_task: f64,
    /// The same with one task per request, microseconds.
    pub pool_overhead_us_per_task_chunk_1: f64,
    /// The ten pairs serially in Rust, median seconds.
    pub rust_serial_ten_pairs_seconds: f64,
    /// The book's program in Python, when asked for.
    pub python: Option<PythonBaseline>,
    /// `python serial / rust serial` on the ten pairs.
    pub rust_vs_python: Option<f64>,
    /// Why the Python baseline is missing, when it was asked for and failed.
    pub python_error: Option<String>,
    /// Runs per mode.
    pub repeats: usize,
}

/// The fastest and slowest of each mode's repeats, seconds.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub(crate) struct ModeRanges {
    /// Serially.
    pub serial: [f64; 2],
    /// On threads.
    pub threads: [f64; 2],
    /// On processes.
    pub processes: [f64; 2],
}

/// A mode's repeats: their median, and the fastest and slowest.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Timing {
    /// The median, seconds.
    pub median: f64,
    /// The fastest and the slowest, seconds.
    pub range: [f64; 2],
}

impl Timing {
    fn of(times: Vec<f64>) -> Self {
        let min = times.iter().copied().fold(f64::INFINITY, f64::min);
        let max = times.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        Timing {
            median: median(times),
            range: [min, max],
        }
    }
}

/// The bars of one implementation's three modes, scaled by `scale` (seconds to the
/// chart's unit), each labelled with its speed-up over serial.
pub(crate) fn modes_group(
    label: String,
    modes: [Timing; 3],
    scale: f64,
) -> crate::report::BarGroup {
    let serial = modes[0].median;
    let bars = ["serial", "threads", "processes"]
        .into_iter()
        .zip(modes)
        .map(|(series, t)| crate::report::Bar {
            series: series.into(),
            median: t.median * scale,
            min: t.range[0] * scale,
            max: t.range[1] * scale,
            note: format!("{:.2}x", serial / t.median),
        })
        .collect();
    crate::report::BarGroup { label, bars }
}

/// Item 64's chart: milliseconds per the book's ten pairs for each group's serial,
/// threads and processes runs.
pub(crate) fn modes_chart(
    groups: Vec<crate::report::BarGroup>,
    what: String,
    command: &str,
) -> crate::report::BarChart {
    crate::report::BarChart {
        title: "Item 64: the book's slow gcd, serial, on threads and on processes".into(),
        y_label: "ms per the book's ten pairs (median; whiskers: min-max)".into(),
        groups,
        provenance: crate::report::Provenance::here(what, command),
    }
}

impl BenchReport {
    /// The bar chart of this run: serial, threads and processes for concur and (when
    /// it ran) CPython, in milliseconds per the book's ten pairs, the speed-up against
    /// each one's own serial run written on each bar.
    pub(crate) fn chart(&self, command: &str) -> crate::report::BarChart {
        let timing = |median: f64, range: [f64; 2]| Timing { median, range };
        let mut groups = vec![modes_group(
            format!("concur (Rust), {} workers", self.workers),
            [
                timing(self.serial_seconds, self.ranges.serial),
                timing(self.threads_seconds, self.ranges.threads),
                timing(self.processes_seconds, self.ranges.processes),
            ],
            10.0 / self.tasks.max(1) as f64 * 1e3,
        )];
        if let Some(py) = &self.python {
            let once = |s: f64| timing(s, [s, s]);
            groups.push(modes_group(
                format!("CPython {}, 2 workers", py.python),
                [
                    once(py.serial_seconds),
                    once(py.threads_seconds),
                    once(py.processes_seconds),
                ],
                1e3,
            ));
        }
        modes_chart(
            groups,
            format!(
                "{} tasks x {} repeats for concur; each bar's label is its speed-up over serial",
                self.tasks, self.repeats
            ),
            command,
        )
    }
}

/// What stops the benchmark.
#[derive(Debug, Error)]
pub enum BenchError {
    /// A run failed as a whole (a worker could not start, or Ctrl-C).
    #[error("the {mode:?} run failed")]
    Run {
        /// The mode that failed.
        mode: Mode,
        /// Why.
        #[source]
        source: PoolError,
    },
    /// A mode computed different gcds from the serial run: a bug, reported rather than
    /// timed.
    #[error("the {mode:?} run gave different gcds from the serial run")]
    Mismatch {
        /// The mode that disagreed.
        mode: Mode,
    },
}

/// The median of `times` (NaN for none).
pub(crate) fn median(mut times: Vec<f64>) -> f64 {
    times.sort_by(f64::total_cmp);
    times.get(times.len() / 2).copied().unwrap_or(f64::NAN)
}

/// The book's pairs repeated `scale` times.
pub(crate) fn book_workload(scale: usize) -> Vec<(u64, u64)> {
    super::repeat(&BOOK_PAIRS, scale.min(super::MAX_TASKS / BOOK_PAIRS.len())).unwrap_or_default()
}

/// The median, fastest and slowest seconds of `repeats` runs in `mode`, checking each
/// run's results against `expected` (when given) and returning the results of the last
/// run.
pub(crate) fn time_repeats(
    mode: Mode,
    pairs: &[(u64, u64)],
    pool: &PoolOptions,
    repeats: usize,
    expected: Option<&[Option<u64>]>,
    cancel: &CancelToken,
) -> Result<(Timing, Vec<Option<u64>>), BenchError> {
    let mut times = Vec::with_capacity(repeats);
    let mut results = Vec::new();
    for _ in 0..repeats.max(1) {
        let done =
            run(mode, pairs, pool, cancel).map_err(|source| BenchError::Run { mode, source })?;
        if expected.is_some_and(|e| e != done.results) || !done.failures.is_empty() {
            return Err(BenchError::Mismatch { mode });
        }
        times.push(done.seconds);
        results = done.results;
    }
    Ok((Timing::of(times), results))
}

/// The process pool's own cost per task, in microseconds: `tasks` trivial tasks, with
/// `chunk` tasks per request (`None`: automatic).
pub(crate) fn pool_overhead(
    pool: &PoolOptions,
    chunk: Option<NonZeroUsize>,
    tasks: usize,
    repeats: usize,
    cancel: &CancelToken,
) -> Result<f64, BenchError> {
    let trivial = vec![(1, 1); tasks.max(1)];
    let options = PoolOptions {
        chunk,
        ..pool.clone()
    };
    let (timing, _) = time_repeats(Mode::Processes, &trivial, &options, repeats, None, cancel)?;
    Ok(timing.median / trivial.len() as f64 * 1e6)
}

/// Runs the book's program in `python`.
pub(crate) fn python_baseline(python: &Path) -> Result<PythonBaseline, String> {
    let output = Command::new(python)
        .args(["-c", PYTHON_REFERENCE])
        .output()
        .map_err(|e| format!("cannot run {}: {e}", python.display()))?;
    if !output.status.success() {
        return Err(format!(
            "{} failed ({}): {}",
            python.display(),
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    serde_json::from_slice(&output.stdout).map_err(|e| {
        format!(
            "{} printed something other than the report: {e}",
            python.display()
        )
    })
}

/// Runs the benchmark. `progress` is told what is being measured.
pub(crate) fn run_bench(
    options: &BenchOptions,
    pool: &PoolOptions,
    cancel: &CancelToken,
    progress: &mut dyn FnMut(&str),
) -> Result<BenchReport, BenchError> {
    let repeats = options.repeats.max(1);
    progress("sizing on the ten pairs");
    let ten = time_repeats(Mode::Serial, &BOOK_PAIRS, pool, 5, None, cancel)?
        .0
        .median;
    let scale = ((options.target_seconds / ten).ceil() as usize).max(1);
    let pairs = book_workload(scale);
    progress("serial");
    let (serial, expected) = time_repeats(Mode::Serial, &pairs, pool, repeats, None, cancel)?;
    progress("threads");
    let (threads, _) = time_repeats(
        Mode::Threads,
        &pairs,
        pool,
        repeats,
        Some(&expected),
        cancel,
    )?;
    progress("processes");
    let (processes, _) = time_repeats(
        Mode::Processes,
        &pairs,
        pool,
        repeats,
        Some(&expected),
        cancel,
    )?;
    progress("pool cost per task");
    let overhead_auto = pool_overhead(pool, None, OVERHEAD_TASKS, repeats, cancel)?;
    let overhead_one = pool_overhead(pool, NonZeroUsize::new(1), OVERHEAD_TASKS, repeats, cancel)?;
    let (python, python_error) = match &options.python {
        Some(interpreter) => {
            progress("the book's program in Python");
            match python_baseline(interpreter) {
                Ok(baseline) => (Some(baseline), None),
                Err(error) => (None, Some(error)),
            }
        }
        None => (None, None),
    };
    Ok(BenchReport {
        scale,
        tasks: pairs.len(),
        workers: pool.workers.get(),
        serial_seconds: serial.median,
        threads_seconds: threads.median,
        threads_speedup: serial.median / threads.median,
        processes_seconds: processes.median,
        processes_speedup: serial.median / processes.median,
        ranges: ModeRanges {
            serial: serial.range,
            threads: threads.range,
            processes: processes.range,
        },
        repeats,
        pool_overhead_us_per_task: overhead_auto,
        pool_overhead_us_per_task_chunk_1: overhead_one,
        rust_serial_ten_pairs_seconds: ten,
        rust_vs_python: python.as_ref().map(|p| p.serial_seconds / ten),
        python,
        python_error,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(vec![4.0, 1.0, 3.0, 2.0]), 3.0);
        assert!(median(Vec::new()).is_nan());
    }

    #[test]
    fn the_workload_repeats_the_books_pairs() {
        let pairs = book_workload(3);
        assert_eq!(pairs.len(), 30);
        assert_eq!(pairs[0], (1963309, 2265973));
        assert_eq!(pairs[10], (1963309, 2265973));
        assert_eq!(pairs[29], (1292391, 2123811));
    }
}
