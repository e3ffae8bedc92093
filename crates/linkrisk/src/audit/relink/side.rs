//! The attacker's side information of a relink audit and the attack comparison per direction.
//! Side pairs come from another split (`--attack-side SPLIT`, or `auto`: the `train` split
//! when it exists and is not audited) or, when no other split provides them (or with
//! `--attack-side audited`), from patient-grouped cross-fitting of the audited records
//! themselves ([`crate::audit::cross_fit`]): fold f's queries are attacked with the other
//! folds' pairs (leaked pairs, query bank, temperature).

use super::*;
use crate::attack::{self, AttackComparison, AttackName, AttackTask, Side, SideInfo};
use crate::audit::cross_fit::CrossFit;
use crate::cohort::{Cohort, Metadata};
use crate::engine::{gather, Progress, Rows};
use crate::error::{Error, Result};

/// Where a relink audit's attack comparison takes its side data from.
#[derive(Debug)]
pub(super) enum SidePlan {
    /// None, for this reason (the attacks that need it are skipped, or an error when named).
    None(String),
    /// The records of another split.
    Split(String, Vec<usize>),
    /// Cross-fitting of the audited records, and why it was chosen (under `auto`).
    CrossFit(CrossFit, Option<String>),
}

/// The attack comparison of one direction (single-machine runs only).
pub(super) fn attack_direction(
    cohort: &Cohort,
    inputs: &RelinkInputs<'_>,
    side: &SidePlan,
    query_name: &str,
    gallery_name: &str,
    config: &RelinkConfig,
    cosine: Option<attack::Evaluation>,
    progress: &dyn Progress,
) -> Result<Option<AttackComparison>> {
    let Some(attack_config) = config.attack_config() else { return Ok(None) };
    let meta = &cohort.metadata;
    let records = &inputs.records;
    let n = records.len();
    let query_view = cohort.view(query_name)?;
    let gallery_view = cohort.view(gallery_name)?;
    let (query_rows, gallery_rows) = if query_name == inputs.query.name {
        (&inputs.query, &inputs.gallery)
    } else {
        (&inputs.gallery, &inputs.query)
    };
    let (targets, _, _) = build_targets(meta, records, config.match_level)?;
    let task = AttackTask {
        queries: Rows::trusted(&query_rows.data, n, query_rows.dim),
        gallery: Rows::trusted(&gallery_rows.data, n, gallery_rows.dim),
        targets: &targets,
        paired: true,
        neighbourhood_exclusions: false,
    };
    let comparison = match side {
        SidePlan::None(reason) => {
            attack::compare_with_cosine(&task, Side::None(reason), &attack_config, cosine, progress)?
        }
        SidePlan::CrossFit(folds, reason) => {
            let side = Side::CrossFit { folds, reason: reason.as_deref() };
            attack::compare_with_cosine(&task, side, &attack_config, cosine, progress)?
        }
        SidePlan::Split(name, rows) => {
            let q = gather(query_view, rows);
            let g = gather(gallery_view, rows);
            let (t, _, _) = build_targets(meta, rows, config.match_level)?;
            let source = format!("split {name}");
            let side = SideInfo {
                task: AttackTask {
                    queries: Rows::new(&q, rows.len(), query_view.dim())?,
                    gallery: Rows::new(&g, rows.len(), gallery_view.dim())?,
                    targets: &t,
                    paired: true,
                    neighbourhood_exclusions: false,
                },
                source: &source,
            };
            attack::compare_with_cosine(&task, Side::Separate(&side), &attack_config, cosine, progress)?
        }
    };
    Ok(Some(comparison))
}

/// Where the attack comparison of `config` takes its side data from; `records` are the
/// audited records (the queries of both directions).
pub(super) fn side_plan(meta: &Metadata, records: &[usize], config: &RelinkConfig) -> Result<SidePlan> {
    let Some(attack) = &config.attack else { return Ok(SidePlan::None(String::new())) };
    // Only these attacks use side data (the inverted softmax for its temperature); without
    // them no side data is prepared, so the default audit costs what it did.
    let uses_side = attack.attacks.iter().any(|a| a.needs_side() || matches!(a, AttackName::InvertedSoftmax));
    let audited = config.split.as_deref();
    let name = match &config.attack_side {
        AttackSide::None => return Ok(SidePlan::None("--attack-side none".into())),
        AttackSide::Audited if !uses_side => {
            return Ok(SidePlan::None("no requested attack uses side data".into()));
        }
        AttackSide::Audited => return cross_fit(meta, records, config, None),
        AttackSide::Split(name) => name.clone(),
        AttackSide::Auto => match meta.split_names.iter().find(|s| s.as_str() == "train") {
            Some(train) if config.split.is_some() && audited != Some(train.as_str()) => train.clone(),
            _ if !uses_side => return Ok(SidePlan::None("no requested attack uses side data".into())),
            _ => {
                let why = match audited {
                    Some("train") => "the audited split is `train`; no other split holds side pairs".to_string(),
                    Some(split) => format!(
                        "no `train` split besides the audited split `{split}`; side pairs are cross-fitted within it"
                    ),
                    None => "--split all: every record is attacked; side pairs are cross-fitted within them".into(),
                };
                return cross_fit(meta, records, config, Some(why));
            }
        },
    };
    if config.split.is_none() {
        return Err(Error::config(format!(
            "--attack-side {name}: with --split all every record is attacked; choose an audited --split so the side pairs are disjoint, or cross-fit with --attack-side audited"
        )));
    }
    let rows = meta.rows_in_split(&name)?;
    if rows.len() < 2 {
        return Err(Error::config(format!(
            "--attack-side {name}: {} record(s); the side pairs need at least 2 (or use --attack-side audited or none)",
            rows.len()
        )));
    }
    Ok(SidePlan::Split(name, rows))
}

/// Cross-fitting folds of the audited records by patient; too few patients leave no side
/// data (the reason goes to the attacks that need it).
fn cross_fit(
    meta: &Metadata,
    records: &[usize],
    config: &RelinkConfig,
    why: Option<String>,
) -> Result<SidePlan> {
    let patients: Vec<u32> = records.iter().map(|&r| meta.patient[r]).collect();
    match CrossFit::by_patient(&patients, config.side_folds, config.seed) {
        Ok(folds) => Ok(SidePlan::CrossFit(folds, why)),
        Err(Error::Config(reason)) => {
            Ok(SidePlan::None(format!("cross-fitting within the audited split: {reason}")))
        }
        Err(e) => Err(e),
    }
}
