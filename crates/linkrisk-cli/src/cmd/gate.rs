//! `linkrisk gate RUN --max-lift POOL=VALUE ...`: fail a CI pipeline when any model's
//! linkage or re-identification risk exceeds a threshold, its utility falls below a floor, or
//! an attack that was requested did not run. One line per failed check on stdout; the checks
//! as JSON (`--json`) and JUnit XML (`--junit`) for CI systems.

use std::path::PathBuf;
use std::process::ExitCode;

use linkrisk::report::gate::{self, Basis, CheckKind, GateSpec, Limit, Metric};
use linkrisk::report::run::read_run_file;
use linkrisk::runner::AuditConfig;

const AFTER_HELP: &str = "\
Exit codes: 0 every threshold holds; 1 at least one figure exceeds its threshold, or an attack that \
was requested did not run (one line per failed check on stdout: audit, metric, value > threshold); \
2 error (no run.json, a bad threshold or a proportion outside [0, 1], or a threshold that matches no \
figure of a model, e.g. a pool size the run does not have — the message lists the pools that exist).

Every model of the run (its label; --model restricts) and every direction of each relink audit \
(image -> report and report -> image) is checked. --max-lift and --max-recall-at-1 check the random \
and pathology-matched pools of that size (POOL=full: the full database) and every attack row of that \
pool; --max-reid-rank1 checks every re-ID attacker and attack; --min-utility the utility macro AUROC \
(a floor); --max-attribute-auroc NAME=V the attribute AUROC. --on ci-high compares the upper end of \
each figure's 95% interval (the lower end for floors). A figure equal to its threshold passes. \
Thresholds may come from --config audit.toml ([gate] and each [[model]]'s [model.gate]); a flag \
replaces the file's threshold of the same metric.

Example: linkrisk gate RUN --max-lift 10000=20 --max-reid-rank1 0.3 --on ci-high --junit gate.xml";

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
    /// Smallest allowed utility: linear-probe macro AUROC over the findings.
    #[arg(long = "min-utility", value_name = "VALUE")]
    pub min_utility: Option<String>,
    /// Largest allowed attribute-inference AUROC, e.g. `sex=0.8`; repeatable.
    #[arg(long = "max-attribute-auroc", value_name = "NAME=VALUE")]
    pub max_attribute_auroc: Vec<String>,
    /// Compare the point estimate, or the conservative end of the 95% interval (`ci-high`:
    /// the upper end for ceilings, the lower end for floors).
    #[arg(long, value_enum)]
    pub on: Option<OnArg>,
    /// Check only this model (its label); repeatable. Default: every model of the run.
    #[arg(long = "model", value_name = "NAME")]
    pub models: Vec<String>,
    /// Accept attacks that were requested and did not run (listed, but they do not fail).
    #[arg(long)]
    pub allow_skipped: bool,
    /// Thresholds, `on` and `allow_skipped` from this audit config's [gate] sections.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Write every check as JSON here (`-` for stdout, replacing the lines).
    #[arg(long, value_name = "OUT")]
    pub json: Option<PathBuf>,
    /// Write every check as JUnit XML here (one test case per check).
    #[arg(long, value_name = "OUT")]
    pub junit: Option<PathBuf>,
    /// Also print the checks that pass.
    #[arg(long, short)]
    pub verbose: bool,
}

/// `--on` values.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum OnArg {
    /// The point estimate.
    Estimate,
    /// The upper end of the 95% interval (lower end for floors).
    CiHigh,
}

/// The gate's checks from the config file and the flags (flags win).
fn spec(args: &Args) -> anyhow::Result<GateSpec> {
    let mut spec = match &args.config {
        Some(path) => AuditConfig::load(path)?.gate_spec()?,
        None => GateSpec::default(),
    };
    for text in &args.max_lift {
        spec.set_limit(Limit::parse_pool("--max-lift", text, Metric::Lift)?);
    }
    for text in &args.max_recall_at_1 {
        spec.set_limit(Limit::parse_pool("--max-recall-at-1", text, Metric::RecallAt1)?);
    }
    if let Some(text) = &args.max_reid_rank1 {
        spec.set_limit(Limit::reid_rank1(text)?);
    }
    if let Some(text) = &args.min_utility {
        spec.set_limit(Limit::min_utility(text)?);
    }
    for text in &args.max_attribute_auroc {
        spec.set_limit(Limit::attribute_auroc(text)?);
    }
    if let Some(on) = args.on {
        spec.on = match on {
            OnArg::Estimate => Basis::Estimate,
            OnArg::CiHigh => Basis::CiHigh,
        };
    }
    spec.allow_skipped |= args.allow_skipped;
    spec.models = args.models.clone();
    Ok(spec)
}

/// Check the thresholds; exit 1 when any check fails.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let spec = spec(&args)?;
    let run = read_run_file(&args.run)?;
    let outcome = gate::evaluate(&run, &spec)?;
    if let Some(path) = &args.junit {
        linkrisk::cohort::write::atomic_bytes(path, gate::to_junit(&outcome)?.as_bytes())?;
    }
    let json_to_stdout = args.json.as_deref().is_some_and(|p| p.as_os_str() == "-");
    if let Some(path) = &args.json {
        let text = outcome.to_json()?;
        if json_to_stdout {
            print!("{text}");
        } else {
            linkrisk::cohort::write::atomic_bytes(path, text.as_bytes())?;
        }
    }
    if !json_to_stdout {
        for check in &outcome.checks {
            match (check.kind, check.passed) {
                (CheckKind::Threshold, false) => println!("over threshold: {}", check.describe()),
                (CheckKind::SkippedAttack, false) => println!("attack not run: {}", check.describe()),
                (_, true) if args.verbose => println!("ok: {}", check.describe()),
                _ => {}
            }
        }
    }
    let over = outcome.violations().filter(|c| c.kind == CheckKind::Threshold).count();
    let skipped = outcome.violations().filter(|c| c.kind == CheckKind::SkippedAttack).count();
    let total = outcome.checks.len();
    if over + skipped == 0 {
        eprintln!("gate: all {total} checks within thresholds");
        return Ok(ExitCode::SUCCESS);
    }
    match (over, skipped) {
        (_, 0) => eprintln!("gate: {over} of {total} checks over threshold"),
        (0, _) => eprintln!(
            "gate: {skipped} of {total} checks failed: requested attacks that did not run (--allow-skipped accepts them)"
        ),
        _ => eprintln!(
            "gate: {} of {total} checks failed: {over} over threshold, {skipped} requested attacks that did not run",
            over + skipped
        ),
    }
    Ok(ExitCode::from(1))
}
