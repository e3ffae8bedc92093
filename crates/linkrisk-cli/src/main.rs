//! The `linkrisk` binary: parses arguments, calls the library, prints. Exit codes: 0 ok,
//! 1 risk over a threshold (`linkrisk gate`), 2 error (bad input, bad flag, I/O).

// `print!` and `println!` of every module below write through `stdout::write`, which never
// panics on a closed pipe or a full device (see stdout.rs). Defined before the modules, so
// they shadow std's macros there.
macro_rules! println {
    () => {
        $crate::stdout::write(format_args!("\n"))
    };
    ($($arg:tt)*) => {
        $crate::stdout::write(format_args!("{}\n", format_args!($($arg)*)))
    };
}
macro_rules! print {
    ($($arg:tt)*) => {
        $crate::stdout::write(format_args!($($arg)*))
    };
}

mod cmd;
mod output;
mod progress;
mod range;
mod stdout;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

const AFTER_HELP: &str = "\
Exit codes: 0 success, 1 risk over a threshold (linkrisk gate), 2 error (bad input or flag).

Start with `linkrisk demo`, which builds synthetic cohorts and audits them end to end; audit your
own models with `linkrisk audit COHORT... --out RUN` and gate them with `linkrisk gate RUN`.
A cohort is a directory with metadata.csv (or metadata.parquet) and one file per view:
.npy, .npz, .safetensors or Parquet list columns, optionally cohort.toml (docs/FORMATS.md).";

/// Measure and mitigate how far medical embedding models let de-identified data be linked
/// back to patients.
#[derive(Debug, Parser)]
#[command(name = "linkrisk", version, about, long_about = None, after_help = AFTER_HELP)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Synthesize a demo population as four embedding models of increasing clinical
    /// specialization see it, audit each (as `linkrisk audit`), mitigate, and report.
    Demo(cmd::demo::Args),
    /// Every audit of one or more models (one cohort directory each) in one run directory,
    /// then the report: re-linkage both ways with every attack, re-identification,
    /// attributes, utility.
    Audit(cmd::audit::Args),
    /// Summarise a cohort directory: records, patients, views, splits, findings, demographics.
    Inspect(cmd::inspect::Args),
    /// Write a synthetic cohort with known ground truth (patients, studies, findings,
    /// demographics, a model-specialization knob).
    Synth(cmd::synth::Args),
    /// Cross-modal re-linkage audit: can a record of one view be matched to its own record
    /// of another view (image -> report) by cosine similarity?
    Relink(cmd::relink::Args),
    /// Patient re-identification audit: is the nearest other image of a query image one of
    /// the same patient? Plain nearest neighbour and a trained linear-metric attacker.
    Reid(cmd::reid::Args),
    /// Infer sex, age group and race with linear probes; stratify by re-identification.
    Attributes(cmd::attributes::Args),
    /// Linear-probe macro AUROC over the 14 CheXpert findings (utility of the embedding).
    Utility(cmd::utility::Args),
    /// Privacy-utility frontier: train DP projection heads at several epsilons and audit
    /// re-linkage (members, held-out, external) and utility against non-private heads.
    Mitigate(cmd::mitigate::Args),
    /// Empirical privacy audit of DP heads: membership inference (loss, offline LiRA) and the
    /// one-run canary audit's lower bound on epsilon, beside the accountant's.
    PrivacyAudit(cmd::privacy_audit::Args),
    /// Train image/report projection heads on frozen features (DP-SGD or not) and write the
    /// projected cohort with its privacy ledger.
    TrainHeads(cmd::train_heads::Args),
    /// Apply exported heads to a cohort's frozen features: a new cohort every audit reads.
    ApplyHeads(cmd::apply_heads::Args),
    /// Epsilon of a DP-SGD run (PLD or RDP accountant), or the noise multiplier for a target epsilon.
    Accountant(cmd::accountant::Args),
    /// Render a run directory as report.html (self-contained) and report.md with SVG charts.
    Report(cmd::report::Args),
    /// Exit 1 when a run's risk exceeds a threshold (for CI pipelines); 0 when all hold.
    Gate(cmd::gate::Args),
    /// Run a full-rank audit as a Slurm job array (one shard per task) plus a merge job.
    Slurm(cmd::slurm::Args),
    /// Combine the partial results of a sharded audit (`--shard I/N`) into the single-run report.
    Merge(cmd::merge::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // SIGTERM and SIGINT: remove the temporary files and run-directory locks in flight
    // (linkrisk::cleanup), then exit 130; what was already renamed into place stays.
    let _ = ctrlc::set_handler(|| {
        linkrisk::cleanup::remove_all();
        eprintln!("linkrisk: stopped by a signal; temporary files removed");
        std::process::exit(130);
    });
    let result = run(cli);
    if let Some(err) = stdout::take_error() {
        eprintln!("linkrisk: error: cannot write to standard output: {err}{}", hint(&err));
        return ExitCode::from(2);
    }
    match result {
        Ok(code) => code,
        Err(err) => {
            if is_broken_pipe(&err) {
                return ExitCode::SUCCESS;
            }
            eprintln!("linkrisk: error: {}", render_error(&err));
            ExitCode::from(2)
        }
    }
}

/// The error chain on one line, each cause once: the library's errors already include
/// their source (`path: No such file or directory`), so a cause whose text is already in
/// the message is not repeated. An OS error ends with what to do about it.
fn render_error(err: &anyhow::Error) -> String {
    let mut message = String::new();
    let mut os_error = None;
    for cause in err.chain() {
        let text = cause.to_string();
        if !message.contains(&text) {
            if !message.is_empty() {
                message.push_str(": ");
            }
            message.push_str(&text);
        }
        if let Some(io) = cause.downcast_ref::<std::io::Error>() {
            os_error = Some(io.kind());
        } else if let Some(linkrisk::Error::Io { source, .. } | linkrisk::Error::Write { source, .. }) =
            cause.downcast_ref::<linkrisk::Error>()
        {
            os_error = Some(source.kind());
        }
    }
    if let Some(kind) = os_error {
        message.push_str(hint_for(kind));
    }
    message
}

fn hint(err: &std::io::Error) -> &'static str {
    hint_for(err.kind())
}

/// What to do about an OS error of this kind ("" when there is nothing general to say).
fn hint_for(kind: std::io::ErrorKind) -> &'static str {
    use std::io::ErrorKind as K;
    match kind {
        K::NotFound => " (check the path)",
        K::PermissionDenied => " (check the permissions of the file and its directory)",
        K::StorageFull => " (free space on that device or write elsewhere)",
        K::ReadOnlyFilesystem => " (the file system is read-only: write elsewhere)",
        K::IsADirectory => " (a directory is named where a file is expected)",
        K::NotADirectory => " (a file is named where a directory is expected)",
        _ => "",
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Demo(args) => cmd::demo::run(args),
        Command::Audit(args) => cmd::audit::run(args),
        Command::Inspect(args) => cmd::inspect::run(args),
        Command::Report(args) => cmd::report::run(args),
        Command::Gate(args) => cmd::gate::run(args),
        Command::Synth(args) => cmd::synth::run(args),
        Command::Accountant(args) => cmd::accountant::run(args),
        Command::TrainHeads(args) => cmd::train_heads::run(args),
        Command::ApplyHeads(args) => cmd::apply_heads::run(args),
        Command::Utility(args) => cmd::utility::run(args),
        Command::Attributes(args) => cmd::attributes::run(args),
        Command::Relink(args) => cmd::relink::run(args),
        Command::Merge(args) => cmd::merge::run(args),
        Command::Slurm(args) => cmd::slurm::run(args),
        Command::Reid(args) => cmd::reid::run(args),
        Command::Mitigate(args) => cmd::mitigate::run(args),
        Command::PrivacyAudit(args) => cmd::privacy_audit::run(args),
    }
}

fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|e| {
        e.downcast_ref::<std::io::Error>().is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}
