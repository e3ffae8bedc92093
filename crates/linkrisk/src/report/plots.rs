//! The report's charts, built from the [`ReportModel`]: Recall@1 and lift vs pool size
//! (re-linkage), CMC and verification ROC (re-ID), attribute ROC, and the privacy-utility
//! frontier (mitigation). Every plotted value is a number copied from the audit JSON; the
//! chance line is the audits' own `chance_at_1`, not 1/N recomputed here.

use super::doc::Figure;
use super::fmt;
use super::model::{Epsilon, Mitigate, Pool, Relink, ReportModel};
use super::svg::{Axis, Chart, Line, Marker, Point, Scale, Series, Ticks, PALETTE, REFERENCE};

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

fn prefix(relinks: &[Relink], r: &Relink) -> String {
    if relinks.len() > 1 {
        format!("{}: ", r.name)
    } else {
        String::new()
    }
}

fn kind_name(kind: &str) -> String {
    match kind {
        "random" => "random pools".to_string(),
        "pathology_matched" => "pathology-matched pools".to_string(),
        other => format!("{} pools", other.replace('_', " ")),
    }
}

/// Pool kinds in display order: random, pathology-matched, then others alphabetically.
fn kinds(r: &Relink) -> Vec<String> {
    let mut kinds: Vec<String> = r.pools.iter().map(|p| p.kind.clone()).collect();
    kinds.sort_by_key(|k| (k != "random", k != "pathology_matched", k.clone()));
    kinds.dedup();
    kinds
}

/// With several relink audits, colour encodes the audit and line style the pool kind: the
/// legend then lists each once (audits in colour, kinds in grey) instead of every pair.
fn multi_legend(relinks: &[Relink], chance: &str) -> Option<Vec<Series>> {
    if relinks.len() < 2 {
        return None;
    }
    let entry = |name: String, color: &str, line, marker| Series {
        name,
        color: color.to_string(),
        line,
        marker,
        points: Vec::new(),
    };
    let mut legend: Vec<Series> = relinks
        .iter()
        .enumerate()
        .map(|(i, r)| entry(r.name.clone(), PALETTE[i % PALETTE.len()], Line::Solid, Marker::None))
        .collect();
    let mut all_kinds: Vec<String> = relinks.iter().flat_map(kinds).collect();
    all_kinds.sort_by_key(|k| (k != "random", k != "pathology_matched", k.clone()));
    all_kinds.dedup();
    for (k, kind) in all_kinds.iter().enumerate() {
        let (line, marker) = if k == 0 {
            (Line::Solid, Marker::Circle)
        } else {
            (Line::Dashed, [Marker::Triangle, Marker::Square][(k - 1).min(1)])
        };
        legend.push(entry(kind_name(kind), "#333333", line, marker));
    }
    if relinks.iter().any(|r| r.full.is_some()) {
        legend.push(entry("full database".to_string(), "#333333", Line::None, Marker::Diamond));
    }
    legend.push(entry(chance.to_string(), REFERENCE, Line::Dashed, Marker::None));
    Some(legend)
}

/// Recall@1 (log y) vs pool size (log x): random and pathology-matched pools with their CIs,
/// the full-database point at N = n_gallery, and the chance line from `chance_at_1`.
pub fn recall_vs_pool(relinks: &[Relink]) -> Option<Figure> {
    let mut series = Vec::new();
    let mut chance: Vec<(f64, f64)> = Vec::new();
    for (i, r) in relinks.iter().enumerate() {
        let color = PALETTE[i % PALETTE.len()].to_string();
        let pre = prefix(relinks, r);
        for (k, kind) in kinds(r).iter().enumerate() {
            let mut pools: Vec<_> = r.pools.iter().filter(|p| &p.kind == kind).collect();
            pools.sort_by_key(|p| p.pool_size);
            let points = pools
                .iter()
                .filter_map(|p| {
                    let fig = p.recall_at_1?;
                    let n = p.pool_size as f64;
                    let tip = format!(
                        "{pre}{}, N={}: Recall@1 {}{}",
                        kind_name(kind),
                        fmt::count(n),
                        fmt::pct(fig.value),
                        ci_text(fig.ci95)
                    );
                    Some(point(n, fig.value, fig.ci95, tip))
                })
                .collect();
            series.push(Series {
                name: format!("{pre}{}", kind_name(kind)),
                color: color.clone(),
                line: if k == 0 { Line::Solid } else { Line::Dashed },
                marker: [Marker::Circle, Marker::Triangle, Marker::Square][k.min(2)],
                points,
            });
            for p in &pools {
                if let Some(c) = p.chance_at_1 {
                    chance.push((p.pool_size as f64, c));
                }
            }
        }
        if let (Some(full), Some(n)) = (&r.full, r.n_gallery) {
            if let Some(fig) = full.recall_at_1 {
                let tip = format!(
                    "{pre}full database, N={}: Recall@1 {}{}",
                    fmt::count(n),
                    fmt::pct(fig.value),
                    ci_text(fig.ci95)
                );
                series.push(Series {
                    name: format!("{pre}full database"),
                    color: color.clone(),
                    line: Line::None,
                    marker: Marker::Diamond,
                    points: vec![point(n, fig.value, fig.ci95, tip)],
                });
            }
            if let Some(c) = full.chance_at_1 {
                chance.push((n, c));
            }
        }
    }
    chance.sort_by(|a, b| a.0.total_cmp(&b.0));
    chance.dedup_by(|a, b| a.0 == b.0);
    series.push(Series {
        name: "chance (1/N)".to_string(),
        color: REFERENCE.to_string(),
        line: Line::Dashed,
        marker: Marker::None,
        points: chance
            .iter()
            .map(|&(n, c)| point(n, c, None, format!("chance at N={}: {}", fmt::count(n), fmt::pct(c))))
            .collect(),
    });
    let all_positive = series.iter().flat_map(|s| &s.points).all(|p| p.y > 0.0);
    let chart = Chart {
        id: "relink-recall".to_string(),
        title: "Re-linkage: Recall@1 vs candidate pool size".to_string(),
        x: Axis::new("Candidate pool size N (log scale)", Scale::Log, Ticks::Count),
        y: if all_positive {
            Axis::new("Recall@1 (log scale)", Scale::Log, Ticks::Percent)
        } else {
            Axis::new("Recall@1", Scale::Linear, Ticks::Percent).from_zero()
        },
        series,
        plot_size: (540.0, 300.0),
        legend: multi_legend(relinks, "chance (1/N)"),
    };
    chart.has_data().then(|| Figure {
        chart,
        caption: "Markers: the audit's Recall@1 (bars: 95% CI); dashed grey: chance (1/N). \
                  The gap between a curve and the chance line is the lift."
            .to_string(),
    })
}

/// Lift (Recall@1 / chance) vs pool size (log x), with the lift-1 (chance) reference.
pub fn lift_vs_pool(relinks: &[Relink]) -> Option<Figure> {
    let mut series = Vec::new();
    let mut xs: Vec<f64> = Vec::new();
    for (i, r) in relinks.iter().enumerate() {
        let color = PALETTE[i % PALETTE.len()].to_string();
        let pre = prefix(relinks, r);
        for (k, kind) in kinds(r).iter().enumerate() {
            let mut pools: Vec<_> = r.pools.iter().filter(|p| &p.kind == kind).collect();
            pools.sort_by_key(|p| p.pool_size);
            let points: Vec<Point> = pools
                .iter()
                .filter_map(|p| {
                    let lift = p.lift_at_1?;
                    let n = p.pool_size as f64;
                    Some(point(
                        n,
                        lift,
                        None,
                        format!("{pre}{}, N={}: lift {}", kind_name(kind), fmt::count(n), fmt::times(lift)),
                    ))
                })
                .collect();
            xs.extend(points.iter().map(|p| p.x));
            series.push(Series {
                name: format!("{pre}{}", kind_name(kind)),
                color: color.clone(),
                line: if k == 0 { Line::Solid } else { Line::Dashed },
                marker: [Marker::Circle, Marker::Triangle, Marker::Square][k.min(2)],
                points,
            });
        }
        if let (Some(lift), Some(n)) = (r.full.as_ref().and_then(|f| f.lift_at_1), r.n_gallery) {
            xs.push(n);
            series.push(Series {
                name: format!("{pre}full database"),
                color,
                line: Line::None,
                marker: Marker::Diamond,
                points: vec![point(
                    n,
                    lift,
                    None,
                    format!("{pre}full database, N={}: lift {}", fmt::count(n), fmt::times(lift)),
                )],
            });
        }
    }
    let (lo, hi) = xs.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &x| (a.min(x), b.max(x)));
    if lo.is_finite() {
        series.push(Series {
            name: "chance (lift 1)".to_string(),
            color: REFERENCE.to_string(),
            line: Line::Dashed,
            marker: Marker::None,
            points: vec![
                point(lo, 1.0, None, "chance: lift 1".to_string()),
                point(hi, 1.0, None, "chance: lift 1".to_string()),
            ],
        });
    }
    let chart = Chart {
        id: "relink-lift".to_string(),
        title: "Re-linkage: lift over chance vs pool size".to_string(),
        x: Axis::new("Candidate pool size N (log scale)", Scale::Log, Ticks::Count),
        y: Axis::new("Lift (Recall@1 ÷ chance)", Scale::Linear, Ticks::Plain).from_zero(),
        series,
        plot_size: (540.0, 300.0),
        legend: multi_legend(relinks, "chance (lift 1)"),
    };
    chart.has_data().then(|| Figure {
        chart,
        caption: "How many times more often than chance the right record is ranked first.".to_string(),
    })
}

fn reid_name(r: &super::model::Reid) -> String {
    match &r.attacker {
        Some(a) => format!("{} ({a})", r.view),
        None => format!("{} (nearest neighbour)", r.view),
    }
}

/// Names for re-ID series and table columns: `image (nearest neighbour)`, with the label when several entries share a view and attacker.
pub fn reid_names(model: &ReportModel) -> Vec<String> {
    let base: Vec<String> = model.reid.iter().map(reid_name).collect();
    base.iter()
        .zip(&model.reid)
        .map(
            |(n, r)| {
                if base.iter().filter(|m| *m == n).count() > 1 {
                    format!("{n}: {}", r.name)
                } else {
                    n.clone()
                }
            },
        )
        .collect()
}

/// CMC curve: identification rate vs rank, one series per re-ID entry.
pub fn cmc(model: &ReportModel) -> Option<Figure> {
    let names = reid_names(model);
    let series: Vec<Series> = model
        .reid
        .iter()
        .zip(names)
        .enumerate()
        .map(|(i, (r, name))| Series {
            color: PALETTE[i % PALETTE.len()].to_string(),
            line: Line::Solid,
            marker: Marker::Circle,
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
    let max_rank = model.reid.iter().flat_map(|r| r.cmc.iter().map(|c| c.0)).max().unwrap_or(1) as f64;
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

/// A named ROC curve with its AUROC, if reported.
type Curve<'a> = (String, &'a [(f64, f64)], Option<f64>);

fn roc_chart(id: &str, title: &str, curves: Vec<Curve>) -> Option<Figure> {
    let mut series: Vec<Series> = curves
        .into_iter()
        .enumerate()
        .filter(|(_, c)| !c.1.is_empty())
        .map(|(i, (name, pts, auroc))| {
            let legend = match auroc {
                Some(a) => format!("{name} (AUROC {})", fmt::score(a)),
                None => name.clone(),
            };
            Series {
                color: PALETTE[i % PALETTE.len()].to_string(),
                line: Line::Solid,
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
pub fn verification_roc(model: &ReportModel) -> Option<Figure> {
    let names = reid_names(model);
    let curves = model
        .reid
        .iter()
        .zip(names)
        .map(|(r, n)| (n, r.roc.as_slice(), r.verification_auroc.map(|f| f.value)))
        .collect();
    roc_chart("reid-roc", "Re-identification: verification ROC", curves)
}

/// Attribute-inference ROC curves, for the attributes whose audit wrote points.
pub fn attribute_roc(model: &ReportModel) -> Option<Figure> {
    let several = model.attributes.len() > 1;
    let curves = model
        .attributes
        .iter()
        .flat_map(|a| {
            let mut targets: Vec<_> = a.targets.iter().collect();
            targets.sort_by_key(|t| attribute_order(&t.name));
            targets.into_iter().map(move |t| {
                let name = if several { format!("{}: {}", a.name, t.name) } else { t.name.clone() };
                (name, t.roc.as_slice(), t.auroc.map(|f| f.value))
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
    let all: Vec<&Relink> = m.points.iter().flat_map(|p| p.cohorts.iter().map(|c| &c.relink)).collect();
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
/// pool, one point per epsilon, one series per cohort (members / held-out / external).
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
    chart.has_data().then(|| Figure {
        chart,
        caption: "One point per privacy budget ε; lower is safer, further right is more useful.".to_string(),
    })
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
