//! A fixed pool of threads with submit/result futures: `concurrent.futures.ThreadPoolExecutor`
//! in Rust (item 59).
//!
//! The book's verdict on `ThreadPoolExecutor`: threads are started once, up front; a
//! `max_workers` bound keeps memory in check; and `future.result()` re-raises a worker's
//! exception in the caller, which plain `Thread` never does. Its limit is that I/O
//! parallelism is capped at `max_workers`.
//!
//! **What Rust changes.** A task's value *and* its failure come back through the handle
//! as a typed `Result`, so a pool cannot swallow an error by construction; a panic inside
//! a task is caught, reported by [`TaskHandle::result`], and the worker thread survives.
//! Jobs travel over a `crossbeam-channel`, and dropping the pool is the book's
//! `with ThreadPoolExecutor(...)` exit: it lets queued tasks finish, then joins every thread.

use std::any::Any;
use std::io;
use std::num::NonZeroUsize;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::thread::{self, JoinHandle};

use crossbeam_channel::{Receiver, Sender};
use thiserror::Error;

type Job = Box<dyn FnOnce() + Send + 'static>;

/// Why a submitted task produced no value.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum TaskError {
    /// The task panicked; the payload's message is kept.
    #[error("task panicked: {0}")]
    Panicked(String),
    /// The pool was shut down before the task could run.
    #[error("task was dropped before it ran")]
    Lost,
}

/// The pending result of a task submitted to a [`ThreadPool`].
#[derive(Debug)]
pub struct TaskHandle<T> {
    result: Receiver<Result<T, TaskError>>,
}

impl<T> TaskHandle<T> {
    /// Blocks until the task has run and returns its value, like Python's `Future.result()`.
    pub fn result(self) -> Result<T, TaskError> {
        self.result.recv().unwrap_or(Err(TaskError::Lost))
    }
}

/// A fixed set of named worker threads that run submitted closures in FIFO order.
///
/// ```
/// use concur::executor::ThreadPool;
/// use std::num::NonZeroUsize;
///
/// let pool = ThreadPool::new("demo", NonZeroUsize::new(4).unwrap()).unwrap();
/// let handles: Vec<_> = (1..=10u64).map(|n| pool.submit(move || n * n)).collect();
/// let squares: Vec<u64> = handles.into_iter().map(|h| h.result().unwrap()).collect();
/// assert_eq!(squares.iter().sum::<u64>(), 385);
/// ```
#[derive(Debug)]
pub struct ThreadPool {
    jobs: Option<Sender<Job>>,
    workers: Vec<JoinHandle<()>>,
}

impl ThreadPool {
    /// Starts `workers` threads named `{name}-{i}`. More threads than the OS can safely
    /// start (see [`crate::limits`]) is an error up front. If one cannot be spawned, those
    /// already started are stopped and joined, and the spawn error is returned.
    pub fn new(name: &str, workers: NonZeroUsize) -> io::Result<Self> {
        crate::limits::ensure_threads(workers.get(), crate::limits::DEFAULT_STACK)?;
        let (jobs, queue) = crossbeam_channel::unbounded::<Job>();
        let mut pool = Self {
            jobs: Some(jobs),
            workers: Vec::with_capacity(workers.get()),
        };
        for i in 0..workers.get() {
            let queue = queue.clone();
            let handle = thread::Builder::new()
                .name(format!("{name}-{i}"))
                .spawn(move || {
                    for job in queue {
                        job();
                    }
                })?; // on error, `pool` is dropped, which joins the started workers
            pool.workers.push(handle);
        }
        Ok(pool)
    }

    /// Number of worker threads.
    pub fn workers(&self) -> usize {
        self.workers.len()
    }

    /// Queues `task` to run on a worker and returns a handle to its result.
    pub fn submit<T, F>(&self, task: F) -> TaskHandle<T>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        let (tx, rx) = crossbeam_channel::bounded(1);
        let job: Job = Box::new(move || {
            let outcome = catch_unwind(AssertUnwindSafe(task))
                .map_err(|payload| TaskError::Panicked(panic_message(payload.as_ref())));
            // The caller may have dropped its handle; then nobody wants the value.
            let _ = tx.send(outcome);
        });
        if let Some(jobs) = &self.jobs {
            // Sending fails only if every worker is gone; the handle then reports Lost.
            let _ = jobs.send(job);
        }
        TaskHandle { result: rx }
    }
}

impl ThreadPool {
    /// Runs `f` on every item on the pool and returns the results in the items' order,
    /// as Python's `executor.map`: all items are submitted at once, and the iterator
    /// waits for each result in turn. A task that panics gives its `Err` in its place;
    /// the others still run.
    ///
    /// ```
    /// use concur::executor::ThreadPool;
    /// use std::num::NonZeroUsize;
    ///
    /// let pool = ThreadPool::new("map", NonZeroUsize::new(3).unwrap()).unwrap();
    /// let lengths: Vec<usize> = pool
    ///     .map(["a", "bb", "ccc"], |word: &str| word.len())
    ///     .map(Result::unwrap)
    ///     .collect();
    /// assert_eq!(lengths, [1, 2, 3]);
    /// ```
    pub fn map<I, F, T>(&self, items: I, f: F) -> impl Iterator<Item = Result<T, TaskError>>
    where
        I: IntoIterator,
        I::Item: Send + 'static,
        F: Fn(I::Item) -> T + Send + Sync + 'static,
        T: Send + 'static,
    {
        let f = std::sync::Arc::new(f);
        let handles: Vec<TaskHandle<T>> = items
            .into_iter()
            .map(|item| {
                let f = std::sync::Arc::clone(&f);
                self.submit(move || f(item))
            })
            .collect();
        handles.into_iter().map(TaskHandle::result)
    }
}

/// The results of `handles` in the order they finish, each with its position among
/// them: Python's `concurrent.futures.as_completed`. Each step waits for whichever
/// unfinished task finishes next (a `select` over the remaining ones).
///
/// ```
/// use concur::executor::{ThreadPool, as_completed};
/// use std::num::NonZeroUsize;
/// use std::time::Duration;
///
/// let pool = ThreadPool::new("ac", NonZeroUsize::new(2).unwrap()).unwrap();
/// let slow = pool.submit(|| { std::thread::sleep(Duration::from_millis(300)); "slow" });
/// let fast = pool.submit(|| "fast");
/// let order: Vec<(usize, &str)> = as_completed([slow, fast])
///     .map(|(i, result)| (i, result.unwrap()))
///     .collect();
/// assert_eq!(order.len(), 2);
/// assert!(order.contains(&(0, "slow")) && order.contains(&(1, "fast")));
/// ```
pub fn as_completed<T>(
    handles: impl IntoIterator<Item = TaskHandle<T>>,
) -> impl Iterator<Item = (usize, Result<T, TaskError>)> {
    let mut pending: Vec<(usize, Receiver<Result<T, TaskError>>)> = handles
        .into_iter()
        .enumerate()
        .map(|(i, handle)| (i, handle.result))
        .collect();
    std::iter::from_fn(move || {
        if pending.is_empty() {
            return None;
        }
        let mut select = crossbeam_channel::Select::new();
        for (_, receiver) in &pending {
            select.recv(receiver);
        }
        let ready = select.select();
        let at = ready.index();
        let outcome = ready.recv(&pending[at].1).unwrap_or(Err(TaskError::Lost));
        let (index, _) = pending.swap_remove(at);
        Some((index, outcome))
    })
}

impl Drop for ThreadPool {
    /// Lets queued tasks finish, then joins every worker.
    fn drop(&mut self) {
        drop(self.jobs.take());
        for worker in self.workers.drain(..) {
            // Jobs catch their own panics, so a worker cannot have panicked.
            let _ = worker.join();
        }
    }
}

/// The message of a panic payload, for reports.
pub fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic payload".to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Barrier};

    fn workers(n: usize) -> NonZeroUsize {
        NonZeroUsize::new(n).unwrap()
    }

    #[test]
    fn runs_tasks_concurrently_up_to_the_worker_count() {
        // Four tasks that each wait for all four at a barrier can only finish if the
        // pool runs them at the same time.
        let pool = ThreadPool::new("barrier", workers(4)).unwrap();
        let barrier = Arc::new(Barrier::new(4));
        let handles: Vec<_> = (0..4)
            .map(|i| {
                let barrier = Arc::clone(&barrier);
                pool.submit(move || {
                    barrier.wait();
                    i
                })
            })
            .collect();
        let got: Vec<i32> = handles.into_iter().map(|h| h.result().unwrap()).collect();
        assert_eq!(got, [0, 1, 2, 3]);
    }

    #[test]
    fn a_panic_comes_back_through_the_handle_and_the_worker_survives() {
        let pool = ThreadPool::new("panic", workers(1)).unwrap();
        let bad = pool.submit(|| -> u8 { panic!("Problem with I/O") });
        let good = pool.submit(|| 7u8);
        assert_eq!(
            bad.result(),
            Err(TaskError::Panicked("Problem with I/O".into()))
        );
        assert_eq!(good.result(), Ok(7));
    }

    #[test]
    fn drop_finishes_queued_tasks_before_joining() {
        let done = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        {
            let pool = ThreadPool::new("drain", workers(2)).unwrap();
            for _ in 0..50 {
                let done = Arc::clone(&done);
                drop(pool.submit(move || {
                    done.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                }));
            }
        }
        assert_eq!(done.load(std::sync::atomic::Ordering::SeqCst), 50);
    }
}

#[cfg(test)]
mod map_tests {
    use super::*;

    #[test]
    fn map_keeps_order_and_as_completed_gives_every_result_once() {
        let pool = ThreadPool::new("t", NonZeroUsize::new(3).unwrap()).unwrap();
        let results: Vec<_> = pool
            .map(0..20u64, |n| {
                assert!(n != 7, "seven");
                n * 2
            })
            .collect();
        assert_eq!(results.len(), 20);
        for (n, result) in results.iter().enumerate() {
            match result {
                Ok(v) => assert_eq!(*v, n as u64 * 2),
                Err(TaskError::Panicked(message)) => {
                    assert_eq!(n, 7);
                    assert!(message.contains("seven"));
                }
                Err(other) => panic!("{other}"),
            }
        }
        let handles: Vec<_> = (0..20u64).map(|n| pool.submit(move || n)).collect();
        let mut seen: Vec<(usize, u64)> = as_completed(handles)
            .map(|(i, r)| (i, r.unwrap()))
            .collect();
        seen.sort_unstable();
        assert_eq!(seen, (0..20).map(|n| (n, n as u64)).collect::<Vec<_>>());
    }
}
