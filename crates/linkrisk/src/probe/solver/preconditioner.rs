//! The solver's initial inverse Hessian: `M_j = c_j Cov(x) + lambda_j I`, from one
//! eigendecomposition of the (subsampled, centred) feature covariance shared by every
//! column (see the parent module).

use faer::linalg::matmul::matmul;
use faer::{Accum, Mat, MatRef, Par, Side};

use super::Element;

/// `M^{-1}` for all columns: eigenvectors and eigenvalues of the feature covariance.
#[derive(Debug)]
pub(super) struct Preconditioner {
    pub(super) vectors: Mat<f64>,
    pub(super) values: Vec<f64>,
}

/// Rows used by the preconditioner's covariance estimate (a strided subsample beyond this;
/// the preconditioner only has to be close, not exact).
const PRECONDITIONER_ROWS: usize = 16_384;

/// Eigendecomposition of the (subsampled) centred feature covariance, and trace / d.
/// The sample is centred in f64 before the f32/f64 GEMM so that a large common offset
/// (typical of embeddings) does not cancel catastrophically.
pub(super) fn preconditioner<T: Element>(x: MatRef<'_, T>) -> (Preconditioner, f64) {
    let (n, dim) = (x.nrows(), x.ncols());
    let stride = n.div_ceil(PRECONDITIONER_ROWS).max(1);
    let rows: Vec<usize> = (0..n).step_by(stride).collect();
    let m = rows.len();
    let mut mean = vec![0.0f64; dim];
    for &i in &rows {
        for (r, v) in mean.iter_mut().enumerate() {
            *v += x[(i, r)].to_f64();
        }
    }
    mean.iter_mut().for_each(|v| *v /= m as f64);
    let centred = Mat::<T>::from_fn(m, dim, |a, r| T::from_f64(x[(rows[a], r)].to_f64() - mean[r]));
    let mut gram_t = Mat::<T>::zeros(dim, dim);
    matmul(
        &mut gram_t,
        Accum::Replace,
        centred.transpose(),
        &centred,
        T::from_f64(1.0 / m as f64),
        Par::rayon(0),
    );
    let gram =
        Mat::<f64>::from_fn(dim, dim, |a, b| 0.5 * (gram_t[(a, b)].to_f64() + gram_t[(b, a)].to_f64()));
    let trace: f64 = (0..dim).map(|r| gram[(r, r)]).sum();
    match gram.self_adjoint_eigen(Side::Lower) {
        Ok(evd) => {
            let values = (0..dim).map(|r| evd.S().column_vector()[r].max(0.0)).collect();
            (Preconditioner { vectors: evd.U().to_owned(), values }, trace / dim as f64)
        }
        // Fall back to the identity scaled by the mean variance (never seen in practice).
        Err(_) => (
            Preconditioner { vectors: Mat::<f64>::identity(dim, dim), values: vec![trace / dim as f64; dim] },
            trace / dim as f64,
        ),
    }
}
