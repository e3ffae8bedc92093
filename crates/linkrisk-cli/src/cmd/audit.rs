//! `linkrisk audit COHORT [COHORT...] --out RUN [--label NAME...] [--config audit.toml]`:
//! every audit of every model in one command (the library's `runner`), recorded in one run
//! directory keyed by model, then the report. This file parses, shows progress and prints
//! the closing table; the runner does the work.

use std::path::PathBuf;
use std::process::ExitCode;

use linkrisk::runner::{self, AuditConfig, ModelOutcome, RunOptions, RunOutcome, Settings};

use crate::output::table;
use crate::progress::RunProgress;

const AFTER_HELP: &str = "\
Per model (one cohort directory each): re-linkage in both directions (image -> report and report \
-> image) at pools 10, 100, 1,000, 10,000 and the full database, with pathology-matched pools where \
the cohort has findings and every attack (--attack all); patient re-identification with every \
attacker; attributes stratified by re-identification; utility. --config audit.toml sets labels, \
views, splits, pools, attacks, seeds and gate thresholds per model (docs/AUDIT-CONFIG.md).

What cannot run on a cohort (no findings for hard negatives, a missing view or column) is listed. A \
model that fails is reported and the others still run. Exit codes: 0 every audit ran; 2 an error, \
or a model or audit failed (after the others finished).

Example: linkrisk audit cohorts/model-a cohorts/model-b --out RUN && linkrisk gate RUN --config audit.toml";

/// Arguments of `linkrisk audit`.
#[derive(Debug, clap::Args)]
#[command(after_help = AFTER_HELP)]
pub struct Args {
    /// Cohort directories, one per model; without any, the `[[model]]` cohorts of --config.
    #[arg(value_name = "COHORT")]
    pub cohorts: Vec<PathBuf>,
    /// Run directory: RUN/run.json (every audit, keyed by model), RUN/report.html, RUN/report.md.
    #[arg(long, value_name = "RUN")]
    pub out: PathBuf,
    /// The models' names, one per cohort in order (default: each cohort directory's name).
    #[arg(long = "label", value_name = "NAME")]
    pub labels: Vec<String>,
    /// Audit settings and gate thresholds per model (TOML; docs/AUDIT-CONFIG.md).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Record a cohort under a label that RUN already holds for another cohort, removing that
    /// model's earlier entries (without it, that is an error).
    #[arg(long)]
    pub replace: bool,
}

/// Plan, run, print; exit 2 when any model or audit failed.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let started = std::time::Instant::now();
    let config = args.config.as_deref().map(AuditConfig::load).transpose()?;
    let plans = runner::plan(config.as_ref(), &args.cohorts, &args.labels, &Settings::defaults())?;
    let options =
        RunOptions { command: crate::output::argv(), synthetic: false, render: true, replace: args.replace };
    let progress = RunProgress::new();
    let outcome = runner::run(&plans, &args.out, &options, &mut |e| progress.event(e), &progress.pass)?;
    progress.finish();
    println!("linkrisk audit: {} models", outcome.models.len());
    println!();
    print_models(&outcome.models, None);
    print_written(&outcome, started.elapsed().as_secs_f64());
    Ok(exit_code(&outcome))
}

/// 2 when a model or audit failed (each failure on stderr), else 0.
pub fn exit_code(outcome: &RunOutcome) -> ExitCode {
    let failures: Vec<String> = outcome
        .models
        .iter()
        .flat_map(|m| {
            m.failed.iter().map(move |f| format!("model `{}`: {} failed: {}", m.label, f.audit, f.error))
        })
        .collect();
    for f in &failures {
        eprintln!("linkrisk: error: {f}");
    }
    if failures.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    }
}

fn opt(v: Option<f64>, f: impl Fn(f64) -> String) -> String {
    v.map(f).unwrap_or_else(|| "-".to_string())
}

/// The closing table: one row per model (with the demo's specialization column when given),
/// its legend, then what did not run and what failed.
pub fn print_models(models: &[ModelOutcome], specialization: Option<&[f64]>) {
    let mut header = vec!["model"];
    if specialization.is_some() {
        header.push("special.");
    }
    header.extend([
        "R@1 full",
        "lift full",
        "R@1 full rev.",
        "pool",
        "R@1 pool",
        "lift pool",
        "strongest attack",
        "re-ID rank-1",
        "utility",
        "sex AUROC",
    ]);
    let cells: Vec<Vec<String>> = models
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let s = &m.summary;
            let f = s.forward.as_ref();
            let pool = f.and_then(|f| f.largest_pool);
            let mut row = vec![m.label.clone()];
            if let Some(spec) = specialization {
                row.push(opt(spec.get(i).copied(), |v| format!("{v:.2}")));
            }
            row.extend([
                opt(f.map(|f| f.recall_full), |v| format!("{v:.4}")),
                opt(f.map(|f| f.lift_full), |v| format!("{v:.1}")),
                opt(s.reverse.as_ref().map(|r| r.recall_full), |v| format!("{v:.4}")),
                pool.map_or("-".into(), |p| p.0.to_string()),
                opt(pool.map(|p| p.1), |v| format!("{v:.4}")),
                opt(pool.map(|p| p.2), |v| format!("{v:.1}")),
                f.and_then(|f| f.strongest_attack.as_ref()).map_or("-".into(), |(name, n, r)| {
                    let at = n.map_or("full".to_string(), |n| format!("N={n}"));
                    format!("{name} {at}: {r:.4}")
                }),
                s.reid_rank_1.as_ref().map_or("-".into(), |(who, v)| format!("{v:.4} ({who})")),
                opt(s.utility, |v| format!("{v:.4}")),
                opt(s.sex_auroc, |v| format!("{v:.4}")),
            ]);
            row
        })
        .collect();
    print!("{}", table("  ", &header, &cells));
    println!();
    println!("R@1: Recall@1 of image -> report re-linkage (rev.: report -> image); lift: R@1 / chance;");
    println!("strongest attack: the attack with the highest normalized risk and its Recall@1; utility:");
    println!("macro AUROC of linear probes over the 14 findings; re-ID rank-1: another image of the same");
    println!("patient is the nearest one (the stronger attacker); sex AUROC: attribute inference from the");
    println!("image embedding.");
    for m in models {
        for n in &m.not_run {
            println!("not run: {}: {} {}: {}", m.label, n.audit, n.what, n.reason);
        }
        for f in &m.failed {
            println!("failed:  {}: {}: {}", m.label, f.audit, f.error);
        }
    }
    println!();
}

/// Where the report and run.json are, and how long it took.
pub fn print_written(outcome: &RunOutcome, seconds: f64) {
    for path in outcome.written.iter().filter(|p| p.extension().is_some_and(|e| e == "html" || e == "md")) {
        println!("report: {}", path.display());
    }
    println!("run:    {}", outcome.run_file.display());
    println!("done in {seconds:.1} s");
}
