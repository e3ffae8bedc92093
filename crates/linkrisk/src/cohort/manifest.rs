//! `cohort.toml`: an optional manifest for cohorts whose files do not follow the default
//! layout. It can name the metadata file, list which files (and which member of a container)
//! are views under which names, rename metadata columns and map split values. Every key is
//! optional; anything it does not say falls back to the default layout (docs/FORMATS.md).
//!
//! ```toml
//! metadata = "labels.parquet"
//! [views]
//! image = "img.safetensors:embeddings"
//! report = "text.npz:report"
//! [columns]
//! id = "dicom_id"
//! patient_id = "subject_id"
//! [splits]
//! test = ["validate", "test"]
//! ```

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::columns::MetadataOptions;
use crate::error::{Error, Result};

/// The manifest's file name inside a cohort directory.
pub const MANIFEST_FILE: &str = "cohort.toml";

/// A file format linkrisk reads, known from the file's extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `.npy`: one array.
    Npy,
    /// `.npz`: a zip of `.npy` members.
    Npz,
    /// `.safetensors`: named tensors.
    Safetensors,
    /// `.parquet`: a table with list columns.
    Parquet,
    /// `.csv`: metadata only.
    Csv,
}

impl Format {
    /// The format of `path` by its extension, if linkrisk reads it.
    pub fn of(path: &Path) -> Option<Format> {
        match path.extension()?.to_str()?.to_ascii_lowercase().as_str() {
            "npy" => Some(Format::Npy),
            "npz" => Some(Format::Npz),
            "safetensors" => Some(Format::Safetensors),
            "parquet" | "pq" => Some(Format::Parquet),
            "csv" => Some(Format::Csv),
            _ => None,
        }
    }
}

/// One `[views]` entry: view `name` is `member` of `file` (or the whole file).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ViewRef {
    /// The view's name in linkrisk (`image`, `report`, ...).
    pub name: String,
    /// The file, resolved against the cohort directory.
    pub file: PathBuf,
    /// Member inside a container (npz member, tensor, Parquet column).
    pub member: Option<String>,
}

/// A parsed, checked `cohort.toml`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Manifest {
    /// Where the manifest was read from.
    pub path: PathBuf,
    /// The metadata file, when the manifest names one.
    pub metadata: Option<PathBuf>,
    /// The views, when the manifest lists them (otherwise views are discovered).
    pub views: Option<Vec<ViewRef>>,
    /// Column renames and split mapping.
    pub options: MetadataOptions,
}

/// Split names: one file value or several.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawManifest {
    metadata: Option<String>,
    views: Option<BTreeMap<String, String>>,
    columns: Option<BTreeMap<String, String>>,
    splits: Option<BTreeMap<String, OneOrMany>>,
}

impl Manifest {
    /// Read `dir/cohort.toml` if it exists.
    pub fn load_if_present(dir: &Path) -> Result<Option<Manifest>> {
        let path = dir.join(MANIFEST_FILE);
        if !path.exists() {
            return Ok(None);
        }
        let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
        Manifest::parse(&text, dir, &path).map(Some)
    }

    /// Parse manifest text; relative paths are resolved against `dir`, `path` names the
    /// manifest in errors.
    pub fn parse(text: &str, dir: &Path, path: &Path) -> Result<Manifest> {
        let raw: RawManifest = toml::from_str(text).map_err(|e| {
            Error::input(
                path,
                format!(
                    "{}; cohort.toml may set `metadata` and the tables [views], [columns], [splits] (docs/FORMATS.md)",
                    e.to_string().trim_end()
                ),
            )
        })?;
        let metadata = match raw.metadata {
            Some(m) => {
                let file = dir.join(&m);
                match Format::of(&file) {
                    Some(Format::Csv | Format::Parquet) => Some(file),
                    _ => {
                        return Err(Error::input(
                            path,
                            format!("metadata = \"{m}\": the metadata must be a .csv or .parquet file"),
                        ))
                    }
                }
            }
            None => None,
        };
        let views = match raw.views {
            Some(table) => {
                if table.is_empty() {
                    return Err(Error::input(
                        path,
                        "[views] is empty; list at least one view or remove the table",
                    ));
                }
                let mut views = Vec::with_capacity(table.len());
                for (name, spec) in table {
                    views.push(parse_view(path, dir, &name, &spec)?);
                }
                Some(views)
            }
            None => None,
        };
        let options = MetadataOptions {
            columns: raw.columns.unwrap_or_default(),
            splits: split_map(path, raw.splits.unwrap_or_default())?,
        };
        options.validate(path)?;
        Ok(Manifest { path: path.to_path_buf(), metadata, views, options })
    }
}

/// Parse `name = "file[:member]"`.
fn parse_view(path: &Path, dir: &Path, name: &str, spec: &str) -> Result<ViewRef> {
    if name.trim().is_empty() {
        return Err(Error::input(path, "[views]: a view name is empty"));
    }
    let (file, member) = match spec.rsplit_once(':') {
        Some((file, member)) if Format::of(Path::new(file)).is_some() => (file, Some(member.to_string())),
        _ => (spec, None),
    };
    let file = dir.join(file);
    match Format::of(&file) {
        Some(Format::Npy) if member.is_some() => Err(Error::input(
            path,
            format!("[views] {name} = \"{spec}\": a .npy file holds one array, so it takes no `:member`"),
        )),
        Some(Format::Npy | Format::Npz | Format::Safetensors | Format::Parquet) => {
            if member.as_deref() == Some("") {
                return Err(Error::input(
                    path,
                    format!("[views] {name} = \"{spec}\": the member after `:` is empty"),
                ));
            }
            Ok(ViewRef { name: name.to_string(), file, member })
        }
        _ => Err(Error::input(
            path,
            format!(
                "[views] {name} = \"{spec}\": views are read from .npy, .npz, .safetensors or .parquet files \
                 (write `file.npz:member` to pick one array of a container)"
            ),
        )),
    }
}

/// `[splits] test = ["validate", "test"]` -> {validate: test, test: test}.
fn split_map(path: &Path, table: BTreeMap<String, OneOrMany>) -> Result<HashMap<String, String>> {
    let mut map: HashMap<String, String> = HashMap::new();
    for (name, values) in table {
        let values = match values {
            OneOrMany::One(v) => vec![v],
            OneOrMany::Many(v) => v,
        };
        for value in values {
            if let Some(other) = map.get(&value) {
                if *other != name {
                    return Err(Error::input(
                        path,
                        format!(
                            "[splits]: value `{value}` is mapped to both `{other}` and `{name}`; map it once"
                        ),
                    ));
                }
            }
            map.insert(value, name.clone());
        }
    }
    Ok(map)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Manifest> {
        Manifest::parse(text, Path::new("/c"), Path::new("/c/cohort.toml"))
    }

    #[test]
    fn full_manifest_parses() {
        let m = parse(
            r#"
metadata = "labels.parquet"
[views]
image = "img.safetensors:embeddings"
report = "report.npy"
[columns]
id = "dicom_id"
patient_id = "subject_id"
[splits]
test = ["validate", "test"]
train = "training"
"#,
        )
        .unwrap();
        assert_eq!(m.metadata, Some(PathBuf::from("/c/labels.parquet")));
        let views = m.views.unwrap();
        assert_eq!(
            views[0],
            ViewRef {
                name: "image".into(),
                file: "/c/img.safetensors".into(),
                member: Some("embeddings".into())
            }
        );
        assert_eq!(views[1].member, None);
        assert_eq!(m.options.file_column("id"), "dicom_id");
        assert_eq!(m.options.file_column("study_id"), "study_id");
        assert_eq!(m.options.splits["validate"], "test");
        assert_eq!(m.options.splits["training"], "train");
    }

    #[test]
    fn mistakes_are_named() {
        let err = parse("[view]\nimage = \"a.npy\"").unwrap_err().to_string();
        assert!(err.contains("cohort.toml") && err.contains("view"), "{err}");
        let err = parse("[views]\nimage = \"a.txt\"").unwrap_err().to_string();
        assert!(err.contains("image = \"a.txt\""), "{err}");
        let err = parse("[views]\nimage = \"a.npy:x\"").unwrap_err().to_string();
        assert!(err.contains("takes no `:member`"), "{err}");
        let err = parse("[columns]\nsubject = \"x\"").unwrap_err().to_string();
        assert!(err.contains("`subject` is not a column"), "{err}");
        let err = parse("[splits]\ntest = \"v\"\ntrain = \"v\"").unwrap_err().to_string();
        assert!(err.contains("mapped to both"), "{err}");
        let err = parse("metadata = \"m.json\"").unwrap_err().to_string();
        assert!(err.contains(".csv or .parquet"), "{err}");
    }
}
