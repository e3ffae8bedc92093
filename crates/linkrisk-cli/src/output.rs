//! Writing results: JSON to a file (atomically) or to stdout.

use std::io::Write;
use std::path::Path;

use anyhow::Context;
use serde::Serialize;

/// Serialise `value` as pretty JSON to `path`, or to stdout when `path` is `-`.
#[allow(dead_code)]
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
