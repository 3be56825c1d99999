//! A parallel job runner (`concur run`): each input line becomes a job, run by `jobs`
//! workers at a time, in the spirit of `xargs -P` and GNU parallel.
//!
//! The shape: a reader thread turns input lines into jobs; `jobs` worker threads each
//! run one child at a time with [`Cmd::execute`](crate::process::Cmd::execute), collecting its stdout and stderr in
//! [`Spool`]s; the calling thread is the only writer. It prints each job's output whole
//! (never interleaved with another job's), in completion order or, with `keep_order`,
//! in input order as soon as every earlier job is done. It also writes the joblog and
//! decides when to stop: on the first failure with `halt_on_error`, or when the
//! [`CancelToken`] fires (Ctrl-C), which makes every worker stop its child's whole
//! process group.
//!
//! Each worker has one job queued behind its running one, so it never waits for the
//! calling thread between jobs; a queued job re-checks for halt and cancel before it
//! starts. Memory stays bounded: input is read only as jobs can start, each job's output lives
//! in memory only up to 64 KiB (then in an unnamed temp file), and with `keep_order`
//! at most [`RunOptions::window`] jobs run or wait ahead of the oldest unprinted one.

mod control;
mod distribute;
mod input;
mod joblog;
mod live;
mod part;
mod perl;
mod pipe;
mod results;
mod rpl;

mod shell;
mod template;

use std::collections::{BTreeMap, HashSet};
use std::io::{self, BufRead, Write};
use std::num::NonZeroUsize;
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::sync::PoisonError;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, after, never, select};
use thiserror::Error;

pub use crate::remote::{
    Host, Hosts, LoginFile, RemoteLine, Ssh, SshLogin, Workdir, read_login_file,
};
pub use control::{
    Gate, Halt, HaltOn, HaltWhen, JobCount, JobsFile, RunningMedian, Threshold, Timeout,
};
pub use distribute::{Feeder, Sharing};
pub use input::{
    DEFAULT_FILL_BYTES, FillCost, Grouping, Input, InputError, InputOptions, JobArgs, Jobs,
    MAX_HELD_BYTES, MAX_HELD_RECORDS, RecordCost, Source,
};
pub use joblog::{
    HEADER as JOBLOG_HEADER, JobLog, JobRecord, Logged, MAX_JOBLOG_LINE, MAX_JOBLOG_RECORDS,
    read_joblog,
};
pub use live::{JobWriter, Live, LiveOutput, MAX_RECORDED_LINES, Printed, PrintedStream, Replayed};
pub use part::{DEFAULT_PART_SIZE, PartSize, Parts};
pub use perl::{Filter, Perl};
pub use pipe::{Blocks, PipeOptions};
pub use results::{ResultWriter, Results};
pub use rpl::Rpl;
pub use shell::{job_shell, quote_word};
pub use template::{Rendered, Tag, Template, TemplateError, TemplateOptions};

use crate::process::{
    CancelToken, DEFAULT_GRACE, Ending, Execution, ProcessError, Spool, format_duration,
};
use crate::remote::agent::{AgentError, JobSpec};

/// How often `--slf` files are looked at when no job finishes.
const LOGIN_FILE_CHECK: Duration = Duration::from_secs(1);

/// How often `--load` and `--memfree` are read while they hold jobs back.
const GATE_REFRESH: Duration = Duration::from_millis(100);

/// With `-k`, the most jobs that run or wait behind the oldest unprinted one: a bound
/// on the memory of a run whose first job never ends (about 1.4 KiB a waiting job was
/// measured, so some 360 MB at the bound), far past what keeps every slot busy.
pub const KEEP_ORDER_WINDOW: usize = 1 << 18;

/// With `-k`, the bytes of finished jobs' output that wait in memory for an earlier job;
/// past them, and for any output that spilled to a file of its own, waiting output is
/// parked in one temporary file (see [`crate::process::Backlog`]), so neither memory
/// nor descriptors grow with the jobs that wait.
pub const WAITING_MEMORY: usize = 16 << 20;

/// How long output from a job's leftover processes is still collected after the job's
/// own process exits.
pub const DEFAULT_LINGER: Duration = Duration::from_millis(100);

/// How to run the jobs.
#[derive(Clone, Debug)]
pub struct RunOptions {
    /// Jobs running at once.
    pub jobs: NonZeroUsize,
    /// Stop any job that runs longer than this.
    pub timeout: Option<Timeout>,
    /// Pause between SIGTERM and SIGKILL when a job must be stopped.
    pub grace: Duration,
    /// Print outputs in input order.
    pub keep_order: bool,
    /// When to stop starting jobs, or stop the running ones (`--halt`).
    pub halt: Option<Halt>,
    /// Run a failed job up to this many more times; only the last attempt is printed.
    pub retries: u32,
    /// `--retries` given as a replacement string (`--retries {2}`): each job's own
    /// count, in GNU parallel's terms (attempts in all, 0 for until it succeeds).
    /// Overrides `retries`.
    pub retries_per_job: Option<Template>,
    /// `--filter`: jobs that fail it are declined, as by `skip()`.
    pub filter: Option<Filter>,
    /// `--cat`/`--fifo`: a `--pipe` block is given as a file named by `{}`, not on
    /// stdin; the file is made in `tmpdir` and removed after the job.
    pub block_as: Option<BlockAs>,
    /// Where `--cat` and `--fifo` files go, and `--compress`'s.
    pub tmpdir: PathBuf,
    /// `--compress`: each job's output waits its turn compressed, in `tmpdir`; and
    /// `--files`/`--results` files are left compressed.
    pub compress: Option<std::sync::Arc<crate::process::Codec>>,
    /// Read every input before the first job starts, and tell this perl how many jobs
    /// there are (`total_jobs()`, `{##}`).
    pub count_jobs: Option<std::sync::Arc<Perl>>,
    /// Write GNU parallel's joblog here.
    pub joblog: Option<PathBuf>,
    /// Append to the joblog instead of starting it afresh (`--resume`).
    pub joblog_append: bool,
    /// Sequence numbers not to run again (from a joblog, for `--resume`).
    pub skip: HashSet<usize>,
    /// How each job's arguments become a command.
    pub template: Template,
    /// Where the arguments come from.
    pub input: InputOptions,
    /// Print each command instead of running it (`--dry-run`).
    pub dry_run: bool,
    /// With `dry_run`: each line quoted for a shell, as GNU parallel's `--shellquote`.
    pub shell_quote: bool,
    /// Run each local job this much nicer than the runner (`--nice`).
    pub nice: Option<i32>,
    /// Print each command before its output (`-v`).
    pub verbose: bool,
    /// Prefix every output line with this, rendered per job, and a tab (`--tag`,
    /// `--tagstring`).
    pub tag: Option<Tag>,
    /// Run the jobs in a random order (`--shuf`); reads all input first.
    pub shuffle: bool,
    /// Wait this long between job starts (`--delay`).
    pub delay: Option<Duration>,
    /// `--delay Dauto`: the delay grows by 30% after each failed job and shrinks by
    /// 10% after each success, as in GNU parallel.
    pub delay_auto: bool,
    /// After a job's process exits, how long output from processes it left behind is
    /// still collected before its group is stopped.
    pub linger: Duration,
    /// Fired by SIGHUP: start no new job, let the running ones finish (GNU
    /// parallel's hang-up).
    pub hangup: Option<crate::process::CancelToken>,
    /// Print output while jobs run (`--line-buffer`, `-u`) instead of whole per job.
    pub live: Option<std::sync::Arc<LiveOutput>>,
    /// Save output instead of printing it (`--results`, `--files`).
    pub results: Option<Results>,
    /// `--pipe`: standard input is cut into blocks, one per job's stdin, instead of
    /// being read as arguments.
    pub pipe: Option<PipeOptions>,
    /// `--load`, `--memfree`: start jobs only while the machine has room.
    pub gate: Gate,
    /// `-j FILE`: `jobs` is read again from this file when it changes; workers are
    /// added as the count grows, and a shrinking count starts fewer jobs.
    pub jobs_file: Option<JobsFile>,
    /// `-S`: the machines jobs run on, each job slot bound to one (`jobs` must be
    /// their slots in all).
    pub hosts: Option<std::sync::Arc<Hosts>>,
    /// `--slf`: files of logins, read again when they change; new hosts get new
    /// workers.
    pub login_files: Vec<LoginFile>,
    /// The `-S` logins, kept beside those of `login_files` when they are read again.
    pub fixed_logins: Vec<SshLogin>,
    /// `--workdir` without `-S`: where jobs run here.
    pub local_workdir: Option<LocalWorkdir>,
    /// With `-S`: files sent to a job's host before it runs (`--transferfile`).
    pub transfer: Vec<Template>,
    /// With `-S`: files fetched from a job's host after it ran (`--return`).
    pub returns: Vec<Template>,
    /// With `-S`: remove the sent and fetched files on the host afterwards
    /// (`--cleanup`).
    pub cleanup: bool,
}

impl RunOptions {
    /// Options with defaults: one job per core, no timeout, completion order.
    pub fn new(template: Template) -> Self {
        Self {
            jobs: thread::available_parallelism().unwrap_or(NonZeroUsize::MIN),
            timeout: None,
            grace: DEFAULT_GRACE,
            keep_order: false,
            halt: None,
            retries: 0,
            retries_per_job: None,
            filter: None,
            count_jobs: None,
            block_as: None,
            tmpdir: std::env::temp_dir(),
            compress: None,
            joblog: None,
            joblog_append: false,
            skip: HashSet::new(),
            template,
            input: InputOptions::new(),
            dry_run: false,
            shell_quote: false,
            nice: None,
            verbose: false,
            tag: None,
            shuffle: false,
            delay: None,
            delay_auto: false,
            hangup: None,
            linger: DEFAULT_LINGER,
            live: None,
            results: None,
            pipe: None,
            gate: Gate::default(),
            jobs_file: None,
            hosts: None,
            login_files: Vec::new(),
            fixed_logins: Vec::new(),
            local_workdir: None,
            transfer: Vec::new(),
            returns: Vec::new(),
            cleanup: false,
        }
    }

    /// With `keep_order`, how many jobs may run or wait, counting from the oldest job
    /// whose output is not printed yet: [`KEEP_ORDER_WINDOW`], so that a slow job holds
    /// back the printing, never the running. What waits costs about 1.4 KiB a job in
    /// memory (its outputs go to one file past [`WAITING_MEMORY`]).
    pub fn window(&self) -> usize {
        KEEP_ORDER_WINDOW
    }

    /// A spool for one job's stdout or stderr: compressed with `--compress`.
    fn spool(&self) -> Spool {
        match &self.compress {
            Some(codec) => Spool::compressed(codec.clone(), self.tmpdir.clone()),
            None => Spool::default(),
        }
    }
}

/// Where the runner's output goes. One value owns both streams, so job outputs and
/// concur's own notes never interleave.
pub trait Reporter {
    /// Prints one finished job's output: all of its stdout, then all of its stderr,
    /// every line prefixed by `tag` if there is one.
    fn job_output(
        &mut self,
        stdout: &mut Spool,
        stderr: &mut Spool,
        tag: Option<&[u8]>,
    ) -> io::Result<()>;
    /// Prints a note from concur itself (a timeout, a missing command) to stderr.
    fn note(&mut self, message: &str) -> io::Result<()>;
    /// Progress: jobs finished, jobs started, and the total once the input has ended.
    fn progress(&mut self, _done: usize, _started: usize, _total: Option<usize>) {}
}

/// A [`Reporter`] writing job stdout to `out` and job stderr and notes to `err`.
#[derive(Debug)]
pub struct Streams<O, E> {
    /// Receives every job's stdout.
    pub out: O,
    /// Receives every job's stderr and concur's notes.
    pub err: E,
}

impl<O: Write, E: Write> Reporter for Streams<O, E> {
    fn job_output(
        &mut self,
        stdout: &mut Spool,
        stderr: &mut Spool,
        tag: Option<&[u8]>,
    ) -> io::Result<()> {
        match tag {
            Some(tag) => {
                stdout.copy_to(&mut Tagged::new(&mut self.out, tag))?;
                self.out.flush()?;
                stderr.copy_to(&mut Tagged::new(&mut self.err, tag))?;
            }
            None => {
                stdout.copy_to(&mut self.out)?;
                self.out.flush()?;
                stderr.copy_to(&mut self.err)?;
            }
        }
        self.err.flush()
    }

    fn note(&mut self, message: &str) -> io::Result<()> {
        writeln!(self.err, "concur: {message}")
    }
}

/// A writer that puts `tag` at the start of every line written through it.
pub struct Tagged<'a> {
    out: &'a mut dyn Write,
    tag: &'a [u8],
    at_line_start: bool,
}

impl<'a> Tagged<'a> {
    /// Tags what is written to `out`.
    pub fn new(out: &'a mut dyn Write, tag: &'a [u8]) -> Self {
        Self {
            out,
            tag,
            at_line_start: true,
        }
    }
}

impl Write for Tagged<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        for line in buf.split_inclusive(|&b| b == b'\n') {
            if self.at_line_start {
                self.out.write_all(self.tag)?;
            }
            self.out.write_all(line)?;
            self.at_line_start = line.ends_with(b"\n");
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

/// Counts of how the jobs went.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    /// Jobs started (or, for unreadable lines, attempted).
    pub jobs: usize,
    /// Jobs that failed, for any reason (timeouts and missing commands included).
    pub failed: usize,
    /// Jobs stopped by the timeout.
    pub timed_out: usize,
    /// Jobs whose command was not found.
    pub not_found: usize,
    /// Jobs stopped because the run was cancelled.
    pub cancelled: usize,
    /// The signal that cancelled the run (2 for Ctrl-C, 15 for SIGTERM), if any.
    pub interrupted_by: Option<i32>,
    /// Jobs skipped because a joblog showed them done (`--resume`).
    pub resumed: usize,
    /// Whether `--halt` (or a hang-up) stopped new jobs from starting.
    pub halted: bool,
    /// Whether SIGHUP stopped new jobs from starting.
    pub hung_up: bool,
    /// Jobs run again because their host was lost while they ran (`-S`).
    pub requeued: usize,
    /// With `--halt`, the exit status of the job that triggered it (0 for a halt on
    /// success): the run's own exit status then, as in GNU parallel.
    pub halt_status: Option<u8>,
}

impl Summary {
    /// The exit status `concur run` documents: 128 + signal if interrupted; else 127 if
    /// a command run directly was not found; else the number of failed jobs (a job that
    /// timed out failed), 101 for more than 100; 0 if every job succeeded.
    pub fn exit_code(&self) -> u8 {
        if let Some(signal) = self.interrupted_by {
            return u8::try_from(128 + signal).unwrap_or(255);
        }
        if let Some(status) = self.halt_status {
            return status;
        }
        // Jobs were left unstarted: 128 + SIGHUP.
        if self.hung_up {
            return 129;
        }
        // As GNU parallel: the number of failed jobs (a timed-out one is a failure), 101
        // for more than 100.
        if self.not_found > 0 {
            127
        } else {
            u8::try_from(self.failed.min(101)).unwrap_or(101)
        }
    }
}

/// What stopped the runner itself (as opposed to a job failing).
#[derive(Debug, Error)]
pub enum RunError {
    /// Reading the input failed.
    #[error("cannot read the job list")]
    Input(#[source] InputError),
    /// Writing job output failed (a closed pipe, a full disk).
    #[error("cannot write job output")]
    Output(#[source] io::Error),
    /// The joblog could not be written.
    #[error("cannot write the joblog {}", path.display())]
    Joblog {
        /// The joblog path.
        path: PathBuf,
        /// What failed.
        #[source]
        source: io::Error,
    },
    /// A `--results` or `--files` file could not be written.
    #[error("cannot write results to {}", path.display())]
    Results {
        /// The file or directory.
        path: PathBuf,
        /// What failed.
        #[source]
        source: io::Error,
    },
    /// Every `-S` host was lost during the run.
    #[error("no host is left: {errors}")]
    NoHosts {
        /// Each host and its error.
        errors: String,
    },
    /// `--tee` has more jobs than job slots: they cannot all run at once.
    #[error(
        "--tee runs every job at once, and there are {jobs} jobs but -j is {slots}: raise -j \
         (-j 0 for 1,024)"
    )]
    TeeSlots {
        /// Jobs (arguments).
        jobs: usize,
        /// Job slots (`-j`).
        slots: usize,
    },
    /// Worker threads could not be started.
    #[error("cannot start {jobs} worker threads")]
    Start {
        /// How many were asked for.
        jobs: usize,
        /// What the OS said.
        #[source]
        source: io::Error,
    },
}

/// How `--pipe` gives a job its block when not on stdin.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BlockAs {
    /// `--cat`: a temporary file holding the block.
    File,
    /// `--fifo`: a named pipe the block is written into as the job reads it.
    Fifo,
}

/// A `--cat` file or `--fifo` pipe, removed (and its writer let go) when dropped.
struct BlockFile {
    path: PathBuf,
    writer: Option<thread::JoinHandle<()>>,
}

impl BlockFile {
    /// Puts `input` (a `--pipe` block or `--pipepart` part) into a new file or FIFO in
    /// `dir`.
    fn new(input: &crate::process::Input, how: BlockAs, dir: &std::path::Path) -> io::Result<Self> {
        let path = tempfile::Builder::new()
            .prefix("concur-block-")
            .tempfile_in(dir)?
            .into_temp_path()
            .keep()
            .map_err(|e| e.error)?;
        let bytes = input_bytes(input)?;
        match how {
            BlockAs::File => {
                std::fs::write(&path, &bytes)?;
                Ok(Self { path, writer: None })
            }
            BlockAs::Fifo => {
                std::fs::remove_file(&path)?;
                rustix::fs::mkfifoat(
                    rustix::fs::CWD,
                    &path,
                    rustix::fs::Mode::RUSR | rustix::fs::Mode::WUSR,
                )?;
                let target = path.clone();
                // Opening for writing waits for the job to open it for reading.
                let writer = thread::Builder::new()
                    .name("run-fifo".into())
                    .spawn(move || {
                        if let Ok(mut fifo) = std::fs::OpenOptions::new().write(true).open(&target)
                        {
                            let _ = io::Write::write_all(&mut fifo, &bytes);
                        }
                    })?;
                Ok(Self {
                    path,
                    writer: Some(writer),
                })
            }
        }
    }
}

impl Drop for BlockFile {
    fn drop(&mut self) {
        if let Some(writer) = self.writer.take() {
            // A job that never opened the FIFO leaves its writer waiting in its open,
            // or not there yet. Hold a read end open (opened without waiting) until
            // the writer is done, draining what it writes, which nobody will read:
            // its open returns whenever it gets there, and its writes never wait.
            // (Closing the read end at once left a writer that had not reached its
            // open yet waiting there for ever.)
            let unblock = std::fs::OpenOptions::new()
                .read(true)
                .custom_flags(rustix::fs::OFlags::NONBLOCK.bits() as i32)
                .open(&self.path);
            if let Ok(mut unblock) = unblock {
                let mut buf = vec![0; 64 * 1024];
                while !writer.is_finished() {
                    match io::Read::read(&mut unblock, &mut buf) {
                        Ok(n) if n > 0 => {}
                        // Empty for now (or no writer yet): look again shortly.
                        _ => thread::sleep(Duration::from_millis(1)),
                    }
                }
            }
            let _ = writer.join();
        }
        let _ = std::fs::remove_file(&self.path);
    }
}

/// The bytes a job's stdin input stands for.
fn input_bytes(input: &crate::process::Input) -> io::Result<Vec<u8>> {
    use crate::process::Input;
    match input {
        Input::Bytes(data) => Ok(data.to_vec()),
        Input::Range(range) => {
            let (offset, len) = range.span();
            let mut bytes = range.head().to_vec();
            let start = bytes.len();
            bytes.resize(start + len as usize, 0);
            std::os::unix::fs::FileExt::read_exact_at(range.file(), &mut bytes[start..], offset)?;
            Ok(bytes)
        }
        _ => Ok(Vec::new()),
    }
}

/// A job's input, or why it cannot be a job.
type Line = Result<JobInput, String>;

/// What a job is given: arguments, and with `--pipe` a block for its stdin.
struct JobInput {
    args: JobArgs,
    stdin: Option<crate::process::Input>,
}

/// Where jobs come from.
pub enum JobSource {
    /// Arguments, from the input sources.
    Args(Jobs),
    /// Blocks of standard input (`--pipe`).
    Pipe(Blocks),
    /// Parts of files (`--pipepart`), each fed from the file itself.
    Parts(Parts),
    /// Blocks of standard input shared among jobs that stay running (`--round-robin`,
    /// `--tee`).
    Shared(Shared),
    /// Jobs already read (`--onall` runs the same jobs on each host).
    List(std::collections::VecDeque<Result<JobArgs, String>>),
}

impl JobSource {
    /// Every job of an argument source, read now (`--onall`); other sources give
    /// none.
    pub fn read_all(self) -> Result<Vec<Result<JobArgs, String>>, InputError> {
        let mut all = Vec::new();
        match self {
            JobSource::Args(mut jobs) => {
                while let Some(job) = jobs.next_job()? {
                    all.push(job);
                }
            }
            JobSource::List(jobs) => all.extend(jobs),
            _ => {}
        }
        Ok(all)
    }
}

/// `--round-robin` (up to `slots` jobs, one per block as blocks come, later blocks to
/// whichever is ready) or `--tee` (one job per argument, every block to each).
pub struct Shared {
    feeder: Feeder,
    blocks: Option<Blocks>,
    /// Round-robin: jobs that may still start. Tee: the jobs, each given a pipe as it
    /// is taken.
    slots: usize,
    tee: Option<std::collections::VecDeque<Result<JobArgs, String>>>,
    /// `--header` names of the tee's sources.
    names: Vec<String>,
}

impl Shared {
    /// Blocks of `blocks` to up to `slots` jobs, each block to one.
    pub fn round_robin(blocks: Blocks, slots: usize) -> io::Result<Self> {
        Ok(Self {
            feeder: Feeder::start(Sharing::RoundRobin)?,
            blocks: Some(blocks),
            slots: slots.max(1),
            tee: None,
            names: Vec::new(),
        })
    }

    /// Every block of `blocks` to each job of `jobs` (read whole here: all must run at
    /// once). Fails if there are more jobs than `slots`, naming both counts.
    pub fn tee(blocks: Blocks, mut jobs: Jobs, slots: usize) -> Result<Self, RunError> {
        let names = jobs.names().to_vec();
        let mut all = std::collections::VecDeque::new();
        while let Some(job) = jobs.next_job().map_err(RunError::Input)? {
            all.push_back(job);
        }
        if all.len() > slots {
            return Err(RunError::TeeSlots {
                jobs: all.len(),
                slots,
            });
        }
        Ok(Self {
            feeder: Feeder::start(Sharing::Tee).map_err(|source| RunError::Start {
                jobs: slots,
                source,
            })?,
            blocks: Some(blocks),
            slots,
            tee: Some(all),
            names,
        })
    }

    /// The `--header` names of the tee's sources.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    fn next(&mut self) -> Result<Option<Line>, InputError> {
        if let Some(jobs) = &mut self.tee {
            return match jobs.pop_front() {
                Some(Err(reason)) => Ok(Some(Err(reason))),
                Some(Ok(args)) => {
                    let stdin = self.feeder.outlet(None).map_err(stdin_read_error)?;
                    Ok(Some(Ok(JobInput {
                        args,
                        stdin: Some(stdin),
                    })))
                }
                None => {
                    self.feeder.finish_later(self.blocks.take());
                    Ok(None)
                }
            };
        }
        if self.slots > 0
            && let Some(blocks) = &mut self.blocks
        {
            if let Some(first) = blocks.next_block().map_err(stdin_read_error)? {
                self.slots -= 1;
                let stdin = self.feeder.outlet(Some(first)).map_err(stdin_read_error)?;
                if self.slots == 0 {
                    // Every job is started: the feeder takes the rest.
                    self.feeder.finish_later(self.blocks.take());
                }
                return Ok(Some(Ok(JobInput {
                    args: JobArgs::default(),
                    stdin: Some(stdin),
                })));
            }
            self.blocks = None;
        }
        self.feeder.finish_later(self.blocks.take());
        Ok(None)
    }

    /// Waits until the input is all written (or no job takes more): its error, if
    /// reading failed. Only once every job is queued: the feeder waits for each job to
    /// start before it ends their input (and, with `--tee`, before it writes).
    fn end(&mut self) -> Result<(), InputError> {
        self.feeder.finish(None).map_err(stdin_read_error)
    }
}

/// A failed read of standard input (`--pipe` blocks), for the run's error.
fn stdin_read_error(source: io::Error) -> InputError {
    InputError::Read {
        name: "standard input".into(),
        record: 0,
        source,
    }
}

impl JobSource {
    /// After the last job has been queued: for input shared by running jobs, waits
    /// until it is all written, and gives its read error.
    fn end(&mut self) -> Result<(), InputError> {
        match self {
            JobSource::Shared(shared) => shared.end(),
            _ => Ok(()),
        }
    }

    fn next(&mut self) -> Result<Option<Line>, InputError> {
        match self {
            JobSource::Args(jobs) => Ok(jobs
                .next_job()?
                .map(|job| job.map(|args| JobInput { args, stdin: None }))),
            JobSource::Pipe(blocks) => {
                let block = blocks.next_block().map_err(stdin_read_error)?;
                Ok(block.map(|data| {
                    Ok(JobInput {
                        args: JobArgs::default(),
                        stdin: Some(crate::process::Input::Bytes(std::sync::Arc::from(data))),
                    })
                }))
            }
            JobSource::Shared(shared) => shared.next(),
            JobSource::List(jobs) => Ok(jobs
                .pop_front()
                .map(|job| job.map(|args| JobInput { args, stdin: None }))),
            JobSource::Parts(parts) => Ok(parts.next_part()?.map(|range| {
                Ok(JobInput {
                    args: JobArgs::default(),
                    stdin: Some(crate::process::Input::Range(range)),
                })
            })),
        }
    }
}

struct Job {
    seq: usize,
    /// Its place in the order jobs were queued (from 0): without `-S`, jobs take their
    /// slots (`{%}`) in this order.
    ticket: u64,
    args: JobArgs,
    stdin: Option<crate::process::Input>,
    /// Attempts lost with their host (`-S`), for the joblog once it has run.
    lost: Vec<JobRecord>,
    /// With live output: what those attempts printed, for the next one to skip.
    printed: Option<Box<Printed>>,
}

/// How one job ended, after retries.
enum Outcome {
    Ran(Execution),
    Error(ProcessError),
    /// `--dry-run`: the command was printed, not run.
    Shown,
    /// The line could not become a command.
    Unusable(String),
    /// Queued, but not started: the run was halted or cancelled first.
    Skipped,
    /// A `{= … =}` called `skip()`: not run, nothing printed, but counted as failed
    /// (Exitval -2 in the joblog), as GNU parallel counts it.
    Declined,
    /// Its files could not be sent or fetched (`-S`); it did not run, or its
    /// results did not come back.
    Transfer(String),
    /// Its host was lost while it ran (`-S`): it goes back to the queue.
    Lost(Box<Job>, String),
}

impl Finished {
    /// A job that was never started.
    fn skipped(seq: usize) -> Self {
        Self {
            seq,
            command: String::new(),
            tag: None,
            timeout: None,
            record: None,
            args: JobArgs::default(),
            slot: 0,
            host: ":".into(),
            outcome: Outcome::Skipped,
            attempts: 0,
            lost: Vec::new(),
            stdout: Spool::default(),
            stderr: Spool::default(),
            codec_error: None,
            replayed: None,
            failed: false,
        }
    }
}

struct Finished {
    seq: usize,
    command: String,
    /// The rendered `--tag`/`--tagstring` prefix, tab included.
    tag: Option<Vec<u8>>,
    /// The timeout the job ran with.
    timeout: Option<Duration>,
    /// Its joblog line, once accounted for.
    record: Option<JobRecord>,
    /// Its arguments and slot, for `--results`.
    args: JobArgs,
    slot: usize,
    /// Where it ran: `:` here, else its `--sshlogin`.
    host: String,
    outcome: Outcome,
    attempts: u32,
    /// Attempts lost with their host, written to the joblog before its own line.
    lost: Vec<JobRecord>,
    stdout: Spool,
    stderr: Spool,
    /// `--compress`: a compressor that failed; the job counts as failed.
    codec_error: Option<crate::process::CodecError>,
    /// Run again after a lost attempt, with live output: how it went against what
    /// that attempt printed, when worth a note.
    replayed: Option<String>,
    /// Counted as failed (set by `account`).
    failed: bool,
}

/// Runs one job per input record (from `options.input`; `stdin` stands in for standard
/// input if given) and prints their outputs through `reporter`.
///
/// Returns the [`Summary`] when every started job has finished; job failures are in the
/// summary, not errors. Errors are for the runner itself: unreadable input, unwritable
/// output or joblog. After such an error, running jobs are stopped before returning.
///
/// ```
/// use concur::process::CancelToken;
/// use concur::runner::{self, Input, RunOptions, Source, Streams, Template, TemplateOptions};
///
/// // `concur run -k 'echo {}' ::: a b c`, from a program.
/// let template = Template::parse(&["echo", "{}"], &TemplateOptions::default()).unwrap();
/// let mut options = RunOptions::new(template);
/// options.keep_order = true;
/// options.input.inputs.push(Input {
///     source: Source::List(vec![b"a".to_vec(), b"b".to_vec(), b"c".to_vec()]),
///     linked: false,
/// });
/// let mut streams = Streams { out: Vec::new(), err: Vec::new() };
/// let summary = runner::run(&options, None, &mut streams, &CancelToken::new().unwrap()).unwrap();
/// assert_eq!((summary.jobs, summary.failed), (3, 0));
/// assert_eq!(streams.out, b"a\nb\nc\n");
/// ```
pub fn run(
    options: &RunOptions,
    stdin: Option<Box<dyn BufRead + Send>>,
    reporter: &mut dyn Reporter,
    cancel: &CancelToken,
) -> Result<Summary, RunError> {
    let source = match &options.pipe {
        Some(pipe) => {
            let reader: Box<dyn io::Read + Send> = match stdin {
                Some(stdin) => Box::new(stdin),
                None => Box::new(io::stdin()),
            };
            JobSource::Pipe(Blocks::new(reader, pipe.clone()))
        }
        None => JobSource::Args(Jobs::open(&options.input, stdin).map_err(RunError::Input)?),
    };
    run_jobs(options, source, reporter, cancel)
}

/// `--workdir` for jobs run here.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LocalWorkdir {
    /// This directory, made if missing.
    Dir(std::path::PathBuf),
    /// `...`: a directory of each job's own, removed after it.
    Private,
}

/// Descriptors one running job holds at most: its stdout and stderr pipes, its pidfd,
/// a stdin pipe, and two spool files for output past 64 KiB.
pub const DESCRIPTORS_PER_JOB: usize = 6;

/// The most records (`-N`) or arguments (`-n`) one job takes: no command line holds
/// more, and with `--pipe`, a block of more records is better asked for by `--block`.
pub const MAX_RECORDS_PER_JOB: usize = 1 << 20;

/// The longest input record (`--max-line-bytes`) that can be asked for: 1 GiB.
pub const MAX_RECORD_BYTES: u64 = 1 << 30;

/// The largest `--pipe` block: 1 GiB (up to 2 × j + 2 blocks are held at once).
pub const MAX_BLOCK: u64 = 1 << 30;

/// [`run`], with the input already opened (so that `--header` names could be read and
/// the template parsed with them).
pub fn run_jobs(
    options: &RunOptions,
    input: JobSource,
    reporter: &mut dyn Reporter,
    cancel: &CancelToken,
) -> Result<Summary, RunError> {
    // Opening a FIFO waits for its other end, and no signal interrupts that: the
    // opens wait beside the cancel token, so Ctrl-C still ends the run.
    let interrupted = || Summary {
        interrupted_by: Some(cancel.reason().unwrap_or(2)),
        ..Summary::default()
    };
    let mut joblog = match &options.joblog {
        Some(path) => {
            let (owned, append) = (path.clone(), options.joblog_append);
            let opened = cancel.unless_cancelled(move || {
                if append {
                    JobLog::append(&owned)
                } else {
                    JobLog::create(&owned)
                }
            });
            let Some(opened) = opened else {
                return Ok(interrupted());
            };
            Some(opened.map_err(|source| RunError::Joblog {
                path: path.clone(),
                source,
            })?)
        }
        None => None,
    };
    let results = match &options.results {
        Some(results) => {
            let results = results.clone();
            let Some(opened) = cancel.unless_cancelled(move || ResultWriter::open(results)) else {
                return Ok(interrupted());
            };
            Some(opened.map_err(|err| RunError::Results {
                path: err.path,
                source: err.source,
            })?)
        }
        None => None,
    };
    let jobs = options.jobs.get();
    crate::limits::ensure_threads(jobs.saturating_add(1), crate::limits::DEFAULT_STACK)
        .map_err(|source| RunError::Start { jobs, source })?;

    let (job_tx, job_rx) = crossbeam_channel::unbounded::<Job>();
    let (done_tx, done_rx) = crossbeam_channel::unbounded::<Finished>();
    // With --pipe each item is a block: hold one ahead, not 256.
    let ahead = if options.pipe.is_some() { 1 } else { 256 };
    let (line_tx, line_rx) = crossbeam_channel::bounded::<Result<(usize, Line), InputError>>(ahead);

    // The reader is detached: if the run stops early it may still be blocked reading
    // (say, a terminal); it ends with the input or the process.
    let shuffle = options.shuffle;
    let count = options.count_jobs.clone();
    thread::Builder::new()
        .name("run-input".into())
        .spawn(move || read_jobs(input, shuffle, count.as_deref(), &line_tx))
        .map_err(|source| RunError::Start { jobs, source })?;

    let halt = WorkerShared::default();
    let halted = &halt.halted;
    thread::scope(|scope| {
        // Starts the worker for job slot `slot`.
        let spawn = |slot: usize, done_tx: Sender<Finished>| {
            let (job_rx, halted) = (job_rx.clone(), &halt);
            thread::Builder::new()
                .name(format!("run-worker-{}", slot - 1))
                .spawn_scoped(scope, move || {
                    work(options, slot, &job_rx, &done_tx, cancel, halted)
                })
                .map(drop)
        };
        let mut started = Ok(());
        for slot in 1..=jobs {
            if let Err(source) = spawn(slot, done_tx.clone()) {
                started = Err(RunError::Start { jobs, source });
                break;
            }
        }
        // With -j FILE, more workers may be started later; otherwise the channel
        // closes when the last worker ends (if one panicked, the run still ends).
        let growing =
            (options.jobs_file.is_some() || !options.login_files.is_empty()).then_some(done_tx);
        let mut grow = |slot: usize| match &growing {
            Some(done_tx) => crate::limits::ensure_threads(slot + 1, crate::limits::DEFAULT_STACK)
                .and_then(|()| spawn(slot, done_tx.clone())),
            None => Err(io::Error::other("the number of jobs is fixed")),
        };
        let result = started.and_then(|()| {
            let mut scheduler = Scheduler::new(options, reporter, joblog.as_mut(), cancel, halted);
            scheduler.results = results;
            scheduler.drive(&line_rx, &job_tx, &done_rx, &mut grow)
        });
        // Closing the job channel lets the workers finish; the scope joins them.
        halt.closed.store(true, Ordering::SeqCst);
        drop(job_tx);
        result
    })
}

fn read_jobs(
    mut input: JobSource,
    shuffle: bool,
    count: Option<&Perl>,
    out: &Sender<Result<(usize, Line), InputError>>,
) {
    if shuffle || count.is_some() {
        let mut all = Vec::new();
        loop {
            match input.next() {
                Ok(Some(job)) => all.push(job),
                Ok(None) => break,
                Err(err) => {
                    let _ = out.send(Err(err));
                    return;
                }
            }
        }
        if let Some(perl) = count {
            perl.set_total(all.len());
        }
        if shuffle {
            use rand::seq::SliceRandom;
            all.shuffle(&mut rand::rng());
        }
        for (i, job) in all.into_iter().enumerate() {
            if out.send(Ok((i + 1, job))).is_err() {
                return;
            }
        }
    } else {
        for seq in 1.. {
            let item = match input.next() {
                Ok(Some(job)) => Ok((seq, job)),
                Ok(None) => break,
                Err(err) => Err(err),
            };
            let stop = item.is_err();
            if out.send(item).is_err() || stop {
                return;
            }
        }
    }
    if let Err(err) = input.end() {
        let _ = out.send(Err(err));
    }
}

/// A worker (job slot `slot`): runs jobs until the job channel closes. A job still
/// queued when the run halts or is cancelled comes back as skipped, never started.
///
/// With `-S` the slot belongs to one host. While that host is down the worker takes
/// no jobs: it tries the host again after each back-off, until the run ends.
fn work(
    options: &RunOptions,
    slot: usize,
    jobs: &Receiver<Job>,
    done: &Sender<Finished>,
    cancel: &CancelToken,
    halt: &WorkerShared,
) {
    let program = options.template.resolve_program();
    let host = options.hosts.as_ref().map(|hosts| hosts.for_slot(slot));
    loop {
        if let (Some(hosts), Some(host)) = (&options.hosts, &host)
            && !host.is_up()
            && (host.is_retired() || !wait_for_host(hosts, host, cancel, halt))
        {
            return;
        }
        let Ok(job) = jobs.recv() else { return };
        let stopping = halt.stopping(cancel);
        // {%} is the lowest slot free when the job starts, as in GNU parallel (not
        // this worker's number), taken in the order the jobs were queued: jobs that
        // start together get theirs in the order of their numbers. With -S a slot is
        // its host's, so it stays the worker's.
        let shown = match host {
            Some(_) => (!stopping).then_some(slot),
            None => halt.take_slot(job.ticket, !stopping),
        };
        let Some(shown) = shown else {
            if done.send(Finished::skipped(job.seq)).is_err() {
                return;
            }
            continue;
        };
        let finished = run_job(
            options,
            shown,
            host.as_deref(),
            program.as_deref(),
            job,
            cancel,
            halt,
        );
        if host.is_none() {
            halt.release_slot(shown);
        }
        if done.send(finished).is_err() {
            return;
        }
    }
}

/// Waits until `host` is back (true), or the run ends or is stopped (false).
fn wait_for_host(hosts: &Hosts, host: &Host, cancel: &CancelToken, halt: &WorkerShared) -> bool {
    loop {
        let Some(retry_at) = host.revive(&hosts.ssh) else {
            return true;
        };
        while Instant::now() < retry_at {
            if cancel.is_cancelled()
                || halt.halted.load(Ordering::SeqCst)
                || halt.closed.load(Ordering::SeqCst)
            {
                return false;
            }
            thread::sleep(Duration::from_millis(50));
        }
    }
}

/// GNU parallel's `--retries N` (attempts in all; 0: until it succeeds) as the number
/// of attempts after the first.
pub fn retries_after_first(n: u32) -> u32 {
    match n {
        0 => u32::MAX,
        n => n - 1,
    }
}

/// Runs one job (with its retries) and says how it went.
/// This process's id as text, for `PARALLEL_PID`: asked of the kernel once, not per job.
fn runner_pid() -> &'static str {
    static PID: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    PID.get_or_init(|| std::process::id().to_string())
}

fn run_job(
    options: &RunOptions,
    slot: usize,
    host: Option<&Host>,
    program: Option<&std::path::Path>,
    job: Job,
    cancel: &CancelToken,
    halt: &WorkerShared,
) -> Finished {
    let retries = match &options.retries_per_job {
        None => options.retries,
        Some(template) => {
            let text = template.render_text(&job.args, job.seq, slot);
            match std::str::from_utf8(&text)
                .ok()
                .and_then(|t| t.trim().parse().ok())
            {
                Some(n) => retries_after_first(n),
                None => {
                    let mut finished = Finished::skipped(job.seq);
                    finished.outcome = Outcome::Unusable(format!(
                        "job {}: --retries gave {}, not a whole number",
                        job.seq,
                        crate::lines::excerpt(&String::from_utf8_lossy(&text), 80)
                    ));
                    finished.args = job.args;
                    return finished;
                }
            }
        }
    };
    // --cat/--fifo: the block becomes a file named by {}.
    let mut _block_file = None;
    let mut job = job;
    if let (Some(how), Some(input)) = (options.block_as, &job.stdin) {
        match BlockFile::new(input, how, &options.tmpdir) {
            Ok(file) => {
                job.args.values = vec![file.path.as_os_str().as_encoded_bytes().to_vec()];
                job.stdin = None;
                _block_file = Some(file);
            }
            Err(err) => {
                let mut finished = Finished::skipped(job.seq);
                finished.outcome = Outcome::Unusable(format!(
                    "job {}: cannot put its block in {}: {err}",
                    job.seq,
                    options.tmpdir.display()
                ));
                return finished;
            }
        }
    }
    let Rendered {
        mut cmd,
        line,
        skip,
    } = options.template.render(&job.args, job.seq, slot, program);
    if skip
        || options
            .filter
            .as_ref()
            .is_some_and(|filter| !filter.passes(&job.args, job.seq, slot))
    {
        // A `{= … =}` called skip(), or --filter said no: the job is neither run nor
        // shown.
        let mut finished = Finished::skipped(job.seq);
        finished.outcome = Outcome::Declined;
        finished.command = String::from_utf8_lossy(&line).into_owned();
        finished.args = job.args;
        return finished;
    }
    // GNU parallel's variables for the job: its {#}, its {%}, and the runner's pid.
    cmd = cmd
        .env("PARALLEL_SEQ", job.seq.to_string())
        .env("PARALLEL_JOBSLOT", slot.to_string())
        .env("PARALLEL_PID", runner_pid());
    if let Some(n) = options.nice {
        cmd = cmd.nice(n);
    }
    let command = String::from_utf8_lossy(&line).into_owned();
    // With -S, the slot's machine runs the command line over its master connection.
    let remote = options
        .hosts
        .as_deref()
        .zip(host)
        .filter(|(_, host)| !host.login.is_local());
    let mut agent_job = None;
    let mut pid_file: Option<Vec<u8>> = None;
    if let Some((hosts, host)) = remote {
        let workdir = hosts.workdir_for(host, job.seq);
        let workdir = workdir.as_slice();
        // A job that reads its own stdin (--pipe) cannot have it watched: it leaves
        // its process group in a file instead, to be stopped from another session.
        // (A host's agent stops its jobs itself.)
        let watch = job.stdin.is_none().then_some(options.grace);
        let by_agent = hosts.agent_program.is_some();
        pid_file = (watch.is_none() && !by_agent && !host.run_dir.is_empty()).then(|| {
            let mut file = host.run_dir.clone();
            file.extend_from_slice(format!("/job-{}.pgid", job.seq).as_bytes());
            file
        });
        // GNU parallel's variables, then --env's.
        let mut env = vec![
            ("PARALLEL_SEQ".to_owned(), job.seq.to_string().into_bytes()),
            ("PARALLEL_JOBSLOT".to_owned(), slot.to_string().into_bytes()),
            ("PARALLEL_PID".to_owned(), runner_pid().as_bytes().to_vec()),
        ];
        env.extend(hosts.env.iter().cloned());
        let per_job = hosts.workdir == crate::remote::Workdir::PerJob;
        if hosts.agent_program.is_some() {
            // --remote-agent: the host's agent runs the line; its stdin and timeout
            // are filled in below, with the local command's.
            agent_job = Some(JobSpec {
                line: line.clone(),
                workdir: workdir.to_vec(),
                create: per_job,
                env,
                grace: options.grace,
                linger: options.linger,
                ..JobSpec::default()
            });
        } else {
            cmd = hosts.ssh.wrap(
                host,
                &line,
                workdir,
                watch,
                pid_file.as_deref(),
                &env,
                per_job,
            );
        }
    }
    // --workdir here: the job runs there, with $OLDPWD where concur started (GNU
    // parallel's). `...` is a directory of the job's own, removed after it.
    let mut _private_dir = None;
    if remote.is_none()
        && let Some(workdir) = &options.local_workdir
    {
        let dir = match workdir {
            LocalWorkdir::Dir(dir) => std::fs::create_dir_all(dir).map(|()| dir.clone()),
            LocalWorkdir::Private => tempfile::Builder::new()
                .prefix("concur-wd-")
                .tempdir()
                .map(|dir| _private_dir.insert(dir).path().to_owned()),
        };
        match dir {
            Ok(dir) => {
                if let Ok(here) = std::env::current_dir() {
                    // $PWD as the job's shell would have it after `cd DIR` (`/bin`,
                    // not the `/usr/bin` it may link to), so `pwd` shows DIR.
                    let logical = if dir.as_os_str() == "." {
                        here.clone()
                    } else {
                        here.join(&dir)
                    };
                    cmd = cmd.env("PWD", logical).env("OLDPWD", here);
                }
                cmd = cmd.current_dir(dir);
            }
            Err(err) => {
                let mut finished = Finished::skipped(job.seq);
                finished.outcome =
                    Outcome::Transfer(format!("cannot make the work directory: {err}"));
                finished.args = job.args;
                return finished;
            }
        }
    }
    let host_name = host.map_or_else(|| ":".to_owned(), |h| h.login.to_string());
    let tag = options.tag.as_ref().map(|tag| {
        let mut text = tag.render(&job.args, job.seq, slot, &host_name);
        text.push(b'\t');
        text
    });
    let mut finished = Finished {
        seq: job.seq,
        command,
        tag,
        timeout: None,
        record: None,
        args: JobArgs::default(),
        slot,
        host: host_name,
        outcome: Outcome::Skipped,
        attempts: 0,
        lost: Vec::new(),
        stdout: Spool::default(),
        stderr: Spool::default(),
        codec_error: None,
        replayed: None,
        failed: false,
    };
    if options.dry_run {
        let line = match options.shell_quote {
            true => quote_word(&line),
            false => line,
        };
        let shown = finished
            .stdout
            .write_all(&line)
            .and_then(|()| finished.stdout.write_all(b"\n"));
        finished.outcome = match shown {
            Ok(()) => Outcome::Shown,
            Err(source) => Outcome::Error(ProcessError::Io {
                command: finished.command.clone(),
                source,
            }),
        };
        finished.args = job.args;
        return finished;
    }
    // --transferfile, --return and --cleanup name files per job.
    let files = |templates: &[Template]| -> Vec<Vec<u8>> {
        templates
            .iter()
            .map(|t| t.render_text(&job.args, job.seq, slot))
            .collect()
    };
    let (sent, returned) = match remote {
        Some(_) => (files(&options.transfer), files(&options.returns)),
        None => (Vec::new(), Vec::new()),
    };
    if let Some((hosts, host)) = remote {
        let workdir = hosts.workdir_for(host, job.seq);
        let workdir = workdir.as_slice();
        if let Some(err) = hosts
            .ensure_basefiles(host, Some(cancel))
            .err()
            .or_else(|| {
                sent.iter()
                    .find_map(|path| hosts.ssh.send(host, path, workdir, Some(cancel)).err())
            })
        {
            // The host itself may be gone: then the job goes back to the queue.
            if !hosts.ssh.master_alive(&host.login) {
                host.mark_down(err.clone());
                finished.outcome = Outcome::Lost(Box::new(job), err);
                return finished;
            }
            finished.outcome = Outcome::Transfer(err);
            finished.args = job.args;
            finished.lost = job.lost;
            return finished;
        }
    }
    cmd = cmd.grace(options.grace).linger(options.linger);
    if let Some(input) = &job.stdin {
        cmd = cmd.stdin(input.clone());
    }
    // Decided as the job starts, not when it was queued: `--timeout P%` needs the
    // runtimes of every job that finished before.
    finished.timeout = options
        .timeout
        .and_then(|t| t.for_next(&halt.runtimes.lock().unwrap_or_else(PoisonError::into_inner)));
    if let Some(timeout) = finished.timeout {
        cmd = cmd.timeout(timeout);
    }
    if let Some(spec) = &mut agent_job {
        spec.timeout = finished.timeout;
        match job.stdin.as_ref().map(input_bytes).transpose() {
            Ok(stdin) => spec.stdin = stdin,
            Err(source) => {
                finished.outcome = Outcome::Error(ProcessError::Io {
                    command: finished.command.clone(),
                    source,
                });
                finished.args = job.args;
                return finished;
            }
        }
    }
    // Runs the job once: here or through ssh (`cmd`), or by the host's agent.
    // `Err` is a host lost before or while it ran.
    let timeout = finished.timeout;
    let execute = |out: &mut dyn Write,
                   err: &mut dyn Write|
     -> Result<Result<Execution, ProcessError>, String> {
        if let (Some((hosts, host)), Some(file)) = (remote, &pid_file) {
            // A --pipe job on another host: stopped there too when it is due.
            let watch = RemoteStop {
                hosts,
                host,
                pid_file: file,
                timeout,
                grace: options.grace,
            };
            let (run, failed) =
                watch.around(cancel, || cmd.execute(&mut *out, &mut *err, Some(cancel)));
            if let Some(failed) = failed {
                let _ = writeln!(err, "concur: {failed}");
            }
            return Ok(run);
        }
        let (Some(spec), Some((hosts, host))) = (&agent_job, remote) else {
            return Ok(cmd.execute(out, err, Some(cancel)));
        };
        let agent = hosts.agent_for(host, Some(cancel))?;
        let failed = |source| ProcessError::Io {
            command: finished.command.clone(),
            source,
        };
        match agent.execute(spec.clone(), out, err, Some(cancel)) {
            Ok(run) => Ok(Ok(run)),
            Err(AgentError::Lost(reason)) => Err(reason),
            Err(AgentError::Failed(reason)) => Ok(Err(failed(io::Error::other(reason)))),
            Err(AgentError::Output(source)) => Ok(Err(failed(source))),
        }
    };
    // With live output, a remote job keeps what its lost attempts printed.
    let mut printed = match (remote, &options.live) {
        (Some(_), Some(_)) => Some(job.printed.take().unwrap_or_default()),
        _ => None,
    };
    loop {
        finished.attempts += 1;
        let (mut stdout, mut stderr) = (options.spool(), options.spool());
        let tag = finished.tag.as_deref();
        // How the attempt went, and whether its host was lost under it (why).
        let (executed, lost) = match options.live.as_deref() {
            Some(live) => {
                let mut out = live.writer(finished.seq, false, tag);
                let mut err = live.writer(finished.seq, true, tag);
                if let Some(printed) = &mut printed {
                    let (out_record, err_record) = printed.streams();
                    out = out.replaying(out_record);
                    err = err.replaying(err_record);
                }
                let shown = show(options.verbose, &line, &mut out);
                let executed = shown.map(|()| execute(&mut out, &mut err));
                let lost = lost_with_host(remote, &executed, &mut stderr);
                if lost.is_some() {
                    // Its unfinished last lines are the next attempt's to print.
                    out.abandon();
                    err.abandon();
                } else {
                    // A closed output is recorded in `live` and ends the run there.
                    let _ = (out.finish(), err.finish());
                    finished.replayed = replay_note(out.replayed(), err.replayed());
                }
                (executed, lost)
            }
            None => {
                let executed = show(options.verbose, &line, &mut stdout)
                    .map(|()| execute(&mut stdout, &mut stderr));
                let lost = lost_with_host(remote, &executed, &mut stderr);
                (executed, lost)
            }
        };
        if let (Some((_, host)), Some(error)) = (remote, lost) {
            // The host is lost: the job goes back to the queue, this attempt logged.
            let (start, runtime, send, receive) = match &executed {
                Ok(Ok(Ok(run))) => (run.started, run.runtime, run.sent, run.received),
                _ => (std::time::SystemTime::now(), Duration::ZERO, 0, 0),
            };
            let mut lost_job = job;
            lost_job.lost.push(JobRecord {
                seq: lost_job.seq,
                host: finished.host.clone(),
                start,
                runtime,
                send,
                receive,
                exitval: 255,
                signal: 0,
                command: finished.command.clone(),
            });
            lost_job.printed = printed.take();
            host.mark_down(error.clone());
            finished.outcome = Outcome::Lost(Box::new(lost_job), error);
            return finished;
        }
        let outcome = match executed {
            Ok(Ok(Ok(run))) => Outcome::Ran(run),
            Ok(Ok(Err(err))) => Outcome::Error(err),
            Ok(Err(lost)) => unreachable!("a lost agent session was handled above: {lost}"),
            Err(source) => Outcome::Error(ProcessError::Io {
                command: finished.command.clone(),
                source,
            }),
        };
        let retry = finished.attempts <= retries && !cancel.is_cancelled() && !succeeded(&outcome);
        if !retry {
            halt.count(options.halt, succeeded(&outcome));
            if let Outcome::Ran(run) = &outcome
                && succeeded(&outcome)
            {
                halt.runtimes
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .push(run.runtime);
            }
            finished.outcome = outcome;
            // Both compressors are waited for; the first failure is kept.
            let (out, err) = (stdout.finish(), stderr.finish());
            finished.codec_error = out.and(err).err();
            finished.stdout = stdout;
            finished.stderr = stderr;
            break;
        }
    }
    if let Some((hosts, host)) = remote {
        let workdir = hosts.workdir_for(host, job.seq);
        let workdir = workdir.as_slice();
        let ran = matches!(&finished.outcome, Outcome::Ran(run) if run.ending != Ending::Cancelled);
        let fetched = returned
            .iter()
            .filter(|_| ran)
            .find_map(|path| hosts.ssh.fetch(host, path, workdir, Some(cancel)).err());
        if options.cleanup {
            let mut paths = sent;
            paths.extend(returned);
            if let Err(err) = hosts.ssh.remove(host, &paths, workdir) {
                let _ = finished
                    .stderr
                    .write_all(format!("concur: {err}\n").as_bytes());
            }
        }
        if hosts.workdir == crate::remote::Workdir::PerJob
            && let Err(err) = hosts.ssh.remove_dir(host, workdir)
        {
            let _ = finished
                .stderr
                .write_all(format!("concur: {err}\n").as_bytes());
        }
        if let Some(err) = fetched {
            finished.outcome = Outcome::Transfer(err);
        }
    }
    finished.args = job.args;
    finished.lost = job.lost;
    finished
}

/// Shared by the workers: raised as soon as a `--halt` count is reached, before the
/// job's result is even reported, so no job queued behind it (on any worker) starts;
/// and the runtimes of the jobs that succeeded, for `--timeout P%`.
#[derive(Default)]
struct WorkerShared {
    halted: AtomicBool,
    /// Set when the run is over: a worker waiting for its host gives up.
    closed: AtomicBool,
    counted: std::sync::atomic::AtomicUsize,
    runtimes: std::sync::Mutex<RunningMedian>,
    /// Which job slots (`{%}`, from 1) are in use now, and whose turn it is to take
    /// one.
    slots: std::sync::Mutex<Slots>,
    /// Signalled when the turn passes while a worker waits for it.
    turn: std::sync::Condvar,
}

#[derive(Default)]
struct Slots {
    busy: Vec<bool>,
    /// The ticket of the next job to take a slot (or pass its turn).
    next: u64,
    /// Workers waiting for their job's turn.
    waiting: usize,
}

impl WorkerShared {
    /// Waits for the turn of the job with this ticket (every job queued before it has
    /// taken its slot or passed), then takes the lowest slot not in use; or, if not
    /// `take` (the job is skipped), only passes the turn on.
    ///
    /// Workers usually come in turn already: one that took a later job first waits
    /// the moment it takes the other to get here.
    fn take_slot(&self, ticket: u64, take: bool) -> Option<usize> {
        let mut slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
        if slots.next != ticket {
            slots.waiting += 1;
            while slots.next != ticket {
                slots = self
                    .turn
                    .wait(slots)
                    .unwrap_or_else(PoisonError::into_inner);
            }
            slots.waiting -= 1;
        }
        slots.next += 1;
        if slots.waiting > 0 {
            self.turn.notify_all();
        }
        if !take {
            return None;
        }
        let busy = &mut slots.busy;
        let free = busy.iter().position(|b| !b).unwrap_or(busy.len());
        if free == busy.len() {
            busy.push(true);
        } else {
            busy[free] = true;
        }
        Some(free + 1)
    }

    /// Whether the run has halted or been cancelled: jobs still queued are skipped.
    fn stopping(&self, cancel: &CancelToken) -> bool {
        self.halted.load(Ordering::SeqCst) || cancel.is_cancelled()
    }

    fn release_slot(&self, slot: usize) {
        let mut slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(b) = slots.busy.get_mut(slot - 1) {
            *b = false;
        }
    }

    fn count(&self, halt: Option<Halt>, succeeded: bool) {
        let Some(halt) = halt else { return };
        if let Threshold::Count(n) = halt.threshold
            && succeeded == (halt.on == HaltOn::Success)
            && self.counted.fetch_add(1, Ordering::SeqCst) + 1 >= n
        {
            self.halted.store(true, Ordering::SeqCst);
        }
    }
}

/// One job's exit status the way GNU parallel reports it: its exit code, 255 for a timeout,
/// 128 + the signal that killed it, 127 for a missing command, 255 for a job that
/// could not run.
fn job_status(outcome: &Outcome) -> u8 {
    match outcome {
        Outcome::Ran(run) if run.ending == Ending::TimedOut => 255,
        Outcome::Ran(run) => match (run.status.code(), run.status.signal()) {
            (Some(code), _) => u8::try_from(code).unwrap_or(255),
            (None, Some(signal)) => u8::try_from(128 + signal).unwrap_or(255),
            (None, None) => 255,
        },
        Outcome::Error(err) if err.is_not_found() => 127,
        Outcome::Error(_)
        | Outcome::Unusable(_)
        | Outcome::Transfer(_)
        | Outcome::Lost(..)
        | Outcome::Declined => 255,
        Outcome::Shown | Outcome::Skipped => 0,
    }
}

/// With `-v`, the command line before the job's output.
fn show(verbose: bool, line: &[u8], out: &mut dyn Write) -> io::Result<()> {
    if verbose {
        out.write_all(line)?;
        out.write_all(b"\n")?;
    }
    Ok(())
}

fn succeeded(outcome: &Outcome) -> bool {
    matches!(outcome, Outcome::Ran(run) if run.ending == Ending::Exited && run.status.success())
}

/// A `--pipe` job on another host, started with a pid file ([`RemoteLine::pid_file`]):
/// its stdin is its data, so it cannot be watched through it, and stopping the local
/// `ssh` does not end it there (the master connection even holds its pipes open until
/// the remote side ends). So a thread waits beside it for its timeout or the run's
/// cancel, and then stops its process group on the host from a session of its own
/// ([`Ssh::stop_group`]), while the local `ssh` is being stopped.
struct RemoteStop<'a> {
    hosts: &'a Hosts,
    host: &'a Host,
    pid_file: &'a [u8],
    timeout: Option<Duration>,
    grace: Duration,
}

impl RemoteStop<'_> {
    /// Runs `run` (the job) with the watch beside it. Returns its result, and why the
    /// job could not be stopped on the host, if that was tried and failed.
    fn around<T>(&self, cancel: &CancelToken, run: impl FnOnce() -> T) -> (T, Option<String>) {
        let (done_tx, done_rx) = crossbeam_channel::bounded::<()>(0);
        let cancelled = cancel.subscribe();
        thread::scope(|scope| {
            let watch = scope.spawn(move || {
                let due = self.timeout.map_or_else(never, after);
                select! {
                    recv(done_rx) -> _ => return None,
                    recv(due) -> _ => {},
                    recv(cancelled) -> _ => {},
                }
                self.hosts
                    .ssh
                    .stop_group(self.host, self.pid_file, self.grace)
                    .err()
            });
            let result = run();
            drop(done_tx);
            (result, watch.join().ok().flatten())
        })
    }
}

/// Why a remote attempt's host was lost under it, if it was: the host's agent session
/// ended (`Err` from `execute`), or `ssh` exited 255 and the master connection is gone
/// (the job itself may exit 255; a master that is still there tells them apart).
fn lost_with_host(
    remote: Option<(&Hosts, &Host)>,
    executed: &io::Result<Result<Result<Execution, ProcessError>, String>>,
    stderr: &mut Spool,
) -> Option<String> {
    let (hosts, host) = remote?;
    match executed {
        Ok(Err(lost)) => Some(lost.clone()),
        Ok(Ok(Ok(run)))
            if run.ending == Ending::Exited
                && hosts.ssh.connection_lost(&host.login, run.status.code()) =>
        {
            let said = String::from_utf8_lossy(&stderr.tail(400)).trim().to_owned();
            Some(if said.is_empty() {
                "the connection was lost".to_owned()
            } else {
                crate::lines::excerpt(&said, 200)
            })
        }
        _ => None,
    }
}

/// The note for a job run again after a lost attempt with live output, when its output
/// was not simply the rest of what that attempt printed.
fn replay_note(out: Option<Replayed>, err: Option<Replayed>) -> Option<String> {
    let mut said = Vec::new();
    for (name, replayed) in [("stdout", out), ("stderr", err)] {
        let Some(replayed) = replayed else { continue };
        if let Some(line) = replayed.diverged_at {
            said.push(format!(
                "its {name} differed from the lost attempt's at line {line}: \
                 from there on, both were printed"
            ));
        } else if replayed.overflowed {
            said.push(format!(
                "its {name} had more than {MAX_RECORDED_LINES} lines printed by the lost \
                 attempt: those past them were printed again"
            ));
        }
    }
    (!said.is_empty()).then(|| said.join("; "))
}

/// The calling thread's side: dispatching, ordering, printing, logging.
struct Scheduler<'a> {
    options: &'a RunOptions,
    reporter: &'a mut dyn Reporter,
    joblog: Option<&'a mut JobLog>,
    cancel: &'a CancelToken,
    /// Shared with the workers: set on halt so queued jobs are not started.
    halted: &'a AtomicBool,
    summary: Summary,
    /// Next input sequence number to hand out (1-based).
    next_seq: usize,
    /// Jobs queued for the workers so far (each job's ticket).
    queued: u64,
    /// Next sequence number to print, with `keep_order`.
    next_print: usize,
    /// Finished jobs waiting for earlier ones, with `keep_order`.
    waiting: BTreeMap<usize, Finished>,
    /// Bytes of their output held in memory.
    waiting_memory: usize,
    /// Where waiting output goes past `WAITING_MEMORY` (made when first needed).
    backlog: Option<crate::process::Backlog>,
    /// The backlog failed once (and that was said).
    backlog_failed: bool,
    running: usize,
    done: usize,
    input_ended: bool,
    /// Jobs counted towards `--halt` (failures or successes).
    halt_counted: usize,
    /// With `--delay`, when the next job may start.
    next_start: Option<Instant>,
    /// With `--delay`, the delay now (it changes with `--delay Dauto`).
    delay: Option<Duration>,
    /// With `--results` or `--files`, where output is saved.
    results: Option<ResultWriter>,
    /// With `--load`/`--memfree`: when the gate was last read, and what it said.
    gate: Option<(Instant, bool)>,
    /// Jobs to run at once now (changes with -j FILE), and workers started.
    jobs: usize,
    workers: usize,
    /// With -j FILE: its modification time when last read.
    jobs_file_seen: Option<std::time::SystemTime>,
    /// With --slf: each file's modification time when last read.
    login_files_seen: Vec<Option<std::time::SystemTime>>,
    /// With --slf: the logins the files named when last read, and the new ones being
    /// connected beside this thread (`Err`: that cannot be, and why).
    logins_wanted: Vec<SshLogin>,
    joining: Option<Result<crate::remote::Joining, String>>,
    /// The first error of the runner itself; once set, nothing new starts.
    error: Option<RunError>,
}

impl<'a> Scheduler<'a> {
    fn new(
        options: &'a RunOptions,
        reporter: &'a mut dyn Reporter,
        joblog: Option<&'a mut JobLog>,
        cancel: &'a CancelToken,
        halted: &'a AtomicBool,
    ) -> Self {
        Self {
            options,
            reporter,
            joblog,
            cancel,
            halted,
            summary: Summary::default(),
            next_seq: 1,
            queued: 0,
            next_print: 1,
            waiting: BTreeMap::new(),
            waiting_memory: 0,
            backlog: None,
            backlog_failed: false,
            running: 0,
            done: 0,
            input_ended: false,
            halt_counted: 0,
            next_start: None,
            delay: options.delay,
            results: None,
            gate: None,
            jobs: options.jobs.get(),
            workers: options.jobs.get(),
            jobs_file_seen: options.jobs_file.as_ref().and_then(JobsFile::modified),
            login_files_seen: options
                .login_files
                .iter()
                .map(LoginFile::modified)
                .collect(),
            logins_wanted: Vec::new(),
            joining: match &options.hosts {
                Some(hosts) if !options.login_files.is_empty() => Some(
                    crate::remote::Joining::new(std::sync::Arc::clone(hosts))
                        .map_err(|e| format!("cannot connect new hosts during the run: {e}")),
                ),
                _ => None,
            },
            error: None,
        }
    }

    fn stopping(&self) -> bool {
        self.summary.halted || self.cancel.is_cancelled() || self.error.is_some()
    }

    fn can_start(&mut self) -> bool {
        let limit = self.slot_limit();
        !self.input_ended && self.may_start(limit)
    }

    /// How many jobs may be running or queued at once.
    fn slot_limit(&self) -> usize {
        // Up to one job per worker waits queued beyond the running ones, so a worker
        // that finishes never waits for this thread to hand it the next job. With
        // -j FILE the count can shrink below the workers there are: then no job
        // waits queued, so at most `jobs` run.
        let limit = match self.options.jobs_file {
            Some(_) => self.jobs,
            None => 2 * self.jobs,
        };
        // With every host retired (--slf emptied), nothing can run.
        if self.jobs == 0 { 0 } else { limit }
    }

    /// Whether a job already read may start: a free slot, the -k window, the delay
    /// and the gate allow it.
    fn may_start(&mut self, limit: usize) -> bool {
        !self.stopping()
            && self.running < limit
            && (!self.options.keep_order || self.next_seq - self.next_print < self.options.window())
            && self.next_start.is_none_or(|at| Instant::now() >= at)
            && self.gate_open()
    }

    /// With -j FILE: reads the file again if it changed, and starts workers up to the
    /// new count.
    fn reread_jobs_file(&mut self, grow: &mut dyn FnMut(usize) -> io::Result<()>) {
        let Some(file) = &self.options.jobs_file else {
            return;
        };
        let modified = file.modified();
        if modified == self.jobs_file_seen {
            return;
        }
        self.jobs_file_seen = modified;
        let cores = thread::available_parallelism().map_or(1, NonZeroUsize::get);
        let jobs = match file.read(cores) {
            Ok(jobs) => jobs.get(),
            Err(message) => {
                // Keep the count there is; say why once per change of the file.
                if let Err(err) = self
                    .reporter
                    .note(&format!("{message}; keeping -j {}", self.jobs))
                {
                    self.fail(RunError::Output(err));
                }
                return;
            }
        };
        while self.workers < jobs {
            if let Err(err) = grow(self.workers + 1) {
                let note = format!("cannot start more than {} workers: {err}", self.workers);
                if let Err(err) = self.reporter.note(&note) {
                    self.fail(RunError::Output(err));
                }
                break;
            }
            self.workers += 1;
        }
        self.jobs = jobs.min(self.workers);
    }

    /// With --slf: reads the files again if one changed; new hosts get workers for
    /// their slots, and hosts taken out start no more jobs.
    fn reread_login_files(&mut self) {
        let (Some(hosts), false) = (&self.options.hosts, self.options.login_files.is_empty())
        else {
            return;
        };
        let seen: Vec<_> = self
            .options
            .login_files
            .iter()
            .map(LoginFile::modified)
            .collect();
        if seen == self.login_files_seen {
            return;
        }
        self.login_files_seen = seen;
        let mut logins = Vec::new();
        let mut notes = Vec::new();
        for file in &self.options.login_files {
            match read_login_file(&file.path) {
                Ok(more) => logins.extend(more),
                Err(err) => {
                    // Half-written, say: keep the hosts there are until it reads.
                    notes.push(format!("{err}; keeping the hosts there are"));
                    logins.clear();
                    break;
                }
            }
        }
        if notes.is_empty() {
            logins.extend(self.options.fixed_logins.iter().cloned());
            let (removed, new) = hosts.update(&logins);
            self.jobs = self.jobs.saturating_sub(removed);
            // New hosts are connected beside this thread: one that does not answer
            // must not hold the output and the starts of the others.
            match &mut self.joining {
                Some(Ok(joining)) => {
                    for login in new {
                        if let Err(err) = joining.start(login.clone()) {
                            notes.push(format!("{login} is not added: cannot connect: {err}"));
                        }
                    }
                }
                Some(Err(err)) if !new.is_empty() => notes.push(err.clone()),
                _ => {}
            }
            self.logins_wanted = logins;
        }
        self.say(notes);
    }

    /// A host connected beside the run (`--slf`): it gets workers for its slots, or
    /// its error is said. A host taken out of the files meanwhile is not added.
    fn host_joined(
        &mut self,
        (login, opened): crate::remote::Joined,
        grow: &mut dyn FnMut(usize) -> io::Result<()>,
    ) {
        let (Some(hosts), Some(Ok(joining))) = (&self.options.hosts, &mut self.joining) else {
            return;
        };
        joining.done(&login);
        let mut notes = Vec::new();
        match opened {
            Err(err) => notes.push(format!("{login} is unreachable, not added: {err}")),
            Ok(host) if !self.logins_wanted.contains(&login) || self.stopping() => {
                // Retired at once: closed and cleaned up with the others at the end.
                host.retire();
                hosts.admit(host);
            }
            Ok(host) => {
                let added = hosts.admit(host);
                let total = hosts.slots();
                while self.workers < total {
                    if let Err(err) = grow(self.workers + 1) {
                        notes.push(format!(
                            "cannot start more than {} workers: {err}",
                            self.workers
                        ));
                        break;
                    }
                    self.workers += 1;
                }
                self.jobs = (self.jobs + added).min(self.workers);
            }
        }
        self.say(notes);
    }

    /// Says each note; a closed output ends the run.
    fn say(&mut self, notes: Vec<String>) {
        for note in notes {
            if let Err(err) = self.reporter.note(&note) {
                self.fail(RunError::Output(err));
            }
        }
    }

    /// `--load`/`--memfree`, read at most every 100 ms (reading `/proc` costs).
    fn gate_open(&mut self) -> bool {
        if !self.options.gate.is_set() {
            return true;
        }
        let now = Instant::now();
        match self.gate {
            Some((at, open)) if now.duration_since(at) < GATE_REFRESH => open,
            _ => {
                let open = self.options.gate.is_open();
                self.gate = Some((now, open));
                open
            }
        }
    }

    fn drive(
        &mut self,
        lines: &Receiver<Result<(usize, Line), InputError>>,
        jobs: &Sender<Job>,
        done: &Receiver<Finished>,
        grow: &mut dyn FnMut(usize) -> io::Result<()>,
    ) -> Result<Summary, RunError> {
        let cancelled = self.cancel.subscribe();
        let mut cancel_seen = false;
        let hangup = self.options.hangup.as_ref().map(CancelToken::subscribe);
        // With --slf: hosts connected beside this loop.
        let joined = match &self.joining {
            Some(Ok(joining)) => Some(joining.receiver().clone()),
            _ => None,
        };
        // With --delay: the next line, read while the delay runs, so that the run
        // ends when the input does rather than one delay later.
        let mut held: Option<(usize, Line)> = None;
        loop {
            if self.stopping() {
                held = None;
            }
            if self.running == 0 && held.is_none() && (self.input_ended || self.stopping()) {
                break;
            }
            let limit = self.slot_limit();
            if held.is_some() && self.may_start(limit) {
                if let Some((seq, job)) = held.take() {
                    self.take_line(seq, job, jobs);
                }
                continue;
            }
            let can_start = self.can_start();
            // With --delay, wake when the next start is due; with a closed --load or
            // --memfree gate, look again shortly.
            let waiting = !can_start && !self.input_ended && !self.stopping();
            let delayed = match (self.next_start, self.gate) {
                (Some(at), _) if waiting && Instant::now() < at => {
                    after(at.saturating_duration_since(Instant::now()))
                }
                (_, Some((_, false))) if waiting => after(GATE_REFRESH),
                _ => never(),
            };
            let read_ahead =
                waiting && held.is_none() && self.next_start.is_some_and(|at| Instant::now() < at);
            let lines = if can_start || read_ahead {
                lines
            } else {
                &never()
            };
            let cancelled_rx = if cancel_seen { &never() } else { &cancelled };
            let hangup_rx = match &hangup {
                Some(hangup) if !self.summary.hung_up => hangup,
                _ => &never(),
            };
            let joined_rx = match &joined {
                Some(rx) if !self.stopping() => rx,
                _ => &never(),
            };
            // --slf files are looked at every second as well as after each job.
            let login_tick = if self.options.login_files.is_empty() || self.stopping() {
                never()
            } else {
                after(LOGIN_FILE_CHECK)
            };
            select! {
                recv(lines) -> item => match item {
                    Err(_) => self.end_input(),
                    Ok(Err(err)) => {
                        self.fail(RunError::Input(err));
                        self.end_input();
                    }
                    Ok(Ok((seq, job))) if can_start => self.take_line(seq, job, jobs),
                    Ok(Ok(line)) => held = Some(line),
                },
                recv(delayed) -> _ => {}
                recv(done) -> finished => match finished {
                    Ok(Finished { outcome: Outcome::Lost(job, error), host, .. }) => {
                        self.requeue(*job, &host, &error, jobs);
                    }
                    Ok(finished) => {
                        self.running -= 1;
                        self.finish(finished);
                        self.reread_jobs_file(grow);
                        self.reread_login_files();
                    }
                    // Every worker is gone: nothing more can finish.
                    Err(_) => break,
                },
                recv(cancelled_rx) -> _ => cancel_seen = true,
                recv(hangup_rx) -> _ => self.hang_up(),
                recv(login_tick) -> _ => self.reread_login_files(),
                recv(joined_rx) -> joined => if let Ok(joined) = joined {
                    self.host_joined(joined, grow);
                },
            }
        }
        self.summary.interrupted_by = self.cancel.reason();
        match self.error.take() {
            Some(err) => Err(err),
            None => Ok(std::mem::take(&mut self.summary)),
        }
    }

    /// A job lost with its host (`-S`) runs again on another; with no host left, the
    /// run ends.
    fn requeue(&mut self, job: Job, host: &str, error: &str, jobs: &Sender<Job>) {
        self.summary.requeued += 1;
        let hosts = self.options.hosts.as_deref();
        if let Some(errors) = hosts.and_then(Hosts::all_down) {
            // Not run: left out of the joblog, so that --resume runs it.
            self.running -= 1;
            self.fail(RunError::NoHosts { errors });
            return;
        }
        let note = format!(
            "job {} was lost with {host} ({error}); it runs again on another host",
            job.seq
        );
        if let Err(err) = self.reporter.note(&note) {
            self.fail(RunError::Output(err));
        }
        // The workers outlive this loop, so the channel cannot be closed.
        let _ = jobs.send(job);
    }

    /// Starts the job of one input line (or skips it: resumed, or unusable).
    fn take_line(&mut self, seq: usize, job: Line, jobs: &Sender<Job>) {
        self.next_seq = seq + 1;
        self.summary.jobs += 1;
        if self.options.skip.contains(&seq) {
            self.summary.resumed += 1;
            self.finish(Finished::skipped(seq));
            return;
        }
        match job {
            Err(reason) => self.finish(Finished {
                outcome: Outcome::Unusable(reason),
                ..Finished::skipped(seq)
            }),
            Ok(JobInput { args, stdin }) => {
                self.running += 1;
                let ticket = self.queued;
                self.queued += 1;
                // Workers outlive this loop, so the channel cannot be closed.
                let _ = jobs.send(Job {
                    seq,
                    ticket,
                    args,
                    stdin,
                    lost: Vec::new(),
                    printed: None,
                });
                if let Some(delay) = self.delay {
                    self.next_start = Some(Instant::now() + delay);
                }
                self.progress();
            }
        }
    }

    /// SIGHUP: no new job starts; the running ones finish (a SIGTERM or Ctrl-C then
    /// stops them), as in GNU parallel.
    fn hang_up(&mut self) {
        self.summary.hung_up = true;
        self.summary.halted = true;
        self.halted.store(true, Ordering::SeqCst);
        let note = "SIGHUP: starting no more jobs; the running ones finish (Ctrl-C or SIGTERM stops them now)";
        if let Err(err) = self.reporter.note(note) {
            self.fail(RunError::Output(err));
        }
    }

    fn end_input(&mut self) {
        self.input_ended = true;
        self.progress();
    }

    fn progress(&mut self) {
        let total = self.input_ended.then_some(self.summary.jobs);
        self.reporter.progress(self.done, self.summary.jobs, total);
    }

    /// Records the runner's own first error and stops everything still running.
    fn fail(&mut self, err: RunError) {
        if self.error.is_none() {
            self.error = Some(err);
            self.cancel.cancel();
        }
    }

    fn finish(&mut self, mut finished: Finished) {
        if let Some(err) = self
            .options
            .live
            .as_deref()
            .and_then(LiveOutput::take_error)
        {
            self.fail(RunError::Output(err));
        }
        if let Some(note) = finished.replayed.take() {
            self.say(vec![format!("job {} ran again: {note}", finished.seq)]);
        }
        if matches!(finished.outcome, Outcome::Skipped) {
            // Never started: not a job, but its place in the order must still pass.
            self.summary.jobs -= 1;
        } else {
            self.done += 1;
            self.account(&mut finished);
        }
        if self.options.keep_order {
            if finished.seq != self.next_print {
                self.hold(&mut finished);
            }
            self.waiting_memory += finished.stdout.in_memory() + finished.stderr.in_memory();
            self.waiting.insert(finished.seq, finished);
            while let Some(next) = self.waiting.remove(&self.next_print) {
                self.waiting_memory -= next.stdout.in_memory() + next.stderr.in_memory();
                self.next_print += 1;
                self.print(next);
                // With -k --line-buffer, the next job writes live from now on.
                if let Some(live) = &self.options.live {
                    live.advance_to(self.next_print);
                }
            }
            if self.waiting.is_empty()
                && let Some(backlog) = &mut self.backlog
                && !backlog.is_empty()
            {
                // Nothing parked is left to read: the file starts over.
                let _ = backlog.reset();
            }
        } else {
            self.print(finished);
        }
        self.progress();
    }

    /// With `-k`, before a finished job waits for an earlier one: its output moves to
    /// the backlog file if it has a file of its own (a descriptor per waiting job would
    /// run out) or if memory already holds `WAITING_MEMORY` of waiting output. If the
    /// backlog cannot take it, it waits where it is: nothing is lost.
    fn hold(&mut self, finished: &mut Finished) {
        let memory = finished.stdout.in_memory() + finished.stderr.in_memory();
        let own_file = finished.stdout.holds_file() || finished.stderr.holds_file();
        if own_file || self.waiting_memory + memory > WAITING_MEMORY {
            let backlog = self
                .backlog
                .get_or_insert_with(|| crate::process::Backlog::new(self.options.tmpdir.clone()));
            let parked = finished
                .stdout
                .park(backlog)
                .and_then(|()| finished.stderr.park(backlog));
            if let Err(err) = parked
                && !self.backlog_failed
            {
                self.backlog_failed = true;
                let note = format!(
                    "cannot park waiting output in {}: {err}; it waits in memory instead",
                    self.options.tmpdir.display()
                );
                if let Err(err) = self.reporter.note(&note) {
                    self.fail(RunError::Output(err));
                }
            }
        }
    }

    /// Counts the outcome, writes its joblog line and notes, and halts if asked to.
    fn account(&mut self, finished: &mut Finished) {
        let (record, mut failed, mut note) = match &finished.outcome {
            Outcome::Ran(run) => {
                let status = run.status;
                let note = match run.ending {
                    Ending::TimedOut => {
                        self.summary.timed_out += 1;
                        Some(format!(
                            "job {} timed out after {}: {}",
                            finished.seq,
                            format_duration(finished.timeout.unwrap_or_default()),
                            finished.command
                        ))
                    }
                    Ending::Cancelled => {
                        self.summary.cancelled += 1;
                        None
                    }
                    // Through sh, 127 may be the shell's "not found" or the job's own
                    // status: it is counted as a failure, never as "not found".
                    Ending::Exited => None,
                };
                // A job stopped by Ctrl-C, SIGTERM or `--halt now` did not finish: it
                // is left out of the joblog, so that `--resume` runs it again.
                let record = (run.ending != Ending::Cancelled).then(|| JobRecord {
                    seq: finished.seq,
                    host: finished.host.clone(),
                    start: run.started,
                    runtime: run.runtime,
                    send: run.sent,
                    receive: run.received,
                    // Killed by a signal: Exitval 0 and the signal, as GNU parallel
                    // logs it (`--resume-failed` reads the signal column too); -1 for
                    // a job its timeout stopped, as GNU parallel logs that.
                    exitval: match run.ending {
                        Ending::TimedOut => -1,
                        _ => status.code().unwrap_or(0),
                    },
                    signal: status.signal().unwrap_or(0),
                    command: finished.command.clone(),
                });
                let failed = !(run.ending == Ending::Exited && status.success());
                (record, failed, note)
            }
            Outcome::Error(err) => {
                if err.is_not_found() {
                    self.summary.not_found += 1;
                }
                let exitval = if err.is_not_found() { 127 } else { -1 };
                let record = JobRecord {
                    host: finished.host.clone(),
                    ..JobRecord::not_run(finished.seq, exitval, &finished.command)
                };
                (
                    Some(record),
                    true,
                    Some(format!("job {}: {}", finished.seq, crate::error_chain(err))),
                )
            }
            Outcome::Transfer(reason) => {
                let record = JobRecord {
                    host: finished.host.clone(),
                    ..JobRecord::not_run(finished.seq, 255, &finished.command)
                };
                (
                    Some(record),
                    true,
                    Some(format!("job {}: {reason}", finished.seq)),
                )
            }
            Outcome::Skipped | Outcome::Shown | Outcome::Lost(..) => return,
            Outcome::Declined => {
                let record = JobRecord {
                    host: finished.host.clone(),
                    ..JobRecord::not_run(finished.seq, -2, &finished.command)
                };
                (Some(record), true, None)
            }
            Outcome::Unusable(reason) => {
                let record = JobRecord::not_run(finished.seq, -1, "");
                (Some(record), true, Some(reason.clone()))
            }
        };
        if let Some(err) = &finished.codec_error {
            failed = true;
            let said = format!("job {}: {err}: its output may be incomplete", finished.seq);
            note = Some(match note {
                Some(note) => format!("{note}; {said}"),
                None => said,
            });
        }
        finished.failed = failed;
        let note = match (note, finished.attempts > 1) {
            (Some(note), true) => Some(format!("{note} (after {} attempts)", finished.attempts)),
            (note, _) => note,
        };
        if failed {
            self.summary.failed += 1;
        }
        if self.options.delay_auto
            && let Some(delay) = self.delay
        {
            self.delay = Some(delay.mul_f64(if failed { 1.3 } else { 0.9 }));
        }
        if let Some(halt) = self.options.halt
            && (failed == (halt.on == HaltOn::Fail))
        {
            self.halt_counted += 1;
            if !self.summary.halted && halt.reached(self.halt_counted, self.summary.jobs) {
                self.summary.halted = true;
                // As in GNU parallel: the run exits as the job that halted it did
                // (0 for a halt on success).
                self.summary.halt_status = Some(match halt.on {
                    HaltOn::Success => 0,
                    HaltOn::Fail => job_status(&finished.outcome),
                });
                self.halted.store(true, Ordering::SeqCst);
                if halt.when == HaltWhen::Now {
                    self.cancel.cancel();
                }
            }
        }
        if let Some(note) = note
            && let Err(err) = self.reporter.note(&note)
        {
            self.fail(RunError::Output(err));
        }
        // Written when the output is printed, so that with -k the joblog is in
        // input order too, as GNU parallel writes it.
        finished.record = record;
    }

    fn print(&mut self, mut finished: Finished) {
        if matches!(finished.outcome, Outcome::Skipped) {
            return;
        }
        // Declined by skip(): only its joblog line, as GNU parallel.
        let declined = matches!(finished.outcome, Outcome::Declined);
        let mut printed = None;
        if self.error.is_none()
            && !declined
            && let Some(results) = self.results.as_mut()
        {
            let job = results::JobResult {
                seq: finished.seq,
                slot: finished.slot,
                args: &finished.args,
                record: finished.record.as_ref(),
                command: &finished.command,
            };
            match results.save(&job, &mut finished.stdout, &mut finished.stderr) {
                Ok(line) => printed = Some(line),
                Err(err) => self.fail(RunError::Results {
                    path: err.path,
                    source: err.source,
                }),
            }
        }
        if let (Some(log), Some(path), Some(record)) = (
            self.joblog.as_deref_mut(),
            &self.options.joblog,
            finished.record.take(),
        ) {
            // Attempts lost with a host come first, as retries of the same job.
            let written = finished
                .lost
                .iter()
                .chain([&record])
                .try_for_each(|record| log.write(record));
            if let Err(source) = written {
                let path = path.clone();
                self.fail(RunError::Joblog { path, source });
            }
        }
        if self.error.is_some() || declined {
            // Output is broken (drop the rest quietly), or the job was declined.
            return;
        }
        let written = match printed {
            // Saved: GNU parallel prints nothing, or with --files the file's name.
            Some(None) => Ok(()),
            Some(Some(line)) => {
                let mut name = Spool::default();
                name.write_all(&line).and_then(|()| {
                    self.reporter.job_output(
                        &mut name,
                        &mut Spool::default(),
                        finished.tag.as_deref(),
                    )
                })
            }
            None => self.reporter.job_output(
                &mut finished.stdout,
                &mut finished.stderr,
                finished.tag.as_deref(),
            ),
        };
        match written {
            Ok(()) => {}
            // The job's own output could not be restored: a failed job, not a
            // broken run.
            Err(err) if crate::process::CodecError::within(&err).is_some() => {
                let note = format!("job {}: {err}: its output may be incomplete", finished.seq);
                if !finished.failed {
                    self.summary.failed += 1;
                }
                if let Err(err) = self.reporter.note(&note) {
                    self.fail(RunError::Output(err));
                }
            }
            Err(err) => self.fail(RunError::Output(err)),
        }
    }
}

#[cfg(test)]
mod tests {
    /// Workers that take jobs at once get their slots in the jobs' order: with no slot
    /// given back, the job numbered k (the k-th to leave the queue) has slot k.
    #[test]
    fn slots_are_taken_in_the_order_jobs_leave_the_queue() {
        const JOBS: usize = 5_000;
        let shared = WorkerShared::default();
        let (tx, rx) = crossbeam_channel::unbounded();
        for seq in 1..=JOBS {
            tx.send(Job {
                seq,
                ticket: seq as u64 - 1,
                args: JobArgs::default(),
                stdin: None,
                lost: Vec::new(),
                printed: None,
            })
            .unwrap();
        }
        drop(tx);
        let taken = std::sync::Mutex::new(Vec::new());
        thread::scope(|scope| {
            for _ in 0..8 {
                scope.spawn(|| {
                    while let Ok(job) = rx.recv() {
                        let slot = shared.take_slot(job.ticket, true);
                        taken.lock().unwrap().push((job.seq, slot));
                    }
                });
            }
        });
        let taken = taken.into_inner().unwrap();
        assert_eq!(taken.len(), JOBS);
        for (seq, slot) in taken {
            assert_eq!(slot, Some(seq), "job {seq}");
        }
    }

    /// A `--fifo` block whose job never opened it is let go however the writer
    /// thread and the drop interleave: dropped at once, the writer has usually not
    /// reached its open yet (the drop must not leave it waiting there for ever).
    #[test]
    fn unopened_fifo_blocks_are_let_go_whenever_their_writer_gets_to_its_open() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().to_owned();
        let (done, finished) = std::sync::mpsc::channel();
        thread::spawn(move || {
            let block = crate::process::Input::Bytes(vec![b'x'; 200_000].into());
            for _ in 0..200 {
                drop(BlockFile::new(&block, BlockAs::Fifo, &path).unwrap());
            }
            let _ = done.send(());
        });
        assert!(
            finished.recv_timeout(Duration::from_secs(60)).is_ok(),
            "a dropped FIFO block hung"
        );
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            0,
            "left behind"
        );
    }

    use super::*;

    #[test]
    fn exit_code_precedence() {
        let summary = |failed, timed_out, not_found, interrupted_by| Summary {
            jobs: 200,
            failed,
            timed_out,
            not_found,
            interrupted_by,
            ..Summary::default()
        };
        assert_eq!(summary(0, 0, 0, None).exit_code(), 0);
        assert_eq!(summary(3, 0, 0, None).exit_code(), 3);
        assert_eq!(summary(100, 0, 0, None).exit_code(), 100);
        assert_eq!(summary(150, 0, 0, None).exit_code(), 101);
        // A timed-out job is one of the failed ones, as GNU parallel counts.
        assert_eq!(summary(2, 1, 0, None).exit_code(), 2);
        assert_eq!(summary(2, 1, 1, None).exit_code(), 127);
        assert_eq!(summary(2, 1, 1, Some(2)).exit_code(), 130);
        assert_eq!(summary(0, 0, 0, Some(15)).exit_code(), 143);
    }

    #[test]
    fn keep_order_window_is_bounded_but_never_by_the_slots() {
        let mut options =
            RunOptions::new(Template::parse::<String>(&[], &TemplateOptions::default()).unwrap());
        // It was clamp(4 × j, 64, 1024): a slow first job stopped new starts after 64
        // jobs at -j 2.
        options.jobs = NonZeroUsize::new(2).unwrap();
        assert_eq!(options.window(), 262_144);
        options.jobs = NonZeroUsize::new(10_000).unwrap();
        assert_eq!(options.window(), 262_144);
    }
}
