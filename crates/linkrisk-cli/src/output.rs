//! Writing results: JSON to a file (atomically) or to stdout, and aligned text tables.

use std::io::Write;
use std::path::Path;

use anyhow::Context;
use serde::Serialize;

/// Serialise `value` as pretty JSON to `path`, or to stdout when `path` is `-`.
pub fn write_json<T: Serialize>(path: &Path, value: &T) -> anyhow::Result<()> {
    let mut text = serde_json::to_string_pretty(value).context("serialising the report")?;
    text.push('\n');
    if path.as_os_str() == "-" {
        let mut out = std::io::stdout().lock();
        out.write_all(text.as_bytes())?;
        out.flush()?;
    } else {
        linkrisk::cohort::write::atomic_bytes(path, text.as_bytes())?;
    }
    Ok(())
}

/// Lay out `rows` under `header` as an aligned text table (two spaces between columns).
/// Columns whose cells all look numeric are right-aligned; each line is indented by `indent`.
pub fn table(indent: &str, header: &[&str], rows: &[Vec<String>]) -> String {
    let columns = header.len();
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let numeric: Vec<bool> = (0..columns)
        .map(|c| {
            !rows.is_empty()
                && rows.iter().all(|r| {
                    r.get(c).is_some_and(|s| s.trim_end_matches('%').parse::<f64>().is_ok() || s == "-")
                })
        })
        .collect();
    let mut out = String::new();
    let mut line = |cells: &mut dyn Iterator<Item = &str>| {
        let mut text = String::from(indent);
        for (c, cell) in cells.enumerate() {
            if c > 0 {
                text.push_str("  ");
            }
            let pad = widths[c].saturating_sub(cell.chars().count());
            if numeric[c] {
                text.push_str(&" ".repeat(pad));
                text.push_str(cell);
            } else {
                text.push_str(cell);
                text.push_str(&" ".repeat(pad));
            }
        }
        out.push_str(text.trim_end());
        out.push('\n');
    };
    line(&mut header.iter().copied());
    for row in rows {
        line(&mut row.iter().map(String::as_str));
    }
    out
}
