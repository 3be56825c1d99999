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

/// Every step's time, kept in bounded memory: the count and the total of all of them,
/// and for the median a uniform sample of at most [`StepTimes::SAMPLES`] (reservoir
/// sampling), so the median is exact up to that many steps and an unbiased estimate
/// beyond. A run of a trillion generations holds 800 KB, not 16 TB.
///
/// ```
/// use concur::life::report::StepTimes;
/// use std::time::Duration;
///
/// let mut times = StepTimes::default();
/// assert_eq!((times.median(), times.total()), (0.0, 0.0));
/// for ms in [300, 100, 200] {
///     times.push(Duration::from_millis(ms));
/// }
/// assert_eq!(times.median(), 0.2);
/// assert_eq!(times.range(), Some((0.1, 0.3)));
/// assert!((times.total() - 0.6).abs() < 1e-12);
/// ```
#[derive(Clone, Debug, Default)]
pub struct StepTimes {
    samples: Vec<f64>,
    count: u64,
    total: f64,
    fastest: f64,
    slowest: f64,
    rng: u64,
}

impl StepTimes {
    /// Samples kept for the median.
    pub const SAMPLES: usize = 100_000;

    /// Records one step.
    pub fn push(&mut self, elapsed: Duration) {
        let secs = elapsed.as_secs_f64();
        if self.count == 0 {
            (self.fastest, self.slowest) = (secs, secs);
        } else {
            self.fastest = self.fastest.min(secs);
            self.slowest = self.slowest.max(secs);
        }
        self.count += 1;
        self.total += secs;
        if self.samples.len() < Self::SAMPLES {
            self.samples.push(secs);
        } else {
            // Keep this step with probability SAMPLES / count, in place of a random one.
            let slot = self.next_random() % self.count;
            if let Ok(slot) = usize::try_from(slot)
                && slot < Self::SAMPLES
            {
                self.samples[slot] = secs;
            }
        }
    }

    /// Steps recorded.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Seconds for all steps together (0 for none).
    pub fn total(&self) -> f64 {
        self.total
    }

    /// The fastest and the slowest step, in seconds (`None` for none).
    pub fn range(&self) -> Option<(f64, f64)> {
        (self.count > 0).then_some((self.fastest, self.slowest))
    }

    /// The median step, in seconds (0 for none).
    pub fn median(&self) -> f64 {
        median(self.samples.clone())
    }

    /// SplitMix64: enough for sampling, and deterministic.
    fn next_random(&mut self) -> u64 {
        self.rng = self.rng.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

fn median(mut secs: Vec<f64>) -> f64 {
    secs.sort_by(f64::total_cmp);
    match secs.len() {
        0 => 0.0,
        n if n % 2 == 1 => secs[n / 2],
        n => (secs[n / 2 - 1] + secs[n / 2]) / 2.0,
    }
}

/// The median of some durations, in seconds (0 for none). Benchmarks quote medians
/// because one slow outlier (a page fault storm, a noisy neighbour) should not move them.
pub fn median_seconds(samples: &[Duration]) -> f64 {
    median(samples.iter().map(Duration::as_secs_f64).collect())
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
        assert!(times.samples.len() == StepTimes::SAMPLES);
        let median = times.median();
        assert!((0.145..0.156).contains(&median), "{median}");
        // No step: zeros, and a total that is +0.0 (an empty f64 sum is -0.0).
        let none = StepTimes::default();
        assert!(none.total().is_sign_positive());
        assert_eq!(none.median(), 0.0);
    }
}
