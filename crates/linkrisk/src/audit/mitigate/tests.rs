use std::sync::OnceLock;

use super::*;
use crate::audit::utility::utility_on_splits;
use crate::synth::{generate, SynthConfig};
use crate::train::set_aside_public;

/// A small synthetic cohort (600 + 200 external patients, 256-d features), shared by the
/// tests.
fn cohort() -> &'static Cohort {
    static COHORT: OnceLock<Cohort> = OnceLock::new();
    COHORT.get_or_init(|| {
        let config = SynthConfig {
            patients: 600,
            external_patients: 200,
            dim: 64,
            feature_dim: 256,
            seed: 11,
            ..SynthConfig::default()
        };
        generate(&config).unwrap().to_cohort().unwrap()
    })
}

/// A fast config for the small cohort: the default public warm start (a quarter of the
/// training patients), 64-d heads.
fn small(epsilons: Vec<f64>) -> MitigateConfig {
    let mut c = MitigateConfig::demo(1.0);
    c.epsilons = epsilons;
    c.delta = 1e-4;
    c.relink.pool_sizes = vec![100, REDUCTION_POOL];
    c.relink.trials = 2;
    c.utility.probe.n_folds = 3;
    c.utility.probe.lambda_grid = vec![1.0, 0.1, 0.01];
    c.baseline_views = Some(("image".into(), "report".into()));
    for t in [&mut c.non_private_training, &mut c.private_training, &mut c.public_training] {
        t.dim = 64;
        t.epochs = 30.0;
    }
    c.public_training.epochs = 150.0;
    c.non_private_training.batch_size = 64;
    c
}

#[test]
fn parse_epsilons_reads_numbers_and_inf_and_names_the_flag() {
    assert_eq!(parse_epsilons("0.34, 1,inf").unwrap(), vec![0.34, 1.0, f64::INFINITY]);
    assert_eq!(parse_epsilons("8,non-private").unwrap(), vec![8.0, f64::INFINITY]);
    let err = parse_epsilons("0.34,one,inf").unwrap_err().to_string();
    assert!(err.contains("--epsilons") && err.contains("`one`"), "{err}");
    let err = parse_epsilons("").unwrap_err().to_string();
    assert!(err.contains("--epsilons"), "{err}");
}

#[test]
fn invalid_configs_are_rejected_before_work_with_the_flag_named() {
    let cases: Vec<(MitigateConfig, &str)> = vec![
        (MitigateConfig { epsilons: vec![], ..MitigateConfig::default() }, "--epsilons"),
        (
            MitigateConfig { epsilons: vec![0.0, f64::INFINITY], ..MitigateConfig::default() },
            "positive number",
        ),
        (MitigateConfig { epsilons: vec![-1.0, f64::INFINITY], ..MitigateConfig::default() }, "--epsilons"),
        (
            MitigateConfig { epsilons: vec![f64::NAN, f64::INFINITY], ..MitigateConfig::default() },
            "--epsilons",
        ),
        (
            MitigateConfig { epsilons: vec![1.0, 1.0, f64::INFINITY], ..MitigateConfig::default() },
            "listed twice",
        ),
        (MitigateConfig { epsilons: vec![1.0, 8.0], ..MitigateConfig::default() }, "must include `inf`"),
        (MitigateConfig { delta: 0.0, ..MitigateConfig::default() }, "--delta"),
        (MitigateConfig { delta: 1.5, ..MitigateConfig::default() }, "--delta"),
        (MitigateConfig { delta: f64::NAN, ..MitigateConfig::default() }, "--delta"),
        (MitigateConfig { private_sample_rate: Some(1.5), ..MitigateConfig::default() }, "sample rate"),
        (
            MitigateConfig {
                splits: MitigateSplits { held_out: "train".into(), ..MitigateSplits::default() },
                ..MitigateConfig::default()
            },
            "both the members and the held-out",
        ),
        (
            MitigateConfig {
                init: HeadInit::PublicSplit { split: "test".into() },
                ..MitigateConfig::default()
            },
            "both the held-out and the warm-start",
        ),
    ];
    for (config, want) in cases {
        let err = config.validate().unwrap_err().to_string();
        assert!(err.contains(want), "want `{want}` in: {err}");
        // and mitigate() refuses it before touching the cohort
        let cohort = Cohort::from_parts("x", cohort().metadata.clone(), vec![]).unwrap();
        let err = run(&cohort, &config, &mut |_| Ok(())).unwrap_err().to_string();
        assert!(err.contains(want), "{err}");
    }
    let mut bad_epochs = MitigateConfig::default();
    bad_epochs.private_training.epochs = 0.0;
    assert!(bad_epochs.validate().unwrap_err().to_string().contains("--epochs"));
    assert!(MitigateConfig::default().validate().is_ok());
    assert!(MitigateConfig::demo(0.5).validate().is_ok());
}

#[test]
fn missing_splits_and_findings_are_named() {
    let config = MitigateConfig {
        splits: MitigateSplits { external: Some("site-b".into()), ..MitigateSplits::default() },
        ..small(vec![1.0, f64::INFINITY])
    };
    let err = run(cohort(), &config, &mut |_| Ok(())).unwrap_err().to_string();
    assert!(err.contains("--external-split site-b") && err.contains("train, test, external"), "{err}");
    let mut meta = cohort().metadata.clone();
    meta.findings = None;
    let nofindings = Cohort::from_parts("d", meta, cohort().views().cloned().collect()).unwrap();
    let err = run(&nofindings, &small(vec![1.0, f64::INFINITY]), &mut |_| Ok(())).unwrap_err().to_string();
    assert!(err.contains("metadata.csv") && err.contains("finding columns"), "{err}");
}

#[test]
fn private_heads_cut_relinkage_on_held_out_and_external_while_probe_utility_holds() {
    let config = small(vec![0.34, f64::INFINITY]);
    let mut stages = Vec::new();
    let mut heads_seen = Vec::new();
    let report = run(cohort(), &config, &mut |e| {
        match e {
            MitigateEvent::Stage { what } => stages.push(what),
            MitigateEvent::HeadsTrained { epsilon, heads, .. } => {
                heads_seen.push((epsilon, heads.ledger.dp_sgd, heads.ledger.private))
            }
            MitigateEvent::Training(_) | MitigateEvent::WarmStartTrained { .. } => {}
        }
        Ok(())
    })
    .unwrap();
    // DP-SGD at 0.34, but from the sweep's recorded seed: an evaluation, not a release.
    assert_eq!(heads_seen, vec![(0.34, true, false), (f64::INFINITY, false, false)]);
    assert!(stages.iter().any(|s| s.contains("audited model")), "{stages:?}");
    let (private, non_private) = (&report.points[0], &report.points[1]);
    assert_eq!(private.epsilon, Some(0.34));
    assert_eq!(non_private.epsilon, None);
    // the ledger spent what was asked
    let spent = private.privacy.epsilon.unwrap();
    assert!(spent <= 0.34 + 1e-6 && spent > 0.30, "{spent}");
    assert!(private.privacy.noise_multiplier > 1.0);
    assert_eq!(private.privacy.train_split, "train");
    assert!(!non_private.privacy.private);
    assert!(private.privacy.not_private_reason.as_deref().is_some_and(|r| r.contains("recorded seed")));

    // A quarter of the training patients were set aside as public data; the rest are the
    // members every point trains on, and both points start from the public heads.
    let train_patients = {
        let meta = &cohort().metadata;
        let mut p: Vec<u32> = meta.rows_in_split("train").unwrap().iter().map(|&i| meta.patient[i]).collect();
        p.sort_unstable();
        p.dedup();
        p.len()
    };
    let warm = report.warm_start.as_ref().unwrap();
    let public_patients = warm.privacy.as_ref().unwrap().train_patients;
    assert_eq!(report.public_split.as_deref(), Some(PUBLIC_SPLIT));
    assert_eq!(public_patients, (0.25 * train_patients as f64).round() as usize);
    for p in &report.points {
        assert_eq!(p.privacy.train_patients, train_patients - public_patients);
        assert!(
            matches!(&p.privacy.initialisation, train::Initialisation::WarmStart { split, private: false, .. } if split == PUBLIC_SPLIT),
            "{:?}",
            p.privacy.initialisation
        );
    }

    // Every subset is smaller than 10,000 records: the reduction is at N = 100, and the
    // skipped pools are listed.
    for (name, s) in private.relink.iter() {
        assert_eq!(s.reduction_pool_size, Some(100), "{name}");
        assert!(
            s.report
                .forward
                .skipped_pools
                .iter()
                .any(|p| p.pool_size == REDUCTION_POOL && p.kind == "random"),
            "{name}: {:?}",
            s.report.forward.skipped_pools
        );
        let kinds: Vec<&str> = s.report.forward.pools.iter().map(|p| p.kind).collect();
        assert_eq!(kinds, vec!["random", "pathology_matched"], "{name}");
    }
    let r1 = |p: &MitigatePoint, subset: &str| -> f64 {
        let s = p.relink.iter().find(|(n, _)| *n == subset).unwrap().1;
        s.report.forward.pools.iter().find(|p| p.pool_size == 100 && p.kind == "random").unwrap().recall_at_1
    };
    for subset in ["members", "held_out", "external"] {
        let (before, after) = (r1(non_private, subset), r1(private, subset));
        // non-private heads link far above chance (0.01), private heads much less
        assert!(before > 0.15, "{subset}: non-private R@1 {before}");
        let reduction =
            private.relink.iter().find(|(n, _)| *n == subset).unwrap().1.relative_reduction.unwrap();
        assert!((reduction - (1.0 - after / before)).abs() < 1e-12);
        assert!(reduction > 0.5, "{subset}: R@1 {before} -> {after}, reduction {reduction}");
        let row = report
            .reductions
            .iter()
            .find(|r| r.cohort == subset && r.kind == "random" && r.pool_size == Some(100))
            .unwrap();
        assert_eq!((row.recall_at_1, row.non_private_recall_at_1), (after, before));
        assert!(
            (row.relative_reduction_above_chance - (1.0 - (after - 0.01) / (before - 0.01))).abs() < 1e-12
        );
    }
    assert!(non_private.relink.members.relative_reduction.is_none());
    // Non-private heads memorise their members; under DP a member is linked about as well
    // as a held-out patient, close to what the public warm start already gives.
    assert!(r1(non_private, "members") > 0.9);
    // The frontier is not flat: between epsilon 0.34 and inf Recall@1 moves by far more than
    // its sampling noise (the relink audit's 95% intervals, as standard errors).
    let se = |p: &MitigatePoint, subset: &str| -> f64 {
        let s = p.relink.iter().find(|(n, _)| *n == subset).unwrap().1;
        let ci = s
            .report
            .forward
            .pools
            .iter()
            .find(|p| p.pool_size == 100 && p.kind == "random")
            .unwrap()
            .ci95_recall_at_1;
        (ci[1] - ci[0]) / (2.0 * 1.96)
    };
    for subset in ["members", "held_out", "external"] {
        let gap = (r1(non_private, subset) - r1(private, subset)).abs();
        let noise = (se(non_private, subset).powi(2) + se(private, subset).powi(2)).sqrt();
        assert!(gap > 3.0 * noise, "{subset}: gap {gap}, noise {noise}");
    }
    assert!(r1(private, "members") < 0.5 * r1(non_private, "held_out"));
    let warm_held_out = warm.relink.held_out.report.forward.pools[0].recall_at_1;
    assert!((r1(private, "held_out") - warm_held_out).abs() < 0.25 * r1(non_private, "held_out"));

    // Image-side probe utility drops by at most a few points, on held-out and external.
    let (u0, u1) = (non_private.utility.macro_auroc.unwrap(), private.utility.macro_auroc.unwrap());
    assert!(u0 > 0.65, "non-private probe utility {u0}");
    assert!(u1 > u0 - 0.05, "probe utility {u0} -> {u1}");
    let (x0, x1) =
        (non_private.utility.external_macro_auroc.unwrap(), private.utility.external_macro_auroc.unwrap());
    assert!(x1 > x0 - 0.05, "external probe utility {x0} -> {x1}");
    assert!((private.utility.change_vs_non_private.unwrap() - (u1 - u0)).abs() < 1e-12);
    // Cross-modal utility needs aligned heads: the non-private heads have it.
    assert!(non_private.utility.cross_modal_macro_auroc.unwrap() > 0.6);

    // The baseline (the cohort's own views) is a reference, not a point.
    let baseline = report.baseline.as_ref().unwrap();
    assert_eq!(baseline.views, ["image".to_string(), "report".to_string()]);
    assert!(baseline.relink.held_out.relative_reduction.is_none());

    // The audited model is the baseline of every comparison: per subset, per head row.
    assert!(report.baseline_skipped.is_none());
    let audited_r1 = |subset: &str| -> f64 {
        let s = baseline.relink.iter().find(|(n, _)| *n == subset).unwrap().1;
        s.report.forward.pools.iter().find(|p| p.pool_size == 100 && p.kind == "random").unwrap().recall_at_1
    };
    for (name, s) in private.relink.iter() {
        let want = 1.0 - r1(private, name) / audited_r1(name);
        assert!((s.relative_reduction_vs_audited.unwrap() - want).abs() < 1e-12, "{name}");
    }
    assert!(warm.relink.held_out.relative_reduction_vs_audited.is_some());
    assert!(baseline.relink.held_out.relative_reduction_vs_audited.is_none());
    let audited_u = baseline.utility.macro_auroc.unwrap();
    assert!((private.utility.change_vs_audited.unwrap() - (u1 - audited_u)).abs() < 1e-12);
    for (cohort, table) in report.frontier.iter() {
        let heads: Vec<&str> = table.rows.iter().map(|r| r.heads).collect();
        assert_eq!(heads, ["audited", "warm_start", "non_private", "dp"], "{cohort}");
        assert_eq!((table.reference, table.pool_size), ("audited", Some(100)));
        let a = audited_r1(cohort);
        assert_eq!(table.rows[0].recall_at_1_at_pool, Some(a));
        assert!(table.rows[0].relative_reduction_vs_audited.is_none());
        let dp = &table.rows[3];
        let r = r1(private, cohort);
        assert_eq!((dp.epsilon, dp.recall_at_1_at_pool), (Some(0.34), Some(r)));
        assert!((dp.relative_reduction_vs_audited.unwrap() - (1.0 - r / a)).abs() < 1e-12);
        assert_eq!(dp.links_more_than_audited, Some(r > a));
        assert_eq!(dp.recall_at_1[0].pool_size, 100);
        match cohort {
            "members" => assert!(dp.macro_auroc.is_none()),
            "held_out" => assert_eq!(dp.macro_auroc, private.utility.macro_auroc),
            _ => assert_eq!(dp.macro_auroc, private.utility.external_macro_auroc),
        }
    }
    let headline = report.headline.as_ref().unwrap();
    assert_eq!((headline.cohort, headline.reference, headline.epsilon), ("held_out", "audited", 0.34));
    assert_eq!(
        (headline.recall_at_1, headline.reference_recall_at_1),
        (r1(private, "held_out"), audited_r1("held_out"))
    );
    assert!(report.reductions.iter().all(|r| r.audited_recall_at_1.is_some()));

    // The summary lines state the change relative to the audited model, and say in words
    // where DP heads link more than it.
    let lines = summary_lines(&report);
    assert!(lines[0].contains("against the audited model"), "{lines:?}");
    let held = lines.iter().find(|l| l.contains("held-out") && l.contains("Recall@1")).unwrap();
    assert!(held.contains(&format!("audited {:.4}", audited_r1("held_out"))), "{held}");
    assert!(held.contains(&format!("eps 0.34 {:.4}", r1(private, "held_out"))), "{held}");
    let more = |r: &MitigateReport| summary_lines(r).iter().filter(|l| l.contains("link MORE")).count();
    let real_more =
        report.frontier.iter().filter(|(_, t)| t.rows[3].links_more_than_audited == Some(true)).count();
    assert_eq!(more(&report), real_more);
    let mut flipped = report.clone();
    let held_out_more = report.frontier.held_out.rows[3].links_more_than_audited.unwrap();
    flipped.frontier.held_out.rows[3].links_more_than_audited = Some(!held_out_more);
    assert_ne!(more(&flipped), real_more);

    // JSON keys: the interface the report reads.
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["audit"], "mitigate");
    assert_eq!(json["points"][0]["epsilon"], 0.34);
    assert!(json["points"][1]["epsilon"].is_null(), "non-private epsilon is null");
    assert_eq!(json["points"][1]["epsilon_label"], "inf");
    for subset in ["members", "held_out", "external"] {
        let s = &json["points"][0]["relink"][subset];
        assert_eq!(s["audit"], "relink");
        assert!(s["pools"][0]["recall_at_1"].is_f64() && s["full"]["recall_at_1"].is_f64());
        assert!(s["relative_reduction"].is_f64());
        assert_eq!(s["reduction_pool_size"], 100);
    }
    assert!(json["points"][0]["utility"]["macro_auroc"].is_f64());
    assert!(json["points"][0]["utility"]["held_out"]["per_finding"]["Cardiomegaly"].is_f64());
    assert_eq!(json["points"][0]["privacy"]["privacy_unit"], "patient");
    assert_eq!(json["points"][0]["privacy"]["initialisation"]["kind"], "warm_start");
    assert_eq!(json["init"]["kind"], "public_fraction");
    assert_eq!(json["init"]["fraction"], 0.25);
    assert!(json["baseline"]["relink"]["held_out"]["pools"].is_array());
    assert!(json["reductions"].as_array().unwrap().len() >= 9);
    assert!(json["utility_changes"][0]["change"].is_f64());

    // The report reader sees the frontier: three cohorts per point, utility, reduction.
    let run: crate::report::RunFile = serde_json::from_value(serde_json::json!({
        "linkrisk_version": "test", "created_unix": 0,
        "runs": [{"command": [], "started_unix": 0, "seconds": 0.0, "audit": json}]
    }))
    .unwrap();
    let model = crate::report::ReportModel::from_run(&run);
    let m = &model.mitigate[0];
    assert_eq!(m.points.len(), 2);
    assert_eq!(m.points[0].cohorts.len(), 3);
    assert_eq!(m.points[0].utility_macro_auroc.unwrap().value, u1);
}

/// The shared cohort with the training records `moves(metadata, row)` picks moved to a new
/// split `public`.
fn with_public(moves: &mut dyn FnMut(&crate::cohort::Metadata, usize) -> bool) -> Cohort {
    let base = cohort();
    let mut meta = base.metadata.clone();
    let public = meta.split_names.len() as u16;
    meta.split_names.push("public".into());
    let train = meta.split_index("train").unwrap();
    for i in 0..meta.len() {
        if meta.split[i] == train && moves(&meta, i) {
            meta.split[i] = public;
        }
    }
    Cohort::from_parts("d", meta, base.views().cloned().collect()).unwrap()
}

#[test]
fn warm_start_from_a_public_split_starts_every_point_there() {
    // A third of the training patients, whole, form the split `public`.
    let c = with_public(&mut |meta, i| meta.patient[i] % 3 == 0);
    let mut config = small(vec![0.5, f64::INFINITY]);
    config.init = HeadInit::PublicSplit { split: "public".into() };
    config.baseline_views = None;
    let report = run(&c, &config, &mut |_| Ok(())).unwrap();
    let warm = report.warm_start.as_ref().unwrap();
    let warm_ledger = warm.privacy.as_ref().unwrap();
    assert_eq!(warm_ledger.train_split, "public");
    assert!(!warm_ledger.private);
    for p in &report.points {
        match &p.privacy.initialisation {
            train::Initialisation::WarmStart { split, private, patients, .. } => {
                assert_eq!(split, "public");
                assert!(!private);
                assert_eq!(*patients, warm_ledger.train_patients);
            }
            other => panic!("{other:?}"),
        }
    }
    // The warm start already links held-out records (it learned the alignment from public
    // patients); DP fine-tuning at small epsilon stays near it.
    let r1 =
        |s: &SubsetRelink| s.report.forward.pools.iter().find(|p| p.kind == "random").unwrap().recall_at_1;
    let warm_r1 = r1(&warm.relink.held_out);
    let private_r1 = r1(&report.points[0].relink.held_out);
    let non_private_r1 = r1(&report.points[1].relink.held_out);
    assert!(warm_r1 > 0.02, "{warm_r1}");
    assert!(non_private_r1 > 2.0 * warm_r1, "{warm_r1} -> {non_private_r1}");
    assert!((private_r1 - warm_r1).abs() < 0.25 * non_private_r1, "{warm_r1} -> {private_r1}");
    assert!(report.public_split.as_deref() == Some("public"));
    assert_eq!(serde_json::to_value(&report).unwrap()["init"]["kind"], "public_split");
}

#[test]
fn public_fraction_sets_patients_aside_by_seed_and_refuses_a_clash() {
    let base = cohort();
    let a = set_aside_public(base, "train", 0.25, 7).unwrap();
    let b = set_aside_public(base, "train", 0.25, 7).unwrap();
    let c = set_aside_public(base, "train", 0.25, 8).unwrap();
    let public_patients = |co: &Cohort| {
        let m = &co.metadata;
        let mut p: Vec<u32> = m.rows_in_split(PUBLIC_SPLIT).unwrap().iter().map(|&i| m.patient[i]).collect();
        p.dedup();
        p
    };
    assert_eq!(public_patients(&a), public_patients(&b));
    assert_ne!(public_patients(&a), public_patients(&c));
    let meta = &a.metadata;
    // Whole patients move, only from the members split; the other splits are untouched.
    for i in 0..meta.len() {
        let was = &base.metadata.split_names[base.metadata.split[i] as usize];
        let now = &meta.split_names[meta.split[i] as usize];
        if now != was {
            assert_eq!((was.as_str(), now.as_str()), ("train", PUBLIC_SPLIT));
        }
    }
    let mut by_patient = std::collections::HashMap::new();
    for i in 0..meta.len() {
        assert_eq!(*by_patient.entry(meta.patient[i]).or_insert(meta.split[i]), meta.split[i]);
    }
    let err = set_aside_public(&a, "train", 0.25, 1).unwrap_err().to_string();
    assert!(err.contains("--warm-start-split"), "{err}");
    let err = set_aside_public(base, "train", 0.999, 1).unwrap_err().to_string();
    assert!(err.contains("--public-fraction"), "{err}");
    let bad =
        MitigateConfig { init: HeadInit::PublicFraction { fraction: 1.0 }, ..MitigateConfig::default() };
    assert!(bad.validate().unwrap_err().to_string().contains("--public-fraction"));
}

#[test]
fn utility_on_several_splits_equals_one_audit_per_split() {
    use crate::audit::utility::utility;
    let mut config = UtilityConfig { view: "image".into(), ..UtilityConfig::default() };
    config.probe.n_folds = 3;
    config.probe.lambda_grid = vec![1.0, 0.1];
    let both = utility_on_splits(cohort(), &config, &["test", "external"]).unwrap();
    assert_eq!(both.len(), 2);
    for (report, split) in both.iter().zip(["test", "external"]) {
        let single =
            utility(cohort(), &UtilityConfig { eval_split: split.into(), ..config.clone() }).unwrap();
        assert_eq!(report.eval_split, split);
        assert_eq!(report.macro_auroc, single.macro_auroc, "{split}");
        assert_eq!(report.ci95_macro_auroc, single.ci95_macro_auroc, "{split}");
        assert_eq!(report.per_finding, single.per_finding, "{split}");
        assert_eq!(report.skipped.len(), single.skipped.len(), "{split}");
    }
    assert!(utility_on_splits(cohort(), &config, &[]).unwrap_err().to_string().contains("--eval-split"));
}

#[test]
fn a_warm_start_split_sharing_patients_with_the_members_is_refused() {
    // The first record of every third training patient moves to `public`; the patients
    // with more records keep the others in `train`: they are warm-start and member patients.
    let mut first_of_patient = std::collections::HashSet::new();
    let c = with_public(&mut |meta, i| meta.patient[i] % 3 == 0 && first_of_patient.insert(meta.patient[i]));
    let meta = &c.metadata;
    let (public, train) = (meta.split_index("public").unwrap(), meta.split_index("train").unwrap());
    let in_split = |s: u16| -> std::collections::HashSet<u32> {
        (0..meta.len()).filter(|&i| meta.split[i] == s).map(|i| meta.patient[i]).collect()
    };
    let n_shared = in_split(public).intersection(&in_split(train)).count();
    assert!(n_shared > 10, "{n_shared}");
    let mut config = small(vec![1.0, f64::INFINITY]);
    config.init = HeadInit::PublicSplit { split: "public".into() };
    let err = run(&c, &config, &mut |_| Ok(())).unwrap_err();
    assert!(matches!(err, Error::Input { .. }), "{err:?}");
    let text = err.to_string();
    assert!(
        text.contains("--warm-start-split public") && text.contains(&format!("{n_shared} of the")),
        "{text}"
    );
    assert!(text.contains("metadata.csv"), "{text}");
}
