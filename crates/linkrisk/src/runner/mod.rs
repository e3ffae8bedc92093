//! The audit runner behind `linkrisk audit` and `linkrisk demo`: every audit of several
//! models (one cohort directory each) in one call, recorded in one run directory keyed by
//! model, then the report. Per model: re-linkage in both directions with random and
//! pathology-matched pools and every attack, re-identification with every attacker,
//! attributes stratified by re-identification, and utility — each with the settings of
//! [`Settings`] (defaults, or an `audit.toml`: [`config`]).
//!
//! Nothing is dropped silently: what cannot run on a cohort (no finding columns for the
//! hard negatives or the utility probes, a missing view or demographic column) is listed in
//! the model's [`ModelOutcome::not_run`] and in `run.json`'s `models`; an audit that fails
//! is recorded with its error in [`ModelOutcome::failed`], and the runner goes on with the
//! model's other audits and the other models. The library never prints: the caller gets
//! [`Event`]s for its progress display and the [`RunOutcome`] to print.
//!
//! ```no_run
//! # fn main() -> linkrisk::Result<()> {
//! use linkrisk::runner::{self, ModelPlan, RunOptions, Settings};
//! let models = vec![ModelPlan::new("model-a", "cohorts/a", Settings::defaults())?];
//! let options = RunOptions { command: vec!["linkrisk".into(), "audit".into()], ..RunOptions::default() };
//! let outcome = runner::run(&models, "RUN".as_ref(), &options, &mut |_event| {}, &linkrisk::engine::NoProgress)?;
//! assert!(!outcome.failed());
//! # Ok(()) }
//! ```

pub mod config;
pub mod demo;
mod model;
mod plan;
pub mod settings;
mod summary;

use std::path::{Path, PathBuf};

use crate::engine::Progress;
use crate::error::{Error, Result};
use crate::report::run::{AuditFailure, NotRun};
use crate::report::{write_report, Format, RunDir};

pub use config::AuditConfig;
pub use plan::{default_label, plan};
pub use settings::{AuditKind, Settings};
pub use summary::ModelSummary;

/// One model to audit: its label, its cohort directory and its settings.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelPlan {
    /// The model's name in the run directory, report and gate.
    pub label: String,
    /// Its cohort directory.
    pub dir: PathBuf,
    /// What to run on it.
    pub settings: Settings,
}

impl ModelPlan {
    /// A plan, with the label checked ([`check_label`]) and the settings validated.
    pub fn new(label: impl Into<String>, dir: impl Into<PathBuf>, settings: Settings) -> Result<ModelPlan> {
        let label = label.into();
        check_label(&label)?;
        settings.validate()?;
        Ok(ModelPlan { label, dir: dir.into(), settings })
    }
}

/// A label is non-empty, at most 200 characters, without control characters or leading or
/// trailing space.
pub fn check_label(label: &str) -> Result<()> {
    if label.trim().is_empty() {
        return Err(Error::config("a model label must not be empty"));
    }
    if label.trim() != label || label.chars().any(char::is_control) || label.chars().count() > 200 {
        return Err(Error::config(format!(
            "model label {label:?}: use at most 200 characters, no control characters or surrounding spaces"
        )));
    }
    Ok(())
}

/// Fail when two models share a label (two cohort directories of the same name).
pub fn unique_labels(models: &[ModelPlan]) -> Result<()> {
    for (i, m) in models.iter().enumerate() {
        if let Some(other) = models[..i].iter().find(|o| o.label == m.label) {
            return Err(Error::config(format!(
                "two cohorts would be recorded as model `{}` ({} and {}); give each its own --label",
                m.label,
                other.dir.display(),
                m.dir.display()
            )));
        }
    }
    Ok(())
}

/// How the run is recorded.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RunOptions {
    /// The command line recorded with every entry (argv, program name first).
    pub command: Vec<String>,
    /// Whether the cohorts are synthetic (the report's caveats say so).
    pub synthetic: bool,
    /// Write `report.html` and `report.md` at the end.
    pub render: bool,
    /// Record a cohort under a label that the run directory holds for another cohort,
    /// removing that model's earlier entries (`linkrisk audit --replace`).
    pub replace: bool,
}

/// What the runner is doing, for a progress display.
#[derive(Debug, Clone, Copy)]
pub enum Event<'a> {
    /// The run is planned: this many models and audits in all.
    Planned {
        /// Models.
        models: usize,
        /// Audits over all models.
        audits: usize,
    },
    /// A model starts (`index` counts from 0).
    Model {
        /// Position of the model.
        index: usize,
        /// Its label.
        label: &'a str,
        /// Its cohort directory.
        dir: &'a Path,
    },
    /// An audit of a model starts.
    Audit {
        /// The model.
        label: &'a str,
        /// The audit.
        audit: AuditKind,
        /// What it does, in words.
        what: &'a str,
    },
    /// An audit finished and was recorded.
    Done {
        /// The model.
        label: &'a str,
        /// The audit.
        audit: AuditKind,
        /// Its wall time.
        seconds: f64,
    },
    /// Something could not run on the model's cohort.
    NotRun {
        /// The model.
        label: &'a str,
        /// What and why.
        item: &'a NotRun,
    },
    /// An audit (or the cohort) failed; the run goes on.
    Failed {
        /// The model.
        label: &'a str,
        /// The audit and the error.
        failure: &'a AuditFailure,
    },
    /// A step outside the audits (synthesizing the demo cohorts, the demo's mitigation).
    Step {
        /// What, in words.
        what: &'a str,
    },
    /// The report is being written.
    Rendering,
}

/// What the runner did for one model.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelOutcome {
    /// The label.
    pub label: String,
    /// The cohort directory.
    pub dir: PathBuf,
    /// The cohort's fingerprint, when its files could be read.
    pub cohort_fingerprint: Option<String>,
    /// The audits that ran, with their wall times.
    pub audits: Vec<(AuditKind, f64)>,
    /// What could not run on this cohort, and why.
    pub not_run: Vec<NotRun>,
    /// What failed.
    pub failed: Vec<AuditFailure>,
    /// Headline figures for a closing table.
    pub summary: ModelSummary,
}

/// What the runner did.
#[derive(Debug, Clone, PartialEq)]
pub struct RunOutcome {
    /// One outcome per model, in plan order.
    pub models: Vec<ModelOutcome>,
    /// The report files written (empty without [`RunOptions::render`]).
    pub written: Vec<PathBuf>,
    /// Path of `run.json`.
    pub run_file: PathBuf,
}

impl RunOutcome {
    /// Whether any model or audit failed (`linkrisk audit` then exits 2).
    pub fn failed(&self) -> bool {
        self.models.iter().any(|m| !m.failed.is_empty())
    }
}

/// Audit every model of `models` into the run directory `out` (created if needed), in order,
/// reporting `events` and the ranking passes' `progress`; then write the report when
/// [`RunOptions::render`]. Errors only for what stops the whole run (two models with one
/// label, an unwritable run directory, the report); a model's own failures are in its
/// outcome.
pub fn run(
    models: &[ModelPlan],
    out: &Path,
    options: &RunOptions,
    events: &mut dyn FnMut(Event<'_>),
    progress: &dyn Progress,
) -> Result<RunOutcome> {
    unique_labels(models)?;
    let mut run = RunDir::open_or_create(out)?;
    let audits = models.iter().map(|m| m.settings.audits.len()).sum();
    events(Event::Planned { models: models.len(), audits });
    let mut outcomes = Vec::with_capacity(models.len());
    for (index, plan) in models.iter().enumerate() {
        events(Event::Model { index, label: &plan.label, dir: &plan.dir });
        outcomes.push(model::audit_model(&mut run, plan, options, events, progress)?);
    }
    let written = if options.render {
        events(Event::Rendering);
        write_report(out, &[Format::Html, Format::Markdown])?
    } else {
        Vec::new()
    };
    Ok(RunOutcome { models: outcomes, written, run_file: run.run_file_path() })
}
