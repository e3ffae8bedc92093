//! Counting reductions over one query's scores in one chunk: how many gallery items score
//! strictly above and exactly at each threshold (the positives' scores). These loops run
//! over every element of the similarity matrix, so they are written to vectorise: branch-
//! free comparisons summed into narrow integer accumulators, compiled per CPU feature level
//! (see `simd`).

use super::simd::multiversion;

/// Elements per inner run; u32 accumulators cannot overflow within one run.
const RUN: usize = 1 << 16;
/// Above this many distinct thresholds, counting switches from one pass per threshold to
/// one binary search per element.
const MAX_PASSES: usize = 8;

/// Add to `greater[j]` / `tied[j]` the number of scores in `scores` strictly above / equal
/// to `thresholds[j]`, each score counted `weights[i]` times (once when `weights` is None).
/// `thresholds` must be sorted ascending without repeats.
pub(crate) fn count_against(
    scores: &[f32],
    weights: Option<&[u32]>,
    thresholds: &[f32],
    greater: &mut [u64],
    tied: &mut [u64],
) {
    debug_assert!(thresholds.windows(2).all(|w| w[0] < w[1]));
    if thresholds.len() <= MAX_PASSES {
        for (j, &t) in thresholds.iter().enumerate() {
            let (g, e) = match weights {
                None => count_one(scores, t),
                Some(w) => count_one_weighted(scores, w, t),
            };
            greater[j] += g;
            tied[j] += e;
        }
        return;
    }
    // Bucket each score by the number of thresholds strictly below it; a score with p
    // thresholds below it is greater than thresholds 0..p.
    let m = thresholds.len();
    let lowest = thresholds[0];
    let mut above_exactly = vec![0u64; m + 1];
    for (i, &x) in scores.iter().enumerate() {
        if x < lowest {
            continue;
        }
        let w = weights.map_or(1, |w| u64::from(w[i]));
        let p = thresholds.partition_point(|&t| t < x);
        above_exactly[p] += w;
        if p < m && thresholds[p] == x {
            tied[p] += w;
        }
    }
    let mut running = 0u64;
    for j in (0..m).rev() {
        running += above_exactly[j + 1];
        greater[j] += running;
    }
}

multiversion! {
    /// Scores strictly above and exactly at `t`.
    fn count_one(scores: &[f32], t: f32) -> (u64, u64) {
        let (mut greater, mut tied) = (0u64, 0u64);
        for run in scores.chunks(RUN) {
            let (mut g, mut e) = (0u32, 0u32);
            for &x in run {
                g += u32::from(x > t);
                e += u32::from(x == t);
            }
            greater += u64::from(g);
            tied += u64::from(e);
        }
        (greater, tied)
    }
}

multiversion! {
    /// Scores `cosine[i] + offsets[i]` strictly above and exactly at `t`, each sum rounded
    /// to f32 as the kernel adds a gallery's offsets (`add_offsets`), so the counts are those
    /// of a pass over a gallery with these offsets, without its GEMM.
    pub(crate) fn count_offset(cosine: &[f32], offsets: &[f32], t: f32) -> (u64, u64) {
        let (mut greater, mut tied) = (0u64, 0u64);
        for (run, off) in cosine.chunks(RUN).zip(offsets.chunks(RUN)) {
            let (mut g, mut e) = (0u32, 0u32);
            for (&c, &o) in run.iter().zip(off) {
                let x = c + o;
                g += u32::from(x > t);
                e += u32::from(x == t);
            }
            greater += u64::from(g);
            tied += u64::from(e);
        }
        (greater, tied)
    }
}

multiversion! {
    /// Weighted counts of scores strictly above and exactly at `t`.
    fn count_one_weighted(scores: &[f32], weights: &[u32], t: f32) -> (u64, u64) {
        let (mut greater, mut tied) = (0u64, 0u64);
        for (x, w) in scores.iter().zip(weights) {
            greater += u64::from(*x > t) * u64::from(*w);
            tied += u64::from(*x == t) * u64::from(*w);
        }
        (greater, tied)
    }
}

/// Lanes per flagged group in the top-k scan (one AVX-512 vector of f32).
pub(crate) const LANES: usize = 16;

/// Scores strictly above / exactly at `t`, and the start of every 16-element group
/// holding a score at or above `floor` (candidates for the top-k) pushed to `flagged`:
/// one pass over the data for the common case of one positive.
pub(crate) fn count_one_and_flag(scores: &[f32], t: f32, floor: f32, flagged: &mut Vec<u32>) -> (u64, u64) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("popcnt") {
            // SAFETY: the CPU supports AVX2 and POPCNT.
            return unsafe { count_one_and_flag_avx2(scores, t, floor, flagged) };
        }
    }
    count_one_and_flag_scalar(scores, t, floor, flagged)
}

fn count_one_and_flag_scalar(scores: &[f32], t: f32, floor: f32, flagged: &mut Vec<u32>) -> (u64, u64) {
    let (greater, tied) = count_one(scores, t);
    flag_groups(scores, floor, flagged);
    (greater, tied)
}

/// AVX2 version: per 16 scores, two 8-lane loads, three compares, two popcounts and one
/// test (comparisons as movemask bit sets; bits of 16 lanes form one group's flag).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,popcnt")]
unsafe fn count_one_and_flag_avx2(scores: &[f32], t: f32, floor: f32, flagged: &mut Vec<u32>) -> (u64, u64) {
    use std::arch::x86_64::*;
    let (mut greater, mut tied) = (0u64, 0u64);
    let n = scores.len();
    let ptr = scores.as_ptr();
    let tv = _mm256_set1_ps(t);
    let fv = _mm256_set1_ps(floor);
    let mut i = 0;
    while i + LANES <= n {
        // SAFETY: i + 16 <= n, unaligned loads.
        let (a, b) = unsafe { (_mm256_loadu_ps(ptr.add(i)), _mm256_loadu_ps(ptr.add(i + 8))) };
        let gt = (_mm256_movemask_ps(_mm256_cmp_ps::<_CMP_GT_OQ>(a, tv)) as u32)
            | ((_mm256_movemask_ps(_mm256_cmp_ps::<_CMP_GT_OQ>(b, tv)) as u32) << 8);
        let eq = (_mm256_movemask_ps(_mm256_cmp_ps::<_CMP_EQ_OQ>(a, tv)) as u32)
            | ((_mm256_movemask_ps(_mm256_cmp_ps::<_CMP_EQ_OQ>(b, tv)) as u32) << 8);
        let ge = _mm256_movemask_ps(_mm256_or_ps(
            _mm256_cmp_ps::<_CMP_GE_OQ>(a, fv),
            _mm256_cmp_ps::<_CMP_GE_OQ>(b, fv),
        ));
        greater += u64::from(gt.count_ones());
        tied += u64::from(eq.count_ones());
        if ge != 0 {
            flagged.push(i as u32);
        }
        i += LANES;
    }
    let rest = &scores[i..];
    if rest.iter().any(|&x| x >= floor) {
        flagged.push(i as u32);
    }
    for &x in rest {
        greater += u64::from(x > t);
        tied += u64::from(x == t);
    }
    (greater, tied)
}

multiversion! {
    /// Push the start of every 16-element group of `scores` holding a score at or above
    /// `floor` to `flagged`.
    pub(crate) fn flag_groups(scores: &[f32], floor: f32, flagged: &mut Vec<u32>) -> () {
        for (i, group) in scores.chunks(LANES).enumerate() {
            let mut any = false;
            for &x in group {
                any |= x >= floor;
            }
            if any {
                flagged.push((i * LANES) as u32);
            }
        }
    }
}

multiversion! {
    /// The maximum of each of `parts` contiguous, nearly equal ranges of `scores`
    /// (`parts` <= `scores.len()`).
    pub(crate) fn range_maxima(scores: &[f32], parts: usize) -> Vec<f32> {
        let len = scores.len();
        (0..parts)
            .map(|p| {
                let range = &scores[p * len / parts..(p + 1) * len / parts];
                let mut lanes = [f32::NEG_INFINITY; LANES];
                let mut groups = range.chunks_exact(LANES);
                for group in &mut groups {
                    for (m, &x) in lanes.iter_mut().zip(group) {
                        *m = if x > *m { x } else { *m };
                    }
                }
                lanes.iter().chain(groups.remainder()).fold(f32::NEG_INFINITY, |m, &x| if x > m { x } else { m })
            })
            .collect()
    }
}

multiversion! {
    /// Add `offsets` to `scores` element-wise.
    pub(crate) fn add_offsets(scores: &mut [f32], offsets: &[f32]) -> () {
        for (s, o) in scores.iter_mut().zip(offsets) {
            *s += o;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn brute(scores: &[f32], weights: Option<&[u32]>, thresholds: &[f32]) -> (Vec<u64>, Vec<u64>) {
        let w = |i: usize| weights.map_or(1, |w| u64::from(w[i]));
        thresholds
            .iter()
            .map(|&t| {
                let g: u64 = (0..scores.len()).filter(|&i| scores[i] > t).map(w).sum();
                let e: u64 = (0..scores.len()).filter(|&i| scores[i] == t).map(w).sum();
                (g, e)
            })
            .unzip()
    }

    #[test]
    fn counts_match_brute_force_for_few_and_many_thresholds() {
        let scores: Vec<f32> = (0..500).map(|i| ((i * 37) % 23) as f32 / 4.0).collect();
        let weights: Vec<u32> = (0..500).map(|i| (i % 4) as u32).collect();
        for m in [1usize, 3, 8, 9, 20] {
            let thresholds: Vec<f32> = (0..m).map(|j| j as f32 * 0.75 - 0.5).collect();
            for weights in [None, Some(&weights[..])] {
                let (mut g, mut e) = (vec![0; m], vec![0; m]);
                count_against(&scores, weights, &thresholds, &mut g, &mut e);
                assert_eq!((g, e), brute(&scores, weights, &thresholds), "m={m}");
            }
        }
    }
}
