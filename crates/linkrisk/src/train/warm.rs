//! The public warm start shared by `linkrisk mitigate` and `linkrisk train-heads`:
//! non-private heads fitted on public patients (an existing split, or a seeded fraction of
//! the members' patients set aside), behind a public input projection fitted on the same
//! patients; DP-SGD on the members then starts from them.
//!
//! Trained from random parameters, DP heads learn almost nothing at epsilon <= 8 on cohorts
//! of thousands of patients; paper 1 fine-tunes the heads of a pretrained model instead. The
//! warm start is that pretrained model, made from data the guarantee does not need to
//! cover. It must share no patient with the members: a patient in both would shape the
//! start without protection while the ledger claims epsilon for them
//! ([`check_disjoint`]). Reasoning: docs/METHODS.md, "Mitigation and the privacy-utility
//! frontier".

use rand::seq::SliceRandom;
use rand::RngCore;
use serde::Serialize;

use super::{train_heads_projected, train_heads_with_progress, Privacy, PublicProjection, TrainConfig};
use super::{TrainProgress, TrainedHeads};
use crate::cohort::Cohort;
use crate::error::{Error, Result};

/// Name of the split [`PublicSource::Fraction`] moves the set-aside patients to.
pub const PUBLIC_SPLIT: &str = "public-pretraining";

/// Where the warm start's public patients come from.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum PublicSource {
    /// A seeded `fraction` of the members split's patients, moved to split
    /// [`PUBLIC_SPLIT`]; the rest stay members.
    Fraction {
        /// Share of the members' patients set aside, in (0, 1).
        fraction: f64,
    },
    /// An existing split of patients that are not members (e.g. data already public).
    Split {
        /// The split.
        split: String,
    },
}

/// Settings of a warm start.
#[derive(Debug, Clone, PartialEq)]
pub struct WarmStart {
    /// The public patients.
    pub source: PublicSource,
    /// Training of the warm-start heads (`privacy`, `train_split` and `seed` are set here;
    /// a batch larger than the public patients is clamped to them).
    pub training: TrainConfig,
    /// Directions of the public input projection per side (0 = the heads see the features
    /// directly).
    pub pca_rank: usize,
    /// Seed of the set-aside and of the warm-start training (None: drawn from the operating
    /// system and not recorded).
    pub seed: Option<u64>,
}

impl WarmStart {
    /// Reject bad values before any work, naming the flag.
    pub fn validate(&self) -> Result<()> {
        if let PublicSource::Fraction { fraction } = self.source {
            if !(fraction > 0.0 && fraction < 1.0) {
                return Err(Error::config(format!(
                    "--public-fraction must be in (0, 1) (0 = random initialisation), got {fraction}"
                )));
            }
        }
        let mut public = self.training.clone();
        public.privacy = Privacy::NonPrivate;
        public.validate()
    }
}

/// A prepared warm start.
#[derive(Debug, Clone)]
pub struct PreparedWarmStart {
    /// The cohort with the set-aside patients relabelled (`Fraction` only).
    pub relabelled: Option<Cohort>,
    /// The public split.
    pub split: String,
    /// The warm-start heads (non-private, trained on `split`).
    pub heads: TrainedHeads,
}

/// Set up the warm start for members split `members` of `cohort`: choose or check the
/// public patients, fit the public projection on them and train non-private heads there.
pub fn warm_start(
    cohort: &Cohort,
    members: &str,
    warm: &WarmStart,
    progress: &mut dyn FnMut(&TrainProgress),
) -> Result<PreparedWarmStart> {
    warm.validate()?;
    let seed = warm.seed.unwrap_or_else(rand::random);
    let (relabelled, split) = match &warm.source {
        PublicSource::Fraction { fraction } => {
            (Some(set_aside_public(cohort, members, *fraction, seed)?), PUBLIC_SPLIT.to_string())
        }
        PublicSource::Split { split } => {
            if split == members {
                return Err(Error::config(format!(
                    "--warm-start-split {split} is the members split; warm-start from other patients"
                )));
            }
            check_disjoint(cohort, split, members)?;
            (None, split.clone())
        }
    };
    let data = relabelled.as_ref().unwrap_or(cohort);
    let public_patients = data.metadata.patients_in_split(&split)?;
    let config = TrainConfig {
        privacy: Privacy::NonPrivate,
        train_split: split.clone(),
        seed: warm.seed.map(|s| crate::rng::stream(s, "mitigate/warm-start", 0).next_u64()),
        batch_size: warm.training.batch_size.min(public_patients.max(2)),
        ..warm.training.clone()
    };
    let heads = if warm.pca_rank > 0 {
        let projection =
            PublicProjection::fit(data, &config.image_view, &config.report_view, &split, warm.pca_rank)?;
        train_heads_projected(data, &config, &projection, progress)?
    } else {
        train_heads_with_progress(data, &config, progress)?
    };
    Ok(PreparedWarmStart { relabelled, split, heads })
}

/// Refuse a warm-start split that shares a patient with the members: that patient's data
/// would shape the heads without protection while the ledger claims epsilon for them.
pub fn check_disjoint(cohort: &Cohort, public: &str, members: &str) -> Result<()> {
    let meta = &cohort.metadata;
    let public_index = split_index(cohort, public, &format!("--warm-start-split {public}: "))?;
    let member_index = split_index(cohort, members, "")?;
    let mut in_public = vec![false; meta.n_patients];
    for i in 0..meta.len() {
        if meta.split[i] == public_index {
            in_public[meta.patient[i] as usize] = true;
        }
    }
    let mut shared: Vec<&str> = Vec::new();
    let mut seen = vec![false; meta.n_patients];
    for i in 0..meta.len() {
        let p = meta.patient[i] as usize;
        if meta.split[i] == member_index && in_public[p] && !seen[p] {
            seen[p] = true;
            shared.push(&meta.patient_ids[i]);
        }
    }
    if shared.is_empty() {
        return Ok(());
    }
    let members_total = meta.patients_in_split(members)?;
    Err(Error::input(
        cohort.dir.join("metadata.csv"),
        format!(
            "--warm-start-split {public}: {} of the {members_total} patients of the members split `{members}` also have \
             records in `{public}` (e.g. {}); the warm start would use their data without protection while the DP \
             ledger claims its epsilon for them. Use a warm-start split of other patients, or move those patients' \
             records into one split",
            shared.len(),
            shared.iter().take(3).copied().collect::<Vec<_>>().join(", ")
        ),
    ))
}

/// `cohort` with a seeded `fraction` of the patients of split `members` moved to split
/// [`PUBLIC_SPLIT`] (at least one patient, and at least two left as members).
pub fn set_aside_public(cohort: &Cohort, members: &str, fraction: f64, seed: u64) -> Result<Cohort> {
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
    let member_split = split_index(cohort, members, "")?;
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
    relabelled.has_split_column = true;
    for i in 0..relabelled.len() {
        if relabelled.split[i] == member_split && public[relabelled.patient[i] as usize] {
            relabelled.split[i] = public_index;
        }
    }
    Cohort::from_parts(cohort.dir.clone(), relabelled, cohort.views().cloned().collect())
}

/// The index of split `split`, or an input error naming `metadata.csv` and the splits the
/// cohort has (`prefix` names the flag).
fn split_index(cohort: &Cohort, split: &str, prefix: &str) -> Result<u16> {
    let meta = &cohort.metadata;
    meta.split_index(split).map_err(|_| {
        let fix = if meta.has_split_column {
            "name an existing split".to_string()
        } else {
            format!("the file has no `split` column: add one marking the `{split}` records")
        };
        Error::input(
            cohort.dir.join("metadata.csv"),
            format!(
                "{prefix}no records in split `{split}` (this cohort's splits: {}); {fix}",
                meta.split_names.join(", ")
            ),
        )
    })
}
