//! Compressing what a job prints while it waits its turn (`concur run --compress`).
//!
//! GNU parallel's `--compress` pipes each job's output through a compressor into its
//! temporary file and through the decompressor when it is printed, so a run whose
//! jobs print gigabytes costs a fraction of that in `$TMPDIR`. A [`Codec`] is that pair
//! of shell commands; a [`Spool`](super::Spool) made with one runs them.

use std::fmt;
use std::path::Path;

/// Programs looked for on `PATH`, in GNU parallel 20221122's order (fastest first on
/// its measurements); the first found is the default compressor.
const KNOWN: [&str; 17] = [
    "pzstd", "lbzip2", "pbzip2", "zstd", "pixz", "lz4", "pigz", "lzop", "plzip", "lzip", "gzip",
    "lrz", "pxz", "bzip2", "lzma", "xz", "clzip",
];

/// A compressor and its decompressor, each a shell command reading stdin and writing
/// stdout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Codec {
    /// Compresses stdin to stdout: `zstd -c -1`.
    pub compress: String,
    /// Restores what `compress` wrote: `zstd -dc`.
    pub decompress: String,
}

impl Codec {
    /// The codec GNU parallel would pick for these options: `compress` given alone is
    /// decompressed by `compress -dc`; neither given picks the first program of GNU
    /// parallel's list found on `path` (`PRG -c -1`, `PRG -dc`), or `cat` if none is.
    pub fn choose(compress: Option<&str>, decompress: Option<&str>, path: Option<&str>) -> Self {
        let found = || {
            path.into_iter()
                .flat_map(std::env::split_paths)
                .find_map(|dir| {
                    KNOWN
                        .iter()
                        .find(|name| is_executable(&dir.join(name)))
                        .map(|name| (format!("{name} -c -1"), format!("{name} -dc")))
                })
                .unwrap_or_else(|| ("cat".to_owned(), "cat".to_owned()))
        };
        match (compress, decompress) {
            (Some(c), Some(d)) => Self::pair(c, d),
            (Some(c), None) => Self::pair(c, &format!("{c} -dc")),
            (None, decompress) => {
                let (c, d) = found();
                Self::pair(&c, decompress.unwrap_or(&d))
            }
        }
    }

    fn pair(compress: &str, decompress: &str) -> Self {
        Self {
            compress: compress.to_owned(),
            decompress: decompress.to_owned(),
        }
    }
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Which side of a [`Codec`] failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The compressor, while the job ran.
    Compress,
    /// The decompressor, while the output was printed.
    Decompress,
}

/// A compressor or decompressor that did not do its work: the job's output is lost
/// or incomplete.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{side} program `{program}` {how}")]
pub struct CodecError {
    /// Which of the two.
    pub side: Side,
    /// Its command.
    pub program: String,
    /// What went wrong: `exited with status 1`, `could not start: …`.
    pub how: String,
}

impl fmt::Display for Side {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Side::Compress => "compress",
            Side::Decompress => "decompress",
        })
    }
}

impl CodecError {
    pub(crate) fn new(side: Side, program: &str, how: String) -> Self {
        Self {
            side,
            program: program.to_owned(),
            how,
        }
    }

    /// The codec failure inside an I/O error from [`Spool::copy_to`](super::Spool::copy_to),
    /// if that is what it is (and not, say, a closed output).
    pub fn within(err: &std::io::Error) -> Option<&CodecError> {
        err.get_ref()?.downcast_ref()
    }
}

/// How a codec program ended, in words; `None` if it succeeded.
pub(crate) fn failure(status: std::process::ExitStatus) -> Option<String> {
    use std::os::unix::process::ExitStatusExt;
    if status.success() {
        None
    } else if let Some(code) = status.code() {
        Some(format!("exited with status {code}"))
    } else {
        Some(format!(
            "was killed by signal {}",
            status.signal().unwrap_or(0)
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn choose_follows_gnu_parallels_rules() {
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path();
        let path = bin.to_str().unwrap();
        // Nothing known on PATH: cat both ways.
        assert_eq!(
            Codec::choose(None, None, Some(path)),
            Codec::pair("cat", "cat")
        );
        for name in ["gzip", "lz4"] {
            let file = bin.join(name);
            std::fs::write(&file, "").unwrap();
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        // A file that is not executable is not a program.
        std::fs::write(bin.join("pzstd"), "").unwrap();
        // lz4 comes before gzip in GNU parallel's list.
        assert_eq!(
            Codec::choose(None, None, Some(path)),
            Codec::pair("lz4 -c -1", "lz4 -dc")
        );
        assert_eq!(
            Codec::choose(None, Some("cat"), Some(path)),
            Codec::pair("lz4 -c -1", "cat")
        );
        assert_eq!(
            Codec::choose(Some("xz -9"), None, Some(path)),
            Codec::pair("xz -9", "xz -9 -dc")
        );
        assert_eq!(
            Codec::choose(Some("a"), Some("b"), None),
            Codec::pair("a", "b")
        );
    }
}
