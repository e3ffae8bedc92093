//! The attacker's side information of a relink audit and the attack comparison per direction.

use super::*;
use crate::attack::{self, AttackComparison, AttackTask, SideInfo};
use crate::cohort::{Cohort, Metadata};
use crate::engine::{gather, Progress, Rows};
use crate::error::{Error, Result};

/// The attack comparison of one direction (single-machine runs only).
pub(super) fn attack_direction(
    cohort: &Cohort,
    inputs: &RelinkInputs<'_>,
    side: Option<(&str, &[usize])>,
    query_name: &str,
    gallery_name: &str,
    config: &RelinkConfig,
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
    let side_data = match side {
        Some((name, rows)) => {
            let q = gather(query_view, rows);
            let g = gather(gallery_view, rows);
            let (t, _, _) = build_targets(meta, rows, config.match_level)?;
            Some((format!("split {name}"), q, g, t, rows.len()))
        }
        None => None,
    };
    let side_task = match &side_data {
        Some((source, q, g, t, n_side)) => Some(SideInfo {
            task: AttackTask {
                queries: Rows::new(q, *n_side, query_view.dim())?,
                gallery: Rows::new(g, *n_side, gallery_view.dim())?,
                targets: t,
                paired: true,
                neighbourhood_exclusions: false,
            },
            source: source.as_str(),
        }),
        None => None,
    };
    Ok(Some(attack::compare(&task, side_task.as_ref(), &attack_config, progress)?))
}

/// The side split's name and records, when the attack comparison runs and has one.
pub(super) fn side_records(meta: &Metadata, config: &RelinkConfig) -> Result<Option<(String, Vec<usize>)>> {
    if config.attack.is_none() {
        return Ok(None);
    }
    let name = match &config.attack_side {
        AttackSide::None => return Ok(None),
        AttackSide::Split(name) => name.clone(),
        AttackSide::Auto => {
            let audited = config.split.as_deref();
            match meta.split_names.iter().find(|s| s.as_str() == "train") {
                Some(train) if config.split.is_some() && audited != Some(train.as_str()) => train.clone(),
                _ => return Ok(None),
            }
        }
    };
    if config.split.is_none() {
        return Err(Error::config(format!(
            "--attack-side {name}: with --split all every record is attacked; choose an audited --split so the side pairs are disjoint"
        )));
    }
    let rows = meta.rows_in_split(&name)?;
    if rows.len() < 2 {
        return Err(Error::config(format!(
            "--attack-side {name}: {} record(s); the side pairs need at least 2 (or use --attack-side none)",
            rows.len()
        )));
    }
    Ok(Some((name, rows)))
}
