//! `Cmd`: what to run and how to wire it, and the one-call ways to run it.

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::{self, Write};
use std::os::fd::OwnedFd;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::PathBuf;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use super::cancel::CancelToken;
use super::child::Child;
use super::error::{ProcessError, stderr_tail};
use super::group::{Feed, Group, Member, Stop};
use super::quote::quote_command;

/// Where a child's stdin comes from.
#[derive(Clone, Debug, Default)]
pub enum Input {
    /// `/dev/null`: the child reads nothing (the default, so jobs never eat the
    /// parent's own input).
    #[default]
    Null,
    /// The parent's stdin.
    Inherit,
    /// These bytes, written by the parent while it reads the child's output.
    Bytes(Arc<[u8]>),
    /// A pipe the parent never writes to and closes only once the child is done (or
    /// stopped): the child's end of input is the sign that its parent let it go. An
    /// `ssh` job's remote side watches for it to stop the remote process group.
    Held,
    /// Some bytes, then a byte range of a file (`run --pipepart`): the range goes from
    /// the page cache into the child's pipe by `splice(2)`, never through this process.
    Range(FileRange),
    /// The read end of a pipe that another thread writes (`run --round-robin`,
    /// `--tee`). The first child spawned with it takes it, so the parent keeps no copy:
    /// once that child is gone, the writer gets EPIPE. A later spawn reads nothing.
    Pipe(Arc<ReadEnd>),
}

/// The read end of a pipe that another thread writes, for the first child spawned
/// with it ([`Input::Pipe`]).
///
/// The writer may ask to hear when the end is taken: `taken`, a sender the writer
/// keeps the receiver of, is dropped when a child takes the end or when the end is
/// dropped untaken (no child will). Once every such sender is gone, every job that
/// shares the writer has taken its end, which `--tee` waits for before it writes, so
/// that no job ends (and frees its slot) before the last one has started.
#[derive(Debug)]
pub struct ReadEnd(std::sync::Mutex<Option<(OwnedFd, Option<crossbeam_channel::Sender<()>>)>>);

impl ReadEnd {
    /// `fd`, with the sender to drop when it is taken.
    pub fn new(fd: OwnedFd, taken: Option<crossbeam_channel::Sender<()>>) -> Self {
        Self(std::sync::Mutex::new(Some((fd, taken))))
    }

    /// The read end, the first time: later calls get `None`.
    pub fn take(&self) -> Option<OwnedFd> {
        let end = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        end.map(|(fd, _taken)| fd)
    }
}

/// Bytes `offset..offset + len` of a file, after a `head` of other bytes (a header).
#[derive(Clone, Debug)]
pub struct FileRange {
    file: Arc<File>,
    head: Arc<[u8]>,
    offset: u64,
    len: u64,
}

impl FileRange {
    /// Bytes `offset..offset + len` of `file`. A file that turns out shorter is an
    /// error of the child's run, not a shorter input.
    pub fn new(file: Arc<File>, offset: u64, len: u64) -> Self {
        Self {
            file,
            head: Arc::from(Vec::new()),
            offset,
            len,
        }
    }

    /// `head` fed before the range.
    pub fn with_head(mut self, head: Arc<[u8]>) -> Self {
        self.head = head;
        self
    }

    /// The file the range is of.
    pub fn file(&self) -> &File {
        &self.file
    }

    /// The bytes fed before the range.
    pub fn head(&self) -> &[u8] {
        &self.head
    }

    /// Where the range starts in the file, and its length.
    pub fn span(&self) -> (u64, u64) {
        (self.offset, self.len)
    }

    /// All it feeds: the head, then the range.
    pub(crate) fn feed(&self) -> Feed<'_> {
        Feed {
            head: &self.head,
            range: Some((&self.file, self.offset, self.len)),
        }
    }
}

impl Input {
    /// What the parent writes to the child's stdin, if it writes anything.
    pub(crate) fn feed(&self) -> Feed<'_> {
        match self {
            Input::Bytes(data) => Feed::from(&data[..]),
            Input::Range(range) => range.feed(),
            Input::Null | Input::Inherit | Input::Held | Input::Pipe(_) => Feed::default(),
        }
    }
}

/// Where a child's stdout or stderr goes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Stream {
    /// Collected by the parent (the default).
    #[default]
    Capture,
    /// Straight to the parent's own stream.
    Inherit,
    /// Discarded.
    Null,
}

/// The default pause between SIGTERM and SIGKILL when a child must be stopped.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(2);

/// The kernel's default pipe capacity.
const DEFAULT_PIPE_SIZE: usize = 64 * 1024;

/// The largest stdin pipe asked for: the default `pipe-max-size` of an unprivileged
/// process.
const MAX_PIPE_SIZE: usize = 1 << 20;

/// A command to run: program, arguments, environment, wiring, timeout.
///
/// The child always runs in a process group of its own, so stopping it (on timeout,
/// cancel or drop) also stops everything it started.
///
/// ```
/// use concur::process::Cmd;
///
/// let out = Cmd::new("echo").arg("Hello from the child!").run().unwrap();
/// assert_eq!(out.stdout, b"Hello from the child!\n");
///
/// let err = Cmd::new("sh").args(["-c", "echo oops >&2; exit 3"]).run().unwrap_err();
/// assert_eq!(err.to_string(), "sh -c 'echo oops >&2; exit 3' failed (exit status: 3): oops");
/// ```
#[derive(Clone, Debug)]
pub struct Cmd {
    program: OsString,
    /// The name the program is told it was called by, when not `program`.
    arg0: Option<OsString>,
    args: Vec<OsString>,
    env: Vec<(OsString, OsString)>,
    cwd: Option<PathBuf>,
    input: Input,
    stdout: Stream,
    stderr: Stream,
    timeout: Option<Duration>,
    grace: Duration,
    linger: Option<Duration>,
    /// Niceness added to the child's (`nice -n N`).
    nice: Option<i32>,
}

/// What a finished child produced (the book's `CompletedProcess`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Output {
    /// How it ended.
    pub status: ExitStatus,
    /// Its stdout, if captured.
    pub stdout: Vec<u8>,
    /// Its stderr, if captured.
    pub stderr: Vec<u8>,
}

/// How a run ended, as far as the parent is concerned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ending {
    /// It exited on its own (successfully or not).
    Exited,
    /// It outlived its timeout and was stopped.
    TimedOut,
    /// The run was cancelled and it was stopped.
    Cancelled,
}

/// A finished execution with its output in caller-chosen sinks.
#[derive(Clone, Copy, Debug)]
pub struct Execution {
    /// How it ended.
    pub status: ExitStatus,
    /// Whether it exited, timed out or was cancelled.
    pub ending: Ending,
    /// When it started (wall clock, for logs).
    pub started: SystemTime,
    /// How long it ran.
    pub runtime: Duration,
    /// Bytes written to its stdin.
    pub sent: u64,
    /// Bytes read from its stdout.
    pub received: u64,
}

/// Python's `returncode`: the exit code, or minus the signal number that killed it.
///
/// ```
/// use concur::process::{Cmd, returncode};
///
/// let out = Cmd::new("sh").args(["-c", "kill -TERM $$"]).output().unwrap();
/// assert_eq!(returncode(out.status), -15);
/// ```
pub fn returncode(status: ExitStatus) -> i32 {
    match (status.code(), status.signal()) {
        (Some(code), _) => code,
        (None, Some(signal)) => -signal,
        (None, None) => i32::MIN,
    }
}

impl Cmd {
    /// A command running `program` (looked up in `PATH`).
    pub fn new(program: impl AsRef<OsStr>) -> Self {
        Self {
            program: program.as_ref().to_owned(),
            arg0: None,
            args: Vec::new(),
            env: Vec::new(),
            cwd: None,
            input: Input::Null,
            stdout: Stream::Capture,
            stderr: Stream::Capture,
            timeout: None,
            grace: DEFAULT_GRACE,
            linger: None,
            nice: None,
        }
    }

    /// Runs the child `n` steps nicer (lower priority) than this process, as
    /// `nice -n N` does: it is started through `nice(1)`, so it sees its own name as
    /// `argv[0]` (not one set with [`arg0`](Self::arg0)) and a program that is
    /// missing fails with exit status 127 instead of a spawn error.
    ///
    /// ```
    /// use concur::process::Cmd;
    ///
    /// let out = Cmd::new("nice").nice(3).run().unwrap(); // `nice` prints its niceness
    /// let mine: i32 = String::from_utf8_lossy(&Cmd::new("nice").run().unwrap().stdout)
    ///     .trim()
    ///     .parse()
    ///     .unwrap();
    /// let theirs: i32 = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
    /// assert_eq!(theirs, (mine + 3).min(19));
    /// ```
    pub fn nice(mut self, n: i32) -> Self {
        self.nice = Some(n);
        self
    }

    /// The name the program sees as its `argv[0]` (and prints in its messages), when
    /// it is started by a path looked up beforehand: `ls`, not `/usr/bin/ls`.
    pub fn arg0(mut self, name: impl AsRef<OsStr>) -> Self {
        self.arg0 = Some(name.as_ref().to_owned());
        self
    }

    /// `sh -c script`.
    pub fn shell(script: impl AsRef<OsStr>) -> Self {
        Self::new("sh").arg("-c").arg(script)
    }

    /// Adds an argument.
    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> Self {
        self.args.push(arg.as_ref().to_owned());
        self
    }

    /// Adds arguments.
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.args
            .extend(args.into_iter().map(|a| a.as_ref().to_owned()));
        self
    }

    /// Sets an environment variable for the child (the rest is inherited).
    pub fn env(mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> Self {
        self.env
            .push((key.as_ref().to_owned(), value.as_ref().to_owned()));
        self
    }

    /// Runs the child in `dir`.
    pub fn current_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.cwd = Some(dir.into());
        self
    }

    /// Feeds `data` to the child's stdin while its output is read.
    pub fn stdin_bytes(mut self, data: impl Into<Vec<u8>>) -> Self {
        self.input = Input::Bytes(Arc::from(data.into()));
        self
    }

    /// Sets where stdin comes from.
    pub fn stdin(mut self, input: Input) -> Self {
        self.input = input;
        self
    }

    /// Sets where stdout goes.
    pub fn stdout(mut self, stream: Stream) -> Self {
        self.stdout = stream;
        self
    }

    /// Sets where stderr goes.
    pub fn stderr(mut self, stream: Stream) -> Self {
        self.stderr = stream;
        self
    }

    /// Stops the child (SIGTERM, grace, SIGKILL) if it runs longer than `timeout`.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// The pause between SIGTERM and SIGKILL when the child must be stopped.
    pub fn grace(mut self, grace: Duration) -> Self {
        self.grace = grace;
        self
    }

    /// Once the child itself exits, waits at most `linger` for processes it left
    /// behind (a backgrounded `sleep &`) to close its stdout and stderr, then stops its
    /// group. Without it, the output is collected until every writer has closed it.
    pub fn linger(mut self, linger: Duration) -> Self {
        self.linger = Some(linger);
        self
    }

    /// The configured linger time.
    pub fn get_linger(&self) -> Option<Duration> {
        self.linger
    }

    /// The configured timeout.
    pub fn get_timeout(&self) -> Option<Duration> {
        self.timeout
    }

    /// The configured grace period.
    pub fn get_grace(&self) -> Duration {
        self.grace
    }

    /// The command line, shell-quoted, for messages and logs.
    pub fn display(&self) -> String {
        quote_command(std::iter::once(&self.program).chain(&self.args))
    }

    /// The bytes configured with [`stdin_bytes`](Self::stdin_bytes), if any.
    pub fn input_bytes(&self) -> Option<&[u8]> {
        match &self.input {
            Input::Bytes(data) => Some(data),
            _ => None,
        }
    }

    /// Where stdin comes from.
    pub fn input(&self) -> &Input {
        &self.input
    }

    /// The program name, for "command not found".
    pub fn program(&self) -> &OsStr {
        &self.program
    }

    /// A `std::process::Command` wired as configured; `stdin` overrides the input.
    pub(crate) fn command(&self, stdin: Option<Stdio>, process_group: i32) -> Command {
        let mut command = match self.nice {
            Some(n) => {
                // By the name it was given (nice looks it up again), so that it still
                // sees that name as its argv[0].
                let mut nice = Command::new("nice");
                nice.arg("-n")
                    .arg(n.to_string())
                    .arg("--")
                    .arg(self.arg0.as_ref().unwrap_or(&self.program));
                nice
            }
            None => Command::new(&self.program),
        };
        command.args(&self.args).process_group(process_group);
        if let (Some(name), None) = (&self.arg0, self.nice) {
            std::os::unix::process::CommandExt::arg0(&mut command, name);
        }
        for (key, value) in &self.env {
            command.env(key, value);
        }
        if let Some(dir) = &self.cwd {
            command.current_dir(dir);
        }
        command.stdin(stdin.unwrap_or_else(|| match &self.input {
            Input::Null => Stdio::null(),
            Input::Inherit => Stdio::inherit(),
            Input::Bytes(_) | Input::Range(_) | Input::Held => Stdio::piped(),
            Input::Pipe(end) => end.take().map_or_else(Stdio::null, Stdio::from),
        }));
        command.stdout(stdio(self.stdout));
        command.stderr(stdio(self.stderr));
        command
    }

    /// The error for a failed spawn: "command not found" when the program is missing.
    pub(crate) fn spawn_error(&self, source: io::Error) -> ProcessError {
        if source.kind() == io::ErrorKind::NotFound && self.cwd.as_ref().is_none_or(|d| d.is_dir())
        {
            ProcessError::NotFound {
                program: self.program.to_string_lossy().into_owned(),
            }
        } else {
            ProcessError::Spawn {
                command: self.display(),
                source,
            }
        }
    }

    /// Starts the child without waiting (the book's `Popen`).
    pub fn spawn(&self) -> Result<Child, ProcessError> {
        let mut command = self.command(None, 0);
        let mut child = command.spawn().map_err(|e| self.spawn_error(e))?;
        // The Command may hold pipe ends; drop it so the parent keeps no stray copies.
        drop(command);
        let stdin = child.stdin.take().map(|p| File::from(OwnedFd::from(p)));
        let feeding = self.input.feed().len();
        if let Some(pipe) = &stdin
            && feeding > DEFAULT_PIPE_SIZE as u64
        {
            // A bigger pipe takes a large input (a `run --pipe` block) in a few
            // writes and wake-ups instead of one per 64 KiB. Best effort: the kernel
            // may refuse past /proc/sys/fs/pipe-max-size, and the default still works.
            let size = usize::try_from(feeding).map_or(MAX_PIPE_SIZE, |n| n.min(MAX_PIPE_SIZE));
            let _ = rustix::pipe::fcntl_setpipe_size(pipe, size);
        }
        let stdout = child.stdout.take().map(|p| File::from(OwnedFd::from(p)));
        let stderr = child.stderr.take().map(|p| File::from(OwnedFd::from(p)));
        let group = Group::new(Member::new(child));
        Ok(Child::new(self.clone(), group, stdin, stdout, stderr))
    }

    /// Runs to completion, writing stdout and stderr to the given sinks, honouring the
    /// timeout and `cancel`. This is the building block of every other way to run.
    pub fn execute(
        &self,
        stdout: &mut dyn Write,
        stderr: &mut dyn Write,
        cancel: Option<&CancelToken>,
    ) -> Result<Execution, ProcessError> {
        let started = SystemTime::now();
        let start = Instant::now();
        let mut child = self.spawn()?;
        let input = self.input.clone();
        let deadline = self.timeout.map(|t| start + t);
        let (pumped, received) = child
            .pump(input.feed(), stdout, stderr, deadline, cancel)
            .map_err(|source| ProcessError::Io {
                command: self.display(),
                source,
            })?;
        Ok(Execution {
            status: pumped.statuses[0],
            ending: match pumped.stop {
                None => Ending::Exited,
                Some(Stop::Deadline) => Ending::TimedOut,
                Some(Stop::Cancel) => Ending::Cancelled,
            },
            started,
            runtime: start.elapsed(),
            sent: pumped.sent,
            received,
        })
    }

    /// Runs to completion and collects the output, whatever the exit status. A timeout
    /// is an error that carries what was printed before it.
    pub fn output(&self) -> Result<Output, ProcessError> {
        self.output_until(None)
    }

    /// [`output`](Self::output), stopping the child (and failing with
    /// [`ProcessError::Cancelled`]) as soon as `cancel` fires.
    pub fn output_until(&self, cancel: Option<&CancelToken>) -> Result<Output, ProcessError> {
        let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
        let run = self.execute(&mut stdout, &mut stderr, cancel)?;
        let output = Output {
            status: run.status,
            stdout,
            stderr,
        };
        match run.ending {
            Ending::Exited => Ok(output),
            Ending::TimedOut => Err(ProcessError::TimedOut {
                command: self.display(),
                after: self.timeout.unwrap_or_default(),
                output: Box::new(output),
            }),
            Ending::Cancelled => Err(ProcessError::Cancelled {
                command: self.display(),
            }),
        }
    }

    /// Runs to completion and checks the exit status (`subprocess.run(..., check=True)`):
    /// an unsuccessful exit is an error naming the command, the status and the end of
    /// stderr.
    pub fn run(&self) -> Result<Output, ProcessError> {
        let output = self.output()?;
        if output.status.success() {
            Ok(output)
        } else {
            Err(ProcessError::Failed {
                command: self.display(),
                status: output.status,
                stderr: stderr_tail(&output.stderr),
            })
        }
    }
}

fn stdio(stream: Stream) -> Stdio {
    match stream {
        Stream::Capture => Stdio::piped(),
        Stream::Inherit => Stdio::inherit(),
        Stream::Null => Stdio::null(),
    }
}
