//! Sharded re-identification end to end: `linkrisk reid --shard I/N` under both attackers,
//! `linkrisk merge` (the merged JSON and run-directory entries equal the single run's),
//! resume, refusals (exit 2) and `linkrisk slurm reid`.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::util::{linkrisk, run_err, run_ok, run_shard, shard_partial};

/// Audit flags: the trained attacker beside nearest neighbour, bootstrap intervals,
/// sampled verification negatives.
const FLAGS: &[&str] =
    &["--attacker", "linear-metric", "--bootstrap", "50", "--negatives-per-query", "9", "--seed", "7"];

/// A synthetic cohort (train, test and external splits; several studies per patient).
fn cohort(dir: &Path, patients: usize) {
    let patients = patients.to_string();
    run_ok([
        "synth".as_ref(),
        "--out".as_ref(),
        dir.as_os_str(),
        "--patients".as_ref(),
        patients.as_ref(),
        "--dim".as_ref(),
        "16".as_ref(),
        "--feature-dim".as_ref(),
        "4".as_ref(),
        "--seed".as_ref(),
        "2".as_ref(),
    ] as [&std::ffi::OsStr; 11]);
}

fn read_json(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// Run shard `i`/`n` with `flags` into RUN/shards/; returns stdout.
fn shard(dir: &Path, run_dir: &Path, flags: &[&str], i: usize, n: usize) -> String {
    run_shard("reid", dir, run_dir, flags, i, n)
}

fn partial(run_dir: &Path, i: usize, n: usize) -> PathBuf {
    shard_partial("reid", run_dir, i, n)
}

fn audits(run_dir: &Path) -> Vec<Value> {
    let run_file = read_json(&run_dir.join("run.json"));
    run_file["runs"].as_array().unwrap().iter().map(|r| r["audit"].clone()).collect()
}

#[test]
fn merged_reid_shards_equal_the_single_run_and_land_in_the_run_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("cohort");
    cohort(&dir, 300);
    let single_run = tmp.path().join("SINGLE");
    let single_json = tmp.path().join("single.json");
    linkrisk()
        .arg("reid")
        .arg(&dir)
        .args(FLAGS)
        .arg("--json")
        .arg(&single_json)
        .arg("--out")
        .arg(&single_run)
        .assert()
        .success();
    let single = read_json(&single_json);
    let attackers: Vec<&str> =
        single["attackers"].as_array().unwrap().iter().map(|a| a["attacker"].as_str().unwrap()).collect();
    assert_eq!(attackers, ["nearest-neighbour", "linear-metric"]);

    let run_dir = tmp.path().join("RUN");
    let n = 3;
    for i in 1..=n {
        let stdout = shard(&dir, &run_dir, FLAGS, i, n);
        assert!(stdout.contains(&format!("shard {i}/{n}: queries")), "{stdout}");
    }
    // Resume: a complete shard is not recomputed.
    let before = std::fs::metadata(partial(&run_dir, 3, n)).unwrap().modified().unwrap();
    let stdout = shard(&dir, &run_dir, FLAGS, 3, n);
    assert!(
        stdout.contains("already holds this shard's complete result") && stdout.contains("skipped"),
        "{stdout}"
    );
    assert_eq!(std::fs::metadata(partial(&run_dir, 3, n)).unwrap().modified().unwrap(), before);

    let merged_json = run_dir.join("reid.json");
    let paths: Vec<PathBuf> = (1..=n).rev().map(|i| partial(&run_dir, i, n)).collect();
    linkrisk()
        .arg("merge")
        .args(&paths)
        .arg("--json")
        .arg(&merged_json)
        .arg("--out")
        .arg(&run_dir)
        .assert()
        .success();
    // Byte for byte: every number, every interval, the trained attacker's report.
    assert_eq!(std::fs::read(&merged_json).unwrap(), std::fs::read(&single_json).unwrap());
    // The run directory holds what `reid --out` records: one entry per attacker.
    assert_eq!(audits(&run_dir), audits(&single_run));
    assert_eq!(audits(&run_dir).len(), 2);
    // The table names both attackers.
    let table = run_ok(["merge".as_ref(), run_dir.join("shards").as_os_str()]).stdout;
    assert!(table.contains("linear-metric") && table.contains("nearest-neighbour"), "{table}");
}

#[test]
fn reid_merge_refuses_other_settings_missing_duplicated_and_mixed_shards() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("cohort");
    cohort(&dir, 120);
    let run_dir = tmp.path().join("RUN");
    for i in 1..=3 {
        shard(&dir, &run_dir, FLAGS, i, 3);
    }
    let p = |i| partial(&run_dir, i, 3);
    let s = |p: &PathBuf| p.to_str().unwrap().to_string();
    let err = run_err(["merge".to_string(), s(&p(1)), s(&p(3))], &["missing shard 2/3"]);
    assert!(err.contains("--shard I/3"), "{err}");
    run_err(["merge".to_string(), s(&p(1)), s(&p(2)), s(&p(2)), s(&p(3))], &["shard 2/3 is given twice"]);
    // Another seed: a different fingerprint, named in the message.
    let other = tmp.path().join("other.lrp");
    let mut flags: Vec<&str> = FLAGS.to_vec();
    let at = flags.iter().position(|f| *f == "--seed").unwrap();
    flags[at + 1] = "8";
    linkrisk()
        .arg("reid")
        .arg(&dir)
        .args(&flags)
        .args(["--shard", "2/3", "--partial"])
        .arg(&other)
        .assert()
        .success();
    run_err(
        ["merge".to_string(), s(&p(1)), s(&other), s(&p(3))],
        &["other inputs or settings", "setting seed: 7 vs 8"],
    );
    // Another attacker set.
    let nn = tmp.path().join("nn.lrp");
    linkrisk()
        .arg("reid")
        .arg(&dir)
        .args(["--attacker", "none", "--bootstrap", "50", "--negatives-per-query", "9", "--seed", "7"])
        .args(["--shard", "2/3", "--partial"])
        .arg(&nn)
        .assert()
        .success();
    run_err(["merge".to_string(), s(&p(1)), s(&nn), s(&p(3))], &["setting attackers"]);
    // A relink partial among reid partials: one audit at a time.
    let relink = tmp.path().join("relink.lrp");
    linkrisk()
        .arg("relink")
        .arg(&dir)
        .args(["--split", "all", "--pools", "10,full", "--shard", "2/3", "--partial"])
        .arg(&relink)
        .assert()
        .success();
    run_err(
        ["merge".to_string(), s(&p(1)), s(&relink), s(&p(3))],
        &["`relink` audit", "`reid` audit", "one audit at a time"],
    );
    // What a shard refuses, before any work.
    let d = dir.to_str().unwrap();
    let out = run_dir.to_str().unwrap();
    run_err(
        ["reid", d, "--shard", "1/2", "--out", out, "--json", "x.json"],
        &["--json with --shard", "linkrisk merge"],
    );
    run_err(
        ["reid", d, "--shard", "1/2", "--out", out, "--per-record", "x.csv"],
        &["--per-record with --shard"],
    );
    run_err(
        ["reid", d, "--shard", "1/2", "--out", out, "--attack", "csls"],
        &["--attack csls with --shard", "not sharded"],
    );
    run_err(["reid", d, "--shard", "1/2"], &["--out RUN", "--partial FILE"]);
    run_err(["reid", d, "--shard", "3/2", "--out", out], &["--shard", "numbered 1 to 2"]);
    assert!(!partial(&run_dir, 1, 2).exists(), "a refused shard writes nothing");
}

#[test]
fn slurm_reid_writes_the_array_and_merge_scripts_and_refuses_unshardable_flags() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("cohort");
    cohort(&dir, 120);
    let run_dir = tmp.path().join("RUN");
    let base = |extra: &[&str]| -> Vec<String> {
        let mut v: Vec<String> =
            ["slurm", "reid", dir.to_str().unwrap(), "--shards", "2", "--out", run_dir.to_str().unwrap()]
                .iter()
                .map(|s| s.to_string())
                .collect();
        v.extend(extra.iter().map(|s| s.to_string()));
        v
    };
    run_err(base(&["--", "--per-record", "x.csv"]), &["--per-record after `--`"]);
    run_err(base(&["--", "--attack", "csls"]), &["--attack after `--`", "not sharded"]);
    run_err(base(&["--", "--json", "x.json"]), &["--json after `--`", "RUN/reid.json"]);
    run_err(base(&["--", "--pools", "10"]), &["not valid `linkrisk reid` flags"]);
    assert!(!run_dir.join("slurm").exists(), "nothing written for bad flags");

    let mut args = base(&["--"]);
    args.extend(FLAGS.iter().map(|s| s.to_string()));
    run_ok(args);
    let run_abs = run_dir.canonicalize().unwrap();
    let array = std::fs::read_to_string(run_abs.join("slurm/reid-array.sbatch")).unwrap();
    assert!(array.contains("#SBATCH --array=1-2"), "{array}");
    assert!(array.contains(" reid ") && array.contains("--shard \"${SLURM_ARRAY_TASK_ID}/2\""), "{array}");
    let merge = std::fs::read_to_string(run_abs.join("slurm/reid-merge.sbatch")).unwrap();
    assert!(merge.contains("shards/reid.shard-0002-of-0002.lrp"), "{merge}");
    assert!(merge.contains(&format!("--json {}/reid.json", run_abs.display())), "{merge}");
    // Both tasks run by hand, then the merge job's command: the single run's report.
    for task in ["1", "2"] {
        let status = std::process::Command::new("bash")
            .arg(run_abs.join("slurm/reid-array.sbatch"))
            .env("SLURM_ARRAY_TASK_ID", task)
            .stdout(std::process::Stdio::null())
            .status()
            .unwrap();
        assert!(status.success());
    }
    let status = std::process::Command::new("bash")
        .arg(run_abs.join("slurm/reid-merge.sbatch"))
        .stdout(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    let single = tmp.path().join("single.json");
    linkrisk().arg("reid").arg(&dir).args(FLAGS).arg("--json").arg(&single).assert().success();
    assert_eq!(std::fs::read(run_abs.join("reid.json")).unwrap(), std::fs::read(&single).unwrap());
}
