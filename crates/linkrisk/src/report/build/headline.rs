//! The headline figure of each model — the strongest attack tried, over every relink
//! audit and direction of the model — and the ranking of models by it.

use super::super::doc::{b, t, Span};
use super::super::fmt;
use super::super::model::{Attack, Attacks, Figure, Pool, Relink, ReportModel};
use super::super::plots::HEADLINE_POOL;
use super::plural;

/// The figure a headline is about: which measurement and direction, at which pool. The
/// ordering (`strength`) prefers N = 10,000, then the larger lift.
#[derive(Debug, Clone, Copy)]
pub(super) struct Headline<'a> {
    /// The relink direction the figure belongs to.
    pub relink: &'a Relink,
    /// The attack row, when an attack (not the plain cosine pools) gives the figure.
    pub attack: Option<&'a Attack>,
    pub pool: Pool,
    pub recall: Figure,
    pub chance: Option<f64>,
    pub lift: Option<f64>,
}

impl Headline<'_> {
    /// Ordering key: pool N = 10,000 first, then the larger lift (or Recall@1 without one).
    pub fn strength(&self) -> (bool, f64) {
        (self.pool == Pool::Size(HEADLINE_POOL), self.lift.unwrap_or(self.recall.value))
    }

    /// The attack's name, `cosine` for the plain pools.
    pub fn attack_name(&self) -> &str {
        self.attack.map_or("cosine", |a| a.name.as_str())
    }
}

/// The strongest of `candidates` (earlier ones win ties, so list attacks first).
fn strongest<'a>(candidates: impl IntoIterator<Item = Headline<'a>>) -> Option<Headline<'a>> {
    candidates.into_iter().fold(None, |best: Option<Headline>, h| match best {
        Some(b) if b.strength() >= h.strength() => Some(b),
        _ => Some(h),
    })
}

/// Plain cosine figure of one relink direction: random pool 10,000, else the largest random
/// pool, else the full database.
pub(super) fn plain_headline(r: &Relink) -> Option<Headline<'_>> {
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

/// The row of the strongest attack an attack comparison names: at its
/// `strongest_attack_pool_size` when given, else its pool-10,000 row, else its largest pool,
/// else its full-database row (alignment attacks: the row of `strongest_attack_leaked_pairs`).
pub(super) fn strongest_row(attacks: &Attacks) -> Option<&Attack> {
    let name = attacks.strongest.as_ref()?;
    let mut rows: Vec<&Attack> = attacks
        .attacks
        .iter()
        .filter(|a| &a.name == name && a.recall_at_1.is_some())
        .filter(|a| {
            attacks.strongest_leaked_pairs.is_none() || a.leaked_pairs == attacks.strongest_leaked_pairs
        })
        .collect();
    if let Some(n) = attacks.strongest_pool_size {
        if let Some(row) = rows.iter().find(|a| a.pool_size == Some(n)) {
            return Some(row);
        }
    }
    rows.sort_by_key(|a| match a.pool_size {
        Some(n) => (true, n == HEADLINE_POOL, n),
        None => (false, false, 0),
    });
    rows.last().copied()
}

/// The headline figure of one relink direction: with an attack comparison, its strongest
/// attack's row (`--attack all` decides, plain cosine included); without one, the plain
/// cosine pools.
pub(super) fn direction_headline(r: &Relink) -> Option<Headline<'_>> {
    let Some(a) = r.attacks.as_ref().and_then(strongest_row) else { return plain_headline(r) };
    Some(Headline {
        relink: r,
        attack: Some(a),
        pool: a.pool_size.map_or(Pool::Full, Pool::Size),
        recall: a.recall_at_1?,
        chance: a.chance_at_1,
        lift: a.lift_at_1,
    })
}

/// The headline of a model: the strongest of its directions' headline figures (over all
/// its relink audits).
pub(super) fn model_headline<'a>(model: &'a ReportModel, name: &str) -> Option<Headline<'a>> {
    let directions: Vec<&Relink> = model.relink_of(name).flat_map(Relink::directions).collect();
    strongest(directions.iter().filter_map(|r| direction_headline(r)))
}

/// The models in report order: by headline strength, strongest first; models without a
/// relink figure follow in the order recorded.
pub(super) fn ranked(model: &ReportModel) -> Vec<&str> {
    // (recorded position, name, headline strength)
    type Ranked<'a> = (usize, &'a str, Option<(bool, f64)>);
    let mut names: Vec<Ranked> = model
        .models
        .iter()
        .enumerate()
        .map(|(i, n)| (i, n.as_str(), model_headline(model, n).map(|h| h.strength())))
        .collect();
    names.sort_by(|a, b| match (a.2, b.2) {
        (Some(x), Some(y)) => y.0.cmp(&x.0).then(y.1.total_cmp(&x.1)).then(a.0.cmp(&b.0)),
        (Some(_), None) => std::cmp::Ordering::Less,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (None, None) => a.0.cmp(&b.0),
    });
    names.into_iter().map(|n| n.1).collect()
}

pub(super) fn pool_phrase(h: &Headline) -> String {
    match h.pool {
        Pool::Size(n) => format!("a pool of {} candidates", fmt::count(n as f64)),
        Pool::Full => match h.relink.n_gallery {
            Some(n) => format!("the full database of {} {}", fmt::count(n), plural(&h.relink.gallery_view)),
            None => "the full database".to_string(),
        },
    }
}

/// `N=10,000` or `the full database`.
pub(super) fn pool_short(pool: Pool) -> String {
    match pool {
        Pool::Size(n) => format!("N={}", fmt::count(n as f64)),
        Pool::Full => "the full database".to_string(),
    }
}

/// The headline in words: "with the strongest attack tried (csls), an attacker with this
/// model and the report database finds the right report first for X in 1,000 images at …".
pub(super) fn headline_sentence(h: &Headline, capital: bool) -> Vec<Span> {
    let r = h.relink;
    let mut spans = Vec::new();
    let start = if let Some(a) = h.attack {
        format!("with the strongest attack tried ({}), an attacker", a.name)
    } else {
        "an attacker".to_string()
    };
    let start = if capital { capitalize(&start) } else { start };
    spans.push(t(start));
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

/// The headline figure in short: `Recall@1 0.710% (95% CI …), 71.0× chance (chance …)`.
pub(super) fn figure_phrase(h: &Headline) -> String {
    let mut out = format!("Recall@1 {}", fmt::pct(h.recall.value));
    if let Some(ci) = h.recall.ci95 {
        out.push_str(&format!(" (95% CI {})", fmt::pct_interval(ci)));
    }
    if let Some(lift) = h.lift {
        out.push_str(&format!(", {} chance", fmt::times(lift)));
        if let Some(c) = h.chance {
            out.push_str(&format!(" (chance {})", fmt::pct(c)));
        }
    }
    out
}

fn capitalize(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(c) => c.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}
