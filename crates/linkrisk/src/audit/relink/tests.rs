//! Relink audit tests on small in-memory cohorts.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

use super::*;
use crate::cohort::metadata::MetadataBuilder;
use crate::cohort::{Label, View, N_FINDINGS};
use crate::engine::NoProgress;

/// A small in-memory cohort with known structure (until `synth` lands): patients with
/// 1-3 studies of 1-2 records; records of one study share one report vector; image and
/// report share a findings component (the "disease shortcut") and, scaled by `signal`,
/// a per-study instance component (what re-linkage exploits).
fn cohort(seed: u64, n_patients: usize, dim: usize, signal: f32) -> Cohort {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let normal = |rng: &mut ChaCha8Rng| -> f32 { StandardNormal.sample(rng) };
    let finding_axes: Vec<Vec<f32>> =
        (0..N_FINDINGS).map(|_| (0..dim).map(|_| normal(&mut rng)).collect()).collect();
    let mut b = MetadataBuilder {
        study_ids: Some(Vec::new()),
        splits: Some(Vec::new()),
        findings: Some(Vec::new()),
        sex: Some(Vec::new()),
        ..Default::default()
    };
    let (mut image, mut report) = (Vec::new(), Vec::new());
    for p in 0..n_patients {
        let sex = if rng.random_bool(0.5) { "F" } else { "M" };
        let split = if rng.random_bool(0.8) { "test" } else { "train" };
        for s in 0..rng.random_range(1..4) {
            // Findings: a few common patterns so pathology-matched pools have exact matches.
            let pattern = rng.random_range(0..6u32);
            let labels: [Label; N_FINDINGS] = std::array::from_fn(|k| {
                if (pattern >> (k % 3)) & 1 == 1 && k < 6 {
                    Label::Positive
                } else {
                    Label::Negative
                }
            });
            let shared: Vec<f32> = (0..dim)
                .map(|j| {
                    (0..N_FINDINGS)
                        .filter(|&k| labels[k] == Label::Positive)
                        .map(|k| finding_axes[k][j])
                        .sum::<f32>()
                })
                .collect();
            let instance: Vec<f32> = (0..dim).map(|_| normal(&mut rng)).collect();
            let report_row: Vec<f32> =
                (0..dim).map(|j| shared[j] + signal * instance[j] + normal(&mut rng)).collect();
            for r in 0..rng.random_range(1..3) {
                b.ids.push(format!("p{p}s{s}r{r}"));
                b.patient_ids.push(format!("p{p}"));
                b.study_ids.as_mut().unwrap().push(format!("s{s}"));
                b.splits.as_mut().unwrap().push(split.to_string());
                b.findings.as_mut().unwrap().push(labels);
                b.sex.as_mut().unwrap().push(Some(sex.to_string()));
                image.extend((0..dim).map(|j| shared[j] + signal * instance[j] + normal(&mut rng)));
                report.extend_from_slice(&report_row);
            }
        }
    }
    let meta = b.build(std::path::Path::new("<test>"), 0).unwrap();
    let n = meta.len();
    let views = vec![
        View::from_memory("image", n, dim, image).unwrap(),
        View::from_memory("report", n, dim, report).unwrap(),
    ];
    Cohort::from_parts("<test>", meta, views).unwrap()
}

fn config(pool_sizes: Vec<usize>) -> RelinkConfig {
    RelinkConfig { pool_sizes, trials: 10, bootstrap_replicates: 200, ..RelinkConfig::default() }
}

#[test]
fn recall_rises_with_instance_signal() {
    let mut last = -1.0;
    for signal in [0.0f32, 0.5, 1.0, 2.0] {
        let c = cohort(1, 150, 24, signal);
        let r = relink(&c, &config(vec![10]), &NoProgress).unwrap();
        let full = &r.forward.full;
        assert!(full.recall_at_1 > last, "signal {signal}: {} after {last}", full.recall_at_1);
        last = full.recall_at_1;
        assert!(full.ci95_recall_at_1[0] <= full.recall_at_1 && full.recall_at_1 <= full.ci95_recall_at_1[1]);
        let boot = full.bootstrap_ci95_recall_at_1.unwrap();
        assert!(boot[0] <= full.recall_at_1 && full.recall_at_1 <= boot[1]);
        // Records of a study share a report: study-level matching excludes the twins.
        assert!(r.forward.exclusions.excluded_same_study > 0);
    }
    assert!(last > 0.5, "strong signal should link most records, got {last}");
}

#[test]
fn pathology_matched_pools_lower_recall_and_lift_grows_with_pool_size() {
    let c = cohort(2, 400, 32, 0.6);
    let cfg = RelinkConfig { hard_negatives: true, ..config(vec![2, 10, 50, 5000]) };
    let r = relink(&c, &cfg, &NoProgress).unwrap();
    let d = &r.forward;
    let pool =
        |size: usize, kind: &str| d.pools.iter().find(|p| p.pool_size == size && p.kind == kind).unwrap();
    let mut last_lift = 0.0;
    for size in [2, 10, 50] {
        let random = pool(size, "random");
        let matched = pool(size, "pathology_matched");
        assert!(random.lift_at_1 > last_lift, "lift should grow with pool size");
        last_lift = random.lift_at_1;
        // Same-findings negatives are harder, but the instance signal survives them.
        assert!(matched.recall_at_1 < random.recall_at_1, "size {size}");
        assert!(matched.recall_at_1 > matched.chance_at_1 * 1.5, "size {size}");
        assert!(matched.exact_match_fraction.unwrap() > 0.5);
        // Monte-Carlo pools agree with the exact expectation within their interval.
        for p in [random, matched] {
            let half = (p.ci95_recall_at_1[1] - p.ci95_recall_at_1[0]) / 2.0;
            assert!((p.recall_at_1 - p.expected_recall_at_1).abs() < half, "{p:?}");
        }
    }
    assert!(last_lift < d.full.lift_at_1, "the full database has the largest lift");
    // The pool larger than the split is skipped, with a note, for both kinds.
    assert_eq!(d.skipped_pools.iter().filter(|s| s.pool_size == 5000).count(), 2);
    assert!(d.subgroups.iter().any(|s| s.attribute == "sex" && s.value == "F"));
    // The exact curve falls with pool size and stays above the full-database recall.
    let curve = &d.expected_recall_curve;
    assert!(curve.len() > 4 && curve[0].pool_size == 2);
    assert!(curve.windows(2).all(|w| w[1].expected_recall_at_1 <= w[0].expected_recall_at_1 + 1e-12));
    assert!(curve.last().unwrap().expected_recall_at_1 >= d.full.recall_at_1 - 1e-12);
    let at_10 = curve.iter().find(|p| p.pool_size == 10).unwrap();
    assert!((at_10.expected_recall_at_1 - pool(10, "random").expected_recall_at_1).abs() < 1e-12);
}

#[test]
fn patient_level_matching_is_at_least_study_level_and_both_directions_run() {
    let c = cohort(3, 120, 16, 0.8);
    let study = relink(&c, &config(vec![10]), &NoProgress).unwrap();
    let cfg =
        RelinkConfig { match_level: MatchLevel::Patient, direction: Direction::Both, ..config(vec![10]) };
    let patient = relink(&c, &cfg, &NoProgress).unwrap();
    assert!(patient.forward.full.recall_at_1 >= study.forward.full.recall_at_1);
    assert!(patient.forward.exclusions.extra_positives > 0);
    let reverse = patient.reverse.as_ref().unwrap();
    assert_eq!((reverse.query_view.as_str(), reverse.gallery_view.as_str()), ("report", "image"));
    assert_eq!(reverse.n_queries, patient.forward.n_queries);
}

#[test]
fn bad_configurations_are_rejected_with_the_flag_named() {
    let c = cohort(4, 20, 8, 1.0);
    let err = |cfg: RelinkConfig| relink(&c, &cfg, &NoProgress).unwrap_err().to_string();
    let same = RelinkConfig { gallery_view: "image".into(), ..RelinkConfig::default() };
    assert!(err(same).contains("--query and --gallery"));
    assert!(err(RelinkConfig { trials: 0, ..RelinkConfig::default() }).contains("--trials"));
    assert!(err(config(vec![1])).contains("--pools"));
    let e = err(config(vec![100_000]));
    assert!(e.contains("--pools") && e.contains("exceeds"), "{e}");
    let e = err(RelinkConfig { split: Some("validation".into()), ..RelinkConfig::default() });
    assert!(e.contains("validation") && e.contains("test"), "{e}");
    let e = err(RelinkConfig { gallery_view: "text".into(), ..RelinkConfig::default() });
    assert!(e.contains("text") && e.contains("report"), "{e}");
}

/// The default audit ranks every pair once: the cosine attack and its control ride on the
/// audit's own pass. The report must be byte for byte the one from a separate attack pass
/// (both directions, study- and patient-level targets, an attack list that adds assignment
/// and one whose cosine pass gathers statistics and so always runs its own).
#[test]
fn cosine_attack_on_the_audit_pass_gives_the_same_report_as_its_own_pass() {
    use crate::attack::{AttackConfig, AttackName};
    let c = cohort(5, 90, 12, 0.7);
    let attacks = [
        vec![AttackName::Cosine],
        vec![AttackName::Cosine, AttackName::Assignment],
        vec![AttackName::Cosine, AttackName::Csls],
    ];
    for (i, list) in attacks.into_iter().enumerate() {
        let cfg = RelinkConfig {
            direction: Direction::Both,
            match_level: if i == 1 { MatchLevel::Patient } else { MatchLevel::Study },
            attack: Some(AttackConfig { attacks: list, ..AttackConfig::default() }),
            seed: 11 + i as u64,
            ..config(vec![10, 50])
        };
        let fused = relink_fused(&c, &cfg, true, &NoProgress).unwrap();
        let separate = relink_fused(&c, &cfg, false, &NoProgress).unwrap();
        let json = |r: &RelinkReport| serde_json::to_string(r).unwrap();
        assert_eq!(json(&fused), json(&separate), "attack list {i}");
        let comparison = fused.forward.attack_comparison.as_ref().unwrap();
        assert!(comparison.attacks.iter().any(|r| r.name == "cosine" && r.recall_at_1 > 0.0));
    }
}
