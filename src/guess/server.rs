//! The two servers: one OS thread per connection, or one tokio task per connection.
//! Both drive the same [`Session`], so they answer every line identically, and both
//! keep the same promises to a hostile or careless client:
//!
//! * **Memory per connection is a small constant.** A session is a few words
//!   ([`Session`]), a line is at most `max_line` bytes, and what a client says is echoed
//!   at most 80 bytes at a time. Transcript and log lines go to a [`Sink`]; the CLI's is
//!   a [`crate::sink::Printer`], whose bounded queue drops and counts what its output
//!   does not take, so a client flooding `REPORT` lines cannot grow the server.
//! * **No connection is held for ever.** A connection that sends no complete line for
//!   `idle_timeout` is closed, and so is one that does not take a reply within
//!   `write_timeout` (a client that stopped reading).
//! * **The threaded server never starts a thread the OS cannot give it.** Past about
//!   16,000 threads here a new thread's own set-up `mmap` fails and Rust aborts the
//!   whole process, dropping every client. So it computes its thread budget at start
//!   ([`crate::limits::thread_budget`]) and answers connections past it, or past
//!   `max_sessions`, with one `ERROR server full` line.

use std::collections::HashMap;
use std::future::Future;
use std::io::{self, BufReader, Read, Write};
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
pub use crate::sink::Sink;

/// The listen backlog: enough for thousands of clients connecting at once (the kernel
/// caps it at `net.core.somaxconn`, 4096 here; std's default is 128).
pub const BACKLOG: i32 = 4096;

/// The stack of a threaded session. A session needs little (its buffers are on the
/// heap); a small stack keeps 10,000 threads' address space near 1.3 GB instead of 20.
pub const SESSION_STACK: usize = 128 << 10;

/// Threads the threaded server leaves to the rest of the process (its printers, the
/// signal thread, the allocator's needs) out of the budget the OS gives it.
const THREAD_RESERVE: usize = 64;

/// The read buffer of an async session, in bytes.
const SESSION_BUFFER: usize = 1024;

/// The reply to a connection past the session limit.
pub const SERVER_FULL: &str = "ERROR server full";

/// How a server runs.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// The longest line accepted, in bytes.
    pub max_line: usize,
    /// After shutdown starts, how long open sessions may go on before being closed.
    pub grace: Duration,
    /// A connection that sends no complete line for this long is closed (`None`: never).
    pub idle_timeout: Option<Duration>,
    /// A connection that does not take a reply within this long is closed (`None`:
    /// wait for ever).
    pub write_timeout: Option<Duration>,
    /// The most sessions served at once; connections past it get `ERROR server full`.
    /// The threaded server also caps it at its thread budget. `None`: no limit but
    /// the OS's.
    pub max_sessions: Option<usize>,
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
            idle_timeout: Some(Duration::from_secs(60)),
            write_timeout: Some(Duration::from_secs(10)),
            max_sessions: None,
            transcript: Sink::null(),
            log: Sink::null(),
        }
    }
}

/// What a server did, reported when it stops.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ServerStats {
    /// Connections accepted and served.
    pub sessions: u64,
    /// Sessions ended by a protocol error.
    pub protocol_errors: u64,
    /// Sessions closed because no complete line came within the idle timeout.
    pub idle_closes: u64,
    /// Sessions closed because the client did not take a reply within the write timeout.
    pub write_timeouts: u64,
    /// Connections refused with `ERROR server full`.
    pub refused: u64,
    /// Accept calls that failed (for example at the file-descriptor limit).
    pub accept_errors: u64,
    /// Sessions closed by the end of the grace period at shutdown.
    pub forced_closes: u64,
    /// The most sessions open at once.
    pub peak_sessions: u64,
    /// The session limit in force (`None`: none but the OS's).
    pub session_limit: Option<u64>,
}

#[derive(Default)]
pub(super) struct Counters {
    sessions: AtomicU64,
    protocol_errors: AtomicU64,
    idle_closes: AtomicU64,
    write_timeouts: AtomicU64,
    refused: AtomicU64,
    pub(super) accept_errors: AtomicU64,
    pub(super) forced_closes: AtomicU64,
    open: AtomicUsize,
    peak: AtomicUsize,
}

impl Counters {
    pub(super) fn opened(&self) {
        self.sessions.fetch_add(1, Ordering::Relaxed);
        let open = self.open.fetch_add(1, Ordering::Relaxed) + 1;
        self.peak.fetch_max(open, Ordering::Relaxed);
    }

    pub(super) fn closed(&self) {
        self.open.fetch_sub(1, Ordering::Relaxed);
    }

    pub(super) fn stats(&self, limit: Option<usize>) -> ServerStats {
        ServerStats {
            sessions: self.sessions.load(Ordering::Relaxed),
            protocol_errors: self.protocol_errors.load(Ordering::Relaxed),
            idle_closes: self.idle_closes.load(Ordering::Relaxed),
            write_timeouts: self.write_timeouts.load(Ordering::Relaxed),
            refused: self.refused.load(Ordering::Relaxed),
            accept_errors: self.accept_errors.load(Ordering::Relaxed),
            forced_closes: self.forced_closes.load(Ordering::Relaxed),
            peak_sessions: self.peak.load(Ordering::Relaxed) as u64,
            session_limit: limit.map(|n| n as u64),
        }
    }
}

/// The session limit and what sets it, in words.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionLimit {
    /// Sessions served at once at most.
    pub sessions: usize,
    /// Why: `--max-sessions`, or the OS limit on threads.
    pub reason: String,
}

/// The threaded server's session limit: `max_sessions`, capped at the threads the OS
/// can still give this process (less a reserve). `None` when neither limit is known.
pub fn thread_session_limit(max_sessions: Option<usize>) -> Option<SessionLimit> {
    let budget = crate::limits::thread_budget(SESSION_STACK).map(|b| SessionLimit {
        sessions: b.threads.saturating_sub(THREAD_RESERVE).max(1),
        reason: format!("the thread budget: {}", b.limit),
    });
    let asked = max_sessions.map(|n| SessionLimit {
        sessions: n,
        reason: "--max-sessions".to_owned(),
    });
    [budget, asked]
        .into_iter()
        .flatten()
        .min_by_key(|l| l.sessions)
}

/// Binds a listening socket with a large backlog, `SO_REUSEADDR` (so a restarted
/// server can take its port back while old connections sit in TIME_WAIT) and
/// `TCP_NODELAY`, which Linux copies to every accepted socket: every reply is one small
/// line the client waits for, and setting it here saves a `setsockopt` per connection.
pub fn bind(addr: SocketAddr) -> io::Result<std::net::TcpListener> {
    let family = if addr.is_ipv4() {
        AddressFamily::INET
    } else {
        AddressFamily::INET6
    };
    let socket: OwnedFd = rustix::net::socket(family, SocketType::STREAM, None)?;
    rustix::net::sockopt::set_socket_reuseaddr(&socket, true)?;
    rustix::net::sockopt::set_tcp_nodelay(&socket, true)?;
    rustix::net::bind(&socket, &addr)?;
    rustix::net::listen(&socket, BACKLOG)?;
    Ok(std::net::TcpListener::from(socket))
}

/// What to do after a line: the reply to send, and whether to hang up.
pub(super) struct Step {
    pub(super) reply: Option<String>,
    pub(super) close: bool,
}

/// One line through the session, with the transcript and the error log.
pub(super) fn step(
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

pub(super) fn protocol_failure(
    err: &ProtocolError,
    peer: SocketAddr,
    config: &ServerConfig,
    counters: &Counters,
) -> Step {
    let close = err.ends_session();
    if close {
        let counter = match err {
            ProtocolError::Idle { .. } => &counters.idle_closes,
            _ => &counters.protocol_errors,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        config.log.send(|| format!("session {peer} ended: {err}"));
    }
    Step {
        reply: Some(format!("ERROR {err}")),
        close,
    }
}

/// Whether an I/O error is a socket timeout running out (`SO_RCVTIMEO`/`SO_SNDTIMEO`
/// report `EAGAIN`).
fn is_timeout(err: &io::Error) -> bool {
    matches!(
        err.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

/// A reply could not be written: log it if the client stopped reading, and end.
fn write_failed(err: &io::Error, peer: SocketAddr, config: &ServerConfig, counters: &Counters) {
    if is_timeout(err) {
        counters.write_timeouts.fetch_add(1, Ordering::Relaxed);
        config.log.send(|| {
            format!(
                "session {peer} ended: it took no reply for {:?} (the client stopped reading)",
                config.write_timeout.unwrap_or_default()
            )
        });
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

/// Counts and logs a refused connection. The caller writes [`SERVER_FULL`] and closes.
fn refused(peer: SocketAddr, why: &str, config: &ServerConfig, counters: &Counters) {
    counters.refused.fetch_add(1, Ordering::Relaxed);
    config
        .log
        .send(|| format!("refused {peer}: server full ({why})"));
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

/// The socket as a threaded session reads it: a whole line must arrive by `deadline`,
/// so a client that trickles a byte at a time is as idle as a silent one.
struct LineClock<'a> {
    stream: &'a TcpStream,
    deadline: Option<Instant>,
}

impl Read for LineClock<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if let Some(deadline) = self.deadline {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(io::ErrorKind::TimedOut.into());
            }
            self.stream.set_read_timeout(Some(left))?;
        }
        let mut stream = self.stream;
        stream.read(buf)
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
    if stream.set_write_timeout(config.write_timeout).is_err() {
        return;
    }
    // Reads and writes share the one socket (`&TcpStream` is both `Read` and `Write`):
    // a connection costs one descriptor, so running out of them shows up only at
    // accept, where it is logged.
    let mut reader = BufReader::new(LineClock {
        stream,
        deadline: None,
    });
    let mut writer = stream;
    loop {
        reader.get_mut().deadline = config.idle_timeout.map(|idle| Instant::now() + idle);
        let step = match read_line(&mut reader, config.max_line) {
            Ok(Some(line)) => step(&mut session, &line, peer, config, counters),
            Ok(None) => return,
            Err(ReadError::Io(e)) if is_timeout(&e) => {
                let after = config.idle_timeout.unwrap_or_default();
                protocol_failure(&ProtocolError::Idle { after }, peer, config, counters)
            }
            Err(ReadError::Io(_)) => return,
            Err(ReadError::Protocol(err)) => protocol_failure(&err, peer, config, counters),
        };
        if let Some(reply) = step.reply
            && let Err(e) = writer.write_all(format!("{reply}\n").as_bytes())
        {
            write_failed(&e, peer, config, counters);
            return;
        }
        if step.close {
            return;
        }
    }
}

/// Answers a connection past the limit with one line and closes it. The socket is
/// fresh, so the short write fits its buffer; it is made non-blocking all the same, so
/// that the accept loop can never wait on a client.
fn refuse_threaded(stream: TcpStream) {
    let _ = stream.set_nonblocking(true);
    let _ = (&stream).write_all(format!("{SERVER_FULL}\n").as_bytes());
}

/// The threaded server (the book's first version): one OS thread per connection.
///
/// Serves at most [`thread_session_limit`] sessions at once, refusing the rest with
/// [`SERVER_FULL`]. Runs until `shutdown` is cancelled; then stops accepting, lets open
/// sessions finish for up to `config.grace`, closes the rest, and returns once every
/// session thread has ended.
///
/// ```
/// use std::net::SocketAddr;
/// use concur::guess::{self, ServerConfig};
/// use concur::process::CancelToken;
///
/// let listener = guess::bind(SocketAddr::from(([127, 0, 0, 1], 0))).unwrap();
/// let addr = listener.local_addr().unwrap();
/// let stop = CancelToken::new().unwrap();
/// let server = std::thread::spawn({
///     let stop = stop.clone();
///     move || guess::serve_threads(listener, ServerConfig::default(), &stop)
/// });
/// let rounds = guess::play_threaded(addr).unwrap(); // the book's two games
/// // Game 1 has 5 guesses for 5 numbers: it always ends with the secret, 3.
/// let game1 = rounds.iter().filter(|r| r.game == 1).last().unwrap();
/// assert_eq!(game1.to_string(), "Client: 3 is Correct");
/// stop.cancel();
/// assert_eq!(server.join().unwrap().unwrap().sessions, 1);
/// ```
pub fn serve_threads(
    listener: std::net::TcpListener,
    config: ServerConfig,
    shutdown: &CancelToken,
) -> io::Result<ServerStats> {
    listener.set_nonblocking(true)?;
    let limit = thread_session_limit(config.max_sessions);
    if let Some(limit) = &limit {
        config.log.send(|| {
            format!(
                "serving at most {} sessions at once (the limit set by {})",
                limit.sessions, limit.reason
            )
        });
    }
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
        if let Some(limit) = &limit
            && counters.open.load(Ordering::Relaxed) >= limit.sessions
        {
            let why = format!(
                "{} sessions open, the limit set by {}",
                limit.sessions, limit.reason
            );
            refused(peer, &why, &config, &counters);
            refuse_threaded(stream);
            continue;
        }
        next_id += 1;
        let id = next_id;
        // Accepted sockets are blocking (Linux's accept does not pass on the listener's
        // O_NONBLOCK), and have no Nagle delay (`TCP_NODELAY` does pass on, see [`bind`]).
        // The registry shares the socket (no second descriptor) so shutdown can close it.
        let stream = Arc::new(stream);
        registry.lock().insert(id, Arc::clone(&stream));
        counters.opened();
        let (config2, counters2, registry2, stream2) = (
            Arc::clone(&config),
            Arc::clone(&counters),
            Arc::clone(&registry),
            Arc::clone(&stream),
        );
        let seed = rand::random();
        let spawned = thread::Builder::new()
            .name(format!("guess-{id}"))
            .stack_size(SESSION_STACK)
            .spawn(move || {
                session_thread(&stream2, peer, seed, &config2, &counters2);
                drop(stream2);
                counters2.closed();
                registry2.remove(id);
            });
        if let Err(e) = spawned {
            // The OS said no cleanly (EAGAIN): a limit the budget does not see, such
            // as the task limit of a container. The client hears why.
            counters.closed();
            counters.sessions.fetch_sub(1, Ordering::Relaxed);
            registry.remove(id);
            refused(
                peer,
                &format!("cannot start a session thread: {e}"),
                &config,
                &counters,
            );
            if let Some(stream) = Arc::into_inner(stream) {
                refuse_threaded(stream);
            }
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
    Ok(counters.stats(limit.map(|l| l.sessions)))
}

/// Writes a reply within the write timeout. The reply almost always fits the socket's
/// buffer at once, so that is tried first, without a timer.
async fn write_reply(
    writer: &mut AsyncBufReader<tokio::net::TcpStream>,
    reply: &str,
    timeout: Option<Duration>,
) -> io::Result<()> {
    let line = format!("{reply}\n");
    let written = match writer.get_ref().try_write(line.as_bytes()) {
        Ok(n) => n,
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => 0,
        Err(e) => return Err(e),
    };
    let rest = &line.as_bytes()[written..];
    if rest.is_empty() {
        return Ok(());
    }
    let write = writer.write_all(rest);
    match timeout {
        Some(limit) => tokio::time::timeout(limit, write)
            .await
            .unwrap_or_else(|_| Err(io::ErrorKind::TimedOut.into())),
        None => write.await,
    }
}

/// Reads the next line, or reports the connection idle when none completes within
/// `idle` of `started`. The timer is armed once per connection and moved only when it
/// fires early, so a busy connection pays no timer operation per line.
async fn next_line(
    reader: &mut AsyncBufReader<tokio::net::TcpStream>,
    max_line: usize,
    idle: Option<(Duration, Instant)>,
    timer: &mut std::pin::Pin<&mut tokio::time::Sleep>,
) -> Result<Option<String>, ReadError> {
    let Some((idle, started)) = idle else {
        return read_line_async(reader, max_line).await;
    };
    // The read lives across the timer's early wake-ups: a line read half-way must not
    // be dropped.
    let read = read_line_async(reader, max_line);
    tokio::pin!(read);
    loop {
        tokio::select! {
            line = &mut read => return line,
            () = timer.as_mut() => {
                let deadline = started + idle;
                if Instant::now() >= deadline {
                    return Err(ReadError::Protocol(ProtocolError::Idle { after: idle }));
                }
                timer.as_mut().reset(deadline.into());
            }
        }
    }
}

async fn session_task(
    stream: tokio::net::TcpStream,
    peer: SocketAddr,
    seed: u64,
    config: Arc<ServerConfig>,
    counters: Arc<Counters>,
) {
    // One stream for both directions, not `into_split`: dropping an owned write half
    // calls `shutdown` before the `close`, a system call the close makes needless. The
    // buffer is small (lines are short; a longer one takes several reads) so that
    // thousands of connections stay within the allocator's reused memory.
    let mut stream = AsyncBufReader::with_capacity(SESSION_BUFFER, stream);
    let mut session = Session::new(seed);
    let first = config.idle_timeout.unwrap_or(Duration::from_secs(3600));
    let timer = tokio::time::sleep(first);
    tokio::pin!(timer);
    loop {
        let idle = config.idle_timeout.map(|idle| (idle, Instant::now()));
        let line = next_line(&mut stream, config.max_line, idle, &mut timer).await;
        let step = match line {
            Ok(Some(line)) => step(&mut session, &line, peer, &config, &counters),
            Ok(None) | Err(ReadError::Io(_)) => return,
            Err(ReadError::Protocol(err)) => protocol_failure(&err, peer, &config, &counters),
        };
        if let Some(reply) = step.reply
            && let Err(e) = write_reply(&mut stream, &reply, config.write_timeout).await
        {
            write_failed(&e, peer, &config, &counters);
            return;
        }
        if step.close {
            return;
        }
    }
}

/// The async server (the book's `run_async_server`): one tokio task per connection.
///
/// Serves at most `config.max_sessions` sessions at once, if set, refusing the rest
/// with [`SERVER_FULL`]; otherwise the file-descriptor limit is its only limit (failed
/// accepts are logged, and it backs off). Runs until `shutdown` completes (pass
/// [`CancelToken::cancelled`], or any future in tests); then stops accepting, lets
/// open sessions finish for up to `config.grace`, closes the rest, and returns once
/// every session task has ended.
///
/// ```
/// use std::net::SocketAddr;
/// use concur::guess::{self, ServerConfig};
/// use concur::process::CancelToken;
///
/// # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
/// let listener = guess::bind(SocketAddr::from(([127, 0, 0, 1], 0))).unwrap();
/// let addr = listener.local_addr().unwrap();
/// listener.set_nonblocking(true).unwrap();
/// let listener = tokio::net::TcpListener::from_std(listener).unwrap();
/// let stop = CancelToken::new().unwrap();
/// let server = tokio::spawn(guess::serve_async(listener, ServerConfig::default(), stop.cancelled()));
/// let mut latencies = Vec::new();
/// let rounds = guess::play_async_at(addr, &mut latencies).await.unwrap();
/// let game1 = rounds.iter().filter(|r| r.game == 1).last().unwrap();
/// assert_eq!(game1.to_string(), "Client: 3 is Correct");
/// assert_eq!(latencies.len(), rounds.len()); // one round trip per guess
/// stop.cancel();
/// assert_eq!(server.await.unwrap().unwrap().sessions, 1);
/// # });
/// ```
pub async fn serve_async(
    listener: tokio::net::TcpListener,
    config: ServerConfig,
    shutdown: impl Future<Output = ()>,
) -> io::Result<ServerStats> {
    let limit = config.max_sessions;
    if let Some(limit) = limit {
        config.log.send(|| {
            format!("serving at most {limit} sessions at once (the limit set by --max-sessions)")
        });
    }
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
                    if let Some(limit) = limit
                        && counters.open.load(Ordering::Relaxed) >= limit
                    {
                        refused(peer, &format!("{limit} sessions open, the limit set by --max-sessions"), &config, &counters);
                        let _ = stream.try_write(format!("{SERVER_FULL}\n").as_bytes());
                        continue;
                    }
                    // No `set_nodelay`: the socket has it from the listener (see [`bind`]).
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
    Ok(counters.stats(limit))
}
