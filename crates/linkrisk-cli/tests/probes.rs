//! `linkrisk utility` and `linkrisk attributes` end to end.

use predicates::prelude::PredicateBooleanExt;
use predicates::str::contains;
use serde_json::Value;

use crate::util::{linkrisk, write_probe_cohort};

#[test]
fn utility_writes_the_report_keys() {
    let dir = tempfile::tempdir().unwrap();
    let cohort = dir.path().join("cohort");
    write_probe_cohort(&cohort, 200, 16, 1);
    let out = dir.path().join("utility.json");
    linkrisk()
        .args(["utility", cohort.to_str().unwrap(), "--json", out.to_str().unwrap()])
        .assert()
        .success()
        .stdout(
            contains("macro AUROC").and(contains("Fracture")).and(contains("skipped: no positive records")),
        );
    let report: Value = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    assert_eq!(report["audit"], "utility");
    assert_eq!(report["view"], "image");
    let macro_auroc = report["macro_auroc"].as_f64().unwrap();
    assert!(macro_auroc > 0.75, "{macro_auroc}");
    let per_finding = report["per_finding"].as_object().unwrap();
    assert_eq!(per_finding.len(), 13);
    assert!(per_finding["Cardiomegaly"].as_f64().unwrap() > 0.6);
    let ci = report["ci95_per_finding"]["Cardiomegaly"].as_array().unwrap();
    assert!(ci[0].as_f64().unwrap() < ci[1].as_f64().unwrap());
    assert_eq!(report["skipped"][0]["finding"], "Fracture");
    assert!(report["lambda_per_finding"]["Edema"].as_f64().unwrap() > 0.0);
    assert!(report["findings"][0]["sklearn_c"].as_f64().unwrap() > 0.0);
    assert!(report["findings"][0]["n_eval_positive"].as_u64().unwrap() > 0);
    assert_eq!(report["label_policy"]["uncertain"], "exclude");
    assert_eq!(report["probe"]["n_folds"], 5);

    // --json - prints only the JSON
    let output = linkrisk().args(["utility", cohort.to_str().unwrap(), "--json", "-"]).output().unwrap();
    assert!(output.status.success());
    let stdout: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(stdout["macro_auroc"], report["macro_auroc"], "deterministic");
}

#[test]
fn utility_errors_name_the_problem() {
    let dir = tempfile::tempdir().unwrap();
    let cohort = dir.path().join("cohort");
    write_probe_cohort(&cohort, 30, 4, 2);
    let path = cohort.to_str().unwrap();
    linkrisk()
        .args(["utility", path, "--view", "report"])
        .assert()
        .code(2)
        .stderr(contains("no view named `report`"));
    linkrisk()
        .args(["utility", path, "--train-split", "training"])
        .assert()
        .code(2)
        .stderr(contains("--train-split training").and(contains("splits are: train, test")));
    linkrisk()
        .args(["utility", path, "--eval-split", "train", "--attack-side", "split"])
        .assert()
        .code(2)
        .stderr(contains("both `train`"));
    linkrisk()
        .args(["utility", path, "--folds", "1"])
        .assert()
        .code(2)
        .stderr(contains("--folds").and(contains("1 is not in 2..=255")));
    // no finding columns
    let metadata = std::fs::read_to_string(cohort.join("metadata.csv")).unwrap();
    let stripped: String = metadata
        .lines()
        .map(|line| {
            let cells: Vec<&str> = line.split(',').collect();
            // id, patient_id, study_id, split, 14 findings, sex, age
            let mut kept = cells[..4].to_vec();
            kept.extend(&cells[18..]);
            kept.join(",") + "\n"
        })
        .collect();
    std::fs::write(cohort.join("metadata.csv"), stripped).unwrap();
    linkrisk().args(["utility", path]).assert().code(2).stderr(contains("no finding columns"));
}

#[test]
fn attributes_with_reidentified_flags() {
    let dir = tempfile::tempdir().unwrap();
    let cohort = dir.path().join("cohort");
    let ids = write_probe_cohort(&cohort, 200, 16, 3);
    // flag every other test record as re-identified (ids of patients p % 10 >= 7)
    let mut flags = String::from("id,reidentified\n");
    for (k, id) in ids.iter().enumerate() {
        let patient: usize = id[1..id.find('_').unwrap()].parse().unwrap();
        if patient % 10 >= 7 {
            flags.push_str(&format!("{id},{}\n", if k % 4 < 2 { "true" } else { "false" }));
        }
    }
    let flags_path = dir.path().join("reid.csv");
    std::fs::write(&flags_path, flags).unwrap();
    let out = dir.path().join("attributes.json");
    linkrisk()
        .args([
            "attributes",
            cohort.to_str().unwrap(),
            "--targets",
            "sex,age,race",
            "--reidentified",
            flags_path.to_str().unwrap(),
            "--json",
            out.to_str().unwrap(),
        ])
        .assert()
        .success()
        .stdout(contains("re-identified").and(contains("race  skipped: metadata.csv has no `race` column")));
    let report: Value = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    assert_eq!(report["audit"], "attributes");
    let sex = &report["attributes"]["sex"];
    assert!(sex["auroc"].as_f64().unwrap() > 0.8, "{sex}");
    assert_eq!(sex["definition"], "sex = F (vs M)");
    let stratified = &sex["stratified"];
    assert!(stratified["reidentified"]["auroc"].is_number());
    assert!(stratified["not_reidentified"]["auroc"].is_number());
    assert!(stratified["difference"]["p_value"].as_f64().unwrap() > 0.0);
    let age = &report["attributes"]["age"];
    assert_eq!(age["threshold_years"], 65.0);
    assert!(age["n_train_missing"].as_u64().unwrap() > 0, "records without age are counted");
    assert_eq!(report["reidentification"]["n_without_flag"], 0);
    assert_eq!(report["skipped"][0]["attribute"], "race");

    // an id the cohort does not have
    std::fs::write(&flags_path, "id,reidentified\nr0_0,true\nnobody,false\n").unwrap();
    linkrisk()
        .args(["attributes", cohort.to_str().unwrap(), "--reidentified", flags_path.to_str().unwrap()])
        .assert()
        .code(2)
        .stderr(contains("row 3").and(contains("`nobody`")));
    linkrisk()
        .args(["attributes", cohort.to_str().unwrap(), "--targets", "sex,height"])
        .assert()
        .code(2)
        .stderr(contains("unknown attribute `height`"));
    linkrisk()
        .args(["attributes", cohort.to_str().unwrap(), "--age-threshold", "old"])
        .assert()
        .code(2)
        .stderr(contains("--age-threshold old"));
}

/// Put every record of the cohort at `dir` in the `test` split.
fn test_only(dir: &std::path::Path) {
    let metadata = std::fs::read_to_string(dir.join("metadata.csv")).unwrap().replace(",train,", ",test,");
    std::fs::write(dir.join("metadata.csv"), metadata).unwrap();
}

#[test]
fn test_only_cohort_gets_cross_fitted_utility_and_attributes() {
    let dir = tempfile::tempdir().unwrap();
    let cohort = dir.path().join("cohort");
    write_probe_cohort(&cohort, 250, 16, 4);
    let path = cohort.to_str().unwrap();
    let json = |args: &[&str]| -> Value {
        let out = linkrisk().args(args).args(["--json", "-"]).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let with_train = json(&["utility", path]);
    assert_eq!(with_train["side"], serde_json::json!({"source": "split train"}));
    test_only(&cohort);
    let utility = json(&["utility", path]);
    assert_eq!(utility["side"]["source"], "cross_fit");
    assert_eq!(utility["side"]["folds"], 5);
    assert_eq!(utility["train_split"], "test");
    let macro_auroc = utility["macro_auroc"].as_f64().unwrap();
    assert!(macro_auroc > 0.75, "cross-fitted macro AUROC {macro_auroc}");
    assert_eq!(utility["findings"][0]["folds"].as_array().unwrap().len(), 5);
    let attributes = json(&["attributes", path, "--targets", "sex", "--side-folds", "4"]);
    assert_eq!(attributes["side"]["folds"], 4);
    let sex = attributes["per_attribute"]["sex"].as_f64().unwrap();
    assert!(sex > 0.75, "cross-fitted sex AUROC {sex}");
    // Named train split, or `--attack-side split`: it must exist.
    linkrisk()
        .args(["utility", path, "--train-split", "train"])
        .assert()
        .code(2)
        .stderr(contains("--train-split train"));
    linkrisk()
        .args(["attributes", path, "--attack-side", "split"])
        .assert()
        .code(2)
        .stderr(contains("--train-split train"));
    linkrisk()
        .args(["utility", path, "--side-folds", "1"])
        .assert()
        .code(2)
        .stderr(contains("--side-folds").and(contains("1 is not in 2..=255")));
    let out = linkrisk().args(["utility", path]).output().unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("cross-fitted in 5 patient-grouped folds"));
}
