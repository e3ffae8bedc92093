//! The attack comparison's report: rows, parameters, skipped attacks, side data, and the
//! helpers that turn per-query outcomes into rows.

use serde::Serialize;

use super::align::MapSelection;
use super::assignment::{self, Solver};
use super::evaluate::{self, Evaluation};
use super::hubness::BetaPoint;
use super::normalized_risk;
use crate::metrics::{wilson, Estimate};

/// Parameters an attack row was produced with (only the ones that apply are present).
#[derive(Debug, Clone, Default, Serialize)]
pub struct Parameters {
    /// CSLS neighbours.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub k: Option<usize>,
    /// Inverse temperature of the (inverted) softmax.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub beta: Option<f64>,
    /// `tuned` (on the side pairs) or `default`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub beta_source: Option<&'static str>,
    /// QB-Norm: queries in the bank.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bank_size: Option<usize>,
    /// QB-Norm: share of attacked queries whose nearest item is in the activation set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub activated_fraction: Option<f64>,
    /// Ridge penalty chosen by generalised cross-validation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lambda: Option<f64>,
    /// Assignment solver.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub solver: Option<Solver>,
    /// Assignment: batches drawn.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub batches: Option<usize>,
    /// Assignment: pairs per batch.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub batch_size: Option<usize>,
    /// Assignment: independent nearest-neighbour Recall@1 on the same batches.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nearest_neighbour_recall_at_1: Option<f64>,
    /// Alignment: how the identity-corrected map was chosen (views of one dimension).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub map: Option<MapSelection>,
    /// Cross-fitted attacks: each fold's parameters (fold f's queries were attacked with
    /// them; they were fitted on the other folds only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub folds: Option<Vec<FoldParameters>>,
}

/// The parameters one fold of a cross-fitted attack was attacked with.
#[derive(Debug, Clone, Default, Serialize)]
pub struct FoldParameters {
    /// The fold.
    pub fold: usize,
    /// Its attacked queries.
    pub n_queries: usize,
    /// Inverse temperature chosen on the other folds' pairs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub beta: Option<f64>,
    /// QB-Norm: the other folds' queries in the bank.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bank_size: Option<usize>,
    /// Alignment: the ridge penalty chosen.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lambda: Option<f64>,
    /// Alignment: how the map was chosen.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub map: Option<MapSelection>,
}

/// One row of the comparison: one attack at one pool size (and number of leaked pairs).
#[derive(Debug, Clone, Serialize)]
pub struct AttackRow {
    /// Attack name (`cosine`, `csls`, `inverted_softmax`, `qb_norm`, `assignment`,
    /// `procrustes`, `ridge`).
    pub name: &'static str,
    /// Pool size N; absent for the full database.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pool_size: Option<usize>,
    /// Leaked pairs m (alignment attacks).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub leaked_pairs: Option<usize>,
    /// How the figure is computed: `full_ranks`, `exact_pool_expectation` (random pools of
    /// N, hypergeometric expectation from the full ranks) or `batch_assignment`.
    pub protocol: &'static str,
    /// Queries (links) evaluated.
    pub n_queries: usize,
    /// Recall@1 of the attack (fraction correctly linked for assignment).
    pub recall_at_1: f64,
    /// Its Wilson interval.
    pub ci95_recall_at_1: [f64; 2],
    /// The same attack scored against the control's decoys.
    pub control_recall_at_1: f64,
    /// Its Wilson interval.
    pub ci95_control_recall_at_1: [f64; 2],
    /// (attack - control) / (1 - control).
    pub normalized_risk: f64,
    /// Delta-method interval of the normalized risk.
    pub ci95_normalized_risk: [f64; 2],
    /// Recall@1 of a random ranking (1/N for pools).
    pub chance_at_1: f64,
    /// Recall@1 / chance.
    pub lift_at_1: f64,
    /// Mean reciprocal rank (full-database rows).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mrr: Option<f64>,
    /// Attack parameters.
    pub parameters: Parameters,
}

/// An attack that was requested but not run, and why.
#[derive(Debug, Clone, Serialize)]
pub struct SkippedAttack {
    /// Attack name.
    pub name: &'static str,
    /// Leaked pairs, for alignment attacks skipped at one m.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub leaked_pairs: Option<usize>,
    /// Pool size, for assignment skipped at one size.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pool_size: Option<usize>,
    /// Why.
    pub reason: String,
}

/// The side information used, described (the `side` object: docs/REPORTS.md).
#[derive(Debug, Clone, Serialize)]
pub struct SideReport {
    /// Where the pairs come from: `split NAME`, or `cross_fit` (folds of the attacked
    /// queries, each attacked with what the other folds give).
    pub source: String,
    /// Cross-fitting folds K (cross-fitting only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub folds: Option<usize>,
    /// Seed of the fold assignment (cross-fitting only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fold_seed: Option<u64>,
    /// Attacked queries per fold (cross-fitting only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fold_sizes: Option<Vec<usize>>,
    /// Why cross-fitting was used (e.g. no `train` split), when chosen automatically.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Labelled pairs available (cross-fitting: every attacked query's, each fold fitted on
    /// the others').
    pub n_pairs: usize,
    /// Inverted-softmax Recall@1 per beta (when tuned): on the side pairs, or, cross-fitted,
    /// on every attacked query (fold f's beta maximises it over the other folds' queries).
    pub beta_curve: Vec<BetaPoint>,
}

/// The attack comparison: every attack row, the control, and the strongest attack. Its
/// JSON keys `strongest_attack` and `attacks` are the interface the report reads.
#[derive(Debug, Clone, Serialize)]
pub struct AttackComparison {
    /// Name of the strongest attack: the highest normalized risk at the reference pool.
    pub strongest_attack: &'static str,
    /// The reference pool: 10,000 when present, else the largest pool, else absent (the
    /// full database).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub strongest_attack_pool_size: Option<usize>,
    /// Leaked pairs m of the strongest row, when it is an alignment attack.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub strongest_attack_leaked_pairs: Option<usize>,
    /// Attacked queries.
    pub attack_queries: usize,
    /// Gallery items.
    pub attack_gallery: usize,
    /// How the control is built.
    pub control: &'static str,
    /// Side information (tuning pairs, query bank, leaked pairs), if any.
    pub side: Option<SideReport>,
    /// Every attack row.
    pub attacks: Vec<AttackRow>,
    /// Attacks (or settings) not run, with the reason.
    pub skipped_attacks: Vec<SkippedAttack>,
}

pub(super) const CONTROL_DESCRIPTION: &str =
    "decoy: each query's true match replaced by another query's (seeded permutation, \
     never from the query's own study or patient), the true match removed from the candidates";

/// The full-database row and one row per pool size of a ranking attack.
pub(super) fn push_rows(
    rows: &mut Vec<AttackRow>,
    name: &'static str,
    leaked_pairs: Option<usize>,
    e: &Evaluation,
    pool_sizes: &[usize],
    parameters: Parameters,
    level: f64,
) {
    let attack = evaluate::full_summary(&e.attack, level);
    let control = evaluate::full_summary(&e.control, level);
    rows.push(make_row(
        name,
        None,
        leaked_pairs,
        "full_ranks",
        attack.n_queries,
        attack.recall_at_1,
        control.recall_at_1,
        attack.chance_at_1,
        Some(attack.mrr),
        parameters.clone(),
    ));
    for &size in pool_sizes {
        let need = (size - 1) as u64;
        let include: Vec<bool> = e
            .attack
            .iter()
            .zip(&e.control)
            .map(|(a, c)| a.n_negatives >= need && c.n_negatives >= need)
            .collect();
        let (a, n) = evaluate::pool_summary(&e.attack, &include, size, level);
        if n == 0 {
            continue;
        }
        let (c, _) = evaluate::pool_summary(&e.control, &include, size, level);
        rows.push(make_row(
            name,
            Some(size),
            leaked_pairs,
            "exact_pool_expectation",
            n,
            a,
            c,
            1.0 / size as f64,
            None,
            parameters.clone(),
        ));
    }
}

pub(super) fn make_row(
    name: &'static str,
    pool_size: Option<usize>,
    leaked_pairs: Option<usize>,
    protocol: &'static str,
    n_queries: usize,
    attack: Estimate,
    control: Estimate,
    chance_at_1: f64,
    mrr: Option<f64>,
    parameters: Parameters,
) -> AttackRow {
    let risk = normalized_risk(&attack, &control);
    AttackRow {
        name,
        pool_size,
        leaked_pairs,
        protocol,
        n_queries,
        recall_at_1: attack.value,
        ci95_recall_at_1: attack.ci(),
        control_recall_at_1: control.value,
        ci95_control_recall_at_1: control.ci(),
        normalized_risk: risk.value,
        ci95_normalized_risk: risk.ci(),
        chance_at_1,
        lift_at_1: attack.value / chance_at_1,
        mrr,
        parameters,
    }
}

/// The assignment row. Batches redraw the same queries, so links are not independent: the
/// Wilson intervals use at most as many trials as there are distinct queries (the rates
/// are unchanged), as the relink audit does for repeated pools.
pub(super) fn assignment_row(
    pool: Option<usize>,
    o: &assignment::AssignmentOutcome,
    n_queries: usize,
    level: f64,
) -> AttackRow {
    let interval = |correct: f64, links: usize| {
        let n_eff = links.min(n_queries).max(1) as f64;
        let mut e = wilson(correct / links as f64 * n_eff, n_eff, level);
        e.value = correct / links as f64;
        e
    };
    let attack = interval(o.correct, o.links);
    let control = interval(o.control_correct, o.control_links);
    let parameters = Parameters {
        solver: Some(o.solver),
        batches: Some(o.batches),
        batch_size: Some(o.batch_size),
        nearest_neighbour_recall_at_1: Some(o.nearest_neighbour_hits / o.links as f64),
        ..Parameters::default()
    };
    make_row(
        "assignment",
        pool,
        None,
        "batch_assignment",
        o.links,
        attack,
        control,
        1.0 / o.batch_size as f64,
        None,
        parameters,
    )
}

/// A whole attack skipped, with the reason.
pub(super) fn skip(attack: super::AttackName, reason: &str) -> SkippedAttack {
    SkippedAttack { name: attack.as_str(), leaked_pairs: None, pool_size: None, reason: reason.to_string() }
}
