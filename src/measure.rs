//! Measurements for benchmarks: peak memory, peak thread count, and durations sampled in
//! bounded memory ([`Samples`]).
//!
//! Both come from the kernel's own accounting in `/proc/self/status` (`VmHWM`, the
//! resident high-water mark, and `Threads`), so they count everything the process does,
//! including threads a runtime starts behind our back. On systems without `/proc` they
//! are `None`, and reports say so instead of printing a made-up zero.

use std::thread::{self, JoinHandle};
use std::time::Duration;

use crossbeam_channel::{RecvTimeoutError, Sender};

/// Durations (a Life run's steps, a load run's round trips), kept in bounded memory:
/// the count and the total of all of them, and for the median and other percentiles a
/// uniform sample of at most [`Samples::SAMPLES`] (reservoir sampling), so they are
/// exact up to that many and an unbiased estimate beyond. A run of a trillion
/// generations holds 800 KB, not 16 TB.
///
/// ```
/// use concur::measure::Samples;
/// use std::time::Duration;
///
/// let mut times = Samples::default();
/// assert_eq!((times.median(), times.total()), (0.0, 0.0));
/// for ms in [300, 100, 200] {
///     times.push(Duration::from_millis(ms));
/// }
/// assert_eq!(times.median(), 0.2);
/// assert_eq!(times.range(), Some((0.1, 0.3)));
/// assert!((times.total() - 0.6).abs() < 1e-12);
/// ```
#[derive(Clone, Debug, Default)]
pub struct Samples {
    samples: Vec<f64>,
    count: u64,
    total: f64,
    fastest: f64,
    slowest: f64,
    rng: u64,
}

impl Samples {
    /// Samples kept for the percentiles.
    pub const SAMPLES: usize = 100_000;

    /// Records one duration.
    pub fn push(&mut self, elapsed: Duration) {
        let secs = elapsed.as_secs_f64();
        if self.count == 0 {
            (self.fastest, self.slowest) = (secs, secs);
        } else {
            self.fastest = self.fastest.min(secs);
            self.slowest = self.slowest.max(secs);
        }
        self.count += 1;
        self.total += secs;
        if self.samples.len() < Self::SAMPLES {
            self.samples.push(secs);
        } else {
            // Keep this step with probability SAMPLES / count, in place of a random one.
            let slot = self.next_random() % self.count;
            if let Ok(slot) = usize::try_from(slot)
                && slot < Self::SAMPLES
            {
                self.samples[slot] = secs;
            }
        }
    }

    /// Durations recorded.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Seconds for all of them together (0 for none).
    pub fn total(&self) -> f64 {
        self.total
    }

    /// The fastest and the slowest, in seconds (`None` for none).
    pub fn range(&self) -> Option<(f64, f64)> {
        (self.count > 0).then_some((self.fastest, self.slowest))
    }

    /// The median, in seconds (0 for none).
    pub fn median(&self) -> f64 {
        median(self.samples.clone())
    }

    /// The `p`th percentile (0-100), in seconds, as the nearest sample (0 for none).
    pub fn percentile(&self, p: f64) -> f64 {
        let mut sorted = self.samples.clone();
        sorted.sort_by(f64::total_cmp);
        if sorted.is_empty() {
            return 0.0;
        }
        let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
        sorted[rank.min(sorted.len() - 1)]
    }

    /// Samples held now (at most [`SAMPLES`](Self::SAMPLES)).
    pub fn kept(&self) -> usize {
        self.samples.len()
    }

    /// SplitMix64: enough for sampling, and deterministic.
    fn next_random(&mut self) -> u64 {
        self.rng = self.rng.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

/// The median of `secs` (0 for none).
pub fn median(mut secs: Vec<f64>) -> f64 {
    secs.sort_by(f64::total_cmp);
    match secs.len() {
        0 => 0.0,
        n if n % 2 == 1 => secs[n / 2],
        n => (secs[n / 2 - 1] + secs[n / 2]) / 2.0,
    }
}

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

/// Resets this process's peak RSS to its current RSS (`/proc/self/clear_refs`), so
/// that [`peak_rss_bytes`] measures from here on; `false` where the kernel does not
/// allow it.
pub fn reset_peak_rss() -> bool {
    std::fs::write("/proc/self/clear_refs", b"5").is_ok()
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

/// A server a benchmark runs as a child process, so that its CPU time and memory are
/// its own: it prints `concur: listening on ADDR …` as its first line on stderr, and
/// it is killed when this is dropped. Its output is read as it comes, so it never
/// blocks on a full pipe: stderr is dropped, and stdout's last line is kept for
/// [`ServerProcess::stop`].
#[derive(Debug)]
pub struct ServerProcess {
    child: std::process::Child,
    addr: String,
    last_line: Option<JoinHandle<String>>,
}

/// A benchmark's server that did not start.
#[derive(Debug, thiserror::Error)]
pub enum ServerStartError {
    /// It could not be run.
    #[error("cannot run {program}")]
    Spawn {
        /// The program.
        program: std::path::PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// It exited, or printed something other than its address.
    #[error("the server did not start ({status}): {line}")]
    NoAddress {
        /// Its exit status.
        status: String,
        /// What it printed instead of its address.
        line: String,
    },
}

impl ServerProcess {
    /// Runs `program args…` and waits for its address.
    pub fn start(program: &std::path::Path, args: &[&str]) -> Result<Self, ServerStartError> {
        use std::io::BufRead;
        use std::process::{Command, Stdio};
        let spawn_error = |source| ServerStartError::Spawn {
            program: program.to_owned(),
            source,
        };
        let mut child = Command::new(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(spawn_error)?;
        let mut line = String::new();
        let mut stderr = child.stderr.take().map(std::io::BufReader::new);
        if let Some(stderr) = &mut stderr {
            let _ = stderr.read_line(&mut line);
        }
        let addr = line
            .strip_prefix("concur: listening on ")
            .and_then(|rest| rest.split_whitespace().next())
            .map(str::to_owned);
        match addr {
            Some(addr) => {
                if let Some(mut stderr) = stderr {
                    thread::spawn(move || std::io::copy(&mut stderr, &mut std::io::sink()));
                }
                let last_line = child.stdout.take().map(|stdout| {
                    thread::spawn(move || {
                        let mut last = String::new();
                        for line in std::io::BufReader::new(stdout).lines() {
                            match line {
                                Ok(line) if !line.trim().is_empty() => last = line,
                                Ok(_) => {}
                                Err(_) => break,
                            }
                        }
                        last
                    })
                });
                Ok(Self {
                    child,
                    addr,
                    last_line,
                })
            }
            None => {
                let _ = child.kill();
                let status = child.wait().map_err(spawn_error)?;
                Err(ServerStartError::NoAddress {
                    status: status.to_string(),
                    line: line.trim().to_owned(),
                })
            }
        }
    }

    /// The address it listens on, as it printed it.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// CPU time it has used so far, in seconds.
    pub fn cpu_seconds(&self) -> Option<f64> {
        cpu_seconds(Some(self.child.id()))
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Asks it to stop (SIGTERM), waits for it, and returns the last line it printed
    /// on stdout (empty for none).
    pub fn stop(mut self) -> std::io::Result<String> {
        let pid = rustix::process::Pid::from_child(&self.child);
        rustix::process::kill_process(pid, rustix::process::Signal::TERM)?;
        self.child.wait()?;
        let last = self.last_line.take().map(JoinHandle::join);
        Ok(last.and_then(Result::ok).unwrap_or_default())
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// CPU time (user + system) this process has used so far, in seconds, to the
/// nanosecond (`CLOCK_PROCESS_CPUTIME_ID`; threads that have exited included).
pub fn process_cpu_seconds() -> f64 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ProcessCPUTime);
    t.tv_sec as f64 + t.tv_nsec as f64 / 1e9
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
    fn the_peak_rss_resets_to_the_current_rss() {
        // From the current RSS: a peak left by a test that ran earlier in this process
        // would hide part of the rise.
        assert!(reset_peak_rss());
        let before = peak_rss_bytes().unwrap();
        // 256 MiB touched, then freed: the peak stays up until it is reset. (The
        // margins leave room for what tests running beside this one allocate or free.)
        let big = vec![1u8; 256 << 20];
        assert!(big.iter().step_by(4096).all(|&b| b == 1));
        drop(big);
        let high = peak_rss_bytes().unwrap();
        assert!(high >= before + (200 << 20), "{before} then {high}");
        assert!(reset_peak_rss());
        let after = peak_rss_bytes().unwrap();
        assert!(
            after + (200 << 20) <= high,
            "{high} then {after} after the reset"
        );
    }

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

/// System calls a process made while it was traced, by name, as `strace -c` counts
/// them.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct SyscallCounts {
    /// Calls by system call name (failed ones included).
    pub calls: std::collections::BTreeMap<String, u64>,
    /// Of those, the calls that failed (`EAGAIN` and the like), by name.
    pub errors: std::collections::BTreeMap<String, u64>,
}

impl SyscallCounts {
    /// Every call counted.
    pub fn total(&self) -> u64 {
        self.calls.values().sum()
    }

    /// Reads the summary table `strace -c` writes: one row per system call with
    /// `% time, seconds, usecs/call, calls, [errors,] syscall`; the header, the rules and
    /// the `total` row are skipped.
    pub fn parse_strace_summary(text: &str) -> Self {
        let mut counts = Self::default();
        for line in text.lines() {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let (calls, errors, name) = match fields.as_slice() {
                [_, _, _, calls, name] => (calls, None, name),
                [_, _, _, calls, errors, name] => (calls, Some(errors), name),
                _ => continue,
            };
            let (Ok(calls), Some(name)) = (calls.parse::<u64>(), Some(*name)) else {
                continue;
            };
            if name == "total" {
                continue;
            }
            counts.calls.insert(name.to_owned(), calls);
            if let Some(errors) = errors.and_then(|e| e.parse::<u64>().ok())
                && errors > 0
            {
                counts.errors.insert(name.to_owned(), errors);
            }
        }
        counts
    }
}

/// `strace -c -f` attached to a running process: counts its system calls (every
/// thread's, and those of threads it starts) until [`SyscallTrace::finish`].
#[derive(Debug)]
pub struct SyscallTrace {
    child: std::process::Child,
    summary: tempfile::NamedTempFile,
}

/// A system-call trace that could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum TraceError {
    /// strace could not be run (is it installed?).
    #[error("cannot run strace (it counts the server's system calls; apt-get install strace)")]
    Spawn(#[source] std::io::Error),
    /// It did not attach.
    #[error("strace did not attach to process {pid}: {said}")]
    Attach {
        /// The process.
        pid: u32,
        /// What strace said instead.
        said: String,
    },
    /// Its summary could not be read.
    #[error("cannot read strace's summary")]
    Summary(#[source] std::io::Error),
}

impl SyscallTrace {
    /// Attaches to `pid` and returns once every thread of it is traced.
    pub fn attach(pid: u32) -> Result<Self, TraceError> {
        use std::io::BufRead;
        use std::process::{Command, Stdio};
        let summary = tempfile::NamedTempFile::new().map_err(TraceError::Spawn)?;
        let mut child = Command::new("strace")
            .args(["-c", "-f", "-o"])
            .arg(summary.path())
            .args(["-p", &pid.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(TraceError::Spawn)?;
        // strace says `Process N attached` (with `with K threads` for several) once
        // it holds them all; later lines are drained so it never blocks on stderr.
        let mut stderr = child.stderr.take().map(std::io::BufReader::new);
        let mut line = String::new();
        if let Some(stderr) = &mut stderr {
            let _ = stderr.read_line(&mut line);
        }
        if !line.contains("attached") {
            let _ = child.kill();
            let _ = child.wait();
            return Err(TraceError::Attach {
                pid,
                said: line.trim().to_owned(),
            });
        }
        if let Some(mut stderr) = stderr {
            thread::spawn(move || std::io::copy(&mut stderr, &mut std::io::sink()));
        }
        Ok(Self { child, summary })
    }

    /// Detaches (SIGINT, on which strace writes its summary) and returns the counts.
    pub fn finish(mut self) -> Result<SyscallCounts, TraceError> {
        let pid = rustix::process::Pid::from_child(&self.child);
        rustix::process::kill_process(pid, rustix::process::Signal::INT)
            .map_err(|e| TraceError::Summary(e.into()))?;
        self.child.wait().map_err(TraceError::Summary)?;
        let text = std::fs::read_to_string(self.summary.path()).map_err(TraceError::Summary)?;
        Ok(SyscallCounts::parse_strace_summary(&text))
    }
}

#[cfg(test)]
mod syscall_tests {
    use super::*;

    #[test]
    fn reads_an_strace_summary() {
        let text = "\
% time     seconds  usecs/call     calls    errors syscall
------ ----------- ----------- --------- --------- ----------------
 35.16    0.437227          34     12629           sendto
 27.63    0.343623          20     16657        28 recvfrom
  7.28    0.090484          45      2001         1 accept4
------ ----------- ----------- --------- --------- ----------------
100.00    1.243515          28     31287        29 total
";
        let counts = SyscallCounts::parse_strace_summary(text);
        assert_eq!(counts.calls.len(), 3);
        assert_eq!(counts.calls["sendto"], 12629);
        assert_eq!(counts.calls["recvfrom"], 16657);
        assert_eq!(counts.errors["recvfrom"], 28);
        assert_eq!(counts.errors["accept4"], 1);
        assert!(!counts.errors.contains_key("sendto"));
        assert_eq!(counts.total(), 12629 + 16657 + 2001);
    }
}
