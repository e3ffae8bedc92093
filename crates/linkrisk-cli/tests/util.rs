//! Shared helpers for CLI tests: the binary under test and temporary cohorts.

use std::path::Path;

use assert_cmd::Command;
use linkrisk::cohort::metadata::MetadataBuilder;

/// The `linkrisk` binary built by this package.
pub fn linkrisk() -> Command {
    Command::cargo_bin("linkrisk").expect("binary built")
}

/// Write a cohort of `ids.len()` records with the given raw views into `dir`.
pub fn write_cohort(dir: &Path, builder: MetadataBuilder, views: &[(&str, usize, &[f32])]) {
    let meta = builder.build(Path::new("<test>"), 0).expect("valid metadata");
    linkrisk::cohort::write::write_cohort(dir, &meta, views).expect("cohort written");
}
