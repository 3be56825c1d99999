//! Reasons to stop that are not in the files: the output closed by its reader, and the
//! writer process (`--pid`) gone. Each watcher blocks in `poll(2)` on the thing it
//! watches and on the stop signal, so it costs nothing while waiting.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::thread::{self, JoinHandle};
use std::time::Duration;

use rustix::event::{PollFd, PollFlags, poll};
use rustix::fs::FileType;
use rustix::io::Errno;
use rustix::process::{Pid, PidfdFlags, pidfd_open, test_kill_process};

use super::{Shared, TailError};

/// Blocks until `fd` reports any of `events` (or an error/hang-up) or tailing stops.
/// Returns whether `fd` was the one.
fn wait_for(fd: std::os::fd::BorrowedFd<'_>, events: PollFlags, shared: &Shared) -> bool {
    loop {
        let mut fds = [
            PollFd::from_borrowed_fd(fd, events),
            PollFd::from_borrowed_fd(shared.halt.fd(), PollFlags::IN),
        ];
        match poll(&mut fds, None) {
            Ok(_) => {}
            Err(Errno::INTR) => continue,
            Err(_) => return false,
        }
        if !fds[1].revents().is_empty() {
            return false;
        }
        if !fds[0].revents().is_empty() {
            return true;
        }
    }
}

/// When stdout is a pipe or socket: stops tailing as soon as its reader goes away
/// (`concur tail app.log | head -1`), without waiting for a file to grow and a write to
/// fail. A pipe whose reader is gone reports `POLLERR` to `poll`, asked or not.
pub(crate) fn output_closed(shared: &Arc<Shared>) -> Result<Option<JoinHandle<()>>, TailError> {
    let stdout = rustix::stdio::stdout();
    match rustix::fs::fstat(stdout) {
        Ok(stat)
            if matches!(
                FileType::from_raw_mode(stat.st_mode),
                FileType::Fifo | FileType::Socket
            ) => {}
        _ => return Ok(None),
    }
    let shared = Arc::clone(shared);
    thread::Builder::new()
        .name("tail-output-watch".into())
        .spawn(move || {
            if wait_for(stdout, PollFlags::empty(), &shared) {
                shared.output_closed.store(true, Ordering::SeqCst);
                shared.stop();
            }
        })
        .map(Some)
        .map_err(TailError::Start)
}

/// `--pid`: stops tailing (after the final drain) once process `pid` has exited. It
/// waits on a pidfd; where there is none, it checks once a second.
pub(crate) fn pid_exit(
    shared: &Arc<Shared>,
    pid: u32,
) -> Result<Option<JoinHandle<()>>, TailError> {
    let shared = Arc::clone(shared);
    thread::Builder::new()
        .name("tail-pid-watch".into())
        .spawn(move || {
            let Some(pid) = i32::try_from(pid).ok().and_then(Pid::from_raw) else {
                (shared.log)(format!("--pid {pid} is not a process id; stopping"));
                shared.stop();
                return;
            };
            let exited = match pidfd_open(pid, PidfdFlags::empty()) {
                Ok(fd) => {
                    use std::os::fd::AsFd;
                    wait_for(fd.as_fd(), PollFlags::IN, &shared)
                }
                Err(Errno::SRCH) => {
                    (shared.log)(format!(
                        "--pid {}: no such process; draining and stopping",
                        pid.as_raw_nonzero()
                    ));
                    shared.stop();
                    return;
                }
                Err(_) => {
                    let halted = shared.halt.subscribe();
                    loop {
                        if test_kill_process(pid) == Err(Errno::SRCH) {
                            break true;
                        }
                        if halted.recv_timeout(Duration::from_secs(1))
                            != Err(crossbeam_channel::RecvTimeoutError::Timeout)
                        {
                            break false;
                        }
                    }
                }
            };
            if exited {
                (shared.log)(format!(
                    "process {} has exited; draining and stopping",
                    pid.as_raw_nonzero()
                ));
                shared.stop();
            }
        })
        .map(Some)
        .map_err(TailError::Start)
}
