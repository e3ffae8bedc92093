//! Hardening (issue 18): no panic, no silent acceptance, no lost audit. A closed pipe or a
//! full device on stdout, impossible numeric flags, bad view files, killed audits, outputs
//! that would overwrite an input.

use std::path::Path;
use std::process::{Command, Stdio};

use crate::report::fixture_run;
use crate::util::{run_err, SmallCohort};

fn binary() -> Command {
    Command::new(assert_cmd::cargo::cargo_bin("linkrisk"))
}

/// Run `linkrisk ARGS` with stdout a pipe whose reading end is closed before the command
/// writes: (exit code, stderr).
fn with_closed_stdout(args: &[&str]) -> (i32, String) {
    let mut child =
        binary().args(args).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("linkrisk starts");
    drop(child.stdout.take()); // the reader goes away, as `| head -1` does after one line
    let out = child.wait_with_output().expect("linkrisk ends");
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stderr).into_owned())
}

/// Run `linkrisk ARGS` with stdout on /dev/full: (exit code, stderr).
fn with_full_stdout(args: &[&str]) -> (i32, String) {
    let full = std::fs::OpenOptions::new().write(true).open("/dev/full").expect("/dev/full opens");
    let out = binary().args(args).stdout(full).stderr(Stdio::piped()).output().expect("linkrisk runs");
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stderr).into_owned())
}

fn s(path: &Path) -> &str {
    path.to_str().expect("utf-8 temp path")
}

/// A valid 24-record cohort whose `image` and `report` share one space (8-d).
fn same_dim_cohort() -> tempfile::TempDir {
    let mut cohort = SmallCohort::new(24);
    cohort.views = vec![("image".into(), 8), ("report".into(), 8)];
    cohort.write_temp()
}

#[test]
fn a_closed_pipe_ends_quietly_and_a_full_device_is_an_error() {
    let cohort = same_dim_cohort();
    let relink = ["relink", s(cohort.path()), "--bootstrap", "0", "--trials", "2", "--pools", "4"];
    let (code, stderr) = with_closed_stdout(&relink);
    assert_eq!((code, stderr.contains("panicked")), (0, false), "relink | head -1: {stderr}");
    let run = fixture_run();
    let gate = ["gate", s(run.path()), "--max-lift", "full=100", "-v", "--allow-skipped"];
    let (code, stderr) = with_closed_stdout(&gate);
    assert_eq!((code, stderr.contains("panicked")), (0, false), "gate -v | head -1: {stderr}");
    // A failing gate keeps its verdict when nobody reads its lines.
    let (code, stderr) =
        with_closed_stdout(&["gate", s(run.path()), "--max-lift", "full=1", "--allow-skipped"]);
    assert_eq!((code, stderr.contains("panicked")), (1, false), "failing gate: {stderr}");
    let (code, stderr) = with_closed_stdout(&["inspect", s(cohort.path()), "--json"]);
    assert_eq!((code, stderr.contains("panicked")), (0, false), "inspect --json: {stderr}");

    for args in [&relink[..], &gate[..], &["inspect", s(cohort.path())][..]] {
        let (code, stderr) = with_full_stdout(args);
        assert_eq!(code, 2, "{args:?} > /dev/full: {stderr}");
        assert!(stderr.contains("cannot write to standard output"), "{args:?}: {stderr}");
        assert!(stderr.contains("free space"), "{args:?}: says what to do: {stderr}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    }
}

#[test]
fn os_errors_are_printed_once_with_what_to_do() {
    // run.json that is a directory: an OS error (EISDIR), once, with what it means.
    let run = crate::util::temp_dir();
    std::fs::create_dir(run.path().join("run.json")).unwrap();
    let stderr = run_err(["gate", s(run.path()), "--max-reid-rank1", "0.5"], &["run.json"]);
    let first = stderr.find("(os error").expect("the OS error is named");
    assert!(!stderr[first + 1..].contains("(os error"), "printed twice: {stderr}");
    assert!(stderr.contains("a directory is named where a file is expected"), "{stderr}");
    // --json into a missing directory names the output, not its temporary file.
    let cohort = same_dim_cohort();
    let json = cohort.path().join("no-such-dir").join("summary.json");
    let stderr = run_err(["inspect", s(cohort.path()), "--json", s(&json)], &["no-such-dir/summary.json"]);
    assert!(!stderr.contains(".tmp-"), "names the output, not its temporary file: {stderr}");
    assert!(stderr.contains("create it first"), "says what to do: {stderr}");
}

#[test]
fn impossible_counts_exit_2_before_any_work_and_help_states_the_range() {
    let cohort = same_dim_cohort();
    let dir = s(cohort.path());
    let huge = "18446744073709551615"; // 2^64 - 1: was a capacity-overflow panic
    let big = "4294967295"; // 2^32 - 1: was an allocation abort (exit 134)
    for (audit, flag) in [
        ("relink", "--trials"),
        ("relink", "--bootstrap"),
        ("relink", "--csls-k"),
        ("relink", "--side-folds"),
        ("reid", "--bootstrap"),
        ("reid", "--csls-k"),
        ("reid", "--negatives-per-query"),
        ("utility", "--folds"),
    ] {
        for value in [huge, big] {
            run_err([audit, dir, flag, value], &[flag]);
        }
    }
    run_err(["relink", dir, "--trials", "0"], &["--trials"]);
    run_err(["relink", dir, "--leaked-pairs", &format!("10,{huge}")], &["--leaked-pairs"]);
    run_err(["synth", "--out", dir, "--patients", huge], &["--patients"]);
    let help = crate::util::run_ok(["relink", "--help"]).stdout;
    assert!(help.contains("[range: 1..=10000]"), "--trials states its range: {help}");
    assert!(help.contains("[range: 0..=100000]"), "--bootstrap states its range: {help}");
    // The library refuses the same values from an audit config (no CLI parser in between).
    let cfg = linkrisk::audit::relink::RelinkConfig { trials: usize::MAX, ..Default::default() };
    assert!(cfg.validate().unwrap_err().to_string().contains("--trials"));
}

#[test]
fn an_output_never_replaces_an_input_and_json_refuses_a_directory() {
    let cohort = same_dim_cohort();
    let dir = cohort.path();
    let metadata = dir.join("metadata.csv");
    let before = std::fs::read(&metadata).unwrap();
    let relink = |json: &Path| {
        run_err(
            ["relink", s(dir), "--bootstrap", "0", "--trials", "2", "--pools", "4", "--json", s(json)],
            &[],
        )
    };
    let stderr = relink(&metadata);
    assert!(stderr.contains("metadata.csv") && stderr.contains("is an input"), "{stderr}");
    assert_eq!(std::fs::read(&metadata).unwrap(), before, "the cohort is intact");
    let image = dir.join("image.npy");
    let image_before = std::fs::read(&image).unwrap();
    let stderr = run_err(["inspect", s(dir), "--json", s(&image)], &["image.npy", "is an input"]);
    assert!(!stderr.contains("panicked"));
    assert_eq!(std::fs::read(&image).unwrap(), image_before);
    let stderr = relink(dir);
    assert!(stderr.contains("is a directory"), "{stderr}");
    crate::util::run_ok(["inspect", s(dir)]);
}

/// Send `signal` (`TERM`, `KILL`) to process `pid` with kill(1).
fn kill(signal: &str, pid: u32) {
    let status = Command::new("kill").arg(format!("-{signal}")).arg(pid.to_string()).status().unwrap();
    assert!(status.success() || signal == "KILL", "kill -{signal} {pid}");
}

/// Files of `dir` whose name says they were left over by a writer.
fn leftovers(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".tmp-") || n.ends_with(".lock") || n.contains(".old-"))
        .collect()
}

#[test]
fn a_killed_audit_leaves_a_run_directory_the_next_audit_writes_at_once() {
    let cohort = same_dim_cohort();
    let dir = s(cohort.path());
    let run = crate::util::temp_dir();
    let out = s(run.path());
    let audit = ["reid", dir, "--bootstrap", "2000", "--out", out];
    for (signal, delay_ms) in [("TERM", 250), ("KILL", 200), ("TERM", 100), ("KILL", 5)] {
        let mut child = binary().args(audit).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(delay_ms));
        kill(signal, child.id());
        let _ = child.wait();
        if signal == "TERM" {
            assert!(leftovers(run.path()).is_empty(), "SIGTERM cleans up: {:?}", leftovers(run.path()));
        }
        let started = std::time::Instant::now();
        crate::util::run_ok(["reid", dir, "--bootstrap", "0", "--out", out]);
        assert!(
            started.elapsed() < std::time::Duration::from_secs(20),
            "after SIGKILL/SIGTERM the next audit writes at once ({:?})",
            started.elapsed()
        );
    }
    // A lock exactly as SIGKILL leaves it during the write: owner dead, temp file beside.
    let mut gone = Command::new("true").spawn().unwrap();
    let pid = gone.id();
    gone.wait().unwrap();
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    std::fs::write(
        run.path().join("run.json.lock"),
        format!(r#"{{"pid": {pid}, "host": "{}", "created_unix": 0}}"#, host.trim()),
    )
    .unwrap();
    let started = std::time::Instant::now();
    crate::util::run_ok(["reid", dir, "--bootstrap", "0", "--out", out]);
    assert!(started.elapsed() < std::time::Duration::from_secs(20), "dead owner's lock taken over");
    crate::util::run_ok(["gate", out, "--max-reid-rank1", "1"]);
}

#[test]
fn a_killed_synth_leaves_the_old_cohort_or_the_new_one() {
    let tmp = crate::util::temp_dir();
    let out = tmp.path().join("cohort");
    let synth = |seed: &str| {
        [
            "synth",
            "--out",
            s(&out),
            "--patients",
            "3000",
            "--dim",
            "64",
            "--feature-dim",
            "96",
            "--seed",
            seed,
        ]
        .map(String::from)
    };
    crate::util::run_ok(synth("1"));
    let old = std::fs::read(out.join("image.npy")).unwrap();
    let old_metadata = std::fs::read(out.join("metadata.csv")).unwrap();
    let reference = tmp.path().join("reference");
    crate::util::run_ok([
        "synth",
        "--out",
        s(&reference),
        "--patients",
        "3000",
        "--dim",
        "64",
        "--feature-dim",
        "96",
        "--seed",
        "2",
    ]);
    let new = std::fs::read(reference.join("image.npy")).unwrap();
    for (signal, delay_ms) in [("KILL", 20), ("TERM", 60), ("KILL", 120), ("TERM", 180)] {
        let mut child =
            binary().args(synth("2")).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(delay_ms));
        kill(signal, child.id());
        let _ = child.wait();
        crate::util::run_ok(["inspect", s(&out)]);
        let image = std::fs::read(out.join("image.npy")).unwrap();
        let metadata = std::fs::read(out.join("metadata.csv")).unwrap();
        assert!(image == old || image == new, "{signal} after {delay_ms} ms: neither cohort");
        let expected = if image == old {
            old_metadata.clone()
        } else {
            std::fs::read(reference.join("metadata.csv")).unwrap()
        };
        assert!(metadata == expected, "{signal} after {delay_ms} ms: metadata and views of two cohorts");
        // SIGKILL cannot be caught: its hidden temporary directory may stay (every reader
        // ignores it); SIGTERM removes the process's own.
        let pid = child.id().to_string();
        let own: Vec<String> = leftovers(tmp.path()).into_iter().filter(|n| n.ends_with(&pid)).collect();
        if signal == "TERM" {
            assert!(own.is_empty(), "SIGTERM cleans up: {own:?}");
        }
        // Put the old cohort back for the next round.
        crate::util::run_ok(synth("1"));
    }
    // A directory that is not a cohort is never replaced.
    let home = tmp.path().join("notes");
    std::fs::create_dir(&home).unwrap();
    std::fs::write(home.join("todo.txt"), b"keep").unwrap();
    run_err(["synth", "--out", s(&home), "--patients", "10"], &["neither empty nor a cohort directory"]);
    assert_eq!(std::fs::read(home.join("todo.txt")).unwrap(), b"keep");
}
