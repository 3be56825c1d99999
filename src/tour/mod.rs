//! `concur tour`: the chapter's demonstrations in order, with measured figures beside
//! the book's claims.
//!
//! Each part measures in-process with the library, prints as it goes, and states the
//! book's claim next to what this machine did. `--quick` shrinks the simulated latency
//! and skips the large runs so the whole tour finishes in seconds; the claims are then
//! scaled the same way.

mod children;
mod gcd;
mod guess;
mod life;
mod machines;
mod tail;
mod threads;

use std::io::{self, Write};
use std::time::{Duration, Instant};

use thiserror::Error;

use crate::life::LifeError;
use crate::parallel::bench::BenchError;
use crate::process::ProcessError;

pub(crate) use crate::error_chain as chain;

/// How much of the tour to run.
#[derive(Clone, Copy, Debug, Default)]
pub struct TourOptions {
    /// Shrink latencies and skip the large-scale runs, to finish in a few seconds.
    pub quick: bool,
}

impl TourOptions {
    /// Simulated I/O per cell for the latency story.
    fn latency(self) -> Duration {
        if self.quick {
            Duration::from_millis(10)
        } else {
            Duration::from_millis(100)
        }
    }

    /// The command that runs this tour, printed under its charts.
    fn command(self) -> &'static str {
        if self.quick {
            "concur tour --quick"
        } else {
            "concur tour"
        }
    }

    /// Generations timed per strategy (the median is shown).
    fn generations(self) -> usize {
        if self.quick { 1 } else { 2 }
    }
}

/// What can stop the tour.
#[derive(Debug, Error)]
pub enum TourError {
    /// Writing the tour failed (for example, stdout was closed).
    #[error("cannot write the tour")]
    Write(#[from] io::Error),
    /// A Life demonstration failed.
    #[error("the Game of Life part failed")]
    Life(#[from] LifeError),
    /// The HashLife demonstration failed.
    #[error("the HashLife part failed")]
    HashLife(#[from] crate::life::hashlife::HashLifeError),
    /// A pattern built into the tour did not parse.
    #[error("a built-in pattern failed to parse")]
    Pattern(#[from] crate::life::pattern::ParseError),
    /// A child-process demonstration failed.
    #[error("the child-process part failed")]
    Process(#[from] ProcessError),
    /// The job-runner demonstration failed.
    #[error("the job-runner part failed")]
    Run(#[from] crate::runner::RunError),
    /// The CPU-parallelism demonstration failed.
    #[error("the CPU-parallelism part failed")]
    Gcd(#[from] BenchError),
    /// A thread demonstration could not run (a socket or a thread could not be made).
    #[error("a thread demonstration failed")]
    Demo(#[source] io::Error),
}

/// The charts of what the tour measured, by the title of the section that measured
/// it (for `concur tour --html`).
#[derive(Debug, Default)]
pub struct TourCharts {
    /// Section title, then the chart.
    pub charts: Vec<(String, crate::report::Chart)>,
}

impl TourCharts {
    /// Adds `chart` to the section headed `section`.
    fn add(&mut self, section: &str, chart: impl Into<crate::report::Chart>) {
        self.charts.push((section.to_owned(), chart.into()));
    }
}

/// Runs the tour, writing it to `out`, and returns the charts of what it measured.
pub fn run(out: &mut dyn Write, options: TourOptions) -> Result<TourCharts, TourError> {
    let mut charts = TourCharts::default();
    let start = Instant::now();
    writeln!(
        out,
        "concur tour: Effective Python (2nd ed.), chapter 7, \"Concurrency and Parallelism\", in Rust"
    )?;
    if options.quick {
        writeln!(
            out,
            "(--quick: 10 ms of simulated I/O instead of 100 ms, and no large grids)"
        )?;
    }
    children::run(out, options, &mut charts)?;
    threads::run(out, options, &mut charts)?;
    life::run(out, options, &mut charts)?;
    guess::run(out, options, &mut charts)?;
    tail::run(out, options, &mut charts)?;
    let gcd = gcd::run(out, options)?;
    charts.add(gcd::TITLE, gcd);
    machines::run(out)?;
    writeln!(
        out,
        "\nTour finished in {:.1} s.",
        start.elapsed().as_secs_f64()
    )?;
    Ok(charts)
}

/// `text` with its lines broken at spaces to at most `width` characters, for the
/// tour's sentences computed from figures (whose length is not known in advance).
pub(crate) fn wrap(text: &str, width: usize) -> String {
    let mut wrapped = String::new();
    for (i, paragraph) in text.split('\n').enumerate() {
        if i > 0 {
            wrapped.push('\n');
        }
        let mut line = 0;
        for (j, word) in paragraph.split(' ').enumerate() {
            let len = word.chars().count();
            if j > 0 && line + 1 + len > width {
                wrapped.push('\n');
                line = 0;
            } else if j > 0 {
                wrapped.push(' ');
                line += 1;
            }
            wrapped.push_str(word);
            line += len;
        }
    }
    wrapped
}

fn heading(out: &mut dyn Write, title: &str) -> io::Result<()> {
    writeln!(out, "\n{title}\n{}", "=".repeat(title.chars().count()))
}

#[cfg(test)]
mod wrap_tests {
    #[test]
    fn lines_break_at_spaces_within_the_width() {
        let text = super::wrap("aaa bbb ccc ddd\neee fff", 8);
        assert_eq!(text, "aaa bbb\nccc ddd\neee fff");
        assert!(
            super::wrap(&"word ".repeat(40), 30)
                .lines()
                .all(|l| l.len() <= 30)
        );
    }
}
