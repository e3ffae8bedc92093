//! Attack tests: every attack against an O(n^2) brute force written independently of the
//! engine, and the gains the attacks must show on synthetic hub-prone and rotated
//! embeddings.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

use super::*;
use crate::engine::{rank, BlockSizes, Gallery, NoProgress, RankOptions};
use crate::metrics::retrieval::{expected_pool_hit_probability, hit_probability};
use crate::rng;

pub(super) fn unit_rows(data: &mut [f32], dim: usize) {
    for row in data.chunks_mut(dim) {
        let norm = row.iter().map(|x| f64::from(*x) * f64::from(*x)).sum::<f64>().sqrt() as f32;
        row.iter_mut().for_each(|x| *x /= norm);
    }
}

/// Hub-prone paired embeddings: query i = z_i + noise + a mix of `H` shared "hub"
/// directions; its match = z_i + noise, plus (for a random 10% of items, the hubs) a strong
/// component along one hub direction. Hubs are close to every query and steal matches under
/// plain cosine.
pub(crate) fn hub_pairs(seed: u64, n: usize, dim: usize, sigma: f32) -> (Vec<f32>, Vec<f32>) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let hubs = 3;
    let scale = 1.0 / (dim as f32).sqrt();
    let normal = |rng: &mut ChaCha8Rng| -> f32 { StandardNormal.sample(rng) };
    let mut directions: Vec<f32> = (0..hubs * dim).map(|_| normal(&mut rng)).collect();
    unit_rows(&mut directions, dim);
    let (mut queries, mut gallery) = (Vec::with_capacity(n * dim), Vec::with_capacity(n * dim));
    for _ in 0..n {
        let z: Vec<f32> = (0..dim).map(|_| normal(&mut rng) * scale).collect();
        let mix: Vec<f32> = (0..hubs).map(|_| rng.random_range(0.0..0.7)).collect();
        let hub = rng.random_bool(0.1).then(|| rng.random_range(0..hubs));
        for j in 0..dim {
            let shared: f32 = (0..hubs).map(|h| mix[h] * directions[h * dim + j]).sum();
            queries.push(z[j] + sigma * scale * normal(&mut rng) + shared);
        }
        for j in 0..dim {
            let h = hub.map_or(0.0, |h| 1.5 * directions[h * dim + j]);
            gallery.push(z[j] + sigma * scale * normal(&mut rng) + h);
        }
    }
    unit_rows(&mut queries, dim);
    unit_rows(&mut gallery, dim);
    (queries, gallery)
}

pub(super) fn dot(a: &[f32], b: &[f32]) -> f64 {
    a.iter().zip(b).map(|(x, y)| f64::from(*x) * f64::from(*y)).sum()
}

/// Brute-force cosine matrix (queries x gallery) in f64.
pub(super) fn cosines(q: &[f32], g: &[f32], dim: usize) -> Vec<Vec<f64>> {
    q.chunks(dim).map(|x| g.chunks(dim).map(|y| dot(x, y)).collect()).collect()
}

/// Brute-force P(hit@1) of the anchor under `score`, over the non-special gallery items.
pub(super) fn brute_hit(scores: &[f64], targets: &Targets, q: usize) -> f64 {
    let anchor = targets.anchor(q).unwrap();
    let (special, _) = targets.special(q);
    let s = scores[anchor];
    let mut greater = 0;
    let mut tied = 0;
    for (g, &x) in scores.iter().enumerate() {
        if special.binary_search(&(g as u32)).is_ok() {
            continue;
        }
        greater += u64::from(x > s);
        tied += u64::from(x == s);
    }
    hit_probability(greater, tied, 1)
}

pub(super) fn mean(v: impl Iterator<Item = f64>) -> f64 {
    let v: Vec<f64> = v.collect();
    v.iter().sum::<f64>() / v.len() as f64
}

pub(super) fn full_row<'a>(c: &'a AttackComparison, name: &str) -> &'a AttackRow {
    c.attacks.iter().find(|r| r.name == name && r.pool_size.is_none() && r.leaked_pairs.is_none()).unwrap()
}

#[test]
fn hubness_corrections_and_control_equal_brute_force() {
    let (dim, n, n_side) = (10, 40, 25);
    let (q_all, g_all) = hub_pairs(21, n + n_side, dim, 0.9);
    let (q, g) = (&q_all[..n * dim], &g_all[..n * dim]);
    let (sq, sg) = (&q_all[n * dim..], &g_all[n * dim..]);
    let targets = Targets::identity(n);
    let side_targets = Targets::identity(n_side);
    let task = AttackTask {
        queries: Rows::new(q, n, dim).unwrap(),
        gallery: Rows::new(g, n, dim).unwrap(),
        targets: &targets,
        paired: true,
        neighbourhood_exclusions: false,
    };
    let side = SideInfo {
        task: AttackTask {
            queries: Rows::new(sq, n_side, dim).unwrap(),
            gallery: Rows::new(sg, n_side, dim).unwrap(),
            targets: &side_targets,
            paired: true,
            neighbourhood_exclusions: false,
        },
        source: "test",
    };
    let (k, beta) = (4, 12.0);
    let config = AttackConfig {
        attacks: vec![AttackName::Csls, AttackName::InvertedSoftmax, AttackName::QbNorm],
        csls_k: k,
        beta_grid: vec![beta],
        pool_sizes: vec![5, 20],
        seed: 3,
        sizes: BlockSizes { block_rows: 7, chunk_cols: 9, memory_budget_bytes: 0 },
        ..AttackConfig::default()
    };
    let c = compare(&task, Side::Separate(&side), &config, &NoProgress).unwrap();

    // Brute force, O(n^2), in f64.
    let cos = cosines(q, g, dim);
    let bank = cosines(sq, g, dim); // bank x gallery
    let top_mean = |v: &mut Vec<f64>, k: usize| {
        v.sort_by(|a, b| b.total_cmp(a));
        v[..k].iter().sum::<f64>() / k as f64
    };
    let r_q: Vec<f64> = (0..n).map(|i| top_mean(&mut cos[i].clone(), k)).collect();
    let r_g: Vec<f64> = (0..n).map(|j| top_mean(&mut (0..n).map(|i| cos[i][j]).collect(), k)).collect();
    let csls: Vec<Vec<f64>> =
        (0..n).map(|i| (0..n).map(|j| 2.0 * cos[i][j] - r_q[i] - r_g[j]).collect()).collect();
    let z: Vec<f64> = (0..n).map(|j| (0..n).map(|i| (beta * cos[i][j]).exp()).sum()).collect();
    let inv: Vec<Vec<f64>> =
        (0..n).map(|i| (0..n).map(|j| (beta * cos[i][j]).exp() / z[j]).collect()).collect();
    let zb: Vec<f64> = (0..n).map(|j| (0..n_side).map(|b| (beta * bank[b][j]).exp()).sum()).collect();
    let argmax = |v: &[f64]| (0..v.len()).fold(0, |b, j| if v[j] > v[b] { j } else { b });
    let active: Vec<bool> = {
        let mut a = vec![false; n];
        for row in &bank {
            a[argmax(row)] = true;
        }
        a
    };
    let qb: Vec<Vec<f64>> = (0..n)
        .map(|i| {
            if active[argmax(&cos[i])] {
                (0..n).map(|j| (beta * cos[i][j]).exp() / zb[j]).collect()
            } else {
                cos[i].clone()
            }
        })
        .collect();
    let decoys = decoy_targets(&targets, config.seed).unwrap();
    for (name, scores) in [("cosine", &cos), ("csls", &csls), ("inverted_softmax", &inv), ("qb_norm", &qb)] {
        let row = full_row(&c, name);
        let want = mean((0..n).map(|i| brute_hit(&scores[i], &targets, i)));
        assert!((row.recall_at_1 - want).abs() < 1e-12, "{name}: {} vs brute force {want}", row.recall_at_1);
        let control = mean((0..n).map(|i| brute_hit(&scores[i], &decoys.targets, i)));
        assert!((row.control_recall_at_1 - control).abs() < 1e-12, "{name} control");
        assert!((row.normalized_risk - (want - control) / (1.0 - control)).abs() < 1e-12);
        // Pools: the exact hypergeometric expectation, by brute force (no ties here).
        let pool = c.attacks.iter().find(|r| r.name == name && r.pool_size == Some(5)).unwrap();
        let want = mean((0..n).map(|i| {
            let s = scores[i][i];
            let beaten = (0..n).filter(|&j| j != i && scores[i][j] > s).count() as f64;
            // P(no beater among 4 draws from n-1 negatives).
            (0..4)
                .map(|t| (n as f64 - 1.0 - beaten - t as f64) / (n as f64 - 1.0 - t as f64))
                .product::<f64>()
        }));
        assert!((pool.recall_at_1 - want).abs() < 1e-9, "{name} pool: {} vs {want}", pool.recall_at_1);
        assert_eq!(pool.chance_at_1, 0.2);
    }
    let qb_row = full_row(&c, "qb_norm");
    let active_share = (0..n).filter(|&i| active[argmax(&cos[i])]).count() as f64 / n as f64;
    assert_eq!(qb_row.parameters.activated_fraction, Some(active_share));
    assert_eq!(qb_row.parameters.beta, Some(beta));
    assert_eq!(c.side.as_ref().unwrap().beta_curve.len(), 1);
}

#[test]
fn control_counts_equal_the_engine_on_decoy_targets() {
    // Studies of 1-3 records sharing one report vector (exact duplicates), study-level
    // exclusions: the reducer's counts must equal a ranking pass against the decoys.
    let mut rng = ChaCha8Rng::seed_from_u64(4);
    let dim = 6;
    let (mut q, mut g, mut study) = (Vec::new(), Vec::new(), Vec::new());
    let mut s = 0;
    while study.len() < 60 {
        let report: Vec<f32> = (0..dim).map(|_| StandardNormal.sample(&mut rng)).collect();
        for _ in 0..rng.random_range(1..4) {
            g.extend_from_slice(&report);
            q.extend(report.iter().map(|x| {
                let noise: f32 = StandardNormal.sample(&mut rng);
                x + noise * 0.7
            }));
            study.push(s);
        }
        s += 1;
    }
    let n = study.len();
    unit_rows(&mut q, dim);
    unit_rows(&mut g, dim);
    let mut b = Targets::builder(n);
    for i in 0..n {
        let ex: Vec<u32> =
            (0..n as u32).filter(|&j| j as usize != i && study[j as usize] == study[i]).collect();
        b.push(&[i as u32], &ex).unwrap();
    }
    let targets = b.build();
    let decoys = decoy_targets(&targets, 9).unwrap();
    let (qr, gr) = (Rows::new(&q, n, dim).unwrap(), Rows::new(&g, n, dim).unwrap());
    let gallery = Gallery::new(gr);
    assert!(gallery.n_duplicates() > 0);
    let sizes = BlockSizes { block_rows: 8, chunk_cols: 5, memory_budget_bytes: 0 };
    let e = evaluate(qr, &gallery, &targets, &decoys.targets, false, &sizes, &NoProgress).unwrap();
    let reference =
        rank(qr, &gallery, &decoys.targets, 0..n, &RankOptions { top_k: 0, sizes }, &NoProgress).unwrap();
    for (i, (got, want)) in e.control.iter().zip(&reference).enumerate() {
        assert_eq!(got.first, want.first_positive().unwrap(), "query {i}");
        let a = want.anchor_rank().unwrap();
        assert_eq!((got.anchor_greater, got.anchor_tied), (a.greater, a.tied), "query {i}");
        assert_eq!(got.n_negatives, want.n_negatives);
    }
}

/// The audited task (the first `targets.len()` pairs of `q_all`/`g_all`) and the side
/// information (the rest, `source`), both paired one to one.
fn audited_and_side<'a>(
    q_all: &'a [f32],
    g_all: &'a [f32],
    dim: usize,
    (targets, side_targets): (&'a Targets, &'a Targets),
    source: &'a str,
) -> (AttackTask<'a>, SideInfo<'a>) {
    let split = targets.n_queries() * dim;
    let task = |q: &'a [f32], g: &'a [f32], t: &'a Targets| AttackTask {
        queries: Rows::new(q, t.n_queries(), dim).unwrap(),
        gallery: Rows::new(g, t.n_queries(), dim).unwrap(),
        targets: t,
        paired: true,
        neighbourhood_exclusions: false,
    };
    (
        task(&q_all[..split], &g_all[..split], targets),
        SideInfo { task: task(&q_all[split..], &g_all[split..], side_targets), source },
    )
}

#[test]
fn on_hub_prone_embeddings_corrections_and_assignment_raise_recall() {
    let (dim, n, n_side) = (32, 400, 300);
    let (q_all, g_all) = hub_pairs(7, n + n_side, dim, 0.8);
    let targets = Targets::identity(n);
    let side_targets = Targets::identity(n_side);
    let (task, side) = audited_and_side(&q_all, &g_all, dim, (&targets, &side_targets), "held-out pairs");
    let config = AttackConfig {
        attacks: vec![
            AttackName::Csls,
            AttackName::InvertedSoftmax,
            AttackName::QbNorm,
            AttackName::Assignment,
        ],
        pool_sizes: vec![10, 100],
        assignment: AssignmentSettings {
            links_per_size: 400,
            exact_max: 150,
            ..AssignmentSettings::default()
        },
        seed: 1,
        ..AttackConfig::default()
    };
    let c = compare(&task, Side::Separate(&side), &config, &NoProgress).unwrap();
    let r1 = |name: &str| full_row(&c, name).recall_at_1;
    let (cosine, csls, inverted, qb) = (r1("cosine"), r1("csls"), r1("inverted_softmax"), r1("qb_norm"));
    assert!(csls > cosine + 0.04, "csls {csls} vs cosine {cosine}");
    assert!(inverted > cosine + 0.04, "inverted softmax {inverted} vs cosine {cosine}");
    assert!(qb > cosine + 0.02, "qb-norm {qb} vs cosine {cosine}");
    // Assignment over the full batch links more than CSLS and than independent NN.
    let full = full_row(&c, "assignment");
    assert_eq!(full.parameters.batch_size, Some(n));
    assert_eq!(full.parameters.solver, Some(Solver::Auction));
    let nn = full.parameters.nearest_neighbour_recall_at_1.unwrap();
    assert!((nn - cosine).abs() < 1e-12, "a full batch's NN is the full-database cosine");
    assert!(full.recall_at_1 > csls + 0.03, "assignment {} vs csls {csls}", full.recall_at_1);
    // Pools of 100 are solved exactly; more links than NN there too.
    let pool = c.attacks.iter().find(|r| r.name == "assignment" && r.pool_size == Some(100)).unwrap();
    assert_eq!(pool.parameters.solver, Some(Solver::Hungarian));
    assert_eq!(pool.n_queries, 400);
    assert!(pool.recall_at_1 > pool.parameters.nearest_neighbour_recall_at_1.unwrap());
    // Controls sit at chance; the strongest attack is not plain cosine.
    for row in &c.attacks {
        let ceiling = (6.0 * row.chance_at_1).max(0.03);
        assert!(
            row.control_recall_at_1 < ceiling,
            "{} {:?}: control {}",
            row.name,
            row.pool_size,
            row.control_recall_at_1
        );
        assert!(row.normalized_risk <= row.recall_at_1 + 1e-12);
        assert!(
            row.ci95_normalized_risk[0] < row.normalized_risk
                && row.normalized_risk < row.ci95_normalized_risk[1]
        );
    }
    assert_ne!(c.strongest_attack, "cosine");
    assert_eq!(c.strongest_attack_pool_size, Some(100));
    let tuned = c.side.as_ref().unwrap();
    assert_eq!(tuned.beta_curve.len(), DEFAULT_BETA_GRID.len());
    assert_eq!(full_row(&c, "inverted_softmax").parameters.beta_source, Some("tuned"));
}

#[test]
fn leaked_pairs_recover_a_rotated_view_where_cosine_is_at_chance() {
    let (dim, n, n_side) = (16, 300, 200);
    let (q_all, mut g_all) = hub_pairs(11, n + n_side, dim, 0.5);
    let plain_recall = {
        let cos = cosines(&q_all[..n * dim], &g_all[..n * dim], dim);
        mean((0..n).map(|i| brute_hit(&cos[i], &Targets::identity(n), i)))
    };
    // "Anonymise" the gallery view by a random rotation.
    let rotation = align_tests_rotation(5, dim);
    for row in g_all.chunks_mut(dim) {
        let rotated: Vec<f32> = (0..dim)
            .map(|j| (0..dim).map(|k| f64::from(row[k]) * rotation[k * dim + j]).sum::<f64>() as f32)
            .collect();
        row.copy_from_slice(&rotated);
    }
    let targets = Targets::identity(n);
    let side_targets = Targets::identity(n_side);
    let (task, side) = audited_and_side(&q_all, &g_all, dim, (&targets, &side_targets), "leaked");
    let config = AttackConfig {
        attacks: vec![AttackName::Procrustes, AttackName::Ridge],
        leaked_pairs: vec![10, 100, 1000],
        pool_sizes: vec![10],
        ..AttackConfig::default()
    };
    let c = compare(&task, Side::Separate(&side), &config, &NoProgress).unwrap();
    let cosine = full_row(&c, "cosine");
    assert!(cosine.recall_at_1 < 0.03, "rotated view: cosine {} should be near chance", cosine.recall_at_1);
    assert!(cosine.ci95_normalized_risk[0] < 0.02);
    let aligned = |name: &str, m: usize| {
        c.attacks
            .iter()
            .find(|r| r.name == name && r.leaked_pairs == Some(m) && r.pool_size.is_none())
            .unwrap()
    };
    let procrustes = aligned("procrustes", 100);
    assert!(
        (procrustes.recall_at_1 - plain_recall).abs() < 0.08,
        "Procrustes from 100 pairs {} should recover the unrotated cosine recall {plain_recall}",
        procrustes.recall_at_1
    );
    assert!(procrustes.recall_at_1 > aligned("procrustes", 10).recall_at_1);
    assert!(aligned("ridge", 100).recall_at_1 > 10.0 * cosine.recall_at_1.max(1.0 / n as f64));
    assert!(aligned("ridge", 100).parameters.lambda.unwrap() > 0.0);
    // m = 1000 exceeds the 200 side pairs: skipped, with the reason.
    assert!(c.skipped_attacks.iter().any(|s| s.name == "procrustes" && s.leaked_pairs == Some(1000)));
    assert!(matches!(c.strongest_attack, "procrustes" | "ridge"));
    assert_eq!(c.strongest_attack_pool_size, Some(10));
}

/// A random orthogonal matrix (QR of a Gaussian matrix), row-major.
pub(super) fn align_tests_rotation(seed: u64, d: usize) -> Vec<f64> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let m = faer::Mat::from_fn(d, d, |_, _| -> f64 { StandardNormal.sample(&mut rng) });
    let q = m.qr().compute_Q();
    (0..d * d).map(|k| q[(k / d, k % d)]).collect()
}

#[test]
fn batches_never_hold_two_members_of_one_study() {
    let study: Vec<u32> = (0..50).map(|i| i / 3).collect(); // 17 studies
    let mut b = Targets::builder(50);
    for i in 0..50u32 {
        let ex: Vec<u32> = (0..50u32).filter(|&j| j != i && study[j as usize] == study[i as usize]).collect();
        b.push(&[i], &ex).unwrap();
    }
    let t = b.build();
    for seed in 0..10 {
        let mut rng = rng::stream(seed, "test", 0);
        let batch = assignment::sample_batch(&t, Some(12), &mut rng).unwrap();
        let mut studies: Vec<u32> = batch.iter().map(|&q| study[q]).collect();
        studies.sort_unstable();
        studies.dedup();
        assert_eq!(studies.len(), 12);
        assert!(assignment::sample_batch(&t, Some(18), &mut rng).is_none(), "only 17 studies");
        assert_eq!(assignment::sample_batch(&t, None, &mut rng).unwrap().len(), 17);
    }
}

#[test]
fn attack_lists_parse_with_cosine_first_and_reject_unknown_names() {
    let all = AttackName::parse_list(&["all"]).unwrap();
    assert_eq!(all, AttackName::ALL.to_vec());
    assert_eq!(
        AttackName::parse_list(&["csls", "inverted-softmax", "csls"]).unwrap(),
        vec![AttackName::Cosine, AttackName::Csls, AttackName::InvertedSoftmax]
    );
    let err = AttackName::parse_list(&["hubness"]).unwrap_err().to_string();
    assert!(err.contains("--attack") && err.contains("hubness") && err.contains("qb_norm"), "{err}");
}

#[test]
fn pool_expectation_uses_the_engine_formula() {
    // A query with 3 negatives above its anchor out of 20: P(hit) in pools of 5.
    let o = QueryOutcome {
        first: crate::engine::FirstPositive { greater: 3, tied_negatives: 0, tied_positives: 1 },
        anchor_greater: 3,
        anchor_tied: 0,
        n_negatives: 20,
        n_positives: 1,
    };
    let (e, n) = evaluate::pool_summary(&[o], &[true], 5, 0.95);
    let draw = crate::engine::pools::PoolDraw {
        fixed_greater: 0,
        fixed_tied: 0,
        fixed: 0,
        population: 20,
        population_greater: 3,
        population_tied: 0,
        draws: 4,
    };
    assert_eq!(n, 1);
    assert!((e.value - expected_pool_hit_probability(&draw, 1)).abs() < 1e-15);
    // C(17, 4) / C(20, 4) = 2380 / 4845.
    assert!((e.value - 2380.0 / 4845.0).abs() < 1e-12);
}

#[test]
fn same_view_reid_task_with_neighbourhood_exclusions_equals_brute_force() {
    // Re-identification shape (the entry point `compare` serves reid with): one view is
    // both queries and gallery; the query's own record is excluded from its ranking and
    // from the hubness neighbourhoods; positives are the patient's other records.
    let (dim, k, beta) = (8, 3, 9.0);
    let mut rng = ChaCha8Rng::seed_from_u64(12);
    let (mut data, mut patient) = (Vec::new(), Vec::new());
    let mut p = 0;
    while patient.len() < 45 {
        let centre: Vec<f32> = (0..dim).map(|_| StandardNormal.sample(&mut rng)).collect();
        for _ in 0..rng.random_range(2..4) {
            data.extend(centre.iter().map(|c| {
                let noise: f32 = StandardNormal.sample(&mut rng);
                c + 0.9 * noise
            }));
            patient.push(p);
        }
        p += 1;
    }
    let n = patient.len();
    unit_rows(&mut data, dim);
    let mut b = Targets::builder(n);
    for i in 0..n {
        let pos: Vec<u32> =
            (0..n as u32).filter(|&j| j as usize != i && patient[j as usize] == patient[i]).collect();
        b.push(&pos, &[i as u32]).unwrap();
    }
    let targets = b.build();
    let rows = Rows::new(&data, n, dim).unwrap();
    let task = AttackTask {
        queries: rows,
        gallery: rows,
        targets: &targets,
        paired: false,
        neighbourhood_exclusions: true,
    };
    let config = AttackConfig {
        attacks: vec![
            AttackName::Csls,
            AttackName::InvertedSoftmax,
            AttackName::Assignment,
            AttackName::Procrustes,
        ],
        csls_k: k,
        beta_grid: vec![beta],
        pool_sizes: vec![],
        seed: 5,
        sizes: BlockSizes { block_rows: 4, chunk_cols: 6, memory_budget_bytes: 0 },
        ..AttackConfig::default()
    };
    let c = compare(&task, Side::None("no side data in this test"), &config, &NoProgress).unwrap();
    // Without side pairs the temperature is the default, not the grid's.
    assert_eq!(full_row(&c, "inverted_softmax").parameters.beta, Some(DEFAULT_BETA));
    let beta = DEFAULT_BETA;
    let cos = cosines(&data, &data, dim);
    // Neighbourhoods over the other records only (the own record is excluded).
    let others = |j: usize| (0..n).filter(move |&i| i != j);
    let r_g: Vec<f64> = (0..n)
        .map(|j| {
            let mut v: Vec<f64> = others(j).map(|i| cos[i][j]).collect();
            v.sort_by(|a, b| b.total_cmp(a));
            v[..k].iter().sum::<f64>() / k as f64
        })
        .collect();
    let z: Vec<f64> = (0..n).map(|j| others(j).map(|i| (beta * cos[i][j]).exp()).sum()).collect();
    let score = |name: &str, i: usize, j: usize| match name {
        "cosine" => cos[i][j],
        "csls" => 2.0 * cos[i][j] - r_g[j],
        _ => (beta * cos[i][j]).exp() / z[j],
    };
    for name in ["cosine", "csls", "inverted_softmax"] {
        // Rank-1: the best-scoring non-excluded item is a positive.
        let want = mean((0..n).map(|i| {
            let best = others(i).fold(None::<usize>, |b, j| match b {
                Some(b) if score(name, i, b) >= score(name, i, j) => Some(b),
                _ => Some(j),
            });
            f64::from(u8::from(patient[best.unwrap()] == patient[i]))
        }));
        let got = full_row(&c, name).recall_at_1;
        assert!((got - want).abs() < 1e-12, "{name}: {got} vs brute force {want}");
    }
    // Paired-view attacks are skipped with their reason, not run on a same-view task.
    for name in ["assignment", "procrustes"] {
        assert!(c.skipped_attacks.iter().any(|s| s.name == name), "{name} should be skipped");
    }
}
