//! The summary on top of the report: the headline risk in words, the models ranked, one
//! risk card per model (its strongest attack, both directions, re-identification, attribute
//! inference, utility and what was not tried) and the caveats.

use super::super::doc::{b, code, t, Block, Card, Section, Span, Table, MISSING};
use super::super::fmt;
use super::super::model::{Figure, Pool, Relink, ReportModel, SkippedPool};
use super::headline::{
    direction_headline, figure_phrase, headline_sentence, model_headline, plain_headline, pool_phrase,
    pool_short, ranked, Headline,
};
use super::{ci_pct, kind_label, mitigation_sentence, opt, side_phrase};

/// The summary section.
pub(super) fn summary(model: &ReportModel) -> Section {
    let mut blocks = Vec::new();
    let order = ranked(model);
    let head = order.first().and_then(|m| Some((*m, model_headline(model, m)?)));
    if let Some((name, h)) = head {
        let mut spans = vec![b("Headline risk."), t(format!(" Model {name}"))];
        if order.len() > 1 {
            spans.push(t(format!(" (the highest risk of the {} models)", order.len())));
        }
        spans.push(t(": "));
        spans.extend(headline_sentence(&h, false));
        blocks.push(Block::Lead(spans));
        if h.attack.is_some_and(|a| a.name != "cosine") {
            if let Some(p) = plain_headline(h.relink) {
                let mut spans =
                    vec![t(format!("Plain cosine similarity alone ({name}), at {}: ", pool_phrase(&p)))];
                spans.push(b(format!("{} in 1,000", fmt::sig(p.recall.value * 1000.0, 3))));
                if let Some(lift) = p.lift {
                    spans.push(t(format!(", {} times chance", fmt::sig(lift, 3))));
                }
                spans.push(t("."));
                blocks.push(Block::Para(spans));
            }
        }
    }
    if order.len() > 1 {
        blocks.push(Block::Heading("Models ranked by re-linkage risk".to_string()));
        blocks.push(Block::Table(ranking(model, &order)));
    }
    let cards: Vec<Card> = order.iter().filter_map(|m| card(model, m)).collect();
    if !cards.is_empty() {
        blocks.push(Block::Cards(cards));
    }
    if let Some(sentence) = mitigation_sentence(model) {
        blocks.push(Block::Para(sentence));
    }
    if !model.has_audits() {
        blocks.push(Block::Para(vec![
            t("This run directory holds no audit results yet: run an audit with "),
            code("--out"),
            t(" pointing here."),
        ]));
    }
    blocks.push(Block::Heading("Caveats".to_string()));
    blocks.push(Block::Bullets(caveats(model, head)));
    Section { id: "summary".to_string(), title: "Summary".to_string(), blocks }
}

/// One row per model in rank order: its headline figure, re-ID Rank-1 and utility.
fn ranking(model: &ReportModel, order: &[&str]) -> Table {
    let mut table = Table::new(&[
        ("Rank", false),
        ("Model", false),
        ("Strongest attack", false),
        ("Direction", false),
        ("Pool N", true),
        ("Recall@1", true),
        ("95% CI", true),
        ("Lift", true),
        ("Re-ID Rank-1", true),
        ("Utility macro AUROC", true),
    ]);
    for (i, name) in order.iter().enumerate() {
        let h = model_headline(model, name);
        table.push(vec![
            (i + 1).to_string(),
            name.to_string(),
            h.map_or_else(|| MISSING.to_string(), |h| h.attack_name().to_string()),
            h.map_or_else(|| MISSING.to_string(), |h| h.relink.direction()),
            h.map_or_else(|| MISSING.to_string(), |h| fmt::pool(h.pool)),
            opt(h.map(|h| h.recall.value), fmt::pct),
            ci_pct(h.and_then(|h| h.recall.ci95)),
            opt(h.and_then(|h| h.lift), fmt::times),
            opt(strongest_reid(model, name).map(|r| r.1.value), fmt::pct),
            opt(model.utility_of(name).find_map(|u| u.macro_auroc).map(|f| f.value), fmt::score),
        ]);
    }
    table.prune_empty_columns()
}

/// The strongest re-identification figure of a model: each entry's Rank-1 and the strongest
/// row of its attack comparison, as (who, figure, view).
pub(super) fn strongest_reid(model: &ReportModel, name: &str) -> Option<(String, Figure, String)> {
    let mut best: Option<(String, Figure, String)> = None;
    for r in model.reid_of(name) {
        let mut candidates = Vec::new();
        if let Some(f) = r.rank_1 {
            let who = match &r.attacker {
                Some(a) => format!("trained attacker {a}"),
                None => "nearest neighbour".to_string(),
            };
            candidates.push((who, f));
        }
        if let Some(a) = r.attacks.as_ref().and_then(super::headline::strongest_row) {
            if let Some(f) = a.recall_at_1 {
                candidates.push((format!("attack {}", a.name), f));
            }
        }
        for (who, f) in candidates {
            if best.as_ref().is_none_or(|b| f.value > b.1.value) {
                best = Some((who, f, r.view.clone()));
            }
        }
    }
    best
}

fn with_ci(text: String, ci: Option<[f64; 2]>, format: fn([f64; 2]) -> String) -> String {
    match ci {
        Some(ci) => format!("{text} (95% CI {})", format(ci)),
        None => text,
    }
}

/// A model's risk card.
fn card(model: &ReportModel, name: &str) -> Option<Card> {
    let mut items: Vec<(String, Vec<Span>)> = Vec::new();
    let head = model_headline(model, name);
    if let Some(h) = head {
        let what = match h.attack {
            Some(a) => format!("{} (strongest attack tried)", a.name),
            None => "cosine (plain nearest neighbour; no attack comparison)".to_string(),
        };
        items.push((
            "Headline".to_string(),
            vec![
                t(format!("{what}, {} at {}: ", h.relink.direction(), pool_short(h.pool))),
                b(figure_phrase(&h)),
            ],
        ));
        if let Some(p) = h.attack.filter(|a| a.name != "cosine").and(plain_headline(h.relink)) {
            items.push((
                "Plain cosine".to_string(),
                vec![t(format!("{} at {}: {}", p.relink.direction(), pool_short(p.pool), figure_phrase(&p)))],
            ));
        }
    }
    let relinks: Vec<&Relink> = model.relink_of(name).collect();
    let directions: Vec<&Relink> = relinks.iter().flat_map(|r| r.directions()).collect();
    if directions.len() > 1 {
        for d in &directions {
            if let Some(h) = direction_headline(d) {
                items.push((
                    direction_label(d, &relinks),
                    vec![t(format!("{} at {}: {}", h.attack_name(), pool_short(h.pool), figure_phrase(&h)))],
                ));
            }
        }
    }
    let tried = attacks_tried(&directions);
    if !tried.is_empty() {
        let mut text = tried.join(", ");
        let per = |f: &dyn Fn(&Relink) -> Option<String>| -> Vec<(String, String)> {
            directions.iter().filter_map(|d| Some((direction_label(d, &relinks), f(d)?))).collect()
        };
        let strongest = per(&|d| d.attacks.as_ref()?.strongest.clone());
        let sides = per(&|d| d.attacks.as_ref()?.side.as_ref().map(side_phrase));
        for (what, list) in [("strongest", strongest), ("side data", sides)] {
            if list.is_empty() {
                continue;
            }
            let all_same = list.iter().all(|x| x.1 == list[0].1);
            let shown: Vec<String> = if all_same {
                vec![list[0].1.clone()]
            } else {
                list.iter().map(|(d, x)| format!("{x} ({d})")).collect()
            };
            text.push_str(&format!("; {what}: {}", shown.join(", ")));
        }
        items.push(("Attacks tried".to_string(), vec![t(text)]));
    }
    if let Some((who, f, view)) = strongest_reid(model, name) {
        items.push((
            "Re-identification".to_string(),
            vec![t(format!(
                "{} of query {}s, Rank-1 ({who})",
                with_ci(fmt::pct(f.value), f.ci95, fmt::pct_interval),
                view
            ))],
        ));
    }
    for a in model.attributes_of(name) {
        let mut targets: Vec<_> = a.targets.iter().filter(|t| t.auroc.is_some()).collect();
        targets.sort_by_key(|t| super::super::plots::attribute_order(&t.name));
        let text: Vec<String> = targets
            .iter()
            .filter_map(|t| {
                let f = t.auroc?;
                Some(format!("{} {}", t.name, with_ci(fmt::score(f.value), f.ci95, fmt::score_interval)))
            })
            .collect();
        if !text.is_empty() {
            items.push((
                "Attribute AUROC".to_string(),
                vec![t(format!("{} ({} view)", text.join("; "), a.view))],
            ));
        }
    }
    for u in model.utility_of(name) {
        if let Some(f) = u.macro_auroc {
            items.push((
                "Utility".to_string(),
                vec![t(format!(
                    "macro AUROC {} ({} view)",
                    with_ci(fmt::score(f.value), f.ci95, fmt::score_interval),
                    u.view
                ))],
            ));
        }
    }
    let skipped = not_tried(model, name);
    if items.is_empty() && skipped.attacks.is_empty() && skipped.pools.is_empty() {
        return None;
    }
    let text = if skipped.attacks.is_empty() {
        "no requested attack was skipped".to_string()
    } else {
        skipped.attacks.join("; ")
    };
    items.push(("Not tried".to_string(), vec![t(text)]));
    if !skipped.pools.is_empty() {
        items.push(("Pools skipped".to_string(), vec![t(skipped.pools.join("; "))]));
    }
    Some(Card { title: name.to_string(), items })
}

/// `image → report` or, with several relink audits of one model, `image → report, test split`.
pub(super) fn direction_label(d: &Relink, relinks: &[&Relink]) -> String {
    match (&d.split, relinks.len() > 1) {
        (Some(split), true) => format!("{}, {split} split", d.direction()),
        _ => d.direction(),
    }
}

/// The attacks tried over these directions, each once (`procrustes (m=100, 1000)`).
fn attacks_tried(directions: &[&Relink]) -> Vec<String> {
    let mut names: Vec<(String, Vec<f64>)> = Vec::new();
    for a in directions.iter().filter_map(|d| d.attacks.as_ref()) {
        for row in &a.attacks {
            let i = match names.iter().position(|n| n.0 == row.name) {
                Some(i) => i,
                None => {
                    names.push((row.name.clone(), Vec::new()));
                    names.len() - 1
                }
            };
            if let Some(m) = row.leaked_pairs.filter(|m| !names[i].1.contains(m)) {
                names[i].1.push(m);
            }
        }
    }
    names
        .into_iter()
        .map(|(name, mut ms)| {
            ms.sort_by(f64::total_cmp);
            let mut out = name.clone();
            if !ms.is_empty() {
                out.push_str(&format!(
                    " (m={})",
                    ms.iter().map(|m| fmt::count(*m)).collect::<Vec<_>>().join(", ")
                ));
            }
            out
        })
        .collect()
}

/// What a model's audits were asked for but did not run.
#[derive(Debug, Default)]
pub(super) struct NotTried {
    /// Skipped attacks (relink, both directions, and re-ID attackers), and a missing
    /// attack comparison.
    pub attacks: Vec<String>,
    /// Skipped pools, grouped by reason.
    pub pools: Vec<String>,
}

pub(super) fn not_tried(model: &ReportModel, name: &str) -> NotTried {
    let mut out = NotTried::default();
    let push = |list: &mut Vec<String>, s: String| {
        if !list.contains(&s) {
            list.push(s);
        }
    };
    let relinks: Vec<&Relink> = model.relink_of(name).collect();
    let directions: Vec<&Relink> = relinks.iter().flat_map(|r| r.directions()).collect();
    for d in &directions {
        for s in d.attacks.iter().flat_map(|a| &a.skipped) {
            push(&mut out.attacks, skipped_attack(s));
        }
    }
    if !directions.is_empty() && directions.iter().all(|d| d.attacks.is_none()) {
        push(
            &mut out.attacks,
            "attacks beyond plain cosine (no attack comparison: run with --attack all)".to_string(),
        );
    }
    for r in model.reid_of(name) {
        for s in &r.skipped {
            push(&mut out.attacks, format!("re-ID attacker {}", skipped_attack(s)));
        }
    }
    out.pools = pool_groups(&directions.iter().flat_map(|d| &d.skipped_pools).collect::<Vec<_>>());
    out
}

/// Skipped pools in few words: one phrase per reason, kinds with the same sizes together —
/// `random and pathology-matched pools at N=1,000, 10,000 (larger than the gallery of 395 items)`.
pub(super) fn pool_groups(pools: &[&SkippedPool]) -> Vec<String> {
    // Per reason: (kind, pool sizes).
    type KindSizes<'a> = Vec<(&'a str, Vec<u64>)>;
    let mut groups: Vec<(&str, KindSizes)> = Vec::new();
    for p in pools {
        let g = match groups.iter().position(|g| g.0 == p.reason) {
            Some(g) => g,
            None => {
                groups.push((&p.reason, Vec::new()));
                groups.len() - 1
            }
        };
        let kinds = &mut groups[g].1;
        match kinds.iter_mut().find(|k| k.0 == p.kind) {
            Some(k) if !k.1.contains(&p.pool_size) => k.1.push(p.pool_size),
            Some(_) => {}
            None => kinds.push((&p.kind, vec![p.pool_size])),
        }
    }
    let mut out = Vec::new();
    for (reason, kinds) in groups {
        let mut merged: Vec<(Vec<String>, Vec<u64>)> = Vec::new();
        for (kind, mut sizes) in kinds {
            sizes.sort_unstable();
            match merged.iter_mut().find(|m| m.1 == sizes) {
                Some(m) => m.0.push(kind_label(kind)),
                None => merged.push((vec![kind_label(kind)], sizes)),
            }
        }
        for (kinds, sizes) in merged {
            let sizes: Vec<String> = sizes.iter().map(|&n| fmt::count(n as f64)).collect();
            let text = format!("{} pools at N={}", kinds.join(" and "), sizes.join(", "));
            out.push(if reason.is_empty() { text } else { format!("{text}: {reason}") });
        }
    }
    out
}

/// `procrustes at m=1,000 (reason)`.
pub(super) fn skipped_attack(s: &super::super::model::SkippedAttack) -> String {
    let mut out = s.name.clone();
    if let Some(m) = s.leaked_pairs {
        out.push_str(&format!(" at m={}", fmt::count(m)));
    }
    if let Some(n) = s.pool_size {
        out.push_str(&format!(" at N={}", fmt::count(n as f64)));
    }
    if !s.reason.is_empty() {
        out.push_str(&format!(": {}", s.reason));
    }
    out
}

fn caveats(model: &ReportModel, head: Option<(&str, Headline)>) -> Vec<Vec<Span>> {
    let mut out = Vec::new();
    match model.cohort.as_ref().and_then(|c| c.synthetic) {
        Some(true) => out.push(vec![
            b("Synthetic cohort."),
            t(" These figures show what linkrisk measures; they say nothing about any real model or patient population."),
        ]),
        Some(false) => out.push(vec![
            b("This cohort, this model."),
            t(" The figures describe these models on this cohort; another cohort, split or pool size gives other numbers."),
        ]),
        None => out.push(vec![
            b("Cohort not recorded."),
            t(" No cohort summary is in run.json; check which cohort (real or synthetic) these audits ran on."),
        ]),
    }
    let order = ranked(model);
    let with_relink: Vec<&str> =
        order.iter().copied().filter(|m| model.relink_of(m).next().is_some()).collect();
    let tried: Vec<(&str, Vec<String>)> = with_relink
        .iter()
        .map(|m| {
            let directions: Vec<&Relink> = model.relink_of(m).flat_map(Relink::directions).collect();
            (*m, attacks_tried(&directions))
        })
        .collect();
    if !tried.is_empty() && tried.iter().all(|(_, names)| names.is_empty()) {
        let mut spans = vec![
            b("A lower bound."),
            t(" Only plain cosine nearest-neighbour matching was tried. A real attacker tries harder \
               (hubness corrections, one-to-one assignment, leaked pairs): run the audits with "),
            code("--attack all"),
            t("."),
        ];
        if tried.len() > 1 {
            spans.insert(1, t(format!(" ({})", with_relink.join(", "))));
        }
        out.push(spans);
    } else if !tried.is_empty() {
        let same = tried.windows(2).all(|w| w[0].1 == w[1].1);
        let per_model: Vec<String> = if same && tried.len() > 1 {
            vec![format!("every model: {}", tried[0].1.join(", "))]
        } else {
            tried
                .iter()
                .map(|(m, names)| {
                    let names =
                        if names.is_empty() { "plain cosine only".to_string() } else { names.join(", ") };
                    if tried.len() > 1 {
                        format!("{m}: {names}")
                    } else {
                        names
                    }
                })
                .collect()
        };
        out.push(vec![
            b("A lower bound."),
            t(format!(
                " The headline is the strongest of the attacks tried ({}); an attacker with more \
                 side information or a better method may still do better.",
                per_model.join("; ")
            )),
        ]);
    }
    // Skipped attacks, per model (once when every model skipped the same); a missing attack
    // comparison is the lower-bound caveat's business.
    let lists: Vec<(&str, Vec<String>)> = order
        .iter()
        .map(|m| {
            let list: Vec<String> = not_tried(model, m)
                .attacks
                .into_iter()
                .filter(|a| !a.starts_with("attacks beyond"))
                .collect();
            (*m, list)
        })
        .collect();
    let same = lists.windows(2).all(|w| w[0].1 == w[1].1);
    let skipped: Vec<String> = if same && lists.len() > 1 {
        lists
            .first()
            .filter(|l| !l.1.is_empty())
            .map(|l| format!("every model: {}", l.1.join("; ")))
            .into_iter()
            .collect()
    } else {
        lists
            .iter()
            .filter(|l| !l.1.is_empty())
            .map(|(m, l)| if order.len() > 1 { format!("{m}: {}", l.join("; ")) } else { l.join("; ") })
            .collect()
    };
    if !skipped.is_empty() {
        out.push(vec![b("Not tried:"), t(format!(" {}.", skipped.join(". ")))]);
    }
    out.push(vec![
        b("The pool matters."),
        t(" Recall@1 falls as the candidate pool grows. An attacker who can narrow the candidates \
           (by date, site or findings) faces a smaller pool and succeeds more often: see the figures by pool size."),
    ]);
    if let Some(spans) = head.and_then(|(name, h)| pathology_caveat(name, &h)) {
        out.push(spans);
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

/// The pathology-matched figure at the headline's pool and direction, with the share of
/// negatives that really had identical findings: a small share means the matching
/// controls for the findings only in part, and the caveat says so.
fn pathology_caveat(name: &str, h: &Headline) -> Option<Vec<Span>> {
    let Pool::Size(n) = h.pool else { return None };
    let p = h.relink.pools.iter().find(|p| p.pool_size == n && p.kind == "pathology_matched")?;
    let (rec, lift) = (p.recall_at_1?, p.lift_at_1?);
    let n_text = fmt::count(n as f64);
    let mut text = format!(
        " With pathology-matched negatives (candidates with the same findings as far as the cohort \
         allows) Recall@1 of {name} ({}) at N={n_text} is still {}, {} times chance.",
        h.relink.direction(),
        fmt::pct(rec.value),
        fmt::sig(lift, 3)
    );
    let title = match p.exact_match_fraction {
        Some(share) if share < 0.5 => {
            text.push_str(&format!(
                " But at N={n_text} only {} of negatives had identical findings (the others the nearest \
                 findings by Hamming distance), so this controls for the findings only in part.",
                fmt::pct(share)
            ));
            "Pathology matching is partial."
        }
        Some(share) => {
            text.push_str(&format!(
                " At N={n_text}, {} of negatives had identical findings.",
                fmt::pct(share)
            ));
            "Not a disease-label shortcut."
        }
        None => "Not a disease-label shortcut.",
    };
    Some(vec![b(title), t(text)])
}
