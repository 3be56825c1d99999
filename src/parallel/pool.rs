//! A real process pool: the book's `ProcessPoolExecutor`, with its pickle-over-a-pipe
//! made explicit.
//!
//! Workers are the `concur` binary itself, started as `concur worker --task NAME` (a
//! hidden subcommand). Tasks go to a worker's stdin and results come back on its stdout
//! as frames: a 4-byte little-endian length, then the value in postcard (a compact
//! serde format). A request carries a chunk of `(index, task)`; the worker answers
//! each task as soon as it is done, so the parent always knows which task a worker was
//! on when it died. That task fails, reported with its item; the rest of the chunk goes
//! back to the queue; a fresh worker takes the dead one's place.

use std::fmt;
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::process::{Child, ChildStdin, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::{Mutex, PoisonError};
use std::thread;

use crossbeam_channel::{Receiver, Sender, select};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::process::CancelToken;

/// A kind of work a pool worker can do. Register new kinds in [`serve_named`].
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

#[derive(Serialize, Deserialize)]
struct Reply<O> {
    index: u64,
    output: O,
}

/// Writes one frame: the length, then the postcard bytes.
pub fn write_frame(out: &mut impl Write, value: &impl Serialize) -> io::Result<()> {
    let bytes = postcard::to_stdvec(value).map_err(io::Error::other)?;
    let len = u32::try_from(bytes.len()).map_err(|_| io::Error::other("frame too large"))?;
    out.write_all(&len.to_le_bytes())?;
    out.write_all(&bytes)
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
    let len = u32::from_le_bytes(len) as usize;
    if len > MAX_FRAME {
        return Err(io::Error::other(format!(
            "frame of {len} bytes is over the limit"
        )));
    }
    let mut bytes = vec![0; len];
    input.read_exact(&mut bytes)?;
    postcard::from_bytes(&bytes)
        .map(Some)
        .map_err(io::Error::other)
}

/// The worker's side: runs the tasks it is sent until its input ends.
///
/// `abort_on` is fault injection for tests: the worker aborts (as a crash would) when
/// it reaches the task with that index.
pub fn serve<T: Task>(
    input: impl Read,
    output: impl Write,
    abort_on: Option<u64>,
) -> io::Result<()> {
    let mut input = BufReader::new(input);
    let mut output = BufWriter::new(output);
    while let Some(request) = read_frame::<Request<T>>(&mut input)? {
        for (index, task) in request.items {
            if abort_on == Some(index) {
                std::process::abort();
            }
            write_frame(
                &mut output,
                &Reply {
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

/// Serves the task registered under `name` on stdin and stdout (the hidden
/// `concur worker` subcommand).
pub fn serve_named(name: &str, abort_on: Option<u64>) -> io::Result<()> {
    match name {
        super::gcd::GcdTask::NAME => {
            serve::<super::gcd::GcdTask>(io::stdin().lock(), io::stdout().lock(), abort_on)
        }
        other => Err(io::Error::other(format!(
            "no task named {other:?} is registered"
        ))),
    }
}

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
}

impl PoolOptions {
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
}

/// One worker process and its pipes. Dropping it kills and reaps the process.
struct Worker {
    child: Child,
    stdin: Option<BufWriter<ChildStdin>>,
    stdout: BufReader<ChildStdout>,
}

impl Worker {
    fn spawn(options: &PoolOptions, task: &str) -> io::Result<Self> {
        let mut child = Command::new(&options.program)
            .args(["worker", "--task", task])
            .args(&options.worker_args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()?;
        let stdin = child
            .stdin
            .take()
            .ok_or_else(|| io::Error::other("no stdin"))?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| io::Error::other("no stdout"))?;
        Ok(Self {
            child,
            stdin: Some(BufWriter::new(stdin)),
            stdout: BufReader::new(stdout),
        })
    }

    fn send<T: Serialize>(&mut self, request: &Request<T>) -> io::Result<()> {
        let stdin = self
            .stdin
            .as_mut()
            .ok_or_else(|| io::Error::other("stdin closed"))?;
        write_frame(stdin, request)?;
        stdin.flush()
    }

    /// Kills (if still running) and reaps; returns how it ended.
    fn reap(&mut self) -> Option<ExitStatus> {
        drop(self.stdin.take());
        let _ = self.child.kill();
        self.child.wait().ok()
    }

    /// Closes its input so it exits on its own, and reaps it.
    fn close(mut self) {
        drop(self.stdin.take());
        let _ = self.child.wait();
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        if self.stdin.is_some() {
            self.reap();
        }
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

type Chunk<T> = Vec<(u64, T)>;
type Outcome<O> = (usize, Result<O, TaskFailure>);

struct Channels<T: Task> {
    queue: Receiver<Chunk<T>>,
    requeue: Sender<Chunk<T>>,
    done: Receiver<()>,
    results: Sender<Outcome<T::Output>>,
}

/// One worker slot: takes chunks from the queue and runs them on its worker,
/// replacing the worker when it dies. Returns how many replacements it started.
fn drive<T: Task>(
    mut worker: Option<Worker>,
    options: &PoolOptions,
    channels: &Channels<T>,
    pids: &Mutex<Vec<u32>>,
    cancel: &CancelToken,
) -> usize {
    let mut respawns = 0;
    loop {
        let chunk = select! {
            recv(channels.queue) -> chunk => match chunk { Ok(chunk) => chunk, Err(_) => break },
            recv(channels.done) -> _ => break,
        };
        let mut current = match worker.take() {
            Some(w) => w,
            None => match Worker::spawn(options, T::NAME) {
                Ok(w) => {
                    respawns += 1;
                    pids.lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .push(w.child.id());
                    w
                }
                Err(err) => {
                    for (index, item) in chunk {
                        let failure = TaskFailure {
                            index: index as usize,
                            item: item.to_string(),
                            reason: format!("no worker to run it: cannot start one ({err})"),
                        };
                        let _ = channels.results.send((index as usize, Err(failure)));
                    }
                    continue;
                }
            },
        };
        let sent = current.send(&Request {
            items: chunk.clone(),
        });
        let mut answered = 0;
        if sent.is_ok() {
            while answered < chunk.len() {
                match read_frame::<Reply<T::Output>>(&mut current.stdout) {
                    Ok(Some(reply)) if reply.index == chunk[answered].0 => {
                        let _ = channels
                            .results
                            .send((reply.index as usize, Ok(reply.output)));
                        answered += 1;
                    }
                    _ => break,
                }
            }
        }
        if answered == chunk.len() {
            worker = Some(current);
            continue;
        }
        // The worker died (or garbled its answer) on task `answered`. Forget its pid
        // before reaping it, so a cancel never signals a pid the OS may have reused.
        let pid = current.child.id();
        pids.lock()
            .unwrap_or_else(PoisonError::into_inner)
            .retain(|&p| p != pid);
        let status = current.reap();
        if cancel.is_cancelled() {
            break;
        }
        let (index, item) = &chunk[answered];
        let failure = TaskFailure {
            index: *index as usize,
            item: item.to_string(),
            reason: describe(status),
        };
        let _ = channels.results.send((*index as usize, Err(failure)));
        let rest: Chunk<T> = chunk[answered + 1..].to_vec();
        if !rest.is_empty() {
            let _ = channels.requeue.send(rest);
        }
    }
    if let Some(worker) = worker {
        worker.close();
    }
    respawns
}

/// Runs every task on a pool of worker processes and returns one result per task, in
/// input order. Workers are started here and stopped (and reaped) before it returns,
/// including when `cancel` fires, which makes it return [`PoolError::Cancelled`].
pub fn map<T: Task>(
    tasks: &[T],
    options: &PoolOptions,
    cancel: &CancelToken,
) -> Result<PoolRun<T::Output>, PoolError> {
    let spawn_error = |source| PoolError::Spawn {
        program: options.program.clone(),
        source,
    };
    let mut workers = Vec::with_capacity(options.workers.get());
    for _ in 0..options.workers.get() {
        workers.push(Worker::spawn(options, T::NAME).map_err(spawn_error)?);
    }
    let pids = Mutex::new(workers.iter().map(|w| w.child.id()).collect::<Vec<_>>());
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
        let _ = queue_tx.send(piece.to_vec());
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
    let (respawns, was_cancelled) = thread::scope(|s| {
        let drivers: Vec<_> = workers
            .into_iter()
            .map(|worker| {
                let (channels, pids) = (&channels, &pids);
                s.spawn(move || drive(Some(worker), options, channels, pids, cancel))
            })
            .collect();
        let mut received = 0;
        let mut was_cancelled = false;
        while received < tasks.len() {
            select! {
                recv(results_rx) -> outcome => {
                    let Ok((index, result)) = outcome else { break };
                    if results[index].is_none() {
                        received += 1;
                    }
                    results[index] = Some(result);
                }
                recv(cancelled) -> _ => {
                    was_cancelled = true;
                    for &pid in pids.lock().unwrap_or_else(PoisonError::into_inner).iter() {
                        if let Some(pid) = rustix::process::Pid::from_raw(pid as i32) {
                            // The driver reaps it; until then the pid cannot be reused.
                            let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
                        }
                    }
                    break;
                }
            }
        }
        drop(done_tx);
        let respawns = drivers
            .into_iter()
            .map(|d| d.join().unwrap_or(0))
            .sum::<usize>();
        (respawns, was_cancelled)
    });
    if was_cancelled {
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
            workers: NonZeroUsize::new(workers).expect("positive"),
            chunk: chunk.and_then(NonZeroUsize::new),
            program: PathBuf::from("concur"),
            worker_args: Vec::new(),
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
