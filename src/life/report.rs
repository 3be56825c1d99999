//! Machine-readable records of a run: what `concur life --json` prints and the bench reads.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// One line per generation: `{"generation":g,"alive":n,"seconds":s}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GenerationRecord {
    /// The generation produced by this step (1 for the first step).
    pub generation: usize,
    /// Living cells in it.
    pub alive: usize,
    /// Seconds the step took.
    pub seconds: f64,
}

/// One line per step of a run on the unbounded plane:
/// `{"generation":g,"alive":n,"seconds":s}`, where a HashLife step may jump many
/// generations and the population may pass 2^64.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PlaneRecord {
    /// The generation reached by this step.
    pub generation: u64,
    /// Living cells in it.
    pub alive: u128,
    /// Seconds the step took.
    pub seconds: f64,
}

/// The last line of a `--json` run on the unbounded plane.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PlaneSummary {
    /// Strategy name: `"hashlife"`, or the grid strategy that stepped the pattern.
    pub strategy: String,
    /// The rule, in B/S notation.
    pub rule: String,
    /// Always true: tells this summary from a torus run's.
    pub plane: bool,
    /// The last generation.
    pub generations: u64,
    /// Generations per step.
    pub step: u64,
    /// Living cells at the end.
    pub alive: u128,
    /// The pattern's bounding box at the end: x, y, width, height (absent when
    /// nothing lives).
    pub bounds: Option<(i128, i128, u128, u128)>,
    /// Median seconds per step (0 when no step ran).
    pub seconds_per_step: f64,
    /// Seconds for the whole run, printing included.
    pub total_seconds: f64,
    /// HashLife's nodes in its store at the end.
    pub nodes: Option<usize>,
    /// The most nodes HashLife held after a step.
    pub peak_nodes: Option<usize>,
    /// Times the node store was collected (past `--max-memory`).
    pub garbage_collections: usize,
    /// The node store's budget, in MiB.
    pub max_memory_mb: f64,
    /// Threads computing.
    pub threads: usize,
    /// The most resident memory the process used, in MiB, if the OS tells.
    pub peak_rss_mb: Option<f64>,
}

/// The last line of a `--json` run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunSummary {
    /// Strategy name, e.g. `"async"`.
    pub strategy: String,
    /// Rows.
    pub height: usize,
    /// Columns.
    pub width: usize,
    /// `height × width`.
    pub cells: usize,
    /// Steps run.
    pub generations: usize,
    /// Worker count, for the strategies that have one.
    pub workers: Option<usize>,
    /// Simulated I/O per cell, in milliseconds.
    pub latency_ms: f64,
    /// Median seconds per step (0 when no step ran).
    pub seconds_per_generation: f64,
    /// Seconds for all steps together.
    pub total_seconds: f64,
    /// The most threads the process had at once, if the OS tells.
    pub peak_threads: Option<usize>,
    /// The most resident memory the process used, in MiB, if the OS tells.
    pub peak_rss_mb: Option<f64>,
    /// Living cells in the last generation.
    pub alive: usize,
    /// Cells computed per second at the median step: `cells / seconds_per_generation`
    /// (0 when no step ran).
    #[serde(default)]
    pub cell_updates_per_second: f64,
    /// The rules server asked for every cell (`--rules`), if any; its latency is the
    /// server's, not `latency_ms`.
    #[serde(default)]
    pub rules: Option<String>,
    /// CPU time (user + system) the whole process used, in seconds, if the OS tells.
    #[serde(default)]
    pub cpu_seconds: Option<f64>,
    /// The fastest and the slowest step, in seconds (absent when no step ran, and
    /// from older summaries).
    #[serde(default)]
    pub step_range: Option<(f64, f64)>,
}

/// Every step's time, in bounded memory: see [`Samples`](crate::measure::Samples).
pub type StepTimes = crate::measure::Samples;

/// The median of some durations, in seconds (0 for none). Benchmarks quote medians
/// because one slow outlier (a page fault storm, a noisy neighbour) should not move them.
pub fn median_seconds(samples: &[Duration]) -> f64 {
    crate::measure::median(samples.iter().map(Duration::as_secs_f64).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_even_and_empty() {
        let ms = |v: &[u64]| {
            v.iter()
                .map(|&m| Duration::from_millis(m))
                .collect::<Vec<_>>()
        };
        assert_eq!(median_seconds(&ms(&[300, 100, 200])), 0.2);
        assert_eq!(median_seconds(&ms(&[400, 100, 200, 300])), 0.25);
        assert_eq!(median_seconds(&[]), 0.0);
    }

    #[test]
    fn step_times_stay_bounded_and_keep_the_median() {
        let mut times = StepTimes::default();
        // Three times the sample size, in a known distribution: 1 ms to 300 ms.
        let steps = 3 * StepTimes::SAMPLES as u64;
        for i in 0..steps {
            times.push(Duration::from_micros(1_000 + (i * 7919) % 299_000));
        }
        assert_eq!(times.count(), steps);
        assert!(times.kept() == StepTimes::SAMPLES);
        let median = times.median();
        assert!((0.145..0.156).contains(&median), "{median}");
        // No step: zeros, and a total that is +0.0 (an empty f64 sum is -0.0).
        let none = StepTimes::default();
        assert!(none.total().is_sign_positive());
        assert_eq!(none.median(), 0.0);
    }
}
