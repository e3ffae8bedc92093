//! From the command line (`COHORT...`, `--label NAME...`) and an optional `audit.toml` to
//! the list of models to audit, each with its label and validated settings.

use std::path::{Path, PathBuf};

use super::config::AuditConfig;
use super::settings::Settings;
use super::{check_label, ModelPlan};
use crate::error::{Error, Result};

/// The default label of a cohort: its directory's name (`runs/cohort-a/` -> `cohort-a`),
/// after resolving `.` and `..`.
pub fn default_label(dir: &Path) -> Result<String> {
    let name = crate::shard::cohort_name(dir).ok_or_else(|| {
        Error::config(format!("cannot name a model after {}; pass --label NAME", dir.display()))
    })?;
    check_label(&name).map_err(|e| Error::config(format!("{}: {e}; pass --label NAME", dir.display())))?;
    Ok(name)
}

/// The models to audit. With `cohorts`, one model per directory, labelled by `labels` (one
/// per cohort, in order), else by the `[[model]]` whose `cohort` is that directory, else by
/// the directory's name; its settings are the `[[model]]` of that label, if any. Without
/// `cohorts`, every `[[model]]` of the configuration (each needs a `cohort`). Every model's
/// settings are resolved over `base` and validated; two models with one label are an error.
pub fn plan(
    config: Option<&AuditConfig>,
    cohorts: &[PathBuf],
    labels: &[String],
    base: &Settings,
) -> Result<Vec<ModelPlan>> {
    if !labels.is_empty() && labels.len() != cohorts.len() {
        return Err(Error::config(format!(
            "--label given {} times for {} cohorts; give one label per cohort, in the cohorts' order",
            labels.len(),
            cohorts.len()
        )));
    }
    let mut plans: Vec<ModelPlan> = Vec::new();
    if cohorts.is_empty() {
        let config = config.ok_or_else(|| {
            Error::config(
                "no cohort given: name cohort directories, or [[model]] entries with `cohort` in --config",
            )
        })?;
        if config.model.is_empty() {
            return Err(Error::input(
                &config.path,
                "has no [[model]] entries; name cohort directories on the command line or add [[model]] with label and cohort",
            ));
        }
        for m in &config.model {
            let dir = config.cohort_dir(m).ok_or_else(|| {
                Error::input(
                    &config.path,
                    format!("[[model]] `{}` has no `cohort`; give its cohort directory", m.label),
                )
            })?;
            plans.push(model_plan(Some(config), m.label.clone(), dir, base)?);
        }
    } else {
        for (i, dir) in cohorts.iter().enumerate() {
            let label = match labels.get(i) {
                Some(l) => l.clone(),
                None => match config.and_then(|c| c.model_for_dir(dir)) {
                    Some(m) => m.label.clone(),
                    None => default_label(dir)?,
                },
            };
            plans.push(model_plan(config, label, dir.clone(), base)?);
        }
    }
    super::unique_labels(&plans)?;
    Ok(plans)
}

fn model_plan(
    config: Option<&AuditConfig>,
    label: String,
    dir: PathBuf,
    base: &Settings,
) -> Result<ModelPlan> {
    check_label(&label).map_err(|e| Error::config(format!("--label: {e}")))?;
    let section = config.and_then(|c| c.model(&label));
    let settings = Settings::resolve(base, config, section).map_err(|e| {
        let message = match e {
            Error::Config(m) => m,
            other => other.to_string(),
        };
        let whose =
            if section.is_some() { format!("[[model]] `{label}`") } else { format!("model `{label}`") };
        match config {
            Some(c) => Error::input(&c.path, format!("{whose}: {message}")),
            None => Error::config(format!("{whose}: {message}")),
        }
    })?;
    ModelPlan::new(label, dir, settings)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_come_from_flags_config_or_directory() {
        let tmp = tempfile::tempdir().unwrap();
        for d in ["a", "b", "nested/a"] {
            std::fs::create_dir_all(tmp.path().join(d)).unwrap();
        }
        let path = tmp.path().join("audit.toml");
        std::fs::write(&path, "[[model]]\nlabel = \"model-b\"\ncohort = \"b\"\n[model.relink]\ntrials = 3\n")
            .unwrap();
        let config = AuditConfig::load(&path).unwrap();
        let base = Settings::defaults();
        let dirs = [tmp.path().join("a"), tmp.path().join("b")];
        let plans = plan(Some(&config), &dirs, &[], &base).unwrap();
        let labels: Vec<&str> = plans.iter().map(|p| p.label.as_str()).collect();
        assert_eq!(labels, ["a", "model-b"]);
        assert_eq!((plans[0].settings.relink.trials, plans[1].settings.relink.trials), (20, 3));
        // --label wins, and picks the [[model]] of that label.
        let plans = plan(Some(&config), &dirs, &["x".into(), "model-b".into()], &base).unwrap();
        assert_eq!(plans[0].label, "x");
        assert_eq!(plans[1].settings.relink.trials, 3);
        // No cohorts: the configuration's models.
        let plans = plan(Some(&config), &[], &[], &base).unwrap();
        assert_eq!(plans.len(), 1);
        assert_eq!(plans[0].dir, tmp.path().join("b"));
        // Two directories named `a`: refused, naming both.
        let err = plan(None, &[tmp.path().join("a"), tmp.path().join("nested/a")], &[], &base).unwrap_err();
        assert!(err.to_string().contains("model `a`") && err.to_string().contains("--label"), "{err}");
        let err = plan(None, &dirs, &["only-one".into()], &base).unwrap_err().to_string();
        assert!(err.contains("--label given 1 times for 2 cohorts"), "{err}");
        assert!(plan(None, &[], &[], &base).unwrap_err().to_string().contains("no cohort given"));
        assert_eq!(default_label(&tmp.path().join("a/../b/.")).unwrap(), "b");
        assert!(plan(None, &dirs[..1], &[" padded".into()], &base).is_err());
    }
}
