//! `concur run -S … --remote-agent`: one SSH session per host, running `concur agent`
//! there, which starts the host's jobs itself and streams their output back.
//!
//! Without it, every remote job is an SSH session of its own, and sshd starts each
//! session through the user's login shell: a `~/.bashrc` that takes 100 ms (pyenv,
//! conda, nvm) costs every job 100 ms. With it, the login shell runs once per host,
//! to start the agent; each job is then a `SHELL -c LINE` that the agent spawns, as
//! `concur run` spawns a local job (in the shell [`job_shell`](crate::runner::job_shell)
//! picks there: the login shell, if it is Bourne-like), with the environment the login
//! set up.
//!
//! **Protocol.** Length-prefixed postcard frames (the gcd pool's, [`write_frame`] and
//! [`read_frame`]) over the session's stdin and stdout. The local side sends `Start`
//! (the job: line, work directory, environment, stdin, timeout, grace, linger), `Kill`,
//! `Prepare` (the probe of a new host) and `Remove` (its run directory, at the end).
//! The agent answers `Ready` once, then `Out` chunks of each job's stdout and stderr
//! and one `Done` (or `Failed`) per job, `Prepared` and `Removed`. Frames of many jobs
//! interleave; each carries its job's id. A writer thread on each side
//! writes every frame waiting before it flushes, so a burst of small jobs costs few
//! writes to `ssh`.
//!
//! **Same behaviour as a job of its own.** The agent runs each job with
//! [`Cmd::execute`] in a process group of its own, so `--timeout` (applied on the
//! host, by the agent) and a `Kill` stop the whole group: SIGTERM, the grace period,
//! SIGKILL. When the session ends (the local side is gone, or the connection), the
//! agent stops every job it runs the same way and exits. On the local side, a session
//! that ends while jobs run makes each of them [`AgentError::Lost`]: the runner puts
//! them back in the queue, as it does for a job whose own session was lost.

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::Path;
use std::process::{ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use crossbeam_channel::{Receiver, Sender, never, select, unbounded};
use serde::{Deserialize, Serialize};

use crate::parallel::pool::{read_frame, write_frame};
use crate::process::{CancelToken, Cmd, Ending, Execution, Input};

/// The protocol's version: a local side and an agent of different versions refuse
/// each other (the host runs another build of concur).
const PROTOCOL: u32 = 1;

/// How long a local side waits for a job's end after asking the agent to kill it,
/// past the grace period, before it takes the host for lost.
const KILL_ANSWER: Duration = Duration::from_secs(10);

/// One job, as the agent runs it.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct JobSpec {
    /// The command line, for the host's `$SHELL -c`.
    pub line: Vec<u8>,
    /// Where it runs (relative to the agent's directory, the login directory).
    pub workdir: Vec<u8>,
    /// Make `workdir` first (`--workdir ...`).
    pub create: bool,
    /// Variables set for it (`PARALLEL_SEQ`, `--env`): name, value. An exported
    /// bash function (`BASH_FUNC_f%%`) reaches a bash job as such.
    pub env: Vec<(String, Vec<u8>)>,
    /// Its stdin (`--pipe`); `None` is `/dev/null`.
    pub stdin: Option<Vec<u8>>,
    /// Stopped after this long, by the agent.
    pub timeout: Option<Duration>,
    /// Between SIGTERM and SIGKILL when it is stopped.
    pub grace: Duration,
    /// How long output of what it left behind is still read after it exits.
    pub linger: Duration,
}

#[derive(Debug, Serialize, Deserialize)]
enum ToAgent {
    Start {
        id: u64,
        job: JobSpec,
    },
    Kill {
        id: u64,
    },
    /// What a new host is asked once: its cores, a fresh run directory, whether it
    /// has rsync; and make `workdir` if given. Answered by `Prepared`.
    Prepare {
        id: u64,
        workdir: Option<Vec<u8>>,
    },
    /// Remove a directory tree (the run directory, at the end). Answered by
    /// `Removed`.
    Remove {
        id: u64,
        path: Vec<u8>,
    },
}

#[derive(Debug, Serialize, Deserialize)]
enum FromAgent {
    Ready {
        protocol: u32,
    },
    Out {
        id: u64,
        stderr: bool,
        data: Vec<u8>,
    },
    Done {
        id: u64,
        /// The raw wait status.
        status: i32,
        ending: Ended,
        runtime: Duration,
        sent: u64,
        received: u64,
    },
    Failed {
        id: u64,
        error: String,
    },
    Prepared {
        id: u64,
        cores: usize,
        run_dir: Vec<u8>,
        rsync: bool,
    },
    Removed {
        id: u64,
    },
}

impl FromAgent {
    /// The request a frame answers, if it is an answer (`Out` is not).
    fn answers(&self) -> Option<u64> {
        match self {
            FromAgent::Done { id, .. }
            | FromAgent::Failed { id, .. }
            | FromAgent::Prepared { id, .. }
            | FromAgent::Removed { id } => Some(*id),
            FromAgent::Ready { .. } | FromAgent::Out { .. } => None,
        }
    }
}

/// What a host answered to [`Agent::prepare`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Prepared {
    /// Its cores.
    pub cores: usize,
    /// A directory made there for this run (mode 700).
    pub run_dir: Vec<u8>,
    /// Whether it has `rsync`.
    pub rsync: bool,
}

/// [`Ending`] on the wire.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
enum Ended {
    Exited,
    TimedOut,
    Cancelled,
}

impl From<Ending> for Ended {
    fn from(ending: Ending) -> Self {
        match ending {
            Ending::Exited => Ended::Exited,
            Ending::TimedOut => Ended::TimedOut,
            Ending::Cancelled => Ended::Cancelled,
        }
    }
}

impl From<Ended> for Ending {
    fn from(ended: Ended) -> Self {
        match ended {
            Ended::Exited => Ending::Exited,
            Ended::TimedOut => Ending::TimedOut,
            Ended::Cancelled => Ending::Cancelled,
        }
    }
}

/// Writes every frame from `frames` to `out`, flushing only when none is waiting.
/// Ends when `frames` does, sends `None`, or `out` fails.
fn write_frames<T: Serialize>(frames: &Receiver<Option<T>>, out: impl Write) -> io::Result<()> {
    let mut out = BufWriter::with_capacity(256 * 1024, out);
    while let Ok(Some(frame)) = frames.recv() {
        write_frame(&mut out, &frame)?;
        loop {
            match frames.try_recv() {
                Ok(Some(frame)) => write_frame(&mut out, &frame)?,
                Ok(None) => return out.flush(),
                Err(_) => break,
            }
        }
        out.flush()?;
    }
    out.flush()
}

/// Runs the agent (`concur agent`): reads jobs from `input`, runs each on a thread
/// of its own, and writes their output and ends to `output`. Returns when `input`
/// ends, after stopping every job still running.
pub fn serve(input: impl Read, output: impl Write + Send + 'static) -> io::Result<()> {
    let (tx, rx) = unbounded::<Option<FromAgent>>();
    let writer = std::thread::spawn(move || write_frames(&rx, output));
    let _ = tx.send(Some(FromAgent::Ready { protocol: PROTOCOL }));
    // As `concur run` picks it here: $PARALLEL_SHELL, else the login shell ($SHELL)
    // if it is Bourne-like, else /bin/sh.
    let shell: OsString = crate::runner::job_shell()
        .map(|(shell, _)| shell.into_os_string())
        .unwrap_or_else(|_| "/bin/sh".into());
    // The login shell `exec`ed the agent, giving back its shell level (to 0). A job's
    // bash at level 1 with SSH_CLIENT set takes itself for the session's login shell
    // and reads ~/.bashrc again: the very cost the agent is for. Level 1 here makes
    // the job's shell level 2, as a shell started by the login shell is.
    let level = std::env::var("SHLVL")
        .ok()
        .and_then(|l| l.parse::<u32>().ok())
        .unwrap_or(0)
        .max(1);
    let shell_level = level.to_string();
    let running: Arc<Mutex<HashMap<u64, CancelToken>>> = Arc::default();
    let jobs = crossbeam_utils::sync::WaitGroup::new();
    let mut input = BufReader::new(input);
    let ended = loop {
        match read_frame::<ToAgent>(&mut input) {
            Ok(Some(ToAgent::Start { id, job })) => {
                let cancel = match CancelToken::new() {
                    Ok(cancel) => cancel,
                    Err(err) => {
                        let error = format!("the agent cannot run it: {err}");
                        let _ = tx.send(Some(FromAgent::Failed { id, error }));
                        continue;
                    }
                };
                lock(&running).insert(id, cancel.clone());
                let (tx, running, shell, done, level) = (
                    tx.clone(),
                    running.clone(),
                    shell.clone(),
                    jobs.clone(),
                    shell_level.clone(),
                );
                std::thread::spawn(move || {
                    let end = run_one(id, job, (&shell, &level), &cancel, &tx);
                    lock(&running).remove(&id);
                    let _ = tx.send(Some(end));
                    drop(done);
                });
            }
            Ok(Some(ToAgent::Kill { id })) => {
                if let Some(cancel) = lock(&running).get(&id) {
                    cancel.cancel();
                }
            }
            Ok(Some(ToAgent::Prepare { id, workdir })) => {
                let _ = tx.send(Some(prepare(id, workdir.as_deref())));
            }
            Ok(Some(ToAgent::Remove { id, path })) => {
                let path = Path::new(OsStr::from_bytes(&path));
                let _ = tx.send(Some(match std::fs::remove_dir_all(path) {
                    Ok(()) => FromAgent::Removed { id },
                    Err(err) => FromAgent::Failed {
                        id,
                        error: format!("cannot remove {}: {err}", path.display()),
                    },
                }));
            }
            Ok(None) => break Ok(()),
            Err(err) => break Err(err),
        }
    };
    // The local side is gone (or done): nothing still running has anyone to report to.
    for cancel in lock(&running).values() {
        cancel.cancel();
    }
    jobs.wait();
    drop(tx);
    let written = writer
        .join()
        .unwrap_or_else(|_| Err(io::Error::other("the agent's writer panicked")));
    // A local side that left first makes the last writes fail: that is no error.
    ended.and(written.or_else(|e| match e.kind() {
        io::ErrorKind::BrokenPipe => Ok(()),
        _ => Err(e),
    }))
}

/// Answers `Prepare`, as the SSH probe of a host without an agent does: `nproc`,
/// `mktemp -d "${TMPDIR:-/tmp}/concur-run.XXXXXX"`, `command -v rsync`, `mkdir -p`.
fn prepare(id: u64, workdir: Option<&[u8]>) -> FromAgent {
    let failed = |error: String| FromAgent::Failed { id, error };
    let tmp = std::env::var_os("TMPDIR")
        .filter(|t| !t.is_empty())
        .map_or_else(|| "/tmp".into(), std::path::PathBuf::from);
    let run_dir = match tempfile::Builder::new()
        .prefix("concur-run.")
        .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o700))
        .tempdir_in(&tmp)
    {
        Ok(dir) => dir.keep(),
        Err(err) => {
            return failed(format!(
                "cannot make a run directory in {}: {err}",
                tmp.display()
            ));
        }
    };
    if let Some(dir) = workdir {
        let dir = Path::new(OsStr::from_bytes(dir));
        if let Err(err) = std::fs::create_dir_all(dir) {
            return failed(format!("cannot make {}: {err}", dir.display()));
        }
    }
    let rsync = std::env::var_os("PATH").is_some_and(|path| {
        std::env::split_paths(&path).any(|dir| {
            use std::os::unix::fs::PermissionsExt;
            std::fs::metadata(dir.join("rsync"))
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
    });
    FromAgent::Prepared {
        id,
        cores: std::thread::available_parallelism().map_or(1, usize::from),
        run_dir: run_dir.into_os_string().into_vec(),
        rsync,
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Runs one job on the agent's host; returns its `Done` or `Failed`.
fn run_one(
    id: u64,
    job: JobSpec,
    (shell, level): (&OsStr, &str),
    cancel: &CancelToken,
    tx: &Sender<Option<FromAgent>>,
) -> FromAgent {
    let dir = Path::new(OsStr::from_bytes(&job.workdir));
    let entered = match job.create {
        true => std::fs::create_dir_all(dir),
        false => Ok(()),
    }
    .and_then(|()| std::fs::read_dir(dir).map(drop));
    if let Err(err) = entered {
        // As a job of its own reports it: `cd` fails, exit 255.
        let data = format!("concur agent: cannot enter {}: {err}\n", dir.display()).into_bytes();
        let _ = tx.send(Some(FromAgent::Out {
            id,
            stderr: true,
            data,
        }));
        return FromAgent::Done {
            id,
            status: ExitStatus::from_raw(255 << 8).into_raw(),
            ending: Ended::Exited,
            runtime: Duration::ZERO,
            sent: 0,
            received: 0,
        };
    }
    let mut cmd = Cmd::new(shell)
        .arg("-c")
        .arg(OsStr::from_bytes(&job.line))
        .current_dir(dir)
        .grace(job.grace)
        .linger(job.linger)
        .env("SHLVL", level);
    for (name, value) in &job.env {
        cmd = cmd.env(name, OsStr::from_bytes(value));
    }
    if let Some(timeout) = job.timeout {
        cmd = cmd.timeout(timeout);
    }
    if let Some(stdin) = job.stdin {
        cmd = cmd.stdin(Input::Bytes(stdin.into()));
    }
    let mut stdout = Frames {
        id,
        stderr: false,
        tx,
    };
    let mut stderr = Frames {
        id,
        stderr: true,
        tx,
    };
    match cmd.execute(&mut stdout, &mut stderr, Some(cancel)) {
        Ok(run) => FromAgent::Done {
            id,
            status: run.status.into_raw(),
            ending: run.ending.into(),
            runtime: run.runtime,
            sent: run.sent,
            received: run.received,
        },
        Err(err) => FromAgent::Failed {
            id,
            error: crate::error_chain(&err),
        },
    }
}

/// A job's stdout or stderr, as `Out` frames.
struct Frames<'a> {
    id: u64,
    stderr: bool,
    tx: &'a Sender<Option<FromAgent>>,
}

impl Write for Frames<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let frame = FromAgent::Out {
            id: self.id,
            stderr: self.stderr,
            data: buf.to_vec(),
        };
        self.tx.send(Some(frame)).map_err(|_| {
            io::Error::new(io::ErrorKind::BrokenPipe, "the agent's output is closed")
        })?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Why a job run through an agent has no result.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// The agent's session ended (or stopped answering) while the job ran, or
    /// before it was sent: the job goes back to the queue.
    #[error("{0}")]
    Lost(String),
    /// The agent could not start it.
    #[error("the agent could not start it: {0}")]
    Failed(String),
    /// Its output could not be written here.
    #[error("{0}")]
    Output(io::Error),
}

/// What the reader thread hands one waiting job.
enum Event {
    Out(bool, Vec<u8>),
    Done(FromAgent),
    Lost(String),
}

/// The jobs waiting on an agent, and whether its session has ended.
#[derive(Default)]
struct Pending {
    jobs: HashMap<u64, Sender<Event>>,
    lost: Option<String>,
}

/// The local end of one host's agent: the `ssh` session and the threads that write
/// and read its frames. Jobs of all the host's slots share it.
pub struct Agent {
    ssh: Mutex<std::process::Child>,
    /// Frames to the agent; `None` ends the session.
    tx: Sender<Option<ToAgent>>,
    pending: Arc<Mutex<Pending>>,
    next_id: AtomicU64,
}

impl std::fmt::Debug for Agent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Agent").finish_non_exhaustive()
    }
}

impl Agent {
    /// Starts `argv` (the `ssh … concur agent` command) and waits for the agent's
    /// `Ready`, at most `timeout` (less if `cancel` fires). The error says what the
    /// session printed: `concur: command not found`, say.
    pub fn start(
        argv: &[OsString],
        timeout: Duration,
        cancel: Option<&CancelToken>,
    ) -> Result<Arc<Self>, String> {
        let (program, args) = argv.split_first().ok_or("no ssh command")?;
        let mut ssh = std::process::Command::new(program)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", program.to_string_lossy()))?;
        let (Some(stdin), Some(stdout), Some(stderr)) =
            (ssh.stdin.take(), ssh.stdout.take(), ssh.stderr.take())
        else {
            let _ = ssh.kill();
            let _ = ssh.wait();
            return Err("the agent's pipes were not set up".into());
        };
        // The session's own stderr (ssh's, the login shell's): its last words are
        // the reason when it ends.
        let said = Arc::new(Mutex::new(Vec::new()));
        let said_by = said.clone();
        std::thread::spawn(move || {
            let mut stderr = stderr;
            let mut buf = [0; 4096];
            while let Ok(n) = stderr.read(&mut buf) {
                if n == 0 {
                    break;
                }
                let mut said = lock(&said_by);
                said.extend_from_slice(&buf[..n]);
                let over = said.len().saturating_sub(2048);
                said.drain(..over);
            }
        });
        let (tx, rx) = unbounded::<Option<ToAgent>>();
        std::thread::spawn(move || write_frames(&rx, stdin));
        let pending: Arc<Mutex<Pending>> = Arc::default();
        let (ready_tx, ready_rx) = crossbeam_channel::bounded(1);
        let reader_pending = pending.clone();
        std::thread::spawn(move || read_agent(stdout, &reader_pending, &ready_tx, &said));
        let agent = Arc::new(Agent {
            ssh: Mutex::new(ssh),
            tx,
            pending,
            next_id: AtomicU64::new(1),
        });
        let cancelled = cancel.map_or_else(never, CancelToken::subscribe);
        select! {
            recv(ready_rx) -> ready => match ready {
                Ok(Ok(())) => Ok(agent),
                Ok(Err(err)) => Err(err),
                Err(_) => Err("the agent's reader ended".into()),
            },
            recv(cancelled) -> _ => Err("cancelled while starting the agent".into()),
            default(timeout) => Err(format!(
                "the agent did not answer within {}",
                crate::process::format_duration(timeout)
            )),
        }
    }

    /// Asks the host what [`Prepared`] holds, making `workdir` there if given: the
    /// probe of a new host, without another login.
    pub fn prepare(&self, workdir: Option<&[u8]>) -> Result<Prepared, String> {
        let workdir = workdir.map(<[u8]>::to_vec);
        match self.request(|id| ToAgent::Prepare { id, workdir })? {
            FromAgent::Prepared {
                cores,
                run_dir,
                rsync,
                ..
            } if cores > 0 && run_dir.starts_with(b"/") => Ok(Prepared {
                cores,
                run_dir,
                rsync,
            }),
            other => Err(format!("the agent answered {other:?}")),
        }
    }

    /// Removes the tree at `path` on the host.
    pub fn remove(&self, path: &[u8]) -> Result<(), String> {
        let path = path.to_vec();
        self.request(|id| ToAgent::Remove { id, path }).map(drop)
    }

    /// Sends one request and waits (at most [`KILL_ANSWER`]) for its answer; a
    /// `Failed` answer is the error.
    fn request(&self, make: impl FnOnce(u64) -> ToAgent) -> Result<FromAgent, String> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = unbounded();
        {
            let mut pending = lock(&self.pending);
            if let Some(lost) = &pending.lost {
                return Err(lost.clone());
            }
            pending.jobs.insert(id, tx);
        }
        if self.tx.send(Some(make(id))).is_err() {
            lock(&self.pending).jobs.remove(&id);
            return Err("the agent's session is closed".into());
        }
        let answer = rx.recv_timeout(KILL_ANSWER);
        lock(&self.pending).jobs.remove(&id);
        match answer {
            Ok(Event::Done(FromAgent::Failed { error, .. })) => Err(error),
            Ok(Event::Done(answer)) => Ok(answer),
            Ok(Event::Lost(reason)) => Err(reason),
            Ok(Event::Out(..)) => Err("the agent answered with output".into()),
            Err(_) => Err("the agent did not answer".into()),
        }
    }

    /// Whether its session has ended: new jobs need a new agent.
    pub fn is_lost(&self) -> bool {
        lock(&self.pending).lost.is_some()
    }

    /// Runs `job` on the agent's host, its output written to `stdout` and `stderr`
    /// as it comes. `cancel` (Ctrl-C, `--halt now`) asks the agent to stop it, and
    /// it ends as [`Ending::Cancelled`].
    pub fn execute(
        &self,
        job: JobSpec,
        stdout: &mut dyn Write,
        stderr: &mut dyn Write,
        cancel: Option<&CancelToken>,
    ) -> Result<Execution, AgentError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = unbounded();
        {
            let mut pending = lock(&self.pending);
            if let Some(lost) = &pending.lost {
                return Err(AgentError::Lost(lost.clone()));
            }
            pending.jobs.insert(id, tx);
        }
        let (grace, timeout) = (job.grace, job.timeout);
        let started = SystemTime::now();
        let start = Instant::now();
        let sent = self.tx.send(Some(ToAgent::Start { id, job }));
        if sent.is_err() {
            lock(&self.pending).jobs.remove(&id);
            return Err(AgentError::Lost("the agent's session is closed".into()));
        }
        // The agent applies the timeout; this is the backstop for a host that
        // stops answering altogether.
        let backstop = timeout.map(|t| start + t + grace + KILL_ANSWER);
        let cancelled = cancel.map_or_else(never, CancelToken::subscribe);
        let mut kill_sent: Option<Instant> = None;
        let mut output_error = None;
        let kill = |kill_sent: &mut Option<Instant>| {
            if kill_sent.is_none() {
                *kill_sent = Some(Instant::now());
                let _ = self.tx.send(Some(ToAgent::Kill { id }));
            }
        };
        loop {
            let watch_cancel = if kill_sent.is_none() {
                &cancelled
            } else {
                &never()
            };
            let event = select! {
                recv(rx) -> event => event.unwrap_or_else(|_| Event::Lost("the agent's session ended".into())),
                recv(watch_cancel) -> _ => {
                    kill(&mut kill_sent);
                    continue;
                }
                default(Duration::from_millis(500)) => {
                    let late = kill_sent.is_some_and(|at| at.elapsed() > grace + KILL_ANSWER)
                        || backstop.is_some_and(|at| Instant::now() > at);
                    if late {
                        lock(&self.pending).jobs.remove(&id);
                        return Err(AgentError::Lost(
                            "the agent did not answer: its host seems hung".into(),
                        ));
                    }
                    continue;
                }
            };
            match event {
                Event::Out(is_err, data) => {
                    let out: &mut dyn Write = if is_err { stderr } else { stdout };
                    if output_error.is_none()
                        && let Err(err) = out.write_all(&data)
                    {
                        // Nowhere to put its output: stop it.
                        output_error = Some(err);
                        kill(&mut kill_sent);
                    }
                }
                Event::Done(FromAgent::Done {
                    status,
                    ending,
                    runtime,
                    sent,
                    received,
                    ..
                }) => {
                    if let Some(err) = output_error {
                        return Err(AgentError::Output(err));
                    }
                    return Ok(Execution {
                        status: ExitStatus::from_raw(status),
                        ending: ending.into(),
                        started,
                        runtime,
                        sent,
                        received,
                    });
                }
                Event::Done(FromAgent::Failed { error, .. }) => {
                    return Err(AgentError::Failed(error));
                }
                Event::Done(_) => {}
                Event::Lost(reason) => return Err(AgentError::Lost(reason)),
            }
        }
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        // End of input: the agent stops what still runs and exits, and so does ssh.
        let _ = self.tx.send(None);
        let mut ssh = lock(&self.ssh);
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            match ssh.try_wait() {
                Ok(Some(_)) | Err(_) => return,
                Ok(None) => std::thread::sleep(Duration::from_millis(5)),
            }
        }
        let _ = ssh.kill();
        let _ = ssh.wait();
    }
}

/// The reader thread: the first frame must be `Ready`; then each frame goes to its
/// job. At the end of the session every waiting job is told it was lost.
fn read_agent(
    stdout: std::process::ChildStdout,
    pending: &Mutex<Pending>,
    ready: &Sender<Result<(), String>>,
    said: &Mutex<Vec<u8>>,
) {
    let mut input = BufReader::with_capacity(256 * 1024, stdout);
    let reason = |what: String| {
        // Give the stderr reader a moment to take the session's last words.
        std::thread::sleep(Duration::from_millis(50));
        let said = String::from_utf8_lossy(&lock(said)).trim().to_owned();
        match said.is_empty() {
            true => what,
            false => format!("{what}: {}", crate::lines::excerpt(&said, 300)),
        }
    };
    match read_frame::<FromAgent>(&mut input) {
        Ok(Some(FromAgent::Ready { protocol })) if protocol == PROTOCOL => {
            let _ = ready.send(Ok(()));
        }
        Ok(Some(FromAgent::Ready { protocol })) => {
            let _ = ready.send(Err(format!(
                "the agent speaks protocol {protocol}, this concur {PROTOCOL}: install the same concur there"
            )));
            return;
        }
        Ok(_) | Err(_) => {
            let _ = ready.send(Err(reason("its session ended first".into())));
            return;
        }
    }
    let ended = loop {
        match read_frame::<FromAgent>(&mut input) {
            Ok(Some(FromAgent::Out { id, stderr, data })) => {
                if let Some(job) = lock(pending).jobs.get(&id) {
                    let _ = job.send(Event::Out(stderr, data));
                }
            }
            Ok(Some(answer)) => {
                if let Some(id) = answer.answers()
                    && let Some(job) = lock(pending).jobs.remove(&id)
                {
                    let _ = job.send(Event::Done(answer));
                }
            }
            Ok(None) => break "the agent's session ended".to_owned(),
            Err(err) => break format!("the agent's session broke: {err}"),
        }
    };
    let reason = reason(ended);
    let mut pending = lock(pending);
    pending.lost = Some(reason.clone());
    for (_, job) in pending.jobs.drain() {
        let _ = job.send(Event::Lost(reason.clone()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pipe() -> (std::fs::File, std::fs::File) {
        // Close-on-exec, as the agent's real stdin and stdout are to its jobs.
        let (r, w) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).unwrap();
        (std::fs::File::from(r), std::fs::File::from(w))
    }

    #[test]
    fn serve_runs_jobs_streams_output_and_stops_them_when_input_ends() {
        let (to_agent_r, mut to_agent_w) = pipe();
        let (from_agent_r, from_agent_w) = pipe();
        let agent = std::thread::spawn(move || serve(to_agent_r, from_agent_w));
        let dir = tempfile::tempdir().unwrap();
        let job = |line: &str| JobSpec {
            line: line.into(),
            workdir: dir.path().as_os_str().as_bytes().to_vec(),
            grace: Duration::from_millis(200),
            linger: Duration::from_millis(100),
            ..JobSpec::default()
        };
        let mut env_job = job("echo \"$V\" in \"$PWD\"; echo err >&2; exit 3");
        env_job.env = vec![("V".into(), b"a b".to_vec())];
        let mut stdin_job = job("tr a-z A-Z");
        stdin_job.stdin = Some(b"piped\n".to_vec());
        let mut timed = job("sleep 30");
        timed.timeout = Some(Duration::from_millis(100));
        let mut missing_dir = job("echo never");
        missing_dir.workdir = b"/nonexistent/dir".to_vec();
        for (id, job) in [(1, env_job), (2, stdin_job), (3, timed), (4, missing_dir)] {
            write_frame(&mut to_agent_w, &ToAgent::Start { id, job }).unwrap();
        }
        let mut input = BufReader::new(from_agent_r);
        let mut next = || read_frame::<FromAgent>(&mut input).unwrap();
        assert!(matches!(
            next(),
            Some(FromAgent::Ready { protocol: PROTOCOL })
        ));
        let mut out: HashMap<(u64, bool), Vec<u8>> = HashMap::new();
        let mut ends = HashMap::new();
        let mut take = |frame: FromAgent, ends: &mut HashMap<u64, (Option<i32>, Ended)>| match frame
        {
            FromAgent::Out { id, stderr, data } => out
                .entry((id, stderr))
                .or_default()
                .extend_from_slice(&data),
            FromAgent::Done {
                id, status, ending, ..
            } => {
                ends.insert(id, (ExitStatus::from_raw(status).code(), ending));
            }
            other => panic!("unexpected {other:?}"),
        };
        while ends.len() < 4 {
            take(next().unwrap(), &mut ends);
        }
        // Job 5 is still running when the input ends: the agent stops it.
        write_frame(
            &mut to_agent_w,
            &ToAgent::Start {
                id: 5,
                job: job("echo started; sleep 30"),
            },
        )
        .unwrap();
        match next().unwrap() {
            FromAgent::Out { id: 5, data, .. } => assert_eq!(data, b"started\n"),
            other => panic!("unexpected {other:?}"),
        }
        drop(to_agent_w);
        while let Some(frame) = next() {
            take(frame, &mut ends);
        }
        agent.join().unwrap().unwrap();
        let here = dir.path().display();
        assert_eq!(
            String::from_utf8_lossy(&out[&(1, false)]),
            format!("a b in {here}\n")
        );
        assert_eq!(out[&(1, true)], b"err\n");
        assert_eq!(out[&(2, false)], b"PIPED\n");
        assert!(
            String::from_utf8_lossy(&out[&(4, true)]).contains("cannot enter /nonexistent/dir")
        );
        assert!(
            matches!(ends[&1], (Some(3), Ended::Exited)),
            "{:?}",
            ends[&1]
        );
        assert!(matches!(ends[&2], (Some(0), Ended::Exited)));
        assert!(matches!(ends[&3], (_, Ended::TimedOut)), "{:?}", ends[&3]);
        assert!(
            matches!(ends[&4], (Some(255), Ended::Exited)),
            "{:?}",
            ends[&4]
        );
        assert!(matches!(ends[&5], (_, Ended::Cancelled)), "{:?}", ends[&5]);
    }
}
