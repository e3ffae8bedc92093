//! The ranking engine: blocked cosine similarity on faer's GEMM, reduced block by block to
//! per-query (greater, tied) counts and a running top-k. Memory is O(block x n), never an
//! n x n matrix. Every audit ranks through here; nothing else computes similarities.
//!
//! The pieces, bottom up:
//! - [`Rows`]: borrowed row-major input matrices; [`ScaledRows`]: stored rows with a
//!   normalising factor each (a memory-mapped view); [`Gallery`]: the gallery with exact
//!   duplicate rows merged (they tie by construction) and optional additive score offsets
//!   (CSLS, inverted softmax), over either.
//! - [`Targets`]: per query, its positives (the anchor first) and exclusions.
//! - [`for_each_block`]: the block-visitor core (a block of queries and its scores).
//! - [`rank()`] / [`rank_with`]: full-gallery ranks of every positive, a top-k, and an
//!   optional per-query [`QueryReducer`] over the score row (how [`pools`] are evaluated);
//!   [`rank_with_columns`] also runs a [`ColumnReducer`] over the gallery side of the same
//!   scores (per-item neighbourhood statistics without a pass of their own).
//!
//! Ranking semantics (DESIGN.md): for a positive with `greater` negatives strictly above
//! and `tied` negatives at exactly its score, ties are broken uniformly at random in
//! expectation; `crate::metrics::retrieval` turns counts into probabilities. A query range
//! is a shard: results of disjoint ranges concatenate to the result of their union, bit for
//! bit, because every score's bits are independent of the block that computed them.

pub(crate) mod count;
pub mod gallery;
pub mod kernel;
pub mod pools;
pub mod rank;
pub mod rows;
pub(crate) mod simd;
pub mod targets;
mod topk;

pub use gallery::Gallery;
pub use kernel::{for_each_block, BlockSizes, NoProgress, Progress, ScoreBlock, ScoreRow};
pub use rank::{
    rank, rank_with, rank_with_columns, ColumnReducer, ColumnStates, FirstPositive, PositiveRank,
    QueryRanking, QueryReducer, RankOptions,
};
pub use rows::{gather, Rows, ScaledRows};
pub use targets::{Targets, TargetsBuilder};
pub use topk::Neighbor;

#[cfg(test)]
mod tests;
