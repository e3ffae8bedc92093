//! Stronger attackers than plain cosine nearest-neighbour (issue 8): hubness corrections
//! (CSLS, inverted softmax, QB-Norm), 1:1 assignment, leaked-pair alignment (Procrustes,
//! ridge), each scored against a control baseline. A risk number is only as good as the
//! strongest attack tried, so audits report every attack and name the strongest.
//!
//! The entry point is [`compare`]: an [`AttackTask`] (queries, gallery, the truth as
//! engine [`Targets`]) and optionally a [`SideInfo`] task of labelled pairs disjoint from the
//! attacked queries (used to tune the inverted-softmax temperature, as QB-Norm's query bank
//! and as the leaked pairs) give an [`AttackComparison`] whose JSON holds
//! `strongest_attack` and `attacks` (docs/REPORTS.md). Audits embed it: relink attaches one
//! per direction; re-identification can do the same with its own targets (same-view
//! tasks: assignment and alignment need paired views and are skipped there).
//!
//! Every ranking attack is cosine plus a per-gallery-item offset, or cosine after a linear
//! map, so all run in the engine's blocked pass (no n x n matrix); the control is read off
//! the same score rows ([`evaluate()`]). Methods and references: docs/METHODS.md, "Stronger
//! attackers".

pub mod align;
pub mod assignment;
pub mod control;
pub mod evaluate;
pub mod hubness;
pub mod linear_metric;
pub mod neighbourhood;

#[cfg(test)]
mod tests;

use rand::Rng;
use serde::Serialize;

use crate::engine::{BlockSizes, Gallery, Progress, Rows, Targets};
use crate::error::{Error, Result};
use crate::metrics::{wilson, Estimate};
use crate::rng;

use neighbourhood::{ColumnStats, GalleryNeighbourhood};

pub use assignment::{AssignmentSettings, Solver};
pub use control::{decoy_targets, normalized_risk, Decoys};
pub use evaluate::{evaluate, evaluate_with_columns, Evaluation, QueryOutcome};
pub use hubness::{BetaPoint, DEFAULT_BETA, DEFAULT_BETA_GRID};

/// The attacks linkrisk knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AttackName {
    /// Plain cosine nearest neighbour (the baseline; always run when any attack is).
    Cosine,
    /// Cross-domain similarity local scaling.
    Csls,
    /// Inverted softmax over the attacked queries.
    InvertedSoftmax,
    /// Query-bank normalisation with dynamic inverted softmax.
    QbNorm,
    /// One-to-one assignment of a batch of queries to their batch of matches.
    Assignment,
    /// Orthogonal Procrustes map from leaked pairs.
    Procrustes,
    /// Ridge-regression map from leaked pairs.
    Ridge,
}

impl AttackName {
    /// Every attack, in the order they are run and reported.
    pub const ALL: [AttackName; 7] = [
        AttackName::Cosine,
        AttackName::Csls,
        AttackName::InvertedSoftmax,
        AttackName::QbNorm,
        AttackName::Assignment,
        AttackName::Procrustes,
        AttackName::Ridge,
    ];

    /// The name used on the command line and in the JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            AttackName::Cosine => "cosine",
            AttackName::Csls => "csls",
            AttackName::InvertedSoftmax => "inverted_softmax",
            AttackName::QbNorm => "qb_norm",
            AttackName::Assignment => "assignment",
            AttackName::Procrustes => "procrustes",
            AttackName::Ridge => "ridge",
        }
    }

    /// Parse `--attack` items (`all`, or names; `-` and `_` interchangeable). The result is
    /// sorted, without repeats, and always starts with `cosine` (the baseline).
    pub fn parse_list<S: AsRef<str>>(items: &[S]) -> Result<Vec<AttackName>> {
        let mut out = vec![AttackName::Cosine];
        for item in items {
            let item = item.as_ref().trim().to_ascii_lowercase().replace('-', "_");
            if item == "all" {
                out.extend(AttackName::ALL);
                continue;
            }
            match AttackName::ALL.iter().find(|a| a.as_str() == item) {
                Some(&a) => out.push(a),
                None => {
                    let known: Vec<&str> = AttackName::ALL.iter().map(|a| a.as_str()).collect();
                    return Err(Error::config(format!(
                        "--attack: unknown attack `{item}`; use `all` or some of {}",
                        known.join(", ")
                    )));
                }
            }
        }
        out.sort();
        out.dedup();
        Ok(out)
    }

    /// Whether the attack needs paired views (query i's match is a distinct gallery item).
    pub fn needs_pairs(self) -> bool {
        matches!(self, AttackName::Assignment | AttackName::Procrustes | AttackName::Ridge)
    }
}

/// Settings of an attack comparison. Audits fill `pool_sizes`, `seed`, `level`, `sizes`
/// from their own configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct AttackConfig {
    /// Attacks to run (cosine is always added).
    pub attacks: Vec<AttackName>,
    /// Neighbours k of CSLS's local-scaling terms.
    pub csls_k: usize,
    /// Inverse temperatures tried when tuning the inverted softmax on the side task.
    pub beta_grid: Vec<f64>,
    /// Numbers of leaked pairs m for Procrustes and ridge.
    pub leaked_pairs: Vec<usize>,
    /// Random-pool sizes reported besides the full database (and the assignment's batches).
    pub pool_sizes: Vec<usize>,
    /// Assignment settings.
    pub assignment: AssignmentSettings,
    /// Seed of decoys, batches, leaked-pair subsets.
    pub seed: u64,
    /// Interval coverage.
    pub level: f64,
    /// Kernel block sizes.
    pub sizes: BlockSizes,
}

impl Default for AttackConfig {
    fn default() -> Self {
        AttackConfig {
            attacks: vec![AttackName::Cosine],
            csls_k: 10,
            beta_grid: DEFAULT_BETA_GRID.to_vec(),
            leaked_pairs: vec![10, 100, 1000],
            pool_sizes: vec![10, 100, 1000, 10_000],
            assignment: AssignmentSettings::default(),
            seed: 0,
            level: 0.95,
            sizes: BlockSizes::default(),
        }
    }
}

impl AttackConfig {
    /// Reject bad values with a message naming the flag.
    pub fn validate(&self) -> Result<()> {
        if self.csls_k == 0 {
            return Err(Error::config("--csls-k must be at least 1"));
        }
        if let Some(b) = self.beta_grid.iter().find(|b| !(b.is_finite() && **b > 0.0)) {
            return Err(Error::config(format!("inverted-softmax beta {b} must be positive")));
        }
        if self.beta_grid.is_empty() {
            return Err(Error::config("the inverted-softmax beta grid is empty"));
        }
        if self.leaked_pairs.contains(&0) {
            return Err(Error::config("--leaked-pairs: 0 pairs fit nothing; use 1 or more"));
        }
        if let Some(&s) = self.pool_sizes.iter().find(|&&s| s < 2) {
            return Err(Error::config(format!("--pools: pool size {s} is too small")));
        }
        if !(self.level > 0.0 && self.level < 1.0) {
            return Err(Error::config(format!("interval level must be in (0, 1), got {}", self.level)));
        }
        self.assignment.validate()?;
        self.sizes.validate()
    }
}

/// What is attacked: queries, the gallery and the truth.
#[derive(Debug, Clone, Copy)]
pub struct AttackTask<'a> {
    /// Query rows (unit norm).
    pub queries: Rows<'a>,
    /// Gallery rows (unit norm), same dimension.
    pub gallery: Rows<'a>,
    /// Per query: its true match (anchor) and other positives, and exclusions.
    pub targets: &'a Targets,
    /// Paired views: query i's anchor is a distinct gallery item for every query (enables
    /// assignment and leaked-pair alignment).
    pub paired: bool,
    /// Whether the targets' exclusions are pairs the attacker never sees (re-ID: the
    /// query's own record and study), removed from the hubness corrections' neighbourhoods
    /// too. False for relink, where exclusions are an evaluation convention (the twin
    /// record of a study shares its report) and the attacker sees every pair.
    pub neighbourhood_exclusions: bool,
}

impl AttackTask<'_> {
    fn validate(&self, what: &str) -> Result<()> {
        if self.queries.dim() != self.gallery.dim() {
            return Err(Error::config(format!(
                "{what}: queries have {} dimensions but the gallery has {}",
                self.queries.dim(),
                self.gallery.dim()
            )));
        }
        if self.targets.n_queries() != self.queries.n() || self.targets.n_gallery() != self.gallery.n() {
            return Err(Error::config(format!(
                "{what}: targets describe {} x {} but the task has {} queries x {} gallery items",
                self.targets.n_queries(),
                self.targets.n_gallery(),
                self.queries.n(),
                self.gallery.n()
            )));
        }
        if let Some(q) = (0..self.queries.n()).find(|&q| self.targets.anchor(q).is_none()) {
            return Err(Error::config(format!("{what}: query {q} has no true match")));
        }
        if self.paired {
            let mut seen = vec![false; self.gallery.n()];
            for q in 0..self.queries.n() {
                let a = self.targets.anchor(q).expect("checked");
                if std::mem::replace(&mut seen[a], true) {
                    return Err(Error::config(format!(
                        "{what}: gallery item {a} is the true match of two queries; the task is not paired"
                    )));
                }
            }
        }
        Ok(())
    }
}

/// Labelled pairs the attacker holds besides the attacked queries, disjoint from them.
#[derive(Debug, Clone, Copy)]
pub struct SideInfo<'a> {
    /// The pairs, as a task of their own.
    pub task: AttackTask<'a>,
    /// Where they come from (e.g. `split train`), for the report.
    pub source: &'a str,
}

/// Copy rows `idx` of `rows` into one contiguous buffer.
pub fn gather_rows(rows: Rows<'_>, idx: &[usize]) -> Vec<f32> {
    let mut out = Vec::with_capacity(idx.len() * rows.dim());
    for &i in idx {
        out.extend_from_slice(rows.row(i));
    }
    out
}

/// Parameters an attack row was produced with (only the ones that apply are present).
#[derive(Debug, Clone, Default, Serialize)]
pub struct Parameters {
    /// CSLS neighbours.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub k: Option<usize>,
    /// Inverse temperature of the (inverted) softmax.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub beta: Option<f64>,
    /// `tuned` (on the side pairs) or `default`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub beta_source: Option<&'static str>,
    /// QB-Norm: queries in the bank.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bank_size: Option<usize>,
    /// QB-Norm: share of attacked queries whose nearest item is in the activation set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub activated_fraction: Option<f64>,
    /// Ridge penalty chosen by generalised cross-validation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lambda: Option<f64>,
    /// Assignment solver.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub solver: Option<Solver>,
    /// Assignment: batches drawn.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub batches: Option<usize>,
    /// Assignment: pairs per batch.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub batch_size: Option<usize>,
    /// Assignment: independent nearest-neighbour Recall@1 on the same batches.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nearest_neighbour_recall_at_1: Option<f64>,
}

/// One row of the comparison: one attack at one pool size (and number of leaked pairs).
#[derive(Debug, Clone, Serialize)]
pub struct AttackRow {
    /// Attack name (`cosine`, `csls`, `inverted_softmax`, `qb_norm`, `assignment`,
    /// `procrustes`, `ridge`).
    pub name: &'static str,
    /// Pool size N; absent for the full database.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pool_size: Option<usize>,
    /// Leaked pairs m (alignment attacks).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub leaked_pairs: Option<usize>,
    /// How the figure is computed: `full_ranks`, `exact_pool_expectation` (random pools of
    /// N, hypergeometric expectation from the full ranks) or `batch_assignment`.
    pub protocol: &'static str,
    /// Queries (links) evaluated.
    pub n_queries: usize,
    /// Recall@1 of the attack (fraction correctly linked for assignment).
    pub recall_at_1: f64,
    /// Its Wilson interval.
    pub ci95_recall_at_1: [f64; 2],
    /// The same attack scored against the control's decoys.
    pub control_recall_at_1: f64,
    /// Its Wilson interval.
    pub ci95_control_recall_at_1: [f64; 2],
    /// (attack - control) / (1 - control).
    pub normalized_risk: f64,
    /// Delta-method interval of the normalized risk.
    pub ci95_normalized_risk: [f64; 2],
    /// Recall@1 of a random ranking (1/N for pools).
    pub chance_at_1: f64,
    /// Recall@1 / chance.
    pub lift_at_1: f64,
    /// Mean reciprocal rank (full-database rows).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mrr: Option<f64>,
    /// Attack parameters.
    pub parameters: Parameters,
}

/// An attack that was requested but not run, and why.
#[derive(Debug, Clone, Serialize)]
pub struct SkippedAttack {
    /// Attack name.
    pub name: &'static str,
    /// Leaked pairs, for alignment attacks skipped at one m.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub leaked_pairs: Option<usize>,
    /// Pool size, for assignment skipped at one size.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pool_size: Option<usize>,
    /// Why.
    pub reason: String,
}

/// The side information used, described.
#[derive(Debug, Clone, Serialize)]
pub struct SideReport {
    /// Where the pairs come from.
    pub source: String,
    /// Labelled pairs available.
    pub n_pairs: usize,
    /// Inverted-softmax Recall@1 on the side pairs per beta (when tuned).
    pub beta_curve: Vec<BetaPoint>,
}

/// The attack comparison: every attack row, the control, and the strongest attack. Its
/// JSON keys `strongest_attack` and `attacks` are the interface the report reads.
#[derive(Debug, Clone, Serialize)]
pub struct AttackComparison {
    /// Name of the strongest attack: the highest normalized risk at the reference pool.
    pub strongest_attack: &'static str,
    /// The reference pool: 10,000 when present, else the largest pool, else absent (the
    /// full database).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub strongest_attack_pool_size: Option<usize>,
    /// Leaked pairs m of the strongest row, when it is an alignment attack.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub strongest_attack_leaked_pairs: Option<usize>,
    /// Attacked queries.
    pub attack_queries: usize,
    /// Gallery items.
    pub attack_gallery: usize,
    /// How the control is built.
    pub control: &'static str,
    /// Side information (tuning pairs, query bank, leaked pairs), if any.
    pub side: Option<SideReport>,
    /// Every attack row.
    pub attacks: Vec<AttackRow>,
    /// Attacks (or settings) not run, with the reason.
    pub skipped_attacks: Vec<SkippedAttack>,
}

const CONTROL_DESCRIPTION: &str =
    "decoy: each query's true match replaced by another query's (seeded permutation, \
     never from the query's own study or patient), the true match removed from the candidates";

/// Run the attacks of `config` on `task` (see the module docs).
pub fn compare(
    task: &AttackTask<'_>,
    side: Option<&SideInfo<'_>>,
    config: &AttackConfig,
    progress: &dyn Progress,
) -> Result<AttackComparison> {
    config.validate()?;
    task.validate("attacked task")?;
    if let Some(s) = side {
        s.task.validate("side pairs")?;
        if s.task.queries.dim() != task.queries.dim() {
            return Err(Error::config("the side pairs have another dimension than the attacked views"));
        }
    }
    let attacks = AttackName::parse_list(&config.attacks.iter().map(|a| a.as_str()).collect::<Vec<_>>())?;
    let n_gallery = task.gallery.n();
    let pool_sizes: Vec<usize> = {
        let mut p: Vec<usize> = config.pool_sizes.iter().copied().filter(|&s| s <= n_gallery).collect();
        p.sort_unstable();
        p.dedup();
        p
    };
    let decoys = decoy_targets(task.targets, config.seed)?;
    let control = &decoys.targets;
    let mut rows = Vec::new();
    let mut skipped = Vec::new();
    let sizes = &config.sizes;
    let plain = Gallery::new(task.gallery);
    let neighbourhood = task.neighbourhood_exclusions.then_some(task.targets);

    // The temperature, tuned once on the side pairs when there are any (before the cosine
    // pass, which gathers the inverted softmax's normalisers at this temperature).
    let mut side_report = side.map(|s| SideReport {
        source: s.source.to_string(),
        n_pairs: s.task.queries.n(),
        beta_curve: Vec::new(),
    });
    let needs_beta = attacks.iter().any(|a| matches!(a, AttackName::InvertedSoftmax | AttackName::QbNorm));
    let (beta, beta_source) = match side {
        Some(s) if needs_beta => {
            let (beta, curve) = hubness::tune_beta(
                s.task.queries,
                s.task.gallery,
                s.task.targets,
                s.task.neighbourhood_exclusions,
                &config.beta_grid,
                sizes,
                progress,
            )?;
            if let Some(r) = side_report.as_mut() {
                r.beta_curve = curve;
            }
            (beta, "tuned")
        }
        _ => (DEFAULT_BETA, "default"),
    };

    // The cosine pass also gathers the gallery-side statistics of CSLS and the inverted
    // softmax (one GEMM over all pairs for all three; see `ColumnStats`), unless duplicate
    // gallery rows are partly excluded, when each correction runs its own statistics pass.
    let csls_k = if attacks.contains(&AttackName::Csls) { config.csls_k } else { 0 };
    let lse_beta = attacks.contains(&AttackName::InvertedSoftmax).then_some(beta);
    let stats = if csls_k > 0 || lse_beta.is_some() {
        ColumnStats::new(&plain, neighbourhood, csls_k, lse_beta)?
    } else {
        None
    };
    let want_top1 = attacks.contains(&AttackName::QbNorm);
    let (cosine, neighbourhoods) = match &stats {
        Some(stats) => {
            progress.begin(task.queries.n() as u64, "attack: cosine (+ gallery neighbourhoods)");
            let (e, states) = evaluate_with_columns(
                task.queries,
                &plain,
                task.targets,
                control,
                want_top1,
                stats,
                sizes,
                progress,
            )?;
            (e, stats.finish(states)?)
        }
        None => {
            progress.begin(task.queries.n() as u64, "attack: cosine");
            let e = evaluate(task.queries, &plain, task.targets, control, want_top1, sizes, progress)?;
            (e, GalleryNeighbourhood::default())
        }
    };
    push_rows(&mut rows, "cosine", None, &cosine, &pool_sizes, Parameters::default(), config.level);

    for &attack in &attacks {
        match attack {
            AttackName::Cosine => {}
            AttackName::Csls => {
                let offsets = match &neighbourhoods.knn_mean {
                    Some(r) => hubness::csls_offsets_from(r),
                    None => hubness::csls_offsets(
                        task.queries,
                        task.gallery,
                        neighbourhood,
                        config.csls_k,
                        sizes,
                        progress,
                    )?,
                };
                let gallery = Gallery::with_offsets(task.gallery, &offsets)?;
                progress.begin(task.queries.n() as u64, "attack: csls");
                let e = evaluate(task.queries, &gallery, task.targets, control, false, sizes, progress)?;
                let p = Parameters { k: Some(config.csls_k), ..Parameters::default() };
                push_rows(&mut rows, "csls", None, &e, &pool_sizes, p, config.level);
            }
            AttackName::InvertedSoftmax => {
                let offsets = match &neighbourhoods.log_normalizer {
                    Some(log_z) => hubness::inverted_softmax_offsets_from(log_z, beta),
                    None => hubness::inverted_softmax_offsets(
                        task.queries,
                        task.gallery,
                        neighbourhood,
                        beta,
                        sizes,
                        progress,
                    )?,
                };
                let gallery = Gallery::with_offsets(task.gallery, &offsets)?;
                progress.begin(task.queries.n() as u64, "attack: inverted softmax");
                let e = evaluate(task.queries, &gallery, task.targets, control, false, sizes, progress)?;
                let p =
                    Parameters { beta: Some(beta), beta_source: Some(beta_source), ..Parameters::default() };
                push_rows(&mut rows, "inverted_softmax", None, &e, &pool_sizes, p, config.level);
            }
            AttackName::QbNorm => {
                let Some(s) = side else {
                    skipped.push(skip(
                        attack,
                        "needs a query bank: labelled records besides the attacked queries",
                    ));
                    continue;
                };
                let bank = s.task.queries;
                let (offsets, active) = hubness::query_bank(bank, task.gallery, beta, sizes, progress)?;
                let gallery = Gallery::with_offsets(task.gallery, &offsets)?;
                progress.begin(task.queries.n() as u64, "attack: qb-norm");
                let normalised =
                    evaluate(task.queries, &gallery, task.targets, control, false, sizes, progress)?;
                // Dynamic inverted softmax: normalised scores only for activated queries.
                let activated: Vec<bool> =
                    cosine.top1.iter().map(|&g| g != u32::MAX && active[g as usize]).collect();
                let pick = |a: &[QueryOutcome], b: &[QueryOutcome]| -> Vec<QueryOutcome> {
                    activated
                        .iter()
                        .zip(a.iter().zip(b))
                        .map(|(&on, (x, y))| if on { *x } else { *y })
                        .collect()
                };
                let merged = Evaluation {
                    attack: pick(&normalised.attack, &cosine.attack),
                    control: pick(&normalised.control, &cosine.control),
                    top1: Vec::new(),
                };
                let p = Parameters {
                    beta: Some(beta),
                    beta_source: Some(beta_source),
                    bank_size: Some(bank.n()),
                    activated_fraction: Some(
                        activated.iter().filter(|&&a| a).count() as f64 / activated.len().max(1) as f64,
                    ),
                    ..Parameters::default()
                };
                push_rows(&mut rows, "qb_norm", None, &merged, &pool_sizes, p, config.level);
            }
            AttackName::Assignment => {
                if !task.paired {
                    skipped.push(skip(
                        attack,
                        "needs paired views (each query's match a distinct gallery item)",
                    ));
                    continue;
                }
                let mut any = false;
                let sizes_and_full: Vec<Option<usize>> =
                    pool_sizes.iter().map(|&s| Some(s)).chain(std::iter::once(None)).collect();
                for pool in sizes_and_full {
                    let outcome = assignment::run_pool(
                        task.queries,
                        task.gallery,
                        task.targets,
                        control,
                        pool,
                        &config.assignment,
                        config.seed,
                        sizes,
                        progress,
                    )?;
                    match outcome {
                        Some(o) => {
                            any = true;
                            rows.push(assignment_row(pool, &o, task.queries.n(), config.level));
                        }
                        None => skipped.push(SkippedAttack {
                            name: attack.as_str(),
                            leaked_pairs: None,
                            pool_size: pool,
                            reason: "fewer queries from distinct studies/patients than the pool size".into(),
                        }),
                    }
                }
                if !any {
                    skipped.push(skip(attack, "no pool size could be filled"));
                }
            }
            AttackName::Procrustes | AttackName::Ridge => {
                let Some(s) = side.filter(|s| s.task.paired) else {
                    skipped.push(skip(
                        attack,
                        "needs leaked pairs: paired records besides the attacked queries",
                    ));
                    continue;
                };
                let order = leaked_order(s.task.queries.n(), config.seed);
                for &m in &config.leaked_pairs {
                    if m > order.len() {
                        skipped.push(SkippedAttack {
                            name: attack.as_str(),
                            leaked_pairs: Some(m),
                            pool_size: None,
                            reason: format!("only {} side pairs are available", order.len()),
                        });
                        continue;
                    }
                    let chosen = &order[..m];
                    let anchors: Vec<usize> =
                        chosen.iter().map(|&q| s.task.targets.anchor(q).expect("validated")).collect();
                    let x = gather_rows(s.task.queries, chosen);
                    let y = gather_rows(s.task.gallery, &anchors);
                    let (xr, yr) =
                        (Rows::new(&x, m, s.task.queries.dim())?, Rows::new(&y, m, s.task.gallery.dim())?);
                    let map = if attack == AttackName::Procrustes {
                        align::procrustes(xr, yr)?
                    } else {
                        align::ridge(xr, yr)?
                    };
                    let mapped = map.apply(task.queries)?;
                    let mapped_rows = Rows::new(&mapped, task.queries.n(), map.d_out)?;
                    progress.begin(task.queries.n() as u64, &format!("attack: {} m={m}", attack.as_str()));
                    let e = evaluate(mapped_rows, &plain, task.targets, control, false, sizes, progress)?;
                    let p = Parameters { lambda: map.lambda, ..Parameters::default() };
                    push_rows(&mut rows, attack.as_str(), Some(m), &e, &pool_sizes, p, config.level);
                }
            }
        }
    }

    let reference = if rows.iter().any(|r| r.pool_size == Some(10_000)) {
        Some(10_000)
    } else {
        rows.iter().filter_map(|r| r.pool_size).max()
    };
    let strongest = rows
        .iter()
        .filter(|r| r.pool_size == reference && r.normalized_risk.is_finite())
        .fold(None::<&AttackRow>, |best, r| match best {
            Some(b) if b.normalized_risk >= r.normalized_risk => Some(b),
            _ => Some(r),
        })
        .map_or(("cosine", None), |r| (r.name, r.leaked_pairs));
    Ok(AttackComparison {
        strongest_attack: strongest.0,
        strongest_attack_pool_size: reference,
        strongest_attack_leaked_pairs: strongest.1,
        attack_queries: task.queries.n(),
        attack_gallery: n_gallery,
        control: CONTROL_DESCRIPTION,
        side: side_report,
        attacks: rows,
        skipped_attacks: skipped,
    })
}

fn skip(attack: AttackName, reason: &str) -> SkippedAttack {
    SkippedAttack { name: attack.as_str(), leaked_pairs: None, pool_size: None, reason: reason.to_string() }
}

/// A seeded order of the side pairs; the first m are the m leaked pairs (nested subsets).
fn leaked_order(n: usize, seed: u64) -> Vec<usize> {
    let mut rng = rng::stream(seed, "leaked-pairs", 0);
    let mut order: Vec<usize> = (0..n).collect();
    for i in (1..n).rev() {
        order.swap(i, rng.random_range(0..=i));
    }
    order
}

/// The full-database row and one row per pool size of a ranking attack.
fn push_rows(
    rows: &mut Vec<AttackRow>,
    name: &'static str,
    leaked_pairs: Option<usize>,
    e: &Evaluation,
    pool_sizes: &[usize],
    parameters: Parameters,
    level: f64,
) {
    let attack = evaluate::full_summary(&e.attack, level);
    let control = evaluate::full_summary(&e.control, level);
    rows.push(make_row(
        name,
        None,
        leaked_pairs,
        "full_ranks",
        attack.n_queries,
        attack.recall_at_1,
        control.recall_at_1,
        attack.chance_at_1,
        Some(attack.mrr),
        parameters.clone(),
    ));
    for &size in pool_sizes {
        let need = (size - 1) as u64;
        let include: Vec<bool> = e
            .attack
            .iter()
            .zip(&e.control)
            .map(|(a, c)| a.n_negatives >= need && c.n_negatives >= need)
            .collect();
        let (a, n) = evaluate::pool_summary(&e.attack, &include, size, level);
        if n == 0 {
            continue;
        }
        let (c, _) = evaluate::pool_summary(&e.control, &include, size, level);
        rows.push(make_row(
            name,
            Some(size),
            leaked_pairs,
            "exact_pool_expectation",
            n,
            a,
            c,
            1.0 / size as f64,
            None,
            parameters.clone(),
        ));
    }
}

fn make_row(
    name: &'static str,
    pool_size: Option<usize>,
    leaked_pairs: Option<usize>,
    protocol: &'static str,
    n_queries: usize,
    attack: Estimate,
    control: Estimate,
    chance_at_1: f64,
    mrr: Option<f64>,
    parameters: Parameters,
) -> AttackRow {
    let risk = normalized_risk(&attack, &control);
    AttackRow {
        name,
        pool_size,
        leaked_pairs,
        protocol,
        n_queries,
        recall_at_1: attack.value,
        ci95_recall_at_1: attack.ci(),
        control_recall_at_1: control.value,
        ci95_control_recall_at_1: control.ci(),
        normalized_risk: risk.value,
        ci95_normalized_risk: risk.ci(),
        chance_at_1,
        lift_at_1: attack.value / chance_at_1,
        mrr,
        parameters,
    }
}

/// The assignment row. Batches redraw the same queries, so links are not independent: the
/// Wilson intervals use at most as many trials as there are distinct queries (the rates
/// are unchanged), as the relink audit does for repeated pools.
fn assignment_row(
    pool: Option<usize>,
    o: &assignment::AssignmentOutcome,
    n_queries: usize,
    level: f64,
) -> AttackRow {
    let interval = |correct: f64, links: usize| {
        let n_eff = links.min(n_queries).max(1) as f64;
        let mut e = wilson(correct / links as f64 * n_eff, n_eff, level);
        e.value = correct / links as f64;
        e
    };
    let attack = interval(o.correct, o.links);
    let control = interval(o.control_correct, o.control_links);
    let parameters = Parameters {
        solver: Some(o.solver),
        batches: Some(o.batches),
        batch_size: Some(o.batch_size),
        nearest_neighbour_recall_at_1: Some(o.nearest_neighbour_hits / o.links as f64),
        ..Parameters::default()
    };
    make_row(
        "assignment",
        pool,
        None,
        "batch_assignment",
        o.links,
        attack,
        control,
        1.0 / o.batch_size as f64,
        None,
        parameters,
    )
}
