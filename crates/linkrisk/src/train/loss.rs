//! Symmetric InfoNCE (CLIP's loss) over one group of records: each image must pick its own
//! report among the group's reports and each report its own image. Other records of the
//! same study are neither positives nor negatives (they share a report), matching the
//! study-level exclusion of the re-linkage audit.

use super::linalg::{dot, matmul_nn, matmul_nt, matmul_tn};
use super::real::Real;

/// Loss of one group and its gradient w.r.t. ln(1 / temperature).
#[derive(Debug, Clone, Copy)]
pub(crate) struct GroupLoss<T> {
    /// `0.5 * sum_i [lse_j(s u_i.v_j) - s u_i.v_i] + 0.5 * sum_j [lse_i(s u_i.v_j) - s u_j.v_j]`
    /// (summed, not averaged, over the group's records).
    pub loss: T,
    /// d loss / d ln(s).
    pub d_log_scale: T,
}

/// Loss and gradients for a group of `m` records with normalised image outputs `u` and
/// report outputs `v` (m x d each), `study` per record and logit scale `scale` (= 1 /
/// temperature). Writes d loss / d u into `du` and d loss / d v into `dv`.
pub(crate) fn infonce_group<T: Real>(
    u: &[T],
    v: &[T],
    study: &[u32],
    m: usize,
    d: usize,
    scale: T,
    du: &mut [T],
    dv: &mut [T],
) -> GroupLoss<T> {
    debug_assert_eq!(u.len(), m * d);
    debug_assert_eq!(study.len(), m);
    if m == 0 {
        return GroupLoss { loss: T::of(0.0), d_log_scale: T::of(0.0) };
    }
    // sim[i][j] = u_i . v_j
    let mut sim = vec![T::of(0.0); m * m];
    if m <= 8 {
        for i in 0..m {
            for j in 0..m {
                sim[i * m + j] = dot(&u[i * d..(i + 1) * d], &v[j * d..(j + 1) * d]);
            }
        }
    } else {
        matmul_nt(&mut sim, false, u, v, m, m, d);
    }
    // Logits in place; masked pairs (other records of the same study) become -inf.
    let neg_inf = T::of(f64::NEG_INFINITY);
    let mut logits = sim;
    for i in 0..m {
        for j in 0..m {
            let k = i * m + j;
            logits[k] = if i == j || study[i] != study[j] { scale * logits[k] } else { neg_inf };
        }
    }
    // Row softmax P (image -> report) and column softmax Q (report -> image), normalised,
    // with their log-sum-exps. The diagonal is always allowed, so every sum is positive.
    let (p, q, row_lse, col_lse) = if scale.to_f64() <= SHARED_SHIFT_MAX_SCALE {
        softmaxes_shared_shift(&logits, m, scale)
    } else {
        softmaxes_own_max(&logits, m)
    };
    let mut loss = T::of(0.0);
    for i in 0..m {
        let diag = logits[i * m + i];
        loss += T::of(0.5) * (row_lse[i] - diag) + T::of(0.5) * (col_lse[i] - diag);
    }
    // g[i][j] = d loss / d logit_ij = 0.5 (P_ij + Q_ij) - [i = j] (0 where masked, since
    // P = Q = 0 there); d logit_ij / d sim_ij = s and d logit_ij / d ln(s) = logit_ij.
    let mut g = p;
    let mut d_log_scale = T::of(0.0);
    for i in 0..m {
        for j in 0..m {
            let k = i * m + j;
            let mut value = T::of(0.5) * (g[k] + q[k]);
            if i == j {
                value -= T::of(1.0);
            }
            if value != T::of(0.0) {
                d_log_scale += value * logits[k];
            }
            g[k] = value * scale;
        }
    }
    // du = g v, dv = g^T u
    matmul_nn(du, false, &g, v, m, d, m);
    matmul_tn(dv, false, &g, u, m, d, m);
    GroupLoss { loss, d_log_scale }
}

/// Logits lie in [-s, s] (cosines times the scale s), so for s up to this value one shift
/// by s keeps every exp(logit - s) >= e^-80 inside f32's normal range: one exp per entry
/// serves both softmaxes. Larger scales use each row's and column's own maximum.
const SHARED_SHIFT_MAX_SCALE: f64 = 40.0;

type Softmaxes<T> = (Vec<T>, Vec<T>, Vec<T>, Vec<T>);

/// Row and column softmaxes from one exp(logit - s) per entry.
fn softmaxes_shared_shift<T: Real>(logits: &[T], m: usize, scale: T) -> Softmaxes<T> {
    let mut p: Vec<T> = logits.iter().map(|&l| (l - scale).exp()).collect();
    let mut col_sum = vec![T::of(0.0); m];
    let mut row_lse = vec![T::of(0.0); m];
    for (i, row) in p.chunks_exact(m).enumerate() {
        let mut total = T::of(0.0);
        for (c, &e) in col_sum.iter_mut().zip(row) {
            total += e;
            *c += e;
        }
        row_lse[i] = scale + total.ln();
    }
    let col_inv: Vec<T> = col_sum.iter().map(|&c| T::of(1.0) / c).collect();
    let mut q = p.clone();
    for (q_row, p_row) in q.chunks_exact_mut(m).zip(p.chunks_exact_mut(m)) {
        let inv = T::of(1.0) / p_row.iter().copied().sum::<T>();
        for ((qe, pe), &ci) in q_row.iter_mut().zip(p_row.iter_mut()).zip(&col_inv) {
            *qe *= ci;
            *pe *= inv;
        }
    }
    let col_lse = col_sum.iter().map(|&c| scale + c.ln()).collect();
    (p, q, row_lse, col_lse)
}

/// Row and column softmaxes, each shifted by its own maximum (two exps per entry).
fn softmaxes_own_max<T: Real>(logits: &[T], m: usize) -> Softmaxes<T> {
    let neg_inf = T::of(f64::NEG_INFINITY);
    let mut p = vec![T::of(0.0); m * m];
    let mut row_lse = vec![T::of(0.0); m];
    for i in 0..m {
        let row = &logits[i * m..(i + 1) * m];
        let max = row.iter().fold(neg_inf, |a, &b| a.max(b));
        let mut total = T::of(0.0);
        for (e, &l) in p[i * m..(i + 1) * m].iter_mut().zip(row) {
            *e = (l - max).exp();
            total += *e;
        }
        let inv = T::of(1.0) / total;
        p[i * m..(i + 1) * m].iter_mut().for_each(|e| *e *= inv);
        row_lse[i] = max + total.ln();
    }
    let mut col_max = vec![neg_inf; m];
    for row in logits.chunks_exact(m) {
        for (c, &l) in col_max.iter_mut().zip(row) {
            *c = c.max(l);
        }
    }
    let mut q = vec![T::of(0.0); m * m];
    let mut col_sum = vec![T::of(0.0); m];
    for (q_row, row) in q.chunks_exact_mut(m).zip(logits.chunks_exact(m)) {
        for (((e, &l), &c), s) in q_row.iter_mut().zip(row).zip(&col_max).zip(col_sum.iter_mut()) {
            *e = (l - c).exp();
            *s += *e;
        }
    }
    let col_inv: Vec<T> = col_sum.iter().map(|&s| T::of(1.0) / s).collect();
    for q_row in q.chunks_exact_mut(m) {
        for (e, &ci) in q_row.iter_mut().zip(&col_inv) {
            *e *= ci;
        }
    }
    let col_lse = col_max.iter().zip(&col_sum).map(|(&c, &s)| c + s.ln()).collect();
    (p, q, row_lse, col_lse)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_softmax_paths_agree() {
        let m = 7;
        let study = [0u32, 1, 1, 2, 3, 4, 5];
        let logits_at = |scale: f64| -> Vec<f64> {
            (0..m * m)
                .map(|k| {
                    let (i, j) = (k / m, k % m);
                    if i == j || study[i] != study[j] {
                        scale * ((k as f64 * 0.731).sin())
                    } else {
                        f64::NEG_INFINITY
                    }
                })
                .collect()
        };
        for scale in [0.5, 14.0, 39.0] {
            let logits = logits_at(scale);
            let a = softmaxes_shared_shift(&logits, m, scale);
            let b = softmaxes_own_max(&logits, m);
            for (x, y) in [(&a.0, &b.0), (&a.1, &b.1), (&a.2, &b.2), (&a.3, &b.3)] {
                for (u, v) in x.iter().zip(y.iter()) {
                    assert!((u - v).abs() < 1e-12 * (1.0 + v.abs()), "{u} vs {v} at scale {scale}");
                }
            }
        }
        // Masked entries are exactly 0 in both.
        let b = softmaxes_own_max(&logits_at(60.0), m);
        assert_eq!(b.0[m + 2], 0.0);
        assert_eq!(b.1[2 * m + 1], 0.0);
    }
}
