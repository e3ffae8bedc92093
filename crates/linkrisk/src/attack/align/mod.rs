//! Leaked-pair alignment: an attacker who knows m true (query, gallery) pairs learns a map
//! W from the query view into the gallery view and ranks by cos(x W, y). This defeats an
//! "anonymising" rotation of one view and links embeddings of two different models.
//!
//! - Orthogonal Procrustes (Schönemann 1966): W = argmin ||X W - Y||_F over W^T W = I,
//!   W = U V^T from the SVD X^T Y = U S V^T (for d1 != d2 the semi-orthogonal solution,
//!   thin SVD). Cosine similarity is unchanged by an orthogonal W, so Procrustes recovers a
//!   rotated view exactly once the pairs span the space.
//! - Ridge regression: W = (X^T X + lambda I)^-1 X^T Y, lambda chosen by generalised
//!   cross-validation (Golub, Heath & Wahba 1979) on the leaked pairs themselves, via the
//!   SVD of X.
//!
//! Rows of X and Y are the (unit-norm) embeddings; mapped queries are re-normalised.
//!
//! Where both views have one dimension (they may share a space, and cosine is already an
//! attack), [`fit`] learns the map as a correction of the identity ([`corrected`]): the
//! learned maps are shrunk toward W = I and the identity itself is a candidate, chosen by
//! cross-validation on the leaked pairs, so the aligned attack does not fall below plain
//! cosine by more than noise. Between views of different dimensions (768-d features to
//! 512-d embeddings) [`fit`] is the plain d1 x d2 fit.

mod corrected;

use faer::linalg::matmul::matmul;
use faer::{Accum, Mat, MatRef, Par};
use rayon::prelude::*;

use crate::engine::Rows;
use crate::error::{Error, Result};

pub use corrected::{corrected, MapSelection, DISTRACTORS};

/// Which leaked-pair map.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MapKind {
    /// Orthogonal (semi-orthogonal for d1 != d2) Procrustes.
    Procrustes,
    /// Ridge regression.
    Ridge,
}

/// Fit the map of `kind` on the pairs (x_i, y_i): identity-corrected ([`corrected`], with
/// `distractors` — unlabelled gallery rows the attacker holds — scoring the candidates)
/// when the views have one dimension, the plain fit ([`procrustes`], [`ridge`]) otherwise.
/// Deterministic on any number of threads (its factorisations run on one thread).
pub fn fit(kind: MapKind, x: Rows<'_>, y: Rows<'_>, distractors: Rows<'_>, seed: u64) -> Result<LinearMap> {
    check_pairs(x, y)?;
    crate::attack::linear_metric::one_thread(|| {
        if x.dim() == y.dim() {
            corrected(kind, x, y, distractors, seed)
        } else {
            match kind {
                MapKind::Procrustes => procrustes(x, y),
                MapKind::Ridge => ridge(x, y),
            }
        }
    })
}

/// Rows mapped per task in [`LinearMap::apply`]: fixed pieces, each a sequential GEMM, so
/// the mapped rows have the same bits on any number of threads.
const APPLY_ROWS: usize = 4096;

/// A learned linear map from the query view (d_in) to the gallery view (d_out), row-major
/// d_in x d_out, applied as x -> x W.
#[derive(Debug, Clone)]
pub struct LinearMap {
    /// Input dimension.
    pub d_in: usize,
    /// Output dimension.
    pub d_out: usize,
    /// The matrix, row-major.
    pub weights: Vec<f32>,
    /// Ridge penalty chosen (None for Procrustes and for the identity).
    pub lambda: Option<f64>,
    /// How an identity-corrected map was chosen (None for a plain fit).
    pub selection: Option<MapSelection>,
}

pub(super) fn to_mat(rows: Rows<'_>) -> Mat<f64> {
    Mat::from_fn(rows.n(), rows.dim(), |i, j| f64::from(rows.row(i)[j]))
}

pub(super) fn check_pairs(x: Rows<'_>, y: Rows<'_>) -> Result<()> {
    if x.n() != y.n() {
        return Err(Error::config(format!("{} leaked query rows but {} gallery rows", x.n(), y.n())));
    }
    if x.n() == 0 {
        return Err(Error::config("leaked-pair alignment needs at least one pair"));
    }
    Ok(())
}

/// Orthogonal Procrustes fit on the pairs (x_i, y_i).
pub fn procrustes(x: Rows<'_>, y: Rows<'_>) -> Result<LinearMap> {
    check_pairs(x, y)?;
    let (xm, ym) = (to_mat(x), to_mat(y));
    let cross = xm.transpose() * &ym; // d_in x d_out
    let svd = cross.thin_svd().map_err(|e| Error::config(format!("Procrustes SVD failed: {e:?}")))?;
    let w = svd.U() * svd.V().transpose();
    Ok(LinearMap {
        d_in: x.dim(),
        d_out: y.dim(),
        weights: row_major(w.as_ref()),
        lambda: None,
        selection: None,
    })
}

/// Ridge regression fit on the pairs, lambda chosen by generalised cross-validation over a
/// log grid (1e-4 .. 1e2 times the mean squared singular value of X).
pub fn ridge(x: Rows<'_>, y: Rows<'_>) -> Result<LinearMap> {
    check_pairs(x, y)?;
    let (xm, ym) = (to_mat(x), to_mat(y));
    let m = x.n();
    let svd = xm.thin_svd().map_err(|e| Error::config(format!("ridge SVD failed: {e:?}")))?;
    let (u, s, v) = (svd.U(), svd.S().column_vector(), svd.V());
    let r = s.nrows();
    let uty = u.transpose() * &ym; // r x d_out
    let row_sq: Vec<f64> = (0..r).map(|i| (0..uty.ncols()).map(|j| uty[(i, j)].powi(2)).sum()).collect();
    let y_sq: f64 = (0..m).map(|i| (0..ym.ncols()).map(|j| ym[(i, j)].powi(2)).sum::<f64>()).sum();
    let outside = (y_sq - row_sq.iter().sum::<f64>()).max(0.0);
    let mean_sq = (0..r).map(|i| s[i] * s[i]).sum::<f64>() / r.max(1) as f64;
    if mean_sq.is_nan() || mean_sq <= 0.0 {
        return Err(Error::config("the leaked query rows are all zero; ridge alignment is undefined"));
    }
    let mut best = (f64::INFINITY, mean_sq);
    for step in 0..=24 {
        let lambda = mean_sq * 10f64.powf(-4.0 + 0.25 * step as f64);
        // Residual ||Y - H Y||^2 and trace of the hat matrix H = U diag(s^2/(s^2+l)) U^T.
        let mut residual = outside;
        let mut trace = 0.0;
        for i in 0..r {
            let shrink = s[i] * s[i] / (s[i] * s[i] + lambda);
            residual += (1.0 - shrink).powi(2) * row_sq[i];
            trace += shrink;
        }
        let denom = 1.0 - trace / m as f64;
        let gcv = if denom > 1e-12 { residual / m as f64 / (denom * denom) } else { f64::INFINITY };
        if gcv < best.0 {
            best = (gcv, lambda);
        }
    }
    let lambda = best.1;
    // W = V diag(s / (s^2 + lambda)) U^T Y.
    let scaled = Mat::from_fn(r, uty.ncols(), |i, j| uty[(i, j)] * s[i] / (s[i] * s[i] + lambda));
    let w = v * &scaled;
    Ok(LinearMap {
        d_in: x.dim(),
        d_out: y.dim(),
        weights: row_major(w.as_ref()),
        lambda: Some(lambda),
        selection: None,
    })
}

pub(super) fn row_major(w: MatRef<'_, f64>) -> Vec<f32> {
    let mut out = Vec::with_capacity(w.nrows() * w.ncols());
    for i in 0..w.nrows() {
        for j in 0..w.ncols() {
            out.push(w[(i, j)] as f32);
        }
    }
    out
}

impl LinearMap {
    /// The identity map of `dim` dimensions (the attack it gives is plain cosine).
    pub fn identity(dim: usize) -> LinearMap {
        let mut weights = vec![0f32; dim * dim];
        (0..dim).for_each(|i| weights[i * dim + i] = 1.0);
        LinearMap { d_in: dim, d_out: dim, weights, lambda: None, selection: None }
    }

    /// Map every row of `rows` and re-normalise it to unit length (a row mapped to zero
    /// stays zero: it ties with everything). Fixed row blocks (4,096 rows each): the
    /// same bits on any number of threads.
    pub fn apply(&self, rows: Rows<'_>) -> Result<Vec<f32>> {
        if rows.dim() != self.d_in {
            return Err(Error::config(format!(
                "the map takes {} dimensions but the rows have {}",
                self.d_in,
                rows.dim()
            )));
        }
        let (d_in, d_out) = (self.d_in, self.d_out);
        let mut out = vec![0f32; rows.n() * d_out];
        let rhs = MatRef::from_row_major_slice(&self.weights, d_in, d_out);
        out.par_chunks_mut(APPLY_ROWS * d_out).zip(rows.data().par_chunks(APPLY_ROWS * d_in)).for_each(
            |(out, data)| {
                let m = data.len() / d_in;
                let dst = faer::MatMut::from_row_major_slice_mut(out, m, d_out);
                let lhs = MatRef::from_row_major_slice(data, m, d_in);
                matmul(dst, Accum::Replace, lhs, rhs, 1.0, Par::Seq);
            },
        );
        out.par_chunks_mut(d_out).for_each(|row| {
            let norm = row.iter().map(|v| f64::from(*v) * f64::from(*v)).sum::<f64>().sqrt();
            if norm > 0.0 {
                for v in row.iter_mut() {
                    *v = (f64::from(*v) / norm) as f32;
                }
            }
        });
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand_distr::{Distribution, StandardNormal};

    use super::*;

    fn gaussian(seed: u64, n: usize, d: usize) -> Vec<f32> {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        (0..n * d).map(|_| StandardNormal.sample(&mut rng)).collect()
    }

    /// A random orthogonal d x d matrix (QR of a Gaussian matrix), row-major f64.
    pub(crate) fn random_rotation(seed: u64, d: usize) -> Vec<f64> {
        let g = gaussian(seed, d, d);
        let m = Mat::from_fn(d, d, |i, j| f64::from(g[i * d + j]));
        let q = m.qr().compute_Q();
        let mut out = Vec::with_capacity(d * d);
        for i in 0..d {
            for j in 0..d {
                out.push(q[(i, j)]);
            }
        }
        out
    }

    fn rotate(x: &[f32], n: usize, d: usize, r: &[f64]) -> Vec<f32> {
        let mut out = vec![0f32; n * d];
        for i in 0..n {
            for j in 0..d {
                out[i * d + j] = (0..d).map(|k| f64::from(x[i * d + k]) * r[k * d + j]).sum::<f64>() as f32;
            }
        }
        out
    }

    #[test]
    fn procrustes_recovers_an_exact_rotation_and_matches_the_closed_form() {
        let (n, d) = (40, 6);
        let x = gaussian(1, n, d);
        let r = random_rotation(2, d);
        let y = rotate(&x, n, d, &r);
        let map = procrustes(Rows::new(&x, n, d).unwrap(), Rows::new(&y, n, d).unwrap()).unwrap();
        for (w, want) in map.weights.iter().zip(&r) {
            assert!((f64::from(*w) - want).abs() < 1e-5, "{w} vs {want}");
        }
        // Closed form, independently: W = M (M^T M)^{-1/2} for M = X^T Y of full rank.
        let xm = Mat::from_fn(n, d, |i, j| f64::from(x[i * d + j]));
        let ym =
            Mat::from_fn(n, d, |i, j| f64::from(y[i * d + j]) + 0.3 * f64::from(x[((i + 1) % n) * d + j]));
        let yr: Vec<f32> = (0..n * d).map(|k| ym[(k / d, k % d)] as f32).collect();
        let map = procrustes(Rows::new(&x, n, d).unwrap(), Rows::new(&yr, n, d).unwrap()).unwrap();
        let ymf = Mat::from_fn(n, d, |i, j| f64::from(yr[i * d + j]));
        let mm = xm.transpose() * &ymf;
        let evd = (mm.transpose() * &mm).self_adjoint_eigen(faer::Side::Lower).unwrap();
        let inv_sqrt = Mat::from_fn(d, d, |i, j| {
            (0..d).map(|k| evd.U()[(i, k)] * evd.U()[(j, k)] / evd.S().column_vector()[k].sqrt()).sum::<f64>()
        });
        let want = &mm * &inv_sqrt;
        for i in 0..d {
            for j in 0..d {
                assert!((f64::from(map.weights[i * d + j]) - want[(i, j)]).abs() < 1e-4);
            }
        }
        // Orthogonal: the mapped rows keep their norms.
        let mapped = map.apply(Rows::new(&x, n, d).unwrap()).unwrap();
        assert!((mapped[..d].iter().map(|v| v * v).sum::<f32>() - 1.0).abs() < 1e-5);
    }

    #[test]
    fn ridge_matches_the_normal_equations_at_its_lambda() {
        let (n, d_in, d_out) = (30, 5, 4);
        let x = gaussian(3, n, d_in);
        let y = gaussian(4, n, d_out);
        let map = ridge(Rows::new(&x, n, d_in).unwrap(), Rows::new(&y, n, d_out).unwrap()).unwrap();
        let lambda = map.lambda.unwrap();
        let xm = Mat::from_fn(n, d_in, |i, j| f64::from(x[i * d_in + j]));
        let ym = Mat::from_fn(n, d_out, |i, j| f64::from(y[i * d_out + j]));
        let mut gram = xm.transpose() * &xm;
        for i in 0..d_in {
            gram[(i, i)] += lambda;
        }
        use faer::linalg::solvers::Solve;
        let want = gram.llt(faer::Side::Lower).unwrap().solve(xm.transpose() * &ym);
        for i in 0..d_in {
            for j in 0..d_out {
                assert!((f64::from(map.weights[i * d_out + j]) - want[(i, j)]).abs() < 1e-5);
            }
        }
        // Noise-only targets: GCV prefers heavy shrinkage over the smallest lambda.
        assert!(lambda > 1e-3 * n as f64 / d_in as f64);
    }
}
