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

/// Run `write` against a temporary sibling of `path`, then rename it into place. A
/// directory at `path`, or a missing parent directory, is refused before anything is
/// written; errors name `path`, never the temporary file.
pub fn atomic(path: &Path, write: impl FnOnce(&Path) -> Result<()>) -> Result<()> {
    check_output_path(path)?;
    if crate::cleanup::is_input(path) {
        return Err(Error::input(
            path,
            "is an input of this command; writing the output there would destroy it: name another file",
        ));
    }
    atomic_replace(path, write)
}

/// [`atomic`] without the input check: for files a command reads and then updates itself
/// (`run.json`).
pub(crate) fn atomic_replace(path: &Path, write: impl FnOnce(&Path) -> Result<()>) -> Result<()> {
    check_output_path(path)?;
    let file_name = path.file_name().and_then(|s| s.to_str()).unwrap_or("out");
    let tmp = path.with_file_name(format!(".{file_name}.tmp-{}", std::process::id()));
    let _cleanup = crate::cleanup::remove_on_signal(&tmp);
    match write(&tmp) {
        Ok(()) => std::fs::rename(&tmp, path).map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            Error::write(path, e)
        }),
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            Err(match e {
                Error::Write { path: p, source } if p == tmp => Error::write(path, source),
                other => other,
            })
        }
    }
}

/// Refuse an output `path` that is a directory or whose directory does not exist.
pub fn check_output_path(path: &Path) -> Result<()> {
    if path.is_dir() {
        return Err(Error::input(path, "is a directory; name a file to write the output to"));
    }
    let parent = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    if !parent.is_dir() {
        return Err(Error::input(
            path,
            format!("cannot write here: the directory {} does not exist; create it first", parent.display()),
        ));
    }
    Ok(())
}

/// Write bytes atomically (temp file + rename).
pub fn atomic_bytes(path: &Path, bytes: &[u8]) -> Result<()> {
    atomic(path, |tmp| std::fs::write(tmp, bytes).map_err(|e| Error::write(tmp, e)))
}

/// Build the directory `out` beside it and rename it into place, so a reader (or a killed
/// writer) sees either the old directory or the new one, never a mix: `fill` writes into a
/// hidden sibling `.NAME.tmp-PID`, which then replaces `out` (an existing `out` is moved aside
/// and removed after). An existing `out` must be empty or a cohort directory (it holds a
/// metadata table); anything else is refused, so a mistyped `--out` never deletes unrelated
/// files.
pub fn atomic_dir<T>(out: &Path, fill: impl FnOnce(&Path) -> Result<T>) -> Result<T> {
    let name = out
        .file_name()
        .and_then(|s| s.to_str())
        .ok_or_else(|| Error::input(out, "not a usable output directory name"))?;
    let parent = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => std::path::PathBuf::from("."),
    };
    if out.exists() {
        if !out.is_dir() {
            return Err(Error::input(
                out,
                "exists and is not a directory; name a new directory for the cohort",
            ));
        }
        let empty = std::fs::read_dir(out).map_err(|e| Error::io(out, e))?.next().is_none();
        let cohort = super::METADATA_FILES.iter().any(|f| out.join(f).is_file());
        if !empty && !cohort {
            return Err(Error::input(
                out,
                "exists and is neither empty nor a cohort directory (no metadata.csv or metadata.parquet); \
                 name a new directory, or remove this one first",
            ));
        }
    }
    std::fs::create_dir_all(&parent).map_err(|e| Error::write(&parent, e))?;
    let tmp = parent.join(format!(".{name}.tmp-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    let _registered = crate::cleanup::remove_on_signal(&tmp);
    std::fs::create_dir(&tmp).map_err(|e| Error::write(&tmp, e))?;
    let value = match fill(&tmp) {
        Ok(value) => value,
        Err(e) => {
            let _ = std::fs::remove_dir_all(&tmp);
            return Err(e);
        }
    };
    let old = parent.join(format!(".{name}.old-{}", std::process::id()));
    crate::cleanup::critical(|| {
        if out.exists() {
            std::fs::rename(out, &old).map_err(|e| Error::write(out, e))?;
            if let Err(e) = std::fs::rename(&tmp, out) {
                let _ = std::fs::rename(&old, out);
                return Err(Error::write(out, e));
            }
        } else {
            std::fs::rename(&tmp, out).map_err(|e| Error::write(out, e))?;
        }
        Ok(())
    })
    .inspect_err(|_| {
        let _ = std::fs::remove_dir_all(&tmp);
    })?;
    let _ = std::fs::remove_dir_all(&old);
    Ok(value)
}
