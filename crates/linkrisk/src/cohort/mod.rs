//! Cohort input: a metadata table plus one embedding matrix per named view, validated and
//! row-aligned. Row i of every view describes the record on row i of the metadata.
//!
//! File formats live only here (`npy`, `npz`, `safetensors`, `parquet`, CSV metadata, the
//! optional `cohort.toml` manifest); everything downstream sees a [`Cohort`]: [`Metadata`]
//! plus [`View`]s whose rows are L2-normalised `f32` (cosine similarity is then a dot
//! product). Bad input is an [`Error::Input`] that names the file, the row or column and
//! the fix; nothing is dropped silently. The contract is written up in docs/FORMATS.md.
//!
//! A shard of a large audit loads only what it needs ([`load_views`]) and may keep its
//! gallery in the file instead of in memory ([`load_views_mapped`], [`mapped`]): the rows
//! stay as stored, with one normalising factor each, and the engine scales them on the fly
//! to bitwise the same unit rows.

pub mod columns;
pub mod container;
pub mod flags;
pub mod manifest;
pub mod mapped;
pub mod metadata;
pub mod npy;
pub mod npz;
pub mod parquet;
pub mod safetensors;
pub mod summary;
pub mod view;
pub mod write;

#[cfg(test)]
mod damage_tests;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;

pub use columns::MetadataOptions;
pub use manifest::Manifest;
pub use mapped::{MapAttempt, MappedView};
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
        let dir = dir.as_ref();
        let (metadata, views, notes) = load_dir(dir, None, &[])?;
        let views = views.into_iter().map(LoadedView::into_read).collect::<Result<Vec<_>>>()?;
        let mut cohort = Cohort::from_parts(dir, metadata, views)?;
        cohort.notes = notes;
        Ok(cohort)
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

/// One view wanted by [`load_views`], optionally only some of its rows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ViewRequest {
    /// The view's name.
    pub name: String,
    /// Rows to read (row i of the loaded view is row `rows[i]` of the file); `None`: all.
    pub rows: Option<Vec<usize>>,
}

/// Load the metadata and only some views of a cohort directory, each restricted to some
/// rows: what a shard of a large audit needs (the whole gallery, a slice of the queries)
/// without holding the other views in memory. `select` sees the metadata (e.g. to find a
/// split's records) and names the views and rows to read. Views in plain `.npy` files are
/// read row range by row range; views inside containers (npz, safetensors, Parquet) are read
/// whole and then cut. Validation is that of [`Cohort::load`] for what is read: every view
/// file must have one row per metadata record, and the rows read must be finite and
/// non-zero. Views come back in request order.
pub fn load_views(
    dir: impl AsRef<Path>,
    select: impl FnOnce(&Metadata) -> Result<Vec<ViewRequest>>,
) -> Result<(Metadata, Vec<View>)> {
    let (metadata, views) = load_views_mapped(dir, select, &[])?;
    let views = views.into_iter().map(LoadedView::into_read).collect::<Result<Vec<_>>>()?;
    Ok((metadata, views))
}

/// Environment variable that turns memory-mapping of views off ([`load_views_mapped`]).
pub const NO_MMAP_ENV: &str = "LINKRISK_NO_MMAP";

fn mapping_disabled() -> bool {
    std::env::var_os(NO_MMAP_ENV).is_some_and(|v| !v.is_empty() && v != "0")
}

/// A view as [`load_views_mapped`] returns it.
#[derive(Debug)]
pub enum LoadedView {
    /// Read into memory and normalised.
    Read(View),
    /// Memory-mapped in place, validated, with per-row scale factors.
    Mapped(MappedView),
}

impl LoadedView {
    /// The view's name.
    pub fn name(&self) -> &str {
        match self {
            LoadedView::Read(v) => v.name(),
            LoadedView::Mapped(m) => m.name(),
        }
    }

    /// Rows (those requested).
    pub fn n(&self) -> usize {
        match self {
            LoadedView::Read(v) => v.n(),
            LoadedView::Mapped(m) => m.n(),
        }
    }

    /// Embedding dimension.
    pub fn dim(&self) -> usize {
        match self {
            LoadedView::Read(v) => v.dim(),
            LoadedView::Mapped(m) => m.dim(),
        }
    }

    /// The view read into memory; a mapped view is copied out of its map, normalised.
    pub fn into_read(self) -> Result<View> {
        match self {
            LoadedView::Read(v) => Ok(v),
            LoadedView::Mapped(m) => {
                let raw: Vec<f32> = (0..m.n()).flat_map(|i| m.raw_row(i).iter().copied()).collect();
                View::from_raw(m.name().to_string(), m.source().clone(), m.n(), m.dim(), raw)
            }
        }
    }
}

/// [`load_views`], with the views named in `map` memory-mapped when their file allows
/// ([`MappedView`]: a little-endian float32 `.npy` with aligned data); any other source is
/// read into memory as [`load_views`] reads it. For a shard's gallery: mapped, its pages
/// are shared page cache rather than the process's own memory.
///
/// With the environment variable [`NO_MMAP_ENV`] set to anything but `0` or nothing,
/// nothing is mapped (e.g. on a file system where mapping is slow or unsafe, or to compare).
pub fn load_views_mapped(
    dir: impl AsRef<Path>,
    select: impl FnOnce(&Metadata) -> Result<Vec<ViewRequest>>,
    map: &[&str],
) -> Result<(Metadata, Vec<LoadedView>)> {
    let dir = dir.as_ref();
    let map = if mapping_disabled() { &[] } else { map };
    let mut order = Vec::new();
    let mut select = Some(select);
    let mut select_and_remember = |meta: &Metadata| {
        let requests = select.take().expect("load_dir selects once")(meta)?;
        order = requests.iter().map(|r| r.name.clone()).collect::<Vec<_>>();
        Ok(requests)
    };
    let (metadata, mut views, _) = load_dir(dir, Some(&mut select_and_remember), map)?;
    let mut out = Vec::with_capacity(order.len());
    for name in &order {
        let Some(i) = views.iter().position(|v| v.name() == name) else {
            return Err(Error::input(
                dir,
                format!(
                    "no view named `{name}`; check the view names with `linkrisk inspect {}`",
                    dir.display()
                ),
            ));
        };
        out.push(views.swap_remove(i));
    }
    Ok((metadata, out))
}

/// Chooses the views (and rows) a partial load reads, once the metadata is known.
type Selector<'s> = &'s mut dyn FnMut(&Metadata) -> Result<Vec<ViewRequest>>;

/// Whether view `name` is wanted, and which rows of it (`Some(None)`: all rows).
fn wanted<'a>(requests: Option<&'a [ViewRequest]>, name: &str) -> Option<Option<&'a [usize]>> {
    match requests {
        None => Some(None),
        Some(list) => list.iter().find(|r| r.name == name).map(|r| r.rows.as_deref()),
    }
}

/// Check a whole view's row count against the metadata, then keep only `rows` of it.
fn select_rows(
    path: &Path,
    name: &str,
    n_records: usize,
    n_rows: usize,
    cols: usize,
    data: Vec<f32>,
    rows: Option<&[usize]>,
) -> Result<(usize, Vec<f32>)> {
    let Some(rows) = rows else { return Ok((n_rows, data)) };
    check_row_count(path, name, n_records, n_rows)?;
    let mut out = Vec::with_capacity(rows.len() * cols);
    for &r in rows {
        out.extend_from_slice(&data[r * cols..(r + 1) * cols]);
    }
    Ok((rows.len(), out))
}

/// The error [`Cohort::from_parts`] gives for a view whose row count is not the metadata's,
/// for views that are cut to some rows before a cohort is assembled.
fn check_row_count(path: &Path, name: &str, n_records: usize, n_rows: usize) -> Result<()> {
    if n_rows != n_records {
        return Err(Error::input(
            path,
            format!(
                "view `{name}` has {n_rows} rows but the metadata has {n_records} records; row i of every \
                 view must describe row i of the metadata: export one row per metadata record, in its order"
            ),
        ));
    }
    Ok(())
}

/// Load a cohort directory: the manifest if any, the metadata, then every view (or, with
/// `requests`, only the requested views and rows).
fn load_dir(
    dir: &Path,
    select: Option<Selector<'_>>,
    map: &[&str],
) -> Result<(Metadata, Vec<LoadedView>, LoadNotes)> {
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
            if let Some(problem) = not_a_regular_file(&path) {
                return Err(Error::input(
                    &path,
                    format!("cohort.toml names it as the metadata table, but it {problem}"),
                ));
            }
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
    // Outputs of this process may not replace what it reads (cohort::write::atomic).
    crate::cleanup::register_input(&meta_path);
    if let Some(m) = &manifest {
        crate::cleanup::register_input(&m.path);
    }
    for plan in &plans {
        crate::cleanup::register_input(&plan.path);
    }
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
    let mut views: Vec<LoadedView> = Vec::new();
    let mut notes = LoadNotes {
        metadata_file: Some(meta_path.clone()),
        manifest: manifest.as_ref().map(|m| m.path.clone()),
        ignored_files: ignored,
        ids_checked: Vec::new(),
    };
    let (metadata, metadata_views) = match Format::of(&meta_path) {
        Some(Format::Parquet) => {
            let position = plans.iter().position(|p| p.path == meta_path);
            let plan = position.map(|i| plans.remove(i));
            let select = plan.as_ref().map(|p| p.select.clone()).unwrap_or(Select::Named(Vec::new()));
            let read = parquet::read(&meta_path, &select, &options, true)?;
            let metadata = read.metadata.expect("read as metadata");
            (metadata, plan.map(|plan| (plan, read.contents)))
        }
        _ => (Metadata::read_csv_with(&meta_path, &options)?, None),
    };
    let requests = match select {
        Some(select) => Some(select(&metadata)?),
        None => None,
    };
    let requests = requests.as_deref();
    if let Some((plan, contents)) = metadata_views {
        push_views(&plan, contents, &mut views, requests, metadata.len())?;
    }
    for plan in &plans {
        if requests.is_some()
            && !plan.names.is_empty()
            && plan.names.iter().all(|(_, n)| wanted(requests, n).is_none())
        {
            continue;
        }
        let contents = match plan.format {
            Format::Npy => {
                let name = plan.names.first().map(|(_, n)| n.clone()).unwrap_or_else(|| stem(&plan.path));
                let Some(rows) = wanted(requests, &name) else { continue };
                if map.contains(&name.as_str()) {
                    if let MapAttempt::Mapped(mapped) = MappedView::open(&name, &plan.path, rows)? {
                        check_row_count(&plan.path, &name, metadata.len(), mapped.file_rows())?;
                        views.push(LoadedView::Mapped(mapped));
                        continue;
                    }
                }
                let array = match rows {
                    None => {
                        let array = npy::read(&plan.path)?;
                        if requests.is_some() {
                            check_row_count(&plan.path, &name, metadata.len(), array.rows)?;
                        }
                        array
                    }
                    Some(rows) => {
                        let (array, file_rows) = npy::read_rows(&plan.path, rows)?;
                        check_row_count(&plan.path, &name, metadata.len(), file_rows)?;
                        array
                    }
                };
                views.push(LoadedView::Read(View::from_raw(
                    name,
                    ViewSource { path: plan.path.clone(), dtype: array.dtype, member: None },
                    array.rows,
                    array.cols,
                    array.data,
                )?));
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
        push_views(plan, contents, &mut views, requests, metadata.len())?;
    }
    Ok((metadata, views, notes))
}

/// Turn a container's arrays into views named as the plan says (with `requests`, only the
/// requested views and rows).
fn push_views(
    plan: &FilePlan,
    contents: Contents,
    views: &mut Vec<LoadedView>,
    requests: Option<&[ViewRequest]>,
    n_records: usize,
) -> Result<()> {
    for mut member in contents.arrays {
        let mut names = plan.view_names_for(&member.name);
        names.retain(|n| wanted(requests, n).is_some());
        if let Some(rows) = names.first().and_then(|n| wanted(requests, n)).flatten() {
            // A member requested under several names shares the first request's rows.
            let (n, data) = select_rows(
                &plan.path,
                &names[0],
                n_records,
                member.array.rows,
                member.array.cols,
                std::mem::take(&mut member.array.data),
                Some(rows),
            )?;
            member.array.rows = n;
            member.array.data = data;
        }
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
            views.push(LoadedView::Read(View::from_raw(name.clone(), source.clone(), rows, cols, values)?));
        }
    }
    Ok(())
}

/// `metadata.csv` or `metadata.parquet`, exactly one of them.
fn default_metadata(dir: &Path) -> Result<PathBuf> {
    for name in METADATA_FILES {
        if let Some(problem) = not_a_regular_file(&dir.join(name)) {
            return Err(Error::input(dir.join(name), problem));
        }
    }
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

/// Regular, non-hidden files of `dir`, sorted (what a cohort directory holds). An entry
/// named like a view or metadata file (`.npy`, `.npz`, `.safetensors`, `.parquet`,
/// `metadata.csv`) that is not a regular file — a directory, a dangling symbolic link, a
/// link loop, a FIFO or a device — is an error naming it, never silently left out.
pub(crate) fn list_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
        let path = entry.map_err(|e| Error::io(dir, e))?.path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else { continue };
        if name.starts_with('.') {
            continue;
        }
        if path.is_file() {
            files.push(path);
            continue;
        }
        let read_as_input = METADATA_FILES.contains(&name)
            || matches!(
                Format::of(&path),
                Some(Format::Npy | Format::Npz | Format::Safetensors | Format::Parquet)
            );
        if read_as_input {
            if let Some(problem) = not_a_regular_file(&path) {
                return Err(Error::input(&path, problem));
            }
        }
    }
    files.sort();
    Ok(files)
}

/// Why `path` cannot be read as an input file, or `None` when it is a regular file (or a
/// link to one) or does not exist at all.
pub(crate) fn not_a_regular_file(path: &Path) -> Option<String> {
    let entry = std::fs::symlink_metadata(path).ok()?;
    let problem = match std::fs::metadata(path) {
        Ok(m) if m.is_file() => return None,
        Ok(m) if m.is_dir() => {
            "is a directory, not a file; a view or metadata table must be a regular file".into()
        }
        Ok(_) => "is not a regular file (a FIFO, socket or device such as /dev/zero); \
                  copy the data into a regular file"
            .into(),
        Err(_) if entry.file_type().is_symlink() => {
            let target = std::fs::read_link(path).unwrap_or_default();
            let target = path.parent().unwrap_or(Path::new(".")).join(&target);
            if std::fs::symlink_metadata(&target).is_ok() {
                "is a symbolic link that loops (it resolves to itself); point it at the file".into()
            } else {
                format!(
                    "is a symbolic link to {}, which does not exist; point it at the file or remove it",
                    target.display()
                )
            }
        }
        Err(e) => format!("cannot be read: {e}"),
    };
    Some(problem)
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
        if let Some(problem) = not_a_regular_file(&view.file) {
            return Err(Error::input(
                &view.file,
                format!("cohort.toml [views] names it for view `{}`, but it {problem}", view.name),
            ));
        }
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
