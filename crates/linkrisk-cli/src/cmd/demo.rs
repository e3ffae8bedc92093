//! `linkrisk demo`: the one-command tour. Synthesizes one population as four embedding models
//! of increasing clinical specialization see it (standing for paper 1's four VLMs) and
//! prints where each cohort is. Later versions audit them and write the report.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use linkrisk::synth::{Population, SynthConfig, SynthSummary};

/// The demo's stand-ins for four VLMs of increasing clinical specialization.
pub const DEMO_MODELS: [(&str, f64); 4] =
    [("general", 0.0), ("biomedical", 0.33), ("radiology", 0.67), ("cxr-specialist", 1.0)];

/// Arguments of `linkrisk demo`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Directory for the demo's cohorts (and, later, its reports).
    #[arg(long, default_value = "linkrisk-demo")]
    pub out: PathBuf,
    /// Train/test patients of the synthetic population (plus a fifth as many external ones).
    #[arg(long, default_value_t = 2000)]
    pub patients: usize,
    /// Seed of the synthetic population.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

/// One synthesized demo cohort.
#[derive(Debug, Clone)]
pub struct DemoCohort {
    /// Model name, e.g. `radiology`.
    pub model: &'static str,
    /// What was written (the directory is `summary.dir`).
    pub summary: SynthSummary,
}

/// Sample one population and write it as each of [`DEMO_MODELS`] embeds it, into
/// `out/cohorts/<model>/`. The patients, studies, findings and frozen-encoder features are
/// the same in every cohort; only `image.npy` and `report.npy` differ.
pub fn synthesize_cohorts(out: &Path, patients: usize, seed: u64) -> anyhow::Result<Vec<DemoCohort>> {
    let config =
        SynthConfig { patients, seed, external_patients: patients.div_ceil(5), ..SynthConfig::default() };
    let population = Population::sample(&config)?;
    DEMO_MODELS
        .iter()
        .map(|&(model, specialization)| {
            let summary = population.write(&out.join("cohorts").join(model), specialization)?;
            Ok(DemoCohort { model, summary })
        })
        .collect()
}

/// Synthesize the cohorts and print a summary of each.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let cohorts = synthesize_cohorts(&args.out, args.patients, args.seed)?;
    println!(
        "Synthesized {} cohorts into {}: one population of patients, embedded by {} models of \
         increasing clinical specialization.",
        cohorts.len(),
        args.out.display(),
        cohorts.len()
    );
    for cohort in &cohorts {
        let s = &cohort.summary;
        let splits: Vec<String> = s.splits.iter().map(|x| format!("{} {}", x.name, x.records)).collect();
        let views: Vec<String> =
            s.views.iter().map(|v| format!("{} ({}x{})", v.name, v.rows, v.dim)).collect();
        println!();
        println!("model {:<15} specialization {:.2}", cohort.model, s.specialization);
        println!("  records  {} of {} patients ({})", s.records, s.patients, splits.join(", "));
        println!("  views    {}", views.join(", "));
        println!("  files    {}", s.dir.display());
    }
    println!();
    println!("Next: linkrisk inspect {}", cohorts[0].summary.dir.display());
    Ok(ExitCode::SUCCESS)
}
