//! `linkrisk report` and `linkrisk gate` on a run directory built from the hand-written
//! audit fixtures of the library's report tests.

use predicates::prelude::*;

use crate::util::{linkrisk, temp_dir as tempdir};

#[path = "../../linkrisk/tests/report/fixtures.rs"]
mod fixtures;

fn fixture_run() -> tempfile::TempDir {
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

#[test]
fn gate_passes_under_every_threshold() {
    let run = fixture_run();
    // Highest lift at N=10,000 in the fixture: csls, 71.
    linkrisk()
        .arg("gate")
        .arg(run.path())
        .args(["--max-lift", "10000=71", "--max-lift", "100=20", "--max-reid-rank1", "0.7"])
        .assert()
        .code(0)
        .stdout("")
        // N=10,000: 2 pool kinds + 4 attacks; N=100: 2 pool kinds; re-ID: 2 attackers.
        .stderr(predicate::str::contains("all 10 checks within thresholds"));
}

#[test]
fn gate_fails_with_one_line_per_violation() {
    let run = fixture_run();
    let out = linkrisk()
        .arg("gate")
        .arg(run.path())
        .args(["--max-lift", "10000=50", "--max-reid-rank1", "0.5", "--max-recall-at-1", "full=0.01"])
        .assert()
        .code(1)
        .get_output()
        .stdout
        .clone();
    let out = String::from_utf8(out).unwrap();
    let lines: Vec<&str> = out.lines().collect();
    // Over 50 at N=10,000: inverted_softmax 63, csls 71, procrustes 58. Over 0.5 Rank-1: the
    // trained attacker's 0.637. Full-database Recall@1 (0.131%, assignment 0.19%) is under 1%.
    assert_eq!(lines.len(), 4, "{out}");
    assert!(lines.iter().all(|l| l.starts_with("over threshold: ")), "{out}");
    assert!(
        out.contains(
            "relink:image->report@test: lift_at_1 (attack csls, N=10,000) = 71 > 50 [--max-lift 10000=50]"
        ),
        "{out}"
    );
    assert!(out.contains("lift_at_1 (attack inverted_softmax, N=10,000) = 63 > 50"), "{out}");
    assert!(out.contains("lift_at_1 (attack procrustes, 100 leaked pairs, N=10,000) = 58 > 50"), "{out}");
    assert!(out.contains("reid:image+linear-metric: rank_1 (image view, attacker linear-metric) = 0.637 > 0.5 [--max-reid-rank1 0.5]"), "{out}");
    assert!(!out.contains("random pool"), "random pool lift 49 is under 50: {out}");
}

#[test]
fn gate_verbose_lists_passing_checks_too() {
    let run = fixture_run();
    linkrisk().arg("gate").arg(run.path()).args(["--max-lift", "full=100", "-v"]).assert().code(0).stdout(
        predicate::str::contains("ok: relink:image->report@test: lift_at_1 (full database) = 57.3688 <= 100"),
    );
}

#[test]
fn gate_errors_exit_2_and_say_what_exists() {
    let run = fixture_run();
    linkrisk()
        .arg("gate")
        .arg(run.path())
        .args(["--max-lift", "500=5"])
        .assert()
        .code(2)
        .stdout("")
        .stderr(predicate::str::contains("no relink audit in this run has a pool of N=500"))
        .stderr(predicate::str::contains("pools present: 10, 100, 1000, 10000, full"));
    linkrisk()
        .arg("gate")
        .arg(run.path())
        .args(["--max-lift", "10000"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("--max-lift 10000: missing `=`"));
    linkrisk()
        .arg("gate")
        .arg(run.path())
        .assert()
        .code(2)
        .stderr(predicate::str::contains("no threshold given"));
    let empty = tempdir();
    linkrisk()
        .arg("gate")
        .arg(empty.path())
        .args(["--max-reid-rank1", "0.3"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("run.json"));
}

#[test]
fn gate_help_documents_exit_codes() {
    linkrisk()
        .args(["gate", "--help"])
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "Exit codes: 0 every threshold holds; 1 at least one figure exceeds",
        ))
        .stdout(predicate::str::contains("2 error"));
}
