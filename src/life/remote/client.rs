//! The client side: [`RulesClient`] asks a rules server for every cell, blocking or async.
//!
//! A client holds a few TCP connections ([`RulesClient::DEFAULT_CONNECTIONS`]), opened
//! on first use. Each is multiplexed: any number of requests may be in flight on it,
//! told apart by id, so 45 threads or a million futures share eight sockets.
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

use std::collections::VecDeque;
use std::fmt;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::protocol::{GREETING, REQUEST_LEN, STATUS_REFUSED, decode_reply, encode_request};
use crate::life::cell_io::{AsyncCellLogic, CellLogic, CellQuery};
use crate::life::grid::Cell;

/// Where a waiting batch's answers go, all at once when the last one is in.
enum Waiter {
    Blocking(crossbeam_channel::Sender<Vec<io::Result<Cell>>>),
    Async(tokio::sync::oneshot::Sender<Vec<io::Result<Cell>>>),
}

impl Waiter {
    fn answer(self, outcomes: Vec<io::Result<Cell>>) {
        // A waiter that gave up (its generation already failed) needs no answer.
        match self {
            Waiter::Blocking(tx) => drop(tx.send(outcomes)),
            Waiter::Async(tx) => drop(tx.send(outcomes)),
        }
    }
}

/// Requests sent together: consecutive ids, one deadline, and one waiter for all of
/// them. A generation of a million cells in batches of 1,024 costs a thousand of these,
/// not a million channels, table entries and timeout entries.
struct Batch {
    /// The id of its first request, before wrapping to 32 bits.
    first: u64,
    /// Each request's answer, once in.
    outcomes: Vec<Option<io::Result<Cell>>>,
    /// Requests not answered yet.
    left: usize,
    deadline: Instant,
    /// `None` once the batch is complete (answered, timed out or broken).
    waiter: Option<Waiter>,
}

impl Batch {
    /// Answers every request still open with `error`, and completes the batch.
    fn fail_open(
        &mut self,
        error: impl Fn() -> io::Error,
    ) -> Option<(Waiter, Vec<io::Result<Cell>>)> {
        for outcome in &mut self.outcomes {
            if outcome.is_none() {
                *outcome = Some(Err(error()));
            }
        }
        self.left = 0;
        self.complete()
    }

    /// The waiter and the answers, once every request has one.
    fn complete(&mut self) -> Option<(Waiter, Vec<io::Result<Cell>>)> {
        if self.left > 0 {
            return None;
        }
        let waiter = self.waiter.take()?;
        let outcomes = std::mem::take(&mut self.outcomes)
            .into_iter()
            .map(|o| o.unwrap_or_else(|| Err(stopped())))
            .collect();
        Some((waiter, outcomes))
    }
}

/// A batch's answers, waited for in either style.
enum Pending {
    Blocking(crossbeam_channel::Receiver<Vec<io::Result<Cell>>>),
    Async(tokio::sync::oneshot::Receiver<Vec<io::Result<Cell>>>),
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
    /// Batches in the order of their ids (ids are taken under this lock), so a reply
    /// finds its batch by binary search and the oldest deadline is at the front.
    /// Complete batches are dropped when they reach the front.
    batches: VecDeque<Batch>,
    broken: Option<Broken>,
}

impl Waiting {
    /// The batch and the place in it of the request whose id is `id` on the wire (ids
    /// wrap at 2^32; fewer than that are ever in flight). Replies come mostly in the
    /// order requests went, so the batch `hint` (the last one found) and the one after
    /// it are tried before a binary search.
    fn locate(&self, id: u32, hint: usize) -> Option<(usize, usize)> {
        let base = self.batches.front()?.first;
        let full = base + u64::from(id.wrapping_sub(base as u32));
        let holds = |b: &Batch| b.first <= full && full < b.first + b.outcomes.len() as u64;
        let index = [hint, hint + 1]
            .into_iter()
            .find(|&i| self.batches.get(i).is_some_and(holds))
            .unwrap_or_else(|| {
                self.batches
                    .partition_point(|b| b.first + b.outcomes.len() as u64 <= full)
            });
        let batch = self.batches.get(index)?;
        (full >= batch.first && batch.waiter.is_some())
            .then(|| (index, (full - batch.first) as usize))
    }

    /// Requests not answered yet, over every batch (counted when the connection
    /// closes, for its message).
    fn unanswered(&self) -> usize {
        self.batches.iter().map(|b| b.left).sum()
    }

    /// Drops the complete batches at the front.
    fn trim(&mut self) {
        while self.batches.front().is_some_and(|b| b.waiter.is_none()) {
            self.batches.pop_front();
        }
    }
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
    /// Registers `queries` as one batch with one waiter, and queues their requests in
    /// one go. `queries` must not be empty.
    fn send(&self, queries: &[CellQuery], waiter: Waiter) -> io::Result<()> {
        let deadline = Instant::now() + self.timeout;
        let first = {
            let mut waiting = lock(&self.waiting);
            if let Some(broken) = &waiting.broken {
                return Err(broken.error());
            }
            // Taken under the lock, so batches queue in the order of their ids.
            let first = self
                .next_id
                .fetch_add(queries.len() as u64, Ordering::Relaxed);
            waiting.batches.push_back(Batch {
                first,
                outcomes: (0..queries.len()).map(|_| None).collect(),
                left: queries.len(),
                deadline,
                waiter: Some(waiter),
            });
            first
        };
        let mut outbox = lock(&self.outbox);
        let was_empty = outbox.bytes.is_empty();
        outbox.bytes.reserve(queries.len() * REQUEST_LEN);
        for (i, query) in queries.iter().enumerate() {
            // Ids are the request count wrapped to 32 bits (`as` keeps the low bits).
            encode_request((first + i as u64) as u32, query, &mut outbox.bytes);
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
        let complete: Vec<(Waiter, Vec<io::Result<Cell>>)> = {
            let mut waiting = lock(&self.waiting);
            let broken = waiting
                .broken
                .get_or_insert(Broken {
                    kind,
                    message,
                    reopen,
                })
                .clone();
            waiting
                .batches
                .drain(..)
                .filter_map(|mut batch| batch.fail_open(|| broken.error()))
                .collect()
        };
        for (waiter, outcomes) in complete {
            waiter.answer(outcomes);
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
                    let unanswered = lock(&self.waiting).unanswered();
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
        let mut complete = Vec::new();
        let mut stray = None;
        {
            let mut waiting = lock(&self.waiting);
            let mut hint = 0;
            for reply in answers {
                let place = waiting
                    .locate(reply.id, hint)
                    .filter(|&(batch, slot)| waiting.batches[batch].outcomes[slot].is_none());
                let Some((batch, slot)) = place else {
                    stray = Some(reply.id);
                    break;
                };
                hint = batch;
                let outcome = reply.outcome.map_err(|reason| {
                    // The server's words, escaped and cut: they may be anything.
                    io::Error::other(format!(
                        "rules server {} failed the cell: {}",
                        self.peer,
                        crate::lines::excerpt(&reason, SERVER_TEXT_MAX)
                    ))
                });
                let batch = &mut waiting.batches[batch];
                batch.outcomes[slot] = Some(outcome);
                batch.left -= 1;
                complete.extend(batch.complete());
            }
            waiting.trim();
        }
        // The replies before a stray one are good: they are answered, not dropped
        // (a dropped waiter would read as the client having stopped).
        for (waiter, outcomes) in complete {
            waiter.answer(outcomes);
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

    /// Fails the requests that have waited longer than the timeout (a batch's answered
    /// requests keep their answers).
    fn expire(&self) {
        let now = Instant::now();
        let timed_out = || {
            io::Error::new(
                io::ErrorKind::TimedOut,
                format!(
                    "no reply from rules server {} within {:?} (--io-timeout)",
                    self.peer, self.timeout
                ),
            )
        };
        let mut expired = Vec::new();
        {
            let mut waiting = lock(&self.waiting);
            waiting.trim();
            for batch in &mut waiting.batches {
                if batch.deadline > now {
                    break;
                }
                expired.extend(batch.fail_open(timed_out));
            }
            waiting.trim();
        }
        for (waiter, outcomes) in expired {
            waiter.answer(outcomes);
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
    /// Connections a client opens unless told otherwise. A server holds at most
    /// `--max-queued-bytes` (1 MiB) of replies per connection while their latency
    /// runs: 8-byte replies held 100 ms cap one connection near 1.3 million cells a
    /// second. Four connections carried a million-cell generation in two latency
    /// windows (0.23 s a generation); eight carry it in one (0.14 s).
    pub const DEFAULT_CONNECTIONS: usize = 8;

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

    fn ask(&self, queries: &[CellQuery], blocking: bool) -> io::Result<Pending> {
        let link = self.link()?;
        if blocking {
            let (tx, rx) = crossbeam_channel::bounded(1);
            link.send(queries, Waiter::Blocking(tx))?;
            Ok(Pending::Blocking(rx))
        } else {
            let (tx, rx) = tokio::sync::oneshot::channel();
            link.send(queries, Waiter::Async(tx))?;
            Ok(Pending::Async(rx))
        }
    }
}

/// The one answer of a batch of one.
fn only(outcomes: Vec<io::Result<Cell>>) -> io::Result<Cell> {
    outcomes
        .into_iter()
        .next()
        .unwrap_or_else(|| Err(stopped()))
}

fn stopped() -> io::Error {
    io::Error::other("the rules client stopped before the reply came")
}

impl CellLogic for RulesClient {
    fn next_state(&self, query: CellQuery) -> io::Result<Cell> {
        match self.ask(&[query], true)? {
            Pending::Blocking(rx) => rx.recv().map_or_else(|_| Err(stopped()), only),
            Pending::Async(_) => unreachable!("asked for a blocking reply"),
        }
    }
}

impl AsyncCellLogic for RulesClient {
    async fn next_state_async(&self, query: CellQuery) -> io::Result<Cell> {
        match self.ask(&[query], false)? {
            Pending::Async(rx) => rx.await.map_or_else(|_| Err(stopped()), only),
            Pending::Blocking(_) => unreachable!("asked for an async reply"),
        }
    }

    /// The batch goes out in one write on one connection, with one waiter: the
    /// reader hands over all its answers once the last is in.
    async fn next_states_async(&self, queries: Vec<CellQuery>) -> Vec<io::Result<Cell>> {
        if queries.is_empty() {
            return Vec::new();
        }
        let outcomes = match self.ask(&queries, false) {
            Ok(Pending::Async(rx)) => rx.await.map_err(|_| stopped()),
            Ok(Pending::Blocking(_)) => unreachable!("asked for an async reply"),
            Err(err) => Err(err),
        };
        match outcomes {
            Ok(outcomes) => outcomes,
            Err(err) => {
                let broken = Broken {
                    kind: err.kind(),
                    message: err.to_string(),
                    reopen: false,
                };
                queries.iter().map(|_| Err(broken.error())).collect()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(first: u64, len: usize) -> Batch {
        let (tx, _rx) = crossbeam_channel::bounded(1);
        Batch {
            first,
            outcomes: (0..len).map(|_| None).collect(),
            left: len,
            deadline: Instant::now(),
            waiter: Some(Waiter::Blocking(tx)),
        }
    }

    #[test]
    fn replies_find_their_batch_across_the_32_bit_wrap() {
        let mut waiting = Waiting::default();
        let near = (1u64 << 32) - 3;
        waiting.batches.push_back(batch(near, 2)); // wire ids 2^32-3, 2^32-2
        waiting.batches.push_back(batch(near + 2, 4)); // 2^32-1, 0, 1, 2
        assert_eq!(waiting.locate(u32::MAX - 2, 0), Some((0, 0)));
        assert_eq!(waiting.locate(u32::MAX - 1, 0), Some((0, 1)));
        assert_eq!(waiting.locate(u32::MAX, 0), Some((1, 0)));
        assert_eq!(waiting.locate(0, 0), Some((1, 1)));
        assert_eq!(waiting.locate(2, 0), Some((1, 3)));
        // Past the last batch, and before the first: nothing.
        assert_eq!(waiting.locate(3, 0), None);
        assert_eq!(waiting.locate(u32::MAX - 3, 0), None);
        // A hint anywhere finds the same places.
        for hint in 0..4 {
            assert_eq!(waiting.locate(0, hint), Some((1, 1)));
            assert_eq!(waiting.locate(u32::MAX - 1, hint), Some((0, 1)));
            assert_eq!(waiting.locate(3, hint), None);
        }
        // A complete batch answers nothing more.
        waiting.batches[0].waiter = None;
        assert_eq!(waiting.locate(u32::MAX - 2, 0), None);
        waiting.trim();
        assert_eq!(waiting.batches.len(), 1);
        assert_eq!(waiting.locate(0, 0), Some((0, 1)));
    }

    #[test]
    fn a_batch_completes_once_every_request_has_an_answer() {
        let mut one = batch(0, 2);
        one.outcomes[1] = Some(Ok(Cell::Alive));
        one.left = 1;
        assert!(one.complete().is_none());
        let (_, outcomes) = one
            .fail_open(|| io::Error::new(io::ErrorKind::TimedOut, "late"))
            .expect("complete");
        assert_eq!(
            outcomes[0].as_ref().unwrap_err().kind(),
            io::ErrorKind::TimedOut
        );
        assert_eq!(*outcomes[1].as_ref().unwrap(), Cell::Alive);
        assert!(one.complete().is_none(), "answered once");
    }
}
