//! `concur tail` through the real binary: the book's confirm_merge in every design,
//! rotation and truncation under load, partial lines, errors and signals.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Child;
use std::thread;
use std::time::Duration;

use rand::{RngExt, SeedableRng};

use crate::util::{Dir, eventually};

const MODES: [&str; 4] = ["events", "threads", "mixed", "async"];

pub(crate) fn append(path: &Path, line: &str) {
    let mut file = OpenOptions::new()
        .append(true)
        .create(true)
        .open(path)
        .unwrap();
    file.write_all(format!("{line}\n").as_bytes()).unwrap();
}

/// The merged lines of each input, by their `path: ` prefix.
fn by_prefix(merged: &str) -> HashMap<String, Vec<String>> {
    let mut files: HashMap<String, Vec<String>> = HashMap::new();
    for line in merged.lines() {
        let (path, rest) = line
            .split_once(": ")
            .unwrap_or_else(|| panic!("no prefix: {line:?}"));
        files
            .entry(path.to_owned())
            .or_default()
            .push(rest.to_owned());
    }
    files
}

/// The book's confirm_merge: for each file, the merged lines carrying its prefix are
/// exactly its lines, in order.
fn confirm_merge(dir: &Path, inputs: &[PathBuf], merged: &str) {
    let merged = by_prefix(merged);
    for input in inputs {
        let name = input.strip_prefix(dir).unwrap().display().to_string();
        let expected: Vec<String> = fs::read_to_string(input)
            .unwrap()
            .lines()
            .map(String::from)
            .collect();
        assert_eq!(
            merged.get(&name).cloned().unwrap_or_default(),
            expected,
            "{name}"
        );
    }
}

#[test]
fn the_books_confirm_merge_passes_in_every_design() {
    for mode in MODES {
        let dir = Dir::new();
        let inputs: Vec<PathBuf> = (0..5)
            .map(|i| dir.create(&format!("input{i}.log"), ""))
            .collect();
        let names: Vec<String> = (0..5).map(|i| format!("input{i}.log")).collect();
        let tailer = dir
            .concur([
                "tail",
                "--mode",
                mode,
                "--prefix",
                "--idle-exit",
                "1500ms",
                "-o",
                "merged.log",
            ])
            .args(&names)
            .spawn();
        // Writers append 10 lines each at random intervals, as the book's writers do.
        thread::scope(|s| {
            for (i, input) in inputs.iter().enumerate() {
                s.spawn(move || {
                    let mut rng = rand_pcg::Pcg64Mcg::seed_from_u64(i as u64);
                    for n in 0..10 {
                        thread::sleep(Duration::from_millis(rng.random_range(0..40)));
                        append(input, &format!("line {n} of file {i}"));
                    }
                });
            }
        });
        let output = tailer.wait_with_output().unwrap();
        assert!(
            output.status.success(),
            "{mode}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let merged = fs::read_to_string(dir.path().join("merged.log")).unwrap();
        assert_eq!(merged.lines().count(), 50, "{mode}:\n{merged}");
        confirm_merge(dir.path(), &inputs, &merged);
    }
}

/// Waits until `path` has at least `lines` lines. If the tailer exits first, fails at
/// once with what it printed, rather than after the full wait with nothing to go on.
pub(crate) fn wait_for_lines(tailer: &mut Child, path: &Path, lines: usize) {
    eventually(&format!("{lines} lines in {}", path.display()), || {
        if let Ok(Some(status)) = tailer.try_wait() {
            let mut stderr = String::new();
            if let Some(pipe) = tailer.stderr.as_mut() {
                let _ = pipe.read_to_string(&mut stderr);
            }
            panic!("the tailer exited ({status}) before writing {lines} lines:\n{stderr}");
        }
        fs::read_to_string(path)
            .map(|t| t.lines().count() >= lines)
            .unwrap_or(false)
    });
}

/// Starts a tailer following `app.log` by name into `merged.log`, as the rotation
/// tests do: it exits once nothing has grown for 1.5 s.
fn follow_rotating_log(dir: &Dir, mode: &str) -> Child {
    dir.concur([
        "tail",
        "--mode",
        mode,
        "--follow-name",
        "--idle-exit",
        "1500ms",
        "-o",
        "merged.log",
        "app.log",
    ])
    .spawn()
}

/// Waits for a rotation test's tailer to exit cleanly, then checks that `merged` holds
/// exactly `expected`, in order, and that the tailer reported `note`.
fn expect_exactly(mode: &str, tailer: Child, merged: &Path, expected: &[String], note: &str) {
    let output = tailer.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{mode}: {stderr}");
    let merged = fs::read_to_string(merged).unwrap();
    let got: Vec<&str> = merged.lines().collect();
    assert_eq!(
        got.len(),
        expected.len(),
        "{mode}: lost or duplicated lines\n{stderr}"
    );
    assert!(got == expected, "{mode}: lines out of order");
    assert!(stderr.contains(note), "{mode}: {stderr}");
}

#[test]
fn rename_rotation_under_load_loses_and_duplicates_nothing() {
    for mode in MODES {
        let dir = Dir::new();
        let log = dir.create("app.log", "");
        let mut tailer = follow_rotating_log(&dir, mode);
        let mut expected = Vec::new();
        let mut file = OpenOptions::new().append(true).open(&log).unwrap();
        for n in 0..20_000 {
            let line = format!("event {n:05}");
            file.write_all(format!("{line}\n").as_bytes()).unwrap();
            expected.push(line);
            if n == 0 {
                // The tailer has opened the file once its first line is out; a file
                // rotated away before the tailer ever opened it was never its to follow.
                wait_for_lines(&mut tailer, &dir.path().join("merged.log"), 1);
            }
            if n % 2_500 == 2_499 {
                // logrotate's `create`: rename the file away, make a new one, reopen.
                fs::rename(&log, dir.path().join(format!("app.log.{n}"))).unwrap();
                file = File::create(&log).unwrap();
                // Lines keep coming as fast as they can, but rotations are spaced out:
                // a file created and rotated away again before the tailer looks once
                // (a wake-up: milliseconds) cannot be followed by name by anyone.
                thread::sleep(Duration::from_millis(100));
            }
        }
        drop(file);
        expect_exactly(
            mode,
            tailer,
            &dir.path().join("merged.log"),
            &expected,
            "replaced (rotated)",
        );
    }
}

#[test]
fn copytruncate_rotation_under_load_loses_and_duplicates_nothing() {
    for mode in MODES {
        let dir = Dir::new();
        let log = dir.create("app.log", "");
        let merged_path = dir.path().join("merged.log");
        let mut tailer = follow_rotating_log(&dir, mode);
        let mut expected = Vec::new();
        let mut file = OpenOptions::new().append(true).open(&log).unwrap();
        for n in 0..12_000 {
            let line = format!("event {n:05}");
            file.write_all(format!("{line}\n").as_bytes()).unwrap();
            expected.push(line);
            if n % 3_000 == 2_999 {
                // logrotate's `copytruncate`. Lines written between the copy and the
                // truncation are lost to any tailer (logrotate documents the race), so,
                // like a careful logrotate setup, the writer lets the reader catch up
                // first. The point tested: after truncation, nothing is lost or doubled.
                wait_for_lines(&mut tailer, &merged_path, expected.len());
                fs::copy(&log, dir.path().join(format!("app.log.{n}"))).unwrap();
                file.set_len(0).unwrap();
            }
        }
        drop(file);
        expect_exactly(mode, tailer, &merged_path, &expected, "truncated");
    }
}

#[test]
fn a_line_written_in_two_pieces_comes_out_whole() {
    for mode in MODES {
        let dir = Dir::new();
        let log = dir.create("slow.log", "");
        let tailer = dir
            .concur(["tail", "--mode", mode, "--idle-exit", "800ms", "slow.log"])
            .spawn();
        let mut file = OpenOptions::new().append(true).open(&log).unwrap();
        file.write_all(b"hello, ").unwrap();
        thread::sleep(Duration::from_millis(300));
        file.write_all(b"world\nnext\n").unwrap();
        let output = tailer.wait_with_output().unwrap();
        assert_eq!(
            String::from_utf8_lossy(&output.stdout),
            "hello, world\nnext\n",
            "{mode}"
        );
    }
}

#[test]
fn from_end_skips_what_was_there() {
    let dir = Dir::new();
    let log = dir.create("old.log", "old 1\nold 2\n");
    let tailer = dir
        .concur(["tail", "--from-end", "--idle-exit", "800ms", "old.log"])
        .spawn();
    thread::sleep(Duration::from_millis(200));
    append(&log, "new");
    let output = tailer.wait_with_output().unwrap();
    assert_eq!(String::from_utf8_lossy(&output.stdout), "new\n");
}

#[test]
fn a_missing_file_is_reported_by_path_and_the_others_go_on() {
    let dir = Dir::new();
    dir.create("here.log", "present\n");
    dir.concur(["tail", "--idle-exit", "300ms", "here.log", "gone.log"])
        .run()
        .expect_code(1)
        .expect_stderr("cannot open gone.log: No such file or directory");
    let run = dir
        .concur(["tail", "--idle-exit", "300ms", "here.log", "gone.log"])
        .run();
    assert_eq!(run.stdout(), "present\n");
    // As GNU tail (coreutils tests/tail/follow-name.sh): nothing to follow is a
    // failure, 1, not bad usage.
    dir.concur(["tail", "--idle-exit", "300ms", "gone.log"])
        .run()
        .expect_code(1)
        .expect_stderr("no files remaining");
}

#[test]
fn with_follow_name_a_missing_file_is_awaited() {
    let dir = Dir::new();
    let tailer = dir
        .concur(["tail", "--follow-name", "--idle-exit", "1s", "later.log"])
        .spawn();
    thread::sleep(Duration::from_millis(300));
    append(&dir.path().join("later.log"), "finally");
    let output = tailer.wait_with_output().unwrap();
    assert!(output.status.success());
    assert_eq!(String::from_utf8_lossy(&output.stdout), "finally\n");
    assert!(
        String::from_utf8_lossy(&output.stderr)
            .contains("later.log: does not exist yet; waiting for it")
    );
}

#[test]
fn an_unwritable_output_is_an_error_naming_it() {
    let dir = Dir::new();
    dir.create("in.log", "x\n");
    fs::create_dir(dir.path().join("a-directory")).unwrap();
    dir.concur([
        "tail",
        "--idle-exit",
        "200ms",
        "-o",
        "a-directory",
        "in.log",
    ])
    .run()
    .expect_code(2)
    .expect_stderr("cannot open the output a-directory");
    dir.concur(["tail", "--debug-slow", "50ms", "in.log"])
        .run()
        .expect_code(2)
        .expect_stderr("--debug-slow watches async tasks");
}

#[test]
fn sigterm_flushes_and_exits_zero() {
    for mode in MODES {
        let dir = Dir::new();
        dir.create("a.log", "one\ntwo\n");
        let mut tailer = dir
            .concur(["tail", "--mode", mode, "-o", "out.log", "a.log"])
            .spawn();
        wait_for_lines(&mut tailer, &dir.path().join("out.log"), 2);
        let pid = rustix::process::Pid::from_raw(tailer.id() as i32).unwrap();
        rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
        let output = tailer.wait_with_output().unwrap();
        assert!(
            output.status.success(),
            "{mode}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert_eq!(
            fs::read_to_string(dir.path().join("out.log")).unwrap(),
            "one\ntwo\n"
        );
    }
}

#[test]
fn inotify_wakes_the_tailer_long_before_the_poll_interval() {
    // With a 30 s polling interval, only an inotify wake-up can deliver the line before
    // the generous 10 s wait below runs out.
    let dir = Dir::new();
    let log = dir.create("fast.log", "");
    let mut tailer = dir
        .concur(["tail", "--interval", "30s", "-o", "out.log", "fast.log"])
        .spawn();
    thread::sleep(Duration::from_millis(200));
    append(&log, "ping");
    wait_for_lines(&mut tailer, &dir.path().join("out.log"), 1);
    let pid = rustix::process::Pid::from_raw(tailer.id() as i32).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
    assert!(tailer.wait_with_output().unwrap().status.success());
}
