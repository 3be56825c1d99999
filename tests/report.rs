//! The HTML report and the charts, checked in a real browser: chromium renders the
//! page headless to a PNG, and every SVG is parsed and must hold its series.

use std::path::Path;
use std::process::Command;

use crate::util::Dir;

fn require_chromium() -> bool {
    std::env::var("CI").as_deref() == Ok("true")
}

/// Renders `page` headless into a `width` x `height` PNG; `None` (after one line
/// saying so) where chromium is missing, a failure under CI=true.
fn render(page: &Path, width: u32, height: u32) -> Option<image::RgbaImage> {
    let found = Command::new("sh")
        .args(["-c", "command -v chromium"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        assert!(
            !require_chromium(),
            "chromium is required under CI=true (.ci/run installs it)"
        );
        eprintln!("skipped: chromium is not installed (apt-get install chromium)");
        return None;
    }
    let dir = Dir::new();
    let png = dir.path().join("page.png");
    let out = Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
        ])
        .arg(format!("--window-size={width},{height}"))
        .arg(format!(
            "--user-data-dir={}",
            dir.path().join("profile").display()
        ))
        .arg(format!("--screenshot={}", png.display()))
        .arg(format!("file://{}", page.display()))
        .output()
        .expect("run chromium");
    assert!(
        png.exists(),
        "chromium wrote no screenshot: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(image::open(&png).expect("a PNG").to_rgba8())
}

/// Whether the image holds more than one colour, with enough dark (text) pixels.
fn drawn(image: &image::RgbaImage) -> bool {
    let first = image.get_pixel(0, 0);
    let differing = image.pixels().filter(|p| *p != first).count();
    let dark = image
        .pixels()
        .filter(|p| u32::from(p[0]) + u32::from(p[1]) + u32::from(p[2]) < 200)
        .count();
    differing > 1000 && dark > 500
}

/// Every `<svg>…</svg>` in `page`, parsed.
fn svgs(page: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut rest = page;
    while let Some(start) = rest.find("<svg") {
        let end = rest[start..].find("</svg>").expect("an unclosed svg") + start + 6;
        let svg = &rest[start..end];
        roxmltree::Document::parse(svg).unwrap_or_else(|e| panic!("an SVG does not parse: {e}"));
        found.push(svg.to_owned());
        rest = &rest[end..];
    }
    found
}

/// The text of every `<text>` of an SVG, entities decoded.
fn texts(svg: &str) -> Vec<String> {
    let doc = roxmltree::Document::parse(svg).expect("the chart parses");
    doc.descendants()
        .filter(|n| n.has_tag_name("text"))
        .filter_map(|n| n.text())
        .map(|t| t.trim().to_owned())
        .collect()
}

/// Whether one of the chart's texts holds `needle`.
fn shows(svg: &str, needle: &str) -> bool {
    texts(svg).iter().any(|t| t.contains(needle))
}

/// The number just before `marker` on `line` (`1.52x faster` → 1.52).
fn number_before(line: &str, marker: &str) -> Option<f64> {
    let head = &line[..line.find(marker)?];
    let start = head
        .rfind(|c: char| !(c.is_ascii_digit() || c == '.'))
        .map_or(0, |i| i + 1);
    head[start..].parse().ok()
}

/// No comparative word in the tour contradicts the figure it sits beside: "faster"
/// only beside a speed-up of at least 1, "slower" below 1, "about the same" within 5%,
/// "exact" where the count matches, "N increments lost" where N is what is missing,
/// threads "scaling" only at 1.2x or more.
fn check_comparisons(terminal: &str) {
    let mut checked = 0;
    for line in terminal.lines() {
        if let Some(x) = number_before(line, "x faster") {
            assert!(x >= 1.0, "{line}");
            checked += 1;
        }
        if let Some(x) = number_before(line, "x, slower") {
            assert!(x < 1.0, "{line}");
            checked += 1;
        }
        // Within 5% either way (as printed, to two places): neither word.
        if let Some(x) = number_before(line, "x, about the same") {
            assert!((0.95..=1.05).contains(&x), "{line}");
            checked += 1;
        }
        if let Some(rest) = line.strip_prefix("Counter should be ") {
            let expected: u64 = rest.split(',').next().unwrap().parse().unwrap();
            let got: u64 = rest
                .split("got ")
                .nth(1)
                .unwrap()
                .split_whitespace()
                .next()
                .unwrap()
                .parse()
                .unwrap();
            if line.ends_with(": exact") {
                assert_eq!(expected, got, "{line}");
            } else {
                let lost = number_before(line, " increments lost").unwrap();
                assert_eq!(lost as u64, expected - got, "{line}");
            }
            checked += 1;
        }
    }
    // Sentences wrapped over lines: read as one.
    let joined = terminal.replace('\n', " ");
    if let Some(x) = number_before(&joined, "x as fast as serial on") {
        assert!(x >= 1.2, "{joined}");
        checked += 1;
    }
    if let Some(x) = number_before(&joined, "x as fast as serial this time") {
        assert!(x < 1.2, "{joined}");
        checked += 1;
    }
    assert!(
        checked >= 5,
        "too few comparisons found to check:\n{terminal}"
    );
}

/// The tour's page: every section of the terminal text, the gcd chart with its
/// series and provenance, and chromium renders it as a page that is not blank.
pub(crate) fn check_tour_page(path: &Path, terminal: &str) {
    let page = std::fs::read_to_string(path).expect("the --html page");
    for heading in [
        "Item 52",
        "Item 55",
        "Items 56-60",
        "Item 61",
        "Items 62-63",
        "Item 64",
    ] {
        assert!(
            page.contains(&format!("<h2>{heading}")),
            "no section for {heading}"
        );
        assert!(terminal.contains(heading));
    }
    // Self-contained: no script, and nothing fetched (the SVG namespace URI is a name;
    // the contents' links are anchors in the page).
    for fetch in ["<script", "<link", " src=", "url(", "@import"] {
        assert!(!page.contains(fetch), "the page holds {fetch:?}");
    }
    assert_eq!(
        page.matches("href=").count(),
        page.matches("href=\"#").count(),
        "a link out of the page"
    );
    // One title, and a contents entry leading to each item's section.
    assert_eq!(page.matches("<h1>").count(), 1);
    assert!(
        !page.contains("<h2>concur tour"),
        "the title repeated as a heading"
    );
    for heading in ["Item 52", "Item 64"] {
        let entry = page
            .split("<li><a href=\"#")
            .skip(1)
            .find(|e| e.contains(heading))
            .unwrap_or_else(|| panic!("no contents entry for {heading}"));
        let id = entry.split('"').next().unwrap();
        assert!(page.contains(&format!("<section id=\"{id}\">")), "{id}");
    }
    check_comparisons(terminal);
    let charts = svgs(&page);
    assert!(!charts.is_empty(), "no chart in the page");
    // Every section's chart, by a phrase of its title, with its series.
    let expected: [(&str, &[&str]); 9] = [
        (
            "Item 53: serial against threads, CPU work (factorize, concur)",
            &["serial", "threads", "factorize, concur"],
        ),
        (
            "CPU work (the seeds' Python, recorded)",
            &["serial", "threads", "the seeds' Python"],
        ),
        (
            "Item 53: serial against threads, blocking I/O",
            &["serial", "threads", "5 slow calls"],
        ),
        (
            "Item 64",
            &["serial", "threads", "processes", "concur (Rust)"],
        ),
        (
            "Item 52: 10 children",
            &["concur (measured)", "the book (Python)", "10 x sleep 1"],
        ),
        (
            "Item 55: how busy",
            &[
                "download",
                "resize",
                "upload",
                "busy share of its workers' time",
            ],
        ),
        (
            "Items 56-60: a generation",
            &[
                "I/O floor",
                "concur measured",
                "serial",
                "thread-per-cell",
                "async",
            ],
        ),
        (
            "concur guess: sessions per second",
            &["async server", "threads server", "sessions per second"],
        ),
        (
            "concur tail: how long",
            &[
                "events (inotify)",
                "threads (inotify)",
                "threads (poll 100ms)",
                "half the polling interval (50 ms)",
            ],
        ),
    ];
    for (title, series) in expected {
        let chart = charts
            .iter()
            .find(|c| shows(c, title))
            .unwrap_or_else(|| panic!("no chart titled {title:?}"));
        for name in series {
            assert!(shows(chart, name), "the chart {title:?} lacks {name:?}");
        }
        assert!(
            shows(chart, "concur tour --quick"),
            "{title:?} names no command"
        );
    }
    // The line charts draw their lines, not only their legends: a line in each of the
    // first two series' colours (the palette's blue and orange) beyond the legend's.
    for title in ["concur guess: sessions", "concur tail: how long"] {
        let chart = charts.iter().find(|c| shows(c, title)).expect("the chart");
        for colour in ["#1F77B4", "#FF7F0E"] {
            let lines = chart
                .split("<polyline")
                .skip(1)
                .filter(|rest| {
                    rest.split('>')
                        .next()
                        .is_some_and(|tag| tag.contains(colour))
                })
                .count();
            assert!(lines >= 2, "{title:?} draws {lines} line(s) in {colour}");
        }
    }
    if let Some(image) = render(path, 1000, 2400) {
        assert_eq!(image.dimensions(), (1000, 2400));
        assert!(drawn(&image), "chromium rendered a blank page");
    }
}

/// `gcd bench --svg` writes a chart that parses, names each series, says how it was
/// measured, and renders in a browser at its own size.
#[test]
fn gcd_bench_draws_its_chart() {
    let dir = Dir::new();
    dir.concur([
        "gcd",
        "bench",
        "--target-seconds",
        "0.05",
        "--svg",
        "gcd.svg",
    ])
    .run()
    .expect_success();
    let svg = std::fs::read_to_string(dir.path().join("gcd.svg")).unwrap();
    let texts = texts(&svg);
    let texts: Vec<&str> = texts.iter().map(String::as_str).collect();
    for series in ["serial", "threads", "processes"] {
        assert!(
            texts.contains(&series),
            "no legend entry {series:?}: {texts:?}"
        );
    }
    assert!(
        texts
            .iter()
            .any(|t| t.contains("gcd bench") && t.contains("--svg")),
        "the chart does not name its command: {texts:?}"
    );
    assert!(
        texts.iter().any(|t| t.ends_with('x')),
        "no speed-up on the bars: {texts:?}"
    );
    let page = dir.create(
        "chart.html",
        format!("<!DOCTYPE html><html><body style=\"margin:0\">{svg}</body></html>"),
    );
    if let Some(image) = render(&page, 760, 460) {
        assert!(drawn(&image), "chromium rendered a blank chart");
    }
}

/// `concur chart` draws a hyperfine export as throughput bars (what the benchmark
/// scripts' --svg uses), and refuses a file that is not one, naming it.
#[test]
fn hyperfine_exports_become_charts() {
    let dir = Dir::new();
    dir.create(
        "run.json",
        r#"{"results": [
            {"command": "concur run", "median": 2.0, "min": 1.9, "max": 2.2},
            {"command": "GNU parallel", "median": 8.0, "min": 7.5, "max": 9.0}
        ]}"#,
    );
    dir.concur([
        "chart",
        "--hyperfine",
        "run.json",
        "--per",
        "1000",
        "--unit",
        "jobs/s",
    ])
    .args([
        "--title",
        "jobs",
        "--what",
        "1000 jobs",
        "--command",
        "bench.sh",
    ])
    .args(["--svg", "run.svg"])
    .run()
    .expect_success();
    let svg = std::fs::read_to_string(dir.path().join("run.svg")).unwrap();
    let texts = texts(&svg);
    let texts: Vec<&str> = texts.iter().map(String::as_str).collect();
    // 1000 jobs in a median of 8 s is a quarter of concur's 500 jobs/s.
    for needle in [
        "concur run",
        "GNU parallel",
        "jobs/s",
        "1.00x",
        "0.25x",
        "1000 jobs",
    ] {
        assert!(texts.contains(&needle), "no {needle:?}: {texts:?}");
    }
    // With nothing but the export: the title is its name, the caption says what it
    // holds (the times arrays: 3 and 3 runs), and the chart goes beside it.
    dir.create(
        "defaults.json",
        r#"{"results": [
            {"command": "a", "median": 1.0, "min": 0.9, "max": 1.1, "times": [0.9, 1.0, 1.1]},
            {"command": "b", "median": 2.0, "min": 1.9, "max": 2.1, "times": [1.9, 2.0, 2.1]}
        ]}"#,
    );
    dir.concur(["chart", "--hyperfine", "defaults.json"])
        .run()
        .expect_success();
    let svg = std::fs::read_to_string(dir.path().join("defaults.svg")).unwrap();
    let texts = crate::report::texts(&svg);
    for needle in ["defaults.json", "2 commands, 3 runs each"] {
        assert!(
            texts.iter().any(|t| t.contains(needle)),
            "no {needle:?}: {texts:?}"
        );
    }
    dir.create("bad.json", "{\"results\": 3}");
    dir.concur([
        "chart",
        "--hyperfine",
        "bad.json",
        "--title",
        "t",
        "--what",
        "w",
    ])
    .args(["--command", "c", "--svg", "x.svg"])
    .run()
    .expect_code(2)
    .expect_stderr("bad.json: not a hyperfine export");
    assert!(
        !dir.path().join("x.svg").exists(),
        "a chart was written from bad input"
    );
}

/// The chart a command wrote: parsed, with each of `series` in its texts, and the
/// command line that measured it.
fn check_chart(dir: &Dir, file: &str, series: &[&str], command: &str) -> String {
    let svg = std::fs::read_to_string(dir.path().join(file))
        .unwrap_or_else(|e| panic!("no chart {file}: {e}"));
    let texts = texts(&svg);
    for name in series {
        assert!(
            texts.iter().any(|t| t == name),
            "{file} has no legend entry {name:?}: {texts:?}"
        );
    }
    assert!(
        texts
            .iter()
            .any(|t| t.contains(command) && t.contains("cores")),
        "{file} does not say how it was measured ({command:?}): {texts:?}"
    );
    svg
}

/// `life bench --svg`: a line per strategy that ran, the two I/O floors, on log axes
/// of cells against seconds per generation and peak RSS.
#[test]
fn life_bench_draws_time_and_memory_against_cells() {
    let dir = Dir::new();
    dir.concur([
        "life",
        "bench",
        "--latency",
        "1ms",
        "--generations",
        "1",
        "--max-cells",
        "45",
        "--svg",
        "life.svg",
    ])
    .run()
    .expect_success();
    let svg = check_chart(
        &dir,
        "life.svg",
        &[
            "serial",
            "thread-per-cell",
            "pipeline",
            "pool",
            "async",
            "I/O floor: every cell at once",
            "I/O floor: one cell at a time",
        ],
        "concur life bench --latency 1ms",
    );
    assert!(shows(&svg, "seconds per generation") && shows(&svg, "peak RSS (MiB)"));
    // Without --python there is no Python line to name.
    assert!(!shows(&svg, "Python:"), "a Python series that never ran");
}

/// `tail bench --svg`: the latency CDF of each mode, inotify and polling; asking for
/// the chart without the latency case is refused before anything runs.
#[test]
fn tail_bench_draws_the_latency_cdf() {
    let dir = Dir::new();
    dir.concur([
        "tail",
        "bench",
        "--cases",
        "latency",
        "--samples",
        "20",
        "--svg",
        "tail.svg",
    ])
    .run()
    .expect_success();
    check_chart(
        &dir,
        "tail.svg",
        &[
            "events (inotify)",
            "threads (inotify)",
            "mixed (inotify)",
            "async (inotify)",
            "threads (poll 100ms)",
            "half the polling interval (50 ms)",
        ],
        "concur tail bench --cases latency",
    );
    dir.concur(["tail", "bench", "--cases", "cpu", "--svg", "cpu.svg"])
        .run()
        .expect_code(2)
        .expect_stderr("--svg draws the latency case");
    assert!(!dir.path().join("cpu.svg").exists());
}

/// `guess load --svg`: each server run in its own process at each client count, its
/// CPU per session measured (above zero), and a line per server in the chart.
#[test]
fn guess_load_draws_both_servers_against_clients() {
    let dir = Dir::new();
    let run = dir
        .concur([
            "guess",
            "load",
            "--mode",
            "async,threads",
            "--clients",
            "5,20",
            "--json",
            "--svg",
            "guess.svg",
        ])
        .run()
        .expect_success();
    let reports: Vec<serde_json::Value> = run
        .stdout()
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line per run"))
        .collect();
    let runs: Vec<(String, u64)> = reports
        .iter()
        .map(|r| {
            (
                r["server"].as_str().unwrap_or("?").to_owned(),
                r["clients"].as_u64().unwrap_or(0),
            )
        })
        .collect();
    let expected: Vec<(String, u64)> =
        [("async", 5), ("async", 20), ("threads", 5), ("threads", 20)]
            .iter()
            .map(|&(s, n)| (s.to_owned(), n))
            .collect();
    assert_eq!(runs, expected);
    for report in &reports {
        assert_eq!(report["failures"], 0, "{report}");
        let cpu = report["server_cpu_us_per_session"].as_f64().unwrap_or(0.0);
        assert!(cpu > 0.0, "no server CPU measured: {report}");
        assert!(
            report["server_peak_rss_mb"].as_f64().unwrap_or(0.0) > 1.0,
            "{report}"
        );
    }
    let svg = check_chart(
        &dir,
        "guess.svg",
        &["async server", "threads server"],
        "concur guess load --mode async,threads",
    );
    assert!(shows(&svg, "server CPU µs per session"));
    dir.concur(["guess", "load", "--clients", "0"])
        .run()
        .expect_code(2)
        .expect_stderr("--clients must be above 0");
}

/// `pipeline --svg`: a bar per stage, its utilisation written on it.
#[test]
fn pipeline_draws_stage_utilisation() {
    let dir = Dir::new();
    dir.concur([
        "pipeline",
        "--items",
        "60",
        "--latency",
        "2ms",
        "--svg",
        "stages.svg",
    ])
    .run()
    .expect_success();
    let svg = check_chart(
        &dir,
        "stages.svg",
        &["busy share of its workers' time"],
        "concur pipeline --items 60",
    );
    for stage in ["download", "resize", "upload"] {
        assert!(shows(&svg, stage), "no bar for {stage}");
    }
    assert!(shows(&svg, "3 workers:") && shows(&svg, "5 workers:"));
}
