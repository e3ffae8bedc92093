//! Borrowed row-major matrices: the engine's input type. Views, gathered splits and test
//! data all reach the kernel as [`Rows`], so the kernel never copies a matrix it can borrow.
//! A gallery may instead be [`ScaledRows`]: rows stored as they are in a file (e.g. a
//! memory-mapped view) with one normalising factor per row, scaled chunk by chunk inside
//! the kernel, so the normalised matrix never exists in memory.

use crate::cohort::mapped::MappedView;
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

/// A matrix stored un-normalised, with one scale factor per row: row `i` is
/// `raw[source(i)] * scales[i]`, one `f32` multiplication per value, where `source(i)` is
/// `rows[i]` (or `i` without a row list). The engine's view of a memory-mapped gallery
/// ([`crate::cohort::mapped::MappedView`]): the kernel scales each chunk of representatives
/// into a small buffer just before its GEMM ([`crate::engine::Gallery::scaled`]). With the
/// factors the cohort loader computes, every value is bitwise the value of the view
/// normalised in memory, so rankings agree bit for bit.
#[derive(Debug, Clone, Copy)]
pub struct ScaledRows<'a> {
    raw: &'a [f32],
    rows: Option<&'a [u32]>,
    scales: &'a [f32],
    dim: usize,
}

impl<'a> ScaledRows<'a> {
    /// Wrap `raw` (row-major, `dim` values per row), the rows `rows` of it in that order
    /// (`None`: every row of `raw`), each multiplied by its entry of `scales`. Checks the
    /// shape, the row indices and that every scaled value is finite (one O(n d) pass).
    pub fn new(raw: &'a [f32], dim: usize, rows: Option<&'a [u32]>, scales: &'a [f32]) -> Result<Self> {
        if dim == 0 {
            return Err(Error::config("a matrix for ranking needs at least one column"));
        }
        if raw.len() % dim != 0 {
            return Err(Error::config(format!("{} raw values do not make rows of {dim} values", raw.len())));
        }
        let raw_rows = raw.len() / dim;
        let n = rows.map_or(raw_rows, <[u32]>::len);
        if scales.len() != n {
            return Err(Error::config(format!(
                "{} scale factors for {n} rows; give one per row",
                scales.len()
            )));
        }
        if let Some(&bad) = rows.and_then(|r| r.iter().find(|&&r| r as usize >= raw_rows)) {
            return Err(Error::config(format!("row {bad} requested of a matrix of {raw_rows} rows")));
        }
        let scaled = ScaledRows { raw, rows, scales, dim };
        for i in 0..n {
            let scale = scales[i];
            if let Some(col) = scaled.raw_row(i).iter().position(|&v| !(v * scale).is_finite()) {
                return Err(Error::config(format!(
                    "row {i}, column {col} holds {} x {scale}, which is not finite; similarities need finite values",
                    scaled.raw_row(i)[col]
                )));
            }
        }
        Ok(scaled)
    }

    /// Wrap data whose scaled values are known to be finite (no O(n d) scan).
    pub(crate) fn trusted(raw: &'a [f32], dim: usize, rows: Option<&'a [u32]>, scales: &'a [f32]) -> Self {
        debug_assert_eq!(scales.len(), rows.map_or(raw.len() / dim, <[u32]>::len));
        ScaledRows { raw, rows, scales, dim }
    }

    /// The rows of a memory-mapped view (validated at mapping: finite, non-zero).
    pub fn from_mapped(view: &'a MappedView) -> Self {
        Self::trusted(view.raw(), view.dim(), view.row_list(), view.scales())
    }

    /// Number of rows.
    pub fn n(&self) -> usize {
        self.scales.len()
    }

    /// Values per row.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Index of row `i` in the raw matrix.
    #[inline]
    pub fn source(&self, i: usize) -> usize {
        self.rows.map_or(i, |r| r[i] as usize)
    }

    /// Row `i` as stored, before scaling.
    #[inline]
    pub fn raw_row(&self, i: usize) -> &'a [f32] {
        let r = self.source(i);
        &self.raw[r * self.dim..(r + 1) * self.dim]
    }

    /// The scale factor of row `i`.
    #[inline]
    pub fn scale(&self, i: usize) -> f32 {
        self.scales[i]
    }

    /// Write row `i`, scaled, into `out` (`dim` values).
    #[inline]
    pub fn row_into(&self, i: usize, out: &mut [f32]) {
        scale_into(out, self.raw_row(i), self.scales[i]);
    }

    /// The raw matrix all rows index into.
    pub(crate) fn raw(&self) -> &'a [f32] {
        self.raw
    }
}

/// `out[j] = raw[j] * scale`: the one expression that turns a stored value into a unit-row
/// value (the cohort loader normalises with the same multiplication).
#[inline]
pub(crate) fn scale_into(out: &mut [f32], raw: &[f32], scale: f32) {
    for (o, &v) in out.iter_mut().zip(raw) {
        *o = v * scale;
    }
}
