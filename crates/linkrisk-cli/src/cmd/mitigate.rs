//! `linkrisk mitigate DIR --out RUN`: the privacy-utility frontier. Per epsilon, train
//! projection heads on the members (DP-SGD, or non-private for `inf`), audit re-linkage on
//! members, held-out and external records and utility, and compare every row with the
//! audited model (the cohort's own views on the same records); `--export-heads DIR` writes
//! each point's heads for `linkrisk apply-heads`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;
use linkrisk::audit::mitigate::{
    self, epsilon_text, parse_epsilons, summary_lines, HeadInit, MitigateConfig, MitigateEvent,
    MitigateReport, MitigateSplits,
};
use linkrisk::cohort::Cohort;

use crate::output::{self, write_json};
use crate::progress;

/// Arguments of `linkrisk mitigate`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Example:\n  linkrisk mitigate cohort/ --epsilons 0.34,1,3,8,inf --delta 6e-6 --out RUN\n\n\
     The seed is recorded: the DP guarantee assumes it is secret, so the sweep is an evaluation \
     of DP heads, not a release of them (train releasable heads with `linkrisk train-heads` \
     without --seed). Method and caveats: docs/METHODS.md, \"Mitigation and the privacy-utility frontier\"."
)]
pub struct Args {
    /// Cohort directory with `image_features` / `report_features` views, a `split` column and
    /// the 14 finding columns.
    pub dir: PathBuf,
    /// Privacy budgets, comma-separated; `inf` = non-private heads (required: the reference).
    #[arg(long, default_value = "0.34,1,3,8,inf")]
    pub epsilons: String,
    /// Delta of every private point (below 1 / number of member patients).
    #[arg(long, default_value_t = MitigateConfig::default().delta, allow_negative_numbers = true)]
    pub delta: f64,
    /// Run directory: the report is recorded in RUN/run.json.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// The model's name in the run directory (`--out`), report and gate; default: the cohort
    /// directory's name. A run directory refuses a second cohort under a recorded label.
    #[arg(long, value_name = "NAME")]
    pub label: Option<String>,
    /// Also write the JSON report here (`-` for stdout).
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Write each point's projected cohort (metadata, image.npy, report.npy, privacy.json)
    /// under RUN/heads/eps_<epsilon>/ (needs --out).
    #[arg(long, requires = "out")]
    pub write_heads: bool,
    /// Export each point's heads (heads.safetensors with the privacy ledger and feature
    /// normalisation in its metadata, and privacy.json) to DIR/eps_<epsilon>/, and the warm
    /// start's to DIR/warm_start/; apply them to any cohort with `linkrisk apply-heads`.
    #[arg(long, value_name = "DIR")]
    pub export_heads: Option<PathBuf>,
    /// Passes over the member patients (every point).
    #[arg(long, allow_negative_numbers = true)]
    pub epochs: Option<f64>,
    /// Batch size in patients for every point (default: 256 non-private; private points use
    /// --private-sample-rate of the member patients). [range: 1..=100000000]
    #[arg(long, value_parser = crate::range::count(1, 100_000_000))]
    pub batch_size: Option<usize>,
    /// Expected private batch as a fraction of member patients (ignored with --batch-size).
    #[arg(long, allow_negative_numbers = true)]
    pub private_sample_rate: Option<f64>,
    /// Learning rate of the non-private point.
    #[arg(long, allow_negative_numbers = true)]
    pub lr: Option<f64>,
    /// Learning rate of the private points.
    #[arg(long, allow_negative_numbers = true)]
    pub private_lr: Option<f64>,
    /// DP-SGD sensitivity C.
    #[arg(long, allow_negative_numbers = true)]
    pub clip: Option<f64>,
    /// Dimension of the shared output space. [range: 1..=65536]
    #[arg(long, value_parser = crate::range::count(1, 65_536))]
    pub dim: Option<usize>,
    /// Expected patients per InfoNCE group of the private points. [range: 1..=100000000]
    #[arg(long, value_parser = crate::range::count(1, 100_000_000))]
    pub group_size: Option<usize>,
    /// Optimiser of the private points.
    #[arg(long, value_enum)]
    pub private_optimizer: Option<crate::cmd::train_heads::OptimizerArg>,
    /// Momentum of `--private-optimizer sgd`.
    #[arg(long, default_value_t = 0.9, allow_negative_numbers = true)]
    pub momentum: f64,
    /// Share of the members' patients set aside as public pretraining data: non-private
    /// heads fitted on them are the start of every point, the rest are the members the DP
    /// guarantee protects. 0 = random initialisation (DP heads then learn little).
    #[arg(long, default_value_t = 0.25, allow_negative_numbers = true)]
    pub public_fraction: f64,
    /// Start every point from non-private heads fitted on this split instead (patients that
    /// are neither members nor evaluated, e.g. public data); overrides --public-fraction.
    #[arg(long)]
    pub warm_start_split: Option<String>,
    /// Passes over the public patients when fitting the warm-start heads.
    #[arg(long, allow_negative_numbers = true)]
    pub public_epochs: Option<f64>,
    /// Directions of the public input projection: the features are centred and projected
    /// onto this many principal directions of the warm-start patients before the heads
    /// (folded into the exported heads); 0 = none. [range: 0..=65536]
    #[arg(long, default_value_t = MitigateConfig::default().public_pca_rank, value_parser = crate::range::count(0, 65_536))]
    pub public_pca_rank: usize,
    /// Members split (the heads are trained on it).
    #[arg(long, default_value = "train")]
    pub members_split: String,
    /// Held-out split.
    #[arg(long, default_value = "test")]
    pub held_out_split: String,
    /// External split.
    #[arg(long, default_value = "external", conflicts_with = "no_external")]
    pub external_split: String,
    /// The cohort has no external split.
    #[arg(long)]
    pub no_external: bool,
    /// Candidate-pool sizes of the relink audits (comma-separated). [range: 2..=1000000000]
    #[arg(long, value_delimiter = ',', default_values_t = MitigateConfig::default().relink.pool_sizes, value_parser = crate::range::count(2, 1_000_000_000))]
    pub pools: Vec<usize>,
    /// Random (and pathology-matched) pools per query and size. [range: 1..=10000]
    #[arg(long, default_value_t = MitigateConfig::default().relink.trials, value_parser = crate::range::count(1, linkrisk::limits::MAX_TRIALS))]
    pub trials: usize,
    /// Patient-bootstrap replicates of the relink intervals (0 = none). [range: 0..=100000]
    #[arg(long, default_value_t = MitigateConfig::default().relink.bootstrap_replicates, value_parser = crate::range::count(0, linkrisk::limits::MAX_BOOTSTRAP))]
    pub bootstrap: usize,
    /// The audited model's views, IMAGE,REPORT: every result is set against them.
    #[arg(long, value_delimiter = ',', value_name = "IMAGE,REPORT", default_values = ["image", "report"])]
    pub audited_views: Vec<String>,
    /// Skip the audit of the audited model's views (comparisons are then against the
    /// non-private heads only).
    #[arg(long)]
    pub no_baseline: bool,
    /// Seed of training and pools (recorded: the DP points' ledgers say `"private": false`,
    /// an evaluation; `linkrisk train-heads` without --seed trains heads for release).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    #[command(flatten)]
    pub accountant: super::accountant::AccountantArgs,
    /// Accept a --delta of at least 1 / member patients (experiments only).
    #[arg(long)]
    pub allow_large_delta: bool,
}

impl Args {
    /// The library config these flags describe.
    pub fn config(&self) -> anyhow::Result<MitigateConfig> {
        let mut c = MitigateConfig {
            epsilons: parse_epsilons(&self.epsilons)?,
            delta: self.delta,
            ..MitigateConfig::default()
        };
        for t in [&mut c.non_private_training, &mut c.private_training] {
            if let Some(e) = self.epochs {
                t.epochs = e;
            }
            if let Some(b) = self.batch_size {
                t.batch_size = b;
            }
            if let Some(clip) = self.clip {
                t.clip = clip;
            }
            if let Some(d) = self.dim {
                t.dim = d;
            }
        }
        if self.batch_size.is_some() {
            c.private_sample_rate = None;
        } else if let Some(q) = self.private_sample_rate {
            c.private_sample_rate = Some(q);
        }
        if let Some(lr) = self.lr {
            c.non_private_training.lr = lr;
        }
        if let Some(lr) = self.private_lr {
            c.private_training.lr = lr;
        }
        if let Some(k) = self.group_size {
            c.private_training.group_size = k;
        }
        if let Some(o) = self.private_optimizer {
            c.private_training.optimizer = o.optimizer(self.momentum);
        }
        c.private_training.accountant = self.accountant.accountant()?;
        c.private_training.allow_large_delta = self.allow_large_delta;
        c.init = match &self.warm_start_split {
            Some(split) => HeadInit::PublicSplit { split: split.clone() },
            None if self.public_fraction == 0.0 => HeadInit::Random,
            None => HeadInit::PublicFraction { fraction: self.public_fraction },
        };
        if let Some(e) = self.public_epochs {
            c.public_training.epochs = e;
        }
        if let Some(d) = self.dim {
            c.public_training.dim = d;
        }
        c.public_pca_rank = self.public_pca_rank;
        c.splits = MitigateSplits {
            members: self.members_split.clone(),
            held_out: self.held_out_split.clone(),
            external: (!self.no_external).then(|| self.external_split.clone()),
        };
        c.relink.pool_sizes = self.pools.clone();
        c.relink.trials = self.trials;
        c.relink.bootstrap_replicates = self.bootstrap;
        c.relink.seed = self.seed;
        c.baseline_views = match (self.no_baseline, self.audited_views.as_slice()) {
            (true, _) => None,
            (false, [image, report]) => Some((image.clone(), report.clone())),
            (false, other) => {
                anyhow::bail!("--audited-views takes two view names, IMAGE,REPORT (got {})", other.join(","))
            }
        };
        c.seed = self.seed;
        Ok(c)
    }
}

/// Run the sweep, print the frontier, record it.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    let config = args.config()?;
    config.validate()?;
    let model = output::Model::of(&args.dir, args.label.as_deref(), args.out.as_deref())?;
    let cohort = Cohort::load(&args.dir)?;
    let bar = progress::bar(0, "training");
    let heads_dir = args.write_heads.then(|| args.out.as_ref().map(|o| o.join("heads"))).flatten();
    let report = mitigate::run(&cohort, &config, &mut |event| {
        match event {
            MitigateEvent::Stage { what } => {
                bar.finish_and_clear();
                eprintln!("mitigate: {what} [{:.1} s]", started.elapsed().as_secs_f64());
            }
            MitigateEvent::Training(p) => {
                bar.reset();
                bar.set_length(p.steps);
                bar.set_position(p.step);
            }
            MitigateEvent::WarmStartTrained { heads, .. } => {
                bar.finish_and_clear();
                if let Some(dir) = &args.export_heads {
                    let path = heads.export(&dir.join("warm_start"))?;
                    eprintln!("mitigate: exported {}", path.display());
                }
            }
            MitigateEvent::HeadsTrained { epsilon, heads, cohort } => {
                bar.finish_and_clear();
                let name = format!("eps_{}", epsilon_text(epsilon));
                if let Some(dir) = &heads_dir {
                    let out = dir.join(&name);
                    heads.write_cohort(cohort, &out)?;
                    eprintln!("mitigate: wrote {}", out.display());
                }
                if let Some(dir) = &args.export_heads {
                    let path = heads.export(&dir.join(&name))?;
                    eprintln!("mitigate: exported {}", path.display());
                }
            }
        }
        Ok(())
    })?;
    bar.finish_and_clear();
    print!("{}", table(&report));
    for line in summary_lines(&report) {
        println!("{line}");
    }
    if let Some(path) = &args.json {
        write_json(path, &report)?;
    }
    if let Some(path) = output::record_in_run(
        args.out.as_deref(),
        &model,
        output::argv(),
        Some(args.seed),
        started.elapsed().as_secs_f64(),
        &report,
    )
    .context("recording the sweep in the run directory")?
    {
        eprintln!("mitigate: recorded in {}", path.display());
    }
    Ok(ExitCode::SUCCESS)
}

fn pct(v: f64) -> String {
    format!("{:.2}%", 100.0 * v)
}

fn opt(v: Option<f64>, f: impl Fn(f64) -> String) -> String {
    v.map_or_else(|| "-".to_string(), f)
}

/// The frontier as text: per row (audited model, warm start, points) and subset, Recall@1
/// at the reduction pool and the full database, the change relative to the audited model,
/// and utility.
fn table(report: &MitigateReport) -> String {
    use linkrisk::audit::mitigate::SubsetRelink;
    let recall = |s: &SubsetRelink| {
        let pool = s.reduction_pool_size;
        let at_pool = pool.and_then(|n| {
            s.report
                .forward
                .pools
                .iter()
                .find(|p| p.pool_size == n && p.kind == "random")
                .map(|p| p.recall_at_1)
        });
        let matched = pool.and_then(|n| {
            s.report
                .forward
                .pools
                .iter()
                .find(|p| p.pool_size == n && p.kind == "pathology_matched")
                .map(|p| p.recall_at_1)
        });
        (pool, at_pool, matched, s.report.forward.full.recall_at_1)
    };
    let mut rows: Vec<Vec<String>> = Vec::new();
    let mut push = |name: String,
                    relink: &linkrisk::audit::mitigate::BySubset<SubsetRelink>,
                    utility: &linkrisk::audit::mitigate::PointUtility| {
        let subsets = [
            ("members", Some(&relink.members)),
            ("held_out", Some(&relink.held_out)),
            ("external", relink.external.as_ref()),
        ];
        for (subset, s) in subsets {
            let Some(s) = s else { continue };
            let (pool, r, matched, full) = recall(s);
            let (u, x) = match subset {
                "held_out" => (utility.macro_auroc, utility.cross_modal_macro_auroc),
                "external" => (utility.external_macro_auroc, utility.cross_modal_external_macro_auroc),
                _ => (None, None),
            };
            rows.push(vec![
                name.clone(),
                subset.replace('_', "-"),
                pool.map_or("full".into(), |n| n.to_string()),
                opt(r, pct),
                opt(matched, pct),
                pct(full),
                opt(s.relative_reduction_vs_audited, |v| {
                    if v >= 0.0 {
                        format!("{} lower", pct(v))
                    } else {
                        format!("{} higher", pct(-v))
                    }
                }),
                opt(u, |v| format!("{v:.4}")),
                opt(x, |v| format!("{v:.4}")),
            ]);
        }
    };
    if let Some(b) = &report.baseline {
        push("audited model".into(), &b.relink, &b.utility);
    }
    if let Some(w) = &report.warm_start {
        push("warm start".into(), &w.relink, &w.utility);
    }
    for p in &report.points {
        let name = match p.epsilon {
            Some(e) => format!("eps {e}"),
            None => "non-private".into(),
        };
        push(name, &p.relink, &p.utility);
    }
    let mut out = format!(
        "Mitigation: image->report Recall@1 and utility per privacy budget (delta {:e}; heads start from {})\n",
        report.delta,
        match &report.init {
            HeadInit::Random => "random parameters".to_string(),
            HeadInit::PublicSplit { split } => format!("a warm start on `{split}`"),
            HeadInit::PublicFraction { fraction } => {
                format!("a warm start on {:.0}% of the members' patients set aside as public", 100.0 * fraction)
            }
        }
    );
    out.push_str(&output::table(
        "  ",
        &[
            "heads",
            "cohort",
            "N",
            "R@1 (N)",
            "R@1 matched",
            "R@1 full",
            "vs audited",
            "probe AUROC",
            "x-modal AUROC",
        ],
        &rows,
    ));
    for p in &report.points {
        if let (Some(e), Some(eps)) = (p.privacy.epsilon, p.epsilon) {
            out.push_str(&format!(
                "  eps {eps}: spent {e:.4} (noise multiplier {:.3}, sample rate {:.4}, {} steps)\n",
                p.privacy.noise_multiplier, p.privacy.sample_rate, p.privacy.steps
            ));
        }
    }
    out.push_str(&format!("  {:.1} s\n", report.seconds));
    out
}
