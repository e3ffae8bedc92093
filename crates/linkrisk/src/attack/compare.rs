//! [`compare`]: every requested attack on one task, each scored against the control, with
//! the attacker's side data taken from a separate task or cross-fitted within the attacked
//! queries (`super::cross_fitted`).

use rand::Rng;

use super::align::{self, MapKind};
use super::cross_fitted::{self, Assembly, TunedBeta};
use super::neighbourhood::{ColumnStats, GalleryNeighbourhood};
use super::report::{
    assignment_row, push_rows, skip, AttackComparison, AttackRow, FoldParameters, Parameters, SideReport,
    SkippedAttack, CONTROL_DESCRIPTION,
};
use super::{
    assignment, decoy_targets, evaluate, evaluate_with_columns, gather_rows, hubness, AttackConfig,
    AttackName, AttackTask, Evaluation, Side, DEFAULT_BETA,
};
use crate::audit::cross_fit::CROSS_FIT;
use crate::engine::{Gallery, Progress, Rows};
use crate::error::{Error, Result};
use crate::rng;

/// The temperature of the inverted softmax and QB-Norm.
enum Temperature {
    /// One beta for every query: tuned on separate side pairs, or the default.
    Single { beta: f64, source: &'static str },
    /// Per fold, chosen on the other folds' queries (cross-fitting).
    PerFold(TunedBeta),
}

/// Run the attacks of `config` on `task` with the attacker's `side` data (see the module
/// docs of `attack`). An attack of [`AttackConfig::named`] that produces no row is an error
/// naming the reason and the fix; others that cannot run are listed in `skipped_attacks`.
pub fn compare(
    task: &AttackTask<'_>,
    side: Side<'_>,
    config: &AttackConfig,
    progress: &dyn Progress,
) -> Result<AttackComparison> {
    compare_with_cosine(task, side, config, None, progress)
}

/// Whether [`compare`]'s plain-cosine pass is a plain [`evaluate()`] of the task against
/// the control of `decoy_targets(task.targets, config.seed)` (no hubness correction's
/// gallery statistics, no nearest items): then a caller's own ranking pass over the same
/// task can carry the control ([`evaluate::ControlReducer`]) and hand the evaluation to
/// [`compare_with_cosine`], saving a GEMM over all pairs.
pub fn plain_cosine_pass(config: &AttackConfig) -> Result<bool> {
    let attacks = AttackName::parse_list(&config.attacks.iter().map(|a| a.as_str()).collect::<Vec<_>>())?;
    Ok(!attacks
        .iter()
        .any(|a| matches!(a, AttackName::Csls | AttackName::InvertedSoftmax | AttackName::QbNorm)))
}

/// [`compare`], with the plain-cosine evaluation already computed when `cosine` is given:
/// it must be [`evaluate()`]'s result for the task, its gallery without offsets and the
/// control of `decoy_targets(task.targets, config.seed)`, without nearest items. It is used
/// when [`plain_cosine_pass`] holds (otherwise the cosine pass also gathers statistics and
/// runs anyway); the comparison is bit for bit the one [`compare`] returns.
pub fn compare_with_cosine(
    task: &AttackTask<'_>,
    side: Side<'_>,
    config: &AttackConfig,
    cosine: Option<Evaluation>,
    progress: &dyn Progress,
) -> Result<AttackComparison> {
    let precomputed = cosine;
    config.validate()?;
    task.validate("attacked task")?;
    match side {
        Side::Separate(s) => {
            s.task.validate("side pairs")?;
            if s.task.queries.dim() != task.queries.dim() || s.task.gallery.dim() != task.gallery.dim() {
                return Err(Error::config("the side pairs have other dimensions than the attacked views"));
            }
        }
        Side::CrossFit { folds, .. } if folds.len() != task.queries.n() => {
            return Err(Error::config(format!(
                "cross-fitting folds for {} queries, but the task has {}",
                folds.len(),
                task.queries.n()
            )));
        }
        _ => {}
    }
    let attacks = AttackName::parse_list(&config.attacks.iter().map(|a| a.as_str()).collect::<Vec<_>>())?;
    let shared = task.queries.dim() == task.gallery.dim();
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
    let mut side_report = side_report(&side, task.queries.n());

    // The temperature, tuned before the cosine pass (which gathers the inverted softmax's
    // normalisers at a single temperature).
    let needs_beta =
        shared && attacks.iter().any(|a| matches!(a, AttackName::InvertedSoftmax | AttackName::QbNorm));
    let temperature = match side {
        Side::Separate(s) if needs_beta => {
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
            Temperature::Single { beta, source: "tuned" }
        }
        Side::CrossFit { folds, .. } if needs_beta => {
            let tuned = cross_fitted::tune_beta(task, control, folds, &config.beta_grid, sizes, progress)?;
            if let Some(r) = side_report.as_mut() {
                r.beta_curve = tuned.curve.clone();
            }
            Temperature::PerFold(tuned)
        }
        _ => Temperature::Single { beta: DEFAULT_BETA, source: "default" },
    };

    if !shared {
        let reason = format!(
            "the query view has {} dimensions and the gallery view {}: there is no shared space to compare them by cosine; only a learned map (procrustes, ridge) links them",
            task.queries.dim(),
            task.gallery.dim()
        );
        for &attack in attacks.iter().filter(|a| a.needs_shared_space()) {
            skipped.push(skip(attack, &reason));
        }
    }

    // The cosine pass also gathers the gallery-side statistics of CSLS and the inverted
    // softmax (one GEMM over all pairs for all three; see `ColumnStats`), unless duplicate
    // gallery rows are partly excluded, when each correction runs its own statistics pass.
    let mut cosine: Option<Evaluation> = None;
    let mut neighbourhoods = GalleryNeighbourhood::default();
    if shared {
        let csls_k = if attacks.contains(&AttackName::Csls) { config.csls_k } else { 0 };
        let lse_beta = match temperature {
            Temperature::Single { beta, .. } if attacks.contains(&AttackName::InvertedSoftmax) => Some(beta),
            _ => None,
        };
        let stats = if csls_k > 0 || lse_beta.is_some() {
            ColumnStats::new(&plain, neighbourhood, csls_k, lse_beta)?
        } else {
            None
        };
        let want_top1 = attacks.contains(&AttackName::QbNorm);
        let precomputed = precomputed.filter(|_| stats.is_none() && !want_top1);
        if let Some(e) = &precomputed {
            if e.attack.len() != task.queries.n() || e.control.len() != task.queries.n() {
                return Err(Error::config(
                    "the precomputed cosine evaluation does not match the attacked task",
                ));
            }
        }
        let e = match (&stats, precomputed) {
            (None, Some(e)) => e,
            (Some(stats), _) => {
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
                neighbourhoods = stats.finish(states)?;
                e
            }
            (None, None) => {
                progress.begin(task.queries.n() as u64, "attack: cosine");
                evaluate(task.queries, &plain, task.targets, control, want_top1, sizes, progress)?
            }
        };
        push_rows(&mut rows, "cosine", None, &e, &pool_sizes, Parameters::default(), config.level);
        cosine = Some(e);
    }
    // Unlabelled gallery rows the alignment's candidate maps are scored against.
    let wants_alignment = attacks.iter().any(|a| matches!(a, AttackName::Procrustes | AttackName::Ridge));
    let distractors =
        if wants_alignment { cross_fitted::distractors(task.gallery, config.seed) } else { Vec::new() };
    let distractor_rows =
        Rows::trusted(&distractors, distractors.len() / task.gallery.dim(), task.gallery.dim());

    for &attack in &attacks {
        if matches!(attack, AttackName::Procrustes | AttackName::Ridge) {
            alignment(
                attack,
                task,
                &side,
                &plain,
                control,
                distractor_rows,
                config,
                &pool_sizes,
                &mut rows,
                &mut skipped,
                progress,
            )?;
            continue;
        }
        // Views of two dimensions: only the learned maps run (the others were skipped above).
        let Some(cosine) = cosine.as_ref() else { continue };
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
            AttackName::InvertedSoftmax => match &temperature {
                Temperature::Single { beta, source } => {
                    let offsets = match &neighbourhoods.log_normalizer {
                        Some(log_z) => hubness::inverted_softmax_offsets_from(log_z, *beta),
                        None => hubness::inverted_softmax_offsets(
                            task.queries,
                            task.gallery,
                            neighbourhood,
                            *beta,
                            sizes,
                            progress,
                        )?,
                    };
                    let gallery = Gallery::with_offsets(task.gallery, &offsets)?;
                    progress.begin(task.queries.n() as u64, "attack: inverted softmax");
                    let e = evaluate(task.queries, &gallery, task.targets, control, false, sizes, progress)?;
                    let p =
                        Parameters { beta: Some(*beta), beta_source: Some(source), ..Parameters::default() };
                    push_rows(&mut rows, "inverted_softmax", None, &e, &pool_sizes, p, config.level);
                }
                Temperature::PerFold(tuned) => {
                    let folds = cross_fit_folds(&side)?;
                    let e = tuned.assemble(folds)?;
                    let p = Parameters {
                        beta: tuned.common_beta(),
                        beta_source: Some(CROSS_FIT),
                        folds: Some(tuned.fold_parameters()),
                        ..Parameters::default()
                    };
                    push_rows(&mut rows, "inverted_softmax", None, &e, &pool_sizes, p, config.level);
                }
            },
            AttackName::QbNorm => {
                let (merged, p) = match (&side, &temperature) {
                    (Side::None(reason), _) => {
                        skipped.push(skip(
                            attack,
                            &format!("needs a query bank (queries besides the attacked ones): {reason}"),
                        ));
                        continue;
                    }
                    (Side::Separate(s), Temperature::Single { beta, source }) => {
                        let bank = s.task.queries;
                        let (offsets, active) =
                            hubness::query_bank(bank, task.gallery, *beta, sizes, progress)?;
                        let gallery = Gallery::with_offsets(task.gallery, &offsets)?;
                        progress.begin(task.queries.n() as u64, "attack: qb-norm");
                        let normalised =
                            evaluate(task.queries, &gallery, task.targets, control, false, sizes, progress)?;
                        let all: Vec<usize> = (0..task.queries.n()).collect();
                        let mut merged = Assembly::new(task.queries.n());
                        let activated = merged.put_dynamic(&all, &normalised, cosine, &active);
                        let p = Parameters {
                            beta: Some(*beta),
                            beta_source: Some(source),
                            bank_size: Some(bank.n()),
                            activated_fraction: Some(activated as f64 / task.queries.n().max(1) as f64),
                            ..Parameters::default()
                        };
                        (merged.finish()?, p)
                    }
                    (Side::CrossFit { folds, .. }, Temperature::PerFold(tuned)) => {
                        let (e, activated, fold_parameters) = cross_fitted::qb_norm(
                            task,
                            control,
                            folds,
                            &tuned.fold_beta,
                            cosine,
                            sizes,
                            progress,
                        )?;
                        let p = Parameters {
                            beta: tuned.common_beta(),
                            beta_source: Some(CROSS_FIT),
                            activated_fraction: Some(activated as f64 / task.queries.n().max(1) as f64),
                            folds: Some(fold_parameters),
                            ..Parameters::default()
                        };
                        (e, p)
                    }
                    _ => return Err(Error::config("qb-norm: the temperature does not match the side data")),
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
            AttackName::Procrustes | AttackName::Ridge => {} // above
        }
    }

    check_named(config, &rows, &skipped)?;
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

/// The `side` object of the comparison.
fn side_report(side: &Side<'_>, n_queries: usize) -> Option<SideReport> {
    match *side {
        Side::None(_) => None,
        Side::Separate(s) => Some(SideReport {
            source: s.source.to_string(),
            folds: None,
            fold_seed: None,
            fold_sizes: None,
            reason: None,
            n_pairs: s.task.queries.n(),
            beta_curve: Vec::new(),
        }),
        Side::CrossFit { folds, reason } => Some(SideReport {
            source: CROSS_FIT.to_string(),
            folds: Some(folds.k()),
            fold_seed: Some(folds.seed()),
            fold_sizes: Some(folds.sizes()),
            reason: reason.map(str::to_string),
            n_pairs: n_queries,
            beta_curve: Vec::new(),
        }),
    }
}

fn cross_fit_folds<'a>(side: &Side<'a>) -> Result<&'a crate::audit::cross_fit::CrossFit> {
    match *side {
        Side::CrossFit { folds, .. } => Ok(folds),
        _ => Err(Error::config("a cross-fitted temperature without cross-fitting folds")),
    }
}

/// Leaked-pair alignment (`attack` is procrustes or ridge): rows per number of leaked pairs
/// m, or the reasons it could not run.
#[allow(clippy::too_many_arguments)]
fn alignment(
    attack: AttackName,
    task: &AttackTask<'_>,
    side: &Side<'_>,
    plain: &Gallery<'_>,
    control: &crate::engine::Targets,
    distractors: Rows<'_>,
    config: &AttackConfig,
    pool_sizes: &[usize],
    rows: &mut Vec<AttackRow>,
    skipped: &mut Vec<SkippedAttack>,
    progress: &dyn Progress,
) -> Result<()> {
    let kind = if attack == AttackName::Procrustes { MapKind::Procrustes } else { MapKind::Ridge };
    let sizes = &config.sizes;
    let skip_m = |m: usize, available: usize| SkippedAttack {
        name: attack.as_str(),
        leaked_pairs: Some(m),
        pool_size: None,
        reason: format!("only {available} side pairs are available"),
    };
    match *side {
        Side::None(reason) => {
            skipped.push(skip(
                attack,
                &format!("needs leaked pairs (true pairs besides the attacked queries): {reason}"),
            ));
        }
        Side::Separate(s) if !s.task.paired => {
            skipped.push(skip(attack, "needs leaked pairs: paired records besides the attacked queries"));
        }
        Side::Separate(s) => {
            let order = leaked_order(s.task.queries.n(), config.seed, 0);
            for &m in &config.leaked_pairs {
                if m > order.len() {
                    skipped.push(skip_m(m, order.len()));
                    continue;
                }
                let chosen = &order[..m];
                let anchors: Vec<usize> =
                    chosen.iter().map(|&q| s.task.targets.anchor(q).expect("validated")).collect();
                let x = gather_rows(s.task.queries, chosen);
                let y = gather_rows(s.task.gallery, &anchors);
                let (xr, yr) =
                    (Rows::new(&x, m, s.task.queries.dim())?, Rows::new(&y, m, s.task.gallery.dim())?);
                let map = align::fit(kind, xr, yr, distractors, config.seed)?;
                let mapped = map.apply(task.queries)?;
                let mapped_rows = Rows::new(&mapped, task.queries.n(), map.d_out)?;
                progress.begin(task.queries.n() as u64, &format!("attack: {} m={m}", attack.as_str()));
                let e = evaluate(mapped_rows, plain, task.targets, control, false, sizes, progress)?;
                let p =
                    Parameters { lambda: map.lambda, map: map.selection.clone(), ..Parameters::default() };
                push_rows(rows, attack.as_str(), Some(m), &e, pool_sizes, p, config.level);
            }
        }
        Side::CrossFit { .. } if !task.paired => {
            skipped.push(skip(attack, "needs paired views (each query's match a distinct gallery item)"));
        }
        Side::CrossFit { folds, .. } => {
            let available = (0..folds.k())
                .filter(|&f| !folds.members(f).is_empty())
                .map(|f| folds.others(f).len())
                .min()
                .unwrap_or(0);
            for &m in &config.leaked_pairs {
                if m > available {
                    skipped.push(skip_m(m, available));
                    continue;
                }
                let mut assembly = Assembly::new(task.queries.n());
                let mut fold_parameters: Vec<FoldParameters> = Vec::with_capacity(folds.k());
                for f in 0..folds.k() {
                    let members = folds.members(f);
                    if members.is_empty() {
                        continue;
                    }
                    let others = folds.others(f);
                    let order = leaked_order(others.len(), config.seed, f as u64 + 1);
                    let chosen: Vec<usize> = order[..m].iter().map(|&i| others[i]).collect();
                    let anchors: Vec<usize> =
                        chosen.iter().map(|&q| task.targets.anchor(q).expect("validated")).collect();
                    let x = gather_rows(task.queries, &chosen);
                    let y = gather_rows(task.gallery, &anchors);
                    let (xr, yr) =
                        (Rows::new(&x, m, task.queries.dim())?, Rows::new(&y, m, task.gallery.dim())?);
                    let map = align::fit(kind, xr, yr, distractors, config.seed)?;
                    let member_rows = gather_rows(task.queries, &members);
                    let mapped = map.apply(Rows::new(&member_rows, members.len(), task.queries.dim())?)?;
                    let mapped_rows = Rows::new(&mapped, members.len(), map.d_out)?;
                    let what = format!("attack: {} m={m} fold {}/{}", attack.as_str(), f + 1, folds.k());
                    let e = cross_fitted::evaluate_subset(
                        mapped_rows,
                        &members,
                        plain,
                        task.targets,
                        control,
                        sizes,
                        &what,
                        progress,
                    )?;
                    assembly.put(&members, &e);
                    fold_parameters.push(FoldParameters {
                        fold: f,
                        n_queries: members.len(),
                        lambda: map.lambda,
                        map: map.selection.clone(),
                        ..FoldParameters::default()
                    });
                }
                let e = assembly.finish()?;
                let p = Parameters { folds: Some(fold_parameters), ..Parameters::default() };
                push_rows(rows, attack.as_str(), Some(m), &e, pool_sizes, p, config.level);
            }
        }
    }
    Ok(())
}

/// An attack named explicitly that produced no row is an error: why, and how to fix it.
fn check_named(config: &AttackConfig, rows: &[AttackRow], skipped: &[SkippedAttack]) -> Result<()> {
    for &attack in &config.named {
        if rows.iter().any(|r| r.name == attack.as_str()) {
            continue;
        }
        let reasons: Vec<String> = skipped
            .iter()
            .filter(|s| s.name == attack.as_str())
            .map(|s| match (s.leaked_pairs, s.pool_size) {
                (Some(m), _) => format!("m={m}: {}", s.reason),
                (_, Some(n)) => format!("pool {n}: {}", s.reason),
                _ => s.reason.clone(),
            })
            .collect();
        let fix = match attack {
            AttackName::Procrustes | AttackName::Ridge => {
                "alignment needs paired views (`linkrisk relink`) and leaked pairs: another split's records (--attack-side SPLIT) or cross-fitting within the audited split (--attack-side audited, with at least --side-folds patients); lower --leaked-pairs to what is available"
            }
            AttackName::QbNorm => {
                "QB-Norm needs a query bank: another split's records (--attack-side SPLIT) or cross-fitting within the audited split (--attack-side audited, with at least --side-folds patients)"
            }
            AttackName::Assignment => "one-to-one assignment needs paired views (`linkrisk relink`) and enough queries for a pool",
            _ => "this attack compares the views by cosine and needs views of one dimension",
        };
        let reasons =
            if reasons.is_empty() { "it produced no result".to_string() } else { reasons.join("; ") };
        return Err(Error::config(format!(
            "--attack {}: the attack cannot run on this task: {reasons}. Fix: {fix}; or drop it from --attack (`--attack all` lists what cannot run instead of failing)",
            attack.as_str()
        )));
    }
    Ok(())
}

/// A seeded order of `n` side pairs (stream `index`: 0 for a separate side task, 1 + f for
/// cross-fitting fold f); the first m are the m leaked pairs (nested subsets).
fn leaked_order(n: usize, seed: u64, index: u64) -> Vec<usize> {
    let mut rng = rng::stream(seed, "leaked-pairs", index);
    let mut order: Vec<usize> = (0..n).collect();
    for i in (1..n).rev() {
        order.swap(i, rng.random_range(0..=i));
    }
    order
}
