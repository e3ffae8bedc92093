//! Cohort input: `metadata.csv` plus one embedding file per named view, validated and
//! row-aligned. Row i of every view describes the record on row i of the metadata.
//!
//! File formats live only here (`npy`, `npz`, `safetensors`, `parquet`); everything
//! downstream sees a [`Cohort`]: [`Metadata`] plus [`View`]s whose rows are L2-normalised
//! `f32` (cosine similarity is then a dot product). Bad input is an [`Error::Input`] that
//! names the file, the row or column and the fix; nothing is dropped silently.

pub mod flags;
pub mod metadata;
pub mod npy;
pub mod view;
pub mod write;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub use metadata::{Label, Metadata, FINDINGS, N_FINDINGS};
pub use view::View;

use crate::error::{Error, Result};

/// A validated cohort: metadata and named views, all with the same number of rows.
#[derive(Debug, Clone)]
pub struct Cohort {
    /// Where the cohort was loaded from (empty for in-memory cohorts).
    pub dir: PathBuf,
    /// One row per record.
    pub metadata: Metadata,
    views: BTreeMap<String, View>,
}

impl Cohort {
    /// Assemble a cohort from parts, checking that every view has one row per record.
    pub fn from_parts(dir: impl Into<PathBuf>, metadata: Metadata, views: Vec<View>) -> Result<Self> {
        let dir = dir.into();
        let n = metadata.len();
        if n == 0 {
            return Err(Error::input(&dir, "the cohort is empty: metadata has no records"));
        }
        let mut map = BTreeMap::new();
        for view in views {
            if view.n() != n {
                return Err(Error::input(
                    view.source_path(),
                    format!(
                        "view `{}` has {} rows but metadata.csv has {} records; row i of every \
                         view must describe row i of metadata.csv",
                        view.name(),
                        view.n(),
                        n
                    ),
                ));
            }
            if map.contains_key(view.name()) {
                return Err(Error::input(
                    view.source_path(),
                    format!("view `{}` is defined twice; keep one file per view name", view.name()),
                ));
            }
            map.insert(view.name().to_string(), view);
        }
        Ok(Cohort { dir, metadata, views: map })
    }

    /// Load and validate a cohort directory (see docs/FORMATS.md).
    pub fn load(dir: impl AsRef<Path>) -> Result<Self> {
        load_dir(dir.as_ref())
    }

    /// Number of records.
    pub fn len(&self) -> usize {
        self.metadata.len()
    }

    /// Whether the cohort has no records (never true for a validated cohort).
    pub fn is_empty(&self) -> bool {
        self.metadata.is_empty()
    }

    /// The view called `name`, or an error listing the views that exist.
    pub fn view(&self, name: &str) -> Result<&View> {
        self.views.get(name).ok_or_else(|| {
            Error::input(
                &self.dir,
                format!(
                    "no view named `{name}`; this cohort has: {}",
                    self.views.keys().cloned().collect::<Vec<_>>().join(", ")
                ),
            )
        })
    }

    /// All views, by name.
    pub fn views(&self) -> impl Iterator<Item = &View> {
        self.views.values()
    }

    /// Names of all views, sorted.
    pub fn view_names(&self) -> Vec<&str> {
        self.views.keys().map(String::as_str).collect()
    }
}

/// Load `dir/metadata.csv` and every `*.npy` view beside it.
fn load_dir(dir: &Path) -> Result<Cohort> {
    if !dir.is_dir() {
        return Err(Error::input(
            dir,
            "not a directory; a cohort is a directory holding metadata.csv and one .npy file per view",
        ));
    }
    let meta_path = dir.join("metadata.csv");
    let metadata = Metadata::read_csv(&meta_path)?;
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| Error::io(dir, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "npy"))
        .collect();
    entries.sort();
    let mut views = Vec::new();
    for path in entries {
        let name = path.file_stem().and_then(|s| s.to_str()).unwrap_or_default().to_string();
        let array = npy::read(&path)?;
        views.push(View::from_array(name, path, array)?);
    }
    Cohort::from_parts(dir, metadata, views)
}
