//! Differential-privacy accounting for DP-SGD on the Poisson-subsampled Gaussian
//! mechanism, two ways ([`Accountant`]): a privacy-loss-distribution accountant ([`pld`],
//! Google's `dp_accounting` algorithm, the default: the tightest epsilon for the same run)
//! and the Rényi-DP accountant ([`rdp`], Opacus's conversion, over linkrisk's extended
//! order grid or Opacus's own, which reproduces Opacus 1.6 to 1e-6); and noise calibration
//! (the smallest noise multiplier that meets a target epsilon) through either. The
//! mitigation ledger (`privacy.json`) is written from these numbers. See docs/METHODS.md,
//! "Privacy accounting".

pub mod pld;
pub mod rdp;

use serde::{Deserialize, Serialize};

pub use rdp::{default_orders, epsilon_from_rdp, extended_orders, PrivacySpent};

/// The RDP order grid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RdpOrders {
    /// Opacus's `DEFAULT_ALPHAS` (151 orders, 1.1 to 63): reproduces an Opacus user's epsilon.
    Opacus,
    /// [`rdp::extended_orders`]: 1.01 to 65,536, so small epsilons are reachable and large
    /// noise multipliers are not overstated.
    Extended,
}

impl RdpOrders {
    /// The orders.
    pub fn orders(self) -> Vec<f64> {
        match self {
            RdpOrders::Opacus => default_orders(),
            RdpOrders::Extended => extended_orders(),
        }
    }
}

/// An accountant and its parameters (recorded in every privacy ledger).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "accountant", rename_all = "snake_case")]
pub enum Accountant {
    /// Privacy loss distribution with this discretisation interval of the loss.
    Pld {
        /// Grid spacing of the privacy loss ([`pld::DEFAULT_DISCRETIZATION`]).
        discretization: f64,
    },
    /// Rényi DP over an order grid, converted with Balle et al. (2020).
    Rdp {
        /// The order grid.
        orders: RdpOrders,
    },
}

impl Default for Accountant {
    /// PLD at discretisation 1e-4: measured 4-37% below the RDP epsilon of the same run
    /// (docs/METHODS.md), at a cost of well under a second per evaluation.
    fn default() -> Self {
        Accountant::Pld { discretization: pld::DEFAULT_DISCRETIZATION }
    }
}

/// An (epsilon, delta) guarantee from an accountant.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Guarantee {
    /// Epsilon (never negative; infinite when no finite bound exists).
    pub epsilon: f64,
    /// The RDP order that attains it (RDP accountant only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub best_order: Option<f64>,
}

impl Accountant {
    /// Short name: `pld` or `rdp`.
    pub fn name(&self) -> &'static str {
        match self {
            Accountant::Pld { .. } => "pld",
            Accountant::Rdp { .. } => "rdp",
        }
    }

    /// Reject bad parameters (a discretisation outside (0, 0.1]).
    pub fn validate(&self) -> Result<()> {
        if let Accountant::Pld { discretization } = *self {
            if !(discretization.is_finite() && discretization > 0.0 && discretization <= 0.1) {
                return Err(Error::config(format!(
                    "--pld-discretization must be in (0, 0.1] (default {}), got {discretization}",
                    pld::DEFAULT_DISCRETIZATION
                )));
            }
        }
        Ok(())
    }

    /// Epsilon after `steps` steps at `sample_rate` with `noise_multiplier`, at `delta`.
    pub fn epsilon(
        &self,
        sample_rate: f64,
        noise_multiplier: f64,
        steps: u64,
        delta: f64,
    ) -> Result<Guarantee> {
        self.validate()?;
        check_sample_rate(sample_rate)?;
        check_noise_multiplier(noise_multiplier)?;
        check_steps(steps)?;
        check_delta(delta)?;
        self.epsilon_unchecked(sample_rate, noise_multiplier, steps, delta)
    }

    fn epsilon_unchecked(&self, q: f64, sigma: f64, steps: u64, delta: f64) -> Result<Guarantee> {
        match *self {
            Accountant::Pld { discretization } => Ok(Guarantee {
                epsilon: pld::epsilon(q, sigma, steps, delta, discretization)?,
                best_order: None,
            }),
            Accountant::Rdp { orders } => {
                let orders = orders.orders();
                let spent = epsilon_from_rdp(&orders, &rdp::rdp_composed(q, sigma, steps, &orders), delta);
                Ok(Guarantee { epsilon: spent.epsilon, best_order: Some(spent.best_order) })
            }
        }
    }

    /// Calibration's stopping rule: RDP (cheap evaluations) bisects until the bracket's
    /// relative width is 1e-10; PLD (each evaluation builds and composes a distribution)
    /// searches by regula falsi in (ln sigma, ln epsilon) until the bracket's width or the
    /// gap between the achieved and the target epsilon is 1e-6 relative, far below its
    /// discretisation error.
    pub fn calibration_tolerance(&self) -> f64 {
        match self {
            Accountant::Pld { .. } => 1e-6,
            Accountant::Rdp { .. } => CALIBRATION_RELATIVE_TOLERANCE,
        }
    }

    /// The smallest noise multiplier (to [`Accountant::calibration_tolerance`]) for which
    /// `steps` steps at `sample_rate` are (`target_epsilon`, `delta`)-DP: bracket by
    /// doubling, then bisect; the upper end of the final bracket is returned, so its
    /// epsilon never exceeds the target.
    pub fn calibrate(
        &self,
        target_epsilon: f64,
        delta: f64,
        sample_rate: f64,
        steps: u64,
    ) -> Result<Calibration> {
        self.validate()?;
        check_sample_rate(sample_rate)?;
        check_steps(steps)?;
        check_delta(delta)?;
        check_target_epsilon(target_epsilon)?;
        let tolerance = self.calibration_tolerance();
        let eps_at = |sigma: f64| self.epsilon_unchecked(sample_rate, sigma, steps, delta);
        let found = match self {
            Accountant::Rdp { .. } => {
                bisect_noise(target_epsilon, delta, sample_rate, steps, tolerance, eps_at)
            }
            Accountant::Pld { .. } => {
                let (low, high) = bracket_noise(target_epsilon, delta, sample_rate, steps, &eps_at)?;
                regula_falsi_noise(target_epsilon, low, high, tolerance, &eps_at)
            }
        };
        found.map(|(noise_multiplier, g)| Calibration {
            noise_multiplier,
            epsilon: g.epsilon,
            best_order: g.best_order.unwrap_or(f64::NAN),
        })
    }
}

use crate::error::{Error, Result};

/// Noise calibration stops when the bracket `[low, high]` around the smallest sufficient
/// noise multiplier satisfies `high - low <= CALIBRATION_RELATIVE_TOLERANCE * high`
/// (Opacus stops at an epsilon gap of 0.01, far coarser).
pub const CALIBRATION_RELATIVE_TOLERANCE: f64 = 1e-10;

/// Noise multipliers above this are reported as "budget too small" (Opacus's `MAX_SIGMA`).
pub const MAX_NOISE_MULTIPLIER: f64 = 1e6;

/// Epsilon after `steps` steps of the sampled Gaussian mechanism with sampling rate
/// `sample_rate` and `noise_multiplier`, at `delta`, over Opacus's default orders (the
/// RDP accountant as Opacus runs it; [`Accountant`] chooses among all of them).
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
    check_target_epsilon(target_epsilon)?;
    bisect_noise(target_epsilon, delta, sample_rate, steps, CALIBRATION_RELATIVE_TOLERANCE, |sigma| {
        let spent = epsilon_unchecked(sample_rate, sigma, steps, delta);
        Ok(Guarantee { epsilon: spent.epsilon, best_order: Some(spent.best_order) })
    })
    .map(|(noise_multiplier, g)| Calibration {
        noise_multiplier,
        epsilon: g.epsilon,
        best_order: g.best_order.unwrap_or(f64::NAN),
    })
}

/// Bracket the smallest sufficient noise multiplier by doubling from 1: `(low, high)` with
/// `high`'s guarantee meeting the target (`low` = 0 when 1 already does).
fn bracket_noise(
    target_epsilon: f64,
    delta: f64,
    sample_rate: f64,
    steps: u64,
    eps_at: &impl Fn(f64) -> Result<Guarantee>,
) -> Result<((f64, Option<Guarantee>), (f64, Guarantee))> {
    let (mut low, mut high) = ((0.0f64, None), 1.0f64);
    let mut at_high = eps_at(high)?;
    while at_high.epsilon > target_epsilon {
        low = (high, Some(at_high));
        high *= 2.0;
        if high > MAX_NOISE_MULTIPLIER {
            return Err(Error::config(format!(
                "--epsilon {target_epsilon} is out of reach at delta {delta}, sample rate \
                 {sample_rate} and {steps} steps (it needs a noise multiplier above \
                 {MAX_NOISE_MULTIPLIER:e}); raise --epsilon or --delta, or train for fewer steps"
            )));
        }
        at_high = eps_at(high)?;
    }
    Ok((low, (high, at_high)))
}

/// Bisect the bracket to a relative width of `tolerance`; returns the bracket's upper end
/// and its guarantee.
fn bisect_noise(
    target_epsilon: f64,
    delta: f64,
    sample_rate: f64,
    steps: u64,
    tolerance: f64,
    eps_at: impl Fn(f64) -> Result<Guarantee>,
) -> Result<(f64, Guarantee)> {
    let ((mut low, _), (mut high, mut at_high)) =
        bracket_noise(target_epsilon, delta, sample_rate, steps, &eps_at)?;
    while high - low > tolerance * high {
        let mid = 0.5 * (low + high);
        let at_mid = eps_at(mid)?;
        if at_mid.epsilon <= target_epsilon {
            high = mid;
            at_high = at_mid;
        } else {
            low = mid;
        }
    }
    Ok((high, at_high))
}

/// Shrink the bracket by regula falsi on `ln epsilon` against `ln sigma` (nearly linear
/// there), with the Illinois modification so both ends move, until its relative width or
/// the gap between the achieved and the target epsilon is below `tolerance`. Every
/// evaluated point keeps the invariant that `high` meets the target, so the answer is
/// always a valid calibration. A few evaluations instead of bisection's twenty.
fn regula_falsi_noise(
    target_epsilon: f64,
    (mut low, at_low): (f64, Option<Guarantee>),
    (mut high, mut at_high): (f64, Guarantee),
    tolerance: f64,
    eps_at: &impl Fn(f64) -> Result<Guarantee>,
) -> Result<(f64, Guarantee)> {
    let at_low = match at_low {
        Some(g) => g,
        None => {
            // The target is met at sigma = 1: halve until it is not (no finite ln epsilon
            // at sigma = 0, where doubling's bracket starts).
            let mut found = None;
            while found.is_none() {
                low = 0.5 * high;
                if low < 1e-3 {
                    return Err(Error::config(format!(
                        "--epsilon {target_epsilon} is met by any noise multiplier above {low}; \
                         such a run has no meaningful privacy"
                    )));
                }
                let at = eps_at(low)?;
                if at.epsilon > target_epsilon {
                    found = Some(at);
                } else {
                    (high, at_high) = (low, at);
                }
            }
            found.expect("loop ends with a value")
        }
    };
    let goal = target_epsilon.ln();
    let (mut f_low, mut f_high) = (at_low.epsilon.ln() - goal, at_high.epsilon.ln() - goal);
    let mut side = 0i8;
    for _ in 0..200 {
        if high - low <= tolerance * high || -f_high <= tolerance {
            break;
        }
        let (ll, lh) = (low.ln(), high.ln());
        let mut x = if f_low.is_finite() && f_high.is_finite() && f_low != f_high {
            ((ll * f_high - lh * f_low) / (f_high - f_low)).exp()
        } else {
            0.5 * (low + high)
        };
        if !(x > low && x < high) {
            x = 0.5 * (low + high);
        }
        let at_x = eps_at(x)?;
        let f_x = at_x.epsilon.ln() - goal;
        if at_x.epsilon <= target_epsilon {
            (high, at_high, f_high) = (x, at_x, f_x);
            if side == 1 {
                f_low *= 0.5;
            }
            side = 1;
        } else {
            (low, f_low) = (x, f_x);
            if side == -1 {
                f_high *= 0.5;
            }
            side = -1;
        }
    }
    Ok((high, at_high))
}

fn check_target_epsilon(target_epsilon: f64) -> Result<()> {
    if !(target_epsilon.is_finite() && target_epsilon > 0.0) {
        return Err(Error::config(format!(
            "--epsilon must be a positive finite number, got {target_epsilon}"
        )));
    }
    Ok(())
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

/// Reject a delta of at least 1 / `units` privacy units (unless `allow_large`): such a delta
/// admits a mechanism that publishes one unit's data outright with that probability, so it
/// guarantees nothing meaningful.
pub fn check_delta_for_units(delta: f64, units: u64, allow_large: bool) -> Result<()> {
    check_delta(delta)?;
    if units == 0 {
        return Err(Error::config("the number of privacy units (patients) must be at least 1"));
    }
    let bound = 1.0 / units as f64;
    if delta >= bound && !allow_large {
        return Err(Error::config(format!(
            "--delta {delta} is not below 1 / {units} privacy units (patients) = {bound:.3e}: a guarantee \
             at this delta allows releasing a whole patient's records; use --delta below {bound:.3e} \
             (typically 1 / (10 x patients)), or pass --allow-large-delta for experiments"
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
