//! `linkrisk inspect DIR`: load and validate a cohort, print a summary.

use std::path::PathBuf;
use std::process::ExitCode;

use linkrisk::cohort::Cohort;

/// Arguments of `linkrisk inspect`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Cohort directory (metadata.csv + one .npy per view).
    pub dir: PathBuf,
}

/// Load, validate and summarise.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let cohort = Cohort::load(&args.dir)?;
    println!("records   {}", cohort.len());
    println!("patients  {}", cohort.metadata.n_patients);
    println!("studies   {}", cohort.metadata.n_studies);
    for view in cohort.views() {
        println!(
            "view      {:<20} ({}, {}) {}",
            view.name(),
            view.n(),
            view.dim(),
            view.source().dtype.name()
        );
    }
    Ok(ExitCode::SUCCESS)
}
