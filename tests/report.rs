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

/// The tour's page: every section of the terminal text, the gcd chart with its
/// series and provenance, and chromium renders it as a page that is not blank.
pub(crate) fn check_tour_page(path: &Path, terminal: &str) {
    let page = std::fs::read_to_string(path).expect("the --html page");
    for heading in ["Item 52", "Item 55", "Item 61", "Item 64"] {
        assert!(
            page.contains(&format!("<h2>{heading}")),
            "no section for {heading}"
        );
        assert!(terminal.contains(heading));
    }
    // Self-contained: no script, and nothing fetched (the SVG namespace URI is a name).
    for fetch in ["<script", "<link", " src=", "href=", "url(", "@import"] {
        assert!(!page.contains(fetch), "the page holds {fetch:?}");
    }
    let charts = svgs(&page);
    assert!(!charts.is_empty(), "no chart in the page");
    let gcd = charts
        .iter()
        .find(|c| c.contains("Item 64"))
        .expect("the gcd chart");
    for series in [
        "serial",
        "threads",
        "processes",
        "concur (Rust)",
        "concur tour",
        "cores",
    ] {
        assert!(shows(gcd, series), "the gcd chart lacks {series:?}");
    }
    let item_53 = charts
        .iter()
        .find(|c| c.contains("Item 53"))
        .expect("the item 53 chart");
    for series in [
        "serial",
        "threads",
        "factorize, concur",
        "the seeds' Python",
        "5 slow calls",
    ] {
        assert!(shows(item_53, series), "the item 53 chart lacks {series:?}");
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
