//! `ProcessManager`: start many children, then wait for all of them at once.

use std::thread;
use std::time::{Duration, Instant};

use super::child::Child;
use super::command::{Cmd, Output};
use super::error::ProcessError;

/// How one managed child ended.
#[derive(Debug)]
pub enum ProcessResult {
    /// It exited on its own; here is its status and output.
    Finished(Output),
    /// It outlived the timeout, was stopped and reaped; here is what it printed.
    TimedOut(Output),
    /// Talking to it failed.
    Failed(ProcessError),
}

/// The seed's `ProcessManager`: start children, then `wait_all` with one timeout.
///
/// Every child's pipes are drained concurrently (one thread each), so no child can
/// block on a full pipe while the parent waits on another: the deadlock the book warns
/// about cannot happen. Children still running at the deadline are stopped and reaped.
///
/// ```
/// use concur::process::{Cmd, ProcessManager, ProcessResult};
/// use std::time::Duration;
///
/// let mut manager = ProcessManager::new();
/// for _ in 0..10 {
///     manager.start(&Cmd::new("sleep").arg("0.2")).unwrap(); // all ten run at once
/// }
/// let results = manager.wait_all(Some(Duration::from_secs(5)));
/// assert!(results.iter().all(|r| matches!(r, ProcessResult::Finished(o) if o.status.success())));
/// ```
#[derive(Debug, Default)]
pub struct ProcessManager {
    children: Vec<Child>,
}

impl ProcessManager {
    /// A manager with no children.
    pub fn new() -> Self {
        Self::default()
    }

    /// Starts `cmd` now; returns its index in the results of [`wait_all`](Self::wait_all).
    pub fn start(&mut self, cmd: &Cmd) -> Result<usize, ProcessError> {
        self.children.push(cmd.spawn()?);
        Ok(self.children.len() - 1)
    }

    /// Number of children started.
    pub fn len(&self) -> usize {
        self.children.len()
    }

    /// Whether no child was started.
    pub fn is_empty(&self) -> bool {
        self.children.is_empty()
    }

    /// Waits for every child, for at most `timeout` in all, and returns one result per
    /// child in start order. Each child gets its command's own stdin input, if any.
    pub fn wait_all(self, timeout: Option<Duration>) -> Vec<ProcessResult> {
        let deadline = timeout.map(|t| Instant::now() + t);
        thread::scope(|scope| {
            let waiters: Vec<_> = self
                .children
                .into_iter()
                .map(|child| {
                    scope.spawn(move || {
                        let left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
                        match child.communicate_own(left) {
                            Ok(output) => ProcessResult::Finished(output),
                            Err(ProcessError::TimedOut { output, .. }) => {
                                ProcessResult::TimedOut(*output)
                            }
                            Err(err) => ProcessResult::Failed(err),
                        }
                    })
                })
                .collect();
            waiters
                .into_iter()
                .map(|w| {
                    w.join().unwrap_or_else(|_| {
                        ProcessResult::Failed(ProcessError::Io {
                            command: "a managed child".into(),
                            source: std::io::Error::other("its waiter thread panicked"),
                        })
                    })
                })
                .collect()
        })
    }
}
