//! Tests of the attacker's side data (issue 14): cross-fitted attacks against brute force
//! (every query attacked once, by an attacker fitted on the other folds), the rotated-view
//! test-only case, identity-corrected alignment in a shared space, ridge between views of
//! different dimensions, named attacks that cannot run, and bitwise determinism on any
//! number of threads.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

use super::tests::{align_tests_rotation, brute_hit, cosines, full_row, hub_pairs, mean, unit_rows};
use super::*;
use crate::audit::cross_fit::CrossFit;
use crate::engine::NoProgress;

fn paired_task<'a>(q: &'a [f32], g: &'a [f32], dq: usize, dg: usize, targets: &'a Targets) -> AttackTask<'a> {
    AttackTask {
        queries: Rows::new(q, targets.n_queries(), dq).unwrap(),
        gallery: Rows::new(g, targets.n_queries(), dg).unwrap(),
        targets,
        paired: true,
        neighbourhood_exclusions: false,
    }
}

/// `rows` (n x d, row-major) times the d x d row-major matrix `r`.
fn rotate(rows: &mut [f32], d: usize, r: &[f64]) {
    for row in rows.chunks_mut(d) {
        let rotated: Vec<f32> =
            (0..d).map(|j| (0..d).map(|k| f64::from(row[k]) * r[k * d + j]).sum::<f64>() as f32).collect();
        row.copy_from_slice(&rotated);
    }
}

/// One patient per pair, every patient its own: folds of the pairs.
fn pair_folds(n: usize, k: usize, seed: u64) -> CrossFit {
    CrossFit::by_patient(&(0..n as u32).collect::<Vec<_>>(), k, seed).unwrap()
}

fn row_at<'a>(c: &'a AttackComparison, name: &str, m: usize) -> &'a AttackRow {
    c.attacks
        .iter()
        .find(|r| r.name == name && r.leaked_pairs == Some(m) && r.pool_size.is_none())
        .unwrap_or_else(|| panic!("no {name} m={m} row: {:?}", c.skipped_attacks))
}

#[test]
fn cross_fitted_alignment_equals_a_per_fold_brute_force() {
    // Query view 6-d, gallery view 4-d (a plain semi-orthogonal Procrustes, no model
    // selection), 3 equal folds, m = every other fold's pair: fold f's map must be the
    // closed-form fit on exactly the other folds' pairs, applied to fold f only.
    let (n, dq, dg, k) = (60, 6, 4, 3);
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let mut q: Vec<f32> = (0..n * dq).map(|_| StandardNormal.sample(&mut rng)).collect();
    let mut g: Vec<f32> = (0..n)
        .flat_map(|i| {
            let x: Vec<f32> = q[i * dq..(i + 1) * dq].to_vec();
            let noise: Vec<f32> = (0..dg).map(|_| StandardNormal.sample(&mut rng)).collect();
            (0..dg).map(move |j| x[j] + 0.8 * x[(j + 2) % dq] + 0.6 * noise[j]).collect::<Vec<_>>()
        })
        .collect();
    unit_rows(&mut q, dq);
    unit_rows(&mut g, dg);
    let targets = Targets::identity(n);
    let task = paired_task(&q, &g, dq, dg, &targets);
    let folds = pair_folds(n, k, 5);
    assert_eq!(folds.sizes(), vec![20; 3]);
    let config = AttackConfig {
        attacks: vec![AttackName::Procrustes],
        leaked_pairs: vec![40, 41],
        pool_sizes: vec![],
        ..AttackConfig::default()
    };
    let c = compare(&task, Side::CrossFit { folds: &folds, reason: None }, &config, &NoProgress).unwrap();
    // Different dimensions: the cosine-based attacks are listed as skipped, with the reason.
    assert!(c.attacks.iter().all(|r| r.name == "procrustes"), "{:?}", c.attacks);
    let why = &c.skipped_attacks.iter().find(|s| s.name == "cosine").unwrap().reason;
    assert!(why.contains("6 dimensions") && why.contains("4"), "{why}");
    assert!(c.skipped_attacks.iter().any(|s| s.name == "procrustes" && s.leaked_pairs == Some(41)));
    let side = c.side.as_ref().unwrap();
    assert_eq!(
        (side.source.as_str(), side.folds, side.fold_sizes.clone()),
        ("cross_fit", Some(3), Some(vec![20; 3]))
    );

    let mut hits = vec![0.0; n];
    let mut attacked = vec![0; n];
    for f in 0..k {
        let others = folds.others(f);
        let (x, y) = (gather_rows(task.queries, &others), gather_rows(task.gallery, &others));
        // W = U V^T of X^T Y (6 x 4), brute force in f64 via faer's SVD.
        let m = faer::Mat::from_fn(dq, dg, |a, b| {
            others
                .iter()
                .enumerate()
                .map(|(i, _)| f64::from(x[i * dq + a]) * f64::from(y[i * dg + b]))
                .sum::<f64>()
        });
        let svd = m.thin_svd().unwrap();
        let w = svd.U() * svd.V().transpose();
        for q_i in folds.members(f) {
            let mapped: Vec<f64> =
                (0..dg).map(|b| (0..dq).map(|a| f64::from(q[q_i * dq + a]) * w[(a, b)]).sum()).collect();
            let scores: Vec<f64> =
                (0..n).map(|j| (0..dg).map(|b| mapped[b] * f64::from(g[j * dg + b])).sum::<f64>()).collect();
            hits[q_i] = brute_hit(&scores, &targets, q_i);
            attacked[q_i] += 1;
        }
    }
    assert!(attacked.iter().all(|&a| a == 1), "every query attacked once");
    let want = mean(hits.into_iter());
    let got = row_at(&c, "procrustes", 40);
    assert_eq!(got.n_queries, n);
    assert!((got.recall_at_1 - want).abs() < 1e-12, "{} vs brute force {want}", got.recall_at_1);
    assert!(want > 0.2, "the map links: {want}");
    let folds_used = got.parameters.folds.as_ref().unwrap();
    assert_eq!(folds_used.iter().map(|f| f.n_queries).sum::<usize>(), n);
}

#[test]
fn cross_fitted_temperature_and_query_bank_equal_brute_force() {
    let (dim, n, k) = (10, 45, 3);
    let (q, g) = hub_pairs(23, n, dim, 0.9);
    let targets = Targets::identity(n);
    let task = paired_task(&q, &g, dim, dim, &targets);
    let folds = pair_folds(n, k, 2);
    let grid = vec![4.0, 12.0, 40.0];
    let config = AttackConfig {
        attacks: vec![AttackName::InvertedSoftmax, AttackName::QbNorm],
        beta_grid: grid.clone(),
        pool_sizes: vec![],
        seed: 1,
        sizes: BlockSizes { block_rows: 7, chunk_cols: 9, memory_budget_bytes: 0 },
        ..AttackConfig::default()
    };
    let reason = "no train split";
    let c =
        compare(&task, Side::CrossFit { folds: &folds, reason: Some(reason) }, &config, &NoProgress).unwrap();
    assert_eq!(c.side.as_ref().unwrap().reason.as_deref(), Some(reason));

    let cos = cosines(&q, &g, dim);
    let argmax = |v: &[f64]| (0..v.len()).fold(0, |b, j| if v[j] > v[b] { j } else { b });
    // Inverted softmax over all attacked queries at each beta; fold f keeps the beta with the
    // best Recall@1 over the other folds' queries.
    let is_scores = |beta: f64| -> Vec<Vec<f64>> {
        let z: Vec<f64> = (0..n).map(|j| (0..n).map(|i| (beta * cos[i][j]).exp()).sum()).collect();
        (0..n).map(|i| (0..n).map(|j| (beta * cos[i][j]).exp() / z[j]).collect()).collect()
    };
    let per_beta: Vec<Vec<f64>> =
        grid.iter().map(|&b| (0..n).map(|i| brute_hit(&is_scores(b)[i], &targets, i)).collect()).collect();
    let chosen: Vec<usize> = (0..k)
        .map(|f| {
            let others = folds.others(f);
            let recall = |b: usize| others.iter().map(|&i| per_beta[b][i]).sum::<f64>();
            (0..grid.len()).fold(0, |best, b| if recall(b) > recall(best) { b } else { best })
        })
        .collect();
    let want_is = mean((0..n).map(|i| per_beta[chosen[folds.fold(i)]][i]));
    let row = full_row(&c, "inverted_softmax");
    assert!((row.recall_at_1 - want_is).abs() < 1e-12, "{} vs {want_is}", row.recall_at_1);
    assert_eq!(row.parameters.beta_source, Some("cross_fit"));
    let betas: Vec<f64> = row.parameters.folds.as_ref().unwrap().iter().map(|f| f.beta.unwrap()).collect();
    assert_eq!(betas, chosen.iter().map(|&b| grid[b]).collect::<Vec<_>>());
    // QB-Norm: fold f's bank is the other folds' queries, at fold f's beta.
    let want_qb = mean((0..n).map(|i| {
        let f = folds.fold(i);
        let beta = grid[chosen[f]];
        let bank = folds.others(f);
        let mut active = vec![false; n];
        for &b in &bank {
            active[argmax(&cos[b])] = true;
        }
        let scores: Vec<f64> = if active[argmax(&cos[i])] {
            let zb: Vec<f64> = (0..n).map(|j| bank.iter().map(|&b| (beta * cos[b][j]).exp()).sum()).collect();
            (0..n).map(|j| (beta * cos[i][j]).exp() / zb[j]).collect()
        } else {
            cos[i].clone()
        };
        brute_hit(&scores, &targets, i)
    }));
    let row = full_row(&c, "qb_norm");
    assert!((row.recall_at_1 - want_qb).abs() < 1e-12, "{} vs {want_qb}", row.recall_at_1);
    let banks: Vec<usize> =
        row.parameters.folds.as_ref().unwrap().iter().map(|f| f.bank_size.unwrap()).collect();
    assert_eq!(banks, (0..k).map(|f| folds.others(f).len()).collect::<Vec<_>>());
}

#[test]
fn rotated_test_only_view_is_relinked_by_cross_fitted_leaked_pairs() {
    // No side split at all: cosine is at chance on a rotated view; cross-fitted Procrustes
    // (leaked pairs from the other folds only) links it, and it is the strongest attack.
    let (dim, n) = (16, 400);
    let (q, mut g) = hub_pairs(31, n, dim, 0.5);
    rotate(&mut g, dim, &align_tests_rotation(8, dim));
    let targets = Targets::identity(n);
    let task = paired_task(&q, &g, dim, dim, &targets);
    let folds = pair_folds(n, 5, 0);
    let config = AttackConfig {
        attacks: AttackName::ALL.to_vec(),
        pool_sizes: vec![10, 100],
        ..AttackConfig::default()
    };
    let c = compare(&task, Side::CrossFit { folds: &folds, reason: None }, &config, &NoProgress).unwrap();
    let cosine = full_row(&c, "cosine").recall_at_1;
    assert!(cosine < 0.02, "rotated: cosine {cosine}");
    let procrustes = row_at(&c, "procrustes", 100).recall_at_1;
    assert!(
        procrustes >= 0.05 && procrustes >= 10.0 * cosine.max(1.0 / n as f64),
        "{procrustes} vs {cosine}"
    );
    assert!(matches!(c.strongest_attack, "procrustes" | "ridge"), "{}", c.strongest_attack);
    // m = 1000 exceeds the 320 pairs of the other folds: listed, not silently dropped.
    assert!(c
        .skipped_attacks
        .iter()
        .any(|s| s.name == "procrustes" && s.leaked_pairs == Some(1000) && s.reason.contains("320")));
    for name in ["inverted_softmax", "qb_norm", "ridge"] {
        assert!(c.attacks.iter().any(|r| r.name == name), "{name} ran");
    }
}

#[test]
fn identity_corrected_alignment_is_not_below_cosine_in_a_shared_space() {
    // Views in one space with noise: maps learned from scratch rank below cosine, the
    // identity-corrected ones do not fall below cosine's interval.
    let (dim, n, n_side) = (48, 500, 1000);
    let (q_all, g_all) = hub_pairs(41, n + n_side, dim, 1.2);
    let targets = Targets::identity(n);
    let side_targets = Targets::identity(n_side);
    let split = n * dim;
    let task = paired_task(&q_all[..split], &g_all[..split], dim, dim, &targets);
    let side = SideInfo {
        task: paired_task(&q_all[split..], &g_all[split..], dim, dim, &side_targets),
        source: "split train",
    };
    let config = AttackConfig {
        attacks: vec![AttackName::Procrustes, AttackName::Ridge],
        leaked_pairs: vec![10, 100, 1000],
        pool_sizes: vec![100],
        ..AttackConfig::default()
    };
    let c = compare(&task, Side::Separate(&side), &config, &NoProgress).unwrap();
    let cosine = full_row(&c, "cosine");
    for name in ["procrustes", "ridge"] {
        for m in [10, 100, 1000] {
            let r = row_at(&c, name, m);
            eprintln!(
                "shared space: {name} m={m} Recall@1 {:.4} ({:?}) vs cosine {:.4} [{:.4}, {:.4}]",
                r.recall_at_1,
                r.parameters.map.as_ref().map(|s| s.chosen),
                cosine.recall_at_1,
                cosine.ci95_recall_at_1[0],
                cosine.ci95_recall_at_1[1]
            );
            assert!(
                r.recall_at_1 >= cosine.ci95_recall_at_1[0],
                "{name} m={m}: {} below cosine {} [{}, {}]",
                r.recall_at_1,
                cosine.recall_at_1,
                cosine.ci95_recall_at_1[0],
                cosine.ci95_recall_at_1[1]
            );
            assert!(r.parameters.map.is_some(), "{name} m={m} records its selection");
        }
    }
    // The plain Procrustes map from 100 pairs, without the correction, is far below cosine.
    let order: Vec<usize> = (0..100).collect();
    let x = gather_rows(side.task.queries, &order);
    let y = gather_rows(side.task.gallery, &order);
    let plain =
        align::procrustes(Rows::new(&x, 100, dim).unwrap(), Rows::new(&y, 100, dim).unwrap()).unwrap();
    let mapped = plain.apply(task.queries).unwrap();
    let scores = cosines(&mapped, &g_all[..split], dim);
    let uncorrected = mean((0..n).map(|i| brute_hit(&scores[i], &targets, i)));
    eprintln!("shared space: uncorrected Procrustes m=100 Recall@1 {uncorrected}");
    assert!(
        uncorrected < cosine.ci95_recall_at_1[0],
        "uncorrected {uncorrected} vs cosine {}",
        cosine.recall_at_1
    );
}

#[test]
fn ridge_links_768_dimensional_features_to_512_dimensional_embeddings() {
    // Features and embeddings of two models: a shared 24-d latent seen through two random
    // linear maps (768-d and 512-d) with noise. No cosine between them; a 768 x 512 ridge map
    // from leaked pairs links them.
    let (n, n_side, latent, d1, d2) = (300, 400, 24, 768, 512);
    let mut rng = ChaCha8Rng::seed_from_u64(12);
    let mut normal = || -> f32 { StandardNormal.sample(&mut rng) };
    let a: Vec<f32> = (0..latent * d1).map(|_| normal()).collect();
    let b: Vec<f32> = (0..latent * d2).map(|_| normal()).collect();
    let (mut x, mut y) = (Vec::new(), Vec::new());
    for _ in 0..n + n_side {
        let z: Vec<f32> = (0..latent).map(|_| normal()).collect();
        x.extend((0..d1).map(|j| (0..latent).map(|l| z[l] * a[l * d1 + j]).sum::<f32>() + 2.0 * normal()));
        y.extend((0..d2).map(|j| (0..latent).map(|l| z[l] * b[l * d2 + j]).sum::<f32>() + 2.0 * normal()));
    }
    unit_rows(&mut x, d1);
    unit_rows(&mut y, d2);
    let targets = Targets::identity(n);
    let side_targets = Targets::identity(n_side);
    let task = paired_task(&x[..n * d1], &y[..n * d2], d1, d2, &targets);
    let side = SideInfo {
        task: paired_task(&x[n * d1..], &y[n * d2..], d1, d2, &side_targets),
        source: "split train",
    };
    let config = AttackConfig {
        attacks: vec![AttackName::Ridge, AttackName::Procrustes],
        named: vec![AttackName::Ridge],
        leaked_pairs: vec![400],
        pool_sizes: vec![10],
        ..AttackConfig::default()
    };
    let c = compare(&task, Side::Separate(&side), &config, &NoProgress).unwrap();
    let ridge = row_at(&c, "ridge", 400);
    eprintln!("ridge 768 -> 512, m=400: Recall@1 {}", ridge.recall_at_1);
    assert!(ridge.recall_at_1 > 0.3, "ridge 768 -> 512: {}", ridge.recall_at_1);
    assert!(ridge.parameters.lambda.unwrap() > 0.0 && ridge.parameters.map.is_none(), "plain d1 x d2 fit");
    assert!(ridge.control_recall_at_1 < 0.03, "{}", ridge.control_recall_at_1);
    assert!(c.strongest_attack == "ridge" || c.strongest_attack == "procrustes");
    assert!(c.skipped_attacks.iter().any(|s| s.name == "cosine"));
    // Cosine named explicitly cannot run between 768-d and 512-d views: an error.
    let named = AttackConfig { named: vec![AttackName::Cosine], ..config.clone() };
    let err = compare(&task, Side::Separate(&side), &named, &NoProgress).unwrap_err().to_string();
    assert!(err.contains("--attack cosine") && err.contains("768 dimensions"), "{err}");
}

#[test]
fn named_attacks_that_cannot_run_are_errors_and_all_lists_them() {
    let (dim, n) = (8, 40);
    let (q, g) = hub_pairs(5, n, dim, 0.8);
    let targets = Targets::identity(n);
    let task = paired_task(&q, &g, dim, dim, &targets);
    let base = AttackConfig { pool_sizes: vec![10], ..AttackConfig::default() };
    for (attack, needle) in [(AttackName::Procrustes, "--attack-side"), (AttackName::QbNorm, "query bank")] {
        let config = AttackConfig { attacks: vec![attack], named: vec![attack], ..base.clone() };
        let err =
            compare(&task, Side::None("--attack-side none"), &config, &NoProgress).unwrap_err().to_string();
        assert!(err.contains(&format!("--attack {}", attack.as_str())) && err.contains(needle), "{err}");
        assert!(err.contains("--attack-side none"), "the reason: {err}");
    }
    // Leaked pairs beyond what the other folds hold: an error naming the flag to lower.
    let folds = pair_folds(n, 4, 0);
    let config = AttackConfig {
        attacks: vec![AttackName::Ridge],
        named: vec![AttackName::Ridge],
        leaked_pairs: vec![1000],
        ..base.clone()
    };
    let err = compare(&task, Side::CrossFit { folds: &folds, reason: None }, &config, &NoProgress)
        .unwrap_err()
        .to_string();
    assert!(err.contains("m=1000") && err.contains("only 30") && err.contains("--leaked-pairs"), "{err}");
    // Under `all` (nothing named) the same attacks are listed, and the comparison runs.
    let config = AttackConfig { attacks: AttackName::ALL.to_vec(), ..base };
    let c = compare(&task, Side::None("--attack-side none"), &config, &NoProgress).unwrap();
    let skipped: Vec<&str> = c.skipped_attacks.iter().map(|s| s.name).collect();
    assert_eq!(skipped, vec!["qb_norm", "procrustes", "ridge"]);
    assert!(c.skipped_attacks.iter().all(|s| s.reason.contains("--attack-side none")));
    assert_eq!(AttackName::parse_named(&["all", "ridge"]).unwrap(), vec![AttackName::Ridge]);
    assert!(AttackName::parse_named(&["all"]).unwrap().is_empty());
    assert_eq!(AttackName::parse_named(&["cosine"]).unwrap(), vec![AttackName::Cosine]);
}

#[test]
fn cross_fitted_comparison_is_bitwise_the_same_on_one_two_and_three_threads() {
    let (dim, n) = (16, 300);
    let (q, mut g) = hub_pairs(13, n, dim, 0.7);
    rotate(&mut g, dim, &align_tests_rotation(2, dim));
    let targets = Targets::identity(n);
    let task = paired_task(&q, &g, dim, dim, &targets);
    let folds = pair_folds(n, 5, 9);
    let config = AttackConfig {
        attacks: AttackName::ALL.to_vec(),
        leaked_pairs: vec![10, 100],
        pool_sizes: vec![10],
        sizes: BlockSizes { block_rows: 32, chunk_cols: 64, memory_budget_bytes: 0 },
        ..AttackConfig::default()
    };
    let run = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
        pool.install(|| {
            let c =
                compare(&task, Side::CrossFit { folds: &folds, reason: None }, &config, &NoProgress).unwrap();
            serde_json::to_string(&c).unwrap()
        })
    };
    let one = run(1);
    assert_eq!(one, run(2), "2 threads");
    assert_eq!(one, run(3), "3 threads");
    assert!(one.contains("\"source\":\"cross_fit\""));
}
