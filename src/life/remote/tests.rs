//! The rules protocol under random input in both directions, and the bounds a server
//! keeps per connection. Seeded, so a failure names the case that reproduces it; each
//! property runs for a bounded time.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use rand::{Rng, RngExt, SeedableRng};
use rand_pcg::Pcg64;

use super::protocol::{GREETING, REQUEST_LEN, Reply, decode_reply, encode_request};
use super::{RulesClient, RulesServerConfig, RulesServerStats, serve};
use crate::life::cell_io::{CellLogic, CellQuery};
use crate::life::grid::Cell;
use crate::life::rule::game_logic;
use crate::sink::Sink;

/// How long each property may run; it stops after its first case past this.
const BUDGET: Duration = Duration::from_secs(3);

/// A rules server on a free port, on a runtime of its own; stopped when dropped.
struct TestServer {
    addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<thread::JoinHandle<std::io::Result<RulesServerStats>>>,
}

impl TestServer {
    fn start(config: RulesServerConfig) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        listener.set_nonblocking(true).unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            runtime.block_on(async {
                let listener = tokio::net::TcpListener::from_std(listener)?;
                serve(listener, config, async {
                    let _ = stopped.await;
                })
                .await
            })
        });
        Self {
            addr,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    fn stop(mut self) -> RulesServerStats {
        drop(self.stop.take());
        self.thread.take().unwrap().join().unwrap().unwrap()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// One request the fuzzer sends, and what its reply must be.
enum Sent {
    Valid(u32, Cell),
    Invalid(u32),
}

/// Random frames to the server: valid requests, garbage frames and a partial frame at
/// the end, in one stream cut anywhere. Every whole frame gets exactly one well-formed
/// reply (the rule's answer, or an error naming the field), nothing panics, and the
/// connection ends.
#[test]
fn random_frames_to_the_server_get_one_well_formed_reply_each() {
    let server = TestServer::start(RulesServerConfig {
        log: Sink::null(),
        ..RulesServerConfig::default()
    });
    let started = Instant::now();
    let mut cases = 0;
    while cases < 20 || (started.elapsed() < BUDGET && cases < 2_000) {
        let seed = cases;
        cases += 1;
        let mut rng = Pcg64::seed_from_u64(seed);
        let mut stream = Vec::new();
        let mut sent = Vec::new();
        for _ in 0..rng.random_range(0..400) {
            let id: u32 = rng.random();
            if rng.random_bool(0.7) {
                let query = CellQuery {
                    y: rng.random_range(0..1000),
                    x: rng.random_range(0..1000),
                    state: if rng.random_bool(0.5) {
                        Cell::Alive
                    } else {
                        Cell::Empty
                    },
                    neighbors: rng.random_range(0..=8),
                };
                encode_request(id, &query, &mut stream);
                sent.push(Sent::Valid(id, game_logic(query.state, query.neighbors)));
            } else {
                let mut frame = [0u8; REQUEST_LEN];
                rng.fill_bytes(&mut frame);
                frame[..4].copy_from_slice(&id.to_le_bytes());
                // Make sure it is unreadable: a state past 1.
                frame[12] = rng.random_range(2..=255);
                stream.extend_from_slice(&frame);
                sent.push(Sent::Invalid(id));
            }
        }
        let partial = rng.random_range(0..REQUEST_LEN);
        stream.extend((0..partial).map(|_| rng.random::<u8>()));

        let mut socket = TcpStream::connect(server.addr).unwrap();
        socket
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        let mut writer = socket.try_clone().unwrap();
        let cuts: Vec<usize> = (0..rng.random_range(1..8))
            .map(|_| rng.random_range(0..=stream.len()))
            .collect();
        let feeder = thread::spawn(move || {
            let mut cuts = cuts;
            cuts.push(stream.len());
            cuts.sort_unstable();
            let mut from = 0;
            for to in cuts {
                writer.write_all(&stream[from..to])?;
                from = to;
            }
            writer.shutdown(Shutdown::Write)
        });
        let mut received = Vec::new();
        socket
            .read_to_end(&mut received)
            .unwrap_or_else(|e| panic!("case {seed}: {e}"));
        feeder.join().unwrap().unwrap();

        assert_eq!(received[..8], GREETING, "case {seed}");
        let mut replies: Vec<Reply> = Vec::new();
        let mut at = 8;
        while at < received.len() {
            let (reply, used) = decode_reply(&received[at..])
                .unwrap_or_else(|e| panic!("case {seed}: malformed reply: {e}"))
                .unwrap_or_else(|| panic!("case {seed}: a reply cut short"));
            replies.push(reply);
            at += used;
        }
        let mut expected: Vec<(u32, Result<Cell, String>)> = sent
            .iter()
            .map(|s| match s {
                Sent::Valid(id, cell) => (*id, Ok(*cell)),
                Sent::Invalid(id) => (*id, Err(String::new())),
            })
            .collect();
        let mut got: Vec<(u32, Result<Cell, String>)> = replies
            .into_iter()
            .map(|r| {
                let outcome = r.outcome.map_err(|reason| {
                    assert!(
                        reason.starts_with("malformed request: "),
                        "case {seed}: {reason}"
                    );
                    String::new()
                });
                (r.id, outcome)
            })
            .collect();
        let key = |(id, outcome): &(u32, Result<Cell, String>)| {
            (*id, outcome.as_ref().map(|c| c.is_alive()).ok())
        };
        expected.sort_by_key(key);
        got.sort_by_key(key);
        assert_eq!(got, expected, "case {seed}");
    }
    let stats = server.stop();
    assert!(stats.connections >= 20, "{stats:?}");
}

/// What a hostile server does to one client connection.
#[derive(Clone, Copy, Debug)]
enum Hostile {
    /// Any eight bytes for a greeting.
    Greeting,
    /// A greeting, then any bytes.
    Garbage,
    /// A greeting, then well-framed replies with any ids, statuses and texts
    /// (control bytes, escape codes, 64 KiB).
    Replies,
    /// A greeting, then each reply twice.
    Twice,
    /// A refusal with any reason.
    Refusal,
    /// Nothing at all, then closes.
    Close,
}

/// A server of `behaviour` for every connection, until it is stopped.
struct HostileServer {
    addr: SocketAddr,
    done: Arc<std::sync::atomic::AtomicBool>,
    thread: thread::JoinHandle<()>,
}

impl HostileServer {
    fn stop(self) {
        self.done.store(true, std::sync::atomic::Ordering::Relaxed);
        self.thread.join().unwrap();
    }
}

fn hostile_server(seed: u64, behaviour: Hostile) -> HostileServer {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stop = Arc::clone(&done);
    let thread = thread::spawn(move || {
        let mut rng = Pcg64::seed_from_u64(seed);
        listener.set_nonblocking(true).unwrap();
        while !stop.load(std::sync::atomic::Ordering::Relaxed) {
            let Ok((mut stream, _)) = listener.accept() else {
                thread::sleep(Duration::from_millis(2));
                continue;
            };
            stream.set_nonblocking(false).unwrap();
            let mut text = vec![0u8; rng.random_range(0..70_000usize)];
            rng.fill_bytes(&mut text);
            text.truncate(usize::from(u16::MAX));
            if rng.random_bool(0.5) {
                // Terminal escape codes in an otherwise readable text.
                text.splice(0..0, b"\x1b[2J\x1b]0;owned\x07\r\n".iter().copied());
                text.truncate(usize::from(u16::MAX));
            }
            let mut out = Vec::new();
            match behaviour {
                Hostile::Greeting => out.extend((0..8).map(|_| rng.random::<u8>())),
                Hostile::Refusal => {
                    out.extend_from_slice(&GREETING[..6]);
                    out.extend_from_slice(&1u16.to_le_bytes());
                    out.extend_from_slice(&(text.len() as u16).to_le_bytes());
                    out.extend_from_slice(&text);
                }
                Hostile::Close => {}
                Hostile::Garbage | Hostile::Replies | Hostile::Twice => {
                    out.extend_from_slice(&GREETING)
                }
            }
            let _ = stream.write_all(&out);
            if matches!(
                behaviour,
                Hostile::Greeting | Hostile::Refusal | Hostile::Close
            ) {
                continue;
            }
            let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
            let mut frame = [0u8; REQUEST_LEN];
            while stream.read_exact(&mut frame).is_ok() {
                let id = [frame[0], frame[1], frame[2], frame[3]];
                let mut reply = Vec::new();
                match behaviour {
                    Hostile::Garbage => {
                        reply.extend((0..rng.random_range(1..64)).map(|_| rng.random::<u8>()))
                    }
                    Hostile::Replies => {
                        reply.extend_from_slice(&if rng.random_bool(0.8) {
                            id
                        } else {
                            rng.random()
                        });
                        reply.extend_from_slice(&[2, 0]);
                        let len = rng.random_range(0..=text.len());
                        reply.extend_from_slice(&(len as u16).to_le_bytes());
                        reply.extend_from_slice(&text[..len]);
                    }
                    _ => {
                        for _ in 0..2 {
                            reply.extend_from_slice(&id);
                            reply.extend_from_slice(&[1, 0, 0, 0]);
                        }
                    }
                }
                if stream.write_all(&reply).is_err() {
                    break;
                }
            }
        }
    });
    HostileServer { addr, done, thread }
}

/// Random replies to the client: every request ends (an answer or an error) within the
/// client's timeout, nothing panics, and every error is short and free of control
/// bytes whatever the server sent.
#[test]
fn random_replies_to_the_client_end_in_a_clear_error() {
    let behaviours = [
        Hostile::Greeting,
        Hostile::Garbage,
        Hostile::Replies,
        Hostile::Twice,
        Hostile::Refusal,
        Hostile::Close,
    ];
    let started = Instant::now();
    let mut cases = 0u64;
    let errors = Arc::new(Mutex::new(Vec::new()));
    while cases < 30 || (started.elapsed() < BUDGET && cases < 300) {
        let seed = cases;
        let behaviour = behaviours[(cases % behaviours.len() as u64) as usize];
        cases += 1;
        let server = hostile_server(seed, behaviour);
        let addr = server.addr;
        let client =
            RulesClient::with_connections(addr, addr.to_string(), Duration::from_millis(300), 1);
        for y in 0..3 {
            let query = CellQuery {
                y,
                x: 0,
                state: Cell::Alive,
                neighbors: 3,
            };
            match client.next_state(query) {
                Ok(cell) => assert!(
                    matches!(behaviour, Hostile::Twice),
                    "case {seed} ({behaviour:?}): an answer {cell:?}"
                ),
                Err(err) => {
                    let message = err.to_string();
                    assert!(
                        message.len() <= 700,
                        "case {seed} ({behaviour:?}): {} bytes: {message:.200}",
                        message.len()
                    );
                    assert!(
                        !message.chars().any(char::is_control),
                        "case {seed} ({behaviour:?}): a control character in {message:?}"
                    );
                    assert!(
                        !message.contains("stopped before the reply came"),
                        "case {seed} ({behaviour:?}): {message}"
                    );
                    errors.lock().unwrap().push((behaviour, message));
                }
            }
        }
        drop(client);
        server.stop();
    }
    let errors = errors.lock().unwrap();
    // Each kind of fault is named as what it is.
    for (behaviour, said) in [
        (Hostile::Twice, "a second reply to one request"),
        (Hostile::Refusal, "refused the connection"),
        (Hostile::Close, "did not greet"),
    ] {
        assert!(
            errors.iter().any(|(b, m)| std::mem::discriminant(b)
                == std::mem::discriminant(&behaviour)
                && m.contains(said)),
            "{behaviour:?} never said {said:?}: {:?}",
            errors
                .iter()
                .filter(|(b, _)| std::mem::discriminant(b) == std::mem::discriminant(&behaviour))
                .take(3)
                .collect::<Vec<_>>()
        );
    }
}

/// The whole greeting must arrive within the I/O timeout: a server that trickles it a
/// byte at a time, each byte well within the timeout, is given up on.
#[test]
fn a_trickled_greeting_is_bounded_as_a_whole() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        for byte in GREETING {
            if stream.write_all(&[byte]).is_err() {
                return;
            }
            thread::sleep(Duration::from_millis(150));
        }
    });
    // 8 bytes at 150 ms each take 1.2 s; each byte comes well within 500 ms.
    let client = RulesClient::with_connections(addr, "trickler", Duration::from_millis(500), 1);
    let query = CellQuery {
        y: 0,
        x: 0,
        state: Cell::Empty,
        neighbors: 3,
    };
    let err = client.next_state(query).unwrap_err();
    assert!(
        err.to_string()
            .contains("rules server trickler did not greet within 500ms"),
        "{err}"
    );
    drop(client);
    server.join().unwrap();
}

/// A server closes an idle connection; the client opens a new one for its next
/// request instead of failing it.
#[test]
fn a_connection_closed_while_idle_is_opened_again() {
    let (log, lines) = Sink::collect();
    let server = TestServer::start(RulesServerConfig {
        log,
        idle_timeout: Some(Duration::from_millis(200)),
        ..RulesServerConfig::default()
    });
    let client = RulesClient::with_connections(server.addr, "idler", Duration::from_secs(10), 1);
    let query = CellQuery {
        y: 1,
        x: 1,
        state: Cell::Empty,
        neighbors: 3,
    };
    assert_eq!(client.next_state(query).unwrap(), Cell::Alive);
    let waited = Instant::now();
    while !lines
        .lock()
        .unwrap()
        .iter()
        .any(|l| l.contains("no request in 200ms (--idle-timeout)"))
    {
        assert!(waited.elapsed() < Duration::from_secs(10), "{lines:?}");
        thread::sleep(Duration::from_millis(10));
    }
    // The client's reader sees the close; its next request opens a new connection.
    let mut answered = None;
    while waited.elapsed() < Duration::from_secs(10) {
        match client.next_state(query) {
            Ok(cell) => {
                answered = Some(cell);
                break;
            }
            // The close raced this request: the request went out on the closing
            // connection. The next one must reconnect.
            Err(err) if err.to_string().contains("closed the connection") => {}
            Err(err) => panic!("{err}"),
        }
    }
    assert_eq!(answered, Some(Cell::Alive));
    drop(client);
    let stats = server.stop();
    assert_eq!(stats.connections, 2, "{stats:?}");
    assert!(stats.idle_closed >= 1, "{stats:?}");
}
