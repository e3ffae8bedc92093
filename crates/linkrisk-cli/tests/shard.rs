//! Sharded audits end to end: `linkrisk relink --shard I/N`, `linkrisk merge` (the merged
//! JSON equals the single run's byte for byte in every number), refusals (exit 2), resume
//! after a killed shard, and the job scripts of `linkrisk slurm` (submitted to a fake
//! `sbatch` here; tests/slurm/e2e.sh submits to a real Slurm cluster).

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::util::{linkrisk, run, run_err, run_ok, run_shard, shard_partial};

/// Audit flags used throughout: every kind of per-query record (random and
/// pathology-matched pools, both directions, bootstrap intervals, subgroups).
const FLAGS: &[&str] = &[
    "--attack",
    "none",
    "--split",
    "all",
    "--pools",
    "2,10,50,full",
    "--trials",
    "3",
    "--hard-negatives",
    "--direction",
    "both",
    "--bootstrap",
    "50",
    "--seed",
    "11",
];

/// A synthetic cohort of `patients` patients (image and report views, findings, sex).
fn cohort(dir: &Path, patients: usize) {
    run_ok([
        "synth".as_ref(),
        "--out".as_ref(),
        dir.as_os_str(),
        "--patients".as_ref(),
        patients.to_string().as_ref(),
        "--dim".as_ref(),
        "16".as_ref(),
        "--seed".as_ref(),
        "5".as_ref(),
    ] as [&std::ffi::OsStr; 9]);
}

fn read_json(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// The single run's JSON report.
fn single(dir: &Path, out: &Path) -> Value {
    let json = out.join("single.json");
    linkrisk().arg("relink").arg(dir).args(FLAGS).arg("--json").arg(&json).assert().success();
    read_json(&json)
}

/// Run shard `i`/`n` into RUN/shards/; returns stdout.
fn shard(dir: &Path, run_dir: &Path, i: usize, n: usize) -> String {
    run_shard("relink", dir, run_dir, FLAGS, i, n)
}

fn partial(run_dir: &Path, i: usize, n: usize) -> PathBuf {
    shard_partial("relink", run_dir, i, n)
}

/// Merge partials into RUN/merged.json (and RUN/run.json); returns the report.
fn merge(paths: &[PathBuf], run_dir: &Path) -> Value {
    let json = run_dir.join("merged.json");
    linkrisk().arg("merge").args(paths).arg("--json").arg(&json).arg("--out").arg(run_dir).assert().success();
    read_json(&json)
}

#[test]
fn merged_shards_equal_the_single_run_and_land_in_the_run_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("cohort");
    cohort(&dir, 60);
    let single = single(&dir, tmp.path());
    assert!(single["reverse"].is_object() && single["pools"].as_array().unwrap().len() >= 4);
    let run_dir = tmp.path().join("RUN");
    let n = 3;
    for i in 1..=n {
        let stdout = shard(&dir, &run_dir, i, n);
        assert!(stdout.contains(&format!("shard {i}/{n}: queries")), "{stdout}");
    }
    // Resume: a complete shard is not recomputed.
    let before = std::fs::metadata(partial(&run_dir, 2, n)).unwrap().modified().unwrap();
    let stdout = shard(&dir, &run_dir, 2, n);
    assert!(
        stdout.contains("already holds this shard's complete result") && stdout.contains("skipped"),
        "{stdout}"
    );
    assert_eq!(std::fs::metadata(partial(&run_dir, 2, n)).unwrap().modified().unwrap(), before);

    let paths: Vec<PathBuf> = (1..=n).rev().map(|i| partial(&run_dir, i, n)).collect();
    let merged = merge(&paths, &run_dir);
    assert_eq!(merged, single, "merged report differs from the single run");
    // Every number equal as text too (no float reformatting anywhere).
    assert_eq!(merged.to_string(), single.to_string());
    // The run directory records the same report as `relink --out` would.
    let run_file = read_json(&run_dir.join("run.json"));
    let entries = run_file["runs"].as_array().unwrap();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0]["audit"], single);
    // A directory argument stands for its partials.
    let stdout =
        run_ok(["merge".as_ref(), run_dir.join("shards").as_os_str(), "--json".as_ref(), "-".as_ref()])
            .stdout;
    assert_eq!(serde_json::from_str::<Value>(&stdout).unwrap(), single);
    // `linkrisk report` renders the merged audit from the run directory.
    run_ok(["report".as_ref(), run_dir.as_os_str(), "--md".as_ref()]);
    let md = std::fs::read_to_string(run_dir.join("report.md")).unwrap();
    assert!(
        md.to_lowercase().contains("relink") || md.contains("Re-linkage") || md.contains("re-linkage"),
        "{md}"
    );
}

#[test]
fn merge_refuses_other_settings_missing_and_duplicated_shards() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("cohort");
    cohort(&dir, 12);
    let run_dir = tmp.path().join("RUN");
    for i in 1..=3 {
        shard(&dir, &run_dir, i, 3);
    }
    let p = |i| partial(&run_dir, i, 3);
    let err = run_err(["merge", p(1).to_str().unwrap(), p(3).to_str().unwrap()], &["missing shard 2/3"]);
    assert!(err.contains("--shard I/3"), "{err}");
    run_err(
        [
            "merge",
            p(1).to_str().unwrap(),
            p(2).to_str().unwrap(),
            p(2).to_str().unwrap(),
            p(3).to_str().unwrap(),
        ],
        &["shard 2/3 is given twice"],
    );
    // Another seed: a different fingerprint, named in the message.
    let other = tmp.path().join("other.lrp");
    let mut flags: Vec<&str> = FLAGS.to_vec();
    let at = flags.iter().position(|f| *f == "--seed").unwrap();
    flags[at + 1] = "12";
    linkrisk()
        .arg("relink")
        .arg(&dir)
        .args(&flags)
        .args(["--shard", "2/3", "--partial"])
        .arg(&other)
        .assert()
        .success();
    run_err(
        ["merge", p(1).to_str().unwrap(), other.to_str().unwrap(), p(3).to_str().unwrap()],
        &["other inputs or settings", "setting seed: 11 vs 12"],
    );
    // Changed cohort contents: a different fingerprint too.
    let changed = tmp.path().join("changed");
    std::fs::create_dir_all(&changed).unwrap();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), changed.join(entry.file_name())).unwrap();
    }
    // The lowest mantissa byte of the last value of the image view: still a valid cohort.
    let mut image = std::fs::read(changed.join("image.npy")).unwrap();
    let at = image.len() - 4;
    image[at] ^= 1;
    std::fs::write(changed.join("image.npy"), image).unwrap();
    let moved = tmp.path().join("moved.lrp");
    linkrisk()
        .arg("relink")
        .arg(&changed)
        .args(FLAGS)
        .args(["--shard", "3/3", "--partial"])
        .arg(&moved)
        .assert()
        .success();
    run_err(
        ["merge", p(1).to_str().unwrap(), p(2).to_str().unwrap(), moved.to_str().unwrap()],
        &["image.npy has different contents"],
    );
    // Another shard count.
    let four = tmp.path().join("four.lrp");
    linkrisk()
        .arg("relink")
        .arg(&dir)
        .args(FLAGS)
        .args(["--shard", "1/4", "--partial"])
        .arg(&four)
        .assert()
        .success();
    run_err(
        ["merge", four.to_str().unwrap(), p(2).to_str().unwrap(), p(3).to_str().unwrap()],
        &["shard count 4 vs 3"],
    );
    // A truncated file (what a killed writer without atomic rename would leave).
    let bytes = std::fs::read(p(2)).unwrap();
    let cut = tmp.path().join("cut.lrp");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    run_err(
        ["merge", p(1).to_str().unwrap(), cut.to_str().unwrap(), p(3).to_str().unwrap()],
        &["not a complete partial result"],
    );
    // Not a partial at all; no partials at all.
    run_err(["merge", dir.join("metadata.csv").to_str().unwrap()], &["not a linkrisk partial result"]);
    let out = run(["merge"]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    // Bad --shard values and a shard without a destination.
    run_err(
        ["relink", dir.to_str().unwrap(), "--shard", "4/3", "--out", "x"],
        &["--shard", "numbered 1 to 3"],
    );
    run_err(["relink", dir.to_str().unwrap(), "--shard", "two", "--out", "x"], &["--shard", "I/N"]);
    run_err(
        ["relink", dir.to_str().unwrap(), "--split", "all", "--shard", "1/2"],
        &["--out RUN", "--partial FILE"],
    );
}

/// Kill a shard while it runs (SIGKILL, no chance to clean up), at several moments: the
/// partial either does not exist or is complete, never half-written; rerunning the shard
/// (resubmission) completes it and the merge equals the single run.
#[test]
fn a_killed_shard_leaves_no_partial_and_resubmission_gives_the_same_result() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("cohort");
    cohort(&dir, 400);
    let single = single(&dir, tmp.path());
    let run_dir = tmp.path().join("RUN");
    shard(&dir, &run_dir, 1, 2);
    let target = partial(&run_dir, 2, 2);
    let bin = assert_cmd::cargo::cargo_bin("linkrisk");
    let mut killed_before_done = 0;
    for delay_ms in [5u64, 40, 150, 400] {
        let _ = std::fs::remove_file(&target);
        let mut child = std::process::Command::new(&bin)
            .arg("relink")
            .arg(&dir)
            .args(FLAGS)
            .args(["--shard", "2/2", "--out"])
            .arg(&run_dir)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(delay_ms));
        child.kill().unwrap();
        child.wait().unwrap();
        if target.exists() {
            // Finished before the kill: then it must be complete and mergeable.
            linkrisk().arg("merge").arg(partial(&run_dir, 1, 2)).arg(&target).assert().success();
        } else {
            killed_before_done += 1;
        }
    }
    assert!(killed_before_done > 0, "every shard finished within 400 ms: use a larger cohort");
    // A stale temporary file from the killed run does not confuse the rerun or the merge.
    // The rerun computes the shard, or skips it when the last attempt finished before its kill.
    let complete_before = target.exists();
    let stdout = shard(&dir, &run_dir, 2, 2);
    let expected = if complete_before { "skipped" } else { "shard 2/2: queries" };
    assert!(stdout.contains(expected), "{stdout}");
    let merged = merge(&[partial(&run_dir, 1, 2), target], &run_dir);
    assert_eq!(merged, single);
}

/// A fake `sbatch` that records its arguments and prints job ids, first on PATH.
fn fake_sbatch(bin_dir: &Path, log: &Path) -> std::ffi::OsString {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(bin_dir).unwrap();
    let script = format!(
        "#!/bin/sh\necho \"$@\" >> '{}'\nn=$(wc -l < '{}')\necho \"$((4100 + n));cluster\"\n",
        log.display(),
        log.display()
    );
    let path = bin_dir.join("sbatch");
    std::fs::write(&path, script).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    let old = std::env::var_os("PATH").unwrap_or_default();
    let mut paths = vec![bin_dir.to_path_buf()];
    paths.extend(std::env::split_paths(&old));
    std::env::join_paths(paths).unwrap()
}

#[test]
fn slurm_writes_an_array_and_a_dependent_merge_job() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("cohort");
    cohort(&dir, 12);
    let run_dir = tmp.path().join("RUN");
    let out = run_ok([
        "slurm".as_ref(),
        "relink".as_ref(),
        dir.as_os_str(),
        "--shards".as_ref(),
        "4".as_ref(),
        "--out".as_ref(),
        run_dir.as_os_str(),
        "--partition".as_ref(),
        "short".as_ref(),
        "--time".as_ref(),
        "1:00:00".as_ref(),
        "--cpus-per-task".as_ref(),
        "8".as_ref(),
        "--mem".as_ref(),
        "16G".as_ref(),
        "--".as_ref(),
        "--pools".as_ref(),
        "10,full".as_ref(),
        "--seed".as_ref(),
        "3".as_ref(),
        "--split".as_ref(),
        "all".as_ref(),
    ] as [&std::ffi::OsStr; 22]);
    assert!(out.stdout.contains("sbatch --dependency=afterok:$jid"), "{}", out.stdout);
    let run_abs = run_dir.canonicalize().unwrap();
    let array = std::fs::read_to_string(run_abs.join("slurm/relink-array.sbatch")).unwrap();
    for line in [
        "#SBATCH --array=1-4",
        "#SBATCH --partition=short",
        "#SBATCH --time=1:00:00",
        "#SBATCH --cpus-per-task=8",
        "#SBATCH --mem=16G",
        "RAYON_NUM_THREADS=\"$SLURM_CPUS_PER_TASK\"",
        " --pools 10,full --seed 3 --split all --shard \"${SLURM_ARRAY_TASK_ID}/4\" --out ",
    ] {
        assert!(array.contains(line), "missing `{line}` in\n{array}");
    }
    assert!(
        array.contains(&format!("#SBATCH --output={}/logs/relink-shard-%a-of-4", run_abs.display())),
        "{array}"
    );
    let merge = std::fs::read_to_string(run_abs.join("slurm/relink-merge.sbatch")).unwrap();
    assert!(merge.contains(" merge "), "{merge}");
    for i in 1..=4 {
        assert!(merge.contains(&format!("shards/relink.shard-{i:04}-of-0004.lrp")), "{merge}");
    }
    assert!(
        merge.contains(&format!("--json {}/relink.json --out {}", run_abs.display(), run_abs.display())),
        "{merge}"
    );
    assert!(!merge.contains("--array"), "{merge}");
    assert!(run_abs.join("logs").is_dir() && run_abs.join("shards").is_dir());

    // The array task's command, run by hand as task 2, writes shard 2/4.
    let status = std::process::Command::new("bash")
        .arg(run_abs.join("slurm/relink-array.sbatch"))
        .env("SLURM_ARRAY_TASK_ID", "2")
        .stdout(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    assert!(run_abs.join("shards/relink.shard-0002-of-0004.lrp").is_file());

    // --submit: the array first, then the merge with afterok on the array's id.
    let log = tmp.path().join("sbatch.log");
    let path = fake_sbatch(&tmp.path().join("bin"), &log);
    let out = linkrisk()
        .env("PATH", path)
        .args(["slurm", "relink"])
        .arg(&dir)
        .args(["--shards", "4", "--out"])
        .arg(&run_dir)
        .args(["--submit", "--", "--split", "all"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(stdout.contains("array job 4101 (4 tasks)") && stdout.contains("merge job 4102"), "{stdout}");
    let calls = std::fs::read_to_string(&log).unwrap();
    let calls: Vec<&str> = calls.lines().collect();
    assert_eq!(calls.len(), 2, "{calls:?}");
    assert!(calls[0].starts_with("--parsable ") && calls[0].ends_with("relink-array.sbatch"), "{calls:?}");
    assert!(
        calls[1].contains("--dependency=afterok:4101") && calls[1].ends_with("relink-merge.sbatch"),
        "{calls:?}"
    );
}

#[test]
fn slurm_rejects_bad_audit_flags_before_writing_anything() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("cohort");
    cohort(&dir, 12);
    let run_dir = tmp.path().join("RUN");
    let base = |extra: &[&str]| -> Vec<String> {
        let mut v: Vec<String> =
            ["slurm", "relink", dir.to_str().unwrap(), "--shards", "4", "--out", run_dir.to_str().unwrap()]
                .iter()
                .map(|s| s.to_string())
                .collect();
        v.extend(extra.iter().map(|s| s.to_string()));
        v
    };
    run_err(base(&["--", "--pools", "ten"]), &["--pools", "ten"]);
    run_err(base(&["--", "--no-such-flag"]), &["not valid `linkrisk relink` flags", "--no-such-flag"]);
    run_err(base(&["--", "--shard", "1/2"]), &["--shard after `--`", "linkrisk slurm sets it"]);
    run_err(base(&["--", "--json", "x.json"]), &["--json after `--`"]);
    run_err(base(&["--time", "1 h"]), &["--time"]);
    let mut zero = base(&[]);
    zero[4] = "0".into();
    run_err(zero, &["--shards", "0 is not in 1..=100000"]);
    assert!(!run_dir.join("slurm").exists(), "nothing written for bad flags");
    // Submitting without Slurm says so.
    let out = linkrisk()
        .env("PATH", tmp.path().join("empty-bin"))
        .args(base(&["--submit", "--", "--split", "all"]))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("`sbatch` not found on PATH"));
}

/// A shard ranks from its memory-mapped galleries; reading them into memory instead
/// (`LINKRISK_NO_MMAP=1`) writes the byte-identical partial. A bad gallery row stops the
/// shard (exit 2) with the file, the row of the file and, for a non-finite value, the column.
#[test]
fn a_mapped_shard_equals_a_read_one_and_bad_gallery_rows_are_named() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("cohort");
    cohort(&dir, 40);
    let (mapped, read) = (tmp.path().join("mapped.lrp"), tmp.path().join("read.lrp"));
    for (path, no_mmap) in [(&mapped, "0"), (&read, "1")] {
        linkrisk()
            .arg("relink")
            .arg(&dir)
            .args(FLAGS)
            .args(["--shard", "2/3", "--partial"])
            .arg(path)
            .env("LINKRISK_NO_MMAP", no_mmap)
            .assert()
            .success();
    }
    assert_eq!(std::fs::read(&mapped).unwrap(), std::fs::read(&read).unwrap());

    let report = dir.join("report.npy");
    let mut bytes = std::fs::read(&report).unwrap();
    let header_len = 10 + u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
    let dim = 16;
    let at = header_len + (3 * dim + 5) * 4;
    bytes[at..at + 4].copy_from_slice(&f32::NAN.to_le_bytes());
    std::fs::write(&report, &bytes).unwrap();
    let partial = tmp.path().join("bad.lrp");
    let args = |shard: &str| {
        vec![
            "relink".to_string(),
            dir.to_str().unwrap().to_string(),
            "--split".into(),
            "all".into(),
            "--shard".into(),
            shard.into(),
            "--partial".into(),
            partial.to_str().unwrap().to_string(),
        ]
    };
    run_err(args("1/2"), &["report.npy", "row 3 ", "column 5", "not finite"]);
    bytes[at..at + 4].copy_from_slice(&1.0f32.to_le_bytes());
    let zero = header_len + 7 * dim * 4;
    bytes[zero..zero + dim * 4].fill(0);
    std::fs::write(&report, &bytes).unwrap();
    run_err(args("2/2"), &["report.npy", "row 7 ", "all-zero"]);
    assert!(!partial.exists());
}
