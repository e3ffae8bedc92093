//! `linkrisk gate`: on the hand-written fixtures of the library's report tests (exact lines,
//! exit codes), and on real audits of small `linkrisk synth` cohorts: every direction, the
//! upper end of the interval, JUnit and JSON output, thresholds from an audit config,
//! skipped attacks, per-model restriction.

use predicates::prelude::*;
use serde_json::Value;

use crate::audit::{read_json, synth_cohort};
use crate::report::fixture_run;
use crate::util::{linkrisk, run, run_err, run_ok, temp_dir as tempdir};

#[test]
fn gate_passes_under_every_threshold() {
    let run = fixture_run();
    // Highest lift at N=10,000 in the fixture: csls, 71.
    linkrisk()
        .arg("gate")
        .arg(run.path())
        .args([
            "--max-lift",
            "10000=71",
            "--max-lift",
            "100=20",
            "--max-reid-rank1",
            "0.7",
            "--allow-skipped",
        ])
        .assert()
        .code(0)
        .stdout("")
        // image -> report: N=10,000 2 pool kinds + 4 attacks, N=100 2 pool kinds; report ->
        // image: N=10,000 2 pool kinds + 2 attacks, N=100 2 pool kinds; re-ID: 2 attackers;
        // the 2 skipped attacks (qb_norm, ridge at 100,000 pairs), accepted.
        .stderr(predicate::str::contains("all 18 checks within thresholds"));
}

#[test]
fn gate_fails_on_the_fixture_s_skipped_attacks_without_allow_skipped() {
    let run = fixture_run();
    let out = linkrisk()
        .arg("gate")
        .arg(run.path())
        .args(["--max-lift", "10000=71", "--max-lift", "100=20", "--max-reid-rank1", "0.7"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("2 of 18 checks failed"))
        .get_output()
        .stdout
        .clone();
    let out = String::from_utf8(out).unwrap();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    assert!(
        lines.iter().all(|l| l.starts_with("attack not run: relink:image->report@test: attack ")),
        "{out}"
    );
    assert!(out.contains("attack qb_norm (image -> report) did not run: the query bank would hold fewer than 1,000 queries"), "{out}");
    assert!(out.contains("attack ridge (image -> report, 100,000 leaked pairs) did not run"), "{out}");
}

#[test]
fn gate_fails_with_one_line_per_violation() {
    let run = fixture_run();
    let out = linkrisk()
        .arg("gate")
        .arg(run.path())
        .args([
            "--max-lift",
            "10000=50",
            "--max-reid-rank1",
            "0.5",
            "--max-recall-at-1",
            "full=0.01",
            "--allow-skipped",
        ])
        .assert()
        .code(1)
        .get_output()
        .stdout
        .clone();
    let out = String::from_utf8(out).unwrap();
    let lines: Vec<&str> = out.lines().collect();
    // Over 50 at N=10,000: image -> report inverted_softmax 63, csls 71, procrustes 58;
    // report -> image random 54.88, cosine 55, csls 52. Over 0.5 Rank-1: the trained
    // attacker's 0.637. Full-database Recall@1 (0.131%, assignment 0.19%) is under 1%.
    assert_eq!(lines.len(), 7, "{out}");
    assert!(lines.iter().all(|l| l.starts_with("over threshold: ")), "{out}");
    assert!(
        out.contains(
            "relink:image->report@test: lift_at_1 (image -> report, attack csls, N=10,000) = 71 > 50 [--max-lift 10000=50]"
        ),
        "{out}"
    );
    assert!(
        out.contains("lift_at_1 (image -> report, attack inverted_softmax, N=10,000) = 63 > 50"),
        "{out}"
    );
    assert!(
        out.contains("lift_at_1 (image -> report, attack procrustes, 100 leaked pairs, N=10,000) = 58 > 50"),
        "{out}"
    );
    assert!(out.contains("reid:image+linear-metric: rank_1 (image view, attacker linear-metric) = 0.637 > 0.5 [--max-reid-rank1 0.5]"), "{out}");
    assert!(out.contains("lift_at_1 (report -> image, random pool, N=10,000) = 54.88 > 50"), "{out}");
    assert!(!out.contains("image -> report, random pool"), "random pool lift 49 is under 50: {out}");
}

#[test]
fn gate_verbose_lists_passing_checks_too() {
    let run = fixture_run();
    linkrisk()
        .arg("gate")
        .arg(run.path())
        .args(["--max-lift", "full=100", "-v", "--allow-skipped"])
        .assert()
        .code(0)
        .stdout(predicate::str::contains(
            "ok: relink:image->report@test: lift_at_1 (image -> report, full database) = 57.3688 <= 100",
        ));
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
        .stdout(predicate::str::contains("Exit codes: 0 every threshold holds; 1 at least one figure"))
        .stdout(predicate::str::contains("error (no run.json"))
        .stdout(predicate::str::contains("--junit"))
        .stdout(predicate::str::contains("--on"));
}

fn s(p: &std::path::Path) -> &str {
    p.to_str().unwrap()
}

/// `(pool, figure)` for every Recall@1 the gate compares in one direction of a relink audit:
/// its pool rows and full-database figure (`pool` None), with their intervals.
fn recall_rows(direction: &Value) -> Vec<(Option<u64>, f64, [f64; 2])> {
    let mut rows: Vec<(Option<u64>, f64, [f64; 2])> = Vec::new();
    let ci = |v: &Value, keys: &[&str]| -> [f64; 2] {
        let mut lo_hi = [f64::INFINITY, f64::NEG_INFINITY];
        for k in keys {
            if let Some(a) = v[k].as_array() {
                lo_hi = [lo_hi[0].min(a[0].as_f64().unwrap()), lo_hi[1].max(a[1].as_f64().unwrap())];
            }
        }
        lo_hi
    };
    for p in direction["pools"].as_array().unwrap() {
        let keys = ["ci95_recall_at_1", "bootstrap_ci95_recall_at_1"];
        rows.push((p["pool_size"].as_u64(), p["recall_at_1"].as_f64().unwrap(), ci(p, &keys)));
    }
    let full = &direction["full"];
    rows.push((
        None,
        full["recall_at_1"].as_f64().unwrap(),
        ci(full, &["ci95_recall_at_1", "bootstrap_ci95_recall_at_1"]),
    ));
    rows
}

/// A relink run in both directions without attacks (so only pool rows are checked).
fn relink_run(tmp: &std::path::Path) -> (std::path::PathBuf, Value) {
    let cohort = synth_cohort(&tmp.join("model"), 0.7, 4);
    let out = tmp.join("RUN");
    run_ok([
        "relink",
        s(&cohort),
        "--direction",
        "both",
        "--hard-negatives",
        "--pools",
        "10,100,full",
        "--attack",
        "none",
        "--bootstrap",
        "100",
        "--out",
        s(&out),
    ]);
    let run = read_json(&out.join("run.json"));
    let audit = run["runs"][0]["audit"].clone();
    (out, audit)
}

#[test]
fn only_report_to_image_over_its_threshold_fails_the_gate() {
    let tmp = tempdir();
    let (out, audit) = relink_run(tmp.path());
    let (forward, reverse) = (recall_rows(&audit), recall_rows(&audit["reverse"]));
    // A pool where report -> image links more than every image -> report row of that pool:
    // the threshold is the forward maximum, which passes (equal passes).
    let pick = [Some(10), Some(100), None].into_iter().find_map(|pool| {
        let max = |rows: &[(Option<u64>, f64, [f64; 2])]| {
            rows.iter().filter(|r| r.0 == pool).map(|r| r.1).fold(f64::NEG_INFINITY, f64::max)
        };
        (max(&reverse) > max(&forward)).then(|| (pool, max(&forward)))
    });
    let (pool, threshold) = pick.expect("some pool where the reverse direction links more");
    let flag = format!("{}={threshold}", pool.map_or("full".to_string(), |n| n.to_string()));
    let outcome = run(["gate", s(&out), "--max-recall-at-1", &flag]);
    assert_eq!(outcome.code, 1, "{}\n{}", outcome.stdout, outcome.stderr);
    let lines: Vec<&str> = outcome.stdout.lines().collect();
    assert!(!lines.is_empty());
    for line in &lines {
        assert!(line.starts_with("over threshold: ") && line.contains("(report -> image, "), "{line}");
    }
    let over = reverse.iter().filter(|r| r.0 == pool && r.1 > threshold).count();
    assert_eq!(lines.len(), over, "{}", outcome.stdout);
    // Restricted to the other direction's figure, it would pass: the threshold is the
    // forward maximum itself.
    assert!(forward.iter().filter(|r| r.0 == pool).all(|r| r.1 <= threshold));
}

#[test]
fn ci_high_fails_a_run_whose_estimate_passes() {
    let tmp = tempdir();
    let (out, audit) = relink_run(tmp.path());
    let rows: Vec<_> = recall_rows(&audit).into_iter().chain(recall_rows(&audit["reverse"])).collect();
    let at_10: Vec<_> = rows.iter().filter(|r| r.0 == Some(10)).collect();
    let threshold = at_10.iter().map(|r| r.1).fold(f64::NEG_INFINITY, f64::max);
    let flag = format!("10={threshold}");
    run_ok(["gate", s(&out), "--max-recall-at-1", &flag]);
    let outcome = run(["gate", s(&out), "--max-recall-at-1", &flag, "--on", "ci-high"]);
    assert_eq!(outcome.code, 1, "{}\n{}", outcome.stdout, outcome.stderr);
    let expected = at_10.iter().filter(|r| r.2[1] > threshold).count();
    assert_eq!(outcome.stdout.lines().count(), expected);
    assert!(expected > 0);
    for line in outcome.stdout.lines() {
        assert!(line.contains("recall_at_1 95% CI high") && line.contains("(estimate "), "{line}");
    }
}

/// The JUnit file parsed back: one test case per check of the JSON, failures where the JSON
/// says a check failed, one suite per model.
#[test]
fn junit_is_valid_xml_with_one_case_per_check() {
    use quick_xml::events::Event;
    let tmp = tempdir();
    let a = synth_cohort(&tmp.path().join("model-a"), 0.2, 5);
    let b = synth_cohort(&tmp.path().join("model-b"), 0.8, 6);
    let out = tmp.path().join("RUN");
    run_ok(["audit", s(&a), s(&b), "--out", s(&out)]);
    let (junit, json) = (tmp.path().join("gate.xml"), tmp.path().join("gate.json"));
    let outcome = run([
        "gate",
        s(&out),
        "--max-lift",
        "10=6",
        "--max-reid-rank1",
        "0.5",
        "--min-utility",
        "0.5",
        "--max-attribute-auroc",
        "sex=0.9",
        "--junit",
        s(&junit),
        "--json",
        s(&json),
    ]);
    assert_eq!(outcome.code, 1, "skipped attacks fail without --allow-skipped: {}", outcome.stderr);
    let checks = read_json(&json);
    let checks = checks["checks"].as_array().unwrap();
    let xml = std::fs::read_to_string(&junit).unwrap();
    let mut reader = quick_xml::Reader::from_str(&xml);
    let (mut cases, mut failures, mut suites, mut depth) = (Vec::new(), 0, Vec::new(), 0i32);
    let name = |e: &quick_xml::events::BytesStart<'_>| -> String {
        e.try_get_attribute("name").unwrap().unwrap().unescape_value().unwrap().into_owned()
    };
    loop {
        match reader.read_event().expect("well-formed XML") {
            Event::Eof => break,
            Event::Start(e) => {
                depth += 1;
                match e.name().as_ref() {
                    b"testsuite" => suites.push(name(&e)),
                    b"testcase" => cases.push(name(&e)),
                    b"failure" => failures += 1,
                    _ => {}
                }
            }
            Event::End(_) => depth -= 1,
            Event::Empty(e) if e.name().as_ref() == b"testcase" => cases.push(name(&e)),
            _ => {}
        }
    }
    assert_eq!(depth, 0, "balanced elements");
    assert_eq!(cases.len(), checks.len(), "one test case per check");
    assert_eq!(failures, checks.iter().filter(|c| c["passed"] == false).count());
    assert_eq!(suites, ["model-a", "model-b"]);
    let skipped = checks.iter().filter(|c| c["kind"] == "skipped_attack").count();
    assert!(skipped > 0, "small cohorts skip some attacks (assignment at N=100 over ~110 queries)");
    for model in ["model-a", "model-b"] {
        for metric in ["lift_at_1", "rank_1", "macro_auroc", "auroc"] {
            assert!(checks.iter().any(|c| c["model"] == model && c["metric"] == metric), "{model} {metric}");
        }
    }
    // --allow-skipped keeps the skipped attacks in the JSON as passed checks.
    let outcome = run(["gate", s(&out), "--max-lift", "10=1000", "--allow-skipped", "--json", "-"]);
    assert_eq!(outcome.code, 0, "{}", outcome.stderr);
    let checks: Value = serde_json::from_str(&outcome.stdout).unwrap();
    assert!(checks["passed"] == true);
    assert_eq!(
        checks["checks"].as_array().unwrap().iter().filter(|c| c["kind"] == "skipped_attack").count(),
        skipped
    );
    // --model restricts to one model; an unknown one is an error.
    let only_b = run(["gate", s(&out), "--max-lift", "10=1000", "--model", "model-b"]);
    assert!(only_b.stdout.lines().all(|l| l.contains("#model-b")), "{}", only_b.stdout);
    run_err(
        ["gate", s(&out), "--max-lift", "10=1000", "--model", "model-c"],
        &["--model model-c", "model-a, model-b"],
    );
}

#[test]
fn thresholds_from_the_audit_config() {
    let tmp = tempdir();
    let a = synth_cohort(&tmp.path().join("a"), 0.2, 7);
    let b = synth_cohort(&tmp.path().join("b"), 0.9, 8);
    let out = tmp.path().join("RUN");
    run_ok(["audit", s(&a), s(&b), "--out", s(&out)]);
    let run_json = read_json(&out.join("run.json"));
    let rank_1 = |label: &str| -> f64 {
        crate::audit::entries(&run_json, label, "reid")
            .iter()
            .map(|e| e["audit"]["rank_1"].as_f64().unwrap())
            .fold(0.0, f64::max)
    };
    // A common ceiling under model a's Rank-1 and model b's own ceiling above its Rank-1:
    // only model a fails.
    let config = tmp.path().join("audit.toml");
    let common = rank_1("a") * 0.9;
    std::fs::write(
        &config,
        format!(
            "[gate]\nallow_skipped = true\nmax_reid_rank1 = {common}\n\n[[model]]\nlabel = \"b\"\n[model.gate]\nmax_reid_rank1 = {}\n",
            (rank_1("b") + 1.0) / 2.0
        ),
    )
    .unwrap();
    let outcome = run(["gate", s(&out), "--config", s(&config)]);
    assert_eq!(outcome.code, 1, "{}\n{}", outcome.stdout, outcome.stderr);
    assert!(outcome.stdout.lines().all(|l| l.contains("#a: rank_1")), "{}", outcome.stdout);
    // A flag replaces the file's thresholds of the same metric for every model.
    run_ok(["gate", s(&out), "--config", s(&config), "--max-reid-rank1", "1"]);
    // A proportion outside [0, 1] is an error, from the file or a flag.
    std::fs::write(&config, "[gate]\nmax_reid_rank1 = 40\n").unwrap();
    run_err(["gate", s(&out), "--config", s(&config)], &["audit.toml", "max_reid_rank1", "not a proportion"]);
    run_err(["gate", s(&out), "--max-recall-at-1", "10=1.2"], &["--max-recall-at-1", "not a proportion"]);
    run_err(["gate", s(&out), "--min-utility", "80"], &["--min-utility", "not a proportion"]);
    run_err(
        ["gate", s(&out), "--max-attribute-auroc", "sex=1.5"],
        &["--max-attribute-auroc", "not a proportion"],
    );
}
