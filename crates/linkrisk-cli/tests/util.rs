//! Helpers shared by the CLI tests: a command for the built binary and a temporary directory.

use std::path::Path;

/// A command running the `linkrisk` binary built for these tests.
pub fn linkrisk() -> assert_cmd::Command {
    assert_cmd::Command::new(env!("CARGO_BIN_EXE_linkrisk"))
}

/// A fresh temporary directory, removed when dropped.
pub fn temp_dir() -> tempfile::TempDir {
    tempfile::tempdir().expect("create a temporary directory")
}

/// The bytes of `dir/name`.
pub fn read(dir: &Path, name: &str) -> Vec<u8> {
    std::fs::read(dir.join(name)).unwrap_or_else(|e| panic!("read {}: {e}", dir.join(name).display()))
}
