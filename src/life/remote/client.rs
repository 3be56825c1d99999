//! The client side: [`RulesClient`] asks a rules server for every cell, blocking or async.
//!
//! A client holds a few TCP connections ([`RulesClient::DEFAULT_CONNECTIONS`]), opened
//! on first use. Each is multiplexed: any number of requests may be in flight on it,
//! told apart by id, so 45 threads or a million futures share four sockets.
//!
//! Per connection, two threads do the socket work:
//!
//! * the **writer** sends whatever requests have queued since its last write, in one
//!   `write` (many requests per system call under load, one at a time when idle);
//! * the **reader** reads replies in large chunks and hands each to the request that
//!   waits for it, a blocking thread or a future alike. It also enforces the I/O
//!   timeout: the oldest unanswered request that has waited longer fails.
//!
//! When the connection breaks (the server dies, a reply is malformed, a write times
//! out), every request waiting on it fails with the reason, and so does every later
//! one: nothing waits forever.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::protocol::{GREETING, STATUS_REFUSED, decode_reply, encode_request};
use crate::life::cell_io::{AsyncCellLogic, CellLogic, CellQuery};
use crate::life::grid::Cell;

/// Where a waiting request's answer goes.
enum Waiter {
    Blocking(crossbeam_channel::Sender<io::Result<Cell>>),
    Async(tokio::sync::oneshot::Sender<io::Result<Cell>>),
}

impl Waiter {
    fn answer(self, outcome: io::Result<Cell>) {
        // A waiter that gave up (its generation already failed) needs no answer.
        match self {
            Waiter::Blocking(tx) => drop(tx.send(outcome)),
            Waiter::Async(tx) => drop(tx.send(outcome)),
        }
    }
}

/// A request's answer, waited for in either style.
enum Pending {
    Blocking(crossbeam_channel::Receiver<io::Result<Cell>>),
    Async(tokio::sync::oneshot::Receiver<io::Result<Cell>>),
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every critical section leaves its state consistent, panic or not.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A connection's broken state: the error every waiting and later request gets.
#[derive(Clone)]
struct Broken {
    kind: io::ErrorKind,
    message: String,
    /// The server closed the connection (its idle timeout, or a restart): the
    /// requests that were waiting fail, and the next one opens a new connection.
    reopen: bool,
}

impl Broken {
    fn error(&self) -> io::Error {
        io::Error::new(self.kind, self.message.clone())
    }
}

#[derive(Default)]
struct Waiting {
    by_id: HashMap<u32, Waiter>,
    /// Ids in the order they were sent, with the instant each times out. Answered ids
    /// are skipped lazily when they reach the front.
    order: VecDeque<(u32, Instant)>,
    broken: Option<Broken>,
}

#[derive(Default)]
struct Outbox {
    bytes: Vec<u8>,
    closed: bool,
}

/// One multiplexed connection's shared state.
struct Link {
    peer: String,
    timeout: Duration,
    /// Requests sent so far; a request's id is this count, wrapped to 32 bits.
    next_id: AtomicU64,
    waiting: Mutex<Waiting>,
    outbox: Mutex<Outbox>,
    outbox_ready: Condvar,
    stream: TcpStream,
}

impl Link {
    /// Registers `queries` and queues their requests in one go.
    fn send(&self, queries: &[CellQuery], mut waiter: impl FnMut() -> Waiter) -> io::Result<()> {
        let deadline = Instant::now() + self.timeout;
        // Ids are the request count wrapped to 32 bits (`as` keeps the low bits).
        let first = self
            .next_id
            .fetch_add(queries.len() as u64, Ordering::Relaxed) as u32;
        {
            let mut waiting = lock(&self.waiting);
            if let Some(broken) = &waiting.broken {
                return Err(broken.error());
            }
            for i in 0..queries.len() {
                let id = first.wrapping_add(i as u32);
                waiting.by_id.insert(id, waiter());
                waiting.order.push_back((id, deadline));
            }
        }
        let mut outbox = lock(&self.outbox);
        let was_empty = outbox.bytes.is_empty();
        for (i, query) in queries.iter().enumerate() {
            encode_request(first.wrapping_add(i as u32), query, &mut outbox.bytes);
        }
        if was_empty {
            self.outbox_ready.notify_one();
        }
        Ok(())
    }

    /// Fails every waiting request, and every later one, with `broken`; stops both
    /// threads. The first reason sticks.
    fn break_with(&self, kind: io::ErrorKind, message: String) {
        self.break_as(Broken {
            kind,
            message,
            reopen: false,
        });
    }

    /// Whether the link broke in a way that a new connection may mend.
    fn reopenable(&self) -> bool {
        lock(&self.waiting)
            .broken
            .as_ref()
            .is_some_and(|b| b.reopen)
    }

    fn break_as(&self, broken: Broken) {
        let Broken {
            kind,
            message,
            reopen,
        } = broken;
        // A dead server makes writes fail with EPIPE; reported as such, the CLI would
        // take it for its own stdout closing (`| head`) and exit 0. It is the link that
        // broke.
        let kind = match kind {
            io::ErrorKind::BrokenPipe => io::ErrorKind::ConnectionAborted,
            kind => kind,
        };
        let (broken, waiters): (Broken, Vec<Waiter>) = {
            let mut waiting = lock(&self.waiting);
            let broken = waiting
                .broken
                .get_or_insert(Broken {
                    kind,
                    message,
                    reopen,
                })
                .clone();
            waiting.order.clear();
            (broken, waiting.by_id.drain().map(|(_, w)| w).collect())
        };
        for waiter in waiters {
            waiter.answer(Err(broken.error()));
        }
        lock(&self.outbox).closed = true;
        self.outbox_ready.notify_all();
        let _ = self.stream.shutdown(Shutdown::Both);
    }

    /// The writer thread: sends whatever has queued, until the link closes.
    fn write_loop(&self) {
        let mut stream = &self.stream;
        let mut batch = Vec::new();
        loop {
            {
                let mut outbox = lock(&self.outbox);
                while outbox.bytes.is_empty() && !outbox.closed {
                    outbox = self
                        .outbox_ready
                        .wait(outbox)
                        .unwrap_or_else(PoisonError::into_inner);
                }
                if outbox.closed {
                    return;
                }
                std::mem::swap(&mut outbox.bytes, &mut batch);
            }
            if let Err(err) = stream.write_all(&batch) {
                let message = if matches!(
                    err.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) {
                    format!(
                        "rules server {} stopped reading requests for {:?}",
                        self.peer, self.timeout
                    )
                } else {
                    format!("cannot send to rules server {}: {err}", self.peer)
                };
                self.break_with(err.kind(), message);
                return;
            }
            batch.clear();
        }
    }

    /// The reader thread: hands out replies and enforces the timeout until the link
    /// breaks or closes.
    fn read_loop(&self) {
        let mut stream = &self.stream;
        let mut buf = vec![0u8; 64 * 1024];
        let mut filled = 0;
        loop {
            match stream.read(&mut buf[filled..]) {
                Ok(0) => {
                    let unanswered = lock(&self.waiting).by_id.len();
                    self.break_as(Broken {
                        kind: io::ErrorKind::ConnectionAborted,
                        message: format!(
                            "rules server {} closed the connection ({unanswered} requests unanswered)",
                            self.peer
                        ),
                        reopen: true,
                    });
                    return;
                }
                Ok(n) => {
                    filled += n;
                    match self.deliver(&buf[..filled]) {
                        Ok(used) => {
                            buf.copy_within(used..filled, 0);
                            filled -= used;
                            if filled == buf.len() {
                                // One error text fills the buffer: make room for it.
                                buf.resize(buf.len() * 2, 0);
                            }
                        }
                        Err(reason) => {
                            self.break_with(
                                io::ErrorKind::InvalidData,
                                format!(
                                    "malformed reply from rules server {}: {reason}",
                                    self.peer
                                ),
                            );
                            return;
                        }
                    }
                }
                Err(err)
                    if matches!(
                        err.kind(),
                        io::ErrorKind::WouldBlock
                            | io::ErrorKind::TimedOut
                            | io::ErrorKind::Interrupted
                    ) => {}
                Err(err) => {
                    let closing = lock(&self.outbox).closed;
                    if !closing {
                        self.break_with(
                            err.kind(),
                            format!("lost rules server {}: {err}", self.peer),
                        );
                    }
                    return;
                }
            }
            if lock(&self.outbox).closed {
                return;
            }
            self.expire();
        }
    }

    /// Hands every complete reply in `bytes` to its waiter; returns the bytes used.
    fn deliver(&self, bytes: &[u8]) -> Result<usize, String> {
        let mut used = 0;
        let mut answers = Vec::new();
        while let Some((reply, len)) = decode_reply(&bytes[used..])? {
            used += len;
            answers.push(reply);
        }
        let mut ready = Vec::with_capacity(answers.len());
        let mut stray = None;
        {
            let mut waiting = lock(&self.waiting);
            for reply in answers {
                let Some(waiter) = waiting.by_id.remove(&reply.id) else {
                    stray = Some(reply.id);
                    break;
                };
                ready.push((waiter, reply.outcome));
            }
        }
        // The replies before a stray one are good: they are answered, not dropped
        // (a dropped waiter would read as the client having stopped).
        for (waiter, outcome) in ready {
            waiter.answer(outcome.map_err(|reason| {
                // The server's words, escaped and cut: they may be anything.
                io::Error::other(format!(
                    "rules server {} failed the cell: {}",
                    self.peer,
                    crate::lines::excerpt(&reason, SERVER_TEXT_MAX)
                ))
            }));
        }
        match stray {
            None => Ok(used),
            Some(id) if u64::from(id) >= self.next_id.load(Ordering::Relaxed) => {
                Err(format!("reply {id} answers a request that was never sent"))
            }
            Some(id) => Err(format!(
                "reply {id} answers a request that is no longer waiting: it was answered \
                 already (a second reply to one request) or timed out"
            )),
        }
    }

    /// Fails the requests that have waited longer than the timeout.
    fn expire(&self) {
        let now = Instant::now();
        let mut expired = Vec::new();
        {
            let mut waiting = lock(&self.waiting);
            while let Some(&(id, deadline)) = waiting.order.front() {
                if !waiting.by_id.contains_key(&id) {
                    waiting.order.pop_front();
                } else if deadline <= now {
                    waiting.order.pop_front();
                    expired.extend(waiting.by_id.remove(&id));
                } else {
                    break;
                }
            }
        }
        for waiter in expired {
            waiter.answer(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!(
                    "no reply from rules server {} within {:?} (--io-timeout)",
                    self.peer, self.timeout
                ),
            )));
        }
    }
}

/// Bytes of a server's own text (a failed cell's reason, a refusal) shown in an
/// error, escaped: a hostile server could send 64 KiB, or terminal escape codes.
const SERVER_TEXT_MAX: usize = 80;

/// Fills `buf` from `stream` by `deadline`, however the bytes trickle in.
fn read_by(stream: &mut TcpStream, buf: &mut [u8], deadline: Instant) -> io::Result<()> {
    let mut filled = 0;
    while filled < buf.len() {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::Error::new(io::ErrorKind::TimedOut, "timed out"));
        }
        stream.set_read_timeout(Some(left))?;
        match stream.read(&mut buf[filled..]) {
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => filled += n,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => {
                return Err(io::Error::new(io::ErrorKind::TimedOut, "timed out"));
            }
            Err(err) => return Err(err),
        }
    }
    Ok(())
}

/// A connection and its two threads.
struct Connection {
    link: Arc<Link>,
    threads: Vec<JoinHandle<()>>,
}

impl Connection {
    fn open(addr: SocketAddr, peer: &str, timeout: Duration) -> io::Result<Self> {
        let refused = |err: io::Error| {
            io::Error::new(
                err.kind(),
                format!("cannot connect to rules server {peer}: {err}"),
            )
        };
        let deadline = Instant::now() + timeout;
        let mut stream = TcpStream::connect_timeout(&addr, timeout).map_err(refused)?;
        stream.set_nodelay(true)?;
        // The whole greeting must come within the timeout, not each byte of it.
        let not_greeted = |err: io::Error| {
            io::Error::new(
                err.kind(),
                format!("rules server {peer} did not greet within {timeout:?}: {err}"),
            )
        };
        let mut greeting = [0u8; 8];
        read_by(&mut stream, &mut greeting, deadline).map_err(not_greeted)?;
        if greeting[..6] == GREETING[..6]
            && u16::from_le_bytes([greeting[6], greeting[7]]) == STATUS_REFUSED
        {
            let mut len = [0u8; 2];
            read_by(&mut stream, &mut len, deadline).map_err(not_greeted)?;
            let mut why = vec![0u8; usize::from(u16::from_le_bytes(len))];
            read_by(&mut stream, &mut why, deadline).map_err(not_greeted)?;
            return Err(io::Error::new(
                io::ErrorKind::ConnectionRefused,
                format!(
                    "rules server {peer} refused the connection: {}",
                    crate::lines::excerpt(&String::from_utf8_lossy(&why), SERVER_TEXT_MAX)
                ),
            ));
        }
        if greeting != GREETING {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "{peer} is not a concur rules server: it greeted with {:?}",
                    String::from_utf8_lossy(&greeting)
                ),
            ));
        }
        // The reader wakes this often to time requests out, even when nothing comes.
        let tick = (timeout / 4).clamp(Duration::from_millis(10), Duration::from_secs(1));
        stream.set_read_timeout(Some(tick))?;
        stream.set_write_timeout(Some(timeout))?;
        let link = Arc::new(Link {
            peer: peer.to_owned(),
            timeout,
            next_id: AtomicU64::new(0),
            waiting: Mutex::default(),
            outbox: Mutex::default(),
            outbox_ready: Condvar::new(),
            stream,
        });
        let mut threads = Vec::with_capacity(2);
        for (name, work) in [
            ("life-rules-write", Link::write_loop as fn(&Link)),
            ("life-rules-read", Link::read_loop),
        ] {
            let thread_link = Arc::clone(&link);
            let spawned = std::thread::Builder::new()
                .name(name.to_owned())
                .stack_size(256 * 1024)
                .spawn(move || work(&thread_link));
            match spawned {
                Ok(handle) => threads.push(handle),
                Err(err) => {
                    let connection = Self { link, threads };
                    drop(connection);
                    return Err(err);
                }
            }
        }
        Ok(Self { link, threads })
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        {
            let mut outbox = lock(&self.link.outbox);
            outbox.closed = true;
        }
        self.link.outbox_ready.notify_all();
        let _ = self.link.stream.shutdown(Shutdown::Both);
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

/// A connection slot: not opened yet, open, or failed to open (with why).
enum Slot {
    Closed,
    Open(Connection),
    Failed(Broken),
}

/// Asks a rules server for every cell's next state, over a few multiplexed connections.
///
/// It implements both seams, so every strategy can use it: blocking threads wait on
/// their own reply, futures await theirs, and a batch of cells
/// ([`AsyncCellLogic::next_states_async`]) goes out in one write.
pub struct RulesClient {
    addr: SocketAddr,
    peer: String,
    timeout: Duration,
    slots: Vec<Mutex<Slot>>,
    next: AtomicUsize,
}

impl fmt::Debug for RulesClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RulesClient")
            .field("peer", &self.peer)
            .field("timeout", &self.timeout)
            .field("connections", &self.slots.len())
            .finish_non_exhaustive()
    }
}

impl RulesClient {
    /// Connections a client opens unless told otherwise.
    pub const DEFAULT_CONNECTIONS: usize = 4;

    /// A client of the server at `addr` (shown as `peer` in errors), failing a request
    /// that gets no reply within `timeout`. Connections open on first use.
    pub fn new(addr: SocketAddr, peer: impl Into<String>, timeout: Duration) -> Self {
        Self::with_connections(addr, peer, timeout, Self::DEFAULT_CONNECTIONS)
    }

    /// As [`new`](Self::new), with `connections` connections (at least one).
    pub fn with_connections(
        addr: SocketAddr,
        peer: impl Into<String>,
        timeout: Duration,
        connections: usize,
    ) -> Self {
        Self {
            addr,
            peer: peer.into(),
            timeout,
            slots: (0..connections.max(1))
                .map(|_| Mutex::new(Slot::Closed))
                .collect(),
            next: AtomicUsize::new(0),
        }
    }

    /// The next connection in turn, opened if it is not yet.
    fn link(&self) -> io::Result<Arc<Link>> {
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.slots.len();
        let mut slot = lock(&self.slots[i]);
        if matches!(&*slot, Slot::Open(connection) if connection.link.reopenable()) {
            *slot = Slot::Closed;
        }
        if let Slot::Closed = *slot {
            *slot = match Connection::open(self.addr, &self.peer, self.timeout) {
                Ok(connection) => Slot::Open(connection),
                Err(err) => Slot::Failed(Broken {
                    kind: err.kind(),
                    message: err.to_string(),
                    reopen: false,
                }),
            };
        }
        match &*slot {
            Slot::Open(connection) => Ok(Arc::clone(&connection.link)),
            Slot::Failed(broken) => Err(broken.error()),
            Slot::Closed => unreachable!("the slot was just opened or failed"),
        }
    }

    fn ask(&self, query: CellQuery, blocking: bool) -> io::Result<Pending> {
        let link = self.link()?;
        if blocking {
            let (tx, rx) = crossbeam_channel::bounded(1);
            let mut tx = Some(tx);
            link.send(&[query], || Waiter::Blocking(tx.take().expect("one query")))?;
            Ok(Pending::Blocking(rx))
        } else {
            let (tx, rx) = tokio::sync::oneshot::channel();
            let mut tx = Some(tx);
            link.send(&[query], || Waiter::Async(tx.take().expect("one query")))?;
            Ok(Pending::Async(rx))
        }
    }
}

fn stopped() -> io::Error {
    io::Error::other("the rules client stopped before the reply came")
}

impl CellLogic for RulesClient {
    fn next_state(&self, query: CellQuery) -> io::Result<Cell> {
        match self.ask(query, true)? {
            Pending::Blocking(rx) => rx.recv().unwrap_or_else(|_| Err(stopped())),
            Pending::Async(_) => unreachable!("asked for a blocking reply"),
        }
    }
}

impl AsyncCellLogic for RulesClient {
    async fn next_state_async(&self, query: CellQuery) -> io::Result<Cell> {
        match self.ask(query, false)? {
            Pending::Async(rx) => rx.await.unwrap_or_else(|_| Err(stopped())),
            Pending::Blocking(_) => unreachable!("asked for an async reply"),
        }
    }

    /// The batch goes out in one write on one connection; then each reply is awaited.
    async fn next_states_async(&self, queries: Vec<CellQuery>) -> Vec<io::Result<Cell>> {
        let mut receivers = Vec::with_capacity(queries.len());
        let sent = self.link().and_then(|link| {
            link.send(&queries, || {
                let (tx, rx) = tokio::sync::oneshot::channel();
                receivers.push(rx);
                Waiter::Async(tx)
            })
        });
        if let Err(err) = sent {
            let broken = Broken {
                kind: err.kind(),
                message: err.to_string(),
                reopen: false,
            };
            return queries.iter().map(|_| Err(broken.error())).collect();
        }
        let mut outcomes = Vec::with_capacity(receivers.len());
        for rx in receivers {
            outcomes.push(rx.await.unwrap_or_else(|_| Err(stopped())));
        }
        outcomes
    }
}
