//! The `linkrisk` binary: parses arguments, calls the library, prints. Exit codes: 0 ok,
//! 1 risk over a threshold (`linkrisk gate`), 2 error (bad input, bad flag, I/O).

mod cmd;
mod output;
mod progress;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

const AFTER_HELP: &str = "\
Exit codes: 0 success, 1 risk over a threshold (linkrisk gate), 2 error (bad input or flag).

Start with `linkrisk demo`, which builds synthetic cohorts and audits them end to end.
A cohort is a directory with metadata.csv and one .npy file per view (docs/FORMATS.md).";

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
    /// Summarise a cohort directory: records, patients, views, splits, findings, demographics.
    Inspect(cmd::inspect::Args),
    /// Cross-modal re-linkage audit: can a record of one view be matched to its own record
    /// of another view (image -> report) by cosine similarity?
    Relink(cmd::relink::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(err) => {
            if is_broken_pipe(&err) {
                return ExitCode::SUCCESS;
            }
            eprintln!("linkrisk: error: {err:#}");
            ExitCode::from(2)
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Inspect(args) => cmd::inspect::run(args),
        Command::Relink(args) => cmd::relink::run(args),
    }
}

fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|e| {
        e.downcast_ref::<std::io::Error>().is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}
