//! Per-record boolean flags keyed by record id, e.g. the `reidentified` flag that
//! `linkrisk reid --per-record` writes and `linkrisk attributes --reidentified` reads:
//! a CSV with a header `id,<column>` and one row per flagged record.

use std::collections::HashMap;
use std::path::Path;

use super::Metadata;
use crate::error::{Error, Result};

/// Parse a flag cell: `true`/`false`, `1`/`0` (case-insensitive).
fn parse_flag(cell: &str) -> Option<bool> {
    match cell.trim().to_ascii_lowercase().as_str() {
        "1" | "true" => Some(true),
        "0" | "false" => Some(false),
        _ => None,
    }
}

/// Read column `column` of the CSV at `path` as a flag per cohort record (row-aligned with
/// `metadata`); records the file does not list get `None`. Unknown or duplicate ids and
/// unparsable cells are errors naming the row.
pub fn read_flags(path: &Path, column: &str, metadata: &Metadata) -> Result<Vec<Option<bool>>> {
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let mut reader = csv::ReaderBuilder::new().has_headers(true).from_reader(file);
    let headers = reader
        .headers()
        .map_err(|e| Error::input(path, format!("cannot read the header line: {e}")))?
        .clone();
    let find = |name: &str| headers.iter().position(|h| h.trim() == name);
    let id_col = find("id").ok_or_else(|| {
        Error::input(path, format!("missing column `id`; the header must be `id,{column}`"))
    })?;
    let flag_col = find(column).ok_or_else(|| {
        Error::input(path, format!("missing column `{column}`; the header must be `id,{column}`"))
    })?;
    let row_of: HashMap<&str, usize> =
        metadata.ids.iter().enumerate().map(|(i, id)| (id.as_str(), i)).collect();
    let mut flags = vec![None; metadata.len()];
    let mut record = csv::StringRecord::new();
    let mut line = 1usize;
    loop {
        match reader.read_record(&mut record) {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => return Err(Error::input(path, format!("row {}: {e}", line + 1))),
        }
        line += 1;
        let id = record.get(id_col).unwrap_or("").trim();
        let cell = record.get(flag_col).unwrap_or("").trim();
        let row = *row_of.get(id).ok_or_else(|| {
            Error::input(
                path,
                format!("row {line}: id `{id}` is not a record of this cohort; the flags must come from the same cohort"),
            )
        })?;
        let value = parse_flag(cell).ok_or_else(|| {
            Error::input(
                path,
                format!("row {line}, column `{column}`: cannot parse `{cell}`; use true/false or 1/0"),
            )
        })?;
        if flags[row].replace(value).is_some() {
            return Err(Error::input(path, format!("row {line}: id `{id}` is listed twice")));
        }
    }
    Ok(flags)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cohort::metadata::MetadataBuilder;

    fn metadata() -> Metadata {
        MetadataBuilder {
            ids: vec!["a".into(), "b".into(), "c".into()],
            patient_ids: vec!["p".into(), "p".into(), "q".into()],
            ..Default::default()
        }
        .build(Path::new("m.csv"), 2)
        .unwrap()
    }

    #[test]
    fn reads_flags_and_rejects_bad_rows() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("flags.csv");
        std::fs::write(&path, "id,reidentified\nc,true\na,0\n").unwrap();
        assert_eq!(
            read_flags(&path, "reidentified", &metadata()).unwrap(),
            vec![Some(false), None, Some(true)]
        );
        std::fs::write(&path, "id,reidentified\nz,1\n").unwrap();
        let err = read_flags(&path, "reidentified", &metadata()).unwrap_err().to_string();
        assert!(err.contains("row 2") && err.contains("`z`"), "{err}");
        std::fs::write(&path, "id,reidentified\na,maybe\n").unwrap();
        assert!(read_flags(&path, "reidentified", &metadata()).unwrap_err().to_string().contains("`maybe`"));
        std::fs::write(&path, "id,reidentified\na,1\na,1\n").unwrap();
        assert!(read_flags(&path, "reidentified", &metadata()).unwrap_err().to_string().contains("twice"));
        std::fs::write(&path, "id,flag\na,1\n").unwrap();
        assert!(read_flags(&path, "reidentified", &metadata())
            .unwrap_err()
            .to_string()
            .contains("missing column `reidentified`"));
    }
}
