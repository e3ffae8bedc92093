//! `linkrisk privacy-audit`: an empirical check of trained projection heads, beside the
//! accountant's upper bound. Per privacy budget (the same training as `linkrisk mitigate`:
//! public warm start, DP-SGD on the members split):
//! - **membership inference** ([`membership`]): members vs held-out patients scored by how
//!   well the heads align their pairs (loss attack) and calibrated by shadow heads trained
//!   on seeded random halves of members and held-out patients (offline LiRA); AUROC and TPR
//!   at FPR 0.1% and 1% with intervals;
//! - **the one-run audit** ([`one_run`], Steinke, Nasr and Jagielski, NeurIPS 2023): `m`
//!   canary patients (one record each, an image and a report feature drawn independently
//!   and uniformly on the sphere, so only memorisation can align them), each put into the
//!   training run by a seeded fair coin; the heads' scores of the canaries give guesses and
//!   a 95% lower bound on epsilon, to set against the accountant's epsilon.
//!
//! A deliberately broken training (`fault`: no noise, or no clipping, with the claimed
//! epsilon kept) is the positive control: its lower bound must exceed the claimed epsilon.
//! Method and measured figures: docs/METHODS.md, "Empirical privacy audit".

pub mod membership;
pub mod one_run;

use std::time::Instant;

use rand::{Rng, RngCore};
use rand_distr::StandardNormal;
use serde::Serialize;

use crate::audit::mitigate::{epsilon_text, point_training, MitigateConfig};
use crate::cohort::metadata::MetadataBuilder;
use crate::cohort::{Cohort, View};
use crate::error::{Error, Result};
use crate::privacy;
use crate::train::{self, Fault, PrivacyLedger, TrainProgress, TrainedHeads};

pub use membership::{AttackFigures, TprAtFpr};
pub use one_run::{GuessRow, OneRunAudit};

/// Settings of a privacy audit; [`run`] validates them first.
#[derive(Debug, Clone, PartialEq)]
pub struct PrivacyAuditConfig {
    /// Training (warm start, DP-SGD settings, splits, delta, seed) exactly as a mitigation
    /// sweep trains its heads; its relink and utility settings are not used.
    pub training: MitigateConfig,
    /// Budgets audited (`f64::INFINITY` = non-private heads).
    pub epsilons: Vec<f64>,
    /// Canary patients randomised into the training run (m).
    pub canaries: usize,
    /// Shadow heads per budget for offline LiRA (0 = the loss attack only).
    pub shadows: usize,
    /// Reports each record's own report is ranked against (a seeded sample of the scored
    /// patients' records).
    pub reference_reports: usize,
    /// A deliberate fault in the private runs (positive control).
    pub fault: Option<Fault>,
    /// Confidence of every interval and of the lower bound.
    pub level: f64,
}

impl Default for PrivacyAuditConfig {
    fn default() -> Self {
        PrivacyAuditConfig {
            training: MitigateConfig::default(),
            epsilons: vec![1.0, f64::INFINITY],
            canaries: 1000,
            shadows: 4,
            reference_reports: 1000,
            fault: None,
            level: 0.95,
        }
    }
}

impl PrivacyAuditConfig {
    /// Reject bad values, naming the flag.
    pub fn validate(&self) -> Result<()> {
        if self.epsilons.is_empty() {
            return Err(Error::config("--epsilons: give at least one epsilon, e.g. 1,inf"));
        }
        if let Some(e) = self.epsilons.iter().find(|e| e.is_nan() || **e <= 0.0) {
            return Err(Error::config(format!(
                "--epsilons: {e} is not a privacy budget (positive number or `inf`)"
            )));
        }
        if self.canaries < 10 {
            return Err(Error::config(format!("--canaries must be at least 10, got {}", self.canaries)));
        }
        if self.shadows == 1 || self.shadows > 64 {
            return Err(Error::config(format!(
                "--shadows must be 0 (loss attack only) or 2 to 64, got {}",
                self.shadows
            )));
        }
        if self.reference_reports < 10 {
            return Err(Error::config("--reference-reports must be at least 10"));
        }
        if !(self.level > 0.5 && self.level < 1.0) {
            return Err(Error::config(format!(
                "the confidence level must be in (0.5, 1), got {}",
                self.level
            )));
        }
        privacy::check_delta(self.training.delta)?;
        let mut private = self.training.private_training.clone();
        private.privacy = train::Privacy::Dp { epsilon: 1.0, delta: self.training.delta };
        private.validate()
    }
}

/// The audit of one budget.
#[derive(Debug, Clone, Serialize)]
pub struct AuditPoint {
    /// The budget (null = non-private).
    pub epsilon: Option<f64>,
    /// `1`, `inf`, ...
    pub epsilon_label: String,
    /// The accountant's epsilon for the run (the upper bound; null when non-private).
    pub accountant_epsilon: Option<f64>,
    /// The run's ledger (canaries included in its patient counts).
    pub privacy: PrivacyLedger,
    /// Membership inference on the real patients: the loss attack, then offline LiRA.
    pub membership: Vec<AttackFigures>,
    /// The one-run audit on the canaries.
    pub one_run: OneRunAudit,
    /// Whether the lower bound exceeds the accountant's epsilon (a failed guarantee; or the
    /// positive control working).
    pub lower_bound_exceeds_claim: bool,
    /// Seconds for this budget (training, shadows, scoring).
    pub seconds: f64,
}

/// Everything `linkrisk privacy-audit` reports.
#[derive(Debug, Clone, Serialize)]
pub struct PrivacyAuditReport {
    /// `privacy_audit`.
    pub audit: &'static str,
    /// linkrisk version.
    pub linkrisk_version: &'static str,
    /// The audit's seed (coins, canaries, shadow halves, reference reports, training).
    pub seed: u64,
    /// Delta of every private run and of the one-run bound.
    pub delta: f64,
    /// Members split (after the public set-aside) and held-out split.
    pub members_split: String,
    /// Held-out split (non-members of every run).
    pub held_out_split: String,
    /// Real member patients and held-out patients scored.
    pub n_members: usize,
    /// Held-out patients scored.
    pub n_held_out: usize,
    /// Canaries (m) and how many the coins included.
    pub canaries: usize,
    /// Shadow heads per budget.
    pub shadows: usize,
    /// The deliberate fault (positive control), null in a real audit.
    pub fault: Option<Fault>,
    /// One entry per budget.
    pub points: Vec<AuditPoint>,
    /// Seconds in all.
    pub seconds: f64,
}

/// Progress of an audit.
#[derive(Debug)]
pub enum AuditEvent<'a> {
    /// A stage starts.
    Stage(String),
    /// A training step.
    Training(&'a TrainProgress),
}

/// Run the audit on `cohort` (frozen-feature views and members / held-out splits as for
/// `linkrisk mitigate`).
pub fn run(
    cohort: &Cohort,
    config: &PrivacyAuditConfig,
    events: &mut dyn FnMut(AuditEvent<'_>),
) -> Result<PrivacyAuditReport> {
    let started = Instant::now();
    config.validate()?;
    let t = &config.training;
    let (members, held_out) = (&t.splits.members, &t.splits.held_out);
    let seed = t.seed;

    // The public warm start, as mitigate trains it.
    let warm = match t.warm_start() {
        None => None,
        Some(w) => {
            events(AuditEvent::Stage("warm start: training non-private heads on public patients".into()));
            let mut on_step = |p: &TrainProgress| events(AuditEvent::Training(p));
            Some(train::warm_start(cohort, members, &w, &mut on_step)?)
        }
    };
    let cohort = warm.as_ref().and_then(|w| w.relabelled.as_ref()).unwrap_or(cohort);
    let initial = warm.as_ref().map(|w| &w.heads);
    let meta = &cohort.metadata;
    let (member_split, held_split) = (meta.split_index(members)?, meta.split_index(held_out)?);
    let patients_of = |split: u16| {
        let mut p: Vec<u32> =
            (0..meta.len()).filter(|&i| meta.split[i] == split).map(|i| meta.patient[i]).collect();
        p.sort_unstable();
        p.dedup();
        p
    };
    let (member_patients, held_patients) = (patients_of(member_split), patients_of(held_split));
    if member_patients.len() < 2 || held_patients.is_empty() {
        return Err(Error::input(
            cohort.dir.join("metadata.csv"),
            format!(
                "a privacy audit needs members (split `{members}`: {} patients) and held-out patients (split `{held_out}`: {})",
                member_patients.len(),
                held_patients.len()
            ),
        ));
    }
    let targets: Vec<u32> = member_patients.iter().chain(&held_patients).copied().collect();
    let is_member: Vec<bool> = targets.iter().map(|p| member_patients.binary_search(p).is_ok()).collect();
    let target_rows: Vec<usize> = {
        let mut wanted = vec![false; meta.n_patients];
        targets.iter().for_each(|&p| wanted[p as usize] = true);
        (0..meta.len()).filter(|&i| wanted[meta.patient[i] as usize]).collect()
    };
    let reference = sample(&target_rows, config.reference_reports, seed, "privacy-audit/reference");

    // Canaries: independent uniform directions for the image and the report feature.
    let (image_view, report_view) = (&t.private_training.image_view, &t.private_training.report_view);
    let (di, dr) = (cohort.view(image_view)?.dim(), cohort.view(report_view)?.dim());
    let m = config.canaries;
    let mut rng = crate::rng::stream(seed, "privacy-audit/canaries", 0);
    let canary_image = unit_rows(&mut rng, m, di);
    let canary_report = unit_rows(&mut rng, m, dr);
    let included: Vec<bool> = (0..m).map(|_| rng.random_bool(0.5)).collect();
    let training_cohort =
        with_canaries(cohort, members, image_view, report_view, &canary_image, &canary_report, &included)?;
    let n_training_patients = training_cohort.metadata.n_patients;
    let training_seed = crate::rng::stream(seed, "privacy-audit/train", 0).next_u64();

    let mut points = Vec::new();
    for &epsilon in &config.epsilons {
        let t0 = Instant::now();
        let label = epsilon_text(epsilon);
        let mut train_config = point_training(t, epsilon, n_training_patients, training_seed);
        if epsilon.is_finite() {
            train_config.fault = config.fault;
        }
        events(AuditEvent::Stage(format!(
            "epsilon {label}: training heads on members and included canaries"
        )));
        let heads = train_from(&training_cohort, &train_config, initial, events)?;
        let tau = heads.temperature();

        // Membership inference on the real patients.
        let projected = heads.project_cohort(cohort)?;
        let target_scores = membership::patient_scores(&projected, &targets, &reference, tau)?;
        let fprs = [0.001, 0.01];
        let mut attacks = vec![membership::figures("loss", &target_scores, &is_member, config.level, &fprs)?];
        if config.shadows > 0 {
            let mut shadow_scores = Vec::with_capacity(config.shadows);
            let mut shadow_in = Vec::with_capacity(config.shadows);
            for k in 0..config.shadows {
                events(AuditEvent::Stage(format!(
                    "epsilon {label}: shadow heads {} of {}",
                    k + 1,
                    config.shadows
                )));
                let mut coin = crate::rng::stream(seed, "privacy-audit/shadow-half", k as u64);
                let inside: Vec<bool> = targets.iter().map(|_| coin.random_bool(0.5)).collect();
                let shadow_cohort = relabel(cohort, &targets, &inside, SHADOW_SPLIT)?;
                let n_in = inside.iter().filter(|&&b| b).count();
                let mut shadow_config = point_training(t, epsilon, n_in, training_seed ^ (k as u64 + 1));
                shadow_config.train_split = SHADOW_SPLIT.into();
                if epsilon.is_finite() {
                    shadow_config.fault = config.fault;
                }
                let shadow = train_from(&shadow_cohort, &shadow_config, initial, events)?;
                let projected = shadow.project_cohort(cohort)?;
                shadow_scores.push(membership::patient_scores(
                    &projected,
                    &targets,
                    &reference,
                    shadow.temperature(),
                )?);
                shadow_in.push(inside);
            }
            let lira = membership::lira_offline(&target_scores, &shadow_scores, &shadow_in);
            attacks.push(membership::figures("lira_offline", &lira, &is_member, config.level, &fprs)?);
        }

        // The one-run audit on the canaries.
        let scores = canary_scores(&heads, &canary_image, &canary_report, m, tau)?;
        let one_run = one_run::audit(&scores, &included, t.delta, config.level);
        let accountant_epsilon = heads.ledger.epsilon;
        points.push(AuditPoint {
            epsilon: epsilon.is_finite().then_some(epsilon),
            epsilon_label: label,
            accountant_epsilon,
            lower_bound_exceeds_claim: accountant_epsilon.is_some_and(|e| one_run.epsilon_lower_bound > e),
            privacy: heads.ledger.clone(),
            membership: attacks,
            one_run,
            seconds: t0.elapsed().as_secs_f64(),
        });
    }
    Ok(PrivacyAuditReport {
        audit: "privacy_audit",
        linkrisk_version: crate::VERSION,
        seed,
        delta: t.delta,
        members_split: members.clone(),
        held_out_split: held_out.clone(),
        n_members: member_patients.len(),
        n_held_out: held_patients.len(),
        canaries: m,
        shadows: config.shadows,
        fault: config.fault,
        points,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// The split shadow heads train on.
const SHADOW_SPLIT: &str = "privacy_audit_shadow";

fn train_from(
    cohort: &Cohort,
    config: &train::TrainConfig,
    initial: Option<&TrainedHeads>,
    events: &mut dyn FnMut(AuditEvent<'_>),
) -> Result<TrainedHeads> {
    let mut on_step = |p: &TrainProgress| events(AuditEvent::Training(p));
    match initial {
        Some(h) => train::train_heads_from(cohort, config, h, &mut on_step),
        None => train::train_heads_with_progress(cohort, config, &mut on_step),
    }
}

/// `n` rows of `dim` values, each uniform on the unit sphere.
fn unit_rows(rng: &mut impl Rng, n: usize, dim: usize) -> Vec<f32> {
    let mut out = Vec::with_capacity(n * dim);
    for _ in 0..n {
        let row: Vec<f64> = (0..dim).map(|_| rng.sample(StandardNormal)).collect();
        let norm = row.iter().map(|v| v * v).sum::<f64>().sqrt().max(1e-12);
        out.extend(row.iter().map(|v| (v / norm) as f32));
    }
    out
}

/// A seeded sample of at most `n` of `items`, in their order.
fn sample(items: &[usize], n: usize, seed: u64, purpose: &str) -> Vec<usize> {
    if items.len() <= n {
        return items.to_vec();
    }
    let mut rng = crate::rng::stream(seed, purpose, 0);
    let mut picked = rand::seq::index::sample(&mut rng, items.len(), n).into_vec();
    picked.sort_unstable();
    picked.into_iter().map(|i| items[i]).collect()
}

/// The cohort with the records of `patients[k]` for which `inside[k]` moved to split `name`.
fn relabel(cohort: &Cohort, patients: &[u32], inside: &[bool], name: &str) -> Result<Cohort> {
    let mut meta = cohort.metadata.clone();
    let index = meta.split_names.len() as u16;
    meta.split_names.push(name.to_string());
    meta.has_split_column = true;
    let mut chosen = vec![false; meta.n_patients];
    for (&p, &b) in patients.iter().zip(inside) {
        chosen[p as usize] = b;
    }
    for i in 0..meta.len() {
        if chosen[meta.patient[i] as usize] {
            meta.split[i] = index;
        }
    }
    Cohort::from_parts(cohort.dir.clone(), meta, cohort.views().cloned().collect())
}

/// The training cohort: the members' records and one record per included canary (patient
/// `privacy-audit-canary-C`), with the two feature views only.
fn with_canaries(
    cohort: &Cohort,
    members: &str,
    image_view: &str,
    report_view: &str,
    canary_image: &[f32],
    canary_report: &[f32],
    included: &[bool],
) -> Result<Cohort> {
    let meta = &cohort.metadata;
    let (image, report) = (cohort.view(image_view)?, cohort.view(report_view)?);
    let (di, dr) = (image.dim(), report.dim());
    let rows = meta.rows_in_split(members)?;
    let mut b = MetadataBuilder::default();
    let (mut img, mut rep, mut studies) = (Vec::new(), Vec::new(), Vec::new());
    for &i in &rows {
        b.ids.push(meta.ids[i].clone());
        b.patient_ids.push(meta.patient_ids[i].clone());
        studies.push(meta.study_ids.as_ref().map_or_else(|| meta.ids[i].clone(), |s| s[i].clone()));
        img.extend_from_slice(image.row(i));
        rep.extend_from_slice(report.row(i));
    }
    for c in (0..included.len()).filter(|&c| included[c]) {
        let id = format!("privacy-audit-canary-{c}");
        b.ids.push(id.clone());
        b.patient_ids.push(id.clone());
        studies.push(id);
        img.extend_from_slice(&canary_image[c * di..(c + 1) * di]);
        rep.extend_from_slice(&canary_report[c * dr..(c + 1) * dr]);
    }
    let n = b.ids.len();
    b.study_ids = Some(studies);
    b.splits = Some(vec![members.to_string(); n]);
    let metadata = b.build(&cohort.dir.join("metadata.csv"), 0)?;
    let views = vec![View::from_memory(image_view, n, di, img)?, View::from_memory(report_view, n, dr, rep)?];
    Cohort::from_parts(cohort.dir.clone(), metadata, views)
}

/// Each canary's log-softmax of its own report among every canary's report, at `tau`.
fn canary_scores(
    heads: &TrainedHeads,
    image: &[f32],
    report: &[f32],
    m: usize,
    tau: f64,
) -> Result<Vec<f64>> {
    let q = heads.project_image(image)?;
    let g = heads.project_report(report)?;
    let d = heads.dim();
    let inv = 1.0 / tau;
    Ok((0..m)
        .map(|c| {
            let qc = &q[c * d..(c + 1) * d];
            let logits: Vec<f64> = (0..m)
                .map(|j| {
                    qc.iter()
                        .zip(&g[j * d..(j + 1) * d])
                        .map(|(a, b)| f64::from(*a) * f64::from(*b))
                        .sum::<f64>()
                        * inv
                })
                .collect();
            logits[c] - membership::log_sum_exp(&logits)
        })
        .collect())
}

#[cfg(test)]
mod tests;
