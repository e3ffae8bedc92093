//! Scoring one ranking attack: one blocked pass of the engine ranks every query's true
//! match, and a [`QueryReducer`] reads the control's decoy off the same score row, so the
//! control costs one extra scan of the row, not a second pass. Rows of the comparison
//! are summarised from these counts: the full database, and random pools of size N by the
//! exact hypergeometric expectation (the protocol of the relink audit's pools, without
//! Monte-Carlo noise).

use crate::engine::count::count_against;
use crate::engine::pools::PoolDraw;
use crate::engine::{
    rank_with_columns, BlockSizes, ColumnReducer, ColumnStates, FirstPositive, Gallery, Progress,
    QueryRanking, QueryReducer, RankOptions, Rows, ScoreRow, Targets,
};
use crate::error::{Error, Result};
use crate::metrics::retrieval::{
    expected_pool_hit_probability, first_hit_probability, summarize, RankedQuery,
};
use crate::metrics::{wilson, Estimate};

/// Where one query's target landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueryOutcome {
    /// The best-scoring positive's rank counts.
    pub first: FirstPositive,
    /// Negatives strictly above the anchor (the one true match pools are built around).
    pub anchor_greater: u64,
    /// Negatives tied with the anchor.
    pub anchor_tied: u64,
    /// Negatives of the query.
    pub n_negatives: u64,
    /// Positives of the query.
    pub n_positives: u64,
}

impl QueryOutcome {
    fn ranked(&self) -> RankedQuery {
        RankedQuery { first: self.first, n_negatives: self.n_negatives, n_positives: self.n_positives }
    }
}

/// An attack's outcomes and its control's, per query.
#[derive(Debug, Clone)]
pub struct Evaluation {
    /// Against the true targets.
    pub attack: Vec<QueryOutcome>,
    /// Against the decoys.
    pub control: Vec<QueryOutcome>,
    /// The best gallery item per query (when asked for).
    pub top1: Vec<u32>,
}

/// Rank `queries` against `gallery` once; score the true targets and the control's.
pub fn evaluate(
    queries: Rows<'_>,
    gallery: &Gallery<'_>,
    targets: &Targets,
    control: &Targets,
    want_top1: bool,
    sizes: &BlockSizes,
    progress: &dyn Progress,
) -> Result<Evaluation> {
    Ok(evaluate_with_columns(queries, gallery, targets, control, want_top1, &(), sizes, progress)?.0)
}

/// [`evaluate`], also running `columns` over the gallery side of the same scores (the
/// neighbourhood statistics of the hubness corrections, see `ColumnStats`).
#[allow(clippy::too_many_arguments)]
pub fn evaluate_with_columns<C: ColumnReducer>(
    queries: Rows<'_>,
    gallery: &Gallery<'_>,
    targets: &Targets,
    control: &Targets,
    want_top1: bool,
    columns: &C,
    sizes: &BlockSizes,
    progress: &dyn Progress,
) -> Result<(Evaluation, ColumnStates<C::State>)> {
    if control.n_queries() != targets.n_queries() || control.n_gallery() != targets.n_gallery() {
        return Err(Error::config("control targets do not match the ranking task"));
    }
    let reducer = ControlReducer::new(control, gallery);
    let options = RankOptions { top_k: usize::from(want_top1), sizes: *sizes };
    let (ranked, states) =
        rank_with_columns(queries, gallery, targets, 0..queries.n(), &options, &reducer, columns, progress)?;
    let mut attack = Vec::with_capacity(ranked.len());
    let mut control_out = Vec::with_capacity(ranked.len());
    let mut top1 = Vec::new();
    for (ranking, control) in ranked {
        attack.push(attack_outcome(&ranking)?);
        control_out.push(
            control.ok_or_else(|| Error::config(format!("query {} has no control decoy", ranking.query)))?,
        );
        if want_top1 {
            top1.push(ranking.top.first().map_or(u32::MAX, |n| n.gallery));
        }
    }
    Ok((Evaluation { attack, control: control_out, top1 }, states))
}

/// The outcome of one query's ranking against its true targets (an error if it has no
/// true match).
pub fn attack_outcome(ranking: &QueryRanking) -> Result<QueryOutcome> {
    let anchor = ranking.anchor_rank().ok_or_else(|| {
        Error::config(format!("query {} has no true match; every attacked query needs one", ranking.query))
    })?;
    let first = ranking.first_positive().expect("a query with an anchor has a positive");
    Ok(QueryOutcome {
        first,
        anchor_greater: anchor.greater,
        anchor_tied: anchor.tied,
        n_negatives: ranking.n_negatives,
        n_positives: ranking.positives.len() as u64,
    })
}

/// Counts of the decoy targets on the row the engine already holds (a [`QueryReducer`]):
/// any ranking pass over the attack's gallery can carry the control (e.g. the relink
/// audit's own pass, so its default cosine attack costs no pass of its own).
#[derive(Debug)]
pub struct ControlReducer<'a> {
    control: &'a Targets,
    weights: Option<Vec<u32>>,
}

impl<'a> ControlReducer<'a> {
    /// The control `control` (decoy targets, `super::decoy_targets`) on rows of `gallery`.
    pub fn new(control: &'a Targets, gallery: &Gallery<'_>) -> Self {
        let weights: Option<Vec<u32>> = (gallery.n_duplicates() > 0)
            .then(|| (0..gallery.n_unique()).map(|u| gallery.multiplicity(u)).collect());
        ControlReducer { control, weights }
    }
}

impl QueryReducer for ControlReducer<'_> {
    type Output = Option<QueryOutcome>;

    fn reduce(&self, q: usize, row: ScoreRow<'_>, _ranking: &QueryRanking) -> Self::Output {
        let anchor = self.control.anchor(q)?;
        let (items, positive) = self.control.special(q);
        let scores: Vec<f32> = items.iter().map(|&g| row.score(g as usize)).collect();
        let best = items
            .iter()
            .zip(positive.iter())
            .zip(&scores)
            .filter(|((_, &p), _)| p)
            .map(|(_, &s)| s)
            .fold(f32::NEG_INFINITY, f32::max);
        let anchor_score = row.score(anchor);
        let mut thresholds = vec![best, anchor_score];
        thresholds.sort_by(f32::total_cmp);
        thresholds.dedup();
        let (mut greater, mut tied) = (vec![0u64; thresholds.len()], vec![0u64; thresholds.len()]);
        for (c0, segment) in row.segments() {
            let w = self.weights.as_ref().map(|w| &w[c0..c0 + segment.len()]);
            count_against(segment, w, &thresholds, &mut greater, &mut tied);
        }
        // Counts over negatives only: remove every special item's own contribution.
        let at = |t: f32| thresholds.iter().position(|&x| x == t).expect("threshold listed");
        let counts = |t: f32| {
            let j = at(t);
            let (mut g, mut e) = (greater[j], tied[j]);
            for &s in &scores {
                g -= u64::from(s > t);
                e -= u64::from(s == t);
            }
            (g, e)
        };
        let (first_greater, first_tied) = counts(best);
        let (anchor_greater, anchor_tied) = counts(anchor_score);
        let tied_positives = positive.iter().zip(&scores).filter(|(&p, &s)| p && s == best).count() as u64;
        let n_positives = positive.iter().filter(|&&p| p).count() as u64;
        Some(QueryOutcome {
            first: FirstPositive { greater: first_greater, tied_negatives: first_tied, tied_positives },
            anchor_greater,
            anchor_tied,
            n_negatives: self.control.n_negatives(q) as u64,
            n_positives,
        })
    }
}

/// Recall@1 over the whole gallery, with Wilson interval, MRR, chance and lift.
#[derive(Debug, Clone, Copy)]
pub struct FullSummary {
    /// Recall@1 with its Wilson interval.
    pub recall_at_1: Estimate,
    /// Mean reciprocal rank.
    pub mrr: f64,
    /// Chance@1 averaged over queries.
    pub chance_at_1: f64,
    /// Queries summarised.
    pub n_queries: usize,
}

/// Summarise outcomes over the full gallery.
pub fn full_summary(outcomes: &[QueryOutcome], level: f64) -> FullSummary {
    let ranked: Vec<RankedQuery> = outcomes.iter().map(QueryOutcome::ranked).collect();
    let s = summarize(&ranked, level);
    FullSummary { recall_at_1: s.recall_at_1, mrr: s.mrr, chance_at_1: s.chance_at_1, n_queries: s.n_queries }
}

/// Exact expected Recall@1 of random pools of `pool_size` (the anchor plus `pool_size - 1`
/// negatives drawn uniformly), over the queries with enough negatives: `(estimate,
/// queries)`. Uses `include` to restrict to queries evaluable in both attack and control.
pub fn pool_summary(
    outcomes: &[QueryOutcome],
    include: &[bool],
    pool_size: usize,
    level: f64,
) -> (Estimate, usize) {
    let draws = (pool_size - 1) as u64;
    let (mut hits, mut n) = (0.0, 0usize);
    for (o, _) in outcomes.iter().zip(include).filter(|(_, &inc)| inc) {
        let draw = PoolDraw {
            fixed_greater: 0,
            fixed_tied: 0,
            fixed: 0,
            population: o.n_negatives,
            population_greater: o.anchor_greater,
            population_tied: o.anchor_tied,
            draws,
        };
        hits += expected_pool_hit_probability(&draw, 1);
        n += 1;
    }
    (wilson(hits.min(n as f64), n as f64, level), n)
}

/// Per query, P(hit@1) over the full gallery (for merging attacks query by query).
pub fn hit_at_1(o: &QueryOutcome) -> f64 {
    first_hit_probability(&o.first, 1)
}
