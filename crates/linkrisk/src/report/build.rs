//! Turns a [`ReportModel`] into a [`Document`]: the plain-language summary (headline risk,
//! the models ranked, one risk card per model, caveats) on top, then one section per audit
//! kind — each naming the model of every figure, models in rank order — then provenance.
//! Only aggregate figures the model holds are shown; every number is formatted from the
//! JSON value.

use super::doc::{b, t, Block, Document, Section, Span, Table, MISSING};
use super::fmt;
use super::model::{Epsilon, Pool, ReportModel, Side};
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

/// The held-out (else first) cohort of a mitigation row.
fn mitigation_cohort(p: &super::model::MitigatePoint) -> Option<&super::model::MitigateCohort> {
    p.cohorts.iter().min_by_key(|c| {
        let order = plots::cohort_name(&c.cohort).0;
        (order != 1, order)
    })
}

/// "the 48.6% lower" / "42.0% higher" wording of a relative change `1 - r / r0`.
fn change_words(reduction: f64) -> String {
    if reduction >= 0.0 {
        format!("a {} relative reduction", fmt::pct(reduction))
    } else {
        format!("{} more than the audited model", fmt::pct(-reduction))
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
    let non_private = m.points.iter().find(|p| p.epsilon == Epsilon::Infinite);
    let after = mitigation_cohort(private.1)?;
    let r_after = plots::recall_at(&after.relink, pool)?;
    let cohort_text = plots::cohort_name(&after.cohort).1;
    let same_cohort = |p: &super::model::MitigatePoint| {
        p.cohorts.iter().find(|c| c.cohort == after.cohort).and_then(|c| plots::recall_at(&c.relink, pool))
    };
    let eps = plots::epsilon_label(&private.1.epsilon);
    let mut spans = Vec::new();
    let audited = m.audited.as_ref().and_then(|a| same_cohort(a).map(|r| (a, r)));
    match audited {
        Some((a, r_audited)) => {
            spans.push(t(format!("Mitigation: differentially private projection heads at {eps} link ")));
            spans.push(b(fmt::pct(r_after.value)));
            spans.push(t(format!(
                " of {cohort_text} records at N={} (Recall@1), against {} for the audited model",
                fmt::pool(pool),
                fmt::pct(r_audited.value)
            )));
            if let Some(reduction) = after
                .relative_reduction_vs_audited
                .filter(|_| Some(pool) == after.reduction_pool_size.map(Pool::Size))
            {
                spans.push(t(format!(" ({})", change_words(reduction))));
            }
            let mut refs = Vec::new();
            if let Some(w) = m.warm_start.as_ref().and_then(same_cohort) {
                refs.push(format!("the public warm start {}", fmt::pct(w.value)));
            }
            if let Some(n) = non_private.and_then(same_cohort) {
                refs.push(format!("non-private heads {}", fmt::pct(n.value)));
            }
            if !refs.is_empty() {
                spans.push(t(format!("; {}", refs.join(", "))));
            }
            match (a.utility_macro_auroc, private.1.utility_macro_auroc) {
                (Some(u0), Some(u1)) => spans.push(t(format!(
                    ". Utility macro AUROC: {} (audited model) -> {}{}.",
                    fmt::score(u0.value),
                    fmt::score(u1.value),
                    private.1.utility_change_vs_audited.map_or_else(String::new, |d| format!(" ({d:+.4})"))
                ))),
                _ => spans.push(t(".")),
            }
            if r_after.value > r_audited.value {
                spans.push(b(" The DP heads link more than the audited model: shipping them instead of it would raise \
                     the re-linkage risk on these records."
                    .to_string()));
            }
        }
        None => {
            let before = non_private.and_then(same_cohort)?;
            spans.push(t(format!(
                "Mitigation: differentially private projection heads at {eps} bring Recall@1 at N={} on the {cohort_text} \
                 cohort from {} (non-private heads) to ",
                fmt::pool(pool),
                fmt::pct(before.value)
            )));
            spans.push(b(fmt::pct(r_after.value)));
            if let Some(red) = after.relative_reduction {
                spans.push(t(format!(" (a {} relative reduction)", fmt::pct(red))));
            }
            if let (Some(u0), Some(u1)) =
                (non_private.and_then(|p| p.utility_macro_auroc), private.1.utility_macro_auroc)
            {
                spans.push(t(format!(
                    "; utility macro AUROC moves from {} to {}",
                    fmt::score(u0.value),
                    fmt::score(u1.value)
                )));
            }
            spans.push(t(format!(
                ". The audited model was not evaluated ({}), so this is not a comparison with the model in use.",
                m.audited_skipped.as_deref().unwrap_or("no audited-model row (baseline) in the sweep")
            )));
        }
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
    if model.mitigate.is_empty() && model.privacy_audits.is_empty() {
        return None;
    }
    let mut blocks = vec![Block::Para(vec![t(
        "Projection heads retrained with DP-SGD (the patient is the privacy unit) at each privacy \
         budget ε, starting from public warm-start heads; re-linkage is measured on training members, \
         held-out and external records. Every row is set against the audited model (the cohort's own \
         views on the same records); the warm start and the non-private heads are further references.",
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
            ("Change vs audited model", true),
            ("Reduction vs non-private", true),
            ("Utility change vs audited", true),
            ("Utility macro AUROC", true),
        ]);
        let audited_for = |cohort: &str| {
            m.audited.as_ref().and_then(|a| a.cohorts.iter().find(|c| c.cohort == cohort).map(|c| (a, c)))
        };
        let mut rows: Vec<(String, &super::model::MitigatePoint, bool)> = Vec::new();
        if let Some(a) = &m.audited {
            rows.push(("audited model".to_string(), a, true));
        }
        if let Some(w) = &m.warm_start {
            rows.push(("public warm start".to_string(), w, false));
        }
        for p in &m.points {
            let name = match p.epsilon {
                Epsilon::Finite(e) => fmt::epsilon(e),
                Epsilon::Infinite => "∞ (non-private)".to_string(),
            };
            rows.push((name, p, false));
        }
        let mut links_more: Vec<String> = Vec::new();
        for (name, p, is_audited) in rows {
            let mut cohorts: Vec<_> = p.cohorts.iter().collect();
            cohorts.sort_by_key(|c| plots::cohort_name(&c.cohort));
            if cohorts.is_empty() {
                let mut row = vec![name.clone(), opt(p.delta, |d| format!("{d:e}"))];
                row.extend(std::iter::repeat_n(MISSING.to_string(), 6));
                row.push(opt(p.utility_macro_auroc.map(|f| f.value), fmt::score));
                table.push(row);
            }
            for c in cohorts {
                let recall = pool.and_then(|pool| plots::recall_at(&c.relink, pool));
                let audited = if is_audited { None } else { audited_for(&c.cohort) };
                let audited_recall =
                    audited.and_then(|(_, ac)| pool.and_then(|pool| plots::recall_at(&ac.relink, pool)));
                // The change relative to the audited model is the JSON's, at the subset's
                // reduction pool, shown when that is the table's pool.
                let same_pool = pool.is_some() && pool == c.reduction_pool_size.map(Pool::Size);
                let change = c.relative_reduction_vs_audited.filter(|_| !is_audited && same_pool);
                if let (Some(r), Some(a)) = (recall, audited_recall) {
                    if r.value > a.value && matches!(p.epsilon, Epsilon::Finite(_)) {
                        links_more.push(format!("ε={name} on {}", plots::cohort_name(&c.cohort).1));
                    }
                }
                let utility = p.utility_for(&c.cohort).map(|f| f.value);
                table.push(vec![
                    name.clone(),
                    opt(p.delta, |d| format!("{d:e}")),
                    plots::cohort_name(&c.cohort).1,
                    opt(recall.map(|f| f.value), fmt::pct),
                    ci_pct(recall.and_then(|f| f.ci95)),
                    opt(change, |v| {
                        if v >= 0.0 {
                            format!("−{}", fmt::pct(v))
                        } else {
                            format!("+{}", fmt::pct(-v))
                        }
                    }),
                    opt(c.relative_reduction, fmt::pct),
                    opt(p.utility_change_for(&c.cohort).filter(|_| !is_audited), |d| format!("{d:+.4}")),
                    opt(utility, fmt::score),
                ]);
            }
        }
        blocks.push(Block::Table(table.prune_empty_columns()));
        if !links_more.is_empty() {
            blocks.push(Block::Para(vec![
                b("DP heads that link more than the audited model: "),
                t(format!(
                    "{}. Shipping these heads instead of the audited model would raise the re-linkage risk on those \
                     records; the change column is relative to the audited model's Recall@1 on the same records.",
                    links_more.join("; ")
                )),
            ]));
        }
        if m.audited.is_none() {
            blocks.push(Block::Para(vec![t(format!(
                "The audited model was not evaluated ({}): the rows are compared with the non-private heads only.",
                m.audited_skipped.as_deref().unwrap_or("no audited-model row (baseline) in the sweep")
            ))]));
        }
        if let Some(fig) = plots::frontier(m, index) {
            blocks.push(Block::Figures(vec![fig]));
        }
    }
    blocks.extend(privacy_audits(model));
    Some(Section {
        id: "mitigate".to_string(),
        title: "Mitigation: privacy–utility trade-off".to_string(),
        blocks,
    })
}

/// The empirical privacy audits: per model and budget the accountant's epsilon (an upper
/// bound), the one-run lower bound and the membership-inference figures.
fn privacy_audits(model: &ReportModel) -> Vec<Block> {
    let mut blocks = Vec::new();
    for a in &model.privacy_audits {
        blocks.push(Block::Heading(format!("{} — empirical privacy audit", a.name)));
        blocks.push(Block::Para(vec![t(format!(
            "Membership inference on {} member vs {} held-out patients (loss attack; offline LiRA with {} shadow heads) \
             and the one-run audit of Steinke, Nasr and Jagielski on {} canary patients: the lower bound holds with 95% \
             confidence, the accountant's epsilon is the upper bound.{}",
            a.n_members.map_or_else(|| MISSING.to_string(), |v| fmt::count(v as f64)),
            a.n_held_out.map_or_else(|| MISSING.to_string(), |v| fmt::count(v as f64)),
            a.shadows.map_or_else(|| MISSING.to_string(), |v| fmt::count(v as f64)),
            a.canaries.map_or_else(|| MISSING.to_string(), |v| fmt::count(v as f64)),
            a.fault.as_ref().map_or_else(String::new, |f| format!(
                " Positive control: DP-SGD deliberately broken ({f}) while the claimed epsilon is kept."
            ))
        ))]));
        let mut table = Table::new(&[
            ("ε", false),
            ("Accountant ε (upper)", true),
            ("One-run ε lower bound", true),
            ("Correct guesses", true),
            ("MI AUROC (loss)", true),
            ("95% CI", true),
            ("MI AUROC (LiRA)", true),
            ("95% CI", true),
            ("TPR at FPR 0.1%", true),
            ("TPR at FPR 1%", true),
        ]);
        let mut exceeded = Vec::new();
        for p in &a.points {
            let eps = match p.epsilon {
                Epsilon::Finite(e) => fmt::epsilon(e),
                Epsilon::Infinite => "∞ (non-private)".to_string(),
            };
            if p.exceeds {
                exceeded.push(eps.clone());
            }
            let tpr = |f: f64| {
                p.tpr_at_fpr
                    .iter()
                    .find(|(x, _)| (x - f).abs() < 1e-12)
                    .map_or_else(|| MISSING.to_string(), |(_, t)| fmt::pct(t.value))
            };
            table.push(vec![
                eps,
                opt(p.accountant_epsilon, |e| format!("{e:.3}")),
                opt(p.lower_bound, |e| format!("{e:.3}")),
                p.guesses.map_or_else(|| MISSING.to_string(), |(c, g)| format!("{c} / {g}")),
                opt(p.auroc_loss.map(|f| f.value), fmt::score),
                ci_score(p.auroc_loss.and_then(|f| f.ci95)),
                opt(p.auroc_lira.map(|f| f.value), fmt::score),
                ci_score(p.auroc_lira.and_then(|f| f.ci95)),
                tpr(0.001),
                tpr(0.01),
            ]);
        }
        blocks.push(Block::Table(table.prune_empty_columns()));
        if !exceeded.is_empty() {
            blocks.push(Block::Para(vec![
                b("The lower bound exceeds the accountant's epsilon: "),
                t(format!(
                    "at ε={}. Either the training does not deliver its guarantee{}, or (with 5% probability per audit) \
                     the bound is a false alarm.",
                    exceeded.join(", "),
                    if a.fault.is_some() { " (as intended here: the positive control)" } else { "" }
                )),
            ]));
        }
    }
    blocks
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
