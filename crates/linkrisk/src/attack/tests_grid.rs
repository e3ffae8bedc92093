//! Tests of the temperature search from shared passes (issue 20): the normalisers of every
//! temperature from one pass, the ranks under every temperature's offsets from one ranking
//! pass, and the tuning built on them, each against the one-pass-per-temperature
//! computation it replaces, exactly (same bits, same counts, same choice), on coarse
//! embeddings full of exact ties and duplicate rows.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::cross_fitted;
use super::hubness::{self, BetaPoint};
use super::neighbourhood::{log_normalizers, log_normalizers_multi};
use super::tests::unit_rows;
use super::*;
use crate::audit::cross_fit::CrossFit;
use crate::engine::{rank, FirstPositive, Gallery, NoProgress, RankOptions};

/// Rows with entries in {-2, ..., 2}, unit-normalised: cosines take few distinct values, so
/// exact ties are everywhere; `copies` lists (row, source) pairs made bitwise duplicates.
fn coarse_rows(seed: u64, n: usize, dim: usize, copies: &[(usize, usize)]) -> Vec<f32> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut data: Vec<f32> = (0..n * dim).map(|_| rng.random_range(-2i32..=2) as f32).collect();
    for row in data.chunks_mut(dim) {
        if row.iter().all(|&x| x == 0.0) {
            row[0] = 1.0;
        }
    }
    unit_rows(&mut data, dim);
    for &(to, from) in copies {
        let src: Vec<f32> = data[from * dim..(from + 1) * dim].to_vec();
        data[to * dim..(to + 1) * dim].copy_from_slice(&src);
    }
    data
}

/// Targets over `n_g` items: query q's anchor q % n_g, a second positive for every fifth
/// query, exclusions for every third (some of them one member of a duplicate group).
fn tangled_targets(n_q: usize, n_g: usize) -> Targets {
    let mut b = Targets::builder(n_g);
    for q in 0..n_q {
        let anchor = (q % n_g) as u32;
        let mut positives = vec![anchor];
        if q % 5 == 0 {
            positives.push(((q + 7) % n_g) as u32);
        }
        let mut exclusions = Vec::new();
        if q % 3 == 0 {
            for g in [(q * 11 + 1) % n_g, 6] {
                if !positives.contains(&(g as u32)) {
                    exclusions.push(g as u32);
                }
            }
        }
        b.push(&positives, &exclusions).unwrap();
    }
    b.build()
}

/// The computation `tune_beta` replaced: per temperature, a normaliser pass and a ranking
/// pass over the gallery with that temperature's offsets.
fn per_beta_first_positives(
    queries: Rows<'_>,
    gallery: Rows<'_>,
    targets: &Targets,
    exclusions: Option<&Targets>,
    grid: &[f64],
    sizes: &BlockSizes,
) -> Vec<Vec<Option<FirstPositive>>> {
    grid.iter()
        .map(|&beta| {
            let offsets =
                hubness::inverted_softmax_offsets(queries, gallery, exclusions, beta, sizes, &NoProgress)
                    .unwrap();
            let g = Gallery::with_offsets(gallery, &offsets).unwrap();
            let options = RankOptions { top_k: 0, sizes: *sizes };
            rank(queries, &g, targets, 0..queries.n(), &options, &NoProgress)
                .unwrap()
                .iter()
                .map(|r| r.first_positive())
                .collect()
        })
        .collect()
}

const GRID: [f64; 6] = [0.5, 2.0, 5.0, 20.0, 75.0, 150.0];

#[test]
fn normalisers_of_every_temperature_from_one_pass_are_bitwise_the_single_passes() {
    let dim = 5;
    let (n_rows, n_other) = (26, 31);
    let rows = coarse_rows(1, n_rows, dim, &[]);
    let other = coarse_rows(2, n_other, dim, &[(5, 4), (6, 4), (20, 3)]);
    let r = Rows::new(&rows, n_rows, dim).unwrap();
    let o = Rows::new(&other, n_other, dim).unwrap();
    // Exclusions of whole duplicate groups and of parts of them.
    let mut b = Targets::builder(n_other);
    for i in 0..n_rows {
        let ex: Vec<u32> = match i % 4 {
            0 => vec![4, 5, 6],
            1 => vec![5, (i % n_other) as u32],
            2 => vec![],
            _ => vec![3, 20],
        };
        let mut ex = ex;
        ex.sort_unstable();
        ex.dedup();
        b.push(&[], &ex).unwrap();
    }
    let t = b.build();
    for sizes in [BlockSizes { block_rows: 4, chunk_cols: 7, memory_budget_bytes: 0 }, BlockSizes::default()]
    {
        for exclusions in [None, Some(&t)] {
            let all = log_normalizers_multi(r, o, exclusions, &GRID, &sizes, &NoProgress).unwrap();
            assert_eq!(all.len(), GRID.len());
            for (b, &beta) in GRID.iter().enumerate() {
                let one = log_normalizers(r, o, exclusions, beta, &sizes, &NoProgress).unwrap();
                let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(&all[b]), bits(&one), "beta {beta}");
            }
        }
    }
    assert!(log_normalizers_multi(r, o, None, &[2.0, 0.0], &BlockSizes::default(), &NoProgress).is_err());
}

#[test]
fn ranks_under_every_temperature_from_two_passes_equal_a_pass_pair_per_temperature() {
    let dim = 4;
    let (n_q, n_g) = (47, 29);
    // Gallery duplicates: 6 copies 2 (6 is excluded by some queries, 2 never: the copies
    // get different offsets under neighbourhood exclusions), 12 copies 11 (11 is an anchor,
    // so its copy ties with a positive); query 9 copies gallery row 9.
    let gallery = coarse_rows(3, n_g, dim, &[(6, 2), (12, 11), (28, 27)]);
    let mut queries = coarse_rows(4, n_q, dim, &[]);
    queries[9 * dim..10 * dim].copy_from_slice(&gallery[9 * dim..10 * dim]);
    let q = Rows::new(&queries, n_q, dim).unwrap();
    let g = Rows::new(&gallery, n_g, dim).unwrap();
    let targets = tangled_targets(n_q, n_g);
    let mut ties = 0;
    for sizes in [
        BlockSizes { block_rows: 5, chunk_cols: 6, memory_budget_bytes: 0 },
        BlockSizes { block_rows: 1, chunk_cols: 2, memory_budget_bytes: 0 },
        BlockSizes::default(),
    ] {
        for exclusions in [None, Some(&targets)] {
            let got = hubness::inverted_softmax_hits(q, g, &targets, exclusions, &GRID, &sizes, &NoProgress)
                .unwrap();
            let want = per_beta_first_positives(q, g, &targets, exclusions, &GRID, &sizes);
            assert_eq!(got, want, "sizes {sizes:?}, exclusions {}", exclusions.is_some());
            ties +=
                want.iter().flatten().flatten().filter(|f| f.tied_negatives + f.tied_positives > 1).count();
        }
    }
    assert!(ties > 0, "the data must hold ties at the best positive");
}

/// `tune_beta` as it was: the rank counts from a pass pair per grid value (the curve and
/// choice from them as `tune_beta` makes them).
fn tune_beta_per_value(
    queries: Rows<'_>,
    gallery: Rows<'_>,
    targets: &Targets,
    neighbourhood: bool,
    grid: &[f64],
    sizes: &BlockSizes,
) -> (f64, Vec<BetaPoint>) {
    let exclusions = neighbourhood.then_some(targets);
    let hits = per_beta_first_positives(queries, gallery, targets, exclusions, grid, sizes);
    hubness::choose_beta(grid, &hits, targets)
}

#[test]
fn tuned_temperature_from_two_passes_is_the_per_value_choice() {
    let sizes = BlockSizes { block_rows: 8, chunk_cols: 10, memory_budget_bytes: 0 };
    let bits =
        |c: &[BetaPoint]| c.iter().map(|p| (p.beta.to_bits(), p.recall_at_1.to_bits())).collect::<Vec<_>>();
    // Coarse rows with ties, and hub-prone pairs where the temperature matters.
    let dim = 4;
    let (n_q, n_g) = (47, 29);
    let coarse_g = coarse_rows(5, n_g, dim, &[(6, 2), (12, 11)]);
    let coarse_q = coarse_rows(6, n_q, dim, &[]);
    let coarse_t = tangled_targets(n_q, n_g);
    let (hub_q, hub_g) = super::tests::hub_pairs(7, 60, 12, 0.9);
    let hub_t = Targets::identity(60);
    let cases = [
        (Rows::new(&coarse_q, n_q, dim).unwrap(), Rows::new(&coarse_g, n_g, dim).unwrap(), &coarse_t),
        (Rows::new(&hub_q, 60, 12).unwrap(), Rows::new(&hub_g, 60, 12).unwrap(), &hub_t),
    ];
    let mut distinct_curves = 0;
    for (q, g, t) in cases {
        for neighbourhood in [false, true] {
            let got = hubness::tune_beta(q, g, t, neighbourhood, &GRID, &sizes, &NoProgress).unwrap();
            let want = tune_beta_per_value(q, g, t, neighbourhood, &GRID, &sizes);
            assert_eq!(got.0.to_bits(), want.0.to_bits());
            assert_eq!(bits(&got.1), bits(&want.1));
            let first = want.1[0].recall_at_1;
            distinct_curves += usize::from(want.1.iter().any(|p| p.recall_at_1 != first));
        }
    }
    assert!(distinct_curves > 0, "some curve must depend on the temperature");
}

#[test]
fn cross_fitted_tuning_evaluates_only_the_chosen_temperatures_with_the_same_outcomes() {
    let sizes = BlockSizes { block_rows: 7, chunk_cols: 9, memory_budget_bytes: 0 };
    let (dim, n) = (10, 45);
    let (q, g) = super::tests::hub_pairs(23, n, dim, 0.9);
    let targets = Targets::identity(n);
    let task = AttackTask {
        queries: Rows::new(&q, n, dim).unwrap(),
        gallery: Rows::new(&g, n, dim).unwrap(),
        targets: &targets,
        paired: true,
        neighbourhood_exclusions: false,
    };
    let control = decoy_targets(&targets, 3).unwrap().targets;
    let folds = CrossFit::by_patient(&(0..n as u32).collect::<Vec<_>>(), 3, 2).unwrap();
    let tuned = cross_fitted::tune_beta(&task, &control, &folds, &GRID, &sizes, &NoProgress).unwrap();
    // Reference: a full evaluation (attack and control) at every grid value.
    let full: Vec<Evaluation> = GRID
        .iter()
        .map(|&beta| {
            let offsets = hubness::inverted_softmax_offsets(
                task.queries,
                task.gallery,
                None,
                beta,
                &sizes,
                &NoProgress,
            )
            .unwrap();
            let gallery = Gallery::with_offsets(task.gallery, &offsets).unwrap();
            evaluate(task.queries, &gallery, &targets, &control, false, &sizes, &NoProgress).unwrap()
        })
        .collect();
    let hits: Vec<Vec<f64>> =
        full.iter().map(|e| e.attack.iter().map(evaluate::hit_at_1).collect()).collect();
    for (p, (h, &beta)) in tuned.curve.iter().zip(hits.iter().zip(&GRID)) {
        assert_eq!(p.beta, beta);
        assert_eq!(p.recall_at_1.to_bits(), (h.iter().sum::<f64>() / n as f64).to_bits());
    }
    let mut want_attack = Vec::new();
    let mut want_control = Vec::new();
    for i in 0..n {
        let f = folds.fold(i);
        let others = folds.others(f);
        let recall = |b: usize| others.iter().map(|&j| hits[b][j]).sum::<f64>();
        let best = (0..GRID.len()).fold(0, |b, c| if recall(c) > recall(b) { c } else { b });
        assert_eq!(tuned.fold_beta[f], GRID[best]);
        want_attack.push(full[best].attack[i]);
        want_control.push(full[best].control[i]);
    }
    let got = tuned.assemble(&folds).unwrap();
    assert_eq!(got.attack, want_attack);
    assert_eq!(got.control, want_control);
    let first = tuned.curve[0].recall_at_1;
    assert!(tuned.curve.iter().any(|p| p.recall_at_1 != first), "the temperature must matter here");
}
