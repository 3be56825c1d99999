//! `concur pipeline`.

use std::io::Write;
use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Args;
use serde_json::json;

use super::output::progress_bar;
use super::value::{parse_duration, parse_positive};
use super::{Outcome, UsageError};
use crate::queue::simulated::{self, STAGES};
use crate::queue::{StageReport, naive, utilization_chart};
use crate::report::Provenance;
use crate::thumbnails::{self, Options as ThumbnailOptions};

const AFTER: &str = "\
Simulated mode (the default): N items through download -> resize -> upload, each stage
sleeping its --latency per item, with --jobs threads per stage and queues of
--capacity items between them. Prints `N items finished`, per-stage figures, and the
bound set by the slowest stage, ceil(items / workers) x latency.

--naive runs the book's first attempt instead: one polling worker per stage over
unbounded queues, sleeping 10 ms whenever its queue is empty; it reports the polls.

--images IN_DIR --out OUT_DIR runs the real thing: read image files, decode and resize
them to fit --max-size, and write thumbnails under the same names. Unreadable or corrupt
images are reported by path and the rest go on.

Exit status: 0 when everything was processed, 1 when some images failed, 2 for bad
arguments or an unreadable input directory.";

/// Arguments of `concur pipeline`.
#[derive(Debug, Args)]
#[command(
    about = "Run a multi-stage pipeline of worker threads joined by bounded closable queues (item 55)",
    after_help = AFTER
)]
pub struct PipelineArgs {
    /// Items to process (simulated mode; at most 10000000).
    #[arg(long, default_value_t = 1000, value_name = "N", value_parser = |t: &str| super::value::parse_count_max(t, 10_000_000).map(|n| n as usize))]
    items: usize,

    /// Workers per stage, as three numbers (or one for every stage).
    #[arg(long = "jobs", short = 'j', alias = "workers", value_delimiter = ',', value_parser = parse_positive, default_value = "3,4,5", value_name = "N,N,N")]
    workers: Vec<NonZeroUsize>,

    /// Capacity of each queue between stages (1 to 1048576).
    #[arg(long, default_value_t = 10, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1_048_576))]
    capacity: u32,

    /// Simulated work per item in each stage, as three durations (or one for all).
    #[arg(long, value_delimiter = ',', value_parser = parse_duration, default_value = "10ms,10ms,10ms", value_name = "D,D,D")]
    latency: Vec<Duration>,

    /// Run the book's busy-waiting pipeline instead, and count its polls.
    #[arg(long, conflicts_with = "images")]
    naive: bool,

    /// Make thumbnails of the images in this directory (real mode).
    #[arg(long, value_name = "IN_DIR", requires = "out")]
    images: Option<PathBuf>,

    /// Where to write the thumbnails.
    #[arg(long, value_name = "OUT_DIR", requires = "images")]
    out: Option<PathBuf>,

    /// Thumbnails fit in this many pixels square.
    #[arg(long, default_value_t = 256, value_name = "PX", value_parser = clap::value_parser!(u32).range(1..))]
    max_size: u32,

    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,

    /// Also draw each stage's utilisation (its workers' busy share) as an SVG chart in
    /// FILE.
    #[arg(long, value_name = "FILE", conflicts_with = "naive")]
    svg: Option<PathBuf>,
}

/// Writes the utilisation chart of a run to `--svg`, if asked.
fn write_chart(
    args: &PipelineArgs,
    stages: &[StageReport],
    elapsed: Duration,
    what: &str,
) -> Result<()> {
    if let Some(path) = &args.svg {
        let chart = utilization_chart(
            stages,
            elapsed,
            "concur pipeline: how busy each stage's workers were",
            Provenance::here(what, super::output::typed_command()),
        );
        super::output::write_svg(path, chart)?;
    }
    Ok(())
}

/// Three values from a list of one (for every stage) or three.
fn per_stage<T: Copy>(values: &[T], what: &str) -> Result<[T; 3]> {
    match values {
        [one] => Ok([*one; 3]),
        [a, b, c] => Ok([*a, *b, *c]),
        _ => Err(UsageError(format!(
            "--{what} takes one value per stage ({}) or one for all, not {}",
            STAGES.join(","),
            values.len()
        ))
        .into()),
    }
}

/// Runs `concur pipeline`.
pub fn run(args: PipelineArgs, out: &mut dyn Write) -> Result<Outcome> {
    let workers = per_stage(&args.workers, "jobs")?;
    let capacity = args.capacity as usize;
    if let (Some(input), Some(output)) = (&args.images, &args.out) {
        return images(&args, input, output, workers, capacity, out);
    }
    let latencies = per_stage(&args.latency, "latency")?;
    if args.naive {
        let report = naive::run(args.items, &latencies);
        if args.json {
            writeln!(out, "{}", serde_json::to_string(&report)?)?;
        } else {
            writeln!(
                out,
                "Processed {} items after polling {} times ({} found the queue empty); \
                 the main thread checked the done queue {} times; took {:.3} s",
                report.processed,
                report.polled,
                report.empty_polls,
                report.main_checks,
                report.seconds
            )?;
        }
        return Ok(Outcome::Success);
    }

    let options = simulated::Options {
        items: args.items,
        workers,
        latencies,
        capacity,
    };
    let bar = progress_bar(args.items as u64, "items");
    let tick = bar.clone();
    let report =
        simulated::run(&options, Arc::new(move || tick.inc(1))).context("the pipeline failed")?;
    bar.finish_and_clear();
    let bound = options.bound().as_secs_f64();
    let seconds = report.elapsed.as_secs_f64();
    let what = format!(
        "{} simulated items through download -> resize -> upload, {} ms / {} ms / {} ms per item, queues of {capacity}",
        args.items,
        latencies[0].as_millis(),
        latencies[1].as_millis(),
        latencies[2].as_millis()
    );
    write_chart(&args, &report.stages, report.elapsed, &what)?;
    if args.json {
        let stages: Vec<_> = report
            .stages
            .iter()
            .zip(&latencies)
            .map(|(s, latency)| stage_json(s, report.elapsed, capacity, Some(*latency)))
            .collect();
        let summary = json!({
            "items": args.items,
            "finished": report.outputs.len(),
            "seconds": seconds,
            "bound_seconds": bound,
            "vs_bound": seconds / bound.max(f64::MIN_POSITIVE),
            "stages": stages,
        });
        writeln!(out, "{summary}")?;
        return Ok(Outcome::Success);
    }
    writeln!(out, "{} items finished", report.outputs.len())?;
    write_stages(out, &report.stages, report.elapsed, capacity)?;
    writeln!(
        out,
        "total {seconds:.3} s; the slowest stage bounds it at {bound:.3} s ({:.3}x)",
        seconds / bound.max(f64::MIN_POSITIVE)
    )?;
    Ok(Outcome::Success)
}

fn stage_json(
    s: &StageReport,
    elapsed: Duration,
    capacity: usize,
    latency: Option<Duration>,
) -> serde_json::Value {
    json!({
        "name": s.name,
        "workers": s.workers,
        "items": s.items,
        "latency_ms": latency.map(|l| l.as_secs_f64() * 1000.0),
        "busy_seconds": s.busy_seconds,
        "utilization": s.utilization(elapsed),
        "peak_queue": s.peak_queue,
        "capacity": capacity,
    })
}

fn write_stages(
    out: &mut dyn Write,
    stages: &[StageReport],
    elapsed: Duration,
    capacity: usize,
) -> std::io::Result<()> {
    writeln!(
        out,
        "{:<10} {:>7} {:>7} {:>8} {:>11} {:>11}",
        "stage", "workers", "items", "busy s", "utilization", "peak queue"
    )?;
    for s in stages {
        writeln!(
            out,
            "{:<10} {:>7} {:>7} {:>8.3} {:>10.0}% {:>11}",
            s.name,
            s.workers,
            s.items,
            s.busy_seconds,
            100.0 * s.utilization(elapsed),
            format!("{}/{capacity}", s.peak_queue)
        )?;
    }
    Ok(())
}

fn images(
    args: &PipelineArgs,
    input: &std::path::Path,
    output: &std::path::Path,
    workers: [NonZeroUsize; 3],
    capacity: usize,
    out: &mut dyn Write,
) -> Result<Outcome> {
    if !input.is_dir() {
        return Err(UsageError(format!("--images {}: not a directory", input.display())).into());
    }
    let options = ThumbnailOptions {
        input: input.to_owned(),
        output: output.to_owned(),
        max_size: args.max_size,
        workers,
        capacity,
    };
    let bar = progress_bar(0, "images");
    let tick = bar.clone();
    let report = thumbnails::make_thumbnails(&options, Arc::new(move || tick.inc(1)));
    bar.finish_and_clear();
    let report = report.map_err(|err| match err {
        thumbnails::ThumbnailError::ReadDir { .. } => {
            anyhow::Error::new(UsageError(format!("{err:#}")))
        }
        other => anyhow::Error::new(other),
    })?;
    let failed = !report.failed.is_empty();
    let elapsed = Duration::from_secs_f64(report.seconds);
    let what = format!(
        "{} images from {} made into thumbnails of at most {} px",
        report.written.len() + report.failed.len(),
        input.display(),
        args.max_size
    );
    write_chart(args, &report.stages, elapsed, &what)?;
    if args.json {
        writeln!(out, "{}", serde_json::to_string(&report)?)?;
    } else {
        writeln!(
            out,
            "{} thumbnails written to {} (at most {} px), {} failed, {} other files skipped, in {:.3} s",
            report.written.len(),
            output.display(),
            args.max_size,
            report.failed.len(),
            report.skipped,
            report.seconds
        )?;
        write_stages(out, &report.stages, elapsed, capacity)?;
    }
    for failure in &report.failed {
        eprintln!("concur: {}: {}", failure.path.display(), failure.reason);
    }
    Ok(if failed {
        Outcome::Failure
    } else {
        Outcome::Success
    })
}
