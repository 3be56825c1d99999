//! `concur guess load`: thousands of async clients playing at once.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Instant;

use serde::Serialize;
use thiserror::Error;

use super::client::play_async_at;
use crate::measure::{
    ServerProcess, ServerStartError, SyscallCounts, SyscallTrace, TraceError, peak_rss_bytes,
};
#[cfg(feature = "cli")]
use crate::report::{Axis, LineChart, Panel, Point, Provenance, Series, Stroke, first_seen};

/// What a load run measured. `--json` prints exactly these keys.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LoadReport {
    /// Clients started.
    pub clients: usize,
    /// Games completed (each client plays the book's two).
    pub sessions: usize,
    /// Clients that failed (could not connect, or the connection broke).
    pub failures: usize,
    /// Wall time of the whole run.
    pub seconds: f64,
    /// Completed sessions per second.
    pub sessions_per_second: f64,
    /// Median round trip of a `NUMBER` request, milliseconds.
    pub p50_ms: f64,
    /// 99th percentile round trip, milliseconds.
    pub p99_ms: f64,
    /// Peak resident memory of this process (with the server in it, when in-process).
    pub peak_rss_mb: f64,
    /// Clients connected at once at most.
    pub concurrency: usize,
    /// Up to five distinct failure messages.
    pub errors: Vec<String>,
    /// The server's mode (`async` or `threads`), when this run started it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server: Option<String>,
    /// The server's CPU time (user + system) per session, µs, when it ran in a process
    /// of its own.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_cpu_us_per_session: Option<f64>,
    /// The server's peak resident memory, MiB, when it ran in a process of its own.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_peak_rss_mb: Option<f64>,
    /// With `--syscalls`: the server's system calls per session, counted by `strace -c
    /// -f` over a second run of the same load (tracing slows the server, so the CPU
    /// time comes from the untraced run).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_syscalls_per_session: Option<f64>,
    /// With `--syscalls`: the same, by system call name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_syscalls: Option<std::collections::BTreeMap<String, f64>>,
    /// With `--syscalls`: of those, the calls that failed (`EAGAIN` and the like) per
    /// session, by name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_failed_syscalls: Option<std::collections::BTreeMap<String, f64>>,
}

/// The server a load run starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Server {
    /// A thread per connection.
    Threads,
    /// A tokio task per connection.
    Async,
    /// Bare epoll, a thread per core: the floor.
    Epoll,
}

impl Server {
    /// Its `--mode` name.
    pub fn name(self) -> &'static str {
        match self {
            Server::Threads => "threads",
            Server::Async => "async",
            Server::Epoll => "epoll",
        }
    }
}

/// A load run whose server could not be run or measured.
#[derive(Debug, Error)]
pub enum LoadError {
    /// The server did not start.
    #[error("the {server} server did not start")]
    Start {
        /// Its mode.
        server: &'static str,
        /// Why.
        #[source]
        source: ServerStartError,
    },
    /// The server printed an address that is not one.
    #[error("the server printed a bad address {0:?}")]
    Address(String),
    /// It could not be stopped.
    #[error("cannot stop the {server} server")]
    Stop {
        /// Its mode.
        server: &'static str,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Its system calls could not be counted.
    #[error("cannot count the {server} server's system calls")]
    Trace {
        /// Its mode.
        server: &'static str,
        /// Why.
        #[source]
        source: TraceError,
    },
    /// Its last line was not its `--json` report.
    #[error("the {server} server's last line is not its --json report: {line:?}")]
    Report {
        /// Its mode.
        server: &'static str,
        /// What it printed last.
        line: String,
    },
}

/// Runs `clients` clients (at most `concurrency` at once) against `program guess
/// serve` started as a child process, so that the server's CPU time and memory are its
/// own: its `--json` report, printed as it stops, gives its CPU time from listening
/// on (to the nanosecond) and its peak RSS.
///
/// With `syscalls`, the same load runs a second time against a fresh server with
/// `strace -c -f` attached for the whole load, and the report gains the server's
/// system calls per session.
pub fn against_process(
    runtime: &tokio::runtime::Runtime,
    program: &Path,
    server: Server,
    clients: usize,
    concurrency: usize,
    syscalls: bool,
) -> Result<LoadReport, LoadError> {
    let name = server.name();
    let (mut report, stats, _) =
        process_run(runtime, program, server, clients, concurrency, false)?;
    report.server = Some(name.to_owned());
    if report.sessions > 0 {
        report.server_cpu_us_per_session = stats["serving_cpu_seconds"]
            .as_f64()
            .map(|s| s * 1e6 / report.sessions as f64);
    }
    report.server_peak_rss_mb = stats["peak_rss_mb"].as_f64();
    if syscalls {
        let (traced, _, counts) =
            process_run(runtime, program, server, clients, concurrency, true)?;
        if let Some(counts) = counts
            && traced.sessions > 0
        {
            let per = |map: &std::collections::BTreeMap<String, u64>| {
                map.iter()
                    .map(|(k, &v)| (k.clone(), v as f64 / traced.sessions as f64))
                    .collect()
            };
            report.server_syscalls_per_session =
                Some(counts.total() as f64 / traced.sessions as f64);
            report.server_syscalls = Some(per(&counts.calls));
            report.server_failed_syscalls = Some(per(&counts.errors));
        }
        report.failures += traced.failures;
        for error in traced.errors {
            if report.errors.len() < 5 && !report.errors.contains(&error) {
                report.errors.push(error);
            }
        }
    }
    Ok(report)
}

/// One load against a fresh server process, traced or not: the load's report, the
/// server's `--json` report, and its system calls if traced.
fn process_run(
    runtime: &tokio::runtime::Runtime,
    program: &Path,
    server: Server,
    clients: usize,
    concurrency: usize,
    trace: bool,
) -> Result<(LoadReport, serde_json::Value, Option<SyscallCounts>), LoadError> {
    let name = server.name();
    let args = [
        "guess",
        "serve",
        "--quiet",
        "--json",
        "--addr",
        "127.0.0.1:0",
        "--mode",
        name,
    ];
    let process = ServerProcess::start(program, &args).map_err(|source| LoadError::Start {
        server: name,
        source,
    })?;
    let addr: SocketAddr = process
        .addr()
        .parse()
        .map_err(|_| LoadError::Address(process.addr().to_owned()))?;
    let tracer = trace
        .then(|| SyscallTrace::attach(process.pid()))
        .transpose()
        .map_err(|source| LoadError::Trace {
            server: name,
            source,
        })?;
    let report = runtime.block_on(run(addr, clients, concurrency));
    let counts = tracer
        .map(SyscallTrace::finish)
        .transpose()
        .map_err(|source| LoadError::Trace {
            server: name,
            source,
        })?;
    let line = process.stop().map_err(|source| LoadError::Stop {
        server: name,
        source,
    })?;
    let stats: serde_json::Value =
        serde_json::from_str(&line).map_err(|_| LoadError::Report { server: name, line })?;
    Ok((report, stats, counts))
}

#[cfg(feature = "cli")]
/// Load runs as one chart: sessions per second and the server's CPU time per session
/// against clients, a line per server through the median of its runs.
pub(crate) fn chart(reports: &[LoadReport], command: &str) -> LineChart {
    let servers = first_seen(
        reports
            .iter()
            .map(|r| r.server.as_deref().unwrap_or("external")),
    );
    let line = |value: &dyn Fn(&LoadReport) -> Option<f64>| -> Vec<Series> {
        servers
            .iter()
            .enumerate()
            .map(|(colour, &server)| {
                let runs: Vec<&LoadReport> = reports
                    .iter()
                    .filter(|r| r.server.as_deref().unwrap_or("external") == server)
                    .collect();
                let mut clients: Vec<usize> = runs.iter().map(|r| r.clients).collect();
                clients.sort_unstable();
                clients.dedup();
                let points = clients
                    .iter()
                    .filter_map(|&n| {
                        let repeats: Vec<f64> = runs
                            .iter()
                            .filter(|r| r.clients == n)
                            .filter_map(|r| value(r))
                            .collect();
                        Point::of_repeats(n as f64, &repeats)
                    })
                    .collect();
                Series {
                    name: format!("{server} server"),
                    colour,
                    stroke: Stroke::Solid,
                    points,
                }
            })
            .collect()
    };
    LineChart {
        title: "concur guess: sessions per second and server CPU per session".into(),
        panels: vec![
            Panel {
                title: "throughput (median; whiskers: min-max of the runs)".into(),
                x: Axis::log("clients"),
                y: Axis::linear("sessions per second"),
                series: line(&|r| Some(r.sessions_per_second)),
            },
            Panel {
                title: "server CPU (user + system)".into(),
                x: Axis::log("clients"),
                y: Axis::linear("server CPU µs per session"),
                series: line(&|r| r.server_cpu_us_per_session),
            },
        ],
        provenance: Provenance::here(
            "async clients, each playing the book's two games; each server in its own process",
            command,
        ),
    }
}

/// Runs `clients` async clients against `addr`, at most `concurrency` at once, each
/// playing the book's two games. Call it inside a multi-threaded tokio runtime.
pub async fn run(addr: SocketAddr, clients: usize, concurrency: usize) -> LoadReport {
    let concurrency = concurrency.clamp(1, clients.max(1));
    let start = Instant::now();
    // At most `concurrency` clients exist at once, so memory follows the concurrency,
    // not the number of clients; round trips are sampled in bounded memory.
    let mut tasks = tokio::task::JoinSet::new();
    let mut started = 0;
    let mut latencies = crate::measure::Samples::default();
    let (mut ok, mut failures) = (0, 0);
    let mut errors: Vec<String> = Vec::new();
    loop {
        while started < clients && tasks.len() < concurrency {
            started += 1;
            tasks.spawn(async move {
                let mut latencies = Vec::with_capacity(10);
                let outcome = play_async_at(addr, &mut latencies).await;
                (outcome.map_err(|e| crate::error_chain(&e)), latencies)
            });
        }
        let Some(joined) = tasks.join_next().await else {
            break;
        };
        match joined {
            Ok((Ok(_), l)) => {
                ok += 1;
                l.into_iter().for_each(|d| latencies.push(d));
            }
            Ok((Err(e), _)) => {
                failures += 1;
                if errors.len() < 5 && !errors.contains(&e) {
                    errors.push(e);
                }
            }
            Err(e) => {
                failures += 1;
                if errors.len() < 5 {
                    errors.push(format!("client task failed: {e}"));
                }
            }
        }
    }
    let seconds = start.elapsed().as_secs_f64();
    let sessions = ok * super::BOOK_GAMES.len();
    LoadReport {
        clients,
        sessions,
        failures,
        seconds,
        sessions_per_second: if seconds > 0.0 {
            sessions as f64 / seconds
        } else {
            0.0
        },
        p50_ms: latencies.percentile(50.0) * 1000.0,
        p99_ms: latencies.percentile(99.0) * 1000.0,
        peak_rss_mb: peak_rss_bytes().map_or(0.0, |b| b as f64 / (1024.0 * 1024.0)),
        concurrency,
        errors,
        server: None,
        server_cpu_us_per_session: None,
        server_peak_rss_mb: None,
        server_syscalls_per_session: None,
        server_syscalls: None,
        server_failed_syscalls: None,
    }
}
