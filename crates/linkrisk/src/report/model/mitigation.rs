//! The mitigation side of the report model: mitigation sweeps (the audited model, warm
//! start, non-private and DP rows per cohort) and empirical privacy audits, read out of
//! their `mitigate` / `privacy_audit` JSON by key, numbers copied unchanged.

use serde_json::Value;

use super::super::read::{count, figure, figure_value, num, relink, text, Obj};
use super::{Figure, Relink};

/// Relink Recall@1 of one cohort (members / held-out / external) at one epsilon.
#[derive(Debug, Clone, PartialEq)]
pub struct MitigateCohort {
    /// Cohort name as written (`members`, `held_out`, `external`, ...).
    pub cohort: String,
    /// Its relink figures (pools and full).
    pub relink: Relink,
    /// Relative Recall@1 reduction vs the non-private heads, if reported.
    pub relative_reduction: Option<f64>,
    /// Relative Recall@1 reduction vs the audited model (negative: links more), if reported.
    pub relative_reduction_vs_audited: Option<f64>,
    /// The pool both reductions are measured at (`reduction_pool_size`; None: not reported
    /// or the full database).
    pub reduction_pool_size: Option<u64>,
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
    /// Held-out utility minus the audited model's (`utility.change_vs_audited`).
    pub utility_change_vs_audited: Option<f64>,
    /// External utility minus the audited model's (`utility.external_change_vs_audited`).
    pub utility_external_change_vs_audited: Option<f64>,
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

    /// The utility change relative to the audited model that belongs beside `cohort`'s row
    /// (as [`MitigatePoint::utility_for`]).
    pub fn utility_change_for(&self, cohort: &str) -> Option<f64> {
        match cohort {
            "external" if self.utility_external_macro_auroc.is_some() => {
                self.utility_external_change_vs_audited
            }
            _ => self.utility_change_vs_audited,
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
    /// The audited model (the cohort's own views on the same records, JSON `baseline`):
    /// the reference of every comparison. Its `epsilon` is meaningless.
    pub audited: Option<MitigatePoint>,
    /// Why the audited model was not evaluated (`baseline_skipped`).
    pub audited_skipped: Option<String>,
    /// The public warm-start heads (JSON `warm_start`). Its `epsilon` is meaningless.
    pub warm_start: Option<MitigatePoint>,
}

fn epsilon(point: &Obj) -> Epsilon {
    match point.get("epsilon") {
        Some(Value::Number(n)) => {
            n.as_f64().filter(|e| e.is_finite()).map_or(Epsilon::Infinite, Epsilon::Finite)
        }
        _ => Epsilon::Infinite,
    }
}

/// An empirical privacy audit: per budget the accountant's epsilon, the one-run lower bound
/// and the membership-inference figures.
#[derive(Debug, Clone, PartialEq)]
pub struct PrivacyAudit {
    /// The model (label) it is about.
    pub name: String,
    /// Canaries randomised.
    pub canaries: Option<u64>,
    /// Shadow heads per budget.
    pub shadows: Option<u64>,
    /// Members and held-out patients scored.
    pub n_members: Option<u64>,
    /// Held-out patients scored.
    pub n_held_out: Option<u64>,
    /// The deliberate fault (positive control), if any.
    pub fault: Option<String>,
    /// One row per budget.
    pub points: Vec<PrivacyAuditPoint>,
}

/// One budget of a privacy audit.
#[derive(Debug, Clone, PartialEq)]
pub struct PrivacyAuditPoint {
    /// The budget.
    pub epsilon: Epsilon,
    /// The accountant's epsilon (upper bound).
    pub accountant_epsilon: Option<f64>,
    /// The one-run 95% lower bound on epsilon.
    pub lower_bound: Option<f64>,
    /// Correct guesses and guesses at the bound's guess count.
    pub guesses: Option<(u64, u64)>,
    /// Membership AUROC of the loss attack and of offline LiRA.
    pub auroc_loss: Option<Figure>,
    /// Membership AUROC of offline LiRA.
    pub auroc_lira: Option<Figure>,
    /// TPR at FPR 0.1% and 1% of the strongest attack listed last (LiRA when run).
    pub tpr_at_fpr: Vec<(f64, Figure)>,
    /// Whether the lower bound exceeds the accountant's epsilon.
    pub exceeds: bool,
}

pub(super) fn privacy_audit(audit: &Obj, name: String) -> PrivacyAudit {
    let points = audit
        .get("points")
        .and_then(Value::as_array)
        .map(|ps| {
            ps.iter()
                .filter_map(Value::as_object)
                .map(|p| {
                    let one_run = p.get("one_run").and_then(Value::as_object);
                    let attacks: Vec<&Obj> = p
                        .get("membership")
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten()
                        .filter_map(Value::as_object)
                        .collect();
                    let auroc_of = |name: &str| {
                        attacks
                            .iter()
                            .find(|a| text(a, "attack").as_deref() == Some(name))
                            .and_then(|a| a.get("auroc"))
                            .and_then(figure_value)
                    };
                    let best_k = one_run.and_then(|o| count(o, "best_k"));
                    let guesses = one_run
                        .and_then(|o| o.get("by_guesses"))
                        .and_then(Value::as_array)
                        .and_then(|rows| {
                            rows.iter()
                                .filter_map(Value::as_object)
                                .find(|r| count(r, "k") == best_k)
                                .and_then(|r| Some((count(r, "correct")?, count(r, "guesses")?)))
                        });
                    let tpr_at_fpr = attacks
                        .last()
                        .and_then(|a| a.get("tpr_at_fpr"))
                        .and_then(Value::as_array)
                        .map(|rows| {
                            rows.iter()
                                .filter_map(Value::as_object)
                                .filter_map(|r| {
                                    Some((num(r, "fpr_target")?, r.get("tpr").and_then(figure_value)?))
                                })
                                .collect()
                        })
                        .unwrap_or_default();
                    PrivacyAuditPoint {
                        epsilon: epsilon(p),
                        accountant_epsilon: num(p, "accountant_epsilon"),
                        lower_bound: one_run.and_then(|o| num(o, "epsilon_lower_bound")),
                        guesses,
                        auroc_loss: auroc_of("loss"),
                        auroc_lira: auroc_of("lira_offline"),
                        tpr_at_fpr,
                        exceeds: p.get("lower_bound_exceeds_claim").and_then(Value::as_bool).unwrap_or(false),
                    }
                })
                .collect()
        })
        .unwrap_or_default();
    PrivacyAudit {
        name,
        canaries: count(audit, "canaries"),
        shadows: count(audit, "shadows"),
        n_members: count(audit, "n_members"),
        n_held_out: count(audit, "n_held_out"),
        fault: text(audit, "fault"),
        points,
    }
}

pub(super) fn mitigate(audit: &Obj, name: String) -> Mitigate {
    let points = audit
        .get("points")
        .and_then(Value::as_array)
        .map(|points| points.iter().filter_map(Value::as_object).map(mitigate_point).collect())
        .unwrap_or_default();
    let reference = |key: &str| audit.get(key).and_then(Value::as_object).map(mitigate_point);
    Mitigate {
        name,
        points,
        audited: reference("baseline"),
        audited_skipped: text(audit, "baseline_skipped"),
        warm_start: reference("warm_start"),
    }
}

/// One point (or reference row) of a sweep: relink per cohort and utility.
fn mitigate_point(p: &Obj) -> MitigatePoint {
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
    let utility_num = |key: &str| match p.get("utility") {
        Some(Value::Object(u)) => num(u, key),
        _ => None,
    };
    MitigatePoint {
        epsilon: epsilon(p),
        delta: num(p, "delta"),
        cohorts,
        utility_macro_auroc,
        utility_external_macro_auroc,
        utility_change_vs_audited: utility_num("change_vs_audited"),
        utility_external_change_vs_audited: utility_num("external_change_vs_audited"),
    }
}

fn mitigate_cohort(cohort: String, r: &Obj) -> MitigateCohort {
    MitigateCohort {
        relative_reduction: ["relative_reduction", "relative_reduction_recall_at_1"]
            .iter()
            .find_map(|k| num(r, k)),
        relative_reduction_vs_audited: num(r, "relative_reduction_vs_audited"),
        reduction_pool_size: count(r, "reduction_pool_size"),
        relink: relink(r, cohort.clone()),
        cohort,
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
        assert!(m.audited.is_none() && m.warm_start.is_none());
    }

    #[test]
    fn mitigate_reads_the_audited_model_and_warm_start_rows() {
        let relink = |r: f64| {
            json!({"held_out": {"pools": [{"pool_size": 100, "kind": "random", "recall_at_1": r}],
                                     "relative_reduction_vs_audited": 1.0 - r / 0.3}})
        };
        let m = mitigate(
            &obj(json!({
                "points": [{"epsilon": 1.0, "relink": relink(0.45), "utility": {"macro_auroc": 0.7}}],
                "baseline": {"relink": relink(0.3), "utility": {"macro_auroc": 0.82}},
                "warm_start": {"relink": relink(0.4), "utility": {"macro_auroc": 0.71}},
                "baseline_skipped": null
            })),
            "m".into(),
        );
        let audited = m.audited.as_ref().unwrap();
        assert_eq!(audited.utility_macro_auroc.unwrap().value, 0.82);
        assert_eq!(audited.cohorts[0].relink.random_pool(100).unwrap().recall_at_1.unwrap().value, 0.3);
        assert_eq!(
            m.warm_start.as_ref().unwrap().cohorts[0]
                .relink
                .random_pool(100)
                .unwrap()
                .recall_at_1
                .unwrap()
                .value,
            0.4
        );
        assert!(
            (m.points[0].cohorts[0].relative_reduction_vs_audited.unwrap() - (1.0 - 0.45 / 0.3)).abs()
                < 1e-12
        );
        let skipped = mitigate(&obj(json!({"points": [], "baseline_skipped": "no views"})), "m".into());
        assert_eq!(skipped.audited_skipped.as_deref(), Some("no views"));
    }
}
