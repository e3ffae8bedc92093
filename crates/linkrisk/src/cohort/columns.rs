//! From a metadata table's columns to [`Metadata`]: which column holds which field (after
//! `cohort.toml` renames), how each cell is parsed, and how split values are mapped. CSV
//! and Parquet metadata both go through [`RowParser`], so they accept the same values and
//! fail with the same messages.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use super::metadata::{Label, Metadata, MetadataBuilder, FINDINGS, N_FINDINGS};
use crate::error::{Error, Result};

/// The metadata fields linkrisk reads, by their standard column names.
pub const STANDARD_COLUMNS: [&str; 7] = ["id", "patient_id", "study_id", "split", "sex", "age", "race"];

/// How a metadata file names its columns and splits (`cohort.toml` `[columns]` and
/// `[splits]`). The default reads the standard names unchanged.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MetadataOptions {
    /// Standard column name (`id`, `patient_id`, a finding, ...) -> column name in the file.
    pub columns: BTreeMap<String, String>,
    /// Split value in the file -> split name linkrisk uses (e.g. `validate` -> `test`).
    pub splits: HashMap<String, String>,
}

impl MetadataOptions {
    /// The name the file uses for standard column `standard`.
    pub fn file_column<'a>(&'a self, standard: &'a str) -> &'a str {
        self.columns.get(standard).map(String::as_str).unwrap_or(standard)
    }

    /// " (mapped to `id` by cohort.toml)" when `standard` is renamed, else "".
    fn renamed_note(&self, standard: &str) -> String {
        match self.columns.get(standard) {
            Some(_) => format!(" (the column cohort.toml maps to `{standard}`)"),
            None => String::new(),
        }
    }

    /// Check that every renamed column is one linkrisk reads.
    pub fn validate(&self, manifest: &Path) -> Result<()> {
        for standard in self.columns.keys() {
            if !STANDARD_COLUMNS.contains(&standard.as_str()) && !FINDINGS.contains(&standard.as_str()) {
                return Err(Error::input(
                    manifest,
                    format!(
                        "[columns]: `{standard}` is not a column linkrisk reads; rename one of {} or a CheXpert finding (e.g. \"Pleural Effusion\")",
                        STANDARD_COLUMNS.join(", ")
                    ),
                ));
            }
        }
        Ok(())
    }
}

/// How rows are numbered in messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowNumbering {
    /// Line numbers of a CSV file, the header being line 1.
    CsvLine,
    /// 0-based row indices (Parquet).
    ZeroBased,
}

impl RowNumbering {
    fn label(self, row: usize) -> String {
        match self {
            RowNumbering::CsvLine => format!("row {row}"),
            RowNumbering::ZeroBased => format!("row {row} (0-based)"),
        }
    }
}

/// Parses metadata rows given as text cells, column positions resolved once from the header.
#[derive(Debug)]
pub struct RowParser<'a> {
    path: &'a Path,
    options: &'a MetadataOptions,
    numbering: RowNumbering,
    id_col: usize,
    patient_col: usize,
    study_col: Option<usize>,
    split_col: Option<usize>,
    sex_col: Option<usize>,
    age_col: Option<usize>,
    race_col: Option<usize>,
    finding_cols: Option<[usize; N_FINDINGS]>,
    builder: MetadataBuilder,
}

impl<'a> RowParser<'a> {
    /// Resolve the columns of a table whose header is `names`; errors name a missing
    /// required column or an incomplete set of finding columns.
    pub fn new(
        path: &'a Path,
        names: &[&str],
        options: &'a MetadataOptions,
        numbering: RowNumbering,
    ) -> Result<Self> {
        let col = |standard: &str| {
            let wanted = options.file_column(standard);
            names.iter().position(|h| *h == wanted)
        };
        let required = |standard: &str| {
            col(standard).ok_or_else(|| {
                Error::input(
                    path,
                    format!(
                        "missing required column `{}`{}; the columns are: {}. A metadata table needs id and patient_id \
                         (rename yours in cohort.toml [columns], e.g. {standard} = \"your_column\")",
                        options.file_column(standard),
                        options.renamed_note(standard),
                        names.join(", ")
                    ),
                )
            })
        };
        let id_col = required("id")?;
        let patient_col = required("patient_id")?;
        let found: Vec<Option<usize>> = FINDINGS.iter().map(|f| col(f)).collect();
        let n_found = found.iter().flatten().count();
        if n_found > 0 && n_found < N_FINDINGS {
            let missing: Vec<&str> = FINDINGS
                .iter()
                .zip(&found)
                .filter(|(_, c)| c.is_none())
                .map(|(f, _)| options.file_column(f))
                .collect();
            return Err(Error::input(
                path,
                format!(
                    "has {n_found} of the 14 CheXpert finding columns; missing: {}. Add them (blank cells are allowed) or remove all finding columns",
                    missing.join(", ")
                ),
            ));
        }
        let finding_cols = (n_found == N_FINDINGS).then(|| {
            let mut cols = [0usize; N_FINDINGS];
            for (slot, c) in cols.iter_mut().zip(&found) {
                *slot = c.expect("all found");
            }
            cols
        });
        let study_col = col("study_id");
        let split_col = col("split");
        let sex_col = col("sex");
        let age_col = col("age");
        let race_col = col("race");
        let used: Vec<usize> =
            [Some(id_col), Some(patient_col), study_col, split_col, sex_col, age_col, race_col]
                .into_iter()
                .flatten()
                .chain(finding_cols.iter().flatten().copied())
                .collect();
        let extra_columns =
            names.iter().enumerate().filter(|(i, _)| !used.contains(i)).map(|(_, h)| h.to_string()).collect();
        let builder = MetadataBuilder {
            study_ids: study_col.map(|_| Vec::new()),
            splits: split_col.map(|_| Vec::new()),
            findings: finding_cols.map(|_| Vec::new()),
            sex: sex_col.map(|_| Vec::new()),
            age: age_col.map(|_| Vec::new()),
            race: race_col.map(|_| Vec::new()),
            extra_columns,
            ..Default::default()
        };
        Ok(RowParser {
            path,
            options,
            numbering,
            id_col,
            patient_col,
            study_col,
            split_col,
            sex_col,
            age_col,
            race_col,
            finding_cols,
            builder,
        })
    }

    /// Column positions this parser reads (for projecting a columnar file).
    pub fn used_columns(&self) -> Vec<usize> {
        [
            Some(self.id_col),
            Some(self.patient_col),
            self.study_col,
            self.split_col,
            self.sex_col,
            self.age_col,
            self.race_col,
        ]
        .into_iter()
        .flatten()
        .chain(self.finding_cols.iter().flatten().copied())
        .collect()
    }

    /// Parse one row; `cell(c)` is the trimmed text of column `c` (empty when null).
    pub fn push<'c>(&mut self, row: usize, cell: impl Fn(usize) -> Cow<'c, str>) -> Result<()> {
        let b = &mut self.builder;
        b.ids.push(cell(self.id_col).trim().to_string());
        b.patient_ids.push(cell(self.patient_col).trim().to_string());
        if let (Some(c), Some(v)) = (self.study_col, b.study_ids.as_mut()) {
            v.push(cell(c).trim().to_string());
        }
        if let (Some(c), Some(v)) = (self.split_col, b.splits.as_mut()) {
            let value = cell(c);
            let value = value.trim();
            v.push(self.options.splits.get(value).cloned().unwrap_or_else(|| value.to_string()));
        }
        if let (Some(cols), Some(v)) = (self.finding_cols, b.findings.as_mut()) {
            let mut labels = [Label::Blank; N_FINDINGS];
            for (k, &c) in cols.iter().enumerate() {
                let text = cell(c);
                labels[k] = Label::parse(&text).ok_or_else(|| {
                    Error::input(
                        self.path,
                        format!(
                            "{}, column `{}`: cannot parse `{}` as a finding label; use 1, 0, -1 (uncertain) or leave blank",
                            self.numbering.label(row),
                            self.options.file_column(FINDINGS[k]),
                            text.trim()
                        ),
                    )
                })?;
            }
            v.push(labels);
        }
        let text = |c: usize| Some(cell(c).trim().to_string()).filter(|s| !s.is_empty());
        if let (Some(c), Some(v)) = (self.sex_col, b.sex.as_mut()) {
            v.push(text(c));
        }
        if let (Some(c), Some(v)) = (self.race_col, b.race.as_mut()) {
            v.push(text(c));
        }
        if let (Some(c), Some(v)) = (self.age_col, b.age.as_mut()) {
            let raw = cell(c);
            let s = raw.trim();
            let age = if s.is_empty() {
                None
            } else {
                match s.parse::<f64>() {
                    Ok(a) if a.is_finite() && a >= 0.0 => Some(a),
                    _ => {
                        return Err(Error::input(
                            self.path,
                            format!(
                                "{}, column `{}`: cannot parse `{s}` as an age in years; use a non-negative number or leave blank",
                                self.numbering.label(row),
                                self.options.file_column("age")
                            ),
                        ))
                    }
                }
            };
            v.push(age);
        }
        Ok(())
    }

    /// Validate the rows read (unique ids, known patients, ...) and build the metadata.
    pub fn finish(self) -> Result<Metadata> {
        let offset = match self.numbering {
            RowNumbering::CsvLine => 2,
            RowNumbering::ZeroBased => 0,
        };
        self.builder.build(self.path, offset)
    }

    /// Add column names to the unused-columns list (e.g. Parquet list columns that are not
    /// views).
    pub fn add_extra_columns(&mut self, names: impl IntoIterator<Item = String>) {
        self.builder.extra_columns.extend(names);
    }
}
