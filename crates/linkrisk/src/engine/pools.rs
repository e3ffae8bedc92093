//! Candidate pools: the paper's protocol of ranking the true match against N-1 negatives
//! instead of the whole database. Pools are drawn per query from seeded streams and
//! evaluated on the query's score row inside the ranking block, so no pool needs a dot
//! product of its own and a sharded run draws exactly the same pools.
//!
//! - Random pools: the anchor plus N-1 distinct negatives drawn uniformly. The `trials`
//!   pools of one query are disjoint while `trials x (N-1)` negatives exist: they are
//!   consecutive segments of one random ordering of the negatives (cyclic segments of a
//!   full random permutation when there are too few negatives to keep them apart).
//! - Pathology-matched pools: negatives that share the anchor's label code (the 14
//!   CheXpert findings), taking the nearest Hamming layers in full when the exact layer is
//!   too small and drawing the remainder at random from the boundary layer. Each outcome
//!   says how many negatives matched exactly.
//!
//! Every outcome also carries the [`PoolDraw`] that describes its distribution, from which
//! `crate::metrics::retrieval::expected_pool_hit_probability` gives the exact expected
//! Recall@k (hypergeometric, ties included).

use rand::seq::SliceRandom;
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::kernel::ScoreRow;
use super::rank::{QueryRanking, QueryReducer};
use super::targets::Targets;
use crate::error::{Error, Result};
use crate::rng;

/// How negatives are chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PoolKind {
    /// Uniformly among all negatives.
    Random,
    /// Among negatives with the anchor's label code (nearest Hamming distance when too few).
    LabelMatched,
}

/// Label codes of the gallery items for [`PoolKind::LabelMatched`]: up to 16 categorical
/// fields of 2 bits each per item (e.g. the 14 findings: positive, negative, uncertain,
/// blank); the distance between two codes is the number of fields that differ.
#[derive(Debug, Clone)]
pub struct LabelCodes {
    codes: Vec<u32>,
    /// Distinct codes, and their members (CSR, ascending gallery index).
    distinct: Vec<u32>,
    member_start: Vec<usize>,
    members: Vec<u32>,
}

impl LabelCodes {
    /// Index the codes of every gallery item.
    pub fn new(codes: Vec<u32>) -> LabelCodes {
        let mut order: Vec<u32> = (0..codes.len() as u32).collect();
        order.sort_by_key(|&g| (codes[g as usize], g));
        let mut distinct = Vec::new();
        let mut member_start = Vec::new();
        for (i, &g) in order.iter().enumerate() {
            let c = codes[g as usize];
            if distinct.last() != Some(&c) {
                distinct.push(c);
                member_start.push(i);
            }
        }
        member_start.push(order.len());
        LabelCodes { codes, distinct, member_start, members: order }
    }

    /// Number of fields in which codes `a` and `b` differ.
    pub fn distance(a: u32, b: u32) -> u32 {
        let x = a ^ b;
        ((x | (x >> 1)) & 0x5555_5555).count_ones()
    }

    /// Code of gallery item `g`.
    pub fn code(&self, g: usize) -> u32 {
        self.codes[g]
    }

    /// Number of gallery items.
    pub fn len(&self) -> usize {
        self.codes.len()
    }

    /// Whether there are no items.
    pub fn is_empty(&self) -> bool {
        self.codes.is_empty()
    }
}

/// The distribution behind one pool outcome: `fixed_*` negatives are in every pool of this
/// size; `draws` more are drawn without replacement from `population` negatives of which
/// `population_greater` score above the anchor and `population_tied` tie with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolDraw {
    /// Negatives always in the pool that score above the anchor.
    pub fixed_greater: u64,
    /// Negatives always in the pool that tie with the anchor.
    pub fixed_tied: u64,
    /// Negatives always in the pool.
    pub fixed: u64,
    /// Size of the set the rest is drawn from.
    pub population: u64,
    /// Of those, how many score above the anchor.
    pub population_greater: u64,
    /// Of those, how many tie with it.
    pub population_tied: u64,
    /// How many are drawn.
    pub draws: u64,
}

/// Negatives above / tied with the anchor inside one pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolCounts {
    /// Pool negatives scoring strictly above the anchor.
    pub greater: u32,
    /// Pool negatives scoring exactly like the anchor.
    pub tied: u32,
}

/// One query's pools of one size.
#[derive(Debug, Clone, PartialEq)]
pub struct PoolOutcome {
    /// Counts per trial.
    pub trials: Vec<PoolCounts>,
    /// The distribution the pools were drawn from (for the exact expectation).
    pub draw: PoolDraw,
    /// Negatives per pool with exactly the anchor's label code (all of them for random pools).
    pub exact_matches: u64,
}

/// Evaluates pools of several sizes for every query with an anchor: a [`QueryReducer`]
/// whose output per query is one `Option<PoolOutcome>` per size (None: the query has fewer
/// than `size - 1` negatives, or no anchor).
#[derive(Debug)]
pub struct PoolEvaluator<'a> {
    sizes: Vec<usize>,
    trials: usize,
    seed: u64,
    kind: PoolKind,
    codes: Option<&'a LabelCodes>,
    targets: &'a Targets,
}

impl<'a> PoolEvaluator<'a> {
    /// Random pools of each size in `sizes` (each at least 2), `trials` per query.
    pub fn random(targets: &'a Targets, sizes: &[usize], trials: usize, seed: u64) -> Result<Self> {
        Self::new(targets, sizes, trials, seed, PoolKind::Random, None)
    }

    /// Label-matched pools (see the module docs).
    pub fn label_matched(
        targets: &'a Targets,
        codes: &'a LabelCodes,
        sizes: &[usize],
        trials: usize,
        seed: u64,
    ) -> Result<Self> {
        if codes.len() != targets.n_gallery() {
            return Err(Error::config(format!(
                "{} label codes for a gallery of {} items",
                codes.len(),
                targets.n_gallery()
            )));
        }
        Self::new(targets, sizes, trials, seed, PoolKind::LabelMatched, Some(codes))
    }

    fn new(
        targets: &'a Targets,
        sizes: &[usize],
        trials: usize,
        seed: u64,
        kind: PoolKind,
        codes: Option<&'a LabelCodes>,
    ) -> Result<Self> {
        if let Some(&s) = sizes.iter().find(|&&s| s < 2) {
            return Err(Error::config(format!(
                "pool size {s}: a pool holds the true match and at least one negative"
            )));
        }
        if trials == 0 {
            return Err(Error::config("--trials must be at least 1"));
        }
        Ok(PoolEvaluator { sizes: sizes.to_vec(), trials, seed, kind, codes, targets })
    }

    /// The pool sizes, in the order outcomes are returned.
    pub fn sizes(&self) -> &[usize] {
        &self.sizes
    }

    /// The stream purpose for this kind of pool.
    fn purpose(&self) -> &'static str {
        match self.kind {
            PoolKind::Random => "pool-random",
            PoolKind::LabelMatched => "pool-label-matched",
        }
    }

    /// The candidate order of query `q`: negatives (gallery indices) in the order pools
    /// take them, and the start of each Hamming layer in it (one layer for random pools).
    fn order(&self, q: usize) -> (Vec<u32>, Vec<usize>) {
        let mut rng: ChaCha8Rng = rng::stream(self.seed, self.purpose(), q as u64);
        let (special, _) = self.targets.special(q);
        let n_negatives = self.targets.n_negatives(q);
        let needed = self.sizes.iter().filter(|&&s| s - 1 <= n_negatives).map(|&s| s - 1).max().unwrap_or(0);
        match (self.kind, self.codes) {
            (PoolKind::LabelMatched, Some(codes)) => {
                let Some(anchor) = self.targets.anchor(q) else { return (Vec::new(), vec![0]) };
                label_order(codes, codes.code(anchor), special, needed, &mut rng)
            }
            _ => {
                // A uniformly random ordering of `amount` of the negatives: partial
                // Fisher-Yates over the negatives in gallery order.
                let amount = n_negatives.min(needed.saturating_mul(self.trials));
                let mut order = Vec::with_capacity(n_negatives);
                let mut next_special = special.iter().peekable();
                for g in 0..self.targets.n_gallery() as u32 {
                    if next_special.peek() == Some(&&g) {
                        next_special.next();
                    } else {
                        order.push(g);
                    }
                }
                // Galleries have fewer than 2^32 items (u32 indices throughout the engine);
                // 32-bit range sampling is about twice as fast as 64-bit.
                for i in 0..amount {
                    let j = rng.random_range(i as u32..n_negatives as u32) as usize;
                    order.swap(i, j);
                }
                order.truncate(amount);
                (order, vec![0, amount])
            }
        }
    }

    /// Where pool `trial` of size `size` sits in the candidate order: the fixed prefix
    /// length, and the layer the rest is drawn from with the draw's start and length.
    fn placement(&self, size: usize, layers: &[usize]) -> Option<Placement> {
        let needed = size - 1;
        // The boundary layer: the first whose cumulative size reaches `needed`.
        let d = (1..layers.len()).find(|&i| layers[i] >= needed)?;
        let fixed = layers[d - 1];
        Some(Placement {
            fixed,
            layer_start: layers[d - 1],
            layer_len: layers[d] - layers[d - 1],
            draws: needed - fixed,
        })
    }

    /// The gallery indices of pool `trial` of `pool_size` for query `q` (negatives only; the
    /// anchor completes the pool). For inspection and tests; evaluation does not build pools.
    pub fn pool_members(&self, q: usize, pool_size: usize, trial: usize) -> Option<Vec<u32>> {
        let (order, layers) = self.order(q);
        let p = self.placement(pool_size, &layers)?;
        let mut members: Vec<u32> = order[..p.fixed].to_vec();
        members.extend(p.positions(trial).map(|i| order[i]));
        Some(members)
    }
}

#[derive(Debug, Clone, Copy)]
struct Placement {
    fixed: usize,
    layer_start: usize,
    layer_len: usize,
    draws: usize,
}

impl Placement {
    /// Positions (in the candidate order) of trial `t`'s drawn part: a cyclic segment of the
    /// boundary layer, consecutive trials taking consecutive segments.
    fn positions(&self, t: usize) -> impl Iterator<Item = usize> + '_ {
        let start = if self.layer_len == 0 { 0 } else { (t * self.draws) % self.layer_len };
        (0..self.draws).map(move |j| self.layer_start + (start + j) % self.layer_len)
    }

    /// Cyclic segment [start, start+len) of the layer as at most two plain ranges.
    fn segment_ranges(&self, t: usize) -> [(usize, usize); 2] {
        if self.draws == 0 {
            return [(0, 0), (0, 0)];
        }
        let start = (t * self.draws) % self.layer_len;
        let end = start + self.draws;
        let base = self.layer_start;
        if end <= self.layer_len {
            [(base + start, base + end), (0, 0)]
        } else {
            [(base + start, base + self.layer_len), (base, base + end - self.layer_len)]
        }
    }
}

/// Negatives ordered by Hamming layer around `code`, each needed layer shuffled, and the
/// cumulative layer ends (starting with 0). Only layers up to the one that completes
/// `needed` candidates are included.
fn label_order(
    codes: &LabelCodes,
    code: u32,
    special: &[u32],
    needed: usize,
    rng: &mut ChaCha8Rng,
) -> (Vec<u32>, Vec<usize>) {
    // Distinct codes bucketed by distance (0..=16 fields), in code order within a bucket.
    let mut by_distance: Vec<Vec<usize>> = vec![Vec::new(); 17];
    for (i, &c) in codes.distinct.iter().enumerate() {
        by_distance[LabelCodes::distance(c, code) as usize].push(i);
    }
    let mut order: Vec<u32> = Vec::new();
    let mut layers = vec![0usize];
    for (d, bucket) in by_distance.iter().enumerate() {
        if order.len() >= needed.max(1) {
            break;
        }
        let layer_start = order.len();
        for &c in bucket {
            let members = &codes.members[codes.member_start[c]..codes.member_start[c + 1]];
            order.extend(members.iter().copied().filter(|g| special.binary_search(g).is_err()));
        }
        order[layer_start..].shuffle(rng);
        // Empty layers are skipped, except the exact layer (d = 0), which `layers[1]`
        // always describes.
        if order.len() > layer_start || d == 0 {
            layers.push(order.len());
        }
    }
    (order, layers)
}

thread_local! {
    /// Per-thread copy of the current query's score row.
    static SCRATCH: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) };
}

impl QueryReducer for PoolEvaluator<'_> {
    type Output = Vec<Option<PoolOutcome>>;

    fn reduce(&self, q: usize, row: ScoreRow<'_>, ranking: &QueryRanking) -> Self::Output {
        let Some(anchor) = ranking.anchor_rank() else { return vec![None; self.sizes.len()] };
        let threshold = anchor.score;
        let (order, layers) = self.order(q);
        // Positions (in the candidate order) of candidates above / at the anchor's score,
        // read from a contiguous copy of the row: pools look up tens of thousands of scores
        // per query, and usually only a few candidates beat the anchor.
        let (above, at) = SCRATCH.with(|scratch| {
            let scores = &mut *scratch.borrow_mut();
            row.copy_unique_scores(scores);
            let gallery = row.gallery();
            let (mut above, mut at) = (Vec::new(), Vec::new());
            let mut classify = |i: usize, s: f32| {
                if s > threshold {
                    above.push(i as u32);
                } else if s == threshold {
                    at.push(i as u32);
                }
            };
            if gallery.n_duplicates() == 0 {
                for (i, &g) in order.iter().enumerate() {
                    classify(i, scores[g as usize]);
                }
            } else {
                for (i, &g) in order.iter().enumerate() {
                    classify(i, scores[gallery.unique_of(g as usize)]);
                }
            }
            (above, at)
        });
        // Candidates among positions lo..hi.
        let range_count = |positions: &[u32], (lo, hi): (usize, usize)| {
            (positions.partition_point(|&p| (p as usize) < hi)
                - positions.partition_point(|&p| (p as usize) < lo)) as u32
        };
        let exact_layer = match self.kind {
            PoolKind::Random => usize::MAX,
            PoolKind::LabelMatched => layers.get(1).copied().unwrap_or(0),
        };
        self.sizes
            .iter()
            .map(|&size| {
                if size - 1 > self.targets.n_negatives(q) {
                    return None;
                }
                let p = self.placement(size, &layers)?;
                let fixed_greater = range_count(&above, (0, p.fixed));
                let fixed_tied = range_count(&at, (0, p.fixed));
                let trials = (0..self.trials)
                    .map(|trial| {
                        let mut counts = PoolCounts { greater: fixed_greater, tied: fixed_tied };
                        for r in p.segment_ranges(trial) {
                            counts.greater += range_count(&above, r);
                            counts.tied += range_count(&at, r);
                        }
                        counts
                    })
                    .collect();
                let layer = (p.layer_start, p.layer_start + p.layer_len);
                let draw = match self.kind {
                    // Random pools: the population is every negative, whose counts the full
                    // ranking already has (the candidate order may be a sample of them).
                    PoolKind::Random => PoolDraw {
                        fixed_greater: 0,
                        fixed_tied: 0,
                        fixed: 0,
                        population: ranking.n_negatives,
                        population_greater: anchor.greater,
                        population_tied: anchor.tied,
                        draws: (size - 1) as u64,
                    },
                    PoolKind::LabelMatched => PoolDraw {
                        fixed_greater: u64::from(fixed_greater),
                        fixed_tied: u64::from(fixed_tied),
                        fixed: p.fixed as u64,
                        population: p.layer_len as u64,
                        population_greater: u64::from(range_count(&above, layer)),
                        population_tied: u64::from(range_count(&at, layer)),
                        draws: p.draws as u64,
                    },
                };
                let exact_matches = (size - 1).min(exact_layer) as u64;
                Some(PoolOutcome { trials, draw, exact_matches })
            })
            .collect()
    }
}

/// Pools given explicitly: per query, lists of gallery items (negatives) to rank the anchor
/// against. Output per query: counts per listed pool (None without an anchor).
#[derive(Debug, Clone, Copy)]
pub struct ListedPools<'a> {
    /// `pools[q]` are query q's pools.
    pub pools: &'a [Vec<Vec<u32>>],
}

impl QueryReducer for ListedPools<'_> {
    type Output = Option<Vec<PoolCounts>>;

    fn reduce(&self, q: usize, row: ScoreRow<'_>, ranking: &QueryRanking) -> Self::Output {
        let threshold = ranking.anchor_rank()?.score;
        Some(
            self.pools[q]
                .iter()
                .map(|pool| {
                    let mut c = PoolCounts { greater: 0, tied: 0 };
                    for &g in pool {
                        let s = row.score(g as usize);
                        c.greater += u32::from(s > threshold);
                        c.tied += u32::from(s == threshold);
                    }
                    c
                })
                .collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_distance_counts_fields() {
        assert_eq!(LabelCodes::distance(0b00_01_10_11, 0b00_01_10_11), 0);
        assert_eq!(LabelCodes::distance(0b00_01_10_11, 0b11_01_10_00), 2);
        assert_eq!(LabelCodes::distance(0b01, 0b10), 1);
    }
}
