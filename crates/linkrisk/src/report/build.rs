//! Turns a [`ReportModel`] into a [`Document`]: the plain-language summary (headline risk
//! and caveats) on top, then one section per audit kind, then provenance. Only aggregate
//! figures the model holds are shown; every number is formatted from the JSON value.

use super::doc::{b, t, Block, Document, Figure, Section, Span, Table, MISSING};
use super::fmt;
use super::model::{Attack, Epsilon, Pool, Relink, ReportModel};
use super::plots::{self, HEADLINE_POOL};

/// Build the report document.
pub fn document(model: &ReportModel) -> Document {
    let mut sections = vec![summary(model)];
    sections.extend(cohort(model));
    sections.extend(relink(model));
    sections.extend(attacks(model));
    sections.extend(reid(model));
    sections.extend(attributes(model));
    sections.extend(utility(model));
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

/// The figure a headline is about: which measurement, at which pool.
struct Headline<'a> {
    relink: &'a Relink,
    attack: Option<&'a Attack>,
    pool: Pool,
    recall: super::model::Figure,
    chance: Option<f64>,
    lift: Option<f64>,
}

impl Headline<'_> {
    /// Ordering key: pool N = 10,000 first, then the larger lift (or Recall@1 without one).
    fn strength(&self) -> (bool, f64) {
        (self.pool == Pool::Size(HEADLINE_POOL), self.lift.unwrap_or(self.recall.value))
    }
}

/// Plain cosine figure of one relink: random pool 10,000, else the largest random pool,
/// else the full database.
fn plain_headline(r: &Relink) -> Option<Headline<'_>> {
    let mut random: Vec<_> =
        r.pools.iter().filter(|p| p.kind == "random" && p.recall_at_1.is_some()).collect();
    random.sort_by_key(|p| (p.pool_size == HEADLINE_POOL, p.pool_size));
    if let Some(p) = random.last() {
        return Some(Headline {
            relink: r,
            attack: None,
            pool: Pool::Size(p.pool_size),
            recall: p.recall_at_1?,
            chance: p.chance_at_1,
            lift: p.lift_at_1,
        });
    }
    let full = r.full.as_ref()?;
    Some(Headline {
        relink: r,
        attack: None,
        pool: Pool::Full,
        recall: full.recall_at_1?,
        chance: full.chance_at_1,
        lift: full.lift_at_1,
    })
}

/// The strongest attack's figure of one relink (the audit names it in `strongest_attack`),
/// preferring its pool-10,000 row, else its largest pool, else its full-database row; none
/// when the strongest is plain cosine.
fn attack_headline(r: &Relink) -> Option<Headline<'_>> {
    let attacks = r.attacks.as_ref()?;
    // Plain cosine as the strongest is the audit's own figure: the plain headline says it.
    let strongest = attacks.strongest.as_ref().filter(|s| s.as_str() != "cosine")?;
    let mut rows: Vec<&Attack> = attacks
        .attacks
        .iter()
        .filter(|a| &a.name == strongest && a.recall_at_1.is_some())
        .filter(|a| {
            attacks.strongest_leaked_pairs.is_none() || a.leaked_pairs == attacks.strongest_leaked_pairs
        })
        .collect();
    rows.sort_by_key(|a| match a.pool_size {
        Some(n) => (n == HEADLINE_POOL, n),
        None => (false, 0),
    });
    let a = rows.last()?;
    Some(Headline {
        relink: r,
        attack: Some(a),
        pool: a.pool_size.map_or(Pool::Full, Pool::Size),
        recall: a.recall_at_1?,
        chance: a.chance_at_1,
        lift: a.lift_at_1,
    })
}

fn pool_phrase(h: &Headline) -> String {
    match h.pool {
        Pool::Size(n) => format!("a pool of {} candidates", fmt::count(n as f64)),
        Pool::Full => match h.relink.n_gallery {
            Some(n) => format!("the full database of {} {}", fmt::count(n), plural(&h.relink.gallery_view)),
            None => "the full database".to_string(),
        },
    }
}

fn headline_sentence(h: &Headline) -> Vec<Span> {
    let r = h.relink;
    let mut spans = Vec::new();
    if let Some(a) = h.attack {
        spans.push(t(format!("With the strongest attack tried ({}), an attacker", a.name)));
    } else {
        spans.push(t("An attacker"));
    }
    spans.push(t(format!(
        " with this model and the {} database finds the right {} first for ",
        r.gallery_view, r.gallery_view
    )));
    spans.push(b(format!("{} in 1,000", fmt::sig(h.recall.value * 1000.0, 3))));
    spans.push(t(format!(" {} at {}", plural(&r.query_view), pool_phrase(h))));
    let mut detail = format!(" (Recall@1 {}", fmt::pct(h.recall.value));
    if let Some(ci) = h.recall.ci95 {
        detail.push_str(&format!(", 95% CI {}", fmt::pct_interval(ci)));
    }
    detail.push(')');
    spans.push(t(detail));
    if let Some(lift) = h.lift {
        spans.push(t(": "));
        spans.push(b(format!("{} times chance", fmt::sig(lift, 3))));
        if let Some(c) = h.chance {
            spans.push(t(format!(" (chance {})", fmt::pct(c))));
        }
    } else if let Some(risk) = h.attack.and_then(|a| a.normalized_risk) {
        spans.push(t(format!("; normalized risk over the control baseline {}", fmt::pct(risk.value))));
    }
    spans.push(t("."));
    spans
}

fn summary(model: &ReportModel) -> Section {
    let mut blocks = Vec::new();
    let plain: Vec<Headline> = model.relink.iter().filter_map(plain_headline).collect();
    let attacked: Vec<Headline> = model.relink.iter().filter_map(attack_headline).collect();
    // The headline is the strongest figure: attacks first, so a tie names the attack.
    let head = attacked.iter().chain(plain.iter()).fold(None::<&Headline>, |best, h| match best {
        Some(b) if b.strength() >= h.strength() => Some(b),
        _ => Some(h),
    });
    if let Some(h) = head {
        let mut spans = vec![b("Headline risk."), t(" ")];
        spans.extend(headline_sentence(h));
        if model.relink.len() > 1 {
            spans.push(t(format!(" Measurement: {}.", h.relink.name)));
        }
        blocks.push(Block::Lead(spans));
        if h.attack.is_some() {
            if let Some(p) = plain.iter().find(|p| std::ptr::eq(p.relink, h.relink)) {
                let mut spans = vec![t(format!("Plain cosine similarity alone, at {}: ", pool_phrase(p)))];
                spans.push(b(format!("{} in 1,000", fmt::sig(p.recall.value * 1000.0, 3))));
                if let Some(lift) = p.lift {
                    spans.push(t(format!(", {} times chance", fmt::sig(lift, 3))));
                }
                spans.push(t("."));
                blocks.push(Block::Para(spans));
            }
        }
    }
    if let Some(sentence) = reid_sentence(model) {
        blocks.push(Block::Para(sentence));
    }
    if let Some(sentence) = mitigation_sentence(model) {
        blocks.push(Block::Para(sentence));
    }
    if !model.has_audits() {
        blocks.push(Block::Para(vec![t(
            "This run directory holds no audit results yet: run an audit with `--out` pointing here.",
        )]));
    }
    blocks.push(Block::Heading("Caveats".to_string()));
    blocks.push(Block::Bullets(caveats(model, head)));
    Section { id: "summary".to_string(), title: "Summary".to_string(), blocks }
}

fn reid_sentence(model: &ReportModel) -> Option<Vec<Span>> {
    // Candidates: each audit's Rank-1, and the strongest attack row of its attack comparison.
    let mut candidates: Vec<(&super::model::Reid, super::model::Figure, String)> = Vec::new();
    for r in &model.reid {
        if let Some(f) = r.rank_1 {
            let who = match &r.attacker {
                Some(a) => format!("trained attacker {a}"),
                None => "nearest neighbour".to_string(),
            };
            candidates.push((r, f, who));
        }
        if let Some(attacks) = &r.attacks {
            let strongest = attacks.strongest.as_deref();
            for a in attacks.attacks.iter().filter(|a| Some(a.name.as_str()) == strongest) {
                if let Some(f) = a.recall_at_1 {
                    candidates.push((r, f, format!("attack {}", a.name)));
                }
            }
        }
    }
    let (r, fig, who) = candidates.into_iter().fold(
        None,
        |best: Option<(&super::model::Reid, super::model::Figure, String)>, c| match best {
            Some(b) if b.1.value >= c.1.value => Some(b),
            _ => Some(c),
        },
    )?;
    let mut spans = vec![t("Re-identification: for ")];
    spans.push(b(fmt::pct(fig.value)));
    let mut rest = format!(" of query {}", plural(&r.view));
    if let Some(ci) = fig.ci95 {
        rest.push_str(&format!(" (95% CI {})", fmt::pct_interval(ci)));
    }
    rest.push_str(&format!(
        ", the most similar other {} belongs to the same patient (Rank-1, {who}).",
        r.view
    ));
    spans.push(t(rest));
    Some(spans)
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

fn caveats(model: &ReportModel, head: Option<&Headline>) -> Vec<Vec<Span>> {
    let mut out = Vec::new();
    match model.cohort.as_ref().and_then(|c| c.synthetic) {
        Some(true) => out.push(vec![
            b("Synthetic cohort."),
            t(" These figures show what linkrisk measures; they say nothing about any real model or patient population."),
        ]),
        Some(false) => out.push(vec![
            b("This cohort, this model."),
            t(" The figures describe this model on this cohort; another cohort, split or pool size gives other numbers."),
        ]),
        None => out.push(vec![
            b("Cohort not recorded."),
            t(" No cohort summary is in run.json; check which cohort (real or synthetic) these audits ran on."),
        ]),
    }
    let attack_names: Vec<String> = model
        .relink
        .iter()
        .filter_map(|r| r.attacks.as_ref())
        .flat_map(|a| a.attacks.iter().map(|x| x.name.clone()))
        .fold(Vec::new(), |mut v, n| {
            if !v.contains(&n) {
                v.push(n);
            }
            v
        });
    if attack_names.is_empty() {
        out.push(vec![
            b("A lower bound."),
            t(" Only plain cosine nearest-neighbour matching was tried. A real attacker tries harder \
               (hubness corrections, one-to-one assignment, leaked pairs): run the audits with `--attack all`."),
        ]);
    } else {
        out.push(vec![
            b("A lower bound."),
            t(format!(
                " The headline is the strongest of the attacks tried ({}); an attacker with more \
                 side information or a better method may still do better.",
                attack_names.join(", ")
            )),
        ]);
    }
    out.push(vec![
        b("The pool matters."),
        t(" Recall@1 falls as the candidate pool grows. An attacker who can narrow the candidates \
           (by date, site or findings) faces a smaller pool and succeeds more often: see the figures by pool size."),
    ]);
    if let Some(h) = head {
        if let Pool::Size(n) = h.pool {
            if let Some(p) = h.relink.pools.iter().find(|p| p.pool_size == n && p.kind == "pathology_matched")
            {
                if let (Some(rec), Some(lift)) = (p.recall_at_1, p.lift_at_1) {
                    out.push(vec![
                        b("Not a disease-label shortcut."),
                        t(format!(
                            " With pathology-matched negatives (candidates with the same findings) Recall@1 at N={} \
                             is still {}, {} times chance.",
                            fmt::count(n as f64),
                            fmt::pct(rec.value),
                            fmt::sig(lift, 3)
                        )),
                    ]);
                }
            }
        }
    }
    out.push(vec![
        b("Uncertainty."),
        t(" Intervals are the audits' 95% confidence intervals; they cover the sampling of queries \
           (and of random pools), not the choice of cohort or model."),
    ]);
    out.push(vec![
        b("Aggregates only."),
        t(" This report shows aggregate figures; per-record results are never included."),
    ]);
    out
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

fn kind_label(kind: &str) -> String {
    match kind {
        "pathology_matched" => "pathology-matched".to_string(),
        other => other.replace('_', " "),
    }
}

fn relink(model: &ReportModel) -> Option<Section> {
    if model.relink.is_empty() {
        return None;
    }
    let mut blocks = vec![Block::Para(vec![t(
        "Each query is ranked against candidate pools by cosine similarity; Recall@1 is how often \
         its own record is ranked first. Chance is 1/N; lift is Recall@1 divided by chance.",
    )])];
    if model.relink.len() > 1 {
        blocks.push(Block::Heading("Comparison: Recall@1 (lift) with random pools".to_string()));
        blocks.push(Block::Table(relink_comparison(&model.relink)));
    }
    for r in &model.relink {
        let mut title = r.direction();
        if let Some(split) = &r.split {
            title.push_str(&format!(", {split} split"));
        }
        if model.relink.len() > 1 {
            title.push_str(&format!(" — {}", r.name));
        }
        blocks.push(Block::Heading(title));
        if let (Some(q), Some(g)) = (r.n_queries, r.n_gallery) {
            blocks.push(Block::Para(vec![t(format!(
                "{} {} queries against {} {}.",
                fmt::count(q),
                r.query_view,
                fmt::count(g),
                plural(&r.gallery_view)
            ))]));
        }
        let mut table = Table::new(&[
            ("Pool", false),
            ("N", true),
            ("Trials", true),
            ("Recall@1", true),
            ("95% CI", true),
            ("Chance", true),
            ("Lift", true),
            ("Exact expectation", true),
        ]);
        let mut pools: Vec<_> = r.pools.iter().collect();
        pools.sort_by_key(|p| (p.kind != "random", p.kind.clone(), p.pool_size));
        for p in pools {
            table.push(vec![
                kind_label(&p.kind),
                fmt::count(p.pool_size as f64),
                opt(p.trials, fmt::count),
                opt(p.recall_at_1.map(|f| f.value), fmt::pct),
                ci_pct(p.recall_at_1.and_then(|f| f.ci95)),
                opt(p.chance_at_1, fmt::pct),
                opt(p.lift_at_1, fmt::times),
                opt(p.expected_recall_at_1, fmt::pct),
            ]);
        }
        if let Some(f) = &r.full {
            table.push(vec![
                "full database".to_string(),
                opt(r.n_gallery, fmt::count),
                MISSING.to_string(),
                opt(f.recall_at_1.map(|f| f.value), fmt::pct),
                ci_pct(f.recall_at_1.and_then(|f| f.ci95)),
                opt(f.chance_at_1, fmt::pct),
                opt(f.lift_at_1, fmt::times),
                MISSING.to_string(),
            ]);
        }
        if !table.rows.is_empty() {
            blocks.push(Block::Table(table.prune_empty_columns()));
        }
        if let Some(f) = &r.full {
            let mut full = Table::new(&[
                ("Full database", false),
                ("Recall@1", true),
                ("Recall@5", true),
                ("Recall@10", true),
                ("MRR", true),
                ("Median rank", true),
            ]);
            full.push(vec![
                r.direction(),
                opt(f.recall_at_1.map(|f| f.value), fmt::pct),
                opt(f.recall_at_5, fmt::pct),
                opt(f.recall_at_10, fmt::pct),
                opt(f.mrr, fmt::score),
                opt(f.median_rank, fmt::rank),
            ]);
            blocks.push(Block::Table(full.prune_empty_columns()));
        }
    }
    let figures: Vec<Figure> = [plots::recall_vs_pool(&model.relink), plots::lift_vs_pool(&model.relink)]
        .into_iter()
        .flatten()
        .collect();
    if !figures.is_empty() {
        blocks.push(Block::Figures(figures));
    }
    Some(Section { id: "relink".to_string(), title: "Cross-modal re-linkage".to_string(), blocks })
}

/// One row per relink audit, one column per random pool size (and the full database):
/// Recall@1 with its lift, to compare models (e.g. the demo's specialization levels).
fn relink_comparison(relinks: &[Relink]) -> Table {
    let mut sizes: Vec<u64> = relinks
        .iter()
        .flat_map(|r| r.pools.iter().filter(|p| p.kind == "random").map(|p| p.pool_size))
        .collect();
    sizes.sort_unstable();
    sizes.dedup();
    let titles: Vec<String> = sizes.iter().map(|&n| format!("N={}", fmt::count(n as f64))).collect();
    let mut columns: Vec<(&str, bool)> = vec![("Measurement", false)];
    columns.extend(titles.iter().map(|t| (t.as_str(), true)));
    columns.push(("Full database", true));
    let mut table = Table::new(&columns);
    let cell = |recall: Option<f64>, lift: Option<f64>| match (recall, lift) {
        (Some(r), Some(l)) => format!("{} ({})", fmt::pct(r), fmt::times(l)),
        (Some(r), None) => fmt::pct(r),
        _ => MISSING.to_string(),
    };
    for r in relinks {
        let mut row = vec![r.name.clone()];
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

fn attack_table(attacks: &super::model::Attacks) -> Table {
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
    for a in &attacks.attacks {
        let strongest = attacks.strongest.as_deref() == Some(a.name.as_str())
            && (attacks.strongest_leaked_pairs.is_none() || a.leaked_pairs == attacks.strongest_leaked_pairs);
        let name = if strongest { format!("{} (strongest)", a.name) } else { a.name.clone() };
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

fn attacks(model: &ReportModel) -> Option<Section> {
    let mut blocks = vec![Block::Para(vec![t(
        "Each attack is also run on a control set where the true link is absent; normalized risk is \
         (attack − control) / (1 − control). The headline uses the strongest attack.",
    )])];
    let relinks = model
        .relink
        .iter()
        .filter_map(|r| Some((format!("Re-linkage {}", r.direction()), r.attacks.as_ref()?)));
    let reids = model
        .reid
        .iter()
        .filter_map(|r| Some((format!("Re-identification, {}", r.view), r.attacks.as_ref()?)));
    let mut any = false;
    for (title, attacks) in relinks.chain(reids) {
        if attacks.attacks.is_empty() {
            continue;
        }
        any = true;
        blocks.push(Block::Heading(title));
        blocks.push(Block::Table(attack_table(attacks)));
    }
    any.then(|| Section { id: "attacks".to_string(), title: "Attack comparison".to_string(), blocks })
}

fn reid(model: &ReportModel) -> Option<Section> {
    if model.reid.is_empty() {
        return None;
    }
    let mut ranks: Vec<u64> = model.reid.iter().flat_map(|r| r.cmc.iter().map(|c| c.0)).collect();
    ranks.sort_unstable();
    ranks.dedup();
    // CMC@1 is Rank-1 again when every audit reports both with the same value.
    let cmc1_repeats = model.reid.iter().all(|r| {
        r.rank_1.is_some_and(|r1| r.cmc.iter().find(|c| c.0 == 1).is_none_or(|c| c.1.value == r1.value))
    });
    if cmc1_repeats {
        ranks.retain(|&k| k != 1);
    }
    // One column per attacker, side by side; one row per figure.
    let names = plots::reid_names(model);
    let mut columns: Vec<(&str, bool)> = vec![("Measure", false)];
    columns.extend(names.iter().map(|n| (n.as_str(), true)));
    let mut table = Table::new(&columns);
    let mut row = |label: String, cell: &dyn Fn(&super::model::Reid) -> String| {
        let mut cells = vec![label];
        cells.extend(model.reid.iter().map(cell));
        if cells[1..].iter().any(|c| c != MISSING) {
            table.push(cells);
        }
    };
    row("Queries".into(), &|r| opt(r.n_queries, fmt::count));
    row("Gallery".into(), &|r| opt(r.n_gallery, fmt::count));
    row("Rank-1".into(), &|r| opt(r.rank_1.map(|f| f.value), fmt::pct));
    row("Rank-1 95% CI".into(), &|r| ci_pct(r.rank_1.and_then(|f| f.ci95)));
    for &k in &ranks {
        row(format!("CMC@{k}"), &|r| opt(r.cmc.iter().find(|c| c.0 == k).map(|c| c.1.value), fmt::pct));
    }
    row("mAP".into(), &|r| opt(r.map.map(|f| f.value), fmt::score));
    row("mAP 95% CI".into(), &|r| ci_score(r.map.and_then(|f| f.ci95)));
    row("Verification AUROC".into(), &|r| opt(r.verification_auroc.map(|f| f.value), fmt::score));
    row("AUROC 95% CI".into(), &|r| ci_score(r.verification_auroc.and_then(|f| f.ci95)));
    let mut blocks = vec![
        Block::Para(vec![t(
            "Queries are images of patients with at least two studies; the gallery is every other \
             image. Rank-1 is how often the nearest other image belongs to the same patient; CMC@k \
             how often one of the k nearest does. A trained attacker learns a metric on other patients.",
        )]),
        Block::Table(table),
    ];
    let figures: Vec<Figure> =
        [plots::cmc(model), plots::verification_roc(model)].into_iter().flatten().collect();
    if !figures.is_empty() {
        blocks.push(Block::Figures(figures));
    }
    Some(Section { id: "reid".to_string(), title: "Patient re-identification".to_string(), blocks })
}

fn attributes(model: &ReportModel) -> Option<Section> {
    if model.attributes.is_empty() {
        return None;
    }
    let mut blocks = vec![Block::Para(vec![t(
        "Linear probes predict each attribute from the embeddings (AUROC on the test split), also \
         separately for re-identified and not re-identified records; p is the DeLong test of the difference.",
    )])];
    for a in &model.attributes {
        if model.attributes.len() > 1 {
            blocks.push(Block::Heading(a.name.clone()));
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
    if let Some(fig) = plots::attribute_roc(model) {
        blocks.push(Block::Figures(vec![fig]));
    }
    Some(Section { id: "attributes".to_string(), title: "Attribute inference".to_string(), blocks })
}

fn utility(model: &ReportModel) -> Option<Section> {
    if model.utility.is_empty() {
        return None;
    }
    let mut blocks = vec![Block::Para(vec![t(
        "Utility: a linear probe's AUROC for each finding on the test split, and their macro average.",
    )])];
    let order = |name: &str| crate::cohort::FINDINGS.iter().position(|f| *f == name).unwrap_or(usize::MAX);
    if model.utility.len() > 1 {
        blocks.extend(utility_comparison(&model.utility, order));
        return Some(Section { id: "utility".to_string(), title: "Utility".to_string(), blocks });
    }
    for u in &model.utility {
        if let Some(m) = u.macro_auroc {
            let mut spans = vec![t(format!("Macro AUROC ({} view): ", u.view)), b(fmt::score(m.value))];
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
    }
    Some(Section { id: "utility".to_string(), title: "Utility".to_string(), blocks })
}

/// Several utility audits (e.g. one per model) side by side: the macro AUROC with its
/// interval, then one row per finding, one column per audit.
fn utility_comparison(utilities: &[super::model::Utility], order: impl Fn(&str) -> usize) -> Vec<Block> {
    let names: Vec<String> = utilities.iter().map(|u| format!("{} ({})", u.name, u.view)).collect();
    let mut columns = vec![("Finding", false)];
    columns.extend(names.iter().map(|n| (n.as_str(), true)));
    let mut table = Table::new(&columns);
    let macro_row = |cell: fn(super::model::Figure) -> String| -> Vec<String> {
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

fn mitigate(model: &ReportModel) -> Option<Section> {
    if model.mitigate.is_empty() {
        return None;
    }
    let mut blocks = vec![Block::Para(vec![t(
        "Projection heads retrained with DP-SGD (the patient is the privacy unit) at each privacy \
         budget ε; re-linkage is measured on training members, held-out and external records.",
    )])];
    for (index, m) in model.mitigate.iter().enumerate() {
        if model.mitigate.len() > 1 {
            blocks.push(Block::Heading(m.name.clone()));
        }
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
        ("Command", false),
        ("Seed", true),
        ("Started", false),
        ("Time", true),
    ]);
    for r in &model.runs {
        table.push(vec![
            r.key.clone(),
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
