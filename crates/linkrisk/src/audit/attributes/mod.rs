//! Attribute-inference audit: how well linear probes recover sex, age group and race from
//! an embedding, and whether they do better on records that the patient re-identification
//! audit re-identified (paper 2: AUROC for sex from fundus photos 82.1% on re-identified vs
//! 76.8% on not re-identified images). Probes are trained on one split and evaluated on
//! another; each AUROC has a DeLong interval, and the re-identified / not re-identified
//! strata are compared with a DeLong test for independent samples. Definitions (age
//! threshold, one-vs-rest for race, exclusions): docs/METHODS.md, "Probes and utility".

use std::collections::BTreeMap;
use std::str::FromStr;

use serde::Serialize;

use super::cross_fit::{validate_folds, SideProtocol, SideSource, DEFAULT_SIDE_FOLDS};
use super::probing::{
    check_splits, class_counts, cross_fit_and_evaluate, probe_training, split_data, train_and_evaluate,
    unprobeable, unprobeable_cross_fit, BinaryTask, NamedValues, ProbeSummary, ProbeTraining, SplitData,
    TaskResult, LEVEL,
};
use crate::cohort::Cohort;
use crate::error::{Error, Result};
use crate::metrics::auroc::{
    auroc_ci, delong, delong_test_independent, macro_auroc, macro_test_independent, AurocDifference,
    AurocInterval,
};
use crate::probe::ProbeConfig;

/// An attribute the audit can probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Attribute {
    /// `sex` column (categorical; two groups give one binary probe).
    Sex,
    /// `age` column, dichotomised at [`AgeThreshold`].
    Age,
    /// `race` column (categorical; more than two groups give a one-vs-rest macro AUROC).
    Race,
}

impl Attribute {
    /// The metadata column / report key.
    pub fn name(self) -> &'static str {
        match self {
            Attribute::Sex => "sex",
            Attribute::Age => "age",
            Attribute::Race => "race",
        }
    }
}

impl FromStr for Attribute {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.trim() {
            "sex" => Ok(Attribute::Sex),
            "age" => Ok(Attribute::Age),
            "race" => Ok(Attribute::Race),
            other => Err(Error::config(format!(
                "--targets: unknown attribute `{other}`; use sex, age and/or race"
            ))),
        }
    }
}

/// Where age is cut into a binary target (positive = age >= threshold).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AgeThreshold {
    /// A fixed age in years (default 65: the conventional "older adult" boundary, the same
    /// on every cohort and model, so AUROCs are comparable).
    Years(f64),
    /// The median age of the train split (balanced classes; cohort-dependent).
    TrainMedian,
}

impl FromStr for AgeThreshold {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        if s.trim() == "median" {
            return Ok(AgeThreshold::TrainMedian);
        }
        match s.trim().parse::<f64>() {
            Ok(v) if v.is_finite() && v > 0.0 => Ok(AgeThreshold::Years(v)),
            _ => {
                Err(Error::config(format!("--age-threshold {s}: use a positive number of years or `median`")))
            }
        }
    }
}

/// Settings of the attribute audit.
#[derive(Debug, Clone, PartialEq)]
pub struct AttributesConfig {
    /// View whose embeddings are probed (`--view`).
    pub view: String,
    /// Split the probes are trained on (`--train-split`).
    pub train_split: String,
    /// Split they are evaluated on (`--eval-split`).
    pub eval_split: String,
    /// Attributes to probe (`--targets`).
    pub targets: Vec<Attribute>,
    /// Age dichotomisation (`--age-threshold`).
    pub age_threshold: AgeThreshold,
    /// A sex or race group is probed only with at least this many records in the train
    /// split and in the eval split (`--min-group`); smaller groups are excluded and counted.
    pub min_group_records: usize,
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

impl Default for AttributesConfig {
    fn default() -> Self {
        AttributesConfig {
            view: "image".into(),
            train_split: "train".into(),
            eval_split: "test".into(),
            targets: vec![Attribute::Sex, Attribute::Age, Attribute::Race],
            age_threshold: AgeThreshold::Years(65.0),
            min_group_records: 20,
            probe: ProbeConfig::default(),
            interval: AurocInterval::default(),
            side: SideSource::Auto,
            side_folds: DEFAULT_SIDE_FOLDS,
        }
    }
}

impl AttributesConfig {
    /// Reject bad settings before any work.
    pub fn validate(&self) -> Result<()> {
        if self.side == SideSource::Split {
            check_splits(&self.train_split, &self.eval_split)?;
        }
        validate_folds(self.side_folds)?;
        if self.targets.is_empty() {
            return Err(Error::config("--targets is empty; name at least one of sex, age, race"));
        }
        if self.min_group_records < 2 {
            return Err(Error::config(format!(
                "--min-group {}: a group needs at least 2 records per split for a DeLong interval",
                self.min_group_records
            )));
        }
        if let AgeThreshold::Years(y) = self.age_threshold {
            if !(y.is_finite() && y > 0.0) {
                return Err(Error::config(format!(
                    "--age-threshold {y}: must be a positive number of years"
                )));
            }
        }
        self.probe.validate()
    }
}

/// AUROC on one stratum of the eval split.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StratumResult {
    /// AUROC (macro over groups for one-vs-rest attributes).
    pub auroc: f64,
    /// 95% interval.
    pub ci95: [f64; 2],
    /// How the interval was formed.
    pub ci_method: &'static str,
    /// Variance of `auroc`.
    pub variance: f64,
    /// Eval records in the stratum with a usable value of the attribute.
    pub n_records: usize,
}

/// The attribute AUROC on re-identified vs not re-identified eval records.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Stratified {
    /// Records the re-ID audit re-identified.
    pub reidentified: Option<StratumResult>,
    /// Records it did not.
    pub not_reidentified: Option<StratumResult>,
    /// `reidentified - not_reidentified` with its test (independent samples).
    pub difference: Option<AurocDifference>,
    /// Why a part is missing (a stratum without both classes), if one is.
    pub note: Option<String>,
}

/// A group of a categorical attribute left out for having too few records.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ExcludedGroup {
    /// The group's value.
    pub group: String,
    /// Its records in the train split.
    pub n_train: usize,
    /// Its records in the eval split.
    pub n_eval: usize,
}

/// The result for one attribute.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AttributeResult {
    /// `binary` (one probe) or `one_vs_rest` (one probe per group, macro AUROC).
    pub kind: &'static str,
    /// What positive means, e.g. `sex = F (vs M)`, `age >= 65 years`.
    pub definition: String,
    /// AUROC on the eval split (macro over groups for one-vs-rest).
    pub auroc: f64,
    /// 95% interval of `auroc`.
    pub ci95: [f64; 2],
    /// How the interval was formed.
    pub ci_method: &'static str,
    /// Train records without a value (excluded).
    pub n_train_missing: usize,
    /// Eval records without a value (excluded).
    pub n_eval_missing: usize,
    /// Train records of excluded small groups.
    pub n_train_small_group: usize,
    /// Eval records of excluded small groups.
    pub n_eval_small_group: usize,
    /// Groups excluded for size.
    pub excluded_groups: Vec<ExcludedGroup>,
    /// The age threshold used, in years (age only).
    pub threshold_years: Option<f64>,
    /// The probe of a binary attribute: counts, regularisation, DeLong variance.
    pub probe: Option<TaskResult>,
    /// One-vs-rest probes per group.
    pub groups: Option<NamedValues<TaskResult>>,
    /// Re-identified vs not re-identified, when per-record flags were given.
    pub stratified: Option<Stratified>,
}

/// An attribute that was not probed, and why.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SkippedAttribute {
    /// The attribute.
    pub attribute: &'static str,
    /// Why.
    pub reason: String,
}

/// How the eval records split by the re-identification flags.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct FlagCounts {
    /// Eval records flagged re-identified.
    pub n_reidentified: usize,
    /// Eval records flagged not re-identified.
    pub n_not_reidentified: usize,
    /// Eval records without a flag (not queried by the re-ID audit); not stratified.
    pub n_without_flag: usize,
}

/// The attribute report; its JSON is the `linkrisk attributes` output.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AttributesReport {
    /// Always `attributes`.
    pub audit: &'static str,
    /// The probed view.
    pub view: String,
    /// Results per probed attribute, in the order requested.
    pub attributes: NamedValues<AttributeResult>,
    /// AUROC per probed attribute (the `auroc` of `attributes`).
    pub per_attribute: NamedValues<f64>,
    /// Attributes that were not probed, with the reason.
    pub skipped: Vec<SkippedAttribute>,
    /// Stratification flags, when given.
    pub reidentification: Option<FlagCounts>,
    /// Where the stratification flags came from (a file, or a re-identification audit run
    /// by [`attributes_by_reid`]); null without flags.
    pub reidentification_source: Option<crate::audit::reid::FlagSource>,
    /// Split the probes were trained on.
    pub train_split: String,
    /// Split they were evaluated on.
    pub eval_split: String,
    /// Records in the train split.
    pub n_train_records: usize,
    /// Records in the eval split.
    pub n_eval_records: usize,
    /// Probe training summary (None when nothing was probed).
    pub probe: Option<ProbeSummary>,
    /// Where the probes were trained: `{"source": "split NAME"}`, or `{"source":
    /// "cross_fit", "folds": K}` (every eval record scored by probes trained on the other
    /// folds' patients; `train_split` is then the eval split and group sizes are counted
    /// in it).
    pub side: SideProtocol,
}

/// A planned attribute: its tasks (one for binary, one per group for one-vs-rest).
struct Plan {
    attribute: Attribute,
    kind: &'static str,
    definition: String,
    group_names: Vec<String>,
    tasks: Vec<BinaryTask>,
    missing: (usize, usize),
    small: (usize, usize),
    excluded_groups: Vec<ExcludedGroup>,
    threshold_years: Option<f64>,
}

fn values_of(column: &[Option<String>], rows: &[usize]) -> Vec<Option<String>> {
    rows.iter().map(|&i| column[i].clone()).collect()
}

/// Plan a categorical attribute: keep groups with enough records in both splits; two
/// groups give one binary task, more give one-vs-rest tasks.
fn plan_categorical(
    attribute: Attribute,
    train: &[Option<String>],
    eval: &[Option<String>],
    min: usize,
) -> std::result::Result<Plan, String> {
    let mut counts: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    for v in train.iter().flatten() {
        counts.entry(v).or_default().0 += 1;
    }
    for v in eval.iter().flatten() {
        counts.entry(v).or_default().1 += 1;
    }
    let (kept, small): (Vec<_>, Vec<_>) = counts.iter().partition(|(_, (t, e))| *t >= min && *e >= min);
    let kept: Vec<String> = kept.iter().map(|(g, _)| g.to_string()).collect(); // alphabetical
    let excluded_groups: Vec<ExcludedGroup> = small
        .iter()
        .map(|(g, &(t, e))| ExcludedGroup { group: g.to_string(), n_train: t, n_eval: e })
        .collect();
    if kept.len() < 2 {
        let all: Vec<String> =
            counts.iter().map(|(g, (t, e))| format!("{g}: {t} train / {e} eval")).collect();
        return Err(format!(
            "fewer than two groups with at least {min} records in both splits ({}); lower --min-group to include smaller groups",
            if all.is_empty() { "no values".to_string() } else { all.join(", ") }
        ));
    }
    let missing = (train.iter().filter(|v| v.is_none()).count(), eval.iter().filter(|v| v.is_none()).count());
    let is_small = |v: &Option<String>| v.as_ref().is_some_and(|g| !kept.contains(g));
    let small_counts =
        (train.iter().filter(|v| is_small(v)).count(), eval.iter().filter(|v| is_small(v)).count());
    let label = |v: &Option<String>, g: &str| match v {
        Some(x) if kept.contains(x) => Some(x == g),
        _ => None,
    };
    let task_for = |g: &str| BinaryTask {
        train: train.iter().map(|v| label(v, g)).collect(),
        eval: eval.iter().map(|v| label(v, g)).collect(),
    };
    let (kind, definition, group_names, tasks) = if kept.len() == 2 {
        (
            "binary",
            format!("{} = {} (vs {})", attribute.name(), kept[0], kept[1]),
            vec![kept[0].clone()],
            vec![task_for(&kept[0])],
        )
    } else {
        (
            "one_vs_rest",
            format!("{} one-vs-rest over {}", attribute.name(), kept.join(", ")),
            kept.clone(),
            kept.iter().map(|g| task_for(g)).collect(),
        )
    };
    Ok(Plan {
        attribute,
        kind,
        definition,
        group_names,
        tasks,
        missing,
        small: small_counts,
        excluded_groups,
        threshold_years: None,
    })
}

fn plan_age(
    train: &[Option<f64>],
    eval: &[Option<f64>],
    threshold: AgeThreshold,
) -> std::result::Result<Plan, String> {
    let years = match threshold {
        AgeThreshold::Years(y) => y,
        AgeThreshold::TrainMedian => {
            let mut known: Vec<f64> = train.iter().flatten().copied().collect();
            if known.is_empty() {
                return Err("no ages in the train split".into());
            }
            known.sort_by(f64::total_cmp);
            let mid = known.len() / 2;
            if known.len() % 2 == 1 {
                known[mid]
            } else {
                0.5 * (known[mid - 1] + known[mid])
            }
        }
    };
    let cut = |v: &Option<f64>| v.map(|a| a >= years);
    Ok(Plan {
        attribute: Attribute::Age,
        kind: "binary",
        definition: format!("age >= {years} years"),
        group_names: vec![format!(">= {years}")],
        tasks: vec![BinaryTask {
            train: train.iter().map(cut).collect(),
            eval: eval.iter().map(cut).collect(),
        }],
        missing: (train.iter().filter(|v| v.is_none()).count(), eval.iter().filter(|v| v.is_none()).count()),
        small: (0, 0),
        excluded_groups: Vec::new(),
        threshold_years: Some(years),
    })
}

/// Run the attribute audit. `reidentified[i]` is the re-identification flag of cohort
/// record i (None = not assessed); without flags the stratified part is left out.
pub fn attributes(
    cohort: &Cohort,
    config: &AttributesConfig,
    reidentified: Option<&[Option<bool>]>,
) -> Result<AttributesReport> {
    config.validate()?;
    if let Some(flags) = reidentified {
        if flags.len() != cohort.len() {
            return Err(Error::config(format!(
                "{} re-identification flags for {} records; give one (or none) per record",
                flags.len(),
                cohort.len()
            )));
        }
    }
    let metadata = &cohort.metadata;
    let view = cohort.view(&config.view)?;
    let eval = split_data(cohort, view, &config.eval_split, "--eval-split")?;
    let (training, side) = probe_training(
        cohort,
        view,
        &config.train_split,
        &eval,
        &config.eval_split,
        &config.side,
        config.side_folds,
        config.probe.seed,
    )?;
    // Cross-fitted: the evaluated records are also the training records (fold by fold).
    let (train, folds, train_split) = match &training {
        ProbeTraining::Split(train) => (train, None, config.train_split.as_str()),
        ProbeTraining::CrossFit(folds) => (&eval, Some(folds), config.eval_split.as_str()),
    };

    let mut plans: Vec<Plan> = Vec::new();
    let mut skipped = Vec::new();
    let mut seen = Vec::new();
    for &attribute in &config.targets {
        if seen.contains(&attribute) {
            continue;
        }
        seen.push(attribute);
        let planned = match attribute {
            Attribute::Sex | Attribute::Race => {
                let column = if attribute == Attribute::Sex { &metadata.sex } else { &metadata.race };
                match column {
                    None => Err(format!("metadata.csv has no `{}` column", attribute.name())),
                    Some(c) => plan_categorical(
                        attribute,
                        &values_of(c, &train.rows),
                        &values_of(c, &eval.rows),
                        config.min_group_records,
                    ),
                }
            }
            Attribute::Age => match &metadata.age {
                None => Err("metadata.csv has no `age` column".to_string()),
                Some(c) => plan_age(
                    &train.rows.iter().map(|&i| c[i]).collect::<Vec<_>>(),
                    &eval.rows.iter().map(|&i| c[i]).collect::<Vec<_>>(),
                    config.age_threshold,
                ),
            },
        };
        // Every task of the attribute needs both classes in both splits (cross-fitted: in the
        // split and in every fold's training part).
        let planned = planned.and_then(|plan| {
            match plan.tasks.iter().zip(&plan.group_names).find_map(|(t, g)| {
                match folds {
                    Some(folds) => unprobeable_cross_fit(&t.eval, folds, &config.eval_split),
                    None => unprobeable(t, &config.train_split, &config.eval_split),
                }
                .map(|r| (g.clone(), r))
            }) {
                Some((group, reason)) if plan.kind == "one_vs_rest" => {
                    Err(format!("group {group}: {reason}"))
                }
                Some((_, reason)) => Err(reason),
                None => Ok(plan),
            }
        });
        match planned {
            Ok(plan) => plans.push(plan),
            Err(reason) => skipped.push(SkippedAttribute { attribute: attribute.name(), reason }),
        }
    }

    let flag_of = |rows: &[usize]| -> Option<Vec<Option<bool>>> {
        reidentified.map(|flags| rows.iter().map(|&i| flags[i]).collect())
    };
    let eval_flags = flag_of(&eval.rows);
    let flag_counts = eval_flags.as_ref().map(|f| FlagCounts {
        n_reidentified: f.iter().filter(|v| **v == Some(true)).count(),
        n_not_reidentified: f.iter().filter(|v| **v == Some(false)).count(),
        n_without_flag: f.iter().filter(|v| v.is_none()).count(),
    });

    let mut results = NamedValues::default();
    let mut probe_summary = None;
    if !plans.is_empty() {
        let all_tasks: Vec<BinaryTask> = plans.iter().flat_map(|p| p.tasks.iter().cloned()).collect();
        let evaluated = match folds {
            Some(folds) => cross_fit_and_evaluate(&eval, &all_tasks, folds, &config.probe, config.interval)?,
            None => train_and_evaluate(train, &eval, &all_tasks, &config.probe, config.interval)?,
        };
        probe_summary = Some(evaluated.summary(&config.probe));
        let mut next = 0;
        for plan in &plans {
            let range = next..next + plan.tasks.len();
            next = range.end;
            let scores = &evaluated.scores[range.clone()];
            let task_results = &evaluated.results[range];
            let result =
                summarise(plan, scores, task_results, &eval, eval_flags.as_deref(), config.interval)?;
            results.0.push((plan.attribute.name().to_string(), result));
        }
    }
    let per_attribute = NamedValues(results.0.iter().map(|(k, r)| (k.clone(), r.auroc)).collect());
    Ok(AttributesReport {
        audit: "attributes",
        view: config.view.clone(),
        attributes: results,
        per_attribute,
        skipped,
        reidentification: flag_counts,
        reidentification_source: None,
        train_split: train_split.to_string(),
        eval_split: config.eval_split.clone(),
        n_train_records: train.rows.len(),
        n_eval_records: eval.rows.len(),
        probe: probe_summary,
        side,
    })
}

/// Paper 2's analysis in one call: run the re-identification audit (`reid`, on the eval
/// split of `config`, whatever split `reid` names) to flag each eval record re-identified
/// or not, then the attribute audit stratified by those flags. The report records the
/// flags' source (`reidentification_source`).
pub fn attributes_by_reid(
    cohort: &Cohort,
    config: &AttributesConfig,
    reid: &crate::audit::reid::ReidConfig,
    progress: &dyn crate::engine::Progress,
) -> Result<AttributesReport> {
    config.validate()?;
    let reid = crate::audit::reid::ReidConfig { split: config.eval_split.clone(), ..reid.clone() };
    let (flags, source) = crate::audit::reid::reidentified_flags(cohort, &reid, progress)?;
    let mut report = attributes(cohort, config, Some(&flags))?;
    report.reidentification_source = Some(source);
    Ok(report)
}

/// AUROC (binary) or macro AUROC (one-vs-rest) of a plan's tasks on the eval records
/// selected by `keep`, with its interval and variance; None when a task lacks a class there.
fn stratum_auroc(
    plan: &Plan,
    scores: &[Vec<f64>],
    eval: &SplitData,
    keep: &dyn Fn(usize) -> bool,
    interval: AurocInterval,
) -> Result<Option<(StratumResult, f64)>> {
    let n = eval.rows.len();
    let masked: Vec<Vec<Option<bool>>> =
        plan.tasks.iter().map(|t| (0..n).map(|i| if keep(i) { t.eval[i] } else { None }).collect()).collect();
    if masked.iter().any(|m| {
        let (p, q, _) = class_counts(m);
        p == 0 || q == 0
    }) {
        return Ok(None);
    }
    let n_records = (0..n).filter(|&i| masked.iter().any(|m| m[i].is_some())).count();
    if plan.kind == "binary" {
        let rows: Vec<usize> = (0..n).filter(|&i| masked[0][i].is_some()).collect();
        let s: Vec<f64> = rows.iter().map(|&i| scores[0][i]).collect();
        let l: Vec<bool> = rows.iter().map(|&i| masked[0][i] == Some(true)).collect();
        let d = delong(&s, &l)?;
        let e = auroc_ci(&d, LEVEL, interval);
        Ok(Some((
            StratumResult {
                auroc: d.auroc,
                ci95: e.ci(),
                ci_method: e.method,
                variance: d.variance,
                n_records,
            },
            d.variance,
        )))
    } else {
        let pairs: Vec<(&[f64], &[Option<bool>])> =
            scores.iter().zip(&masked).map(|(s, m)| (s.as_slice(), m.as_slice())).collect();
        let m = macro_auroc(&pairs, Some(&eval.patients))?;
        let e = m.ci(LEVEL, interval);
        Ok(Some((
            StratumResult {
                auroc: m.auroc,
                ci95: e.ci(),
                ci_method: e.method,
                variance: m.variance,
                n_records,
            },
            m.variance,
        )))
    }
}

fn summarise(
    plan: &Plan,
    scores: &[Vec<f64>],
    task_results: &[TaskResult],
    eval: &SplitData,
    flags: Option<&[Option<bool>]>,
    interval: AurocInterval,
) -> Result<AttributeResult> {
    let all = stratum_auroc(plan, scores, eval, &|_| true, interval)?
        .expect("probeable tasks have both classes in the eval split");
    let (overall, _) = all;
    let stratified = match flags {
        None => None,
        Some(flags) => {
            let re = stratum_auroc(plan, scores, eval, &|i| flags[i] == Some(true), interval)?;
            let not = stratum_auroc(plan, scores, eval, &|i| flags[i] == Some(false), interval)?;
            let difference = match (&re, &not) {
                (Some((a, _)), Some((b, _))) => Some(if plan.kind == "binary" {
                    let da = crate::metrics::DelongAuroc {
                        auroc: a.auroc,
                        variance: a.variance,
                        n_positive: 0,
                        n_negative: 0,
                    };
                    let db = crate::metrics::DelongAuroc {
                        auroc: b.auroc,
                        variance: b.variance,
                        n_positive: 0,
                        n_negative: 0,
                    };
                    delong_test_independent(&da, &db, LEVEL)
                } else {
                    let ma = crate::metrics::MacroAuroc {
                        auroc: a.auroc,
                        variance: a.variance,
                        n_tasks: 0,
                        n_clusters: 0,
                    };
                    let mb = crate::metrics::MacroAuroc {
                        auroc: b.auroc,
                        variance: b.variance,
                        n_tasks: 0,
                        n_clusters: 0,
                    };
                    macro_test_independent(&ma, &mb, LEVEL)
                }),
                _ => None,
            };
            let count = |flag: bool| (0..eval.rows.len()).filter(|&i| flags[i] == Some(flag)).count();
            let note = match (&re, &not) {
                (None, _) => Some(format!(
                    "the {} re-identified eval records do not contain both classes of this attribute",
                    count(true)
                )),
                (_, None) => Some(format!(
                    "the {} not re-identified eval records do not contain both classes of this attribute",
                    count(false)
                )),
                _ => None,
            };
            Some(Stratified {
                reidentified: re.map(|(r, _)| r),
                not_reidentified: not.map(|(r, _)| r),
                difference,
                note,
            })
        }
    };
    let (probe, groups) = if plan.kind == "binary" {
        (Some(task_results[0].clone()), None)
    } else {
        (
            None,
            Some(NamedValues(plan.group_names.iter().cloned().zip(task_results.iter().cloned()).collect())),
        )
    };
    Ok(AttributeResult {
        kind: plan.kind,
        definition: plan.definition.clone(),
        auroc: overall.auroc,
        ci95: overall.ci95,
        ci_method: overall.ci_method,
        n_train_missing: plan.missing.0,
        n_eval_missing: plan.missing.1,
        n_train_small_group: plan.small.0,
        n_eval_small_group: plan.small.1,
        excluded_groups: plan.excluded_groups.clone(),
        threshold_years: plan.threshold_years,
        probe,
        groups,
        stratified,
    })
}

#[cfg(test)]
mod tests;
