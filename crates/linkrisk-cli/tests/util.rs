//! Shared helpers for CLI tests.

#![allow(dead_code)]

use assert_cmd::Command;

/// The `linkrisk` binary under test.
pub fn linkrisk() -> Command {
    Command::cargo_bin("linkrisk").expect("linkrisk binary")
}

/// A fresh temporary directory.
pub fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().expect("temporary directory")
}
