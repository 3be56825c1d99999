//! `concur race`.

use std::io::Write;

use anyhow::Result;
use clap::Args;

use super::Outcome;
use crate::sync::{CounterMode, race};

/// Arguments of `concur race`.
#[derive(Debug, Args)]
#[command(
    about = "Count from many threads with and without a lock, and see updates get lost (item 54)",
    after_help = "unsynchronized splits each increment into a separate load and store, as Python's\n\
                  `count += 1` does; it is safe Rust, but concurrent increments overwrite each other.\n\
                  mutex and atomic are always exact. The book's racy counter itself does not compile\n\
                  in Rust: see the concur::sync documentation."
)]
pub struct RaceArgs {
    /// Sensor threads.
    #[arg(
        long = "jobs",
        short = 'j',
        alias = "threads",
        default_value_t = 5,
        value_name = "N"
    )]
    threads: usize,

    /// Increments per thread (at most 1000000000).
    #[arg(long, default_value_t = 100_000, value_name = "N", value_parser = |t: &str| super::value::parse_count_max(t, 1_000_000_000))]
    increments: u64,

    /// Run only this counter [default: all three].
    #[arg(long, value_enum)]
    mode: Option<CounterMode>,

    /// Print one JSON object per counter instead of text.
    #[arg(long)]
    json: bool,
}

/// Runs `concur race`.
pub fn run(args: RaceArgs, out: &mut dyn Write) -> Result<Outcome> {
    super::value::ensure_threads(&format!("--jobs {}", args.threads), args.threads)?;
    let modes = match args.mode {
        Some(mode) => vec![mode],
        None => vec![
            CounterMode::Unsynchronized,
            CounterMode::Mutex,
            CounterMode::Atomic,
        ],
    };
    let labelled = modes.len() > 1;
    for mode in modes {
        let result = race(mode, args.threads, args.increments);
        if args.json {
            writeln!(out, "{}", serde_json::to_string(&result)?)?;
            continue;
        }
        let line = format!("Counter should be {}, got {}", result.expected, result.got);
        if labelled {
            let lost = match result.lost() {
                0 => "exact".to_owned(),
                n => format!("{n} increments lost"),
            };
            writeln!(
                out,
                "{:<15} {line} ({lost})",
                format!("{}:", mode_name(mode))
            )?;
        } else {
            writeln!(out, "{line}")?;
        }
    }
    Ok(Outcome::Success)
}

fn mode_name(mode: CounterMode) -> &'static str {
    match mode {
        CounterMode::Unsynchronized => "unsynchronized",
        CounterMode::Mutex => "mutex",
        CounterMode::Atomic => "atomic",
    }
}
