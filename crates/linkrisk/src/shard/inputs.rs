//! What a cohort directory is, by content: every file an audit may read, hashed (blake3), and
//! the one-line [`cohort_fingerprint`] built from those hashes. Shards compare the file list
//! before they merge; run directories compare the fingerprint before they let a second
//! cohort be recorded under a model's label (`report::run`).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::cohort::Manifest;
use crate::error::{Error, Result};

/// One input file, by content.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InputFile {
    /// Name relative to the cohort directory (absolute for files outside it).
    pub file: String,
    /// Size in bytes.
    pub bytes: u64,
    /// blake3 of the content, hex.
    pub blake3: String,
}

/// Hash the files a cohort directory's audit may read: every regular, non-hidden file in
/// `dir` (sorted by name) plus files outside it that `cohort.toml` names. Names are relative
/// to `dir`, so the same cohort mounted at another path on another node fingerprints the same.
pub fn hash_inputs(dir: &Path) -> Result<Vec<InputFile>> {
    let mut files: Vec<PathBuf> = crate::cohort::list_files(dir)?;
    if let Some(manifest) = Manifest::load_if_present(dir)? {
        files.extend(manifest.metadata);
        files.extend(manifest.views.into_iter().flatten().map(|v| v.file));
    }
    let mut named: Vec<(String, PathBuf)> = files
        .into_iter()
        .map(|p| {
            let name = match p.strip_prefix(dir) {
                Ok(rel) => rel.to_string_lossy().into_owned(),
                Err(_) => p.canonicalize().unwrap_or_else(|_| p.clone()).to_string_lossy().into_owned(),
            };
            (name, p)
        })
        .collect();
    named.sort();
    named.dedup_by(|a, b| a.0 == b.0);
    named
        .into_iter()
        .map(|(file, path)| {
            let mut hasher = blake3::Hasher::new();
            hasher.update_mmap_rayon(&path).map_err(|e| Error::io(&path, e))?;
            let bytes = std::fs::metadata(&path).map_err(|e| Error::io(&path, e))?.len();
            Ok(InputFile { file, bytes, blake3: hasher.finalize().to_hex().to_string() })
        })
        .collect()
}

/// The name of a cohort directory (`runs/cohort-a/.` -> `cohort-a`), after resolving `.` and
/// `..`: a model's default label.
pub fn cohort_name(dir: &Path) -> Option<String> {
    let resolved = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
    resolved.file_name().map(|n| n.to_string_lossy().into_owned())
}

/// The fingerprint of a cohort directory's content: blake3 (hex) over the sorted list of its
/// files' names, sizes and content hashes ([`hash_inputs`]). Two directories with the same
/// files (by name relative to the directory, and content) have the same fingerprint wherever
/// they are mounted; any changed, added or removed file changes it.
pub fn cohort_fingerprint(dir: &Path) -> Result<String> {
    Ok(fingerprint_of_inputs(&hash_inputs(dir)?))
}

/// [`cohort_fingerprint`] of an already hashed file list (a shard's fingerprint holds one), so
/// a merged sharded audit carries the fingerprint its unsharded run would.
pub fn fingerprint_of_inputs(inputs: &[InputFile]) -> String {
    let mut sorted: Vec<&InputFile> = inputs.iter().collect();
    sorted.sort_by(|a, b| a.file.cmp(&b.file));
    let mut hasher = blake3::Hasher::new();
    hasher.update(b"linkrisk cohort fingerprint v1\n");
    for f in sorted {
        // Length-prefixed name, so no two file lists hash the same bytes.
        hasher.update(&(f.file.len() as u64).to_le_bytes());
        hasher.update(f.file.as_bytes());
        hasher.update(&f.bytes.to_le_bytes());
        hasher.update(f.blake3.as_bytes());
    }
    hasher.finalize().to_hex().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprint_follows_content_not_location() {
        let tmp = tempfile::tempdir().unwrap();
        let (a, b) = (tmp.path().join("a"), tmp.path().join("elsewhere/b"));
        for dir in [&a, &b] {
            std::fs::create_dir_all(dir).unwrap();
            std::fs::write(dir.join("metadata.csv"), "id,patient_id\nr1,p1\n").unwrap();
            std::fs::write(dir.join("image.npy"), [1u8, 2, 3]).unwrap();
            std::fs::write(dir.join(".hidden"), "ignored").unwrap();
        }
        let fa = cohort_fingerprint(&a).unwrap();
        assert_eq!(fa.len(), 64);
        assert_eq!(fa, cohort_fingerprint(&b).unwrap(), "same files elsewhere, same fingerprint");
        assert_eq!(fa, fingerprint_of_inputs(&hash_inputs(&a).unwrap()));
        std::fs::write(b.join("image.npy"), [1u8, 2, 4]).unwrap();
        assert_ne!(fa, cohort_fingerprint(&b).unwrap(), "one changed byte");
        std::fs::write(b.join("image.npy"), [1u8, 2, 3]).unwrap();
        std::fs::write(b.join("report.npy"), [0u8]).unwrap();
        assert_ne!(fa, cohort_fingerprint(&b).unwrap(), "one more file");
        // Renaming a file changes the list even with the same bytes.
        std::fs::remove_file(b.join("report.npy")).unwrap();
        std::fs::rename(b.join("image.npy"), b.join("images.npy")).unwrap();
        assert_ne!(fa, cohort_fingerprint(&b).unwrap(), "renamed file");
        let missing = cohort_fingerprint(&tmp.path().join("nope")).unwrap_err().to_string();
        assert!(missing.contains("nope"), "{missing}");
    }
}
