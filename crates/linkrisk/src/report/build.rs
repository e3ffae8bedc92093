//! Turns a [`ReportModel`] into a [`Document`]: the plain-language summary (headline risk,
//! the models ranked, one risk card per model, caveats) on top, then one section per audit
//! kind — each naming the model of every figure, models in rank order — then provenance.
//! Only aggregate figures the model holds are shown; every number is formatted from the
//! JSON value.

use super::doc::{b, t, Block, Document, Section, Span, Table, MISSING};
use super::fmt;
use super::model::{Epsilon, ReportModel, Side};
use super::plots;

mod headline;
mod probes;
mod relink;
mod summary;

/// Build the report document.
pub fn document(model: &ReportModel) -> Document {
    let mut sections = vec![summary::summary(model)];
    sections.extend(cohort(model));
    sections.extend(relink::relink(model));
    sections.extend(relink::attacks(model));
    sections.extend(probes::reid(model));
    sections.extend(probes::attributes(model));
    sections.extend(probes::utility(model));
    sections.extend(mitigate(model));
    sections.extend(runs(model));
    Document {
        title: "linkrisk report".to_string(),
        subtitle: vec![t(format!(
            "Run directory created {} with linkrisk {}.",
            fmt::utc(model.created_unix),
            model.linkrisk_version
        ))],
        sections,
    }
}

fn opt(v: Option<f64>, f: impl Fn(f64) -> String) -> String {
    v.map(f).unwrap_or_else(|| MISSING.to_string())
}

fn ci_pct(ci: Option<[f64; 2]>) -> String {
    ci.map(fmt::pct_interval).unwrap_or_else(|| MISSING.to_string())
}

fn ci_score(ci: Option<[f64; 2]>) -> String {
    ci.map(fmt::score_interval).unwrap_or_else(|| MISSING.to_string())
}

fn plural(view: &str) -> String {
    if view.ends_with('s') {
        view.to_string()
    } else {
        format!("{view}s")
    }
}

fn kind_label(kind: &str) -> String {
    match kind {
        "pathology_matched" => "pathology-matched".to_string(),
        other => other.replace('_', " "),
    }
}

/// Where side data came from, in words: `cross-fitted within the audited split (5 folds,
/// grouped by patient)` or `1,660 labelled pairs from split train`.
fn side_phrase(side: &Side) -> String {
    if side.cross_fitted() {
        match side.folds {
            Some(k) => {
                format!("cross-fitted within the audited split ({} folds, grouped by patient)", fmt::count(k))
            }
            None => "cross-fitted within the audited split (folds grouped by patient)".to_string(),
        }
    } else {
        let source =
            side.source.strip_prefix("split ").map_or(side.source.clone(), |s| format!("the {s} split"));
        match side.n_pairs {
            Some(n) => format!("{} labelled pairs from {source}", fmt::count(n)),
            None => format!("from {source}"),
        }
    }
}

fn mitigation_sentence(model: &ReportModel) -> Option<Vec<Span>> {
    let m = model.mitigate.first()?;
    let pool = plots::frontier_pool(m)?;
    let private = m
        .points
        .iter()
        .filter_map(|p| match p.epsilon {
            Epsilon::Finite(e) => Some((e, p)),
            Epsilon::Infinite => None,
        })
        .min_by(|a, b| a.0.total_cmp(&b.0))?;
    let baseline = m.points.iter().find(|p| p.epsilon == Epsilon::Infinite)?;
    let pick = |p: &super::model::MitigatePoint| {
        let mut c: Vec<_> = p.cohorts.iter().collect();
        c.sort_by_key(|c| plots::cohort_name(&c.cohort).0 != 1);
        c.first().map(|c| (*c).clone())
    };
    let (after, before) = (pick(private.1)?, pick(baseline)?);
    let (r_after, r_before) =
        (plots::recall_at(&after.relink, pool)?, plots::recall_at(&before.relink, pool)?);
    let mut spans = vec![t(format!(
        "Mitigation: differentially private projection heads at {} bring Recall@1 at N={} on the {} cohort from {} (non-private heads) to ",
        plots::epsilon_label(&private.1.epsilon),
        fmt::pool(pool),
        plots::cohort_name(&after.cohort).1,
        fmt::pct(r_before.value)
    ))];
    spans.push(b(fmt::pct(r_after.value)));
    if let Some(red) = after.relative_reduction {
        spans.push(t(format!(" (a {} relative reduction)", fmt::pct(red))));
    }
    match (baseline.utility_macro_auroc, private.1.utility_macro_auroc) {
        (Some(u0), Some(u1)) => spans.push(t(format!(
            "; utility macro AUROC moves from {} to {}.",
            fmt::score(u0.value),
            fmt::score(u1.value)
        ))),
        _ => spans.push(t(".")),
    }
    Some(spans)
}

fn cohort(model: &ReportModel) -> Option<Section> {
    let c = model.cohort.as_ref()?;
    let mut table =
        Table::new(&[("Records", true), ("Patients", true), ("Studies", true), ("Source", false)]);
    table.push(vec![
        opt(c.n_records, fmt::count),
        opt(c.n_patients, fmt::count),
        opt(c.n_studies, fmt::count),
        match c.synthetic {
            Some(true) => "synthetic".to_string(),
            Some(false) => "real".to_string(),
            None => MISSING.to_string(),
        },
    ]);
    let mut blocks = vec![Block::Table(table.prune_empty_columns())];
    if !c.splits.is_empty() {
        let mut splits = Table::new(&[("Split", false), ("Records", true)]);
        for (name, n) in &c.splits {
            splits.push(vec![name.clone(), fmt::count(*n)]);
        }
        blocks.push(Block::Table(splits));
    }
    if !c.views.is_empty() {
        let mut views = Table::new(&[("View", false), ("Rows", true), ("Dimension", true)]);
        for (name, n, dim) in &c.views {
            views.push(vec![name.clone(), opt(*n, fmt::count), opt(*dim, fmt::count)]);
        }
        blocks.push(Block::Table(views.prune_empty_columns()));
    }
    let mut columns = Vec::new();
    if c.has_findings == Some(true) {
        columns.push("the 14 CheXpert findings".to_string());
    }
    if !c.demographics.is_empty() {
        columns.push(format!("demographics ({})", c.demographics.join(", ")));
    }
    if !columns.is_empty() {
        blocks.push(Block::Para(vec![t(format!("Metadata includes {}.", columns.join(" and ")))]));
    }
    Some(Section { id: "cohort".to_string(), title: "Cohort".to_string(), blocks })
}

fn mitigate(model: &ReportModel) -> Option<Section> {
    if model.mitigate.is_empty() {
        return None;
    }
    let mut blocks = vec![Block::Para(vec![t(
        "Projection heads retrained with DP-SGD (the patient is the privacy unit) at each privacy \
         budget ε; re-linkage is measured on training members, held-out and external records.",
    )])];
    for (index, m) in model.mitigate.iter().enumerate() {
        blocks.push(Block::Heading(m.name.clone()));
        let pool = plots::frontier_pool(m);
        let recall_title = match pool {
            Some(p) => format!("Recall@1 at N={}", fmt::pool(p)),
            None => "Recall@1".to_string(),
        };
        let mut table = Table::new(&[
            ("ε", false),
            ("δ", true),
            ("Cohort", false),
            (recall_title.as_str(), true),
            ("95% CI", true),
            ("Reduction vs non-private", true),
            ("Utility macro AUROC", true),
        ]);
        for p in &m.points {
            let mut cohorts: Vec<_> = p.cohorts.iter().collect();
            cohorts.sort_by_key(|c| plots::cohort_name(&c.cohort));
            let eps = match p.epsilon {
                Epsilon::Finite(e) => fmt::epsilon(e),
                Epsilon::Infinite => "∞ (non-private)".to_string(),
            };
            let utility = opt(p.utility_macro_auroc.map(|f| f.value), fmt::score);
            if cohorts.is_empty() {
                table.push(vec![
                    eps.clone(),
                    opt(p.delta, |d| format!("{d:e}")),
                    MISSING.into(),
                    MISSING.into(),
                    MISSING.into(),
                    MISSING.into(),
                    utility.clone(),
                ]);
            }
            for c in cohorts {
                let recall = pool.and_then(|pool| plots::recall_at(&c.relink, pool));
                table.push(vec![
                    eps.clone(),
                    opt(p.delta, |d| format!("{d:e}")),
                    plots::cohort_name(&c.cohort).1,
                    opt(recall.map(|f| f.value), fmt::pct),
                    ci_pct(recall.and_then(|f| f.ci95)),
                    opt(c.relative_reduction, fmt::pct),
                    opt(p.utility_for(&c.cohort).map(|f| f.value), fmt::score),
                ]);
            }
        }
        blocks.push(Block::Table(table.prune_empty_columns()));
        if let Some(fig) = plots::frontier(m, index) {
            blocks.push(Block::Figures(vec![fig]));
        }
    }
    Some(Section {
        id: "mitigate".to_string(),
        title: "Mitigation: privacy–utility trade-off".to_string(),
        blocks,
    })
}

fn runs(model: &ReportModel) -> Option<Section> {
    if model.runs.is_empty() {
        return None;
    }
    let mut table = Table::new(&[
        ("Audit", false),
        ("Model", false),
        ("Command", false),
        ("Seed", true),
        ("Started", false),
        ("Time", true),
    ]);
    for r in &model.runs {
        table.push(vec![
            r.key.clone(),
            r.model.clone().unwrap_or_else(|| MISSING.to_string()),
            r.command.join(" "),
            r.seed.map_or_else(|| MISSING.to_string(), |s| s.to_string()),
            fmt::utc(r.started_unix),
            fmt::seconds(r.seconds),
        ]);
    }
    Some(Section {
        id: "runs".to_string(),
        title: "Provenance".to_string(),
        blocks: vec![
            Block::Para(vec![t(
                "Every audit recorded in run.json, with its command line, seed and wall time.",
            )]),
            Block::Table(table),
        ],
    })
}
