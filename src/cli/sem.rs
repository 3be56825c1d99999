//! `concur sem`: GNU parallel's counting semaphore for shell scripts (`sem`).

use std::ffi::OsString;
use std::io::{IsTerminal, Write};
use std::num::NonZeroUsize;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Args;

use super::signals::SignalCancel;
use super::{Outcome, UsageError};
use crate::semaphore::{AcquireError, Semaphore};

const SEM_AFTER: &str = "\
Runs COMMAND (through the shell, as concur run does) once one of the -j slots of the
semaphore --id is free: in the background by default (concur sem returns as soon as
the command has its slot, and the command keeps the slot until it and every process
it started have exited), or with --fg in the foreground, exiting as it does.
--wait returns once no slot of --id is held.

Slots are locks on files in $PARALLEL_HOME/semaphores (default ~/.parallel/semaphores):
a holder killed even with SIGKILL releases its slot at once.

Exit status: COMMAND's with --fg, else 0 once it started; 1 when --st -S gave up;
255 when concur sem itself failed.

Examples:
  for f in *.log; do concur sem -j 4 --id zip gzip \"$f\"; done; concur sem --id zip --wait
  concur sem --fg --id db -j 1 ./migrate.sh";

/// Arguments of `concur sem`.
#[derive(Debug, Args)]
#[command(after_help = SEM_AFTER)]
pub struct SemArgs {
    /// Slots: at most N commands of this --id at once [default: 1].
    #[arg(short, long, value_name = "N", default_value = "1", value_parser = clap::value_parser!(u32).range(1..=65536))]
    jobs: u32,

    /// The semaphore's name [default: the terminal's name, or `notty`].
    #[arg(long, alias = "semaphorename", value_name = "NAME")]
    id: Option<String>,

    /// Run COMMAND in the foreground and exit as it does.
    #[arg(long)]
    fg: bool,

    /// Wait until no slot of --id is held, then exit (no COMMAND).
    #[arg(long, conflicts_with = "fg")]
    wait: bool,

    /// Wait at most S seconds for a slot: S > 0 runs COMMAND anyway after that,
    /// S < 0 gives up (exit 1).
    #[arg(
        long = "semaphoretimeout",
        visible_alias = "st",
        value_name = "S",
        allow_negative_numbers = true
    )]
    timeout: Option<f64>,

    /// Accepted for GNU parallel scripts; does nothing.
    #[arg(long, hide = true)]
    will_cite: bool,

    /// Accepted for GNU sem scripts: the command's output is never grouped here.
    #[arg(short = 'u', long = "ungroup", hide = true)]
    ungroup: bool,

    /// Accepted for GNU sem scripts: the background is the default.
    #[arg(long, hide = true, conflicts_with = "fg")]
    bg: bool,

    /// The command and its words (joined into one shell command line).
    #[arg(trailing_var_arg = true, value_name = "COMMAND")]
    command: Vec<OsString>,
}

/// The default id: the terminal on stdin (as GNU's `tty` names it), else `notty`.
fn default_id() -> String {
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        return "notty".into();
    }
    std::fs::read_link("/proc/self/fd/0")
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_else(|_| "tty".into())
}

/// Runs `concur sem`.
/// (`_out` is unused: the command writes to the inherited stdout itself.)
pub fn run(args: SemArgs, _out: &mut dyn Write) -> Result<Outcome> {
    let id = args.id.clone().unwrap_or_else(default_id);
    let slots = NonZeroUsize::new(args.jobs as usize).unwrap_or(NonZeroUsize::MIN);
    let root = Semaphore::default_root()
        .ok_or_else(|| UsageError("neither $PARALLEL_HOME nor $HOME is set".into()))?;
    let sem = Semaphore::open_in(&root, &id, slots)?;
    let signals = SignalCancel::install("sem-signals")?;
    if args.wait {
        if !args.command.is_empty() {
            return Err(UsageError("--wait takes no command".into()).into());
        }
        return match sem.wait_idle(Some(signals.token())) {
            Ok(()) => Ok(Outcome::Success),
            Err(AcquireError::Cancelled { .. }) => Ok(Outcome::Code(signals.exit_status())),
            Err(err) => Err(err.into()),
        };
    }
    if args.command.is_empty() {
        return Err(UsageError("no command to run (or --wait)".into()).into());
    }
    let limit = args
        .timeout
        .filter(|s| s.is_finite() && *s != 0.0)
        .map(|s| Duration::from_secs_f64(s.abs().min(1e9)));
    let permit = match sem.acquire(limit, Some(signals.token())) {
        Ok(permit) => Some(permit),
        Err(AcquireError::TimedOut { .. }) if args.timeout.is_some_and(|s| s > 0.0) => {
            eprintln!("concur sem: no slot of {id:?} came free in time: running anyway");
            None
        }
        Err(err @ AcquireError::TimedOut { .. }) => {
            eprintln!("concur sem: {err}: giving up");
            return Ok(Outcome::Failure);
        }
        Err(AcquireError::Cancelled { .. }) => return Ok(Outcome::Code(signals.exit_status())),
        Err(err) => return Err(err.into()),
    };
    let (shell, _) = crate::runner::job_shell().map_err(UsageError)?;
    let line = args
        .command
        .iter()
        .map(|w| w.to_string_lossy())
        .collect::<Vec<_>>()
        .join(" ");
    let mut command = std::process::Command::new(&shell);
    command.arg("-c").arg(&line);
    if let Some(permit) = &permit {
        // The command inherits the locked file, so the slot is held for exactly as
        // long as it (or anything it started that kept the descriptor) runs.
        rustix::io::fcntl_setfd(permit.fd(), rustix::io::FdFlags::empty())
            .context("cannot pass the slot to the command")?;
    }
    if args.fg {
        let status = command
            .status()
            .with_context(|| format!("cannot run {}", shell.display()))?;
        drop(permit);
        return Ok(match crate::process::returncode(status) {
            0 => Outcome::Success,
            // Killed by a signal: the shell's 128 + its number.
            code if code < 0 => Outcome::Code(u8::try_from(128 - code).unwrap_or(255)),
            code => Outcome::Code(u8::try_from(code).unwrap_or(255)),
        });
    }
    // In the background, in a process group of its own so the terminal's Ctrl-C for
    // this script does not reach it, as GNU sem's background jobs.
    std::os::unix::process::CommandExt::process_group(&mut command, 0);
    command
        .spawn()
        .with_context(|| format!("cannot run {}", shell.display()))?;
    // Our copy of the slot's descriptor closes now; the command's keeps the lock.
    drop(permit);
    Ok(Outcome::Success)
}
