//! `concur life bench --hashlife`: HashLife's jumps, measured against Golly's.
//!
//! Each case is a fresh child process, timed from spawn to exit, for concur (on every
//! core, then on one thread, Golly's way) and for `bgolly -h` when it is installed, on
//! the same pattern file in the same run. Peak RSS: concur's own `VmHWM` (from its
//! `--json`), and Golly's read from `/proc/PID/status` every millisecond while it runs
//! (the last reading before it exits; a run shorter than a millisecond reads none).
//! The populations are compared too: a case where they differ is an error, not a row.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde::Serialize;

use super::bench::BenchError;
use super::report::PlaneSummary;

/// The Gosper glider gun (RLE).
pub(crate) const GUN: &str = "#N Gosper glider gun\nx = 36, y = 9, rule = B3/S23\n24bo$22bobo$12b2o6b2o12b2o$11bo3bo4b2o12b2o$2o8bo5bo3b2o$2o8bo3bob2o4bobo$10bo5bo7bo$11bo3bo$12b2o!\n";

/// Where Debian's golly keeps Gosper's breeder.
pub(crate) const GOLLY_BREEDER: &str = "/usr/share/golly/Patterns/Life/Breeders/breeder.lif";

/// One pattern at one jump.
#[derive(Clone, Debug)]
pub(crate) struct HashlifeCase {
    /// What the pattern is.
    pub name: String,
    /// Its file.
    pub file: PathBuf,
    /// Generations to run, in one jump.
    pub generations: u64,
}

/// One case's figures: medians over the runs.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct HashlifeResult {
    /// The pattern.
    pub pattern: String,
    /// Generations run.
    pub generations: u64,
    /// Living cells at the end (as concur and Golly both count them).
    pub alive: u128,
    /// concur on every core: median wall seconds, process start to exit.
    pub concur_seconds: f64,
    /// concur on one thread.
    pub concur_one_thread_seconds: f64,
    /// concur's peak RSS on every core, MiB.
    pub concur_rss_mb: Option<f64>,
    /// concur's nodes at the end.
    pub concur_nodes: Option<usize>,
    /// `bgolly -h`: median wall seconds.
    pub golly_seconds: Option<f64>,
    /// Golly's peak RSS, MiB, as last read while it ran.
    pub golly_rss_mb: Option<f64>,
    /// concur's time as a fraction of Golly's (below 1: concur is faster).
    pub ratio_to_golly: Option<f64>,
}

/// Runs `concur life --pattern FILE --mode hashlife -g N --json [--threads 1]`.
fn run_concur(
    exe: &Path,
    case: &HashlifeCase,
    one_thread: bool,
) -> Result<(f64, PlaneSummary), BenchError> {
    let mut command = Command::new(exe);
    command
        .args(["life", "--mode", "hashlife", "--json", "-g"])
        .arg(case.generations.to_string())
        .arg("--pattern")
        .arg(&case.file);
    if one_thread {
        command.args(["--jobs", "1"]);
    }
    let started = Instant::now();
    let output = command
        .stdin(Stdio::null())
        .output()
        .map_err(|source| BenchError::Spawn {
            program: exe.to_owned(),
            source,
        })?;
    let seconds = started.elapsed().as_secs_f64();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let summary = stdout
        .lines()
        .next_back()
        .and_then(|l| serde_json::from_str::<PlaneSummary>(l).ok());
    match summary {
        Some(summary) if output.status.success() => Ok((seconds, summary)),
        _ => Err(BenchError::Peer {
            program: exe.to_owned(),
            reason: format!(
                "{} on {}: {}",
                output.status,
                case.name,
                String::from_utf8_lossy(&output.stderr).trim()
            ),
        }),
    }
}

/// Runs `bgolly -h -m N -i N FILE`: wall seconds, the population it printed, and the
/// last peak RSS read while it ran.
fn run_golly(golly: &Path, case: &HashlifeCase) -> Result<(f64, u128, Option<f64>), BenchError> {
    let n = case.generations.to_string();
    let started = Instant::now();
    let mut child = Command::new(golly)
        .args(["-h", "-m", &n, "-i", &n])
        .arg(&case.file)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|source| BenchError::Spawn {
            program: golly.to_owned(),
            source,
        })?;
    let status_file = format!("/proc/{}/status", child.id());
    let mut rss_kib = None;
    let status = loop {
        if let Some(status) = child.try_wait().map_err(|source| BenchError::Spawn {
            program: golly.to_owned(),
            source,
        })? {
            break status;
        }
        if let Some(kib) = std::fs::read_to_string(&status_file).ok().and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        }) {
            rss_kib = Some(kib);
        }
        std::thread::sleep(Duration::from_millis(1));
    };
    let seconds = started.elapsed().as_secs_f64();
    let mut text = String::new();
    if let Some(mut out) = child.stdout.take() {
        let _ = out.read_to_string(&mut text);
    }
    // bgolly prints "generation: population" with thousands separators.
    let alive = text
        .lines()
        .rev()
        .find_map(|l| l.split_once(": "))
        .and_then(|(_, pop)| pop.replace(',', "").trim().parse::<u128>().ok());
    match alive {
        Some(alive) if status.success() => Ok((seconds, alive, rss_kib.map(|k| k as f64 / 1024.0))),
        _ => Err(BenchError::Peer {
            program: golly.to_owned(),
            reason: format!("{status} on {}: {}", case.name, text.trim()),
        }),
    }
}

/// Measures `case` `runs` times each way.
pub(crate) fn measure(
    exe: &Path,
    golly: Option<&Path>,
    case: &HashlifeCase,
    runs: usize,
) -> Result<HashlifeResult, BenchError> {
    let median = |mut v: Vec<f64>| crate::measure::median(std::mem::take(&mut v));
    let (mut all, mut one, mut gol, mut rss, mut grss) = (vec![], vec![], vec![], vec![], vec![]);
    let mut last = None;
    let mut golly_alive = None;
    for _ in 0..runs.max(1) {
        let (s, summary) = run_concur(exe, case, false)?;
        all.push(s);
        if let Some(r) = summary.peak_rss_mb {
            rss.push(r);
        }
        let (s1, one_summary) = run_concur(exe, case, true)?;
        one.push(s1);
        if one_summary.alive != summary.alive {
            return Err(BenchError::Peer {
                program: exe.to_owned(),
                reason: format!(
                    "{}: {} cells on every core, {} on one thread",
                    case.name, summary.alive, one_summary.alive
                ),
            });
        }
        if let Some(golly) = golly {
            let (s, alive, r) = run_golly(golly, case)?;
            gol.push(s);
            golly_alive = Some(alive);
            if let Some(r) = r {
                grss.push(r);
            }
        }
        last = Some(summary);
    }
    let Some(summary) = last else {
        unreachable!("at least one run")
    };
    if let Some(alive) = golly_alive.filter(|&a| a != summary.alive) {
        return Err(BenchError::Peer {
            program: exe.to_owned(),
            reason: format!(
                "{} at generation {}: concur counts {} cells, Golly {alive}",
                case.name, case.generations, summary.alive
            ),
        });
    }
    let concur_seconds = median(all);
    let golly_seconds = (!gol.is_empty()).then(|| median(gol));
    Ok(HashlifeResult {
        pattern: case.name.clone(),
        generations: case.generations,
        alive: summary.alive,
        concur_seconds,
        concur_one_thread_seconds: median(one),
        concur_rss_mb: (!rss.is_empty()).then(|| median(rss)),
        concur_nodes: summary.nodes,
        golly_seconds,
        golly_rss_mb: (!grss.is_empty()).then(|| median(grss)),
        ratio_to_golly: golly_seconds.map(|g| concur_seconds / g),
    })
}
