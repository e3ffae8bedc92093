//! Axis arithmetic of the charts: data ranges mapped to pixels, tick positions (decades
//! on log axes, 1-2-5 steps on linear ones), tick labels with the decimals their step
//! needs, and the text helpers every chart shares.

use super::{Scale, Ticks};

/// A fitted axis: data range mapped to pixels.
pub(super) struct Mapped {
    pub(super) scale: Scale,
    pub(super) lo: f64,
    pub(super) hi: f64,
    pub(super) px_lo: f64,
    pub(super) px_hi: f64,
}

impl Mapped {
    fn t(&self, v: f64) -> f64 {
        match self.scale {
            Scale::Linear => v,
            Scale::Log => v.log10(),
        }
    }

    pub(super) fn px(&self, v: f64) -> f64 {
        let (a, b) = (self.t(self.lo), self.t(self.hi));
        self.px_lo + (self.t(v) - a) / (b - a) * (self.px_hi - self.px_lo)
    }
}

/// 1, 2 or 5 times a power of ten, at least `raw`.
pub(super) fn nice_step(raw: f64) -> f64 {
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
pub(super) fn ticks(m: &Mapped) -> Vec<f64> {
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
pub(super) fn tick_labels(m: &Mapped, ticks: Ticks) -> Vec<(f64, String)> {
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
                (_, Ticks::Count) if shown >= 1.0 && shown.fract() == 0.0 => crate::report::fmt::count(shown),
                (Some(d), _) => format!("{shown:.d$}"),
                (None, _) => {
                    let s = crate::report::fmt::sig(shown, 3);
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
pub(super) fn r1(v: f64) -> String {
    let r = (v * 10.0).round() / 10.0;
    if r.fract() == 0.0 {
        format!("{}", r as i64)
    } else {
        format!("{r:.1}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
