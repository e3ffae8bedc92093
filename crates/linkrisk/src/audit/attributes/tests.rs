//! Tests of the attribute audit: stratification by re-identification, exclusions, skips,
//! settings, and probes cross-fitted within a test-only cohort.

use super::*;
use crate::audit::cross_fit::SideSource;
use crate::audit::test_cohort::{cohort, cohort_with_noise, test_only};

/// Brute-force nearest-neighbour re-identification within the eval split: a record is
/// re-identified when its most similar other record belongs to the same patient.
fn nearest_neighbour_flags(c: &Cohort, split: &str) -> Vec<Option<bool>> {
    let view = c.view("image").unwrap();
    let rows = c.metadata.rows_in_split(split).unwrap();
    let mut flags = vec![None; c.len()];
    for &q in &rows {
        let best = rows
            .iter()
            .filter(|&&g| g != q)
            .map(|&g| (g, view.row(q).iter().zip(view.row(g)).map(|(a, b)| a * b).sum::<f32>()))
            .max_by(|a, b| a.1.total_cmp(&b.1))
            .unwrap()
            .0;
        flags[q] = Some(c.metadata.patient[best] == c.metadata.patient[q]);
    }
    flags
}

#[test]
fn stratified_by_the_reid_audit_in_one_call() {
    // The re-identification audit's own flags (nearest neighbour, own study excluded:
    // here every record is its own study) equal the brute-force flags, and attributes
    // are predicted better on the re-identified records (paper 2).
    use crate::audit::reid::{Attackers, FlagSource, ReidConfig};
    let c = cohort_with_noise(700, 24, 0.4, 11, &|p| if p % 3 == 0 { 2.0 } else { 0.3 });
    let config =
        AttributesConfig { min_group_records: 30, targets: vec![Attribute::Sex], ..Default::default() };
    let reid = ReidConfig {
        attackers: Attackers::NearestNeighbour,
        split: "train".into(), // replaced by the eval split
        bootstrap_replicates: 0,
        ..ReidConfig::default()
    };
    let report = attributes_by_reid(&c, &config, &reid, &crate::engine::NoProgress).unwrap();
    let by_file = attributes(&c, &config, Some(&nearest_neighbour_flags(&c, "test"))).unwrap();
    assert_eq!(report.reidentification, by_file.reidentification);
    assert_eq!(report.attributes, by_file.attributes);
    match report.reidentification_source.as_ref().unwrap() {
        FlagSource::ReidAudit { attacker, split, n_queries, .. } => {
            assert_eq!((*attacker, split.as_str()), ("nearest-neighbour", "test"));
            assert_eq!(*n_queries, report.n_eval_records);
        }
        other => panic!("{other:?}"),
    }
    let s = report.attributes.0[0].1.stratified.as_ref().unwrap();
    assert!(s.reidentified.as_ref().unwrap().auroc > s.not_reidentified.as_ref().unwrap().auroc + 0.05);
    assert!(by_file.reidentification_source.is_none());
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["reidentification_source"]["kind"], "reid_audit");
}

#[test]
fn attributes_are_predicted_better_on_reidentified_records() {
    // Half of the patients are noisy: they are re-identified less often and their
    // attributes are harder to read, as in paper 2.
    let c = cohort_with_noise(700, 24, 0.4, 11, &|p| if p % 3 == 0 { 2.0 } else { 0.3 });
    let flags = nearest_neighbour_flags(&c, "test");
    let config = AttributesConfig { min_group_records: 30, ..Default::default() };
    let report = attributes(&c, &config, Some(&flags)).unwrap();
    let counts = report.reidentification.unwrap();
    assert!(counts.n_reidentified > 50 && counts.n_not_reidentified > 50, "{counts:?}");
    assert_eq!(counts.n_without_flag, 0);
    let sex = &report.attributes.0[0];
    assert_eq!(sex.0, "sex");
    assert_eq!(sex.1.kind, "binary");
    assert_eq!(sex.1.definition, "sex = F (vs M)");
    let s = sex.1.stratified.as_ref().unwrap();
    let (re, not) = (s.reidentified.as_ref().unwrap(), s.not_reidentified.as_ref().unwrap());
    let d = s.difference.unwrap();
    eprintln!(
        "sex AUROC re-identified {:.3} vs not {:.3}, p = {:.2e}; counts {counts:?}",
        re.auroc,
        not.auroc,
        s.difference.unwrap().p_value
    );
    assert!(re.auroc > not.auroc + 0.05, "{re:?} {not:?}");
    assert!((d.difference - (re.auroc - not.auroc)).abs() < 1e-15);
    assert!(d.p_value < 0.05 && d.method == "delong_independent", "{d:?}");
    assert_eq!(re.n_records + not.n_records, report.n_eval_records);
    // Race has a rare group (1%) excluded by --min-group; the rest is one-vs-rest.
    let race = &report.attributes.0[2].1;
    assert_eq!(race.kind, "one_vs_rest");
    assert_eq!(race.excluded_groups.len(), 1, "{race:#?}");
    assert_eq!(race.excluded_groups[0].group, "Other");
    assert_eq!(race.n_eval_small_group, race.excluded_groups[0].n_eval);
    let groups = race.groups.as_ref().unwrap();
    let mean = groups.0.iter().map(|(_, r)| r.auroc).sum::<f64>() / groups.0.len() as f64;
    assert!((mean - race.auroc).abs() < 1e-12);
    assert_eq!(race.stratified.as_ref().unwrap().difference.unwrap().method, "influence_independent");
    let age = &report.attributes.0[1].1;
    assert_eq!((age.threshold_years, age.definition.as_str()), (Some(65.0), "age >= 65 years"));
    assert!(age.auroc > 0.6, "{age:?}");
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["audit"], "attributes");
    assert!(json["attributes"]["sex"]["stratified"]["difference"]["p_value"].is_number());
    assert!(json["per_attribute"]["race"].is_number());
}

#[test]
fn missing_values_are_excluded_and_counted_and_skips_explained() {
    let mut c = cohort(300, 16, 1.5, 12);
    let age = c.metadata.age.as_mut().unwrap();
    for (i, a) in age.iter_mut().enumerate() {
        if i % 7 == 0 {
            *a = None;
        }
    }
    c.metadata.race = None;
    let config = AttributesConfig {
        targets: vec![Attribute::Age, Attribute::Race, Attribute::Sex],
        age_threshold: AgeThreshold::TrainMedian,
        min_group_records: 2,
        ..Default::default()
    };
    let report = attributes(&c, &config, None).unwrap();
    let (name, age) = &report.attributes.0[0];
    assert_eq!(name, "age");
    let train_rows = c.metadata.rows_in_split("train").unwrap();
    assert_eq!(age.n_train_missing, train_rows.iter().filter(|&&i| i % 7 == 0).count());
    let probe = age.probe.as_ref().unwrap();
    assert_eq!(probe.n_train_positive + probe.n_train_negative + age.n_train_missing, train_rows.len());
    // median split: balanced classes in train
    assert!((probe.n_train_positive as i64 - probe.n_train_negative as i64).abs() <= 3, "{probe:?}");
    assert!(age.stratified.is_none() && report.reidentification.is_none());
    assert_eq!(report.skipped.len(), 1);
    assert_eq!(report.skipped[0].attribute, "race");
    assert!(report.skipped[0].reason.contains("no `race` column"));
    // all groups too small
    let config =
        AttributesConfig { targets: vec![Attribute::Sex], min_group_records: 10_000, ..Default::default() };
    let report = attributes(&c, &config, None).unwrap();
    assert!(report.attributes.0.is_empty() && report.probe.is_none());
    assert!(report.skipped[0].reason.contains("fewer than two groups"), "{:?}", report.skipped);
}

#[test]
fn bad_settings_are_rejected() {
    assert!("height".parse::<Attribute>().unwrap_err().to_string().contains("--targets"));
    assert!("-3".parse::<AgeThreshold>().unwrap_err().to_string().contains("--age-threshold"));
    assert_eq!("median".parse::<AgeThreshold>().unwrap(), AgeThreshold::TrainMedian);
    let c = cohort(40, 8, 1.0, 13);
    let err = attributes(&c, &AttributesConfig::default(), Some(&[Some(true)])).unwrap_err().to_string();
    assert!(err.contains("1 re-identification flags"), "{err}");
    let config = AttributesConfig { min_group_records: 1, ..Default::default() };
    assert!(attributes(&c, &config, None).unwrap_err().to_string().contains("--min-group 1"));
}

#[test]
fn test_only_cohort_gets_cross_fitted_attribute_aurocs() {
    let c = test_only(cohort(400, 16, 1.5, 21));
    let config = AttributesConfig { min_group_records: 10, ..Default::default() };
    let report = attributes(&c, &config, None).unwrap();
    assert_eq!(report.side.source, "cross_fit");
    assert_eq!((report.train_split.as_str(), report.eval_split.as_str()), ("test", "test"));
    let sex = &report.attributes.0[0].1;
    assert!(sex.auroc > 0.75, "{sex:?}");
    let probe = sex.probe.as_ref().unwrap();
    let folds = probe.folds.as_ref().unwrap();
    assert_eq!(folds.len(), 5);
    // Every record scored once, by a probe that did not see it: the folds' scored records
    // add up to the split's labelled records, each probe trained on the others.
    let labelled = probe.n_eval_positive + probe.n_eval_negative;
    assert_eq!(folds.iter().map(|f| f.n_scored).sum::<usize>(), labelled);
    for f in folds {
        assert_eq!(f.n_train + f.n_scored, labelled, "{f:?}");
    }
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["side"]["source"], "cross_fit");
    assert_eq!(json["side"]["folds"], 5);
    // A cohort with a train split keeps it (and says so); `audited` cross-fits anyway.
    let c = cohort(400, 16, 1.5, 21);
    let split = attributes(&c, &config, None).unwrap();
    assert_eq!(split.side.source, "split train");
    let audited =
        attributes(&c, &AttributesConfig { side: SideSource::Audited, ..config.clone() }, None).unwrap();
    assert!(audited.side.is_cross_fit());
    // Strict `split` without the split: the old error.
    let strict = AttributesConfig { side: SideSource::Split, train_split: "training".into(), ..config };
    assert!(attributes(&c, &strict, None).unwrap_err().to_string().contains("--train-split training"));
}
