//! `linkrisk gate`: compare a run's figures with thresholds, so a CI pipeline can fail a
//! model whose linkage risk is too high. Reads the same [`ReportModel`] as the report, so
//! the gate and the report can never disagree about a number.
//!
//! What is checked, for each threshold:
//! - `--max-lift POOL=V` / `--max-recall-at-1 POOL=V`: every relink audit's pool rows of
//!   size POOL (random and pathology-matched alike; `full` means the full-database figure),
//!   and every attack row (issue 8) with that `pool_size` (an attack row without one counts
//!   as a full-database figure) that reports the metric.
//! - `--max-reid-rank1 V`: every re-ID audit's `rank_1` (plain and trained attackers), and
//!   every re-ID attack row's `recall_at_1`.
//!
//! A figure above its threshold is a violation (equal passes). A threshold that matches no
//! figure — no relink audit, a pool the run does not have, a missing metric — is an error,
//! never a silent pass.

use super::fmt;
use super::model::{Attacks, Pool, Relink, ReportModel};
use super::run::RunFile;
use crate::error::{Error, Result};

/// Which figure a threshold bounds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Metric {
    /// Relink `lift_at_1` at a pool.
    Lift(Pool),
    /// Relink `recall_at_1` at a pool.
    RecallAt1(Pool),
    /// Re-ID `rank_1`.
    ReidRank1,
}

/// A threshold: the figure may not exceed `max`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limit {
    /// The bounded figure.
    pub metric: Metric,
    /// Largest allowed value.
    pub max: f64,
}

impl Limit {
    /// Parse `POOL=VALUE` (e.g. `10000=20`, `full=50`) for a pool-indexed metric; `flag`
    /// (`--max-lift`) names the flag in errors.
    pub fn parse_pool(flag: &str, text: &str, metric: fn(Pool) -> Metric) -> Result<Limit> {
        let bad = |why: &str| {
            Error::config(format!(
                "{flag} {text}: {why}; expected POOL=VALUE, e.g. {flag} 10000=20 or {flag} full=50"
            ))
        };
        let (pool, value) = text.split_once('=').ok_or_else(|| bad("missing `=`"))?;
        let pool = match pool.trim() {
            "full" => Pool::Full,
            n => Pool::Size(
                n.replace(['_', ','], "")
                    .parse::<u64>()
                    .ok()
                    .filter(|&n| n >= 2)
                    .ok_or_else(|| bad("POOL must be `full` or a whole number of candidates >= 2"))?,
            ),
        };
        let max = parse_value(flag, value.trim())?;
        Ok(Limit { metric: metric(pool), max })
    }

    /// A `--max-reid-rank1` threshold.
    pub fn reid_rank1(text: &str) -> Result<Limit> {
        Ok(Limit { metric: Metric::ReidRank1, max: parse_value("--max-reid-rank1", text)? })
    }

    /// The flag and argument that set this threshold (`--max-lift 10000=20`).
    pub fn flag(&self) -> String {
        let pool = |p: Pool| match p {
            Pool::Size(n) => n.to_string(),
            Pool::Full => "full".to_string(),
        };
        match self.metric {
            Metric::Lift(p) => format!("--max-lift {}={}", pool(p), self.max),
            Metric::RecallAt1(p) => format!("--max-recall-at-1 {}={}", pool(p), self.max),
            Metric::ReidRank1 => format!("--max-reid-rank1 {}", self.max),
        }
    }
}

fn parse_value(flag: &str, text: &str) -> Result<f64> {
    text.parse::<f64>().ok().filter(|v| v.is_finite() && *v >= 0.0).ok_or_else(|| {
        Error::config(format!("{flag}: threshold `{text}` is not a finite, non-negative number"))
    })
}

/// One comparison of a figure with a threshold.
#[derive(Debug, Clone, PartialEq)]
pub struct Check {
    /// The run entry (its key, or label) the figure comes from.
    pub audit: String,
    /// JSON key of the figure (`lift_at_1`, `recall_at_1`, `rank_1`).
    pub metric: &'static str,
    /// Where in the audit: `random pool N=10,000`, `full database`, `attack csls, N=10,000`.
    pub scope: String,
    /// The figure, exactly as in the JSON.
    pub value: f64,
    /// The threshold.
    pub limit: Limit,
}

impl Check {
    /// Whether the figure exceeds its threshold.
    pub fn violated(&self) -> bool {
        self.value > self.limit.max
    }

    /// One line: which audit, which metric, value vs threshold.
    pub fn describe(&self) -> String {
        let op = if self.violated() { ">" } else { "<=" };
        format!(
            "{}: {} ({}) = {} {op} {} [{}]",
            self.audit,
            self.metric,
            self.scope,
            self.value,
            self.limit.max,
            self.limit.flag()
        )
    }
}

/// All checks of a gate run.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct GateOutcome {
    /// Every comparison made, in threshold order.
    pub checks: Vec<Check>,
}

impl GateOutcome {
    /// The violated checks.
    pub fn violations(&self) -> impl Iterator<Item = &Check> {
        self.checks.iter().filter(|c| c.violated())
    }

    /// Whether no threshold was exceeded.
    pub fn passed(&self) -> bool {
        self.violations().next().is_none()
    }
}

/// Check every threshold against the run. Errors when a threshold matches no figure.
pub fn evaluate(run: &RunFile, limits: &[Limit]) -> Result<GateOutcome> {
    if limits.is_empty() {
        return Err(Error::config(
            "no threshold given: use --max-lift POOL=VALUE, --max-recall-at-1 POOL=VALUE or --max-reid-rank1 VALUE",
        ));
    }
    let model = ReportModel::from_run(run);
    let mut outcome = GateOutcome::default();
    for limit in limits {
        let checks = match limit.metric {
            Metric::Lift(pool) => pool_checks(&model, run, *limit, pool, true)?,
            Metric::RecallAt1(pool) => pool_checks(&model, run, *limit, pool, false)?,
            Metric::ReidRank1 => reid_checks(&model, run, *limit)?,
        };
        outcome.checks.extend(checks);
    }
    Ok(outcome)
}

fn audits_present(run: &RunFile) -> String {
    let keys: Vec<&str> = run.runs.iter().map(|r| r.key.as_str()).collect();
    if keys.is_empty() {
        "none".to_string()
    } else {
        keys.join(", ")
    }
}

fn scope_pool(pool: Pool) -> String {
    match pool {
        Pool::Size(n) => format!("N={}", fmt::count(n as f64)),
        Pool::Full => "full database".to_string(),
    }
}

fn pool_checks(
    model: &ReportModel,
    run: &RunFile,
    limit: Limit,
    pool: Pool,
    lift: bool,
) -> Result<Vec<Check>> {
    let flag = limit.flag();
    if model.relink.is_empty() {
        return Err(Error::config(format!(
            "{flag}: this run has no relink audit to check (audits present: {})",
            audits_present(run)
        )));
    }
    let metric = if lift { "lift_at_1" } else { "recall_at_1" };
    let mut checks = Vec::new();
    let mut matched = false;
    for r in &model.relink {
        match pool {
            Pool::Size(n) => {
                for p in r.pools.iter().filter(|p| p.pool_size == n) {
                    matched = true;
                    let value = if lift { p.lift_at_1 } else { p.recall_at_1.map(|f| f.value) };
                    let scope = format!("{} pool, {}", p.kind.replace('_', "-"), scope_pool(pool));
                    let value = value.ok_or_else(|| {
                        Error::config(format!("{flag}: {} has no {metric} for its {scope}", r.name))
                    })?;
                    checks.push(Check { audit: r.name.clone(), metric, scope, value, limit });
                }
            }
            Pool::Full => {
                if let Some(f) = &r.full {
                    matched = true;
                    let value = if lift { f.lift_at_1 } else { f.recall_at_1.map(|f| f.value) };
                    let value = value.ok_or_else(|| {
                        Error::config(format!("{flag}: {} has no {metric} for the full database", r.name))
                    })?;
                    checks.push(Check {
                        audit: r.name.clone(),
                        metric,
                        scope: scope_pool(pool),
                        value,
                        limit,
                    });
                }
            }
        }
        if let Some(attacks) = &r.attacks {
            let before = checks.len();
            attack_checks(&mut checks, &r.name, attacks, Some(pool), lift, limit);
            matched |= checks.len() > before;
        }
    }
    if !matched {
        return Err(Error::config(format!(
            "{flag}: no relink audit in this run has a pool of {}; pools present: {}",
            scope_pool(pool),
            pools_present(&model.relink)
        )));
    }
    Ok(checks)
}

fn attack_checks(
    checks: &mut Vec<Check>,
    audit: &str,
    attacks: &Attacks,
    pool: Option<Pool>,
    lift: bool,
    limit: Limit,
) {
    for a in &attacks.attacks {
        let at = a.pool_size.map_or(Pool::Full, Pool::Size);
        if pool.is_some_and(|p| p != at) {
            continue;
        }
        let value = if lift { a.lift_at_1 } else { a.recall_at_1.map(|f| f.value) };
        let Some(value) = value else { continue };
        let mut scope = format!("attack {}", a.name);
        if let Some(m) = a.leaked_pairs {
            scope.push_str(&format!(", {} leaked pairs", fmt::count(m)));
        }
        if pool.is_some() {
            scope.push_str(&format!(", {}", scope_pool(at)));
        }
        let metric = if lift { "lift_at_1" } else { "recall_at_1" };
        checks.push(Check { audit: audit.to_string(), metric, scope, value, limit });
    }
}

/// Pool sizes any relink audit has, ascending, `full` last: `10, 100, 1,000, full`.
fn pools_present(relinks: &[Relink]) -> String {
    let mut sizes: Vec<u64> = relinks.iter().flat_map(|r| r.pools.iter().map(|p| p.pool_size)).collect();
    sizes.extend(
        relinks
            .iter()
            .filter_map(|r| r.attacks.as_ref())
            .flat_map(|a| a.attacks.iter().filter_map(|a| a.pool_size)),
    );
    sizes.sort_unstable();
    sizes.dedup();
    let mut names: Vec<String> = sizes.iter().map(|&n| n.to_string()).collect();
    if relinks.iter().any(|r| r.full.is_some()) {
        names.push("full".to_string());
    }
    if names.is_empty() {
        "none".to_string()
    } else {
        names.join(", ")
    }
}

fn reid_checks(model: &ReportModel, run: &RunFile, limit: Limit) -> Result<Vec<Check>> {
    let flag = limit.flag();
    if model.reid.is_empty() {
        return Err(Error::config(format!(
            "{flag}: this run has no reid audit to check (audits present: {})",
            audits_present(run)
        )));
    }
    let mut checks = Vec::new();
    for r in &model.reid {
        let rank_1 = r
            .rank_1
            .ok_or_else(|| Error::config(format!("{flag}: the reid audit {} has no rank_1", r.name)))?;
        let scope = match &r.attacker {
            Some(a) => format!("{} view, attacker {a}", r.view),
            None => format!("{} view, nearest neighbour", r.view),
        };
        checks.push(Check { audit: r.name.clone(), metric: "rank_1", scope, value: rank_1.value, limit });
        if let Some(attacks) = &r.attacks {
            attack_checks(&mut checks, &r.name, attacks, None, false, limit);
        }
    }
    Ok(checks)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::run::RunEntry;
    use serde_json::json;

    fn run(audits: Vec<serde_json::Value>) -> RunFile {
        RunFile {
            linkrisk_version: "0".into(),
            created_unix: 0,
            updated_unix: 0,
            runs: audits
                .into_iter()
                .map(|audit| RunEntry {
                    key: crate::report::run::entry_key(&audit, None).unwrap(),
                    label: None,
                    command: vec![],
                    seed: None,
                    started_unix: 0,
                    seconds: 0.0,
                    linkrisk_version: "0".into(),
                    audit,
                })
                .collect(),
            cohort: None,
            extra: Default::default(),
        }
    }

    fn relink() -> serde_json::Value {
        json!({"audit": "relink", "query_view": "image", "gallery_view": "report",
               "full": {"recall_at_1": 0.001, "lift_at_1": 43.0},
               "pools": [{"pool_size": 100, "kind": "random", "recall_at_1": 0.15, "lift_at_1": 15.0},
                         {"pool_size": 100, "kind": "pathology_matched", "recall_at_1": 0.09, "lift_at_1": 9.0}],
               "strongest_attack": "csls",
               "attacks": [{"name": "csls", "pool_size": 100, "recall_at_1": 0.2, "lift_at_1": 20.0},
                           {"name": "assignment", "recall_at_1": 0.004}]})
    }

    #[test]
    fn parses_pool_thresholds_and_rejects_bad_ones() {
        let l = Limit::parse_pool("--max-lift", "10000=20", Metric::Lift).unwrap();
        assert_eq!(l, Limit { metric: Metric::Lift(Pool::Size(10_000)), max: 20.0 });
        assert_eq!(l.flag(), "--max-lift 10000=20");
        let f = Limit::parse_pool("--max-recall-at-1", "full=0.01", Metric::RecallAt1).unwrap();
        assert_eq!(f.metric, Metric::RecallAt1(Pool::Full));
        assert_eq!(
            Limit::parse_pool("--max-lift", "10,000=2", Metric::Lift).unwrap().metric,
            Metric::Lift(Pool::Size(10_000))
        );
        for bad in ["10000", "x=1", "1=2", "100=-1", "100=nan", "100=inf"] {
            let err = Limit::parse_pool("--max-lift", bad, Metric::Lift).unwrap_err().to_string();
            assert!(err.contains("--max-lift"), "{bad}: {err}");
        }
        assert!(Limit::reid_rank1("0.3").is_ok());
        assert!(Limit::reid_rank1("-0.3").is_err());
    }

    #[test]
    fn checks_every_pool_kind_and_matching_attacks() {
        let run = run(vec![relink()]);
        let limit = Limit::parse_pool("--max-lift", "100=12", Metric::Lift).unwrap();
        let outcome = evaluate(&run, &[limit]).unwrap();
        let values: Vec<(String, f64, bool)> =
            outcome.checks.iter().map(|c| (c.scope.clone(), c.value, c.violated())).collect();
        assert_eq!(
            values,
            vec![
                ("random pool, N=100".to_string(), 15.0, true),
                ("pathology-matched pool, N=100".to_string(), 9.0, false),
                ("attack csls, N=100".to_string(), 20.0, true),
            ]
        );
        assert!(!outcome.passed());
        let line = outcome.violations().next().unwrap().describe();
        assert_eq!(
            line,
            "relink:image->report: lift_at_1 (random pool, N=100) = 15 > 12 [--max-lift 100=12]"
        );
        // Threshold equal to the figure passes.
        let eq = Limit::parse_pool("--max-lift", "100=20", Metric::Lift).unwrap();
        assert!(evaluate(&run, &[eq]).unwrap().passed());
    }

    #[test]
    fn full_pool_includes_attack_rows_without_pool_size() {
        let run = run(vec![relink()]);
        let limit = Limit::parse_pool("--max-recall-at-1", "full=0.002", Metric::RecallAt1).unwrap();
        let outcome = evaluate(&run, &[limit]).unwrap();
        let scopes: Vec<_> = outcome.checks.iter().map(|c| (c.scope.as_str(), c.violated())).collect();
        assert_eq!(scopes, vec![("full database", false), ("attack assignment, full database", true)]);
    }

    #[test]
    fn missing_pools_and_audits_are_errors_that_list_what_exists() {
        let run1 = run(vec![relink()]);
        let err = evaluate(&run1, &[Limit::parse_pool("--max-lift", "10000=5", Metric::Lift).unwrap()])
            .unwrap_err();
        assert!(err.to_string().contains("pools present: 100, full"), "{err}");
        let err = evaluate(&run1, &[Limit::reid_rank1("0.5").unwrap()]).unwrap_err().to_string();
        assert!(err.contains("no reid audit") && err.contains("relink:image->report"), "{err}");
        let run2 = run(vec![json!({"audit": "reid", "view": "image", "rank_1": 0.3})]);
        let err =
            evaluate(&run2, &[Limit::parse_pool("--max-lift", "100=5", Metric::Lift).unwrap()]).unwrap_err();
        assert!(err.to_string().contains("no relink audit"), "{err}");
        assert!(evaluate(&run2, &[]).is_err());
        let run3 = run(vec![json!({"audit": "relink", "query_view": "image", "gallery_view": "report",
                                   "pools": [{"pool_size": 100, "kind": "random", "recall_at_1": 0.1}]})]);
        let err =
            evaluate(&run3, &[Limit::parse_pool("--max-lift", "100=5", Metric::Lift).unwrap()]).unwrap_err();
        assert!(err.to_string().contains("has no lift_at_1"), "{err}");
    }

    #[test]
    fn reid_checks_plain_and_trained_attackers() {
        let run = run(vec![
            json!({"audit": "reid", "view": "image", "rank_1": 0.259}),
            json!({"audit": "reid", "view": "image", "attacker": "linear-metric", "rank_1": 0.637}),
        ]);
        let outcome = evaluate(&run, &[Limit::reid_rank1("0.5").unwrap()]).unwrap();
        let v: Vec<_> = outcome.checks.iter().map(|c| (c.audit.as_str(), c.violated())).collect();
        assert_eq!(v, vec![("reid:image", false), ("reid:image+linear-metric", true)]);
    }
}
