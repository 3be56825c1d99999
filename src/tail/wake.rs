//! Waking tailers: inotify events through the `notify` crate, with polling as the
//! fallback. A wake is a coalescing signal that both threads and tasks can wait on.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender};
use notify::{RecommendedWatcher, RecursiveMode, Watcher};

/// A "look again" signal for one tailer. Many wakes before a wait count as one.
#[derive(Debug)]
pub struct Wake {
    tx: Sender<()>,
    rx: Receiver<()>,
    notify: tokio::sync::Notify,
}

impl Default for Wake {
    fn default() -> Self {
        let (tx, rx) = crossbeam_channel::bounded(1);
        Self {
            tx,
            rx,
            notify: tokio::sync::Notify::new(),
        }
    }
}

impl Wake {
    /// Signals the tailer.
    pub fn wake(&self) {
        let _ = self.tx.try_send(());
        self.notify.notify_one();
    }

    /// Blocks until woken or `timeout` passes (the polling fallback).
    pub fn wait(&self, timeout: Duration) {
        let _ = self.rx.recv_timeout(timeout);
    }

    /// The async form of [`wait`](Self::wait).
    pub async fn wait_async(&self, timeout: Duration) {
        let _ = tokio::time::timeout(timeout, self.notify.notified()).await;
        let _ = self.rx.try_recv(); // keep the two signals in step
    }
}

/// Watches the directories of the followed files and wakes a file's tailer whenever
/// the file, or its name, changes. Dropping it stops watching.
pub struct Watch {
    _watcher: RecommendedWatcher,
}

impl std::fmt::Debug for Watch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Watch")
    }
}

fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_owned())
}

impl Watch {
    /// Starts watching; `Err` (no inotify, out of watches) means polling only.
    pub fn start(files: &[(PathBuf, Arc<Wake>)]) -> notify::Result<Self> {
        let mut by_path: HashMap<PathBuf, Vec<Arc<Wake>>> = HashMap::new();
        for (path, wake) in files {
            by_path
                .entry(absolute(path))
                .or_default()
                .push(Arc::clone(wake));
        }
        let all: Vec<Arc<Wake>> = files.iter().map(|(_, w)| Arc::clone(w)).collect();
        let targets = by_path.clone();
        let mut watcher =
            notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
                match event {
                    Ok(event) if !event.need_rescan() => {
                        for path in &event.paths {
                            for wake in targets.get(path).into_iter().flatten() {
                                wake.wake();
                            }
                        }
                    }
                    // An overflow or an error: look at everything.
                    _ => all.iter().for_each(|w| w.wake()),
                }
            })?;
        let mut dirs: Vec<PathBuf> = by_path
            .keys()
            .filter_map(|p| p.parent().map(Path::to_owned))
            .collect();
        dirs.sort();
        dirs.dedup();
        for dir in dirs {
            // Watching the directory (not the file) also reports renames and creations.
            watcher.watch(&dir, RecursiveMode::NonRecursive)?;
        }
        Ok(Self { _watcher: watcher })
    }
}
