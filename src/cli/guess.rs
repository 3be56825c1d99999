//! `concur guess serve | play | load`.

use std::io::Write;
use std::net::SocketAddr;
use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::{Args, Subcommand, ValueEnum};

use super::signals::{SecondSignal, SignalCancel};
use super::value::{
    off_if_zero, parse_count_max, parse_duration, parse_positive, parse_positive_max,
};
use super::{Outcome, UsageError};
use crate::guess::{self, ServerConfig, ServerStats, load};
use crate::measure::{peak_rss_bytes, process_cpu_seconds};
use crate::process::CancelToken;
use crate::sink::{Printer, Sink};
use serde_json::json;

/// The longest `--max-line` a server takes: 1 MiB (a session holds one line).
const MAX_LINE_LIMIT: usize = 1 << 20;

/// The most clients one `load` run takes: 10 million (a run of 10,000 takes about a
/// second here).
const MAX_CLIENTS: u64 = 10_000_000;

/// Which implementation to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Mode {
    /// One OS thread per connection (the book's first version).
    Threads,
    /// One tokio task per connection (the book's asyncio port).
    Async,
}

/// Which server to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ServerMode {
    /// One OS thread per connection (the book's first version).
    Threads,
    /// One tokio task per connection (the book's asyncio port).
    Async,
    /// The measuring stick: bare epoll, a thread per core, no timeouts, no limits.
    Epoll,
}

/// Arguments of `concur guess`.
#[derive(Debug, Args)]
#[command(about = "The book's number-guessing game over TCP, threaded and async (item 61)")]
pub struct GuessArgs {
    #[command(subcommand)]
    command: GuessCommand,
}

#[derive(Debug, Subcommand)]
enum GuessCommand {
    /// Serve games until Ctrl-C or SIGTERM.
    #[command(
        after_help = "Protocol: PARAMS lo hi | NUMBER | REPORT Warmer|Colder|Unsure|Correct, one per line.\n\
        Bad input ends only its own session, with an ERROR line; an exhausted range gets\n\
        `ERROR no numbers left ...` and the session goes on. On Ctrl-C the server stops\n\
        accepting, lets open sessions finish, and gives the transcript until --grace after\n\
        the signal to drain; a second signal ends the process at once. Exit status: 130\n\
        after SIGINT, 143 after SIGTERM, 1 if the server failed.\n\n\
        Transcript and log lines wait in bounded queues (4096 and 1024 lines): when stdout\n\
        or stderr does not keep up, lines are dropped and counted, never held, so a client\n\
        cannot grow the server's memory or stall it. The address it listens on is printed\n\
        on stderr (useful with port 0)."
    )]
    Serve(ServeArgs),
    /// Play the book's two games against a server and print the client's lines.
    Play(PlayArgs),
    /// Run many async clients at once and report throughput and latency.
    Load(LoadArgs),
}

#[derive(Debug, Args)]
struct ServeArgs {
    /// Address to listen on (port 0 picks a free one).
    #[arg(long, default_value = "127.0.0.1:1234")]
    addr: SocketAddr,

    /// Threads, async, or epoll (the floor for benchmarks: no idle or write timeout,
    /// no session limit, shutdown closes at once).
    #[arg(long, value_enum, default_value_t = ServerMode::Async)]
    mode: ServerMode,

    /// Do not print the `Server: N is DECISION` lines.
    #[arg(long)]
    quiet: bool,

    /// The longest line accepted, in bytes (at most 1048576).
    #[arg(long, default_value_t = 1024, value_name = "BYTES", value_parser = |t: &str| parse_positive_max(t, MAX_LINE_LIMIT).map(NonZeroUsize::get))]
    max_line: usize,

    /// After Ctrl-C or SIGTERM, how long the whole shutdown may take (plus 0.2 s for the
    /// final report): open sessions finish, then the transcript drains. What is left then
    /// is closed or counted.
    #[arg(long, value_parser = parse_duration, default_value = "5s", value_name = "D")]
    grace: Duration,

    /// Close a connection that sends no complete line for D (0: never).
    #[arg(long, value_parser = parse_duration, default_value = "60s", value_name = "D")]
    idle_timeout: Duration,

    /// Close a connection that does not take a reply within D: a client that stopped
    /// reading (0: wait for ever).
    #[arg(long, value_parser = parse_duration, default_value = "10s", value_name = "D")]
    write_timeout: Duration,

    /// Serve at most N clients at once; more get `ERROR server full` [default: for
    /// threads, the thread budget, printed at start; for async, no limit but the
    /// file-descriptor limit].
    #[arg(long, value_parser = parse_positive, value_name = "N")]
    max_sessions: Option<NonZeroUsize>,

    /// When stopped, print the statistics as one JSON object on stdout, after the
    /// transcript.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
struct PlayArgs {
    /// The server's address.
    #[arg(long, default_value = "127.0.0.1:1234")]
    addr: SocketAddr,

    /// Threaded or async client.
    #[arg(long, value_enum, default_value_t = Mode::Async)]
    mode: Mode,

    /// Print one JSON object per guess instead of the transcript:
    /// {"game":1,"guess":3,"decision":"Correct"}.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
#[command(
    after_help = "With no --addr, a server runs in this process (see --mode). Its sockets count \
    against the same\nfile-descriptor limit as the clients', so --jobs is then capped at half the \
    limit.\nWith --server-process (or --svg) it runs as a child process instead, so its CPU time and \
    memory are its own.\nSessions are games: each client plays the book's two.\n\n\
    Several --clients and --mode values run every combination, --runs times each, one line \
    (or JSON object) per run.\n\n\
    Example: the chart of both servers at 10 to 10,000 clients:\n  \
    concur guess load --mode async,threads --clients 10,100,1000,10000 --runs 3 --svg guess.svg"
)]
struct LoadArgs {
    /// The server to load [default: start one].
    #[arg(long, conflicts_with_all = ["server", "server_process", "svg", "syscalls"])]
    addr: Option<SocketAddr>,

    /// The started server's mode; a list runs each.
    #[arg(
        long = "mode",
        alias = "server",
        value_enum,
        value_delimiter = ',',
        default_value = "async",
        value_name = "MODE"
    )]
    server: Vec<ServerMode>,

    /// Clients to run; a list runs each count (each at most 10000000).
    #[arg(long, value_delimiter = ',', default_value = "10000", value_name = "N", value_parser = |t: &str| parse_count_max(t, MAX_CLIENTS).map(|n| n as usize))]
    clients: Vec<usize>,

    /// Clients connected at once at most [default: all of them].
    #[arg(long = "jobs", short = 'j', alias = "concurrency", value_name = "N")]
    concurrency: Option<usize>,

    /// Runs of each combination (the chart draws their median and range; at most 1000).
    #[arg(long, default_value_t = NonZeroUsize::MIN, value_parser = |t: &str| parse_positive_max(t, 1000), value_name = "N")]
    runs: NonZeroUsize,

    /// Run the server as a child process (`concur guess serve`) and report its CPU time
    /// per session and its peak RSS.
    #[arg(long)]
    server_process: bool,

    /// Also count the server's system calls per session: each run is repeated against
    /// a fresh server with `strace -c -f` attached (so the CPU time stays untraced).
    /// Needs strace; implies --server-process.
    #[arg(long)]
    syscalls: bool,

    /// Also draw sessions/s and the server's CPU µs per session against clients, a
    /// line per server, as an SVG chart in FILE (implies --server-process).
    #[arg(long, value_name = "FILE")]
    svg: Option<PathBuf>,

    /// Print one JSON object per run with clients, sessions, failures, seconds,
    /// sessions_per_second, p50_ms, p99_ms, peak_rss_mb, concurrency and errors (and,
    /// for a started server, server; with --server-process, server_cpu_us_per_session
    /// and server_peak_rss_mb).
    #[arg(long)]
    json: bool,
}

/// Runs `concur guess`.
pub fn run(args: GuessArgs, out: &mut dyn Write) -> Result<Outcome> {
    match args.command {
        GuessCommand::Serve(args) => serve(args),
        GuessCommand::Play(args) => play(args, out),
        GuessCommand::Load(args) => load_command(args, out),
    }
}

/// Transcript lines that may wait for stdout; past this they are dropped and counted.
const TRANSCRIPT_QUEUE: usize = 4096;

/// Log lines that may wait for stderr.
const LOG_QUEUE: usize = 1024;

/// The least time each printer gets to drain at shutdown, whatever --grace says.
const DRAIN_FLOOR: Duration = Duration::from_millis(100);

fn stats_line(stats: &ServerStats) -> String {
    format!(
        "served {} sessions ({} ended by protocol errors, {} idle, {} that stopped reading, \
         {} refused as the server was full, {} accept errors, {} closed at shutdown, at most {} at once)",
        stats.sessions,
        stats.protocol_errors,
        stats.idle_closes,
        stats.write_timeouts,
        stats.refused,
        stats.accept_errors,
        stats.forced_closes,
        stats.peak_sessions
    )
}

fn serve(args: ServeArgs) -> Result<Outcome> {
    let descriptors = crate::limits::raise_fd_limit().unwrap_or(1024);
    if let Some(n) = args.max_sessions
        && n.get() as u64 > descriptors
    {
        return Err(UsageError(format!(
            "--max-sessions {n}: a session takes a descriptor, and the limit is {descriptors} \
             (ulimit -n)"
        ))
        .into());
    }
    let listener =
        guess::bind(args.addr).with_context(|| format!("cannot listen on {}", args.addr))?;
    let local = listener.local_addr()?;
    // Every line leaves through a printer thread, so neither a session nor shutdown ever
    // waits on a terminal or a pipe; a second signal ends the process at once.
    let signals = SignalCancel::install_with("guess-signals", SecondSignal::Exit)?;
    let stdout = Printer::stdout("guess-transcript", TRANSCRIPT_QUEUE, "")
        .context("cannot start the transcript printer")?;
    let log = Printer::stderr("guess-log", LOG_QUEUE, "concur: ")
        .context("cannot start the log printer")?;
    let config = ServerConfig {
        max_line: args.max_line,
        grace: args.grace,
        idle_timeout: off_if_zero(args.idle_timeout),
        write_timeout: off_if_zero(args.write_timeout),
        max_sessions: args.max_sessions.map(NonZeroUsize::get),
        transcript: if args.quiet {
            Sink::null()
        } else {
            stdout.sink()
        },
        log: log.sink(),
    };
    let startup = Instant::now() + Duration::from_secs(1);
    let serving_from;
    let stats = match args.mode {
        ServerMode::Threads => {
            log.send_until(format!("listening on {local} (threaded server)"), startup);
            serving_from = process_cpu_seconds();
            guess::serve_threads(listener, config, signals.token())
        }
        ServerMode::Epoll => {
            let threads = thread::available_parallelism().map_or(1, NonZeroUsize::get);
            log.send_until(
                format!("listening on {local} (bare epoll server, {threads} threads)"),
                startup,
            );
            serving_from = process_cpu_seconds();
            guess::serve_epoll(listener, config, threads, signals.token())
        }
        ServerMode::Async => {
            log.send_until(format!("listening on {local} (async server)"), startup);
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?;
            serving_from = process_cpu_seconds();
            runtime.block_on(async {
                listener.set_nonblocking(true)?;
                let listener = tokio::net::TcpListener::from_std(listener)?;
                guess::serve_async(listener, config, signals.token().cancelled()).await
            })
        }
    };
    // The whole shutdown fits in --grace from the signal: the sessions take their part,
    // the transcript the rest (at least a moment, so a healthy stdout always drains),
    // and the log a moment after it, so the final report is written even when the
    // transcript used up the grace on a stalled stdout.
    let now = Instant::now();
    let deadline = signals
        .token()
        .cancelled_at()
        .map_or(now, |at| at + args.grace)
        .max(now + DRAIN_FLOOR);
    let stats = match stats {
        Ok(stats) => stats,
        Err(err) => {
            log.finish(deadline);
            return Err(err).context("the server failed");
        }
    };
    if args.json {
        let transcript = stdout.stats();
        let report = json!({
            "stats": stats,
            "serving_cpu_seconds": process_cpu_seconds() - serving_from,
            "peak_rss_mb": peak_rss_bytes().map(|b| b as f64 / (1024.0 * 1024.0)),
            "transcript_lines": transcript.written + transcript.unwritten,
            "transcript_dropped": transcript.dropped,
            "log_dropped": log.stats().dropped,
        });
        stdout.send_until(report.to_string(), deadline);
    }
    let transcript = stdout.finish(deadline);
    let deadline = deadline.max(Instant::now() + DRAIN_FLOOR);
    if transcript.dropped > 0 {
        log.send_until(
            format!(
                "transcript: {} of {} lines dropped (stdout did not keep up; at most {TRANSCRIPT_QUEUE} lines wait)",
                transcript.dropped,
                transcript.written + transcript.dropped + transcript.unwritten
            ),
            deadline,
        );
    }
    if transcript.unwritten > 0 {
        log.send_until(
            format!(
                "transcript: {} lines not written (stdout was closed, or did not take them within --grace)",
                transcript.unwritten
            ),
            deadline,
        );
    }
    log.send_until(stats_line(&stats), deadline);
    log.finish(deadline);
    Ok(Outcome::Code(signals.exit_status()))
}

fn play(args: PlayArgs, out: &mut dyn Write) -> Result<Outcome> {
    let transcript = match args.mode {
        Mode::Threads => guess::play_threaded(args.addr)?,
        Mode::Async => {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            let mut latencies = Vec::new();
            runtime.block_on(guess::play_async_at(args.addr, &mut latencies))?
        }
    };
    for round in transcript {
        if args.json {
            writeln!(out, "{}", serde_json::to_string(&round)?)?;
        } else {
            writeln!(out, "{round}")?;
        }
    }
    Ok(Outcome::Success)
}

fn load_command(args: LoadArgs, out: &mut dyn Write) -> Result<Outcome> {
    let fd_limit = crate::limits::raise_fd_limit().unwrap_or(1024);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    if let Some(&zero) = args.clients.iter().find(|&&n| n == 0) {
        return Err(UsageError(format!("--clients must be above 0, not {zero}")).into());
    }
    let separate = args.server_process || args.svg.is_some() || args.syscalls;
    let exe = std::env::current_exe().context("cannot find the concur executable")?;
    let servers: Vec<Option<ServerMode>> = match args.addr {
        Some(_) => vec![None],
        None => args.server.iter().copied().map(Some).collect(),
    };
    let mut reports = Vec::new();
    let mut failed = false;
    for &server in &servers {
        for &clients in &args.clients {
            for _ in 0..args.runs.get() {
                let concurrency = args.concurrency.unwrap_or(clients).min(clients);
                // Each run's peak RSS is its own, not the largest run's so far.
                crate::measure::reset_peak_rss();
                let report = match (args.addr, server) {
                    (Some(addr), _) => runtime.block_on(load::run(addr, clients, concurrency)),
                    (None, Some(mode)) if separate => load::against_process(
                        &runtime,
                        &exe,
                        server_kind(mode),
                        clients,
                        concurrency,
                        args.syscalls,
                    )?,
                    (None, mode) => {
                        let mode = mode.unwrap_or(ServerMode::Async);
                        load_in_process(&runtime, mode, clients, concurrency, fd_limit)?
                    }
                };
                if args.json {
                    writeln!(out, "{}", serde_json::to_string(&report)?)?;
                } else {
                    write_load_line(out, &report)?;
                }
                for error in &report.errors {
                    eprintln!("concur: a client failed: {error}");
                }
                failed |= report.failures > 0;
                reports.push(report);
            }
        }
    }
    if let Some(path) = &args.svg {
        super::output::write_svg(path, load::chart(&reports, &super::output::typed_command()))?;
    }
    Ok(if failed {
        Outcome::Failure
    } else {
        Outcome::Success
    })
}

fn server_kind(mode: ServerMode) -> load::Server {
    match mode {
        ServerMode::Async => load::Server::Async,
        ServerMode::Threads => load::Server::Threads,
        ServerMode::Epoll => load::Server::Epoll,
    }
}

fn mode_name(mode: ServerMode) -> &'static str {
    server_kind(mode).name()
}

fn write_load_line(out: &mut dyn Write, report: &load::LoadReport) -> std::io::Result<()> {
    if let Some(server) = &report.server {
        write!(out, "{server} server, ")?;
    }
    write!(
        out,
        "{} clients ({} at once): {} sessions in {:.3} s = {:.0} sessions/s; NUMBER round trip p50 {:.3} ms, \
         p99 {:.3} ms; {} failures; peak RSS {:.1} MB",
        report.clients,
        report.concurrency,
        report.sessions,
        report.seconds,
        report.sessions_per_second,
        report.p50_ms,
        report.p99_ms,
        report.failures,
        report.peak_rss_mb
    )?;
    if let (Some(cpu), Some(rss)) = (report.server_cpu_us_per_session, report.server_peak_rss_mb) {
        write!(
            out,
            "; server {cpu:.1} µs CPU per session, peak RSS {rss:.1} MB"
        )?;
    }
    if let (Some(total), Some(calls)) =
        (report.server_syscalls_per_session, &report.server_syscalls)
    {
        // The calls, most frequent first.
        let mut calls: Vec<(&String, &f64)> = calls.iter().collect();
        calls.sort_by(|a, b| b.1.total_cmp(a.1).then(a.0.cmp(b.0)));
        let listed: Vec<String> = calls
            .iter()
            .map(|(name, n)| format!("{name} {n:.2}"))
            .collect();
        write!(
            out,
            "; {total:.2} system calls per session ({})",
            listed.join(", ")
        )?;
    }
    writeln!(out)
}

/// One load run against a server in this process.
fn load_in_process(
    runtime: &tokio::runtime::Runtime,
    mode: ServerMode,
    clients: usize,
    mut concurrency: usize,
    fd_limit: u64,
) -> Result<load::LoadReport> {
    // Client and server sockets share this process's descriptors.
    let cap = usize::try_from(fd_limit.saturating_sub(200) / 2)
        .unwrap_or(usize::MAX)
        .max(1);
    if concurrency > cap {
        eprintln!(
            "concur: the file-descriptor limit is {fd_limit}: running at most {cap} clients at once \
             (use --server-process, or --addr with a server in its own process, for more)"
        );
        concurrency = cap;
    }
    let listener = guess::bind("127.0.0.1:0".parse()?)?;
    let addr = listener.local_addr()?;
    let mut report = match mode {
        ServerMode::Async => runtime.block_on(async {
            listener.set_nonblocking(true)?;
            let listener = tokio::net::TcpListener::from_std(listener)?;
            let stop = tokio_util::sync::CancellationToken::new();
            let server = tokio::spawn(guess::serve_async(
                listener,
                ServerConfig::default(),
                stop.clone().cancelled_owned(),
            ));
            let report = load::run(addr, clients, concurrency).await;
            stop.cancel();
            let _ = server.await;
            Ok::<_, anyhow::Error>(report)
        })?,
        ServerMode::Threads | ServerMode::Epoll => {
            let stop = CancelToken::new()?;
            let server_stop = stop.clone();
            let server = thread::spawn(move || {
                if mode == ServerMode::Epoll {
                    let threads = thread::available_parallelism().map_or(1, NonZeroUsize::get);
                    guess::serve_epoll(listener, ServerConfig::default(), threads, &server_stop)
                } else {
                    guess::serve_threads(listener, ServerConfig::default(), &server_stop)
                }
            });
            let report = runtime.block_on(load::run(addr, clients, concurrency));
            stop.cancel();
            let _ = server.join();
            report
        }
    };
    report.server = Some(mode_name(mode).to_owned());
    Ok(report)
}
