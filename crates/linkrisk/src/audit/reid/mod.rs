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

mod eval;
pub mod partial;
mod training;

#[cfg(test)]
mod tests;

use std::ops::Range;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize};

pub use eval::{QueryOutcome, ReidFigures, ReidRecord, RocPoints, VerificationPairs, CMC_RANKS};
pub use training::{Candidate, LinearMetricReport};

use crate::attack::{self, AttackComparison, AttackConfig, AttackTask, SideInfo};
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
    /// Both when the train split has patients to learn from (at least two studies, none
    /// of them audited), else nearest neighbour alone with the reason recorded in
    /// `linear_metric_skipped` (default).
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
        if self.trains() && self.split == self.train_split {
            return Err(Error::config(format!(
                "--train-split {0} is also the audited --split {0}; the trained attacker must learn on other patients (or use --attacker none)",
                self.split
            )));
        }
        if self.negatives_per_query == 0 {
            return Err(Error::config("--negatives-per-query must be at least 1"));
        }
        if self.bootstrap_replicates == 1 {
            return Err(Error::config("--bootstrap must be 0 (off) or at least 2"));
        }
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
    /// The attack comparison on the nearest-neighbour task (`strongest_attack`, `attacks`,
    /// ...; issue 8), with `--attack`.
    #[serde(flatten)]
    pub attack_comparison: Option<AttackComparison>,
}

impl ReidReport {
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
        report.attack_comparison =
            Some(attack_on_plan(pass.meta, pass.view, rows, &pass.plan, config, &attack_config, progress)?);
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
/// and, when it runs, the trained attacker's projection of them. Training happens here,
/// before any ranking, in a one-thread pool so that every process (every shard, whatever
/// its core count) trains the same attacker bit for bit.
#[derive(Debug)]
pub struct ReidPass<'a> {
    config: &'a ReidConfig,
    meta: &'a Metadata,
    view: &'a View,
    plan: eval::QueryPlan,
    /// The split's rows in plan order.
    data: Vec<f32>,
    /// The trained attacker's projection of `data`, its rank and its training report.
    projected: Option<(Vec<f32>, usize, LinearMetricReport)>,
    linear_metric_skipped: Option<String>,
    options: eval::PassOptions,
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
        // Train first: a training error should come before the long ranking pass.
        // Training and projection give the same bits on any number of threads
        // (`attack::linear_metric`), so every shard holds the same attacker.
        let train = || {
            training::train(
                meta,
                view,
                &config.train_split,
                &records,
                &config.linear_metric,
                config.seed,
                config.sizes,
                progress,
            )
        };
        let mut linear_metric_skipped = None;
        let trained = match config.attackers {
            Attackers::NearestNeighbour => None,
            Attackers::LinearMetric | Attackers::Both => Some(train()?),
            Attackers::Auto if config.split == config.train_split => {
                linear_metric_skipped = Some(format!(
                    "--train-split {0} is the audited split; the trained attacker must learn on other patients",
                    config.split
                ));
                None
            }
            Attackers::Auto => match train() {
                Ok(t) => Some(t),
                Err(Error::Config(reason)) => {
                    linear_metric_skipped = Some(reason);
                    None
                }
                Err(e) => return Err(e),
            },
        };
        let data = gather(view, &records);
        let rows = Rows::new(&data, records.len(), view.dim())?;
        let projected = match trained {
            Some((metric, report)) => {
                let projected = metric.project(rows)?;
                Some((projected, metric.rank(), report))
            }
            None => None,
        };
        Ok(ReidPass { config, meta, view, plan, data, projected, linear_metric_skipped, options })
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
        if let Some((projected, rank, _)) = &self.projected {
            let rows = Rows::new(projected, n, *rank)?;
            let (ranked, duplicates) =
                eval::rank_plan(rows, &self.plan, &self.options, range.clone(), "linear metric", progress)?;
            if self.config.attackers == Attackers::LinearMetric {
                exclusions.gallery_exact_duplicates = duplicates;
            }
            attackers.push(LINEAR_METRIC.to_string());
            records.push(eval::records(&self.plan, ranked, range.start));
            linear_metric_rows_blake3 = Some(rows_blake3(projected));
        }
        let context = ReidContext {
            exclusions,
            n_gallery: n.saturating_sub(1),
            attackers,
            linear_metric: self.projected.as_ref().map(|(_, _, report)| report.clone()),
            linear_metric_skipped: self.linear_metric_skipped.clone(),
            linear_metric_rows_blake3,
        };
        Ok(ReidPart { context, records })
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
        attackers,
        attack_comparison: None,
    })
}

/// The attack comparison on the re-ID task: queries against the split, the query's own
/// record (and study) excluded from rankings and from the hubness neighbourhoods. Side
/// pairs: the re-ID task of the `train_split` records whose patients are not audited.
fn attack_on_plan(
    meta: &Metadata,
    view: &crate::cohort::View,
    rows: Rows<'_>,
    plan: &eval::QueryPlan,
    config: &ReidConfig,
    attack_config: &AttackConfig,
    progress: &dyn Progress,
) -> Result<AttackComparison> {
    let query_data = attack::gather_rows(rows, &plan.queries);
    let queries = Rows::new(&query_data, plan.queries.len(), rows.dim())?;
    let task = AttackTask {
        queries,
        gallery: rows,
        targets: &plan.targets,
        paired: false,
        neighbourhood_exclusions: true,
    };
    let side_plan = if config.train_split != config.split {
        let audited: std::collections::HashSet<u32> = plan.records.iter().map(|&r| meta.patient[r]).collect();
        match meta.rows_in_split(&config.train_split) {
            Ok(all) => {
                let side: Vec<usize> =
                    all.into_iter().filter(|&r| !audited.contains(&meta.patient[r])).collect();
                let p = eval::plan(meta, &side, config.include_same_study)?;
                (p.queries.len() >= 2).then_some(p)
            }
            Err(_) => None,
        }
    } else {
        None
    };
    let side_data = side_plan.as_ref().map(|p| {
        let gallery = gather(view, &p.records);
        let q: Vec<f32> = p
            .queries
            .iter()
            .flat_map(|&i| gallery[i * view.dim()..(i + 1) * view.dim()].iter().copied())
            .collect();
        (gallery, q)
    });
    let source = format!("split {}", config.train_split);
    let side = match (&side_plan, &side_data) {
        (Some(p), Some((gallery, q))) => Some(SideInfo {
            task: AttackTask {
                queries: Rows::new(q, p.queries.len(), view.dim())?,
                gallery: Rows::new(gallery, p.records.len(), view.dim())?,
                targets: &p.targets,
                paired: false,
                neighbourhood_exclusions: true,
            },
            source: &source,
        }),
        _ => None,
    };
    attack::compare(&task, side.as_ref(), attack_config, progress)
}

/// Write the per-record re-identification outcomes of `report` (cohort `metadata`) to
/// `path` as CSV, one row per query record, in the format `linkrisk attributes
/// --reidentified` reads ([`crate::cohort::flags::read_flags`]): columns `id`,
/// `reidentified` (the headline attacker's flag, `true`/`false`), `rank_1_probability`
/// (its P(nearest neighbour is the same patient)) and, per attacker run,
/// `reidentified_<attacker>` (`-` as `_`). Records that were not queries are not listed.
/// Per-record results are sensitive: callers write them only on an explicit request
/// (`--per-record`). Returns the number of rows written.
pub fn write_per_record(
    report: &ReidReport,
    metadata: &crate::cohort::Metadata,
    path: &std::path::Path,
) -> Result<usize> {
    let mut header = vec!["id".to_string(), "reidentified".to_string(), "rank_1_probability".to_string()];
    header.extend(report.attackers.iter().map(|a| format!("reidentified_{}", a.attacker.replace('-', "_"))));
    let mut writer = csv::Writer::from_writer(Vec::new());
    let csv_error = |e: csv::Error| Error::write(path, std::io::Error::other(e.to_string()));
    writer.write_record(&header).map_err(csv_error)?;
    let per_attacker: Vec<&[QueryOutcome]> =
        report.attackers.iter().map(|a| a.figures.per_query.as_slice()).collect();
    let mut row = Vec::with_capacity(header.len());
    for (i, q) in report.headline.per_query.iter().enumerate() {
        row.clear();
        row.push(metadata.ids[q.record].clone());
        row.push((q.rank_1 >= 0.5).to_string());
        row.push(format!("{}", q.rank_1));
        for outcomes in &per_attacker {
            let other = &outcomes[i];
            debug_assert_eq!(other.record, q.record, "attackers rank the same queries in the same order");
            row.push((other.rank_1 >= 0.5).to_string());
        }
        writer.write_record(&row).map_err(csv_error)?;
    }
    let bytes = writer.into_inner().map_err(|e| Error::write(path, std::io::Error::other(e.to_string())))?;
    crate::cohort::write::atomic_bytes(path, &bytes)?;
    Ok(report.headline.per_query.len())
}

/// Where the attribute audit's re-identified flags came from (recorded in its JSON).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FlagSource {
    /// Read from a file (`linkrisk attributes --reidentified FILE`).
    File {
        /// The file.
        path: String,
    },
    /// Computed by running the re-identification audit.
    ReidAudit {
        /// The attacker whose flags were used.
        attacker: &'static str,
        /// View audited.
        view: String,
        /// Split audited.
        split: String,
        /// Its Rank-1.
        rank_1: f64,
        /// Its queries (records with a flag).
        n_queries: usize,
        /// What the flag means.
        definition: &'static str,
    },
}

/// The definition of the re-identified flag, as recorded in reports.
pub const FLAG_DEFINITION: &str =
    "re-identified: the nearest other record of the split (own record and own study excluded) belongs to the same patient with probability >= 1/2 under random tie-breaking; records of patients without another study in the split have no flag";

/// Re-identified flags for the attribute audit: run the audit with `config` (the attacker
/// chosen there; with [`Attackers::Both`] the headline's flags) and return one flag per
/// cohort record (`None`: not a query) with a description of where they came from.
pub fn reidentified_flags(
    cohort: &Cohort,
    config: &ReidConfig,
    progress: &dyn Progress,
) -> Result<(Vec<Option<bool>>, FlagSource)> {
    let report = reid(cohort, config, progress)?;
    let flags = report.flags(cohort.len());
    let source = FlagSource::ReidAudit {
        attacker: report.attacker,
        view: report.view.clone(),
        split: report.split.clone(),
        rank_1: report.headline.rank_1,
        n_queries: report.headline.n_queries,
        definition: FLAG_DEFINITION,
    };
    Ok((flags, source))
}
