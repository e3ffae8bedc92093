//! The batched solver behind every probe: many L2-regularised logistic regressions on the
//! same design matrix (one per target, per cross-validation fold), advanced together so
//! that each iteration costs two GEMMs over all of them instead of two matrix-vector
//! products per model.
//!
//! Each column j minimises the mean-form objective
//! `f_j(w, b) = (1/n_j) sum_{i in A_j} logloss(y_ij, x_i.w + b) + (lambda_j / 2) |w|^2`
//! over its active rows `A_j` (rows with a label for the target, outside the held-out
//! fold); the intercept is not penalised. Internally the intercept is parametrised on
//! centred features (`x_i.w + b = (x_i - mu_j).w + b'`), which leaves the problem unchanged
//! and decouples `b'` from `w` in the Hessian.
//!
//! Method: L-BFGS (Nocedal & Wright 2006, alg. 7.4) whose initial inverse Hessian is the
//! exact inverse Hessian of the quadratic model at constant probability,
//! `M_j = c_j Cov(x) + lambda_j I` (block-diagonal with `c_j` for `b'`), `c_j = pi_j (1 - pi_j)`
//! for the column's prevalence `pi_j`. `Cov(x)` is eigendecomposed once, so applying
//! `M_j^{-1}` to all columns is two d x d GEMMs. Because the search direction's logits
//! `X p` are computed once per iteration, the line search is exact on the 1-D convex
//! function `phi(alpha) = f(theta + alpha p)` (safeguarded Newton on `phi'`), at O(n) per
//! trial step and no further GEMM.

use std::collections::VecDeque;

use faer::linalg::matmul::matmul;
use faer::{Accum, Mat, MatMut, MatRef, Par};
use rayon::prelude::*;

use super::gemm::{x_times, x_transpose_times};
use super::Features;

mod preconditioner;

use preconditioner::{preconditioner, Preconditioner};

/// Element type of the design matrix: the GEMMs and the per-row logistic arithmetic run
/// in this precision; parameters, gradients and sums are f64. `f32` is what cohorts hold;
/// `f64` exists for reference comparisons.
pub trait Element: faer::traits::RealField + Copy + Send + Sync + 'static {
    /// Convert from f64 (rounding).
    fn from_f64(value: f64) -> Self;
    /// Convert to f64 (exact).
    fn to_f64(self) -> f64;
    /// The logistic function 1 / (1 + exp(-x)) to this type's precision, branch-free so
    /// that loops over rows vectorise.
    fn sigmoid(self) -> Self;
}

// Not `clamp` in `sigmoid`: its NaN checks keep row loops from vectorising (no NaN here).
#[allow(clippy::manual_clamp)]
impl Element for f32 {
    fn from_f64(value: f64) -> Self {
        value as f32
    }
    fn to_f64(self) -> f64 {
        f64::from(self)
    }
    fn sigmoid(self) -> Self {
        // |x| <= 80 keeps exp finite; sigmoid(80) = 1 - 1.8e-35 in f32 is 1 anyway.
        let x = if self < -80.0 {
            -80.0
        } else if self > 80.0 {
            80.0
        } else {
            self
        };
        1.0 / (1.0 + exp_f32(-x))
    }
}

impl Element for f64 {
    fn from_f64(value: f64) -> Self {
        value
    }
    fn to_f64(self) -> f64 {
        self
    }
    fn sigmoid(self) -> Self {
        sigmoid(self)
    }
}

/// exp(x) for |x| <= 88 in f32 without a libm call (Cephes `expf`: x = k ln 2 + r,
/// degree-6 polynomial for e^r, exponent bits for 2^k; relative error ~1e-7), written with
/// arithmetic only so that the compiler vectorises loops that use it.
#[inline(always)]
fn exp_f32(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    const ROUND: f32 = 12_582_912.0; // 1.5 * 2^23: adding and subtracting rounds to an integer
    let k = (x * LOG2E + ROUND) - ROUND;
    let r = x - k * LN2_HI - k * LN2_LO;
    let p = ((((1.987_569_1e-4 * r + 1.398_2e-3) * r + 8.333_452e-3) * r + 4.166_579_6e-2) * r
        + 1.666_666_5e-1)
        * r
        + 0.5;
    let e_r = p * r * r + r + 1.0;
    let two_k = f32::from_bits(((k as i32 + 127) << 23) as u32);
    e_r * two_k
}

/// Which model a column fits: target index and the fold it leaves out (None = all rows).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ColumnSpec {
    pub target: usize,
    pub held_out: Option<u8>,
}

/// Solver settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SolverOptions {
    /// Stop when the largest absolute gradient entry of the mean-form objective (weights
    /// and intercept) is at most this (scikit-learn's `tol` for `lbfgs` has the same
    /// meaning on the same objective).
    pub tol: f64,
    /// Most L-BFGS iterations per regularisation value.
    pub max_iter: usize,
    /// Number of L-BFGS correction pairs kept.
    pub memory: usize,
}

impl Default for SolverOptions {
    fn default() -> Self {
        SolverOptions { tol: 1e-6, max_iter: 500, memory: 10 }
    }
}

#[derive(Debug, Clone)]
struct Pair {
    s: Vec<f64>,
    y: Vec<f64>,
    rho: f64,
}

#[derive(Debug, Clone)]
struct Column<T> {
    lambda: f64,
    /// 1 / number of active rows.
    inv_n: f64,
    n_active: usize,
    /// pi (1 - pi): curvature of the loss at constant probability.
    curvature: f64,
    /// 1 for the rows this column is fitted on, 0 for the others.
    weight: Vec<T>,
    /// 1 for positive rows, 0 otherwise.
    target: Vec<T>,
    /// Mean feature vector over the active rows.
    mu: Vec<f64>,
    /// Weights and the centred intercept b' at index d.
    theta: Vec<f64>,
    /// Gradient of f at theta (d + 1).
    grad: Vec<f64>,
    /// Logits x_i.w + b for every row (active or not).
    logits: Vec<T>,
    memory: VecDeque<Pair>,
    /// Scale of the initial inverse Hessian (gamma) from the newest pair.
    gamma: f64,
    iterations: usize,
    converged: bool,
    /// No progress possible (the gradient is at the rounding level of the GEMMs).
    stalled: bool,
    /// Smallest gradient max-abs seen at this lambda, and iterations since it shrank by 10%.
    best_grad: f64,
    since_best: usize,
}

impl<T> Column<T> {
    fn intercept(&self, dim: usize) -> f64 {
        self.theta[dim] - dot(&self.mu, &self.theta[..dim])
    }
    fn grad_max_abs(&self) -> f64 {
        self.grad.iter().fold(0.0f64, |m, g| m.max(g.abs()))
    }
}

/// A batch of logistic regressions on one design matrix.
#[derive(Debug)]
pub(crate) struct Batch<'a, T: Element> {
    x: MatRef<'a, T>,
    n: usize,
    dim: usize,
    columns: Vec<Column<T>>,
    precond: Preconditioner,
    opts: SolverOptions,
    /// Mean per-coordinate feature variance, trace(Cov) / d: the scale of lambda grids.
    mean_variance: f64,
    /// Iterations since the logits were last recomputed from the weights.
    since_refresh: usize,
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn sigmoid(z: f64) -> f64 {
    if z >= 0.0 {
        1.0 / (1.0 + (-z).exp())
    } else {
        let e = z.exp();
        e / (1.0 + e)
    }
}

/// log(1 + exp(z)) without overflow.
fn softplus(z: f64) -> f64 {
    if z > 0.0 {
        z + (-z).exp().ln_1p()
    } else {
        z.exp().ln_1p()
    }
}

/// Iterations without a 10% smaller gradient after which a column counts as stalled.
const STALL_ITERATIONS: usize = 20;

impl<'a, T: Element> Batch<'a, T> {
    /// Set up columns (`specs`, `lambdas`) over `x` with `labels[target][row]` and optional
    /// `folds[row]`. Every column must have both classes among its active rows.
    pub fn new(
        x: Features<'a, T>,
        labels: &[&[Option<bool>]],
        folds: Option<&[u8]>,
        specs: &[ColumnSpec],
        lambdas: &[f64],
        opts: SolverOptions,
    ) -> Batch<'a, T> {
        let (n, dim) = (x.n(), x.dim());
        let xm = x.mat();
        let precond_and_var = preconditioner(xm);
        let mut columns: Vec<Column<T>> = specs
            .iter()
            .zip(lambdas)
            .map(|(&spec, &lambda)| {
                // Some(label) for the rows this column is fitted on.
                let used: Vec<Option<bool>> = (0..n)
                    .map(|i| match (folds, spec.held_out) {
                        (Some(f), Some(h)) if f[i] == h => None,
                        _ => labels[spec.target][i],
                    })
                    .collect();
                let weight: Vec<T> =
                    used.iter().map(|u| T::from_f64(if u.is_some() { 1.0 } else { 0.0 })).collect();
                let target: Vec<T> =
                    used.iter().map(|u| T::from_f64(if *u == Some(true) { 1.0 } else { 0.0 })).collect();
                let n_active = used.iter().filter(|u| u.is_some()).count();
                let n_pos = used.iter().filter(|u| **u == Some(true)).count();
                assert!(n_pos > 0 && n_pos < n_active, "solver column needs both classes");
                let prevalence = n_pos as f64 / n_active as f64;
                let mut theta = vec![0.0; dim + 1];
                theta[dim] = (prevalence / (1.0 - prevalence)).ln();
                Column {
                    lambda,
                    inv_n: 1.0 / n_active as f64,
                    n_active,
                    curvature: prevalence * (1.0 - prevalence),
                    weight,
                    target,
                    mu: vec![0.0; dim],
                    logits: vec![T::from_f64(theta[dim]); n],
                    theta,
                    grad: vec![0.0; dim + 1],
                    memory: VecDeque::new(),
                    gamma: 1.0,
                    iterations: 0,
                    converged: false,
                    stalled: false,
                    best_grad: f64::INFINITY,
                    since_best: 0,
                }
            })
            .collect();
        // Column means of the active rows: one GEMM X^T A with A the scaled masks.
        let k = columns.len();
        let mut masks = vec![T::from_f64(0.0); n * k];
        masks.par_chunks_mut(n.max(1)).zip(&columns).for_each(|(m, c)| {
            let inv_n = T::from_f64(c.inv_n);
            for (v, &w) in m.iter_mut().zip(&c.weight) {
                *v = w * inv_n;
            }
        });
        let mut means = Mat::<T>::zeros(dim, k);
        x_transpose_times(means.as_mut(), xm, MatRef::from_column_major_slice(&masks, n, k));
        for (j, c) in columns.iter_mut().enumerate() {
            for r in 0..dim {
                c.mu[r] = means[(r, j)].to_f64();
            }
        }
        let (precond, mean_variance) = precond_and_var;
        let mut batch = Batch { x: xm, n, dim, columns, precond, opts, mean_variance, since_refresh: 0 };
        let all: Vec<usize> = (0..k).collect();
        batch.refresh_gradients(&all);
        batch
    }

    /// trace(Cov(x)) / d of the design matrix.
    pub fn mean_variance(&self) -> f64 {
        self.mean_variance
    }

    /// Change every column's lambda (a path step): the gradient and the stored curvature
    /// pairs are corrected exactly for the change of the quadratic penalty.
    pub fn set_lambdas(&mut self, lambdas: &[f64]) {
        let dim = self.dim;
        let tol = self.opts.tol;
        self.columns.par_iter_mut().zip(lambdas).for_each(|(c, &lambda)| {
            let delta = lambda - c.lambda;
            c.lambda = lambda;
            for r in 0..dim {
                c.grad[r] += delta * c.theta[r];
            }
            for pair in &mut c.memory {
                for r in 0..dim {
                    pair.y[r] += delta * pair.s[r];
                }
                pair.rho = 1.0 / dot(&pair.s, &pair.y);
            }
            c.iterations = 0;
            c.stalled = false;
            c.best_grad = f64::INFINITY;
            c.since_best = 0;
            c.converged = c.grad_max_abs() <= tol;
        });
    }

    /// Run L-BFGS until every column converges, stalls or reaches `max_iter`.
    pub fn solve(&mut self) {
        loop {
            let active: Vec<usize> = (0..self.columns.len())
                .filter(|&j| {
                    let c = &self.columns[j];
                    !c.converged && !c.stalled && c.iterations < self.opts.max_iter
                })
                .collect();
            if active.is_empty() {
                break;
            }
            // Recompute logits from the weights now and then: incremental updates
            // accumulate the rounding of the GEMM's precision.
            self.since_refresh += 1;
            if self.since_refresh >= 25 {
                self.since_refresh = 0;
                self.refresh_logits(&active);
                self.refresh_gradients(&active);
            }
            self.step(&active);
        }
    }

    /// One L-BFGS iteration on the `active` columns.
    fn step(&mut self, active: &[usize]) {
        let dim = self.dim;
        // Two-loop recursion, first half, per column.
        let first: Vec<(Vec<f64>, Vec<f64>)> = active
            .par_iter()
            .map(|&j| {
                let c = &self.columns[j];
                let mut q = c.grad.clone();
                let mut alphas = Vec::with_capacity(c.memory.len());
                for pair in c.memory.iter().rev() {
                    let a = pair.rho * dot(&pair.s, &q);
                    for (qv, yv) in q.iter_mut().zip(&pair.y) {
                        *qv -= a * yv;
                    }
                    alphas.push(a);
                }
                (q, alphas)
            })
            .collect();
        let qs: Vec<&[f64]> = first.iter().map(|(q, _)| q.as_slice()).collect();
        let mut directions = self.apply_inverse_preconditioner(active, &qs);
        // Second half, and the descent check.
        directions.par_iter_mut().zip(active).zip(&first).for_each(|((r, &j), (_, alphas))| {
            let c = &self.columns[j];
            for v in r.iter_mut() {
                *v *= c.gamma;
            }
            for (pair, a) in c.memory.iter().zip(alphas.iter().rev()) {
                let beta = pair.rho * dot(&pair.y, r);
                for (rv, sv) in r.iter_mut().zip(&pair.s) {
                    *rv += (a - beta) * sv;
                }
            }
            for v in r.iter_mut() {
                *v = -*v;
            }
        });
        // A non-descent direction (possible only through rounding) restarts the column
        // with the preconditioned gradient.
        let restart: Vec<usize> = (0..active.len())
            .filter(|&a| dot(&directions[a], &self.columns[active[a]].grad) >= 0.0)
            .collect();
        if !restart.is_empty() {
            let cols: Vec<usize> = restart.iter().map(|&a| active[a]).collect();
            let grads: Vec<&[f64]> = cols.iter().map(|&j| self.columns[j].grad.as_slice()).collect();
            let fresh = self.apply_inverse_preconditioner(&cols, &grads);
            for (&a, mut p) in restart.iter().zip(fresh) {
                for v in p.iter_mut() {
                    *v = -*v;
                }
                let c = &mut self.columns[active[a]];
                c.memory.clear();
                c.gamma = 1.0;
                directions[a] = p;
            }
        }

        // Logits of the directions: ZP = X P_w (one GEMM), plus the centred intercept.
        let k = active.len();
        let n = self.n;
        let mut p_w = vec![T::from_f64(0.0); dim * k];
        for (a, p) in directions.iter().enumerate() {
            for r in 0..dim {
                p_w[a * dim + r] = T::from_f64(p[r]);
            }
        }
        let mut zp = vec![T::from_f64(0.0); n * k];
        x_times(
            MatMut::from_column_major_slice_mut(&mut zp, n, k),
            self.x,
            MatRef::from_column_major_slice(&p_w, dim, k),
        );

        // Exact line search and update, per column.
        let mut columns: Vec<Option<&mut Column<T>>> = self.columns.iter_mut().map(Some).collect();
        let mut selected: Vec<&mut Column<T>> =
            active.iter().map(|&j| columns[j].take().expect("distinct")).collect();
        let mut residuals = vec![T::from_f64(0.0); n * k];
        let steps: Vec<(f64, Vec<f64>, f64)> = selected
            .par_iter_mut()
            .zip(zp.par_chunks(n.max(1)))
            .zip(residuals.par_chunks_mut(n.max(1)))
            .zip(directions.into_par_iter())
            .map(|(((c, zp_col), residual), p)| {
                let offset = p[dim] - dot(&c.mu, &p[..dim]);
                let (alpha, sum) = line_search(c, zp_col, offset, &p, dim, residual);
                let (a, off) = (T::from_f64(alpha), T::from_f64(offset));
                for (z, &d) in c.logits.iter_mut().zip(zp_col) {
                    *z += a * (d + off);
                }
                let step: Vec<f64> = p.iter().map(|v| alpha * v).collect();
                for (t, s) in c.theta.iter_mut().zip(&step) {
                    *t += s;
                }
                c.iterations += 1;
                (alpha, step, sum)
            })
            .collect();
        drop(selected);
        let old_grads: Vec<Vec<f64>> = active.iter().map(|&j| self.columns[j].grad.clone()).collect();
        let sums: Vec<f64> = steps.iter().map(|s| s.2).collect();
        self.gradients_from_residuals(active, &residuals, &sums);

        // New curvature pairs, and gamma = s.y / (y. M^{-1} y).
        let ys: Vec<Vec<f64>> = active
            .iter()
            .zip(&old_grads)
            .map(|(&j, old)| self.columns[j].grad.iter().zip(old).map(|(g, o)| g - o).collect())
            .collect();
        let y_refs: Vec<&[f64]> = ys.iter().map(Vec::as_slice).collect();
        let precond_y = self.apply_inverse_preconditioner(active, &y_refs);
        let tol = self.opts.tol;
        let memory = self.opts.memory;
        for (((&j, (alpha, s, _)), y), my) in active.iter().zip(steps).zip(ys).zip(precond_y) {
            let c = &mut self.columns[j];
            let grad = c.grad_max_abs();
            c.converged = grad <= tol;
            if grad < 0.9 * c.best_grad {
                c.best_grad = grad;
                c.since_best = 0;
            } else {
                c.since_best += 1;
                // 20 iterations without a 10% smaller gradient: rounding, not curvature,
                // limits progress (e.g. a tolerance below what f32 GEMMs can resolve).
                c.stalled = !c.converged && c.since_best >= STALL_ITERATIONS;
            }
            let sy = dot(&s, &y);
            if alpha == 0.0 || !sy.is_finite() || sy <= 0.0 {
                // No progress possible along this direction (rounding level reached).
                if c.memory.is_empty() {
                    c.stalled = !c.converged;
                }
                c.memory.clear();
                c.gamma = 1.0;
                continue;
            }
            let ymy = dot(&y, &my);
            c.gamma = if ymy > 0.0 { sy / ymy } else { 1.0 };
            if c.memory.len() == memory {
                c.memory.pop_front();
            }
            c.memory.push_back(Pair { s, y, rho: 1.0 / sy });
        }
    }

    /// `M_j^{-1} v_j` for each listed column.
    fn apply_inverse_preconditioner(&self, cols: &[usize], vectors: &[&[f64]]) -> Vec<Vec<f64>> {
        let dim = self.dim;
        let k = cols.len();
        let v = Mat::<f64>::from_fn(dim, k, |r, a| vectors[a][r]);
        let mut t = Mat::<f64>::zeros(dim, k);
        matmul(&mut t, Accum::Replace, self.precond.vectors.transpose(), &v, 1.0, Par::Seq);
        for (a, &j) in cols.iter().enumerate() {
            let c = &self.columns[j];
            for r in 0..dim {
                t[(r, a)] /= c.curvature * self.precond.values[r] + c.lambda;
            }
        }
        let mut out = Mat::<f64>::zeros(dim, k);
        matmul(&mut out, Accum::Replace, &self.precond.vectors, &t, 1.0, Par::Seq);
        (0..k)
            .map(|a| {
                let mut col: Vec<f64> = (0..dim).map(|r| out[(r, a)]).collect();
                col.push(vectors[a][dim] / self.columns[cols[a]].curvature);
                col
            })
            .collect()
    }

    /// Recompute the gradient of the listed columns from their logits: residuals per row,
    /// then one GEMM X^T R.
    fn refresh_gradients(&mut self, cols: &[usize]) {
        let (n, k) = (self.n, cols.len());
        let mut residuals = vec![T::from_f64(0.0); n * k];
        let sums: Vec<f64> = residuals
            .par_chunks_mut(n.max(1))
            .zip(cols)
            .map(|(r, &j)| residuals_at(&self.columns[j], r))
            .collect();
        self.gradients_from_residuals(cols, &residuals, &sums);
    }

    /// Gradients of the listed columns from their residuals (n x k, column-major) and the
    /// residuals' sums: one GEMM X^T R plus the centring and penalty terms.
    fn gradients_from_residuals(&mut self, cols: &[usize], residuals: &[T], sums: &[f64]) {
        let (n, dim, k) = (self.n, self.dim, cols.len());
        let mut g = vec![T::from_f64(0.0); dim * k];
        x_transpose_times(
            MatMut::from_column_major_slice_mut(&mut g, dim, k),
            self.x,
            MatRef::from_column_major_slice(residuals, n, k),
        );
        for (a, &j) in cols.iter().enumerate() {
            let c = &mut self.columns[j];
            let sum = sums[a];
            for r in 0..dim {
                c.grad[r] = g[a * dim + r].to_f64() - c.mu[r] * sum + c.lambda * c.theta[r];
            }
            c.grad[dim] = sum;
        }
    }

    /// Recompute the logits of the listed columns from their parameters (one GEMM).
    fn refresh_logits(&mut self, cols: &[usize]) {
        let (n, dim, k) = (self.n, self.dim, cols.len());
        let mut w = vec![T::from_f64(0.0); dim * k];
        for (a, &j) in cols.iter().enumerate() {
            for r in 0..dim {
                w[a * dim + r] = T::from_f64(self.columns[j].theta[r]);
            }
        }
        let mut z = vec![T::from_f64(0.0); n * k];
        x_times(
            MatMut::from_column_major_slice_mut(&mut z, n, k),
            self.x,
            MatRef::from_column_major_slice(&w, dim, k),
        );
        let intercepts: Vec<f64> = cols.iter().map(|&j| self.columns[j].intercept(dim)).collect();
        let mut columns: Vec<Option<&mut Column<T>>> = self.columns.iter_mut().map(Some).collect();
        let selected: Vec<&mut Column<T>> =
            cols.iter().map(|&j| columns[j].take().expect("distinct")).collect();
        selected.into_par_iter().zip(z.par_chunks(n.max(1))).zip(intercepts).for_each(|((c, zc), b)| {
            let b = T::from_f64(b);
            for (l, &v) in c.logits.iter_mut().zip(zc) {
                *l = v + b;
            }
        });
    }

    /// Weights of column j (original, uncentred parametrisation).
    pub fn weights(&self, j: usize) -> &[f64] {
        &self.columns[j].theta[..self.dim]
    }

    /// Intercept of column j (original parametrisation).
    pub fn intercept(&self, j: usize) -> f64 {
        self.columns[j].intercept(self.dim)
    }

    /// Logits of column j on every row of the design matrix (held-out rows included).
    pub fn logits(&self, j: usize) -> &[T] {
        &self.columns[j].logits
    }

    /// Current lambda of column j.
    pub fn lambda(&self, j: usize) -> f64 {
        self.columns[j].lambda
    }

    /// Number of rows column j was fitted on.
    pub fn n_active(&self, j: usize) -> usize {
        self.columns[j].n_active
    }

    /// (iterations at the current lambda, converged, largest absolute gradient entry).
    pub fn status(&self, j: usize) -> (usize, bool, f64) {
        let c = &self.columns[j];
        (c.iterations, c.converged, c.grad_max_abs())
    }

    /// Objective value of column j at its current parameters.
    pub fn objective(&self, j: usize) -> f64 {
        let c = &self.columns[j];
        let loss: f64 = c
            .weight
            .iter()
            .zip(&c.target)
            .zip(&c.logits)
            .map(|((&w, &y), &z)| {
                let (z, y) = (z.to_f64(), y.to_f64());
                w.to_f64() * (softplus(z) - y * z)
            })
            .sum();
        let w = &c.theta[..self.dim];
        loss * c.inv_n + 0.5 * c.lambda * dot(w, w)
    }
}

/// Rows per block of the per-row loops: the elementwise loop over a block vectorises
/// (no branches, no libm call for f32), its sums are then added in f64.
const BLOCK: usize = 256;

/// Residuals `(sigmoid(z) - y) w / n` of column `c` at its logits into `out`; returns
/// their sum.
fn residuals_at<T: Element>(c: &Column<T>, out: &mut [T]) -> f64 {
    let inv_n = T::from_f64(c.inv_n);
    let mut sum = 0.0;
    for (((z, w), y), r) in c
        .logits
        .chunks(BLOCK)
        .zip(c.weight.chunks(BLOCK))
        .zip(c.target.chunks(BLOCK))
        .zip(out.chunks_mut(BLOCK))
    {
        for i in 0..z.len() {
            r[i] = (z[i].sigmoid() - y[i]) * w[i] * inv_n;
        }
        sum += sum_lanes(r);
    }
    sum
}

/// Sum of `values` with eight independent partial sums (so the loop vectorises), in f64.
fn sum_lanes<T: Element>(values: &[T]) -> f64 {
    let mut lanes = [T::from_f64(0.0); 8];
    let mut blocks = values.chunks_exact(8);
    for block in &mut blocks {
        for l in 0..8 {
            lanes[l] += block[l];
        }
    }
    let mut total: f64 = lanes.iter().map(|v| v.to_f64()).sum();
    for v in blocks.remainder() {
        total += v.to_f64();
    }
    total
}

/// phi'(alpha) and phi''(alpha) of the line search, writing the residuals
/// `(sigmoid(z + alpha dz) - y) w / n` into `residual` (the gradient's input if this alpha
/// is accepted) and returning their sum too.
fn evaluate<T: Element>(
    c: &Column<T>,
    zp: &[T],
    offset: f64,
    alpha: f64,
    penalty: (f64, f64),
    residual: &mut [T],
) -> (f64, f64, f64) {
    let (w_dot_p, p_dot_p) = penalty;
    let zero = T::from_f64(0.0);
    let (one, off, a, inv_n) =
        (T::from_f64(1.0), T::from_f64(offset), T::from_f64(alpha), T::from_f64(c.inv_n));
    let (mut d1, mut d2, mut sum) = (0.0f64, 0.0f64, 0.0f64);
    let (mut slope, mut curvature, mut diffs) = ([zero; BLOCK], [zero; BLOCK], [zero; BLOCK]);
    for ((((z, w), y), d), r) in c
        .logits
        .chunks(BLOCK)
        .zip(c.weight.chunks(BLOCK))
        .zip(c.target.chunks(BLOCK))
        .zip(zp.chunks(BLOCK))
        .zip(residual.chunks_mut(BLOCK))
    {
        let m = z.len();
        for i in 0..m {
            let dz = d[i] + off;
            let s = (z[i] + a * dz).sigmoid();
            let diff = (s - y[i]) * w[i];
            r[i] = diff * inv_n;
            diffs[i] = diff;
            slope[i] = diff * dz;
            curvature[i] = w[i] * s * (one - s) * dz * dz;
        }
        d1 += sum_lanes(&slope[..m]);
        d2 += sum_lanes(&curvature[..m]);
        sum += sum_lanes(&diffs[..m]);
    }
    (d1 * c.inv_n + c.lambda * (w_dot_p + alpha * p_dot_p), d2 * c.inv_n + c.lambda * p_dot_p, sum * c.inv_n)
}

/// Exact line search on phi(alpha) = f(theta + alpha p), convex in alpha: safeguarded
/// Newton on phi' from alpha = 1 until |phi'(alpha)| <= 0.1 |phi'(0)| (strong Wolfe
/// curvature condition with c2 = 0.1; for a convex phi this also gives a decrease).
/// Returns alpha and the sum of the residuals written into `residual` at that alpha.
fn line_search<T: Element>(
    c: &Column<T>,
    zp: &[T],
    offset: f64,
    p: &[f64],
    dim: usize,
    residual: &mut [T],
) -> (f64, f64) {
    let penalty = (dot(&c.theta[..dim], &p[..dim]), dot(&p[..dim], &p[..dim]));
    let slope0 = dot(&c.grad, p);
    if slope0 >= 0.0 {
        let (_, _, sum) = evaluate(c, zp, offset, 0.0, penalty, residual);
        return (0.0, sum);
    }
    let target = 0.1 * slope0.abs();
    let (mut lo, mut hi) = (0.0f64, f64::INFINITY);
    let mut alpha = 1.0;
    for _ in 0..30 {
        let (d1, d2, sum) = evaluate(c, zp, offset, alpha, penalty, residual);
        if d1.abs() <= target || !d1.is_finite() {
            return (alpha, sum);
        }
        if d1 < 0.0 {
            lo = alpha;
        } else {
            hi = alpha;
        }
        let newton = alpha - d1 / d2;
        alpha = if newton > lo && newton < hi && newton.is_finite() {
            newton
        } else if hi.is_infinite() {
            2.0 * alpha
        } else {
            0.5 * (lo + hi)
        };
    }
    let (_, _, sum) = evaluate(c, zp, offset, alpha, penalty, residual);
    (alpha, sum)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fast_f32_exp_and_sigmoid_are_accurate() {
        let mut worst_exp = 0.0f64;
        let mut worst_sigmoid = 0.0f64;
        for i in 0..=200_000 {
            let x = -87.0 + 175.0 * i as f64 / 200_000.0;
            let exact = x.exp();
            worst_exp = worst_exp.max(((exp_f32(x as f32) as f64) - exact).abs() / exact);
            let s = (x as f32).sigmoid() as f64;
            worst_sigmoid = worst_sigmoid.max((s - sigmoid(x)).abs());
        }
        // f32 has 6e-8 unit roundoff; the input itself is rounded to f32 (relative error
        // up to 6e-8 * |x| in exp), so compare on inputs exact in f32 as well:
        assert!(worst_sigmoid < 1.5e-7, "{worst_sigmoid:e}");
        let mut worst_exact_input = 0.0f64;
        for i in 0..=200_000 {
            let x = (-87.0 + 175.0 * i as f64 / 200_000.0) as f32;
            let exact = f64::from(x).exp();
            worst_exact_input = worst_exact_input.max((f64::from(exp_f32(x)) - exact).abs() / exact);
        }
        assert!(worst_exact_input < 3e-7, "{worst_exact_input:e}");
        assert!(worst_exp.is_finite());
        assert_eq!(80f32.sigmoid(), 1.0);
        assert!((-1000f32).sigmoid() >= 0.0 && (-1000f32).sigmoid() < 1e-34);
    }
}
