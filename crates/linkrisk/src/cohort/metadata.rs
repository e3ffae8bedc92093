//! `metadata.csv`: one row per record. `id` and `patient_id` are required; `study_id`,
//! `split`, the 14 CheXpert findings and `sex`, `age`, `race` are optional. Findings keep
//! uncertain (-1) and blank apart from 0: they mean different things to a probe.

use std::borrow::Cow;
use std::collections::HashMap;
use std::io::Write;
use std::path::Path;

use serde::{Deserialize, Serialize};

pub use super::columns::MetadataOptions;
use super::columns::{RowNumbering, RowParser};
use crate::error::{Error, Result};

/// Number of CheXpert findings.
pub const N_FINDINGS: usize = 14;

/// The 14 CheXpert findings, in CheXpert's column order.
pub const FINDINGS: [&str; N_FINDINGS] = [
    "No Finding",
    "Enlarged Cardiomediastinum",
    "Cardiomegaly",
    "Lung Opacity",
    "Lung Lesion",
    "Edema",
    "Consolidation",
    "Pneumonia",
    "Atelectasis",
    "Pneumothorax",
    "Pleural Effusion",
    "Pleural Other",
    "Fracture",
    "Support Devices",
];

/// The split every record gets when `metadata.csv` has no `split` column.
pub const DEFAULT_SPLIT: &str = "test";

/// One CheXpert label: positive (1), negative (0), uncertain (-1) or blank (not mentioned).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Label {
    /// `1`: the finding is present.
    Positive,
    /// `0`: the finding is stated absent.
    Negative,
    /// `-1`: the report is uncertain.
    Uncertain,
    /// empty cell: the report does not mention the finding.
    #[default]
    Blank,
}

impl Label {
    /// Parse a CSV cell: `1`, `0`, `-1` (also `1.0`, `0.0`, `-1.0`) or empty.
    pub fn parse(cell: &str) -> Option<Label> {
        match cell.trim() {
            "" => Some(Label::Blank),
            "1" | "1.0" => Some(Label::Positive),
            "0" | "0.0" | "-0.0" => Some(Label::Negative),
            "-1" | "-1.0" => Some(Label::Uncertain),
            _ => None,
        }
    }

    /// The CSV cell for this label.
    pub fn as_cell(self) -> &'static str {
        match self {
            Label::Positive => "1",
            Label::Negative => "0",
            Label::Uncertain => "-1",
            Label::Blank => "",
        }
    }
}

/// Per-record metadata, row-aligned with every view.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Metadata {
    /// Record ids, unique.
    pub ids: Vec<String>,
    /// Patient id per record, as given.
    pub patient_ids: Vec<String>,
    /// Dense patient index per record (0..n_patients, in order of first appearance).
    pub patient: Vec<u32>,
    /// Number of distinct patients.
    pub n_patients: usize,
    /// Study id per record when the file has a `study_id` column.
    pub study_ids: Option<Vec<String>>,
    /// Dense study index per record. A study is a (patient, study_id) pair; without a
    /// `study_id` column every record is its own study.
    pub study: Vec<u32>,
    /// Number of distinct studies.
    pub n_studies: usize,
    /// Split names in order of first appearance (e.g. `train`, `test`, `external`).
    pub split_names: Vec<String>,
    /// Index into `split_names` per record. Without a `split` column every record is in
    /// split [`DEFAULT_SPLIT`].
    pub split: Vec<u16>,
    /// Whether the file had a `split` column.
    pub has_split_column: bool,
    /// The 14 findings per record (row-major n x 14) when all 14 columns are present.
    pub findings: Option<Vec<[Label; N_FINDINGS]>>,
    /// `sex` per record (None = blank) when the column is present.
    pub sex: Option<Vec<Option<String>>>,
    /// `age` in years per record (None = blank) when the column is present.
    pub age: Option<Vec<Option<f64>>>,
    /// `race` per record (None = blank) when the column is present.
    pub race: Option<Vec<Option<String>>>,
    /// Columns present in the file that linkrisk does not use (kept for the summary).
    pub extra_columns: Vec<String>,
}

/// Raw optional columns gathered while reading, before dense indices are built.
#[derive(Debug, Default)]
pub struct MetadataBuilder {
    /// Record ids.
    pub ids: Vec<String>,
    /// Patient ids.
    pub patient_ids: Vec<String>,
    /// Study ids, if the source has them.
    pub study_ids: Option<Vec<String>>,
    /// Split names per record, if the source has them.
    pub splits: Option<Vec<String>>,
    /// Findings per record, if the source has all 14 columns.
    pub findings: Option<Vec<[Label; N_FINDINGS]>>,
    /// Sex per record.
    pub sex: Option<Vec<Option<String>>>,
    /// Age per record.
    pub age: Option<Vec<Option<f64>>>,
    /// Race per record.
    pub race: Option<Vec<Option<String>>>,
    /// Unused column names.
    pub extra_columns: Vec<String>,
}

impl MetadataBuilder {
    /// Check uniqueness and lengths, and build dense patient/study/split indices.
    /// `path` is the file named in errors; `row_offset` converts a record index into the
    /// row number a user sees (2 for a CSV with a header line, 0 for 0-based rows, which
    /// messages then call "(0-based)").
    pub fn build(self, path: &Path, row_offset: usize) -> Result<Metadata> {
        let row = |i: usize| {
            if row_offset == 0 {
                format!("row {i} (0-based)")
            } else {
                format!("row {}", i + row_offset)
            }
        };
        let n = self.ids.len();
        if n == 0 {
            return Err(Error::input(
                path,
                "the cohort is empty: the metadata has no records; add one row per record (and one row per record to every view)",
            ));
        }
        let check_len = |name: &str, len: usize| -> Result<()> {
            if len != n {
                return Err(Error::input(path, format!("column `{name}` has {len} values for {n} records")));
            }
            Ok(())
        };
        check_len("patient_id", self.patient_ids.len())?;
        let mut seen: HashMap<&str, usize> = HashMap::with_capacity(n);
        for (i, id) in self.ids.iter().enumerate() {
            if id.is_empty() {
                return Err(Error::input(
                    path,
                    format!("{}: column `id` is empty; every record needs a unique id", row(i)),
                ));
            }
            if let Some(first) = seen.insert(id.as_str(), i) {
                return Err(Error::input(
                    path,
                    format!(
                        "{}: duplicate id `{id}` (first seen on {}); ids must be unique: remove or rename the duplicate record",
                        row(i),
                        row(first)
                    ),
                ));
            }
        }
        drop(seen);
        let mut patient_of: HashMap<&str, u32> = HashMap::new();
        let mut patient = Vec::with_capacity(n);
        for (i, pid) in self.patient_ids.iter().enumerate() {
            if pid.is_empty() {
                return Err(Error::input(
                    path,
                    format!("{}: column `patient_id` is empty (unknown patient); every record needs its patient id: fill it in or remove the record from metadata and every view", row(i)),
                ));
            }
            let next = patient_of.len() as u32;
            patient.push(*patient_of.entry(pid.as_str()).or_insert(next));
        }
        let n_patients = patient_of.len();
        let mut study = Vec::with_capacity(n);
        let n_studies = match &self.study_ids {
            Some(sids) => {
                check_len("study_id", sids.len())?;
                let mut study_of: HashMap<(u32, &str), u32> = HashMap::new();
                for (i, sid) in sids.iter().enumerate() {
                    if sid.is_empty() {
                        return Err(Error::input(
                            path,
                            format!("{}: column `study_id` is empty; fill it in or drop the column", row(i)),
                        ));
                    }
                    let next = study_of.len() as u32;
                    study.push(*study_of.entry((patient[i], sid.as_str())).or_insert(next));
                }
                study_of.len()
            }
            None => {
                study.extend(0..n as u32);
                n
            }
        };
        let has_split_column = self.splits.is_some();
        let mut split_names: Vec<String> = Vec::new();
        let mut split = Vec::with_capacity(n);
        match &self.splits {
            Some(splits) => {
                check_len("split", splits.len())?;
                for (i, s) in splits.iter().enumerate() {
                    if s.is_empty() {
                        return Err(Error::input(
                            path,
                            format!("{}: column `split` is empty; use e.g. train, test or external", row(i)),
                        ));
                    }
                    let idx = match split_names.iter().position(|x| x == s) {
                        Some(p) => p,
                        None => {
                            split_names.push(s.clone());
                            split_names.len() - 1
                        }
                    };
                    if idx > u16::MAX as usize {
                        return Err(Error::input(
                            path,
                            "more than 65535 distinct splits; `split` should name a handful of subsets",
                        ));
                    }
                    split.push(idx as u16);
                }
            }
            None => {
                split_names.push(DEFAULT_SPLIT.to_string());
                split.resize(n, 0);
            }
        }
        if let Some(f) = &self.findings {
            check_len("findings", f.len())?;
        }
        if let Some(v) = &self.sex {
            check_len("sex", v.len())?;
        }
        if let Some(v) = &self.age {
            check_len("age", v.len())?;
        }
        if let Some(v) = &self.race {
            check_len("race", v.len())?;
        }
        Ok(Metadata {
            ids: self.ids,
            patient_ids: self.patient_ids,
            patient,
            n_patients,
            study_ids: self.study_ids,
            study,
            n_studies,
            split_names,
            split,
            has_split_column,
            findings: self.findings,
            sex: self.sex,
            age: self.age,
            race: self.race,
            extra_columns: self.extra_columns,
        })
    }
}

impl Metadata {
    /// Number of records.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// Whether there are no records.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// Index of split `name`, or an error listing the splits that exist.
    pub fn split_index(&self, name: &str) -> Result<u16> {
        self.split_names.iter().position(|s| s == name).map(|p| p as u16).ok_or_else(|| {
            Error::config(format!(
                "no records in split `{name}`; this cohort's splits are: {}",
                self.split_names.join(", ")
            ))
        })
    }

    /// Record indices in split `name`, in row order.
    pub fn rows_in_split(&self, name: &str) -> Result<Vec<usize>> {
        let s = self.split_index(name)?;
        Ok((0..self.len()).filter(|&i| self.split[i] == s).collect())
    }

    /// Distinct patients among the records of split `name`.
    pub fn patients_in_split(&self, name: &str) -> Result<usize> {
        let mut patients: Vec<u32> = self.rows_in_split(name)?.iter().map(|&i| self.patient[i]).collect();
        patients.sort_unstable();
        patients.dedup();
        Ok(patients.len())
    }

    /// The split name of record `i`.
    pub fn split_name(&self, i: usize) -> &str {
        &self.split_names[self.split[i] as usize]
    }

    /// Read and validate `metadata.csv` with the standard column names.
    pub fn read_csv(path: &Path) -> Result<Metadata> {
        Self::read_csv_with(path, &MetadataOptions::default())
    }

    /// Read and validate a metadata CSV whose column names and split values are mapped by
    /// `options` (from `cohort.toml`). Rows in messages are line numbers (the header is 1).
    pub fn read_csv_with(path: &Path, options: &MetadataOptions) -> Result<Metadata> {
        let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
        let mut reader = csv::ReaderBuilder::new().has_headers(true).flexible(false).from_reader(file);
        let headers = reader
            .headers()
            .map_err(|e| Error::input(path, format!("cannot read the header line: {e}")))?
            .clone();
        let names: Vec<&str> = headers.iter().map(str::trim).collect();
        if names.iter().all(|n| n.is_empty()) {
            return Err(Error::input(
                path,
                "is empty: the first line must name the columns (id, patient_id, ...), then one row per record",
            ));
        }
        check_unique_columns(path, &names)?;
        let mut parser = RowParser::new(path, &names, options, RowNumbering::CsvLine)?;
        let mut record = csv::StringRecord::new();
        let mut line = 1usize; // the header is line 1
        loop {
            match reader.read_record(&mut record) {
                Ok(true) => {}
                Ok(false) => break,
                Err(e) => return Err(Error::input(path, format!("row {}: {e}", line + 1))),
            }
            line += 1;
            parser.push(line, |c| Cow::Borrowed(record.get(c).unwrap_or("").trim()))?;
        }
        parser.finish()
    }

    /// Write `metadata.csv` with the columns this metadata has (inverse of [`read_csv`](Self::read_csv)).
    pub fn write_csv(&self, path: &Path) -> Result<()> {
        let file = std::fs::File::create(path).map_err(|e| Error::write(path, e))?;
        let mut w = csv::Writer::from_writer(std::io::BufWriter::new(file));
        let werr = |e: csv::Error| Error::write(path, std::io::Error::other(e));
        let mut header: Vec<&str> = vec!["id", "patient_id"];
        if self.study_ids.is_some() {
            header.push("study_id");
        }
        if self.has_split_column {
            header.push("split");
        }
        if self.findings.is_some() {
            header.extend(FINDINGS);
        }
        if self.sex.is_some() {
            header.push("sex");
        }
        if self.age.is_some() {
            header.push("age");
        }
        if self.race.is_some() {
            header.push("race");
        }
        w.write_record(&header).map_err(werr)?;
        let mut fields: Vec<String> = Vec::with_capacity(header.len());
        for i in 0..self.len() {
            fields.clear();
            fields.push(self.ids[i].clone());
            fields.push(self.patient_ids[i].clone());
            if let Some(s) = &self.study_ids {
                fields.push(s[i].clone());
            }
            if self.has_split_column {
                fields.push(self.split_name(i).to_string());
            }
            if let Some(f) = &self.findings {
                fields.extend(f[i].iter().map(|l| l.as_cell().to_string()));
            }
            if let Some(v) = &self.sex {
                fields.push(v[i].clone().unwrap_or_default());
            }
            if let Some(v) = &self.age {
                fields.push(v[i].map(|a| format!("{a}")).unwrap_or_default());
            }
            if let Some(v) = &self.race {
                fields.push(v[i].clone().unwrap_or_default());
            }
            w.write_record(&fields).map_err(werr)?;
        }
        let mut inner =
            w.into_inner().map_err(|e| Error::write(path, std::io::Error::other(e.to_string())))?;
        inner.flush().map_err(|e| Error::write(path, e))?;
        Ok(())
    }

    /// The metadata restricted to `rows` (in that order); dense indices are rebuilt.
    /// Errors when `rows` is empty.
    pub fn select(&self, rows: &[usize]) -> Result<Metadata> {
        let pick = |v: &Vec<String>| rows.iter().map(|&i| v[i].clone()).collect::<Vec<_>>();
        let b = MetadataBuilder {
            ids: pick(&self.ids),
            patient_ids: pick(&self.patient_ids),
            study_ids: self.study_ids.as_ref().map(pick),
            splits: self
                .has_split_column
                .then(|| rows.iter().map(|&i| self.split_name(i).to_string()).collect()),
            findings: self.findings.as_ref().map(|f| rows.iter().map(|&i| f[i]).collect()),
            sex: self.sex.as_ref().map(|v| rows.iter().map(|&i| v[i].clone()).collect()),
            age: self.age.as_ref().map(|v| rows.iter().map(|&i| v[i]).collect()),
            race: self.race.as_ref().map(|v| rows.iter().map(|&i| v[i].clone()).collect()),
            extra_columns: self.extra_columns.clone(),
        };
        b.build(Path::new("<selection>"), 0)
    }
}

/// A metadata table names each column once (otherwise which one holds the values is a guess).
pub(crate) fn check_unique_columns(path: &Path, names: &[&str]) -> Result<()> {
    for (i, name) in names.iter().enumerate() {
        if let Some(j) = names[..i].iter().position(|n| n == name) {
            return Err(Error::input(
                path,
                format!(
                    "column `{name}` appears twice (columns {} and {}); rename or remove one",
                    j + 1,
                    i + 1
                ),
            ));
        }
    }
    Ok(())
}
