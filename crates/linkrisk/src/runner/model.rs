//! One model's audits: fingerprint and load the cohort, decide what can run on it (listing
//! what cannot), run each audit, record each report under the model's label and
//! fingerprint, and keep going when one fails.

use std::time::Instant;

use serde::Serialize;

use super::settings::{AuditKind, HardNegatives};
use super::summary::ModelSummary;
use super::{Event, ModelOutcome, ModelPlan, RunOptions};
use crate::audit::attributes::{attributes, attributes_by_reid, Attribute};
use crate::audit::reid::{reid, Attackers, FlagSource, ReidReport, FLAG_DEFINITION, NEAREST_NEIGHBOUR};
use crate::audit::relink;
use crate::audit::utility::utility;
use crate::cohort::Cohort;
use crate::engine::Progress;
use crate::error::{Error, Result};
use crate::report::run::{unix_now, AuditFailure, CohortSummary, ModelRecord, NotRun, RunEntry};
use crate::report::RunDir;

/// The state of one model's run.
struct ModelRun<'a> {
    run: &'a mut RunDir,
    plan: &'a ModelPlan,
    options: &'a RunOptions,
    fingerprint: Option<String>,
    outcome: ModelOutcome,
}

/// Run every audit of `plan`, recording into `run`. Errors only when the run directory
/// cannot be written; everything else is in the outcome.
pub(super) fn audit_model(
    run: &mut RunDir,
    plan: &ModelPlan,
    options: &RunOptions,
    events: &mut dyn FnMut(Event<'_>),
    progress: &dyn Progress,
) -> Result<ModelOutcome> {
    let outcome = ModelOutcome {
        label: plan.label.clone(),
        dir: plan.dir.clone(),
        cohort_fingerprint: None,
        audits: Vec::new(),
        not_run: Vec::new(),
        failed: Vec::new(),
        summary: ModelSummary::default(),
    };
    let mut m = ModelRun { run, plan, options, fingerprint: None, outcome };
    let cohort = match m.open_cohort() {
        Ok(cohort) => Some(cohort),
        Err(e) => {
            m.fail("cohort", &e, events);
            None
        }
    };
    if let Some(cohort) = &cohort {
        let mut reid_report = None;
        for &audit in &plan.settings.audits {
            let started = Instant::now();
            let result = match audit {
                AuditKind::Relink => m.relink(cohort, events, progress),
                AuditKind::Reid => m.reid(cohort, events, progress).map(|r| {
                    reid_report = r;
                }),
                AuditKind::Attributes => m.attributes(cohort, reid_report.as_ref(), events, progress),
                AuditKind::Utility => m.utility(cohort, events),
            };
            match result {
                Ok(()) => {
                    let seconds = started.elapsed().as_secs_f64();
                    if m.outcome.audits.last().is_some_and(|(a, _)| *a == audit) {
                        events(Event::Done { label: &plan.label, audit, seconds });
                    }
                }
                // The run directory itself failing stops the run: nothing more can be kept;
                // a cancelled run (Ctrl-C from Python) stops too.
                Err(e @ (Error::Write { .. } | Error::Cancelled)) => return Err(e),
                Err(e) => m.fail(audit.as_str(), &e, events),
            }
        }
    }
    let record = ModelRecord {
        label: plan.label.clone(),
        cohort_fingerprint: m.fingerprint.clone(),
        source: Some(plan.dir.display().to_string()),
        cohort: cohort
            .as_ref()
            .and_then(|c| serde_json::to_value(CohortSummary::from_cohort(c, options.synthetic)).ok()),
        not_run: m.outcome.not_run.clone(),
        failed: m.outcome.failed.clone(),
    };
    match m.run.set_model(record) {
        Ok(()) => {}
        // A label conflict refuses the record; it was reported as the model's failure.
        Err(Error::Input { .. }) if !m.outcome.failed.is_empty() => {}
        Err(e) => return Err(e),
    }
    m.outcome.cohort_fingerprint = m.fingerprint;
    Ok(m.outcome)
}

impl ModelRun<'_> {
    fn label(&self) -> &str {
        &self.plan.label
    }

    /// Fingerprint the cohort, check its label against the run directory, load it.
    fn open_cohort(&mut self) -> Result<Cohort> {
        let fingerprint = crate::shard::cohort_fingerprint(&self.plan.dir)?;
        if let Err(e) = self.run.check_label(self.label(), &fingerprint) {
            if !self.options.replace {
                return Err(e);
            }
            self.run.remove_label(&self.plan.label)?;
        }
        self.fingerprint = Some(fingerprint);
        let cohort = Cohort::load(&self.plan.dir)?;
        if self.run.run_file().cohort.is_none() {
            self.run.set_cohort(&CohortSummary::from_cohort(&cohort, self.options.synthetic))?;
        }
        Ok(cohort)
    }

    fn fail(&mut self, audit: &str, error: &Error, events: &mut dyn FnMut(Event<'_>)) {
        let failure = AuditFailure { audit: audit.to_string(), error: error.to_string() };
        events(Event::Failed { label: &self.plan.label, failure: &failure });
        self.outcome.failed.push(failure);
    }

    fn not_run(&mut self, audit: AuditKind, what: &str, reason: String, events: &mut dyn FnMut(Event<'_>)) {
        let item = NotRun { audit: audit.as_str().to_string(), what: what.to_string(), reason };
        events(Event::NotRun { label: &self.plan.label, item: &item });
        self.outcome.not_run.push(item);
    }

    /// Whether `view` exists; a missing view named by the configuration is an error, a
    /// missing default view lists the audit as not run.
    fn has_view(
        &mut self,
        cohort: &Cohort,
        audit: AuditKind,
        view: &str,
        explicit: bool,
        events: &mut dyn FnMut(Event<'_>),
    ) -> Result<bool> {
        if cohort.view(view).is_ok() {
            return Ok(true);
        }
        if explicit {
            cohort.view(view)?;
        }
        self.not_run(audit, audit.as_str(), format!("the cohort has no `{view}` view"), events);
        Ok(false)
    }

    /// Record one report under the model's label and fingerprint.
    fn record<T: Serialize>(&mut self, audit: AuditKind, seed: u64, seconds: f64, report: &T) -> Result<()> {
        let json = serde_json::to_value(report)
            .map_err(|e| Error::config(format!("cannot serialise the {} report: {e}", audit.as_str())))?;
        self.run.record_entry(RunEntry {
            key: String::new(),
            label: Some(self.plan.label.clone()),
            cohort_fingerprint: self.fingerprint.clone(),
            command: self.options.command.clone(),
            seed: Some(seed),
            started_unix: unix_now().saturating_sub(seconds.ceil() as u64),
            seconds,
            linkrisk_version: crate::VERSION.to_string(),
            audit: json,
        })?;
        Ok(())
    }

    fn finished(&mut self, audit: AuditKind, started: Instant) {
        self.outcome.audits.push((audit, started.elapsed().as_secs_f64()));
    }

    fn relink(
        &mut self,
        cohort: &Cohort,
        events: &mut dyn FnMut(Event<'_>),
        progress: &dyn Progress,
    ) -> Result<()> {
        let plan = self.plan;
        let s = &plan.settings;
        let mut config = s.relink.clone();
        let (q, g) = (config.query_view.clone(), config.gallery_view.clone());
        if !self.has_view(cohort, AuditKind::Relink, &q, s.explicit.relink_views, events)?
            || !self.has_view(cohort, AuditKind::Relink, &g, s.explicit.relink_views, events)?
        {
            return Ok(());
        }
        config.hard_negatives = match s.hard_negatives {
            HardNegatives::On => true,
            HardNegatives::Off => false,
            HardNegatives::Auto if cohort.metadata.findings.is_some() => true,
            HardNegatives::Auto => {
                let reason = "the cohort has no finding columns to match negatives on".to_string();
                self.not_run(AuditKind::Relink, "pathology-matched pools (hard negatives)", reason, events);
                false
            }
        };
        let what = format!("re-linkage {q} <-> {g}");
        events(Event::Audit { label: &self.plan.label, audit: AuditKind::Relink, what: &what });
        let started = Instant::now();
        let report = relink(cohort, &config, progress)?;
        self.record(AuditKind::Relink, config.seed, started.elapsed().as_secs_f64(), &report)?;
        self.outcome.summary.relink(&report);
        self.finished(AuditKind::Relink, started);
        Ok(())
    }

    fn reid(
        &mut self,
        cohort: &Cohort,
        events: &mut dyn FnMut(Event<'_>),
        progress: &dyn Progress,
    ) -> Result<Option<ReidReport>> {
        let config = self.plan.settings.reid.clone();
        if !self.has_view(
            cohort,
            AuditKind::Reid,
            &config.view,
            self.plan.settings.explicit.reid_view,
            events,
        )? {
            return Ok(None);
        }
        let what = format!("patient re-identification ({})", config.view);
        events(Event::Audit { label: &self.plan.label, audit: AuditKind::Reid, what: &what });
        let started = Instant::now();
        let report = reid(cohort, &config, progress)?;
        let seconds = started.elapsed().as_secs_f64();
        // One entry per attacker, as `linkrisk reid --out` records them.
        for entry in report.run_entries() {
            self.record(AuditKind::Reid, config.seed, seconds, &entry)?;
        }
        self.outcome.summary.reid(&report);
        self.finished(AuditKind::Reid, started);
        Ok(Some(report))
    }

    fn attributes(
        &mut self,
        cohort: &Cohort,
        reid_report: Option<&ReidReport>,
        events: &mut dyn FnMut(Event<'_>),
        progress: &dyn Progress,
    ) -> Result<()> {
        let plan = self.plan;
        let s = &plan.settings;
        let mut config = s.attributes.clone();
        if !self.has_view(cohort, AuditKind::Attributes, &config.view, s.explicit.attributes_view, events)? {
            return Ok(());
        }
        if !s.explicit.attribute_targets {
            let meta = &cohort.metadata;
            let (present, missing): (Vec<Attribute>, Vec<Attribute>) =
                config.targets.iter().partition(|t| match t {
                    Attribute::Sex => meta.sex.is_some(),
                    Attribute::Age => meta.age.is_some(),
                    Attribute::Race => meta.race.is_some(),
                });
            for t in missing {
                let reason = format!("the metadata has no `{}` column", t.name());
                self.not_run(AuditKind::Attributes, t.name(), reason, events);
            }
            if present.is_empty() {
                return Ok(());
            }
            config.targets = present;
        }
        let what = format!("attribute inference ({}), stratified by re-identification", config.view);
        events(Event::Audit { label: &self.plan.label, audit: AuditKind::Attributes, what: &what });
        let started = Instant::now();
        let reid_failed = self.outcome.failed.iter().any(|f| f.audit == AuditKind::Reid.as_str());
        let report = if !self.plan.settings.stratify_by_reid {
            attributes(cohort, &config, None)?
        } else if let Some((flags, source)) = reid_report.and_then(|r| self.reused_flags(r, cohort.len())) {
            let mut report = attributes(cohort, &config, Some(&flags))?;
            report.reidentification_source = Some(source);
            report
        } else if reid_failed {
            let reason = "the reid audit failed on this cohort".to_string();
            self.not_run(AuditKind::Attributes, "stratification by re-identification", reason, events);
            attributes(cohort, &config, None)?
        } else {
            let flags_config = crate::audit::ReidConfig {
                attackers: self.plan.settings.reid_attacker,
                bootstrap_replicates: 0,
                attack: None,
                ..self.plan.settings.reid.clone()
            };
            attributes_by_reid(cohort, &config, &flags_config, progress)?
        };
        self.record(AuditKind::Attributes, config.probe.seed, started.elapsed().as_secs_f64(), &report)?;
        self.outcome.summary.attributes(&report);
        self.finished(AuditKind::Attributes, started);
        Ok(())
    }

    /// The re-identified flags the attribute audit would compute itself, taken from the
    /// re-ID audit that already ran when it ran on the same view and split with the chosen
    /// attacker (so the ranking is not repeated).
    fn reused_flags(&self, report: &ReidReport, n_records: usize) -> Option<(Vec<Option<bool>>, FlagSource)> {
        let s = &self.plan.settings;
        if report.view != s.attributes.view || report.split != s.attributes.eval_split {
            return None;
        }
        let index = match s.reid_attacker {
            Attackers::NearestNeighbour => {
                report.attackers.iter().position(|a| a.attacker == NEAREST_NEIGHBOUR)?
            }
            Attackers::LinearMetric => {
                report.attackers.iter().position(|a| a.attacker != NEAREST_NEIGHBOUR)?
            }
            // The stronger of the two, as the re-ID audit itself with both attackers.
            Attackers::Both | Attackers::Auto => {
                report.attackers.iter().position(|a| a.attacker == report.attacker)?
            }
        };
        let chosen = report.for_attacker(index)?;
        let source = FlagSource::ReidAudit {
            attacker: chosen.attacker,
            view: chosen.view.clone(),
            split: chosen.split.clone(),
            rank_1: chosen.headline.rank_1,
            n_queries: chosen.headline.n_queries,
            definition: FLAG_DEFINITION,
        };
        Some((chosen.flags(n_records), source))
    }

    fn utility(&mut self, cohort: &Cohort, events: &mut dyn FnMut(Event<'_>)) -> Result<()> {
        let config = self.plan.settings.utility.clone();
        if !self.has_view(
            cohort,
            AuditKind::Utility,
            &config.view,
            self.plan.settings.explicit.utility_view,
            events,
        )? {
            return Ok(());
        }
        if cohort.metadata.findings.is_none() {
            let reason = "the cohort has no finding columns to probe".to_string();
            self.not_run(AuditKind::Utility, "utility", reason, events);
            return Ok(());
        }
        let what = format!("utility probes ({}, 14 findings)", config.view);
        events(Event::Audit { label: &self.plan.label, audit: AuditKind::Utility, what: &what });
        let started = Instant::now();
        let report = utility(cohort, &config)?;
        self.record(AuditKind::Utility, config.probe.seed, started.elapsed().as_secs_f64(), &report)?;
        self.outcome.summary.utility(&report);
        self.finished(AuditKind::Utility, started);
        Ok(())
    }
}
