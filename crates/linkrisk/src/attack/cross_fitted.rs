//! The cross-fitted attacks (issue 14): when the attacked queries are the attacker's only
//! labelled data, they are split into patient-grouped folds (`crate::audit::cross_fit`) and
//! fold f is attacked with what the other folds give — every query attacked exactly once,
//! by an attacker fitted without its patient. The gallery stays the whole attacked gallery,
//! so the rows are comparable with cosine's and with a separate side split's.
//!
//! - Inverted-softmax temperature: one pass pair per grid value gives every query's outcome
//!   (the normaliser is over all attacked queries, which the attacker holds unlabelled);
//!   fold f's beta is the grid value with the best Recall@1 over the *other* folds' queries
//!   (their labels), and fold f's queries keep their outcome at that beta. Same cost as
//!   tuning on a separate split of the same size.
//! - QB-Norm: fold f's bank is the other folds' queries (unlabelled: a legitimate bank),
//!   with their own exclusions on re-ID tasks; fold f's queries are ranked once.
//! - Leaked-pair alignment: fold f's m leaked pairs are a seeded subset of the other folds'
//!   (query, true match) pairs; the map is applied to fold f's queries only.

use rand::seq::index::sample;

use super::evaluate::{self, Evaluation, QueryOutcome};
use super::hubness::{self, BetaPoint};
use super::report::FoldParameters;
use super::{align, gather_rows, AttackTask};
use crate::audit::cross_fit::CrossFit;
use crate::engine::{Gallery, Progress, Rows, Targets};
use crate::error::{Error, Result};
use crate::metrics::retrieval::first_hit_probability;
use crate::rng;

/// Per-query outcomes of a cross-fitted attack, filled fold by fold.
#[derive(Debug)]
pub(super) struct Assembly {
    attack: Vec<Option<QueryOutcome>>,
    control: Vec<Option<QueryOutcome>>,
}

impl Assembly {
    /// Room for `n` queries.
    pub fn new(n: usize) -> Assembly {
        Assembly { attack: vec![None; n], control: vec![None; n] }
    }

    /// Queries `idx` take outcome j of `e` (e evaluated exactly those queries, in order).
    pub fn put(&mut self, idx: &[usize], e: &Evaluation) {
        for (j, &q) in idx.iter().enumerate() {
            self.attack[q] = Some(e.attack[j]);
            self.control[q] = Some(e.control[j]);
        }
    }

    /// QB-Norm's dynamic inverted softmax: queries `idx` take outcome j of `normalised` when
    /// their plain-cosine nearest item is `active`, else their plain-cosine outcome. Returns
    /// how many were activated.
    pub fn put_dynamic(
        &mut self,
        idx: &[usize],
        normalised: &Evaluation,
        cosine: &Evaluation,
        active: &[bool],
    ) -> usize {
        let mut activated = 0;
        for (j, &q) in idx.iter().enumerate() {
            let top = cosine.top1[q];
            let on = top != u32::MAX && active[top as usize];
            activated += usize::from(on);
            let (a, c) = if on {
                (normalised.attack[j], normalised.control[j])
            } else {
                (cosine.attack[q], cosine.control[q])
            };
            self.attack[q] = Some(a);
            self.control[q] = Some(c);
        }
        activated
    }

    /// The evaluation of every query; an error if a query was never attacked.
    pub fn finish(self) -> Result<Evaluation> {
        let missing = self.attack.iter().position(Option::is_none);
        if let Some(q) = missing {
            return Err(Error::config(format!("cross-fitting left query {q} unattacked")));
        }
        Ok(Evaluation {
            attack: self.attack.into_iter().flatten().collect(),
            control: self.control.into_iter().flatten().collect(),
            top1: Vec::new(),
        })
    }
}

/// The targets of queries `idx` of `targets`, in that order (anchor first).
pub(super) fn subset_targets(targets: &Targets, idx: &[usize]) -> Result<Targets> {
    let mut builder = Targets::builder(targets.n_gallery());
    let (mut positives, mut exclusions) = (Vec::new(), Vec::new());
    for &q in idx {
        positives.clear();
        exclusions.clear();
        let anchor = targets.anchor(q).map(|a| a as u32);
        positives.extend(anchor);
        positives.extend(targets.positives(q).filter(|&g| Some(g) != anchor));
        exclusions.extend(targets.exclusions(q));
        builder.push(&positives, &exclusions)?;
    }
    Ok(builder.build())
}

/// Evaluate queries `idx` of the task (their rows `rows`, already gathered or mapped)
/// against `gallery`: the same outcomes those queries have in a pass over all queries.
#[allow(clippy::too_many_arguments)]
pub(super) fn evaluate_subset(
    rows: Rows<'_>,
    idx: &[usize],
    gallery: &Gallery<'_>,
    targets: &Targets,
    control: &Targets,
    sizes: &crate::engine::BlockSizes,
    what: &str,
    progress: &dyn Progress,
) -> Result<Evaluation> {
    let (t, c) = (subset_targets(targets, idx)?, subset_targets(control, idx)?);
    progress.begin(idx.len() as u64, what);
    evaluate::evaluate(rows, gallery, &t, &c, false, sizes, progress)
}

/// A seeded sample of at most [`align::DISTRACTORS`] gallery rows (unlabelled rows the
/// attacker holds), against which the alignment's candidate maps are scored.
pub(super) fn distractors(gallery: Rows<'_>, seed: u64) -> Vec<f32> {
    let n = gallery.n();
    let take = n.min(align::DISTRACTORS);
    let mut idx = sample(&mut rng::stream(seed, "align-distractors", 0), n, take).into_vec();
    idx.sort_unstable();
    gather_rows(gallery, &idx)
}

/// The inverted-softmax temperature chosen per fold, with the outcomes of the chosen ones.
#[derive(Debug)]
pub(super) struct TunedBeta {
    /// Recall@1 of every attacked query per grid value.
    pub curve: Vec<BetaPoint>,
    /// Beta of each fold.
    pub fold_beta: Vec<f64>,
    /// Grid index of each fold's beta.
    fold_choice: Vec<usize>,
    /// Attacked queries per fold.
    fold_sizes: Vec<usize>,
    /// Per grid value, every query's outcomes (attack and control) where a non-empty fold
    /// chose that value; `None` elsewhere.
    evaluations: Vec<Option<Evaluation>>,
}

/// Evaluate the inverted softmax at every `grid` value on all attacked queries and choose
/// each fold's beta on the other folds' queries (ties: the earlier grid value, as
/// [`hubness::tune_beta`]).
///
/// The hits at every grid value come from two passes over the pairs
/// ([`hubness::inverted_softmax_hits`]: the normalisers of all temperatures in one, the
/// ranks under all of them in the other); then only the temperatures some fold chose (one,
/// when the folds agree) are evaluated in full, with their controls. The outcomes are those
/// of a full evaluation at every grid value (tested).
pub(super) fn tune_beta(
    task: &AttackTask<'_>,
    control: &Targets,
    folds: &CrossFit,
    grid: &[f64],
    sizes: &crate::engine::BlockSizes,
    progress: &dyn Progress,
) -> Result<TunedBeta> {
    if grid.is_empty() {
        return Err(Error::config("the inverted-softmax temperature grid is empty"));
    }
    let neighbourhood = task.neighbourhood_exclusions.then_some(task.targets);
    let n = task.queries.n();
    let (firsts, offsets) = hubness::inverted_softmax_grid(
        task.queries,
        task.gallery,
        task.targets,
        neighbourhood,
        grid,
        sizes,
        progress,
    )?;
    let mut hits: Vec<Vec<f64>> = Vec::with_capacity(grid.len());
    for list in &firsts {
        let h = list
            .iter()
            .enumerate()
            .map(|(q, first)| {
                first.as_ref().map(|f| first_hit_probability(f, 1)).ok_or_else(|| {
                    Error::config(format!("query {q} has no true match; every attacked query needs one"))
                })
            })
            .collect::<Result<Vec<f64>>>()?;
        hits.push(h);
    }
    let curve = grid
        .iter()
        .zip(&hits)
        .map(|(&beta, h)| BetaPoint { beta, recall_at_1: h.iter().sum::<f64>() / n.max(1) as f64 })
        .collect();
    let mut fold_choice = Vec::with_capacity(folds.k());
    for f in 0..folds.k() {
        let others = folds.others(f);
        let recall = |g: usize| others.iter().map(|&q| hits[g][q]).sum::<f64>();
        let best = (0..grid.len()).fold(0, |b, g| if recall(g) > recall(b) { g } else { b });
        fold_choice.push(best);
    }
    let fold_sizes = folds.sizes();
    let mut evaluations: Vec<Option<Evaluation>> = (0..grid.len()).map(|_| None).collect();
    for (&g, &size) in fold_choice.iter().zip(&fold_sizes) {
        if size == 0 || evaluations[g].is_some() {
            continue;
        }
        let gallery = Gallery::with_offsets(task.gallery, &offsets[g])?;
        let beta = grid[g];
        progress.begin(n as u64, &format!("attack: inverted softmax beta={beta} (cross-fitted tuning)"));
        evaluations[g] =
            Some(evaluate::evaluate(task.queries, &gallery, task.targets, control, false, sizes, progress)?);
    }
    Ok(TunedBeta {
        curve,
        fold_beta: fold_choice.iter().map(|&g| grid[g]).collect(),
        fold_choice,
        fold_sizes,
        evaluations,
    })
}

impl TunedBeta {
    /// Every query's outcome at its fold's beta.
    pub fn assemble(&self, folds: &CrossFit) -> Result<Evaluation> {
        let mut assembly = Assembly::new(folds.len());
        for f in 0..folds.k() {
            let members = folds.members(f);
            if members.is_empty() {
                continue;
            }
            let e = self.evaluations[self.fold_choice[f]].as_ref().ok_or_else(|| {
                Error::config(format!("cross-fitting fold {f}'s temperature was not evaluated"))
            })?;
            for &q in &members {
                assembly.attack[q] = Some(e.attack[q]);
                assembly.control[q] = Some(e.control[q]);
            }
        }
        assembly.finish()
    }

    /// The beta every non-empty fold chose, when they agree.
    pub fn common_beta(&self) -> Option<f64> {
        let mut chosen = self.fold_beta.iter().zip(&self.fold_sizes).filter(|(_, &n)| n > 0).map(|(&b, _)| b);
        let first = chosen.next()?;
        chosen.all(|b| b == first).then_some(first)
    }

    /// Each fold's beta.
    pub fn fold_parameters(&self) -> Vec<FoldParameters> {
        self.fold_beta
            .iter()
            .zip(&self.fold_sizes)
            .enumerate()
            .map(|(fold, (&beta, &n_queries))| FoldParameters {
                fold,
                n_queries,
                beta: Some(beta),
                ..FoldParameters::default()
            })
            .collect()
    }
}

/// QB-Norm with dynamic inverted softmax, cross-fitted: fold f's bank is the other folds'
/// queries (with their exclusions on tasks whose exclusions the attacker never sees), its
/// temperature `betas[f]`. Returns the evaluation, the activated count and each fold's
/// parameters.
pub(super) fn qb_norm(
    task: &AttackTask<'_>,
    control: &Targets,
    folds: &CrossFit,
    betas: &[f64],
    cosine: &Evaluation,
    sizes: &crate::engine::BlockSizes,
    progress: &dyn Progress,
) -> Result<(Evaluation, usize, Vec<FoldParameters>)> {
    let dim = task.queries.dim();
    let mut assembly = Assembly::new(task.queries.n());
    let mut activated = 0;
    let mut parameters = Vec::with_capacity(folds.k());
    for (f, &beta) in betas.iter().enumerate() {
        let members = folds.members(f);
        if members.is_empty() {
            continue;
        }
        let bank_idx = folds.others(f);
        let bank_data = gather_rows(task.queries, &bank_idx);
        let bank = Rows::new(&bank_data, bank_idx.len(), dim)?;
        let exclusions =
            if task.neighbourhood_exclusions { Some(subset_targets(task.targets, &bank_idx)?) } else { None };
        let (offsets, active) =
            hubness::query_bank_excluding(bank, task.gallery, exclusions.as_ref(), beta, sizes, progress)?;
        let gallery = Gallery::with_offsets(task.gallery, &offsets)?;
        let member_data = gather_rows(task.queries, &members);
        let rows = Rows::new(&member_data, members.len(), dim)?;
        let what = format!("attack: qb-norm fold {}/{}", f + 1, folds.k());
        let e = evaluate_subset(rows, &members, &gallery, task.targets, control, sizes, &what, progress)?;
        activated += assembly.put_dynamic(&members, &e, cosine, &active);
        parameters.push(FoldParameters {
            fold: f,
            n_queries: members.len(),
            beta: Some(beta),
            bank_size: Some(bank_idx.len()),
            ..FoldParameters::default()
        });
    }
    Ok((assembly.finish()?, activated, parameters))
}
