//! `linkrisk train-heads`: trains on the train split, writes a projected cohort for every
//! split with its privacy ledger, and names the flag on bad input.

use std::path::Path;

use predicates::prelude::PredicateBooleanExt;
use predicates::str::contains;
use rand::Rng;
use rand_distr::StandardNormal;

use crate::util::{json_stdout, linkrisk};

/// A small cohort whose image and report features are noisy linear views of one latent
/// vector per record: 60 train patients, 20 test, 10 external, 1-2 records each.
pub fn write_cohort(dir: &Path, with_split: bool) {
    write_cohort_with(dir, with_split, &|_, _, split| split)
}

/// [`write_cohort`] with the split of record `r` of patient `p` chosen by `split_of(p, r,
/// default)`.
pub fn write_cohort_with(
    dir: &Path,
    with_split: bool,
    split_of: &dyn Fn(usize, usize, &'static str) -> &'static str,
) {
    let (latent, di, dr) = (6, 12, 10);
    let mut rng = linkrisk::rng::stream(1, "cli-test", 0);
    let a: Vec<f64> = (0..di * latent).map(|_| rng.sample(StandardNormal)).collect();
    let b: Vec<f64> = (0..dr * latent).map(|_| rng.sample(StandardNormal)).collect();
    let mut csv =
        String::from(if with_split { "id,patient_id,study_id,split\n" } else { "id,patient_id,study_id\n" });
    let (mut image, mut report) = (Vec::new(), Vec::new());
    for p in 0..90 {
        let split = if p < 60 {
            "train"
        } else if p < 80 {
            "test"
        } else {
            "external"
        };
        for r in 0..1 + p % 2 {
            let z: Vec<f64> = (0..latent).map(|_| rng.sample(StandardNormal)).collect();
            for (dim, mat, out) in [(di, &a, &mut image), (dr, &b, &mut report)] {
                for i in 0..dim {
                    let clean: f64 = (0..latent).map(|k| mat[i * latent + k] * z[k]).sum();
                    out.push((clean + 0.3 * rng.sample::<f64, _>(StandardNormal)) as f32);
                }
            }
            if with_split {
                csv.push_str(&format!("r{p}-{r},p{p},s{r},{}\n", split_of(p, r, split)));
            } else {
                csv.push_str(&format!("r{p}-{r},p{p},s{r}\n"));
            }
        }
    }
    std::fs::write(dir.join("metadata.csv"), csv).expect("write metadata.csv");
    let n = image.len() / di;
    linkrisk::cohort::npy::write(&dir.join("image_features.npy"), n, di, &image)
        .expect("write image features");
    linkrisk::cohort::npy::write(&dir.join("report_features.npy"), n, dr, &report)
        .expect("write report features");
}

#[test]
fn private_heads_write_a_cohort_and_ledger() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("in");
    std::fs::create_dir(&input).unwrap();
    write_cohort(&input, true);
    let out = tmp.path().join("heads");
    let output = linkrisk()
        .arg("train-heads")
        .arg(&input)
        .arg("--out")
        .arg(&out)
        .args(["--epsilon", "2", "--delta", "1e-5", "--epochs", "2", "--batch-size", "15", "--dim", "8"])
        .args(["--seed", "3", "--json", "--public-fraction", "0"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let ledger = json_stdout(&output);
    assert!(ledger["epsilon"].as_f64().unwrap() <= 2.0 && ledger["epsilon"].as_f64().unwrap() > 1.99);
    assert_eq!(ledger["privacy_unit"], "patient");
    assert_eq!(ledger["sample_rate"].as_f64().unwrap(), 0.25);
    assert_eq!(ledger["steps"], 8);
    assert_eq!(ledger["train_patients"], 60);
    assert_eq!(ledger["seed"], 3);
    // The ledger on disk is the one printed; the cohort covers every split.
    let on_disk: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("privacy.json")).unwrap()).unwrap();
    assert_eq!(on_disk, ledger);
    let cohort = linkrisk::cohort::Cohort::load(&out).unwrap();
    assert_eq!(cohort.len(), 135);
    assert_eq!(cohort.view("image").unwrap().dim(), 8);
    assert_eq!(cohort.metadata.split_names, vec!["train", "test", "external"]);
    linkrisk().arg("inspect").arg(&out).assert().success().stdout(contains("report"));

    // Same seed, same heads; text summary names epsilon.
    let again = tmp.path().join("again");
    linkrisk()
        .arg("train-heads")
        .arg(&input)
        .arg("--out")
        .arg(&again)
        .args(["--epsilon", "2", "--delta", "1e-5", "--epochs", "2", "--batch-size", "15", "--dim", "8"])
        .args(["--seed", "3", "--public-fraction", "0"])
        .assert()
        .success()
        .stdout(contains("DP-SGD: epsilon 2.0000").or(contains("DP-SGD: epsilon 1.9999")));
    assert_eq!(
        std::fs::read(out.join("image.npy")).unwrap(),
        std::fs::read(again.join("image.npy")).unwrap()
    );
}

#[test]
fn non_private_without_seed_records_no_seed() {
    let tmp = tempfile::tempdir().unwrap();
    write_cohort(tmp.path(), true);
    let out = tmp.path().join("np");
    let output = linkrisk()
        .arg("train-heads")
        .arg(tmp.path())
        .arg("--out")
        .arg(&out)
        .args(["--non-private", "--epochs", "1", "--batch-size", "20", "--head", "mlp", "--hidden", "16"])
        .args(["--json", "--public-fraction", "0"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let ledger = json_stdout(&output);
    assert_eq!(ledger["private"], false);
    assert!(ledger["epsilon"].is_null() && ledger["seed"].is_null());
    assert_eq!(ledger["head"]["kind"], "mlp");
    assert_eq!(ledger["steps"], 3);
}

#[test]
fn bad_flags_and_inputs_are_named() {
    let tmp = tempfile::tempdir().unwrap();
    write_cohort(tmp.path(), true);
    let run = |extra: &[&str]| {
        let mut cmd = linkrisk();
        cmd.arg("train-heads")
            .arg(tmp.path())
            .arg("--out")
            .arg(tmp.path().join("o"))
            .args(["--public-fraction", "0"])
            .args(extra);
        cmd.assert().code(2)
    };
    run(&["--epsilon", "1"]).stderr(contains("--delta is required"));
    run(&["--epsilon", "1", "--non-private"]).stderr(contains("--non-private"));
    run(&[]).stderr(contains("--epsilon"));
    run(&["--epsilon", "-1", "--delta", "1e-5"]).stderr(contains("--epsilon must be a positive"));
    run(&["--epsilon", "1", "--delta", "1e-5", "--batch-size", "61"])
        .stderr(contains("--batch-size 61 exceeds"));
    run(&["--epsilon", "1", "--delta", "1e-5", "--clip", "0"]).stderr(contains("--clip"));
    run(&["--non-private", "--split", "members"]).stderr(contains("split `members`"));
    // --out pointing at a directory that is not an earlier output is refused, untouched.
    let keep = tmp.path().join("keep");
    std::fs::create_dir(&keep).unwrap();
    std::fs::write(keep.join("x.txt"), "x").unwrap();
    linkrisk()
        .arg("train-heads")
        .arg(tmp.path())
        .arg("--out")
        .arg(&keep)
        .args(["--non-private", "--epochs", "1", "--batch-size", "20"])
        .assert()
        .code(2)
        .stderr(contains("not an earlier output of linkrisk train-heads"));
    assert!(keep.join("x.txt").exists());

    let nosplit = tempfile::tempdir().unwrap();
    write_cohort(nosplit.path(), false);
    linkrisk()
        .arg("train-heads")
        .arg(nosplit.path())
        .arg("--out")
        .arg(nosplit.path().join("o"))
        .arg("--non-private")
        .assert()
        .code(2)
        .stderr(contains("no records in split `train`").and(contains("split` column")));
}

#[test]
fn warm_start_from_public_patients_and_exported_heads_apply_bit_for_bit() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("in");
    std::fs::create_dir(&input).unwrap();
    // Every fourth training patient's records form a `public` split of other patients.
    write_cohort_with(&input, true, &|p, _, split| {
        if split == "train" && p % 4 == 0 {
            "public"
        } else {
            split
        }
    });
    let (out, shipped) = (tmp.path().join("heads"), tmp.path().join("shipped"));
    let output = linkrisk()
        .arg("train-heads")
        .arg(&input)
        .arg("--out")
        .arg(&out)
        .arg("--export-heads")
        .arg(&shipped)
        .args(["--epsilon", "2", "--delta", "1e-4", "--epochs", "2", "--batch-size", "15", "--dim", "8"])
        .args([
            "--warm-start-split",
            "public",
            "--public-epochs",
            "5",
            "--public-pca-rank",
            "6",
            "--seed",
            "3",
            "--json",
        ])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let ledger = json_stdout(&output);
    assert_eq!(ledger["initialisation"]["kind"], "warm_start");
    assert_eq!(ledger["initialisation"]["split"], "public");
    assert_eq!(ledger["initialisation"]["patients"], 15);
    assert_eq!(ledger["train_patients"], 45);
    assert_eq!(ledger["input_projection"]["split"], "public");
    assert_eq!(ledger["input_projection"]["image_rank"], 6);
    // The export carries the ledger; applied to the training cohort, the heads reproduce
    // the embeddings train-heads wrote, bit for bit, with the ledger beside them.
    let applied = tmp.path().join("applied");
    linkrisk().arg("apply-heads").arg(&shipped).arg(&input).arg("--out").arg(&applied).assert().success();
    for file in ["image.npy", "report.npy", "metadata.csv"] {
        assert_eq!(
            std::fs::read(out.join(file)).unwrap(),
            std::fs::read(applied.join(file)).unwrap(),
            "{file}"
        );
    }
    let read_json = |p: &Path| -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
    };
    assert_eq!(read_json(&applied.join("privacy.json")), ledger);
    assert_eq!(read_json(&shipped.join("privacy.json")), ledger);
    // A split that shares a patient with the members is refused before training.
    let shared = tmp.path().join("shared");
    std::fs::create_dir(&shared).unwrap();
    // Patient 1 has two records: the first goes to `public`, the second stays a member.
    write_cohort_with(&shared, true, &|p, r, split| if p == 1 && r == 0 { "public" } else { split });
    linkrisk()
        .arg("train-heads")
        .arg(&shared)
        .arg("--out")
        .arg(tmp.path().join("o"))
        .args(["--epsilon", "1", "--delta", "1e-4", "--warm-start-split", "public"])
        .assert()
        .code(2)
        .stderr(contains("--warm-start-split public: 1 of the 60 patients").and(contains("p1")));
}

#[test]
fn private_runs_without_a_seed_are_releases_and_with_one_are_evaluations() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("in");
    std::fs::create_dir(&input).unwrap();
    write_cohort(&input, true);
    let base = ["--epsilon", "2", "--delta", "1e-5", "--epochs", "2", "--batch-size", "15", "--dim", "8"];
    let train = |out: &str, extra: &[&str]| {
        let output = linkrisk()
            .arg("train-heads")
            .arg(&input)
            .arg("--out")
            .arg(tmp.path().join(out))
            .args(base)
            .args(["--json", "--public-fraction", "0"])
            .args(extra)
            .output()
            .unwrap();
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        json_stdout(&output)
    };
    let release = train("release", &[]);
    assert_eq!(release["private"], true, "{release}");
    assert_eq!(release["dp_sgd"], true);
    assert!(release["seed"].is_null() && release.get("not_private_reason").is_none(), "{release}");
    assert_eq!(release["accountant"], "pld_poisson_subsampled_gaussian");
    assert_eq!(release["accountant_parameters"]["discretization"].as_f64(), Some(1e-4));
    let seeded = train("seeded", &["--seed", "3", "--accountant", "rdp", "--rdp-orders", "opacus"]);
    assert_eq!(seeded["private"], false, "{seeded}");
    assert!(seeded["not_private_reason"].as_str().unwrap().contains("recorded seed 3"), "{seeded}");
    assert_eq!(seeded["accountant"], "rdp_sampled_gaussian_opacus_orders");
    assert!(seeded["best_order"].as_f64().is_some());
    // The seeded summary says it is not a release.
    linkrisk()
        .arg("train-heads")
        .arg(&input)
        .arg("--out")
        .arg(tmp.path().join("seeded-text"))
        .args(base)
        .args(["--seed", "3", "--public-fraction", "0"])
        .assert()
        .success()
        .stdout(contains("NOT A RELEASE"));
}

#[test]
fn a_delta_of_at_least_one_over_the_patients_exits_2_unless_allowed() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("in");
    std::fs::create_dir(&input).unwrap();
    write_cohort(&input, true);
    let args = [
        "--epsilon",
        "1",
        "--delta",
        "0.02",
        "--epochs",
        "1",
        "--batch-size",
        "15",
        "--dim",
        "8",
        "--public-fraction",
        "0",
    ];
    // 60 training patients: delta must be below 1/60 = 1.667e-2.
    linkrisk()
        .arg("train-heads")
        .arg(&input)
        .arg("--out")
        .arg(tmp.path().join("o"))
        .args(args)
        .assert()
        .code(2)
        .stderr(contains("--delta 0.02 is not below 1 / 60 privacy units").and(contains("1.667e-2")))
        .stderr(contains("--allow-large-delta"));
    assert!(!tmp.path().join("o").exists());
    linkrisk()
        .arg("train-heads")
        .arg(&input)
        .arg("--out")
        .arg(tmp.path().join("o"))
        .args(args)
        .arg("--allow-large-delta")
        .assert()
        .success();
    linkrisk()
        .arg("mitigate")
        .arg(&input)
        .args([
            "--delta",
            "0.5",
            "--epsilons",
            "1,inf",
            "--public-fraction",
            "0",
            "--epochs",
            "1",
            "--no-external",
        ])
        .assert()
        .code(2)
        .stderr(
            contains("--delta 0.5 is not below 1 / 60 privacy units").and(contains("members split `train`")),
        );
}

#[test]
fn privacy_audit_detects_a_broken_dp_sgd_and_reports_it() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("in");
    std::fs::create_dir(&input).unwrap();
    write_cohort(&input, true);
    let run = tmp.path().join("run");
    let output = linkrisk()
        .arg("privacy-audit")
        .arg(&input)
        .args([
            "--epsilons",
            "0.3",
            "--delta",
            "1e-3",
            "--canaries",
            "100",
            "--shadows",
            "2",
            "--epochs",
            "40",
        ])
        .args(["--public-fraction", "0", "--reference-reports", "50", "--fault", "no-noise", "--json"])
        .arg(tmp.path().join("audit.json"))
        .arg("--out")
        .arg(&run)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(tmp.path().join("audit.json")).unwrap()).unwrap();
    assert_eq!(json["audit"], "privacy_audit");
    assert_eq!(json["fault"], "no_noise");
    let p = &json["points"][0];
    let bound = p["one_run"]["epsilon_lower_bound"].as_f64().unwrap();
    let claimed = p["accountant_epsilon"].as_f64().unwrap();
    assert!(
        bound > claimed && p["lower_bound_exceeds_claim"] == true,
        "bound {bound} vs claimed {claimed}: {p}"
    );
    assert_eq!(p["privacy"]["private"], false);
    assert_eq!(p["membership"][1]["attack"], "lira_offline");
    assert!(stdout.contains("LOWER BOUND ABOVE THE ACCOUNTANT'S EPSILON"), "{stdout}");
    // The report's mitigation section carries the audit, naming the model.
    linkrisk().arg("report").arg(&run).arg("--md").assert().success();
    let md = std::fs::read_to_string(run.join("report.md")).unwrap();
    assert!(md.contains("in — empirical privacy audit"), "{md}");
    assert!(md.contains("The lower bound exceeds the accountant's epsilon"), "{md}");
    assert!(md.contains(&format!("{bound:.3}")), "{md}");
}
