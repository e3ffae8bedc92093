//! The mitigation report's types: its JSON is the `linkrisk mitigate` output
//! (docs/REPORTS.md, "The `mitigate` JSON").

use serde::Serialize;

use super::{HeadInit, MitigateSplits};
use crate::audit::mitigate::CrossModalUtility;
use crate::audit::relink::RelinkReport;
use crate::audit::utility::UtilityReport;
use crate::train::{PrivacyLedger, TrainConfig};

/// Re-linkage on each subset, with the relative reductions against the audited model and
/// the non-private heads.
#[derive(Debug, Clone, Serialize)]
pub struct SubsetRelink {
    /// The relink audit of this subset.
    #[serde(flatten)]
    pub report: RelinkReport,
    /// Pool size the reduction is measured at: [`REDUCTION_POOL`](super::REDUCTION_POOL) when evaluated on this
    /// subset, else its largest evaluated random pool; null = the full database.
    pub reduction_pool_size: Option<usize>,
    /// 1 - Recall@1 / Recall@1 of the non-private heads, random pools of
    /// `reduction_pool_size` (null for the non-private point and the references).
    pub relative_reduction: Option<f64>,
    /// 1 - Recall@1 / Recall@1 of the audited model on the same records and pools (null for
    /// the audited model itself, or when it was not evaluated); negative when these heads
    /// link more than the audited model.
    pub relative_reduction_vs_audited: Option<f64>,
}

/// One value per subset (members, held-out, external).
#[derive(Debug, Clone, Serialize)]
pub struct BySubset<T> {
    /// Training members.
    pub members: T,
    /// Held-out patients.
    pub held_out: T,
    /// External cohort.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub external: Option<T>,
}

impl<T> BySubset<T> {
    /// `(key, value)` per present subset: `members`, `held_out`, `external`.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, &T)> {
        [
            ("members", Some(&self.members)),
            ("held_out", Some(&self.held_out)),
            ("external", self.external.as_ref()),
        ]
        .into_iter()
        .filter_map(|(name, v)| v.map(|v| (name, v)))
    }

    pub(super) fn iter_mut(&mut self) -> impl Iterator<Item = (&'static str, &mut T)> {
        [
            ("members", Some(&mut self.members)),
            ("held_out", Some(&mut self.held_out)),
            ("external", self.external.as_mut()),
        ]
        .into_iter()
        .filter_map(|(name, v)| v.map(|v| (name, v)))
    }
}

/// Utility of one set of embeddings.
#[derive(Debug, Clone, Serialize)]
pub struct PointUtility {
    /// Image-side linear-probe macro AUROC on the held-out split (paper 1's utility; the
    /// figure the report plots).
    pub macro_auroc: Option<f64>,
    /// Its 95% interval.
    pub ci95_macro_auroc: Option<[f64; 2]>,
    /// The same on the external split.
    pub external_macro_auroc: Option<f64>,
    /// Its 95% interval.
    pub ci95_external_macro_auroc: Option<[f64; 2]>,
    /// `macro_auroc` minus the non-private heads' (null for non-private and baseline).
    pub change_vs_non_private: Option<f64>,
    /// `external_macro_auroc` minus the non-private heads'.
    pub external_change_vs_non_private: Option<f64>,
    /// `macro_auroc` minus the audited model's (null for the audited model, or without it).
    pub change_vs_audited: Option<f64>,
    /// `external_macro_auroc` minus the audited model's.
    pub external_change_vs_audited: Option<f64>,
    /// Cross-modal (zero-shot, report-prototype) macro AUROC on held-out images.
    pub cross_modal_macro_auroc: Option<f64>,
    /// The same on external images.
    pub cross_modal_external_macro_auroc: Option<f64>,
    /// The utility audit on the held-out split.
    pub held_out: UtilityReport,
    /// The utility audit on the external split.
    pub external: Option<UtilityReport>,
    /// Cross-modal utility on held-out and external images.
    pub cross_modal: Vec<CrossModalUtility>,
}

/// One point of the frontier.
#[derive(Debug, Clone, Serialize)]
pub struct MitigatePoint {
    /// Epsilon of the heads (null = non-private).
    pub epsilon: Option<f64>,
    /// `inf` or the epsilon, as given.
    pub epsilon_label: String,
    /// Whether the heads were trained with DP-SGD.
    pub private: bool,
    /// Delta (null = non-private).
    pub delta: Option<f64>,
    /// The privacy ledger of the heads (as `privacy.json` of `linkrisk train-heads`).
    pub privacy: PrivacyLedger,
    /// Re-linkage of the projected views per subset.
    pub relink: BySubset<SubsetRelink>,
    /// Utility of the projected views.
    pub utility: PointUtility,
    /// Seconds spent training.
    pub seconds_training: f64,
    /// Seconds for the whole point.
    pub seconds: f64,
}

/// A reference set of embeddings evaluated like a point (no training at this point).
#[derive(Debug, Clone, Serialize)]
pub struct ReferencePoint {
    /// What it is.
    pub description: String,
    /// Views audited.
    pub views: [String; 2],
    /// Re-linkage per subset.
    pub relink: BySubset<SubsetRelink>,
    /// Utility.
    pub utility: PointUtility,
    /// The warm-start heads' ledger (warm start only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub privacy: Option<PrivacyLedger>,
    /// Seconds.
    pub seconds: f64,
}

/// One row of the reduction table.
#[derive(Debug, Clone, Serialize)]
pub struct Reduction {
    /// Epsilon of the private point.
    pub epsilon: f64,
    /// `members`, `held_out` or `external`.
    pub cohort: &'static str,
    /// Its split.
    pub split: String,
    /// Pool size (null = the full database).
    pub pool_size: Option<usize>,
    /// `random`, `pathology_matched` or `full`.
    pub kind: &'static str,
    /// Recall@1 of the private heads.
    pub recall_at_1: f64,
    /// Recall@1 of the non-private heads.
    pub non_private_recall_at_1: f64,
    /// Recall@1 of a random ranking.
    pub chance_at_1: f64,
    /// 1 - recall_at_1 / non_private_recall_at_1.
    pub relative_reduction: f64,
    /// 1 - (recall_at_1 - chance) / (non_private_recall_at_1 - chance): the share of the
    /// above-chance risk removed.
    pub relative_reduction_above_chance: f64,
    /// Recall@1 of the audited model on the same records and pools (null without it).
    pub audited_recall_at_1: Option<f64>,
    /// 1 - recall_at_1 / audited_recall_at_1 (negative: the DP heads link more).
    pub relative_reduction_vs_audited: Option<f64>,
}

/// One row of the utility-change table.
#[derive(Debug, Clone, Serialize)]
pub struct UtilityChange {
    /// Epsilon of the private point.
    pub epsilon: f64,
    /// `held_out` or `external`.
    pub cohort: &'static str,
    /// `linear_probe` (image side) or `cross_modal`.
    pub measure: &'static str,
    /// Macro AUROC of the private heads.
    pub macro_auroc: f64,
    /// Macro AUROC of the non-private heads.
    pub non_private_macro_auroc: f64,
    /// The difference (private - non-private).
    pub change: f64,
    /// Macro AUROC of the audited model (null without it).
    pub audited_macro_auroc: Option<f64>,
    /// private - audited.
    pub change_vs_audited: Option<f64>,
}

/// Recall@1 in random pools of one size (one cell of a frontier row).
#[derive(Debug, Clone, Serialize)]
pub struct PoolRecall {
    /// Pool size.
    pub pool_size: usize,
    /// Recall@1 in random pools.
    pub recall_at_1: f64,
    /// Its 95% interval (patient bootstrap when run, else the relink audit's analytic one).
    pub ci95_recall_at_1: [f64; 2],
    /// Recall@1 in pathology-matched pools of the same size, when evaluated.
    pub pathology_matched_recall_at_1: Option<f64>,
    /// Recall@1 of a random ranking.
    pub chance_at_1: f64,
}

/// One row of a cohort's frontier table: one set of embeddings on that cohort's records.
#[derive(Debug, Clone, Serialize)]
pub struct FrontierRow {
    /// `audited` (the cohort's own views), `warm_start`, `non_private` or `dp`.
    pub heads: &'static str,
    /// Epsilon of DP heads (null otherwise).
    pub epsilon: Option<f64>,
    /// Display label (`audited model`, `warm start`, `non-private`, `epsilon 0.34`).
    pub label: String,
    /// Recall@1 at the table's `pool_size` (random pools; the full database when null).
    pub recall_at_1_at_pool: Option<f64>,
    /// Recall@1 in random pools, per evaluated size.
    pub recall_at_1: Vec<PoolRecall>,
    /// Recall@1 against the split's full database.
    pub full_recall_at_1: f64,
    /// Chance at 1 in the full database.
    pub full_chance_at_1: f64,
    /// Image-side linear-probe macro AUROC on this cohort's records (null for members:
    /// probes are fitted on them).
    pub macro_auroc: Option<f64>,
    /// Cross-modal (zero-shot) macro AUROC on this cohort's records (null for members).
    pub cross_modal_macro_auroc: Option<f64>,
    /// 1 - recall_at_1_at_pool / the audited model's (null for the audited row or without
    /// it); negative when these embeddings link more than the audited model.
    pub relative_reduction_vs_audited: Option<f64>,
    /// macro_auroc - the audited model's.
    pub macro_auroc_change_vs_audited: Option<f64>,
    /// Whether these embeddings link more than the audited model at the table's pool.
    pub links_more_than_audited: Option<bool>,
}

/// The frontier on one cohort (members, held-out or external).
#[derive(Debug, Clone, Serialize)]
pub struct FrontierTable {
    /// The split.
    pub split: String,
    /// Pool size of `recall_at_1_at_pool` ([`REDUCTION_POOL`](super::REDUCTION_POOL) when the split has it, else
    /// its largest random pool; null = the full database).
    pub pool_size: Option<usize>,
    /// What the comparisons are against: `audited`, or `non_private` when the audited
    /// model was not evaluated.
    pub reference: &'static str,
    /// The audited model, the warm start, the non-private heads, then DP heads by epsilon.
    pub rows: Vec<FrontierRow>,
}

/// The headline: the most private DP heads on the held-out records against the reference.
#[derive(Debug, Clone, Serialize)]
pub struct Headline {
    /// Always `held_out`.
    pub cohort: &'static str,
    /// Its split.
    pub split: String,
    /// Pool size (null = full database).
    pub pool_size: Option<usize>,
    /// Epsilon of the DP heads (the smallest of the sweep).
    pub epsilon: f64,
    /// `audited` or `non_private`.
    pub reference: &'static str,
    /// Recall@1 of the DP heads.
    pub recall_at_1: f64,
    /// Recall@1 of the reference.
    pub reference_recall_at_1: f64,
    /// 1 - recall_at_1 / reference_recall_at_1 (negative: the DP heads link more).
    pub relative_reduction: Option<f64>,
    /// Whether the DP heads link more than the reference.
    pub links_more_than_reference: bool,
    /// Probe macro AUROC of the DP heads (held-out).
    pub macro_auroc: Option<f64>,
    /// The reference's.
    pub reference_macro_auroc: Option<f64>,
    /// The difference.
    pub macro_auroc_change: Option<f64>,
}

/// The mitigation report; its JSON is the `linkrisk mitigate` output
/// (`{"audit": "mitigate", "points": [{"epsilon", "relink", "utility", ...}], ...}`).
#[derive(Debug, Clone, Serialize)]
pub struct MitigateReport {
    /// Always `mitigate`.
    pub audit: &'static str,
    /// linkrisk version.
    pub linkrisk_version: &'static str,
    /// Delta of the private points.
    pub delta: f64,
    /// The sweep's seed.
    pub seed: u64,
    /// Seed shared by every point's training run (derived from `seed`; under DP the
    /// guarantee assumes it is secret, so a published report with it is a demonstration,
    /// not a release).
    pub training_seed: u64,
    /// Where the heads started.
    pub init: HeadInit,
    /// The split the warm-start heads were fitted on (null with random initialisation);
    /// [`PUBLIC_SPLIT`](super::PUBLIC_SPLIT) when set aside from the members.
    pub public_split: Option<String>,
    /// Directions of the public input projection (0 = none; see each ledger's
    /// `input_projection`).
    pub public_pca_rank: usize,
    /// Which split is which.
    pub splits: MitigateSplits,
    /// Non-private training settings.
    pub non_private_training: TrainConfig,
    /// Private training settings (privacy and batch as used at each point: see the ledgers).
    pub private_training: TrainConfig,
    /// Expected private batch as a fraction of member patients, if set.
    pub private_sample_rate: Option<f64>,
    /// The points, in the order of `--epsilons`.
    pub points: Vec<MitigatePoint>,
    /// The audited model: the cohort's own views, evaluated the same way (null when absent
    /// or not asked; then `baseline_skipped` says why).
    pub baseline: Option<ReferencePoint>,
    /// Why the audited model was not evaluated (null when it was).
    pub baseline_skipped: Option<String>,
    /// The warm-start heads before training on the members (null with random init).
    pub warm_start: Option<ReferencePoint>,
    /// Per cohort, the frontier table: the audited model, the warm start, the non-private
    /// heads and the DP heads, with every head row's change relative to the audited model.
    pub frontier: BySubset<FrontierTable>,
    /// The headline comparison (null when no private point was run).
    pub headline: Option<Headline>,
    /// Recall@1 reductions of every private point against the non-private heads (and the
    /// audited model).
    pub reductions: Vec<Reduction>,
    /// Utility changes of every private point against the non-private heads (and the
    /// audited model).
    pub utility_changes: Vec<UtilityChange>,
    /// Wall-clock seconds of the sweep.
    pub seconds: f64,
}
