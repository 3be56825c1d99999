//! The `concur` command line: clap definitions, one file per subcommand, and the mapping
//! from results to exit codes. `main.rs` only parses a [`Cli`] and calls [`run()`].
//!
//! Conventions every subcommand follows:
//! * results go to stdout, and nothing else does; progress bars go to stderr, and only
//!   when it is a terminal;
//! * `--json` prints machine-readable output instead of tables;
//! * errors print as `concur: what failed: why` on stderr;
//! * exit status 0 is success, 1 a failure of the work itself, 2 bad arguments or input
//!   (as clap's own usage errors); a closed stdout pipe (`concur ... | head`) exits 0.

pub mod chart;
pub mod factorize;
pub mod gcd;
pub mod guess;
pub mod life;
mod output;
pub mod pipeline;
pub mod race;
pub mod run;
pub mod sem;
mod signals;
pub mod slow_io;
pub mod tail;
pub mod tour;
pub mod value;

use std::io::{self, Write};
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use thiserror::Error;

use crate::life::{GridError, LifeError, PatternError};

/// Effective Python's chapter 7, "Concurrency and Parallelism", rebuilt in Rust.
#[derive(Debug, Parser)]
#[command(name = "concur", version, about, long_about = None, propagate_version = true)]
#[command(
    after_help = "Start with `concur tour`: the whole chapter, with measured figures beside the book's claims."
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the chapter's demonstrations in order, with measured figures beside the book's claims.
    Tour(tour::TourArgs),
    /// Run a command for each input, in parallel, with GNU parallel's interface (item 52).
    Run(Box<run::RunArgs>),
    /// A counting semaphore for shell scripts, shared between processes: GNU's `sem` (item 54's lock, across processes).
    Sem(sem::SemArgs),
    /// Factorize numbers serially and with threads: no GIL here (item 53).
    Factorize(factorize::FactorizeArgs),
    /// Blocking system calls in threads while the main thread computes (item 53).
    SlowIo(slow_io::SlowIoArgs),
    /// Lost updates without a lock, exact counts with one (item 54).
    Race(race::RaceArgs),
    /// A multi-stage pipeline of threads and bounded closable queues (item 55).
    Pipeline(Box<pipeline::PipelineArgs>),
    /// The number-guessing game over TCP: serve, play, load (item 61).
    Guess(guess::GuessArgs),
    /// Follow many growing files into one merged output (items 62-63).
    Tail(Box<tail::TailArgs>),
    /// CPU-bound work serially, with threads, and with a process pool (item 64).
    Gcd(Box<gcd::GcdArgs>),
    /// Serve a process pool's tasks on stdin and stdout (started by concur itself).
    #[command(hide = true)]
    Worker(gcd::WorkerArgs),
    /// Run `concur run --remote-agent`'s jobs on this machine (started by concur itself, over SSH).
    #[command(hide = true)]
    Agent,
    /// Game of Life whose cells do slow I/O, fanned out every way the book compares (items 56-60).
    Life(Box<life::LifeArgs>),
    /// Draw a benchmark's figures (a hyperfine export) as an SVG bar chart.
    Chart(chart::ChartArgs),
}

/// How a command ended, when it did not fail outright.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Exit status 0.
    Success,
    /// Exit status 1: the command ran but some of its work failed (and said so).
    Failure,
    /// A command-specific exit status (as documented in its `--help`).
    Code(u8),
}

/// Bad arguments that clap cannot check alone (they depend on each other or on input).
#[derive(Debug, Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// `concur run` keeps 1-127 for its jobs, so its own failures (bad arguments included)
/// exit 255, as GNU parallel's do.
const RUN_OWN_FAILURE: u8 = 255;

/// Exit status for an error: 2 for bad arguments or input, 0 for a closed stdout pipe,
/// 1 for everything else.
fn exit_code(err: &anyhow::Error) -> u8 {
    for cause in err.chain() {
        if cause
            .downcast_ref::<io::Error>()
            .is_some_and(|e| e.kind() == io::ErrorKind::BrokenPipe)
        {
            return 0;
        }
        if cause.is::<UsageError>() || cause.is::<PatternError>() || cause.is::<GridError>() {
            return 2;
        }
        if matches!(
            cause.downcast_ref::<LifeError>(),
            Some(
                LifeError::WorkersNotApplicable { .. }
                    | LifeError::Grid(_)
                    | LifeError::NotEnoughMemory { .. }
            )
        ) {
            return 2;
        }
    }
    1
}

/// The `concur` binary: reads this process's arguments (GNU parallel's spellings that
/// clap cannot read rewritten for `concur run`) and runs them.
pub fn main() -> ExitCode {
    let mut args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    // Called as `parallel` or `sem` (a link to concur): GNU parallel's two commands.
    let called = args
        .first()
        .and_then(|a| std::path::Path::new(a).file_name())
        .and_then(|n| n.to_str().map(str::to_owned));
    match called.as_deref() {
        Some("parallel") => args.insert(1, "run".into()),
        Some("sem") => args.insert(1, "sem".into()),
        _ => {}
    }
    // `#!/path/to/concur run --shebang CMD` gives its words as one argument.
    if let Some(line) = args.get(1).and_then(|a| a.to_str())
        && line.starts_with("run ")
        && line.contains("--shebang")
    {
        let words: Vec<std::ffi::OsString> = line.split_whitespace().map(Into::into).collect();
        args.splice(1..2, words);
    }
    // `parallel --semaphore …` is GNU's `sem …`.
    if args.get(1).is_some_and(|a| a == "run") && asks_for_semaphore(&args[2..]) {
        let rest: Vec<_> = args.split_off(2);
        args[1] = "sem".into();
        args.extend(rest.into_iter().filter(|a| a != "--semaphore"));
    }
    if args.get(1).is_some_and(|a| a == "run") {
        let rest = args.split_off(2);
        // GNU parallel's defaults first: the profiles (-J, else ~/.parallel/config),
        // then $PARALLEL, then the command line.
        let rest = match run::with_defaults(rest) {
            Ok(rest) => rest,
            Err(err) => {
                eprintln!("concur run: {err}");
                return ExitCode::from(RUN_OWN_FAILURE);
            }
        };
        args.extend(run::gnu_spellings(rest));
    }
    run(Cli::try_parse_from(args))
}

/// Whether `--semaphore` is among the options before the command (sem's options that
/// take a value are stepped over with their value).
fn asks_for_semaphore(words: &[std::ffi::OsString]) -> bool {
    let mut words = words.iter().filter_map(|w| w.to_str());
    while let Some(word) = words.next() {
        match word {
            "--semaphore" => return true,
            "-j" | "--jobs" | "--id" | "--semaphorename" | "--st" | "--semaphoretimeout" => {
                words.next();
            }
            w if w.starts_with('-') && w != "-" => {}
            _ => return false,
        }
    }
    false
}

/// Whether this process is `concur run`/`concur sem` (or a link named `parallel` or
/// `sem`), whose own failures exit 255 as GNU parallel's do.
fn runs_gnu_command() -> bool {
    let mut args = std::env::args_os();
    let called = args.next();
    let called = called
        .as_deref()
        .map(std::path::Path::new)
        .and_then(std::path::Path::file_name);
    matches!(called.and_then(|n| n.to_str()), Some("parallel" | "sem"))
        || matches!(
            args.next().as_deref().and_then(|a| a.to_str()),
            Some("run" | "sem")
        )
}

/// Runs a command line as parsed by `Cli::try_parse` and returns the exit code.
/// Parse errors print clap's message and exit 2 (255 for `concur run`).
pub fn run(parsed: Result<Cli, clap::Error>) -> ExitCode {
    let cli = match parsed {
        Ok(cli) => cli,
        Err(err) => {
            let _ = err.print();
            return ExitCode::from(match err.exit_code() {
                0 => 0,
                _ if runs_gnu_command() => RUN_OWN_FAILURE,
                code => u8::try_from(code).unwrap_or(2),
            });
        }
    };
    let own_failure =
        matches!(cli.command, Command::Run(_) | Command::Sem(_)).then_some(RUN_OWN_FAILURE);
    // Buffered but not locked for the whole command: some commands (guess serve) also
    // print from other threads, which would wait forever on a held lock.
    let mut out = io::BufWriter::new(io::stdout());
    let result = match cli.command {
        Command::Tour(args) => tour::run(args, &mut out),
        Command::Run(args) => run::run(*args, &mut out),
        Command::Sem(args) => sem::run(args, &mut out),
        Command::Factorize(args) => factorize::run(args, &mut out),
        Command::SlowIo(args) => slow_io::run(args, &mut out),
        Command::Race(args) => race::run(args, &mut out),
        Command::Pipeline(args) => pipeline::run(*args, &mut out),
        Command::Guess(args) => guess::run(args, &mut out),
        Command::Tail(args) => tail::run(*args, &mut out),
        Command::Gcd(args) => gcd::run(*args, &mut out),
        Command::Worker(args) => gcd::worker(args),
        Command::Agent => agent(),
        Command::Chart(args) => chart::run(args, &mut out),
        Command::Life(args) => life::run(*args, &mut out),
    }
    .and_then(|outcome| match out.flush() {
        // A reader that went away is no error for a command that succeeded (exit 0,
        // as `| head` expects), and changes nothing for one that already chose its
        // status (`concur run` reports lost output as 141).
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe && outcome != Outcome::Success => {
            Ok(outcome)
        }
        flushed => flushed.map(|()| outcome).map_err(anyhow::Error::from),
    });
    match result {
        Ok(Outcome::Success) => ExitCode::SUCCESS,
        Ok(Outcome::Failure) => ExitCode::FAILURE,
        Ok(Outcome::Code(code)) => ExitCode::from(code),
        Err(err) => {
            let code = match exit_code(&err) {
                0 => 0,
                code => own_failure.unwrap_or(code),
            };
            if code != 0 {
                let _ = out.flush();
                eprintln!("concur: {err:#}");
            }
            ExitCode::from(code)
        }
    }
}

/// Runs the hidden `concur agent` on the session's stdin and stdout, unbuffered by
/// std (the agent batches its own writes).
fn agent() -> anyhow::Result<Outcome> {
    use anyhow::Context;
    use std::os::fd::AsFd;
    let input = std::fs::File::from(io::stdin().as_fd().try_clone_to_owned()?);
    let output = std::fs::File::from(io::stdout().as_fd().try_clone_to_owned()?);
    crate::remote::agent::serve(input, output).context("agent failed")?;
    Ok(Outcome::Success)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn clap_definitions_are_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn exit_codes_follow_the_convention() {
        let usage = anyhow::Error::new(UsageError("bad".into()));
        assert_eq!(exit_code(&usage), 2);
        let pipe =
            anyhow::Error::new(io::Error::from(io::ErrorKind::BrokenPipe)).context("writing");
        assert_eq!(exit_code(&pipe), 0);
        let cell = anyhow::Error::new(LifeError::Cell {
            y: 1,
            x: 2,
            source: io::Error::other("Problem with I/O"),
        });
        assert_eq!(exit_code(&cell), 1);
        assert_eq!(
            format!("{cell:#}"),
            "SimulationError at (1, 2): Problem with I/O"
        );
    }
}
