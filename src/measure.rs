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
