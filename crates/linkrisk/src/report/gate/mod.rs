//! `linkrisk gate`: compare a run's figures with thresholds, so a CI pipeline can fail a
//! model whose linkage risk is too high. Every number compared is read from `run.json`'s
//! audit JSON by the keys docs/REPORTS.md lists (the same keys the report reads), never
//! recomputed — except that `--on ci-high` bounds a lift by the upper end of its Recall@1
//! interval divided by the chance level.
//!
//! What is checked, for every model of the run (its entries' `label`; `--model` restricts)
//! and every direction of each relink audit (forward and `reverse`):
//! - `--max-lift POOL=V` / `--max-recall-at-1 POOL=V`: the pool rows of size POOL (random and
//!   pathology-matched alike; `full` means the full-database figure) and every attack row
//!   with that `pool_size` (an attack row without one counts as a full-database figure).
//! - `--max-reid-rank1 V`: every re-ID audit's `rank_1` (plain and trained attackers) and
//!   every re-ID attack row's `recall_at_1`.
//! - `--min-utility V`: every utility audit's `macro_auroc` (a floor).
//! - `--max-attribute-auroc NAME=V`: the attribute audit's AUROC for `NAME`.
//! - every `skipped_attacks` entry anywhere in an audit's JSON (and a reid audit's
//!   `linear_metric_skipped`): an attack that was requested and did not run fails the gate,
//!   unless `allow_skipped`.
//!
//! With [`Basis::CiHigh`] a ceiling compares the upper end of the figure's 95% interval (the
//! larger of the Wilson and the patient-bootstrap interval where both are reported) and a
//! floor its lower end: the conservative side of each threshold. A figure beyond its
//! threshold is a violation (equal passes). A threshold that matches no figure of a model —
//! no such audit, a pool the run does not have, a missing metric or interval — is an error,
//! never a silent pass.

mod figures;
mod junit;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use serde::Serialize;

use super::fmt;
use super::run::RunFile;
use crate::error::{Error, Result};

pub use junit::to_junit;

/// The candidate pool a relink threshold refers to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Pool {
    /// A pool of `N` candidates (the true match and N-1 negatives).
    Size(u64),
    /// The full database.
    Full,
}

impl Pool {
    /// Parse `10000`, `10,000`, `10_000` or `full`; `None` for anything else (or N < 2).
    pub fn parse(text: &str) -> Option<Pool> {
        match text.trim() {
            "full" => Some(Pool::Full),
            n => n.replace(['_', ','], "").parse::<u64>().ok().filter(|&n| n >= 2).map(Pool::Size),
        }
    }

    /// `10000` or `full`, as written in a flag.
    pub fn flag_text(self) -> String {
        match self {
            Pool::Size(n) => n.to_string(),
            Pool::Full => "full".to_string(),
        }
    }

    /// `N=10,000` or `full database`, as written in a check.
    pub fn describe(self) -> String {
        match self {
            Pool::Size(n) => format!("N={}", fmt::count(n as f64)),
            Pool::Full => "full database".to_string(),
        }
    }
}

/// Which figure a threshold bounds.
#[derive(Debug, Clone, PartialEq)]
pub enum Metric {
    /// Relink `lift_at_1` at a pool (a ceiling).
    Lift(Pool),
    /// Relink `recall_at_1` at a pool (a ceiling, a proportion).
    RecallAt1(Pool),
    /// Re-ID `rank_1` (a ceiling, a proportion).
    ReidRank1,
    /// Utility `macro_auroc` (a floor, a proportion).
    Utility,
    /// Attribute-inference AUROC of the named attribute (a ceiling, a proportion).
    AttributeAuroc(String),
}

impl Metric {
    /// Whether the threshold is a floor (the figure may not fall below it).
    pub fn is_floor(&self) -> bool {
        matches!(self, Metric::Utility)
    }

    /// The JSON key of the figure.
    pub fn key(&self) -> &'static str {
        match self {
            Metric::Lift(_) => "lift_at_1",
            Metric::RecallAt1(_) => "recall_at_1",
            Metric::ReidRank1 => "rank_1",
            Metric::Utility => "macro_auroc",
            Metric::AttributeAuroc(_) => "auroc",
        }
    }
}

/// A threshold: the figure may not exceed `threshold` (or, for a floor, fall below it).
#[derive(Debug, Clone, PartialEq)]
pub struct Limit {
    /// The bounded figure.
    pub metric: Metric,
    /// Largest allowed value (smallest, for a floor).
    pub threshold: f64,
}

impl Limit {
    /// Parse `POOL=VALUE` (e.g. `10000=20`, `full=50`) for a pool-indexed metric; `flag`
    /// (`--max-lift`) names the flag in errors. Recall is a proportion in [0, 1].
    pub fn parse_pool(flag: &str, text: &str, metric: fn(Pool) -> Metric) -> Result<Limit> {
        let bad = |why: &str| {
            Error::config(format!(
                "{flag} {text}: {why}; expected POOL=VALUE, e.g. {flag} 10000=20 or {flag} full=50"
            ))
        };
        let (pool, value) = text.split_once('=').ok_or_else(|| bad("missing `=`"))?;
        let pool = Pool::parse(pool)
            .ok_or_else(|| bad("POOL must be `full` or a whole number of candidates >= 2"))?;
        Limit::new(metric(pool), parse_value(flag, value.trim())?, flag)
    }

    /// A `--max-reid-rank1` threshold (a proportion).
    pub fn reid_rank1(text: &str) -> Result<Limit> {
        Limit::new(Metric::ReidRank1, parse_value("--max-reid-rank1", text)?, "--max-reid-rank1")
    }

    /// A `--min-utility` floor (a macro AUROC).
    pub fn min_utility(text: &str) -> Result<Limit> {
        Limit::new(Metric::Utility, parse_value("--min-utility", text)?, "--min-utility")
    }

    /// A `--max-attribute-auroc NAME=VALUE` ceiling, e.g. `sex=0.8`.
    pub fn attribute_auroc(text: &str) -> Result<Limit> {
        let flag = "--max-attribute-auroc";
        let (name, value) = text.split_once('=').ok_or_else(|| {
            Error::config(format!("{flag} {text}: missing `=`; expected NAME=VALUE, e.g. {flag} sex=0.8"))
        })?;
        let name = name.trim();
        if name.is_empty() {
            return Err(Error::config(format!(
                "{flag} {text}: no attribute name; expected NAME=VALUE, e.g. {flag} sex=0.8"
            )));
        }
        Limit::new(Metric::AttributeAuroc(name.to_string()), parse_value(flag, value.trim())?, flag)
    }

    /// A threshold on `metric`, checked: every metric but the lift is a proportion in [0, 1].
    pub fn new(metric: Metric, threshold: f64, flag: &str) -> Result<Limit> {
        if !threshold.is_finite() || threshold < 0.0 {
            return Err(Error::config(format!(
                "{flag}: threshold {threshold} is not a finite, non-negative number"
            )));
        }
        if !matches!(metric, Metric::Lift(_)) && threshold > 1.0 {
            return Err(Error::config(format!(
                "{flag}: threshold {threshold} is not a proportion; {} is between 0 and 1 (0.005 = 0.5%)",
                metric.key()
            )));
        }
        Ok(Limit { metric, threshold })
    }

    /// The flag and argument that set this threshold (`--max-lift 10000=20`).
    pub fn flag(&self) -> String {
        let t = self.threshold;
        match &self.metric {
            Metric::Lift(p) => format!("--max-lift {}={t}", p.flag_text()),
            Metric::RecallAt1(p) => format!("--max-recall-at-1 {}={t}", p.flag_text()),
            Metric::ReidRank1 => format!("--max-reid-rank1 {t}"),
            Metric::Utility => format!("--min-utility {t}"),
            Metric::AttributeAuroc(name) => format!("--max-attribute-auroc {name}={t}"),
        }
    }
}

fn parse_value(flag: &str, text: &str) -> Result<f64> {
    text.parse::<f64>().ok().filter(|v| v.is_finite() && *v >= 0.0).ok_or_else(|| {
        Error::config(format!("{flag}: threshold `{text}` is not a finite, non-negative number"))
    })
}

/// Which number of a figure is compared with its threshold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Basis {
    /// The point estimate (default).
    #[default]
    Estimate,
    /// The conservative end of the 95% interval: its upper end for ceilings, its lower end
    /// for floors.
    CiHigh,
}

impl Basis {
    /// Parse `estimate` or `ci-high` (`--on`).
    pub fn parse(text: &str) -> Result<Basis> {
        match text.trim() {
            "estimate" => Ok(Basis::Estimate),
            "ci-high" | "ci_high" => Ok(Basis::CiHigh),
            other => Err(Error::config(format!("--on {other}: expected `estimate` or `ci-high`"))),
        }
    }
}

/// Everything a gate run checks: thresholds for every model, per-model thresholds, the basis
/// of comparison, whether skipped attacks are accepted and which models to check.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct GateSpec {
    /// Thresholds for every model.
    pub limits: Vec<Limit>,
    /// Thresholds of one model (by label); each replaces a `limits` threshold of the same
    /// metric for that model.
    pub model_limits: BTreeMap<String, Vec<Limit>>,
    /// What is compared.
    pub on: Basis,
    /// Accept attacks that were requested and did not run (`--allow-skipped`).
    pub allow_skipped: bool,
    /// Check only these models (labels); empty: every model of the run.
    pub models: Vec<String>,
}

impl GateSpec {
    /// A spec of thresholds that apply to every model.
    pub fn new(limits: Vec<Limit>) -> GateSpec {
        GateSpec { limits, ..GateSpec::default() }
    }

    /// Set `limit` for every model, replacing any threshold (common or per model) of the
    /// same metric: how command-line thresholds override an audit config's.
    pub fn set_limit(&mut self, limit: Limit) {
        self.limits.retain(|l| l.metric != limit.metric);
        for limits in self.model_limits.values_mut() {
            limits.retain(|l| l.metric != limit.metric);
        }
        self.limits.push(limit);
    }

    /// The thresholds that apply to `model`: its own, then the common ones of other metrics.
    pub fn limits_for(&self, model: Option<&str>) -> Vec<Limit> {
        let own: &[Limit] = model.and_then(|m| self.model_limits.get(m)).map_or(&[], Vec::as_slice);
        let mut out = own.to_vec();
        out.extend(self.limits.iter().filter(|l| !own.iter().any(|o| o.metric == l.metric)).cloned());
        out
    }

    fn has_limits(&self) -> bool {
        !self.limits.is_empty() || self.model_limits.values().any(|l| !l.is_empty())
    }
}

/// What a check compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckKind {
    /// A figure against its threshold.
    Threshold,
    /// An attack that was requested and did not run.
    SkippedAttack,
}

/// One check of a gate run: a figure against a threshold, or an attack that did not run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Check {
    /// What kind of check.
    pub kind: CheckKind,
    /// The model (the entries' label; `null` for unlabelled entries of older runs).
    pub model: Option<String>,
    /// The run entry's key.
    pub audit: String,
    /// JSON key of the figure (`lift_at_1`, `recall_at_1`, `rank_1`, `macro_auroc`,
    /// `auroc`), or the name of the attack that did not run.
    pub metric: String,
    /// Where in the audit: `image -> report, random pool, N=10,000`, `attack csls, ...`.
    pub scope: String,
    /// The point estimate, exactly as in the JSON (thresholds only).
    pub estimate: Option<f64>,
    /// The figure's 95% interval, when reported (thresholds only).
    pub ci95: Option<[f64; 2]>,
    /// The number compared: `estimate`, or an end of `ci95` (thresholds only).
    pub value: Option<f64>,
    /// `estimate`, `ci_high` or `ci_low` (thresholds only).
    pub compared: Option<&'static str>,
    /// `max` (ceiling) or `min` (floor) (thresholds only).
    pub bound: Option<&'static str>,
    /// The threshold (thresholds only).
    pub threshold: Option<f64>,
    /// The flag that set the threshold (`--max-lift 10000=20`) (thresholds only).
    pub flag: Option<String>,
    /// Why the attack did not run (skipped attacks only).
    pub reason: Option<String>,
    /// Whether the check passed (a skipped attack passes only under `--allow-skipped`).
    pub passed: bool,
}

impl Check {
    /// Whether the check failed.
    pub fn violated(&self) -> bool {
        !self.passed
    }

    /// One line: which audit, which figure, value vs threshold (or which attack did not run).
    pub fn describe(&self) -> String {
        match self.kind {
            CheckKind::SkippedAttack => {
                let reason = self.reason.as_deref().unwrap_or("no reason given");
                let allowed = if self.passed { " (accepted: --allow-skipped)" } else { "" };
                format!(
                    "{}: attack {} ({}) did not run: {reason}{allowed}",
                    self.audit, self.metric, self.scope
                )
            }
            CheckKind::Threshold => {
                let floor = self.bound == Some("min");
                let op = match (floor, self.passed) {
                    (false, false) => ">",
                    (false, true) => "<=",
                    (true, false) => "<",
                    (true, true) => ">=",
                };
                let which = match self.compared {
                    Some("ci_high") => " 95% CI high",
                    Some("ci_low") => " 95% CI low",
                    _ => "",
                };
                let estimate = match (self.compared, self.estimate) {
                    (Some("estimate"), _) | (_, None) => String::new(),
                    (_, Some(e)) => format!(" (estimate {e})"),
                };
                format!(
                    "{}: {}{which} ({}) = {} {op} {}{estimate} [{}]",
                    self.audit,
                    self.metric,
                    self.scope,
                    self.value.unwrap_or(f64::NAN),
                    self.threshold.unwrap_or(f64::NAN),
                    self.flag.as_deref().unwrap_or("")
                )
            }
        }
    }

    /// A short name for the check (the JUnit test case name): model, audit, metric, scope.
    pub fn name(&self) -> String {
        match self.kind {
            CheckKind::Threshold => format!("{} {} ({})", self.audit, self.metric, self.scope),
            CheckKind::SkippedAttack => format!("{} attack {} ran ({})", self.audit, self.metric, self.scope),
        }
    }
}

/// All checks of a gate run.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct GateOutcome {
    /// Whether every check passed.
    pub passed: bool,
    /// What was compared.
    pub on: Basis,
    /// Whether skipped attacks were accepted.
    pub allow_skipped: bool,
    /// The models checked (`null` for unlabelled entries).
    pub models: Vec<Option<String>>,
    /// Every check made: per model, its thresholds in order, then its skipped attacks.
    pub checks: Vec<Check>,
}

impl GateOutcome {
    /// The failed checks.
    pub fn violations(&self) -> impl Iterator<Item = &Check> {
        self.checks.iter().filter(|c| c.violated())
    }

    /// Whether no check failed.
    pub fn passed(&self) -> bool {
        self.violations().next().is_none()
    }

    /// The outcome as pretty JSON (`linkrisk gate --json`).
    pub fn to_json(&self) -> Result<String> {
        let mut text = serde_json::to_string_pretty(self)
            .map_err(|e| Error::config(format!("cannot serialise the gate outcome: {e}")))?;
        text.push('\n');
        Ok(text)
    }
}

/// Check every threshold against every model of the run, and every skipped attack. Errors
/// when no threshold is given, when `spec.models` names a model the run does not have, and
/// when a threshold matches no figure of a model.
pub fn evaluate(run: &RunFile, spec: &GateSpec) -> Result<GateOutcome> {
    if !spec.has_limits() {
        return Err(Error::config(
            "no threshold given: use --max-lift POOL=VALUE, --max-recall-at-1 POOL=VALUE, --max-reid-rank1 VALUE, \
             --min-utility VALUE, --max-attribute-auroc NAME=VALUE or a [gate] section in --config",
        ));
    }
    let models = figures::select_models(run, &spec.models)?;
    for label in spec.model_limits.keys() {
        if !models.iter().any(|m| m.label.as_deref() == Some(label.as_str())) && spec.models.is_empty() {
            return Err(Error::config(format!(
                "the gate thresholds name model `{label}`, which this run does not have; models: {}",
                figures::model_names(run)
            )));
        }
    }
    let mut outcome = GateOutcome {
        on: spec.on,
        allow_skipped: spec.allow_skipped,
        models: models.iter().map(|m| m.label.clone()).collect(),
        ..GateOutcome::default()
    };
    // Models with no audit the gate bounds (a mitigation sweep's label) are not checked
    // against thresholds, unless no model has one: then the errors say what is missing.
    let any_audited = models.iter().any(|m| m.audited());
    for model in &models {
        if model.audited() || !any_audited {
            for limit in spec.limits_for(model.label.as_deref()) {
                outcome.checks.extend(model.checks(&limit, spec.on)?);
            }
        }
        outcome.checks.extend(model.skipped_attacks(spec.allow_skipped));
    }
    outcome.passed = outcome.passed();
    Ok(outcome)
}
