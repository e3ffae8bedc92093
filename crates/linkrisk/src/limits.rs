//! Upper bounds of the count parameters (flags and audit-config keys). A count beyond them
//! cannot describe a real audit and would only exhaust memory (`--trials 4294967295` asked
//! for 34 GB per query block) or overflow a capacity; the CLI states each range in `--help`
//! and rejects values outside it (exit 2), the library's `validate` rejects them too.

use crate::error::{Error, Result};

/// Most random pools per query and pool size (`--trials`).
pub const MAX_TRIALS: usize = 10_000;
/// Most patient-bootstrap replicates (`--bootstrap`).
pub const MAX_BOOTSTRAP: usize = 100_000;
/// Most neighbours of CSLS's local scaling (`--csls-k`).
pub const MAX_CSLS_K: usize = 10_000;
/// Most different-patient pairs per query for the verification AUROC (`--negatives-per-query`).
pub const MAX_NEGATIVES_PER_QUERY: usize = 10_000;

/// `value` of `flag` must lie in `lo..=hi`.
pub fn check(flag: &str, value: usize, lo: usize, hi: usize) -> Result<()> {
    if (lo..=hi).contains(&value) {
        return Ok(());
    }
    Err(Error::config(format!("{flag} {value}: must be between {lo} and {hi}")))
}
