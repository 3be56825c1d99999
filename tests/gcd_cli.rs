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
    let report: Value =
        serde_json::from_str(String::from_utf8_lossy(&output.stdout).trim()).unwrap();
    let results = report["results"].as_array().unwrap();
    assert_eq!(results.len(), 600);
    // The killed worker's task fails, unless the kill found it idle between chunks:
    // then no task was started, and none is lost.
    let failed = results.iter().filter(|r| r.is_null()).count();
    assert!(failed <= 1, "{failed} tasks failed: {stderr}");
    assert_eq!(output.status.code(), Some(failed as i32), "{stderr}");
    if failed == 1 {
        assert!(stderr.contains("the worker died of signal 9"), "{stderr}");
    }
    for (i, r) in results.iter().enumerate() {
        if !r.is_null() {
            assert_eq!(r, &Value::from(BOOK_GCDS[i % 10]), "task {i}");
        }
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
    // Odd and hostile files (each failed differently before).
    let long = "9".repeat(3000);
    let hostile: [(&str, Vec<u8>, &str); 5] = [
        ("empty.txt", b"".to_vec(), "empty.txt: no pairs"),
        (
            "comments.txt",
            b"# only\n\n# comments\n".to_vec(),
            "comments.txt: no pairs",
        ),
        (
            "open.txt",
            b"(1, 2\n".to_vec(),
            "open.txt:1: unbalanced parentheses",
        ),
        (
            "long.txt",
            format!("1 2\nx{long} 5\n").into_bytes(),
            "long.txt:2: \"x999999999999999999999999999999999999999…\" is not a whole number",
        ),
        (
            "endless.txt",
            vec![b'7'; 100_000],
            "endless.txt:1: line longer than 4096 bytes",
        ),
    ];
    for (name, bytes, message) in hostile {
        dir.create(name, bytes);
        let run = dir
            .concur(["gcd", "--pairs", name])
            .run()
            .expect_code(2)
            .expect_stderr(message);
        assert!(run.stderr().len() < 300, "{name}: {}", run.stderr());
    }
    dir.concur(["gcd", "--pairs", "/dev/zero"])
        .run()
        .expect_code(2)
        .expect_stderr("/dev/zero:1: line longer than 4096 bytes");
    // A byte-order mark is accepted.
    dir.create("bom.txt", "\u{feff}12 18\n");
    let run = dir
        .concur(["gcd", "--pairs", "bom.txt"])
        .run()
        .expect_success();
    assert!(
        run.stdout().starts_with("gcd(12, 18) = 6\n"),
        "{}",
        run.stdout()
    );
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
            chunk: std::num::NonZeroUsize::new(chunk),
            ..PoolOptions::new(
                std::num::NonZeroUsize::new(3).unwrap(),
                env!("CARGO_BIN_EXE_concur"),
            )
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

/// More workers than the OS can give are refused before any starts, naming the limit:
/// past the thread budget Rust aborts the whole process (or hangs it), and past the
/// descriptor limit the pool fails half-started.
#[test]
fn more_workers_than_the_os_allows_are_refused_naming_the_limit() {
    let _serial = crate::util::many_threads();
    let dir = Dir::new();
    for mode in ["threads", "processes"] {
        dir.concur(["gcd", "--mode", mode, "-j", "1000000"])
            .run_within(std::time::Duration::from_secs(60))
            .expect_code(2)
            .expect_stderr("-j 1000000: 1000000 workers asked for, but the OS allows about");
    }
}
/// The pids of a pool's two workers, once both have started.
fn two_workers(child: &std::process::Child) -> Vec<u32> {
    let mut workers = Vec::new();
    eventually("the workers to start", || {
        workers = children_of(child.id());
        workers.len() == 2
    });
    workers
}

fn signal(pid: u32, signal: rustix::process::Signal) {
    let pid = rustix::process::Pid::from_raw(pid as i32).unwrap();
    let _ = rustix::process::kill_process(pid, signal);
}

/// Lines of a running child's stderr, as they come.
fn stderr_lines(child: &mut std::process::Child) -> std::sync::mpsc::Receiver<String> {
    use std::io::BufRead;
    let stderr = std::io::BufReader::new(child.stderr.take().unwrap());
    let (tx, rx) = std::sync::mpsc::channel();
    thread::spawn(move || {
        for line in stderr.lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    rx
}

#[test]
fn a_stopped_worker_is_reported_once_and_the_run_goes_on_when_it_resumes() {
    // Before, a worker stopped with SIGSTOP left the pool waiting in silence for ever.
    let dir = Dir::new();
    let mut child = dir
        .concur([
            "gcd",
            "--mode",
            "processes",
            "-j",
            "2",
            "--chunk",
            "1",
            "--scale",
            "4",
            "--warn-after",
            "300ms",
            "--json",
        ])
        .spawn();
    let watchdog = crate::util::Watchdog::new(&child, Duration::from_secs(120));
    let lines = stderr_lines(&mut child);
    let workers = two_workers(&child);
    signal(workers[0], rustix::process::Signal::STOP);
    let report = lines
        .recv_timeout(Duration::from_secs(30))
        .expect("a report on the stopped worker");
    // "worker PID has run task 7 (a, b) for 0.3 s", or "has not taken a request"
    // when it was stopped between requests.
    assert!(
        report.starts_with(&format!("concur: worker {} has ", workers[0]))
            && report.ends_with(" s"),
        "{report}"
    );
    signal(workers[0], rustix::process::Signal::CONT);
    let output = child.wait_with_output().unwrap();
    drop(watchdog);
    assert_eq!(output.status.code(), Some(0));
    let report: Value =
        serde_json::from_str(String::from_utf8_lossy(&output.stdout).trim()).unwrap();
    let expected: Vec<Value> = (0..40).map(|i| Value::from(BOOK_GCDS[i % 10])).collect();
    assert_eq!(report["results"].as_array().unwrap(), &expected);
    // Reported once, not once per poll.
    let again: Vec<String> = lines
        .try_iter()
        .filter(|l| l.starts_with(&format!("concur: worker {} has ", workers[0])))
        .collect();
    assert!(again.len() <= 1, "{again:?}");
}

#[test]
fn a_task_past_the_task_timeout_fails_and_its_worker_is_replaced() {
    // The one worker never answers task 0 (a hidden fault), as a stopped or stuck one
    // would not; the 149 tasks after it need a new worker. (Stopping one of two
    // workers with SIGSTOP from here raced the run: on a release build the other
    // could do every task before the signal landed or the timeout fired.)
    let dir = Dir::new();
    let child = dir
        .concur([
            "gcd",
            "--mode",
            "processes",
            "-j",
            "1",
            "--chunk",
            "1",
            "--scale",
            "15",
            "--task-timeout",
            "1s",
            "--fault-hang-on",
            "0",
            "--json",
        ])
        .spawn();
    let watchdog = crate::util::Watchdog::new(&child, Duration::from_secs(120));
    let output = child.wait_with_output().unwrap();
    drop(watchdog);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let report: Value =
        serde_json::from_str(String::from_utf8_lossy(&output.stdout).trim()).unwrap();
    assert!(report["respawns"].as_u64().unwrap() >= 1, "{report}");
    let results = report["results"].as_array().unwrap();
    assert_eq!(results.len(), 150);
    assert!(results[0].is_null(), "{}", results[0]);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("ran past the task timeout of 1s; the worker was killed"),
        "{stderr}"
    );
    // Every other task was done by the worker that replaced it.
    for (i, r) in results.iter().enumerate().skip(1) {
        assert_eq!(r, &Value::from(BOOK_GCDS[i % 10]), "task {i}");
    }
}

#[test]
fn a_worker_that_dies_idle_costs_no_task() {
    // One worker exits when sent its second request, as one killed between requests
    // would. Before, the request's first task failed with "the worker exited".
    let dir = Dir::new();
    let marker = dir.path().join("died");
    let run = dir
        .concur([
            "gcd",
            "--mode",
            "processes",
            "-j",
            "2",
            "--chunk",
            "2",
            "--scale",
            "3",
            "--json",
        ])
        .arg("--fault-idle-death")
        .arg(&marker)
        .run()
        .expect_success();
    assert!(marker.exists(), "the fault fired");
    let report: Value = serde_json::from_str(run.stdout().trim()).unwrap();
    let expected: Vec<Value> = (0..30).map(|i| Value::from(BOOK_GCDS[i % 10])).collect();
    assert_eq!(report["results"].as_array().unwrap(), &expected);
    assert_eq!(report["failures"].as_array().unwrap().len(), 0);
    assert_eq!(report["respawns"], 1);
}

#[test]
fn a_cancelled_pool_starts_no_worker() {
    // Workers are started through a script that counts them.
    let dir = Dir::new();
    let starts = dir.path().join("starts");
    let script = dir.create(
        "worker.sh",
        format!(
            "#!/bin/sh\necho started >> '{}'\nexec '{}' \"$@\"\n",
            starts.display(),
            env!("CARGO_BIN_EXE_concur")
        ),
    );
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    // A script this process just wrote can fail to start with ETXTBSY while another
    // test's fork still holds the descriptor it was written through: wait for that.
    eventually("the new script to be executable", || {
        std::process::Command::new(&script)
            .arg("--version")
            .output()
            .is_ok()
    });
    std::fs::remove_file(&starts).unwrap();
    let options = PoolOptions::new(std::num::NonZeroUsize::new(2).unwrap(), &script);
    let tasks: Vec<GcdTask> = (1..=20).map(|i| GcdTask(i * 6, i * 9 + 3)).collect();
    // The script works.
    let cancel = CancelToken::new().unwrap();
    assert!(pool::map(&tasks, &options, &cancel).is_ok());
    assert_eq!(std::fs::read_to_string(&starts).unwrap().lines().count(), 2);
    std::fs::remove_file(&starts).unwrap();
    // Cancelled before it starts: no worker is started at all.
    cancel.cancel();
    assert!(matches!(
        pool::map(&tasks, &options, &cancel),
        Err(pool::PoolError::Cancelled)
    ));
    assert!(!starts.exists(), "a worker was started after the cancel");
}

#[test]
fn a_signal_kills_and_reaps_every_worker_at_once_even_mid_request() {
    // One request of about 10 s per worker: waiting for a request to end would outlast
    // the watchdog; killing the workers ends the run at once.
    let dir = Dir::new();
    for (sig, status) in [
        (rustix::process::Signal::TERM, 143),
        (rustix::process::Signal::INT, 130),
    ] {
        let child = dir
            .concur([
                "gcd",
                "--mode",
                "processes",
                "-j",
                "2",
                "--scale",
                "400",
                "--chunk",
                "2000",
            ])
            .spawn();
        let watchdog = crate::util::Watchdog::new(&child, Duration::from_secs(5));
        // Its own workers running means its signal handler is installed (that comes first).
        let workers = two_workers(&child);
        thread::sleep(Duration::from_millis(200));
        signal(child.id(), sig);
        let output = child.wait_with_output().unwrap();
        drop(watchdog);
        assert_eq!(
            output.status.code(),
            Some(status),
            "{sig:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        for worker in workers {
            assert!(
                !std::path::Path::new(&format!("/proc/{worker}")).exists(),
                "{sig:?}: worker {worker} left behind"
            );
        }
    }
}
