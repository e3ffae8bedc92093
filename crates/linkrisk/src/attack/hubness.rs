//! Hubness corrections. In high-dimensional embedding spaces a few gallery items ("hubs")
//! are the nearest neighbour of many queries and steal their matches (Radovanović et al.
//! 2010). Each correction below rescores query q against gallery item g as cosine plus a
//! per-gallery-item offset, which the engine adds inside its blocked pass; per-query terms
//! shift a whole row and leave its ranking unchanged, so they are dropped.
//!
//! - CSLS (Conneau, Lample et al. 2018): 2 cos(q, g) - r_q - r_g, r = mean similarity to the k
//!   nearest neighbours in the other domain. Ranking q's row: cos - r_g / 2 (offset -r_g/2,
//!   the same order bit for bit, since scaling by 2 is exact in floating point).
//! - Inverted softmax (Smith et al. 2017): exp(beta cos(q, g)) / sum_q' exp(beta cos(q', g)),
//!   the softmax normalised over the queries (columns). Its log ranks like
//!   cos - ln Z_g / beta.
//! - QB-Norm with dynamic inverted softmax (Bogolin et al. 2022): the normaliser is taken
//!   over a query bank B (queries the attacker has besides the ones attacked), and applied
//!   only to queries whose plain-cosine nearest item is in the bank's activation set (the
//!   gallery items some bank query retrieves first); other queries keep plain cosine.

use crate::engine::count::count_offset;
use crate::engine::{
    rank, rank_with, rank_with_columns, BlockSizes, FirstPositive, Gallery, Progress, QueryRanking,
    QueryReducer, RankOptions, Rows, ScoreRow, Targets,
};
use crate::error::{Error, Result};
use crate::metrics::retrieval::{summarize, RankedQuery};

use super::neighbourhood::{
    exclusions_only, knn_mean_similarity, log_normalizers, log_normalizers_multi, transposed_exclusions,
    ColumnStats,
};

/// Gallery offsets of CSLS: -r_g / 2, r_g = mean similarity of gallery item g to its `k`
/// nearest queries (excluding pairs `exclusions` excludes, if given: query x gallery).
pub fn csls_offsets(
    queries: Rows<'_>,
    gallery: Rows<'_>,
    exclusions: Option<&Targets>,
    k: usize,
    sizes: &BlockSizes,
    progress: &dyn Progress,
) -> Result<Vec<f32>> {
    let transposed = exclusions.map(transposed_exclusions).transpose()?;
    progress.begin(gallery.n() as u64, "csls: gallery neighbourhoods");
    let r = knn_mean_similarity(gallery, queries, transposed.as_ref(), k, sizes, progress)?;
    Ok(csls_offsets_from(&r))
}

/// CSLS offsets -r_g / 2 from gallery-side neighbourhood means already computed (e.g. by
/// `ColumnStats` during the cosine pass).
pub fn csls_offsets_from(knn_mean: &[f32]) -> Vec<f32> {
    knn_mean.iter().map(|r| -0.5 * r).collect()
}

/// Inverted-softmax offsets -ln Z_g / beta from log-normalisers already computed.
pub fn inverted_softmax_offsets_from(log_normalizer: &[f64], beta: f64) -> Vec<f32> {
    log_normalizer.iter().map(|z| (-z / beta) as f32).collect()
}

/// QB-Norm's two statistics of a query bank in one pass over bank x gallery: the gallery
/// offsets of the inverted softmax normalised over the bank (as
/// [`inverted_softmax_offsets`] with the bank as population) and the activation set (as
/// [`activation_set`]).
pub fn query_bank(
    bank: Rows<'_>,
    gallery: Rows<'_>,
    beta: f64,
    sizes: &BlockSizes,
    progress: &dyn Progress,
) -> Result<(Vec<f32>, Vec<bool>)> {
    let g = Gallery::new(gallery);
    let stats = ColumnStats::new(&g, None, 0, Some(beta))?
        .ok_or_else(|| Error::config("query bank statistics without exclusions are always available"))?;
    let options = RankOptions { top_k: 1, sizes: *sizes };
    progress.begin(bank.n() as u64, "qb-norm: bank retrievals and normalisers");
    let none = Targets::none(bank.n(), gallery.n());
    let (ranked, states) = rank_with_columns(bank, &g, &none, 0..bank.n(), &options, &(), &stats, progress)?;
    let mut active = vec![false; gallery.n()];
    for (r, ()) in &ranked {
        if let Some(n) = r.top.first() {
            active[n.gallery as usize] = true;
        }
    }
    let log_z = stats.finish(states)?.log_normalizer.unwrap_or_default();
    Ok((inverted_softmax_offsets_from(&log_z, beta), active))
}

/// [`query_bank`] for a bank whose queries are themselves records of the gallery (a
/// cross-fitted re-ID bank): `exclusions` (bank x gallery; only its exclusions are used)
/// removes each bank query's own record and study from its normaliser terms and from its
/// nearest-item search, as the attacked queries' are. Without exclusions, [`query_bank`].
pub fn query_bank_excluding(
    bank: Rows<'_>,
    gallery: Rows<'_>,
    exclusions: Option<&Targets>,
    beta: f64,
    sizes: &BlockSizes,
    progress: &dyn Progress,
) -> Result<(Vec<f32>, Vec<bool>)> {
    let Some(exclusions) = exclusions else { return query_bank(bank, gallery, beta, sizes, progress) };
    if exclusions.n_queries() != bank.n() || exclusions.n_gallery() != gallery.n() {
        return Err(Error::config("query-bank exclusions do not match the bank and the gallery"));
    }
    let excluded = exclusions_only(exclusions)?;
    let g = Gallery::new(gallery);
    let options = RankOptions { top_k: 1, sizes: *sizes };
    progress.begin(bank.n() as u64, "qb-norm: bank retrievals and normalisers");
    let (tops, log_z): (Vec<Option<u32>>, Vec<f64>) =
        match ColumnStats::new(&g, Some(&excluded), 0, Some(beta))? {
            Some(stats) => {
                let (ranked, states) =
                    rank_with_columns(bank, &g, &excluded, 0..bank.n(), &options, &(), &stats, progress)?;
                let tops = ranked.iter().map(|(r, ())| r.top.first().map(|n| n.gallery)).collect();
                (tops, stats.finish(states)?.log_normalizer.unwrap_or_default())
            }
            None => {
                // Partly excluded duplicate gallery rows: the two statistics in separate passes.
                let ranked = rank(bank, &g, &excluded, 0..bank.n(), &options, progress)?;
                let tops = ranked.iter().map(|r| r.top.first().map(|n| n.gallery)).collect();
                let transposed = transposed_exclusions(&excluded)?;
                (tops, log_normalizers(gallery, bank, Some(&transposed), beta, sizes, progress)?)
            }
        };
    let mut active = vec![false; gallery.n()];
    for g in tops.into_iter().flatten() {
        active[g as usize] = true;
    }
    Ok((inverted_softmax_offsets_from(&log_z, beta), active))
}

/// Gallery offsets of the inverted softmax with temperature `beta`, normalised over the rows
/// of `population` (the attacked queries, or a query bank): -ln Z_g / beta.
pub fn inverted_softmax_offsets(
    population: Rows<'_>,
    gallery: Rows<'_>,
    exclusions: Option<&Targets>,
    beta: f64,
    sizes: &BlockSizes,
    progress: &dyn Progress,
) -> Result<Vec<f32>> {
    let transposed = exclusions.map(transposed_exclusions).transpose()?;
    progress.begin(gallery.n() as u64, "inverted softmax: normalisers");
    let log_z = log_normalizers(gallery, population, transposed.as_ref(), beta, sizes, progress)?;
    Ok(inverted_softmax_offsets_from(&log_z, beta))
}

/// The inverse temperatures tried when tuning: a log-spaced grid over the range where the
/// inverted softmax moves from nearly plain cosine (small beta) to nearly CSLS with k = 1.
pub const DEFAULT_BETA_GRID: [f64; 9] = [2.0, 5.0, 10.0, 20.0, 30.0, 50.0, 75.0, 100.0, 150.0];

/// The inverse temperature used without a tuning slice (QB-Norm's published default).
pub const DEFAULT_BETA: f64 = 20.0;

/// One point of the temperature search.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct BetaPoint {
    /// Inverse temperature.
    pub beta: f64,
    /// Recall@1 of the inverted softmax on the tuning task at this beta.
    pub recall_at_1: f64,
}

/// Choose beta on a labelled tuning task disjoint from the attacked queries: the grid value
/// with the highest inverted-softmax Recall@1 there (normalised over the tuning queries;
/// ties: the smaller beta). Returns the choice and the whole curve.
///
/// Two passes over the pairs for the whole grid ([`inverted_softmax_hits`]), not a
/// normaliser pass and a ranking pass per grid value; the curve is bit for bit the one the
/// per-value passes give (tested).
pub fn tune_beta(
    queries: Rows<'_>,
    gallery: Rows<'_>,
    targets: &Targets,
    neighbourhood_exclusions: bool,
    grid: &[f64],
    sizes: &BlockSizes,
    progress: &dyn Progress,
) -> Result<(f64, Vec<BetaPoint>)> {
    if grid.is_empty() {
        return Err(Error::config("the inverted-softmax temperature grid is empty"));
    }
    let exclusions = neighbourhood_exclusions.then_some(targets);
    let hits = inverted_softmax_hits(queries, gallery, targets, exclusions, grid, sizes, progress)?;
    Ok(choose_beta(grid, &hits, targets))
}

/// The temperature curve from every grid value's rank counts per query (`hits[b][q]`, as
/// [`inverted_softmax_hits`] returns them) and its best point (ties: the earlier value).
pub(crate) fn choose_beta(
    grid: &[f64],
    hits: &[Vec<Option<FirstPositive>>],
    targets: &Targets,
) -> (f64, Vec<BetaPoint>) {
    let curve: Vec<BetaPoint> = grid
        .iter()
        .zip(hits)
        .map(|(&beta, firsts)| {
            let list: Vec<RankedQuery> = firsts
                .iter()
                .enumerate()
                .filter_map(|(q, first)| {
                    Some(RankedQuery {
                        first: (*first)?,
                        n_negatives: targets.n_negatives(q) as u64,
                        n_positives: targets.n_positives(q) as u64,
                    })
                })
                .collect();
            BetaPoint { beta, recall_at_1: summarize(&list, 0.95).recall_at_1.value }
        })
        .collect();
    let best = curve.iter().fold(curve[0], |b, p| if p.recall_at_1 > b.recall_at_1 { *p } else { b });
    (best.beta, curve)
}

/// The inverted softmax at every temperature of `grid` from two passes over the pairs: the
/// normalisers of all temperatures in one ([`log_normalizers_multi`], over the rows of
/// `queries`, with `exclusions` if given), then one plain-cosine ranking pass whose
/// [`OffsetHits`] reducer ranks each query's positives under every temperature's offsets.
/// Returns, per grid value and per query, the rank counts of the best positive (`None` for
/// a query without positives): exactly what `rank` over `Gallery::with_offsets` with that
/// temperature's offsets gives as `first_positive()`, and the offsets themselves.
#[allow(clippy::type_complexity)]
pub fn inverted_softmax_hits(
    queries: Rows<'_>,
    gallery: Rows<'_>,
    targets: &Targets,
    exclusions: Option<&Targets>,
    grid: &[f64],
    sizes: &BlockSizes,
    progress: &dyn Progress,
) -> Result<Vec<Vec<Option<FirstPositive>>>> {
    Ok(inverted_softmax_grid(queries, gallery, targets, exclusions, grid, sizes, progress)?.0)
}

/// [`inverted_softmax_hits`], also returning every grid value's gallery offsets.
#[allow(clippy::type_complexity)]
pub(crate) fn inverted_softmax_grid(
    queries: Rows<'_>,
    gallery: Rows<'_>,
    targets: &Targets,
    exclusions: Option<&Targets>,
    grid: &[f64],
    sizes: &BlockSizes,
    progress: &dyn Progress,
) -> Result<(Vec<Vec<Option<FirstPositive>>>, Vec<Vec<f32>>)> {
    let transposed = exclusions.map(transposed_exclusions).transpose()?;
    progress
        .begin(gallery.n() as u64, &format!("inverted softmax: normalisers at {} temperatures", grid.len()));
    let log_z = log_normalizers_multi(gallery, queries, transposed.as_ref(), grid, sizes, progress)?;
    let offsets: Vec<Vec<f32>> =
        log_z.iter().zip(grid).map(|(z, &beta)| inverted_softmax_offsets_from(z, beta)).collect();
    for o in &offsets {
        // What `Gallery::with_offsets` would refuse.
        if let Some(g) = o.iter().position(|x| !x.is_finite()) {
            return Err(Error::config(format!("score offset of gallery item {g} is {}, not finite", o[g])));
        }
    }
    let plain = Gallery::new(gallery);
    let reducer = OffsetHits::new(&plain, targets, &offsets)?;
    let options = RankOptions { top_k: 0, sizes: *sizes };
    progress.begin(queries.n() as u64, &format!("inverted softmax: ranks at {} temperatures", grid.len()));
    let ranked = rank_with(queries, &plain, targets, 0..queries.n(), &options, &reducer, progress)?;
    let mut per_beta: Vec<Vec<Option<FirstPositive>>> =
        (0..offsets.len()).map(|_| Vec::with_capacity(queries.n())).collect();
    for (_, firsts) in ranked {
        for (list, first) in per_beta.iter_mut().zip(firsts) {
            list.push(first);
        }
    }
    Ok((per_beta, offsets))
}

/// A [`QueryReducer`] that ranks a query's positives under several per-gallery-item
/// additive offset vectors at once, from the plain-cosine row of one pass: for each
/// offset vector o, the scores are `cos(q, g) + o[g]` rounded to f32 exactly as the kernel
/// adds a gallery's offsets, so each result equals `first_positive()` of a separate pass
/// over `Gallery::with_offsets(rows, o)` (same greater and tied counts, same ties),
/// for one scan of the row per offset vector instead of a GEMM over all pairs.
#[derive(Debug)]
pub struct OffsetHits<'a> {
    gallery: &'a Gallery<'a>,
    targets: &'a Targets,
    offsets: &'a [Vec<f32>],
}

impl<'a> OffsetHits<'a> {
    /// Offsets per vector and gallery item; `gallery` must have no offsets of its own.
    pub fn new(gallery: &'a Gallery<'a>, targets: &'a Targets, offsets: &'a [Vec<f32>]) -> Result<Self> {
        if gallery.unique_offsets().is_some() {
            return Err(Error::config("offset ranks need the plain-cosine gallery"));
        }
        if offsets.iter().any(|o| o.len() != gallery.len()) || targets.n_gallery() != gallery.len() {
            return Err(Error::config("offset vectors or targets do not match the gallery"));
        }
        Ok(OffsetHits { gallery, targets, offsets })
    }
}

thread_local! {
    /// Per-thread copy of one query's cosine row, one value per gallery item.
    static ROW: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) };
}

impl QueryReducer for OffsetHits<'_> {
    type Output = Vec<Option<FirstPositive>>;

    fn reduce(&self, q: usize, row: ScoreRow<'_>, _ranking: &QueryRanking) -> Self::Output {
        let (items, positive) = self.targets.special(q);
        if !positive.contains(&true) {
            return vec![None; self.offsets.len()];
        }
        ROW.with(|buf| {
            let cosine = &mut *buf.borrow_mut();
            if self.gallery.n_duplicates() == 0 {
                row.copy_unique_scores(cosine);
            } else {
                cosine.clear();
                cosine.extend((0..self.gallery.len()).map(|g| row.score(g)));
            }
            let mut special = vec![0f32; items.len()];
            self.offsets
                .iter()
                .map(|offsets| {
                    for (s, &g) in special.iter_mut().zip(items) {
                        *s = cosine[g as usize] + offsets[g as usize];
                    }
                    let best = special
                        .iter()
                        .zip(positive)
                        .filter(|(_, &p)| p)
                        .map(|(&s, _)| s)
                        .reduce(f32::max)
                        .expect("a positive");
                    let (mut greater, mut tied) = count_offset(cosine, offsets, best);
                    let mut tied_positives = 0;
                    // Positives and exclusions were counted like everyone else; they are not
                    // negatives.
                    for (&s, &p) in special.iter().zip(positive) {
                        if s > best {
                            greater -= 1;
                        } else if s == best {
                            tied -= 1;
                            tied_positives += u64::from(p);
                        }
                    }
                    Some(FirstPositive { greater, tied_negatives: tied, tied_positives })
                })
                .collect()
        })
    }
}

/// The activation set of QB-Norm's dynamic inverted softmax: for every gallery item,
/// whether it is the plain-cosine nearest item of at least one bank query.
pub fn activation_set(
    bank: Rows<'_>,
    gallery: Rows<'_>,
    sizes: &BlockSizes,
    progress: &dyn Progress,
) -> Result<Vec<bool>> {
    let g = Gallery::new(gallery);
    let options = RankOptions { top_k: 1, sizes: *sizes };
    progress.begin(bank.n() as u64, "qb-norm: bank retrievals");
    let ranked = rank(bank, &g, &Targets::none(bank.n(), gallery.n()), 0..bank.n(), &options, progress)?;
    let mut active = vec![false; gallery.n()];
    for r in &ranked {
        if let Some(n) = r.top.first() {
            active[n.gallery as usize] = true;
        }
    }
    Ok(active)
}
