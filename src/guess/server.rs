//! The two servers: one OS thread per connection, or one tokio task per connection.
//! Both drive the same [`Session`], so they answer every line identically.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::io::{self, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use rustix::event::{PollFd, PollFlags, poll};
use rustix::net::{AddressFamily, SocketType};
use serde::Serialize;
use tokio::io::{AsyncWriteExt, BufReader as AsyncBufReader};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::lines::{ReadError, read_line, read_line_async};
use super::protocol::ProtocolError;
use super::session::Session;
use crate::process::CancelToken;

/// The listen backlog: enough for thousands of clients connecting at once (the kernel
/// caps it at `net.core.somaxconn`, 4096 here; std's default is 128).
pub const BACKLOG: i32 = 4096;

/// Where a server's lines go: its transcript (`Server: N is DECISION`) or its log.
#[derive(Clone)]
pub struct Sink(Option<Arc<dyn Fn(String) + Send + Sync>>);

impl fmt::Debug for Sink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_some() {
            "Sink(..)"
        } else {
            "Sink(null)"
        })
    }
}

impl Sink {
    /// Discards every line.
    pub fn null() -> Self {
        Sink(None)
    }

    /// Calls `f` with every line.
    pub fn new(f: impl Fn(String) + Send + Sync + 'static) -> Self {
        Sink(Some(Arc::new(f)))
    }

    /// Collects lines in memory, for tests and the tour.
    pub fn collect() -> (Self, Arc<Mutex<Vec<String>>>) {
        let lines = Arc::new(Mutex::new(Vec::new()));
        let target = Arc::clone(&lines);
        let sink = Sink::new(move |line| {
            target
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(line);
        });
        (sink, lines)
    }

    /// Sends a line, unless this sink discards.
    pub fn send(&self, line: impl FnOnce() -> String) {
        if let Some(f) = &self.0 {
            f(line());
        }
    }
}

/// How a server runs.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// The longest line accepted, in bytes.
    pub max_line: usize,
    /// After shutdown starts, how long open sessions may go on before being closed.
    pub grace: Duration,
    /// Receives `Server: N is DECISION` lines.
    pub transcript: Sink,
    /// Receives one line per session error and per accept failure.
    pub log: Sink,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            max_line: 1024,
            grace: Duration::from_secs(5),
            transcript: Sink::null(),
            log: Sink::null(),
        }
    }
}

/// What a server did, reported when it stops.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ServerStats {
    /// Connections accepted.
    pub sessions: u64,
    /// Sessions ended by a protocol error.
    pub protocol_errors: u64,
    /// Accept calls that failed (for example at the file-descriptor limit).
    pub accept_errors: u64,
    /// Sessions closed by the end of the grace period at shutdown.
    pub forced_closes: u64,
    /// The most sessions open at once.
    pub peak_sessions: u64,
}

#[derive(Default)]
struct Counters {
    sessions: AtomicU64,
    protocol_errors: AtomicU64,
    accept_errors: AtomicU64,
    forced_closes: AtomicU64,
    open: AtomicUsize,
    peak: AtomicUsize,
}

impl Counters {
    fn opened(&self) {
        self.sessions.fetch_add(1, Ordering::Relaxed);
        let open = self.open.fetch_add(1, Ordering::Relaxed) + 1;
        self.peak.fetch_max(open, Ordering::Relaxed);
    }

    fn closed(&self) {
        self.open.fetch_sub(1, Ordering::Relaxed);
    }

    fn stats(&self) -> ServerStats {
        ServerStats {
            sessions: self.sessions.load(Ordering::Relaxed),
            protocol_errors: self.protocol_errors.load(Ordering::Relaxed),
            accept_errors: self.accept_errors.load(Ordering::Relaxed),
            forced_closes: self.forced_closes.load(Ordering::Relaxed),
            peak_sessions: self.peak.load(Ordering::Relaxed) as u64,
        }
    }
}

/// Binds a listening socket with a large backlog and `SO_REUSEADDR` (so a restarted
/// server can take its port back while old connections sit in TIME_WAIT).
pub fn bind(addr: SocketAddr) -> io::Result<std::net::TcpListener> {
    let family = if addr.is_ipv4() {
        AddressFamily::INET
    } else {
        AddressFamily::INET6
    };
    let socket: OwnedFd = rustix::net::socket(family, SocketType::STREAM, None)?;
    rustix::net::sockopt::set_socket_reuseaddr(&socket, true)?;
    rustix::net::bind(&socket, &addr)?;
    rustix::net::listen(&socket, BACKLOG)?;
    Ok(std::net::TcpListener::from(socket))
}

/// What to do after a line: the reply to send, and whether to hang up.
struct Step {
    reply: Option<String>,
    close: bool,
}

/// One line through the session, with the transcript and the error log.
fn step(
    session: &mut Session,
    line: &str,
    peer: SocketAddr,
    config: &ServerConfig,
    counters: &Counters,
) -> Step {
    if line.is_empty() {
        // The book's `while command := await self.receive()` ends on an empty line.
        return Step {
            reply: None,
            close: true,
        };
    }
    match session.handle(line) {
        Ok(response) => {
            if let Some(line) = response.transcript {
                config.transcript.send(|| line);
            }
            Step {
                reply: response.reply,
                close: false,
            }
        }
        Err(err) => protocol_failure(&err, peer, config, counters),
    }
}

fn protocol_failure(
    err: &ProtocolError,
    peer: SocketAddr,
    config: &ServerConfig,
    counters: &Counters,
) -> Step {
    let close = err.ends_session();
    if close {
        counters.protocol_errors.fetch_add(1, Ordering::Relaxed);
        config.log.send(|| format!("session {peer} ended: {err}"));
    }
    Step {
        reply: Some(format!("ERROR {err}")),
        close,
    }
}

fn is_fd_exhaustion(err: &io::Error) -> bool {
    // EMFILE (process limit) and ENFILE (system limit).
    matches!(err.raw_os_error(), Some(24) | Some(23))
}

/// Logs an accept failure and, when descriptors ran out, says how long to back off
/// before trying again (so a full table does not turn the loop into a busy wait).
fn accept_failed(err: &io::Error, config: &ServerConfig, counters: &Counters) -> Option<Duration> {
    counters.accept_errors.fetch_add(1, Ordering::Relaxed);
    config
        .log
        .send(|| format!("accept failed: {err}; still serving"));
    is_fd_exhaustion(err).then_some(Duration::from_millis(50))
}

/// Open connections of the threaded server, so shutdown can wait for them and close
/// the ones still open after the grace period.
#[derive(Default)]
struct Registry {
    streams: Mutex<HashMap<u64, Arc<TcpStream>>>,
    emptied: Condvar,
}

impl Registry {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Arc<TcpStream>>> {
        self.streams.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn remove(&self, id: u64) {
        let mut streams = self.lock();
        streams.remove(&id);
        if streams.is_empty() {
            self.emptied.notify_all();
        }
    }

    /// Waits until no connection is open, or `deadline` passes; returns how many remain.
    fn wait_empty(&self, deadline: Option<Instant>) -> usize {
        let mut streams = self.lock();
        while !streams.is_empty() {
            match deadline {
                None => {
                    streams = self
                        .emptied
                        .wait(streams)
                        .unwrap_or_else(PoisonError::into_inner)
                }
                Some(deadline) => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        break;
                    }
                    streams = self
                        .emptied
                        .wait_timeout(streams, left)
                        .unwrap_or_else(PoisonError::into_inner)
                        .0;
                }
            }
        }
        streams.len()
    }
}

fn session_thread(
    stream: &TcpStream,
    peer: SocketAddr,
    seed: u64,
    config: &ServerConfig,
    counters: &Counters,
) {
    let mut session = Session::new(seed);
    // Reads and writes share the one socket (`&TcpStream` is both `Read` and `Write`):
    // a connection costs one descriptor, so running out of them shows up only at
    // accept, where it is logged.
    let mut reader = BufReader::new(stream);
    let mut writer = stream;
    loop {
        let line = match read_line(&mut reader, config.max_line) {
            Ok(Some(line)) => line,
            Ok(None) | Err(ReadError::Io(_)) => return,
            Err(ReadError::Protocol(err)) => {
                let step = protocol_failure(&err, peer, config, counters);
                if let Some(reply) = step.reply {
                    let _ = writer.write_all(format!("{reply}\n").as_bytes());
                }
                return;
            }
        };
        let step = step(&mut session, &line, peer, config, counters);
        if let Some(reply) = step.reply
            && writer.write_all(format!("{reply}\n").as_bytes()).is_err()
        {
            return;
        }
        if step.close {
            return;
        }
    }
}

/// The threaded server (the book's first version): one OS thread per connection.
///
/// Runs until `shutdown` is cancelled; then stops accepting, lets open sessions finish
/// for up to `config.grace`, closes the rest, and returns once every session thread
/// has ended.
pub fn serve_threads(
    listener: std::net::TcpListener,
    config: ServerConfig,
    shutdown: &CancelToken,
) -> io::Result<ServerStats> {
    listener.set_nonblocking(true)?;
    let config = Arc::new(config);
    let counters = Arc::new(Counters::default());
    let registry = Arc::new(Registry::default());
    let mut next_id = 0u64;
    loop {
        let mut fds = [
            PollFd::new(&listener, PollFlags::IN),
            PollFd::from_borrowed_fd(shutdown.fd(), PollFlags::IN),
        ];
        match poll(&mut fds, None) {
            Ok(_) | Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(e.into()),
        }
        if shutdown.is_cancelled() {
            break;
        }
        let (stream, peer) = match listener.accept() {
            Ok(accepted) => accepted,
            Err(e)
                if e.kind() == io::ErrorKind::WouldBlock
                    || e.kind() == io::ErrorKind::Interrupted =>
            {
                continue;
            }
            Err(e) => {
                if let Some(pause) = accept_failed(&e, &config, &counters) {
                    thread::sleep(pause);
                }
                continue;
            }
        };
        next_id += 1;
        let id = next_id;
        // Accepted sockets are blocking on Linux; make sure, as the listener is not.
        // No Nagle delay: every reply is one small line that the client is waiting for.
        let _ = stream.set_nonblocking(false);
        let _ = stream.set_nodelay(true);
        // The registry shares the socket (no second descriptor) so shutdown can close it.
        let stream = Arc::new(stream);
        registry.lock().insert(id, Arc::clone(&stream));
        counters.opened();
        let (config2, counters2, registry2) = (
            Arc::clone(&config),
            Arc::clone(&counters),
            Arc::clone(&registry),
        );
        let seed = rand::random();
        let spawned = thread::Builder::new()
            .name(format!("guess-{id}"))
            .spawn(move || {
                session_thread(&stream, peer, seed, &config2, &counters2);
                drop(stream);
                counters2.closed();
                registry2.remove(id);
            });
        if let Err(e) = spawned {
            counters.closed();
            registry.remove(id);
            config
                .log
                .send(|| format!("cannot start a session thread for {peer}: {e}"));
        }
    }
    drop(listener);
    let left = registry.wait_empty(Some(Instant::now() + config.grace));
    if left > 0 {
        counters
            .forced_closes
            .fetch_add(left as u64, Ordering::Relaxed);
        for stream in registry.lock().values() {
            let _ = stream.shutdown(std::net::Shutdown::Both);
        }
        registry.wait_empty(None);
    }
    Ok(counters.stats())
}

async fn session_task(
    stream: tokio::net::TcpStream,
    peer: SocketAddr,
    seed: u64,
    config: Arc<ServerConfig>,
    counters: Arc<Counters>,
) {
    let (read_half, mut writer) = stream.into_split();
    let mut reader = AsyncBufReader::new(read_half);
    let mut session = Session::new(seed);
    loop {
        let line = match read_line_async(&mut reader, config.max_line).await {
            Ok(Some(line)) => line,
            Ok(None) | Err(ReadError::Io(_)) => return,
            Err(ReadError::Protocol(err)) => {
                let step = protocol_failure(&err, peer, &config, &counters);
                if let Some(reply) = step.reply {
                    let _ = writer.write_all(format!("{reply}\n").as_bytes()).await;
                }
                return;
            }
        };
        let step = step(&mut session, &line, peer, &config, &counters);
        if let Some(reply) = step.reply
            && writer
                .write_all(format!("{reply}\n").as_bytes())
                .await
                .is_err()
        {
            return;
        }
        if step.close {
            return;
        }
    }
}

/// The async server (the book's `run_async_server`): one tokio task per connection.
///
/// Runs until `shutdown` completes (pass `tokio::signal::ctrl_c()`, or any future in
/// tests); then stops accepting, lets open sessions finish for up to `config.grace`,
/// closes the rest, and returns once every session task has ended.
pub async fn serve_async(
    listener: tokio::net::TcpListener,
    config: ServerConfig,
    shutdown: impl Future<Output = ()>,
) -> io::Result<ServerStats> {
    let config = Arc::new(config);
    let counters = Arc::new(Counters::default());
    let tracker = TaskTracker::new();
    let force = CancellationToken::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let _ = stream.set_nodelay(true);
                    counters.opened();
                    let (config, counters, force) = (Arc::clone(&config), Arc::clone(&counters), force.clone());
                    let seed = rand::random();
                    tracker.spawn(async move {
                        tokio::select! {
                            () = session_task(stream, peer, seed, config, Arc::clone(&counters)) => {}
                            () = force.cancelled() => {
                                counters.forced_closes.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                        counters.closed();
                    });
                }
                Err(e) => {
                    if let Some(pause) = accept_failed(&e, &config, &counters) {
                        tokio::time::sleep(pause).await;
                    }
                }
            },
        }
    }
    drop(listener);
    tracker.close();
    if tokio::time::timeout(config.grace, tracker.wait())
        .await
        .is_err()
    {
        force.cancel();
        tracker.wait().await;
    }
    Ok(counters.stats())
}
