//! `concur factorize`.

use std::io::Write;

use anyhow::Result;
use clap::Args;
use serde_json::json;

use super::{Outcome, UsageError};
use crate::threads::factorize::{self, BOOK_NUMBERS, Mode, PYTHON_SECONDS};

/// Arguments of `concur factorize`.
#[derive(Debug, Args)]
#[command(
    about = "Factorize numbers with the book's naive loop, serially and with a thread per number (item 53)",
    after_help = "The book's point: in CPython, threads make this CPU-bound work slower (the GIL).\n\
                  Rust threads run on every core. Both times are printed, with the seeds' Python\n\
                  figures (0.756 s serial, 1.16 s threaded) for contrast."
)]
pub struct FactorizeArgs {
    /// Run only this way [default: both].
    #[arg(long, value_enum)]
    mode: Option<Mode>,

    /// Time this many runs of each mode and report the median (at most 1000).
    #[arg(long, default_value_t = 3, value_name = "N", value_parser = |t: &str| super::value::parse_count_max(t, 1000).map(|n| n as usize))]
    repeat: usize,

    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,

    /// Numbers to factorize [default: the book's 2139079 1214759 1516637 1852285].
    #[arg(value_name = "NUMBERS")]
    numbers: Vec<u64>,
}

/// Runs `concur factorize`.
pub fn run(args: FactorizeArgs, out: &mut dyn Write) -> Result<Outcome> {
    if args.numbers.contains(&0) {
        return Err(
            UsageError("0 has no factors to find: give numbers of 1 or more".into()).into(),
        );
    }
    // A thread per number, all at once.
    super::value::ensure_threads(
        &format!("{} numbers, a thread each", args.numbers.len()),
        args.numbers.len(),
    )?;
    let numbers = if args.numbers.is_empty() {
        BOOK_NUMBERS.to_vec()
    } else {
        args.numbers
    };
    let modes = match args.mode {
        Some(mode) => vec![mode],
        None => vec![Mode::Serial, Mode::Threads],
    };
    let runs: Vec<_> = modes
        .iter()
        .map(|&mode| factorize::median_run(mode, &numbers, args.repeat))
        .collect();
    let speedup = match runs.as_slice() {
        [serial, threads] => Some(serial.seconds / threads.seconds),
        _ => None,
    };
    if args.json {
        let report = json!({
            "numbers": numbers,
            "repeat": args.repeat.max(1),
            "runs": runs,
            "speedup": speedup,
            "python_seconds": {"serial": PYTHON_SECONDS.0, "threads": PYTHON_SECONDS.1},
        });
        writeln!(out, "{report}")?;
        return Ok(Outcome::Success);
    }
    let list: Vec<String> = numbers.iter().map(u64::to_string).collect();
    writeln!(
        out,
        "Factorizing {} with the naive loop (median of {}):",
        list.join(" "),
        args.repeat.max(1)
    )?;
    for run in &runs {
        let label = match run.mode {
            Mode::Serial => "serial: ",
            Mode::Threads => "threads:",
        };
        writeln!(out, "  {label} took {:.3} seconds", run.seconds)?;
    }
    if let Some(speedup) = speedup {
        writeln!(
            out,
            "  threads are {speedup:.2}x the speed of serial; in the book's Python they were {:.2}x ({} s vs {} s, the GIL)",
            PYTHON_SECONDS.0 / PYTHON_SECONDS.1,
            PYTHON_SECONDS.0,
            PYTHON_SECONDS.1
        )?;
    }
    Ok(Outcome::Success)
}
