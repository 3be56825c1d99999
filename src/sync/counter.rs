//! The book's sensor counter, three ways: racy, locked, atomic.

use std::sync::PoisonError;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;

use serde::Serialize;

use crate::shim::Mutex;

/// Something many threads can increment.
pub trait Counter: Sync {
    /// Adds `offset`.
    fn increment(&self, offset: u64);
    /// The current total.
    fn count(&self) -> u64;
}

/// The book's `Counter`: `count += offset` as a separate read and write, so concurrent
/// increments overwrite each other. Safe Rust (an atomic load, then an atomic store),
/// deliberately wrong.
///
/// CPython loses updates because its interpreter can switch threads between the read
/// and the write. Native threads lose them only when they truly run at once, which a
/// busy machine may not allow; so, as the interpreter does, this counter gives its
/// thread up between the read and the write now and then ([`SWITCH_EVERY`] reads), and
/// the race shows whenever another thread is ready to run.
#[derive(Debug, Default)]
pub struct UnsyncCounter {
    count: AtomicU64,
}

/// How often [`UnsyncCounter`] yields between its read and its write: once every this
/// many values read.
pub const SWITCH_EVERY: u64 = 64;

impl Counter for UnsyncCounter {
    fn increment(&self, offset: u64) {
        let value = self.count.load(Ordering::Relaxed); // getattr(counter, 'count')
        if value.is_multiple_of(SWITCH_EVERY) {
            thread::yield_now(); // the interpreter switching threads here
        }
        let result = value + offset; // result = value + 1
        self.count.store(result, Ordering::Relaxed); // setattr(counter, 'count', result)
    }

    fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }
}

/// The book's `LockingCounter`: the read-modify-write under a mutex.
#[derive(Debug, Default)]
pub struct LockingCounter {
    count: Mutex<u64>,
}

impl Counter for LockingCounter {
    fn increment(&self, offset: u64) {
        *self.count.lock().unwrap_or_else(PoisonError::into_inner) += offset;
    }

    fn count(&self) -> u64 {
        *self.count.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl LockingCounter {
    /// Adds `offset` (also available through [`Counter`]).
    pub fn increment(&self, offset: u64) {
        Counter::increment(self, offset);
    }

    /// The current total (also available through [`Counter`]).
    pub fn count(&self) -> u64 {
        Counter::count(self)
    }
}

/// One `fetch_add` per increment: exact, and no lock.
#[derive(Debug, Default)]
pub struct AtomicCounter {
    count: AtomicU64,
}

impl Counter for AtomicCounter {
    fn increment(&self, offset: u64) {
        self.count.fetch_add(offset, Ordering::Relaxed);
    }

    fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }
}

/// Which counter to race (`concur race --mode`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
#[serde(rename_all = "kebab-case")]
pub enum CounterMode {
    /// A separate load and store: loses updates.
    Unsynchronized,
    /// A mutex around the increment.
    Mutex,
    /// An atomic `fetch_add`.
    Atomic,
}

/// What a race produced.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct RaceResult {
    /// The counter used.
    pub mode: CounterMode,
    /// `threads × increments`.
    pub expected: u64,
    /// What the counter said.
    pub got: u64,
}

impl RaceResult {
    /// Increments lost to the race.
    pub fn lost(&self) -> u64 {
        self.expected - self.got
    }
}

/// The book's experiment: `threads` sensor workers each add 1, `increments` times.
///
/// ```
/// use concur::sync::{race, CounterMode};
///
/// let exact = race(CounterMode::Atomic, 4, 10_000);
/// assert_eq!((exact.expected, exact.got), (40_000, 40_000));
/// ```
pub fn race(mode: CounterMode, threads: usize, increments: u64) -> RaceResult {
    fn run(counter: &dyn Counter, threads: usize, increments: u64) -> u64 {
        // Every thread starts counting at once, as the book's do (its threads start
        // within microseconds of each other, and each runs for milliseconds).
        let start = std::sync::Barrier::new(threads);
        thread::scope(|s| {
            for _ in 0..threads {
                s.spawn(|| {
                    start.wait();
                    for _ in 0..increments {
                        counter.increment(1);
                    }
                });
            }
        });
        counter.count()
    }
    let got = match mode {
        CounterMode::Unsynchronized => run(&UnsyncCounter::default(), threads, increments),
        CounterMode::Mutex => run(&LockingCounter::default(), threads, increments),
        CounterMode::Atomic => run(&AtomicCounter::default(), threads, increments),
    };
    RaceResult {
        mode,
        expected: threads as u64 * increments,
        got,
    }
}

#[cfg(all(test, not(concur_loom)))]
mod tests {
    use super::*;

    #[test]
    fn mutex_and_atomic_are_exact() {
        for mode in [CounterMode::Mutex, CounterMode::Atomic] {
            let result = race(mode, 5, 100_000);
            assert_eq!(result.got, 500_000, "{mode:?}");
        }
    }

    #[test]
    fn the_unsynchronized_counter_never_gains_and_single_threaded_is_exact() {
        // With one thread there is nobody to race with.
        assert_eq!(race(CounterMode::Unsynchronized, 1, 50_000).got, 50_000);
        // With several, updates can only be lost, never invented; and they are lost,
        // however busy the machine, since a thread yields between its read and write.
        let result = race(CounterMode::Unsynchronized, 5, 100_000);
        assert!(result.got < result.expected, "{result:?}");
    }
}
