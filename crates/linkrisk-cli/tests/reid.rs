//! `linkrisk reid` end to end: exact figures on a hand-made cohort, the trained attacker on
//! a synthetic one, the per-record flags feeding `linkrisk attributes`, the run directory
//! feeding `linkrisk report`, and error messages.

use std::path::Path;

use predicates::prelude::PredicateBooleanExt;
use predicates::str::contains;
use serde_json::Value;

use crate::util::{linkrisk, npy_f32, run_err, run_ok, write_file};

/// Five test records in the plane: patients A and B with two studies each, C with one.
/// Cosines (rows are unit vectors): a1.a2 = 0.8, a2.b1 = 0.96, b1.b2 = 0.8, a1.b1 = 0.6,
/// a2.b2 = 0.6, a1.b2 = 0, c1 = -a1. So a1 and b2 find their own patient first, a2 and b1
/// find each other (rank 2 for their positive): Rank-1 = 2/4, CMC@5 = 1,
/// mAP = (1 + 1/2 + 1/2 + 1)/4 = 0.75. Verification over all pairs: the 4 positive pairs
/// score 0.8, and 10 of the 12 negative pairs score below 0.8 (two score 0.96):
/// AUROC = 10/12.
fn write_plane_cohort(dir: &Path) {
    let metadata = "id,patient_id,study_id,split\n\
                    a1,A,s1,test\na2,A,s2,test\nb1,B,s3,test\nb2,B,s4,test\nc1,C,s5,test\n";
    write_file(dir, "metadata.csv", metadata);
    let rows = [1.0, 0.0, 0.8, 0.6, 0.6, 0.8, 0.0, 1.0, -1.0, 0.0];
    write_file(dir, "image.npy", npy_f32(5, 2, &rows));
}

fn json_file(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn close(value: &Value, want: f64) -> bool {
    (value.as_f64().unwrap() - want).abs() < 1e-9
}

#[test]
fn exact_figures_on_a_hand_made_cohort() {
    let dir = tempfile::tempdir().unwrap();
    let cohort = dir.path().join("cohort");
    write_plane_cohort(&cohort);
    let out = run_ok([
        "reid",
        cohort.to_str().unwrap(),
        "--attacker",
        "none",
        "--bootstrap",
        "200",
        "--negatives-per-query",
        "100",
        "--json",
        "-",
    ]);
    let report: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(report["audit"], "reid");
    assert_eq!(report["view"], "image");
    assert_eq!(report["attacker"], "nearest-neighbour");
    assert_eq!(report["n_queries"], 4);
    assert_eq!(report["n_gallery"], 4);
    assert!(close(&report["rank_1"], 0.5));
    // Wilson interval of 2/4: statsmodels 0.15.0 proportion_confint(2, 4, method="wilson").
    assert!(close(&report["ci95_rank_1"][0], 0.15003898915214947), "{}", report["ci95_rank_1"]);
    assert!(close(&report["ci95_rank_1"][1], 0.8499610108478506));
    for (k, want) in [("1", 0.5), ("5", 1.0), ("10", 1.0), ("20", 1.0)] {
        assert!(close(&report["cmc"][k], want), "CMC@{k}: {}", report["cmc"][k]);
    }
    assert!(close(&report["map"], 0.75));
    assert!(close(&report["verification_auroc"], 10.0 / 12.0));
    assert_eq!(report["verification_pairs"]["n_positive"], 4);
    assert_eq!(report["verification_pairs"]["n_negative"], 12);
    let roc = &report["verification_roc"];
    assert_eq!(roc["fpr"].as_array().unwrap().len(), roc["tpr"].as_array().unwrap().len());
    assert_eq!(roc["fpr"][0], 0.0);
    assert_eq!(roc["tpr"].as_array().unwrap().last().unwrap(), 1.0);
    let x = &report["exclusions"];
    assert_eq!(
        (x["records_not_queried"].as_u64(), x["patients_with_one_study"].as_u64()),
        (Some(1), Some(1))
    );
    assert_eq!(x["excluded_own_record"], 4);
    assert_eq!(report["attackers"].as_array().unwrap().len(), 1);
    assert!(report["linear_metric"].is_null());
    // Bootstrap by patient: two patients, so each replicate is 0, 1/2 or 1.
    let boot = report["bootstrap_ci95_rank_1"].as_array().unwrap();
    assert!(boot[0].as_f64().unwrap() <= 0.5 && boot[1].as_f64().unwrap() >= 0.5);

    // The table names the figures.
    linkrisk().args(["reid", cohort.to_str().unwrap(), "--attacker", "none"]).assert().success().stdout(
        contains("Rank-1").and(contains("50.00%")).and(contains("4 queries")).and(contains("CMC@20")),
    );
}

#[test]
fn same_study_records_and_the_auto_attacker() {
    let dir = tempfile::tempdir().unwrap();
    let cohort = dir.path().join("cohort");
    write_plane_cohort(&cohort);
    // Without a train split, `auto` (the default) runs nearest neighbour and says why.
    let out = run_ok(["reid", cohort.to_str().unwrap(), "--json", "-", "--bootstrap", "0"]);
    let report: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(report["attacker"], "nearest-neighbour");
    assert!(
        report["linear_metric_skipped"].as_str().unwrap().contains("train"),
        "{}",
        report["linear_metric_skipped"]
    );
    assert!(report["ci95_map"].is_null());
    // Study ids shared within a patient: those records are excluded (and counted) by
    // default, positives with --include-same-study.
    let metadata = "id,patient_id,study_id,split\n\
                    a1,A,s1,test\na2,A,s1,test\nb1,B,s3,test\nb2,B,s4,test\nc1,C,s5,test\n";
    write_file(&cohort, "metadata.csv", metadata);
    let out = run_ok(["reid", cohort.to_str().unwrap(), "--attacker", "none", "--json", "-"]);
    let report: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(report["n_queries"], 2, "only B's records have another study");
    assert_eq!(report["exclusions"]["excluded_same_study"], 0);
    assert_eq!(report["exclusions"]["records_not_queried"], 3);
    let out = run_ok([
        "reid",
        cohort.to_str().unwrap(),
        "--attacker",
        "none",
        "--include-same-study",
        "--json",
        "-",
    ]);
    let report: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(report["n_queries"], 4);
    assert_eq!(report["same_study"], "positive");
    assert_eq!(report["exclusions"]["same_study_positives"], 2);
    assert!(close(&report["rank_1"], 0.5));
}

#[test]
fn reid_errors_name_the_flag_and_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let cohort = dir.path().join("cohort");
    write_plane_cohort(&cohort);
    let path = cohort.to_str().unwrap();
    run_err(["reid", path, "--view", "report"], &["no view named `report`"]);
    run_err(["reid", path, "--attacker", "linear-metric"], &["train"]);
    run_err(
        ["reid", path, "--attacker", "linear-metric", "--train-split", "test"],
        &["--train-split test", "--attacker none"],
    );
    run_err(["reid", path, "--negatives-per-query", "0"], &["--negatives-per-query"]);
    run_err(["reid", path, "--bootstrap", "1"], &["--bootstrap must be 0 (off) or at least 2"]);
    let metadata = "id,patient_id,study_id,split\na1,A,s1,test\nb1,B,s3,test\nb2,B,s3,test\nc1,C,s5,test\nd1,D,s6,test\n";
    write_file(&cohort, "metadata.csv", metadata);
    run_err(["reid", path, "--attacker", "none"], &["--split test", "no patient has two or more studies"]);
    let out = crate::util::run(["reid", path, "--attacker", "nearest"]);
    assert_eq!(out.code, 2);
    assert!(out.stderr.contains("linear-metric") && out.stderr.contains("none"), "{}", out.stderr);
}

#[test]
fn trained_attacker_per_record_flags_attributes_and_report() {
    let dir = tempfile::tempdir().unwrap();
    let cohort = dir.path().join("cohort");
    let c = cohort.to_str().unwrap();
    run_ok([
        "synth",
        "--out",
        c,
        "--patients",
        "400",
        "--dim",
        "32",
        "--feature-dim",
        "32",
        "--external-patients",
        "0",
    ]);
    let run_dir = dir.path().join("run");
    let flags = dir.path().join("flags.csv");
    let json = dir.path().join("reid.json");
    let out = run_ok([
        "reid",
        c,
        "--attacker",
        "linear-metric",
        "--bootstrap",
        "100",
        "--out",
        run_dir.to_str().unwrap(),
        "--per-record",
        flags.to_str().unwrap(),
        "--json",
        json.to_str().unwrap(),
    ]);
    assert!(out.stdout.contains("headline (strongest): linear-metric"), "{}", out.stdout);
    let report = json_file(&json);
    let attackers = report["attackers"].as_array().unwrap();
    assert_eq!(attackers.len(), 2);
    assert_eq!(
        (attackers[0]["attacker"].as_str(), attackers[1]["attacker"].as_str()),
        (Some("nearest-neighbour"), Some("linear-metric"))
    );
    let (raw, trained) = (attackers[0]["rank_1"].as_f64().unwrap(), attackers[1]["rank_1"].as_f64().unwrap());
    assert!(trained > raw + 0.2, "trained {trained} vs raw {raw}");
    assert_eq!(report["attacker"], "linear-metric");
    assert_eq!(report["rank_1"], attackers[1]["rank_1"]);
    assert_eq!(report["linear_metric"]["train_split"], "train");
    assert_eq!(report["linear_metric"]["train_records_overlapping_patients"], 0);

    // Per-record flags: one row per query, the headline's flag, readable by `attributes`.
    let text = std::fs::read_to_string(&flags).unwrap();
    let mut lines = text.lines();
    assert_eq!(
        lines.next().unwrap(),
        "id,reidentified,rank_1_probability,reidentified_nearest_neighbour,reidentified_linear_metric"
    );
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    assert_eq!(rows.len() as u64, report["n_queries"].as_u64().unwrap());
    let flagged = rows.iter().filter(|r| r[1] == "true").count();
    assert_eq!(flagged as u64, report["n_reidentified"].as_u64().unwrap());
    assert!(rows.iter().all(|r| r[1] == r[4]), "headline flags are the linear metric's");
    let attrs_file = dir.path().join("attrs_file.json");
    run_ok([
        "attributes",
        c,
        "--reidentified",
        flags.to_str().unwrap(),
        "--json",
        attrs_file.to_str().unwrap(),
    ]);
    let from_file = json_file(&attrs_file);
    assert_eq!(from_file["reidentification"]["n_reidentified"].as_u64().unwrap(), flagged as u64);
    assert_eq!(from_file["reidentification_source"]["kind"], "file");

    // The same analysis in one command: identical flags and AUROCs.
    let attrs_reid = dir.path().join("attrs_reid.json");
    run_ok([
        "attributes",
        c,
        "--stratify-by-reid",
        "--reid-attacker",
        "linear-metric",
        "--json",
        attrs_reid.to_str().unwrap(),
    ]);
    let by_reid = json_file(&attrs_reid);
    assert_eq!(by_reid["reidentification"], from_file["reidentification"]);
    assert_eq!(by_reid["attributes"], from_file["attributes"]);
    assert_eq!(by_reid["reidentification_source"]["kind"], "reid_audit");
    assert_eq!(by_reid["reidentification_source"]["attacker"], "linear-metric");
    assert_eq!(by_reid["reidentification_source"]["rank_1"], report["rank_1"]);
    run_err(
        ["attributes", c, "--stratify-by-reid", "--reidentified", flags.to_str().unwrap()],
        &["--reidentified", "--stratify-by-reid"],
    );

    // The run directory holds one entry per attacker, labelled with the cohort directory's
    // name; the report shows both side by side.
    let run_file = json_file(&run_dir.join("run.json"));
    let keys: Vec<&str> =
        run_file["runs"].as_array().unwrap().iter().map(|r| r["key"].as_str().unwrap()).collect();
    assert_eq!(keys, ["reid:image@test+nearest-neighbour#cohort", "reid:image@test+linear-metric#cohort"]);
    let fingerprint = linkrisk::shard::cohort_fingerprint(&cohort).unwrap();
    assert!(run_file["runs"]
        .as_array()
        .unwrap()
        .iter()
        .all(|r| r["label"] == "cohort" && r["cohort_fingerprint"] == fingerprint.as_str()));
    run_ok(["report", run_dir.to_str().unwrap(), "--md"]);
    let md = std::fs::read_to_string(run_dir.join("report.md")).unwrap();
    // One row per model and attacker, Rank-1 in its column.
    let header = md.lines().find(|l| l.starts_with("| Model | Attacker |")).unwrap_or_else(|| panic!("{md}"));
    let rank_1 = header.split(" | ").position(|c| c == "Rank-1").unwrap();
    for (attacker, value) in [("nearest neighbour", raw), ("linear-metric", trained)] {
        let row =
            md.lines().find(|l| l.contains(&format!(" | {attacker} | "))).unwrap_or_else(|| panic!("{md}"));
        assert_eq!(row.split(" | ").nth(rank_1), Some(linkrisk::report::fmt::pct(value).as_str()), "{row}");
    }
    // The gate checks both attackers.
    let threshold = format!("{}", (raw + trained) / 2.0);
    let out = crate::util::run(["gate", run_dir.to_str().unwrap(), "--max-reid-rank1", &threshold]);
    assert_eq!(out.code, 1, "{}\n{}", out.stdout, out.stderr);
}

#[test]
fn test_only_cohort_cross_fits_the_trained_attacker() {
    let dir = tempfile::tempdir().unwrap();
    let cohort = dir.path().join("cohort");
    let c = cohort.to_str().unwrap();
    run_ok([
        "synth",
        "--out",
        c,
        "--patients",
        "300",
        "--dim",
        "32",
        "--feature-dim",
        "8",
        "--external-patients",
        "0",
    ]);
    let metadata = std::fs::read_to_string(cohort.join("metadata.csv")).unwrap().replace(",train,", ",test,");
    std::fs::write(cohort.join("metadata.csv"), metadata).unwrap();
    let out = run_ok(["reid", c, "--attacker", "linear-metric", "--bootstrap", "0", "--json", "-"]);
    let report: Value = serde_json::from_str(&out.stdout).unwrap();
    let attackers = report["attackers"].as_array().unwrap();
    let (raw, trained) = (attackers[0]["rank_1"].as_f64().unwrap(), attackers[1]["rank_1"].as_f64().unwrap());
    assert!(trained > raw + 0.05, "cross-fitted trained {trained} vs raw {raw}");
    assert_eq!(report["attacker"], "linear-metric");
    assert_eq!(report["linear_metric"]["side"]["source"], "cross_fit");
    assert_eq!(report["linear_metric"]["side"]["folds"], 5);
    assert_eq!(report["linear_metric"]["folds"].as_array().unwrap().len(), 5);
    assert_eq!(report["skipped_attacks"], serde_json::json!([]));
    assert!(report["linear_metric_skipped"].is_null());
    // The train split only (`--attack-side split`, or `--train-split` named): an error here.
    run_err(["reid", c, "--attacker", "linear-metric", "--attack-side", "split"], &["--train-split train"]);
    run_err(["reid", c, "--attacker", "linear-metric", "--train-split", "train"], &["--train-split train"]);
    // Under auto with the split only, the skip is listed in `skipped_attacks`.
    let out = run_ok(["reid", c, "--attack-side", "split", "--bootstrap", "0", "--json", "-"]);
    let report: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(report["skipped_attacks"][0]["name"], "linear-metric");
    run_err(["reid", c, "--side-folds", "1"], &["--side-folds", "1 is not in 2..=255"]);
}
