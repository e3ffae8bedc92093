//! The run directory: one `run.json` that collects every audit of one study of a model, so
//! `linkrisk report` and `linkrisk gate` read a single file and never depend on the audits'
//! Rust types — each audit's serialized JSON is the interface.
//!
//! ```text
//! RUN/run.json = {
//!   "linkrisk_version": "0.1.0",
//!   "created_unix": 1767225600,          // when the run directory was created
//!   "updated_unix": 1767229200,          // last write
//!   "runs": [ { "key": "relink:image->report@test",
//!               "label": null,              // optional caller-chosen name (e.g. a model)
//!               "command": ["linkrisk", "relink", ...],
//!               "seed": 0, "started_unix": 1767225601, "seconds": 12.5,
//!               "linkrisk_version": "0.1.0",
//!               "audit": { "audit": "relink", ... } } ],
//!   "cohort": { ... }                       // optional cohort summary
//! }
//! ```
//!
//! Re-running an audit replaces the entry with the same [`entry_key`] (the audit kind, its
//! views, and the qualifiers `split` / `attacker` / label that make it a different
//! measurement), so a run directory always holds the latest result of each measurement.
//! Every write goes to a temporary file that is renamed into place, under a lock file, so
//! an interrupted write never leaves a half-written `run.json` and two audits writing the
//! same run directory at once do not lose each other's entries.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::cohort::Cohort;
use crate::error::{Error, Result};

/// File name of the run record inside a run directory.
pub const RUN_FILE: &str = "run.json";

/// How long [`RunDir`] waits for another process's lock before giving up.
const LOCK_WAIT: Duration = Duration::from_secs(10);

/// A lock older than this is left over from a killed process (the critical section takes
/// milliseconds) and is taken over.
const LOCK_STALE: Duration = Duration::from_secs(60);

/// The content of `run.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunFile {
    /// Version of the linkrisk that created the run directory.
    pub linkrisk_version: String,
    /// Unix time (seconds) the run directory was created.
    pub created_unix: u64,
    /// Unix time (seconds) of the last write.
    #[serde(default)]
    pub updated_unix: u64,
    /// One entry per measurement, in the order first recorded.
    #[serde(default)]
    pub runs: Vec<RunEntry>,
    /// Summary of the cohort the audits ran on (see [`CohortSummary`]), if recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cohort: Option<Value>,
    /// Keys this version does not know, kept so rewriting never drops them.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// One audit invocation recorded in a run directory.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunEntry {
    /// The replacement key ([`entry_key`]); informative, recomputed on every write.
    #[serde(default)]
    pub key: String,
    /// Optional caller-chosen name distinguishing otherwise identical measurements (e.g.
    /// the model or specialization level in the demo). Part of the key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// The command line that produced the audit (argv, program name first).
    pub command: Vec<String>,
    /// The `--seed` used, for audits that draw random numbers.
    #[serde(default)]
    pub seed: Option<u64>,
    /// Unix time (seconds) the audit started.
    pub started_unix: u64,
    /// Wall-clock seconds the audit took.
    pub seconds: f64,
    /// Version of the linkrisk that ran this audit.
    #[serde(default)]
    pub linkrisk_version: String,
    /// The audit's JSON report, exactly as the audit serialized it (must hold `"audit"`).
    pub audit: Value,
}

/// Aggregate description of a cohort, recorded once per run directory. Counts only: no
/// record or patient identifiers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CohortSummary {
    /// Whether the cohort was synthesized (`linkrisk demo`, tests) rather than real data;
    /// the report's caveats say so.
    pub synthetic: bool,
    /// Where it was loaded from (directory), if anywhere.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// Number of records (rows).
    pub n_records: usize,
    /// Number of distinct patients.
    pub n_patients: usize,
    /// Number of distinct studies.
    pub n_studies: usize,
    /// Records per split, in split order.
    pub splits: Vec<SplitCount>,
    /// The embedding views.
    pub views: Vec<ViewSummary>,
    /// Whether the 14 CheXpert finding columns are present.
    pub has_findings: bool,
    /// Which demographic columns are present (`sex`, `age`, `race`).
    pub demographics: Vec<String>,
}

/// Number of records in one split.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SplitCount {
    /// Split name (`train`, `test`, `external`, ...).
    pub name: String,
    /// Records in it.
    pub n_records: usize,
}

/// Shape of one embedding view.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ViewSummary {
    /// View name (`image`, `report`, ...).
    pub name: String,
    /// Rows.
    pub n: usize,
    /// Dimension.
    pub dim: usize,
}

impl CohortSummary {
    /// Summarise `cohort`; `synthetic` says whether it came from `linkrisk::synth`.
    pub fn from_cohort(cohort: &Cohort, synthetic: bool) -> CohortSummary {
        let meta = &cohort.metadata;
        let mut counts = vec![0usize; meta.split_names.len()];
        for &s in &meta.split {
            if let Some(c) = counts.get_mut(s as usize) {
                *c += 1;
            }
        }
        let splits = meta
            .split_names
            .iter()
            .zip(counts)
            .map(|(name, n_records)| SplitCount { name: name.clone(), n_records })
            .collect();
        let views = cohort
            .views()
            .map(|v| ViewSummary { name: v.name().to_string(), n: v.n(), dim: v.dim() })
            .collect();
        let mut demographics = Vec::new();
        if meta.sex.is_some() {
            demographics.push("sex".to_string());
        }
        if meta.age.is_some() {
            demographics.push("age".to_string());
        }
        if meta.race.is_some() {
            demographics.push("race".to_string());
        }
        CohortSummary {
            synthetic,
            source: (!cohort.dir.as_os_str().is_empty()).then(|| cohort.dir.display().to_string()),
            n_records: meta.len(),
            n_patients: meta.n_patients,
            n_studies: meta.n_studies,
            splits,
            views,
            has_findings: meta.findings.is_some(),
            demographics,
        }
    }
}

/// The key under which an audit is stored: re-recording an audit with the same key replaces
/// the older entry. It is `KIND[:VIEWS][@SPLIT][+ATTACKER][#LABEL]` where
/// - `KIND` is the audit's `"audit"` field (`relink`, `reid`, `attributes`, `utility`,
///   `mitigate`, ...);
/// - `VIEWS` is `query_view->gallery_view` when the audit names both, else its `view`;
/// - `SPLIT` is its `split` field, `ATTACKER` its `attacker` field (string values only), so
///   a held-out and an external measurement, or plain and trained re-ID, are kept apart;
/// - `LABEL` is the caller's label (e.g. a model name), when given.
///
/// Fails when `audit` is not an object with a string `"audit"` field.
pub fn entry_key(audit: &Value, label: Option<&str>) -> Result<String> {
    let kind = audit.get("audit").and_then(Value::as_str).ok_or_else(|| {
        Error::config("an audit's JSON must be an object with a string \"audit\" field naming its kind")
    })?;
    let text = |k: &str| audit.get(k).and_then(Value::as_str);
    let mut key = kind.to_string();
    match (text("query_view"), text("gallery_view"), text("view")) {
        (Some(q), Some(g), _) => key.push_str(&format!(":{q}->{g}")),
        (_, _, Some(v)) => key.push_str(&format!(":{v}")),
        _ => {}
    }
    if let Some(split) = text("split") {
        key.push_str(&format!("@{split}"));
    }
    if let Some(attacker) = text("attacker") {
        key.push_str(&format!("+{attacker}"));
    }
    if let Some(label) = label {
        key.push_str(&format!("#{label}"));
    }
    Ok(key)
}

/// A run directory opened for recording audits. Every mutating call re-reads `run.json`
/// under the lock, applies the change and writes it back atomically.
#[derive(Debug)]
pub struct RunDir {
    dir: PathBuf,
    file: RunFile,
}

impl RunDir {
    /// Open `dir/run.json`, or create the directory and an empty `run.json`.
    pub fn open_or_create(dir: impl AsRef<Path>) -> Result<RunDir> {
        let dir = dir.as_ref().to_path_buf();
        if dir.exists() && !dir.is_dir() {
            return Err(Error::input(&dir, "is a file; --out expects a run directory (it holds run.json)"));
        }
        std::fs::create_dir_all(&dir).map_err(|e| Error::write(&dir, e))?;
        let mut run = RunDir { file: empty_run_file(), dir };
        run.update(|_| Ok(()))?;
        Ok(run)
    }

    /// Open an existing run directory; fails (naming the path) when `run.json` is missing.
    pub fn open(dir: impl AsRef<Path>) -> Result<RunDir> {
        let dir = dir.as_ref().to_path_buf();
        let file = read_run_file(&dir)?;
        Ok(RunDir { dir, file })
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// Path of `run.json`.
    pub fn run_file_path(&self) -> PathBuf {
        self.dir.join(RUN_FILE)
    }

    /// The current content (as of the last read or write by this handle).
    pub fn run_file(&self) -> &RunFile {
        &self.file
    }

    /// Record an audit that just finished: `command` is its argv, `seconds` its wall time
    /// (its start is taken as now minus `seconds`), `audit` its JSON report. Replaces an
    /// entry with the same [`entry_key`]. Returns the key.
    pub fn record(
        &mut self,
        command: Vec<String>,
        seed: Option<u64>,
        seconds: f64,
        audit: Value,
    ) -> Result<String> {
        let now = unix_now();
        let started_unix = now.saturating_sub(seconds.max(0.0).ceil() as u64);
        self.record_entry(RunEntry {
            key: String::new(),
            label: None,
            command,
            seed,
            started_unix,
            seconds,
            linkrisk_version: crate::VERSION.to_string(),
            audit,
        })
    }

    /// Record a fully specified entry (e.g. with a `label`). The key is recomputed. An entry
    /// with the same key is replaced in place; a new key is appended.
    pub fn record_entry(&mut self, mut entry: RunEntry) -> Result<String> {
        if !entry.seconds.is_finite() || entry.seconds < 0.0 {
            return Err(Error::config(format!(
                "seconds must be a finite, non-negative duration, got {}",
                entry.seconds
            )));
        }
        let key = entry_key(&entry.audit, entry.label.as_deref())?;
        entry.key = key.clone();
        self.update(move |file| {
            upsert(&mut file.runs, entry);
            Ok(())
        })?;
        Ok(key)
    }

    /// Record (or replace) the cohort summary: any JSON object, usually a serialized
    /// [`CohortSummary`].
    pub fn set_cohort_summary(&mut self, summary: Value) -> Result<()> {
        if !summary.is_object() {
            return Err(Error::config("the cohort summary must be a JSON object"));
        }
        self.update(move |file| {
            file.cohort = Some(summary);
            Ok(())
        })
    }

    /// Record (or replace) the cohort summary from a [`CohortSummary`].
    pub fn set_cohort(&mut self, summary: &CohortSummary) -> Result<()> {
        let value = serde_json::to_value(summary)
            .map_err(|e| Error::config(format!("cannot serialise the cohort summary: {e}")))?;
        self.set_cohort_summary(value)
    }

    /// Lock, re-read, change, write atomically, unlock.
    fn update(&mut self, change: impl FnOnce(&mut RunFile) -> Result<()>) -> Result<()> {
        let _lock = Lock::acquire(&self.dir)?;
        let path = self.run_file_path();
        let mut file = if path.exists() { read_run_file(&self.dir)? } else { empty_run_file() };
        change(&mut file)?;
        file.updated_unix = unix_now();
        write_run_file(&path, &file)?;
        self.file = file;
        Ok(())
    }
}

/// Serialise `file` to `path` atomically (temp file + rename).
fn write_run_file(path: &Path, file: &RunFile) -> Result<()> {
    let mut text = serde_json::to_string_pretty(file)
        .map_err(|e| Error::config(format!("cannot serialise run.json: {e}")))?;
    text.push('\n');
    crate::cohort::write::atomic_bytes(path, text.as_bytes())
}

/// Read and parse `dir/run.json`.
pub fn read_run_file(dir: &Path) -> Result<RunFile> {
    let path = dir.join(RUN_FILE);
    if !path.exists() {
        return Err(Error::input(
            &path,
            "no run.json here; create a run directory by running an audit with `--out DIR` (or `linkrisk demo`)",
        ));
    }
    let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
    let file: RunFile = serde_json::from_str(&text).map_err(|e| {
        Error::input(&path, format!("not a valid run.json (line {}, column {}): {e}", e.line(), e.column()))
    })?;
    for (i, entry) in file.runs.iter().enumerate() {
        if entry.audit.get("audit").and_then(Value::as_str).is_none() {
            return Err(Error::input(
                &path,
                format!("runs[{i}].audit has no string \"audit\" field naming the audit kind"),
            ));
        }
    }
    Ok(file)
}

fn upsert(runs: &mut Vec<RunEntry>, entry: RunEntry) {
    // Older files may carry stale keys: compare recomputed keys.
    let existing =
        runs.iter().position(|e| entry_key(&e.audit, e.label.as_deref()).is_ok_and(|k| k == entry.key));
    match existing {
        Some(i) => runs[i] = entry,
        None => runs.push(entry),
    }
}

fn empty_run_file() -> RunFile {
    let now = unix_now();
    RunFile {
        linkrisk_version: crate::VERSION.to_string(),
        created_unix: now,
        updated_unix: now,
        runs: Vec::new(),
        cohort: None,
        extra: Map::new(),
    }
}

/// Seconds since the Unix epoch (0 if the clock is before it).
pub fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// An exclusive lock on a run directory: the file `run.json.lock`, created with
/// `create_new` and removed on drop.
struct Lock {
    path: PathBuf,
}

impl Lock {
    fn acquire(dir: &Path) -> Result<Lock> {
        let path = dir.join(format!("{RUN_FILE}.lock"));
        let started = std::time::Instant::now();
        loop {
            match std::fs::OpenOptions::new().write(true).create_new(true).open(&path) {
                Ok(_) => return Ok(Lock { path }),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    let age = std::fs::metadata(&path)
                        .and_then(|m| m.modified())
                        .ok()
                        .and_then(|t| SystemTime::now().duration_since(t).ok());
                    if age.is_some_and(|a| a > LOCK_STALE) {
                        let _ = std::fs::remove_file(&path);
                        continue;
                    }
                    if started.elapsed() > LOCK_WAIT {
                        return Err(Error::input(
                            &path,
                            "another linkrisk process holds this run directory's lock; if none is \
                             running, delete the lock file",
                        ));
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
                Err(e) => return Err(Error::write(&path, e)),
            }
        }
    }
}

impl Drop for Lock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

#[cfg(test)]
mod tests {
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
        let key =
            run.record(vec!["linkrisk".into(), "relink".into(), "again".into()], Some(8), 2.0, a2).unwrap();
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
        let splits: Vec<(&str, usize)> =
            summary.splits.iter().map(|s| (s.name.as_str(), s.n_records)).collect();
        assert_eq!(splits.iter().map(|s| s.1).sum::<usize>(), 5);
        assert!(
            splits.contains(&("test", 3))
                && splits.contains(&("train", 1))
                && splits.contains(&("external", 1))
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
}
