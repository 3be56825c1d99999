//! Stoppable workers: the book's `StoppableWorker`, `start_threads` and `stop_threads`.

use std::io;
use std::sync::Arc;
use std::thread::{self, JoinHandle};

use thiserror::Error;

use super::closable::ClosableQueue;

/// A worker thread of a stage panicked.
#[derive(Debug, Error)]
#[error("{count} worker thread(s) of stage {stage:?} panicked")]
pub struct WorkerPanicked {
    /// The stage's name.
    pub stage: String,
    /// How many of its threads panicked.
    pub count: usize,
}

/// A group of threads that each run `for item in input { output.put(f(item)) }`.
///
/// They stop when `input` is closed and drained (or when `output` is closed). Stopping
/// them is the book's `stop_threads`: close the input, then [`join`](Self::join).
#[derive(Debug)]
pub struct Workers {
    stage: String,
    handles: Vec<JoinHandle<()>>,
}

impl Workers {
    /// Starts `count` threads named `{stage}-{i}`, each feeding `f(item)` from `input`
    /// into `output`.
    ///
    /// More threads than the OS can safely start (see [`crate::limits`]) is an error up
    /// front. If a thread cannot be spawned, `input` is closed, the threads already started are
    /// joined, and the spawn error is returned: nothing is left running.
    pub fn start<I, O, F>(
        stage: &str,
        count: usize,
        input: &Arc<ClosableQueue<I>>,
        output: &Arc<ClosableQueue<O>>,
        f: F,
    ) -> io::Result<Self>
    where
        I: Send + 'static,
        O: Send + 'static,
        F: Fn(I) -> O + Send + Sync + 'static,
    {
        crate::limits::ensure_threads(count, crate::limits::DEFAULT_STACK)?;
        let f = Arc::new(f);
        let mut handles = Vec::with_capacity(count);
        for i in 0..count {
            let (queue, output, f) = (Arc::clone(input), Arc::clone(output), Arc::clone(&f));
            let spawned = thread::Builder::new()
                .name(format!("{stage}-{i}"))
                .spawn(move || {
                    for item in queue.iter() {
                        if output.put(f(item)).is_err() {
                            break;
                        }
                    }
                });
            match spawned {
                Ok(handle) => handles.push(handle),
                Err(err) => {
                    input.close();
                    for handle in handles {
                        let _ = handle.join();
                    }
                    return Err(err);
                }
            }
        }
        Ok(Self {
            stage: stage.to_owned(),
            handles,
        })
    }

    /// Number of threads.
    pub fn len(&self) -> usize {
        self.handles.len()
    }

    /// Whether the group has no threads.
    pub fn is_empty(&self) -> bool {
        self.handles.is_empty()
    }

    /// Waits for every thread to finish (close their input first).
    pub fn join(self) -> Result<(), WorkerPanicked> {
        let count = self
            .handles
            .into_iter()
            .map(JoinHandle::join)
            .filter(Result::is_err)
            .count();
        if count == 0 {
            Ok(())
        } else {
            Err(WorkerPanicked {
                stage: self.stage,
                count,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_two_stage_pipeline_processes_everything_and_stops_in_order() {
        let input = Arc::new(ClosableQueue::bounded(4));
        let middle = Arc::new(ClosableQueue::bounded(4));
        let output = Arc::new(ClosableQueue::unbounded());
        let doublers = Workers::start("double", 3, &input, &middle, |n: u64| n * 2).unwrap();
        let adders = Workers::start("add", 2, &middle, &output, |n: u64| n + 1).unwrap();
        for n in 0..500 {
            input.put(n).unwrap();
        }
        input.close();
        doublers.join().unwrap();
        middle.close();
        adders.join().unwrap();
        output.close();
        let mut got: Vec<u64> = output.iter().collect();
        got.sort_unstable();
        let expected: Vec<u64> = (0..500).map(|n| 2 * n + 1).collect();
        assert_eq!(got, expected);
    }

    #[test]
    fn a_panicking_worker_is_reported_on_join() {
        let input = Arc::new(ClosableQueue::bounded(1));
        let output = Arc::new(ClosableQueue::<()>::unbounded());
        let workers = Workers::start("boom", 1, &input, &output, |_: ()| panic!("boom")).unwrap();
        input.put(()).unwrap();
        input.close();
        let err = workers.join().unwrap_err();
        assert_eq!(err.count, 1);
        assert_eq!(
            err.to_string(),
            "1 worker thread(s) of stage \"boom\" panicked"
        );
    }
}
