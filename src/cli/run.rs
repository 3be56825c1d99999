//! `concur run`: the parallel job runner.

use std::io::{self, Write};
use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Result;
use clap::Args;
use indicatif::ProgressBar;

use super::output::progress_bar;
use super::signals::SignalCancel;
use super::value::{parse_duration, parse_positive};
use super::{Outcome, UsageError};
use crate::process::Spool;
use crate::process::runner::{self, Reporter, RunOptions, Streams, Template};

const RUN_ABOUT: &str =
    "Run a command once per input line, in parallel, like xargs -P or GNU parallel (item 52)";

const RUN_AFTER: &str = "\
Each line of standard input is one job. Every {} in CMD is replaced by the line; with no
{}, the line is appended as the last argument. With --shell, each line is a shell
command (or, given CMD, {} in the CMD script is replaced by the shell-quoted line).

Each job runs in its own process group. Its stdout and stderr are printed whole when it
finishes, never interleaved with another job's (with --keep-order: in input order, as
soon as every earlier job is done). A timeout, Ctrl-C or SIGTERM stops a job's whole
group: SIGTERM, then SIGKILL after --grace.

Exit status:
  0       every job succeeded
  1-100   that many jobs failed (capped at 100)
  124     a job timed out
  127     a command was not found
  130/143 interrupted by Ctrl-C / SIGTERM (running jobs were stopped)
  255     concur run itself failed: bad arguments, unreadable input, unwritable joblog
When several apply, the first in this order wins: 130/143, 127, 124, the count.

Examples:
  seq 1 10 | concur run -j 4 -- sh -c 'sleep 1; echo {}'
  ls *.log | concur run --keep-order --joblog run.log -- gzip -k {}
  printf 'make a\\nmake b\\n' | concur run --shell --timeout 10m --halt-on-error";

/// Arguments of `concur run`.
#[derive(Debug, Args)]
#[command(about = RUN_ABOUT, after_help = RUN_AFTER)]
pub struct RunArgs {
    /// Jobs to run at once [default: the number of cores].
    #[arg(short, long, value_parser = parse_positive, value_name = "N")]
    jobs: Option<NonZeroUsize>,

    /// Stop any job running longer than this, e.g. 30s.
    #[arg(long, value_parser = parse_duration, value_name = "D")]
    timeout: Option<Duration>,

    /// Wait this long after SIGTERM before SIGKILL when stopping a job.
    #[arg(long, value_parser = parse_duration, value_name = "D", default_value = "2s")]
    grace: Duration,

    /// Print outputs in input order (still streaming, with bounded memory).
    #[arg(short, long)]
    keep_order: bool,

    /// Start no new job after the first failure; wait for the running ones.
    #[arg(long)]
    halt_on_error: bool,

    /// Run a failed job up to N more times; only the last attempt's output is printed.
    #[arg(long, default_value_t = 0, value_name = "N")]
    retries: u32,

    /// Write GNU parallel's joblog (Seq, Host, Starttime, JobRuntime, Send, Receive,
    /// Exitval, Signal, Command) to FILE.
    #[arg(long, value_name = "FILE")]
    joblog: Option<PathBuf>,

    /// Run through sh -c: each input line is a shell command.
    #[arg(long)]
    shell: bool,

    /// The command and its arguments; {} stands for the input line.
    #[arg(trailing_var_arg = true, value_name = "CMD")]
    command: Vec<String>,
}

/// Prints job output with the progress bar out of the way. Stderr is locked per write,
/// never for the whole run: the bar's ticker thread draws to stderr too.
struct BarReporter<'a> {
    streams: Streams<&'a mut dyn Write, io::Stderr>,
    bar: ProgressBar,
}

impl Reporter for BarReporter<'_> {
    fn job_output(&mut self, stdout: &mut Spool, stderr: &mut Spool) -> io::Result<()> {
        let streams = &mut self.streams;
        self.bar.suspend(|| streams.job_output(stdout, stderr))
    }

    fn note(&mut self, message: &str) -> io::Result<()> {
        let streams = &mut self.streams;
        self.bar.suspend(|| streams.note(message))
    }

    fn progress(&mut self, done: usize, _started: usize, total: Option<usize>) {
        if let Some(total) = total {
            self.bar.set_length(total as u64);
        }
        self.bar.set_position(done as u64);
    }
}

/// Runs `concur run`.
pub fn run(args: RunArgs, out: &mut dyn Write) -> Result<Outcome> {
    let template =
        Template::new(args.command, args.shell).map_err(|e| UsageError(e.to_string()))?;
    let mut options = RunOptions::new(template);
    if let Some(jobs) = args.jobs {
        options.jobs = jobs;
    }
    options.timeout = args.timeout;
    options.grace = args.grace;
    options.keep_order = args.keep_order;
    options.halt_on_error = args.halt_on_error;
    options.retries = args.retries;
    options.joblog = args.joblog;

    let signals = SignalCancel::install("run-signals")?;

    let bar = progress_bar(0, "jobs");
    let mut reporter = BarReporter {
        streams: Streams {
            out,
            err: io::stderr(),
        },
        bar: bar.clone(),
    };
    let input = Box::new(io::BufReader::new(io::stdin()));
    let result = runner::run(&options, input, &mut reporter, signals.token());
    bar.finish_and_clear();
    drop(signals);

    let summary = result?;
    if summary.failed > 0 && summary.interrupted_by.is_none() {
        let halted = if summary.halted {
            "; stopped starting jobs (--halt-on-error)"
        } else {
            ""
        };
        reporter.note(&format!(
            "{} of {} jobs failed{halted}",
            summary.failed, summary.jobs
        ))?;
    }
    Ok(Outcome::Code(summary.exit_code()))
}
