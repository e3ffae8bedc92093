//! Cross-modal re-linkage (paper 1): can a de-identified record of one view (an image) be
//! linked back to its own record of another view (its report) by cosine similarity alone?
//!
//! Row i of the query view is matched against every gallery row of the same split; its
//! true match is gallery row i. Study-level matching (default) excludes the other records
//! of the query's study from the negatives (two images of one study share one report);
//! patient-level matching counts every gallery record of the patient as a correct link.
//! Reported: full-database ranks (Recall@1/5/10, MRR, median rank, chance, lift, Wilson
//! and patient-bootstrap intervals), random and pathology-matched candidate pools with
//! their exact hypergeometric expectations, and per-subgroup breakdowns. Every skipped
//! pool or excluded query is counted in the report.

use serde::{Deserialize, Serialize};

use crate::attack::{AttackComparison, AttackConfig};
use crate::cohort::Cohort;
use crate::engine::{BlockSizes, Progress};
use crate::error::{Error, Result};

mod finish;
mod inputs;
pub mod partial;
mod records;
mod side;
mod subgroups;
#[cfg(test)]
mod tests;

pub use finish::finish;
pub use inputs::RelinkInputs;
use inputs::*;
use records::*;
pub use records::{
    relink_range, DirectionContext, QueryRecord, RelinkContext, RelinkPart, SubgroupAttribute,
};
use side::{attack_direction, side_plan};
use subgroups::*;

/// What counts as a correct link.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MatchLevel {
    /// The query's own paired record; other records of its study are excluded.
    Study,
    /// Any gallery record of the query's patient.
    Patient,
}

/// Which directions to audit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Direction {
    /// Query view -> gallery view only.
    QueryToGallery,
    /// Both, the reverse reported under `reverse`.
    Both,
}

/// Settings of a re-linkage audit. Build it, then [`RelinkConfig::validate`] (done by
/// [`relink`] too) rejects bad values before any work. Serialized into the fingerprint of
/// sharded runs (the kernel's block sizes are left out: they do not change any result).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RelinkConfig {
    /// View whose records are the queries (e.g. `image`).
    pub query_view: String,
    /// View whose records form the gallery (e.g. `report`).
    pub gallery_view: String,
    /// Restrict queries and gallery to this split; `None` uses every record.
    pub split: Option<String>,
    /// Candidate-pool sizes (the full database is always reported under `full`).
    pub pool_sizes: Vec<usize>,
    /// Random pools drawn per query and pool size.
    pub trials: usize,
    /// Also evaluate pathology-matched pools (needs the 14 finding columns).
    pub hard_negatives: bool,
    /// Study- or patient-level matching.
    pub match_level: MatchLevel,
    /// One direction or both.
    pub direction: Direction,
    /// Seed of every random choice (pools, bootstrap).
    pub seed: u64,
    /// Patient-bootstrap replicates (0: no bootstrap intervals).
    pub bootstrap_replicates: usize,
    /// Interval coverage.
    pub level: f64,
    /// Kernel block sizes.
    #[serde(skip)]
    pub sizes: BlockSizes,
    /// Attack comparison with control baseline (issue 8); `None` runs none. Its pool sizes,
    /// seed, level and block sizes are taken from this configuration. Not part of a shard's
    /// fingerprint: sharded runs rank with plain cosine only (attacks run on one machine).
    #[serde(skip)]
    pub attack: Option<AttackConfig>,
    /// Where the attacker's labelled side pairs come from (inverted-softmax tuning, the
    /// QB-Norm query bank, leaked pairs for alignment).
    #[serde(skip)]
    pub attack_side: AttackSide,
    /// Folds of the patient-grouped cross-fitting when the side data comes from the
    /// audited split itself (`--side-folds`, default 5).
    #[serde(skip, default = "default_side_folds")]
    pub side_folds: usize,
}

fn default_side_folds() -> usize {
    crate::audit::cross_fit::DEFAULT_SIDE_FOLDS
}

/// The attacker's side information in a relink audit: labelled pairs disjoint from the
/// attacked ones — another split's records, or cross-fitting within the audited split.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum AttackSide {
    /// The `train` split when the cohort has one and it is not the audited split, else
    /// cross-fitting within the audited split (the reason is in `side.reason`).
    #[default]
    Auto,
    /// Patient-grouped cross-fitting within the audited split (`--attack-side audited`):
    /// fold f is attacked with the other folds' pairs ([`crate::audit::cross_fit`]).
    Audited,
    /// The records of this split (must differ from the audited split).
    Split(String),
    /// No side information: inverted softmax uses its default temperature; QB-Norm and the
    /// alignment attacks are skipped (with the reason in `skipped_attacks`).
    None,
}

impl Default for RelinkConfig {
    fn default() -> Self {
        RelinkConfig {
            query_view: "image".into(),
            gallery_view: "report".into(),
            split: Some("test".into()),
            pool_sizes: vec![10, 100, 1000, 10_000],
            trials: 20,
            hard_negatives: false,
            match_level: MatchLevel::Study,
            direction: Direction::QueryToGallery,
            seed: 0,
            bootstrap_replicates: 1000,
            level: 0.95,
            sizes: BlockSizes::default(),
            attack: Some(AttackConfig::default()),
            attack_side: AttackSide::Auto,
            side_folds: default_side_folds(),
        }
    }
}

impl RelinkConfig {
    /// Reject bad values with a message naming the flag.
    pub fn validate(&self) -> Result<()> {
        if self.query_view == self.gallery_view {
            return Err(Error::config(format!(
                "--query and --gallery both name view `{}`; re-linkage matches one view against another",
                self.query_view
            )));
        }
        if let Some(&s) = self.pool_sizes.iter().find(|&&s| s < 2) {
            return Err(Error::config(format!(
                "--pools: pool size {s} is too small; a pool holds the true match and at least one negative (use 2 or more, or `full`)"
            )));
        }
        if self.trials == 0 {
            return Err(Error::config("--trials must be at least 1"));
        }
        crate::limits::check("--trials", self.trials, 1, crate::limits::MAX_TRIALS)?;
        if self.bootstrap_replicates == 1 {
            return Err(Error::config("bootstrap replicates must be 0 (off) or at least 2"));
        }
        crate::limits::check("--bootstrap", self.bootstrap_replicates, 0, crate::limits::MAX_BOOTSTRAP)?;
        if !(self.level > 0.0 && self.level < 1.0) {
            return Err(Error::config(format!("interval level must be in (0, 1), got {}", self.level)));
        }
        if let Some(a) = self.attack_config() {
            a.validate()?;
            crate::audit::cross_fit::validate_folds(self.side_folds)?;
        }
        if let (AttackSide::Split(side), Some(split)) = (&self.attack_side, &self.split) {
            if side == split {
                return Err(Error::config(format!(
                    "--attack-side {side}: the side pairs must come from another split than the audited --split {split}"
                )));
            }
        }
        self.sizes.validate()
    }

    /// The attack configuration with this audit's pools, seed, level and block sizes.
    pub fn attack_config(&self) -> Option<AttackConfig> {
        self.attack.as_ref().map(|a| AttackConfig {
            pool_sizes: self.pool_sizes.clone(),
            seed: self.seed,
            level: self.level,
            sizes: self.sizes,
            ..a.clone()
        })
    }
}

/// The re-linkage report; its JSON is the interface (`audit`, `query_view`, `gallery_view`,
/// `n_queries`, `n_gallery`, `full`, `pools` and more).
#[derive(Debug, Clone, Serialize)]
pub struct RelinkReport {
    /// Always `relink`.
    pub audit: &'static str,
    /// linkrisk version that produced the report.
    pub linkrisk_version: &'static str,
    /// Split audited (`null`: all records).
    pub split: Option<String>,
    /// `study` or `patient`.
    pub match_level: MatchLevel,
    /// Seed of pools and bootstrap.
    pub seed: u64,
    /// Interval coverage of every `ci95_*` field.
    pub level: f64,
    /// The query -> gallery direction.
    #[serde(flatten)]
    pub forward: DirectionReport,
    /// The gallery -> query direction, with `--direction both`.
    pub reverse: Option<DirectionReport>,
}

/// One direction of the audit.
#[derive(Debug, Clone, Serialize)]
pub struct DirectionReport {
    /// View of the queries.
    pub query_view: String,
    /// View of the gallery.
    pub gallery_view: String,
    /// Queries ranked.
    pub n_queries: usize,
    /// Gallery items per query (before exclusions).
    pub n_gallery: usize,
    /// Distinct patients among the queries.
    pub n_patients: usize,
    /// Ranks against the whole gallery.
    pub full: FullReport,
    /// Candidate pools.
    pub pools: Vec<PoolReport>,
    /// Pools that could not be evaluated, with the reason.
    pub skipped_pools: Vec<SkippedPool>,
    /// Exact expected Recall@1 of random pools over a grid of pool sizes (from the full ranks).
    pub expected_recall_curve: Vec<CurvePoint>,
    /// What was excluded and why.
    pub exclusions: ExclusionReport,
    /// Full-database results per subgroup (sex, race, age band, split).
    pub subgroups: Vec<SubgroupReport>,
    /// The attack comparison (`strongest_attack`, `attacks`, ...; issue 8), when run.
    #[serde(flatten)]
    pub attack_comparison: Option<AttackComparison>,
}

/// Full-database retrieval statistics.
#[derive(Debug, Clone, Serialize)]
pub struct FullReport {
    /// Queries ranked.
    pub n_queries: usize,
    /// Expected Recall@1 (ties broken at random in expectation).
    pub recall_at_1: f64,
    /// Expected Recall@5.
    pub recall_at_5: f64,
    /// Expected Recall@10.
    pub recall_at_10: f64,
    /// Mean reciprocal rank.
    pub mrr: f64,
    /// Lower median rank.
    pub median_rank: u64,
    /// Mean expected rank.
    pub mean_rank: f64,
    /// Recall@1 of a random ranking.
    pub chance_at_1: f64,
    /// Recall@1 / chance@1.
    pub lift_at_1: f64,
    /// Wilson interval of Recall@1.
    pub ci95_recall_at_1: [f64; 2],
    /// Wilson interval of Recall@5.
    pub ci95_recall_at_5: [f64; 2],
    /// Wilson interval of Recall@10.
    pub ci95_recall_at_10: [f64; 2],
    /// Patient-bootstrap interval of Recall@1 (null without bootstrap).
    pub bootstrap_ci95_recall_at_1: Option<[f64; 2]>,
    /// Patient-bootstrap interval of MRR.
    pub bootstrap_ci95_mrr: Option<[f64; 2]>,
    /// Queries whose true match ties with at least one negative.
    pub queries_with_ties: usize,
}

/// One candidate-pool setting.
#[derive(Debug, Clone, Serialize)]
pub struct PoolReport {
    /// Pool size N (the true match plus N-1 negatives).
    pub pool_size: usize,
    /// `random` or `pathology_matched`.
    pub kind: &'static str,
    /// Pools per query.
    pub trials: usize,
    /// Queries evaluated.
    pub n_queries: usize,
    /// Queries skipped for having fewer than N-1 negatives.
    pub n_queries_skipped: usize,
    /// Recall@1 over all pools.
    pub recall_at_1: f64,
    /// Wilson interval of Recall@1 (n = queries: trials of one query are not independent).
    pub ci95_recall_at_1: [f64; 2],
    /// Patient-bootstrap interval of Recall@1.
    pub bootstrap_ci95_recall_at_1: Option<[f64; 2]>,
    /// Recall@5 over all pools.
    pub recall_at_5: f64,
    /// Recall@10 over all pools.
    pub recall_at_10: f64,
    /// 1/N.
    pub chance_at_1: f64,
    /// Recall@1 / chance.
    pub lift_at_1: f64,
    /// Exact expectation of Recall@1 for pools drawn this way (hypergeometric).
    pub expected_recall_at_1: f64,
    /// Exact expectation of Recall@5.
    pub expected_recall_at_5: f64,
    /// Standard deviation of Recall@1 across trials (trial t of every query forms one run).
    pub trial_sd_recall_at_1: f64,
    /// Pathology-matched pools: share of pool negatives whose 14 findings equal the true
    /// match's exactly (the rest come from the nearest Hamming distance).
    pub exact_match_fraction: Option<f64>,
}

/// A pool setting that was not evaluated.
#[derive(Debug, Clone, Serialize)]
pub struct SkippedPool {
    /// Pool size.
    pub pool_size: usize,
    /// `random` or `pathology_matched`.
    pub kind: &'static str,
    /// Why.
    pub reason: String,
}

/// A point of the expected-recall curve.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct CurvePoint {
    /// Pool size.
    pub pool_size: usize,
    /// Exact expected Recall@1 of random pools of that size.
    pub expected_recall_at_1: f64,
    /// 1/N.
    pub chance_at_1: f64,
}

/// Exclusions and ties, counted.
#[derive(Debug, Clone, Serialize)]
pub struct ExclusionReport {
    /// Records of the split that could not be queries (no true match in the gallery).
    pub queries_without_match: usize,
    /// Gallery items excluded from some query's negatives because they belong to the
    /// query's study (study-level matching), summed over queries.
    pub excluded_same_study: u64,
    /// Extra positives (other records of the patient) summed over queries (patient level).
    pub extra_positives: u64,
    /// Gallery items that exactly duplicate another (they tie by construction).
    pub gallery_exact_duplicates: usize,
}

/// Full-database results for one subgroup.
#[derive(Debug, Clone, Serialize)]
pub struct SubgroupReport {
    /// `sex`, `race`, `age` or `split`.
    pub attribute: &'static str,
    /// The subgroup's value (`unknown` for blanks; age in bands).
    pub value: String,
    /// Queries in the subgroup.
    pub n_queries: usize,
    /// Recall@1.
    pub recall_at_1: f64,
    /// Wilson interval of Recall@1.
    pub ci95_recall_at_1: [f64; 2],
    /// MRR.
    pub mrr: f64,
    /// Chance@1.
    pub chance_at_1: f64,
    /// Lift@1.
    pub lift_at_1: f64,
}

/// Run the re-linkage audit: per-query records for every query ([`relink_range`]), then
/// the statistics over them ([`finish`]). A sharded run computes the same records in slices
/// and finishes after merging them (`crate::audit::relink::partial`).
pub fn relink(cohort: &Cohort, config: &RelinkConfig, progress: &dyn Progress) -> Result<RelinkReport> {
    relink_fused(cohort, config, true, progress)
}

/// [`relink`]; with `fuse`, the plain-cosine attack rides on the audit's own ranking pass
/// when the attack comparison's cosine pass is a plain evaluation
/// (`attack::plain_cosine_pass`; the default audit), else the comparison ranks again. The
/// report is the same either way (tested).
pub(crate) fn relink_fused(
    cohort: &Cohort,
    config: &RelinkConfig,
    fuse: bool,
    progress: &dyn Progress,
) -> Result<RelinkReport> {
    let inputs = RelinkInputs::from_cohort(cohort, config)?;
    let attack_config = config.attack_config();
    let cosine_control = match &attack_config {
        Some(a) if fuse && crate::attack::plain_cosine_pass(a)? => Some(a.seed),
        _ => None,
    };
    let (part, mut cosine) =
        records::relink_range_with_cosine(&inputs, config, 0..inputs.n_queries(), cosine_control, progress)?;
    let mut report = finish(config, &part.context, &part.records)?;
    if config.attack.is_some() {
        let side = side_plan(&cohort.metadata, &inputs.records, config)?;
        let forward_cosine = cosine.first_mut().and_then(Option::take);
        report.forward.attack_comparison = attack_direction(
            cohort,
            &inputs,
            &side,
            &config.query_view,
            &config.gallery_view,
            config,
            forward_cosine,
            progress,
        )?;
        if let Some(reverse) = report.reverse.as_mut() {
            let reverse_cosine = cosine.get_mut(1).and_then(Option::take);
            reverse.attack_comparison = attack_direction(
                cohort,
                &inputs,
                &side,
                &config.gallery_view,
                &config.query_view,
                config,
                reverse_cosine,
                progress,
            )?;
        }
    }
    Ok(report)
}
