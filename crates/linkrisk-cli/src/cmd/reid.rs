//! `linkrisk reid DIR`: the patient re-identification audit (paper 2). Parses flags into a
//! `ReidConfig`, runs it with a progress bar, prints the attackers side by side and
//! optionally writes the JSON report, the run-directory entries and the per-record flags.
//! With `--shard I/N` it computes only the I-th slice of the queries (the trained attacker is
//! trained in every shard, identically) and writes a partial result for `linkrisk merge`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::bail;
use linkrisk::audit::reid::{reid, write_per_record, Attackers, ReidConfig, ReidReport};
use linkrisk::audit::reid_partial::{run_shard, AUDIT};
use linkrisk::cohort::Cohort;
use linkrisk::shard::ShardSpec;

use crate::output::{table, write_json};
use crate::progress::EngineBar;

/// Arguments of `linkrisk reid`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Cohort directory (metadata.csv + one .npy per view).
    pub dir: PathBuf,
    /// View whose records are matched to each other.
    #[arg(long, default_value = "image")]
    pub view: String,
    /// Split audited: its records of patients with two or more studies are the queries,
    /// all its records the gallery.
    #[arg(long, default_value = "test")]
    pub split: String,
    /// Attackers: `linear-metric` trains a metric on `--train-split` patients (disjoint from
    /// the audited ones) and reports it beside plain nearest neighbour, the stronger being
    /// the headline; `none` runs nearest neighbour only; `auto` is `linear-metric` when the
    /// train split has patients to learn from, else `none` (the reason is in the report).
    #[arg(long, value_enum, default_value = "auto")]
    pub attacker: AttackerArg,
    /// Split the trained attacker learns from (patients also in `--split` are left out);
    /// default `train`. Named explicitly, it must serve (as with `--attack-side split`).
    #[arg(long)]
    pub train_split: Option<String>,
    /// Where the trained attacker (and `--attack`'s temperature and query bank) take their
    /// side data from: `auto` (the train split when it has patients to learn from, else
    /// patient-grouped cross-fitting within `--split`: each fold attacked by an attacker
    /// trained on the other folds' patients), `audited` (always cross-fit) or `split`
    /// (the train split only).
    #[arg(long, value_enum, default_value = "auto")]
    pub attack_side: super::utility::SideArg,
    /// Folds of the patient-grouped cross-fitting within the audited split. [range: 2..=255]
    #[arg(long, default_value_t = linkrisk::audit::cross_fit::DEFAULT_SIDE_FOLDS, value_parser = crate::range::count(2, linkrisk::probe::folds::MAX_FOLDS))]
    pub side_folds: usize,
    /// Count other records of the query's own study as positives (default: excluded, they
    /// are the same acquisition rather than a re-identification).
    #[arg(long)]
    pub include_same_study: bool,
    /// Seed for the verification negatives, the bootstrap and the attacker's model selection.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Patient-bootstrap replicates for the Rank-1 and mAP intervals (0: none). [range: 0..=100000]
    #[arg(long, default_value_t = 1000, value_parser = crate::range::count(0, linkrisk::limits::MAX_BOOTSTRAP))]
    pub bootstrap: usize,
    /// Different-patient pairs sampled per query for the verification AUROC. [range: 1..=10000]
    #[arg(long, default_value_t = 50, value_parser = crate::range::count(1, linkrisk::limits::MAX_NEGATIVES_PER_QUERY))]
    pub negatives_per_query: usize,
    /// Write the JSON report here (`-` for stdout, replacing the table).
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Also record the report in this run directory (`RUN/run.json`, read by `linkrisk
    /// report`): one entry per attacker.
    #[arg(long, value_name = "RUN")]
    pub out: Option<PathBuf>,
    /// The model's name in the run directory (`--out`), report and gate; default: the cohort
    /// directory's name. A run directory refuses a second cohort under a recorded label.
    #[arg(long, value_name = "NAME")]
    pub label: Option<String>,
    /// Write each query record's re-identified flag (CSV `id,reidentified,...`, the input of
    /// `linkrisk attributes --reidentified`). Per-record results are sensitive: only with
    /// this flag.
    #[arg(long, value_name = "OUT")]
    pub per_record: Option<PathBuf>,
    /// Also run stronger attacks on the nearest-neighbour task, each scored against a control
    /// baseline: cosine, csls, inverted_softmax, qb_norm (comma-separated) or `all`; `none`
    /// (default) runs only the attackers of `--attacker`. Paired-view attacks (assignment,
    /// procrustes, ridge) do not apply to one view and are listed as skipped.
    #[arg(long, default_value = "none", value_delimiter = ',')]
    pub attack: Vec<String>,
    /// Neighbours k of CSLS's local scaling. [range: 1..=10000]
    #[arg(long, default_value_t = 10, value_parser = crate::range::count(1, linkrisk::limits::MAX_CSLS_K))]
    pub csls_k: usize,
    /// Compute only shard I of N (contiguous query slices, against the whole split, under
    /// every attacker; the linear metric is trained identically in every shard) and write a
    /// partial result, by default to RUN/shards/ (needs --out RUN or --partial). A shard whose
    /// partial already exists with the same fingerprint is skipped (resume). Merge the N
    /// partials with `linkrisk merge`. Not with --json, --per-record or --attack.
    #[arg(long, value_name = "I/N")]
    pub shard: Option<String>,
    /// With --shard: write the partial result to this file instead of RUN/shards/.
    #[arg(long, value_name = "FILE", requires = "shard")]
    pub partial: Option<PathBuf>,
}

/// `--attacker` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum AttackerArg {
    /// Trained linear metric beside nearest neighbour when it can be trained.
    Auto,
    /// Trained linear metric beside nearest neighbour (an error when it cannot be trained).
    LinearMetric,
    /// Nearest neighbour on the view only.
    None,
}

impl AttackerArg {
    /// The library's attacker set.
    pub fn attackers(self) -> Attackers {
        match self {
            AttackerArg::Auto => Attackers::Auto,
            AttackerArg::LinearMetric => Attackers::Both,
            AttackerArg::None => Attackers::NearestNeighbour,
        }
    }
}

/// The audit's settings from the flags (validated).
pub fn config(args: &Args) -> anyhow::Result<ReidConfig> {
    let config = ReidConfig {
        view: args.view.clone(),
        split: args.split.clone(),
        train_split: args.train_split.clone().unwrap_or_else(|| "train".into()),
        attack_side: super::utility::side_source(args.attack_side, args.train_split.is_some()),
        side_folds: args.side_folds,
        attackers: args.attacker.attackers(),
        include_same_study: args.include_same_study,
        seed: args.seed,
        bootstrap_replicates: args.bootstrap,
        negatives_per_query: args.negatives_per_query,
        attack: super::relink::parse_attacks(&args.attack, args.csls_k, Vec::new())?,
        ..ReidConfig::default()
    };
    config.validate()?;
    Ok(config)
}

/// Run the audit.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let started = std::time::Instant::now();
    let config = config(&args)?;
    if let Some(shard) = &args.shard {
        return run_one_shard(&args, &config, ShardSpec::parse(shard)?);
    }
    let model = crate::output::Model::of(&args.dir, args.label.as_deref(), args.out.as_deref())?;
    let cohort = Cohort::load(&args.dir)?;
    let progress = EngineBar::new("ranking");
    let report = reid(&cohort, &config, &progress)?;
    progress.0.finish_and_clear();
    record(args.out.as_deref(), &model, args.seed, started.elapsed().as_secs_f64(), &report)?;
    let per_record = match &args.per_record {
        Some(path) => Some((path, write_per_record(&report, &cohort.metadata, path)?)),
        None => None,
    };
    let to_stdout = args.json.as_deref().is_some_and(|p| p.as_os_str() == "-");
    if !to_stdout {
        print_report(&report);
        if let Some((path, rows)) = per_record {
            println!("per-record flags of {rows} queries written to {}", path.display());
        }
    }
    if let Some(path) = &args.json {
        write_json(path, &report)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Record `report` in the run directory `out` (when given): one entry per attacker, so the
/// report shows them side by side (also used by `linkrisk merge`).
pub(crate) fn record(
    out: Option<&Path>,
    model: &crate::output::Model,
    seed: u64,
    seconds: f64,
    report: &ReidReport,
) -> anyhow::Result<()> {
    for entry in report.run_entries() {
        crate::output::record_in_run(out, model, crate::output::argv(), Some(seed), seconds, &entry)?;
    }
    Ok(())
}

/// `--shard I/N`: compute (or skip, when complete) one shard's partial result.
fn run_one_shard(args: &Args, config: &ReidConfig, shard: ShardSpec) -> anyhow::Result<ExitCode> {
    if args.json.is_some() {
        bail!("--json with --shard: a shard writes a partial result; `linkrisk merge` of all shards writes the JSON report");
    }
    if args.per_record.is_some() {
        bail!(
            "--per-record with --shard: per-record flags are written by an unsharded `linkrisk reid` only; drop --per-record from the shards"
        );
    }
    if config.attack.is_some() {
        bail!(
            "--attack {} with --shard: the attack comparison is not sharded; run it on one machine, and shard the plain audit (default --attack none)",
            args.attack.join(",")
        );
    }
    let path = super::relink::partial_path(args.partial.as_deref(), args.out.as_deref(), shard, AUDIT)?;
    let progress = EngineBar::new("ranking");
    let outcome = run_shard(&args.dir, config, shard, &path, &progress)?;
    progress.0.finish_and_clear();
    super::relink::print_shard_run(shard, &path, outcome);
    Ok(ExitCode::SUCCESS)
}

/// Print the report as tables (also used by `linkrisk merge`).
pub fn print_report(report: &ReidReport) {
    print_headline(report);
    if let Some(c) = &report.attack_comparison {
        super::relink::print_attacks(c);
    }
}

fn print_headline(report: &ReidReport) {
    let h = &report.headline;
    println!(
        "linkrisk reid: view {}, split {}, {} queries ({} patients) x {} gallery records, seed {}",
        report.view, report.split, h.n_queries, h.n_query_patients, h.n_gallery, report.seed
    );
    let x = &report.exclusions;
    println!(
        "  not queried {} records ({} patients with a single study); same-study records {} {}; exact duplicate vectors {}",
        x.records_not_queried,
        x.patients_with_one_study,
        if report.same_study == "positive" { x.same_study_positives } else { x.excluded_same_study },
        if report.same_study == "positive" { "counted as positives" } else { "excluded" },
        x.gallery_exact_duplicates
    );
    println!();
    let mut header = vec!["measure"];
    header.extend(report.attackers.iter().map(|a| a.attacker));
    let pct = |v: f64| format!("{:.2}%", 100.0 * v);
    let ci = |c: [f64; 2]| format!("[{:.2}, {:.2}]%", 100.0 * c[0], 100.0 * c[1]);
    let mut rows: Vec<Vec<String>> = Vec::new();
    let mut row = |label: &str, cell: &dyn Fn(&linkrisk::audit::reid::ReidFigures) -> String| {
        let mut cells = vec![label.to_string()];
        cells.extend(report.attackers.iter().map(|a| cell(&a.figures)));
        rows.push(cells);
    };
    row("Rank-1", &|f| pct(f.rank_1));
    row("Rank-1 95% CI (Wilson)", &|f| ci(f.ci95_rank_1));
    row("Rank-1 95% CI (bootstrap)", &|f| f.bootstrap_ci95_rank_1.map_or("-".into(), ci));
    for (k, _) in &h.cmc.0 {
        row(&format!("CMC@{k}"), &|f| {
            f.cmc.0.iter().find(|(j, _)| j == k).map_or("-".into(), |(_, v)| pct(*v))
        });
    }
    row("mAP", &|f| format!("{:.4}", f.map));
    row("mAP 95% CI (bootstrap)", &|f| {
        f.ci95_map.map_or("-".into(), |c| format!("[{:.4}, {:.4}]", c[0], c[1]))
    });
    row("verification AUROC", &|f| f.verification_auroc.map_or("-".into(), |v| format!("{v:.4}")));
    row("AUROC 95% CI", &|f| {
        f.ci95_verification_auroc.map_or("-".into(), |c| format!("[{:.4}, {:.4}]", c[0], c[1]))
    });
    row("chance Rank-1", &|f| pct(f.chance_rank_1));
    row("lift (Rank-1 / chance)", &|f| format!("{:.1}", f.lift_rank_1));
    row("re-identified queries", &|f| f.n_reidentified.to_string());
    print!("{}", table("  ", &header, &rows));
    println!();
    println!("  headline (strongest): {}, Rank-1 {}", report.attacker, pct(h.rank_1));
    if let Some(t) = report.linear_metric.as_ref().filter(|t| t.side.is_cross_fit()) {
        println!(
            "  linear-metric: {} of `{}` ({} records of {} patients with two or more studies); each fold's attacker trained on the other folds' patients",
            super::utility::side_line(&t.side),
            t.train_split,
            t.n_train_records,
            t.n_train_patients
        );
        for f in &t.folds {
            println!(
                "    fold {}: {} records attacked, trained on {} patients; {} of {} directions, shrinkage {} ({})",
                f.fold + 1,
                f.n_attacked_records,
                f.n_train_patients,
                f.rank,
                t.input_dim,
                f.shrinkage,
                f.selection
            );
        }
    } else if let Some(t) = &report.linear_metric {
        println!(
            "  linear-metric: trained on {} records of {} `{}` patients ({} overlapping, {} single-study records left out); {} of {} directions, shrinkage {} ({})",
            t.n_train_records,
            t.n_train_patients,
            t.train_split,
            t.train_records_overlapping_patients,
            t.train_records_single_study,
            t.rank,
            t.input_dim,
            t.shrinkage,
            t.selection
        );
    }
    if let Some(reason) = &report.linear_metric_skipped {
        println!("  linear-metric not run: {reason}");
    }
}
