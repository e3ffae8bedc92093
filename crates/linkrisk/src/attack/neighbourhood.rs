//! Neighbourhood statistics the hubness corrections need, each one blocked pass of the
//! engine (O(block x n) memory, never an n x n matrix): the mean similarity of every item
//! to its k nearest items of the other domain (CSLS's local-scaling term) and the log of
//! the softmax normaliser sum_j exp(beta s_ij) (inverted softmax, QB-Norm).
//!
//! Both take optional per-row exclusions (pairs that are not in the attacker's similarity
//! matrix at all, e.g. a re-ID query and its own record). Exact duplicate rows of `other`
//! count once per copy, as the engine's gallery does.

use rayon::prelude::*;

use crate::engine::simd::multiversion;
use crate::engine::{for_each_block, rank, BlockSizes, Gallery, Progress, RankOptions, Rows, Targets};
use crate::error::{Error, Result};

/// Mean similarity of each row of `rows` to its `k` most similar rows of `other`
/// (CSLS's r term: Conneau, Lample et al. 2018). `exclusions` (rows x other, only its
/// exclusions are used) removes pairs from the neighbourhoods; a row with fewer than `k`
/// eligible neighbours averages over those it has (0 when it has none).
pub fn knn_mean_similarity(
    rows: Rows<'_>,
    other: Rows<'_>,
    exclusions: Option<&Targets>,
    k: usize,
    sizes: &BlockSizes,
    progress: &dyn Progress,
) -> Result<Vec<f32>> {
    if k == 0 {
        return Err(Error::config("--csls-k must be at least 1"));
    }
    let none;
    let targets = match exclusions {
        Some(t) => exclusions_only(t)?,
        None => {
            none = Targets::none(rows.n(), other.n());
            std::borrow::Cow::Borrowed(&none)
        }
    };
    let gallery = Gallery::new(other);
    let options = RankOptions { top_k: k, sizes: *sizes };
    let ranked = rank(rows, &gallery, &targets, 0..rows.n(), &options, progress)?;
    Ok(ranked
        .iter()
        .map(|r| {
            if r.top.is_empty() {
                0.0
            } else {
                (r.top.iter().map(|n| f64::from(n.score)).sum::<f64>() / r.top.len() as f64) as f32
            }
        })
        .collect())
}

/// `targets` with its positives dropped (they would be ranked like any other item anyway,
/// but the engine keeps them out of nothing; only exclusions matter here).
fn exclusions_only(targets: &Targets) -> Result<std::borrow::Cow<'_, Targets>> {
    if (0..targets.n_queries()).all(|q| targets.n_positives(q) == 0) {
        return Ok(std::borrow::Cow::Borrowed(targets));
    }
    let mut builder = Targets::builder(targets.n_gallery());
    let mut excluded = Vec::new();
    for q in 0..targets.n_queries() {
        excluded.clear();
        excluded.extend(targets.exclusions(q));
        builder.push(&[], &excluded)?;
    }
    Ok(std::borrow::Cow::Owned(builder.build()))
}

/// For each row i of `rows`: ln sum_j exp(beta s_ij) over the rows j of `other` that
/// `exclusions` does not exclude for i (a log-sum-exp, shifted by the row maximum so that
/// nothing overflows). The inverted-softmax normaliser of Smith et al. (2017) when `rows`
/// is the gallery and `other` the queries; QB-Norm's when `other` is a query bank.
pub fn log_normalizers(
    rows: Rows<'_>,
    other: Rows<'_>,
    exclusions: Option<&Targets>,
    beta: f64,
    sizes: &BlockSizes,
    progress: &dyn Progress,
) -> Result<Vec<f64>> {
    if !(beta.is_finite() && beta > 0.0) {
        return Err(Error::config(format!("inverted-softmax temperature beta must be positive, got {beta}")));
    }
    if let Some(t) = exclusions {
        if t.n_queries() != rows.n() || t.n_gallery() != other.n() {
            return Err(Error::config(format!(
                "neighbourhood exclusions describe {} x {} pairs, but the pass has {} x {}",
                t.n_queries(),
                t.n_gallery(),
                rows.n(),
                other.n()
            )));
        }
    }
    let gallery = Gallery::new(other);
    let weights: Option<Vec<f32>> = (gallery.n_duplicates() > 0)
        .then(|| (0..gallery.n_unique()).map(|u| gallery.multiplicity(u) as f32).collect());
    let mut out = vec![0f64; rows.n()];
    let beta32 = beta as f32;
    for_each_block(rows, &gallery, 0..rows.n(), sizes, progress, |block| {
        let start = block.query_start;
        out[start..start + block.len()].par_iter_mut().enumerate().try_for_each(|(i, slot)| {
            let row = block.row(i);
            SCRATCH.with(|scratch| {
                let scores = &mut *scratch.borrow_mut();
                row.copy_unique_scores(scores);
                // Excluded items: a representative whose every member is excluded leaves the
                // sum entirely (-inf); partly excluded duplicates are subtracted afterwards.
                let mut partial: Vec<(usize, f64)> = Vec::new();
                if let Some(t) = exclusions {
                    let mut excluded: Vec<usize> =
                        t.exclusions(start + i).map(|g| gallery.unique_of(g as usize)).collect();
                    excluded.sort_unstable();
                    for run in excluded.chunk_by(|a, b| a == b) {
                        let u = run[0];
                        if run.len() as u32 == gallery.multiplicity(u) {
                            scores[u] = f32::NEG_INFINITY;
                        } else {
                            partial.push((u, run.len() as f64));
                        }
                    }
                }
                let max = max_of(scores);
                if max == f32::NEG_INFINITY {
                    return Err(Error::config(format!(
                        "row {} has no neighbour left after exclusions; the normaliser is undefined",
                        start + i
                    )));
                }
                let mut sum = sum_exp(scores, weights.as_deref(), beta32, max);
                for (u, count) in partial {
                    sum -= count * (beta * (f64::from(scores[u]) - f64::from(max))).exp();
                }
                *slot = beta * f64::from(max) + sum.max(f64::MIN_POSITIVE).ln();
                Ok(())
            })
        })
    })?;
    Ok(out)
}

thread_local! {
    /// Per-thread copy of one row's scores.
    static SCRATCH: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) };
}

multiversion! {
    /// The largest value (-inf for an empty or all -inf slice).
    fn max_of(values: &[f32]) -> f32 {
        let mut lanes = [f32::NEG_INFINITY; 16];
        let mut groups = values.chunks_exact(16);
        for group in &mut groups {
            for (m, &x) in lanes.iter_mut().zip(group) {
                *m = if x > *m { x } else { *m };
            }
        }
        lanes.iter().chain(groups.remainder()).fold(f32::NEG_INFINITY, |m, &x| if x > m { x } else { m })
    }
}

multiversion! {
    /// sum_i w_i exp(beta (x_i - shift)), accumulated in 16 f32 lanes per run of 1024 values
    /// and in f64 across runs.
    fn sum_exp(values: &[f32], weights: Option<&[f32]>, beta: f32, shift: f32) -> f64 {
        let mut total = 0f64;
        for (r, run) in values.chunks(1024).enumerate() {
            let mut lanes = [0f32; 16];
            let mut groups = run.chunks_exact(16);
            match weights {
                None => {
                    for group in &mut groups {
                        for (acc, &x) in lanes.iter_mut().zip(group) {
                            *acc += exp_approx(beta * (x - shift));
                        }
                    }
                    for &x in groups.remainder() {
                        lanes[0] += exp_approx(beta * (x - shift));
                    }
                }
                Some(w) => {
                    let w = &w[r * 1024..r * 1024 + run.len()];
                    let mut wgroups = w.chunks_exact(16);
                    for (group, wg) in (&mut groups).zip(&mut wgroups) {
                        for ((acc, &x), &wx) in lanes.iter_mut().zip(group).zip(wg) {
                            *acc += wx * exp_approx(beta * (x - shift));
                        }
                    }
                    for (&x, &wx) in groups.remainder().iter().zip(wgroups.remainder()) {
                        lanes[0] += wx * exp_approx(beta * (x - shift));
                    }
                }
            }
            total += lanes.iter().map(|&v| f64::from(v)).sum::<f64>();
        }
        total
    }
}

/// exp(x) for x <= 88, to about 2e-7 relative error; 0 below -87 (and for -inf). Written
/// without branches or library calls so the loops above vectorise: x = n ln 2 + r with
/// |r| <= ln 2 / 2 (Cody–Waite split of ln 2), exp(r) by its degree-6 Taylor polynomial,
/// 2^n assembled in the exponent bits.
#[inline(always)]
pub(crate) fn exp_approx(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_145_75;
    const LN2_LO: f32 = 1.428_606_8e-6;
    const ROUND: f32 = 12_582_912.0; // 1.5 * 2^23: adding and subtracting rounds to an integer
    let below = x < -87.0;
    let xc = x.clamp(-87.0, 88.0);
    let n = (xc * LOG2E + ROUND) - ROUND;
    let r = xc - n * LN2_HI - n * LN2_LO;
    let p = 1.0
        + r * (1.0 + r * (0.5 + r * (1.0 / 6.0 + r * (1.0 / 24.0 + r * (1.0 / 120.0 + r * (1.0 / 720.0))))));
    let scale = f32::from_bits(((n as i32 + 127) as u32) << 23);
    if below {
        0.0
    } else {
        p * scale
    }
}

/// The exclusions of `targets` seen from the gallery side: gallery item g's list holds
/// every query that excludes g (for the gallery-side neighbourhood passes).
pub fn transposed_exclusions(targets: &Targets) -> Result<Targets> {
    let n_gallery = targets.n_gallery();
    let mut lists: Vec<Vec<u32>> = vec![Vec::new(); n_gallery];
    for q in 0..targets.n_queries() {
        for g in targets.exclusions(q) {
            lists[g as usize].push(q as u32);
        }
    }
    let mut builder = Targets::builder(targets.n_queries());
    for list in &lists {
        builder.push(&[], list)?;
    }
    Ok(builder.build())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::NoProgress;

    #[test]
    fn fast_exp_is_accurate_over_its_range() {
        let mut worst = 0f64;
        let mut x = -86.9f64;
        while x < 88.0 {
            let got = f64::from(exp_approx(x as f32));
            let want = (f64::from(x as f32)).exp();
            worst = worst.max(((got - want) / want).abs());
            x += 0.0137;
        }
        assert!(worst < 4e-7, "worst relative error {worst}");
        assert_eq!(exp_approx(-90.0), 0.0);
        assert_eq!(exp_approx(f32::NEG_INFINITY), 0.0);
        assert_eq!(exp_approx(0.0), 1.0);
    }

    /// Rows in `data` (n x dim), unit-normalised.
    fn unit_rows(seed: u64, n: usize, dim: usize) -> Vec<f32> {
        use rand::SeedableRng;
        use rand_distr::{Distribution, StandardNormal};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let mut data = Vec::with_capacity(n * dim);
        for _ in 0..n {
            let v: Vec<f32> = (0..dim).map(|_| StandardNormal.sample(&mut rng)).collect();
            let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
            data.extend(v.iter().map(|x| x / norm));
        }
        data
    }

    fn dot(a: &[f32], b: &[f32]) -> f64 {
        a.iter().zip(b).map(|(x, y)| f64::from(*x) * f64::from(*y)).sum()
    }

    #[test]
    fn neighbourhood_statistics_match_brute_force_with_duplicates_and_exclusions() {
        let dim = 12;
        let (n_rows, n_other) = (23, 31);
        let rows = unit_rows(1, n_rows, dim);
        let mut other = unit_rows(2, n_other, dim);
        // Exact duplicates among `other` (rows 5 and 6 copy row 4).
        let copy: Vec<f32> = other[4 * dim..5 * dim].to_vec();
        other[5 * dim..6 * dim].copy_from_slice(&copy);
        other[6 * dim..7 * dim].copy_from_slice(&copy);
        let excluded = |i: usize| -> Vec<u32> {
            match i % 4 {
                0 => vec![4, 5, 6],                 // a whole duplicate group
                1 => vec![5, (i % n_other) as u32], // part of it
                2 => vec![],
                _ => vec![(i * 7 % n_other) as u32],
            }
        };
        let mut builder = Targets::builder(n_other);
        for i in 0..n_rows {
            builder.push(&[], &excluded(i)).unwrap();
        }
        let targets = builder.build();
        let r = Rows::new(&rows, n_rows, dim).unwrap();
        let o = Rows::new(&other, n_other, dim).unwrap();
        let sizes = BlockSizes { block_rows: 5, chunk_cols: 7, memory_budget_bytes: 0 };
        let k = 4;
        let knn = knn_mean_similarity(r, o, Some(&targets), k, &sizes, &NoProgress).unwrap();
        for beta in [1.0, 17.0, 150.0] {
            let lse = log_normalizers(r, o, Some(&targets), beta, &sizes, &NoProgress).unwrap();
            for i in 0..n_rows {
                let ex = excluded(i);
                let sims: Vec<f64> = (0..n_other)
                    .filter(|j| !ex.contains(&(*j as u32)))
                    .map(|j| dot(&rows[i * dim..(i + 1) * dim], &other[j * dim..(j + 1) * dim]))
                    .collect();
                let m = sims.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                let want = beta * m + sims.iter().map(|s| (beta * (s - m)).exp()).sum::<f64>().ln();
                assert!(
                    (lse[i] - want).abs() < 2e-5 * want.abs().max(1.0),
                    "row {i} beta {beta}: {} vs {want}",
                    lse[i]
                );
                if beta == 1.0 {
                    let mut sorted = sims.clone();
                    sorted.sort_by(|a, b| b.total_cmp(a));
                    let want = sorted[..k].iter().sum::<f64>() / k as f64;
                    assert!((f64::from(knn[i]) - want).abs() < 1e-5, "row {i}: {} vs {want}", knn[i]);
                }
            }
        }
    }

    #[test]
    fn transposing_exclusions_swaps_roles() {
        let mut b = Targets::builder(4);
        b.push(&[1], &[0, 2]).unwrap();
        b.push(&[], &[2]).unwrap();
        let t = transposed_exclusions(&b.build()).unwrap();
        assert_eq!(t.n_queries(), 4);
        assert_eq!(t.n_gallery(), 2);
        assert_eq!(t.exclusions(0).collect::<Vec<_>>(), vec![0]);
        assert_eq!(t.exclusions(2).collect::<Vec<_>>(), vec![0, 1]);
        assert_eq!(t.exclusions(1).count(), 0);
    }
}
