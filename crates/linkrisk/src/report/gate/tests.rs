//! Gate tests on hand-written audit JSON: every direction and model, both bases, floors and
//! ceilings, skipped attacks, errors that say what exists, and the JUnit document.

use serde_json::{json, Value};

use super::*;
use crate::report::run::{entry_key, RunEntry};

fn entry(label: Option<&str>, audit: Value) -> RunEntry {
    RunEntry {
        key: entry_key(&audit, label).unwrap(),
        label: label.map(String::from),
        cohort_fingerprint: None,
        command: vec![],
        seed: None,
        started_unix: 0,
        seconds: 0.0,
        linkrisk_version: "0".into(),
        audit,
    }
}

fn run_of(entries: Vec<RunEntry>) -> RunFile {
    RunFile {
        linkrisk_version: "0".into(),
        created_unix: 0,
        updated_unix: 0,
        runs: entries,
        cohort: None,
        models: Vec::new(),
        extra: Default::default(),
    }
}

fn run(audits: Vec<Value>) -> RunFile {
    run_of(audits.into_iter().map(|a| entry(None, a)).collect())
}

fn relink() -> Value {
    json!({"audit": "relink", "query_view": "image", "gallery_view": "report",
           "full": {"recall_at_1": 0.001, "lift_at_1": 43.0, "chance_at_1": 0.0000232,
                    "ci95_recall_at_1": [0.0008, 0.0012]},
           "pools": [{"pool_size": 100, "kind": "random", "recall_at_1": 0.15, "lift_at_1": 15.0,
                      "chance_at_1": 0.01, "ci95_recall_at_1": [0.13, 0.17], "bootstrap_ci95_recall_at_1": [0.12, 0.18]},
                     {"pool_size": 100, "kind": "pathology_matched", "recall_at_1": 0.09, "lift_at_1": 9.0,
                      "chance_at_1": 0.01, "ci95_recall_at_1": [0.08, 0.10]}],
           "strongest_attack": "csls",
           "attacks": [{"name": "csls", "pool_size": 100, "recall_at_1": 0.2, "lift_at_1": 20.0,
                        "chance_at_1": 0.01, "ci95_recall_at_1": [0.18, 0.22]},
                       {"name": "assignment", "recall_at_1": 0.004, "ci95_recall_at_1": [0.003, 0.005]}]})
}

/// A relink audit whose reverse direction (report -> image) links more than the forward one.
fn relink_both(reverse_recall: f64) -> Value {
    let mut audit = relink();
    audit["reverse"] = json!({"query_view": "report", "gallery_view": "image",
        "full": {"recall_at_1": 0.002, "lift_at_1": 86.0},
        "pools": [{"pool_size": 10, "kind": "random", "recall_at_1": reverse_recall, "lift_at_1": reverse_recall * 10.0,
                   "chance_at_1": 0.1, "ci95_recall_at_1": [reverse_recall - 0.02, reverse_recall + 0.02]}],
        "skipped_attacks": [{"name": "qb_norm", "reason": "needs side pairs"}]});
    audit["pools"].as_array_mut().unwrap().push(
        json!({"pool_size": 10, "kind": "random", "recall_at_1": 0.80, "lift_at_1": 8.0, "chance_at_1": 0.1,
               "ci95_recall_at_1": [0.78, 0.82]}),
    );
    audit
}

fn lift(text: &str) -> Limit {
    Limit::parse_pool("--max-lift", text, Metric::Lift).unwrap()
}

fn recall(text: &str) -> Limit {
    Limit::parse_pool("--max-recall-at-1", text, Metric::RecallAt1).unwrap()
}

fn spec(limits: Vec<Limit>) -> GateSpec {
    GateSpec { allow_skipped: true, ..GateSpec::new(limits) }
}

#[test]
fn parses_thresholds_and_rejects_bad_ones() {
    let l = lift("10000=20");
    assert_eq!(l, Limit { metric: Metric::Lift(Pool::Size(10_000)), threshold: 20.0 });
    assert_eq!(l.flag(), "--max-lift 10000=20");
    assert_eq!(recall("full=0.01").metric, Metric::RecallAt1(Pool::Full));
    assert_eq!(lift("10,000=2").metric, Metric::Lift(Pool::Size(10_000)));
    for bad in ["10000", "x=1", "1=2", "100=-1", "100=nan", "100=inf"] {
        let err = Limit::parse_pool("--max-lift", bad, Metric::Lift).unwrap_err().to_string();
        assert!(err.contains("--max-lift"), "{bad}: {err}");
    }
    assert!(Limit::reid_rank1("0.3").is_ok());
    assert!(Limit::reid_rank1("-0.3").is_err());
    // Proportions outside [0, 1] are errors; a lift above 1 is not.
    for err in [
        Limit::reid_rank1("30").unwrap_err(),
        Limit::parse_pool("--max-recall-at-1", "100=1.5", Metric::RecallAt1).unwrap_err(),
        Limit::min_utility("79.6").unwrap_err(),
        Limit::attribute_auroc("sex=82").unwrap_err(),
    ] {
        assert!(err.to_string().contains("not a proportion"), "{err}");
    }
    assert!(lift("100=15").threshold > 1.0);
    let a = Limit::attribute_auroc("sex=0.8").unwrap();
    assert_eq!(
        (a.metric.clone(), a.flag()),
        (Metric::AttributeAuroc("sex".into()), "--max-attribute-auroc sex=0.8".into())
    );
    assert!(Limit::attribute_auroc("0.8").unwrap_err().to_string().contains("missing `=`"));
    assert!(Limit::attribute_auroc("=0.8").is_err());
    assert_eq!(Basis::parse("ci-high").unwrap(), Basis::CiHigh);
    assert!(Basis::parse("upper").unwrap_err().to_string().contains("--on upper"));
}

#[test]
fn checks_every_pool_kind_and_matching_attacks() {
    let run = run(vec![relink()]);
    let outcome = evaluate(&run, &spec(vec![lift("100=12")])).unwrap();
    let values: Vec<(String, f64, bool)> =
        outcome.checks.iter().map(|c| (c.scope.clone(), c.value.unwrap(), c.violated())).collect();
    assert_eq!(
        values,
        vec![
            ("image -> report, random pool, N=100".to_string(), 15.0, true),
            ("image -> report, pathology-matched pool, N=100".to_string(), 9.0, false),
            ("image -> report, attack csls, N=100".to_string(), 20.0, true),
        ]
    );
    assert!(!outcome.passed() && !outcome.passed);
    let line = outcome.violations().next().unwrap().describe();
    assert_eq!(
        line,
        "relink:image->report: lift_at_1 (image -> report, random pool, N=100) = 15 > 12 [--max-lift 100=12]"
    );
    // A threshold equal to the figure passes.
    assert!(evaluate(&run, &spec(vec![lift("100=20")])).unwrap().passed());
}

#[test]
fn full_pool_includes_attack_rows_without_pool_size() {
    let run = run(vec![relink()]);
    let outcome = evaluate(&run, &spec(vec![recall("full=0.002")])).unwrap();
    let scopes: Vec<_> = outcome.checks.iter().map(|c| (c.scope.as_str(), c.violated())).collect();
    assert_eq!(
        scopes,
        vec![
            ("image -> report, full database", false),
            ("image -> report, attack assignment, full database", true)
        ]
    );
}

#[test]
fn the_reverse_direction_is_checked_too() {
    // Forward N=10 Recall@1 0.80 passes 0.824; report -> image 0.82576 does not.
    let run = run(vec![relink_both(0.82576)]);
    let outcome = evaluate(&run, &spec(vec![recall("10=0.824")])).unwrap();
    let failed: Vec<String> = outcome.violations().map(Check::describe).collect();
    assert_eq!(
        failed,
        ["relink:image->report: recall_at_1 (report -> image, random pool, N=10) = 0.82576 > 0.824 [--max-recall-at-1 10=0.824]"]
    );
    let thresholds = outcome.checks.iter().filter(|c| c.kind == CheckKind::Threshold).count();
    assert_eq!(thresholds, 2, "one check per direction");
    assert!(evaluate(&run, &spec(vec![recall("10=0.83")])).unwrap().passed());
}

#[test]
fn ci_high_compares_the_upper_end_and_floors_the_lower_end() {
    let run = run(vec![
        relink(),
        json!({"audit": "utility", "view": "image", "macro_auroc": 0.80, "ci95_macro_auroc": [0.77, 0.83]}),
    ]);
    // Random N=100: estimate 0.15, Wilson [0.13, 0.17], bootstrap [0.12, 0.18]: the envelope's
    // upper end 0.18 is compared.
    let threshold = recall("100=0.16");
    let estimate = evaluate(&run, &spec(vec![threshold.clone()])).unwrap();
    assert!(estimate
        .checks
        .iter()
        .all(|c| c.scope.contains("pathology") || c.scope.contains("csls") || c.passed));
    let high = evaluate(&run, &GateSpec { on: Basis::CiHigh, ..spec(vec![threshold]) }).unwrap();
    let random = high.checks.iter().find(|c| c.scope.contains("random pool")).unwrap();
    assert_eq!((random.value, random.estimate, random.compared), (Some(0.18), Some(0.15), Some("ci_high")));
    assert_eq!(random.ci95, Some([0.12, 0.18]));
    assert!(random.violated());
    assert_eq!(
        random.describe(),
        "relink:image->report: recall_at_1 95% CI high (image -> report, random pool, N=100) = 0.18 > 0.16 (estimate 0.15) [--max-recall-at-1 100=0.16]"
    );
    // A lift's interval is its Recall@1 interval over chance: 0.18 / 0.01 = 18 > 16.
    let l = evaluate(&run, &GateSpec { on: Basis::CiHigh, ..spec(vec![lift("100=16")]) }).unwrap();
    let random = l.checks.iter().find(|c| c.scope.contains("random pool")).unwrap();
    assert!((random.value.unwrap() - 18.0).abs() < 1e-9 && random.violated(), "{random:?}");
    // A utility floor compares the lower end under ci-high: 0.77 < 0.78 fails, 0.80 passes.
    let floor = Limit::min_utility("0.78").unwrap();
    assert!(evaluate(&run, &spec(vec![floor.clone()])).unwrap().passed());
    let low = evaluate(&run, &GateSpec { on: Basis::CiHigh, ..spec(vec![floor]) }).unwrap();
    assert_eq!(low.checks[0].compared, Some("ci_low"));
    assert!(low.checks[0]
        .describe()
        .contains("macro_auroc 95% CI low (image view, macro AUROC over the findings) = 0.77 < 0.78"));
    // A figure without an interval cannot be compared on ci-high.
    let bare = self::run(vec![json!({"audit": "reid", "view": "image", "rank_1": 0.3})]);
    let err =
        evaluate(&bare, &GateSpec { on: Basis::CiHigh, ..spec(vec![Limit::reid_rank1("0.5").unwrap()]) })
            .unwrap_err()
            .to_string();
    assert!(err.contains("no 95% interval") && err.contains("--on estimate"), "{err}");
}

#[test]
fn attribute_ceilings_and_utility_floors() {
    let run = run(vec![
        json!({"audit": "attributes", "view": "image",
               "attributes": {"sex": {"auroc": 0.82, "ci95": [0.80, 0.84]}, "age": {"auroc": 0.7, "ci95": [0.6, 0.8]}},
               "skipped": [{"attribute": "race", "reason": "no race column"}],
               "side": {"source": "cross_fit", "folds": 5}}),
        json!({"audit": "utility", "view": "image", "macro_auroc": 0.75}),
    ]);
    let sex = Limit::attribute_auroc("sex=0.8").unwrap();
    let outcome = evaluate(&run, &spec(vec![sex, Limit::min_utility("0.76").unwrap()])).unwrap();
    let lines: Vec<String> = outcome.violations().map(Check::describe).collect();
    assert_eq!(
        lines,
        [
            "attributes:image: auroc (image view, sex, side data: cross_fit (5 folds)) = 0.82 > 0.8 [--max-attribute-auroc sex=0.8]",
            "utility:image: macro_auroc (image view, macro AUROC over the findings) = 0.75 < 0.76 [--min-utility 0.76]",
        ]
    );
    let err =
        evaluate(&run, &spec(vec![Limit::attribute_auroc("race=0.8").unwrap()])).unwrap_err().to_string();
    assert!(
        err.contains("no attribute `race`")
            && err.contains("probed: age, sex")
            && err.contains("no race column"),
        "{err}"
    );
}

#[test]
fn every_model_is_checked_and_model_limits_replace_common_ones() {
    let reid = |rank_1: f64| json!({"audit": "reid", "view": "image", "rank_1": rank_1});
    let run =
        run_of(vec![entry(Some("a"), reid(0.2)), entry(Some("b"), reid(0.6)), entry(Some("c"), reid(0.4))]);
    let common = Limit::reid_rank1("0.5").unwrap();
    let outcome = evaluate(&run, &spec(vec![common.clone()])).unwrap();
    let failed: Vec<Option<&str>> = outcome.violations().map(|c| c.model.as_deref()).collect();
    assert_eq!(failed, [Some("b")]);
    assert_eq!(outcome.models, [Some("a".into()), Some("b".into()), Some("c".into())]);
    // Model b gets a looser threshold, model c a stricter one.
    let mut per_model = spec(vec![common]);
    per_model.model_limits.insert("b".into(), vec![Limit::reid_rank1("0.7").unwrap()]);
    per_model.model_limits.insert("c".into(), vec![Limit::reid_rank1("0.3").unwrap()]);
    let failed: Vec<Option<String>> =
        evaluate(&run, &per_model).unwrap().violations().map(|c| c.model.clone()).collect();
    assert_eq!(failed, [Some("c".to_string())]);
    // A command-line threshold replaces both.
    per_model.set_limit(Limit::reid_rank1("0.1").unwrap());
    assert_eq!(evaluate(&run, &per_model).unwrap().violations().count(), 3);
    // --model restricts; an unknown model is an error naming the models.
    let only_a = GateSpec { models: vec!["a".into()], ..per_model.clone() };
    assert_eq!(evaluate(&run, &only_a).unwrap().checks.len(), 1);
    let err =
        evaluate(&run, &GateSpec { models: vec!["z".into()], ..per_model.clone() }).unwrap_err().to_string();
    assert!(err.contains("--model z") && err.contains("models: a, b, c"), "{err}");
    // A per-model threshold for a model the run lacks is an error too.
    let mut ghost = spec(vec![]);
    ghost.model_limits.insert("ghost".into(), vec![Limit::reid_rank1("0.1").unwrap()]);
    assert!(evaluate(&run, &ghost).unwrap_err().to_string().contains("model `ghost`"));
    // A model without the audit a threshold bounds is an error, not a silent pass.
    let mixed = run_of(vec![entry(Some("a"), reid(0.2)), entry(Some("b"), relink())]);
    let err = evaluate(&mixed, &spec(vec![Limit::reid_rank1("0.5").unwrap()])).unwrap_err().to_string();
    assert!(err.contains("model `b` has no reid audit") && err.contains("relink:image->report#b"), "{err}");
    // A mitigation sweep's label is not a model to gate.
    let with_sweep =
        run_of(vec![entry(Some("a"), reid(0.2)), entry(Some("mitigation"), json!({"audit": "mitigate"}))]);
    assert_eq!(
        evaluate(&with_sweep, &spec(vec![Limit::reid_rank1("0.5").unwrap()])).unwrap().checks.len(),
        1
    );
}

#[test]
fn skipped_attacks_fail_unless_allowed() {
    let mut reid = json!({"audit": "reid", "view": "image", "rank_1": 0.3,
                          "linear_metric_skipped": "no train split with patients of two studies",
                          "skipped_attacks": [{"name": "qb_norm", "reason": "needs side pairs"}]});
    let run1 = run(vec![relink_both(0.5), reid.clone()]);
    let limits = vec![Limit::reid_rank1("0.5").unwrap()];
    let outcome = evaluate(&run1, &GateSpec::new(limits.clone())).unwrap();
    let failed: Vec<String> = outcome.violations().map(Check::describe).collect();
    assert_eq!(
        failed,
        [
            "relink:image->report: attack qb_norm (report -> image) did not run: needs side pairs",
            "reid:image: attack qb_norm (image view) did not run: needs side pairs",
            "reid:image: attack linear-metric (image view) did not run: no train split with patients of two studies",
        ]
    );
    let allowed =
        evaluate(&run1, &GateSpec { allow_skipped: true, ..GateSpec::new(limits.clone()) }).unwrap();
    assert!(allowed.passed());
    assert_eq!(allowed.checks.len(), 4, "the skipped attacks are still listed");
    assert!(allowed.checks[1].describe().ends_with("(accepted: --allow-skipped)"));
    // A linear-metric item in skipped_attacks is not counted twice.
    reid["skipped_attacks"] = json!([{"name": "linear-metric", "reason": "no train split"}]);
    let run2 = run(vec![reid]);
    assert_eq!(evaluate(&run2, &GateSpec::new(limits)).unwrap().violations().count(), 1);
}

#[test]
fn missing_pools_and_audits_are_errors_that_list_what_exists() {
    let run1 = run(vec![relink()]);
    let err = evaluate(&run1, &spec(vec![lift("10000=5")])).unwrap_err();
    assert!(err.to_string().contains("no relink audit in this run has a pool of N=10,000"), "{err}");
    assert!(err.to_string().contains("pools present: 100, full"), "{err}");
    let err = evaluate(&run1, &spec(vec![Limit::reid_rank1("0.5").unwrap()])).unwrap_err().to_string();
    assert!(err.contains("no reid audit") && err.contains("relink:image->report"), "{err}");
    let run2 = run(vec![json!({"audit": "reid", "view": "image", "rank_1": 0.3})]);
    let err = evaluate(&run2, &spec(vec![lift("100=5")])).unwrap_err();
    assert!(err.to_string().contains("no relink audit"), "{err}");
    assert!(evaluate(&run2, &spec(vec![])).unwrap_err().to_string().contains("no threshold given"));
    let run3 = run(vec![json!({"audit": "relink", "query_view": "image", "gallery_view": "report",
                               "pools": [{"pool_size": 100, "kind": "random", "recall_at_1": 0.1}]})]);
    let err = evaluate(&run3, &spec(vec![lift("100=5")])).unwrap_err();
    assert!(err.to_string().contains("has no lift_at_1"), "{err}");
    let err = evaluate(&run2, &spec(vec![Limit::min_utility("0.7").unwrap()])).unwrap_err();
    assert!(err.to_string().contains("no utility audit"), "{err}");
}

#[test]
fn reid_checks_plain_and_trained_attackers() {
    let run = run(vec![
        json!({"audit": "reid", "view": "image", "rank_1": 0.259}),
        json!({"audit": "reid", "view": "image", "attacker": "linear-metric", "rank_1": 0.637,
               "attacks": [{"name": "csls", "recall_at_1": 0.7}]}),
    ]);
    let outcome = evaluate(&run, &spec(vec![Limit::reid_rank1("0.5").unwrap()])).unwrap();
    let v: Vec<_> =
        outcome.checks.iter().map(|c| (c.audit.as_str(), c.scope.as_str(), c.violated())).collect();
    assert_eq!(
        v,
        vec![
            ("reid:image", "image view, nearest neighbour", false),
            ("reid:image+linear-metric", "image view, attacker linear-metric", true),
            ("reid:image+linear-metric", "image view, attack csls", true),
        ]
    );
}

/// The JUnit document parsed back: its test cases and failures, with escaped text intact.
#[test]
fn junit_has_one_case_per_check_and_escapes_labels() {
    use quick_xml::events::Event;
    let label = "a<b>&\"c\u{1}";
    let reid = |rank_1: f64| {
        json!({"audit": "reid", "view": "image", "rank_1": rank_1,
                                    "skipped_attacks": [{"name": "qb_norm", "reason": "bank < 2 & none"}]})
    };
    let run = run_of(vec![entry(Some(label), reid(0.6)), entry(Some("ok"), reid(0.1))]);
    let outcome = evaluate(
        &run,
        &GateSpec { allow_skipped: true, ..GateSpec::new(vec![Limit::reid_rank1("0.5").unwrap()]) },
    )
    .unwrap();
    let xml = to_junit(&outcome).unwrap();
    let mut reader = quick_xml::Reader::from_str(&xml);
    let (mut cases, mut failures, mut skipped, mut suites) = (Vec::new(), 0, 0, Vec::new());
    loop {
        match reader.read_event().unwrap() {
            Event::Eof => break,
            Event::Start(e) | Event::Empty(e) => {
                let attr = |name: &str| {
                    e.try_get_attribute(name).unwrap().map(|a| a.unescape_value().unwrap().into_owned())
                };
                match e.name().as_ref() {
                    b"testsuite" => suites.push(attr("name").unwrap()),
                    b"testcase" => cases.push(attr("name").unwrap()),
                    b"failure" => failures += 1,
                    b"skipped" => skipped += 1,
                    _ => {}
                }
            }
            _ => {}
        }
    }
    assert_eq!(cases.len(), outcome.checks.len(), "{xml}");
    assert_eq!((failures, skipped), (1, 2), "{xml}");
    assert_eq!(suites, ["a<b>&\"c\u{fffd}", "ok"]);
    assert!(cases[0].starts_with("reid:image#a<b>&\"c\u{fffd} rank_1"), "{:?}", cases[0]);
}
