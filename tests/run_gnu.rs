//! `concur run` with GNU parallel's interface: what the recorded suite
//! (`run_compat`) cannot show by comparing output, and the defects issue 15 found.

use std::ffi::OsStr;
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::time::Duration;

use crate::util::{Dir, eventually, processes_with};

/// Inputs that would run code if they reached a shell unquoted. The last holds a byte
/// that is not UTF-8.
const HOSTILE: [&[u8]; 7] = [
    b"$(touch pw1)",
    b"`touch pw2`",
    b"a;touch pw3",
    b"a|touch pw4",
    b"'; touch pw5; '",
    b"\"; touch pw6; \"",
    b"caf\xe9 $(touch pw7)",
];

fn made_files(dir: &Dir, keep: &[&str]) -> Vec<String> {
    std::fs::read_dir(dir.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|name| !keep.contains(&name.as_str()))
        .collect()
}

/// Every input path (stdin, `:::`, `::::`, `-a`, `-0` with a newline inside a record)
/// with every place a command can put `{}` (bare and run directly, bare through sh, in
/// double quotes, in single quotes): nothing is executed, and bare the bytes come out
/// exactly, non-UTF-8 included.
#[test]
fn hostile_input_is_data_through_every_input_path() {
    let dir = Dir::new();
    let mut lines = Vec::new();
    let mut nul = Vec::new();
    for h in HOSTILE {
        lines.extend_from_slice(h);
        lines.push(b'\n');
        nul.extend_from_slice(h);
        nul.push(0);
    }
    nul.extend_from_slice(b"two\nlines $(touch pw8)\0");
    dir.create("args.txt", &lines);
    dir.create("args0.txt", &nul);
    let keep = ["args.txt", "args0.txt"];
    let list: Vec<&OsStr> = HOSTILE.iter().map(|h| OsStr::from_bytes(h)).collect();

    let forms: [&[&str]; 6] = [
        &["echo", "{}"],
        // The README's old pattern: the words are joined, as in GNU parallel, so this
        // is `sh -c echo <quoted input>; true`; it ran hostile input before.
        &["sh", "-c", "echo {}; true"],
        &["echo {} >/dev/null"],
        &["echo \"{}\""],
        &["echo '{}'"],
        &["printf '%s\\n' {}"],
    ];
    for form in forms {
        let paths: Vec<(Vec<&OsStr>, Option<&[u8]>)> = vec![
            (vec![], Some(&lines[..])),
            (
                [OsStr::new(":::")]
                    .into_iter()
                    .chain(list.iter().copied())
                    .collect(),
                None,
            ),
            (vec![OsStr::new("::::"), OsStr::new("args.txt")], None),
            (vec![], None), // -a below
            (vec![], Some(&nul[..])),
        ];
        for (i, (tail, stdin)) in paths.into_iter().enumerate() {
            let mut cmd = dir.concur(["run", "-k"]);
            if i == 3 {
                cmd = cmd.args(["-a", "args.txt"]);
            }
            if i == 4 {
                cmd = cmd.arg("-0");
            }
            let cmd = cmd.arg("--").args(form).args(tail);
            let cmd = match stdin {
                Some(data) => cmd.stdin(data.to_vec()),
                None => cmd,
            };
            let run = cmd.run();
            // Inside '…', an input quote can leave the line unbalanced: sh refuses
            // it (a failed job), which is fine as long as nothing ran.
            if form != ["echo '{}'"] {
                assert_eq!(run.code(), Some(0), "{form:?} path {i}\n{run}");
            }
            let made = made_files(&dir, &keep);
            assert!(
                made.is_empty(),
                "{form:?} path {i}: input ran as code: {made:?}\n{run}"
            );
            if form[0].starts_with("printf") {
                let expected = if i == 4 { nul.clone() } else { lines.clone() };
                let expected: Vec<u8> = expected
                    .iter()
                    .map(|&b| if b == 0 { b'\n' } else { b })
                    .collect();
                assert_eq!(run.output.stdout, expected, "{form:?} path {i}");
            }
        }
    }
}

/// A job is over when its process exits: a background child that keeps stdout open
/// gets a short drain, then its group is stopped. It is neither waited for (it was
/// 3 s against GNU parallel's 0.13 s) nor reported as timed out.
#[test]
fn a_job_ends_when_its_process_exits_not_when_leftovers_close_stdout() {
    let dir = Dir::new();
    let run = dir
        .concur([
            "run",
            "--timeout",
            "20s",
            "sleep 31.4161 & echo started {}",
            ":::",
            "a",
        ])
        .run_within(Duration::from_secs(15))
        .expect_success();
    assert_eq!(run.stdout(), "started a\n");
    eventually("the leftover sleep to be stopped", || {
        processes_with("sleep 31.4161").is_empty()
    });
}

/// Jobs stopped by SIGTERM did not finish: they are left out of the joblog, so that
/// `--resume` runs them, and only them, again.
#[test]
fn interrupted_jobs_are_not_logged_and_resume_runs_them() {
    let dir = Dir::new();
    let child = dir
        .concur([
            "run",
            "-j",
            "4",
            "--joblog",
            "log",
            "--",
            "sleep {}; echo {}",
            ":::",
            "0",
            "0",
            "31.4162",
            "31.4162",
        ])
        .spawn();
    eventually(
        "the long jobs to run and the short ones to be logged",
        || {
            let log = std::fs::read_to_string(dir.path().join("log")).unwrap_or_default();
            processes_with("sleep 31.4162").len() == 2 && log.lines().count() == 3
        },
    );
    let pid = rustix::process::Pid::from_child(&child);
    rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(143));
    let log = std::fs::read_to_string(dir.path().join("log")).unwrap();
    let seqs: Vec<&str> = log
        .lines()
        .skip(1)
        .map(|l| l.split('\t').next().unwrap())
        .collect();
    assert_eq!(seqs.len(), 2, "only the finished jobs: {log}");
    assert!(seqs.contains(&"1") && seqs.contains(&"2"), "{log}");

    let run = dir
        .concur([
            "run",
            "-k",
            "--resume",
            "--joblog",
            "log",
            "echo again {#}",
            ":::",
            "0",
            "0",
            "x",
            "y",
        ])
        .run()
        .expect_success();
    assert_eq!(run.stdout(), "again 3\nagain 4\n");
    let log = std::fs::read_to_string(dir.path().join("log")).unwrap();
    assert_eq!(
        log.lines().count(),
        5,
        "header, two old records, two new: {log}"
    );
}

/// With stdout closed early (`| head -c 10`), output was lost: the exit status says
/// so (141, the SIGPIPE convention) instead of 0.
#[test]
fn a_closed_stdout_is_reported_not_success() {
    let dir = Dir::new();
    let mut child = dir
        .concur([
            "run",
            "-k",
            "-j",
            "1",
            "head -c 200000 /dev/zero",
            ":::",
            "1",
            "2",
            "3",
        ])
        .spawn();
    let mut stdout = child.stdout.take().unwrap();
    let mut first = [0u8; 10];
    stdout.read_exact(&mut first).unwrap();
    drop(stdout);
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(141));
}

#[test]
fn bad_arguments_are_refused_by_name() {
    let dir = Dir::new();
    dir.concur(["run", "--timeout", "0", "echo", ":::", "a"])
        .run()
        .expect_code(255)
        .expect_stderr("--timeout 0 would stop every job at once");
    dir.concur(["run", "--halt", "soon,fail=0", "echo", ":::", "a"])
        .run()
        .expect_code(255)
        .expect_stderr("invalid --halt");
    dir.concur(["run", "echo", "{=s/(/=}", ":::", "a"])
        .run()
        .expect_code(255)
        .expect_stderr("{=s/(/=} is not valid Perl");
    dir.concur(["run", "echo", ":::", "a", "::::", "no-such-file"])
        .run()
        .expect_code(255)
        .expect_stderr("no-such-file");
    dir.concur(["run", "--header", "(", "echo", ":::", "a"])
        .run()
        .expect_code(255)
        .expect_stderr("--header \"(\" is not a regex");
    dir.concur(["run", "--colsep", "(", "echo", ":::", "a"])
        .run()
        .expect_code(255)
        .expect_stderr("--colsep \"(\" is not a regex");
}

/// The profiles and $PARALLEL (recorded against GNU parallel in `run_compat`), and
/// what only concur does: a named profile that cannot be read is an error naming it
/// (GNU parallel goes on without it), and the default profile is found through $HOME.
#[test]
fn profiles_come_from_home_and_a_missing_one_is_named() {
    let dir = Dir::new();
    std::fs::create_dir(dir.path().join(".parallel")).unwrap();
    std::fs::write(dir.path().join(".parallel/config"), "-k\n--tagstring cfg\n").unwrap();
    let run = dir
        .concur(["run", "echo", ":::", "a", "b"])
        .env("HOME", dir.path())
        .env_remove("PARALLEL_HOME")
        .run()
        .expect_success();
    assert_eq!(run.stdout(), "cfg\ta\ncfg\tb\n");
    dir.concur(["run", "-J", "nosuch", "echo", ":::", "a"])
        .env("HOME", dir.path())
        .env_remove("PARALLEL_HOME")
        .run()
        .expect_code(255)
        .expect_stderr(".parallel/nosuch");
}

/// A script run by the kernel through concur: with `env -S` (the words arrive
/// separately) and directly (they arrive as one argument), its lines are the input.
#[test]
fn a_shebang_script_runs_its_lines() {
    let dir = Dir::new();
    let bin = env!("CARGO_BIN_EXE_concur");
    let scripts = [
        (
            "split",
            format!("#!/usr/bin/env -S {bin} run --shebang -k echo Y\na\nb\n"),
        ),
        (
            "direct",
            format!("#!{bin} run --shebang -r -k echo Y\na\n \nb\n"),
        ),
    ];
    for (name, text) in scripts {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
        let out = std::process::Command::new(&path).output().unwrap();
        assert!(out.status.success(), "{name}: {out:?}");
        assert_eq!(String::from_utf8_lossy(&out.stdout), "Y a\nY b\n", "{name}");
    }
}

#[test]
fn dry_run_runs_nothing() {
    let dir = Dir::new();
    let run = dir
        .concur(["run", "-k", "--dry-run", "touch", "{}", ":::", "x", "y z"])
        .run()
        .expect_success();
    // As GNU parallel shows it.
    assert_eq!(run.stdout(), "touch x\ntouch 'y z'\n");
    assert!(made_files(&dir, &[]).is_empty());
}

/// `-X` packs as many arguments per command line as fit (128 KiB of them), and every
/// argument is in exactly one job.
#[test]
fn x_fills_command_lines_and_loses_no_argument() {
    let dir = Dir::new();
    let input: String = (1..=40_000).map(|i| format!("{i}\n")).collect();
    let run = dir
        .concur(["run", "-j", "2", "-X", "echo"])
        .stdin(input)
        .run()
        .expect_success();
    let out = run.stdout();
    let jobs: Vec<&str> = out.lines().collect();
    assert!(jobs.len() >= 2, "{} jobs", jobs.len());
    assert!(
        jobs.iter().all(|j| j.len() <= 128 * 1024),
        "a line past 128 KiB"
    );
    let mut numbers: Vec<u32> = jobs
        .iter()
        .flat_map(|j| j.split(' '))
        .map(|n| n.parse().unwrap())
        .collect();
    numbers.sort_unstable();
    assert_eq!(numbers, (1..=40_000).collect::<Vec<_>>());
}

/// Tags go on every line of a job's stdout and stderr.
#[test]
fn tags_prefix_every_line_of_both_streams() {
    let dir = Dir::new();
    let run = dir
        .concur([
            "run",
            "-k",
            "--tagstring",
            "[{#}]",
            "printf 'a\\nb\\n'; echo err >&2; true",
            ":::",
            "x",
        ])
        .run()
        .expect_success();
    assert_eq!(run.stdout(), "[1]\ta\n[1]\tb\n");
    assert_eq!(run.stderr(), "[1]\terr\n");
}

/// `--line-buffer` prints a running job's lines as they come, and never a half line
/// mixed with another job's.
#[test]
fn line_buffer_prints_whole_lines_while_jobs_run() {
    use std::io::BufRead;
    let dir = Dir::new();
    let mut child = dir
        .concur([
            "run",
            "--line-buffer",
            "-j",
            "3",
            ":::",
            "echo one-start; until [ -e go ]; do sleep 0.01; done; echo one-end",
            "printf par; touch a; until [ -e b ]; do sleep 0.01; done; printf 'tial\\n'",
            "until [ -e a ]; do sleep 0.01; done; echo x; touch b",
        ])
        .spawn();
    let watchdog = crate::util::Watchdog::new(&child, Duration::from_secs(20));
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut lines = Vec::new();
    // The first job is still waiting for `go`: with output grouped per job, nothing
    // of it could be printed yet.
    while !lines.contains(&"one-start".to_owned()) {
        let mut line = String::new();
        assert!(
            stdout.read_line(&mut line).unwrap() > 0,
            "ended early: {lines:?}"
        );
        lines.push(line.trim_end().to_owned());
    }
    std::fs::write(dir.path().join("go"), "").unwrap();
    let mut rest = String::new();
    stdout.read_to_string(&mut rest).unwrap();
    lines.extend(rest.lines().map(str::to_owned));
    assert!(child.wait().unwrap().success());
    drop(watchdog);
    lines.sort();
    assert_eq!(lines, ["one-end", "one-start", "partial", "x"]);
}

/// `-k --line-buffer`: the oldest job prints live; a later job's lines wait until it
/// is the oldest, so the output is in input order.
#[test]
fn keep_order_with_line_buffer_prints_the_oldest_job_live() {
    use std::io::BufRead;
    let dir = Dir::new();
    let mut child = dir
        .concur([
            "run",
            "-k",
            "--line-buffer",
            "-j",
            "2",
            ":::",
            "echo one-start; until [ -e go ]; do sleep 0.01; done; echo one-end",
            "echo two; touch two-done",
        ])
        .spawn();
    let watchdog = crate::util::Watchdog::new(&child, Duration::from_secs(20));
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    stdout.read_line(&mut first).unwrap();
    // Job 1 is still running and is printed live.
    assert_eq!(first, "one-start\n");
    // Job 2 has printed and ended, but waits for job 1.
    crate::util::eventually("job 2 to end", || dir.path().join("two-done").exists());
    std::fs::write(dir.path().join("go"), "").unwrap();
    let mut rest = String::new();
    stdout.read_to_string(&mut rest).unwrap();
    assert!(child.wait().unwrap().success());
    drop(watchdog);
    assert_eq!(rest, "one-end\ntwo\n");
}

/// GNU parallel, or a one-line reason to skip (a failure under CI=true).
fn gnu_parallel() -> Option<()> {
    if std::process::Command::new("parallel")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success() && o.stdout.starts_with(b"GNU parallel"))
    {
        return Some(());
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "GNU parallel is required under CI=true (.ci/run installs it)"
    );
    eprintln!("skipped: GNU parallel is not installed (apt-get install parallel)");
    None
}

/// GNU parallel run in `dir`, with /bin/sh as its shell as concur has.
fn gnu(dir: &Dir, args: &[String]) -> String {
    let out = std::process::Command::new("parallel")
        .arg("--will-cite")
        .args(args)
        .env("SHELL", "/bin/sh")
        .current_dir(dir.path())
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Joblogs go both ways: concur resumes from GNU parallel's joblog, and GNU parallel
/// from concur's, each running only what the other left failed or undone.
#[test]
fn joblogs_resume_across_gnu_parallel_and_concur() {
    if gnu_parallel().is_none() {
        return;
    }
    // The same arguments for both tools: -k, a resume flag, the joblog, a job that
    // fails for 3 until the file `fixed` exists, and the inputs 1..=n.
    let args = |resume: &str, n: u32| -> Vec<String> {
        let mut args: Vec<String> = ["-k", resume, "--joblog", "log"]
            .into_iter()
            .filter(|a| !a.is_empty())
            .map(String::from)
            .collect();
        args.push("echo {}; [ {} != 3 ] || [ -e fixed ]".into());
        args.push(":::".into());
        args.extend((1..=n).map(|i| i.to_string()));
        args
    };
    let concur = |dir: &Dir, resume: &str, n: u32| {
        dir.concur(std::iter::once("run".to_owned()).chain(args(resume, n)))
            .run()
    };

    // GNU parallel runs 1-4 and job 3 fails; concur runs only 3 and the new 5.
    let dir = Dir::new();
    assert_eq!(gnu(&dir, &args("", 4)), "1\n2\n3\n4\n");
    dir.create("fixed", "");
    let run = concur(&dir, "--resume-failed", 5).expect_success();
    assert_eq!(
        run.stdout(),
        "3\n5\n",
        "only the failed job and the new one"
    );
    let again = gnu(&dir, &args("--resume-failed", 5));
    assert_eq!(again, "", "GNU parallel reran jobs concur had done");

    // And the other way round.
    let dir = Dir::new();
    concur(&dir, "", 4).expect_code(1);
    dir.create("fixed", "");
    let resumed = gnu(&dir, &args("--resume-failed", 4));
    assert_eq!(resumed, "3\n", "GNU parallel reran the wrong jobs");
    let run = concur(&dir, "--resume", 4).expect_success();
    assert_eq!(
        run.stdout(),
        "",
        "concur reran jobs GNU parallel had logged"
    );
}

/// `--memfree` holds jobs back while too little memory is available (here: more than
/// any machine has), and `--load` lets them run below the limit.
#[test]
fn memfree_and_load_gate_job_starts() {
    let dir = Dir::new();
    let child = dir
        .concur([
            "run",
            "--memfree",
            "100000G",
            "touch",
            "{}",
            ":::",
            "started",
        ])
        .spawn();
    crate::util::wait_for_signal_handlers(child.id());
    // Time for a job that should not start to show that it did.
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        !dir.path().join("started").exists(),
        "a job started without the memory"
    );
    let pid = rustix::process::Pid::from_child(&child);
    rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
    assert_eq!(child.wait_with_output().unwrap().status.code(), Some(143));

    dir.concur([
        "run",
        "--load",
        "100000",
        "--memfree",
        "1K",
        "touch",
        "{}",
        ":::",
        "ran",
    ])
    .run()
    .expect_success();
    assert!(dir.path().join("ran").exists());
    dir.concur(["run", "--load", "x", "true", ":::", "a"])
        .run()
        .expect_code(255)
        .expect_stderr("invalid --load");
}

/// A job list streamed on stdin starts jobs before it ends: the first job's output
/// comes while stdin is still open.
#[test]
fn jobs_start_before_the_input_ends() {
    use std::io::{BufRead, Write};
    use std::process::{Command, Stdio};
    let dir = Dir::new();
    let mut child = Command::new(env!("CARGO_BIN_EXE_concur"))
        .args(["run", "echo", "got"])
        .current_dir(dir.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let watchdog = crate::util::Watchdog::new(&child, Duration::from_secs(20));
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"first\n").unwrap();
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    assert_eq!(line, "got first\n", "the job ran while the input was open");
    stdin.write_all(b"second\n").unwrap();
    drop(stdin);
    let mut rest = String::new();
    stdout.read_to_string(&mut rest).unwrap();
    assert_eq!(rest, "got second\n");
    assert!(child.wait().unwrap().success());
    drop(watchdog);
}

/// `-j FILE` reads the job count from a file, and again when it changes: one job at a
/// time at first, then up to three once the file says 3.
#[test]
fn jobs_file_is_read_again_when_it_changes() {
    let dir = Dir::new();
    dir.create("procfile", "1\n");
    let child = dir
        .concur([
            "run",
            "-j",
            "procfile",
            "-k",
            "echo start {} >> events; sleep 0.4; echo end {} >> events",
            ":::",
            "1",
            "2",
            "3",
            "4",
            "5",
            "6",
            "7",
            "8",
            "9",
        ])
        .spawn();
    let events = || std::fs::read_to_string(dir.path().join("events")).unwrap_or_default();
    eventually("two jobs to end", || events().matches("end").count() >= 2);
    dir.create("procfile", "3\n");
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{out:?}");
    let log = events();
    let (mut running, mut most) = (0i32, 0i32);
    let mut before_change = Vec::new();
    for (i, event) in log.lines().enumerate() {
        running += if event.starts_with("start") { 1 } else { -1 };
        most = most.max(running);
        if i < 4 {
            before_change.push(running);
        }
    }
    assert_eq!(
        before_change,
        [1, 0, 1, 0],
        "with 1 in the file, one at a time:\n{log}"
    );
    assert!(most <= 3, "more than 3 at once:\n{log}");
    assert!(most >= 2, "the new count was never used:\n{log}");
    assert_eq!(log.lines().count(), 18);
}

/// `--timeout 300%`: once three jobs have succeeded, a job running past three times
/// their median is stopped.
#[test]
fn a_percentage_timeout_follows_the_median_runtime() {
    let dir = Dir::new();
    dir.concur([
        "run",
        "-j",
        "1",
        "--timeout",
        "300%",
        "sleep {}",
        ":::",
        "0.1",
        "0.1",
        "0.1",
        "31.4163",
    ])
    .run_within(Duration::from_secs(25))
    .expect_code(1)
    .expect_stderr("job 4 timed out after");
}

/// Jobs run in GNU parallel's shell: `$PARALLEL_SHELL`, else the shell that started
/// concur, so that a function bash exported reaches them; a shell that is not
/// Bourne-like is not used.
#[test]
fn jobs_run_in_the_users_shell() {
    let dir = Dir::new();
    let exe = env!("CARGO_BIN_EXE_concur");
    let out = std::process::Command::new("bash")
        .arg("-c")
        .arg(format!(
            // `exit` last: bash would exec a last command, and concur's parent would
            // be whatever started the test, not this bash.
            "myf() {{ echo \"f $1\"; }}; export -f myf; '{exe}' run -k myf ::: 1 2; exit $?"
        ))
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "f 1\nf 2\n",
        "{out:?}"
    );
    assert!(out.status.success(), "{out:?}");
    let run = dir
        .concur(["run", "echo $0", ":::", "x"])
        .env("PARALLEL_SHELL", "/bin/sh")
        .run()
        .expect_success();
    assert_eq!(run.stdout(), "/bin/sh x\n", "{run}");
    // A fish (here a stand-in named so) is not used: values are quoted for Bourne shells.
    let fish = dir.create("fish", "#!/bin/sh\nexit 99\n");
    std::fs::set_permissions(&fish, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let run = dir
        .concur(["run", "echo $0", ":::", "x"])
        .env("PARALLEL_SHELL", &fish)
        .run()
        .expect_success()
        .expect_stderr("is not a Bourne-like shell");
    assert_eq!(run.stdout(), "/bin/sh x\n", "{run}");
    // A shell that is not there is an error that says where its name came from, as
    // GNU parallel runs nothing then.
    dir.concur(["run", "echo", ":::", "x"])
        .env("PARALLEL_SHELL", "no-such-shell")
        .run()
        .expect_code(255)
        .expect_stderr("shell no-such-shell (PARALLEL_SHELL) not found");
}

/// `--results X.json` writes what GNU parallel's does (one object per job, its field
/// names and values; only the times differ), and `--json` prints the same objects.
#[test]
fn json_results_match_gnu_parallels() {
    if gnu_parallel().is_none() {
        return;
    }
    let dir = Dir::new();
    let args: Vec<String> = [
        "-k",
        "--results",
        "out.json",
        "echo {}; echo err-{} >&2; exit {}",
        ":::",
        "0",
        "3",
        "a b",
    ]
    .map(String::from)
    .to_vec();
    gnu(&dir, &args);
    let theirs = std::fs::read_to_string(dir.path().join("out.json")).unwrap();
    std::fs::remove_file(dir.path().join("out.json")).unwrap();
    let run = dir.concur(["run"]).args(&args).run();
    assert_eq!(run.code(), Some(2), "two jobs failed: {}", run.stderr());
    let ours = std::fs::read_to_string(dir.path().join("out.json")).unwrap();
    let printed = dir
        .concur(["run", "--json", "-k"])
        .args(&args[3..])
        .run()
        .stdout();
    let parse = |text: &str| -> Vec<serde_json::Value> {
        text.lines()
            .map(|l| {
                let mut v: serde_json::Value = serde_json::from_str(l).unwrap();
                let object = v.as_object_mut().unwrap();
                for timed in ["Starttime", "JobRuntime"] {
                    assert!(object.remove(timed).unwrap().is_number(), "{l}");
                }
                v
            })
            .collect()
    };
    let theirs = parse(&theirs);
    assert_eq!(theirs.len(), 3);
    assert_eq!(parse(&ours), theirs);
    assert_eq!(parse(&printed), theirs);
}
