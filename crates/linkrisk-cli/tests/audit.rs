//! `linkrisk audit` end to end on small `linkrisk synth` cohorts: every audit of every model
//! lands in one run directory keyed by model (both relink directions, every attacker), a
//! second cohort under a recorded label is refused, a broken model is reported while the
//! others finish, and the documented `audit.toml` drives a run.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::util::{run, run_err, run_ok, temp_dir};

/// Write a small synthetic cohort (about 110 test records of 50 patients, 32-d views) at
/// `dir` with the given model specialization and seed.
pub(crate) fn synth_cohort(dir: &Path, specialization: f64, seed: u64) -> PathBuf {
    run_ok([
        "synth",
        "--out",
        dir.to_str().unwrap(),
        "--patients",
        "300",
        "--dim",
        "32",
        "--feature-dim",
        "48",
        "--external-patients",
        "0",
        "--specialization",
        &specialization.to_string(),
        "--seed",
        &seed.to_string(),
    ]);
    dir.to_path_buf()
}

pub(crate) fn read_json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// The entries of `run` labelled `label` of audit kind `kind`.
pub(crate) fn entries<'a>(run: &'a Value, label: &str, kind: &str) -> Vec<&'a Value> {
    run["runs"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["label"] == label && e["audit"]["audit"] == kind)
        .collect()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn two_models_in_one_run_every_audit_both_directions() {
    let tmp = temp_dir();
    let low = synth_cohort(&tmp.path().join("general"), 0.1, 1);
    let high = synth_cohort(&tmp.path().join("specialist"), 0.9, 1);
    let out = tmp.path().join("RUN");
    let outcome = run_ok(["audit", s(&low), s(&high), "--out", s(&out)]);
    let run = read_json(&out.join("run.json"));
    let mut full_recall = Vec::new();
    for (label, dir) in [("general", &low), ("specialist", &high)] {
        let fingerprint = linkrisk::shard::cohort_fingerprint(dir).unwrap();
        let mine: Vec<&Value> =
            run["runs"].as_array().unwrap().iter().filter(|e| e["label"] == label).collect();
        assert!(mine.iter().all(|e| e["cohort_fingerprint"] == fingerprint.as_str()), "{label}");
        assert!(mine.iter().all(|e| e["key"].as_str().unwrap().ends_with(&format!("#{label}"))));
        // Re-linkage in both directions, with every attack and hard negatives in each.
        let relink = entries(&run, label, "relink");
        assert_eq!(relink.len(), 1, "{label}");
        let relink = &relink[0]["audit"];
        for (direction, q, g) in [(relink, "image", "report"), (&relink["reverse"], "report", "image")] {
            assert_eq!(
                (direction["query_view"].as_str(), direction["gallery_view"].as_str()),
                (Some(q), Some(g))
            );
            let attacks: Vec<&str> = direction["attacks"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| a["name"].as_str().unwrap())
                .collect();
            for name in ["cosine", "csls", "inverted_softmax", "qb_norm", "procrustes", "ridge"] {
                assert!(attacks.contains(&name), "{label} {q}->{g} lacks attack {name}: {attacks:?}");
            }
            let kinds: Vec<&str> =
                direction["pools"].as_array().unwrap().iter().map(|p| p["kind"].as_str().unwrap()).collect();
            assert!(kinds.contains(&"random") && kinds.contains(&"pathology_matched"), "{kinds:?}");
        }
        full_recall.push(relink["full"]["recall_at_1"].as_f64().unwrap());
        // Re-identification: one entry per attacker, the attack comparison with the first.
        let attackers: Vec<&str> =
            entries(&run, label, "reid").iter().map(|e| e["audit"]["attacker"].as_str().unwrap()).collect();
        assert_eq!(attackers, ["nearest-neighbour", "linear-metric"], "{label}");
        let reid = entries(&run, label, "reid")[0];
        let reid_attacks: Vec<&str> = reid["audit"]["attacks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["name"].as_str().unwrap())
            .collect();
        assert_eq!(reid_attacks.len(), 4, "every single-view attack on re-ID: {reid_attacks:?}");
        // Attributes stratified by re-identification, and utility.
        let attributes = &entries(&run, label, "attributes")[0]["audit"];
        assert_eq!(attributes["reidentification_source"]["attacker"], "nearest-neighbour");
        assert!(attributes["attributes"]["sex"]["stratified"].is_object(), "{label}");
        assert!(entries(&run, label, "utility")[0]["audit"]["macro_auroc"].as_f64().is_some());
        // The model record: its cohort, fingerprint, nothing failed.
        let model = run["models"].as_array().unwrap().iter().find(|m| m["label"] == label).unwrap();
        assert_eq!(model["cohort_fingerprint"], fingerprint.as_str());
        assert_eq!(model["failed"].as_array().unwrap().len(), 0);
        assert!(model["cohort"]["n_records"].as_u64().unwrap() > 0);
        // The closing table names the model with its full-database Recall@1.
        let row = outcome.stdout.lines().find(|l| l.trim_start().starts_with(&format!("{label} "))).unwrap();
        assert!(row.contains(&format!("{:.4}", full_recall.last().unwrap())), "{row}");
    }
    assert!(full_recall[0] < full_recall[1], "more specialization, more re-linkage: {full_recall:?}");
    assert!(out.join("report.html").is_file() && out.join("report.md").is_file());

    // The attribute audit reused the re-ID audit's nearest-neighbour flags: the same numbers
    // as `linkrisk attributes --stratify-by-reid` computes with its own re-ID pass.
    let alone = tmp.path().join("attributes.json");
    run_ok(["attributes", s(&high), "--stratify-by-reid", "--json", s(&alone)]);
    let alone = read_json(&alone);
    let in_run = &entries(&run, "specialist", "attributes")[0]["audit"];
    assert_eq!(in_run["attributes"], alone["attributes"]);
    assert_eq!(in_run["reidentification"], alone["reidentification"]);
    assert_eq!(in_run["reidentification_source"], alone["reidentification_source"]);

    // Re-running the same audit on the same cohort replaces it: no new entries.
    let before = run["runs"].as_array().unwrap().len();
    run_ok(["utility", s(&low), "--out", s(&out)]);
    assert_eq!(read_json(&out.join("run.json"))["runs"].as_array().unwrap().len(), before);
}

#[test]
fn a_second_cohort_under_a_recorded_label_is_refused() {
    let tmp = temp_dir();
    let a = synth_cohort(&tmp.path().join("a"), 0.2, 1);
    let b = synth_cohort(&tmp.path().join("b"), 0.8, 2);
    let out = tmp.path().join("RUN");
    run_ok(["utility", s(&a), "--out", s(&out)]);
    let before = std::fs::read(out.join("run.json")).unwrap();
    // Any audit command: exit 2 before any work, run.json untouched.
    for command in ["utility", "relink", "reid", "attributes"] {
        let err = run_err([command, s(&b), "--label", "a", "--out", s(&out)], &["model `a`", "--label"]);
        assert!(err.contains("another cohort"), "{err}");
    }
    assert_eq!(std::fs::read(out.join("run.json")).unwrap(), before);
    // `linkrisk audit` reports the model as failed (exit 2); its own label is fine.
    let failed = run(["audit", s(&b), "--label", "a", "--out", s(&out)]);
    assert_eq!(failed.code, 2, "{}", failed.stderr);
    assert!(
        failed.stderr.contains("model `a`: cohort failed") && failed.stderr.contains("--label"),
        "{}",
        failed.stderr
    );
    run_ok(["utility", s(&b), "--label", "b-model", "--out", s(&out)]);
    // --replace records the new cohort under the label, dropping the old model's entries.
    run_ok(["audit", s(&b), "--label", "a", "--replace", "--out", s(&out)]);
    let run = read_json(&out.join("run.json"));
    let fingerprint = linkrisk::shard::cohort_fingerprint(&b).unwrap();
    let a_entries: Vec<&Value> =
        run["runs"].as_array().unwrap().iter().filter(|e| e["label"] == "a").collect();
    assert!(
        a_entries.len() >= 4 && a_entries.iter().all(|e| e["cohort_fingerprint"] == fingerprint.as_str())
    );
    // Two cohorts with the same directory name in one audit: refused before any work.
    let twin = synth_cohort(&tmp.path().join("elsewhere/a"), 0.5, 3);
    run_err(["audit", s(&a), s(&twin), "--out", s(&tmp.path().join("RUN2"))], &["model `a`", "--label"]);
    assert!(!tmp.path().join("RUN2/run.json").exists());
}

#[test]
fn a_failing_model_is_reported_and_the_others_finish() {
    let tmp = temp_dir();
    let good = synth_cohort(&tmp.path().join("good"), 0.5, 1);
    // A broken cohort: metadata.csv without patient_id.
    let broken = tmp.path().join("broken");
    crate::util::write_file(&broken, "metadata.csv", "id,split\nr1,test\n");
    crate::util::write_file(&broken, "image.npy", b"not a npy file");
    let out = tmp.path().join("RUN");
    let outcome = run(["audit", s(&broken), s(&good), "--out", s(&out)]);
    assert_eq!(outcome.code, 2, "{}\n{}", outcome.stdout, outcome.stderr);
    assert!(outcome.stderr.contains("linkrisk: error: model `broken`: cohort failed"), "{}", outcome.stderr);
    assert!(outcome.stdout.contains("failed:  broken: cohort:"), "{}", outcome.stdout);
    assert!(!outcome.stderr.contains("panicked"));
    let run = read_json(&out.join("run.json"));
    for kind in ["relink", "reid", "attributes", "utility"] {
        assert!(!entries(&run, "good", kind).is_empty(), "the good model's {kind} ran");
    }
    let broken_record = run["models"].as_array().unwrap().iter().find(|m| m["label"] == "broken").unwrap();
    assert_eq!(broken_record["failed"][0]["audit"], "cohort");
    assert!(broken_record["failed"][0]["error"].as_str().unwrap().contains("patient_id"), "{broken_record}");
    assert!(out.join("report.html").is_file(), "the report is written for the models that ran");

    // A cohort without finding columns: hard negatives and utility are listed as not run.
    let plain = tmp.path().join("plain");
    std::fs::create_dir_all(&plain).unwrap();
    for file in ["image.npy", "report.npy"] {
        std::fs::copy(good.join(file), plain.join(file)).unwrap();
    }
    let meta = std::fs::read_to_string(good.join("metadata.csv")).unwrap();
    let keep = ["id", "patient_id", "study_id", "split", "sex", "age"];
    let header: Vec<&str> = meta.lines().next().unwrap().split(',').collect();
    let columns: Vec<usize> = (0..header.len()).filter(|&i| keep.contains(&header[i])).collect();
    let text: String = meta
        .lines()
        .map(|l| {
            let cells: Vec<&str> = l.split(',').collect();
            columns.iter().map(|&i| cells[i]).collect::<Vec<_>>().join(",") + "\n"
        })
        .collect();
    std::fs::write(plain.join("metadata.csv"), text).unwrap();
    let outcome = run_ok(["audit", s(&plain), "--out", s(&tmp.path().join("RUN3"))]);
    for line in [
        "not run: plain: relink pathology-matched pools (hard negatives): the cohort has no finding columns",
        "not run: plain: utility utility: the cohort has no finding columns",
        "not run: plain: attributes race: the metadata has no `race` column",
    ] {
        assert!(outcome.stdout.contains(line), "missing {line:?} in:\n{}", outcome.stdout);
    }
    let run = read_json(&tmp.path().join("RUN3/run.json"));
    let not_run = &run["models"][0]["not_run"];
    assert_eq!(not_run.as_array().unwrap().len(), 3, "{not_run}");
    assert!(entries(&run, "plain", "utility").is_empty());
    let pools = entries(&run, "plain", "relink")[0]["audit"]["pools"].as_array().unwrap();
    assert!(pools.iter().all(|p| p["kind"] == "random"));
}

#[test]
fn the_documented_config_drives_a_run() {
    let doc =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/AUDIT-CONFIG.md"))
            .unwrap();
    let start = doc.find("<!-- START audit.toml -->").unwrap();
    let end = doc.find("<!-- END audit.toml -->").unwrap();
    let block = &doc[start..end];
    let example = &block[block.find("```toml\n").unwrap() + 8..block.rfind("```").unwrap()];
    let tmp = temp_dir();
    let config = tmp.path().join("audit.toml");
    std::fs::write(&config, example).unwrap();
    synth_cohort(&tmp.path().join("cohorts/general"), 0.1, 1);
    synth_cohort(&tmp.path().join("cohorts/cxr-specialist"), 0.9, 1);
    let out = tmp.path().join("RUN");
    run_ok(["audit", "--config", s(&config), "--out", s(&out)]);
    let run_json = read_json(&out.join("run.json"));
    // cxr-specialist: seed 1 and pools 10 and 100 only; general: the file's top level.
    let specialist = &entries(&run_json, "cxr-specialist", "relink")[0];
    assert_eq!(specialist["seed"], 1);
    let sizes = |e: &Value| -> Vec<u64> {
        let mut v: Vec<u64> = e["audit"]["pools"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["pool_size"].as_u64().unwrap())
            .collect();
        v.extend(
            e["audit"]["skipped_pools"].as_array().unwrap().iter().map(|p| p["pool_size"].as_u64().unwrap()),
        );
        v.sort_unstable();
        v.dedup();
        v
    };
    assert_eq!(sizes(specialist), [10, 100]);
    let general = &entries(&run_json, "general", "relink")[0];
    assert_eq!(general["seed"], 0);
    assert_eq!(sizes(general), [10, 100, 1000, 10000], "pools larger than the gallery are listed as skipped");
    assert!(general["audit"]["reverse"].is_object());
    assert_eq!(entries(&run_json, "general", "reid")[0]["audit"]["bootstrap_replicates"], 1000);

    // The gate reads the same file: every threshold matched a figure of each model (no
    // exit 2), with cxr-specialist's own re-ID ceiling.
    let junit = tmp.path().join("gate.xml");
    let json = tmp.path().join("gate.json");
    let gate = run(["gate", s(&out), "--config", s(&config), "--json", s(&json), "--junit", s(&junit)]);
    assert!(gate.code == 0 || gate.code == 1, "{}\n{}", gate.stdout, gate.stderr);
    let checks = read_json(&json);
    let reid_ceiling = |model: &str| -> Vec<f64> {
        checks["checks"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["model"] == model && c["metric"] == "rank_1")
            .map(|c| c["threshold"].as_f64().unwrap())
            .collect()
    };
    assert!(!reid_ceiling("general").is_empty() && reid_ceiling("general").iter().all(|&t| t == 0.5));
    assert!(
        reid_ceiling("cxr-specialist").iter().all(|&t| t == 0.6)
            && !reid_ceiling("cxr-specialist").is_empty()
    );
    assert_eq!(checks["on"], "ci-high");
    assert!(checks["checks"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c["metric"] == "macro_auroc" && c["compared"] == "ci_low"));
}

/// A merged sharded audit records what the unsharded one does: the cohort directory's name
/// as label (carried in each partial) and the same cohort fingerprint.
#[test]
fn a_merged_shard_set_records_the_cohorts_label_and_fingerprint() {
    let tmp = temp_dir();
    let cohort = synth_cohort(&tmp.path().join("sharded-model"), 0.5, 9);
    let out = tmp.path().join("RUN");
    for shard in ["1/2", "2/2"] {
        run_ok(["relink", s(&cohort), "--shard", shard, "--bootstrap", "0", "--out", s(&out)]);
    }
    run_ok(["merge", s(&out.join("shards")), "--out", s(&out)]);
    let whole = tmp.path().join("WHOLE");
    run_ok(["relink", s(&cohort), "--attack", "none", "--bootstrap", "0", "--out", s(&whole)]);
    let (merged, single) = (read_json(&out.join("run.json")), read_json(&whole.join("run.json")));
    let fingerprint = linkrisk::shard::cohort_fingerprint(&cohort).unwrap();
    for run in [&merged, &single] {
        let entry = &run["runs"][0];
        assert_eq!(entry["label"], "sharded-model");
        assert_eq!(entry["cohort_fingerprint"], fingerprint.as_str());
        assert_eq!(entry["key"], "relink:image->report@test#sharded-model");
    }
    assert_eq!(merged["runs"][0]["audit"]["full"], single["runs"][0]["audit"]["full"]);
    // Merged into the unsharded run's directory: the same model, replaced in place.
    run_ok(["merge", s(&out.join("shards")), "--out", s(&whole)]);
    assert_eq!(read_json(&whole.join("run.json"))["runs"].as_array().unwrap().len(), 1);
    // --label names it otherwise.
    run_ok(["merge", s(&out.join("shards")), "--label", "other", "--out", s(&whole)]);
    assert_eq!(read_json(&whole.join("run.json"))["runs"][1]["label"], "other");
}
