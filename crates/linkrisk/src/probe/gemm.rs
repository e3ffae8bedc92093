//! The two products every probe iteration needs, `X W` and `X^T R` for a tall design
//! matrix X (n x d, n >> d) and a thin right-hand side (k columns), split into row blocks
//! that rayon schedules: each block is one sequential faer GEMM, and `X^T R` sums the
//! blocks' partial products. Measured on the 2-core development machine with other jobs
//! running, this was 3-5x faster for `X^T R` (n = 32,000, d = 512, k = 84) than one faer
//! call with `Par::rayon`, whose threads wait on each other at barriers when a core is
//! busy elsewhere; work stealing over blocks does not.

use faer::linalg::matmul::matmul;
use faer::{Accum, Mat, MatMut, MatRef, Par};
use rayon::prelude::*;

use super::solver::Element;

/// Rows per block: enough blocks for every thread to steal from (4 per thread), none
/// smaller than 512 rows (the GEMM kernels need some height to be efficient).
fn block_rows(n: usize) -> usize {
    let blocks = 4 * rayon::current_num_threads().max(1);
    n.div_ceil(blocks).max(512).min(n.max(1))
}

/// `out = X W` (out: n x k, any layout).
pub(crate) fn x_times<T: Element>(out: MatMut<'_, T>, x: MatRef<'_, T>, w: MatRef<'_, T>) {
    let n = x.nrows();
    let block = block_rows(n);
    let mut blocks: Vec<(usize, MatMut<'_, T>)> = Vec::new();
    let mut rest = out;
    let mut start = 0;
    while start < n {
        let rows = block.min(n - start);
        let (head, tail) = rest.split_at_row_mut(rows);
        blocks.push((start, head));
        rest = tail;
        start += rows;
    }
    blocks.into_par_iter().for_each(|(start, dst)| {
        let rows = dst.nrows();
        matmul(dst, Accum::Replace, x.subrows(start, rows), w, T::from_f64(1.0), Par::Seq);
    });
}

/// `out = X^T R` (out: d x k), as a sum of per-block products.
pub(crate) fn x_transpose_times<T: Element>(mut out: MatMut<'_, T>, x: MatRef<'_, T>, r: MatRef<'_, T>) {
    let (n, dim, k) = (x.nrows(), x.ncols(), r.ncols());
    let block = block_rows(n);
    let starts: Vec<usize> = (0..n).step_by(block.max(1)).collect();
    let total = starts
        .into_par_iter()
        .map(|start| {
            let rows = block.min(n - start);
            let mut part = Mat::<T>::zeros(dim, k);
            matmul(
                &mut part,
                Accum::Replace,
                x.subrows(start, rows).transpose(),
                r.subrows(start, rows),
                T::from_f64(1.0),
                Par::Seq,
            );
            part
        })
        .reduce(
            || Mat::<T>::zeros(dim, k),
            |mut a, b| {
                a += &b;
                a
            },
        );
    out.copy_from(&total);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocked_products_equal_direct_ones() {
        let (n, d, k) = (1500, 7, 3);
        let x = Mat::<f64>::from_fn(n, d, |i, j| ((i * 31 + j * 7) % 13) as f64 - 6.0);
        let w = Mat::<f64>::from_fn(d, k, |i, j| (i as f64 - j as f64) * 0.5);
        let r = Mat::<f64>::from_fn(n, k, |i, j| ((i + 3 * j) % 5) as f64);
        let mut z = Mat::<f64>::zeros(n, k);
        x_times(z.as_mut(), x.as_ref(), w.as_ref());
        assert!((&z - &x * &w).norm_max() == 0.0);
        let mut g = Mat::<f64>::zeros(d, k);
        x_transpose_times(g.as_mut(), x.as_ref(), r.as_ref());
        assert!((&g - x.transpose() * &r).norm_max() < 1e-9);
    }
}
