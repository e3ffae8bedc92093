//! Differential-privacy accounting for DP-SGD: the Rényi-DP accountant for the
//! Poisson-subsampled Gaussian mechanism (Opacus's orders and conversion, agreeing with
//! Opacus 1.6 to 1e-6), and noise calibration (the smallest noise multiplier that meets a
//! target epsilon). The mitigation ledger (`privacy.json`) is written from these numbers.
//! See docs/METHODS.md, "Privacy accounting".

pub mod rdp;

pub use rdp::{default_orders, epsilon_from_rdp, PrivacySpent};

use crate::error::{Error, Result};

/// Noise calibration stops when the bracket `[low, high]` around the smallest sufficient
/// noise multiplier satisfies `high - low <= CALIBRATION_RELATIVE_TOLERANCE * high`
/// (Opacus stops at an epsilon gap of 0.01, far coarser).
pub const CALIBRATION_RELATIVE_TOLERANCE: f64 = 1e-10;

/// Noise multipliers above this are reported as "budget too small" (Opacus's `MAX_SIGMA`).
pub const MAX_NOISE_MULTIPLIER: f64 = 1e6;

/// Epsilon after `steps` steps of the sampled Gaussian mechanism with sampling rate
/// `sample_rate` and `noise_multiplier`, at `delta`, over Opacus's default orders.
pub fn epsilon(sample_rate: f64, noise_multiplier: f64, steps: u64, delta: f64) -> Result<PrivacySpent> {
    check_sample_rate(sample_rate)?;
    check_noise_multiplier(noise_multiplier)?;
    check_steps(steps)?;
    check_delta(delta)?;
    Ok(epsilon_unchecked(sample_rate, noise_multiplier, steps, delta))
}

fn epsilon_unchecked(sample_rate: f64, noise_multiplier: f64, steps: u64, delta: f64) -> PrivacySpent {
    let orders = default_orders();
    let rdp = rdp::rdp_composed(sample_rate, noise_multiplier, steps, &orders);
    epsilon_from_rdp(&orders, &rdp, delta)
}

/// Steps in `epochs` epochs at `sample_rate`: `floor(epochs / sample_rate)` as Opacus
/// computes it, except that a quotient within 1e-9 (relative) below an integer counts as
/// that integer (so 3 epochs at q = 0.03 are 100 steps, not 99).
pub fn steps_for_epochs(epochs: f64, sample_rate: f64) -> Result<u64> {
    check_sample_rate(sample_rate)?;
    if !(epochs.is_finite() && epochs > 0.0) {
        return Err(Error::config(format!("--epochs must be a positive number, got {epochs}")));
    }
    let exact = epochs / sample_rate;
    let rounded = exact.round();
    let steps = if (rounded - exact).abs() <= 1e-9 * exact { rounded } else { exact.floor() };
    if steps < 1.0 {
        return Err(Error::config(format!(
            "--epochs {epochs} at sample rate {sample_rate} is less than one step; train for at \
             least {sample_rate} epochs"
        )));
    }
    if steps > 1e15 {
        return Err(Error::config(format!(
            "--epochs {epochs} / sample rate {sample_rate} is too many steps"
        )));
    }
    Ok(steps as u64)
}

/// The result of noise calibration.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Calibration {
    /// The smallest noise multiplier (to [`CALIBRATION_RELATIVE_TOLERANCE`]) whose epsilon
    /// does not exceed the target.
    pub noise_multiplier: f64,
    /// The epsilon that noise multiplier gives (at most the target).
    pub epsilon: f64,
    /// The RDP order that gives it.
    pub best_order: f64,
}

/// The smallest noise multiplier for which `steps` steps at `sample_rate` are
/// (`target_epsilon`, `delta`)-DP: bracket by doubling, then bisect to a relative width of
/// [`CALIBRATION_RELATIVE_TOLERANCE`]. The returned multiplier is the upper end of the final
/// bracket, so its epsilon never exceeds the target.
pub fn calibrate_noise_multiplier(
    target_epsilon: f64,
    delta: f64,
    sample_rate: f64,
    steps: u64,
) -> Result<Calibration> {
    check_sample_rate(sample_rate)?;
    check_steps(steps)?;
    check_delta(delta)?;
    if !(target_epsilon.is_finite() && target_epsilon > 0.0) {
        return Err(Error::config(format!(
            "--epsilon must be a positive finite number, got {target_epsilon}"
        )));
    }
    let eps_at = |sigma: f64| epsilon_unchecked(sample_rate, sigma, steps, delta);
    let (mut low, mut high) = (0.0f64, 1.0f64);
    let mut at_high = eps_at(high);
    while at_high.epsilon > target_epsilon {
        low = high;
        high *= 2.0;
        if high > MAX_NOISE_MULTIPLIER {
            return Err(Error::config(format!(
                "--epsilon {target_epsilon} is out of reach at delta {delta}, sample rate \
                 {sample_rate} and {steps} steps (it needs a noise multiplier above \
                 {MAX_NOISE_MULTIPLIER:e}); raise --epsilon or --delta, or train for fewer steps"
            )));
        }
        at_high = eps_at(high);
    }
    while high - low > CALIBRATION_RELATIVE_TOLERANCE * high {
        let mid = 0.5 * (low + high);
        let at_mid = eps_at(mid);
        if at_mid.epsilon <= target_epsilon {
            high = mid;
            at_high = at_mid;
        } else {
            low = mid;
        }
    }
    Ok(Calibration { noise_multiplier: high, epsilon: at_high.epsilon, best_order: at_high.best_order })
}

/// Reject a sampling rate outside (0, 1].
pub fn check_sample_rate(sample_rate: f64) -> Result<()> {
    if !(sample_rate > 0.0 && sample_rate <= 1.0) {
        return Err(Error::config(format!(
            "--sample-rate must be in (0, 1] (expected batch / number of privacy units), got {sample_rate}"
        )));
    }
    Ok(())
}

/// Reject a noise multiplier that is not a positive finite number.
pub fn check_noise_multiplier(noise_multiplier: f64) -> Result<()> {
    if !(noise_multiplier.is_finite() && noise_multiplier > 0.0) {
        return Err(Error::config(format!(
            "--noise-multiplier must be a positive finite number, got {noise_multiplier}"
        )));
    }
    Ok(())
}

/// Reject a delta outside (0, 1).
pub fn check_delta(delta: f64) -> Result<()> {
    if !(delta > 0.0 && delta < 1.0) {
        return Err(Error::config(format!(
            "--delta must be in (0, 1), typically below 1 / number of patients, got {delta}"
        )));
    }
    Ok(())
}

fn check_steps(steps: u64) -> Result<()> {
    if steps == 0 {
        return Err(Error::config("--steps must be at least 1"));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
