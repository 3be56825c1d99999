//! `concur guess load`: thousands of async clients playing at once.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::sync::Semaphore;

use super::client::play_async_at;
use crate::measure::peak_rss_bytes;
use crate::report::{Axis, LineChart, Panel, Point, Provenance, Series, Stroke};

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
}

/// Load runs as one chart: sessions per second and the server's CPU time per session
/// against clients, a line per server through the median of its runs.
pub fn chart(reports: &[LoadReport], command: &str) -> LineChart {
    let mut servers: Vec<&str> = Vec::new();
    for r in reports {
        let server = r.server.as_deref().unwrap_or("external");
        if !servers.contains(&server) {
            servers.push(server);
        }
    }
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
            "concur guess load: async clients each playing the book's two games; the server in its own process",
            command,
        ),
    }
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)].as_secs_f64() * 1000.0
}

/// Runs `clients` async clients against `addr`, at most `concurrency` at once, each
/// playing the book's two games. Call it inside a multi-threaded tokio runtime.
pub async fn run(addr: SocketAddr, clients: usize, concurrency: usize) -> LoadReport {
    let concurrency = concurrency.clamp(1, clients.max(1));
    let permits = Arc::new(Semaphore::new(concurrency));
    let start = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..clients {
        let permits = Arc::clone(&permits);
        tasks.spawn(async move {
            let _permit = permits.acquire_owned().await;
            let mut latencies = Vec::with_capacity(10);
            let outcome = play_async_at(addr, &mut latencies).await;
            (outcome.map_err(|e| crate::error_chain(&e)), latencies)
        });
    }
    let mut latencies = Vec::with_capacity(clients * 8);
    let (mut ok, mut failures) = (0, 0);
    let mut errors: Vec<String> = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok((Ok(_), mut l)) => {
                ok += 1;
                latencies.append(&mut l);
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
    latencies.sort_unstable();
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
        p50_ms: percentile(&latencies, 50.0),
        p99_ms: percentile(&latencies, 99.0),
        peak_rss_mb: peak_rss_bytes().map_or(0.0, |b| b as f64 / (1024.0 * 1024.0)),
        concurrency,
        errors,
        server: None,
        server_cpu_us_per_session: None,
        server_peak_rss_mb: None,
    }
}
