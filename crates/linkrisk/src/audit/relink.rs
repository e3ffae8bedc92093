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

use std::borrow::Cow;
use std::collections::HashMap;
use std::ops::Range;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::attack::{self, AttackComparison, AttackConfig, AttackTask, SideInfo};
use crate::cohort::{load_views_mapped, Cohort, Label, LoadedView, MappedView, Metadata, View, ViewRequest};
use crate::engine::pools::{LabelCodes, PoolEvaluator, PoolOutcome};
use crate::engine::{
    gather, rank_with, BlockSizes, FirstPositive, Gallery, Progress, RankOptions, Rows, ScaledRows, Targets,
};
use crate::error::{Error, Result};
use crate::metrics::bootstrap::cluster_bootstrap_means;
use crate::metrics::retrieval::{
    expected_pool_hit_probability, expected_reciprocal_rank, first_hit_probability, hit_probability,
    summarize, RankedQuery,
};
use crate::metrics::wilson;
use crate::shard::ShardSpec;

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
}

/// The attacker's side information in a relink audit: labelled pairs disjoint from the
/// audited records.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum AttackSide {
    /// The `train` split when the cohort has one and it is not the audited split, else none.
    #[default]
    Auto,
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
        if self.bootstrap_replicates == 1 {
            return Err(Error::config("bootstrap replicates must be 0 (off) or at least 2"));
        }
        if !(self.level > 0.0 && self.level < 1.0) {
            return Err(Error::config(format!("interval level must be in (0, 1), got {}", self.level)));
        }
        if let Some(a) = self.attack_config() {
            a.validate()?;
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
/// and finishes after merging them (`crate::audit::relink_partial`).
pub fn relink(cohort: &Cohort, config: &RelinkConfig, progress: &dyn Progress) -> Result<RelinkReport> {
    let inputs = RelinkInputs::from_cohort(cohort, config)?;
    let part = relink_range(&inputs, config, 0..inputs.n_queries(), progress)?;
    let mut report = finish(config, &part.context, &part.records)?;
    if config.attack.is_some() {
        let side_records = side_records(&cohort.metadata, config)?;
        let side = side_records.as_ref().map(|(name, rows)| (name.as_str(), rows.as_slice()));
        report.forward.attack_comparison = attack_direction(
            cohort,
            &inputs,
            side,
            &config.query_view,
            &config.gallery_view,
            config,
            progress,
        )?;
        if let Some(reverse) = report.reverse.as_mut() {
            reverse.attack_comparison = attack_direction(
                cohort,
                &inputs,
                side,
                &config.gallery_view,
                &config.query_view,
                config,
                progress,
            )?;
        }
    }
    Ok(report)
}

/// The attack comparison of one direction (single-machine runs only).
fn attack_direction(
    cohort: &Cohort,
    inputs: &RelinkInputs<'_>,
    side: Option<(&str, &[usize])>,
    query_name: &str,
    gallery_name: &str,
    config: &RelinkConfig,
    progress: &dyn Progress,
) -> Result<Option<AttackComparison>> {
    let Some(attack_config) = config.attack_config() else { return Ok(None) };
    let meta = &cohort.metadata;
    let records = &inputs.records;
    let n = records.len();
    let query_view = cohort.view(query_name)?;
    let gallery_view = cohort.view(gallery_name)?;
    let (query_rows, gallery_rows) = if query_name == inputs.query.name {
        (&inputs.query, &inputs.gallery)
    } else {
        (&inputs.gallery, &inputs.query)
    };
    let (targets, _, _) = build_targets(meta, records, config.match_level)?;
    let task = AttackTask {
        queries: Rows::trusted(&query_rows.data, n, query_rows.dim),
        gallery: Rows::trusted(&gallery_rows.data, n, gallery_rows.dim),
        targets: &targets,
        paired: true,
        neighbourhood_exclusions: false,
    };
    let side_data = match side {
        Some((name, rows)) => {
            let q = gather(query_view, rows);
            let g = gather(gallery_view, rows);
            let (t, _, _) = build_targets(meta, rows, config.match_level)?;
            Some((format!("split {name}"), q, g, t, rows.len()))
        }
        None => None,
    };
    let side_task = match &side_data {
        Some((source, q, g, t, n_side)) => Some(SideInfo {
            task: AttackTask {
                queries: Rows::new(q, *n_side, query_view.dim())?,
                gallery: Rows::new(g, *n_side, gallery_view.dim())?,
                targets: t,
                paired: true,
                neighbourhood_exclusions: false,
            },
            source: source.as_str(),
        }),
        None => None,
    };
    Ok(Some(attack::compare(&task, side_task.as_ref(), &attack_config, progress)?))
}

/// The side split's name and records, when the attack comparison runs and has one.
fn side_records(meta: &Metadata, config: &RelinkConfig) -> Result<Option<(String, Vec<usize>)>> {
    if config.attack.is_none() {
        return Ok(None);
    }
    let name = match &config.attack_side {
        AttackSide::None => return Ok(None),
        AttackSide::Split(name) => name.clone(),
        AttackSide::Auto => {
            let audited = config.split.as_deref();
            match meta.split_names.iter().find(|s| s.as_str() == "train") {
                Some(train) if config.split.is_some() && audited != Some(train.as_str()) => train.clone(),
                _ => return Ok(None),
            }
        }
    };
    if config.split.is_none() {
        return Err(Error::config(format!(
            "--attack-side {name}: with --split all every record is attacked; choose an audited --split so the side pairs are disjoint"
        )));
    }
    let rows = meta.rows_in_split(&name)?;
    if rows.len() < 2 {
        return Err(Error::config(format!(
            "--attack-side {name}: {} record(s); the side pairs need at least 2 (or use --attack-side none)",
            rows.len()
        )));
    }
    Ok(Some((name, rows)))
}

/// One view's rows for a relink pass, records-local (row i is record `records[i]`).
#[derive(Debug)]
struct ViewRows<'a> {
    name: String,
    dim: usize,
    /// Unit rows (in a shard, only the loaded queries' rows hold data).
    data: Cow<'a, [f32]>,
    /// The whole view memory-mapped (a shard's gallery): as a gallery, it is ranked from
    /// the map instead of `data`.
    mapped: Option<MappedView>,
}

impl ViewRows<'_> {
    /// This view as the gallery of a direction.
    fn gallery(&self, n: usize) -> Gallery<'_> {
        match &self.mapped {
            Some(m) => Gallery::scaled(ScaledRows::from_mapped(m)),
            None => Gallery::new(Rows::trusted(&self.data, n, self.dim)),
        }
    }
}

/// The embeddings and metadata a relink pass reads: the query and gallery views restricted
/// to the audited split (row i of each is the split's i-th record). Built from a loaded
/// cohort ([`RelinkInputs::from_cohort`]) or read from disk with only what one shard needs
/// ([`RelinkInputs::load`]).
#[derive(Debug)]
pub struct RelinkInputs<'a> {
    metadata: Cow<'a, Metadata>,
    records: Vec<usize>,
    query: ViewRows<'a>,
    gallery: ViewRows<'a>,
    /// Queries whose rows hold data in both directions' query matrices (all of them except
    /// in a shard that read only its slice).
    loaded: Range<usize>,
}

impl<'a> RelinkInputs<'a> {
    /// The inputs of `config` in a loaded cohort (validated against the cohort first). The
    /// views are borrowed when the audit uses every record, else the split's rows are copied.
    pub fn from_cohort(cohort: &'a Cohort, config: &RelinkConfig) -> Result<RelinkInputs<'a>> {
        config.validate()?;
        let meta = &cohort.metadata;
        let query_view = cohort.view(&config.query_view)?;
        let gallery_view = cohort.view(&config.gallery_view)?;
        check_views(
            &cohort.dir,
            meta,
            (query_view.name(), query_view.dim()),
            (gallery_view.name(), gallery_view.dim()),
            config,
        )?;
        let records = split_records(meta, config)?;
        let rows = |view: &'a View| ViewRows {
            name: view.name().to_string(),
            dim: view.dim(),
            data: if records.len() == meta.len() {
                Cow::Borrowed(view.rows())
            } else {
                Cow::Owned(gather(view, &records))
            },
            mapped: None,
        };
        let (query, gallery) = (rows(query_view), rows(gallery_view));
        let n = records.len();
        Ok(RelinkInputs { metadata: Cow::Borrowed(meta), records, query, gallery, loaded: 0..n })
    }

    /// Read from cohort directory `dir` only what computing the records of `shard`'s
    /// queries needs: the metadata, the gallery view (the split's rows) and, when only one
    /// direction is audited, just the shard's rows of the query view (other rows stay zero
    /// and are never read). Other views are not read at all. Every view used as a gallery
    /// (with `--direction both`, both) is memory-mapped when its file allows
    /// ([`crate::cohort::MappedView`]; else read), so the shard's own memory is its query
    /// slice and the ranking's working memory; the rankings are bitwise those of views
    /// read into memory.
    pub fn load(dir: &Path, config: &RelinkConfig, shard: ShardSpec) -> Result<RelinkInputs<'static>> {
        config.validate()?;
        let mut records = Vec::new();
        let mut slice = 0..0;
        let map: Vec<&str> = match config.direction {
            Direction::QueryToGallery => vec![config.gallery_view.as_str()],
            Direction::Both => vec![config.query_view.as_str(), config.gallery_view.as_str()],
        };
        let (metadata, views) = load_views_mapped(
            dir,
            |meta| {
                records = split_records(meta, config)?;
                slice = shard.queries(records.len());
                let all = records.len() == meta.len();
                let gallery_rows = (!all).then(|| records.clone());
                let query_rows = match config.direction {
                    Direction::QueryToGallery => Some(records[slice.clone()].to_vec()),
                    Direction::Both => gallery_rows.clone(),
                };
                Ok(vec![
                    ViewRequest { name: config.query_view.clone(), rows: query_rows },
                    ViewRequest { name: config.gallery_view.clone(), rows: gallery_rows },
                ])
            },
            &map,
        )?;
        let [query_view, gallery_view]: [LoadedView; 2] = views.try_into().expect("two views requested");
        check_views(
            dir,
            &metadata,
            (query_view.name(), query_view.dim()),
            (gallery_view.name(), gallery_view.dim()),
            config,
        )?;
        let n = records.len();
        // Records-local rows `rows` of the query matrix hold data; the others stay zero and
        // are never read. Untouched pages of a zeroed allocation are never committed: this
        // costs memory only for `rows`.
        let queries_only = |dim: usize, rows: Range<usize>, values: &[f32]| {
            let mut data = vec![0f32; n * dim];
            data[rows.start * dim..rows.end * dim].copy_from_slice(values);
            data
        };
        // A view as the query side (records-local rows `query_rows` of it: the shard's slice,
        // or none for a gallery only) and, when mapped or read whole, as a gallery.
        let view_rows = |name: &str, view: LoadedView, query_rows: Range<usize>| -> ViewRows<'static> {
            let dim = view.dim();
            let (data, mapped) = match view {
                LoadedView::Mapped(m) => {
                    let rows = m.normalised_rows(query_rows.clone());
                    (queries_only(dim, query_rows, &rows), Some(m))
                }
                // Only the shard's slice was read.
                LoadedView::Read(v) if v.n() < n => (queries_only(dim, slice.clone(), v.rows()), None),
                LoadedView::Read(v) => (v.into_rows(), None),
            };
            ViewRows { name: name.to_string(), dim, data: Cow::Owned(data), mapped }
        };
        let (query, gallery) = match config.direction {
            Direction::QueryToGallery => (
                view_rows(&config.query_view, query_view, slice.clone()),
                view_rows(&config.gallery_view, gallery_view, 0..0),
            ),
            Direction::Both => (
                view_rows(&config.query_view, query_view, slice.clone()),
                view_rows(&config.gallery_view, gallery_view, slice.clone()),
            ),
        };
        // Both query matrices are whole only when both views were read whole; a mapped
        // view's query rows are just the shard's slice.
        let whole = config.direction == Direction::Both && query.mapped.is_none() && gallery.mapped.is_none();
        let loaded = if whole { 0..n } else { slice };
        Ok(RelinkInputs { metadata: Cow::Owned(metadata), records, query, gallery, loaded })
    }

    /// Queries per direction (records of the audited split).
    pub fn n_queries(&self) -> usize {
        self.records.len()
    }

    /// Names of the views ranked as galleries straight from a memory map (query view
    /// first); empty when everything was read into memory.
    pub fn mapped_views(&self) -> Vec<&str> {
        [&self.query, &self.gallery]
            .into_iter()
            .filter(|v| v.mapped.is_some())
            .map(|v| v.name.as_str())
            .collect()
    }
}

/// Checks of the two views against each other and the metadata, before any work.
fn check_views(
    dir: &Path,
    meta: &Metadata,
    (query_name, query_dim): (&str, usize),
    (gallery_name, gallery_dim): (&str, usize),
    config: &RelinkConfig,
) -> Result<()> {
    if query_dim != gallery_dim {
        return Err(Error::input(
            dir,
            format!(
                "view `{query_name}` has {query_dim} dimensions but `{gallery_name}` has {gallery_dim}; re-linkage compares both views in one embedding space"
            ),
        ));
    }
    if config.hard_negatives && meta.findings.is_none() {
        return Err(Error::input(
            dir,
            "--hard-negatives needs the 14 CheXpert finding columns in metadata.csv; add them or drop the flag",
        ));
    }
    Ok(())
}

/// The records of the audited split, checked to be enough for the requested pools.
fn split_records(meta: &Metadata, config: &RelinkConfig) -> Result<Vec<usize>> {
    let records: Vec<usize> = match &config.split {
        Some(name) => meta.rows_in_split(name)?,
        None => (0..meta.len()).collect(),
    };
    if records.len() < 2 {
        return Err(Error::config(format!(
            "--split {}: {} record(s); re-linkage needs at least 2",
            config.split.as_deref().unwrap_or("all"),
            records.len()
        )));
    }
    let too_big: Vec<usize> = config.pool_sizes.iter().copied().filter(|&s| s > records.len()).collect();
    if !config.pool_sizes.is_empty() && too_big.len() == config.pool_sizes.len() {
        return Err(Error::config(format!(
            "--pools: every requested pool size ({}) exceeds the {} records of the split; use smaller pools or `full`",
            join(&too_big),
            records.len()
        )));
    }
    Ok(records)
}

/// What finishing a direction needs besides the per-query records: derived from the
/// metadata, the gallery and the config alone, so every shard computes the same context
/// (a merge checks that they agree).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DirectionContext {
    /// View of the queries.
    pub query_view: String,
    /// View of the gallery.
    pub gallery_view: String,
    /// Queries (records of the split).
    pub n_queries: usize,
    /// Gallery items.
    pub n_gallery: usize,
    /// Pool sizes evaluated (the requested sizes that fit the gallery), in order.
    pub pool_sizes: Vec<usize>,
    /// Requested pool sizes larger than the gallery (reported as skipped).
    pub oversized_pools: Vec<usize>,
    /// Whether pathology-matched pools were evaluated.
    pub pathology_matched: bool,
    /// Gallery items excluded as same-study records, summed over queries.
    pub excluded_same_study: u64,
    /// Extra same-patient positives, summed over queries.
    pub extra_positives: u64,
    /// Gallery items that exactly duplicate another.
    pub gallery_exact_duplicates: usize,
    /// Subgroup attributes and their values (sorted); records hold value indices.
    pub subgroups: Vec<SubgroupAttribute>,
}

/// A subgroup attribute and its values over all queries.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SubgroupAttribute {
    /// `sex`, `race`, `age` or `split`.
    pub attribute: String,
    /// Distinct values, sorted.
    pub values: Vec<String>,
}

/// The context of every audited direction (forward first).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RelinkContext {
    /// One per direction.
    pub directions: Vec<DirectionContext>,
}

/// Everything the statistics need from one query's ranking: its rank counts, its pools'
/// outcomes and what it is grouped by (patient, subgroups). Records of disjoint query
/// ranges concatenate to the records of their union.
#[derive(Debug, Clone, PartialEq)]
pub struct QueryRecord {
    /// The query's patient (dense metadata index): the bootstrap's cluster.
    pub patient: u32,
    /// Index of the query's value in each [`DirectionContext::subgroups`] attribute.
    pub subgroups: Vec<u32>,
    /// Rank counts of its best positive.
    pub first: FirstPositive,
    /// Negatives of the query.
    pub n_negatives: u64,
    /// Positives of the query.
    pub n_positives: u64,
    /// Negatives above the true match.
    pub anchor_greater: u64,
    /// Negatives tied with the true match.
    pub anchor_tied: u64,
    /// Random pools, one per evaluated size (`None`: too few negatives).
    pub random: Vec<Option<PoolOutcome>>,
    /// Pathology-matched pools, when evaluated.
    pub matched: Option<Vec<Option<PoolOutcome>>>,
}

/// Per-query records of a query range, with the context to finish them.
#[derive(Debug, Clone, PartialEq)]
pub struct RelinkPart {
    /// The audit's context (the same for every range).
    pub context: RelinkContext,
    /// Per direction, one record per query of the range, in query order.
    pub records: Vec<Vec<QueryRecord>>,
}

/// Rank queries `range` (of [`RelinkInputs::n_queries`]) in every audited direction and
/// return their records. Only these queries are ranked; the gallery is always whole.
pub fn relink_range(
    inputs: &RelinkInputs<'_>,
    config: &RelinkConfig,
    range: Range<usize>,
    progress: &dyn Progress,
) -> Result<RelinkPart> {
    config.validate()?;
    let n = inputs.n_queries();
    if range.start > range.end || range.end > n {
        return Err(Error::config(format!("query range {range:?} is outside the {n} queries")));
    }
    if !range.is_empty() && (range.start < inputs.loaded.start || range.end > inputs.loaded.end) {
        return Err(Error::config(format!(
            "query range {range:?} was not loaded (loaded {:?})",
            inputs.loaded
        )));
    }
    let (context, records) =
        direction_records(inputs, &inputs.query, &inputs.gallery, config, range.clone(), progress)?;
    let mut part =
        RelinkPart { context: RelinkContext { directions: vec![context] }, records: vec![records] };
    if config.direction == Direction::Both {
        let (context, records) =
            direction_records(inputs, &inputs.gallery, &inputs.query, config, range, progress)?;
        part.context.directions.push(context);
        part.records.push(records);
    }
    Ok(part)
}

fn join(v: &[usize]) -> String {
    v.iter().map(|s| s.to_string()).collect::<Vec<_>>().join(", ")
}

/// Positives and exclusions of every query: local index i's anchor is gallery i.
fn build_targets(meta: &Metadata, records: &[usize], level: MatchLevel) -> Result<(Targets, u64, u64)> {
    let group_of = |r: usize| match level {
        MatchLevel::Study => meta.study[r],
        MatchLevel::Patient => meta.patient[r],
    };
    let mut members: HashMap<u32, Vec<u32>> = HashMap::new();
    for (local, &r) in records.iter().enumerate() {
        members.entry(group_of(r)).or_default().push(local as u32);
    }
    let mut builder = Targets::builder(records.len());
    let (mut excluded, mut extra_positives) = (0u64, 0u64);
    let mut positives = Vec::new();
    let mut exclusions = Vec::new();
    for (local, &r) in records.iter().enumerate() {
        positives.clear();
        exclusions.clear();
        positives.push(local as u32);
        let others = members[&group_of(r)].iter().copied().filter(|&g| g != local as u32);
        match level {
            MatchLevel::Study => exclusions.extend(others),
            MatchLevel::Patient => positives.extend(others),
        }
        excluded += exclusions.len() as u64;
        extra_positives += (positives.len() - 1) as u64;
        builder.push(&positives, &exclusions)?;
    }
    Ok((builder.build(), excluded, extra_positives))
}

/// The 14 findings of each record as a 2-bit-per-finding code.
fn finding_codes(meta: &Metadata, records: &[usize]) -> Option<Vec<u32>> {
    let findings = meta.findings.as_ref()?;
    Some(
        records
            .iter()
            .map(|&r| {
                findings[r].iter().enumerate().fold(0u32, |code, (k, label)| {
                    let bits = match label {
                        Label::Negative => 0,
                        Label::Positive => 1,
                        Label::Uncertain => 2,
                        Label::Blank => 3,
                    };
                    code | (bits << (2 * k))
                })
            })
            .collect(),
    )
}

/// Context and records of one direction for queries `range`.
fn direction_records(
    inputs: &RelinkInputs<'_>,
    query: &ViewRows<'_>,
    gallery_rows: &ViewRows<'_>,
    config: &RelinkConfig,
    range: Range<usize>,
    progress: &dyn Progress,
) -> Result<(DirectionContext, Vec<QueryRecord>)> {
    let meta = inputs.metadata.as_ref();
    let records = &inputs.records;
    let n = records.len();
    // Views are validated at load (finite, unit rows); rows outside a shard's slice are
    // zeros that the engine never reads.
    let queries = Rows::trusted(&query.data, n, query.dim);
    let gallery = gallery_rows.gallery(n);
    let (targets, excluded_same_study, extra_positives) = build_targets(meta, records, config.match_level)?;

    let sizes: Vec<usize> = config.pool_sizes.iter().copied().filter(|&s| s <= n).collect();
    let oversized_pools: Vec<usize> = config.pool_sizes.iter().copied().filter(|&s| s > n).collect();
    let codes = if config.hard_negatives { finding_codes(meta, records).map(LabelCodes::new) } else { None };
    let random = PoolEvaluator::random(&targets, &sizes, config.trials, config.seed)?;
    let matched = match &codes {
        Some(c) => Some(PoolEvaluator::label_matched(&targets, c, &sizes, config.trials, config.seed)?),
        None => None,
    };
    let (subgroups, codes_of) = subgroup_codes(meta, records, config);
    progress.begin(range.len() as u64, &format!("{}->{}", query.name, gallery_rows.name));
    let options = RankOptions { top_k: 0, sizes: config.sizes };
    let ranked = rank_with(queries, &gallery, &targets, range, &options, &(random, matched), progress)?;
    let records_out = ranked
        .into_iter()
        .map(|(r, (random, matched))| {
            let first = r.first_positive().expect("every relink query has its true match");
            let anchor = r.anchor_rank().expect("every relink query has its true match");
            QueryRecord {
                patient: meta.patient[records[r.query]],
                subgroups: codes_of.iter().map(|c| c[r.query]).collect(),
                first,
                n_negatives: r.n_negatives,
                n_positives: r.positives.len() as u64,
                anchor_greater: anchor.greater,
                anchor_tied: anchor.tied,
                random,
                matched,
            }
        })
        .collect();
    let context = DirectionContext {
        query_view: query.name.clone(),
        gallery_view: gallery_rows.name.clone(),
        n_queries: n,
        n_gallery: n,
        pool_sizes: sizes,
        oversized_pools,
        pathology_matched: codes.is_some(),
        excluded_same_study,
        extra_positives,
        gallery_exact_duplicates: gallery.n_duplicates(),
        subgroups,
    };
    Ok((context, records_out))
}

/// Turn per-query records into the report: every statistic over queries is computed here,
/// for a single run and for merged shards alike.
pub fn finish(
    config: &RelinkConfig,
    context: &RelinkContext,
    records: &[Vec<QueryRecord>],
) -> Result<RelinkReport> {
    config.validate()?;
    let expected = if config.direction == Direction::Both { 2 } else { 1 };
    if context.directions.len() != expected || records.len() != expected {
        return Err(Error::config(format!(
            "{} direction context(s) and {} record set(s) for an audit of {expected} direction(s)",
            context.directions.len(),
            records.len()
        )));
    }
    let mut directions = context
        .directions
        .iter()
        .zip(records)
        .map(|(c, r)| finish_direction(config, c, r))
        .collect::<Result<Vec<_>>>()?
        .into_iter();
    let forward = directions.next().expect("checked above");
    Ok(RelinkReport {
        audit: "relink",
        linkrisk_version: crate::VERSION,
        split: config.split.clone(),
        match_level: config.match_level,
        seed: config.seed,
        level: config.level,
        forward,
        reverse: directions.next(),
    })
}

fn finish_direction(
    config: &RelinkConfig,
    ctx: &DirectionContext,
    records: &[QueryRecord],
) -> Result<DirectionReport> {
    if records.len() != ctx.n_queries {
        return Err(Error::config(format!(
            "{} records for the {} queries of {} -> {}",
            records.len(),
            ctx.n_queries,
            ctx.query_view,
            ctx.gallery_view
        )));
    }
    let n = ctx.n_queries;
    let mut skipped_pools = Vec::new();
    let oversized = |kind| {
        ctx.oversized_pools.iter().map(move |&s| SkippedPool {
            pool_size: s,
            kind,
            reason: format!("larger than the gallery of {n} items"),
        })
    };
    skipped_pools.extend(oversized("random"));
    if config.hard_negatives {
        skipped_pools.extend(oversized("pathology_matched"));
    }
    let patient_of: Vec<u32> = records.iter().map(|r| r.patient).collect();
    let ranked_queries: Vec<RankedQuery> = records
        .iter()
        .map(|r| RankedQuery { first: r.first, n_negatives: r.n_negatives, n_positives: r.n_positives })
        .collect();
    let full = full_report(&ranked_queries, &patient_of, config)?;

    let mut pools = Vec::new();
    for (s, &size) in ctx.pool_sizes.iter().enumerate() {
        let outcomes =
            records.iter().map(|r| pool_outcome(Some(r.random.as_slice()), s)).collect::<Result<Vec<_>>>()?;
        pools.push(pool_report(size, "random", &outcomes, &patient_of, config)?);
        if ctx.pathology_matched {
            let outcomes =
                records.iter().map(|r| pool_outcome(r.matched.as_deref(), s)).collect::<Result<Vec<_>>>()?;
            pools.push(pool_report(size, "pathology_matched", &outcomes, &patient_of, config)?);
        }
    }
    for p in &pools {
        if p.n_queries == 0 {
            skipped_pools.push(SkippedPool {
                pool_size: p.pool_size,
                kind: p.kind,
                reason: "no query has enough negatives".into(),
            });
        }
    }
    pools.retain(|p| p.n_queries > 0);

    let expected_recall_curve = curve(records);
    let subgroups = subgroups(ctx, records, &ranked_queries, config)?;
    let n_patients = {
        let mut p = patient_of.clone();
        p.sort_unstable();
        p.dedup();
        p.len()
    };
    Ok(DirectionReport {
        query_view: ctx.query_view.clone(),
        gallery_view: ctx.gallery_view.clone(),
        n_queries: n,
        n_gallery: ctx.n_gallery,
        n_patients,
        full,
        pools,
        skipped_pools,
        expected_recall_curve,
        exclusions: ExclusionReport {
            queries_without_match: 0,
            excluded_same_study: ctx.excluded_same_study,
            extra_positives: ctx.extra_positives,
            gallery_exact_duplicates: ctx.gallery_exact_duplicates,
        },
        subgroups,
        attack_comparison: None,
    })
}

/// Pool size `s`'s outcome in a record's outcome list (`None` when the list is absent).
fn pool_outcome(outcomes: Option<&[Option<PoolOutcome>]>, s: usize) -> Result<Option<&PoolOutcome>> {
    match outcomes {
        Some(v) => v.get(s).map(Option::as_ref).ok_or_else(|| {
            Error::config(format!("a record has {} pool outcomes; pool size {} is missing", v.len(), s + 1))
        }),
        None => Ok(None),
    }
}

fn full_report(queries: &[RankedQuery], patient_of: &[u32], config: &RelinkConfig) -> Result<FullReport> {
    let s = summarize(queries, config.level);
    let (boot_r1, boot_mrr) = if config.bootstrap_replicates > 0 {
        let hits: Vec<f64> = queries.iter().map(|q| first_hit_probability(&q.first, 1)).collect();
        let rr: Vec<f64> = queries.iter().map(|q| expected_reciprocal_rank(&q.first)).collect();
        let e = cluster_bootstrap_means(
            &[&hits, &rr],
            patient_of,
            config.bootstrap_replicates,
            config.level,
            config.seed,
            "relink-bootstrap-full",
        )?;
        (Some(e[0].ci()), Some(e[1].ci()))
    } else {
        (None, None)
    };
    Ok(FullReport {
        n_queries: s.n_queries,
        recall_at_1: s.recall_at_1.value,
        recall_at_5: s.recall_at_5.value,
        recall_at_10: s.recall_at_10.value,
        mrr: s.mrr,
        median_rank: s.median_rank,
        mean_rank: s.mean_rank,
        chance_at_1: s.chance_at_1,
        lift_at_1: s.lift_at_1,
        ci95_recall_at_1: s.recall_at_1.ci(),
        ci95_recall_at_5: s.recall_at_5.ci(),
        ci95_recall_at_10: s.recall_at_10.ci(),
        bootstrap_ci95_recall_at_1: boot_r1,
        bootstrap_ci95_mrr: boot_mrr,
        queries_with_ties: queries.iter().filter(|q| q.first.tied_negatives > 0).count(),
    })
}

fn pool_report(
    size: usize,
    kind: &'static str,
    outcomes: &[Option<&PoolOutcome>],
    patient_of: &[u32],
    config: &RelinkConfig,
) -> Result<PoolReport> {
    let trials = config.trials;
    let evaluated: Vec<(usize, &PoolOutcome)> =
        outcomes.iter().enumerate().filter_map(|(i, o)| o.map(|o| (i, o))).collect();
    let n_q = evaluated.len();
    let mean_hit = |o: &PoolOutcome, k: u64| {
        o.trials.iter().map(|c| hit_probability(u64::from(c.greater), u64::from(c.tied), k)).sum::<f64>()
            / trials as f64
    };
    let per_query_r1: Vec<f64> = evaluated.iter().map(|(_, o)| mean_hit(o, 1)).collect();
    let mean =
        |v: &mut dyn Iterator<Item = f64>| if n_q > 0 { v.sum::<f64>() / n_q as f64 } else { f64::NAN };
    let recall_at_1 = mean(&mut per_query_r1.iter().copied());
    let recall_at_5 = mean(&mut evaluated.iter().map(|(_, o)| mean_hit(o, 5)));
    let recall_at_10 = mean(&mut evaluated.iter().map(|(_, o)| mean_hit(o, 10)));
    let expected_recall_at_1 =
        mean(&mut evaluated.iter().map(|(_, o)| expected_pool_hit_probability(&o.draw, 1)));
    let expected_recall_at_5 =
        mean(&mut evaluated.iter().map(|(_, o)| expected_pool_hit_probability(&o.draw, 5)));
    // Trial t of every query forms one run of the protocol; its spread across runs.
    let trial_sd_recall_at_1 = if n_q > 0 && trials > 1 {
        let runs: Vec<f64> = (0..trials)
            .map(|t| {
                evaluated
                    .iter()
                    .map(|(_, o)| {
                        hit_probability(u64::from(o.trials[t].greater), u64::from(o.trials[t].tied), 1)
                    })
                    .sum::<f64>()
                    / n_q as f64
            })
            .collect();
        let m = runs.iter().sum::<f64>() / trials as f64;
        (runs.iter().map(|r| (r - m) * (r - m)).sum::<f64>() / (trials - 1) as f64).sqrt()
    } else {
        0.0
    };
    let ci =
        if n_q > 0 { wilson(recall_at_1 * n_q as f64, n_q as f64, config.level).ci() } else { [0.0, 1.0] };
    let bootstrap = if config.bootstrap_replicates > 0 && n_q > 0 {
        let patients: Vec<u32> = evaluated.iter().map(|(i, _)| patient_of[*i]).collect();
        let purpose = format!("relink-bootstrap-pool-{kind}-{size}");
        Some(
            cluster_bootstrap_means(
                &[&per_query_r1],
                &patients,
                config.bootstrap_replicates,
                config.level,
                config.seed,
                &purpose,
            )?[0]
                .ci(),
        )
    } else {
        None
    };
    let chance_at_1 = 1.0 / size as f64;
    let exact_match_fraction = (kind == "pathology_matched" && n_q > 0).then(|| {
        evaluated.iter().map(|(_, o)| o.exact_matches as f64).sum::<f64>() / (n_q as f64 * (size - 1) as f64)
    });
    Ok(PoolReport {
        pool_size: size,
        kind,
        trials,
        n_queries: n_q,
        n_queries_skipped: outcomes.len() - n_q,
        recall_at_1,
        ci95_recall_at_1: ci,
        bootstrap_ci95_recall_at_1: bootstrap,
        recall_at_5,
        recall_at_10,
        chance_at_1,
        lift_at_1: recall_at_1 / chance_at_1,
        expected_recall_at_1,
        expected_recall_at_5,
        trial_sd_recall_at_1,
        exact_match_fraction,
    })
}

/// Exact expected Recall@1 of random pools at sizes 2, 5, 10, 20, 50, ... up to the
/// largest size every query can fill (its negatives plus the true match), which ends the grid.
fn curve(records: &[QueryRecord]) -> Vec<CurvePoint> {
    let Some(cap) = records.iter().map(|r| r.n_negatives as usize + 1).min() else { return Vec::new() };
    let n_gallery = cap;
    let mut grid = Vec::new();
    let mut decade = 1usize;
    'outer: loop {
        for m in [2usize, 5, 10] {
            let s = m * decade;
            if s >= n_gallery {
                break 'outer;
            }
            grid.push(s);
        }
        decade *= 10;
    }
    if n_gallery >= 2 {
        grid.push(n_gallery);
    }
    grid.into_iter()
        .map(|size| {
            let (mut sum, mut count) = (0.0, 0usize);
            for r in records {
                if (size - 1) as u64 > r.n_negatives {
                    continue;
                }
                let draw = crate::engine::pools::PoolDraw {
                    fixed_greater: 0,
                    fixed_tied: 0,
                    fixed: 0,
                    population: r.n_negatives,
                    population_greater: r.anchor_greater,
                    population_tied: r.anchor_tied,
                    draws: (size - 1) as u64,
                };
                sum += expected_pool_hit_probability(&draw, 1);
                count += 1;
            }
            CurvePoint {
                pool_size: size,
                expected_recall_at_1: if count > 0 { sum / count as f64 } else { f64::NAN },
                chance_at_1: 1.0 / size as f64,
            }
        })
        .filter(|p| p.expected_recall_at_1.is_finite())
        .collect()
}

fn age_band(age: Option<f64>) -> String {
    match age {
        None => "unknown".into(),
        Some(a) if a < 40.0 => "<40".into(),
        Some(a) if a < 60.0 => "40-59".into(),
        Some(a) if a < 80.0 => "60-79".into(),
        Some(_) => ">=80".into(),
    }
}

/// The subgroup attributes of the split's records (sex, race, age band, and split when
/// the audit spans several), each with its sorted values and every record's value index.
fn subgroup_codes(
    meta: &Metadata,
    records: &[usize],
    config: &RelinkConfig,
) -> (Vec<SubgroupAttribute>, Vec<Vec<u32>>) {
    let mut attributes: Vec<(&'static str, Vec<String>)> = Vec::new();
    let text = |v: &Option<String>| v.clone().unwrap_or_else(|| "unknown".into());
    if let Some(sex) = &meta.sex {
        attributes.push(("sex", records.iter().map(|&r| text(&sex[r])).collect()));
    }
    if let Some(race) = &meta.race {
        attributes.push(("race", records.iter().map(|&r| text(&race[r])).collect()));
    }
    if let Some(age) = &meta.age {
        attributes.push(("age", records.iter().map(|&r| age_band(age[r])).collect()));
    }
    if config.split.is_none() && meta.split_names.len() > 1 {
        attributes.push(("split", records.iter().map(|&r| meta.split_name(r).to_string()).collect()));
    }
    let mut described = Vec::new();
    let mut codes = Vec::new();
    for (attribute, values) in attributes {
        let mut distinct: Vec<String> = values.clone();
        distinct.sort();
        distinct.dedup();
        let index: HashMap<&str, u32> =
            distinct.iter().enumerate().map(|(i, v)| (v.as_str(), i as u32)).collect();
        codes.push(values.iter().map(|v| index[v.as_str()]).collect());
        described.push(SubgroupAttribute { attribute: attribute.to_string(), values: distinct });
    }
    (described, codes)
}

/// The attribute names subgroups can have (reports hold them as static strings).
fn attribute_name(name: &str) -> Result<&'static str> {
    ["sex", "race", "age", "split"]
        .into_iter()
        .find(|&a| a == name)
        .ok_or_else(|| Error::config(format!("unknown subgroup attribute `{name}`")))
}

fn subgroups(
    ctx: &DirectionContext,
    records: &[QueryRecord],
    queries: &[RankedQuery],
    config: &RelinkConfig,
) -> Result<Vec<SubgroupReport>> {
    let mut out = Vec::new();
    for (k, attribute) in ctx.subgroups.iter().enumerate() {
        let name = attribute_name(&attribute.attribute)?;
        for (code, value) in attribute.values.iter().enumerate() {
            let members: Vec<RankedQuery> = records
                .iter()
                .zip(queries)
                .filter(|(r, _)| r.subgroups.get(k) == Some(&(code as u32)))
                .map(|(_, q)| *q)
                .collect();
            if members.is_empty() {
                continue;
            }
            let s = summarize(&members, config.level);
            out.push(SubgroupReport {
                attribute: name,
                value: value.clone(),
                n_queries: members.len(),
                recall_at_1: s.recall_at_1.value,
                ci95_recall_at_1: s.recall_at_1.ci(),
                mrr: s.mrr,
                chance_at_1: s.chance_at_1,
                lift_at_1: s.lift_at_1,
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;
    use rand_distr::{Distribution, StandardNormal};

    use super::*;
    use crate::cohort::metadata::MetadataBuilder;
    use crate::cohort::{View, N_FINDINGS};
    use crate::engine::NoProgress;

    /// A small in-memory cohort with known structure (until `synth` lands): patients with
    /// 1-3 studies of 1-2 records; records of one study share one report vector; image and
    /// report share a findings component (the "disease shortcut") and, scaled by `signal`,
    /// a per-study instance component (what re-linkage exploits).
    fn cohort(seed: u64, n_patients: usize, dim: usize, signal: f32) -> Cohort {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let normal = |rng: &mut ChaCha8Rng| -> f32 { StandardNormal.sample(rng) };
        let finding_axes: Vec<Vec<f32>> =
            (0..N_FINDINGS).map(|_| (0..dim).map(|_| normal(&mut rng)).collect()).collect();
        let mut b = MetadataBuilder {
            study_ids: Some(Vec::new()),
            splits: Some(Vec::new()),
            findings: Some(Vec::new()),
            sex: Some(Vec::new()),
            ..Default::default()
        };
        let (mut image, mut report) = (Vec::new(), Vec::new());
        for p in 0..n_patients {
            let sex = if rng.random_bool(0.5) { "F" } else { "M" };
            let split = if rng.random_bool(0.8) { "test" } else { "train" };
            for s in 0..rng.random_range(1..4) {
                // Findings: a few common patterns so pathology-matched pools have exact matches.
                let pattern = rng.random_range(0..6u32);
                let labels: [Label; N_FINDINGS] = std::array::from_fn(|k| {
                    if (pattern >> (k % 3)) & 1 == 1 && k < 6 {
                        Label::Positive
                    } else {
                        Label::Negative
                    }
                });
                let shared: Vec<f32> = (0..dim)
                    .map(|j| {
                        (0..N_FINDINGS)
                            .filter(|&k| labels[k] == Label::Positive)
                            .map(|k| finding_axes[k][j])
                            .sum::<f32>()
                    })
                    .collect();
                let instance: Vec<f32> = (0..dim).map(|_| normal(&mut rng)).collect();
                let report_row: Vec<f32> =
                    (0..dim).map(|j| shared[j] + signal * instance[j] + normal(&mut rng)).collect();
                for r in 0..rng.random_range(1..3) {
                    b.ids.push(format!("p{p}s{s}r{r}"));
                    b.patient_ids.push(format!("p{p}"));
                    b.study_ids.as_mut().unwrap().push(format!("s{s}"));
                    b.splits.as_mut().unwrap().push(split.to_string());
                    b.findings.as_mut().unwrap().push(labels);
                    b.sex.as_mut().unwrap().push(Some(sex.to_string()));
                    image.extend((0..dim).map(|j| shared[j] + signal * instance[j] + normal(&mut rng)));
                    report.extend_from_slice(&report_row);
                }
            }
        }
        let meta = b.build(std::path::Path::new("<test>"), 0).unwrap();
        let n = meta.len();
        let views = vec![
            View::from_memory("image", n, dim, image).unwrap(),
            View::from_memory("report", n, dim, report).unwrap(),
        ];
        Cohort::from_parts("<test>", meta, views).unwrap()
    }

    fn config(pool_sizes: Vec<usize>) -> RelinkConfig {
        RelinkConfig { pool_sizes, trials: 10, bootstrap_replicates: 200, ..RelinkConfig::default() }
    }

    #[test]
    fn recall_rises_with_instance_signal() {
        let mut last = -1.0;
        for signal in [0.0f32, 0.5, 1.0, 2.0] {
            let c = cohort(1, 150, 24, signal);
            let r = relink(&c, &config(vec![10]), &NoProgress).unwrap();
            let full = &r.forward.full;
            assert!(full.recall_at_1 > last, "signal {signal}: {} after {last}", full.recall_at_1);
            last = full.recall_at_1;
            assert!(
                full.ci95_recall_at_1[0] <= full.recall_at_1 && full.recall_at_1 <= full.ci95_recall_at_1[1]
            );
            let boot = full.bootstrap_ci95_recall_at_1.unwrap();
            assert!(boot[0] <= full.recall_at_1 && full.recall_at_1 <= boot[1]);
            // Records of a study share a report: study-level matching excludes the twins.
            assert!(r.forward.exclusions.excluded_same_study > 0);
        }
        assert!(last > 0.5, "strong signal should link most records, got {last}");
    }

    #[test]
    fn pathology_matched_pools_lower_recall_and_lift_grows_with_pool_size() {
        let c = cohort(2, 400, 32, 0.6);
        let cfg = RelinkConfig { hard_negatives: true, ..config(vec![2, 10, 50, 5000]) };
        let r = relink(&c, &cfg, &NoProgress).unwrap();
        let d = &r.forward;
        let pool =
            |size: usize, kind: &str| d.pools.iter().find(|p| p.pool_size == size && p.kind == kind).unwrap();
        let mut last_lift = 0.0;
        for size in [2, 10, 50] {
            let random = pool(size, "random");
            let matched = pool(size, "pathology_matched");
            assert!(random.lift_at_1 > last_lift, "lift should grow with pool size");
            last_lift = random.lift_at_1;
            // Same-findings negatives are harder, but the instance signal survives them.
            assert!(matched.recall_at_1 < random.recall_at_1, "size {size}");
            assert!(matched.recall_at_1 > matched.chance_at_1 * 1.5, "size {size}");
            assert!(matched.exact_match_fraction.unwrap() > 0.5);
            // Monte-Carlo pools agree with the exact expectation within their interval.
            for p in [random, matched] {
                let half = (p.ci95_recall_at_1[1] - p.ci95_recall_at_1[0]) / 2.0;
                assert!((p.recall_at_1 - p.expected_recall_at_1).abs() < half, "{p:?}");
            }
        }
        assert!(last_lift < d.full.lift_at_1, "the full database has the largest lift");
        // The pool larger than the split is skipped, with a note, for both kinds.
        assert_eq!(d.skipped_pools.iter().filter(|s| s.pool_size == 5000).count(), 2);
        assert!(d.subgroups.iter().any(|s| s.attribute == "sex" && s.value == "F"));
        // The exact curve falls with pool size and stays above the full-database recall.
        let curve = &d.expected_recall_curve;
        assert!(curve.len() > 4 && curve[0].pool_size == 2);
        assert!(curve.windows(2).all(|w| w[1].expected_recall_at_1 <= w[0].expected_recall_at_1 + 1e-12));
        assert!(curve.last().unwrap().expected_recall_at_1 >= d.full.recall_at_1 - 1e-12);
        let at_10 = curve.iter().find(|p| p.pool_size == 10).unwrap();
        assert!((at_10.expected_recall_at_1 - pool(10, "random").expected_recall_at_1).abs() < 1e-12);
    }

    #[test]
    fn patient_level_matching_is_at_least_study_level_and_both_directions_run() {
        let c = cohort(3, 120, 16, 0.8);
        let study = relink(&c, &config(vec![10]), &NoProgress).unwrap();
        let cfg =
            RelinkConfig { match_level: MatchLevel::Patient, direction: Direction::Both, ..config(vec![10]) };
        let patient = relink(&c, &cfg, &NoProgress).unwrap();
        assert!(patient.forward.full.recall_at_1 >= study.forward.full.recall_at_1);
        assert!(patient.forward.exclusions.extra_positives > 0);
        let reverse = patient.reverse.as_ref().unwrap();
        assert_eq!((reverse.query_view.as_str(), reverse.gallery_view.as_str()), ("report", "image"));
        assert_eq!(reverse.n_queries, patient.forward.n_queries);
    }

    #[test]
    fn bad_configurations_are_rejected_with_the_flag_named() {
        let c = cohort(4, 20, 8, 1.0);
        let err = |cfg: RelinkConfig| relink(&c, &cfg, &NoProgress).unwrap_err().to_string();
        let same = RelinkConfig { gallery_view: "image".into(), ..RelinkConfig::default() };
        assert!(err(same).contains("--query and --gallery"));
        assert!(err(RelinkConfig { trials: 0, ..RelinkConfig::default() }).contains("--trials"));
        assert!(err(config(vec![1])).contains("--pools"));
        let e = err(config(vec![100_000]));
        assert!(e.contains("--pools") && e.contains("exceeds"), "{e}");
        let e = err(RelinkConfig { split: Some("validation".into()), ..RelinkConfig::default() });
        assert!(e.contains("validation") && e.contains("test"), "{e}");
        let e = err(RelinkConfig { gallery_view: "text".into(), ..RelinkConfig::default() });
        assert!(e.contains("text") && e.contains("report"), "{e}");
    }
}
