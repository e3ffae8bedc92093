//! What the probe-based audits (`utility`, `attributes`) share: selecting a split's rows,
//! training probes for a set of binary tasks on one split and scoring them on another, or
//! — when no train split serves (or with `--attack-side audited`) — patient-grouped
//! cross-fitted probes within the evaluated split (fold f scored by probes trained on the
//! other folds; the AUROC over every record's out-of-fold score), with DeLong intervals,
//! and the serialised pieces of their reports.

use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};

use crate::audit::cross_fit::{CrossFit, SideProtocol, SideSource};
use crate::cohort::{Cohort, View};
use crate::error::{Error, Result};
use crate::metrics::auroc::{auroc_ci, delong, AurocInterval};
use crate::probe::{decision_scores, train_probes, Features, LogisticModel, ProbeConfig, TrainedProbes};

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

    /// Records `idx` (positions in this split), in that order.
    pub fn subset(&self, idx: &[usize]) -> SplitData {
        let mut features = Vec::with_capacity(idx.len() * self.dim);
        for &i in idx {
            features.extend_from_slice(&self.features[i * self.dim..(i + 1) * self.dim]);
        }
        SplitData {
            rows: idx.iter().map(|&i| self.rows[i]).collect(),
            features,
            dim: self.dim,
            patients: idx.iter().map(|&i| self.patients[i]).collect(),
        }
    }
}

/// Where a probe audit's probes are trained.
#[derive(Debug)]
pub(crate) enum ProbeTraining {
    /// On the records of another split.
    Split(SplitData),
    /// Cross-fitted within the evaluated split.
    CrossFit(CrossFit),
}

/// Decide where the probes are trained (`--attack-side`): the train split (`split`; `auto`
/// when it has records and is not the evaluated split), else patient-grouped cross-fitting
/// of the evaluated records `eval` (`audited`; `auto` otherwise, with the reason), `folds`
/// folds seeded by `seed`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn probe_training(
    cohort: &Cohort,
    view: &View,
    train_split: &str,
    eval: &SplitData,
    eval_split: &str,
    source: &SideSource,
    folds: usize,
    seed: u64,
) -> Result<(ProbeTraining, SideProtocol)> {
    let cross = |reason: Option<String>| -> Result<(ProbeTraining, SideProtocol)> {
        let cf = CrossFit::by_patient(&eval.patients, folds, seed)
            .map_err(|e| Error::config(format!("cross-fitting the probes within `{eval_split}`: {e}")))?;
        let protocol = SideProtocol::cross_fit(&cf, reason);
        Ok((ProbeTraining::CrossFit(cf), protocol))
    };
    match source {
        SideSource::Audited => cross(None),
        SideSource::Split => {
            check_splits(train_split, eval_split)?;
            Ok((
                ProbeTraining::Split(split_data(cohort, view, train_split, "--train-split")?),
                SideProtocol::split(train_split),
            ))
        }
        SideSource::Auto if train_split == eval_split => cross(Some(format!(
            "--train-split {train_split} is the evaluated split; probes are cross-fitted within it"
        ))),
        SideSource::Auto => match split_data(cohort, view, train_split, "--train-split") {
            Ok(train) => Ok((ProbeTraining::Split(train), SideProtocol::split(train_split))),
            Err(Error::Input { .. }) => cross(Some(format!(
                "no records in split `{train_split}`; probes are cross-fitted within `{eval_split}`"
            ))),
            Err(e) => Err(e),
        },
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
    /// Cross-fitted probes: each fold's probe (its records were scored by it). `lambda`,
    /// `sklearn_c` above are then the folds' medians, `cv_auroc` their mean, `cv_folds_scored`
    /// the number of fold probes, `converged` whether all converged, and the train counts
    /// those of the evaluated split.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub folds: Option<Vec<FoldProbe>>,
}

/// One cross-fitting fold's probe of a task.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FoldProbe {
    /// The fold.
    pub fold: usize,
    /// Records it was trained on (the other folds').
    pub n_train: usize,
    /// Records of this fold it scored (with a usable label).
    pub n_scored: usize,
    /// Chosen regularisation (mean-form lambda).
    pub lambda: f64,
    /// scikit-learn's `C`.
    pub sklearn_c: f64,
    /// Mean held-out AUROC of the chosen lambda in its own cross-validation.
    pub cv_auroc: Option<f64>,
    /// Whether its final fit converged.
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
            folds: None,
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

/// Why a task cannot be cross-fitted within the evaluated split `split`, or None: the split
/// needs both classes, and so does every fold's training part (the other folds).
pub(crate) fn unprobeable_cross_fit(
    labels: &[Option<bool>],
    folds: &CrossFit,
    split: &str,
) -> Option<String> {
    let task = BinaryTask { train: labels.to_vec(), eval: labels.to_vec() };
    if let Some(reason) = unprobeable(&task, split, split) {
        return Some(reason);
    }
    (0..folds.k()).find_map(|f| {
        let part: Vec<Option<bool>> = folds.others(f).iter().map(|&i| labels[i]).collect();
        match class_counts(&part) {
            (0, _, _) | (_, 0, _) => Some(format!(
                "cross-fitting fold {} of {}: the other folds of `{split}` lack a class; use fewer --side-folds",
                f + 1,
                folds.k()
            )),
            _ => None,
        }
    })
}

/// Cross-fitted probes within the evaluated split: for each fold, probes trained on the
/// other folds' records (regularisation by their own patient-grouped cross-validation)
/// score the fold's records; each task's AUROC and DeLong interval are over every record's
/// out-of-fold score. `tasks[t].train` and `.eval` are both the evaluated records' labels;
/// every task must pass [`unprobeable_cross_fit`].
pub(crate) fn cross_fit_and_evaluate(
    eval: &SplitData,
    tasks: &[BinaryTask],
    folds: &CrossFit,
    config: &ProbeConfig,
    interval: AurocInterval,
) -> Result<Evaluated> {
    let n = eval.rows.len();
    let mut scores = vec![vec![f64::NAN; n]; tasks.len()];
    let mut per_fold: Vec<Vec<FoldProbe>> = vec![Vec::new(); tasks.len()];
    let (mut fits, mut fits_not_converged, mut n_folds) = (0, 0, config.n_folds);
    let mut first: Option<(Vec<f64>, f64)> = None;
    for f in 0..folds.k() {
        let members = folds.members(f);
        if members.is_empty() {
            continue;
        }
        let others = folds.others(f);
        let train = eval.subset(&others);
        let labels: Vec<Vec<Option<bool>>> =
            tasks.iter().map(|t| others.iter().map(|&i| t.train[i]).collect()).collect();
        let refs: Vec<&[Option<bool>]> = labels.iter().map(Vec::as_slice).collect();
        let probes = train_probes(train.features()?, &refs, &train.patients, config)?;
        let held = eval.subset(&members);
        let models: Vec<&LogisticModel> = probes.probes.iter().map(|p| &p.model).collect();
        let held_scores = decision_scores(&models, held.features()?)?;
        for (t, task_scores) in held_scores.iter().enumerate() {
            for (j, &i) in members.iter().enumerate() {
                scores[t][i] = task_scores[j];
            }
            let probe = &probes.probes[t];
            per_fold[t].push(FoldProbe {
                fold: f,
                n_train: probe.model.n_train,
                n_scored: members.iter().filter(|&&i| tasks[t].eval[i].is_some()).count(),
                lambda: probe.model.lambda,
                sklearn_c: probe.model.sklearn_c(),
                cv_auroc: probe.cv_auroc[probe.chosen],
                converged: probe.model.converged,
            });
        }
        fits += probes.fits;
        fits_not_converged += probes.fits_not_converged;
        n_folds = probes.n_folds;
        first.get_or_insert((probes.lambdas.clone(), probes.mean_feature_variance));
    }
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        let m = v.len() / 2;
        if v.len() % 2 == 1 {
            v[m]
        } else {
            0.5 * (v[m - 1] + v[m])
        }
    };
    let mut results = Vec::with_capacity(tasks.len());
    for ((task, s), fold_probes) in tasks.iter().zip(&scores).zip(per_fold) {
        let rows: Vec<usize> = (0..n).filter(|&i| task.eval[i].is_some()).collect();
        let kept: Vec<f64> = rows.iter().map(|&i| s[i]).collect();
        if kept.iter().any(|v| v.is_nan()) {
            return Err(Error::config("cross-fitting left a record without a probe score"));
        }
        let truth: Vec<bool> = rows.iter().map(|&i| task.eval[i] == Some(true)).collect();
        let d = delong(&kept, &truth)?;
        let e = auroc_ci(&d, LEVEL, interval);
        let (p, q, x) = class_counts(&task.eval);
        let cv: Vec<f64> = fold_probes.iter().filter_map(|f| f.cv_auroc).collect();
        results.push(TaskResult {
            auroc: d.auroc,
            ci95: e.ci(),
            ci_method: e.method,
            variance: d.variance,
            n_train_positive: p,
            n_train_negative: q,
            n_train_excluded: x,
            n_eval_positive: p,
            n_eval_negative: q,
            n_eval_excluded: x,
            lambda: median(fold_probes.iter().map(|f| f.lambda).collect()),
            sklearn_c: median(fold_probes.iter().map(|f| f.sklearn_c).collect()),
            cv_auroc: (!cv.is_empty()).then(|| cv.iter().sum::<f64>() / cv.len() as f64),
            cv_folds_scored: fold_probes.len(),
            converged: fold_probes.iter().all(|f| f.converged),
            folds: Some(fold_probes),
        });
    }
    let (lambdas, mean_feature_variance) = first.unwrap_or_default();
    Ok(Evaluated { lambdas, mean_feature_variance, n_folds, fits, fits_not_converged, scores, results })
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
