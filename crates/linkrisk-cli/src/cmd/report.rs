//! `linkrisk report RUN [--html] [--md]`: render a run directory's `run.json` as a
//! self-contained HTML page and/or Markdown with SVG charts, written into the run directory.

use std::path::PathBuf;
use std::process::ExitCode;

use linkrisk::report::{self, Format};

/// Arguments of `linkrisk report`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Without --html or --md both are written: RUN/report.html (one self-contained file: \
inline SVG and CSS, no script, no network) and RUN/report.md with its charts in RUN/plots/*.svg. \
Only aggregate figures are shown; per-record data never enters a report.")]
pub struct Args {
    /// Run directory: holds run.json, written by audits run with `--out RUN`.
    pub run: PathBuf,
    /// Write RUN/report.html.
    #[arg(long)]
    pub html: bool,
    /// Write RUN/report.md and its charts under RUN/plots/.
    #[arg(long)]
    pub md: bool,
}

/// Render and write the reports, then print where they are.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let formats = match (args.html, args.md) {
        (true, false) => vec![Format::Html],
        (false, true) => vec![Format::Markdown],
        _ => vec![Format::Html, Format::Markdown],
    };
    let written = report::write_report(&args.run, &formats)?;
    let charts = written.iter().filter(|p| p.extension().is_some_and(|e| e == "svg")).count();
    for path in written.iter().filter(|p| p.extension().is_none_or(|e| e != "svg")) {
        println!("{}", path.display());
    }
    if charts > 0 {
        println!("{} ({charts} charts)", args.run.join(report::markdown::PLOTS_DIR).display());
    }
    Ok(ExitCode::SUCCESS)
}
