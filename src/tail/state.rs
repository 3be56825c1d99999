//! `--state FILE`: where each followed file had been read up to, saved so that a tailer
//! killed (even with `kill -9`) and restarted neither loses nor repeats a line.
//!
//! **Exactly once.** A position is recorded only after the lines before it have been
//! written to OUT, and it is recorded with OUT's length at that moment, under one lock.
//! The state file is replaced atomically (a temp file renamed over it), at most once a
//! second while lines flow, and at exit. A tailer killed between a write and the next
//! save has written lines the state does not cover yet; on restart OUT is cut back to the
//! saved length and those lines are read again, so they appear once.
//!
//! **Rotation while stopped.** Each position names the file by device and inode and
//! holds its first bytes. On restart, a file the name no longer points to is looked for
//! by inode among the entries of its directory and of the directories in it (where
//! `app.log.1`, `app.log-DATE` and a logrotate `olddir` live), drained from the saved
//! position, and then the file now under the name is read from its start.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, Write};
use std::os::unix::fs::{DirEntryExt, MetadataExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The largest state file concur reads: 64 MiB (a state holds about 300 bytes per
/// followed file).
pub const MAX_STATE_BYTES: u64 = 64 << 20;

/// How many first bytes identify a file (with its inode) across a restart.
pub(crate) const HEAD: usize = 16;

/// Where one open file of a followed name was read up to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Position {
    /// The file's device.
    pub dev: u64,
    /// The file's inode.
    pub ino: u64,
    /// Bytes of it written out as whole lines.
    pub pos: u64,
    /// Its first bytes (up to 16), in hex.
    pub head: String,
    /// The bytes just before `pos` (up to 16), in hex, to recognise its copy after a
    /// `copytruncate`.
    pub tail: String,
}

/// The state file's contents.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    /// The format's version.
    pub version: u32,
    /// OUT's length when the positions were taken.
    pub output_len: u64,
    /// When it was saved, in nanoseconds since the Unix epoch: a rotated file written
    /// after that was created while concur was stopped, and is read whole.
    #[serde(default)]
    pub saved_at_ns: u64,
    /// Per followed path: its open files, the one being retired after a rotation
    /// first, the one under the name last.
    pub files: BTreeMap<String, Vec<Position>>,
}

/// Lowercase hex.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The bytes of a hex string (empty when it is not hex).
pub(crate) fn unhex(text: &str) -> Vec<u8> {
    if !text.len().is_multiple_of(2) {
        return Vec::new();
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16))
        .collect::<Result<_, _>>()
        .unwrap_or_default()
}

/// What stops the state file from being read or written.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// Reading or writing it failed.
    #[error("cannot {what} the state file {}", path.display())]
    Io {
        /// "read" or "write".
        what: &'static str,
        /// The state file.
        path: PathBuf,
        /// What the OS said.
        #[source]
        source: io::Error,
    },
    /// It is not a state file concur wrote.
    #[error("{} is not a concur tail state file: {why}", path.display())]
    Format {
        /// The state file.
        path: PathBuf,
        /// What the parser said.
        why: String,
    },
}

impl State {
    /// Loads `path`; a missing file is an empty state (the first run). A file past
    /// [`MAX_STATE_BYTES`] (or `/dev/zero`) is refused as soon as that much is read.
    pub fn load(path: &Path) -> Result<Self, StateError> {
        let text = match crate::limits::read_bounded(path, MAX_STATE_BYTES, "a state file") {
            Ok(text) => text,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Self::default()),
            Err(source) => {
                return Err(StateError::Io {
                    what: "read",
                    path: path.to_owned(),
                    source,
                });
            }
        };
        serde_json::from_slice(&text).map_err(|e| StateError::Format {
            path: path.to_owned(),
            why: e.to_string(),
        })
    }

    /// Replaces `path` atomically: a temp file in the same directory, synced, renamed
    /// over it.
    pub fn save(&mut self, path: &Path) -> Result<(), StateError> {
        self.saved_at_ns = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
        let error = |source| StateError::Io {
            what: "write",
            path: path.to_owned(),
            source,
        };
        let mut tmp = tempfile::NamedTempFile::new_in(dir_of(path)).map_err(error)?;
        let text = serde_json::to_vec(self)
            .map_err(io::Error::other)
            .map_err(error)?;
        tmp.write_all(&text).map_err(error)?;
        tmp.as_file().sync_data().map_err(error)?;
        tmp.persist(path).map_err(|e| error(e.error))?;
        Ok(())
    }
}

/// The directory a path is in (`.` for a bare name).
pub(crate) fn dir_of(path: &Path) -> &Path {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    }
}

/// `dir` and the directories directly in it: where rotated copies of a file in `dir`
/// can be (`app.log.1`, or a logrotate `olddir`).
fn dir_and_subdirs(dir: &Path) -> Vec<PathBuf> {
    let mut dirs = vec![dir.to_owned()];
    if let Ok(entries) = std::fs::read_dir(dir) {
        dirs.extend(
            entries
                .flatten()
                .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                .map(|e| e.path()),
        );
    }
    dirs
}

/// The file with inode `(dev, ino)` starting with `head`, among the entries of `dir` and
/// of the directories directly in it: where a file the name no longer points to went.
pub(crate) fn find_by_inode(
    dir: &Path,
    dev: u64,
    ino: u64,
    head: &[u8],
) -> Option<(PathBuf, File)> {
    for dir in dir_and_subdirs(dir) {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            // The directory entry's inode first: no open for the others.
            if entry.ino() != ino {
                continue;
            }
            let Ok(file) = File::open(entry.path()) else {
                continue;
            };
            let Ok(meta) = file.metadata() else { continue };
            if meta.dev() == dev && meta.ino() == ino && starts_with(&file, head) {
                return Some((entry.path(), file));
            }
        }
    }
    None
}

/// The rotated copies of `path` (by name, in its directory and the directories in it)
/// last written after `since`, oldest first: files created and rotated away while
/// concur was stopped, which no saved position covers.
pub(crate) fn written_since(path: &Path, since: std::time::SystemTime) -> Vec<(PathBuf, File)> {
    use std::os::unix::ffi::OsStrExt;
    let Some(base) = path.file_name() else {
        return Vec::new();
    };
    let mut found = Vec::new();
    for dir in dir_and_subdirs(dir_of(path)) {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            if !super::source::is_copy_name(entry.file_name().as_bytes(), base.as_bytes()) {
                continue;
            }
            let Ok(file) = File::open(entry.path()) else {
                continue;
            };
            let Ok(modified) = file.metadata().and_then(|m| m.modified()) else {
                continue;
            };
            if modified > since {
                found.push((modified, entry.path(), file));
            }
        }
    }
    found.sort_by_key(|(modified, _, _)| *modified);
    found
        .into_iter()
        .map(|(_, path, file)| (path, file))
        .collect()
}

/// Whether `file` begins with `head`.
pub(crate) fn starts_with(file: &File, head: &[u8]) -> bool {
    use std::os::unix::fs::FileExt;
    let mut first = vec![0; head.len()];
    let mut filled = 0;
    while filled < first.len() {
        match file.read_at(&mut first[filled..], filled as u64) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return false,
        }
    }
    filled == head.len() && first == head
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trips_and_rejects_junk() {
        assert_eq!(hex(b"\x00ab\xff"), "006162ff");
        assert_eq!(unhex("006162ff"), b"\x00ab\xff");
        assert!(unhex("0g").is_empty());
        assert!(unhex("abc").is_empty());
    }

    #[test]
    fn a_state_is_saved_atomically_and_loaded_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tail.state");
        assert_eq!(State::load(&path).unwrap(), State::default());
        let mut state = State {
            version: 1,
            saved_at_ns: 0,
            output_len: 42,
            ..State::default()
        };
        state.files.insert(
            "app.log".into(),
            vec![Position {
                dev: 1,
                ino: 2,
                pos: 3,
                head: hex(b"hello"),
                tail: String::new(),
            }],
        );
        state.save(&path).unwrap();
        assert_eq!(State::load(&path).unwrap(), state);
        std::fs::write(&path, "{not json").unwrap();
        let err = State::load(&path).unwrap_err().to_string();
        assert!(err.contains("is not a concur tail state file"), "{err}");
    }

    #[test]
    fn a_rotated_file_is_found_by_inode_in_an_olddir() {
        let dir = tempfile::tempdir().unwrap();
        let old = dir.path().join("old");
        std::fs::create_dir(&old).unwrap();
        let path = dir.path().join("app.log");
        std::fs::write(&path, b"first bytes\n").unwrap();
        let meta = std::fs::metadata(&path).unwrap();
        std::fs::rename(&path, old.join("app.log.1")).unwrap();
        let (found, _) = find_by_inode(dir.path(), meta.dev(), meta.ino(), b"first").unwrap();
        assert_eq!(found, old.join("app.log.1"));
        assert!(find_by_inode(dir.path(), meta.dev(), meta.ino(), b"other").is_none());
    }
}
