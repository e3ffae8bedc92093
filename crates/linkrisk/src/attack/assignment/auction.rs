//! Approximate one-to-one assignment for pools too large for the dense Hungarian method:
//! Bertsekas' auction algorithm (Bertsekas 1988, "The auction algorithm: a distributed
//! relaxation method for the assignment problem") with epsilon-scaling, on a sparse
//! candidate graph.
//!
//! The graph holds each query's k most similar gallery items, each gallery item's k most
//! similar queries, and the edges of a greedy matching completed arbitrarily, so that a
//! perfect matching always exists and the auction terminates. Memory is O(n k). The result
//! is optimal on the graph to within n * eps_final of the total score; the graph may miss
//! an edge the dense optimum uses (measured in docs/PERFORMANCE.md, "Attacks").

use crate::engine::{rank, BlockSizes, Gallery, Progress, RankOptions, Rows, Targets};
use crate::error::{Error, Result};

/// A sparse bipartite score graph: row i's edges are `col[start[i]..start[i+1]]` with
/// scores `value[..]`.
#[derive(Debug, Clone)]
pub struct SparseScores {
    /// Rows (= columns).
    pub n: usize,
    /// CSR row starts (n + 1).
    pub start: Vec<usize>,
    /// Column of each edge.
    pub col: Vec<u32>,
    /// Score of each edge.
    pub value: Vec<f64>,
}

fn dot(a: &[f32], b: &[f32]) -> f64 {
    a.iter().zip(b).map(|(x, y)| f64::from(*x) * f64::from(*y)).sum()
}

/// The candidate graph between `queries` and `gallery` (both n rows): top-`k` both ways by
/// the engine's blocked passes, plus a completed greedy matching. Scores are cosine
/// similarities recomputed in f64 so every edge has one value.
pub fn candidate_graph(
    queries: Rows<'_>,
    gallery: Rows<'_>,
    k: usize,
    sizes: &BlockSizes,
    progress: &dyn Progress,
) -> Result<SparseScores> {
    let n = queries.n();
    if gallery.n() != n {
        return Err(Error::config("assignment needs as many gallery items as queries"));
    }
    let k = k.min(n).max(1);
    let options = RankOptions { top_k: k, sizes: *sizes };
    let forward = rank(queries, &Gallery::new(gallery), &Targets::none(n, n), 0..n, &options, progress)?;
    let backward = rank(gallery, &Gallery::new(queries), &Targets::none(n, n), 0..n, &options, progress)?;
    let mut lists: Vec<Vec<u32>> =
        forward.iter().map(|r| r.top.iter().map(|x| x.gallery).collect()).collect();
    for (g, r) in backward.iter().enumerate() {
        for x in &r.top {
            lists[x.gallery as usize].push(g as u32);
        }
    }
    for list in &mut lists {
        list.sort_unstable();
        list.dedup();
    }
    // Greedy matching over the candidate edges, best first, completed in index order.
    let mut edges: Vec<(f64, u32, u32)> = Vec::new();
    for (i, list) in lists.iter().enumerate() {
        for &j in list {
            edges.push((dot(queries.row(i), gallery.row(j as usize)), i as u32, j));
        }
    }
    edges.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)));
    let (mut row_used, mut col_used) = (vec![false; n], vec![false; n]);
    for &(_, i, j) in &edges {
        if !row_used[i as usize] && !col_used[j as usize] {
            row_used[i as usize] = true;
            col_used[j as usize] = true;
        }
    }
    let free_cols: Vec<u32> = (0..n as u32).filter(|&j| !col_used[j as usize]).collect();
    for (i, &j) in (0..n).filter(|&i| !row_used[i]).zip(&free_cols) {
        if let Err(at) = lists[i].binary_search(&j) {
            lists[i].insert(at, j);
        }
    }
    let mut start = Vec::with_capacity(n + 1);
    let (mut col, mut value) = (Vec::new(), Vec::new());
    start.push(0);
    for (i, list) in lists.iter().enumerate() {
        for &j in list {
            col.push(j);
            value.push(dot(queries.row(i), gallery.row(j as usize)));
        }
        start.push(col.len());
    }
    Ok(SparseScores { n, start, col, value })
}

/// Maximum-score perfect matching on `graph` by the auction algorithm (Gauss–Seidel bids,
/// epsilon-scaling by a factor 5 down to `eps_final`): the column of each row. The graph
/// must contain a perfect matching ([`candidate_graph`] guarantees one).
pub fn auction(graph: &SparseScores, eps_final: f64) -> Result<Vec<u32>> {
    let n = graph.n;
    if n == 0 {
        return Ok(Vec::new());
    }
    if eps_final.is_nan() || eps_final <= 0.0 {
        return Err(Error::config("auction: the final epsilon must be positive"));
    }
    if (0..n).any(|i| graph.start[i] == graph.start[i + 1]) {
        return Err(Error::config("auction: a row has no candidate column"));
    }
    let (lo, hi) =
        graph.value.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), &v| (l.min(v), h.max(v)));
    let range = (hi - lo).max(eps_final);
    const NONE: u32 = u32::MAX;
    let mut price = vec![0f64; n];
    let mut eps = (range / 5.0).max(eps_final);
    // A generous cap on bids; exceeding it means the graph has no perfect matching.
    let max_bids = (n as u64).saturating_mul(graph.col.len() as u64 + 16).saturating_mul(64).max(1 << 20);
    loop {
        let mut owner = vec![NONE; n];
        let mut assigned = vec![NONE; n];
        let mut stack: Vec<u32> = (0..n as u32).rev().collect();
        let mut bids = 0u64;
        while let Some(i) = stack.pop() {
            let i = i as usize;
            let (mut best, mut best_j, mut second) = (f64::NEG_INFINITY, NONE, f64::NEG_INFINITY);
            for e in graph.start[i]..graph.start[i + 1] {
                let j = graph.col[e];
                let net = graph.value[e] - price[j as usize];
                if net > best {
                    second = best;
                    best = net;
                    best_j = j;
                } else if net > second {
                    second = net;
                }
            }
            let increment = if second.is_finite() { best - second + eps } else { range + eps };
            let j = best_j as usize;
            price[j] += increment;
            let previous = owner[j];
            if previous != NONE {
                assigned[previous as usize] = NONE;
                stack.push(previous);
            }
            owner[j] = i as u32;
            assigned[i] = j as u32;
            bids += 1;
            if bids > max_bids {
                return Err(Error::config(
                    "auction did not converge: the candidate graph has no perfect matching",
                ));
            }
        }
        if eps <= eps_final {
            return Ok(assigned);
        }
        eps = (eps / 5.0).max(eps_final);
    }
}

#[cfg(test)]
mod tests {
    use super::super::hungarian::{hungarian, total};
    use super::*;
    use crate::engine::NoProgress;

    #[test]
    fn dense_auction_reaches_the_hungarian_optimum() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
        for n in [1usize, 2, 5, 17, 40] {
            let scores: Vec<f64> = (0..n * n).map(|_| rng.random_range(-1.0..1.0)).collect();
            let graph = SparseScores {
                n,
                start: (0..=n).map(|i| i * n).collect(),
                col: (0..n * n).map(|e| (e % n) as u32).collect(),
                value: scores.clone(),
            };
            let eps = 1e-9;
            let got: Vec<usize> = auction(&graph, eps).unwrap().iter().map(|&j| j as usize).collect();
            let mut sorted = got.clone();
            sorted.sort_unstable();
            assert_eq!(sorted, (0..n).collect::<Vec<_>>());
            let exact = hungarian(&scores, n);
            let gap = total(&scores, n, &exact) - total(&scores, n, &got);
            assert!((0.0..=n as f64 * eps + 1e-12).contains(&gap), "n={n}: gap {gap}");
        }
    }

    #[test]
    fn sparse_candidates_recover_the_optimum_on_clustered_data() {
        // Queries near their own gallery item, with enough noise that a thin graph misses edges.
        use rand::SeedableRng;
        use rand_distr::{Distribution, StandardNormal};
        let (n, d) = (150, 16);
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(8);
        let mut normal = || -> f32 { StandardNormal.sample(&mut rng) };
        let base: Vec<f32> = (0..n * d).map(|_| normal()).collect();
        let unit = |v: Vec<f32>| -> Vec<f32> {
            v.chunks(d)
                .flat_map(|r| {
                    let s = r.iter().map(|x| x * x).sum::<f32>().sqrt();
                    r.iter().map(move |x| x / s).collect::<Vec<_>>()
                })
                .collect()
        };
        let q = unit(base.iter().map(|x| x + 0.6 * normal()).collect());
        let g = unit(base.iter().map(|x| x + 0.6 * normal()).collect());
        let (qr, gr) = (Rows::new(&q, n, d).unwrap(), Rows::new(&g, n, d).unwrap());
        let dense: Vec<f64> = (0..n * n).map(|e| dot(qr.row(e / n), gr.row(e % n))).collect();
        let exact = hungarian(&dense, n);
        // A thin graph (k = 8) misses edges the dense optimum uses here, but the auction is
        // still optimal on the graph: equal to the Hungarian method with the missing edges
        // forbidden (a large negative score).
        let graph = candidate_graph(qr, gr, 8, &BlockSizes::default(), &NoProgress).unwrap();
        assert!(graph.col.len() <= n * 16 + n);
        let got: Vec<usize> = auction(&graph, 1e-9).unwrap().iter().map(|&j| j as usize).collect();
        let mut masked = vec![-1e3f64; n * n];
        for i in 0..n {
            for e in graph.start[i]..graph.start[i + 1] {
                masked[i * n + graph.col[e] as usize] = graph.value[e];
            }
        }
        let on_graph = hungarian(&masked, n);
        let gap = total(&masked, n, &on_graph) - total(&masked, n, &got);
        assert!(gap.abs() < 1e-6, "auction vs the graph's optimum: gap {gap}");
        assert!(total(&dense, n, &exact) - total(&dense, n, &got) > 1e-3, "k = 8 should miss an edge here");
        // With k = 32 the graph holds the dense optimum and the auction finds it.
        let graph = candidate_graph(qr, gr, 32, &BlockSizes::default(), &NoProgress).unwrap();
        let got: Vec<usize> = auction(&graph, 1e-9).unwrap().iter().map(|&j| j as usize).collect();
        let gap = total(&dense, n, &exact) - total(&dense, n, &got);
        assert!(gap.abs() < 1e-6, "gap {gap}");
        assert_eq!(got, exact);
    }
}
