//! Reading figures out of the audits' JSON by key (docs/REPORTS.md lists the keys): the
//! number/interval conventions (`key` + `ci95_key`, or an Estimate object), ROC points in
//! their three shapes, and one reader per audit kind. Nothing here knows an audit's Rust
//! type; a missing or malformed key leaves its figure out.

use serde_json::{Map, Value};

use super::model::{
    Attack, Attacks, AttributeTarget, Attributes, CurvePoint, Figure, Reid, Relink, RelinkFull, RelinkPool,
    Side, SkippedAttack, SkippedPool, Subgroup, Utility,
};

/// A JSON object.
pub(super) type Obj = Map<String, Value>;

pub(super) fn num(obj: &Obj, key: &str) -> Option<f64> {
    match obj.get(key)? {
        Value::Number(n) => n.as_f64().filter(|v| v.is_finite()),
        Value::Object(o) => num(o, "value"),
        _ => None,
    }
}

pub(super) fn text(obj: &Obj, key: &str) -> Option<String> {
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
pub(super) fn figure(obj: &Obj, key: &str) -> Option<Figure> {
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

/// `key` as a figure whose interval may also sit in a plain `ci95` sibling (the probes write
/// `{"auroc": .., "ci95": [lo, hi]}`).
fn main_figure(obj: &Obj, key: &str) -> Option<Figure> {
    let mut fig = figure(obj, key)?;
    if fig.ci95.is_none() {
        fig.ci95 = obj.get("ci95").and_then(pair);
    }
    Some(fig)
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

pub(super) fn figure_value(v: &Value) -> Option<Figure> {
    match v {
        Value::Number(n) => n.as_f64().filter(|x| x.is_finite()).map(|value| Figure { value, ci95: None }),
        Value::Object(o) => estimate(o).or_else(|| main_figure(o, "auroc")),
        _ => None,
    }
}

pub(super) fn count(obj: &Obj, key: &str) -> Option<u64> {
    let v = num(obj, key)?;
    (v >= 0.0 && v.fract() == 0.0).then_some(v as u64)
}

fn objects<'a>(obj: &'a Obj, key: &str) -> impl Iterator<Item = &'a Obj> {
    obj.get(key).and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_object)
}

/// A side-data protocol object: `{"source": "split train" | "cross_fit", "folds": K, "n_pairs": n}`.
pub(super) fn side(value: Option<&Value>) -> Option<Side> {
    let o = value?.as_object()?;
    Some(Side { source: text(o, "source")?, folds: num(o, "folds"), n_pairs: num(o, "n_pairs") })
}

/// `skipped_attacks: [{"name", "reason", "leaked_pairs"?, "pool_size"?}]`.
fn skipped_attacks(audit: &Obj) -> Vec<SkippedAttack> {
    objects(audit, "skipped_attacks")
        .filter_map(|s| {
            Some(SkippedAttack {
                name: text(s, "name")?,
                reason: text(s, "reason").unwrap_or_default(),
                leaked_pairs: num(s, "leaked_pairs"),
                pool_size: count(s, "pool_size"),
            })
        })
        .collect()
}

/// One relink direction's figures (forward at the top level, or the `reverse` object) under
/// the measurement name `name`; the reverse direction, when present, rides along.
pub(super) fn relink(audit: &Obj, name: String) -> Relink {
    let mut out = relink_direction(audit, name.clone());
    if let Some(reverse) = audit.get("reverse").and_then(Value::as_object) {
        let mut r = relink_direction(reverse, name);
        r.split = r.split.or_else(|| out.split.clone());
        out.reverse = Some(Box::new(r));
    }
    out
}

fn relink_direction(audit: &Obj, name: String) -> Relink {
    let full = audit.get("full").and_then(Value::as_object).map(|f| RelinkFull {
        recall_at_1: figure(f, "recall_at_1"),
        recall_at_5: num(f, "recall_at_5"),
        recall_at_10: num(f, "recall_at_10"),
        mrr: num(f, "mrr"),
        median_rank: num(f, "median_rank"),
        chance_at_1: num(f, "chance_at_1"),
        lift_at_1: num(f, "lift_at_1"),
    });
    let pools = objects(audit, "pools")
        .filter_map(|p| {
            Some(RelinkPool {
                pool_size: count(p, "pool_size")?,
                kind: text(p, "kind").unwrap_or_else(|| "random".to_string()),
                trials: num(p, "trials"),
                recall_at_1: figure(p, "recall_at_1"),
                chance_at_1: num(p, "chance_at_1"),
                lift_at_1: num(p, "lift_at_1"),
                expected_recall_at_1: num(p, "expected_recall_at_1"),
                exact_match_fraction: num(p, "exact_match_fraction"),
            })
        })
        .collect();
    let skipped_pools = objects(audit, "skipped_pools")
        .filter_map(|p| {
            Some(SkippedPool {
                pool_size: count(p, "pool_size")?,
                kind: text(p, "kind").unwrap_or_else(|| "random".to_string()),
                reason: text(p, "reason").unwrap_or_default(),
            })
        })
        .collect();
    let mut expected_curve: Vec<CurvePoint> = objects(audit, "expected_recall_curve")
        .filter_map(|c| {
            Some(CurvePoint {
                pool_size: num(c, "pool_size")?,
                expected_recall_at_1: num(c, "expected_recall_at_1")?,
                chance_at_1: num(c, "chance_at_1"),
            })
        })
        .collect();
    expected_curve.sort_by(|a, b| a.pool_size.total_cmp(&b.pool_size));
    let subgroups = objects(audit, "subgroups")
        .filter_map(|s| {
            Some(Subgroup {
                attribute: text(s, "attribute")?,
                value: text(s, "value")?,
                n_queries: num(s, "n_queries"),
                recall_at_1: figure(s, "recall_at_1"),
                chance_at_1: num(s, "chance_at_1"),
                lift_at_1: num(s, "lift_at_1"),
            })
        })
        .collect();
    Relink {
        name: name.clone(),
        model: name,
        query_view: text(audit, "query_view").unwrap_or_else(|| "query".to_string()),
        gallery_view: text(audit, "gallery_view").unwrap_or_else(|| "gallery".to_string()),
        split: text(audit, "split"),
        n_queries: num(audit, "n_queries"),
        n_gallery: num(audit, "n_gallery"),
        full,
        pools,
        attacks: attacks(audit),
        skipped_pools,
        expected_curve,
        subgroups,
        reverse: None,
    }
}

/// The attack comparison of an audit: present when it has attack rows or skipped attacks.
pub(super) fn attacks(audit: &Obj) -> Option<Attacks> {
    let list = audit.get("attacks").and_then(Value::as_array);
    let skipped = skipped_attacks(audit);
    if list.is_none() && skipped.is_empty() {
        return None;
    }
    let attacks = list
        .into_iter()
        .flatten()
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
        strongest_pool_size: count(audit, "strongest_attack_pool_size"),
        strongest_leaked_pairs: num(audit, "strongest_attack_leaked_pairs"),
        attacks,
        skipped,
        side: side(audit.get("side")),
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
/// becomes one entry each, one with at most one is read from the top level.
pub(super) fn reid_entries(audit: &Obj, name: String) -> Vec<Reid> {
    let listed: Vec<&Obj> = objects(audit, "attackers").collect();
    if listed.len() < 2 {
        return vec![reid(audit, name)];
    }
    listed
        .into_iter()
        .enumerate()
        .map(|(i, attacker)| {
            // The attacker's figures over the audit's shared fields (view, split, ...).
            let mut merged = audit.clone();
            merged.remove("attackers");
            for (k, v) in attacker {
                merged.insert(k.clone(), v.clone());
            }
            let mut entry = reid(&merged, name.clone());
            if i > 0 {
                // The attack comparison and the skipped list belong to the audit, shown once.
                entry.attacks = None;
                entry.skipped.clear();
            }
            entry
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
    // A reid JSON lists attackers it could not run in `skipped_attacks`; the older
    // `linear_metric_skipped` reason says the same for the trained attacker.
    let mut skipped = skipped_attacks(audit);
    if let Some(reason) = text(audit, "linear_metric_skipped") {
        if !skipped.iter().any(|s| s.name == "linear-metric") {
            skipped.push(SkippedAttack {
                name: "linear-metric".to_string(),
                reason,
                leaked_pairs: None,
                pool_size: None,
            });
        }
    }
    let mut attacks = attacks(audit);
    if let Some(a) = attacks.as_mut() {
        // The top-level list is the audit's (shown with the attackers), not the comparison's.
        a.skipped.clear();
    }
    let linear_metric = audit.get("linear_metric").and_then(Value::as_object);
    Reid {
        name: name.clone(),
        model: name,
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
        attacks: attacks.filter(|a| !a.attacks.is_empty()),
        skipped,
        side: linear_metric.and_then(|m| side(m.get("side"))),
    }
}

fn attribute_target(name: String, target: &Obj) -> AttributeTarget {
    // The attributes audit nests the re-identification strata under `stratified`
    // (`reidentified`, `not_reidentified`, `difference.p_value`); flat keys are read too.
    let o = target.get("stratified").and_then(Value::as_object).unwrap_or(target);
    let stratum = |keys: &[&str]| -> Option<Figure> {
        keys.iter().find_map(|k| match o.get(*k)? {
            Value::Object(s) => main_figure(s, "auroc").or_else(|| estimate(s)),
            Value::Number(_) => figure(o, k),
            _ => None,
        })
    };
    let difference_p = o.get("difference").and_then(Value::as_object).and_then(|d| num(d, "p_value"));
    AttributeTarget {
        name,
        auroc: main_figure(target, "auroc"),
        auroc_reidentified: stratum(&["reidentified", "auroc_reidentified"]),
        auroc_not_reidentified: stratum(&["not_reidentified", "auroc_not_reidentified"]),
        p_value: difference_p.or_else(|| {
            ["p_value_difference", "delong_p_value", "p_value"].iter().find_map(|k| num(target, k))
        }),
        roc: first_roc(target, &["roc"]),
    }
}

pub(super) fn attributes(audit: &Obj, name: String) -> Attributes {
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
    Attributes {
        name: name.clone(),
        model: name,
        view: text(audit, "view").unwrap_or_else(|| "image".to_string()),
        targets,
        side: side(audit.get("side")),
    }
}

pub(super) fn utility(audit: &Obj, name: String) -> Utility {
    let ci = audit.get("ci95_per_finding").and_then(Value::as_object);
    let per_finding = audit
        .get("per_finding")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| {
                    let mut fig = figure_value(v)?;
                    if fig.ci95.is_none() {
                        fig.ci95 = ci.and_then(|c| c.get(k)).and_then(pair);
                    }
                    Some((k.clone(), fig))
                })
                .collect()
        })
        .unwrap_or_default();
    Utility {
        name: name.clone(),
        model: name,
        view: text(audit, "view").unwrap_or_else(|| "image".to_string()),
        macro_auroc: figure(audit, "macro_auroc"),
        per_finding,
        side: side(audit.get("side")),
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
        let probe = obj(json!({"auroc": 0.7, "ci95": [0.6, 0.8]}));
        assert_eq!(main_figure(&probe, "auroc"), Some(Figure { value: 0.7, ci95: Some([0.6, 0.8]) }));
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
    fn relink_reads_the_reverse_direction_skips_curve_and_side() {
        let r = relink(
            &obj(json!({
                "query_view": "image", "gallery_view": "report", "split": "test",
                "pools": [{"pool_size": 10, "kind": "pathology_matched", "recall_at_1": 0.3,
                           "exact_match_fraction": 0.25}],
                "skipped_pools": [{"pool_size": 1000, "kind": "random", "reason": "too big"}],
                "expected_recall_curve": [{"pool_size": 20, "expected_recall_at_1": 0.2},
                                          {"pool_size": 2, "expected_recall_at_1": 0.8, "chance_at_1": 0.5}],
                "subgroups": [{"attribute": "sex", "value": "F", "n_queries": 10, "recall_at_1": 0.1,
                               "ci95_recall_at_1": [0.01, 0.4]}],
                "strongest_attack": "cosine", "strongest_attack_pool_size": 10,
                "side": {"source": "cross_fit", "folds": 5},
                "attacks": [], "skipped_attacks": [{"name": "procrustes", "reason": "no pairs", "leaked_pairs": 100}],
                "reverse": {"query_view": "report", "gallery_view": "image", "pools": []}
            })),
            "m".into(),
        );
        assert_eq!(r.pools[0].exact_match_fraction, Some(0.25));
        assert_eq!(r.skipped_pools[0].pool_size, 1000);
        assert_eq!(r.expected_curve.iter().map(|c| c.pool_size).collect::<Vec<_>>(), [2.0, 20.0]);
        assert_eq!(r.subgroups[0].recall_at_1, Some(Figure { value: 0.1, ci95: Some([0.01, 0.4]) }));
        let a = r.attacks.as_ref().unwrap();
        assert_eq!(a.strongest_pool_size, Some(10));
        assert_eq!(a.side.as_ref().unwrap().folds, Some(5.0));
        assert_eq!(a.skipped[0].leaked_pairs, Some(100.0));
        let rev = r.reverse.as_ref().unwrap();
        assert_eq!((rev.query_view.as_str(), rev.split.as_deref()), ("report", Some("test")));
    }

    #[test]
    fn reid_lists_skipped_attackers_once() {
        let r = reid_entries(
            &obj(json!({
                "view": "image", "attacker": "nearest-neighbour", "rank_1": 0.3,
                "linear_metric_skipped": "no train split",
                "attackers": [{"attacker": "nearest-neighbour", "rank_1": 0.3},
                              {"attacker": "other", "rank_1": 0.4}]
            })),
            "m".into(),
        );
        assert_eq!(r.len(), 2);
        assert_eq!(r[0].skipped.len(), 1);
        assert_eq!(r[0].skipped[0].name, "linear-metric");
        assert!(r[1].skipped.is_empty());
    }
}
