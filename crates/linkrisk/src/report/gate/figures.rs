//! The gate's reading of `run.json`: entries grouped by model (label), each threshold matched
//! to the figures it bounds in every direction and attacker, and every attack that was
//! requested and did not run. Numbers are copied from the audit JSON unchanged.

use serde_json::{Map, Value};

use super::{Basis, Check, CheckKind, Limit, Metric, Pool};
use crate::error::{Error, Result};
use crate::report::fmt;
use crate::report::run::{RunEntry, RunFile};

type Obj = Map<String, Value>;

/// The audit kinds thresholds bound (a `mitigate` sweep describes candidate heads, not the
/// audited model, and is not gated).
const AUDITED: [&str; 5] = ["relink", "attacks", "reid", "attributes", "utility"];

/// The entries of one model.
#[derive(Debug)]
pub(super) struct ModelRuns<'a> {
    /// The label (`None`: unlabelled entries of an older run).
    pub label: Option<String>,
    entries: Vec<&'a RunEntry>,
}

/// The run's models in first-recorded order, restricted to `only` when given (an unknown
/// name is an error listing the models).
pub(super) fn select_models<'a>(run: &'a RunFile, only: &[String]) -> Result<Vec<ModelRuns<'a>>> {
    let mut models: Vec<ModelRuns<'a>> = Vec::new();
    for entry in &run.runs {
        match models.iter_mut().find(|m| m.label == entry.label) {
            Some(m) => m.entries.push(entry),
            None => models.push(ModelRuns { label: entry.label.clone(), entries: vec![entry] }),
        }
    }
    for name in only {
        if !models.iter().any(|m| m.label.as_deref() == Some(name.as_str())) {
            return Err(Error::config(format!(
                "--model {name}: this run has no model `{name}`; models: {}",
                model_names(run)
            )));
        }
    }
    if !only.is_empty() {
        models.retain(|m| m.label.as_ref().is_some_and(|l| only.contains(l)));
    }
    Ok(models)
}

/// The run's model names, comma-separated (`(unlabelled)` for entries without a label).
pub(super) fn model_names(run: &RunFile) -> String {
    let mut names: Vec<String> = Vec::new();
    for e in &run.runs {
        let name = e.label.clone().unwrap_or_else(|| "(unlabelled)".to_string());
        if !names.contains(&name) {
            names.push(name);
        }
    }
    if names.is_empty() {
        "none".to_string()
    } else {
        names.join(", ")
    }
}

/// A figure: the point estimate and the envelope of its reported 95% intervals.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Figure {
    estimate: f64,
    ci95: Option<[f64; 2]>,
}

fn number(v: &Value) -> Option<f64> {
    v.as_f64().filter(|x| x.is_finite())
}

fn pair(v: Option<&Value>) -> Option<[f64; 2]> {
    match v?.as_array()?.as_slice() {
        [lo, hi] => Some([number(lo)?, number(hi)?]),
        _ => None,
    }
}

/// `key` of `obj`: a number with `ci95_<key>` and `bootstrap_ci95_<key>` siblings (the
/// interval is their envelope: the lower of the lows, the higher of the highs), or an
/// Estimate object `{"value", "ci_low", "ci_high"}`.
fn figure(obj: &Obj, key: &str) -> Option<Figure> {
    match obj.get(key)? {
        Value::Object(o) => {
            let estimate = o.get("value").and_then(number)?;
            let ci95 = match (o.get("ci_low").and_then(number), o.get("ci_high").and_then(number)) {
                (Some(lo), Some(hi)) => Some([lo, hi]),
                _ => pair(o.get("ci95")),
            };
            Some(Figure { estimate, ci95 })
        }
        v => {
            let estimate = number(v)?;
            let intervals = [format!("ci95_{key}"), format!("bootstrap_ci95_{key}")];
            let ci95 = intervals
                .iter()
                .filter_map(|k| pair(obj.get(k)))
                .reduce(|a, b| [a[0].min(b[0]), a[1].max(b[1])]);
            Some(Figure { estimate, ci95 })
        }
    }
}

/// The lift of a row: `lift_at_1`, its interval the Recall@1 interval over `chance_at_1`.
fn lift(obj: &Obj) -> Option<Figure> {
    let estimate = obj.get("lift_at_1").and_then(number)?;
    let chance = obj.get("chance_at_1").and_then(number).filter(|c| *c > 0.0);
    let ci95 = match (figure(obj, "recall_at_1").and_then(|f| f.ci95), chance) {
        (Some([lo, hi]), Some(c)) => Some([lo / c, hi / c]),
        _ => None,
    };
    Some(Figure { estimate, ci95 })
}

fn text<'a>(obj: &'a Obj, key: &str) -> Option<&'a str> {
    obj.get(key).and_then(Value::as_str)
}

fn kind(entry: &RunEntry) -> &str {
    entry.audit.get("audit").and_then(Value::as_str).unwrap_or_default()
}

/// A matched figure, before comparison.
struct Found {
    audit: String,
    scope: String,
    figure: Option<Figure>,
}

impl ModelRuns<'_> {
    /// Whether the model has an audit the gate's thresholds bound.
    pub fn audited(&self) -> bool {
        self.entries.iter().any(|e| AUDITED.contains(&kind(e)))
    }

    /// `this run` (unlabelled) or `model `NAME``, for messages.
    fn whose(&self) -> String {
        match &self.label {
            Some(l) => format!("model `{l}`"),
            None => "this run".to_string(),
        }
    }

    fn of_kind<'s>(&'s self, kinds: &'s [&str]) -> impl Iterator<Item = (&'s RunEntry, &'s Obj)> + 's {
        self.entries
            .iter()
            .filter(move |e| kinds.contains(&kind(e)))
            .filter_map(|e| Some((*e, e.audit.as_object()?)))
    }

    fn missing(&self, limit: &Limit, what: &str) -> Error {
        let keys: Vec<&str> = self.entries.iter().map(|e| e.key.as_str()).collect();
        let present = if keys.is_empty() { "none".to_string() } else { keys.join(", ") };
        Error::config(format!(
            "{}: {} has no {what} audit to check (audits present: {present})",
            limit.flag(),
            self.whose()
        ))
    }

    /// Compare `limit` with every figure of this model it bounds.
    pub fn checks(&self, limit: &Limit, on: Basis) -> Result<Vec<Check>> {
        let found = match &limit.metric {
            Metric::Lift(pool) => self.relink_figures(limit, *pool, true)?,
            Metric::RecallAt1(pool) => self.relink_figures(limit, *pool, false)?,
            Metric::ReidRank1 => self.reid_figures(limit)?,
            Metric::Utility => self.utility_figures(limit)?,
            Metric::AttributeAuroc(name) => self.attribute_figures(limit, name)?,
        };
        found.into_iter().map(|f| self.compare(limit, on, f)).collect()
    }

    fn compare(&self, limit: &Limit, on: Basis, found: Found) -> Result<Check> {
        let flag = limit.flag();
        let key = limit.metric.key();
        let figure = found.figure.ok_or_else(|| {
            Error::config(format!("{flag}: {} has no {key} for its {}", found.audit, found.scope))
        })?;
        let floor = limit.metric.is_floor();
        let (value, compared) = match on {
            Basis::Estimate => (figure.estimate, "estimate"),
            Basis::CiHigh => {
                let [lo, hi] = figure.ci95.ok_or_else(|| {
                    Error::config(format!(
                        "{flag} with --on ci-high: {} reports no 95% interval for {key} ({}); use --on estimate for it",
                        found.audit, found.scope
                    ))
                })?;
                if floor {
                    (lo, "ci_low")
                } else {
                    (hi, "ci_high")
                }
            }
        };
        let passed = if floor { value >= limit.threshold } else { value <= limit.threshold };
        Ok(Check {
            kind: CheckKind::Threshold,
            model: self.label.clone(),
            audit: found.audit,
            metric: key.to_string(),
            scope: found.scope,
            estimate: Some(figure.estimate),
            ci95: figure.ci95,
            value: Some(value),
            compared: Some(compared),
            bound: Some(if floor { "min" } else { "max" }),
            threshold: Some(limit.threshold),
            flag: Some(flag),
            reason: None,
            passed,
        })
    }

    /// Every relink pool row, full-database figure and attack row at `pool`, both directions.
    fn relink_figures(&self, limit: &Limit, pool: Pool, lift_metric: bool) -> Result<Vec<Found>> {
        let relinks: Vec<(&RunEntry, &Obj)> = self.of_kind(&["relink", "attacks"]).collect();
        if relinks.is_empty() {
            return Err(self.missing(limit, "relink"));
        }
        let read = |o: &Obj| if lift_metric { lift(o) } else { figure(o, "recall_at_1") };
        let mut found = Vec::new();
        let mut present: Vec<Pool> = Vec::new();
        for (entry, audit) in relinks {
            for (direction, d) in directions(audit) {
                let at = |scope: String, o: &Obj| Found {
                    audit: entry.key.clone(),
                    scope: format!("{direction}, {scope}"),
                    figure: read(o),
                };
                for p in rows(d, "pools") {
                    let Some(n) = p.get("pool_size").and_then(Value::as_u64) else { continue };
                    present.push(Pool::Size(n));
                    if pool == Pool::Size(n) {
                        let kind = text(p, "kind").unwrap_or("random").replace('_', "-");
                        found.push(at(format!("{kind} pool, {}", pool.describe()), p));
                    }
                }
                if let Some(full) = d.get("full").and_then(Value::as_object) {
                    present.push(Pool::Full);
                    if pool == Pool::Full {
                        found.push(at(pool.describe(), full));
                    }
                }
                for a in rows(d, "attacks") {
                    let at_pool = a.get("pool_size").and_then(Value::as_u64).map_or(Pool::Full, Pool::Size);
                    present.push(at_pool);
                    // An attack row without the metric (e.g. no lift reported) is not checked.
                    if at_pool == pool && read(a).is_some() {
                        found.push(at(attack_scope(a, Some(pool)), a));
                    }
                }
            }
        }
        if found.is_empty() {
            present.sort();
            present.dedup();
            let names: Vec<String> = present.iter().map(|p| p.flag_text()).collect();
            let within = match &self.label {
                Some(l) => format!("of model `{l}`"),
                None => "in this run".to_string(),
            };
            return Err(Error::config(format!(
                "{}: no relink audit {within} has a pool of {}; pools present: {}",
                limit.flag(),
                pool.describe(),
                if names.is_empty() { "none".to_string() } else { names.join(", ") }
            )));
        }
        Ok(found)
    }

    /// Every re-ID attacker's Rank-1 and every re-ID attack row's Recall@1.
    fn reid_figures(&self, limit: &Limit) -> Result<Vec<Found>> {
        let reids: Vec<(&RunEntry, &Obj)> = self.of_kind(&["reid"]).collect();
        if reids.is_empty() {
            return Err(self.missing(limit, "reid"));
        }
        let mut found = Vec::new();
        for (entry, audit) in reids {
            let view = text(audit, "view").unwrap_or("image");
            let listed: Vec<&Obj> = rows(audit, "attackers").collect();
            // One entry per attacker (as the CLI records them), or one entry holding several.
            let attackers: Vec<&Obj> = if listed.len() > 1 { listed } else { vec![audit] };
            for a in attackers {
                let attacker = match text(a, "attacker") {
                    None | Some("nearest-neighbour") | Some("none") => "nearest neighbour".to_string(),
                    Some(name) => format!("attacker {name}"),
                };
                let figure = figure(a, "rank_1");
                if figure.is_none() {
                    return Err(Error::config(format!(
                        "{}: the reid audit {} has no rank_1",
                        limit.flag(),
                        entry.key
                    )));
                }
                found.push(Found {
                    audit: entry.key.clone(),
                    scope: format!("{view} view, {attacker}"),
                    figure,
                });
            }
            for a in rows(audit, "attacks").filter(|a| figure(a, "recall_at_1").is_some()) {
                found.push(Found {
                    audit: entry.key.clone(),
                    scope: format!("{view} view, {}", attack_scope(a, None)),
                    figure: figure(a, "recall_at_1"),
                });
            }
        }
        Ok(found)
    }

    /// Every utility audit's macro AUROC.
    fn utility_figures(&self, limit: &Limit) -> Result<Vec<Found>> {
        let utilities: Vec<(&RunEntry, &Obj)> = self.of_kind(&["utility"]).collect();
        if utilities.is_empty() {
            return Err(self.missing(limit, "utility"));
        }
        Ok(utilities
            .into_iter()
            .map(|(entry, u)| Found {
                audit: entry.key.clone(),
                scope: probe_scope(u, "macro AUROC over the findings"),
                figure: figure(u, "macro_auroc"),
            })
            .collect())
    }

    /// Every attribute audit's AUROC for `name`.
    fn attribute_figures(&self, limit: &Limit, name: &str) -> Result<Vec<Found>> {
        let audits: Vec<(&RunEntry, &Obj)> = self.of_kind(&["attributes"]).collect();
        if audits.is_empty() {
            return Err(self.missing(limit, "attributes"));
        }
        let mut found = Vec::new();
        for (entry, a) in audits {
            let targets = a.get("attributes").or_else(|| a.get("targets")).and_then(Value::as_object);
            match targets.and_then(|t| t.get(name)).and_then(Value::as_object) {
                Some(t) => {
                    let figure =
                        figure(t, "auroc").map(|f| Figure { ci95: f.ci95.or(pair(t.get("ci95"))), ..f });
                    found.push(Found { audit: entry.key.clone(), scope: probe_scope(a, name), figure });
                }
                None => {
                    let probed: Vec<&str> =
                        targets.map(|t| t.keys().map(String::as_str).collect()).unwrap_or_default();
                    let skipped: Vec<String> = rows(a, "skipped")
                        .filter_map(|s| Some(format!("{} ({})", text(s, "attribute")?, text(s, "reason")?)))
                        .collect();
                    let why = if skipped.is_empty() {
                        String::new()
                    } else {
                        format!("; skipped: {}", skipped.join(", "))
                    };
                    return Err(Error::config(format!(
                        "{}: {} has no attribute `{name}` (probed: {}){why}",
                        limit.flag(),
                        entry.key,
                        if probed.is_empty() { "none".to_string() } else { probed.join(", ") }
                    )));
                }
            }
        }
        Ok(found)
    }

    /// One check per attack that was requested and did not run, in any audit of the model.
    pub fn skipped_attacks(&self, allow: bool) -> Vec<Check> {
        let mut out = Vec::new();
        for entry in &self.entries {
            let mut found = Vec::new();
            walk_skipped(&entry.audit, "", &mut found);
            for (name, scope, reason) in found {
                out.push(Check {
                    kind: CheckKind::SkippedAttack,
                    model: self.label.clone(),
                    audit: entry.key.clone(),
                    metric: name,
                    scope,
                    estimate: None,
                    ci95: None,
                    value: None,
                    compared: None,
                    bound: None,
                    threshold: None,
                    flag: None,
                    reason: Some(reason),
                    passed: allow,
                });
            }
        }
        out
    }
}

/// The array `key` of `obj` as objects.
fn rows<'a>(obj: &'a Obj, key: &str) -> impl Iterator<Item = &'a Obj> {
    obj.get(key).and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_object)
}

/// A relink audit's directions: the forward one at the top level, `reverse` when present.
fn directions(audit: &Obj) -> Vec<(String, &Obj)> {
    let name = |o: &Obj, q: &str, g: &str| {
        format!("{} -> {}", text(o, "query_view").unwrap_or(q), text(o, "gallery_view").unwrap_or(g))
    };
    let mut out = vec![(name(audit, "query", "gallery"), audit)];
    if let Some(reverse) = audit.get("reverse").and_then(Value::as_object) {
        let forward_gallery = text(audit, "gallery_view").unwrap_or("gallery");
        let forward_query = text(audit, "query_view").unwrap_or("query");
        out.push((name(reverse, forward_gallery, forward_query), reverse));
    }
    out
}

/// `attack csls`, `attack procrustes, 100 leaked pairs, N=10,000`.
fn attack_scope(a: &Obj, pool: Option<Pool>) -> String {
    let mut scope = format!("attack {}", text(a, "name").unwrap_or("?"));
    if let Some(m) = a.get("leaked_pairs").and_then(number) {
        scope.push_str(&format!(", {} leaked pairs", fmt::count(m)));
    }
    if let Some(p) = pool {
        scope.push_str(&format!(", {}", p.describe()));
    }
    scope
}

/// `image view, sex` plus the side-data protocol when the audit states one.
fn probe_scope(audit: &Obj, what: &str) -> String {
    let mut scope = format!("{} view, {what}", text(audit, "view").unwrap_or("image"));
    if let Some(side) = audit.get("side").and_then(Value::as_object) {
        if let Some(source) = text(side, "source") {
            scope.push_str(&format!(", side data: {source}"));
            if let Some(k) = side.get("folds").and_then(Value::as_u64) {
                scope.push_str(&format!(" ({k} folds)"));
            }
        }
    }
    scope
}

/// Collect (attack, scope, reason) for every `skipped_attacks` item under `value`, and a
/// reid object's `linear_metric_skipped` unless a `skipped_attacks` item already names it.
fn walk_skipped(value: &Value, scope: &str, out: &mut Vec<(String, String, String)>) {
    match value {
        Value::Object(o) => {
            let here = match (text(o, "query_view"), text(o, "gallery_view"), text(o, "view")) {
                (Some(q), Some(g), _) => format!("{q} -> {g}"),
                (_, _, Some(v)) => format!("{v} view"),
                _ => scope.to_string(),
            };
            let skipped: Vec<&Obj> = rows(o, "skipped_attacks").collect();
            for s in &skipped {
                let mut at = here.clone();
                if let Some(m) = s.get("leaked_pairs").and_then(number) {
                    at.push_str(&format!(", {} leaked pairs", fmt::count(m)));
                }
                if let Some(n) = s.get("pool_size").and_then(Value::as_u64) {
                    at.push_str(&format!(", {}", Pool::Size(n).describe()));
                }
                let name = text(s, "name").unwrap_or("?").to_string();
                out.push((name, at, text(s, "reason").unwrap_or("no reason given").to_string()));
            }
            if let Some(reason) = text(o, "linear_metric_skipped") {
                let named = skipped
                    .iter()
                    .any(|s| matches!(text(s, "name"), Some("linear-metric" | "linear_metric")));
                if !named {
                    out.push(("linear-metric".to_string(), here.clone(), reason.to_string()));
                }
            }
            for (k, v) in o {
                if k != "skipped_attacks" {
                    walk_skipped(v, &here, out);
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| walk_skipped(v, scope, out)),
        _ => {}
    }
}
