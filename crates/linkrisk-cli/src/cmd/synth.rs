//! `linkrisk synth --out DIR`: write a synthetic cohort with known ground truth.

use std::path::PathBuf;
use std::process::ExitCode;

use linkrisk::synth::{generate_to_dir, Preset, ReportTransform, SynthConfig, SynthSummary};

/// Arguments of `linkrisk synth`. Without `--preset` a flag left out takes the default
/// shown; with one it takes the preset's value, and a flag given overrides the preset.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Directory to write (created if missing): metadata.csv, image.npy, report.npy,
    /// image_features.npy, report_features.npy.
    #[arg(long)]
    pub out: PathBuf,
    /// A cohort calibrated to a paper's magnitudes (docs/METHODS.md, "Calibration to the
    /// papers"): paper1 (cross-modal re-linkage, a test split of over 10,000 records) or
    /// paper2 (patient re-identification, two images per study).
    #[arg(long, value_parser = ["paper1", "paper2"])]
    pub preset: Option<String>,
    /// Train/test patients (each in `test` with probability --test-fraction, else
    /// `train`) [default: 4000].
    #[arg(long, value_parser = crate::range::count(1, linkrisk::synth::MAX_PATIENTS))]
    pub patients: Option<usize>,
    /// Most studies per patient; counts are truncated geometric, P(j) ~ 0.6^(j-1)
    /// [default: 5].
    #[arg(long, value_parser = crate::range::count(1, linkrisk::synth::MAX_STUDIES_PER_PATIENT))]
    pub studies_per_patient: Option<usize>,
    /// Records (images) per study; the images of a study share its findings and its
    /// report [default: 1].
    #[arg(long)]
    pub records_per_study: Option<usize>,
    /// Probability that a patient is in the test split [default: 0.2].
    #[arg(long)]
    pub test_fraction: Option<f64>,
    /// Dimension of the shared embedding space (image.npy, report.npy) [default: 512].
    #[arg(long, value_parser = crate::range::count(2, linkrisk::synth::MAX_DIM))]
    pub dim: Option<usize>,
    /// Dimension of the frozen-encoder features (image_features.npy, report_features.npy)
    /// [default: 768].
    #[arg(long, value_parser = crate::range::count(2, linkrisk::synth::MAX_DIM))]
    pub feature_dim: Option<usize>,
    /// How clinically specialised the embedding model is, 0..1: higher keeps more
    /// study-specific detail in the shared space, so re-linkage risk is higher
    /// [default: 0.5; presets: 1].
    #[arg(long)]
    pub specialization: Option<f64>,
    /// How report.npy relates to image.npy's space: none (shared space), rotate (a random
    /// orthogonal rotation) or other-model (directions of its own) [default: none].
    #[arg(long, value_parser = ["none", "rotate", "other-model"])]
    pub report_transform: Option<String>,
    /// Seed of every random choice; the same seed gives byte-identical files [default: 0].
    #[arg(long)]
    pub seed: Option<u64>,
    /// Patients of the domain-shifted `external` split (0 for none) [default: 800].
    #[arg(long, value_parser = crate::range::count(0, linkrisk::synth::MAX_PATIENTS))]
    pub external_patients: Option<usize>,
}

impl Args {
    /// The library configuration (validated when generating): the preset's (or the
    /// defaults), with every flag given replacing its field.
    pub fn config(&self) -> anyhow::Result<SynthConfig> {
        let mut c = match &self.preset {
            Some(name) => Preset::parse(name)?.config(),
            None => SynthConfig::default(),
        };
        c.patients = self.patients.unwrap_or(c.patients);
        c.studies_per_patient = self.studies_per_patient.unwrap_or(c.studies_per_patient);
        c.records_per_study = self.records_per_study.unwrap_or(c.records_per_study);
        c.test_fraction = self.test_fraction.unwrap_or(c.test_fraction);
        c.dim = self.dim.unwrap_or(c.dim);
        c.feature_dim = self.feature_dim.unwrap_or(c.feature_dim);
        c.specialization = self.specialization.unwrap_or(c.specialization);
        if let Some(t) = &self.report_transform {
            c.report_transform = ReportTransform::parse(t)?;
        }
        c.seed = self.seed.unwrap_or(c.seed);
        c.external_patients = self.external_patients.unwrap_or(c.external_patients);
        Ok(c)
    }
}

/// Generate and write the cohort, then print what was written.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let summary = generate_to_dir(&args.config()?, &args.out)?;
    print_summary(&summary);
    Ok(ExitCode::SUCCESS)
}

/// Print a written cohort's summary: records, patients, splits, views and where they are.
pub fn print_summary(summary: &SynthSummary) {
    let per_study = match summary.records_per_study {
        1 => "one".to_string(),
        k => k.to_string(),
    };
    println!("cohort    {}", summary.dir.display());
    println!(
        "records   {} (image-report pairs, {} per study) of {} patients; specialization {}, seed {}",
        summary.records, per_study, summary.patients, summary.specialization, summary.seed
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
