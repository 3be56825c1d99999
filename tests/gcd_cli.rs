//! `concur gcd` through the real binary, and the process pool against real workers.

use std::thread;
use std::time::Duration;

use serde_json::Value;

use concur::parallel::gcd::GcdTask;
use concur::parallel::pool::{self, PoolOptions};
use concur::process::CancelToken;

use crate::util::{Dir, children_of, eventually};

/// Euclid's gcd: an independent check on the book's slow one.
fn euclid(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

const BOOK_GCDS: [u64; 10] = [1, 1, 5, 1, 32, 1, 14, 9, 1, 9];

fn results(run: &crate::util::Run) -> Vec<Value> {
    let report: Value = serde_json::from_str(run.stdout().trim()).expect("one JSON object");
    report["results"].as_array().unwrap().clone()
}

#[test]
fn every_mode_gives_the_same_results_as_euclid() {
    let dir = Dir::new();
    for mode in ["serial", "threads", "processes"] {
        let run = dir
            .concur(["gcd", "--mode", mode, "--json"])
            .run()
            .expect_success();
        let report: Value = serde_json::from_str(run.stdout().trim()).unwrap();
        assert_eq!(report["mode"], mode);
        assert!(report["seconds"].as_f64().unwrap() > 0.0);
        assert!(report["workers"].as_u64().unwrap() >= 1);
        assert_eq!(results(&run), BOOK_GCDS.map(Value::from).to_vec(), "{mode}");
    }
    // A file of other pairs, scaled, in every mode.
    let pairs: Vec<(u64, u64)> = (1..=12).map(|i| (i * 3_003, i * 4_004 + 12)).collect();
    let text: String = pairs.iter().map(|(a, b)| format!("{a} {b}\n")).collect();
    dir.create("pairs.txt", text);
    let expected: Vec<Value> = std::iter::repeat_n(pairs.clone(), 3)
        .flatten()
        .map(|(a, b)| Value::from(euclid(a, b)))
        .collect();
    for mode in ["serial", "threads", "processes"] {
        let run = dir
            .concur([
                "gcd",
                "--mode",
                mode,
                "--pairs",
                "pairs.txt",
                "--scale",
                "3",
                "--json",
            ])
            .run()
            .expect_success();
        assert_eq!(results(&run), expected, "{mode}");
    }
}

#[test]
fn text_output_is_in_input_order_with_the_time() {
    let dir = Dir::new();
    let run = dir
        .concur(["gcd", "--mode", "processes", "-j", "2"])
        .run()
        .expect_success();
    let out = run.stdout();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "gcd(1963309, 2265973) = 1");
    assert_eq!(lines[4], "gcd(1823712, 1924928) = 32");
    assert_eq!(lines[9], "gcd(1292391, 2123811) = 9");
    assert!(
        lines[10].starts_with("10 pairs on 2 worker processes"),
        "{out}"
    );
}

#[test]
fn processes_with_one_worker_and_with_more_workers_than_tasks() {
    let dir = Dir::new();
    for jobs in ["1", "16"] {
        let run = dir
            .concur(["gcd", "--mode", "processes", "-j", jobs, "--json"])
            .run()
            .expect_success();
        assert_eq!(
            results(&run),
            BOOK_GCDS.map(Value::from).to_vec(),
            "-j {jobs}"
        );
    }
    let run = dir
        .concur([
            "gcd",
            "--mode",
            "processes",
            "-j",
            "2",
            "--chunk",
            "1",
            "--scale",
            "5",
            "--json",
        ])
        .run()
        .expect_success();
    assert_eq!(results(&run).len(), 50);
}

#[test]
fn a_worker_crash_fails_only_its_task_and_the_rest_complete() {
    let dir = Dir::new();
    let run = dir
        .concur([
            "gcd",
            "--mode",
            "processes",
            "-j",
            "2",
            "--chunk",
            "3",
            "--fault-abort-on",
            "4",
            "--json",
        ])
        .run()
        .expect_code(1)
        .expect_stderr("concur: task 4 (1823712, 1924928): the worker died of signal 6")
        .expect_stderr("1 worker(s) replaced after dying");
    let report: Value = serde_json::from_str(run.stdout().trim()).unwrap();
    let mut expected: Vec<Value> = BOOK_GCDS.map(Value::from).to_vec();
    expected[4] = Value::Null;
    assert_eq!(report["results"].as_array().unwrap(), &expected);
    assert_eq!(report["failures"].as_array().unwrap().len(), 1);
    assert_eq!(report["respawns"], 1);
}

#[test]
fn a_worker_killed_from_outside_costs_one_task() {
    let dir = Dir::new();
    let child = dir
        .concur([
            "gcd",
            "--mode",
            "processes",
            "-j",
            "2",
            "--chunk",
            "2",
            "--scale",
            "60",
            "--json",
        ])
        .spawn();
    let mut victim = None;
    eventually("a worker to start", || {
        victim = children_of(child.id()).first().copied();
        victim.is_some()
    });
    thread::sleep(Duration::from_millis(100));
    let pid = rustix::process::Pid::from_raw(victim.unwrap() as i32).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::KILL).unwrap();
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("the worker died of signal 9"), "{stderr}");
    let report: Value =
        serde_json::from_str(String::from_utf8_lossy(&output.stdout).trim()).unwrap();
    let results = report["results"].as_array().unwrap();
    assert_eq!(results.len(), 600);
    assert_eq!(
        results.iter().filter(|r| r.is_null()).count(),
        1,
        "exactly the killed worker's task"
    );
    for (i, r) in results.iter().enumerate() {
        if !r.is_null() {
            assert_eq!(r, &Value::from(BOOK_GCDS[i % 10]), "task {i}");
        }
    }
}

#[test]
fn sigterm_stops_and_reaps_every_worker() {
    let dir = Dir::new();
    let child = dir
        .concur(["gcd", "--mode", "processes", "-j", "2", "--scale", "500"])
        .spawn();
    // Its own workers running means its signal handler is installed (that comes first).
    let mut workers = Vec::new();
    eventually("the workers to start", || {
        workers = children_of(child.id());
        workers.len() == 2
    });
    let pid = rustix::process::Pid::from_raw(child.id() as i32).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
    let output = child.wait_with_output().unwrap();
    assert_eq!(
        output.status.code(),
        Some(143),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    for worker in workers {
        assert!(
            !std::path::Path::new(&format!("/proc/{worker}")).exists(),
            "worker {worker} left behind"
        );
    }
}

#[test]
fn bad_pairs_files_name_the_file_and_line() {
    let dir = Dir::new();
    let cases = [
        (
            "words.txt",
            "1 2\n3 four\n",
            "words.txt:2: \"four\" is not a whole number",
        ),
        (
            "zero.txt",
            "# pairs\n0 5\n",
            "zero.txt:2: 0 has no divisors",
        ),
        (
            "three.txt",
            "1 2\n\n4 5 6\n",
            "three.txt:3: expected two numbers, found 3",
        ),
        ("one.txt", "7\n", "one.txt:1: expected two numbers, found 1"),
    ];
    for (name, text, message) in cases {
        dir.create(name, text);
        dir.concur(["gcd", "--pairs", name])
            .run()
            .expect_code(2)
            .expect_stderr(message);
    }
    dir.concur(["gcd", "--pairs", "missing.txt"])
        .run()
        .expect_code(2)
        .expect_stderr("cannot read the pairs file missing.txt");
    dir.concur(["gcd", "--scale", "0"])
        .run()
        .expect_code(2)
        .expect_stderr("must be at least 1");
}

#[test]
fn the_pool_is_generic_and_keeps_order_for_any_chunk_size() {
    let tasks: Vec<GcdTask> = (1..=40).map(|i| GcdTask(i * 6, i * 9 + 3)).collect();
    let cancel = CancelToken::new().unwrap();
    for chunk in [1, 7, 40, 100] {
        let options = PoolOptions {
            workers: std::num::NonZeroUsize::new(3).unwrap(),
            chunk: std::num::NonZeroUsize::new(chunk),
            program: env!("CARGO_BIN_EXE_concur").into(),
            worker_args: Vec::new(),
        };
        let run = pool::map(&tasks, &options, &cancel).unwrap();
        let got: Vec<u64> = run.results.into_iter().map(Result::unwrap).collect();
        let expected: Vec<u64> = tasks.iter().map(|t| euclid(t.0, t.1)).collect();
        assert_eq!(got, expected, "chunk {chunk}");
    }
}

#[test]
fn bench_json_reports_every_mode_and_a_missing_python_without_failing() {
    let dir = Dir::new();
    let run = dir
        .concur([
            "gcd",
            "bench",
            "--target-seconds",
            "0.05",
            "--python",
            "/nonexistent/python3",
            "--json",
        ])
        .run()
        .expect_success();
    let report: Value = serde_json::from_str(run.stdout().trim()).expect("one JSON object");
    let scale = report["scale"].as_u64().unwrap();
    assert!(scale >= 1, "{report}");
    assert_eq!(report["tasks"].as_u64().unwrap(), 10 * scale, "{report}");
    for key in [
        "serial_seconds",
        "threads_seconds",
        "processes_seconds",
        "threads_speedup",
        "processes_speedup",
        "pool_overhead_us_per_task",
        "pool_overhead_us_per_task_chunk_1",
        "rust_serial_ten_pairs_seconds",
    ] {
        let value = report[key].as_f64().unwrap_or(f64::NAN);
        assert!(value.is_finite() && value > 0.0, "{key} in {report}");
    }
    assert!(report["python"].is_null(), "{report}");
    let error = report["python_error"].as_str().unwrap();
    assert!(error.contains("/nonexistent/python3"), "{error}");
    run.expect_stderr("no Python baseline");
}

#[test]
fn a_scale_too_large_to_hold_is_refused_not_allocated() {
    let dir = Dir::new();
    dir.concur(["gcd", "--scale", "99999999999"])
        .run()
        .expect_code(2)
        .expect_stderr("10 pairs x --scale 99999999999 is more than 10000000 tasks");
    dir.concur(["gcd", "bench", "--target-seconds", "0"])
        .run()
        .expect_code(2)
        .expect_stderr("--target-seconds");
}
