//! Writing cohorts: `metadata.csv` plus one `.npy` per view, each written to a temporary
//! name and renamed, so an interrupted write never leaves a file that looks complete.

use std::path::Path;

use super::metadata::Metadata;
use super::npy;
use crate::error::{Error, Result};

/// Write `dir/metadata.csv` and `dir/<name>.npy` for each `(name, dim, rows)` (n x dim).
/// Rows are written as given (callers pass raw, not necessarily normalised, values).
pub fn write_cohort(dir: &Path, metadata: &Metadata, views: &[(&str, usize, &[f32])]) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| Error::write(dir, e))?;
    atomic(&dir.join("metadata.csv"), |tmp| metadata.write_csv(tmp))?;
    for &(name, dim, data) in views {
        let n = metadata.len();
        if data.len() != n * dim {
            return Err(Error::config(format!(
                "view `{name}` has {} values, expected {n} records x {dim}",
                data.len()
            )));
        }
        atomic(&dir.join(format!("{name}.npy")), |tmp| npy::write(tmp, n, dim, data))?;
    }
    Ok(())
}

/// Run `write` against a temporary sibling of `path`, then rename it into place.
pub fn atomic(path: &Path, write: impl FnOnce(&Path) -> Result<()>) -> Result<()> {
    let file_name = path.file_name().and_then(|s| s.to_str()).unwrap_or("out");
    let tmp = path.with_file_name(format!(".{file_name}.tmp-{}", std::process::id()));
    match write(&tmp) {
        Ok(()) => std::fs::rename(&tmp, path).map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            Error::write(path, e)
        }),
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            Err(e)
        }
    }
}

/// Write bytes atomically (temp file + rename).
pub fn atomic_bytes(path: &Path, bytes: &[u8]) -> Result<()> {
    atomic(path, |tmp| std::fs::write(tmp, bytes).map_err(|e| Error::write(tmp, e)))
}
