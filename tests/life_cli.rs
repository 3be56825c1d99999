//! `concur life`, `concur life bench` and `concur tour`, through the real binary.

use serde_json::Value;

use crate::util::Dir;

const STRATEGIES: [&str; 6] = crate::util::LIFE_STRATEGIES;

/// The exact expected output of `concur life` (note the trailing spaces).
const BOOK_COLUMNS: &str = "    0     |     1     |     2     |     3     |     4    
---*----- | --------- | --------- | --------- | ---------
----*---- | --*-*---- | ----*---- | ---*----- | ----*----
--***---- | ---**---- | --*-*---- | ----**--- | -----*---
--------- | ---*----- | ---**---- | ---**---- | ---***---
--------- | --------- | --------- | --------- | ---------
";

#[test]
fn no_arguments_print_the_books_glider_columns_exactly() {
    let dir = Dir::new();
    let run = dir.concur(["life"]).run().expect_success();
    assert_eq!(run.stdout(), BOOK_COLUMNS, "\n{run}");
    assert_eq!(run.stderr(), "", "nothing on stderr when piped");
}

#[test]
fn every_strategy_prints_the_same_columns() {
    let dir = Dir::new();
    for strategy in STRATEGIES {
        let run = dir
            .concur(["life", "--mode", strategy])
            .run()
            .expect_success();
        assert_eq!(run.stdout(), BOOK_COLUMNS, "{strategy}\n{run}");
    }
}

#[test]
fn print_final_prints_only_the_last_grid() {
    let dir = Dir::new();
    let run = dir
        .concur(["life", "--print", "final", "--generations", "8"])
        .run()
        .expect_success();
    // After 8 generations the glider has moved (2, 2) from its start.
    assert_eq!(
        run.stdout(),
        "---------\n---------\n-----*---\n------*--\n----***--\n"
    );
}

#[test]
fn every_strategy_gives_the_same_final_grid_on_a_random_board() {
    let dir = Dir::new();
    let final_grid = |strategy: &str| {
        dir.concur([
            "life",
            "--mode",
            strategy,
            "--size",
            "12x17",
            "--random",
            "0.4",
            "--seed",
            "3",
            "--generations",
            "9",
            "--print",
            "final",
        ])
        .run()
        .expect_success()
        .stdout()
    };
    let serial = final_grid("serial");
    assert_eq!(serial.lines().count(), 12);
    assert!(serial.lines().all(|l| l.len() == 17));
    for strategy in &STRATEGIES[1..] {
        assert_eq!(final_grid(strategy), serial, "{strategy}");
    }
}

#[test]
fn json_prints_a_line_per_generation_then_a_summary() {
    let dir = Dir::new();
    let run = dir
        .concur([
            "life",
            "--mode",
            "pool",
            "--generations",
            "3",
            "--latency",
            "2ms",
            "--json",
        ])
        .run()
        .expect_success();
    let lines: Vec<Value> = run
        .stdout()
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is JSON"))
        .collect();
    assert_eq!(lines.len(), 4, "\n{run}");
    for (i, line) in lines[..3].iter().enumerate() {
        assert_eq!(line["generation"], i + 1);
        assert_eq!(line["alive"], 5, "a glider keeps 5 cells");
        assert!(line["seconds"].as_f64().unwrap() >= 0.002);
    }
    let summary = &lines[3];
    assert_eq!(summary["strategy"], "pool");
    assert_eq!(summary["cells"], 45);
    assert_eq!(summary["generations"], 3);
    assert_eq!(summary["workers"], 10);
    assert!(summary["seconds_per_generation"].as_f64().unwrap() > 0.0);
    assert!(
        summary["peak_threads"].as_u64().unwrap() >= 11,
        "10 workers and main: {summary}"
    );
}

#[test]
fn a_failing_cell_exits_1_with_the_books_message_under_every_strategy() {
    let dir = Dir::new();
    for strategy in STRATEGIES {
        let run = dir
            .concur([
                "life",
                "--mode",
                strategy,
                "--fail-at",
                "2,3",
                "--latency",
                "5ms",
            ])
            .run()
            .expect_code(1)
            .expect_stderr("SimulationError at (2, 3): Problem with I/O");
        assert_eq!(run.stdout(), "", "{strategy}: no partial output\n{run}");
    }
}

#[test]
fn bad_arguments_exit_2_with_a_clear_message() {
    let dir = Dir::new();
    let cases: [(&[&str], &str); 9] = [
        (&["--size", "0x5"], "height must be at least 1"),
        (&["--size", "5by9"], "is not HEIGHTxWIDTH"),
        (
            &["--fail-at", "9,9"],
            "--fail-at 9,9 is outside the 5x9 grid",
        ),
        (&["--fail-at", "2"], "is not Y,X"),
        (&["--mode", "fibers"], "invalid value 'fibers'"),
        (
            &["--jobs", "3"],
            "--jobs applies to pipeline, phased-pipeline and pool, not serial",
        ),
        (&["--mode", "pool", "--jobs", "0"], "must be at least 1"),
        (&["--latency", "100 parsecs"], "unknown unit"),
        (&["--random", "1.5"], "outside 0..=1"),
    ];
    for (args, message) in cases {
        let run = dir.concur(["life"]).args(args).run();
        let run = run.expect_code(2).expect_stderr(message);
        assert_eq!(run.stdout(), "");
    }
}

#[test]
fn too_large_a_grid_is_refused_before_allocating() {
    let dir = Dir::new();
    dir.concur(["life", "--size", "100000x100000"])
        .run()
        .expect_code(2)
        .expect_stderr("larger than the limit of 100000000 cells");
}

#[test]
fn pattern_files_in_all_three_formats() {
    let dir = Dir::new();
    let expected = "-*---\n--*--\n***--\n-----\n";
    let files = [
        dir.create("glider.txt", "-*-\n--*\n***\n"),
        dir.create("glider.cells", "!Name: Glider\n!\n.O\n..O\nOOO\n"),
        dir.create(
            "glider.rle",
            "#N Glider\nx = 3, y = 3, rule = B3/S23\nbob$2bo$3o!\n",
        ),
    ];
    for file in &files {
        let run = dir
            .concur([
                "life",
                "--generations",
                "0",
                "--print",
                "final",
                "--size",
                "4x5",
                "--pattern",
            ])
            .arg(file)
            .run()
            .expect_success();
        assert_eq!(run.stdout(), expected, "{}", file.display());
    }
    // Without --size, an RLE pattern runs on the unbounded plane, at Golly's position
    // (its top-left cell at 0,0): 400 generations later the glider has moved 100 cells
    // down and right, and is the same glider.
    for mode in ["serial", "parallel", "hashlife"] {
        let run = dir
            .concur([
                "life",
                "--generations",
                "400",
                "--print",
                "rle",
                "--mode",
                mode,
            ])
            .args(["--pattern", "glider.rle"])
            .run()
            .expect_success();
        assert_eq!(
            run.stdout(),
            "#CXRLE Pos=100,100 Gen=400\nx = 3, y = 3, rule = B3/S23\nbo$2bo$3o!\n",
            "{mode}"
        );
    }
}

#[test]
fn bad_pattern_files_name_the_file_the_line_and_the_reason() {
    let dir = Dir::new();
    let cases = [
        (
            "bad.txt",
            "-*-\n-x-\n",
            "bad.txt:2: column 2: unexpected 'x'",
        ),
        (
            "bad.cells",
            "!c\n.O.\n.O#\n",
            "bad.cells:3: column 3: unexpected '#'",
        ),
        (
            "rule.rle",
            "x = 2, y = 2, rule = B3a/S23\no!\n",
            "rule.rle:1: rule \"B3a/S23\": non-totalistic rules",
        ),
        (
            "generations.rle",
            "x = 2, y = 2, rule = 23/3/4\no!\n",
            "generations.rle:1: rule \"23/3/4\": Generations rules",
        ),
        (
            "cut.rle",
            "x = 2, y = 2\no$o",
            "cut.rle:2: missing the closing `!`",
        ),
        (
            "empty.cells",
            "!only comments\n",
            "empty.cells:1: the pattern has no cells",
        ),
        (
            "noheader.rle",
            "bo$2bo$3o!\n",
            "noheader.rle:1: expected `key = value` in the header",
        ),
    ];
    for (name, contents, message) in cases {
        dir.create(name, contents);
        dir.concur(["life", "--pattern", name])
            .run()
            .expect_code(2)
            .expect_stderr(message);
    }
    dir.concur(["life", "--pattern", "missing.rle"])
        .run()
        .expect_code(2)
        .expect_stderr("cannot read pattern file missing.rle");
    dir.create("big.txt", "***\n***\n");
    dir.concur(["life", "--pattern", "big.txt", "--size", "1x1"])
        .run()
        .expect_code(2)
        .expect_stderr("the 2x3 pattern does not fit in a 1x1 grid");
}

#[test]
fn thread_per_cell_past_the_os_limit_fails_cleanly() {
    // Cap the address space so the OS cannot give 10,000 threads their stacks. Without
    // the budget check, Rust's thread start-up would abort the process (status 134).
    let _exclusive = crate::util::many_threads();
    let dir = Dir::new();
    let exe = env!("CARGO_BIN_EXE_concur");
    for limit_kib in [600_000, 1_400_000] {
        let script = format!(
            "ulimit -v {limit_kib} && exec '{exe}' life --mode thread-per-cell --size 100x100 --latency 50ms --generations 1"
        );
        let output = dir.sh(&script);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(
            output.status.code(),
            Some(1),
            "limit {limit_kib} KiB: {stderr}"
        );
        assert!(
            stderr.contains("of 10000: "),
            "limit {limit_kib} KiB: {stderr}"
        );
        assert!(
            stderr.starts_with("concur: cannot spawn thread "),
            "{stderr}"
        );
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}

#[test]
fn a_closed_stdout_pipe_is_not_an_error() {
    let dir = Dir::new();
    let exe = env!("CARGO_BIN_EXE_concur");
    let script = format!(
        "set -o pipefail; '{exe}' life --size 300x300 --random 0.5 --generations 20 | head -c 10 >/dev/null"
    );
    let output = std::process::Command::new("bash")
        .args(["-c", &script])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&output.stderr), "");
}

#[test]
fn help_documents_strategies_and_exit_status() {
    let dir = Dir::new();
    let run = dir.concur(["life", "--help"]).run().expect_success();
    let help = run.stdout();
    for needle in [
        "thread-per-cell",
        "phased-pipeline",
        "Exit status:",
        "--latency",
        "--fail-at",
    ] {
        assert!(help.contains(needle), "help lacks {needle}\n{help}");
    }
}

#[test]
fn bench_runs_every_strategy_in_its_own_process() {
    let dir = Dir::new();
    let run = dir
        .concur([
            "life",
            "bench",
            "--json",
            "--max-cells",
            "45",
            "--latency",
            "2ms",
            "--generations",
            "1",
        ])
        .run()
        .expect_success();
    let report: Value = serde_json::from_str(run.stdout().trim()).expect("one JSON object");
    assert_eq!(report["latency_ms"], 2.0);
    let cases = report["cases"].as_array().unwrap();
    let names: Vec<&str> = cases
        .iter()
        .map(|c| c["strategy"].as_str().unwrap())
        .collect();
    assert_eq!(names, STRATEGIES);
    for case in cases {
        assert_eq!(case["cells"], 45);
        let measured = case["seconds_per_generation"].as_f64().unwrap();
        let floor = case["io_floor_seconds"].as_f64().unwrap();
        assert!(
            measured >= floor * 0.9,
            "{case}: faster than the I/O floor?"
        );
        assert!(case["peak_rss_mb"].as_f64().unwrap() > 0.0, "{case}");
    }
    // Serial pays 45 round trips of 2 ms: 90 ms.
    assert_eq!(cases[0]["io_floor_seconds"], 0.09);
}

#[test]
fn quick_tour_covers_items_52_to_64() {
    let dir = Dir::new();
    let run = dir
        .concur(["tour", "--quick", "--html", "tour.html"])
        .run()
        .expect_success();
    let out = run.stdout();
    // The same run wrote the HTML report; it is checked in a browser there.
    crate::report::check_tour_page(&dir.path().join("tour.html"), &out);
    assert!(
        out.contains(BOOK_COLUMNS.trim_end()),
        "the glider columns\n{out}"
    );
    for needle in [
        "Item 52",
        "run, checked:        Hello from the child!",
        "10 x `sleep 1`:      finished in",
        "(10 of 10 ok)",
        "0.1 s timeout: stopped after",
        "exit status -15",
        // concur run's GNU parallel interface: the product, {#}, {1/.}, quoted {2}.
        "  1 a.tar x\n  2 a.tar $(touch",
        "  3 b x\n",
        "inside \"{}\": stayed data, nothing ran",
        "Item 53",
        "5 slow system calls (poll, 100 ms)",
        "helicopter positions",
        "Item 54",
        "Counter should be 500000, got 500000  the book's LockingCounter",
        "never overdrawn",
        "a 4th acquire timed out after 20 ms",
        // concur sem: two slots shared by six processes (checked below); a killed
        // holder's slot freed.
        "inside at once",
        "a holder killed with SIGKILL (its process group) lost its slot at once",
        "Item 55",
        "the busy-waiting MyQueue pipeline: processed 1000 items after polling",
        "200 items finished in",
        "Item 56",
        "Items 56-60",
        "Item 57",
        "All six strategies produced identical grids",
        "Item 61",
        "threaded server, threaded client",
        "async server, async client",
        "Client: 3 is Correct",
        "Server: 3 is Correct",
        "client 3 hears \"ERROR server full\"",
        "hears \"ERROR no complete line for 300ms: closing the connection\"",
        "Items 62-63",
        "50 lines merged in",
        "500 quiet files for",
        "copytruncate with 1,000 lines written but not yet read: all 2,100 lines out",
        "--debug-slow 50ms catches the book's blocking coroutine: slow poll: task \"slow_coroutine\"",
        "thread-per-cell  Err: SimulationError at (2, 3): Problem with I/O",
        "async            Err: SimulationError at (2, 3): Problem with I/O",
        "Item 64",
        "= 30 tasks",
        // The book's gcds, from Python's math.gcd (Euclid), not from concur.
        "All three agree; the ten gcds: [1, 1, 5, 1, 32, 1, 14, 9, 1, 9]",
        "Past one machine",
        // HashLife: the gun's 2^30 generations counted as Golly counts them, and the
        // soup's count the same on one thread and on all.
        "Gosper gun, 2^30 generations in one jump: 178957021 cells",
        "(bgolly 3.3 counts 178957021: the same)",
        "cells either way.",
    ] {
        assert!(out.contains(needle), "tour lacks {needle:?}\n{out}");
    }
    assert!(!out.contains("the error was lost"), "{out}");
    // With sshd there, 40 jobs go to a host a session each, and through its agent.
    if out.contains("A private sshd") {
        for needle in [
            "40 jobs of `true` on 127.0.0.2 (2 slots): a session each,",
            "jobs/s (0 failed);",
            "through one `concur agent` session (--remote-agent),",
            "jobs/s (0 failed):",
            // A timeout leaves nothing on the host, --pipe job or not.
            "on 127.0.0.2: 1 timed out; `pgrep` over SSH\n  (looking for up to 10 s) then finds 0 such process there",
            "`--pipe --timeout 0.5 'cat >/dev/null; sleep 3110'`: 1 timed out; 0 such process\n  left",
        ] {
            assert!(out.contains(needle), "tour lacks {needle:?}\n{out}");
        }
    }
    // Never more than sem's two slots at once (fewer only if the shells never overlap).
    let inside: usize = out
        .split("at most ")
        .find_map(|rest| rest.split_once(" inside at once"))
        .and_then(|(n, _)| n.parse().ok())
        .expect("the sem line");
    assert!((1..=2).contains(&inside), "{inside} inside at once\n{out}");
    // The book's three tailing designs and concur's own.
    assert_eq!(out.matches("confirm_merge passed").count(), 4, "{out}");
}

#[test]
fn absurd_generation_counts_neither_panic_nor_allocate() {
    // u64::MAX panicked (capacity overflow, exit 101) and 10^12 aborted on a 16 TB
    // allocation (exit 134): both sized a vector from --generations before the first step.
    let dir = Dir::new();
    for generations in ["18446744073709551615", "1000000000000"] {
        let mut child = dir
            .concur(["life", "--generations", generations, "--print", "none"])
            .spawn();
        std::thread::sleep(std::time::Duration::from_millis(500));
        let still_running = child.try_wait().unwrap().is_none();
        let _ = child.kill();
        let output = child.wait_with_output().unwrap();
        assert!(
            still_running,
            "{generations}: {:?}\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

#[test]
fn columns_are_refused_past_a_thousand_generations() {
    let dir = Dir::new();
    dir.concur(["life", "--generations", "1001"])
        .run()
        .expect_code(2)
        .expect_stderr("--print columns (the default) keeps every generation")
        .expect_stderr("use --print final");
    dir.concur(["life", "--size", "2000x2000", "--generations", "3"])
        .run()
        .expect_code(2)
        .expect_stderr("not 3 generations of 4000000 cells");
    let run = dir
        .concur(["life", "--generations", "1001", "--print", "final"])
        .run()
        .expect_success();
    assert_eq!(run.stdout().lines().count(), 5);
}

#[test]
fn a_run_that_cannot_fit_in_memory_is_refused_before_it_starts() {
    // Under a 1 GB address-space limit, 2 million pool cells (about 1.7 GB) used to
    // start, then abort when an allocation failed.
    let dir = Dir::new();
    let exe = env!("CARGO_BIN_EXE_concur");
    let script = format!(
        "ulimit -v 1000000 && exec '{exe}' life --mode pool --size 2000x1000 --print none --generations 1"
    );
    let output = dir.sh(&script);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("2000000 cells with --mode pool need about 1.7 GB (830 bytes per cell)")
            && stderr.contains("(the address-space limit (ulimit -v))"),
        "{stderr}"
    );
    // The same grid fits serially.
    let script = format!(
        "ulimit -v 1000000 && exec '{exe}' life --size 2000x1000 --print none --generations 1"
    );
    let output = dir.sh(&script);
    assert!(output.status.success(), "{output:?}");
}

#[test]
fn zero_generations_report_zero_seconds_and_an_empty_bench_is_an_error() {
    let dir = Dir::new();
    let run = dir
        .concur(["life", "--generations", "0", "--json"])
        .run()
        .expect_success();
    assert!(!run.stdout().contains("-0.0"), "{}", run.stdout());
    let summary: Value = serde_json::from_str(run.stdout().lines().last().unwrap()).unwrap();
    assert_eq!(summary["total_seconds"], 0.0);
    dir.concur(["life", "bench", "--max-cells", "0"])
        .run()
        .expect_code(2)
        .expect_stderr("no case has at most 0 cells: the smallest has 45");
}

/// The glider after 4 generations on a 6x6 torus, from any of the formats below.
fn final_grid(dir: &Dir, file: &str) -> String {
    dir.concur([
        "life",
        "--pattern",
        file,
        "--size",
        "6x6",
        "--generations",
        "4",
        "--print",
        "final",
    ])
    .run()
    .expect_success()
    .stdout()
}

#[test]
fn pattern_files_as_golly_and_old_programs_write_them() {
    let dir = Dir::new();
    dir.create("plain.rle", "x = 3, y = 3, rule = B3/S23\nbo$2bo$3o!\n");
    let expected = final_grid(&dir, "plain.rle");
    assert_eq!(expected, "------\n--*---\n---*--\n-***--\n------\n------\n");
    // A byte-order mark, golly's rule name, and a Latin-1 comment.
    dir.create(
        "bom.rle",
        b"\xef\xbb\xbfx = 3, y = 3, rule = B3/S23\nbo$2bo$3o!\n",
    );
    dir.create("life.rle", "x = 3, y = 3, rule = Life\nbo$2bo$3o!\n");
    dir.create(
        "latin1.rle",
        b"#N Glider\n#O Zo\xeb\nx = 3, y = 3\nbo$2bo$3o!\n",
    );
    dir.create(
        "g105.lif",
        "#Life 1.05\n#D Glider\n#N\n#P 0 0\n.*.\n..*\n***\n",
    );
    dir.create("g106.lif", "#Life 1.06\n1 0\n2 1\n0 2\n1 2\n2 2\n");
    for file in ["bom.rle", "life.rle", "latin1.rle", "g105.lif", "g106.lif"] {
        assert_eq!(final_grid(&dir, file), expected, "{file}");
    }
    // golly's bounded torus is the grid itself: no --size needed.
    dir.create(
        "torus.rle",
        "x = 3, y = 3, rule = B3/S23:T6,6\nbo$2bo$3o!\n",
    );
    let run = dir
        .concur([
            "life",
            "--pattern",
            "torus.rle",
            "--generations",
            "4",
            "--print",
            "final",
        ])
        .run()
        .expect_success();
    assert_eq!(run.stdout(), expected);
    // What is refused says why, with the line.
    dir.create(
        "plane.rle",
        "x = 3, y = 3, rule = B3/S23:P6,6\nbo$2bo$3o!\n",
    );
    dir.concur(["life", "--pattern", "plane.rle"])
        .run()
        .expect_code(2)
        .expect_stderr(
            "plane.rle:1: bounded grid :P6,6 (a plane whose edges are dead) is not supported",
        );
    dir.create("bad.rle", b"x = 3, y = 3\nbo$2b\xebo$3o!\n");
    dir.concur(["life", "--pattern", "bad.rle"])
        .run()
        .expect_code(2)
        .expect_stderr("bad.rle:2: not UTF-8 text: byte 0xEB at column 6");
    dir.concur(["life", "--pattern", "/dev/zero"])
        .run()
        .expect_code(2)
        .expect_stderr("/dev/zero is larger than 128 MiB: not a pattern file");
}

/// The README's `patterns/` load as the patterns they are: a glider keeps its 5 cells,
/// and the Gosper gun (36 cells) has sent out one glider (5 more) by generation 30,
/// its period.
#[test]
fn the_shipped_patterns_are_a_glider_and_a_glider_gun() {
    let dir = Dir::new();
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("patterns");
    let alive = |pattern: &str, generations: &str| -> Vec<u64> {
        let run = dir
            .concur([
                "life",
                "--size",
                "40x60",
                "--json",
                "--generations",
                generations,
            ])
            .arg("--pattern")
            .arg(root.join(pattern))
            .run()
            .expect_success();
        run.stdout()
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|v| v.get("generation").is_some())
            .map(|v| v["alive"].as_u64().unwrap())
            .collect()
    };
    let glider = alive("glider.rle", "8");
    assert!(glider.iter().all(|&n| n == 5), "{glider:?}");
    // One line per generation from 1: at 30, the gun's 36 cells and one glider.
    let gun = alive("gun.rle", "30");
    assert_eq!((gun.len(), gun.last()), (30, Some(&41)), "{gun:?}");
    assert_eq!(
        alive("gun.rle", "60").last(),
        Some(&46),
        "a second glider by 60"
    );
}

/// `tour --json`: JSON Lines on stdout, one object per chart of what was measured, in
/// every item's section; the text goes to stderr. Item 54's counters are figures too:
/// the lock and the atomic count all 500,000 increments.
#[test]
fn the_tour_as_json_has_every_sections_figures() {
    let dir = Dir::new();
    let run = dir
        .concur(["tour", "--quick", "--json"])
        .run()
        .expect_success();
    assert!(run.stderr().contains("Item 64"), "the text goes to stderr");
    let objects: Vec<Value> = run
        .stdout()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let sections: Vec<&str> = objects
        .iter()
        .map(|o| o["section"].as_str().unwrap())
        .collect();
    for item in [
        "Item 52",
        "Item 53",
        "Item 54",
        "Item 55",
        "Items 56-60",
        "Item 61",
        "Items 62-63",
        "Item 64",
    ] {
        assert!(
            sections.iter().any(|s| s.starts_with(item)),
            "no figures for {item}: {sections:?}"
        );
    }
    let counters = objects
        .iter()
        .find(|o| o["section"].as_str().unwrap().starts_with("Item 54"))
        .unwrap();
    let groups = counters["chart"]["bars"]["groups"].as_array().unwrap();
    let counted: Vec<f64> = groups
        .iter()
        .map(|g| g["bars"][0]["median"].as_f64().unwrap())
        .collect();
    assert_eq!(counted.len(), 3);
    assert!(
        counted[0] < 500_000.0,
        "the racy counter lost some: {counted:?}"
    );
    assert_eq!(counted[1..], [500_000.0, 500_000.0]);
}
