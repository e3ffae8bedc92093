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
    let allowed = |i: usize, j: usize| i == j || study[i] != study[j];
    let neg_inf = T::of(f64::NEG_INFINITY);
    // Row (image -> report) and column (report -> image) log-sum-exp.
    let mut row_lse = vec![neg_inf; m];
    let mut col_max = vec![neg_inf; m];
    for i in 0..m {
        let mut row_max = neg_inf;
        for j in 0..m {
            if allowed(i, j) {
                let logit = scale * sim[i * m + j];
                row_max = row_max.max(logit);
                col_max[j] = col_max[j].max(logit);
            }
        }
        let mut total = T::of(0.0);
        for j in 0..m {
            if allowed(i, j) {
                total += (scale * sim[i * m + j] - row_max).exp();
            }
        }
        row_lse[i] = row_max + total.ln();
    }
    let mut col_sum = vec![T::of(0.0); m];
    for i in 0..m {
        for j in 0..m {
            if allowed(i, j) {
                col_sum[j] += (scale * sim[i * m + j] - col_max[j]).exp();
            }
        }
    }
    let col_lse: Vec<T> = col_max.iter().zip(&col_sum).map(|(&mx, &s)| mx + s.ln()).collect();
    let mut loss = T::of(0.0);
    for i in 0..m {
        let diag = scale * sim[i * m + i];
        loss += T::of(0.5) * (row_lse[i] - diag) + T::of(0.5) * (col_lse[i] - diag);
    }
    // g[i][j] = d loss / d logit_ij = 0.5 (P_ij - [i=j]) + 0.5 (Q_ij - [i=j]), where P is the
    // row softmax and Q the column softmax; masked pairs get 0.
    let mut g = sim.clone();
    let mut d_log_scale = T::of(0.0);
    for i in 0..m {
        for j in 0..m {
            let k = i * m + j;
            let value = if allowed(i, j) {
                let logit = scale * sim[k];
                let p = (logit - row_lse[i]).exp();
                let q = (logit - col_lse[j]).exp();
                let delta = if i == j { T::of(1.0) } else { T::of(0.0) };
                T::of(0.5) * (p + q) - delta
            } else {
                T::of(0.0)
            };
            // d logit_ij / d ln(s) = s sim_ij
            d_log_scale += value * scale * sim[k];
            g[k] = value * scale; // chain through logit = s * sim
        }
    }
    // du = g v, dv = g^T u
    matmul_nn(du, false, &g, v, m, d, m);
    matmul_tn(dv, false, &g, u, m, d, m);
    GroupLoss { loss, d_log_scale }
}
