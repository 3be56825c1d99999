//! Helpers for the integration tests: a temp dir per test, and a `concur` command that
//! prints its stdout and stderr when an expectation fails.

use std::ffi::OsStr;
use std::fmt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// A temporary directory for one test, removed when dropped.
pub(crate) struct Dir {
    tmp: tempfile::TempDir,
}

impl Dir {
    pub(crate) fn new() -> Self {
        Self {
            tmp: tempfile::Builder::new()
                .prefix("concur-test-")
                .tempdir()
                .expect("create temp dir"),
        }
    }

    pub(crate) fn path(&self) -> &Path {
        self.tmp.path()
    }

    /// Writes `contents` to `name` inside the directory and returns its path.
    pub(crate) fn create(&self, name: &str, contents: impl AsRef<[u8]>) -> PathBuf {
        let path = self.path().join(name);
        std::fs::write(&path, contents).expect("write test file");
        path
    }

    /// Runs `script` with `sh -c` in this directory (for `ulimit` and the like).
    pub(crate) fn sh(&self, script: &str) -> Output {
        Command::new("sh")
            .args(["-c", script])
            .current_dir(self.path())
            .output()
            .expect("run sh")
    }

    /// A `concur` command running in this directory.
    pub(crate) fn concur<I, S>(&self, args: I) -> Cmd
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_concur"));
        cmd.args(args).current_dir(self.path());
        Cmd { cmd, stdin: None }
    }
}

/// A command to run once.
pub(crate) struct Cmd {
    cmd: Command,
    stdin: Option<Vec<u8>>,
}

/// What a finished command printed, shown in full when an expectation fails.
pub(crate) struct Run {
    pub(crate) command: String,
    pub(crate) output: Output,
}

impl Run {
    pub(crate) fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.output.stdout).into_owned()
    }

    pub(crate) fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.output.stderr).into_owned()
    }

    pub(crate) fn code(&self) -> Option<i32> {
        self.output.status.code()
    }

    /// Asserts the exit code, then returns the run for more checks.
    #[track_caller]
    pub(crate) fn expect_code(self, code: i32) -> Self {
        assert_eq!(self.code(), Some(code), "unexpected exit status\n{self}");
        self
    }

    /// Asserts success (exit code 0).
    #[track_caller]
    pub(crate) fn expect_success(self) -> Self {
        self.expect_code(0)
    }

    /// Asserts that stderr contains `needle`.
    #[track_caller]
    pub(crate) fn expect_stderr(self, needle: &str) -> Self {
        assert!(
            self.stderr().contains(needle),
            "stderr lacks {needle:?}\n{self}"
        );
        self
    }
}

impl fmt::Display for Run {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "command: {}\nstatus: {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.command,
            self.output.status,
            self.stdout(),
            self.stderr()
        )
    }
}

impl Cmd {
    pub(crate) fn arg(mut self, arg: impl AsRef<OsStr>) -> Self {
        self.cmd.arg(arg);
        self
    }

    pub(crate) fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.cmd.args(args);
        self
    }

    /// Sets an environment variable of the command.
    pub(crate) fn env(mut self, key: &str, value: impl AsRef<OsStr>) -> Self {
        self.cmd.env(key, value);
        self
    }

    /// Removes an environment variable from the command's environment.
    pub(crate) fn env_remove(mut self, key: &str) -> Self {
        self.cmd.env_remove(key);
        self
    }

    /// Feeds `data` to the command's stdin (otherwise stdin is empty).
    pub(crate) fn stdin(mut self, data: impl Into<Vec<u8>>) -> Self {
        self.stdin = Some(data.into());
        self
    }

    /// Starts the command with piped stdout and stderr, for tests that interact with
    /// the running process; stdin gets the configured data, then closes.
    pub(crate) fn spawn(mut self) -> std::process::Child {
        let data = self.stdin.take().unwrap_or_default();
        let mut child = self
            .cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn concur");
        let mut stdin = child.stdin.take().expect("piped stdin");
        std::thread::spawn(move || {
            use std::io::Write;
            let _ = stdin.write_all(&data);
        });
        child
    }

    /// Runs to completion, killed (and so failing its test) if it takes longer than
    /// `limit`: for tests whose point is that the command does not hang.
    pub(crate) fn run_within(self, limit: std::time::Duration) -> Run {
        let command = format!("{:?}", self.cmd);
        let child = self.spawn();
        let watchdog = Watchdog::new(&child, limit);
        let output = child.wait_with_output().expect("wait for concur");
        drop(watchdog);
        Run { command, output }
    }

    /// Runs to completion, feeding the configured stdin.
    pub(crate) fn run(self) -> Run {
        let command = format!("{:?}", self.cmd);
        let output = self.spawn().wait_with_output().expect("wait for concur");
        Run { command, output }
    }
}

/// Pids of live processes whose command line starts with `marker` (zombies excluded).
/// Tests give the processes they start a unique marker, such as `sleep 31.4159`.
pub(crate) fn processes_with(marker: &str) -> Vec<u32> {
    let mut pids = Vec::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return pids;
    };
    for entry in entries.flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        let zombie = std::fs::read_to_string(entry.path().join("stat"))
            .map(|s| {
                s.rsplit(')')
                    .next()
                    .unwrap_or("")
                    .trim_start()
                    .starts_with('Z')
            })
            .unwrap_or(false);
        if cmdline.starts_with(marker) && !zombie {
            pids.push(pid);
        }
    }
    pids
}

/// Waits up to 10 s for `check` to hold, polling every 10 ms (for tests that wait on
/// another process; the margin is generous on purpose).
pub(crate) fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let start = std::time::Instant::now();
    while !check() {
        assert!(
            start.elapsed() < std::time::Duration::from_secs(10),
            "timed out waiting for {what}"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

/// Pids of the live child processes of `parent` (from `/proc/*/stat`), so that tests
/// running in parallel each see only their own processes.
pub(crate) fn children_of(parent: u32) -> Vec<u32> {
    let mut pids = Vec::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return pids;
    };
    for entry in entries.flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let stat = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
        // After the ")" closing the command name: state, then the parent pid.
        let fields: Vec<&str> = stat
            .rsplit(')')
            .next()
            .unwrap_or("")
            .split_whitespace()
            .collect();
        if fields.get(1).and_then(|p| p.parse::<u32>().ok()) == Some(parent)
            && fields.first() != Some(&"Z")
        {
            pids.push(pid);
        }
    }
    pids
}

/// Kills a child process that is still running `after` from now, so that a test
/// waiting on it fails (on EOF or a bad status) instead of hanging. Drop it as soon as
/// the child is reaped: the pid could be reused after that.
pub(crate) struct Watchdog {
    disarm: Option<std::sync::mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Watchdog {
    pub(crate) fn new(child: &std::process::Child, after: std::time::Duration) -> Self {
        let pid = rustix::process::Pid::from_child(child);
        let (disarm, armed) = std::sync::mpsc::channel::<()>();
        let thread = std::thread::spawn(move || {
            if armed.recv_timeout(after) == Err(std::sync::mpsc::RecvTimeoutError::Timeout) {
                eprintln!("watchdog: killing pid {pid:?} after {after:?}");
                let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
            }
        });
        Self {
            disarm: Some(disarm),
            thread: Some(thread),
        }
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        drop(self.disarm.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Held by tests that start thousands of threads or connections, so that no two of them
/// run at once: every thread takes a pid, and `kernel.pid_max` can be as low as 32,768.
pub(crate) fn many_threads() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A child process that is killed and reaped when dropped, so that a test failing
/// half-way leaves no server running. `std` knows when a child was reaped, so the kill
/// can never reach a reused pid.
pub(crate) struct KillOnDrop(pub(crate) std::process::Child);

impl std::ops::Deref for KillOnDrop {
    type Target = std::process::Child;

    fn deref(&self) -> &std::process::Child {
        &self.0
    }
}

impl std::ops::DerefMut for KillOnDrop {
    fn deref_mut(&mut self) -> &mut std::process::Child {
        &mut self.0
    }
}

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The book's six Life strategies, by their command-line names.
pub(crate) const LIFE_STRATEGIES: [&str; 6] = [
    "serial",
    "thread-per-cell",
    "pipeline",
    "phased-pipeline",
    "pool",
    "async",
];

/// Waits until process `pid` handles SIGTERM and SIGINT itself (its signal handler is
/// installed): before that, a signal kills it with the default action, so a test that
/// checks the exit status of a signalled run must wait for this event first.
pub(crate) fn wait_for_signal_handlers(pid: u32) {
    let caught = |pid: u32| -> bool {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("SigCgt:"))
            .and_then(|mask| u64::from_str_radix(mask.trim(), 16).ok())
            // SIGINT is 2 and SIGTERM 15: bits 1 and 14.
            .is_some_and(|mask| mask & (1 << 1) != 0 && mask & (1 << 14) != 0)
    };
    eventually("the signal handlers", || caught(pid));
}
