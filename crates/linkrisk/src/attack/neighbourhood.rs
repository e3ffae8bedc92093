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
use crate::engine::{
    for_each_block, rank, BlockSizes, ColumnReducer, ColumnStates, Gallery, Progress, RankOptions, Rows,
    Targets,
};
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
pub(crate) fn exclusions_only(targets: &Targets) -> Result<std::borrow::Cow<'_, Targets>> {
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
    let mut all = log_normalizers_multi(rows, other, exclusions, &[beta], sizes, progress)?;
    Ok(all.pop().unwrap_or_default())
}

/// [`log_normalizers`] at every temperature of `betas` from one pass over the pairs: the
/// same score rows, maxima and sums per beta, so each result is bitwise what
/// [`log_normalizers`] gives at that beta alone (one GEMM pass instead of one per beta; the
/// temperature search of `hubness::tune_beta`). Returns one vector per beta, in order.
pub fn log_normalizers_multi(
    rows: Rows<'_>,
    other: Rows<'_>,
    exclusions: Option<&Targets>,
    betas: &[f64],
    sizes: &BlockSizes,
    progress: &dyn Progress,
) -> Result<Vec<Vec<f64>>> {
    if let Some(&beta) = betas.iter().find(|b| !(b.is_finite() && **b > 0.0)) {
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
    let n_betas = betas.len();
    // Row-major: row i's normalisers at every beta, transposed to one vector per beta below.
    let mut out = vec![0f64; rows.n() * n_betas];
    if n_betas == 0 {
        return Ok(Vec::new());
    }
    for_each_block(rows, &gallery, 0..rows.n(), sizes, progress, |block| {
        let start = block.query_start;
        out[start * n_betas..(start + block.len()) * n_betas]
            .par_chunks_mut(n_betas)
            .enumerate()
            .try_for_each(|(i, slots)| {
                let row = block.row(i);
                SCRATCH.with(|scratch| {
                    let scores = &mut *scratch.borrow_mut();
                    row.copy_unique_scores(scores);
                    // Excluded items: a representative whose every member is excluded leaves
                    // the sum entirely (-inf); partly excluded duplicates are subtracted
                    // afterwards.
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
                    for (slot, &beta) in slots.iter_mut().zip(betas) {
                        let mut sum = sum_exp(scores, weights.as_deref(), beta as f32, max);
                        for &(u, count) in &partial {
                            sum -= count * (beta * (f64::from(scores[u]) - f64::from(max))).exp();
                        }
                        *slot = beta * f64::from(max) + sum.max(f64::MIN_POSITIVE).ln();
                    }
                    Ok(())
                })
            })
    })?;
    Ok((0..n_betas).map(|b| out.iter().skip(b).step_by(n_betas).copied().collect()).collect())
}

/// Gallery-side neighbourhood statistics gathered during a ranking pass of the same queries
/// against the same gallery (a [`ColumnReducer`]): for each gallery item, the mean of its
/// `k` highest scores over the queries (CSLS's r_g, as [`knn_mean_similarity`] with the
/// roles swapped) and the log-sum-exp ln sum_q exp(beta s_qg) (the inverted softmax's
/// normaliser, as [`log_normalizers`]). Piggybacking on the cosine pass the attack
/// comparison runs anyway saves each correction a GEMM over all pairs (issue 8's cost
/// target; docs/PERFORMANCE.md "Attacks").
///
/// Exclusions (query x gallery pairs outside the attacker's similarity matrix) are honoured.
/// The engine scores each group of exact duplicate gallery rows once, so a statistic per
/// representative is every member's statistic, unless a query excludes some members of a
/// group and not others: [`ColumnStats::new`] returns `None` then, and the caller runs the
/// separate passes, which handle that case.
#[derive(Debug)]
pub struct ColumnStats<'a> {
    gallery: &'a Gallery<'a>,
    exclusions: Option<&'a Targets>,
    k: usize,
    beta: Option<f32>,
}

/// One chunk's running statistics (see [`ColumnStats`]).
#[derive(Debug)]
pub struct ColumnState {
    /// Per column, its `k` highest scores so far, descending (-inf where fewer were seen).
    top: Vec<f32>,
    /// Per column, the last of those (`top`'s every k-th value, contiguous for the scan).
    kth: Vec<f32>,
    /// Per column, the running maximum of the log-sum-exp.
    max: Vec<f32>,
    /// Per column, sum exp(beta (s - max)).
    sum: Vec<f64>,
}

/// What [`ColumnStats`] yields per gallery item.
#[derive(Debug, Clone, Default)]
pub struct GalleryNeighbourhood {
    /// Mean similarity to the `k` nearest queries (when `k` > 0).
    pub knn_mean: Option<Vec<f32>>,
    /// ln sum_q exp(beta s_qg) (when a beta was given).
    pub log_normalizer: Option<Vec<f64>>,
}

impl<'a> ColumnStats<'a> {
    /// Statistics over the queries of a pass against `gallery` with query-side
    /// `exclusions` (the ranking task's targets; only their exclusions are used): the `k`
    /// nearest queries' mean (0: skip) and the log-normaliser at `beta` (None: skip).
    /// `None` when the gallery's duplicate groups are partly excluded (see the type docs).
    pub fn new(
        gallery: &'a Gallery<'a>,
        exclusions: Option<&'a Targets>,
        k: usize,
        beta: Option<f64>,
    ) -> Result<Option<ColumnStats<'a>>> {
        if let Some(beta) = beta {
            if !(beta.is_finite() && beta > 0.0) {
                return Err(Error::config(format!(
                    "inverted-softmax temperature beta must be positive, got {beta}"
                )));
            }
        }
        if let Some(t) = exclusions {
            if t.n_gallery() != gallery.len() {
                return Err(Error::config("neighbourhood exclusions do not match the gallery"));
            }
            let partly = gallery.n_duplicates() > 0
                && (0..t.n_queries()).any(|q| {
                    let mut groups: Vec<usize> = t
                        .exclusions(q)
                        .map(|g| gallery.unique_of(g as usize))
                        .filter(|&u| gallery.multiplicity(u) > 1)
                        .collect();
                    groups.sort_unstable();
                    groups.chunk_by(|a, b| a == b).any(|run| run.len() as u32 != gallery.multiplicity(run[0]))
                });
            if partly {
                return Ok(None);
            }
        }
        let exclusions = exclusions.filter(|t| (0..t.n_queries()).any(|q| t.n_exclusions(q) > 0));
        Ok(Some(ColumnStats { gallery, exclusions, k, beta: beta.map(|b| b as f32) }))
    }

    /// Per gallery item, the statistics of a finished pass.
    pub fn finish(&self, states: ColumnStates<ColumnState>) -> Result<GalleryNeighbourhood> {
        let n_unique = self.gallery.n_unique();
        let mut knn = (self.k > 0).then(|| vec![0f32; n_unique]);
        let mut log_z = self.beta.map(|_| vec![0f64; n_unique]);
        for (c0, c1, state) in states {
            for j in 0..c1 - c0 {
                if let Some(knn) = knn.as_mut() {
                    // Summed best first in f64, as `knn_mean_similarity` sums its top-k.
                    let top = &state.top[j * self.k..(j + 1) * self.k];
                    let seen: Vec<f64> =
                        top.iter().filter(|x| x.is_finite()).map(|&x| f64::from(x)).collect();
                    knn[c0 + j] = if seen.is_empty() {
                        0.0
                    } else {
                        (seen.iter().sum::<f64>() / seen.len() as f64) as f32
                    };
                }
                if let (Some(log_z), Some(beta)) = (log_z.as_mut(), self.beta) {
                    let max = state.max[j];
                    if max == f32::NEG_INFINITY {
                        return Err(Error::config(format!(
                            "gallery item {} has no query left after exclusions; the normaliser is undefined",
                            self.gallery.members(c0 + j)[0]
                        )));
                    }
                    let beta = f64::from(beta);
                    log_z[c0 + j] = beta * f64::from(max) + state.sum[j].max(f64::MIN_POSITIVE).ln();
                }
            }
        }
        let per_item = |u: &Vec<f32>| (0..self.gallery.len()).map(|g| u[self.gallery.unique_of(g)]).collect();
        Ok(GalleryNeighbourhood {
            knn_mean: knn.as_ref().map(per_item),
            log_normalizer: log_z
                .map(|u| (0..self.gallery.len()).map(|g| u[self.gallery.unique_of(g)]).collect()),
        })
    }
}

impl ColumnReducer for ColumnStats<'_> {
    type State = ColumnState;

    fn init(&self, c0: usize, c1: usize) -> ColumnState {
        let width = c1 - c0;
        let lse = self.beta.is_some();
        ColumnState {
            top: vec![f32::NEG_INFINITY; width * self.k],
            kth: if self.k > 0 { vec![f32::NEG_INFINITY; width] } else { Vec::new() },
            max: if lse { vec![f32::NEG_INFINITY; width] } else { Vec::new() },
            sum: if lse { vec![0.0; width] } else { Vec::new() },
        }
    }

    fn reduce(&self, state: &mut ColumnState, q0: usize, c0: usize, c1: usize, scores: &[f32]) {
        let width = c1 - c0;
        // Rows with an excluded item in this chunk are read from a copy with those scores
        // set to -inf (which enters no top-k and adds exp(-inf) = 0).
        let mut masked: Vec<(usize, Vec<f32>)> = Vec::new();
        if let Some(t) = self.exclusions {
            for (r, row) in scores.chunks_exact(width).enumerate() {
                let mut copy: Option<Vec<f32>> = None;
                for g in t.exclusions(q0 + r) {
                    let u = self.gallery.unique_of(g as usize);
                    if (c0..c1).contains(&u) {
                        copy.get_or_insert_with(|| row.to_vec())[u - c0] = f32::NEG_INFINITY;
                    }
                }
                if let Some(copy) = copy {
                    masked.push((r, copy));
                }
            }
        }
        let mut rows: Vec<&[f32]> = scores.chunks_exact(width).collect();
        for (r, copy) in &masked {
            rows[*r] = copy;
        }
        if self.k > 0 {
            for row in &rows {
                offer_top(&mut state.top, &mut state.kth, self.k, row);
            }
        }
        if let Some(beta) = self.beta {
            let mut block_max = vec![f32::NEG_INFINITY; width];
            for row in &rows {
                max_into(&mut block_max, row);
            }
            for j in 0..width {
                let new = state.max[j].max(block_max[j]);
                if new > state.max[j] && state.max[j] > f32::NEG_INFINITY {
                    state.sum[j] *= (f64::from(beta) * (f64::from(state.max[j]) - f64::from(new))).exp();
                }
                state.max[j] = new;
            }
            let mut acc = vec![0f32; width];
            for row in &rows {
                add_exp(&mut acc, row, &state.max, beta);
            }
            for (s, a) in state.sum.iter_mut().zip(&acc) {
                *s += f64::from(*a);
            }
        }
    }
}

multiversion! {
    /// Offer one row of scores to per-column top-`k` lists (`top`: `k` per column,
    /// descending; `kth`: each list's last value). Most scores are below their column's
    /// k-th best, so groups of 16 are first compared to `kth` as vectors and only a group
    /// with a candidate is inserted element by element.
    fn offer_top(top: &mut [f32], kth: &mut [f32], k: usize, row: &[f32]) -> () {
        for start in (0..row.len()).step_by(16) {
            let end = (start + 16).min(row.len());
            let any = row[start..end].iter().zip(&kth[start..end]).fold(false, |a, (&x, &t)| a | (x > t));
            if !any {
                continue;
            }
            for j in start..end {
                let x = row[j];
                if x > kth[j] {
                    let list = &mut top[j * k..(j + 1) * k];
                    let at = list.partition_point(|&y| y >= x);
                    list.copy_within(at..k - 1, at + 1);
                    list[at] = x;
                    kth[j] = list[k - 1];
                }
            }
        }
    }
}

multiversion! {
    /// Element-wise running maximum.
    fn max_into(acc: &mut [f32], row: &[f32]) -> () {
        for (m, &x) in acc.iter_mut().zip(row) {
            *m = if x > *m { x } else { *m };
        }
    }
}

multiversion! {
    /// acc_j += exp(beta (row_j - shift_j)), element-wise.
    fn add_exp(acc: &mut [f32], row: &[f32], shift: &[f32], beta: f32) -> () {
        for ((a, &x), &m) in acc.iter_mut().zip(row).zip(shift) {
            *a += exp_approx(beta * (x - m));
        }
    }
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
    use crate::engine::{NoProgress, RankOptions};

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

    /// The statistics gathered inside a ranking pass equal the separate passes' (which are
    /// checked against brute force above): CSLS means bit for bit up to the GEMM's
    /// transposition, log-normalisers to the exp approximation's accuracy. Duplicate gallery
    /// rows (whole groups excluded together) and uneven block and chunk grids included.
    #[test]
    fn column_statistics_in_the_ranking_pass_equal_the_separate_passes() {
        let dim = 10;
        let (n_q, n_g) = (37, 29);
        let queries = unit_rows(3, n_q, dim);
        let mut gallery = unit_rows(4, n_g, dim);
        let copy: Vec<f32> = gallery[2 * dim..3 * dim].to_vec();
        gallery[7 * dim..8 * dim].copy_from_slice(&copy);
        let q = Rows::new(&queries, n_q, dim).unwrap();
        let g = Rows::new(&gallery, n_g, dim).unwrap();
        let g_dedup = Gallery::new(g);
        assert_eq!(g_dedup.n_duplicates(), 1);
        // Query i excludes gallery item i % 11 unless that is in the duplicate group, and
        // every third query excludes the whole group {2, 7}.
        let mut builder = Targets::builder(n_g);
        for i in 0..n_q {
            let mut ex: Vec<u32> = Vec::new();
            if ![2, 7].contains(&(i % 11)) {
                ex.push((i % 11) as u32);
            }
            if i % 3 == 0 {
                ex.extend([2, 7]);
            }
            builder.push(&[], &ex).unwrap();
        }
        let targets = builder.build();
        let (k, beta) = (3, 23.0);
        let stats = ColumnStats::new(&g_dedup, Some(&targets), k, Some(beta)).unwrap().unwrap();
        for sizes in [
            BlockSizes { block_rows: 4, chunk_cols: 5, memory_budget_bytes: 0 },
            BlockSizes { block_rows: 64, chunk_cols: 2, memory_budget_bytes: 0 },
            BlockSizes::default(),
        ] {
            let options = RankOptions { top_k: 0, sizes };
            let (_, states) = crate::engine::rank_with_columns(
                q,
                &g_dedup,
                &targets,
                0..n_q,
                &options,
                &(),
                &stats,
                &NoProgress,
            )
            .unwrap();
            let got = stats.finish(states).unwrap();
            let t = transposed_exclusions(&targets).unwrap();
            let knn = knn_mean_similarity(g, q, Some(&t), k, &sizes, &NoProgress).unwrap();
            let lse = log_normalizers(g, q, Some(&t), beta, &sizes, &NoProgress).unwrap();
            let (got_knn, got_lse) = (got.knn_mean.unwrap(), got.log_normalizer.unwrap());
            for j in 0..n_g {
                assert!((got_knn[j] - knn[j]).abs() <= 1e-6, "item {j}: {} vs {}", got_knn[j], knn[j]);
                assert!(
                    (got_lse[j] - lse[j]).abs() <= 2e-5 * lse[j].abs().max(1.0),
                    "item {j}: {} vs {}",
                    got_lse[j],
                    lse[j]
                );
            }
            assert_eq!(got_knn[2], got_knn[7], "duplicates share their statistics");
        }
        // Excluding one member of a duplicate group but not the other: not fusable.
        let mut builder = Targets::builder(n_g);
        builder.push(&[], &[7]).unwrap();
        for _ in 1..n_q {
            builder.push(&[], &[]).unwrap();
        }
        let partly = builder.build();
        assert!(ColumnStats::new(&g_dedup, Some(&partly), k, Some(beta)).unwrap().is_none());
        assert!(ColumnStats::new(&g_dedup, None, k, Some(-1.0)).is_err());
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
