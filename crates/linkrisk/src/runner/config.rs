//! `audit.toml`: the reviewed file a release pipeline runs `linkrisk audit --config` and
//! `linkrisk gate --config` with. Top-level sections (`seed`, `audits`, `[relink]`, `[reid]`,
//! `[attributes]`, `[utility]`, `[gate]`) apply to every model; each `[[model]]` names a
//! model (its label and cohort directory) and may override any of them, field by field.
//! Unknown keys are errors (a misspelt threshold must never be silently ignored).
//! docs/AUDIT-CONFIG.md documents every key with a full example that a test parses.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::{Error, Result};
use crate::report::gate::{Basis, GateSpec, Limit, Metric, Pool};

/// A parsed `audit.toml`.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditConfig {
    /// Seed of every audit (pools, bootstrap, probes, attacker model selection).
    pub seed: Option<u64>,
    /// Audits to run, in this order: any of `relink`, `reid`, `attributes`, `utility`.
    pub audits: Option<Vec<String>>,
    /// Re-linkage settings for every model.
    pub relink: Option<RelinkSection>,
    /// Re-identification settings for every model.
    pub reid: Option<ReidSection>,
    /// Attribute-inference settings for every model.
    pub attributes: Option<AttributesSection>,
    /// Utility settings for every model.
    pub utility: Option<UtilitySection>,
    /// Gate thresholds for every model.
    pub gate: Option<GateSection>,
    /// The models, each with its own overrides.
    #[serde(default)]
    pub model: Vec<ModelConfig>,
    /// The directory of the file, against which `cohort` paths are resolved (not a key).
    #[serde(skip)]
    pub base_dir: PathBuf,
    /// The file the configuration was read from (not a key), for messages.
    #[serde(skip)]
    pub path: PathBuf,
}

/// One `[[model]]`: its label, its cohort and the settings that differ for it. Its fields
/// repeat [`AuditConfig`]'s on purpose: serde cannot refuse unknown keys through a flattened
/// shared struct, and refusing them is the point of a reviewed file.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    /// The model's name in the run directory, report and gate.
    pub label: String,
    /// Its cohort directory, relative to the configuration file's directory.
    pub cohort: Option<PathBuf>,
    /// Overrides of the top-level `seed`.
    pub seed: Option<u64>,
    /// Overrides of the top-level `audits`.
    pub audits: Option<Vec<String>>,
    /// Overrides of `[relink]`.
    pub relink: Option<RelinkSection>,
    /// Overrides of `[reid]`.
    pub reid: Option<ReidSection>,
    /// Overrides of `[attributes]`.
    pub attributes: Option<AttributesSection>,
    /// Overrides of `[utility]`.
    pub utility: Option<UtilitySection>,
    /// Overrides of `[gate]` thresholds (`on` and `allow_skipped` are top-level only).
    pub gate: Option<GateSection>,
}

/// `[relink]`: as the flags of `linkrisk relink`.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RelinkSection {
    /// Query view (`--query`).
    pub query: Option<String>,
    /// Gallery view (`--gallery`).
    pub gallery: Option<String>,
    /// Split audited, or `all` (`--split`).
    pub split: Option<String>,
    /// Random-pool sizes; the full database is always reported (`--pools`).
    pub pools: Option<Vec<usize>>,
    /// Random pools per query and size (`--trials`).
    pub trials: Option<usize>,
    /// Pathology-matched pools: `"auto"` (where the cohort has findings), `true`, `false`.
    pub hard_negatives: Option<Toggle>,
    /// `both` or `query-to-gallery` (`--direction`).
    pub direction: Option<String>,
    /// `study` or `patient` (`--match`).
    #[serde(rename = "match")]
    pub match_level: Option<String>,
    /// Patient-bootstrap replicates (`--bootstrap`).
    pub bootstrap: Option<usize>,
    /// Attacks (`--attack`): names, `["all"]` or `["none"]`.
    pub attacks: Option<Vec<String>>,
    /// Side pairs of the attacker: `auto`, `none` or a split (`--attack-side`).
    pub attack_side: Option<String>,
    /// CSLS neighbours (`--csls-k`).
    pub csls_k: Option<usize>,
    /// Leaked pairs of the alignment attacks (`--leaked-pairs`).
    pub leaked_pairs: Option<Vec<usize>>,
}

/// `[reid]`: as the flags of `linkrisk reid`.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReidSection {
    /// View (`--view`).
    pub view: Option<String>,
    /// Split audited (`--split`).
    pub split: Option<String>,
    /// Split the trained attacker learns from (`--train-split`).
    pub train_split: Option<String>,
    /// `auto`, `linear-metric` or `none` (`--attacker`).
    pub attacker: Option<String>,
    /// Attacks on the nearest-neighbour task (`--attack`); `["all"]` means every attack that
    /// applies to one view (the paired-view attacks do not).
    pub attacks: Option<Vec<String>>,
    /// Patient-bootstrap replicates (`--bootstrap`).
    pub bootstrap: Option<usize>,
    /// Different-patient pairs per query for the verification AUROC.
    pub negatives_per_query: Option<usize>,
    /// Count other records of the query's study as positives.
    pub include_same_study: Option<bool>,
    /// CSLS neighbours (`--csls-k`).
    pub csls_k: Option<usize>,
}

/// `[attributes]`: as the flags of `linkrisk attributes`.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttributesSection {
    /// View (`--view`).
    pub view: Option<String>,
    /// Attributes (`--targets`).
    pub targets: Option<Vec<String>>,
    /// Age threshold in years, or `"median"` (`--age-threshold`).
    pub age_threshold: Option<AgeValue>,
    /// Smallest group per split (`--min-group`).
    pub min_group: Option<usize>,
    /// Probe training split (`--train-split`).
    pub train_split: Option<String>,
    /// Probe evaluation split (`--eval-split`).
    pub eval_split: Option<String>,
    /// Stratify by the re-identification flags (default true).
    pub stratify_by_reid: Option<bool>,
    /// Whose flags: `none` (nearest neighbour, default), `auto`, `linear-metric`.
    pub reid_attacker: Option<String>,
    /// Cross-validation folds of the probes (`--folds`).
    pub folds: Option<usize>,
}

/// `[utility]`: as the flags of `linkrisk utility`.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UtilitySection {
    /// View (`--view`).
    pub view: Option<String>,
    /// Probe training split (`--train-split`).
    pub train_split: Option<String>,
    /// Probe evaluation split (`--eval-split`).
    pub eval_split: Option<String>,
    /// Uncertain labels: `exclude`, `negative`, `positive` (`--uncertain`).
    pub uncertain: Option<String>,
    /// Blank labels: `negative`, `exclude` (`--blank`).
    pub blank: Option<String>,
    /// Cross-validation folds of the probes (`--folds`).
    pub folds: Option<usize>,
}

/// `[gate]`: as the flags of `linkrisk gate`.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GateSection {
    /// `estimate` or `ci-high` (`--on`; top-level only).
    pub on: Option<String>,
    /// Accept attacks that did not run (`--allow-skipped`; top-level only).
    pub allow_skipped: Option<bool>,
    /// Largest lift per pool (`--max-lift`): `{ "10000" = 50, full = 500 }`.
    pub max_lift: Option<BTreeMap<String, f64>>,
    /// Largest Recall@1 per pool (`--max-recall-at-1`).
    pub max_recall_at_1: Option<BTreeMap<String, f64>>,
    /// Largest re-ID Rank-1 (`--max-reid-rank1`).
    pub max_reid_rank1: Option<f64>,
    /// Smallest utility macro AUROC (`--min-utility`).
    pub min_utility: Option<f64>,
    /// Largest attribute AUROC per attribute (`--max-attribute-auroc`): `{ sex = 0.8 }`.
    pub max_attribute_auroc: Option<BTreeMap<String, f64>>,
}

/// A switch that may also be `"auto"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum Toggle {
    /// `true` / `false`.
    Bool(bool),
    /// Must be `"auto"`.
    Word(AutoWord),
}

/// The word `auto`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AutoWord {
    /// Decide from the cohort.
    Auto,
}

/// An age threshold: years, or `"median"`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum AgeValue {
    /// Years.
    Years(f64),
    /// `"median"`.
    Word(String),
}

impl AuditConfig {
    /// Read and parse `path`; errors name the file, line and key.
    pub fn load(path: &Path) -> Result<AuditConfig> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        let mut config = AuditConfig::parse(&text).map_err(|e| match e {
            Error::Config(message) => Error::input(path, message),
            other => other,
        })?;
        config.base_dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        config.path = path.to_path_buf();
        Ok(config)
    }

    /// Parse the text of an `audit.toml` and check what can be checked without a cohort.
    pub fn parse(text: &str) -> Result<AuditConfig> {
        let config: AuditConfig =
            toml::from_str(text).map_err(|e| Error::config(format!("not a valid audit config: {e}")))?;
        let mut labels: Vec<&str> = Vec::new();
        for m in &config.model {
            crate::runner::check_label(&m.label)
                .map_err(|e| Error::config(format!("[[model]] label {:?}: {e}", m.label)))?;
            if labels.contains(&m.label.as_str()) {
                return Err(Error::config(format!(
                    "[[model]] label `{}` appears twice; labels name models",
                    m.label
                )));
            }
            labels.push(&m.label);
            if let Some(g) = &m.gate {
                if g.on.is_some() || g.allow_skipped.is_some() {
                    return Err(Error::config(format!(
                        "[[model]] `{}`: gate.on and gate.allow_skipped apply to the whole gate; set them in the top-level [gate]",
                        m.label
                    )));
                }
            }
        }
        config.gate_spec()?;
        Ok(config)
    }

    /// The `[[model]]` labelled `label`, if any.
    pub fn model(&self, label: &str) -> Option<&ModelConfig> {
        self.model.iter().find(|m| m.label == label)
    }

    /// The `[[model]]` whose cohort is `dir` (compared after resolving both paths), if any.
    pub fn model_for_dir(&self, dir: &Path) -> Option<&ModelConfig> {
        let want = dir.canonicalize().ok()?;
        self.model.iter().find(|m| {
            m.cohort
                .as_ref()
                .and_then(|c| self.base_dir.join(c).canonicalize().ok())
                .is_some_and(|c| c == want)
        })
    }

    /// A model's cohort directory, resolved against the configuration file's directory.
    pub fn cohort_dir(&self, model: &ModelConfig) -> Option<PathBuf> {
        model.cohort.as_ref().map(|c| self.base_dir.join(c))
    }

    /// The gate thresholds: the top-level `[gate]` for every model, each model's own for it.
    pub fn gate_spec(&self) -> Result<GateSpec> {
        let mut spec = GateSpec::default();
        if let Some(g) = &self.gate {
            spec.limits = limits(g, "[gate]")?;
            if let Some(on) = &g.on {
                spec.on = Basis::parse(on).map_err(|e| Error::config(format!("[gate] on: {e}")))?;
            }
            spec.allow_skipped = g.allow_skipped.unwrap_or(false);
        }
        for m in &self.model {
            if let Some(g) = &m.gate {
                let own = limits(g, &format!("[[model]] `{}` gate", m.label))?;
                spec.model_limits.insert(m.label.clone(), own);
            }
        }
        Ok(spec)
    }
}

/// A `[gate]` section's thresholds (`section` names it in errors).
fn limits(g: &GateSection, section: &str) -> Result<Vec<Limit>> {
    let wrap = |e: Error| match e {
        Error::Config(m) => Error::config(format!("{section}: {m}")),
        other => other,
    };
    let mut out = Vec::new();
    let by_pool =
        |map: &Option<BTreeMap<String, f64>>, flag: &str, metric: fn(Pool) -> Metric| -> Result<Vec<Limit>> {
            let mut limits = Vec::new();
            for (pool, value) in map.iter().flatten() {
                let pool = Pool::parse(pool).ok_or_else(|| {
                    Error::config(format!(
                        "{flag}: pool `{pool}` is neither `full` nor a whole number of candidates >= 2"
                    ))
                })?;
                limits.push(Limit::new(metric(pool), *value, flag)?);
            }
            Ok(limits)
        };
    out.extend(by_pool(&g.max_lift, "max_lift", Metric::Lift).map_err(wrap)?);
    out.extend(by_pool(&g.max_recall_at_1, "max_recall_at_1", Metric::RecallAt1).map_err(wrap)?);
    if let Some(v) = g.max_reid_rank1 {
        out.push(Limit::new(Metric::ReidRank1, v, "max_reid_rank1").map_err(wrap)?);
    }
    if let Some(v) = g.min_utility {
        out.push(Limit::new(Metric::Utility, v, "min_utility").map_err(wrap)?);
    }
    for (name, v) in g.max_attribute_auroc.iter().flatten() {
        out.push(Limit::new(Metric::AttributeAuroc(name.clone()), *v, "max_attribute_auroc").map_err(wrap)?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The full example in docs/AUDIT-CONFIG.md (between its START/END markers) parses, and
    /// says what the documentation says it says.
    #[test]
    fn the_documented_example_parses() {
        let doc = include_str!("../../../../docs/AUDIT-CONFIG.md");
        let example = example_of(doc);
        let config = AuditConfig::parse(example).unwrap();
        assert_eq!(config.seed, Some(0));
        assert_eq!(config.model.len(), 2);
        let specialist = config.model("cxr-specialist").unwrap();
        assert_eq!(specialist.relink.as_ref().unwrap().pools, Some(vec![10, 100]));
        let gate = config.gate_spec().unwrap();
        assert_eq!(gate.on, Basis::CiHigh);
        assert!(gate.limits.contains(&Limit { metric: Metric::Lift(Pool::Size(100)), threshold: 30.0 }));
        assert!(gate
            .limits
            .contains(&Limit { metric: Metric::AttributeAuroc("sex".into()), threshold: 0.85 }));
        let own = gate.limits_for(Some("cxr-specialist"));
        assert!(own.contains(&Limit { metric: Metric::ReidRank1, threshold: 0.6 }), "{own:?}");
        assert!(!own.contains(&Limit { metric: Metric::ReidRank1, threshold: 0.5 }), "{own:?}");
    }

    /// The text between `<!-- START audit.toml -->` and `<!-- END audit.toml -->`, without
    /// the code fence.
    pub(crate) fn example_of(doc: &str) -> &str {
        let start = doc.find("<!-- START audit.toml -->").expect("START marker");
        let end = doc.find("<!-- END audit.toml -->").expect("END marker");
        let block = &doc[start..end];
        let open = block.find("```toml\n").expect("a toml code block") + "```toml\n".len();
        let close = block.rfind("```").expect("closing fence");
        &block[open..close]
    }

    #[test]
    fn unknown_keys_bad_values_and_misplaced_keys_are_errors() {
        for (text, needle) in [
            ("[gate]\nmax_lfit = { full = 5 }\n", "max_lfit"),
            ("[relink]\npools = \"10\"\n", "pools"),
            ("[relink]\nhard_negatives = \"sometimes\"\n", "hard_negatives"),
            ("[gate]\nmax_reid_rank1 = 30\n", "not a proportion"),
            ("[gate]\nmax_lift = { \"1\" = 5 }\n", "pool `1`"),
            ("[gate]\non = \"upper\"\n", "--on upper"),
            ("[[model]]\nlabel = \"a\"\n[[model]]\nlabel = \"a\"\n", "twice"),
            ("[[model]]\nlabel = \"\"\n", "label"),
            ("[[model]]\nlabel = \"a\"\n[model.gate]\non = \"ci-high\"\n", "top-level [gate]"),
            ("colour = 3\n", "colour"),
        ] {
            let err = AuditConfig::parse(text).unwrap_err().to_string();
            assert!(err.contains(needle), "{text:?}: {err}");
        }
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("audit.toml");
        std::fs::write(&path, "seed = \"zero\"\n").unwrap();
        let err = AuditConfig::load(&path).unwrap_err().to_string();
        assert!(err.contains("audit.toml") && err.contains("seed"), "{err}");
    }

    #[test]
    fn cohort_paths_resolve_against_the_file() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(tmp.path().join("cohorts/a")).unwrap();
        let path = tmp.path().join("audit.toml");
        std::fs::write(&path, "[[model]]\nlabel = \"m\"\ncohort = \"cohorts/a\"\n").unwrap();
        let config = AuditConfig::load(&path).unwrap();
        let m = config.model("m").unwrap();
        assert_eq!(config.cohort_dir(m).unwrap(), tmp.path().join("cohorts/a"));
        assert_eq!(
            config.model_for_dir(&tmp.path().join("cohorts/./a")).map(|m| m.label.as_str()),
            Some("m")
        );
        assert!(config.model_for_dir(tmp.path()).is_none());
    }
}
