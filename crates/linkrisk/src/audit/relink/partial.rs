//! Sharded re-linkage: one shard ranks a contiguous slice of the queries against the whole
//! gallery and writes its per-query records ([`QueryRecord`]) as a partial result
//! (`crate::shard`); [`merge`] checks a set of partials, concatenates their records and
//! runs [`finish`], the code a single run ends with, so the merged report is the single
//! run's report, number for number.
//!
//! Body layout (little-endian, see `crate::shard::codec`): per direction, the record count
//! (`u64`) and the records. A record: patient `u32`; subgroup value count `u32` and the
//! values (`u32` each); best positive's greater, tied negatives, tied positives; negatives,
//! positives, true match's greater and tied (`u64` each); random pools: count `u32`, then
//! per size a presence byte and the outcome; pathology-matched pools: a presence byte, then
//! the same list. An outcome: trial count `u32`, per trial greater and tied (`u32` each);
//! the draw's fixed greater, fixed tied, fixed, population, population greater, population
//! tied, draws and the exact-match count (`u64` each).

use std::path::Path;

use super::{finish, relink_range, QueryRecord, RelinkConfig, RelinkContext, RelinkInputs, RelinkReport};
use crate::engine::pools::{PoolCounts, PoolDraw, PoolOutcome};
use crate::engine::{FirstPositive, Progress};
use crate::error::{Error, Result};
use crate::shard::codec::{decode_lists, encode_lists, Reader, Writer};
use crate::shard::{
    compute_shard, hash_inputs, open_set, read_partial, Fingerprint, Partial, ShardOutput, ShardSpec,
};

/// The audit's name in fingerprints and partial file names.
pub const AUDIT: &str = "relink";

/// The fingerprint of `config` on cohort directory `dir` split into `shard_count` shards
/// (hashes every cohort file).
pub fn fingerprint(dir: &Path, config: &RelinkConfig, shard_count: usize) -> Result<Fingerprint> {
    config.validate()?;
    Fingerprint::new(AUDIT, config, hash_inputs(dir)?, shard_count)
}

pub use crate::shard::ShardRun;

/// Compute shard `shard` of the audit `config` on cohort directory `dir` into `path`,
/// unless `path` already holds this shard's complete partial with the same fingerprint
/// (resume). Reads only what the shard needs ([`RelinkInputs::load`]); the write is atomic.
pub fn run_shard(
    dir: &Path,
    config: &RelinkConfig,
    shard: ShardSpec,
    path: &Path,
    progress: &dyn Progress,
) -> Result<ShardRun> {
    compute_shard(fingerprint(dir, config, shard.count)?, shard, path, || {
        let inputs = RelinkInputs::load(dir, config, shard)?;
        let n_queries = inputs.n_queries();
        let part = relink_range(&inputs, config, shard.queries(n_queries), progress)?;
        drop(inputs);
        let context = serde_json::to_value(&part.context)
            .map_err(|e| Error::config(format!("serialising the relink context: {e}")))?;
        Ok(ShardOutput {
            n_queries,
            context,
            body: encode(&part.records),
            cohort_name: crate::shard::cohort_name(dir),
        })
    })
}

/// Check that `partials` are one complete relink run, concatenate their records and finish
/// them into the report a single run writes.
pub fn merge(partials: &[Partial]) -> Result<RelinkReport> {
    let set = open_set::<RelinkConfig, RelinkContext>(partials, AUDIT)?;
    let directions = set.context.directions.len();
    let records = set.concat_records(directions, "direction", |p| decode(&p.body, &p.path, directions))?;
    finish(&set.config, &set.context, &records)
}

/// Read and merge the partial files `paths` (see [`merge`]).
pub fn merge_files(paths: &[impl AsRef<Path>]) -> Result<RelinkReport> {
    let partials = paths.iter().map(|p| read_partial(p.as_ref())).collect::<Result<Vec<_>>>()?;
    merge(&partials)
}

/// Encode per-direction records (the body of a relink partial).
pub fn encode(records: &[Vec<QueryRecord>]) -> Vec<u8> {
    encode_lists(records, encode_record)
}

/// Decode a body of `directions` record lists; `path` names the file in errors.
pub fn decode(bytes: &[u8], path: &Path, directions: usize) -> Result<Vec<Vec<QueryRecord>>> {
    decode_lists(bytes, path, directions, 60, decode_record)
}

fn encode_record(w: &mut Writer, r: &QueryRecord) {
    w.u32(r.patient);
    w.u32(r.subgroups.len() as u32);
    for &s in &r.subgroups {
        w.u32(s);
    }
    w.u64(r.first.greater);
    w.u64(r.first.tied_negatives);
    w.u64(r.first.tied_positives);
    w.u64(r.n_negatives);
    w.u64(r.n_positives);
    w.u64(r.anchor_greater);
    w.u64(r.anchor_tied);
    encode_outcomes(w, &r.random);
    w.bool(r.matched.is_some());
    if let Some(m) = &r.matched {
        encode_outcomes(w, m);
    }
}

fn encode_outcomes(w: &mut Writer, outcomes: &[Option<PoolOutcome>]) {
    w.u32(outcomes.len() as u32);
    for o in outcomes {
        w.bool(o.is_some());
        let Some(o) = o else { continue };
        w.u32(o.trials.len() as u32);
        for t in &o.trials {
            w.u32(t.greater);
            w.u32(t.tied);
        }
        let d = &o.draw;
        for v in [
            d.fixed_greater,
            d.fixed_tied,
            d.fixed,
            d.population,
            d.population_greater,
            d.population_tied,
            d.draws,
            o.exact_matches,
        ] {
            w.u64(v);
        }
    }
}

fn decode_record(r: &mut Reader<'_>) -> Result<QueryRecord> {
    let patient = r.u32()?;
    let n_subgroups = r.u32()? as usize;
    if n_subgroups > 16 {
        return Err(r.corrupt("impossible subgroup count"));
    }
    let subgroups = (0..n_subgroups).map(|_| r.u32()).collect::<Result<Vec<_>>>()?;
    let first = FirstPositive { greater: r.u64()?, tied_negatives: r.u64()?, tied_positives: r.u64()? };
    let (n_negatives, n_positives, anchor_greater, anchor_tied) = (r.u64()?, r.u64()?, r.u64()?, r.u64()?);
    let random = decode_outcomes(r)?;
    let matched = if r.bool()? { Some(decode_outcomes(r)?) } else { None };
    Ok(QueryRecord {
        patient,
        subgroups,
        first,
        n_negatives,
        n_positives,
        anchor_greater,
        anchor_tied,
        random,
        matched,
    })
}

fn decode_outcomes(r: &mut Reader<'_>) -> Result<Vec<Option<PoolOutcome>>> {
    let n = r.u32()? as usize;
    if n > 1 << 16 {
        return Err(r.corrupt("impossible pool count"));
    }
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        if !r.bool()? {
            out.push(None);
            continue;
        }
        let trials = r.u32()? as usize;
        if trials > 1 << 24 {
            return Err(r.corrupt("impossible trial count"));
        }
        let trials = (0..trials)
            .map(|_| Ok(PoolCounts { greater: r.u32()?, tied: r.u32()? }))
            .collect::<Result<Vec<_>>>()?;
        let draw = PoolDraw {
            fixed_greater: r.u64()?,
            fixed_tied: r.u64()?,
            fixed: r.u64()?,
            population: r.u64()?,
            population_greater: r.u64()?,
            population_tied: r.u64()?,
            draws: r.u64()?,
        };
        out.push(Some(PoolOutcome { trials, draw, exact_matches: r.u64()? }));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::audit::relink::{relink, Direction, MatchLevel};
    use crate::cohort::metadata::MetadataBuilder;
    use crate::cohort::write::write_cohort;
    use crate::cohort::{Cohort, Label, N_FINDINGS};
    use crate::engine::NoProgress;

    /// A cohort directory of `patients` patients with 1-3 studies of 1-2 records each;
    /// records of a study share one report vector (exact gallery duplicates, same-study
    /// exclusions). With `coarse`, coordinates are small integers, so scores tie often.
    /// Findings, sex, age and splits (train, test, external) are random.
    fn synth_dir(patients: usize, seed: u64, coarse: bool) -> tempfile::TempDir {
        use rand::Rng;
        let dim = 6;
        let mut r = crate::rng::stream(seed, "relink-partial-test", 0);
        let value = |r: &mut rand_chacha::ChaCha8Rng| -> f32 {
            if coarse {
                r.random_range(-1i32..=1) as f32
            } else {
                r.random_range(-1.0f32..1.0)
            }
        };
        let mut b = MetadataBuilder {
            study_ids: Some(Vec::new()),
            splits: Some(Vec::new()),
            findings: Some(Vec::new()),
            sex: Some(Vec::new()),
            age: Some(Vec::new()),
            ..Default::default()
        };
        let (mut image, mut report) = (Vec::new(), Vec::new());
        for p in 0..patients {
            let split = ["train", "train", "test", "external"][r.random_range(0..4)];
            for s in 0..r.random_range(1..4) {
                let labels: [Label; N_FINDINGS] = std::array::from_fn(|k| {
                    if k < 3 && r.random_bool(0.4) {
                        Label::Positive
                    } else {
                        Label::Negative
                    }
                });
                let mut report_row: Vec<f32> = (0..dim).map(|_| value(&mut r)).collect();
                report_row[0] += 3.0; // never all zero
                for k in 0..r.random_range(1..3) {
                    b.ids.push(format!("p{p}s{s}r{k}"));
                    b.patient_ids.push(format!("p{p}"));
                    b.study_ids.as_mut().unwrap().push(format!("s{s}"));
                    b.splits.as_mut().unwrap().push(split.to_string());
                    b.findings.as_mut().unwrap().push(labels);
                    b.sex
                        .as_mut()
                        .unwrap()
                        .push(r.random_bool(0.9).then(|| if p % 2 == 0 { "F" } else { "M" }.into()));
                    b.age.as_mut().unwrap().push(r.random_bool(0.8).then(|| r.random_range(20.0..95.0)));
                    image.extend(report_row.iter().map(|&v| {
                        if r.random_bool(0.5) {
                            v
                        } else {
                            v + value(&mut r)
                        }
                    }));
                    report.extend_from_slice(&report_row);
                }
            }
        }
        let dir = tempfile::tempdir().unwrap();
        let meta = b.build(Path::new("<test>"), 0).unwrap();
        write_cohort(dir.path(), &meta, &[("image", dim, &image), ("report", dim, &report)]).unwrap();
        dir
    }

    fn shards_then_merge(
        dir: &Path,
        config: &RelinkConfig,
        count: usize,
    ) -> (RelinkReport, Vec<std::path::PathBuf>) {
        crate::shard::shards_then_merge(
            AUDIT,
            count,
            |shard, path| run_shard(dir, config, shard, path, &NoProgress),
            merge_files,
        )
    }

    fn json(report: &RelinkReport) -> String {
        serde_json::to_string_pretty(report).unwrap()
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 10, .. ProptestConfig::default() })]

        /// merge(shards) == single run, exactly, for random cohorts, settings and 1 to 7 shards.
        #[test]
        fn merged_shards_equal_the_single_run(
            patients in 4usize..40,
            seed in 0u64..1000,
            coarse in any::<bool>(),
            count in 1usize..=7,
            both in any::<bool>(),
            patient_level in any::<bool>(),
            hard in any::<bool>(),
            split_all in any::<bool>(),
            trials in 1usize..4,
        ) {
            let dir = synth_dir(patients, seed, coarse);
            let config = RelinkConfig {
                pool_sizes: vec![2, 5, 20, 400],
                trials,
                hard_negatives: hard,
                match_level: if patient_level { MatchLevel::Patient } else { MatchLevel::Study },
                direction: if both { Direction::Both } else { Direction::QueryToGallery },
                split: if split_all { None } else { Some("train".into()) },
                seed,
                bootstrap_replicates: 30,
                // Shards rank with plain cosine; the attack comparison is single-machine only.
                attack: None,
                ..RelinkConfig::default()
            };
            let cohort = Cohort::load(dir.path()).unwrap();
            let single = relink(&cohort, &config, &NoProgress);
            prop_assume!(single.is_ok());
            let (merged, paths) = shards_then_merge(dir.path(), &config, count);
            prop_assert_eq!(json(&single.unwrap()), json(&merged));
            for p in paths {
                std::fs::remove_file(p).unwrap();
            }
        }
    }

    /// Rewrite `path` (a version-1 little-endian float32 `.npy`) as big-endian float32: the
    /// same values, which a shard cannot map and reads instead.
    fn to_big_endian(path: &Path) {
        let mut bytes = std::fs::read(path).unwrap();
        let header_len = 10 + u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
        let header = String::from_utf8(bytes[10..header_len].to_vec()).unwrap().replace("'<f4'", "'>f4'");
        bytes[10..header_len].copy_from_slice(header.as_bytes());
        for value in bytes[header_len..].chunks_exact_mut(4) {
            value.reverse();
        }
        std::fs::write(path, bytes).unwrap();
    }

    /// Shards map their galleries (both views with `--direction both`), for the whole
    /// cohort or a split's rows; a file that cannot be mapped is read, with the same result.
    #[test]
    fn shard_galleries_are_mapped_and_unmappable_files_are_read() {
        let dir = synth_dir(30, 6, true);
        for (direction, mapped) in
            [(Direction::QueryToGallery, vec!["report"]), (Direction::Both, vec!["image", "report"])]
        {
            for split in [None, Some("train".to_string())] {
                let config = RelinkConfig { direction, split, ..RelinkConfig::default() };
                let shard = ShardSpec::new(2, 3).unwrap();
                let inputs = RelinkInputs::load(dir.path(), &config, shard).unwrap();
                assert_eq!(inputs.mapped_views(), mapped);
                // Ranked from the map, exactly as from the loaded cohort.
                let cohort = Cohort::load(dir.path()).unwrap();
                let full = RelinkInputs::from_cohort(&cohort, &config).unwrap();
                assert!(full.mapped_views().is_empty());
                let range = shard.queries(inputs.n_queries());
                assert_eq!(
                    relink_range(&inputs, &config, range.clone(), &NoProgress).unwrap(),
                    relink_range(&full, &config, range, &NoProgress).unwrap()
                );
                // Only the slice's query rows were loaded, in either direction.
                let err = relink_range(&inputs, &config, 0..1, &NoProgress).unwrap_err().to_string();
                assert!(err.contains("was not loaded"), "{err}");
            }
        }
        to_big_endian(&dir.path().join("report.npy"));
        let config = RelinkConfig {
            pool_sizes: vec![2, 10],
            trials: 2,
            bootstrap_replicates: 20,
            direction: Direction::Both,
            split: None,
            attack: None,
            ..RelinkConfig::default()
        };
        let inputs = RelinkInputs::load(dir.path(), &config, ShardSpec::new(1, 2).unwrap()).unwrap();
        assert_eq!(inputs.mapped_views(), vec!["image"]);
        let single = relink(&Cohort::load(dir.path()).unwrap(), &config, &NoProgress).unwrap();
        let (merged, _) = shards_then_merge(dir.path(), &config, 2);
        assert_eq!(json(&single), json(&merged));
    }

    /// A bad gallery row stops a shard with the file, the row of the file and the column.
    #[test]
    fn a_bad_mapped_gallery_row_is_named() {
        let dir = synth_dir(20, 7, false);
        let path = dir.path().join("report.npy");
        let mut bytes = std::fs::read(&path).unwrap();
        let header_len = 10 + u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
        let dim = 6;
        let at = header_len + (5 * dim + 3) * 4;
        bytes[at..at + 4].copy_from_slice(&f32::NAN.to_le_bytes());
        let zero = header_len + 9 * dim * 4;
        bytes[zero..zero + dim * 4].fill(0);
        std::fs::write(&path, bytes).unwrap();
        let config = RelinkConfig { split: None, ..RelinkConfig::default() };
        let err =
            RelinkInputs::load(dir.path(), &config, ShardSpec::new(1, 4).unwrap()).unwrap_err().to_string();
        assert!(
            err.contains("report.npy")
                && err.contains("row 5 ")
                && err.contains("column 3")
                && err.contains("not finite"),
            "{err}"
        );
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[at..at + 4].copy_from_slice(&1.0f32.to_le_bytes());
        std::fs::write(&path, bytes).unwrap();
        let err =
            RelinkInputs::load(dir.path(), &config, ShardSpec::new(1, 4).unwrap()).unwrap_err().to_string();
        assert!(err.contains("report.npy") && err.contains("row 9 ") && err.contains("all-zero"), "{err}");
    }

    #[test]
    fn records_round_trip_and_corruption_is_caught() {
        let dir = synth_dir(30, 4, true);
        let config = RelinkConfig {
            pool_sizes: vec![2, 10],
            trials: 3,
            hard_negatives: true,
            direction: Direction::Both,
            split: None,
            ..RelinkConfig::default()
        };
        let inputs = RelinkInputs::load(dir.path(), &config, ShardSpec::whole()).unwrap();
        let part = relink_range(&inputs, &config, 0..inputs.n_queries(), &NoProgress).unwrap();
        assert!(part.records[0].iter().any(|r| r.matched.is_some() && r.subgroups.len() >= 3));
        let bytes = encode(&part.records);
        let path = Path::new("x.lrp");
        assert_eq!(decode(&bytes, path, 2).unwrap(), part.records);
        for cut in [1, bytes.len() / 3, bytes.len() - 1] {
            assert!(decode(&bytes[..cut], path, 2).is_err());
        }
        assert!(decode(&bytes, path, 1).is_err(), "leftover bytes");
    }

    #[test]
    fn a_shard_reads_only_its_query_rows_and_resumes() {
        let dir = synth_dir(40, 5, false);
        let config = RelinkConfig {
            pool_sizes: vec![5],
            trials: 2,
            bootstrap_replicates: 0,
            split: None,
            ..RelinkConfig::default()
        };
        let shard = ShardSpec::new(2, 3).unwrap();
        let inputs = RelinkInputs::load(dir.path(), &config, shard).unwrap();
        let range = shard.queries(inputs.n_queries());
        // Outside the slice nothing was read, so those queries cannot be ranked.
        let err = relink_range(&inputs, &config, 0..1, &NoProgress).unwrap_err().to_string();
        assert!(err.contains("was not loaded"), "{err}");
        // The slice ranks exactly like a fully loaded cohort's.
        let cohort = Cohort::load(dir.path()).unwrap();
        let full = RelinkInputs::from_cohort(&cohort, &config).unwrap();
        assert_eq!(
            relink_range(&inputs, &config, range.clone(), &NoProgress).unwrap(),
            relink_range(&full, &config, range, &NoProgress).unwrap()
        );
        // Resume: a complete partial with the same fingerprint is not recomputed; other
        // settings replace it.
        let out = tempfile::tempdir().unwrap();
        let path = out.path().join(shard.file_name(AUDIT));
        assert!(matches!(
            run_shard(dir.path(), &config, shard, &path, &NoProgress).unwrap(),
            ShardRun::Written { .. }
        ));
        let before = std::fs::metadata(&path).unwrap().modified().unwrap();
        assert_eq!(run_shard(dir.path(), &config, shard, &path, &NoProgress).unwrap(), ShardRun::Skipped);
        assert_eq!(std::fs::metadata(&path).unwrap().modified().unwrap(), before);
        let other = RelinkConfig { seed: 1, ..config.clone() };
        match run_shard(dir.path(), &other, shard, &path, &NoProgress).unwrap() {
            ShardRun::Written { replaced: Some(reason), .. } => {
                assert!(reason.contains("other inputs or settings"))
            }
            r => panic!("{r:?}"),
        }
    }
}
