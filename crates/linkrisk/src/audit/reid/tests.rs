//! Tests of the re-identification audit: every per-query figure against an O(n^2) brute
//! force that enumerates tie orders; the trained attacker against nearest neighbour on a
//! synthetic cohort; configuration errors.

use std::path::Path;

use proptest::prelude::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::*;
use crate::audit::cross_fit::SideSource;
use crate::cohort::metadata::MetadataBuilder;
use crate::cohort::View;
use crate::engine::NoProgress;
use crate::synth::{generate, SynthConfig};

/// Unit vectors whose dot products are exact in f32 in any summation order (±e_i, or four
/// entries of ±0.5): scores are multiples of 1/4, so ties are exact and a brute force in
/// f64 sees the engine's order.
fn grid_vector(rng: &mut ChaCha8Rng, dim: usize) -> Vec<f32> {
    let mut v = vec![0f32; dim];
    if rng.random_bool(0.3) {
        v[rng.random_range(0..dim)] = if rng.random_bool(0.5) { 1.0 } else { -1.0 };
    } else {
        for i in rand::seq::index::sample(rng, dim, 4).iter() {
            v[i] = if rng.random_bool(0.5) { 0.5 } else { -0.5 };
        }
    }
    v
}

/// A small cohort of grid vectors from a palette (many exact duplicates and ties): patients
/// with 1-3 studies of 1-2 records, mostly in `test`, some in `train`.
fn grid_cohort(seed: u64) -> Cohort {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let dim = rng.random_range(4..8);
    let palette: Vec<Vec<f32>> = (0..rng.random_range(2..14)).map(|_| grid_vector(&mut rng, dim)).collect();
    let mut b =
        MetadataBuilder { study_ids: Some(Vec::new()), splits: Some(Vec::new()), ..Default::default() };
    let mut data = Vec::new();
    let n_patients = rng.random_range(2..7);
    'patients: for p in 0..n_patients {
        let split = if rng.random_bool(0.8) { "test" } else { "train" };
        for s in 0..rng.random_range(1..4) {
            for r in 0..rng.random_range(1..3) {
                if b.ids.len() == 20 {
                    break 'patients;
                }
                b.ids.push(format!("p{p}s{s}r{r}"));
                b.patient_ids.push(format!("p{p}"));
                b.study_ids.as_mut().unwrap().push(format!("s{s}"));
                b.splits.as_mut().unwrap().push(split.into());
                data.extend(palette[rng.random_range(0..palette.len())].iter());
            }
        }
    }
    // Make sure the test split exists.
    b.splits.as_mut().unwrap()[0] = "test".into();
    let meta = b.build(Path::new("<grid>"), 0).unwrap();
    let n = meta.len();
    Cohort::from_parts("<grid>", meta, vec![View::from_memory("image", n, dim, data).unwrap()]).unwrap()
}

/// Every placement of `c` positives among `m` tied slots.
fn placements(m: usize, c: usize) -> Vec<Vec<bool>> {
    (0u64..(1 << m))
        .filter(|mask| mask.count_ones() as usize == c)
        .map(|mask| (0..m).map(|i| mask & (1 << i) != 0).collect())
        .collect()
}

/// Brute force for one query: (score, positive) of every gallery item it ranks.
struct Brute {
    rank_1: f64,
    cmc: Vec<f64>,
    average_precision: f64,
    greater: u64,
    tied_negatives: u64,
    tied_positives: u64,
}

fn brute_query(items: &[(f64, bool)], max_rank: usize) -> Brute {
    // Tie groups, best first: (c positives, t negatives).
    let mut scores: Vec<f64> = items.iter().map(|i| i.0).collect();
    scores.sort_by(|a, b| b.total_cmp(a));
    scores.dedup();
    let groups: Vec<(usize, usize)> = scores
        .iter()
        .map(|&s| {
            let c = items.iter().filter(|i| i.0 == s && i.1).count();
            let t = items.iter().filter(|i| i.0 == s && !i.1).count();
            (c, t)
        })
        .collect();
    // First positive: its group and the items above it.
    let first = groups.iter().position(|g| g.0 > 0).unwrap();
    let above: usize = groups[..first].iter().map(|g| g.0 + g.1).sum();
    let (c, t) = groups[first];
    let orders = placements(c + t, c);
    let cmc: Vec<f64> = (1..=max_rank)
        .map(|k| {
            orders.iter().filter(|o| above + o.iter().position(|&p| p).unwrap() < k).count() as f64
                / orders.len() as f64
        })
        .collect();
    // AP: expected per-group sums of precision (linearity of expectation over groups).
    let total_positives: usize = groups.iter().map(|g| g.0).sum();
    let (mut before, mut positives_before, mut ap) = (0usize, 0usize, 0.0);
    for &(c, t) in &groups {
        if c > 0 {
            let orders = placements(c + t, c);
            let mut sum = 0.0;
            for o in &orders {
                let mut hits = positives_before;
                for (x, &p) in o.iter().enumerate() {
                    if p {
                        hits += 1;
                        sum += hits as f64 / (before + x + 1) as f64;
                    }
                }
            }
            ap += sum / orders.len() as f64;
        }
        before += c + t;
        positives_before += c;
    }
    Brute {
        rank_1: cmc[0],
        cmc,
        average_precision: ap / total_positives as f64,
        greater: groups[..first].iter().map(|g| g.1 as u64).sum(),
        tied_negatives: t as u64,
        tied_positives: c as u64,
    }
}

fn dot(a: &[f32], b: &[f32]) -> f64 {
    a.iter().zip(b).map(|(x, y)| f64::from(*x) * f64::from(*y)).sum()
}

fn nn_config(include_same_study: bool) -> ReidConfig {
    ReidConfig {
        attackers: Attackers::NearestNeighbour,
        include_same_study,
        negatives_per_query: 1000,
        bootstrap_replicates: 20,
        ..ReidConfig::default()
    }
}

fn check_against_brute_force(seed: u64, include_same_study: bool) -> std::result::Result<(), TestCaseError> {
    let cohort = grid_cohort(seed);
    let meta = &cohort.metadata;
    let view = cohort.view("image").unwrap();
    let records = meta.rows_in_split("test").unwrap();
    let config = nn_config(include_same_study);
    // Brute-force queries: records with a same-patient record of another study (or any
    // other record of the patient with include_same_study).
    let positive = |q: usize, g: usize| {
        meta.patient[q] == meta.patient[g] && (include_same_study || meta.study[q] != meta.study[g])
    };
    let excluded = |q: usize, g: usize| g == q || (!include_same_study && meta.study[q] == meta.study[g]);
    let queries: Vec<usize> =
        records.iter().copied().filter(|&q| records.iter().any(|&g| g != q && positive(q, g))).collect();
    let result = reid(&cohort, &config, &NoProgress);
    if queries.is_empty() {
        let err = result.unwrap_err().to_string();
        prop_assert!(err.contains("--split test"), "{}", err);
        return Ok(());
    }
    let report = result.unwrap();
    let figures = &report.headline;
    prop_assert_eq!(figures.n_queries, queries.len());
    prop_assert_eq!(report.exclusions.records_not_queried, records.len() - queries.len());
    prop_assert_eq!(figures.n_gallery, records.len() - 1);
    let (mut pos_scores, mut neg_scores) = (Vec::new(), Vec::new());
    let (mut sum_r1, mut sum_ap) = (0.0, 0.0);
    let mut sum_cmc = vec![0.0; config.max_cmc_rank];
    for (i, &q) in queries.iter().enumerate() {
        let items: Vec<(f64, bool)> = records
            .iter()
            .filter(|&&g| !excluded(q, g))
            .map(|&g| (dot(view.row(q), view.row(g)), positive(q, g)))
            .collect();
        pos_scores.extend(items.iter().filter(|i| i.1).map(|i| i.0));
        neg_scores.extend(items.iter().filter(|i| !i.1).map(|i| i.0));
        let brute = brute_query(&items, config.max_cmc_rank);
        let got = &figures.per_query[i];
        prop_assert_eq!(got.record, q);
        prop_assert_eq!(
            (got.first.greater, got.first.tied_negatives, got.first.tied_positives),
            (brute.greater, brute.tied_negatives, brute.tied_positives)
        );
        prop_assert!((got.rank_1 - brute.rank_1).abs() < 1e-12);
        prop_assert!(
            (got.average_precision - brute.average_precision).abs() < 1e-12,
            "AP {} vs brute {}",
            got.average_precision,
            brute.average_precision
        );
        sum_r1 += brute.rank_1;
        sum_ap += brute.average_precision;
        for (s, v) in sum_cmc.iter_mut().zip(&brute.cmc) {
            *s += v;
        }
    }
    let n = queries.len() as f64;
    prop_assert!((figures.rank_1 - sum_r1 / n).abs() < 1e-12);
    prop_assert!((figures.map - sum_ap / n).abs() < 1e-12);
    for (k, v) in figures.cmc_curve.iter().enumerate() {
        prop_assert!((v - sum_cmc[k] / n).abs() < 1e-12, "CMC@{}", k + 1);
    }
    for (k, v) in &figures.cmc.0 {
        let k: usize = k.parse().unwrap();
        prop_assert!((v - sum_cmc[k - 1] / n).abs() < 1e-12);
    }
    // Flags: rank-1 probability at least 1/2.
    let flags = report.flags(cohort.len());
    for (i, &q) in queries.iter().enumerate() {
        prop_assert_eq!(flags[q], Some(figures.per_query[i].rank_1 >= 0.5));
    }
    prop_assert_eq!(flags.iter().filter(|f| f.is_some()).count(), queries.len());
    // Verification AUROC over every pair (every negative is sampled here): Mann-Whitney.
    match figures.verification_auroc {
        Some(auroc) => {
            let mut wins = 0.0;
            for p in &pos_scores {
                for q in &neg_scores {
                    wins += if p > q {
                        1.0
                    } else if p == q {
                        0.5
                    } else {
                        0.0
                    };
                }
            }
            let want = wins / (pos_scores.len() * neg_scores.len()) as f64;
            prop_assert!((auroc - want).abs() < 1e-12, "AUROC {} vs {}", auroc, want);
            prop_assert_eq!(figures.verification_pairs.n_negative, neg_scores.len());
            let roc = figures.verification_roc.as_ref().unwrap();
            prop_assert_eq!((roc.fpr[0], roc.tpr[0]), (0.0, 0.0));
            prop_assert_eq!((*roc.fpr.last().unwrap(), *roc.tpr.last().unwrap()), (1.0, 1.0));
        }
        None => prop_assert!(neg_scores.is_empty()),
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn figures_equal_brute_force(seed in 0u64..1_000_000, include_same_study in any::<bool>()) {
        check_against_brute_force(seed, include_same_study)?;
    }
}

fn synthetic(patients: usize, seed: u64) -> Cohort {
    let config = SynthConfig {
        patients,
        studies_per_patient: 5,
        dim: 48,
        feature_dim: 48,
        external_patients: 0,
        seed,
        ..SynthConfig::default()
    };
    generate(&config).unwrap().to_cohort().unwrap()
}

#[test]
fn trained_attacker_beats_nearest_neighbour_on_a_synthetic_cohort() {
    let cohort = synthetic(500, 3);
    let config = ReidConfig { bootstrap_replicates: 200, ..ReidConfig::default() };
    let report = reid(&cohort, &config, &NoProgress).unwrap();
    assert_eq!(report.attackers.len(), 2);
    assert!(report.linear_metric_skipped.is_none());
    let nn = &report.attackers[0];
    let lm = &report.attackers[1];
    assert_eq!((nn.attacker, lm.attacker), (NEAREST_NEIGHBOUR, LINEAR_METRIC));
    let (raw, trained) = (nn.figures.rank_1, lm.figures.rank_1);
    eprintln!("raw rank-1 {raw}, trained {trained}, training {:?}", report.linear_metric);
    // Well above chance for both, and the trained attacker clearly stronger: its Wilson
    // interval lies above the raw one.
    assert!(raw > 5.0 * nn.figures.chance_rank_1, "raw rank-1 {raw}");
    assert!(lm.figures.ci95_rank_1[0] > nn.figures.ci95_rank_1[1], "raw {raw} vs trained {trained}");
    assert!(lm.figures.map > nn.figures.map);
    assert!(lm.figures.verification_auroc.unwrap() > nn.figures.verification_auroc.unwrap());
    // The headline is the stronger attacker, flagged as trained.
    assert_eq!(report.attacker, LINEAR_METRIC);
    assert_eq!(report.headline.rank_1, trained);
    // Both attackers ranked the same queries.
    assert_eq!(nn.figures.n_queries, lm.figures.n_queries);
    // Trained on train-split patients only, selected on held-out ones.
    let training = report.linear_metric.as_ref().unwrap();
    assert_eq!(training.train_split, "train");
    assert_eq!(training.train_records_overlapping_patients, 0);
    assert!(training.n_train_patients > 100);
    assert_eq!(training.selection, "validation");
    assert!(!training.candidates.is_empty());
    let best = training.candidates.iter().map(|c| c.validation_rank_1).fold(f64::MIN, f64::max);
    let chosen =
        training.candidates.iter().find(|c| c.shrinkage == training.shrinkage && c.rank == training.rank);
    assert_eq!(chosen.unwrap().validation_rank_1, best);
    // Intervals bracket the estimates; the CMC rises with rank.
    for f in [&nn.figures, &lm.figures] {
        assert!(f.ci95_rank_1[0] <= f.rank_1 && f.rank_1 <= f.ci95_rank_1[1]);
        let boot = f.bootstrap_ci95_rank_1.unwrap();
        assert!(boot[0] <= f.rank_1 && f.rank_1 <= boot[1]);
        let map_ci = f.ci95_map.unwrap();
        assert!(map_ci[0] <= f.map && f.map <= map_ci[1]);
        let auc_ci = f.ci95_verification_auroc.unwrap();
        assert!(auc_ci[0] < f.verification_auroc.unwrap() && f.verification_auroc.unwrap() < auc_ci[1]);
        assert!(f.cmc_curve.windows(2).all(|w| w[1] >= w[0] - 1e-12));
        assert_eq!(f.cmc_curve.len(), 50);
        assert_eq!(f.cmc.0.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>(), ["1", "5", "10", "20"]);
    }
    // One entry per attacker for a run directory.
    let nn_only = report.for_attacker(0).unwrap();
    assert_eq!((nn_only.attacker, nn_only.headline.rank_1), (NEAREST_NEIGHBOUR, raw));
    assert!(nn_only.linear_metric.is_none() && nn_only.attackers.len() == 1);
    assert_eq!(report.for_attacker(1).unwrap().attacker, LINEAR_METRIC);
    assert!(report.for_attacker(2).is_none());
    let entries = report.run_entries();
    assert_eq!(entries.len(), 2);
    assert_eq!(entries[1].headline.rank_1, trained);
    // The run-directory keys keep the two attackers apart.
    let keys: Vec<String> = entries
        .iter()
        .map(|e| crate::report::run::entry_key(&serde_json::to_value(e).unwrap(), None).unwrap())
        .collect();
    assert_eq!(keys, ["reid:image@test+nearest-neighbour", "reid:image@test+linear-metric"]);
}

#[test]
fn json_has_the_interface_keys_and_no_per_record_data() {
    let cohort = synthetic(200, 5);
    let config = ReidConfig {
        attackers: Attackers::NearestNeighbour,
        bootstrap_replicates: 0,
        ..ReidConfig::default()
    };
    let report = reid(&cohort, &config, &NoProgress).unwrap();
    let json = serde_json::to_value(&report).unwrap();
    for key in [
        "audit",
        "view",
        "n_queries",
        "n_gallery",
        "rank_1",
        "ci95_rank_1",
        "cmc",
        "map",
        "verification_auroc",
    ] {
        assert!(json.get(key).is_some(), "missing {key}");
    }
    assert_eq!(json["audit"], "reid");
    assert_eq!(json["attacker"], "nearest-neighbour");
    assert_eq!(json["attackers"].as_array().unwrap().len(), 1);
    assert_eq!(json["attackers"][0]["rank_1"], json["rank_1"]);
    assert_eq!(json["cmc"].as_object().unwrap().len(), 4);
    assert!(json["ci95_map"].is_null(), "no bootstrap, no mAP interval");
    assert_eq!(
        json["verification_roc"]["fpr"].as_array().unwrap().len(),
        json["verification_roc"]["tpr"].as_array().unwrap().len()
    );
    // No per-record data: no key holds one entry per query or record.
    let text = json.to_string();
    assert!(
        !text.contains("\"per_query\"")
            && !text.contains("\"per_record\"")
            && !text.contains("\"reidentified\"")
    );
    for id in &cohort.metadata.ids {
        assert!(!text.contains(&format!("\"{id}\"")), "record id {id} in the JSON");
    }
    // The ROC curve is thinned to a bounded number of points.
    assert!(json["verification_roc"]["fpr"].as_array().unwrap().len() <= 2 * 200 + 2);
    assert!(report.linear_metric.is_none());
}

#[test]
fn exclusions_and_configuration_errors() {
    let cohort = synthetic(150, 7);
    let run = |config: ReidConfig| reid(&cohort, &config, &NoProgress);
    let err = |config: ReidConfig| run(config).unwrap_err().to_string();
    // With `--attack-side split` (the train split only), the old refusals stand.
    let strict =
        ReidConfig { attack_side: SideSource::Split, bootstrap_replicates: 0, ..ReidConfig::default() };
    let both = ReidConfig { attackers: Attackers::Both, ..strict.clone() };
    let e = err(ReidConfig { train_split: "test".into(), ..both.clone() });
    assert!(e.contains("--train-split test") && e.contains("--attacker none"), "{e}");
    let e = err(ReidConfig { train_split: "validation".into(), ..both.clone() });
    assert!(e.contains("validation"), "{e}");
    let auto = run(ReidConfig { train_split: "test".into(), ..strict.clone() }).unwrap();
    assert_eq!((auto.attacker, auto.attackers.len()), (NEAREST_NEIGHBOUR, 1));
    assert!(auto.linear_metric_skipped.as_deref().unwrap().contains("--train-split test"));
    // ... and the skip is listed in `skipped_attacks`.
    let json = serde_json::to_value(&auto).unwrap();
    assert_eq!(json["skipped_attacks"][0]["name"], "linear-metric");
    assert!(json["skipped_attacks"][0]["reason"].as_str().unwrap().contains("--train-split test"));
    let auto = run(ReidConfig { train_split: "validation".into(), ..strict.clone() }).unwrap();
    assert!(auto.linear_metric_skipped.as_deref().unwrap().contains("validation"), "{auto:?}");
    // `auto` (the default) cross-fits within the audited split instead, and says why.
    for train_split in ["test", "validation"] {
        let auto = run(ReidConfig {
            train_split: train_split.into(),
            bootstrap_replicates: 0,
            ..ReidConfig::default()
        })
        .unwrap();
        assert_eq!(auto.attackers.len(), 2, "{train_split}");
        let side = &auto.linear_metric.as_ref().unwrap().side;
        assert!(side.is_cross_fit() && side.folds == Some(5), "{side:?}");
        assert!(side.reason.as_deref().unwrap().contains(train_split), "{side:?}");
        let json = serde_json::to_value(&auto).unwrap();
        assert_eq!(json["skipped_attacks"], serde_json::json!([]));
    }
    assert!("auto".parse::<Attackers>().unwrap() == Attackers::Auto && "nn".parse::<Attackers>().is_err());
    assert!(
        err(ReidConfig { negatives_per_query: 0, ..ReidConfig::default() }).contains("--negatives-per-query")
    );
    assert!(err(ReidConfig { bootstrap_replicates: 1, ..ReidConfig::default() }).contains("--bootstrap"));
    assert!(err(ReidConfig { view: "text".into(), ..ReidConfig::default() }).contains("text"));
    // The same-study rule: counting same-study records as positives can only add queries.
    let plain = run(nn_config(false)).unwrap();
    let same = run(nn_config(true)).unwrap();
    assert!(same.headline.n_queries >= plain.headline.n_queries);
    assert_eq!(same.same_study, "positive");
    let x = &plain.exclusions;
    assert_eq!(x.excluded_own_record, plain.headline.n_queries as u64);
    assert_eq!(x.records_not_queried + plain.headline.n_queries, x.n_split_records);
    assert!(x.patients_with_one_study > 0 && x.patients_with_one_study < x.n_split_patients);
    // A train split without repeated patients: a clear error naming the split and the way out.
    let mut b =
        MetadataBuilder { study_ids: Some(Vec::new()), splits: Some(Vec::new()), ..Default::default() };
    let mut data = Vec::new();
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    for p in 0..12 {
        let studies = if p < 6 { 2 } else { 1 };
        for s in 0..studies {
            b.ids.push(format!("r{p}_{s}"));
            b.patient_ids.push(format!("p{p}"));
            b.study_ids.as_mut().unwrap().push(format!("s{s}"));
            b.splits.as_mut().unwrap().push(if p < 6 { "test" } else { "train" }.into());
            data.extend(grid_vector(&mut rng, 6));
        }
    }
    let meta = b.build(Path::new("<t>"), 0).unwrap();
    let n = meta.len();
    let small =
        Cohort::from_parts("<t>", meta, vec![View::from_memory("image", n, 6, data).unwrap()]).unwrap();
    let strict = ReidConfig { attack_side: SideSource::Split, ..ReidConfig::default() };
    let e = reid(&small, &ReidConfig { attackers: Attackers::Both, ..strict.clone() }, &NoProgress)
        .unwrap_err()
        .to_string();
    assert!(e.contains("--train-split train") && e.contains("two or more studies"), "{e}");
    let auto = reid(&small, &strict, &NoProgress).unwrap();
    assert!(auto.linear_metric_skipped.as_deref().unwrap().contains("two or more studies"));
    // Cross-fitting needs as many patients as folds; both reasons are given.
    let e = reid(
        &small,
        &ReidConfig { attackers: Attackers::Both, side_folds: 7, ..ReidConfig::default() },
        &NoProgress,
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("two or more studies") && e.contains("--side-folds 7"), "{e}");
    let auto = reid(&small, &ReidConfig::default(), &NoProgress).unwrap();
    let training = auto.linear_metric.as_ref().unwrap();
    assert!(training.side.is_cross_fit() && training.folds.len() == 5, "{training:?}");
    assert!(reid(&small, &nn_config(false), &NoProgress).is_ok());
    let e = reid(&small, &ReidConfig { split: "train".into(), ..nn_config(false) }, &NoProgress)
        .unwrap_err()
        .to_string();
    assert!(e.contains("--split train") && e.contains("no patient"), "{e}");
}

#[test]
fn flags_for_the_attribute_audit() {
    let cohort = synthetic(150, 9);
    let (flags, source) = reidentified_flags(&cohort, &nn_config(false), &NoProgress).unwrap();
    assert_eq!(flags.len(), cohort.len());
    match source {
        FlagSource::ReidAudit { attacker, n_queries, rank_1, .. } => {
            assert_eq!(attacker, NEAREST_NEIGHBOUR);
            assert_eq!(flags.iter().filter(|f| f.is_some()).count(), n_queries);
            let share = flags.iter().filter(|f| **f == Some(true)).count() as f64 / n_queries as f64;
            // Flags are the thresholded rank-1 probabilities: their share is close to Rank-1.
            assert!((share - rank_1).abs() < 0.05, "{share} vs {rank_1}");
        }
        other => panic!("{other:?}"),
    }
    let test = cohort.metadata.rows_in_split("test").unwrap();
    assert!(flags.iter().enumerate().all(|(i, f)| f.is_none() || test.contains(&i)));
}

/// The records of `cohort` whose patient `split_of` assigns a split, with that split.
fn resplit(cohort: &Cohort, split_of: &dyn Fn(u32) -> Option<&'static str>) -> Cohort {
    let meta = &cohort.metadata;
    let rows: Vec<usize> = (0..meta.len()).filter(|&i| split_of(meta.patient[i]).is_some()).collect();
    let mut selected = meta.select(&rows).unwrap();
    let names: Vec<&str> = rows.iter().map(|&i| split_of(meta.patient[i]).unwrap()).collect();
    let b = MetadataBuilder {
        ids: selected.ids.clone(),
        patient_ids: selected.patient_ids.clone(),
        study_ids: selected.study_ids.take(),
        splits: Some(names.iter().map(|s| s.to_string()).collect()),
        ..Default::default()
    };
    let view = cohort.view("image").unwrap();
    let data = gather(view, &rows);
    let m = b.build(Path::new("<resplit>"), 0).unwrap();
    let n = m.len();
    Cohort::from_parts("<resplit>", m, vec![View::from_memory("image", n, view.dim(), data).unwrap()])
        .unwrap()
}

#[test]
fn cross_fitted_linear_metric_matches_a_separate_train_split_of_the_same_size() {
    // 250 audited patients. Test-only: five folds, each attacker trained on the other 200
    // patients. Separate: the same 250 patients audited, the attacker trained on 200 other
    // patients of a `train` split. Same queries, same gallery, training sets of one size.
    let cohort = synthetic(700, 17);
    let test_only = resplit(&cohort, &|p| (p < 250).then_some("test"));
    let separate = resplit(&cohort, &|p| match p {
        0..250 => Some("test"),
        250..450 => Some("train"),
        _ => None,
    });
    let config = ReidConfig { bootstrap_replicates: 0, ..ReidConfig::default() };
    let cross = reid(&test_only, &config, &NoProgress).unwrap();
    let split = reid(&separate, &config, &NoProgress).unwrap();
    let lm =
        |r: &ReidReport| r.attackers.iter().find(|a| a.attacker == LINEAR_METRIC).unwrap().figures.clone();
    let (a, b) = (lm(&cross), lm(&split));
    eprintln!(
        "linear-metric Rank-1: cross-fitted {:.4} [{:.4}, {:.4}], separate train split {:.4} [{:.4}, {:.4}]; nearest neighbour {:.4}",
        a.rank_1, a.ci95_rank_1[0], a.ci95_rank_1[1], b.rank_1, b.ci95_rank_1[0], b.ci95_rank_1[1], cross.attackers[0].figures.rank_1
    );
    assert_eq!(a.n_queries, b.n_queries);
    assert!((a.rank_1 - b.rank_1).abs() < 0.04, "cross-fitted {} vs separate {}", a.rank_1, b.rank_1);
    assert!(a.rank_1 > cross.attackers[0].figures.rank_1 + 0.05, "the trained attacker is stronger");
    let training = cross.linear_metric.as_ref().unwrap();
    assert_eq!(training.side.source, "cross_fit");
    assert!(training.side.reason.as_deref().unwrap().contains("train"), "{:?}", training.side);
    assert_eq!(training.folds.len(), 5);
    assert_eq!(
        training.folds.iter().map(|f| f.n_attacked_records).sum::<usize>(),
        training.n_train_split_records
    );
    // Each fold trains on about 4/5 of the trainable patients, as many as the train split has.
    let separate_patients = split.linear_metric.as_ref().unwrap().n_train_patients as f64;
    for f in &training.folds {
        let share = f.n_train_patients as f64 / training.n_train_patients as f64;
        assert!((0.75..=0.85).contains(&share), "{f:?}");
        assert!(
            (f.n_train_patients as f64 / separate_patients - 1.0).abs() < 0.1,
            "{f:?} vs {separate_patients}"
        );
    }
    assert_eq!(split.linear_metric.as_ref().unwrap().side.source, "split train");
    // The JSON states the protocol: `linear_metric.side`.
    let json = serde_json::to_value(&cross).unwrap();
    assert_eq!(json["linear_metric"]["side"]["source"], "cross_fit");
    assert_eq!(json["linear_metric"]["side"]["folds"], 5);
    let json = serde_json::to_value(&split).unwrap();
    assert_eq!(json["linear_metric"]["side"], serde_json::json!({"source": "split train"}));
}

#[test]
fn cross_fitted_reid_is_bitwise_the_same_on_one_two_and_three_threads() {
    let cohort = resplit(&synthetic(160, 23), &|_| Some("test"));
    let config = ReidConfig {
        bootstrap_replicates: 50,
        attack: Some(AttackConfig {
            attacks: crate::attack::AttackName::ALL.to_vec(),
            ..AttackConfig::default()
        }),
        ..ReidConfig::default()
    };
    let run = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
        pool.install(|| serde_json::to_string(&reid(&cohort, &config, &NoProgress).unwrap()).unwrap())
    };
    let one = run(1);
    assert_eq!(one, run(2));
    assert_eq!(one, run(3));
    let json: serde_json::Value = serde_json::from_str(&one).unwrap();
    // The comparison cross-fitted its temperature and bank; the paired-view attacks and
    // nothing else are listed as skipped (one list with the attackers').
    assert_eq!(json["side"]["source"], "cross_fit");
    let skipped: Vec<&str> =
        json["skipped_attacks"].as_array().unwrap().iter().map(|s| s["name"].as_str().unwrap()).collect();
    assert_eq!(skipped, ["assignment", "procrustes", "ridge"]);
    assert_eq!(json["attackers"].as_array().unwrap().len(), 2);
}
