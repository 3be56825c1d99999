//! `Child`: a started process the parent can poll, talk to, and stop.

use std::fs::File;
use std::io::Write;
use std::process::ExitStatus;
use std::time::{Duration, Instant};

use super::cancel::CancelToken;
use super::command::{Cmd, Output};
use super::error::ProcessError;
use super::group::{Feed, Group, Pump, Pumped};

/// A running child (the book's `Popen`), in a process group of its own.
///
/// Dropping it kills the whole group and reaps the child: a `Child` cannot leak a
/// zombie or a runaway grandchild.
///
/// ```
/// use concur::process::Cmd;
/// use std::time::Duration;
///
/// let mut child = Cmd::new("sleep").arg("0.1").spawn().unwrap();
/// let mut polls = 0;
/// while child.poll().unwrap().is_none() {
///     polls += 1; // the parent is free to work meanwhile
///     std::thread::sleep(Duration::from_millis(10));
/// }
/// assert!(polls > 0);
/// ```
#[derive(Debug)]
pub struct Child {
    cmd: Cmd,
    group: Group,
    stdin: Option<File>,
    stdout: Option<File>,
    stderr: Option<File>,
}

impl Child {
    pub(crate) fn new(
        cmd: Cmd,
        group: Group,
        stdin: Option<File>,
        stdout: Option<File>,
        stderr: Option<File>,
    ) -> Self {
        Self {
            cmd,
            group,
            stdin,
            stdout,
            stderr,
        }
    }

    /// The child's process id (also its process group id).
    pub fn id(&self) -> u32 {
        self.group.members[0].id()
    }

    /// The command it runs.
    pub fn cmd(&self) -> &Cmd {
        &self.cmd
    }

    /// Its exit status if it has exited (reaping it), or `None` while it runs
    /// (`Popen.poll()`).
    pub fn poll(&mut self) -> std::io::Result<Option<ExitStatus>> {
        self.group.members[0].try_reap()
    }

    /// Feeds `input`, collects stdout and stderr, and waits, for at most `timeout`
    /// (`Popen.communicate(input, timeout)`). On timeout the child's group is stopped
    /// (SIGTERM, the command's grace period, SIGKILL) and reaped, and the error carries
    /// the output so far.
    pub fn communicate(
        self,
        input: &[u8],
        timeout: Option<Duration>,
    ) -> Result<Output, ProcessError> {
        self.communicate_feed(Feed::from(input), timeout)
    }

    /// [`communicate`](Self::communicate) with its command's own input
    /// ([`Cmd::stdin`]), whatever kind it is.
    pub(crate) fn communicate_own(self, timeout: Option<Duration>) -> Result<Output, ProcessError> {
        let input = self.cmd.input().clone();
        self.communicate_feed(input.feed(), timeout)
    }

    fn communicate_feed(
        mut self,
        input: Feed<'_>,
        timeout: Option<Duration>,
    ) -> Result<Output, ProcessError> {
        let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
        let deadline = timeout.map(|t| Instant::now() + t);
        let (pumped, _) = self
            .pump(input, &mut stdout, &mut stderr, deadline, None)
            .map_err(|source| ProcessError::Io {
                command: self.cmd.display(),
                source,
            })?;
        let output = Output {
            status: pumped.statuses[0],
            stdout,
            stderr,
        };
        match pumped.stop {
            None => Ok(output),
            Some(_) => Err(ProcessError::TimedOut {
                command: self.cmd.display(),
                after: timeout.unwrap_or_default(),
                output: Box::new(output),
            }),
        }
    }

    /// Stops the child now: SIGTERM to its group, up to `grace` for it to exit, then
    /// SIGKILL; returns its exit status once reaped.
    pub fn terminate(mut self, grace: Duration) -> Result<ExitStatus, ProcessError> {
        let (mut sink_out, mut sink_err) = (std::io::sink(), std::io::sink());
        self.cmd = self.cmd.clone().grace(grace);
        let (pumped, _) = self
            .pump(
                Feed::default(),
                &mut sink_out,
                &mut sink_err,
                Some(Instant::now()),
                None,
            )
            .map_err(|source| ProcessError::Io {
                command: self.cmd.display(),
                source,
            })?;
        Ok(pumped.statuses[0])
    }

    pub(crate) fn pump(
        &mut self,
        input: Feed<'_>,
        stdout: &mut dyn Write,
        stderr: &mut dyn Write,
        deadline: Option<Instant>,
        cancel: Option<&CancelToken>,
    ) -> std::io::Result<(Pumped, u64)> {
        let mut readers: Vec<(File, &mut dyn Write)> = Vec::new();
        let captures_stdout = self.stdout.is_some();
        if let Some(file) = self.stdout.take() {
            readers.push((file, stdout));
        }
        if let Some(file) = self.stderr.take() {
            readers.push((file, stderr));
        }
        // A held stdin stays open, unwritten, until the pump returns.
        let (stdin, _held) = match self.cmd.input() {
            super::Input::Held => (None, self.stdin.take()),
            _ => (self.stdin.take().map(|file| (file, input)), None),
        };
        let io = Pump { stdin, readers };
        let pumped = self.group.pump(
            io,
            deadline,
            self.cmd.get_grace(),
            self.cmd.get_linger(),
            cancel,
        )?;
        let received = if captures_stdout { pumped.read[0] } else { 0 };
        Ok((pumped, received))
    }
}
