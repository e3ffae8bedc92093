//! The trained re-identification attacker (paper 2's "re-ID model trained on the task"): a
//! linear metric learned in closed form from patients the audit does not evaluate, under
//! which images of one patient are closer than under plain cosine.
//!
//! Model (the two-covariance model behind LDA, PLDA and "Joint Bayesian" face
//! verification: Ioffe 2006, ECCV; Prince & Elder 2007, ICCV; Chen et al. 2012, ECCV): an
//! embedding is `x = mu + a_patient + e_record` with patient effects of covariance `S_b`
//! and within-patient variation (other day, scanner, pose, disease) of covariance `S_w`.
//! From training records of patients with several studies we estimate the total
//! covariance `S_t` and the pooled within-patient covariance `S_w` (deviations from each
//! patient's mean); `S_b = S_t - S_w`. `S_w` is shrunk towards a multiple of the identity
//! (`S_w + shrinkage * tr(S_w)/d * I`), whitened, and `S_b` is diagonalised in the whitened
//! space: the generalized eigenproblem `S_b v = sigma (S_w + ..) v` of LDA. Direction k has
//! unit within-patient variance and between-patient variance `sigma_k`; it is weighted by
//! `sqrt(sigma_k / (1 + 2 sigma_k))`, the weight of the cross term `x1 . x2` in the
//! two-covariance log-likelihood ratio of "same patient" vs "different patients", so
//! directions that carry little identity count little. Keeping the top `rank` directions,
//! re-normalising and ranking by cosine gives the attacker's similarity.
//!
//! The shrinkage and the rank are chosen by the audit on held-out training patients
//! (`crate::audit::reid`); this module is the estimation and the projection.

use faer::linalg::matmul::matmul;
use faer::{Accum, Mat, MatRef, Par, Side};
use rayon::prelude::*;

use crate::engine::Rows;
use crate::error::{Error, Result};

/// Rows per block when accumulating scatter matrices (bounded memory: 2 x rows x d f64).
const SCATTER_BLOCK_ROWS: usize = 2048;

/// Output columns per task when accumulating a scatter matrix, and rows per task when
/// projecting. The work is split into these fixed pieces (not one per thread), each a
/// sequential GEMM, so the results have the same bits on any number of threads: every
/// shard of a sharded reid, whatever its core count, must train and apply the same
/// attacker. (faer's own parallel GEMM splits by thread count, and its last bits follow.)
const SCATTER_COLS: usize = 64;
const PROJECT_ROWS: usize = 4096;

/// out += x^T x, in parallel over fixed column blocks of `out` (see [`SCATTER_COLS`]).
fn add_gram(out: &mut Mat<f64>, x: MatRef<'_, f64>) {
    let mut blocks = Vec::new();
    let mut rest = out.as_mut();
    let mut c0 = 0;
    while rest.ncols() > 0 {
        let width = SCATTER_COLS.min(rest.ncols());
        let (block, right) = rest.split_at_col_mut(width);
        blocks.push((c0, block));
        rest = right;
        c0 += width;
    }
    blocks.into_par_iter().for_each(|(c0, block)| {
        let width = block.ncols();
        matmul(block, Accum::Add, x.transpose(), x.subcols(c0, width), 1.0, Par::Seq);
    });
}

/// Run `work` in a rayon pool of one thread: faer's eigensolvers take their parallelism
/// from the current pool and their last bits depend on its size (see [`SCATTER_COLS`]).
pub(crate) fn one_thread<T: Send>(work: impl FnOnce() -> Result<T> + Send) -> Result<T> {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .map_err(|e| Error::config(format!("starting a one-thread pool for the re-ID attacker: {e}")))?;
    pool.install(work)
}

/// Total and pooled within-patient covariance of a set of training records.
#[derive(Debug, Clone)]
pub struct PatientScatter {
    dim: usize,
    /// Mean of the training records.
    mean: Vec<f64>,
    /// Total covariance (divisor n - 1), d x d.
    total: Mat<f64>,
    /// Pooled within-patient covariance (divisor n - patients), d x d.
    within: Mat<f64>,
    /// Training records.
    pub n_records: usize,
    /// Training patients.
    pub n_patients: usize,
}

impl PatientScatter {
    /// Estimate from `rows` (one per training record) and each record's patient label
    /// (`patient[i]`, any u32 ids). Every patient should have at least two records; the
    /// estimate needs more records than patients.
    pub fn estimate(rows: Rows<'_>, patient: &[u32]) -> Result<PatientScatter> {
        let (n, dim) = (rows.n(), rows.dim());
        if patient.len() != n {
            return Err(Error::config(format!("{} patient labels for {n} training records", patient.len())));
        }
        let mut order: Vec<usize> = (0..n).collect();
        order.sort_by_key(|&i| (patient[i], i));
        // Patient boundaries in `order`.
        let mut starts = vec![0usize];
        for k in 1..n {
            if patient[order[k]] != patient[order[k - 1]] {
                starts.push(k);
            }
        }
        starts.push(n);
        let n_patients = starts.len() - 1;
        if n < 2 || n <= n_patients {
            return Err(Error::config(format!(
                "the re-ID attacker needs patients with at least two training records; got {n} records of {n_patients} patients"
            )));
        }
        let mut mean = vec![0f64; dim];
        for i in 0..n {
            for (m, &v) in mean.iter_mut().zip(rows.row(i)) {
                *m += f64::from(v);
            }
        }
        mean.iter_mut().for_each(|m| *m /= n as f64);

        let mut total = Mat::<f64>::zeros(dim, dim);
        let mut within = Mat::<f64>::zeros(dim, dim);
        let mut centred = vec![0f64; SCATTER_BLOCK_ROWS * dim];
        let mut deviation = vec![0f64; SCATTER_BLOCK_ROWS * dim];
        let mut filled = 0usize;
        let mut patient_mean = vec![0f64; dim];
        let flush = |filled: usize,
                     centred: &[f64],
                     deviation: &[f64],
                     total: &mut Mat<f64>,
                     within: &mut Mat<f64>| {
            if filled == 0 {
                return;
            }
            let c = MatRef::from_row_major_slice(&centred[..filled * dim], filled, dim);
            let d = MatRef::from_row_major_slice(&deviation[..filled * dim], filled, dim);
            add_gram(total, c);
            add_gram(within, d);
        };
        for w in starts.windows(2) {
            let members = &order[w[0]..w[1]];
            patient_mean.iter_mut().for_each(|m| *m = 0.0);
            for &i in members {
                for (m, &v) in patient_mean.iter_mut().zip(rows.row(i)) {
                    *m += f64::from(v);
                }
            }
            patient_mean.iter_mut().for_each(|m| *m /= members.len() as f64);
            for &i in members {
                if filled == SCATTER_BLOCK_ROWS {
                    flush(filled, &centred, &deviation, &mut total, &mut within);
                    filled = 0;
                }
                let row = rows.row(i);
                let c = &mut centred[filled * dim..(filled + 1) * dim];
                let d = &mut deviation[filled * dim..(filled + 1) * dim];
                for j in 0..dim {
                    let v = f64::from(row[j]);
                    c[j] = v - mean[j];
                    d[j] = v - patient_mean[j];
                }
                filled += 1;
            }
        }
        flush(filled, &centred, &deviation, &mut total, &mut within);
        let total = Mat::from_fn(dim, dim, |a, b| 0.5 * (total[(a, b)] + total[(b, a)]) / (n - 1) as f64);
        let within =
            Mat::from_fn(dim, dim, |a, b| 0.5 * (within[(a, b)] + within[(b, a)]) / (n - n_patients) as f64);
        Ok(PatientScatter { dim, mean, total, within, n_records: n, n_patients })
    }

    /// Input dimension.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// The LDA basis at `shrinkage` (> 0; relative to the mean within-patient variance):
    /// whitened directions sorted by between-patient variance, largest first.
    pub fn basis(&self, shrinkage: f64) -> Result<MetricBasis> {
        if !(shrinkage.is_finite() && shrinkage > 0.0) {
            return Err(Error::config(format!("re-ID attacker shrinkage must be positive, got {shrinkage}")));
        }
        // d x d work (two eigendecompositions): on one thread, for bits that do not depend
        // on the thread count.
        one_thread(|| self.basis_sequential(shrinkage))
    }

    fn basis_sequential(&self, shrinkage: f64) -> Result<MetricBasis> {
        let d = self.dim;
        let trace: f64 = (0..d).map(|j| self.within[(j, j)]).sum();
        let ridge = shrinkage * (trace / d as f64).max(f64::MIN_POSITIVE);
        let regularised = Mat::from_fn(d, d, |a, b| self.within[(a, b)] + if a == b { ridge } else { 0.0 });
        let evd = regularised.self_adjoint_eigen(Side::Lower).map_err(|e| {
            Error::config(format!("eigendecomposition of the within-patient covariance failed: {e:?}"))
        })?;
        let values = evd.S().column_vector();
        // W = U diag(1/sqrt(lambda)): W^T S_w,reg W = I.
        let whitening = Mat::from_fn(d, d, |a, k| evd.U()[(a, k)] / values[k].max(ridge).sqrt());
        let between = Mat::from_fn(d, d, |a, b| self.total[(a, b)] - self.within[(a, b)]);
        let mut tmp = Mat::<f64>::zeros(d, d);
        matmul(tmp.as_mut(), Accum::Replace, between.as_ref(), whitening.as_ref(), 1.0, Par::Seq);
        let mut whitened = Mat::<f64>::zeros(d, d);
        matmul(whitened.as_mut(), Accum::Replace, whitening.transpose(), tmp.as_ref(), 1.0, Par::Seq);
        let whitened = Mat::from_fn(d, d, |a, b| 0.5 * (whitened[(a, b)] + whitened[(b, a)]));
        let evd = whitened.self_adjoint_eigen(Side::Lower).map_err(|e| {
            Error::config(format!("eigendecomposition of the between-patient covariance failed: {e:?}"))
        })?;
        // Eigenvalues come ascending; we want descending.
        let between_variance: Vec<f64> = (0..d).rev().map(|k| evd.S().column_vector()[k]).collect();
        let rotation = Mat::from_fn(d, d, |a, k| evd.U()[(a, d - 1 - k)]);
        let mut directions = Mat::<f64>::zeros(d, d);
        matmul(directions.as_mut(), Accum::Replace, whitening.as_ref(), rotation.as_ref(), 1.0, Par::Seq);
        Ok(MetricBasis { mean: self.mean.clone(), directions, between_variance, shrinkage })
    }
}

/// Whitened discriminant directions of a training set at one shrinkage.
#[derive(Debug, Clone)]
pub struct MetricBasis {
    mean: Vec<f64>,
    /// d x d; column k is direction k.
    directions: Mat<f64>,
    /// Between-patient variance along each direction (within-patient variance is 1),
    /// descending.
    pub between_variance: Vec<f64>,
    /// The shrinkage it was computed with.
    pub shrinkage: f64,
}

impl MetricBasis {
    /// Directions with positive between-patient variance (the most a metric can use).
    pub fn useful_rank(&self) -> usize {
        self.between_variance.iter().filter(|&&s| s > 0.0).count()
    }

    /// The metric of the top `rank` directions (capped at [`Self::useful_rank`], at least 1),
    /// each weighted by `sqrt(sigma / (1 + 2 sigma))`.
    pub fn metric(&self, rank: usize) -> LinearMetric {
        let d = self.mean.len();
        let r = rank.min(self.useful_rank()).max(1);
        let weight = |k: usize| {
            let s = self.between_variance[k].max(0.0);
            (s / (1.0 + 2.0 * s)).sqrt()
        };
        // Row-major d x r.
        let mut projection = vec![0f32; d * r];
        for a in 0..d {
            for k in 0..r {
                projection[a * r + k] = (self.directions[(a, k)] * weight(k)) as f32;
            }
        }
        // The projected mean, subtracted after the product: (x - mu) P = x P - mu P.
        let offset: Vec<f32> = (0..r)
            .map(|k| (0..d).map(|a| self.mean[a] * self.directions[(a, k)] * weight(k)).sum::<f64>() as f32)
            .collect();
        LinearMetric { dim_in: d, rank: r, projection, offset }
    }
}

/// A learned linear metric: `z = normalise((x - mu) P)`, compared by cosine.
#[derive(Debug, Clone, PartialEq)]
pub struct LinearMetric {
    dim_in: usize,
    rank: usize,
    /// d x rank, row-major.
    projection: Vec<f32>,
    /// `mu P`.
    offset: Vec<f32>,
}

impl LinearMetric {
    /// Input dimension.
    pub fn dim_in(&self) -> usize {
        self.dim_in
    }

    /// Output dimension (directions kept).
    pub fn rank(&self) -> usize {
        self.rank
    }

    /// Project `rows` (n x dim_in) into the metric space: n x rank, row-major, each row
    /// re-normalised to unit length (a row that projects to zero stays zero and ties with
    /// everything at score 0).
    pub fn project(&self, rows: Rows<'_>) -> Result<Vec<f32>> {
        if rows.dim() != self.dim_in {
            return Err(Error::config(format!(
                "the re-ID attacker was trained on {}-dimensional embeddings, got {}",
                self.dim_in,
                rows.dim()
            )));
        }
        let (n, r) = (rows.n(), self.rank);
        let mut out = vec![0f32; n * r];
        if n == 0 {
            return Ok(out);
        }
        let projection = MatRef::from_row_major_slice(&self.projection, self.dim_in, r);
        out.par_chunks_mut(PROJECT_ROWS * r)
            .zip(rows.data().par_chunks(PROJECT_ROWS * self.dim_in))
            .for_each(|(out, data)| {
                let m = data.len() / self.dim_in;
                matmul(
                    faer::MatMut::from_row_major_slice_mut(out, m, r),
                    Accum::Replace,
                    MatRef::from_row_major_slice(data, m, self.dim_in),
                    projection,
                    1.0f32,
                    Par::Seq,
                );
            });
        out.par_chunks_mut(r).for_each(|row| {
            let mut sum = 0f64;
            for (v, o) in row.iter_mut().zip(&self.offset) {
                *v -= o;
                sum += f64::from(*v) * f64::from(*v);
            }
            if sum > 0.0 {
                let inv = (1.0 / sum.sqrt()) as f32;
                row.iter_mut().for_each(|v| *v *= inv);
            }
        });
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use rand::Rng;
    use rand_distr::StandardNormal;

    use super::*;
    use crate::rng::stream;

    /// Patients differ along the first two axes; within-patient noise is large along axis 2
    /// and small elsewhere.
    fn data(n_patients: usize, per_patient: usize) -> (Vec<f32>, Vec<u32>) {
        let mut rng = stream(1, "linear-metric-test", 0);
        let mut rows = Vec::new();
        let mut patient = Vec::new();
        for p in 0..n_patients {
            let identity: [f64; 2] = [rng.sample(StandardNormal), rng.sample(StandardNormal)];
            for _ in 0..per_patient {
                let noise: [f64; 4] = std::array::from_fn(|_| rng.sample(StandardNormal));
                rows.extend(
                    [
                        identity[0] + 0.1 * noise[0],
                        identity[1] + 0.1 * noise[1],
                        5.0 * noise[2],
                        0.1 * noise[3],
                    ]
                    .map(|v| v as f32),
                );
                patient.push(p as u32 * 7);
            }
        }
        (rows, patient)
    }

    /// Shards on machines with different core counts must train and apply the same
    /// attacker: scatter, basis and projection have the same bits on 1, 2 and 3 threads, at
    /// a size where faer's own parallel GEMM would split the work differently.
    #[test]
    fn training_and_projection_do_not_depend_on_the_thread_count() {
        let (n_patients, per_patient, dim) = (1200, 3, 512);
        let mut rng = stream(2, "linear-metric-threads", 0);
        let mut rows = Vec::with_capacity(n_patients * per_patient * dim);
        let mut patient = Vec::new();
        for p in 0..n_patients {
            let identity: Vec<f64> = (0..dim).map(|_| rng.sample(StandardNormal)).collect();
            for _ in 0..per_patient {
                rows.extend(
                    identity.iter().map(|&a| (a + 0.5 * rng.sample::<f64, _>(StandardNormal)) as f32),
                );
                patient.push(p as u32);
            }
        }
        let n = n_patients * per_patient;
        let run = |threads: usize| {
            let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
            pool.install(|| {
                let r = Rows::new(&rows, n, dim).unwrap();
                let scatter = PatientScatter::estimate(r, &patient).unwrap();
                let basis = scatter.basis(0.1).unwrap();
                let metric = basis.metric(24);
                let projected = metric.project(r).unwrap();
                let bits = |m: &Mat<f64>| -> Vec<u64> {
                    (0..dim)
                        .flat_map(|a| (0..dim).map(move |b| (a, b)))
                        .map(|(a, b)| m[(a, b)].to_bits())
                        .collect()
                };
                (
                    bits(&scatter.total),
                    bits(&scatter.within),
                    basis.between_variance.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                    projected.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                )
            })
        };
        let one = run(1);
        assert_eq!(one, run(2));
        assert_eq!(one, run(3));
    }

    #[test]
    fn scatter_matches_direct_covariances() {
        let (rows, patient) = data(30, 3);
        let r = Rows::new(&rows, 90, 4).unwrap();
        let s = PatientScatter::estimate(r, &patient).unwrap();
        assert_eq!((s.n_records, s.n_patients), (90, 30));
        // Direct: total covariance entry (2, 2) and within entry (0, 0).
        let col = |j: usize| -> Vec<f64> { (0..90).map(|i| f64::from(rows[i * 4 + j])).collect() };
        let c2 = col(2);
        let m2 = c2.iter().sum::<f64>() / 90.0;
        let var2 = c2.iter().map(|v| (v - m2) * (v - m2)).sum::<f64>() / 89.0;
        assert!((s.total[(2, 2)] - var2).abs() < 1e-9 * var2);
        let c0 = col(0);
        let mut within0 = 0.0;
        for p in 0..30 {
            let g = &c0[p * 3..p * 3 + 3];
            let m = g.iter().sum::<f64>() / 3.0;
            within0 += g.iter().map(|v| (v - m) * (v - m)).sum::<f64>();
        }
        within0 /= 60.0;
        assert!((s.within[(0, 0)] - within0).abs() < 1e-9 * within0);
        assert!(PatientScatter::estimate(Rows::new(&rows[..8], 2, 4).unwrap(), &[0, 1]).is_err());
    }

    #[test]
    fn discriminant_directions_find_the_identity_axes() {
        let (rows, patient) = data(200, 3);
        let r = Rows::new(&rows, 600, 4).unwrap();
        let basis = PatientScatter::estimate(r, &patient).unwrap().basis(1e-3).unwrap();
        // Two identity axes with between/within variance ratio ~ 1 / 0.01 = 100, the other
        // two carry nothing.
        assert!(basis.between_variance[1] > 30.0, "{:?}", basis.between_variance);
        assert!(basis.between_variance[2].abs() < 0.5, "{:?}", basis.between_variance);
        let metric = basis.metric(2);
        assert_eq!(metric.rank(), 2);
        let z = metric.project(r).unwrap();
        // Projected rows are unit length; the noisy axis 2 no longer separates records of
        // one patient: same-patient cosines are near 1.
        for i in 0..600 {
            let norm: f32 = z[i * 2..i * 2 + 2].iter().map(|v| v * v).sum();
            assert!((norm - 1.0).abs() < 1e-5);
        }
        let mut same = 0.0;
        for p in 0..200 {
            let (a, b) = (&z[p * 6..p * 6 + 2], &z[p * 6 + 2..p * 6 + 4]);
            same += f64::from(a[0] * b[0] + a[1] * b[1]);
        }
        assert!(same / 200.0 > 0.9, "{}", same / 200.0);
        assert!(basis.clone().metric(100).rank() <= basis.useful_rank());
        assert!(metric.project(Rows::new(&rows[..6], 2, 3).unwrap()).is_err());
        assert!(PatientScatter::estimate(r, &patient).unwrap().basis(0.0).is_err());
    }
}
