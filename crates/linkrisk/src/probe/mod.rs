//! Linear probes: L2-regularised logistic regression on frozen embeddings, the standard
//! measure of what an embedding encodes (findings for utility, demographics for attribute
//! inference). The regularisation is chosen per target by k-fold cross-validation on the
//! training split with folds grouped by patient, maximising the mean held-out AUROC.
//!
//! All targets and all folds are fitted together by one batched L-BFGS solver
//! (see `probe/solver/`) so that 40,000 x 512 features with 14 targets and
//! 5 folds cost a few GEMMs per iteration; regularisation values are visited from strong
//! to weak, each warm-started from the previous solution.
//!
//! Objective (mean form): `(1/n) sum_i logloss(y_i, x_i.w + b) + (lambda/2) |w|^2`, intercept
//! unpenalised. scikit-learn's `LogisticRegression(C=C)` minimises
//! `C sum_i logloss + |w|^2 / 2`, the same problem with `lambda = 1 / (C n)`
//! ([`LogisticModel::sklearn_c`]).

pub mod folds;
mod gemm;
mod solver;

use faer::{MatMut, MatRef};
use rayon::prelude::*;
use serde::Serialize;

pub use folds::patient_folds;
pub use solver::{Element, SolverOptions};

use crate::error::{Error, Result};
use crate::metrics::auroc;
use solver::{Batch, ColumnSpec};

/// A borrowed row-major design matrix (n records x `dim` features).
#[derive(Debug, Clone, Copy)]
pub struct Features<'a, T = f32> {
    data: &'a [T],
    n: usize,
    dim: usize,
}

impl<'a, T: Element> Features<'a, T> {
    /// Wrap `data` (row-major, `n * dim` values). Errors when the length does not match or
    /// the matrix is empty.
    pub fn new(data: &'a [T], n: usize, dim: usize) -> Result<Self> {
        if n == 0 || dim == 0 || data.len() != n * dim {
            return Err(Error::config(format!(
                "probe features: {} values for shape ({n}, {dim}); need a non-empty row-major matrix",
                data.len()
            )));
        }
        Ok(Features { data, n, dim })
    }

    /// Number of records.
    pub fn n(&self) -> usize {
        self.n
    }

    /// Number of features.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// The matrix as a faer view.
    pub fn mat(&self) -> MatRef<'a, T> {
        MatRef::from_row_major_slice(self.data, self.n, self.dim)
    }
}

/// One fitted logistic regression.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LogisticModel {
    /// Weights, one per feature.
    pub weights: Vec<f64>,
    /// Intercept (unpenalised).
    pub intercept: f64,
    /// Regularisation strength of the mean-form objective.
    pub lambda: f64,
    /// Records the model was fitted on.
    pub n_train: usize,
    /// L-BFGS iterations at the final lambda.
    pub iterations: usize,
    /// Whether the gradient tolerance was reached.
    pub converged: bool,
    /// Largest absolute gradient entry at the solution.
    pub gradient_max_abs: f64,
    /// Objective value at the solution.
    pub objective: f64,
}

impl LogisticModel {
    /// The equivalent scikit-learn `C`: `1 / (lambda n_train)`.
    pub fn sklearn_c(&self) -> f64 {
        1.0 / (self.lambda * self.n_train as f64)
    }
}

/// Decision scores (logits) of each model on each row of `x`: `scores[m][i]`, one GEMM.
pub fn decision_scores(models: &[&LogisticModel], x: Features<'_, f32>) -> Result<Vec<Vec<f64>>> {
    let (n, dim, k) = (x.n(), x.dim(), models.len());
    if let Some(m) = models.iter().find(|m| m.weights.len() != dim) {
        return Err(Error::config(format!(
            "probe has {} weights but the features have {dim} columns",
            m.weights.len()
        )));
    }
    if k == 0 {
        return Ok(Vec::new());
    }
    let w: Vec<f32> = models.iter().flat_map(|m| m.weights.iter().map(|&v| v as f32)).collect();
    let mut z = vec![0f32; n * k];
    gemm::x_times(
        MatMut::from_column_major_slice_mut(&mut z, n, k),
        x.mat(),
        MatRef::from_column_major_slice(&w, dim, k),
    );
    Ok(z.chunks(n)
        .zip(models)
        .map(|(col, m)| col.iter().map(|&v| f64::from(v) + m.intercept).collect())
        .collect())
}

fn check_labels(n: usize, labels: &[&[Option<bool>]], rows_allowed: Option<&[bool]>) -> Result<()> {
    for (t, l) in labels.iter().enumerate() {
        if l.len() != n {
            return Err(Error::config(format!("probe target {t}: {} labels for {n} records", l.len())));
        }
        let allowed = |i: usize| rows_allowed.is_none_or(|a| a[i]);
        let pos = (0..n).filter(|&i| allowed(i) && l[i] == Some(true)).count();
        let neg = (0..n).filter(|&i| allowed(i) && l[i] == Some(false)).count();
        if pos == 0 || neg == 0 {
            return Err(Error::config(format!(
                "probe target {t}: {pos} positive and {neg} negative training records; a probe needs both classes"
            )));
        }
    }
    Ok(())
}

/// Fit one model per target at the given `lambdas` (mean-form objective, see the module
/// docs), without cross-validation. `labels[t][i]`: `Some(true)` positive, `Some(false)`
/// negative, `None` not used for target t.
pub fn fit_logistic<T: Element>(
    x: Features<'_, T>,
    labels: &[&[Option<bool>]],
    lambdas: &[f64],
    opts: SolverOptions,
) -> Result<Vec<LogisticModel>> {
    check_labels(x.n(), labels, None)?;
    if lambdas.len() != labels.len() || lambdas.iter().any(|&l| !(l > 0.0 && l.is_finite())) {
        return Err(Error::config("fit_logistic: one finite lambda > 0 per target"));
    }
    validate_solver(&opts)?;
    let specs: Vec<ColumnSpec> =
        (0..labels.len()).map(|t| ColumnSpec { target: t, held_out: None }).collect();
    let mut batch = Batch::new(x, labels, None, &specs, &vec![0.0; specs.len()], opts);
    batch.set_lambdas(lambdas);
    batch.solve();
    Ok((0..specs.len()).map(|j| model_of(&batch, j)).collect())
}

fn model_of<T: Element>(batch: &Batch<'_, T>, j: usize) -> LogisticModel {
    let (iterations, converged, gradient_max_abs) = batch.status(j);
    LogisticModel {
        weights: batch.weights(j).to_vec(),
        intercept: batch.intercept(j),
        lambda: batch.lambda(j),
        n_train: batch.n_active(j),
        iterations,
        converged,
        gradient_max_abs,
        objective: batch.objective(j),
    }
}

fn validate_solver(opts: &SolverOptions) -> Result<()> {
    if !(opts.tol > 0.0 && opts.tol.is_finite()) {
        return Err(Error::config(format!("probe tolerance {} must be a positive number", opts.tol)));
    }
    if opts.max_iter == 0 || opts.memory == 0 {
        return Err(Error::config("probe max_iter and memory must be at least 1"));
    }
    Ok(())
}

/// How probes are trained.
#[derive(Debug, Clone, PartialEq)]
pub struct ProbeConfig {
    /// Cross-validation folds (grouped by patient).
    pub n_folds: usize,
    /// Candidate regularisation strengths as multiples of the mean feature variance
    /// `trace(Cov(x)) / d` of the training features, so the grid means the same on any
    /// embedding scale. Visited from strong to weak.
    pub lambda_grid: Vec<f64>,
    /// Seed of the fold assignment.
    pub seed: u64,
    /// Solver settings.
    pub solver: SolverOptions,
}

impl Default for ProbeConfig {
    fn default() -> Self {
        ProbeConfig {
            n_folds: 5,
            // 10^0, 10^-0.5, ..., 10^-4: from heavy shrinkage to nearly unregularised.
            lambda_grid: (0..9).map(|k| 10f64.powf(-0.5 * k as f64)).collect(),
            seed: 0,
            solver: SolverOptions::default(),
        }
    }
}

impl ProbeConfig {
    /// Reject unusable settings before any work.
    pub fn validate(&self) -> Result<()> {
        if !(2..=folds::MAX_FOLDS).contains(&self.n_folds) {
            return Err(Error::config(format!(
                "--folds {}: cross-validation needs between 2 and {} folds",
                self.n_folds,
                folds::MAX_FOLDS
            )));
        }
        if self.lambda_grid.is_empty() || self.lambda_grid.iter().any(|&l| !(l > 0.0 && l.is_finite())) {
            return Err(Error::config(
                "the probe regularisation grid needs at least one value, all finite and > 0",
            ));
        }
        validate_solver(&self.solver)
    }
}

/// A probe for one target with its cross-validation record.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Probe {
    /// The model refitted on all training records at the chosen lambda.
    pub model: LogisticModel,
    /// Mean held-out AUROC over the scorable folds, per grid value (same order as
    /// [`TrainedProbes::lambdas`]); None where no fold was scorable.
    pub cv_auroc: Vec<Option<f64>>,
    /// Folds whose held-out part had both classes (and whose fitting part too).
    pub cv_folds_scored: usize,
    /// Index into [`TrainedProbes::lambdas`] of the chosen value.
    pub chosen: usize,
}

/// Probes for several targets trained together.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TrainedProbes {
    /// The absolute lambda grid that was searched, strong to weak.
    pub lambdas: Vec<f64>,
    /// Mean feature variance of the training features (the grid's unit).
    pub mean_feature_variance: f64,
    /// Folds used.
    pub n_folds: usize,
    /// One probe per target, in input order.
    pub probes: Vec<Probe>,
    /// Most L-BFGS iterations any model needed, per grid value (warm-started path).
    pub iterations: Vec<usize>,
    /// Models fitted in all (targets x (folds + 1) x grid values, less unfittable folds).
    pub fits: usize,
    /// Fits that stopped at `max_iter` or stalled before reaching the tolerance.
    pub fits_not_converged: usize,
}

/// Train one probe per target on `x` with regularisation chosen by patient-grouped k-fold
/// cross-validation. `labels[t][i]` as in [`fit_logistic`]; `patients[i]` is the patient
/// of record i. Every target needs both classes among its labelled records.
pub fn train_probes(
    x: Features<'_, f32>,
    labels: &[&[Option<bool>]],
    patients: &[u32],
    config: &ProbeConfig,
) -> Result<TrainedProbes> {
    config.validate()?;
    let n = x.n();
    if patients.len() != n {
        return Err(Error::config(format!("probe: {} patient ids for {n} records", patients.len())));
    }
    check_labels(n, labels, None)?;
    let folds = patient_folds(patients, config.n_folds, config.seed)?;
    let n_targets = labels.len();
    let class_counts = |t: usize, pick: &dyn Fn(usize) -> bool| {
        let (mut pos, mut neg) = (0, 0);
        for i in (0..n).filter(|&i| pick(i)) {
            match labels[t][i] {
                Some(true) => pos += 1,
                Some(false) => neg += 1,
                None => {}
            }
        }
        (pos, neg)
    };
    // Columns: per target the full fit, then each fold whose fitting part has both classes
    // (a held-out part without both classes is fitted anyway only if scorable: skip it).
    let mut specs = Vec::new();
    for t in 0..n_targets {
        specs.push(ColumnSpec { target: t, held_out: None });
        for f in 0..config.n_folds as u8 {
            let fit = class_counts(t, &|i| folds[i] != f);
            let held = class_counts(t, &|i| folds[i] == f);
            if fit.0 > 0 && fit.1 > 0 && held.0 > 0 && held.1 > 0 {
                specs.push(ColumnSpec { target: t, held_out: Some(f) });
            }
        }
    }
    let mut batch = Batch::new(x, labels, Some(&folds), &specs, &vec![0.0; specs.len()], config.solver);
    let unit = batch.mean_variance();
    let mut grid = config.lambda_grid.clone();
    grid.sort_by(|a, b| b.total_cmp(a));
    let lambdas: Vec<f64> = grid.iter().map(|g| g * unit).collect();

    let mut cv_auroc = vec![vec![None; lambdas.len()]; n_targets];
    let mut folds_scored = vec![0usize; n_targets];
    let mut snapshots: Vec<Vec<Option<LogisticModel>>> = vec![vec![None; lambdas.len()]; n_targets];
    let mut iterations = Vec::with_capacity(lambdas.len());
    let mut not_converged = 0;
    for (g, &lambda) in lambdas.iter().enumerate() {
        batch.set_lambdas(&vec![lambda; specs.len()]);
        batch.solve();
        iterations.push((0..specs.len()).map(|j| batch.status(j).0).max().unwrap_or(0));
        not_converged += (0..specs.len()).filter(|&j| !batch.status(j).1).count();
        let held_out_aurocs: Vec<(usize, f64)> = specs
            .par_iter()
            .enumerate()
            .filter_map(|(j, spec)| spec.held_out.map(|f| (j, spec.target, f)))
            .map(|(j, t, f)| {
                let rows: Vec<usize> = (0..n).filter(|&i| folds[i] == f && labels[t][i].is_some()).collect();
                let scores: Vec<f64> = rows.iter().map(|&i| batch.logits(j)[i].to_f64()).collect();
                let truth: Vec<bool> = rows.iter().map(|&i| labels[t][i] == Some(true)).collect();
                auroc(&scores, &truth).map(|a| (t, a))
            })
            .collect::<Result<_>>()?;
        let mut sums = vec![(0.0, 0usize); n_targets];
        for (t, a) in held_out_aurocs {
            sums[t].0 += a;
            sums[t].1 += 1;
        }
        for (j, spec) in specs.iter().enumerate() {
            if spec.held_out.is_none() {
                snapshots[spec.target][g] = Some(model_of(&batch, j));
            }
        }
        for t in 0..n_targets {
            folds_scored[t] = sums[t].1;
            if sums[t].1 > 0 {
                cv_auroc[t][g] = Some(sums[t].0 / sums[t].1 as f64);
            }
        }
    }
    let probes = (0..n_targets)
        .map(|t| {
            // Highest mean held-out AUROC; ties go to the stronger regularisation (earlier).
            // Without any scorable fold, the middle of the grid.
            let chosen = cv_auroc[t]
                .iter()
                .enumerate()
                .filter_map(|(g, a)| a.map(|a| (g, a)))
                .fold(None, |best: Option<(usize, f64)>, (g, a)| match best {
                    Some((_, b)) if b >= a => best,
                    _ => Some((g, a)),
                })
                .map_or(lambdas.len() / 2, |(g, _)| g);
            let model = snapshots[t][chosen].take().expect("every grid value has a full fit");
            Probe { model, cv_auroc: cv_auroc[t].clone(), cv_folds_scored: folds_scored[t], chosen }
        })
        .collect();
    Ok(TrainedProbes {
        lambdas,
        mean_feature_variance: unit,
        n_folds: config.n_folds,
        probes,
        iterations,
        fits: specs.len() * config.lambda_grid.len(),
        fits_not_converged: not_converged,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    const REFERENCE: &str = include_str!("../../tests/data/logistic_reference.json");

    struct Fixture {
        x: Vec<f32>,
        n: usize,
        d: usize,
        labels: Vec<Vec<Option<bool>>>,
        targets: Vec<Value>,
    }

    fn fixture() -> Fixture {
        let r: Value = serde_json::from_str(REFERENCE).unwrap();
        let x: Vec<f32> =
            r["features"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap() as f32).collect();
        let labels = r["labels"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| {
                t.as_array()
                    .unwrap()
                    .iter()
                    .map(|v| match v.as_i64().unwrap() {
                        1 => Some(true),
                        0 => Some(false),
                        _ => None,
                    })
                    .collect()
            })
            .collect();
        Fixture {
            x,
            n: r["n"].as_u64().unwrap() as usize,
            d: r["d"].as_u64().unwrap() as usize,
            labels,
            targets: r["targets"].as_array().unwrap().clone(),
        }
    }

    fn sigmoid(z: f64) -> f64 {
        1.0 / (1.0 + (-z).exp())
    }

    /// Largest deviations from scikit-learn 1.9.1 (tests/data/reference_logistic.py):
    /// (coefficients relative to the largest |coef|, intercept, probabilities, objective).
    fn deviations<T: Element>(f: &Fixture, x: Features<'_, T>, tol: f64) -> Vec<(f64, f64, f64, f64)> {
        let labels: Vec<&[Option<bool>]> = f.labels.iter().map(Vec::as_slice).collect();
        let lambdas: Vec<f64> = f.targets.iter().map(|t| t["lambda"].as_f64().unwrap()).collect();
        let opts = SolverOptions { tol, max_iter: 2000, memory: 10 };
        let models = fit_logistic(x, &labels, &lambdas, opts).unwrap();
        models
            .iter()
            .zip(&f.targets)
            .map(|(m, t)| {
                assert!(m.converged, "{m:?}");
                assert_eq!(m.n_train as u64, t["n_train"].as_u64().unwrap());
                assert!((m.sklearn_c() - t["sklearn_C"].as_f64().unwrap()).abs() < 1e-9 * m.sklearn_c());
                let coef: Vec<f64> =
                    t["coef"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
                let scale = coef.iter().fold(0.0f64, |a, c| a.max(c.abs()));
                let coef_dev =
                    m.weights.iter().zip(&coef).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max) / scale;
                let intercept_dev = (m.intercept - t["intercept"].as_f64().unwrap()).abs();
                let prob: Vec<f64> =
                    t["probability"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
                let prob_dev = (0..f.n)
                    .map(|i| {
                        let z: f64 =
                            (0..f.d).map(|r| f64::from(f.x[i * f.d + r]) * m.weights[r]).sum::<f64>()
                                + m.intercept;
                        (sigmoid(z) - prob[i]).abs()
                    })
                    .fold(0.0, f64::max);
                let objective_dev = (m.objective - t["objective"].as_f64().unwrap()).abs();
                (coef_dev, intercept_dev, prob_dev, objective_dev)
            })
            .collect()
    }

    #[test]
    fn f64_fit_matches_sklearn_to_solver_precision() {
        let f = fixture();
        let x64: Vec<f64> = f.x.iter().map(|&v| f64::from(v)).collect();
        for (t, (coef, intercept, prob, objective)) in
            deviations(&f, Features::new(&x64, f.n, f.d).unwrap(), 1e-11).into_iter().enumerate()
        {
            // Measured: coef <= 1.1e-10, intercept <= 4.5e-10, probability <= 1.9e-10,
            // objective <= 3e-16 (both solvers stop at |grad| ~ 1e-11..1e-12).
            assert!(
                coef < 1e-9 && intercept < 5e-9 && prob < 1e-9 && objective < 1e-14,
                "target {t}: {coef:e} {intercept:e} {prob:e} {objective:e}"
            );
        }
    }

    #[test]
    fn f32_fit_matches_sklearn_to_f32_rounding() {
        let f = fixture();
        for (t, (coef, intercept, prob, objective)) in
            deviations(&f, Features::new(&f.x, f.n, f.d).unwrap(), 1e-7).into_iter().enumerate()
        {
            // The GEMMs and the per-row logistic arithmetic run in f32 (unit roundoff 6e-8):
            // gradients carry errors of ~1e-8, amplified by the inverse Hessian (smallest
            // eigenvalue ~ lambda = 3e-4..1e-2); the objective is summed from f32 logits.
            // Measured: coef <= 2.4e-6 (relative), intercept <= 5.5e-6, probability
            // <= 1.6e-6, objective <= 5.8e-9. Tolerances leave a factor of 3 or more.
            assert!(
                coef < 1.5e-5 && intercept < 4e-5 && prob < 1e-5 && objective < 2e-8,
                "target {t}: {coef:e} {intercept:e} {prob:e} {objective:e}"
            );
        }
    }

    #[test]
    fn cross_validated_path_ends_where_a_cold_fit_does() {
        let f = fixture();
        let x = Features::new(&f.x, f.n, f.d).unwrap();
        let labels: Vec<&[Option<bool>]> = f.labels.iter().map(Vec::as_slice).collect();
        let patients: Vec<u32> = (0..f.n as u32).map(|i| i / 2).collect();
        let mut config = ProbeConfig::default();
        config.solver.tol = 1e-7;
        let trained = train_probes(x, &labels, &patients, &config).unwrap();
        assert_eq!(trained.lambdas.len(), 9);
        assert!(trained.lambdas.windows(2).all(|w| w[0] > w[1]), "strong to weak");
        assert_eq!(trained.fits_not_converged, 0);
        for (t, probe) in trained.probes.iter().enumerate() {
            // the chosen value has the best mean held-out AUROC; ties go to the stronger
            let best = probe.cv_auroc.iter().flatten().fold(0.0f64, |a, &b| a.max(b));
            assert_eq!(probe.cv_auroc[probe.chosen], Some(best));
            assert!(probe.cv_auroc[..probe.chosen].iter().flatten().all(|&a| a < best));
            assert_eq!(probe.cv_folds_scored, 5);
            // Warm-started path (with corrected L-BFGS pairs) == cold fit at that lambda, to
            // what f32 allows: the objective is evaluated from f32 logits (rounding ~1e-8),
            // and |grad| <= 1e-7 bounds the weight gap by ~|grad| / lambda (lambda here is
            // down to 1e-4 of the feature variance, so weights may differ in the 5th digit).
            let cold = fit_logistic(x, &labels[t..t + 1], &[probe.model.lambda], config.solver).unwrap();
            assert!(
                (probe.model.objective - cold[0].objective).abs() < 2e-8,
                "target {t}: {} vs {} (lambda {}, grads {} {})",
                probe.model.objective,
                cold[0].objective,
                probe.model.lambda,
                probe.model.gradient_max_abs,
                cold[0].gradient_max_abs
            );
            let scale = cold[0].weights.iter().fold(0.0f64, |a, w| a.max(w.abs()));
            for (a, b) in probe.model.weights.iter().zip(&cold[0].weights) {
                assert!((a - b).abs() < 1e-3 * scale, "target {t}: {a} vs {b}");
            }
            let scores = decision_scores(&[&probe.model, &cold[0]], x).unwrap();
            let gap = scores[0].iter().zip(&scores[1]).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max);
            assert!(gap < 1e-3, "target {t}: logits differ by {gap}");
        }
    }

    #[test]
    fn unreachable_tolerance_stalls_quickly_instead_of_spinning() {
        let f = fixture();
        let x = Features::new(&f.x, f.n, f.d).unwrap();
        let labels: Vec<&[Option<bool>]> = f.labels.iter().map(Vec::as_slice).collect();
        let lambdas: Vec<f64> = f.targets.iter().map(|t| t["lambda"].as_f64().unwrap()).collect();
        let opts = SolverOptions { tol: 1e-14, max_iter: 10_000, memory: 10 };
        for m in fit_logistic(x, &labels, &lambdas, opts).unwrap() {
            assert!(!m.converged && m.iterations < 200, "{} iterations", m.iterations);
            assert!(m.gradient_max_abs < 1e-6, "still close to the optimum: {}", m.gradient_max_abs);
        }
    }

    #[test]
    fn bad_probe_inputs_are_rejected() {
        let x = [0.5f32, 1.0, 0.1, 0.3];
        let features = Features::new(&x, 2, 2).unwrap();
        assert!(Features::new(&x, 3, 2).unwrap_err().to_string().contains("shape (3, 2)"));
        let one_class = [Some(true), Some(true)];
        let err = fit_logistic(features, &[&one_class], &[1.0], SolverOptions::default()).unwrap_err();
        assert!(err.to_string().contains("2 positive and 0 negative"), "{err}");
        let ok = [Some(true), Some(false)];
        assert!(fit_logistic(features, &[&ok], &[0.0], SolverOptions::default()).is_err());
        let config = ProbeConfig { lambda_grid: vec![], ..Default::default() };
        assert!(config.validate().unwrap_err().to_string().contains("grid"));
        let config = ProbeConfig { n_folds: 1, ..Default::default() };
        assert!(config.validate().unwrap_err().to_string().contains("--folds 1"));
        assert!(train_probes(features, &[&ok], &[0, 1], &ProbeConfig::default())
            .unwrap_err()
            .to_string()
            .contains("only 2 patients"));
    }
}
