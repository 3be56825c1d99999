//! Items 53-55 in the tour: threads for blocking I/O, locks, queues and pipelines.

use std::io::Write;
use std::num::NonZeroUsize;
use std::os::unix::process::CommandExt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;
use std::time::Duration;

use rand::{RngExt, SeedableRng};

use super::{TourCharts, TourError, TourOptions, heading};
use crate::queue::{naive, simulated, utilization_chart};
use crate::report::{Bar, BarChart, BarGroup, Provenance};
use crate::sync::{BankAccount, CounterMode, ResourcePool, race};
use crate::threads::factorize::{self, BOOK_NUMBERS, PYTHON_SECONDS};
use crate::threads::slow_io;

/// Item 53's heading.
pub(super) const ITEM_53: &str =
    "Item 53: use threads for blocking I/O; avoid them for parallelism (in Python)";

/// Item 54's heading.
const ITEM_54: &str = "Item 54: use Lock to prevent data races in threads";

/// Item 55's heading.
const ITEM_55: &str = "Item 55: use Queue to coordinate work between threads";

/// Runs the items 53-55 part of the tour, with the charts of items 53 and 55.
pub(super) fn run(
    out: &mut dyn Write,
    options: TourOptions,
    charts: &mut TourCharts,
) -> Result<(), TourError> {
    for chart in item_53(out, options)? {
        charts.add(ITEM_53, chart);
    }
    charts.add(ITEM_54, item_54(out, options)?);
    charts.add(ITEM_55, item_55(out, options)?);
    Ok(())
}

/// Item 53, with one chart per scale: concur's factorize (milliseconds), the seeds'
/// Python (a second and more), and the slow calls (hundreds of milliseconds). On one
/// axis the first would be invisible.
fn item_53(out: &mut dyn Write, options: TourOptions) -> Result<Vec<BarChart>, TourError> {
    heading(out, ITEM_53)?;
    let (serial, serial_range) = factorize::timed_runs(factorize::Mode::Serial, &BOOK_NUMBERS, 5);
    let (threads, threads_range) =
        factorize::timed_runs(factorize::Mode::Threads, &BOOK_NUMBERS, 5);
    let speedup = serial.seconds / threads.seconds;
    writeln!(
        out,
        "factorize the book's 4 numbers: serial {:.4} s, a thread per number {:.4} s: {}\n\
         the seeds' Python (recorded):   serial {:.3} s,  a thread per number {:.3} s:  {:.2}x (the GIL)",
        serial.seconds,
        threads.seconds,
        compared(speedup),
        PYTHON_SECONDS.0,
        PYTHON_SECONDS.1,
        PYTHON_SECONDS.0 / PYTHON_SECONDS.1
    )?;
    let call = Duration::from_millis(100);
    let serial_io = slow_io::run(slow_io::Mode::Serial, 5, call).map_err(TourError::Demo)?;
    let threaded = slow_io::run(slow_io::Mode::Threads, 5, call).map_err(TourError::Demo)?;
    writeln!(
        out,
        "5 slow system calls (poll, 100 ms): serial {:.3} s (the book: 0.510 s); in threads {:.3} s,\n\
         while the main thread computed {} helicopter positions",
        serial_io.seconds, threaded.seconds, threaded.helicopter_moves
    )?;
    writeln!(out, "\n{}", factorize_conclusion(speedup))?;
    // Milliseconds; each bar's note is its speed-up over its own serial run.
    let bar = |series: &str, median: f64, range: [f64; 2], serial: f64| Bar {
        series: series.into(),
        median: median * 1e3,
        min: range[0] * 1e3,
        max: range[1] * 1e3,
        note: format!("{:.2}x", serial / median),
    };
    let (py_serial, py_threads) = PYTHON_SECONDS;
    let slow = |s: f64| [s, s];
    let chart = |title: &str, group: BarGroup, note: &str| BarChart {
        title: title.into(),
        y_label: "milliseconds (median; whiskers: min-max)".into(),
        groups: vec![group],
        provenance: Provenance::here(note, options.command()),
    };
    Ok(vec![
        chart(
            "Item 53: serial against threads, CPU work (factorize, concur)",
            BarGroup {
                label: "factorize, concur".into(),
                bars: vec![
                    bar("serial", serial.seconds, serial_range, serial.seconds),
                    bar("threads", threads.seconds, threads_range, serial.seconds),
                ],
            },
            "factorize the book's 4 numbers: 5 runs each",
        ),
        chart(
            "Item 53: serial against threads, CPU work (the seeds' Python, recorded)",
            BarGroup {
                label: "factorize, the seeds' Python".into(),
                bars: vec![
                    bar("serial", py_serial, slow(py_serial), py_serial),
                    bar("threads", py_threads, slow(py_threads), py_serial),
                ],
            },
            "the seeds' recorded figures, not measured now",
        ),
        chart(
            "Item 53: serial against threads, blocking I/O",
            BarGroup {
                label: "5 slow calls of 100 ms, concur".into(),
                bars: vec![
                    bar(
                        "serial",
                        serial_io.seconds,
                        slow(serial_io.seconds),
                        serial_io.seconds,
                    ),
                    bar(
                        "threads",
                        threaded.seconds,
                        slow(threaded.seconds),
                        serial_io.seconds,
                    ),
                ],
            },
            "5 slow calls (poll, 100 ms): one run each",
        ),
    ])
}

fn item_54(out: &mut dyn Write, options: TourOptions) -> Result<BarChart, TourError> {
    heading(out, ITEM_54)?;
    let notes = [
        (
            CounterMode::Unsynchronized,
            "separate load and store, in safe Rust",
        ),
        (CounterMode::Mutex, "the book's LockingCounter"),
        (CounterMode::Atomic, "one fetch_add per increment, no lock"),
    ];
    let mut counted = Vec::new();
    for (mode, note) in notes {
        let result = race(mode, 5, 100_000);
        writeln!(
            out,
            "Counter should be {}, got {:<7} {note}: {}",
            result.expected,
            result.got,
            race_words(result.expected, result.got)
        )?;
        let got = result.got as f64;
        counted.push(BarGroup {
            label: match mode {
                CounterMode::Unsynchronized => "load, then store",
                CounterMode::Mutex => "LockingCounter",
                CounterMode::Atomic => "fetch_add",
            }
            .into(),
            bars: vec![Bar {
                series: "increments counted".into(),
                median: got,
                min: got,
                max: got,
                note: match result.lost() {
                    0 => "exact".into(),
                    lost => format!("{lost} lost"),
                },
            }],
        });
    }
    let chart = BarChart {
        title: "Item 54: 5 threads x 100,000 increments, counted three ways".into(),
        y_label: "increments counted (of 500,000)".into(),
        groups: counted,
        provenance: Provenance::here("one run each", options.command()),
    };

    // Seed 000's bank account: ten threads of random deposits and withdrawals.
    let account = BankAccount::new(1000);
    let (deposited, withdrawn, refused) = (AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0));
    thread::scope(|s| {
        for seed in 0..10 {
            let (account, deposited, withdrawn, refused) =
                (&account, &deposited, &withdrawn, &refused);
            s.spawn(move || {
                let mut rng = rand_pcg::Pcg64Mcg::seed_from_u64(seed);
                for _ in 0..100 {
                    let amount = rng.random_range(1..=100);
                    // Withdrawals a little more likely than deposits, so that some are refused.
                    if rng.random_bool(0.4) {
                        account.deposit(amount);
                        deposited.fetch_add(amount, Ordering::Relaxed);
                    } else if account.withdraw(amount).is_ok() {
                        withdrawn.fetch_add(amount, Ordering::Relaxed);
                    } else {
                        refused.fetch_add(1, Ordering::Relaxed);
                    }
                }
            });
        }
    });
    let (d, w) = (deposited.into_inner(), withdrawn.into_inner());
    writeln!(
        out,
        "bank account: 10 threads x 100 random deposits and withdrawals from $1000: final ${} = 1000 + {d} - {w}\n\
         ({} withdrawals refused, never overdrawn)",
        account.balance(),
        refused.into_inner()
    )?;

    // Seed 000's resource pool, as a semaphore.
    let pool = ResourcePool::new(["Resource-A", "Resource-B", "Resource-C"]);
    thread::scope(|s| {
        for _ in 0..5 {
            s.spawn(|| {
                let _lease = pool.acquire(); // waits instead of returning None
                thread::sleep(Duration::from_millis(50));
            });
        }
    });
    let stats = pool.stats();
    let _busy = [pool.acquire(), pool.acquire(), pool.acquire()];
    let timed_out = pool.acquire_timeout(Duration::from_millis(20)).is_none();
    writeln!(
        out,
        "resource pool: 5 workers shared 3 resources, at most {} in use at once; with all 3 leased,\n\
         a 4th acquire {} after 20 ms instead of returning None",
        stats.peak_in_use,
        if timed_out { "timed out" } else { "succeeded" }
    )?;
    across_processes(out)?;
    writeln!(
        out,
        "\nRust: the book's racy counter does not compile: every thread would borrow it\n\
         mutably (see the compile_fail examples in concur::sync). A race must be written on purpose."
    )?;
    Ok(chart)
}

/// Item 54's lock across processes: `concur sem` (GNU parallel's `sem`), six shells
/// sharing two slots, and a holder killed with SIGKILL losing its slot at once.
fn across_processes(out: &mut dyn Write) -> Result<(), TourError> {
    use std::process::{Command, Stdio};
    let demo = TourError::Demo;
    let exe = std::env::current_exe().map_err(demo)?;
    // A PARALLEL_HOME of the tour's own: the user's semaphores are not touched.
    let home = tempfile::tempdir().map_err(demo)?;
    let sem = |id: &str, slots: &str| {
        let mut cmd = Command::new(&exe);
        cmd.args(["sem", "--id", id, "-j", slots, "--fg"])
            .env("PARALLEL_HOME", home.path())
            .stdin(Stdio::null())
            .stderr(Stdio::null());
        cmd
    };
    let start = std::time::Instant::now();
    let shells = (0..6)
        .map(|_| {
            sem("tour", "2")
                // One word: sem runs its command words as a shell line, as GNU's does.
                .arg("date +%s%N; sleep 0.1; date +%s%N")
                .stdout(Stdio::piped())
                .spawn()
        })
        .collect::<Result<Vec<_>, _>>()
        .map_err(demo)?;
    let mut spans = Vec::new();
    for shell in shells {
        let output = shell.wait_with_output().map_err(demo)?;
        let text = String::from_utf8_lossy(&output.stdout).into_owned();
        let times: Vec<u128> = text.lines().filter_map(|l| l.trim().parse().ok()).collect();
        if let [from, to] = times[..] {
            spans.push((from, to));
        }
    }
    let wall = start.elapsed();
    // The most shells inside their critical section at one instant.
    let peak = spans
        .iter()
        .map(|&(from, _)| {
            spans
                .iter()
                .filter(|&&(a, b)| a <= from && from < b)
                .count()
        })
        .max()
        .unwrap_or(0);
    writeln!(
        out,
        "across processes: 6 shells ran `concur sem --id tour -j 2 --fg` around a 0.1 s step:\n\
         at most {peak} inside at once, {:.2} s in all (6 x 0.1 s / 2 slots = 0.3 s)",
        wall.as_secs_f64()
    )?;

    // A holder killed with SIGKILL: the kernel drops its flock with its descriptors.
    let mut holder = sem("tour-kill", "1")
        .args(["sleep", "30"])
        .stdout(Stdio::null())
        .process_group(0)
        .spawn()
        .map_err(demo)?;
    let slots = NonZeroUsize::MIN;
    let shared =
        crate::semaphore::Semaphore::open_in(&home.path().join("semaphores"), "tour-kill", slots)
            .map_err(|e| demo(std::io::Error::other(e.to_string())))?;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    // Until the holder has the slot (a permit taken here is given straight back).
    while std::time::Instant::now() < deadline {
        match shared.try_acquire() {
            Ok(None) => break,
            _ => thread::sleep(Duration::from_millis(5)),
        }
    }
    let pgid = rustix::process::Pid::from_child(&holder);
    let killed = std::time::Instant::now();
    let _ = rustix::process::kill_process_group(pgid, rustix::process::Signal::KILL);
    let _ = holder.wait();
    let mut freed = None;
    while killed.elapsed() < Duration::from_secs(10) {
        if let Ok(Some(_permit)) = shared.try_acquire() {
            freed = Some(killed.elapsed());
            break;
        }
        thread::sleep(Duration::from_millis(1));
    }
    match freed {
        Some(after) => writeln!(
            out,
            "a holder killed with SIGKILL (its process group) lost its slot at once: free \
             again {:.1} ms later (a lock file would stay taken)",
            after.as_secs_f64() * 1000.0
        )?,
        None => writeln!(
            out,
            "a holder killed with SIGKILL: its slot was not freed in 10 s"
        )?,
    }
    Ok(())
}

fn item_55(out: &mut dyn Write, options: TourOptions) -> Result<BarChart, TourError> {
    heading(out, ITEM_55)?;
    let report = naive::run(1000, &[Duration::ZERO; 3]);
    writeln!(
        out,
        "the busy-waiting MyQueue pipeline: processed {} items after polling {} times (the book: 3662);\n\
         main-thread checks of the done queue: {}",
        report.processed, report.polled, report.main_checks
    )?;
    let w = |n| NonZeroUsize::new(n).unwrap_or(NonZeroUsize::MIN);
    let (items, latency) = if options.quick {
        (200, Duration::from_millis(2))
    } else {
        (1000, Duration::from_millis(10))
    };
    let run = simulated::Options {
        items,
        workers: [w(3), w(4), w(5)],
        latencies: [latency; 3],
        capacity: 10,
    };
    let report = simulated::run(&run, Arc::new(|| {})).map_err(TourError::Demo)?;
    let peak = report
        .stages
        .iter()
        .map(|s| s.peak_queue)
        .max()
        .unwrap_or(0);
    writeln!(
        out,
        "ClosableQueue pipeline, download/resize/upload with 3/4/5 workers and {} ms per stage:\n\
         {} items finished in {:.3} s; the slowest stage bounds it at {:.3} s; no queue ever held\n\
         more than {peak} of its 10 slots, and idle workers blocked instead of polling",
        latency.as_millis(),
        report.outputs.len(),
        report.elapsed.as_secs_f64(),
        run.bound().as_secs_f64()
    )?;
    writeln!(
        out,
        "\nRust: close() is a flag that wakes every waiter (no sentinel per worker), a put on a\n\
         closed queue hands the item back, and the queue is model-checked with loom."
    )?;
    Ok(utilization_chart(
        &report.stages,
        report.elapsed,
        "Item 55: how busy each stage's workers were",
        Provenance::here(
            format!(
                "{items} items, {} ms per item in every stage, 3/4/5 workers: the stage with fewest workers bounds the rest",
                latency.as_millis()
            ),
            options.command(),
        ),
    ))
}

/// "1.52x faster", "0.91x: slower", "about the same": the word follows the ratio.
pub(super) fn compared(speedup: f64) -> String {
    if speedup >= 1.05 {
        format!("{speedup:.2}x faster")
    } else if speedup <= 0.95 {
        format!("{speedup:.2}x, slower")
    } else {
        format!("{speedup:.2}x, about the same")
    }
}

/// Item 53's conclusion about CPU work on threads, from the speed-up measured.
fn factorize_conclusion(speedup: f64) -> String {
    if speedup >= 1.2 {
        format!(
            "Rust: no GIL, so threads split CPU work across both cores: {speedup:.2}x here, where\n\
             the seeds' Python got none (benches/threads.rs measures larger work)."
        )
    } else {
        format!(
            "Rust has no GIL, but threads gained {speedup:.2}x here: on about 15 ms of work, thread\n\
             start-up and a busy machine can take the whole gain (benches/threads.rs measures larger work)."
        )
    }
}

/// What a race's count says: how many increments were lost, and against the book.
fn race_words(expected: u64, got: u64) -> String {
    const BOOK_GOT: u64 = 246_760;
    match expected - got {
        0 => "exact".to_owned(),
        lost => format!(
            "{lost} increments lost (the book's Python lost {} of {expected})",
            expected - BOOK_GOT
        ),
    }
}

#[cfg(test)]
mod words_tests {
    use super::*;

    #[test]
    fn the_words_follow_the_figures() {
        assert_eq!(compared(1.5), "1.50x faster");
        assert_eq!(compared(0.91), "0.91x, slower");
        assert_eq!(compared(1.0), "1.00x, about the same");
        assert!(factorize_conclusion(1.8).contains("1.80x here"));
        assert!(factorize_conclusion(0.97).contains("gained 0.97x"));
        assert_eq!(race_words(500_000, 500_000), "exact");
        assert_eq!(
            race_words(500_000, 400_000),
            "100000 increments lost (the book's Python lost 253240 of 500000)"
        );
    }
}
