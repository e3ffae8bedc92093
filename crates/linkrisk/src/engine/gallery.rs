//! The gallery side of a ranking, prepared once: exact duplicate rows merged into one
//! representative, and optional per-item additive score offsets.
//!
//! Exact duplicates must tie by construction (DESIGN.md, "Ranking semantics"): two
//! bitwise-identical gallery rows that went through the GEMM separately could in principle
//! receive different rounding. Rows are therefore hashed bitwise, identical rows (with
//! identical offsets) share one representative, the kernel computes each representative's
//! similarity once, and every member inherits that one value. Counts weight each
//! representative by its multiplicity.
//!
//! The rows are either normalised rows in memory ([`Gallery::new`]) or stored rows with a
//! scale factor each ([`Gallery::scaled`], a memory-mapped view): then duplicates are
//! decided on the scaled values, computed on the fly, and the kernel scales each chunk of
//! representatives just before its GEMM. Both give the same representatives and bitwise
//! the same scores for the same unit rows.

use std::borrow::Cow;
use std::collections::HashMap;

use rayon::prelude::*;

use super::rows::{Rows, ScaledRows};
use crate::error::{Error, Result};

/// Where the representatives' rows come from.
#[derive(Debug, Clone)]
pub(crate) enum RepRows<'a> {
    /// Unit rows in memory (n_unique x dim); borrowed when the gallery has no duplicates.
    Dense(Cow<'a, [f32]>),
    /// Stored rows scaled on the fly: representative `u` is `raw` row `raw_row[u]` times
    /// `scale[u]`.
    Scaled {
        /// The stored matrix (e.g. a memory-mapped file's data).
        raw: &'a [f32],
        /// Row of `raw` of each representative.
        raw_row: Vec<u32>,
        /// Scale factor of each representative.
        scale: Vec<f32>,
    },
}

/// The gallery's rows while building it: borrowed unit rows or scaled stored rows.
#[derive(Clone, Copy)]
enum Source<'a> {
    Dense(Rows<'a>),
    Scaled(ScaledRows<'a>),
}

impl<'a> Source<'a> {
    fn n(&self) -> usize {
        match self {
            Source::Dense(r) => r.n(),
            Source::Scaled(r) => r.n(),
        }
    }

    fn dim(&self) -> usize {
        match self {
            Source::Dense(r) => r.dim(),
            Source::Scaled(r) => r.dim(),
        }
    }

    /// Row `g`'s unit values: borrowed, or scaled into `buf`.
    fn row<'b>(&self, g: usize, buf: &'b mut Vec<f32>) -> &'b [f32]
    where
        'a: 'b,
    {
        match self {
            Source::Dense(r) => r.row(g),
            Source::Scaled(r) => {
                buf.resize(r.dim(), 0.0);
                r.row_into(g, buf);
                buf
            }
        }
    }
}

/// A gallery ready for ranking. Gallery items keep their indices `0..len()`; internally
/// the kernel works on `n_unique()` representatives.
#[derive(Debug, Clone)]
pub struct Gallery<'a> {
    dim: usize,
    /// Representative rows (n_unique x dim).
    reps: RepRows<'a>,
    n_unique: usize,
    /// Representative of each gallery item.
    unique_of: Vec<u32>,
    /// CSR: gallery items of representative u are `members[member_start[u]..member_start[u+1]]`,
    /// ascending.
    member_start: Vec<u32>,
    members: Vec<u32>,
    /// Additive score offset per representative, if any.
    unique_offsets: Option<Vec<f32>>,
}

impl<'a> Gallery<'a> {
    /// Prepare `rows` for ranking by plain cosine similarity (rows must be unit-norm).
    pub fn new(rows: Rows<'a>) -> Gallery<'a> {
        Self::build(Source::Dense(rows), None)
    }

    /// Prepare stored rows with per-row scale factors (e.g. a memory-mapped view) for
    /// ranking by cosine similarity: the scaled rows must be unit-norm. The rows are never
    /// copied whole; the kernel scales one chunk of representatives at a time into a
    /// per-thread buffer (chunk width x dim values). Scores are bitwise those of
    /// [`Gallery::new`] on the scaled rows.
    pub fn scaled(rows: ScaledRows<'a>) -> Gallery<'a> {
        Self::build(Source::Scaled(rows), None)
    }

    /// Prepare `rows` for ranking by `cosine + offsets[g]` (e.g. the CSLS gallery term or an
    /// inverted-softmax log-normaliser). A per-query offset needs no support: it shifts every
    /// score of that query equally and leaves ranks unchanged.
    pub fn with_offsets(rows: Rows<'a>, offsets: &[f32]) -> Result<Gallery<'a>> {
        if offsets.len() != rows.n() {
            return Err(Error::config(format!(
                "{} score offsets for a gallery of {} items; give one per item",
                offsets.len(),
                rows.n()
            )));
        }
        if let Some(g) = offsets.iter().position(|o| !o.is_finite()) {
            return Err(Error::config(format!(
                "score offset of gallery item {g} is {}, not finite",
                offsets[g]
            )));
        }
        Ok(Self::build(Source::Dense(rows), Some(offsets)))
    }

    fn build(rows: Source<'a>, offsets: Option<&[f32]>) -> Gallery<'a> {
        let (n, dim) = (rows.n(), rows.dim());
        let hashes: Vec<u64> = (0..n)
            .into_par_iter()
            .map_init(Vec::new, |buf, g| row_hash(rows.row(g, buf), offsets.map(|o| o[g])))
            .collect();
        let (mut buf_a, mut buf_b) = (Vec::new(), Vec::new());
        let mut same = |a: usize, b: usize| {
            let offsets_equal = offsets.is_none_or(|o| o[a].to_bits() == o[b].to_bits());
            offsets_equal
                && rows
                    .row(a, &mut buf_a)
                    .iter()
                    .zip(rows.row(b, &mut buf_b))
                    .all(|(x, y)| x.to_bits() == y.to_bits())
        };
        // Representatives in order of first appearance.
        let mut first_of_hash: HashMap<u64, Vec<u32>> = HashMap::with_capacity(n);
        let mut unique_of = Vec::with_capacity(n);
        let mut rep_items: Vec<u32> = Vec::new();
        for g in 0..n {
            let candidates = first_of_hash.entry(hashes[g]).or_default();
            let found = candidates.iter().copied().find(|&u| same(rep_items[u as usize] as usize, g));
            let u = match found {
                Some(u) => u,
                None => {
                    let u = rep_items.len() as u32;
                    rep_items.push(g as u32);
                    candidates.push(u);
                    u
                }
            };
            unique_of.push(u);
        }
        let n_unique = rep_items.len();
        let mut member_start = vec![0u32; n_unique + 1];
        for &u in &unique_of {
            member_start[u as usize + 1] += 1;
        }
        for u in 0..n_unique {
            member_start[u + 1] += member_start[u];
        }
        let mut fill = member_start.clone();
        let mut members = vec![0u32; n];
        for (g, &u) in unique_of.iter().enumerate() {
            members[fill[u as usize] as usize] = g as u32;
            fill[u as usize] += 1;
        }
        let reps = match rows {
            Source::Dense(rows) if n_unique == n => RepRows::Dense(Cow::Borrowed(rows.data())),
            Source::Dense(rows) => {
                let mut data = Vec::with_capacity(n_unique * dim);
                for &g in &rep_items {
                    data.extend_from_slice(rows.row(g as usize));
                }
                RepRows::Dense(Cow::Owned(data))
            }
            Source::Scaled(rows) => RepRows::Scaled {
                raw: rows.raw(),
                raw_row: rep_items.iter().map(|&g| rows.source(g as usize) as u32).collect(),
                scale: rep_items.iter().map(|&g| rows.scale(g as usize)).collect(),
            },
        };
        let unique_offsets = offsets.map(|o| rep_items.iter().map(|&g| o[g as usize]).collect());
        Gallery { dim, reps, n_unique, unique_of, member_start, members, unique_offsets }
    }

    /// Number of gallery items.
    pub fn len(&self) -> usize {
        self.unique_of.len()
    }

    /// Whether the gallery is empty.
    pub fn is_empty(&self) -> bool {
        self.unique_of.is_empty()
    }

    /// Values per row.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Number of distinct (row, offset) representatives.
    pub fn n_unique(&self) -> usize {
        self.n_unique
    }

    /// Number of gallery items that exactly duplicate an earlier item (they tie with it by
    /// construction).
    pub fn n_duplicates(&self) -> usize {
        self.len() - self.n_unique
    }

    /// The representative of gallery item `g`.
    pub fn unique_of(&self, g: usize) -> usize {
        self.unique_of[g] as usize
    }

    /// Gallery items sharing representative `u`, ascending.
    pub fn members(&self, u: usize) -> &[u32] {
        &self.members[self.member_start[u] as usize..self.member_start[u + 1] as usize]
    }

    /// How many gallery items representative `u` stands for.
    pub fn multiplicity(&self, u: usize) -> u32 {
        self.member_start[u + 1] - self.member_start[u]
    }

    /// The representative rows (n_unique x dim), the matrix the kernel multiplies.
    ///
    /// # Panics
    /// On a gallery built by [`Gallery::scaled`], whose unit rows exist only chunk by chunk
    /// inside the kernel; [`Gallery::dense_unique_rows`] asks without panicking.
    #[track_caller]
    pub fn unique_rows(&self) -> Rows<'_> {
        self.dense_unique_rows().expect("unique_rows() of a scaled gallery; use dense_unique_rows()")
    }

    /// The representative rows (n_unique x dim) when they are in memory as unit rows;
    /// `None` for a gallery built by [`Gallery::scaled`].
    pub fn dense_unique_rows(&self) -> Option<Rows<'_>> {
        match &self.reps {
            RepRows::Dense(data) => Some(Rows::trusted(data, self.n_unique, self.dim)),
            RepRows::Scaled { .. } => None,
        }
    }

    /// Whether the rows are stored rows scaled on the fly ([`Gallery::scaled`]).
    pub fn is_scaled(&self) -> bool {
        matches!(self.reps, RepRows::Scaled { .. })
    }

    /// Where the representatives' rows come from (for the kernel).
    pub(crate) fn reps(&self) -> &RepRows<'a> {
        &self.reps
    }

    /// Additive score offsets per representative, if the gallery has any.
    pub fn unique_offsets(&self) -> Option<&[f32]> {
        self.unique_offsets.as_deref()
    }

    /// Multiplicity of every representative, or `None` when all are 1 (no duplicates).
    pub(crate) fn multiplicities(&self) -> Option<Vec<u32>> {
        (self.n_unique != self.len()).then(|| (0..self.n_unique).map(|u| self.multiplicity(u)).collect())
    }
}

/// A 64-bit hash of a row's bits (and its offset's bits); collisions are resolved by a full
/// bitwise comparison, so the hash only has to spread well.
fn row_hash(row: &[f32], offset: Option<f32>) -> u64 {
    const K: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut h: u64 = 0x243F_6A88_85A3_08D3;
    let mut mix = |w: u64| {
        h = (h ^ w).wrapping_mul(K);
        h ^= h >> 29;
    };
    for pair in row.chunks(2) {
        let lo = u64::from(pair[0].to_bits());
        let hi = pair.get(1).map_or(0, |v| u64::from(v.to_bits()));
        mix(lo | (hi << 32));
    }
    if let Some(o) = offset {
        mix(u64::from(o.to_bits()) | (1 << 63));
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicates_share_a_representative() {
        let data = [1.0, 0.0, 0.0, 1.0, 1.0, 0.0, 0.6, 0.8, 0.0, 1.0];
        let rows = Rows::new(&data, 5, 2).unwrap();
        let g = Gallery::new(rows);
        assert_eq!(g.n_unique(), 3);
        assert_eq!(g.n_duplicates(), 2);
        assert_eq!(g.unique_of(0), g.unique_of(2));
        assert_eq!(g.unique_of(1), g.unique_of(4));
        assert_eq!(g.members(g.unique_of(4)), &[1, 4]);
        assert_eq!(g.multiplicity(g.unique_of(3)), 1);
        assert_eq!(g.unique_rows().row(2), &[0.6, 0.8]);
        // Different offsets break the tie: the items are no longer exact duplicates.
        let g = Gallery::with_offsets(rows, &[0.0, 0.0, 0.5, 0.0, 0.0]).unwrap();
        assert_eq!(g.n_unique(), 4);
        assert!(Gallery::with_offsets(rows, &[0.0; 4]).is_err());
        assert!(Gallery::with_offsets(rows, &[0.0, f32::NAN, 0.0, 0.0, 0.0]).is_err());
    }
}
