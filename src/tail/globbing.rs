//! `--glob PATTERN`: following every file whose name matches, now and later (dated
//! names, new workers). The directory part of a pattern is literal; its last part may
//! hold `*`, `?` and `[...]`. The directory is watched (through its nearest ancestor
//! while it does not exist), a file created or moved into it that matches is followed
//! from its start, and a followed file whose name goes away (deleted, or renamed to a
//! name that does not match) is drained and closed once it has been quiet for
//! [`RETIRE_AFTER`](super::RETIRE_AFTER). The directories are also listed again every
//! [`RECHECK`], which is all there is without inotify.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread::{self, JoinHandle};

use super::source::{FollowOptions, Source, Start};
use super::wake::RECHECK;
use super::{Shared, TailError, TailOptions, lock};

/// One pattern's directory and file-name pattern.
#[derive(Clone, Debug)]
pub(crate) struct GlobDir {
    text: String,
    dir: PathBuf,
    name: glob::Pattern,
}

fn has_wildcard(text: &str) -> bool {
    text.contains(['*', '?', '['])
}

/// Splits and checks every `--glob` pattern.
pub(crate) fn glob_dirs(patterns: &[String]) -> Result<Vec<GlobDir>, TailError> {
    patterns
        .iter()
        .map(|text| {
            let error = |why: &str| TailError::Glob {
                pattern: text.clone(),
                why: why.into(),
            };
            let path = Path::new(text);
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .ok_or_else(|| error("it must end in a file-name pattern"))?;
            let dir = super::state::dir_of(path).to_owned();
            if has_wildcard(&dir.to_string_lossy()) {
                return Err(error(
                    "only the last part of the path may hold wildcards (the directory is watched, not searched)",
                ));
            }
            let name = glob::Pattern::new(name).map_err(|e| error(&e.to_string()))?;
            Ok(GlobDir {
                text: text.clone(),
                dir,
                name,
            })
        })
        .collect()
}

struct Globber {
    shared: Arc<Shared>,
    globs: Vec<GlobDir>,
    prefix: bool,
    follow: FollowOptions,
}

impl Globber {
    /// Follows `name` in glob `i`'s directory if it matches, is a regular file, and is
    /// not followed yet.
    fn consider(&self, i: usize, name: &std::ffi::OsStr, start: Start) {
        let glob = &self.globs[i];
        let Some(text) = name.to_str() else { return };
        if !glob.name.matches(text) {
            return;
        }
        let path = glob.dir.join(name);
        if lock(&self.shared.followed).contains(&path) {
            return;
        }
        if !std::fs::metadata(&path).is_ok_and(|m| m.is_file()) {
            return;
        }
        let follow = FollowOptions {
            start,
            ..self.follow
        };
        let opened = match self.shared.saved_positions(&path) {
            Some((saved, at)) => Source::resume(&path, self.prefix, follow, &saved, at),
            None => Source::open(&path, self.prefix, follow),
        };
        match opened {
            Ok(source) => {
                (self.shared.log)(format!(
                    "{}: matches --glob {}; following it",
                    path.display(),
                    glob.text
                ));
                self.shared.adopt(source);
            }
            Err(err) => (self.shared.log)(crate::error_chain(&err)),
        }
    }

    fn scan(&self, i: usize, start: Start) {
        let Ok(entries) = std::fs::read_dir(&self.globs[i].dir) else {
            return; // not there yet: its ancestor is watched
        };
        let mut names: Vec<_> = entries.flatten().map(|e| e.file_name()).collect();
        names.sort();
        for name in names {
            self.consider(i, &name, start);
        }
    }
}

/// Follows what the patterns match now, then watches for more until tailing stops.
pub(crate) fn start(
    shared: &Arc<Shared>,
    globs: Vec<GlobDir>,
    options: &TailOptions,
) -> Result<JoinHandle<()>, TailError> {
    let globber = Globber {
        shared: Arc::clone(shared),
        globs,
        prefix: options.prefix,
        follow: FollowOptions {
            follow_name: true,
            retry: true,
            close_when_gone: true,
            ..options.follow
        },
    };
    let (tx, rx) = crossbeam_channel::unbounded::<(usize, Option<PathBuf>)>();
    if let Some(watch) = &shared.watch {
        for (i, glob) in globber.globs.iter().enumerate() {
            let tx = tx.clone();
            let listener: super::wake::DirListener =
                Arc::new(move |path| drop(tx.send((i, path.map(Path::to_owned)))));
            if let Err(err) = watch.listen(&glob.dir, listener) {
                (shared.log)(format!(
                    "--glob {}: cannot watch {} ({err}); listing it every {:?}",
                    glob.text,
                    glob.dir.display(),
                    RECHECK
                ));
            }
        }
    }
    drop(tx);
    // What is there now starts where asked (-n, -c); what comes later, at its start.
    for i in 0..globber.globs.len() {
        globber.scan(i, options.follow.start);
    }
    let halted = shared.halt.subscribe();
    let watched = shared.watch.is_some();
    let period = if watched { RECHECK } else { options.interval };
    thread::Builder::new()
        .name("tail-glob".into())
        .spawn(move || {
            let rescan = |globber: &Globber| {
                for i in 0..globber.globs.len() {
                    globber.scan(i, Start::Beginning);
                }
            };
            if !watched {
                // No watch: listing on the timer is all there is.
                while halted.recv_timeout(period)
                    == Err(crossbeam_channel::RecvTimeoutError::Timeout)
                {
                    rescan(&globber);
                }
                return;
            }
            loop {
                crossbeam_channel::select! {
                    recv(rx) -> event => match event {
                        Ok((i, Some(path))) => {
                            if let Some(name) = path.file_name() {
                                globber.consider(i, name, Start::Beginning);
                            }
                        }
                        Ok((i, None)) => globber.scan(i, Start::Beginning),
                        Err(_) => return,
                    },
                    recv(halted) -> _ => return,
                    default(period) => rescan(&globber),
                }
            }
        })
        .map_err(TailError::Start)
}
