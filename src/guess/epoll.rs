//! The game on bare `epoll`: the floor the other servers are measured against.
//!
//! The book's protocol costs the kernel a fixed amount of work per session: accept the
//! connection, read each request, send each reply, close. [`serve_epoll`] does that and
//! nothing else: one thread per core, each with its own `epoll` set, no runtime, no
//! timers, no logging, no per-connection socket options. What it costs per session is
//! what this protocol costs on this machine, and `concur guess load --mode epoll`
//! measures it beside the tokio server (`benches/guess_floor.sh`).
//!
//! It answers every line exactly as the other two servers do (they share
//! [`Session`] and the line rules), so the comparison is like for like. What it leaves
//! out is what a real server needs against hostile clients: there is no idle timeout
//! and no write timeout (a client that stops reading keeps its slot until it hangs up),
//! and no session limit but the file-descriptor limit.
//!
//! Every system call it makes per connection:
//! * `accept4`, non-blocking and close-on-exec in the one call (`TCP_NODELAY` comes
//!   from the listener, see [`super::bind`]); a wake-up accepts until one finds none,
//!   so under load most `accept4` calls find a connection;
//! * one `epoll_ctl(ADD)`, edge-triggered for input, output and hang-up (there is no
//!   `epoll_ctl(DEL)`: closing the socket removes it from the set);
//! * per request, one `recvfrom` (a read that fills less than the buffer emptied the
//!   socket, so it is not followed by one that ends in `EAGAIN`) and one `sendto` of
//!   all the replies that request needs;
//! * one `recvfrom` that sees the end, and `close`.
//!
//! `epoll_wait` is shared by every connection ready at the same moment.

use std::io;
use std::os::fd::OwnedFd;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::thread;

use rustix::event::epoll::{self, CreateFlags, Event, EventData, EventFlags};
use rustix::net::{RecvFlags, SendFlags, SocketFlags};

use super::protocol::ProtocolError;
use super::server::{Counters, ServerConfig, ServerStats, Step, protocol_failure, step};
use super::session::Session;
use crate::process::CancelToken;

/// The token of the listening socket in every thread's set.
const LISTENER: u64 = 0;
/// The token of the shutdown token's descriptor.
const SHUTDOWN: u64 = 1;
/// Connection tokens start here (token − FIRST is the slot).
const FIRST: u64 = 2;
/// Bytes read at once: a thread's one buffer, shared by all its connections.
const READ_BUFFER: usize = 16 << 10;
/// Connections accepted per listener event at most, before serving the ones already
/// open (the listener is level-triggered, so the rest report again). Accepting stops
/// early at the first `accept4` that finds none.
const ACCEPT_BATCH: usize = 64;
/// Events taken by one `epoll_wait`.
const EVENTS: usize = 1024;

/// One connection: its socket, its game, and the bytes between calls.
struct Connection {
    socket: OwnedFd,
    peer: std::net::SocketAddr,
    session: Session,
    /// The start of a line whose newline has not come yet.
    partial: Vec<u8>,
    /// Replies the socket did not take yet (the client is not reading).
    unsent: Vec<u8>,
    /// The session ended; close once `unsent` is sent.
    closing: bool,
    /// Reading stopped until the client takes `unsent`.
    paused: bool,
}

/// The connections of one thread, by slot.
#[derive(Default)]
struct Slots {
    slots: Vec<Option<Connection>>,
    free: Vec<usize>,
}

impl Slots {
    fn insert(&mut self, connection: Connection) -> usize {
        match self.free.pop() {
            Some(slot) => {
                self.slots[slot] = Some(connection);
                slot
            }
            None => {
                self.slots.push(Some(connection));
                self.slots.len() - 1
            }
        }
    }

    fn remove(&mut self, slot: usize) -> Option<Connection> {
        let connection = self.slots.get_mut(slot)?.take();
        if connection.is_some() {
            self.free.push(slot);
        }
        connection
    }

    fn open(&self) -> usize {
        self.slots.len() - self.free.len()
    }
}

/// The bare-epoll server: `threads` threads (at least one), each with its own `epoll`
/// set holding the shared listener (`EPOLLEXCLUSIVE`, so a connection wakes one of
/// them) and the connections it accepted. Runs until `shutdown` is cancelled, then
/// closes every connection at once (the grace period is not honoured: this server is
/// a measuring stick) and returns.
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
///     move || guess::serve_epoll(listener, ServerConfig::default(), 2, &stop)
/// });
/// let rounds = guess::play_threaded(addr).unwrap();
/// let game1 = rounds.iter().filter(|r| r.game == 1).last().unwrap();
/// assert_eq!(game1.to_string(), "Client: 3 is Correct");
/// stop.cancel();
/// assert_eq!(server.join().unwrap().unwrap().sessions, 1);
/// ```
pub fn serve_epoll(
    listener: std::net::TcpListener,
    config: ServerConfig,
    threads: usize,
    shutdown: &CancelToken,
) -> io::Result<ServerStats> {
    listener.set_nonblocking(true)?;
    let listener = Arc::new(listener);
    let config = Arc::new(config);
    let counters = Arc::new(Counters::default());
    let workers = thread::scope(|scope| -> io::Result<usize> {
        let handles: Vec<_> = (0..threads.max(1))
            .map(|i| {
                let (listener, config, counters) = (&listener, &config, &counters);
                thread::Builder::new()
                    .name(format!("guess-epoll-{i}"))
                    .spawn_scoped(scope, move || {
                        serve_one_thread(listener, config, counters, shutdown)
                    })
            })
            .collect::<io::Result<_>>()?;
        let mut forced = 0;
        for handle in handles {
            forced += handle
                .join()
                .map_err(|_| io::Error::other("an epoll thread panicked"))??;
        }
        Ok(forced)
    })?;
    counters
        .forced_closes
        .fetch_add(workers as u64, Ordering::Relaxed);
    Ok(counters.stats(None))
}

/// One thread's loop; returns how many connections it closed at shutdown.
fn serve_one_thread(
    listener: &std::net::TcpListener,
    config: &ServerConfig,
    counters: &Counters,
    shutdown: &CancelToken,
) -> io::Result<usize> {
    let poller = epoll::create(CreateFlags::CLOEXEC)?;
    epoll::add(
        &poller,
        listener,
        EventData::new_u64(LISTENER),
        EventFlags::IN | EventFlags::EXCLUSIVE,
    )?;
    epoll::add(
        &poller,
        shutdown.fd(),
        EventData::new_u64(SHUTDOWN),
        EventFlags::IN,
    )?;
    let mut slots = Slots::default();
    let mut buffer = vec![0u8; READ_BUFFER];
    let mut events: Vec<Event> = Vec::with_capacity(EVENTS);
    loop {
        events.clear();
        match epoll::wait(&poller, rustix::buffer::spare_capacity(&mut events), None) {
            Ok(_) => {}
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(e.into()),
        }
        for event in &events {
            match event.data.u64() {
                SHUTDOWN => {
                    let open = slots.open();
                    for _ in 0..open {
                        counters.closed();
                    }
                    return Ok(open);
                }
                LISTENER => {
                    for _ in 0..ACCEPT_BATCH {
                        if !accept_one(listener, &poller, &mut slots, counters) {
                            break;
                        }
                    }
                }
                token => {
                    let slot = (token - FIRST) as usize;
                    let flags = event.flags;
                    let done = match slots.slots.get_mut(slot).and_then(Option::as_mut) {
                        Some(connection) => {
                            serve_ready(connection, flags, &mut buffer, config, counters)
                        }
                        None => false,
                    };
                    if done && slots.remove(slot).is_some() {
                        // Dropping the socket closes it, which takes it out of the set.
                        counters.closed();
                    }
                }
            }
        }
    }
}

/// Accepts one connection; returns whether to try for another.
fn accept_one(
    listener: &std::net::TcpListener,
    poller: &OwnedFd,
    slots: &mut Slots,
    counters: &Counters,
) -> bool {
    let (socket, peer) = match rustix::net::acceptfrom_with(
        listener,
        SocketFlags::NONBLOCK | SocketFlags::CLOEXEC,
    ) {
        Ok(accepted) => accepted,
        Err(rustix::io::Errno::AGAIN) => return false,
        Err(rustix::io::Errno::INTR) => return true,
        Err(e) => {
            counters.accept_errors.fetch_add(1, Ordering::Relaxed);
            if matches!(e, rustix::io::Errno::MFILE | rustix::io::Errno::NFILE) {
                // Out of descriptors: let a connection end before trying again.
                thread::sleep(std::time::Duration::from_millis(50));
            }
            return false;
        }
    };
    let peer = peer
        .and_then(|addr| std::net::SocketAddr::try_from(addr).ok())
        .unwrap_or_else(|| std::net::SocketAddr::from(([0, 0, 0, 0], 0)));
    let slot = slots.insert(Connection {
        socket,
        peer,
        session: Session::new(rand::random()),
        partial: Vec::new(),
        unsent: Vec::new(),
        closing: false,
        paused: false,
    });
    counters.opened();
    let registered = slots.slots[slot].as_ref().map(|c| {
        epoll::add(
            poller,
            &c.socket,
            EventData::new_u64(slot as u64 + FIRST),
            EventFlags::IN | EventFlags::OUT | EventFlags::RDHUP | EventFlags::ET,
        )
    });
    if let Some(Err(_)) = registered {
        slots.remove(slot);
        counters.closed();
    }
    true
}

/// Serves a ready connection; returns whether it is finished (to be closed).
fn serve_ready(
    connection: &mut Connection,
    flags: EventFlags,
    buffer: &mut [u8],
    config: &ServerConfig,
    counters: &Counters,
) -> bool {
    if !connection.unsent.is_empty() {
        match flush(connection) {
            Ok(true) => {}
            Ok(false) => return false,
            Err(_) => return true,
        }
    }
    if connection.closing {
        return true;
    }
    // The first edge of a fresh registration may be output alone: no read then, as it
    // would end in `EAGAIN`. A connection paused for a slow reader reads on output.
    let input = EventFlags::IN | EventFlags::RDHUP | EventFlags::HUP | EventFlags::ERR;
    if !flags.intersects(input) && !connection.paused {
        return false;
    }
    connection.paused = false;
    // Edge-triggered: read until a read leaves part of the buffer empty (the socket had
    // no more), the session ends, or the client stops taking replies. After a hang-up
    // edge, read on to the end: no later edge will come for it.
    let hung_up = flags.intersects(EventFlags::RDHUP | EventFlags::HUP | EventFlags::ERR);
    loop {
        let n = match rustix::net::recv(&connection.socket, &mut *buffer, RecvFlags::empty()) {
            Ok((n, _)) => n,
            Err(rustix::io::Errno::AGAIN) => break,
            Err(rustix::io::Errno::INTR) => continue,
            Err(_) => return true,
        };
        if n == 0 {
            // The end: a last line without its newline is still a line.
            if !connection.partial.is_empty() {
                let line = std::mem::take(&mut connection.partial);
                answer(connection, &line, config, counters);
            }
            connection.closing = true;
            break;
        }
        take_lines(connection, &buffer[..n], config, counters);
        if connection.closing || (n < buffer.len() && !hung_up) {
            break;
        }
        if connection.unsent.len() >= READ_BUFFER {
            // A client sending requests without reading replies: what it sends waits
            // in the kernel until it takes what it was sent (an output edge).
            match flush(connection) {
                Ok(true) => {}
                Ok(false) => {
                    connection.paused = true;
                    return false;
                }
                Err(_) => return true,
            }
        }
    }
    match flush(connection) {
        Ok(sent) => sent && connection.closing,
        Err(_) => true,
    }
}

/// Answers the complete lines of `bytes` and keeps the start of an unfinished one.
/// Lines are held to `max_line` bytes as [`crate::lines::read_line`] holds them.
fn take_lines(
    connection: &mut Connection,
    bytes: &[u8],
    config: &ServerConfig,
    counters: &Counters,
) {
    let too_long = ProtocolError::LineTooLong {
        max: config.max_line,
    };
    let mut rest = bytes;
    while !connection.closing {
        let Some(end) = memchr::memchr(b'\n', rest) else {
            if connection.partial.len() + rest.len() > config.max_line {
                let outcome = protocol_failure(&too_long, connection.peer, config, counters);
                reply(outcome, connection);
            } else {
                connection.partial.extend_from_slice(rest);
            }
            return;
        };
        if connection.partial.len() + end > config.max_line {
            let outcome = protocol_failure(&too_long, connection.peer, config, counters);
            reply(outcome, connection);
        } else if connection.partial.is_empty() {
            answer(connection, &rest[..end], config, counters);
        } else {
            let mut line = std::mem::take(&mut connection.partial);
            line.extend_from_slice(&rest[..end]);
            answer(connection, &line, config, counters);
            // Keep the allocation for the next unfinished line.
            line.clear();
            connection.partial = line;
        }
        rest = &rest[end + 1..];
    }
}

/// One line through the session; its reply is added to `replies`.
fn answer(connection: &mut Connection, line: &[u8], config: &ServerConfig, counters: &Counters) {
    let outcome = match std::str::from_utf8(line) {
        Ok(line) => step(
            &mut connection.session,
            line,
            connection.peer,
            config,
            counters,
        ),
        Err(_) => protocol_failure(&ProtocolError::NotUtf8, connection.peer, config, counters),
    };
    reply(outcome, connection);
}

/// Queues a step's reply; the step may end the session.
fn reply(outcome: Step, connection: &mut Connection) {
    if let Some(text) = outcome.reply {
        connection.unsent.extend_from_slice(text.as_bytes());
        connection.unsent.push(b'\n');
    }
    connection.closing |= outcome.close;
}

/// Sends what is unsent; `Ok(true)` once all of it went.
fn flush(connection: &mut Connection) -> io::Result<bool> {
    let mut sent = 0;
    while sent < connection.unsent.len() {
        match rustix::net::send(
            &connection.socket,
            &connection.unsent[sent..],
            SendFlags::NOSIGNAL,
        ) {
            Ok(n) => sent += n,
            Err(rustix::io::Errno::AGAIN) => break,
            Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
    connection.unsent.drain(..sent);
    Ok(connection.unsent.is_empty())
}
