//! `linkrisk demo`: the one-command tour. Synthesizes one population as four embedding
//! models of increasing clinical specialization see it (standing for paper 1's four VLMs),
//! audits them with the same runner as `linkrisk audit` (one code path), runs a two-point
//! mitigation (non-private vs private projection heads), and renders the report.

use std::path::{Path, PathBuf};
use std::time::Instant;

use super::settings::Settings;
use super::{Event, ModelPlan, RunOptions, RunOutcome};
use crate::audit::mitigate::{self, MitigateConfig, MitigateReport};
use crate::cohort::Cohort;
use crate::engine::Progress;
use crate::error::{Error, Result};
use crate::report::run::{unix_now, RunEntry};
use crate::report::{write_report, Format, RunDir};
use crate::synth::{Population, SynthConfig, SynthSummary};

/// The demo's stand-ins for four VLMs of increasing clinical specialization.
pub const DEMO_MODELS: [(&str, f64); 4] =
    [("general", 0.0), ("biomedical", 0.33), ("radiology", 0.67), ("cxr-specialist", 1.0)];

/// The label of the demo's mitigation entry.
pub const MITIGATION_LABEL: &str = "mitigation";

/// Settings of the demo.
#[derive(Debug, Clone, PartialEq)]
pub struct DemoConfig {
    /// Train/test patients of the synthetic population (plus a fifth as many external ones).
    pub patients: usize,
    /// Seed of the population and of every audit.
    pub seed: u64,
    /// Random pools per query and pool size in the re-linkage audit.
    pub trials: usize,
    /// Patient-bootstrap replicates of the re-linkage and re-ID intervals.
    pub bootstrap: usize,
    /// Privacy budget of the private heads in the two-point mitigation.
    pub epsilon: f64,
}

impl Default for DemoConfig {
    fn default() -> Self {
        DemoConfig { patients: 4000, seed: 0, trials: 10, bootstrap: 200, epsilon: 1.0 }
    }
}

/// One synthesized demo cohort.
#[derive(Debug, Clone, PartialEq)]
pub struct DemoCohort {
    /// Model name, e.g. `radiology`.
    pub model: &'static str,
    /// What was written (the directory is `summary.dir`).
    pub summary: SynthSummary,
}

/// What the demo did.
#[derive(Debug, Clone)]
pub struct DemoOutcome {
    /// The cohorts written.
    pub cohorts: Vec<DemoCohort>,
    /// The audits of every model.
    pub run: RunOutcome,
    /// The two-point mitigation, when it ran.
    pub mitigation: Option<MitigateReport>,
    /// Why the mitigation failed, when it did (the demo then exits 2, as `linkrisk audit`
    /// does for a failed model).
    pub mitigation_error: Option<String>,
    /// The lines that describe the mitigation ([`mitigation_summary_lines`]).
    pub mitigation_lines: Vec<String>,
}

/// Sample one population and write it as each of [`DEMO_MODELS`] embeds it, into
/// `out/cohorts/<model>/`. The patients, studies, findings and frozen-encoder features are
/// the same in every cohort; only `image.npy` and `report.npy` differ.
pub fn synthesize_cohorts(out: &Path, patients: usize, seed: u64) -> Result<Vec<DemoCohort>> {
    let config =
        SynthConfig { patients, seed, external_patients: patients.div_ceil(5), ..SynthConfig::default() };
    let population = Population::sample(&config)?;
    DEMO_MODELS
        .iter()
        .map(|&(model, specialization)| {
            let summary = population.write(&out.join("cohorts").join(model), specialization)?;
            Ok(DemoCohort { model, summary })
        })
        .collect()
}

/// The audit settings of the demo: `linkrisk audit`'s, with the demo's trials, bootstrap and
/// seed.
pub fn demo_settings(config: &DemoConfig) -> Settings {
    let mut s = Settings::defaults().with_seed(config.seed);
    s.relink.trials = config.trials;
    s.relink.bootstrap_replicates = config.bootstrap;
    s.reid.bootstrap_replicates = config.bootstrap;
    s
}

/// Synthesize, audit (the runner), mitigate, report — into `out`.
pub fn run(
    config: &DemoConfig,
    out: &Path,
    command: Vec<String>,
    events: &mut dyn FnMut(Event<'_>),
    progress: &dyn Progress,
) -> Result<DemoOutcome> {
    std::fs::create_dir_all(out).map_err(|e| Error::write(out, e))?;
    let what = format!("synthesizing {} patients as seen by {} models", config.patients, DEMO_MODELS.len());
    events(Event::Step { what: &what });
    let cohorts = synthesize_cohorts(out, config.patients, config.seed)?;
    let settings = demo_settings(config);
    let plans = cohorts
        .iter()
        .map(|c| ModelPlan::new(c.model, c.summary.dir.clone(), settings.clone()))
        .collect::<Result<Vec<_>>>()?;
    // The demo owns its directory: a rerun with other settings replaces its models.
    let options = RunOptions { command: command.clone(), synthetic: true, render: false, replace: true };
    let mut run = super::run(&plans, out, &options, events, progress)?;

    let (mitigation, mitigation_error) = match mitigate_heads(config, out, &cohorts[0], command, events) {
        Ok(report) => (Some(report), None),
        Err(e @ Error::Write { .. }) => return Err(e),
        Err(e) => (None, Some(e.to_string())),
    };
    events(Event::Rendering);
    run.written = write_report(out, &[Format::Html, Format::Markdown])?;
    let mitigation_lines = match &mitigation {
        Some(report) => mitigation_summary_lines(report, config.epsilon),
        None => Vec::new(),
    };
    Ok(DemoOutcome { cohorts, run, mitigation, mitigation_error, mitigation_lines })
}

/// Train projection heads on the frozen-encoder features of `demo`'s cohort (the same in
/// every demo cohort), without privacy and with DP-SGD at `config.epsilon`, audit both, and
/// record the frontier under [`MITIGATION_LABEL`].
fn mitigate_heads(
    config: &DemoConfig,
    out: &Path,
    demo: &DemoCohort,
    command: Vec<String>,
    events: &mut dyn FnMut(Event<'_>),
) -> Result<MitigateReport> {
    let dir: &PathBuf = &demo.summary.dir;
    let cohort = Cohort::load(dir)?;
    let mut mitigate_config = MitigateConfig::demo(config.epsilon);
    mitigate_config.seed = config.seed;
    mitigate_config.relink.seed = config.seed;
    mitigate_config.validate()?;
    let what = format!("mitigation: projection heads, non-private vs DP-SGD at epsilon {}", config.epsilon);
    events(Event::Step { what: &what });
    let started = Instant::now();
    let report = mitigate::run(&cohort, &mitigate_config, &mut |_| Ok(()))?;
    let seconds = started.elapsed().as_secs_f64();
    let audit = serde_json::to_value(&report)
        .map_err(|e| Error::config(format!("cannot serialise the mitigate report: {e}")))?;
    let mut run = RunDir::open_or_create(out)?;
    run.remove_label(MITIGATION_LABEL)?;
    run.record_entry(RunEntry {
        key: String::new(),
        label: Some(MITIGATION_LABEL.to_string()),
        cohort_fingerprint: Some(crate::shard::cohort_fingerprint(dir)?),
        command,
        seed: Some(config.seed),
        started_unix: unix_now().saturating_sub(seconds.ceil() as u64),
        seconds,
        linkrisk_version: crate::VERSION.to_string(),
        audit,
    })?;
    Ok(report)
}

/// The demo's description of the mitigation, set against the audited model (the demo
/// cohort's own views): one line per cohort and row, as `linkrisk mitigate` prints it.
pub fn mitigation_summary_lines(report: &MitigateReport, _epsilon: f64) -> Vec<String> {
    crate::audit::mitigate::summary_lines(report)
}
