//! `concur tail` as a service is run: as a non-root user through permission flips,
//! idle for long, with directories that come later, under a descriptor limit, into a
//! reader that goes away, with lines that never end; and the options people reach for
//! (-n, -c, --glob, --pid, standard input).

use std::fs::{self, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::thread;
use std::time::Duration;

use crate::tail::{append, wait_for_lines};
use crate::util::{Dir, Watchdog};

fn chmod(path: &Path, mode: u32) {
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

fn lines_of(path: &Path) -> Vec<String> {
    fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(String::from)
        .collect()
}

fn terminate(child: &std::process::Child) {
    let pid = rustix::process::Pid::from_child(child);
    rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
}

/// How to run concur as a user without special powers: as itself when it is not root;
/// as `nobody` through `setpriv` when it is. `None` when it is root and has no setpriv.
fn unprivileged(dir: &Dir) -> Option<Command> {
    if !rustix::process::geteuid().is_root() {
        return Some(Command::new(env!("CARGO_BIN_EXE_concur")));
    }
    if Command::new("setpriv").arg("--version").output().is_err() {
        return None;
    }
    // A copy of the binary that nobody can surely reach, and a directory it can write.
    let exe = dir.path().join("concur");
    fs::copy(env!("CARGO_BIN_EXE_concur"), &exe).unwrap();
    chmod(&exe, 0o755);
    chmod(dir.path(), 0o777);
    let mut command = Command::new("setpriv");
    command
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .arg(exe);
    Some(command)
}

/// Item 1: logrotate's `create` makes the new file unreadable for a moment, and a
/// parent directory can be at mode 000 for a moment. A non-root tailer used to drop the
/// file for good (and exit 1 once no file was left); it must retry and lose nothing.
#[test]
fn a_non_root_tailer_survives_a_file_and_a_directory_whose_modes_flip() {
    let dir = Dir::new();
    let Some(mut command) = unprivileged(&dir) else {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "running as root without setpriv (util-linux): cannot test as a non-root user"
        );
        println!("skipped: running as root and setpriv (util-linux) is missing");
        return;
    };
    let logs = dir.path().join("logs");
    fs::create_dir(&logs).unwrap();
    chmod(&logs, 0o755);
    let log = logs.join("app.log");
    append(&log, "one");
    chmod(&log, 0o644);
    let out = dir.path().join("out.log");
    let mut tailer = command
        .args(["tail", "-F", "--idle-exit", "3s", "-o"])
        .arg(&out)
        .arg(&log)
        .current_dir(dir.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let watchdog = Watchdog::new(&tailer, Duration::from_secs(60));
    wait_for_lines(&mut tailer, &out, 1);

    // A rotation whose new file cannot be read yet; the old one still gets a line.
    fs::rename(&log, logs.join("app.log.1")).unwrap();
    append(&log, "two");
    chmod(&log, 0o000);
    thread::sleep(Duration::from_millis(300));
    append(&logs.join("app.log.1"), "late");
    thread::sleep(Duration::from_millis(300));
    chmod(&log, 0o644);
    append(&log, "three");
    wait_for_lines(&mut tailer, &out, 4);

    // The directory itself unreadable for a moment.
    chmod(&logs, 0o000);
    append(&log, "four");
    thread::sleep(Duration::from_millis(300));
    chmod(&logs, 0o755);
    append(&log, "five");
    wait_for_lines(&mut tailer, &out, 6);

    let output = tailer.wait_with_output().unwrap();
    drop(watchdog);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{}: {stderr}", output.status);
    let mut lines = lines_of(&out);
    lines.sort();
    assert_eq!(
        lines,
        ["five", "four", "late", "one", "three", "two"],
        "{stderr}"
    );
    assert!(stderr.contains("permission denied"), "{stderr}");
    assert!(stderr.contains("accessible again"), "{stderr}");
}

/// The voluntary and involuntary context switches of every thread of `pid`, by thread.
fn switches(pid: u32) -> std::collections::HashMap<String, u64> {
    let mut by_thread = std::collections::HashMap::new();
    for task in fs::read_dir(format!("/proc/{pid}/task")).unwrap().flatten() {
        let status = fs::read_to_string(task.path().join("status")).unwrap_or_default();
        let n: u64 = status
            .lines()
            .filter(|l| l.contains("ctxt_switches"))
            .filter_map(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
            .sum();
        by_thread.insert(task.file_name().to_string_lossy().into_owned(), n);
    }
    by_thread
}

/// Item 2: with inotify working, quiet files cost no wake-ups. The old tailer woke
/// every thread every 100 ms: 200 files made about 6,000 wake-ups in 3 s. This counts
/// context switches, not time, so a slow machine cannot fail it.
#[test]
fn quiet_files_cause_no_wake_ups() {
    for mode in ["events", "threads", "mixed", "async"] {
        let dir = Dir::new();
        let names: Vec<String> = (0..200).map(|i| format!("q{i}.log")).collect();
        for name in &names {
            dir.create(name, "hello\n");
        }
        let mut tailer = dir
            .concur(["tail", "--mode", mode, "-o", "out.log"])
            .args(&names)
            .spawn();
        wait_for_lines(&mut tailer, &dir.path().join("out.log"), 200);
        // Let the runtime's short-lived threads settle.
        thread::sleep(Duration::from_millis(1500));
        let before = switches(tailer.id());
        thread::sleep(Duration::from_secs(3));
        let after = switches(tailer.id());
        let woke: u64 = after
            .iter()
            .map(|(tid, n)| n.saturating_sub(before.get(tid).copied().unwrap_or(0)))
            .sum();
        terminate(&tailer);
        assert!(tailer.wait_with_output().unwrap().status.success());
        // One safety re-check (5 s apart) may fall in the window: a handful of switches.
        assert!(
            woke <= 10,
            "{mode}: {woke} context switches in 3 s of quiet"
        );
    }
}

/// Item 3: a directory missing at start is watched through its ancestor. With a 60 s
/// poll interval, only inotify can bring the line within the test's wait.
#[test]
fn a_directory_created_later_is_watched_not_polled() {
    let dir = Dir::new();
    let mut tailer = dir
        .concur([
            "tail",
            "-F",
            "--interval",
            "60s",
            "-o",
            "out.log",
            "later/deeper/app.log",
        ])
        .spawn();
    thread::sleep(Duration::from_millis(300));
    fs::create_dir_all(dir.path().join("later/deeper")).unwrap();
    append(&dir.path().join("later/deeper/app.log"), "arrived");
    wait_for_lines(&mut tailer, &dir.path().join("out.log"), 1);
    terminate(&tailer);
    let output = tailer.wait_with_output().unwrap();
    assert!(output.status.success());
    assert_eq!(lines_of(&dir.path().join("out.log")), ["arrived"]);
}

/// Item 5: more files than descriptors: follow what fits, name the rest, exit 1.
#[test]
fn files_past_the_descriptor_limit_are_named_and_the_rest_followed() {
    let dir = Dir::new();
    for i in 0..100 {
        dir.create(&format!("f{i:03}.log"), format!("line of {i}\n"));
    }
    let script = format!(
        "ulimit -n 64 && exec {} tail --idle-exit 500ms f*.log",
        env!("CARGO_BIN_EXE_concur")
    );
    let output = dir.sh(&script);
    let (stdout, stderr) = (
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
    );
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("descriptor limit (64"), "{stderr}");
    assert!(stderr.contains("not following the other"), "{stderr}");
    // "leaves room for N files": exactly the first N files (in the order given) came out.
    let room: usize = stderr
        .split("room for ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next()?.parse().ok())
        .unwrap_or_else(|| panic!("no room figure in {stderr}"));
    assert!((1..100).contains(&room), "{stderr}");
    let mut lines: Vec<&str> = stdout.lines().collect();
    lines.sort_unstable();
    let mut expected: Vec<String> = (0..room).map(|i| format!("line of {i}")).collect();
    expected.sort_unstable();
    assert_eq!(lines, expected);
}

/// Item 6: `concur tail quiet.log | head -1` returns at once: the closed pipe is
/// noticed without waiting for the file to grow.
#[test]
fn a_reader_that_goes_away_ends_tailing_without_more_input() {
    for mode in ["events", "threads", "mixed", "async"] {
        let dir = Dir::new();
        dir.create("quiet.log", "first\nsecond\n");
        let mut tailer = dir.concur(["tail", "--mode", mode, "quiet.log"]).spawn();
        let watchdog = Watchdog::new(&tailer, Duration::from_secs(20));
        let mut stdout = BufReader::new(tailer.stdout.take().unwrap());
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        assert_eq!(line, "first\n");
        drop(stdout); // the reader goes away; the file never grows again
        let status = tailer.wait().unwrap();
        drop(watchdog);
        assert_eq!(status.code(), Some(0), "{mode}: killed by the watchdog?");
    }
}

/// Item 6: while stuck writing to a reader that does not read, a second signal ends
/// the process at once.
#[test]
fn a_second_signal_exits_while_the_output_is_stalled() {
    let dir = Dir::new();
    let line = "x".repeat(99) + "\n";
    dir.create("big.log", line.repeat(100_000)); // 10 MB, far more than a pipe holds
    let mut tailer = dir.concur(["tail", "big.log"]).spawn();
    let watchdog = Watchdog::new(&tailer, Duration::from_secs(20));
    let _unread = tailer.stdout.take();
    thread::sleep(Duration::from_millis(500));
    terminate(&tailer);
    thread::sleep(Duration::from_millis(300));
    terminate(&tailer);
    let status = tailer.wait().unwrap();
    drop(watchdog);
    assert_eq!(status.code(), Some(143), "{status}");
}

/// Item 7: a line without end is written out in pieces at --max-line-bytes, with a
/// marker; nothing of it is lost and the count is reported.
#[test]
fn an_endless_line_is_cut_into_pieces_and_nothing_is_lost() {
    let dir = Dir::new();
    let long: String = (0..3_500_000u32)
        .map(|i| char::from(b'a' + (i % 26) as u8))
        .collect();
    dir.create("long.log", format!("{long}\nshort\n"));
    let run = dir
        .concur([
            "tail",
            "--max-line-bytes",
            "1M",
            "--idle-exit",
            "300ms",
            "long.log",
        ])
        .run()
        .expect_success()
        .expect_stderr("3 lines longer than 1048576 bytes were written in pieces");
    let stdout = run.stdout();
    let marker = " [concur: line cut at 1048576 bytes]";
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        lines.len(),
        5,
        "3 pieces, the rest of the line, and `short`"
    );
    for piece in &lines[..3] {
        assert!(piece.ends_with(marker));
        assert!(piece.len() - marker.len() <= (1 << 20) + (256 << 10));
    }
    let rejoined: String = lines[..4]
        .iter()
        .map(|l| l.strip_suffix(marker).unwrap_or(l))
        .collect();
    assert_eq!(rejoined, long);
    assert_eq!(lines[4], "short");
}

/// Item 8: -n and -c, as GNU tail counts them (an unfinished last line is a line).
#[test]
fn lines_and_bytes_pick_where_each_file_starts() {
    let dir = Dir::new();
    dir.create("a.log", "1\n2\n3\n4\n5\n");
    dir.create("b.log", "x\ny\nz"); // no newline at the end
    let run = |args: &[&str]| {
        dir.concur(["tail", "--idle-exit", "200ms"])
            .args(args)
            .run()
            .expect_success()
            .stdout()
    };
    assert_eq!(run(&["-n", "2", "a.log"]), "4\n5\n");
    assert_eq!(run(&["-n", "2", "b.log"]), "y\nz\n");
    assert_eq!(run(&["-n", "0", "a.log"]), "");
    assert_eq!(run(&["-n", "9", "a.log"]), "1\n2\n3\n4\n5\n");
    assert_eq!(run(&["-n", "+4", "a.log"]), "4\n5\n");
    assert_eq!(run(&["--lines", "+1", "b.log"]), "x\ny\nz\n");
    assert_eq!(run(&["-c", "4", "a.log"]), "4\n5\n");
    assert_eq!(run(&["-c", "+7", "a.log"]), "4\n5\n");
    dir.concur(["tail", "-n", "ten", "a.log"])
        .run()
        .expect_code(2)
        .expect_stderr("\"ten\" is not a number of lines");
}

/// Item 9: --glob follows files that match now and later, not others, and closes a
/// file whose name goes away.
#[test]
fn glob_follows_matching_files_now_and_later() {
    let dir = Dir::new();
    fs::create_dir(dir.path().join("logs")).unwrap();
    append(&dir.path().join("logs/a.log"), "a1");
    let out = dir.path().join("out.log");
    let mut tailer = dir
        .concur([
            "tail",
            "--prefix",
            "--glob",
            "logs/*.log",
            "--idle-exit",
            "3s",
            "-o",
            "out.log",
        ])
        .spawn();
    wait_for_lines(&mut tailer, &out, 1);
    append(&dir.path().join("logs/b.log"), "b1");
    append(&dir.path().join("logs/c.txt"), "not followed");
    wait_for_lines(&mut tailer, &out, 2);
    // Renamed to a name that does not match: drained, then closed.
    fs::rename(dir.path().join("logs/a.log"), dir.path().join("logs/a.old")).unwrap();
    append(&dir.path().join("logs/a.old"), "a2");
    wait_for_lines(&mut tailer, &out, 3);
    let output = tailer.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    let mut lines = lines_of(&out);
    lines.sort();
    assert_eq!(
        lines,
        ["logs/a.log: a1", "logs/a.log: a2", "logs/b.log: b1"]
    );
    assert!(
        stderr.contains("logs/b.log: matches --glob logs/*.log"),
        "{stderr}"
    );
    assert!(
        stderr.contains("logs/a.log: gone; drained and closed"),
        "{stderr}"
    );
    dir.concur(["tail", "--glob", "*/x.log"])
        .run()
        .expect_code(2)
        .expect_stderr("only the last part of the path may hold wildcards");
}

/// Item 11: --pid stops tailing, after draining, once the writer has exited.
#[test]
fn pid_stops_tailing_once_the_writer_has_exited() {
    let dir = Dir::new();
    let log = dir.create("w.log", "");
    let mut writer = Command::new("sh")
        .args(["-c", "echo one >> w.log; sleep 0.5; echo two >> w.log"])
        .current_dir(dir.path())
        .spawn()
        .unwrap();
    let run = dir
        .concur(["tail", "--pid", &writer.id().to_string()])
        .arg(&log)
        .run_within(Duration::from_secs(20))
        .expect_success()
        .expect_stderr("has exited; draining and stopping");
    let _ = writer.wait();
    assert_eq!(run.stdout(), "one\ntwo\n");
}

/// Item 11: standard input and FIFOs are sources, read to their end.
#[test]
fn standard_input_and_fifos_are_read_to_their_end() {
    let dir = Dir::new();
    let fifo = dir.path().join("pipe");
    assert!(
        Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    let feeder = {
        let fifo = fifo.clone();
        thread::spawn(move || {
            let mut w = OpenOptions::new().write(true).open(fifo).unwrap();
            w.write_all(b"through the fifo\n").unwrap();
        })
    };
    let run = dir
        .concur(["tail", "--prefix", "-", "pipe"])
        .stdin("from stdin\n")
        .run_within(Duration::from_secs(20))
        .expect_success();
    feeder.join().unwrap();
    let mut lines: Vec<String> = run.stdout().lines().map(String::from).collect();
    lines.sort();
    assert_eq!(
        lines,
        ["pipe: through the fifo", "standard input: from stdin"]
    );
    let run = dir
        .concur(["tail", "-"])
        .stdin("from stdin\nno newline")
        .run_within(Duration::from_secs(20));
    assert_eq!(run.stdout(), "from stdin\nno newline\n");
}

/// Item 10: a tailer killed with SIGKILL while the log rotates at 20k lines/s, and
/// restarted with the same --state, writes every line exactly once: the lines of the
/// file rotated while it was down included.
#[test]
fn a_tailer_killed_during_rotation_resumes_with_nothing_lost_or_repeated() {
    for mode in ["events", "threads", "async"] {
        let dir = Dir::new();
        let log = dir.path().join("app.log");
        fs::write(&log, "").unwrap();
        let stop = std::sync::atomic::AtomicBool::new(false);
        let start_tailer = || {
            dir.concur([
                "tail",
                "--mode",
                mode,
                "-F",
                "--state",
                "tail.state",
                "-o",
                "out.log",
                "--idle-exit",
                "2s",
                "app.log",
            ])
            .spawn()
        };
        let written = thread::scope(|scope| {
            let writer = scope.spawn(|| {
                // 200 lines every 10 ms (20k lines/s); a rename rotation every 500 ms.
                let mut n = 0u64;
                let mut file = OpenOptions::new().append(true).open(&log).unwrap();
                let mut round = 0;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    for _ in 0..50 {
                        let chunk: String = (n..n + 200).map(|i| format!("{i}\n")).collect();
                        file.write_all(chunk.as_bytes()).unwrap();
                        n += 200;
                        thread::sleep(Duration::from_millis(10));
                    }
                    round += 1;
                    fs::rename(&log, dir.path().join(format!("app.log-{round:03}"))).unwrap();
                    file = OpenOptions::new()
                        .append(true)
                        .create(true)
                        .open(&log)
                        .unwrap();
                }
                n
            });
            let mut first = start_tailer();
            thread::sleep(Duration::from_millis(1300));
            first.kill().unwrap(); // SIGKILL: no flush, no final save
            let _ = first.wait();
            thread::sleep(Duration::from_millis(700)); // a rotation happens meanwhile
            let second = start_tailer();
            thread::sleep(Duration::from_millis(1200));
            stop.store(true, std::sync::atomic::Ordering::Relaxed);
            let written = writer.join().unwrap();
            let output = second.wait_with_output().unwrap();
            assert!(
                output.status.success(),
                "{mode}: {}",
                String::from_utf8_lossy(&output.stderr)
            );
            written
        });
        let mut seen = vec![0u32; written as usize];
        for line in lines_of(&dir.path().join("out.log")) {
            let n: usize = line
                .parse()
                .unwrap_or_else(|_| panic!("{mode}: bad line {line:?}"));
            seen[n] += 1;
        }
        let lost = seen.iter().filter(|&&c| c == 0).count();
        let repeated = seen.iter().filter(|&&c| c > 1).count();
        assert_eq!((lost, repeated), (0, 0), "{mode}: of {written} lines");
    }
}

/// Item 7: memory stays near --max-line-bytes however long the line. A 64 MB line
/// without a newline used to stay in memory whole (peak RSS 105 MB for 100 MB); this
/// reads the tailer's peak RSS (VmHWM) once the line has come out, in every design.
#[test]
fn an_endless_line_does_not_stay_in_memory() {
    for mode in ["events", "threads", "mixed", "async"] {
        let dir = Dir::new();
        dir.create("long.log", vec![b'x'; 64 << 20]);
        let out = dir.path().join("out.log");
        let tailer = dir
            .concur(["tail", "--mode", mode, "-o", "out.log", "long.log"])
            .spawn();
        // Pieces of 1 MiB or a little more, each ending in the marker; the last
        // unfinished MiB is held for its newline.
        crate::util::eventually("63 MiB of the line in OUT", || {
            fs::metadata(&out).is_ok_and(|m| m.len() >= 63 << 20)
        });
        let status = fs::read_to_string(format!("/proc/{}/status", tailer.id())).unwrap();
        let peak_kib: u64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap();
        terminate(&tailer);
        assert!(tailer.wait_with_output().unwrap().status.success());
        assert!(
            peak_kib < 48 << 10,
            "{mode}: peak RSS {peak_kib} KiB for a 64 MiB line"
        );
    }
}
