//! Terminal output: progress bars that appear only on a terminal, and number formatting.

use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// A progress bar on stderr. It draws only when stderr is a terminal, so piped and
/// redirected runs stay quiet and stdout carries only results.
pub(crate) fn progress_bar(len: u64, unit: &str) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr());
    set_bar_style(&bar, unit);
    tick(bar)
}

/// A spinner with a count on stderr (hidden when stderr is not a terminal), for a total
/// not known yet: styled before its ticker starts, so its first frame is never a
/// `0/0` bar.
pub(crate) fn spinner(unit: &str) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
    set_spinner_style(&bar, unit);
    tick(bar)
}

fn tick(bar: ProgressBar) -> ProgressBar {
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
fn set_spinner_style(bar: &ProgressBar, unit: &str) {
    let template = format!("{{spinner}} {{elapsed_precise}} {{pos}} {unit} done {{msg}}");
    if let Ok(style) = ProgressStyle::with_template(&template) {
        bar.set_style(style);
    }
}

/// Seconds with three decimals, as used in every table.
pub(crate) fn seconds(s: f64) -> String {
    format!("{s:.3} s")
}

/// The command line as typed, with the program's name rather than its path: the
/// command printed under a chart.
pub(crate) fn typed_command() -> String {
    std::iter::once("concur".to_owned())
        .chain(std::env::args().skip(1))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Writes `chart` as an SVG file at `path`.
pub(crate) fn write_svg(
    path: &std::path::Path,
    chart: impl Into<crate::report::Chart>,
) -> anyhow::Result<()> {
    use anyhow::Context;
    write_file_atomically(path, chart.into().svg()?.as_bytes())
        .with_context(|| format!("cannot write the chart {}", path.display()))
}

/// Writes `bytes` to `path` through a temporary file beside it, so a reader never sees
/// half a file.
pub(crate) fn write_file_atomically(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut file = replacement_file(path)?;
    std::io::Write::write_all(&mut file, bytes)?;
    file.persist(path).map_err(|e| e.error)?;
    Ok(())
}

/// A temporary file beside `path`, to be persisted over it when complete. It gets the
/// permissions `path` has if it exists, else those of any new file (0666 less the
/// umask), not a temporary file's private 0600.
pub(crate) fn replacement_file(path: &std::path::Path) -> std::io::Result<tempfile::NamedTempFile> {
    use std::os::unix::fs::PermissionsExt;
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => std::path::Path::new("."),
    };
    let permissions = std::fs::metadata(path)
        .map(|m| m.permissions())
        .unwrap_or_else(|_| std::fs::Permissions::from_mode(0o666));
    let file = tempfile::Builder::new()
        .permissions(permissions.clone())
        .tempfile_in(dir)?;
    // The umask applied at creation is what a new file gets; an existing file's mode
    // is kept exactly.
    if std::fs::metadata(path).is_ok() {
        file.as_file().set_permissions(permissions)?;
    }
    Ok(file)
}
