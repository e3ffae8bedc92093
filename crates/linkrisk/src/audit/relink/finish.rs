//! Statistics over per-query records: the report of a single run and of merged shards alike.

use super::*;
use crate::engine::pools::PoolOutcome;
use crate::error::{Error, Result};
use crate::metrics::bootstrap::cluster_bootstrap_means;
use crate::metrics::retrieval::{
    expected_pool_hit_probability, expected_reciprocal_rank, first_hit_probability, hit_probability,
    summarize, RankedQuery,
};
use crate::metrics::wilson;

/// Turn per-query records into the report: every statistic over queries is computed here,
/// for a single run and for merged shards alike.
pub fn finish(
    config: &RelinkConfig,
    context: &RelinkContext,
    records: &[Vec<QueryRecord>],
) -> Result<RelinkReport> {
    config.validate()?;
    let expected = if config.direction == Direction::Both { 2 } else { 1 };
    if context.directions.len() != expected || records.len() != expected {
        return Err(Error::config(format!(
            "{} direction context(s) and {} record set(s) for an audit of {expected} direction(s)",
            context.directions.len(),
            records.len()
        )));
    }
    let mut directions = context
        .directions
        .iter()
        .zip(records)
        .map(|(c, r)| finish_direction(config, c, r))
        .collect::<Result<Vec<_>>>()?
        .into_iter();
    let forward = directions.next().expect("checked above");
    Ok(RelinkReport {
        audit: "relink",
        linkrisk_version: crate::VERSION,
        split: config.split.clone(),
        match_level: config.match_level,
        seed: config.seed,
        level: config.level,
        forward,
        reverse: directions.next(),
    })
}

pub(super) fn finish_direction(
    config: &RelinkConfig,
    ctx: &DirectionContext,
    records: &[QueryRecord],
) -> Result<DirectionReport> {
    if records.len() != ctx.n_queries {
        return Err(Error::config(format!(
            "{} records for the {} queries of {} -> {}",
            records.len(),
            ctx.n_queries,
            ctx.query_view,
            ctx.gallery_view
        )));
    }
    let n = ctx.n_queries;
    let mut skipped_pools = Vec::new();
    let oversized = |kind| {
        ctx.oversized_pools.iter().map(move |&s| SkippedPool {
            pool_size: s,
            kind,
            reason: format!("larger than the gallery of {n} items"),
        })
    };
    skipped_pools.extend(oversized("random"));
    if config.hard_negatives {
        skipped_pools.extend(oversized("pathology_matched"));
    }
    let patient_of: Vec<u32> = records.iter().map(|r| r.patient).collect();
    let ranked_queries: Vec<RankedQuery> = records
        .iter()
        .map(|r| RankedQuery { first: r.first, n_negatives: r.n_negatives, n_positives: r.n_positives })
        .collect();
    let full = full_report(&ranked_queries, &patient_of, config)?;

    let mut pools = Vec::new();
    for (s, &size) in ctx.pool_sizes.iter().enumerate() {
        let outcomes =
            records.iter().map(|r| pool_outcome(Some(r.random.as_slice()), s)).collect::<Result<Vec<_>>>()?;
        pools.push(pool_report(size, "random", &outcomes, &patient_of, config)?);
        if ctx.pathology_matched {
            let outcomes =
                records.iter().map(|r| pool_outcome(r.matched.as_deref(), s)).collect::<Result<Vec<_>>>()?;
            pools.push(pool_report(size, "pathology_matched", &outcomes, &patient_of, config)?);
        }
    }
    for p in &pools {
        if p.n_queries == 0 {
            skipped_pools.push(SkippedPool {
                pool_size: p.pool_size,
                kind: p.kind,
                reason: "no query has enough negatives".into(),
            });
        }
    }
    pools.retain(|p| p.n_queries > 0);

    let expected_recall_curve = curve(records);
    let subgroups = subgroups(ctx, records, &ranked_queries, config)?;
    let n_patients = {
        let mut p = patient_of.clone();
        p.sort_unstable();
        p.dedup();
        p.len()
    };
    Ok(DirectionReport {
        query_view: ctx.query_view.clone(),
        gallery_view: ctx.gallery_view.clone(),
        n_queries: n,
        n_gallery: ctx.n_gallery,
        n_patients,
        full,
        pools,
        skipped_pools,
        expected_recall_curve,
        exclusions: ExclusionReport {
            queries_without_match: 0,
            excluded_same_study: ctx.excluded_same_study,
            extra_positives: ctx.extra_positives,
            gallery_exact_duplicates: ctx.gallery_exact_duplicates,
        },
        subgroups,
        attack_comparison: None,
    })
}

/// Pool size `s`'s outcome in a record's outcome list (`None` when the list is absent).
pub(super) fn pool_outcome(
    outcomes: Option<&[Option<PoolOutcome>]>,
    s: usize,
) -> Result<Option<&PoolOutcome>> {
    match outcomes {
        Some(v) => v.get(s).map(Option::as_ref).ok_or_else(|| {
            Error::config(format!("a record has {} pool outcomes; pool size {} is missing", v.len(), s + 1))
        }),
        None => Ok(None),
    }
}

pub(super) fn full_report(
    queries: &[RankedQuery],
    patient_of: &[u32],
    config: &RelinkConfig,
) -> Result<FullReport> {
    let s = summarize(queries, config.level);
    let (boot_r1, boot_mrr) = if config.bootstrap_replicates > 0 {
        let hits: Vec<f64> = queries.iter().map(|q| first_hit_probability(&q.first, 1)).collect();
        let rr: Vec<f64> = queries.iter().map(|q| expected_reciprocal_rank(&q.first)).collect();
        let e = cluster_bootstrap_means(
            &[&hits, &rr],
            patient_of,
            config.bootstrap_replicates,
            config.level,
            config.seed,
            "relink-bootstrap-full",
        )?;
        (Some(e[0].ci()), Some(e[1].ci()))
    } else {
        (None, None)
    };
    Ok(FullReport {
        n_queries: s.n_queries,
        recall_at_1: s.recall_at_1.value,
        recall_at_5: s.recall_at_5.value,
        recall_at_10: s.recall_at_10.value,
        mrr: s.mrr,
        median_rank: s.median_rank,
        mean_rank: s.mean_rank,
        chance_at_1: s.chance_at_1,
        lift_at_1: s.lift_at_1,
        ci95_recall_at_1: s.recall_at_1.ci(),
        ci95_recall_at_5: s.recall_at_5.ci(),
        ci95_recall_at_10: s.recall_at_10.ci(),
        bootstrap_ci95_recall_at_1: boot_r1,
        bootstrap_ci95_mrr: boot_mrr,
        queries_with_ties: queries.iter().filter(|q| q.first.tied_negatives > 0).count(),
    })
}

pub(super) fn pool_report(
    size: usize,
    kind: &'static str,
    outcomes: &[Option<&PoolOutcome>],
    patient_of: &[u32],
    config: &RelinkConfig,
) -> Result<PoolReport> {
    let trials = config.trials;
    let evaluated: Vec<(usize, &PoolOutcome)> =
        outcomes.iter().enumerate().filter_map(|(i, o)| o.map(|o| (i, o))).collect();
    let n_q = evaluated.len();
    let mean_hit = |o: &PoolOutcome, k: u64| {
        o.trials.iter().map(|c| hit_probability(u64::from(c.greater), u64::from(c.tied), k)).sum::<f64>()
            / trials as f64
    };
    let per_query_r1: Vec<f64> = evaluated.iter().map(|(_, o)| mean_hit(o, 1)).collect();
    let mean =
        |v: &mut dyn Iterator<Item = f64>| if n_q > 0 { v.sum::<f64>() / n_q as f64 } else { f64::NAN };
    let recall_at_1 = mean(&mut per_query_r1.iter().copied());
    let recall_at_5 = mean(&mut evaluated.iter().map(|(_, o)| mean_hit(o, 5)));
    let recall_at_10 = mean(&mut evaluated.iter().map(|(_, o)| mean_hit(o, 10)));
    let expected_recall_at_1 =
        mean(&mut evaluated.iter().map(|(_, o)| expected_pool_hit_probability(&o.draw, 1)));
    let expected_recall_at_5 =
        mean(&mut evaluated.iter().map(|(_, o)| expected_pool_hit_probability(&o.draw, 5)));
    // Trial t of every query forms one run of the protocol; its spread across runs.
    let trial_sd_recall_at_1 = if n_q > 0 && trials > 1 {
        let runs: Vec<f64> = (0..trials)
            .map(|t| {
                evaluated
                    .iter()
                    .map(|(_, o)| {
                        hit_probability(u64::from(o.trials[t].greater), u64::from(o.trials[t].tied), 1)
                    })
                    .sum::<f64>()
                    / n_q as f64
            })
            .collect();
        let m = runs.iter().sum::<f64>() / trials as f64;
        (runs.iter().map(|r| (r - m) * (r - m)).sum::<f64>() / (trials - 1) as f64).sqrt()
    } else {
        0.0
    };
    let ci =
        if n_q > 0 { wilson(recall_at_1 * n_q as f64, n_q as f64, config.level).ci() } else { [0.0, 1.0] };
    let bootstrap = if config.bootstrap_replicates > 0 && n_q > 0 {
        let patients: Vec<u32> = evaluated.iter().map(|(i, _)| patient_of[*i]).collect();
        let purpose = format!("relink-bootstrap-pool-{kind}-{size}");
        Some(
            cluster_bootstrap_means(
                &[&per_query_r1],
                &patients,
                config.bootstrap_replicates,
                config.level,
                config.seed,
                &purpose,
            )?[0]
                .ci(),
        )
    } else {
        None
    };
    let chance_at_1 = 1.0 / size as f64;
    let exact_match_fraction = (kind == "pathology_matched" && n_q > 0).then(|| {
        evaluated.iter().map(|(_, o)| o.exact_matches as f64).sum::<f64>() / (n_q as f64 * (size - 1) as f64)
    });
    Ok(PoolReport {
        pool_size: size,
        kind,
        trials,
        n_queries: n_q,
        n_queries_skipped: outcomes.len() - n_q,
        recall_at_1,
        ci95_recall_at_1: ci,
        bootstrap_ci95_recall_at_1: bootstrap,
        recall_at_5,
        recall_at_10,
        chance_at_1,
        lift_at_1: recall_at_1 / chance_at_1,
        expected_recall_at_1,
        expected_recall_at_5,
        trial_sd_recall_at_1,
        exact_match_fraction,
    })
}

/// Exact expected Recall@1 of random pools at sizes 2, 5, 10, 20, 50, ... up to the
/// largest size every query can fill (its negatives plus the true match), which ends the grid.
pub(super) fn curve(records: &[QueryRecord]) -> Vec<CurvePoint> {
    let Some(cap) = records.iter().map(|r| r.n_negatives as usize + 1).min() else { return Vec::new() };
    let n_gallery = cap;
    let mut grid = Vec::new();
    let mut decade = 1usize;
    'outer: loop {
        for m in [2usize, 5, 10] {
            let s = m * decade;
            if s >= n_gallery {
                break 'outer;
            }
            grid.push(s);
        }
        decade *= 10;
    }
    if n_gallery >= 2 {
        grid.push(n_gallery);
    }
    grid.into_iter()
        .map(|size| {
            let (mut sum, mut count) = (0.0, 0usize);
            for r in records {
                if (size - 1) as u64 > r.n_negatives {
                    continue;
                }
                let draw = crate::engine::pools::PoolDraw {
                    fixed_greater: 0,
                    fixed_tied: 0,
                    fixed: 0,
                    population: r.n_negatives,
                    population_greater: r.anchor_greater,
                    population_tied: r.anchor_tied,
                    draws: (size - 1) as u64,
                };
                sum += expected_pool_hit_probability(&draw, 1);
                count += 1;
            }
            CurvePoint {
                pool_size: size,
                expected_recall_at_1: if count > 0 { sum / count as f64 } else { f64::NAN },
                chance_at_1: 1.0 / size as f64,
            }
        })
        .filter(|p| p.expected_recall_at_1.is_finite())
        .collect()
}
