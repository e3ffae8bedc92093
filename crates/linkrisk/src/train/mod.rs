//! Projection heads trained on frozen features with a symmetric InfoNCE loss, non-private
//! or with DP-SGD, paper 1's mitigation: the encoders stay frozen and only the heads that
//! map image and report features into the shared space see the training data.
//!
//! DP-SGD treats the patient as the privacy unit: patients are Poisson-sampled at rate q,
//! a public keyed hash splits the sampled patients into small groups, InfoNCE is computed
//! within each group, each group's gradient is clipped to C/2 (so adding or removing one
//! patient moves the sum by at most C), Gaussian noise N(0, (sigma C)^2) is added to every
//! coordinate and the sum is divided by the expected batch size. The accountant in
//! [`crate::privacy`] turns (q, sigma, steps, delta) into epsilon. The argument is in
//! docs/METHODS.md, "DP-SGD for contrastive heads".
//!
//! Entry points: [`TrainConfig`] (validated once), [`train_heads`] and
//! [`TrainedHeads`] (apply the heads to features or a cohort, write the output cohort and
//! its `privacy.json` ledger).

mod apply;
mod batch;
mod data;
mod dpsgd;
pub mod export;
mod linalg;
mod loss;
mod model;
mod optim;
mod projection;
mod real;
pub mod warm;

#[cfg(test)]
pub(crate) mod tests;

use std::sync::Arc;

use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};

pub use model::HeadKind;
pub use optim::Optimizer;
pub use projection::{ProjectionRecord, PublicProjection};
pub use warm::{
    check_disjoint, set_aside_public, warm_start, PreparedWarmStart, PublicSource, WarmStart, PUBLIC_SPLIT,
};

use crate::cohort::Cohort;
use crate::error::{Error, Result};
use crate::privacy::{self, Accountant};
use data::TrainData;
use model::{Layout, Model};
use optim::OptimizerState;
use real::Real;

/// The name of the DP-SGD construction, as recorded in `privacy.json`.
pub const DP_CONSTRUCTION: &str = "poisson_patients_hash_groups_group_clip";

/// Whether and how training is private.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "mode", rename_all = "snake_case")]
pub enum Privacy {
    /// Ordinary training: shuffled batches, InfoNCE over the whole batch, no clipping.
    NonPrivate,
    /// DP-SGD with the noise multiplier calibrated to reach (`epsilon`, `delta`).
    Dp {
        /// Target epsilon.
        epsilon: f64,
        /// Target delta.
        delta: f64,
    },
    /// DP-SGD with a given noise multiplier; epsilon is whatever the accountant says.
    DpNoise {
        /// Noise standard deviation / sensitivity C.
        noise_multiplier: f64,
        /// Delta at which epsilon is reported.
        delta: f64,
    },
}

/// The InfoNCE temperature.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Temperature {
    /// Held fixed.
    Fixed {
        /// The temperature (logits are cosine / temperature).
        value: f64,
    },
    /// Learned as ln(1 / temperature) (clipped and noised with the heads under DP).
    Learned {
        /// Starting temperature.
        initial: f64,
    },
}

impl Temperature {
    fn initial(self) -> f64 {
        match self {
            Temperature::Fixed { value } => value,
            Temperature::Learned { initial } => initial,
        }
    }
}

/// How non-private training forms batches (DP-SGD always Poisson-samples patients into
/// hash groups).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Batching {
    /// Shuffled batches of `batch_size` patients, InfoNCE over the whole batch.
    #[default]
    Shuffled,
    /// Exactly DP-SGD's batches (Poisson-sampled patients, InfoNCE within hash groups,
    /// divided by the expected batch) without clipping or noise: the ablation that
    /// separates the effect of grouping from the effect of clipping and noise.
    DpGroups,
}

/// Everything that defines a training run. Build with [`TrainConfig::non_private`] or
/// [`TrainConfig::private`] and adjust fields; [`train_heads`] validates it first.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TrainConfig {
    /// View with the frozen image features.
    pub image_view: String,
    /// View with the frozen report features.
    pub report_view: String,
    /// The split the heads are trained on.
    pub train_split: String,
    /// Head architecture (both heads).
    pub head: HeadKind,
    /// Dimension of the shared output space.
    pub dim: usize,
    /// Non-private or DP-SGD.
    pub privacy: Privacy,
    /// Passes over the training patients (steps = floor(epochs / q) under DP).
    pub epochs: f64,
    /// Expected batch size in patients; the sampling rate is q = batch_size / patients.
    pub batch_size: usize,
    /// DP-SGD sensitivity C: each group's gradient is clipped to C / 2 and the noise
    /// standard deviation is noise_multiplier x C.
    pub clip: f64,
    /// Expected patients per InfoNCE group under DP-SGD (groups per step =
    /// ceil(batch_size / group_size)).
    pub group_size: usize,
    /// Learning rate.
    pub lr: f64,
    /// Batches of non-private training (ignored under DP-SGD).
    pub batching: Batching,
    /// Optimiser.
    pub optimizer: Optimizer,
    /// InfoNCE temperature.
    pub temperature: Temperature,
    /// Seed of every random choice (initialisation, sampling, grouping, noise). `None`
    /// draws one from the operating system and leaves it out of the ledger; under DP the
    /// guarantee assumes the seed is not known to the adversary, so a DP run with a seed is
    /// an evaluation and its ledger says `"private": false` (with `not_private_reason`).
    pub seed: Option<u64>,
    /// The accountant that calibrates the noise and states epsilon (default: PLD).
    pub accountant: Accountant,
    /// Accept a delta of at least 1 / training patients (experiments only; such a delta
    /// guarantees nothing meaningful).
    pub allow_large_delta: bool,
    /// A deliberately broken DP-SGD (a positive control for `linkrisk privacy-audit`: the
    /// empirical audit must detect it). None in every real run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fault: Option<Fault>,
}

/// A deliberate fault in DP-SGD that keeps the claimed epsilon: the positive control of an
/// empirical privacy audit (an audit that cannot tell these runs apart from real DP-SGD
/// has no power).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Fault {
    /// No Gaussian noise is added (clipping stays).
    NoNoise,
    /// Group gradients are not clipped (noise stays, scaled as if they were).
    NoClipping,
}

impl TrainConfig {
    /// Defaults for non-private training.
    pub fn non_private() -> Self {
        TrainConfig {
            image_view: "image_features".into(),
            report_view: "report_features".into(),
            train_split: "train".into(),
            head: HeadKind::Linear,
            dim: 128,
            privacy: Privacy::NonPrivate,
            epochs: 20.0,
            batch_size: 256,
            clip: 1.0,
            group_size: 4,
            lr: 3e-3,
            batching: Batching::Shuffled,
            optimizer: Optimizer::default(),
            temperature: Temperature::Fixed { value: 0.07 },
            seed: Some(0),
            accountant: Accountant::default(),
            allow_large_delta: false,
            fault: None,
        }
    }

    /// Defaults for DP-SGD at (`epsilon`, `delta`): as the CLI's `train-heads`, every random
    /// choice (the noise included) comes from the operating system's entropy (`seed: None`),
    /// so the run is a release; set a seed for a reproducible evaluation.
    pub fn private(epsilon: f64, delta: f64) -> Self {
        TrainConfig { privacy: Privacy::Dp { epsilon, delta }, seed: None, ..Self::non_private() }
    }

    /// Reject invalid values, naming the `linkrisk train-heads` flag.
    pub fn validate(&self) -> Result<()> {
        let positive = |value: f64, flag: &str| -> Result<()> {
            if value.is_finite() && value > 0.0 {
                Ok(())
            } else {
                Err(Error::config(format!("{flag} must be a positive finite number, got {value}")))
            }
        };
        if self.dim == 0 {
            return Err(Error::config("--dim must be at least 1"));
        }
        if let HeadKind::Mlp { hidden: 0 } = self.head {
            return Err(Error::config("--hidden must be at least 1"));
        }
        positive(self.epochs, "--epochs")?;
        if self.batch_size == 0 {
            return Err(Error::config("--batch-size must be at least 1 (expected patients per batch)"));
        }
        positive(self.lr, "--lr")?;
        match self.temperature {
            Temperature::Fixed { value: t } | Temperature::Learned { initial: t } => {
                positive(t, "--temperature")?
            }
        }
        match self.optimizer {
            Optimizer::Adam { beta1, beta2, eps } => {
                if !((0.0..1.0).contains(&beta1) && (0.0..1.0).contains(&beta2)) {
                    return Err(Error::config(format!("Adam betas must be in [0, 1), got {beta1}, {beta2}")));
                }
                positive(eps, "Adam eps")?;
            }
            Optimizer::Sgd { momentum } => {
                if !(0.0..1.0).contains(&momentum) {
                    return Err(Error::config(format!("--momentum must be in [0, 1), got {momentum}")));
                }
            }
        }
        match self.privacy {
            Privacy::NonPrivate => {}
            Privacy::Dp { epsilon, delta } => {
                positive(epsilon, "--epsilon")?;
                privacy::check_delta(delta)?;
            }
            Privacy::DpNoise { noise_multiplier, delta } => {
                privacy::check_noise_multiplier(noise_multiplier)?;
                privacy::check_delta(delta)?;
            }
        }
        if self.is_private() {
            positive(self.clip, "--clip")?;
            self.accountant.validate()?;
        }
        if (self.is_private() || self.batching == Batching::DpGroups) && self.group_size == 0 {
            return Err(Error::config("--group-size must be at least 1"));
        }
        Ok(())
    }

    /// Whether this is a DP-SGD run.
    pub fn is_private(&self) -> bool {
        !matches!(self.privacy, Privacy::NonPrivate)
    }
}

/// The privacy ledger written as `privacy.json` beside the projected cohort (and into the
/// metadata of exported heads, from which it is read back).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PrivacyLedger {
    /// Whether the heads carry the DP guarantee: trained with DP-SGD *and* with noise from
    /// the operating system's entropy. A DP-SGD run from a recorded seed is `false` (anyone
    /// holding the ledger can regenerate its noise); `not_private_reason` says why.
    pub private: bool,
    /// Whether the heads were trained with DP-SGD (clipping and noise), seeded or not.
    #[serde(default)]
    pub dp_sgd: bool,
    /// Why `private` is false for a DP-SGD run (null otherwise).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_private_reason: Option<String>,
    /// The deliberate fault of a positive-control run (`privacy-audit --fault`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fault: Option<Fault>,
    /// Epsilon spent, from `accountant` (null when not DP-SGD).
    pub epsilon: Option<f64>,
    /// The epsilon asked for (null unless calibrated to a target).
    pub target_epsilon: Option<f64>,
    /// Delta of the guarantee (null when not private).
    pub delta: Option<f64>,
    /// Noise standard deviation / sensitivity (0 when not private).
    pub noise_multiplier: f64,
    /// RDP order that gave epsilon (RDP accountant only).
    pub best_order: Option<f64>,
    /// Poisson sampling rate of patients, expected batch / training patients.
    pub sample_rate: f64,
    /// Optimiser steps taken.
    pub steps: u64,
    /// Epochs asked for.
    pub epochs: f64,
    /// Sensitivity C of the summed clipped gradient (null when not private).
    pub clip: Option<f64>,
    /// Radius each group's gradient is clipped to (C / 2).
    pub group_clip: Option<f64>,
    /// Expected patients per InfoNCE group (Poisson-group batches only).
    pub group_size: Option<usize>,
    /// Groups per step, ceil(expected batch / group size) (Poisson-group batches only).
    pub groups_per_step: Option<usize>,
    /// Expected batch size in patients (the divisor of the noisy sum).
    pub expected_batch_size: usize,
    /// The unit of privacy: `patient`.
    pub privacy_unit: String,
    /// How per-patient sensitivity is bounded (docs/METHODS.md, "DP-SGD for contrastive
    /// heads"); `non_private` (shuffled batches) or `non_private_dp_groups` otherwise.
    pub construction: String,
    /// The accountant: `pld_poisson_subsampled_gaussian` (privacy loss distribution),
    /// `rdp_sampled_gaussian_extended_orders` or `rdp_sampled_gaussian_opacus_orders`
    /// (Rényi DP, Balle et al.'s conversion); null-equivalent `none` when not DP-SGD.
    pub accountant: String,
    /// The accountant's parameters (`{"accountant": "pld", "discretization": 1e-4}` or
    /// `{"accountant": "rdp", "orders": "extended"}`; null when not DP-SGD).
    #[serde(default)]
    pub accountant_parameters: Option<Accountant>,
    /// Training split.
    pub train_split: String,
    /// Patients in the training split.
    pub train_patients: usize,
    /// Records in the training split.
    pub train_records: usize,
    /// Head architecture.
    pub head: HeadKind,
    /// Output dimension.
    pub dim: usize,
    /// Temperature at the end of training.
    pub temperature: f64,
    /// Whether the temperature was learned.
    pub learned_temperature: bool,
    /// Optimiser.
    pub optimizer: Optimizer,
    /// Learning rate.
    pub lr: f64,
    /// The seed, when the user gave one (null when drawn from the operating system).
    pub seed: Option<u64>,
    /// Where the parameters started: random, or a warm start (whose training data the DP
    /// guarantee does not cover).
    pub initialisation: Initialisation,
    /// The public input projection the heads were trained behind (folded into their first
    /// layer), fitted on public data only; null when the heads see the features directly.
    #[serde(default)]
    pub input_projection: Option<ProjectionRecord>,
    /// linkrisk version that trained the heads.
    pub linkrisk_version: String,
}

/// Where the heads' parameters started.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Initialisation {
    /// Random weights (uniform in +-1/sqrt(fan_in)), zero biases, from the seed.
    Random,
    /// The parameters of heads trained earlier (`train_heads_from`).
    WarmStart {
        /// Split the warm-start heads were trained on.
        split: String,
        /// Patients of that split.
        patients: usize,
        /// Records of that split.
        records: usize,
        /// Whether the warm-start heads were trained with DP-SGD (if not, their training
        /// data has no privacy guarantee: it must be public or otherwise not protected).
        private: bool,
        /// Their epsilon (null when not private).
        epsilon: Option<f64>,
        /// Their delta (null when not private).
        delta: Option<f64>,
    },
}

/// Progress of a training run, passed to the observer after every step.
#[derive(Debug, Clone, Copy)]
pub struct TrainProgress {
    /// Steps done.
    pub step: u64,
    /// Steps in the run.
    pub steps: u64,
    /// Patients in this step's batch.
    pub batch_patients: usize,
    /// InfoNCE loss of this batch per patient (not covered by the DP guarantee: for the
    /// operator's eyes only).
    pub loss_per_patient: f64,
}

/// Trained image and report heads, and the ledger of how they were trained.
#[derive(Debug, Clone)]
pub struct TrainedHeads {
    /// The trained parameters, on the projected inputs when `projection` is set (what a
    /// warm-started run continues from).
    model: Model<f32>,
    /// The public input projection the model was trained behind.
    projection: Option<Arc<PublicProjection>>,
    /// `model` with the projection folded into its first layers: the heads as applied to
    /// the L2-normalised features (what projects cohorts and what is exported).
    applied: Model<f32>,
    image_view: String,
    report_view: String,
    /// How the heads were trained (written as `privacy.json`).
    pub ledger: PrivacyLedger,
}

/// Everything derived from the config and the data before training starts.
#[derive(Debug, Clone, Copy)]
struct Plan {
    seed: u64,
    sample_rate: f64,
    steps: u64,
    /// Hash groups per step when batches are Poisson-sampled (DP-SGD, `Batching::DpGroups`).
    groups_per_step: Option<usize>,
    /// Under DP: (noise multiplier, group clip radius).
    dp: Option<(f64, f64)>,
}

/// Train heads on the training split of `cohort`.
pub fn train_heads(cohort: &Cohort, config: &TrainConfig) -> Result<TrainedHeads> {
    train_heads_with_progress(cohort, config, &mut |_| {})
}

/// [`train_heads`], calling `progress` after every step.
pub fn train_heads_with_progress(
    cohort: &Cohort,
    config: &TrainConfig,
    progress: &mut dyn FnMut(&TrainProgress),
) -> Result<TrainedHeads> {
    train(cohort, config, None, None, progress)
}

/// [`train_heads`] behind a public input projection (fitted with
/// [`PublicProjection::fit`] on public data): the heads see the projected features during
/// training and are folded into heads of the raw features afterwards.
pub fn train_heads_projected(
    cohort: &Cohort,
    config: &TrainConfig,
    projection: &PublicProjection,
    progress: &mut dyn FnMut(&TrainProgress),
) -> Result<TrainedHeads> {
    train(cohort, config, None, Some(Arc::new(projection.clone())), progress)
}

/// Train heads on the training split of `cohort` starting from `initial` instead of random
/// parameters (a warm start, e.g. heads fitted on public data). `initial` must have the
/// architecture `config` describes (head kind, dimensions, fixed or learned temperature);
/// with a fixed temperature the config's value is used. The ledger records the warm start
/// under `initialisation`: the DP guarantee covers the patients of `config.train_split`
/// only, not the data `initial` was trained on. Heads trained behind a public projection
/// are continued behind the same projection.
pub fn train_heads_from(
    cohort: &Cohort,
    config: &TrainConfig,
    initial: &TrainedHeads,
    progress: &mut dyn FnMut(&TrainProgress),
) -> Result<TrainedHeads> {
    train(cohort, config, Some(initial), initial.projection.clone(), progress)
}

fn train(
    cohort: &Cohort,
    config: &TrainConfig,
    initial: Option<&TrainedHeads>,
    projection: Option<Arc<PublicProjection>>,
    progress: &mut dyn FnMut(&TrainProgress),
) -> Result<TrainedHeads> {
    config.validate()?;
    let mut data =
        TrainData::<f32>::from_cohort(cohort, &config.image_view, &config.report_view, &config.train_split)?;
    if let Some(p) = &projection {
        data.project(p)?;
    }
    let (plan, spent) = plan(&data, config)?;
    let start = match initial {
        None => None,
        Some(heads) => {
            let layout = layout_of(config, &data);
            if heads.model.layout != layout {
                return Err(Error::config(format!(
                    "the warm-start heads ({:?} head, {} -> {} and {} -> {} dims, {} temperature) do not \
                     match this training run ({:?} head, {} -> {} and {} -> {} dims, {} temperature)",
                    heads.ledger.head,
                    heads.model.layout.in_dim(model::Side::Image),
                    heads.dim(),
                    heads.model.layout.in_dim(model::Side::Report),
                    heads.dim(),
                    if heads.ledger.learned_temperature { "learned" } else { "fixed" },
                    config.head,
                    data.image_dim,
                    config.dim,
                    data.report_dim,
                    config.dim,
                    if layout.log_scale.is_some() { "learned" } else { "fixed" },
                )));
            }
            let mut model = heads.model.clone();
            if layout.log_scale.is_none() {
                model.fixed_log_scale = (1.0 / config.temperature.initial()).ln() as f32;
            }
            Some(model)
        }
    };
    let initialisation = match initial {
        None => Initialisation::Random,
        Some(heads) => Initialisation::WarmStart {
            split: heads.ledger.train_split.clone(),
            patients: heads.ledger.train_patients,
            records: heads.ledger.train_records,
            private: heads.ledger.private,
            epsilon: heads.ledger.epsilon,
            delta: heads.ledger.delta,
        },
    };
    let model = fit(&data, config, &plan, start, progress);
    let (target_epsilon, delta) = match config.privacy {
        Privacy::NonPrivate => (None, None),
        Privacy::Dp { epsilon, delta } => (Some(epsilon), Some(delta)),
        Privacy::DpNoise { delta, .. } => (None, Some(delta)),
    };
    let dp = plan.dp;
    let projection_ref = projection.as_deref();
    let not_private_reason = match (dp.is_some(), config.seed) {
        (true, _) if config.fault.is_some() => Some(format!(
            "deliberately broken DP-SGD ({}) as a positive control of the empirical audit: the claimed epsilon does \
             not hold",
            match config.fault {
                Some(Fault::NoClipping) => "no clipping",
                _ => "no noise",
            }
        )),
        (true, Some(seed)) => Some(format!(
            "the noise and the sampling were drawn from the recorded seed {seed}: anyone holding this ledger can \
             regenerate them, so these heads are an evaluation, not a release; train without a seed (the default \
             of `linkrisk train-heads`) for heads that carry the guarantee"
        )),
        _ => None,
    };
    let ledger = PrivacyLedger {
        private: dp.is_some() && not_private_reason.is_none(),
        dp_sgd: dp.is_some(),
        not_private_reason,
        fault: config.fault.filter(|_| dp.is_some()),
        epsilon: spent.map(|s| s.epsilon),
        target_epsilon,
        delta,
        noise_multiplier: dp.map_or(0.0, |(sigma, _)| sigma),
        best_order: spent.and_then(|s| s.best_order),
        sample_rate: plan.sample_rate,
        steps: plan.steps,
        epochs: config.epochs,
        clip: dp.map(|_| config.clip),
        group_clip: dp.map(|(_, radius)| radius),
        group_size: plan.groups_per_step.map(|_| config.group_size),
        groups_per_step: plan.groups_per_step,
        expected_batch_size: config.batch_size,
        privacy_unit: "patient".into(),
        construction: match (dp.is_some(), plan.groups_per_step.is_some()) {
            (true, _) => DP_CONSTRUCTION,
            (false, true) => "non_private_dp_groups",
            (false, false) => "non_private",
        }
        .into(),
        accountant: if dp.is_some() { accountant_id(&config.accountant) } else { "none" }.into(),
        accountant_parameters: dp.map(|_| config.accountant),
        train_split: config.train_split.clone(),
        train_patients: data.n_patients(),
        train_records: data.n_records(),
        head: config.head,
        dim: config.dim,
        temperature: model.temperature(),
        learned_temperature: matches!(config.temperature, Temperature::Learned { .. }),
        optimizer: config.optimizer,
        lr: config.lr,
        seed: config.seed,
        initialisation,
        input_projection: projection_ref.map(|p| p.record.clone()),
        linkrisk_version: crate::VERSION.into(),
    };
    let applied = match &projection {
        Some(p) => p.fold(&model),
        None => model.clone(),
    };
    Ok(TrainedHeads {
        model,
        projection,
        applied,
        image_view: config.image_view.clone(),
        report_view: config.report_view.clone(),
        ledger,
    })
}

/// Sampling rate, steps, noise multiplier and seed for `config` on `data`.
fn plan<T: Copy>(data: &TrainData<T>, config: &TrainConfig) -> Result<(Plan, Option<privacy::Guarantee>)> {
    let patients = data.n_patients();
    if patients < 2 {
        return Err(Error::config(format!(
            "split `{}` has {patients} patient(s); contrastive heads need at least 2 training patients",
            config.train_split
        )));
    }
    if config.batch_size > patients {
        return Err(Error::config(format!(
            "--batch-size {} exceeds the {patients} patients of split `{}`; use at most {patients}",
            config.batch_size, config.train_split
        )));
    }
    let seed = config.seed.unwrap_or_else(rand::random);
    let sample_rate = config.batch_size as f64 / patients as f64;
    let (steps, dp, spent) = match config.privacy {
        Privacy::NonPrivate if config.batching == Batching::DpGroups => {
            (privacy::steps_for_epochs(config.epochs, sample_rate)?, None, None)
        }
        Privacy::NonPrivate => {
            let per_epoch = patients.div_ceil(config.batch_size) as f64;
            let steps = (config.epochs * per_epoch).ceil().max(1.0) as u64;
            (steps, None, None)
        }
        Privacy::Dp { epsilon, delta } => {
            privacy::check_delta_for_units(delta, patients as u64, config.allow_large_delta)?;
            let steps = privacy::steps_for_epochs(config.epochs, sample_rate)?;
            let cal = config.accountant.calibrate(epsilon, delta, sample_rate, steps)?;
            let spent = privacy::Guarantee {
                epsilon: cal.epsilon,
                best_order: cal.best_order.is_finite().then_some(cal.best_order),
            };
            (steps, Some(cal.noise_multiplier), Some(spent))
        }
        Privacy::DpNoise { noise_multiplier, delta } => {
            privacy::check_delta_for_units(delta, patients as u64, config.allow_large_delta)?;
            let steps = privacy::steps_for_epochs(config.epochs, sample_rate)?;
            let spent = config.accountant.epsilon(sample_rate, noise_multiplier, steps, delta)?;
            (steps, Some(noise_multiplier), Some(spent))
        }
    };
    let groups_per_step = (dp.is_some() || config.batching == Batching::DpGroups)
        .then(|| config.batch_size.div_ceil(config.group_size));
    let dp = dp.map(|sigma| (sigma, config.clip / 2.0));
    Ok((Plan { seed, sample_rate, steps, groups_per_step, dp }, spent))
}

/// The ledger's name of an accountant.
fn accountant_id(accountant: &Accountant) -> &'static str {
    match accountant {
        Accountant::Pld { .. } => "pld_poisson_subsampled_gaussian",
        Accountant::Rdp { orders: privacy::RdpOrders::Extended } => "rdp_sampled_gaussian_extended_orders",
        Accountant::Rdp { orders: privacy::RdpOrders::Opacus } => "rdp_sampled_gaussian_opacus_orders",
    }
}

/// The parameter layout `config` gives on `data`.
fn layout_of<T>(config: &TrainConfig, data: &TrainData<T>) -> Layout {
    Layout::new(
        config.head,
        data.image_dim,
        data.report_dim,
        config.dim,
        matches!(config.temperature, Temperature::Learned { .. }),
    )
}

/// The training loop, from `start` or (None) from random parameters.
fn fit<T: Real>(
    data: &TrainData<T>,
    config: &TrainConfig,
    plan: &Plan,
    start: Option<Model<T>>,
    progress: &mut dyn FnMut(&TrainProgress),
) -> Model<T> {
    let mut model = match start {
        Some(model) => model,
        None => Model::<T>::init(layout_of(config, data), plan.seed, config.temperature.initial()),
    };
    let mut optimizer = OptimizerState::<T>::new(config.optimizer, model.layout.n_params);
    let mut grad = vec![T::of(0.0); model.layout.n_params];
    let mut report = |step: u64, patients: usize, loss: f64| {
        progress(&TrainProgress {
            step,
            steps: plan.steps,
            batch_patients: patients,
            loss_per_patient: if patients > 0 { loss / patients as f64 } else { 0.0 },
        })
    };
    match plan.groups_per_step {
        Some(n_groups) => {
            let key = dpsgd::group_key(plan.seed);
            for step in 0..plan.steps {
                let sampled = dpsgd::poisson_sample(plan.seed, step, data.n_patients(), plan.sample_rate);
                let batch = data.dp_batch(&sampled, &key, step, n_groups);
                let stats = match plan.dp {
                    Some((noise_multiplier, group_clip)) => dp_step(
                        &mut model,
                        &mut optimizer,
                        &mut grad,
                        &batch,
                        DpStep {
                            noise_multiplier,
                            clip: config.clip,
                            group_clip,
                            seed: plan.seed,
                            step,
                            fault: config.fault,
                        },
                        config.batch_size,
                        config.lr,
                    ),
                    None => {
                        // Batching::DpGroups: the same batches and divisor, no clip, no noise.
                        let stats = batch::batch_gradient(&model, &batch, None, &mut grad);
                        let inv = T::of(1.0 / config.batch_size as f64);
                        grad.iter_mut().for_each(|g| *g *= inv);
                        optimizer.step(&mut model.params, &grad, config.lr);
                        model.clamp_log_scale();
                        stats
                    }
                };
                report(step + 1, sampled.len(), stats.loss);
            }
        }
        None => {
            let batch_size = config.batch_size;
            let mut step = 0u64;
            'epochs: for epoch in 0.. {
                let mut order: Vec<u32> = (0..data.n_patients() as u32).collect();
                order.shuffle(&mut crate::rng::stream(plan.seed, "train/shuffle", epoch));
                for patients in order.chunks(batch_size) {
                    if step == plan.steps {
                        break 'epochs;
                    }
                    let batch = data.batch([patients]);
                    let stats = batch::batch_gradient(&model, &batch, None, &mut grad);
                    let inv = T::of(1.0 / patients.len() as f64);
                    grad.iter_mut().for_each(|g| *g *= inv);
                    optimizer.step(&mut model.params, &grad, config.lr);
                    model.clamp_log_scale();
                    step += 1;
                    report(step, patients.len(), stats.loss);
                }
            }
        }
    }
    model
}

/// The noise parameters of one DP-SGD step.
#[derive(Debug, Clone, Copy)]
struct DpStep {
    noise_multiplier: f64,
    clip: f64,
    group_clip: f64,
    seed: u64,
    step: u64,
    fault: Option<Fault>,
}

/// One DP-SGD step: clipped group gradients summed, Gaussian noise of std
/// `noise_multiplier * clip` added, divided by the expected batch size, optimiser update.
fn dp_step<T: Real>(
    model: &mut Model<T>,
    optimizer: &mut OptimizerState<T>,
    grad: &mut [T],
    batch: &batch::Batch<T>,
    noise: DpStep,
    expected_batch: usize,
    lr: f64,
) -> batch::BatchStats {
    let clip = (noise.fault != Some(Fault::NoClipping)).then_some(noise.group_clip);
    let stats = batch::batch_gradient(model, batch, clip, grad);
    if noise.fault != Some(Fault::NoNoise) {
        dpsgd::add_noise(grad, noise.noise_multiplier * noise.clip, noise.seed, noise.step);
    }
    let inv = T::of(1.0 / expected_batch as f64);
    grad.iter_mut().for_each(|g| *g *= inv);
    optimizer.step(&mut model.params, grad, lr);
    model.clamp_log_scale();
    stats
}
