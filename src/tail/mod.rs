//! Following many growing files into one merged output (items 62–63).
//!
//! The book migrates a log tailer from threads to asyncio in steps: threads; then mixed
//! threads and coroutines (`run_in_executor` for the blocking tailers,
//! `run_coroutine_threadsafe` for their writes); then fully async, with a dedicated
//! writer thread so that file writes never block the event loop, and debug mode to
//! catch the ones that do. concur has the three designs over one core:
//!
//! * [`Source`]: one followed file. It reads what the file gained, cuts it into whole
//!   lines (holding an unfinished one back), and copes with truncation and rotation.
//! * [`merge_threads`]: a thread per file and a locked writer (the book's Example 3).
//! * [`merge_mixed`]: blocking tailers on `spawn_blocking`, handing batches to an async
//!   writer task through the runtime handle.
//! * [`merge_async`]: a task per file (its reads on `spawn_blocking`, like the book's
//!   `run_in_executor`) and a [`writer::WriteThread`] with its own queue.
//!
//! Tailers wake on inotify events ([`wake`]) and poll every `interval` as a fallback.
//! Output is written in batches of whole lines, so lines never interleave, and every
//! file's lines keep their order. [`debug::Watched`] reports task polls that block the
//! runtime.
//!
//! **What Rust changes.** The three designs differ only in who reads and who writes;
//! the risky part (partial lines, truncation, rotation) is one `Source` they share, so
//! the migration cannot change what gets merged. The runtime is multi-threaded, so a
//! blocking write stalls one worker rather than everything, but it still stalls it,
//! which is why the async design writes from its own thread as the book does.

pub mod bench;
pub mod debug;
pub mod merge_async;
pub mod merge_mixed;
pub mod merge_threads;
mod source;
pub mod wake;
pub mod writer;

use std::io;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;
use thiserror::Error;

pub use source::{FollowOptions, Polled, RETIRE_AFTER, Source, SourceError};

use crate::process::CancelToken;
use wake::{Wake, Watch};
use writer::Output;

/// Which design to run (`--mode`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// A thread per file and a locked writer.
    Threads,
    /// Blocking tailers on `spawn_blocking`, an async writer task.
    Mixed,
    /// Async tailer tasks, a dedicated writer thread.
    Async,
}

/// How to tail.
#[derive(Clone, Debug)]
pub struct TailOptions {
    /// The design.
    pub mode: Mode,
    /// How often to look for new data when no inotify event arrives.
    pub interval: Duration,
    /// Stop once no file has grown for this long.
    pub idle_exit: Option<Duration>,
    /// Start at the end of each file, and whether to follow names.
    pub follow: FollowOptions,
    /// Write `path: ` before each line.
    pub prefix: bool,
    /// Do not use inotify: poll every `interval` only.
    pub poll_only: bool,
    /// Report task polls slower than this (async modes).
    pub debug_slow: Option<Duration>,
}

impl Default for TailOptions {
    fn default() -> Self {
        Self {
            mode: Mode::Threads,
            interval: Duration::from_millis(100),
            idle_exit: None,
            follow: FollowOptions::default(),
            prefix: false,
            poll_only: false,
            debug_slow: None,
        }
    }
}

/// What stops tailing before it starts, or while it runs.
#[derive(Debug, Error)]
pub enum TailError {
    /// No file could be opened (and none is awaited).
    #[error("no file to follow: {0}")]
    NoFiles(String),
    /// The output could not be opened.
    #[error("cannot open the output {}", path.display())]
    Output {
        /// The output path.
        path: PathBuf,
        /// What the OS said.
        #[source]
        source: io::Error,
    },
    /// Writing the merged output failed.
    #[error("cannot write the merged output")]
    Write(#[source] io::Error),
    /// Threads or the runtime could not be started.
    #[error("cannot start the tailers")]
    Start(#[source] io::Error),
}

/// How tailing went.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    /// Files followed.
    pub files: usize,
    /// Files that could not be opened or read.
    pub failed_files: usize,
    /// Bytes written to the output.
    pub bytes: u64,
    /// Whether it stopped because nothing grew for `idle_exit`.
    pub idle_exit: bool,
}

/// Where tailers report notes and errors (one line each, for stderr).
pub type Log = Arc<dyn Fn(String) + Send + Sync>;

/// State shared by the coordinator, the tailers and the writer.
pub(crate) struct Shared {
    stop: AtomicBool,
    started: Instant,
    /// Nanoseconds after `started` when some file last grew.
    last_growth: AtomicU64,
    pub(crate) failed_files: AtomicU64,
    pub(crate) bytes: AtomicU64,
    /// The first write error; it stops everything.
    pub(crate) write_error: std::sync::Mutex<Option<io::Error>>,
    pub(crate) log: Log,
    pub(crate) wakes: Vec<Arc<Wake>>,
    /// Fired to stop, waking the coordinator.
    halt: CancelToken,
}

impl Shared {
    pub(crate) fn stopping(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    /// Stops every tailer (after a final drain) and the writer.
    pub(crate) fn stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
        for wake in &self.wakes {
            wake.wake();
        }
        self.halt.cancel();
    }

    fn touch(&self) {
        let now = self
            .started
            .elapsed()
            .as_nanos()
            .try_into()
            .unwrap_or(u64::MAX);
        self.last_growth.fetch_max(now, Ordering::Relaxed);
    }

    fn idle_for(&self) -> Duration {
        let last = Duration::from_nanos(self.last_growth.load(Ordering::Relaxed));
        self.started.elapsed().saturating_sub(last)
    }

    /// Records a write failure (the first one wins) and stops.
    pub(crate) fn write_failed(&self, err: io::Error) {
        let mut slot = self
            .write_error
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if slot.is_none() {
            *slot = Some(err);
        }
        drop(slot);
        self.stop();
    }
}

/// One poll of one source, as every design does it: the lines read (possibly empty),
/// whether to poll again at once, and whether this tailer is done.
pub(crate) struct Step {
    pub(crate) batch: Vec<u8>,
    pub(crate) more: bool,
    pub(crate) done: bool,
}

pub(crate) fn poll_once(source: &mut Source, shared: &Shared) -> Step {
    let stopping = shared.stopping();
    let mut batch = Vec::new();
    let polled = if stopping {
        source.finish(&mut batch)
    } else {
        source.poll(&mut batch)
    };
    match polled {
        Ok(polled) => {
            for note in polled.notes {
                (shared.log)(note);
            }
            if polled.grew {
                shared.touch();
            }
            Step {
                batch,
                more: polled.more,
                done: stopping,
            }
        }
        Err(err) => {
            (shared.log)(crate::error_chain(&err));
            shared.failed_files.fetch_add(1, Ordering::Relaxed);
            Step {
                batch,
                more: false,
                done: true,
            }
        }
    }
}

/// Tails `files` into `output` until `cancel` fires (Ctrl-C) or, with `idle_exit`,
/// until nothing has grown for that long; then drains every file and flushes.
pub fn run(
    files: &[PathBuf],
    options: &TailOptions,
    output: Output,
    log: Log,
    cancel: &CancelToken,
) -> Result<Summary, TailError> {
    let mut sources = Vec::new();
    let mut failed = 0;
    for path in files {
        match Source::open(path, options.prefix, options.follow) {
            Ok(source) => {
                if !source.is_open() {
                    log(format!(
                        "{}: does not exist yet; waiting for it",
                        path.display()
                    ));
                }
                sources.push(source);
            }
            Err(err) => {
                failed += 1;
                log(crate::error_chain(&err));
            }
        }
    }
    if sources.is_empty() {
        return Err(TailError::NoFiles(if files.is_empty() {
            "no files given".into()
        } else {
            "none of the files could be opened".into()
        }));
    }
    let wakes: Vec<Arc<Wake>> = sources.iter().map(|_| Arc::new(Wake::default())).collect();
    let _watch = if options.poll_only {
        None
    } else {
        let watched: Vec<_> = sources
            .iter()
            .zip(&wakes)
            .map(|(s, w)| (s.path().to_owned(), Arc::clone(w)))
            .collect();
        match Watch::start(&watched) {
            Ok(watch) => Some(watch),
            Err(err) => {
                log(format!(
                    "inotify unavailable ({err}); polling every {:?}",
                    options.interval
                ));
                None
            }
        }
    };
    let shared = Arc::new(Shared {
        stop: AtomicBool::new(false),
        started: Instant::now(),
        last_growth: AtomicU64::new(0),
        failed_files: AtomicU64::new(failed),
        bytes: AtomicU64::new(0),
        write_error: std::sync::Mutex::new(None),
        log,
        wakes,
        halt: CancelToken::new().map_err(TailError::Start)?,
    });
    let files = sources.len();
    let coordinator = {
        let (shared, cancel, idle_exit) = (Arc::clone(&shared), cancel.clone(), options.idle_exit);
        std::thread::Builder::new()
            .name("tail-coordinator".into())
            .spawn(move || coordinate(&shared, &cancel, idle_exit))
            .map_err(TailError::Start)?
    };
    let ran = match options.mode {
        Mode::Threads => merge_threads::run(sources, options, output, &shared),
        Mode::Mixed => merge_mixed::run(sources, options, output, &shared),
        Mode::Async => merge_async::run(sources, options, output, &shared),
    };
    shared.stop();
    let idle = coordinator.join().unwrap_or(false);
    ran?;
    if let Some(err) = shared
        .write_error
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .take()
    {
        return Err(TailError::Write(err));
    }
    Ok(Summary {
        files,
        failed_files: shared.failed_files.load(Ordering::Relaxed) as usize,
        bytes: shared.bytes.load(Ordering::Relaxed),
        idle_exit: idle,
    })
}

/// Waits for Ctrl-C, a stop, or `idle_exit` of quiet; then stops everything. Returns
/// whether it stopped for idleness.
fn coordinate(shared: &Shared, cancel: &CancelToken, idle_exit: Option<Duration>) -> bool {
    let (cancelled, halted) = (cancel.subscribe(), shared.halt.subscribe());
    loop {
        let timeout = match idle_exit {
            Some(idle) => {
                let quiet = shared.idle_for();
                if quiet >= idle {
                    shared.stop();
                    return true;
                }
                idle - quiet
            }
            None => Duration::from_secs(3600),
        };
        crossbeam_channel::select! {
            recv(cancelled) -> _ => break,
            recv(halted) -> _ => return false,
            default(timeout) => {}
        }
    }
    shared.stop();
    false
}
