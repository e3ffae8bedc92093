//! A small, hand-written SVG chart: line/scatter series on linear or log axes, with error
//! bars, point labels, a legend below the plot and a chance/reference line.
//!
//! Why not plotters: the report needs few chart types, but needs them exact and small —
//! log axes whose ticks read `10`, `1,000`, `0.01%`; legends that never overlap the data;
//! markers that carry a `<title>` tooltip with the JSON value; `viewBox` scaling so one SVG
//! serves the HTML page, the printed page and a standalone `.svg` file. Hand-written SVG
//! does that in a few hundred lines without a dependency, and its output is deterministic
//! text that tests can read. Presentation attributes (not CSS classes) carry the styling, so
//! a chart looks the same inlined in HTML or opened on its own.

use std::fmt::Write as _;

mod axis;
mod legend;

use axis::{nice_step, r1, tick_labels, Mapped};

/// Okabe–Ito colour-blind-safe palette.
pub const PALETTE: [&str; 7] = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000"];

/// Colour of chance / reference lines.
pub const REFERENCE: &str = "#6b6b6b";

const FONT: &str = "system-ui, -apple-system, 'Segoe UI', Roboto, 'Helvetica Neue', Arial, sans-serif";
const FONT_SIZE: f64 = 13.0;
/// Size of the chart title.
const TITLE_SIZE: f64 = 15.0;
/// Average glyph width at 13 px, used to lay out legends and labels (slightly generous).
const CHAR_W: f64 = 7.4;
/// Left edge of the title, the legend and the y-axis title.
const EDGE: f64 = 16.0;
const MARGIN_TOP: f64 = 40.0;
const AXIS_SPACE: f64 = 52.0;
const LEGEND_ROW: f64 = 20.0;

/// Axis scale.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scale {
    /// Linear.
    Linear,
    /// Base-10 logarithmic (all values must be > 0).
    Log,
}

/// How tick labels are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ticks {
    /// Counts with thousands separators (`10,000`).
    Count,
    /// Proportions as percentages (`0.01%`, `25%`).
    Percent,
    /// Plain decimals (`0.5`, `20`).
    Plain,
}

/// One axis.
#[derive(Debug, Clone, PartialEq)]
pub struct Axis {
    /// Axis title.
    pub label: String,
    /// Scale.
    pub scale: Scale,
    /// Tick label format.
    pub ticks: Ticks,
    /// Fixed range; `None` fits the data.
    pub range: Option<(f64, f64)>,
    /// Whether an automatic linear range must include zero.
    pub include_zero: bool,
    /// Category names of a categorical axis: category i sits at value i (on a y axis the
    /// first at the top), and they replace the numeric ticks. Empty: a numeric axis.
    pub categories: Vec<String>,
}

impl Axis {
    /// An axis fitted to the data.
    pub fn new(label: impl Into<String>, scale: Scale, ticks: Ticks) -> Axis {
        Axis { label: label.into(), scale, ticks, range: None, include_zero: false, categories: Vec::new() }
    }

    /// A categorical axis: one position per name (points use the index as their value).
    pub fn categorical(label: impl Into<String>, names: Vec<String>) -> Axis {
        Axis { categories: names, ..Axis::new(label, Scale::Linear, Ticks::Plain) }
    }

    /// Fix the range.
    pub fn range(mut self, lo: f64, hi: f64) -> Axis {
        self.range = Some((lo, hi));
        self
    }

    /// Make an automatic linear range include zero.
    pub fn from_zero(mut self) -> Axis {
        self.include_zero = true;
        self
    }
}

/// Line style of a series.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Line {
    /// Solid line through the points.
    Solid,
    /// Dashed line through the points.
    Dashed,
    /// Dotted line through the points.
    Dotted,
    /// Markers only.
    None,
}

impl Line {
    /// The `stroke-dasharray` attribute of this style (empty for solid lines).
    fn dasharray(self) -> &'static str {
        match self {
            Line::Dashed => " stroke-dasharray=\"6 4\"",
            Line::Dotted => " stroke-dasharray=\"2 3\"",
            Line::Solid | Line::None => "",
        }
    }
}

/// Marker shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Marker {
    /// Filled circle.
    Circle,
    /// Filled square.
    Square,
    /// Filled triangle.
    Triangle,
    /// Filled diamond.
    Diamond,
    /// No marker (a pure line).
    None,
}

/// A data point, with an optional interval, label and tooltip.
#[derive(Debug, Clone, PartialEq)]
pub struct Point {
    /// x value.
    pub x: f64,
    /// y value.
    pub y: f64,
    /// Interval `[low, high]` of the plotted value, drawn as an error bar: vertical (an
    /// interval of y), or horizontal (an interval of x) on a chart whose y axis is
    /// categorical — a forest plot, where x is the value and y the category.
    pub y_ci: Option<[f64; 2]>,
    /// Text written next to the marker (e.g. `ε=0.34`).
    pub label: Option<String>,
    /// Tooltip (`<title>`), the exact figure in words.
    pub tooltip: String,
}

/// A named series.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// Legend entry.
    pub name: String,
    /// Stroke and fill colour.
    pub color: String,
    /// Line style.
    pub line: Line,
    /// Marker shape.
    pub marker: Marker,
    /// Points, drawn in this order.
    pub points: Vec<Point>,
}

/// A chart: title, two axes, series.
#[derive(Debug, Clone, PartialEq)]
pub struct Chart {
    /// Identifier: unique within a page, used for element ids and the standalone file name.
    pub id: String,
    /// Title written above the plot.
    pub title: String,
    /// Horizontal axis.
    pub x: Axis,
    /// Vertical axis.
    pub y: Axis,
    /// Series, drawn in order (later on top).
    pub series: Vec<Series>,
    /// Size of the plotting area in px (width, height).
    pub plot_size: (f64, f64),
    /// Legend entries replacing the one-per-series legend (their points are ignored), e.g.
    /// one entry per colour and one per line style when colour and style encode two things.
    pub legend: Option<Vec<Series>>,
}

/// An error bar from `lo` to `hi` (pixels) across the point at `at`: vertical, or horizontal
/// (a forest plot's interval of x), with end ticks; its box is taken for label placement.
fn error_bar(
    s: &mut String,
    taken: &mut Vec<Rect>,
    color: &str,
    horizontal: bool,
    at: f64,
    lo: f64,
    hi: f64,
) {
    let (a, b) = (lo.min(hi), lo.max(hi));
    let (d, rect) = if horizontal {
        let d = format!(
            "M{a} {c}H{b}M{a} {t}V{u}M{b} {t}V{u}",
            a = r1(lo),
            b = r1(hi),
            c = r1(at),
            t = r1(at - 4.0),
            u = r1(at + 4.0)
        );
        (d, Rect { x0: a - 1.0, y0: at - 5.0, x1: b + 1.0, y1: at + 5.0 })
    } else {
        let d = format!(
            "M{c} {lo}V{hi}M{l} {lo}H{r}M{l} {hi}H{r}",
            c = r1(at),
            l = r1(at - 4.0),
            r = r1(at + 4.0),
            lo = r1(lo),
            hi = r1(hi)
        );
        (d, Rect { x0: at - 5.0, y0: a - 1.0, x1: at + 5.0, y1: b + 1.0 })
    };
    taken.push(rect);
    let _ =
        writeln!(s, "<path class=\"ci\" d=\"{d}\" stroke=\"{color}\" stroke-width=\"1.3\" fill=\"none\"/>");
}

/// Tick (or category) labels of an axis at their positions.
fn axis_labels(axis: &Axis, m: &Mapped) -> Vec<(f64, String)> {
    if axis.categories.is_empty() {
        tick_labels(m, axis.ticks)
    } else {
        axis.categories.iter().enumerate().map(|(i, c)| (i as f64, c.clone())).collect()
    }
}

/// Axis-aligned box for label collision tests.
#[derive(Clone, Copy)]
struct Rect {
    x0: f64,
    y0: f64,
    x1: f64,
    y1: f64,
}

impl Rect {
    fn overlaps(&self, o: &Rect) -> bool {
        self.x0 < o.x1 && o.x0 < self.x1 && self.y0 < o.y1 && o.y0 < self.y1
    }
}

/// Estimated width of `text` at the chart font size (generous: labels must never be cut).
fn text_width(text: &str) -> f64 {
    text.chars().count() as f64 * CHAR_W
}

/// The opening of a marker's SVG element centred at (cx, cy), without its paint and end.
pub(super) fn marker_shape(marker: Marker, cx: f64, cy: f64) -> String {
    match marker {
        Marker::Circle => format!("<circle cx=\"{}\" cy=\"{}\" r=\"4.5\"", r1(cx), r1(cy)),
        Marker::Square => {
            format!("<rect x=\"{}\" y=\"{}\" width=\"8\" height=\"8\"", r1(cx - 4.0), r1(cy - 4.0))
        }
        Marker::Triangle => format!(
            "<path d=\"M{} {}L{} {}L{} {}Z\"",
            r1(cx),
            r1(cy - 5.5),
            r1(cx + 5.0),
            r1(cy + 4.0),
            r1(cx - 5.0),
            r1(cy + 4.0)
        ),
        Marker::Diamond => format!(
            "<path d=\"M{} {}L{} {}L{} {}L{} {}Z\"",
            r1(cx),
            r1(cy - 6.0),
            r1(cx + 6.0),
            r1(cy),
            r1(cx),
            r1(cy + 6.0),
            r1(cx - 6.0),
            r1(cy)
        ),
        // Invisible but hoverable: the point still carries its tooltip.
        Marker::None => format!("<circle cx=\"{}\" cy=\"{}\" r=\"3\" fill-opacity=\"0\"", r1(cx), r1(cy)),
    }
}

impl Chart {
    /// Whether the chart has at least one drawable point.
    pub fn has_data(&self) -> bool {
        self.series.iter().any(|s| s.points.iter().any(|p| self.drawable(p)))
    }

    fn drawable(&self, p: &Point) -> bool {
        let ok = |v: f64, axis: &Axis| v.is_finite() && (axis.scale == Scale::Linear || v > 0.0);
        ok(p.x, &self.x) && ok(p.y, &self.y)
    }

    /// Render as a standalone SVG element (also valid inline in HTML).
    pub fn to_svg(&self) -> String {
        let (plot_w, plot_h) = self.plot_size;
        let with_ci = |v: f64, p: &Point| p.y_ci.map_or(vec![v], |ci| vec![v, ci[0], ci[1]]);
        let forest = self.horizontal_intervals();
        let (x_lo, x_hi) = self.domain(&self.x, |p| if forest { with_ci(p.x, p) } else { vec![p.x] });
        let (y_lo, y_hi) = self.domain(&self.y, |p| if forest { vec![p.y] } else { with_ci(p.y, p) });
        // Margins fit the tick labels: the widest y label plus the y title band on the
        // left, half the last x label on the right.
        let probe = |scale, lo, hi| Mapped { scale, lo, hi, px_lo: 0.0, px_hi: 1.0 };
        let y_label_w = axis_labels(&self.y, &probe(self.y.scale, y_lo, y_hi))
            .iter()
            .map(|l| text_width(&l.1))
            .fold(0.0, f64::max);
        let last_x_w =
            axis_labels(&self.x, &probe(self.x.scale, x_lo, x_hi)).last().map_or(0.0, |l| text_width(&l.1));
        let y_title = if self.y.label.is_empty() { 0.0 } else { 24.0 };
        let left = EDGE + y_title + y_label_w;
        let right = (last_x_w / 2.0 + 8.0).max(16.0);
        // The chart is at least as wide as its title and its widest legend entry, so no text
        // is ever cut (the room goes to the right margin: the plot keeps its shape).
        let title_w = text_width(&self.title) * TITLE_SIZE / FONT_SIZE * 1.08;
        let legend_w = self.legend_entries().iter().map(|e| legend::entry_width(&e.name)).fold(0.0, f64::max);
        let needed = (2.0 * EDGE + title_w).max(EDGE + legend_w + 8.0);
        let right = right + (needed - (left + plot_w + right)).max(0.0);
        let width = left + plot_w + right;
        let legend = self.legend_layout(width);
        let legend_h = legend.last().map_or(0.0, |item| item.1 + LEGEND_ROW);
        let height = MARGIN_TOP + plot_h + AXIS_SPACE + legend_h + 6.0;
        let xm = Mapped { scale: self.x.scale, lo: x_lo, hi: x_hi, px_lo: left, px_hi: left + plot_w };
        let ym =
            Mapped { scale: self.y.scale, lo: y_lo, hi: y_hi, px_lo: MARGIN_TOP + plot_h, px_hi: MARGIN_TOP };
        let id = &self.id;
        let mut s = String::new();
        let _ = writeln!(
            s,
            "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"chart\" id=\"{id}\" viewBox=\"0 0 {w} {h}\" \
             width=\"{w}\" height=\"{h}\" role=\"img\" aria-labelledby=\"{id}-title\" \
             font-family=\"{FONT}\" font-size=\"{FONT_SIZE}\">",
            w = r1(width),
            h = r1(height)
        );
        let _ = writeln!(s, "<title id=\"{id}-title\">{}</title>", esc(&self.title));
        let _ = writeln!(s, "<rect width=\"100%\" height=\"100%\" fill=\"#ffffff\"/>");
        let _ = writeln!(
            s,
            "<text x=\"{}\" y=\"22\" font-size=\"{TITLE_SIZE}\" font-weight=\"600\" fill=\"#1a1a1a\">{}</text>",
            r1(EDGE),
            esc(&self.title)
        );
        let _ = writeln!(
            s,
            "<clipPath id=\"{id}-clip\"><rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\"/></clipPath>",
            r1(left - 6.0),
            r1(MARGIN_TOP - 6.0),
            r1(plot_w + 12.0),
            r1(plot_h + 12.0)
        );
        self.draw_axes(&mut s, &xm, &ym);
        let _ = writeln!(s, "<g clip-path=\"url(#{id}-clip)\">");
        let mut taken: Vec<Rect> = Vec::new();
        for series in &self.series {
            self.draw_series(&mut s, series, &xm, &ym, &mut taken);
        }
        self.draw_labels(&mut s, &xm, &ym, &mut taken);
        s.push_str("</g>\n");
        self.draw_legend(&mut s, &legend, MARGIN_TOP + plot_h + AXIS_SPACE + 4.0);
        s.push_str("</svg>\n");
        s
    }

    /// Whether intervals are horizontal: a forest plot (categorical y axis, value on x).
    fn horizontal_intervals(&self) -> bool {
        !self.y.categories.is_empty()
    }

    /// Data range of an axis, widened to whole decades (log) or nice steps (linear).
    fn domain(&self, axis: &Axis, values: impl Fn(&Point) -> Vec<f64>) -> (f64, f64) {
        if !axis.categories.is_empty() {
            // Half a slot of room around the first and last category; on the y axis the
            // range runs downwards so the first category is at the top.
            let n = axis.categories.len() as f64;
            return if std::ptr::eq(axis, &self.y) { (n - 0.5, -0.5) } else { (-0.5, n - 0.5) };
        }
        if let Some(range) = axis.range {
            return range;
        }
        let vals: Vec<f64> = self
            .series
            .iter()
            .flat_map(|s| s.points.iter())
            .filter(|p| self.drawable(p))
            .flat_map(&values)
            .filter(|v| v.is_finite() && (axis.scale == Scale::Linear || *v > 0.0))
            .collect();
        let (mut lo, mut hi) =
            vals.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| (a.min(v), b.max(v)));
        if !lo.is_finite() {
            return if axis.scale == Scale::Log { (1.0, 10.0) } else { (0.0, 1.0) };
        }
        match axis.scale {
            Scale::Log => {
                let mut a = 10f64.powf(lo.log10().floor());
                let mut b = 10f64.powf(hi.log10().ceil());
                if b <= a {
                    a /= 10.0;
                    b *= 10.0;
                }
                (a, b)
            }
            Scale::Linear => {
                if axis.include_zero {
                    lo = lo.min(0.0);
                    hi = hi.max(0.0);
                }
                if hi - lo <= f64::EPSILON * hi.abs().max(1.0) {
                    let pad = if hi == 0.0 { 1.0 } else { hi.abs() * 0.1 };
                    lo -= pad;
                    hi += pad;
                }
                let step = nice_step((hi - lo) / 6.0);
                ((lo / step).floor() * step, (hi / step).ceil() * step)
            }
        }
    }

    fn draw_axes(&self, s: &mut String, xm: &Mapped, ym: &Mapped) {
        let (x0, x1, y0, y1) = (xm.px_lo, xm.px_hi, ym.px_lo, ym.px_hi);
        s.push_str("<g fill=\"#333333\">\n");
        for (v, label) in axis_labels(&self.x, xm) {
            let px = xm.px(v);
            let _ = writeln!(
                s,
                "<line x1=\"{p}\" y1=\"{}\" x2=\"{p}\" y2=\"{}\" stroke=\"#e3e3e3\"/>\
                 <text x=\"{p}\" y=\"{}\" text-anchor=\"middle\">{}</text>",
                r1(y1),
                r1(y0 + 4.0),
                r1(y0 + 21.0),
                esc(&label),
                p = r1(px)
            );
        }
        for (v, label) in axis_labels(&self.y, ym) {
            let py = ym.px(v);
            let _ = writeln!(
                s,
                "<line x1=\"{}\" y1=\"{p}\" x2=\"{}\" y2=\"{p}\" stroke=\"#e3e3e3\"/>\
                 <text x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>",
                r1(x0 - 4.0),
                r1(x1),
                r1(x0 - 8.0),
                r1(py + 4.0),
                esc(&label),
                p = r1(py)
            );
        }
        let _ = writeln!(
            s,
            "<path d=\"M{} {}V{}H{}\" fill=\"none\" stroke=\"#333333\"/>",
            r1(x0),
            r1(y1),
            r1(y0),
            r1(x1)
        );
        let _ = writeln!(
            s,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text>",
            r1((x0 + x1) / 2.0),
            r1(y0 + 42.0),
            esc(&self.x.label)
        );
        if !self.y.label.is_empty() {
            let _ = writeln!(
                s,
                "<text transform=\"translate({} {}) rotate(-90)\" text-anchor=\"middle\">{}</text>",
                r1(EDGE + 10.0),
                r1((y0 + y1) / 2.0),
                esc(&self.y.label)
            );
        }
        s.push_str("</g>\n");
    }

    fn draw_series(&self, s: &mut String, series: &Series, xm: &Mapped, ym: &Mapped, taken: &mut Vec<Rect>) {
        let pts: Vec<&Point> = series.points.iter().filter(|p| self.drawable(p)).collect();
        if pts.is_empty() {
            return;
        }
        let color = esc(&series.color);
        let _ = writeln!(s, "<g class=\"series\" data-series=\"{}\">", esc(&series.name));
        if series.line != Line::None && pts.len() > 1 {
            let mut d = String::new();
            for (i, p) in pts.iter().enumerate() {
                let _ = write!(d, "{}{} {}", if i == 0 { "M" } else { "L" }, r1(xm.px(p.x)), r1(ym.px(p.y)));
            }
            let dash = series.line.dasharray();
            let _ = writeln!(
                s,
                "<path class=\"line\" d=\"{d}\" fill=\"none\" stroke=\"{color}\" stroke-width=\"2\"{dash}/>"
            );
            // Point labels keep off the lines too: every few pixels along each segment is taken.
            for w in pts.windows(2) {
                let (x0, y0, x1, y1) = (xm.px(w[0].x), ym.px(w[0].y), xm.px(w[1].x), ym.px(w[1].y));
                let steps = ((x1 - x0).hypot(y1 - y0) / 6.0).ceil().max(1.0) as usize;
                for k in 0..=steps {
                    let f = k as f64 / steps as f64;
                    let (x, y) = (x0 + (x1 - x0) * f, y0 + (y1 - y0) * f);
                    taken.push(Rect { x0: x - 2.0, y0: y - 2.0, x1: x + 2.0, y1: y + 2.0 });
                }
            }
        }
        for p in &pts {
            let (cx, cy) = (xm.px(p.x), ym.px(p.y));
            let value_scale = if self.horizontal_intervals() { self.x.scale } else { self.y.scale };
            if let Some([lo, hi]) = p.y_ci.filter(|ci| {
                ci[0].is_finite() && ci[1].is_finite() && (value_scale == Scale::Linear || ci[0] > 0.0)
            }) {
                if self.horizontal_intervals() {
                    error_bar(s, taken, &color, true, cy, xm.px(lo), xm.px(hi));
                } else {
                    error_bar(s, taken, &color, false, cx, ym.px(lo), ym.px(hi));
                }
            }
            let shape = marker_shape(series.marker, cx, cy);
            let paint = if series.marker == Marker::None {
                format!(" fill=\"{color}\"")
            } else {
                format!(" fill=\"{color}\" stroke=\"#ffffff\" stroke-width=\"1\"")
            };
            let _ = writeln!(
                s,
                "{shape} class=\"pt\"{paint}><title>{}</title></{}>",
                esc(&p.tooltip),
                tag(&shape)
            );
            if series.marker != Marker::None {
                taken.push(Rect { x0: cx - 6.0, y0: cy - 6.0, x1: cx + 6.0, y1: cy + 6.0 });
            }
        }
        s.push_str("</g>\n");
    }

    /// Point labels, each placed at the first of eight positions around its marker that
    /// overlaps no marker and no label placed before it (else the least crowded one).
    fn draw_labels(&self, s: &mut String, xm: &Mapped, ym: &Mapped, taken: &mut Vec<Rect>) {
        let bounds = Rect { x0: xm.px_lo, y0: ym.px_hi, x1: xm.px_hi, y1: ym.px_lo };
        for series in &self.series {
            for p in series.points.iter().filter(|p| self.drawable(p)) {
                let Some(label) = &p.label else { continue };
                let (cx, cy) = (xm.px(p.x), ym.px(p.y));
                let w = label.chars().count() as f64 * CHAR_W;
                let h = FONT_SIZE + 2.0;
                let candidates = [
                    (8.0, -4.0),
                    (8.0, 12.0),
                    (-8.0 - w, -4.0),
                    (-8.0 - w, 12.0),
                    (-w / 2.0, -10.0),
                    (-w / 2.0, 20.0),
                    (10.0, 4.0),
                    (-10.0 - w, 4.0),
                ];
                let rect_at = |(dx, dy): (f64, f64)| Rect {
                    x0: cx + dx,
                    y0: cy + dy - h + 3.0,
                    x1: cx + dx + w,
                    y1: cy + dy + 3.0,
                };
                let inside = |r: &Rect| {
                    r.x0 >= bounds.x0 && r.x1 <= bounds.x1 && r.y0 >= bounds.y0 && r.y1 <= bounds.y1
                };
                let clashes =
                    |r: &Rect| taken.iter().filter(|t| t.overlaps(r)).count() + usize::from(!inside(r)) * 2;
                let best =
                    candidates.iter().copied().min_by_key(|&c| clashes(&rect_at(c))).unwrap_or(candidates[0]);
                let rect = rect_at(best);
                taken.push(rect);
                let _ = writeln!(
                    s,
                    "<text class=\"label\" x=\"{}\" y=\"{}\" fill=\"#1a1a1a\" stroke=\"#ffffff\" stroke-width=\"3\" \
                     paint-order=\"stroke\">{}</text>",
                    r1(cx + best.0),
                    r1(cy + best.1),
                    esc(label)
                );
            }
        }
    }
}

/// The element name of a shape string (`<circle ...` -> `circle`).
fn tag(shape: &str) -> &str {
    shape.trim_start_matches('<').split(' ').next().unwrap_or("g")
}

/// Escape text for XML/HTML content and attribute values.
pub fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for ch in text.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(ch),
        }
    }
    out
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    fn chart(scale: Scale) -> Chart {
        Chart {
            id: "t".into(),
            title: "T <&>".into(),
            x: Axis::new("pool", Scale::Log, Ticks::Count),
            y: Axis::new("recall", scale, Ticks::Percent),
            series: vec![Series {
                name: "random".into(),
                color: PALETTE[0].into(),
                line: Line::Solid,
                marker: Marker::Circle,
                points: vec![
                    Point { x: 10.0, y: 0.5, y_ci: Some([0.4, 0.6]), label: None, tooltip: "N=10".into() },
                    Point {
                        x: 10_000.0,
                        y: 0.005,
                        y_ci: None,
                        label: Some("ε=1".into()),
                        tooltip: "N=10,000".into(),
                    },
                ],
            }],
            plot_size: (500.0, 280.0),
            legend: None,
        }
    }

    #[test]
    fn svg_has_markers_tooltips_legend_and_escaped_text() {
        let svg = chart(Scale::Log).to_svg();
        assert!(svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""));
        assert_eq!(svg.matches("class=\"pt\"").count(), 2);
        assert!(svg.contains("<title>N=10,000</title>"));
        assert!(svg.contains("T &lt;&amp;&gt;"));
        assert!(!svg.contains("T <&>"));
        assert!(svg.contains(">random</text>"), "legend entry");
        assert!(svg.contains(">ε=1</text>"), "point label");
        assert!(svg.contains("class=\"ci\""), "error bar");
        // Fitted log y range: 0.004 .. 0.6 -> 0.001 .. 1, ticks 0.1% .. 100%.
        assert!(svg.contains(">0.1%</text>") && svg.contains(">100%</text>"), "{svg}");
    }

    #[test]
    fn non_positive_values_are_not_drawn_on_log_axes() {
        let mut c = chart(Scale::Log);
        c.series[0].points[0].y = 0.0;
        let svg = c.to_svg();
        assert_eq!(svg.matches("class=\"pt\"").count(), 1);
        c.series[0].points[1].y = -1.0;
        assert!(!c.has_data());
    }

    /// Check that tags nest properly (enough for generated markup: attribute values never
    /// contain `>` because they are escaped).
    pub(crate) fn assert_balanced(markup: &str) {
        let mut stack: Vec<String> = Vec::new();
        let mut rest = markup;
        while let Some(start) = rest.find('<') {
            let end = rest[start..].find('>').expect("unclosed tag") + start;
            let tag = &rest[start + 1..end];
            rest = &rest[end + 1..];
            if tag.starts_with('!') || tag.starts_with('?') || tag.ends_with('/') {
                continue;
            }
            let name: String =
                tag.trim_start_matches('/').chars().take_while(|c| c.is_alphanumeric()).collect();
            if ["meta", "br", "hr", "img", "link", "input"].contains(&name.to_ascii_lowercase().as_str()) {
                continue;
            }
            if tag.starts_with('/') {
                assert_eq!(stack.pop().as_deref(), Some(name.as_str()), "mismatched </{name}>");
            } else {
                stack.push(name);
            }
        }
        assert!(stack.is_empty(), "unclosed: {stack:?}");
    }

    fn width_of(svg: &str) -> f64 {
        svg.split("width=\"").nth(1).unwrap().split('"').next().unwrap().parse().unwrap()
    }

    #[test]
    fn forest_plots_draw_categories_top_down_with_horizontal_intervals() {
        let mut c = chart(Scale::Linear);
        c.x = Axis::new("Recall@1", Scale::Linear, Ticks::Percent).from_zero();
        c.y = Axis::categorical("", vec!["sex: F".into(), "sex: M".into()]);
        c.series[0].line = Line::None;
        c.series[0].points = vec![
            Point { x: 0.3, y: 0.0, y_ci: Some([0.2, 0.4]), label: None, tooltip: "F".into() },
            Point { x: 0.5, y: 1.0, y_ci: Some([0.45, 0.55]), label: None, tooltip: "M".into() },
        ];
        let svg = c.to_svg();
        assert!(svg.contains(">sex: F</text>") && svg.contains(">sex: M</text>"), "{svg}");
        let cy = |tip: &str| -> f64 {
            let at = svg.find(&format!("<title>{tip}</title>")).unwrap();
            let marker = &svg[svg[..at].rfind("<circle").unwrap()..at];
            marker.split("cy=\"").nth(1).unwrap().split('"').next().unwrap().parse().unwrap()
        };
        assert!(cy("F") < cy("M"), "the first category is on top");
        // Each interval is one horizontal stroke at its row's height (plus two end ticks).
        let ci: Vec<&str> =
            svg.split("class=\"ci\" d=\"").skip(1).map(|s| s.split('"').next().unwrap()).collect();
        assert_eq!(ci.len(), 2);
        for (d, tip) in ci.iter().zip(["F", "M"]) {
            let y: f64 = d.split(' ').nth(1).unwrap().split('H').next().unwrap().parse().unwrap();
            assert!((y - cy(tip)).abs() < 0.11, "{d} not at row {tip}");
            assert!(d.contains('H') && d.matches('V').count() == 2, "{d}");
        }
        // The x range covers the intervals; no y-axis title is drawn for an empty label.
        assert!(svg.contains(">60%</text>") || svg.contains(">50%</text>"), "{svg}");
        assert!(!svg.contains("rotate(-90)"));
    }

    #[test]
    fn charts_widen_to_fit_their_title_and_legend() {
        let narrow = chart(Scale::Log);
        let base = width_of(&narrow.to_svg());
        let mut long = narrow.clone();
        long.series[0].name = "x".repeat(120);
        let svg = long.to_svg();
        assert!(width_of(&svg) >= EDGE + legend::entry_width(&long.series[0].name) + 8.0 - 0.05);
        assert!(width_of(&svg) > base);
        let mut titled = narrow.clone();
        titled.title = "T".repeat(100);
        assert!(width_of(&titled.to_svg()) >= 100.0 * CHAR_W * TITLE_SIZE / FONT_SIZE);
        // The plot keeps its size: the room goes to the right margin.
        let axis_end = |svg: &str| -> String {
            svg.split("<path d=\"M").nth(1).unwrap().split('"').next().unwrap().to_string()
        };
        assert_eq!(axis_end(&narrow.to_svg()), axis_end(&svg));
    }

    #[test]
    fn svg_tags_nest() {
        assert_balanced(&chart(Scale::Linear).to_svg());
        assert_balanced(&chart(Scale::Log).to_svg());
    }
}
