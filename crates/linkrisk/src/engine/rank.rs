//! Full-gallery ranking: per query, the (greater, tied) counts of negatives against every
//! positive's score, and a top-k, from one pass of the blocked kernel.
//!
//! A block is processed in three phases. (A) The chunks holding any of the block's
//! positives or exclusions are scored first, so every such item's score is read from the
//! very buffer the counts are taken from (no separately computed "true match" similarity
//! that could round differently). (B) All chunks are scored (in parallel, each chunk a
//! sequential GEMM) and reduced while hot in cache: counts of scores above and at each
//! positive's score, and a chunk-local top-k. (C) Per query, counts are summed over
//! chunks, the positives' and exclusions' own contributions are subtracted (they are not
//! negatives), and an optional [`QueryReducer`] (e.g. candidate pools) reads the query's
//! full score row.

use std::ops::Range;
use std::sync::atomic::{AtomicU32, Ordering};

use faer::Par;
use rayon::prelude::*;

use super::count::{count_against, count_one_and_flag, flag_groups, range_maxima, LANES};
use super::gallery::Gallery;
use super::kernel::{
    check_shapes, chunk_grid, compute_chunk, compute_chunks, BlockSizes, BufferPtr, Layout, Progress,
    ScoreRow,
};
use super::rows::Rows;
use super::targets::Targets;
use super::topk::{Neighbor, TopK};
use crate::error::{Error, Result};

/// What a ranking pass keeps besides the counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RankOptions {
    /// Nearest gallery items to keep per query (0: none). Excluded items never appear;
    /// positives do.
    pub top_k: usize,
    /// Block and chunk sizes of the kernel.
    pub sizes: BlockSizes,
}

/// Where one positive landed in a query's ranking.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PositiveRank {
    /// Gallery index of the positive.
    pub gallery: u32,
    /// Its score.
    pub score: f32,
    /// Negatives scoring strictly higher.
    pub greater: u64,
    /// Negatives scoring exactly the same (ties, broken at random in expectation).
    pub tied: u64,
}

/// The rank of a query's best-scoring positive, with ties: `greater` negatives above it,
/// and a tie group of `tied_negatives` negatives and `tied_positives` positives (itself
/// included) in random order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FirstPositive {
    /// Negatives strictly above the best positive.
    pub greater: u64,
    /// Negatives tied with it.
    pub tied_negatives: u64,
    /// Positives tied with it, itself included (at least 1).
    pub tied_positives: u64,
}

/// One query's result.
#[derive(Debug, Clone, PartialEq)]
pub struct QueryRanking {
    /// Query index (in the query matrix).
    pub query: usize,
    /// Negatives of this query: gallery items neither positive nor excluded.
    pub n_negatives: u64,
    /// One entry per positive, ascending gallery index.
    pub positives: Vec<PositiveRank>,
    /// Index into `positives` of the anchor (the query's one true match), if any.
    pub anchor: Option<usize>,
    /// The `top_k` best non-excluded gallery items, best first (ties: lower index first).
    pub top: Vec<Neighbor>,
}

impl QueryRanking {
    /// The anchor positive's rank.
    pub fn anchor_rank(&self) -> Option<&PositiveRank> {
        self.anchor.map(|i| &self.positives[i])
    }

    /// The rank of the best-scoring positive (patient-level matching: any positive counts).
    pub fn first_positive(&self) -> Option<FirstPositive> {
        let best = self.positives.iter().map(|p| p.score).reduce(f32::max)?;
        let tied_positives = self.positives.iter().filter(|p| p.score == best).count() as u64;
        let p = self.positives.iter().find(|p| p.score == best)?;
        Some(FirstPositive { greater: p.greater, tied_negatives: p.tied, tied_positives })
    }
}

/// A per-query computation that needs the query's whole score row, run inside the block
/// while the row is in memory (e.g. evaluating candidate pools without new dot products).
pub trait QueryReducer: Sync {
    /// What it produces per query.
    type Output: Send;
    /// Reduce query `query`'s scores, given its ranking.
    fn reduce(&self, query: usize, row: ScoreRow<'_>, ranking: &QueryRanking) -> Self::Output;
}

impl QueryReducer for () {
    type Output = ();
    fn reduce(&self, _query: usize, _row: ScoreRow<'_>, _ranking: &QueryRanking) {}
}

/// A computation over the gallery side of a ranking pass: per gallery representative,
/// across the queries (e.g. CSLS's k nearest queries of each gallery item, or the inverted
/// softmax's normaliser over the queries). It runs in phase B on each chunk's scores right
/// after they are reduced, so a statistic that would otherwise need a pass of its own (a
/// second GEMM over all pairs) costs one more scan of memory the pass already wrote.
///
/// The engine keeps one `State` per chunk of representatives and hands each chunk's
/// scores, block after block, to that chunk's state alone, so states need no locking.
pub trait ColumnReducer: Sync {
    /// What is kept for one chunk of representatives.
    type State: Send;
    /// A fresh state for representatives `c0..c1`.
    fn init(&self, c0: usize, c1: usize) -> Self::State;
    /// Fold in the scores of queries `q0..q0 + scores.len() / (c1 - c0)` against
    /// representatives `c0..c1`: row-major, one row of `c1 - c0` scores per query (gallery
    /// offsets included, if the gallery has any). Queries arrive in ascending blocks.
    fn reduce(&self, state: &mut Self::State, q0: usize, c0: usize, c1: usize, scores: &[f32]);
}

impl ColumnReducer for () {
    type State = ();
    fn init(&self, _c0: usize, _c1: usize) {}
    fn reduce(&self, _state: &mut (), _q0: usize, _c0: usize, _c1: usize, _scores: &[f32]) {}
}

/// The chunk states of a [`ColumnReducer`] after a pass: `(c0, c1, state)` per chunk of
/// representatives, in column order, covering `0..n_unique` exactly once.
pub type ColumnStates<S> = Vec<(usize, usize, S)>;

/// What [`rank_with_columns`] returns: per query its ranking and the [`QueryReducer`]'s
/// output, and the [`ColumnReducer`]'s chunk states.
pub type RankedColumns<O, S> = (Vec<(QueryRanking, O)>, ColumnStates<S>);

/// Rank queries `range` of `queries` against `gallery` (see the module docs). Results come
/// in query order; a query range is a shard: concatenating the results of disjoint ranges
/// gives exactly the result of their union.
pub fn rank(
    queries: Rows<'_>,
    gallery: &Gallery<'_>,
    targets: &Targets,
    range: Range<usize>,
    options: &RankOptions,
    progress: &dyn Progress,
) -> Result<Vec<QueryRanking>> {
    Ok(rank_with(queries, gallery, targets, range, options, &(), progress)?
        .into_iter()
        .map(|(r, ())| r)
        .collect())
}

/// [`rank`], also running `reducer` on every query's score row.
pub fn rank_with<R: QueryReducer>(
    queries: Rows<'_>,
    gallery: &Gallery<'_>,
    targets: &Targets,
    range: Range<usize>,
    options: &RankOptions,
    reducer: &R,
    progress: &dyn Progress,
) -> Result<Vec<(QueryRanking, R::Output)>> {
    Ok(rank_with_columns(queries, gallery, targets, range, options, reducer, &(), progress)?.0)
}

/// [`rank_with`], also running `columns` over the gallery side of the same scores (see
/// [`ColumnReducer`]); returns its chunk states beside the rankings.
#[allow(clippy::too_many_arguments)]
pub fn rank_with_columns<R: QueryReducer, C: ColumnReducer>(
    queries: Rows<'_>,
    gallery: &Gallery<'_>,
    targets: &Targets,
    range: Range<usize>,
    options: &RankOptions,
    reducer: &R,
    columns: &C,
    progress: &dyn Progress,
) -> Result<RankedColumns<R::Output, C::State>> {
    check_shapes(queries, gallery, &range)?;
    options.sizes.validate()?;
    if targets.n_queries() != queries.n() || targets.n_gallery() != gallery.len() {
        return Err(Error::config(format!(
            "targets describe {} queries x {} gallery items, but the ranking has {} x {}",
            targets.n_queries(),
            targets.n_gallery(),
            queries.n(),
            gallery.len()
        )));
    }
    let n_unique = gallery.n_unique();
    let (block_rows, chunk_cols) = options.sizes.resolve(n_unique);
    let pass = Pass {
        queries,
        gallery,
        targets,
        top_k: options.top_k,
        chunks: chunk_grid(n_unique, chunk_cols),
        width: chunk_cols.max(2),
        weights: gallery.multiplicities(),
    };
    let mut buffer = vec![0f32; block_rows.min(range.len()) * n_unique];
    let mut states: Vec<C::State> = pass.chunks.iter().map(|&(c0, c1)| columns.init(c0, c1)).collect();
    let mut out = Vec::with_capacity(range.len());
    let mut b0 = range.start;
    while b0 < range.end {
        let b1 = (b0 + block_rows).min(range.end);
        out.extend(pass.block(b0, b1, &mut buffer[..(b1 - b0) * n_unique], reducer, columns, &mut states));
        progress.advance((b1 - b0) as u64);
        super::kernel::check_cancelled(progress)?;
        b0 = b1;
    }
    let states = pass.chunks.iter().zip(states).map(|(&(c0, c1), s)| (c0, c1, s)).collect();
    Ok((out, states))
}

/// Everything a ranking pass shares across blocks.
struct Pass<'p, 'g> {
    queries: Rows<'p>,
    gallery: &'p Gallery<'g>,
    targets: &'p Targets,
    top_k: usize,
    chunks: Vec<(usize, usize)>,
    /// Nominal chunk width.
    width: usize,
    weights: Option<Vec<u32>>,
}

/// A query's special items with their scores and its distinct positive scores.
struct Plan {
    /// Scores of `targets.special(q)` items, same order.
    special_scores: Vec<f32>,
    /// Distinct positive scores, ascending.
    thresholds: Vec<f32>,
    /// Offset of this query's thresholds in a chunk's flat count arrays.
    count_start: usize,
    /// Top-k within the phase-A chunks; its k-th score bounds the top-k from below, so the
    /// other chunks only look at scores at or above it.
    seed_top: Vec<Neighbor>,
    /// The bound (−inf while the seed list is not full).
    seed_threshold: f32,
}

/// One chunk's reduction for every query of the block.
struct ChunkCounts {
    greater: Vec<u64>,
    tied: Vec<u64>,
    top: Vec<Vec<Neighbor>>,
}

impl Pass<'_, '_> {
    fn layout(&self, rows: usize) -> Layout<'_> {
        Layout { rows, width: self.width, chunks: &self.chunks }
    }

    fn block<R: QueryReducer, C: ColumnReducer>(
        &self,
        b0: usize,
        b1: usize,
        buffer: &mut [f32],
        reducer: &R,
        columns: &C,
        states: &mut [C::State],
    ) -> Vec<(QueryRanking, R::Output)> {
        let rows = b1 - b0;
        let block = self.queries.slice(b0, b1);
        let layout = self.layout(rows);

        // Phase A: the chunks holding positives or exclusions of any query in the block.
        let mut special_chunk = vec![false; self.chunks.len()];
        for q in b0..b1 {
            for &g in self.targets.special(q).0 {
                special_chunk[layout.chunk_of(self.gallery.unique_of(g as usize))] = true;
            }
        }
        if self.top_k > 0 && !special_chunk.contains(&true) {
            // Top-k-only pass: the first chunk seeds the top-k bound.
            special_chunk[0] = true;
        }
        let first: Vec<(usize, usize)> =
            self.chunks.iter().zip(&special_chunk).filter(|(_, &s)| s).map(|(&c, _)| c).collect();
        compute_chunks(buffer, &layout, block, self.gallery, &first);

        let mut plans: Vec<Plan> = (b0..b1)
            .into_par_iter()
            .map(|q| {
                let r = q - b0;
                let (items, positive) = self.targets.special(q);
                let special_scores: Vec<f32> = items
                    .iter()
                    .map(|&g| buffer[layout.index(r, self.gallery.unique_of(g as usize))])
                    .collect();
                let mut thresholds: Vec<f32> =
                    special_scores.iter().zip(positive).filter(|(_, &p)| p).map(|(&s, _)| s).collect();
                thresholds.sort_by(f32::total_cmp);
                thresholds.dedup();
                let mut seed_top = Vec::new();
                if self.top_k > 0 {
                    for &(c0, c1) in &first {
                        seed_top.extend(self.chunk_top(
                            q,
                            &buffer[layout.segment(r, c0, c1)],
                            c0,
                            f32::NEG_INFINITY,
                        ));
                    }
                    sort_neighbors(&mut seed_top);
                    seed_top.truncate(self.top_k);
                }
                let seed_threshold = if seed_top.len() == self.top_k {
                    seed_top.last().map_or(f32::NEG_INFINITY, |n| n.score)
                } else {
                    f32::NEG_INFINITY
                };
                Plan { special_scores, count_start: 0, thresholds, seed_top, seed_threshold }
            })
            .collect();
        let mut count_len = 0;
        for plan in &mut plans {
            plan.count_start = count_len;
            count_len += plan.thresholds.len();
        }

        // Each query's top-k floor, shared by the chunk tasks: a chunk whose local top-k is
        // full raises it to its k-th score (a valid bound for the whole gallery), so later
        // chunks skip more. The final top-k does not depend on the order tasks run in.
        let floors: Vec<AtomicU32> =
            plans.iter().map(|p| AtomicU32::new(ordered_bits(p.seed_threshold))).collect();

        // Phase B: score the remaining chunks and reduce every chunk.
        let ptr = BufferPtr::new(buffer);
        let partials: Vec<ChunkCounts> = self
            .chunks
            .par_iter()
            .zip(&special_chunk)
            .zip(states.par_iter_mut())
            .map(|((&(c0, c1), &done), state)| {
                if !done {
                    // SAFETY: chunks are disjoint column ranges; phase A's writes are finished.
                    unsafe { compute_chunk(ptr, &layout, block, self.gallery, c0, c1, Par::Seq) };
                }
                // SAFETY: this task alone touches columns c0..c1 during phase B.
                let counts = self.reduce_chunk(b0, c0, c1, done, &plans, &floors, count_len, |r| unsafe {
                    &*ptr.slice_mut(layout.segment(r, c0, c1))
                });
                // SAFETY: as above; the chunk's region is `rows` rows of `c1 - c0` scores.
                columns.reduce(state, b0, c0, c1, unsafe { &*ptr.slice_mut(c0 * rows..c1 * rows) });
                counts
            })
            .collect();

        // Phase C: per query, merge the chunks, remove the special items, run the reducer.
        let buffer = &*buffer;
        (0..rows)
            .into_par_iter()
            .map(|r| {
                let q = b0 + r;
                let ranking = self.finish_query(q, &plans[r], &partials, r);
                let row = ScoreRow::new(buffer, layout, r, self.gallery);
                let output = reducer.reduce(q, row, &ranking);
                (ranking, output)
            })
            .collect()
    }

    fn reduce_chunk<'b>(
        &self,
        b0: usize,
        c0: usize,
        c1: usize,
        seeded: bool,
        plans: &[Plan],
        floors: &[AtomicU32],
        count_len: usize,
        segment: impl Fn(usize) -> &'b [f32],
    ) -> ChunkCounts {
        let mut greater = vec![0u64; count_len];
        let mut tied = vec![0u64; count_len];
        let mut top = Vec::with_capacity(if self.top_k > 0 { plans.len() } else { 0 });
        let weights = self.weights.as_ref().map(|w| &w[c0..c1]);
        let mut flagged = Vec::new();
        for (r, plan) in plans.iter().enumerate() {
            let q = b0 + r;
            let scores = segment(r);
            let m = plan.thresholds.len();
            let span = plan.count_start..plan.count_start + m;
            // Phase-A chunks are already in the seed list.
            let want_top = self.top_k > 0 && !seeded;
            let floor = from_ordered_bits(floors[r].load(Ordering::Relaxed));
            if want_top && m == 1 && weights.is_none() && floor > f32::NEG_INFINITY {
                // The common case in one pass: counts and top-k candidate groups together.
                flagged.clear();
                let (g, e) = count_one_and_flag(scores, plan.thresholds[0], floor, &mut flagged);
                greater[span.start] += g;
                tied[span.start] += e;
                let local = self.top_of_groups(q, scores, c0, floor, &flagged);
                raise_floor(&floors[r], &local, self.top_k);
                top.push(local);
                continue;
            }
            if m > 0 {
                count_against(scores, weights, &plan.thresholds, &mut greater[span.clone()], &mut tied[span]);
            }
            if self.top_k > 0 {
                let local = if want_top { self.chunk_top(q, scores, c0, floor) } else { Vec::new() };
                raise_floor(&floors[r], &local, self.top_k);
                top.push(local);
            }
        }
        ChunkCounts { greater, tied, top }
    }

    /// A floor for one query's top-k within `scores`: split them into k + e ranges
    /// (e = the query's exclusions); each range's maximum is a distinct item, so at least k
    /// eligible items score at or above the smallest of those maxima.
    fn top_floor(&self, q: usize, scores: &[f32]) -> f32 {
        let parts = self.top_k + self.targets.n_exclusions(q);
        if parts == 0 || parts > scores.len() {
            return f32::NEG_INFINITY;
        }
        range_maxima(scores, parts).into_iter().fold(f32::INFINITY, f32::min)
    }

    /// Offer the flagged 16-element groups of one query's chunk to a top-k, keeping scores
    /// at or above `floor`.
    fn top_of_groups(
        &self,
        q: usize,
        scores: &[f32],
        c0: usize,
        floor: f32,
        flagged: &[u32],
    ) -> Vec<Neighbor> {
        let mut top = TopK::new(self.top_k);
        let mut threshold = floor;
        for &start in flagged {
            let start = start as usize;
            for (j, &x) in scores[start..(start + LANES).min(scores.len())].iter().enumerate() {
                if x < threshold {
                    continue;
                }
                for &g in self.gallery.members(c0 + start + j) {
                    if !self.targets.is_excluded(q, g) {
                        top.offer(Neighbor { gallery: g, score: x });
                    }
                }
                threshold = top.threshold().max(floor);
            }
        }
        top.into_vec()
    }

    /// Top-k of one query within one chunk among scores at or above `floor` (computing a
    /// floor of its own when `floor` is −inf).
    fn chunk_top(&self, q: usize, scores: &[f32], c0: usize, floor: f32) -> Vec<Neighbor> {
        let floor = if floor == f32::NEG_INFINITY { self.top_floor(q, scores) } else { floor };
        let mut flagged = Vec::new();
        flag_groups(scores, floor, &mut flagged);
        self.top_of_groups(q, scores, c0, floor, &flagged)
    }

    fn finish_query(&self, q: usize, plan: &Plan, partials: &[ChunkCounts], r: usize) -> QueryRanking {
        let m = plan.thresholds.len();
        let span = plan.count_start..plan.count_start + m;
        let mut greater = vec![0u64; m];
        let mut tied = vec![0u64; m];
        for part in partials {
            for (acc, v) in greater.iter_mut().zip(&part.greater[span.clone()]) {
                *acc += v;
            }
            for (acc, v) in tied.iter_mut().zip(&part.tied[span.clone()]) {
                *acc += v;
            }
        }
        // Positives and exclusions were counted like everyone else; they are not negatives.
        for &s in &plan.special_scores {
            for (j, &t) in plan.thresholds.iter().enumerate() {
                if s > t {
                    greater[j] -= 1;
                } else if s == t {
                    tied[j] -= 1;
                }
            }
        }
        let (items, positive) = self.targets.special(q);
        let anchor_item = self.targets.anchor(q);
        let mut anchor = None;
        let mut positives = Vec::new();
        for ((&g, &is_positive), &score) in items.iter().zip(positive).zip(&plan.special_scores) {
            if !is_positive {
                continue;
            }
            let j = plan.thresholds.partition_point(|&t| t < score);
            if anchor_item == Some(g as usize) {
                anchor = Some(positives.len());
            }
            positives.push(PositiveRank { gallery: g, score, greater: greater[j], tied: tied[j] });
        }
        let top = if self.top_k > 0 {
            let mut all: Vec<Neighbor> = plan.seed_top.clone();
            all.extend(partials.iter().flat_map(|p| p.top[r].iter().copied()));
            sort_neighbors(&mut all);
            all.truncate(self.top_k);
            all
        } else {
            Vec::new()
        };
        QueryRanking { query: q, n_negatives: self.targets.n_negatives(q) as u64, positives, anchor, top }
    }
}

/// An f32 as a u32 whose unsigned order is the float order (for atomic max).
fn ordered_bits(x: f32) -> u32 {
    let bits = x.to_bits();
    if bits & 0x8000_0000 != 0 {
        !bits
    } else {
        bits | 0x8000_0000
    }
}

fn from_ordered_bits(key: u32) -> f32 {
    f32::from_bits(if key & 0x8000_0000 != 0 { key & 0x7FFF_FFFF } else { !key })
}

/// Raise a query's shared top-k floor to the k-th score of a full local top-k.
fn raise_floor(floor: &AtomicU32, local: &[Neighbor], k: usize) {
    if local.len() == k {
        if let Some(kth) = local.last() {
            floor.fetch_max(ordered_bits(kth.score), Ordering::Relaxed);
        }
    }
}

/// Best first; equal scores by ascending gallery index.
fn sort_neighbors(list: &mut [Neighbor]) {
    // Same order as `Neighbor::before`: -0.0 and +0.0 are one score (adding +0.0 maps -0.0
    // to +0.0), so the smaller gallery index wins that tie, as within a chunk's top-k.
    list.sort_by(|a, b| (b.score + 0.0).total_cmp(&(a.score + 0.0)).then(a.gallery.cmp(&b.gallery)));
}

/// Two reducers run on the same row (e.g. random and label-matched pools).
impl<A: QueryReducer, B: QueryReducer> QueryReducer for (A, B) {
    type Output = (A::Output, B::Output);
    fn reduce(&self, query: usize, row: ScoreRow<'_>, ranking: &QueryRanking) -> Self::Output {
        (self.0.reduce(query, row, ranking), self.1.reduce(query, row, ranking))
    }
}

/// An optional reducer: `None` produces `None` for every query.
impl<A: QueryReducer> QueryReducer for Option<A> {
    type Output = Option<A::Output>;
    fn reduce(&self, query: usize, row: ScoreRow<'_>, ranking: &QueryRanking) -> Self::Output {
        self.as_ref().map(|r| r.reduce(query, row, ranking))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordered_bits_preserve_float_order() {
        let values = [f32::NEG_INFINITY, -3.5, -1e-30, -0.0, 0.0, 1e-30, 0.25, 7.0, f32::INFINITY];
        for w in values.windows(2) {
            assert!(ordered_bits(w[0]) <= ordered_bits(w[1]), "{w:?}");
        }
        for v in values {
            assert_eq!(from_ordered_bits(ordered_bits(v)).to_bits(), v.to_bits());
        }
    }
}
