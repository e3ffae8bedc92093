//! The audits, one `#[pyfunction]` each. Arguments are the CLI's flags (same names with `_`
//! for `-`, same defaults, set by the Python wrappers in `linkrisk/__init__.py`) and are
//! turned into the same library configs the CLI's `cmd/*.rs` build, so the JSON is the CLI's.
//! Each returns `(report JSON, [run-directory entry JSON, ...])`: what `--json` writes and
//! what `--out RUN` records (re-ID records one entry per attacker).

use std::path::PathBuf;

use linkrisk::attack::{AttackConfig, AttackName};
use linkrisk::audit::attributes::{attributes_by_reid, AgeThreshold, Attribute, AttributesConfig};
use linkrisk::audit::cross_fit::SideSource;
use linkrisk::audit::reid::{Attackers, ReidConfig};
use linkrisk::audit::utility::{BlankPolicy, LabelPolicy, UncertainPolicy, UtilityConfig};
use linkrisk::audit::{AttackSide, Direction, MatchLevel, RelinkConfig};
use linkrisk::metrics::AurocInterval;
use linkrisk::privacy::{self, Accountant, RdpOrders};
use linkrisk::probe::{ProbeConfig, SolverOptions};
use pyo3::prelude::*;
use serde::Serialize;

use crate::cohort::PyCohort;
use crate::error::{config as config_err, to_py};
use crate::progress::{run, PyProgress};

/// A report's JSON and its run-directory entries.
type Output = (String, Vec<String>);

fn json<T: Serialize>(value: &T) -> PyResult<String> {
    serde_json::to_string(value).map_err(|e| pyo3::exceptions::PyRuntimeError::new_err(e.to_string()))
}

/// The report as `--json FILE` writes it (pretty, without the final newline).
fn pretty<T: Serialize>(value: &T) -> PyResult<String> {
    serde_json::to_string_pretty(value).map_err(|e| pyo3::exceptions::PyRuntimeError::new_err(e.to_string()))
}

fn output<T: Serialize>(report: &T) -> PyResult<Output> {
    Ok((pretty(report)?, vec![json(report)?]))
}

/// `pools` items as the CLI's `--pools` (`full` implied; duplicates dropped).
fn parse_pools(items: &[String]) -> PyResult<Vec<usize>> {
    let mut sizes = Vec::new();
    for item in items {
        let item = item.trim();
        if item.eq_ignore_ascii_case("full") {
            continue;
        }
        let size: usize = item.parse().map_err(|_| {
            config_err(format!(
                "pools: `{item}` is neither a pool size nor \"full\" (e.g. pools=[10, 100, \"full\"])"
            ))
        })?;
        if size < 2 {
            return Err(config_err(format!(
                "pools: pool size {size} is too small; a pool holds the true match and at least one negative"
            )));
        }
        if !sizes.contains(&size) {
            sizes.push(size);
        }
    }
    Ok(sizes)
}

/// `attack` items as the CLI's `--attack` (names, `all` or `none`).
fn parse_attacks(
    attack: &[String],
    csls_k: usize,
    leaked_pairs: Vec<usize>,
) -> PyResult<Option<AttackConfig>> {
    let items: Vec<&str> = attack.iter().map(|s| s.trim()).filter(|s| !s.is_empty()).collect();
    if items.iter().any(|s| s.eq_ignore_ascii_case("none")) {
        if items.len() > 1 {
            return Err(config_err("attack: \"none\" cannot be combined with attack names"));
        }
        return Ok(None);
    }
    let defaults = AttackConfig::default();
    Ok(Some(AttackConfig {
        attacks: AttackName::parse_list(&items).map_err(to_py)?,
        named: AttackName::parse_named(&items).map_err(to_py)?,
        csls_k,
        leaked_pairs: if leaked_pairs.is_empty() { defaults.leaked_pairs.clone() } else { leaked_pairs },
        ..defaults
    }))
}

/// `attack_side` of the probe audits and re-ID (`auto`, `audited`, `split`); an explicitly
/// named train split makes `auto` strict, as on the CLI.
fn side_source(side: &str, split_named: bool) -> PyResult<SideSource> {
    Ok(match side {
        "auto" if split_named => SideSource::Split,
        "auto" => SideSource::Auto,
        "audited" => SideSource::Audited,
        "split" => SideSource::Split,
        other => {
            return Err(config_err(format!("attack_side: `{other}` is not one of auto, audited, split")))
        }
    })
}

fn attackers(name: &str) -> PyResult<Attackers> {
    Ok(match name {
        "auto" => Attackers::Auto,
        "linear-metric" | "linear_metric" => Attackers::Both,
        "none" => Attackers::NearestNeighbour,
        other => {
            return Err(config_err(format!("attacker: `{other}` is not one of auto, linear-metric, none")))
        }
    })
}

/// The cross-modal re-linkage audit (`linkrisk relink`).
#[pyfunction]
#[pyo3(signature = (cohort, query, gallery, split, pools, trials, hard_negatives, match_level, direction,
    seed, bootstrap, attack, attack_side, side_folds, csls_k, leaked_pairs, progress=None))]
pub fn relink(
    py: Python<'_>,
    cohort: &PyCohort,
    query: String,
    gallery: String,
    split: String,
    pools: Vec<String>,
    trials: usize,
    hard_negatives: bool,
    match_level: &str,
    direction: &str,
    seed: u64,
    bootstrap: usize,
    attack: Vec<String>,
    attack_side: String,
    side_folds: usize,
    csls_k: usize,
    leaked_pairs: Vec<usize>,
    progress: Option<Py<PyAny>>,
) -> PyResult<Output> {
    let config = RelinkConfig {
        query_view: query,
        gallery_view: gallery,
        split: (split != "all").then_some(split),
        pool_sizes: parse_pools(&pools)?,
        trials,
        hard_negatives,
        match_level: match match_level {
            "study" => MatchLevel::Study,
            "patient" => MatchLevel::Patient,
            other => return Err(config_err(format!("match_level: `{other}` is not one of study, patient"))),
        },
        direction: match direction {
            "query-to-gallery" | "query_to_gallery" => Direction::QueryToGallery,
            "both" => Direction::Both,
            other => {
                return Err(config_err(format!("direction: `{other}` is not one of query-to-gallery, both")))
            }
        },
        seed,
        bootstrap_replicates: bootstrap,
        attack: parse_attacks(&attack, csls_k, leaked_pairs)?,
        attack_side: match attack_side.as_str() {
            "auto" => AttackSide::Auto,
            "audited" => AttackSide::Audited,
            "none" => AttackSide::None,
            split => AttackSide::Split(split.to_string()),
        },
        side_folds,
        ..RelinkConfig::default()
    };
    config.validate().map_err(to_py)?;
    let data = std::sync::Arc::clone(&cohort.cohort);
    let progress = PyProgress::new(progress);
    let report = run(py, &progress, |p| linkrisk::audit::relink(&data, &config, p))?;
    output(&report)
}

/// The patient re-identification audit (`linkrisk reid`).
#[pyfunction]
#[pyo3(signature = (cohort, view, split, attacker, train_split, attack_side, side_folds, include_same_study,
    seed, bootstrap, negatives_per_query, attack, csls_k, progress=None))]
pub fn reid(
    py: Python<'_>,
    cohort: &PyCohort,
    view: String,
    split: String,
    attacker: &str,
    train_split: Option<String>,
    attack_side: &str,
    side_folds: usize,
    include_same_study: bool,
    seed: u64,
    bootstrap: usize,
    negatives_per_query: usize,
    attack: Vec<String>,
    csls_k: usize,
    progress: Option<Py<PyAny>>,
) -> PyResult<Output> {
    let config = ReidConfig {
        view,
        split,
        attack_side: side_source(attack_side, train_split.is_some())?,
        train_split: train_split.unwrap_or_else(|| "train".into()),
        side_folds,
        attackers: attackers(attacker)?,
        include_same_study,
        seed,
        bootstrap_replicates: bootstrap,
        negatives_per_query,
        attack: parse_attacks(&attack, csls_k, Vec::new())?,
        ..ReidConfig::default()
    };
    config.validate().map_err(to_py)?;
    let data = std::sync::Arc::clone(&cohort.cohort);
    let progress = PyProgress::new(progress);
    let report = run(py, &progress, |p| linkrisk::audit::reid(&data, &config, p))?;
    let entries = report.run_entries().iter().map(json).collect::<PyResult<Vec<_>>>()?;
    Ok((pretty(&report)?, entries))
}

/// The probe settings shared by `attributes` and `utility` (the CLI's `ProbeArgs`).
struct Probe {
    train_split: String,
    side: SideSource,
    eval_split: String,
    probe: ProbeConfig,
    interval: AurocInterval,
    side_folds: usize,
}

fn probe(
    train_split: Option<String>,
    attack_side: &str,
    side_folds: usize,
    eval_split: String,
    folds: usize,
    seed: u64,
    tol: f64,
    auroc_ci: &str,
) -> PyResult<Probe> {
    Ok(Probe {
        side: side_source(attack_side, train_split.is_some())?,
        train_split: train_split.unwrap_or_else(|| "train".into()),
        eval_split,
        probe: ProbeConfig {
            n_folds: folds,
            seed,
            solver: SolverOptions { tol, ..SolverOptions::default() },
            ..ProbeConfig::default()
        },
        interval: match auroc_ci {
            "logit" => AurocInterval::Logit,
            "plain" => AurocInterval::Plain,
            other => return Err(config_err(format!("auroc_ci: `{other}` is not one of logit, plain"))),
        },
        side_folds,
    })
}

/// The attribute-inference audit (`linkrisk attributes`), optionally stratified by the
/// re-ID audit's flags (`--stratify-by-reid`).
#[pyfunction]
#[pyo3(signature = (cohort, view, targets, age_threshold, min_group, stratify_by_reid, reid_attacker,
    train_split, attack_side, side_folds, eval_split, folds, seed, tol, auroc_ci, progress=None))]
pub fn attributes(
    py: Python<'_>,
    cohort: &PyCohort,
    view: String,
    targets: Vec<String>,
    age_threshold: String,
    min_group: usize,
    stratify_by_reid: bool,
    reid_attacker: &str,
    train_split: Option<String>,
    attack_side: &str,
    side_folds: usize,
    eval_split: String,
    folds: usize,
    seed: u64,
    tol: f64,
    auroc_ci: &str,
    progress: Option<Py<PyAny>>,
) -> PyResult<Output> {
    let p = probe(train_split, attack_side, side_folds, eval_split, folds, seed, tol, auroc_ci)?;
    let targets =
        targets.iter().map(|t| t.parse::<Attribute>()).collect::<Result<Vec<_>, _>>().map_err(to_py)?;
    let config = AttributesConfig {
        view,
        train_split: p.train_split,
        eval_split: p.eval_split,
        targets,
        age_threshold: age_threshold.parse::<AgeThreshold>().map_err(to_py)?,
        min_group_records: min_group,
        probe: p.probe,
        interval: p.interval,
        side: p.side,
        side_folds: p.side_folds,
    };
    config.validate().map_err(to_py)?;
    let data = std::sync::Arc::clone(&cohort.cohort);
    let progress = PyProgress::new(progress);
    let report = if stratify_by_reid {
        let reid = ReidConfig {
            view: config.view.clone(),
            split: config.eval_split.clone(),
            train_split: config.train_split.clone(),
            attack_side: config.side.clone(),
            side_folds: config.side_folds,
            attackers: attackers(reid_attacker)?,
            seed,
            bootstrap_replicates: 0,
            ..ReidConfig::default()
        };
        run(py, &progress, |p| attributes_by_reid(&data, &config, &reid, p))?
    } else {
        run(py, &progress, |_| linkrisk::audit::attributes::attributes(&data, &config, None))?
    };
    output(&report)
}

/// The utility audit (`linkrisk utility`).
#[pyfunction]
#[pyo3(signature = (cohort, view, uncertain, blank, train_split, attack_side, side_folds, eval_split,
    folds, seed, tol, auroc_ci, progress=None))]
pub fn utility(
    py: Python<'_>,
    cohort: &PyCohort,
    view: String,
    uncertain: &str,
    blank: &str,
    train_split: Option<String>,
    attack_side: &str,
    side_folds: usize,
    eval_split: String,
    folds: usize,
    seed: u64,
    tol: f64,
    auroc_ci: &str,
    progress: Option<Py<PyAny>>,
) -> PyResult<Output> {
    let p = probe(train_split, attack_side, side_folds, eval_split, folds, seed, tol, auroc_ci)?;
    let config = UtilityConfig {
        view,
        train_split: p.train_split,
        eval_split: p.eval_split,
        labels: LabelPolicy {
            uncertain: match uncertain {
                "exclude" => UncertainPolicy::Exclude,
                "negative" => UncertainPolicy::Negative,
                "positive" => UncertainPolicy::Positive,
                other => {
                    return Err(config_err(format!(
                        "uncertain: `{other}` is not one of exclude, negative, positive"
                    )))
                }
            },
            blank: match blank {
                "negative" => BlankPolicy::Negative,
                "exclude" => BlankPolicy::Exclude,
                other => return Err(config_err(format!("blank: `{other}` is not one of negative, exclude"))),
            },
        },
        probe: p.probe,
        interval: p.interval,
        side: p.side,
        side_folds: p.side_folds,
    };
    config.validate().map_err(to_py)?;
    let data = std::sync::Arc::clone(&cohort.cohort);
    let progress = PyProgress::new(progress);
    let report = run(py, &progress, |_| linkrisk::audit::utility::utility(&data, &config))?;
    output(&report)
}

/// The accountant of `linkrisk accountant` (`--accountant`, `--rdp-orders`,
/// `--pld-discretization`), validated.
fn accountant(name: &str, rdp_orders: &str, pld_discretization: f64) -> PyResult<Accountant> {
    let a = match name {
        "pld" => Accountant::Pld { discretization: pld_discretization },
        "rdp" => Accountant::Rdp {
            orders: match rdp_orders {
                "extended" => RdpOrders::Extended,
                "opacus" => RdpOrders::Opacus,
                other => {
                    return Err(config_err(format!("rdp_orders: `{other}` is not one of extended, opacus")))
                }
            },
        },
        other => return Err(config_err(format!("accountant: `{other}` is not one of pld, rdp"))),
    };
    a.validate().map_err(to_py)?;
    Ok(a)
}

/// Steps from `steps` or `epochs`, as `linkrisk accountant`.
fn steps(steps: Option<u64>, epochs: Option<f64>, sample_rate: f64) -> PyResult<u64> {
    match (steps, epochs) {
        (Some(_), Some(_)) => Err(config_err("pass steps or epochs, not both")),
        (Some(steps), None) => Ok(steps),
        (None, Some(epochs)) => privacy::steps_for_epochs(epochs, sample_rate).map_err(to_py),
        (None, None) => Err(config_err("pass steps or epochs")),
    }
}

fn check_common(
    sample_rate: f64,
    delta: f64,
    privacy_units: Option<u64>,
    allow_large_delta: bool,
) -> PyResult<()> {
    privacy::check_sample_rate(sample_rate).map_err(to_py)?;
    if let Some(units) = privacy_units {
        privacy::check_delta_for_units(delta, units, allow_large_delta).map_err(to_py)?;
    }
    Ok(())
}

// The two outputs of `linkrisk accountant --json`, field for field (the CLI's structs in
// crates/linkrisk-cli/src/cmd/accountant.rs; the binary's types cannot be imported here).

/// Epsilon of a run.
#[derive(Serialize)]
struct EpsilonOutput {
    epsilon: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    best_order: Option<f64>,
    accountant: Accountant,
    sample_rate: f64,
    noise_multiplier: f64,
    steps: u64,
    delta: f64,
}

/// Calibrated noise.
#[derive(Serialize)]
struct NoiseOutput {
    noise_multiplier: f64,
    target_epsilon: f64,
    achieved_epsilon: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    best_order: Option<f64>,
    accountant: Accountant,
    sample_rate: f64,
    steps: u64,
    delta: f64,
    relative_tolerance: f64,
}

/// `linkrisk accountant --noise-multiplier`: epsilon of a DP-SGD run.
#[pyfunction]
#[pyo3(signature = (sample_rate, noise_multiplier, delta, steps=None, epochs=None, accountant="pld",
    rdp_orders="extended", pld_discretization=privacy::pld::DEFAULT_DISCRETIZATION, privacy_units=None,
    allow_large_delta=false))]
pub fn epsilon(
    py: Python<'_>,
    sample_rate: f64,
    noise_multiplier: f64,
    delta: f64,
    steps: Option<u64>,
    epochs: Option<f64>,
    accountant: &str,
    rdp_orders: &str,
    pld_discretization: f64,
    privacy_units: Option<u64>,
    allow_large_delta: bool,
) -> PyResult<String> {
    check_common(sample_rate, delta, privacy_units, allow_large_delta)?;
    let acc = self::accountant(accountant, rdp_orders, pld_discretization)?;
    let steps = self::steps(steps, epochs, sample_rate)?;
    let spent = py.detach(|| acc.epsilon(sample_rate, noise_multiplier, steps, delta)).map_err(to_py)?;
    json(&EpsilonOutput {
        epsilon: spent.epsilon,
        best_order: spent.best_order,
        accountant: acc,
        sample_rate,
        noise_multiplier,
        steps,
        delta,
    })
}

/// `linkrisk accountant --epsilon`: the smallest noise multiplier reaching a target epsilon.
#[pyfunction]
#[pyo3(signature = (sample_rate, epsilon, delta, steps=None, epochs=None, accountant="pld",
    rdp_orders="extended", pld_discretization=privacy::pld::DEFAULT_DISCRETIZATION, privacy_units=None,
    allow_large_delta=false))]
pub fn noise_multiplier(
    py: Python<'_>,
    sample_rate: f64,
    epsilon: f64,
    delta: f64,
    steps: Option<u64>,
    epochs: Option<f64>,
    accountant: &str,
    rdp_orders: &str,
    pld_discretization: f64,
    privacy_units: Option<u64>,
    allow_large_delta: bool,
) -> PyResult<String> {
    check_common(sample_rate, delta, privacy_units, allow_large_delta)?;
    let acc = self::accountant(accountant, rdp_orders, pld_discretization)?;
    let steps = self::steps(steps, epochs, sample_rate)?;
    let cal = py.detach(|| acc.calibrate(epsilon, delta, sample_rate, steps)).map_err(to_py)?;
    json(&NoiseOutput {
        noise_multiplier: cal.noise_multiplier,
        target_epsilon: epsilon,
        achieved_epsilon: cal.epsilon,
        best_order: cal.best_order.is_finite().then_some(cal.best_order),
        accountant: acc,
        sample_rate,
        steps,
        delta,
        relative_tolerance: acc.calibration_tolerance(),
    })
}

/// Record entries (report JSON texts) in run directory `run_dir` under `label` and
/// `fingerprint`, as `--out RUN` does; returns the path of `run.json`.
#[pyfunction]
#[pyo3(signature = (run_dir, entries, label, fingerprint, command, seed, seconds))]
pub fn record(
    run_dir: PathBuf,
    entries: Vec<String>,
    label: String,
    fingerprint: String,
    command: Vec<String>,
    seed: Option<u64>,
    seconds: f64,
) -> PyResult<String> {
    linkrisk::runner::check_label(&label).map_err(to_py)?;
    let mut dir = linkrisk::report::RunDir::open_or_create(&run_dir).map_err(to_py)?;
    dir.check_label(&label, &fingerprint).map_err(to_py)?;
    for entry in entries {
        let audit: serde_json::Value =
            serde_json::from_str(&entry).map_err(|e| config_err(format!("report: {e}")))?;
        dir.record_entry(linkrisk::report::RunEntry {
            key: String::new(),
            label: Some(label.clone()),
            cohort_fingerprint: Some(fingerprint.clone()),
            command: command.clone(),
            seed,
            started_unix: linkrisk::report::run::unix_now().saturating_sub(seconds.max(0.0).ceil() as u64),
            seconds,
            linkrisk_version: linkrisk::VERSION.to_string(),
            audit,
        })
        .map_err(to_py)?;
    }
    Ok(dir.run_file_path().display().to_string())
}

/// `linkrisk report RUN`: render `report.html` and `report.md`; returns the files written.
#[pyfunction]
pub fn render_report(py: Python<'_>, run_dir: PathBuf) -> PyResult<Vec<String>> {
    use linkrisk::report::Format;
    let written = py
        .detach(|| linkrisk::report::write_report(&run_dir, &[Format::Html, Format::Markdown]))
        .map_err(to_py)?;
    Ok(written.iter().map(|p| p.display().to_string()).collect())
}
