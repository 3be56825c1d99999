//! `concur chart`: a benchmark's figures drawn as a chart, for the benchmark scripts.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;

use super::{Outcome, UsageError};
use crate::report::{self, Provenance};

/// Arguments of `concur chart`.
#[derive(Debug, Args)]
#[command(after_help = "\
Example (what benches/run_vs_xargs.sh --svg does):
  hyperfine --export-json run.json ...
  concur chart --hyperfine run.json --per 20000 --unit jobs/s \\
      --title 'concur run against xargs and GNU parallel' \\
      --what '20000 echo jobs, 2 at a time' --command 'benches/run_vs_xargs.sh' --svg run.svg

Exit status: 0 written; 2 bad arguments or an unreadable export; 1 the chart could not
be written.")]
pub struct ChartArgs {
    /// A hyperfine --export-json file: one bar per benchmark (median, min-max).
    #[arg(long, value_name = "FILE")]
    hyperfine: PathBuf,

    /// Draw N / seconds (a throughput) instead of seconds.
    #[arg(long, value_name = "N")]
    per: Option<f64>,

    /// The throughput's unit, with --per.
    #[arg(long, default_value = "per second")]
    unit: String,

    /// The chart's title.
    #[arg(long)]
    title: String,

    /// What was measured, printed under the chart.
    #[arg(long)]
    what: String,

    /// The command that measured it, printed under the chart.
    #[arg(long)]
    command: String,

    /// Where to write the SVG.
    #[arg(long, value_name = "FILE")]
    svg: PathBuf,
}

/// Runs `concur chart`.
pub fn run(args: ChartArgs, _out: &mut dyn Write) -> Result<Outcome> {
    let json = crate::limits::read_bounded(&args.hyperfine, 64 << 20, "a hyperfine export")
        .map_err(|e| UsageError(format!("cannot read {}: {e}", args.hyperfine.display())))?;
    let json = String::from_utf8(json).map_err(|e| {
        UsageError(format!(
            "{} is not UTF-8 text: {e}",
            args.hyperfine.display()
        ))
    })?;
    if args.per.is_some_and(|n| !(n.is_finite() && n > 0.0)) {
        return Err(UsageError("--per must be a number above 0".into()).into());
    }
    let chart = report::hyperfine_chart(
        &json,
        &args.title,
        args.per.map(|n| (n, args.unit.as_str())),
        Provenance::here(args.what, args.command),
    )
    .map_err(|e| UsageError(format!("{}: {e}", args.hyperfine.display())))?;
    super::output::write_svg(&args.svg, chart)
        .with_context(|| format!("cannot write {}", args.svg.display()))?;
    Ok(Outcome::Success)
}
