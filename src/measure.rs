//! Process measurements for benchmarks: peak memory and peak thread count.
//!
//! Both come from the kernel's own accounting in `/proc/self/status` (`VmHWM`, the
//! resident high-water mark, and `Threads`), so they count everything the process does,
//! including threads a runtime starts behind our back. On systems without `/proc` they
//! are `None`, and reports say so instead of printing a made-up zero.

use std::thread::{self, JoinHandle};
use std::time::Duration;

use crossbeam_channel::{RecvTimeoutError, Sender};

fn status_field(name: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status.lines().find_map(|line| {
        let rest = line.strip_prefix(name)?.strip_prefix(':')?;
        rest.split_whitespace().next()?.parse().ok()
    })
}

/// The most resident memory this process has used so far, in bytes (`VmHWM`).
pub fn peak_rss_bytes() -> Option<u64> {
    status_field("VmHWM").map(|kib| kib * 1024)
}

/// CPU time (user + system) a process has used so far, in seconds: `pid`'s, or this
/// process's when `None` (`/proc/PID/stat`, in the kernel's 1/100 s ticks).
pub fn cpu_seconds(pid: Option<u32>) -> Option<f64> {
    let path = match pid {
        Some(pid) => format!("/proc/{pid}/stat"),
        None => "/proc/self/stat".to_owned(),
    };
    let stat = std::fs::read_to_string(path).ok()?;
    // After the ")" that ends the command name: fields 3 onwards; utime and stime are
    // fields 14 and 15.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i - 3)?.parse::<u64>().ok();
    // USER_HZ, the unit of these fields, is 100 on every Linux.
    Some((ticks(14)? + ticks(15)?) as f64 / 100.0)
}

/// Threads in this process right now.
pub fn thread_count() -> Option<usize> {
    status_field("Threads").and_then(|n| usize::try_from(n).ok())
}

/// Samples the thread count on a background thread and remembers the peak.
///
/// The sampler's own thread is not counted. Threads that live shorter than the interval
/// can be missed, so this suits strategies whose threads wait on I/O for a while.
#[derive(Debug)]
pub struct PeakThreads {
    stop: Option<Sender<()>>,
    sampler: Option<JoinHandle<usize>>,
}

impl PeakThreads {
    /// Starts sampling every `interval`. If the sampler cannot be started, or the
    /// system has no `/proc`, [`finish`](Self::finish) returns `None`.
    pub fn start(interval: Duration) -> Self {
        let (stop, stopped) = crossbeam_channel::bounded::<()>(0);
        let sampler = thread::Builder::new()
            .name("peak-threads".into())
            .spawn(move || {
                let mut peak = 0;
                loop {
                    peak = peak.max(thread_count().unwrap_or(0));
                    match stopped.recv_timeout(interval) {
                        Err(RecvTimeoutError::Timeout) => {}
                        _ => return peak,
                    }
                }
            })
            .ok();
        Self {
            stop: Some(stop),
            sampler,
        }
    }

    /// Stops sampling and returns the peak, not counting the sampler itself.
    pub fn finish(mut self) -> Option<usize> {
        drop(self.stop.take());
        let peak = self.sampler.take()?.join().ok()?;
        peak.checked_sub(1).filter(|&n| n > 0)
    }
}

impl Drop for PeakThreads {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(sampler) = self.sampler.take() {
            let _ = sampler.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Barrier;

    #[test]
    #[cfg(target_os = "linux")]
    fn cpu_time_grows_with_work() {
        let before = cpu_seconds(None).expect("linux has /proc");
        let start = std::time::Instant::now();
        let mut x = 1u64;
        while start.elapsed() < Duration::from_millis(150) {
            x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
        }
        let after = cpu_seconds(Some(std::process::id())).expect("linux has /proc");
        assert!(after - before >= 0.05, "{before} -> {after}");
    }

    #[test]
    #[cfg(target_os = "linux")]
    fn sees_threads_that_are_alive_while_it_samples() {
        let sampler = PeakThreads::start(Duration::from_millis(1));
        let barrier = Barrier::new(9);
        thread::scope(|s| {
            for _ in 0..8 {
                s.spawn(|| {
                    barrier.wait();
                    thread::sleep(Duration::from_millis(50));
                });
            }
            barrier.wait();
            thread::sleep(Duration::from_millis(20));
        });
        let peak = sampler.finish().unwrap();
        // The 8 sleepers and this test's own thread were alive for 20+ ms of samples.
        assert!(peak >= 9, "peak {peak}");
        assert!(peak_rss_bytes().unwrap() > 0);
    }
}
