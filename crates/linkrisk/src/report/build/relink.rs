//! The re-linkage and attack-comparison sections: a comparison of the models, then per
//! model both directions side by side (pools with the exact-match share of the
//! pathology-matched negatives, full-database ranks, subgroups, skipped pools) with its
//! Recall@1 chart and subgroup forest plot; per model and direction every attack, the
//! strongest marked, its side-data protocol and what was not tried.

use super::super::doc::{t, Block, Figure, Section, Table, MISSING};
use super::super::fmt;
use super::super::model::{Attacks, Relink, ReportModel, Subgroup};
use super::super::plots;
use super::headline::{ranked, strongest_row};
use super::summary::{direction_label, pool_groups, skipped_attack};
use super::{ci_pct, kind_label, opt, plural, side_phrase};

/// The relink audits of each model, models in rank order (those with relink audits only).
fn by_model(model: &ReportModel) -> Vec<(&str, Vec<&Relink>)> {
    ranked(model)
        .into_iter()
        .map(|m| (m, model.relink_of(m).collect::<Vec<_>>()))
        .filter(|(_, r)| !r.is_empty())
        .collect()
}

pub(super) fn relink(model: &ReportModel) -> Option<Section> {
    let models = by_model(model);
    if models.is_empty() {
        return None;
    }
    let mut blocks = vec![Block::Para(vec![t(
        "Each query is ranked against candidate pools by cosine similarity; Recall@1 is how often \
         its own record is ranked first. Chance is 1/N; lift is Recall@1 divided by chance. Where the audit \
         measured both directions (--direction both), each pool has a row per direction, side by side.",
    )])];
    let all: Vec<&Relink> = models.iter().flat_map(|m| m.1.iter().copied()).collect();
    if models.len() > 1 {
        blocks.push(Block::Heading("Models compared: Recall@1 (lift) with random pools".to_string()));
        blocks.push(Block::Table(comparison(&models)));
    }
    if let Some(fig) = plots::lift_vs_pool(&all) {
        blocks.push(Block::Figures(vec![fig]));
    }
    for (index, (name, relinks)) in models.iter().enumerate() {
        for r in relinks {
            blocks.extend(model_relink(name, r, relinks.len() > 1));
        }
        let figures: Vec<Figure> =
            [plots::recall_vs_pool(name, index, relinks), plots::subgroup_forest(name, index, relinks)]
                .into_iter()
                .flatten()
                .collect();
        if !figures.is_empty() {
            blocks.push(Block::Figures(figures));
        }
    }
    Some(Section { id: "relink".to_string(), title: "Cross-modal re-linkage".to_string(), blocks })
}

/// One row per model and direction, one column per random pool size and the full
/// database: Recall@1 with its lift.
fn comparison(models: &[(&str, Vec<&Relink>)]) -> Table {
    let directions: Vec<(&str, String, &Relink)> = models
        .iter()
        .flat_map(|(m, relinks)| {
            relinks.iter().flat_map(move |r| {
                r.directions().into_iter().map(move |d| (*m, direction_label(d, relinks), d))
            })
        })
        .collect();
    let mut sizes: Vec<u64> = directions
        .iter()
        .flat_map(|d| d.2.pools.iter().filter(|p| p.kind == "random").map(|p| p.pool_size))
        .collect();
    sizes.sort_unstable();
    sizes.dedup();
    let titles: Vec<String> = sizes.iter().map(|&n| format!("N={}", fmt::count(n as f64))).collect();
    let mut columns: Vec<(&str, bool)> = vec![("Model", false), ("Direction", false)];
    columns.extend(titles.iter().map(|t| (t.as_str(), true)));
    columns.push(("Full database", true));
    let mut table = Table::new(&columns);
    let cell = |recall: Option<f64>, lift: Option<f64>| match (recall, lift) {
        (Some(r), Some(l)) => format!("{} ({})", fmt::pct(r), fmt::times(l)),
        (Some(r), None) => fmt::pct(r),
        _ => MISSING.to_string(),
    };
    for (m, label, r) in &directions {
        let mut row = vec![m.to_string(), label.clone()];
        for &n in &sizes {
            let p = r.random_pool(n);
            row.push(cell(p.and_then(|p| p.recall_at_1.map(|f| f.value)), p.and_then(|p| p.lift_at_1)));
        }
        let full = r.full.as_ref();
        row.push(cell(full.and_then(|f| f.recall_at_1.map(|f| f.value)), full.and_then(|f| f.lift_at_1)));
        table.push(row);
    }
    table.prune_empty_columns()
}

/// The blocks of one relink audit of a model: heading, sizes, the pool table with both
/// directions side by side, full-database ranks, subgroups and skipped pools.
fn model_relink(name: &str, r: &Relink, several: bool) -> Vec<Block> {
    let dirs = r.directions();
    let mut title =
        format!("{name} — {}", dirs.iter().map(|d| d.direction()).collect::<Vec<_>>().join(" and "));
    if let Some(split) = &r.split {
        title.push_str(&format!(", {split} split"));
    } else if several {
        title.push_str(", all records");
    }
    let mut blocks = vec![Block::Heading(title)];
    let sizes: Vec<String> = dirs
        .iter()
        .filter_map(|d| {
            Some(format!(
                "{} {} queries against {} {}",
                fmt::count(d.n_queries?),
                d.query_view,
                fmt::count(d.n_gallery?),
                plural(&d.gallery_view)
            ))
        })
        .collect();
    let mut trials: Vec<f64> = dirs.iter().flat_map(|d| d.pools.iter().filter_map(|p| p.trials)).collect();
    trials.sort_by(f64::total_cmp);
    trials.dedup();
    let one_trial_count = trials.len() == 1;
    let mut text = sizes.join("; ");
    if one_trial_count {
        text.push_str(&format!(
            "{}{} pools drawn per query and pool setting",
            if text.is_empty() { "" } else { "; " },
            fmt::count(trials[0])
        ));
    }
    if !text.is_empty() {
        blocks.push(Block::Para(vec![t(format!("{text}."))]));
    }
    let table = pool_table(&dirs, !one_trial_count);
    if !table.rows.is_empty() {
        blocks.push(Block::Table(table));
    }
    if dirs.iter().any(|d| d.full.is_some()) {
        let mut full = Table::new(&[
            ("Full database", false),
            ("Recall@1", true),
            ("Recall@5", true),
            ("Recall@10", true),
            ("MRR", true),
            ("Median rank", true),
        ]);
        for d in &dirs {
            if let Some(f) = &d.full {
                full.push(vec![
                    d.direction(),
                    opt(f.recall_at_1.map(|f| f.value), fmt::pct),
                    opt(f.recall_at_5, fmt::pct),
                    opt(f.recall_at_10, fmt::pct),
                    opt(f.mrr, fmt::score),
                    opt(f.median_rank, fmt::rank),
                ]);
            }
        }
        blocks.push(Block::Table(full.prune_empty_columns()));
    }
    if dirs.iter().any(|d| !d.subgroups.is_empty()) {
        blocks.push(Block::Para(vec![t(format!(
            "Full-database Recall@1 of {name} by subgroup (sex, age band, race): a subgroup whose interval \
             lies above the others is easier to re-link."
        ))]));
        blocks.push(Block::Table(subgroup_table(&dirs)));
    }
    let skipped = skipped_pools(&dirs);
    if !skipped.is_empty() {
        blocks.push(Block::Para(vec![t(format!("Pools not evaluated for {name}:"))]));
        blocks.push(Block::Bullets(skipped.into_iter().map(|s| vec![t(s)]).collect()));
    }
    blocks
}

/// Pools of both directions side by side: for each pool setting one row per direction,
/// adjacent (Recall@1, its interval, lift, the exact expectation and, next to the
/// pathology-matched rows, the share of their negatives with identical findings), the full
/// database last. Trials are a column only when they differ between pools.
fn pool_table(dirs: &[&Relink], with_trials: bool) -> Table {
    let mut table = Table::new(&[
        ("Pool", false),
        ("N", true),
        ("Trials", true),
        ("Chance", true),
        ("Direction", false),
        ("Recall@1", true),
        ("95% CI", true),
        ("Lift", true),
        ("Exact expectation", true),
        ("Identical findings", true),
    ]);
    let mut keys: Vec<(String, u64)> =
        dirs.iter().flat_map(|d| d.pools.iter().map(|p| (p.kind.clone(), p.pool_size))).collect();
    keys.sort_by_key(|(kind, n)| (kind != "random", kind.clone(), *n));
    keys.dedup();
    let direction = |d: &Relink| if dirs.len() > 1 { d.direction() } else { MISSING.to_string() };
    for (kind, n) in keys {
        for d in dirs {
            let Some(p) = d.pools.iter().find(|p| p.kind == kind && p.pool_size == n) else { continue };
            table.push(vec![
                kind_label(&kind),
                fmt::count(n as f64),
                if with_trials { opt(p.trials, fmt::count) } else { MISSING.to_string() },
                opt(p.chance_at_1, fmt::pct),
                direction(d),
                opt(p.recall_at_1.map(|f| f.value), fmt::pct),
                ci_pct(p.recall_at_1.and_then(|f| f.ci95)),
                opt(p.lift_at_1, fmt::times),
                opt(p.expected_recall_at_1, fmt::pct),
                opt(p.exact_match_fraction, fmt::pct),
            ]);
        }
    }
    for d in dirs {
        if let Some(f) = &d.full {
            table.push(vec![
                "full database".to_string(),
                opt(d.n_gallery, fmt::count),
                MISSING.to_string(),
                opt(f.chance_at_1, fmt::pct),
                direction(d),
                opt(f.recall_at_1.map(|f| f.value), fmt::pct),
                ci_pct(f.recall_at_1.and_then(|f| f.ci95)),
                opt(f.lift_at_1, fmt::times),
                MISSING.to_string(),
                MISSING.to_string(),
            ]);
        }
    }
    table.prune_empty_columns()
}

fn subgroup_table(dirs: &[&Relink]) -> Table {
    let two = dirs.len() > 1;
    let group: Vec<[String; 3]> = dirs
        .iter()
        .map(|d| {
            let q = if two { format!("{} queries", d.direction()) } else { "Queries".to_string() };
            [q, "Recall@1".into(), "95% CI".into()]
        })
        .collect();
    let mut columns: Vec<(&str, bool)> = vec![("Attribute", false), ("Group", false)];
    for g in &group {
        columns.extend(g.iter().map(|c| (c.as_str(), true)));
    }
    let mut table = Table::new(&columns);
    for (attribute, value) in plots::subgroup_keys(dirs) {
        let mut row = vec![attribute.clone(), value.clone()];
        for d in dirs {
            let s: Option<&Subgroup> =
                d.subgroups.iter().find(|s| s.attribute == attribute && s.value == value);
            row.extend([
                opt(s.and_then(|s| s.n_queries), fmt::count),
                opt(s.and_then(|s| s.recall_at_1).map(|f| f.value), fmt::pct),
                ci_pct(s.and_then(|s| s.recall_at_1).and_then(|f| f.ci95)),
            ]);
        }
        table.push(row);
    }
    table
}

/// Skipped pools in few words; per direction when the directions skipped different ones.
fn skipped_pools(dirs: &[&Relink]) -> Vec<String> {
    let same = dirs.windows(2).all(|w| w[0].skipped_pools == w[1].skipped_pools);
    if same {
        return dirs
            .first()
            .map(|d| pool_groups(&d.skipped_pools.iter().collect::<Vec<_>>()))
            .unwrap_or_default();
    }
    dirs.iter()
        .flat_map(|d| {
            pool_groups(&d.skipped_pools.iter().collect::<Vec<_>>())
                .into_iter()
                .map(|g| format!("{}: {g}", d.direction()))
        })
        .collect()
}

fn attack_table(attacks: &Attacks) -> Table {
    let mut table = Table::new(&[
        ("Attack", false),
        ("Pool N", true),
        ("Leaked pairs", true),
        ("Recall@1", true),
        ("95% CI", true),
        ("Control", true),
        ("Normalized risk", true),
        ("95% CI", true),
        ("Lift", true),
    ]);
    let strongest = strongest_row(attacks);
    for a in &attacks.attacks {
        let name = if strongest.is_some_and(|s| std::ptr::eq(s, a)) {
            format!("{} (strongest)", a.name)
        } else {
            a.name.clone()
        };
        table.push(vec![
            name,
            a.pool_size.map_or_else(|| "full".to_string(), |n| fmt::count(n as f64)),
            opt(a.leaked_pairs, fmt::count),
            opt(a.recall_at_1.map(|f| f.value), fmt::pct),
            ci_pct(a.recall_at_1.and_then(|f| f.ci95)),
            opt(a.control_recall_at_1, fmt::pct),
            opt(a.normalized_risk.map(|f| f.value), fmt::pct),
            ci_pct(a.normalized_risk.and_then(|f| f.ci95)),
            opt(a.lift_at_1, fmt::times),
        ]);
    }
    table.prune_empty_columns()
}

/// The blocks of one attack comparison: heading, side-data protocol, table, not tried.
fn attack_blocks(title: String, attacks: &Attacks) -> Vec<Block> {
    let mut blocks = vec![Block::Heading(title)];
    if let Some(side) = &attacks.side {
        let mut text = format!(
            "Side data of the attacks (tuning pairs, query bank, leaked pairs): {}.",
            side_phrase(side)
        );
        if side.cross_fitted() {
            text.push_str(
                " Each fold's queries are attacked by an attacker fitted on the other folds' records only; \
                 every query is scored once and no patient is on both sides.",
            );
        }
        blocks.push(Block::Para(vec![t(text)]));
    }
    if !attacks.attacks.is_empty() {
        blocks.push(Block::Table(attack_table(attacks)));
    }
    if !attacks.skipped.is_empty() {
        blocks.push(Block::Para(vec![t("Not tried:")]));
        blocks.push(Block::Bullets(attacks.skipped.iter().map(|s| vec![t(skipped_attack(s))]).collect()));
    }
    blocks
}

pub(super) fn attacks(model: &ReportModel) -> Option<Section> {
    let mut blocks = vec![Block::Para(vec![t(
        "Each attack is also run on a control set where the true link is absent; normalized risk is \
         (attack − control) / (1 − control). The strongest attack (highest normalized risk at the \
         reference pool) gives the headline.",
    )])];
    let mut any = false;
    for name in ranked(model) {
        let relinks: Vec<&Relink> = model.relink_of(name).collect();
        for r in &relinks {
            for d in r.directions() {
                if let Some(a) = &d.attacks {
                    any = true;
                    blocks.extend(attack_blocks(
                        format!("{name} — re-linkage {}", direction_label(d, &relinks)),
                        a,
                    ));
                }
            }
        }
        for r in model.reid_of(name) {
            if let Some(a) = &r.attacks {
                any = true;
                blocks.extend(attack_blocks(format!("{name} — re-identification, {}", r.view), a));
            }
        }
    }
    any.then(|| Section { id: "attacks".to_string(), title: "Attack comparison".to_string(), blocks })
}
