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

use crate::engine::{rank, rank_with_columns, BlockSizes, Gallery, Progress, RankOptions, Rows, Targets};
use crate::error::{Error, Result};
use crate::metrics::retrieval::{summarize, RankedQuery};

use super::neighbourhood::{
    exclusions_only, knn_mean_similarity, log_normalizers, transposed_exclusions, ColumnStats,
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
    let mut curve = Vec::with_capacity(grid.len());
    for &beta in grid {
        let offsets = inverted_softmax_offsets(queries, gallery, exclusions, beta, sizes, progress)?;
        let g = Gallery::with_offsets(gallery, &offsets)?;
        let options = RankOptions { top_k: 0, sizes: *sizes };
        let ranked = rank(queries, &g, targets, 0..queries.n(), &options, progress)?;
        let list: Vec<RankedQuery> = ranked
            .iter()
            .filter_map(|r| {
                Some(RankedQuery {
                    first: r.first_positive()?,
                    n_negatives: r.n_negatives,
                    n_positives: r.positives.len() as u64,
                })
            })
            .collect();
        curve.push(BetaPoint { beta, recall_at_1: summarize(&list, 0.95).recall_at_1.value });
    }
    let best = curve.iter().fold(curve[0], |b, p| if p.recall_at_1 > b.recall_at_1 { *p } else { b });
    Ok((best.beta, curve))
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
