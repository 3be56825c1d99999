//! `concur run -S` against a real `sshd`, started by the tests on 127.0.0.2 and
//! 127.0.0.3 with generated keys. Nothing is sent outside the loopback range.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use concur::remote::sshd::LocalSshd;

use crate::util::{Dir, eventually};

/// The library's private sshd, and what the tests do to it.
struct Sshd {
    inner: LocalSshd,
    port: u16,
}

fn require_sshd() -> bool {
    std::env::var("CONCUR_REQUIRE_SSHD").as_deref() == Ok("1")
        || std::env::var("CI").as_deref() == Ok("true")
}

impl Sshd {
    /// Starts sshd on 127.0.0.2 and 127.0.0.3, or says in one line why not (a failure
    /// under CONCUR_REQUIRE_SSHD=1 or CI=true).
    fn start() -> Option<Self> {
        Self::start_on(&["127.0.0.2", "127.0.0.3"])
    }

    /// [`start`](Self::start), listening on `addresses` only.
    fn start_on(addresses: &[&str]) -> Option<Self> {
        if let Some(why) = LocalSshd::missing() {
            assert!(
                !require_sshd(),
                "{why}: required under CI=true or CONCUR_REQUIRE_SSHD=1 (.ci/run installs it)"
            );
            eprintln!("skipped: {why}");
            return None;
        }
        let inner = LocalSshd::start(addresses).unwrap_or_else(|e| panic!("sshd: {e}"));
        Some(Sshd {
            port: inner.port,
            inner,
        })
    }

    fn ssh(&self) -> String {
        self.inner.ssh_command()
    }

    fn login(&self, host: &str, jobs: usize) -> String {
        self.inner.login(host, jobs)
    }

    fn dir(&self) -> &Path {
        self.inner.dir()
    }

    /// Two servers for tests where one host fails: one on 127.0.0.2 that stays, and
    /// one on 127.0.0.3 that the test may stop or kill. Both accept the second's key,
    /// the one the run logs in with.
    fn pair() -> Option<(Self, Self)> {
        let alive = Self::start_on(&["127.0.0.2"])?;
        let other = Self::start_on(&["127.0.0.3"])?;
        alive.authorize(&other);
        Some((alive, other))
    }

    /// Lets `other`'s user key log in here too.
    fn authorize(&self, other: &Sshd) {
        let key = std::fs::read(other.dir().join("user_key.pub")).unwrap();
        let mut keys = std::fs::read(self.dir().join("authorized_keys")).unwrap();
        keys.extend_from_slice(&key);
        std::fs::write(self.dir().join("authorized_keys"), keys).unwrap();
    }

    /// Runs `script` on `host` over a connection of its own, as a user checking on
    /// the machine would.
    fn remote(&self, host: &str, script: &str) -> String {
        let ssh = self.ssh();
        let mut words = ssh.split_whitespace();
        let out = Command::new(words.next().unwrap())
            .args(words)
            .args([
                "-o",
                "BatchMode=yes",
                "-p",
                &self.port.to_string(),
                host,
                script,
            ])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Processes under the listener: its connections and what they run.
    fn tree(&self) -> Vec<u32> {
        let mut pending = vec![self.inner.pid()];
        let mut tree = Vec::new();
        while let Some(pid) = pending.pop() {
            tree.push(pid);
            pending.extend(crate::util::children_of(pid));
        }
        tree
    }

    /// The machine comes back: the same address, port and keys.
    fn restart(&mut self) {
        self.inner
            .restart()
            .unwrap_or_else(|e| panic!("sshd restart: {e}"));
    }

    /// The machine dies: the listener and every connection it serves.
    fn kill_all(&mut self) {
        for pid in self.tree().into_iter().rev() {
            // sshd-session children: whatever is left of the jobs is theirs to keep.
            let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
            if comm.starts_with("sshd") {
                let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
            }
        }
        self.inner.reap();
    }
}

/// `concur` in `dir` with stdin, stdout and stderr piped, for tests that feed it or
/// read it while it runs.
fn piped_concur(dir: &Dir) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_concur"));
    cmd.current_dir(dir.path())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    cmd
}

/// Processes whose command line holds both pieces (the masters of a run).
fn processes_holding(a: &str, b: &str) -> usize {
    std::fs::read_dir("/proc")
        .map(|entries| {
            entries
                .flatten()
                .filter(|e| {
                    let cmdline = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
                    let cmdline = String::from_utf8_lossy(&cmdline);
                    cmdline.contains(a) && cmdline.contains(b)
                })
                .count()
        })
        .unwrap_or(0)
}

fn made_files(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect()
}

/// Jobs run on both hosts, each input exactly as it would run here (spaces, quotes,
/// `$`, backticks, a newline with -0, a non-UTF-8 byte), the joblog names the host,
/// and the master connections are gone after the run.
#[test]
fn jobs_run_on_every_host_with_inputs_intact() {
    inputs_intact(&[]);
}

/// The same through each host's agent: the line reaches the job's shell unchanged.
#[test]
fn remote_agent_jobs_run_on_every_host_with_inputs_intact() {
    inputs_intact(&agent_args());
}

/// `--remote-agent`, with this build as the hosts' concur (the "hosts" are this
/// machine).
fn agent_args() -> Vec<String> {
    vec![
        "--remote-agent".into(),
        "--remote-concur".into(),
        env!("CARGO_BIN_EXE_concur").into(),
    ]
}

fn inputs_intact(extra: &[String]) {
    let Some(sshd) = Sshd::start() else { return };
    let dir = Dir::new();
    let work = Dir::new(); // where hostile input would create files if it ran
    let inputs: Vec<&[u8]> = vec![
        b"a  b",
        b"it's",
        b"\"q\"",
        b"$HOME `touch pw1`",
        b"$(touch pw2); touch pw3",
        b"two\nlines",
        b"caf\xe9",
    ];
    let mut stdin = Vec::new();
    for input in &inputs {
        stdin.extend_from_slice(input);
        stdin.push(0);
    }
    let script = format!("cd {} && printf '[%s]\\n' {{}}", work.path().display());
    let run = dir
        .concur([
            "run",
            "-0",
            "-k",
            "--joblog",
            "log",
            "--ssh",
            &sshd.ssh(),
            "-S",
        ])
        .arg(format!(
            "{},{}",
            sshd.login("127.0.0.2", 2),
            sshd.login("127.0.0.3", 1)
        ))
        .args(extra)
        .arg(&script)
        .stdin(stdin)
        .run()
        .expect_success();
    let mut expected = Vec::new();
    for input in &inputs {
        expected.push(b'[');
        expected.extend_from_slice(input);
        expected.extend_from_slice(b"]\n");
    }
    assert_eq!(run.output.stdout, expected, "{run}");
    assert!(
        made_files(work.path()).is_empty(),
        "input ran as code on the remote"
    );
    let log = std::fs::read_to_string(dir.path().join("log")).unwrap();
    for host in ["127.0.0.2", "127.0.0.3"] {
        assert!(
            log.lines()
                .skip(1)
                .any(|l| l.split('\t').nth(1) == Some(&format!("{host}:{}", sshd.port))),
            "no job logged on {host}:\n{log}"
        );
    }
    // This run's masters only: other tests may hold theirs, to their own sshd, at the
    // same time. Its ssh command names this sshd's key.
    let key = sshd.dir().join("user_key").display().to_string();
    eventually("the master connections to close", || {
        processes_holding("ControlMaster=yes", &key) == 0
    });
}

/// A host that cannot be reached is reported once and skipped; with none left, the
/// run exits 255 naming each host's error.
#[test]
fn unreachable_hosts_are_skipped_and_none_left_is_255() {
    let Some(sshd) = Sshd::start() else { return };
    let dir = Dir::new();
    // Nothing listens on port 1 of 127.0.0.3.
    let dead = "127.0.0.3:1";
    let run = dir
        .concur(["run", "-k", "--ssh", &sshd.ssh(), "-S", dead, "-S"])
        .arg(sshd.login("127.0.0.2", 1))
        .args(["echo", ":::", "x", "y"])
        .run()
        .expect_success()
        .expect_stderr("127.0.0.3:1 is unreachable, skipped");
    assert_eq!(run.stdout(), "x\ny\n");
    dir.concur(["run", "--ssh", &sshd.ssh(), "-S", dead, "echo", ":::", "x"])
        .run()
        .expect_code(255)
        .expect_stderr("no host is reachable: 127.0.0.3:1:");
}

/// `pgrep` over SSH for a process whose whole command line is `cmdline`.
fn remote_running(sshd: &Sshd, cmdline: &str) -> bool {
    !sshd
        .remote("127.0.0.2", &format!("pgrep -f '^{cmdline}$' || true"))
        .trim()
        .is_empty()
}

/// A timeout, and Ctrl-C, stop the remote job's whole process group, not only the
/// local `ssh`: checked with `pgrep` over SSH, after seeing the job run there.
#[test]
fn timeout_and_ctrl_c_stop_the_remote_process_group() {
    timeout_and_ctrl_c(&[], "310");
}

/// The same through the host's agent, which applies the timeout itself and kills
/// the group when told to.
#[test]
fn remote_agent_timeout_and_ctrl_c_stop_the_remote_process_group() {
    timeout_and_ctrl_c(&agent_args(), "320");
}

/// `stamp` makes the sleeps of each variant its own (they may run at once).
fn timeout_and_ctrl_c(extra: &[String], stamp: &str) {
    let Some(sshd) = Sshd::start() else { return };
    let dir = Dir::new();
    let login = sshd.login("127.0.0.2", 1);
    let (timed, interrupted) = (format!("sleep {stamp}7"), format!("sleep {stamp}8"));
    // The job's child, not the job's shell: the whole group must go.
    dir.concur(["run", "--ssh", &sshd.ssh(), "-S", &login, "--timeout", "1"])
        .args(extra)
        .args([format!("{timed}; echo {{}}"), ":::".into(), "a".into()])
        .run_within(Duration::from_secs(30))
        .expect_code(1)
        .expect_stderr("timed out");
    eventually("the timed-out remote job to be gone", || {
        !remote_running(&sshd, &timed)
    });

    let child = dir
        .concur(["run", "--ssh", &sshd.ssh(), "-S", &login])
        .args(extra)
        .args([
            format!("{interrupted}; echo {{}}"),
            ":::".into(),
            "b".into(),
        ])
        .spawn();
    let watchdog = crate::util::Watchdog::new(&child, Duration::from_secs(60));
    eventually("the remote job to start", || {
        remote_running(&sshd, &interrupted)
    });
    let pid = rustix::process::Pid::from_child(&child);
    rustix::process::kill_process(pid, rustix::process::Signal::INT).unwrap();
    let out = child.wait_with_output().unwrap();
    drop(watchdog);
    assert_eq!(out.status.code(), Some(130), "{out:?}");
    eventually("the interrupted remote job to be gone", || {
        !remote_running(&sshd, &interrupted)
    });
}

/// Runs `sleep SECS; echo {}` for inputs 1 to 8 over two hosts (`slots` each) with a
/// joblog, and once a job has finished on `other`'s host (so it is running its next
/// ones), does `fault` to it. Checks that the run exited 0 with every input's output
/// once; returns the joblog, stderr, and `other`'s host as the joblog names it.
fn run_through_a_fault(
    alive: &Sshd,
    other: &mut Sshd,
    (slots, secs, extra): (usize, &str, &[String]),
    fault: impl FnOnce(&mut Sshd),
) -> (String, String, String) {
    let dir = Dir::new();
    let log = dir.path().join("log");
    let child = dir
        .concur(["run", "--joblog", "log", "--ssh", &other.ssh(), "-S"])
        .arg(format!(
            "{},{}",
            alive.login("127.0.0.2", slots),
            other.login("127.0.0.3", slots)
        ))
        .args(extra)
        .args([format!("sleep {secs}; echo {{}}"), ":::".into()])
        .args((1..=8).map(|i| i.to_string()))
        .spawn();
    let watchdog = crate::util::Watchdog::new(&child, Duration::from_secs(90));
    let host = format!("127.0.0.3:{}", other.port);
    eventually("a job to finish on the host at fault", || {
        std::fs::read_to_string(&log)
            .is_ok_and(|l| l.lines().any(|l| l.split('\t').nth(1) == Some(&host)))
    });
    fault(other);
    let out = child.wait_with_output().unwrap();
    drop(watchdog);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let mut lines: Vec<u32> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.parse().unwrap())
        .collect();
    lines.sort_unstable();
    assert_eq!(lines, (1..=8).collect::<Vec<_>>(), "{stderr}");
    (std::fs::read_to_string(&log).unwrap(), stderr, host)
}

/// A host that dies mid-run (its sshd and connections killed) has its running
/// jobs run again on the other host: every input's output once, exit 0, the lost
/// attempts in the joblog as 255 on the dead host before the line that succeeded.
#[test]
fn a_host_lost_mid_run_has_its_jobs_run_again_elsewhere() {
    host_lost_mid_run(&[]);
}

/// The same when the jobs run through the hosts' agents: the dead host's agent
/// session ends, and its jobs go back to the queue.
#[test]
fn remote_agent_host_lost_mid_run_has_its_jobs_run_again_elsewhere() {
    host_lost_mid_run(&agent_args());
}

fn host_lost_mid_run(extra: &[String]) {
    let Some((alive, mut dying)) = Sshd::pair() else {
        return;
    };
    let (log, stderr, dying_host) =
        run_through_a_fault(&alive, &mut dying, (2, "2", extra), Sshd::kill_all);
    assert!(
        stderr.contains(&format!("was lost with {dying_host}")),
        "{stderr}"
    );
    let records: Vec<Vec<&str>> = log
        .lines()
        .skip(1)
        .map(|l| l.split('\t').collect())
        .collect();
    let lost: Vec<&Vec<&str>> = records
        .iter()
        .filter(|r| r[1] == dying_host && r[6] == "255")
        .collect();
    assert!(!lost.is_empty(), "no lost attempt in the joblog:\n{log}");
    for attempt in lost {
        let retried = records
            .iter()
            .skip_while(|r| *r != attempt)
            .any(|r| r[0] == attempt[0] && r[6] == "0" && r[1] != dying_host);
        assert!(
            retried,
            "job {} was not run again elsewhere:\n{log}",
            attempt[0]
        );
    }
}

/// A lost host is tried again after a back-off: once its sshd is back, it runs
/// jobs again (a line with exit 0 after its lost attempt in the joblog).
///
/// The inputs come from a pipe the test keeps feeding until that has happened, so the
/// run cannot run out of work before the host is back, however slowly a busy machine
/// restarts sshd or however long the back-off has grown: the test waits on the event.
#[test]
fn a_lost_host_that_comes_back_runs_jobs_again() {
    host_comes_back(&[]);
}

/// The same through the hosts' agents: the host that comes back gets a new agent.
#[test]
fn remote_agent_lost_host_that_comes_back_runs_jobs_again() {
    host_comes_back(&agent_args());
}

fn host_comes_back(extra: &[String]) {
    use std::io::Write;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    let Some((alive, mut flaky)) = Sshd::pair() else {
        return;
    };
    let dir = Dir::new();
    let log = dir.path().join("log");
    let mut child = piped_concur(&dir)
        .args(["run", "--joblog", "log", "--ssh", &flaky.ssh(), "-S"])
        .arg(format!(
            "{},{}",
            alive.login("127.0.0.2", 1),
            flaky.login("127.0.0.3", 1)
        ))
        .args(extra)
        .arg("sleep 0.3; echo {}")
        .spawn()
        .unwrap();
    let watchdog = crate::util::Watchdog::new(&child, Duration::from_secs(180));
    // One input every 100 ms until told to stop: both hosts always have work.
    let (stop, fed) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicUsize::new(0)),
    );
    let mut stdin = child.stdin.take().unwrap();
    let feeder = {
        let (stop, fed) = (Arc::clone(&stop), Arc::clone(&fed));
        std::thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) && fed.load(Ordering::SeqCst) < 1500 {
                let n = fed.fetch_add(1, Ordering::SeqCst) + 1;
                if writeln!(stdin, "{n}").is_err() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            // Dropping stdin ends the input.
        })
    };
    let host = format!("127.0.0.3:{}", flaky.port);
    // (exit value, start time) of each attempt on the flaky host.
    let on_flaky = || -> Vec<(String, f64)> {
        std::fs::read_to_string(&log)
            .unwrap_or_default()
            .lines()
            .map(|l| l.split('\t').map(str::to_owned).collect::<Vec<_>>())
            .filter(|f| f.get(1) == Some(&host) && f.len() > 6)
            .filter_map(|f| Some((f[6].clone(), f[2].parse().ok()?)))
            .collect()
    };
    let until = |what: &str, check: &mut dyn FnMut() -> bool| {
        let start = std::time::Instant::now();
        while !check() {
            assert!(
                start.elapsed() < Duration::from_secs(120),
                "timed out waiting for {what}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    until("a job to finish on the flaky host", &mut || {
        on_flaky().iter().any(|(exit, _)| exit == "0")
    });
    flaky.kill_all();
    let mut lost_start = 0.0;
    until("the lost attempt in the joblog", &mut || match on_flaky()
        .iter()
        .find(|(exit, _)| exit == "255")
    {
        Some((_, start)) => {
            lost_start = *start;
            true
        }
        None => false,
    });
    flaky.restart();
    until("a job on the flaky host after it came back", &mut || {
        on_flaky()
            .iter()
            .any(|(exit, start)| exit == "0" && *start > lost_start)
    });
    stop.store(true, Ordering::SeqCst);
    feeder.join().unwrap();
    let out = child.wait_with_output().unwrap();
    drop(watchdog);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    // Every input fed ran once, the lost one again elsewhere or later.
    let mut lines: Vec<usize> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.parse().unwrap())
        .collect();
    lines.sort_unstable();
    assert_eq!(
        lines,
        (1..=fed.load(Ordering::SeqCst)).collect::<Vec<_>>(),
        "{stderr}"
    );
}

/// When the only host dies mid-run, the run ends with 255 and names its error.
#[test]
fn losing_every_host_ends_the_run_with_255() {
    let Some(mut sshd) = Sshd::start_on(&["127.0.0.3"]) else {
        return;
    };
    let dir = Dir::new();
    let child = dir
        .concur(["run", "--ssh", &sshd.ssh(), "-S"])
        .arg(sshd.login("127.0.0.3", 2))
        .args(["sleep 3.21{}", ":::", "1", "2", "3", "4"])
        .spawn();
    let watchdog = crate::util::Watchdog::new(&child, Duration::from_secs(60));
    // The "remote" machine is this one: its jobs show in /proc.
    eventually("the jobs to run on the host", || {
        !crate::util::processes_with("sleep 3.21").is_empty()
    });
    sshd.kill_all();
    let out = child.wait_with_output().unwrap();
    drop(watchdog);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(255), "{stderr}");
    assert!(
        stderr.contains(&format!("no host is left: 127.0.0.3:{}:", sshd.port)),
        "{stderr}"
    );
}

/// `--trc` sends each input file, runs the job where it landed, fetches the result
/// to the same relative path and removes both there: by rsync, and by tar through
/// ssh (CONCUR_RSYNC=0), with names that need quoting. Without --workdir, jobs run
/// in a directory made for the run and removed after it.
#[test]
fn files_are_sent_fetched_and_cleaned_up() {
    let Some(sshd) = Sshd::start() else { return };
    for rsync in ["1", "0"] {
        let dir = Dir::new();
        let remote = Dir::new();
        dir.create("a b.txt", "hello\n");
        dir.create("it's.txt", "x\n");
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        dir.create("sub/c$d.txt", "deep\n");
        let run = dir
            .concur(["run", "-k", "--ssh", &sshd.ssh(), "-S"])
            .arg(sshd.login("127.0.0.2", 2))
            .arg("--workdir")
            .arg(remote.path())
            .args(["--trc", "{}.out", "wc -c < {} > {}.out; ls"])
            .args([":::", "a b.txt", "it's.txt", "sub/c$d.txt"])
            .env("CONCUR_RSYNC", rsync)
            .run()
            .expect_success();
        // Each job saw its own file in the work directory.
        assert!(run.stdout().contains("a b.txt"), "{run}");
        for (name, bytes) in [("a b.txt", 6), ("it's.txt", 2), ("sub/c$d.txt", 5)] {
            let out = std::fs::read_to_string(dir.path().join(format!("{name}.out")))
                .unwrap_or_else(|e| {
                    panic!("{name}.out was not fetched (rsync={rsync}): {e}\n{run}")
                });
            assert_eq!(out.trim(), bytes.to_string(), "{name}");
        }
        let left: Vec<_> = walk(remote.path());
        assert!(
            left.is_empty(),
            "left on the host (rsync={rsync}): {left:?}"
        );
    }
    // The default work directory is the run's own, gone afterwards.
    let dir = Dir::new();
    let run = dir
        .concur(["run", "--ssh", &sshd.ssh(), "-S"])
        .arg(sshd.login("127.0.0.2", 1))
        .args(["pwd", ":::", "x"])
        .run()
        .expect_success();
    let workdir = PathBuf::from(run.stdout().trim());
    assert!(
        workdir.starts_with("/tmp") && workdir.to_string_lossy().contains("concur-run."),
        "{run}"
    );
    assert!(
        !workdir.exists(),
        "the run directory was left: {}",
        workdir.display()
    );
    // Both transports agree: a file that cannot be sent, a --return file the job did
    // not make, and a path with `..` each fail the job, named; a job without its file
    // does not run.
    dir.create("x", "x\n");
    for rsync in ["1", "0"] {
        let marker = dir.path().join(format!("ran-{rsync}"));
        let run = dir
            .concur(["run", "--ssh", &sshd.ssh(), "-S"])
            .arg(sshd.login("127.0.0.2", 1))
            .arg("--transferfile")
            .arg("{}")
            .arg(format!("touch {}", marker.display()))
            .args([":::", "missing.txt"])
            .env("CONCUR_RSYNC", rsync)
            .run()
            .expect_code(1)
            .expect_stderr("job 1: cannot send missing.txt to 127.0.0.2:");
        assert!(
            !marker.exists(),
            "rsync={rsync}: ran without its file\n{run}"
        );
        dir.concur(["run", "--ssh", &sshd.ssh(), "-S"])
            .arg(sshd.login("127.0.0.2", 1))
            .args(["--return", "never-made.txt", "true", ":::", "1"])
            .env("CONCUR_RSYNC", rsync)
            .run()
            .expect_code(1)
            .expect_stderr("job 1: cannot fetch never-made.txt from 127.0.0.2:");
        for flag in ["--transferfile", "--return"] {
            dir.concur(["run", "--ssh", &sshd.ssh(), "-S"])
                .arg(sshd.login("127.0.0.2", 1))
                .args([flag, "../x", "true", ":::", "1"])
                .env("CONCUR_RSYNC", rsync)
                .run()
                .expect_code(1)
                .expect_stderr("a path with a .. component is refused");
        }
    }
}

/// Files (not directories) under `dir`.
fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        if entry.path().is_dir() {
            files.extend(walk(&entry.path()));
        } else {
            files.push(entry.path());
        }
    }
    files
}

/// A host added to the --slf file mid-run joins it.
#[test]
fn hosts_added_to_the_login_file_join_the_run() {
    let Some(sshd) = Sshd::start() else { return };
    let dir = Dir::new();
    dir.create(
        "hosts",
        format!("# one host to start\n{}\n", sshd.login("127.0.0.2", 1)),
    );
    let log = dir.path().join("log");
    let child = dir
        .concur([
            "run",
            "--joblog",
            "log",
            "--ssh",
            &sshd.ssh(),
            "--slf",
            "hosts",
        ])
        .args(["sleep 0.5; echo {}", ":::"])
        .args((1..=8).map(|i| i.to_string()))
        .spawn();
    let watchdog = crate::util::Watchdog::new(&child, Duration::from_secs(60));
    eventually("the first job to finish", || {
        std::fs::read_to_string(&log).is_ok_and(|l| l.lines().count() > 1)
    });
    dir.create(
        "hosts",
        format!(
            "{}\n{}\n",
            sshd.login("127.0.0.2", 1),
            sshd.login("127.0.0.3", 2)
        ),
    );
    let out = child.wait_with_output().unwrap();
    drop(watchdog);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let log = std::fs::read_to_string(&log).unwrap();
    let added = format!("127.0.0.3:{}", sshd.port);
    assert!(
        log.lines().any(|l| l.split('\t').nth(1) == Some(&added)),
        "no job ran on the added host:\n{log}"
    );
    // A bad line is named with its file and line number.
    dir.create("bad", "127.0.0.2\n0/x\n");
    dir.concur(["run", "--slf", "bad", "echo", ":::", "x"])
        .run()
        .expect_code(255)
        .expect_stderr("bad, line 2: invalid --sshlogin");
}

/// `gcd --hosts` runs the pool's workers over SSH; when one host dies mid-run its
/// chunk goes back to the queue (no task fails: they never reported), and the run
/// completes on the other host with the same results, in the same order, as
/// `--mode serial`. With every host gone, it exits 255.
#[test]
fn gcd_workers_over_ssh_survive_a_lost_host() {
    let Some((alive, mut dying)) = Sshd::pair() else {
        return;
    };
    let dir = Dir::new();
    let concur = env!("CARGO_BIN_EXE_concur");
    let serial = dir
        .concur(["gcd", "--mode", "serial", "--scale", "24", "--json"])
        .run()
        .expect_success();
    let results = |run: &crate::util::Run| {
        let json: serde_json::Value = serde_json::from_str(run.stdout().trim()).unwrap();
        json["results"].clone()
    };
    let hosts = format!(
        "{},{}",
        alive.login("127.0.0.2", 1),
        dying.login("127.0.0.3", 1)
    );
    let child = dir
        .concur([
            "gcd",
            "--scale",
            "24",
            "--chunk",
            "4",
            "--json",
            "--ssh",
            &dying.ssh(),
        ])
        .args(["--remote-concur", concur, "--hosts", &hosts])
        .spawn();
    let watchdog = crate::util::Watchdog::new(&child, Duration::from_secs(120));
    // The dying host's worker is a process under its sshd: wait until it works.
    eventually("a worker to run on the host that will die", || {
        dying.tree().into_iter().any(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == "concur")
        })
    });
    std::thread::sleep(Duration::from_millis(300));
    dying.kill_all();
    let out = child.wait_with_output().unwrap();
    drop(watchdog);
    let run = crate::util::Run {
        command: "gcd --hosts".into(),
        output: out,
    };
    let run = run
        .expect_success()
        .expect_stderr("lost the connection to 127.0.0.3");
    assert_eq!(results(&run), results(&serial), "{run}");
    let json: serde_json::Value = serde_json::from_str(run.stdout().trim()).unwrap();
    assert_eq!(json["failures"], serde_json::json!([]), "{run}");

    // Nothing reachable: 255, each host named.
    dir.concur(["gcd", "--ssh", &dying.ssh(), "--hosts"])
        .arg(dying.login("127.0.0.3", 1))
        .run()
        .expect_code(255)
        .expect_stderr("no host is reachable: 127.0.0.3:");
}

/// `--tagstring {host}` names the machine each job ran on.
#[test]
fn tags_can_name_the_host() {
    let Some(sshd) = Sshd::start() else { return };
    let dir = Dir::new();
    let run = dir
        .concur([
            "run",
            "-k",
            "--ssh",
            &sshd.ssh(),
            "--tagstring",
            "{host} {}",
            "-S",
        ])
        .arg(sshd.login("127.0.0.3", 1))
        .args(["echo", "out", ":::", "a", "b"])
        .run()
        .expect_success();
    let host = format!("127.0.0.3:{}", sshd.port);
    assert_eq!(
        run.stdout(),
        format!("{host} a\tout a\n{host} b\tout b\n"),
        "{run}"
    );
}

/// Ctrl-C while a host is still being connected to (it accepted the TCP connection
/// and says nothing, so `ssh` waits for its banner) ends the run at once with 130,
/// instead of after the connect timeout. Needs only the `ssh` client.
#[test]
fn ctrl_c_while_connecting_ends_the_run() {
    if Command::new("ssh").arg("-V").output().is_err() {
        assert!(!require_sshd(), "ssh is required under CI=true");
        eprintln!("skipped: no ssh client");
        return;
    }
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let dir = Dir::new();
    let child = dir
        .concur(["run", "-S"])
        .arg(format!("127.0.0.1:{port}"))
        .args(["echo", ":::", "a"])
        .spawn();
    let watchdog = crate::util::Watchdog::new(&child, Duration::from_secs(60));
    // The event: ssh has connected and waits for the banner.
    let (held, _) = silent.accept().unwrap();
    rustix::process::kill_process(
        rustix::process::Pid::from_child(&child),
        rustix::process::Signal::INT,
    )
    .unwrap();
    let out = child.wait_with_output().unwrap();
    drop((watchdog, held));
    assert_eq!(
        out.status.code(),
        Some(130),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn env_variables_functions_and_basefiles_reach_the_remote_jobs() {
    let Some(sshd) = Sshd::start() else { return };
    let dir = Dir::new();
    let remote = Dir::new();
    dir.create("base.txt", "shared data\n");
    // Two hosts, two slots each: every slot waits for its host's basefile.
    let run = dir
        .concur(["run", "-k", "-j", "2", "--ssh", &sshd.ssh()])
        .args([
            "-S",
            &sshd.login("127.0.0.2", 2),
            "-S",
            &sshd.login("127.0.0.3", 2),
        ])
        .args(["--workdir", &remote.path().display().to_string()])
        .args([
            "--basefile",
            "base.txt",
            "--cleanup",
            "--env",
            "GREETING,greet",
        ])
        .args([
            "greet \"$GREETING\" {} $PARALLEL_SEQ; cat base.txt",
            ":::",
            "a",
            "b",
            "c",
            "d",
        ])
        .env("GREETING", "it's $HOME\tand more")
        .env("BASH_FUNC_greet%%", "() {  echo \"hi [$1] $2 $3\"\n}")
        .env("PARALLEL_SHELL", "/bin/bash")
        .run()
        .expect_success();
    let mut want = String::new();
    for (i, arg) in ["a", "b", "c", "d"].iter().enumerate() {
        want.push_str(&format!(
            "hi [it's $HOME\tand more] {arg} {}\nshared data\n",
            i + 1
        ));
    }
    assert_eq!(run.stdout(), want, "{run}");
    // --cleanup with a --workdir removes the basefile at the end.
    let left: Vec<_> = walk(remote.path());
    assert!(left.is_empty(), "left on the host: {left:?}");
    // A basefile that does not exist fails the jobs, naming it.
    let run = dir
        .concur(["run", "--ssh", &sshd.ssh()])
        .args(["-S", &sshd.login("127.0.0.2", 1)])
        .args(["--basefile", "missing.txt", "echo", ":::", "x"])
        .run();
    assert_ne!(run.code(), Some(0), "{run}");
    assert!(run.stderr().contains("missing.txt"), "{run}");
}

#[test]
fn workdir_dots_gives_each_remote_job_a_directory_of_its_own_removed_after_it() {
    let Some(sshd) = Sshd::start() else { return };
    let dir = Dir::new();
    dir.create("in.txt", "sent\n");
    let run = dir
        .concur(["run", "-k", "--ssh", &sshd.ssh(), "--workdir", "..."])
        .args(["-S", &sshd.login("127.0.0.2", 2)])
        .args(["--transferfile", "in.txt", "--return", "{}.out"])
        .args([
            "ls -A > {}.out; cat in.txt >> {}.out; pwd",
            ":::",
            "a",
            "b",
            "c",
        ])
        .run()
        .expect_success();
    let stdout = run.stdout();
    let dirs: Vec<&str> = stdout.lines().collect();
    assert_eq!(dirs.len(), 3, "{run}");
    let unique: std::collections::HashSet<&&str> = dirs.iter().collect();
    assert_eq!(unique.len(), 3, "each job has its own directory: {run}");
    for dir in &dirs {
        assert!(!std::path::Path::new(dir).exists(), "{dir} was left");
    }
    // Each job saw only its own files there: the sent one and its output.
    for arg in ["a", "b", "c"] {
        let fetched = std::fs::read_to_string(dir.path().join(format!("{arg}.out"))).unwrap();
        assert_eq!(
            fetched,
            format!("{arg}.out\nin.txt\nsent\n"),
            "{arg}: {run}"
        );
    }
}

#[test]
fn onall_runs_every_job_on_every_host_and_nonall_the_command_once_on_each() {
    let Some(sshd) = Sshd::start() else { return };
    let dir = Dir::new();
    let (a, b) = (sshd.login("127.0.0.2", 2), sshd.login("127.0.0.3", 2));
    let run = dir
        .concur([
            "run",
            "-k",
            "--onall",
            "--ssh",
            &sshd.ssh(),
            "-S",
            &a,
            "-S",
            &b,
        ])
        .args([
            "echo {} $PARALLEL_SEQ $SSH_CONNECTION | cut -d' ' -f1,2,5",
            ":::",
            "x",
            "y",
        ])
        .run()
        .expect_success();
    // Each host ran both jobs, in order, one at a time; its output whole, in host order.
    assert_eq!(
        run.stdout(),
        "x 1 127.0.0.2\ny 2 127.0.0.2\nx 1 127.0.0.3\ny 2 127.0.0.3\n",
        "{run}"
    );
    let run = dir
        .concur(["run", "--nonall", "--ssh", &sshd.ssh(), "-S", &a, "-S", &b])
        .args(["echo $SSH_CONNECTION | cut -d' ' -f3"])
        .stdin("not read\n")
        .run()
        .expect_success();
    assert_eq!(run.stdout(), "127.0.0.2\n127.0.0.3\n", "{run}");
    // A host where a job fails counts once in the exit status.
    let run = dir
        .concur(["run", "--onall", "--ssh", &sshd.ssh(), "-S", &a, "-S", &b])
        .args([
            "test {} = ok -o $(echo $SSH_CONNECTION | cut -d' ' -f3) = 127.0.0.2",
            ":::",
            "ok",
            "no",
        ])
        .run();
    assert_eq!(run.code(), Some(1), "{run}");
    // Without hosts it is refused.
    let run = dir.concur(["run", "--nonall", "true"]).run();
    assert_eq!(run.code(), Some(255), "{run}");
    assert!(run.stderr().contains("need hosts"), "{run}");
}

/// `--remote-agent` answers as a session per job does: output, exit statuses,
/// `PARALLEL_SEQ`, `--env`, `--pipe` blocks, `--workdir ...` directories. A host
/// whose agent cannot start is skipped as unreachable, naming why.
#[test]
fn remote_agent_answers_as_a_session_per_job_does() {
    let Some(sshd) = Sshd::start() else { return };
    let dir = Dir::new();
    let hosts = format!(
        "{},{}",
        sshd.login("127.0.0.2", 2),
        sshd.login("127.0.0.3", 1)
    );
    let run = |extra: &[String], args: &[&str], stdin: &str| {
        dir.concur(["run", "-k", "--ssh", &sshd.ssh(), "-S", &hosts])
            .env("V", "v  al")
            .args(extra)
            .args(args)
            .stdin(stdin)
            .run()
    };
    let cases: [(&[&str], &str, i32, &str); 4] = [
        (
            &[
                "--env",
                "V",
                "echo \"$V\" $PARALLEL_SEQ {}; exit {}",
                ":::",
                "0",
                "3",
                "0",
            ],
            "",
            1,
            "v  al 1 0\nv  al 2 3\nv  al 3 0\n",
        ),
        (
            // Run there, not here (where no SSH_CONNECTION is set).
            &["--pipe", "-N2", "test -n \"$SSH_CONNECTION\" && wc -l"],
            "1\n2\n3\n4\n5\n",
            0,
            "2\n2\n1\n",
        ),
        (
            &[
                "--workdir",
                "...",
                "basename \"$PWD\"; touch left; ls; : {}",
            ],
            "a\nb\n",
            0,
            "job-1\nleft\njob-2\nleft\n",
        ),
        (
            &["--tag", "echo out; echo err >&2", ":::", "x"],
            "",
            0,
            "x\tout\n",
        ),
    ];
    for (args, stdin, code, stdout) in cases {
        for extra in [Vec::new(), agent_args()] {
            let got = run(&extra, args, stdin);
            assert_eq!(
                (got.code(), got.stdout().as_str()),
                (Some(code), stdout),
                "{extra:?} {args:?}\n{got}"
            );
        }
    }
    // The agent made the run directory (the probe's work), and removed it at the end.
    let got = run(&agent_args(), &["pwd; : {}", ":::", "1"], "").expect_success();
    let run_dir = got.stdout().trim().to_owned();
    assert!(run_dir.starts_with("/tmp/concur-run."), "{got}");
    assert!(!Path::new(&run_dir).exists(), "{run_dir} is left behind");
    let mut missing = agent_args();
    missing[2] = "/nonexistent/concur".into();
    run(&missing, &["echo", ":::", "x"], "")
        .expect_code(255)
        .expect_stderr("its agent (/nonexistent/concur agent) did not start");
}

/// A remote gcd worker stops with the run: Ctrl-C, SIGTERM and `--task-timeout` each
/// leave nothing running on the host, though the worker is in the middle of a task
/// that never ends (a hidden fault: the worker hangs on task 0). Before, a worker ran
/// on until its next write, at the end of its task: here, for ever.
#[test]
fn remote_gcd_workers_stop_with_ctrl_c_sigterm_and_the_task_timeout() {
    let Some(sshd) = Sshd::start_on(&["127.0.0.2"]) else {
        return;
    };
    let dir = Dir::new();
    // A name of this test's own, so that pgrep over SSH sees only its workers.
    let program = dir.path().join("concur-gcd-orphan-check");
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_concur"), &program).unwrap();
    let program = program.to_str().unwrap().to_owned();
    let worker = format!("{program} worker --task gcd --hang-on-item 0");
    dir.create("pairs", "12 18\n");
    let gcd = || {
        dir.concur(["gcd", "--pairs", "pairs", "--fault-hang-on", "0"])
            .args(["--ssh", &sshd.ssh()])
            .args(["--remote-concur", &program, "--hosts"])
            .arg(sshd.login("127.0.0.2", 1))
    };

    gcd()
        .args(["--task-timeout", "1s"])
        .run_within(Duration::from_secs(60))
        .expect_code(1)
        .expect_stderr("ran past the task timeout of 1s");
    eventually("the timed-out remote worker to be gone", || {
        !remote_running(&sshd, &worker)
    });

    for (signal, code) in [
        (rustix::process::Signal::INT, 130),
        (rustix::process::Signal::TERM, 143),
    ] {
        let child = gcd().spawn();
        let watchdog = crate::util::Watchdog::new(&child, Duration::from_secs(60));
        eventually("the remote worker to start", || {
            remote_running(&sshd, &worker)
        });
        rustix::process::kill_process(rustix::process::Pid::from_child(&child), signal).unwrap();
        let out = child.wait_with_output().unwrap();
        drop(watchdog);
        assert_eq!(out.status.code(), Some(code), "{out:?}");
        eventually("the interrupted remote worker to be gone", || {
            !remote_running(&sshd, &worker)
        });
    }
}

/// A `--pipe` job's stdin is its data, so it cannot be watched through it: it leaves
/// its process group in a file on the host, and a timeout or Ctrl-C stops that group
/// from another session. The job reads all its input, then sleeps: before, the sleep
/// ran on after the timeout.
#[test]
fn timed_out_and_interrupted_pipe_jobs_are_stopped_on_the_host() {
    let Some(sshd) = Sshd::start_on(&["127.0.0.2"]) else {
        return;
    };
    let dir = Dir::new();
    let login = sshd.login("127.0.0.2", 1);
    let (timed, interrupted) = ("sleep 3317", "sleep 3318");
    dir.concur(["run", "--pipe", "--ssh", &sshd.ssh(), "-S", &login])
        .args(["--timeout", "2", "--grace", "1"])
        .arg(format!("cat >/dev/null; {timed}; echo never"))
        .stdin("a\nb\n")
        .run_within(Duration::from_secs(60))
        .expect_code(1)
        .expect_stderr("timed out");
    eventually("the timed-out remote pipe job to be gone", || {
        !remote_running(&sshd, timed)
    });

    let child = dir
        .concur(["run", "--pipe", "--ssh", &sshd.ssh(), "-S", &login])
        .arg(format!("cat >/dev/null; {interrupted}; echo never"))
        .stdin("c\n")
        .spawn();
    let watchdog = crate::util::Watchdog::new(&child, Duration::from_secs(60));
    eventually("the remote pipe job to start", || {
        remote_running(&sshd, interrupted)
    });
    let pid = rustix::process::Pid::from_child(&child);
    rustix::process::kill_process(pid, rustix::process::Signal::INT).unwrap();
    let out = child.wait_with_output().unwrap();
    drop(watchdog);
    assert_eq!(out.status.code(), Some(130), "{out:?}");
    assert!(!String::from_utf8_lossy(&out.stdout).contains("never"));
    eventually("the interrupted remote pipe job to be gone", || {
        !remote_running(&sshd, interrupted)
    });
}

/// A host added to `--slf` that does not answer (it accepts the TCP connection and
/// says nothing, so `ssh` waits for its banner until its 10 s connect timeout) holds up
/// no other host: it is connected beside the scheduler. A job given while `ssh` still
/// waits on the silent host runs and prints on the host that works; had the scheduler
/// waited, that output would have come only after `ssh` gave up, which closes the
/// silent host's connection. When the input ends, the connection under way is given
/// up, and the run ends.
#[test]
fn a_silent_host_added_to_the_login_file_holds_up_no_other() {
    use std::io::{BufRead, Read, Write};
    let Some(sshd) = Sshd::start_on(&["127.0.0.2"]) else {
        return;
    };
    let silent = std::net::TcpListener::bind("127.0.0.4:0").unwrap();
    let silent_login = format!("127.0.0.4:{}", silent.local_addr().unwrap().port());
    let dir = Dir::new();
    let working = sshd.login("127.0.0.2", 1);
    dir.create("hosts", format!("{working}\n"));
    let mut child = piped_concur(&dir)
        .args(["run", "--ssh", &sshd.ssh(), "--slf", "hosts", "echo", "job"])
        .spawn()
        .unwrap();
    let watchdog = crate::util::Watchdog::new(&child, Duration::from_secs(90));
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    stdin.write_all(b"1\n").unwrap();
    stdout.read_line(&mut line).unwrap();
    assert_eq!(line, "job 1\n");

    dir.create("hosts", format!("{working}\n{silent_login}\n"));
    // The event: ssh has connected to the silent host and waits for its banner.
    let (mut held, _) = silent.accept().unwrap();
    stdin.write_all(b"2\n").unwrap();
    line.clear();
    stdout.read_line(&mut line).unwrap();
    assert_eq!(line, "job 2\n");
    // Still open: what ssh sent (its own banner) is there, and no end of stream.
    held.set_nonblocking(true).unwrap();
    let mut buf = [0u8; 4096];
    let still_open = loop {
        match held.read(&mut buf) {
            Ok(0) => break false,
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break true,
            Err(e) => panic!("{e}"),
        }
    };
    assert!(
        still_open,
        "ssh gave up on the silent host before the other host's job printed"
    );

    drop(stdin);
    let mut rest = Vec::new();
    stdout.read_to_end(&mut rest).unwrap();
    let status = child.wait().unwrap();
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    drop(watchdog);
    assert_eq!(status.code(), Some(0), "{stderr}");
    assert!(rest.is_empty(), "{}", String::from_utf8_lossy(&rest));
    // The connection under way was given up with the run, not left to time out.
    held.set_nonblocking(false).unwrap();
    held.set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    assert_eq!(
        held.read(&mut buf).unwrap(),
        0,
        "the silent host's ssh is gone"
    );
}

/// With live output (`--line-buffer`, `-u`), a job lost with its host has printed part
/// of its output already; it runs again on the other host from the start. The lines
/// the lost attempt printed are not printed again: every line appears once. (`--tag`
/// names the host: the lost attempt's first line is tagged with the lost host.)
#[test]
fn line_buffer_output_of_a_lost_attempt_is_not_printed_twice() {
    live_output_of_a_lost_attempt("--line-buffer");
}

#[test]
fn ungrouped_output_of_a_lost_attempt_is_not_printed_twice() {
    live_output_of_a_lost_attempt("-u");
}

fn live_output_of_a_lost_attempt(mode: &str) {
    use std::io::BufRead;
    let Some((alive, mut dying)) = Sshd::pair() else {
        return;
    };
    let dir = Dir::new();
    let mut child = piped_concur(&dir)
        .args([
            "run",
            mode,
            "--tagstring",
            "{host}",
            "--ssh",
            &dying.ssh(),
            "-S",
        ])
        .arg(format!(
            "{},{}",
            alive.login("127.0.0.2", 1),
            dying.login("127.0.0.3", 1)
        ))
        .args(["echo {}-a; sleep 3; echo {}-b", ":::", "1", "2", "3", "4"])
        .spawn()
        .unwrap();
    let watchdog = crate::util::Watchdog::new(&child, Duration::from_secs(120));
    let dying_host = format!("127.0.0.3:{}", dying.port);
    let mut lines = Vec::new();
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    // The event: a job on the host to kill has printed its first line, and sleeps.
    loop {
        let mut line = String::new();
        assert!(stdout.read_line(&mut line).unwrap() > 0, "{lines:?}");
        let first_on_dying = line.starts_with(&format!("{dying_host}\t")) && line.ends_with("-a\n");
        lines.push(line);
        if first_on_dying {
            break;
        }
    }
    dying.kill_all();
    for line in stdout.lines() {
        lines.push(line.unwrap() + "\n");
    }
    let status = child.wait().unwrap();
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    drop(watchdog);
    assert_eq!(status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains(&format!("was lost with {dying_host}")),
        "{stderr}"
    );
    let mut untagged: Vec<&str> = lines
        .iter()
        .map(|l| l.split_once('\t').map_or(l.as_str(), |(_, rest)| rest))
        .collect();
    untagged.sort_unstable();
    let expected: Vec<String> = (1..=4)
        .flat_map(|i| [format!("{i}-a\n"), format!("{i}-b\n")])
        .collect();
    assert_eq!(untagged, expected, "{lines:?}\n{stderr}");
    assert!(!stderr.contains("ran again:"), "{stderr}");
}
