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

    /// The chart's title [default: the export's file name].
    #[arg(long)]
    title: Option<String>,

    /// What was measured, printed under the chart [default: from the export: how many
    /// commands, and runs of each].
    #[arg(long)]
    what: Option<String>,

    /// The command that measured it, printed under the chart [default: hyperfine, with
    /// the export's name].
    #[arg(long)]
    command: Option<String>,

    /// Where to write the SVG [default: the export's path with .svg for .json].
    #[arg(long, value_name = "FILE")]
    svg: Option<PathBuf>,
}

/// What an export holds, for the default caption: `3 commands, 10 runs each`.
fn what_was_measured(json: &str) -> Option<String> {
    let value: serde_json::Value = serde_json::from_str(json).ok()?;
    let results = value.get("results")?.as_array()?;
    let runs: Vec<usize> = results
        .iter()
        .filter_map(|r| r.get("times")?.as_array().map(Vec::len))
        .collect();
    let runs = match (runs.iter().min(), runs.iter().max()) {
        (Some(lo), Some(hi)) if lo == hi => format!("{lo} runs each"),
        (Some(lo), Some(hi)) => format!("{lo} to {hi} runs each"),
        _ => "runs not recorded".to_owned(),
    };
    Some(format!(
        "{} command{}, {runs} (hyperfine; median, min-max)",
        results.len(),
        if results.len() == 1 { "" } else { "s" }
    ))
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
    let name = args
        .hyperfine
        .file_name()
        .map_or_else(|| "hyperfine".into(), |n| n.to_string_lossy().into_owned());
    let title = args.title.unwrap_or_else(|| name.clone());
    let what = args
        .what
        .or_else(|| what_was_measured(&json))
        .unwrap_or_else(|| "hyperfine results".into());
    let command = args
        .command
        .unwrap_or_else(|| format!("hyperfine --export-json {name}"));
    let svg = args
        .svg
        .unwrap_or_else(|| args.hyperfine.with_extension("svg"));
    if svg == args.hyperfine {
        return Err(UsageError(format!(
            "--svg would overwrite the export {}: name the chart's file",
            svg.display()
        ))
        .into());
    }
    let chart = report::hyperfine_chart(
        &json,
        &title,
        args.per.map(|n| (n, args.unit.as_str())),
        Provenance::here(what, command),
    )
    .map_err(|e| UsageError(format!("{}: {e}", args.hyperfine.display())))?;
    super::output::write_svg(&svg, chart)
        .with_context(|| format!("cannot write {}", svg.display()))?;
    Ok(Outcome::Success)
}
