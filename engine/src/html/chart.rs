//! Bar charts as inline SVG: no script, no font or image to fetch. A bar stacks its parts
//! (each a CSS class and a count); its `<title>` is the tooltip a browser shows.

use std::fmt::Write;

use super::escape::text;
use crate::group::group;

/// One bar.
pub struct Bar {
    /// Shown beside or under the bar.
    pub label: String,
    /// The tooltip.
    pub title: String,
    /// Stacked parts, first at the base: a CSS class and a count.
    pub parts: Vec<(&'static str, u64)>,
    /// `data-*` attributes of the bar's group (names without `data-`).
    pub data: Vec<(&'static str, String)>,
    /// Drawn highlighted (the run the page is about).
    pub current: bool,
}

impl Bar {
    fn total(&self) -> u64 {
        self.parts.iter().map(|(_, n)| n).sum()
    }

    /// `<g …>` with the bar's class, data attributes and tooltip.
    fn open(&self, out: &mut String) {
        let class = if self.current { "bar current" } else { "bar" };
        let _ = write!(out, "<g class=\"{class}\"");
        for (name, value) in &self.data {
            let _ = write!(out, " data-{name}=\"{}\"", text(value));
        }
        let _ = write!(out, "><title>{}</title>", text(&self.title));
    }
}

const WIDTH: f64 = 960.0;
const LEFT: f64 = 70.0;

/// Vertical bars side by side (one per run, oldest first), the largest total at the top.
pub fn columns(bars: &[Bar], caption: &str) -> String {
    let (top, plot) = (24.0, 180.0);
    let height = top + plot + 40.0;
    let max = bars.iter().map(Bar::total).max().unwrap_or(0).max(1) as f64;
    let slot = (WIDTH - LEFT) / bars.len().max(1) as f64;
    let width = (slot * 0.7).min(60.0);
    let mut out = svg_open("chart runs", height, caption);
    let base = top + plot;
    let _ = write!(
        out,
        "<text class=\"axis\" x=\"{x}\" y=\"{y}\" text-anchor=\"end\">{}</text>\
         <text class=\"axis\" x=\"{x}\" y=\"{base}\" text-anchor=\"end\">0</text>\
         <line class=\"axis\" x1=\"{LEFT}\" y1=\"{base}\" x2=\"{WIDTH}\" y2=\"{base}\"/>",
        group(max as u64),
        x = LEFT - 8.0,
        y = top + 4.0,
    );
    for (i, bar) in bars.iter().enumerate() {
        bar.open(&mut out);
        let x = LEFT + slot * i as f64 + (slot - width) / 2.0;
        let mut y = base;
        for (class, n) in bar.parts.iter().filter(|(_, n)| *n > 0) {
            let h = *n as f64 / max * plot;
            y -= h;
            let _ = write!(
                out,
                "<rect class=\"{class}\" x=\"{x:.1}\" y=\"{y:.1}\" width=\"{width:.1}\" height=\"{h:.1}\"/>"
            );
        }
        // a label of two lines (a date, a time) keeps twenty bars' labels apart
        let _ = write!(
            out,
            "<text class=\"label\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">",
            x + width / 2.0,
            base + 16.0,
        );
        for (i, line) in bar.label.lines().enumerate() {
            let dy = if i == 0 { 0.0 } else { 14.0 };
            let _ = write!(
                out,
                "<tspan x=\"{:.1}\" dy=\"{dy}\">{}</tspan>",
                x + width / 2.0,
                text(line)
            );
        }
        out.push_str("</text></g>");
    }
    out.push_str("</svg>");
    out
}

/// Horizontal bars one under the other (one per stream), each labelled with its total.
pub fn rows(bars: &[Bar], caption: &str) -> String {
    let (row, left, right) = (30.0, 220.0, 110.0);
    let height = row * bars.len().max(1) as f64 + 8.0;
    let max = bars.iter().map(Bar::total).max().unwrap_or(0).max(1) as f64;
    let plot = WIDTH - left - right;
    let mut out = svg_open("chart", height, caption);
    for (i, bar) in bars.iter().enumerate() {
        bar.open(&mut out);
        let y = 4.0 + row * i as f64;
        let _ = write!(
            out,
            "<text class=\"label\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            left - 8.0,
            y + 17.0,
            text(&short(&bar.label, 28))
        );
        let mut x = left;
        for (class, n) in bar.parts.iter().filter(|(_, n)| *n > 0) {
            let w = *n as f64 / max * plot;
            let _ = write!(
                out,
                "<rect class=\"{class}\" x=\"{x:.1}\" y=\"{y:.1}\" width=\"{w:.1}\" height=\"22\"/>"
            );
            x += w;
        }
        let _ = write!(
            out,
            "<text class=\"value\" x=\"{:.1}\" y=\"{:.1}\">{}</text></g>",
            x + 6.0,
            y + 17.0,
            group(bar.total())
        );
    }
    out.push_str("</svg>");
    out
}

fn svg_open(class: &str, height: f64, caption: &str) -> String {
    format!(
        "<svg class=\"{class}\" xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {WIDTH} {height}\" \
         role=\"img\" aria-label=\"{}\">",
        text(caption)
    )
}

/// At most `n` characters of `s`, with `…` when cut.
fn short(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        return s.to_string();
    }
    let mut cut: String = s.chars().take(n - 1).collect();
    cut.push('…');
    cut
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bar(label: &str, parts: Vec<(&'static str, u64)>) -> Bar {
        Bar {
            label: label.into(),
            title: format!("{label} tip"),
            parts,
            data: vec![("stream", label.into())],
            current: false,
        }
    }

    #[test]
    fn the_largest_bar_fills_the_plot_and_labels_are_escaped() {
        let svg = columns(
            &[
                bar("<b>", vec![("ok", 50), ("bad", 50)]),
                bar("b", vec![("ok", 25)]),
            ],
            "runs",
        );
        // 100 of 100 fill the 180 high plot: 90 each; 25 of 100 is 45
        assert!(svg.contains("height=\"90.0\""), "{svg}");
        assert!(svg.contains("height=\"45.0\""), "{svg}");
        assert!(svg.contains("data-stream=\"&lt;b&gt;\""), "{svg}");
        assert!(!svg.contains("<b>"), "{svg}");
        let svg = rows(&[bar("a", vec![("ok", 0)])], "streams");
        assert!(!svg.contains("<rect"), "an empty part draws nothing: {svg}");
        assert_eq!(short("abcdef", 4), "abc…");
    }
}
