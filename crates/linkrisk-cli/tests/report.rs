//! `linkrisk report` on a run directory built from the hand-written audit fixtures of the
//! library's report tests (`linkrisk gate` on the same fixtures: `gate.rs`).

use predicates::prelude::*;

use crate::util::{linkrisk, temp_dir as tempdir};

#[path = "../../linkrisk/tests/report/fixtures.rs"]
mod fixtures;

pub(crate) fn fixture_run() -> tempfile::TempDir {
    let tmp = tempdir();
    fixtures::build_run(tmp.path());
    tmp
}

#[test]
fn report_writes_both_formats_by_default() {
    let run = fixture_run();
    linkrisk()
        .arg("report")
        .arg(run.path())
        .assert()
        .success()
        .stdout(predicate::str::contains("report.html").and(predicate::str::contains("report.md")))
        .stdout(predicate::str::contains("(7 charts)"));
    let html = std::fs::read_to_string(run.path().join("report.html")).unwrap();
    assert!(html.contains("Headline risk."));
    assert!(run.path().join("plots/relink-recall-1-cohort.svg").is_file());
    assert!(run.path().join("report.md").is_file());
}

#[test]
fn report_writes_only_the_requested_format() {
    let run = fixture_run();
    linkrisk().arg("report").arg(run.path()).arg("--html").assert().success();
    assert!(run.path().join("report.html").is_file());
    assert!(!run.path().join("report.md").exists());
    assert!(!run.path().join("plots").exists(), "charts are for the Markdown report only");
    let run = fixture_run();
    linkrisk().arg("report").arg(run.path()).arg("--md").assert().success();
    assert!(!run.path().join("report.html").exists());
    assert!(run.path().join("report.md").is_file());
}

#[test]
fn report_without_run_json_is_an_error() {
    let tmp = tempdir();
    linkrisk()
        .arg("report")
        .arg(tmp.path())
        .assert()
        .code(2)
        .stderr(predicate::str::contains("run.json").and(predicate::str::contains("--out")));
}
