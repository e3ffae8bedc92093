//! `linkrisk mitigate`: the privacy-utility frontier on a small synthetic cohort, recorded
//! in the run directory and drawn by `linkrisk report`; bad flags are named.

use linkrisk::report::fmt::pct;
use serde_json::Value;

use crate::util::{linkrisk, run_err, temp_dir};

/// Recall@1 of a subset's random pool of `pool_size`.
fn recall_at_1(subset: &Value, pool_size: u64) -> f64 {
    subset["pools"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["pool_size"] == pool_size && p["kind"] == "random")
        .unwrap_or_else(|| panic!("no random pool of {pool_size}: {subset}"))["recall_at_1"]
        .as_f64()
        .unwrap()
}

#[test]
fn frontier_is_written_recorded_and_reported() {
    let tmp = temp_dir();
    let cohort = tmp.path().join("cohort");
    linkrisk()
        .args(["synth", "--out"])
        .arg(&cohort)
        .args(["--patients", "600", "--external-patients", "200", "--dim", "64", "--feature-dim", "256"])
        .args(["--seed", "11"])
        .assert()
        .success();
    let run = tmp.path().join("run");
    let output = linkrisk()
        .arg("mitigate")
        .arg(&cohort)
        .args(["--epsilons", "0.5,inf", "--delta", "1e-4", "--epochs", "30", "--public-epochs", "150"])
        .args(["--dim", "64", "--pools", "100,10000", "--trials", "2", "--bootstrap", "0", "--no-baseline"])
        .args(["--json", "-", "--out"])
        .arg(&run)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    // stdout holds the table, then the JSON document.
    let stdout = String::from_utf8(output.stdout).unwrap();
    let start = stdout.find("{\n").unwrap_or_else(|| panic!("no JSON in stdout: {stdout}"));
    let table = &stdout[..start];
    let json: Value = serde_json::from_str(&stdout[start..]).unwrap();

    assert!(
        table.contains("heads start from a warm start on 25% of the members' patients set aside as public"),
        "{table}"
    );
    assert!(table.contains("eps 0.5") && table.contains("non-private"), "{table}");
    assert_eq!(json["audit"], "mitigate");
    assert_eq!(json["init"]["kind"], "public_fraction");
    let points = json["points"].as_array().unwrap();
    assert_eq!(points.len(), 2);
    assert_eq!(points[0]["epsilon"], 0.5);
    assert!(points[1]["epsilon"].is_null());
    let spent = points[0]["privacy"]["epsilon"].as_f64().unwrap();
    assert!(spent <= 0.5 + 1e-6 && spent > 0.4, "{spent}");

    for subset in ["members", "held_out", "external"] {
        let (private, non_private) = (&points[0]["relink"][subset], &points[1]["relink"][subset]);
        // Every subset has fewer than 10,000 records: that pool is skipped and said so,
        // and the reduction is measured at N = 100.
        let skipped = private["skipped_pools"].as_array().unwrap();
        assert!(
            skipped.iter().any(|p| p["pool_size"] == 10000 && p["kind"] == "random"),
            "{subset}: {skipped:?}"
        );
        assert!(skipped.iter().any(|p| p["pool_size"] == 10000 && p["kind"] == "pathology_matched"));
        assert_eq!(private["reduction_pool_size"], 100);
        let kinds: Vec<&str> =
            private["pools"].as_array().unwrap().iter().map(|p| p["kind"].as_str().unwrap()).collect();
        assert_eq!(kinds, ["random", "pathology_matched"], "{subset}");
        assert!(private["full"]["recall_at_1"].is_f64());
        // Private heads link much less than non-private ones.
        let (before, after) = (recall_at_1(non_private, 100), recall_at_1(private, 100));
        assert!(before > 0.15, "{subset}: non-private R@1 {before}");
        let reduction = private["relative_reduction"].as_f64().unwrap();
        assert!((reduction - (1.0 - after / before)).abs() < 1e-12, "{subset}");
        assert!(reduction > 0.5, "{subset}: R@1 {before} -> {after}");
        assert!(non_private["relative_reduction"].is_null());
    }
    // Utility of the image embedding holds within a few points.
    let utility = |p: &Value, key: &str| p["utility"][key].as_f64().unwrap();
    assert!(utility(&points[0], "macro_auroc") > utility(&points[1], "macro_auroc") - 0.05);
    assert!(utility(&points[0], "external_macro_auroc") > utility(&points[1], "external_macro_auroc") - 0.05);
    assert!(
        (utility(&points[0], "change_vs_non_private")
            - (utility(&points[0], "macro_auroc") - utility(&points[1], "macro_auroc")))
        .abs()
            < 1e-12
    );

    // Recorded in the run directory, and the report draws the frontier from it.
    let recorded: Value = serde_json::from_slice(&std::fs::read(run.join("run.json")).unwrap()).unwrap();
    let entry =
        recorded["runs"].as_array().unwrap().iter().find(|r| r["audit"]["audit"] == "mitigate").unwrap();
    assert_eq!(entry["audit"]["points"], json["points"]);
    linkrisk().arg("report").arg(&run).arg("--md").assert().success();
    let md = std::fs::read_to_string(run.join("report.md")).unwrap();
    assert!(md.contains("Mitigation: privacy–utility trade-off"), "{md}");
    assert!(md.contains("Recall@1 at N=100"), "{md}");
    let held_out_after = recall_at_1(&points[0]["relink"]["held_out"], 100);
    let reduction = points[0]["relink"]["held_out"]["relative_reduction"].as_f64().unwrap();
    for number in [pct(held_out_after), pct(reduction)] {
        assert!(md.contains(&number), "report lacks {number}:\n{md}");
    }
    assert!(md.contains("frontier"), "{md}");
}

#[test]
fn bad_flags_are_named() {
    let tmp = temp_dir();
    let dir = tmp.path().to_str().unwrap();
    run_err(["mitigate", dir, "--epsilons", "0.5,1"], &["--epsilons must include `inf`"]);
    run_err(["mitigate", dir, "--epsilons", "0.5,x,inf"], &["--epsilons", "`x`"]);
    run_err(["mitigate", dir, "--public-fraction", "1.5"], &["--public-fraction"]);
    run_err(["mitigate", dir, "--delta", "0"], &["--delta"]);
}
