//! The guessing game: one conformance suite for both servers, every client against
//! every server, bad input, many clients, shutdown, and the book's Python programs.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use concur::guess::{self, ServerConfig, ServerStats, Sink};
use concur::process::CancelToken;

use crate::util::{Dir, KillOnDrop, Watchdog, eventually, many_threads};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Threads,
    Async,
    /// The bare-epoll floor: the same answers, without timeouts or limits.
    Epoll,
}

/// Every server.
const ALL: [Mode; 3] = [Mode::Threads, Mode::Async, Mode::Epoll];

/// A server running in this process on an ephemeral port.
struct Server {
    addr: SocketAddr,
    transcript: Arc<Mutex<Vec<String>>>,
    log: Arc<Mutex<Vec<String>>>,
    stop: Box<dyn FnOnce() -> ServerStats + Send>,
}

impl Server {
    fn start(mode: Mode, max_line: usize, grace: Duration) -> Self {
        Self::with_config(
            mode,
            ServerConfig {
                max_line,
                grace,
                ..ServerConfig::default()
            },
        )
    }

    /// A server with `config`, whose transcript and log the test collects.
    fn with_config(mode: Mode, config: ServerConfig) -> Self {
        let (transcript_sink, transcript) = Sink::collect();
        let (log_sink, log) = Sink::collect();
        let config = ServerConfig {
            transcript: transcript_sink,
            log: log_sink,
            ..config
        };
        let listener = guess::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = listener.local_addr().unwrap();
        let stop: Box<dyn FnOnce() -> ServerStats + Send> = match mode {
            Mode::Epoll => {
                let token = CancelToken::new().unwrap();
                let server_token = token.clone();
                let handle = thread::spawn(move || {
                    guess::serve_epoll(listener, config, 2, &server_token).unwrap()
                });
                Box::new(move || {
                    token.cancel();
                    handle.join().unwrap()
                })
            }
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

    /// Like `ask`, but a write or read that fails (the server closed) is `None`.
    fn try_ask(&mut self, line: &str) -> Option<String> {
        self.stream.write_all(format!("{line}\n").as_bytes()).ok()?;
        let mut reply = String::new();
        self.reader.read_line(&mut reply).ok()?;
        reply.ends_with('\n').then(|| reply.trim_end().to_owned())
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
fn every_server_passes_the_conformance_suite() {
    for mode in ALL {
        conformance(mode);
    }
}

#[test]
fn the_server_transcript_records_each_report() {
    for mode in ALL {
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
    for mode in ALL {
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
        let ended = log
            .lock()
            .unwrap()
            .iter()
            .filter(|l| l.contains(" ended: "))
            .count();
        assert_eq!(ended, cases.len(), "one log line per bad session");
    }
}

#[test]
fn an_oversized_line_is_cut_off_at_the_limit() {
    for mode in ALL {
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
    for mode in ALL {
        for client in ["threads", "async"] {
            let server = Server::default(mode);
            let rounds = match client {
                "threads" => guess::play_threaded(server.addr).unwrap(),
                _ => runtime
                    .block_on(guess::play_async_at(server.addr, &mut Vec::new()))
                    .unwrap(),
            };
            let lines: Vec<String> = rounds.iter().map(ToString::to_string).collect();
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
    let _exclusive = many_threads();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    for mode in ALL {
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
    let text = |rounds: Vec<guess::Round>| -> Vec<String> {
        rounds.iter().map(ToString::to_string).collect()
    };
    check_transcript(
        &text(threaded.unwrap()),
        "our threaded client, the book's server",
    );
    check_transcript(
        &text(asynced.unwrap()),
        "our async client, the book's server",
    );
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
        let mut server = KillOnDrop(
            dir.concur([
                "guess",
                "serve",
                "--addr",
                "127.0.0.1:0",
                "--mode",
                mode,
                "--json",
            ])
            .spawn(),
        );
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
        // --json: one object per guess, the same rounds the text shows.
        let run = dir
            .concur(["guess", "play", "--json", "--addr", &addr.to_string()])
            .run()
            .expect_success();
        let rounds: Vec<serde_json::Value> = run
            .stdout()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let as_text: Vec<String> = rounds
            .iter()
            .map(|r| {
                format!(
                    "Client: {} is {}",
                    r["guess"],
                    r["decision"].as_str().unwrap()
                )
            })
            .collect();
        check_transcript(&as_text, &format!("CLI --json client, {mode} server"));
        let games: Vec<u64> = rounds.iter().map(|r| r["game"].as_u64().unwrap()).collect();
        assert!(games.windows(2).all(|w| w[0] <= w[1]) && games.ends_with(&[2]));
        signal(&server, rustix::process::Signal::INT);
        let status = server.wait().unwrap();
        assert_eq!(status.code(), Some(130), "{mode}: {status}");
        let mut rest = String::new();
        stderr.read_to_string(&mut rest).unwrap();
        assert!(rest.contains("served 3 sessions"), "{mode}: {rest}");
        let mut stdout = String::new();
        server
            .stdout
            .take()
            .unwrap()
            .read_to_string(&mut stdout)
            .unwrap();
        // The transcript, then one JSON object with the statistics.
        let (transcript, last) = stdout.trim_end().rsplit_once('\n').unwrap();
        assert!(
            transcript.lines().all(|l| l.starts_with("Server: ")),
            "{stdout}"
        );
        assert!(transcript.contains("Server: 3 is Correct"), "{stdout}");
        let report: serde_json::Value = serde_json::from_str(last).unwrap();
        assert_eq!(report["stats"]["sessions"], 3, "{report}");
        assert_eq!(report["transcript_dropped"], 0, "{report}");
        assert_eq!(
            report["transcript_lines"].as_u64(),
            Some(transcript.lines().count() as u64),
            "{report}"
        );
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
        let mut server = KillOnDrop(
            std::process::Command::new("sh")
                .args(["-c", &script])
                .current_dir(dir.path())
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap(),
        );
        // A server that never logs would leave the read below waiting for ever.
        let watchdog = Watchdog::new(&server, Duration::from_secs(60));
        let (addr, mut stderr) = listening_address(&mut server);
        // Hold more connections open than the server has descriptors.
        let held: Vec<TcpStream> = (0..80)
            .filter_map(|_| TcpStream::connect(addr).ok())
            .collect();
        // The threaded server first says how many sessions it will serve.
        let mut line = String::new();
        while !line.contains("accept failed") {
            line.clear();
            assert!(
                stderr.read_line(&mut line).unwrap() > 0,
                "{mode}: no accept error logged"
            );
        }
        assert!(line.contains("still serving"), "{mode}: {line}");
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
        signal(&server, rustix::process::Signal::TERM);
        let status = server.wait().unwrap();
        drop(watchdog);
        assert_eq!(status.code(), Some(143), "{mode}: {status}");
    }
}

fn signal(child: &std::process::Child, signal: rustix::process::Signal) {
    let pid = rustix::process::Pid::from_raw(child.id() as i32).unwrap();
    rustix::process::kill_process(pid, signal).unwrap();
}

/// Resident memory of a process, in MiB.
fn rss_mb(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap();
    kib / 1024.0
}

/// `concur guess serve` whose stdout is a pipe this test never reads: once the pipe's
/// 64 KiB are full, every write to stdout blocks, as behind a paused pager.
fn serve_with_stalled_stdout(
    dir: &Dir,
    mode: &str,
    extra: &[&str],
) -> (KillOnDrop, SocketAddr, BufReader<std::process::ChildStderr>) {
    let mut server = KillOnDrop(
        dir.concur(["guess", "serve", "--addr", "127.0.0.1:0", "--mode", mode])
            .args(extra)
            .spawn(),
    );
    let (addr, stderr) = listening_address(&mut server);
    (server, addr, stderr)
}

#[test]
fn a_report_flood_into_a_stalled_stdout_is_dropped_and_counted_not_held() {
    // One client sends 4 million REPORT lines (56 MB), which get no reply. Each queued a
    // transcript line on an unbounded channel to a printer blocked on stdout: about
    // 64 bytes per line held, 250 MB here, growing for as long as the client sends.
    const LINES: usize = 4_000_000;
    let dir = Dir::new();
    for mode in ["threads", "async"] {
        let (mut server, addr, mut stderr) =
            serve_with_stalled_stdout(&dir, mode, &["--grace", "500ms"]);
        let watchdog = Watchdog::new(&server, Duration::from_secs(60));
        let mut flood = Raw::connect(addr);
        flood.send("PARAMS 1 1000000");
        assert!(flood.ask("NUMBER").parse::<i64>().is_ok());
        let chunk = "REPORT Warmer\n".repeat(10_000);
        for _ in 0..LINES / 10_000 {
            flood.stream.write_all(chunk.as_bytes()).unwrap();
        }
        // A round trip after the flood: the server has read every REPORT line.
        assert!(flood.ask("NUMBER").parse::<i64>().is_ok(), "{mode}");
        let rss = rss_mb(server.id());
        assert!(
            rss < 64.0,
            "{mode}: the server holds {rss:.0} MiB after {LINES} transcript lines"
        );
        drop(flood);
        // Shutdown with stdout still stalled ends within --grace, as a signal says.
        signal(&server, rustix::process::Signal::TERM);
        let status = server.wait().unwrap();
        drop(watchdog);
        assert_eq!(status.code(), Some(143), "{mode}: {status}");
        let mut rest = String::new();
        stderr.read_to_string(&mut rest).unwrap();
        let dropped: u64 = rest
            .lines()
            .find_map(|l| l.strip_prefix("concur: transcript: "))
            .and_then(|l| l.split(' ').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("{mode}: no count of dropped lines in {rest}"));
        assert!(
            dropped as usize >= LINES - 10_000,
            "{mode}: only {dropped} dropped: {rest}"
        );
    }
}

#[test]
fn a_second_signal_ends_a_server_that_is_still_shutting_down() {
    let dir = Dir::new();
    for mode in ["threads", "async"] {
        // A long grace and an open session: the first signal starts a long shutdown.
        let (mut server, addr, _stderr) =
            serve_with_stalled_stdout(&dir, mode, &["--grace", "60s"]);
        let watchdog = Watchdog::new(&server, Duration::from_secs(30));
        let mut open = Raw::connect(addr);
        open.send("PARAMS 1 5");
        assert!(open.ask("NUMBER").parse::<i64>().is_ok());
        signal(&server, rustix::process::Signal::TERM);
        eventually("the listener to close", || {
            TcpStream::connect(addr).is_err()
        });
        assert!(
            server.try_wait().unwrap().is_none(),
            "{mode}: the open session keeps it running"
        );
        signal(&server, rustix::process::Signal::INT);
        let status = server.wait().unwrap();
        drop(watchdog);
        assert_eq!(status.code(), Some(130), "{mode}: {status}");
    }
}

#[test]
fn connections_past_max_sessions_get_server_full_and_the_rest_are_served() {
    for mode in [Mode::Threads, Mode::Async] {
        let server = Server::with_config(
            mode,
            ServerConfig {
                max_sessions: Some(3),
                ..ServerConfig::default()
            },
        );
        let mut held: Vec<Raw> = (0..3)
            .map(|_| {
                let mut c = Raw::connect(server.addr);
                c.send("PARAMS 1 9");
                assert!(c.ask("NUMBER").parse::<i64>().is_ok(), "{mode:?}");
                c
            })
            .collect();
        let mut extra = Raw::connect(server.addr);
        assert_eq!(extra.reply(), "ERROR server full", "{mode:?}");
        assert!(extra.closed(), "{mode:?}");
        // The held sessions are still served, and a freed place is taken again.
        assert!(held[0].ask("NUMBER").parse::<i64>().is_ok());
        drop(held.pop());
        let mut next = None;
        eventually("a place to free up", || {
            // Until the server has seen the drop, a connection is refused: it reads
            // `ERROR server full` and may find the socket reset under its writes.
            let mut c = Raw::connect(server.addr);
            let ok = c.try_ask("PARAMS 1 1\nNUMBER").as_deref() == Some("1");
            next = Some(c);
            ok
        });
        let log = Arc::clone(&server.log);
        drop((held, next));
        let stats = server.stop();
        assert!(stats.refused >= 1, "{mode:?}: {stats:?}");
        assert_eq!(stats.session_limit, Some(3), "{mode:?}");
        assert!(stats.peak_sessions <= 3, "{mode:?}: {stats:?}");
        let log = log.lock().unwrap();
        assert!(
            log.iter().any(|l| l.contains("server full")),
            "{mode:?}: {log:?}"
        );
    }
}

/// The hard limit on open files, and how many threads the server could start.
fn fd_hard_limit() -> u64 {
    rustix::process::getrlimit(rustix::process::Resource::Nofile)
        .maximum
        .unwrap_or(u64::MAX)
}

#[test]
fn the_threaded_server_refuses_past_its_thread_budget_instead_of_aborting() {
    // Past about 16,300 threads here, a new thread's signal-stack mmap fails and Rust
    // aborts the process: every connected client was dropped. Now the server refuses
    // what its thread budget cannot hold.
    let Some(budget) = concur::limits::thread_budget(concur::guess::server::SESSION_STACK) else {
        eprintln!("skipped: no thread budget is known on this system");
        return;
    };
    let target = budget.threads + 500;
    let needed = target as u64 + 200;
    if fd_hard_limit() < needed || target > 40_000 {
        eprintln!(
            "skipped: reaching the thread budget ({} threads) needs {needed} descriptors; the limit is {}",
            budget.threads,
            fd_hard_limit()
        );
        return;
    }
    let _exclusive = many_threads();
    let _ = concur::limits::raise_fd_limit();
    let dir = Dir::new();
    let (mut server, addr, mut stderr) =
        serve_with_stalled_stdout(&dir, "threads", &["--quiet", "--grace", "1s"]);
    let watchdog = Watchdog::new(&server, Duration::from_secs(240));
    let mut line = String::new();
    stderr.read_line(&mut line).unwrap();
    assert!(line.contains("serving at most"), "{line}");
    let mut held = Vec::with_capacity(target);
    for _ in 0..target {
        match TcpStream::connect(addr) {
            Ok(stream) => held.push(stream),
            Err(e) => panic!("connection {} failed: {e}", held.len()),
        }
    }
    // Every connection is either served or refused with a word: none is dropped, and
    // the process is alive.
    let mut refused = 0;
    for stream in &held {
        stream.set_nonblocking(true).unwrap();
    }
    eventually(
        "the server to answer the connections past its budget",
        || {
            refused = held
            .iter()
            .filter(|s| {
                let mut buf = [0u8; 32];
                let mut stream: &TcpStream = s;
                matches!(stream.read(&mut buf), Ok(n) if buf[..n].starts_with(b"ERROR server full"))
            })
            .count();
            refused > 0
        },
    );
    assert!(server.try_wait().unwrap().is_none(), "the server died");
    drop(held);
    // Once they are gone, games are played again.
    eventually("the sessions to end", || guess::play_threaded(addr).is_ok());
    signal(&server, rustix::process::Signal::TERM);
    let status = server.wait().unwrap();
    drop(watchdog);
    assert_eq!(status.code(), Some(143), "{status}");
    let mut rest = String::new();
    stderr.read_to_string(&mut rest).unwrap();
    assert!(rest.contains("server full"), "{rest}");
}

#[test]
fn silent_and_trickling_connections_are_closed_after_the_idle_timeout() {
    for mode in [Mode::Threads, Mode::Async] {
        let server = Server::with_config(
            mode,
            ServerConfig {
                idle_timeout: Some(Duration::from_millis(300)),
                ..ServerConfig::default()
            },
        );
        let mut silent = Raw::connect(server.addr);
        let mut trickle = Raw::connect(server.addr);
        let mut playing = Raw::connect(server.addr);
        playing.send("PARAMS 1 9");
        // Half a line, then nothing: a whole line must arrive within the timeout.
        trickle.stream.write_all(b"PARA").unwrap();
        for client in [&mut silent, &mut trickle] {
            assert_eq!(
                client.reply(),
                "ERROR no complete line for 300ms: closing the connection",
                "{mode:?}"
            );
            assert!(client.closed(), "{mode:?}");
        }
        let stats = server.stop();
        assert_eq!(stats.idle_closes, 3, "{mode:?}: {stats:?}");
        assert_eq!(stats.protocol_errors, 0, "{mode:?}");
        drop(playing);
    }
}

#[test]
fn a_client_that_stops_reading_is_closed_after_the_write_timeout() {
    for mode in [Mode::Threads, Mode::Async] {
        let server = Server::with_config(
            mode,
            ServerConfig {
                write_timeout: Some(Duration::from_millis(200)),
                ..ServerConfig::default()
            },
        );
        let stream = TcpStream::connect(server.addr).unwrap();
        stream
            .set_write_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        // Ask for guesses and never read one: the replies fill the socket buffers,
        // then the server's write blocks.
        let sender = {
            let mut stream = stream.try_clone().unwrap();
            thread::spawn(move || {
                let mut sent = 0usize;
                let _ = stream.write_all(b"PARAMS 1 1000000000\n");
                let batch = "NUMBER\n".repeat(10_000);
                while sent < 50_000_000 && stream.write_all(batch.as_bytes()).is_ok() {
                    sent += 10_000;
                }
            })
        };
        let log = Arc::clone(&server.log);
        eventually("the server to give up on the reader", || {
            log.lock()
                .unwrap()
                .iter()
                .any(|l| l.contains("the client stopped reading"))
        });
        drop(stream);
        sender.join().unwrap();
        let stats = server.stop();
        assert_eq!(stats.write_timeouts, 1, "{mode:?}: {stats:?}");
    }
}

#[test]
fn error_replies_and_log_lines_quote_at_most_80_bytes_of_a_bad_line() {
    for mode in ALL {
        let server = Server::start(mode, 4 << 20, Duration::from_secs(5));
        for line in ["\u{1}".repeat(1000), "x".repeat(3 << 20)] {
            let mut bad = Raw::connect(server.addr);
            bad.stream.write_all(line.as_bytes()).unwrap();
            bad.stream.write_all(b"\n").unwrap();
            let reply = bad.reply();
            assert!(
                reply.starts_with("ERROR unknown command \""),
                "{reply:.100}"
            );
            assert!(
                reply.len() <= 600,
                "{mode:?}: a {}-byte reply to a {}-byte line",
                reply.len(),
                line.len()
            );
        }
        let log = Arc::clone(&server.log);
        server.stop();
        for entry in log.lock().unwrap().iter() {
            assert!(
                entry.len() <= 700,
                "{mode:?}: a {}-byte log line",
                entry.len()
            );
        }
    }
}

#[test]
fn a_last_line_without_its_newline_is_answered_before_the_close() {
    for mode in ALL {
        let server = Server::default(mode);
        let mut c = Raw::connect(server.addr);
        // Split mid-word, then ended by a half-close instead of a newline.
        c.stream.write_all(b"PARAMS 3 3\nNUM").unwrap();
        c.stream.flush().unwrap();
        c.stream.write_all(b"BER").unwrap();
        c.stream.shutdown(std::net::Shutdown::Write).unwrap();
        assert_eq!(c.reply(), "3", "{mode:?}");
        assert!(c.closed(), "{mode:?}");
        server.stop();
    }
}

#[test]
fn accepted_sockets_have_no_nagle_delay_without_a_call_of_their_own() {
    // The servers set no socket option per connection: TCP_NODELAY comes from the
    // listener `bind` makes.
    let listener = guess::bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (accepted, _) = listener.accept().unwrap();
    assert!(accepted.nodelay().unwrap());
    assert!(
        !client.nodelay().unwrap(),
        "the client's own default is Nagle"
    );
}

#[test]
fn the_epoll_floor_serves_others_while_one_client_floods_without_reading() {
    let server = Server::default(Mode::Epoll);
    // NUMBER requests, never reading a reply (each a distinct 18-digit number): the
    // server stops reading from this client once its replies back up, instead of
    // holding them all, so the client's writes stall long before 32 MiB.
    let mut flood = Raw::connect(server.addr);
    rustix::net::sockopt::set_socket_recv_buffer_size(&flood.stream, 4096).unwrap();
    flood.send("PARAMS 100000000000000000 999999999999999999");
    let writer = {
        let mut stream = flood.stream.try_clone().unwrap();
        thread::spawn(move || {
            let chunk = b"NUMBER\n".repeat(1 << 12);
            let mut written = 0usize;
            stream
                .set_write_timeout(Some(Duration::from_secs(1)))
                .unwrap();
            while written < 32 << 20 {
                match stream.write(&chunk) {
                    Ok(n) => written += n,
                    Err(_) => break,
                }
            }
            written
        })
    };
    let written = writer.join().unwrap();
    assert!(written < 32 << 20, "the server read all {written} bytes");
    let mut good = Raw::connect(server.addr);
    good.send("PARAMS 5 5");
    assert_eq!(good.ask("NUMBER"), "5");
    drop(good);
    // The flooder's replies are there when it reads.
    let first: i64 = flood.reply().parse().unwrap();
    assert!((100_000_000_000_000_000..=999_999_999_999_999_999).contains(&first));
    let stats = server.stop();
    // The floor has no grace period: shutdown closes the flooder at once.
    assert_eq!(stats.forced_closes, 1);
    assert_eq!(stats.sessions, 2);
}

#[test]
fn cli_load_counts_the_servers_system_calls() {
    if std::process::Command::new("strace")
        .arg("-V")
        .output()
        .is_err()
    {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "strace is required under CI=true (.ci/run installs it)"
        );
        eprintln!("skipped: strace is not installed (apt-get install strace)");
        return;
    }
    let dir = Dir::new();
    let run = dir
        .concur([
            "guess",
            "load",
            "--syscalls",
            "--mode",
            "epoll,async",
            "--clients",
            "100",
            "--json",
        ])
        .run()
        .expect_success();
    let reports: Vec<serde_json::Value> = run
        .stdout()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(reports.len(), 2);
    for report in &reports {
        let server = report["server"].as_str().unwrap();
        assert_eq!(report["failures"], 0, "{report}");
        assert!(report["server_cpu_us_per_session"].as_f64().unwrap() > 0.0);
        let calls = report["server_syscalls"].as_object().unwrap();
        // Every connection (two sessions) is accepted, read to its end and closed:
        // one accept4 and one close per connection (the trace ends with the load, when
        // the server may not have closed the last few yet), and at least one read and
        // one send per NUMBER round trip (each game takes one at least).
        for (name, least) in [
            ("accept4", 0.5),
            ("close", 0.4),
            ("recvfrom", 1.0),
            ("sendto", 1.0),
        ] {
            let per = calls
                .get(name)
                .and_then(serde_json::Value::as_f64)
                .unwrap_or(0.0);
            assert!(per >= least, "{server}: {name} {per} per session: {report}");
        }
        let total = report["server_syscalls_per_session"].as_f64().unwrap();
        let sum: f64 = calls.values().filter_map(serde_json::Value::as_f64).sum();
        assert!((total - sum).abs() < 1e-6, "{server}: {total} vs {sum}");
    }
    // The floor makes no per-connection socket-option or shutdown calls; since the
    // change, neither does the async server.
    for report in &reports {
        let calls = report["server_syscalls"].as_object().unwrap();
        for name in ["setsockopt", "shutdown"] {
            assert!(
                !calls.contains_key(name),
                "{}: {name}: {report}",
                report["server"]
            );
        }
    }
}
