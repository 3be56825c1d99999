//! Chains of children, like a shell pipeline: `A | B | C`.

use std::fs::File;
use std::io::Write;
use std::os::fd::OwnedFd;
use std::os::unix::process::ExitStatusExt;
use std::process::{ExitStatus, Stdio};
use std::time::{Duration, Instant};

use rustix::process::Signal;

use super::CancelToken;
use super::command::{Cmd, DEFAULT_GRACE};
use super::error::{ProcessError, stderr_tail};
use super::group::{Feed, Group, Member, Pump, Stop};

/// Commands whose stdout feeds the next one's stdin (the book's encrypt → hash chain).
///
/// Every stage runs in one process group, so a timeout stops the whole chain. The
/// parent keeps no copy of the pipes between stages: when a downstream stage exits, an
/// upstream writer gets SIGPIPE, exactly as in a shell.
///
/// ```
/// use concur::process::{Cmd, Pipeline};
///
/// let out = Pipeline::new([Cmd::new("yes"), Cmd::new("head").arg("-n2")]).run().unwrap();
/// assert_eq!(out.stdout, b"y\ny\n");
/// ```
#[derive(Clone, Debug)]
pub struct Pipeline {
    stages: Vec<Cmd>,
    input: Vec<u8>,
    timeout: Option<Duration>,
    grace: Duration,
}

/// What a finished pipeline produced.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PipelineOutput {
    /// Each stage's exit status, in order (the shell's `PIPESTATUS`).
    pub statuses: Vec<ExitStatus>,
    /// The last stage's stdout.
    pub stdout: Vec<u8>,
    /// Each stage's stderr, in order.
    pub stderr: Vec<Vec<u8>>,
}

impl Pipeline {
    /// A pipeline of `stages`, first to last. An empty list runs nothing.
    pub fn new(stages: impl IntoIterator<Item = Cmd>) -> Self {
        Self {
            stages: stages.into_iter().collect(),
            input: Vec::new(),
            timeout: None,
            grace: DEFAULT_GRACE,
        }
    }

    /// Bytes to feed the first stage's stdin (by default it reads nothing).
    pub fn input(mut self, data: impl Into<Vec<u8>>) -> Self {
        self.input = data.into();
        self
    }

    /// Stops the whole chain if it runs longer than `timeout`.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// The pause between SIGTERM and SIGKILL on timeout.
    pub fn grace(mut self, grace: Duration) -> Self {
        self.grace = grace;
        self
    }

    fn display(&self) -> String {
        self.stages
            .iter()
            .map(Cmd::display)
            .collect::<Vec<_>>()
            .join(" | ")
    }

    /// Runs the chain to completion and collects its output, whatever the statuses.
    pub fn output(&self) -> Result<PipelineOutput, ProcessError> {
        self.output_until(None)
    }

    /// [`output`](Self::output), stopping the whole chain (and failing with
    /// [`ProcessError::Cancelled`]) as soon as `cancel` fires.
    pub fn output_until(
        &self,
        cancel: Option<&CancelToken>,
    ) -> Result<PipelineOutput, ProcessError> {
        let start = Instant::now();
        let Some((first, rest)) = self.stages.split_first() else {
            return Ok(PipelineOutput {
                statuses: Vec::new(),
                stdout: self.input.clone(),
                stderr: Vec::new(),
            });
        };
        let piped_stdin = Some(Stdio::piped());
        let mut command = first.command(piped_stdin, 0);
        command.stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut leader = command.spawn().map_err(|e| first.spawn_error(e))?;
        drop(command);
        let stdin = leader.stdin.take().map(|p| File::from(OwnedFd::from(p)));
        let mut upstream = leader.stdout.take();
        let mut stderrs = vec![leader.stderr.take().map(|p| File::from(OwnedFd::from(p)))];
        let mut group = Group::new(Member::new(leader));
        let pgid = group.pgid().as_raw_nonzero().get();

        for stage in rest {
            // The upstream stdout moves into this stage's stdin; once the Command is
            // dropped the parent holds no copy, so SIGPIPE can reach the writer.
            let from_upstream = upstream.take().map(Stdio::from);
            let mut command = stage.command(from_upstream, pgid);
            command.stdout(Stdio::piped()).stderr(Stdio::piped());
            let spawned = command.spawn();
            drop(command);
            let mut child = spawned.map_err(|e| stage.spawn_error(e))?; // `group` drop stops earlier stages
            upstream = child.stdout.take();
            stderrs.push(child.stderr.take().map(|p| File::from(OwnedFd::from(p))));
            group.members.push(Member::new(child));
        }

        let mut stdout = Vec::new();
        let mut stderr: Vec<Vec<u8>> = vec![Vec::new(); self.stages.len()];
        let mut readers: Vec<(File, &mut dyn Write)> = Vec::new();
        if let Some(last) = upstream {
            readers.push((File::from(OwnedFd::from(last)), &mut stdout));
        }
        for (file, sink) in stderrs.into_iter().zip(stderr.iter_mut()) {
            if let Some(file) = file {
                readers.push((file, sink));
            }
        }
        let io = Pump {
            stdin: stdin.map(|file| (file, Feed::from(self.input.as_slice()))),
            readers,
        };
        let deadline = self.timeout.map(|t| start + t);
        let pumped = group
            .pump(io, deadline, self.grace, None, cancel)
            .map_err(|source| ProcessError::Io {
                command: self.display(),
                source,
            })?;
        let output = PipelineOutput {
            statuses: pumped.statuses,
            stdout,
            stderr,
        };
        if pumped.stop == Some(Stop::Cancel) {
            return Err(ProcessError::Cancelled {
                command: self.display(),
            });
        }
        if pumped.stop.is_some() {
            return Err(ProcessError::TimedOut {
                command: self.display(),
                after: self.timeout.unwrap_or_default(),
                output: Box::new(super::command::Output {
                    status: output.statuses.last().copied().unwrap_or_default(),
                    stdout: output.stdout,
                    stderr: output.stderr.concat(),
                }),
            });
        }
        Ok(output)
    }

    /// Runs the chain and checks every stage. A stage fails if it exits unsuccessfully,
    /// except that an upstream stage killed by SIGPIPE is fine: its reader finished
    /// early on purpose (as with `yes | head -1`).
    pub fn run(&self) -> Result<PipelineOutput, ProcessError> {
        let output = self.output()?;
        let last = output.statuses.len().saturating_sub(1);
        for (i, status) in output.statuses.iter().enumerate() {
            let upstream_sigpipe = i < last && status.signal() == Some(Signal::PIPE.as_raw());
            if !(status.success() || upstream_sigpipe) {
                return Err(ProcessError::Failed {
                    command: format!(
                        "stage {} of {} ({})",
                        i + 1,
                        output.statuses.len(),
                        self.stages[i].display()
                    ),
                    status: *status,
                    stderr: stderr_tail(&output.stderr[i]),
                });
            }
        }
        Ok(output)
    }
}
