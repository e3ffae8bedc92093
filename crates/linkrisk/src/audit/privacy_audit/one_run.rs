//! The one-run privacy audit of Steinke, Nasr and Jagielski, "Privacy Auditing with One (1)
//! Training Run" (NeurIPS 2023): m canaries, each included in training by an independent
//! fair coin; after one training run the auditor guesses "in" for the k+ highest-scoring
//! canaries and "out" for the k- lowest and abstains on the rest. Under (epsilon,
//! delta)-DP the number of correct guesses among r is stochastically dominated by
//! Binomial(r, e^epsilon / (1 + e^epsilon)) plus a delta term (their Theorem 3.3 / 5.2), so
//! many correct guesses reject small epsilons. [`p_value`] and [`epsilon_lower_bound`]
//! follow the paper's Appendix D algorithm exactly (checked against its Python code run
//! with SciPy: crates/linkrisk/tests/data/one_run_audit/).

use serde::Serialize;

use crate::metrics::retrieval::ln_choose;

/// Probability of at least `v` correct guesses out of `r` under (`epsilon`, `delta`)-DP
/// with `m` randomised canaries (the paper's `p_value_DP_audit`): `P[Bin(r, q) >= v] +
/// 2 m delta max_i P[v - i <= Bin(r, q) < v] / i`, q = 1 / (1 + e^-epsilon), capped at 1.
pub fn p_value(m: u64, r: u64, v: u64, epsilon: f64, delta: f64) -> f64 {
    debug_assert!(v <= r && r <= m);
    let q = 1.0 / (1.0 + (-epsilon).exp());
    let (ln_q, ln_1q) = (q.ln(), (-q).ln_1p());
    let pmf = |k: u64| -> f64 {
        let ln = ln_choose(r, k) + k as f64 * ln_q + (r - k) as f64 * ln_1q;
        ln.exp()
    };
    // Upper tail summed from the far end (small terms first).
    let beta: f64 = (v..=r).rev().map(pmf).sum();
    let mut alpha = 0.0f64;
    if delta > 0.0 {
        let mut sum = 0.0;
        for i in 1..=v {
            sum += pmf(v - i);
            if sum > i as f64 * alpha {
                alpha = sum / i as f64;
            }
        }
    }
    (beta + alpha * delta * 2.0 * m as f64).min(1.0)
}

/// The largest epsilon (to 1e-9) whose [`p_value`] is below `p` (e.g. 0.05 for 95%
/// confidence): the mechanism is not (epsilon, delta)-DP for any smaller epsilon, with
/// confidence 1 - p. 0 when even epsilon = 0 is not rejected. As the paper's
/// `get_eps_audit`: grow the upper end by 1 until rejected no longer, then bisect.
pub fn epsilon_lower_bound(m: u64, r: u64, v: u64, delta: f64, p: f64) -> f64 {
    if r == 0 || p_value(m, r, v, 0.0, delta) >= p {
        return 0.0;
    }
    let (mut low, mut high) = (0.0f64, 1.0f64);
    while p_value(m, r, v, high, delta) < p {
        high += 1.0;
        if high > 1e4 {
            return f64::INFINITY;
        }
    }
    while high - low > 1e-9 {
        let mid = 0.5 * (low + high);
        if p_value(m, r, v, mid, delta) < p {
            low = mid;
        } else {
            high = mid;
        }
    }
    low
}

/// The audit at one guess count: k+ = k- = `k`.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct GuessRow {
    /// Guesses "in" (top scores) and guesses "out" (bottom scores), each.
    pub k: usize,
    /// Guesses made (2k).
    pub guesses: usize,
    /// Correct guesses.
    pub correct: usize,
    /// The epsilon lower bound at this k, at the Bonferroni-corrected level.
    pub epsilon_lower_bound: f64,
}

/// The one-run audit's result.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct OneRunAudit {
    /// Canaries randomised (m).
    pub canaries: usize,
    /// Canaries the coins put into training.
    pub included: usize,
    /// Confidence of the bound (0.95).
    pub level: f64,
    /// Delta of the null hypothesis (the run's delta).
    pub delta: f64,
    /// One row per guess count tried; each bound holds at level 1 - (1 - `level`) / rows
    /// (Bonferroni), so the largest is a valid lower bound at `level`.
    pub by_guesses: Vec<GuessRow>,
    /// The largest bound over `by_guesses`: the headline lower bound on epsilon.
    pub epsilon_lower_bound: f64,
    /// The guess count that attains it.
    pub best_k: usize,
}

/// Guess counts tried: 2%, 5%, 10% and 20% of the canaries (distinct, at least 1).
pub fn guess_grid(m: usize) -> Vec<usize> {
    let mut ks: Vec<usize> =
        [0.02, 0.05, 0.1, 0.2].iter().map(|f| ((f * m as f64).round() as usize).clamp(1, m / 2)).collect();
    ks.dedup();
    ks.retain(|&k| k >= 1);
    ks
}

/// Audit canaries with `scores` (higher = more likely trained on) and the coins
/// `included`: for every k of [`guess_grid`], guess the top k in and the bottom k out.
/// Ties at a cut are broken by canary index (the order is fixed before the scores exist).
pub fn audit(scores: &[f64], included: &[bool], delta: f64, level: f64) -> OneRunAudit {
    let m = scores.len();
    let mut order: Vec<usize> = (0..m).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]).then(a.cmp(&b)));
    let ks = guess_grid(m);
    let p = (1.0 - level) / ks.len().max(1) as f64;
    let by_guesses: Vec<GuessRow> = ks
        .iter()
        .map(|&k| {
            let correct_in = order[..k].iter().filter(|&&i| included[i]).count();
            let correct_out = order[m - k..].iter().filter(|&&i| !included[i]).count();
            let correct = correct_in + correct_out;
            GuessRow {
                k,
                guesses: 2 * k,
                correct,
                epsilon_lower_bound: epsilon_lower_bound(m as u64, 2 * k as u64, correct as u64, delta, p),
            }
        })
        .collect();
    let best = by_guesses.iter().max_by(|a, b| a.epsilon_lower_bound.total_cmp(&b.epsilon_lower_bound));
    OneRunAudit {
        canaries: m,
        included: included.iter().filter(|&&b| b).count(),
        level,
        delta,
        epsilon_lower_bound: best.map_or(0.0, |b| b.epsilon_lower_bound),
        best_k: best.map_or(0, |b| b.k),
        by_guesses,
    }
}
