//! The report's charts, built from the [`ReportModel`](super::ReportModel): per model
//! Recall@1 vs pool size with the exact expected curve and a subgroup forest plot, lift vs
//! pool size across models (`relink`), CMC and verification ROC (re-ID), attribute ROC, and
//! the privacy-utility frontier (mitigation). Every plotted value is a number copied from the audit JSON; the
//! chance line is the audits' own `chance_at_1`, not 1/N recomputed here.

use super::doc::Figure;
use super::fmt;
use super::model::{Attributes, Epsilon, Mitigate, Pool, Reid, Relink};

mod relink;

use super::svg::{Axis, Chart, Line, Marker, Point, Scale, Series, Ticks, PALETTE, REFERENCE};
pub use relink::{lift_vs_pool, recall_vs_pool, subgroup_forest, subgroup_keys, subgroup_value_order};

/// Most ROC points drawn per curve; denser curves are thinned (the curve keeps its shape).
const MAX_ROC_POINTS: usize = 400;

/// Pool size the headline and the frontier prefer (paper 1's N = 10,000).
pub const HEADLINE_POOL: u64 = 10_000;

fn point(x: f64, y: f64, y_ci: Option<[f64; 2]>, tooltip: String) -> Point {
    Point { x, y, y_ci, label: None, tooltip }
}

fn ci_text(ci: Option<[f64; 2]>) -> String {
    ci.map(|ci| format!(" (95% CI {})", fmt::pct_interval(ci))).unwrap_or_default()
}

/// A chart id that is unique in the page and safe as a file name: `KIND-INDEX-slug`, the
/// slug being the model name's ASCII letters and digits (others become `-`).
pub fn chart_id(kind: &str, index: usize, name: &str) -> String {
    let mut slug = String::new();
    for ch in name.chars().flat_map(char::to_lowercase) {
        if ch.is_ascii_alphanumeric() {
            slug.push(ch);
        } else if !slug.ends_with('-') {
            slug.push('-');
        }
    }
    let slug: String = slug.trim_matches('-').chars().take(40).collect();
    let slug = slug.trim_end_matches('-');
    if slug.is_empty() {
        format!("{kind}-{}", index + 1)
    } else {
        format!("{kind}-{}-{slug}", index + 1)
    }
}

/// `nearest neighbour` or the trained attacker's name.
pub fn attacker_name(r: &Reid) -> String {
    r.attacker.clone().unwrap_or_else(|| "nearest neighbour".to_string())
}

/// Style of a re-ID series: colour by model, line style (and CMC marker) by attacker —
/// nearest neighbour solid with circles, the trained attacker dashed with squares.
fn reid_style(entries: &[&Reid], r: &Reid) -> (usize, Line, Marker) {
    let mut models: Vec<&str> = Vec::new();
    for e in entries {
        if !models.contains(&e.model.as_str()) {
            models.push(&e.model);
        }
    }
    let color = models.iter().position(|m| *m == r.model).unwrap_or(0);
    match r.attacker.as_deref() {
        None => (color, Line::Solid, Marker::Circle),
        Some("linear-metric") => (color, Line::Dashed, Marker::Square),
        Some(_) => (color, Line::Dotted, Marker::Triangle),
    }
}

/// Names of re-ID series: the attacker, prefixed by the model when several models are shown
/// and followed by the view when they differ.
fn reid_names(entries: &[&Reid]) -> Vec<String> {
    let several_models = entries.iter().any(|r| r.model != entries[0].model);
    let several_views = entries.iter().any(|r| r.view != entries[0].view);
    entries
        .iter()
        .map(|r| {
            let mut name = attacker_name(r);
            if several_views {
                name.push_str(&format!(" ({})", r.view));
            }
            if several_models {
                name = format!("{}: {name}", r.model);
            }
            name
        })
        .collect()
}

/// CMC curve: identification rate vs rank, one series per re-ID entry.
pub fn cmc(entries: &[&Reid]) -> Option<Figure> {
    let names = reid_names(entries);
    let series: Vec<Series> = entries
        .iter()
        .zip(names)
        .map(|(r, name)| Series {
            color: PALETTE[reid_style(entries, r).0 % PALETTE.len()].to_string(),
            line: reid_style(entries, r).1,
            marker: reid_style(entries, r).2,
            points: r
                .cmc
                .iter()
                .map(|(rank, fig)| {
                    let tip = format!("{name}, rank {rank}: {}{}", fmt::pct(fig.value), ci_text(fig.ci95));
                    point(*rank as f64, fig.value, fig.ci95, tip)
                })
                .collect(),
            name,
        })
        .collect();
    let max_rank = entries.iter().flat_map(|r| r.cmc.iter().map(|c| c.0)).max().unwrap_or(1) as f64;
    let chart = Chart {
        id: "reid-cmc".to_string(),
        title: "Re-identification: CMC curve".to_string(),
        x: Axis::new("Rank k", Scale::Linear, Ticks::Plain).range(0.0, max_rank.max(1.0)),
        y: Axis::new("Same patient within the top k", Scale::Linear, Ticks::Percent).from_zero(),
        series,
        plot_size: (540.0, 300.0),
        legend: None,
    };
    chart.has_data().then(|| Figure {
        chart,
        caption:
            "Share of queries whose k nearest other images include one of the same patient (bars: 95% CI)."
                .to_string(),
    })
}

/// Keep at most [`MAX_ROC_POINTS`] points of a curve: points closer than the spacing to
/// the last kept point are skipped (the first and last point are always kept).
fn thin(points: &[(f64, f64)]) -> Vec<(f64, f64)> {
    if points.len() <= MAX_ROC_POINTS {
        return points.to_vec();
    }
    let step = 2.0 / MAX_ROC_POINTS as f64;
    let mut out = vec![points[0]];
    for &p in &points[1..points.len() - 1] {
        let last = out[out.len() - 1];
        if (p.0 - last.0).abs() + (p.1 - last.1).abs() >= step {
            out.push(p);
        }
    }
    out.push(points[points.len() - 1]);
    out
}

/// A named ROC curve with its AUROC, if reported, and its style (palette index, line).
type Curve<'a> = (String, &'a [(f64, f64)], Option<f64>, (usize, Line));

fn roc_chart(id: &str, title: &str, curves: Vec<Curve>) -> Option<Figure> {
    let mut series: Vec<Series> = curves
        .into_iter()
        .enumerate()
        .filter(|(_, c)| !c.1.is_empty())
        .map(|(_, (name, pts, auroc, (color, line)))| {
            let legend = match auroc {
                Some(a) => format!("{name} (AUROC {})", fmt::score(a)),
                None => name.clone(),
            };
            Series {
                color: PALETTE[color % PALETTE.len()].to_string(),
                line,
                marker: Marker::None,
                points: thin(pts)
                    .into_iter()
                    .map(|(f, t)| {
                        point(f, t, None, format!("{name}: FPR {}, TPR {}", fmt::score(f), fmt::score(t)))
                    })
                    .collect(),
                name: legend,
            }
        })
        .collect();
    if series.is_empty() {
        return None;
    }
    series.push(Series {
        name: "chance".to_string(),
        color: REFERENCE.to_string(),
        line: Line::Dashed,
        marker: Marker::None,
        points: vec![
            point(0.0, 0.0, None, "chance".to_string()),
            point(1.0, 1.0, None, "chance".to_string()),
        ],
    });
    let chart = Chart {
        id: id.to_string(),
        title: title.to_string(),
        x: Axis::new("False positive rate", Scale::Linear, Ticks::Plain).range(0.0, 1.0),
        y: Axis::new("True positive rate", Scale::Linear, Ticks::Plain).range(0.0, 1.0),
        series,
        plot_size: (300.0, 300.0),
        legend: None,
    };
    Some(Figure { chart, caption: "ROC curve as reported by the audit; dashed: chance.".to_string() })
}

/// Same/different-patient verification ROC, one curve per re-ID entry with points.
pub fn verification_roc(entries: &[&Reid]) -> Option<Figure> {
    let names = reid_names(entries);
    let curves = entries
        .iter()
        .zip(names)
        .map(|(r, n)| {
            let (color, line, _) = reid_style(entries, r);
            (n, r.roc.as_slice(), r.verification_auroc.map(|f| f.value), (color, line))
        })
        .collect();
    roc_chart("reid-roc", "Re-identification: verification ROC", curves)
}

/// Attribute-inference ROC curves, for the attributes whose audit wrote points (named by
/// model when several audits are shown).
pub fn attribute_roc(audits: &[&Attributes]) -> Option<Figure> {
    // One audit: a colour per attribute. Several: a colour per audit (model), a line style
    // per attribute (sex solid, age dashed, race dotted).
    let several = audits.len() > 1;
    let curves = audits
        .iter()
        .enumerate()
        .flat_map(|(i, a)| {
            let mut targets: Vec<_> = a.targets.iter().collect();
            targets.sort_by_key(|t| attribute_order(&t.name));
            targets.into_iter().enumerate().map(move |(k, t)| {
                let name = if several { format!("{}: {}", a.model, t.name) } else { t.name.clone() };
                let style = if several {
                    (i, [Line::Solid, Line::Dashed, Line::Dotted][k % 3])
                } else {
                    (k, Line::Solid)
                };
                (name, t.roc.as_slice(), t.auroc.map(|f| f.value), style)
            })
        })
        .collect();
    roc_chart("attributes-roc", "Attribute inference: ROC", curves)
}

/// Display order of attributes: sex, age, race, then others alphabetically.
pub fn attribute_order(name: &str) -> (usize, String) {
    (["sex", "age", "race"].iter().position(|n| *n == name).unwrap_or(3), name.to_string())
}

/// Display name and order of a mitigation cohort key.
pub fn cohort_name(key: &str) -> (usize, String) {
    match key {
        "members" | "train" => (0, "members (train)".to_string()),
        "held_out" | "heldout" | "held-out" | "test" => (1, "held-out (test)".to_string()),
        "external" => (2, "external".to_string()),
        other => (3, other.replace('_', " ")),
    }
}

/// The pool the frontier uses: [`HEADLINE_POOL`] when every cohort of every point has a
/// random pool of that size, else the largest random pool size they all share, else the
/// full database when they all have one.
pub fn frontier_pool(m: &Mitigate) -> Option<Pool> {
    let all: Vec<&Relink> = m
        .points
        .iter()
        .chain(m.audited.iter())
        .chain(m.warm_start.iter())
        .flat_map(|p| p.cohorts.iter().map(|c| &c.relink))
        .collect();
    if all.is_empty() {
        return None;
    }
    let mut common: Vec<u64> =
        all[0].pools.iter().filter(|p| p.kind == "random").map(|p| p.pool_size).collect();
    common.retain(|n| all.iter().all(|r| r.random_pool(*n).is_some_and(|p| p.recall_at_1.is_some())));
    if common.contains(&HEADLINE_POOL) {
        Some(Pool::Size(HEADLINE_POOL))
    } else if let Some(&n) = common.iter().max() {
        Some(Pool::Size(n))
    } else if all.iter().all(|r| r.full.as_ref().is_some_and(|f| f.recall_at_1.is_some())) {
        Some(Pool::Full)
    } else {
        None
    }
}

/// Recall@1 of a relink at a pool (random pools, or the full database).
pub fn recall_at(r: &Relink, pool: Pool) -> Option<super::model::Figure> {
    match pool {
        Pool::Size(n) => r.random_pool(n).and_then(|p| p.recall_at_1),
        Pool::Full => r.full.as_ref().and_then(|f| f.recall_at_1),
    }
}

/// Label of an epsilon: `ε=0.34`, `ε=∞ (non-private)`.
pub fn epsilon_label(e: &Epsilon) -> String {
    match e {
        Epsilon::Finite(v) => format!("ε={}", fmt::epsilon(*v)),
        Epsilon::Infinite => "ε=∞".to_string(),
    }
}

/// Privacy-utility frontier: x = utility macro AUROC, y = relink Recall@1 at the frontier
/// pool, one point per epsilon, one series per cohort (members / held-out / external), and
/// the audited model and the public warm start as marker-only reference series (one point
/// per cohort).
pub fn frontier(m: &Mitigate, index: usize) -> Option<Figure> {
    let pool = frontier_pool(m)?;
    let mut cohorts: Vec<(usize, String, String)> = m
        .points
        .iter()
        .flat_map(|p| p.cohorts.iter().map(|c| c.cohort.clone()))
        .map(|k| {
            let (order, name) = cohort_name(&k);
            (order, name, k)
        })
        .collect();
    cohorts.sort();
    cohorts.dedup();
    let mut points_order: Vec<usize> = (0..m.points.len()).collect();
    // Connect points from the most private to non-private.
    points_order.sort_by(|&a, &b| {
        let key = |e: &Epsilon| match e {
            Epsilon::Finite(v) => *v,
            Epsilon::Infinite => f64::INFINITY,
        };
        key(&m.points[a].epsilon).total_cmp(&key(&m.points[b].epsilon))
    });
    let pool_text = fmt::pool(pool);
    let series: Vec<Series> = cohorts
        .iter()
        .enumerate()
        .map(|(i, (_, name, key))| Series {
            name: name.clone(),
            color: PALETTE[i % PALETTE.len()].to_string(),
            line: Line::Solid,
            marker: [Marker::Circle, Marker::Square, Marker::Triangle, Marker::Diamond][i.min(3)],
            points: points_order
                .iter()
                .filter_map(|&pi| {
                    let p = &m.points[pi];
                    let c = p.cohorts.iter().find(|c| &c.cohort == key)?;
                    let utility = p.utility_for(&c.cohort)?;
                    let recall = recall_at(&c.relink, pool)?;
                    let eps = epsilon_label(&p.epsilon);
                    Some(Point {
                        x: utility.value,
                        y: recall.value,
                        y_ci: recall.ci95,
                        // Label the first series only: the others share the same x per epsilon.
                        label: (i == 0).then(|| eps.clone()),
                        tooltip: format!(
                            "{eps}, {name}: Recall@1 {}{} at N={pool_text}, utility macro AUROC {}",
                            fmt::pct(recall.value),
                            ci_text(recall.ci95),
                            fmt::score(utility.value)
                        ),
                    })
                })
                .collect(),
        })
        .collect();
    let mut series = series;
    let mut caption =
        "One point per privacy budget ε; lower is safer, further right is more useful.".to_string();
    let references = [
        ("audited model", &m.audited, Marker::Diamond),
        ("public warm start", &m.warm_start, Marker::Square),
    ];
    for (name, reference, marker) in references {
        let Some(r) = reference else { continue };
        let points: Vec<Point> = cohorts
            .iter()
            .filter_map(|(_, cohort_name, key)| {
                let c = r.cohorts.iter().find(|c| &c.cohort == key)?;
                let utility = r.utility_for(&c.cohort)?;
                let recall = recall_at(&c.relink, pool)?;
                Some(Point {
                    x: utility.value,
                    y: recall.value,
                    y_ci: recall.ci95,
                    label: Some(format!("{name}, {cohort_name}")),
                    tooltip: format!(
                        "{name}, {cohort_name}: Recall@1 {}{} at N={pool_text}, utility macro AUROC {}",
                        fmt::pct(recall.value),
                        ci_text(recall.ci95),
                        fmt::score(utility.value)
                    ),
                })
            })
            .collect();
        if !points.is_empty() {
            caption.push_str(if name == "audited model" {
                " Black diamonds: the audited model on the same records."
            } else {
                " Grey squares: the public warm start."
            });
            series.push(Series {
                name: name.to_string(),
                color: if name == "audited model" { "#111111".into() } else { "#888888".into() },
                line: Line::None,
                marker,
                points,
            });
        }
    }
    let chart = Chart {
        id: format!("mitigate-frontier-{index}"),
        title: "Mitigation: privacy–utility frontier".to_string(),
        x: Axis::new("Utility: linear-probe macro AUROC (higher is better)", Scale::Linear, Ticks::Plain),
        y: Axis::new(format!("Re-linkage Recall@1 at N={pool_text}"), Scale::Linear, Ticks::Percent)
            .from_zero(),
        series,
        plot_size: (540.0, 300.0),
        legend: None,
    };
    chart.has_data().then_some(Figure { chart, caption })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thinning_keeps_ends_and_caps_points() {
        let dense: Vec<(f64, f64)> =
            (0..=10_000).map(|i| (i as f64 / 10_000.0, (i as f64 / 10_000.0).sqrt())).collect();
        let thinned = thin(&dense);
        assert!(thinned.len() <= MAX_ROC_POINTS + 2, "{}", thinned.len());
        assert_eq!(thinned[0], dense[0]);
        assert_eq!(*thinned.last().unwrap(), *dense.last().unwrap());
        // Every kept point is one of the originals.
        assert!(thinned.iter().all(|p| dense.contains(p)));
        let few = vec![(0.0, 0.0), (1.0, 1.0)];
        assert_eq!(thin(&few), few);
    }
}
