//! `concur life rules-server`: the game's rules as a TCP service with a round-trip delay.
//!
//! Each connection is two tasks. The reader takes requests as they come, in whatever
//! chunks TCP delivers, and works out every reply at once; each reply is due `latency`
//! after its request arrived (a per-request deadline, not a blocking sleep). The writer
//! sends replies as they fall due. Requests read together share their arrival instant,
//! so one timer serves a whole chunk: a client with a million requests in flight costs
//! the server a queue of replies, not a million timers.
//!
//! The queue between them is bounded ([`MAX_QUEUED_CHUNKS`] chunks), so a client that
//! sends faster than its replies fall due is slowed by TCP, not by the server's memory.

use std::future::Future;
use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::Serialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::protocol::{GREETING, REQUEST_LEN, decode_request, encode_reply};
use crate::sink::Sink;

/// Chunks of replies a connection may have waiting for their deadline.
pub const MAX_QUEUED_CHUNKS: usize = 16_384;

/// How the server behaves.
#[derive(Clone, Debug, Default)]
pub struct RulesServerConfig {
    /// Delay between a request's arrival and its reply.
    pub latency: Duration,
    /// The cell whose every request fails with `Problem with I/O`.
    pub fail_at: Option<(u32, u32)>,
    /// Where connection events go (one line each).
    pub log: Sink,
}

/// What a server did, for the log and `--json`.
#[derive(Clone, Debug, Default, Serialize, PartialEq, Eq)]
pub struct RulesServerStats {
    /// Connections accepted.
    pub connections: u64,
    /// Requests answered with a state.
    pub answered: u64,
    /// Requests answered with an error (`--fail-at`, unreadable requests).
    pub failed: u64,
}

#[derive(Default)]
struct Counters {
    connections: AtomicU64,
    answered: AtomicU64,
    failed: AtomicU64,
}

/// Serves until `shutdown` resolves, then returns what it did. Connections still open
/// are dropped with the runtime.
pub async fn serve(
    listener: TcpListener,
    config: RulesServerConfig,
    shutdown: impl Future<Output = ()>,
) -> io::Result<RulesServerStats> {
    let config = Arc::new(config);
    let counters = Arc::new(Counters::default());
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    counters.connections.fetch_add(1, Ordering::Relaxed);
                    let (config, counters) = (Arc::clone(&config), Arc::clone(&counters));
                    tokio::spawn(async move {
                        config.log.send(|| format!("{peer}: connected"));
                        let outcome = connection(stream, &config, &counters).await;
                        config.log.send(|| match outcome {
                            Ok(requests) => format!("{peer}: closed after {requests} requests"),
                            Err(err) => format!("{peer}: dropped: {err}"),
                        });
                    });
                }
                // Out of descriptors, or a connection reset before it was accepted:
                // the listener itself is fine.
                Err(err) => {
                    config.log.send(|| format!("accept failed: {err}"));
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            },
        }
    }
    Ok(RulesServerStats {
        connections: counters.connections.load(Ordering::Relaxed),
        answered: counters.answered.load(Ordering::Relaxed),
        failed: counters.failed.load(Ordering::Relaxed),
    })
}

/// Serves one connection until the client closes it; returns the requests it made.
async fn connection(
    stream: TcpStream,
    config: &RulesServerConfig,
    counters: &Counters,
) -> io::Result<u64> {
    stream.set_nodelay(true)?;
    let (mut reader, mut writer) = stream.into_split();
    let (due, mut replies) = mpsc::channel::<(Instant, Vec<u8>)>(MAX_QUEUED_CHUNKS);
    let send = async move {
        writer.write_all(&GREETING).await?;
        while let Some((deadline, bytes)) = replies.recv().await {
            tokio::time::sleep_until(deadline).await;
            writer.write_all(&bytes).await?;
        }
        writer.shutdown().await
    };
    let receive = async move {
        let mut buf = vec![0u8; 64 * 1024];
        let (mut filled, mut requests) = (0, 0u64);
        loop {
            let n = reader.read(&mut buf[filled..]).await?;
            if n == 0 {
                if filled > 0 {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        format!("the client closed mid-request ({filled} of {REQUEST_LEN} bytes)"),
                    ));
                }
                return Ok::<_, io::Error>(requests);
            }
            filled += n;
            let whole = filled - filled % REQUEST_LEN;
            let deadline = Instant::now() + config.latency;
            let mut out = Vec::with_capacity(whole / 2);
            let (mut answered, mut failed) = (0, 0);
            for frame in buf[..whole].chunks_exact(REQUEST_LEN) {
                let frame: &[u8; REQUEST_LEN] = frame.try_into().unwrap_or(&[0; REQUEST_LEN]);
                let request = decode_request(frame);
                let outcome = match request.body {
                    Ok(_) if config.fail_at == Some((request.y, request.x)) => {
                        Err("Problem with I/O")
                    }
                    Ok((state, neighbors)) => Ok(super::protocol::answer(state, neighbors)),
                    Err(reason) => Err(reason),
                };
                if outcome.is_ok() {
                    answered += 1;
                } else {
                    failed += 1;
                }
                encode_reply(request.id, outcome, &mut out);
            }
            counters.answered.fetch_add(answered, Ordering::Relaxed);
            counters.failed.fetch_add(failed, Ordering::Relaxed);
            requests += answered + failed;
            buf.copy_within(whole..filled, 0);
            filled -= whole;
            if !out.is_empty() && due.send((deadline, out)).await.is_err() {
                // The writer stopped: its error is the one to report.
                return Ok(requests);
            }
        }
    };
    let (sent, received) = tokio::join!(send, receive);
    let requests = received?;
    sent?;
    Ok(requests)
}
