//! The blocked similarity kernel: a block of queries times the gallery's representatives,
//! computed chunk by chunk with faer's GEMM into one block buffer (block_rows x n_unique).
//!
//! Memory is O(block_rows x n_unique); no n x n matrix ever exists. Chunks run in parallel
//! on rayon (each chunk a sequential GEMM), so the buffer is shared, not one per thread.
//! A gallery of stored rows with scale factors ([`Gallery::scaled`], a memory-mapped view)
//! is scaled chunk by chunk into a per-thread buffer (chunk_cols x dim values, 4 MB at the
//! default 2016 x 512) just before the chunk's GEMM: n x dim multiplications per block
//! against block_rows x n x dim multiply-adds of the GEMM.
//!
//! Bitwise stability: faer 0.24's GEMM gives every element the same bits whatever the
//! block's shape or the element's position, *except* in its matrix-vector paths (a block
//! of one row or a chunk of one column). The kernel never calls those: a one-row block is
//! padded to two rows and the chunk grid never ends in a one-column chunk. So a query's
//! scores do not depend on which block, shard or thread computed them, and sharded runs
//! merge exactly (tested in `rank`'s tests).

use faer::linalg::matmul::matmul;
use faer::{Accum, MatMut, MatRef, Par};
use rayon::prelude::*;

use super::gallery::{Gallery, RepRows};
use super::rows::{scale_into, Rows};
use crate::error::{Error, Result};

/// Sizes of the kernel's work units. The defaults were chosen by measurement
/// (docs/PERFORMANCE.md, "Ranking engine").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockSizes {
    /// Queries per block; 0 picks `min(1056, memory_budget_bytes / (4 n_unique))`, rounded
    /// down to a multiple of 96.
    pub block_rows: usize,
    /// Gallery representatives per GEMM chunk; 0 picks 2016.
    pub chunk_cols: usize,
    /// Upper bound on the block's score buffer in bytes when `block_rows` is 0.
    pub memory_budget_bytes: usize,
}

impl Default for BlockSizes {
    fn default() -> Self {
        BlockSizes { block_rows: 0, chunk_cols: 0, memory_budget_bytes: 256 << 20 }
    }
}

/// Largest automatic block; more rows do not make the GEMM faster.
const MAX_AUTO_BLOCK_ROWS: usize = 1056;
/// Automatic blocks are a multiple of this many rows, so no GEMM tile runs short.
const BLOCK_ROW_MULTIPLE: usize = 96;
/// Default chunk width (columns of the block buffer per GEMM call): a multiple of 96, the
/// width of faer's AVX-512 f32 microkernel along our gallery axis (faer computes the
/// row-major product as its transpose), so no tile runs short.
const DEFAULT_CHUNK_COLS: usize = 2016;

impl BlockSizes {
    /// Check the sizes (a chunk or block of one is allowed; the kernel pads).
    pub fn validate(&self) -> Result<()> {
        if self.block_rows == 0 && self.memory_budget_bytes == 0 {
            return Err(Error::config("memory budget for the similarity block must be positive"));
        }
        Ok(())
    }

    pub(crate) fn resolve(&self, n_unique: usize) -> (usize, usize) {
        let rows = if self.block_rows > 0 {
            self.block_rows
        } else {
            let rows = (self.memory_budget_bytes / (4 * n_unique.max(1))).clamp(2, MAX_AUTO_BLOCK_ROWS);
            if rows >= BLOCK_ROW_MULTIPLE {
                rows / BLOCK_ROW_MULTIPLE * BLOCK_ROW_MULTIPLE
            } else {
                rows
            }
        };
        let cols = if self.chunk_cols > 0 { self.chunk_cols } else { DEFAULT_CHUNK_COLS };
        (rows, cols)
    }
}

/// Progress reporting for long passes: called with the number of queries just finished.
/// The library never prints; the CLI implements this with a progress bar.
pub trait Progress: Sync {
    /// A pass over `total` queries, described by `what`, begins.
    fn begin(&self, _total: u64, _what: &str) {}
    /// `queries` more queries are done.
    fn advance(&self, queries: u64);
    /// Whether the caller asked to stop (e.g. Ctrl-C in the Python bindings). Ranking passes
    /// ask after each block and then return [`Error::Cancelled`]; the default never cancels.
    fn cancelled(&self) -> bool {
        false
    }
}

/// [`Error::Cancelled`] when `progress` asks to stop: the one check every ranking pass makes
/// after each block.
pub(crate) fn check_cancelled(progress: &dyn Progress) -> Result<()> {
    if progress.cancelled() {
        return Err(Error::Cancelled);
    }
    Ok(())
}

/// A [`Progress`] that ignores everything.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoProgress;

impl Progress for NoProgress {
    fn advance(&self, _queries: u64) {}
}

/// The column ranges of the chunk grid over `n_unique` representatives. The last chunk is
/// never one column wide unless the whole gallery is.
pub(crate) fn chunk_grid(n_unique: usize, chunk_cols: usize) -> Vec<(usize, usize)> {
    let width = chunk_cols.max(2);
    let mut chunks: Vec<(usize, usize)> =
        (0..n_unique).step_by(width).map(|c0| (c0, (c0 + width).min(n_unique))).collect();
    if chunks.len() > 1 && chunks.last().is_some_and(|(a, b)| b - a == 1) {
        chunks.pop();
        if let Some(last) = chunks.last_mut() {
            last.1 = n_unique;
        }
    }
    chunks
}

/// Where each score lives in a block buffer. The buffer is chunk-major: chunk
/// `[c0, c1)` occupies `rows x (c1 - c0)` contiguous values starting at `c0 x rows`, row by
/// row, so a chunk's GEMM output and its reduction stream through contiguous memory.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Layout<'c> {
    /// Queries in the block.
    pub(crate) rows: usize,
    /// Nominal chunk width (the last chunk may be one wider).
    pub(crate) width: usize,
    /// The chunk grid.
    pub(crate) chunks: &'c [(usize, usize)],
}

impl Layout<'_> {
    /// Index of the chunk holding representative `u`.
    #[inline]
    pub(crate) fn chunk_of(&self, u: usize) -> usize {
        (u / self.width).min(self.chunks.len() - 1)
    }

    /// Buffer index of row `r`, representative `u`.
    #[inline]
    pub(crate) fn index(&self, r: usize, u: usize) -> usize {
        let (c0, c1) = self.chunks[self.chunk_of(u)];
        c0 * self.rows + r * (c1 - c0) + (u - c0)
    }

    /// Buffer range of row `r` within chunk `[c0, c1)`.
    #[inline]
    pub(crate) fn segment(&self, r: usize, c0: usize, c1: usize) -> std::ops::Range<usize> {
        let start = c0 * self.rows + r * (c1 - c0);
        start..start + (c1 - c0)
    }
}

/// A raw pointer to the block buffer that chunk tasks share; each task touches only its
/// own chunk's region.
#[derive(Clone, Copy)]
pub(crate) struct BufferPtr {
    ptr: *mut f32,
    len: usize,
}

// SAFETY: tasks sharing a BufferPtr access disjoint chunk regions (see `compute_chunk`).
unsafe impl Send for BufferPtr {}
unsafe impl Sync for BufferPtr {}

impl BufferPtr {
    pub(crate) fn new(buffer: &mut [f32]) -> Self {
        BufferPtr { ptr: buffer.as_mut_ptr(), len: buffer.len() }
    }

    /// The values in `range`, mutable.
    ///
    /// # Safety
    /// No other live reference may overlap `range`.
    pub(crate) unsafe fn slice_mut<'b>(&self, range: std::ops::Range<usize>) -> &'b mut [f32] {
        assert!(range.start <= range.end && range.end <= self.len);
        // SAFETY: in bounds (asserted); exclusivity is the caller's promise.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.add(range.start), range.len()) }
    }
}

/// Score block rows `queries` against representatives `c0..c1` into that chunk's region of
/// the buffer (cosine by GEMM, then the representatives' offsets added).
///
/// # Safety
/// No other task may access chunk `[c0, c1)`'s region while this runs.
pub(crate) unsafe fn compute_chunk(
    buffer: BufferPtr,
    layout: &Layout<'_>,
    queries: Rows<'_>,
    gallery: &Gallery<'_>,
    c0: usize,
    c1: usize,
    par: Par,
) {
    let dim = gallery.dim();
    let width = c1 - c0;
    let rows = queries.n();
    debug_assert_eq!(rows, layout.rows);
    // SAFETY: the caller owns this chunk's region.
    let region = unsafe { buffer.slice_mut(c0 * rows..(c0 + width) * rows) };
    match gallery.reps() {
        RepRows::Dense(data) => {
            let dst = MatMut::from_row_major_slice_mut(region, rows, width);
            chunk_gemm(dst, queries, &data[c0 * dim..c1 * dim], par);
        }
        RepRows::Scaled { raw, raw_row, scale } => {
            // Scale the chunk's representatives into this thread's buffer, a sub-chunk at a
            // time (small enough to stay in cache between the scaling and the GEMM's
            // packing), then the same GEMM: each value is `stored * scale`, bitwise the
            // in-memory unit row's value, and faer's GEMM gives an element the same bits
            // whatever the matrix widths (no one-column sub-chunk: see `chunk_grid`). The
            // buffer is taken out of the thread-local (not borrowed), so a re-entrant call
            // on this thread (rayon work-stealing inside a parallel GEMM) gets its own.
            let mut scratch = SCRATCH.take();
            let mut dst = MatMut::from_row_major_slice_mut(region, rows, width);
            for (s0, s1) in chunk_grid(width, SCALED_SUB_COLS) {
                scratch.resize((s1 - s0) * dim, 0.0);
                for (k, u) in (c0 + s0..c0 + s1).enumerate() {
                    let r = raw_row[u] as usize;
                    scale_into(&mut scratch[k * dim..(k + 1) * dim], &raw[r * dim..(r + 1) * dim], scale[u]);
                }
                chunk_gemm(dst.as_mut().subcols_mut(s0, s1 - s0), queries, &scratch, par);
            }
            SCRATCH.set(scratch);
        }
    }
    if let Some(offsets) = gallery.unique_offsets() {
        for row in region.chunks_mut(width) {
            super::count::add_offsets(row, &offsets[c0..c1]);
        }
    }
}

thread_local! {
    /// Per-thread buffer of one chunk of scaled representatives (chunk width x dim values)
    /// for galleries built by [`Gallery::scaled`].
    static SCRATCH: std::cell::Cell<Vec<f32>> = const { std::cell::Cell::new(Vec::new()) };
}

/// Representatives scaled per GEMM call for a scaled gallery: 96 x 512 values are 192 KiB,
/// which stay in L2 between the scaling and the GEMM's packing. Measured (PERFORMANCE.md,
/// "Scale-out"): the whole chunk at once (2016 columns, 4 MB) cost 29-34% more CPU than
/// the in-memory gallery, 384 columns 34%, 192 13%, 96 3-11%, 48 15% (GEMM calls too small).
const SCALED_SUB_COLS: usize = 96;

/// `dst` (queries x width) = queries times `reps` (width x dim, row-major) transposed.
fn chunk_gemm(dst: MatMut<'_, f32>, queries: Rows<'_>, reps: &[f32], par: Par) {
    let dim = queries.dim();
    let rows = queries.n();
    let width = dst.ncols();
    let rhs = MatRef::from_row_major_slice(reps, width, dim);
    if rows == 1 {
        // Pad to two rows so the GEMM never takes its matrix-vector path.
        let mut lhs = Vec::with_capacity(2 * dim);
        lhs.extend_from_slice(queries.row(0));
        lhs.extend_from_slice(queries.row(0));
        let mut out = vec![0f32; 2 * width];
        let padded = MatMut::from_row_major_slice_mut(&mut out, 2, width);
        matmul(padded, Accum::Replace, MatRef::from_row_major_slice(&lhs, 2, dim), rhs.transpose(), 1.0, par);
        let mut dst = dst;
        for (j, &v) in out[..width].iter().enumerate() {
            dst[(0, j)] = v;
        }
    } else {
        let lhs = MatRef::from_row_major_slice(queries.data(), rows, dim);
        matmul(dst, Accum::Replace, lhs, rhs.transpose(), 1.0, par);
    }
}

/// Compute the listed chunks of a block in parallel. With fewer chunks than threads, each
/// GEMM is itself parallel so no core idles.
pub(crate) fn compute_chunks(
    buffer: &mut [f32],
    layout: &Layout<'_>,
    queries: Rows<'_>,
    gallery: &Gallery<'_>,
    chunks: &[(usize, usize)],
) {
    let ptr = BufferPtr::new(buffer);
    let threads = rayon::current_num_threads();
    if chunks.len() < threads {
        for &(c0, c1) in chunks {
            // SAFETY: one chunk at a time.
            unsafe { compute_chunk(ptr, layout, queries, gallery, c0, c1, Par::rayon(0)) };
        }
    } else {
        chunks.par_iter().for_each(|&(c0, c1)| {
            // SAFETY: chunk regions are disjoint.
            unsafe { compute_chunk(ptr, layout, queries, gallery, c0, c1, Par::Seq) };
        });
    }
}

/// One query's scores against the gallery, as the kernel computed them: cosine similarity
/// plus the gallery item's offset.
#[derive(Debug, Clone, Copy)]
pub struct ScoreRow<'a> {
    block: &'a [f32],
    layout: Layout<'a>,
    r: usize,
    gallery: &'a Gallery<'a>,
}

impl<'a> ScoreRow<'a> {
    pub(crate) fn new(block: &'a [f32], layout: Layout<'a>, r: usize, gallery: &'a Gallery<'a>) -> Self {
        ScoreRow { block, layout, r, gallery }
    }

    /// Score of gallery item `g`.
    #[inline]
    pub fn score(&self, g: usize) -> f32 {
        self.unique_score(self.gallery.unique_of(g))
    }

    /// Score of representative `u` (see [`Gallery::members`]).
    #[inline]
    pub fn unique_score(&self, u: usize) -> f32 {
        self.block[self.layout.index(self.r, u)]
    }

    /// The row in contiguous pieces: `(first representative, scores)` per chunk, in order.
    pub fn segments(&self) -> impl Iterator<Item = (usize, &'a [f32])> + 'a {
        let (block, layout, r) = (self.block, self.layout, self.r);
        layout.chunks.iter().map(move |&(c0, c1)| (c0, &block[layout.segment(r, c0, c1)]))
    }

    /// Copy the scores of all representatives, in order, into `out` (cleared first): for
    /// reducers that look up many scores, a contiguous copy beats per-lookup indexing.
    pub fn copy_unique_scores(&self, out: &mut Vec<f32>) {
        out.clear();
        for (_, segment) in self.segments() {
            out.extend_from_slice(segment);
        }
    }

    /// The gallery these scores refer to.
    pub fn gallery(&self) -> &'a Gallery<'a> {
        self.gallery
    }
}

/// A block of queries with their scores against the whole gallery.
#[derive(Debug, Clone, Copy)]
pub struct ScoreBlock<'a> {
    /// Index of the block's first query (in the query matrix passed to the kernel).
    pub query_start: usize,
    scores: &'a [f32],
    layout: Layout<'a>,
    gallery: &'a Gallery<'a>,
}

impl<'a> ScoreBlock<'a> {
    /// Number of queries in the block.
    pub fn len(&self) -> usize {
        self.layout.rows
    }

    /// Whether the block holds no queries (never, for blocks the kernel hands out).
    pub fn is_empty(&self) -> bool {
        self.layout.rows == 0
    }

    /// Scores of the block's `i`-th query (query index `query_start + i`).
    pub fn row(&self, i: usize) -> ScoreRow<'a> {
        ScoreRow::new(self.scores, self.layout, i, self.gallery)
    }
}

/// The block-visitor core: score `queries[range]` against `gallery` block by block and hand
/// each block to `visit` (blocks in order; `visit` may parallelise inside). For statistics
/// the ranking reducers do not cover, e.g. CSLS's mean top-k similarity per gallery item.
pub fn for_each_block(
    queries: Rows<'_>,
    gallery: &Gallery<'_>,
    range: std::ops::Range<usize>,
    sizes: &BlockSizes,
    progress: &dyn Progress,
    mut visit: impl FnMut(&ScoreBlock<'_>) -> Result<()>,
) -> Result<()> {
    check_shapes(queries, gallery, &range)?;
    sizes.validate()?;
    let n_unique = gallery.n_unique();
    let (block_rows, chunk_cols) = sizes.resolve(n_unique);
    let chunks = chunk_grid(n_unique, chunk_cols);
    let width = chunk_cols.max(2);
    let mut buffer = vec![0f32; block_rows.min(range.len()) * n_unique];
    let mut b0 = range.start;
    while b0 < range.end {
        let b1 = (b0 + block_rows).min(range.end);
        let rows = b1 - b0;
        let layout = Layout { rows, width, chunks: &chunks };
        let block = &mut buffer[..rows * n_unique];
        compute_chunks(block, &layout, queries.slice(b0, b1), gallery, &chunks);
        visit(&ScoreBlock { query_start: b0, scores: block, layout, gallery })?;
        progress.advance(rows as u64);
        check_cancelled(progress)?;
        b0 = b1;
    }
    Ok(())
}

pub(crate) fn check_shapes(
    queries: Rows<'_>,
    gallery: &Gallery<'_>,
    range: &std::ops::Range<usize>,
) -> Result<()> {
    if queries.dim() != gallery.dim() {
        return Err(Error::config(format!(
            "queries have {} dimensions but the gallery has {}; both views must come from the same embedding space",
            queries.dim(),
            gallery.dim()
        )));
    }
    if gallery.is_empty() {
        return Err(Error::config("the gallery is empty"));
    }
    if range.start > range.end || range.end > queries.n() {
        return Err(Error::config(format!(
            "query range {}..{} is outside the {} queries",
            range.start,
            range.end,
            queries.n()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Asks to stop once `after` queries are done.
    struct StopAfter {
        after: u64,
        done: std::sync::atomic::AtomicU64,
    }

    impl Progress for StopAfter {
        fn advance(&self, queries: u64) {
            self.done.fetch_add(queries, std::sync::atomic::Ordering::Relaxed);
        }
        fn cancelled(&self) -> bool {
            self.done.load(std::sync::atomic::Ordering::Relaxed) >= self.after
        }
    }

    #[test]
    fn a_cancelled_pass_stops_after_the_block() {
        let data: Vec<f32> = (0..40 * 4).map(|i| ((i * 7919) % 13) as f32 - 6.0).collect();
        let rows = Rows::new(&data, 40, 4).unwrap();
        let gallery = Gallery::new(rows);
        let sizes = BlockSizes { block_rows: 8, chunk_cols: 16, memory_budget_bytes: 0 };
        let stop = StopAfter { after: 10, done: Default::default() };
        let mut visited = Vec::new();
        let result = for_each_block(rows, &gallery, 0..40, &sizes, &stop, |b| {
            visited.push(b.query_start);
            Ok(())
        });
        assert!(matches!(result, Err(Error::Cancelled)), "{result:?}");
        assert_eq!(visited, vec![0, 8], "stops after the block in which it was asked to");
        let all = for_each_block(rows, &gallery, 0..40, &sizes, &NoProgress, |_| Ok(()));
        assert!(all.is_ok());
    }

    #[test]
    fn chunk_grid_covers_without_one_column_tail() {
        for n in 1..40 {
            for w in 1..12 {
                let g = chunk_grid(n, w);
                assert_eq!(g[0].0, 0);
                assert_eq!(g.last().unwrap().1, n);
                for pair in g.windows(2) {
                    assert_eq!(pair[0].1, pair[1].0);
                }
                if n > 1 {
                    assert!(g.iter().all(|(a, b)| b - a >= 2), "n={n} w={w} {g:?}");
                }
            }
        }
    }
}
