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
//! modalities.
//!
//! The baseline of every result is the **audited model**: the cohort's own `image` /
//! `report` views evaluated the same way on the same records (`baseline` in the JSON,
//! the `audited` row of each cohort's `frontier` table). The public warm start and the
//! non-private heads are further reference rows; the headline reduction is relative to
//! the audited model, and the report says so in words when DP heads link more than it
//! (`compare`, [`summary_lines`]). Choices and caveats: docs/METHODS.md, "Mitigation and
//! the privacy-utility frontier".

mod compare;
pub mod cross_modal;
mod evaluate;
mod report;
mod summary;

#[cfg(test)]
mod tests;

use std::time::Instant;

use rand::RngCore;
use serde::Serialize;

pub use crate::train::PUBLIC_SPLIT;
pub use cross_modal::{cross_modal_utility, CrossModalUtility};
pub use report::{
    BySubset, FrontierRow, FrontierTable, Headline, MitigatePoint, MitigateReport, PointUtility, PoolRecall,
    Reduction, ReferencePoint, SubsetRelink, UtilityChange,
};
pub use summary::summary_lines;

use crate::audit::relink::RelinkConfig;
use crate::audit::utility::UtilityConfig;
use crate::cohort::Cohort;
use crate::error::{Error, Result};
use crate::privacy;
use crate::train::{self, Privacy, PublicSource, TrainConfig, TrainProgress, TrainedHeads, WarmStart};
use evaluate::evaluate;

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
    /// Directions of the public input projection fitted on the warm-start patients (0 =
    /// none; ignored with random initialisation, which has no public data).
    pub public_pca_rank: usize,
    /// Which split is which.
    pub splits: MitigateSplits,
    /// Re-linkage settings (its views and split are set per evaluation; pools larger than
    /// a split are skipped and listed in the subset's `skipped_pools`).
    pub relink: RelinkConfig,
    /// Utility settings (view, train and eval splits are set per evaluation).
    pub utility: UtilityConfig,
    /// The audited model's views: evaluated the same way as every point and the baseline
    /// of every comparison (`baseline`); when the cohort lacks them the report says why
    /// (`baseline_skipped`).
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
            private_training: TrainConfig { lr: 3e-3, ..TrainConfig::private(1.0, 6e-6) },
            private_sample_rate: Some(0.25),
            init: HeadInit::PublicFraction { fraction: 0.25 },
            public_training: TrainConfig { epochs: 100.0, batch_size: 64, ..TrainConfig::non_private() },
            public_pca_rank: 128,
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
    /// non-private heads, both from the default public warm start, set against the audited
    /// model's own views; pools of 100 with 3 trials, no bootstrap.
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
        if let HeadInit::PublicSplit { split } = &self.init {
            names.push(("warm-start", split));
        }
        if let Some(warm) = self.warm_start() {
            warm.validate()?;
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

impl MitigateConfig {
    /// The warm start [`HeadInit`] describes (None with random initialisation).
    pub fn warm_start(&self) -> Option<WarmStart> {
        let source = match &self.init {
            HeadInit::Random => return None,
            HeadInit::PublicFraction { fraction } => PublicSource::Fraction { fraction: *fraction },
            HeadInit::PublicSplit { split } => PublicSource::Split { split: split.clone() },
        };
        Some(WarmStart {
            source,
            training: self.public_training.clone(),
            pca_rank: self.public_pca_rank,
            seed: Some(self.seed),
        })
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
    /// The warm-start heads are trained; the CLI exports them.
    WarmStartTrained {
        /// The heads.
        heads: &'a TrainedHeads,
        /// The cohort (with the public set-aside split relabelled).
        cohort: &'a Cohort,
    },
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
    // Before any work with the members as given; again below once the public set-aside
    // has left fewer of them (a stricter bound).
    if let Ok(n) = cohort.metadata.patients_in_split(&config.splits.members) {
        check_delta_for_members(config, n)?;
    }
    check_cohort(cohort, config)?;
    let training_seed = crate::rng::stream(config.seed, "mitigate/train", 0).next_u64();

    // The warm start first: with --public-fraction it moves patients out of the members, and
    // every evaluation (the audited model's included) must see the same members.
    let warm = match config.warm_start() {
        None => None,
        Some(warm) => {
            let what = match &warm.source {
                PublicSource::Split { split } => format!("`{split}`"),
                PublicSource::Fraction { fraction } => {
                    format!("{:.0}% of the members' patients set aside", 100.0 * fraction)
                }
            };
            events(MitigateEvent::Stage {
                what: format!("warm start: training non-private heads on {what}"),
            })?;
            let t = Instant::now();
            let prepared = train::warm_start(cohort, &config.splits.members, &warm, &mut |p| {
                let _ = events(MitigateEvent::Training(p));
            })?;
            Some((prepared, t))
        }
    };
    let relabelled = warm.as_ref().and_then(|(w, _)| w.relabelled.clone());
    let cohort = relabelled.as_ref().unwrap_or(cohort);
    let public_split = warm.as_ref().map(|(w, _)| w.split.clone());
    let member_patients = cohort.metadata.patients_in_split(&config.splits.members)?;
    check_delta_for_members(config, member_patients)?;

    let (mut baseline, baseline_skipped) = match &config.baseline_views {
        None => (None, Some("not asked for (--no-baseline)".to_string())),
        Some((image, report)) => match (cohort.view(image), cohort.view(report)) {
            (Ok(_), Ok(_)) => {
                events(MitigateEvent::Stage {
                    what: format!("audited model: auditing views `{image}` / `{report}`"),
                })?;
                let t = Instant::now();
                let (relink, utility) = evaluate(cohort, image, report, config)?;
                let reference = ReferencePoint {
                    description: format!("the audited model: the cohort's own `{image}` / `{report}` views (no heads)"),
                    views: [image.clone(), report.clone()],
                    relink,
                    utility,
                    privacy: None,
                    seconds: t.elapsed().as_secs_f64(),
                };
                (Some(reference), None)
            }
            _ => (
                None,
                Some(format!(
                    "the cohort has no `{image}` / `{report}` views (its views: {}); name the audited model's views \
                     with --audited-views",
                    cohort.view_names().join(", ")
                )),
            ),
        },
    };

    let warm = match warm {
        None => None,
        Some((prepared, t)) => {
            let heads = prepared.heads;
            events(MitigateEvent::WarmStartTrained { heads: &heads, cohort })?;
            events(MitigateEvent::Stage { what: "warm start: auditing".into() })?;
            let projected = heads.project_cohort(cohort)?;
            let (relink, utility) = evaluate(&projected, "image", "report", config)?;
            let reference = ReferencePoint {
                description: format!(
                    "non-private heads fitted on split `{}` (not members, not evaluated), the start of every point",
                    prepared.split
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

    let mut warm_start = warm.map(|(_, r)| r);
    if let Some(audited) = &mut baseline {
        compare::against_audited(audited, warm_start.as_mut(), &mut points);
    }
    let (reductions, utility_changes) = compare::tables(&mut points, baseline.as_ref(), config);
    let frontier = compare::frontier(baseline.as_ref(), warm_start.as_ref(), &points, config);
    let headline = compare::headline(&frontier);
    Ok(MitigateReport {
        audit: "mitigate",
        linkrisk_version: crate::VERSION,
        delta: config.delta,
        seed: config.seed,
        training_seed,
        init: config.init.clone(),
        public_split,
        public_pca_rank: config.public_pca_rank,
        splits: config.splits.clone(),
        non_private_training: point_training(config, f64::INFINITY, member_patients, training_seed),
        private_training: TrainConfig {
            privacy: Privacy::Dp { epsilon: f64::NAN, delta: config.delta },
            ..point_training(config, 1.0, member_patients, training_seed)
        },
        private_sample_rate: config.private_sample_rate,
        points,
        baseline,
        baseline_skipped,
        warm_start,
        frontier,
        headline,
        reductions,
        utility_changes,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// Refuse a delta of at least 1 / `member_patients` when the sweep has a private point
/// (unless `allow_large_delta`), naming the members split.
fn check_delta_for_members(config: &MitigateConfig, member_patients: usize) -> Result<()> {
    if config.epsilons.iter().all(|e| e.is_infinite()) {
        return Ok(());
    }
    privacy::check_delta_for_units(
        config.delta,
        member_patients as u64,
        config.private_training.allow_large_delta,
    )
    .map_err(|e| match e {
        Error::Config(message) => Error::config(format!(
            "{message} (the {member_patients} patients of the members split `{}`)",
            config.splits.members
        )),
        other => other,
    })
}

/// The training config of the point at `epsilon`.
pub(crate) fn point_training(
    config: &MitigateConfig,
    epsilon: f64,
    member_patients: usize,
    seed: u64,
) -> TrainConfig {
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
