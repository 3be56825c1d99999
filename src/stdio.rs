//! Standard streams that the caller closed (`concur tail file >&-`, `<&-`).
//!
//! Before `main`, Rust's runtime reopens a closed descriptor 0, 1 or 2 on `/dev/null`
//! (read-write), so that nothing else is opened in its place; writes to it then vanish
//! and reads see an empty input, and a command would exit 0 having lost its output. A
//! shell's redirections open `/dev/null` read-only (`<`) or write-only (`>`), so a
//! read-write `/dev/null` on a standard descriptor means it was closed. [`guard`] notes
//! that, and puts there a `/dev/null` open the wrong way round, so that every read or
//! write fails with EBADF, as it would on the closed descriptor.

use std::os::fd::{AsFd, BorrowedFd};
use std::sync::atomic::{AtomicBool, Ordering};

use rustix::fs::{Mode, OFlags};

static STDIN_CLOSED: AtomicBool = AtomicBool::new(false);
static STDOUT_CLOSED: AtomicBool = AtomicBool::new(false);

/// Whether `fd` is the read-write `/dev/null` the runtime put on a closed descriptor.
fn reopened_by_runtime(fd: BorrowedFd<'_>) -> bool {
    let Ok(flags) = rustix::fs::fcntl_getfl(fd) else {
        return true; // still closed
    };
    if flags & OFlags::ACCMODE != OFlags::RDWR {
        return false;
    }
    match (rustix::fs::fstat(fd), rustix::fs::stat("/dev/null")) {
        (Ok(ours), Ok(null)) => {
            rustix::fs::FileType::from_raw_mode(ours.st_mode)
                == rustix::fs::FileType::CharacterDevice
                && ours.st_rdev == null.st_rdev
        }
        _ => false,
    }
}

/// Notes which of standard input and output the caller closed, and makes every use of
/// them fail as on a closed descriptor. Called first thing in `main`.
pub fn guard() {
    let stdin = std::io::stdin();
    if reopened_by_runtime(stdin.as_fd()) {
        STDIN_CLOSED.store(true, Ordering::SeqCst);
        // Write-only: reads fail with EBADF.
        if let Ok(null) = open_null(OFlags::WRONLY) {
            let _ = rustix::stdio::dup2_stdin(null);
        }
    }
    let stdout = std::io::stdout();
    if reopened_by_runtime(stdout.as_fd()) {
        STDOUT_CLOSED.store(true, Ordering::SeqCst);
        // Read-only: writes fail with EBADF.
        if let Ok(null) = open_null(OFlags::RDONLY) {
            let _ = rustix::stdio::dup2_stdout(null);
        }
    }
}

fn open_null(access: OFlags) -> rustix::io::Result<std::os::fd::OwnedFd> {
    rustix::fs::open("/dev/null", access | OFlags::CLOEXEC, Mode::empty())
}

/// Whether standard input was closed by the caller.
pub fn stdin_was_closed() -> bool {
    STDIN_CLOSED.load(Ordering::SeqCst)
}

/// Whether standard output was closed by the caller.
pub fn stdout_was_closed() -> bool {
    STDOUT_CLOSED.load(Ordering::SeqCst)
}
