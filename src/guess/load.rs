//! `concur guess load`: thousands of async clients playing at once.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::sync::Semaphore;

use super::client::play_async_at;
use crate::measure::peak_rss_bytes;

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
    }
}
