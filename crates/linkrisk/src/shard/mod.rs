//! Sharded audits: a full-rank pass split into contiguous query slices that run as separate
//! processes (Slurm job-array tasks), each writing a *partial result*, and a merge that
//! turns the partials into exactly the report one process would have written.
//!
//! Why this is exact: the ranking engine gives every query's scores the same bits whatever
//! block or shard computed them, and every random choice (pools) is drawn from a stream
//! seeded by the query's index. So a shard's per-query records are the single run's records
//! for those queries. Anything computed *over* queries (means, intervals, the patient
//! bootstrap) is computed only at merge time, from the concatenated records, by the same
//! finishing code the single run uses.
//!
//! This module is audit-agnostic. An audit that supports shards provides (1) a per-query
//! record type with a binary encoding ([`codec`]), (2) a JSON *context* (what the finish
//! step needs besides the records; identical in every shard, e.g. view names and exclusion
//! counts) and (3) a finish function `config + context + records -> report`. This module
//! provides the shard arithmetic ([`ShardSpec`]), the [`Fingerprint`] of inputs and
//! settings, the partial file format ([`write_partial`], [`read_partial`]), the resume check
//! ([`resume_state`]) and the checks a merge runs before trusting a set of partials
//! ([`check_set`]), and the loops around them: [`compute_shard`] (resume, compute, atomic
//! write) and [`open_set`] / [`MergeSet::concat_records`] (check, read back, concatenate).
//! Users: `crate::audit::relink::partial` and `crate::audit::reid::partial`.
//!
//! File format (version 1), little-endian:
//! `"LINKRISK-PARTIAL"` (16 bytes), format `u32`, header length `u64`, header (JSON:
//! [`PartialHeader`]), body length `u64`, body (the audit's records), blake3 of everything
//! before (32 bytes), `"COMPLETE"` (8 bytes). A file is written to a temporary name, synced
//! and renamed, so a killed shard leaves either nothing or a hidden temporary file, never a
//! file that passes [`read_partial`].

pub mod codec;
mod inputs;

use std::fmt;
use std::io::Write;
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{Error, Result};
pub use inputs::{cohort_fingerprint, cohort_name, fingerprint_of_inputs, hash_inputs, InputFile};

/// Version of the partial file layout and of [`Fingerprint`]'s meaning.
pub const PARTIAL_FORMAT: u32 = 1;
/// File extension of partial results.
pub const PARTIAL_EXTENSION: &str = "lrp";
const MAGIC: &[u8; 16] = b"LINKRISK-PARTIAL";
const END: &[u8; 8] = b"COMPLETE";
/// Bytes of a partial file besides header and body.
const OVERHEAD: usize = 16 + 4 + 8 + 8 + 32 + 8;

/// Shard `index` of `count` (1-based, as written on the command line: `--shard 2/4`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ShardSpec {
    /// Which shard, 1 to `count`.
    pub index: usize,
    /// How many shards the audit is split into.
    pub count: usize,
}

impl ShardSpec {
    /// Shard `index` of `count`, checked.
    pub fn new(index: usize, count: usize) -> Result<ShardSpec> {
        if count == 0 {
            return Err(Error::config("--shard I/N: N must be at least 1"));
        }
        if index == 0 || index > count {
            return Err(Error::config(format!(
                "--shard {index}/{count}: shards are numbered 1 to {count} (e.g. --shard 1/{count})"
            )));
        }
        Ok(ShardSpec { index, count })
    }

    /// Parse `I/N`.
    pub fn parse(text: &str) -> Result<ShardSpec> {
        let bad =
            || Error::config(format!("--shard `{text}`: expected I/N with 1 <= I <= N, e.g. --shard 2/8"));
        let (i, n) = text.trim().split_once('/').ok_or_else(bad)?;
        let index: usize = i.trim().parse().map_err(|_| bad())?;
        let count: usize = n.trim().parse().map_err(|_| bad())?;
        ShardSpec::new(index, count)
    }

    /// The whole audit as one shard.
    pub fn whole() -> ShardSpec {
        ShardSpec { index: 1, count: 1 }
    }

    /// This shard's queries among `n`: contiguous and balanced (sizes differ by at most one;
    /// shards may be empty when there are more shards than queries).
    pub fn queries(&self, n: usize) -> Range<usize> {
        let at = |k: usize| ((k as u128 * n as u128) / self.count as u128) as usize;
        at(self.index - 1)..at(self.index)
    }

    /// The partial's file name for `audit`, e.g. `relink.shard-0002-of-0004.lrp`.
    pub fn file_name(&self, audit: &str) -> String {
        format!("{audit}.shard-{:04}-of-{:04}.{PARTIAL_EXTENSION}", self.index, self.count)
    }
}

impl fmt::Display for ShardSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// What a partial result was computed from: partials merge only when their fingerprints
/// are equal. Holds the audit, its full configuration (every flag and the seed), the content
/// hashes of the cohort files, the linkrisk version and the shard count.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Fingerprint {
    /// [`PARTIAL_FORMAT`] of the writer.
    pub format: u32,
    /// linkrisk version of the writer (scores could change between versions).
    pub linkrisk_version: String,
    /// The audit, e.g. `relink`.
    pub audit: String,
    /// The audit's configuration, serialized (the merge finishes with it).
    pub config: Value,
    /// The cohort's files by content ([`hash_inputs`]).
    pub inputs: Vec<InputFile>,
    /// Number of shards of the run.
    pub shard_count: usize,
}

impl Fingerprint {
    /// The fingerprint of `audit` run with `config` on `inputs`, split into `shard_count`.
    pub fn new(
        audit: &str,
        config: &impl Serialize,
        inputs: Vec<InputFile>,
        shard_count: usize,
    ) -> Result<Fingerprint> {
        let config = serde_json::to_value(config)
            .map_err(|e| Error::config(format!("serialising the configuration: {e}")))?;
        Ok(Fingerprint {
            format: PARTIAL_FORMAT,
            linkrisk_version: crate::VERSION.to_string(),
            audit: audit.to_string(),
            config,
            inputs,
            shard_count,
        })
    }

    /// A short identity: blake3 (hex) of the fingerprint's canonical JSON (object keys sorted).
    pub fn id(&self) -> String {
        let text = serde_json::to_vec(self).expect("a fingerprint serializes");
        blake3::hash(&text).to_hex().to_string()
    }

    /// How `other` differs from `self`, one line per difference (empty when equal).
    pub fn differences(&self, other: &Fingerprint) -> Vec<String> {
        let mut out = Vec::new();
        if self.format != other.format {
            out.push(format!("partial format {} vs {}", self.format, other.format));
        }
        if self.linkrisk_version != other.linkrisk_version {
            out.push(format!("linkrisk version {} vs {}", self.linkrisk_version, other.linkrisk_version));
        }
        if self.audit != other.audit {
            out.push(format!("audit {} vs {}", self.audit, other.audit));
        }
        if self.shard_count != other.shard_count {
            out.push(format!("shard count {} vs {}", self.shard_count, other.shard_count));
        }
        match (&self.config, &other.config) {
            (Value::Object(a), Value::Object(b)) => {
                let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
                keys.sort();
                keys.dedup();
                for k in keys {
                    let (x, y) = (a.get(k).unwrap_or(&Value::Null), b.get(k).unwrap_or(&Value::Null));
                    if x != y {
                        out.push(format!("setting {k}: {x} vs {y}"));
                    }
                }
            }
            (a, b) if a != b => out.push(format!("settings {a} vs {b}")),
            _ => {}
        }
        for f in &self.inputs {
            match other.inputs.iter().find(|g| g.file == f.file) {
                None => out.push(format!("input file {} only in the first", f.file)),
                Some(g) if g != f => out.push(format!(
                    "input file {} has different contents ({} bytes, blake3 {}.. vs {} bytes, blake3 {}..)",
                    f.file,
                    f.bytes,
                    &f.blake3[..12.min(f.blake3.len())],
                    g.bytes,
                    &g.blake3[..12.min(g.blake3.len())]
                )),
                Some(_) => {}
            }
        }
        for g in &other.inputs {
            if !self.inputs.iter().any(|f| f.file == g.file) {
                out.push(format!("input file {} only in the second", g.file));
            }
        }
        out
    }
}

/// The JSON header of a partial result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PartialHeader {
    /// What the partial was computed from.
    pub fingerprint: Fingerprint,
    /// `fingerprint.id()`, stored so a reader can check it.
    pub fingerprint_id: String,
    /// Which shard this is.
    pub shard: ShardSpec,
    /// Queries of the whole audit (per section, e.g. per direction).
    pub n_queries: usize,
    /// This shard's queries, `[start, end)`.
    pub queries: [usize; 2],
    /// What the audit's finish step needs besides the records; identical in every shard.
    pub context: Value,
    /// The name of the cohort directory the shard read ([`cohort_name`]): the default label
    /// of the merged report in a run directory. Not part of the fingerprint (the same cohort
    /// may be mounted under other names on other nodes); absent in older partials.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cohort_name: Option<String>,
}

impl PartialHeader {
    /// The header of shard `shard` of an audit over `n_queries` queries.
    pub fn new(
        fingerprint: Fingerprint,
        shard: ShardSpec,
        n_queries: usize,
        context: Value,
    ) -> PartialHeader {
        let range = shard.queries(n_queries);
        PartialHeader {
            fingerprint_id: fingerprint.id(),
            fingerprint,
            shard,
            n_queries,
            queries: [range.start, range.end],
            context,
            cohort_name: None,
        }
    }

    /// This shard's query range.
    pub fn query_range(&self) -> Range<usize> {
        self.queries[0]..self.queries[1]
    }
}

/// A partial result read back and verified.
#[derive(Debug, Clone)]
pub struct Partial {
    /// Where it was read from.
    pub path: PathBuf,
    /// Its header.
    pub header: PartialHeader,
    /// The audit's records (decoded by the audit).
    pub body: Vec<u8>,
}

/// Write a partial result atomically: a temporary sibling is written, synced and renamed.
pub fn write_partial(path: &Path, header: &PartialHeader, body: &[u8]) -> Result<()> {
    let header_json = serde_json::to_vec(header)
        .map_err(|e| Error::config(format!("serialising the partial header: {e}")))?;
    let mut bytes = Vec::with_capacity(OVERHEAD + header_json.len() + body.len());
    bytes.extend_from_slice(MAGIC);
    bytes.extend_from_slice(&PARTIAL_FORMAT.to_le_bytes());
    bytes.extend_from_slice(&(header_json.len() as u64).to_le_bytes());
    bytes.extend_from_slice(&header_json);
    bytes.extend_from_slice(&(body.len() as u64).to_le_bytes());
    bytes.extend_from_slice(body);
    let hash = blake3::hash(&bytes);
    bytes.extend_from_slice(hash.as_bytes());
    bytes.extend_from_slice(END);
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|e| Error::write(parent, e))?;
    }
    crate::cohort::write::atomic(path, |tmp| {
        let mut file = std::fs::File::create(tmp).map_err(|e| Error::write(tmp, e))?;
        file.write_all(&bytes).map_err(|e| Error::write(tmp, e))?;
        file.sync_all().map_err(|e| Error::write(tmp, e))
    })?;
    // Make the rename itself durable (best effort: not every filesystem allows it).
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        if let Ok(dir) = std::fs::File::open(parent) {
            let _ = dir.sync_all();
        }
    }
    Ok(())
}

/// Read a partial result and verify it: layout, end marker, checksum, header and the
/// fingerprint id. Anything else is an error that says the file is incomplete or corrupt.
pub fn read_partial(path: &Path) -> Result<Partial> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let corrupt = |what: &str| {
        Error::input(
            path,
            format!("{what}; this is not a complete partial result: delete it and rerun that shard"),
        )
    };
    if bytes.len() < 16 || &bytes[..16] != MAGIC {
        return Err(corrupt("not a linkrisk partial result (no LINKRISK-PARTIAL magic)"));
    }
    if bytes.len() < OVERHEAD || &bytes[bytes.len() - 8..] != END {
        return Err(corrupt("the file is incomplete (no end marker): its shard was interrupted"));
    }
    let format = u32::from_le_bytes(bytes[16..20].try_into().expect("4 bytes"));
    if format != PARTIAL_FORMAT {
        return Err(Error::input(
            path,
            format!("partial format {format}, but this linkrisk ({}) reads format {PARTIAL_FORMAT}; rerun the shard with this version", crate::VERSION),
        ));
    }
    let hashed_end = bytes.len() - 40;
    if blake3::hash(&bytes[..hashed_end]).as_bytes() != &bytes[hashed_end..hashed_end + 32] {
        return Err(corrupt("checksum mismatch: the file is corrupt"));
    }
    let header_len = u64::from_le_bytes(bytes[20..28].try_into().expect("8 bytes")) as usize;
    let body_len_at = 28usize.checked_add(header_len).filter(|&e| e + 8 <= hashed_end);
    let Some(body_len_at) = body_len_at else { return Err(corrupt("bad header length")) };
    let body_len =
        u64::from_le_bytes(bytes[body_len_at..body_len_at + 8].try_into().expect("8 bytes")) as usize;
    if body_len_at + 8 + body_len != hashed_end {
        return Err(corrupt("bad body length"));
    }
    let header: PartialHeader = serde_json::from_slice(&bytes[28..body_len_at])
        .map_err(|e| corrupt(&format!("unreadable header ({e})")))?;
    if header.fingerprint.id() != header.fingerprint_id {
        return Err(corrupt("the fingerprint does not match its id"));
    }
    if header.shard.index == 0
        || header.shard.index > header.shard.count
        || header.shard.count != header.fingerprint.shard_count
        || header.query_range() != header.shard.queries(header.n_queries)
    {
        return Err(corrupt("inconsistent shard numbers"));
    }
    let body = bytes[body_len_at + 8..hashed_end].to_vec();
    Ok(Partial { path: path.to_path_buf(), header, body })
}

/// What a shard finds where its partial result goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResumeState {
    /// No file: compute.
    Missing,
    /// A complete partial of this shard with this fingerprint: nothing to do.
    Complete,
    /// A file that cannot be reused (incomplete, corrupt, other settings or shard): compute
    /// and replace it. The reason is for the log.
    Stale(String),
}

/// Decide whether shard `shard` with fingerprint id `fingerprint_id` can skip its work
/// because `path` already holds its complete result.
pub fn resume_state(path: &Path, fingerprint_id: &str, shard: ShardSpec) -> ResumeState {
    if !path.exists() {
        return ResumeState::Missing;
    }
    match read_partial(path) {
        Err(e) => ResumeState::Stale(e.to_string()),
        Ok(p) if p.header.fingerprint_id != fingerprint_id => {
            ResumeState::Stale("it was computed from other inputs or settings".into())
        }
        Ok(p) if p.header.shard != shard => {
            ResumeState::Stale(format!("it holds shard {}, not {shard}", p.header.shard))
        }
        Ok(_) => ResumeState::Complete,
    }
}

/// What [`compute_shard`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ShardRun {
    /// The partial already existed, complete and with this fingerprint: nothing was done.
    Skipped,
    /// The shard was computed and written. `replaced` says why an existing file at the path
    /// could not be reused, if there was one.
    Written {
        /// Queries of this shard (per record list).
        queries: Range<usize>,
        /// Queries of the whole audit (per record list).
        n_queries: usize,
        /// Why an existing file was replaced.
        replaced: Option<String>,
    },
}

/// What an audit's shard computed: the audit's query count, its context (identical in
/// every shard) and the encoded records of the shard's queries.
#[derive(Debug, Clone, PartialEq)]
pub struct ShardOutput {
    /// Queries of the whole audit; the shard's slice is `shard.queries(n_queries)`.
    pub n_queries: usize,
    /// What the finish step needs besides the records (JSON).
    pub context: Value,
    /// The encoded records of the shard's queries.
    pub body: Vec<u8>,
    /// The cohort directory's name ([`cohort_name`]), recorded in the header.
    pub cohort_name: Option<String>,
}

/// The shard loop every sharded audit shares: unless `path` already holds shard `shard`'s
/// complete partial with `fingerprint` (resume: [`ShardRun::Skipped`]), run `compute` and
/// write its output atomically to `path`.
pub fn compute_shard(
    fingerprint: Fingerprint,
    shard: ShardSpec,
    path: &Path,
    compute: impl FnOnce() -> Result<ShardOutput>,
) -> Result<ShardRun> {
    let replaced = match resume_state(path, &fingerprint.id(), shard) {
        ResumeState::Complete => return Ok(ShardRun::Skipped),
        ResumeState::Missing => None,
        ResumeState::Stale(reason) => Some(reason),
    };
    let output = compute()?;
    let queries = shard.queries(output.n_queries);
    let mut header = PartialHeader::new(fingerprint, shard, output.n_queries, output.context);
    header.cohort_name = output.cohort_name;
    write_partial(path, &header, &output.body)?;
    Ok(ShardRun::Written { queries, n_queries: output.n_queries, replaced })
}

/// A checked, complete set of one audit's partials: the settings and context they share
/// and the partials in shard order.
#[derive(Debug)]
pub struct MergeSet<'a, C, X> {
    /// The audit's settings, read from the fingerprint.
    pub config: C,
    /// The audit's context, read from the headers (equal in every partial).
    pub context: X,
    /// The partials, shard 1 first.
    pub ordered: Vec<&'a Partial>,
}

/// Open `partials` for the merge of audit `audit`: [`check_set`], then the audit name and
/// its settings and context read back as `C` and `X`. Errors name the file.
pub fn open_set<'a, C: DeserializeOwned, X: DeserializeOwned>(
    partials: &'a [Partial],
    audit: &str,
) -> Result<MergeSet<'a, C, X>> {
    let order = check_set(partials)?;
    let ordered: Vec<&Partial> = order.iter().map(|&i| &partials[i]).collect();
    let first = ordered[0];
    let fingerprint = &first.header.fingerprint;
    if fingerprint.audit != audit {
        return Err(Error::input(&first.path, format!("holds a `{}` audit, not {audit}", fingerprint.audit)));
    }
    let config: C = serde_json::from_value(fingerprint.config.clone()).map_err(|e| {
        Error::input(&first.path, format!("unreadable {audit} settings in the fingerprint: {e}"))
    })?;
    let context: X = serde_json::from_value(first.header.context.clone())
        .map_err(|e| Error::input(&first.path, format!("unreadable {audit} context: {e}")))?;
    Ok(MergeSet { config, context, ordered })
}

impl<C, X> MergeSet<'_, C, X> {
    /// Decode every partial's body into `lists` record lists (one per direction or
    /// attacker, named `list` in messages) with `decode`, check that each list holds one
    /// record per query of the partial's slice, and concatenate them in shard order.
    pub fn concat_records<T>(
        &self,
        lists: usize,
        list: &str,
        decode: impl Fn(&Partial) -> Result<Vec<Vec<T>>>,
    ) -> Result<Vec<Vec<T>>> {
        let n_queries = self.ordered.first().map_or(0, |p| p.header.n_queries);
        let mut records: Vec<Vec<T>> = (0..lists).map(|_| Vec::with_capacity(n_queries)).collect();
        for p in &self.ordered {
            let part = decode(p)?;
            let expected = p.header.query_range().len();
            if part.len() != lists {
                return Err(Error::input(
                    &p.path,
                    format!(
                        "holds {} record lists, expected {lists}; the partial is corrupt: rerun that shard",
                        part.len()
                    ),
                ));
            }
            if let Some(d) = part.iter().position(|r| r.len() != expected) {
                return Err(Error::input(
                    &p.path,
                    format!(
                        "holds {} records in {list} {} for its {expected} queries; the partial is corrupt: rerun that shard",
                        part[d].len(),
                        d + 1
                    ),
                ));
            }
            for (all, mut some) in records.iter_mut().zip(part) {
                all.append(&mut some);
            }
        }
        Ok(records)
    }
}

/// Check that `partials` are exactly one complete run: equal fingerprints, each shard
/// 1..=N present once, the same query count and context. Returns the partials' positions in
/// shard order. Errors name the offending files and say what to do.
pub fn check_set(partials: &[Partial]) -> Result<Vec<usize>> {
    let Some(first) = partials.first() else {
        return Err(Error::config("no partial results given; pass every shard's .lrp file"));
    };
    let head = &first.header;
    for p in &partials[1..] {
        if p.header.fingerprint_id != head.fingerprint_id {
            let diff = head.fingerprint.differences(&p.header.fingerprint);
            return Err(Error::input(
                &p.path,
                format!(
                    "was computed from other inputs or settings than {}: {}; merge only the partials of one run \
                     (same cohort files, flags, seed, linkrisk version and shard count)",
                    first.path.display(),
                    if diff.is_empty() { "fingerprints differ".to_string() } else { diff.join("; ") }
                ),
            ));
        }
    }
    let count = head.shard.count;
    let mut slot: Vec<Option<usize>> = vec![None; count];
    for (i, p) in partials.iter().enumerate() {
        let k = p.header.shard.index - 1;
        if let Some(j) = slot[k] {
            return Err(Error::input(
                &p.path,
                format!(
                    "shard {} is given twice ({} and {}); pass each shard's partial once",
                    p.header.shard,
                    partials[j].path.display(),
                    p.path.display()
                ),
            ));
        }
        slot[k] = Some(i);
    }
    let missing: Vec<String> = slot
        .iter()
        .enumerate()
        .filter(|(_, s)| s.is_none())
        .map(|(k, _)| format!("{}/{count}", k + 1))
        .collect();
    if !missing.is_empty() {
        return Err(Error::config(format!(
            "missing shard{} {} of {count}: a merge needs every shard; rerun the missing shard{} \
             (same command with --shard I/{count}) and pass all {count} partials",
            if missing.len() > 1 { "s" } else { "" },
            missing.join(", "),
            if missing.len() > 1 { "s" } else { "" },
        )));
    }
    for p in &partials[1..] {
        if p.header.n_queries != head.n_queries || p.header.context != head.context {
            return Err(Error::input(
                &p.path,
                format!(
                    "has the fingerprint of {} but a different query count or context: one of them is corrupt; rerun both shards",
                    first.path.display()
                ),
            ));
        }
    }
    Ok(slot.into_iter().map(|s| s.expect("checked above")).collect())
}

/// Test helper for sharded audits: write shards 1..=`count` of `audit` with `run` (shard,
/// partial path) into a fresh directory, each written anew, then `merge` the files in reverse
/// order (any order must merge the same). Returns the merge's result and the paths.
#[cfg(test)]
pub(crate) fn shards_then_merge<R>(
    audit: &str,
    count: usize,
    run: impl Fn(ShardSpec, &Path) -> Result<ShardRun>,
    merge: impl FnOnce(&[PathBuf]) -> Result<R>,
) -> (R, Vec<PathBuf>) {
    let out = tempfile::tempdir().unwrap().keep();
    let paths: Vec<PathBuf> = (1..=count)
        .map(|i| {
            let shard = ShardSpec::new(i, count).unwrap();
            let path = out.join(shard.file_name(audit));
            let result = run(shard, &path).unwrap();
            assert!(matches!(result, ShardRun::Written { replaced: None, .. }), "{result:?}");
            path
        })
        .collect();
    let mut reversed = paths.clone();
    reversed.reverse();
    (merge(&reversed).unwrap(), paths)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fingerprint(seed: u64, count: usize) -> Fingerprint {
        let inputs = vec![InputFile { file: "image.npy".into(), bytes: 10, blake3: "ab".repeat(32) }];
        Fingerprint::new("test", &serde_json::json!({"seed": seed, "trials": 5}), inputs, count).unwrap()
    }

    #[test]
    fn shard_ranges_tile_and_balance() {
        for n in [0usize, 1, 5, 7, 100, 1001] {
            for count in 1..9 {
                let mut next = 0;
                for index in 1..=count {
                    let r = ShardSpec::new(index, count).unwrap().queries(n);
                    assert_eq!(r.start, next);
                    assert!(r.len() == n / count || r.len() == n / count + 1, "{n} {count} {r:?}");
                    next = r.end;
                }
                assert_eq!(next, n);
            }
        }
        assert_eq!(ShardSpec::parse(" 2/8").unwrap(), ShardSpec { index: 2, count: 8 });
        for bad in ["0/4", "5/4", "1/0", "x/4", "3", "1/2/3"] {
            let e = ShardSpec::parse(bad).unwrap_err().to_string();
            assert!(e.contains("--shard"), "{bad}: {e}");
        }
        assert_eq!(ShardSpec::new(2, 16).unwrap().file_name("relink"), "relink.shard-0002-of-0016.lrp");
        assert_eq!(ShardSpec::new(3, 4).unwrap().to_string(), "3/4");
    }

    #[test]
    fn fingerprint_id_is_stable_and_differences_are_named() {
        let a = fingerprint(0, 4);
        assert_eq!(a.id(), fingerprint(0, 4).id());
        assert_eq!(a.id().len(), 64);
        let b = fingerprint(1, 4);
        assert_ne!(a.id(), b.id());
        assert_eq!(a.differences(&b), vec!["setting seed: 0 vs 1".to_string()]);
        let mut c = fingerprint(0, 2);
        c.inputs[0].blake3 = "cd".repeat(32);
        let d = a.differences(&c);
        assert!(d.iter().any(|l| l.contains("shard count 4 vs 2")), "{d:?}");
        assert!(d.iter().any(|l| l.contains("image.npy has different contents")), "{d:?}");
    }

    #[test]
    fn hash_inputs_sees_content_not_location() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        for dir in [a.path(), b.path()] {
            std::fs::write(dir.join("metadata.csv"), "id,patient_id\n").unwrap();
            std::fs::write(dir.join("image.npy"), [1u8, 2, 3]).unwrap();
            std::fs::write(dir.join(".hidden.tmp-1"), [9u8]).unwrap();
        }
        let ha = hash_inputs(a.path()).unwrap();
        assert_eq!(ha, hash_inputs(b.path()).unwrap());
        assert_eq!(ha.iter().map(|f| f.file.as_str()).collect::<Vec<_>>(), vec!["image.npy", "metadata.csv"]);
        assert_eq!(ha[0].blake3, blake3::hash(&[1, 2, 3]).to_hex().to_string());
        std::fs::write(b.path().join("image.npy"), [1u8, 2, 4]).unwrap();
        assert_ne!(ha, hash_inputs(b.path()).unwrap());
    }

    fn write(dir: &Path, fp: &Fingerprint, index: usize, body: &[u8]) -> PathBuf {
        let shard = ShardSpec::new(index, fp.shard_count).unwrap();
        let path = dir.join(shard.file_name("test"));
        let header = PartialHeader::new(fp.clone(), shard, 10, serde_json::json!({"k": 1}));
        write_partial(&path, &header, body).unwrap();
        path
    }

    #[test]
    fn partial_round_trip_corruption_and_resume() {
        let tmp = tempfile::tempdir().unwrap();
        let fp = fingerprint(0, 3);
        let path = write(tmp.path(), &fp, 2, b"records");
        let p = read_partial(&path).unwrap();
        assert_eq!(p.body, b"records");
        assert_eq!(p.header.query_range(), 3..6);
        assert_eq!(p.header.fingerprint, fp);
        let shard = ShardSpec::new(2, 3).unwrap();
        assert_eq!(resume_state(&path, &fp.id(), shard), ResumeState::Complete);
        assert!(matches!(resume_state(&path, &fingerprint(1, 3).id(), shard), ResumeState::Stale(_)));
        assert!(matches!(
            resume_state(&path, &fp.id(), ShardSpec::new(1, 3).unwrap()),
            ResumeState::Stale(_)
        ));
        assert_eq!(resume_state(&tmp.path().join("none.lrp"), &fp.id(), shard), ResumeState::Missing);
        // No temporary file is left behind.
        assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 1);

        let bytes = std::fs::read(&path).unwrap();
        let bad = tmp.path().join("bad.lrp");
        // Truncated anywhere: incomplete.
        for cut in [bytes.len() - 1, bytes.len() - 20, bytes.len() / 2, 10] {
            std::fs::write(&bad, &bytes[..cut]).unwrap();
            let e = read_partial(&bad).unwrap_err().to_string();
            assert!(
                e.contains("not a complete partial result") || e.contains("not a linkrisk partial"),
                "{e}"
            );
            assert!(matches!(resume_state(&bad, &fp.id(), shard), ResumeState::Stale(_)));
        }
        // One flipped bit in the body: checksum.
        let mut flipped = bytes.clone();
        let at = bytes.len() - 45;
        flipped[at] ^= 1;
        std::fs::write(&bad, &flipped).unwrap();
        let e = read_partial(&bad).unwrap_err().to_string();
        assert!(e.contains("checksum mismatch"), "{e}");
    }

    #[test]
    fn check_set_refuses_mixed_missing_and_duplicate_shards() {
        let tmp = tempfile::tempdir().unwrap();
        let fp = fingerprint(0, 3);
        let paths: Vec<PathBuf> = (1..=3).map(|i| write(tmp.path(), &fp, i, &[i as u8])).collect();
        let read = |ps: &[&PathBuf]| ps.iter().map(|p| read_partial(p).unwrap()).collect::<Vec<_>>();
        assert_eq!(check_set(&read(&[&paths[2], &paths[0], &paths[1]])).unwrap(), vec![1, 2, 0]);
        let e = check_set(&read(&[&paths[0], &paths[2]])).unwrap_err().to_string();
        assert!(e.contains("missing shard 2/3"), "{e}");
        let e = check_set(&read(&[&paths[0], &paths[1], &paths[1], &paths[2]])).unwrap_err().to_string();
        assert!(e.contains("shard 2/3 is given twice"), "{e}");
        let other = tempfile::tempdir().unwrap();
        let odd = write(other.path(), &fingerprint(5, 3), 3, &[3]);
        let e = check_set(&read(&[&paths[0], &paths[1], &odd])).unwrap_err().to_string();
        assert!(e.contains("other inputs or settings") && e.contains("setting seed: 0 vs 5"), "{e}");
        assert!(check_set(&[]).is_err());
    }
}
