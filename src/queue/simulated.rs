//! The book's download → resize → upload pipeline with simulated work: each stage
//! sleeps for its latency per item (`concur pipeline`).

use std::io;
use std::num::NonZeroUsize;
use std::sync::Arc;
use std::time::Duration;

use super::pipeline::{Pipeline, Report};

/// The stage names, in order.
pub const STAGES: [&str; 3] = ["download", "resize", "upload"];

/// The shape of a simulated run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Options {
    /// Items to push through.
    pub items: usize,
    /// Workers per stage.
    pub workers: [NonZeroUsize; 3],
    /// Simulated work per item, per stage.
    pub latencies: [Duration; 3],
    /// Capacity of every queue.
    pub capacity: usize,
}

impl Options {
    /// The least time the run can take: the slowest stage's own work,
    /// `ceil(items / workers) × latency` (the others overlap with it).
    ///
    /// ```
    /// use concur::queue::simulated::Options;
    /// use std::num::NonZeroUsize;
    /// use std::time::Duration;
    ///
    /// let w = |n| NonZeroUsize::new(n).unwrap();
    /// let options = Options {
    ///     items: 1000,
    ///     workers: [w(3), w(4), w(5)],
    ///     latencies: [Duration::from_millis(10); 3],
    ///     capacity: 10,
    /// };
    /// assert_eq!(options.bound(), Duration::from_millis(3340)); // 334 rounds of 10 ms
    /// ```
    pub fn bound(&self) -> Duration {
        self.workers
            .iter()
            .zip(&self.latencies)
            .map(|(w, latency)| {
                let rounds = self.items.div_ceil(w.get());
                latency.saturating_mul(u32::try_from(rounds).unwrap_or(u32::MAX))
            })
            .max()
            .unwrap_or_default()
    }
}

fn work(latency: Duration) {
    if !latency.is_zero() {
        std::thread::sleep(latency);
    }
}

/// Runs the pipeline; `on_done` is called once per item leaving the last stage.
pub fn run(options: &Options, on_done: Arc<dyn Fn() + Send + Sync>) -> io::Result<Report<usize>> {
    let [download, resize, upload] = options.latencies;
    let [w1, w2, w3] = options.workers.map(NonZeroUsize::get);
    let pipeline = Pipeline::builder(options.capacity)
        .stage(STAGES[0], w1, move |item: usize| {
            work(download);
            Ok::<_, std::convert::Infallible>(item)
        })
        .stage(STAGES[1], w2, move |item: usize| {
            work(resize);
            Ok::<_, std::convert::Infallible>(item)
        })
        .stage(STAGES[2], w3, move |item: usize| {
            work(upload);
            on_done();
            Ok::<_, std::convert::Infallible>(item)
        })
        .build()?;
    // No stage can fail: the only possible error is a panic, reported as an I/O error.
    pipeline.run(0..options.items).map_err(io::Error::other)
}
