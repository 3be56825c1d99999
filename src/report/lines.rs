//! Line charts: one or more panels side by side, each with linear or logarithmic
//! axes and a line per series through its medians, with a whisker at each point
//! from the fastest to the slowest repeat. [`cdf`] turns samples (latencies, say)
//! into the series of their cumulative distribution.

use plotters::coord::ranged1d::{Ranged, ValueFormatter};
use plotters::coord::types::RangedCoordf64;
use plotters::element::DashedPathElement;
use plotters::prelude::*;

use super::{Area, Provenance, ReportError, SIZE, colour, drawn, first_seen};

/// How an axis maps values to pixels.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub enum Scale {
    /// Equal steps for equal differences.
    Linear,
    /// Equal steps for equal ratios (only values above 0 are drawn).
    Log,
}

/// An axis: its label (with the unit) and its scale.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Axis {
    /// The label, with the unit.
    pub label: String,
    /// Linear or logarithmic.
    pub scale: Scale,
}

impl Axis {
    /// A linear axis.
    pub fn linear(label: impl Into<String>) -> Self {
        Self {
            label: label.into(),
            scale: Scale::Linear,
        }
    }

    /// A logarithmic axis.
    pub fn log(label: impl Into<String>) -> Self {
        Self {
            label: label.into(),
            scale: Scale::Log,
        }
    }
}

/// One point: the median of its repeats and, when there were several, their range.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct Point {
    /// Where on x.
    pub x: f64,
    /// The median.
    pub y: f64,
    /// The fastest and the slowest repeat, drawn as a whisker.
    pub range: Option<(f64, f64)>,
}

impl Point {
    /// A point without a range.
    pub fn new(x: f64, y: f64) -> Self {
        Self { x, y, range: None }
    }

    /// The median of `repeats` at `x`, with their range when there are several;
    /// `None` for no finite repeat.
    pub fn of_repeats(x: f64, repeats: &[f64]) -> Option<Self> {
        let mut sorted: Vec<f64> = repeats.iter().copied().filter(|v| v.is_finite()).collect();
        sorted.sort_by(f64::total_cmp);
        let n = sorted.len();
        let median = match n {
            0 => return None,
            n if n % 2 == 1 => sorted[n / 2],
            n => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
        };
        let range = (n > 1).then(|| (sorted[0], sorted[n - 1]));
        Some(Self::with_range(x, median, range))
    }

    /// A median with the range of its repeats.
    pub fn with_range(x: f64, y: f64, range: Option<(f64, f64)>) -> Self {
        Self { x, y, range }
    }
}

/// How a series is drawn.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub enum Stroke {
    /// A solid line with filled dots: what concur measured.
    Solid,
    /// A dashed line with hollow dots: a baseline (the book's Python, say).
    Dashed,
    /// A thin grey dashed line without dots: a bound, such as the I/O floor.
    Floor,
}

/// A named line.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Series {
    /// Shown in the legend.
    pub name: String,
    /// Index into the palette, so that a strategy keeps its colour across panels
    /// and its baseline can share it.
    pub colour: usize,
    /// Solid, dashed or a floor.
    pub stroke: Stroke,
    /// Its points, in the order the line joins them.
    pub points: Vec<Point>,
}

/// One plot of a chart.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Panel {
    /// Its caption.
    pub title: String,
    /// The horizontal axis.
    pub x: Axis,
    /// The vertical axis.
    pub y: Axis,
    /// Its lines.
    pub series: Vec<Series>,
}

/// A chart of one or more panels side by side, with one provenance footer.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct LineChart {
    /// The title, above the panels.
    pub title: String,
    /// The panels, left to right.
    pub panels: Vec<Panel>,
    /// Where the figures come from.
    pub provenance: Provenance,
}

/// The most points a line may have and still be drawn with a dot at each.
const DOTTED: usize = 40;

/// The legend's column, right of the panels: one legend serves every panel, since a
/// series keeps its name and colour across them.
const LEGEND_WIDTH: u32 = 250;

impl LineChart {
    /// The names of the series that have points, in the order they first appear.
    pub fn series(&self) -> Vec<&str> {
        first_seen(
            self.panels
                .iter()
                .flat_map(|p| &p.series)
                .filter(|s| !s.points.is_empty())
                .map(|s| s.name.as_str()),
        )
    }

    /// Width and height in pixels: a column for the legend, and 500 for each panel.
    pub fn size(&self) -> (u32, u32) {
        let panels = self.panels.len().max(1) as u32;
        (LEGEND_WIDTH + panels * 500, SIZE.1)
    }

    /// The chart as an SVG document.
    pub fn svg(&self) -> Result<String, ReportError> {
        drawn(&self.title, self.size(), &self.provenance, |area| {
            let (caption, body) = area.split_vertically(30);
            caption
                .titled(&self.title, ("sans-serif", 18))
                .map_err(|e| e.to_string())?;
            let width = body.dim_in_pixel().0;
            let (plots, legend) = body.split_horizontally(width.saturating_sub(LEGEND_WIDTH));
            let cells = plots.split_evenly((1, self.panels.len().max(1)));
            for (panel, cell) in self.panels.iter().zip(&cells) {
                draw_panel(cell, panel)?;
            }
            self.draw_legend(&legend)
        })
    }

    fn draw_legend(&self, area: &Area<'_>) -> Result<(), String> {
        // A row per name, drawn as the name's first series with points is drawn.
        let all = || self.panels.iter().flat_map(|p| &p.series);
        let first = |name: &str| all().find(|s| s.name == name && !s.points.is_empty());
        for (row, series) in self.series().into_iter().filter_map(first).enumerate() {
            let y = 40 + 18 * row as i32;
            let (style, _) = styles(series);
            let sample: Vec<(i32, i32)> = vec![(4, y), (30, y)];
            match series.stroke {
                Stroke::Solid => area.draw(&PathElement::new(sample, style)),
                Stroke::Dashed | Stroke::Floor => {
                    area.draw(&DashedPathElement::new(sample, 6, 4, style))
                }
            }
            .map_err(|e| e.to_string())?;
            if series.stroke != Stroke::Floor {
                area.draw(&Circle::new((17, y), 3, dot(series)))
                    .map_err(|e| e.to_string())?;
            }
            area.draw(&Text::new(
                series.name.clone(),
                (36, y - 6),
                ("sans-serif", 12),
            ))
            .map_err(|e| e.to_string())?;
        }
        Ok(())
    }
}

/// The line's style of `series`, and its colour.
fn styles(series: &Series) -> (ShapeStyle, RGBColor) {
    match series.stroke {
        Stroke::Floor => {
            let grey = RGBColor(120, 120, 120);
            (grey.stroke_width(1), grey)
        }
        Stroke::Solid | Stroke::Dashed => {
            let c = colour(series.colour);
            (c.stroke_width(2), c)
        }
    }
}

/// The style of a series' dots: filled for what concur measured, hollow for a
/// baseline.
fn dot(series: &Series) -> ShapeStyle {
    let c = colour(series.colour);
    if series.stroke == Stroke::Solid {
        c.filled()
    } else {
        c.stroke_width(2)
    }
}

/// The smallest and largest value drawable on `scale`, padded a little; `(1, 10)`
/// when there is none.
fn bounds(values: impl Iterator<Item = f64>, scale: Scale, from_zero: bool) -> (f64, f64) {
    let (lo, hi) = values
        .filter(|v| v.is_finite() && (scale == Scale::Linear || *v > 0.0))
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        });
    if lo > hi {
        return (if scale == Scale::Log { 1.0 } else { 0.0 }, 10.0);
    }
    match scale {
        Scale::Log => {
            let (lo, hi) = if hi / lo < 10.0 {
                let mid = (lo * hi).sqrt();
                (mid / 4.0, mid * 4.0)
            } else {
                (lo, hi)
            };
            (lo / 1.6, hi * 1.6)
        }
        Scale::Linear => {
            let lo = if from_zero { lo.min(0.0) } else { lo };
            let span = if hi > lo { hi - lo } else { hi.abs().max(1.0) };
            (
                if from_zero && lo >= 0.0 {
                    lo
                } else {
                    lo - span * 0.05
                },
                hi + span * 0.1,
            )
        }
    }
}

fn draw_panel(area: &Area<'_>, panel: &Panel) -> Result<(), String> {
    let points = || panel.series.iter().flat_map(|s| &s.points);
    let xs = bounds(points().map(|p| p.x), panel.x.scale, false);
    let ys = bounds(
        points().flat_map(|p| {
            let (lo, hi) = p.range.unwrap_or((p.y, p.y));
            [p.y, lo, hi]
        }),
        panel.y.scale,
        true,
    );
    let linear = |(a, b): (f64, f64)| RangedCoordf64::from(a..b);
    let log = |(a, b): (f64, f64)| LogCoord::from((a..b).log_scale());
    match (panel.x.scale, panel.y.scale) {
        (Scale::Linear, Scale::Linear) => draw_on(area, panel, linear(xs), linear(ys)),
        (Scale::Linear, Scale::Log) => draw_on(area, panel, linear(xs), log(ys)),
        (Scale::Log, Scale::Linear) => draw_on(area, panel, log(xs), linear(ys)),
        (Scale::Log, Scale::Log) => draw_on(area, panel, log(xs), log(ys)),
    }
}

/// A tick label: short, with k and M for large numbers.
fn tick(v: f64) -> String {
    let a = v.abs();
    let trim = |s: String| {
        if s.contains('.') {
            s.trim_end_matches('0').trim_end_matches('.').to_owned()
        } else {
            s
        }
    };
    if a >= 1e6 {
        format!("{}M", trim(format!("{:.1}", v / 1e6)))
    } else if a >= 1e4 {
        format!("{}k", trim(format!("{:.1}", v / 1e3)))
    } else if a >= 10.0 || a == 0.0 {
        trim(format!("{v:.0}"))
    } else if a >= 0.1 {
        trim(format!("{v:.2}"))
    } else {
        // Two significant digits.
        let digits = (-a.log10().floor()) as usize + 1;
        trim(format!("{v:.digits$}"))
    }
}

fn draw_on<X, Y>(area: &Area<'_>, panel: &Panel, x: X, y: Y) -> Result<(), String>
where
    X: Ranged<ValueType = f64> + ValueFormatter<f64>,
    Y: Ranged<ValueType = f64> + ValueFormatter<f64>,
{
    let mut chart = ChartBuilder::on(area)
        .caption(&panel.title, ("sans-serif", 14))
        .margin(10)
        .x_label_area_size(36)
        .y_label_area_size(60)
        .build_cartesian_2d(x, y)
        .map_err(|e| e.to_string())?;
    let format = |v: &f64| tick(*v);
    chart
        .configure_mesh()
        .x_desc(&panel.x.label)
        .y_desc(&panel.y.label)
        .x_labels(8)
        .y_labels(8)
        .x_label_formatter(&format)
        .y_label_formatter(&format)
        .light_line_style(RGBColor(235, 235, 235))
        .draw()
        .map_err(|e| e.to_string())?;
    let drawable = |v: f64, scale: Scale| v.is_finite() && (scale == Scale::Linear || v > 0.0);
    for series in &panel.series {
        let points: Vec<&Point> = series
            .points
            .iter()
            .filter(|p| drawable(p.x, panel.x.scale) && drawable(p.y, panel.y.scale))
            .collect();
        if points.is_empty() {
            continue;
        }
        let line: Vec<(f64, f64)> = points.iter().map(|p| (p.x, p.y)).collect();
        let (style, c) = styles(series);
        match series.stroke {
            Stroke::Solid => chart.draw_series(LineSeries::new(line.clone(), style)),
            Stroke::Dashed | Stroke::Floor => {
                chart.draw_series(DashedLineSeries::new(line.clone(), 6, 4, style))
            }
        }
        .map_err(|e| e.to_string())?;
        // Dots mark measurements; on a dense line (a CDF) they would hide it.
        if series.stroke == Stroke::Floor || line.len() > DOTTED {
            continue;
        }
        chart
            .draw_series(line.iter().map(|&p| Circle::new(p, 3, dot(series))))
            .map_err(|e| e.to_string())?;
        chart
            .draw_series(points.iter().filter_map(|p| {
                let (lo, hi) = p.range?;
                (drawable(lo, panel.y.scale) && drawable(hi, panel.y.scale))
                    .then(|| PathElement::new(vec![(p.x, lo), (p.x, hi)], c.stroke_width(1)))
            }))
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// The cumulative distribution of `samples` as a series: x is a sample, y the
/// fraction of samples at or below it. At most 400 points are kept, evenly spaced
/// in rank, the slowest always among them.
pub(crate) fn cdf(
    name: impl Into<String>,
    colour: usize,
    stroke: Stroke,
    samples: &[f64],
) -> Series {
    let mut sorted: Vec<f64> = samples.iter().copied().filter(|v| v.is_finite()).collect();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    let step = n.div_ceil(400).max(1);
    let mut points: Vec<Point> = (0..n)
        .step_by(step)
        .map(|i| Point::new(sorted[i], (i + 1) as f64 / n as f64))
        .collect();
    if n > 0 && !(n - 1).is_multiple_of(step) {
        points.push(Point::new(sorted[n - 1], 1.0));
    }
    Series {
        name: name.into(),
        colour,
        stroke,
        points,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chart() -> LineChart {
        let series = |name: &str, colour, stroke, k: f64| Series {
            name: name.into(),
            colour,
            stroke,
            points: [45.0, 10_000.0, 100_000.0]
                .iter()
                .map(|&x| Point::with_range(x, k * x, Some((k * x * 0.9, k * x * 1.1))))
                .collect(),
        };
        LineChart {
            title: "life <test>".into(),
            panels: vec![
                Panel {
                    title: "time".into(),
                    x: Axis::log("cells"),
                    y: Axis::log("s/generation"),
                    series: vec![
                        series("async", 0, Stroke::Solid, 1e-6),
                        series("Python: async", 0, Stroke::Dashed, 1e-4),
                        series("I/O floor", 0, Stroke::Floor, 1e-7),
                        Series {
                            name: "never ran".into(),
                            colour: 1,
                            stroke: Stroke::Solid,
                            points: vec![],
                        },
                    ],
                },
                Panel {
                    title: "memory".into(),
                    x: Axis::log("cells"),
                    y: Axis::linear("MiB"),
                    series: vec![series("async", 0, Stroke::Solid, 0.001)],
                },
            ],
            provenance: Provenance::here("a test", "cargo test"),
        }
    }

    #[test]
    fn line_charts_draw_every_series_that_has_points() {
        let chart = chart();
        assert_eq!(chart.series(), ["async", "Python: async", "I/O floor"]);
        assert_eq!(chart.size(), (1250, 460));
        let svg = chart.svg().unwrap();
        for needle in [
            "async",
            "Python: async",
            "I/O floor",
            "s/generation",
            "MiB",
            "life &lt;test&gt;",
            "cargo test",
        ] {
            assert!(svg.contains(needle), "{needle} missing from the chart");
        }
        assert!(!svg.contains("never ran"));
        // Dots: 3 for each of the two dotted series of the first panel, 3 in the
        // second, and one in the legend for each of the two.
        assert_eq!(svg.matches("<circle").count(), 11, "{svg}");
    }

    #[test]
    fn a_cdf_rises_to_one_through_sorted_samples() {
        let series = cdf("s", 0, Stroke::Solid, &[3.0, 1.0, f64::NAN, 2.0, 4.0]);
        let points: Vec<(f64, f64)> = series.points.iter().map(|p| (p.x, p.y)).collect();
        assert_eq!(points, [(1.0, 0.25), (2.0, 0.5), (3.0, 0.75), (4.0, 1.0)]);
        let many: Vec<f64> = (0..1001).map(f64::from).collect();
        let thinned = cdf("s", 0, Stroke::Solid, &many).points;
        assert!(thinned.len() <= 402, "{}", thinned.len());
        assert_eq!(thinned.last().map(|p| (p.x, p.y)), Some((1000.0, 1.0)));
        assert!(cdf("s", 0, Stroke::Solid, &[]).points.is_empty());
    }

    #[test]
    fn repeats_become_a_median_and_a_range() {
        let point = |v: &[f64]| Point::of_repeats(1.0, v).map(|p| (p.y, p.range));
        assert_eq!(point(&[3.0, 1.0, 2.0]), Some((2.0, Some((1.0, 3.0)))));
        assert_eq!(point(&[4.0, 1.0, f64::NAN]), Some((2.5, Some((1.0, 4.0)))));
        assert_eq!(point(&[5.0]), Some((5.0, None)));
        assert_eq!(point(&[]), None);
    }

    #[test]
    fn ticks_are_short() {
        let cases = [
            (0.0, "0"),
            (0.0015, "0.0015"),
            (0.25, "0.25"),
            (2.5, "2.5"),
            (45.0, "45"),
            (10_000.0, "10k"),
            (2_500_000.0, "2.5M"),
        ];
        for (v, text) in cases {
            assert_eq!(tick(v), text, "{v}");
        }
    }
}
