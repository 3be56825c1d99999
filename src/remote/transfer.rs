//! Files to and from another machine without rsync: `tar` through `ssh`, with the
//! remote side's archive treated as hostile.
//!
//! Sending is the user's own data going out, so `tar -cf - FILE | ssh host 'tar -xf -'`
//! is enough, as long as both ends' exit statuses are checked.
//!
//! Fetching is another matter: `ssh host 'tar -cf - FILE' | tar -xf -` lets whoever
//! answers on that host write any file the local user can (an extra member, a `../`
//! name, an absolute name, a symlink followed by a file through it). So the archive is
//! read here, member by member ([`Unpacked::read`]): only the requested path is taken,
//! as a regular file, or as a directory holding only regular files and directories;
//! anything else is an error naming the host. What is taken is written into a private
//! directory (mode 0700) beside its destination, on the same file system, and only
//! then renamed into place ([`Unpacked::place`]). Nothing in it can be a link, so no
//! write can leave it.
//!
//! Both transports refuse a path with a `..` component, before anything is sent
//! ([`RelativePath::parse`]): rsync refuses one itself, and tar would strip it and put
//! the file somewhere else.

use std::ffi::OsStr;
use std::fs;
use std::io::{self, Read};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// A `--transferfile` or `--return` path, checked and normalised: its components, and
/// whether it is absolute. `.` components and repeated slashes are dropped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RelativePath {
    /// Whether it starts at `/`.
    pub absolute: bool,
    /// Its components, none of them empty, `.` or `..`.
    pub components: Vec<Vec<u8>>,
}

impl RelativePath {
    /// Checks `path`: a `..` component is refused (it would land outside the work
    /// directory on one side or the other), and so is a path that names nothing.
    pub fn parse(path: &[u8]) -> Result<Self, String> {
        let mut components = Vec::new();
        for part in path.split(|&b| b == b'/') {
            match part {
                b"" | b"." => {}
                b".." => {
                    return Err(
                        "a path with a .. component is refused (it could land outside the \
                         work directory)"
                            .to_owned(),
                    );
                }
                part => components.push(part.to_vec()),
            }
        }
        if components.is_empty() {
            return Err("the path names no file".to_owned());
        }
        Ok(Self {
            absolute: path.starts_with(b"/"),
            components,
        })
    }

    /// The components joined by `/`, without a leading one.
    pub fn rest(&self) -> Vec<u8> {
        self.components.join(&b'/')
    }

    /// The path as given, normalised: the components, after a `/` if absolute.
    pub fn to_bytes(&self) -> Vec<u8> {
        match self.absolute {
            true => [b"/".as_slice(), &self.rest()].concat(),
            false => self.rest(),
        }
    }

    /// Where it lives on this machine: under `/` if absolute, else under the
    /// current directory.
    pub fn local(&self) -> PathBuf {
        let mut path = PathBuf::from(if self.absolute { "/" } else { "." });
        for part in &self.components {
            path.push(OsStr::from_bytes(part));
        }
        path
    }
}

/// What is wrong with a member of a fetched archive, or with placing it.
fn refuse(why: impl std::fmt::Display) -> String {
    format!("the host's archive was refused: {why}")
}

/// An archive member's name as components, if it is a plain relative name (an
/// optional leading `./`, no `..`, no `.`, no empty part but a trailing `/`).
fn member_components(name: &[u8]) -> Option<Vec<&[u8]>> {
    let name = name.strip_prefix(b"./").unwrap_or(name);
    let name = name.strip_suffix(b"/").unwrap_or(name);
    if name.is_empty() || name.starts_with(b"/") {
        return None;
    }
    let parts: Vec<&[u8]> = name.split(|&b| b == b'/').collect();
    parts
        .iter()
        .all(|p| !p.is_empty() && *p != b"." && *p != b"..")
        .then_some(parts)
}

/// What a fetched archive held, unpacked into a private directory.
#[derive(Debug)]
pub struct Unpacked {
    dir: tempfile::TempDir,
    /// Whether the requested path came as a directory.
    is_dir: bool,
}

/// The name, inside the private directory, that stands for the requested path.
const PAYLOAD: &str = "payload";

impl Unpacked {
    /// A private directory (mode 0700) beside where `wanted` goes, so that renaming
    /// out of it stays on one file system. The destination's parent is made if missing.
    pub fn private_dir(wanted: &RelativePath) -> Result<tempfile::TempDir, String> {
        let target = wanted.local();
        let parent = target.parent().unwrap_or(Path::new("."));
        fs::create_dir_all(parent).map_err(|e| format!("cannot make {}: {e}", parent.display()))?;
        tempfile::Builder::new()
            .prefix(".concur-return-")
            .permissions(fs::Permissions::from_mode(0o700))
            .tempdir_in(parent)
            .map_err(|e| format!("cannot make a directory in {}: {e}", parent.display()))
    }

    /// Reads `archive`, taking only `wanted` (its name in the archive is
    /// `wanted.rest()`), into `dir`.
    pub fn read(
        archive: impl Read,
        wanted: &RelativePath,
        dir: tempfile::TempDir,
    ) -> Result<Self, String> {
        let wanted_parts: Vec<&[u8]> = wanted.components.iter().map(Vec::as_slice).collect();
        let payload = dir.path().join(PAYLOAD);
        let mut archive = tar::Archive::new(archive);
        let mut is_dir = None;
        let entries = archive.entries().map_err(refuse)?;
        for entry in entries {
            let mut entry = entry.map_err(|e| refuse(format!("not a tar archive: {e}")))?;
            let kind = entry.header().entry_type();
            if kind == tar::EntryType::XGlobalHeader {
                continue; // metadata for the archive as a whole: nothing to write
            }
            let name = entry.path_bytes().into_owned();
            let shown = crate::lines::excerpt(&String::from_utf8_lossy(&name), 80);
            let parts = member_components(&name)
                .ok_or_else(|| refuse(format!("{shown} is not a plain relative name")))?;
            let Some(inside) = parts.strip_prefix(wanted_parts.as_slice()) else {
                return Err(refuse(format!("{shown} was not asked for")));
            };
            if !inside.is_empty() && is_dir != Some(true) {
                return Err(refuse(format!(
                    "{shown} was not asked for (what was asked for is no directory)"
                )));
            }
            if inside.is_empty() && is_dir.is_some() {
                return Err(refuse(format!("{shown} comes twice")));
            }
            let mut target = payload.clone();
            for part in inside {
                target.push(OsStr::from_bytes(part));
            }
            let mode = entry.header().mode().unwrap_or(0o644) & 0o777;
            let mtime = entry.header().mtime().ok();
            match kind {
                tar::EntryType::Directory => {
                    fs::create_dir_all(&target).map_err(|e| refuse(format!("{shown}: {e}")))?;
                    if inside.is_empty() {
                        is_dir = Some(true);
                    }
                }
                tar::EntryType::Regular | tar::EntryType::Continuous => {
                    if inside.is_empty() {
                        is_dir = Some(false);
                    }
                    if let Some(parent) = target.parent() {
                        // Only directories are ever made in here, so no link can be
                        // in the way.
                        fs::create_dir_all(parent).map_err(|e| refuse(format!("{shown}: {e}")))?;
                    }
                    let mut file = fs::OpenOptions::new()
                        .write(true)
                        .create_new(true)
                        .mode(0o600)
                        .open(&target)
                        .map_err(|e| match e.kind() {
                            io::ErrorKind::AlreadyExists => refuse(format!("{shown} comes twice")),
                            _ => refuse(format!("{shown}: {e}")),
                        })?;
                    io::copy(&mut entry, &mut file).map_err(|e| refuse(format!("{shown}: {e}")))?;
                    file.set_permissions(fs::Permissions::from_mode(mode))
                        .map_err(|e| refuse(format!("{shown}: {e}")))?;
                    if let Some(secs) = mtime {
                        let _ =
                            file.set_modified(SystemTime::UNIX_EPOCH + Duration::from_secs(secs));
                    }
                }
                other => {
                    let what = match other {
                        tar::EntryType::Symlink => "a symbolic link",
                        tar::EntryType::Link => "a hard link",
                        tar::EntryType::Char | tar::EntryType::Block => "a device",
                        tar::EntryType::Fifo => "a FIFO",
                        _ => "not a regular file or directory",
                    };
                    return Err(refuse(format!("{shown} is {what}")));
                }
            }
        }
        match is_dir {
            Some(is_dir) => Ok(Self { dir, is_dir }),
            None => Err(refuse(format!(
                "it holds no {}",
                String::from_utf8_lossy(&wanted.rest())
            ))),
        }
    }

    /// Renames what was taken into place at `wanted.local()`: a file over whatever
    /// file was there, a directory's files into the directory there (made if
    /// missing).
    pub fn place(self, wanted: &RelativePath) -> Result<(), String> {
        let target = wanted.local();
        let payload = self.dir.path().join(PAYLOAD);
        let failed = |e: io::Error| format!("cannot put it at {}: {e}", target.display());
        if !self.is_dir || fs::symlink_metadata(&target).is_err() {
            return fs::rename(&payload, &target).map_err(failed);
        }
        merge(&payload, &target).map_err(failed)
    }
}

/// Moves the files of directory `from` into directory `to`, making directories as
/// needed.
fn merge(from: &Path, to: &Path) -> io::Result<()> {
    if !fs::symlink_metadata(to)?.is_dir() {
        return Err(io::Error::other("a directory came, and it is not one here"));
    }
    for entry in fs::read_dir(from)? {
        let entry = entry?;
        let dest = to.join(entry.file_name());
        if entry.file_type()?.is_dir() && fs::symlink_metadata(&dest).is_ok() {
            merge(&entry.path(), &dest)?;
        } else {
            fs::rename(entry.path(), &dest)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(p: &str) -> RelativePath {
        RelativePath::parse(p.as_bytes()).unwrap()
    }

    #[test]
    fn paths_lose_dots_and_refuse_parents() {
        assert_eq!(path("./a//b/./c").rest(), b"a/b/c");
        assert!(path("/tmp/x").absolute);
        assert_eq!(path("/tmp/x").local(), PathBuf::from("/tmp/x"));
        for bad in ["../x", "a/../../x", "a/..", "", ".", "/"] {
            assert!(RelativePath::parse(bad.as_bytes()).is_err(), "{bad}");
        }
    }

    #[test]
    fn member_names_must_be_plain_and_relative() {
        assert_eq!(member_components(b"./a/b"), Some(vec![&b"a"[..], b"b"]));
        assert_eq!(member_components(b"a/"), Some(vec![&b"a"[..]]));
        for bad in [&b"/etc/passwd"[..], b"../x", b"a/../b", b"a//b", b"", b"./"] {
            assert_eq!(
                member_components(bad),
                None,
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }
}
