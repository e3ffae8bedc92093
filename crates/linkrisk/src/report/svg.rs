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

/// Okabe–Ito colour-blind-safe palette.
pub const PALETTE: [&str; 7] = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000"];

/// Colour of chance / reference lines.
pub const REFERENCE: &str = "#6b6b6b";

const FONT: &str = "system-ui, -apple-system, 'Segoe UI', Roboto, 'Helvetica Neue', Arial, sans-serif";
const FONT_SIZE: f64 = 13.0;
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
}

impl Axis {
    /// An axis fitted to the data.
    pub fn new(label: impl Into<String>, scale: Scale, ticks: Ticks) -> Axis {
        Axis { label: label.into(), scale, ticks, range: None, include_zero: false }
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
    /// Markers only.
    None,
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

/// A data point, with an optional vertical interval, label and tooltip.
#[derive(Debug, Clone, PartialEq)]
pub struct Point {
    /// x value.
    pub x: f64,
    /// y value.
    pub y: f64,
    /// Vertical interval `[low, high]` drawn as an error bar.
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

/// A fitted axis: data range mapped to pixels.
struct Mapped {
    scale: Scale,
    lo: f64,
    hi: f64,
    px_lo: f64,
    px_hi: f64,
}

impl Mapped {
    fn t(&self, v: f64) -> f64 {
        match self.scale {
            Scale::Linear => v,
            Scale::Log => v.log10(),
        }
    }

    fn px(&self, v: f64) -> f64 {
        let (a, b) = (self.t(self.lo), self.t(self.hi));
        self.px_lo + (self.t(v) - a) / (b - a) * (self.px_hi - self.px_lo)
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
        let (x_lo, x_hi) = self.domain(&self.x, |p| vec![p.x]);
        let (y_lo, y_hi) = self.domain(&self.y, |p| p.y_ci.map_or(vec![p.y], |ci| vec![p.y, ci[0], ci[1]]));
        // Margins fit the tick labels: the widest y label plus the y title band on the
        // left, half the last x label on the right.
        let probe = |scale, lo, hi| Mapped { scale, lo, hi, px_lo: 0.0, px_hi: 1.0 };
        let text_w = |s: &str| s.chars().count() as f64 * CHAR_W;
        let y_label_w = tick_labels(&probe(self.y.scale, y_lo, y_hi), self.y.ticks)
            .iter()
            .map(|l| text_w(&l.1))
            .fold(0.0, f64::max);
        let last_x_w =
            tick_labels(&probe(self.x.scale, x_lo, x_hi), self.x.ticks).last().map_or(0.0, |l| text_w(&l.1));
        let left = EDGE + 24.0 + y_label_w;
        let right = (last_x_w / 2.0 + 8.0).max(16.0);
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
            "<text x=\"{}\" y=\"22\" font-size=\"15\" font-weight=\"600\" fill=\"#1a1a1a\">{}</text>",
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

    /// Data range of an axis, widened to whole decades (log) or nice steps (linear).
    fn domain(&self, axis: &Axis, values: impl Fn(&Point) -> Vec<f64>) -> (f64, f64) {
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
        for (v, label) in tick_labels(xm, self.x.ticks) {
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
        for (v, label) in tick_labels(ym, self.y.ticks) {
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
        let _ = writeln!(
            s,
            "<text transform=\"translate({} {}) rotate(-90)\" text-anchor=\"middle\">{}</text>",
            r1(EDGE + 10.0),
            r1((y0 + y1) / 2.0),
            esc(&self.y.label)
        );
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
            let dash = if series.line == Line::Dashed { " stroke-dasharray=\"6 4\"" } else { "" };
            let _ = writeln!(
                s,
                "<path class=\"line\" d=\"{d}\" fill=\"none\" stroke=\"{color}\" stroke-width=\"2\"{dash}/>"
            );
        }
        for p in &pts {
            let (cx, cy) = (xm.px(p.x), ym.px(p.y));
            if let Some([lo, hi]) = p.y_ci {
                if lo.is_finite() && hi.is_finite() && (self.y.scale == Scale::Linear || lo > 0.0) {
                    let (ylo, yhi) = (ym.px(lo), ym.px(hi));
                    taken.push(Rect {
                        x0: cx - 5.0,
                        y0: yhi.min(ylo) - 1.0,
                        x1: cx + 5.0,
                        y1: yhi.max(ylo) + 1.0,
                    });
                    let _ = writeln!(
                        s,
                        "<path class=\"ci\" d=\"M{a} {ylo}V{yhi}M{l} {ylo}H{r}M{l} {yhi}H{r}\" stroke=\"{color}\" \
                         stroke-width=\"1.3\" fill=\"none\"/>",
                        a = r1(cx),
                        l = r1(cx - 4.0),
                        r = r1(cx + 4.0),
                        ylo = r1(ylo),
                        yhi = r1(yhi)
                    );
                }
            }
            let shape = match series.marker {
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
                Marker::None => {
                    format!("<circle cx=\"{}\" cy=\"{}\" r=\"3\" fill-opacity=\"0\"", r1(cx), r1(cy))
                }
            };
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

    /// The legend's entries: the override, or every series with something drawn.
    fn legend_entries(&self) -> Vec<&Series> {
        match &self.legend {
            Some(entries) => entries.iter().collect(),
            None => self.series.iter().filter(|s| s.points.iter().any(|p| self.drawable(p))).collect(),
        }
    }

    /// Legend items as (x, y, entry index), wrapped into rows below the plot.
    fn legend_layout(&self, width: f64) -> Vec<(f64, f64, usize)> {
        let mut out = Vec::new();
        let (mut x, mut y) = (EDGE, 0.0);
        for (i, series) in self.legend_entries().into_iter().enumerate() {
            let w = 30.0 + series.name.chars().count() as f64 * CHAR_W + 18.0;
            if x + w > width - 8.0 && x > EDGE {
                x = EDGE;
                y += LEGEND_ROW;
            }
            out.push((x, y, i));
            x += w;
        }
        out
    }

    fn draw_legend(&self, s: &mut String, layout: &[(f64, f64, usize)], top: f64) {
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
                let dash = if series.line == Line::Dashed { " stroke-dasharray=\"6 4\"" } else { "" };
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
                Marker::Circle => format!("<circle cx=\"{}\" cy=\"{}\" r=\"4.5\"", r1(mx), r1(cy)),
                Marker::Square => {
                    format!("<rect x=\"{}\" y=\"{}\" width=\"8\" height=\"8\"", r1(mx - 4.0), r1(cy - 4.0))
                }
                Marker::Triangle => format!(
                    "<path d=\"M{} {}L{} {}L{} {}Z\"",
                    r1(mx),
                    r1(cy - 5.5),
                    r1(mx + 5.0),
                    r1(cy + 4.0),
                    r1(mx - 5.0),
                    r1(cy + 4.0)
                ),
                Marker::Diamond => format!(
                    "<path d=\"M{} {}L{} {}L{} {}L{} {}Z\"",
                    r1(mx),
                    r1(cy - 6.0),
                    r1(mx + 6.0),
                    r1(cy),
                    r1(mx),
                    r1(cy + 6.0),
                    r1(mx - 6.0),
                    r1(cy)
                ),
                Marker::None => String::new(),
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

/// The element name of a shape string (`<circle ...` -> `circle`).
fn tag(shape: &str) -> &str {
    shape.trim_start_matches('<').split(' ').next().unwrap_or("g")
}

/// 1, 2 or 5 times a power of ten, at least `raw`.
fn nice_step(raw: f64) -> f64 {
    if raw <= 0.0 || !raw.is_finite() {
        return 1.0;
    }
    let p = 10f64.powf(raw.log10().floor());
    let f = raw / p;
    let m = if f <= 1.0 {
        1.0
    } else if f <= 2.0 {
        2.0
    } else if f <= 5.0 {
        5.0
    } else {
        10.0
    };
    m * p
}

/// Tick positions: decades (plus 2 and 5 when the range spans two decades or fewer) on log
/// axes, nice steps on linear axes.
fn ticks(m: &Mapped) -> Vec<f64> {
    let mut out = Vec::new();
    match m.scale {
        Scale::Log => {
            let (a, b) = (m.lo.log10().floor() as i32, m.hi.log10().ceil() as i32);
            let minor = b - a <= 2;
            for e in a..=b {
                let base = 10f64.powi(e);
                for mult in [1.0, 2.0, 5.0] {
                    if mult > 1.0 && !minor {
                        continue;
                    }
                    let v = base * mult;
                    if v >= m.lo * (1.0 - 1e-9) && v <= m.hi * (1.0 + 1e-9) {
                        out.push(v);
                    }
                }
            }
        }
        Scale::Linear => {
            let step = nice_step((m.hi - m.lo) / 6.0);
            let mut k = (m.lo / step).ceil();
            while k * step <= m.hi + step * 1e-9 {
                out.push(k * step);
                k += 1.0;
            }
        }
    }
    out
}

/// Tick labels for an axis: log ticks are 1, 2 or 5 times a power of ten and print
/// exactly; linear ticks get as many decimals as their step needs (0.7945, not 0.795).
fn tick_labels(m: &Mapped, ticks: Ticks) -> Vec<(f64, String)> {
    let values = self::ticks(m);
    let scale = if ticks == Ticks::Percent { 100.0 } else { 1.0 };
    let decimals = match m.scale {
        Scale::Linear => {
            let step = nice_step((m.hi - m.lo) / 6.0) * scale;
            Some((-step.log10().floor()).max(0.0) as usize)
        }
        Scale::Log => None,
    };
    values
        .into_iter()
        .map(|v| {
            let shown = v * scale;
            let text = match (decimals, ticks) {
                (_, Ticks::Count) if shown >= 1.0 && shown.fract() == 0.0 => super::fmt::count(shown),
                (Some(d), _) => format!("{shown:.d$}"),
                (None, _) => {
                    let s = super::fmt::sig(shown, 3);
                    if s.contains('.') {
                        s.trim_end_matches('0').trim_end_matches('.').to_string()
                    } else {
                        s
                    }
                }
            };
            let text = if text.starts_with('-') && text.trim_start_matches(['-', '0', '.']).is_empty() {
                text[1..].to_string()
            } else {
                text
            };
            (v, if ticks == Ticks::Percent { format!("{text}%") } else { text })
        })
        .collect()
}

/// Round a coordinate to one decimal (keeps the SVG small; sub-pixel precision is enough).
fn r1(v: f64) -> String {
    let r = (v * 10.0).round() / 10.0;
    if r.fract() == 0.0 {
        format!("{}", r as i64)
    } else {
        format!("{r:.1}")
    }
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
    fn log_axes_get_decade_ticks_with_readable_labels() {
        let m = Mapped { scale: Scale::Log, lo: 10.0, hi: 100_000.0, px_lo: 0.0, px_hi: 400.0 };
        let t = ticks(&m);
        assert_eq!(t, vec![10.0, 100.0, 1000.0, 10_000.0, 100_000.0]);
        let labels: Vec<String> = tick_labels(&m, Ticks::Count).into_iter().map(|t| t.1).collect();
        assert_eq!(labels, ["10", "100", "1,000", "10,000", "100,000"]);
        let pct = Mapped { scale: Scale::Log, lo: 1e-5, hi: 1.0, px_lo: 0.0, px_hi: 1.0 };
        let labels: Vec<String> = tick_labels(&pct, Ticks::Percent).into_iter().map(|t| t.1).collect();
        assert_eq!(labels, ["0.001%", "0.01%", "0.1%", "1%", "10%", "100%"]);
        // Equal log steps map to equal pixel steps.
        assert!((m.px(100.0) - m.px(10.0) - 100.0).abs() < 1e-9);
        let narrow = Mapped { scale: Scale::Log, lo: 1.0, hi: 100.0, px_lo: 0.0, px_hi: 1.0 };
        assert_eq!(ticks(&narrow), vec![1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0]);
    }

    #[test]
    fn linear_ticks_are_nice_steps() {
        let m = Mapped { scale: Scale::Linear, lo: 0.0, hi: 60.0, px_lo: 0.0, px_hi: 1.0 };
        assert_eq!(ticks(&m), vec![0.0, 10.0, 20.0, 30.0, 40.0, 50.0, 60.0]);
        assert_eq!(nice_step(0.013), 0.02);
        // Labels carry the decimals the step needs, so neighbours never read the same.
        let auroc = Mapped { scale: Scale::Linear, lo: 0.794, hi: 0.7965, px_lo: 0.0, px_hi: 1.0 };
        let labels: Vec<String> = tick_labels(&auroc, Ticks::Plain).into_iter().map(|t| t.1).collect();
        assert_eq!(labels, ["0.7940", "0.7945", "0.7950", "0.7955", "0.7960", "0.7965"]);
        let share = Mapped { scale: Scale::Linear, lo: 0.0, hi: 0.008, px_lo: 0.0, px_hi: 1.0 };
        let labels: Vec<String> = tick_labels(&share, Ticks::Percent).into_iter().map(|t| t.1).collect();
        assert_eq!(labels, ["0.0%", "0.2%", "0.4%", "0.6%", "0.8%"]);
        assert_eq!(nice_step(7.0), 10.0);
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

    #[test]
    fn svg_tags_nest() {
        assert_balanced(&chart(Scale::Linear).to_svg());
        assert_balanced(&chart(Scale::Log).to_svg());
    }
}
