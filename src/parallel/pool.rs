//! A real process pool: the book's `ProcessPoolExecutor`, with its pickle-over-a-pipe
//! made explicit.
//!
//! Workers are the `concur` binary itself, started as `concur worker --task NAME` (a
//! hidden subcommand). Tasks go to a worker's stdin and results come back on its stdout
//! as frames: a 4-byte little-endian length, then the value in postcard (a compact
//! serde format). A request carries a chunk of `(index, task)`. The worker first
//! acknowledges the request, then answers each task as soon as it is done, so the
//! parent always knows where a worker was when it died:
//!
//! * before the acknowledgement (it died idle, or was stopped), no task was started:
//!   the whole chunk goes back to the queue and costs nothing;
//! * after it, the task being run fails, reported with its item, and the rest of the
//!   chunk goes back to the queue.
//!
//! A fresh worker takes the dead one's place.
//!
//! Each worker slot is driven by one thread that owns its worker. It talks to it
//! through non-blocking pipes and `poll(2)`, together with the cancel token's
//! descriptor and the running task's deadlines, so it never waits on a worker blindly:
//!
//! * a task that runs past [`PoolOptions::task_timeout`] has its worker killed, fails
//!   with a message naming the task and the timeout, and the worker is replaced;
//! * a task that runs past [`PoolOptions::warn_after`] is reported once to
//!   [`PoolOptions::log`] (`worker 1234 has run task 7 (a, b) for 60 s`), so a hang is
//!   never silent, even with no timeout;
//! * on cancel, each slot kills and reaps its own worker at once, whatever it is doing,
//!   and no slot starts a worker after the cancel.

use std::fmt;
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::num::NonZeroUsize;
use std::os::fd::{AsFd, BorrowedFd};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, select};
use rustix::event::{PollFd, PollFlags, Timespec, poll};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::process::CancelToken;
use crate::process::quote_backslash_bytes;
use crate::remote::{Host, Hosts};
use crate::sink::Sink;

/// A kind of work a pool worker can do: the task travels to a worker process (with
/// serde), runs there, and its output travels back.
///
/// Any program can run its own tasks on a pool: implement `Task`, call
/// [`worker_main::<YourTask>()`](worker_main) first thing in `main`, and pass the
/// program itself as [`PoolOptions::program`] (`std::env::current_exe()`); see
/// [`worker_main`], whose example is a whole program with its own task. (`concur`
/// registers its own, gcd, in [`serve_named`].)
pub trait Task:
    Clone + Send + Sync + fmt::Display + Serialize + DeserializeOwned + 'static
{
    /// What one task produces.
    type Output: Send + Serialize + DeserializeOwned + 'static;
    /// The name workers know the task by (`concur worker --task NAME`).
    const NAME: &'static str;
    /// Does the work.
    fn run(&self) -> Self::Output;
}

/// The largest frame accepted, so that a corrupt length cannot exhaust memory.
const MAX_FRAME: usize = 64 << 20;

#[derive(Serialize, Deserialize)]
struct Request<T> {
    items: Vec<(u64, T)>,
}

/// What a worker sends back.
#[derive(Serialize, Deserialize)]
enum FromWorker<O> {
    /// The request was read whole; its tasks start now.
    Accepted,
    /// One task's result.
    Done { index: u64, output: O },
}

/// Writes one frame: the length, then the postcard bytes.
pub fn write_frame(out: &mut impl Write, value: &impl Serialize) -> io::Result<()> {
    out.write_all(&encode(value)?)
}

/// One frame as bytes: the length, then the postcard bytes.
fn encode(value: &impl Serialize) -> io::Result<Vec<u8>> {
    let body = postcard::to_stdvec(value).map_err(io::Error::other)?;
    let len = u32::try_from(body.len()).map_err(|_| io::Error::other("frame too large"))?;
    let mut frame = Vec::with_capacity(4 + body.len());
    frame.extend_from_slice(&len.to_le_bytes());
    frame.extend_from_slice(&body);
    Ok(frame)
}

fn frame_len(header: [u8; 4]) -> io::Result<usize> {
    let len = u32::from_le_bytes(header) as usize;
    if len > MAX_FRAME {
        return Err(io::Error::other(format!(
            "frame of {len} bytes is over the limit"
        )));
    }
    Ok(len)
}

/// Reads one frame; `Ok(None)` at a clean end of stream.
pub fn read_frame<T: DeserializeOwned>(input: &mut impl Read) -> io::Result<Option<T>> {
    let mut len = [0u8; 4];
    let mut filled = 0;
    while filled < len.len() {
        match input.read(&mut len[filled..]) {
            // End of stream between frames is clean; inside a length it is not.
            Ok(0) if filled == 0 => return Ok(None),
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    let mut bytes = vec![0; frame_len(len)?];
    input.read_exact(&mut bytes)?;
    postcard::from_bytes(&bytes)
        .map(Some)
        .map_err(io::Error::other)
}

/// Fault injection for tests, as `concur worker` options.
#[derive(Clone, Debug, Default)]
pub struct WorkerFaults {
    /// Abort (as a crash would) on reaching the task with this index.
    pub abort_on: Option<u64>,
    /// Hang (never answer) on reaching the task with this index, as a task stuck on a
    /// lock or a dead disk would: only the end of the worker's input ends it then.
    pub hang_on: Option<u64>,
    /// Exit without a word on receiving a second request, as a worker killed while idle
    /// between requests would, if this file can still be created: once per run, for
    /// the first worker to create it.
    pub idle_death_marker: Option<PathBuf>,
}

impl WorkerFaults {
    fn dies_idle_now(&self, requests: u64) -> bool {
        requests == 1
            && self.idle_death_marker.as_ref().is_some_and(|marker| {
                std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .open(marker)
                    .is_ok()
            })
    }
}

/// The worker's side: runs the tasks it is sent until its input ends.
pub fn serve<T: Task>(
    input: impl Read,
    output: impl Write,
    faults: WorkerFaults,
) -> io::Result<()> {
    let mut input = BufReader::new(input);
    let mut output = BufWriter::new(output);
    let mut requests = 0u64;
    while let Some(request) = read_frame::<Request<T>>(&mut input)? {
        if faults.dies_idle_now(requests) {
            std::process::exit(3);
        }
        requests += 1;
        write_frame(&mut output, &FromWorker::<T::Output>::Accepted)?;
        output.flush()?;
        for (index, task) in request.items {
            if faults.abort_on == Some(index) {
                std::process::abort();
            }
            while faults.hang_on == Some(index) {
                thread::park();
            }
            write_frame(
                &mut output,
                &FromWorker::Done {
                    index,
                    output: task.run(),
                },
            )?;
            // Each answer goes out at once: it is how the parent knows how far a
            // worker got if it dies.
            output.flush()?;
        }
    }
    Ok(())
}

/// Makes this program a pool worker for `T` when [`map`] started it as one, and
/// returns otherwise: call it first thing in `main`, as Python's multiprocessing needs
/// `if __name__ == "__main__"`.
///
/// [`map`] starts each worker as `PROGRAM worker --task NAME` (with
/// [`PoolOptions::program`] your program, and `NAME` your [`Task::NAME`]). Started so,
/// this serves `T`'s tasks on stdin and stdout until the pool is done, then exits the
/// process (status 0, or 1 after saying why on stderr). It exits as soon as its stdin
/// ends, even in the middle of a task: the pool lets go of a worker only when it wants
/// nothing more from it (cancelled, timed out, or done). With other arguments it returns
/// at once, and `main` goes on. For several kinds of task, call it once for each: a
/// worker for another name returns, to be served by the next call.
///
/// What the worker must not do: write to stdout (that is the channel the results go
/// back on; print to stderr), or read stdin (the tasks come on it). A task that panics
/// or aborts kills its worker: that task fails, with its item named, and a new worker
/// takes the slot.
///
/// ```no_run
/// use concur::parallel::pool::{self, PoolOptions, Task};
/// use concur::process::CancelToken;
/// use serde::{Deserialize, Serialize};
/// use std::num::NonZeroUsize;
///
/// #[derive(Clone, Serialize, Deserialize)]
/// struct Square(u64);
///
/// impl std::fmt::Display for Square {
///     fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
///         write!(f, "square({})", self.0)
///     }
/// }
///
/// impl Task for Square {
///     type Output = u64;
///     const NAME: &'static str = "square";
///     fn run(&self) -> u64 {
///         self.0 * self.0
///     }
/// }
///
/// fn main() -> Result<(), Box<dyn std::error::Error>> {
///     pool::worker_main::<Square>(); // a worker never gets past this line
///     let options = PoolOptions::new(NonZeroUsize::new(2).unwrap(), std::env::current_exe()?);
///     let tasks: Vec<Square> = (1..=10).map(Square).collect();
///     let run = pool::map(&tasks, &options, &CancelToken::new()?)?;
///     let squares: Vec<u64> = run.results.into_iter().map(Result::unwrap).collect();
///     assert_eq!(squares[9], 100);
///     Ok(())
/// }
/// ```
pub fn worker_main<T: Task>() {
    let args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    let [first, flag, name, ..] = args.as_slice() else {
        return;
    };
    if first != "worker" || flag != "--task" || name.to_str() != Some(T::NAME) {
        return;
    }
    let served = watched_stdin()
        .and_then(|input| serve::<T>(input, io::stdout().lock(), WorkerFaults::default()));
    if let Err(err) = served {
        eprintln!("pool worker for {:?}: {err}", T::NAME);
        std::process::exit(1);
    }
    std::process::exit(0);
}

/// Serves the task registered under `name` on stdin and stdout (the hidden
/// `concur worker` subcommand).
pub fn serve_named(name: &str, faults: WorkerFaults) -> io::Result<()> {
    match name {
        super::gcd::GcdTask::NAME => {
            serve::<super::gcd::GcdTask>(watched_stdin()?, io::stdout().lock(), faults)
        }
        other => Err(io::Error::other(format!(
            "no task named {other:?} is registered"
        ))),
    }
}

/// The worker process's stdin, read by a thread of its own that ends the process as
/// soon as the input ends, even in the middle of a task.
///
/// The pool lets go of a worker's input only when it wants nothing more from it: it was
/// cancelled (Ctrl-C, SIGTERM), the task timed out, or the pool is done. Here that
/// shows only as the end of the input, and a worker busy with a long task would not
/// read it until the task was over. On another machine (`--hosts`), that is the only
/// sign there is: the local `ssh` is killed, and sshd closes the session's input.
/// So the tasks read the other end of a pipe this thread fills, and the end of the
/// real input exits the process (status 0) at once: nothing waits for its answers.
fn watched_stdin() -> io::Result<io::PipeReader> {
    let (reader, mut writer) = io::pipe()?;
    thread::Builder::new()
        .name("stdin-watch".into())
        .spawn(move || {
            let mut stdin = io::stdin().lock();
            let mut buf = [0u8; 64 * 1024];
            loop {
                match stdin.read(&mut buf) {
                    Ok(0) => std::process::exit(0),
                    Ok(n) => {
                        if writer.write_all(&buf[..n]).is_err() {
                            // The tasks' side is gone: the worker is ending anyway.
                            return;
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(_) => std::process::exit(0),
                }
            }
        })?;
    Ok(reader)
}

/// By default, a task still running after this long is reported once.
pub const DEFAULT_WARN_AFTER: Duration = Duration::from_secs(60);

/// How to run a pool.
#[derive(Clone, Debug)]
pub struct PoolOptions {
    /// Worker processes.
    pub workers: NonZeroUsize,
    /// Tasks per request [default: enough for about four requests per worker].
    pub chunk: Option<NonZeroUsize>,
    /// The program to start as a worker (`concur` itself).
    pub program: PathBuf,
    /// Extra arguments for every worker (fault injection in tests).
    pub worker_args: Vec<String>,
    /// A task that runs longer has its worker killed and replaced, and fails. A worker
    /// that does not take a request within it is replaced too (no task is lost).
    /// `None`: tasks may run for ever.
    pub task_timeout: Option<Duration>,
    /// A task still running after this long is reported once to `log`. `None`: never.
    pub warn_after: Option<Duration>,
    /// Where reports of long-running tasks go.
    pub log: Sink,
    /// Workers on other machines (`concur gcd --hosts`): then `workers` must be the
    /// hosts' slots in all, and slot N's worker runs on the host of slot N.
    pub remote: Option<RemoteWorkers>,
}

/// Workers started over SSH: `ssh host concur worker --task NAME`, speaking the same
/// frames over the SSH channel as a local worker over its pipes.
#[derive(Clone, Debug)]
pub struct RemoteWorkers {
    /// The hosts, connected.
    pub hosts: Arc<Hosts>,
    /// The `concur` executable on the hosts (`concur`: found on their PATH).
    pub program: String,
}

impl RemoteWorkers {
    /// The host of worker slot `slot` (0-based), unless it is this machine.
    fn host(&self, slot: usize) -> Option<Arc<Host>> {
        Some(self.hosts.for_slot(slot + 1)).filter(|h| !h.login.is_local())
    }
}

impl PoolOptions {
    /// `workers` workers running `program`, with automatic chunks, no task timeout,
    /// and reports after [`DEFAULT_WARN_AFTER`] that go nowhere until `log` is set.
    pub fn new(workers: NonZeroUsize, program: impl Into<PathBuf>) -> Self {
        Self {
            workers,
            chunk: None,
            program: program.into(),
            worker_args: Vec::new(),
            task_timeout: None,
            warn_after: Some(DEFAULT_WARN_AFTER),
            log: Sink::null(),
            remote: None,
        }
    }

    /// Tasks per request for `tasks` tasks: `chunk`, or about four requests per worker
    /// (Python's `map` sends one task per request unless told otherwise).
    pub fn chunk_for(&self, tasks: usize) -> usize {
        self.chunk.map_or_else(
            || tasks.div_ceil(self.workers.get() * 4).max(1),
            NonZeroUsize::get,
        )
    }
}

/// A task that produced no result.
#[derive(Clone, Debug, PartialEq, Eq, Error, Serialize)]
#[error("task {index} {item}: {reason}")]
pub struct TaskFailure {
    /// Its position in the input.
    pub index: usize,
    /// The task, as displayed.
    pub item: String,
    /// What happened.
    pub reason: String,
}

/// What a pool run produced.
#[derive(Debug)]
pub struct PoolRun<O> {
    /// One result per task, in input order.
    pub results: Vec<Result<O, TaskFailure>>,
    /// Workers started to replace dead ones.
    pub respawns: usize,
    /// Tasks per request.
    pub chunk: usize,
}

/// What stops a pool run as a whole.
#[derive(Debug, Error)]
pub enum PoolError {
    /// No worker could be started.
    #[error("cannot start worker {}", program.display())]
    Spawn {
        /// The worker program.
        program: PathBuf,
        /// What the OS said.
        #[source]
        source: io::Error,
    },
    /// The run was cancelled (Ctrl-C); every worker was stopped and reaped.
    #[error("cancelled")]
    Cancelled,
    /// More workers were asked for than the OS lets this process start: refused before
    /// any starts (past the thread budget, Rust aborts the whole process).
    #[error("{asked} workers asked for, but the OS allows about {allowed} here ({limit})")]
    TooManyWorkers {
        /// Workers asked for.
        asked: usize,
        /// Workers that could start.
        allowed: usize,
        /// The limit that says so, in words.
        limit: String,
    },
}

impl PoolError {
    /// Refuses `asked` workers (threads with default stacks, each holding
    /// `descriptors` descriptors) when the OS would not give them all.
    pub fn check_workers(asked: usize, descriptors: usize) -> Result<(), Self> {
        match crate::limits::worker_budget(crate::limits::DEFAULT_STACK, descriptors) {
            Some(budget) if asked > budget.threads => Err(Self::TooManyWorkers {
                asked,
                allowed: budget.threads,
                limit: budget.limit,
            }),
            _ => Ok(()),
        }
    }
}

/// Why a worker stopped answering.
#[derive(Debug)]
enum Stop {
    /// The cancel token fired.
    Cancelled,
    /// The current deadline passed.
    TimedOut,
    /// The worker's pipes closed or carried garbage: it died, or is broken.
    Died,
}

/// One worker process and its (non-blocking) pipes. Dropping it kills and reaps it.
struct Worker {
    child: Child,
    stdin: ChildStdin,
    stdout: ChildStdout,
    /// Bytes read from stdout that do not make a whole frame yet.
    inbox: Vec<u8>,
}

impl Worker {
    fn spawn(options: &PoolOptions, task: &str, slot: usize) -> io::Result<Self> {
        let remote = options
            .remote
            .as_ref()
            .and_then(|r| Some((r, r.host(slot)?)));
        let mut command = match remote {
            Some((remote, host)) => {
                let mut line = b"exec ".to_vec();
                let words = [remote.program.as_str(), "worker", "--task", task]
                    .into_iter()
                    .chain(options.worker_args.iter().map(String::as_str));
                for (i, word) in words.enumerate() {
                    if i > 0 {
                        line.push(b' ');
                    }
                    line.extend_from_slice(&quote_backslash_bytes(word.as_bytes()));
                }
                let argv = remote.hosts.ssh.argv(&host.login, &line);
                let mut command = Command::new(&argv[0]);
                command.args(&argv[1..]);
                command
            }
            None => {
                let mut command = Command::new(&options.program);
                command
                    .args(["worker", "--task", task])
                    .args(&options.worker_args);
                command
            }
        };
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()?;
        let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            let _ = child.kill();
            let _ = child.wait();
            return Err(io::Error::other("the worker's pipes were not set up"));
        };
        // Only our ends become non-blocking: each end of a pipe is its own open file,
        // so the worker's blocking reads and writes are unaffected.
        for fd in [stdin.as_fd(), stdout.as_fd()] {
            let flags = rustix::fs::fcntl_getfl(fd)?;
            rustix::fs::fcntl_setfl(fd, flags | rustix::fs::OFlags::NONBLOCK)?;
        }
        Ok(Self {
            child,
            stdin,
            stdout,
            inbox: Vec::new(),
        })
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Writes a whole frame, waiting for room until `clock`'s deadlines.
    fn send(&mut self, frame: &[u8], clock: &mut Clock<'_>) -> Result<(), Stop> {
        let mut rest = frame;
        while !rest.is_empty() {
            match (&self.stdin).write(rest) {
                Ok(n) => rest = &rest[n..],
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    clock.wait(self.stdin.as_fd(), PollFlags::OUT)?;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return Err(Stop::Died),
            }
        }
        Ok(())
    }

    /// Reads the next message, waiting until `clock`'s deadlines.
    fn receive<O: DeserializeOwned>(
        &mut self,
        clock: &mut Clock<'_>,
    ) -> Result<FromWorker<O>, Stop> {
        loop {
            if let Some(frame) = self.take_frame()? {
                return postcard::from_bytes(&frame).map_err(|_| Stop::Died);
            }
            let mut buf = [0u8; 8192];
            match self.stdout.read(&mut buf) {
                Ok(0) => return Err(Stop::Died),
                Ok(n) => self.inbox.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    clock.wait(self.stdout.as_fd(), PollFlags::IN)?;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return Err(Stop::Died),
            }
        }
    }

    /// The first whole frame's body, if the inbox holds one.
    fn take_frame(&mut self) -> Result<Option<Vec<u8>>, Stop> {
        let Some(header) = self.inbox.first_chunk::<4>() else {
            return Ok(None);
        };
        let len = frame_len(*header).map_err(|_| Stop::Died)?;
        if self.inbox.len() < 4 + len {
            return Ok(None);
        }
        let body = self.inbox[4..4 + len].to_vec();
        self.inbox.drain(..4 + len);
        Ok(Some(body))
    }

    /// Kills (if still running) and reaps; returns how it ended.
    fn reap(mut self) -> Option<ExitStatus> {
        let _ = self.child.kill();
        self.child.wait().ok()
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        // An idle worker would exit on the end of its input, but a stopped one never
        // would: kill, so that dropping a worker can never wait.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn describe(status: Option<ExitStatus>) -> String {
    use std::os::unix::process::ExitStatusExt;
    match status {
        Some(s) if s.signal().is_some() => {
            format!("the worker died of signal {}", s.signal().unwrap_or(0))
        }
        Some(s) => format!("the worker exited with {s}"),
        None => "the worker stopped answering".into(),
    }
}

/// The deadlines of what a worker is doing now, and the cancel token: everything a
/// wait on one of its pipes must wake up for.
struct Clock<'a> {
    cancel: &'a CancelToken,
    log: &'a Sink,
    pid: u32,
    /// What the worker is doing, for the report: `run task 7 (a, b)`, `not taken a
    /// request`.
    doing: String,
    started: Instant,
    warn_at: Option<Instant>,
    kill_at: Option<Instant>,
}

impl<'a> Clock<'a> {
    fn new(options: &'a PoolOptions, cancel: &'a CancelToken, pid: u32) -> Self {
        Self {
            cancel,
            log: &options.log,
            pid,
            doing: String::new(),
            started: Instant::now(),
            warn_at: None,
            kill_at: None,
        }
    }

    /// Starts timing a new piece of work.
    fn start(&mut self, doing: String, options: &PoolOptions) {
        let now = Instant::now();
        self.doing = doing;
        self.started = now;
        self.warn_at = options.warn_after.map(|d| now + d);
        self.kill_at = options.task_timeout.map(|d| now + d);
    }

    /// Waits until `fd` is ready for `flags`, the cancel token fires, or the kill
    /// deadline passes; reports once on the way if the warning deadline passes.
    fn wait(&mut self, fd: BorrowedFd<'_>, flags: PollFlags) -> Result<(), Stop> {
        loop {
            if self.cancel.is_cancelled() {
                return Err(Stop::Cancelled);
            }
            let now = Instant::now();
            if self.kill_at.is_some_and(|at| now >= at) {
                return Err(Stop::TimedOut);
            }
            if self.warn_at.is_some_and(|at| now >= at) {
                self.warn_at = None;
                let (pid, doing) = (self.pid, &self.doing);
                let secs = now.duration_since(self.started).as_secs_f64();
                let digits = usize::from(secs < 10.0);
                self.log
                    .send(|| format!("worker {pid} has {doing} for {secs:.digits$} s"));
            }
            let wake = [self.warn_at, self.kill_at].into_iter().flatten().min();
            // A wake-up a little early only goes round the loop once more.
            let timeout = wake.map(|at| {
                let left = at.saturating_duration_since(now);
                Timespec {
                    tv_sec: left.as_secs() as _,
                    tv_nsec: left.subsec_nanos() as _,
                }
            });
            let mut fds = [
                PollFd::from_borrowed_fd(fd, flags),
                PollFd::from_borrowed_fd(self.cancel.fd(), PollFlags::IN),
            ];
            match poll(&mut fds, timeout.as_ref()) {
                Ok(_) if !fds[0].revents().is_empty() => return Ok(()),
                Ok(_) | Err(rustix::io::Errno::INTR) => {}
                Err(_) => return Err(Stop::Died),
            }
        }
    }
}

/// A chunk of tasks, and how many workers have died before accepting it.
struct Chunk<T> {
    items: Vec<(u64, T)>,
    refusals: u32,
}

/// After this many workers die before accepting the same chunk, its tasks fail: the
/// request itself is what kills them.
const MAX_REFUSALS: u32 = 3;

type Outcome<O> = (usize, Result<O, TaskFailure>);

struct Channels<T: Task> {
    queue: Receiver<Chunk<T>>,
    requeue: Sender<Chunk<T>>,
    done: Receiver<()>,
    results: Sender<Outcome<T::Output>>,
}

impl<T: Task> Channels<T> {
    fn fail(&self, items: &[(u64, T)], reason: &str) {
        for (index, item) in items {
            let failure = TaskFailure {
                index: *index as usize,
                item: item.to_string(),
                reason: reason.to_owned(),
            };
            let _ = self.results.send((*index as usize, Err(failure)));
        }
    }
}

/// How one chunk went on one worker.
enum ChunkEnd {
    /// Every task answered; the worker is ready for more.
    Done,
    /// The worker never accepted the chunk: no task was started.
    NotAccepted(Stop),
    /// The worker stopped while running task `at` (a position in the chunk).
    Failed { at: usize, stop: Stop },
}

/// Runs one chunk on `worker`, sending each result as it comes.
fn run_chunk<T: Task>(
    worker: &mut Worker,
    chunk: &Chunk<T>,
    options: &PoolOptions,
    channels: &Channels<T>,
    cancel: &CancelToken,
) -> ChunkEnd {
    let mut clock = Clock::new(options, cancel, worker.pid());
    clock.start("not taken a request".into(), options);
    let accepted = encode(&Request {
        items: chunk.items.clone(),
    })
    .map_err(|_| Stop::Died)
    .and_then(|frame| worker.send(&frame, &mut clock))
    .and_then(|()| worker.receive::<T::Output>(&mut clock));
    match accepted {
        Ok(FromWorker::Accepted) => {}
        Ok(FromWorker::Done { .. }) => return ChunkEnd::NotAccepted(Stop::Died),
        Err(stop) => return ChunkEnd::NotAccepted(stop),
    }
    for (at, (index, item)) in chunk.items.iter().enumerate() {
        clock.start(format!("run task {index} {item}"), options);
        match worker.receive::<T::Output>(&mut clock) {
            Ok(FromWorker::Done { index: got, output }) if got == *index => {
                let _ = channels.results.send((*index as usize, Ok(output)));
            }
            Ok(_) => {
                return ChunkEnd::Failed {
                    at,
                    stop: Stop::Died,
                };
            }
            Err(stop) => return ChunkEnd::Failed { at, stop },
        }
    }
    ChunkEnd::Done
}

/// Why a worker was killed at the task timeout: it `ran` a task past it, or did not
/// take its request within it.
fn timeout_reason(options: &PoolOptions, ran: bool) -> String {
    let timeout = options.task_timeout.unwrap_or_default();
    if ran {
        format!("ran past the task timeout of {timeout:?}; the worker was killed")
    } else {
        format!("did not take its request within the task timeout of {timeout:?}; it was killed")
    }
}

/// If slot `slot`'s worker ran over SSH and its connection is gone (ssh exits 255
/// when it fails, and the host's master connection is down too), the host.
fn lost_host(options: &PoolOptions, slot: usize, status: Option<ExitStatus>) -> Option<Arc<Host>> {
    let remote = options.remote.as_ref()?;
    let host = remote.host(slot)?;
    let code = status.and_then(|s| s.code());
    remote
        .hosts
        .ssh
        .connection_lost(&host.login, code)
        .then_some(host)
}

/// A worker's host was lost: its tasks go back to the queue (they never reported),
/// and the slot waits for the host to come back. Returns false when the slot should
/// end: the run is over, cancelled, or no host is left (then every queued task
/// fails, naming each host's error).
fn wait_for_host<T: Task>(
    host: &Host,
    options: &PoolOptions,
    channels: &Channels<T>,
    cancelled: &Receiver<()>,
) -> bool {
    let Some(remote) = &options.remote else {
        return false;
    };
    if host.mark_down("the connection was lost".into()) {
        options.log.send(|| {
            format!(
                "lost the connection to {}: its tasks go back to the queue",
                host.login
            )
        });
    }
    if let Some(errors) = remote.hosts.all_down() {
        let reason = format!("no host is left ({errors})");
        while let Ok(chunk) = channels.queue.try_recv() {
            channels.fail(&chunk.items, &reason);
        }
        return false;
    }
    loop {
        let Some(retry_at) = host.revive(&remote.hosts.ssh) else {
            options.log.send(|| format!("{} is back", host.login));
            return true;
        };
        select! {
            recv(channels.done) -> _ => return false,
            recv(cancelled) -> _ => return false,
            recv(crossbeam_channel::at(retry_at)) -> _ => {}
        }
    }
}

/// One worker slot: takes chunks from the queue and runs them on its worker,
/// replacing the worker when it dies. Returns how many replacements it started.
fn drive<T: Task>(
    mut worker: Option<Worker>,
    slot: usize,
    options: &PoolOptions,
    channels: &Channels<T>,
    cancel: &CancelToken,
) -> usize {
    let cancelled = cancel.subscribe();
    let mut respawns = 0;
    loop {
        let chunk = select! {
            recv(channels.queue) -> chunk => match chunk { Ok(chunk) => chunk, Err(_) => break },
            recv(channels.done) -> _ => break,
            recv(cancelled) -> _ => break,
        };
        // A chunk and the cancel can be ready together; the cancel wins, and no worker
        // starts after it.
        if cancel.is_cancelled() {
            break;
        }
        let mut current = match worker.take() {
            Some(w) => w,
            None => match Worker::spawn(options, T::NAME, slot) {
                Ok(w) => {
                    respawns += 1;
                    w
                }
                Err(err) => {
                    let reason = format!("no worker to run it: cannot start one ({err})");
                    channels.fail(&chunk.items, &reason);
                    continue;
                }
            },
        };
        match run_chunk(&mut current, &chunk, options, channels, cancel) {
            ChunkEnd::Done => worker = Some(current),
            ChunkEnd::NotAccepted(Stop::Cancelled)
            | ChunkEnd::Failed {
                stop: Stop::Cancelled,
                ..
            } => {
                break; // `current` is killed and reaped as it drops
            }
            ChunkEnd::NotAccepted(stop) => {
                let status = current.reap();
                if let Some(host) = lost_host(options, slot, status) {
                    let _ = channels.requeue.send(chunk);
                    if wait_for_host(&host, options, channels, &cancelled) {
                        continue;
                    }
                    break;
                }
                let refusals = chunk.refusals + 1;
                if refusals >= MAX_REFUSALS {
                    let why = match stop {
                        Stop::TimedOut => timeout_reason(options, false),
                        _ => describe(status),
                    };
                    let reason = format!(
                        "{refusals} workers in a row stopped before taking it (the last: {why})"
                    );
                    channels.fail(&chunk.items, &reason);
                } else {
                    let _ = channels.requeue.send(Chunk {
                        items: chunk.items,
                        refusals,
                    });
                }
            }
            ChunkEnd::Failed { at, stop } => {
                let status = current.reap();
                if let Some(host) = lost_host(options, slot, status) {
                    // The task being run never reported: it is not failed, it runs
                    // again with the rest.
                    let _ = channels.requeue.send(Chunk {
                        items: chunk.items[at..].to_vec(),
                        refusals: 0,
                    });
                    if wait_for_host(&host, options, channels, &cancelled) {
                        continue;
                    }
                    break;
                }
                let reason = match stop {
                    Stop::TimedOut => timeout_reason(options, true),
                    _ => describe(status),
                };
                channels.fail(&chunk.items[at..=at], &reason);
                let rest = chunk.items[at + 1..].to_vec();
                if !rest.is_empty() {
                    let _ = channels.requeue.send(Chunk {
                        items: rest,
                        refusals: 0,
                    });
                }
            }
        }
    }
    respawns
}

/// Runs every task on a pool of worker processes and returns one result per task, in
/// input order. Workers are started here and stopped (and reaped) before it returns,
/// including when `cancel` fires, which makes it return [`PoolError::Cancelled`] at
/// once: every slot kills its own worker, whatever it is doing.
///
/// The worker processes are `options.program` started as `PROGRAM worker --task NAME`;
/// a program of one's own answers that with [`worker_main`] (see its example). The
/// `concur` binary answers it for [`gcd`](crate::parallel::gcd):
///
/// ```no_run
/// use std::num::NonZeroUsize;
/// use concur::parallel::{gcd::GcdTask, pool::{self, PoolOptions}};
/// use concur::process::CancelToken;
///
/// let options = PoolOptions::new(NonZeroUsize::new(2).unwrap(), "concur");
/// let tasks = vec![GcdTask(1963309, 2265973), GcdTask(2030677, 3814172)];
/// let run = pool::map(&tasks, &options, &CancelToken::new().unwrap()).unwrap();
/// assert_eq!(run.results.len(), 2);
/// ```
pub fn map<T: Task>(
    tasks: &[T],
    options: &PoolOptions,
    cancel: &CancelToken,
) -> Result<PoolRun<T::Output>, PoolError> {
    let spawn_error = |source| PoolError::Spawn {
        program: options.program.clone(),
        source,
    };
    // Each slot is a driver thread here holding the worker's two pipe ends.
    PoolError::check_workers(options.workers.get(), 2)?;
    let mut workers = Vec::with_capacity(options.workers.get());
    for slot in 0..options.workers.get() {
        if cancel.is_cancelled() {
            return Err(PoolError::Cancelled);
        }
        workers.push(Worker::spawn(options, T::NAME, slot).map_err(spawn_error)?);
    }
    let chunk = options.chunk_for(tasks.len());
    let (queue_tx, queue_rx) = crossbeam_channel::unbounded::<Chunk<T>>();
    let (done_tx, done_rx) = crossbeam_channel::bounded::<()>(0);
    let (results_tx, results_rx) = crossbeam_channel::unbounded::<Outcome<T::Output>>();
    let indexed: Vec<(u64, T)> = tasks
        .iter()
        .cloned()
        .enumerate()
        .map(|(i, t)| (i as u64, t))
        .collect();
    for piece in indexed.chunks(chunk) {
        let _ = queue_tx.send(Chunk {
            items: piece.to_vec(),
            refusals: 0,
        });
    }
    let channels = Channels {
        queue: queue_rx,
        requeue: queue_tx,
        done: done_rx,
        results: results_tx,
    };
    let mut results: Vec<Option<Result<T::Output, TaskFailure>>> =
        (0..tasks.len()).map(|_| None).collect();
    let cancelled = cancel.subscribe();
    let respawns = thread::scope(|s| {
        let drivers: Vec<_> = workers
            .into_iter()
            .enumerate()
            .map(|(slot, worker)| {
                let channels = &channels;
                s.spawn(move || drive(Some(worker), slot, options, channels, cancel))
            })
            .collect();
        let mut received = 0;
        while received < tasks.len() {
            select! {
                recv(results_rx) -> outcome => {
                    let Ok((index, result)) = outcome else { break };
                    if results[index].is_none() {
                        received += 1;
                    }
                    results[index] = Some(result);
                }
                recv(cancelled) -> _ => break,
            }
        }
        drop(done_tx);
        drivers
            .into_iter()
            .map(|d| d.join().unwrap_or(0))
            .sum::<usize>()
    });
    if cancel.is_cancelled() {
        return Err(PoolError::Cancelled);
    }
    let results = results
        .into_iter()
        .enumerate()
        .map(|(index, r)| {
            r.unwrap_or_else(|| {
                Err(TaskFailure {
                    index,
                    item: tasks[index].to_string(),
                    reason: "no result came back".into(),
                })
            })
        })
        .collect();
    Ok(PoolRun {
        results,
        respawns,
        chunk,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(workers: usize, chunk: Option<usize>) -> PoolOptions {
        PoolOptions {
            chunk: chunk.and_then(NonZeroUsize::new),
            ..PoolOptions::new(NonZeroUsize::new(workers).expect("positive"), "concur")
        }
    }

    #[test]
    fn automatic_chunks_give_about_four_requests_per_worker() {
        assert_eq!(options(2, None).chunk_for(640), 80);
        assert_eq!(options(2, None).chunk_for(10), 2);
        assert_eq!(options(8, None).chunk_for(3), 1);
        assert_eq!(options(2, None).chunk_for(0), 1);
        assert_eq!(options(2, Some(7)).chunk_for(640), 7);
    }

    #[test]
    fn frames_round_trip_and_end_cleanly_only_between_frames() {
        let mut bytes = Vec::new();
        write_frame(&mut bytes, &(3u64, "three".to_owned())).expect("write");
        write_frame(&mut bytes, &(4u64, "four".to_owned())).expect("write");
        let mut input = bytes.as_slice();
        let first: Option<(u64, String)> = read_frame(&mut input).expect("first");
        let second: Option<(u64, String)> = read_frame(&mut input).expect("second");
        let end: Option<(u64, String)> = read_frame(&mut input).expect("clean end");
        assert_eq!(first, Some((3, "three".to_owned())));
        assert_eq!(second, Some((4, "four".to_owned())));
        assert_eq!(end, None);

        // Cut inside the length, and inside the body: both are errors, not an end.
        for cut in [2, bytes.len() / 2 - 1] {
            let mut input = &bytes[..cut];
            let got = read_frame::<(u64, String)>(&mut input);
            assert!(got.is_err(), "cut at {cut}: {got:?}");
        }
    }

    #[test]
    fn oversized_lengths_are_refused_before_allocating() {
        let mut input: &[u8] = &u32::MAX.to_le_bytes();
        let got = read_frame::<u64>(&mut input);
        assert!(got.is_err_and(|e| e.to_string().contains("over the limit")));
    }
}
