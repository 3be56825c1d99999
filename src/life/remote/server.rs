//! `concur life rules-server`: the game's rules as a TCP service with a round-trip delay.
//!
//! Each connection is two halves. The reader takes requests as they come, in whatever
//! chunks TCP delivers, and works out every reply at once; each reply is due `latency`
//! after its request arrived (a per-request deadline, not a blocking sleep). The writer
//! sends replies as they fall due. Requests read together share their arrival instant,
//! so one timer serves a whole chunk: a client with a million requests in flight costs
//! the server a queue of replies, not a million timers.
//!
//! **What a client can cost.** Every bound is in [`RulesServerConfig`]:
//!
//! * *Memory per connection.* Replies waiting for their deadline, or for a client that
//!   does not read them, count against a budget in bytes ([`DEFAULT_MAX_QUEUED_BYTES`]).
//!   When it is spent, the reader stops reading that connection's requests until the
//!   writer has sent some: TCP then slows the client down (backpressure), and nothing
//!   more is queued. The read buffer is allocated only once a request arrives.
//! * *A client that stops reading* is closed after `write_timeout`.
//! * *A client that says nothing* (no whole request, and no reply pending) is closed
//!   after `idle_timeout`: a request trickled a byte at a time is as idle as silence.
//! * *Connections.* At most `max_connections` at once; one more is answered with a
//!   refusal greeting ([`protocol::refusal`](super::protocol::refusal)) and closed,
//!   so descriptors are never exhausted by idle clients. Refusals and failed accepts
//!   are logged at most once a second, with their count.

use std::future::Future;
use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use serde::Serialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tokio::time::Instant;

use super::protocol::{GREETING, REQUEST_LEN, decode_request, encode_reply, refusal};
use crate::life::rule::Rule;
use crate::sink::Sink;

/// Bytes of replies one connection may have queued (1 MiB): at 8 bytes a reply and
/// 100 ms of latency, about 1.3 million replies a second per connection.
pub const DEFAULT_MAX_QUEUED_BYTES: usize = 1 << 20;

/// Connections served at once, unless the descriptor limit is lower.
pub const DEFAULT_MAX_CONNECTIONS: usize = 1024;

/// What a queued chunk of replies is charged at least: its allocation's own cost, so
/// that many tiny chunks cannot hide under the budget.
const CHUNK_OVERHEAD: usize = 64;

/// Bytes read from a connection at once: 1,024 requests.
const READ_BUFFER: usize = 16 * 1024;

/// How the server behaves.
#[derive(Clone, Debug)]
pub struct RulesServerConfig {
    /// Delay between a request's arrival and its reply.
    pub latency: Duration,
    /// The cell whose every request fails with `Problem with I/O`.
    pub fail_at: Option<(u32, u32)>,
    /// The rule it answers with.
    pub rule: Rule,
    /// Where connection events go (one line each).
    pub log: Sink,
    /// Bytes of replies one connection may have queued before its requests are no
    /// longer read.
    pub max_queued_bytes: usize,
    /// Connections served at once; more are refused.
    pub max_connections: usize,
    /// A connection with no whole request and no reply pending for this long is
    /// closed (`None`: never).
    pub idle_timeout: Option<Duration>,
    /// A connection that takes no reply for this long is closed (`None`: never).
    pub write_timeout: Option<Duration>,
}

impl Default for RulesServerConfig {
    fn default() -> Self {
        Self {
            latency: Duration::ZERO,
            fail_at: None,
            rule: Rule::CONWAY,
            log: Sink::default(),
            max_queued_bytes: DEFAULT_MAX_QUEUED_BYTES,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            idle_timeout: Some(Duration::from_secs(60)),
            write_timeout: Some(Duration::from_secs(10)),
        }
    }
}

/// What a server did, for the log and `--json`.
#[derive(Clone, Debug, Default, Serialize, PartialEq, Eq)]
pub struct RulesServerStats {
    /// Connections accepted and served.
    pub connections: u64,
    /// Requests answered with a state.
    pub answered: u64,
    /// Requests answered with an error (`--fail-at`, unreadable requests).
    pub failed: u64,
    /// Connections refused: `max_connections` were open.
    pub refused: u64,
    /// Connections closed because they were idle for `idle_timeout`.
    pub idle_closed: u64,
    /// Connections closed because the client took no reply for `write_timeout`.
    pub write_timeouts: u64,
}

#[derive(Default)]
struct Counters {
    connections: AtomicU64,
    answered: AtomicU64,
    failed: AtomicU64,
    refused: AtomicU64,
    idle_closed: AtomicU64,
    write_timeouts: AtomicU64,
    open: AtomicUsize,
}

/// Counts an open connection until dropped, however its task ends.
struct Open(Arc<Counters>);

impl Drop for Open {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Events too frequent to log one by one (refusals, failed accepts): the first is
/// logged, then at most one line a second with how many came since.
struct Coalesced {
    what: &'static str,
    unlogged: u64,
    last: Option<Instant>,
}

impl Coalesced {
    fn new(what: &'static str) -> Self {
        Self {
            what,
            unlogged: 0,
            last: None,
        }
    }

    fn event(&mut self, log: &Sink, detail: impl FnOnce() -> String) {
        self.unlogged += 1;
        let now = Instant::now();
        if self
            .last
            .is_none_or(|last| now.duration_since(last) >= Duration::from_secs(1))
        {
            let (count, what) = (self.unlogged, self.what);
            log.send(|| format!("{what} ({count} since the last such line): {}", detail()));
            self.unlogged = 0;
            self.last = Some(now);
        }
    }
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
    let (mut refusals, mut failures) = (
        Coalesced::new("refused a connection"),
        Coalesced::new("accept failed"),
    );
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let limit = config.max_connections;
                    if counters.open.load(Ordering::Relaxed) >= limit {
                        counters.refused.fetch_add(1, Ordering::Relaxed);
                        let why = format!("{limit} connections are open, the limit (--max-connections)");
                        // A new socket's send buffer is empty: the refusal fits at once,
                        // and no task or descriptor outlives this line.
                        let _ = stream.try_write(&refusal(&why));
                        refusals.event(&config.log, || format!("{peer}: {why}"));
                        continue;
                    }
                    counters.connections.fetch_add(1, Ordering::Relaxed);
                    counters.open.fetch_add(1, Ordering::Relaxed);
                    let open = Open(Arc::clone(&counters));
                    let (config, counters) = (Arc::clone(&config), Arc::clone(&counters));
                    tokio::spawn(async move {
                        config.log.send(|| format!("{peer}: connected"));
                        let outcome = connection(stream, &config, &counters).await;
                        config.log.send(|| match outcome {
                            Ok(requests) => format!("{peer}: closed after {requests} requests"),
                            Err(err) => format!("{peer}: dropped: {err}"),
                        });
                        drop(open);
                    });
                }
                // Out of descriptors, or a connection reset before it was accepted:
                // the listener itself is fine. Back off, so a full descriptor table is
                // not a busy loop.
                Err(err) => {
                    failures.event(&config.log, || err.to_string());
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
        }
    }
    Ok(RulesServerStats {
        connections: counters.connections.load(Ordering::Relaxed),
        answered: counters.answered.load(Ordering::Relaxed),
        failed: counters.failed.load(Ordering::Relaxed),
        refused: counters.refused.load(Ordering::Relaxed),
        idle_closed: counters.idle_closed.load(Ordering::Relaxed),
        write_timeouts: counters.write_timeouts.load(Ordering::Relaxed),
    })
}

/// Replies due at one instant, and the share of the connection's budget they hold.
struct Due {
    deadline: Instant,
    bytes: Vec<u8>,
    _budget: OwnedSemaphorePermit,
}

/// Milliseconds since `epoch`, for an instant shared between the two halves.
fn millis_since(epoch: Instant) -> u64 {
    u64::try_from(epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// Serves one connection until the client closes it; returns the requests it made.
async fn connection(
    stream: TcpStream,
    config: &RulesServerConfig,
    counters: &Counters,
) -> io::Result<u64> {
    stream.set_nodelay(true)?;
    let (mut reader, mut writer) = stream.into_split();
    // The budget, in bytes; a permit travels with its replies and is returned once
    // they are written.
    let budget = config.max_queued_bytes.clamp(1, Semaphore::MAX_PERMITS);
    let permits = Arc::new(Semaphore::new(budget));
    // Unbounded in chunks, bounded in bytes by the permits.
    let (due, mut replies) = mpsc::unbounded_channel::<Due>();
    let epoch = Instant::now();
    // When the writer last sent something: a client being answered is not idle.
    let last_write = AtomicU64::new(0);
    let write_timeout = config.write_timeout;
    let send = async {
        let stalled = || {
            counters.write_timeouts.fetch_add(1, Ordering::Relaxed);
            io::Error::new(
                io::ErrorKind::TimedOut,
                format!(
                    "the client took no reply for {} (it stopped reading)",
                    humantime::format_duration(write_timeout.unwrap_or_default())
                ),
            )
        };
        within(write_timeout, writer.write_all(&GREETING))
            .await
            .map_err(|_| stalled())??;
        while let Some(chunk) = replies.recv().await {
            tokio::time::sleep_until(chunk.deadline).await;
            within(write_timeout, writer.write_all(&chunk.bytes))
                .await
                .map_err(|_| stalled())??;
            last_write.store(millis_since(epoch), Ordering::Relaxed);
        }
        // Bounded too: a client that stopped reading must not hold the shutdown.
        let _ = within(write_timeout, writer.shutdown()).await;
        Ok::<_, io::Error>(())
    };
    let requests = AtomicU64::new(0);
    let receive = async {
        // Moved in, so that the writer sees the end of the queue once reading ends.
        let due = due;
        let mut buf = Vec::new();
        let (mut filled, mut last_request) = (0, 0u64);
        loop {
            // Nothing is allocated for a connection until it has sent something.
            let step = async {
                if buf.is_empty() {
                    reader.readable().await.map(|()| None)
                } else {
                    reader.read(&mut buf[filled..]).await.map(Some)
                }
            };
            let since = last_request.max(last_write.load(Ordering::Relaxed));
            let stepped = match config.idle_timeout {
                None => Some(step.await),
                Some(idle) => {
                    let deadline = epoch + Duration::from_millis(since) + idle;
                    tokio::time::timeout_at(deadline, step).await.ok()
                }
            };
            let n = match stepped {
                Some(Ok(Some(n))) => n,
                Some(Ok(None)) => {
                    buf = vec![0u8; READ_BUFFER];
                    continue;
                }
                Some(Err(err)) => return Err(err),
                // Idle for the whole timeout, unless replies are pending (the client is
                // being served) or one was written meanwhile.
                None if permits.available_permits() < budget => {
                    last_request = millis_since(epoch);
                    continue;
                }
                None if last_write.load(Ordering::Relaxed) != since => continue,
                None => {
                    counters.idle_closed.fetch_add(1, Ordering::Relaxed);
                    return Err(idle_error(config.idle_timeout.unwrap_or_default(), filled));
                }
            };
            if n == 0 {
                if filled > 0 {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        format!("the client closed mid-request ({filled} of {REQUEST_LEN} bytes)"),
                    ));
                }
                return Ok::<_, io::Error>(());
            }
            filled += n;
            let whole = filled - filled % REQUEST_LEN;
            if whole == 0 {
                continue;
            }
            last_request = millis_since(epoch);
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
                    Ok((state, neighbors)) => {
                        Ok(super::protocol::answer(config.rule, state, neighbors))
                    }
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
            requests.fetch_add(answered + failed, Ordering::Relaxed);
            buf.copy_within(whole..filled, 0);
            filled -= whole;
            // Waits here, reading nothing more, while the budget is spent.
            let cost = (out.len() + CHUNK_OVERHEAD).min(budget);
            let Ok(permit) = Arc::clone(&permits)
                .acquire_many_owned(u32::try_from(cost).unwrap_or(u32::MAX))
                .await
            else {
                return Ok(());
            };
            let chunk = Due {
                deadline,
                bytes: out,
                _budget: permit,
            };
            if due.send(chunk).is_err() {
                // The writer stopped: its error is the one to report.
                return Ok(());
            }
        }
    };
    // The writer failing (a client that stopped reading) ends the connection at once.
    // The reader ending (the client closed, or idled out) lets the writer send what is
    // queued, then close: the queue ends with the reader.
    let outcome = {
        tokio::pin!(send, receive);
        tokio::select! {
            sent = &mut send => sent,
            received = &mut receive => {
                let sent = send.await;
                received.and(sent)
            }
        }
    };
    outcome.map(|()| requests.load(Ordering::Relaxed))
}

/// `work`, given at most `limit` (`None`: as long as it takes).
async fn within<F: Future>(limit: Option<Duration>, work: F) -> Result<F::Output, ()> {
    match limit {
        Some(limit) => tokio::time::timeout(limit, work).await.map_err(drop),
        None => Ok(work.await),
    }
}

fn idle_error(idle: Duration, partial: usize) -> io::Error {
    let what = if partial > 0 {
        format!("only {partial} bytes of a request")
    } else {
        "no request".to_owned()
    };
    io::Error::new(
        io::ErrorKind::TimedOut,
        format!(
            "{what} in {} (--idle-timeout)",
            humantime::format_duration(idle)
        ),
    )
}
