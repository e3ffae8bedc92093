//! `linkrisk apply-heads HEADS COHORT --out NEW`: turn a cohort's frozen features into a new
//! cohort of head embeddings with heads exported by `mitigate --export-heads` or
//! `train-heads --export-heads`: metadata copied, `image.npy` / `report.npy` the heads'
//! outputs, the heads' privacy ledger beside them as `privacy.json`. Every audit reads it.

use std::path::PathBuf;
use std::process::ExitCode;

use linkrisk::cohort::Cohort;
use linkrisk::train::TrainedHeads;

/// Arguments of `linkrisk apply-heads`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Example:\n  linkrisk mitigate cohort/ --export-heads heads/ --out run/\n  \
     linkrisk apply-heads heads/eps_0.34 new-study/ --out new-study-dp/\n  \
     linkrisk relink new-study-dp/ --out run2/\n\n\
     The new cohort has metadata.csv (the input's metadata in linkrisk's columns), image.npy and \
     report.npy (the heads' unit-norm outputs) and privacy.json (the heads' ledger: what the DP \
     guarantee covers, and that it does not cover the new records' own features).")]
pub struct Args {
    /// Exported heads: a directory holding heads.safetensors, or the file.
    pub heads: PathBuf,
    /// Cohort directory with the frozen feature views the heads were trained on.
    pub cohort: PathBuf,
    /// Output cohort directory (created; an earlier output is replaced).
    #[arg(long)]
    pub out: PathBuf,
    /// View holding the image features (default: the view named in the heads' metadata).
    #[arg(long)]
    pub image_view: Option<String>,
    /// View holding the report features (default: the view named in the heads' metadata).
    #[arg(long)]
    pub report_view: Option<String>,
}

/// Load, apply, write, summarise.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let mut heads = TrainedHeads::load(&args.heads)?;
    let image = args.image_view.clone().unwrap_or_else(|| heads.image_view().to_string());
    let report = args.report_view.clone().unwrap_or_else(|| heads.report_view().to_string());
    heads = heads.with_views(image, report);
    let cohort = Cohort::load(&args.cohort)?;
    heads.write_cohort(&cohort, &args.out)?;
    let ledger = &heads.ledger;
    let privacy = match ledger.epsilon {
        Some(e) => format!(
            "DP heads: epsilon {e:.4} at delta {:e} for the patients of their training split",
            ledger.delta.unwrap_or(f64::NAN)
        ),
        None => "non-private heads: no privacy guarantee".to_string(),
    };
    println!(
        "applied {} to {} records of {} ({} / {} -> {} dims); wrote {} (metadata.csv, image.npy, report.npy, privacy.json)",
        args.heads.display(),
        cohort.len(),
        args.cohort.display(),
        heads.image_view(),
        heads.report_view(),
        heads.dim(),
        args.out.display()
    );
    println!("{privacy}");
    Ok(ExitCode::SUCCESS)
}
