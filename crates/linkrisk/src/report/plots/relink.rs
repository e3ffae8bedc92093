//! Re-linkage charts: per model Recall@1 vs pool size (the exact expected curve as a line,
//! the Monte-Carlo pools as points with their intervals, both directions), per model a
//! forest plot of full-database Recall@1 by subgroup, and across models the lift over
//! chance (log scale when the lifts span a decade or more).

use super::super::doc::Figure;
use super::super::fmt;
use super::super::model::{Relink, Subgroup};
use super::super::svg::{Axis, Chart, Line, Marker, Point, Scale, Series, Ticks, PALETTE, REFERENCE};
use super::{attribute_order, chart_id, ci_text, point};

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

/// Marker of a pool kind: circles for random pools, triangles for pathology-matched ones.
fn kind_marker(k: usize) -> Marker {
    [Marker::Circle, Marker::Triangle, Marker::Square][k.min(2)]
}

/// Every direction of these relink audits, with its name: `image → report`, plus the split
/// when there are several audits.
fn directions<'a>(relinks: &[&'a Relink]) -> Vec<(String, &'a Relink)> {
    relinks
        .iter()
        .flat_map(|r| {
            r.directions().into_iter().map(move |d| match (&d.split, relinks.len() > 1) {
                (Some(split), true) => (format!("{}, {split} split", d.direction()), d),
                _ => (d.direction(), d),
            })
        })
        .collect()
}

/// A legend entry (a series with no points).
fn entry(name: String, color: &str, line: Line, marker: Marker) -> Series {
    Series { name, color: color.to_string(), line, marker, points: Vec::new() }
}

/// A chart over the candidate pool size (log x) with a log y axis when `log`, else a linear
/// one from zero.
fn pool_chart(
    id: String,
    title: String,
    log: bool,
    y_label: &str,
    series: Vec<Series>,
    legend: Option<Vec<Series>>,
) -> Chart {
    let ticks = if y_label.starts_with("Recall") { Ticks::Percent } else { Ticks::Plain };
    Chart {
        id,
        title,
        x: Axis::new("Candidate pool size N (log scale)", Scale::Log, Ticks::Count),
        y: if log {
            Axis::new(format!("{y_label} (log scale)"), Scale::Log, ticks)
        } else {
            Axis::new(y_label, Scale::Linear, ticks).from_zero()
        },
        series,
        plot_size: (540.0, 300.0),
        legend,
    }
}

/// Recall@1 (log y) vs pool size (log x) of one model: per direction the exact expected
/// Recall@1 of random pools (`expected_recall_curve`, a line), the Monte-Carlo random pools
/// with their CIs (points), pathology-matched pools (dashed), the full-database point at
/// N = n_gallery, and the chance line from the audits' `chance_at_1`.
pub fn recall_vs_pool(model: &str, index: usize, relinks: &[&Relink]) -> Option<Figure> {
    let dirs = directions(relinks);
    let mut series = Vec::new();
    let mut chance: Vec<(f64, f64)> = Vec::new();
    let any_curve = dirs.iter().any(|(_, d)| !d.expected_curve.is_empty());
    for (i, (label, d)) in dirs.iter().enumerate() {
        let color = PALETTE[i % PALETTE.len()].to_string();
        let pre = if dirs.len() > 1 { format!("{label}: ") } else { String::new() };
        if !d.expected_curve.is_empty() {
            series.push(Series {
                name: format!("{pre}exact expectation, random pools"),
                color: color.clone(),
                line: Line::Solid,
                marker: Marker::None,
                points: d
                    .expected_curve
                    .iter()
                    .map(|c| {
                        let tip = format!(
                            "{pre}N={}: exact expected Recall@1 {}",
                            fmt::count(c.pool_size),
                            fmt::pct(c.expected_recall_at_1)
                        );
                        point(c.pool_size, c.expected_recall_at_1, None, tip)
                    })
                    .collect(),
            });
            chance.extend(d.expected_curve.iter().filter_map(|c| Some((c.pool_size, c.chance_at_1?))));
        }
        for (k, kind) in kinds(d).iter().enumerate() {
            let mut pools: Vec<_> = d.pools.iter().filter(|p| &p.kind == kind).collect();
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
            // With the exact curve drawn, the Monte-Carlo random pools are points on it.
            let line = match (k, any_curve) {
                (0, true) => Line::None,
                (0, false) => Line::Solid,
                _ => Line::Dashed,
            };
            let name = if k == 0 && any_curve {
                format!("{pre}random pools (Monte Carlo)")
            } else {
                format!("{pre}{}", kind_name(kind))
            };
            series.push(Series { name, color: color.clone(), line, marker: kind_marker(k), points });
            chance.extend(pools.iter().filter_map(|p| Some((p.pool_size as f64, p.chance_at_1?))));
        }
        if let (Some(full), Some(n)) = (&d.full, d.n_gallery) {
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
    // With several directions colour is the direction and line and marker the figure: the
    // legend lists each once instead of every pair.
    let legend = (dirs.len() > 1).then(|| {
        let grey = "#333333";
        let mut legend: Vec<Series> = dirs
            .iter()
            .enumerate()
            .map(|(i, (label, _))| {
                entry(label.clone(), PALETTE[i % PALETTE.len()], Line::Solid, Marker::None)
            })
            .collect();
        let mut kinds_seen: Vec<String> = dirs.iter().flat_map(|(_, d)| kinds(d)).collect();
        kinds_seen.sort_by_key(|k| (k != "random", k != "pathology_matched", k.clone()));
        kinds_seen.dedup();
        if any_curve {
            legend.push(entry("exact expectation, random pools".into(), grey, Line::Solid, Marker::None));
        }
        for (k, kind) in kinds_seen.iter().enumerate() {
            let name =
                if k == 0 && any_curve { "random pools (Monte Carlo)".to_string() } else { kind_name(kind) };
            let line = match (k, any_curve) {
                (0, true) => Line::None,
                (0, false) => Line::Solid,
                _ => Line::Dashed,
            };
            legend.push(entry(name, grey, line, kind_marker(k)));
        }
        if dirs.iter().any(|(_, d)| d.full.is_some()) {
            legend.push(entry("full database".into(), grey, Line::None, Marker::Diamond));
        }
        legend.push(entry("chance (1/N)".into(), REFERENCE, Line::Dashed, Marker::None));
        legend
    });
    let chart = pool_chart(
        chart_id("relink-recall", index, model),
        format!("{model}: Recall@1 vs candidate pool size"),
        all_positive,
        "Recall@1",
        series,
        legend,
    );
    let curve = if any_curve {
        "Line: the exact expected Recall@1 of random pools (from the full ranks); markers: the \
         Monte-Carlo pools' Recall@1 (bars: 95% CI), which should lie on it; "
    } else {
        "Markers: the audit's Recall@1 (bars: 95% CI); "
    };
    chart.has_data().then(|| Figure {
        chart,
        caption: format!(
            "{curve}dashed grey: chance (1/N). The gap between a curve and the chance line is the lift."
        ),
    })
}

/// Lift (Recall@1 / chance) vs pool size (log x) of every model: colour is the model, line
/// style the direction, marker shape the pool kind; the y axis is logarithmic when the
/// lifts span a decade or more (a linear one squashes the weaker models).
pub fn lift_vs_pool(relinks: &[&Relink]) -> Option<Figure> {
    let mut models: Vec<&str> = Vec::new();
    let mut dir_names: Vec<String> = Vec::new();
    let mut all_kinds: Vec<String> = Vec::new();
    for r in relinks {
        if !models.contains(&r.model.as_str()) {
            models.push(&r.model);
        }
        for d in r.directions() {
            if !dir_names.contains(&d.direction()) {
                dir_names.push(d.direction());
            }
            all_kinds.extend(kinds(d));
        }
    }
    all_kinds.sort_by_key(|k| (k != "random", k != "pathology_matched", k.clone()));
    all_kinds.dedup();
    let mut series = Vec::new();
    let mut xs: Vec<f64> = Vec::new();
    for r in relinks {
        let color =
            PALETTE[models.iter().position(|m| *m == r.model).unwrap_or(0) % PALETTE.len()].to_string();
        for d in r.directions() {
            let dir = d.direction();
            let dashed = dir_names.iter().position(|n| *n == dir).unwrap_or(0) > 0;
            let pre = format!("{}, {dir}", r.model);
            for kind in kinds(d) {
                let k = all_kinds.iter().position(|x| *x == kind).unwrap_or(0);
                let mut pools: Vec<_> = d.pools.iter().filter(|p| p.kind == kind).collect();
                pools.sort_by_key(|p| p.pool_size);
                let points: Vec<Point> = pools
                    .iter()
                    .filter_map(|p| {
                        let lift = p.lift_at_1?;
                        let n = p.pool_size as f64;
                        let tip = format!(
                            "{pre}, {}, N={}: lift {}",
                            kind_name(&kind),
                            fmt::count(n),
                            fmt::times(lift)
                        );
                        Some(point(n, lift, None, tip))
                    })
                    .collect();
                xs.extend(points.iter().map(|p| p.x));
                series.push(Series {
                    name: format!("{pre}, {}", kind_name(&kind)),
                    color: color.clone(),
                    line: if dashed { Line::Dashed } else { Line::Solid },
                    marker: kind_marker(k),
                    points,
                });
            }
            if let (Some(lift), Some(n)) = (d.full.as_ref().and_then(|f| f.lift_at_1), d.n_gallery) {
                xs.push(n);
                let tip = format!("{pre}, full database, N={}: lift {}", fmt::count(n), fmt::times(lift));
                series.push(Series {
                    name: format!("{pre}, full database"),
                    color: color.clone(),
                    line: Line::None,
                    marker: Marker::Diamond,
                    points: vec![point(n, lift, None, tip)],
                });
            }
        }
    }
    let lifts: Vec<f64> = series.iter().flat_map(|s| s.points.iter().map(|p| p.y)).collect();
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
    let (min, max) = lifts.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| (a.min(v), b.max(v)));
    let log = min > 0.0 && max / min.min(1.0) >= 10.0;
    let legend = factored_legend(&models, &dir_names, &all_kinds, relinks.iter().any(|r| r.full.is_some()));
    let chart = pool_chart(
        "relink-lift".to_string(),
        "Re-linkage: lift over chance vs pool size".to_string(),
        log,
        "Lift (Recall@1 ÷ chance)",
        series,
        Some(legend),
    );
    chart.has_data().then(|| Figure {
        chart,
        caption: "How many times more often than chance the right record is ranked first.".to_string(),
    })
}

/// A legend listing each model once (its colour), each direction once (its line style, in
/// grey), each pool kind once (its marker, in grey), the full database and chance — instead
/// of one entry per combination.
fn factored_legend(models: &[&str], directions: &[String], kinds: &[String], full: bool) -> Vec<Series> {
    let mut legend: Vec<Series> = Vec::new();
    if models.len() > 1 {
        legend.extend(
            models
                .iter()
                .enumerate()
                .map(|(i, m)| entry(m.to_string(), PALETTE[i % PALETTE.len()], Line::Solid, Marker::None)),
        );
    }
    if directions.len() > 1 {
        legend.extend(directions.iter().enumerate().map(|(i, d)| {
            entry(d.clone(), "#333333", if i == 0 { Line::Solid } else { Line::Dashed }, Marker::None)
        }));
    }
    let color = if models.len() > 1 { "#333333" } else { PALETTE[0] };
    legend.extend(
        kinds.iter().enumerate().map(|(k, kind)| entry(kind_name(kind), color, Line::None, kind_marker(k))),
    );
    if full {
        legend.push(entry("full database".to_string(), color, Line::None, Marker::Diamond));
    }
    legend.push(entry("chance (lift 1)".to_string(), REFERENCE, Line::Dashed, Marker::None));
    legend
}

/// Order of a subgroup value within its attribute: age bands youngest first, `unknown` last.
pub fn subgroup_value_order(attribute: &str, value: &str) -> (usize, String) {
    let rank = match (attribute, value) {
        (_, "unknown") => 9,
        ("age", "<40") => 0,
        ("age", "40-59") => 1,
        ("age", "60-79") => 2,
        ("age", ">=80") => 3,
        _ => 5,
    };
    (rank, value.to_string())
}

/// The subgroups of these directions in display order: sex, age, race, then others.
pub fn subgroup_keys(dirs: &[&Relink]) -> Vec<(String, String)> {
    let mut keys: Vec<(String, String)> = dirs
        .iter()
        .flat_map(|d| d.subgroups.iter().map(|s| (s.attribute.clone(), s.value.clone())))
        .collect();
    keys.sort_by_key(|(a, v)| (attribute_order(a), subgroup_value_order(a, v)));
    keys.dedup();
    keys
}

/// Forest plot of one model: full-database Recall@1 with its 95% CI per subgroup (rows),
/// one series per direction, with each direction's overall Recall@1 as a dashed line.
pub fn subgroup_forest(model: &str, index: usize, relinks: &[&Relink]) -> Option<Figure> {
    let dirs: Vec<(String, &Relink)> =
        directions(relinks).into_iter().filter(|(_, d)| !d.subgroups.is_empty()).collect();
    let keys = subgroup_keys(&dirs.iter().map(|d| d.1).collect::<Vec<_>>());
    if keys.is_empty() {
        return None;
    }
    let n = keys.len() as f64;
    let mut series = Vec::new();
    for (j, (label, d)) in dirs.iter().enumerate() {
        let color = PALETTE[j % PALETTE.len()].to_string();
        // Directions sit side by side within a row.
        let offset = (j as f64 - (dirs.len() as f64 - 1.0) / 2.0) * 0.3;
        let points = keys
            .iter()
            .enumerate()
            .filter_map(|(i, (attribute, value))| {
                let s: &Subgroup =
                    d.subgroups.iter().find(|s| &s.attribute == attribute && &s.value == value)?;
                let fig = s.recall_at_1?;
                let queries = s.n_queries.map(|q| format!(", {} queries", fmt::count(q))).unwrap_or_default();
                let tip = format!(
                    "{label}, {attribute} {value}: Recall@1 {}{}{queries}",
                    fmt::pct(fig.value),
                    ci_text(fig.ci95)
                );
                Some(point(fig.value, i as f64 + offset, fig.ci95, tip))
            })
            .collect();
        series.push(Series {
            name: label.clone(),
            color: color.clone(),
            line: Line::None,
            marker: Marker::Circle,
            points,
        });
        if let Some(all) = d.full.as_ref().and_then(|f| f.recall_at_1) {
            let tip = format!("{label}, all queries: Recall@1 {}", fmt::pct(all.value));
            series.push(Series {
                name: format!("{label}: all queries"),
                color,
                line: Line::Dashed,
                marker: Marker::None,
                points: vec![point(all.value, -0.5, None, tip.clone()), point(all.value, n - 0.5, None, tip)],
            });
        }
    }
    let chart = Chart {
        id: chart_id("relink-subgroups", index, model),
        title: format!("{model}: Recall@1 by subgroup"),
        x: Axis::new("Full-database Recall@1", Scale::Linear, Ticks::Percent).from_zero(),
        y: Axis::categorical("", keys.iter().map(|(a, v)| format!("{a}: {v}")).collect()),
        series,
        plot_size: (440.0, 26.0 * n + 8.0),
        legend: None,
    };
    chart.has_data().then(|| Figure {
        chart,
        caption: "Markers: Recall@1 of each subgroup's queries against the whole gallery (bars: 95% CI); \
                  dashed: all queries."
            .to_string(),
    })
}
