//! Grouped bar charts: a median per bar, a whisker from the fastest to the slowest
//! repeat, and a note (a speed-up, say) written above each bar.

use plotters::prelude::*;

use super::{Area, Provenance, ReportError, SIZE, colour, drawn, first_seen};

/// One bar: the median of its repeats, their range, and a note written on it (a
/// speed-up, say).
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Bar {
    /// The series it belongs to (shown in the legend).
    pub series: String,
    /// The median.
    pub median: f64,
    /// The fastest and slowest repeat (equal to the median when there was one run).
    pub min: f64,
    /// See `min`.
    pub max: f64,
    /// Written above the bar.
    pub note: String,
}

/// Bars side by side under one label (e.g. "concur" and "CPython").
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct BarGroup {
    /// The label under the group.
    pub label: String,
    /// Its bars, one per series.
    pub bars: Vec<Bar>,
}

/// A grouped bar chart.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct BarChart {
    /// The title.
    pub title: String,
    /// What the bars measure, with the unit.
    pub y_label: String,
    /// The groups, left to right.
    pub groups: Vec<BarGroup>,
    /// Where the figures come from.
    pub provenance: Provenance,
}

impl BarChart {
    /// The series names, in the order they first appear.
    pub fn series(&self) -> Vec<&str> {
        first_seen(
            self.groups
                .iter()
                .flat_map(|g| &g.bars)
                .map(|b| b.series.as_str()),
        )
    }

    /// The chart as an SVG document.
    pub fn svg(&self) -> Result<String, ReportError> {
        drawn(&self.title, SIZE, &self.provenance, |plot| self.draw(plot))
    }

    fn draw(&self, plot: &Area<'_>) -> Result<(), String> {
        let series = self.series();
        let slots = series.len().max(1);
        let top = self
            .groups
            .iter()
            .flat_map(|g| &g.bars)
            .map(|b| b.max.max(b.median))
            .filter(|v| v.is_finite())
            .fold(0.0_f64, f64::max);
        let top = if top > 0.0 { top * 1.2 } else { 1.0 };
        // Each group spans one unit on x; its bars share the middle 80%.
        let groups = self.groups.len().max(1);
        let mut chart = ChartBuilder::on(plot)
            .caption(&self.title, ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(28)
            .y_label_area_size(56)
            .build_cartesian_2d(0.0..groups as f64, 0.0..top)
            .map_err(|e| e.to_string())?;
        let labels: Vec<String> = self.groups.iter().map(|g| g.label.clone()).collect();
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(groups * 2 + 1)
            .x_label_formatter(&|x| {
                let i = x.floor() as usize;
                let centred = (x - x.floor() - 0.5).abs() < 1e-6;
                match labels.get(i) {
                    Some(label) if centred => label.clone(),
                    _ => String::new(),
                }
            })
            .y_desc(&self.y_label)
            .draw()
            .map_err(|e| e.to_string())?;
        let width = 0.8 / slots as f64;
        for (s, name) in series.iter().enumerate() {
            let colour = colour(s);
            let bars: Vec<(f64, &Bar)> = self
                .groups
                .iter()
                .enumerate()
                .filter_map(|(g, group)| {
                    let bar = group.bars.iter().find(|b| b.series == *name)?;
                    Some((g as f64 + 0.1 + s as f64 * width, bar))
                })
                .collect();
            chart
                .draw_series(bars.iter().map(|&(x, bar)| {
                    Rectangle::new([(x, 0.0), (x + width * 0.9, bar.median)], colour.filled())
                }))
                .map_err(|e| e.to_string())?
                .label(*name)
                .legend(move |(x, y)| {
                    Rectangle::new([(x, y - 5), (x + 12, y + 5)], colour.filled())
                });
            // The range of the repeats, and the note.
            chart
                .draw_series(bars.iter().map(|&(x, bar)| {
                    let mid = x + width * 0.45;
                    PathElement::new(vec![(mid, bar.min), (mid, bar.max)], BLACK.stroke_width(2))
                }))
                .map_err(|e| e.to_string())?;
            chart
                .draw_series(bars.iter().map(|&(x, bar)| {
                    Text::new(
                        bar.note.clone(),
                        (x, bar.max.max(bar.median) + top * 0.02),
                        ("sans-serif", 12),
                    )
                }))
                .map_err(|e| e.to_string())?;
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()
            .map_err(|e| e.to_string())?;
        Ok(())
    }
}

/// One benchmark of a hyperfine `--export-json` file.
#[derive(Clone, Debug, serde::Deserialize)]
struct HyperfineResult {
    command: String,
    median: f64,
    min: f64,
    max: f64,
}

#[derive(Clone, Debug, serde::Deserialize)]
struct HyperfineExport {
    results: Vec<HyperfineResult>,
}

/// A bar per benchmark of a hyperfine export (`--export-json`): the median and the
/// min-max range of its runs, in seconds or, with `per = Some((n, unit))`, as `n /
/// seconds` in `unit` (jobs/s, say). Each bar's note is its ratio to the first
/// benchmark's, so the first is the baseline.
pub(crate) fn hyperfine_chart(
    json: &str,
    title: &str,
    per: Option<(f64, &str)>,
    provenance: Provenance,
) -> Result<BarChart, String> {
    let export: HyperfineExport =
        serde_json::from_str(json).map_err(|e| format!("not a hyperfine export: {e}"))?;
    if export.results.is_empty() {
        return Err("the hyperfine export holds no benchmark".into());
    }
    let value = |seconds: f64| match per {
        Some((n, _)) => n / seconds,
        None => seconds,
    };
    let base = value(export.results[0].median);
    let series = per.map_or("seconds", |(_, unit)| unit).to_owned();
    let groups = export
        .results
        .iter()
        .map(|r| {
            let (a, b) = (value(r.min), value(r.max));
            BarGroup {
                label: r.command.clone(),
                bars: vec![Bar {
                    series: series.clone(),
                    median: value(r.median),
                    min: a.min(b),
                    max: a.max(b),
                    note: format!("{:.2}x", value(r.median) / base),
                }],
            }
        })
        .collect();
    Ok(BarChart {
        title: title.to_owned(),
        y_label: format!("{series} (median; whiskers: min-max)"),
        groups,
        provenance,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chart() -> BarChart {
        let bar = |series: &str, median: f64| Bar {
            series: series.into(),
            median,
            min: median * 0.9,
            max: median * 1.1,
            note: format!("{median}x"),
        };
        BarChart {
            title: "gcd <test>".into(),
            y_label: "seconds".into(),
            groups: vec![
                BarGroup {
                    label: "concur".into(),
                    bars: vec![bar("serial", 2.0), bar("threads", 1.0)],
                },
                BarGroup {
                    label: "CPython".into(),
                    bars: vec![bar("serial", 4.0), bar("threads", 4.2)],
                },
            ],
            provenance: Provenance::here("a test", "cargo test"),
        }
    }

    #[test]
    fn bar_charts_name_their_series_and_say_where_they_come_from() {
        let svg = chart().svg().unwrap();
        assert!(svg.starts_with("<svg"), "{}", &svg[..80]);
        for needle in [
            "serial",
            "threads",
            "concur",
            "CPython",
            "a test",
            "cargo test",
            "cores",
        ] {
            assert!(svg.contains(needle), "{needle} missing from the chart");
        }
        // Two bars per series, each with its range: the bars are drawn, not just named.
        assert!(svg.matches("<rect").count() >= 5, "{svg}");
    }

    #[test]
    fn hyperfine_exports_become_throughput_bars() {
        let json = r#"{"results": [
            {"command": "concur", "median": 2.0, "min": 1.0, "max": 4.0, "times": []},
            {"command": "gnu", "median": 8.0, "min": 8.0, "max": 8.0}
        ]}"#;
        let chart = hyperfine_chart(
            json,
            "t",
            Some((100.0, "jobs/s")),
            Provenance::here("w", "c"),
        )
        .unwrap();
        let bars: Vec<&Bar> = chart.groups.iter().flat_map(|g| &g.bars).collect();
        // 100 jobs in 2 s: 50 jobs/s; the slowest run (4 s) is the bottom of the range.
        assert_eq!(
            (bars[0].median, bars[0].min, bars[0].max),
            (50.0, 25.0, 100.0)
        );
        assert_eq!((bars[1].median, bars[1].note.as_str()), (12.5, "0.25x"));
        assert_eq!(chart.groups[1].label, "gnu");
        assert!(hyperfine_chart("{}", "t", None, Provenance::here("w", "c")).is_err());
    }
}
