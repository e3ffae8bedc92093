//! `linkrisk demo`: the one-command tour. Synthesizes one population as four embedding models
//! of increasing clinical specialization see it (standing for paper 1's four VLMs), audits
//! each (re-linkage, patient re-identification, attribute inference, utility), runs a
//! two-point mitigation (non-private vs private projection heads), records everything in one
//! run directory and renders the report.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;
use linkrisk::audit::attributes::{attributes_by_reid, AttributesConfig};
use linkrisk::audit::reid::{reid, Attackers, ReidConfig};
use linkrisk::audit::utility::{utility, UtilityConfig};
use linkrisk::audit::{relink, RelinkConfig};
use linkrisk::cohort::Cohort;
use linkrisk::engine::NoProgress;
use linkrisk::report::run::{unix_now, CohortSummary, RunEntry};
use linkrisk::report::{write_report, Format, RunDir};
use linkrisk::synth::{Population, SynthConfig, SynthSummary};
use serde::Serialize;
use serde_json::Value;

use crate::output::table;

/// The demo's stand-ins for four VLMs of increasing clinical specialization.
pub const DEMO_MODELS: [(&str, f64); 4] =
    [("general", 0.0), ("biomedical", 0.33), ("radiology", 0.67), ("cxr-specialist", 1.0)];

/// Arguments of `linkrisk demo`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Directory for the demo: `cohorts/<model>/`, `run.json`, `report.html`, `report.md`.
    #[arg(long, default_value = "linkrisk-demo")]
    pub out: PathBuf,
    /// Train/test patients of the synthetic population (plus a fifth as many external ones).
    /// About a fifth of them form the audited test split.
    #[arg(long, default_value_t = 4000)]
    pub patients: usize,
    /// Seed of the synthetic population and of every audit.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Random candidate pools per query and pool size in the re-linkage audit.
    #[arg(long, default_value_t = 10)]
    pub trials: usize,
    /// Patient-bootstrap replicates for the re-linkage intervals.
    #[arg(long, default_value_t = 200)]
    pub bootstrap: usize,
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

/// The run directory of the demo and the clock of the whole tour.
struct Tour {
    run: RunDir,
    started: Instant,
    seed: u64,
}

impl Tour {
    /// Print what is being done, with the elapsed time, on stderr.
    fn step(&self, what: &str) {
        eprintln!("[{:>5.1} s] {what}", self.started.elapsed().as_secs_f64());
    }

    /// Record one audit's report under `label` (the model's name), returning its JSON.
    fn record<T: Serialize>(
        &mut self,
        label: &str,
        command: String,
        seconds: f64,
        report: &T,
    ) -> anyhow::Result<Value> {
        let audit = serde_json::to_value(report).context("serialising the report")?;
        self.run.record_entry(RunEntry {
            key: String::new(),
            label: Some(label.to_string()),
            command: command.split_whitespace().map(String::from).collect(),
            seed: Some(self.seed),
            started_unix: unix_now().saturating_sub(seconds.ceil() as u64),
            seconds,
            linkrisk_version: linkrisk::VERSION.to_string(),
            audit: audit.clone(),
        })?;
        Ok(audit)
    }
}

/// The headline figures of one model, for the closing table.
#[derive(Debug, Default)]
struct ModelRow {
    model: String,
    specialization: f64,
    recall_full: Option<f64>,
    lift_full: Option<f64>,
    recall_largest_pool: Option<(u64, f64, f64)>,
    reid_rank_1: Option<(&'static str, f64)>,
    utility: Option<f64>,
    sex_auroc: Option<f64>,
}

/// Synthesize, audit, mitigate, report.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    let out = &args.out;
    std::fs::create_dir_all(out).with_context(|| format!("creating --out {}", out.display()))?;
    let mut tour = Tour { run: RunDir::open_or_create(out)?, started, seed: args.seed };
    tour.step(&format!("synthesizing {} patients as seen by {} models", args.patients, DEMO_MODELS.len()));
    let cohorts = synthesize_cohorts(out, args.patients, args.seed)?;

    let mut rows = Vec::new();
    for (i, demo) in cohorts.iter().enumerate() {
        let dir = &demo.summary.dir;
        let cohort = Cohort::load(dir)?;
        if i == 0 {
            tour.run.set_cohort(&CohortSummary::from_cohort(&cohort, true))?;
        }
        rows.push(audit_model(&mut tour, &args, demo, &cohort)?);
    }

    tour.step("rendering the report");
    let written = write_report(out, &[Format::Html, Format::Markdown])?;
    print_summary(&args, &rows, &written, started.elapsed().as_secs_f64());
    Ok(ExitCode::SUCCESS)
}

/// Run every audit on one model's cohort and record it under the model's name.
fn audit_model(tour: &mut Tour, args: &Args, demo: &DemoCohort, cohort: &Cohort) -> anyhow::Result<ModelRow> {
    let model = demo.model;
    let dir = demo.summary.dir.display().to_string();
    let mut row = ModelRow {
        model: model.to_string(),
        specialization: demo.summary.specialization,
        ..ModelRow::default()
    };

    tour.step(&format!("{model}: re-linkage image -> report"));
    let config = RelinkConfig {
        pool_sizes: vec![10, 100, 1000, 10_000],
        trials: args.trials,
        hard_negatives: true,
        seed: args.seed,
        bootstrap_replicates: args.bootstrap,
        ..RelinkConfig::default()
    };
    let clock = Instant::now();
    let report = relink(cohort, &config, &NoProgress)?;
    let command = format!(
        "linkrisk relink {dir} --pools 10,100,1000,10000,full --hard-negatives --trials {} --bootstrap {} --seed {}",
        args.trials, args.bootstrap, args.seed
    );
    tour.record(model, command, clock.elapsed().as_secs_f64(), &report)?;
    let forward = &report.forward;
    row.recall_full = Some(forward.full.recall_at_1);
    row.lift_full = Some(forward.full.lift_at_1);
    row.recall_largest_pool = forward
        .pools
        .iter()
        .filter(|p| p.kind == "random")
        .max_by_key(|p| p.pool_size)
        .map(|p| (p.pool_size as u64, p.recall_at_1, p.lift_at_1));

    tour.step(&format!("{model}: utility probes (14 findings)"));
    let clock = Instant::now();
    let report =
        utility(cohort, &UtilityConfig { probe: probe_config(args.seed), ..UtilityConfig::default() })?;
    tour.record(
        model,
        format!("linkrisk utility {dir} --seed {}", args.seed),
        clock.elapsed().as_secs_f64(),
        &report,
    )?;
    row.utility = report.macro_auroc;

    tour.step(&format!("{model}: patient re-identification (nearest neighbour and a trained metric)"));
    let reid_config = ReidConfig {
        attackers: Attackers::Auto,
        seed: args.seed,
        bootstrap_replicates: args.bootstrap,
        ..ReidConfig::default()
    };
    let clock = Instant::now();
    let report = reid(cohort, &reid_config, &NoProgress)?;
    let seconds = clock.elapsed().as_secs_f64();
    for entry in report.run_entries() {
        let command = format!(
            "linkrisk reid {dir} --attacker auto --bootstrap {} --seed {}",
            args.bootstrap, args.seed
        );
        tour.record(model, command, seconds, &entry)?;
    }
    row.reid_rank_1 = Some((report.attacker, report.headline.rank_1));

    tour.step(&format!("{model}: attribute probes, stratified by re-identification"));
    let clock = Instant::now();
    let config = AttributesConfig { probe: probe_config(args.seed), ..AttributesConfig::default() };
    // Paper 2 stratifies by the nearest-neighbour flags: the trained metric re-identifies
    // nearly everyone here, which would leave too few records to compare against.
    let flags_config =
        ReidConfig { attackers: Attackers::NearestNeighbour, bootstrap_replicates: 0, ..reid_config };
    let report = attributes_by_reid(cohort, &config, &flags_config, &NoProgress)?;
    let json = tour.record(
        model,
        format!("linkrisk attributes {dir} --stratify-by-reid --reid-attacker none --seed {}", args.seed),
        clock.elapsed().as_secs_f64(),
        &report,
    )?;
    row.sex_auroc = json.pointer("/per_attribute/sex").and_then(Value::as_f64);
    Ok(row)
}

/// Probe settings of the demo: the library's defaults with the demo's seed.
fn probe_config(seed: u64) -> linkrisk::probe::ProbeConfig {
    linkrisk::probe::ProbeConfig { seed, ..linkrisk::probe::ProbeConfig::default() }
}

fn opt(v: Option<f64>, f: impl Fn(f64) -> String) -> String {
    v.map(f).unwrap_or_else(|| "-".to_string())
}

fn print_summary(args: &Args, rows: &[ModelRow], written: &[PathBuf], seconds: f64) {
    println!(
        "linkrisk demo: {} synthetic patients (seed {}) embedded by {} models of increasing clinical \
         specialization; test split audited.",
        args.patients,
        args.seed,
        rows.len()
    );
    println!();
    let header = [
        "model",
        "special.",
        "R@1 full",
        "lift full",
        "pool",
        "R@1 pool",
        "lift pool",
        "re-ID rank-1",
        "utility",
        "sex AUROC",
    ];
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            let pool = r.recall_largest_pool;
            vec![
                r.model.clone(),
                format!("{:.2}", r.specialization),
                opt(r.recall_full, |v| format!("{v:.4}")),
                opt(r.lift_full, |v| format!("{v:.1}")),
                pool.map(|p| p.0.to_string()).unwrap_or_else(|| "-".into()),
                opt(pool.map(|p| p.1), |v| format!("{v:.4}")),
                opt(pool.map(|p| p.2), |v| format!("{v:.1}")),
                r.reid_rank_1.map(|(who, v)| format!("{v:.4} ({who})")).unwrap_or_else(|| "-".into()),
                opt(r.utility, |v| format!("{v:.4}")),
                opt(r.sex_auroc, |v| format!("{v:.4}")),
            ]
        })
        .collect();
    print!("{}", table("  ", &header, &cells));
    println!();
    println!("R@1: Recall@1 of image -> report re-linkage; lift: R@1 / chance; utility: macro AUROC of");
    println!("linear probes over the 14 findings; re-ID rank-1: another image of the same patient is the");
    println!("nearest one (the stronger of nearest neighbour and a trained linear metric); sex AUROC:");
    println!("attribute inference from the image embedding.");
    println!();
    for path in written.iter().filter(|p| p.extension().is_some_and(|e| e == "html" || e == "md")) {
        println!("report: {}", path.display());
    }
    println!("run:    {}", args.out.join(linkrisk::report::run::RUN_FILE).display());
    println!("done in {seconds:.1} s");
}
