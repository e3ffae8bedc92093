//! A view: one embedding matrix (n records x dim), validated and L2-normalised once at load
//! so that cosine similarity is a dot product everywhere downstream.

use std::path::{Path, PathBuf};

use rayon::prelude::*;
use serde::Serialize;

use super::npy::{Array2, Dtype};
use crate::error::{Error, Result};

/// Where a view came from, for summaries and error messages.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ViewSource {
    /// File the view was read from (or a descriptive name for in-memory views).
    pub path: PathBuf,
    /// Element type in the file.
    pub dtype: Dtype,
    /// Tensor or column name inside a container file (npz, safetensors, parquet).
    pub member: Option<String>,
}

/// One named embedding matrix with L2-normalised rows.
#[derive(Debug, Clone)]
pub struct View {
    name: String,
    source: ViewSource,
    n: usize,
    dim: usize,
    /// n x dim, row-major, each row of unit L2 norm.
    data: Vec<f32>,
    /// The L2 norm of each row before normalisation.
    norms: Vec<f32>,
}

impl View {
    /// Validate (finite values, no all-zero rows) and normalise an array read from `path`.
    pub fn from_array(name: impl Into<String>, path: impl Into<PathBuf>, array: Array2) -> Result<View> {
        let source = ViewSource { path: path.into(), dtype: array.dtype, member: None };
        Self::from_raw(name, source, array.rows, array.cols, array.data)
    }

    /// Validate and normalise `data` (n x dim, row-major) in place.
    pub fn from_raw(
        name: impl Into<String>,
        source: ViewSource,
        n: usize,
        dim: usize,
        mut data: Vec<f32>,
    ) -> Result<View> {
        let name = name.into();
        let path = source.path.clone();
        if data.len() != n * dim {
            return Err(Error::input(
                &path,
                format!("view `{name}`: {} values for shape ({n}, {dim})", data.len()),
            ));
        }
        if dim == 0 {
            return Err(Error::input(
                &path,
                format!("view `{name}` has 0 columns; embeddings need at least one dimension"),
            ));
        }
        if n == 0 {
            return Err(Error::input(&path, format!("view `{name}` has 0 rows: the cohort is empty")));
        }
        let mut norms = vec![0f32; n];
        // One parallel pass validates and normalises; the first bad row (lowest index) is
        // reported so the message does not depend on thread timing.
        let bad = data
            .par_chunks_mut(dim)
            .zip(norms.par_iter_mut())
            .enumerate()
            .filter_map(|(row, (values, norm))| match normalize_row(values) {
                Ok(n) => {
                    *norm = n;
                    None
                }
                Err(problem) => Some((row, problem)),
            })
            .min_by_key(|(row, _)| *row);
        if let Some((row, problem)) = bad {
            return Err(Error::input(&path, describe(&name, row, problem)));
        }
        Ok(View { name, source, n, dim, data, norms })
    }

    /// Build a view from rows computed in memory (synthetic cohorts, trained heads).
    pub fn from_memory(name: impl Into<String>, n: usize, dim: usize, data: Vec<f32>) -> Result<View> {
        let name = name.into();
        let source = ViewSource {
            path: PathBuf::from(format!("<memory:{name}>")),
            dtype: Dtype::Float32,
            member: None,
        };
        Self::from_raw(name, source, n, dim, data)
    }

    /// The view's name (the file stem, e.g. `image`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Where the view came from.
    pub fn source(&self) -> &ViewSource {
        &self.source
    }

    /// The file the view came from.
    pub fn source_path(&self) -> &Path {
        &self.source.path
    }

    /// Number of rows (records).
    pub fn n(&self) -> usize {
        self.n
    }

    /// Embedding dimension.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// All rows, row-major, unit norm.
    pub fn rows(&self) -> &[f32] {
        &self.data
    }

    /// Row `i`, unit norm.
    pub fn row(&self, i: usize) -> &[f32] {
        &self.data[i * self.dim..(i + 1) * self.dim]
    }

    /// L2 norm of each row as it was in the file.
    pub fn norms(&self) -> &[f32] {
        &self.norms
    }

    /// Consume the view, returning its normalised rows.
    pub fn into_rows(self) -> Vec<f32> {
        self.data
    }
}

/// Why a row cannot be normalised.
#[derive(Debug, Clone, Copy)]
pub(crate) enum RowProblem {
    NotFinite { col: usize, value: f32 },
    Zero,
}

/// A row's L2 norm and the factor that normalises it: `(norm, scale)`, where the unit row
/// is `value * scale` for each value, one `f32` multiplication each. The one definition of
/// normalisation: views normalised in memory and memory-mapped views scaled on the fly
/// ([`super::mapped`]) both use it, so their rows agree bit for bit.
pub(crate) fn row_scale(values: &[f32]) -> std::result::Result<(f32, f32), RowProblem> {
    let mut sum = 0f64;
    for (col, &v) in values.iter().enumerate() {
        if !v.is_finite() {
            return Err(RowProblem::NotFinite { col, value: v });
        }
        sum += f64::from(v) * f64::from(v);
    }
    let norm = sum.sqrt();
    if norm == 0.0 || !(norm as f32).is_normal() {
        return Err(RowProblem::Zero);
    }
    Ok((norm as f32, (1.0 / norm) as f32))
}

fn normalize_row(values: &mut [f32]) -> std::result::Result<f32, RowProblem> {
    let (norm, scale) = row_scale(values)?;
    for v in values.iter_mut() {
        *v *= scale;
    }
    Ok(norm)
}

pub(crate) fn describe(name: &str, row: usize, problem: RowProblem) -> String {
    match problem {
        RowProblem::NotFinite { col, value } => format!(
            "view `{name}`, row {row} (0-based), column {col}: value {value} is not finite; \
             fix or remove that record (in every view and metadata.csv) before auditing"
        ),
        RowProblem::Zero => format!(
            "view `{name}`, row {row} (0-based): all-zero vector, cosine similarity is undefined; \
             check the export of that record or remove it from every view and metadata.csv"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_unit_norm_and_norms_kept() {
        let v = View::from_memory("image", 2, 2, vec![3.0, 4.0, 0.0, 2.0]).unwrap();
        assert_eq!(v.row(0), &[0.6, 0.8]);
        assert_eq!(v.row(1), &[0.0, 1.0]);
        assert_eq!(v.norms(), &[5.0, 2.0]);
    }

    #[test]
    fn first_bad_row_is_reported() {
        let mut data = vec![1.0f32; 4000 * 4];
        data[1234 * 4 + 2] = f32::NAN;
        data[3000 * 4..3001 * 4].fill(0.0);
        let err = View::from_memory("image", 4000, 4, data).unwrap_err().to_string();
        assert!(err.contains("row 1234") && err.contains("column 2") && err.contains("not finite"), "{err}");
        let mut data = vec![1.0f32; 10 * 4];
        data[7 * 4..8 * 4].fill(0.0);
        let err = View::from_memory("image", 10, 4, data).unwrap_err().to_string();
        assert!(err.contains("row 7") && err.contains("all-zero"), "{err}");
    }
}
