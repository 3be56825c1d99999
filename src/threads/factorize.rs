//! The book's naive factorization, serial and one thread per number.

use std::thread;
use std::time::{Duration, Instant};

use serde::Serialize;

/// The book's numbers.
pub const BOOK_NUMBERS: [u64; 4] = [2_139_079, 1_214_759, 1_516_637, 1_852_285];

/// The seeds' measured Python times for the book's numbers: serial, then one thread per
/// number (slower, because of the GIL).
pub const PYTHON_SECONDS: (f64, f64) = (0.756, 1.16);

/// Every factor of `number`, found the book's naive way: try every `i` in `1..=number`.
///
/// ```
/// assert_eq!(concur::threads::factorize::factorize(12), [1, 2, 3, 4, 6, 12]);
/// ```
pub fn factorize(number: u64) -> Vec<u64> {
    (1..=number).filter(|&i| number.is_multiple_of(i)).collect()
}

/// How to spread the numbers over threads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// One number after another on this thread.
    Serial,
    /// One thread per number, as the book's `FactorizeThread`.
    Threads,
}

/// One timed run.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Run {
    /// How it ran.
    pub mode: Mode,
    /// Wall time, seconds.
    pub seconds: f64,
    /// The factors of each number, in input order.
    pub factors: Vec<Vec<u64>>,
}

/// Factorizes every number in `mode`, timing it.
///
/// ```
/// use concur::threads::factorize::{Mode, run};
///
/// let serial = run(Mode::Serial, &[12, 97]);
/// let threads = run(Mode::Threads, &[12, 97]);
/// assert_eq!(serial.factors, [vec![1, 2, 3, 4, 6, 12], vec![1, 97]]);
/// assert_eq!(threads.factors, serial.factors); // same answer, one thread per number
/// ```
pub fn run(mode: Mode, numbers: &[u64]) -> Run {
    let start = Instant::now();
    let factors = match mode {
        Mode::Serial => numbers.iter().map(|&n| factorize(n)).collect(),
        Mode::Threads => thread::scope(|s| {
            let threads: Vec<_> = numbers
                .iter()
                .map(|&n| s.spawn(move || factorize(n)))
                .collect();
            threads
                .into_iter()
                .map(|t| t.join().unwrap_or_default())
                .collect()
        }),
    };
    Run {
        mode,
        seconds: start.elapsed().as_secs_f64(),
        factors,
    }
}

/// The median of `repeat` runs in `mode` (at least one).
pub fn median_run(mode: Mode, numbers: &[u64], repeat: usize) -> Run {
    timed_runs(mode, numbers, repeat).0
}

/// [`median_run`], with the fastest and the slowest run's seconds.
pub fn timed_runs(mode: Mode, numbers: &[u64], repeat: usize) -> (Run, [f64; 2]) {
    let mut runs: Vec<Run> = (0..repeat.max(1)).map(|_| run(mode, numbers)).collect();
    runs.sort_by(|a, b| a.seconds.total_cmp(&b.seconds));
    let range = [runs[0].seconds, runs[runs.len() - 1].seconds];
    (runs.swap_remove(runs.len() / 2), range)
}

/// A duration in seconds, for callers that prefer `Duration`.
pub fn seconds(run: &Run) -> Duration {
    Duration::from_secs_f64(run.seconds)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn factors_of_known_numbers() {
        assert_eq!(factorize(1), [1]);
        assert_eq!(factorize(13), [1, 13]);
        // Expected values checked independently with Python's `[i for i in range(1, n+1) if n % i == 0]`.
        assert_eq!(factorize(2_139_079), [1, 101, 21_179, 2_139_079]);
        assert_eq!(
            factorize(1_852_285),
            [1, 5, 271, 1355, 1367, 6835, 370_457, 1_852_285]
        );
    }

    #[test]
    fn serial_and_threads_agree() {
        let numbers = [360, 97, 1001, 65_536];
        assert_eq!(
            run(Mode::Serial, &numbers).factors,
            run(Mode::Threads, &numbers).factors
        );
    }
}
