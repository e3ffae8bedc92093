//! `linkrisk merge PARTIAL...`: combine the partial results of a sharded audit (`--shard
//! I/N`: relink, reid) into the report one unsharded run writes, number for number. Refuses partials of
//! different inputs or settings, missing shards and shards given twice (exit 2).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context};
use linkrisk::audit::{reid_partial, relink_partial};
use linkrisk::shard::{fingerprint_of_inputs, read_partial, Partial, PARTIAL_EXTENSION};

use crate::output::Model;

/// Arguments of `linkrisk merge`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Partial results (`.lrp` files written by `--shard I/N`), one per shard, any order; a
    /// directory stands for every `.lrp` file in it.
    #[arg(required = true, value_name = "PARTIAL")]
    pub partials: Vec<PathBuf>,
    /// Write the JSON report here (`-` for stdout, replacing the table).
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Also record the report in this run directory (`RUN/run.json`, read by `linkrisk report`).
    #[arg(long, value_name = "RUN")]
    pub out: Option<PathBuf>,
    /// The model's name in the run directory; default: the name of the cohort directory the
    /// shards read (recorded in each partial).
    #[arg(long, value_name = "NAME")]
    pub label: Option<String>,
}

/// The partial files named by the arguments: files as given, directories expanded to their
/// `.lrp` files (sorted).
fn expand(paths: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for path in paths {
        if path.is_dir() {
            let mut found: Vec<PathBuf> = std::fs::read_dir(path)
                .with_context(|| format!("reading directory {}", path.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.is_file() && p.extension().is_some_and(|e| e == PARTIAL_EXTENSION))
                .filter(|p| p.file_name().and_then(|n| n.to_str()).is_some_and(|n| !n.starts_with('.')))
                .collect();
            if found.is_empty() {
                bail!("{}: no .{PARTIAL_EXTENSION} partial results in this directory", path.display());
            }
            found.sort();
            out.extend(found);
        } else {
            out.push(path.clone());
        }
    }
    Ok(out)
}

/// Read and verify every partial (each error names its file).
fn read_all(paths: &[PathBuf]) -> anyhow::Result<Vec<Partial>> {
    Ok(paths.iter().map(|p| read_partial(p)).collect::<linkrisk::Result<Vec<_>>>()?)
}

/// Run the merge.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let started = std::time::Instant::now();
    let partials = read_all(&expand(&args.partials)?)?;
    let audit = partials[0].header.fingerprint.audit.clone();
    if let Some(other) = partials.iter().find(|p| p.header.fingerprint.audit != audit) {
        bail!(
            "{} holds a `{}` audit but {} holds a `{audit}` audit; merge the partials of one audit at a time",
            other.path.display(),
            other.header.fingerprint.audit,
            partials[0].path.display()
        );
    }
    let model = model(&args, &partials[0])?;
    match audit.as_str() {
        relink_partial::AUDIT => {
            let report = relink_partial::merge(&partials)?;
            let seed = report.seed;
            finish(&args, &model, seed, started, &report, super::relink::print_report)
        }
        reid_partial::AUDIT => {
            let report = reid_partial::merge(&partials)?;
            // As `linkrisk reid` does: one run-directory entry per attacker.
            let seconds = started.elapsed().as_secs_f64();
            super::reid::record(args.out.as_deref(), &model, report.seed, seconds, &report)?;
            if !crate::output::record_and_write(None, args.json.as_deref(), &model, None, started, &report)? {
                super::reid::print_report(&report);
            }
            Ok(ExitCode::SUCCESS)
        }
        other => bail!(
            "{}: `{other}` partial results cannot be merged by this linkrisk ({}); merge them with the version that wrote them",
            partials[0].path.display(),
            linkrisk::VERSION
        ),
    }
}

/// The model the merged report is recorded as: `--label`, else the cohort directory's name
/// the shards recorded, with the fingerprint of the cohort files the shards hashed (the same
/// as an unsharded audit of that cohort records).
fn model(args: &Args, first: &Partial) -> anyhow::Result<Model> {
    let label = match (&args.label, &first.header.cohort_name) {
        (Some(l), _) => {
            linkrisk::runner::check_label(l).context("--label")?;
            l.clone()
        }
        (None, Some(name)) => name.clone(),
        (None, None) => bail!(
            "{}: this partial does not name its cohort (written by an older linkrisk); pass --label NAME",
            first.path.display()
        ),
    };
    let fingerprint = fingerprint_of_inputs(&first.header.fingerprint.inputs);
    match &args.out {
        Some(out) => Model::checked(label, fingerprint, out),
        None => Ok(Model { label, fingerprint: Some(fingerprint) }),
    }
}

/// Print, write and record a merged report like the unsharded command does.
fn finish<T: serde::Serialize>(
    args: &Args,
    model: &Model,
    seed: u64,
    started: std::time::Instant,
    report: &T,
    print: impl FnOnce(&T),
) -> anyhow::Result<ExitCode> {
    if !crate::output::record_and_write(
        args.out.as_deref(),
        args.json.as_deref(),
        model,
        Some(seed),
        started,
        report,
    )? {
        print(report);
    }
    Ok(ExitCode::SUCCESS)
}
