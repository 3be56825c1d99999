//! `concur sem`: a counting semaphore shared by many shells, which a holder killed
//! with SIGKILL cannot leave held.

use std::process::{Command, Stdio};
use std::time::Duration;

use crate::util::{Dir, Watchdog, eventually};

/// `concur sem ARGS` in `dir`, with the semaphores under `dir` (not the user's home).
fn sem(dir: &Dir, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_concur"));
    cmd.arg("sem")
        .args(args)
        .current_dir(dir.path())
        .env("PARALLEL_HOME", dir.path().join("home"))
        .stdin(Stdio::null());
    cmd
}

/// The most commands that ran at once, from a log of `s` (start) and `e` (end) lines
/// each command appended (appends of a few bytes are atomic).
fn most_at_once(log: &str) -> usize {
    let (mut running, mut most) = (0usize, 0usize);
    for line in log.lines() {
        match line {
            "s" => running += 1,
            "e" => running = running.saturating_sub(1),
            other => panic!("unexpected log line {other:?}"),
        }
        most = most.max(running);
    }
    most
}

/// Twelve shells at once each start a command on a 3-slot semaphore in the background:
/// all twelve run, never more than three at once, and `--wait` returns after the last.
#[test]
fn many_shells_share_three_slots() {
    let dir = Dir::new();
    let shells: Vec<_> = (0..12)
        .map(|_| {
            sem(
                &dir,
                &[
                    "-j",
                    "3",
                    "--id",
                    "many",
                    "echo s >> log; sleep 0.05; echo e >> log",
                ],
            )
            .spawn()
            .unwrap()
        })
        .collect();
    for mut shell in shells {
        let watchdog = Watchdog::new(&shell, Duration::from_secs(120));
        assert!(shell.wait().unwrap().success());
        drop(watchdog);
    }
    let status = sem(&dir, &["--id", "many", "-j", "3", "--wait"])
        .status()
        .unwrap();
    assert!(status.success());
    let log = std::fs::read_to_string(dir.path().join("log")).unwrap();
    assert_eq!(log.lines().filter(|l| *l == "e").count(), 12, "{log}");
    let most = most_at_once(&log);
    assert!((1..=3).contains(&most), "{most} at once:\n{log}");
}

/// The holder of the only slot is killed with SIGKILL: the slot is free at once (the
/// next command gets it without a timeout), and nothing is left to clean up.
#[test]
fn a_holder_killed_with_sigkill_releases_its_slot() {
    let dir = Dir::new();
    let started = sem(
        &dir,
        &["-j", "1", "--id", "k", "echo $$ > pid; exec sleep 100"],
    )
    .status()
    .unwrap();
    assert!(started.success());
    let pid_file = dir.path().join("pid");
    eventually("the holder to write its pid", || {
        std::fs::read_to_string(&pid_file).is_ok_and(|p| p.ends_with('\n'))
    });
    // Held: a second command gives up at once.
    let held = sem(
        &dir,
        &["-j", "1", "--id", "k", "--fg", "--st", "-0.05", "true"],
    )
    .status()
    .unwrap();
    assert_eq!(held.code(), Some(1));
    let pid = std::fs::read_to_string(&pid_file).unwrap();
    let killed = Command::new("kill")
        .args(["-KILL", pid.trim()])
        .status()
        .unwrap();
    assert!(killed.success());
    let next = sem(&dir, &["-j", "1", "--id", "k", "--fg", "echo got it"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let watchdog = Watchdog::new(&next, Duration::from_secs(60));
    let out = next.wait_with_output().unwrap();
    drop(watchdog);
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout), "got it\n");
}

/// `--fg` exits as its command does; bad use is refused by name with 255.
#[test]
fn fg_exits_as_its_command_and_bad_use_is_named() {
    let dir = Dir::new();
    let status = sem(&dir, &["--fg", "--id", "f", "exit 7"])
        .status()
        .unwrap();
    assert_eq!(status.code(), Some(7));
    let out = sem(&dir, &["--id", "f"]).output().unwrap();
    assert_eq!(out.status.code(), Some(255));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no command to run"));
    let out = sem(&dir, &["--wait", "--id", "f", "echo"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(255));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--wait takes no command"));
}

/// A link named `sem` (or `parallel`) to concur is GNU's command of that name.
#[test]
fn links_named_sem_and_parallel_are_those_commands() {
    let dir = Dir::new();
    let bin = env!("CARGO_BIN_EXE_concur");
    for name in ["sem", "parallel"] {
        std::os::unix::fs::symlink(bin, dir.path().join(name)).unwrap();
    }
    let out = Command::new(dir.path().join("sem"))
        .args(["--fg", "--id", "link", "echo from sem"])
        .env("PARALLEL_HOME", dir.path().join("home"))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "from sem\n");
    let out = Command::new(dir.path().join("parallel"))
        .args(["-k", "echo", ":::", "a", "b"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "a\nb\n");
    // `parallel --semaphore` among the options is sem; after the command it is a word.
    let semaphore = |args: &[&str]| {
        let out = Command::new(dir.path().join("parallel"))
            .args(args)
            .env("PARALLEL_HOME", dir.path().join("home"))
            .stdin(Stdio::null())
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert_eq!(
        semaphore(&["-j", "2", "--semaphore", "--fg", "echo s"]),
        "s\n"
    );
    assert_eq!(
        semaphore(&["-k", "echo", "--semaphore", ":::", "w"]),
        "--semaphore w\n"
    );
}
