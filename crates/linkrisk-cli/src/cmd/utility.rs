//! `linkrisk utility DIR`: linear-probe macro AUROC over the 14 CheXpert findings, trained
//! on one split and evaluated on another (how much clinical signal an embedding keeps).

use std::path::PathBuf;
use std::process::ExitCode;

use linkrisk::audit::cross_fit::SideSource;
use linkrisk::audit::utility::{utility, BlankPolicy, LabelPolicy, UncertainPolicy, UtilityConfig};
use linkrisk::cohort::Cohort;
use linkrisk::metrics::AurocInterval;
use linkrisk::probe::{ProbeConfig, SolverOptions};

/// Probe training flags shared by `utility` and `attributes`.
#[derive(Debug, clap::Args)]
pub struct ProbeArgs {
    /// Split the probes are trained on (default `train`). Named explicitly, it must exist
    /// (as with `--attack-side split`); by default a cohort without it gets probes
    /// cross-fitted within the eval split.
    #[arg(long)]
    pub train_split: Option<String>,
    /// Where the probes are trained: `auto` (the train split when it has records, else
    /// patient-grouped cross-fitting within the eval split: each record scored by probes
    /// trained on the other folds' patients), `audited` (always cross-fit) or `split` (the
    /// train split only; an error without it).
    #[arg(long, value_enum, default_value = "auto")]
    pub attack_side: SideArg,
    /// Cross-fitting folds (grouped by patient) when the probes are cross-fitted. `--folds`
    /// is the inner cross-validation that chooses each probe's regularisation. [range: 2..=255]
    #[arg(long, default_value_t = linkrisk::audit::cross_fit::DEFAULT_SIDE_FOLDS, value_parser = crate::range::count(2, linkrisk::probe::folds::MAX_FOLDS))]
    pub side_folds: usize,
    /// Split the probes are evaluated on (e.g. test or external).
    #[arg(long, default_value = "test")]
    pub eval_split: String,
    /// Cross-validation folds for choosing the regularisation (grouped by patient). [range: 2..=255]
    #[arg(long, default_value_t = 5, value_parser = crate::range::count(2, linkrisk::probe::folds::MAX_FOLDS))]
    pub folds: usize,
    /// Seed of the fold assignment.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Solver gradient tolerance (mean-form objective, as scikit-learn's `tol`).
    #[arg(long, default_value_t = 1e-6)]
    pub tol: f64,
    /// AUROC interval: `logit` (DeLong on the logit scale) or `plain` (DeLong, clipped).
    #[arg(long, value_enum, default_value_t = CiArg::Logit)]
    pub auroc_ci: CiArg,
}

/// `--auroc-ci` values.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum CiArg {
    /// Wald interval on the logit scale.
    Logit,
    /// Wald interval on the AUROC scale, clipped to [0, 1].
    Plain,
}

/// `--attack-side` values of the probe audits and `reid`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SideArg {
    /// The train split when it serves, else cross-fitting within the audited split.
    Auto,
    /// Always cross-fit within the audited split.
    Audited,
    /// Only the train split (an error, or a listed skip, when it cannot serve).
    Split,
}

impl ProbeArgs {
    /// The train split (`--train-split`, default `train`).
    pub fn train_split(&self) -> String {
        self.train_split.clone().unwrap_or_else(|| "train".into())
    }

    /// Where the probes are trained: an explicit `--train-split` under `auto` is strict.
    pub fn side(&self) -> SideSource {
        side_source(self.attack_side, self.train_split.is_some())
    }

    /// The library's probe configuration.
    pub fn probe_config(&self) -> ProbeConfig {
        ProbeConfig {
            n_folds: self.folds,
            seed: self.seed,
            solver: SolverOptions { tol: self.tol, ..SolverOptions::default() },
            ..ProbeConfig::default()
        }
    }

    /// The library's interval choice.
    pub fn interval(&self) -> AurocInterval {
        match self.auroc_ci {
            CiArg::Logit => AurocInterval::Logit,
            CiArg::Plain => AurocInterval::Plain,
        }
    }
}

/// The library's side source from `--attack-side` and whether the side split was named
/// explicitly (then `auto` does not fall back to cross-fitting: a typo is an error).
pub fn side_source(arg: SideArg, split_named: bool) -> SideSource {
    match arg {
        SideArg::Auto if split_named => SideSource::Split,
        SideArg::Auto => SideSource::Auto,
        SideArg::Audited => SideSource::Audited,
        SideArg::Split => SideSource::Split,
    }
}

/// One line saying where probes (or an attacker) were fitted.
pub fn side_line(side: &linkrisk::audit::cross_fit::SideProtocol) -> String {
    match (side.folds, &side.reason) {
        (Some(k), Some(reason)) => format!("cross-fitted in {k} patient-grouped folds ({reason})"),
        (Some(k), None) => format!("cross-fitted in {k} patient-grouped folds"),
        _ => side.source.clone(),
    }
}

/// `--uncertain` values.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum UncertainArg {
    /// Leave uncertain labels out (CheXpert U-Ignore).
    Exclude,
    /// Count them as negative (U-Zeros).
    Negative,
    /// Count them as positive (U-Ones).
    Positive,
}

/// `--blank` values.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum BlankArg {
    /// Count blank (not mentioned) as negative.
    Negative,
    /// Leave blank labels out.
    Exclude,
}

/// Arguments of `linkrisk utility`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Cohort directory (metadata.csv with finding columns + one .npy per view).
    pub dir: PathBuf,
    /// View whose embeddings are probed.
    #[arg(long, default_value = "image")]
    pub view: String,
    /// Write the JSON report here (`-` for stdout).
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Also record the report in this run directory (`RUN/run.json`, read by `linkrisk report`).
    #[arg(long, value_name = "RUN")]
    pub out: Option<PathBuf>,
    /// The model's name in the run directory (`--out`), report and gate; default: the cohort
    /// directory's name. A run directory refuses a second cohort under a recorded label.
    #[arg(long, value_name = "NAME")]
    pub label: Option<String>,
    /// Uncertain (-1) finding labels.
    #[arg(long, value_enum, default_value_t = UncertainArg::Exclude)]
    pub uncertain: UncertainArg,
    /// Blank finding labels.
    #[arg(long, value_enum, default_value_t = BlankArg::Negative)]
    pub blank: BlankArg,
    #[command(flatten)]
    pub probe: ProbeArgs,
}

/// Run the utility audit and print or write its report.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let started = std::time::Instant::now();
    let config = UtilityConfig {
        view: args.view.clone(),
        train_split: args.probe.train_split(),
        eval_split: args.probe.eval_split.clone(),
        labels: LabelPolicy {
            uncertain: match args.uncertain {
                UncertainArg::Exclude => UncertainPolicy::Exclude,
                UncertainArg::Negative => UncertainPolicy::Negative,
                UncertainArg::Positive => UncertainPolicy::Positive,
            },
            blank: match args.blank {
                BlankArg::Negative => BlankPolicy::Negative,
                BlankArg::Exclude => BlankPolicy::Exclude,
            },
        },
        probe: args.probe.probe_config(),
        interval: args.probe.interval(),
        side: args.probe.side(),
        side_folds: args.probe.side_folds,
    };
    config.validate()?;
    let model = crate::output::Model::of(&args.dir, args.label.as_deref(), args.out.as_deref())?;
    let cohort = Cohort::load(&args.dir)?;
    let report = utility(&cohort, &config)?;
    let seed = Some(args.probe.seed);
    if crate::output::record_and_write(
        args.out.as_deref(),
        args.json.as_deref(),
        &model,
        seed,
        started,
        &report,
    )? {
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "utility of view `{}`: probes trained on `{}` ({} records), evaluated on `{}` ({} records)",
        report.view, report.train_split, report.n_train_records, report.eval_split, report.n_eval_records
    );
    println!("  probes: {}", side_line(&report.side));
    for f in &report.findings {
        let r = &f.result;
        println!(
            "  {:<28} AUROC {:.4} [{:.4}, {:.4}]  eval {}+/{}-  C={:.3e}",
            f.finding, r.auroc, r.ci95[0], r.ci95[1], r.n_eval_positive, r.n_eval_negative, r.sklearn_c
        );
    }
    for s in &report.skipped {
        println!("  {:<28} skipped: {}", s.finding, s.reason);
    }
    match (report.macro_auroc, report.ci95_macro_auroc) {
        (Some(m), Some([lo, hi])) => {
            println!("macro AUROC {m:.4} [{lo:.4}, {hi:.4}] over {} findings", report.findings.len())
        }
        _ => println!("macro AUROC: none (every finding was skipped)"),
    }
    Ok(ExitCode::SUCCESS)
}
