//! The `examples/` programs, a library user's view of each item, run as built by
//! `cargo test` (which builds every example): each must succeed and print what its
//! item shows.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

/// `target/<profile>/examples/NAME`, beside the concur binary's directory.
fn example(name: &str) -> PathBuf {
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_concur"));
    bin.parent().unwrap().join("examples").join(name)
}

fn run(name: &str) -> String {
    let child = Command::new(example(name))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{name} not built ({e}): cargo test builds examples"));
    let watchdog = crate::util::Watchdog::new(&child, Duration::from_secs(120));
    let output = child.wait_with_output().unwrap();
    drop(watchdog);
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{name}: {}\n{stdout}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

#[test]
fn every_example_runs_and_shows_its_item() {
    let cases: [(&str, &[&str]); 7] = [
        (
            "item52_child_processes",
            &["10 ok", "printf | sort: a\nb\nc\n"],
        ),
        (
            "item53_54_threads_and_locks",
            &["Mutex: 500000 of 500000", "Atomic: 500000 of 500000"],
        ),
        (
            "item55_queues",
            &[
                "the consumer summed 45",
                "squares: [1, 4, 9]",
                "stage \"parse\" failed on item 1: invalid digit",
                "three async consumers summed 5050",
            ],
        ),
        (
            "item56_60_life",
            &[
                "Serial: 4 generations",
                "Async: 4 generations",
                "5 cells alive",
            ],
        ),
        ("item61_guess", &["is Correct", "served 1 sessions"]),
        (
            "item62_63_tail",
            &["a.log: a1", "a.log: a2", "b.log: b1", "2 files"],
        ),
        // gcds from Python's math.gcd, not from the code under test.
        (
            "item64_process_pool",
            &[
                "gcd(1963309, 2265973) = 1",
                "gcd(2030677, 3814172) = 1",
                "gcd(1551645, 2229620) = 5",
            ],
        ),
    ];
    for (name, needles) in cases {
        if !example(name).exists() {
            // `cargo test` builds every example; `cargo test --test integration` does not.
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "{name} is not built: run the whole `cargo test`"
            );
            eprintln!("skipped: examples not built (run the whole `cargo test`)");
            return;
        }
        let out = run(name);
        for needle in needles {
            assert!(out.contains(needle), "{name} lacks {needle:?}:\n{out}");
        }
    }
}
