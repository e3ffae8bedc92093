//! Mitigation (paper 1): retrain the projection heads on the members' frozen features with
//! DP-SGD at a sweep of privacy budgets and measure, per budget, how much re-linkage risk
//! is left and how much utility: the privacy-utility frontier.
//!
//! Per epsilon (`inf` = non-private heads), heads are trained on the members split (the
//! patients the guarantee protects), every record of the cohort is projected, and the
//! re-linkage audit runs on members, held-out and external records separately; utility is
//! the image-side linear-probe macro AUROC of the projected image embedding (what is
//! released), with probes trained on the projected members and evaluated on held-out and
//! external records, plus a cross-modal utility (zero-shot finding classification with
//! report prototypes, [`cross_modal`]) that shows whether the heads still align the two
//! modalities. Each private point's Recall@1 is compared with the non-private heads'.
//! The cohort's own `image`/`report` views are evaluated the same way as a reference
//! (`baseline`). Choices and caveats: docs/METHODS.md, "Mitigation and the
//! privacy-utility frontier".

pub mod cross_modal;

#[cfg(test)]
mod tests;

use std::time::Instant;

use rand::RngCore;
use serde::Serialize;

pub use cross_modal::{cross_modal_utility, CrossModalUtility};

use crate::audit::relink::{relink, RelinkConfig, RelinkReport, SkippedPool};
use crate::audit::utility::{utility_on_splits, UtilityConfig, UtilityReport};
use crate::cohort::Cohort;
use crate::engine::NoProgress;
use crate::error::{Error, Result};
use crate::privacy;
use crate::train::{self, Privacy, PrivacyLedger, TrainConfig, TrainProgress, TrainedHeads};

/// Name of the split [`HeadInit::PublicFraction`] moves the set-aside patients to.
pub const PUBLIC_SPLIT: &str = "public-pretraining";

/// The pool size the relative reduction is measured at when a subset has it (paper 1's).
pub const REDUCTION_POOL: usize = 10_000;

/// How the heads' parameters start before training on the members.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum HeadInit {
    /// Random parameters (as `linkrisk train-heads`).
    Random,
    /// Set a seeded `fraction` of the members split's patients aside as public pretraining
    /// data (split [`PUBLIC_SPLIT`]): non-private heads are fitted on them first and every
    /// point starts from those heads; the remaining patients are the members, whom the DP
    /// guarantee protects. The set-aside patients are neither members nor evaluated.
    PublicFraction {
        /// Share of the members' patients set aside, in (0, 1).
        fraction: f64,
    },
    /// Non-private heads first fitted on `split`, a split of patients that are neither
    /// members nor evaluated (e.g. data already public); every point then starts from them.
    /// The DP guarantee covers the members only: nothing protects the warm-start split.
    PublicSplit {
        /// The warm-start split.
        split: String,
    },
}

/// Which splits play which role.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MitigateSplits {
    /// Training members: the heads are trained on them (`train`).
    pub members: String,
    /// Held-out patients of the same population (`test`).
    pub held_out: String,
    /// A domain-shifted external cohort (`external`), if any.
    pub external: Option<String>,
}

impl Default for MitigateSplits {
    fn default() -> Self {
        MitigateSplits { members: "train".into(), held_out: "test".into(), external: Some("external".into()) }
    }
}

/// Settings of a mitigation sweep; [`run`] validates them before any work.
#[derive(Debug, Clone, PartialEq)]
pub struct MitigateConfig {
    /// Privacy budgets, in the order to run; `f64::INFINITY` is the non-private heads and
    /// must be present (every reduction is measured against it).
    pub epsilons: Vec<f64>,
    /// Delta of every private point.
    pub delta: f64,
    /// Training of the non-private point (its `privacy`, `train_split` and `seed` are set
    /// per run).
    pub non_private_training: TrainConfig,
    /// Training of the private points (`privacy` set to each epsilon).
    pub private_training: TrainConfig,
    /// When set, the expected batch of the private points is this fraction of the member
    /// patients (rounded, at least 2) instead of `private_training.batch_size`, so the
    /// same setting suits cohorts of any size.
    pub private_sample_rate: Option<f64>,
    /// Where the heads start.
    pub init: HeadInit,
    /// Training of the public warm-start heads ([`HeadInit::PublicFraction`] and
    /// [`HeadInit::PublicSplit`]; its `privacy`, `train_split` and `seed` are set per run).
    pub public_training: TrainConfig,
    /// Which split is which.
    pub splits: MitigateSplits,
    /// Re-linkage settings (its views and split are set per evaluation; pools larger than
    /// a split are skipped and listed in the subset's `skipped_pools`).
    pub relink: RelinkConfig,
    /// Utility settings (view, train and eval splits are set per evaluation).
    pub utility: UtilityConfig,
    /// Also evaluate the cohort's own views as a reference (`baseline`), when present.
    pub baseline_views: Option<(String, String)>,
    /// Seed of the training runs (one derived seed shared by every point) and of the
    /// relink pools.
    pub seed: u64,
}

impl Default for MitigateConfig {
    fn default() -> Self {
        MitigateConfig {
            epsilons: vec![0.34, 1.0, 3.0, 8.0, f64::INFINITY],
            delta: 6e-6,
            non_private_training: TrainConfig::non_private(),
            private_training: TrainConfig { lr: 1e-3, ..TrainConfig::private(1.0, 6e-6) },
            private_sample_rate: Some(0.25),
            init: HeadInit::PublicFraction { fraction: 0.25 },
            public_training: TrainConfig { epochs: 100.0, batch_size: 64, ..TrainConfig::non_private() },
            splits: MitigateSplits::default(),
            relink: RelinkConfig {
                pool_sizes: vec![100, REDUCTION_POOL],
                trials: 5,
                hard_negatives: true,
                bootstrap_replicates: 200,
                split: None,
                ..RelinkConfig::default()
            },
            utility: UtilityConfig::default(),
            baseline_views: Some(("image".into(), "report".into())),
            seed: 0,
        }
    }
}

impl MitigateConfig {
    /// A fast two-point sweep for `linkrisk demo`: DP heads at `epsilon` and the
    /// non-private heads, both from the default public warm start; pools of 100 with 3
    /// trials, no bootstrap, no baseline (the demo audits the cohort's own views itself).
    pub fn demo(epsilon: f64) -> Self {
        let defaults = MitigateConfig::default();
        MitigateConfig {
            epsilons: vec![epsilon, f64::INFINITY],
            relink: RelinkConfig {
                pool_sizes: vec![100],
                trials: 3,
                bootstrap_replicates: 0,
                ..defaults.relink
            },
            baseline_views: None,
            ..defaults
        }
    }

    /// Reject bad values, naming the `linkrisk mitigate` flag.
    pub fn validate(&self) -> Result<()> {
        if self.epsilons.is_empty() {
            return Err(Error::config("--epsilons: give at least one epsilon, e.g. 0.34,1,inf"));
        }
        for (i, &e) in self.epsilons.iter().enumerate() {
            if e.is_nan() || e <= 0.0 {
                return Err(Error::config(format!(
                    "--epsilons: {e} is not a privacy budget; each epsilon must be a positive number or `inf` (non-private)"
                )));
            }
            if self.epsilons[..i].contains(&e) {
                return Err(Error::config(format!("--epsilons: {} is listed twice", epsilon_text(e))));
            }
        }
        if !self.epsilons.contains(&f64::INFINITY) {
            return Err(Error::config(
                "--epsilons must include `inf`: the non-private heads are the reference every reduction is measured against",
            ));
        }
        privacy::check_delta(self.delta)?;
        if let Some(q) = self.private_sample_rate {
            if !(q > 0.0 && q <= 1.0) {
                return Err(Error::config(format!("private sample rate must be in (0, 1], got {q}")));
            }
        }
        let mut non_private = self.non_private_training.clone();
        non_private.privacy = Privacy::NonPrivate;
        non_private.validate()?;
        let mut private = self.private_training.clone();
        private.privacy = Privacy::Dp { epsilon: 1.0, delta: self.delta };
        private.validate()?;
        let s = &self.splits;
        let mut names = vec![("members", &s.members), ("held-out", &s.held_out)];
        if let Some(e) = &s.external {
            names.push(("external", e));
        }
        match &self.init {
            HeadInit::PublicSplit { split } => names.push(("warm-start", split)),
            HeadInit::PublicFraction { fraction } => {
                if !(*fraction > 0.0 && *fraction < 1.0) {
                    return Err(Error::config(format!(
                        "--public-fraction must be in (0, 1) (0 = random initialisation), got {fraction}"
                    )));
                }
            }
            HeadInit::Random => {}
        }
        if !matches!(self.init, HeadInit::Random) {
            let mut public = self.public_training.clone();
            public.privacy = Privacy::NonPrivate;
            public.validate()?;
        }
        for (i, (role, name)) in names.iter().enumerate() {
            if let Some((other, _)) = names[..i].iter().find(|(_, n)| n == name) {
                return Err(Error::config(format!(
                    "split `{name}` is both the {other} and the {role} split; each role needs its own patients"
                )));
            }
        }
        let mut relink = self.relink.clone();
        relink.query_view = "image".into();
        relink.gallery_view = "report".into();
        relink.validate()?;
        self.utility.probe.validate()
    }
}

/// `inf` or the number.
pub fn epsilon_text(epsilon: f64) -> String {
    if epsilon.is_infinite() {
        "inf".into()
    } else {
        format!("{epsilon}")
    }
}

/// Parse `--epsilons`: comma-separated positive numbers and `inf` (also `non-private`).
pub fn parse_epsilons(text: &str) -> Result<Vec<f64>> {
    text.split(',')
        .map(|item| {
            let item = item.trim();
            match item.to_ascii_lowercase().as_str() {
                "inf" | "infinity" | "non-private" | "nonprivate" => Ok(f64::INFINITY),
                _ => item.parse::<f64>().map_err(|_| {
                    Error::config(format!(
                        "--epsilons: `{item}` is not a number; give comma-separated positive numbers and `inf`, e.g. 0.34,1,3,8,inf"
                    ))
                }),
            }
        })
        .collect()
}

/// Re-linkage on each subset, with the relative reduction against the non-private heads.
#[derive(Debug, Clone, Serialize)]
pub struct SubsetRelink {
    /// The relink audit of this subset.
    #[serde(flatten)]
    pub report: RelinkReport,
    /// Pool size the reduction is measured at: [`REDUCTION_POOL`] when evaluated on this
    /// subset, else its largest evaluated random pool; null = the full database.
    pub reduction_pool_size: Option<usize>,
    /// 1 - Recall@1 / Recall@1 of the non-private heads, random pools of
    /// `reduction_pool_size` (null for the non-private point and the baseline).
    pub relative_reduction: Option<f64>,
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
    fn iter(&self) -> impl Iterator<Item = (&'static str, &T)> {
        [
            ("members", Some(&self.members)),
            ("held_out", Some(&self.held_out)),
            ("external", self.external.as_ref()),
        ]
        .into_iter()
        .filter_map(|(name, v)| v.map(|v| (name, v)))
    }

    fn iter_mut(&mut self) -> impl Iterator<Item = (&'static str, &mut T)> {
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
    /// [`PUBLIC_SPLIT`] when set aside from the members.
    pub public_split: Option<String>,
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
    /// The cohort's own views, evaluated the same way (null when absent or not asked).
    pub baseline: Option<ReferencePoint>,
    /// The warm-start heads before training on the members (null with random init).
    pub warm_start: Option<ReferencePoint>,
    /// Recall@1 reductions of every private point against the non-private heads.
    pub reductions: Vec<Reduction>,
    /// Utility changes of every private point against the non-private heads.
    pub utility_changes: Vec<UtilityChange>,
    /// Wall-clock seconds of the sweep.
    pub seconds: f64,
}

/// What [`run`] reports while it runs.
#[derive(Debug)]
pub enum MitigateEvent<'a> {
    /// A stage begins (`what` says which).
    Stage {
        /// Description, e.g. `epsilon 0.34: training`.
        what: String,
    },
    /// A training step finished.
    Training(&'a TrainProgress),
    /// Heads of a point are trained (`epsilon` infinite = non-private); the CLI writes them.
    HeadsTrained {
        /// The point's epsilon.
        epsilon: f64,
        /// The heads.
        heads: &'a TrainedHeads,
        /// The cohort they were trained on (with the public set-aside split relabelled
        /// under [`HeadInit::PublicFraction`]).
        cohort: &'a Cohort,
    },
}

/// Run the sweep: the library entry of `linkrisk mitigate` (and of the demo's two-point
/// mitigation, with [`MitigateConfig::demo`]). `events` sees progress and each point's
/// heads; an error it returns stops the sweep.
pub fn run(
    cohort: &Cohort,
    config: &MitigateConfig,
    events: &mut dyn FnMut(MitigateEvent<'_>) -> Result<()>,
) -> Result<MitigateReport> {
    let started = Instant::now();
    config.validate()?;
    check_cohort(cohort, config)?;
    let (relabelled, public_split) = match &config.init {
        HeadInit::Random => (None, None),
        HeadInit::PublicSplit { split } => (None, Some(split.clone())),
        HeadInit::PublicFraction { fraction } => (
            Some(set_aside_public(cohort, &config.splits.members, *fraction, config.seed)?),
            Some(PUBLIC_SPLIT.into()),
        ),
    };
    let cohort = relabelled.as_ref().unwrap_or(cohort);
    let training_seed = crate::rng::stream(config.seed, "mitigate/train", 0).next_u64();
    let member_patients = cohort.metadata.patients_in_split(&config.splits.members)?;

    let baseline = match &config.baseline_views {
        Some((image, report)) if cohort.view(image).is_ok() && cohort.view(report).is_ok() => {
            events(MitigateEvent::Stage {
                what: format!("baseline: auditing views `{image}` / `{report}`"),
            })?;
            let t = Instant::now();
            let (relink, utility) = evaluate(cohort, image, report, config)?;
            Some(ReferencePoint {
                description: format!("the cohort's own `{image}` / `{report}` views (no heads)"),
                views: [image.clone(), report.clone()],
                relink,
                utility,
                privacy: None,
                seconds: t.elapsed().as_secs_f64(),
            })
        }
        _ => None,
    };

    let warm = match &public_split {
        None => None,
        Some(split) => {
            events(MitigateEvent::Stage {
                what: format!("warm start: training non-private heads on `{split}`"),
            })?;
            let t = Instant::now();
            // Non-private training: a batch larger than the public split (small cohorts) is
            // clamped to the split's patients; nothing about privacy depends on it.
            let public_patients = cohort.metadata.patients_in_split(split)?;
            let warm_config = TrainConfig {
                privacy: Privacy::NonPrivate,
                train_split: split.clone(),
                seed: Some(crate::rng::stream(config.seed, "mitigate/warm-start", 0).next_u64()),
                batch_size: config.public_training.batch_size.min(public_patients.max(2)),
                ..config.public_training.clone()
            };
            let heads = train::train_heads_with_progress(cohort, &warm_config, &mut |p| {
                let _ = events(MitigateEvent::Training(p));
            })?;
            events(MitigateEvent::Stage { what: "warm start: auditing".into() })?;
            let projected = heads.project_cohort(cohort)?;
            let (relink, utility) = evaluate(&projected, "image", "report", config)?;
            let reference = ReferencePoint {
                description: format!(
                    "non-private heads fitted on split `{split}` (not members, not evaluated), the start of every point"
                ),
                views: ["image".into(), "report".into()],
                relink,
                utility,
                privacy: Some(heads.ledger.clone()),
                seconds: t.elapsed().as_secs_f64(),
            };
            Some((heads, reference))
        }
    };

    let mut points = Vec::with_capacity(config.epsilons.len());
    for &epsilon in &config.epsilons {
        let t = Instant::now();
        let label = epsilon_text(epsilon);
        let train_config = point_training(config, epsilon, member_patients, training_seed);
        events(MitigateEvent::Stage { what: format!("epsilon {label}: training heads") })?;
        let mut on_step = |p: &TrainProgress| {
            let _ = events(MitigateEvent::Training(p));
        };
        let heads = match &warm {
            Some((initial, _)) => train::train_heads_from(cohort, &train_config, initial, &mut on_step)?,
            None => train::train_heads_with_progress(cohort, &train_config, &mut on_step)?,
        };
        let seconds_training = t.elapsed().as_secs_f64();
        events(MitigateEvent::HeadsTrained { epsilon, heads: &heads, cohort })?;
        events(MitigateEvent::Stage { what: format!("epsilon {label}: auditing the projected cohort") })?;
        let projected = heads.project_cohort(cohort)?;
        let (relink, utility) = evaluate(&projected, "image", "report", config)?;
        points.push(MitigatePoint {
            epsilon: epsilon.is_finite().then_some(epsilon),
            epsilon_label: label,
            private: epsilon.is_finite(),
            delta: epsilon.is_finite().then_some(config.delta),
            privacy: heads.ledger.clone(),
            relink,
            utility,
            seconds_training,
            seconds: t.elapsed().as_secs_f64(),
        });
    }

    let (reductions, utility_changes) = compare(&mut points, config);
    Ok(MitigateReport {
        audit: "mitigate",
        linkrisk_version: crate::VERSION,
        delta: config.delta,
        seed: config.seed,
        training_seed,
        init: config.init.clone(),
        public_split,
        splits: config.splits.clone(),
        non_private_training: point_training(config, f64::INFINITY, member_patients, training_seed),
        private_training: TrainConfig {
            privacy: Privacy::Dp { epsilon: f64::NAN, delta: config.delta },
            ..point_training(config, 1.0, member_patients, training_seed)
        },
        private_sample_rate: config.private_sample_rate,
        points,
        baseline,
        warm_start: warm.map(|(_, r)| r),
        reductions,
        utility_changes,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// `cohort` with a seeded `fraction` of the patients of split `members` moved to split
/// [`PUBLIC_SPLIT`] (at least one patient, and at least two left as members).
fn set_aside_public(cohort: &Cohort, members: &str, fraction: f64, seed: u64) -> Result<Cohort> {
    use rand::seq::SliceRandom;
    let meta = &cohort.metadata;
    if meta.split_index(PUBLIC_SPLIT).is_ok() {
        return Err(Error::input(
            cohort.dir.join("metadata.csv"),
            format!(
                "the cohort already has a split `{PUBLIC_SPLIT}`; warm-start from it with --warm-start-split {PUBLIC_SPLIT} \
                 instead of --public-fraction"
            ),
        ));
    }
    let member_split = meta.split_index(members)?;
    let mut patients: Vec<u32> =
        (0..meta.len()).filter(|&i| meta.split[i] == member_split).map(|i| meta.patient[i]).collect();
    patients.sort_unstable();
    patients.dedup();
    let n_public = ((fraction * patients.len() as f64).round() as usize).max(1);
    if patients.len() < n_public + 2 {
        return Err(Error::config(format!(
            "--public-fraction {fraction}: the {members} split has {} patients; setting {n_public} aside leaves fewer \
             than 2 members (lower the fraction or use --public-fraction 0 for random initialisation)",
            patients.len()
        )));
    }
    patients.shuffle(&mut crate::rng::stream(seed, "mitigate/public-set-aside", 0));
    let mut public = vec![false; meta.n_patients];
    for &p in &patients[..n_public] {
        public[p as usize] = true;
    }
    let mut relabelled = meta.clone();
    let public_index = relabelled.split_names.len() as u16;
    relabelled.split_names.push(PUBLIC_SPLIT.to_string());
    for i in 0..relabelled.len() {
        if relabelled.split[i] == member_split && public[relabelled.patient[i] as usize] {
            relabelled.split[i] = public_index;
        }
    }
    Cohort::from_parts(cohort.dir.clone(), relabelled, cohort.views().cloned().collect())
}

/// The training config of the point at `epsilon`.
fn point_training(config: &MitigateConfig, epsilon: f64, member_patients: usize, seed: u64) -> TrainConfig {
    let mut c = if epsilon.is_finite() {
        let mut c = config.private_training.clone();
        c.privacy = Privacy::Dp { epsilon, delta: config.delta };
        if let Some(q) = config.private_sample_rate {
            c.batch_size = ((q * member_patients as f64).round() as usize)
                .clamp(2.min(member_patients), member_patients);
        }
        c
    } else {
        let mut c = config.non_private_training.clone();
        c.privacy = Privacy::NonPrivate;
        // Without privacy the batch only sets the optimiser's step: a cohort smaller than
        // one batch trains on all its member patients per step (the report records it).
        c.batch_size = c.batch_size.min(member_patients.max(2));
        c
    };
    c.train_split = config.splits.members.clone();
    c.seed = Some(seed);
    c
}

/// Fail early on a cohort the sweep cannot use, naming the file and the fix.
fn check_cohort(cohort: &Cohort, config: &MitigateConfig) -> Result<()> {
    let meta = &cohort.metadata;
    let flag_of = |role: &str| match role {
        "members" => "--members-split",
        "held-out" => "--held-out-split",
        "external" => "--external-split",
        _ => "--warm-start-split",
    };
    let mut roles = vec![("members", &config.splits.members), ("held-out", &config.splits.held_out)];
    if let Some(e) = &config.splits.external {
        roles.push(("external", e));
    }
    if let HeadInit::PublicSplit { split } = &config.init {
        roles.push(("warm-start", split));
    }
    for (role, split) in roles {
        if meta.split_index(split).is_err() {
            return Err(Error::input(
                cohort.dir.join("metadata.csv"),
                format!(
                    "{} {split}: no records in split `{split}` (this cohort's splits: {}); name the {role} split",
                    flag_of(role),
                    meta.split_names.join(", ")
                ),
            ));
        }
    }
    if meta.findings.is_none() {
        return Err(Error::input(
            cohort.dir.join("metadata.csv"),
            "no finding columns; the mitigation sweep measures utility over the 14 CheXpert findings and uses them for \
             pathology-matched pools: add them to metadata.csv",
        ));
    }
    for view in [&config.non_private_training.image_view, &config.non_private_training.report_view] {
        cohort.view(view)?;
    }
    Ok(())
}

/// Relink on every subset and utility, for views `image` / `report` of `cohort`.
fn evaluate(
    cohort: &Cohort,
    image: &str,
    report: &str,
    config: &MitigateConfig,
) -> Result<(BySubset<SubsetRelink>, PointUtility)> {
    let s = &config.splits;
    let audit = |split: &str| -> Result<SubsetRelink> {
        let n = cohort.metadata.rows_in_split(split)?.len();
        let mut c = RelinkConfig {
            query_view: image.to_string(),
            gallery_view: report.to_string(),
            split: Some(split.to_string()),
            ..config.relink.clone()
        };
        // relink refuses a run whose every pool is too large; run the full database only
        // and list the pools as skipped, as relink does when only some are.
        let too_large: Vec<usize> = c.pool_sizes.iter().copied().filter(|&p| p > n).collect();
        let all_too_large = !c.pool_sizes.is_empty() && too_large.len() == c.pool_sizes.len();
        if all_too_large {
            c.pool_sizes.clear();
        }
        let mut report = relink(cohort, &c, &NoProgress)?;
        if all_too_large {
            for &pool_size in &too_large {
                let kinds: &[&'static str] =
                    if config.relink.hard_negatives { &["random", "pathology_matched"] } else { &["random"] };
                for &kind in kinds {
                    report.forward.skipped_pools.push(SkippedPool {
                        pool_size,
                        kind,
                        reason: format!("larger than the gallery of {n} items"),
                    });
                }
            }
        }
        let reduction_pool_size = reduction_pool(&report);
        Ok(SubsetRelink { report, reduction_pool_size, relative_reduction: None })
    };
    let relink = BySubset {
        members: audit(&s.members)?,
        held_out: audit(&s.held_out)?,
        external: s.external.as_deref().map(audit).transpose()?,
    };
    let utility_config = UtilityConfig {
        view: image.to_string(),
        train_split: s.members.clone(),
        eval_split: s.held_out.clone(),
        ..config.utility.clone()
    };
    let mut eval_splits = vec![s.held_out.as_str()];
    eval_splits.extend(s.external.as_deref());
    let mut reports = utility_on_splits(cohort, &utility_config, &eval_splits)?.into_iter();
    let held_out = reports.next().expect("one report per split");
    let external = reports.next();
    let cross_modal = eval_splits
        .iter()
        .map(|split| cross_modal_utility(cohort, image, report, &s.members, split, config.utility.labels))
        .collect::<Result<Vec<_>>>()?;
    let utility = PointUtility {
        macro_auroc: held_out.macro_auroc,
        ci95_macro_auroc: held_out.ci95_macro_auroc,
        external_macro_auroc: external.as_ref().and_then(|u| u.macro_auroc),
        ci95_external_macro_auroc: external.as_ref().and_then(|u| u.ci95_macro_auroc),
        change_vs_non_private: None,
        external_change_vs_non_private: None,
        cross_modal_macro_auroc: cross_modal[0].macro_auroc,
        cross_modal_external_macro_auroc: cross_modal.get(1).and_then(|c| c.macro_auroc),
        held_out,
        external,
        cross_modal,
    };
    Ok((relink, utility))
}

/// [`REDUCTION_POOL`] if evaluated, else the largest evaluated random pool, else None (full).
fn reduction_pool(report: &RelinkReport) -> Option<usize> {
    let random = report.forward.pools.iter().filter(|p| p.kind == "random").map(|p| p.pool_size);
    if random.clone().any(|p| p == REDUCTION_POOL) {
        Some(REDUCTION_POOL)
    } else {
        random.max()
    }
}

/// Recall@1 and chance at `pool` (None = full database) of `kind`.
fn recall_at(report: &RelinkReport, pool: Option<usize>, kind: &str) -> Option<(f64, f64)> {
    match pool {
        None => Some((report.forward.full.recall_at_1, report.forward.full.chance_at_1)),
        Some(n) => report
            .forward
            .pools
            .iter()
            .find(|p| p.pool_size == n && p.kind == kind)
            .map(|p| (p.recall_at_1, p.chance_at_1)),
    }
}

/// Fill each private point's reductions and utility changes against the non-private
/// point, and return the tables.
fn compare(points: &mut [MitigatePoint], config: &MitigateConfig) -> (Vec<Reduction>, Vec<UtilityChange>) {
    let Some(reference) = points.iter().position(|p| !p.private) else { return (Vec::new(), Vec::new()) };
    let base_relink = points[reference].relink.clone();
    let base_utility = points[reference].utility.clone();
    let mut reductions = Vec::new();
    let mut changes = Vec::new();
    let split_of = |cohort: &str| match cohort {
        "members" => config.splits.members.clone(),
        "held_out" => config.splits.held_out.clone(),
        _ => config.splits.external.clone().unwrap_or_default(),
    };
    for point in points.iter_mut().filter(|p| p.private) {
        let epsilon = point.epsilon.expect("private points have an epsilon");
        for ((cohort, subset), (_, base)) in point.relink.iter_mut().zip(base_relink.iter()) {
            let pool = subset.reduction_pool_size;
            let mut rows: Vec<(Option<usize>, &'static str)> = Vec::new();
            if pool.is_some() {
                rows.push((pool, "random"));
                rows.push((pool, "pathology_matched"));
            }
            rows.push((None, "full"));
            for (pool_size, kind) in rows {
                let (Some((r, chance)), Some((r0, _))) =
                    (recall_at(&subset.report, pool_size, kind), recall_at(&base.report, pool_size, kind))
                else {
                    continue;
                };
                let relative_reduction = 1.0 - r / r0;
                if pool_size == pool && kind != "pathology_matched" {
                    subset.relative_reduction = Some(relative_reduction);
                }
                reductions.push(Reduction {
                    epsilon,
                    cohort,
                    split: split_of(cohort),
                    pool_size,
                    kind,
                    recall_at_1: r,
                    non_private_recall_at_1: r0,
                    chance_at_1: chance,
                    relative_reduction,
                    relative_reduction_above_chance: 1.0 - (r - chance) / (r0 - chance),
                });
            }
        }
        let u = &mut point.utility;
        let pairs = [
            ("held_out", "linear_probe", u.macro_auroc, base_utility.macro_auroc),
            ("external", "linear_probe", u.external_macro_auroc, base_utility.external_macro_auroc),
            ("held_out", "cross_modal", u.cross_modal_macro_auroc, base_utility.cross_modal_macro_auroc),
            (
                "external",
                "cross_modal",
                u.cross_modal_external_macro_auroc,
                base_utility.cross_modal_external_macro_auroc,
            ),
        ];
        for (cohort, measure, value, base) in pairs {
            if let (Some(v), Some(b)) = (value, base) {
                changes.push(UtilityChange {
                    epsilon,
                    cohort,
                    measure,
                    macro_auroc: v,
                    non_private_macro_auroc: b,
                    change: v - b,
                });
            }
        }
        u.change_vs_non_private = u.macro_auroc.zip(base_utility.macro_auroc).map(|(v, b)| v - b);
        u.external_change_vs_non_private =
            u.external_macro_auroc.zip(base_utility.external_macro_auroc).map(|(v, b)| v - b);
    }
    (reductions, changes)
}
