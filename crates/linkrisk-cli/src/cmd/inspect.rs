//! `linkrisk inspect DIR`: load and validate a cohort, print its summary as a table or JSON.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use linkrisk::cohort::summary::{CategoryCounts, CohortSummary};
use linkrisk::cohort::Cohort;

use crate::output::{table, write_json};

/// Arguments of `linkrisk inspect`.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Validates every file (NaN/Inf, all-zero rows, row counts, duplicate ids, ...) and exits 2
with a message naming the file, row and column when something is wrong.

Examples:
  linkrisk inspect cohort/                 table on stdout
  linkrisk inspect cohort/ --json          JSON on stdout
  linkrisk inspect cohort/ --json s.json   table on stdout, JSON to s.json")]
pub struct Args {
    /// Cohort directory: metadata.csv (or metadata.parquet), one file per view
    /// (.npy, .npz, .safetensors), optionally cohort.toml. See docs/FORMATS.md.
    pub dir: PathBuf,

    /// Write the summary as JSON: to stdout with no value or `-` (instead of the table),
    /// otherwise to FILE (the table still goes to stdout).
    #[arg(long, value_name = "FILE", num_args = 0..=1, default_missing_value = "-")]
    pub json: Option<PathBuf>,
}

/// Load, validate and summarise.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let cohort = Cohort::load(&args.dir)?;
    let summary = CohortSummary::of(&cohort);
    if let Some(path) = &args.json {
        write_json(path, &summary)?;
        if path.as_os_str() == "-" {
            return Ok(ExitCode::SUCCESS);
        }
    }
    crate::stdout::write_str(&render(&summary));
    Ok(ExitCode::SUCCESS)
}

/// `path` relative to the cohort directory when it lies inside it.
fn short(dir: &Path, path: &Path) -> String {
    path.strip_prefix(dir).unwrap_or(path).display().to_string()
}

fn categories(c: &CategoryCounts) -> String {
    let mut parts: Vec<String> = c.counts.iter().map(|x| format!("{} {}", x.value, x.records)).collect();
    parts.push(format!("missing {}", c.missing));
    parts.join(", ")
}

/// The human-readable summary.
pub fn render(s: &CohortSummary) -> String {
    let mut o = String::new();
    let dir = s.dir.as_path();
    let field = |o: &mut String, name: &str, value: String| {
        let _ = writeln!(o, "{name:<22}{value}");
    };
    field(&mut o, "cohort", s.dir.display().to_string());
    if let Some(m) = &s.metadata_file {
        field(&mut o, "metadata", short(dir, m));
    }
    if let Some(m) = &s.manifest {
        field(&mut o, "manifest", short(dir, m));
    }
    field(&mut o, "records", s.records.to_string());
    field(&mut o, "patients", s.patients.to_string());
    let study_note = if s.has_study_column { "" } else { " (no study_id column: one study per record)" };
    field(&mut o, "studies", format!("{}{study_note}", s.studies));
    let d = &s.studies_per_patient;
    field(
        &mut o,
        "studies per patient",
        format!("min {}  median {}  mean {:.2}  max {}", d.min, d.median, d.mean, d.max),
    );
    let rows: Vec<Vec<String>> =
        d.histogram.iter().map(|b| vec![b.label.clone(), b.patients.to_string()]).collect();
    o.push_str(&table("  ", &["studies", "patients"], &rows));

    o.push_str("\nviews\n");
    if s.views.is_empty() {
        o.push_str("  (none)\n");
    } else {
        let rows: Vec<Vec<String>> = s
            .views
            .iter()
            .map(|v| {
                let file = short(dir, &v.file);
                let source = match &v.member {
                    Some(m) => format!("{file}:{m}"),
                    None => file,
                };
                vec![
                    v.name.clone(),
                    v.shape[0].to_string(),
                    v.shape[1].to_string(),
                    v.dtype.name().to_string(),
                    format!("{:.3}..{:.3}", v.norm_min, v.norm_max),
                    source,
                ]
            })
            .collect();
        o.push_str(&table("  ", &["view", "rows", "dim", "dtype", "norm", "source"], &rows));
    }

    let split_note = if s.has_split_column { "" } else { " (no split column: every record is in test)" };
    let _ = writeln!(o, "\nsplits{split_note}");
    let rows: Vec<Vec<String>> = s
        .splits
        .iter()
        .map(|x| vec![x.name.clone(), x.records.to_string(), x.patients.to_string(), x.studies.to_string()])
        .collect();
    o.push_str(&table("  ", &["split", "records", "patients", "studies"], &rows));
    for shared in &s.shared_patients {
        let _ = writeln!(
            o,
            "  patients in both {} and {}: {}",
            shared.splits[0], shared.splits[1], shared.patients
        );
    }

    match &s.findings {
        None => o.push_str("\nfindings              (no CheXpert finding columns)\n"),
        Some(findings) => {
            o.push_str("\nfindings\n");
            let rows: Vec<Vec<String>> = findings
                .iter()
                .map(|f| {
                    vec![
                        f.finding.clone(),
                        f.positive.to_string(),
                        f.negative.to_string(),
                        f.uncertain.to_string(),
                        f.blank.to_string(),
                        format!("{:.1}%", 100.0 * f.prevalence),
                    ]
                })
                .collect();
            o.push_str(&table(
                "  ",
                &["finding", "positive", "negative", "uncertain", "blank", "prevalence"],
                &rows,
            ));
        }
    }

    o.push_str("\ndemographics\n");
    let demo = &s.demographics;
    let absent = || "(no column)".to_string();
    let _ = writeln!(o, "  sex   {}", demo.sex.as_ref().map(categories).unwrap_or_else(absent));
    let _ = writeln!(o, "  race  {}", demo.race.as_ref().map(categories).unwrap_or_else(absent));
    let age = match &demo.age {
        None => absent(),
        Some(a) => match (a.min, a.mean, a.max) {
            (Some(min), Some(mean), Some(max)) => {
                format!("min {min:.1}  mean {mean:.1}  max {max:.1}  missing {}", a.missing)
            }
            _ => format!("all {} missing", a.missing),
        },
    };
    let _ = writeln!(o, "  age   {age}");

    if !s.extra_columns.is_empty() {
        let _ = writeln!(o, "\nunused columns        {}", s.extra_columns.join(", "));
    }
    if !s.ids_checked.is_empty() {
        let checked: Vec<String> = s.ids_checked.iter().map(|p| short(dir, Path::new(p))).collect();
        let _ = writeln!(o, "row order checked     {} (record ids match the metadata)", checked.join(", "));
    }
    if !s.ignored_files.is_empty() {
        let ignored: Vec<String> = s.ignored_files.iter().map(|p| short(dir, p)).collect();
        let _ = writeln!(o, "ignored files         {}", ignored.join(", "));
    }
    for w in &s.warnings {
        let _ = writeln!(o, "\nwarning: {w}");
    }
    o
}
