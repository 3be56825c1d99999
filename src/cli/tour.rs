//! `concur tour`.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;

use super::Outcome;
use crate::report::{self, Section};
use crate::tour::{self, TourOptions};

/// Arguments of `concur tour`.
#[derive(Debug, Args)]
pub struct TourArgs {
    /// Shrink the simulated latencies and skip the large runs: the whole tour in seconds.
    #[arg(long)]
    quick: bool,

    /// Also write the tour as one self-contained HTML page to FILE: its text in
    /// sections per item, with charts of what was measured (inline SVG).
    #[arg(long, value_name = "FILE")]
    html: Option<PathBuf>,

    /// Print what the tour measured as JSON Lines on stdout instead of its text (which
    /// goes to stderr): one object per chart, {"section": ..., "chart": {...}}, with
    /// every figure the chart draws.
    #[arg(long, conflicts_with = "html")]
    json: bool,
}

/// What the terminal was shown, kept for the HTML page.
struct Tee<'a> {
    out: &'a mut dyn Write,
    kept: Vec<u8>,
}

impl Write for Tee<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.out.write(buf)?;
        self.kept.extend_from_slice(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush()
    }
}

/// Runs `concur tour`.
pub fn run(args: TourArgs, out: &mut dyn Write) -> Result<Outcome> {
    let options = TourOptions { quick: args.quick };
    if args.json {
        let charts = tour::run(&mut std::io::stderr(), options)?;
        for (section, chart) in &charts.charts {
            let line = serde_json::json!({"section": section, "chart": chart});
            writeln!(out, "{line}")?;
        }
        return Ok(Outcome::Success);
    }
    let Some(path) = args.html else {
        tour::run(out, options)?;
        return Ok(Outcome::Success);
    };
    let mut tee = Tee {
        out,
        kept: Vec::new(),
    };
    let charts = tour::run(&mut tee, options)?;
    let text = String::from_utf8_lossy(&tee.kept);
    const TITLE: &str = "concur tour: Effective Python, chapter 7, in Rust";
    // The text before the first item is the page's introduction, under its title.
    let mut sections: Vec<Section> = report::sections_from_text(&text, TITLE);
    for (title, chart) in &charts.charts {
        let svg = chart.svg()?;
        match sections.iter_mut().find(|s| &s.title == title) {
            Some(section) => section.charts.push(svg),
            None => sections.push(Section {
                title: title.clone(),
                text: String::new(),
                charts: vec![svg],
            }),
        }
    }
    let page = report::html(TITLE, &sections);
    super::output::write_file_atomically(&path, page.as_bytes())
        .with_context(|| format!("cannot write the report {}", path.display()))?;
    Ok(Outcome::Success)
}
