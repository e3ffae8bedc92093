//! Per-query records of a relink pass: targets, pools and subgroup codes of every query, ranked.

use std::collections::HashMap;
use std::ops::Range;

use serde::{Deserialize, Serialize};

use super::*;
use crate::attack::decoy_targets;
use crate::attack::evaluate::{attack_outcome, ControlReducer};
use crate::attack::Evaluation;
use crate::cohort::{Label, Metadata};
use crate::engine::pools::{LabelCodes, PoolEvaluator, PoolOutcome};
use crate::engine::{rank_with, FirstPositive, Progress, RankOptions, Rows, Targets};
use crate::error::{Error, Result};

/// What finishing a direction needs besides the per-query records: derived from the
/// metadata, the gallery and the config alone, so every shard computes the same context
/// (a merge checks that they agree).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DirectionContext {
    /// View of the queries.
    pub query_view: String,
    /// View of the gallery.
    pub gallery_view: String,
    /// Queries (records of the split).
    pub n_queries: usize,
    /// Gallery items.
    pub n_gallery: usize,
    /// Pool sizes evaluated (the requested sizes that fit the gallery), in order.
    pub pool_sizes: Vec<usize>,
    /// Requested pool sizes larger than the gallery (reported as skipped).
    pub oversized_pools: Vec<usize>,
    /// Whether pathology-matched pools were evaluated.
    pub pathology_matched: bool,
    /// Gallery items excluded as same-study records, summed over queries.
    pub excluded_same_study: u64,
    /// Extra same-patient positives, summed over queries.
    pub extra_positives: u64,
    /// Gallery items that exactly duplicate another.
    pub gallery_exact_duplicates: usize,
    /// Subgroup attributes and their values (sorted); records hold value indices.
    pub subgroups: Vec<SubgroupAttribute>,
}

/// A subgroup attribute and its values over all queries.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SubgroupAttribute {
    /// `sex`, `race`, `age` or `split`.
    pub attribute: String,
    /// Distinct values, sorted.
    pub values: Vec<String>,
}

/// The context of every audited direction (forward first).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RelinkContext {
    /// One per direction.
    pub directions: Vec<DirectionContext>,
}

/// Everything the statistics need from one query's ranking: its rank counts, its pools'
/// outcomes and what it is grouped by (patient, subgroups). Records of disjoint query
/// ranges concatenate to the records of their union.
#[derive(Debug, Clone, PartialEq)]
pub struct QueryRecord {
    /// The query's patient (dense metadata index): the bootstrap's cluster.
    pub patient: u32,
    /// Index of the query's value in each [`DirectionContext::subgroups`] attribute.
    pub subgroups: Vec<u32>,
    /// Rank counts of its best positive.
    pub first: FirstPositive,
    /// Negatives of the query.
    pub n_negatives: u64,
    /// Positives of the query.
    pub n_positives: u64,
    /// Negatives above the true match.
    pub anchor_greater: u64,
    /// Negatives tied with the true match.
    pub anchor_tied: u64,
    /// Random pools, one per evaluated size (`None`: too few negatives).
    pub random: Vec<Option<PoolOutcome>>,
    /// Pathology-matched pools, when evaluated.
    pub matched: Option<Vec<Option<PoolOutcome>>>,
}

/// Per-query records of a query range, with the context to finish them.
#[derive(Debug, Clone, PartialEq)]
pub struct RelinkPart {
    /// The audit's context (the same for every range).
    pub context: RelinkContext,
    /// Per direction, one record per query of the range, in query order.
    pub records: Vec<Vec<QueryRecord>>,
}

/// Rank queries `range` (of [`RelinkInputs::n_queries`]) in every audited direction and
/// return their records. Only these queries are ranked; the gallery is always whole.
pub fn relink_range(
    inputs: &RelinkInputs<'_>,
    config: &RelinkConfig,
    range: Range<usize>,
    progress: &dyn Progress,
) -> Result<RelinkPart> {
    Ok(relink_range_with_cosine(inputs, config, range, None, progress)?.0)
}

/// [`relink_range`], the pass also carrying the cosine attack's control when
/// `cosine_control` gives its seed (`decoy_targets(targets, seed)`, as the attack
/// comparison draws it): then it also returns, per direction, the plain-cosine attack
/// evaluation of the range's queries (what `attack::evaluate` computes in a pass of its
/// own), so the default audit ranks every pair once.
pub(super) fn relink_range_with_cosine(
    inputs: &RelinkInputs<'_>,
    config: &RelinkConfig,
    range: Range<usize>,
    cosine_control: Option<u64>,
    progress: &dyn Progress,
) -> Result<(RelinkPart, Vec<Option<Evaluation>>)> {
    config.validate()?;
    let n = inputs.n_queries();
    if range.start > range.end || range.end > n {
        return Err(Error::config(format!("query range {range:?} is outside the {n} queries")));
    }
    if !range.is_empty() && (range.start < inputs.loaded.start || range.end > inputs.loaded.end) {
        return Err(Error::config(format!(
            "query range {range:?} was not loaded (loaded {:?})",
            inputs.loaded
        )));
    }
    let (context, records, cosine) = direction_records(
        inputs,
        &inputs.query,
        &inputs.gallery,
        config,
        range.clone(),
        cosine_control,
        progress,
    )?;
    let mut part =
        RelinkPart { context: RelinkContext { directions: vec![context] }, records: vec![records] };
    let mut evaluations = vec![cosine];
    if config.direction == Direction::Both {
        let (context, records, cosine) = direction_records(
            inputs,
            &inputs.gallery,
            &inputs.query,
            config,
            range,
            cosine_control,
            progress,
        )?;
        part.context.directions.push(context);
        part.records.push(records);
        evaluations.push(cosine);
    }
    Ok((part, evaluations))
}

/// Positives and exclusions of every query: local index i's anchor is gallery i.
pub(super) fn build_targets(
    meta: &Metadata,
    records: &[usize],
    level: MatchLevel,
) -> Result<(Targets, u64, u64)> {
    let group_of = |r: usize| match level {
        MatchLevel::Study => meta.study[r],
        MatchLevel::Patient => meta.patient[r],
    };
    let mut members: HashMap<u32, Vec<u32>> = HashMap::new();
    for (local, &r) in records.iter().enumerate() {
        members.entry(group_of(r)).or_default().push(local as u32);
    }
    let mut builder = Targets::builder(records.len());
    let (mut excluded, mut extra_positives) = (0u64, 0u64);
    let mut positives = Vec::new();
    let mut exclusions = Vec::new();
    for (local, &r) in records.iter().enumerate() {
        positives.clear();
        exclusions.clear();
        positives.push(local as u32);
        let others = members[&group_of(r)].iter().copied().filter(|&g| g != local as u32);
        match level {
            MatchLevel::Study => exclusions.extend(others),
            MatchLevel::Patient => positives.extend(others),
        }
        excluded += exclusions.len() as u64;
        extra_positives += (positives.len() - 1) as u64;
        builder.push(&positives, &exclusions)?;
    }
    Ok((builder.build(), excluded, extra_positives))
}

/// The 14 findings of each record as a 2-bit-per-finding code.
pub(super) fn finding_codes(meta: &Metadata, records: &[usize]) -> Option<Vec<u32>> {
    let findings = meta.findings.as_ref()?;
    Some(
        records
            .iter()
            .map(|&r| {
                findings[r].iter().enumerate().fold(0u32, |code, (k, label)| {
                    let bits = match label {
                        Label::Negative => 0,
                        Label::Positive => 1,
                        Label::Uncertain => 2,
                        Label::Blank => 3,
                    };
                    code | (bits << (2 * k))
                })
            })
            .collect(),
    )
}

/// Context and records of one direction for queries `range`.
pub(super) fn direction_records(
    inputs: &RelinkInputs<'_>,
    query: &ViewRows<'_>,
    gallery_rows: &ViewRows<'_>,
    config: &RelinkConfig,
    range: Range<usize>,
    cosine_control: Option<u64>,
    progress: &dyn Progress,
) -> Result<(DirectionContext, Vec<QueryRecord>, Option<Evaluation>)> {
    let meta = inputs.metadata.as_ref();
    let records = &inputs.records;
    let n = records.len();
    // Views are validated at load (finite, unit rows); rows outside a shard's slice are
    // zeros that the engine never reads.
    let queries = Rows::trusted(&query.data, n, query.dim);
    let gallery = gallery_rows.gallery(n);
    let (targets, excluded_same_study, extra_positives) = build_targets(meta, records, config.match_level)?;

    let sizes: Vec<usize> = config.pool_sizes.iter().copied().filter(|&s| s <= n).collect();
    let oversized_pools: Vec<usize> = config.pool_sizes.iter().copied().filter(|&s| s > n).collect();
    let codes = if config.hard_negatives { finding_codes(meta, records).map(LabelCodes::new) } else { None };
    let random = PoolEvaluator::random(&targets, &sizes, config.trials, config.seed)?;
    let matched = match &codes {
        Some(c) => Some(PoolEvaluator::label_matched(&targets, c, &sizes, config.trials, config.seed)?),
        None => None,
    };
    let (subgroups, codes_of) = subgroup_codes(meta, records, config);
    progress.begin(range.len() as u64, &format!("{}->{}", query.name, gallery_rows.name));
    let options = RankOptions { top_k: 0, sizes: config.sizes };
    // A task the control cannot be drawn for is left to the attack comparison's own pass,
    // which reports why.
    let decoys = cosine_control.and_then(|seed| decoy_targets(&targets, seed).ok());
    let control = decoys.as_ref().map(|d| ControlReducer::new(&d.targets, &gallery));
    let reducers = ((random, matched), control);
    let ranked = rank_with(queries, &gallery, &targets, range, &options, &reducers, progress)?;
    let mut cosine = decoys.as_ref().map(|_| Evaluation {
        attack: Vec::with_capacity(ranked.len()),
        control: Vec::with_capacity(ranked.len()),
        top1: Vec::new(),
    });
    if let Some(e) = cosine.as_mut() {
        for (r, (_, control)) in &ranked {
            e.attack.push(attack_outcome(r)?);
            let control = control.flatten();
            e.control.push(
                control.ok_or_else(|| Error::config(format!("query {} has no control decoy", r.query)))?,
            );
        }
    }
    let records_out = ranked
        .into_iter()
        .map(|(r, ((random, matched), _))| {
            let first = r.first_positive().expect("every relink query has its true match");
            let anchor = r.anchor_rank().expect("every relink query has its true match");
            QueryRecord {
                patient: meta.patient[records[r.query]],
                subgroups: codes_of.iter().map(|c| c[r.query]).collect(),
                first,
                n_negatives: r.n_negatives,
                n_positives: r.positives.len() as u64,
                anchor_greater: anchor.greater,
                anchor_tied: anchor.tied,
                random,
                matched,
            }
        })
        .collect();
    let context = DirectionContext {
        query_view: query.name.clone(),
        gallery_view: gallery_rows.name.clone(),
        n_queries: n,
        n_gallery: n,
        pool_sizes: sizes,
        oversized_pools,
        pathology_matched: codes.is_some(),
        excluded_same_study,
        extra_positives,
        gallery_exact_duplicates: gallery.n_duplicates(),
        subgroups,
    };
    Ok((context, records_out, cosine))
}
