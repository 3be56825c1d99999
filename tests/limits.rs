//! Careless inputs: every file concur reads has a size bound and every count a sanity
//! bound, each refused at once with the limit named; and every wait before a run
//! starts (a FIFO nobody has opened from the other end) gives way to Ctrl-C and SIGTERM.

use std::path::Path;
use std::time::Duration;

use crate::util::{Dir, eventually};

/// Refusals must come at once: this bounds each run so a regression fails, not hangs.
const AT_ONCE: Duration = Duration::from_secs(20);

/// Files that never end, and counts past any sense: each is refused with a clear error
/// naming the limit, instead of filling the memory (3.7 GB in 3 s for `--state
/// /dev/zero`, 4 GB for `--slf /dev/zero`) or aborting (`-N 4294967296`).
#[test]
fn endless_files_and_huge_counts_are_refused_naming_the_limit() {
    let dir = Dir::new();
    dir.create("a.log", "x\n");
    let cases: &[(&[&str], i32, &str)] = &[
        (
            &["run", "--slf", "/dev/zero", "echo", ":::", "a"],
            255,
            "cannot read the --slf file /dev/zero: larger than 1 MiB",
        ),
        (
            &[
                "run",
                "--resume",
                "--joblog",
                "/dev/zero",
                "echo",
                ":::",
                "a",
            ],
            255,
            "line 1: line longer than 1048576 bytes",
        ),
        (
            &["run", "echo", ":::", "a", "::::", "/dev/zero"],
            255,
            "held sources may be at most 256 MiB",
        ),
        (
            &["run", "-0", "echo", ":::", "a", "::::", "/dev/zero"],
            255,
            "may hold at most 1048576 records",
        ),
        (
            &["run", "-N", "4294967296", "echo", ":::", "a"],
            255,
            "4294967296 is more than 1048576",
        ),
        (
            &["run", "-n", "18446744073709551615", "echo", ":::", "a"],
            255,
            "is more than 1048576",
        ),
        (
            &["run", "--pipe", "--block", "2G", "wc"],
            255,
            "is more than 1 GiB",
        ),
        (
            &["tail", "--state", "/dev/zero", "-o", "out", "a.log"],
            2,
            "cannot read the state file /dev/zero: larger than 64 MiB",
        ),
        (
            &["tail", "--max-line-bytes", "2G", "a.log"],
            2,
            "2 GiB is more than 1 GiB",
        ),
        (
            &["guess", "load", "--clients", "18446744073709551615"],
            2,
            "is more than 10000000",
        ),
        (
            &["guess", "serve", "--max-line", "4294967296"],
            2,
            "is more than 1048576",
        ),
        (
            &["guess", "serve", "--max-sessions", "1000000000"],
            2,
            "--max-sessions 1000000000: a session takes a descriptor",
        ),
        (
            &["life", "rules-server", "--max-connections", "1000000000"],
            2,
            "--max-connections 1000000000: a connection takes a descriptor",
        ),
        (
            &["life", "rules-server", "--max-queued-bytes", "2G"],
            2,
            "2 GiB is more than 1 GiB",
        ),
        (
            &["factorize", "--repeat", "4294967296"],
            2,
            "4294967296 is more than 1000",
        ),
        (
            &["slow-io", "--count", "1000000000"],
            2,
            "--count 1000000000: 1000000000 threads asked for, but the OS allows about",
        ),
        (
            &["race", "--jobs", "1000000000"],
            2,
            "--jobs 1000000000: 1000000000 threads asked for",
        ),
        (
            &["race", "--increments", "18446744073709551615"],
            2,
            "is more than 1000000000",
        ),
        (
            &["pipeline", "--items", "18446744073709551615"],
            2,
            "is more than 10000000",
        ),
        (
            &["life", "bench", "--generations", "4294967296"],
            2,
            "is more than 10000",
        ),
        (
            &[
                "chart",
                "--hyperfine",
                "/dev/zero",
                "--title",
                "t",
                "--what",
                "w",
                "--command",
                "c",
                "--svg",
                "x.svg",
            ],
            2,
            "cannot read /dev/zero: larger than 64 MiB",
        ),
    ];
    for (args, code, said) in cases {
        dir.concur(*args)
            .run_within(AT_ONCE)
            .expect_code(*code)
            .expect_stderr(said);
    }
}

/// Whether some thread of `pid` is blocked opening a FIFO (the kernel's
/// `wait_for_partner`).
fn blocked_on_fifo(pid: u32) -> bool {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .into_iter()
        .flatten()
        .flatten()
        .any(|task| {
            std::fs::read_to_string(task.path().join("wchan"))
                .is_ok_and(|w| w.contains("wait_for_partner"))
        })
}

fn mkfifo(path: &Path) {
    rustix::fs::mknodat(
        rustix::fs::CWD,
        path,
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o600),
        0,
    )
    .unwrap();
}

/// A FIFO nobody opens from the other end holds `open(2)` for ever, and no signal
/// handler interrupts it: concur waits for it beside its signals, so Ctrl-C and
/// SIGTERM still end the run with 130 or 143. (`--joblog FIFO` used to ignore SIGTERM
/// for as long as nobody read the FIFO.)
#[test]
fn waits_on_a_fifo_before_the_run_give_way_to_signals() {
    let dir = Dir::new();
    let fifo = dir.path().join("fifo");
    mkfifo(&fifo);
    let fifo = fifo.to_str().unwrap();
    dir.create("a.log", "x\n");
    let cases: &[(&[&str], rustix::process::Signal, i32)] = &[
        (
            &["run", "--joblog", fifo, "echo", ":::", "a"],
            rustix::process::Signal::TERM,
            143,
        ),
        (
            &["run", "--resume", "--joblog", fifo, "echo", ":::", "a"],
            rustix::process::Signal::INT,
            130,
        ),
        (
            &["run", "--slf", fifo, "echo", ":::", "a"],
            rustix::process::Signal::TERM,
            143,
        ),
        (
            &["run", "echo", "::::", fifo],
            rustix::process::Signal::INT,
            130,
        ),
        (
            &["run", "echo", ":::", "a", "::::", fifo],
            rustix::process::Signal::TERM,
            143,
        ),
        (
            &[
                "run",
                "--results",
                &format!("{fifo}.csv"),
                "echo",
                ":::",
                "a",
            ],
            rustix::process::Signal::TERM,
            143,
        ),
        // tail exits 0 on its first signal, having written what it read (nothing).
        (
            &["tail", "--state", fifo, "-o", "out", "a.log"],
            rustix::process::Signal::TERM,
            0,
        ),
    ];
    // --results X.csv needs its own FIFO.
    mkfifo(&dir.path().join("fifo.csv"));
    for (args, signal, code) in cases {
        let child = dir.concur(*args).spawn();
        let watchdog = crate::util::Watchdog::new(&child, Duration::from_secs(30));
        let pid = child.id();
        eventually(&format!("{args:?} to wait on the FIFO"), || {
            blocked_on_fifo(pid)
        });
        rustix::process::kill_process(rustix::process::Pid::from_child(&child), *signal).unwrap();
        let out = child.wait_with_output().unwrap();
        drop(watchdog);
        assert_eq!(
            out.status.code(),
            Some(*code),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
