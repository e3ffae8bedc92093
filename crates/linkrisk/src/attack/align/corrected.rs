//! Alignment that never does worse than doing nothing (issue 14). When the query and gallery
//! views have one dimension, plain cosine (W = I) is already an attack, and a map learned
//! from scratch on m leaked pairs can rank far below it (a 512 x 512 map from 1,000 pairs is
//! mostly estimation noise). So the map is learned as a correction of the identity:
//!
//! - ridge toward the identity: W = argmin ||X W - Y||^2 + lambda ||W - I||^2
//!   = I + (X^T X + lambda I)^-1 X^T (Y - X), i.e. ridge on the residual Y - X, from one SVD
//!   of X per fit; lambda -> infinity is the identity;
//! - Procrustes toward the identity: W = argmax tr(W^T (X^T Y + mu c I)) over orthogonal W,
//!   the polar factor U V^T of X^T Y + mu c I (c = ||X^T Y||_F / sqrt(d)); mu = 0 is plain
//!   Procrustes, mu -> infinity the identity.
//!
//! The candidates (the identity, and the learned map at each penalty) are scored by
//! `INNER_FOLDS`-fold cross-validation over the leaked pairs: each held-out pair's reciprocal
//! rank of its true gallery row among up to [`DISTRACTORS`] unlabelled gallery rows the
//! attacker holds. The choice follows the one-standard-error rule (Hastie, Tibshirani &
//! Friedman, *The Elements of Statistical Learning*, 2nd ed., section 7.10): the most
//! identity-like candidate whose mean reciprocal rank is within one standard error of the
//! best, then refitted on all m pairs. A learned map is therefore used only when the pairs
//! show it beats cosine, and a rotated view (where cosine is at chance) is still recovered.

use faer::{Mat, MatRef};
use rand::seq::SliceRandom;
use serde::Serialize;

use super::{row_major, to_mat, LinearMap, MapKind};
use crate::engine::Rows;
use crate::error::{Error, Result};
use crate::rng;

/// At most this many unlabelled gallery rows score the candidates (a seeded sample, drawn by
/// the caller).
pub const DISTRACTORS: usize = 2000;

/// Inner cross-validation folds over the leaked pairs (fewer when there are fewer pairs).
const INNER_FOLDS: usize = 5;

/// Ridge penalties toward the identity, in units of the mean squared singular value of X
/// (strongest first, after the identity itself).
const RIDGE_GRID: [f64; 13] = [1e3, 3e2, 1e2, 3e1, 1e1, 3.0, 1.0, 3e-1, 1e-1, 3e-2, 1e-2, 3e-3, 1e-3];

/// Procrustes shrinkage toward the identity, in units of ||X^T Y||_F / sqrt(d) (strongest
/// first, after the identity itself; 0 is plain Procrustes).
const PROCRUSTES_GRID: [f64; 3] = [2.0, 0.5, 0.0];

/// How an identity-corrected map was chosen (the `parameters` of an alignment row).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MapSelection {
    /// `identity` (the attack is plain cosine) or `learned`.
    pub chosen: &'static str,
    /// Penalty toward the identity of the chosen learned map, in the grid's relative units
    /// (ridge: of the mean squared singular value of X; Procrustes: of ||X^T Y||_F /
    /// sqrt(d)); absent for the identity.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shrinkage: Option<f64>,
    /// Cross-validated mean reciprocal rank of the chosen candidate.
    pub cv_mrr: f64,
    /// Cross-validated mean reciprocal rank of the identity (plain cosine).
    pub identity_cv_mrr: f64,
    /// The best candidate's cross-validated mean reciprocal rank.
    pub best_cv_mrr: f64,
    /// Its standard error (the one-standard-error rule's margin).
    pub best_cv_se: f64,
    /// Inner folds over the leaked pairs (0: too few pairs to choose; the identity is used).
    pub inner_folds: usize,
    /// Distractor gallery rows each held-out pair was ranked against.
    pub distractors: usize,
}

/// A candidate map, most identity-like first.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Candidate {
    Identity,
    /// The learned map at this relative penalty toward the identity.
    Learned(f64),
}

/// Fit the map of `kind` on the pairs (x_i, y_i) of one dimension as a correction of the
/// identity (see the module docs), candidates scored against `distractors` (unit rows of
/// the same dimension). `seed` draws the inner folds. Runs its factorisations with faer's
/// global parallelism: call it in a one-thread pool for bitwise reproducibility (as
/// [`super::fit`] does).
pub fn corrected(
    kind: MapKind,
    x: Rows<'_>,
    y: Rows<'_>,
    distractors: Rows<'_>,
    seed: u64,
) -> Result<LinearMap> {
    super::check_pairs(x, y)?;
    let (m, d) = (x.n(), x.dim());
    if y.dim() != d || distractors.dim() != d {
        return Err(Error::config(format!(
            "identity-corrected alignment needs one dimension: pairs {} -> {}, distractors {}",
            d,
            y.dim(),
            distractors.dim()
        )));
    }
    let mut candidates = vec![Candidate::Identity];
    match kind {
        MapKind::Ridge => candidates.extend(RIDGE_GRID.iter().map(|&l| Candidate::Learned(l))),
        MapKind::Procrustes => candidates.extend(PROCRUSTES_GRID.iter().map(|&l| Candidate::Learned(l))),
    }
    let (xm, ym, dm) = (to_mat(x), to_mat(y), to_mat(distractors));
    let scale = match kind {
        MapKind::Ridge => squared_norm(xm.as_ref()) / m.min(d) as f64,
        MapKind::Procrustes => (squared_norm((xm.transpose() * &ym).as_ref()) / d as f64).sqrt(),
    };
    if !(scale.is_finite() && scale > 0.0) {
        return Err(Error::config("the leaked pairs are degenerate (all zero); alignment is undefined"));
    }
    let inner = INNER_FOLDS.min(m);
    if inner < 2 || distractors.n() == 0 {
        let selection = MapSelection {
            chosen: "identity",
            shrinkage: None,
            cv_mrr: f64::NAN,
            identity_cv_mrr: f64::NAN,
            best_cv_mrr: f64::NAN,
            best_cv_se: f64::NAN,
            inner_folds: 0,
            distractors: distractors.n(),
        };
        return Ok(LinearMap { selection: Some(selection), ..LinearMap::identity(d) });
    }
    let mut order: Vec<usize> = (0..m).collect();
    order.shuffle(&mut rng::stream(seed, "align-inner-folds", 0));
    let mut fold_of = vec![0usize; m];
    for (k, &i) in order.iter().enumerate() {
        fold_of[i] = k % inner;
    }
    // Reciprocal rank of every pair (as held out) under every candidate.
    let mut rr = vec![vec![0f64; m]; candidates.len()];
    for fold in 0..inner {
        let fit: Vec<usize> = (0..m).filter(|&i| fold_of[i] != fold).collect();
        let held: Vec<usize> = (0..m).filter(|&i| fold_of[i] == fold).collect();
        let (xf, yf) = (select(&xm, &fit), select(&ym, &fit));
        let (xh, yh) = (select(&xm, &held), select(&ym, &held));
        let mapped = held_out_maps(kind, &candidates, xf.as_ref(), yf.as_ref(), xh.as_ref(), scale)?;
        for (c, map) in mapped.iter().enumerate() {
            for (j, value) in reciprocal_ranks(map.as_ref(), yh.as_ref(), dm.as_ref()).into_iter().enumerate()
            {
                rr[c][held[j]] = value;
            }
        }
    }
    let means: Vec<f64> = rr.iter().map(|r| r.iter().sum::<f64>() / m as f64).collect();
    let best = (0..candidates.len()).fold(0, |b, c| if means[c] > means[b] { c } else { b });
    let se = {
        let mean = means[best];
        let var = rr[best].iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (m - 1) as f64;
        (var / m as f64).sqrt()
    };
    let chosen = (0..candidates.len()).find(|&c| means[c] >= means[best] - se).unwrap_or(best);
    let selection = |shrinkage: Option<f64>| MapSelection {
        chosen: if shrinkage.is_some() { "learned" } else { "identity" },
        shrinkage,
        cv_mrr: means[chosen],
        identity_cv_mrr: means[0],
        best_cv_mrr: means[best],
        best_cv_se: se,
        inner_folds: inner,
        distractors: distractors.n(),
    };
    match candidates[chosen] {
        Candidate::Identity => Ok(LinearMap { selection: Some(selection(None)), ..LinearMap::identity(d) }),
        Candidate::Learned(level) => {
            let w = match kind {
                MapKind::Ridge => {
                    let parts = RidgeParts::new(xm.as_ref(), ym.as_ref())?;
                    parts.weights(level * scale)
                }
                MapKind::Procrustes => polar(&(xm.transpose() * &ym), level * scale)?,
            };
            Ok(LinearMap {
                d_in: d,
                d_out: d,
                weights: row_major(w.as_ref()),
                lambda: (kind == MapKind::Ridge).then_some(level * scale),
                selection: Some(selection(Some(level))),
            })
        }
    }
}

fn squared_norm(m: MatRef<'_, f64>) -> f64 {
    (0..m.nrows()).map(|i| (0..m.ncols()).map(|j| m[(i, j)].powi(2)).sum::<f64>()).sum()
}

/// Rows `idx` of `m`.
fn select(m: &Mat<f64>, idx: &[usize]) -> Mat<f64> {
    Mat::from_fn(idx.len(), m.ncols(), |i, j| m[(idx[i], j)])
}

/// The held-out queries `xh` mapped by every candidate fitted on (`xf`, `yf`).
fn held_out_maps(
    kind: MapKind,
    candidates: &[Candidate],
    xf: MatRef<'_, f64>,
    yf: MatRef<'_, f64>,
    xh: MatRef<'_, f64>,
    scale: f64,
) -> Result<Vec<Mat<f64>>> {
    match kind {
        MapKind::Ridge => {
            let parts = RidgeParts::new(xf, yf)?;
            // X_h W = X_h + (X_h V) diag(s / (s^2 + lambda)) U^T (Y - X): one product per fold,
            // then a scaled product per penalty.
            let xhv = xh * &parts.v;
            Ok(candidates
                .iter()
                .map(|c| match *c {
                    Candidate::Identity => xh.to_owned(),
                    Candidate::Learned(level) => {
                        let lambda = level * scale;
                        let scaled = Mat::from_fn(xhv.nrows(), xhv.ncols(), |i, k| {
                            xhv[(i, k)] * parts.s[k] / (parts.s[k] * parts.s[k] + lambda)
                        });
                        xh + &scaled * &parts.utr
                    }
                })
                .collect())
        }
        MapKind::Procrustes => {
            let cross = xf.transpose() * yf;
            candidates
                .iter()
                .map(|c| match *c {
                    Candidate::Identity => Ok(xh.to_owned()),
                    Candidate::Learned(level) => Ok(xh * polar(&cross, level * scale)?),
                })
                .collect()
        }
    }
}

/// The pieces of ridge toward the identity on (X, Y): X = U S V^T and U^T (Y - X).
struct RidgeParts {
    v: Mat<f64>,
    s: Vec<f64>,
    utr: Mat<f64>,
}

impl RidgeParts {
    fn new(x: MatRef<'_, f64>, y: MatRef<'_, f64>) -> Result<RidgeParts> {
        let svd = x.thin_svd().map_err(|e| Error::config(format!("ridge SVD failed: {e:?}")))?;
        let residual = y - x;
        let utr = svd.U().transpose() * &residual;
        let s = svd.S().column_vector();
        Ok(RidgeParts { v: svd.V().to_owned(), s: (0..s.nrows()).map(|i| s[i]).collect(), utr })
    }

    /// W = I + V diag(s / (s^2 + lambda)) U^T (Y - X).
    fn weights(&self, lambda: f64) -> Mat<f64> {
        let d = self.v.nrows();
        let scaled = Mat::from_fn(self.utr.nrows(), d, |k, j| {
            self.utr[(k, j)] * self.s[k] / (self.s[k] * self.s[k] + lambda)
        });
        let mut w = &self.v * &scaled;
        for i in 0..d {
            w[(i, i)] += 1.0;
        }
        w
    }
}

/// The polar factor U V^T of `cross + shift I` (orthogonal Procrustes toward the identity).
fn polar(cross: &Mat<f64>, shift: f64) -> Result<Mat<f64>> {
    let mut shifted = cross.clone();
    for i in 0..shifted.nrows().min(shifted.ncols()) {
        shifted[(i, i)] += shift;
    }
    let svd = shifted.thin_svd().map_err(|e| Error::config(format!("Procrustes SVD failed: {e:?}")))?;
    Ok(svd.U() * svd.V().transpose())
}

/// Per held-out pair: 1 / (1 + distractors scoring strictly above its own gallery row), by
/// cosine of the re-normalised mapped query. A distractor equal to the pair's own row (the
/// row is in the sampled gallery) ties and does not count.
fn reciprocal_ranks(
    mapped: MatRef<'_, f64>,
    truth: MatRef<'_, f64>,
    distractors: MatRef<'_, f64>,
) -> Vec<f64> {
    let scores = mapped * distractors.transpose();
    (0..mapped.nrows())
        .map(|i| {
            let norm = (0..mapped.ncols()).map(|j| mapped[(i, j)].powi(2)).sum::<f64>().sqrt();
            if norm == 0.0 {
                return 0.0;
            }
            let own = (0..mapped.ncols()).map(|j| mapped[(i, j)] * truth[(i, j)]).sum::<f64>();
            let margin = 1e-9 * norm;
            let above = (0..scores.ncols()).filter(|&g| scores[(i, g)] > own + margin).count();
            1.0 / (1 + above) as f64
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand_distr::{Distribution, StandardNormal};

    use super::*;

    fn unit(n: usize, d: usize, seed: u64, f: impl Fn(usize, &[f32]) -> Vec<f32>) -> (Vec<f32>, Vec<f32>) {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let mut x: Vec<f32> = (0..n * d).map(|_| StandardNormal.sample(&mut rng)).collect();
        let norm = |v: &mut [f32]| {
            let s = v.iter().map(|a| a * a).sum::<f32>().sqrt();
            v.iter_mut().for_each(|a| *a /= s);
        };
        x.chunks_mut(d).for_each(norm);
        let mut y: Vec<f32> = (0..n).flat_map(|i| f(i, &x[i * d..(i + 1) * d])).collect();
        y.chunks_mut(d).for_each(norm);
        (x, y)
    }

    fn rows(v: &[f32], n: usize, d: usize) -> Rows<'_> {
        Rows::new(v, n, d).unwrap()
    }

    #[test]
    fn identical_views_keep_the_identity_and_a_swap_of_axes_is_learned() {
        let (n, d) = (200, 8);
        // y = x: nothing to learn, every candidate ties at the best: the identity is chosen.
        let (x, y) = unit(n, d, 1, |_, x| x.to_vec());
        for kind in [MapKind::Procrustes, MapKind::Ridge] {
            let map = corrected(kind, rows(&x, n, d), rows(&y, n, d), rows(&y, n, d), 0).unwrap();
            let s = map.selection.unwrap();
            assert_eq!((s.chosen, s.inner_folds, s.distractors), ("identity", 5, n), "{kind:?}");
            assert_eq!(map.weights, LinearMap::identity(d).weights);
            assert!((s.identity_cv_mrr - 1.0).abs() < 1e-12, "{s:?}");
        }
        // y = x with its axes reversed (an orthogonal map): the learned map wins and, refitted
        // on all pairs, maps every x onto its y.
        let (x, y) = unit(n, d, 2, |_, x| x.iter().rev().copied().collect());
        for kind in [MapKind::Procrustes, MapKind::Ridge] {
            let map = corrected(kind, rows(&x, n, d), rows(&y, n, d), rows(&y, n, d), 0).unwrap();
            let s = map.selection.clone().unwrap();
            assert_eq!(s.chosen, "learned", "{kind:?}: {s:?}");
            assert!(s.cv_mrr > 0.95 && s.identity_cv_mrr < 0.5, "{kind:?}: {s:?}");
            let mapped = map.apply(rows(&x, n, d)).unwrap();
            let worst = (0..n)
                .map(|i| (0..d).map(|j| mapped[i * d + j] * y[i * d + j]).sum::<f32>())
                .fold(f32::INFINITY, f32::min);
            assert!(worst > 0.95, "{kind:?}: cos(x W, y) >= {worst}");
        }
        // One pair cannot be cross-validated: the identity, said so.
        let one = corrected(
            MapKind::Ridge,
            Rows::new(&x[..d], 1, d).unwrap(),
            Rows::new(&y[..d], 1, d).unwrap(),
            rows(&y, n, d),
            0,
        )
        .unwrap();
        assert_eq!(one.selection.unwrap().inner_folds, 0);
    }
}
