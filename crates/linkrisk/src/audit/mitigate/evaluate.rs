//! Evaluating one set of embeddings the way every row of the frontier is evaluated:
//! relink on members, held-out and external records, image-side probe utility and
//! cross-modal utility.

use super::{BySubset, MitigateConfig, PointUtility, SubsetRelink, REDUCTION_POOL};
use crate::audit::mitigate::cross_modal_utility;
use crate::audit::relink::{relink, RelinkConfig, RelinkReport, SkippedPool};
use crate::audit::utility::{utility_on_splits, UtilityConfig};
use crate::cohort::Cohort;
use crate::engine::NoProgress;
use crate::error::Result;

/// Relink on every subset and utility, for views `image` / `report` of `cohort`.
pub(super) fn evaluate(
    cohort: &Cohort,
    image: &str,
    report: &str,
    config: &MitigateConfig,
) -> Result<(BySubset<SubsetRelink>, PointUtility)> {
    let s = &config.splits;
    let audit = |split: &str| -> Result<SubsetRelink> {
        let n = cohort.metadata.rows_in_split(split)?.len();
        let mut c = RelinkConfig {
            query_view: image.to_string(),
            gallery_view: report.to_string(),
            split: Some(split.to_string()),
            ..config.relink.clone()
        };
        // relink refuses a run whose every pool is too large; run the full database only
        // and list the pools as skipped, as relink does when only some are.
        let too_large: Vec<usize> = c.pool_sizes.iter().copied().filter(|&p| p > n).collect();
        let all_too_large = !c.pool_sizes.is_empty() && too_large.len() == c.pool_sizes.len();
        if all_too_large {
            c.pool_sizes.clear();
        }
        let mut report = relink(cohort, &c, &NoProgress)?;
        if all_too_large {
            for &pool_size in &too_large {
                let kinds: &[&'static str] =
                    if config.relink.hard_negatives { &["random", "pathology_matched"] } else { &["random"] };
                for &kind in kinds {
                    report.forward.skipped_pools.push(SkippedPool {
                        pool_size,
                        kind,
                        reason: format!("larger than the gallery of {n} items"),
                    });
                }
            }
        }
        let reduction_pool_size = reduction_pool(&report);
        Ok(SubsetRelink {
            report,
            reduction_pool_size,
            relative_reduction: None,
            relative_reduction_vs_audited: None,
        })
    };
    let relink = BySubset {
        members: audit(&s.members)?,
        held_out: audit(&s.held_out)?,
        external: s.external.as_deref().map(audit).transpose()?,
    };
    let utility_config = UtilityConfig {
        view: image.to_string(),
        train_split: s.members.clone(),
        eval_split: s.held_out.clone(),
        ..config.utility.clone()
    };
    let mut eval_splits = vec![s.held_out.as_str()];
    eval_splits.extend(s.external.as_deref());
    let mut reports = utility_on_splits(cohort, &utility_config, &eval_splits)?.into_iter();
    let held_out = reports.next().expect("one report per split");
    let external = reports.next();
    let cross_modal = eval_splits
        .iter()
        .map(|split| cross_modal_utility(cohort, image, report, &s.members, split, config.utility.labels))
        .collect::<Result<Vec<_>>>()?;
    let utility = PointUtility {
        macro_auroc: held_out.macro_auroc,
        ci95_macro_auroc: held_out.ci95_macro_auroc,
        external_macro_auroc: external.as_ref().and_then(|u| u.macro_auroc),
        ci95_external_macro_auroc: external.as_ref().and_then(|u| u.ci95_macro_auroc),
        change_vs_non_private: None,
        external_change_vs_non_private: None,
        change_vs_audited: None,
        external_change_vs_audited: None,
        cross_modal_macro_auroc: cross_modal[0].macro_auroc,
        cross_modal_external_macro_auroc: cross_modal.get(1).and_then(|c| c.macro_auroc),
        held_out,
        external,
        cross_modal,
    };
    Ok((relink, utility))
}

/// [`REDUCTION_POOL`] if evaluated, else the largest evaluated random pool, else None (full).
fn reduction_pool(report: &RelinkReport) -> Option<usize> {
    let random = report.forward.pools.iter().filter(|p| p.kind == "random").map(|p| p.pool_size);
    if random.clone().any(|p| p == REDUCTION_POOL) {
        Some(REDUCTION_POOL)
    } else {
        random.max()
    }
}

/// Recall@1 and chance at `pool` (None = full database) of `kind`.
pub(super) fn recall_at(report: &RelinkReport, pool: Option<usize>, kind: &str) -> Option<(f64, f64)> {
    match pool {
        None => Some((report.forward.full.recall_at_1, report.forward.full.chance_at_1)),
        Some(n) => report
            .forward
            .pools
            .iter()
            .find(|p| p.pool_size == n && p.kind == kind)
            .map(|p| (p.recall_at_1, p.chance_at_1)),
    }
}
