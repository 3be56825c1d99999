//! `concur guess serve | play | load`.

use std::io::{self, Write};
use std::net::SocketAddr;
use std::thread;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::{Args, Subcommand, ValueEnum};

use super::Outcome;
use super::signals::SignalCancel;
use super::value::parse_duration;
use crate::guess::{self, ServerConfig, ServerStats, Sink, load};
use crate::process::CancelToken;

/// Which implementation to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Mode {
    /// One OS thread per connection (the book's first version).
    Threads,
    /// One tokio task per connection (the book's asyncio port).
    Async,
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
        accepting, lets open sessions finish for --grace, then closes them. The address it\n\
        listens on is printed on stderr (useful with port 0)."
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

    /// Threads or async.
    #[arg(long, value_enum, default_value_t = Mode::Async)]
    mode: Mode,

    /// Do not print the `Server: N is DECISION` lines.
    #[arg(long)]
    quiet: bool,

    /// The longest line accepted, in bytes.
    #[arg(long, default_value_t = 1024, value_name = "BYTES")]
    max_line: usize,

    /// After Ctrl-C, how long open sessions may go on before they are closed.
    #[arg(long, value_parser = parse_duration, default_value = "5s", value_name = "D")]
    grace: Duration,
}

#[derive(Debug, Args)]
struct PlayArgs {
    /// The server's address.
    #[arg(long, default_value = "127.0.0.1:1234")]
    addr: SocketAddr,

    /// Threaded or async client.
    #[arg(long, value_enum, default_value_t = Mode::Async)]
    mode: Mode,
}

#[derive(Debug, Args)]
#[command(
    after_help = "With no --addr, a server runs in this process (see --server). Its sockets count \
    against the same\nfile-descriptor limit as the clients', so --concurrency is then capped at half the \
    limit.\nSessions are games: each client plays the book's two."
)]
struct LoadArgs {
    /// The server to load [default: start one in this process].
    #[arg(long)]
    addr: Option<SocketAddr>,

    /// The in-process server's mode (without --addr).
    #[arg(long, value_enum, default_value_t = Mode::Async)]
    server: Mode,

    /// Clients to run.
    #[arg(long, default_value_t = 10_000, value_name = "N")]
    clients: usize,

    /// Clients connected at once at most [default: all of them].
    #[arg(long, value_name = "N")]
    concurrency: Option<usize>,

    /// Print one JSON object with clients, sessions, failures, seconds,
    /// sessions_per_second, p50_ms, p99_ms and peak_rss_mb.
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

/// A sink that prints each line from a dedicated thread, so that neither a session
/// thread nor a tokio worker ever blocks on a slow terminal or pipe.
fn printer(
    to_stderr: bool,
) -> Result<(
    Sink,
    thread::JoinHandle<()>,
    crossbeam_channel::Sender<String>,
)> {
    let (tx, rx) = crossbeam_channel::unbounded::<String>();
    let handle = thread::Builder::new()
        .name("guess-printer".into())
        .spawn(move || {
            for line in rx {
                let written = if to_stderr {
                    writeln!(io::stderr().lock(), "concur: {line}")
                } else {
                    writeln!(io::stdout().lock(), "{line}")
                };
                if written.is_err() {
                    return; // stdout closed: stop printing, keep serving
                }
            }
        })
        .context("cannot start the printer thread")?;
    let sender = tx.clone();
    Ok((Sink::new(move |line| drop(tx.send(line))), handle, sender))
}

fn print_stats(stats: &ServerStats) {
    eprintln!(
        "concur: served {} sessions ({} ended by protocol errors, {} accept errors, {} closed at shutdown, at most {} at once)",
        stats.sessions,
        stats.protocol_errors,
        stats.accept_errors,
        stats.forced_closes,
        stats.peak_sessions
    );
}

fn serve(args: ServeArgs) -> Result<Outcome> {
    let _ = crate::limits::raise_fd_limit();
    let listener =
        guess::bind(args.addr).with_context(|| format!("cannot listen on {}", args.addr))?;
    let local = listener.local_addr()?;
    let (transcript, transcript_thread, transcript_tx) = if args.quiet {
        (Sink::null(), None, None)
    } else {
        let (sink, handle, tx) = printer(false)?;
        (sink, Some(handle), Some(tx))
    };
    let (log, log_thread, log_tx) = printer(true)?;
    let config = ServerConfig {
        max_line: args.max_line,
        grace: args.grace,
        transcript,
        log,
    };
    eprintln!(
        "concur: listening on {local} ({} server)",
        match args.mode {
            Mode::Threads => "threaded",
            Mode::Async => "async",
        }
    );
    let stats = match args.mode {
        Mode::Threads => {
            let signals = SignalCancel::install("guess-signals")?;
            let stats = guess::serve_threads(listener, config, signals.token());
            drop(signals);
            stats?
        }
        Mode::Async => {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?;
            runtime.block_on(async {
                listener.set_nonblocking(true)?;
                let listener = tokio::net::TcpListener::from_std(listener)?;
                let mut term =
                    tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
                let shutdown = async move {
                    tokio::select! {
                        _ = tokio::signal::ctrl_c() => {}
                        _ = term.recv() => {}
                    }
                };
                guess::serve_async(listener, config, shutdown).await
            })?
        }
    };
    // Let the printers drain, then report.
    drop((transcript_tx, log_tx));
    if let Some(handle) = transcript_thread {
        let _ = handle.join();
    }
    let _ = log_thread.join();
    print_stats(&stats);
    Ok(Outcome::Success)
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
    for line in transcript {
        writeln!(out, "{line}")?;
    }
    Ok(Outcome::Success)
}

fn load_command(args: LoadArgs, out: &mut dyn Write) -> Result<Outcome> {
    let fd_limit = crate::limits::raise_fd_limit().unwrap_or(1024);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let mut concurrency = args.concurrency.unwrap_or(args.clients);
    let report = match args.addr {
        Some(addr) => runtime.block_on(load::run(addr, args.clients, concurrency)),
        None => {
            // Client and server sockets share this process's descriptors.
            let cap = usize::try_from(fd_limit.saturating_sub(200) / 2)
                .unwrap_or(usize::MAX)
                .max(1);
            if concurrency > cap {
                eprintln!(
                    "concur: the file-descriptor limit is {fd_limit}: running at most {cap} clients at once \
                     (use --addr with a server in its own process for more)"
                );
                concurrency = cap;
            }
            let listener = guess::bind("127.0.0.1:0".parse()?)?;
            let addr = listener.local_addr()?;
            match args.server {
                Mode::Async => runtime.block_on(async {
                    listener.set_nonblocking(true)?;
                    let listener = tokio::net::TcpListener::from_std(listener)?;
                    let stop = tokio_util::sync::CancellationToken::new();
                    let server = tokio::spawn(guess::serve_async(
                        listener,
                        ServerConfig::default(),
                        stop.clone().cancelled_owned(),
                    ));
                    let report = load::run(addr, args.clients, concurrency).await;
                    stop.cancel();
                    let _ = server.await;
                    Ok::<_, anyhow::Error>(report)
                })?,
                Mode::Threads => {
                    let stop = CancelToken::new()?;
                    let server_stop = stop.clone();
                    let server = thread::spawn(move || {
                        guess::serve_threads(listener, ServerConfig::default(), &server_stop)
                    });
                    let report = runtime.block_on(load::run(addr, args.clients, concurrency));
                    stop.cancel();
                    let _ = server.join();
                    report
                }
            }
        }
    };
    if args.json {
        writeln!(out, "{}", serde_json::to_string(&report)?)?;
    } else {
        writeln!(
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
    }
    for error in &report.errors {
        eprintln!("concur: a client failed: {error}");
    }
    Ok(if report.failures > 0 {
        Outcome::Failure
    } else {
        Outcome::Success
    })
}
