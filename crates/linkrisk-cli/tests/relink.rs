//! `linkrisk relink` end to end on a hand-built cohort whose ranks are known exactly.

use linkrisk::cohort::metadata::MetadataBuilder;
use predicates::prelude::*;
use predicates::str::contains;
use serde_json::Value;

use crate::util::{linkrisk, write_built_cohort as write_cohort};

/// Six test records (one patient each) and two training records, dimension 6.
/// Report i is the unit vector e_i; image i's components fix its ranks by hand:
/// q0 first; q1 one report above (rank 2); q2 ties with all 5 others (rank uniform 1..6);
/// q3 last (rank 6); q4, q5 first. Training records must not take part.
fn cohort(dir: &std::path::Path) {
    let image: Vec<f32> = [
        [5.0, 1.0, 1.0, 1.0, 1.0, 1.0],
        [1.0, 3.0, 1.0, 1.0, 1.0, 4.0],
        [2.0, 2.0, 2.0, 2.0, 2.0, 2.0],
        [1.0, 1.0, 1.0, 0.5, 1.0, 1.0],
        [1.0, 1.0, 1.0, 1.0, 9.0, 1.0],
        [2.0, 1.0, 1.0, 1.0, 1.0, 3.0],
        [1.0, 0.0, 0.0, 0.0, 0.0, 0.0],
        [0.0, 1.0, 0.0, 0.0, 0.0, 0.0],
    ]
    .concat();
    let mut report = vec![0f32; 8 * 6];
    for i in 0..6 {
        report[i * 6 + i] = 1.0;
    }
    // Training records duplicate test reports 0 and 1 (would tie if they leaked in).
    report[6 * 6] = 1.0;
    report[7 * 6 + 1] = 1.0;
    let b = MetadataBuilder {
        ids: (0..8).map(|i| format!("r{i}")).collect(),
        patient_ids: (0..8).map(|i| format!("p{i}")).collect(),
        splits: Some((0..8).map(|i| if i < 6 { "test" } else { "train" }.to_string()).collect()),
        sex: Some((0..8).map(|i| Some(if i % 2 == 0 { "F" } else { "M" }.to_string())).collect()),
        ..Default::default()
    };
    write_cohort(dir, b, &[("image", 6, &image), ("report", 6, &report)]);
}

fn close(v: &Value, want: f64) -> bool {
    v.as_f64().is_some_and(|x| (x - want).abs() < 1e-9)
}

#[test]
fn json_keys_and_exact_values() {
    let tmp = tempfile::tempdir().unwrap();
    cohort(tmp.path());
    let out = tmp.path().join("relink.json");
    linkrisk()
        .args(["relink"])
        .arg(tmp.path())
        .args(["--pools", "2,3,100,full", "--trials", "5", "--seed", "7", "--json"])
        .arg(&out)
        .assert()
        .success()
        .stdout(
            contains("image -> report").and(contains("full database")).and(contains("skipped: pool 100")),
        );
    let json: Value = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    assert_eq!(json["audit"], "relink");
    assert_eq!(json["query_view"], "image");
    assert_eq!(json["gallery_view"], "report");
    assert_eq!(json["n_queries"], 6);
    assert_eq!(json["n_gallery"], 6);
    let full = &json["full"];
    // Recall@1 = (1 + 0 + 1/6 + 0 + 1 + 1) / 6; Recall@5 = (4 + 5/6 + 0) / 6;
    // MRR = (1 + 1/2 + H(6)/6 + 1/6 + 1 + 1) / 6 with H(6) = 2.45.
    assert!(close(&full["recall_at_1"], 19.0 / 36.0), "{full}");
    assert!(close(&full["recall_at_5"], 29.0 / 36.0), "{full}");
    assert!(close(&full["recall_at_10"], 1.0), "{full}");
    assert!(close(&full["mrr"], (3.5 + 2.45 / 6.0 + 1.0 / 6.0) / 6.0), "{full}");
    assert_eq!(full["median_rank"], 1);
    assert!(close(&full["chance_at_1"], 1.0 / 6.0));
    assert!(close(&full["lift_at_1"], 19.0 / 6.0));
    let ci = full["ci95_recall_at_1"].as_array().unwrap();
    assert_eq!(ci.len(), 2);
    assert!(ci[0].as_f64().unwrap() < 19.0 / 36.0 && ci[1].as_f64().unwrap() > 19.0 / 36.0);
    let pools = json["pools"].as_array().unwrap();
    assert_eq!(pools.len(), 2, "pool 100 is skipped, not evaluated");
    for key in [
        "pool_size",
        "kind",
        "trials",
        "recall_at_1",
        "ci95_recall_at_1",
        "chance_at_1",
        "lift_at_1",
        "expected_recall_at_1",
    ] {
        assert!(pools[0].get(key).is_some(), "pools[] lacks `{key}`");
    }
    assert_eq!(pools[0]["pool_size"], 2);
    assert_eq!(pools[0]["kind"], "random");
    assert_eq!(pools[0]["trials"], 5);
    assert!(close(&pools[0]["chance_at_1"], 0.5));
    // Pool of 2: q0, q4, q5 always win, q3 never; q1 wins unless its one beater is drawn
    // (4/5); q2's negative always ties (1/2). Exact expectation (1 + .8 + .5 + 0 + 1 + 1) / 6.
    assert!(close(&pools[0]["expected_recall_at_1"], 4.3 / 6.0), "{}", pools[0]);
    let skipped = json["skipped_pools"].as_array().unwrap();
    assert_eq!(skipped.len(), 1);
    assert_eq!(skipped[0]["pool_size"], 100);
    assert!(json["subgroups"]
        .as_array()
        .unwrap()
        .iter()
        .any(|s| s["attribute"] == "sex" && s["n_queries"] == 3));
    assert!(json["reverse"].is_null());
}

#[test]
fn both_directions_and_json_on_stdout() {
    let tmp = tempfile::tempdir().unwrap();
    cohort(tmp.path());
    let output = linkrisk()
        .arg("relink")
        .arg(tmp.path())
        .args(["--pools", "full", "--direction", "both", "--json", "-"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let json: Value = serde_json::from_slice(&output).expect("stdout is the JSON report alone");
    assert_eq!(json["reverse"]["query_view"], "report");
    assert_eq!(json["reverse"]["gallery_view"], "image");
    assert_eq!(json["reverse"]["n_queries"], 6);
    assert!(json["pools"].as_array().unwrap().is_empty());
}

#[test]
fn bad_flags_and_inputs_exit_2_with_a_clear_message() {
    let tmp = tempfile::tempdir().unwrap();
    cohort(tmp.path());
    let fails = |args: &[&str], message: &str| {
        linkrisk()
            .arg("relink")
            .arg(tmp.path())
            .args(args)
            .assert()
            .code(2)
            .stderr(contains(message.to_string()));
    };
    fails(&["--gallery", "image"], "--query and --gallery");
    fails(&["--pools", "ten"], "--pools");
    fails(&["--pools", "500"], "exceeds");
    fails(&["--trials", "0"], "--trials");
    fails(&["--split", "validation"], "validation");
    fails(&["--gallery", "text"], "no view named `text`");
    fails(&["--hard-negatives"], "--hard-negatives needs the 14 CheXpert finding columns");
}

/// Paper 1's shape on synthetic cohorts: Recall@1 rises with specialization, pathology-matched
/// pools lower it without removing it, and lift grows with the pool size. Also `--out RUN`
/// records the audit.
#[test]
fn synthetic_cohorts_show_the_papers_shape() {
    let tmp = tempfile::tempdir().unwrap();
    let mut full = Vec::new();
    for specialization in ["0.2", "1.0"] {
        let dir = tmp.path().join(format!("s{specialization}"));
        linkrisk()
            .args(["synth", "--patients", "1500", "--seed", "3", "--specialization", specialization, "--out"])
            .arg(&dir)
            .assert()
            .success();
        let json = tmp.path().join(format!("relink{specialization}.json"));
        let run = tmp.path().join("RUN");
        linkrisk()
            .arg("relink")
            .arg(&dir)
            .args([
                "--pools",
                "10,100,full",
                "--hard-negatives",
                "--trials",
                "5",
                "--bootstrap",
                "0",
                "--json",
            ])
            .arg(&json)
            .arg("--out")
            .arg(&run)
            .assert()
            .success();
        let v: Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
        let pool = |size: u64, kind: &str| {
            v["pools"]
                .as_array()
                .unwrap()
                .iter()
                .find(|p| p["pool_size"] == size && p["kind"] == kind)
                .unwrap_or_else(|| panic!("no {kind} pool of {size} in {v}"))
                .clone()
        };
        for size in [10, 100] {
            let (random, matched) = (pool(size, "random"), pool(size, "pathology_matched"));
            let (r, m) = (random["recall_at_1"].as_f64().unwrap(), matched["recall_at_1"].as_f64().unwrap());
            let chance = matched["chance_at_1"].as_f64().unwrap();
            assert!(m < r, "s={specialization} N={size}: matched {m} < random {r}");
            assert!(m > 2.0 * chance, "s={specialization} N={size}: matched {m} well above chance {chance}");
        }
        let lift = |size| pool(size, "random")["lift_at_1"].as_f64().unwrap();
        assert!(lift(100) > lift(10), "lift grows with the pool: {} vs {}", lift(100), lift(10));
        full.push(v["full"]["recall_at_1"].as_f64().unwrap());
        let recorded = linkrisk::report::run::read_run_file(&run).unwrap();
        assert!(
            recorded.runs.iter().any(|e| e.audit["full"]["recall_at_1"] == v["full"]["recall_at_1"]),
            "--out RUN recorded the audit"
        );
    }
    assert!(full[1] > 2.0 * full[0], "Recall@1 rises with specialization: {full:?}");
}

#[test]
fn attack_side_audited_cross_fits_even_with_a_train_split() {
    let dir = tempfile::tempdir().unwrap();
    let c = dir.path().join("cohort");
    let path = c.to_str().unwrap();
    crate::util::run_ok([
        "synth",
        "--out",
        path,
        "--patients",
        "300",
        "--dim",
        "16",
        "--feature-dim",
        "8",
        "--external-patients",
        "0",
    ]);
    let json = |extra: &[&str]| -> Value {
        let mut args =
            vec!["relink", path, "--bootstrap", "0", "--trials", "2", "--pools", "10", "--json", "-"];
        args.extend_from_slice(extra);
        serde_json::from_str(&crate::util::run_ok(args).stdout).unwrap()
    };
    let split = json(&["--attack", "inverted_softmax"]);
    assert_eq!(split["side"]["source"], "split train");
    assert!(split["side"].get("folds").is_none());
    let audited = json(&["--attack", "inverted_softmax", "--attack-side", "audited", "--side-folds", "3"]);
    assert_eq!(audited["side"]["source"], "cross_fit");
    assert_eq!(audited["side"]["folds"], 3);
    let sizes: u64 =
        audited["side"]["fold_sizes"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap()).sum();
    assert_eq!(sizes, audited["n_queries"].as_u64().unwrap(), "every query in one fold");
    // The cosine audit itself does not depend on where the side data came from.
    assert_eq!(split["full"], audited["full"]);
    // The default (cosine only) prepares no cross-fitting on a test-only cohort.
    let metadata = std::fs::read_to_string(c.join("metadata.csv")).unwrap().replace(",train,", ",test,");
    std::fs::write(c.join("metadata.csv"), metadata).unwrap();
    let plain = json(&[]);
    assert!(plain["side"].is_null() && plain["skipped_attacks"] == serde_json::json!([]));
}
