//! `linkrisk slurm <audit> DIR --shards N --out RUN`: run a full-rank audit as a Slurm job
//! array. Writes an sbatch script whose task i runs the audit with `--shard i/N` (partials
//! under RUN/shards/) and a merge job that runs `linkrisk merge` once every task succeeded
//! (`--dependency=afterok`); logs go under RUN/logs/. With `--submit` both are submitted
//! with `sbatch` and the job ids printed. Resubmitting the same script after a failure
//! reruns only the shards without a complete partial (resume). Clusters schedule; linkrisk
//! only writes the job scripts.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context};
use clap::Parser;
use linkrisk::shard::ShardSpec;

/// Arguments of `linkrisk slurm`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The audit to shard.
    #[arg(value_enum)]
    pub audit: AuditArg,
    /// Cohort directory (must be readable from the compute nodes at this path).
    pub dir: PathBuf,
    /// Number of shards (job-array tasks). [range: 1..=100000]
    #[arg(long, value_parser = crate::range::count(1, 100_000))]
    pub shards: usize,
    /// Run directory for partials (RUN/shards/), logs (RUN/logs/), job scripts (RUN/slurm/),
    /// the merged JSON (RUN/<audit>.json) and RUN/run.json. Must be on a shared filesystem.
    #[arg(long, value_name = "RUN")]
    pub out: PathBuf,
    /// Slurm partition (`#SBATCH --partition`); default: the cluster's default partition.
    #[arg(long)]
    pub partition: Option<String>,
    /// Time limit per task (`#SBATCH --time`, e.g. 2:00:00).
    #[arg(long)]
    pub time: Option<String>,
    /// CPUs per task (`#SBATCH --cpus-per-task`; the audit uses that many threads). [range: 1..=4096]
    #[arg(long, value_parser = crate::range::count(1, 4096))]
    pub cpus_per_task: Option<usize>,
    /// Memory per task (`#SBATCH --mem`, e.g. 8G).
    #[arg(long)]
    pub mem: Option<String>,
    /// Submit both jobs with sbatch and print their ids (otherwise only write the scripts).
    #[arg(long)]
    pub submit: bool,
    /// The linkrisk binary the jobs run (default: this one); must exist on the compute nodes.
    #[arg(long, value_name = "PATH")]
    pub linkrisk: Option<PathBuf>,
    /// The audit's own flags, after `--` (e.g. `-- --pools 10,100,full --seed 3`).
    #[arg(last = true, value_name = "AUDIT FLAGS")]
    pub audit_args: Vec<String>,
}

/// Audits that can run sharded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum AuditArg {
    /// `linkrisk relink`.
    Relink,
    /// `linkrisk reid`.
    Reid,
}

impl AuditArg {
    fn name(self) -> &'static str {
        match self {
            AuditArg::Relink => "relink",
            AuditArg::Reid => "reid",
        }
    }
}

/// `linkrisk relink` arguments, to check the audit flags before anything is submitted.
#[derive(Debug, Parser)]
#[command(name = "linkrisk relink")]
struct RelinkLine {
    #[command(flatten)]
    args: super::relink::Args,
}

/// `linkrisk reid` arguments, to check the audit flags before anything is submitted.
#[derive(Debug, Parser)]
#[command(name = "linkrisk reid")]
struct ReidLine {
    #[command(flatten)]
    args: super::reid::Args,
}

/// The job scripts of one sharded audit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scripts {
    /// The job-array script (task i computes shard i/N).
    pub array: PathBuf,
    /// The merge job's script.
    pub merge: PathBuf,
    /// Where the merged JSON report goes.
    pub json: PathBuf,
}

/// Quote `text` for a POSIX shell (single quotes; embedded quotes escaped).
fn quote(text: &str) -> String {
    let plain =
        !text.is_empty() && text.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_./,=:%+@".contains(&b));
    if plain {
        text.to_string()
    } else {
        format!("'{}'", text.replace('\'', r"'\''"))
    }
}

fn quote_path(path: &Path) -> anyhow::Result<String> {
    match path.to_str() {
        Some(s) if !s.contains('\n') => Ok(quote(s)),
        _ => bail!("{}: a path in a job script must be valid UTF-8 without newlines", path.display()),
    }
}

/// Check the audit flags by parsing them as the audit would, and reject the flags this
/// command sets itself and those a shard refuses.
fn check_audit_args(args: &Args, dir: &Path) -> anyhow::Result<()> {
    let audit = args.audit.name();
    let line = [format!("linkrisk {audit}").into(), dir.as_os_str().to_os_string()]
        .into_iter()
        .chain(args.audit_args.iter().map(Into::into));
    let invalid = |e: clap::Error| {
        anyhow::anyhow!("the audit flags after `--` are not valid `linkrisk {audit}` flags:\n{e}")
    };
    match args.audit {
        AuditArg::Relink => {
            let a = RelinkLine::try_parse_from(line).map_err(invalid)?.args;
            refuse_set_here(
                audit,
                a.shard.is_some(),
                a.partial.is_some(),
                a.out.is_some(),
                a.json.is_some(),
            )?;
            super::relink::config(&a)?;
        }
        AuditArg::Reid => {
            let a = ReidLine::try_parse_from(line).map_err(invalid)?.args;
            refuse_set_here(
                audit,
                a.shard.is_some(),
                a.partial.is_some(),
                a.out.is_some(),
                a.json.is_some(),
            )?;
            if a.per_record.is_some() {
                bail!("--per-record after `--`: shards do not write per-record flags; run `linkrisk reid --per-record` on one machine");
            }
            if super::reid::config(&a)?.attack.is_some() {
                bail!("--attack after `--`: the attack comparison is not sharded; run it on one machine (`linkrisk reid --attack ...`)");
            }
        }
    }
    Ok(())
}

/// Refuse the flags this command sets for each job (given after `--`).
fn refuse_set_here(audit: &str, shard: bool, partial: bool, out: bool, json: bool) -> anyhow::Result<()> {
    let set = [("--shard", shard), ("--partial", partial), ("--out", out), ("--json", json)];
    if let Some((flag, _)) = set.iter().find(|(_, set)| *set) {
        bail!(
            "{flag} after `--`: linkrisk slurm sets it for each job (shards go to RUN/shards/, the merged report to RUN/{audit}.json)"
        );
    }
    Ok(())
}

/// `#SBATCH` lines for the resource flags.
fn resource_lines(args: &Args) -> anyhow::Result<String> {
    let mut out = String::new();
    let mut line = |flag: &str, value: &str| -> anyhow::Result<()> {
        if value.is_empty() || value.contains(char::is_whitespace) {
            bail!("--{flag} `{value}`: expected one word (e.g. --time 2:00:00, --mem 8G)");
        }
        out.push_str(&format!("#SBATCH --{flag}={value}\n"));
        Ok(())
    };
    if let Some(p) = &args.partition {
        line("partition", p)?;
    }
    if let Some(t) = &args.time {
        line("time", t)?;
    }
    if let Some(c) = args.cpus_per_task {
        if c == 0 {
            bail!("--cpus-per-task must be at least 1");
        }
        line("cpus-per-task", &c.to_string())?;
    }
    if let Some(m) = &args.mem {
        line("mem", m)?;
    }
    Ok(out)
}

/// Write the two job scripts under `RUN/slurm/` (creating RUN/logs/ and RUN/shards/).
pub fn write_scripts(args: &Args) -> anyhow::Result<Scripts> {
    if args.shards == 0 {
        bail!("--shards must be at least 1");
    }
    ShardSpec::new(args.shards, args.shards)?;
    let dir = args.dir.canonicalize().with_context(|| {
        format!("cohort directory {}: not found; pass an existing cohort directory", args.dir.display())
    })?;
    check_audit_args(args, &dir)?;
    let resources = resource_lines(args)?;
    let audit = args.audit.name();
    for sub in ["slurm", "logs", super::relink::SHARDS_DIR] {
        let path = args.out.join(sub);
        std::fs::create_dir_all(&path).with_context(|| format!("creating {}", path.display()))?;
    }
    let run = args.out.canonicalize().with_context(|| format!("--out {}", args.out.display()))?;
    let bin = match &args.linkrisk {
        Some(path) => {
            path.canonicalize().with_context(|| format!("--linkrisk {}: not found", path.display()))?
        }
        None => std::env::current_exe().context("locating the linkrisk binary (pass --linkrisk PATH)")?,
    };
    let n = args.shards;
    let flags: String = args.audit_args.iter().map(|a| format!(" {}", quote(a))).collect();
    let (q_bin, q_dir, q_run) = (quote_path(&bin)?, quote_path(&dir)?, quote_path(&run)?);
    let q_logs = quote_path(&run.join("logs"))?;
    let threads = "if [ -n \"${SLURM_CPUS_PER_TASK:-}\" ]; then export RAYON_NUM_THREADS=\"$SLURM_CPUS_PER_TASK\"; fi\n";
    let header =
        format!("#!/bin/bash\n# Written by `linkrisk slurm {audit}` (linkrisk {}).\n", linkrisk::VERSION);
    let array_script = format!(
        "{header}# Task i computes shard i/{n} of the audit into {run}/shards/; resubmitting this script\n\
         # skips every shard whose partial result is already complete (same inputs and settings).\n\
         #SBATCH --job-name=linkrisk-{audit}\n\
         #SBATCH --array=1-{n}\n\
         #SBATCH --output={logs}/{audit}-shard-%a-of-{n}.job-%A.out\n\
         {resources}\
         set -euo pipefail\n\
         {threads}\
         exec {q_bin} {audit} {q_dir}{flags} --shard \"${{SLURM_ARRAY_TASK_ID}}/{n}\" --out {q_run}\n",
        run = run.display(),
        logs = run.join("logs").display(),
    );
    let partials: String = (1..=n)
        .map(|i| {
            let shard = ShardSpec::new(i, n).expect("1 <= i <= n");
            let path = run.join(super::relink::SHARDS_DIR).join(shard.file_name(audit));
            quote_path(&path).map(|q| format!(" \\\n    {q}"))
        })
        .collect::<anyhow::Result<_>>()?;
    let json = run.join(format!("{audit}.json"));
    let merge_script = format!(
        "{header}# Merges the {n} partial results into the single-run report; submitted with\n\
         # --dependency=afterok on the array job, so it runs once every shard succeeded.\n\
         #SBATCH --job-name=linkrisk-{audit}-merge\n\
         #SBATCH --output={logs}/{audit}-merge.job-%j.out\n\
         {resources}\
         set -euo pipefail\n\
         {threads}\
         cd {q_logs}\n\
         exec {q_bin} merge{partials} \\\n    --json {} --out {q_run}\n",
        quote_path(&json)?,
        logs = run.join("logs").display(),
    );
    let scripts = Scripts {
        array: run.join("slurm").join(format!("{audit}-array.sbatch")),
        merge: run.join("slurm").join(format!("{audit}-merge.sbatch")),
        json,
    };
    for (path, text) in [(&scripts.array, &array_script), (&scripts.merge, &merge_script)] {
        linkrisk::cohort::write::atomic_bytes(path, text.as_bytes())?;
    }
    Ok(scripts)
}

/// Submit a script with `sbatch --parsable` (plus `extra` flags); returns the job id.
fn sbatch(script: &Path, extra: &[String]) -> anyhow::Result<String> {
    let output = std::process::Command::new("sbatch")
        .arg("--parsable")
        .args(extra)
        .arg(script)
        .output()
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => anyhow::anyhow!(
                "--submit: `sbatch` not found on PATH; run this on a Slurm login node, or drop --submit and submit {} yourself",
                script.display()
            ),
            _ => anyhow::anyhow!("running sbatch: {e}"),
        })?;
    if !output.status.success() {
        bail!(
            "sbatch {} failed ({}): {}",
            script.display(),
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    // `--parsable` prints `jobid` or `jobid;cluster`.
    let id = stdout.trim().split(';').next().unwrap_or("").trim().to_string();
    if id.is_empty() || !id.bytes().all(|b| b.is_ascii_digit()) {
        bail!("sbatch {} printed `{}`, not a job id", script.display(), stdout.trim());
    }
    Ok(id)
}

/// Write the scripts and, with `--submit`, submit them.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let scripts = write_scripts(&args)?;
    println!("array script: {}", scripts.array.display());
    println!("merge script: {}", scripts.merge.display());
    if !args.submit {
        println!();
        println!("submit with:");
        println!(
            "  jid=$(sbatch --parsable {}) && sbatch --dependency=afterok:$jid {}",
            quote_path(&scripts.array)?,
            quote_path(&scripts.merge)?
        );
        println!("the merged report will be {}", scripts.json.display());
        return Ok(ExitCode::SUCCESS);
    }
    let array_id = sbatch(&scripts.array, &[])?;
    let merge_id = sbatch(
        &scripts.merge,
        &[format!("--dependency=afterok:{array_id}"), "--kill-on-invalid-dep=yes".into()],
    )?;
    println!("array job {array_id} ({} tasks)", args.shards);
    println!("merge job {merge_id} (after array job {array_id} succeeds)");
    println!("the merged report will be {}", scripts.json.display());
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_survives_the_shell() {
        assert_eq!(quote("10,100,full"), "10,100,full");
        assert_eq!(quote("a b"), "'a b'");
        assert_eq!(quote("it's"), r"'it'\''s'");
        assert_eq!(quote(""), "''");
        assert_eq!(quote("$HOME"), "'$HOME'");
    }
}
