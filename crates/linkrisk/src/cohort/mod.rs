//! Cohort input: a metadata table plus one embedding matrix per named view, validated and
//! row-aligned. Row i of every view describes the record on row i of the metadata.
//!
//! File formats live only here (`npy`, `npz`, `safetensors`, `parquet`, CSV metadata, the
//! optional `cohort.toml` manifest); everything downstream sees a [`Cohort`]: [`Metadata`]
//! plus [`View`]s whose rows are L2-normalised `f32` (cosine similarity is then a dot
//! product). Bad input is an [`Error::Input`] that names the file, the row or column and
//! the fix; nothing is dropped silently. The contract is written up in docs/FORMATS.md.

pub mod columns;
pub mod container;
pub mod flags;
pub mod manifest;
pub mod metadata;
pub mod npy;
pub mod npz;
pub mod parquet;
pub mod safetensors;
pub mod summary;
pub mod view;
pub mod write;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;

pub use columns::MetadataOptions;
pub use manifest::Manifest;
pub use metadata::{Label, Metadata, FINDINGS, N_FINDINGS};
pub use view::{View, ViewSource};

use crate::error::{Error, Result};
use container::{Contents, Select};
use manifest::{Format, ViewRef, MANIFEST_FILE};

/// A validated cohort: metadata and named views, all with the same number of rows.
#[derive(Debug, Clone)]
pub struct Cohort {
    /// Where the cohort was loaded from (empty for in-memory cohorts).
    pub dir: PathBuf,
    /// One row per record.
    pub metadata: Metadata,
    views: BTreeMap<String, View>,
    notes: LoadNotes,
}

/// What loading a directory read, ignored and checked, for summaries.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct LoadNotes {
    /// The metadata file that was read.
    pub metadata_file: Option<PathBuf>,
    /// The manifest, when the directory has one.
    pub manifest: Option<PathBuf>,
    /// Files in the directory that are neither metadata, manifest nor a view source.
    pub ignored_files: Vec<PathBuf>,
    /// Record-id arrays found in containers and verified to follow the metadata's order.
    pub ids_checked: Vec<IdCheck>,
}

/// A record-id array that was checked against the metadata.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IdCheck {
    /// The container file.
    pub file: PathBuf,
    /// The member, tensor or column holding the ids.
    pub member: String,
}

impl Cohort {
    /// Assemble a cohort from parts, checking that every view has one row per record and
    /// that view names are unique.
    pub fn from_parts(dir: impl Into<PathBuf>, metadata: Metadata, views: Vec<View>) -> Result<Self> {
        let dir = dir.into();
        let n = metadata.len();
        if n == 0 {
            return Err(Error::input(&dir, "the cohort is empty: metadata has no records"));
        }
        let first_n = views.first().map(View::n);
        if views.iter().any(|v| Some(v.n()) != first_n) {
            let listed: Vec<String> = views
                .iter()
                .map(|v| format!("`{}` has {} ({})", v.name(), v.n(), describe_source(v.source())))
                .collect();
            return Err(Error::input(
                &dir,
                format!(
                    "views have different numbers of rows: {}; row i of every view (e.g. an image/report pair) \
                     must describe row i of the metadata ({n} records): re-export the views from the same record list",
                    listed.join(", ")
                ),
            ));
        }
        let mut map: BTreeMap<String, View> = BTreeMap::new();
        for view in views {
            if view.n() != n {
                return Err(Error::input(
                    view.source_path(),
                    format!(
                        "view `{}` has {} rows but the metadata has {} records; row i of every \
                         view must describe row i of the metadata: export one row per metadata record, in its order",
                        view.name(),
                        view.n(),
                        n
                    ),
                ));
            }
            if let Some(first) = map.get(view.name()) {
                return Err(Error::input(
                    view.source_path(),
                    format!(
                        "view `{}` is defined twice ({} and {}); rename one (e.g. with cohort.toml [views])",
                        view.name(),
                        describe_source(first.source()),
                        describe_source(view.source())
                    ),
                ));
            }
            map.insert(view.name().to_string(), view);
        }
        Ok(Cohort { dir, metadata, views: map, notes: LoadNotes::default() })
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

    /// What loading read, ignored and checked (empty for cohorts built in memory).
    pub fn load_notes(&self) -> &LoadNotes {
        &self.notes
    }
}

/// `file` or `file:member`, for messages.
fn describe_source(source: &ViewSource) -> String {
    match &source.member {
        Some(m) => format!("{}:{m}", source.path.display()),
        None => source.path.display().to_string(),
    }
}

/// Default metadata file names, in the order they are looked for.
pub const METADATA_FILES: [&str; 2] = ["metadata.csv", "metadata.parquet"];

/// One file to read views from, and how its members map to view names.
#[derive(Debug)]
struct FilePlan {
    path: PathBuf,
    format: Format,
    select: Select,
    /// Member name -> view name. Empty: every member is a view under its own name. A member
    /// of "" (a whole-file reference in cohort.toml) matches whatever the one member is.
    names: Vec<(String, String)>,
}

impl FilePlan {
    fn view_names_for(&self, member: &str) -> Vec<String> {
        if self.names.is_empty() {
            return vec![member.to_string()];
        }
        self.names.iter().filter(|(m, _)| m == member || m.is_empty()).map(|(_, n)| n.clone()).collect()
    }
}

/// Load a cohort directory: the manifest if any, the metadata, then every view.
fn load_dir(dir: &Path) -> Result<Cohort> {
    if !dir.is_dir() {
        return Err(Error::input(
            dir,
            "not a directory; a cohort is a directory holding metadata.csv (or metadata.parquet) and one file per view",
        ));
    }
    let manifest = Manifest::load_if_present(dir)?;
    let options = manifest.as_ref().map(|m| m.options.clone()).unwrap_or_default();
    let meta_path = match manifest.as_ref().and_then(|m| m.metadata.clone()) {
        Some(path) => {
            if !path.is_file() {
                return Err(Error::input(
                    &path,
                    format!(
                        "cohort.toml names this metadata file but it does not exist in {}",
                        dir.display()
                    ),
                ));
            }
            path
        }
        None => default_metadata(dir)?,
    };
    let entries = list_files(dir)?;
    let (mut plans, mut ignored) = match manifest.as_ref().and_then(|m| m.views.as_ref()) {
        Some(views) => plan_from_manifest(views)?,
        None => plan_discovered(&entries, &meta_path),
    };
    let used: Vec<&Path> = plans.iter().map(|p| p.path.as_path()).collect();
    ignored.extend(
        entries
            .iter()
            .filter(|p| **p != meta_path && !used.contains(&p.as_path()))
            .filter(|p| p.file_name().is_some_and(|n| n != MANIFEST_FILE))
            .filter(|p| !ignored.contains(p))
            .cloned()
            .collect::<Vec<_>>(),
    );
    ignored.sort();

    // The metadata first, reading views from it when it is a Parquet table.
    let mut views: Vec<View> = Vec::new();
    let mut notes = LoadNotes {
        metadata_file: Some(meta_path.clone()),
        manifest: manifest.as_ref().map(|m| m.path.clone()),
        ignored_files: ignored,
        ids_checked: Vec::new(),
    };
    let metadata = match Format::of(&meta_path) {
        Some(Format::Parquet) => {
            let position = plans.iter().position(|p| p.path == meta_path);
            let plan = position.map(|i| plans.remove(i));
            let select = plan.as_ref().map(|p| p.select.clone()).unwrap_or(Select::Named(Vec::new()));
            let read = parquet::read(&meta_path, &select, &options, true)?;
            let metadata = read.metadata.expect("read as metadata");
            if let Some(plan) = plan {
                push_views(&plan, read.contents, &mut views)?;
            }
            metadata
        }
        _ => Metadata::read_csv_with(&meta_path, &options)?,
    };
    for plan in &plans {
        let contents = match plan.format {
            Format::Npy => {
                let array = npy::read(&plan.path)?;
                let name = plan.names.first().map(|(_, n)| n.clone()).unwrap_or_else(|| stem(&plan.path));
                views.push(View::from_raw(
                    name,
                    ViewSource { path: plan.path.clone(), dtype: array.dtype, member: None },
                    array.rows,
                    array.cols,
                    array.data,
                )?);
                continue;
            }
            Format::Npz => npz::read(&plan.path, &plan.select)?,
            Format::Safetensors => safetensors::read(&plan.path, &plan.select)?,
            Format::Parquet => parquet::read(&plan.path, &plan.select, &options, false)?.contents,
            Format::Csv => unreachable!("CSV files are never view sources"),
        };
        if let Some(ids) = &contents.ids {
            container::check_ids(&plan.path, ids, &metadata, &meta_path)?;
            notes.ids_checked.push(IdCheck { file: plan.path.clone(), member: ids.member.clone() });
        }
        push_views(plan, contents, &mut views)?;
    }
    let mut cohort = Cohort::from_parts(dir, metadata, views)?;
    cohort.notes = notes;
    Ok(cohort)
}

/// Turn a container's arrays into views named as the plan says.
fn push_views(plan: &FilePlan, contents: Contents, views: &mut Vec<View>) -> Result<()> {
    for member in contents.arrays {
        let names = plan.view_names_for(&member.name);
        let source =
            ViewSource { path: plan.path.clone(), dtype: member.array.dtype, member: Some(member.name) };
        let (rows, cols) = (member.array.rows, member.array.cols);
        // A member named by two views is cloned for all but the last name.
        let mut data = Some(member.array.data);
        for (k, name) in names.iter().enumerate() {
            let values = if k + 1 == names.len() {
                data.take().unwrap_or_default()
            } else {
                data.clone().unwrap_or_default()
            };
            views.push(View::from_raw(name.clone(), source.clone(), rows, cols, values)?);
        }
    }
    Ok(())
}

/// `metadata.csv` or `metadata.parquet`, exactly one of them.
fn default_metadata(dir: &Path) -> Result<PathBuf> {
    let found: Vec<PathBuf> = METADATA_FILES.iter().map(|f| dir.join(f)).filter(|p| p.is_file()).collect();
    match found.as_slice() {
        [one] => Ok(one.clone()),
        [] => Err(Error::input(
            dir,
            "no metadata.csv or metadata.parquet: a cohort directory needs one metadata table \
             (columns id, patient_id, ...), or a cohort.toml naming it (docs/FORMATS.md)",
        )),
        _ => Err(Error::input(
            dir,
            "has both metadata.csv and metadata.parquet; remove one, or name the one to use in cohort.toml (metadata = \"...\")",
        )),
    }
}

/// Regular, non-hidden files of `dir`, sorted.
fn list_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| Error::io(dir, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .filter(|p| p.file_name().and_then(|n| n.to_str()).is_some_and(|n| !n.starts_with('.')))
        .collect();
    files.sort();
    Ok(files)
}

fn stem(path: &Path) -> String {
    path.file_stem().and_then(|s| s.to_str()).unwrap_or_default().to_string()
}

/// Without `[views]`: every `.npy` is a view named by its stem, every `.npz` member and
/// safetensors tensor a view named by itself, every list column of a Parquet metadata table
/// a view. Returns the plans and the files ignored.
fn plan_discovered(entries: &[PathBuf], meta_path: &Path) -> (Vec<FilePlan>, Vec<PathBuf>) {
    let mut plans = Vec::new();
    if Format::of(meta_path) == Some(Format::Parquet) {
        plans.push(FilePlan {
            path: meta_path.to_path_buf(),
            format: Format::Parquet,
            select: Select::All,
            names: Vec::new(),
        });
    }
    for path in entries {
        if let Some(format @ (Format::Npy | Format::Npz | Format::Safetensors)) = Format::of(path) {
            plans.push(FilePlan { path: path.clone(), format, select: Select::All, names: Vec::new() });
        }
    }
    (plans, Vec::new())
}

/// With `[views]`: group the listed views by file.
fn plan_from_manifest(views: &[ViewRef]) -> Result<(Vec<FilePlan>, Vec<PathBuf>)> {
    let mut plans: Vec<FilePlan> = Vec::new();
    for view in views {
        let format = Format::of(&view.file).expect("checked when the manifest was parsed");
        if !view.file.is_file() {
            return Err(Error::input(
                &view.file,
                format!("cohort.toml [views] names this file for view `{}` but it does not exist", view.name),
            ));
        }
        let plan = match plans.iter_mut().position(|p| p.path == view.file) {
            Some(i) => &mut plans[i],
            None => {
                plans.push(FilePlan {
                    path: view.file.clone(),
                    format,
                    select: Select::Named(Vec::new()),
                    names: Vec::new(),
                });
                plans.last_mut().expect("just pushed")
            }
        };
        match (&view.member, &mut plan.select) {
            (Some(member), Select::Named(members)) => {
                if !members.contains(member) {
                    members.push(member.clone());
                }
                plan.names.push((member.clone(), view.name.clone()));
            }
            (None, select @ Select::Named(_)) if plan.names.is_empty() => {
                *select = Select::Single;
                plan.names.push((String::new(), view.name.clone()));
            }
            _ => {
                return Err(Error::input(
                    &view.file,
                    format!(
                        "cohort.toml [views] uses this file for several views, so each must name its member (`file:member`); view `{}` does not",
                        view.name
                    ),
                ))
            }
        }
    }
    Ok((plans, Vec::new()))
}
