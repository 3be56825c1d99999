//! Terminal output: progress bars that appear only on a terminal, and number formatting.

use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// A progress bar on stderr. It draws only when stderr is a terminal, so piped and
/// redirected runs stay quiet and stdout carries only results.
pub(crate) fn progress_bar(len: u64, unit: &str) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr());
    set_bar_style(&bar, unit);
    if !bar.is_hidden() {
        // The ticker is a thread of its own; start it only when something is drawn.
        bar.enable_steady_tick(Duration::from_millis(100));
    }
    bar
}

/// Gives `bar` the style of a bar with a known length.
pub(crate) fn set_bar_style(bar: &ProgressBar, unit: &str) {
    let template =
        format!("{{spinner}} {{elapsed_precise}} [{{bar:30}}] {{pos}}/{{len}} {unit} {{msg}}");
    if let Ok(style) = ProgressStyle::with_template(&template) {
        bar.set_style(style.progress_chars("=> "));
    }
}

/// Gives `bar` the style of a spinner with a count, for a total not known yet.
pub(crate) fn set_spinner_style(bar: &ProgressBar, unit: &str) {
    let template = format!("{{spinner}} {{elapsed_precise}} {{pos}} {unit} done {{msg}}");
    if let Ok(style) = ProgressStyle::with_template(&template) {
        bar.set_style(style);
    }
}

/// Seconds with three decimals, as used in every table.
pub(crate) fn seconds(s: f64) -> String {
    format!("{s:.3} s")
}
