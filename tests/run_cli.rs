//! `concur run` through the real binary.

use std::collections::HashMap;

use crate::util::{Dir, eventually, processes_with};

fn lines(text: &str) -> Vec<String> {
    text.lines().map(str::to_owned).collect()
}

#[test]
fn each_line_is_a_job_and_braces_are_replaced_or_appended() {
    let dir = Dir::new();
    let run = dir
        .concur(["run", "-j", "3", "--", "echo", "-{}-", "{}"])
        .stdin("a\nb c\n\n")
        .run()
        .expect_success();
    let mut got = lines(&run.stdout());
    got.sort();
    assert_eq!(got, ["-- ", "-a- a", "-b c- b c"]);

    let run = dir
        .concur(["run", "echo", "x"])
        .stdin("1\n")
        .run()
        .expect_success();
    assert_eq!(run.stdout(), "x 1\n");
}

#[test]
fn shell_mode_runs_each_line_and_quotes_lines_into_a_script() {
    let dir = Dir::new();
    let run = dir
        .concur(["run", "--shell"])
        .stdin("echo one | tr a-z A-Z\n")
        .run()
        .expect_success();
    assert_eq!(run.stdout(), "ONE\n");
    // With a script, the line is quoted: `;` in the input is data, not syntax.
    let run = dir
        .concur(["run", "--shell", "--", "printf '[%s]\\n' {}"])
        .stdin("a; echo injected\n")
        .run()
        .expect_success();
    assert_eq!(run.stdout(), "[a; echo injected]\n");
}

/// The injection issue 15 found: `{}` was single-quoted, so a script's own double
/// quotes around it (`echo "{}"`) turned `$(touch pw)` back into code. Now the input
/// is data bare, in double quotes and in single quotes, whatever it holds.
#[test]
fn hostile_input_is_data_wherever_the_script_puts_braces() {
    let dir = Dir::new();
    let hostile =
        "$(touch pw1)\n`touch pw2`\na;touch pw3\n'; touch pw4; '\n\"; touch pw5; \"\na|touch pw6\n";
    for script in ["echo {}", "echo \"{}\"", "echo '{}'"] {
        dir.concur(["run", "--shell", "--", script])
            .stdin(hostile)
            .run();
        let made: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        assert!(
            made.is_empty(),
            "{script}: input ran as code and made {made:?}"
        );
    }
    // Bare, every line comes out exactly as it went in.
    let run = dir
        .concur(["run", "--keep-order", "--shell", "--", "printf '%s\\n' {}"])
        .stdin(hostile)
        .run()
        .expect_success();
    assert_eq!(run.stdout(), hostile);
}

/// Deterministic "random" durations: 0-40 ms in a scrambled order.
fn scrambled_sleeps(n: usize) -> String {
    (0..n)
        .map(|i| format!("sleep 0.0{}; echo {i}\n", (i * 7 + 3) % 5))
        .collect()
}

#[test]
fn keep_order_prints_in_input_order_under_random_durations() {
    let dir = Dir::new();
    let run = dir
        .concur(["run", "-j", "8", "--keep-order", "--shell"])
        .stdin(scrambled_sleeps(40))
        .run()
        .expect_success();
    let expected: Vec<String> = (0..40).map(|i| i.to_string()).collect();
    assert_eq!(lines(&run.stdout()), expected);
}

#[test]
fn without_keep_order_each_jobs_output_is_whole() {
    // Every job prints three lines with pauses in between; -j 6 runs them together.
    let dir = Dir::new();
    let input: String = (0..18)
        .map(|i| format!("echo {i}a; sleep 0.02; echo {i}b; sleep 0.01; echo {i}c\n"))
        .collect();
    let run = dir
        .concur(["run", "-j", "6", "--shell"])
        .stdin(input)
        .run()
        .expect_success();
    let got = lines(&run.stdout());
    assert_eq!(got.len(), 54);
    for block in got.chunks(3) {
        let job = block[0].trim_end_matches('a');
        assert_eq!(
            block,
            [format!("{job}a"), format!("{job}b"), format!("{job}c")],
            "{got:?}"
        );
    }
}

#[test]
fn joblog_has_gnu_parallels_columns() {
    let dir = Dir::new();
    dir.concur([
        "run",
        "-j",
        "2",
        "--joblog",
        "jobs.log",
        "--",
        "printf abc; exit {}",
    ])
    .stdin("0\n3\n")
    .run()
    .expect_code(1);
    let log = std::fs::read_to_string(dir.path().join("jobs.log")).unwrap();
    let mut rows = log.lines();
    assert_eq!(
        rows.next(),
        Some("Seq\tHost\tStarttime\tJobRuntime\tSend\tReceive\tExitval\tSignal\tCommand")
    );
    let mut by_seq: HashMap<String, Vec<String>> = HashMap::new();
    for row in rows {
        let cols: Vec<String> = row.split('\t').map(str::to_owned).collect();
        assert_eq!(cols.len(), 9, "{row:?}");
        assert_eq!(cols[1], ":");
        let start: f64 = cols[2].parse().unwrap();
        assert!(start > 1.7e9, "epoch seconds: {row:?}");
        assert_eq!(
            cols[2].split('.').nth(1).map(str::len),
            Some(3),
            "3 decimals: {row:?}"
        );
        assert_eq!(
            cols[3].len(),
            10,
            "runtime right-aligned in 10 columns: {row:?}"
        );
        assert!(cols[3].trim().parse::<f64>().is_ok());
        by_seq.insert(cols[0].clone(), cols);
    }
    let ok = &by_seq["1"];
    assert_eq!(
        (
            ok[4].as_str(),
            ok[5].as_str(),
            ok[6].as_str(),
            ok[7].as_str()
        ),
        ("0", "3", "0", "0")
    );
    // The command line as GNU parallel logs it: the words joined, {} replaced.
    assert_eq!(ok[8], "printf abc; exit 0");
    let failed = &by_seq["2"];
    assert_eq!((failed[6].as_str(), failed[7].as_str()), ("3", "0"));
}

#[test]
fn exit_status_counts_failures_and_101_past_100() {
    let dir = Dir::new();
    dir.concur(["run", "--", "true"])
        .stdin("a\nb\n")
        .run()
        .expect_code(0);
    // Piped, stderr holds the jobs' own stderr and nothing of concur's: the count is
    // the exit status (on a terminal concur also says it).
    let run = dir
        .concur(["run", "-k", "--", "echo e{} >&2; exit {}"])
        .stdin("0\n1\n2\n0\n5\n")
        .run()
        .expect_code(3);
    assert_eq!(run.stderr(), "e0\ne1\ne2\ne0\ne5\n");
    let many = "1\n".repeat(105);
    let run = dir
        .concur(["run", "-j", "4", "--", "exit {}"])
        .stdin(many)
        .run()
        .expect_code(101);
    assert_eq!(run.stderr(), "");
}

#[test]
fn a_timeout_and_a_missing_command_are_failures_as_gnu_parallel_counts() {
    let dir = Dir::new();
    dir.concur(["run", "--timeout", "200ms", "--shell"])
        .stdin("sleep 10\ntrue\n")
        .run()
        .expect_code(1)
        .expect_stderr("job 1 timed out after 200ms: sleep 10");
    // A program not on PATH may be a shell function: the shell runs it, as in GNU
    // parallel, and its "not found" is an ordinary failure.
    dir.concur(["run", "--", "concur-no-such-command"])
        .stdin("x\n")
        .run()
        .expect_code(1)
        .expect_stderr("concur-no-such-command")
        .expect_stderr("not found");
    // With -q too (its words then go to the shell, each quoted).
    dir.concur(["run", "-q", "--", "concur-no-such-command"])
        .stdin("x\n")
        .run()
        .expect_code(1)
        .expect_stderr("not found");
    // Through the shell, 127 may be the job's own status: it is a failure like any
    // other, not "command not found" for the whole run.
    dir.concur(["run"])
        .stdin("concur-no-such-command\nexit 127\n")
        .run()
        .expect_code(2);
}

#[test]
fn the_timeout_kills_grandchildren() {
    let dir = Dir::new();
    dir.concur(["run", "--timeout", "1s", "--grace", "500ms", "--shell"])
        .stdin("sleep 31.4159 & wait\n")
        .run()
        .expect_code(1);
    eventually("the grandchild sleep to die", || {
        processes_with("sleep 31.4159").is_empty()
    });
}

#[test]
fn a_delay_spaces_starts_but_is_not_waited_after_the_last_job() {
    let dir = Dir::new();
    // One job and a delay of 10 minutes: the run ends when the job does (it used to
    // wait out the delay before seeing that the input had ended).
    dir.concur(["run", "--delay", "600", "echo", ":::", "a"])
        .run_within(std::time::Duration::from_secs(60))
        .expect_success();
    // `Dauto` is accepted, and the jobs all run.
    let run = dir
        .concur([
            "run", "-k", "-j1", "--delay", "0.01auto", "exit {}", ":::", "1", "0", "1",
        ])
        .run_within(std::time::Duration::from_secs(60))
        .expect_code(2);
    assert_eq!(run.stdout(), "");
}

#[test]
fn tee_jobs_read_whole_before_any_is_queued_still_run() {
    // `total_jobs()` makes the reader take every job before it queues one. The feeder
    // waits for every job to take its pipe; when the reader also waited for the
    // feeder before queuing, this hung.
    let dir = Dir::new();
    let run = dir
        .concur([
            "run",
            "--pipe",
            "--tee",
            "-k",
            "echo {#} of {= $_ = total_jobs() =}; wc -l",
            ":::",
            "a",
            "b",
        ])
        .stdin("1\n2\n3\n")
        .run_within(std::time::Duration::from_secs(60))
        .expect_success();
    assert_eq!(run.stdout(), "1 of 2\n3\n2 of 2\n3\n");
}

#[test]
fn halt_now_names_the_running_jobs_it_stopped_apart_from_the_failures() {
    let dir = Dir::new();
    // Job 1 fails once job 2 is running; `now` stops job 2, which did not fail itself.
    let run = dir
        .concur(["run", "-j", "2", "--halt", "now,fail=1"])
        .stdin("while [ ! -e started ]; do sleep 0.01; done; exit 3\ntouch started; sleep 30\n")
        .run_within(std::time::Duration::from_secs(20))
        .expect_code(3)
        .expect_stderr(
            "1 of 2 jobs failed; stopped starting jobs and 1 running job (--halt now,fail=1)",
        );
    assert_eq!(run.stdout(), "");
}

#[test]
fn halt_on_error_starts_nothing_after_the_first_failure() {
    let dir = Dir::new();
    let run = dir
        .concur([
            "run",
            "-j",
            "1",
            "--halt-on-error",
            "--joblog",
            "log",
            "--",
            "echo {}; exit {}",
        ])
        .stdin("0\n4\n0\n0\n")
        .run()
        // As in GNU parallel, a halted run exits as the job that halted it.
        .expect_code(4)
        .expect_stderr("1 of 2 jobs failed; stopped starting jobs (--halt soon,fail=1)");
    assert_eq!(run.stdout(), "0\n4\n");
    let log = std::fs::read_to_string(dir.path().join("log")).unwrap();
    assert_eq!(log.lines().count(), 3, "header and two jobs:\n{log}");
}

#[test]
fn retries_rerun_a_failing_job() {
    let dir = Dir::new();
    // Fails on its first two runs, succeeds on the third (a counter file keeps track).
    let flaky = "n=$(cat count 2>/dev/null || echo 0); n=$((n+1)); echo $n > count; echo try $n; [ $n -ge 3 ]";
    // GNU parallel's count: --retries N is N attempts in all.
    dir.concur(["run", "--retries", "2", "--shell"])
        .stdin(format!("{flaky}\n"))
        .run()
        .expect_code(1);
    std::fs::remove_file(dir.path().join("count")).unwrap();
    let run = dir
        .concur(["run", "--retries", "3", "--shell"])
        .stdin(format!("{flaky}\n"))
        .run()
        .expect_success();
    assert_eq!(run.stdout(), "try 3\n", "only the last attempt is printed");
    // --retries 0: until it succeeds (GNU parallel 20221122 reruns even a job that
    // succeeded, forever; concur stops at the first success).
    std::fs::remove_file(dir.path().join("count")).unwrap();
    let run = dir
        .concur(["run", "--retries", "0", "--shell"])
        .stdin(format!("{flaky}\n"))
        .run()
        .expect_success();
    assert_eq!(run.stdout(), "try 3\n");
}

#[test]
fn retries_per_job_must_render_to_a_number() {
    let dir = Dir::new();
    // The bad job is named and fails; the good one still runs.
    let run = dir
        .concur([
            "run",
            "-k",
            "--retries",
            "{1}",
            "echo {2}",
            ":::",
            "x",
            "2",
            ":::",
            "a",
        ])
        .run()
        .expect_code(1)
        .expect_stderr("job 1: --retries gave \"x\", not a whole number");
    assert_eq!(run.stdout(), "a\n");
    dir.concur(["run", "--retries", "two", "true", ":::", "a"])
        .run()
        .expect_code(255)
        .expect_stderr("invalid --retries \"two\"");
}

#[test]
fn a_tmpdir_that_cannot_hold_a_file_is_refused_before_any_job() {
    let dir = Dir::new();
    let run = dir
        .concur(["run", "--tmpdir", "no/such/dir", "touch ran"])
        .run()
        .expect_code(255)
        .expect_stderr("--tmpdir no/such/dir: cannot write there");
    assert_eq!(run.stdout(), "");
    assert!(!dir.path().join("ran").exists());
}

#[test]
fn a_descriptor_limit_too_low_for_every_job_lowers_the_job_count() {
    let dir = Dir::new();
    // 64 descriptors hold far fewer than 50 jobs' pipes: concur runs fewer at a time,
    // says so, and still runs every job.
    let script = format!(
        "ulimit -n 64 && exec \"{}\" run -j 50 -k echo ::: $(seq 1 60)",
        env!("CARGO_BIN_EXE_concur")
    );
    let out = dir.sh(&script);
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{stderr}");
    let expected: String = (1..=60).map(|i| format!("{i}\n")).collect();
    assert_eq!(stdout, expected);
    assert!(stderr.contains("descriptor"), "{stderr}");
}

#[test]
fn bad_input_gets_a_clear_message() {
    let dir = Dir::new();
    // A {…} made of replacement-string characters that is none is refused, by name;
    // other braces ({print $1}, {a,b}) are the command's own.
    dir.concur(["run", "echo", "{..}", ":::", "a"])
        .run()
        .expect_code(255)
        .expect_stderr("unknown replacement string {..}");
    // An endless input line is refused, quoted in 80 bytes at most; the rest run.
    let mut input = vec![b'x'; 3 << 20];
    input.extend_from_slice(b"\nok\n");
    let run = dir
        .concur(["run", "-k", "echo"])
        .stdin(input)
        .run()
        .expect_code(1);
    assert_eq!(run.stdout(), "ok\n");
    let err = run.stderr();
    assert!(
        err.contains(
            "record 1 of standard input is 3145728 bytes, longer than --max-line-bytes 1048576"
        ),
        "{err}"
    );
    assert!(
        err.len() < 400,
        "the error quotes at most 80 bytes: {} bytes",
        err.len()
    );
    dir.concur(["run", "--bogus"])
        .run()
        .expect_code(255)
        .expect_stderr("unexpected argument '--bogus'");
}

#[test]
fn large_outputs_are_spooled_and_printed_whole() {
    let dir = Dir::new();
    let run = dir
        .concur(["run", "-j", "3", "--keep-order", "--shell"])
        .stdin("head -c 300000 /dev/zero | tr '\\0' a\nhead -c 300000 /dev/zero | tr '\\0' b\necho end\n")
        .run()
        .expect_success();
    let out = run.stdout();
    assert_eq!(out.len(), 600_004);
    assert!(out.starts_with(&"a".repeat(300_000)));
    assert_eq!(&out[300_000..600_000], "b".repeat(300_000));
    assert!(out.ends_with("end\n"));
}

#[test]
fn sigterm_stops_every_running_job_group() {
    let dir = Dir::new();
    let mut child = dir
        .concur(["run", "-j", "3", "--grace", "500ms", "--shell"])
        .stdin("sleep 27.1828 & wait\nsleep 27.1828 & wait\nsleep 27.1828 & wait\nsleep 27.1828\n")
        .spawn();
    eventually("three jobs to start", || {
        processes_with("sleep 27.1828").len() == 3
    });
    let pid = rustix::process::Pid::from_raw(child.id() as i32).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(143));
    eventually("every job's sleep to die", || {
        processes_with("sleep 27.1828").is_empty()
    });
}

#[test]
fn sighup_starts_no_new_job_and_lets_the_running_ones_finish() {
    use std::io::{BufRead, Read};
    let dir = Dir::new();
    let mut child = dir
        .concur([
            "run",
            "-k",
            "-j",
            "2",
            "--joblog",
            "log",
            "touch started.{}; until [ -e go ]; do sleep 0.01; done; echo {}",
            ":::",
            "1",
            "2",
            "3",
            "4",
        ])
        .spawn();
    eventually("two jobs to start", || {
        dir.path().join("started.1").exists() && dir.path().join("started.2").exists()
    });
    let pid = rustix::process::Pid::from_raw(child.id() as i32).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::HUP).unwrap();
    let mut stderr = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut note = String::new();
    stderr.read_line(&mut note).unwrap();
    assert!(note.contains("SIGHUP: starting no more jobs"), "{note}");
    // The running jobs are not stopped: they finish once they may.
    std::fs::write(dir.path().join("go"), "").unwrap();
    let mut out = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    let status = child.wait().unwrap();
    assert_eq!(out, "1\n2\n");
    // 128 + SIGHUP: not every job ran, and the joblog says which did (--resume runs
    // the rest).
    assert_eq!(status.code(), Some(129));
    assert!(!dir.path().join("started.3").exists());
    let log = std::fs::read_to_string(dir.path().join("log")).unwrap();
    assert_eq!(log.lines().count(), 3, "{log}");
}

#[test]
fn on_a_terminal_the_failure_count_is_said() {
    // `script` gives concur a pseudo-terminal for stderr.
    let dir = Dir::new();
    let exe = env!("CARGO_BIN_EXE_concur");
    let output = concur::process::Cmd::new("script")
        .args([
            "-qec",
            &format!("'{exe}' run 'exit {{}}' ::: 0 1 0"),
            "/dev/null",
        ])
        .current_dir(dir.path())
        .timeout(std::time::Duration::from_secs(30))
        .output()
        .unwrap();
    let terminal = String::from_utf8_lossy(&output.stdout);
    assert!(terminal.contains("1 of 3 jobs failed"), "{terminal:?}");
}

#[test]
fn on_a_terminal_the_progress_bar_draws_on_stderr_and_never_blocks_output() {
    // `script` gives the commands a pseudo-terminal, so the bars are really drawn.
    // A hang (the bar and the job output fighting over stderr) fails as a timeout.
    let dir = Dir::new();
    let exe = env!("CARGO_BIN_EXE_concur");
    for (name, command) in [
        (
            "run",
            format!("seq 1 20 | '{exe}' run -j 4 --shell -- 'sleep 0.05; echo {{}}' > out.txt"),
        ),
        (
            "life",
            format!("'{exe}' life --latency 20ms --generations 5 --print final > out.txt"),
        ),
    ] {
        let output = concur::process::Cmd::new("script")
            .args(["-qec", &command, "/dev/null"])
            .current_dir(dir.path())
            .timeout(std::time::Duration::from_secs(30))
            .output()
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(output.status.success(), "{name}: {output:?}");
        let terminal = String::from_utf8_lossy(&output.stdout);
        let unit = if name == "run" { "jobs" } else { "generations" };
        assert!(
            terminal.contains(unit),
            "{name}: no progress bar on the terminal: {terminal:?}"
        );
        let out = std::fs::read_to_string(dir.path().join("out.txt")).unwrap();
        assert!(
            !out.contains(unit),
            "{name}: the bar leaked into stdout: {out:?}"
        );
        let expected_lines = if name == "run" { 20 } else { 5 };
        assert_eq!(out.lines().count(), expected_lines, "{name}: {out:?}");
    }
}

/// While the input has not ended, the total is unknown: the bar is a spinner with a
/// count, never `N/0`.
#[test]
fn an_unknown_total_shows_a_count_not_n_of_0() {
    let dir = Dir::new();
    let exe = env!("CARGO_BIN_EXE_concur");
    let command = format!("(seq 1 3; sleep 1) | '{exe}' run -j 2 'sleep 0.2; echo {{}}' > out.txt");
    let output = concur::process::Cmd::new("script")
        .args(["-qec", &command, "/dev/null"])
        .current_dir(dir.path())
        .timeout(std::time::Duration::from_secs(30))
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let terminal = String::from_utf8_lossy(&output.stdout);
    assert!(
        terminal.contains("jobs done"),
        "no spinner count: {terminal:?}"
    );
    assert!(
        !terminal.contains("/0 jobs"),
        "a total of 0 was drawn: {terminal:?}"
    );
}

/// `--results DIR` with the arguments `.` and `..`: each gets a directory of its own,
/// and neither overwrites the tree's files or another job's.
#[test]
fn results_for_dot_and_dot_dot_do_not_collide() {
    let dir = Dir::new();
    dir.concur([
        "run",
        "-k",
        "--results",
        "out",
        "echo",
        ":::",
        ".",
        "..",
        "x",
    ])
    .run()
    .expect_success();
    let out = dir.path().join("out");
    for (name, printed) in [("\\.", ".\n"), ("\\.\\.", "..\n"), ("x", "x\n")] {
        let stdout = out.join("1").join(name).join("stdout");
        assert_eq!(
            std::fs::read_to_string(&stdout)
                .unwrap_or_else(|e| panic!("{}: {e}", stdout.display())),
            printed
        );
    }
    assert!(
        !out.join("1/stdout").exists(),
        "`.` wrote into the level itself"
    );
    assert!(!out.join("stdout").exists(), "`..` wrote above its level");
}

#[test]
fn pipepart_refuses_what_it_cannot_cut_by_name_and_runs_nothing() {
    let dir = Dir::new();
    let fifo = dir.path().join("fifo");
    rustix::fs::mkfifoat(
        rustix::fs::CWD,
        &fifo,
        rustix::fs::Mode::RUSR | rustix::fs::Mode::WUSR,
    )
    .unwrap();
    let marker = dir.path().join("ran");
    let job = format!("touch {}", marker.display());
    let fifo_arg = fifo.display().to_string();
    for (args, says) in [
        (
            vec!["--pipepart", "-a", fifo_arg.as_str()],
            "fifo is not a seekable file",
        ),
        (vec!["--pipepart", "-a", "missing"], "cannot open missing"),
        (vec!["--pipepart"], "needs a file to cut"),
        (vec!["--pipepart", "-a", "-"], "cannot cut standard input"),
        (vec!["--pipe", "--block", "-2"], "needs --pipepart"),
    ] {
        let mut all = vec!["run"];
        all.extend(args.iter().copied());
        all.push(job.as_str());
        // The FIFO is never opened: a run that waited on it would hang here.
        let run = dir.concur(all).stdin("").run();
        assert_eq!(run.code(), Some(255), "{args:?}: {}", run.stderr());
        assert!(run.stderr().contains(says), "{args:?}: {}", run.stderr());
    }
    assert!(!marker.exists(), "a refused run started a job");
}

#[test]
fn fifo_blocks_a_job_never_opens_do_not_hang_the_run_and_no_block_file_is_left() {
    let dir = Dir::new();
    let tmp = dir.path().join("tmp");
    std::fs::create_dir(&tmp).unwrap();
    let tmp_arg = tmp.display().to_string();
    // GNU parallel 20221122 waits for ever here: nobody reads the FIFO.
    let run = dir
        .concur([
            "run",
            "--pipe",
            "-N1",
            "--fifo",
            "--tmpdir",
            &tmp_arg,
            "echo unread #",
        ])
        .stdin("1\n2\n3\n")
        .run()
        .expect_success();
    assert_eq!(run.stdout(), "unread\nunread\nunread\n");
    let run = dir
        .concur([
            "run", "--pipe", "-N1", "-k", "--cat", "--tmpdir", &tmp_arg, "cat",
        ])
        .stdin("1\n2\n")
        .run()
        .expect_success();
    assert_eq!(run.stdout(), "1\n2\n");
    let left: Vec<_> = std::fs::read_dir(&tmp).unwrap().collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}

#[test]
fn compress_round_trips_and_a_failing_codec_fails_its_job_by_name() {
    let dir = Dir::new();
    let expected: String = (1..=2)
        .flat_map(|n| (n..=60_000).map(|i| format!("{i}\n")))
        .collect();
    let run = dir
        .concur([
            "run",
            "-k",
            "--compress-program",
            "touch started; gzip -c",
            "seq {} 60000",
            ":::",
            "1",
            "2",
        ])
        .run()
        .expect_success();
    assert!(run.stdout() == expected, "output differs after gzip");
    assert!(dir.path().join("started").exists(), "gzip was not run");
    std::fs::remove_file(dir.path().join("started")).unwrap();

    // A job that prints nothing starts no compressor.
    dir.concur([
        "run",
        "--compress-program",
        "touch started; cat",
        "true",
        ":::",
        "1",
    ])
    .run()
    .expect_success();
    assert!(!dir.path().join("started").exists());

    // A compressor that stops early: the job fails, named, with what was stored.
    let run = dir
        .concur([
            "run",
            "--compress-program",
            "head -c 6",
            "--decompress-program",
            "cat",
            "seq",
            ":::",
            "100000",
        ])
        .run();
    assert_eq!(run.code(), Some(1), "{}", run.stderr());
    assert_eq!(run.stdout(), "1\n2\n3\n");
    assert!(
        run.stderr().contains("job 1: compress program `head -c 6`"),
        "{}",
        run.stderr()
    );

    // A decompressor that fails after its output: printed, and each job fails.
    let run = dir
        .concur([
            "run",
            "-k",
            "--compress-program",
            "cat",
            "--decompress-program",
            "cat; exit 5",
            "echo",
            ":::",
            "a",
            "b",
        ])
        .run();
    assert_eq!(run.code(), Some(2), "{}", run.stderr());
    assert_eq!(run.stdout(), "a\nb\n");
    assert!(
        run.stderr()
            .contains("job 2: decompress program `cat; exit 5` exited with status 5"),
        "{}",
        run.stderr()
    );
}

#[test]
fn an_exported_function_runs_even_when_an_argument_names_it() {
    let dir = Dir::new();
    let concur = env!("CARGO_BIN_EXE_concur");
    // As GNU parallel's suite calls its helpers: `{pipe}_doit` with --header :.
    let script = format!(
        "greet_x() {{ echo \"hi $1\"; }}; export -f greet_x; \
         {concur} run -k {{}}_x a ::: greet; {concur} run -q -k {{}}_x b ::: greet; \
         {concur} run -k -q --header : {{name}}_x c ::: name greet; exit $?"
    );
    // (`exit` last: bash would exec a last command, and concur's parent would be
    // whatever started the test, not this bash.)
    let out = std::process::Command::new("bash")
        .args(["-c", &script])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "hi a\nhi b\nhi c\n",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Issue 31: with `-k`, a slow first job held back the *running* of every job past a
/// window of `clamp(4 × j, 64, 1024)`. Now it holds back only the printing: the other
/// slot runs everything behind it, and their outputs (each past 64 KiB, so each had a
/// temporary file of its own) wait in one shared file instead of a descriptor apiece.
#[test]
fn keep_order_behind_a_slow_first_job_keeps_every_slot_busy_and_parks_output() {
    let dir = Dir::new();
    let behind = 200; // past the old window at -j 2 (64)
    let mut script = String::from("while [ ! -e go ]; do sleep 0.01; done; echo first\n");
    for i in 1..=behind {
        script.push_str(&format!(
            "echo job {i}; printf '%070000d\\n' {i}; : > done.{i}\n"
        ));
    }
    let child = dir
        .concur(["run", "-k", "-j", "2", "--shell"])
        .stdin(script)
        .spawn();
    let pid = child.id();
    let finished = |dir: &Dir| {
        (1..=behind)
            .filter(|i| dir.path().join(format!("done.{i}")).exists())
            .count()
    };
    let start = std::time::Instant::now();
    while finished(&dir) < behind {
        assert!(
            start.elapsed() < std::time::Duration::from_secs(120),
            "only {} of the {behind} jobs behind the slow one ran",
            finished(&dir)
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    // Every output waits, but not in a descriptor of its own: 200 spilled outputs
    // held 200 temporary files before.
    let descriptors = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count();
    assert!(
        descriptors < 40,
        "{descriptors} descriptors open while {behind} outputs wait"
    );
    std::fs::write(dir.path().join("go"), "").unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "{output:?}");
    let stdout = String::from_utf8(output.stdout).unwrap();
    let mut expected = String::from("first\n");
    for i in 1..=behind {
        let digits = i.to_string();
        let zeros = "0".repeat(70_000 - digits.len());
        expected.push_str(&format!("job {i}\n{zeros}{digits}\n"));
    }
    assert!(stdout == expected, "the outputs differ from input order");
}
