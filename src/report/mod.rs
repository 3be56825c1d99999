//! What concur measured, drawn: charts as SVG (with plotters' SVG backend), and the
//! tour as one self-contained HTML page (inline SVG, no scripts, fonts or fetches).
//!
//! A chart is a model first ([`BarChart`] or [`LineChart`], either one a [`Chart`]),
//! so that every command that measures the same thing draws it with the same code.
//! Each chart carries its [`Provenance`]: what was measured, with which command, on
//! what machine, and when. Bars and points are medians, with a whisker from the
//! fastest to the slowest repeat.

use std::fmt::Write as _;

use plotters::prelude::*;
use thiserror::Error;

mod bars;
mod lines;

pub(crate) use bars::{Bar, BarChart, BarGroup, hyperfine_chart};
pub(crate) use lines::{Axis, LineChart, Panel, Point, Series, Stroke, cdf};

/// A chart that could not be drawn.
#[derive(Debug, Error)]
#[error("cannot draw the chart {title:?}: {message}")]
pub struct ReportError {
    /// The chart's title.
    pub title: String,
    /// What plotters said.
    pub message: String,
}

/// Where a measurement comes from: printed under every chart.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Provenance {
    /// What was measured, in a few words.
    pub what: String,
    /// The command that measured it.
    pub command: String,
    /// This machine's cores.
    pub cores: usize,
    /// This machine's operating system (`uname -sr`).
    pub os: String,
    /// When, as RFC 3339 in UTC, to the second.
    pub when: String,
}

impl Provenance {
    /// A measurement of `what`, made now on this machine by `command`.
    pub fn here(what: impl Into<String>, command: impl Into<String>) -> Self {
        let uname = rustix::system::uname();
        Self {
            what: what.into(),
            command: command.into(),
            cores: std::thread::available_parallelism().map_or(1, usize::from),
            os: format!(
                "{} {}",
                uname.sysname().to_string_lossy(),
                uname.release().to_string_lossy()
            ),
            when: humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
        }
    }

    /// The two lines printed under a chart.
    pub fn lines(&self) -> [String; 2] {
        [
            self.what.clone(),
            format!(
                "{} cores, {}, {} - {}",
                self.cores, self.os, self.when, self.command
            ),
        ]
    }
}

/// The colour of series `i`: the common "tab10" palette, grey left out (it draws
/// floors).
fn colour(i: usize) -> RGBColor {
    const PALETTE: [RGBColor; 9] = [
        RGBColor(31, 119, 180),
        RGBColor(255, 127, 14),
        RGBColor(44, 160, 44),
        RGBColor(214, 39, 40),
        RGBColor(148, 103, 189),
        RGBColor(140, 86, 75),
        RGBColor(227, 119, 194),
        RGBColor(188, 189, 34),
        RGBColor(23, 190, 207),
    ];
    PALETTE[i % PALETTE.len()]
}

/// Any chart concur draws.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Chart {
    /// Grouped bars.
    Bars(BarChart),
    /// Lines in one or more panels.
    Lines(LineChart),
}

impl Chart {
    /// The chart as an SVG document.
    pub fn svg(&self) -> Result<String, ReportError> {
        match self {
            Chart::Bars(chart) => chart.svg(),
            Chart::Lines(chart) => chart.svg(),
        }
    }
}

impl From<BarChart> for Chart {
    fn from(chart: BarChart) -> Self {
        Chart::Bars(chart)
    }
}

impl From<LineChart> for Chart {
    fn from(chart: LineChart) -> Self {
        Chart::Lines(chart)
    }
}

/// Each item once, in the order it first appears: the series of a chart, say.
pub(crate) fn first_seen<T: PartialEq>(items: impl IntoIterator<Item = T>) -> Vec<T> {
    let mut seen: Vec<T> = Vec::new();
    for item in items {
        if !seen.contains(&item) {
            seen.push(item);
        }
    }
    seen
}

/// A chart's width and height in pixels (a chart of several panels is wider).
pub(crate) const SIZE: (u32, u32) = (760, 460);

/// Where a chart's plot is drawn.
type Area<'a> = DrawingArea<SVGBackend<'a>, plotters::coord::Shift>;

/// An SVG document of `size`: white, with `body` drawn above the provenance footer.
fn drawn(
    title: &str,
    size: (u32, u32),
    provenance: &Provenance,
    body: impl FnOnce(&Area<'_>) -> Result<(), String>,
) -> Result<String, ReportError> {
    let mut svg = String::new();
    let result = (|| {
        let root = SVGBackend::with_string(&mut svg, size).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let (plot, footer) = root.split_vertically(size.1 - 44);
        body(&plot)?;
        for (i, line) in provenance.lines().iter().enumerate() {
            footer
                .draw(&Text::new(
                    line.clone(),
                    (12, 4 + 18 * i as i32),
                    ("sans-serif", 12).into_font().color(&RGBColor(80, 80, 80)),
                ))
                .map_err(|e| e.to_string())?;
        }
        root.present().map_err(|e| e.to_string())
    })();
    result.map_err(|message| ReportError {
        title: title.to_owned(),
        message,
    })?;
    Ok(svg)
}

/// One section of the HTML report: a heading, the text the terminal showed, and
/// its charts.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Section {
    /// The heading.
    pub title: String,
    /// Its text, shown as the terminal showed it.
    pub text: String,
    /// SVG documents, inlined.
    pub charts: Vec<String>,
}

/// Cuts a terminal text into sections at its headings: a line followed by a line of
/// as many `=`. Text before the first heading is a section titled `preamble`.
pub(crate) fn sections_from_text(text: &str, preamble: &str) -> Vec<Section> {
    let lines: Vec<&str> = text.lines().collect();
    let mut sections = vec![Section {
        title: preamble.to_owned(),
        ..Section::default()
    }];
    let mut i = 0;
    while i < lines.len() {
        let underline = lines.get(i + 1).is_some_and(|next| {
            !lines[i].is_empty()
                && next.chars().count() == lines[i].chars().count()
                && next.chars().all(|c| c == '=')
        });
        if underline {
            sections.push(Section {
                title: lines[i].to_owned(),
                ..Section::default()
            });
            i += 2;
            continue;
        }
        if let Some(section) = sections.last_mut() {
            section.text.push_str(lines[i]);
            section.text.push('\n');
        }
        i += 1;
    }
    for section in &mut sections {
        section.text = section.text.trim_matches('\n').to_owned();
    }
    sections.retain(|s| !(s.text.is_empty() && s.title == preamble));
    sections
}

/// The report as one self-contained HTML page: the title, a table of contents, then
/// each section with an anchor. A section titled as the page (the text before the
/// first heading) is its introduction, without a heading of its own.
pub(crate) fn html(title: &str, sections: &[Section]) -> String {
    let mut page = String::new();
    let _ = write!(
        page,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <title>{}</title>\n<style>\n\
         body {{ font-family: sans-serif; max-width: 60rem; margin: 2rem auto; padding: 0 1rem; color: #222; }}\n\
         pre {{ background: #f6f6f6; padding: 0.8rem; overflow-x: auto; font-size: 0.85rem; }}\n\
         figure {{ margin: 1rem 0; }}\n\
         </style>\n</head>\n<body>\n<h1>{}</h1>\n",
        escape(title),
        escape(title)
    );
    let headed: Vec<(usize, &Section)> = sections
        .iter()
        .enumerate()
        .filter(|(_, s)| s.title != title)
        .collect();
    if headed.len() > 1 {
        page.push_str("<nav>\n<h2>Contents</h2>\n<ol>\n");
        for (i, section) in &headed {
            let _ = writeln!(
                page,
                "<li><a href=\"#{}\">{}</a></li>",
                anchor(*i, &section.title),
                escape(&section.title)
            );
        }
        page.push_str("</ol>\n</nav>\n");
    }
    for (i, section) in sections.iter().enumerate() {
        if section.title == title {
            page.push_str("<section>\n");
        } else {
            let _ = write!(
                page,
                "<section id=\"{}\">\n<h2>{}</h2>\n",
                anchor(i, &section.title),
                escape(&section.title)
            );
        }
        let _ = writeln!(page, "<pre>{}</pre>", escape(section.text.trim_end()));
        for chart in &section.charts {
            // An SVG document's own XML declaration has no place inside HTML.
            let body = chart
                .strip_prefix("<?xml")
                .and_then(|rest| rest.split_once("?>").map(|(_, svg)| svg))
                .unwrap_or(chart);
            let _ = writeln!(page, "<figure>{}</figure>", body.trim());
        }
        page.push_str("</section>\n");
    }
    page.push_str("</body>\n</html>\n");
    page
}

/// A section's anchor: `s3-item-53-use-threads`, from its place and title.
fn anchor(index: usize, title: &str) -> String {
    let mut slug = format!("s{index}");
    let mut dash = true;
    for c in title.chars().flat_map(char::to_lowercase) {
        if c.is_ascii_alphanumeric() {
            if dash {
                slug.push('-');
            }
            slug.push(c);
            dash = false;
        } else {
            dash = true;
        }
        if slug.len() >= 40 {
            break;
        }
    }
    slug
}

/// `text` with `&`, `<`, `>` and `"` escaped for HTML.
pub(crate) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_cut_at_underlined_headings() {
        let text = "intro\n\nItem 1: a\n=========\none\n\nItem 2\n======\ntwo\n== not\n";
        let sections = sections_from_text(text, "start");
        let titles: Vec<&str> = sections.iter().map(|s| s.title.as_str()).collect();
        assert_eq!(titles, ["start", "Item 1: a", "Item 2"]);
        assert_eq!(sections[0].text, "intro");
        assert_eq!(sections[1].text, "one");
        assert_eq!(sections[2].text, "two\n== not");
    }

    #[test]
    fn the_page_escapes_text_and_inlines_charts() {
        let page = html(
            "tour <1>",
            &[Section {
                title: "a & b".into(),
                text: "x < y\n".into(),
                charts: vec!["<?xml version=\"1.0\"?>\n<svg></svg>".into()],
            }],
        );
        assert!(page.contains("<h1>tour &lt;1&gt;</h1>"));
        assert!(page.contains("<section id=\"s0-a-b\">\n<h2>a &amp; b</h2>"));
        assert!(page.contains("<pre>x &lt; y</pre>"));
        assert!(page.contains("<figure><svg></svg></figure>"));
        assert!(!page.contains("<script") && !page.contains("src="));
    }

    #[test]
    fn the_introduction_has_no_heading_and_the_rest_are_in_the_contents() {
        let section = |title: &str| Section {
            title: title.into(),
            text: "text".into(),
            charts: Vec::new(),
        };
        let page = html(
            "tour",
            &[section("tour"), section("Item 1: one"), section("Item 2")],
        );
        assert_eq!(page.matches("tour</h").count(), 1, "{page}");
        assert!(page.contains("<li><a href=\"#s1-item-1-one\">Item 1: one</a></li>"));
        assert!(page.contains("<section id=\"s2-item-2\">"));
    }
}
