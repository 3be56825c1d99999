//! The book's slow system call: `select` on a socket with a 0.1 s timeout.

use std::io;
use std::net::UdpSocket;
use std::thread;
use std::time::{Duration, Instant};

use rustix::event::{PollFd, PollFlags, Timespec, poll};
use serde::Serialize;

/// One blocking system call: `poll(2)` on a fresh socket that never receives anything,
/// for `timeout` (the book's `select.select([socket.socket()], [], [], 0.1)`).
pub fn slow_systemcall(timeout: Duration) -> io::Result<()> {
    let socket = UdpSocket::bind("127.0.0.1:0")?;
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(());
        }
        let mut fds = [PollFd::new(&socket, PollFlags::IN)];
        let timespec = Timespec {
            tv_sec: left.as_secs().try_into().unwrap_or(i64::MAX),
            tv_nsec: left.subsec_nanos().into(),
        };
        match poll(&mut fds, Some(&timespec)) {
            Ok(_) | Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
}

/// How to make the calls.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// One call after another; the main thread can do nothing else meanwhile.
    Serial,
    /// One thread per call, while the main thread computes.
    Threads,
}

/// What a run measured.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Report {
    /// How it ran.
    pub mode: Mode,
    /// Calls made.
    pub calls: usize,
    /// Wall time, seconds.
    pub seconds: f64,
    /// Helicopter positions the main thread computed while the calls were blocked
    /// (0 when serial: it was blocked too).
    pub helicopter_moves: u64,
}

/// A helicopter's next position: a small, real computation for the main thread to do
/// while the I/O threads wait.
fn compute_helicopter_location(step: u64, (x, y): (f64, f64)) -> (f64, f64) {
    let t = step as f64 * 0.001;
    (x + t.cos() * 0.5, y + t.sin() * 0.5)
}

/// Makes `calls` slow system calls of `timeout` each, in `mode`.
///
/// ```
/// use std::time::Duration;
/// use concur::threads::slow_io::{Mode, run};
///
/// // Five 20 ms calls on five threads, while the main thread keeps computing.
/// let report = run(Mode::Threads, 5, Duration::from_millis(20)).unwrap();
/// assert_eq!(report.calls, 5);
/// assert!(report.seconds >= 0.020); // each call waits out its whole timeout
/// println!("{} helicopter moves meanwhile", report.helicopter_moves); // main was free
/// let serial = run(Mode::Serial, 2, Duration::from_millis(20)).unwrap();
/// assert_eq!(serial.helicopter_moves, 0); // blocked with the calls
/// ```
pub fn run(mode: Mode, calls: usize, timeout: Duration) -> io::Result<Report> {
    let start = Instant::now();
    let mut moves = 0;
    match mode {
        Mode::Serial => {
            for _ in 0..calls {
                slow_systemcall(timeout)?;
            }
        }
        Mode::Threads => thread::scope(|s| -> io::Result<()> {
            let threads: Vec<_> = (0..calls)
                .map(|_| s.spawn(move || slow_systemcall(timeout)))
                .collect();
            // The main thread flies the helicopter until every call has returned.
            let mut position = (0.0, 0.0);
            while threads.iter().any(|t| !t.is_finished()) {
                position = compute_helicopter_location(moves, position);
                moves += 1;
            }
            std::hint::black_box(position);
            for t in threads {
                t.join()
                    .map_err(|_| io::Error::other("a slow-call thread panicked"))??;
            }
            Ok(())
        })?,
    }
    Ok(Report {
        mode,
        calls,
        seconds: start.elapsed().as_secs_f64(),
        helicopter_moves: moves,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_slow_call_blocks_for_its_timeout() {
        let start = Instant::now();
        slow_systemcall(Duration::from_millis(30)).unwrap();
        // A lower bound only: poll(2) never returns before its timeout here.
        assert!(start.elapsed() >= Duration::from_millis(30));
    }

    #[test]
    fn threads_let_the_main_thread_compute_meanwhile() {
        let report = run(Mode::Threads, 3, Duration::from_millis(20)).unwrap();
        assert_eq!(report.calls, 3);
        assert!(report.helicopter_moves > 0);
        let serial = run(Mode::Serial, 2, Duration::from_millis(5)).unwrap();
        assert_eq!(serial.helicopter_moves, 0);
    }
}
