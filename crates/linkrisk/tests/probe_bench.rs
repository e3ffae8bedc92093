//! Probe training time at the issue's scale: 40,000 records x 512 features x 14 findings.
//! Ignored by default (a measurement, not a test). Run:
//!
//! ```text
//! cargo test --release -p linkrisk --test probe_bench -- --ignored --nocapture
//! ```
//!
//! Prints the time of one fit of all 14 targets at a fixed lambda and of the full
//! cross-validated training (5 patient-grouped folds x 9 lambdas + refit), with iteration
//! counts and held-out AUROCs so a fast-but-wrong solver shows. Figures measured on the
//! 2-core development machine are in docs/METHODS.md ("Probes and utility"): about 1.3 s
//! CPU for the single fit and 9 s CPU for the cross-validated training.

use std::time::Instant;

use linkrisk::metrics::auroc;
use linkrisk::probe::{fit_logistic, train_probes, Features, ProbeConfig, SolverOptions};
use linkrisk::rng;
use rand::Rng;
use rand_distr::{Distribution, StandardNormal};

/// CPU seconds (user + system) this process has used: on a shared machine wall time
/// depends on the other load, CPU time much less.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat.rsplit(')').next().unwrap_or("").split_whitespace().collect();
    // after the command name: state is field 0, utime 11, stime 12 (clock ticks, 100 Hz)
    let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(f64::NAN);
    (ticks(11) + ticks(12)) / 100.0
}

const N: usize = 40_000;
const DIM: usize = 512;
const TARGETS: usize = 14;
const LATENT: usize = 32;

/// Embedding-like features (shared offset, decaying spectrum, unit rows) with 14 targets
/// driven by a latent factor also present (noisily) in the features; 4 records per patient.
fn cohort() -> (Vec<f32>, Vec<Vec<Option<bool>>>, Vec<u32>) {
    let mut r = rng::stream(1, "probe-bench", 0);
    let basis: Vec<f32> = (0..LATENT * DIM).map(|_| StandardNormal.sample(&mut r)).collect();
    let offset: Vec<f32> = (0..DIM).map(|_| 3.0 * r.sample::<f32, _>(StandardNormal) / DIM as f32).collect();
    let readout: Vec<f64> = (0..LATENT * TARGETS).map(|_| StandardNormal.sample(&mut r)).collect();
    let prevalence_logit: Vec<f64> = (0..TARGETS).map(|t| -0.3 - 3.5 * t as f64 / TARGETS as f64).collect();
    let mut x = vec![0f32; N * DIM];
    let mut labels = vec![vec![None; N]; TARGETS];
    let patients: Vec<u32> = (0..N as u32).map(|i| i / 4).collect();
    let mut latent = vec![0f64; LATENT];
    for i in 0..N {
        if i % 4 == 0 {
            for v in latent.iter_mut() {
                *v = StandardNormal.sample(&mut r);
            }
        }
        let own: Vec<f64> = latent.iter().map(|&v| v + 0.5 * r.sample::<f64, _>(StandardNormal)).collect();
        let row = &mut x[i * DIM..(i + 1) * DIM];
        for (c, value) in row.iter_mut().enumerate() {
            let mut v = offset[c] + 0.6 * r.sample::<f32, _>(StandardNormal) / (1.0 + c as f32 / 16.0);
            for (l, &z) in own.iter().enumerate() {
                v += 0.15 * z as f32 * basis[l * DIM + c] / (1.0 + l as f32);
            }
            *value = v;
        }
        let norm = row.iter().map(|v| v * v).sum::<f32>().sqrt();
        row.iter_mut().for_each(|v| *v /= norm);
        for t in 0..TARGETS {
            let z: f64 = prevalence_logit[t]
                + own.iter().enumerate().map(|(l, &v)| v * readout[l * TARGETS + t]).sum::<f64>() * 0.4;
            let p = 1.0 / (1.0 + (-z).exp());
            let u: f64 = r.random();
            labels[t][i] = if r.random::<f64>() < 0.05 { None } else { Some(u < p) };
        }
    }
    (x, labels, patients)
}

#[test]
#[ignore = "measurement: run with --release -- --ignored --nocapture"]
fn probe_training_40k_x_512_x_14() {
    let t0 = Instant::now();
    let (x, labels, patients) = cohort();
    eprintln!("generated {N} x {DIM} x {TARGETS} in {:.2} s", t0.elapsed().as_secs_f64());
    let split = N * 4 / 5;
    let train = Features::new(&x[..split * DIM], split, DIM).unwrap();
    let test = Features::new(&x[split * DIM..], N - split, DIM).unwrap();
    let train_labels: Vec<&[Option<bool>]> = labels.iter().map(|l| &l[..split]).collect();
    eprintln!("threads {}", rayon::current_num_threads());

    // One fit of all targets at a fixed lambda, on all 40,000 rows.
    let all = Features::new(&x, N, DIM).unwrap();
    let all_labels: Vec<&[Option<bool>]> = labels.iter().map(Vec::as_slice).collect();
    let (t0, c0) = (Instant::now(), cpu_seconds());
    let models = fit_logistic(all, &all_labels, &[1e-5; TARGETS], SolverOptions::default()).unwrap();
    let single = t0.elapsed().as_secs_f64();
    let single_cpu = cpu_seconds() - c0;
    let iters: Vec<usize> = models.iter().map(|m| m.iterations).collect();
    eprintln!("single fit 40000 x 512 x 14 at lambda 1e-5: {single:.2} s wall, {single_cpu:.2} s CPU, iterations {iters:?}");
    assert!(models.iter().all(|m| m.converged));

    // Cross-validated training on the 32,000-record train part.
    let config = ProbeConfig::default();
    let (t0, c0) = (Instant::now(), cpu_seconds());
    let trained = train_probes(train, &train_labels, &patients[..split], &config).unwrap();
    let cv = t0.elapsed().as_secs_f64();
    let cv_cpu = cpu_seconds() - c0;
    let models: Vec<_> = trained.probes.iter().map(|p| &p.model).collect();
    let scores = linkrisk::probe::decision_scores(&models, test).unwrap();
    let mut aurocs = Vec::new();
    for (t, s) in scores.iter().enumerate() {
        let rows: Vec<usize> = (0..test.n()).filter(|&i| labels[t][split + i].is_some()).collect();
        let sc: Vec<f64> = rows.iter().map(|&i| s[i]).collect();
        let truth: Vec<bool> = rows.iter().map(|&i| labels[t][split + i] == Some(true)).collect();
        aurocs.push(auroc(&sc, &truth).unwrap());
    }
    eprintln!(
        "cross-validated training (32000 x 512 x 14, {} folds x {} lambdas, {} fits): {cv:.2} s wall, {cv_cpu:.2} s CPU",
        config.n_folds,
        config.lambda_grid.len(),
        trained.fits
    );
    eprintln!(
        "max iterations per lambda {:?}, fits not converged {}",
        trained.iterations, trained.fits_not_converged
    );
    eprintln!(
        "chosen lambda index per target {:?}",
        trained.probes.iter().map(|p| p.chosen).collect::<Vec<_>>()
    );
    eprintln!(
        "test AUROC per target {:?}",
        aurocs.iter().map(|a| (a * 1000.0).round() / 1000.0).collect::<Vec<_>>()
    );
    assert!(aurocs.iter().all(|&a| a > 0.6));
}
