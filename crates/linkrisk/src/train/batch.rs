//! One batch's gradient: forward both heads, InfoNCE within each group, backward, and (for
//! DP-SGD) each group's gradient clipped to a radius before the groups are summed.
//!
//! Per-group gradient norms never materialise per-group gradients. For an affine layer
//! with inputs h_i and output gradients d_i (rows i of group g), the group's weight and bias
//! gradient is `sum_i d_i [h_i; 1]^T`, whose squared Frobenius norm is
//! `sum_{i,j in g} (d_i . d_j) (h_i . h_j + 1)`: two small Gram matrices per group. The
//! clipped sum `sum_g c_g sum_{i in g} d_i h_i^T` is then one GEMM after scaling the rows of
//! `d` by their group's factor `c_g`.

use std::ops::Range;

use rayon::prelude::*;

use super::loss::infonce_group;
use super::model::{HeadCache, Model, Side};
use super::real::Real;

/// The records of one batch, grouped: rows of group `k` are `groups[k]`, contiguous and in
/// order, covering `0..n_rows`.
#[derive(Debug, Clone)]
pub(crate) struct Batch<T> {
    /// Image features, n_rows x image_dim.
    pub image: Vec<T>,
    /// Report features, n_rows x report_dim.
    pub report: Vec<T>,
    /// Study index per row (same-study pairs are not negatives).
    pub study: Vec<u32>,
    /// Row range of each group.
    pub groups: Vec<Range<usize>>,
}

impl<T> Batch<T> {
    pub fn n_rows(&self) -> usize {
        self.study.len()
    }
}

/// What one batch gradient computed besides the gradient.
#[derive(Debug, Clone)]
pub(crate) struct BatchStats {
    /// Sum of the groups' losses.
    pub loss: f64,
    /// Each group's gradient norm before clipping (empty without clipping).
    pub group_norms: Vec<f64>,
    /// Each group's clip factor min(1, radius / norm) (empty without clipping).
    pub clip_factors: Vec<f64>,
}

/// Clip radii are shrunk by this relative margin so that floating-point error in the Gram
/// norms and in the GEMM can never push a clipped group gradient past the radius.
const CLIP_MARGIN: f64 = 1e-4;

/// Write into `grad` (flat layout) the sum over groups of each group's InfoNCE gradient,
/// each clipped to norm `group_clip` when given.
pub(crate) fn batch_gradient<T: Real>(
    model: &Model<T>,
    batch: &Batch<T>,
    group_clip: Option<f64>,
    grad: &mut [T],
) -> BatchStats {
    let n = batch.n_rows();
    let d = model.layout.out_dim();
    grad.fill(T::of(0.0));
    if n == 0 {
        let k = batch.groups.len();
        let clipped = group_clip.is_some();
        return BatchStats {
            loss: 0.0,
            group_norms: if clipped { vec![0.0; k] } else { vec![] },
            clip_factors: if clipped { vec![1.0; k] } else { vec![] },
        };
    }
    let img = model.forward(Side::Image, &batch.image, n);
    let rep = model.forward(Side::Report, &batch.report, n);
    let scale = model.log_scale().exp();

    // InfoNCE per group, in parallel; each group writes its own rows of du and dv.
    let mut du = vec![T::of(0.0); n * d];
    let mut dv = vec![T::of(0.0); n * d];
    let du_parts = split_rows(&mut du, &batch.groups, d);
    let dv_parts = split_rows(&mut dv, &batch.groups, d);
    let losses: Vec<(T, T)> = batch
        .groups
        .par_iter()
        .zip(du_parts)
        .zip(dv_parts)
        .map(|((rows, du_g), dv_g)| {
            let r = rows.start * d..rows.end * d;
            let out = infonce_group(
                &img.out[r.clone()],
                &rep.out[r],
                &batch.study[rows.clone()],
                rows.len(),
                d,
                scale,
                du_g,
                dv_g,
            );
            (out.loss, out.d_log_scale)
        })
        .collect();
    let loss = losses.iter().map(|(l, _)| l.to_f64()).sum();

    let mut dz_img = model.backward(Side::Image, &img, &du, n);
    let mut dz_rep = model.backward(Side::Report, &rep, &dv, n);
    let learn_temperature = model.layout.log_scale.is_some();

    let mut stats = BatchStats { loss, group_norms: Vec::new(), clip_factors: Vec::new() };
    if let Some(radius) = group_clip {
        let radius = radius * (1.0 - CLIP_MARGIN);
        let norms: Vec<f64> = batch
            .groups
            .par_iter()
            .enumerate()
            .map(|(k, rows)| {
                let mut sq = group_sq_norm(model, Side::Image, &batch.image, &img, &dz_img, rows)
                    + group_sq_norm(model, Side::Report, &batch.report, &rep, &dz_rep, rows);
                if learn_temperature {
                    sq += losses[k].1.to_f64().powi(2);
                }
                sq.max(0.0).sqrt()
            })
            .collect();
        let factors: Vec<f64> =
            norms.iter().map(|&norm| if norm > radius { radius / norm } else { 1.0 }).collect();
        for dz in dz_img.iter_mut().chain(dz_rep.iter_mut()) {
            let width = dz.len() / n;
            for (rows, &c) in batch.groups.iter().zip(&factors) {
                if c < 1.0 {
                    let c = T::of(c);
                    for v in &mut dz[rows.start * width..rows.end * width] {
                        *v *= c;
                    }
                }
            }
        }
        if let Some(i) = model.layout.log_scale {
            grad[i] = losses.iter().zip(&factors).map(|(&(_, g), &c)| g * T::of(c)).sum();
        }
        stats.group_norms = norms;
        stats.clip_factors = factors;
    } else if let Some(i) = model.layout.log_scale {
        grad[i] = losses.iter().map(|&(_, g)| g).sum();
    }
    model.weight_gradients(Side::Image, &batch.image, &img, &dz_img, n, grad);
    model.weight_gradients(Side::Report, &batch.report, &rep, &dz_rep, n, grad);
    stats
}

/// Squared norm of one group's gradient w.r.t. one head's parameters, from Gram matrices:
/// `sum_l sum_{i,j} (d_i . d_j) (h_i . h_j + 1)` over the head's layers `l`, using the
/// symmetry of both Gram matrices (i < j terms counted twice). Relative rounding of the
/// dot products (about 1e-6 in f32) stays far below the clipping margin. The groups are
/// small, so this is many short dot products: on x86-64 with AVX2 and FMA they run in a
/// copy of the loop compiled for those instructions.
fn group_sq_norm<T: Real>(
    model: &Model<T>,
    side: Side,
    x: &[T],
    cache: &HeadCache<T>,
    dz: &[Vec<T>],
    rows: &Range<usize>,
) -> f64 {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
            // SAFETY: the CPU supports the features the function is compiled for.
            return unsafe { group_sq_norm_avx2(model, side, x, cache, dz, rows) };
        }
    }
    group_sq_norm_portable(model, side, x, cache, dz, rows)
}

/// [`group_sq_norm_portable`] compiled for AVX2 and FMA.
///
/// # Safety
/// The CPU must support AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn group_sq_norm_avx2<T: Real>(
    model: &Model<T>,
    side: Side,
    x: &[T],
    cache: &HeadCache<T>,
    dz: &[Vec<T>],
    rows: &Range<usize>,
) -> f64 {
    group_sq_norm_portable(model, side, x, cache, dz, rows)
}

#[inline(always)]
fn group_sq_norm_portable<T: Real>(
    model: &Model<T>,
    side: Side,
    x: &[T],
    cache: &HeadCache<T>,
    dz: &[Vec<T>],
    rows: &Range<usize>,
) -> f64 {
    let mut total = 0.0;
    for (l, layer) in model.layout.side(side).iter().enumerate() {
        let h = &cache.layer_input(x, l)[rows.start * layer.in_dim..rows.end * layer.in_dim];
        let g = &dz[l][rows.start * layer.out_dim..rows.end * layer.out_dim];
        let (hi, gi) = (layer.in_dim, layer.out_dim);
        for i in 0..rows.len() {
            let (h_i, g_i) = (&h[i * hi..(i + 1) * hi], &g[i * gi..(i + 1) * gi]);
            total += dot(g_i, g_i) * (dot(h_i, h_i) + 1.0);
            for j in 0..i {
                let dd = dot(g_i, &g[j * gi..(j + 1) * gi]);
                if dd != 0.0 {
                    total += 2.0 * dd * (dot(h_i, &h[j * hi..(j + 1) * hi]) + 1.0);
                }
            }
        }
    }
    total
}

/// Dot product over sixteen independent lanes (vectorises), lanes summed in f64.
#[inline(always)]
fn dot<T: Real>(a: &[T], b: &[T]) -> f64 {
    let mut lanes = [T::of(0.0); 16];
    let (a16, b16) = (a.chunks_exact(16), b.chunks_exact(16));
    let (ra, rb) = (a16.remainder(), b16.remainder());
    for (x, y) in a16.zip(b16) {
        for k in 0..16 {
            lanes[k] += x[k] * y[k];
        }
    }
    let tail: f64 = ra.iter().zip(rb).map(|(x, y)| x.to_f64() * y.to_f64()).sum();
    lanes.iter().map(|v| v.to_f64()).sum::<f64>() + tail
}

/// Split `data` (rows of `width` values) into the row ranges `groups` (contiguous, in order).
fn split_rows<'a, T>(mut data: &'a mut [T], groups: &[Range<usize>], width: usize) -> Vec<&'a mut [T]> {
    let mut parts = Vec::with_capacity(groups.len());
    let mut next = 0;
    for rows in groups {
        debug_assert_eq!(rows.start, next, "groups must be contiguous and ordered");
        let (head, tail) = std::mem::take(&mut data).split_at_mut(rows.len() * width);
        parts.push(head);
        data = tail;
        next = rows.end;
    }
    parts
}
