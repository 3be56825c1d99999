//! `concur gcd`, `concur gcd bench`, and the hidden `concur worker`.

use std::io::Write;
use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use serde_json::json;

use super::output::{progress_bar, seconds};
use super::signals::SignalCancel;
use super::value::{off_if_zero, parse_duration, parse_positive, parse_seconds};
use super::{Outcome, UsageError};
use crate::parallel::bench::{self, BenchOptions};
use crate::parallel::gcd::{self, BOOK_PAIRS};
use crate::parallel::pool::{self, PoolOptions, RemoteWorkers, WorkerFaults};
use crate::parallel::{self, Mode};
use crate::remote::{Hosts, SshLogin, Workdir};
use crate::sink::Sink;

const AFTER: &str = "\
The work is the book's deliberately slow gcd: count down from min(a, b) until both
numbers divide. It is a benchmark kernel for CPU-bound work, not a gcd library.

Modes: serial (one thread); threads (a rayon pool of -j threads: Rust threads run on
every core); processes (a pool of -j worker processes, each `concur worker`, with tasks
and results sent as length-prefixed postcard frames over their stdin and stdout, in
chunks of --chunk). A task whose worker dies fails alone and is reported; the worker is
replaced and the other tasks complete. A worker that dies before taking a request costs
no task. --task-timeout kills a worker whose task runs too long (that task fails); a
task running past --warn-after is reported on stderr, so a hang is never silent.

Pairs file: one pair per line, `a b`, `a, b` or `(a, b)`; `#` starts a comment.
--hosts starts the pool's workers on other machines: `ssh HOST concur worker`, over one
master connection per host, speaking the same frames over the SSH channel. A host whose
connection drops mid-chunk costs no task: the chunk goes back to the queue, the host is
tried again after a back-off (1 s, doubling), and the others carry on. Ctrl-C, SIGTERM
and --task-timeout stop a remote worker even mid-task: it ends when its input does.

Exit status: 0 done; 1 some tasks failed; 2 bad arguments or pairs file; 130/143
interrupted by Ctrl-C/SIGTERM (every worker is stopped and reaped first); 255 no --hosts
machine could be reached, or every one was lost.";

/// Arguments of `concur gcd`.
#[derive(Debug, Args)]
#[command(
    about = "CPU-bound work serially, with threads, and with a real process pool (item 64)",
    after_help = AFTER,
    args_conflicts_with_subcommands = true
)]
pub struct GcdArgs {
    #[command(subcommand)]
    command: Option<GcdCommand>,

    /// How to run the work [default: threads; processes with --hosts].
    #[arg(long, value_enum)]
    mode: Option<Mode>,

    /// Run the pool's workers on these machines over SSH: [N/][user@]host[:port], or
    /// : for this one (comma-separated, or repeated). N/ is the workers there;
    /// without it, the machine's core count.
    #[arg(long = "hosts", value_name = "SPEC")]
    hosts: Vec<String>,

    /// The ssh command and its options, for --hosts (e.g. "ssh -i key").
    #[arg(long, value_name = "CMD", default_value = "ssh")]
    ssh: String,

    /// The concur executable on the --hosts machines.
    #[arg(long, value_name = "PATH", default_value = "concur")]
    remote_concur: String,

    /// Threads or worker processes [default: the number of cores].
    #[arg(short, long, value_parser = parse_positive, value_name = "N")]
    jobs: Option<NonZeroUsize>,

    /// Read the pairs from FILE [default: the book's ten pairs].
    #[arg(long, value_name = "FILE")]
    pairs: Option<PathBuf>,

    /// Tasks per request to a worker process [default: about four requests per worker].
    #[arg(long, value_parser = parse_positive, value_name = "N")]
    chunk: Option<NonZeroUsize>,

    /// Repeat the pairs K times, for runs long enough to time.
    #[arg(long, value_parser = parse_positive, default_value = "1", value_name = "K")]
    scale: NonZeroUsize,

    /// Kill a worker whose task runs longer than D; the task fails, naming the timeout,
    /// and a new worker takes over [default: no limit; 0 also means none].
    #[arg(long, value_parser = parse_duration, value_name = "D")]
    task_timeout: Option<Duration>,

    /// Report on stderr, once, a task still running after D (0: never).
    #[arg(long, value_parser = parse_duration, default_value = "60s", value_name = "D")]
    warn_after: Duration,

    /// Print one JSON object (mode, workers, results, seconds) instead of text.
    #[arg(long)]
    json: bool,

    /// Fault injection for tests: workers abort on the task with this index.
    #[arg(long, hide = true, value_name = "INDEX")]
    fault_abort_on: Option<u64>,

    /// Fault injection for tests: workers hang (never answer) on the task with this
    /// index, as a task stuck on a lock or a dead disk would.
    #[arg(long, hide = true, value_name = "INDEX")]
    fault_hang_on: Option<u64>,

    /// Fault injection for tests: one worker (the first to create FILE) exits when sent
    /// its second request, as if killed while idle.
    #[arg(long, hide = true, value_name = "FILE")]
    fault_idle_death: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
enum GcdCommand {
    /// Time serial, threads and processes, the pool's per-task cost, and CPython.
    Bench(BenchArgs),
}

#[derive(Debug, Args)]
struct BenchArgs {
    /// Serial work to size the runs for, in seconds.
    #[arg(long, default_value_t = 2.0, value_parser = parse_seconds, value_name = "S")]
    target_seconds: f64,

    /// Also time the book's gcd in this Python interpreter, on the ten pairs.
    #[arg(long, value_name = "PYTHON")]
    python: Option<PathBuf>,

    /// Also draw the figures as a chart into FILE (SVG): grouped bars, concur beside
    /// CPython (with --python), the speed-up on each bar.
    #[arg(long, value_name = "FILE")]
    svg: Option<PathBuf>,

    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

/// Arguments of the hidden `concur worker` (started by process pools).
#[derive(Debug, Args)]
pub struct WorkerArgs {
    /// The registered task to serve.
    #[arg(long)]
    task: String,

    /// Abort on the task with this index (fault injection).
    #[arg(long, value_name = "INDEX")]
    abort_on_item: Option<u64>,

    /// Hang on the task with this index (fault injection).
    #[arg(long, value_name = "INDEX")]
    hang_on_item: Option<u64>,

    /// Exit when sent a second request, if FILE can be created (fault injection).
    #[arg(long, value_name = "FILE")]
    idle_death_marker: Option<PathBuf>,
}

/// Runs the hidden `concur worker`.
pub fn worker(args: WorkerArgs) -> Result<Outcome> {
    let faults = WorkerFaults {
        abort_on: args.abort_on_item,
        hang_on: args.hang_on_item,
        idle_death_marker: args.idle_death_marker,
    };
    pool::serve_named(&args.task, faults).context("worker failed")?;
    Ok(Outcome::Success)
}

/// The pool for `concur gcd`: workers are this executable; reports go to stderr.
fn pool_options(jobs: Option<NonZeroUsize>) -> Result<PoolOptions> {
    let program =
        std::env::current_exe().context("cannot find the concur executable for workers")?;
    Ok(PoolOptions {
        log: Sink::new(|line| eprintln!("concur: {line}")),
        ..PoolOptions::new(jobs.unwrap_or_else(parallel::default_workers), program)
    })
}

/// Runs `concur gcd`.
pub fn run(args: GcdArgs, out: &mut dyn Write) -> Result<Outcome> {
    if let Some(GcdCommand::Bench(bench_args)) = args.command {
        return bench(bench_args, out);
    }
    let base = match &args.pairs {
        Some(path) => gcd::read_pairs(path).map_err(|e| UsageError(crate::error_chain(&e)))?,
        None => BOOK_PAIRS.to_vec(),
    };
    let pairs = parallel::repeat(&base, args.scale.get()).ok_or_else(|| {
        UsageError(format!(
            "{} pairs x --scale {} is more than {} tasks",
            base.len(),
            args.scale,
            parallel::MAX_TASKS
        ))
    })?;
    let mut options = pool_options(args.jobs)?;
    let mode = match (args.mode, args.hosts.is_empty()) {
        (mode, true) => mode.unwrap_or(Mode::Threads),
        (None | Some(Mode::Processes), false) => Mode::Processes,
        (Some(_), false) => {
            return Err(
                UsageError("--hosts runs a process pool: use --mode processes".into()).into(),
            );
        }
    };
    // From here on, Ctrl-C stops the run cleanly: connecting to hosts included.
    let signals = SignalCancel::install("gcd-signals")?;
    if !args.hosts.is_empty() {
        if args.jobs.is_some() {
            return Err(UsageError(
                "with --hosts, the workers per host are N/ in each SPEC, not -j".into(),
            )
            .into());
        }
        let mut logins = Vec::new();
        for spec in args
            .hosts
            .iter()
            .flat_map(|s| s.split(','))
            .filter(|s| !s.trim().is_empty())
        {
            logins.push(spec.parse::<SshLogin>().map_err(UsageError)?);
        }
        let command = args.ssh.split_whitespace().map(String::from).collect();
        let hosts = match Hosts::connect(
            logins,
            command,
            None,
            Workdir::RunDir,
            None,
            &mut |note| eprintln!("concur: {note}"),
            Some(signals.token()),
        ) {
            Ok(hosts) => Arc::new(hosts),
            Err(_) if signals.token().is_cancelled() => {
                return Ok(Outcome::Code(signals.exit_status()));
            }
            Err(err) => {
                eprintln!("concur: {err}");
                return Ok(Outcome::Code(255));
            }
        };
        options.workers = NonZeroUsize::new(hosts.slots()).unwrap_or(NonZeroUsize::MIN);
        options.remote = Some(RemoteWorkers {
            hosts,
            program: args.remote_concur.clone(),
        });
    }
    options.chunk = args.chunk;
    options.task_timeout = args.task_timeout.and_then(off_if_zero);
    options.warn_after = off_if_zero(args.warn_after);
    if let Some(index) = args.fault_abort_on {
        options
            .worker_args
            .extend(["--abort-on-item".to_owned(), index.to_string()]);
    }
    if let Some(index) = args.fault_hang_on {
        options
            .worker_args
            .extend(["--hang-on-item".to_owned(), index.to_string()]);
    }
    if let Some(marker) = &args.fault_idle_death {
        options.worker_args.extend([
            "--idle-death-marker".to_owned(),
            marker.display().to_string(),
        ]);
    }
    let result = parallel::run(mode, &pairs, &options, signals.token());
    let run = match result {
        Err(pool::PoolError::Cancelled) => {
            // Every worker was stopped and reaped; exit as the signal asks.
            return Ok(Outcome::Code(signals.exit_status()));
        }
        // A -j the machine cannot give is a bad argument.
        Err(err @ pool::PoolError::TooManyWorkers { .. }) => {
            return Err(UsageError(format!("-j {}: {err}", options.workers)).into());
        }
        other => other?,
    };
    if args.json {
        let mut summary = json!({
            "mode": run.mode,
            "workers": run.workers,
            "results": run.results,
            "seconds": run.seconds,
            "tasks": pairs.len(),
        });
        if run.mode == Mode::Processes {
            summary["chunk"] = json!(run.chunk);
            summary["respawns"] = json!(run.respawns);
            summary["failures"] = json!(run.failures);
        }
        writeln!(out, "{summary}")?;
    } else {
        for (&(a, b), result) in pairs.iter().zip(&run.results) {
            match result {
                Some(gcd) => writeln!(out, "gcd({a}, {b}) = {gcd}")?,
                None => writeln!(out, "gcd({a}, {b}) failed")?,
            }
        }
        let how = match run.mode {
            Mode::Serial => "serially".to_owned(),
            Mode::Threads => format!("on {} threads", run.workers),
            Mode::Processes => format!(
                "on {} worker processes, {} tasks per request",
                run.workers,
                run.chunk.unwrap_or(1)
            ),
        };
        writeln!(out, "{} pairs {how} in {:.3} s", pairs.len(), run.seconds)?;
    }
    for failure in &run.failures {
        eprintln!("concur: {failure}");
    }
    if run.respawns > 0 {
        eprintln!("concur: {} worker(s) replaced after dying", run.respawns);
    }
    // Every host was lost: 255, as `concur run -S` exits then.
    if let Some(errors) = options.remote.as_ref().and_then(|r| r.hosts.all_down()) {
        eprintln!("concur: no host is left: {errors}");
        return Ok(Outcome::Code(255));
    }
    Ok(if run.failures.is_empty() {
        Outcome::Success
    } else {
        Outcome::Failure
    })
}

fn bench(args: BenchArgs, out: &mut dyn Write) -> Result<Outcome> {
    let signals = SignalCancel::install("gcd-signals")?;
    let pool = pool_options(None)?;
    let options = BenchOptions {
        target_seconds: args.target_seconds,
        repeats: 3,
        python: args.python,
    };
    let steps = if options.python.is_some() { 6 } else { 5 };
    let bar = progress_bar(steps, "steps");
    let mut step = |what: &str| {
        if !bar.message().is_empty() {
            bar.inc(1);
        }
        bar.set_message(what.to_owned());
    };
    let result = bench::run_bench(&options, &pool, signals.token(), &mut step);
    bar.finish_and_clear();
    let report = match result {
        Err(bench::BenchError::Run {
            source: pool::PoolError::Cancelled,
            ..
        }) => return Ok(Outcome::Code(signals.exit_status())),
        other => other?,
    };
    if let Some(error) = &report.python_error {
        eprintln!("concur: no Python baseline: {error}");
    }
    if let Some(path) = &args.svg {
        super::output::write_svg(path, report.chart(&super::output::typed_command()))?;
    }
    if args.json {
        writeln!(out, "{}", serde_json::to_string(&report)?)?;
        return Ok(Outcome::Success);
    }
    writeln!(
        out,
        "The book's 10 pairs x {} = {} tasks, {} workers, median of {}:",
        report.scale, report.tasks, report.workers, options.repeats
    )?;
    writeln!(out, "  serial     {:>9}", seconds(report.serial_seconds))?;
    writeln!(
        out,
        "  threads    {:>9}   {:.2}x serial",
        seconds(report.threads_seconds),
        report.threads_speedup
    )?;
    writeln!(
        out,
        "  processes  {:>9}   {:.2}x serial",
        seconds(report.processes_seconds),
        report.processes_speedup
    )?;
    writeln!(
        out,
        "Process pool cost per task (trivial tasks): {:.1} us with automatic chunks, \
         {:.1} us with one task per request",
        report.pool_overhead_us_per_task, report.pool_overhead_us_per_task_chunk_1
    )?;
    let ten = report.rust_serial_ten_pairs_seconds;
    match &report.python {
        Some(p) => {
            writeln!(
                out,
                "The book's program in CPython {} (10 pairs, 2 workers): serial {}, \
                 threads {} ({:.2}x), processes {} ({:.2}x)",
                p.python,
                seconds(p.serial_seconds),
                seconds(p.threads_seconds),
                p.serial_seconds / p.threads_seconds,
                seconds(p.processes_seconds),
                p.serial_seconds / p.processes_seconds,
            )?;
            writeln!(
                out,
                "The 10 pairs serially: Rust {ten:.4} s, CPython {:.3} s: Rust is {:.0}x faster",
                p.serial_seconds,
                p.serial_seconds / ten
            )?;
        }
        None => writeln!(
            out,
            "The 10 pairs serially: Rust {ten:.4} s (pass --python python3 to compare)"
        )?,
    }
    Ok(Outcome::Success)
}
