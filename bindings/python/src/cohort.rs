//! `linkrisk.Cohort` in Rust: a validated `linkrisk::cohort::Cohort` built from numpy arrays
//! and metadata columns (or loaded from a directory, as the CLI loads it), behind an `Arc`
//! so audits run on it with the GIL released.
//!
//! The arrays: float32 C-contiguous arrays are read in place (the Python side converts other
//! dtypes and orders once, with `numpy.ascontiguousarray`). The library keeps every view as
//! L2-normalised rows (its contract: cosine is a dot product), so the one copy made is the
//! normalised matrix, the same one `Cohort::load` makes from a file; the caller's array is
//! never modified.

use std::borrow::Cow;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use linkrisk::cohort::columns::{RowNumbering, RowParser};
use linkrisk::cohort::npy::Dtype;
use linkrisk::cohort::summary::CohortSummary;
use linkrisk::cohort::{Cohort, Metadata, MetadataOptions, View, ViewSource};
use numpy::{PyArrayMethods, PyReadonlyArray2, PyUntypedArrayMethods};
use pyo3::prelude::*;

use crate::error::to_py;

/// Where in-memory metadata "lives" in messages.
const MEMORY_METADATA: &str = "<metadata>";

/// A validated cohort (the Python `Cohort` wraps it).
#[pyclass(name = "_Cohort", module = "linkrisk._linkrisk", frozen)]
pub struct PyCohort {
    pub cohort: Arc<Cohort>,
    /// The cohort directory it was loaded from (`None`: built in memory).
    pub dir: Option<PathBuf>,
    fingerprint: Mutex<Option<String>>,
}

impl PyCohort {
    fn new(cohort: Cohort, dir: Option<PathBuf>) -> PyCohort {
        PyCohort { cohort: Arc::new(cohort), dir, fingerprint: Mutex::new(None) }
    }
}

#[pymethods]
impl PyCohort {
    /// Number of records.
    fn __len__(&self) -> usize {
        self.cohort.len()
    }

    /// The view names, sorted.
    #[getter]
    fn view_names(&self) -> Vec<String> {
        self.cohort.view_names().into_iter().map(String::from).collect()
    }

    /// The directory the cohort was loaded from, or None.
    #[getter]
    fn dir(&self) -> Option<String> {
        self.dir.as_ref().map(|d| d.display().to_string())
    }

    /// The cohort summary as `linkrisk inspect DIR --json` writes it (JSON text).
    fn summary_json(&self) -> PyResult<String> {
        serde_json::to_string(&CohortSummary::of(&self.cohort))
            .map_err(|e| pyo3::exceptions::PyRuntimeError::new_err(e.to_string()))
    }

    /// The view `name`'s unit rows as a new float32 array (n, dim).
    fn view_rows<'py>(&self, py: Python<'py>, name: &str) -> PyResult<Bound<'py, numpy::PyArray2<f32>>> {
        let view = self.cohort.view(name).map_err(to_py)?;
        let array = numpy::PyArray1::from_slice(py, view.rows());
        array.reshape([view.n(), view.dim()])
    }

    /// The label `--out RUN` records a loaded cohort under by default (the directory's
    /// name); in-memory cohorts have none.
    fn default_label(&self) -> PyResult<String> {
        match &self.dir {
            Some(dir) => linkrisk::runner::default_label(dir).map_err(to_py),
            None => Err(crate::error::config(
                "label: an in-memory cohort has no directory to name the model after; pass save(run_dir, label=NAME)",
            )),
        }
    }

    /// The cohort's fingerprint in a run directory: `linkrisk::shard::cohort_fingerprint`
    /// of the directory for a loaded cohort (the CLI's), else a hash of the views' unit rows
    /// and the metadata's ids (computed once).
    fn fingerprint(&self, py: Python<'_>) -> PyResult<String> {
        if let Some(f) = self.fingerprint.lock().ok().and_then(|f| f.clone()) {
            return Ok(f);
        }
        let cohort = Arc::clone(&self.cohort);
        let dir = self.dir.clone();
        let f = py
            .detach(move || match dir {
                Some(dir) => linkrisk::shard::cohort_fingerprint(&dir),
                None => Ok(memory_fingerprint(&cohort)),
            })
            .map_err(to_py)?;
        if let Ok(mut slot) = self.fingerprint.lock() {
            *slot = Some(f.clone());
        }
        Ok(f)
    }
}

/// A content hash of an in-memory cohort: views (name, shape, unit rows) and the record and
/// patient ids, in order.
fn memory_fingerprint(cohort: &Cohort) -> String {
    let mut hasher = blake3::Hasher::new();
    hasher.update(b"linkrisk in-memory cohort fingerprint v1\n");
    let mut field = |bytes: &[u8]| {
        hasher.update(&(bytes.len() as u64).to_le_bytes());
        hasher.update(bytes);
    };
    for view in cohort.views() {
        field(view.name().as_bytes());
        field(&(view.n() as u64).to_le_bytes());
        field(&(view.dim() as u64).to_le_bytes());
        let bytes: Vec<u8> = view.rows().iter().flat_map(|v| v.to_le_bytes()).collect();
        field(&bytes);
    }
    for i in 0..cohort.len() {
        field(cohort.metadata.ids[i].as_bytes());
        field(cohort.metadata.patient_ids[i].as_bytes());
    }
    hasher.finalize().to_hex().to_string()
}

/// Load and validate a cohort directory, exactly as the CLI does.
#[pyfunction]
pub fn load_cohort(py: Python<'_>, dir: PathBuf) -> PyResult<PyCohort> {
    let loaded = py.detach(|| Cohort::load(&dir)).map_err(to_py)?;
    Ok(PyCohort::new(loaded, Some(dir)))
}

/// Build a cohort from float32 C-contiguous views `(name, array, original dtype)` and
/// metadata: either a file (`metadata_path`, CSV or Parquet) or columns (`names` with one
/// list of text cells per column; blank for missing).
#[pyfunction]
#[pyo3(signature = (views, names=None, cells=None, metadata_path=None))]
pub fn cohort_from_arrays(
    py: Python<'_>,
    views: Vec<(String, PyReadonlyArray2<'_, f32>, String)>,
    names: Option<Vec<String>>,
    cells: Option<Vec<Vec<String>>>,
    metadata_path: Option<PathBuf>,
) -> PyResult<PyCohort> {
    let metadata = match (metadata_path, names, cells) {
        (Some(path), _, _) => py.detach(|| read_metadata_file(&path)).map_err(to_py)?,
        (None, Some(names), Some(cells)) => {
            py.detach(|| metadata_from_columns(&names, &cells)).map_err(to_py)?
        }
        _ => return Err(crate::error::config("metadata: pass a DataFrame, a dict of columns or a path")),
    };
    let mut built = Vec::with_capacity(views.len());
    for (name, array, dtype) in &views {
        let shape = array.shape();
        let (n, dim) = (shape[0], shape[1]);
        let rows = array.as_slice().map_err(|e| crate::error::config(format!("view `{name}`: {e}")))?;
        let source = ViewSource {
            path: PathBuf::from(format!("<array:{name}>")),
            dtype: match dtype.as_str() {
                "float16" => Dtype::Float16,
                "float64" => Dtype::Float64,
                _ => Dtype::Float32,
            },
            member: None,
        };
        // Validating and normalising the copy runs without the GIL (parallel, as at load).
        let view =
            py.detach(|| View::from_raw(name.clone(), source, n, dim, rows.to_vec())).map_err(to_py)?;
        built.push(view);
    }
    let cohort = Cohort::from_parts(PathBuf::new(), metadata, built).map_err(to_py)?;
    Ok(PyCohort::new(cohort, None))
}

/// Metadata from a CSV or Parquet file, as a cohort directory's.
fn read_metadata_file(path: &Path) -> linkrisk::Result<Metadata> {
    let is_parquet = path.extension().is_some_and(|e| e.eq_ignore_ascii_case("parquet"));
    if is_parquet {
        let select = linkrisk::cohort::container::Select::Named(Vec::new());
        let read = linkrisk::cohort::parquet::read(path, &select, &MetadataOptions::default(), true)?;
        return read.metadata.ok_or_else(|| linkrisk::Error::input(path, "no metadata columns"));
    }
    Metadata::read_csv(path)
}

/// Metadata from columns of text cells, through the parser CSV and Parquet metadata use
/// (same checks, same messages; rows are 0-based).
fn metadata_from_columns(names: &[String], cells: &[Vec<String>]) -> linkrisk::Result<Metadata> {
    let path = Path::new(MEMORY_METADATA);
    let n = cells.first().map_or(0, Vec::len);
    if let Some((name, column)) = names.iter().zip(cells).find(|(_, c)| c.len() != n) {
        return Err(linkrisk::Error::input(
            path,
            format!("column `{name}` has {} values but column `{}` has {n}; every column needs one value per record", column.len(), names[0]),
        ));
    }
    let header: Vec<&str> = names.iter().map(|s| s.trim()).collect();
    let options = MetadataOptions::default();
    let mut parser = RowParser::new(path, &header, &options, RowNumbering::ZeroBased)?;
    for row in 0..n {
        parser.push(row, |c| Cow::Borrowed(cells[c][row].trim()))?;
    }
    parser.finish()
}
