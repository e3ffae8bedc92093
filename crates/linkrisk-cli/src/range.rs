//! Value parsers for count flags: each flag accepts a stated range (shown in its `--help`)
//! and clap rejects anything outside it with exit 2, before any work or allocation.

use clap::builder::RangedU64ValueParser;

/// A `usize` flag that must lie in `lo..=hi`.
pub fn count(lo: usize, hi: usize) -> RangedU64ValueParser<usize> {
    RangedU64ValueParser::new().range(lo as u64..=hi as u64)
}
