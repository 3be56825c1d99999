//! `concur tail` in the scenarios of GNU coreutils' own tail tests (`tests/tail/*.sh`
//! in coreutils' source). Each test names the coreutils test whose scenario it
//! re-enacts; the cases and expectations are written here. Where concur does better
//! than GNU tail by design (each line printed once; lines merged without headers unless
//! `-v`), the test says so.
//!
//! A tailer that must see a change through inotify runs with `CONCUR_TAIL_RECHECK`
//! at an hour and `--interval` at 30 s: then the only way a line can arrive within the
//! 10-s wait is an inotify event, so the test fails if the event path is broken,
//! however busy the machine.

use std::fs;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::Duration;

use crate::tail::{append, wait_for_lines};
use crate::util::{Dir, eventually};

/// `concur tail ARGS` in `dir`, writing to `out.log` and its messages to `err.log`,
/// seeing changes only by event.
fn by_event(dir: &Dir, args: &[&str]) -> Child {
    start_tail(dir, &[&["--interval", "30s"], args].concat(), "3600")
}

/// `concur tail ARGS` in `dir`, writing to `out.log` and its messages to `err.log`.
fn start_tail(dir: &Dir, args: &[&str], recheck: &str) -> Child {
    Command::new(env!("CARGO_BIN_EXE_concur"))
        .args(["tail", "-o", "out.log"])
        .args(args)
        .env("CONCUR_TAIL_RECHECK", recheck)
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .stderr(fs::File::create(dir.path().join("err.log")).unwrap())
        .spawn()
        .unwrap()
}

fn err_log(dir: &Dir) -> String {
    fs::read_to_string(dir.path().join("err.log")).unwrap_or_default()
}

fn out_lines(dir: &Dir) -> Vec<String> {
    fs::read_to_string(dir.path().join("out.log"))
        .unwrap_or_default()
        .lines()
        .map(String::from)
        .collect()
}

/// Stops a tailer started by [`tailer`] with SIGTERM: its exit code and messages.
fn stop(dir: &Dir, mut child: Child) -> (i32, String) {
    let pid = rustix::process::Pid::from_child(&child);
    let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
    let status = child.wait().unwrap();
    (status.code().unwrap_or(-1), err_log(dir))
}

/// Waits for a tailer started by [`tailer`] to exit by itself: its exit code and
/// messages.
fn exited(dir: &Dir, mut child: Child) -> (i32, String) {
    let watchdog = crate::util::Watchdog::new(&child, Duration::from_secs(30));
    let status = child.wait().unwrap();
    drop(watchdog);
    (status.code().unwrap_or(-1), err_log(dir))
}

/// Waits until the tailer has looked at its files once (it says nothing when all is
/// well, so a marker line written before it started shows it is reading).
fn started(tailer: &mut Child, dir: &Dir, lines: usize) {
    wait_for_lines(tailer, &dir.path().join("out.log"), lines);
}

/// coreutils `follow-symlink.sh` and `symlink.sh`; the Kubernetes layout
/// (`/var/log/containers/*.log` → `/var/log/pods/…`): writes to a link's target arrive
/// by event, under -F and -f, and a re-pointed link is followed to its new target.
#[test]
fn a_symlinked_log_is_followed_at_inotify_latency() {
    for follow in ["-F", "-f"] {
        let dir = Dir::new();
        fs::create_dir(dir.path().join("logs")).unwrap();
        fs::create_dir(dir.path().join("pods")).unwrap();
        let target = dir.create("pods/0.log", "start\n");
        std::os::unix::fs::symlink("../pods/0.log", dir.path().join("logs/current")).unwrap();
        let mut tailer = by_event(&dir, &[follow, "logs/current"]);
        started(&mut tailer, &dir, 1);
        for (i, line) in ["a", "b", "c"].iter().enumerate() {
            append(&target, line);
            wait_for_lines(&mut tailer, &dir.path().join("out.log"), i + 2);
        }
        if follow == "-F" {
            // symlink.sh: the link re-pointed (atomically, as kubelet does) to a file
            // in another directory, which is then written.
            fs::create_dir(dir.path().join("pods2")).unwrap();
            let second = dir.create("pods2/0.log", "");
            let tmp = dir.path().join("logs/current.tmp");
            std::os::unix::fs::symlink("../pods2/0.log", &tmp).unwrap();
            fs::rename(&tmp, dir.path().join("logs/current")).unwrap();
            eventually("the tailer to say it follows the new target", || {
                tailer.try_wait().unwrap().is_none() && out_lines(&dir).len() == 4
            });
            // It may not have re-resolved yet: keep writing until a line arrives.
            let mut n = 0;
            eventually("a line written to the new target", || {
                n += 1;
                append(&second, &format!("second {n}"));
                thread::sleep(Duration::from_millis(50));
                out_lines(&dir).iter().any(|l| l.starts_with("second"))
            });
            // symlink.sh: re-pointed at a target that does not exist yet (nor does its
            // directory), which is then created and written.
            let tmp = dir.path().join("logs/current.tmp");
            std::os::unix::fs::symlink("../pods3/0.log", &tmp).unwrap();
            fs::rename(&tmp, dir.path().join("logs/current")).unwrap();
            eventually("the tailer to see the link dangle", || {
                err_log(&dir).contains("has become inaccessible")
            });
            fs::create_dir(dir.path().join("pods3")).unwrap();
            fs::write(dir.path().join("pods3/0.log"), "third\n").unwrap();
            eventually("the new target's line", || {
                out_lines(&dir).iter().any(|l| l == "third")
            });
        }
        let (code, stderr) = stop(&dir, tailer);
        assert_eq!(code, 0, "{follow}: {stderr}");
        assert_eq!(out_lines(&dir)[..4], ["start", "a", "b", "c"], "{follow}");
    }
}

/// coreutils `descriptor-vs-rename.sh`: followed by descriptor (the default, -f,
/// --follow=descriptor), a renamed file is still read, by event, at its new name.
#[test]
fn followed_by_descriptor_a_renamed_file_is_still_read() {
    for how in [&[][..], &["-f"], &["--follow=descriptor"], &["--follow"]] {
        let dir = Dir::new();
        let a = dir.create("a", "");
        let mut args = how.to_vec();
        args.push("a");
        let mut tailer = by_event(&dir, &args);
        append(&a, "x");
        started(&mut tailer, &dir, 1);
        fs::rename(&a, dir.path().join("b")).unwrap();
        append(&dir.path().join("b"), "y");
        wait_for_lines(&mut tailer, &dir.path().join("out.log"), 2);
        let (code, stderr) = stop(&dir, tailer);
        assert_eq!(code, 0, "{how:?}: {stderr}");
        assert_eq!(out_lines(&dir), ["x", "y"], "{how:?}");
    }
}

/// coreutils `pipe-f.sh`, `tail-c.sh`, and `tail.pl`'s pipe cases: -n and -c on input
/// that cannot be read from its end are applied by reading to its end.
#[test]
fn lines_and_bytes_from_the_end_of_a_pipe() {
    let dir = Dir::new();
    let seq: String = (1..=20).map(|i| format!("{i}\n")).collect();
    let run = |args: &[&str], input: &str| {
        dir.concur(["tail"])
            .args(args)
            .stdin(input)
            .run_within(Duration::from_secs(60))
            .expect_success()
            .stdout()
    };
    assert_eq!(run(&["-n2", "-"], &seq), "19\n20\n");
    assert_eq!(
        run(&["-n", "2"], &seq),
        "19\n20\n",
        "no FILE is standard input"
    );
    assert_eq!(run(&["-n", "+19", "-"], &seq), "19\n20\n");
    assert_eq!(run(&["-n", "0", "-"], &seq), "");
    assert_eq!(run(&["-c", "+46", "-"], &seq), "19\n20\n");
    assert_eq!(run(&["-f", "-c3"], "foo\n"), "oo\n");
    // GNU prints "456"; concur ends the last line it writes (lines are merged whole).
    assert_eq!(run(&["-c3", "-"], "123456"), "456\n");
}

/// coreutils `tail-c.sh`: a file whose size reads 0 (`/proc/version`) is read to its
/// end for its last byte; a seekable device gives its last N bytes and does not stream.
#[test]
fn lines_and_bytes_from_the_end_of_proc_files_and_devices() {
    let dir = Dir::new();
    if let Ok(version) = fs::read("/proc/version") {
        let run = dir
            .concur(["tail", "--idle-exit", "300ms", "-c", "-1", "/proc/version"])
            .run_within(Duration::from_secs(60))
            .expect_success();
        assert_eq!(run.stdout().as_bytes(), &version[version.len() - 1..]);
        let last_two: Vec<&str> = std::str::from_utf8(&version)
            .unwrap()
            .lines()
            .rev()
            .take(2)
            .collect();
        let run = dir
            .concur(["tail", "--idle-exit", "300ms", "-n", "1", "/proc/version"])
            .run_within(Duration::from_secs(60))
            .expect_success();
        assert_eq!(run.stdout().trim_end(), last_two[0]);
    }
    let run = dir
        .concur(["tail", "-c", "4096", "/dev/zero"])
        .run_within(Duration::from_secs(60))
        .expect_success();
    // 4096 zero bytes, then the newline concur ends an unfinished last line with.
    let mut expected = vec![0u8; 4096];
    expected.push(b'\n');
    assert_eq!(run.output.stdout, expected);
}

/// coreutils `F-vs-rename.sh`: `mv a b` with both followed by name. GNU tail prints b's
/// lines again from its start (x twice); concur goes on under b from where a was read
/// up to, so every line written once is printed once.
#[test]
fn a_file_renamed_onto_another_followed_name_is_printed_once() {
    for mode in ["events", "threads"] {
        let dir = Dir::new();
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        dir.create("a", "");
        dir.create("b", "");
        let mut tailer = start_tail(
            &dir,
            &[
                "--mode",
                mode,
                "-F",
                "--prefix",
                "-s.1",
                "--max-unchanged-stats=1",
                "a",
                "b",
            ],
            "3600",
        );
        append(&a, "x");
        started(&mut tailer, &dir, 1);
        fs::rename(&a, &b).unwrap();
        // As F-vs-rename.sh waits for "has been replaced" before writing to b.
        eventually("b to take a's file over", || {
            err_log(&dir).contains("b: now names a file followed under another name")
        });
        append(&b, "y");
        wait_for_lines(&mut tailer, &dir.path().join("out.log"), 2);
        append(&a, "x2");
        wait_for_lines(&mut tailer, &dir.path().join("out.log"), 3);
        append(&b, "y2");
        wait_for_lines(&mut tailer, &dir.path().join("out.log"), 4);
        let (code, stderr) = stop(&dir, tailer);
        assert_eq!(code, 0, "{mode}: {stderr}");
        let mut lines = out_lines(&dir);
        lines.sort();
        assert_eq!(
            lines,
            ["a: x", "a: x2", "b: y", "b: y2"],
            "{mode}: {stderr}"
        );
    }
}

/// `sh -c SCRIPT` in `dir`, with concur as `$CONCUR`.
fn sh(dir: &Dir, script: &str) -> std::process::Output {
    let mut command = Command::new("sh");
    command
        .arg("-c")
        .arg(script)
        .current_dir(dir.path())
        .env("CONCUR", env!("CARGO_BIN_EXE_concur"))
        .stdin(Stdio::null());
    let child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let watchdog = crate::util::Watchdog::new(&child, Duration::from_secs(60));
    let output = child.wait_with_output().unwrap();
    drop(watchdog);
    output
}

/// coreutils `pipe-f.sh` (`tail -f /dev/null >&-`) and `follow-stdin.sh`
/// (`tail -f - <&-`): a closed standard output or input is an error, exit 1, named.
#[test]
fn a_closed_stdout_or_stdin_fails_with_a_message() {
    let dir = Dir::new();
    dir.create("f", "line\n");
    let closed_out = sh(&dir, r#""$CONCUR" tail f >&-; echo "rc=$?" >&2"#);
    let stderr = String::from_utf8_lossy(&closed_out.stderr);
    assert!(stderr.contains("standard output is closed"), "{stderr}");
    assert!(stderr.contains("rc=1"), "{stderr}");
    let closed_in = sh(&dir, r#""$CONCUR" tail - <&-; echo "rc=$?" >&2"#);
    let stderr = String::from_utf8_lossy(&closed_in.stderr);
    assert!(
        stderr.contains("cannot open standard input: Bad file descriptor"),
        "{stderr}"
    );
    assert!(stderr.contains("no files remaining"), "{stderr}");
    assert!(stderr.contains("rc=1"), "{stderr}");
    // A shell's own /dev/null is not a closed descriptor.
    let null = sh(
        &dir,
        r#""$CONCUR" tail -n 1 - </dev/null >/dev/null; echo "rc=$?" >&2"#,
    );
    assert!(String::from_utf8_lossy(&null.stderr).contains("rc=0"));
}

/// coreutils `follow-stdin.sh`: with no FILE, or with `-`, a regular file on standard
/// input is followed as it grows.
#[test]
fn a_regular_file_on_stdin_is_followed() {
    for args in [&[][..], &["-"], &["-n", "1", "-"]] {
        let dir = Dir::new();
        let log = dir.create("in.log", "one\ntwo\n");
        let mut tailer = Command::new(env!("CARGO_BIN_EXE_concur"))
            .args(["tail", "--interval", "30s", "-o", "out.log"])
            .args(args)
            .env("CONCUR_TAIL_RECHECK", "3600")
            .current_dir(dir.path())
            .stdin(fs::File::open(&log).unwrap())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let before = if args.len() == 3 { 1 } else { 2 };
        started(&mut tailer, &dir, before);
        append(&log, "three");
        wait_for_lines(&mut tailer, &dir.path().join("out.log"), before + 1);
        let (code, stderr) = stop(&dir, tailer);
        assert_eq!(code, 0, "{args:?}: {stderr}");
        assert_eq!(stderr, "", "{args:?}");
        assert_eq!(out_lines(&dir).last().unwrap(), "three", "{args:?}");
    }
}

/// coreutils `pid.sh`: --pid can be repeated; tailing goes on while any is alive,
/// and ends (exit 0) once all have exited, at once if none is alive.
#[test]
fn pid_can_be_repeated() {
    let dir = Dir::new();
    let log = dir.create("here", "");
    let mut dead = Command::new("true").spawn().unwrap();
    let dead_pid = dead.id().to_string();
    dead.wait().unwrap();
    let mut alive = Command::new("sleep").arg("300").spawn().unwrap();
    let alive_pid = alive.id().to_string();
    let mut tailer = by_event(&dir, &["--pid", &dead_pid, "--pid", &alive_pid, "here"]);
    // Still following after hearing that the first has exited.
    eventually("the dead --pid to be noticed", || {
        err_log(&dir).contains(&format!("--pid {dead_pid}: no such process"))
    });
    append(&log, "still following");
    wait_for_lines(&mut tailer, &dir.path().join("out.log"), 1);
    alive.kill().unwrap();
    alive.wait().unwrap();
    let (code, stderr) = exited(&dir, tailer);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stderr.contains("every --pid process has exited"),
        "{stderr}"
    );
    dir.concur(["tail", "--pid", &dead_pid, "-s", "10", "here"])
        .run_within(Duration::from_secs(30))
        .expect_success();
}

/// coreutils `follow-name.sh` and `retry.sh`: by name without --retry, a missing file
/// is not waited for and a name that goes away is given up (exit 1, "no files
/// remaining"); -F --no-retry is the same.
#[test]
fn by_name_without_retry_gives_up() {
    let dir = Dir::new();
    for args in [
        &["--follow=name", "no-such"][..],
        &["-F", "--no-retry", "no-such"],
    ] {
        dir.concur(["tail"])
            .args(args)
            .run_within(Duration::from_secs(30))
            .expect_code(1)
            .expect_stderr("cannot open no-such: No such file or directory")
            .expect_stderr("no files remaining");
    }
    let file = dir.create("file", "");
    let mut tailer = start_tail(&dir, &["--follow=name", "-s.1", "file"], "5");
    append(&file, "marker");
    started(&mut tailer, &dir, 1);
    fs::rename(&file, dir.path().join("file.unfollow")).unwrap();
    let (code, stderr) = exited(&dir, tailer);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("giving up on this name"), "{stderr}");
    assert!(stderr.contains("no files remaining"), "{stderr}");
}

/// coreutils `retry.sh`: --follow=descriptor --retry waits for a missing file and then
/// follows it; a directory appearing instead is given up (exit 1), and so is a name
/// followed without --retry that becomes a directory. Under -F (GNU tail 9.1 measured
/// the same) it is said once, and the name is waited for until it is a file again.
#[test]
fn a_file_that_becomes_a_directory_is_given_up_unless_retried() {
    let dir = Dir::new();
    let mut tailer = by_event(&dir, &["--follow=descriptor", "--retry", "missing"]);
    eventually("the tailer to wait", || err_log(&dir).contains("retrying"));
    fs::write(dir.path().join("missing"), "X1\n").unwrap();
    started(&mut tailer, &dir, 1);
    let (code, _) = stop(&dir, tailer);
    assert_eq!(code, 0);

    for args in [
        &["--follow=descriptor", "--retry", "d"][..],
        &["--follow=name", "d"],
    ] {
        let dir = Dir::new();
        let by_name = args[0] == "--follow=name";
        if by_name {
            dir.create("d", "before\n");
        }
        let mut tailer = start_tail(&dir, &[&["-s.1"], args].concat(), "5");
        if by_name {
            started(&mut tailer, &dir, 1);
            fs::remove_file(dir.path().join("d")).unwrap();
        } else {
            eventually("the tailer to wait for d", || {
                err_log(&dir).contains("retrying")
            });
        }
        fs::create_dir(dir.path().join("d")).unwrap();
        let (code, stderr) = exited(&dir, tailer);
        assert_eq!(code, 1, "{args:?}: {stderr}");
        assert!(stderr.contains("no files remaining"), "{args:?}: {stderr}");
    }

    let dir = Dir::new();
    let d = dir.create("d", "before\n");
    let mut tailer = start_tail(&dir, &["-F", "-s.1", "d"], "5");
    started(&mut tailer, &dir, 1);
    fs::remove_file(&d).unwrap();
    fs::create_dir(&d).unwrap();
    eventually("the untailable file to be told", || {
        err_log(&dir).contains("replaced with an untailable file")
    });
    assert!(
        tailer.try_wait().unwrap().is_none(),
        "-F waits for the name"
    );
    fs::remove_dir(&d).unwrap();
    fs::write(&d, "after\n").unwrap();
    started(&mut tailer, &dir, 2);
    let (code, stderr) = stop(&dir, tailer);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(out_lines(&dir), ["before", "after"]);
}

/// coreutils `F-headers.sh`: with -v, `==> name <==` headers come before each file's
/// lines whenever the file changes, files that appear later included; -q (concur's
/// default) writes none.
#[test]
fn verbose_writes_gnu_headers() {
    let dir = Dir::new();
    let mut tailer = by_event(&dir, &["-v", "-F", "a", "b"]);
    eventually("the tailer to wait for a and b", || {
        err_log(&dir).matches("does not exist yet").count() == 2
    });
    fs::write(dir.path().join("a"), "x\n").unwrap();
    started(&mut tailer, &dir, 2);
    fs::write(dir.path().join("b"), "y\n").unwrap();
    started(&mut tailer, &dir, 5);
    let (code, stderr) = stop(&dir, tailer);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(out_lines(&dir), ["==> a <==", "x", "", "==> b <==", "y"]);
    let quiet = dir.create("q", "1\n");
    let run = dir
        .concur(["tail", "-q", "--idle-exit", "200ms"])
        .arg(&quiet)
        .arg(&quiet)
        .run_within(Duration::from_secs(30))
        .expect_success();
    assert_eq!(run.stdout(), "1\n1\n");
}

/// `-s`, `--max-unchanged-stats`, `--follow` and `-f` are taken as GNU tail takes them
/// (coreutils' tests pass `-s.1 --max-unchanged-stats=1` everywhere); -F and
/// --follow=descriptor together are refused.
#[test]
fn gnu_follow_options_are_accepted() {
    let dir = Dir::new();
    dir.create("f", "1\n");
    let run = dir
        .concur([
            "tail",
            "-s.1",
            "--max-unchanged-stats=1",
            "-f",
            "--idle-exit",
        ])
        .args(["300ms", "f"])
        .run_within(Duration::from_secs(30))
        .expect_success();
    assert_eq!(run.stdout(), "1\n");
    dir.concur(["tail", "-F", "--follow=descriptor", "f"])
        .run()
        .expect_code(2)
        .expect_stderr("not both");
}

/// The help says what -f and -F mean, as GNU's does.
#[test]
fn help_names_descriptor_and_name_following() {
    let dir = Dir::new();
    let help = dir
        .concur(["tail", "--help"])
        .run()
        .expect_success()
        .stdout();
    for needle in [
        "--follow[=<HOW>]",
        "-F",
        "--retry",
        "descriptor",
        "-s, --sleep-interval",
    ] {
        assert!(help.contains(needle), "{needle} missing from:\n{help}");
    }
    assert!(!Path::new("unused").exists());
}

/// `--json`: one object per line, naming its file; a line that is not UTF-8 comes as
/// hex, byte for byte; --prefix and -v are refused beside it.
#[test]
fn json_writes_one_object_per_line() {
    let dir = Dir::new();
    dir.create("a.log", "one\ntwo\n");
    dir.create("b.log", b"\xff\xfe\n".as_slice());
    let run = dir
        .concur(["tail", "--json", "--idle-exit", "300ms", "a.log", "b.log"])
        .run_within(Duration::from_secs(60))
        .expect_success();
    let mut objects: Vec<serde_json::Value> = run
        .stdout()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    objects.sort_by_key(|o| o.to_string());
    assert_eq!(
        objects,
        [
            serde_json::json!({"file": "a.log", "line": "one"}),
            serde_json::json!({"file": "a.log", "line": "two"}),
            serde_json::json!({"file": "b.log", "line_hex": "fffe"}),
        ]
    );
    dir.concur(["tail", "--json", "--prefix", "a.log"])
        .run()
        .expect_code(2);
}
