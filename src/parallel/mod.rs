//! CPU-bound work in parallel: serial, threads, and a real process pool (item 64).
//!
//! The book's lesson is that CPython threads cannot speed up CPU-bound work (the GIL),
//! so it reaches for `ProcessPoolExecutor`: pickle the arguments, ship them to worker
//! processes over a pipe, ship the results back. Its claim: threads give no speed-up,
//! processes about 2× on 2 cores.
//!
//! **What Rust changes.** Threads already run on every core, so the threads mode is the
//! fast, simple answer. It uses rayon rather than [`crate::executor::ThreadPool`]: this
//! is data parallelism over a slice (rayon splits the work, steals it between threads,
//! and gives the results back in order), while the executor is for blocking I/O with
//! one future per task. A process pool ([`pool`]) still earns its keep when work must be
//! isolated: a crash or a memory corruption in one task kills one worker, not the
//! program, and the pool reports the task and carries on. Its cost is the explicit
//! serialization the book hides inside pickle, measured by `concur gcd bench`.

#[cfg(feature = "cli")]
pub(crate) mod bench;
pub mod gcd;
pub mod pool;

use std::num::NonZeroUsize;
use std::time::Instant;

use rayon::prelude::*;
use serde::Serialize;

use crate::process::CancelToken;
use gcd::GcdTask;
use pool::{PoolError, PoolOptions, TaskFailure};

/// How to run the work (`--mode`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// One thread, one pair after another.
    Serial,
    /// A rayon pool of `-j` threads.
    Threads,
    /// A pool of `-j` worker processes.
    Processes,
}

/// What a run produced.
#[derive(Clone, Debug, Serialize)]
pub struct GcdRun {
    /// How it ran.
    pub mode: Mode,
    /// Threads or processes used (1 for serial).
    pub workers: usize,
    /// The gcds in input order; `None` where a task failed.
    pub results: Vec<Option<u64>>,
    /// The tasks that failed (processes mode only), with why.
    pub failures: Vec<TaskFailure>,
    /// Wall time, seconds.
    pub seconds: f64,
    /// Tasks per request (processes mode).
    pub chunk: Option<usize>,
    /// Workers started to replace dead ones (processes mode).
    pub respawns: usize,
}

/// Computes the slow gcd of every pair in `mode`.
pub fn run(
    mode: Mode,
    pairs: &[(u64, u64)],
    pool: &PoolOptions,
    cancel: &CancelToken,
) -> Result<GcdRun, PoolError> {
    let start = Instant::now();
    let workers = pool.workers.get();
    let (results, failures, chunk, respawns, workers) = match mode {
        Mode::Serial => {
            let results = pairs
                .iter()
                .map(|&(a, b)| Some(gcd::slow_gcd(a, b)))
                .collect();
            (results, Vec::new(), None, 0, 1)
        }
        Mode::Threads => {
            PoolError::check_workers(workers, 0)?;
            let threads = rayon::ThreadPoolBuilder::new()
                .num_threads(workers)
                .thread_name(|i| format!("gcd-{i}"))
                .build()
                .map_err(|e| PoolError::Spawn {
                    program: "rayon".into(),
                    source: std::io::Error::other(e),
                })?;
            let results = threads.install(|| {
                pairs
                    .par_iter()
                    .map(|&(a, b)| Some(gcd::slow_gcd(a, b)))
                    .collect()
            });
            (results, Vec::new(), None, 0, workers)
        }
        Mode::Processes => {
            let tasks: Vec<GcdTask> = pairs.iter().map(|&(a, b)| GcdTask(a, b)).collect();
            let run = pool::map(&tasks, pool, cancel)?;
            let mut failures = Vec::new();
            let results = run
                .results
                .into_iter()
                .map(|r| match r {
                    Ok(gcd) => Some(gcd),
                    Err(failure) => {
                        failures.push(failure);
                        None
                    }
                })
                .collect();
            (results, failures, Some(run.chunk), run.respawns, workers)
        }
    };
    Ok(GcdRun {
        mode,
        workers,
        results,
        failures,
        seconds: start.elapsed().as_secs_f64(),
        chunk,
        respawns,
    })
}

/// The most tasks one run takes (`pairs × --scale`); larger workloads are refused
/// rather than allocated.
pub const MAX_TASKS: usize = 10_000_000;

/// `pairs` repeated `scale` times, or `None` when that is more than [`MAX_TASKS`].
pub fn repeat(pairs: &[(u64, u64)], scale: usize) -> Option<Vec<(u64, u64)>> {
    let tasks = pairs.len().checked_mul(scale).filter(|&n| n <= MAX_TASKS)?;
    let mut all = Vec::with_capacity(tasks);
    for _ in 0..scale {
        all.extend_from_slice(pairs);
    }
    Some(all)
}

/// Default worker count: the number of cores.
pub fn default_workers() -> NonZeroUsize {
    std::thread::available_parallelism().unwrap_or(NonZeroUsize::MIN)
}
