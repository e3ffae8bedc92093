//! What the probe-based audits (`utility`, `attributes`) share: selecting a split's rows,
//! training probes for a set of binary tasks on one split, scoring them on another with
//! DeLong intervals, and the serialised pieces of their reports.

use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};

use crate::cohort::{Cohort, View};
use crate::error::{Error, Result};
use crate::metrics::auroc::{auroc_ci, delong, AurocInterval};
use crate::probe::{decision_scores, train_probes, Features, ProbeConfig, TrainedProbes};

/// Coverage of every interval these audits report (the `ci95` keys).
pub const LEVEL: f64 = 0.95;

/// A JSON object whose keys keep their insertion order (e.g. findings in CheXpert order).
#[derive(Debug, Clone, PartialEq)]
pub struct NamedValues<T>(pub Vec<(String, T)>);

impl<T> Default for NamedValues<T> {
    fn default() -> Self {
        NamedValues(Vec::new())
    }
}

impl<T: Serialize> Serialize for NamedValues<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

/// The records of one split of one view, copied contiguously for the probe.
#[derive(Debug, Clone)]
pub(crate) struct SplitData {
    /// Cohort row of each record.
    pub rows: Vec<usize>,
    /// Row-major features (unit-norm view rows).
    pub features: Vec<f32>,
    /// Feature dimension.
    pub dim: usize,
    /// Patient of each record (dense cohort index).
    pub patients: Vec<u32>,
}

impl SplitData {
    pub fn features(&self) -> Result<Features<'_, f32>> {
        Features::new(&self.features, self.rows.len(), self.dim)
    }
}

/// Rows of `split` in `view`. `flag` names the CLI flag that chose the split (for errors).
pub(crate) fn split_data(cohort: &Cohort, view: &View, split: &str, flag: &str) -> Result<SplitData> {
    let metadata = &cohort.metadata;
    let rows = metadata.rows_in_split(split).map_err(|_| {
        let hint = if metadata.has_split_column {
            String::new()
        } else {
            " (metadata.csv has no `split` column, so every record is in `test`; add a split column \
             with e.g. train/test)"
                .to_string()
        };
        Error::input(
            cohort.dir.join("metadata.csv"),
            format!(
                "{flag} {split}: no records in split `{split}`; this cohort's splits are: {}{hint}",
                metadata.split_names.join(", ")
            ),
        )
    })?;
    let dim = view.dim();
    let mut features = Vec::with_capacity(rows.len() * dim);
    for &i in &rows {
        features.extend_from_slice(view.row(i));
    }
    let patients = rows.iter().map(|&i| metadata.patient[i]).collect();
    Ok(SplitData { rows, features, dim, patients })
}

/// Positive, negative and unlabelled counts.
pub(crate) fn class_counts(labels: &[Option<bool>]) -> (usize, usize, usize) {
    let pos = labels.iter().filter(|l| **l == Some(true)).count();
    let neg = labels.iter().filter(|l| **l == Some(false)).count();
    (pos, neg, labels.len() - pos - neg)
}

/// A binary task: labels of the train-split and eval-split records.
#[derive(Debug, Clone)]
pub(crate) struct BinaryTask {
    pub train: Vec<Option<bool>>,
    pub eval: Vec<Option<bool>>,
}

/// Why a task could not be probed, or None when it can: each split needs both classes.
pub(crate) fn unprobeable(task: &BinaryTask, train_split: &str, eval_split: &str) -> Option<String> {
    let (tp, tn, _) = class_counts(&task.train);
    let (ep, en, _) = class_counts(&task.eval);
    let lacking = |split: &str, pos: usize, neg: usize| match (pos, neg) {
        (0, 0) => Some(format!("no labelled records in the {split} split")),
        (0, _) => Some(format!("no positive records in the {split} split ({neg} negative)")),
        (_, 0) => Some(format!("no negative records in the {split} split ({pos} positive)")),
        _ => None,
    };
    lacking(train_split, tp, tn).or_else(|| lacking(eval_split, ep, en))
}

/// One probed binary task: held-out AUROC with its DeLong interval, counts and the
/// chosen regularisation.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TaskResult {
    /// AUROC of the probe's scores on the eval split.
    pub auroc: f64,
    /// 95% interval of `auroc`.
    pub ci95: [f64; 2],
    /// How the interval was formed (`delong_logit`, ...).
    pub ci_method: &'static str,
    /// DeLong variance of `auroc`.
    pub variance: f64,
    /// Positive training records.
    pub n_train_positive: usize,
    /// Negative training records.
    pub n_train_negative: usize,
    /// Training records without a usable label for this task (excluded).
    pub n_train_excluded: usize,
    /// Positive eval records.
    pub n_eval_positive: usize,
    /// Negative eval records.
    pub n_eval_negative: usize,
    /// Eval records without a usable label for this task (excluded).
    pub n_eval_excluded: usize,
    /// Chosen regularisation (mean-form lambda).
    pub lambda: f64,
    /// The same as scikit-learn's `C` (= 1 / (lambda n_train)).
    pub sklearn_c: f64,
    /// Mean held-out AUROC of the chosen lambda in cross-validation.
    pub cv_auroc: Option<f64>,
    /// Cross-validation folds that could be scored for this task.
    pub cv_folds_scored: usize,
    /// Whether the final fit reached the solver tolerance.
    pub converged: bool,
}

/// The probe training summary shared by the reports.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProbeSummary {
    /// Cross-validation folds (grouped by patient).
    pub n_folds: usize,
    /// Seed of the fold assignment.
    pub seed: u64,
    /// Lambda grid searched (absolute, strong to weak).
    pub lambdas: Vec<f64>,
    /// Mean feature variance of the training features (the grid's unit).
    pub mean_feature_variance: f64,
    /// Models fitted in all.
    pub fits: usize,
    /// Fits that did not reach the tolerance.
    pub fits_not_converged: usize,
    /// Gradient tolerance of the solver.
    pub tol: f64,
}

/// Trained probes' eval-split scores and results.
#[derive(Debug)]
pub(crate) struct Evaluated {
    /// The probe training summary, without the config's seed and tolerance.
    pub lambdas: Vec<f64>,
    pub mean_feature_variance: f64,
    pub n_folds: usize,
    pub fits: usize,
    pub fits_not_converged: usize,
    /// Decision scores on the eval split, per task.
    pub scores: Vec<Vec<f64>>,
    pub results: Vec<TaskResult>,
}

impl Evaluated {
    pub fn summary(&self, config: &ProbeConfig) -> ProbeSummary {
        ProbeSummary {
            n_folds: self.n_folds,
            seed: config.seed,
            lambdas: self.lambdas.clone(),
            mean_feature_variance: self.mean_feature_variance,
            fits: self.fits,
            fits_not_converged: self.fits_not_converged,
            tol: config.solver.tol,
        }
    }
}

/// Train one probe per task on `train` and score it on `eval`. Every task must be
/// probeable (see [`unprobeable`]).
pub(crate) fn train_and_evaluate(
    train: &SplitData,
    eval: &SplitData,
    tasks: &[BinaryTask],
    config: &ProbeConfig,
    interval: AurocInterval,
) -> Result<Evaluated> {
    let labels: Vec<&[Option<bool>]> = tasks.iter().map(|t| t.train.as_slice()).collect();
    let probes = train_probes(train.features()?, &labels, &train.patients, config)?;
    let positions: Vec<usize> = (0..tasks.len()).collect();
    evaluate_probes(&probes, &positions, eval, tasks, interval)
}

/// Score trained probes on `eval`: task `t` is scored by `probes.probes[positions[t]]`,
/// whose training labels must be `tasks[t].train`.
pub(crate) fn evaluate_probes(
    probes: &TrainedProbes,
    positions: &[usize],
    eval: &SplitData,
    tasks: &[BinaryTask],
    interval: AurocInterval,
) -> Result<Evaluated> {
    let chosen: Vec<&crate::probe::Probe> = positions.iter().map(|&p| &probes.probes[p]).collect();
    let models: Vec<_> = chosen.iter().map(|p| &p.model).collect();
    let scores = decision_scores(&models, eval.features()?)?;
    let mut results = Vec::with_capacity(tasks.len());
    for ((task, probe), s) in tasks.iter().zip(&chosen).zip(&scores) {
        let rows: Vec<usize> = (0..s.len()).filter(|&i| task.eval[i].is_some()).collect();
        let kept: Vec<f64> = rows.iter().map(|&i| s[i]).collect();
        let truth: Vec<bool> = rows.iter().map(|&i| task.eval[i] == Some(true)).collect();
        let d = delong(&kept, &truth)?;
        let e = auroc_ci(&d, LEVEL, interval);
        let (tp, tn, tx) = class_counts(&task.train);
        let (ep, en, ex) = class_counts(&task.eval);
        results.push(TaskResult {
            auroc: d.auroc,
            ci95: e.ci(),
            ci_method: e.method,
            variance: d.variance,
            n_train_positive: tp,
            n_train_negative: tn,
            n_train_excluded: tx,
            n_eval_positive: ep,
            n_eval_negative: en,
            n_eval_excluded: ex,
            lambda: probe.model.lambda,
            sklearn_c: probe.model.sklearn_c(),
            cv_auroc: probe.cv_auroc[probe.chosen],
            cv_folds_scored: probe.cv_folds_scored,
            converged: probe.model.converged,
        });
    }
    Ok(Evaluated {
        lambdas: probes.lambdas.clone(),
        mean_feature_variance: probes.mean_feature_variance,
        n_folds: probes.n_folds,
        fits: probes.fits,
        fits_not_converged: probes.fits_not_converged,
        scores,
        results,
    })
}

/// Reject training and evaluating on the same split (the AUROC would be optimistic).
pub(crate) fn check_splits(train_split: &str, eval_split: &str) -> Result<()> {
    if train_split == eval_split {
        return Err(Error::config(format!(
            "--train-split and --eval-split are both `{train_split}`; probes must be evaluated on records they were not trained on"
        )));
    }
    Ok(())
}
