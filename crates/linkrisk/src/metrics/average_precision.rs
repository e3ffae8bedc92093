//! Average precision (AP) of one query's ranking when several gallery items are correct
//! (patient re-identification: every other study of the patient is a positive), exact in
//! expectation over a uniformly random order within each group of tied scores — the
//! ranking semantics of DESIGN.md, so mAP never depends on an arbitrary tie order.
//!
//! AP = (1/P) sum over positives of precision at the positive's rank, with P the number of
//! positives (all of them are in the gallery, so recall reaches 1). Group the positives by
//! score. A group with `c` positives and `t` negatives at one score, `g` negatives and `p`
//! positives strictly above, occupies ranks `b + 1 ..= b + m` with `b = g + p`, `m = c + t`.
//! AP is a sum of per-group terms, each depending only on the order within its group, so
//! its expectation is the sum of the groups' expected terms. Within a group, position x
//! holds a positive with probability c/m, and given that, the positives before it are a
//! hypergeometric draw with mean (x - 1)(c - 1)/(m - 1). The expected term is therefore
//!
//! sum_{x=1..m} (c/m) (p + 1 + (x - 1)(c - 1)/(m - 1)) / (b + x)
//!
//! (for m = 1 simply (p + 1)/(b + 1)), which is O(m) directly and O(1) through harmonic
//! numbers for large tie groups.

use crate::engine::PositiveRank;
use crate::metrics::retrieval::harmonic;

/// Tie groups up to this size are summed term by term (exact in f64); larger ones use the
/// harmonic-number closed form.
const DIRECT_SUM_LIMIT: u64 = 256;

/// Expected average precision of a query whose positives landed as `positives` describes
/// (each positive's score and its `greater` / `tied` negative counts, as the engine
/// reports them). Positives with bit-identical scores form one tie group with the
/// negatives tied at that score. Returns NaN for a query without positives.
pub fn expected_average_precision(positives: &[PositiveRank]) -> f64 {
    if positives.is_empty() {
        return f64::NAN;
    }
    let mut order: Vec<&PositiveRank> = positives.iter().collect();
    order.sort_by(|a, b| b.score.total_cmp(&a.score));
    let mut total = 0.0;
    let mut positives_above = 0u64;
    let mut start = 0;
    while start < order.len() {
        let mut end = start + 1;
        while end < order.len() && order[end].score == order[start].score {
            end += 1;
        }
        let group = order[start];
        let tied_positives = (end - start) as u64;
        total += expected_group_precision_sum(group.greater, group.tied, tied_positives, positives_above);
        positives_above += tied_positives;
        start = end;
    }
    total / positives.len() as f64
}

/// Expected sum of precisions over the `c` positives of one tie group: `g` negatives and `p`
/// positives rank strictly above the group, `t` negatives tie with it.
pub fn expected_group_precision_sum(g: u64, t: u64, c: u64, p: u64) -> f64 {
    let base = (g + p) as f64;
    let m = c + t;
    if m == 1 {
        return (p + 1) as f64 / (base + 1.0);
    }
    let slope = (c - 1) as f64 / (m - 1) as f64;
    let intercept = (p + 1) as f64 - slope;
    let share = c as f64 / m as f64;
    let sum = if m <= DIRECT_SUM_LIMIT {
        (1..=m).map(|x| (intercept + slope * x as f64) / (base + x as f64)).sum::<f64>()
    } else {
        // (A + B x) / (b + x) = B + (A - B b) / (b + x).
        let b = g + p;
        m as f64 * slope + (intercept - slope * base) * (harmonic(b + m) - harmonic(b))
    };
    share * sum
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pr(score: f32, greater: u64, tied: u64) -> PositiveRank {
        PositiveRank { gallery: 0, score, greater, tied }
    }

    /// AP of one explicit ranking (true = positive), best first.
    fn ap_of(order: &[bool]) -> f64 {
        let (mut hits, mut sum) = (0.0, 0.0);
        for (i, &positive) in order.iter().enumerate() {
            if positive {
                hits += 1.0;
                sum += hits / (i + 1) as f64;
            }
        }
        sum / hits
    }

    /// Every placement of `c` positives among `m` slots, as masks.
    fn placements(m: usize, c: usize) -> Vec<Vec<bool>> {
        (0u32..(1 << m))
            .filter(|mask| mask.count_ones() as usize == c)
            .map(|mask| (0..m).map(|i| mask & (1 << i) != 0).collect())
            .collect()
    }

    #[test]
    fn single_group_matches_enumeration() {
        for g in 0..4u64 {
            for p in 0..3u64 {
                for c in 1..5u64 {
                    for t in 0..7u64 {
                        let all = placements((c + t) as usize, c as usize);
                        let want = all
                            .iter()
                            .map(|mask| {
                                let mut hits = p as f64;
                                let mut sum = 0.0;
                                for (x, &is_pos) in mask.iter().enumerate() {
                                    if is_pos {
                                        hits += 1.0;
                                        sum += hits / (g + p + x as u64 + 1) as f64;
                                    }
                                }
                                sum
                            })
                            .sum::<f64>()
                            / all.len() as f64;
                        let got = expected_group_precision_sum(g, t, c, p);
                        assert!((got - want).abs() < 1e-12, "g{g} p{p} c{c} t{t}: {got} vs {want}");
                    }
                }
            }
        }
    }

    #[test]
    fn closed_form_agrees_with_direct_sum_for_large_groups() {
        for (g, t, c, p) in [(0, 400, 3, 0), (1000, 5000, 7, 2), (70, 300, 1, 5), (40_000, 600, 12, 3)] {
            let slope = (c - 1) as f64 / (c + t - 1) as f64;
            let direct: f64 = (1..=c + t)
                .map(|x| (p as f64 + 1.0 - slope + slope * x as f64) / ((g + p + x) as f64))
                .sum::<f64>()
                * c as f64
                / (c + t) as f64;
            let got = expected_group_precision_sum(g, t, c, p);
            assert!((got - direct).abs() < 1e-10 * direct.max(1e-3), "{got} vs {direct}");
        }
    }

    #[test]
    fn ap_over_groups_matches_enumerated_rankings() {
        // Ranking by score: 0.9 [neg, neg, pos], 0.7 [pos, pos, neg] tie, 0.5 neg, 0.2 [pos, neg] tie.
        let positives = [pr(0.9, 2, 0), pr(0.7, 2, 1), pr(0.7, 2, 1), pr(0.2, 4, 1)];
        let head = [false, false, true];
        let mut total = 0.0;
        let mut count = 0.0;
        for mid in placements(3, 2) {
            for tail in placements(2, 1) {
                let mut order = head.to_vec();
                order.extend(&mid);
                order.push(false);
                order.extend(&tail);
                total += ap_of(&order);
                count += 1.0;
            }
        }
        assert!((expected_average_precision(&positives) - total / count).abs() < 1e-12);
        // No ties: the usual AP; perfect ranking: 1.
        assert!(
            (expected_average_precision(&[pr(0.8, 0, 0), pr(0.5, 1, 0)]) - (1.0 + 2.0 / 3.0) / 2.0).abs()
                < 1e-15
        );
        assert_eq!(expected_average_precision(&[pr(0.8, 0, 0), pr(0.7, 0, 0)]), 1.0);
        assert!(expected_average_precision(&[]).is_nan());
    }
}
