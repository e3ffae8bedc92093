//! `linkrisk attributes DIR`: how well linear probes infer sex, age group and race from an
//! embedding, optionally stratified by re-identified vs not re-identified records.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use linkrisk::audit::attributes::{
    attributes, attributes_by_reid, AgeThreshold, Attribute, AttributesConfig,
};
use linkrisk::audit::reid::{FlagSource, ReidConfig};
use linkrisk::cohort::flags::read_flags;
use linkrisk::cohort::Cohort;

use super::utility::ProbeArgs;
use crate::progress::EngineBar;

/// Arguments of `linkrisk attributes`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Cohort directory (metadata.csv with sex/age/race columns + one .npy per view).
    pub dir: PathBuf,
    /// View whose embeddings are probed.
    #[arg(long, default_value = "image")]
    pub view: String,
    /// Attributes to probe, comma-separated.
    #[arg(long, default_value = "sex,age,race", value_delimiter = ',')]
    pub targets: Vec<String>,
    /// Age threshold in years (positive = age >= threshold), or `median` (train median).
    #[arg(long, default_value = "65")]
    pub age_threshold: String,
    /// Smallest number of records a sex/race group needs in each split to be probed. [range: 1..=1000000000]
    #[arg(long, default_value_t = 20, value_parser = crate::range::count(1, 1_000_000_000))]
    pub min_group: usize,
    /// Per-record re-identification flags (CSV `id,reidentified`, as written by
    /// `linkrisk reid --per-record`): report AUROCs on re-identified vs not re-identified
    /// eval records and test the difference.
    #[arg(long, conflicts_with = "stratify_by_reid")]
    pub reidentified: Option<PathBuf>,
    /// Compute the re-identification flags here: run the re-ID audit on the eval split
    /// (as `linkrisk reid --split EVAL_SPLIT`) and stratify by its flags (paper 2's analysis
    /// in one command).
    #[arg(long)]
    pub stratify_by_reid: bool,
    /// Attacker whose flags `--stratify-by-reid` uses (`none`: nearest neighbour on the
    /// view, as paper 2; `linear-metric`/`auto`: the stronger of it and the trained metric).
    #[arg(long, value_enum, default_value = "none", requires = "stratify_by_reid")]
    pub reid_attacker: super::reid::AttackerArg,
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
    #[command(flatten)]
    pub probe: ProbeArgs,
}

/// Run the attribute audit and print or write its report.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let started = std::time::Instant::now();
    let targets = args.targets.iter().map(|t| t.parse::<Attribute>()).collect::<Result<Vec<_>, _>>()?;
    let config = AttributesConfig {
        view: args.view.clone(),
        train_split: args.probe.train_split(),
        eval_split: args.probe.eval_split.clone(),
        targets,
        age_threshold: args.age_threshold.parse::<AgeThreshold>()?,
        min_group_records: args.min_group,
        probe: args.probe.probe_config(),
        interval: args.probe.interval(),
        side: args.probe.side(),
        side_folds: args.probe.side_folds,
    };
    config.validate()?;
    let model = crate::output::Model::of(&args.dir, args.label.as_deref(), args.out.as_deref())?;
    let cohort = Cohort::load(&args.dir)?;
    let report = if args.stratify_by_reid {
        let reid = ReidConfig {
            view: config.view.clone(),
            split: config.eval_split.clone(),
            train_split: config.train_split.clone(),
            attack_side: config.side.clone(),
            side_folds: config.side_folds,
            attackers: args.reid_attacker.attackers(),
            seed: args.probe.seed,
            bootstrap_replicates: 0,
            ..ReidConfig::default()
        };
        let progress = EngineBar::new("re-identifying");
        let report = attributes_by_reid(&cohort, &config, &reid, &progress)?;
        progress.0.finish_and_clear();
        report
    } else {
        let flags = match &args.reidentified {
            Some(path) => Some(
                read_flags(path, "reidentified", &cohort.metadata)
                    .with_context(|| format!("reading --reidentified {}", path.display()))?,
            ),
            None => None,
        };
        let mut report = attributes(&cohort, &config, flags.as_deref())?;
        if let Some(path) = &args.reidentified {
            report.reidentification_source = Some(FlagSource::File { path: path.display().to_string() });
        }
        report
    };
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
        "attributes from view `{}`: probes trained on `{}` ({} records), evaluated on `{}` ({} records)",
        report.view, report.train_split, report.n_train_records, report.eval_split, report.n_eval_records
    );
    println!("  probes: {}", super::utility::side_line(&report.side));
    for (name, r) in &report.attributes.0 {
        println!(
            "  {name:<5} AUROC {:.4} [{:.4}, {:.4}]  {}  (missing: {} train, {} eval)",
            r.auroc, r.ci95[0], r.ci95[1], r.definition, r.n_train_missing, r.n_eval_missing
        );
        for g in &r.excluded_groups {
            println!(
                "        excluded group {} ({} train / {} eval records, below --min-group)",
                g.group, g.n_train, g.n_eval
            );
        }
        if let Some(s) = &r.stratified {
            let show = |x: &Option<linkrisk::audit::attributes::StratumResult>| match x {
                Some(x) => format!("{:.4} [{:.4}, {:.4}] n={}", x.auroc, x.ci95[0], x.ci95[1], x.n_records),
                None => "n/a".to_string(),
            };
            println!("        re-identified     {}", show(&s.reidentified));
            println!("        not re-identified {}", show(&s.not_reidentified));
            if let Some(d) = &s.difference {
                println!("        difference {:+.4} (p = {:.3e})", d.difference, d.p_value);
            }
            if let Some(note) = &s.note {
                println!("        {note}");
            }
        }
    }
    if let (Some(counts), Some(source)) = (&report.reidentification, &report.reidentification_source) {
        let from = match source {
            FlagSource::File { path } => format!("from {path}"),
            FlagSource::ReidAudit { attacker, split, rank_1, .. } => {
                format!("from the re-ID audit ({attacker} on `{split}`, Rank-1 {:.2}%)", 100.0 * rank_1)
            }
        };
        println!(
            "  re-identification flags {from}: {} re-identified, {} not, {} without a flag",
            counts.n_reidentified, counts.n_not_reidentified, counts.n_without_flag
        );
    }
    for s in &report.skipped {
        println!("  {:<5} skipped: {}", s.attribute, s.reason);
    }
    Ok(ExitCode::SUCCESS)
}
