//! The book's first pipeline: `MyQueue` (a locked deque whose `get` fails when empty)
//! and a `Worker` that polls it, sleeping 10 ms whenever there is nothing to do.
//!
//! Kept as a demonstration of what item 55 warns against: the workers poll in a loop
//! (the book counts 3,662 polls for 1,000 items), the main thread busy-waits on the
//! done queue, nothing bounds the queues, and there is no way to tell a worker to stop
//! (here a stop flag is added, or the demonstration could never end).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use serde::Serialize;

/// The book's `MyQueue`: a deque behind a lock, with a `get` that does not wait.
#[derive(Debug, Default)]
pub struct MyQueue<T> {
    items: Mutex<VecDeque<T>>,
}

impl<T> MyQueue<T> {
    /// Appends an item (there is no limit: a slow consumer lets this grow forever).
    pub fn put(&self, item: T) {
        self.items
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push_back(item);
    }

    /// Takes the oldest item, or `None` at once when empty (the book's `IndexError`).
    pub fn get(&self) -> Option<T> {
        self.items
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop_front()
    }

    /// Items waiting.
    pub fn len(&self) -> usize {
        self.items
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    /// Whether nothing waits.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// What the busy-waiting pipeline cost.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct NaiveReport {
    /// Items that reached the done queue.
    pub processed: usize,
    /// Times the workers looked at their input queue.
    pub polled: u64,
    /// Of those, times they found it empty and slept.
    pub empty_polls: u64,
    /// Times the main thread checked the done queue while waiting.
    pub main_checks: u64,
    /// Wall time, seconds.
    pub seconds: f64,
}

/// Runs `items` through one polling worker per entry of `stages` (each stage's work is
/// a sleep of its latency, or nothing), the book's way.
pub fn run(items: usize, stages: &[Duration]) -> NaiveReport {
    let queues: Vec<MyQueue<usize>> = (0..=stages.len()).map(|_| MyQueue::default()).collect();
    let stop = AtomicBool::new(false);
    let polled = AtomicU64::new(0);
    let empty = AtomicU64::new(0);
    let start = Instant::now();
    let mut main_checks = 0;
    thread::scope(|s| {
        for (i, &latency) in stages.iter().enumerate() {
            let (input, output) = (&queues[i], &queues[i + 1]);
            let (stop, polled, empty) = (&stop, &polled, &empty);
            s.spawn(move || {
                let (mut my_polls, mut my_empty) = (0, 0);
                while !stop.load(Ordering::Relaxed) {
                    my_polls += 1;
                    match input.get() {
                        None => {
                            my_empty += 1;
                            thread::sleep(Duration::from_millis(10)); // "No work to do"
                        }
                        Some(item) => {
                            if !latency.is_zero() {
                                thread::sleep(latency);
                            }
                            output.put(item);
                        }
                    }
                }
                polled.fetch_add(my_polls, Ordering::Relaxed);
                empty.fetch_add(my_empty, Ordering::Relaxed);
            });
        }
        for item in 0..items {
            queues[0].put(item);
        }
        // The book's `while len(done_queue.items) < 1000: pass`, with a yield so that
        // the spinning main thread leaves the workers a core.
        let done = &queues[stages.len()];
        while done.len() < items {
            main_checks += 1;
            thread::yield_now();
        }
        stop.store(true, Ordering::Relaxed);
    });
    NaiveReport {
        processed: queues[stages.len()].len(),
        polled: polled.into_inner(),
        empty_polls: empty.into_inner(),
        main_checks,
        seconds: start.elapsed().as_secs_f64(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn processes_everything_and_counts_its_polls() {
        let report = run(200, &[Duration::ZERO; 3]);
        assert_eq!(report.processed, 200);
        // Every item is taken by one successful poll per stage; empty polls come on top.
        assert_eq!(report.polled, 600 + report.empty_polls);
    }
}
