//! Sharded re-identification: one shard trains the attacker (deterministically, so every
//! shard trains the same one), ranks a contiguous slice of the queries against the whole
//! split under every attacker and writes their per-query records ([`ReidRecord`]) as a
//! partial result (`crate::shard`); [`merge`] checks a set of partials, concatenates their
//! records and runs [`finish`], the code a single run ends with, so the merged report is
//! the single run's report, number for number.
//!
//! The context ([`ReidContext`]) carries the exclusion counts, the training report and a
//! blake3 of the split's rows in the trained metric: partials of shards that trained
//! different attackers (e.g. on machines whose CPUs round differently) do not merge.
//!
//! Body layout (little-endian, see `crate::shard::codec`): per attacker, the record count
//! (`u64`) and the records. A record: cohort row `u64`, patient `u32`, negatives `u64`; a
//! presence byte and the best positive's greater, tied negatives and tied positives (`u64`
//! each); positive count `u32` and per positive its gallery index `u32`, score (`f32`
//! bits), greater and tied (`u64`); sampled negative count `u32` and their scores (`f32`
//! bits).

use std::path::Path;

use super::{finish, ReidConfig, ReidContext, ReidPass, ReidRecord, ReidReport};
use crate::cohort::{load_views, Cohort, ViewRequest};
use crate::engine::{FirstPositive, PositiveRank, Progress};
use crate::error::{Error, Result};
use crate::shard::codec::{decode_lists, encode_lists, Reader, Writer};
use crate::shard::{
    compute_shard, hash_inputs, open_set, read_partial, Fingerprint, Partial, ShardOutput, ShardRun,
    ShardSpec,
};

/// The audit's name in fingerprints and partial file names.
pub const AUDIT: &str = "reid";

/// The fingerprint of `config` on cohort directory `dir` split into `shard_count` shards
/// (hashes every cohort file). Refuses a configuration with an attack comparison: it is not
/// sharded.
pub fn fingerprint(dir: &Path, config: &ReidConfig, shard_count: usize) -> Result<Fingerprint> {
    config.validate()?;
    if config.attack.is_some() {
        return Err(Error::config(
            "--attack with --shard: the attack comparison is not sharded; run it on one machine and shard the plain audit (--attack none)",
        ));
    }
    Fingerprint::new(AUDIT, config, hash_inputs(dir)?, shard_count)
}

/// Compute shard `shard` of the audit `config` on cohort directory `dir` into `path`,
/// unless `path` already holds this shard's complete partial with the same fingerprint
/// (resume). Reads the metadata and the audited view only; the write is atomic.
pub fn run_shard(
    dir: &Path,
    config: &ReidConfig,
    shard: ShardSpec,
    path: &Path,
    progress: &dyn Progress,
) -> Result<ShardRun> {
    compute_shard(fingerprint(dir, config, shard.count)?, shard, path, || {
        let (metadata, views) =
            load_views(dir, |_| Ok(vec![ViewRequest { name: config.view.clone(), rows: None }]))?;
        let cohort = Cohort::from_parts(dir, metadata, views)?;
        let pass = ReidPass::new(&cohort, config, progress)?;
        let n_queries = pass.n_queries();
        let part = pass.rank(shard.queries(n_queries), progress)?;
        let context = serde_json::to_value(&part.context)
            .map_err(|e| Error::config(format!("serialising the reid context: {e}")))?;
        Ok(ShardOutput {
            n_queries,
            context,
            body: encode(&part.records),
            cohort_name: crate::shard::cohort_name(dir),
        })
    })
}

/// Check that `partials` are one complete reid run, concatenate their records and finish
/// them into the report a single run writes.
pub fn merge(partials: &[Partial]) -> Result<ReidReport> {
    let set = open_set::<ReidConfig, ReidContext>(partials, AUDIT)?;
    let attackers = set.context.attackers.len();
    let records = set.concat_records(attackers, "attacker", |p| decode(&p.body, &p.path, attackers))?;
    finish(&set.config, &set.context, &records)
}

/// Read and merge the partial files `paths` (see [`merge`]).
pub fn merge_files(paths: &[impl AsRef<Path>]) -> Result<ReidReport> {
    let partials = paths.iter().map(|p| read_partial(p.as_ref())).collect::<Result<Vec<_>>>()?;
    merge(&partials)
}

/// Encode per-attacker records (the body of a reid partial).
pub fn encode(records: &[Vec<ReidRecord>]) -> Vec<u8> {
    encode_lists(records, encode_record)
}

/// Decode a body of `attackers` record lists; `path` names the file in errors.
pub fn decode(bytes: &[u8], path: &Path, attackers: usize) -> Result<Vec<Vec<ReidRecord>>> {
    decode_lists(bytes, path, attackers, 29, decode_record)
}

fn encode_record(w: &mut Writer, r: &ReidRecord) {
    w.usize(r.record);
    w.u32(r.patient);
    w.u64(r.n_negatives);
    w.bool(r.first.is_some());
    if let Some(f) = &r.first {
        w.u64(f.greater);
        w.u64(f.tied_negatives);
        w.u64(f.tied_positives);
    }
    w.u32(r.positives.len() as u32);
    for p in &r.positives {
        w.u32(p.gallery);
        w.f32(p.score);
        w.u64(p.greater);
        w.u64(p.tied);
    }
    w.u32(r.negative_scores.len() as u32);
    for &s in &r.negative_scores {
        w.f32(s);
    }
}

fn decode_record(r: &mut Reader<'_>) -> Result<ReidRecord> {
    let record = r.usize()?;
    let patient = r.u32()?;
    let n_negatives = r.u64()?;
    let first = if r.bool()? {
        Some(FirstPositive { greater: r.u64()?, tied_negatives: r.u64()?, tied_positives: r.u64()? })
    } else {
        None
    };
    let n_positives = r.u32()? as usize;
    if n_positives > 1 << 24 {
        return Err(r.corrupt("impossible positive count"));
    }
    let positives = (0..n_positives)
        .map(|_| Ok(PositiveRank { gallery: r.u32()?, score: r.f32()?, greater: r.u64()?, tied: r.u64()? }))
        .collect::<Result<Vec<_>>>()?;
    let n_scores = r.u32()? as usize;
    if n_scores > 1 << 24 {
        return Err(r.corrupt("impossible negative count"));
    }
    let negative_scores = (0..n_scores).map(|_| r.f32()).collect::<Result<Vec<_>>>()?;
    Ok(ReidRecord { record, patient, n_negatives, first, positives, negative_scores })
}

#[cfg(test)]
mod tests;
