//! The process library against real processes: sh, sleep, cat, yes, head.

use std::os::unix::process::ExitStatusExt;
use std::time::Duration;

use concur::process::{
    CancelToken, Cmd, Ending, Pipeline, ProcessError, ProcessManager, ProcessResult, returncode,
};
use rustix::process::{Pid, test_kill_process_group};

use crate::util::{Dir, processes_with};

/// Whether any process is left in process group `pgid`.
fn group_alive(pgid: u32) -> bool {
    let pid = Pid::from_raw(pgid as i32).unwrap();
    test_kill_process_group(pid).is_ok()
}

#[test]
fn run_checks_the_exit_status_and_names_the_command() {
    let out = Cmd::new("echo").arg("Hello from the child!").run().unwrap();
    assert_eq!(out.stdout, b"Hello from the child!\n");
    assert!(out.status.success());

    let err = Cmd::shell("echo first >&2; echo last words >&2; exit 3")
        .run()
        .unwrap_err();
    match &err {
        ProcessError::Failed { status, .. } => assert_eq!(status.code(), Some(3)),
        other => panic!("expected Failed, got {other:?}"),
    }
    assert_eq!(
        err.to_string(),
        "sh -c 'echo first >&2; echo last words >&2; exit 3' failed (exit status: 3): first / last words"
    );
    // output() does not check.
    assert_eq!(Cmd::new("false").output().unwrap().status.code(), Some(1));
}

#[test]
fn a_missing_program_is_not_found() {
    let err = Cmd::new("concur-no-such-program").output().unwrap_err();
    assert!(err.is_not_found(), "{err:?}");
    assert_eq!(err.to_string(), "command not found: concur-no-such-program");
}

#[test]
fn stdin_is_fed_while_stdout_and_stderr_are_read_more_than_a_mebibyte_each_way() {
    // tee copies 3 MiB to both stdout and stderr while it is still reading stdin: if the
    // parent wrote all input before reading, every pipe would fill and all would block.
    let input: Vec<u8> = (0..3 * 1024 * 1024u32).map(|i| (i % 253) as u8).collect();
    let out = Cmd::new("tee")
        .arg("/dev/stderr")
        .stdin_bytes(input.clone())
        .run()
        .unwrap();
    assert_eq!(out.stdout.len(), input.len());
    assert!(out.stdout == input, "stdout differs");
    assert!(out.stderr == input, "stderr differs");
}

#[test]
fn the_timeout_stops_grandchildren_and_leaves_no_process_behind() {
    let cmd = Cmd::shell("sleep 30.3141 & wait").grace(Duration::from_millis(500));
    let child = cmd.spawn().unwrap();
    let pgid = child.id();
    assert!(group_alive(pgid));
    crate::util::eventually("sleep 30.3141 to start", || {
        processes_with("sleep 30.3141").len() == 1
    });
    let err = child
        .communicate(b"", Some(Duration::from_secs(1)))
        .unwrap_err();
    let ProcessError::TimedOut { output, after, .. } = err else {
        panic!("expected TimedOut, got {err:?}");
    };
    assert_eq!(after, Duration::from_secs(1));
    assert_eq!(output.status.signal(), Some(15), "sh ended by SIGTERM");
    // The killed sleep may take a moment to vanish; had it survived it would stay 30 s.
    crate::util::eventually("the background sleep to die", || {
        processes_with("sleep 30.3141").is_empty()
    });
}

#[test]
fn a_child_ignoring_sigterm_gets_sigkill_after_the_grace_period() {
    let cmd = Cmd::shell("trap '' TERM; sleep 30; echo never")
        .timeout(Duration::from_millis(200))
        .grace(Duration::from_millis(200));
    let ProcessError::TimedOut { output, .. } = cmd.output().unwrap_err() else {
        panic!("expected a timeout");
    };
    assert_eq!(output.status.signal(), Some(9));
    assert_eq!(output.stdout, b"");
}

#[test]
fn terminate_reports_the_books_negative_returncode() {
    let child = Cmd::new("sleep").arg("10").spawn().unwrap();
    let status = child.terminate(Duration::from_secs(1)).unwrap();
    assert_eq!(returncode(status), -15);
}

#[test]
fn poll_returns_none_while_running_then_the_status() {
    let mut child = Cmd::new("sleep").arg("0.2").spawn().unwrap();
    assert_eq!(child.poll().unwrap(), None);
    crate::util::eventually("sleep 0.2 to exit", || child.poll().unwrap().is_some());
    assert!(child.poll().unwrap().unwrap().success());
}

#[test]
fn dropping_a_child_kills_and_reaps_its_group() {
    let child = Cmd::shell("sleep 30.2718 & sleep 30.2718").spawn().unwrap();
    let pgid = child.id();
    crate::util::eventually("both sleeps to start", || {
        processes_with("sleep 30.2718").len() == 2
    });
    drop(child);
    // The direct child is reaped by drop: no zombie, no process.
    assert!(
        !std::path::Path::new(&format!("/proc/{pgid}")).exists(),
        "left a zombie"
    );
    crate::util::eventually("the background sleep to die", || {
        processes_with("sleep 30.2718").is_empty()
    });
}

#[test]
fn sigpipe_reaches_the_upstream_stage_of_a_pipeline() {
    let out = Pipeline::new([Cmd::new("yes"), Cmd::new("head").arg("-1")])
        .run()
        .unwrap();
    assert_eq!(out.stdout, b"y\n");
    assert_eq!(out.statuses[0].signal(), Some(13), "yes ends by SIGPIPE");
    assert!(out.statuses[1].success());
}

#[test]
fn a_pipeline_of_any_length_with_input() {
    let out = Pipeline::new([
        Cmd::new("sort"),
        Cmd::new("uniq"),
        Cmd::new("tr").args(["a-z", "A-Z"]),
        Cmd::new("cat"),
        Cmd::new("cat"),
    ])
    .input("c\nb\na\nb\n")
    .run()
    .unwrap();
    assert_eq!(out.stdout, b"A\nB\nC\n");
    assert_eq!(out.statuses.len(), 5);
}

#[test]
fn a_failing_stage_is_named() {
    let err = Pipeline::new([
        Cmd::new("echo").arg("hi"),
        Cmd::shell("echo bad >&2; exit 3"),
        Cmd::new("cat"),
    ])
    .run()
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "stage 2 of 3 (sh -c 'echo bad >&2; exit 3') failed (exit status: 3): bad"
    );
}

#[test]
fn a_pipeline_timeout_stops_every_stage() {
    let err = Pipeline::new([Cmd::new("sleep").arg("30.1414"), Cmd::new("cat")])
        .timeout(Duration::from_millis(300))
        .output()
        .unwrap_err();
    assert!(matches!(err, ProcessError::TimedOut { .. }), "{err:?}");
    crate::util::eventually("the sleep to die", || {
        processes_with("sleep 30.1414").is_empty()
    });
}

#[test]
fn the_manager_runs_children_in_parallel_and_collects_each_result() {
    // Each child waits until all ten have checked in: they can only all finish if
    // they all run at the same time.
    let dir = Dir::new();
    let script = format!(
        "touch {d}/$0; while [ $(ls {d} | wc -l) -lt 10 ]; do sleep 0.01; done; echo $0",
        d = dir.path().display()
    );
    let mut manager = ProcessManager::new();
    for i in 0..10 {
        manager
            .start(&Cmd::new("sh").args(["-c", &script, &i.to_string()]))
            .unwrap();
    }
    let results = manager.wait_all(Some(Duration::from_secs(20)));
    for (i, result) in results.iter().enumerate() {
        match result {
            ProcessResult::Finished(out) => {
                assert!(out.status.success());
                assert_eq!(out.stdout, format!("{i}\n").as_bytes());
            }
            other => panic!("child {i}: {other:?}"),
        }
    }
}

#[test]
fn the_manager_reports_timeouts_per_child() {
    let mut manager = ProcessManager::new();
    manager.start(&Cmd::new("echo").arg("quick")).unwrap();
    manager
        .start(&Cmd::shell("echo partial; sleep 30"))
        .unwrap();
    let results = manager.wait_all(Some(Duration::from_millis(500)));
    assert!(matches!(&results[0], ProcessResult::Finished(o) if o.stdout == b"quick\n"));
    assert!(matches!(&results[1], ProcessResult::TimedOut(o) if o.stdout == b"partial\n"));
}

#[test]
fn cancelling_stops_a_running_child() {
    let cancel = CancelToken::new().unwrap();
    let trigger = cancel.clone();
    let canceller = std::thread::spawn(move || {
        crate::util::eventually("sleep 30.5772 to start", || {
            !processes_with("sleep 30.5772").is_empty()
        });
        trigger.cancel();
    });
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let run = Cmd::new("sleep")
        .arg("30.5772")
        .execute(&mut out, &mut err, Some(&cancel))
        .unwrap();
    canceller.join().unwrap();
    assert_eq!(run.ending, Ending::Cancelled);
    assert_eq!(run.status.signal(), Some(15));
}

#[test]
fn a_daemonized_grandchild_holding_the_pipe_cannot_hang_a_timed_run() {
    // setsid puts the sleep outside the group, out of reach of the group kill, while
    // it keeps stdout open. The timeout still ends the run: pipes are abandoned after
    // SIGKILL and a short drain.
    let cmd = Cmd::shell("setsid sleep 3 & echo started").timeout(Duration::from_millis(200));
    let ProcessError::TimedOut { output, .. } = cmd.output().unwrap_err() else {
        panic!("expected a timeout");
    };
    assert_eq!(output.stdout, b"started\n");
}

#[test]
fn a_file_range_feeds_its_head_then_exactly_its_bytes() {
    use concur::process::{FileRange, Input};
    use std::io::Write;
    use std::sync::Arc;
    // 3 MiB of numbered lines: more than any pipe holds, so it is fed in many rounds.
    let mut file = tempfile::NamedTempFile::new().unwrap();
    let lines: String = (0..400_000).map(|i| format!("{i:07}\n")).collect();
    file.write_all(lines.as_bytes()).unwrap();
    let shared = Arc::new(std::fs::File::open(file.path()).unwrap());
    // Lines 1000..300000, after a header line.
    let range = FileRange::new(Arc::clone(&shared), 8 * 1000, 8 * 299_000)
        .with_head(Arc::from(&b"header\n"[..]));
    let out = Cmd::new("cat").stdin(Input::Range(range)).run().unwrap();
    let mut want = b"header\n".to_vec();
    want.extend_from_slice(&lines.as_bytes()[8 * 1000..8 * 300_000]);
    assert_eq!(out.stdout.len(), want.len());
    assert!(out.stdout == want, "the fed bytes differ");
    // A child that stops reading early is not an error of the feeder.
    let early = Cmd::shell("head -c 10 >/dev/null")
        .stdin(Input::Range(FileRange::new(
            Arc::clone(&shared),
            0,
            8 * 400_000,
        )))
        .run();
    assert!(early.is_ok(), "{early:?}");
}

#[test]
fn a_file_shorter_than_its_range_fails_the_child_instead_of_feeding_less() {
    use concur::process::{FileRange, Input};
    use std::io::Write;
    use std::sync::Arc;
    let mut file = tempfile::NamedTempFile::new().unwrap();
    file.write_all(b"only ten.\n").unwrap();
    let shared = Arc::new(std::fs::File::open(file.path()).unwrap());
    // The file shrank (or was cut short) after the parts were planned.
    let err = Cmd::new("cat")
        .stdin(Input::Range(FileRange::new(shared, 0, 100)))
        .run()
        .unwrap_err();
    let cause = std::error::Error::source(&err).map(ToString::to_string);
    assert!(
        cause
            .as_deref()
            .is_some_and(|c| c.contains("ended before its part did")),
        "{err}: {cause:?}"
    );
}
