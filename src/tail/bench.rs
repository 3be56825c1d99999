//! `concur tail bench`: how fast a line reaches the merged output, and how many lines
//! per second get merged. Each tailer runs as a child process writing to a pipe that
//! this process reads, so every figure includes the real output path.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::Mode;
use crate::report::{Axis, LineChart, Panel, Point, Provenance, Series, Stroke, cdf};

/// Latency percentiles of one configuration.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct Latency {
    /// What ran: `concur tail --mode events`, or `GNU tail`.
    pub tailer: String,
    /// Which file layout: [`Layout::name`].
    pub case: String,
    /// `inotify` or `poll 100ms`.
    pub wake: String,
    /// The design.
    pub mode: Mode,
    /// Lines timed.
    pub samples: usize,
    /// Median append-to-output time, milliseconds.
    pub p50_ms: f64,
    /// 99th percentile, milliseconds.
    pub p99_ms: f64,
    /// Every line's append-to-output time, milliseconds, fastest first (for the CDF).
    #[serde(skip)]
    pub delays_ms: Vec<f64>,
}

/// How the followed file is laid out, and what happens to it, in a latency run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Layout {
    /// A plain file, followed as given.
    Plain,
    /// A symbolic link in one directory to a file in another (Kubernetes'
    /// `/var/log/containers/*.log`), followed by name (`-F`); the target is written.
    Symlink,
    /// A file followed by descriptor (`--follow=descriptor`), renamed once tailing
    /// has started; it is written under its new name.
    Renamed,
}

impl Layout {
    /// The case's name in reports.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Layout::Plain => "plain file",
            Layout::Symlink => "symlink, -F",
            Layout::Renamed => "renamed, --follow=descriptor",
        }
    }
}

/// Who is timed: a concur design (polling or not), or GNU tail.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Timed {
    /// `concur tail --mode MODE`, with `--poll` when set.
    Concur(Mode, bool),
    /// GNU tail, with the same following options.
    Gnu,
}

/// Throughput of one tailer on one workload.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct Throughput {
    /// What ran: a concur design, or `GNU tail`.
    pub tailer: String,
    /// `pre-written` (the files exist in full) or `live` (written while tailing).
    pub workload: String,
    /// Lines merged.
    pub lines: u64,
    /// Seconds until the last line came out.
    pub seconds: f64,
    /// Lines per second.
    pub lines_per_second: f64,
}

fn spawn(command: &mut Command) -> io::Result<Child> {
    command
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .stdin(Stdio::null())
        .spawn()
}

fn stop(mut child: Child) {
    let _ = child.kill();
    let _ = child.wait();
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)].as_secs_f64() * 1000.0
}

/// The polling interval of the latency runs with `--poll`.
pub(crate) const POLL_INTERVAL: Duration = Duration::from_millis(100);

/// Appends `samples` lines, one every 10 ms, each carrying its write time, and measures
/// when each comes out of `concur tail` (with `--poll` when `poll` is set).
pub(crate) fn latency(
    exe: &Path,
    dir: &Path,
    mode: Mode,
    poll: bool,
    samples: usize,
) -> io::Result<Latency> {
    latency_of(exe, dir, Timed::Concur(mode, poll), Layout::Plain, samples)
}

/// [`latency`] for any tailer and file layout.
pub(crate) fn latency_of(
    exe: &Path,
    dir: &Path,
    timed: Timed,
    layout: Layout,
    samples: usize,
) -> io::Result<Latency> {
    let (mut command, tailer, mode, poll) = match timed {
        Timed::Concur(mode, poll) => {
            let mut command = Command::new(exe);
            command.args(["tail", "--mode", mode_name(mode), "--interval"]);
            command.arg(format!("{}ms", POLL_INTERVAL.as_millis()));
            if poll {
                command.arg("--poll");
            }
            let name = format!("concur tail --mode {}", mode_name(mode));
            (command, name, mode, poll)
        }
        Timed::Gnu => {
            let mut command = Command::new("tail");
            command.args(["-n", "+1"]);
            (command, "GNU tail".to_owned(), Mode::Events, false)
        }
    };
    let tag = format!(
        "{}-{}-{poll}-{}",
        if matches!(timed, Timed::Gnu) {
            "gnu"
        } else {
            mode_name(mode)
        },
        layout
            .name()
            .split(',')
            .next()
            .unwrap_or("")
            .replace(' ', "-"),
        samples
    );
    let run_dir = dir.join(format!("latency-{tag}"));
    fs::create_dir_all(&run_dir)?;
    let followed = run_dir.join("app.log");
    let mut written = followed.clone();
    match layout {
        Layout::Plain => {
            File::create(&followed)?;
            if matches!(timed, Timed::Gnu) {
                command.arg("-f");
            }
        }
        Layout::Symlink => {
            let pods = run_dir.join("pods");
            fs::create_dir_all(&pods)?;
            written = pods.join("0.log");
            File::create(&written)?;
            std::os::unix::fs::symlink(&written, &followed)?;
            command.arg("-F");
        }
        Layout::Renamed => {
            File::create(&followed)?;
            command.arg("--follow=descriptor");
            written = run_dir.join("app.log.1");
        }
    }
    let mut child = spawn(command.arg(&followed))?;
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| io::Error::other("no stdout"))?;
    let base = Instant::now();
    let reader = thread::spawn(move || {
        let mut delays = Vec::new();
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if let Some(sent) = line.strip_prefix("t=").and_then(|n| n.parse::<u64>().ok()) {
                delays.push(base.elapsed().saturating_sub(Duration::from_nanos(sent)));
            }
            if line == "end" {
                break;
            }
        }
        delays
    });
    thread::sleep(Duration::from_millis(300)); // let the tailer start watching
    if layout == Layout::Renamed {
        fs::rename(&followed, &written)?;
    }
    let mut file = OpenOptions::new().append(true).open(&written)?;
    for _ in 0..samples {
        let sent = base.elapsed().as_nanos();
        file.write_all(format!("t={sent}\n").as_bytes())?;
        thread::sleep(Duration::from_millis(10));
    }
    file.write_all(b"end\n")?;
    // A tailer that never delivers would hold the reader for ever: stop it once the
    // last line has had 10 s to arrive.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !reader.is_finished() && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(20));
    }
    stop(child);
    let mut delays = reader
        .join()
        .map_err(|_| io::Error::other("reader panicked"))?;
    delays.sort_unstable();
    Ok(Latency {
        tailer,
        case: layout.name().to_owned(),
        wake: if poll {
            format!("poll {}ms", POLL_INTERVAL.as_millis())
        } else {
            "inotify".into()
        },
        mode,
        samples: delays.len(),
        p50_ms: percentile(&delays, 50.0),
        p99_ms: percentile(&delays, 99.0),
        delays_ms: delays.iter().map(|d| d.as_secs_f64() * 1000.0).collect(),
    })
}

/// The latency runs as one chart: the cumulative distribution of append-to-output
/// time for each mode, inotify solid and polling dashed, on a log axis; a grey line
/// marks half the polling interval, the book's expected cost of polling.
pub(crate) fn latency_chart(latencies: &[Latency], interval: Duration, command: &str) -> LineChart {
    let mut series: Vec<Series> = latencies
        .iter()
        .enumerate()
        .map(|(i, l)| {
            let polled = l.wake.starts_with("poll");
            cdf(
                format!("{} ({})", mode_name(l.mode), l.wake),
                i,
                if polled {
                    Stroke::Dashed
                } else {
                    Stroke::Solid
                },
                &l.delays_ms,
            )
        })
        .collect();
    let half = interval.as_secs_f64() * 1000.0 / 2.0;
    series.push(Series {
        name: format!("half the polling interval ({half} ms)"),
        colour: 0,
        stroke: Stroke::Floor,
        points: vec![Point::new(half, 0.0), Point::new(half, 1.0)],
    });
    let samples = latencies.iter().map(|l| l.samples).max().unwrap_or(0);
    LineChart {
        title: "concur tail: how long an appended line takes to reach the output".into(),
        panels: vec![Panel {
            title: format!("CDF of {samples} lines per mode, one appended every 10 ms"),
            x: Axis::log("append-to-output latency (ms)"),
            y: Axis::linear("fraction of lines at or below"),
            series,
        }],
        provenance: Provenance::here(
            "each tailer a child process writing to a pipe; latency read at the pipe",
            command,
        ),
    }
}

/// The line every workload writes: about 60 bytes, like a short log line.
fn line(file: usize, n: u64) -> String {
    format!("2026-11-22T05:00:00Z file={file} seq={n:09} level=info msg=ok\n")
}

/// Writes `files` files of `lines` lines each, as fast as possible.
pub(crate) fn write_files(dir: &Path, files: usize, lines: u64) -> io::Result<Vec<PathBuf>> {
    let paths: Vec<PathBuf> = (0..files)
        .map(|i| dir.join(format!("input{i}.log")))
        .collect();
    thread::scope(|s| {
        let writers: Vec<_> = paths
            .iter()
            .enumerate()
            .map(|(i, path)| {
                s.spawn(move || -> io::Result<()> {
                    let mut out = BufWriter::with_capacity(1 << 20, File::create(path)?);
                    for n in 0..lines {
                        out.write_all(line(i, n).as_bytes())?;
                    }
                    out.flush()
                })
            })
            .collect();
        writers
            .into_iter()
            .try_for_each(|w| w.join().map_err(|_| io::Error::other("writer panicked"))?)
    })?;
    Ok(paths)
}

/// Counts lines on `child`'s stdout until `expected` arrived; returns when the last one did.
fn count_until(child: &mut Child, expected: u64) -> io::Result<Instant> {
    let mut stdout = child
        .stdout
        .take()
        .ok_or_else(|| io::Error::other("no stdout"))?;
    let mut buf = vec![0; 1 << 20];
    let mut seen = 0u64;
    while seen < expected {
        let n = stdout.read(&mut buf)?;
        if n == 0 {
            return Err(io::Error::other(format!(
                "the tailer stopped after {seen} of {expected} lines"
            )));
        }
        seen += buf[..n].iter().filter(|&&b| b == b'\n').count() as u64;
    }
    Ok(Instant::now())
}

/// Measures how fast `command` (a tailer printing every line of `paths` to stdout)
/// delivers `expected` lines.
pub(crate) fn throughput(
    name: &str,
    workload: &str,
    command: &mut Command,
    expected: u64,
) -> io::Result<Throughput> {
    let start = Instant::now();
    let mut child = spawn(command)?;
    let done = count_until(&mut child, expected);
    stop(child);
    let seconds = done?.duration_since(start).as_secs_f64();
    Ok(Throughput {
        tailer: name.to_owned(),
        workload: workload.to_owned(),
        lines: expected,
        seconds,
        lines_per_second: expected as f64 / seconds,
    })
}

/// concur tailing `files` files while writer threads write `lines` lines to each as fast
/// as they can: from the first write to the last line out.
pub(crate) fn live_throughput(
    exe: &Path,
    dir: &Path,
    mode: Mode,
    files: usize,
    lines: u64,
) -> io::Result<Throughput> {
    let paths: Vec<PathBuf> = (0..files)
        .map(|i| dir.join(format!("live{i}.log")))
        .collect();
    for path in &paths {
        File::create(path)?;
    }
    let mut command = Command::new(exe);
    command
        .args(["tail", "--mode", mode_name(mode)])
        .args(&paths);
    let mut child = spawn(&mut command)?;
    thread::sleep(Duration::from_millis(300));
    let start = Instant::now();
    let done = thread::scope(|s| {
        for (i, path) in paths.iter().enumerate() {
            s.spawn(move || -> io::Result<()> {
                let mut out = BufWriter::with_capacity(
                    64 * 1024,
                    OpenOptions::new().append(true).open(path)?,
                );
                for n in 0..lines {
                    out.write_all(line(i, n).as_bytes())?;
                }
                out.flush()
            });
        }
        count_until(&mut child, files as u64 * lines)
    });
    stop(child);
    for path in &paths {
        let _ = fs::remove_file(path);
    }
    let seconds = done?.duration_since(start).as_secs_f64();
    let total = files as u64 * lines;
    Ok(Throughput {
        tailer: format!("concur tail --mode {}", mode_name(mode)),
        workload: "live".into(),
        lines: total,
        seconds,
        lines_per_second: total as f64 / seconds,
    })
}

/// The command-line name of a mode.
pub(crate) fn mode_name(mode: Mode) -> &'static str {
    match mode {
        Mode::Events => "events",
        Mode::Threads => "threads",
        Mode::Mixed => "mixed",
        Mode::Async => "async",
    }
}

/// What a tailer costs while its files are quiet.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct Idle {
    /// What ran.
    pub tailer: String,
    /// Files followed.
    pub files: usize,
    /// Seconds measured (after a warm-up).
    pub seconds: f64,
    /// CPU used, in percent of one core (from `/proc/PID/task/*/schedstat`, in ns).
    pub cpu_percent: f64,
    /// Context switches of all its threads, per second: how often it woke up.
    pub wakeups_per_second: f64,
    /// Its threads.
    pub threads: usize,
}

/// What a tailer costs per line at a steady rate.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct CpuPerLine {
    /// What ran.
    pub tailer: String,
    /// Lines written per second, over 4 files.
    pub rate: u64,
    /// Lines written.
    pub lines: u64,
    /// Lines that came out.
    pub delivered: u64,
    /// CPU seconds the tailer used (user + system, all threads).
    pub cpu_seconds: f64,
    /// CPU microseconds per line.
    pub cpu_us_per_line: f64,
    /// Percent of one core.
    pub cpu_percent: f64,
}

/// Per thread of `pid`: CPU nanoseconds and context switches so far.
fn tasks(pid: u32) -> std::collections::HashMap<String, (u64, u64)> {
    let mut by_task = std::collections::HashMap::new();
    let Ok(entries) = fs::read_dir(format!("/proc/{pid}/task")) else {
        return by_task;
    };
    for task in entries.flatten() {
        let cpu = fs::read_to_string(task.path().join("schedstat"))
            .ok()
            .and_then(|s| s.split_whitespace().next()?.parse::<u64>().ok())
            .unwrap_or(0);
        let switches: u64 = fs::read_to_string(task.path().join("status"))
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains("ctxt_switches"))
            .filter_map(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
            .sum();
        by_task.insert(
            task.file_name().to_string_lossy().into_owned(),
            (cpu, switches),
        );
    }
    by_task
}

/// Runs `command` (a tailer following `files` quiet files, its output discarded), lets
/// it settle for `warmup`, then measures its CPU and wake-ups for `seconds`.
pub(crate) fn idle(
    name: &str,
    command: &mut Command,
    files: usize,
    warmup: Duration,
    seconds: Duration,
) -> io::Result<Idle> {
    let mut child = command
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .stdin(Stdio::null())
        .spawn()?;
    thread::sleep(warmup);
    let before = tasks(child.id());
    let started = Instant::now();
    thread::sleep(seconds);
    let after = tasks(child.id());
    let elapsed = started.elapsed().as_secs_f64();
    let exited = child.try_wait()?;
    let _ = child.kill();
    let _ = child.wait();
    if let Some(status) = exited {
        return Err(io::Error::other(format!("{name} exited early: {status}")));
    }
    let (mut cpu_ns, mut switches) = (0u64, 0u64);
    for (tid, (cpu, sw)) in &after {
        let (cpu0, sw0) = before.get(tid).copied().unwrap_or((0, 0));
        cpu_ns += cpu.saturating_sub(cpu0);
        switches += sw.saturating_sub(sw0);
    }
    Ok(Idle {
        tailer: name.to_owned(),
        files,
        seconds: elapsed,
        cpu_percent: cpu_ns as f64 / 1e9 / elapsed * 100.0,
        wakeups_per_second: switches as f64 / elapsed,
        threads: after.len(),
    })
}

/// Writes `files` empty quiet files (one line each) for the idle case.
pub(crate) fn quiet_files(dir: &Path, files: usize) -> io::Result<Vec<PathBuf>> {
    let dir = dir.join("quiet");
    fs::create_dir_all(&dir)?;
    (0..files)
        .map(|i| {
            let path = dir.join(format!("quiet{i}.log"));
            fs::write(&path, line(i, 0))?;
            Ok(path)
        })
        .collect()
}

/// Starts `command` on 4 empty files, writes `rate` lines per second across them for
/// `seconds`, waits for the lines to come out (up to 5 s more), and reports the
/// tailer's CPU per line. `command` gets the files' paths appended.
pub(crate) fn cpu_per_line(
    name: &str,
    command: &mut Command,
    dir: &Path,
    rate: u64,
    seconds: Duration,
) -> io::Result<CpuPerLine> {
    let dir = dir.join("rate");
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir)?;
    let paths: Vec<PathBuf> = (0..4).map(|i| dir.join(format!("rate{i}.log"))).collect();
    for path in &paths {
        File::create(path)?;
    }
    let mut child = spawn(command.args(&paths))?;
    let mut stdout = child
        .stdout
        .take()
        .ok_or_else(|| io::Error::other("no stdout"))?;
    let counted = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let counter = {
        let counted = std::sync::Arc::clone(&counted);
        thread::spawn(move || {
            let mut buf = vec![0; 1 << 16];
            while let Ok(n) = stdout.read(&mut buf) {
                if n == 0 {
                    break;
                }
                let lines = buf[..n].iter().filter(|&&b| b == b'\n').count() as u64;
                counted.fetch_add(lines, std::sync::atomic::Ordering::Relaxed);
            }
        })
    };
    thread::sleep(Duration::from_millis(500)); // let it start watching
    let cpu_before = crate::measure::cpu_seconds(Some(child.id())).unwrap_or(0.0);
    let mut outs = paths
        .iter()
        .map(|p| OpenOptions::new().append(true).open(p))
        .collect::<io::Result<Vec<_>>>()?;
    // 100 ticks a second; each tick writes its share of lines, one write per file.
    let per_tick = (rate / 100).max(1);
    let ticks = (seconds.as_secs_f64() * 100.0) as u64;
    let start = Instant::now();
    let mut n = 0u64;
    for tick in 0..ticks {
        for (i, out) in outs.iter_mut().enumerate() {
            let share = per_tick / 4 + u64::from((i as u64) < per_tick % 4);
            let chunk: String = (0..share).map(|k| line(i, n + k)).collect();
            out.write_all(chunk.as_bytes())?;
            n += share;
        }
        let next = start + Duration::from_millis(10 * (tick + 1));
        thread::sleep(next.saturating_duration_since(Instant::now()));
    }
    let written_for = start.elapsed();
    let deadline = Instant::now() + Duration::from_secs(5);
    while counted.load(std::sync::atomic::Ordering::Relaxed) < n && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(10));
    }
    let cpu = crate::measure::cpu_seconds(Some(child.id())).unwrap_or(0.0) - cpu_before;
    stop(child);
    let _ = counter.join();
    let delivered = counted.load(std::sync::atomic::Ordering::Relaxed);
    let _ = fs::remove_dir_all(&dir);
    Ok(CpuPerLine {
        tailer: name.to_owned(),
        rate,
        lines: n,
        delivered,
        cpu_seconds: cpu,
        cpu_us_per_line: cpu / n.max(1) as f64 * 1e6,
        cpu_percent: cpu / written_for.as_secs_f64() * 100.0,
    })
}
