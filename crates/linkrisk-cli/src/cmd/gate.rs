//! `linkrisk gate RUN --max-lift POOL=VALUE ...`: fail a CI pipeline when a run's linkage or
//! re-identification risk exceeds a threshold. One line per violated threshold on stdout.

use std::path::PathBuf;
use std::process::ExitCode;

use linkrisk::report::gate::{self, Limit, Metric};
use linkrisk::report::run::read_run_file;

const AFTER_HELP: &str = "\
Exit codes: 0 every threshold holds; 1 at least one figure exceeds its threshold (one line per \
violation on stdout: audit, metric, value > threshold); 2 error (no run.json, a bad threshold, \
or a threshold that matches no figure in the run, e.g. a pool size the run does not have — the \
message lists the pools that exist).

--max-lift and --max-recall-at-1 check every relink audit's random and pathology-matched pools \
of that size (POOL=full: the full database) and every attack row of that pool; \
--max-reid-rank1 checks every reid audit (plain and trained attackers). A figure equal to its \
threshold passes.

Example: linkrisk gate RUN --max-lift 10000=20 --max-lift 100=10 --max-reid-rank1 0.3";

/// Arguments of `linkrisk gate`.
#[derive(Debug, clap::Args)]
#[command(after_help = AFTER_HELP)]
pub struct Args {
    /// Run directory holding run.json.
    pub run: PathBuf,
    /// Largest allowed re-linkage lift (Recall@1 / chance) at pool size POOL (a number or
    /// `full`); repeatable.
    #[arg(long = "max-lift", value_name = "POOL=VALUE")]
    pub max_lift: Vec<String>,
    /// Largest allowed re-linkage Recall@1 (a proportion, 0.005 = 0.5%) at pool size POOL;
    /// repeatable.
    #[arg(long = "max-recall-at-1", value_name = "POOL=VALUE")]
    pub max_recall_at_1: Vec<String>,
    /// Largest allowed re-identification Rank-1 rate (a proportion).
    #[arg(long = "max-reid-rank1", value_name = "VALUE")]
    pub max_reid_rank1: Option<String>,
    /// Also print the checks that pass.
    #[arg(long, short)]
    pub verbose: bool,
}

/// Check the thresholds; exit 1 when any is exceeded.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let mut limits = Vec::new();
    for text in &args.max_lift {
        limits.push(Limit::parse_pool("--max-lift", text, Metric::Lift)?);
    }
    for text in &args.max_recall_at_1 {
        limits.push(Limit::parse_pool("--max-recall-at-1", text, Metric::RecallAt1)?);
    }
    if let Some(text) = &args.max_reid_rank1 {
        limits.push(Limit::reid_rank1(text)?);
    }
    let run = read_run_file(&args.run)?;
    let outcome = gate::evaluate(&run, &limits)?;
    for check in &outcome.checks {
        if check.violated() {
            println!("over threshold: {}", check.describe());
        } else if args.verbose {
            println!("ok: {}", check.describe());
        }
    }
    let failed = outcome.violations().count();
    if failed > 0 {
        eprintln!("gate: {failed} of {} checks over threshold", outcome.checks.len());
        Ok(ExitCode::from(1))
    } else {
        eprintln!("gate: all {} checks within thresholds", outcome.checks.len());
        Ok(ExitCode::SUCCESS)
    }
}
