//! `linkrisk inspect`: the table and the JSON agree with counts worked out by hand from how
//! `SmallCohort` builds its metadata (see util.rs).

use std::path::Path;

use serde_json::Value;

use crate::util::*;

fn json(dir: &Path) -> Value {
    let out = run_ok([Path::new("inspect"), dir, Path::new("--json")]);
    serde_json::from_str(&out.stdout).expect("stdout is JSON only")
}

#[test]
fn json_counts_match_the_construction() {
    // 10 records, 2 per patient: p0..p4; p0, p2, p4 in train, p1, p3 in test.
    let dir = SmallCohort::new(10).write_temp();
    let s = json(dir.path());
    assert_eq!(s["records"], 10);
    assert_eq!(s["patients"], 5);
    assert_eq!(s["studies"], 10);
    let spp = &s["studies_per_patient"];
    assert_eq!(
        (spp["min"].as_u64(), spp["median"].as_f64(), spp["max"].as_u64()),
        (Some(2), Some(2.0), Some(2))
    );
    let hist: Vec<(String, u64)> = spp["histogram"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| (b["label"].as_str().unwrap().to_string(), b["patients"].as_u64().unwrap()))
        .collect();
    assert_eq!(hist, [("1".to_string(), 0), ("2".to_string(), 5)]);
    let views = s["views"].as_array().unwrap();
    assert_eq!(views[0]["name"], "image");
    assert_eq!(views[0]["shape"], serde_json::json!([10, 8]));
    assert_eq!(views[0]["dtype"], "float32");
    assert_eq!(views[1]["name"], "report");
    assert_eq!(views[1]["shape"], serde_json::json!([10, 6]));
    let splits: Vec<(String, u64, u64)> = s["splits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| {
            (
                x["name"].as_str().unwrap().into(),
                x["records"].as_u64().unwrap(),
                x["patients"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(splits, [("train".into(), 6, 3), ("test".into(), 4, 2)]);
    assert_eq!(s["shared_patients"], serde_json::json!([]));
    assert_eq!(s["warnings"], serde_json::json!([]));
    // Finding k of record i is ["1", "0", "-1", ""][(i + k) % 4]: for "No Finding" (k = 0)
    // records 0,4,8 are positive, 1,5,9 negative, 2,6 uncertain, 3,7 blank.
    let nf = &s["findings"][0];
    assert_eq!(nf["finding"], "No Finding");
    assert_eq!(
        (nf["positive"].as_u64(), nf["negative"].as_u64(), nf["uncertain"].as_u64(), nf["blank"].as_u64()),
        (Some(3), Some(3), Some(2), Some(2))
    );
    assert!((nf["prevalence"].as_f64().unwrap() - 0.3).abs() < 1e-12);
    let demo = &s["demographics"];
    assert_eq!(
        demo["sex"]["counts"],
        serde_json::json!([{"value": "F", "records": 6}, {"value": "M", "records": 4}])
    );
    assert_eq!(demo["sex"]["missing"], 0);
    assert_eq!(
        demo["race"]["counts"],
        serde_json::json!([{"value": "Black", "records": 4}, {"value": "White", "records": 4}, {"value": "Asian", "records": 2}])
    );
    // Ages 40 + i for records 0-3 and 5-8; records 4 and 9 blank.
    let age = &demo["age"];
    assert_eq!(
        (age["min"].as_f64(), age["max"].as_f64(), age["mean"].as_f64()),
        (Some(40.0), Some(48.0), Some(44.0))
    );
    assert_eq!((age["present"].as_u64(), age["missing"].as_u64()), (Some(8), Some(2)));
}

#[test]
fn table_on_stdout_and_json_to_a_file() {
    let dir = SmallCohort::new(10).write_temp();
    let out_dir = temp_dir();
    let json_path = out_dir.path().join("summary.json");
    let out = run_ok([Path::new("inspect"), dir.path(), Path::new("--json"), &json_path]);
    for needle in
        ["records               10", "patients              5", "image     10    8  float32", "No Finding"]
    {
        assert!(out.stdout.contains(needle), "table lacks {needle:?}:\n{}", out.stdout);
    }
    assert!(out.stdout.contains("train        6         3"), "{}", out.stdout);
    let written: Value = serde_json::from_str(&std::fs::read_to_string(&json_path).unwrap()).unwrap();
    assert_eq!(written, json(dir.path()), "--json FILE and --json write the same summary");
    let dash = run_ok([Path::new("inspect"), dir.path(), Path::new("--json"), Path::new("-")]);
    assert_eq!(serde_json::from_str::<Value>(&dash.stdout).unwrap(), written);
}

#[test]
fn patients_shared_between_splits_warn() {
    let cohort = SmallCohort::new(10);
    let dir = cohort.write_temp();
    // Record r1 (patient p0, otherwise train) moves to test.
    let csv = cohort.csv().replacen("r1,p0,s1,train", "r1,p0,s1,test", 1);
    write_file(dir.path(), "metadata.csv", csv);
    let s = json(dir.path());
    assert_eq!(s["shared_patients"], serde_json::json!([{"splits": ["train", "test"], "patients": 1}]));
    assert_eq!(s["patients_in_several_splits"], 1);
    assert!(s["warnings"][0].as_str().unwrap().contains("patient-level leakage"));
    let table = run_ok([Path::new("inspect"), dir.path()]).stdout;
    assert!(table.contains("patients in both train and test: 1"), "{table}");
    assert!(table.contains("warning: 1 patients have records in more than one split"), "{table}");
}

#[test]
fn manifest_cohort_from_committed_fixtures() {
    let dir = fixture("cohort");
    let out = run_ok([Path::new("inspect"), &dir]);
    for needle in [
        "manifest              cohort.toml",
        "img.safetensors:embeddings",
        "text.npz:report",
        "float16",
        "row order checked     text.npz:ids",
        "ignored files         README.txt",
    ] {
        assert!(out.stdout.contains(needle), "table lacks {needle:?}:\n{}", out.stdout);
    }
    let s = json(&dir);
    let splits: Vec<&str> =
        s["splits"].as_array().unwrap().iter().map(|x| x["name"].as_str().unwrap()).collect();
    assert_eq!(splits, ["train", "test"]);
}
