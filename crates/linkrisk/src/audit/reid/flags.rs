//! Per-record re-identification outcomes: the `--per-record` CSV and the flags the attribute
//! audit stratifies by.

use super::*;

/// Write the per-record re-identification outcomes of `report` (cohort `metadata`) to
/// `path` as CSV, one row per query record, in the format `linkrisk attributes
/// --reidentified` reads ([`crate::cohort::flags::read_flags`]): columns `id`,
/// `reidentified` (the headline attacker's flag, `true`/`false`), `rank_1_probability`
/// (its P(nearest neighbour is the same patient)) and, per attacker run,
/// `reidentified_<attacker>` (`-` as `_`). Records that were not queries are not listed.
/// Per-record results are sensitive: callers write them only on an explicit request
/// (`--per-record`). Returns the number of rows written.
pub fn write_per_record(
    report: &ReidReport,
    metadata: &crate::cohort::Metadata,
    path: &std::path::Path,
) -> Result<usize> {
    let mut header = vec!["id".to_string(), "reidentified".to_string(), "rank_1_probability".to_string()];
    header.extend(report.attackers.iter().map(|a| format!("reidentified_{}", a.attacker.replace('-', "_"))));
    let mut writer = csv::Writer::from_writer(Vec::new());
    let csv_error = |e: csv::Error| Error::write(path, std::io::Error::other(e.to_string()));
    writer.write_record(&header).map_err(csv_error)?;
    let per_attacker: Vec<&[QueryOutcome]> =
        report.attackers.iter().map(|a| a.figures.per_query.as_slice()).collect();
    let mut row = Vec::with_capacity(header.len());
    for (i, q) in report.headline.per_query.iter().enumerate() {
        row.clear();
        row.push(metadata.ids[q.record].clone());
        row.push((q.rank_1 >= 0.5).to_string());
        row.push(format!("{}", q.rank_1));
        for outcomes in &per_attacker {
            let other = &outcomes[i];
            debug_assert_eq!(other.record, q.record, "attackers rank the same queries in the same order");
            row.push((other.rank_1 >= 0.5).to_string());
        }
        writer.write_record(&row).map_err(csv_error)?;
    }
    let bytes = writer.into_inner().map_err(|e| Error::write(path, std::io::Error::other(e.to_string())))?;
    crate::cohort::write::atomic_bytes(path, &bytes)?;
    Ok(report.headline.per_query.len())
}

/// Where the attribute audit's re-identified flags came from (recorded in its JSON).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FlagSource {
    /// Read from a file (`linkrisk attributes --reidentified FILE`).
    File {
        /// The file.
        path: String,
    },
    /// Computed by running the re-identification audit.
    ReidAudit {
        /// The attacker whose flags were used.
        attacker: &'static str,
        /// View audited.
        view: String,
        /// Split audited.
        split: String,
        /// Its Rank-1.
        rank_1: f64,
        /// Its queries (records with a flag).
        n_queries: usize,
        /// What the flag means.
        definition: &'static str,
    },
}

/// The definition of the re-identified flag, as recorded in reports.
pub const FLAG_DEFINITION: &str =
    "re-identified: the nearest other record of the split (own record and own study excluded) belongs to the same patient with probability >= 1/2 under random tie-breaking; records of patients without another study in the split have no flag";

/// Re-identified flags for the attribute audit: run the audit with `config` (the attacker
/// chosen there; with [`Attackers::Both`] the headline's flags) and return one flag per
/// cohort record (`None`: not a query) with a description of where they came from.
pub fn reidentified_flags(
    cohort: &Cohort,
    config: &ReidConfig,
    progress: &dyn Progress,
) -> Result<(Vec<Option<bool>>, FlagSource)> {
    let report = reid(cohort, config, progress)?;
    let flags = report.flags(cohort.len());
    let source = FlagSource::ReidAudit {
        attacker: report.attacker,
        view: report.view.clone(),
        split: report.split.clone(),
        rank_1: report.headline.rank_1,
        n_queries: report.headline.n_queries,
        definition: FLAG_DEFINITION,
    };
    Ok((flags, source))
}
