//! Builds a run directory from the hand-written audit fixtures in `tests/data/report/`
//! (made by `make_fixtures.py` there; paper-like figures, not measurements). Shared with the
//! CLI tests through `#[path]`.

#![allow(dead_code, clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use linkrisk::report::run::{RunDir, RunEntry, RunFile};
use serde_json::Value;

/// Directory holding the fixture JSON files (found from either crate: they are siblings).
pub fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("crates/").join("linkrisk/tests/data/report")
}

/// One fixture file, parsed.
pub fn load(name: &str) -> Value {
    let path = data_dir().join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

/// (fixture file, command line, seed, seconds) for every audit fixture.
pub const AUDITS: &[(&str, &str, Option<u64>, f64)] = &[
    (
        "relink_image_report.json",
        "linkrisk relink cohort --split test --pools 10,100,1000,10000,full --hard-negatives --attack all --out RUN",
        Some(0),
        41.2,
    ),
    ("reid_image.json", "linkrisk reid cohort --view image --out RUN", Some(0), 12.9),
    ("reid_image_linear_metric.json", "linkrisk reid cohort --attacker linear-metric --out RUN", Some(0), 95.4),
    ("attributes_image.json", "linkrisk attributes cohort --targets sex,age,race --out RUN", Some(0), 33.0),
    ("utility_image.json", "linkrisk utility cohort --out RUN", None, 28.6),
    ("mitigate.json", "linkrisk mitigate cohort --epsilons 0.34,1,3,8,inf --out RUN", Some(0), 402.7),
];

/// Record every fixture (and the cohort summary) into `dir` through the public API.
pub fn build_run(dir: &Path) -> RunDir {
    let mut run = RunDir::open_or_create(dir).unwrap();
    run.set_cohort_summary(load("cohort.json")).unwrap();
    for (file, command, seed, seconds) in AUDITS {
        let argv = command.split(' ').map(str::to_string).collect();
        run.record(argv, *seed, *seconds, load(file)).unwrap();
    }
    run
}

/// The fixture run with fixed times, for output that does not depend on the clock.
pub fn fixed_run(dir: &Path) -> RunFile {
    let run = build_run(dir);
    let mut file = run.run_file().clone();
    file.created_unix = 1_767_225_600; // 2026-01-01 00:00 UTC
    file.updated_unix = 1_767_229_200;
    for (i, entry) in file.runs.iter_mut().enumerate() {
        entry.started_unix = 1_767_225_600 + 600 * i as u64;
        entry.linkrisk_version = "0.1.0".to_string();
    }
    file.linkrisk_version = "0.1.0".to_string();
    file
}

/// A run file holding exactly these audits (no cohort), fixed times.
pub fn run_of(audits: Vec<Value>) -> RunFile {
    RunFile {
        linkrisk_version: "0.1.0".to_string(),
        created_unix: 1_767_225_600,
        updated_unix: 1_767_225_600,
        runs: audits
            .into_iter()
            .map(|audit| RunEntry {
                key: linkrisk::report::run::entry_key(&audit, None).unwrap(),
                label: None,
                cohort_fingerprint: None,
                command: vec!["linkrisk".to_string()],
                seed: None,
                started_unix: 1_767_225_600,
                seconds: 1.0,
                linkrisk_version: "0.1.0".to_string(),
                audit,
            })
            .collect(),
        cohort: None,
        models: Vec::new(),
        extra: Default::default(),
    }
}
