//! `linkrisk mitigate`: the privacy-utility frontier on a small synthetic cohort, set
//! against the audited model, recorded in the run directory and drawn by `linkrisk report`;
//! exported heads applied with `linkrisk apply-heads` reproduce what the sweep evaluated and
//! re-audit to the same Recall@1; bad flags and overlapping warm-start splits are named.

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
    let exported = tmp.path().join("exported");
    let output = linkrisk()
        .arg("mitigate")
        .arg(&cohort)
        .args(["--epsilons", "0.34,inf", "--delta", "1e-4", "--epochs", "30", "--public-epochs", "150"])
        .args(["--dim", "64", "--pools", "100,10000", "--trials", "2", "--bootstrap", "0"])
        .args(["--write-heads", "--export-heads"])
        .arg(&exported)
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
    assert!(
        table.contains("eps 0.34") && table.contains("non-private") && table.contains("audited model"),
        "{table}"
    );
    assert!(table.contains("against the audited model"), "{table}");
    assert_eq!(json["audit"], "mitigate");
    assert_eq!(json["init"]["kind"], "public_fraction");
    let points = json["points"].as_array().unwrap();
    assert_eq!(points.len(), 2);
    assert_eq!(points[0]["epsilon"], 0.34);
    assert!(points[1]["epsilon"].is_null());
    let spent = points[0]["privacy"]["epsilon"].as_f64().unwrap();
    assert!(spent <= 0.34 + 1e-6 && spent > 0.3, "{spent}");

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
        // ...and against the audited model, whose row leads the subset's frontier table.
        let audited = recall_at_1(&json["baseline"]["relink"][subset], 100);
        let vs_audited = private["relative_reduction_vs_audited"].as_f64().unwrap();
        assert!((vs_audited - (1.0 - after / audited)).abs() < 1e-12, "{subset}");
        let rows = json["frontier"][subset]["rows"].as_array().unwrap();
        let heads: Vec<&str> = rows.iter().map(|r| r["heads"].as_str().unwrap()).collect();
        assert_eq!(heads, ["audited", "warm_start", "non_private", "dp"], "{subset}");
        assert_eq!(rows[0]["recall_at_1_at_pool"].as_f64().unwrap(), audited);
        assert_eq!(rows[3]["links_more_than_audited"], after > audited);
    }
    assert_eq!(json["headline"]["reference"], "audited");
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
    assert!(md.contains("audited model") && md.contains("public warm start"), "{md}");
    let held_out_after = recall_at_1(&points[0]["relink"]["held_out"], 100);
    let held_out_audited = recall_at_1(&json["baseline"]["relink"]["held_out"], 100);
    let vs_audited = points[0]["relink"]["held_out"]["relative_reduction_vs_audited"].as_f64().unwrap();
    let change =
        if vs_audited >= 0.0 { format!("−{}", pct(vs_audited)) } else { format!("+{}", pct(-vs_audited)) };
    for number in [pct(held_out_after), pct(held_out_audited), change] {
        assert!(md.contains(&number), "report lacks {number}:\n{md}");
    }
    // The summary names the audited model, and says so in words when DP heads link more.
    let summary = md.lines().find(|l| l.starts_with("Mitigation: differentially private")).unwrap();
    assert!(summary.contains(&pct(held_out_audited)) && summary.contains("audited model"), "{summary}");
    assert_eq!(
        summary.contains("link more than the audited model"),
        held_out_after > held_out_audited,
        "{summary}"
    );
    assert!(md.contains("frontier"), "{md}");

    // The exported heads, applied to the training cohort, reproduce bit for bit the
    // embeddings the sweep evaluated (the cohort --write-heads wrote) ...
    let applied = tmp.path().join("applied");
    linkrisk()
        .arg("apply-heads")
        .arg(exported.join("eps_0.34"))
        .arg(&cohort)
        .arg("--out")
        .arg(&applied)
        .assert()
        .success();
    for file in ["image.npy", "report.npy"] {
        assert_eq!(
            std::fs::read(run.join("heads/eps_0.34").join(file)).unwrap(),
            std::fs::read(applied.join(file)).unwrap(),
            "{file}"
        );
    }
    // ... the export and the applied cohort carry the point's ledger ...
    let read_json = |p: &std::path::Path| -> Value {
        serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
    };
    assert_eq!(read_json(&applied.join("privacy.json")), points[0]["privacy"]);
    assert_eq!(read_json(&exported.join("eps_0.34/privacy.json")), points[0]["privacy"]);
    let bytes = std::fs::read(exported.join("eps_0.34/heads.safetensors")).unwrap();
    let header_len = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header: Value = serde_json::from_slice(&bytes[8..8 + header_len]).unwrap();
    let ledger: Value = serde_json::from_str(header["__metadata__"]["privacy"].as_str().unwrap()).unwrap();
    assert_eq!(ledger, points[0]["privacy"]);
    assert!(exported.join("warm_start/heads.safetensors").is_file());
    // ... and a re-audit of the applied cohort gives the Recall@1 of the mitigation report.
    for (split, subset) in [("test", "held_out"), ("external", "external")] {
        let out = linkrisk()
            .arg("relink")
            .arg(&applied)
            .args(["--split", split, "--pools", "100,10000", "--trials", "2", "--hard-negatives"])
            .args(["--bootstrap", "0", "--seed", "0", "--json", "-"])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let relinked: Value = serde_json::from_slice(&out.stdout).unwrap();
        let reported = &points[0]["relink"][subset];
        assert_eq!(recall_at_1(&relinked, 100), recall_at_1(reported, 100), "{subset}");
        assert_eq!(relinked["full"]["recall_at_1"], reported["full"]["recall_at_1"], "{subset}");
    }
}

#[test]
fn a_warm_start_split_sharing_patients_with_the_members_exits_2() {
    let tmp = temp_dir();
    let cohort = tmp.path().join("cohort");
    linkrisk()
        .args(["synth", "--out"])
        .arg(&cohort)
        .args([
            "--patients",
            "120",
            "--external-patients",
            "20",
            "--dim",
            "16",
            "--feature-dim",
            "32",
            "--seed",
            "5",
        ])
        .assert()
        .success();
    // The first record of every train patient with several studies moves to `public`; the
    // patient's other records stay members.
    let csv = std::fs::read_to_string(cohort.join("metadata.csv")).unwrap();
    let mut lines: Vec<String> = csv.lines().map(str::to_string).collect();
    let header: Vec<&str> = lines[0].split(',').collect();
    let (pi, si) = (
        header.iter().position(|c| *c == "patient_id").unwrap(),
        header.iter().position(|c| *c == "split").unwrap(),
    );
    let patient_of = |l: &str| l.split(',').nth(pi).unwrap().to_string();
    let mut moved = 0;
    for i in 1..lines.len() - 1 {
        let (this, next) = (patient_of(&lines[i]), patient_of(&lines[i + 1]));
        let mut cells: Vec<String> = lines[i].split(',').map(str::to_string).collect();
        let first_of_patient = i == 1 || patient_of(&lines[i - 1]) != this;
        if cells[si] == "train" && first_of_patient && next == this {
            cells[si] = "public".into();
            lines[i] = cells.join(",");
            moved += 1;
        }
    }
    assert!(moved > 5, "{moved}");
    std::fs::write(cohort.join("metadata.csv"), lines.join("\n") + "\n").unwrap();
    let stderr = run_err(
        ["mitigate", cohort.to_str().unwrap(), "--warm-start-split", "public", "--epsilons", "1,inf"],
        &["--warm-start-split public", &format!("{moved} of the"), "metadata.csv"],
    );
    assert!(stderr.contains("without protection"), "{stderr}");
}

#[test]
fn bad_flags_are_named() {
    let tmp = temp_dir();
    let dir = tmp.path().to_str().unwrap();
    run_err(["mitigate", dir, "--epsilons", "0.5,1"], &["--epsilons must include `inf`"]);
    run_err(["mitigate", dir, "--epsilons", "0.5,x,inf"], &["--epsilons", "`x`"]);
    run_err(["mitigate", dir, "--public-fraction", "1.5"], &["--public-fraction"]);
    run_err(["mitigate", dir, "--delta", "0"], &["--delta"]);
    run_err(["mitigate", dir, "--audited-views", "image"], &["--audited-views"]);
}

#[test]
fn apply_heads_names_bad_inputs() {
    let tmp = temp_dir();
    let dir = tmp.path();
    run_err(
        ["apply-heads", dir.join("none").to_str().unwrap(), dir.to_str().unwrap(), "--out", "x"],
        &["heads.safetensors"],
    );
    std::fs::write(dir.join("heads.safetensors"), b"junk bytes, not a header").unwrap();
    run_err(
        ["apply-heads", dir.to_str().unwrap(), dir.to_str().unwrap(), "--out", "x"],
        &["not a safetensors file"],
    );
}
