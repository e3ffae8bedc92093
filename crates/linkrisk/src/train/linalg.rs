//! Row-major GEMM wrappers over faer for the head and loss code. Called from the main
//! thread they use every rayon thread; called from inside a rayon task (per-group work)
//! they run sequentially, so parallel loops never nest thread pools.

use faer::{Accum, MatMut, MatRef, Par};

use super::real::Real;

fn par() -> Par {
    if rayon::current_thread_index().is_some() {
        Par::Seq
    } else {
        Par::rayon(0)
    }
}

fn accum(accumulate: bool) -> Accum {
    if accumulate {
        Accum::Add
    } else {
        Accum::Replace
    }
}

/// `dst (m x n) (+)= a (m x k) * b^T` where `b` is n x k.
pub(crate) fn matmul_nt<T: Real>(
    dst: &mut [T],
    accumulate: bool,
    a: &[T],
    b: &[T],
    m: usize,
    n: usize,
    k: usize,
) {
    let dst = MatMut::from_row_major_slice_mut(dst, m, n);
    let a = MatRef::from_row_major_slice(a, m, k);
    let b = MatRef::from_row_major_slice(b, n, k);
    faer::linalg::matmul::matmul(dst, accum(accumulate), a, b.transpose(), T::of(1.0), par());
}

/// `dst (m x n) (+)= a^T * b` where `a` is k x m and `b` is k x n.
pub(crate) fn matmul_tn<T: Real>(
    dst: &mut [T],
    accumulate: bool,
    a: &[T],
    b: &[T],
    m: usize,
    n: usize,
    k: usize,
) {
    let dst = MatMut::from_row_major_slice_mut(dst, m, n);
    let a = MatRef::from_row_major_slice(a, k, m);
    let b = MatRef::from_row_major_slice(b, k, n);
    faer::linalg::matmul::matmul(dst, accum(accumulate), a.transpose(), b, T::of(1.0), par());
}

/// `dst (m x n) (+)= a (m x k) * b (k x n)`.
pub(crate) fn matmul_nn<T: Real>(
    dst: &mut [T],
    accumulate: bool,
    a: &[T],
    b: &[T],
    m: usize,
    n: usize,
    k: usize,
) {
    let dst = MatMut::from_row_major_slice_mut(dst, m, n);
    let a = MatRef::from_row_major_slice(a, m, k);
    let b = MatRef::from_row_major_slice(b, k, n);
    faer::linalg::matmul::matmul(dst, accum(accumulate), a, b, T::of(1.0), par());
}

/// Dot product, accumulated in `T`.
#[inline]
pub(crate) fn dot<T: Real>(a: &[T], b: &[T]) -> T {
    a.iter().zip(b).fold(T::of(0.0), |acc, (&x, &y)| acc + x * y)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn products_match_naive() {
        let (m, n, k) = (3, 4, 5);
        let a: Vec<f64> = (0..m * k).map(|i| (i as f64 * 0.37).sin()).collect();
        let b_nk: Vec<f64> = (0..n * k).map(|i| (i as f64 * 0.11).cos()).collect();
        let mut c = vec![0.0; m * n];
        matmul_nt(&mut c, false, &a, &b_nk, m, n, k);
        for i in 0..m {
            for j in 0..n {
                let want: f64 = (0..k).map(|l| a[i * k + l] * b_nk[j * k + l]).sum();
                assert!((c[i * n + j] - want).abs() < 1e-12);
            }
        }
        // a^T (k x m)^T: treat a as k' x m' with k' = m, m' = k.
        let mut d = vec![1.0; k * n];
        let b_mn: Vec<f64> = (0..m * n).map(|i| i as f64).collect();
        matmul_tn(&mut d, true, &a, &b_mn, k, n, m);
        for i in 0..k {
            for j in 0..n {
                let want: f64 = 1.0 + (0..m).map(|l| a[l * k + i] * b_mn[l * n + j]).sum::<f64>();
                assert!((d[i * n + j] - want).abs() < 1e-12);
            }
        }
        let b_kn: Vec<f64> = (0..k * n).map(|i| (i as f64).sqrt()).collect();
        let mut e = vec![0.0; m * n];
        matmul_nn(&mut e, false, &a, &b_kn, m, n, k);
        for i in 0..m {
            for j in 0..n {
                let want: f64 = (0..k).map(|l| a[i * k + l] * b_kn[l * n + j]).sum();
                assert!((e[i * n + j] - want).abs() < 1e-12);
            }
        }
    }
}
