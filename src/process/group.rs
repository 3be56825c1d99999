//! A process group of children, and the loop that feeds, drains and waits for it.
//!
//! One thread drives everything with `poll(2)`: the child's stdin (while there is input
//! left), every captured stdout and stderr, a pidfd per child (readable when it exits),
//! and the cancel token. It is Python's `communicate()` without helper threads, with a
//! deadline, and with the shutdown the book asks for: SIGTERM to the whole group, a grace
//! period, SIGKILL, and always a reap.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;
use std::time::{Duration, Instant};

use rustix::event::{PollFd, PollFlags, Timespec, poll};
use rustix::process::{Pid, PidfdFlags, Signal, kill_process_group, pidfd_open};

use super::cancel::CancelToken;

/// How often to check a child that has no pidfd (kernels before 5.3).
const FALLBACK_TICK: Duration = Duration::from_millis(10);

/// After SIGKILL, how long to keep reading pipes that something outside the group holds.
const DRAIN_AFTER_KILL: Duration = Duration::from_millis(500);

/// One child process in a group.
#[derive(Debug)]
pub(crate) struct Member {
    child: std::process::Child,
    pidfd: Option<OwnedFd>,
    /// Its pidfd polled readable: it has exited and `wait4` will reap it.
    pidfd_ready: bool,
    status: Option<ExitStatus>,
}

impl Member {
    pub(crate) fn new(child: std::process::Child) -> Self {
        let pidfd = pidfd_open(Pid::from_child(&child), PidfdFlags::empty()).ok();
        Self {
            child,
            pidfd,
            pidfd_ready: false,
            status: None,
        }
    }

    pub(crate) fn id(&self) -> u32 {
        self.child.id()
    }

    /// Reaps the child if it has exited, without blocking.
    pub(crate) fn try_reap(&mut self) -> io::Result<Option<ExitStatus>> {
        if self.status.is_none() {
            self.status = self.child.try_wait()?;
        }
        Ok(self.status)
    }
}

/// Children sharing one process group: a single command, or the stages of a pipeline.
/// Dropping the group kills and reaps whatever is still running, so no zombie is left.
#[derive(Debug)]
pub(crate) struct Group {
    pgid: Pid,
    pub(crate) members: Vec<Member>,
}

/// Why the parent stopped a group early.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Stop {
    /// The deadline passed.
    Deadline,
    /// The cancel token fired.
    Cancel,
}

/// The wiring for one [`Group::pump`]: input for the first child, and where each
/// captured stream goes.
pub(crate) struct Pump<'a> {
    pub(crate) stdin: Option<(File, Feed<'a>)>,
    pub(crate) readers: Vec<(File, &'a mut dyn Write)>,
}

/// What a child's stdin is fed: some bytes, then maybe a byte range of a file, moved
/// from the page cache into the pipe by `splice(2)` without passing through this
/// process (`run --pipepart`).
#[derive(Clone, Copy, Default)]
pub(crate) struct Feed<'a> {
    pub(crate) head: &'a [u8],
    pub(crate) range: Option<(&'a File, u64, u64)>,
}

impl<'a> From<&'a [u8]> for Feed<'a> {
    fn from(head: &'a [u8]) -> Self {
        Self { head, range: None }
    }
}

impl Feed<'_> {
    /// Bytes to feed in all.
    pub(crate) fn len(&self) -> u64 {
        self.head.len() as u64 + self.range.map_or(0, |(_, _, len)| len)
    }

    /// Feeds what the pipe takes now, from byte `sent` on; returns how many it took.
    /// `WouldBlock` when the pipe is full.
    fn write_to(&self, pipe: &mut File, sent: u64) -> io::Result<usize> {
        let head = self.head.len() as u64;
        if sent < head {
            return pipe.write(&self.head[sent as usize..]);
        }
        let Some((file, offset, len)) = self.range else {
            return Ok(0);
        };
        let done = sent - head;
        let mut at = offset + done;
        let want = usize::try_from(len - done)
            .unwrap_or(usize::MAX)
            .min(1 << 30);
        match rustix::pipe::splice(
            file,
            Some(&mut at),
            &*pipe,
            None,
            want,
            rustix::pipe::SpliceFlags::NONBLOCK,
        ) {
            // The file is shorter than the range said: it shrank under us.
            Ok(0) => Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the input file ended before its part did",
            )),
            Ok(n) => Ok(n),
            Err(rustix::io::Errno::INVAL | rustix::io::Errno::NOSYS) => {
                // A file system without splice: copy through a buffer instead.
                let mut buf = vec![0u8; want.min(1 << 16)];
                let n = std::os::unix::fs::FileExt::read_at(file, &mut buf, at)?;
                if n == 0 {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the input file ended before its part did",
                    ));
                }
                // The pipe has room (it polled writable), but may take less than n.
                pipe.write(&buf[..n])
            }
            Err(e) => Err(e.into()),
        }
    }
}

/// What a pump did.
#[derive(Debug)]
pub(crate) struct Pumped {
    /// Exit status of each member, in order.
    pub(crate) statuses: Vec<ExitStatus>,
    /// Why it was stopped early, if it was.
    pub(crate) stop: Option<Stop>,
    /// Bytes written to stdin.
    pub(crate) sent: u64,
    /// Bytes read from each reader, in order.
    pub(crate) read: Vec<u64>,
}

enum Phase {
    Running,
    /// The first member exited; its leftovers may still write until `until`, then
    /// the group is stopped.
    Lingering {
        until: Instant,
    },
    /// SIGTERM was sent; SIGKILL follows at `kill_at`.
    Terminating {
        kill_at: Instant,
    },
    /// SIGKILL was sent; pipes still held open elsewhere are abandoned at `give_up_at`.
    Killed {
        give_up_at: Instant,
    },
}

struct Reader<'a> {
    file: File,
    sink: &'a mut dyn Write,
    open: bool,
    bytes: u64,
}

impl Group {
    /// A group led by `leader`, whose pid is the group id.
    pub(crate) fn new(leader: Member) -> Self {
        Self {
            pgid: Pid::from_child(&leader.child),
            members: vec![leader],
        }
    }

    /// The process group id.
    pub(crate) fn pgid(&self) -> Pid {
        self.pgid
    }

    /// Sends `signal` to every process in the group (grandchildren included).
    pub(crate) fn signal(&self, signal: Signal) {
        // ESRCH (the group is gone) is the expected way for this to "fail".
        let _ = kill_process_group(self.pgid, signal);
    }

    /// Reaps whatever has exited; true when every member has.
    /// A member with a pidfd is waited for only once the pidfd says it exited, so a
    /// running job costs no `wait4` that finds nothing; one without is tried each time.
    fn reap_exited(&mut self) -> io::Result<bool> {
        let mut all = true;
        for member in &mut self.members {
            if member.pidfd.is_none() || member.pidfd_ready {
                member.try_reap()?;
            }
            all &= member.status.is_some();
        }
        Ok(all)
    }

    /// Feeds stdin, drains every reader into its sink, and waits for every member to
    /// exit, until `deadline` or `cancel`; then stops the group (SIGTERM, `grace`,
    /// SIGKILL) and still reaps it.
    pub(crate) fn pump(
        &mut self,
        io: Pump<'_>,
        deadline: Option<Instant>,
        grace: Duration,
        linger: Option<Duration>,
        cancel: Option<&CancelToken>,
    ) -> io::Result<Pumped> {
        let mut stdin = io.stdin;
        let mut sent = 0u64;
        if let Some((file, feed)) = &stdin {
            rustix::io::ioctl_fionbio(file, true)?;
            if feed.len() == 0 {
                stdin = None; // close at once: the child sees end of input
            }
        }
        let mut readers: Vec<Reader<'_>> = Vec::with_capacity(io.readers.len());
        for (file, sink) in io.readers {
            rustix::io::ioctl_fionbio(&file, true)?;
            readers.push(Reader {
                file,
                sink,
                open: true,
                bytes: 0,
            });
        }
        let mut phase = Phase::Running;
        let mut stop = None;
        let mut buf = vec![0u8; 64 * 1024];

        loop {
            let exited = self.reap_exited()?;
            if exited && readers.iter().all(|r| !r.open) {
                break;
            }
            let now = Instant::now();
            if let (Phase::Running, Some(linger)) = (&phase, linger)
                && self.members.first().is_some_and(|m| m.status.is_some())
            {
                // The job's own process is done: what it left behind gets `linger`
                // to finish writing, not the run's time.
                phase = Phase::Lingering {
                    until: now + linger,
                };
            }
            match phase {
                Phase::Lingering { until } if now >= until => {
                    self.signal(Signal::TERM);
                    phase = Phase::Terminating {
                        kill_at: now + grace,
                    };
                    continue;
                }
                Phase::Running => {
                    let why = if cancel.is_some_and(CancelToken::is_cancelled) {
                        Some(Stop::Cancel)
                    } else if deadline.is_some_and(|d| now >= d) {
                        Some(Stop::Deadline)
                    } else {
                        None
                    };
                    if let Some(why) = why {
                        stop = Some(why);
                        stdin = None;
                        self.signal(Signal::TERM);
                        phase = Phase::Terminating {
                            kill_at: now + grace,
                        };
                        continue;
                    }
                }
                Phase::Terminating { kill_at } if now >= kill_at => {
                    self.signal(Signal::KILL);
                    phase = Phase::Killed {
                        give_up_at: now + DRAIN_AFTER_KILL,
                    };
                    continue;
                }
                Phase::Killed { give_up_at } if now >= give_up_at && exited => {
                    // Every member is reaped, but something outside the group (a
                    // daemonized grandchild) still holds a pipe: stop waiting for it.
                    break;
                }
                _ => {}
            }

            let wake_at = match phase {
                Phase::Running => deadline,
                Phase::Lingering { until } => Some(until),
                Phase::Terminating { kill_at } => Some(kill_at),
                // Past give-up, only the members' exits are awaited (SIGKILL was sent).
                Phase::Killed { give_up_at } => Some(give_up_at).filter(|&t| t > now),
            };
            let mut timeout = wake_at.map(|t| t.saturating_duration_since(now));
            if self
                .members
                .iter()
                .any(|m| m.status.is_none() && m.pidfd.is_none())
            {
                timeout = Some(timeout.map_or(FALLBACK_TICK, |t| t.min(FALLBACK_TICK)));
            }

            // Build the poll set; remember which entry is which.
            let mut fds: Vec<PollFd<'_>> = Vec::new();
            let stdin_slot = stdin.as_ref().map(|(file, _)| {
                fds.push(PollFd::new(file, PollFlags::OUT));
                fds.len() - 1
            });
            let mut reader_slots = Vec::with_capacity(readers.len());
            for (i, reader) in readers.iter().enumerate() {
                if reader.open {
                    fds.push(PollFd::new(&reader.file, PollFlags::IN));
                    reader_slots.push((i, fds.len() - 1));
                }
            }
            let mut pidfd_slots = Vec::new();
            for (i, member) in self.members.iter().enumerate() {
                if let (None, Some(pidfd)) = (member.status, &member.pidfd) {
                    fds.push(PollFd::new(pidfd, PollFlags::IN));
                    pidfd_slots.push((i, fds.len() - 1));
                }
            }
            if let (Phase::Running, Some(token)) = (&phase, cancel) {
                fds.push(PollFd::from_borrowed_fd(token.fd(), PollFlags::IN));
            }
            let timespec = timeout.map(|t| Timespec {
                tv_sec: t.as_secs().try_into().unwrap_or(i64::MAX),
                tv_nsec: t.subsec_nanos().into(),
            });
            match poll(&mut fds, timespec.as_ref()) {
                Ok(_) => {}
                Err(rustix::io::Errno::INTR) => continue,
                Err(e) => return Err(e.into()),
            }
            let ready: Vec<bool> = fds.iter().map(|f| !f.revents().is_empty()).collect();
            drop(fds);
            for (i, slot) in pidfd_slots {
                self.members[i].pidfd_ready |= ready[slot];
            }

            if stdin_slot.is_some_and(|slot| ready[slot])
                && let Some((file, feed)) = &mut stdin
            {
                match feed.write_to(file, sent) {
                    Ok(n) => {
                        sent += n as u64;
                        if sent == feed.len() {
                            stdin = None; // all fed: close so the child sees EOF
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    // The input file could not give its part: the job must not pass
                    // for having seen it all.
                    Err(e) if e.kind() != io::ErrorKind::BrokenPipe && feed.range.is_some() => {
                        return Err(e);
                    }
                    // The child closed its stdin (EPIPE) or it broke: stop feeding,
                    // as Python's communicate() does; its exit status tells the rest.
                    Err(_) => stdin = None,
                }
            }
            for (i, slot) in reader_slots {
                if ready[slot] {
                    drain(&mut readers[i], &mut buf)?;
                }
            }
        }

        if stop.is_some() {
            // A final sweep: grandchildren that ignored SIGTERM but hold no pipe would
            // otherwise outlive the stop that was meant for them.
            self.signal(Signal::KILL);
        }
        Ok(Pumped {
            statuses: self
                .members
                .iter()
                // The loop only ends once every member is reaped.
                .map(|m| m.status.unwrap_or_else(|| ExitStatus::from_raw(9)))
                .collect(),
            stop,
            sent,
            read: readers.iter().map(|r| r.bytes).collect(),
        })
    }
}

/// Reads everything available from a non-blocking reader into its sink.
fn drain(reader: &mut Reader<'_>, buf: &mut [u8]) -> io::Result<()> {
    loop {
        match reader.file.read(buf) {
            Ok(0) => {
                reader.open = false;
                return Ok(());
            }
            Ok(n) => {
                reader.sink.write_all(&buf[..n])?;
                reader.bytes += n as u64;
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        if self.members.iter().any(|m| m.status.is_none()) {
            self.signal(Signal::KILL);
            for member in &mut self.members {
                if member.status.is_none() {
                    // After SIGKILL this returns promptly; it reaps the zombie.
                    member.status = member.child.wait().ok();
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pidfd_is_available_on_this_kernel() {
        let child = std::process::Command::new("true").spawn().unwrap();
        let mut member = Member::new(child);
        assert!(
            member.pidfd.is_some(),
            "pidfd_open failed: concur would fall back to 10 ms polling"
        );
        while member.try_reap().unwrap().is_none() {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

#[cfg(test)]
mod held_input_tests {
    use std::time::Duration;

    use crate::process::{Cmd, Ending, Input};

    /// A held stdin reaches end of input only when the child is stopped: `cat` keeps
    /// reading until its timeout, while with no input it ends at once.
    #[test]
    fn a_held_stdin_stays_open_until_the_child_is_stopped() {
        let run = |input: Input| {
            let (mut out, mut err) = (Vec::new(), Vec::new());
            Cmd::new("cat")
                .stdin(input)
                .timeout(Duration::from_millis(300))
                .grace(Duration::from_millis(100))
                .execute(&mut out, &mut err, None)
                .unwrap()
                .ending
        };
        assert_eq!(run(Input::Held), Ending::TimedOut);
        assert_eq!(run(Input::Null), Ending::Exited);
    }
}
