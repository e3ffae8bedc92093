//! Tests of the run directory: keys, replacement, labels bound to cohorts, locking, atomic
//! writes and files of older versions.

use super::*;
use serde_json::json;

#[test]
fn key_names_kind_views_split_attacker_label() {
    let relink = json!({"audit": "relink", "query_view": "image", "gallery_view": "report"});
    assert_eq!(entry_key(&relink, None).unwrap(), "relink:image->report");
    let reid = json!({"audit": "reid", "view": "image", "split": "test", "attacker": "linear-metric"});
    assert_eq!(entry_key(&reid, Some("model-a")).unwrap(), "reid:image@test+linear-metric#model-a");
    assert_eq!(entry_key(&json!({"audit": "mitigate"}), None).unwrap(), "mitigate");
    // Non-string qualifiers are not part of the key.
    assert_eq!(
        entry_key(&json!({"audit": "utility", "view": "image", "split": 3}), None).unwrap(),
        "utility:image"
    );
    let err = entry_key(&json!({"view": "image"}), None).unwrap_err().to_string();
    assert!(err.contains("\"audit\" field"), "{err}");
    assert!(entry_key(&json!([1, 2]), None).is_err());
}

#[test]
fn record_replaces_same_key_and_appends_new_ones() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("run");
    let mut run = RunDir::open_or_create(&dir).unwrap();
    let a1 = json!({"audit": "relink", "query_view": "image", "gallery_view": "report", "n_queries": 1});
    let a2 = json!({"audit": "relink", "query_view": "image", "gallery_view": "report", "n_queries": 2});
    let b = json!({"audit": "relink", "query_view": "report", "gallery_view": "image"});
    run.record(vec!["linkrisk".into(), "relink".into()], Some(7), 1.5, a1).unwrap();
    run.record(vec!["linkrisk".into()], None, 0.5, b).unwrap();
    let key = run.record(vec!["linkrisk".into(), "relink".into(), "again".into()], Some(8), 2.0, a2).unwrap();
    assert_eq!(key, "relink:image->report");
    // A fresh handle sees what was written.
    let reread = RunDir::open(&dir).unwrap();
    let runs = &reread.run_file().runs;
    assert_eq!(runs.len(), 2);
    assert_eq!(runs[0].audit["n_queries"], 2, "same key replaced in place");
    assert_eq!(runs[0].seed, Some(8));
    assert_eq!(runs[0].command.len(), 3);
    assert_eq!(runs[1].key, "relink:report->image");
    assert_eq!(reread.run_file().linkrisk_version, crate::VERSION);
    assert!(!dir.join("run.json.lock").exists(), "lock released");
}

#[test]
fn labels_keep_measurements_apart_and_cohort_is_stored() {
    let tmp = tempfile::tempdir().unwrap();
    let mut run = RunDir::open_or_create(tmp.path()).unwrap();
    let audit = json!({"audit": "utility", "view": "image", "macro_auroc": 0.8});
    for label in ["low", "high"] {
        let entry = RunEntry {
            key: String::new(),
            label: Some(label.into()),
            cohort_fingerprint: None,
            command: vec!["linkrisk".into(), "demo".into()],
            seed: Some(0),
            started_unix: 1,
            seconds: 0.1,
            linkrisk_version: "x".into(),
            audit: audit.clone(),
        };
        run.record_entry(entry).unwrap();
    }
    run.set_cohort_summary(json!({"synthetic": true, "n_records": 10})).unwrap();
    let file = read_run_file(tmp.path()).unwrap();
    assert_eq!(file.runs.len(), 2);
    assert_eq!(file.runs[1].key, "utility:image#high");
    assert_eq!(file.cohort.unwrap()["n_records"], 10);
    assert!(run.set_cohort_summary(json!(3)).is_err());
}

fn labelled(label: &str, fingerprint: Option<&str>, audit: Value) -> RunEntry {
    RunEntry {
        key: String::new(),
        label: Some(label.into()),
        cohort_fingerprint: fingerprint.map(String::from),
        command: vec!["linkrisk".into()],
        seed: None,
        started_unix: 1,
        seconds: 0.5,
        linkrisk_version: "x".into(),
        audit,
    }
}

#[test]
fn a_label_stays_bound_to_one_cohort() {
    let tmp = tempfile::tempdir().unwrap();
    let mut run = RunDir::open_or_create(tmp.path()).unwrap();
    let relink = json!({"audit": "relink", "query_view": "image", "gallery_view": "report", "n": 1});
    let reid = json!({"audit": "reid", "view": "image"});
    run.record_entry(labelled("a", Some("aaaa1111"), relink.clone())).unwrap();
    // The same cohort again: replaced in place.
    let again = json!({"audit": "relink", "query_view": "image", "gallery_view": "report", "n": 2});
    run.record_entry(labelled("a", Some("aaaa1111"), again)).unwrap();
    // Another audit of another cohort under the same label: refused, nothing written.
    let before = std::fs::read(tmp.path().join(RUN_FILE)).unwrap();
    let err = run.record_entry(labelled("a", Some("bbbb2222"), reid.clone())).unwrap_err().to_string();
    assert!(err.contains("model `a`") && err.contains("--label") && err.contains("aaaa1111"), "{err}");
    assert!(err.contains("bbbb2222") && err.contains("relink:image->report#a"), "{err}");
    assert_eq!(std::fs::read(tmp.path().join(RUN_FILE)).unwrap(), before);
    assert!(run.check_label("a", "bbbb2222").is_err());
    assert!(run.check_label("a", "aaaa1111").is_ok());
    assert!(run.check_label("b", "bbbb2222").is_ok(), "an unknown label binds to nothing yet");
    // Its own label: recorded beside the first model.
    run.record_entry(labelled("b", Some("bbbb2222"), relink.clone())).unwrap();
    // No fingerprint (library callers, in-memory cohorts) never conflicts.
    run.record_entry(labelled("a", None, reid.clone())).unwrap();
    let file = read_run_file(tmp.path()).unwrap();
    let keys: Vec<&str> = file.runs.iter().map(|e| e.key.as_str()).collect();
    assert_eq!(keys, ["relink:image->report#a", "relink:image->report#b", "reid:image#a"]);
    assert_eq!(file.runs[0].audit["n"], 2);
    assert_eq!(file.runs[1].cohort_fingerprint.as_deref(), Some("bbbb2222"));
    // Model records are bound the same way, and replacing a label on purpose works.
    let model = |fp: &str| ModelRecord {
        label: "a".into(),
        cohort_fingerprint: Some(fp.into()),
        source: Some("cohorts/a".into()),
        cohort: None,
        not_run: vec![NotRun {
            audit: "utility".into(),
            what: "utility".into(),
            reason: "no findings".into(),
        }],
        failed: vec![],
    };
    assert!(run.set_model(model("cccc3333")).is_err());
    run.set_model(model("aaaa1111")).unwrap();
    assert_eq!(run.remove_label("a").unwrap(), 2);
    run.set_model(model("cccc3333")).unwrap();
    let file = read_run_file(tmp.path()).unwrap();
    assert_eq!(file.runs.len(), 1, "only model b's entry is left");
    assert_eq!(file.models, vec![model("cccc3333")]);
}

#[test]
fn files_without_labels_fingerprints_or_models_still_load_and_keep_them_absent() {
    let tmp = tempfile::tempdir().unwrap();
    let old = r#"{"linkrisk_version": "0.1.0", "created_unix": 5, "updated_unix": 6, "runs": [
        {"key": "relink:image->report@test", "command": ["linkrisk", "relink"], "seed": 0,
         "started_unix": 5, "seconds": 1.0, "linkrisk_version": "0.1.0",
         "audit": {"audit": "relink", "query_view": "image", "gallery_view": "report", "split": "test"}},
        {"key": "utility:image#demo", "label": "demo", "command": [], "started_unix": 5, "seconds": 1.0,
         "audit": {"audit": "utility", "view": "image"}}]}"#;
    std::fs::write(tmp.path().join(RUN_FILE), old).unwrap();
    let file = read_run_file(tmp.path()).unwrap();
    assert_eq!(file.runs.len(), 2);
    assert_eq!((file.runs[0].label.as_deref(), file.runs[0].cohort_fingerprint.as_deref()), (None, None));
    assert_eq!(file.runs[1].label.as_deref(), Some("demo"));
    assert!(file.models.is_empty());
    // A new fingerprinted entry under the old label is accepted (nothing to conflict with),
    // and a rewrite writes no `models` or `cohort_fingerprint` keys where there are none.
    let mut run = RunDir::open_or_create(tmp.path()).unwrap();
    run.record_entry(labelled("demo", Some("ffff"), json!({"audit": "reid", "view": "image"}))).unwrap();
    let text = std::fs::read_to_string(tmp.path().join(RUN_FILE)).unwrap();
    assert!(!text.contains("\"models\""), "{text}");
    assert_eq!(text.matches("cohort_fingerprint").count(), 1, "{text}");
}

#[test]
fn cohort_summary_counts_records_splits_and_views() {
    use crate::cohort::{metadata::MetadataBuilder, Cohort, View};
    let ids: Vec<String> = (0..5).map(|i| format!("r{i}")).collect();
    let builder = MetadataBuilder {
        ids,
        patient_ids: ["p1", "p1", "p2", "p3", "p3"].map(String::from).to_vec(),
        splits: Some(["train", "test", "test", "external", "test"].map(String::from).to_vec()),
        sex: Some(vec![Some("F".into()); 5]),
        ..MetadataBuilder::default()
    };
    let metadata = builder.build(Path::new("metadata.csv"), 2).unwrap();
    let view = View::from_memory("image", 5, 2, vec![1.0; 10]).unwrap();
    let cohort = Cohort::from_parts("", metadata, vec![view]).unwrap();
    let summary = CohortSummary::from_cohort(&cohort, true);
    assert!(summary.synthetic);
    assert_eq!(summary.source, None, "in-memory cohort");
    assert_eq!((summary.n_records, summary.n_patients, summary.n_studies), (5, 3, 5));
    let splits: Vec<(&str, usize)> = summary.splits.iter().map(|s| (s.name.as_str(), s.n_records)).collect();
    assert_eq!(splits.iter().map(|s| s.1).sum::<usize>(), 5);
    assert!(
        splits.contains(&("test", 3)) && splits.contains(&("train", 1)) && splits.contains(&("external", 1))
    );
    assert_eq!(summary.views, vec![ViewSummary { name: "image".into(), n: 5, dim: 2 }]);
    assert_eq!(summary.demographics, ["sex"]);
    assert!(!summary.has_findings);
    let tmp = tempfile::tempdir().unwrap();
    let mut run = RunDir::open_or_create(tmp.path()).unwrap();
    run.set_cohort(&summary).unwrap();
    let stored: CohortSummary =
        serde_json::from_value(read_run_file(tmp.path()).unwrap().cohort.unwrap()).unwrap();
    assert_eq!(stored, summary);
}

#[test]
fn rejects_bad_entries_and_bad_files() {
    let tmp = tempfile::tempdir().unwrap();
    let mut run = RunDir::open_or_create(tmp.path()).unwrap();
    assert!(run.record(vec![], None, 1.0, json!({"no_kind": 1})).is_err());
    assert!(run.record(vec![], None, f64::NAN, json!({"audit": "reid"})).is_err());
    let missing = RunDir::open(tmp.path().join("nope")).unwrap_err().to_string();
    assert!(missing.contains("no run.json"), "{missing}");
    std::fs::write(tmp.path().join(RUN_FILE), "{\"runs\": [").unwrap();
    let bad = RunDir::open(tmp.path()).unwrap_err().to_string();
    assert!(bad.contains("not a valid run.json") && bad.contains("line"), "{bad}");
    let file = tmp.path().join("file");
    std::fs::write(&file, "x").unwrap();
    assert!(RunDir::open_or_create(&file).unwrap_err().to_string().contains("run directory"));
}

#[test]
fn concurrent_writers_lose_no_entry() {
    let tmp = tempfile::tempdir().unwrap();
    RunDir::open_or_create(tmp.path()).unwrap();
    std::thread::scope(|scope| {
        for i in 0..8 {
            let dir = tmp.path();
            scope.spawn(move || {
                let mut run = RunDir::open_or_create(dir).unwrap();
                for round in 0..3 {
                    let audit = json!({"audit": "reid", "view": format!("view{i}"), "round": round});
                    run.record(vec![], None, 0.0, audit).unwrap();
                }
            });
        }
    });
    let file = read_run_file(tmp.path()).unwrap();
    assert_eq!(file.runs.len(), 8, "one entry per view");
    assert!(file.runs.iter().all(|r| r.audit["round"] == 2), "the last round of each writer wins");
    assert!(!tmp.path().join("run.json.lock").exists());
}

#[test]
fn a_stale_lock_is_taken_over_and_a_live_one_waited_for() {
    let tmp = tempfile::tempdir().unwrap();
    let lock = tmp.path().join("run.json.lock");
    let file = std::fs::File::create(&lock).unwrap();
    file.set_modified(SystemTime::now() - Duration::from_secs(3600)).unwrap();
    RunDir::open_or_create(tmp.path()).unwrap();
    assert!(!lock.exists(), "stale lock from a killed process removed");
    // A live lock released after 200 ms: the writer waits, then succeeds.
    std::fs::File::create(&lock).unwrap();
    let release = {
        let lock = lock.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(200));
            std::fs::remove_file(lock).unwrap();
        })
    };
    let started = std::time::Instant::now();
    RunDir::open_or_create(tmp.path()).unwrap().record(vec![], None, 0.0, json!({"audit": "x"})).unwrap();
    assert!(started.elapsed() >= Duration::from_millis(150));
    release.join().unwrap();
}

#[test]
fn unknown_top_level_keys_survive_a_rewrite() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(
        tmp.path().join(RUN_FILE),
        r#"{"linkrisk_version": "9.9", "created_unix": 5, "runs": [], "future_key": {"a": 1}}"#,
    )
    .unwrap();
    let mut run = RunDir::open_or_create(tmp.path()).unwrap();
    run.record(vec![], None, 0.0, json!({"audit": "reid", "view": "image"})).unwrap();
    let file = read_run_file(tmp.path()).unwrap();
    assert_eq!(file.extra["future_key"]["a"], 1);
    assert_eq!(file.created_unix, 5);
    assert_eq!(file.linkrisk_version, "9.9", "creator's version is kept");
}

#[test]
fn a_failing_write_leaves_the_old_file_and_no_temporary() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let mut run = RunDir::open_or_create(dir).unwrap();
    run.record(vec![], None, 0.0, json!({"audit": "reid", "view": "image"})).unwrap();
    let before = std::fs::read(dir.join(RUN_FILE)).unwrap();
    // A writer that fails half-way: run.json keeps its old content, no temp file remains.
    let failed = crate::cohort::write::atomic(&dir.join(RUN_FILE), |tmp| {
        std::fs::write(tmp, "{\"runs\": [ {\"half").unwrap();
        Err(Error::config("disk full (simulated)"))
    });
    assert!(failed.is_err());
    assert_eq!(std::fs::read(dir.join(RUN_FILE)).unwrap(), before);
    assert_eq!(read_run_file(dir).unwrap().runs.len(), 1);
    // A rename that fails (the target is a non-empty directory): no temp file remains.
    let blocked = dir.join("blocked");
    std::fs::create_dir_all(blocked.join("occupied")).unwrap();
    assert!(write_run_file(&blocked, run.run_file()).is_err());
    let mut names: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["blocked", RUN_FILE], "left behind: {names:?}");
}

#[test]
fn a_lock_records_its_owner_and_a_dead_owner_s_lock_is_taken_over_at_once() {
    let tmp = tempfile::tempdir().unwrap();
    let lock = tmp.path().join("run.json.lock");
    {
        let held = Lock::acquire(tmp.path()).unwrap();
        let owner = read_owner(&held.path).expect("the lock names its owner");
        assert_eq!(owner.pid, std::process::id());
        assert_eq!(owner.host, host_name());
    }
    assert!(!lock.exists(), "released");
    // What SIGKILL leaves: a fresh lock of a process of this host that has ended.
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let dead_pid = child.id();
    child.wait().unwrap();
    let dead = LockOwner { pid: dead_pid, host: host_name(), created_unix: unix_now() };
    std::fs::write(&lock, serde_json::to_vec(&dead).unwrap()).unwrap();
    std::fs::write(tmp.path().join(".run.json.tmp-99999"), b"{\"half").unwrap();
    let started = std::time::Instant::now();
    RunDir::open_or_create(tmp.path()).unwrap().record(vec![], None, 0.0, json!({"audit": "x"})).unwrap();
    assert!(started.elapsed() < Duration::from_secs(5), "taken over at once: {:?}", started.elapsed());
    assert_eq!(read_run_file(tmp.path()).unwrap().runs.len(), 1);
    assert!(!lock.exists());
    // A fresh lock of a live process (this one) is waited for, then released.
    let live = LockOwner { pid: std::process::id(), host: host_name(), created_unix: unix_now() };
    std::fs::write(&lock, serde_json::to_vec(&live).unwrap()).unwrap();
    let release = {
        let lock = lock.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(200));
            std::fs::remove_file(lock).unwrap();
        })
    };
    let started = std::time::Instant::now();
    RunDir::open_or_create(tmp.path()).unwrap().record(vec![], None, 0.0, json!({"audit": "y"})).unwrap();
    assert!(started.elapsed() >= Duration::from_millis(150), "a live owner's lock is waited for");
    release.join().unwrap();
}
