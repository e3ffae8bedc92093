//! What the container formats (`.npz`, safetensors, Parquet) have in common: a file holding
//! several named arrays, some of which become views, and optionally a record-id array that
//! lets the loader prove the rows follow the metadata's order.

use std::path::{Path, PathBuf};

use super::metadata::Metadata;
use super::npy::Array2;
use crate::error::{Error, Result};

/// Names of a member that holds record ids rather than a view (`ids` in an `.npz`, an `ids`
/// tensor in safetensors, the `id` column of a Parquet file other than the metadata).
pub const ID_MEMBERS: [&str; 2] = ["id", "ids"];

/// Whether `name` is reserved for record ids.
pub fn is_id_member(name: &str) -> bool {
    ID_MEMBERS.contains(&name)
}

/// Which members of a container to read as views.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Select {
    /// Every array member (besides record ids); each must be a valid view.
    All,
    /// These members, by name (from `cohort.toml`).
    Named(Vec<String>),
    /// The container's only array member (`cohort.toml` named the file but no member).
    Single,
}

/// One array read from a container.
#[derive(Debug, Clone)]
pub struct Member {
    /// Member name inside the container (npz member stem, tensor name, column name).
    pub name: String,
    /// The values.
    pub array: Array2,
}

/// Record ids found in a container, to be compared with the metadata's `id` column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordIds {
    /// The member that held them.
    pub member: String,
    /// One id per row, as text (integer ids are written in decimal).
    pub ids: Vec<String>,
}

/// Everything read from one container file.
#[derive(Debug, Clone, Default)]
pub struct Contents {
    /// Array members, in the container's order (or the order they were asked for).
    pub arrays: Vec<Member>,
    /// Record ids, when the container carries them.
    pub ids: Option<RecordIds>,
}

/// Resolve `select` against the array members a container has (record-id members already
/// removed); errors name the file and list what exists.
pub fn resolve(path: &Path, select: &Select, available: &[String], kind: &str) -> Result<Vec<String>> {
    match select {
        Select::All => Ok(available.to_vec()),
        Select::Named(names) => {
            for name in names {
                if !available.contains(name) {
                    return Err(Error::input(
                        path,
                        format!(
                            "has no {kind} `{name}` (named in cohort.toml); it has: {}",
                            list_or_none(available)
                        ),
                    ));
                }
            }
            Ok(names.clone())
        }
        Select::Single => match available {
            [one] => Ok(vec![one.clone()]),
            _ => Err(Error::input(
                path,
                format!(
                    "cohort.toml names this file without a {kind}, but it has {} {kind}s ({}); write `file:{kind}`",
                    available.len(),
                    list_or_none(available)
                ),
            )),
        },
    }
}

fn list_or_none(names: &[String]) -> String {
    if names.is_empty() {
        "none".to_string()
    } else {
        names.join(", ")
    }
}

/// The path used in errors about one member: `file.npz:member`.
pub fn member_path(path: &Path, member: &str) -> PathBuf {
    PathBuf::from(format!("{}:{member}", path.display()))
}

/// Check that the ids a container carries are the metadata's ids in the same order.
/// `meta_path` names the metadata file in the message.
pub fn check_ids(path: &Path, ids: &RecordIds, metadata: &Metadata, meta_path: &Path) -> Result<()> {
    let meta_name = meta_path.file_name().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    if ids.ids.len() != metadata.len() {
        return Err(Error::input(
            path,
            format!(
                "record ids `{}` list {} records but {meta_name} has {}; row i of every view must describe row i of {meta_name}",
                ids.member,
                ids.ids.len(),
                metadata.len()
            ),
        ));
    }
    let mismatch = ids.ids.iter().zip(&metadata.ids).position(|(a, b)| !same_id(a, b));
    if let Some(row) = mismatch {
        return Err(Error::input(
            path,
            format!(
                "rows are misaligned: row {row} (0-based) of record ids `{}` is `{}` but row {row} of {meta_name} has id `{}`; \
                 reorder the view (or {meta_name}) so row i of both describes the same record",
                ids.member, ids.ids[row], metadata.ids[row]
            ),
        ));
    }
    Ok(())
}

/// Ids match as text, or as integers when both are integers (`007` and `7`).
fn same_id(a: &str, b: &str) -> bool {
    a == b || matches!((a.trim().parse::<i128>(), b.trim().parse::<i128>()), (Ok(x), Ok(y)) if x == y)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_needs_exactly_one_member() {
        let p = Path::new("v.npz");
        let one = vec!["image".to_string()];
        assert_eq!(resolve(p, &Select::Single, &one, "member").unwrap(), one);
        let two = vec!["image".to_string(), "report".to_string()];
        let err = resolve(p, &Select::Single, &two, "member").unwrap_err().to_string();
        assert!(err.contains("image, report") && err.contains("file:member"), "{err}");
        let err = resolve(p, &Select::Named(vec!["x".into()]), &two, "tensor").unwrap_err().to_string();
        assert!(err.contains("no tensor `x`"), "{err}");
    }

    #[test]
    fn integer_ids_compare_numerically() {
        assert!(same_id("7", "007"));
        assert!(same_id("r1", "r1"));
        assert!(!same_id("r1", "r2"));
    }
}
