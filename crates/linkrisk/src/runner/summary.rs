//! The headline figures of one model, read from its typed reports, for the closing table of
//! `linkrisk audit` and `linkrisk demo` (the report shows everything; this is one line).

use crate::audit::attributes::AttributesReport;
use crate::audit::reid::ReidReport;
use crate::audit::relink::DirectionReport;
use crate::audit::utility::UtilityReport;
use crate::audit::RelinkReport;

/// Recall@1 and lift of one relink direction.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DirectionSummary {
    /// `image -> report`.
    pub direction: String,
    /// Full-database Recall@1.
    pub recall_full: f64,
    /// Full-database lift.
    pub lift_full: f64,
    /// The largest random pool: (N, Recall@1, lift).
    pub largest_pool: Option<(usize, f64, f64)>,
    /// The strongest attack: (name, pool size, Recall@1), when attacks ran.
    pub strongest_attack: Option<(String, Option<usize>, f64)>,
}

/// One model's headline figures; `None` where the audit did not run.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ModelSummary {
    /// The forward relink direction.
    pub forward: Option<DirectionSummary>,
    /// The reverse relink direction.
    pub reverse: Option<DirectionSummary>,
    /// Re-ID: (headline attacker, its Rank-1).
    pub reid_rank_1: Option<(String, f64)>,
    /// Utility macro AUROC.
    pub utility: Option<f64>,
    /// Sex AUROC of the attribute probes.
    pub sex_auroc: Option<f64>,
}

impl DirectionSummary {
    fn of(d: &DirectionReport) -> DirectionSummary {
        let strongest = d.attack_comparison.as_ref().and_then(|c| {
            let row = c.attacks.iter().find(|r| {
                r.name == c.strongest_attack
                    && r.pool_size == c.strongest_attack_pool_size
                    && r.leaked_pairs == c.strongest_attack_leaked_pairs
            })?;
            Some((row.name.to_string(), row.pool_size, row.recall_at_1))
        });
        DirectionSummary {
            direction: format!("{} -> {}", d.query_view, d.gallery_view),
            recall_full: d.full.recall_at_1,
            lift_full: d.full.lift_at_1,
            largest_pool: d
                .pools
                .iter()
                .filter(|p| p.kind == "random")
                .max_by_key(|p| p.pool_size)
                .map(|p| (p.pool_size, p.recall_at_1, p.lift_at_1)),
            strongest_attack: strongest,
        }
    }
}

impl ModelSummary {
    /// Take the relink figures.
    pub fn relink(&mut self, report: &RelinkReport) {
        self.forward = Some(DirectionSummary::of(&report.forward));
        self.reverse = report.reverse.as_ref().map(DirectionSummary::of);
    }

    /// Take the re-ID headline.
    pub fn reid(&mut self, report: &ReidReport) {
        self.reid_rank_1 = Some((report.attacker.to_string(), report.headline.rank_1));
    }

    /// Take the sex AUROC.
    pub fn attributes(&mut self, report: &AttributesReport) {
        self.sex_auroc = report.per_attribute.0.iter().find(|(name, _)| name == "sex").map(|(_, v)| *v);
    }

    /// Take the macro AUROC.
    pub fn utility(&mut self, report: &UtilityReport) {
        self.utility = report.macro_auroc;
    }
}
