//! `linkrisk accountant`: epsilon of a DP-SGD run (Rényi-DP accountant, Opacus's orders and
//! conversion), or with `--epsilon` the smallest noise multiplier that meets a target.

use std::process::ExitCode;

use serde::Serialize;

use linkrisk::privacy;

/// Arguments of `linkrisk accountant`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  linkrisk accountant --sample-rate 0.004267 --noise-multiplier 1.1 --steps 3515 --delta 1e-5\n  \
     linkrisk accountant --sample-rate 0.01 --epsilon 0.34 --epochs 10 --delta 6e-6 --json"
)]
pub struct Args {
    /// Poisson sampling rate q: expected batch size / number of privacy units (patients).
    #[arg(long, allow_negative_numbers = true)]
    pub sample_rate: f64,
    /// Noise standard deviation divided by the clipping norm (sigma). Prints epsilon.
    #[arg(
        long,
        allow_negative_numbers = true,
        required_unless_present = "epsilon",
        conflicts_with = "epsilon"
    )]
    pub noise_multiplier: Option<f64>,
    /// Target epsilon: print the smallest noise multiplier that reaches it instead.
    #[arg(long, allow_negative_numbers = true)]
    pub epsilon: Option<f64>,
    /// Number of noisy steps T.
    #[arg(long, required_unless_present = "epochs", conflicts_with = "epochs")]
    pub steps: Option<u64>,
    /// Epochs instead of steps: steps = floor(epochs / sample rate).
    #[arg(long, allow_negative_numbers = true)]
    pub epochs: Option<f64>,
    /// Target delta of the (epsilon, delta) guarantee, in (0, 1).
    #[arg(long, allow_negative_numbers = true)]
    pub delta: f64,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Epsilon of a run (`--noise-multiplier`).
#[derive(Debug, Serialize)]
struct EpsilonOutput {
    epsilon: f64,
    best_order: f64,
    sample_rate: f64,
    noise_multiplier: f64,
    steps: u64,
    delta: f64,
}

/// Calibrated noise (`--epsilon`).
#[derive(Debug, Serialize)]
struct NoiseOutput {
    noise_multiplier: f64,
    target_epsilon: f64,
    achieved_epsilon: f64,
    best_order: f64,
    sample_rate: f64,
    steps: u64,
    delta: f64,
    relative_tolerance: f64,
}

/// Compute and print.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    privacy::check_sample_rate(args.sample_rate)?;
    let steps = match (args.steps, args.epochs) {
        (Some(steps), _) => steps,
        (None, Some(epochs)) => privacy::steps_for_epochs(epochs, args.sample_rate)?,
        (None, None) => anyhow::bail!("pass --steps or --epochs"),
    };
    match (args.noise_multiplier, args.epsilon) {
        (Some(noise_multiplier), _) => {
            let spent = privacy::epsilon(args.sample_rate, noise_multiplier, steps, args.delta)?;
            let out = EpsilonOutput {
                epsilon: spent.epsilon,
                best_order: spent.best_order,
                sample_rate: args.sample_rate,
                noise_multiplier,
                steps,
                delta: args.delta,
            };
            if args.json {
                println!("{}", serde_json::to_string(&out)?);
            } else {
                println!(
                    "epsilon {} at delta {} (best RDP order {}) for {} steps at sample rate {} with noise multiplier {}",
                    out.epsilon, out.delta, out.best_order, steps, out.sample_rate, noise_multiplier
                );
            }
        }
        (None, Some(target)) => {
            let cal = privacy::calibrate_noise_multiplier(target, args.delta, args.sample_rate, steps)?;
            let out = NoiseOutput {
                noise_multiplier: cal.noise_multiplier,
                target_epsilon: target,
                achieved_epsilon: cal.epsilon,
                best_order: cal.best_order,
                sample_rate: args.sample_rate,
                steps,
                delta: args.delta,
                relative_tolerance: privacy::CALIBRATION_RELATIVE_TOLERANCE,
            };
            if args.json {
                println!("{}", serde_json::to_string(&out)?);
            } else {
                println!(
                    "noise multiplier {} gives epsilon {} <= {} at delta {} (best RDP order {}) for {} steps at sample rate {}",
                    out.noise_multiplier, out.achieved_epsilon, target, out.delta, out.best_order, steps, out.sample_rate
                );
            }
        }
        (None, None) => anyhow::bail!("pass --noise-multiplier or --epsilon"),
    }
    Ok(ExitCode::SUCCESS)
}
