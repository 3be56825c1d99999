//! `concur slow-io`.

use std::io::Write;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Args;

use super::Outcome;
use super::value::parse_duration;
use crate::threads::slow_io::{self, Mode};

/// Arguments of `concur slow-io`.
#[derive(Debug, Args)]
#[command(
    about = "Make blocking system calls serially or in threads while the main thread computes (item 53)",
    after_help = "Each call is the book's slow system call: poll(2) on a socket that never becomes\n\
                  readable, with a timeout. Serially they add up; in threads they overlap, and the\n\
                  main thread keeps computing helicopter positions meanwhile."
)]
pub struct SlowIoArgs {
    /// How many calls (in threads, all at once: at most the OS's thread budget).
    #[arg(long, default_value_t = 5, value_name = "N")]
    count: usize,

    /// Run only this way [default: both].
    #[arg(long, value_enum)]
    mode: Option<Mode>,

    /// How long each call blocks.
    #[arg(long, value_parser = parse_duration, default_value = "100ms", value_name = "D")]
    timeout: Duration,

    /// Print one JSON object per mode instead of text.
    #[arg(long)]
    json: bool,
}

/// Runs `concur slow-io`.
pub fn run(args: SlowIoArgs, out: &mut dyn Write) -> Result<Outcome> {
    super::value::ensure_threads(&format!("--count {}", args.count), args.count)?;
    let modes = match args.mode {
        Some(mode) => vec![mode],
        None => vec![Mode::Serial, Mode::Threads],
    };
    if !args.json {
        writeln!(
            out,
            "{} slow system calls (poll on a socket, {} ms each):",
            args.count,
            args.timeout.as_millis()
        )?;
    }
    for mode in modes {
        let report =
            slow_io::run(mode, args.count, args.timeout).context("a slow system call failed")?;
        if args.json {
            writeln!(out, "{}", serde_json::to_string(&report)?)?;
            continue;
        }
        match mode {
            Mode::Serial => writeln!(
                out,
                "  serial:  took {:.3} seconds; the main thread was blocked throughout (the book: 0.510 s)",
                report.seconds
            )?,
            Mode::Threads => writeln!(
                out,
                "  threads: took {:.3} seconds; meanwhile the main thread computed {} helicopter positions",
                report.seconds, report.helicopter_moves
            )?,
        }
    }
    Ok(Outcome::Success)
}
