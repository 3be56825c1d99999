//! The guessing game: one conformance suite for both servers, every client against
//! every server, bad input, many clients, shutdown, and the book's Python programs.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use concur::guess::{self, ServerConfig, ServerStats, Sink};
use concur::process::CancelToken;

use crate::util::{Dir, Watchdog, eventually};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Threads,
    Async,
}

/// A server running in this process on an ephemeral port.
struct Server {
    addr: SocketAddr,
    transcript: Arc<Mutex<Vec<String>>>,
    log: Arc<Mutex<Vec<String>>>,
    stop: Box<dyn FnOnce() -> ServerStats + Send>,
}

impl Server {
    fn start(mode: Mode, max_line: usize, grace: Duration) -> Self {
        let (transcript_sink, transcript) = Sink::collect();
        let (log_sink, log) = Sink::collect();
        let config = ServerConfig {
            max_line,
            grace,
            transcript: transcript_sink,
            log: log_sink,
        };
        let listener = guess::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = listener.local_addr().unwrap();
        let stop: Box<dyn FnOnce() -> ServerStats + Send> = match mode {
            Mode::Threads => {
                let token = CancelToken::new().unwrap();
                let server_token = token.clone();
                let handle = thread::spawn(move || {
                    guess::serve_threads(listener, config, &server_token).unwrap()
                });
                Box::new(move || {
                    token.cancel();
                    handle.join().unwrap()
                })
            }
            Mode::Async => {
                let (tx, rx) = tokio::sync::oneshot::channel::<()>();
                let handle = thread::spawn(move || {
                    let runtime = tokio::runtime::Builder::new_multi_thread()
                        .worker_threads(2)
                        .enable_all()
                        .build()
                        .unwrap();
                    runtime.block_on(async {
                        listener.set_nonblocking(true).unwrap();
                        let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                        guess::serve_async(listener, config, async {
                            let _ = rx.await;
                        })
                        .await
                        .unwrap()
                    })
                });
                Box::new(move || {
                    let _ = tx.send(());
                    handle.join().unwrap()
                })
            }
        };
        Server {
            addr,
            transcript,
            log,
            stop,
        }
    }

    fn default(mode: Mode) -> Self {
        Self::start(mode, 1024, Duration::from_secs(5))
    }

    fn stop(self) -> ServerStats {
        (self.stop)()
    }
}

/// A raw protocol connection.
struct Raw {
    stream: TcpStream,
    reader: BufReader<TcpStream>,
}

impl Raw {
    fn connect(addr: SocketAddr) -> Self {
        let stream = TcpStream::connect(addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let reader = BufReader::new(stream.try_clone().unwrap());
        Raw { stream, reader }
    }

    fn send(&mut self, line: &str) {
        self.stream
            .write_all(format!("{line}\n").as_bytes())
            .unwrap();
    }

    fn reply(&mut self) -> String {
        let mut line = String::new();
        self.reader.read_line(&mut line).unwrap();
        assert!(line.ends_with('\n'), "expected a reply line, got {line:?}");
        line.trim_end().to_owned()
    }

    fn ask(&mut self, line: &str) -> String {
        self.send(line);
        self.reply()
    }

    /// Whether the server closed the connection: reads end, or the connection was
    /// reset (a server closing with unread input sends a reset).
    fn closed(&mut self) -> bool {
        let mut rest = Vec::new();
        match self.reader.read_to_end(&mut rest) {
            Ok(_) => rest.is_empty(),
            Err(e) => e.kind() == std::io::ErrorKind::ConnectionReset,
        }
    }
}

fn conformance(mode: Mode) {
    let server = Server::default(mode);
    let mut c = Raw::connect(server.addr);

    // Every number of the range once, then an error reply, not an endless loop.
    c.send("PARAMS 1 5");
    let mut guesses: Vec<i64> = (0..5).map(|_| c.ask("NUMBER").parse().unwrap()).collect();
    guesses.sort_unstable();
    assert_eq!(guesses, [1, 2, 3, 4, 5], "{mode:?}");
    assert_eq!(c.ask("NUMBER"), "ERROR no numbers left to guess in [1, 5]");

    // The session goes on: a new game; after Correct, the secret comes back.
    c.send("PARAMS 10 15");
    let first = c.ask("NUMBER");
    c.send("REPORT Correct");
    assert_eq!(c.ask("NUMBER"), first);
    assert_eq!(c.ask("NUMBER"), first);
    c.send("REPORT Correct");
    c.send("PARAMS 0 -1");
    assert_eq!(c.ask("NUMBER"), "ERROR no numbers left to guess in [0, -1]");
    drop(c);

    let stats = server.stop();
    assert_eq!(stats.protocol_errors, 0, "{mode:?}");
}

#[test]
fn both_servers_pass_the_conformance_suite() {
    for mode in [Mode::Threads, Mode::Async] {
        conformance(mode);
    }
}

#[test]
fn the_server_transcript_records_each_report() {
    for mode in [Mode::Threads, Mode::Async] {
        let server = Server::default(mode);
        let mut c = Raw::connect(server.addr);
        c.send("PARAMS 7 7");
        assert_eq!(c.ask("NUMBER"), "7");
        c.send("REPORT Correct");
        assert_eq!(c.ask("NUMBER"), "7");
        drop(c);
        let transcript = Arc::clone(&server.transcript);
        server.stop();
        assert_eq!(
            *transcript.lock().unwrap(),
            ["Server: 7 is Correct"],
            "{mode:?}"
        );
    }
}

#[test]
fn bad_input_ends_only_its_own_session_with_one_error_line() {
    let cases: [(&[u8], &str); 6] = [
        (b"HELLO\n", "ERROR unknown command \"HELLO\""),
        (
            b"PARAMS one 5\n",
            "ERROR PARAMS a lowest number \"one\" is not a whole number",
        ),
        (
            b"PARAMS 1 5\nREPORT Warmer\n",
            "ERROR REPORT before any NUMBER: there is no guess to report on",
        ),
        (
            b"NUMBER\n",
            "ERROR NUMBER before PARAMS: there is no range to guess in",
        ),
        (
            b"PARAMS 1 5\nREPORT Hotter\n",
            "ERROR REPORT takes Warmer, Colder, Unsure or Correct, not \"Hotter\"",
        ),
        (b"PARAMS \xff\xfe 5\n", "ERROR line is not valid UTF-8"),
    ];
    for mode in [Mode::Threads, Mode::Async] {
        let server = Server::default(mode);
        // A well-behaved session stays open through all of it.
        let mut good = Raw::connect(server.addr);
        good.send("PARAMS 1 1000");
        for (input, reply) in cases {
            let mut bad = Raw::connect(server.addr);
            bad.stream.write_all(input).unwrap();
            assert_eq!(bad.reply(), reply, "{mode:?}");
            assert!(
                bad.closed(),
                "{mode:?}: the bad session was not closed after {reply:?}"
            );
            let n: i64 = good.ask("NUMBER").parse().unwrap();
            assert!((1..=1000).contains(&n));
        }
        let log = Arc::clone(&server.log);
        drop(good);
        let stats = server.stop();
        assert_eq!(stats.protocol_errors, cases.len() as u64, "{mode:?}");
        assert_eq!(
            log.lock().unwrap().len(),
            cases.len(),
            "one log line per bad session"
        );
    }
}

#[test]
fn an_oversized_line_is_cut_off_at_the_limit() {
    for mode in [Mode::Threads, Mode::Async] {
        let server = Server::start(mode, 64, Duration::from_secs(5));
        let mut bad = Raw::connect(server.addr);
        // 1 MiB without a newline: the server stops reading after 64 bytes.
        let _ = bad.stream.write_all(&vec![b'x'; 1 << 20]);
        assert_eq!(bad.reply(), "ERROR line longer than 64 bytes", "{mode:?}");
        assert!(bad.closed());
        // A client that stalls mid-line costs at most the limit; others are served.
        let mut stalled = Raw::connect(server.addr);
        stalled.stream.write_all(b"PARAMS 1").unwrap();
        let mut good = Raw::connect(server.addr);
        good.send("PARAMS 2 2");
        assert_eq!(good.ask("NUMBER"), "2");
        drop((stalled, good));
        server.stop();
    }
}

/// Checks a client transcript against the book's rules, re-deriving every decision.
fn check_transcript(lines: &[String], context: &str) {
    // Split into the two games by range: the first game's numbers are in 1..=5.
    let guesses: Vec<_> = lines
        .iter()
        .map(|l| {
            l.strip_prefix("Client: ")
                .unwrap_or_else(|| panic!("{context}: {l}"))
        })
        .map(|l| l.split_once(" is ").unwrap())
        .map(|(n, d)| (n.parse::<i64>().unwrap(), d.to_owned()))
        .collect();
    let (game1, game2): (Vec<_>, Vec<_>) =
        guesses.into_iter().partition(|(n, _)| (1..=5).contains(n));
    for (game, secret, lo, hi) in [(game1, 3, 1, 5), (game2, 12, 10, 15)] {
        assert!(!game.is_empty() && game.len() <= 5, "{context}: {lines:?}");
        let mut last: Option<i64> = None;
        for (i, (n, decision)) in game.iter().enumerate() {
            assert!((lo..=hi).contains(n), "{context}: {n} outside {lo}..={hi}");
            let distance = (n - secret).abs();
            let expected = if distance == 0 {
                "Correct"
            } else if let Some(last) = last {
                if distance < last {
                    "Warmer"
                } else if distance > last {
                    "Colder"
                } else {
                    "Unsure"
                }
            } else {
                "Unsure"
            };
            assert_eq!(decision, expected, "{context}: guess {i} of {game:?}");
            assert!(
                decision != "Correct" || i == game.len() - 1,
                "{context}: asked again after Correct"
            );
            last = Some(distance);
        }
        let distinct: std::collections::HashSet<_> = game.iter().map(|(n, _)| n).collect();
        assert_eq!(
            distinct.len(),
            game.len(),
            "{context}: a number guessed twice"
        );
    }
    // Five guesses over 1..=5 always find 3.
    assert!(
        lines.iter().any(|l| l == "Client: 3 is Correct"),
        "{context}: {lines:?}"
    );
}

#[test]
fn every_client_works_against_every_server() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    for mode in [Mode::Threads, Mode::Async] {
        for client in ["threads", "async"] {
            let server = Server::default(mode);
            let lines = match client {
                "threads" => guess::play_threaded(server.addr).unwrap(),
                _ => runtime
                    .block_on(guess::play_async_at(server.addr, &mut Vec::new()))
                    .unwrap(),
            };
            let context = format!("{client} client, {mode:?} server");
            check_transcript(&lines, &context);
            let transcript = Arc::clone(&server.transcript);
            server.stop();
            // The server heard exactly the reports the client made, in order.
            let server_lines: Vec<String> = transcript
                .lock()
                .unwrap()
                .iter()
                .map(|l| l.replacen("Server:", "Client:", 1))
                .collect();
            assert_eq!(server_lines, lines, "{context}");
        }
    }
}

#[test]
fn five_hundred_concurrent_clients_all_complete() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    for mode in [Mode::Threads, Mode::Async] {
        let server = Server::default(mode);
        let report = runtime.block_on(guess::load::run(server.addr, 500, 500));
        assert_eq!(report.failures, 0, "{mode:?}: {:?}", report.errors);
        assert_eq!(report.sessions, 1000);
        let stats = server.stop();
        assert_eq!(stats.sessions, 500);
        assert!(stats.peak_sessions >= 2, "{mode:?}: they ran concurrently");
    }
}

#[test]
fn shutdown_stops_accepting_lets_sessions_finish_then_closes_stragglers() {
    for mode in [Mode::Threads, Mode::Async] {
        // A long grace: the open session finishes its game after shutdown began.
        let server = Server::start(mode, 1024, Duration::from_secs(10));
        let addr = server.addr;
        let mut open = Raw::connect(addr);
        open.send("PARAMS 4 4");
        assert_eq!(open.ask("NUMBER"), "4");
        open.send("REPORT Correct");
        let stopper = thread::spawn(move || server.stop());
        eventually("the listener to close", || {
            TcpStream::connect(addr).is_err()
        });
        assert_eq!(
            open.ask("NUMBER"),
            "4",
            "{mode:?}: the open session is still served"
        );
        drop(open);
        let stats = stopper.join().unwrap();
        assert_eq!(stats.forced_closes, 0, "{mode:?}");

        // A short grace: an idle session is closed when it runs out.
        let server = Server::start(mode, 1024, Duration::from_millis(200));
        let mut idle = Raw::connect(server.addr);
        idle.send("PARAMS 1 2");
        assert!(idle.ask("NUMBER").parse::<i64>().is_ok());
        let stats = server.stop();
        assert_eq!(stats.forced_closes, 1, "{mode:?}");
        assert!(idle.closed(), "{mode:?}: the straggler was closed");
    }
}

fn python() -> Option<&'static str> {
    std::process::Command::new("python3")
        .arg("--version")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|_| "python3")
}

const BOOK: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/python/guess_book.py");

#[test]
fn the_books_python_client_and_server_speak_with_ours() {
    let Some(python) = python() else {
        eprintln!("skipped: python3 is not installed");
        return;
    };
    // The book's client against each of our servers.
    for mode in [Mode::Threads, Mode::Async] {
        let server = Server::default(mode);
        let output = std::process::Command::new(python)
            .args([BOOK, "client", &server.addr.port().to_string()])
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let lines: Vec<String> = String::from_utf8(output.stdout)
            .unwrap()
            .lines()
            .map(String::from)
            .collect();
        check_transcript(&lines, &format!("the book's client, our {mode:?} server"));
        server.stop();
    }
    // Our clients against the book's server.
    let port = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap().port()
    };
    let mut book_server = std::process::Command::new(python)
        .args([BOOK, &port.to_string()])
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    eventually("the book's server to listen", || {
        TcpStream::connect(addr).is_ok()
    });
    let threaded = guess::play_threaded(addr);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let asynced = runtime.block_on(guess::play_async_at(addr, &mut Vec::new()));
    let _ = book_server.kill();
    let _ = book_server.wait();
    check_transcript(&threaded.unwrap(), "our threaded client, the book's server");
    check_transcript(&asynced.unwrap(), "our async client, the book's server");
}

/// The address a `concur guess serve` process printed on stderr.
fn listening_address(
    child: &mut std::process::Child,
) -> (SocketAddr, BufReader<std::process::ChildStderr>) {
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    stderr.read_line(&mut line).unwrap();
    let addr = line
        .trim()
        .strip_prefix("concur: listening on ")
        .and_then(|rest| rest.split(' ').next())
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"));
    (addr.parse().unwrap(), stderr)
}

#[test]
fn cli_serve_play_and_ctrl_c() {
    let dir = Dir::new();
    for mode in ["threads", "async"] {
        let mut server = dir
            .concur(["guess", "serve", "--addr", "127.0.0.1:0", "--mode", mode])
            .spawn();
        let (addr, mut stderr) = listening_address(&mut server);
        for client in ["threads", "async"] {
            let run = dir
                .concur([
                    "guess",
                    "play",
                    "--addr",
                    &addr.to_string(),
                    "--mode",
                    client,
                ])
                .run()
                .expect_success();
            let lines: Vec<String> = run.stdout().lines().map(String::from).collect();
            check_transcript(&lines, &format!("CLI {client} client, {mode} server"));
        }
        let pid = rustix::process::Pid::from_raw(server.id() as i32).unwrap();
        rustix::process::kill_process(pid, rustix::process::Signal::INT).unwrap();
        let status = server.wait().unwrap();
        assert!(status.success(), "{mode}: {status}");
        let mut rest = String::new();
        stderr.read_to_string(&mut rest).unwrap();
        assert!(rest.contains("served 2 sessions"), "{mode}: {rest}");
        let mut stdout = String::new();
        server
            .stdout
            .take()
            .unwrap()
            .read_to_string(&mut stdout)
            .unwrap();
        assert!(
            stdout.lines().all(|l| l.starts_with("Server: ")),
            "{stdout}"
        );
        assert!(stdout.contains("Server: 3 is Correct"), "{stdout}");
    }
}

#[test]
fn cli_load_reports_the_documented_json() {
    let dir = Dir::new();
    let run = dir
        .concur(["guess", "load", "--clients", "200", "--json"])
        .run()
        .expect_success();
    let report: serde_json::Value = serde_json::from_str(run.stdout().trim()).unwrap();
    for key in [
        "clients",
        "sessions",
        "failures",
        "seconds",
        "sessions_per_second",
        "p50_ms",
        "p99_ms",
        "peak_rss_mb",
    ] {
        assert!(report.get(key).is_some(), "missing {key}: {report}");
    }
    assert_eq!(report["clients"], 200);
    assert_eq!(report["sessions"], 400);
    assert_eq!(report["failures"], 0);
    assert!(report["p99_ms"].as_f64().unwrap() >= report["p50_ms"].as_f64().unwrap());
}

#[test]
fn at_the_fd_limit_accept_errors_are_logged_and_serving_goes_on() {
    let dir = Dir::new();
    let exe = env!("CARGO_BIN_EXE_concur");
    for mode in ["threads", "async"] {
        let script = format!(
            "ulimit -n 48 && exec '{exe}' guess serve --quiet --addr 127.0.0.1:0 --mode {mode}"
        );
        let mut server = std::process::Command::new("sh")
            .args(["-c", &script])
            .current_dir(dir.path())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // A server that never logs would leave the read below waiting for ever.
        let watchdog = Watchdog::new(&server, Duration::from_secs(60));
        let (addr, mut stderr) = listening_address(&mut server);
        // Hold more connections open than the server has descriptors.
        let held: Vec<TcpStream> = (0..80)
            .filter_map(|_| TcpStream::connect(addr).ok())
            .collect();
        let mut line = String::new();
        stderr.read_line(&mut line).unwrap();
        assert!(
            line.contains("accept failed") && line.contains("still serving"),
            "{mode}: {line}"
        );
        drop(held);
        // Once descriptors free up, games are played again.
        let mut served = false;
        for _ in 0..100 {
            if guess::play_threaded(addr).is_ok() {
                served = true;
                break;
            }
            thread::sleep(Duration::from_millis(50));
        }
        assert!(served, "{mode}: the server stopped serving");
        let pid = rustix::process::Pid::from_raw(server.id() as i32).unwrap();
        rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
        let status = server.wait().unwrap();
        drop(watchdog);
        assert!(status.success(), "{mode}: {status}");
    }
}
