//! `linkrisk synth --out DIR`: write a synthetic cohort with known ground truth.

use std::path::PathBuf;
use std::process::ExitCode;

use linkrisk::synth::{generate_to_dir, SynthConfig, SynthSummary};

/// Arguments of `linkrisk synth`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Directory to write (created if missing): metadata.csv, image.npy, report.npy,
    /// image_features.npy, report_features.npy.
    #[arg(long)]
    pub out: PathBuf,
    /// Train/test patients (each in `test` with probability 0.2, else `train`). [range: 1..=1000000]
    #[arg(long, default_value_t = SynthConfig::default().patients, value_parser = crate::range::count(1, linkrisk::synth::MAX_PATIENTS))]
    pub patients: usize,
    /// Most studies per patient; counts are truncated geometric, P(j) ~ 0.6^(j-1). [range: 1..=1000]
    #[arg(long, default_value_t = SynthConfig::default().studies_per_patient, value_parser = crate::range::count(1, linkrisk::synth::MAX_STUDIES_PER_PATIENT))]
    pub studies_per_patient: usize,
    /// Dimension of the shared embedding space (image.npy, report.npy). [range: 2..=65536]
    #[arg(long, default_value_t = SynthConfig::default().dim, value_parser = crate::range::count(2, linkrisk::synth::MAX_DIM))]
    pub dim: usize,
    /// Dimension of the frozen-encoder features (image_features.npy, report_features.npy). [range: 2..=65536]
    #[arg(long, default_value_t = SynthConfig::default().feature_dim, value_parser = crate::range::count(2, linkrisk::synth::MAX_DIM))]
    pub feature_dim: usize,
    /// How clinically specialised the embedding model is, 0..1: higher keeps more
    /// study-specific detail in the shared space, so re-linkage risk is higher.
    #[arg(long, default_value_t = SynthConfig::default().specialization)]
    pub specialization: f64,
    /// Seed of every random choice; the same seed gives byte-identical files.
    #[arg(long, default_value_t = SynthConfig::default().seed)]
    pub seed: u64,
    /// Patients of the domain-shifted `external` split (0 for none). [range: 0..=1000000]
    #[arg(long, default_value_t = SynthConfig::default().external_patients, value_parser = crate::range::count(0, linkrisk::synth::MAX_PATIENTS))]
    pub external_patients: usize,
}

impl Args {
    /// The library configuration (validated when generating).
    pub fn config(&self) -> SynthConfig {
        SynthConfig {
            patients: self.patients,
            studies_per_patient: self.studies_per_patient,
            dim: self.dim,
            feature_dim: self.feature_dim,
            specialization: self.specialization,
            seed: self.seed,
            external_patients: self.external_patients,
        }
    }
}

/// Generate and write the cohort, then print what was written.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let summary = generate_to_dir(&args.config(), &args.out)?;
    print_summary(&summary);
    Ok(ExitCode::SUCCESS)
}

/// Print a written cohort's summary: records, patients, splits, views and where they are.
pub fn print_summary(summary: &SynthSummary) {
    println!("cohort    {}", summary.dir.display());
    println!(
        "records   {} (image-report pairs, one per study) of {} patients; specialization {}, seed {}",
        summary.records, summary.patients, summary.specialization, summary.seed
    );
    for split in &summary.splits {
        println!("split     {:<9} {:>8} records {:>8} patients", split.name, split.records, split.patients);
    }
    for view in &summary.views {
        println!(
            "view      {:<16} ({}, {})  {}",
            view.name,
            view.rows,
            view.dim,
            summary.dir.join(format!("{}.npy", view.name)).display()
        );
    }
}
