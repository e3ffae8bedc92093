//! The embeddings and metadata a relink pass reads (a loaded cohort or one shard's slice from disk).

use std::borrow::Cow;
use std::ops::Range;
use std::path::Path;

use super::*;
use crate::cohort::{load_views_mapped, Cohort, LoadedView, MappedView, Metadata, View, ViewRequest};
use crate::engine::{gather, Gallery, Rows, ScaledRows};
use crate::error::{Error, Result};
use crate::shard::ShardSpec;

/// One view's rows for a relink pass, records-local (row i is record `records[i]`).
#[derive(Debug)]
pub(super) struct ViewRows<'a> {
    pub(super) name: String,
    pub(super) dim: usize,
    /// Unit rows (in a shard, only the loaded queries' rows hold data).
    pub(super) data: Cow<'a, [f32]>,
    /// The whole view memory-mapped (a shard's gallery): as a gallery, it is ranked from
    /// the map instead of `data`.
    pub(super) mapped: Option<MappedView>,
}

impl ViewRows<'_> {
    /// This view as the gallery of a direction.
    pub(super) fn gallery(&self, n: usize) -> Gallery<'_> {
        match &self.mapped {
            Some(m) => Gallery::scaled(ScaledRows::from_mapped(m)),
            None => Gallery::new(Rows::trusted(&self.data, n, self.dim)),
        }
    }
}

/// The embeddings and metadata a relink pass reads: the query and gallery views restricted
/// to the audited split (row i of each is the split's i-th record). Built from a loaded
/// cohort ([`RelinkInputs::from_cohort`]) or read from disk with only what one shard needs
/// ([`RelinkInputs::load`]).
#[derive(Debug)]
pub struct RelinkInputs<'a> {
    pub(super) metadata: Cow<'a, Metadata>,
    pub(super) records: Vec<usize>,
    pub(super) query: ViewRows<'a>,
    pub(super) gallery: ViewRows<'a>,
    /// Queries whose rows hold data in both directions' query matrices (all of them except
    /// in a shard that read only its slice).
    pub(super) loaded: Range<usize>,
}

impl<'a> RelinkInputs<'a> {
    /// The inputs of `config` in a loaded cohort (validated against the cohort first). The
    /// views are borrowed when the audit uses every record, else the split's rows are copied.
    pub fn from_cohort(cohort: &'a Cohort, config: &RelinkConfig) -> Result<RelinkInputs<'a>> {
        config.validate()?;
        let meta = &cohort.metadata;
        let query_view = cohort.view(&config.query_view)?;
        let gallery_view = cohort.view(&config.gallery_view)?;
        check_views(
            &cohort.dir,
            meta,
            (query_view.name(), query_view.dim()),
            (gallery_view.name(), gallery_view.dim()),
            config,
        )?;
        let records = split_records(meta, config)?;
        let rows = |view: &'a View| ViewRows {
            name: view.name().to_string(),
            dim: view.dim(),
            data: if records.len() == meta.len() {
                Cow::Borrowed(view.rows())
            } else {
                Cow::Owned(gather(view, &records))
            },
            mapped: None,
        };
        let (query, gallery) = (rows(query_view), rows(gallery_view));
        let n = records.len();
        Ok(RelinkInputs { metadata: Cow::Borrowed(meta), records, query, gallery, loaded: 0..n })
    }

    /// Read from cohort directory `dir` only what computing the records of `shard`'s
    /// queries needs: the metadata, the gallery view (the split's rows) and, when only one
    /// direction is audited, just the shard's rows of the query view (other rows stay zero
    /// and are never read). Other views are not read at all. Every view used as a gallery
    /// (with `--direction both`, both) is memory-mapped when its file allows
    /// ([`crate::cohort::MappedView`]; else read), so the shard's own memory is its query
    /// slice and the ranking's working memory; the rankings are bitwise those of views
    /// read into memory.
    pub fn load(dir: &Path, config: &RelinkConfig, shard: ShardSpec) -> Result<RelinkInputs<'static>> {
        config.validate()?;
        let mut records = Vec::new();
        let mut slice = 0..0;
        let map: Vec<&str> = match config.direction {
            Direction::QueryToGallery => vec![config.gallery_view.as_str()],
            Direction::Both => vec![config.query_view.as_str(), config.gallery_view.as_str()],
        };
        let (metadata, views) = load_views_mapped(
            dir,
            |meta| {
                records = split_records(meta, config)?;
                slice = shard.queries(records.len());
                let all = records.len() == meta.len();
                let gallery_rows = (!all).then(|| records.clone());
                let query_rows = match config.direction {
                    Direction::QueryToGallery => Some(records[slice.clone()].to_vec()),
                    Direction::Both => gallery_rows.clone(),
                };
                Ok(vec![
                    ViewRequest { name: config.query_view.clone(), rows: query_rows },
                    ViewRequest { name: config.gallery_view.clone(), rows: gallery_rows },
                ])
            },
            &map,
        )?;
        let [query_view, gallery_view]: [LoadedView; 2] = views.try_into().expect("two views requested");
        check_views(
            dir,
            &metadata,
            (query_view.name(), query_view.dim()),
            (gallery_view.name(), gallery_view.dim()),
            config,
        )?;
        let n = records.len();
        // Records-local rows `rows` of the query matrix hold data; the others stay zero and
        // are never read. Untouched pages of a zeroed allocation are never committed: this
        // costs memory only for `rows`.
        let queries_only = |dim: usize, rows: Range<usize>, values: &[f32]| {
            let mut data = vec![0f32; n * dim];
            data[rows.start * dim..rows.end * dim].copy_from_slice(values);
            data
        };
        // A view as the query side (records-local rows `query_rows` of it: the shard's slice,
        // or none for a gallery only) and, when mapped or read whole, as a gallery.
        let view_rows = |name: &str, view: LoadedView, query_rows: Range<usize>| -> ViewRows<'static> {
            let dim = view.dim();
            let (data, mapped) = match view {
                LoadedView::Mapped(m) => {
                    let rows = m.normalised_rows(query_rows.clone());
                    (queries_only(dim, query_rows, &rows), Some(m))
                }
                // Only the shard's slice was read.
                LoadedView::Read(v) if v.n() < n => (queries_only(dim, slice.clone(), v.rows()), None),
                LoadedView::Read(v) => (v.into_rows(), None),
            };
            ViewRows { name: name.to_string(), dim, data: Cow::Owned(data), mapped }
        };
        let (query, gallery) = match config.direction {
            Direction::QueryToGallery => (
                view_rows(&config.query_view, query_view, slice.clone()),
                view_rows(&config.gallery_view, gallery_view, 0..0),
            ),
            Direction::Both => (
                view_rows(&config.query_view, query_view, slice.clone()),
                view_rows(&config.gallery_view, gallery_view, slice.clone()),
            ),
        };
        // Both query matrices are whole only when both views were read whole; a mapped
        // view's query rows are just the shard's slice.
        let whole = config.direction == Direction::Both && query.mapped.is_none() && gallery.mapped.is_none();
        let loaded = if whole { 0..n } else { slice };
        Ok(RelinkInputs { metadata: Cow::Owned(metadata), records, query, gallery, loaded })
    }

    /// Queries per direction (records of the audited split).
    pub fn n_queries(&self) -> usize {
        self.records.len()
    }

    /// Names of the views ranked as galleries straight from a memory map (query view
    /// first); empty when everything was read into memory.
    pub fn mapped_views(&self) -> Vec<&str> {
        [&self.query, &self.gallery]
            .into_iter()
            .filter(|v| v.mapped.is_some())
            .map(|v| v.name.as_str())
            .collect()
    }
}

/// Checks of the two views against each other and the metadata, before any work.
pub(super) fn check_views(
    dir: &Path,
    meta: &Metadata,
    (query_name, query_dim): (&str, usize),
    (gallery_name, gallery_dim): (&str, usize),
    config: &RelinkConfig,
) -> Result<()> {
    if query_dim != gallery_dim {
        return Err(Error::input(
            dir,
            format!(
                "view `{query_name}` has {query_dim} dimensions but `{gallery_name}` has {gallery_dim}; re-linkage compares both views in one embedding space"
            ),
        ));
    }
    if config.hard_negatives && meta.findings.is_none() {
        return Err(Error::input(
            dir,
            "--hard-negatives needs the 14 CheXpert finding columns in metadata.csv; add them or drop the flag",
        ));
    }
    Ok(())
}

/// The records of the audited split, checked to be enough for the requested pools.
pub(super) fn split_records(meta: &Metadata, config: &RelinkConfig) -> Result<Vec<usize>> {
    let records: Vec<usize> = match &config.split {
        Some(name) => meta.rows_in_split(name)?,
        None => (0..meta.len()).collect(),
    };
    if records.len() < 2 {
        return Err(Error::config(format!(
            "--split {}: {} record(s); re-linkage needs at least 2",
            config.split.as_deref().unwrap_or("all"),
            records.len()
        )));
    }
    let too_big: Vec<usize> = config.pool_sizes.iter().copied().filter(|&s| s > records.len()).collect();
    if !config.pool_sizes.is_empty() && too_big.len() == config.pool_sizes.len() {
        return Err(Error::config(format!(
            "--pools: every requested pool size ({}) exceeds the {} records of the split; use smaller pools or `full`",
            join(&too_big),
            records.len()
        )));
    }
    Ok(records)
}

pub(super) fn join(v: &[usize]) -> String {
    v.iter().map(|s| s.to_string()).collect::<Vec<_>>().join(", ")
}
