//! `linkrisk relink --attack ...` end to end (issue 8): the attack comparison's JSON keys
//! and their agreement with the audit's own figures, the gains of the stronger attacks on a
//! hub-prone cohort, leaked-pair alignment against a rotated view, flag errors, and the
//! report's headline naming the strongest attack with its numbers.

use linkrisk::cohort::metadata::MetadataBuilder;
use serde_json::Value;

use crate::util::{run, run_err, run_ok, temp_dir, write_built_cohort, Noise};

/// A paired cohort of `n_test` + `n_train` records (one patient and study each), dimension
/// `dim`, prone to hubs: image i = z_i + noise + a random mix of three shared "hub"
/// directions; report i = z_i + noise, and for 10% of reports (the hubs) a strong
/// component along one hub direction, so hub reports are close to every image. With
/// `rotate`, the report view is multiplied by a random orthogonal matrix (an
/// "anonymising" rotation).
fn hub_cohort(dir: &std::path::Path, n_test: usize, n_train: usize, dim: usize, sigma: f32, rotate: bool) {
    let mut rng = Noise::new(17);
    let n = n_test + n_train;
    let scale = 1.0 / (dim as f32).sqrt();
    let unit = |v: &mut [f32]| {
        let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        v.iter_mut().for_each(|x| *x /= norm);
    };
    let mut hubs: Vec<Vec<f32>> = (0..3).map(|_| (0..dim).map(|_| rng.normal()).collect()).collect();
    hubs.iter_mut().for_each(|h| unit(h));
    let (mut image, mut report) = (Vec::with_capacity(n * dim), Vec::with_capacity(n * dim));
    for _ in 0..n {
        let z: Vec<f32> = (0..dim).map(|_| rng.normal() * scale).collect();
        let mix: Vec<f32> = (0..3).map(|_| 0.7 * rng.uniform() as f32).collect();
        let hub = (rng.uniform() < 0.1).then(|| (rng.uniform() * 3.0) as usize % 3);
        for j in 0..dim {
            let shared: f32 = (0..3).map(|h| mix[h] * hubs[h][j]).sum();
            image.push(z[j] + sigma * scale * rng.normal() + shared);
        }
        for j in 0..dim {
            let h = hub.map_or(0.0, |h| 1.5 * hubs[h][j]);
            report.push(z[j] + sigma * scale * rng.normal() + h);
        }
    }
    if rotate {
        // Gram-Schmidt on a Gaussian matrix: a random orthogonal matrix (rows orthonormal).
        let mut q: Vec<Vec<f64>> = Vec::new();
        while q.len() < dim {
            let mut v: Vec<f64> = (0..dim).map(|_| f64::from(rng.normal())).collect();
            for b in &q {
                let d: f64 = v.iter().zip(b).map(|(x, y)| x * y).sum();
                v.iter_mut().zip(b).for_each(|(x, y)| *x -= d * y);
            }
            let norm = v.iter().map(|x| x * x).sum::<f64>().sqrt();
            v.iter_mut().for_each(|x| *x /= norm);
            q.push(v);
        }
        for row in report.chunks_mut(dim) {
            let rotated: Vec<f32> =
                (0..dim).map(|j| (0..dim).map(|k| f64::from(row[k]) * q[k][j]).sum::<f64>() as f32).collect();
            row.copy_from_slice(&rotated);
        }
    }
    let b = MetadataBuilder {
        ids: (0..n).map(|i| format!("r{i}")).collect(),
        patient_ids: (0..n).map(|i| format!("p{i}")).collect(),
        splits: Some((0..n).map(|i| if i < n_test { "test" } else { "train" }.to_string()).collect()),
        ..Default::default()
    };
    write_built_cohort(dir, b, &[("image", dim, &image), ("report", dim, &report)]);
}

fn relink_json(dir: &std::path::Path, extra: &[&str]) -> Value {
    let mut args: Vec<String> = vec!["relink".into(), dir.display().to_string()];
    args.extend(["--bootstrap", "0", "--trials", "2", "--json", "-"].map(String::from));
    args.extend(extra.iter().map(|s| s.to_string()));
    let out = run_ok(&args);
    serde_json::from_str(&out.stdout).expect("JSON on stdout")
}

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

/// The attack row with this name, pool (None: full database) and leaked pairs.
fn row<'a>(json: &'a Value, name: &str, pool: Option<u64>, leaked: Option<u64>) -> &'a Value {
    json["attacks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| {
            r["name"] == name && r["pool_size"].as_u64() == pool && r["leaked_pairs"].as_u64() == leaked
        })
        .unwrap_or_else(|| panic!("no row {name} {pool:?} {leaked:?}"))
}

#[test]
fn attack_all_reports_every_attack_with_control_and_agrees_with_the_audit() {
    let tmp = temp_dir();
    hub_cohort(tmp.path(), 300, 300, 32, 0.8, false);
    let json = relink_json(tmp.path(), &["--attack", "all", "--pools", "10,100,full"]);
    let names = ["cosine", "csls", "inverted_softmax", "qb_norm", "assignment", "procrustes", "ridge"];
    for r in json["attacks"].as_array().unwrap() {
        assert!(names.contains(&r["name"].as_str().unwrap()), "{r}");
        let (a, c) = (f(&r["recall_at_1"]), f(&r["control_recall_at_1"]));
        assert!((f(&r["normalized_risk"]) - (a - c) / (1.0 - c)).abs() < 1e-12, "{r}");
        let ci = r["ci95_normalized_risk"].as_array().unwrap();
        assert!(f(&ci[0]) <= f(&r["normalized_risk"]) && f(&r["normalized_risk"]) <= f(&ci[1]));
        // The control (true link absent) sits near chance.
        assert!(c < (6.0 * f(&r["chance_at_1"])).max(0.03), "control too high: {r}");
    }
    // Plain cosine is the audit itself: same full-database Recall@1, and its pool rows are
    // the audit's exact hypergeometric expectations.
    assert!(
        (f(&row(&json, "cosine", None, None)["recall_at_1"]) - f(&json["full"]["recall_at_1"])).abs() < 1e-12
    );
    let pool10 = json["pools"].as_array().unwrap().iter().find(|p| p["pool_size"] == 10).unwrap();
    let cos10 = f(&row(&json, "cosine", Some(10), None)["recall_at_1"]);
    assert!((cos10 - f(&pool10["expected_recall_at_1"])).abs() < 1e-12);
    // Hubness corrections beat cosine; the full-batch assignment beats them.
    let full = |name: &str| f(&row(&json, name, None, None)["recall_at_1"]);
    let cosine = full("cosine");
    assert!(full("csls") > cosine + 0.03, "csls {} vs cosine {cosine}", full("csls"));
    assert!(
        full("inverted_softmax") > cosine + 0.03,
        "inverted softmax {} vs {cosine}",
        full("inverted_softmax")
    );
    assert!(full("assignment") > full("csls"), "assignment {} vs csls {}", full("assignment"), full("csls"));
    // One assignment row per pool size, with the nearest-neighbour comparison on its batches.
    for n in [10u64, 100] {
        let a = row(&json, "assignment", Some(n), None);
        assert_eq!(a["parameters"]["batch_size"], n);
        assert_eq!(a["parameters"]["solver"], "hungarian");
        assert!(f(&a["recall_at_1"]) >= f(&a["parameters"]["nearest_neighbour_recall_at_1"]) - 0.01, "{a}");
    }
    // Alignment: Recall@1 vs m; m = 1000 exceeds the 300 side pairs and is skipped with a reason.
    for m in [10u64, 100] {
        row(&json, "procrustes", None, Some(m));
        row(&json, "ridge", Some(100), Some(m));
    }
    let skipped = json["skipped_attacks"].as_array().unwrap();
    assert!(skipped.iter().any(|s| s["name"] == "procrustes" && s["leaked_pairs"] == 1000), "{skipped:?}");
    assert_eq!(json["side"]["source"], "split train");
    assert_eq!(json["side"]["n_pairs"], 300);
    // The strongest attack has the highest normalized risk at the reference pool (100).
    assert_eq!(json["strongest_attack_pool_size"], 100);
    let strongest = json["strongest_attack"].as_str().unwrap();
    assert_ne!(strongest, "cosine");
    let at_100: Vec<&Value> =
        json["attacks"].as_array().unwrap().iter().filter(|r| r["pool_size"] == 100).collect();
    let best = at_100.iter().map(|r| f(&r["normalized_risk"])).fold(f64::NEG_INFINITY, f64::max);
    let leaked = json["strongest_attack_leaked_pairs"].as_u64();
    assert_eq!(f(&row(&json, strongest, Some(100), leaked)["normalized_risk"]), best);
}

#[test]
fn default_is_cosine_with_control_and_none_turns_it_off() {
    let tmp = temp_dir();
    hub_cohort(tmp.path(), 60, 20, 8, 0.8, false);
    let json = relink_json(tmp.path(), &["--pools", "10"]);
    assert_eq!(json["strongest_attack"], "cosine");
    let names: Vec<&str> =
        json["attacks"].as_array().unwrap().iter().map(|r| r["name"].as_str().unwrap()).collect();
    assert_eq!(names, vec!["cosine", "cosine"], "full database and pool 10");
    let json = relink_json(tmp.path(), &["--pools", "10", "--attack", "none"]);
    assert!(json.get("attacks").is_none() && json.get("strongest_attack").is_none());
    // The table names the strongest attack.
    let out = run_ok(["relink", tmp.path().to_str().unwrap(), "--bootstrap", "0", "--attack", "csls"]);
    assert!(out.stdout.contains("strongest attack") && out.stdout.contains("csls"), "{}", out.stdout);
}

#[test]
fn leaked_pairs_recover_a_rotated_view_where_cosine_is_at_chance() {
    let tmp = temp_dir();
    hub_cohort(tmp.path(), 300, 400, 16, 0.5, true);
    let json = relink_json(
        tmp.path(),
        &[
            "--attack",
            "procrustes,ridge",
            "--pools",
            "10",
            "--leaked-pairs",
            "10,100,400",
            "--attack-side",
            "train",
        ],
    );
    let cosine = row(&json, "cosine", None, None);
    assert!(f(&cosine["recall_at_1"]) < 0.03, "rotated view: cosine {cosine}");
    assert!(f(&cosine["ci95_normalized_risk"][0]) < 0.02, "{cosine}");
    let procrustes = |m: u64| f(&row(&json, "procrustes", None, Some(m))["recall_at_1"]);
    assert!(procrustes(100) > 0.3, "Procrustes from 100 leaked pairs: {}", procrustes(100));
    assert!(procrustes(100) > procrustes(10));
    assert!(procrustes(400) >= procrustes(100) - 0.02);
    assert!(
        f(&row(&json, "ridge", None, Some(400))["recall_at_1"])
            > 10.0 * f(&cosine["recall_at_1"]).max(1.0 / 300.0)
    );
    assert!(matches!(json["strongest_attack"].as_str(), Some("procrustes" | "ridge")));
}

#[test]
fn bad_attack_flags_are_errors_naming_the_flag() {
    let tmp = temp_dir();
    hub_cohort(tmp.path(), 30, 10, 8, 0.8, false);
    let dir = tmp.path().to_str().unwrap();
    run_err(["relink", dir, "--attack", "hubness"], &["--attack", "hubness", "csls"]);
    run_err(["relink", dir, "--attack", "none,csls"], &["--attack", "none"]);
    run_err(["relink", dir, "--attack-side", "test"], &["--attack-side", "another split"]);
    run_err(["relink", dir, "--attack-side", "holdout"], &["holdout"]);
    run_err(["relink", dir, "--csls-k", "0"], &["--csls-k"]);
    run_err(["relink", dir, "--attack", "procrustes", "--leaked-pairs", "0"], &["--leaked-pairs"]);
    let out = run(["relink", dir, "--split", "all", "--attack-side", "train"]);
    assert_eq!(out.code, 2);
    assert!(out.stderr.contains("--split all"), "{}", out.stderr);
}

#[test]
fn report_headline_is_the_strongest_attack_with_its_numbers() {
    let tmp = temp_dir();
    let cohort = tmp.path().join("cohort");
    let run_dir = tmp.path().join("run");
    hub_cohort(&cohort, 300, 100, 32, 0.8, false);
    run_ok([
        "relink",
        cohort.to_str().unwrap(),
        "--bootstrap",
        "0",
        "--pools",
        "10,100",
        "--attack",
        "csls,inverted_softmax,assignment",
        "--out",
        run_dir.to_str().unwrap(),
    ]);
    let run_json: Value =
        serde_json::from_str(&std::fs::read_to_string(run_dir.join("run.json")).unwrap()).unwrap();
    let audit = &run_json["runs"][0]["audit"];
    let strongest = audit["strongest_attack"].as_str().unwrap();
    assert_ne!(strongest, "cosine");
    let best = row(audit, strongest, Some(100), None);
    run_ok(["report", run_dir.to_str().unwrap(), "--md"]);
    let md = std::fs::read_to_string(run_dir.join("report.md")).unwrap();
    let fmt = linkrisk::report::fmt::pct;
    let headline = md.lines().find(|l| l.contains("Headline risk.")).expect("a headline");
    // Markdown escapes the underscore of `inverted_softmax`.
    let escaped = |name: &str| name.replace('_', "\\_");
    assert!(headline.contains(&format!("strongest attack tried ({})", escaped(strongest))), "{headline}");
    assert!(headline.contains(&format!("Recall@1 {}", fmt(f(&best["recall_at_1"])))), "{headline}");
    assert!(md.contains(&format!("{} (strongest)", escaped(strongest))), "attack table marks the strongest");
    for name in ["csls", "inverted_softmax", "assignment"] {
        let r = row(audit, name, Some(100), None);
        let normalized = fmt(f(&r["normalized_risk"]));
        let found = md
            .lines()
            .any(|l| l.contains(&escaped(name)) && l.contains("| 100 |") && l.contains(&normalized));
        assert!(found, "{name}: normalized risk {normalized} at N=100 missing");
    }
}

#[test]
fn reid_attack_comparison_agrees_with_nearest_neighbour_and_reaches_the_report() {
    let tmp = temp_dir();
    let cohort = tmp.path().join("cohort");
    let run_dir = tmp.path().join("run");
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
    let out = run_ok([
        "reid",
        c,
        "--attacker",
        "none",
        "--bootstrap",
        "0",
        "--attack",
        "all",
        "--json",
        "-",
        "--out",
        run_dir.to_str().unwrap(),
    ]);
    let json: Value = serde_json::from_str(&out.stdout).unwrap();
    // Plain cosine on the re-ID task is the nearest-neighbour attacker's Rank-1.
    let cosine = row(&json, "cosine", None, None);
    assert!((f(&cosine["recall_at_1"]) - f(&json["rank_1"])).abs() < 1e-12, "{cosine} vs {}", json["rank_1"]);
    for name in ["csls", "inverted_softmax", "qb_norm"] {
        let r = row(&json, name, None, None);
        // The control is consistent with chance (127 queries: its interval reaches chance).
        assert!(f(&r["ci95_control_recall_at_1"][0]) <= f(&r["chance_at_1"]), "{r}");
    }
    // Paired-view attacks do not apply to one view: skipped with the reason.
    let skipped: Vec<&str> =
        json["skipped_attacks"].as_array().unwrap().iter().map(|s| s["name"].as_str().unwrap()).collect();
    assert_eq!(skipped, vec!["assignment", "procrustes", "ridge"]);
    assert_eq!(json["side"]["source"], "split train");
    let strongest = json["strongest_attack"].as_str().unwrap();
    let best = row(&json, strongest, None, None);
    // The report's attack section lists the re-ID comparison with the strongest marked.
    run_ok(["report", run_dir.to_str().unwrap(), "--md"]);
    let md = std::fs::read_to_string(run_dir.join("report.md")).unwrap();
    assert!(md.contains(" — re-identification, image\n"), "no re-ID attack table");
    let name = strongest.replace('_', "\\_");
    let pct = linkrisk::report::fmt::pct(f(&best["recall_at_1"]));
    assert!(md.lines().any(|l| l.contains(&format!("{name} (strongest)")) && l.contains(&pct)), "{pct}");
    // --attack none (the default) adds no comparison.
    let out = run_ok(["reid", c, "--attacker", "none", "--bootstrap", "0", "--json", "-"]);
    let json: Value = serde_json::from_str(&out.stdout).unwrap();
    assert!(json.get("attacks").is_none());
    run_err(["reid", c, "--attack", "bogus"], &["--attack", "bogus"]);
}

#[test]
fn test_only_rotated_view_is_relinked_by_cross_fitted_leaked_pairs() {
    // The common case: one `test` split and an "anonymised" (rotated) report view. Cosine
    // is at chance; `--attack all` cross-fits the leaked pairs within the audited patients
    // and its alignment attack links at 10x cosine or more.
    let tmp = temp_dir();
    hub_cohort(tmp.path(), 500, 0, 16, 0.5, true);
    let json = relink_json(tmp.path(), &["--attack", "all", "--pools", "10,100,full"]);
    let cosine = f(&row(&json, "cosine", None, None)["recall_at_1"]);
    assert!(cosine < 0.02, "rotated: cosine {cosine}");
    let best = ["procrustes", "ridge"]
        .iter()
        .flat_map(|name| [10u64, 100].map(|m| f(&row(&json, name, None, Some(m))["recall_at_1"])))
        .fold(0.0, f64::max);
    eprintln!("test-only rotated view: cosine Recall@1 {cosine}, best cross-fitted alignment {best}");
    assert!(best >= 0.05 && best >= 10.0 * cosine.max(1.0 / 500.0), "aligned {best} vs cosine {cosine}");
    assert!(
        matches!(json["strongest_attack"].as_str(), Some("procrustes" | "ridge")),
        "{}",
        json["strongest_attack"]
    );
    // The protocol is stated; every side-data attack ran, and what could not is listed.
    assert_eq!(json["side"]["source"], "cross_fit");
    assert_eq!(json["side"]["folds"], 5);
    assert!(json["side"]["reason"].as_str().unwrap().contains("no `train` split"), "{}", json["side"]);
    for (name, m) in
        [("inverted_softmax", None), ("qb_norm", None), ("procrustes", Some(100)), ("ridge", Some(100))]
    {
        row(&json, name, None, m);
    }
    assert_eq!(row(&json, "qb_norm", None, None)["parameters"]["beta_source"], "cross_fit");
    let skipped = json["skipped_attacks"].as_array().unwrap();
    assert!(skipped.iter().all(|s| s["leaked_pairs"] == 1000), "only m = 1000 > 400 pairs: {skipped:?}");
    assert_eq!(skipped.len(), 2);
    // The table says where the side data came from.
    let out = run_ok([
        "relink",
        tmp.path().to_str().unwrap(),
        "--bootstrap",
        "0",
        "--attack",
        "ridge",
        "--leaked-pairs",
        "100",
    ]);
    assert!(out.stdout.contains("cross-fitted in 5 patient-grouped folds"), "{}", out.stdout);
}

#[test]
fn a_named_attack_that_cannot_run_exits_2_with_the_reason_and_the_fix() {
    let tmp = temp_dir();
    hub_cohort(tmp.path(), 60, 0, 8, 0.8, false);
    let dir = tmp.path().to_str().unwrap();
    run_err(
        ["relink", dir, "--attack", "procrustes", "--attack-side", "none"],
        &["--attack procrustes", "--attack-side none", "--attack-side SPLIT"],
    );
    run_err(
        ["relink", dir, "--attack", "qb_norm", "--attack-side", "none"],
        &["--attack qb_norm", "query bank"],
    );
    run_err(
        ["relink", dir, "--attack", "ridge", "--leaked-pairs", "1000"],
        &["--attack ridge", "m=1000", "only 48 side pairs", "--leaked-pairs"],
    );
    run_err(
        ["relink", dir, "--attack", "ridge", "--side-folds", "100"],
        &["--attack ridge", "--side-folds 100"],
    );
    run_err(["relink", dir, "--side-folds", "1"], &["--side-folds", "1 is not in 2..=255"]);
    // Under `all` the same attacks are listed instead, and the audit succeeds.
    let json = relink_json(tmp.path(), &["--attack", "all", "--attack-side", "none", "--pools", "10"]);
    let skipped: Vec<&str> =
        json["skipped_attacks"].as_array().unwrap().iter().map(|s| s["name"].as_str().unwrap()).collect();
    assert_eq!(skipped, ["qb_norm", "procrustes", "ridge"]);
    assert!(json["side"].is_null());
    // In re-identification the paired-view attacks do not apply: named, an error.
    let reid = temp_dir();
    let c = reid.path().to_str().unwrap();
    run_ok([
        "synth",
        "--out",
        c,
        "--patients",
        "80",
        "--dim",
        "8",
        "--feature-dim",
        "8",
        "--external-patients",
        "0",
    ]);
    run_err(["reid", c, "--attack", "assignment"], &["--attack assignment", "paired views"]);
}
