//! What the report shows, read out of `run.json`'s audit JSON. The audits' JSON is the
//! interface (keys named in docs/REPORTS.md), so this module never touches the audits' Rust
//! types: it picks the aggregate figures it knows by key, copies the numbers unchanged (every
//! number rendered comes from here, none is recomputed), and ignores everything else —
//! unknown keys and per-record data alike. Missing keys leave a figure out; they are not
//! errors.
//!
//! Numbers may be given as a plain number with a `ci95_<key>: [low, high]` sibling (the
//! audits' convention) or as an `Estimate` object `{"value", "ci_low", "ci_high"}`.

use serde_json::{Map, Value};

use super::run::{RunEntry, RunFile};

/// A figure with its optional 95% interval, both copied from the JSON.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Figure {
    /// The point value.
    pub value: f64,
    /// `[low, high]`, when the audit reported one.
    pub ci95: Option<[f64; 2]>,
}

/// The candidate pool a figure refers to.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Pool {
    /// A pool of `N` candidates (the true match and N-1 negatives).
    Size(u64),
    /// The full database (every gallery item).
    Full,
}

/// One pool row of a re-linkage audit.
#[derive(Debug, Clone, PartialEq)]
pub struct RelinkPool {
    /// Pool size N.
    pub pool_size: u64,
    /// `random` or `pathology_matched` (as written by the audit).
    pub kind: String,
    /// Number of seeded trials.
    pub trials: Option<f64>,
    /// Recall@1 with its interval.
    pub recall_at_1: Option<Figure>,
    /// Chance level 1/N as reported.
    pub chance_at_1: Option<f64>,
    /// Recall@1 / chance as reported.
    pub lift_at_1: Option<f64>,
    /// Exact (hypergeometric) expectation of Recall@1 for a random pool of this size.
    pub expected_recall_at_1: Option<f64>,
}

/// Full-database figures of a re-linkage audit.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RelinkFull {
    /// Recall@1 with its interval.
    pub recall_at_1: Option<Figure>,
    /// Recall@5.
    pub recall_at_5: Option<f64>,
    /// Recall@10.
    pub recall_at_10: Option<f64>,
    /// Mean reciprocal rank.
    pub mrr: Option<f64>,
    /// Median rank of the true match.
    pub median_rank: Option<f64>,
    /// Chance level 1/n_gallery.
    pub chance_at_1: Option<f64>,
    /// Recall@1 / chance.
    pub lift_at_1: Option<f64>,
}

/// One attack of the attack comparison (issue 8).
#[derive(Debug, Clone, PartialEq)]
pub struct Attack {
    /// Attack name (`cosine`, `csls`, `inverted_softmax`, `assignment`, `procrustes`, ...).
    pub name: String,
    /// Pool size the figure refers to; `None` means the full database.
    pub pool_size: Option<u64>,
    /// Number of leaked pairs (alignment attacks).
    pub leaked_pairs: Option<f64>,
    /// Recall@1 (for re-ID: Rank-1) of the attack.
    pub recall_at_1: Option<Figure>,
    /// The same attack on the control set.
    pub control_recall_at_1: Option<f64>,
    /// (attack - control) / (1 - control).
    pub normalized_risk: Option<Figure>,
    /// Chance level at this pool.
    pub chance_at_1: Option<f64>,
    /// Recall@1 / chance.
    pub lift_at_1: Option<f64>,
}

/// The attack comparison attached to a relink or re-ID audit.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Attacks {
    /// `strongest_attack`: the name of the attack the audit found strongest.
    pub strongest: Option<String>,
    /// `strongest_attack_leaked_pairs`: which of an alignment attack's rows (one per number
    /// of leaked pairs) is the strongest.
    pub strongest_leaked_pairs: Option<f64>,
    /// Every attack row.
    pub attacks: Vec<Attack>,
}

/// A cross-modal re-linkage audit (issue 4).
#[derive(Debug, Clone, PartialEq)]
pub struct Relink {
    /// The run entry's label or key, naming this measurement in tables and legends.
    pub name: String,
    /// Query view (e.g. `image`).
    pub query_view: String,
    /// Gallery view (e.g. `report`).
    pub gallery_view: String,
    /// Split audited, if the audit says.
    pub split: Option<String>,
    /// Number of queries.
    pub n_queries: Option<f64>,
    /// Number of gallery items.
    pub n_gallery: Option<f64>,
    /// Full-database figures.
    pub full: Option<RelinkFull>,
    /// Pool rows in the audit's order.
    pub pools: Vec<RelinkPool>,
    /// Attack comparison, if present.
    pub attacks: Option<Attacks>,
}

/// A patient re-identification audit (issue 5).
#[derive(Debug, Clone, PartialEq)]
pub struct Reid {
    /// The run entry's label or key.
    pub name: String,
    /// View audited.
    pub view: String,
    /// Trained attacker (e.g. `linear-metric`), if this is not plain nearest neighbour.
    pub attacker: Option<String>,
    /// Number of queries.
    pub n_queries: Option<f64>,
    /// Gallery size.
    pub n_gallery: Option<f64>,
    /// Rank-1 re-identification rate.
    pub rank_1: Option<Figure>,
    /// CMC curve: (rank, identification rate), sorted by rank.
    pub cmc: Vec<(u64, Figure)>,
    /// Mean average precision.
    pub map: Option<Figure>,
    /// Same/different-patient verification AUROC.
    pub verification_auroc: Option<Figure>,
    /// Verification ROC curve points (false positive rate, true positive rate).
    pub roc: Vec<(f64, f64)>,
    /// Attack comparison, if present.
    pub attacks: Option<Attacks>,
}

/// One attribute of the attribute-inference audit.
#[derive(Debug, Clone, PartialEq)]
pub struct AttributeTarget {
    /// `sex`, `age`, `race`, ...
    pub name: String,
    /// AUROC over all test records.
    pub auroc: Option<Figure>,
    /// AUROC on re-identified records.
    pub auroc_reidentified: Option<Figure>,
    /// AUROC on records not re-identified.
    pub auroc_not_reidentified: Option<Figure>,
    /// DeLong p-value of the difference.
    pub p_value: Option<f64>,
    /// ROC curve points, if the audit wrote them.
    pub roc: Vec<(f64, f64)>,
}

/// An attribute-inference audit (issue 5).
#[derive(Debug, Clone, PartialEq)]
pub struct Attributes {
    /// The run entry's label or key.
    pub name: String,
    /// View probed.
    pub view: String,
    /// One row per attribute.
    pub targets: Vec<AttributeTarget>,
}

/// A utility audit: linear-probe macro AUROC over the findings (issue 5).
#[derive(Debug, Clone, PartialEq)]
pub struct Utility {
    /// The run entry's label or key.
    pub name: String,
    /// View probed.
    pub view: String,
    /// Macro AUROC.
    pub macro_auroc: Option<Figure>,
    /// Per-finding AUROC, in the audit's order.
    pub per_finding: Vec<(String, Figure)>,
}

/// Relink Recall@1 of one cohort (members / held-out / external) at one epsilon.
#[derive(Debug, Clone, PartialEq)]
pub struct MitigateCohort {
    /// Cohort name as written (`members`, `held_out`, `external`, ...).
    pub cohort: String,
    /// Its relink figures (pools and full).
    pub relink: Relink,
    /// Relative Recall@1 reduction vs the non-private heads, if reported.
    pub relative_reduction: Option<f64>,
}

/// The privacy budget of one mitigation point.
#[derive(Debug, Clone, PartialEq)]
pub enum Epsilon {
    /// A finite epsilon.
    Finite(f64),
    /// Non-private heads (`null`, `"inf"` or `"non-private"` in the JSON).
    Infinite,
}

/// One point of the privacy-utility frontier.
#[derive(Debug, Clone, PartialEq)]
pub struct MitigatePoint {
    /// Epsilon of the heads.
    pub epsilon: Epsilon,
    /// Delta, if reported.
    pub delta: Option<f64>,
    /// Relink per evaluated cohort.
    pub cohorts: Vec<MitigateCohort>,
    /// Utility macro AUROC of the heads' image embeddings (held-out records).
    pub utility_macro_auroc: Option<Figure>,
    /// The same on the external cohort, if reported (`utility.external_macro_auroc`).
    pub utility_external_macro_auroc: Option<Figure>,
}

impl MitigatePoint {
    /// The utility figure that belongs beside `cohort`'s re-linkage: the external one for
    /// the external cohort when reported, else the held-out one.
    pub fn utility_for(&self, cohort: &str) -> Option<Figure> {
        match cohort {
            "external" => self.utility_external_macro_auroc.or(self.utility_macro_auroc),
            _ => self.utility_macro_auroc,
        }
    }
}

/// A mitigation sweep (issue 6).
#[derive(Debug, Clone, PartialEq)]
pub struct Mitigate {
    /// The run entry's label or key.
    pub name: String,
    /// Points in the audit's order.
    pub points: Vec<MitigatePoint>,
}

/// Provenance of one run entry.
#[derive(Debug, Clone, PartialEq)]
pub struct RunInfo {
    /// Entry key.
    pub key: String,
    /// Command line.
    pub command: Vec<String>,
    /// Seed.
    pub seed: Option<u64>,
    /// Start (Unix seconds).
    pub started_unix: u64,
    /// Wall seconds.
    pub seconds: f64,
}

/// Cohort summary figures.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct CohortInfo {
    /// Synthetic cohort?
    pub synthetic: Option<bool>,
    /// Records.
    pub n_records: Option<f64>,
    /// Patients.
    pub n_patients: Option<f64>,
    /// Studies.
    pub n_studies: Option<f64>,
    /// (split, records).
    pub splits: Vec<(String, f64)>,
    /// (view, n, dim).
    pub views: Vec<(String, Option<f64>, Option<f64>)>,
    /// Findings present?
    pub has_findings: Option<bool>,
    /// Demographic columns present.
    pub demographics: Vec<String>,
}

/// Everything the renderers show, extracted from one `run.json`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ReportModel {
    /// linkrisk version that created the run.
    pub linkrisk_version: String,
    /// Creation time of the run directory.
    pub created_unix: u64,
    /// Cohort summary.
    pub cohort: Option<CohortInfo>,
    /// Re-linkage audits (standalone `attacks` audits are folded in as relink entries).
    pub relink: Vec<Relink>,
    /// Re-ID audits.
    pub reid: Vec<Reid>,
    /// Attribute audits.
    pub attributes: Vec<Attributes>,
    /// Utility audits.
    pub utility: Vec<Utility>,
    /// Mitigation sweeps.
    pub mitigate: Vec<Mitigate>,
    /// Provenance of every entry (including audit kinds the report does not know).
    pub runs: Vec<RunInfo>,
}

impl ReportModel {
    /// Read the report's figures out of a run file.
    pub fn from_run(run: &RunFile) -> ReportModel {
        let mut model = ReportModel {
            linkrisk_version: run.linkrisk_version.clone(),
            created_unix: run.created_unix,
            cohort: run.cohort.as_ref().and_then(Value::as_object).map(cohort_info),
            ..ReportModel::default()
        };
        for entry in &run.runs {
            model.runs.push(RunInfo {
                key: entry.key.clone(),
                command: entry.command.clone(),
                seed: entry.seed,
                started_unix: entry.started_unix,
                seconds: entry.seconds,
            });
            let Some(audit) = entry.audit.as_object() else { continue };
            let name = entry_name(entry);
            match audit.get("audit").and_then(Value::as_str).unwrap_or_default() {
                "relink" | "attacks" => model.relink.push(relink(audit, name)),
                "reid" => model.reid.extend(reid_entries(audit, name)),
                "attributes" => model.attributes.push(attributes(audit, name)),
                "utility" => model.utility.push(utility(audit, name)),
                "mitigate" => model.mitigate.push(mitigate(audit, name)),
                _ => {}
            }
        }
        model
    }

    /// Whether the report has any audit section at all.
    pub fn has_audits(&self) -> bool {
        !(self.relink.is_empty()
            && self.reid.is_empty()
            && self.attributes.is_empty()
            && self.utility.is_empty()
            && self.mitigate.is_empty())
    }
}

impl Relink {
    /// Every pool size that has a figure, ascending, with `Full` last when present.
    pub fn pool_sizes(&self) -> Vec<Pool> {
        let mut sizes: Vec<u64> = self.pools.iter().map(|p| p.pool_size).collect();
        sizes.sort_unstable();
        sizes.dedup();
        let mut pools: Vec<Pool> = sizes.into_iter().map(Pool::Size).collect();
        if self.full.is_some() {
            pools.push(Pool::Full);
        }
        pools
    }

    /// The random pool of size `n`, if measured.
    pub fn random_pool(&self, n: u64) -> Option<&RelinkPool> {
        self.pools.iter().find(|p| p.pool_size == n && p.kind == "random")
    }

    /// Human name of the direction, `image → report`.
    pub fn direction(&self) -> String {
        format!("{} → {}", self.query_view, self.gallery_view)
    }
}

fn entry_name(entry: &RunEntry) -> String {
    match &entry.label {
        Some(label) => label.clone(),
        None if !entry.key.is_empty() => entry.key.clone(),
        None => entry.audit.get("audit").and_then(Value::as_str).unwrap_or("audit").to_string(),
    }
}

type Obj = Map<String, Value>;

fn num(obj: &Obj, key: &str) -> Option<f64> {
    match obj.get(key)? {
        Value::Number(n) => n.as_f64().filter(|v| v.is_finite()),
        Value::Object(o) => num(o, "value"),
        _ => None,
    }
}

fn text(obj: &Obj, key: &str) -> Option<String> {
    obj.get(key).and_then(Value::as_str).map(str::to_string)
}

fn pair(value: &Value) -> Option<[f64; 2]> {
    let arr = value.as_array()?;
    match arr.as_slice() {
        [lo, hi] => Some([lo.as_f64()?, hi.as_f64()?]).filter(|p| p[0].is_finite() && p[1].is_finite()),
        _ => None,
    }
}

/// `key` as a figure: a number with a `ci95_<key>` sibling, or an Estimate object.
fn figure(obj: &Obj, key: &str) -> Option<Figure> {
    match obj.get(key)? {
        Value::Number(n) => {
            let value = n.as_f64().filter(|v| v.is_finite())?;
            let ci95 = obj.get(&format!("ci95_{key}")).and_then(pair);
            Some(Figure { value, ci95 })
        }
        Value::Object(o) => estimate(o),
        _ => None,
    }
}

/// An Estimate object `{"value", "ci_low", "ci_high"}` or `{"value", "ci95": [lo, hi]}`, or a
/// plain number.
fn estimate(o: &Obj) -> Option<Figure> {
    let value = num(o, "value")?;
    let ci95 = match (num(o, "ci_low"), num(o, "ci_high")) {
        (Some(lo), Some(hi)) => Some([lo, hi]),
        _ => o.get("ci95").and_then(pair),
    };
    Some(Figure { value, ci95 })
}

fn figure_value(v: &Value) -> Option<Figure> {
    match v {
        Value::Number(n) => n.as_f64().filter(|x| x.is_finite()).map(|value| Figure { value, ci95: None }),
        Value::Object(o) => estimate(o).or_else(|| figure(o, "auroc")),
        _ => None,
    }
}

fn count(obj: &Obj, key: &str) -> Option<u64> {
    let v = num(obj, key)?;
    (v >= 0.0 && v.fract() == 0.0).then_some(v as u64)
}

fn relink(audit: &Obj, name: String) -> Relink {
    let full = audit.get("full").and_then(Value::as_object).map(|f| RelinkFull {
        recall_at_1: figure(f, "recall_at_1"),
        recall_at_5: num(f, "recall_at_5"),
        recall_at_10: num(f, "recall_at_10"),
        mrr: num(f, "mrr"),
        median_rank: num(f, "median_rank"),
        chance_at_1: num(f, "chance_at_1"),
        lift_at_1: num(f, "lift_at_1"),
    });
    let pools = audit
        .get("pools")
        .and_then(Value::as_array)
        .map(|pools| {
            pools
                .iter()
                .filter_map(Value::as_object)
                .filter_map(|p| {
                    Some(RelinkPool {
                        pool_size: count(p, "pool_size")?,
                        kind: text(p, "kind").unwrap_or_else(|| "random".to_string()),
                        trials: num(p, "trials"),
                        recall_at_1: figure(p, "recall_at_1"),
                        chance_at_1: num(p, "chance_at_1"),
                        lift_at_1: num(p, "lift_at_1"),
                        expected_recall_at_1: num(p, "expected_recall_at_1"),
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    Relink {
        name,
        query_view: text(audit, "query_view").unwrap_or_else(|| "query".to_string()),
        gallery_view: text(audit, "gallery_view").unwrap_or_else(|| "gallery".to_string()),
        split: text(audit, "split"),
        n_queries: num(audit, "n_queries"),
        n_gallery: num(audit, "n_gallery"),
        full,
        pools,
        attacks: attacks(audit),
    }
}

fn attacks(audit: &Obj) -> Option<Attacks> {
    let list = audit.get("attacks")?.as_array()?;
    let attacks = list
        .iter()
        .filter_map(Value::as_object)
        .filter_map(|a| {
            Some(Attack {
                name: text(a, "name")?,
                pool_size: count(a, "pool_size"),
                leaked_pairs: num(a, "leaked_pairs"),
                recall_at_1: figure(a, "recall_at_1"),
                control_recall_at_1: num(a, "control_recall_at_1"),
                normalized_risk: figure(a, "normalized_risk"),
                chance_at_1: num(a, "chance_at_1"),
                lift_at_1: num(a, "lift_at_1"),
            })
        })
        .collect();
    Some(Attacks {
        strongest: text(audit, "strongest_attack"),
        strongest_leaked_pairs: num(audit, "strongest_attack_leaked_pairs"),
        attacks,
    })
}

/// ROC points from `{"fpr": [...], "tpr": [...]}`, `[{"fpr", "tpr"}, ...]` or `[[fpr, tpr], ...]`.
fn roc(value: Option<&Value>) -> Vec<(f64, f64)> {
    let Some(value) = value else { return Vec::new() };
    let points: Vec<(f64, f64)> = match value {
        Value::Object(o) => {
            let get = |k: &str| o.get(k).and_then(Value::as_array).cloned().unwrap_or_default();
            get("fpr")
                .iter()
                .zip(get("tpr").iter())
                .filter_map(|(f, t)| Some((f.as_f64()?, t.as_f64()?)))
                .collect()
        }
        Value::Array(items) => items
            .iter()
            .filter_map(|item| match item {
                Value::Object(o) => Some((num(o, "fpr")?, num(o, "tpr")?)),
                Value::Array(_) => pair(item).map(|p| (p[0], p[1])),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    };
    points.into_iter().filter(|(f, t)| (0.0..=1.0).contains(f) && (0.0..=1.0).contains(t)).collect()
}

fn first_roc(obj: &Obj, keys: &[&str]) -> Vec<(f64, f64)> {
    keys.iter().map(|k| roc(obj.get(*k))).find(|r| !r.is_empty()).unwrap_or_default()
}

/// The re-ID measurements of one audit entry: one per attacker. A `linkrisk reid` report
/// carries the headline attacker's figures at its top level and every attacker under
/// `attackers` (each with its `attacker` name and figures); a report with several attackers
/// becomes one column each (named `NAME/ATTACKER`), one with at most one is read from the
/// top level.
fn reid_entries(audit: &Obj, name: String) -> Vec<Reid> {
    let listed: Vec<&Obj> = audit
        .get("attackers")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_object).collect())
        .unwrap_or_default();
    if listed.len() < 2 {
        return vec![reid(audit, name)];
    }
    listed
        .into_iter()
        .map(|attacker| {
            // The attacker's figures over the audit's shared fields (view, split, ...).
            let mut merged = audit.clone();
            merged.remove("attackers");
            for (k, v) in attacker {
                merged.insert(k.clone(), v.clone());
            }
            let label = text(attacker, "attacker").unwrap_or_else(|| "attacker".to_string());
            reid(&merged, format!("{name}/{label}"))
        })
        .collect()
}

fn reid(audit: &Obj, name: String) -> Reid {
    let ci_cmc = audit.get("ci95_cmc").and_then(Value::as_object);
    let mut cmc: Vec<(u64, Figure)> = audit
        .get("cmc")
        .and_then(Value::as_object)
        .map(|cmc| {
            cmc.iter()
                .filter_map(|(rank, v)| {
                    let rank: u64 = rank.parse().ok()?;
                    let mut fig = figure_value(v)?;
                    if fig.ci95.is_none() {
                        fig.ci95 = ci_cmc.and_then(|c| c.get(&rank.to_string())).and_then(pair);
                    }
                    Some((rank, fig))
                })
                .collect()
        })
        .unwrap_or_default();
    cmc.sort_by_key(|(rank, _)| *rank);
    Reid {
        name,
        view: text(audit, "view").unwrap_or_else(|| "image".to_string()),
        // Plain nearest neighbour is the untrained baseline, shown without an attacker name.
        attacker: text(audit, "attacker").filter(|a| a != "nearest-neighbour" && a != "none"),
        n_queries: num(audit, "n_queries"),
        n_gallery: num(audit, "n_gallery"),
        rank_1: figure(audit, "rank_1"),
        cmc,
        map: figure(audit, "map"),
        verification_auroc: figure(audit, "verification_auroc"),
        roc: first_roc(audit, &["verification_roc", "roc"]),
        attacks: attacks(audit),
    }
}

fn attribute_target(name: String, target: &Obj) -> AttributeTarget {
    // The attributes audit nests the re-identification strata under `stratified`
    // (`reidentified`, `not_reidentified`, `difference.p_value`); flat keys are read too.
    let o = target.get("stratified").and_then(Value::as_object).unwrap_or(target);
    let stratum = |keys: &[&str]| -> Option<Figure> {
        keys.iter().find_map(|k| match o.get(*k)? {
            Value::Object(s) => figure(s, "auroc").or_else(|| estimate(s)),
            Value::Number(_) => figure(o, k),
            _ => None,
        })
    };
    let difference_p = o.get("difference").and_then(Value::as_object).and_then(|d| num(d, "p_value"));
    AttributeTarget {
        name,
        auroc: figure(target, "auroc"),
        auroc_reidentified: stratum(&["reidentified", "auroc_reidentified"]),
        auroc_not_reidentified: stratum(&["not_reidentified", "auroc_not_reidentified"]),
        p_value: difference_p.or_else(|| {
            ["p_value_difference", "delong_p_value", "p_value"].iter().find_map(|k| num(target, k))
        }),
        roc: first_roc(target, &["roc"]),
    }
}

fn attributes(audit: &Obj, name: String) -> Attributes {
    let list = audit.get("targets").or_else(|| audit.get("attributes"));
    let targets = match list {
        Some(Value::Object(map)) => {
            map.iter().filter_map(|(k, v)| v.as_object().map(|o| attribute_target(k.clone(), o))).collect()
        }
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(Value::as_object)
            .filter_map(|o| {
                let name = ["name", "target", "attribute"].iter().find_map(|k| text(o, k))?;
                Some(attribute_target(name, o))
            })
            .collect(),
        _ => Vec::new(),
    };
    Attributes { name, view: text(audit, "view").unwrap_or_else(|| "image".to_string()), targets }
}

fn utility(audit: &Obj, name: String) -> Utility {
    let per_finding = audit
        .get("per_finding")
        .and_then(Value::as_object)
        .map(|m| m.iter().filter_map(|(k, v)| Some((k.clone(), figure_value(v)?))).collect())
        .unwrap_or_default();
    Utility {
        name,
        view: text(audit, "view").unwrap_or_else(|| "image".to_string()),
        macro_auroc: figure(audit, "macro_auroc"),
        per_finding,
    }
}

fn epsilon(point: &Obj) -> Epsilon {
    match point.get("epsilon") {
        Some(Value::Number(n)) => {
            n.as_f64().filter(|e| e.is_finite()).map_or(Epsilon::Infinite, Epsilon::Finite)
        }
        _ => Epsilon::Infinite,
    }
}

fn mitigate(audit: &Obj, name: String) -> Mitigate {
    let points = audit
        .get("points")
        .and_then(Value::as_array)
        .map(|points| {
            points
                .iter()
                .filter_map(Value::as_object)
                .map(|p| {
                    let cohorts = match p.get("relink") {
                        Some(Value::Object(by_cohort)) if !by_cohort.contains_key("pools") => by_cohort
                            .iter()
                            .filter_map(|(cohort, r)| Some(mitigate_cohort(cohort.clone(), r.as_object()?)))
                            .collect(),
                        Some(Value::Object(single)) => vec![mitigate_cohort("held_out".to_string(), single)],
                        Some(Value::Array(items)) => items
                            .iter()
                            .filter_map(Value::as_object)
                            .filter_map(|r| {
                                let cohort = ["cohort", "split"].iter().find_map(|k| text(r, k))?;
                                Some(mitigate_cohort(cohort, r))
                            })
                            .collect(),
                        _ => Vec::new(),
                    };
                    let utility_macro_auroc = match p.get("utility") {
                        Some(Value::Object(u)) => figure(u, "macro_auroc"),
                        Some(v @ Value::Number(_)) => figure_value(v),
                        _ => None,
                    };
                    let utility_external_macro_auroc = match p.get("utility") {
                        Some(Value::Object(u)) => figure(u, "external_macro_auroc"),
                        _ => None,
                    };
                    MitigatePoint {
                        epsilon: epsilon(p),
                        delta: num(p, "delta"),
                        cohorts,
                        utility_macro_auroc,
                        utility_external_macro_auroc,
                    }
                })
                .collect()
        })
        .unwrap_or_default();
    Mitigate { name, points }
}

fn mitigate_cohort(cohort: String, r: &Obj) -> MitigateCohort {
    MitigateCohort {
        relative_reduction: ["relative_reduction", "relative_reduction_recall_at_1"]
            .iter()
            .find_map(|k| num(r, k)),
        relink: relink(r, cohort.clone()),
        cohort,
    }
}

fn cohort_info(c: &Obj) -> CohortInfo {
    let flag = |k: &str| c.get(k).and_then(Value::as_bool);
    CohortInfo {
        synthetic: flag("synthetic"),
        n_records: num(c, "n_records"),
        n_patients: num(c, "n_patients"),
        n_studies: num(c, "n_studies"),
        splits: c
            .get("splits")
            .and_then(Value::as_array)
            .map(|s| {
                s.iter()
                    .filter_map(Value::as_object)
                    .filter_map(|s| Some((text(s, "name")?, num(s, "n_records")?)))
                    .collect()
            })
            .unwrap_or_default(),
        views: c
            .get("views")
            .and_then(Value::as_array)
            .map(|v| {
                v.iter()
                    .filter_map(Value::as_object)
                    .filter_map(|v| Some((text(v, "name")?, num(v, "n"), num(v, "dim"))))
                    .collect()
            })
            .unwrap_or_default(),
        has_findings: flag("has_findings"),
        demographics: c
            .get("demographics")
            .and_then(Value::as_array)
            .map(|d| d.iter().filter_map(Value::as_str).map(str::to_string).collect())
            .unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Obj {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn figures_read_plain_numbers_with_ci_and_estimate_objects() {
        let o = obj(json!({
            "rank_1": 0.25, "ci95_rank_1": [0.2, 0.3],
            "map": {"value": 0.4, "ci_low": 0.35, "ci_high": 0.45, "level": 0.95, "method": "bootstrap"},
            "bad": "x", "nan_like": null
        }));
        assert_eq!(figure(&o, "rank_1"), Some(Figure { value: 0.25, ci95: Some([0.2, 0.3]) }));
        assert_eq!(figure(&o, "map"), Some(Figure { value: 0.4, ci95: Some([0.35, 0.45]) }));
        assert_eq!(figure(&o, "bad"), None);
        assert_eq!(figure(&o, "nan_like"), None);
        assert_eq!(figure(&o, "missing"), None);
    }

    #[test]
    fn roc_accepts_three_shapes_and_drops_out_of_range_points() {
        let a = roc(Some(&json!({"fpr": [0.0, 0.5, 1.0], "tpr": [0.0, 0.8, 1.0]})));
        let b =
            roc(Some(&json!([{"fpr": 0.0, "tpr": 0.0}, {"fpr": 0.5, "tpr": 0.8}, {"fpr": 1.0, "tpr": 1.0}])));
        let c = roc(Some(&json!([[0.0, 0.0], [0.5, 0.8], [1.0, 1.0], [2.0, 0.1]])));
        assert_eq!(a, vec![(0.0, 0.0), (0.5, 0.8), (1.0, 1.0)]);
        assert_eq!(a, b);
        assert_eq!(a, c);
    }

    #[test]
    fn mitigate_reads_cohorts_by_key_and_infinite_epsilon() {
        let m = mitigate(
            &obj(json!({"points": [
                {"epsilon": null, "relink": {"members": {"pools": [{"pool_size": 100, "kind": "random", "recall_at_1": 0.2}]},
                                              "external": {"pools": []}},
                 "utility": {"macro_auroc": 0.8}},
                {"epsilon": 0.34, "relink": {"pools": [{"pool_size": 100, "recall_at_1": 0.1}]}, "utility": 0.79}
            ]})),
            "m".into(),
        );
        assert_eq!(m.points[0].epsilon, Epsilon::Infinite);
        assert_eq!(m.points[0].cohorts.len(), 2);
        let members = m.points[0].cohorts.iter().find(|c| c.cohort == "members").unwrap();
        assert_eq!(members.relink.random_pool(100).unwrap().recall_at_1.unwrap().value, 0.2);
        assert_eq!(m.points[1].epsilon, Epsilon::Finite(0.34));
        assert_eq!(m.points[1].cohorts[0].cohort, "held_out");
        assert_eq!(m.points[1].utility_macro_auroc.unwrap().value, 0.79);
    }
}
