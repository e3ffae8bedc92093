//! Engine tests against brute force: O(n^2) loops written independently of the kernel, on
//! random and adversarial inputs (exact duplicates, exact ties, exclusions, several
//! positives, score offsets, tiny blocks and chunks).

use proptest::prelude::*;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

use super::pools::{LabelCodes, PoolEvaluator};
use super::*;
use crate::metrics::retrieval::{expected_pool_hit_probability, hit_probability};

/// Unit vectors whose dot products are exact in f32 whatever the summation order: either
/// ±e_i, or four entries of ±0.5. All scores are multiples of 1/4, so ties are exact and a
/// brute force in f64 sees the same order as the GEMM.
fn grid_vector(rng: &mut ChaCha8Rng, dim: usize) -> Vec<f32> {
    let mut v = vec![0f32; dim];
    if rng.random_bool(0.3) {
        v[rng.random_range(0..dim)] = if rng.random_bool(0.5) { 1.0 } else { -1.0 };
    } else {
        let idx = rand::seq::index::sample(rng, dim, 4);
        for i in idx.iter() {
            v[i] = if rng.random_bool(0.5) { 0.5 } else { -0.5 };
        }
    }
    v
}

fn gaussian_rows(rng: &mut ChaCha8Rng, n: usize, dim: usize) -> Vec<f32> {
    let mut data = Vec::with_capacity(n * dim);
    for _ in 0..n {
        let row: Vec<f32> = (0..dim).map(|_| StandardNormal.sample(rng)).collect();
        let norm = row.iter().map(|x| x * x).sum::<f32>().sqrt();
        data.extend(row.iter().map(|x| x / norm));
    }
    data
}

struct Case {
    dim: usize,
    queries: Vec<f32>,
    gallery: Vec<f32>,
    offsets: Option<Vec<f32>>,
    targets: Targets,
    n_queries: usize,
    n_gallery: usize,
}

/// A random adversarial case: grid vectors drawn from a small palette (many duplicates and
/// ties), random positives and exclusions, optional offsets.
fn adversarial_case(seed: u64, mode: u8) -> Case {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    // Dimension 8 and up has over a thousand distinct grid vectors (mode 2 needs 120).
    let dim = if mode == 2 { rng.random_range(8..11) } else { rng.random_range(4..9) };
    let n_queries = rng.random_range(1..14);
    let n_gallery = if mode == 0 { rng.random_range(1..30) } else { rng.random_range(30..120) };
    // Mode 0: a small palette, many exact duplicates. Mode 1: a large palette, some
    // duplicates. Mode 2: distinct gallery rows whose scores still tie exactly.
    let palette_size = match mode {
        0 => rng.random_range(1..12),
        1 => rng.random_range(20..400),
        _ => 0,
    };
    let palette: Vec<Vec<f32>> = (0..palette_size).map(|_| grid_vector(&mut rng, dim)).collect();
    let pick = |rng: &mut ChaCha8Rng| {
        if palette.is_empty() {
            grid_vector(rng, dim)
        } else {
            palette[rng.random_range(0..palette.len())].clone()
        }
    };
    let queries: Vec<f32> = (0..n_queries).flat_map(|_| pick(&mut rng)).collect();
    let mut gallery: Vec<f32> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    while gallery.len() < n_gallery * dim {
        let v = pick(&mut rng);
        if mode < 2 || seen.insert(v.iter().map(|x| x.to_bits()).collect::<Vec<u32>>()) {
            gallery.extend(v);
        }
    }
    let offsets = rng
        .random_bool(0.3)
        .then(|| (0..n_gallery).map(|_| [0.0f32, 0.25, -0.5][rng.random_range(0..3)]).collect());
    let mut builder = Targets::builder(n_gallery);
    for _ in 0..n_queries {
        let mut items: Vec<u32> = (0..n_gallery as u32).collect();
        items.shuffle(&mut rng);
        let n_pos = rng.random_range(0..4.min(n_gallery + 1));
        let n_exc = rng.random_range(0..=3.min(n_gallery - n_pos));
        builder.push(&items[..n_pos], &items[n_pos..n_pos + n_exc]).unwrap();
    }
    Case { dim, queries, gallery, offsets, targets: builder.build(), n_queries, n_gallery }
}

fn dot(a: &[f32], b: &[f32]) -> f64 {
    a.iter().zip(b).map(|(x, y)| f64::from(*x) * f64::from(*y)).sum()
}

/// The brute-force ranking of query q: straight loops over all gallery items.
/// Per positive (gallery, greater, tied), and the top-k as (gallery, score).
type BruteRanking = (Vec<(u32, u64, u64)>, Vec<(u32, f64)>);

fn brute_force(case: &Case, q: usize, top_k: usize) -> BruteRanking {
    let d = case.dim;
    let score = |g: usize| {
        dot(&case.queries[q * d..(q + 1) * d], &case.gallery[g * d..(g + 1) * d])
            + case.offsets.as_ref().map_or(0.0, |o| f64::from(o[g]))
    };
    let positives: Vec<u32> = case.targets.positives(q).collect();
    let excluded: Vec<u32> = case.targets.exclusions(q).collect();
    let is_negative = |g: usize| !positives.contains(&(g as u32)) && !excluded.contains(&(g as u32));
    let ranks = positives
        .iter()
        .map(|&p| {
            let s = score(p as usize);
            let greater = (0..case.n_gallery).filter(|&g| is_negative(g) && score(g) > s).count() as u64;
            let tied = (0..case.n_gallery).filter(|&g| is_negative(g) && score(g) == s).count() as u64;
            (p, greater, tied)
        })
        .collect();
    let mut all: Vec<(u32, f64)> = (0..case.n_gallery)
        .filter(|g| !excluded.contains(&(*g as u32)))
        .map(|g| (g as u32, score(g)))
        .collect();
    all.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    all.truncate(top_k);
    (ranks, all)
}

fn run(case: &Case, options: &RankOptions) -> Vec<QueryRanking> {
    let queries = Rows::new(&case.queries, case.n_queries, case.dim).unwrap();
    let rows = Rows::new(&case.gallery, case.n_gallery, case.dim).unwrap();
    let gallery = match &case.offsets {
        Some(o) => Gallery::with_offsets(rows, o).unwrap(),
        None => Gallery::new(rows),
    };
    rank(queries, &gallery, &case.targets, 0..case.n_queries, options, &NoProgress).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn ranks_and_top_k_equal_brute_force(
        seed in any::<u64>(),
        mode in 0u8..3,
        block_rows in 1usize..6,
        chunk_cols in 1usize..40,
        top_k in 0usize..12,
    ) {
        let case = adversarial_case(seed, mode);
        let options = RankOptions {
            top_k,
            sizes: BlockSizes { block_rows, chunk_cols, memory_budget_bytes: 0 },
        };
        let got = run(&case, &options);
        prop_assert_eq!(got.len(), case.n_queries);
        for (q, ranking) in got.iter().enumerate() {
            let (ranks, top) = brute_force(&case, q, top_k);
            let got_ranks: Vec<(u32, u64, u64)> = ranking.positives.iter().map(|p| (p.gallery, p.greater, p.tied)).collect();
            prop_assert_eq!(&got_ranks, &ranks, "query {}", q);
            let got_top: Vec<(u32, f64)> = ranking.top.iter().map(|n| (n.gallery, f64::from(n.score))).collect();
            prop_assert_eq!(&got_top, &top, "query {}", q);
            prop_assert_eq!(ranking.n_negatives as usize, case.targets.n_negatives(q));
            prop_assert_eq!(ranking.anchor.map(|i| ranking.positives[i].gallery as usize), case.targets.anchor(q));
        }
    }
}

#[test]
fn gaussian_ranks_equal_brute_force_away_from_near_ties() {
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    let (n, dim) = (300, 24);
    let case = Case {
        dim,
        queries: gaussian_rows(&mut rng, n, dim),
        gallery: gaussian_rows(&mut rng, n, dim),
        offsets: None,
        targets: Targets::identity(n),
        n_queries: n,
        n_gallery: n,
    };
    let options = RankOptions {
        top_k: 10,
        sizes: BlockSizes { block_rows: 37, chunk_cols: 64, memory_budget_bytes: 0 },
    };
    let got = run(&case, &options);
    let mut checked = 0;
    for (q, ranking) in got.iter().enumerate() {
        let (ranks, top) = brute_force(&case, q, 10);
        let s = dot(&case.queries[q * dim..(q + 1) * dim], &case.gallery[q * dim..(q + 1) * dim]);
        let near = (0..n).any(|g| {
            g != q
                && (dot(&case.queries[q * dim..(q + 1) * dim], &case.gallery[g * dim..(g + 1) * dim]) - s)
                    .abs()
                    < 1e-5
        });
        if near {
            continue;
        }
        checked += 1;
        assert_eq!(
            (ranking.positives[0].greater, ranking.positives[0].tied),
            (ranks[0].1, ranks[0].2),
            "query {q}"
        );
        let ids: Vec<u32> = ranking.top.iter().map(|n| n.gallery).collect();
        let want: Vec<u32> = top.iter().map(|t| t.0).collect();
        assert_eq!(ids, want, "query {q}");
    }
    assert!(checked > 250, "only {checked} queries without near-ties");
}

#[test]
fn exact_duplicates_tie_by_construction() {
    // Gallery rows 3, 5 and 8 are bitwise identical; query 3's true match therefore ties
    // with items 5 and 8, whatever rounding the GEMM applies.
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let (n, dim) = (12, 512);
    let queries = gaussian_rows(&mut rng, n, dim);
    let mut gallery = gaussian_rows(&mut rng, n, dim);
    let row3 = gallery[3 * dim..4 * dim].to_vec();
    gallery[5 * dim..6 * dim].copy_from_slice(&row3);
    gallery[8 * dim..9 * dim].copy_from_slice(&row3);
    let case = Case {
        dim,
        queries,
        gallery,
        offsets: None,
        targets: Targets::identity(n),
        n_queries: n,
        n_gallery: n,
    };
    for block_rows in [1, 2, 5, 12] {
        let options =
            RankOptions { top_k: 3, sizes: BlockSizes { block_rows, chunk_cols: 3, memory_budget_bytes: 0 } };
        let got = run(&case, &options);
        assert_eq!(got[3].positives[0].tied, 2);
        for q in [5, 8] {
            let p = got[q].positives[0];
            // Items 3, 5, 8 share one score for every query.
            let others: Vec<f32> =
                got[q].top.iter().filter(|t| [3, 5, 8].contains(&t.gallery)).map(|t| t.score).collect();
            assert!(others.windows(2).all(|w| w[0] == w[1]));
            assert!(p.tied >= 2, "query {q}: {p:?}");
        }
    }
}

#[test]
fn shards_merge_exactly() {
    let mut rng = ChaCha8Rng::seed_from_u64(9);
    for dim in [3usize, 8, 64, 512] {
        let (n_q, n_g) = (41, 57);
        let queries = gaussian_rows(&mut rng, n_q, dim);
        let gallery_rows = gaussian_rows(&mut rng, n_g, dim);
        let q = Rows::new(&queries, n_q, dim).unwrap();
        let gallery = Gallery::new(Rows::new(&gallery_rows, n_g, dim).unwrap());
        let mut b = Targets::builder(n_g);
        for i in 0..n_q {
            let positives = [(i % n_g) as u32, ((i * 7) % n_g) as u32];
            let exclusion = ((i * 3 + 1) % n_g) as u32;
            let exclusions: Vec<u32> =
                (!positives.contains(&exclusion)).then_some(exclusion).into_iter().collect();
            b.push(&positives, &exclusions).unwrap();
        }
        let targets = b.build();
        let pools = PoolEvaluator::random(&targets, &[5, 20], 3, 42).unwrap();
        let whole_options = RankOptions {
            top_k: 4,
            sizes: BlockSizes { block_rows: 16, chunk_cols: 10, memory_budget_bytes: 0 },
        };
        let whole = rank_with(q, &gallery, &targets, 0..n_q, &whole_options, &pools, &NoProgress).unwrap();
        let mut pieces = Vec::new();
        for (range, block_rows) in [(0..1, 7), (1..13, 5), (13..14, 1), (14..41, 9)] {
            let options = RankOptions {
                top_k: 4,
                sizes: BlockSizes { block_rows, chunk_cols: 10, memory_budget_bytes: 0 },
            };
            pieces.extend(rank_with(q, &gallery, &targets, range, &options, &pools, &NoProgress).unwrap());
        }
        assert_eq!(whole, pieces, "dim {dim}");
    }
}

#[test]
fn visitor_sees_the_same_scores_as_the_ranking() {
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let (n, dim) = (30, 16);
    let queries = gaussian_rows(&mut rng, n, dim);
    let gallery_rows = gaussian_rows(&mut rng, n, dim);
    let q = Rows::new(&queries, n, dim).unwrap();
    let gallery = Gallery::new(Rows::new(&gallery_rows, n, dim).unwrap());
    let sizes = BlockSizes { block_rows: 7, chunk_cols: 8, memory_budget_bytes: 0 };
    let mut seen = vec![f32::NAN; n];
    let mut blocks = 0;
    for_each_block(q, &gallery, 0..n, &sizes, &NoProgress, |block| {
        blocks += 1;
        for i in 0..block.len() {
            seen[block.query_start + i] = block.row(i).score(block.query_start + i);
        }
        Ok(())
    })
    .unwrap();
    assert_eq!(blocks, 5);
    let ranked =
        rank(q, &gallery, &Targets::identity(n), 0..n, &RankOptions { top_k: 0, sizes }, &NoProgress)
            .unwrap();
    for (i, r) in ranked.iter().enumerate() {
        assert_eq!(r.positives[0].score.to_bits(), seen[i].to_bits());
        let direct = dot(q.row(i), gallery_rows[i * dim..(i + 1) * dim].as_ref());
        assert!((f64::from(seen[i]) - direct).abs() < 1e-5);
    }
}

/// A case with a controlled signal: query i is gallery i plus noise, the gallery has a few
/// exact duplicates (ties) and label codes.
fn pool_case(seed: u64, n: usize, dim: usize, noise: f32) -> (Vec<f32>, Vec<f32>, Vec<u32>) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut gallery = gaussian_rows(&mut rng, n, dim);
    for i in (0..n).step_by(17) {
        let src = gallery[..dim].to_vec();
        gallery[i * dim..(i + 1) * dim].copy_from_slice(&src);
    }
    let mut queries = Vec::with_capacity(n * dim);
    for i in 0..n {
        let row: Vec<f32> = (0..dim)
            .map(|j| {
                gallery[i * dim + j]
                    + noise * {
                        let z: f32 = StandardNormal.sample(&mut rng);
                        z
                    }
            })
            .collect::<Vec<f32>>();
        let norm = row.iter().map(|x| x * x).sum::<f32>().sqrt();
        queries.extend(row.iter().map(|x| x / norm));
    }
    let codes = (0..n).map(|_| rng.random_range(0..3u32) | (rng.random_range(0..2u32) << 2)).collect();
    (queries, gallery, codes)
}

#[test]
fn pools_hold_distinct_negatives_disjoint_across_trials() {
    let (n, dim) = (120, 8);
    let (_, _, codes) = pool_case(1, n, dim, 0.5);
    let mut b = Targets::builder(n);
    for i in 0..n {
        b.push(&[i as u32], &[((i + 1) % n) as u32, ((i + 2) % n) as u32]).unwrap();
    }
    let targets = b.build();
    let codes = LabelCodes::new(codes);
    let random = PoolEvaluator::random(&targets, &[10, 50], 4, 7).unwrap();
    let matched = PoolEvaluator::label_matched(&targets, &codes, &[10, 50], 4, 7).unwrap();
    for q in [0usize, 5, 119] {
        let special: Vec<u32> = vec![q as u32, ((q + 1) % n) as u32, ((q + 2) % n) as u32];
        for (size, disjoint) in [(10usize, true), (50, false)] {
            let mut seen = std::collections::HashSet::new();
            for trial in 0..4 {
                let m = random.pool_members(q, size, trial).unwrap();
                assert_eq!(m.len(), size - 1);
                let distinct: std::collections::HashSet<u32> = m.iter().copied().collect();
                assert_eq!(distinct.len(), size - 1, "pool repeats an item");
                assert!(m.iter().all(|g| !special.contains(g) && (*g as usize) < n));
                if disjoint {
                    assert!(m.iter().all(|g| seen.insert(*g)), "trials overlap though 4 x 9 <= 117");
                }
            }
            // Label-matched pools take the exact layer first.
            let anchor_code = codes.code(q);
            let exact =
                (0..n).filter(|&g| !special.contains(&(g as u32)) && codes.code(g) == anchor_code).count();
            for trial in 0..4 {
                let m = matched.pool_members(q, size, trial).unwrap();
                let n_exact = m.iter().filter(|&&g| codes.code(g as usize) == anchor_code).count();
                assert_eq!(n_exact, exact.min(size - 1), "q{q} size{size}");
                let max_d = m
                    .iter()
                    .map(|&g| LabelCodes::distance(codes.code(g as usize), anchor_code))
                    .max()
                    .unwrap();
                let closer_left_out = (0..n).any(|g| {
                    !special.contains(&(g as u32))
                        && !m.contains(&(g as u32))
                        && LabelCodes::distance(codes.code(g), anchor_code) < max_d
                });
                assert!(!closer_left_out, "a nearer negative was skipped");
            }
        }
    }
    // Too few negatives: no pools rather than an error.
    assert!(random.pool_members(0, 200, 0).is_none());
}

#[test]
fn pool_counts_equal_brute_force_and_monte_carlo_matches_the_exact_expectation() {
    let (n, dim) = (400, 16);
    let (queries, gallery_rows, codes) = pool_case(2, n, dim, 1.2);
    let q = Rows::new(&queries, n, dim).unwrap();
    let gallery = Gallery::new(Rows::new(&gallery_rows, n, dim).unwrap());
    assert!(gallery.n_duplicates() > 0);
    let mut b = Targets::builder(n);
    for i in 0..n {
        let exclusion = ((i * 31 + 7) % n) as u32;
        b.push(&[i as u32], if exclusion == i as u32 { &[] } else { std::slice::from_ref(&exclusion) })
            .unwrap();
    }
    let targets = b.build();
    let codes = LabelCodes::new(codes);
    let sizes = [2usize, 10, 50];
    let trials = 40;
    let sizes_of_kernel = BlockSizes { block_rows: 64, chunk_cols: 128, memory_budget_bytes: 0 };
    let options = RankOptions { top_k: 0, sizes: sizes_of_kernel };
    // Every score, captured through the visitor (bitwise the ranking's scores).
    let mut all_scores = vec![Vec::new(); n];
    for_each_block(q, &gallery, 0..n, &sizes_of_kernel, &NoProgress, |block| {
        for i in 0..block.len() {
            let row = block.row(i);
            all_scores[block.query_start + i] = (0..n).map(|g| row.score(g)).collect();
        }
        Ok(())
    })
    .unwrap();
    for evaluator in [
        PoolEvaluator::random(&targets, &sizes, trials, 3).unwrap(),
        PoolEvaluator::label_matched(&targets, &codes, &sizes, trials, 3).unwrap(),
    ] {
        let out = rank_with(q, &gallery, &targets, 0..n, &options, &evaluator, &NoProgress).unwrap();
        for (s, &size) in sizes.iter().enumerate() {
            let (mut observed, mut expected, mut variance) = (0.0, 0.0, 0.0);
            for (qi, (ranking, pools)) in out.iter().enumerate() {
                let outcome = pools[s].as_ref().unwrap();
                let anchor = ranking.anchor_rank().unwrap();
                // Per-trial counts equal a brute-force count over the pool's members.
                for trial in [0, trials / 2, trials - 1] {
                    let members = evaluator.pool_members(qi, size, trial).unwrap();
                    let greater =
                        members.iter().filter(|&&g| all_scores[qi][g as usize] > anchor.score).count();
                    let tied =
                        members.iter().filter(|&&g| all_scores[qi][g as usize] == anchor.score).count();
                    let c = outcome.trials[trial];
                    assert_eq!(
                        (c.greater as usize, c.tied as usize),
                        (greater, tied),
                        "q{qi} size{size} trial{trial}"
                    );
                }
                let hits: f64 = outcome
                    .trials
                    .iter()
                    .map(|c| hit_probability(u64::from(c.greater), u64::from(c.tied), 1))
                    .sum();
                let mean = hits / trials as f64;
                let e = expected_pool_hit_probability(&outcome.draw, 1);
                observed += mean;
                expected += e;
                variance += e * (1.0 - e) / trials as f64;
            }
            let z = (observed - expected) / variance.sqrt().max(1e-12);
            assert!(z.abs() < 3.0, "size {size}: Monte-Carlo {observed} vs exact {expected} (z = {z:.2})");
            if size == 2 {
                // A pool of 2 is the anchor and one negative: recall well above 1/2.
                assert!(observed / n as f64 > 0.6);
            }
        }
    }
}

/// A case proptest once found (a tie between scores -0.0 and +0.0 across one-column chunks): the top-k must
/// keep the smaller gallery index among equal scores, whatever the chunk order.
#[test]
fn top_k_ties_across_one_column_chunks_regression() {
    let case = adversarial_case(2697072129477236142, 0);
    let options =
        RankOptions { top_k: 8, sizes: BlockSizes { block_rows: 1, chunk_cols: 1, memory_budget_bytes: 0 } };
    for (q, ranking) in run(&case, &options).iter().enumerate() {
        let (_, top) = brute_force(&case, q, 8);
        let got_top: Vec<(u32, f64)> = ranking.top.iter().map(|n| (n.gallery, f64::from(n.score))).collect();
        assert_eq!(got_top, top, "query {q}");
    }
}

/// Stored (un-normalised) rows for a scaled gallery: random rows of random norms, exact
/// copies, power-of-two multiples (their unit rows are bitwise equal, so they must merge
/// like exact duplicates) and near copies; then a row list picking rows in random order,
/// some twice.
fn stored_gallery(rng: &mut ChaCha8Rng, dim: usize) -> (Vec<f32>, Vec<u32>) {
    let n_raw = rng.random_range(2..90);
    let mut raw: Vec<f32> = Vec::with_capacity(n_raw * dim);
    for r in 0..n_raw {
        let row: Vec<f32> = if r > 0 && rng.random_bool(0.3) {
            let src = rng.random_range(0..r);
            let factor = [1.0f32, 2.0, 0.25, 1.0 + f32::EPSILON][rng.random_range(0..4)];
            raw[src * dim..(src + 1) * dim].iter().map(|v| v * factor).collect()
        } else if dim >= 4 && rng.random_bool(0.2) {
            grid_vector(rng, dim).iter().map(|v| v * 3.0).collect()
        } else {
            let scale = 10f32.powi(rng.random_range(-3..4));
            (0..dim).map(|_| StandardNormal.sample(rng)).map(|v: f32| v * scale).collect()
        };
        raw.extend(row);
    }
    let n = rng.random_range(2..120);
    let list = (0..n).map(|_| rng.random_range(0..n_raw as u32)).collect();
    (raw, list)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 60, ..ProptestConfig::default() })]

    /// A gallery of stored rows scaled on the fly ranks bitwise like the same rows
    /// normalised in memory by the cohort loader: same representatives, same scores, same
    /// ranks and top-k, for any block and chunk shape.
    #[test]
    fn scaled_gallery_ranks_bitwise_like_the_normalised_view(
        seed in any::<u64>(),
        block_rows in 1usize..9,
        chunk_cols in 1usize..40,
    ) {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let dim = rng.random_range(1..20);
        let (raw, list) = stored_gallery(&mut rng, dim);
        let n = list.len();
        // The loader's path: gather the rows, normalise them in memory.
        let gathered: Vec<f32> = list.iter().flat_map(|&r| raw[r as usize * dim..(r as usize + 1) * dim].iter().copied()).collect();
        let view = crate::cohort::View::from_memory("g", n, dim, gathered.clone()).unwrap();
        let scales: Vec<f32> = gathered.chunks(dim).map(|row| crate::cohort::view::row_scale(row).unwrap().1).collect();
        let dense = Gallery::new(Rows::from_view(&view));
        let scaled_rows = ScaledRows::new(&raw, dim, Some(&list), &scales).unwrap();
        let scaled = Gallery::scaled(scaled_rows);
        prop_assert!(scaled.is_scaled() && scaled.dense_unique_rows().is_none());
        prop_assert_eq!(scaled.n_unique(), dense.n_unique());
        for g in 0..n {
            prop_assert_eq!(scaled.unique_of(g), dense.unique_of(g));
            let mut row = vec![0f32; dim];
            scaled_rows.row_into(g, &mut row);
            prop_assert_eq!(row.iter().map(|v| v.to_bits()).collect::<Vec<_>>(), view.row(g).iter().map(|v| v.to_bits()).collect::<Vec<_>>());
        }
        let n_queries = rng.random_range(1..12);
        let queries = gaussian_rows(&mut rng, n_queries, dim);
        let q = Rows::new(&queries, n_queries, dim).unwrap();
        let sizes = BlockSizes { block_rows, chunk_cols, memory_budget_bytes: 0 };
        let scores = |gallery: &Gallery<'_>| {
            let mut all = Vec::new();
            for_each_block(q, gallery, 0..n_queries, &sizes, &NoProgress, |block| {
                for i in 0..block.len() {
                    all.extend((0..n).map(|g| block.row(i).score(g).to_bits()));
                }
                Ok(())
            })
            .unwrap();
            all
        };
        prop_assert_eq!(scores(&scaled), scores(&dense));
        let targets = Targets::none(n_queries, n);
        let options = RankOptions { top_k: 5, sizes };
        let a = rank(q, &scaled, &targets, 0..n_queries, &options, &NoProgress).unwrap();
        let b = rank(q, &dense, &targets, 0..n_queries, &options, &NoProgress).unwrap();
        prop_assert_eq!(a, b);
    }
}

#[test]
fn scaled_rows_are_checked() {
    let raw = [3.0f32, 4.0, 0.0, 2.0, 1.0, f32::NAN];
    assert!(ScaledRows::new(&raw[..4], 2, None, &[0.2, 0.5]).is_ok());
    assert!(ScaledRows::new(&raw[..4], 0, None, &[]).is_err());
    assert!(ScaledRows::new(&raw[..4], 3, None, &[0.2]).is_err(), "4 values are not rows of 3");
    assert!(ScaledRows::new(&raw[..4], 2, None, &[0.2]).is_err(), "one scale for two rows");
    assert!(ScaledRows::new(&raw[..4], 2, Some(&[1, 2]), &[0.2, 0.5]).is_err(), "row 2 of 2");
    let err = ScaledRows::new(&raw, 2, Some(&[0, 2]), &[0.2, 1.0]).unwrap_err().to_string();
    assert!(err.contains("row 1, column 1") && err.contains("not finite"), "{err}");
    let err = ScaledRows::new(&raw[..4], 2, None, &[0.2, f32::INFINITY]).unwrap_err().to_string();
    assert!(err.contains("row 1, column 0"), "{err}");
}

/// Galleries wide enough for the scaled kernel to split chunks into several GEMM calls
/// (including a tail that would be one column wide) score bitwise like one GEMM per chunk
/// over the normalised rows.
#[test]
fn scaled_gallery_sub_chunks_score_bitwise_like_whole_chunks() {
    let mut rng = ChaCha8Rng::seed_from_u64(17);
    for (n, dim, block_rows) in [(1000, 24, 0), (961, 8, 5), (97, 3, 1), (2100, 16, 96)] {
        let raw: Vec<f32> =
            (0..n * dim).map(|_| StandardNormal.sample(&mut rng)).map(|v: f32| v * 7.0).collect();
        let view = crate::cohort::View::from_memory("g", n, dim, raw.clone()).unwrap();
        let scales: Vec<f32> =
            raw.chunks(dim).map(|row| crate::cohort::view::row_scale(row).unwrap().1).collect();
        let dense = Gallery::new(Rows::from_view(&view));
        let scaled = Gallery::scaled(ScaledRows::new(&raw, dim, None, &scales).unwrap());
        let n_queries = 13;
        let queries = gaussian_rows(&mut rng, n_queries, dim);
        let q = Rows::new(&queries, n_queries, dim).unwrap();
        let sizes = BlockSizes { block_rows, ..BlockSizes::default() };
        let scores = |gallery: &Gallery<'_>| {
            let mut all = Vec::new();
            for_each_block(q, gallery, 0..n_queries, &sizes, &NoProgress, |block| {
                for i in 0..block.len() {
                    all.extend((0..n).map(|g| block.row(i).score(g).to_bits()));
                }
                Ok(())
            })
            .unwrap();
            all
        };
        assert_eq!(scores(&scaled), scores(&dense), "n = {n}, dim = {dim}");
    }
}
