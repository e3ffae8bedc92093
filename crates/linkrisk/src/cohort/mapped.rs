//! Memory-mapped views: a float32 `.npy` view used as a ranking gallery without reading it
//! into memory. A shard of a large audit ranks its queries against the whole gallery; read
//! into memory as unit rows that gallery is the shard's largest allocation (n x d x 4 bytes,
//! 819 MB at 400,000 x 512). Mapped, its pages are clean page cache, shared by every
//! process on the node that maps the same file and dropped by the kernel under memory
//! pressure instead of being swapped; the process's own (anonymous) memory is the O(block
//! x n) working memory of the ranking.
//!
//! The file's values are never modified: validation (finite values, no all-zero rows) is
//! one streaming pass over the map that also computes each row's scale factor with the
//! loader's own normalisation (`view::row_scale`), and the ranking engine scales
//! rows chunk by chunk ([`crate::engine::ScaledRows`]), so every unit value is bitwise
//! the value [`super::View`] would hold and the scores equal the in-memory path's.
//!
//! Only what can be used in place is mapped: little-endian float32 data (on a
//! little-endian machine) whose offset in the file is a multiple of 4 (f32 alignment;
//! numpy pads headers to 64 bytes, older versions to 16). Other `.npy` files (float16,
//! float64, big-endian, a misaligned header) need a conversion, so they are read into
//! memory as before; [`MapAttempt::Unmappable`] says why.

use std::fs::File;
use std::io::BufReader;
use std::ops::Range;
use std::path::Path;

use memmap2::{Advice, Mmap};
use rayon::prelude::*;

use super::npy::{self, Dtype};
use super::view::{describe, row_scale};
use super::ViewSource;
use crate::error::{Error, Result};

/// A view whose rows are read in place from a memory-mapped `.npy` file, with the scale
/// factor that normalises each row.
#[derive(Debug)]
pub struct MappedView {
    name: String,
    source: ViewSource,
    map: Mmap,
    /// Byte offset of the data in the file (a multiple of 4).
    data_offset: usize,
    /// Rows in the file.
    file_rows: usize,
    dim: usize,
    /// Row of the file of each view row; `None`: every file row, in order.
    rows: Option<Vec<u32>>,
    /// Per view row: `1 / norm` as the loader computes it.
    scales: Vec<f32>,
}

/// What [`MappedView::open`] made of a file.
#[derive(Debug)]
pub enum MapAttempt {
    /// The file is mapped and validated.
    Mapped(MappedView),
    /// The file is a valid view source but cannot be used in place; read it instead.
    Unmappable {
        /// Why (e.g. `float16 values need converting to float32`).
        reason: String,
    },
}

impl MappedView {
    /// Map `.npy` file `path` as view `name`, keeping rows `rows` of it in that order
    /// (`None`: all rows), and validate those rows (finite, non-zero). Errors are those of
    /// reading the file (truncated, not 2-D, Fortran order, ...), or a bad row: its message
    /// names the file, the row of the file and, for a non-finite value, the column.
    pub fn open(name: &str, path: &Path, rows: Option<&[usize]>) -> Result<MapAttempt> {
        let file = File::open(path).map_err(|e| Error::io(path, e))?;
        let len = file.metadata().map_err(|e| Error::io(path, e))?.len();
        let header = npy::read_header(&mut BufReader::with_capacity(4096, &file), path)?;
        let (file_rows, dim, dtype) = npy::view_shape(&header, path, Some(len))?;
        let unmappable = |reason: String| Ok(MapAttempt::Unmappable { reason });
        if dtype != Dtype::Float32 {
            return unmappable(format!("{} values need converting to float32", dtype.name()));
        }
        if header.big_endian != cfg!(target_endian = "big") {
            return unmappable("values in the other byte order need swapping".into());
        }
        if header.header_len % std::mem::align_of::<f32>() != 0 {
            return unmappable(format!(
                "the data starts at byte {}, not a multiple of 4, so it is not aligned for float32",
                header.header_len
            ));
        }
        if file_rows == 0 || dim == 0 {
            // The reader gives the canonical error for an empty view.
            return unmappable("the view is empty".into());
        }
        if let Some(&bad) = rows.and_then(|r| r.iter().find(|&&r| r >= file_rows)) {
            return Err(Error::input(
                path,
                format!("row {bad} requested but the file holds {file_rows} rows"),
            ));
        }
        if file_rows > u32::MAX as usize {
            return unmappable(format!("{file_rows} rows are more than a row index of 32 bits holds"));
        }
        // SAFETY: the map is read-only and private to this process. Cohort files are
        // inputs that must not change while an audit runs (a shard's fingerprint hashes
        // them before it starts, and a merge refuses partials of different inputs); a file
        // truncated or rewritten meanwhile is outside what any reader can guard against,
        // the same contract as the safetensors loader's map.
        let map = unsafe { Mmap::map(&file) }.map_err(|e| Error::io(path, e))?;
        let data_offset = header.header_len;
        let mut view = MappedView {
            name: name.to_string(),
            source: ViewSource { path: path.to_path_buf(), dtype, member: None },
            map,
            data_offset,
            file_rows,
            dim,
            rows: rows.map(|r| r.iter().map(|&r| r as u32).collect()),
            scales: Vec::new(),
        };
        view.validate()?;
        Ok(MapAttempt::Mapped(view))
    }

    /// One parallel pass over the rows in use: each row's scale factor, or the first bad
    /// row (lowest view row, so the message does not depend on thread timing).
    fn validate(&mut self) -> Result<()> {
        let n = self.n();
        // Read ahead while the pass streams through the file, then back to normal: the
        // ranking sweeps the whole gallery once per query block, and sequential advice
        // would let the kernel drop pages just behind the sweep.
        let _ = self.map.advise(Advice::Sequential);
        let mut scales = vec![0f32; n];
        let this = &*self;
        let bad = scales
            .par_iter_mut()
            .enumerate()
            .filter_map(|(i, scale)| match row_scale(this.raw_row(i)) {
                Ok((_, s)) => {
                    *scale = s;
                    None
                }
                Err(problem) => Some((i, problem)),
            })
            .min_by_key(|(i, _)| *i);
        let _ = self.map.advise(Advice::Normal);
        if let Some((i, problem)) = bad {
            return Err(Error::input(self.source_path(), describe(&self.name, self.file_row(i), problem)));
        }
        self.scales = scales;
        Ok(())
    }

    /// The view's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Where the view came from.
    pub fn source(&self) -> &ViewSource {
        &self.source
    }

    /// The mapped file.
    pub fn source_path(&self) -> &Path {
        &self.source.path
    }

    /// Rows of the view (the rows kept, not the file's).
    pub fn n(&self) -> usize {
        self.rows.as_ref().map_or(self.file_rows, Vec::len)
    }

    /// Embedding dimension.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Rows in the file.
    pub fn file_rows(&self) -> usize {
        self.file_rows
    }

    /// The file row of view row `i`.
    pub fn file_row(&self, i: usize) -> usize {
        self.rows.as_ref().map_or(i, |r| r[i] as usize)
    }

    /// The file's data as stored (file rows x dim, not normalised), in place in the map.
    pub fn raw(&self) -> &[f32] {
        let bytes = &self.map[self.data_offset..self.data_offset + self.file_rows * self.dim * 4];
        // SAFETY: `bytes` lies inside the map (its length was checked against the header
        // when the file was opened) and starts at a page-aligned base plus a multiple of 4,
        // so it is aligned for f32; any 4 bytes are a valid f32 (checked little-endian, the
        // machine's order); the slice borrows `self`, which owns the map.
        unsafe { std::slice::from_raw_parts(bytes.as_ptr().cast::<f32>(), self.file_rows * self.dim) }
    }

    /// View row `i` as stored (not normalised).
    pub fn raw_row(&self, i: usize) -> &[f32] {
        let r = self.file_row(i);
        &self.raw()[r * self.dim..(r + 1) * self.dim]
    }

    /// The file row of each view row, when the view keeps only some rows.
    pub fn row_list(&self) -> Option<&[u32]> {
        self.rows.as_deref()
    }

    /// Per view row, the factor that normalises it.
    pub fn scales(&self) -> &[f32] {
        &self.scales
    }

    /// View rows `range`, normalised, row-major: bitwise the rows [`super::View`] holds.
    pub fn normalised_rows(&self, range: Range<usize>) -> Vec<f32> {
        let mut out = vec![0f32; range.len() * self.dim];
        for (i, row) in range.zip(out.chunks_mut(self.dim)) {
            crate::engine::rows::scale_into(row, self.raw_row(i), self.scales[i]);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cohort::View;

    fn write_npy(dir: &Path, name: &str, rows: usize, cols: usize, data: &[f32]) -> std::path::PathBuf {
        let path = dir.join(format!("{name}.npy"));
        npy::write(&path, rows, cols, data).unwrap();
        path
    }

    fn mapped(path: &Path, rows: Option<&[usize]>) -> MappedView {
        match MappedView::open("image", path, rows).unwrap() {
            MapAttempt::Mapped(m) => m,
            MapAttempt::Unmappable { reason } => panic!("not mapped: {reason}"),
        }
    }

    #[test]
    fn normalised_rows_are_bitwise_the_loaded_views() {
        use rand::Rng;
        let dir = tempfile::tempdir().unwrap();
        let (n, dim) = (57, 13);
        let mut r = crate::rng::stream(3, "mapped-test", 0);
        let data: Vec<f32> =
            (0..n * dim).map(|_| r.random_range(-5.0f32..5.0) * 1e-3f32.powi(r.random_range(0..3))).collect();
        let path = write_npy(dir.path(), "image", n, dim, &data);
        let view = View::from_memory("image", n, dim, data.clone()).unwrap();
        let m = mapped(&path, None);
        assert_eq!((m.n(), m.dim(), m.file_rows()), (n, dim, n));
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&m.normalised_rows(0..n)), bits(view.rows()));
        assert_eq!(bits(&m.normalised_rows(10..20)), bits(&view.rows()[10 * dim..20 * dim]));
        // A subset of rows, out of order.
        let keep = [40usize, 3, 17, 56];
        let m = mapped(&path, Some(&keep));
        assert_eq!(m.n(), 4);
        for (i, &k) in keep.iter().enumerate() {
            assert_eq!(bits(&m.normalised_rows(i..i + 1)), bits(view.row(k)));
        }
    }

    #[test]
    fn bad_rows_name_the_file_row_and_column() {
        let dir = tempfile::tempdir().unwrap();
        let (n, dim) = (100, 4);
        let mut data = vec![1.0f32; n * dim];
        data[71 * dim + 2] = f32::INFINITY;
        data[90 * dim..91 * dim].fill(0.0);
        let path = write_npy(dir.path(), "image", n, dim, &data);
        let err = MappedView::open("image", &path, None).unwrap_err().to_string();
        assert!(
            err.contains("image.npy")
                && err.contains("row 71")
                && err.contains("column 2")
                && err.contains("not finite"),
            "{err}"
        );
        // Only the rows kept are validated; rows are named by their row in the file.
        let err = MappedView::open("image", &path, Some(&[5, 90, 6])).unwrap_err().to_string();
        assert!(err.contains("image.npy") && err.contains("row 90") && err.contains("all-zero"), "{err}");
        assert!(matches!(MappedView::open("image", &path, Some(&[5, 6])).unwrap(), MapAttempt::Mapped(_)));
        let err = MappedView::open("image", &path, Some(&[100])).unwrap_err().to_string();
        assert!(err.contains("row 100") && err.contains("holds 100 rows"), "{err}");
        // Truncated files are refused before mapping.
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..bytes.len() - 4]).unwrap();
        let err = MappedView::open("image", &path, None).unwrap_err().to_string();
        assert!(err.contains("truncated"), "{err}");
    }

    /// A version-1 `.npy` header of `header_text` (padded to `total` bytes with spaces).
    fn npy_bytes(descr: &str, rows: usize, cols: usize, total: usize, payload: &[u8]) -> Vec<u8> {
        let mut text = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': ({rows}, {cols}), }}");
        while 10 + text.len() + 1 < total {
            text.push(' ');
        }
        text.push('\n');
        let mut out = b"\x93NUMPY\x01\x00".to_vec();
        out.extend_from_slice(&(text.len() as u16).to_le_bytes());
        out.extend_from_slice(text.as_bytes());
        out.extend_from_slice(payload);
        out
    }

    #[test]
    fn files_that_need_conversion_are_not_mapped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v.npy");
        let le: Vec<u8> = [1.0f32, 2.0, 3.0, 4.0].iter().flat_map(|v| v.to_le_bytes()).collect();
        let be: Vec<u8> = [1.0f32, 2.0, 3.0, 4.0].iter().flat_map(|v| v.to_be_bytes()).collect();
        let half: Vec<u8> =
            [1.0f32, 2.0, 3.0, 4.0].iter().flat_map(|&v| half::f16::from_f32(v).to_le_bytes()).collect();
        let cases = [
            (npy_bytes("<f4", 2, 2, 128, &le), None),
            (npy_bytes(">f4", 2, 2, 128, &be), Some("byte order")),
            (npy_bytes("<f2", 2, 2, 128, &half), Some("float16")),
            (npy_bytes("<f4", 2, 2, 130, &le), Some("not a multiple of 4")),
        ];
        for (bytes, why) in cases {
            std::fs::write(&path, &bytes).unwrap();
            match (MappedView::open("v", &path, None).unwrap(), why) {
                (MapAttempt::Mapped(m), None) => assert_eq!(m.raw(), &[1.0, 2.0, 3.0, 4.0]),
                (MapAttempt::Unmappable { reason }, Some(why)) => assert!(reason.contains(why), "{reason}"),
                (got, why) => panic!("{got:?} for {why:?}"),
            }
        }
    }
}
