//! `concur tour`.

use std::io::Write;

use anyhow::Result;
use clap::Args;

use super::Outcome;
use crate::tour::{self, TourOptions};

/// Arguments of `concur tour`.
#[derive(Debug, Args)]
pub struct TourArgs {
    /// Shrink the simulated latencies and skip the large runs: the whole tour in seconds.
    #[arg(long)]
    quick: bool,
}

/// Runs `concur tour`.
pub fn run(args: TourArgs, out: &mut dyn Write) -> Result<Outcome> {
    tour::run(out, TourOptions { quick: args.quick })?;
    Ok(Outcome::Success)
}
