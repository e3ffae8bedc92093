//! Utility audit: how much clinically useful information an embedding keeps, measured as
//! the macro AUROC of linear probes for the 14 CheXpert findings (paper 1's image-side
//! utility). Probes are trained on one split (regularisation by patient-grouped
//! cross-validation) and evaluated on another; a mitigation that lowers linkage risk
//! should leave this number almost unchanged. Label handling: docs/METHODS.md, "Probes and
//! utility".

use serde::Serialize;

use super::probing::{
    check_splits, evaluate_probes, split_data, unprobeable, BinaryTask, NamedValues, ProbeSummary,
    TaskResult, LEVEL,
};
use crate::cohort::{Cohort, Label, FINDINGS};
use crate::error::{Error, Result};
use crate::metrics::auroc::{macro_auroc, AurocInterval};
use crate::probe::{train_probes, ProbeConfig};

/// What an uncertain (-1) finding label becomes (the policies compared by Irvin et al.
/// 2019, CheXpert).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum UncertainPolicy {
    /// Left out of training and evaluation for that finding (CheXpert's U-Ignore).
    #[default]
    Exclude,
    /// Counted as negative (U-Zeros).
    Negative,
    /// Counted as positive (U-Ones).
    Positive,
}

/// What a blank (not mentioned) finding label becomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BlankPolicy {
    /// Counted as negative: the report does not mention the finding.
    #[default]
    Negative,
    /// Left out for that finding.
    Exclude,
}

/// How finding labels become probe targets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct LabelPolicy {
    /// Uncertain (-1) labels.
    pub uncertain: UncertainPolicy,
    /// Blank labels.
    pub blank: BlankPolicy,
}

impl LabelPolicy {
    /// The probe target of a label: positive, negative, or excluded (None).
    pub fn target(&self, label: Label) -> Option<bool> {
        match label {
            Label::Positive => Some(true),
            Label::Negative => Some(false),
            Label::Uncertain => match self.uncertain {
                UncertainPolicy::Exclude => None,
                UncertainPolicy::Negative => Some(false),
                UncertainPolicy::Positive => Some(true),
            },
            Label::Blank => match self.blank {
                BlankPolicy::Negative => Some(false),
                BlankPolicy::Exclude => None,
            },
        }
    }
}

/// Settings of the utility audit.
#[derive(Debug, Clone, PartialEq)]
pub struct UtilityConfig {
    /// View whose embeddings are probed (`--view`).
    pub view: String,
    /// Split the probes are trained on (`--train-split`).
    pub train_split: String,
    /// Split they are evaluated on (`--eval-split`).
    pub eval_split: String,
    /// Label handling.
    pub labels: LabelPolicy,
    /// Probe training.
    pub probe: ProbeConfig,
    /// Interval of each AUROC.
    pub interval: AurocInterval,
}

impl Default for UtilityConfig {
    fn default() -> Self {
        UtilityConfig {
            view: "image".into(),
            train_split: "train".into(),
            eval_split: "test".into(),
            labels: LabelPolicy::default(),
            probe: ProbeConfig::default(),
            interval: AurocInterval::default(),
        }
    }
}

impl UtilityConfig {
    /// Reject bad settings before any work.
    pub fn validate(&self) -> Result<()> {
        check_splits(&self.train_split, &self.eval_split)?;
        self.probe.validate()
    }
}

/// One finding that was probed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FindingResult {
    /// The CheXpert finding.
    pub finding: &'static str,
    /// AUROC, interval, counts and regularisation.
    #[serde(flatten)]
    pub result: TaskResult,
}

/// A finding that was not probed, and why.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Skipped {
    /// The CheXpert finding.
    pub finding: &'static str,
    /// Why (e.g. no positive records in the eval split).
    pub reason: String,
}

/// The utility report; its JSON is the `linkrisk utility` output.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UtilityReport {
    /// Always `utility`.
    pub audit: &'static str,
    /// The probed view.
    pub view: String,
    /// Mean AUROC over the probed findings (None when every finding was skipped).
    pub macro_auroc: Option<f64>,
    /// 95% interval of the macro AUROC (influence variance clustered by patient).
    pub ci95_macro_auroc: Option<[f64; 2]>,
    /// How the macro interval was formed.
    pub macro_ci_method: Option<&'static str>,
    /// AUROC per probed finding, in CheXpert order.
    pub per_finding: NamedValues<f64>,
    /// DeLong 95% interval per probed finding.
    pub ci95_per_finding: NamedValues<[f64; 2]>,
    /// Chosen regularisation per probed finding (scikit-learn `C` equivalent in `findings`).
    pub lambda_per_finding: NamedValues<f64>,
    /// Full per-finding results: counts, variance, regularisation, CV AUROC.
    pub findings: Vec<FindingResult>,
    /// Findings that were not probed, with the reason.
    pub skipped: Vec<Skipped>,
    /// Split the probes were trained on.
    pub train_split: String,
    /// Split they were evaluated on.
    pub eval_split: String,
    /// Records in the train split.
    pub n_train_records: usize,
    /// Records in the eval split.
    pub n_eval_records: usize,
    /// Patients in the eval split (the clusters of the macro interval).
    pub n_eval_patients: usize,
    /// How -1 and blank labels were mapped.
    pub label_policy: LabelPolicy,
    /// Probe training summary.
    pub probe: ProbeSummary,
}

/// Run the utility audit on `cohort`.
pub fn utility(cohort: &Cohort, config: &UtilityConfig) -> Result<UtilityReport> {
    let eval_split = config.eval_split.clone();
    let mut reports = utility_on_splits(cohort, config, &[eval_split.as_str()])?;
    Ok(reports.remove(0))
}

/// The utility audit evaluated on several splits with probes trained once: one report per
/// split in `eval_splits` (each as [`utility`] with `eval_split` set to it would give; the
/// probes are the same, so this costs one training instead of one per split).
/// `config.eval_split` is ignored.
pub fn utility_on_splits(
    cohort: &Cohort,
    config: &UtilityConfig,
    eval_splits: &[&str],
) -> Result<Vec<UtilityReport>> {
    if eval_splits.is_empty() {
        return Err(Error::config("--eval-split: name at least one split to evaluate the probes on"));
    }
    for split in eval_splits {
        check_splits(&config.train_split, split)?;
    }
    config.probe.validate()?;
    let metadata = &cohort.metadata;
    let findings = metadata.findings.as_ref().ok_or_else(|| {
        Error::input(
            cohort.dir.join("metadata.csv"),
            "no finding columns; the utility audit probes the 14 CheXpert findings (`No Finding`, \
             `Cardiomegaly`, ...; values 1, 0, -1 or blank): add them to metadata.csv",
        )
    })?;
    let view = cohort.view(&config.view)?;
    let train = split_data(cohort, view, &config.train_split, "--train-split")?;
    let evals = eval_splits
        .iter()
        .map(|split| split_data(cohort, view, split, "--eval-split"))
        .collect::<Result<Vec<_>>>()?;
    let labels_of = |rows: &[usize], k: usize| -> Vec<Option<bool>> {
        rows.iter().map(|&i| config.labels.target(findings[i][k])).collect()
    };

    // Per eval split: the findings probeable there (both classes in train and in that split).
    let mut probed: Vec<Vec<usize>> = vec![Vec::new(); evals.len()];
    let mut skipped: Vec<Vec<Skipped>> = vec![Vec::new(); evals.len()];
    let mut trained: Vec<usize> = Vec::new();
    for (k, &finding) in FINDINGS.iter().enumerate() {
        let train_labels = labels_of(&train.rows, k);
        let mut any = false;
        for (e, (eval, split)) in evals.iter().zip(eval_splits).enumerate() {
            let task = BinaryTask { train: train_labels.clone(), eval: labels_of(&eval.rows, k) };
            match unprobeable(&task, &config.train_split, split) {
                Some(reason) => skipped[e].push(Skipped { finding, reason }),
                None => {
                    probed[e].push(k);
                    any = true;
                }
            }
        }
        if any {
            trained.push(k);
        }
    }
    // Train once on the findings probeable for some split; evaluate each split on its own.
    let probes = if trained.is_empty() {
        None
    } else {
        let train_labels: Vec<Vec<Option<bool>>> =
            trained.iter().map(|&k| labels_of(&train.rows, k)).collect();
        let label_refs: Vec<&[Option<bool>]> = train_labels.iter().map(Vec::as_slice).collect();
        Some(train_probes(train.features()?, &label_refs, &train.patients, &config.probe)?)
    };
    let mut reports = Vec::with_capacity(evals.len());
    for (e, eval) in evals.iter().enumerate() {
        let tasks: Vec<BinaryTask> = probed[e]
            .iter()
            .map(|&k| BinaryTask { train: labels_of(&train.rows, k), eval: labels_of(&eval.rows, k) })
            .collect();
        let probe_summary;
        let mut results = Vec::new();
        let (mut macro_value, mut macro_ci, mut macro_method) = (None, None, None);
        match &probes {
            Some(probes) if !tasks.is_empty() => {
                let positions: Vec<usize> =
                    probed[e].iter().map(|k| trained.iter().position(|t| t == k).expect("trained")).collect();
                let evaluated = evaluate_probes(probes, &positions, eval, &tasks, config.interval)?;
                let pairs: Vec<(&[f64], &[Option<bool>])> = evaluated
                    .scores
                    .iter()
                    .zip(&tasks)
                    .map(|(s, t)| (s.as_slice(), t.eval.as_slice()))
                    .collect();
                let m = macro_auroc(&pairs, Some(&eval.patients))?;
                let ci = m.ci(LEVEL, config.interval);
                macro_value = Some(m.auroc);
                macro_ci = Some(ci.ci());
                macro_method = Some(ci.method);
                probe_summary = evaluated.summary(&config.probe);
                results = evaluated.results;
            }
            _ => {
                probe_summary = ProbeSummary {
                    n_folds: config.probe.n_folds,
                    seed: config.probe.seed,
                    lambdas: Vec::new(),
                    mean_feature_variance: f64::NAN,
                    fits: 0,
                    fits_not_converged: 0,
                    tol: config.probe.solver.tol,
                };
            }
        }
        let findings_out: Vec<FindingResult> = probed[e]
            .iter()
            .zip(results)
            .map(|(&k, result)| FindingResult { finding: FINDINGS[k], result })
            .collect();
        let named = |f: &dyn Fn(&TaskResult) -> f64| {
            NamedValues(findings_out.iter().map(|r| (r.finding.to_string(), f(&r.result))).collect())
        };
        let per_finding = named(&|r| r.auroc);
        let lambda_per_finding = named(&|r| r.lambda);
        let ci95_per_finding =
            NamedValues(findings_out.iter().map(|r| (r.finding.to_string(), r.result.ci95)).collect());
        let mut eval_patients = eval.patients.clone();
        eval_patients.sort_unstable();
        eval_patients.dedup();
        reports.push(UtilityReport {
            audit: "utility",
            view: config.view.clone(),
            macro_auroc: macro_value,
            ci95_macro_auroc: macro_ci,
            macro_ci_method: macro_method,
            per_finding,
            ci95_per_finding,
            lambda_per_finding,
            findings: findings_out,
            skipped: std::mem::take(&mut skipped[e]),
            train_split: config.train_split.clone(),
            eval_split: eval_splits[e].to_string(),
            n_train_records: train.rows.len(),
            n_eval_records: eval.rows.len(),
            n_eval_patients: eval_patients.len(),
            label_policy: config.labels,
            probe: probe_summary,
        });
    }
    Ok(reports)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::test_cohort::{cohort, NEVER_POSITIVE};
    use crate::cohort::metadata::MetadataBuilder;
    use crate::cohort::View;

    #[test]
    fn synthetic_signal_gives_high_macro_auroc_and_skips_are_reported() {
        let c = cohort(400, 24, 1.5, 3);
        let report = utility(&c, &UtilityConfig::default()).unwrap();
        let macro_auroc = report.macro_auroc.unwrap();
        assert!(macro_auroc > 0.8, "{report:#?}");
        let [lo, hi] = report.ci95_macro_auroc.unwrap();
        assert!(lo < macro_auroc && macro_auroc < hi && hi - lo < 0.2, "{lo} {hi}");
        assert_eq!(report.skipped.len(), 1);
        assert_eq!(report.skipped[0].finding, FINDINGS[NEVER_POSITIVE]);
        assert!(
            report.skipped[0].reason.contains("no positive records in the train split"),
            "{:?}",
            report.skipped
        );
        assert_eq!(report.per_finding.0.len(), 13);
        assert_eq!(report.per_finding.0[0].0, "No Finding", "CheXpert order");
        let mean: f64 = report.per_finding.0.iter().map(|(_, a)| a).sum::<f64>() / 13.0;
        assert!((mean - macro_auroc).abs() < 1e-12);
        for f in &report.findings {
            let r = &f.result;
            assert!(r.ci95[0] < r.auroc && r.auroc < r.ci95[1], "{f:?}");
            assert!(r.n_eval_positive > 0 && r.n_eval_negative > 0 && r.converged);
            // uncertain labels are excluded by default, and only they
            assert!(r.n_train_excluded > 0 && r.n_eval_excluded > 0 || f.finding == "No Finding");
            assert!(
                (r.sklearn_c - 1.0 / (r.lambda * (r.n_train_positive + r.n_train_negative) as f64)).abs()
                    < 1e-9 * r.sklearn_c
            );
        }
        assert_eq!(report.n_train_records + report.n_eval_records, c.len());
        // JSON interface keys
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["audit"], "utility");
        assert_eq!(json["view"], "image");
        assert!(json["per_finding"]["Cardiomegaly"].as_f64().unwrap() > 0.5);
        assert!(json["macro_auroc"].as_f64().is_some());
    }

    #[test]
    fn no_signal_gives_chance_level() {
        let c = cohort(300, 16, 0.0, 4);
        let report = utility(&c, &UtilityConfig::default()).unwrap();
        let m = report.macro_auroc.unwrap();
        let [lo, hi] = report.ci95_macro_auroc.unwrap();
        assert!((m - 0.5).abs() < 0.08 && lo < 0.5 && 0.5 < hi, "{m} [{lo}, {hi}]");
    }

    #[test]
    fn label_policies_change_counts() {
        let c = cohort(200, 16, 1.5, 5);
        let mut config = UtilityConfig::default();
        let base = utility(&c, &config).unwrap();
        config.labels.uncertain = UncertainPolicy::Positive;
        config.labels.blank = BlankPolicy::Exclude;
        let other = utility(&c, &config).unwrap();
        let (a, b) = (&base.findings[2].result, &other.findings[2].result);
        // U-Ones moves the excluded uncertain records to positive; blanks leave the negatives
        assert_eq!(b.n_train_positive, a.n_train_positive + a.n_train_excluded);
        assert!(b.n_train_negative < a.n_train_negative);
        assert_eq!(
            b.n_train_positive + b.n_train_negative + b.n_train_excluded,
            a.n_train_positive + a.n_train_negative + a.n_train_excluded
        );
    }

    #[test]
    fn clear_errors() {
        let c = cohort(60, 8, 1.0, 6);
        let config = UtilityConfig { view: "report".into(), ..Default::default() };
        let err = utility(&c, &config).unwrap_err().to_string();
        assert!(err.contains("no view named `report`") && err.contains("image"), "{err}");
        let config = UtilityConfig { train_split: "training".into(), ..Default::default() };
        let err = utility(&c, &config).unwrap_err().to_string();
        assert!(err.contains("--train-split training") && err.contains("train, test"), "{err}");
        let config = UtilityConfig { eval_split: "train".into(), ..Default::default() };
        assert!(utility(&c, &config).unwrap_err().to_string().contains("both `train`"));
        // no split column: everything is `test`, and the message says so
        let mut b = MetadataBuilder::default();
        for i in 0..10 {
            b.ids.push(format!("r{i}"));
            b.patient_ids.push(format!("p{i}"));
        }
        b.findings = Some(vec![[Label::Positive; 14]; 10]);
        let m = b.build(std::path::Path::new("m"), 0).unwrap();
        let v = View::from_memory("image", 10, 2, vec![1.0; 20]).unwrap();
        let nosplit = Cohort::from_parts("d", m.clone(), vec![v.clone()]).unwrap();
        let err = utility(&nosplit, &UtilityConfig::default()).unwrap_err().to_string();
        assert!(err.contains("no `split` column"), "{err}");
        // no findings columns
        let mut m = m;
        m.findings = None;
        let nofindings = Cohort::from_parts("d", m, vec![v]).unwrap();
        let err = utility(&nofindings, &UtilityConfig::default()).unwrap_err().to_string();
        assert!(err.contains("metadata.csv") && err.contains("no finding columns"), "{err}");
    }
}
