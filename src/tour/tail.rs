//! Items 62-63 in the tour: the three tailing designs on the book's scenario.

use std::collections::HashMap;
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use rand::{RngExt, SeedableRng};

use super::{TourCharts, TourError, TourOptions, heading};
use crate::process::CancelToken;
use crate::tail::writer::Output;
use crate::tail::{self, Mode, TailOptions, debug::Watched};

/// What one run of the scenario produced.
struct Merged {
    /// The merged lines, by the file their prefix names.
    by_file: HashMap<String, Vec<String>>,
    /// The input files.
    inputs: Vec<PathBuf>,
    /// From start to idle exit.
    elapsed: Duration,
}

/// The book's scenario for one design: 5 files, 10 lines each written at random
/// intervals, merged with prefixes.
fn scenario(dir: &std::path::Path, mode: Mode) -> Result<Merged, TourError> {
    let inputs: Vec<PathBuf> = (0..5)
        .map(|i| dir.join(format!("{}-{i}.log", tail::bench::mode_name(mode))))
        .collect();
    for input in &inputs {
        fs::write(input, b"").map_err(TourError::Demo)?;
    }
    let merged = dir.join(format!("{}-merged.log", tail::bench::mode_name(mode)));
    let output = Output::open(Some(&merged), false)
        .map_err(|e| TourError::Demo(std::io::Error::other(e)))?;
    let options = TailOptions {
        mode,
        idle_exit: Some(Duration::from_millis(400)),
        prefix: true,
        ..TailOptions::default()
    };
    let cancel = CancelToken::new().map_err(TourError::Demo)?;
    let start = Instant::now();
    let log: tail::Log = Arc::new(|_| {});
    let result = thread::scope(|s| {
        let tailer = s.spawn(|| tail::run(&inputs, &options, output, log, &cancel));
        for (i, input) in inputs.iter().enumerate() {
            s.spawn(move || -> std::io::Result<()> {
                let mut rng = rand_pcg::Pcg64Mcg::seed_from_u64(i as u64);
                for n in 0..10 {
                    thread::sleep(Duration::from_millis(rng.random_range(0..30)));
                    let mut file = OpenOptions::new().append(true).open(input)?;
                    file.write_all(format!("line {n} from writer {i}\n").as_bytes())?;
                }
                Ok(())
            });
        }
        tailer.join()
    });
    match result {
        Ok(Ok(_)) => {}
        Ok(Err(err)) => {
            return Err(TourError::Demo(std::io::Error::other(crate::error_chain(
                &err,
            ))));
        }
        Err(_) => {
            return Err(TourError::Demo(std::io::Error::other(
                "the tailer panicked",
            )));
        }
    }
    let elapsed = start.elapsed();
    let text = fs::read_to_string(&merged).map_err(TourError::Demo)?;
    let mut by_file: HashMap<String, Vec<String>> = HashMap::new();
    for line in text.lines() {
        if let Some((path, rest)) = line.split_once(": ") {
            by_file
                .entry(path.to_owned())
                .or_default()
                .push(rest.to_owned());
        }
    }
    Ok(Merged {
        by_file,
        inputs,
        elapsed,
    })
}

/// The book's confirm_merge: every file's lines, in order, under its prefix.
fn confirm_merge(by_file: &HashMap<String, Vec<String>>, inputs: &[PathBuf]) -> bool {
    inputs.iter().all(|input| {
        let expected: Vec<String> = fs::read_to_string(input)
            .map(|t| t.lines().map(String::from).collect())
            .unwrap_or_default();
        by_file.get(&input.display().to_string()) == Some(&expected)
    })
}

/// The section's heading.
const TITLE: &str = "Items 62-63: mix threads and coroutines; never block the event loop";

/// Runs the items 62-63 part of the tour, with its chart.
pub(super) fn run(
    out: &mut dyn Write,
    options: TourOptions,
    charts: &mut TourCharts,
) -> Result<(), TourError> {
    heading(out, TITLE)?;
    writeln!(
        out,
        "The book's log tailer, in its three designs and concur's own: 5 files, 10 lines each written at random\n\
         intervals, merged into one output with `path: ` prefixes, until 400 ms pass quietly.\n"
    )?;
    let dir = tempfile::Builder::new()
        .prefix("concur-tour-tail-")
        .tempdir()
        .map_err(TourError::Demo)?;
    let designs = [
        (
            Mode::Events,
            "one loop for inotify, reads, writes (the default)",
        ),
        (
            Mode::Threads,
            "a thread per file, a locked writer (Example 3)",
        ),
        (
            Mode::Mixed,
            "spawn_blocking tailers, an async writer (item 62)",
        ),
        (Mode::Async, "async tailers, a WriteThread (item 63)"),
    ];
    for (mode, shape) in designs {
        let Merged {
            by_file,
            inputs,
            elapsed,
        } = scenario(dir.path(), mode)?;
        let lines: usize = by_file.values().map(Vec::len).sum();
        let verdict = if confirm_merge(&by_file, &inputs) {
            "passed"
        } else {
            "FAILED"
        };
        writeln!(
            out,
            "{:<8} {shape:<50} {lines} lines merged in {:.2} s; confirm_merge {verdict}",
            tail::bench::mode_name(mode),
            elapsed.as_secs_f64()
        )?;
    }

    // Item 63's warning, caught: a blocking call inside a task stalls its worker.
    let reports = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&reports);
    let report: crate::tail::debug::Report = Arc::new(move |line| {
        sink.lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(line)
    });
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(TourError::Demo)?;
    runtime.block_on(Watched::new(
        "slow_coroutine",
        Duration::from_millis(50),
        report,
        async {
            std::thread::sleep(Duration::from_millis(100)); // time.sleep(0.5) in the book
        },
    ));
    for line in reports
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .iter()
    {
        writeln!(
            out,
            "\n--debug-slow 50ms catches the book's blocking coroutine: {line}"
        )?;
    }
    charts.add(TITLE, latency(out, options, dir.path())?);
    writeln!(
        out,
        "\nRust: the designs share one Source (partial lines, truncation, rotation), so\n\
         migrating between them cannot change what is merged. `concur tail bench` measures\n\
         every mode, throughput, idle CPU and CPU per line against GNU tail."
    )?;
    service(out, dir.path())
}

/// How long an appended line takes to come out: inotify against the book's polling,
/// each tailer a child process (`concur tail`) writing to a pipe.
fn latency(
    out: &mut dyn Write,
    options: TourOptions,
    dir: &std::path::Path,
) -> Result<crate::report::LineChart, TourError> {
    let samples = if options.quick { 40 } else { 100 };
    let exe = std::env::current_exe().map_err(TourError::Demo)?;
    writeln!(
        out,
        "\nAppend-to-output latency, {samples} lines appended one every 10 ms (the book polls every\n\
         {} ms, so it expects half that on average):",
        tail::bench::POLL_INTERVAL.as_millis()
    )?;
    let mut runs = Vec::new();
    for (mode, poll) in [
        (Mode::Events, false),
        (Mode::Threads, false),
        (Mode::Threads, true),
    ] {
        let run = tail::bench::latency(&exe, dir, mode, poll, samples).map_err(TourError::Demo)?;
        writeln!(
            out,
            "  {:<8} {:<11} p50 {:>8.3} ms   p99 {:>8.3} ms",
            tail::bench::mode_name(mode),
            run.wake,
            run.p50_ms,
            run.p99_ms
        )?;
        runs.push(run);
    }
    Ok(tail::bench::latency_chart(
        &runs,
        tail::bench::POLL_INTERVAL,
        options.command(),
    ))
}

/// The tailer as a service: what quiet files cost, and a copytruncate that loses
/// nothing on disk.
fn service(out: &mut dyn Write, dir: &std::path::Path) -> Result<(), TourError> {
    writeln!(
        out,
        "\nAs a service (`concur tail -F`): quiet files cost nothing, and a copytruncate\n\
         rotation loses no line that was on disk."
    )?;
    let exe = std::env::current_exe().map_err(TourError::Demo)?;
    let quiet = tail::bench::quiet_files(dir, 500).map_err(TourError::Demo)?;
    let mut command = std::process::Command::new(&exe);
    command.args(["tail", "-F"]).args(&quiet);
    let idle = tail::bench::idle(
        "concur tail -F",
        &mut command,
        quiet.len(),
        Duration::from_millis(1000),
        Duration::from_secs(2),
    )
    .map_err(TourError::Demo)?;
    writeln!(
        out,
        "  500 quiet files for {:.0} s: {:.1} wake-ups/s, {:.3}% of a core, {} threads \
         (the old design polled: 5,000 wake-ups/s)",
        idle.seconds, idle.wakeups_per_second, idle.cpu_percent, idle.threads
    )?;

    // copytruncate: the tailer has read part of the file when logrotate copies it and
    // truncates it; the rest is read from the copy.
    let log = dir.join("service.log");
    let line = |n: u32| format!("2026-12-04T08:00:00Z seq={n:06} level=info msg=ok\n");
    fs::write(&log, (0..1000).map(line).collect::<String>()).map_err(TourError::Demo)?;
    let options = tail::FollowOptions {
        follow_name: true,
        ..tail::FollowOptions::default()
    };
    let mut source = tail::Source::open(&log, false, options)
        .map_err(|e| TourError::Demo(std::io::Error::other(e)))?;
    let mut merged = Vec::new();
    source
        .poll(&mut merged)
        .map_err(|e| TourError::Demo(std::io::Error::other(e)))?;
    let mut file = OpenOptions::new()
        .append(true)
        .open(&log)
        .map_err(TourError::Demo)?;
    file.write_all((1000..2000).map(line).collect::<String>().as_bytes())
        .map_err(TourError::Demo)?;
    fs::copy(&log, dir.join("service.log.1")).map_err(TourError::Demo)?;
    file.set_len(0).map_err(TourError::Demo)?;
    file.write_all((2000..2100).map(line).collect::<String>().as_bytes())
        .map_err(TourError::Demo)?;
    let polled = source
        .poll(&mut merged)
        .map_err(|e| TourError::Demo(std::io::Error::other(e)))?;
    let lines = merged.iter().filter(|&&b| b == b'\n').count();
    let came_out = if lines == 2100 {
        "all 2,100 lines out".to_owned()
    } else {
        format!("{lines} of 2,100 lines out")
    };
    writeln!(
        out,
        "  copytruncate with 1,000 lines written but not yet read: {came_out} ({})",
        polled
            .notes
            .iter()
            .find(|n| n.contains("copy"))
            .map_or("no copy found", |n| n.split(": ").nth(1).unwrap_or(n))
    )?;
    Ok(())
}
