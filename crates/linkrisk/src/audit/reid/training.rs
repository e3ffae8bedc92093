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
use crate::audit::cross_fit::{CrossFit, SideProtocol};
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
    /// Which protocol trained it: `{"source": "split NAME"}` (the counts above refer to that
    /// split), or `{"source": "cross_fit", "folds": K}`: one attacker per fold, trained on the
    /// other folds' patients of the audited split, each attacking its own fold's queries;
    /// the counts above then describe the audited split (the patients the folds train from),
    /// `shrinkage` and `rank` the setting most folds chose, and `folds` every fold.
    #[serde(default = "legacy_side")]
    pub side: SideProtocol,
    /// Cross-fitting: each fold's training.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub folds: Vec<LinearMetricFold>,
}

fn legacy_side() -> SideProtocol {
    SideProtocol::split("train")
}

/// One cross-fitting fold's linear-metric attacker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LinearMetricFold {
    /// The fold.
    pub fold: usize,
    /// Records of the audited split in this fold (its queries are attacked by this fold's
    /// attacker).
    pub n_attacked_records: usize,
    /// Records it was trained on (the other folds' patients with two or more studies).
    pub n_train_records: usize,
    /// Patients it was trained on.
    pub n_train_patients: usize,
    /// Shrinkage chosen.
    pub shrinkage: f64,
    /// Directions kept.
    pub rank: usize,
    /// Directions with positive between-patient variance.
    pub useful_rank: usize,
    /// `validation` or `default`.
    #[serde(deserialize_with = "selection_name")]
    pub selection: super::Name,
    /// Best held-out Rank-1 of the model selection (absent without selection).
    pub validation_rank_1: Option<f64>,
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

/// Train the attacker on the `train_split` patients disjoint from the audited ones.
/// `audited` are the cohort rows of the audited split.
#[allow(clippy::too_many_arguments)]
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
    let split_rows = meta.rows_in_split(train_split).map_err(|e| match e {
        Error::Config(reason) => Error::config(format!(
            "--train-split {train_split}: {reason}. Cross-fit within the audited split with --attack-side audited (or auto), or run only nearest neighbour with --attacker none"
        )),
        other => other,
    })?;
    let audited_patients: HashSet<u32> = audited.iter().map(|&r| meta.patient[r]).collect();
    let disjoint: Vec<usize> =
        split_rows.iter().copied().filter(|&r| !audited_patients.contains(&meta.patient[r])).collect();
    let overlapping = split_rows.len() - disjoint.len();
    let (train_rows, patients) = trainable(meta, &disjoint);
    let single_study = disjoint.len() - train_rows.len();
    if patients.is_empty() {
        return Err(Error::config(format!(
            "--train-split {train_split}: no patient has two or more studies there ({} records{}); \
             the linear-metric attacker learns from such patients. Name another split with \
             --train-split, cross-fit within the audited split with --attack-side audited, or run \
             only nearest neighbour with --attacker none",
            split_rows.len(),
            if overlapping > 0 {
                format!(", {overlapping} of them of patients also in the audited split and left out")
            } else {
                String::new()
            }
        )));
    }
    let (metric, fitted) = fit_rows(meta, view, &train_rows, &patients, config, seed, 0, sizes, progress)?;
    let report = LinearMetricReport {
        attacker: "linear-metric",
        train_split: train_split.to_string(),
        n_train_split_records: split_rows.len(),
        n_train_records: train_rows.len(),
        n_train_patients: patients.len(),
        train_records_single_study: single_study,
        train_records_overlapping_patients: overlapping,
        input_dim: view.dim(),
        side: SideProtocol::split(train_split),
        folds: Vec::new(),
        ..fitted.into_report()
    };
    Ok((metric, report))
}

/// The linear-metric attacker cross-fitted within the audited split: fold f's attacker is
/// trained on the records of the other folds' patients (those with two or more studies)
/// and attacks fold f's queries only. `records` are the audited split's cohort rows and
/// `folds` their patient-grouped folds. Returns one metric per fold and the report.
#[allow(clippy::too_many_arguments)]
pub(crate) fn train_cross_fitted(
    meta: &Metadata,
    view: &View,
    split: &str,
    records: &[usize],
    folds: &CrossFit,
    reason: Option<String>,
    config: &LinearMetricConfig,
    seed: u64,
    sizes: crate::engine::BlockSizes,
    progress: &dyn Progress,
) -> Result<(Vec<LinearMetric>, LinearMetricReport)> {
    let (all_trainable, all_patients) = trainable(meta, records);
    let mut metrics = Vec::with_capacity(folds.k());
    let mut fold_reports = Vec::with_capacity(folds.k());
    let mut first: Option<Fitted> = None;
    for f in 0..folds.k() {
        let others: Vec<usize> = folds.others(f).into_iter().map(|i| records[i]).collect();
        let (train_rows, patients) = trainable(meta, &others);
        if patients.is_empty() {
            return Err(Error::config(format!(
                "--split {split}: cross-fitting fold {} of {} has no training patient with two or more studies among the other folds; \
                 the linear-metric attacker learns from such patients. Use fewer --side-folds, a larger split, or --attacker none",
                f + 1,
                folds.k()
            )));
        }
        let (metric, fitted) =
            fit_rows(meta, view, &train_rows, &patients, config, seed, f as u64 + 1, sizes, progress)?;
        fold_reports.push(LinearMetricFold {
            fold: f,
            n_attacked_records: folds.members(f).len(),
            n_train_records: train_rows.len(),
            n_train_patients: patients.len(),
            shrinkage: fitted.shrinkage,
            rank: metric.rank(),
            useful_rank: fitted.useful_rank,
            selection: fitted.selection,
            validation_rank_1: fitted
                .candidates
                .iter()
                .map(|c| c.validation_rank_1)
                .fold(None, |b: Option<f64>, v| Some(b.map_or(v, |b| b.max(v)))),
        });
        metrics.push(metric);
        first.get_or_insert(fitted);
    }
    // Top level: the pool the folds train from, and the setting most folds chose.
    let mut counts: Vec<((u64, usize), usize)> = Vec::new();
    for r in &fold_reports {
        let key = (r.shrinkage.to_bits(), r.rank);
        match counts.iter_mut().find(|(k, _)| *k == key) {
            Some((_, c)) => *c += 1,
            None => counts.push((key, 1)),
        }
    }
    let ((shrinkage_bits, rank), _) =
        counts.iter().copied().fold(counts[0], |best, c| if c.1 > best.1 { c } else { best });
    let first = first.expect("at least two folds");
    let report = LinearMetricReport {
        attacker: "linear-metric",
        train_split: split.to_string(),
        n_train_split_records: records.len(),
        n_train_records: all_trainable.len(),
        n_train_patients: all_patients.len(),
        train_records_single_study: records.len() - all_trainable.len(),
        train_records_overlapping_patients: 0,
        input_dim: view.dim(),
        shrinkage: f64::from_bits(shrinkage_bits),
        rank,
        selection: if fold_reports.iter().all(|r| r.selection == "validation") {
            "validation"
        } else {
            "default"
        },
        candidates: Vec::new(),
        side: SideProtocol::cross_fit(folds, reason),
        folds: fold_reports,
        ..first.into_report()
    };
    Ok((metrics, report))
}

/// The records of `rows` whose patient has at least two distinct studies among them, and
/// those patients (sorted).
fn trainable(meta: &Metadata, rows: &[usize]) -> (Vec<usize>, Vec<u32>) {
    let mut studies: HashMap<u32, HashSet<u32>> = HashMap::new();
    for &r in rows {
        studies.entry(meta.patient[r]).or_default().insert(meta.study[r]);
    }
    let train_rows: Vec<usize> =
        rows.iter().copied().filter(|&r| studies[&meta.patient[r]].len() >= 2).collect();
    let mut patients: Vec<u32> = train_rows.iter().map(|&r| meta.patient[r]).collect();
    patients.sort_unstable();
    patients.dedup();
    (train_rows, patients)
}

/// What one training chose.
struct Fitted {
    shrinkage: f64,
    rank: usize,
    useful_rank: usize,
    selection: &'static str,
    n_fit: usize,
    n_held_out: usize,
    candidates: Vec<Candidate>,
    leading_between_variance: Vec<f64>,
}

impl Fitted {
    /// A report with these choices (the caller fills in the counts and the side).
    fn into_report(self) -> LinearMetricReport {
        LinearMetricReport {
            attacker: "linear-metric",
            train_split: String::new(),
            n_train_split_records: 0,
            n_train_records: 0,
            n_train_patients: 0,
            train_records_single_study: 0,
            train_records_overlapping_patients: 0,
            input_dim: 0,
            shrinkage: self.shrinkage,
            rank: self.rank,
            useful_rank: self.useful_rank,
            selection: self.selection,
            n_selection_fit_patients: self.n_fit,
            n_selection_validation_patients: self.n_held_out,
            candidates: self.candidates,
            leading_between_variance: self.leading_between_variance,
            side: SideProtocol::split(""),
            folds: Vec::new(),
        }
    }
}

/// Select the shrinkage and rank on held-out patients of `train_rows` (stream index
/// `stream` of the validation draw), then refit on all of them.
#[allow(clippy::too_many_arguments)]
fn fit_rows(
    meta: &Metadata,
    view: &View,
    train_rows: &[usize],
    patients: &[u32],
    config: &LinearMetricConfig,
    seed: u64,
    stream: u64,
    sizes: crate::engine::BlockSizes,
    progress: &dyn Progress,
) -> Result<(LinearMetric, Fitted)> {
    let dim = view.dim();
    let ranks = rank_grid(config, dim);
    // Model selection on held-out training patients.
    let mut shuffled = patients.to_vec();
    shuffled.shuffle(&mut rng::stream(seed, "reid-linear-metric-validation", stream));
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
    let data = gather(view, train_rows);
    let patient: Vec<u32> = train_rows.iter().map(|&r| meta.patient[r]).collect();
    let scatter = PatientScatter::estimate(Rows::new(&data, train_rows.len(), dim)?, &patient)?;
    let basis = scatter.basis(shrinkage)?;
    let metric = basis.metric(rank);
    let fitted = Fitted {
        shrinkage,
        rank: metric.rank(),
        useful_rank: basis.useful_rank(),
        selection: if selectable { "validation" } else { "default" },
        n_fit,
        n_held_out,
        candidates,
        leading_between_variance: basis.between_variance.iter().take(10).copied().collect(),
    };
    Ok((metric, fitted))
}
