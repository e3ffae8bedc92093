//! What the report shows, read out of `run.json`'s audit JSON. The audits' JSON is the
//! interface (keys named in docs/REPORTS.md), so this module never touches the audits' Rust
//! types: it picks the aggregate figures it knows by key, copies the numbers unchanged (every
//! number rendered comes from here, none is recomputed), and ignores everything else —
//! unknown keys and per-record data alike. Missing keys leave a figure out; they are not
//! errors.
//!
//! Numbers may be given as a plain number with a `ci95_<key>: [low, high]` sibling (the
//! audits' convention) or as an `Estimate` object `{"value", "ci_low", "ci_high"}`.

use serde_json::Value;

use super::read::{attributes, num, reid_entries, relink, text, utility, Obj};
use super::run::{RunEntry, RunFile};

mod mitigation;

use mitigation::{mitigate, privacy_audit};
pub use mitigation::{Epsilon, Mitigate, MitigateCohort, MitigatePoint, PrivacyAudit, PrivacyAuditPoint};

/// A figure with its optional 95% interval, both copied from the JSON.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Figure {
    /// The point value.
    pub value: f64,
    /// `[low, high]`, when the audit reported one.
    pub ci95: Option<[f64; 2]>,
}

/// The candidate pool a figure refers to.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Pool {
    /// A pool of `N` candidates (the true match and N-1 negatives).
    Size(u64),
    /// The full database (every gallery item).
    Full,
}

/// One pool row of a re-linkage audit.
#[derive(Debug, Clone, PartialEq)]
pub struct RelinkPool {
    /// Pool size N.
    pub pool_size: u64,
    /// `random` or `pathology_matched` (as written by the audit).
    pub kind: String,
    /// Number of seeded trials.
    pub trials: Option<f64>,
    /// Recall@1 with its interval.
    pub recall_at_1: Option<Figure>,
    /// Chance level 1/N as reported.
    pub chance_at_1: Option<f64>,
    /// Recall@1 / chance as reported.
    pub lift_at_1: Option<f64>,
    /// Exact (hypergeometric) expectation of Recall@1 for a random pool of this size.
    pub expected_recall_at_1: Option<f64>,
    /// Pathology-matched pools: share of the negatives whose 14 findings equal the true
    /// match's exactly (the rest have the nearest findings by Hamming distance).
    pub exact_match_fraction: Option<f64>,
}

/// A pool setting the audit could not evaluate (`skipped_pools`).
#[derive(Debug, Clone, PartialEq)]
pub struct SkippedPool {
    /// Pool size N.
    pub pool_size: u64,
    /// `random` or `pathology_matched`.
    pub kind: String,
    /// Why, as the audit wrote it.
    pub reason: String,
}

/// An attack (or attacker) that was requested but did not run (`skipped_attacks`).
#[derive(Debug, Clone, PartialEq)]
pub struct SkippedAttack {
    /// Attack name.
    pub name: String,
    /// Why, as the audit wrote it.
    pub reason: String,
    /// Leaked pairs, for an alignment attack skipped at one m.
    pub leaked_pairs: Option<f64>,
    /// Pool size, for an attack skipped at one pool.
    pub pool_size: Option<u64>,
}

/// Where an attacker's or a probe's side data came from (`side`).
#[derive(Debug, Clone, PartialEq)]
pub struct Side {
    /// `split train`, `cross_fit`, ...
    pub source: String,
    /// Folds of a cross-fitted protocol.
    pub folds: Option<f64>,
    /// Labelled pairs available.
    pub n_pairs: Option<f64>,
}

impl Side {
    /// Whether the side data was cross-fitted within the audited split.
    pub fn cross_fitted(&self) -> bool {
        self.source == "cross_fit" || self.source == "cross-fit"
    }
}

/// A point of the exact expected Recall@1 curve (`expected_recall_curve`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CurvePoint {
    /// Pool size N.
    pub pool_size: f64,
    /// Exact expected Recall@1 of a random pool of N.
    pub expected_recall_at_1: f64,
    /// 1/N as reported.
    pub chance_at_1: Option<f64>,
}

/// Full-database Recall@1 of one subgroup (`subgroups`).
#[derive(Debug, Clone, PartialEq)]
pub struct Subgroup {
    /// `sex`, `age`, `race`, `split`.
    pub attribute: String,
    /// The subgroup's value (`F`, `40-59`, ...).
    pub value: String,
    /// Queries in the subgroup.
    pub n_queries: Option<f64>,
    /// Recall@1 with its interval.
    pub recall_at_1: Option<Figure>,
    /// Chance level.
    pub chance_at_1: Option<f64>,
    /// Recall@1 / chance.
    pub lift_at_1: Option<f64>,
}

/// Full-database figures of a re-linkage audit.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RelinkFull {
    /// Recall@1 with its interval.
    pub recall_at_1: Option<Figure>,
    /// Recall@5.
    pub recall_at_5: Option<f64>,
    /// Recall@10.
    pub recall_at_10: Option<f64>,
    /// Mean reciprocal rank.
    pub mrr: Option<f64>,
    /// Median rank of the true match.
    pub median_rank: Option<f64>,
    /// Chance level 1/n_gallery.
    pub chance_at_1: Option<f64>,
    /// Recall@1 / chance.
    pub lift_at_1: Option<f64>,
}

/// One attack of the attack comparison (issue 8).
#[derive(Debug, Clone, PartialEq)]
pub struct Attack {
    /// Attack name (`cosine`, `csls`, `inverted_softmax`, `assignment`, `procrustes`, ...).
    pub name: String,
    /// Pool size the figure refers to; `None` means the full database.
    pub pool_size: Option<u64>,
    /// Number of leaked pairs (alignment attacks).
    pub leaked_pairs: Option<f64>,
    /// Recall@1 (for re-ID: Rank-1) of the attack.
    pub recall_at_1: Option<Figure>,
    /// The same attack on the control set.
    pub control_recall_at_1: Option<f64>,
    /// (attack - control) / (1 - control).
    pub normalized_risk: Option<Figure>,
    /// Chance level at this pool.
    pub chance_at_1: Option<f64>,
    /// Recall@1 / chance.
    pub lift_at_1: Option<f64>,
}

/// The attack comparison attached to a relink or re-ID audit.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Attacks {
    /// `strongest_attack`: the name of the attack the audit found strongest.
    pub strongest: Option<String>,
    /// `strongest_attack_pool_size`: the pool at which it is strongest (absent: the full
    /// database, or not said).
    pub strongest_pool_size: Option<u64>,
    /// `strongest_attack_leaked_pairs`: which of an alignment attack's rows (one per number
    /// of leaked pairs) is the strongest.
    pub strongest_leaked_pairs: Option<f64>,
    /// Every attack row.
    pub attacks: Vec<Attack>,
    /// Attacks requested but not run, with the reason.
    pub skipped: Vec<SkippedAttack>,
    /// The attacker's side data, as the audit describes it.
    pub side: Option<Side>,
}

/// A cross-modal re-linkage audit (issue 4).
#[derive(Debug, Clone, PartialEq)]
pub struct Relink {
    /// The run entry's label or key, naming this measurement in tables and legends.
    pub name: String,
    /// The model it measures (see [`ReportModel::models`]).
    pub model: String,
    /// Query view (e.g. `image`).
    pub query_view: String,
    /// Gallery view (e.g. `report`).
    pub gallery_view: String,
    /// Split audited, if the audit says.
    pub split: Option<String>,
    /// Number of queries.
    pub n_queries: Option<f64>,
    /// Number of gallery items.
    pub n_gallery: Option<f64>,
    /// Full-database figures.
    pub full: Option<RelinkFull>,
    /// Pool rows in the audit's order.
    pub pools: Vec<RelinkPool>,
    /// Attack comparison, if present.
    pub attacks: Option<Attacks>,
    /// Pools the audit could not evaluate.
    pub skipped_pools: Vec<SkippedPool>,
    /// The exact expected Recall@1 of random pools over a grid of N, ascending.
    pub expected_curve: Vec<CurvePoint>,
    /// Full-database Recall@1 per subgroup.
    pub subgroups: Vec<Subgroup>,
    /// The reverse direction (gallery view as queries), with `--direction both`.
    pub reverse: Option<Box<Relink>>,
}

/// A patient re-identification audit (issue 5).
#[derive(Debug, Clone, PartialEq)]
pub struct Reid {
    /// The run entry's label or key.
    pub name: String,
    /// The model it measures.
    pub model: String,
    /// View audited.
    pub view: String,
    /// Trained attacker (e.g. `linear-metric`), if this is not plain nearest neighbour.
    pub attacker: Option<String>,
    /// Number of queries.
    pub n_queries: Option<f64>,
    /// Gallery size.
    pub n_gallery: Option<f64>,
    /// Rank-1 re-identification rate.
    pub rank_1: Option<Figure>,
    /// CMC curve: (rank, identification rate), sorted by rank.
    pub cmc: Vec<(u64, Figure)>,
    /// Mean average precision.
    pub map: Option<Figure>,
    /// Same/different-patient verification AUROC.
    pub verification_auroc: Option<Figure>,
    /// Verification ROC curve points (false positive rate, true positive rate).
    pub roc: Vec<(f64, f64)>,
    /// Attack comparison, if present.
    pub attacks: Option<Attacks>,
    /// Attackers requested but not run (`skipped_attacks`, `linear_metric_skipped`).
    pub skipped: Vec<SkippedAttack>,
    /// The trained attacker's training data (`linear_metric.side`).
    pub side: Option<Side>,
}

/// One attribute of the attribute-inference audit.
#[derive(Debug, Clone, PartialEq)]
pub struct AttributeTarget {
    /// `sex`, `age`, `race`, ...
    pub name: String,
    /// AUROC over all test records.
    pub auroc: Option<Figure>,
    /// AUROC on re-identified records.
    pub auroc_reidentified: Option<Figure>,
    /// AUROC on records not re-identified.
    pub auroc_not_reidentified: Option<Figure>,
    /// DeLong p-value of the difference.
    pub p_value: Option<f64>,
    /// ROC curve points, if the audit wrote them.
    pub roc: Vec<(f64, f64)>,
}

/// An attribute-inference audit (issue 5).
#[derive(Debug, Clone, PartialEq)]
pub struct Attributes {
    /// The run entry's label or key.
    pub name: String,
    /// The model it measures.
    pub model: String,
    /// View probed.
    pub view: String,
    /// One row per attribute.
    pub targets: Vec<AttributeTarget>,
    /// Where the probes' training data came from.
    pub side: Option<Side>,
}

/// A utility audit: linear-probe macro AUROC over the findings (issue 5).
#[derive(Debug, Clone, PartialEq)]
pub struct Utility {
    /// The run entry's label or key.
    pub name: String,
    /// The model it measures.
    pub model: String,
    /// View probed.
    pub view: String,
    /// Macro AUROC.
    pub macro_auroc: Option<Figure>,
    /// Per-finding AUROC, in the audit's order.
    pub per_finding: Vec<(String, Figure)>,
    /// Where the probes' training data came from.
    pub side: Option<Side>,
}

/// Provenance of one run entry.
#[derive(Debug, Clone, PartialEq)]
pub struct RunInfo {
    /// Entry key.
    pub key: String,
    /// The model the entry measures (see [`ReportModel::models`]); `None` for entries of
    /// kinds the report does not group by model.
    pub model: Option<String>,
    /// Command line.
    pub command: Vec<String>,
    /// Seed.
    pub seed: Option<u64>,
    /// Start (Unix seconds).
    pub started_unix: u64,
    /// Wall seconds.
    pub seconds: f64,
}

/// Cohort summary figures.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct CohortInfo {
    /// Synthetic cohort?
    pub synthetic: Option<bool>,
    /// Where it was loaded from.
    pub source: Option<String>,
    /// Records.
    pub n_records: Option<f64>,
    /// Patients.
    pub n_patients: Option<f64>,
    /// Studies.
    pub n_studies: Option<f64>,
    /// (split, records).
    pub splits: Vec<(String, f64)>,
    /// (view, n, dim).
    pub views: Vec<(String, Option<f64>, Option<f64>)>,
    /// Findings present?
    pub has_findings: Option<bool>,
    /// Demographic columns present.
    pub demographics: Vec<String>,
}

/// Everything the renderers show, extracted from one `run.json`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ReportModel {
    /// linkrisk version that created the run.
    pub linkrisk_version: String,
    /// Creation time of the run directory.
    pub created_unix: u64,
    /// Cohort summary.
    pub cohort: Option<CohortInfo>,
    /// The models measured, in the order first recorded: each entry's label, or for an
    /// entry without one the cohort directory its command line names (what a label
    /// defaults to), else the cohort summary's source, else `unlabelled model`.
    pub models: Vec<String>,
    /// Re-linkage audits (standalone `attacks` audits are folded in as relink entries).
    pub relink: Vec<Relink>,
    /// Re-ID audits.
    pub reid: Vec<Reid>,
    /// Attribute audits.
    pub attributes: Vec<Attributes>,
    /// Utility audits.
    pub utility: Vec<Utility>,
    /// Mitigation sweeps.
    pub mitigate: Vec<Mitigate>,
    /// Empirical privacy audits (`linkrisk privacy-audit`).
    pub privacy_audits: Vec<PrivacyAudit>,
    /// Provenance of every entry (including audit kinds the report does not know).
    pub runs: Vec<RunInfo>,
}

impl ReportModel {
    /// Read the report's figures out of a run file.
    pub fn from_run(run: &RunFile) -> ReportModel {
        let mut model = ReportModel {
            linkrisk_version: run.linkrisk_version.clone(),
            created_unix: run.created_unix,
            cohort: run.cohort.as_ref().and_then(Value::as_object).map(cohort_info),
            ..ReportModel::default()
        };
        for entry in &run.runs {
            let of = model_name(entry, model.cohort.as_ref());
            model.runs.push(RunInfo {
                key: entry.key.clone(),
                model: Some(of.clone()),
                command: entry.command.clone(),
                seed: entry.seed,
                started_unix: entry.started_unix,
                seconds: entry.seconds,
            });
            let Some(audit) = entry.audit.as_object() else { continue };
            let name = entry_name(entry);
            let kind = audit.get("audit").and_then(Value::as_str).unwrap_or_default();
            if ["relink", "attacks", "reid", "attributes", "utility"].contains(&kind)
                && !model.models.contains(&of)
            {
                model.models.push(of.clone());
            }
            match kind {
                "relink" | "attacks" => {
                    let mut r = relink(audit, name);
                    r.model = of.clone();
                    if let Some(rev) = r.reverse.as_mut() {
                        rev.model = of;
                    }
                    model.relink.push(r);
                }
                "reid" => model.reid.extend(reid_entries(audit, name).into_iter().map(|mut r| {
                    r.model = of.clone();
                    r
                })),
                "attributes" => model.attributes.push(Attributes { model: of, ..attributes(audit, name) }),
                "utility" => model.utility.push(Utility { model: of, ..utility(audit, name) }),
                // Without a label, the sweep is named after the model it was trained for.
                "mitigate" => model.mitigate.push(mitigate(audit, entry.label.clone().unwrap_or(of))),
                "privacy_audit" => {
                    model.privacy_audits.push(privacy_audit(audit, entry.label.clone().unwrap_or(of)))
                }
                _ => {}
            }
        }
        model
    }

    /// The relink audits of `model`.
    pub fn relink_of<'a>(&'a self, model: &str) -> impl Iterator<Item = &'a Relink> + 'a {
        let model = model.to_string();
        self.relink.iter().filter(move |r| r.model == model)
    }

    /// The re-ID entries of `model`.
    pub fn reid_of<'a>(&'a self, model: &str) -> impl Iterator<Item = &'a Reid> + 'a {
        let model = model.to_string();
        self.reid.iter().filter(move |r| r.model == model)
    }

    /// The attribute audits of `model`.
    pub fn attributes_of<'a>(&'a self, model: &str) -> impl Iterator<Item = &'a Attributes> + 'a {
        let model = model.to_string();
        self.attributes.iter().filter(move |r| r.model == model)
    }

    /// The utility audits of `model`.
    pub fn utility_of<'a>(&'a self, model: &str) -> impl Iterator<Item = &'a Utility> + 'a {
        let model = model.to_string();
        self.utility.iter().filter(move |r| r.model == model)
    }

    /// Whether the report has any audit section at all.
    pub fn has_audits(&self) -> bool {
        !(self.relink.is_empty()
            && self.reid.is_empty()
            && self.attributes.is_empty()
            && self.utility.is_empty()
            && self.mitigate.is_empty()
            && self.privacy_audits.is_empty())
    }
}

impl Relink {
    /// Every pool size that has a figure, ascending, with `Full` last when present.
    pub fn pool_sizes(&self) -> Vec<Pool> {
        let mut sizes: Vec<u64> = self.pools.iter().map(|p| p.pool_size).collect();
        sizes.sort_unstable();
        sizes.dedup();
        let mut pools: Vec<Pool> = sizes.into_iter().map(Pool::Size).collect();
        if self.full.is_some() {
            pools.push(Pool::Full);
        }
        pools
    }

    /// The random pool of size `n`, if measured.
    pub fn random_pool(&self, n: u64) -> Option<&RelinkPool> {
        self.pools.iter().find(|p| p.pool_size == n && p.kind == "random")
    }

    /// Human name of the direction, `image → report`.
    pub fn direction(&self) -> String {
        format!("{} → {}", self.query_view, self.gallery_view)
    }

    /// This direction and the reverse one, when measured.
    pub fn directions(&self) -> Vec<&Relink> {
        std::iter::once(self).chain(self.reverse.as_deref()).collect()
    }
}

/// The model an entry measures: its label; without one, the cohort directory its command
/// line names (`linkrisk relink COHORT ...`: the label's default), else the file name of the
/// cohort summary's source, else `unlabelled model`.
fn model_name(entry: &RunEntry, cohort: Option<&CohortInfo>) -> String {
    if let Some(label) = &entry.label {
        return label.clone();
    }
    let file_name = |path: &str| {
        std::path::Path::new(path.trim_end_matches('/'))
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .filter(|n| !n.is_empty())
    };
    let positional = entry.command.get(2).filter(|a| !a.starts_with('-')).and_then(|a| file_name(a));
    positional
        .or_else(|| cohort.and_then(|c| c.source.as_deref()).and_then(file_name))
        .unwrap_or_else(|| "unlabelled model".to_string())
}

fn entry_name(entry: &RunEntry) -> String {
    match &entry.label {
        Some(label) => label.clone(),
        None if !entry.key.is_empty() => entry.key.clone(),
        None => entry.audit.get("audit").and_then(Value::as_str).unwrap_or("audit").to_string(),
    }
}

fn cohort_info(c: &Obj) -> CohortInfo {
    let flag = |k: &str| c.get(k).and_then(Value::as_bool);
    CohortInfo {
        synthetic: flag("synthetic"),
        source: text(c, "source"),
        n_records: num(c, "n_records"),
        n_patients: num(c, "n_patients"),
        n_studies: num(c, "n_studies"),
        splits: c
            .get("splits")
            .and_then(Value::as_array)
            .map(|s| {
                s.iter()
                    .filter_map(Value::as_object)
                    .filter_map(|s| Some((text(s, "name")?, num(s, "n_records")?)))
                    .collect()
            })
            .unwrap_or_default(),
        views: c
            .get("views")
            .and_then(Value::as_array)
            .map(|v| {
                v.iter()
                    .filter_map(Value::as_object)
                    .filter_map(|v| Some((text(v, "name")?, num(v, "n"), num(v, "dim"))))
                    .collect()
            })
            .unwrap_or_default(),
        has_findings: flag("has_findings"),
        demographics: c
            .get("demographics")
            .and_then(Value::as_array)
            .map(|d| d.iter().filter_map(Value::as_str).map(str::to_string).collect())
            .unwrap_or_default(),
    }
}
