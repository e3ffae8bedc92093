//! What a stopped process must not leave behind, and what its outputs must not destroy.
//!
//! Every temporary file or directory that an atomic write builds beside its target (and every
//! run-directory lock) is registered here while it exists; the CLI's SIGTERM/SIGINT handler
//! (Slurm sends SIGTERM on cancel and timeout) calls [`remove_all`] before it exits, so a
//! stopped audit leaves neither `.run.json.tmp-PID` nor `run.json.lock` behind. (SIGKILL
//! cannot be caught: a lock left by a killed process records its owner and is taken over,
//! see `report::run`; a temporary file left by one is hidden and ignored by every reader.)
//!
//! The inputs a command read (a cohort's metadata, manifest and view files) are registered
//! too, and [`crate::cohort::write::atomic`] refuses to replace one of them, so
//! `linkrisk relink C --json C/metadata.csv` fails instead of destroying the cohort.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Registered temporary paths, with the id of the guard that registered each.
static TEMPORARY: Mutex<Vec<(u64, PathBuf)>> = Mutex::new(Vec::new());
/// Next guard id.
static NEXT_ID: Mutex<u64> = Mutex::new(0);
/// Held across steps that must not be interrupted half-way by [`remove_all`] (the two
/// renames that swap a directory into place).
static CRITICAL: Mutex<()> = Mutex::new(());
/// Files read as inputs, canonicalised.
static INPUTS: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

/// While alive, keeps its path on the list [`remove_all`] removes; dropping it takes the
/// path off the list (the owner has renamed or removed the file by then).
#[derive(Debug)]
#[must_use = "the path is unregistered when the guard is dropped"]
pub struct Registered {
    id: u64,
}

/// Register `path` (a file or a directory) for removal if the process is stopped.
pub fn remove_on_signal(path: &Path) -> Registered {
    let id = {
        let mut next = NEXT_ID.lock().unwrap_or_else(|e| e.into_inner());
        *next += 1;
        *next
    };
    TEMPORARY.lock().unwrap_or_else(|e| e.into_inner()).push((id, path.to_path_buf()));
    Registered { id }
}

impl Drop for Registered {
    fn drop(&mut self) {
        TEMPORARY.lock().unwrap_or_else(|e| e.into_inner()).retain(|(id, _)| *id != self.id);
    }
}

/// Remove every registered temporary file and directory (for a signal handler, which then
/// exits). Returns how many existed.
pub fn remove_all() -> usize {
    let _critical = CRITICAL.lock().unwrap_or_else(|e| e.into_inner());
    let paths: Vec<PathBuf> =
        TEMPORARY.lock().unwrap_or_else(|e| e.into_inner()).drain(..).map(|(_, p)| p).collect();
    let mut removed = 0;
    for path in paths.iter().rev() {
        // The process's other threads may still be writing into a temporary directory:
        // retry until it is gone (a file created meanwhile makes one attempt fail).
        let mut gone = false;
        for _ in 0..20 {
            gone = match std::fs::symlink_metadata(path) {
                Ok(m) if m.is_dir() => std::fs::remove_dir_all(path).is_ok(),
                Ok(_) => std::fs::remove_file(path).is_ok(),
                Err(_) => break,
            };
            if gone {
                break;
            }
        }
        removed += usize::from(gone);
    }
    removed
}

/// Run `steps` with [`remove_all`] held off until they are done.
pub fn critical<T>(steps: impl FnOnce() -> T) -> T {
    let _critical = CRITICAL.lock().unwrap_or_else(|e| e.into_inner());
    steps()
}

/// Record that this process reads `path` as an input (outputs may not replace it).
pub fn register_input(path: &Path) {
    if let Ok(canonical) = path.canonicalize() {
        let mut inputs = INPUTS.lock().unwrap_or_else(|e| e.into_inner());
        if !inputs.contains(&canonical) {
            inputs.push(canonical);
        }
    }
}

/// Whether `path` is (a link to) a file registered with [`register_input`].
pub fn is_input(path: &Path) -> bool {
    let Ok(canonical) = path.canonicalize() else { return false };
    INPUTS.lock().unwrap_or_else(|e| e.into_inner()).contains(&canonical)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registered_paths_are_removed_and_dropped_guards_forgotten() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join(".x.tmp-1");
        let dir = tmp.path().join(".d.tmp-1");
        let kept = tmp.path().join("kept");
        std::fs::write(&file, b"1").unwrap();
        std::fs::create_dir_all(dir.join("inner")).unwrap();
        std::fs::write(&kept, b"1").unwrap();
        let _a = remove_on_signal(&file);
        let _b = remove_on_signal(&dir);
        drop(remove_on_signal(&kept)); // renamed into place by its owner: no longer temporary
        assert!(remove_all() >= 2);
        assert!(!file.exists() && !dir.exists());
        assert!(kept.exists(), "an unregistered path stays");
    }

    #[test]
    fn inputs_are_recognised_through_other_spellings() {
        let tmp = tempfile::tempdir().unwrap();
        let input = tmp.path().join("metadata.csv");
        std::fs::write(&input, b"id\n").unwrap();
        assert!(!is_input(&input));
        register_input(&input);
        assert!(is_input(&tmp.path().join(".").join("metadata.csv")));
        assert!(!is_input(&tmp.path().join("other.csv")), "a new file is no input");
    }
}
