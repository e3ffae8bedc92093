//! Patient re-identification (paper 2): is the nearest other image of a query image one of
//! the same patient? Foundation-model features alone re-identify patients far above chance,
//! and an attacker who trains a metric on other patients does much better.
//!
//! Within one split (default `test`), every record whose patient has another study there
//! is a query; the gallery is every other record of the split, with the query's own record
//! excluded and, by default, the other records of its own study excluded (they are the
//! same acquisition, not a re-identification). Positives are the gallery records of the
//! same patient. Reported per attacker: Rank-1 (the re-ID rate), the CMC curve, mAP, a
//! same/different-patient verification AUROC with its ROC curve, each with an interval,
//! and the exclusions. Attackers: plain cosine nearest neighbour on the view, and the
//! linear metric of [`crate::attack::linear_metric`] trained on patients of another split;
//! the stronger one (by Rank-1) is the headline. Methods: docs/METHODS.md, "Patient
//! re-identification".

mod attacks;
mod eval;
mod flags;
pub mod partial;
mod training;

#[cfg(test)]
mod tests;

use std::ops::Range;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize};

pub use eval::{QueryOutcome, ReidFigures, ReidRecord, RocPoints, VerificationPairs, CMC_RANKS};
pub use flags::{reidentified_flags, write_per_record, FlagSource, FLAG_DEFINITION};
pub use training::{Candidate, LinearMetricFold, LinearMetricReport};

use crate::attack::linear_metric::LinearMetric;
use crate::attack::{self, AttackComparison, AttackConfig, AttackTask, Side, SideInfo, SkippedAttack};
use crate::audit::cross_fit::{CrossFit, SideSource, DEFAULT_SIDE_FOLDS};
use crate::cohort::{Cohort, Metadata, View};
use crate::engine::{gather, BlockSizes, Progress, Rows};
use crate::error::{Error, Result};

/// Which attackers to run (`--attacker`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Attackers {
    /// Plain cosine nearest neighbour only (`none`: no trained attacker).
    NearestNeighbour,
    /// The trained linear metric only.
    LinearMetric,
    /// Both, side by side; the stronger is the headline.
    Both,
    /// Both when the trained attacker can be trained (on the train split, else cross-fitted
    /// within the audited split), else nearest neighbour alone with the reason recorded in
    /// `linear_metric_skipped` and `skipped_attacks` (default).
    Auto,
}

impl FromStr for Attackers {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.trim() {
            "none" | "nearest-neighbour" => Ok(Attackers::NearestNeighbour),
            "linear-metric" => Ok(Attackers::LinearMetric),
            "both" => Ok(Attackers::Both),
            "auto" => Ok(Attackers::Auto),
            other => Err(Error::config(format!("--attacker {other}: use auto, none, linear-metric or both"))),
        }
    }
}

/// Name of the plain attacker in reports.
pub const NEAREST_NEIGHBOUR: &str = "nearest-neighbour";
/// Name of the trained attacker in reports.
pub const LINEAR_METRIC: &str = "linear-metric";

/// Settings of the linear-metric attacker's training.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LinearMetricConfig {
    /// Shrinkages of the within-patient covariance tried in model selection (relative to
    /// its mean variance).
    pub shrinkages: Vec<f64>,
    /// Numbers of directions tried; empty: 8, 16, 32, ... below the dimension, and the
    /// dimension.
    pub ranks: Vec<usize>,
    /// Share of training patients held out for model selection.
    pub validation_fraction: f64,
    /// At most this many held-out patients (bounds the cost of selection).
    pub max_validation_patients: usize,
    /// Shrinkage when there are too few patients to select (all directions are kept).
    pub default_shrinkage: f64,
}

impl Default for LinearMetricConfig {
    fn default() -> Self {
        LinearMetricConfig {
            shrinkages: vec![0.01, 0.1, 1.0],
            ranks: Vec::new(),
            validation_fraction: 0.2,
            max_validation_patients: 1000,
            default_shrinkage: 0.1,
        }
    }
}

/// Settings of a re-identification audit; [`ReidConfig::validate`] (also run by [`reid`])
/// rejects bad values before any work. Serialized into the fingerprint of sharded runs (the
/// kernel's block sizes are left out: they do not change any result; so is the attack
/// comparison: shards rank with the audit's own attackers only).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReidConfig {
    /// View audited (`--view`).
    pub view: String,
    /// Split whose records are queries and gallery (`--split`).
    pub split: String,
    /// Split the trained attacker learns from (`--train-split`); its patients that also
    /// appear in `split` are left out.
    pub train_split: String,
    /// Where the trained attacker and the attack comparison take their side data from
    /// (`--attack-side`): `auto` (the train split when it serves, else patient-grouped
    /// cross-fitting within the audited split), `audited` (always cross-fit) or `split`
    /// (the train split only).
    #[serde(default)]
    pub attack_side: SideSource,
    /// Cross-fitting folds (`--side-folds`).
    #[serde(default = "default_side_folds")]
    pub side_folds: usize,
    /// Attackers to run (`--attacker`).
    pub attackers: Attackers,
    /// Count other records of the query's own study as positives instead of excluding
    /// them (`--include-same-study`).
    pub include_same_study: bool,
    /// Seed of the negative-pair sample, the bootstrap and the attacker's model selection.
    pub seed: u64,
    /// Patient-bootstrap replicates for the mAP and Rank-1 intervals (0: none).
    pub bootstrap_replicates: usize,
    /// Different-patient pairs sampled per query for the verification AUROC.
    pub negatives_per_query: usize,
    /// Length of the reported CMC curve (at least 20).
    pub max_cmc_rank: usize,
    /// Interval coverage.
    pub level: f64,
    /// Training of the linear-metric attacker.
    pub linear_metric: LinearMetricConfig,
    /// Kernel block sizes.
    #[serde(skip)]
    pub sizes: BlockSizes,
    /// Attack comparison with control baseline on the nearest-neighbour task (`--attack`,
    /// issue 8); `None` runs none. Side pairs (inverted-softmax tuning, QB-Norm's bank) are
    /// the `train_split` patients not in the audited split. Its seed, level and block sizes
    /// are this configuration's; re-ID reports the full gallery only (no pools).
    #[serde(skip)]
    pub attack: Option<AttackConfig>,
}

impl Default for ReidConfig {
    fn default() -> Self {
        ReidConfig {
            view: "image".into(),
            split: "test".into(),
            train_split: "train".into(),
            attack_side: SideSource::Auto,
            side_folds: DEFAULT_SIDE_FOLDS,
            attackers: Attackers::Auto,
            include_same_study: false,
            seed: 0,
            bootstrap_replicates: 1000,
            negatives_per_query: 50,
            max_cmc_rank: 50,
            level: 0.95,
            linear_metric: LinearMetricConfig::default(),
            sizes: BlockSizes::default(),
            attack: None,
        }
    }
}

fn default_side_folds() -> usize {
    DEFAULT_SIDE_FOLDS
}

impl ReidConfig {
    /// The attack configuration with this audit's seed, level and block sizes and no pools.
    pub fn attack_config(&self) -> Option<AttackConfig> {
        self.attack.as_ref().map(|a| AttackConfig {
            pool_sizes: Vec::new(),
            seed: self.seed,
            level: self.level,
            sizes: self.sizes,
            ..a.clone()
        })
    }

    /// Whether the trained attacker must run (an error when it cannot be trained).
    pub fn trains(&self) -> bool {
        matches!(self.attackers, Attackers::LinearMetric | Attackers::Both)
    }

    /// Reject bad values with a message naming the flag.
    pub fn validate(&self) -> Result<()> {
        if self.trains() && self.split == self.train_split && self.attack_side == SideSource::Split {
            return Err(Error::config(format!(
                "--train-split {0} is also the audited --split {0}; the trained attacker must learn on other patients (cross-fit within the split with --attack-side audited, or use --attacker none)",
                self.split
            )));
        }
        crate::audit::cross_fit::validate_folds(self.side_folds)?;
        if self.negatives_per_query == 0 {
            return Err(Error::config("--negatives-per-query must be at least 1"));
        }
        crate::limits::check(
            "--negatives-per-query",
            self.negatives_per_query,
            1,
            crate::limits::MAX_NEGATIVES_PER_QUERY,
        )?;
        if self.bootstrap_replicates == 1 {
            return Err(Error::config("--bootstrap must be 0 (off) or at least 2"));
        }
        crate::limits::check("--bootstrap", self.bootstrap_replicates, 0, crate::limits::MAX_BOOTSTRAP)?;
        if !(self.level > 0.0 && self.level < 1.0) {
            return Err(Error::config(format!("interval level must be in (0, 1), got {}", self.level)));
        }
        if self.max_cmc_rank < 20 {
            return Err(Error::config(format!(
                "the CMC curve needs at least 20 ranks, got {}",
                self.max_cmc_rank
            )));
        }
        let lm = &self.linear_metric;
        if lm.shrinkages.is_empty() || lm.shrinkages.iter().any(|s| !(s.is_finite() && *s > 0.0)) {
            return Err(Error::config("linear-metric shrinkages must be positive numbers (at least one)"));
        }
        if !(lm.default_shrinkage.is_finite() && lm.default_shrinkage > 0.0) {
            return Err(Error::config("linear-metric default shrinkage must be positive"));
        }
        if lm.ranks.contains(&0) {
            return Err(Error::config("linear-metric ranks must be at least 1"));
        }
        if let Some(a) = self.attack_config() {
            a.validate()?;
        }
        if !(lm.validation_fraction > 0.0 && lm.validation_fraction < 1.0) {
            return Err(Error::config("linear-metric validation fraction must be in (0, 1)"));
        }
        self.sizes.validate()
    }
}

/// What the audit left out, counted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReidExclusions {
    /// Records of the audited split (all of them are gallery items).
    pub n_split_records: usize,
    /// Patients of the audited split.
    pub n_split_patients: usize,
    /// Patients with a single study in the split (their records are not queries).
    pub patients_with_one_study: usize,
    /// Records that are not queries: no same-patient record of another study in the split
    /// (no other record at all with `include_same_study`).
    pub records_not_queried: usize,
    /// Each query's own record, excluded from its gallery (one per query).
    pub excluded_own_record: u64,
    /// Other records of the query's study excluded from its gallery, summed over queries.
    pub excluded_same_study: u64,
    /// Other records of the query's study counted as positives (`include_same_study`),
    /// summed over queries.
    pub same_study_positives: u64,
    /// Gallery records that exactly duplicate another (they tie by construction).
    pub gallery_exact_duplicates: usize,
}

/// One attacker's results, side by side with the others.
#[derive(Debug, Clone, Serialize)]
pub struct AttackerResult {
    /// `nearest-neighbour` or `linear-metric`.
    pub attacker: &'static str,
    /// Its figures.
    #[serde(flatten)]
    pub figures: ReidFigures,
}

/// One record's re-identification outcome (for `--per-record` and the attribute audit;
/// never in the JSON report).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RecordOutcome {
    /// Cohort row.
    pub record: usize,
    /// P(its nearest other record is of the same patient), ties in expectation.
    pub rank_1: f64,
    /// Re-identified: `rank_1 >= 1/2` (the nearest neighbour is at least as likely as not
    /// the same patient).
    pub reidentified: bool,
}

/// The re-identification report. Its top level carries the headline (stronger) attacker's
/// figures (`rank_1`, `cmc`, `map`, `verification_auroc`, ...); `attackers` lists every
/// attacker side by side.
#[derive(Debug, Clone, Serialize)]
pub struct ReidReport {
    /// Always `reid`.
    pub audit: &'static str,
    /// linkrisk version that produced the report.
    pub linkrisk_version: &'static str,
    /// View audited.
    pub view: String,
    /// Split audited.
    pub split: String,
    /// The headline attacker, whose figures are at the top level: the strongest by Rank-1
    /// (`nearest-neighbour` or `linear-metric`).
    pub attacker: &'static str,
    /// `excluded` (default) or `positive`: how other records of the query's study count.
    pub same_study: &'static str,
    /// Seed of negative pairs, bootstrap and model selection.
    pub seed: u64,
    /// Coverage of every `ci95_*` interval.
    pub level: f64,
    /// Patient-bootstrap replicates behind `bootstrap_ci95_rank_1` and `ci95_map`.
    pub bootstrap_replicates: usize,
    /// The headline attacker's figures.
    #[serde(flatten)]
    pub headline: ReidFigures,
    /// Every attacker run, side by side.
    pub attackers: Vec<AttackerResult>,
    /// What was left out.
    pub exclusions: ReidExclusions,
    /// How the trained attacker was trained (null when it did not run).
    pub linear_metric: Option<LinearMetricReport>,
    /// Why the trained attacker did not run under `--attacker auto` (null otherwise).
    pub linear_metric_skipped: Option<String>,
    /// Attackers that could not run, with the reason (`{"name": "linear-metric", "reason"}`),
    /// without `--attack`; with it, they are in the comparison's `skipped_attacks` beside
    /// the attacks it could not run (one list either way).
    #[serde(rename = "skipped_attacks", skip_serializing_if = "Option::is_none")]
    pub skipped_attackers: Option<Vec<SkippedAttack>>,
    /// The attack comparison on the nearest-neighbour task (`strongest_attack`, `attacks`,
    /// ...; issue 8), with `--attack`.
    #[serde(flatten)]
    pub attack_comparison: Option<AttackComparison>,
}

/// The `skipped_attacks` entry of a linear-metric attacker that could not run.
fn attacker_skips(linear_metric_skipped: Option<&str>) -> Vec<SkippedAttack> {
    linear_metric_skipped
        .iter()
        .map(|reason| SkippedAttack {
            name: LINEAR_METRIC,
            leaked_pairs: None,
            pool_size: None,
            reason: reason.to_string(),
        })
        .collect()
}

impl ReidReport {
    /// The attackers that could not run (as `skipped_attacks` entries).
    pub fn attacker_skips(&self) -> Vec<SkippedAttack> {
        attacker_skips(self.linear_metric_skipped.as_deref())
    }

    /// Attach the attack comparison; the attackers' skips join its `skipped_attacks`.
    pub fn set_attack_comparison(&mut self, mut comparison: AttackComparison) {
        comparison.skipped_attacks.extend(self.attacker_skips());
        self.attack_comparison = Some(comparison);
        self.skipped_attackers = None;
    }

    /// The headline attacker's per-record outcomes (queries only).
    pub fn records(&self) -> Vec<RecordOutcome> {
        self.headline.records()
    }

    /// Re-identified flags of the headline attacker, one per cohort record of `n_records`:
    /// `None` for records that were not queries.
    pub fn flags(&self, n_records: usize) -> Vec<Option<bool>> {
        let mut flags = vec![None; n_records];
        for r in self.records() {
            flags[r.record] = Some(r.reidentified);
        }
        flags
    }

    /// One report per attacker, in `attackers` order: what `--out RUN` records.
    pub fn run_entries(&self) -> Vec<ReidReport> {
        (0..self.attackers.len()).filter_map(|i| self.for_attacker(i)).collect()
    }

    /// The report as if only attacker `index` of `attackers` had run: one entry per
    /// attacker in a run directory (keys `reid:VIEW@SPLIT+ATTACKER`), so the report shows
    /// them side by side and a rerun replaces each attacker's own entry.
    pub fn for_attacker(&self, index: usize) -> Option<ReidReport> {
        let chosen = self.attackers.get(index)?;
        Some(ReidReport {
            attacker: chosen.attacker,
            headline: chosen.figures.clone(),
            attackers: vec![chosen.clone()],
            linear_metric: if chosen.attacker == LINEAR_METRIC { self.linear_metric.clone() } else { None },
            // The comparison goes with the first entry only, so the run directory holds it once.
            attack_comparison: if index == 0 { self.attack_comparison.clone() } else { None },
            skipped_attackers: if index == 0 && self.attack_comparison.is_some() {
                None
            } else {
                Some(self.attacker_skips())
            },
            ..self.clone()
        })
    }
}

/// Run the re-identification audit on `cohort` without progress reports (the library entry
/// that `linkrisk demo` and other callers use).
pub fn run(cohort: &Cohort, config: &ReidConfig) -> Result<ReidReport> {
    reid(cohort, config, &crate::engine::NoProgress)
}

/// Run the re-identification audit on `cohort`, reporting progress of each ranking pass:
/// prepare the pass (plan, trained attacker: [`ReidPass::new`]), rank every query under
/// every attacker ([`ReidPass::rank`]), then the statistics over the records ([`finish`]).
/// A sharded run ranks slices and finishes after merging them (`crate::audit::reid::partial`).
pub fn reid(cohort: &Cohort, config: &ReidConfig, progress: &dyn Progress) -> Result<ReidReport> {
    let pass = ReidPass::new(cohort, config, progress)?;
    let part = pass.rank(0..pass.n_queries(), progress)?;
    let mut report = finish(config, &part.context, &part.records)?;
    if let Some(attack_config) = config.attack_config() {
        let rows = Rows::new(&pass.data, pass.plan.records.len(), pass.view.dim())?;
        let comparison = attacks::attack_on_plan(
            pass.meta,
            pass.view,
            rows,
            &pass.plan,
            config,
            &attack_config,
            progress,
        )?;
        report.set_attack_comparison(comparison);
    }
    Ok(report)
}

/// A name from a fixed set, held as a static string (an alias, so that serde does not
/// treat the field as borrowed from its input; `known_name` reads it back).
pub type Name = &'static str;

/// Read a name that must be one of `known` (report fields held as `&'static str`).
fn known_name<'de, D: Deserializer<'de>>(
    d: D,
    known: &[&'static str],
) -> std::result::Result<&'static str, D::Error> {
    let name = String::deserialize(d)?;
    known.iter().copied().find(|k| *k == name).ok_or_else(|| {
        serde::de::Error::custom(format!("unknown name `{name}`, expected one of {}", known.join(", ")))
    })
}

/// An attacker's name, read back.
fn attacker_name<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<&'static str, D::Error> {
    known_name(d, &[NEAREST_NEIGHBOUR, LINEAR_METRIC])
}

/// What finishing needs besides the per-query records: the same in every shard (a merge
/// checks that they agree), derived from the metadata, the split's rows, the trained attacker
/// and the configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReidContext {
    /// What the audit left out (with the gallery's exact duplicates).
    pub exclusions: ReidExclusions,
    /// Gallery size per query before the same-study exclusions.
    pub n_gallery: usize,
    /// Attackers run, in report order; record lists come in this order.
    pub attackers: Vec<String>,
    /// How the trained attacker was trained (when it ran).
    pub linear_metric: Option<LinearMetricReport>,
    /// Why it did not run under `--attacker auto`.
    pub linear_metric_skipped: Option<String>,
    /// blake3 of the split's rows projected into the trained metric: shards merge only when
    /// they trained the same attacker bit for bit.
    pub linear_metric_rows_blake3: Option<String>,
}

/// Per-query records of a query range, with the context to finish them.
#[derive(Debug, Clone, PartialEq)]
pub struct ReidPart {
    /// The audit's context (the same for every range).
    pub context: ReidContext,
    /// Per attacker (in `context.attackers` order), one record per query of the range.
    pub records: Vec<Vec<ReidRecord>>,
}

/// A re-identification audit ready to rank: the query plan of the audited split, its rows
/// and, when it runs, the trained attacker. Training happens here, before any ranking, with
/// its factorisations on one thread so that every process (every shard, whatever its core
/// count) trains the same attacker bit for bit.
#[derive(Debug)]
pub struct ReidPass<'a> {
    config: &'a ReidConfig,
    meta: &'a Metadata,
    view: &'a View,
    plan: eval::QueryPlan,
    /// The split's rows in plan order.
    data: Vec<f32>,
    /// The trained attacker, when it runs.
    trained: Option<TrainedAttacker>,
    linear_metric_skipped: Option<String>,
    options: eval::PassOptions,
}

/// The linear-metric attacker of a pass.
#[derive(Debug)]
enum TrainedAttacker {
    /// Trained on another split: the split's rows projected once.
    Split { projected: Vec<f32>, rank: usize, report: LinearMetricReport },
    /// Cross-fitted: fold f's metric attacks the queries of fold f (`query_folds`, over the
    /// plan's queries); the whole split is projected per fold when ranking.
    CrossFit { metrics: Vec<LinearMetric>, query_folds: CrossFit, report: LinearMetricReport },
}

impl TrainedAttacker {
    fn report(&self) -> &LinearMetricReport {
        match self {
            TrainedAttacker::Split { report, .. } | TrainedAttacker::CrossFit { report, .. } => report,
        }
    }
}

impl<'a> ReidPass<'a> {
    /// Validate `config`, plan the queries of the audited split and train the attacker.
    pub fn new(cohort: &'a Cohort, config: &'a ReidConfig, progress: &dyn Progress) -> Result<ReidPass<'a>> {
        config.validate()?;
        let meta = &cohort.metadata;
        let view = cohort.view(&config.view)?;
        let records = meta.rows_in_split(&config.split)?;
        let plan = eval::plan(meta, &records, config.include_same_study)?;
        eval::require_queries(&plan, &config.split, "--split")?;
        let options = pass_options(config);
        let data = gather(view, &records);
        // Train first: a training error should come before the long ranking pass.
        let (trained, linear_metric_skipped) = train_attacker(meta, view, &records, config, progress)?;
        let trained = match trained {
            Some(Trained::Split(metric, report)) => {
                let rows = Rows::new(&data, records.len(), view.dim())?;
                Some(TrainedAttacker::Split { projected: metric.project(rows)?, rank: metric.rank(), report })
            }
            Some(Trained::CrossFit(metrics, folds, report)) => {
                let query_folds = folds.restrict(&plan.queries);
                Some(TrainedAttacker::CrossFit { metrics, query_folds, report })
            }
            None => None,
        };
        Ok(ReidPass { config, meta, view, plan, data, trained, linear_metric_skipped, options })
    }

    /// Queries of the audit (records of the split whose patient has another study there).
    pub fn n_queries(&self) -> usize {
        self.plan.queries.len()
    }

    /// Rank queries `range` (of [`ReidPass::n_queries`]) against the whole split under every
    /// attacker and return their records with the audit's context.
    pub fn rank(&self, range: Range<usize>, progress: &dyn Progress) -> Result<ReidPart> {
        let n = self.plan.records.len();
        let mut exclusions = self.plan.exclusions.clone();
        let mut attackers = Vec::new();
        let mut records = Vec::new();
        if self.config.attackers != Attackers::LinearMetric {
            let rows = Rows::new(&self.data, n, self.view.dim())?;
            let what = "nearest neighbour";
            let (ranked, duplicates) =
                eval::rank_plan(rows, &self.plan, &self.options, range.clone(), what, progress)?;
            exclusions.gallery_exact_duplicates = duplicates;
            attackers.push(NEAREST_NEIGHBOUR.to_string());
            records.push(eval::records(&self.plan, ranked, range.start));
        }
        let mut linear_metric_rows_blake3 = None;
        match &self.trained {
            Some(TrainedAttacker::Split { projected, rank, .. }) => {
                let rows = Rows::new(projected, n, *rank)?;
                let (ranked, duplicates) = eval::rank_plan(
                    rows,
                    &self.plan,
                    &self.options,
                    range.clone(),
                    "linear metric",
                    progress,
                )?;
                if self.config.attackers == Attackers::LinearMetric {
                    exclusions.gallery_exact_duplicates = duplicates;
                }
                attackers.push(LINEAR_METRIC.to_string());
                records.push(eval::records(&self.plan, ranked, range.start));
                linear_metric_rows_blake3 = Some(rows_blake3(projected));
            }
            Some(TrainedAttacker::CrossFit { metrics, query_folds, .. }) => {
                let data = Rows::new(&self.data, n, self.view.dim())?;
                let mut list: Vec<Option<ReidRecord>> = vec![None; range.len()];
                let mut hasher = blake3::Hasher::new();
                let mut duplicates = 0;
                for (f, metric) in metrics.iter().enumerate() {
                    // Every shard projects every fold, so the hash is the same in all of them.
                    let projected = metric.project(data)?;
                    hasher.update(rows_blake3(&projected).as_bytes());
                    let queries: Vec<usize> = range.clone().filter(|&q| query_folds.fold(q) == f).collect();
                    if queries.is_empty() {
                        continue;
                    }
                    let sub = self.plan.subset(&queries)?;
                    let rows = Rows::new(&projected, n, metric.rank())?;
                    let what = format!("linear metric fold {}/{}", f + 1, metrics.len());
                    let (ranked, d) =
                        eval::rank_plan(rows, &sub, &self.options, 0..queries.len(), &what, progress)?;
                    duplicates = duplicates.max(d);
                    for (q, record) in queries.iter().zip(eval::records(&sub, ranked, 0)) {
                        list[q - range.start] = Some(record);
                    }
                }
                if self.config.attackers == Attackers::LinearMetric {
                    exclusions.gallery_exact_duplicates = duplicates;
                }
                let list: Option<Vec<ReidRecord>> = list.into_iter().collect();
                attackers.push(LINEAR_METRIC.to_string());
                records.push(list.ok_or_else(|| Error::config("cross-fitting left a re-ID query unranked"))?);
                linear_metric_rows_blake3 = Some(hasher.finalize().to_hex().to_string());
            }
            None => {}
        }
        let context = ReidContext {
            exclusions,
            n_gallery: n.saturating_sub(1),
            attackers,
            linear_metric: self.trained.as_ref().map(|t| t.report().clone()),
            linear_metric_skipped: self.linear_metric_skipped.clone(),
            linear_metric_rows_blake3,
        };
        Ok(ReidPart { context, records })
    }
}

/// What [`train_attacker`] trained.
enum Trained {
    Split(LinearMetric, LinearMetricReport),
    CrossFit(Vec<LinearMetric>, CrossFit, LinearMetricReport),
}

/// Train the linear-metric attacker as `config` asks: on the train split when it serves
/// (`auto`, `split`), else cross-fitted within the audited split (`auto`, `audited`).
/// When it cannot be trained: an error if it was asked for (`--attacker linear-metric`),
/// else the reason it was skipped.
fn train_attacker(
    meta: &Metadata,
    view: &View,
    records: &[usize],
    config: &ReidConfig,
    progress: &dyn Progress,
) -> Result<(Option<Trained>, Option<String>)> {
    if config.attackers == Attackers::NearestNeighbour {
        return Ok((None, None));
    }
    let required = config.trains();
    let give_up =
        |reason: String| if required { Err(Error::config(reason)) } else { Ok((None, Some(reason))) };
    let mut why_not_split = None;
    if config.attack_side != SideSource::Audited {
        if config.split == config.train_split {
            why_not_split = Some(format!(
                "--train-split {0} is the audited split; the trained attacker must learn on other patients",
                config.split
            ));
        } else {
            let trained = training::train(
                meta,
                view,
                &config.train_split,
                records,
                &config.linear_metric,
                config.seed,
                config.sizes,
                progress,
            );
            match trained {
                Ok((metric, report)) => return Ok((Some(Trained::Split(metric, report)), None)),
                Err(Error::Config(reason)) => why_not_split = Some(reason),
                Err(e) => return Err(e),
            }
        }
        if config.attack_side == SideSource::Split {
            return give_up(why_not_split.unwrap_or_default());
        }
    }
    let patients: Vec<u32> = records.iter().map(|&r| meta.patient[r]).collect();
    let cross_fitted = CrossFit::by_patient(&patients, config.side_folds, config.seed).and_then(|folds| {
        let (metrics, report) = training::train_cross_fitted(
            meta,
            view,
            &config.split,
            records,
            &folds,
            why_not_split.clone(),
            &config.linear_metric,
            config.seed,
            config.sizes,
            progress,
        )?;
        Ok((metrics, folds, report))
    });
    match cross_fitted {
        Ok((metrics, folds, report)) => Ok((Some(Trained::CrossFit(metrics, folds, report)), None)),
        Err(Error::Config(reason)) => give_up(match why_not_split {
            Some(why) => format!("{why}; and cross-fitting within --split {}: {reason}", config.split),
            None => format!("cross-fitting within --split {}: {reason}", config.split),
        }),
        Err(e) => Err(e),
    }
}

/// blake3 (hex) of `values` as little-endian bytes, hashed in slices (no copy of the whole).
fn rows_blake3(values: &[f32]) -> String {
    let mut hasher = blake3::Hasher::new();
    let mut bytes = Vec::with_capacity(4 * 16384);
    for chunk in values.chunks(16384) {
        bytes.clear();
        bytes.extend(chunk.iter().flat_map(|v| v.to_le_bytes()));
        hasher.update(&bytes);
    }
    hasher.finalize().to_hex().to_string()
}

/// The pass options of `config`.
fn pass_options(config: &ReidConfig) -> eval::PassOptions {
    eval::PassOptions {
        negatives_per_query: config.negatives_per_query,
        max_cmc_rank: config.max_cmc_rank,
        bootstrap_replicates: config.bootstrap_replicates,
        level: config.level,
        seed: config.seed,
        sizes: config.sizes,
    }
}

/// Turn per-query records (one list per attacker of `context.attackers`, every query in
/// query order) into the report: every statistic over queries is computed here, for a
/// single run and for merged shards alike. The attack comparison (`--attack`) is not part
/// of it: a single run adds it afterwards.
pub fn finish(config: &ReidConfig, context: &ReidContext, records: &[Vec<ReidRecord>]) -> Result<ReidReport> {
    config.validate()?;
    if context.attackers.is_empty() || records.len() != context.attackers.len() {
        return Err(Error::config(format!(
            "{} attacker(s) in the context but {} record list(s)",
            context.attackers.len(),
            records.len()
        )));
    }
    let options = pass_options(config);
    let mut attackers = Vec::with_capacity(records.len());
    for (name, list) in context.attackers.iter().zip(records) {
        let attacker = [NEAREST_NEIGHBOUR, LINEAR_METRIC]
            .into_iter()
            .find(|k| k == name)
            .ok_or_else(|| Error::config(format!("unknown re-ID attacker `{name}`")))?;
        let purpose = format!("reid-bootstrap-{attacker}");
        let figures = eval::figures(list, context.n_gallery, &options, &purpose)?;
        attackers.push(AttackerResult { attacker, figures });
    }
    // The headline: the strongest Rank-1; on a tie, the first (nearest neighbour).
    let mut headline = 0;
    for (i, a) in attackers.iter().enumerate() {
        if a.figures.rank_1 > attackers[headline].figures.rank_1 {
            headline = i;
        }
    }
    let head = &attackers[headline];
    Ok(ReidReport {
        audit: "reid",
        linkrisk_version: crate::VERSION,
        view: config.view.clone(),
        split: config.split.clone(),
        attacker: head.attacker,
        same_study: if config.include_same_study { "positive" } else { "excluded" },
        seed: config.seed,
        level: config.level,
        bootstrap_replicates: config.bootstrap_replicates,
        headline: head.figures.clone(),
        exclusions: context.exclusions.clone(),
        linear_metric: context.linear_metric.clone(),
        linear_metric_skipped: context.linear_metric_skipped.clone(),
        skipped_attackers: Some(attacker_skips(context.linear_metric_skipped.as_deref())),
        attackers,
        attack_comparison: None,
    })
}
