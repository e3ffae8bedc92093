//! `linkrisk train-heads DIR --out DIR2`: train image and report projection heads on the
//! frozen features of the train split (non-private or DP-SGD with patients as the privacy
//! unit), from the same public warm start as `linkrisk mitigate`, and write the projected
//! cohort with its `privacy.json` ledger; `--export-heads DIR` writes the heads themselves
//! for `linkrisk apply-heads`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::ValueEnum;
use linkrisk::cohort::Cohort;
use linkrisk::train::{
    self, Batching, HeadKind, Optimizer, Privacy, PublicSource, Temperature, TrainConfig, WarmStart,
};

use crate::progress;

/// Head architecture flag.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum HeadArg {
    /// One affine layer.
    Linear,
    /// Linear + GELU + linear (`--hidden` units).
    Mlp,
}

/// Optimiser flag.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum OptimizerArg {
    /// Adam (betas 0.9, 0.999).
    Adam,
    /// SGD with `--momentum`.
    Sgd,
}

impl OptimizerArg {
    /// The library optimiser (`momentum` for SGD).
    pub fn optimizer(self, momentum: f64) -> Optimizer {
        match self {
            OptimizerArg::Adam => Optimizer::default(),
            OptimizerArg::Sgd => Optimizer::Sgd { momentum },
        }
    }
}

/// Batching flag for non-private training.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum BatchingArg {
    /// Shuffled batches, InfoNCE over the whole batch.
    Shuffled,
    /// DP-SGD's Poisson batches and hash groups without clipping or noise (ablation).
    DpGroups,
}

/// Arguments of `linkrisk train-heads`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Exactly one of --epsilon (with --delta), --noise-multiplier (with --delta) or \
     --non-private.\n\nExample:\n  linkrisk train-heads cohort/ --out heads-eps0.34/ --epsilon 0.34 --delta 6e-6 \
     --export-heads shipped/\n\n\
     By default a quarter of the training patients is set aside as public data (not protected by \
     the DP guarantee) for the warm start, as in `linkrisk mitigate`; --warm-start-split uses an \
     existing split of other patients, --public-fraction 0 trains from random heads. Under DP-SGD \
     the guarantee assumes the seed is secret: without --seed a fresh seed is drawn from the \
     operating system and not recorded.")]
pub struct Args {
    /// Cohort directory with `image_features` and `report_features` views and a `split` column.
    pub dir: PathBuf,
    /// Output cohort directory (metadata.csv, image.npy, report.npy, privacy.json).
    #[arg(long)]
    pub out: PathBuf,
    /// Also export the trained heads (heads.safetensors with the privacy ledger and the
    /// feature normalisation in its metadata, and privacy.json) to DIR, for
    /// `linkrisk apply-heads`.
    #[arg(long, value_name = "DIR")]
    pub export_heads: Option<PathBuf>,
    /// Share of the training split's patients set aside as public data: non-private heads
    /// fitted on them are the start of training, the rest are the patients the DP guarantee
    /// protects (the same warm start as `linkrisk mitigate`). 0 = random initialisation.
    #[arg(long, default_value_t = 0.25, allow_negative_numbers = true)]
    pub public_fraction: f64,
    /// Start from non-private heads fitted on this split instead (patients that are not in
    /// the training split, e.g. public data); overrides --public-fraction.
    #[arg(long)]
    pub warm_start_split: Option<String>,
    /// Passes over the public patients when fitting the warm-start heads.
    #[arg(long, default_value_t = 100.0, allow_negative_numbers = true)]
    pub public_epochs: f64,
    /// Directions of the public input projection fitted on the warm-start patients
    /// (folded into the heads); 0 = none. [range: 0..=65536]
    #[arg(long, default_value_t = 128, value_parser = crate::range::count(0, 65_536))]
    pub public_pca_rank: usize,
    /// Target epsilon of DP-SGD (the noise multiplier is calibrated to it).
    #[arg(long, allow_negative_numbers = true, conflicts_with_all = ["non_private", "noise_multiplier"], required_unless_present_any = ["non_private", "noise_multiplier"])]
    pub epsilon: Option<f64>,
    /// Delta of the DP guarantee (below 1 / number of training patients).
    #[arg(long, allow_negative_numbers = true, conflicts_with = "non_private")]
    pub delta: Option<f64>,
    /// DP-SGD with this noise multiplier instead of a target epsilon.
    #[arg(long, allow_negative_numbers = true, conflicts_with = "non_private")]
    pub noise_multiplier: Option<f64>,
    /// Train without differential privacy.
    #[arg(long)]
    pub non_private: bool,
    /// Passes over the training patients.
    #[arg(long, default_value_t = TrainConfig::non_private().epochs, allow_negative_numbers = true)]
    pub epochs: f64,
    /// Expected batch size in patients (sample rate = batch size / training patients). [range: 1..=100000000]
    #[arg(long, default_value_t = TrainConfig::non_private().batch_size, value_parser = crate::range::count(1, 100_000_000))]
    pub batch_size: usize,
    /// DP-SGD sensitivity C: group gradients are clipped to C/2, noise std is sigma x C.
    #[arg(long, default_value_t = TrainConfig::non_private().clip, allow_negative_numbers = true)]
    pub clip: f64,
    /// Expected patients per InfoNCE group under DP-SGD. [range: 1..=100000000]
    #[arg(long, default_value_t = TrainConfig::non_private().group_size, value_parser = crate::range::count(1, 100_000_000))]
    pub group_size: usize,
    /// Learning rate.
    #[arg(long, default_value_t = TrainConfig::non_private().lr, allow_negative_numbers = true)]
    pub lr: f64,
    /// Batches of non-private training (dp-groups: DP-SGD's batches without clip or noise).
    #[arg(long, value_enum, default_value_t = BatchingArg::Shuffled)]
    pub batching: BatchingArg,
    /// Optimiser.
    #[arg(long, value_enum, default_value_t = OptimizerArg::Adam)]
    pub optimizer: OptimizerArg,
    /// SGD momentum.
    #[arg(long, default_value_t = 0.9, allow_negative_numbers = true)]
    pub momentum: f64,
    /// Head architecture.
    #[arg(long, value_enum, default_value_t = HeadArg::Linear)]
    pub head: HeadArg,
    /// Hidden units of the mlp head. [range: 1..=65536]
    #[arg(long, default_value_t = 512, value_parser = crate::range::count(1, 65_536))]
    pub hidden: usize,
    /// Dimension of the shared output space. [range: 1..=65536]
    #[arg(long, default_value_t = TrainConfig::non_private().dim, value_parser = crate::range::count(1, 65_536))]
    pub dim: usize,
    /// InfoNCE temperature (the starting value with --learn-temperature).
    #[arg(long, default_value_t = 0.07, allow_negative_numbers = true)]
    pub temperature: f64,
    /// Learn the temperature with the heads.
    #[arg(long)]
    pub learn_temperature: bool,
    /// Seed of all randomness (default: fresh from the OS, not recorded). Under DP-SGD a
    /// seed makes the noise reproducible, so the ledger then says `"private": false`.
    #[arg(long)]
    pub seed: Option<u64>,
    #[command(flatten)]
    pub accountant: super::accountant::AccountantArgs,
    /// Accept a --delta of at least 1 / training patients (experiments only: such a delta
    /// allows releasing a whole patient's records).
    #[arg(long)]
    pub allow_large_delta: bool,
    /// View holding the frozen image features.
    #[arg(long, default_value = "image_features")]
    pub image_view: String,
    /// View holding the frozen report features.
    #[arg(long, default_value = "report_features")]
    pub report_view: String,
    /// Split to train on.
    #[arg(long, default_value = "train")]
    pub split: String,
    /// Print the privacy ledger as JSON instead of a summary.
    #[arg(long)]
    pub json: bool,
}

impl Args {
    /// The library config these flags describe.
    pub fn config(&self) -> anyhow::Result<TrainConfig> {
        let privacy = match (self.non_private, self.epsilon, self.noise_multiplier, self.delta) {
            (true, ..) => Privacy::NonPrivate,
            (false, Some(epsilon), None, Some(delta)) => Privacy::Dp { epsilon, delta },
            (false, None, Some(noise_multiplier), Some(delta)) => {
                Privacy::DpNoise { noise_multiplier, delta }
            }
            (false, _, _, None) => anyhow::bail!(
                "--delta is required with --epsilon or --noise-multiplier (choose it below 1 / number of \
                 training patients, e.g. 6e-6 for 126,000 patients)"
            ),
            _ => anyhow::bail!("pass exactly one of --epsilon, --noise-multiplier or --non-private"),
        };
        Ok(TrainConfig {
            image_view: self.image_view.clone(),
            report_view: self.report_view.clone(),
            train_split: self.split.clone(),
            head: match self.head {
                HeadArg::Linear => HeadKind::Linear,
                HeadArg::Mlp => HeadKind::Mlp { hidden: self.hidden },
            },
            dim: self.dim,
            privacy,
            epochs: self.epochs,
            batch_size: self.batch_size,
            clip: self.clip,
            group_size: self.group_size,
            lr: self.lr,
            batching: match self.batching {
                BatchingArg::Shuffled => Batching::Shuffled,
                BatchingArg::DpGroups => Batching::DpGroups,
            },
            optimizer: self.optimizer.optimizer(self.momentum),
            temperature: if self.learn_temperature {
                Temperature::Learned { initial: self.temperature }
            } else {
                Temperature::Fixed { value: self.temperature }
            },
            seed: self.seed,
            accountant: self.accountant.accountant()?,
            allow_large_delta: self.allow_large_delta,
            fault: None,
        })
    }
}

impl Args {
    /// The warm start these flags describe (None: random initialisation).
    pub fn warm_start(&self, config: &TrainConfig) -> Option<WarmStart> {
        let source = match &self.warm_start_split {
            Some(split) => PublicSource::Split { split: split.clone() },
            None if self.public_fraction == 0.0 => return None,
            None => PublicSource::Fraction { fraction: self.public_fraction },
        };
        let defaults = linkrisk::audit::mitigate::MitigateConfig::default().public_training;
        Some(WarmStart {
            source,
            training: TrainConfig {
                privacy: Privacy::NonPrivate,
                epochs: self.public_epochs,
                batch_size: defaults.batch_size,
                lr: defaults.lr,
                batching: Batching::Shuffled,
                ..config.clone()
            },
            pca_rank: self.public_pca_rank,
            seed: self.seed,
        })
    }
}

/// Train, write, summarise.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let config = args.config()?;
    config.validate()?;
    let warm = args.warm_start(&config);
    if let Some(w) = &warm {
        w.validate()?;
    }
    let cohort = Cohort::load(&args.dir)?;
    let bar = progress::bar(0, "training");
    let mut on_step = |p: &train::TrainProgress| {
        bar.set_length(p.steps);
        bar.set_position(p.step);
    };
    let (heads, relabelled, public) = match &warm {
        None => (train::train_heads_with_progress(&cohort, &config, &mut on_step)?, None, None),
        Some(w) => {
            let prepared = train::warm_start(&cohort, &config.train_split, w, &mut on_step)?;
            bar.reset();
            let data = prepared.relabelled.as_ref().unwrap_or(&cohort);
            let heads = train::train_heads_from(data, &config, &prepared.heads, &mut on_step)?;
            let public = (prepared.split.clone(), prepared.heads.ledger.train_patients);
            (heads, prepared.relabelled, Some(public))
        }
    };
    bar.finish_and_clear();
    let data = relabelled.as_ref().unwrap_or(&cohort);
    heads.write_cohort(data, &args.out)?;
    if let Some(dir) = &args.export_heads {
        heads.export(dir)?;
    }
    let ledger = &heads.ledger;
    if args.json {
        println!("{}", serde_json::to_string_pretty(ledger)?);
    } else {
        match ledger.epsilon {
            Some(epsilon) => println!(
                "DP-SGD: epsilon {epsilon:.4} at delta {:e} ({} accountant; noise multiplier {:.4}, clip {}, sample rate {:.5}, {} steps)",
                ledger.delta.unwrap_or(f64::NAN),
                ledger.accountant_parameters.map_or("no", |a| a.name()),
                ledger.noise_multiplier,
                ledger.clip.unwrap_or(f64::NAN),
                ledger.sample_rate,
                ledger.steps
            ),
            None => println!("non-private training: {} steps, batch {} patients", ledger.steps, ledger.expected_batch_size),
        }
        println!(
            "trained on {} records of {} patients (split `{}`); wrote {} (image.npy, report.npy: {} dims, privacy.json)",
            ledger.train_records,
            ledger.train_patients,
            ledger.train_split,
            args.out.display(),
            ledger.dim
        );
        if let Some((split, patients)) = &public {
            println!(
                "warm start: non-private heads fitted on {patients} patients of split `{split}` (not protected by the \
                 DP guarantee){}",
                ledger.input_projection.as_ref().map_or_else(String::new, |p| format!(
                    ", behind a public projection onto {} image / {} report directions",
                    p.image_rank, p.report_rank
                ))
            );
        }
        if let Some(dir) = &args.export_heads {
            println!("exported the heads to {} (heads.safetensors, privacy.json)", dir.display());
        }
        if let Some(reason) = &ledger.not_private_reason {
            println!("NOT A RELEASE: privacy.json says \"private\": false: {reason}");
        }
    }
    Ok(ExitCode::SUCCESS)
}
