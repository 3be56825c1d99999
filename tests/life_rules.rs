//! `concur life rules-server` and `concur life --rules`: the book's network I/O over a
//! real TCP connection, with every strategy and every fault.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::time::Duration;

use crate::util::{Dir, KillOnDrop};

const STRATEGIES: [&str; 6] = crate::util::LIFE_STRATEGIES;

/// No fault may make a client hang: each run must end well within this.
const NO_HANG: Duration = Duration::from_secs(30);

/// A `concur life rules-server` process on a free port, killed when dropped. Its log
/// lines after the first arrive on `lines`, read by a thread of their own, so that a
/// test can wait for one with a deadline.
struct Server {
    process: KillOnDrop,
    addr: SocketAddr,
    lines: std::sync::mpsc::Receiver<String>,
    /// Lines received and not yet asked for.
    seen: Vec<String>,
}

impl Server {
    fn start(dir: &Dir, args: &[&str]) -> Self {
        let mut process = KillOnDrop(
            dir.concur(["life", "rules-server", "--addr", "127.0.0.1:0"])
                .args(args)
                .spawn(),
        );
        let mut stderr = BufReader::new(process.stderr.take().expect("piped stderr"));
        let mut line = String::new();
        stderr
            .read_line(&mut line)
            .expect("read the listening line");
        let addr = line
            .strip_prefix("concur: listening on ")
            .and_then(|rest| rest.split(' ').next())
            .and_then(|addr| addr.parse().ok())
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"));
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in stderr.lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        Self {
            process,
            addr,
            lines,
            seen: Vec::new(),
        }
    }

    /// Waits up to 30 s for a log line containing `needle` (in whatever order lines
    /// came); returns it.
    fn log_line(&mut self, needle: &str) -> String {
        if let Some(i) = self.seen.iter().position(|l| l.contains(needle)) {
            return self.seen.remove(i);
        }
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if line.contains(needle) => return line,
                Ok(line) => self.seen.push(line),
                Err(_) => panic!(
                    "the server never logged {needle:?}; it logged {:?}",
                    self.seen
                ),
            }
        }
    }

    /// Every log line not yet asked for, until the server's stderr closes.
    fn rest(&mut self) -> String {
        let mut all = std::mem::take(&mut self.seen);
        all.extend(self.lines.iter());
        all.join("\n")
    }

    fn rules(&self) -> String {
        self.addr.to_string()
    }
}

/// `concur life` with `args`, printing the final grid.
fn final_grid(dir: &Dir, args: &[&str]) -> String {
    dir.concur(["life", "--print", "final"])
        .args(args)
        .run_within(NO_HANG)
        .expect_success()
        .stdout()
}

/// A golly-style pattern: the R-pentomino with a rule line and a comment.
const R_PENTOMINO: &str =
    "#N R-pentomino\n#C a methuselah\nx = 3, y = 3, rule = B3/S23\nb2o$2o$bo!\n";

#[test]
fn every_strategy_through_a_rules_server_matches_serial_without_one() {
    let dir = Dir::new();
    let pattern = dir.create("r.rle", R_PENTOMINO);
    let server = Server::start(&dir, &["--latency", "0"]);
    let boards: [Vec<String>; 3] = [
        vec![],
        ["--size", "20x20", "--random", "0.4", "--seed", "3"]
            .map(str::to_owned)
            .to_vec(),
        vec![
            "--pattern".into(),
            pattern.display().to_string(),
            "--size".into(),
            "16x16".into(),
        ],
    ];
    for board in &boards {
        let mut args: Vec<&str> = board.iter().map(String::as_str).collect();
        args.extend(["--generations", "6"]);
        let expected = final_grid(&dir, &args);
        for strategy in STRATEGIES {
            let mut with = args.clone();
            with.extend(["--mode", strategy, "--rules"]);
            let rules = server.rules();
            with.push(&rules);
            assert_eq!(final_grid(&dir, &with), expected, "{strategy} on {board:?}");
        }
    }
}

#[test]
fn the_books_glider_through_a_server_is_the_books_glider() {
    let dir = Dir::new();
    let server = Server::start(&dir, &["--latency", "1ms"]);
    let rules = server.rules();
    let grid = final_grid(&dir, &["--mode", "async", "--rules", &rules]);
    // Generation 4 of the book's glider, as printed in the book.
    assert_eq!(
        grid,
        "---------\n----*----\n-----*---\n---***---\n---------\n"
    );
}

/// A free port with nothing listening on it.
fn dead_port() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap()
}

#[test]
fn no_server_is_a_simulation_error_at_the_first_cell_for_every_strategy() {
    let dir = Dir::new();
    let rules = dead_port().to_string();
    for strategy in STRATEGIES {
        dir.concur(["life", "--mode", strategy, "--rules", &rules])
            .run_within(NO_HANG)
            .expect_code(1)
            .expect_stderr("SimulationError at (0, 0)")
            .expect_stderr(&format!("cannot connect to rules server {rules}"));
    }
}

#[test]
fn a_server_failing_a_cell_is_that_cells_simulation_error() {
    let dir = Dir::new();
    let server = Server::start(&dir, &["--latency", "0", "--fail-at", "2,3"]);
    let rules = server.rules();
    for strategy in STRATEGIES {
        dir.concur(["life", "--mode", strategy, "--rules", &rules])
            .run_within(NO_HANG)
            .expect_code(1)
            .expect_stderr(&format!(
                "SimulationError at (2, 3): rules server {rules} failed the cell: \"Problem with I/O\""
            ));
    }
}

#[test]
fn a_server_killed_mid_generation_fails_the_run_without_a_hang() {
    let dir = Dir::new();
    for strategy in ["pool", "async", "thread-per-cell"] {
        let mut server = Server::start(&dir, &["--latency", "300ms"]);
        let rules = server.rules();
        let client = dir
            .concur(["life", "--mode", strategy, "--rules", &rules])
            .args([
                "--size",
                "10x10",
                "--random",
                "0.3",
                "--generations",
                "100",
                "--json",
            ]);
        let killer = std::thread::spawn(move || {
            // Mid-way through the third generation.
            std::thread::sleep(Duration::from_millis(750));
            server.process.kill().unwrap();
            server
        });
        let run = client.run_within(NO_HANG);
        drop(killer.join());
        let run = run.expect_code(1).expect_stderr("SimulationError at (");
        // The cell that reports is the first in row-major order: its request went out
        // on the connection that broke, or, sent just after, opened a new one (a
        // closed connection is opened again) and found nobody listening.
        assert!(
            run.stderr()
                .contains(&format!("rules server {rules} closed the connection"))
                || run.stderr().contains(&format!("lost rules server {rules}"))
                || run
                    .stderr()
                    .contains(&format!("cannot send to rules server {rules}"))
                || run.stderr().contains(&format!(
                    "cannot connect to rules server {rules}: Connection refused"
                )),
            "{run}"
        );
        if strategy != "pool" {
            // Pool takes 10 rounds of 300 ms per generation, so it is still in its first.
            assert!(
                run.stdout().lines().count() >= 1,
                "the generations before the kill were reported\n{run}"
            );
        }
    }
}

/// A fake server on a free port: it greets with `greeting`, then hands each request
/// (16 bytes) to `reply`, which returns the bytes to send back (nothing: no reply).
fn fake_server(
    greeting: &'static [u8],
    reply: fn(&[u8; 16]) -> Vec<u8>,
) -> (SocketAddr, std::thread::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let handle = std::thread::spawn(move || {
        // Serve connections until the client is done (one accept per client connection;
        // the listener is closed when the test's client process has exited).
        listener.set_nonblocking(true).unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        let mut open = Vec::new();
        while std::time::Instant::now() < deadline {
            match listener.accept() {
                Ok((mut stream, _)) => {
                    stream.set_nonblocking(false).unwrap();
                    if stream.write_all(greeting).is_err() {
                        continue;
                    }
                    let mut writer = stream.try_clone().unwrap();
                    open.push(std::thread::spawn(move || {
                        let mut frame = [0u8; 16];
                        while stream.read_exact(&mut frame).is_ok() {
                            if writer.write_all(&reply(&frame)).is_err() {
                                break;
                            }
                        }
                    }));
                }
                Err(_) if open.iter().all(|t| t.is_finished()) && !open.is_empty() => break,
                Err(_) => std::thread::sleep(Duration::from_millis(5)),
            }
        }
        for thread in open {
            let _ = thread.join();
        }
    });
    (addr, handle)
}

const GREETING: &[u8] = b"LIFE\x01\x00\x00\x00";

#[test]
fn a_reply_that_never_comes_times_out_for_every_strategy() {
    let dir = Dir::new();
    for strategy in STRATEGIES {
        let (addr, server) = fake_server(GREETING, |_| Vec::new());
        let rules = addr.to_string();
        let started = std::time::Instant::now();
        dir.concur([
            "life",
            "--mode",
            strategy,
            "--rules",
            &rules,
            "--io-timeout",
            "300ms",
        ])
        .run_within(NO_HANG)
        .expect_code(1)
        .expect_stderr("SimulationError at (0, 0)")
        .expect_stderr(&format!(
            "no reply from rules server {rules} within 300ms (--io-timeout)"
        ));
        // Not a timing assertion: only that the 10 s default did not apply.
        assert!(started.elapsed() < Duration::from_secs(9), "{strategy}");
        server.join().unwrap();
    }
}

#[test]
fn a_malformed_reply_or_a_stranger_is_named() {
    let dir = Dir::new();
    // A reply with status 9.
    let (addr, server) = fake_server(GREETING, |frame| {
        let mut reply = frame[..4].to_vec();
        reply.extend([9, 0, 0, 0]);
        reply
    });
    let rules = addr.to_string();
    dir.concur(["life", "--mode", "async", "--rules", &rules])
        .run_within(NO_HANG)
        .expect_code(1)
        .expect_stderr("SimulationError at (0, 0)")
        .expect_stderr(&format!(
            "malformed reply from rules server {rules}: reply 0: unknown status 9"
        ));
    server.join().unwrap();

    // Something else listening: a text protocol's banner.
    let (addr, server) = fake_server(b"220 smtp ready\r\n", |_| Vec::new());
    let rules = addr.to_string();
    dir.concur(["life", "--mode", "pool", "--rules", &rules])
        .run_within(NO_HANG)
        .expect_code(1)
        .expect_stderr(&format!("{rules} is not a concur rules server"));
    server.join().unwrap();
}

#[test]
fn rules_arguments_that_do_not_fit_are_refused() {
    let dir = Dir::new();
    dir.concur(["life", "--rules", "127.0.0.1:1", "--latency", "5ms"])
        .run()
        .expect_code(2)
        .expect_stderr("--latency");
    dir.concur(["life", "--mode", "parallel", "--rules", "127.0.0.1:1"])
        .run()
        .expect_code(2)
        .expect_stderr("--rules does not apply to --mode parallel");
    dir.concur(["life", "--rules", "no-such-host.invalid:1"])
        .run()
        .expect_code(2)
        .expect_stderr("--rules no-such-host.invalid:1");
    dir.concur(["life", "--io-timeout", "1s"])
        .run()
        .expect_code(2)
        .expect_stderr("--rules");
}

#[test]
fn the_server_stops_on_sigint_with_its_counts() {
    let dir = Dir::new();
    let mut server = Server::start(&dir, &["--latency", "0", "--json", "--fail-at", "0,3"]);
    let rules = server.rules();
    dir.concur([
        "life",
        "--mode",
        "pool",
        "--rules",
        &rules,
        "--generations",
        "1",
        "--print",
        "none",
    ])
    .run_within(NO_HANG)
    .expect_code(1);
    dir.concur([
        "life",
        "--mode",
        "async",
        "--rules",
        &rules,
        "--generations",
        "2",
        "--print",
        "none",
        "--size",
        "3x3",
    ])
    .run_within(NO_HANG)
    .expect_success();
    let pid = rustix::process::Pid::from_child(&server.process);
    rustix::process::kill_process(pid, rustix::process::Signal::INT).unwrap();
    let rest = server.rest();
    let mut stdout = String::new();
    server
        .process
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut stdout)
        .unwrap();
    let status = server.process.wait().unwrap();
    assert_eq!(status.code(), Some(130), "{rest}");
    let stats: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    // Pool: all 45 cells asked, one failed; async: 9 cells, twice, none failed.
    assert_eq!(stats["failed"], 1, "{stats}");
    assert_eq!(stats["answered"], 44 + 18, "{stats}");
    assert!(rest.contains("closed after"), "{rest}");
}

/// One valid request frame (cell (1, 1), empty, 3 neighbours) under `id`.
fn request(id: u32) -> [u8; 16] {
    let mut frame = [0u8; 16];
    frame[..4].copy_from_slice(&id.to_le_bytes());
    frame[4..8].copy_from_slice(&1u32.to_le_bytes());
    frame[8..12].copy_from_slice(&1u32.to_le_bytes());
    frame[13] = 3;
    frame
}

/// A kernel figure of a process from `/proc/PID/status`, in KiB (VmHWM: peak RSS).
fn status_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("no {field} in {status}"))
}

/// A client that sends valid requests as fast as the server takes them and never reads
/// a reply: the server stops reading it once its replies fill the connection's budget
/// (TCP then blocks the client), its memory stays near its start, and it closes the
/// connection once the client has taken no reply for the write timeout. (The old
/// server queued every reply: 1.9 GB in 7 s.)
#[test]
fn a_client_that_never_reads_costs_the_server_a_bounded_queue() {
    let dir = Dir::new();
    let mut server = Server::start(&dir, &["--latency", "0", "--write-timeout", "2s"]);
    let pid = server.process.id();
    let mut socket = std::net::TcpStream::connect(server.addr).unwrap();
    socket
        .set_write_timeout(Some(Duration::from_secs(1)))
        .unwrap();
    let batch: Vec<u8> = (0..4096).flat_map(request).collect();
    let mut sent = 0usize;
    const LIMIT: usize = 512 << 20;
    while sent < LIMIT {
        match socket.write(&batch) {
            Ok(n) => sent += n,
            // Blocked (the server stopped reading), or closed (it gave up on us).
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock
                        | std::io::ErrorKind::TimedOut
                        | std::io::ErrorKind::ConnectionReset
                        | std::io::ErrorKind::BrokenPipe
                ) =>
            {
                break;
            }
            Err(e) => panic!("{e}"),
        }
    }
    assert!(
        sent < 64 << 20,
        "the server took {} MB of requests from a client that reads nothing",
        sent >> 20
    );
    let peak_mb = status_kib(pid, "VmHWM:") / 1024;
    assert!(peak_mb < 100, "the server's peak RSS reached {peak_mb} MB");
    server.log_line("took no reply for 2s (it stopped reading)");
    // The server is still there for others.
    dir.concur(["life", "--rules", &server.rules(), "--print", "final"])
        .run_within(NO_HANG)
        .expect_success();
}

/// Past --max-connections, a connection gets a refusal that says why, and the client
/// names it; once connections close, clients are served again.
#[test]
fn connections_past_the_limit_are_refused_with_a_reason() {
    let dir = Dir::new();
    // Past the 8 connections a client opens, so that once the held ones go it is served.
    let mut server = Server::start(&dir, &["--max-connections", "10", "--latency", "0"]);
    let held: Vec<std::net::TcpStream> = (0..10)
        .map(|_| {
            let mut s = std::net::TcpStream::connect(server.addr).unwrap();
            let mut greeting = [0u8; 8];
            s.read_exact(&mut greeting).unwrap();
            assert_eq!(&greeting, GREETING);
            s
        })
        .collect();
    let mut extra = std::net::TcpStream::connect(server.addr).unwrap();
    let mut refusal = Vec::new();
    extra.read_to_end(&mut refusal).unwrap();
    assert_eq!(&refusal[..8], b"LIFE\x01\x00\x01\x00", "{refusal:?}");
    let len = u16::from_le_bytes([refusal[8], refusal[9]]) as usize;
    let why = String::from_utf8_lossy(&refusal[10..]);
    assert_eq!(why.len(), len);
    assert!(why.contains("10 connections are open"), "{why}");
    let rules = server.rules();
    dir.concur(["life", "--rules", &rules])
        .run_within(NO_HANG)
        .expect_code(1)
        .expect_stderr(&format!(
            "rules server {rules} refused the connection: \"10 connections are open"
        ));
    server.log_line("refused a connection");
    drop(held);
    crate::util::eventually("the server to serve again", || {
        dir.concur(["life", "--rules", &rules, "--print", "none"])
            .run_within(NO_HANG)
            .code()
            == Some(0)
    });
}

/// A connection that sends nothing, or trickles a request slower than the idle
/// timeout allows, is closed; each is logged with what it sent.
#[test]
fn idle_and_trickling_connections_are_closed() {
    let dir = Dir::new();
    let mut server = Server::start(&dir, &["--idle-timeout", "500ms"]);
    let mut silent = std::net::TcpStream::connect(server.addr).unwrap();
    let mut trickler = std::net::TcpStream::connect(server.addr).unwrap();
    let frame = request(7);
    let feeder = std::thread::spawn(move || {
        // A byte every 100 ms: each is prompt, the request as a whole is not.
        for byte in frame {
            if trickler.write_all(&[byte]).is_err() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        // Sent whole: the server must have answered it, so it was not closed.
        let mut reply = [0u8; 16];
        trickler.read_exact(&mut reply).is_err()
    });
    silent
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut got = Vec::new();
    silent.read_to_end(&mut got).unwrap();
    assert_eq!(
        got, GREETING,
        "the silent client got only the greeting, then EOF"
    );
    server.log_line("no request in 500ms (--idle-timeout)");
    assert!(feeder.join().unwrap(), "the trickled request was served");
    server.log_line("bytes of a request in 500ms (--idle-timeout)");
}
