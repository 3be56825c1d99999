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
}

/// The median of some durations, in seconds (0 for none). Benchmarks quote medians
/// because one slow outlier (a page fault storm, a noisy neighbour) should not move them.
pub fn median_seconds(samples: &[Duration]) -> f64 {
    let mut secs: Vec<f64> = samples.iter().map(Duration::as_secs_f64).collect();
    secs.sort_by(f64::total_cmp);
    match secs.len() {
        0 => 0.0,
        n if n % 2 == 1 => secs[n / 2],
        n => (secs[n / 2 - 1] + secs[n / 2]) / 2.0,
    }
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
}
