//! When to stop (`--halt`) and how long a job may run (`--timeout`, fixed or a
//! percentage of the median runtime), in GNU parallel's terms.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// Whether a halt waits for the running jobs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HaltWhen {
    /// Start no new job; let the running ones finish.
    Soon,
    /// Stop the running jobs too (their process groups, SIGTERM then SIGKILL).
    Now,
}

/// What is counted towards a halt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HaltOn {
    /// Failed jobs.
    Fail,
    /// Succeeded jobs.
    Success,
}

/// How many it takes.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Threshold {
    /// This many jobs.
    Count(usize),
    /// This percentage of the jobs started so far (at least one job counted).
    Percent(f64),
}

/// `--halt`: when to stop.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Halt {
    /// Soon or now.
    pub when: HaltWhen,
    /// Failures or successes.
    pub on: HaltOn,
    /// How many.
    pub threshold: Threshold,
}

impl Halt {
    /// `--halt-on-error`: `soon,fail=1`.
    pub const ON_ERROR: Halt = Halt {
        when: HaltWhen::Soon,
        on: HaltOn::Fail,
        threshold: Threshold::Count(1),
    };

    /// Whether `counted` jobs (of `started`) reach the threshold.
    pub fn reached(&self, counted: usize, started: usize) -> bool {
        match self.threshold {
            Threshold::Count(n) => counted >= n,
            Threshold::Percent(p) => {
                counted > 0 && started > 0 && counted as f64 * 100.0 >= p * started as f64
            }
        }
    }
}

impl FromStr for Halt {
    type Err = String;

    /// GNU parallel's forms: `never`, `soon,fail=N`, `now,fail=N`, `soon,fail=P%`,
    /// `now,success=N`, …, and the old numbers `0` (never), `1` (soon,fail=1),
    /// `2` (now,fail=1), `-1` (soon,success=1), `-2` (now,success=1).
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bad = || {
            format!(
                "invalid --halt {text:?}: expected never, soon,fail=N, now,fail=N, soon,fail=P%, now,success=N (or 0, 1, 2, -1, -2)"
            )
        };
        match text {
            "1" => return Ok(Halt::ON_ERROR),
            "2" => {
                return Ok(Halt {
                    when: HaltWhen::Now,
                    ..Halt::ON_ERROR
                });
            }
            "-1" | "-2" => {
                return Ok(Halt {
                    when: if text == "-1" {
                        HaltWhen::Soon
                    } else {
                        HaltWhen::Now
                    },
                    on: HaltOn::Success,
                    threshold: Threshold::Count(1),
                });
            }
            _ => {}
        }
        let (when, rest) = text.split_once(',').ok_or_else(bad)?;
        let when = match when {
            "soon" => HaltWhen::Soon,
            "now" => HaltWhen::Now,
            _ => return Err(bad()),
        };
        let (on, count) = rest.split_once('=').ok_or_else(bad)?;
        let on = match on {
            "fail" => HaltOn::Fail,
            "success" => HaltOn::Success,
            _ => return Err(bad()),
        };
        let threshold = match count.strip_suffix('%') {
            Some(p) => match p.parse::<f64>() {
                Ok(p) if p > 0.0 && p <= 100.0 => Threshold::Percent(p),
                _ => return Err(bad()),
            },
            None => match count.parse::<usize>() {
                Ok(n) if n > 0 => Threshold::Count(n),
                _ => return Err(bad()),
            },
        };
        Ok(Halt {
            when,
            on,
            threshold,
        })
    }
}

impl fmt::Display for Halt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let when = match self.when {
            HaltWhen::Soon => "soon",
            HaltWhen::Now => "now",
        };
        let on = match self.on {
            HaltOn::Fail => "fail",
            HaltOn::Success => "success",
        };
        match self.threshold {
            Threshold::Count(n) => write!(f, "{when},{on}={n}"),
            Threshold::Percent(p) => write!(f, "{when},{on}={p}%"),
        }
    }
}

/// `--timeout`: a fixed time, or a percentage of the median runtime of the jobs that
/// succeeded so far (no timeout until three have).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Timeout {
    /// This long.
    Fixed(Duration),
    /// This percentage of the median.
    PercentOfMedian(f64),
}

impl Timeout {
    /// The timeout for the next job, given the runtimes seen so far.
    pub fn for_next(&self, median: &RunningMedian) -> Option<Duration> {
        match *self {
            Timeout::Fixed(d) => Some(d),
            Timeout::PercentOfMedian(p) => median
                .median()
                .filter(|_| median.len() >= 3)
                .map(|m| m.mul_f64(p / 100.0)),
        }
    }
}

/// The median of a growing set of durations, in O(log n) per added value: the lower
/// half in a max-heap, the upper half in a min-heap.
#[derive(Clone, Debug, Default)]
pub struct RunningMedian {
    low: BinaryHeap<Duration>,
    high: BinaryHeap<Reverse<Duration>>,
}

impl RunningMedian {
    /// Adds one value.
    pub fn push(&mut self, value: Duration) {
        if self.low.peek().is_none_or(|&top| value <= top) {
            self.low.push(value);
        } else {
            self.high.push(Reverse(value));
        }
        if self.low.len() > self.high.len() + 1 {
            if let Some(top) = self.low.pop() {
                self.high.push(Reverse(top));
            }
        } else if self.high.len() > self.low.len()
            && let Some(Reverse(bottom)) = self.high.pop()
        {
            self.low.push(bottom);
        }
    }

    /// How many values were added.
    pub fn len(&self) -> usize {
        self.low.len() + self.high.len()
    }

    /// Whether none was.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The median (the lower middle one for an even count).
    pub fn median(&self) -> Option<Duration> {
        self.low.peek().copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn halt_parses_gnu_forms() {
        assert_eq!("1".parse::<Halt>(), Ok(Halt::ON_ERROR));
        assert_eq!("soon,fail=1".parse::<Halt>(), Ok(Halt::ON_ERROR));
        let now = "now,success=2".parse::<Halt>().unwrap();
        assert_eq!(
            (now.when, now.on, now.threshold),
            (HaltWhen::Now, HaltOn::Success, Threshold::Count(2))
        );
        assert_eq!("-1".parse::<Halt>(), "soon,success=1".parse::<Halt>());
        assert_eq!("-2".parse::<Halt>(), "now,success=1".parse::<Halt>());
        let pct = "soon,fail=20%".parse::<Halt>().unwrap();
        assert_eq!(pct.threshold, Threshold::Percent(20.0));
        assert!(pct.reached(1, 5) && !pct.reached(1, 6));
        for bad in [
            "",
            "later,fail=1",
            "now,fail=0",
            "now,fail=x",
            "soon,fail=150%",
            "soon",
        ] {
            let err = bad.parse::<Halt>().unwrap_err();
            assert!(err.contains("--halt"), "{err}");
        }
        assert_eq!(now.to_string(), "now,success=2");
    }

    #[test]
    fn running_median_matches_a_sort() {
        let values = [5u64, 1, 9, 3, 7, 7, 2, 8, 100, 0];
        let mut median = RunningMedian::default();
        for (i, &v) in values.iter().enumerate() {
            median.push(Duration::from_millis(v));
            let mut sorted = values[..=i].to_vec();
            sorted.sort_unstable();
            let expected = sorted[(sorted.len() - 1) / 2];
            assert_eq!(
                median.median(),
                Some(Duration::from_millis(expected)),
                "after {i}"
            );
        }
        let pct = Timeout::PercentOfMedian(200.0);
        let mut few = RunningMedian::default();
        few.push(Duration::from_secs(1));
        assert_eq!(pct.for_next(&few), None, "no timeout before three runtimes");
        assert_eq!(pct.for_next(&median), Some(Duration::from_millis(10)));
    }
}

/// `--load` and `--memfree`: a new job starts only while the machine's load average is
/// below `max_load` and its available memory above `min_free`. Running jobs are left
/// alone.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Gate {
    /// Highest 1-minute load average at which a job may start.
    pub max_load: Option<f64>,
    /// Least available memory (`MemAvailable`, bytes) at which a job may start.
    pub min_free: Option<u64>,
}

impl Gate {
    /// Whether a gate is set at all.
    pub fn is_set(&self) -> bool {
        self.max_load.is_some() || self.min_free.is_some()
    }

    /// Whether a job may start now. A value that cannot be read does not block.
    pub fn is_open(&self) -> bool {
        let load_ok = self
            .max_load
            .is_none_or(|max| load_average().is_none_or(|load| load < max));
        let memory_ok = self
            .min_free
            .is_none_or(|min| memory_available().is_none_or(|free| free >= min));
        load_ok && memory_ok
    }
}

/// The 1-minute load average, from `/proc/loadavg`.
pub(super) fn load_average() -> Option<f64> {
    let text = std::fs::read_to_string("/proc/loadavg").ok()?;
    text.split_whitespace().next()?.parse().ok()
}

/// Available memory in bytes (`MemAvailable` in `/proc/meminfo`).
pub(super) fn memory_available() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// `-j` as GNU parallel writes it: `N`, `+N` / `-N` (the cores plus or minus N), `N%`
/// (of the cores), `0` (as many as possible: 1,024 here).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum JobCount {
    /// Exactly N (0: 1,024).
    Exactly(usize),
    /// The cores plus N.
    Plus(usize),
    /// The cores minus N (at least 1).
    Minus(usize),
    /// This percentage of the cores (at least 1).
    Percent(f64),
}

impl JobCount {
    /// How many jobs, on a machine with `cores`.
    pub fn resolve(self, cores: usize) -> std::num::NonZeroUsize {
        let n = match self {
            JobCount::Exactly(0) => 1024,
            JobCount::Exactly(n) => n,
            JobCount::Plus(n) => cores.saturating_add(n),
            JobCount::Minus(n) => cores.saturating_sub(n),
            JobCount::Percent(p) => (cores as f64 * p / 100.0).floor() as usize,
        };
        std::num::NonZeroUsize::new(n).unwrap_or(std::num::NonZeroUsize::MIN)
    }
}

impl FromStr for JobCount {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.trim();
        let bad = || format!("invalid -j {text:?}: expected N, +N, -N, N% or a file holding one");
        let number = |t: &str| t.parse::<usize>().map_err(|_| bad());
        if let Some(p) = text.strip_suffix('%') {
            let p: f64 = p.parse().map_err(|_| bad())?;
            return (p > 0.0).then_some(JobCount::Percent(p)).ok_or_else(bad);
        }
        Ok(match text.as_bytes().first() {
            Some(b'+') => JobCount::Plus(number(&text[1..])?),
            Some(b'-') => JobCount::Minus(number(&text[1..])?),
            _ => JobCount::Exactly(number(text)?),
        })
    }
}

/// `-j FILE`: the job count is read from a file, and read again when the file has
/// changed as a job completes (GNU parallel's procfile).
#[derive(Clone, Debug)]
pub struct JobsFile {
    /// The file.
    pub path: std::path::PathBuf,
}

impl JobsFile {
    /// The file's modification time, to tell whether it changed.
    pub fn modified(&self) -> Option<std::time::SystemTime> {
        std::fs::metadata(&self.path)
            .and_then(|m| m.modified())
            .ok()
    }

    /// The job count the file holds now, on a machine with `cores`.
    pub fn read(&self, cores: usize) -> Result<std::num::NonZeroUsize, String> {
        // A job count is a few bytes; anything past 64 KiB is not one.
        let bytes = crate::limits::read_bounded(&self.path, 64 << 10, "a -j file")
            .map_err(|e| format!("cannot read -j {}: {e}", self.path.display()))?;
        let text = String::from_utf8_lossy(&bytes);
        text.parse::<JobCount>()
            .map(|count| count.resolve(cores))
            .map_err(|e| format!("{}: {e}", self.path.display()))
    }
}
