//! One re-identification pass: who queries whom (the plan), one ranking of the queries
//! against the split through the engine, and the statistics of that ranking (Rank-1, CMC,
//! mAP, verification AUROC and ROC, their intervals, per-record flags). Both attackers run
//! the same plan; only the rows differ (raw view rows, or their learned projection).

use std::collections::HashMap;
use std::ops::Range;

use rand::seq::index::sample;
use serde::Serialize;

use super::{RecordOutcome, ReidExclusions};
use crate::audit::probing::NamedValues;
use crate::cohort::Metadata;
use crate::engine::{
    rank_with, BlockSizes, FirstPositive, Gallery, PositiveRank, Progress, QueryRanking, QueryReducer,
    RankOptions, Rows, ScoreRow, Targets,
};
use crate::error::{Error, Result};
use crate::metrics::auroc::{macro_auroc, roc_curve, AurocInterval};
use crate::metrics::average_precision::expected_average_precision;
use crate::metrics::bootstrap::cluster_bootstrap_means;
use crate::metrics::retrieval::{chance_at_k, first_hit_probability};
use crate::metrics::wilson;
use crate::rng;

/// CMC ranks reported under `cmc` (the full curve is under `cmc_curve`).
pub const CMC_RANKS: [usize; 4] = [1, 5, 10, 20];

/// ROC points kept in the report: consecutive kept points differ by at least this much in
/// false- or true-positive rate (so at most about 2 / ROC_RESOLUTION points).
const ROC_RESOLUTION: f64 = 1.0 / 200.0;

/// Who queries whom within one split.
#[derive(Debug, Clone)]
pub(crate) struct QueryPlan {
    /// Cohort rows of the split's records: the gallery, in this order.
    pub records: Vec<usize>,
    /// Gallery (local) indices of the queries, ascending.
    pub queries: Vec<usize>,
    /// Per query: positives (same patient, other study; with `include_same_study` also
    /// the same study) and exclusions (its own record; by default its study's others).
    pub targets: Targets,
    /// Patient (dense cohort index) of each query.
    pub query_patient: Vec<u32>,
    /// Counts of what was left out.
    pub exclusions: ReidExclusions,
}

impl QueryPlan {
    /// The plan of queries `positions` (indices into [`QueryPlan::queries`], ascending)
    /// against the same gallery: each query keeps its targets and its random stream, so its
    /// ranking is the one it has in the whole plan.
    pub(crate) fn subset(&self, positions: &[usize]) -> Result<QueryPlan> {
        let mut builder = Targets::builder(self.records.len());
        let (mut positives, mut exclusions) = (Vec::new(), Vec::new());
        for &p in positions {
            positives.clear();
            exclusions.clear();
            let anchor = self.targets.anchor(p).map(|a| a as u32);
            positives.extend(anchor);
            positives.extend(self.targets.positives(p).filter(|&g| Some(g) != anchor));
            exclusions.extend(self.targets.exclusions(p));
            builder.push(&positives, &exclusions)?;
        }
        Ok(QueryPlan {
            records: self.records.clone(),
            queries: positions.iter().map(|&p| self.queries[p]).collect(),
            targets: builder.build(),
            query_patient: positions.iter().map(|&p| self.query_patient[p]).collect(),
            exclusions: self.exclusions.clone(),
        })
    }
}

/// Plan the queries of `records` (cohort rows of one split).
pub(crate) fn plan(meta: &Metadata, records: &[usize], include_same_study: bool) -> Result<QueryPlan> {
    let mut members: HashMap<u32, Vec<u32>> = HashMap::new();
    for (local, &r) in records.iter().enumerate() {
        members.entry(meta.patient[r]).or_default().push(local as u32);
    }
    let mut builder = Targets::builder(records.len());
    let mut queries = Vec::new();
    let mut query_patient = Vec::new();
    let (mut excluded_same_study, mut same_study_positives) = (0u64, 0u64);
    let mut records_without_other_study = 0usize;
    let (mut positives, mut exclusions) = (Vec::new(), Vec::new());
    for (local, &r) in records.iter().enumerate() {
        positives.clear();
        exclusions.clear();
        let mut same_study = 0u64;
        for &g in &members[&meta.patient[r]] {
            if g as usize == local {
                exclusions.push(g);
            } else if meta.study[records[g as usize]] != meta.study[r] {
                positives.push(g);
            } else {
                same_study += 1;
                if include_same_study {
                    positives.push(g);
                } else {
                    exclusions.push(g);
                }
            }
        }
        if positives.is_empty() {
            records_without_other_study += 1;
            continue;
        }
        if include_same_study {
            same_study_positives += same_study;
        } else {
            excluded_same_study += same_study;
        }
        builder.push(&positives, &exclusions)?;
        queries.push(local);
        query_patient.push(meta.patient[r]);
    }
    let patients_with_one_study = members
        .values()
        .filter(|m| m.iter().all(|&g| meta.study[records[g as usize]] == meta.study[records[m[0] as usize]]))
        .count();
    let n_queries = queries.len() as u64;
    Ok(QueryPlan {
        records: records.to_vec(),
        queries,
        targets: builder.build(),
        query_patient,
        exclusions: ReidExclusions {
            n_split_records: records.len(),
            n_split_patients: members.len(),
            patients_with_one_study,
            records_not_queried: records_without_other_study,
            excluded_own_record: n_queries,
            excluded_same_study,
            same_study_positives,
            gallery_exact_duplicates: 0,
        },
    })
}

/// What a pass computes besides Rank-1.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PassOptions {
    /// Negative pairs sampled per query for the verification AUROC (0: no verification).
    pub negatives_per_query: usize,
    /// Length of the CMC curve.
    pub max_cmc_rank: usize,
    /// Patient-bootstrap replicates (0: none).
    pub bootstrap_replicates: usize,
    /// Interval coverage.
    pub level: f64,
    /// Seed of the negative samples and the bootstrap.
    pub seed: u64,
    /// Kernel block sizes.
    pub sizes: BlockSizes,
}

/// Samples each query's verification negatives (uniformly, without replacement, from its
/// negatives) and reads their scores off the query's score row.
struct NegativeSampler<'a> {
    targets: &'a Targets,
    /// Cohort row of each query: the index of its random stream.
    query_record: &'a [usize],
    per_query: usize,
    seed: u64,
}

impl QueryReducer for NegativeSampler<'_> {
    type Output = Vec<f32>;
    fn reduce(&self, query: usize, row: ScoreRow<'_>, _ranking: &QueryRanking) -> Vec<f32> {
        let n_negatives = self.targets.n_negatives(query);
        let take = self.per_query.min(n_negatives);
        if take == 0 {
            return Vec::new();
        }
        let mut rng = rng::stream(self.seed, "reid-verification-negatives", self.query_record[query] as u64);
        let special = self.targets.special(query).0;
        let mut picked: Vec<usize> = sample(&mut rng, n_negatives, take).into_vec();
        picked.sort_unstable();
        // The j-th negative is the j-th gallery index that is not special.
        picked
            .iter()
            .map(|&j| {
                let mut g = j;
                for &s in special {
                    if s as usize <= g {
                        g += 1;
                    } else {
                        break;
                    }
                }
                row.score(g)
            })
            .collect()
    }
}

/// Each query's ranking with its sampled verification-negative scores.
pub(crate) type Ranked = Vec<(QueryRanking, Vec<f32>)>;

/// Rank queries `range` of `plan` (indices into `plan.queries`) against the whole split;
/// `rows` holds the split's records in plan order. Returns each ranked query's ranking and
/// its sampled negative scores, and the gallery's exact-duplicate count. Only the range's
/// query rows are copied: a query range is a shard, and the results of disjoint ranges
/// concatenate to the result of their union.
pub(crate) fn rank_plan(
    rows: Rows<'_>,
    plan: &QueryPlan,
    options: &PassOptions,
    range: Range<usize>,
    what: &str,
    progress: &dyn Progress,
) -> Result<(Ranked, usize)> {
    let dim = rows.dim();
    if range.start > range.end || range.end > plan.queries.len() {
        return Err(Error::config(format!(
            "query range {range:?} is outside the {} queries",
            plan.queries.len()
        )));
    }
    // Untouched pages of a zeroed allocation are never committed: rows outside the range
    // cost no memory and are never read.
    let mut query_data = vec![0f32; plan.queries.len() * dim];
    for i in range.clone() {
        query_data[i * dim..(i + 1) * dim].copy_from_slice(rows.row(plan.queries[i]));
    }
    let queries = Rows::new(&query_data, plan.queries.len(), dim)?;
    let gallery = Gallery::new(rows);
    let query_record: Vec<usize> = plan.queries.iter().map(|&q| plan.records[q]).collect();
    let sampler = NegativeSampler {
        targets: &plan.targets,
        query_record: &query_record,
        per_query: options.negatives_per_query,
        seed: options.seed,
    };
    progress.begin(range.len() as u64, what);
    let rank_options = RankOptions { top_k: 0, sizes: options.sizes };
    let ranked = rank_with(queries, &gallery, &plan.targets, range, &rank_options, &sampler, progress)?;
    Ok((ranked, gallery.n_duplicates()))
}

/// Everything the statistics need from one query's ranking under one attacker: who it is,
/// where its positives landed and its sampled verification negatives. Records of disjoint
/// query ranges concatenate to the records of their union (the negatives are drawn from a
/// stream seeded by the query's cohort row), so a shard's records are the single run's.
#[derive(Debug, Clone, PartialEq)]
pub struct ReidRecord {
    /// Cohort row of the query record.
    pub record: usize,
    /// Its patient (dense cohort index): the bootstrap's and the AUROC variance's cluster.
    pub patient: u32,
    /// Its negatives: gallery records of other patients.
    pub n_negatives: u64,
    /// Rank counts of its best-scoring positive (the engine's
    /// [`QueryRanking::first_positive`]).
    pub first: Option<FirstPositive>,
    /// Every positive's score and rank counts, ascending gallery index.
    pub positives: Vec<PositiveRank>,
    /// Scores of its sampled verification negatives.
    pub negative_scores: Vec<f32>,
}

/// The records of queries `range.start..` of `plan`, from their rankings (in query order).
pub(crate) fn records(plan: &QueryPlan, ranked: Ranked, start: usize) -> Vec<ReidRecord> {
    ranked
        .into_iter()
        .enumerate()
        .map(|(i, (r, negative_scores))| ReidRecord {
            record: plan.records[plan.queries[start + i]],
            patient: plan.query_patient[start + i],
            n_negatives: r.n_negatives,
            first: r.first_positive(),
            positives: r.positives,
            negative_scores,
        })
        .collect()
}

/// Mean expected Rank-1 of a ranking (model selection needs nothing else).
pub(crate) fn mean_rank_1(ranked: &[(QueryRanking, Vec<f32>)]) -> f64 {
    let sum: f64 =
        ranked.iter().map(|(r, _)| first_hit_probability(&best(r.first_positive(), r.n_negatives), 1)).sum();
    sum / ranked.len().max(1) as f64
}

fn best(first: Option<FirstPositive>, n_negatives: u64) -> FirstPositive {
    first.unwrap_or(FirstPositive { greater: n_negatives, tied_negatives: 0, tied_positives: 1 })
}

/// One query's outcome (kept out of the JSON).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct QueryOutcome {
    /// Cohort row of the query record.
    pub record: usize,
    /// Its patient (dense cohort index).
    pub patient: u32,
    /// Rank counts of its best-scoring positive.
    pub first: FirstPositive,
    /// P(nearest neighbour is the same patient) under random tie-breaking.
    pub rank_1: f64,
    /// Expected average precision over all its positives.
    pub average_precision: f64,
    /// Its positives.
    pub n_positives: usize,
}

/// Points of the verification ROC curve.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RocPoints {
    /// False-positive rate (different-patient pairs at or above the threshold).
    pub fpr: Vec<f64>,
    /// True-positive rate (same-patient pairs at or above the threshold).
    pub tpr: Vec<f64>,
    /// Similarity thresholds; the first is +inf (`null` in JSON).
    pub thresholds: Vec<f64>,
}

/// The pairs behind the verification AUROC.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct VerificationPairs {
    /// Same-patient (query, positive) pairs: all of them.
    pub n_positive: usize,
    /// Different-patient (query, negative) pairs: a uniform sample per query.
    pub n_negative: usize,
    /// Negatives sampled per query (fewer when a query has fewer negatives).
    pub negatives_per_query: usize,
}

/// The figures of one attacker.
#[derive(Debug, Clone, Serialize)]
pub struct ReidFigures {
    /// Queries: records of the split whose patient has another study in the split.
    pub n_queries: usize,
    /// Gallery size per query before the same-study exclusions: every other record.
    pub n_gallery: usize,
    /// Distinct patients among the queries.
    pub n_query_patients: usize,
    /// Re-ID rate: P(the nearest other record belongs to the same patient), ties in
    /// expectation, averaged over queries.
    pub rank_1: f64,
    /// Wilson interval of `rank_1`.
    pub ci95_rank_1: [f64; 2],
    /// Patient-bootstrap interval of `rank_1` (null without bootstrap).
    pub bootstrap_ci95_rank_1: Option<[f64; 2]>,
    /// CMC at ranks 1, 5, 10, 20: P(a same-patient record is among the k nearest).
    pub cmc: NamedValues<f64>,
    /// Wilson intervals of `cmc`.
    pub ci95_cmc: NamedValues<[f64; 2]>,
    /// The CMC curve at ranks 1, 2, ..., `cmc_curve.len()`.
    pub cmc_curve: Vec<f64>,
    /// Mean over queries of the expected average precision over all same-patient records.
    pub map: f64,
    /// Patient-bootstrap interval of `map` (null without bootstrap).
    pub ci95_map: Option<[f64; 2]>,
    /// Mean number of same-patient gallery records per query.
    pub mean_positives_per_query: f64,
    /// Rank-1 of a random ranking, averaged over queries.
    pub chance_rank_1: f64,
    /// `rank_1 / chance_rank_1`.
    pub lift_rank_1: f64,
    /// Same- vs different-patient verification AUROC over (query, gallery) pairs.
    pub verification_auroc: Option<f64>,
    /// Its interval (influence-function variance clustered by query patient, logit scale).
    pub ci95_verification_auroc: Option<[f64; 2]>,
    /// How `ci95_verification_auroc` was formed.
    pub verification_ci_method: Option<&'static str>,
    /// The pairs it rests on.
    pub verification_pairs: VerificationPairs,
    /// ROC curve of the verification scores (thinned, see docs/METHODS.md).
    pub verification_roc: Option<RocPoints>,
    /// Queries flagged re-identified (`rank_1` probability at least 1/2).
    pub n_reidentified: usize,
    /// Queries whose best positive ties with at least one negative.
    pub queries_with_ties: usize,
    /// Per query (not serialised: per-record results are sensitive).
    #[serde(skip)]
    pub per_query: Vec<QueryOutcome>,
}

impl ReidFigures {
    /// Per-record outcomes of the queries (cohort row, rank-1 probability, flag).
    pub fn records(&self) -> Vec<RecordOutcome> {
        self.per_query
            .iter()
            .map(|q| RecordOutcome { record: q.record, rank_1: q.rank_1, reidentified: q.rank_1 >= 0.5 })
            .collect()
    }
}

/// Statistics of one attacker's records (all queries, in query order) against a gallery of
/// `n_gallery` records per query: the finishing step of a single run and of merged shards.
pub(crate) fn figures(
    records: &[ReidRecord],
    n_gallery: usize,
    options: &PassOptions,
    purpose: &str,
) -> Result<ReidFigures> {
    let n = records.len();
    let level = options.level;
    let max_rank = options.max_cmc_rank.max(*CMC_RANKS.last().unwrap_or(&1));
    let mut per_query = Vec::with_capacity(n);
    let mut cmc_sums = vec![0f64; max_rank];
    let mut chance = 0.0;
    let mut ties = 0;
    for r in records {
        let first = best(r.first, r.n_negatives);
        for (k, sum) in cmc_sums.iter_mut().enumerate() {
            *sum += first_hit_probability(&first, k as u64 + 1);
        }
        chance += chance_at_k(r.n_negatives, r.positives.len() as u64, 1);
        ties += usize::from(first.tied_negatives > 0);
        per_query.push(QueryOutcome {
            record: r.record,
            patient: r.patient,
            first,
            rank_1: first_hit_probability(&first, 1),
            average_precision: expected_average_precision(&r.positives),
            n_positives: r.positives.len(),
        });
    }
    let nf = n as f64;
    let rank_1 = wilson(cmc_sums[0], nf, level);
    let cmc_at = |k: usize| cmc_sums[k - 1] / nf;
    let cmc = NamedValues(CMC_RANKS.iter().map(|&k| (k.to_string(), cmc_at(k))).collect());
    let ci95_cmc = NamedValues(
        CMC_RANKS.iter().map(|&k| (k.to_string(), wilson(cmc_sums[k - 1], nf, level).ci())).collect(),
    );
    let cmc_curve: Vec<f64> = (1..=options.max_cmc_rank).map(cmc_at).collect();
    let hits: Vec<f64> = per_query.iter().map(|q| q.rank_1).collect();
    let aps: Vec<f64> = per_query.iter().map(|q| q.average_precision).collect();
    let map = aps.iter().sum::<f64>() / nf;
    let query_patient: Vec<u32> = records.iter().map(|r| r.patient).collect();
    let (bootstrap_ci95_rank_1, ci95_map) = if options.bootstrap_replicates > 0 {
        let e = cluster_bootstrap_means(
            &[&hits, &aps],
            &query_patient,
            options.bootstrap_replicates,
            level,
            options.seed,
            purpose,
        )?;
        (Some(e[0].ci()), Some(e[1].ci()))
    } else {
        (None, None)
    };
    let verification = verification(records, options)?;
    let n_query_patients = {
        let mut p = query_patient;
        p.sort_unstable();
        p.dedup();
        p.len()
    };
    let chance_rank_1 = chance / nf;
    Ok(ReidFigures {
        n_queries: n,
        n_gallery,
        n_query_patients,
        rank_1: rank_1.value,
        ci95_rank_1: rank_1.ci(),
        bootstrap_ci95_rank_1,
        cmc,
        ci95_cmc,
        cmc_curve,
        map,
        ci95_map,
        mean_positives_per_query: per_query.iter().map(|q| q.n_positives as f64).sum::<f64>() / nf,
        chance_rank_1,
        lift_rank_1: rank_1.value / chance_rank_1,
        verification_auroc: verification.auroc,
        ci95_verification_auroc: verification.ci,
        verification_ci_method: verification.method,
        verification_pairs: verification.pairs,
        verification_roc: verification.roc,
        n_reidentified: hits.iter().filter(|&&h| h >= 0.5).count(),
        queries_with_ties: ties,
        per_query,
    })
}

struct Verification {
    auroc: Option<f64>,
    ci: Option<[f64; 2]>,
    method: Option<&'static str>,
    pairs: VerificationPairs,
    roc: Option<RocPoints>,
}

/// Same- vs different-patient AUROC over all positive pairs and the sampled negative pairs,
/// with the variance of the AUROC's influence function summed within query patients
/// (pairs of one patient are not independent).
fn verification(records: &[ReidRecord], options: &PassOptions) -> Result<Verification> {
    let n_pos: usize = records.iter().map(|r| r.positives.len()).sum();
    let n_neg: usize = records.iter().map(|r| r.negative_scores.len()).sum();
    let pairs = VerificationPairs {
        n_positive: n_pos,
        n_negative: n_neg,
        negatives_per_query: options.negatives_per_query,
    };
    if n_pos == 0 || n_neg == 0 {
        return Ok(Verification { auroc: None, ci: None, method: None, pairs, roc: None });
    }
    let mut scores = Vec::with_capacity(n_pos + n_neg);
    let mut labels = Vec::with_capacity(n_pos + n_neg);
    let mut clusters = Vec::with_capacity(n_pos + n_neg);
    for r in records {
        let patient = r.patient;
        for p in &r.positives {
            scores.push(f64::from(p.score));
            labels.push(true);
            clusters.push(patient);
        }
        for &s in &r.negative_scores {
            scores.push(f64::from(s));
            labels.push(false);
            clusters.push(patient);
        }
    }
    let optional: Vec<Option<bool>> = labels.iter().map(|&l| Some(l)).collect();
    let m = macro_auroc(&[(&scores, &optional)], Some(&clusters))?;
    let e = m.ci(options.level, AurocInterval::Logit);
    let curve = roc_curve(&scores, &labels)?;
    let roc = thin(curve.fpr, curve.tpr, curve.thresholds);
    Ok(Verification { auroc: Some(m.auroc), ci: Some(e.ci()), method: Some(e.method), pairs, roc: Some(roc) })
}

/// Keep the first and last ROC points and every point at least `ROC_RESOLUTION` away (in
/// fpr or tpr) from the previously kept one.
fn thin(fpr: Vec<f64>, tpr: Vec<f64>, thresholds: Vec<f64>) -> RocPoints {
    let mut out = RocPoints { fpr: Vec::new(), tpr: Vec::new(), thresholds: Vec::new() };
    let last = fpr.len().saturating_sub(1);
    for j in 0..fpr.len() {
        let far = match (out.fpr.last(), out.tpr.last()) {
            (Some(&f), Some(&t)) => {
                (fpr[j] - f).abs() >= ROC_RESOLUTION || (tpr[j] - t).abs() >= ROC_RESOLUTION
            }
            _ => true,
        };
        if far || j == last {
            out.fpr.push(fpr[j]);
            out.tpr.push(tpr[j]);
            out.thresholds.push(thresholds[j]);
        }
    }
    out
}

/// Reject a plan without queries, with a message saying why.
pub(crate) fn require_queries(plan: &QueryPlan, split: &str, flag: &str) -> Result<()> {
    if plan.queries.is_empty() {
        return Err(Error::config(format!(
            "{flag} {split}: no patient has two or more studies among its {} records ({} patients); \
             re-identification needs patients seen at least twice",
            plan.exclusions.n_split_records, plan.exclusions.n_split_patients
        )));
    }
    Ok(())
}
