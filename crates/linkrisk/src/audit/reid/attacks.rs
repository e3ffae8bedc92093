//! The attack comparison on the re-ID task (`reid --attack`): the attacked queries against
//! the whole split, the query's own record (and study) excluded from the rankings and from
//! the hubness neighbourhoods. Side data (the inverted-softmax temperature, QB-Norm's bank):
//! the re-ID task of the `--train-split` records whose patients are not audited, or, when
//! that split cannot serve (or with `--attack-side audited`), patient-grouped cross-fitting
//! of the audited queries (`crate::audit::cross_fit`).

use std::collections::HashSet;

use super::*;

/// The comparison of `attack_config` on the plan's re-ID task.
pub(super) fn attack_on_plan(
    meta: &Metadata,
    view: &View,
    rows: Rows<'_>,
    plan: &eval::QueryPlan,
    config: &ReidConfig,
    attack_config: &AttackConfig,
    progress: &dyn Progress,
) -> Result<AttackComparison> {
    let query_data = attack::gather_rows(rows, &plan.queries);
    let queries = Rows::new(&query_data, plan.queries.len(), rows.dim())?;
    let task = AttackTask {
        queries,
        gallery: rows,
        targets: &plan.targets,
        paired: false,
        neighbourhood_exclusions: true,
    };
    // The train split's re-ID task, when it serves.
    let mut why_not_split = None;
    let side_plan = if config.attack_side == SideSource::Audited {
        None
    } else if config.train_split == config.split {
        why_not_split = Some(format!("--train-split {} is the audited split", config.split));
        None
    } else {
        let audited: HashSet<u32> = plan.records.iter().map(|&r| meta.patient[r]).collect();
        match meta.rows_in_split(&config.train_split) {
            Ok(all) => {
                let side: Vec<usize> =
                    all.into_iter().filter(|&r| !audited.contains(&meta.patient[r])).collect();
                let p = eval::plan(meta, &side, config.include_same_study)?;
                if p.queries.len() >= 2 {
                    Some(p)
                } else {
                    why_not_split = Some(format!(
                        "--train-split {}: fewer than two records of unaudited patients with another study there",
                        config.train_split
                    ));
                    None
                }
            }
            Err(e) => {
                why_not_split = Some(e.to_string());
                None
            }
        }
    };
    if let Some(p) = &side_plan {
        let gallery = gather(view, &p.records);
        let q: Vec<f32> = p
            .queries
            .iter()
            .flat_map(|&i| gallery[i * view.dim()..(i + 1) * view.dim()].iter().copied())
            .collect();
        let source = format!("split {}", config.train_split);
        let side = SideInfo {
            task: AttackTask {
                queries: Rows::new(&q, p.queries.len(), view.dim())?,
                gallery: Rows::new(&gallery, p.records.len(), view.dim())?,
                targets: &p.targets,
                paired: false,
                neighbourhood_exclusions: true,
            },
            source: &source,
        };
        return attack::compare(&task, Side::Separate(&side), attack_config, progress);
    }
    if config.attack_side == SideSource::Split {
        let reason = why_not_split.unwrap_or_else(|| "the train split holds no side pairs".into());
        return attack::compare(&task, Side::None(&reason), attack_config, progress);
    }
    // Cross-fitting: the split's patients in folds; the queries keep their patient's fold.
    let patients: Vec<u32> = plan.records.iter().map(|&r| meta.patient[r]).collect();
    match CrossFit::by_patient(&patients, config.side_folds, config.seed) {
        Ok(folds) => {
            let query_folds = folds.restrict(&plan.queries);
            let side = Side::CrossFit { folds: &query_folds, reason: why_not_split.as_deref() };
            attack::compare(&task, side, attack_config, progress)
        }
        Err(Error::Config(reason)) => {
            let reason = format!("cross-fitting within --split {}: {reason}", config.split);
            attack::compare(&task, Side::None(&reason), attack_config, progress)
        }
        Err(e) => Err(e),
    }
}
