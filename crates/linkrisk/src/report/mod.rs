//! Reports: the run directory that collects every audit's JSON (`run`), the figures read
//! back out of it (`model`), the plain-language document built from them (`build`, `doc`),
//! its renderers — Markdown (`markdown`) and a self-contained HTML page (`html`) with
//! hand-written SVG charts (`svg`, `plots`) — and the CI gate (`gate`).
//!
//! The audits' JSON is the interface: nothing here depends on an audit's Rust type, so an
//! audit can add keys freely and the report shows the ones it knows (docs/REPORTS.md lists
//! them). Every number shown is a JSON number, formatted (`fmt`) but never recomputed.
//!
//! ```no_run
//! # fn main() -> linkrisk::Result<()> {
//! use linkrisk::report::{self, run::RunDir, Format};
//! let mut run = RunDir::open_or_create("RUN")?;
//! run.record(vec!["linkrisk".into(), "relink".into()], Some(0), 1.2,
//!            serde_json::json!({"audit": "relink", "query_view": "image", "gallery_view": "report"}))?;
//! let written = report::write_report(run.path(), &[Format::Markdown, Format::Html])?;
//! # Ok(()) }
//! ```

pub mod build;
pub mod doc;
pub mod fmt;
pub mod gate;
pub mod html;
pub mod markdown;
pub mod model;
pub mod plots;
mod read;
pub mod run;
pub mod svg;

use std::path::{Path, PathBuf};

pub use doc::Document;
pub use model::ReportModel;
pub use run::{CohortSummary, RunDir, RunEntry, RunFile};

use crate::error::{Error, Result};

/// File name of the Markdown report inside a run directory.
pub const MARKDOWN_FILE: &str = "report.md";
/// File name of the HTML report inside a run directory.
pub const HTML_FILE: &str = "report.html";

/// An output format of `linkrisk report`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `report.md` plus `plots/*.svg`.
    Markdown,
    /// `report.html`, self-contained.
    Html,
}

/// The report document for a run.
pub fn document(run: &RunFile) -> Document {
    build::document(&ReportModel::from_run(run))
}

/// The Markdown report of a run (charts linked as `plots/<id>.svg`, see [`chart_files`]).
pub fn render_markdown(run: &RunFile) -> String {
    markdown::render(&document(run))
}

/// The self-contained HTML report of a run.
pub fn render_html(run: &RunFile) -> String {
    html::render(&document(run))
}

/// The standalone SVG files the Markdown report links: (path relative to the report, SVG).
pub fn chart_files(doc: &Document) -> Vec<(PathBuf, String)> {
    doc.charts().map(|c| (Path::new(markdown::PLOTS_DIR).join(format!("{}.svg", c.id)), c.to_svg())).collect()
}

/// Read `dir/run.json` and write the requested reports into `dir`, each file atomically.
/// Returns the paths written (reports first, then chart files).
pub fn write_report(dir: &Path, formats: &[Format]) -> Result<Vec<PathBuf>> {
    if formats.is_empty() {
        return Err(Error::config("no report format requested: use --md and/or --html"));
    }
    let run = run::read_run_file(dir)?;
    let doc = document(&run);
    let mut written = Vec::new();
    let mut charts = Vec::new();
    for format in formats {
        match format {
            Format::Html => {
                let path = dir.join(HTML_FILE);
                crate::cohort::write::atomic_bytes(&path, html::render(&doc).as_bytes())?;
                written.push(path);
            }
            Format::Markdown => {
                let path = dir.join(MARKDOWN_FILE);
                crate::cohort::write::atomic_bytes(&path, markdown::render(&doc).as_bytes())?;
                written.push(path);
                charts = chart_files(&doc);
            }
        }
    }
    if !charts.is_empty() {
        let plots = dir.join(markdown::PLOTS_DIR);
        std::fs::create_dir_all(&plots).map_err(|e| Error::write(&plots, e))?;
        for (rel, svg) in charts {
            let path = dir.join(rel);
            crate::cohort::write::atomic_bytes(&path, svg.as_bytes())?;
            written.push(path);
        }
    }
    Ok(written)
}
