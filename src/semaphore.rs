//! A counting semaphore shared by the processes of one user: GNU parallel's `sem`, and
//! item 54's lock carried across processes.
//!
//! A semaphore of N slots is a directory of N slot files. Holding a slot is holding an
//! exclusive `flock(2)` on its file, and the kernel drops that lock when the last file
//! descriptor of it closes, however the holder ended: a holder killed with SIGKILL
//! loses its slot at once, so no slot is ever lost for good (no stale lock files, no
//! pid checks). Waiting for a slot tries each file without blocking, then sleeps a
//! little (1 ms, doubling to 50 ms) and tries again.
//!
//! ```
//! use std::num::NonZeroUsize;
//! use concur::semaphore::Semaphore;
//!
//! let dir = tempfile::tempdir().unwrap();
//! let two = NonZeroUsize::new(2).unwrap();
//! let sem = Semaphore::open_in(dir.path(), "build", two).unwrap();
//! let a = sem.try_acquire().unwrap().expect("a slot is free");
//! let b = sem.try_acquire().unwrap().expect("a second slot is free");
//! assert!(sem.try_acquire().unwrap().is_none()); // both are held
//! drop(a); // released: closing the file drops its lock
//! assert!(sem.try_acquire().unwrap().is_some());
//! # drop(b);
//! ```

use std::fs::{self, File, OpenOptions};
use std::io;
use std::num::NonZeroUsize;
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rustix::fs::{FlockOperation, flock};

use crate::process::CancelToken;

/// The longest sleep between two tries for a slot.
const MAX_BACKOFF: Duration = Duration::from_millis(50);

/// A counting semaphore of a fixed number of slots, named by an id.
#[derive(Clone, Debug)]
pub struct Semaphore {
    dir: PathBuf,
    slots: NonZeroUsize,
}

/// A held slot; dropping it (or the process ending) releases it.
#[derive(Debug)]
pub struct Permit {
    file: File,
    slot: usize,
}

impl Permit {
    /// Which slot, from 0.
    pub fn slot(&self) -> usize {
        self.slot
    }

    /// The locked file's descriptor: a child that inherits it keeps the slot until it
    /// (and whatever inherited it from the child) has exited.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.file.as_fd()
    }
}

/// How a wait for a slot ended without one.
#[derive(Debug, thiserror::Error)]
pub enum AcquireError {
    /// No slot came free before the deadline.
    #[error("no slot of semaphore {id:?} came free within {waited:?}")]
    TimedOut {
        /// The semaphore's id.
        id: String,
        /// How long it waited.
        waited: Duration,
    },
    /// The wait was cancelled.
    #[error("cancelled while waiting for semaphore {id:?}")]
    Cancelled {
        /// The semaphore's id.
        id: String,
    },
    /// A slot file could not be made, opened or locked.
    #[error("semaphore {path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What the OS said.
        #[source]
        source: io::Error,
    },
}

impl Semaphore {
    /// Where the semaphores of this user live: `$PARALLEL_HOME/semaphores`, else
    /// `~/.parallel/semaphores`, as GNU parallel keeps them.
    pub fn default_root() -> Option<PathBuf> {
        std::env::var_os("PARALLEL_HOME")
            .filter(|h| !h.is_empty())
            .map(PathBuf::from)
            .or_else(|| {
                std::env::var_os("HOME")
                    .filter(|h| !h.is_empty())
                    .map(|h| PathBuf::from(h).join(".parallel"))
            })
            .map(|dir| dir.join("semaphores"))
    }

    /// The semaphore `id` of `slots` slots under `root` (made, mode 0700, if missing).
    pub fn open_in(root: &Path, id: &str, slots: NonZeroUsize) -> Result<Self, AcquireError> {
        // One directory per id; an id is any text, so `/` and NUL cannot split it.
        let name: String = id
            .chars()
            .map(|c| if c == '/' || c == '\0' { '_' } else { c })
            .collect();
        let dir = root.join(format!("id-{name}"));
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)
            .map_err(|source| AcquireError::Io {
                path: dir.clone(),
                source,
            })?;
        Ok(Self { dir, slots })
    }

    /// The semaphore's id, as its directory names it.
    fn id(&self) -> String {
        self.dir.file_name().map_or_else(String::new, |n| {
            n.to_string_lossy().trim_start_matches("id-").to_owned()
        })
    }

    /// How many slots it has.
    pub fn slots(&self) -> NonZeroUsize {
        self.slots
    }

    fn slot_file(&self, slot: usize) -> Result<File, AcquireError> {
        let path = self.dir.join(format!("slot-{slot}"));
        OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(&path)
            .map_err(|source| AcquireError::Io { path, source })
    }

    /// Slot `slot`'s file, locked, if no one holds it now.
    fn try_lock(&self, slot: usize) -> Result<Option<File>, AcquireError> {
        let file = self.slot_file(slot)?;
        match flock(&file, FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => Ok(Some(file)),
            Err(rustix::io::Errno::WOULDBLOCK | rustix::io::Errno::INTR) => Ok(None),
            Err(e) => Err(AcquireError::Io {
                path: self.dir.join(format!("slot-{slot}")),
                source: e.into(),
            }),
        }
    }

    /// Takes a free slot if there is one now.
    pub fn try_acquire(&self) -> Result<Option<Permit>, AcquireError> {
        for slot in 0..self.slots.get() {
            if let Some(file) = self.try_lock(slot)? {
                return Ok(Some(Permit { file, slot }));
            }
        }
        Ok(None)
    }

    /// Waits for a free slot, for at most `timeout` (none: as long as it takes), or
    /// until `cancel` is cancelled.
    pub fn acquire(
        &self,
        timeout: Option<Duration>,
        cancel: Option<&CancelToken>,
    ) -> Result<Permit, AcquireError> {
        let start = Instant::now();
        let mut pause = Duration::from_millis(1);
        loop {
            if let Some(permit) = self.try_acquire()? {
                return Ok(permit);
            }
            if cancel.is_some_and(CancelToken::is_cancelled) {
                return Err(AcquireError::Cancelled { id: self.id() });
            }
            let waited = start.elapsed();
            let left = match timeout {
                Some(limit) if waited >= limit => {
                    return Err(AcquireError::TimedOut {
                        id: self.id(),
                        waited,
                    });
                }
                Some(limit) => limit - waited,
                None => MAX_BACKOFF,
            };
            std::thread::sleep(pause.min(left));
            pause = (pause * 2).min(MAX_BACKOFF);
        }
    }

    /// Waits until no slot is held (GNU's `sem --wait`): takes every slot in turn and
    /// lets it go.
    pub fn wait_idle(&self, cancel: Option<&CancelToken>) -> Result<(), AcquireError> {
        for slot in 0..self.slots.get() {
            let mut pause = Duration::from_millis(1);
            // Taken, then released at once as the file closes.
            while self.try_lock(slot)?.is_none() {
                if cancel.is_some_and(CancelToken::is_cancelled) {
                    return Err(AcquireError::Cancelled { id: self.id() });
                }
                std::thread::sleep(pause);
                pause = (pause * 2).min(MAX_BACKOFF);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_slot_held_elsewhere_is_waited_for_and_a_deadline_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let one = NonZeroUsize::MIN;
        let sem = Semaphore::open_in(dir.path(), "t", one).unwrap();
        let held = sem.acquire(None, None).unwrap();
        let err = sem
            .acquire(Some(Duration::from_millis(20)), None)
            .unwrap_err();
        assert!(matches!(err, AcquireError::TimedOut { .. }), "{err}");
        let other = sem.clone();
        let waiter = std::thread::spawn(move || other.acquire(None, None).map(|p| p.slot()));
        drop(held);
        assert_eq!(waiter.join().unwrap().unwrap(), 0);
    }

    #[test]
    fn ids_with_slashes_stay_one_directory() {
        let dir = tempfile::tempdir().unwrap();
        let sem = Semaphore::open_in(dir.path(), "a/b", NonZeroUsize::MIN).unwrap();
        assert!(dir.path().join("id-a_b").is_dir());
        assert_eq!(sem.id(), "a_b");
    }
}
