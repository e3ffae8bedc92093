//! Training the linear-metric attacker on patients disjoint from the audited ones: the
//! train split's patients with at least two studies there, minus any patient who also has
//! records in the audited split. The shrinkage and the number of directions are chosen on
//! held-out training patients (their Rank-1 under the candidate metric), then the metric
//! is refitted on all training patients. The estimator itself is
//! [`crate::attack::linear_metric`].

use std::collections::{HashMap, HashSet};

use rand::seq::SliceRandom;
use serde::{Deserialize, Deserializer, Serialize};

use super::eval::{mean_rank_1, plan, rank_plan, PassOptions};
use super::LinearMetricConfig;
use crate::attack::linear_metric::{LinearMetric, PatientScatter};
use crate::cohort::{Metadata, View};
use crate::engine::{gather, NoProgress, Progress, Rows};
use crate::error::{Error, Result};
use crate::rng;

/// Fewest held-out (and fitting) patients for model selection; below this the defaults
/// are used.
const MIN_SELECTION_PATIENTS: usize = 20;

/// One candidate of the model selection.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Candidate {
    /// Shrinkage of the within-patient covariance.
    pub shrinkage: f64,
    /// Directions kept.
    pub rank: usize,
    /// Rank-1 on the held-out training patients.
    pub validation_rank_1: f64,
}

/// How the attacker was trained (all counts refer to the train split).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LinearMetricReport {
    /// Always `linear-metric`.
    #[serde(deserialize_with = "super::attacker_name")]
    pub attacker: super::Name,
    /// Split it was trained on.
    pub train_split: String,
    /// Records of the train split.
    pub n_train_split_records: usize,
    /// Records it was trained on.
    pub n_train_records: usize,
    /// Patients it was trained on (each with at least two studies).
    pub n_train_patients: usize,
    /// Train-split records left out because their patient has a single study there.
    pub train_records_single_study: usize,
    /// Train-split records left out because their patient also has records in the audited
    /// split (training patients must be disjoint from the evaluated ones).
    pub train_records_overlapping_patients: usize,
    /// Input dimension.
    pub input_dim: usize,
    /// Shrinkage used.
    pub shrinkage: f64,
    /// Directions kept.
    pub rank: usize,
    /// Directions with positive between-patient variance (the most it could keep).
    pub useful_rank: usize,
    /// `validation` (chosen on held-out training patients) or `default` (too few patients
    /// to hold some out).
    #[serde(deserialize_with = "selection_name")]
    pub selection: super::Name,
    /// Patients used to fit during selection.
    pub n_selection_fit_patients: usize,
    /// Held-out patients scored during selection.
    pub n_selection_validation_patients: usize,
    /// Every candidate tried, in order.
    pub candidates: Vec<Candidate>,
    /// Between-/within-patient variance ratio of the leading directions (at most 10).
    pub leading_between_variance: Vec<f64>,
}

/// `validation` or `default`, read back (partial-result contexts).
fn selection_name<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<&'static str, D::Error> {
    super::known_name(d, &["validation", "default"])
}

/// The default rank grid for `dim` inputs: 8, 16, 32, ... below `dim`, then `dim`.
fn rank_grid(config: &LinearMetricConfig, dim: usize) -> Vec<usize> {
    let mut ranks: Vec<usize> = if config.ranks.is_empty() {
        let mut r = Vec::new();
        let mut k = 8;
        while k < dim {
            r.push(k);
            k *= 2;
        }
        r.push(dim);
        r
    } else {
        config.ranks.iter().map(|&r| r.min(dim)).collect()
    };
    ranks.sort_unstable();
    ranks.dedup();
    ranks
}

/// Train the attacker. `audited` are the cohort rows of the audited split.
pub(crate) fn train(
    meta: &Metadata,
    view: &View,
    train_split: &str,
    audited: &[usize],
    config: &LinearMetricConfig,
    seed: u64,
    sizes: crate::engine::BlockSizes,
    progress: &dyn Progress,
) -> Result<(LinearMetric, LinearMetricReport)> {
    let split_rows = meta.rows_in_split(train_split)?;
    let audited_patients: HashSet<u32> = audited.iter().map(|&r| meta.patient[r]).collect();
    let disjoint: Vec<usize> =
        split_rows.iter().copied().filter(|&r| !audited_patients.contains(&meta.patient[r])).collect();
    let overlapping = split_rows.len() - disjoint.len();
    // Patients with at least two distinct studies among the disjoint records.
    let mut studies: HashMap<u32, HashSet<u32>> = HashMap::new();
    for &r in &disjoint {
        studies.entry(meta.patient[r]).or_default().insert(meta.study[r]);
    }
    let train_rows: Vec<usize> =
        disjoint.iter().copied().filter(|&r| studies[&meta.patient[r]].len() >= 2).collect();
    let single_study = disjoint.len() - train_rows.len();
    let mut patients: Vec<u32> = train_rows.iter().map(|&r| meta.patient[r]).collect();
    patients.sort_unstable();
    patients.dedup();
    if patients.is_empty() {
        return Err(Error::config(format!(
            "--train-split {train_split}: no patient has two or more studies there ({} records{}); \
             the linear-metric attacker learns from such patients. Name another split with \
             --train-split, or run only nearest neighbour with --attacker none",
            split_rows.len(),
            if overlapping > 0 {
                format!(", {overlapping} of them of patients also in the audited split and left out")
            } else {
                String::new()
            }
        )));
    }
    let dim = view.dim();
    let ranks = rank_grid(config, dim);

    // Model selection on held-out training patients.
    let mut shuffled = patients.clone();
    shuffled.shuffle(&mut rng::stream(seed, "reid-linear-metric-validation", 0));
    let n_validation = ((patients.len() as f64 * config.validation_fraction).round() as usize)
        .min(config.max_validation_patients);
    let selectable = n_validation >= MIN_SELECTION_PATIENTS
        && patients.len() - n_validation >= MIN_SELECTION_PATIENTS
        && (config.shrinkages.len() > 1 || ranks.len() > 1);
    let mut candidates = Vec::new();
    let (mut shrinkage, mut rank) = (config.default_shrinkage, dim);
    let (mut n_fit, mut n_held_out) = (0, 0);
    if selectable {
        let held_out: HashSet<u32> = shuffled[..n_validation].iter().copied().collect();
        let (validation_rows, fit_rows): (Vec<usize>, Vec<usize>) =
            train_rows.iter().partition(|&&r| held_out.contains(&meta.patient[r]));
        n_fit = patients.len() - n_validation;
        n_held_out = n_validation;
        let fit_data = gather(view, &fit_rows);
        let fit_patient: Vec<u32> = fit_rows.iter().map(|&r| meta.patient[r]).collect();
        let scatter = PatientScatter::estimate(Rows::new(&fit_data, fit_rows.len(), dim)?, &fit_patient)?;
        let validation_data = gather(view, &validation_rows);
        let validation_plan = plan(meta, &validation_rows, false)?;
        let options = PassOptions {
            negatives_per_query: 0,
            max_cmc_rank: 1,
            bootstrap_replicates: 0,
            level: 0.95,
            seed,
            sizes,
        };
        let mut best = f64::NEG_INFINITY;
        progress.begin((config.shrinkages.len() * ranks.len()) as u64, "linear-metric: selecting");
        for &s in &config.shrinkages {
            let basis = scatter.basis(s)?;
            let mut tried = Vec::new();
            for &r in &ranks {
                let metric = basis.metric(r);
                progress.advance(1);
                if tried.contains(&metric.rank()) {
                    continue;
                }
                tried.push(metric.rank());
                let projected = metric.project(Rows::new(&validation_data, validation_rows.len(), dim)?)?;
                let rows = Rows::new(&projected, validation_rows.len(), metric.rank())?;
                let what = format!("select s={s} r={}", metric.rank());
                let all = 0..validation_plan.queries.len();
                let (ranked, _) = rank_plan(rows, &validation_plan, &options, all, &what, &NoProgress)?;
                let score = mean_rank_1(&ranked);
                candidates.push(Candidate { shrinkage: s, rank: metric.rank(), validation_rank_1: score });
                if score > best {
                    best = score;
                    shrinkage = s;
                    rank = metric.rank();
                }
            }
        }
    }
    // Refit on every training patient.
    let data = gather(view, &train_rows);
    let patient: Vec<u32> = train_rows.iter().map(|&r| meta.patient[r]).collect();
    let scatter = PatientScatter::estimate(Rows::new(&data, train_rows.len(), dim)?, &patient)?;
    let basis = scatter.basis(shrinkage)?;
    let metric = basis.metric(rank);
    let report = LinearMetricReport {
        attacker: "linear-metric",
        train_split: train_split.to_string(),
        n_train_split_records: split_rows.len(),
        n_train_records: train_rows.len(),
        n_train_patients: patients.len(),
        train_records_single_study: single_study,
        train_records_overlapping_patients: overlapping,
        input_dim: dim,
        shrinkage,
        rank: metric.rank(),
        useful_rank: basis.useful_rank(),
        selection: if selectable { "validation" } else { "default" },
        n_selection_fit_patients: n_fit,
        n_selection_validation_patients: n_held_out,
        candidates,
        leading_between_variance: basis.between_variance.iter().take(10).copied().collect(),
    };
    Ok((metric, report))
}
