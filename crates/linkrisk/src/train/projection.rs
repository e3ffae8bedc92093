//! The public input projection: before the heads see a record, its (L2-normalised) frozen
//! features are centred on the mean of a public split and projected onto that split's
//! leading principal directions, scaled so the public rows have unit mean squared norm.
//!
//! Why: DP-SGD adds noise of the same size to every trained coordinate, so the members'
//! signal per coordinate falls with the square root of the number of parameters. Linear
//! heads on 768-d features have 2 x 768 x 128 weights; most input directions carry only
//! per-record noise, which the noise then fills and which non-private heads use to memorise
//! their members. Projecting onto r = 128 public directions cuts the trained parameters
//! six-fold and keeps the directions the data actually varies in (docs/METHODS.md,
//! "Mitigation and the privacy-utility frontier"). The projection is a function of public
//! data only, so it costs no privacy; after training it is folded into the first layer of
//! each head ([`PublicProjection::fold`]), so a released head is an ordinary affine map of
//! the L2-normalised features.
//!
//! Reproducibility: the covariance is summed sequentially in f64 and eigendecomposed in a
//! one-thread pool, so the basis is the same on any thread count.

use faer::{Mat, Side as FaerSide};
use serde::{Deserialize, Serialize};

use super::model::{Model, Side};
use crate::cohort::Cohort;
use crate::error::{Error, Result};

/// At most this many public records enter the covariance (evenly spaced).
const MAX_COVARIANCE_ROWS: usize = 50_000;

/// Centre, project and scale one side's features.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct InputProjection {
    pub in_dim: usize,
    pub rank: usize,
    /// Public mean of the L2-normalised rows (in_dim).
    pub mean: Vec<f64>,
    /// rank x in_dim, row-major: principal directions already multiplied by the scale.
    pub basis: Vec<f64>,
    /// Share of the public variance the kept directions hold.
    pub variance_kept: f64,
}

/// What the ledger and the export record about a public projection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProjectionRecord {
    /// The public split the mean and directions come from (not covered by the guarantee).
    pub split: String,
    /// Its patients.
    pub patients: usize,
    /// Records that entered the covariance.
    pub records: usize,
    /// Directions kept for the image features.
    pub image_rank: usize,
    /// Directions kept for the report features.
    pub report_rank: usize,
    /// Share of the public image-feature variance kept.
    pub image_variance_kept: f64,
    /// Share of the public report-feature variance kept.
    pub report_variance_kept: f64,
    /// Always true: the released heads have the projection folded into their first layer,
    /// so they take the L2-normalised features directly.
    pub folded_into_first_layer: bool,
}

/// The projections of both sides, fitted on one public split.
#[derive(Debug, Clone, PartialEq)]
pub struct PublicProjection {
    pub(crate) image: InputProjection,
    pub(crate) report: InputProjection,
    /// Provenance.
    pub record: ProjectionRecord,
}

impl PublicProjection {
    /// Fit on the records of `split` of `cohort` (views `image_view` / `report_view`),
    /// keeping at most `rank` directions per side (fewer when the split has fewer records
    /// or the features fewer dimensions). `split` must be public: nothing protects it.
    pub fn fit(
        cohort: &Cohort,
        image_view: &str,
        report_view: &str,
        split: &str,
        rank: usize,
    ) -> Result<Self> {
        if rank == 0 {
            return Err(Error::config("--public-pca-rank must be at least 1 (or 0 for no projection)"));
        }
        let rows = cohort.metadata.rows_in_split(split)?;
        if rows.len() < 2 {
            return Err(Error::config(format!(
                "split `{split}` has {} record(s); the public projection needs at least 2 (use --public-pca-rank 0)",
                rows.len()
            )));
        }
        let stride = rows.len().div_ceil(MAX_COVARIANCE_ROWS).max(1);
        let rows: Vec<usize> = rows.into_iter().step_by(stride).collect();
        let fit_side = |name: &str| -> Result<InputProjection> {
            let view = cohort.view(name)?;
            fit_one(view.rows(), view.dim(), &rows, rank)
        };
        let image = fit_side(image_view)?;
        let report = fit_side(report_view)?;
        let record = ProjectionRecord {
            split: split.to_string(),
            patients: cohort.metadata.patients_in_split(split)?,
            records: rows.len(),
            image_rank: image.rank,
            report_rank: report.rank,
            image_variance_kept: image.variance_kept,
            report_variance_kept: report.variance_kept,
            folded_into_first_layer: true,
        };
        Ok(PublicProjection { image, report, record })
    }

    pub(crate) fn side(&self, side: Side) -> &InputProjection {
        match side {
            Side::Image => &self.image,
            Side::Report => &self.report,
        }
    }

    /// `model` (trained on projected inputs) as a model of the raw L2-normalised features:
    /// each head's first layer `W y + b` with `y = B (x - mean)` becomes
    /// `(W B) x + (b - W B mean)`, computed in f64 and rounded once.
    pub(crate) fn fold(&self, model: &Model<f32>) -> Model<f32> {
        let mut layout = model.layout.clone();
        for side in [Side::Image, Side::Report] {
            let p = self.side(side);
            let layers = match side {
                Side::Image => &mut layout.image,
                Side::Report => &mut layout.report,
            };
            debug_assert_eq!(layers[0].in_dim, p.rank);
            layers[0].in_dim = p.in_dim;
        }
        // Recompute the offsets for the wider first layers.
        let mut offset = 0;
        for layer in layout.image.iter_mut().chain(layout.report.iter_mut()) {
            layer.w = offset;
            layer.b = offset + layer.in_dim * layer.out_dim;
            offset = layer.b + layer.out_dim;
        }
        if let Some(i) = &mut layout.log_scale {
            *i = offset;
            offset += 1;
        }
        layout.n_params = offset;
        let mut params = vec![0f32; offset];
        for side in [Side::Image, Side::Report] {
            let p = self.side(side);
            for (l, (old, new)) in model.layout.side(side).iter().zip(layout.side(side)).enumerate() {
                let w_old = &model.params[old.w..old.w + old.in_dim * old.out_dim];
                let b_old = &model.params[old.b..old.b + old.out_dim];
                if l > 0 {
                    params[new.w..new.w + new.in_dim * new.out_dim].copy_from_slice(w_old);
                    params[new.b..new.b + new.out_dim].copy_from_slice(b_old);
                    continue;
                }
                for o in 0..old.out_dim {
                    let w_row = &w_old[o * p.rank..(o + 1) * p.rank];
                    let mut folded = vec![0f64; p.in_dim];
                    for (k, &w) in w_row.iter().enumerate() {
                        let w = f64::from(w);
                        for (f, &bk) in folded.iter_mut().zip(&p.basis[k * p.in_dim..(k + 1) * p.in_dim]) {
                            *f += w * bk;
                        }
                    }
                    let shift: f64 = folded.iter().zip(&p.mean).map(|(f, m)| f * m).sum();
                    for (dst, f) in
                        params[new.w + o * p.in_dim..new.w + (o + 1) * p.in_dim].iter_mut().zip(&folded)
                    {
                        *dst = *f as f32;
                    }
                    params[new.b + o] = (f64::from(b_old[o]) - shift) as f32;
                }
            }
        }
        if let (Some(old), Some(new)) = (model.layout.log_scale, layout.log_scale) {
            params[new] = model.params[old];
        }
        Model { layout, params, fixed_log_scale: model.fixed_log_scale }
    }

    /// Apply one side's projection to rows (n x in_dim) of f32 features.
    pub(crate) fn apply(&self, side: Side, rows: &[f32]) -> Vec<f32> {
        let p = self.side(side);
        let n = rows.len() / p.in_dim;
        let basis: Vec<f32> = p.basis.iter().map(|&v| v as f32).collect();
        let mut centred = vec![0f32; rows.len()];
        for (dst, src) in centred.chunks_exact_mut(p.in_dim).zip(rows.chunks_exact(p.in_dim)) {
            for ((d, &x), &m) in dst.iter_mut().zip(src).zip(&p.mean) {
                *d = (f64::from(x) - m) as f32;
            }
        }
        let mut out = vec![0f32; n * p.rank];
        super::linalg::matmul_nt(&mut out, false, &centred, &basis, n, p.rank, p.in_dim);
        out
    }
}

/// Mean, leading `rank` principal directions and the scale of the rows `rows` of `data`.
fn fit_one(data: &[f32], dim: usize, rows: &[usize], rank: usize) -> Result<InputProjection> {
    let m = rows.len();
    let rank = rank.min(dim).min(m - 1);
    let mut mean = vec![0f64; dim];
    for &i in rows {
        for (s, &v) in mean.iter_mut().zip(&data[i * dim..(i + 1) * dim]) {
            *s += f64::from(v);
        }
    }
    mean.iter_mut().for_each(|s| *s /= m as f64);
    let centred = Mat::<f64>::from_fn(m, dim, |a, c| f64::from(data[rows[a] * dim + c]) - mean[c]);
    let mut cov = Mat::<f64>::zeros(dim, dim);
    faer::linalg::matmul::matmul(
        &mut cov,
        faer::Accum::Replace,
        centred.transpose(),
        &centred,
        1.0 / m as f64,
        faer::Par::Seq,
    );
    let cov = Mat::<f64>::from_fn(dim, dim, |a, b| 0.5 * (cov[(a, b)] + cov[(b, a)]));
    let total: f64 = (0..dim).map(|c| cov[(c, c)]).sum();
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .map_err(|e| Error::config(format!("starting a one-thread pool for the public projection: {e}")))?;
    let evd = pool.install(|| cov.self_adjoint_eigen(FaerSide::Lower)).map_err(|e| {
        Error::config(format!("eigendecomposition of the public feature covariance failed: {e:?}"))
    })?;
    // faer returns eigenvalues in increasing order: take the last `rank`, largest first.
    let values: Vec<f64> = (0..dim).map(|c| evd.S().column_vector()[c].max(0.0)).collect();
    let order: Vec<usize> = (0..dim).rev().take(rank).collect();
    let kept: f64 = order.iter().map(|&c| values[c]).sum();
    if kept.is_nan() || kept <= 0.0 {
        return Err(Error::config(
            "the public split's features do not vary (every record the same); the public projection needs variation",
        ));
    }
    // Scale so the projected public rows have unit mean squared norm: E|B(x - mean)|^2 = kept.
    let scale = 1.0 / kept.sqrt();
    let u = evd.U();
    let mut basis = vec![0f64; rank * dim];
    for (k, &c) in order.iter().enumerate() {
        // A deterministic sign: the largest-magnitude entry positive.
        let column: Vec<f64> = (0..dim).map(|r| u[(r, c)]).collect();
        let pivot = column.iter().copied().fold(0f64, |best, v| if v.abs() > best.abs() { v } else { best });
        let sign = if pivot < 0.0 { -1.0 } else { 1.0 };
        for (dst, v) in basis[k * dim..(k + 1) * dim].iter_mut().zip(&column) {
            *dst = sign * scale * v;
        }
    }
    Ok(InputProjection {
        in_dim: dim,
        rank,
        mean,
        basis,
        variance_kept: if total > 0.0 { kept / total } else { 1.0 },
    })
}
