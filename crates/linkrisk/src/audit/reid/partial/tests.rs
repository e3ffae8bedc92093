//! merge(shards) == single run, exactly; the codec; resume.

use std::path::{Path, PathBuf};

use proptest::prelude::*;

use super::*;
use crate::audit::cross_fit::SideSource;
use crate::audit::reid::{reid, Attackers};
use crate::cohort::write::write_cohort;
use crate::engine::NoProgress;
use crate::synth::{generate, SynthConfig};

/// A synthetic cohort directory of `patients` patients (train, test and external splits,
/// several studies each). With `coarse`, the image view is rounded to a few levels, so
/// exact duplicates and tied scores are common.
fn synth_dir(patients: usize, seed: u64, coarse: bool) -> tempfile::TempDir {
    let config = SynthConfig {
        patients,
        studies_per_patient: 4,
        dim: 8,
        feature_dim: 4,
        external_patients: patients / 4,
        seed,
        ..SynthConfig::default()
    };
    let cohort = generate(&config).unwrap().to_cohort().unwrap();
    let view = cohort.view("image").unwrap();
    let dim = view.dim();
    let mut data: Vec<f32> = view.rows().to_vec();
    if coarse {
        for row in data.chunks_mut(dim) {
            row.iter_mut().for_each(|v| *v = (*v * 2.0).round());
            row[0] += 3.0; // never all zero
        }
    }
    let dir = tempfile::tempdir().unwrap();
    write_cohort(dir.path(), &cohort.metadata, &[("image", dim, &data)]).unwrap();
    dir
}

fn shards_then_merge(dir: &Path, config: &ReidConfig, count: usize) -> (ReidReport, Vec<PathBuf>) {
    crate::shard::shards_then_merge(
        AUDIT,
        count,
        |shard, path| run_shard(dir, config, shard, path, &NoProgress),
        merge_files,
    )
}

fn json(report: &ReidReport) -> String {
    serde_json::to_string_pretty(report).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, .. ProptestConfig::default() })]

    /// merge(shards) == single run, exactly, for random cohorts, settings and 1 to 7 shards,
    /// under both attackers (the trained one included).
    #[test]
    fn merged_shards_equal_the_single_run(
        patients in 12usize..80,
        seed in 0u64..1000,
        coarse in any::<bool>(),
        count in 1usize..=7,
        attackers in prop_oneof![Just(Attackers::NearestNeighbour), Just(Attackers::Both), Just(Attackers::Auto)],
        include_same_study in any::<bool>(),
        external in any::<bool>(),
        negatives_per_query in 1usize..30,
        cross_fit in any::<bool>(),
    ) {
        let dir = synth_dir(patients, seed, coarse);
        let config = ReidConfig {
            split: if external { "external".into() } else { "test".into() },
            attackers,
            include_same_study,
            seed,
            bootstrap_replicates: 30,
            negatives_per_query,
            // Cross-fitted attackers (one per fold) shard and merge like a trained one.
            attack_side: if cross_fit { SideSource::Audited } else { SideSource::Auto },
            side_folds: 3,
            ..ReidConfig::default()
        };
        let cohort = Cohort::load(dir.path()).unwrap();
        let single = reid(&cohort, &config, &NoProgress);
        prop_assume!(single.is_ok());
        let single = single.unwrap();
        let (merged, paths) = shards_then_merge(dir.path(), &config, count);
        prop_assert_eq!(json(&single), json(&merged));
        // The per-query outcomes (not in the JSON) agree too.
        prop_assert_eq!(single.records(), merged.records());
        for p in paths {
            std::fs::remove_file(p).unwrap();
        }
    }
}

#[test]
fn records_round_trip_and_corruption_is_caught() {
    let dir = synth_dir(60, 4, true);
    let config = ReidConfig { attackers: Attackers::Both, negatives_per_query: 7, ..ReidConfig::default() };
    let cohort = Cohort::load(dir.path()).unwrap();
    let pass = ReidPass::new(&cohort, &config, &NoProgress).unwrap();
    let part = pass.rank(0..pass.n_queries(), &NoProgress).unwrap();
    assert_eq!(part.context.attackers, vec!["nearest-neighbour", "linear-metric"]);
    assert!(part.records[0].iter().any(|r| r.positives.len() >= 2 && r.negative_scores.len() == 7));
    let bytes = encode(&part.records);
    let path = Path::new("x.lrp");
    assert_eq!(decode(&bytes, path, 2).unwrap(), part.records);
    for cut in [1, bytes.len() / 3, bytes.len() - 1] {
        assert!(decode(&bytes[..cut], path, 2).is_err());
    }
    assert!(decode(&bytes, path, 1).is_err(), "leftover bytes");
    // The context survives its JSON round trip (the merge reads it back).
    let value = serde_json::to_value(&part.context).unwrap();
    assert_eq!(serde_json::from_value::<ReidContext>(value).unwrap(), part.context);
}

#[test]
fn training_does_not_depend_on_the_thread_count() {
    let dir = synth_dir(120, 8, false);
    let config = ReidConfig { attackers: Attackers::Both, ..ReidConfig::default() };
    let cohort = Cohort::load(dir.path()).unwrap();
    let context = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
        pool.install(|| {
            let pass = ReidPass::new(&cohort, &config, &NoProgress).unwrap();
            pass.rank(0..3, &NoProgress).unwrap()
        })
    };
    let one = context(1);
    assert!(one.context.linear_metric_rows_blake3.is_some());
    assert_eq!(one, context(2));
    assert_eq!(one, context(3));
}

#[test]
fn resume_skips_a_complete_shard_and_replaces_one_of_other_settings() {
    let dir = synth_dir(40, 5, false);
    let config = ReidConfig { bootstrap_replicates: 0, ..ReidConfig::default() };
    let shard = ShardSpec::new(2, 3).unwrap();
    let out = tempfile::tempdir().unwrap();
    let path = out.path().join(shard.file_name(AUDIT));
    assert!(matches!(
        run_shard(dir.path(), &config, shard, &path, &NoProgress).unwrap(),
        ShardRun::Written { replaced: None, .. }
    ));
    let before = std::fs::metadata(&path).unwrap().modified().unwrap();
    assert_eq!(run_shard(dir.path(), &config, shard, &path, &NoProgress).unwrap(), ShardRun::Skipped);
    assert_eq!(std::fs::metadata(&path).unwrap().modified().unwrap(), before);
    let other = ReidConfig { seed: 1, ..config.clone() };
    match run_shard(dir.path(), &other, shard, &path, &NoProgress).unwrap() {
        ShardRun::Written { replaced: Some(reason), .. } => {
            assert!(reason.contains("other inputs or settings"))
        }
        r => panic!("{r:?}"),
    }
    // An attack comparison is not sharded.
    let attack = ReidConfig { attack: Some(Default::default()), ..config };
    let err = run_shard(dir.path(), &attack, shard, &path, &NoProgress).unwrap_err().to_string();
    assert!(err.contains("--attack") && err.contains("--shard"), "{err}");
}

#[test]
fn merge_refuses_relink_partials_and_contexts_that_differ() {
    let dir = synth_dir(40, 6, false);
    let config = ReidConfig { bootstrap_replicates: 0, attackers: Attackers::Both, ..ReidConfig::default() };
    let (_, paths) = shards_then_merge(dir.path(), &config, 2);
    let mut partials: Vec<Partial> = paths.iter().map(|p| read_partial(p).unwrap()).collect();
    // A relink merge of reid partials names the audit.
    let err = crate::audit::relink_partial::merge(&partials).unwrap_err().to_string();
    assert!(err.contains("holds a `reid` audit, not relink"), "{err}");
    // Shards that trained different attackers (another rows hash) do not merge.
    partials[1].header.context["linear_metric_rows_blake3"] = serde_json::json!("00");
    let err = merge(&partials).unwrap_err().to_string();
    assert!(err.contains("different query count or context"), "{err}");
}
