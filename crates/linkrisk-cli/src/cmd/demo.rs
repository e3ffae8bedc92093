//! `linkrisk demo`: the one-command tour — `linkrisk audit` over four synthetic models of
//! increasing clinical specialization plus a two-point mitigation (`linkrisk::runner::demo`
//! does the work; this file parses and prints).

use std::path::PathBuf;
use std::process::ExitCode;

use linkrisk::runner::demo::{self, DemoConfig};

use super::audit::{exit_code, print_models, print_written};
use crate::progress::RunProgress;

/// Arguments of `linkrisk demo`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Directory for the demo: `cohorts/<model>/`, `run.json`, `report.html`, `report.md`.
    #[arg(long, default_value = "linkrisk-demo")]
    pub out: PathBuf,
    /// Train/test patients of the synthetic population (plus a fifth as many external ones).
    /// About a fifth of them form the audited test split. [range: 1..=1000000]
    #[arg(long, default_value_t = 4000, value_parser = crate::range::count(1, linkrisk::synth::MAX_PATIENTS))]
    pub patients: usize,
    /// Seed of the synthetic population and of every audit.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Random candidate pools per query and pool size in the re-linkage audit. [range: 1..=10000]
    #[arg(long, default_value_t = 10, value_parser = crate::range::count(1, linkrisk::limits::MAX_TRIALS))]
    pub trials: usize,
    /// Patient-bootstrap replicates for the re-linkage and re-identification intervals. [range: 0..=100000]
    #[arg(long, default_value_t = 200, value_parser = crate::range::count(0, linkrisk::limits::MAX_BOOTSTRAP))]
    pub bootstrap: usize,
    /// Privacy budget of the private projection heads in the two-point mitigation
    /// (non-private vs this epsilon; delta as in `linkrisk mitigate`).
    #[arg(long, default_value_t = 1.0)]
    pub epsilon: f64,
}

/// Synthesize, audit, mitigate, report.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let started = std::time::Instant::now();
    let config = DemoConfig {
        patients: args.patients,
        seed: args.seed,
        trials: args.trials,
        bootstrap: args.bootstrap,
        epsilon: args.epsilon,
    };
    let progress = RunProgress::new();
    let outcome =
        demo::run(&config, &args.out, crate::output::argv(), &mut |e| progress.event(e), &progress.pass)?;
    progress.finish();
    println!(
        "linkrisk demo: {} synthetic patients (seed {}) embedded by {} models of increasing clinical \
         specialization; test split audited.",
        args.patients,
        args.seed,
        outcome.cohorts.len()
    );
    println!();
    let specialization: Vec<f64> = outcome.cohorts.iter().map(|c| c.summary.specialization).collect();
    print_models(&outcome.run.models, Some(&specialization));
    for line in &outcome.mitigation_lines {
        println!("{line}");
    }
    if let Some(error) = &outcome.mitigation_error {
        println!("failed:  mitigation: {error}");
        eprintln!("linkrisk: error: mitigation failed: {error}");
    }
    println!();
    print_written(&outcome.run, started.elapsed().as_secs_f64());
    let code = exit_code(&outcome.run);
    Ok(if outcome.mitigation_error.is_some() { ExitCode::from(2) } else { code })
}
