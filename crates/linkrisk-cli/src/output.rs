//! Writing results: JSON to a file (atomically) or to stdout, aligned text tables, and
//! recording an audit in a run directory (`--out RUN`).

use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::Serialize;

/// Serialise `value` as pretty JSON to `path`, or to stdout when `path` is `-`.
pub fn write_json<T: Serialize>(path: &Path, value: &T) -> anyhow::Result<()> {
    let mut text = serde_json::to_string_pretty(value).context("serialising the report")?;
    text.push('\n');
    if path.as_os_str() == "-" {
        crate::stdout::write_str(&text);
    } else {
        linkrisk::cohort::write::atomic_bytes(path, text.as_bytes())?;
    }
    Ok(())
}

/// Lay out `rows` under `header` as an aligned text table (two spaces between columns).
/// Columns whose cells all look numeric are right-aligned; each line is indented by `indent`.
pub fn table(indent: &str, header: &[&str], rows: &[Vec<String>]) -> String {
    let columns = header.len();
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let numeric: Vec<bool> = (0..columns)
        .map(|c| {
            !rows.is_empty()
                && rows.iter().all(|r| {
                    r.get(c).is_some_and(|s| s.trim_end_matches('%').parse::<f64>().is_ok() || s == "-")
                })
        })
        .collect();
    let mut out = String::new();
    let mut line = |cells: &mut dyn Iterator<Item = &str>| {
        let mut text = String::from(indent);
        for (c, cell) in cells.enumerate() {
            if c > 0 {
                text.push_str("  ");
            }
            let pad = widths[c].saturating_sub(cell.chars().count());
            if numeric[c] {
                text.push_str(&" ".repeat(pad));
                text.push_str(cell);
            } else {
                text.push_str(cell);
                text.push_str(&" ".repeat(pad));
            }
        }
        out.push_str(text.trim_end());
        out.push('\n');
    };
    line(&mut header.iter().copied());
    for row in rows {
        line(&mut row.iter().map(String::as_str));
    }
    out
}

/// This process's command line, as recorded in `run.json`.
pub fn argv() -> Vec<String> {
    std::env::args().collect()
}

/// The model an audit command records its report as: `--label`, else the cohort directory's
/// name, and (when recording) the cohort's fingerprint, so a run directory never mixes two
/// cohorts under one label.
#[derive(Debug, Clone, PartialEq)]
pub struct Model {
    /// The label.
    pub label: String,
    /// The cohort's fingerprint (`None` when nothing is recorded).
    pub fingerprint: Option<String>,
}

impl Model {
    /// The model of the cohort in `dir`. With `out` (the run directory) the cohort is
    /// fingerprinted and checked against the run directory now, before the audit's work, so
    /// a second cohort under a recorded label fails at once (exit 2, says to pass --label).
    pub fn of(dir: &Path, label: Option<&str>, out: Option<&Path>) -> anyhow::Result<Model> {
        let label = match label {
            Some(l) => {
                linkrisk::runner::check_label(l).context("--label")?;
                l.to_string()
            }
            None => linkrisk::runner::default_label(dir)?,
        };
        let Some(out) = out else { return Ok(Model { label, fingerprint: None }) };
        let fingerprint = linkrisk::shard::cohort_fingerprint(dir)?;
        Model::checked(label, fingerprint, out)
    }

    /// A model whose fingerprint is known (a merge reads it from the partials), checked
    /// against the run directory `out` when it exists.
    pub fn checked(label: String, fingerprint: String, out: &Path) -> anyhow::Result<Model> {
        if out.join(linkrisk::report::run::RUN_FILE).exists() {
            linkrisk::report::RunDir::open(out)?.check_label(&label, &fingerprint)?;
        }
        Ok(Model { label, fingerprint: Some(fingerprint) })
    }
}

/// Record an audit's report in the run directory `out` (the `--out RUN` flag of every audit
/// command) under `model`'s label and fingerprint: creates `RUN/run.json` if needed and adds
/// or replaces this audit's entry (see `linkrisk::report::run::entry_key`). Does nothing when
/// `out` is `None`. Returns the path of `run.json` when it wrote one.
///
/// Every audit command calls it after its work, e.g.
/// `output::record_in_run(args.out.as_deref(), &model, output::argv(), Some(args.seed), started.elapsed().as_secs_f64(), &report)?`.
pub fn record_in_run<T: Serialize>(
    out: Option<&Path>,
    model: &Model,
    argv: Vec<String>,
    seed: Option<u64>,
    seconds: f64,
    report: &T,
) -> anyhow::Result<Option<PathBuf>> {
    let Some(dir) = out else { return Ok(None) };
    let audit = serde_json::to_value(report).context("serialising the report")?;
    let mut run = linkrisk::report::RunDir::open_or_create(dir)?;
    run.record_entry(linkrisk::report::RunEntry {
        key: String::new(),
        label: Some(model.label.clone()),
        cohort_fingerprint: model.fingerprint.clone(),
        command: argv,
        seed,
        started_unix: linkrisk::report::run::unix_now().saturating_sub(seconds.max(0.0).ceil() as u64),
        seconds,
        linkrisk_version: linkrisk::VERSION.to_string(),
        audit,
    })?;
    Ok(Some(run.run_file_path()))
}

/// What every audit command does with its report: record it in the run directory
/// (`--out RUN`) and write its JSON (`--json OUT`). Returns true when the JSON went to
/// stdout, so the caller prints no table after it.
pub fn record_and_write<T: Serialize>(
    out: Option<&Path>,
    json: Option<&Path>,
    model: &Model,
    seed: Option<u64>,
    started: std::time::Instant,
    report: &T,
) -> anyhow::Result<bool> {
    record_in_run(out, model, argv(), seed, started.elapsed().as_secs_f64(), report)?;
    if let Some(path) = json {
        write_json(path, report)?;
        return Ok(path.as_os_str() == "-");
    }
    Ok(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize)]
    struct FakeReid {
        audit: &'static str,
        view: &'static str,
        rank_1: f64,
    }

    #[test]
    fn record_in_run_writes_and_replaces_the_entry() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("RUN");
        let model = Model { label: "cohort".into(), fingerprint: Some("ab12".into()) };
        assert_eq!(
            record_in_run(None, &model, vec![], None, 0.0, &1).unwrap(),
            None,
            "no --out, nothing written"
        );
        assert!(!dir.exists());
        let report = FakeReid { audit: "reid", view: "image", rank_1: 0.25 };
        let argv: Vec<String> = ["linkrisk", "reid", "cohort", "--out", "RUN"].map(String::from).to_vec();
        let path = record_in_run(Some(&dir), &model, argv.clone(), Some(3), 1.5, &report).unwrap().unwrap();
        assert_eq!(path, dir.join("run.json"));
        let again = FakeReid { rank_1: 0.5, ..report };
        record_in_run(Some(&dir), &model, argv.clone(), Some(4), 2.5, &again).unwrap();
        let file = linkrisk::report::run::read_run_file(&dir).unwrap();
        assert_eq!(file.runs.len(), 1, "same audit and view: replaced");
        assert_eq!(file.runs[0].audit["rank_1"], 0.5);
        assert_eq!(file.runs[0].seed, Some(4));
        assert_eq!(file.runs[0].command, argv);
        assert_eq!(file.runs[0].seconds, 2.5);
        assert_eq!(file.runs[0].label.as_deref(), Some("cohort"));
        assert_eq!(file.runs[0].cohort_fingerprint.as_deref(), Some("ab12"));
        // A report that is not an audit object is refused.
        assert!(record_in_run(Some(&dir), &model, vec![], None, 0.0, &vec![1, 2]).is_err());
        // Another cohort under the label is refused before any work, and by the record.
        let other = Model { fingerprint: Some("cd34".into()), ..model.clone() };
        assert!(Model::checked("cohort".into(), "cd34".into(), &dir).is_err());
        assert!(record_in_run(Some(&dir), &other, vec![], None, 0.0, &report).is_err());
        assert!(Model::checked("cohort".into(), "ab12".into(), &dir).is_ok());
    }
}
