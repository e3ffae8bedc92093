//! The re-identification, attribute-inference and utility sections, every one naming the
//! model of each figure and the protocol that produced its trained attacker or probes.

use super::super::doc::{b, t, Block, Figure, Section, Span, Table, MISSING};
use super::super::fmt;
use super::super::model::{Reid, ReportModel, Side, Utility};
use super::super::plots;
use super::headline::ranked;
use super::summary::skipped_attack;
use super::{ci_pct, ci_score, opt, side_phrase};

/// The re-ID entries in report order (models ranked, then as recorded).
fn reid_entries(model: &ReportModel) -> Vec<&Reid> {
    ranked(model).into_iter().flat_map(|m| model.reid_of(m)).collect()
}

pub(super) fn reid(model: &ReportModel) -> Option<Section> {
    let entries = reid_entries(model);
    if entries.is_empty() {
        return None;
    }
    let mut ranks: Vec<u64> = entries.iter().flat_map(|r| r.cmc.iter().map(|c| c.0)).collect();
    ranks.sort_unstable();
    ranks.dedup();
    // CMC@1 is Rank-1 again when every audit reports both with the same value.
    let cmc1_repeats = entries.iter().all(|r| {
        r.rank_1.is_some_and(|r1| r.cmc.iter().find(|c| c.0 == 1).is_none_or(|c| c.1.value == r1.value))
    });
    if cmc1_repeats {
        ranks.retain(|&k| k != 1);
    }
    // One row per model and attacker, one column per figure: the table stays as wide as its
    // figures however many models there are.
    let several_views = entries.iter().any(|r| r.view != entries[0].view);
    let cmc_titles: Vec<String> = ranks.iter().map(|k| format!("CMC@{k}")).collect();
    let mut columns: Vec<(&str, bool)> = vec![("Model", false), ("Attacker", false)];
    if several_views {
        columns.push(("View", false));
    }
    columns.extend([("Queries / gallery", true), ("Rank-1", true), ("95% CI", true)]);
    columns.extend(cmc_titles.iter().map(|c| (c.as_str(), true)));
    columns.extend([("mAP", true), ("95% CI", true), ("Verification AUROC", true), ("95% CI", true)]);
    let mut table = Table::new(&columns);
    for r in &entries {
        let mut row = vec![r.model.clone(), plots::attacker_name(r)];
        if several_views {
            row.push(r.view.clone());
        }
        let sizes = match (r.n_queries, r.n_gallery) {
            (Some(q), Some(g)) => format!("{} / {}", fmt::count(q), fmt::count(g)),
            (Some(q), None) => fmt::count(q),
            (None, Some(g)) => format!("– / {}", fmt::count(g)),
            (None, None) => MISSING.to_string(),
        };
        row.extend([sizes, opt(r.rank_1.map(|f| f.value), fmt::pct), ci_pct(r.rank_1.and_then(|f| f.ci95))]);
        for &k in &ranks {
            row.push(opt(r.cmc.iter().find(|c| c.0 == k).map(|c| c.1.value), fmt::pct));
        }
        row.extend([
            opt(r.map.map(|f| f.value), fmt::score),
            ci_score(r.map.and_then(|f| f.ci95)),
            opt(r.verification_auroc.map(|f| f.value), fmt::score),
            ci_score(r.verification_auroc.and_then(|f| f.ci95)),
        ]);
        table.push(row);
    }
    let mut blocks = vec![
        Block::Para(vec![t(
            "Queries are images of patients with at least two studies; the gallery is every other \
             image. Rank-1 is how often the nearest other image belongs to the same patient; CMC@k \
             how often one of the k nearest does. A trained attacker learns a metric on other patients.",
        )]),
        Block::Table(table.prune_empty_columns()),
    ];
    for r in &entries {
        if let (Some(side), Some(attacker)) = (&r.side, &r.attacker) {
            let mut text = format!("Trained attacker {attacker} of {}: {}.", r.model, side_phrase(side));
            if side.cross_fitted() {
                text.push_str(
                    " Each fold's queries are ranked by a metric learned on the other folds' patients only.",
                );
            }
            blocks.push(Block::Para(vec![t(text)]));
        }
    }
    let skipped: Vec<Vec<Span>> = entries
        .iter()
        .flat_map(|r| r.skipped.iter().map(move |s| vec![t(format!("{}: {}", r.model, skipped_attack(s)))]))
        .collect();
    if !skipped.is_empty() {
        blocks.push(Block::Para(vec![t("Attackers not run:")]));
        blocks.push(Block::Bullets(skipped));
    }
    let figures: Vec<Figure> =
        [plots::cmc(&entries), plots::verification_roc(&entries)].into_iter().flatten().collect();
    if !figures.is_empty() {
        blocks.push(Block::Figures(figures));
    }
    Some(Section { id: "reid".to_string(), title: "Patient re-identification".to_string(), blocks })
}

/// A sentence on where a probe's training data came from.
fn probe_side(what: &str, name: &str, side: &Side) -> Block {
    let mut text = format!("{what} of {name}: {}.", side_phrase(side));
    if side.cross_fitted() {
        text.push_str(" Each record is scored by a probe fitted on the other folds' patients; the AUROC is over all of them.");
    }
    Block::Para(vec![t(text)])
}

pub(super) fn attributes(model: &ReportModel) -> Option<Section> {
    let order = ranked(model);
    let audits: Vec<_> = order.iter().flat_map(|m| model.attributes_of(m)).collect();
    if audits.is_empty() {
        return None;
    }
    let mut blocks = vec![Block::Para(vec![t(
        "Linear probes predict each attribute from the embeddings (AUROC on the test split), also \
         separately for re-identified and not re-identified records; p is the DeLong test of the difference.",
    )])];
    for a in &audits {
        blocks.push(Block::Heading(format!("{} — {} view", a.model, a.view)));
        if let Some(side) = &a.side {
            blocks.push(probe_side("Probe training data", &a.model, side));
        }
        let mut table = Table::new(&[
            ("Attribute", false),
            ("AUROC", true),
            ("95% CI", true),
            ("Re-identified", true),
            ("95% CI", true),
            ("Not re-identified", true),
            ("95% CI", true),
            ("p (difference)", true),
        ]);
        let mut targets: Vec<_> = a.targets.iter().collect();
        targets.sort_by_key(|t| plots::attribute_order(&t.name));
        for target in targets {
            table.push(vec![
                target.name.clone(),
                opt(target.auroc.map(|f| f.value), fmt::score),
                ci_score(target.auroc.and_then(|f| f.ci95)),
                opt(target.auroc_reidentified.map(|f| f.value), fmt::score),
                ci_score(target.auroc_reidentified.and_then(|f| f.ci95)),
                opt(target.auroc_not_reidentified.map(|f| f.value), fmt::score),
                ci_score(target.auroc_not_reidentified.and_then(|f| f.ci95)),
                opt(target.p_value, fmt::p_value),
            ]);
        }
        blocks.push(Block::Table(table.prune_empty_columns()));
    }
    if let Some(fig) = plots::attribute_roc(&audits) {
        blocks.push(Block::Figures(vec![fig]));
    }
    Some(Section { id: "attributes".to_string(), title: "Attribute inference".to_string(), blocks })
}

pub(super) fn utility(model: &ReportModel) -> Option<Section> {
    let order = ranked(model);
    let audits: Vec<&Utility> = order.iter().flat_map(|m| model.utility_of(m)).collect();
    if audits.is_empty() {
        return None;
    }
    let mut blocks = vec![Block::Para(vec![t(
        "Utility: a linear probe's AUROC for each finding on the test split, and their macro average.",
    )])];
    for u in &audits {
        if let Some(side) = &u.side {
            blocks.push(probe_side("Probe training data", &u.model, side));
        }
    }
    let order = |name: &str| crate::cohort::FINDINGS.iter().position(|f| *f == name).unwrap_or(usize::MAX);
    if audits.len() > 1 {
        blocks.extend(utility_comparison(&audits, order));
        return Some(Section { id: "utility".to_string(), title: "Utility".to_string(), blocks });
    }
    let u = audits[0];
    if let Some(m) = u.macro_auroc {
        let mut spans =
            vec![t(format!("Macro AUROC of {} ({} view): ", u.model, u.view)), b(fmt::score(m.value))];
        if let Some(ci) = m.ci95 {
            spans.push(t(format!(" (95% CI {})", fmt::score_interval(ci))));
        }
        spans.push(t("."));
        blocks.push(Block::Para(spans));
    }
    let mut table = Table::new(&[("Finding", false), ("AUROC", true), ("95% CI", true)]);
    let mut findings: Vec<_> = u.per_finding.iter().collect();
    findings.sort_by_key(|(name, _)| (order(name), name.clone()));
    for (name, fig) in findings {
        table.push(vec![name.clone(), fmt::score(fig.value), ci_score(fig.ci95)]);
    }
    if !table.rows.is_empty() {
        blocks.push(Block::Table(table.prune_empty_columns()));
    }
    Some(Section { id: "utility".to_string(), title: "Utility".to_string(), blocks })
}

/// Several utility audits (e.g. one per model) side by side: the macro AUROC with its
/// interval, then one row per finding, one column per audit.
fn utility_comparison(utilities: &[&Utility], order: impl Fn(&str) -> usize) -> Vec<Block> {
    let names: Vec<String> = utilities.iter().map(|u| format!("{} ({})", u.model, u.view)).collect();
    let mut columns = vec![("Finding", false)];
    columns.extend(names.iter().map(|n| (n.as_str(), true)));
    let mut table = Table::new(&columns);
    let macro_row = |cell: fn(super::super::model::Figure) -> String| -> Vec<String> {
        utilities.iter().map(|u| u.macro_auroc.map(cell).unwrap_or_else(|| MISSING.to_string())).collect()
    };
    let mut row = vec!["Macro AUROC".to_string()];
    row.extend(macro_row(|f| fmt::score(f.value)));
    table.push(row);
    let mut row = vec!["Macro 95% CI".to_string()];
    row.extend(macro_row(|f| ci_score(f.ci95)));
    table.push(row);
    let mut findings: Vec<&String> = Vec::new();
    for u in utilities {
        for (name, _) in &u.per_finding {
            if !findings.contains(&name) {
                findings.push(name);
            }
        }
    }
    findings.sort_by_key(|name| (order(name), (*name).clone()));
    for finding in findings {
        let mut row = vec![finding.clone()];
        row.extend(utilities.iter().map(|u| {
            u.per_finding
                .iter()
                .find(|(n, _)| n == finding)
                .map(|(_, f)| fmt::score(f.value))
                .unwrap_or_else(|| MISSING.to_string())
        }));
        table.push(row);
    }
    vec![Block::Table(table)]
}
