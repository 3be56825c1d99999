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

mod joblog;
mod template;

use std::collections::BTreeMap;
use std::io::{self, BufRead, Write};
use std::num::NonZeroUsize;
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender, never, select};
use thiserror::Error;

pub use joblog::{HEADER as JOBLOG_HEADER, JobLog, JobRecord};
pub use template::{EmptyTemplate, Template};

use super::{CancelToken, DEFAULT_GRACE, Ending, Execution, ProcessError, Spool, format_duration};

/// How to run the jobs.
#[derive(Clone, Debug)]
pub struct RunOptions {
    /// Jobs running at once.
    pub jobs: NonZeroUsize,
    /// Stop any job that runs longer than this.
    pub timeout: Option<Duration>,
    /// Pause between SIGTERM and SIGKILL when a job must be stopped.
    pub grace: Duration,
    /// Print outputs in input order.
    pub keep_order: bool,
    /// Start no new job after the first failure.
    pub halt_on_error: bool,
    /// Run a failed job up to this many more times; only the last attempt is printed.
    pub retries: u32,
    /// Write GNU parallel's joblog here.
    pub joblog: Option<PathBuf>,
    /// How each line becomes a command.
    pub template: Template,
}

impl RunOptions {
    /// Options with defaults: one job per core, no timeout, completion order.
    pub fn new(template: Template) -> Self {
        Self {
            jobs: thread::available_parallelism().unwrap_or(NonZeroUsize::MIN),
            timeout: None,
            grace: DEFAULT_GRACE,
            keep_order: false,
            halt_on_error: false,
            retries: 0,
            joblog: None,
            template,
        }
    }

    /// With `keep_order`, how many jobs may run or wait, counting from the oldest job
    /// whose output is not printed yet: 4 per worker, at least 64 and at most 1,024.
    pub fn window(&self) -> usize {
        (4 * self.jobs.get()).clamp(64, 1024)
    }
}

/// Where the runner's output goes. One value owns both streams, so job outputs and
/// concur's own notes never interleave.
pub trait Reporter {
    /// Prints one finished job's output: all of its stdout, then all of its stderr.
    fn job_output(&mut self, stdout: &mut Spool, stderr: &mut Spool) -> io::Result<()>;
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
    fn job_output(&mut self, stdout: &mut Spool, stderr: &mut Spool) -> io::Result<()> {
        stdout.copy_to(&mut self.out)?;
        self.out.flush()?;
        stderr.copy_to(&mut self.err)?;
        self.err.flush()
    }

    fn note(&mut self, message: &str) -> io::Result<()> {
        writeln!(self.err, "concur: {message}")
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
    /// Whether `halt_on_error` stopped new jobs from starting.
    pub halted: bool,
}

impl Summary {
    /// The exit status `concur run` documents: 128 + signal if interrupted; else 127 if
    /// a command was not found; else 124 if a job timed out; else the number of failed
    /// jobs, capped at 100; 0 if every job succeeded.
    pub fn exit_code(&self) -> u8 {
        if let Some(signal) = self.interrupted_by {
            return u8::try_from(128 + signal).unwrap_or(255);
        }
        if self.not_found > 0 {
            127
        } else if self.timed_out > 0 {
            124
        } else {
            u8::try_from(self.failed.min(100)).unwrap_or(100)
        }
    }
}

/// What stopped the runner itself (as opposed to a job failing).
#[derive(Debug, Error)]
pub enum RunError {
    /// Reading the input failed.
    #[error("cannot read the job list (line {line})")]
    Input {
        /// The line being read.
        line: usize,
        /// What failed.
        #[source]
        source: io::Error,
    },
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

/// An input line, or why it cannot be a job.
type Line = Result<String, String>;

struct Job {
    seq: usize,
    line: String,
}

/// How one job ended, after retries.
enum Outcome {
    Ran(Execution),
    Error(ProcessError),
    /// The line could not become a command.
    Unusable(String),
    /// Queued, but not started: the run was halted or cancelled first.
    Skipped,
}

struct Finished {
    seq: usize,
    command: String,
    outcome: Outcome,
    attempts: u32,
    stdout: Spool,
    stderr: Spool,
}

/// Runs one job per line of `input` and prints their outputs through `reporter`.
///
/// Returns the [`Summary`] when every started job has finished; job failures are in the
/// summary, not errors. Errors are for the runner itself: unreadable input, unwritable
/// output or joblog. After such an error, running jobs are stopped before returning.
pub fn run(
    options: &RunOptions,
    input: Box<dyn BufRead + Send>,
    reporter: &mut dyn Reporter,
    cancel: &CancelToken,
) -> Result<Summary, RunError> {
    let mut joblog = match &options.joblog {
        Some(path) => Some(JobLog::create(path).map_err(|source| RunError::Joblog {
            path: path.clone(),
            source,
        })?),
        None => None,
    };
    let jobs = options.jobs.get();
    crate::limits::ensure_threads(jobs + 1, crate::limits::DEFAULT_STACK)
        .map_err(|source| RunError::Start { jobs, source })?;

    let (job_tx, job_rx) = crossbeam_channel::unbounded::<Job>();
    let (done_tx, done_rx) = crossbeam_channel::unbounded::<Finished>();
    let (line_tx, line_rx) = crossbeam_channel::bounded::<(usize, io::Result<Line>)>(256);

    // The reader is detached: if the run stops early it may still be blocked reading
    // (say, a terminal); it ends with the input or the process.
    thread::Builder::new()
        .name("run-input".into())
        .spawn(move || read_lines(input, &line_tx))
        .map_err(|source| RunError::Start { jobs, source })?;

    let halted = AtomicBool::new(false);
    thread::scope(|scope| {
        let mut started = Ok(());
        for i in 0..jobs {
            let (job_rx, done_tx, halted) = (job_rx.clone(), done_tx.clone(), &halted);
            let spawned = thread::Builder::new()
                .name(format!("run-worker-{i}"))
                .spawn_scoped(scope, move || {
                    work(options, &job_rx, &done_tx, cancel, halted)
                });
            if let Err(source) = spawned {
                started = Err(RunError::Start { jobs, source });
                break;
            }
        }
        drop(done_tx);
        let result = started.and_then(|()| {
            let mut scheduler = Scheduler::new(options, reporter, joblog.as_mut(), cancel, &halted);
            scheduler.drive(&line_rx, &job_tx, &done_rx)
        });
        // Closing the job channel lets the workers finish; the scope joins them.
        drop(job_tx);
        result
    })
}

fn read_lines(mut input: Box<dyn BufRead + Send>, lines: &Sender<(usize, io::Result<Line>)>) {
    let mut buf = Vec::new();
    for number in 1.. {
        buf.clear();
        let item = match input.read_until(b'\n', &mut buf) {
            Ok(0) => return,
            Ok(_) => {
                if buf.last() == Some(&b'\n') {
                    buf.pop();
                }
                Ok(String::from_utf8(std::mem::take(&mut buf)).map_err(|e| {
                    let at = e.utf8_error().valid_up_to();
                    format!(
                        "input line {number} is not valid UTF-8 (byte 0x{:02x} at column {}); not run",
                        e.as_bytes()[at],
                        at + 1
                    )
                }))
            }
            Err(e) => Err(e),
        };
        let stop = item.is_err();
        if lines.send((number, item)).is_err() || stop {
            return;
        }
    }
}

/// A worker: runs jobs until the job channel closes. A job still queued when the run
/// halts or is cancelled comes back as skipped, never started.
fn work(
    options: &RunOptions,
    jobs: &Receiver<Job>,
    done: &Sender<Finished>,
    cancel: &CancelToken,
    halted: &AtomicBool,
) {
    let program = options.template.resolve_program();
    for job in jobs {
        if halted.load(Ordering::SeqCst) || cancel.is_cancelled() {
            let skipped = Finished {
                seq: job.seq,
                command: String::new(),
                outcome: Outcome::Skipped,
                attempts: 0,
                stdout: Spool::default(),
                stderr: Spool::default(),
            };
            if done.send(skipped).is_err() {
                return;
            }
            continue;
        }
        let (mut cmd, command) = options.template.command_with(&job.line, program.as_deref());
        cmd = cmd.grace(options.grace);
        if let Some(timeout) = options.timeout {
            cmd = cmd.timeout(timeout);
        }
        let mut attempts = 0;
        let finished = loop {
            attempts += 1;
            let (mut stdout, mut stderr) = (Spool::default(), Spool::default());
            let outcome = match cmd.execute(&mut stdout, &mut stderr, Some(cancel)) {
                Ok(run) => Outcome::Ran(run),
                Err(err) => Outcome::Error(err),
            };
            let retry =
                attempts <= options.retries && !cancel.is_cancelled() && !succeeded(&outcome);
            if !retry {
                if options.halt_on_error && !succeeded(&outcome) {
                    // Raised here, before reporting, so that no job queued behind this
                    // one (on any worker) starts after the failure.
                    halted.store(true, Ordering::SeqCst);
                }
                break Finished {
                    seq: job.seq,
                    command,
                    outcome,
                    attempts,
                    stdout,
                    stderr,
                };
            }
        };
        if done.send(finished).is_err() {
            return;
        }
    }
}

fn succeeded(outcome: &Outcome) -> bool {
    matches!(outcome, Outcome::Ran(run) if run.ending == Ending::Exited && run.status.success())
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
    /// Next sequence number to print, with `keep_order`.
    next_print: usize,
    /// Finished jobs waiting for earlier ones, with `keep_order`.
    waiting: BTreeMap<usize, Finished>,
    running: usize,
    done: usize,
    input_ended: bool,
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
            next_print: 1,
            waiting: BTreeMap::new(),
            running: 0,
            done: 0,
            input_ended: false,
            error: None,
        }
    }

    fn stopping(&self) -> bool {
        self.summary.halted || self.cancel.is_cancelled() || self.error.is_some()
    }

    fn can_start(&self) -> bool {
        // Up to one job per worker waits queued beyond the running ones, so a worker
        // that finishes never waits for this thread to hand it the next job.
        !self.input_ended
            && !self.stopping()
            && self.running < 2 * self.options.jobs.get()
            && (!self.options.keep_order || self.next_seq - self.next_print < self.options.window())
    }

    fn drive(
        &mut self,
        lines: &Receiver<(usize, io::Result<Line>)>,
        jobs: &Sender<Job>,
        done: &Receiver<Finished>,
    ) -> Result<Summary, RunError> {
        let cancelled = self.cancel.subscribe();
        let mut cancel_seen = false;
        loop {
            if self.running == 0 && (self.input_ended || self.stopping()) {
                break;
            }
            let lines = if self.can_start() { lines } else { &never() };
            let cancelled_rx = if cancel_seen { &never() } else { &cancelled };
            select! {
                recv(lines) -> item => match item {
                    Err(_) => self.end_input(),
                    Ok((line, Err(source))) => {
                        self.fail(RunError::Input { line, source });
                        self.end_input();
                    }
                    Ok((seq, Ok(Err(reason)))) => {
                        self.next_seq = seq + 1;
                        self.summary.jobs += 1;
                        self.finish(Finished {
                            seq,
                            command: String::new(),
                            outcome: Outcome::Unusable(reason),
                            attempts: 0,
                            stdout: Spool::default(),
                            stderr: Spool::default(),
                        });
                    }
                    Ok((seq, Ok(Ok(line)))) => {
                        self.next_seq = seq + 1;
                        self.summary.jobs += 1;
                        self.running += 1;
                        // Workers outlive this loop, so the job channel cannot be closed.
                        let _ = jobs.send(Job { seq, line });
                        self.progress();
                    }
                },
                recv(done) -> finished => match finished {
                    Ok(finished) => {
                        self.running -= 1;
                        self.finish(finished);
                    }
                    // Every worker is gone: nothing more can finish.
                    Err(_) => break,
                },
                recv(cancelled_rx) -> _ => cancel_seen = true,
            }
        }
        self.summary.interrupted_by = self.cancel.reason();
        match self.error.take() {
            Some(err) => Err(err),
            None => Ok(std::mem::take(&mut self.summary)),
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

    fn finish(&mut self, finished: Finished) {
        if matches!(finished.outcome, Outcome::Skipped) {
            // Never started: not a job, but its place in the order must still pass.
            self.summary.jobs -= 1;
        } else {
            self.done += 1;
            self.account(&finished);
        }
        if self.options.keep_order {
            self.waiting.insert(finished.seq, finished);
            while let Some(next) = self.waiting.remove(&self.next_print) {
                self.next_print += 1;
                self.print(next);
            }
        } else {
            self.print(finished);
        }
        self.progress();
    }

    /// Counts the outcome, writes its joblog line and notes, and halts if asked to.
    fn account(&mut self, finished: &Finished) {
        let shell = self.options.template.is_shell();
        let (record, failed, note) = match &finished.outcome {
            Outcome::Ran(run) => {
                let status = run.status;
                let not_found = shell && status.code() == Some(127);
                let note = match run.ending {
                    Ending::TimedOut => {
                        self.summary.timed_out += 1;
                        Some(format!(
                            "job {} timed out after {}: {}",
                            finished.seq,
                            format_duration(self.options.timeout.unwrap_or_default()),
                            finished.command
                        ))
                    }
                    Ending::Cancelled => {
                        self.summary.cancelled += 1;
                        None
                    }
                    Ending::Exited if not_found => {
                        self.summary.not_found += 1;
                        None // the shell already said "not found" on the job's stderr
                    }
                    Ending::Exited => None,
                };
                let record = JobRecord {
                    seq: finished.seq,
                    start: run.started,
                    runtime: run.runtime,
                    send: run.sent,
                    receive: run.received,
                    exitval: status.code().unwrap_or(-1),
                    signal: status.signal().unwrap_or(0),
                    command: finished.command.clone(),
                };
                let failed = !(run.ending == Ending::Exited && status.success());
                (record, failed, note)
            }
            Outcome::Error(err) => {
                if err.is_not_found() {
                    self.summary.not_found += 1;
                }
                let exitval = if err.is_not_found() { 127 } else { -1 };
                let record = JobRecord::not_run(finished.seq, exitval, &finished.command);
                (
                    record,
                    true,
                    Some(format!("job {}: {}", finished.seq, crate::error_chain(err))),
                )
            }
            Outcome::Skipped => return,
            Outcome::Unusable(reason) => {
                let record = JobRecord::not_run(finished.seq, -1, "");
                (record, true, Some(reason.clone()))
            }
        };
        let note = match (note, finished.attempts > 1) {
            (Some(note), true) => Some(format!("{note} (after {} attempts)", finished.attempts)),
            (note, _) => note,
        };
        if failed {
            self.summary.failed += 1;
            if self.options.halt_on_error && !self.summary.halted {
                self.summary.halted = true;
                self.halted.store(true, Ordering::SeqCst);
            }
        }
        if let Some(note) = note
            && let Err(err) = self.reporter.note(&note)
        {
            self.fail(RunError::Output(err));
        }
        if let (Some(log), Some(path)) = (self.joblog.as_deref_mut(), &self.options.joblog)
            && let Err(source) = log.write(&record)
        {
            let path = path.clone();
            self.fail(RunError::Joblog { path, source });
        }
    }

    fn print(&mut self, mut finished: Finished) {
        if self.error.is_some() || matches!(finished.outcome, Outcome::Skipped) {
            return; // output is broken: drop the rest quietly
        }
        if let Err(err) = self
            .reporter
            .job_output(&mut finished.stdout, &mut finished.stderr)
        {
            self.fail(RunError::Output(err));
        }
    }
}

#[cfg(test)]
mod tests {
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
        assert_eq!(summary(150, 0, 0, None).exit_code(), 100);
        assert_eq!(summary(2, 1, 0, None).exit_code(), 124);
        assert_eq!(summary(2, 1, 1, None).exit_code(), 127);
        assert_eq!(summary(2, 1, 1, Some(2)).exit_code(), 130);
        assert_eq!(summary(0, 0, 0, Some(15)).exit_code(), 143);
    }

    #[test]
    fn keep_order_window_is_bounded() {
        let mut options = RunOptions::new(Template::Shell(None));
        options.jobs = NonZeroUsize::new(2).unwrap();
        assert_eq!(options.window(), 64);
        options.jobs = NonZeroUsize::new(10_000).unwrap();
        assert_eq!(options.window(), 1024);
    }
}
