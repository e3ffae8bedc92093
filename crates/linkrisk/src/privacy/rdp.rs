//! Rényi differential privacy of the Poisson-subsampled Gaussian mechanism (SGM), computed
//! the way Opacus 1.x (after TF Privacy) computes it, so that an epsilon reported by
//! linkrisk is the epsilon an Opacus user would see for the same run.
//!
//! For sampling rate q, noise multiplier sigma and order alpha, the RDP of one step is
//! `ln(A_alpha) / (alpha - 1)` with `A_alpha` from Mironov, Talwar and Zhang, "Rényi
//! Differential Privacy of the Sampled Gaussian Mechanism" (arXiv:1908.10530, section 3.3):
//! a finite binomial sum for integer alpha and two erfc-weighted series for fractional alpha.
//! RDP composes additively over steps, and [`epsilon_from_rdp`] converts it to
//! (epsilon, delta)-DP with Balle et al.'s improved conversion ("Hypothesis testing
//! interpretations and Rényi differential privacy", AISTATS 2020, Theorem 21), as Opacus's
//! `get_privacy_spent` does.

use crate::metrics::interval::{erfc, erfcx};

/// Opacus's `RDPAccountant.DEFAULT_ALPHAS`: `[1 + x / 10 for x in range(1, 100)] +
/// list(range(12, 64))`, 151 orders from 1.1 to 63.
pub fn default_orders() -> Vec<f64> {
    (1..100).map(|x| 1.0 + f64::from(x) / 10.0).chain((12..64).map(f64::from)).collect()
}

/// linkrisk's extended order grid: fractional orders 1.01-1.09 below Opacus's grid (large
/// epsilons, where the best order approaches 1), Opacus's 151 orders, then integer orders
/// from 64 to 65,536 about 6% apart (72, 80, ..., then geometric). Opacus stops at 63, which
/// puts a floor under the epsilon it can certify (about 0.11 at delta 6e-6, whatever the
/// noise) and overstates the epsilon of large noise multipliers, whose best order lies far
/// above 63. Between neighbouring orders the epsilon changes by well under 1%.
pub fn extended_orders() -> Vec<f64> {
    let mut orders: Vec<f64> = (1..10).map(|x| 1.0 + f64::from(x) / 100.0).collect();
    orders.extend(default_orders());
    let mut alpha = 64.0f64;
    while alpha < 65_536.0 {
        orders.push(alpha);
        let next = (alpha * 1.0625).round();
        alpha = if next - alpha < 8.0 { alpha + 8.0 } else { next };
    }
    orders.push(65_536.0);
    orders
}

/// Series terms below `exp(-30)` end the fractional-order sum (Opacus's stopping rule).
const SERIES_CUTOFF: f64 = -30.0;

/// A fractional-order series that has not converged after this many terms is treated as
/// giving no bound at that order (RDP = infinity), never as a small value.
const MAX_SERIES_TERMS: u64 = 10_000_000;

/// RDP of one step of the sampled Gaussian mechanism at order `alpha` (> 1), for sampling
/// rate `q` in [0, 1] and noise multiplier `sigma` (noise std / L2 sensitivity). Can be
/// infinite (no privacy, or a series that cannot be evaluated).
pub fn rdp_step(q: f64, sigma: f64, alpha: f64) -> f64 {
    if q == 0.0 {
        return 0.0;
    }
    if sigma == 0.0 {
        return f64::INFINITY;
    }
    if q == 1.0 {
        return alpha / (2.0 * (sigma * sigma));
    }
    if alpha.is_infinite() {
        return f64::INFINITY;
    }
    log_a(q, sigma, alpha) / (alpha - 1.0)
}

/// RDP after `steps` compositions of the same step, at each of `orders`.
pub fn rdp_composed(q: f64, sigma: f64, steps: u64, orders: &[f64]) -> Vec<f64> {
    use rayon::prelude::*;
    orders.par_iter().map(|&alpha| rdp_step(q, sigma, alpha) * steps as f64).collect()
}

/// An (epsilon, delta) guarantee and the RDP order that gave it.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct PrivacySpent {
    /// The smallest epsilon over the orders tried.
    pub epsilon: f64,
    /// The order alpha that attains it (NaN when no order gives a finite epsilon).
    pub best_order: f64,
}

/// Convert RDP values at `orders` to (epsilon, delta)-DP, minimising over orders (Balle et
/// al. 2020, Theorem 21; Opacus `get_privacy_spent`). NaN entries are skipped; the first
/// minimum wins ties, as `numpy.nanargmin` does.
pub fn epsilon_from_rdp(orders: &[f64], rdp: &[f64], delta: f64) -> PrivacySpent {
    assert_eq!(orders.len(), rdp.len(), "epsilon_from_rdp: one RDP value per order");
    let mut best = PrivacySpent { epsilon: f64::INFINITY, best_order: f64::NAN };
    let mut found = false;
    for (&alpha, &r) in orders.iter().zip(rdp) {
        let eps = r - (delta.ln() + alpha.ln()) / (alpha - 1.0) + ((alpha - 1.0) / alpha).ln();
        if eps.is_nan() {
            continue;
        }
        // The conversion can go below zero at large delta; epsilon is never negative.
        let eps = eps.max(0.0);
        if !found || eps < best.epsilon {
            best = PrivacySpent { epsilon: eps, best_order: alpha };
            found = true;
        }
    }
    best
}

/// `ln(A_alpha)`: the integer-order sum or the fractional-order series.
fn log_a(q: f64, sigma: f64, alpha: f64) -> f64 {
    if alpha.fract() == 0.0 && alpha <= u32::MAX as f64 {
        log_a_int(q, sigma, alpha as u32)
    } else {
        log_a_frac(q, sigma, alpha)
    }
}

/// `ln(A_alpha)` for integer alpha: `sum_i C(alpha, i) q^i (1-q)^(alpha-i) exp((i^2-i) /
/// (2 sigma^2))`, accumulated in log space.
fn log_a_int(q: f64, sigma: f64, alpha: u32) -> f64 {
    let two_var = 2.0 * (sigma * sigma);
    let (log_q, log_1mq) = (q.ln(), (1.0 - q).ln());
    let mut acc = f64::NEG_INFINITY;
    // ln C(alpha, i): exact products up to alpha = 120 (Opacus's orders, bit for bit with
    // its `special.binom`), else a running sum ln C(alpha, i+1) = ln C(alpha, i) +
    // ln((alpha - i) / (i + 1)), linear instead of quadratic in alpha.
    let mut running = 0.0f64;
    for i in 0..=alpha {
        let ln_binom = if alpha <= 120 { ln_binom_int(alpha, i) } else { running };
        if alpha > 120 && i < alpha {
            running += (f64::from(alpha - i) / f64::from(i + 1)).ln();
        }
        let log_coef = ln_binom + f64::from(i) * log_q + f64::from(alpha - i) * log_1mq;
        let ii = f64::from(i);
        let s = log_coef + (ii * ii - ii) / two_var;
        acc = log_add(acc, s);
    }
    acc
}

/// `ln(A_alpha)` for fractional alpha: the two half-line integrals split at
/// `z0 = sigma^2 ln(1/q - 1) + 1/2`, each an alternating binomial series with erfc weights.
fn log_a_frac(q: f64, sigma: f64, alpha: f64) -> f64 {
    let two_var = 2.0 * (sigma * sigma);
    let (log_q, log_1mq) = (q.ln(), (1.0 - q).ln());
    let z0 = sigma * sigma * (1.0 / q - 1.0).ln() + 0.5;
    let scale = std::f64::consts::SQRT_2 * sigma;
    let ln_half = 0.5f64.ln();
    let (mut log_a0, mut log_a1) = (f64::NEG_INFINITY, f64::NEG_INFINITY);
    // C(alpha, i) by the recurrence C(alpha, i+1) = C(alpha, i) (alpha - i) / (i + 1), kept
    // as (ln |C|, sign) so it neither overflows nor underflows.
    let (mut log_coef, mut positive) = (0.0f64, true);
    let mut i: u64 = 0;
    loop {
        let fi = i as f64;
        let j = alpha - fi;
        let log_t0 = log_coef + fi * log_q + j * log_1mq;
        let log_t1 = log_coef + j * log_q + fi * log_1mq;
        let log_e0 = ln_half + log_erfc((fi - z0) / scale);
        let log_e1 = ln_half + log_erfc((z0 - j) / scale);
        let log_s0 = log_t0 + (fi * fi - fi) / two_var + log_e0;
        let log_s1 = log_t1 + (j * j - j) / two_var + log_e1;
        if positive {
            log_a0 = log_add(log_a0, log_s0);
            log_a1 = log_add(log_a1, log_s1);
        } else {
            match (log_sub(log_a0, log_s0), log_sub(log_a1, log_s1)) {
                (Some(a0), Some(a1)) => (log_a0, log_a1) = (a0, a1),
                // A negative partial sum means the series lost all precision; no bound.
                _ => return f64::INFINITY,
            }
        }
        // Next binomial coefficient.
        let factor = alpha - fi;
        if factor == 0.0 {
            break; // cannot happen for fractional alpha; keeps the recurrence total
        }
        log_coef += factor.abs().ln() - (fi + 1.0).ln();
        if factor < 0.0 {
            positive = !positive;
        }
        i += 1;
        if log_s0.max(log_s1) < SERIES_CUTOFF {
            break;
        }
        if i >= MAX_SERIES_TERMS {
            return f64::INFINITY;
        }
    }
    log_add(log_a0, log_a1)
}

/// `ln C(n, k)` for integers, exact to the last bit for every n < 2^32 that the accountant
/// uses (the product is exact in u128 up to n = 120 and rounded once).
fn ln_binom_int(n: u32, k: u32) -> f64 {
    let k = k.min(n - k);
    if n <= 120 {
        let mut c: u128 = 1;
        for m in 1..=u128::from(k) {
            // c * (n - k + m) / m stays an integer at every step.
            c = c * (u128::from(n - k) + m) / m;
        }
        return (c as f64).ln();
    }
    (1..=k).map(|m| (f64::from(n - k + m) / f64::from(m)).ln()).sum()
}

/// `ln(exp(x) + exp(y))` without overflow.
fn log_add(x: f64, y: f64) -> f64 {
    let (a, b) = if x < y { (x, y) } else { (y, x) };
    if a == f64::NEG_INFINITY {
        return b;
    }
    (a - b).exp().ln_1p() + b
}

/// `ln(exp(x) - exp(y))`, `None` when the difference would be negative (as Opacus's
/// `_log_sub` raises); `x` itself when `exp(x - y)` overflows (as Opacus does).
fn log_sub(x: f64, y: f64) -> Option<f64> {
    if x < y {
        return None;
    }
    if y == f64::NEG_INFINITY {
        return Some(x);
    }
    if x == y {
        return Some(f64::NEG_INFINITY);
    }
    let d = (x - y).exp_m1();
    if d.is_infinite() {
        return Some(x);
    }
    Some(d.ln() + y)
}

/// `ln(erfc(x))`, accurate in the far tail (`ln erfcx(x) - x^2`) where erfc underflows.
fn log_erfc(x: f64) -> f64 {
    if x > 0.5 {
        erfcx(x).ln() - x * x
    } else {
        erfc(x).ln()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn orders_match_opacus_defaults() {
        let orders = default_orders();
        assert_eq!(orders.len(), 151);
        assert_eq!(orders[0], 1.1);
        assert_eq!(orders[98], 10.9);
        assert_eq!(orders[99], 12.0);
        assert_eq!(orders[150], 63.0);
        // 1 + 3/10 is 1.3 exactly as Python computes it (not 1.3000000000000003).
        assert_eq!(orders[2], 1.0 + 3.0 / 10.0);
    }

    #[test]
    fn log_erfc_matches_scipy() {
        // ln 2 + scipy.special.log_ndtr(-x * sqrt 2) (scipy 1.17.1), Opacus's _log_erfc
        let cases = [
            (-3.0, 0.6931361352504468),
            (0.2, -0.25193223378261687),
            (0.75, -1.241867260678887),
            (1.0, -1.849605509933249),
            (5.0, -27.200889545537446),
            (40.0, -1604.2615566532743),
            (300.0, -90006.27615297309),
        ];
        for (x, want) in cases {
            let got = log_erfc(x);
            assert!(((got - want) / want).abs() < 1e-14, "log_erfc({x}) = {got}, scipy {want}");
        }
    }

    #[test]
    fn binomials_are_exact() {
        assert_eq!(ln_binom_int(63, 31), (916312070471295267u64 as f64).ln());
        assert_eq!(ln_binom_int(10, 0), 0.0);
        // scipy.special.gammaln(201) - 2 gammaln(101)
        assert!((ln_binom_int(200, 100) - 135.7532360812785).abs() < 1e-10);
    }

    #[test]
    fn full_sampling_is_the_gaussian_mechanism() {
        // q = 1: RDP of the Gaussian mechanism, alpha / (2 sigma^2).
        assert_eq!(rdp_step(1.0, 2.0, 3.0), 3.0 / 8.0);
        assert_eq!(rdp_step(0.0, 2.0, 3.0), 0.0);
        assert_eq!(rdp_step(0.5, 0.0, 3.0), f64::INFINITY);
    }
}
