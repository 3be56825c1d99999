//! `concur tail`.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Args;

use super::signals::{SecondSignal, SignalCancel};
use super::value::{parse_bytes, parse_bytes_max, parse_duration};
use super::{Outcome, UsageError};
use crate::tail::writer::Output;
use crate::tail::{self, FollowOptions, Mode, Start, TailError, TailOptions};

const AFTER: &str = "\
Each file is read from its start (or from -n/-c/--from-end) and followed as it grows.
Complete lines from all files are merged into OUT: a line is written whole, never mixed
with another, and each file's lines keep their order. An unfinished last line is held
until its newline arrives (and written, with a newline, when tailing stops); one longer
than --max-line-bytes is written out in pieces, each ending in a marker. -v writes GNU
tail's ==> FILE <== headers instead of merging silently.

Following, as GNU tail means it:
  -f, --follow[=descriptor]  the open file, wherever it is renamed to (the default)
  --follow=name              whatever file the name leads to, reopened after rotation
  -F                         --follow=name --retry: also waits for missing files and
                             retries unreadable ones; a name that becomes a directory
                             is waited for until it is a file again
Without --retry, a name that cannot be opened, or (by name) goes away or becomes a
directory, is given up; once none is left: \"no files remaining\", exit 1.

New lines are seen within a millisecond through inotify: one watch per directory, plus
the directory of a symbolic link's target (re-resolved when the link changes), and by
descriptor the open file itself. Nothing runs while no file changes, except a re-check
of every name each 5 s. --poll (or a system without inotify) looks every --interval.

By name, a file renamed away and recreated is reopened after the rest of the old file
is drained; a truncated one (copytruncate) is re-read from its start, after what its
copy holds past the point already read. When a followed name comes to lead to a file
another followed name was reading (mv a b), it goes on from there: each line once.

- is standard input, and no FILE means -; a regular file there is followed like any
file. Pipes, FIFOs and devices are read to their end; with -n N or -c N only the last N
lines or bytes are kept meanwhile (a seekable device gives its last N bytes at once).

Without --idle-exit or --pid, tailing runs until Ctrl-C or SIGTERM (a second one exits at
once), or until the reader of a piped stdout goes away; then it flushes and exits 0.

Exit status: 0 done; 1 a file could not be read or followed (or none could be opened:
\"no files remaining\"), writing failed, or stdout or stdin was closed; 2 bad usage,
or OUT could not be created.

Designs (--mode), all merging the same lines:
  events   one thread: inotify, reads and writes in one loop, like GNU tail (default)
  threads  a thread per file and a locked writer (the book's Example 3)
  mixed    blocking tailers on spawn_blocking, an async writer task (item 62)
  async    async tailer tasks, a dedicated writer thread (item 63's WriteThread)";

/// Arguments of `concur tail`.
#[derive(Debug, Args)]
#[command(
    about = "Follow many growing files and merge their lines into one output (items 62-63)",
    after_help = AFTER,
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true
)]
pub struct TailArgs {
    #[command(subcommand)]
    command: Option<TailCommand>,

    /// How tailers and the writer are arranged.
    #[arg(long, value_enum, default_value_t = Mode::Events)]
    mode: Mode,

    /// Write the merged lines to OUT instead of stdout (created, or truncated unless
    /// --append or --state).
    #[arg(short, long, value_name = "OUT")]
    output: Option<PathBuf>,

    /// How often to look where inotify cannot say: with --poll or without inotify, and
    /// for a file being retried or drained after a rotation.
    #[arg(long, value_parser = parse_duration, default_value = "100ms", value_name = "D")]
    interval: Duration,

    /// Exit (status 0) once no file has grown for D.
    #[arg(long, value_parser = parse_duration, value_name = "D")]
    idle_exit: Option<Duration>,

    /// Start at the current end of each file (as -n 0).
    #[arg(long, conflicts_with_all = ["lines", "bytes"])]
    from_end: bool,

    /// Start with the last N lines of each file, or with +K from line K.
    #[arg(short = 'n', long, value_name = "N|+K", value_parser = parse_lines, conflicts_with = "bytes", allow_hyphen_values = true)]
    lines: Option<Start>,

    /// Start with the last N bytes of each file, or with +K from byte K.
    #[arg(short = 'c', long, value_name = "N|+K", value_parser = parse_start_bytes, allow_hyphen_values = true)]
    bytes: Option<Start>,

    /// Follow each file by descriptor (the default): the open file is read wherever it is
    /// renamed to, and a deleted one until it is closed.
    #[arg(short = 'f', conflicts_with = "follow_name_retry")]
    follow_descriptor: bool,

    /// How to follow: `descriptor` (the open file, wherever it goes; the default, and
    /// what bare --follow means) or `name` (whatever file the name leads to, reopened
    /// through rotation and truncation).
    #[arg(
        long,
        value_enum,
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "descriptor",
        value_name = "HOW"
    )]
    follow: Option<FollowHow>,

    /// Follow names and keep retrying (--follow=name --retry), as tail -F: survives
    /// rotation and truncation, waits for missing files, retries unreadable ones.
    #[arg(short = 'F', long = "follow-name", hide_long_help = false)]
    follow_name_retry: bool,

    /// Keep trying a file that cannot be opened (missing, unreadable) until it can,
    /// and, by name, one that goes away; by descriptor only the first open is retried.
    #[arg(long, overrides_with = "no_retry")]
    retry: bool,

    /// Give up a file that cannot be opened, even with -F.
    #[arg(long)]
    no_retry: bool,

    /// Look every N seconds where inotify cannot say (as --interval; a bare number is
    /// seconds, as GNU tail's -s).
    #[arg(short = 's', long = "sleep-interval", value_parser = parse_duration, value_name = "N")]
    sleep_interval: Option<Duration>,

    /// Accepted for GNU tail's scripts; concur looks at the name after every change
    /// inotify reports, and on every --interval when polling, which is what N = 1
    /// asks of GNU tail, so N changes nothing.
    #[arg(long, value_name = "N")]
    max_unchanged_stats: Option<u64>,

    /// Write a `==> FILE <==` header before the lines of each file whenever the file
    /// they come from changes, as GNU tail does for several files.
    #[arg(short = 'v', long, overrides_with = "quiet")]
    verbose: bool,

    /// Write each line as one JSON object, {"file": PATH, "line": TEXT} (a line that is
    /// not UTF-8 as "line_hex", byte for byte).
    #[arg(long, conflicts_with_all = ["prefix", "verbose"])]
    json: bool,

    /// Never write headers (concur's default: lines are merged into one stream).
    #[arg(short = 'q', long, visible_alias = "silent")]
    quiet: bool,

    /// Follow every file matching PATTERN (wildcards in the last part), now and later;
    /// a file whose name goes away is drained and closed. Repeatable.
    #[arg(long = "glob", value_name = "PATTERN")]
    globs: Vec<String>,

    /// Stop, after draining every file, once process PID has exited (repeatable: once
    /// every one has).
    #[arg(long, value_name = "PID")]
    pid: Vec<u32>,

    /// Save where each file was read up to in FILE (atomically, once a second and at
    /// exit), and resume from it on the next run: nothing lost or repeated across a
    /// kill -9, rotations while stopped included. Needs -o OUT, which is then appended to.
    #[arg(long, value_name = "FILE", requires = "output")]
    state: Option<PathBuf>,

    /// Append to OUT instead of truncating it.
    #[arg(long, requires = "output")]
    append: bool,

    /// Write an unfinished line longer than N bytes out in pieces, with a marker (at
    /// most 1G).
    #[arg(long, value_parser = |t: &str| parse_bytes_max(t, 1 << 30), default_value = "1MiB", value_name = "N")]
    max_line_bytes: u64,

    /// Write `path: ` before each line.
    #[arg(long)]
    prefix: bool,

    /// Do not use inotify; look every --interval.
    #[arg(long)]
    poll: bool,

    /// Report any task poll that blocks the runtime longer than D (mixed and async).
    #[arg(long, value_parser = parse_duration, value_name = "D")]
    debug_slow: Option<Duration>,

    /// The files to follow (- is standard input, which is also what no FILE and no
    /// --glob means).
    #[arg(value_name = "FILE")]
    files: Vec<PathBuf>,
}

/// `--follow=HOW`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum FollowHow {
    /// The open file, wherever it is renamed to.
    Descriptor,
    /// Whatever file the name leads to.
    Name,
}

#[derive(Debug, clap::Subcommand)]
enum TailCommand {
    /// Measure latency, throughput, the cost of quiet files and CPU per line (against GNU tail).
    Bench(BenchArgs),
}

#[derive(Debug, Args)]
struct BenchArgs {
    /// Lines per file for the throughput runs (8 files).
    #[arg(long, default_value_t = 500_000, value_name = "N")]
    lines: u64,

    /// Lines timed per latency run.
    #[arg(long, default_value_t = 200, value_name = "N")]
    samples: usize,

    /// Quiet files for the idle case.
    #[arg(long, default_value_t = 2000, value_name = "N")]
    idle_files: usize,

    /// How long the idle case measures (after 3 s of warm-up).
    #[arg(long, value_parser = parse_duration, default_value = "10s", value_name = "D")]
    idle_for: Duration,

    /// Lines per second for the CPU-per-line case (over 4 files).
    #[arg(long, default_value_t = 20_000, value_name = "N")]
    rate: u64,

    /// How long the CPU-per-line case writes.
    #[arg(long, value_parser = parse_duration, default_value = "10s", value_name = "D")]
    rate_for: Duration,

    /// Which cases to run.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "latency,throughput,idle,cpu"
    )]
    cases: Vec<BenchCase>,

    /// Print one JSON object instead of tables.
    #[arg(long)]
    json: bool,

    /// Also draw the latency case as an SVG chart in FILE: the cumulative distribution
    /// of append-to-output time per mode, inotify against polling.
    #[arg(long, value_name = "FILE")]
    svg: Option<PathBuf>,
}

/// A part of `concur tail bench`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum BenchCase {
    /// Append-to-output latency, inotify and polling.
    Latency,
    /// Lines per second, files pre-written and written live.
    Throughput,
    /// CPU and wake-ups while many files are quiet, against GNU tail -F.
    Idle,
    /// CPU per line at a steady rate, against GNU tail -F.
    Cpu,
}

/// The three designs, as `concur tail` arguments.
const MODES: [Mode; 4] = [Mode::Events, Mode::Threads, Mode::Mixed, Mode::Async];

/// GNU tail, following names as an SRE runs it.
fn gnu_tail_follow() -> std::process::Command {
    let mut gnu = std::process::Command::new("tail");
    gnu.args(["-F", "-q", "-n", "+1"]);
    gnu
}

fn bench(args: BenchArgs, out: &mut dyn Write) -> Result<Outcome> {
    use crate::tail::bench;
    if args.svg.is_some() && !args.cases.contains(&BenchCase::Latency) {
        return Err(
            UsageError("--svg draws the latency case: add latency to --cases".into()).into(),
        );
    }
    let exe = std::env::current_exe().context("cannot find the concur executable")?;
    let dir = tempfile::Builder::new()
        .prefix("concur-tail-bench-")
        .tempdir()?;
    let concur = |mode: Mode| {
        let mut command = std::process::Command::new(&exe);
        command.args(["tail", "--mode", bench::mode_name(mode)]);
        command
    };
    let name = |mode: Mode| format!("concur tail --mode {}", bench::mode_name(mode));
    let mut latencies = Vec::new();
    if args.cases.contains(&BenchCase::Latency) {
        for mode in MODES {
            latencies.push(bench::latency(&exe, dir.path(), mode, false, args.samples)?);
        }
        latencies.push(bench::latency(
            &exe,
            dir.path(),
            Mode::Threads,
            true,
            args.samples,
        )?);
        // A symlinked file must be as fast as a plain one, and a renamed one followed
        // by descriptor too; GNU tail in the same three cases, as the baseline.
        for layout in [bench::Layout::Symlink, bench::Layout::Renamed] {
            latencies.push(bench::latency_of(
                &exe,
                dir.path(),
                bench::Timed::Concur(Mode::Events, false),
                layout,
                args.samples,
            )?);
        }
        for layout in [
            bench::Layout::Plain,
            bench::Layout::Symlink,
            bench::Layout::Renamed,
        ] {
            match bench::latency_of(&exe, dir.path(), bench::Timed::Gnu, layout, args.samples) {
                Ok(result) => latencies.push(result),
                Err(err) => eprintln!("concur: GNU tail not measured: {err}"),
            }
        }
    }

    let mut throughputs = Vec::new();
    if args.cases.contains(&BenchCase::Throughput) {
        let files = 8;
        let paths = bench::write_files(dir.path(), files, args.lines)?;
        let total = files as u64 * args.lines;
        for mode in MODES {
            let mut command = concur(mode);
            command.args(&paths);
            throughputs.push(bench::throughput(
                &name(mode),
                "pre-written",
                &mut command,
                total,
            )?);
        }
        let mut gnu = std::process::Command::new("tail");
        gnu.args(["-q", "-n", "+1", "-f"]).args(&paths);
        match bench::throughput("GNU tail -q -n +1 -f", "pre-written", &mut gnu, total) {
            Ok(result) => throughputs.push(result),
            Err(err) => eprintln!("concur: GNU tail not measured: {err}"),
        }
        for path in &paths {
            let _ = std::fs::remove_file(path);
        }
        for mode in MODES {
            throughputs.push(bench::live_throughput(
                &exe,
                dir.path(),
                mode,
                files,
                args.lines,
            )?);
        }
    }

    let mut idles = Vec::new();
    if args.cases.contains(&BenchCase::Idle) {
        let quiet = bench::quiet_files(dir.path(), args.idle_files)?;
        let warmup = Duration::from_secs(3);
        for mode in MODES {
            let mut command = concur(mode);
            command.arg("-F").args(&quiet);
            idles.push(bench::idle(
                &format!("{} -F", name(mode)),
                &mut command,
                quiet.len(),
                warmup,
                args.idle_for,
            )?);
        }
        let mut gnu = gnu_tail_follow();
        gnu.args(&quiet);
        match bench::idle("GNU tail -F", &mut gnu, quiet.len(), warmup, args.idle_for) {
            Ok(result) => idles.push(result),
            Err(err) => eprintln!("concur: GNU tail not measured: {err}"),
        }
    }

    let mut cpu = Vec::new();
    if args.cases.contains(&BenchCase::Cpu) {
        for mode in MODES {
            let mut command = concur(mode);
            command.arg("-F");
            cpu.push(bench::cpu_per_line(
                &format!("{} -F", name(mode)),
                &mut command,
                dir.path(),
                args.rate,
                args.rate_for,
            )?);
        }
        match bench::cpu_per_line(
            "GNU tail -F",
            &mut gnu_tail_follow(),
            dir.path(),
            args.rate,
            args.rate_for,
        ) {
            Ok(result) => cpu.push(result),
            Err(err) => eprintln!("concur: GNU tail not measured: {err}"),
        }
    }

    if let Some(path) = &args.svg {
        let designs: Vec<_> = latencies
            .iter()
            .filter(|l| l.case == bench::Layout::Plain.name() && !l.tailer.starts_with("GNU"))
            .cloned()
            .collect();
        let chart = bench::latency_chart(
            &designs,
            bench::POLL_INTERVAL,
            &super::output::typed_command(),
        );
        super::output::write_svg(path, chart)?;
    }
    if args.json {
        let report = serde_json::json!({
            "latency": latencies,
            "throughput": throughputs,
            "idle": idles,
            "cpu_per_line": cpu,
        });
        writeln!(out, "{report}")?;
        return Ok(Outcome::Success);
    }
    if !latencies.is_empty() {
        writeln!(
            out,
            "Append-to-output latency ({} lines, one every 10 ms):",
            args.samples
        )?;
        writeln!(
            out,
            "{:<28} {:<30} {:<12} {:>8} {:>9} {:>8}",
            "tailer", "case", "wake-up", "lines", "p50 ms", "p99 ms"
        )?;
        for l in &latencies {
            writeln!(
                out,
                "{:<28} {:<30} {:<12} {:>8} {:>9.3} {:>8.3}",
                l.tailer,
                l.case,
                if l.tailer.starts_with("GNU") {
                    "its own"
                } else {
                    &l.wake
                },
                l.samples,
                l.p50_ms,
                l.p99_ms
            )?;
        }
    }
    if !throughputs.is_empty() {
        writeln!(
            out,
            "\nThroughput, 8 files of {} lines (about 60 bytes each):",
            args.lines
        )?;
        writeln!(
            out,
            "{:<30} {:<12} {:>10} {:>14}",
            "tailer", "workload", "seconds", "lines/s"
        )?;
        for t in &throughputs {
            writeln!(
                out,
                "{:<30} {:<12} {:>10.3} {:>14.0}",
                t.tailer, t.workload, t.seconds, t.lines_per_second
            )?;
        }
    }
    if !idles.is_empty() {
        writeln!(
            out,
            "\nQuiet files ({} files, {:.0} s after 3 s of warm-up):",
            args.idle_files,
            args.idle_for.as_secs_f64()
        )?;
        writeln!(
            out,
            "{:<34} {:>8} {:>12} {:>8}",
            "tailer", "CPU %", "wake-ups/s", "threads"
        )?;
        for i in &idles {
            writeln!(
                out,
                "{:<34} {:>8.3} {:>12.1} {:>8}",
                i.tailer, i.cpu_percent, i.wakeups_per_second, i.threads
            )?;
        }
    }
    if !cpu.is_empty() {
        let gnu = cpu
            .iter()
            .find(|c| c.tailer.starts_with("GNU"))
            .map(|c| c.cpu_seconds);
        writeln!(
            out,
            "\nCPU per line ({} lines/s over 4 files for {:.0} s):",
            args.rate,
            args.rate_for.as_secs_f64()
        )?;
        writeln!(
            out,
            "{:<34} {:>10} {:>10} {:>8} {:>12} {:>8}",
            "tailer", "lines", "delivered", "CPU s", "µs per line", "vs GNU"
        )?;
        for c in &cpu {
            let ratio = gnu
                .filter(|&g| g > 0.0)
                .map_or_else(|| "-".to_owned(), |g| format!("{:.2}×", c.cpu_seconds / g));
            writeln!(
                out,
                "{:<34} {:>10} {:>10} {:>8.2} {:>12.2} {:>8}",
                c.tailer, c.lines, c.delivered, c.cpu_seconds, c.cpu_us_per_line, ratio
            )?;
        }
    }
    Ok(Outcome::Success)
}

/// `-n N` or `-n +K`.
fn parse_lines(text: &str) -> Result<Start, String> {
    parse_start(text, "lines").map(|(from, n)| {
        if from {
            Start::FromLine(n)
        } else {
            Start::LastLines(n)
        }
    })
}

/// `-c N` or `-c +K`.
fn parse_start_bytes(text: &str) -> Result<Start, String> {
    if let Some(k) = text.strip_prefix('+') {
        return parse_bytes(k).map(Start::FromByte);
    }
    parse_bytes(text.strip_prefix('-').unwrap_or(text)).map(Start::LastBytes)
}

fn parse_start(text: &str, what: &str) -> Result<(bool, u64), String> {
    let (from, digits) = match text.strip_prefix('+') {
        Some(rest) => (true, rest),
        None => (false, text.strip_prefix('-').unwrap_or(text)),
    };
    digits.parse().map(|n| (from, n)).map_err(|_| {
        format!("{text:?} is not a number of {what} (N for the last N, +K to start at K)")
    })
}

/// Runs `concur tail`.
pub fn run(args: TailArgs, out: &mut dyn Write) -> Result<Outcome> {
    if let Some(TailCommand::Bench(bench_args)) = args.command {
        return bench(bench_args, out);
    }
    if args.debug_slow.is_some() && matches!(args.mode, Mode::Threads | Mode::Events) {
        return Err(UsageError(
            "--debug-slow watches async tasks: use it with --mode mixed or async".into(),
        )
        .into());
    }
    if args.output.is_none() && crate::stdio::stdout_was_closed() {
        anyhow::bail!("standard output is closed: nowhere to write the lines (use -o OUT)");
    }
    let by_name = args.follow_name_retry || args.follow == Some(FollowHow::Name);
    if by_name && (args.follow_descriptor || args.follow == Some(FollowHow::Descriptor)) {
        return Err(UsageError("follow by name (-F, --follow=name) or by descriptor (-f, --follow=descriptor), not both".into()).into());
    }
    let files = if args.files.is_empty() && args.globs.is_empty() {
        vec![PathBuf::from("-")]
    } else {
        args.files.clone()
    };
    let append = args.append || args.state.is_some();
    let output = Output::open(args.output.as_deref(), append)
        .map_err(|e| UsageError(crate::error_chain(&e)))?;
    let options = TailOptions {
        mode: args.mode,
        interval: args
            .sleep_interval
            .unwrap_or(args.interval)
            .max(Duration::from_millis(1)),
        idle_exit: args.idle_exit,
        follow: FollowOptions {
            start: match (args.from_end, args.lines, args.bytes) {
                (true, _, _) => Start::LastLines(0),
                (_, Some(start), _) | (_, _, Some(start)) => start,
                _ => Start::Beginning,
            },
            follow_name: by_name,
            retry: !args.no_retry && (args.retry || args.follow_name_retry),
            max_line: usize::try_from(args.max_line_bytes.max(1)).unwrap_or(usize::MAX),
            close_when_gone: false,
        },
        prefix: args.prefix,
        poll_only: args.poll,
        debug_slow: args.debug_slow,
        pids: args.pid,
        headers: args.verbose && !args.quiet,
        json: args.json,
        globs: args.globs,
        state: args.state.clone(),
    };
    let signals = SignalCancel::install_with("tail-signals", SecondSignal::Exit)?;
    let log: tail::Log = Arc::new(|line| eprintln!("concur: {line}"));
    let result = tail::run(&files, &options, output, log, signals.token());
    drop(signals);
    match result {
        Ok(summary) => Ok({
            if summary.cut_lines > 0 {
                eprintln!(
                    "concur: {} lines longer than {} bytes were written in pieces",
                    summary.cut_lines, args.max_line_bytes
                );
            }
            if summary.failed_files > 0 {
                if summary.all_ended {
                    eprintln!("concur: no files remaining");
                }
                Outcome::Failure
            } else {
                Outcome::Success
            }
        }),
        Err(TailError::NoFiles(why)) if files.is_empty() => {
            Err(UsageError(format!("no file to follow: {why}")).into())
        }
        // As GNU tail: files that cannot be opened are a failure (1), not bad usage.
        Err(TailError::NoFiles(_)) => Err(anyhow::anyhow!("no files remaining")),
        Err(err @ (TailError::Glob { .. } | TailError::State(_) | TailError::StateNeedsFile)) => {
            Err(UsageError(crate::error_chain(&err)).into())
        }
        Err(TailError::Write(err)) if err.kind() == std::io::ErrorKind::BrokenPipe => {
            Ok(Outcome::Success)
        }
        Err(err) => Err(err.into()),
    }
}
