//! The mitigation result in a few lines of text, set against the audited model: what
//! `linkrisk demo` and `linkrisk mitigate` print. The library builds the lines; the CLI
//! prints them.

use super::{FrontierRow, FrontierTable, MitigateReport};

/// `members`, `held-out`, `external`.
fn cohort_name(key: &str) -> &str {
    match key {
        "held_out" => "held-out",
        other => other,
    }
}

/// Short label of a frontier row.
fn short(row: &FrontierRow) -> String {
    match row.heads {
        "audited" => "audited".into(),
        "warm_start" => "warm start".into(),
        "non_private" => "non-private".into(),
        _ => format!("eps {}", row.epsilon.map_or("?".into(), super::epsilon_text)),
    }
}

/// "N=100" or "full database".
fn pool_text(table: &FrontierTable) -> String {
    table.pool_size.map_or_else(|| "the full database".to_string(), |n| format!("N={n}"))
}

/// The lines `linkrisk demo` prints for its mitigation, and `linkrisk mitigate` under its
/// table: per cohort, Recall@1 and utility of the audited model, the warm start, the
/// non-private and the DP heads, the change of each DP point relative to the audited model,
/// and, in words, every cohort on which DP heads link more than the audited model.
pub fn summary_lines(report: &MitigateReport) -> Vec<String> {
    let mut lines = Vec::new();
    let against_audited = report.frontier.held_out.reference == "audited";
    lines.push(if against_audited {
        format!(
            "Mitigation: DP-SGD projection heads (delta {:e}, the patient as privacy unit) against the audited model \
             (the cohort's own `{}` views on the same records):",
            report.delta,
            report.baseline.as_ref().map_or_else(|| "image / report".to_string(), |b| b.views.join("` / `"))
        )
    } else {
        format!(
            "Mitigation: DP-SGD projection heads (delta {:e}, the patient as privacy unit) against the non-private heads \
             (no audited model: {}):",
            report.delta,
            report.baseline_skipped.as_deref().unwrap_or("not evaluated")
        )
    });
    let tables: Vec<(&str, &FrontierTable)> = report.frontier.iter().collect();
    let width = tables.iter().map(|(c, _)| cohort_name(c).len()).max().unwrap_or(0);
    for (cohort, table) in &tables {
        let cells: Vec<String> = table
            .rows
            .iter()
            .filter_map(|r| {
                let value = r.recall_at_1_at_pool?;
                let change = match (r.heads, r.relative_reduction_vs_audited) {
                    ("dp", Some(red)) if red >= 0.0 => format!(" ({:.1}% lower)", 100.0 * red),
                    ("dp", Some(red)) => format!(" ({:.1}% higher)", -100.0 * red),
                    _ => String::new(),
                };
                Some(format!("{} {value:.4}{change}", short(r)))
            })
            .collect();
        let chance = table.rows.first().and_then(|r| {
            let pool = table.pool_size?;
            r.recall_at_1.iter().find(|p| p.pool_size == pool).map(|p| p.chance_at_1)
        });
        lines.push(format!(
            "  {:<width$}  Recall@1 at {}: {}{}",
            cohort_name(cohort),
            pool_text(table),
            cells.join(", "),
            chance.map_or_else(String::new, |c| format!("; chance {c:.4}"))
        ));
    }
    for (cohort, table) in &tables {
        let cells: Vec<String> = table
            .rows
            .iter()
            .filter_map(|r| {
                let value = r.macro_auroc?;
                let change = match (r.heads, r.macro_auroc_change_vs_audited) {
                    ("dp", Some(c)) => format!(" ({c:+.4})"),
                    _ => String::new(),
                };
                Some(format!("{} {value:.4}{change}", short(r)))
            })
            .collect();
        if !cells.is_empty() {
            lines.push(format!("  {:<width$}  probe macro AUROC: {}", cohort_name(cohort), cells.join(", ")));
        }
    }
    if against_audited {
        for (cohort, table) in &tables {
            let audited =
                table.rows.iter().find(|r| r.heads == "audited").and_then(|r| r.recall_at_1_at_pool);
            let worse: Vec<String> = table
                .rows
                .iter()
                .filter(|r| r.heads == "dp" && r.links_more_than_audited == Some(true))
                .map(short)
                .collect();
            if let (Some(a), false) = (audited, worse.is_empty()) {
                lines.push(format!(
                    "  On {} records the DP heads at {} link MORE than the audited model (Recall@1 {a:.4} at {}): \
                     shipping them instead of the audited model would raise the re-linkage risk there.",
                    cohort_name(cohort),
                    worse.join(", "),
                    pool_text(table)
                ));
            }
        }
    }
    lines
}
