//! Reasons to stop that are not in the files: the output closed by its reader, and the
//! writer process (`--pid`) gone. Each watcher blocks in `poll(2)` on the thing it
//! watches and on the stop signal, so it costs nothing while waiting.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::thread::{self, JoinHandle};

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

/// `--pid`: stops tailing (after the final drain) once every process of `pids` has
/// exited. It waits on their pidfds; where there are none, it checks once a second.
pub(crate) fn pid_exit(
    shared: &Arc<Shared>,
    pids: &[u32],
) -> Result<Option<JoinHandle<()>>, TailError> {
    let shared = Arc::clone(shared);
    let pids = pids.to_vec();
    thread::Builder::new()
        .name("tail-pid-watch".into())
        .spawn(move || {
            let mut fds = Vec::new();
            let mut unwatchable = Vec::new();
            for raw in pids {
                let Some(pid) = i32::try_from(raw).ok().and_then(Pid::from_raw) else {
                    (shared.log)(format!(
                        "--pid {raw} is not a process id; counted as exited"
                    ));
                    continue;
                };
                match pidfd_open(pid, PidfdFlags::empty()) {
                    Ok(fd) => fds.push((pid, fd)),
                    Err(Errno::SRCH) => {
                        (shared.log)(format!("--pid {raw}: no such process; counted as exited"))
                    }
                    Err(_) => unwatchable.push(pid),
                }
            }
            if !wait_all(&shared, fds, unwatchable) {
                return; // tailing stopped first
            }
            (shared.log)("every --pid process has exited; draining and stopping".into());
            shared.stop();
        })
        .map(Some)
        .map_err(TailError::Start)
}

/// Waits until every process has exited (true) or tailing stops (false).
fn wait_all(
    shared: &Shared,
    mut fds: Vec<(Pid, std::os::fd::OwnedFd)>,
    mut others: Vec<Pid>,
) -> bool {
    use std::os::fd::AsFd;
    let halted = shared.halt.subscribe();
    loop {
        others.retain(|&pid| test_kill_process(pid) != Err(Errno::SRCH));
        if fds.is_empty() && others.is_empty() {
            return true;
        }
        let mut polled: Vec<PollFd<'_>> = fds
            .iter()
            .map(|(_, fd)| PollFd::from_borrowed_fd(fd.as_fd(), PollFlags::IN))
            .collect();
        polled.push(PollFd::from_borrowed_fd(shared.halt.fd(), PollFlags::IN));
        let timeout = rustix::event::Timespec {
            tv_sec: 1,
            tv_nsec: 0,
        };
        let wait = (!others.is_empty()).then_some(&timeout);
        match poll(&mut polled, wait) {
            Ok(_) | Err(Errno::INTR) => {}
            Err(_) => return false,
        }
        if !polled[fds.len()].revents().is_empty() || halted.try_recv().is_ok() {
            return false;
        }
        let exited: Vec<bool> = polled[..fds.len()]
            .iter()
            .map(|p| !p.revents().is_empty())
            .collect();
        drop(polled);
        let mut i = 0;
        fds.retain(|_| {
            i += 1;
            !exited[i - 1]
        });
    }
}
