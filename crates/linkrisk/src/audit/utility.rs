//! Utility audit: how much clinically useful information an embedding keeps, measured as
//! the macro AUROC of linear probes for the 14 CheXpert findings (paper 1's image-side
//! utility). Probes are trained on one split (regularisation by patient-grouped
//! cross-validation) and evaluated on another, or cross-fitted within the evaluated split
//! by patient when no train split serves (`side`); a mitigation that lowers linkage risk
//! should leave this number almost unchanged. Label handling: docs/METHODS.md, "Probes and
//! utility".

use serde::Serialize;

use super::cross_fit::{validate_folds, SideProtocol, SideSource, DEFAULT_SIDE_FOLDS};
use super::probing::{
    check_splits, cross_fit_and_evaluate, evaluate_probes, probe_training, split_data, unprobeable,
    unprobeable_cross_fit, BinaryTask, Evaluated, NamedValues, ProbeSummary, ProbeTraining, SplitData,
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
    /// Where the probes are trained (`--attack-side`): `auto` (the train split when it has
    /// records and is not the evaluated split, else cross-fitted within the evaluated
    /// split), `audited` (always cross-fitted) or `split` (the train split only).
    pub side: SideSource,
    /// Cross-fitting folds (`--side-folds`), grouped by patient.
    pub side_folds: usize,
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
            side: SideSource::Auto,
            side_folds: DEFAULT_SIDE_FOLDS,
        }
    }
}

impl UtilityConfig {
    /// Reject bad settings before any work.
    pub fn validate(&self) -> Result<()> {
        if self.side == SideSource::Split {
            check_splits(&self.train_split, &self.eval_split)?;
        }
        validate_folds(self.side_folds)?;
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
    /// Probe training summary (cross-fitted: the first fold's grid and variance, fits
    /// summed over the folds).
    pub probe: ProbeSummary,
    /// Where the probes were trained: `{"source": "split NAME"}`, or `{"source":
    /// "cross_fit", "folds": K}` (every eval record scored by probes trained on the other
    /// folds' patients; `train_split` is then the eval split).
    pub side: SideProtocol,
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
/// `config.eval_split` is ignored. An eval split without a train split to learn from (see
/// [`UtilityConfig::side`]) gets probes cross-fitted within it instead.
pub fn utility_on_splits(
    cohort: &Cohort,
    config: &UtilityConfig,
    eval_splits: &[&str],
) -> Result<Vec<UtilityReport>> {
    if eval_splits.is_empty() {
        return Err(Error::config("--eval-split: name at least one split to evaluate the probes on"));
    }
    if config.side == SideSource::Split {
        for split in eval_splits {
            check_splits(&config.train_split, split)?;
        }
    }
    config.probe.validate()?;
    validate_folds(config.side_folds)?;
    let metadata = &cohort.metadata;
    let findings = metadata.findings.as_ref().ok_or_else(|| {
        Error::input(
            cohort.dir.join("metadata.csv"),
            "no finding columns; the utility audit probes the 14 CheXpert findings (`No Finding`, \
             `Cardiomegaly`, ...; values 1, 0, -1 or blank): add them to metadata.csv",
        )
    })?;
    let view = cohort.view(&config.view)?;
    let evals = eval_splits
        .iter()
        .map(|split| split_data(cohort, view, split, "--eval-split"))
        .collect::<Result<Vec<_>>>()?;
    let labels_of = |rows: &[usize], k: usize| -> Vec<Option<bool>> {
        rows.iter().map(|&i| config.labels.target(findings[i][k])).collect()
    };
    let mut reports: Vec<Option<UtilityReport>> = vec![None; evals.len()];
    // Eval splits whose probes come from the train split (trained once for all of them).
    let mut on_train: Vec<usize> = Vec::new();
    let mut train: Option<(SplitData, SideProtocol)> = None;
    for (e, (eval, split)) in evals.iter().zip(eval_splits).enumerate() {
        let (training, protocol) = probe_training(
            cohort,
            view,
            &config.train_split,
            eval,
            split,
            &config.side,
            config.side_folds,
            config.probe.seed,
        )?;
        match training {
            ProbeTraining::Split(data) => {
                on_train.push(e);
                train.get_or_insert((data, protocol));
            }
            ProbeTraining::CrossFit(folds) => {
                // Tasks: the findings with both classes in the split and in every fold's
                // training part.
                let mut tasks = Vec::new();
                let mut skipped = Vec::new();
                for (k, &finding) in FINDINGS.iter().enumerate() {
                    let labels = labels_of(&eval.rows, k);
                    match unprobeable_cross_fit(&labels, &folds, split) {
                        Some(reason) => skipped.push(Skipped { finding, reason }),
                        None => tasks.push((k, BinaryTask { train: labels.clone(), eval: labels })),
                    }
                }
                let binary: Vec<BinaryTask> = tasks.iter().map(|(_, t)| t.clone()).collect();
                let evaluated = if binary.is_empty() {
                    None
                } else {
                    Some(cross_fit_and_evaluate(eval, &binary, &folds, &config.probe, config.interval)?)
                };
                let probed: Vec<usize> = tasks.iter().map(|(k, _)| *k).collect();
                let report = report_of(
                    config,
                    split,
                    split,
                    eval.rows.len(),
                    eval,
                    &probed,
                    &binary,
                    evaluated,
                    skipped,
                    protocol,
                )?;
                reports[e] = Some(report);
            }
        }
    }
    if let Some((train, protocol)) = train {
        // Per eval split: the findings probeable there (both classes in train and in that split).
        let mut probed: Vec<Vec<usize>> = vec![Vec::new(); evals.len()];
        let mut skipped: Vec<Vec<Skipped>> = vec![Vec::new(); evals.len()];
        let mut trained: Vec<usize> = Vec::new();
        for (k, &finding) in FINDINGS.iter().enumerate() {
            let train_labels = labels_of(&train.rows, k);
            let mut any = false;
            for &e in &on_train {
                let task = BinaryTask { train: train_labels.clone(), eval: labels_of(&evals[e].rows, k) };
                match unprobeable(&task, &config.train_split, eval_splits[e]) {
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
        for &e in &on_train {
            let eval = &evals[e];
            let tasks: Vec<BinaryTask> = probed[e]
                .iter()
                .map(|&k| BinaryTask { train: labels_of(&train.rows, k), eval: labels_of(&eval.rows, k) })
                .collect();
            let evaluated = match &probes {
                Some(probes) if !tasks.is_empty() => {
                    let positions: Vec<usize> = probed[e]
                        .iter()
                        .map(|k| trained.iter().position(|t| t == k).expect("trained"))
                        .collect();
                    Some(evaluate_probes(probes, &positions, eval, &tasks, config.interval)?)
                }
                _ => None,
            };
            let report = report_of(
                config,
                &config.train_split,
                eval_splits[e],
                train.rows.len(),
                eval,
                &probed[e],
                &tasks,
                evaluated,
                std::mem::take(&mut skipped[e]),
                protocol.clone(),
            )?;
            reports[e] = Some(report);
        }
    }
    Ok(reports.into_iter().map(|r| r.expect("every eval split has a report")).collect())
}

/// The report of one eval split from its probed findings and their evaluation.
#[allow(clippy::too_many_arguments)]
fn report_of(
    config: &UtilityConfig,
    train_split: &str,
    eval_split: &str,
    n_train_records: usize,
    eval: &SplitData,
    probed: &[usize],
    tasks: &[BinaryTask],
    evaluated: Option<Evaluated>,
    skipped: Vec<Skipped>,
    side: SideProtocol,
) -> Result<UtilityReport> {
    let mut results = Vec::new();
    let (mut macro_value, mut macro_ci, mut macro_method) = (None, None, None);
    let probe_summary = match evaluated {
        Some(evaluated) => {
            let pairs: Vec<(&[f64], &[Option<bool>])> =
                evaluated.scores.iter().zip(tasks).map(|(s, t)| (s.as_slice(), t.eval.as_slice())).collect();
            let m = macro_auroc(&pairs, Some(&eval.patients))?;
            let ci = m.ci(LEVEL, config.interval);
            macro_value = Some(m.auroc);
            macro_ci = Some(ci.ci());
            macro_method = Some(ci.method);
            let summary = evaluated.summary(&config.probe);
            results = evaluated.results;
            summary
        }
        None => ProbeSummary {
            n_folds: config.probe.n_folds,
            seed: config.probe.seed,
            lambdas: Vec::new(),
            mean_feature_variance: f64::NAN,
            fits: 0,
            fits_not_converged: 0,
            tol: config.probe.solver.tol,
        },
    };
    let findings_out: Vec<FindingResult> = probed
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
    Ok(UtilityReport {
        audit: "utility",
        view: config.view.clone(),
        macro_auroc: macro_value,
        ci95_macro_auroc: macro_ci,
        macro_ci_method: macro_method,
        per_finding,
        ci95_per_finding,
        lambda_per_finding,
        findings: findings_out,
        skipped,
        train_split: train_split.to_string(),
        eval_split: eval_split.to_string(),
        n_train_records,
        n_eval_records: eval.rows.len(),
        n_eval_patients: eval_patients.len(),
        label_policy: config.labels,
        probe: probe_summary,
        side,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::cross_fit::CrossFit;
    use crate::audit::test_cohort::{cohort, test_only, NEVER_POSITIVE};
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
        // With `--attack-side split` (train split only) a missing or evaluated train split is
        // an error; under `auto` the probes are cross-fitted instead, and the report says so.
        let strict = UtilityConfig { side: SideSource::Split, ..Default::default() };
        let config = UtilityConfig { train_split: "training".into(), ..strict.clone() };
        let err = utility(&c, &config).unwrap_err().to_string();
        assert!(err.contains("--train-split training") && err.contains("train, test"), "{err}");
        let config = UtilityConfig { eval_split: "train".into(), ..strict.clone() };
        assert!(utility(&c, &config).unwrap_err().to_string().contains("both `train`"));
        let auto =
            utility(&c, &UtilityConfig { train_split: "training".into(), ..Default::default() }).unwrap();
        assert!(auto.side.is_cross_fit() && auto.side.reason.as_deref().unwrap().contains("training"));
        let config = UtilityConfig { side_folds: 1, ..Default::default() };
        assert!(utility(&c, &config).unwrap_err().to_string().contains("--side-folds 1"));
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
        let err = utility(&nosplit, &strict).unwrap_err().to_string();
        assert!(err.contains("no `split` column"), "{err}");
        // no findings columns
        let mut m = m;
        m.findings = None;
        let nofindings = Cohort::from_parts("d", m, vec![v]).unwrap();
        let err = utility(&nofindings, &strict).unwrap_err().to_string();
        assert!(err.contains("metadata.csv") && err.contains("no finding columns"), "{err}");
    }

    /// AUROC by counting pairs (ties count half): the Mann-Whitney statistic, O(P N).
    fn pair_auroc(scores: &[f64], truth: &[bool]) -> f64 {
        let (mut wins, mut pairs) = (0.0, 0.0);
        for (i, &p) in truth.iter().enumerate() {
            for (j, &q) in truth.iter().enumerate() {
                if p && !q {
                    pairs += 1.0;
                    wins += if scores[i] > scores[j] {
                        1.0
                    } else if scores[i] == scores[j] {
                        0.5
                    } else {
                        0.0
                    };
                }
            }
        }
        wins / pairs
    }

    #[test]
    fn test_only_cohort_gets_cross_fitted_aurocs_equal_to_a_per_fold_reference() {
        let c = test_only(cohort(300, 16, 1.5, 3));
        let mut config = UtilityConfig::default();
        config.probe.solver.tol = 1e-10;
        let report = utility(&c, &config).unwrap();
        assert_eq!(report.side.source, "cross_fit");
        assert_eq!(report.side.folds, Some(5));
        assert!(
            report.side.reason.as_deref().unwrap().contains("no records in split `train`"),
            "{:?}",
            report.side
        );
        assert_eq!((report.train_split.as_str(), report.n_train_records), ("test", c.len()));
        assert_eq!(report.n_eval_records, c.len());
        let macro_auroc = report.macro_auroc.unwrap();
        assert!(macro_auroc > 0.75, "{macro_auroc}");
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["side"]["source"], "cross_fit");
        assert_eq!(json["side"]["folds"], 5);
        // Reference for every probed finding, written from the protocol: fold f's records
        // scored by a cold fit on the other folds' records at the lambda that fold chose
        // (the fit itself is checked against scikit-learn in `probe`), AUROC by pair counts.
        let view = c.view("image").unwrap();
        let findings = c.metadata.findings.as_ref().unwrap();
        let folds = CrossFit::by_patient(&c.metadata.patient, 5, config.probe.seed).unwrap();
        for f in &report.findings {
            let k = FINDINGS.iter().position(|&x| x == f.finding).unwrap();
            let labels: Vec<Option<bool>> =
                (0..c.len()).map(|i| config.labels.target(findings[i][k])).collect();
            let fold_probes = f.result.folds.as_ref().unwrap();
            assert_eq!(fold_probes.len(), 5);
            let mut scores = vec![f64::NAN; c.len()];
            for (fold, probe) in fold_probes.iter().enumerate() {
                let others = folds.others(fold);
                let x: Vec<f32> = others.iter().flat_map(|&i| view.row(i).iter().copied()).collect();
                let y: Vec<Option<bool>> = others.iter().map(|&i| labels[i]).collect();
                let features = crate::probe::Features::new(&x, others.len(), view.dim()).unwrap();
                let model =
                    &crate::probe::fit_logistic(features, &[&y], &[probe.lambda], config.probe.solver)
                        .unwrap()[0];
                assert_eq!(model.n_train, probe.n_train);
                for i in folds.members(fold) {
                    let z: f64 = view.row(i).iter().zip(&model.weights).map(|(a, w)| f64::from(*a) * w).sum();
                    scores[i] = z + model.intercept;
                }
            }
            let rows: Vec<usize> = (0..c.len()).filter(|&i| labels[i].is_some()).collect();
            let s: Vec<f64> = rows.iter().map(|&i| scores[i]).collect();
            let t: Vec<bool> = rows.iter().map(|&i| labels[i] == Some(true)).collect();
            let want = pair_auroc(&s, &t);
            assert!(
                (f.result.auroc - want).abs() < 1e-3,
                "{}: {} vs reference {want}",
                f.finding,
                f.result.auroc
            );
            assert!(f.result.ci95[0] < f.result.auroc && f.result.auroc < f.result.ci95[1]);
            assert_eq!(f.result.n_eval_positive + f.result.n_eval_negative, rows.len());
        }
        // `--attack-side audited` cross-fits even with a train split, on its own folds.
        let two_splits = cohort(300, 16, 1.5, 3);
        let audited =
            utility(&two_splits, &UtilityConfig { side: SideSource::Audited, ..config.clone() }).unwrap();
        assert!(audited.side.is_cross_fit() && audited.side.reason.is_none());
        assert_eq!(audited.train_split, "test");
        let split = utility(&two_splits, &config).unwrap();
        assert_eq!(serde_json::to_value(&split.side).unwrap(), serde_json::json!({"source": "split train"}));
    }

    #[test]
    fn cross_fitted_utility_is_bitwise_the_same_on_one_two_and_three_threads() {
        let c = test_only(cohort(150, 12, 1.5, 8));
        let run = |threads: usize| {
            let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
            pool.install(|| serde_json::to_string(&utility(&c, &UtilityConfig::default()).unwrap()).unwrap())
        };
        let one = run(1);
        assert_eq!(one, run(2));
        assert_eq!(one, run(3));
    }
}
