//! Chart legends: one entry per series (or the chart's override list), laid out in rows
//! below the plot that wrap at the chart's width, each a line/marker sample and a name.

use std::fmt::Write as _;

use super::axis::r1;
use super::{esc, marker_shape, Chart, Line, Marker, Series, EDGE, LEGEND_ROW};

/// Width of one legend entry: the sample, its name and the gap after it.
pub(super) fn entry_width(name: &str) -> f64 {
    30.0 + super::text_width(name) + 18.0
}

impl Chart {
    /// The legend's entries: the override, or every series with something drawn.
    pub(super) fn legend_entries(&self) -> Vec<&Series> {
        match &self.legend {
            Some(entries) => entries.iter().collect(),
            None => self.series.iter().filter(|s| s.points.iter().any(|p| self.drawable(p))).collect(),
        }
    }

    /// Legend items as (x, y, entry index), wrapped into rows below the plot.
    pub(super) fn legend_layout(&self, width: f64) -> Vec<(f64, f64, usize)> {
        let mut out = Vec::new();
        let (mut x, mut y) = (EDGE, 0.0);
        for (i, series) in self.legend_entries().into_iter().enumerate() {
            let w = entry_width(&series.name);
            if x + w > width - 8.0 && x > EDGE {
                x = EDGE;
                y += LEGEND_ROW;
            }
            out.push((x, y, i));
            x += w;
        }
        out
    }

    pub(super) fn draw_legend(&self, s: &mut String, layout: &[(f64, f64, usize)], top: f64) {
        if layout.is_empty() {
            return;
        }
        let entries = self.legend_entries();
        s.push_str("<g class=\"legend\" fill=\"#1a1a1a\">\n");
        for &(x, y, i) in layout {
            let series = entries[i];
            let color = esc(&series.color);
            let cy = top + y + 6.0;
            if series.line != Line::None {
                let dash = series.line.dasharray();
                let _ = writeln!(
                    s,
                    "<path d=\"M{} {}H{}\" stroke=\"{color}\" stroke-width=\"2\"{dash}/>",
                    r1(x),
                    r1(cy),
                    r1(x + 24.0)
                );
            }
            let mx = x + 12.0;
            let marker = match series.marker {
                Marker::None => String::new(),
                m => marker_shape(m, mx, cy),
            };
            if !marker.is_empty() {
                let _ = writeln!(s, "{marker} fill=\"{color}\"/>");
            }
            let _ = writeln!(
                s,
                "<text x=\"{}\" y=\"{}\">{}</text>",
                r1(x + 30.0),
                r1(cy + 4.0),
                esc(&series.name)
            );
        }
        s.push_str("</g>\n");
    }
}
