//! Retrieval statistics from the engine's rank counts: Recall@k, MRR, median rank, chance
//! level and lift, each under the ranking semantics of DESIGN.md — ties are broken
//! uniformly at random *in expectation*, so every quantity is an exact expectation, never
//! the outcome of one arbitrary tie order.
//!
//! A query's best positive has `g` negatives strictly above it and a tie group of `t`
//! negatives and `c` positives. The position J of the first positive within the tie group
//! satisfies P(J > j) = C(t, j) / C(t + c, j), so P(rank <= k) = 1 - P(J > k - g); with
//! one positive this is clamp((k - g) / (t + 1), 0, 1). For candidate pools the negatives
//! above and tied with the anchor are hypergeometric draws, which gives the exact expected
//! Recall@k at any pool size from one full-rank pass.

use serde::Serialize;

use super::interval::{wilson, Estimate};
use crate::engine::pools::PoolDraw;
use crate::engine::FirstPositive;

/// P(rank <= k) for a positive with `greater` negatives above it and `tied` negatives at
/// its score: clamp((k - greater) / (tied + 1), 0, 1).
pub fn hit_probability(greater: u64, tied: u64, k: u64) -> f64 {
    if k <= greater {
        0.0
    } else {
        ((k - greater) as f64 / (tied + 1) as f64).min(1.0)
    }
}

/// P(the first positive is within the top k) for a best positive described by `first`.
pub fn first_hit_probability(first: &FirstPositive, k: u64) -> f64 {
    let FirstPositive { greater, tied_negatives: t, tied_positives: c } = *first;
    if k <= greater {
        return 0.0;
    }
    let j = k - greater;
    if j > t {
        return 1.0;
    }
    if c == 1 {
        return j as f64 / (t + 1) as f64;
    }
    // P(J > j) = C(t, j) / C(t + c, j) = prod_{i=1..c} (t - j + i) / (t + i).
    let mut miss = 1.0;
    for i in 1..=c {
        miss *= (t - j + i) as f64 / (t + i) as f64;
    }
    1.0 - miss
}

/// E[1 / rank] of the first positive (exact under random tie-breaking).
pub fn expected_reciprocal_rank(first: &FirstPositive) -> f64 {
    let FirstPositive { greater: g, tied_negatives: t, tied_positives: c } = *first;
    if c == 1 {
        // Rank uniform on g+1 ..= g+t+1.
        return (harmonic(g + t + 1) - harmonic(g)) / (t + 1) as f64;
    }
    // P(J > j) / P(J > j - 1) = (t - j + 1) / (t - j + 1 + c).
    let mut sum = 0.0;
    let mut survive = 1.0; // P(J > j - 1)
    for j in 1..=t + 1 {
        let next = survive * (t + 1 - j) as f64 / (t + 1 - j + c) as f64;
        sum += (survive - next) / (g + j) as f64;
        survive = next;
    }
    sum
}

/// E\[rank\] of the first positive: g + (t + c + 1) / (c + 1).
pub fn expected_rank(first: &FirstPositive) -> f64 {
    let FirstPositive { greater: g, tied_negatives: t, tied_positives: c } = *first;
    g as f64 + (t + c + 1) as f64 / (c + 1) as f64
}

/// Chance that a uniformly random ranking puts one of `n_positives` positives within the
/// top `k` among `n_negatives` negatives: 1 - C(M, k) / C(M + c, k).
pub fn chance_at_k(n_negatives: u64, n_positives: u64, k: u64) -> f64 {
    if n_positives == 0 {
        return 0.0;
    }
    first_hit_probability(
        &FirstPositive { greater: 0, tied_negatives: n_negatives, tied_positives: n_positives },
        k,
    )
}

/// Exact P(rank <= k) within a pool drawn as `draw` describes: the pool's negatives above
/// and tied with the anchor are `fixed_*` plus a multivariate-hypergeometric draw.
pub fn expected_pool_hit_probability(draw: &PoolDraw, k: u64) -> f64 {
    let PoolDraw {
        fixed_greater,
        fixed_tied,
        population,
        population_greater: big_g,
        population_tied: big_t,
        draws,
        ..
    } = *draw;
    if k <= fixed_greater {
        return 0.0;
    }
    let others = population - big_g - big_t;
    let ln_total = ln_choose(population, draws);
    let mut p = 0.0;
    let b_max = big_g.min(draws).min(k - fixed_greater - 1);
    for b in 0..=b_max {
        let rest = draws - b;
        let ln_b = ln_choose(big_g, b);
        let tau_min = rest.saturating_sub(others);
        for tau in tau_min..=big_t.min(rest) {
            let ln_p = ln_b + ln_choose(big_t, tau) + ln_choose(others, rest - tau) - ln_total;
            p += ln_p.exp() * hit_probability(fixed_greater + b, fixed_tied + tau, k);
        }
    }
    p.min(1.0)
}

/// Natural log of the binomial coefficient C(n, r) (−inf when r > n).
pub fn ln_choose(n: u64, r: u64) -> f64 {
    if r > n {
        return f64::NEG_INFINITY;
    }
    ln_factorial(n) - ln_factorial(r) - ln_factorial(n - r)
}

/// ln(n!): exact products below 16, Stirling's series (error below 1e-14) above.
pub fn ln_factorial(n: u64) -> f64 {
    if n < 16 {
        let mut f = 1.0f64;
        for i in 2..=n {
            f *= i as f64;
        }
        return f.ln();
    }
    let x = n as f64;
    let x2 = x * x;
    x * x.ln() - x + 0.5 * (2.0 * std::f64::consts::PI * x).ln() + 1.0 / (12.0 * x) - 1.0 / (360.0 * x * x2)
        + 1.0 / (1260.0 * x * x2 * x2)
        - 1.0 / (1680.0 * x * x2 * x2 * x2)
}

/// The harmonic number H(n) = 1 + 1/2 + ... + 1/n (H(0) = 0).
pub fn harmonic(n: u64) -> f64 {
    if n < 64 {
        return (1..=n).map(|i| 1.0 / i as f64).sum();
    }
    const EULER_GAMMA: f64 = 0.577_215_664_901_532_9;
    let x = n as f64;
    let x2 = x * x;
    x.ln() + EULER_GAMMA + 1.0 / (2.0 * x) - 1.0 / (12.0 * x2) + 1.0 / (120.0 * x2 * x2)
        - 1.0 / (252.0 * x2 * x2 * x2)
}

/// One ranked query, as the statistics need it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RankedQuery {
    /// Rank counts of its best positive.
    pub first: FirstPositive,
    /// Its negatives (for the chance level).
    pub n_negatives: u64,
    /// Its positives (for the chance level).
    pub n_positives: u64,
}

/// The lower median of the rank distribution across queries: the smallest r with
/// mean_q P(rank_q <= r) >= 1/2 (ties in expectation; without ties the usual lower median).
pub fn median_rank(queries: &[RankedQuery]) -> u64 {
    if queries.is_empty() {
        return 0;
    }
    let half = queries.len() as f64 / 2.0;
    let covered =
        |r: u64| queries.iter().map(|q| first_hit_probability(&q.first, r)).sum::<f64>() >= half - 1e-9;
    let (mut lo, mut hi) =
        (1u64, queries.iter().map(|q| q.first.greater + q.first.tied_negatives + 1).max().unwrap_or(1));
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if covered(mid) {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    lo
}

/// Retrieval statistics over a set of queries.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct RetrievalSummary {
    /// Queries summarised.
    pub n_queries: usize,
    /// Recall@1 with its Wilson interval.
    pub recall_at_1: Estimate,
    /// Recall@5 with its Wilson interval.
    pub recall_at_5: Estimate,
    /// Recall@10 with its Wilson interval.
    pub recall_at_10: Estimate,
    /// Mean reciprocal rank of the first positive.
    pub mrr: f64,
    /// Lower median rank (see [`median_rank`]).
    pub median_rank: u64,
    /// Mean expected rank.
    pub mean_rank: f64,
    /// Recall@1 of a random ranking, averaged over queries.
    pub chance_at_1: f64,
    /// Recall@1 / chance@1.
    pub lift_at_1: f64,
}

/// Summarise ranked queries; intervals at coverage `level` (Wilson, fractional successes
/// from tie expectations allowed).
pub fn summarize(queries: &[RankedQuery], level: f64) -> RetrievalSummary {
    let n = queries.len() as f64;
    let hits = |k: u64| queries.iter().map(|q| first_hit_probability(&q.first, k)).sum::<f64>();
    let recall = |k: u64| wilson(hits(k), n, level);
    let mean = |f: &dyn Fn(&RankedQuery) -> f64| {
        if n > 0.0 {
            queries.iter().map(f).sum::<f64>() / n
        } else {
            f64::NAN
        }
    };
    let recall_at_1 = recall(1);
    let chance_at_1 = mean(&|q| chance_at_k(q.n_negatives, q.n_positives, 1));
    RetrievalSummary {
        n_queries: queries.len(),
        recall_at_1,
        recall_at_5: recall(5),
        recall_at_10: recall(10),
        mrr: mean(&|q| expected_reciprocal_rank(&q.first)),
        median_rank: median_rank(queries),
        mean_rank: mean(&|q| expected_rank(&q.first)),
        chance_at_1,
        lift_at_1: recall_at_1.value / chance_at_1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fp(greater: u64, tied_negatives: u64, tied_positives: u64) -> FirstPositive {
        FirstPositive { greater, tied_negatives, tied_positives }
    }

    #[test]
    fn hit_probability_is_the_clamped_tie_share() {
        assert_eq!(hit_probability(0, 0, 1), 1.0);
        assert_eq!(hit_probability(1, 0, 1), 0.0);
        assert_eq!(hit_probability(2, 3, 4), 0.5);
        assert_eq!(hit_probability(2, 3, 10), 1.0);
        assert_eq!(first_hit_probability(&fp(2, 3, 1), 4), 0.5);
    }

    /// Enumerate every order of a tie group: the exact formulas must match the average.
    #[test]
    fn tie_formulas_match_enumeration() {
        for t in 0..6u64 {
            for c in 1..4u64 {
                for g in 0..3u64 {
                    let n = (t + c) as usize;
                    // Each placement of the c positives among n slots is equally likely.
                    let mut firsts = Vec::new();
                    for mask in 0u32..(1 << n) {
                        if mask.count_ones() as u64 == c {
                            firsts.push(mask.trailing_zeros() as u64 + 1);
                        }
                    }
                    let m = firsts.len() as f64;
                    let f = fp(g, t, c);
                    for k in 0..12 {
                        let want = firsts.iter().filter(|&&j| g + j <= k).count() as f64 / m;
                        assert!((first_hit_probability(&f, k) - want).abs() < 1e-12, "g{g} t{t} c{c} k{k}");
                    }
                    let rr = firsts.iter().map(|&j| 1.0 / (g + j) as f64).sum::<f64>() / m;
                    assert!((expected_reciprocal_rank(&f) - rr).abs() < 1e-12);
                    let mean_rank = firsts.iter().map(|&j| (g + j) as f64).sum::<f64>() / m;
                    assert!((expected_rank(&f) - mean_rank).abs() < 1e-12);
                }
            }
        }
    }

    #[test]
    fn harmonic_and_ln_factorial_are_accurate() {
        let direct: f64 = (1..=1000u64).map(|i| 1.0 / i as f64).sum();
        assert!((harmonic(1000) - direct).abs() < 1e-13);
        let direct: f64 = (1..=300u64).map(|i| (i as f64).ln()).sum();
        assert!((ln_factorial(300) - direct).abs() < 1e-10);
        assert!((ln_factorial(16) - (20_922_789_888_000f64).ln()).abs() < 1e-13);
    }

    #[test]
    fn pool_expectation_matches_scipy() {
        // scipy 1.17.1, crates/linkrisk/tests/data/retrieval_reference.py: a pool of 100 is the
        // anchor plus 99 of 999 negatives, 40 of which beat the anchor.
        // hypergeom.pmf(0, 999, 40, 99) = 0.014083486898683786 (hit@1)
        // hypergeom.cdf(4, 999, 40, 99) = 0.6370294660726323 (hit@5)
        let draw = |population, population_greater, draws| PoolDraw {
            fixed_greater: 0,
            fixed_tied: 0,
            fixed: 0,
            population,
            population_greater,
            population_tied: 0,
            draws,
        };
        let d = draw(999, 40, 99);
        assert!((expected_pool_hit_probability(&d, 1) - 0.014083486898683786).abs() < 1e-12);
        assert!((expected_pool_hit_probability(&d, 5) - 0.6370294660726323).abs() < 1e-12);
        // hypergeom.pmf(0, 43792, 15, 9999) = 0.02047252139571489,
        // hypergeom.cdf(2, 43792, 15, 9999) = 0.29970620347601334
        let d = draw(43792, 15, 9999);
        assert!((expected_pool_hit_probability(&d, 1) / 0.02047252139571489 - 1.0).abs() < 1e-9);
        assert!((expected_pool_hit_probability(&d, 3) / 0.29970620347601334 - 1.0).abs() < 1e-9);
    }

    #[test]
    fn pool_expectation_with_ties_matches_enumeration() {
        // Population of 7 negatives: 2 above, 2 tied, 3 below; draw 3; plus 1 fixed tie.
        let labels = [2u8, 2, 1, 1, 0, 0, 0];
        let d = PoolDraw {
            fixed_greater: 0,
            fixed_tied: 1,
            fixed: 1,
            population: 7,
            population_greater: 2,
            population_tied: 2,
            draws: 3,
        };
        for k in 1..6 {
            let mut sum = 0.0;
            let mut count = 0.0;
            for a in 0..7 {
                for b in a + 1..7 {
                    for c in b + 1..7 {
                        let pick = [labels[a], labels[b], labels[c]];
                        let g = pick.iter().filter(|&&l| l == 2).count() as u64;
                        let t = pick.iter().filter(|&&l| l == 1).count() as u64 + 1;
                        sum += hit_probability(g, t, k);
                        count += 1.0;
                    }
                }
            }
            assert!((expected_pool_hit_probability(&d, k) - sum / count).abs() < 1e-12, "k={k}");
        }
    }

    #[test]
    fn median_rank_is_the_lower_median_and_respects_ties() {
        let q = |g, t| RankedQuery { first: fp(g, t, 1), n_negatives: 100, n_positives: 1 };
        assert_eq!(median_rank(&[q(0, 0), q(4, 0), q(9, 0)]), 5);
        assert_eq!(median_rank(&[q(0, 0), q(4, 0), q(9, 0), q(20, 0)]), 5);
        // One query whose rank is uniform on 1..=10: P(rank <= 5) = 1/2.
        assert_eq!(median_rank(&[q(0, 9)]), 5);
        let s = summarize(&[q(0, 0), q(1, 0), q(0, 1)], 0.95);
        assert!((s.recall_at_1.value - 0.5).abs() < 1e-12);
        assert!((s.chance_at_1 - 1.0 / 101.0).abs() < 1e-12);
        assert!((s.lift_at_1 - 50.5).abs() < 1e-9);
        assert!((s.mrr - (1.0 + 0.5 + 0.75) / 3.0).abs() < 1e-12);
    }
}
