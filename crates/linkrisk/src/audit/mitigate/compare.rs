//! Every mitigation result set against the audited model (the cohort's own views on the
//! same records) and, as before, against the non-private heads: per-subset reductions,
//! the reduction and utility-change tables, the per-cohort frontier tables and the
//! headline.

use super::evaluate::recall_at;
use super::{
    BySubset, FrontierRow, FrontierTable, Headline, MitigateConfig, MitigatePoint, PointUtility, PoolRecall,
    Reduction, ReferencePoint, SubsetRelink, UtilityChange,
};

/// The rows one subset is compared on: the reduction pool (random and pathology-matched)
/// when the subset has one, and the full database.
fn comparison_rows(pool: Option<usize>) -> Vec<(Option<usize>, &'static str)> {
    let mut rows = Vec::new();
    if pool.is_some() {
        rows.push((pool, "random"));
        rows.push((pool, "pathology_matched"));
    }
    rows.push((None, "full"));
    rows
}

/// The split name of a subset key.
fn split_of(config: &MitigateConfig, cohort: &str) -> String {
    match cohort {
        "members" => config.splits.members.clone(),
        "held_out" => config.splits.held_out.clone(),
        _ => config.splits.external.clone().unwrap_or_default(),
    }
}

/// The four utility figures of a point: (cohort, measure, value).
fn utility_figures(u: &PointUtility) -> [(&'static str, &'static str, Option<f64>); 4] {
    [
        ("held_out", "linear_probe", u.macro_auroc),
        ("external", "linear_probe", u.external_macro_auroc),
        ("held_out", "cross_modal", u.cross_modal_macro_auroc),
        ("external", "cross_modal", u.cross_modal_external_macro_auroc),
    ]
}

/// 1 - r / reference, when the reference is positive.
fn reduction(r: f64, reference: f64) -> Option<f64> {
    (reference > 0.0).then(|| 1.0 - r / reference)
}

/// Fill the `*_vs_audited` fields of every head row (warm start and points) from the
/// audited model's evaluation.
pub(super) fn against_audited(
    audited: &ReferencePoint,
    warm: Option<&mut ReferencePoint>,
    points: &mut [MitigatePoint],
) {
    let mut rows: Vec<(&mut BySubset<SubsetRelink>, &mut PointUtility)> =
        points.iter_mut().map(|p| (&mut p.relink, &mut p.utility)).collect();
    if let Some(w) = warm {
        rows.push((&mut w.relink, &mut w.utility));
    }
    for (relink, utility) in rows {
        for ((_, subset), (_, base)) in relink.iter_mut().zip(audited.relink.iter()) {
            let pool = subset.reduction_pool_size;
            let kind = if pool.is_some() { "random" } else { "full" };
            subset.relative_reduction_vs_audited = recall_at(&subset.report, pool, kind)
                .zip(recall_at(&base.report, pool, kind))
                .and_then(|((r, _), (r0, _))| reduction(r, r0));
        }
        let base = &audited.utility;
        utility.change_vs_audited = utility.macro_auroc.zip(base.macro_auroc).map(|(v, b)| v - b);
        utility.external_change_vs_audited =
            utility.external_macro_auroc.zip(base.external_macro_auroc).map(|(v, b)| v - b);
    }
}

/// Fill each private point's reductions and utility changes against the non-private point
/// (and the audited model, when evaluated), and return the tables.
pub(super) fn tables(
    points: &mut [MitigatePoint],
    audited: Option<&ReferencePoint>,
    config: &MitigateConfig,
) -> (Vec<Reduction>, Vec<UtilityChange>) {
    let Some(reference) = points.iter().position(|p| !p.private) else { return (Vec::new(), Vec::new()) };
    let base_relink = points[reference].relink.clone();
    let base_utility = points[reference].utility.clone();
    let mut reductions = Vec::new();
    let mut changes = Vec::new();
    for point in points.iter_mut().filter(|p| p.private) {
        let epsilon = point.epsilon.expect("private points have an epsilon");
        for ((cohort, subset), (_, base)) in point.relink.iter_mut().zip(base_relink.iter()) {
            let pool = subset.reduction_pool_size;
            let audited_subset =
                audited.and_then(|a| a.relink.iter().find(|(c, _)| *c == cohort).map(|(_, s)| s));
            for (pool_size, kind) in comparison_rows(pool) {
                let (Some((r, chance)), Some((r0, _))) =
                    (recall_at(&subset.report, pool_size, kind), recall_at(&base.report, pool_size, kind))
                else {
                    continue;
                };
                let relative_reduction = 1.0 - r / r0;
                if pool_size == pool && kind != "pathology_matched" {
                    subset.relative_reduction = Some(relative_reduction);
                }
                let audited_recall_at_1 =
                    audited_subset.and_then(|a| recall_at(&a.report, pool_size, kind)).map(|(r, _)| r);
                reductions.push(Reduction {
                    epsilon,
                    cohort,
                    split: split_of(config, cohort),
                    pool_size,
                    kind,
                    recall_at_1: r,
                    non_private_recall_at_1: r0,
                    chance_at_1: chance,
                    relative_reduction,
                    relative_reduction_above_chance: 1.0 - (r - chance) / (r0 - chance),
                    audited_recall_at_1,
                    relative_reduction_vs_audited: audited_recall_at_1.and_then(|a| reduction(r, a)),
                });
            }
        }
        let u = &mut point.utility;
        let audited_figures = audited.map(|a| utility_figures(&a.utility));
        for (i, ((cohort, measure, value), (_, _, base))) in
            utility_figures(u).into_iter().zip(utility_figures(&base_utility)).enumerate()
        {
            if let (Some(v), Some(b)) = (value, base) {
                let audited_macro_auroc = audited_figures.as_ref().and_then(|f| f[i].2);
                changes.push(UtilityChange {
                    epsilon,
                    cohort,
                    measure,
                    macro_auroc: v,
                    non_private_macro_auroc: b,
                    change: v - b,
                    audited_macro_auroc,
                    change_vs_audited: audited_macro_auroc.map(|a| v - a),
                });
            }
        }
        u.change_vs_non_private = u.macro_auroc.zip(base_utility.macro_auroc).map(|(v, b)| v - b);
        u.external_change_vs_non_private =
            u.external_macro_auroc.zip(base_utility.external_macro_auroc).map(|(v, b)| v - b);
    }
    (reductions, changes)
}

/// One frontier row from a subset's relink and the point's utility.
fn row(
    heads: &'static str,
    epsilon: Option<f64>,
    label: String,
    cohort: &str,
    subset: &SubsetRelink,
    utility: &PointUtility,
    audited: Option<(&SubsetRelink, &PointUtility)>,
) -> FrontierRow {
    let forward = &subset.report.forward;
    let recall_at_1 = forward
        .pools
        .iter()
        .filter(|p| p.kind == "random")
        .map(|p| PoolRecall {
            pool_size: p.pool_size,
            recall_at_1: p.recall_at_1,
            ci95_recall_at_1: p.bootstrap_ci95_recall_at_1.unwrap_or(p.ci95_recall_at_1),
            pathology_matched_recall_at_1: forward
                .pools
                .iter()
                .find(|q| q.kind == "pathology_matched" && q.pool_size == p.pool_size)
                .map(|q| q.recall_at_1),
            chance_at_1: p.chance_at_1,
        })
        .collect();
    let (macro_auroc, cross_modal) = match cohort {
        "held_out" => (utility.macro_auroc, utility.cross_modal_macro_auroc),
        "external" => (utility.external_macro_auroc, utility.cross_modal_external_macro_auroc),
        _ => (None, None),
    };
    let audited_auroc = audited.and_then(|(_, u)| match cohort {
        "held_out" => u.macro_auroc,
        "external" => u.external_macro_auroc,
        _ => None,
    });
    let pool = subset.reduction_pool_size;
    let kind = if pool.is_some() { "random" } else { "full" };
    let at_pool = recall_at(&subset.report, pool, kind).map(|(r, _)| r);
    let audited_at_pool = audited.and_then(|(a, _)| recall_at(&a.report, pool, kind)).map(|(r, _)| r);
    FrontierRow {
        heads,
        epsilon,
        label,
        recall_at_1_at_pool: at_pool,
        recall_at_1,
        full_recall_at_1: forward.full.recall_at_1,
        full_chance_at_1: forward.full.chance_at_1,
        macro_auroc,
        cross_modal_macro_auroc: cross_modal,
        relative_reduction_vs_audited: if heads == "audited" {
            None
        } else {
            at_pool.zip(audited_at_pool).and_then(|(r, a)| reduction(r, a))
        },
        macro_auroc_change_vs_audited: if heads == "audited" {
            None
        } else {
            macro_auroc.zip(audited_auroc).map(|(v, a)| v - a)
        },
        links_more_than_audited: if heads == "audited" {
            None
        } else {
            at_pool.zip(audited_at_pool).map(|(r, a)| r > a)
        },
    }
}

/// Per subset, the frontier table: the audited model, the warm start, the non-private
/// heads and the DP heads in increasing epsilon.
pub(super) fn frontier(
    audited: Option<&ReferencePoint>,
    warm: Option<&ReferencePoint>,
    points: &[MitigatePoint],
    config: &MitigateConfig,
) -> BySubset<FrontierTable> {
    let table = |cohort: &'static str, pick: &dyn Fn(&BySubset<SubsetRelink>) -> Option<&SubsetRelink>| {
        let audited_pair = audited.and_then(|a| pick(&a.relink).map(|s| (s, &a.utility)));
        let mut rows = Vec::new();
        if let Some((s, u)) = audited_pair {
            rows.push(row("audited", None, "audited model".into(), cohort, s, u, None));
        }
        if let Some(w) = warm {
            if let Some(s) = pick(&w.relink) {
                rows.push(row("warm_start", None, "warm start".into(), cohort, s, &w.utility, audited_pair));
            }
        }
        for p in points.iter().filter(|p| !p.private) {
            if let Some(s) = pick(&p.relink) {
                rows.push(row(
                    "non_private",
                    None,
                    "non-private".into(),
                    cohort,
                    s,
                    &p.utility,
                    audited_pair,
                ));
            }
        }
        let mut private: Vec<&MitigatePoint> = points.iter().filter(|p| p.private).collect();
        private.sort_by(|a, b| a.epsilon.unwrap_or(0.0).total_cmp(&b.epsilon.unwrap_or(0.0)));
        for p in private {
            if let Some(s) = pick(&p.relink) {
                let label = format!("epsilon {}", p.epsilon_label);
                rows.push(row("dp", p.epsilon, label, cohort, s, &p.utility, audited_pair));
            }
        }
        let pool_size = points.first().and_then(|p| pick(&p.relink)).and_then(|s| s.reduction_pool_size);
        FrontierTable {
            split: split_of(config, cohort),
            pool_size,
            reference: if audited_pair.is_some() { "audited" } else { "non_private" },
            rows,
        }
    };
    BySubset {
        members: table("members", &|r| Some(&r.members)),
        held_out: table("held_out", &|r| Some(&r.held_out)),
        external: config.splits.external.as_ref().map(|_| table("external", &|r| r.external.as_ref())),
    }
}

/// The headline: the most private point on the held-out records at the reduction pool,
/// against the audited model (or, without one, the non-private heads).
pub(super) fn headline(frontier: &BySubset<FrontierTable>) -> Option<Headline> {
    let table = &frontier.held_out;
    let dp = table
        .rows
        .iter()
        .filter(|r| r.heads == "dp")
        .min_by(|a, b| a.epsilon.unwrap_or(0.0).total_cmp(&b.epsilon.unwrap_or(0.0)))?;
    let reference = table.rows.iter().find(|r| r.heads == table.reference)?;
    let (recall, reference_recall) = (dp.recall_at_1_at_pool?, reference.recall_at_1_at_pool?);
    Some(Headline {
        cohort: "held_out",
        split: table.split.clone(),
        pool_size: table.pool_size,
        epsilon: dp.epsilon?,
        reference: table.reference,
        recall_at_1: recall,
        reference_recall_at_1: reference_recall,
        relative_reduction: reduction(recall, reference_recall),
        links_more_than_reference: recall > reference_recall,
        macro_auroc: dp.macro_auroc,
        reference_macro_auroc: reference.macro_auroc,
        macro_auroc_change: dp.macro_auroc.zip(reference.macro_auroc).map(|(v, r)| v - r),
    })
}
