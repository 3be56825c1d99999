//! What can go wrong with a child process. Every variant names the command.

use std::io;
use std::process::ExitStatus;
use std::time::Duration;

use thiserror::Error;

use super::command::Output;

/// A child process that could not be run, failed, or ran out of time.
#[derive(Debug, Error)]
pub enum ProcessError {
    /// The program does not exist (the shell's exit status 127).
    #[error("command not found: {program}")]
    NotFound {
        /// The program that was looked up.
        program: String,
    },
    /// The OS refused to start the command.
    #[error("cannot run {command}")]
    Spawn {
        /// The command, shell-quoted.
        command: String,
        /// What the OS said.
        #[source]
        source: io::Error,
    },
    /// The command ran and exited unsuccessfully.
    #[error("{command} failed ({status}){}", stderr_suffix(stderr))]
    Failed {
        /// The command, shell-quoted.
        command: String,
        /// How it ended.
        status: ExitStatus,
        /// The end of its stderr, for the message.
        stderr: String,
    },
    /// The command outlived its timeout and was terminated (SIGTERM, then SIGKILL).
    #[error("{command} timed out after {}", crate::process::format_duration(*after))]
    TimedOut {
        /// The command, shell-quoted.
        command: String,
        /// The timeout.
        after: Duration,
        /// What it printed before it was stopped, and how it ended.
        output: Box<Output>,
    },
    /// The command was terminated because the run was cancelled (Ctrl-C, SIGTERM).
    #[error("{command} was cancelled")]
    Cancelled {
        /// The command, shell-quoted.
        command: String,
    },
    /// Talking to the command's pipes failed.
    #[error("I/O with {command} failed")]
    Io {
        /// The command, shell-quoted.
        command: String,
        /// What failed.
        #[source]
        source: io::Error,
    },
}

fn stderr_suffix(stderr: &str) -> String {
    if stderr.trim().is_empty() {
        String::new()
    } else {
        format!(": {}", stderr.trim_end())
    }
}

/// The last lines of `stderr` (at most 5 lines and 1,000 bytes), lossily decoded.
pub(crate) fn stderr_tail(stderr: &[u8]) -> String {
    let start = stderr.len().saturating_sub(1000);
    let text = String::from_utf8_lossy(&stderr[start..]);
    let lines: Vec<&str> = text.lines().rev().take(5).collect();
    lines.into_iter().rev().collect::<Vec<_>>().join(" / ")
}

impl ProcessError {
    /// Whether the program was not found.
    pub fn is_not_found(&self) -> bool {
        matches!(self, ProcessError::NotFound { .. })
    }
}
