//! `linkrisk privacy-audit DIR`: an empirical check of DP projection heads beside the
//! accountant's epsilon: membership inference (loss attack and offline LiRA with shadow
//! heads) and the one-run audit of Steinke, Nasr and Jagielski (canary patients, one
//! training run, a 95% lower bound on epsilon). `--fault no-noise` trains a deliberately
//! broken DP-SGD that keeps the claimed epsilon: the audit's positive control.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;
use linkrisk::audit::mitigate::parse_epsilons;
use linkrisk::audit::privacy_audit::{self, AuditEvent, PrivacyAuditConfig, PrivacyAuditReport};
use linkrisk::cohort::Cohort;
use linkrisk::train::Fault;

use crate::output;
use crate::progress;

/// `--fault`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum FaultArg {
    /// DP-SGD without its Gaussian noise (clipping kept).
    NoNoise,
    /// DP-SGD without clipping (noise kept, scaled as if clipped).
    NoClipping,
}

/// Arguments of `linkrisk privacy-audit`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Example:\n  linkrisk privacy-audit cohort/ --epsilons 1,8,inf --out RUN\n  \
     linkrisk privacy-audit cohort/ --epsilons 1 --fault no-noise    # the positive control\n\n\
     The heads are trained as `linkrisk mitigate` trains them (public warm start, DP-SGD on the \
     members split), with canary patients added. Method: docs/METHODS.md, \"Empirical privacy audit\".")]
pub struct Args {
    /// Cohort directory with `image_features` / `report_features` views and members /
    /// held-out splits.
    pub dir: PathBuf,
    /// Privacy budgets, comma-separated; `inf` = non-private heads.
    #[arg(long, default_value = "1,inf")]
    pub epsilons: String,
    /// Delta of every private run and of the one-run bound (below 1 / member patients).
    #[arg(long, default_value_t = PrivacyAuditConfig::default().training.delta, allow_negative_numbers = true)]
    pub delta: f64,
    /// Canary patients randomised into training (m; at least 10).
    #[arg(long, default_value_t = PrivacyAuditConfig::default().canaries)]
    pub canaries: usize,
    /// Shadow heads per budget for offline LiRA (0 = loss attack only; else 2-64).
    #[arg(long, default_value_t = PrivacyAuditConfig::default().shadows)]
    pub shadows: usize,
    /// Reports each record's own report is ranked against in the membership score.
    #[arg(long, default_value_t = PrivacyAuditConfig::default().reference_reports)]
    pub reference_reports: usize,
    /// Break DP-SGD on purpose while keeping the claimed epsilon (positive control).
    #[arg(long, value_enum)]
    pub fault: Option<FaultArg>,
    /// Passes over the member patients.
    #[arg(long, allow_negative_numbers = true)]
    pub epochs: Option<f64>,
    /// Share of the members' patients set aside as public warm-start data (0 = random heads).
    #[arg(long, default_value_t = 0.25, allow_negative_numbers = true)]
    pub public_fraction: f64,
    /// Split of the members.
    #[arg(long, default_value = "train")]
    pub members_split: String,
    /// Split of the held-out patients (the non-members).
    #[arg(long, default_value = "test")]
    pub held_out_split: String,
    #[command(flatten)]
    pub accountant: super::accountant::AccountantArgs,
    /// Accept a --delta of at least 1 / member patients (experiments only).
    #[arg(long)]
    pub allow_large_delta: bool,
    /// Seed of the coins, canaries, shadows and training (recorded: an evaluation).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Run directory: the report is recorded in RUN/run.json.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// The model's name in the run directory; default: the cohort directory's name.
    #[arg(long, value_name = "NAME")]
    pub label: Option<String>,
    /// Also write the JSON report here (`-` for stdout).
    #[arg(long)]
    pub json: Option<PathBuf>,
}

impl Args {
    /// The library config these flags describe.
    pub fn config(&self) -> anyhow::Result<PrivacyAuditConfig> {
        let mut c = PrivacyAuditConfig {
            epsilons: parse_epsilons(&self.epsilons)?,
            canaries: self.canaries,
            shadows: self.shadows,
            reference_reports: self.reference_reports,
            fault: self.fault.map(|f| match f {
                FaultArg::NoNoise => Fault::NoNoise,
                FaultArg::NoClipping => Fault::NoClipping,
            }),
            ..PrivacyAuditConfig::default()
        };
        let t = &mut c.training;
        t.delta = self.delta;
        t.seed = self.seed;
        if let Some(e) = self.epochs {
            t.private_training.epochs = e;
            t.non_private_training.epochs = e;
        }
        t.init = if self.public_fraction == 0.0 {
            linkrisk::audit::mitigate::HeadInit::Random
        } else {
            linkrisk::audit::mitigate::HeadInit::PublicFraction { fraction: self.public_fraction }
        };
        t.splits.members = self.members_split.clone();
        t.splits.held_out = self.held_out_split.clone();
        t.private_training.accountant = self.accountant.accountant()?;
        t.private_training.allow_large_delta = self.allow_large_delta;
        Ok(c)
    }
}

/// Run the audit, print it, record it.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    let config = args.config()?;
    config.validate()?;
    let model = output::Model::of(&args.dir, args.label.as_deref(), args.out.as_deref())?;
    let cohort = Cohort::load(&args.dir)?;
    let bar = progress::bar(0, "training");
    let report = privacy_audit::run(&cohort, &config, &mut |event| match event {
        AuditEvent::Stage(what) => {
            bar.finish_and_clear();
            eprintln!("privacy-audit: {what} [{:.1} s]", started.elapsed().as_secs_f64());
        }
        AuditEvent::Training(p) => {
            bar.reset();
            bar.set_length(p.steps);
            bar.set_position(p.step);
        }
    })?;
    bar.finish_and_clear();
    let json_on_stdout = output::record_and_write(
        args.out.as_deref(),
        args.json.as_deref(),
        &model,
        Some(args.seed),
        started,
        &report,
    )
    .context("recording the privacy audit")?;
    if !json_on_stdout {
        print!("{}", table(&report));
    }
    if let Some(out) = &args.out {
        eprintln!("privacy-audit: recorded in {}", out.join("run.json").display());
    }
    Ok(ExitCode::SUCCESS)
}

/// The audit as text: per budget the accountant's epsilon, the one-run lower bound and the
/// membership figures.
fn table(report: &PrivacyAuditReport) -> String {
    let mut out = format!(
        "Privacy audit: {} members vs {} held-out patients; {} canaries (one run, 95% lower bound), {} shadow heads{}\n",
        report.n_members,
        report.n_held_out,
        report.canaries,
        report.shadows,
        report.fault.map_or_else(String::new, |f| format!("; FAULT {f:?}: a deliberately broken DP-SGD (positive control)"))
    );
    out.push_str(&format!(
        "{:<8} {:>12} {:>12} {:>16} {:>16} {:>12} {:>12}\n",
        "epsilon", "accountant", "lower bound", "MI AUROC loss", "MI AUROC LiRA", "TPR@0.1%", "TPR@1%"
    ));
    for p in &report.points {
        let auroc = |name: &str| {
            p.membership.iter().find(|a| a.attack == name).map_or_else(
                || "-".into(),
                |a| format!("{:.3} [{:.3},{:.3}]", a.auroc.value, a.auroc.ci_low, a.auroc.ci_high),
            )
        };
        let best = p.membership.last();
        let tpr = |i: usize| {
            best.and_then(|a| a.tpr_at_fpr.get(i))
                .map_or_else(|| "-".into(), |t| format!("{:.2}%", 100.0 * t.tpr.value))
        };
        out.push_str(&format!(
            "{:<8} {:>12} {:>12.3} {:>16} {:>16} {:>12} {:>12}{}\n",
            p.epsilon_label,
            p.accountant_epsilon.map_or_else(|| "-".into(), |e| format!("{e:.3}")),
            p.one_run.epsilon_lower_bound,
            auroc("loss"),
            auroc("lira_offline"),
            tpr(0),
            tpr(1),
            if p.lower_bound_exceeds_claim { "  LOWER BOUND ABOVE THE ACCOUNTANT'S EPSILON" } else { "" }
        ));
    }
    out
}
