//! The run directory: one `run.json` that collects every audit of one or more models, keyed
//! by model, so `linkrisk report` and `linkrisk gate` read a single file and never depend on
//! the audits' Rust types — each audit's serialized JSON is the interface.
//!
//! ```text
//! RUN/run.json = {
//!   "linkrisk_version": "0.1.0",
//!   "created_unix": 1767225600,          // when the run directory was created
//!   "updated_unix": 1767229200,          // last write
//!   "runs": [ { "key": "relink:image->report@test#model-a",
//!               "label": "model-a",         // the model (default: the cohort directory's name)
//!               "cohort_fingerprint": "9f2c…", // blake3 of the cohort's files
//!               "command": ["linkrisk", "relink", ...],
//!               "seed": 0, "started_unix": 1767225601, "seconds": 12.5,
//!               "linkrisk_version": "0.1.0",
//!               "audit": { "audit": "relink", ... } } ],
//!   "cohort": { ... },                      // optional cohort summary
//!   "models": [ { "label": "model-a", ... } ] // written by `linkrisk audit` (ModelRecord)
//! }
//! ```
//!
//! Re-running an audit replaces the entry with the same [`entry_key`] (the audit kind, its
//! views, and the qualifiers `split` / `attacker` / label that make it a different
//! measurement), so a run directory always holds the latest result of each measurement.
//! A label names one cohort: recording an entry whose `cohort_fingerprint` differs from the
//! fingerprint already recorded under its label is refused (the error says to pass
//! `--label`), so a second model can never silently replace the first.
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

/// How long [`RunDir`] waits for another process's lock before giving up: longer than
/// [`LOCK_STALE`], so a lock left by a killed process of another host is taken over too.
const LOCK_WAIT: Duration = Duration::from_secs(75);

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
    /// Summary of the cohort the audits ran on (see [`CohortSummary`]), if recorded; with
    /// several models, the first one's (each model's own is in [`RunFile::models`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cohort: Option<Value>,
    /// One record per model audited by `linkrisk audit` (or `linkrisk demo`): its cohort,
    /// what could not run on it and what failed. Absent in older files.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub models: Vec<ModelRecord>,
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
    /// The model's name, distinguishing otherwise identical measurements of different
    /// models. Part of the key. Every CLI command sets it (`--label`, default: the cohort
    /// directory's name); entries of older files may have none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// [`crate::shard::cohort_fingerprint`] of the cohort the audit read (hex), so a label
    /// stays bound to one cohort. Absent in older files and for in-memory cohorts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cohort_fingerprint: Option<String>,
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

/// What `linkrisk audit` recorded about one model: its cohort, the audits or parts of audits
/// that could not run on it (listed, never silently dropped) and the audits that failed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelRecord {
    /// The model's label (the `label` of its entries).
    pub label: String,
    /// Fingerprint of its cohort directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cohort_fingerprint: Option<String>,
    /// The cohort directory, as given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// The cohort's [`CohortSummary`], when it loaded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cohort: Option<Value>,
    /// What could not run on this cohort, and why.
    #[serde(default)]
    pub not_run: Vec<NotRun>,
    /// Audits that failed, with the error.
    #[serde(default)]
    pub failed: Vec<AuditFailure>,
}

/// An audit, or part of one, that could not run on a cohort.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotRun {
    /// The audit (`relink`, `reid`, `attributes`, `utility`).
    pub audit: String,
    /// What did not run: the whole audit, or a part (`pathology-matched pools`, `race`).
    pub what: String,
    /// Why, in words.
    pub reason: String,
}

/// An audit that failed on a model.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditFailure {
    /// The audit (`cohort` when the cohort itself could not be read).
    pub audit: String,
    /// The error message.
    pub error: String,
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
            cohort_fingerprint: None,
            command,
            seed,
            started_unix,
            seconds,
            linkrisk_version: crate::VERSION.to_string(),
            audit,
        })
    }

    /// Record a fully specified entry (e.g. with a `label`). The key is recomputed. An entry
    /// with the same key is replaced in place; a new key is appended. Fails, writing nothing,
    /// when the run directory already holds the entry's label with another cohort
    /// fingerprint ([`RunDir::check_label`]).
    pub fn record_entry(&mut self, mut entry: RunEntry) -> Result<String> {
        if !entry.seconds.is_finite() || entry.seconds < 0.0 {
            return Err(Error::config(format!(
                "seconds must be a finite, non-negative duration, got {}",
                entry.seconds
            )));
        }
        let key = entry_key(&entry.audit, entry.label.as_deref())?;
        entry.key = key.clone();
        let dir = self.dir.clone();
        self.update(move |file| {
            if let (Some(label), Some(fingerprint)) = (&entry.label, &entry.cohort_fingerprint) {
                label_conflict(&dir, file, label, fingerprint)?;
            }
            upsert(&mut file.runs, entry);
            Ok(())
        })?;
        Ok(key)
    }

    /// Fail when this run directory (as last read) holds `label` for a cohort whose
    /// fingerprint is not `fingerprint`: the error names both and says to pass `--label`.
    /// Entries without a fingerprint (older files) never conflict. Read-only: callers check
    /// before long work, [`RunDir::record_entry`] checks again under the lock.
    pub fn check_label(&self, label: &str, fingerprint: &str) -> Result<()> {
        let current =
            if self.run_file_path().exists() { read_run_file(&self.dir)? } else { self.file.clone() };
        label_conflict(&self.dir, &current, label, fingerprint)
    }

    /// Remove every entry and the model record labelled `label` (for recording another
    /// cohort under it on purpose: `linkrisk audit --replace`, `linkrisk demo`). Returns how
    /// many entries were removed.
    pub fn remove_label(&mut self, label: &str) -> Result<usize> {
        let mut removed = 0;
        self.update(|file| {
            let before = file.runs.len();
            file.runs.retain(|e| e.label.as_deref() != Some(label));
            removed = before - file.runs.len();
            file.models.retain(|m| m.label != label);
            Ok(())
        })?;
        Ok(removed)
    }

    /// Record (or replace) what `linkrisk audit` found about one model, by its label. Fails
    /// like [`RunDir::record_entry`] when the label is bound to another cohort.
    pub fn set_model(&mut self, model: ModelRecord) -> Result<()> {
        let dir = self.dir.clone();
        self.update(move |file| {
            if let Some(fingerprint) = &model.cohort_fingerprint {
                label_conflict(&dir, file, &model.label, fingerprint)?;
            }
            match file.models.iter_mut().find(|m| m.label == model.label) {
                Some(slot) => *slot = model,
                None => file.models.push(model),
            }
            Ok(())
        })
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
    // run.json is read and then updated: no input check (cohort::write::atomic's).
    crate::cohort::write::atomic_replace(path, |tmp| {
        std::fs::write(tmp, text.as_bytes()).map_err(|e| Error::write(tmp, e))
    })
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

/// The error for `label` recorded with another fingerprint than `fingerprint`, if any.
fn label_conflict(dir: &Path, file: &RunFile, label: &str, fingerprint: &str) -> Result<()> {
    let other = file
        .runs
        .iter()
        .filter(|e| e.label.as_deref() == Some(label))
        .filter_map(|e| Some((e.cohort_fingerprint.as_deref()?, e.key.as_str())))
        .chain(
            file.models
                .iter()
                .filter(|m| m.label == label)
                .filter_map(|m| Some((m.cohort_fingerprint.as_deref()?, "the model record"))),
        )
        .find(|(f, _)| *f != fingerprint);
    match other {
        None => Ok(()),
        Some((recorded, key)) => Err(Error::input(
            dir.join(RUN_FILE),
            format!(
                "already holds model `{label}` measured on another cohort (cohort fingerprint {}.. in {key}; \
                 this cohort's is {}..); pass --label NAME to record this cohort as another model, or write \
                 to another run directory",
                short(recorded),
                short(fingerprint)
            ),
        )),
    }
}

fn short(fingerprint: &str) -> &str {
    &fingerprint[..12.min(fingerprint.len())]
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
        models: Vec::new(),
        extra: Map::new(),
    }
}

/// Seconds since the Unix epoch (0 if the clock is before it).
pub fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// An exclusive lock on a run directory: the file `run.json.lock`, created with
/// `create_new`, holding its owner (`{"pid": .., "host": "..", "created_unix": ..}`), removed
/// on drop and by the CLI's SIGTERM/SIGINT handler ([`crate::cleanup`]).
///
/// A lock whose owner is a process of this host that no longer runs (SIGKILL, a crash) is
/// taken over at once; one of another host (a shared file system) or without a readable
/// owner is taken over once it is older than [`LOCK_STALE`]. (Kernel file locks would need
/// no owner record, but are unreliable on the network file systems clusters use.)
struct Lock {
    path: PathBuf,
    _registered: crate::cleanup::Registered,
}

/// Who holds a lock, as written in the lock file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockOwner {
    /// Process id of the owner.
    pub pid: u32,
    /// Host name of the owner ("" when unknown).
    pub host: String,
    /// Unix time the lock was taken.
    pub created_unix: u64,
}

impl LockOwner {
    fn me() -> LockOwner {
        LockOwner { pid: std::process::id(), host: host_name(), created_unix: unix_now() }
    }

    /// Whether the owner is known not to run any more: same host, and no such process.
    fn is_dead(&self) -> bool {
        !self.host.is_empty() && self.host == host_name() && process_alive(self.pid) == Some(false)
    }
}

/// This machine's host name, "" when it cannot be told.
fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .or_else(|| std::env::var("COMPUTERNAME").ok())
        .map(|h| h.trim().to_string())
        .unwrap_or_default()
}

/// Whether process `pid` runs on this machine; `None` where it cannot be told (no /proc).
fn process_alive(pid: u32) -> Option<bool> {
    let proc_dir = Path::new("/proc");
    if !proc_dir.join("self").exists() {
        return None;
    }
    Some(proc_dir.join(pid.to_string()).exists())
}

/// Read the owner recorded in a lock file (`None`: unreadable, empty or an older format).
fn read_owner(path: &Path) -> Option<LockOwner> {
    serde_json::from_slice(&std::fs::read(path).ok()?).ok()
}

impl Lock {
    fn acquire(dir: &Path) -> Result<Lock> {
        let path = dir.join(format!("{RUN_FILE}.lock"));
        let started = std::time::Instant::now();
        loop {
            match std::fs::OpenOptions::new().write(true).create_new(true).open(&path) {
                Ok(mut file) => {
                    let registered = crate::cleanup::remove_on_signal(&path);
                    let owner = serde_json::to_vec(&LockOwner::me()).unwrap_or_default();
                    std::io::Write::write_all(&mut file, &owner).map_err(|e| Error::write(&path, e))?;
                    return Ok(Lock { path, _registered: registered });
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    let owner = read_owner(&path);
                    let age = std::fs::metadata(&path)
                        .and_then(|m| m.modified())
                        .ok()
                        .and_then(|t| SystemTime::now().duration_since(t).ok());
                    let stale =
                        owner.as_ref().is_some_and(LockOwner::is_dead) || age.is_some_and(|a| a > LOCK_STALE);
                    if stale {
                        take_over(&path, owner.as_ref());
                        continue;
                    }
                    if started.elapsed() > LOCK_WAIT {
                        let holder = match &owner {
                            Some(o) => format!(" (process {} on host `{}`)", o.pid, o.host),
                            None => String::new(),
                        };
                        return Err(Error::input(
                            &path,
                            format!(
                                "another linkrisk process{holder} has held this run directory's lock for                                  {} s; wait for it to finish and run again (a lock of a process that                                  no longer runs is taken over by itself)",
                                age.map_or(0, |a| a.as_secs())
                            ),
                        ));
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
                Err(e) => return Err(Error::write(&path, e)),
            }
        }
    }
}

/// Remove the stale lock at `path` whose owner was read as `seen`: moved to a private name
/// first (atomic), and moved back if what was moved is not that lock (another waiter took
/// it over and a live process holds it now).
fn take_over(path: &Path, seen: Option<&LockOwner>) {
    let private = path.with_extension(format!("lock.takeover-{}", std::process::id()));
    if std::fs::rename(path, &private).is_err() {
        return; // gone already: someone else took it over
    }
    if read_owner(&private).as_ref() == seen {
        let _ = std::fs::remove_file(&private);
    } else {
        let _ = std::fs::rename(&private, path);
    }
}

impl Drop for Lock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

#[cfg(test)]
mod tests;
