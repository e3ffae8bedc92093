//! Borrowed row-major matrices: the engine's input type. Views, gathered splits and test
//! data all reach the kernel as [`Rows`], so the kernel never copies a matrix it can borrow.

use crate::cohort::View;
use crate::error::{Error, Result};

/// A borrowed row-major matrix of `n` rows with `dim` finite `f32` values each. For cosine
/// similarity the rows are unit-norm (views are normalised at load).
#[derive(Debug, Clone, Copy)]
pub struct Rows<'a> {
    data: &'a [f32],
    n: usize,
    dim: usize,
}

impl<'a> Rows<'a> {
    /// Wrap `data` (n x dim, row-major), checking the shape and that every value is finite.
    pub fn new(data: &'a [f32], n: usize, dim: usize) -> Result<Self> {
        if dim == 0 {
            return Err(Error::config("a matrix for ranking needs at least one column"));
        }
        if data.len() != n * dim {
            return Err(Error::config(format!(
                "a ({n}, {dim}) matrix needs {} values, got {}",
                n * dim,
                data.len()
            )));
        }
        if let Some(pos) = data.iter().position(|v| !v.is_finite()) {
            return Err(Error::config(format!(
                "row {}, column {} holds {}, which is not finite; similarities need finite values",
                pos / dim,
                pos % dim,
                data[pos]
            )));
        }
        Ok(Rows { data, n, dim })
    }

    /// Wrap data already known to be finite and of the right shape (no O(n d) scan).
    pub(crate) fn trusted(data: &'a [f32], n: usize, dim: usize) -> Self {
        debug_assert_eq!(data.len(), n * dim);
        Rows { data, n, dim }
    }

    /// All rows of a validated view (finite, unit-norm by construction).
    pub fn from_view(view: &'a View) -> Self {
        Rows { data: view.rows(), n: view.n(), dim: view.dim() }
    }

    /// Number of rows.
    pub fn n(&self) -> usize {
        self.n
    }

    /// Values per row.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// The whole matrix, row-major.
    pub fn data(&self) -> &'a [f32] {
        self.data
    }

    /// Row `i`.
    pub fn row(&self, i: usize) -> &'a [f32] {
        &self.data[i * self.dim..(i + 1) * self.dim]
    }

    /// Rows `start..end` as a matrix of their own (no copy).
    pub fn slice(&self, start: usize, end: usize) -> Rows<'a> {
        Rows { data: &self.data[start * self.dim..end * self.dim], n: end - start, dim: self.dim }
    }
}

/// Copy the listed rows of `view` into one contiguous row-major buffer (e.g. the records of
/// one split), ready to wrap with [`Rows::new`].
pub fn gather(view: &View, rows: &[usize]) -> Vec<f32> {
    let mut out = Vec::with_capacity(rows.len() * view.dim());
    for &i in rows {
        out.extend_from_slice(view.row(i));
    }
    out
}
