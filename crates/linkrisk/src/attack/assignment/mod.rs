//! One-to-one assignment: an attacker who holds a batch of N images and the batch of their
//! N reports (in unknown order) links them jointly — every report is used once — instead
//! of giving each image its nearest report independently. Hubs can then win only one
//! image each.
//!
//! Protocol: a batch is N queries drawn at random (seeded) such that no two belong to the
//! same group (no query's true match is another batch member's positive or exclusion, e.g.
//! two images of one study sharing one report), together with their N true matches,
//! shuffled. The fraction of queries assigned their own match is reported, and
//! independent nearest-neighbour Recall@1 on the same batches for comparison. Batches of
//! up to `exact_max` pairs are solved exactly (dense Hungarian); larger batches by the
//! auction algorithm on a sparse candidate graph (O(N k) memory).
//!
//! Any per-query or per-gallery-item additive offset (CSLS, inverted softmax) adds a
//! constant to every complete assignment's total, so these corrections cannot change the
//! optimal assignment: assignment on cosine subsumes them.

pub mod auction;
pub mod hungarian;

use std::collections::HashSet;

use faer::linalg::matmul::matmul;
use faer::{Accum, MatMut, MatRef, Par};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use super::gather_rows;
use crate::engine::{rank, BlockSizes, Gallery, NoProgress, Progress, RankOptions, Rows, Targets};
use crate::error::{Error, Result};
use crate::metrics::retrieval::hit_probability;
use crate::rng;

pub use auction::{auction, candidate_graph, SparseScores};
pub use hungarian::hungarian;

/// Settings of the assignment attack.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AssignmentSettings {
    /// Largest batch solved exactly (dense Hungarian); larger ones use the auction.
    pub exact_max: usize,
    /// Candidates per item in the auction's sparse graph (each way).
    pub candidates: usize,
    /// Final epsilon of the auction (total score within N * eps of the graph's optimum).
    pub eps_final: f64,
    /// Links evaluated per pool size: batches = ceil(links / N) (at least 1).
    pub links_per_size: usize,
}

impl Default for AssignmentSettings {
    fn default() -> Self {
        AssignmentSettings { exact_max: 2000, candidates: 64, eps_final: 1e-7, links_per_size: 10_000 }
    }
}

impl AssignmentSettings {
    /// Reject bad values.
    pub fn validate(&self) -> Result<()> {
        if self.candidates < 2 {
            return Err(Error::config("assignment: the auction needs at least 2 candidates per item"));
        }
        if self.links_per_size == 0 {
            return Err(Error::config("assignment: links per pool size must be positive"));
        }
        if !(self.eps_final > 0.0 && self.eps_final.is_finite()) {
            return Err(Error::config("assignment: the auction's final epsilon must be positive"));
        }
        Ok(())
    }
}

/// Which solver a batch used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Solver {
    /// Exact dense Hungarian method.
    Hungarian,
    /// Auction algorithm on a sparse candidate graph.
    Auction,
}

/// The assignment attack at one pool size, on the true targets and on the control.
#[derive(Debug, Clone)]
pub struct AssignmentOutcome {
    /// Pairs per batch.
    pub batch_size: usize,
    /// Batches drawn.
    pub batches: usize,
    /// Queries assigned their own match, summed over batches.
    pub correct: f64,
    /// Expected nearest-neighbour hits@1 on the same batches (ties in expectation).
    pub nearest_neighbour_hits: f64,
    /// Links evaluated (batches x batch size).
    pub links: usize,
    /// Decoys assigned to their query in the control batches.
    pub control_correct: f64,
    /// Links evaluated in the control.
    pub control_links: usize,
    /// Solver used.
    pub solver: Solver,
}

/// Draw a batch of up to `size` queries (all that fit when `size` is None) in random order
/// such that no member's anchor is special (a positive or exclusion) for another member.
/// None when fewer than `size` such queries exist.
pub fn sample_batch(targets: &Targets, size: Option<usize>, rng: &mut ChaCha8Rng) -> Option<Vec<usize>> {
    let mut pool: Vec<usize> = (0..targets.n_queries()).filter(|&q| targets.anchor(q).is_some()).collect();
    let want = size.unwrap_or(pool.len());
    let mut batch = Vec::with_capacity(want.min(pool.len()));
    let mut anchors: HashSet<u32> = HashSet::new();
    let mut special: HashSet<u32> = HashSet::new();
    let mut i = 0;
    while batch.len() < want && i < pool.len() {
        let j = rng.random_range(i..pool.len());
        pool.swap(i, j);
        let q = pool[i];
        i += 1;
        let anchor = targets.anchor(q).expect("filtered") as u32;
        let (items, _) = targets.special(q);
        if special.contains(&anchor) || items.iter().any(|g| anchors.contains(g)) {
            continue;
        }
        anchors.insert(anchor);
        special.extend(items.iter().copied().filter(|&g| g != anchor));
        batch.push(q);
    }
    (size.is_none() || batch.len() == want).then_some(batch)
}

/// Solve one batch: `queries` and `gallery` row i are a true pair. The gallery is shuffled
/// (seeded by `rng`) before solving, so ties cannot favour the truth. Returns
/// (queries assigned their own match, expected nearest-neighbour hits, solver).
pub fn solve_batch(
    queries: Rows<'_>,
    gallery: Rows<'_>,
    settings: &AssignmentSettings,
    rng: &mut ChaCha8Rng,
    sizes: &BlockSizes,
    progress: &dyn Progress,
) -> Result<(usize, f64, Solver)> {
    let n = queries.n();
    let dim = queries.dim();
    // Nearest neighbour within the batch (exact ranks, ties in expectation).
    let nn = rank(
        queries,
        &Gallery::new(gallery),
        &Targets::identity(n),
        0..n,
        &RankOptions { top_k: 0, sizes: *sizes },
        progress,
    )?;
    let nn_hits: f64 =
        nn.iter().map(|r| hit_probability(r.positives[0].greater, r.positives[0].tied, 1)).sum();
    let mut perm: Vec<usize> = (0..n).collect();
    for i in (1..n).rev() {
        perm.swap(i, rng.random_range(0..=i));
    }
    let mut shuffled = Vec::with_capacity(n * dim);
    for &p in &perm {
        shuffled.extend_from_slice(gallery.row(p));
    }
    let shuffled_rows = Rows::new(&shuffled, n, dim)?;
    let (cols, solver): (Vec<usize>, Solver) = if n <= settings.exact_max {
        let mut scores32 = vec![0f32; n * n];
        let dst = MatMut::from_row_major_slice_mut(&mut scores32, n, n);
        let lhs = MatRef::from_row_major_slice(queries.data(), n, dim);
        let rhs = MatRef::from_row_major_slice(&shuffled, n, dim);
        matmul(dst, Accum::Replace, lhs, rhs.transpose(), 1.0, Par::rayon(0));
        let scores: Vec<f64> = scores32.iter().map(|&s| f64::from(s)).collect();
        (hungarian(&scores, n), Solver::Hungarian)
    } else {
        let graph = candidate_graph(queries, shuffled_rows, settings.candidates, sizes, progress)?;
        let cols = auction(&graph, settings.eps_final)?;
        (cols.into_iter().map(|c| c as usize).collect(), Solver::Auction)
    };
    let correct = cols.iter().enumerate().filter(|&(i, &c)| perm[c] == i).count();
    Ok((correct, nn_hits, solver))
}

/// Summed over a pool size's batches: (correct, nearest-neighbour hits, links, batch size,
/// solver).
type BatchTotals = (f64, f64, usize, usize, Solver);

/// Run the assignment attack at pool size `pool` (None: one batch of every query that fits,
/// the full database) on `targets` and on the control `control`. None when the task has
/// fewer than `pool` queries from distinct groups.
pub fn run_pool(
    queries: Rows<'_>,
    gallery: Rows<'_>,
    targets: &Targets,
    control: &Targets,
    pool: Option<usize>,
    settings: &AssignmentSettings,
    seed: u64,
    sizes: &BlockSizes,
    progress: &dyn Progress,
) -> Result<Option<AssignmentOutcome>> {
    let label = pool.map_or("full".to_string(), |n| n.to_string());
    let batches = match pool {
        Some(n) => settings.links_per_size.div_ceil(n).max(1),
        None => 1,
    };
    let side = |truth: &Targets, purpose: String| -> Result<Option<BatchTotals>> {
        let run_one = |b: usize| -> Result<Option<(usize, f64, usize, Solver)>> {
            let mut rng = rng::stream(seed, &purpose, b as u64);
            let Some(batch) = sample_batch(truth, pool, &mut rng) else { return Ok(None) };
            if batch.len() < 2 {
                return Ok(None);
            }
            let anchors: Vec<usize> = batch.iter().map(|&q| truth.anchor(q).expect("sampled")).collect();
            let q_data = gather_rows(queries, &batch);
            let g_data = gather_rows(gallery, &anchors);
            let n = batch.len();
            let (q_rows, g_rows) =
                (Rows::new(&q_data, n, queries.dim())?, Rows::new(&g_data, n, gallery.dim())?);
            let (correct, nn, solver) = solve_batch(q_rows, g_rows, settings, &mut rng, sizes, &NoProgress)?;
            Ok(Some((correct, nn, n, solver)))
        };
        let dense = pool.is_some_and(|n| n <= settings.exact_max);
        let results: Vec<Option<(usize, f64, usize, Solver)>> = if dense {
            (0..batches).into_par_iter().map(run_one).collect::<Result<_>>()?
        } else {
            (0..batches).map(run_one).collect::<Result<_>>()?
        };
        progress.advance(batches as u64);
        let mut total = (0.0, 0.0, 0usize, 0usize, Solver::Hungarian);
        for r in results {
            let Some((correct, nn, n, solver)) = r else { return Ok(None) };
            total.0 += correct as f64;
            total.1 += nn;
            total.2 += n;
            total.3 = n;
            total.4 = solver;
        }
        Ok(Some(total))
    };
    progress.begin(2 * batches as u64, &format!("assignment: pool {label}"));
    let Some((correct, nn, links, batch_size, solver)) =
        side(targets, format!("assignment-batches-{label}"))?
    else {
        return Ok(None);
    };
    let Some((control_correct, _, control_links, _, _)) =
        side(control, format!("assignment-control-batches-{label}"))?
    else {
        return Ok(None);
    };
    Ok(Some(AssignmentOutcome {
        batch_size,
        batches,
        correct,
        nearest_neighbour_hits: nn,
        links,
        control_correct,
        control_links,
        solver,
    }))
}
