//! `linkrisk relink DIR`: the cross-modal re-linkage audit (paper 1). Parses flags into a
//! `RelinkConfig`, runs it with a progress bar, prints a table and optionally writes JSON.
//! `--attack` adds stronger attackers and a control baseline (issue 8).
//! With `--shard I/N` it computes only the I-th slice of the queries and writes a partial
//! result for `linkrisk merge` (a Slurm job-array task; see `linkrisk slurm`).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context};
use indicatif::ProgressBar;
use linkrisk::attack::{AttackComparison, AttackConfig, AttackName};
use linkrisk::audit::relink::{DirectionReport, PoolReport};
use linkrisk::audit::relink_partial::{run_shard, ShardRun, AUDIT};
use linkrisk::audit::{relink, AttackSide, Direction, MatchLevel, RelinkConfig, RelinkReport};
use linkrisk::cohort::Cohort;
use linkrisk::engine::Progress;
use linkrisk::shard::ShardSpec;

use crate::progress::bar;

/// Arguments of `linkrisk relink`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Cohort directory (metadata.csv + one .npy per view).
    pub dir: PathBuf,
    /// View whose records are the queries.
    #[arg(long, default_value = "image")]
    pub query: String,
    /// View whose records form the gallery.
    #[arg(long, default_value = "report")]
    pub gallery: String,
    /// Split to audit; `all` uses every record.
    #[arg(long, default_value = "test")]
    pub split: String,
    /// Candidate-pool sizes, comma-separated; `full` is the whole gallery (always reported).
    #[arg(long, default_value = "10,100,1000,10000,full", value_delimiter = ',')]
    pub pools: Vec<String>,
    /// Random pools per query and pool size. [range: 1..=10000]
    #[arg(long, default_value_t = 20, value_parser = crate::range::count(1, linkrisk::limits::MAX_TRIALS))]
    pub trials: usize,
    /// Also evaluate pathology-matched pools (negatives with the true match's 14 findings).
    #[arg(long)]
    pub hard_negatives: bool,
    /// What counts as a correct link: the paired record (`study`, other records of the
    /// study excluded) or any record of the patient (`patient`).
    #[arg(long = "match", value_enum, default_value = "study")]
    pub match_level: MatchArg,
    /// Audit query -> gallery only, or both directions.
    #[arg(long, value_enum, default_value = "query-to-gallery")]
    pub direction: DirectionArg,
    /// Seed for pools and bootstrap.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Patient-bootstrap replicates for intervals (0: Wilson intervals only). [range: 0..=100000]
    #[arg(long, default_value_t = 1000, value_parser = crate::range::count(0, linkrisk::limits::MAX_BOOTSTRAP))]
    pub bootstrap: usize,
    /// Write the JSON report here (`-` for stdout, replacing the table).
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Also record the report in this run directory (`RUN/run.json`, read by `linkrisk report`).
    #[arg(long, value_name = "RUN")]
    pub out: Option<PathBuf>,
    /// The model's name in the run directory (`--out`), report and gate; default: the cohort
    /// directory's name. A run directory refuses a second cohort under a recorded label.
    #[arg(long, value_name = "NAME")]
    pub label: Option<String>,
    /// Attacks, comma-separated, each scored against a control baseline: cosine, csls,
    /// inverted_softmax, qb_norm, assignment, procrustes, ridge; `all` runs every one;
    /// `none` skips the comparison. Plain cosine is always included.
    #[arg(long, default_value = "cosine", value_delimiter = ',')]
    pub attack: Vec<String>,
    /// Where the attacker's side data comes from (inverted-softmax temperature, QB-Norm
    /// query bank, leaked pairs): `auto` (the `train` split when it exists and is not
    /// audited, else cross-fitting within the audited split), `audited` (patient-grouped
    /// cross-fitting: each fold attacked with the other folds' pairs), a split name, or
    /// `none`.
    #[arg(long, default_value = "auto")]
    pub attack_side: String,
    /// Folds of the patient-grouped cross-fitting within the audited split. [range: 2..=255]
    #[arg(long, default_value_t = linkrisk::audit::cross_fit::DEFAULT_SIDE_FOLDS, value_parser = crate::range::count(2, linkrisk::probe::folds::MAX_FOLDS))]
    pub side_folds: usize,
    /// Neighbours k of CSLS's local scaling. [range: 1..=10000]
    #[arg(long, default_value_t = 10, value_parser = crate::range::count(1, linkrisk::limits::MAX_CSLS_K))]
    pub csls_k: usize,
    /// Numbers of leaked pairs m for the alignment attacks (procrustes, ridge). [range: 1..=100000000]
    #[arg(long, default_value = "10,100,1000", value_delimiter = ',', value_parser = crate::range::count(1, 100_000_000))]
    pub leaked_pairs: Vec<usize>,
    /// Compute only shard I of N (contiguous query slices, against the whole gallery) and
    /// write a partial result, by default to RUN/shards/ (needs --out RUN or --partial).
    /// A shard whose partial already exists with the same fingerprint is skipped (resume).
    /// Merge the N partials with `linkrisk merge`. Shards rank with plain cosine only:
    /// `--attack` is not sharded (run it on one machine).
    #[arg(long, value_name = "I/N")]
    pub shard: Option<String>,
    /// With --shard: write the partial result to this file instead of RUN/shards/.
    #[arg(long, value_name = "FILE", requires = "shard")]
    pub partial: Option<PathBuf>,
}

/// Turn `--attack` and its settings into the attack configuration (`None` for `none`).
fn attack_config(args: &Args) -> anyhow::Result<Option<AttackConfig>> {
    parse_attacks(&args.attack, args.csls_k, args.leaked_pairs.clone())
}

/// `--attack` items (names, `all` or `none`) with `--csls-k` and `--leaked-pairs` as an
/// attack configuration (`None` for `none`); shared by relink and reid.
pub(crate) fn parse_attacks(
    attack: &[String],
    csls_k: usize,
    leaked_pairs: Vec<usize>,
) -> anyhow::Result<Option<AttackConfig>> {
    let items: Vec<&str> = attack.iter().map(|s| s.trim()).filter(|s| !s.is_empty()).collect();
    if items.iter().any(|s| s.eq_ignore_ascii_case("none")) {
        if items.len() > 1 {
            bail!("--attack: `none` cannot be combined with attack names");
        }
        return Ok(None);
    }
    let defaults = AttackConfig::default();
    Ok(Some(AttackConfig {
        attacks: AttackName::parse_list(&items)?,
        named: AttackName::parse_named(&items)?,
        csls_k,
        leaked_pairs: if leaked_pairs.is_empty() { defaults.leaked_pairs.clone() } else { leaked_pairs },
        ..defaults
    }))
}

/// `--match` values.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum MatchArg {
    /// The paired record.
    Study,
    /// Any record of the patient.
    Patient,
}

/// `--direction` values.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum DirectionArg {
    /// Query view -> gallery view.
    QueryToGallery,
    /// Both directions.
    Both,
}

/// Turn `--pools` items into pool sizes (`full` is implied and always reported).
fn parse_pools(items: &[String]) -> anyhow::Result<Vec<usize>> {
    let mut sizes = Vec::new();
    for item in items {
        let item = item.trim();
        if item.eq_ignore_ascii_case("full") {
            continue;
        }
        let size: usize = item.parse().with_context(|| {
            format!("--pools: `{item}` is neither a pool size nor `full` (e.g. --pools 10,100,full)")
        })?;
        if size < 2 {
            bail!("--pools: pool size {size} is too small; a pool holds the true match and at least one negative");
        }
        if !sizes.contains(&size) {
            sizes.push(size);
        }
    }
    Ok(sizes)
}

/// Where shard `shard` of `audit` writes its partial result: `--partial`, else
/// `RUN/shards/<name>` (relink and reid).
pub fn partial_path(
    partial: Option<&Path>,
    out: Option<&Path>,
    shard: ShardSpec,
    audit: &str,
) -> anyhow::Result<PathBuf> {
    match (partial, out) {
        (Some(path), _) => Ok(path.to_path_buf()),
        (None, Some(run)) => Ok(run.join(SHARDS_DIR).join(shard.file_name(audit))),
        (None, None) => bail!(
            "--shard {shard} needs somewhere to write its partial result: add --out RUN (written to RUN/{SHARDS_DIR}/) or --partial FILE"
        ),
    }
}

/// Sub-directory of a run directory that holds partial results.
pub const SHARDS_DIR: &str = "shards";

/// The audit's settings from the flags (validated).
pub fn config(args: &Args) -> anyhow::Result<RelinkConfig> {
    let config = RelinkConfig {
        query_view: args.query.clone(),
        gallery_view: args.gallery.clone(),
        split: (args.split != "all").then(|| args.split.clone()),
        pool_sizes: parse_pools(&args.pools)?,
        trials: args.trials,
        hard_negatives: args.hard_negatives,
        match_level: match args.match_level {
            MatchArg::Study => MatchLevel::Study,
            MatchArg::Patient => MatchLevel::Patient,
        },
        direction: match args.direction {
            DirectionArg::QueryToGallery => Direction::QueryToGallery,
            DirectionArg::Both => Direction::Both,
        },
        seed: args.seed,
        bootstrap_replicates: args.bootstrap,
        attack: attack_config(args)?,
        attack_side: match args.attack_side.as_str() {
            "auto" => AttackSide::Auto,
            "audited" => AttackSide::Audited,
            "none" => AttackSide::None,
            split => AttackSide::Split(split.to_string()),
        },
        side_folds: args.side_folds,
        ..RelinkConfig::default()
    };
    config.validate()?;
    Ok(config)
}

/// Run the audit.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let started = std::time::Instant::now();
    let config = config(&args)?;
    if let Some(shard) = &args.shard {
        let explicit = args.attack.iter().any(|a| !matches!(a.trim(), "cosine" | "none" | ""));
        if explicit {
            bail!(
                "--attack {} with --shard: attacks are not sharded; run the attack comparison on one machine, and shard the plain audit (default --attack cosine, or none)",
                args.attack.join(",")
            );
        }
        // A shard ranks with plain cosine; the merged report equals `relink --attack none`.
        let config = RelinkConfig { attack: None, ..config };
        return run_one_shard(&args, &config, ShardSpec::parse(shard)?);
    }
    let model = crate::output::Model::of(&args.dir, args.label.as_deref(), args.out.as_deref())?;
    let cohort = Cohort::load(&args.dir)?;
    let progress = BarProgress(bar(0, "ranking"));
    let report = relink(&cohort, &config, &progress)?;
    progress.0.finish_and_clear();
    if !crate::output::record_and_write(
        args.out.as_deref(),
        args.json.as_deref(),
        &model,
        Some(args.seed),
        started,
        &report,
    )? {
        print_report(&report);
    }
    Ok(ExitCode::SUCCESS)
}

/// `--shard I/N`: compute (or skip, when complete) one shard's partial result.
fn run_one_shard(args: &Args, config: &RelinkConfig, shard: ShardSpec) -> anyhow::Result<ExitCode> {
    if args.json.is_some() {
        bail!("--json with --shard: a shard writes a partial result; `linkrisk merge` of all shards writes the JSON report");
    }
    let path = partial_path(args.partial.as_deref(), args.out.as_deref(), shard, AUDIT)?;
    let progress = BarProgress(bar(0, "ranking"));
    let outcome = run_shard(&args.dir, config, shard, &path, &progress)?;
    progress.0.finish_and_clear();
    print_shard_run(shard, &path, outcome);
    Ok(ExitCode::SUCCESS)
}

/// Say what a shard did: skipped (resume), or which queries it wrote where (relink and reid).
pub(crate) fn print_shard_run(shard: ShardSpec, path: &Path, outcome: ShardRun) {
    match outcome {
        ShardRun::Skipped => println!(
            "shard {shard}: {} already holds this shard's complete result (same inputs and settings); skipped",
            path.display()
        ),
        ShardRun::Written { queries, n_queries, replaced } => {
            if let Some(reason) = replaced {
                println!("shard {shard}: replaced {}: {reason}", path.display());
            }
            println!(
                "shard {shard}: queries {}..{} of {n_queries} written to {}",
                queries.start,
                queries.end,
                path.display()
            );
        }
    }
}

/// The engine's progress callbacks drawn on an indicatif bar.
struct BarProgress(ProgressBar);

impl Progress for BarProgress {
    fn begin(&self, total: u64, what: &str) {
        self.0.reset();
        self.0.set_length(total);
        self.0.set_message(what.to_string());
    }

    fn advance(&self, queries: u64) {
        self.0.inc(queries);
    }
}

/// Print the report as tables (also used by `linkrisk merge`).
pub fn print_report(report: &RelinkReport) {
    let split = report.split.as_deref().unwrap_or("all records");
    let level = match report.match_level {
        MatchLevel::Study => "study-level",
        MatchLevel::Patient => "patient-level",
    };
    println!("linkrisk relink: split {split}, {level} matching, seed {}", report.seed);
    print_direction(&report.forward);
    if let Some(reverse) = &report.reverse {
        println!();
        print_direction(reverse);
    }
}

fn print_direction(d: &DirectionReport) {
    println!();
    println!(
        "{} -> {}: {} queries x {} gallery items, {} patients",
        d.query_view, d.gallery_view, d.n_queries, d.n_gallery, d.n_patients
    );
    let e = &d.exclusions;
    println!(
        "  excluded same-study items {}, extra same-patient positives {}, exact duplicate gallery vectors {}",
        e.excluded_same_study, e.extra_positives, e.gallery_exact_duplicates
    );
    println!();
    println!(
        "  {:<24} {:>9} {:>20} {:>9} {:>9} {:>9} {:>10} {:>9} {:>9}",
        "candidates", "Recall@1", "95% CI", "Recall@5", "Recall@10", "MRR", "chance@1", "lift@1", "expected"
    );
    let f = &d.full;
    println!(
        "  {:<24} {:>9.5} {:>20} {:>9.5} {:>9.5} {:>9.5} {:>10.3e} {:>9.2} {:>9}",
        "full database",
        f.recall_at_1,
        interval(f.ci95_recall_at_1),
        f.recall_at_5,
        f.recall_at_10,
        f.mrr,
        f.chance_at_1,
        f.lift_at_1,
        "-"
    );
    for p in &d.pools {
        print_pool(p);
    }
    println!();
    println!(
        "  median rank {} (mean {:.1}); queries tied with a negative {}",
        f.median_rank, f.mean_rank, f.queries_with_ties
    );
    if let Some(ci) = f.bootstrap_ci95_recall_at_1 {
        println!("  patient-bootstrap 95% CI of full-database Recall@1 {}", interval(ci));
    }
    for s in &d.skipped_pools {
        println!("  skipped: pool {} ({}): {}", s.pool_size, s.kind, s.reason);
    }
    if let Some(c) = &d.attack_comparison {
        print_attacks(c);
    }
    if !d.subgroups.is_empty() {
        println!();
        println!(
            "  {:<24} {:>8} {:>9} {:>20} {:>9}",
            "subgroup (full database)", "queries", "Recall@1", "95% CI", "lift@1"
        );
        for s in &d.subgroups {
            println!(
                "  {:<24} {:>8} {:>9.5} {:>20} {:>9.2}",
                format!("{}={}", s.attribute, s.value),
                s.n_queries,
                s.recall_at_1,
                interval(s.ci95_recall_at_1),
                s.lift_at_1
            );
        }
    }
}

fn print_pool(p: &PoolReport) {
    let label = match p.kind {
        "pathology_matched" => format!("pathology N={}", p.pool_size),
        _ => format!("random N={}", p.pool_size),
    };
    println!(
        "  {:<24} {:>9.5} {:>20} {:>9.5} {:>9.5} {:>9} {:>10.3e} {:>9.2} {:>9.5}",
        label,
        p.recall_at_1,
        interval(p.ci95_recall_at_1),
        p.recall_at_5,
        p.recall_at_10,
        "-",
        p.chance_at_1,
        p.lift_at_1,
        p.expected_recall_at_1
    );
    if let Some(exact) = p.exact_match_fraction {
        println!("  {:<24} negatives with identical findings: {:.1}%", "", 100.0 * exact);
    }
}

/// Print an attack comparison as a table (relink and reid).
pub(crate) fn print_attacks(c: &AttackComparison) {
    println!();
    let side = c.side.as_ref().map_or("none".to_string(), |s| match (s.folds, &s.reason) {
        (Some(k), Some(why)) => {
            format!("cross-fitted in {k} patient-grouped folds of the {} attacked pairs ({why})", s.n_pairs)
        }
        (Some(k), None) => {
            format!("cross-fitted in {k} patient-grouped folds of the {} attacked pairs", s.n_pairs)
        }
        _ => format!("{} ({} pairs)", s.source, s.n_pairs),
    });
    println!(
        "  attacks: {} queries x {} gallery items; side pairs: {side}",
        c.attack_queries, c.attack_gallery
    );
    println!(
        "  {:<18} {:>8} {:>7} {:>9} {:>20} {:>9} {:>10} {:>20}",
        "attack", "pool", "leaked", "Recall@1", "95% CI", "control", "norm.risk", "95% CI"
    );
    for r in &c.attacks {
        println!(
            "  {:<18} {:>8} {:>7} {:>9.5} {:>20} {:>9.5} {:>10.5} {:>20}",
            r.name,
            r.pool_size.map_or("full".to_string(), |n| n.to_string()),
            r.leaked_pairs.map_or("-".to_string(), |m| m.to_string()),
            r.recall_at_1,
            interval(r.ci95_recall_at_1),
            r.control_recall_at_1,
            r.normalized_risk,
            interval(r.ci95_normalized_risk)
        );
    }
    let at = c.strongest_attack_pool_size.map_or("the full database".to_string(), |n| format!("pool {n}"));
    let m = c.strongest_attack_leaked_pairs.map_or(String::new(), |m| format!(", {m} leaked pairs"));
    println!("  strongest attack (normalized risk at {at}): {}{m}", c.strongest_attack);
    for s in &c.skipped_attacks {
        let mut what = s.name.to_string();
        if let Some(m) = s.leaked_pairs {
            what.push_str(&format!(" m={m}"));
        }
        if let Some(n) = s.pool_size {
            what.push_str(&format!(" pool {n}"));
        }
        println!("  skipped attack {what}: {}", s.reason);
    }
}

fn interval(ci: [f64; 2]) -> String {
    format!("[{:.5}, {:.5}]", ci[0], ci[1])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pools_parse_sizes_and_full() {
        let items: Vec<String> = ["10", "100", "full", "10"].iter().map(|s| s.to_string()).collect();
        assert_eq!(parse_pools(&items).unwrap(), vec![10, 100]);
        let err = parse_pools(&["ten".to_string()]).unwrap_err().to_string();
        assert!(err.contains("--pools") && err.contains("ten"), "{err}");
        assert!(parse_pools(&["1".to_string()]).is_err());
    }
}
