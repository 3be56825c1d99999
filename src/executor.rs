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
