//! Following many growing files into one merged output (items 62–63).
//!
//! The book migrates a log tailer from threads to asyncio in steps: threads; then mixed
//! threads and coroutines (`run_in_executor` for the blocking tailers,
//! `run_coroutine_threadsafe` for their writes); then fully async, with a dedicated
//! writer thread so that file writes never block the event loop, and debug mode to
//! catch the ones that do. concur has the three designs, and its own, over one core:
//!
//! * [`Source`]: one followed file. It reads what the file gained, cuts it into whole
//!   lines (holding an unfinished one back), and copes with truncation, rotation,
//!   unreadable moments (retries) and `copytruncate` (it reads the copy).
//! * [`merge_events`] (the default): one thread pumps inotify, reads and writes, as GNU
//!   tail does; the least CPU per line.
//! * [`merge_threads`]: a thread per file and a locked writer (the book's Example 3).
//! * [`merge_mixed`]: blocking tailers on `spawn_blocking`, handing batches to an async
//!   writer task through the runtime handle.
//! * [`merge_async`]: a task per file (its reads on `spawn_blocking`, like the book's
//!   `run_in_executor`) and a [`writer::WriteThread`] with its own queue.
//!
//! Tailers sleep until an inotify event on their file's directory wakes them ([`wake`]);
//! polling every `interval` is the fallback, and is used only for the files inotify
//! cannot speak for (an old file drained after a rotation, a file being retried).
//! Output is written in batches of whole lines, so lines never interleave, and every
//! file's lines keep their order. [`debug::Watched`] reports task polls that block the
//! runtime. [`state`] saves and resumes positions (`--state`); `globbing` follows new
//! files that match a pattern; `watchers` stop tailing when the output's reader or the
//! `--pid` process goes away.
//!
//! **What Rust changes.** The three designs differ only in who reads and who writes;
//! the risky part (partial lines, truncation, rotation) is one `Source` they share, so
//! the migration cannot change what gets merged. The runtime is multi-threaded, so a
//! blocking write stalls one worker rather than everything, but it still stalls it,
//! which is why the async design writes from its own thread as the book does.

#[cfg(feature = "cli")]
pub(crate) mod bench;
pub mod debug;
mod globbing;
pub mod merge_async;
pub mod merge_events;
pub mod merge_mixed;
pub mod merge_threads;
mod shape;
mod source;
pub mod state;
mod stream;
pub mod wake;
mod watchers;
pub mod writer;

use std::collections::{HashMap, HashSet};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use serde::Serialize;
use thiserror::Error;

pub use source::{
    DEFAULT_MAX_LINE, FollowOptions, Polled, RETIRE_AFTER, Source, SourceError, Start,
};

use crate::process::CancelToken;
use globbing::glob_dirs;
pub use state::Position;
use wake::{Wake, Watch};
use writer::Output;

/// Which design to run (`--mode`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// One thread: inotify, reads and writes in one loop, like GNU tail (the default).
    Events,
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
    /// How often to look for new data when inotify cannot say (`--poll`, no inotify,
    /// and files that need it: an old file drained after a rotation, a file retried).
    pub interval: Duration,
    /// Stop once no file has grown for this long.
    pub idle_exit: Option<Duration>,
    /// Where to start, whether to follow names, retry, cut long lines.
    pub follow: FollowOptions,
    /// Write `path: ` before each line.
    pub prefix: bool,
    /// Do not use inotify: poll every `interval` only.
    pub poll_only: bool,
    /// Report task polls slower than this (async modes).
    pub debug_slow: Option<Duration>,
    /// Stop (after draining) once every one of these processes has exited (`--pid`).
    pub pids: Vec<u32>,
    /// Write a `==> path <==` header before the lines of each file, whenever the file
    /// they come from changes (`-v`, as GNU tail).
    pub headers: bool,
    /// Write each line as a JSON object, `{"file": …, "line": …}` (`--json`).
    pub json: bool,
    /// Follow every file whose path matches one of these, now and later (`--glob`).
    pub globs: Vec<String>,
    /// Save where each file was read up to here, and resume from it (`--state`). The
    /// output must then be a file opened for appending.
    pub state: Option<PathBuf>,
}

impl Default for TailOptions {
    fn default() -> Self {
        Self {
            mode: Mode::Events,
            interval: Duration::from_millis(100),
            idle_exit: None,
            follow: FollowOptions::default(),
            prefix: false,
            poll_only: false,
            debug_slow: None,
            pids: Vec::new(),
            headers: false,
            json: false,
            globs: Vec::new(),
            state: None,
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
    /// `--state` was asked for with the output on standard output.
    #[error("--state needs the output to be a file (-o OUT), to cut it back on restart")]
    StateNeedsFile,
    /// The `--state` file could not be read or written.
    #[error(transparent)]
    State(#[from] state::StateError),
    /// A `--glob` pattern that concur cannot follow.
    #[error("--glob {pattern}: {why}")]
    Glob {
        /// The pattern.
        pattern: String,
        /// What is wrong with it.
        why: String,
    },
}

/// How tailing went.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    /// Files followed.
    pub files: usize,
    /// Files that could not be opened or read, or not followed for want of descriptors.
    pub failed_files: usize,
    /// Bytes written to the output.
    pub bytes: u64,
    /// Lines longer than `--max-line-bytes`, written out in pieces.
    pub cut_lines: u64,
    /// Whether it stopped because nothing grew for `idle_exit`.
    pub idle_exit: bool,
    /// Whether it stopped because the output was closed (a pipe whose reader left).
    pub output_closed: bool,
    /// Whether it stopped because every file had ended or been given up (no Ctrl-C,
    /// `--pid` or `--idle-exit`): streams at their end, names that cannot be followed.
    pub all_ended: bool,
}

/// Where tailers report notes and errors (one line each, for stderr).
pub type Log = Arc<dyn Fn(String) + Send + Sync>;

/// One followed file and its wake-up signal, ready to be tailed by a design.
pub(crate) struct Tailer {
    pub(crate) source: Source,
    pub(crate) wake: Arc<Wake>,
    /// With headers (`-v`): this file's.
    pub(crate) header: Option<Arc<Header>>,
}

/// The tailers to start: the files named at start, then files found later by `--glob`.
/// It closes when tailing stops.
pub(crate) type Feed = tokio::sync::mpsc::UnboundedReceiver<Tailer>;

/// What has been written, for `--state`: OUT's length and each file's positions.
struct Progress {
    path: PathBuf,
    state: state::State,
    /// Positions loaded at start, for files not opened yet (found later by `--glob`).
    resume: HashMap<String, Vec<Position>>,
    /// When the loaded state was saved.
    saved_at: Option<std::time::SystemTime>,
    /// Tells the saver there is something new.
    dirty: crossbeam_channel::Sender<()>,
    /// The first save error, told once.
    failed: bool,
}

/// A followed path's key in the state file, and its positions.
pub(crate) type Mark = (String, Vec<Position>);

/// Lines on their way to the output, and (with `--state`) where their file has been
/// read up to once they are written.
pub(crate) struct Batch {
    pub(crate) bytes: Vec<u8>,
    pub(crate) mark: Option<Mark>,
    /// With headers (`-v`): the file the lines come from.
    pub(crate) from: Option<Arc<Header>>,
}

/// A file's `==> name <==` header, told apart from another file's of the same name
/// by identity.
#[derive(Debug)]
pub(crate) struct Header(String);

/// The `==> name <==` header to write before `batch` (nothing when headers are off,
/// or the last lines written came from the same file). Every design's writer asks.
pub(crate) fn header_bytes(batch: &Batch, last: &mut Option<Arc<Header>>) -> Vec<u8> {
    match &batch.from {
        Some(from)
            if !batch.bytes.is_empty() && !last.as_ref().is_some_and(|l| Arc::ptr_eq(l, from)) =>
        {
            let header = format!(
                "{}==> {} <==\n",
                if last.is_some() { "\n" } else { "" },
                from.0
            );
            *last = Some(Arc::clone(from));
            header.into_bytes()
        }
        _ => Vec::new(),
    }
}

/// The key of a followed path in the state file.
fn state_key(path: &Path) -> String {
    std::path::absolute(path)
        .unwrap_or_else(|_| path.to_owned())
        .display()
        .to_string()
}

/// State shared by the coordinator, the tailers and the writer.
pub(crate) struct Shared {
    stop: AtomicBool,
    started: Instant,
    /// Nanoseconds after `started` when some file last grew.
    last_growth: AtomicU64,
    pub(crate) failed_files: AtomicU64,
    pub(crate) bytes: AtomicU64,
    cut_lines: AtomicU64,
    output_closed: AtomicBool,
    /// The first write error; it stops everything.
    pub(crate) write_error: Mutex<Option<io::Error>>,
    pub(crate) log: Log,
    /// Every tailer's wake, to wake them all to stop.
    wakes: Mutex<Vec<Arc<Wake>>>,
    /// Where new tailers go; dropped to stop.
    feed: Mutex<Option<tokio::sync::mpsc::UnboundedSender<Tailer>>>,
    /// The inotify watch, when it works.
    watch: Option<Watch>,
    /// The timer for files inotify cannot speak for.
    interval: Duration,
    /// Paths being followed (for `--glob`, which must not follow one twice).
    followed: Mutex<HashSet<PathBuf>>,
    files: AtomicU64,
    /// With `--state`: what has been written.
    progress: Option<Mutex<Progress>>,
    /// Fired to stop, waking the coordinator and the watchers.
    halt: CancelToken,
    /// The files being read, so that a name that comes to lead to a file another
    /// source reads takes it over instead of reading it again.
    readers: Arc<source::Readers>,
    /// Write `==> path <==` headers (`-v`).
    headers: bool,
    /// Write lines as JSON objects (`--json`).
    json: bool,
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Shared {
    pub(crate) fn stopping(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    /// Stops every tailer (after a final drain) and the writer.
    pub(crate) fn stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
        drop(lock(&self.feed).take());
        for wake in lock(&self.wakes).iter() {
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
        let mut slot = lock(&self.write_error);
        if slot.is_none() {
            *slot = Some(err);
        }
        drop(slot);
        self.stop();
    }

    /// How long a tailer may sleep before looking again: until woken, when inotify
    /// speaks for its file; `interval` otherwise.
    pub(crate) fn sleep_for(&self, source: &Source) -> Option<Duration> {
        (self.watch.is_none() || source.needs_polling()).then_some(self.interval)
    }

    /// Hands `source` to the running design. Returns false once tailing is stopping.
    fn adopt(&self, mut source: Source) -> bool {
        let wake = Arc::new(Wake::default());
        source.attach(&wake);
        if let Err(err) = source.join(&self.readers) {
            (self.log)(crate::error_chain(&err));
        }
        let path = source.path().to_owned();
        // By name, the name's directory is watched (and a link's target's); by
        // descriptor, the open file itself once it is open (see `poll_once`).
        if let Some(watch) = &self.watch
            && !source.is_streamed()
            && path != Path::new("-")
            && let Err(err) = watch.add_file(&path, Arc::clone(&wake))
        {
            (self.log)(format!(
                "{}: cannot watch ({err}); polling every {:?}",
                path.display(),
                self.interval
            ));
        }
        let feed = lock(&self.feed);
        let Some(feed) = feed.as_ref() else {
            return false;
        };
        lock(&self.wakes).push(Arc::clone(&wake));
        lock(&self.followed).insert(path.clone());
        self.files.fetch_add(1, Ordering::Relaxed);
        let header = self
            .headers
            .then(|| Arc::new(Header(source.display_name())));
        let sent = feed
            .send(Tailer {
                source,
                wake,
                header,
            })
            .is_ok();
        if let Some(watch) = &self.watch {
            watch.kick(); // the events loop takes it at once
        }
        sent
    }

    /// Records that `bytes` more bytes, holding the lines of `marks`, are in the output
    /// (called after they were written and flushed).
    pub(crate) fn committed(&self, bytes: u64, marks: impl IntoIterator<Item = Mark>) {
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
        if let Some(progress) = &self.progress {
            let mut progress = lock(progress);
            progress.state.output_len += bytes;
            for (key, positions) in marks {
                progress.state.files.insert(key, positions);
            }
            let _ = progress.dirty.try_send(());
        }
    }

    /// Saves the `--state` file now (the saver does this once a second, and `run` at
    /// the end); the first failure is told, and tailing goes on.
    fn save_state(&self) {
        let Some(progress) = &self.progress else {
            return;
        };
        let (mut state, path) = {
            let progress = lock(progress);
            (progress.state.clone(), progress.path.clone())
        };
        if let Err(err) = state.save(&path) {
            let mut progress = lock(progress);
            if !progress.failed {
                progress.failed = true;
                (self.log)(crate::error_chain(&err));
            }
        }
    }

    /// The positions a previous run saved for `path`, if any (taken once).
    fn saved_positions(
        &self,
        path: &Path,
    ) -> Option<(Vec<Position>, Option<std::time::SystemTime>)> {
        let progress = self.progress.as_ref()?;
        let mut progress = lock(progress);
        let saved = progress.resume.remove(&state_key(path))?;
        Some((saved, progress.saved_at))
    }

    /// A tailer is done with its file (closed, or failed).
    pub(crate) fn release(&self, tailer_path: &Path, wake: &Arc<Wake>) {
        if let Some(watch) = &self.watch {
            watch.remove_file(tailer_path, wake);
            watch.remove_open_file(wake);
        }
        lock(&self.wakes).retain(|w| !Arc::ptr_eq(w, wake));
        lock(&self.followed).remove(tailer_path);
    }
}

/// One poll of one source, as every design does it: the lines read (possibly empty),
/// whether to poll again at once, and whether this tailer is done.
pub(crate) struct Step {
    pub(crate) batch: Batch,
    pub(crate) more: bool,
    pub(crate) done: bool,
}

impl Batch {
    /// Whether there is nothing to write and no position to record.
    pub(crate) fn is_empty(&self) -> bool {
        self.bytes.is_empty() && self.mark.is_none()
    }
}

/// With `--state`, the source's positions when they changed since the last batch.
fn mark(source: &mut Source, shared: &Shared) -> Option<Mark> {
    if shared.progress.is_none() || source.is_streamed() {
        return None;
    }
    let positions = source.positions();
    if positions == source.last_mark {
        return None;
    }
    source.last_mark.clone_from(&positions);
    Some((state_key(source.path()), positions))
}

pub(crate) fn poll_once(
    source: &mut Source,
    wake: &Arc<Wake>,
    header: Option<&Arc<Header>>,
    shared: &Shared,
) -> Step {
    let stopping = shared.stopping();
    let mut batch_bytes = Vec::new();
    // Without inotify, or for a file it cannot speak for, every look checks the name.
    let look_at_name = wake.take_name() || shared.sleep_for(source).is_some();
    let polled = if stopping {
        source.finish(&mut batch_bytes)
    } else {
        source.poll_with(&mut batch_bytes, look_at_name)
    };
    if let Some(watch) = &shared.watch
        && !source.follows_name()
        && !source.is_streamed()
        && let Some(fd) = source.take_opened()
    {
        // By descriptor: watch the file itself, wherever it is renamed to. Its name's
        // directory was watched only to see it appear.
        match watch.add_open_file(fd, Arc::clone(wake)) {
            Ok(()) => watch.remove_file(source.path(), wake),
            Err(err) => (shared.log)(format!(
                "{}: cannot watch the open file ({err}); looking every 5 s",
                source.path().display()
            )),
        }
    }
    let batch = |bytes: Vec<u8>, source: &mut Source| Batch {
        bytes: if shared.json && !bytes.is_empty() {
            json_lines(&source.display_name(), &bytes)
        } else {
            bytes
        },
        mark: mark(source, shared),
        from: header.cloned(),
    };
    match polled {
        Ok(polled) => {
            for note in polled.notes {
                (shared.log)(note);
            }
            if polled.gave_up {
                shared.failed_files.fetch_add(1, Ordering::Relaxed);
            }
            if polled.grew {
                shared.touch();
            }
            if polled.cut > 0 {
                shared.cut_lines.fetch_add(polled.cut, Ordering::Relaxed);
            }
            Step {
                batch: batch(batch_bytes, source),
                more: polled.more,
                done: stopping || polled.closed,
            }
        }
        Err(err) => {
            (shared.log)(crate::error_chain(&err));
            shared.failed_files.fetch_add(1, Ordering::Relaxed);
            Step {
                batch: batch(batch_bytes, source),
                more: false,
                done: true,
            }
        }
    }
}

/// `--json`: each line of `lines` (every one ends in a newline) as one JSON object,
/// `{"file":"app.log","line":"text"}`. A line that is not UTF-8 is given byte for byte
/// as hex instead, `{"file":…,"line_hex":"ff00…"}`, so nothing is lost or altered.
pub(crate) fn json_lines(file: &str, lines: &[u8]) -> Vec<u8> {
    let file = serde_json::to_string(file).unwrap_or_else(|_| "\"?\"".to_owned());
    let mut out = Vec::with_capacity(lines.len() + lines.len() / 2);
    for line in lines.split_inclusive(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\n").unwrap_or(line);
        out.extend_from_slice(b"{\"file\":");
        out.extend_from_slice(file.as_bytes());
        match std::str::from_utf8(line) {
            Ok(text) => {
                out.extend_from_slice(b",\"line\":");
                let quoted = serde_json::to_string(text).unwrap_or_default();
                out.extend_from_slice(quoted.as_bytes());
            }
            Err(_) => {
                out.extend_from_slice(b",\"line_hex\":\"");
                for byte in line {
                    out.extend_from_slice(format!("{byte:02x}").as_bytes());
                }
                out.push(b'"');
            }
        }
        out.extend_from_slice(b"}\n");
    }
    out
}

/// Descriptors kept free for everything but the followed files: the output, inotify,
/// the runtime, pipes, and a file opened during a rotation.
const FD_RESERVE: u64 = 32;

/// How many more files can be opened under the descriptor limit (after raising the
/// soft limit to the hard one), and the limit.
fn fd_room() -> Option<(usize, u64)> {
    let limit = crate::limits::raise_fd_limit().ok()?;
    let open = std::fs::read_dir("/proc/self/fd").ok()?.count() as u64;
    let room = limit.saturating_sub(open + FD_RESERVE);
    Some((usize::try_from(room).unwrap_or(usize::MAX), limit))
}

/// `a, b, c and 7 more`.
fn name_some(paths: &[PathBuf]) -> String {
    const SHOWN: usize = 5;
    let mut text = paths
        .iter()
        .take(SHOWN)
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ");
    if paths.len() > SHOWN {
        text.push_str(&format!(" and {} more", paths.len() - SHOWN));
    }
    text
}

/// Tails `files` (and, with `--glob`, every matching file) into `output` until `cancel`
/// fires (Ctrl-C), the output is closed, the `--pid` process has exited, or, with
/// `idle_exit`, nothing has grown for that long; then drains every file and flushes.
///
/// ```
/// use concur::process::CancelToken;
/// use concur::tail::{self, TailOptions, writer::Output};
/// use std::sync::Arc;
/// use std::time::Duration;
///
/// let dir = tempfile::tempdir().unwrap();
/// let (a, b, merged) = (dir.path().join("a.log"), dir.path().join("b.log"), dir.path().join("out"));
/// std::fs::write(&a, "one\n").unwrap();
/// std::fs::write(&b, "two\n").unwrap();
/// let options = TailOptions { idle_exit: Some(Duration::from_millis(200)), ..TailOptions::default() };
/// let log: tail::Log = Arc::new(|line| eprintln!("{line}"));
/// let output = Output::open(Some(&merged), false).unwrap();
/// let summary = tail::run(&[a, b], &options, output, log, &CancelToken::new().unwrap()).unwrap();
/// assert!(summary.idle_exit);
/// let mut lines: Vec<String> = std::fs::read_to_string(&merged).unwrap().lines().map(String::from).collect();
/// lines.sort();
/// assert_eq!(lines, ["one", "two"]); // merged whole lines, each file's in order
/// ```
pub fn run(
    files: &[PathBuf],
    options: &TailOptions,
    output: Output,
    log: Log,
    cancel: &CancelToken,
) -> Result<Summary, TailError> {
    let globs = glob_dirs(&options.globs)?;
    let mut files = files.to_vec();
    let mut failed = 0;
    if let Some((room, limit)) = fd_room()
        && files.len() > room
    {
        let rest = files.split_off(room);
        failed += rest.len() as u64;
        log(format!(
            "the descriptor limit ({limit}, ulimit -n) leaves room for {room} files; not following the other {}: {}",
            rest.len(),
            name_some(&rest)
        ));
    }
    let (mut progress, changed) = match &options.state {
        Some(path) => {
            // A state file that is a FIFO waits for its writer: beside the cancel
            // token, so that Ctrl-C still ends the run.
            let reading = path.clone();
            let Some(loaded) = cancel.unless_cancelled(move || state::State::load(&reading)) else {
                return Ok(Summary::default());
            };
            let (progress, changed) = start_progress(path, loaded?, &output, &log)?;
            (Some(progress), Some(changed))
        }
        None => (None, None),
    };
    let mut sources = Vec::new();
    for path in &files {
        let saved = progress
            .as_mut()
            .and_then(|p| p.resume.remove(&state_key(path)));
        let opened = if Source::is_stream(path) {
            Source::open_stream(path, options.prefix, options.follow)
        } else if let Some(saved) = &saved {
            Source::resume(
                path,
                options.prefix,
                options.follow,
                saved,
                progress.as_ref().and_then(|p| p.saved_at),
            )
        } else {
            Source::open(path, options.prefix, options.follow)
        };
        match opened {
            Ok(source) => {
                if let Some(trouble) = source.trouble() {
                    log(format!("{trouble}; retrying"));
                } else if !source.is_open() && !source.is_streamed() {
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
    if sources.is_empty() && globs.is_empty() {
        return Err(TailError::NoFiles(if files.is_empty() {
            "no files given".into()
        } else {
            "none of the files could be opened".into()
        }));
    }
    let watch = if options.poll_only {
        None
    } else {
        let started = if options.mode == Mode::Events {
            Watch::manual()
        } else {
            Watch::start(&[])
        };
        match started {
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
    let (feed_tx, feed) = tokio::sync::mpsc::unbounded_channel();
    let shared = Arc::new(Shared {
        stop: AtomicBool::new(false),
        started: Instant::now(),
        last_growth: AtomicU64::new(0),
        failed_files: AtomicU64::new(failed),
        bytes: AtomicU64::new(0),
        cut_lines: AtomicU64::new(0),
        output_closed: AtomicBool::new(false),
        write_error: Mutex::new(None),
        log,
        wakes: Mutex::new(Vec::new()),
        feed: Mutex::new(Some(feed_tx)),
        watch,
        interval: options.interval,
        followed: Mutex::new(HashSet::new()),
        files: AtomicU64::new(0),
        progress: progress.map(Mutex::new),
        halt: CancelToken::new().map_err(TailError::Start)?,
        readers: Arc::default(),
        headers: options.headers,
        json: options.json,
    });
    let saver = match changed {
        Some(changed) => Some(start_saver(&shared, changed)?),
        None => None,
    };
    for source in sources {
        shared.adopt(source);
    }
    let globber = if globs.is_empty() {
        // Nothing more will come: the designs start what they were given and wait.
        drop(lock(&shared.feed).take());
        None
    } else {
        Some(globbing::start(&shared, globs, options)?)
    };
    let mut watchers = Vec::new();
    if let Output::Stdout = output {
        watchers.push(watchers::output_closed(&shared)?);
    }
    if !options.pids.is_empty() {
        watchers.push(watchers::pid_exit(&shared, &options.pids)?);
    }
    let coordinator = {
        let (shared, cancel, idle_exit) = (Arc::clone(&shared), cancel.clone(), options.idle_exit);
        std::thread::Builder::new()
            .name("tail-coordinator".into())
            .spawn(move || coordinate(&shared, &cancel, idle_exit))
            .map_err(TailError::Start)?
    };
    let ran = match options.mode {
        Mode::Events => merge_events::run(feed, options, output, &shared),
        Mode::Threads => merge_threads::run(feed, options, output, &shared),
        Mode::Mixed => merge_mixed::run(feed, options, output, &shared),
        Mode::Async => merge_async::run(feed, options, output, &shared),
    };
    // A design returns before anything stopped it only when every source has ended.
    let all_ended = !shared.stopping();
    shared.stop();
    let idle = coordinator.join().unwrap_or(false);
    for watcher in watchers.into_iter().flatten() {
        let _ = watcher.join();
    }
    if let Some(globber) = globber {
        let _ = globber.join();
    }
    if let Some(saver) = saver {
        let _ = saver.join();
    }
    // Every write is done: the final positions.
    shared.save_state();
    ran?;
    let output_closed = shared.output_closed.load(Ordering::SeqCst);
    if let Some(err) = lock(&shared.write_error).take()
        && !(output_closed && err.kind() == io::ErrorKind::BrokenPipe)
    {
        return Err(TailError::Write(err));
    }
    Ok(Summary {
        files: shared.files.load(Ordering::Relaxed) as usize,
        failed_files: shared.failed_files.load(Ordering::Relaxed) as usize,
        bytes: shared.bytes.load(Ordering::Relaxed),
        cut_lines: shared.cut_lines.load(Ordering::Relaxed),
        idle_exit: idle,
        output_closed,
        all_ended,
    })
}

/// `--state`: loads the previous run's state, cuts the output back to the length it
/// had when that state was saved (the lines past it are read again), and returns the
/// progress to carry on from with the channel that tells the saver of changes.
fn start_progress(
    path: &Path,
    mut loaded: state::State,
    output: &Output,
    log: &Log,
) -> Result<(Progress, crossbeam_channel::Receiver<()>), TailError> {
    // Half a second early, to be safe: a file leaves the saved positions only a second
    // after its last write (RETIRE_AFTER), so no file counted there is read twice.
    let saved_at = (loaded.saved_at_ns > 0).then(|| {
        std::time::UNIX_EPOCH + Duration::from_nanos(loaded.saved_at_ns)
            - Duration::from_millis(500)
    });
    let Output::File(out) = output else {
        return Err(TailError::StateNeedsFile);
    };
    let len = out.metadata().map_err(TailError::Write)?.len();
    if loaded.version == 0 {
        loaded.version = 1;
    } else if len > loaded.output_len {
        out.set_len(loaded.output_len).map_err(TailError::Write)?;
        log(format!(
            "the output had {} bytes written after the last saved state; they are read again",
            len - loaded.output_len
        ));
    } else if len < loaded.output_len {
        log(format!(
            "the output is {} bytes shorter than when the state was saved (rotated or cut?); going on",
            loaded.output_len - len
        ));
    }
    loaded.output_len = out.metadata().map_err(TailError::Write)?.len();
    // Saved before anything is written: a run killed before its first save is then cut
    // back to here on restart, instead of repeating what it wrote.
    loaded.save(path)?;
    let (dirty, changed) = crossbeam_channel::bounded(1);
    Ok((
        Progress {
            path: path.to_owned(),
            resume: loaded.files.clone().into_iter().collect(),
            saved_at,
            state: loaded,
            dirty,
            failed: false,
        },
        changed,
    ))
}

/// Saves the state at most once a second while lines flow, and not at all while
/// nothing changes.
fn start_saver(
    shared: &Arc<Shared>,
    changed: crossbeam_channel::Receiver<()>,
) -> Result<std::thread::JoinHandle<()>, TailError> {
    let shared = Arc::clone(shared);
    std::thread::Builder::new()
        .name("tail-state".into())
        .spawn(move || {
            let halted = shared.halt.subscribe();
            loop {
                crossbeam_channel::select! {
                    recv(changed) -> _ => {}
                    recv(halted) -> _ => return,
                }
                shared.save_state();
                if halted.recv_timeout(Duration::from_secs(1))
                    != Err(crossbeam_channel::RecvTimeoutError::Timeout)
                {
                    return;
                }
            }
        })
        .map_err(TailError::Start)
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

#[cfg(test)]
mod json_tests {
    use super::json_lines;

    #[test]
    fn each_line_is_one_object_and_nothing_is_lost() {
        let out = json_lines("a \"b\".log", b"plain\n\"quoted\"\tand tab\n\xff\x00\n");
        let text = String::from_utf8(out).unwrap();
        let objects: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(objects.len(), 3);
        assert_eq!(objects[0]["file"], "a \"b\".log");
        assert_eq!(objects[0]["line"], "plain");
        assert_eq!(objects[1]["line"], "\"quoted\"\tand tab");
        assert_eq!(objects[2]["line_hex"], "ff00");
    }
}
