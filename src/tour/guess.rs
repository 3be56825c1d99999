//! Item 61 in the tour: the guessing game, threaded then async.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::thread;
use std::time::Duration;

use super::{TourCharts, TourError, TourOptions, heading};
use crate::guess::{self, ServerConfig, Sink, load};
use crate::process::CancelToken;

fn io_error(err: impl std::error::Error + Send + Sync + 'static) -> TourError {
    TourError::Demo(std::io::Error::other(crate::error_chain(&err)))
}

fn print_transcripts(
    out: &mut dyn Write,
    client: &[guess::Round],
    server: &[String],
) -> std::io::Result<()> {
    for (c, s) in client
        .iter()
        .zip(server.iter().chain(std::iter::repeat(&String::new())))
    {
        writeln!(out, "  {c:<24} {s}")?;
    }
    Ok(())
}

/// The section's heading.
const TITLE: &str = "Item 61: know how to port threaded I/O to asyncio";

/// Runs the item 61 part of the tour, with its chart.
pub(super) fn run(
    out: &mut dyn Write,
    options: TourOptions,
    charts: &mut TourCharts,
) -> Result<(), TourError> {
    heading(out, TITLE)?;
    writeln!(
        out,
        "The book's number-guessing game: secret 3 in 1..5, then 12 in 10..15, over TCP on an\n\
         ephemeral port. Client lines on the left, the server's on the right.\n"
    )?;

    // Threads: a thread per connection, and a blocking client.
    let listener =
        guess::bind("127.0.0.1:0".parse().map_err(io_error)?).map_err(TourError::Demo)?;
    let addr = listener.local_addr().map_err(TourError::Demo)?;
    let (transcript, server_lines) = Sink::collect();
    let config = ServerConfig {
        transcript,
        ..ServerConfig::default()
    };
    let stop = CancelToken::new().map_err(TourError::Demo)?;
    let server_stop = stop.clone();
    let server = thread::spawn(move || guess::serve_threads(listener, config, &server_stop));
    let client = guess::play_threaded(addr);
    stop.cancel();
    let joined = server.join();
    let client = client.map_err(io_error)?;
    if let Ok(Err(e)) = joined {
        return Err(TourError::Demo(e));
    }
    writeln!(out, "threaded server, threaded client ({addr}):")?;
    print_transcripts(
        out,
        &client,
        &server_lines
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner),
    )?;

    // Async: a tokio task per connection, and an async client.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(TourError::Demo)?;
    let (transcript, server_lines) = Sink::collect();
    let config = ServerConfig {
        transcript,
        ..ServerConfig::default()
    };
    let (addr, stop, server) = start_async_server(&runtime, config)?;
    let client = runtime.block_on(guess::play_async_at(addr, &mut Vec::new()));
    stop.cancel();
    let _ = runtime.block_on(server);
    let client = client.map_err(io_error)?;
    writeln!(out, "\nasync server, async client ({addr}):")?;
    print_transcripts(
        out,
        &client,
        &server_lines
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner),
    )?;
    writeln!(
        out,
        "\nRust: the game logic (Session, Player) does no I/O, so both ports share it line for\n\
         line. Bad input ends only its own session with an ERROR line, and the book's endless\n\
         loop on an exhausted range is an error reply. `concur guess load` runs 10,000 clients."
    )?;
    hostile_clients(out, &runtime)?;
    charts.add(TITLE, under_load(out, options, &runtime)?);
    Ok(())
}

/// Both servers under load, each in its own process (`concur guess serve`), so that
/// the CPU time per session is the server's alone.
fn under_load(
    out: &mut dyn Write,
    options: TourOptions,
    runtime: &tokio::runtime::Runtime,
) -> Result<crate::report::LineChart, TourError> {
    let counts: &[usize] = if options.quick {
        &[10, 100]
    } else {
        &[10, 100, 1000]
    };
    let exe = std::env::current_exe().map_err(TourError::Demo)?;
    writeln!(
        out,
        "\nUnder load, each server in its own process, every client connected at once and\n\
         playing the book's two games:\n\n  {:<8} {:>8} {:>14} {:>22}",
        "server", "clients", "sessions/s", "server CPU µs/session"
    )?;
    let mut reports = Vec::new();
    for server in [load::Server::Async, load::Server::Threads] {
        for &clients in counts {
            let report = load::against_process(runtime, &exe, server, clients, clients, false)
                .map_err(io_error)?;
            if report.failures > 0 {
                return Err(TourError::Demo(std::io::Error::other(format!(
                    "{} of {clients} clients failed against the {} server: {}",
                    report.failures,
                    server.name(),
                    report.errors.join("; ")
                ))));
            }
            writeln!(
                out,
                "  {:<8} {:>8} {:>14.0} {:>22.1}",
                server.name(),
                clients,
                report.sessions_per_second,
                report.server_cpu_us_per_session.unwrap_or(f64::NAN)
            )?;
            reports.push(report);
        }
    }
    Ok(load::chart(&reports, options.command()))
}

/// An async server on an ephemeral port, and how to stop and await it.
type AsyncServer = (
    SocketAddr,
    tokio_util::sync::CancellationToken,
    tokio::task::JoinHandle<std::io::Result<guess::ServerStats>>,
);

fn start_async_server(
    runtime: &tokio::runtime::Runtime,
    config: ServerConfig,
) -> Result<AsyncServer, TourError> {
    let _inside = runtime.enter();
    let listener =
        guess::bind("127.0.0.1:0".parse().map_err(io_error)?).map_err(TourError::Demo)?;
    listener.set_nonblocking(true).map_err(TourError::Demo)?;
    let addr = listener.local_addr().map_err(TourError::Demo)?;
    let listener = tokio::net::TcpListener::from_std(listener).map_err(TourError::Demo)?;
    let stop = tokio_util::sync::CancellationToken::new();
    let server = runtime.spawn(guess::serve_async(
        listener,
        config,
        stop.clone().cancelled_owned(),
    ));
    Ok((addr, stop, server))
}

/// A connection to the demo server, as a raw protocol client.
struct Raw(BufReader<TcpStream>);

impl Raw {
    fn connect(addr: SocketAddr) -> std::io::Result<Self> {
        let stream = TcpStream::connect(addr)?;
        stream.set_read_timeout(Some(Duration::from_secs(10)))?;
        Ok(Self(BufReader::new(stream)))
    }

    fn ask(&mut self, line: &str) -> std::io::Result<String> {
        self.0.get_mut().write_all(line.as_bytes())?;
        let mut reply = String::new();
        self.0.read_line(&mut reply)?;
        Ok(reply.trim_end().to_owned())
    }
}

/// What the servers promise a hostile client, shown on an async server started with
/// small limits.
fn hostile_clients(
    out: &mut dyn Write,
    runtime: &tokio::runtime::Runtime,
) -> Result<(), TourError> {
    let idle = Duration::from_millis(300);
    let config = ServerConfig {
        max_sessions: Some(2),
        idle_timeout: Some(idle),
        ..ServerConfig::default()
    };
    let (addr, stop, server) = start_async_server(runtime, config)?;
    let demo = || -> std::io::Result<[String; 3]> {
        let mut first = Raw::connect(addr)?;
        let mut second = Raw::connect(addr)?;
        let served = [
            first.ask("PARAMS 1 9\nNUMBER\n")?,
            second.ask("PARAMS 1 9\nNUMBER\n")?,
        ];
        let mut third = Raw::connect(addr)?;
        let mut refused = String::new();
        third.0.read_line(&mut refused)?;
        // The first client now says nothing.
        let mut closed = String::new();
        first.0.read_line(&mut closed)?;
        Ok([
            served.join(" and "),
            refused.trim_end().to_owned(),
            closed.trim_end().to_owned(),
        ])
    };
    let result = demo();
    stop.cancel();
    let _ = runtime.block_on(server);
    let [served, refused, closed] = result.map_err(TourError::Demo)?;
    writeln!(
        out,
        "\nWhat a hostile client gets, from an async server limited to 2 sessions and {idle:?} idle:\n\
         \x20 clients 1 and 2 are served (guesses {served}); client 3 hears {refused:?}\n\
         \x20 client 1, silent for {idle:?}, hears {closed:?}"
    )?;
    if let Some(limit) = guess::thread_session_limit(None) {
        writeln!(
            out,
            "  the threaded server here serves at most {} sessions at once, refusing more with\n\
             \x20 `ERROR server full` where the OS would abort the process\n\
             \x20 ({})",
            limit.sessions, limit.reason
        )?;
    }
    writeln!(
        out,
        "A session holds a few hundred bytes whatever its client sends; transcript lines wait in\n\
         a bounded queue that drops (and counts) what stdout cannot take. See the README."
    )?;
    Ok(())
}
