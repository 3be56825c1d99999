//! Waking tailers: one inotify instance watching the followed files' directories, with
//! polling as the fallback. A wake is a coalescing signal that both threads and tasks
//! can wait on.
//!
//! **What it costs when nothing happens: nothing.** One thread blocks in `poll(2)` on the
//! inotify descriptor; tailers block on their [`Wake`] with no timeout. Nothing wakes up
//! until a followed file or its directory changes, except one safety re-check every
//! [`RECHECK`]: the watch thread `stat`s every followed path and wakes only the tailers
//! whose file changed without an event (a lost event, or a filesystem that does not
//! report them). With 2,000 files that is 2,000 `stat` calls every 5 s.
//!
//! **One watch per directory**, not per file: a directory watch reports writes,
//! truncations, mode changes, creations and renames of every file in it, and keeps
//! working while a file is rotated away and recreated. A directory that does not exist
//! yet is waited for by watching its nearest existing ancestor; when the missing part is
//! created the watch moves down, and the files in it are looked at once.

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rustix::event::{PollFd, PollFlags, Timespec, poll};
use rustix::fs::inotify::{self, CreateFlags, ReadFlags, WatchFlags};
use rustix::io::Errno;

/// How often the watch thread re-checks every followed file for a change that came
/// without an event.
pub const RECHECK: Duration = Duration::from_secs(5);

/// [`RECHECK`], or `CONCUR_TAIL_RECHECK` seconds: tests set it to an hour, so that a
/// line can only arrive through an inotify event, which is what they check.
fn recheck_period() -> Duration {
    std::env::var("CONCUR_TAIL_RECHECK")
        .ok()
        .and_then(|s| s.parse::<f64>().ok())
        .and_then(|s| Duration::try_from_secs_f64(s).ok())
        .unwrap_or(RECHECK)
}

/// A "look again" signal for one tailer. Many wakes before a wait count as one. A wake
/// also says whether the file's *name* may point elsewhere now (an entry created,
/// moved or deleted, a mode changed, or no way to know): only then does the tailer
/// `stat` the name; a plain write needs just the read.
pub struct Wake {
    /// (woken, a thread is waiting): a wake with nobody waiting needs no system call.
    woken: Mutex<(bool, bool)>,
    cv: Condvar,
    notify: tokio::sync::Notify,
    name: AtomicBool,
    /// Also called by each wake: how a thread that is not waiting on this wake (the
    /// `events` design's loop, in `poll`) hears of it.
    kick: std::sync::OnceLock<Kick>,
}

impl std::fmt::Debug for Wake {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Wake")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// Ends a wait somewhere else (see [`Watch::kicker`]).
pub type Kick = Arc<dyn Fn() + Send + Sync>;

impl Default for Wake {
    fn default() -> Self {
        Self {
            // A new tailer looks at its file first, woken or not.
            woken: Mutex::new((true, false)),
            cv: Condvar::new(),
            notify: tokio::sync::Notify::new(),
            // The first look checks the name.
            name: AtomicBool::new(true),
            kick: std::sync::OnceLock::new(),
        }
    }
}

impl Wake {
    /// Signals the tailer: the file was written to.
    pub fn wake(&self) {
        let mut woken = self.woken.lock().unwrap_or_else(PoisonError::into_inner);
        woken.0 = true;
        let waiting = woken.1;
        drop(woken);
        if waiting {
            self.cv.notify_one();
        }
        self.notify.notify_one();
        if let Some(kick) = self.kick.get() {
            kick();
        }
    }

    /// Calls `kick` on every wake from now on (for wakes that come from another
    /// thread than the one that checks them).
    pub fn set_kick(&self, kick: Kick) {
        let _ = self.kick.set(kick);
    }

    /// Whether woken since the last look, without waiting; clears it.
    pub fn take_woken(&self) -> bool {
        std::mem::replace(
            &mut self.woken.lock().unwrap_or_else(PoisonError::into_inner).0,
            false,
        )
    }

    /// Signals the tailer: the name may point elsewhere now.
    pub fn wake_name(&self) {
        self.name.store(true, Ordering::SeqCst);
        self.wake();
    }

    /// Whether the name may have changed since the last call.
    pub fn take_name(&self) -> bool {
        self.name.swap(false, Ordering::SeqCst)
    }

    /// Blocks until woken, or until `timeout` passes (`None`: no timeout).
    pub fn wait(&self, timeout: Option<Duration>) {
        let mut woken = self.woken.lock().unwrap_or_else(PoisonError::into_inner);
        if !woken.0 {
            woken.1 = true;
            woken = match timeout {
                Some(timeout) => {
                    self.cv
                        .wait_timeout(woken, timeout)
                        .unwrap_or_else(PoisonError::into_inner)
                        .0
                }
                None => self.cv.wait(woken).unwrap_or_else(PoisonError::into_inner),
            };
            woken.1 = false;
        }
        woken.0 = false;
    }

    /// The async form of [`wait`](Self::wait).
    pub async fn wait_async(&self, timeout: Option<Duration>) {
        match timeout {
            Some(timeout) => {
                let _ = tokio::time::timeout(timeout, self.notify.notified()).await;
            }
            None => self.notify.notified().await,
        }
        // Keep the two signals in step.
        self.woken.lock().unwrap_or_else(PoisonError::into_inner).0 = false;
    }

    #[cfg(test)]
    fn woken_within(&self, timeout: Duration) -> bool {
        let mut woken = self.woken.lock().unwrap_or_else(PoisonError::into_inner);
        woken.1 = true;
        let (mut woken, _) = self
            .cv
            .wait_timeout_while(woken, timeout, |w| !w.0)
            .unwrap_or_else(PoisonError::into_inner);
        woken.1 = false;
        std::mem::replace(&mut woken.0, false)
    }
}

/// Told the full path of every entry created, removed or renamed in a directory it
/// listens to (and, with `None`, to look at the whole directory again after an
/// overflow or when the directory appears).
pub type DirListener = Arc<dyn Fn(Option<&Path>) + Send + Sync>;

/// A file's last seen state, for the safety re-check.
type Snapshot = Option<(u64, u64, u64, i64, i64, u32)>;

fn snapshot(path: &Path) -> Snapshot {
    let meta = std::fs::metadata(path).ok()?;
    Some((
        meta.dev(),
        meta.ino(),
        meta.len(),
        meta.mtime(),
        meta.mtime_nsec(),
        meta.mode(),
    ))
}

struct Followed {
    wakes: Vec<Arc<Wake>>,
    seen: Snapshot,
    /// When the path is a symbolic link: the file it resolves to, whose directory is
    /// watched for the same wakes (writes to the target happen there).
    target: Option<PathBuf>,
}

/// Where `path` leads when symbolic links are in it, if that is somewhere else; for a
/// dangling link, where its target will be once it is created.
fn link_target(path: &Path) -> Option<PathBuf> {
    if let Ok(real) = std::fs::canonicalize(path) {
        return (real != absolute(path)).then_some(real);
    }
    let mut at = absolute(path);
    for _ in 0..40 {
        if !std::fs::symlink_metadata(&at)
            .ok()?
            .file_type()
            .is_symlink()
        {
            return None;
        }
        let next = std::fs::read_link(&at).ok()?;
        let next = at.parent()?.join(next);
        match std::fs::symlink_metadata(&next) {
            Ok(meta) if meta.file_type().is_symlink() => at = next,
            Ok(_) => return std::fs::canonicalize(&next).ok(),
            // The target is missing: it will appear in its directory (which, when it
            // is missing too, is watched through its nearest existing ancestor).
            Err(_) => {
                let parent = next.parent()?;
                let dir = std::fs::canonicalize(parent).unwrap_or_else(|_| parent.to_owned());
                return Some(dir.join(next.file_name()?));
            }
        }
    }
    None
}

#[derive(Default)]
struct State {
    /// Watch descriptor → the directories it watches (one inode can be reached by
    /// several paths: a directory and a symbolic link to it).
    dirs: HashMap<i32, Vec<PathBuf>>,
    /// Directory → its watch descriptor.
    wds: HashMap<PathBuf, i32>,
    /// Directory → file name → the tailers of that file.
    files: HashMap<PathBuf, HashMap<OsString, Followed>>,
    /// Directory → who wants to hear of its entries.
    listeners: HashMap<PathBuf, Vec<DirListener>>,
    /// Watch descriptor of an open file (`--follow=descriptor`) → its tailers.
    open_files: HashMap<i32, Vec<Arc<Wake>>>,
}

impl State {
    fn wanted(&self) -> impl Iterator<Item = &PathBuf> {
        self.files.keys().chain(self.listeners.keys())
    }

    fn unarmed(&self) -> Vec<PathBuf> {
        let mut dirs: Vec<PathBuf> = self
            .wanted()
            .filter(|d| !self.wds.contains_key(*d))
            .cloned()
            .collect();
        dirs.sort();
        dirs.dedup();
        dirs
    }

    fn wake_dir(&self, dir: &Path) {
        for followed in self.files.get(dir).into_iter().flat_map(HashMap::values) {
            followed.wakes.iter().for_each(|w| w.wake_name());
        }
        for listener in self.listeners.get(dir).into_iter().flatten() {
            listener(None);
        }
    }

    fn wake_all(&self) {
        for dir in self.wanted() {
            self.wake_dir(dir);
        }
        for wakes in self.open_files.values() {
            wakes.iter().for_each(|w| w.wake_name());
        }
    }

    fn forget(&mut self, wd: i32) {
        for dir in self.dirs.remove(&wd).unwrap_or_default() {
            self.wds.remove(&dir);
        }
    }

    /// Adds `wakes` to the file at `path` (absolute).
    fn register(&mut self, path: &Path, wakes: &[Arc<Wake>]) {
        let (dir, name) = split(path);
        let followed = self
            .files
            .entry(dir)
            .or_default()
            .entry(name)
            .or_insert_with(|| Followed {
                wakes: Vec::new(),
                seen: snapshot(path),
                target: None,
            });
        followed.wakes.extend(wakes.iter().cloned());
    }

    /// Takes `wakes` off the file at `path` (absolute), and off its link's target.
    fn unregister(&mut self, path: &Path, wakes: &[Arc<Wake>]) {
        let (dir, name) = split(path);
        let mut target = None;
        if let Some(files) = self.files.get_mut(&dir) {
            if let Some(followed) = files.get_mut(&name) {
                followed
                    .wakes
                    .retain(|w| !wakes.iter().any(|gone| Arc::ptr_eq(w, gone)));
                if followed.wakes.is_empty() {
                    target = followed.target.take();
                    files.remove(&name);
                } else {
                    target.clone_from(&followed.target);
                }
            }
            if files.is_empty() {
                self.files.remove(&dir);
            }
        }
        if let Some(target) = target {
            self.unregister(&target, wakes);
        }
    }

    /// Resolves the link at `dir`/`name` again: its wakes move to the new target's
    /// directory. Returns whether the target changed.
    fn retarget(&mut self, dir: &Path, name: &OsStr) -> bool {
        let Some(followed) = self.files.get(dir).and_then(|f| f.get(name)) else {
            return false;
        };
        let now = link_target(&dir.join(name));
        if now == followed.target {
            return false;
        }
        let (wakes, before) = (followed.wakes.clone(), followed.target.clone());
        if let Some(before) = before {
            self.unregister(&before, &wakes);
        }
        if let Some(now) = &now {
            self.register(now, &wakes);
        }
        if let Some(followed) = self.files.get_mut(dir).and_then(|f| f.get_mut(name)) {
            followed.target = now;
        }
        true
    }
}

struct Inner {
    inotify: OwnedFd,
    state: Mutex<State>,
    next_recheck: Mutex<Instant>,
    recheck: Duration,
}

const DIR_EVENTS: WatchFlags = WatchFlags::MODIFY
    .union(WatchFlags::ATTRIB)
    .union(WatchFlags::CREATE)
    .union(WatchFlags::DELETE)
    .union(WatchFlags::MOVED_FROM)
    .union(WatchFlags::MOVED_TO)
    .union(WatchFlags::DELETE_SELF)
    .union(WatchFlags::MOVE_SELF)
    .union(WatchFlags::ONLYDIR);

impl Inner {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Gives every wanted directory a watch: its own if it exists, else its nearest
    /// existing ancestor's. Directories that got their own watch are looked at.
    fn arm(&self, state: &mut State) -> io::Result<()> {
        loop {
            let unarmed = state.unarmed();
            let mut armed_any = false;
            for dir in &unarmed {
                let mut at = dir.as_path();
                loop {
                    if state.wds.contains_key(at) {
                        break; // an ancestor already watched: wait for its events
                    }
                    match inotify::add_watch(&self.inotify, at, DIR_EVENTS) {
                        Ok(wd) => {
                            let paths = state.dirs.entry(wd).or_default();
                            if !paths.iter().any(|p| p == at) {
                                paths.push(at.to_owned());
                            }
                            state.wds.insert(at.to_owned(), wd);
                            if at == dir {
                                armed_any = true;
                                state.wake_dir(dir);
                            }
                            break;
                        }
                        Err(Errno::NOENT | Errno::NOTDIR | Errno::ACCESS) => match at.parent() {
                            Some(parent) if !parent.as_os_str().is_empty() => at = parent,
                            _ => break,
                        },
                        Err(e) => return Err(e.into()),
                    }
                }
            }
            // A directory created while we armed its parent: go round again.
            if !armed_any {
                return Ok(());
            }
        }
    }

    fn handle(&self, wd: i32, mask: ReadFlags, name: Option<&OsStr>) -> io::Result<()> {
        let mut state = self.state();
        if mask.contains(ReadFlags::QUEUE_OVERFLOW) {
            state.wake_all();
            return Ok(());
        }
        if let Some(wakes) = state.open_files.get(&wd) {
            // An open file followed by descriptor, wherever its name went.
            if mask == ReadFlags::MODIFY {
                wakes.iter().for_each(|w| w.wake());
            } else {
                wakes.iter().for_each(|w| w.wake_name());
            }
            if mask.contains(ReadFlags::IGNORED) {
                state.open_files.remove(&wd);
            }
            return Ok(());
        }
        let Some(dirs) = state.dirs.get(&wd).cloned() else {
            return Ok(());
        };
        for dir in dirs {
            self.handle_in(&mut state, wd, &dir, mask, name)?;
        }
        Ok(())
    }

    fn handle_in(
        &self,
        state: &mut State,
        wd: i32,
        dir: &Path,
        mask: ReadFlags,
        name: Option<&OsStr>,
    ) -> io::Result<()> {
        match name {
            Some(name) => {
                if let Some(followed) = state.files.get(dir).and_then(|f| f.get(name)) {
                    if mask == ReadFlags::MODIFY {
                        followed.wakes.iter().for_each(|w| w.wake());
                    } else {
                        followed.wakes.iter().for_each(|w| w.wake_name());
                        // A link made, removed or re-pointed: watch where it leads now.
                        if state.retarget(dir, name) {
                            self.arm(state)?;
                        }
                    }
                }
                let changed_entries = ReadFlags::CREATE
                    | ReadFlags::DELETE
                    | ReadFlags::MOVED_FROM
                    | ReadFlags::MOVED_TO;
                if mask.intersects(changed_entries) {
                    let path = dir.join(name);
                    for listener in state.listeners.get(dir).into_iter().flatten() {
                        listener(Some(&path));
                    }
                    if mask.intersects(ReadFlags::CREATE | ReadFlags::MOVED_TO)
                        && !state.unarmed().is_empty()
                    {
                        self.arm(state)?;
                    }
                }
            }
            None => {
                // The directory itself: its mode changed (files may have become
                // readable), or it is gone (watch its ancestor until it is back).
                if mask
                    .intersects(ReadFlags::DELETE_SELF | ReadFlags::MOVE_SELF | ReadFlags::IGNORED)
                {
                    if mask.contains(ReadFlags::MOVE_SELF) {
                        let _ = inotify::remove_watch(&self.inotify, wd);
                    }
                    state.forget(wd);
                    self.arm(state)?;
                }
                state.wake_dir(dir);
            }
        }
        Ok(())
    }

    /// The safety re-check: wakes the tailers of every file that changed since the
    /// last look.
    fn recheck(&self) {
        let mut state = self.state();
        let mut links = Vec::new();
        for (dir, files) in state.files.iter_mut() {
            for (name, followed) in files.iter_mut() {
                let now = snapshot(&dir.join(name));
                if now != followed.seen {
                    followed.seen = now;
                    followed.wakes.iter().for_each(|w| w.wake_name());
                    links.push((dir.clone(), name.clone()));
                } else if followed.target.is_some() {
                    links.push((dir.clone(), name.clone()));
                }
            }
        }
        let mut moved = false;
        for (dir, name) in links {
            moved |= state.retarget(&dir, &name);
        }
        if moved {
            let _ = self.arm(&mut state);
        }
    }
}

/// Watches the directories of the followed files and wakes a file's tailers whenever
/// the file, its name or its directory changes. Dropping it stops watching.
pub struct Watch {
    inner: Arc<Inner>,
    stop: Option<OwnedFd>,
    thread: Option<JoinHandle<()>>,
    /// Without a thread: a pipe that [`kick`](Self::kick) writes to end a `pump`.
    kick: Option<(OwnedFd, OwnedFd)>,
}

impl std::fmt::Debug for Watch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Watch")
    }
}

fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_owned())
}

fn split(path: &Path) -> (PathBuf, OsString) {
    let path = absolute(path);
    let name = path.file_name().unwrap_or_default().to_owned();
    let dir = path
        .parent()
        .map_or_else(|| PathBuf::from("/"), Path::to_owned);
    (dir, name)
}

impl Watch {
    /// Starts watching `files`; `Err` (no inotify, out of watches) means polling only.
    pub fn start(files: &[(PathBuf, Arc<Wake>)]) -> io::Result<Self> {
        let mut watch = Self::manual()?;
        for (path, wake) in files {
            watch.add_file(path, Arc::clone(wake))?;
        }
        let (stop_rx, stop_tx) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)?;
        let thread = {
            let inner = Arc::clone(&watch.inner);
            std::thread::Builder::new()
                .name("tail-inotify".into())
                .spawn(move || watch_loop(&inner, &stop_rx))?
        };
        watch.stop = Some(stop_tx);
        watch.thread = Some(thread);
        watch.kick = None;
        Ok(watch)
    }

    /// A watch without a thread of its own: the caller runs it with
    /// [`pump`](Self::pump), between its own work (the `events` design's one loop).
    pub fn manual() -> io::Result<Self> {
        let inotify = inotify::init(CreateFlags::CLOEXEC | CreateFlags::NONBLOCK)?;
        let kick = rustix::pipe::pipe_with(
            rustix::pipe::PipeFlags::CLOEXEC | rustix::pipe::PipeFlags::NONBLOCK,
        )?;
        Ok(Self {
            inner: Arc::new(Inner {
                inotify,
                state: Mutex::new(State::default()),
                next_recheck: Mutex::new(Instant::now() + recheck_period()),
                recheck: recheck_period(),
            }),
            stop: None,
            thread: None,
            kick: Some(kick),
        })
    }

    /// Whether this watch has no thread and must be [pumped](Self::pump).
    pub fn is_manual(&self) -> bool {
        self.thread.is_none()
    }

    /// For a [manual](Self::manual) watch: waits up to `timeout` (or until the next
    /// safety re-check, a [kick](Self::kick), or `stop` becoming readable) for inotify
    /// events, and wakes the tailers they concern. Returns false once `stop` is
    /// readable.
    pub fn pump(&self, stop: BorrowedFd<'_>, timeout: Option<Duration>) -> bool {
        let kick = self.kick.as_ref().map(|(rx, _)| rx.as_fd());
        self.inner.pump(stop, kick, timeout)
    }

    /// Ends a [`pump`](Self::pump) in progress (from another thread).
    pub fn kick(&self) {
        if let Some((_, tx)) = &self.kick {
            let _ = rustix::io::write(tx, &[1]);
        }
    }

    /// A [`Kick`] that ends a [`pump`](Self::pump) in progress, for other threads.
    pub fn kicker(&self) -> Option<Kick> {
        let (_, tx) = self.kick.as_ref()?;
        let tx = tx.try_clone().ok()?;
        Some(Arc::new(move || {
            let _ = rustix::io::write(&tx, &[1]);
        }))
    }

    /// Starts waking `wake` for changes to `path` too: to the file, to its name, and
    /// when `path` is a symbolic link, to the file it leads to (re-resolved whenever
    /// the link changes).
    pub fn add_file(&self, path: &Path, wake: Arc<Wake>) -> io::Result<()> {
        let path = absolute(path);
        let (dir, name) = split(&path);
        let mut state = self.inner.state();
        let wakes = [wake];
        state.register(&path, &wakes);
        let target = state
            .files
            .get(&dir)
            .and_then(|f| f.get(&name))
            .and_then(|f| f.target.clone());
        match target {
            Some(target) => state.register(&target, &wakes),
            None => {
                state.retarget(&dir, &name);
            }
        }
        self.inner.arm(&mut state)
    }

    /// Stops waking `wake` for `path`.
    pub fn remove_file(&self, path: &Path, wake: &Arc<Wake>) {
        let mut state = self.inner.state();
        state.unregister(&absolute(path), std::slice::from_ref(wake));
    }

    /// Starts waking `wake` for changes to the open file `fd`, under whatever name it
    /// has now or later (`--follow=descriptor`): a watch on the file itself, which
    /// follows it through renames. Writes wake it; anything else (a rename, a
    /// deletion, a mode change) says the name may have changed.
    pub fn add_open_file(&self, fd: BorrowedFd<'_>, wake: Arc<Wake>) -> io::Result<()> {
        use std::os::fd::AsRawFd;
        // The descriptor's own /proc link leads to the open file even once it is
        // renamed or deleted, so the watch lands on the inode that is being read.
        let at = format!("/proc/self/fd/{}", fd.as_raw_fd());
        let wd = inotify::add_watch(
            &self.inner.inotify,
            at.as_str(),
            WatchFlags::MODIFY
                | WatchFlags::ATTRIB
                | WatchFlags::MOVE_SELF
                | WatchFlags::DELETE_SELF,
        )?;
        self.inner
            .state()
            .open_files
            .entry(wd)
            .or_default()
            .push(wake);
        Ok(())
    }

    /// Stops waking `wake` for the open file it was added for.
    pub fn remove_open_file(&self, wake: &Arc<Wake>) {
        let mut state = self.inner.state();
        let mut emptied = Vec::new();
        for (wd, wakes) in state.open_files.iter_mut() {
            let before = wakes.len();
            wakes.retain(|w| !Arc::ptr_eq(w, wake));
            if wakes.is_empty() && before > 0 {
                emptied.push(*wd);
            }
        }
        for wd in emptied {
            state.open_files.remove(&wd);
            let _ = inotify::remove_watch(&self.inner.inotify, wd);
        }
    }

    /// Tells `listener` of every entry created, removed or renamed in `dir`, and (with
    /// `None`) when the whole directory should be looked at again.
    pub fn listen(&self, dir: &Path, listener: DirListener) -> io::Result<()> {
        let mut state = self.inner.state();
        state
            .listeners
            .entry(absolute(dir))
            .or_default()
            .push(listener);
        self.inner.arm(&mut state)
    }

    /// How many directories are watched (for tests and reports).
    pub fn watched_dirs(&self) -> usize {
        self.inner.state().wds.len()
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        drop(self.stop.take()); // the watch thread sees the pipe close
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn watch_loop(inner: &Inner, stop: &OwnedFd) {
    while inner.pump(stop.as_fd(), None, None) {}
}

impl Inner {
    /// Waits for inotify events (or `kick`, or `timeout`, or the next re-check) and
    /// wakes the tailers they concern. Returns false once `stop` is readable.
    fn pump(
        &self,
        stop: BorrowedFd<'_>,
        kick: Option<BorrowedFd<'_>>,
        timeout: Option<Duration>,
    ) -> bool {
        let next_recheck = *self
            .next_recheck
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let mut wait = next_recheck.saturating_duration_since(Instant::now());
        if let Some(timeout) = timeout {
            wait = wait.min(timeout);
        }
        let timespec = Timespec {
            tv_sec: wait.as_secs() as _,
            tv_nsec: wait.subsec_nanos() as _,
        };
        let mut fds = vec![
            PollFd::new(&self.inotify, PollFlags::IN),
            PollFd::from_borrowed_fd(stop, PollFlags::IN),
        ];
        if let Some(kick) = kick {
            fds.push(PollFd::from_borrowed_fd(kick, PollFlags::IN));
        }
        match poll(&mut fds, Some(&timespec)) {
            Ok(_) | Err(Errno::INTR) => {}
            Err(_) => return false,
        }
        if !fds[1].revents().is_empty() {
            return false;
        }
        if let Some(kick) = kick
            && !fds[2].revents().is_empty()
        {
            let mut drain = [0u8; 64];
            let _ = rustix::io::read(kick, &mut drain);
        }
        if Instant::now() >= next_recheck {
            self.recheck();
            *self
                .next_recheck
                .lock()
                .unwrap_or_else(PoisonError::into_inner) = Instant::now() + self.recheck;
        }
        if fds[0].revents().is_empty() {
            return true;
        }
        // One read takes every queued event (up to the buffer); then back to poll,
        // rather than a second read to hear EAGAIN.
        let mut buf = [std::mem::MaybeUninit::<u8>::uninit(); 16 * 1024];
        let mut reader = inotify::Reader::new(self.inotify.as_fd(), &mut buf);
        loop {
            let (wd, mask, name) = match reader.next() {
                Ok(event) => (
                    event.wd(),
                    event.events(),
                    event
                        .file_name()
                        .map(|n| OsStr::from_bytes(n.to_bytes()).to_owned()),
                ),
                Err(Errno::AGAIN | Errno::INTR) => break,
                Err(_) => {
                    self.state().wake_all();
                    return true;
                }
            };
            if self.handle(wd, mask, name.as_deref()).is_err() {
                // Out of watches while re-arming: look at everything; the re-check
                // keeps the rest going.
                self.state().wake_all();
            }
            if reader.is_buffer_empty() {
                break;
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn woken(wake: &Wake) -> bool {
        wake.woken_within(Duration::from_secs(5))
    }

    #[test]
    fn a_write_wakes_the_files_tailer_and_only_it() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a.log"), dir.path().join("b.log"));
        std::fs::write(&a, "").unwrap();
        std::fs::write(&b, "").unwrap();
        let (wa, wb) = (Arc::new(Wake::default()), Arc::new(Wake::default()));
        let watch = Watch::start(&[(a.clone(), wa.clone()), (b, wb.clone())]).unwrap();
        assert_eq!(watch.watched_dirs(), 1, "one watch for the directory");
        // Arming a directory wakes its tailers once, to look; take those wakes.
        let _ = (
            wa.woken_within(Duration::ZERO),
            wb.woken_within(Duration::ZERO),
        );
        std::fs::write(&a, "x\n").unwrap();
        assert!(woken(&wa));
        assert!(!wb.woken_within(Duration::from_millis(200)));
    }

    #[test]
    fn a_missing_directory_is_watched_through_its_ancestor_and_rearmed() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("x/y/app.log");
        let wake = Arc::new(Wake::default());
        let watch = Watch::start(&[(file.clone(), wake.clone())]).unwrap();
        assert_eq!(watch.watched_dirs(), 1, "the temp dir stands in for x/y");
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        // Arming x/y wakes the tailer, which then finds the file (or waits for it).
        assert!(woken(&wake));
        std::fs::write(&file, "hello\n").unwrap();
        assert!(woken(&wake));
        assert!(watch.watched_dirs() >= 2);
    }
}
