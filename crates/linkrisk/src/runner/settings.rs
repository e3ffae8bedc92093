//! The settings of one model's audits, resolved from three layers — the model's own
//! `[[model]]` section, the configuration's top level, the runner's defaults — field by field,
//! into the audits' validated `Config` types. Everything is checked here, before any audit
//! runs, so a bad value in the tenth model's section fails the run in a second, not after
//! nine audits.

use crate::attack::{AttackConfig, AttackName};
use crate::audit::attributes::{AgeThreshold, Attribute, AttributesConfig};
use crate::audit::reid::{Attackers, ReidConfig};
use crate::audit::utility::{BlankPolicy, LabelPolicy, UncertainPolicy, UtilityConfig};
use crate::audit::{AttackSide, Direction, MatchLevel, RelinkConfig};
use crate::error::{Error, Result};
use crate::probe::ProbeConfig;

use super::config::{AgeValue, AuditConfig, AutoWord, ModelConfig, Toggle};

/// The audits the runner knows, in the order it runs them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuditKind {
    /// Cross-modal re-linkage, both directions.
    Relink,
    /// Patient re-identification, every attacker.
    Reid,
    /// Attribute inference, stratified by re-identification.
    Attributes,
    /// Linear-probe utility over the findings.
    Utility,
}

impl AuditKind {
    /// Every audit, in run order.
    pub const ALL: [AuditKind; 4] =
        [AuditKind::Relink, AuditKind::Reid, AuditKind::Attributes, AuditKind::Utility];

    /// The audit's name (its JSON `"audit"` field).
    pub fn as_str(self) -> &'static str {
        match self {
            AuditKind::Relink => "relink",
            AuditKind::Reid => "reid",
            AuditKind::Attributes => "attributes",
            AuditKind::Utility => "utility",
        }
    }

    fn parse(text: &str) -> Result<AuditKind> {
        AuditKind::ALL.into_iter().find(|a| a.as_str() == text.trim()).ok_or_else(|| {
            Error::config(format!("audits: unknown audit `{text}`; use relink, reid, attributes, utility"))
        })
    }
}

/// Whether pathology-matched pools are evaluated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HardNegatives {
    /// Where the cohort has the finding columns; listed as not run elsewhere.
    Auto,
    /// Always (an error on a cohort without findings).
    On,
    /// Never.
    Off,
}

/// Everything the runner does on one model, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// Audits to run, in order.
    pub audits: Vec<AuditKind>,
    /// Re-linkage (its `hard_negatives` is decided per cohort from [`Settings::hard_negatives`]).
    pub relink: RelinkConfig,
    /// Pathology-matched pools.
    pub hard_negatives: HardNegatives,
    /// Re-identification.
    pub reid: ReidConfig,
    /// Attribute inference.
    pub attributes: AttributesConfig,
    /// Stratify the attributes by re-identification.
    pub stratify_by_reid: bool,
    /// Whose re-identified flags stratify them.
    pub reid_attacker: Attackers,
    /// Utility.
    pub utility: UtilityConfig,
    /// Which settings the configuration named explicitly (a view it names must exist, a
    /// default view that does not is listed as not run).
    pub explicit: Explicit,
}

/// Settings named explicitly in the configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Explicit {
    /// `relink.query` or `relink.gallery`.
    pub relink_views: bool,
    /// `reid.view`.
    pub reid_view: bool,
    /// `attributes.view`.
    pub attributes_view: bool,
    /// `attributes.targets`.
    pub attribute_targets: bool,
    /// `utility.view`.
    pub utility_view: bool,
}

impl Settings {
    /// `linkrisk audit`'s defaults: every audit; relink in both directions at pools
    /// 10..10,000 with hard negatives where findings exist and every attack; re-ID with
    /// every attacker and every attack that applies to one view; attributes stratified by
    /// nearest-neighbour re-identification; utility. Seeds 0; the audits' own defaults
    /// otherwise.
    pub fn defaults() -> Settings {
        let relink = RelinkConfig {
            direction: Direction::Both,
            attack: Some(AttackConfig { attacks: AttackName::ALL.to_vec(), ..AttackConfig::default() }),
            ..RelinkConfig::default()
        };
        let reid = ReidConfig {
            attackers: Attackers::Auto,
            attack: Some(AttackConfig { attacks: single_view_attacks(), ..AttackConfig::default() }),
            ..ReidConfig::default()
        };
        Settings {
            audits: AuditKind::ALL.to_vec(),
            relink,
            hard_negatives: HardNegatives::Auto,
            reid,
            attributes: AttributesConfig::default(),
            stratify_by_reid: true,
            reid_attacker: Attackers::NearestNeighbour,
            utility: UtilityConfig::default(),
            explicit: Explicit::default(),
        }
    }

    /// The same settings with `seed` for every audit (pools, bootstrap, probes, attackers).
    pub fn with_seed(mut self, seed: u64) -> Settings {
        self.relink.seed = seed;
        self.reid.seed = seed;
        self.attributes.probe.seed = seed;
        self.utility.probe.seed = seed;
        self
    }

    /// `base` overridden by the configuration's top level and then by `model`'s section;
    /// validated.
    pub fn resolve(
        base: &Settings,
        config: Option<&AuditConfig>,
        model: Option<&ModelConfig>,
    ) -> Result<Settings> {
        let layers = Layers { model, top: config };
        let mut s = base.clone();
        if let Some(seed) = layers.pick(|m| m.seed, |t| t.seed) {
            s = s.with_seed(seed);
        }
        if let Some(audits) = layers.pick(|m| m.audits.clone(), |t| t.audits.clone()) {
            s.audits = audits.iter().map(|a| AuditKind::parse(a)).collect::<Result<_>>()?;
            if s.audits.is_empty() {
                return Err(Error::config(
                    "audits: empty; name at least one of relink, reid, attributes, utility",
                ));
            }
        }
        resolve_relink(&mut s, &layers)?;
        resolve_reid(&mut s, &layers)?;
        resolve_attributes(&mut s, &layers)?;
        resolve_utility(&mut s, &layers)?;
        s.validate()?;
        Ok(s)
    }

    /// Validate every audit's configuration.
    pub fn validate(&self) -> Result<()> {
        self.relink.validate()?;
        self.reid.validate()?;
        self.attributes.validate()?;
        self.utility.validate()
    }
}

/// The attacks that apply to one view (re-ID): the paired-view ones (1:1 assignment and the
/// leaked-pair alignments) need a second view and are not requested.
pub fn single_view_attacks() -> Vec<AttackName> {
    AttackName::ALL.into_iter().filter(|a| !a.needs_pairs()).collect()
}

/// A model's section over the top level.
struct Layers<'a> {
    model: Option<&'a ModelConfig>,
    top: Option<&'a AuditConfig>,
}

impl Layers<'_> {
    fn pick<T>(
        &self,
        m: impl Fn(&ModelConfig) -> Option<T>,
        t: impl Fn(&AuditConfig) -> Option<T>,
    ) -> Option<T> {
        self.model.and_then(m).or_else(|| self.top.and_then(t))
    }
}

/// Pick a field of one section: the model's, else the top level's.
macro_rules! field {
    ($layers:expr, $section:ident . $field:ident) => {
        $layers.pick(
            |m| m.$section.as_ref().and_then(|s| s.$field.clone()),
            |t| t.$section.as_ref().and_then(|s| s.$field.clone()),
        )
    };
}

/// `attacks` items as an attack configuration (`None` for `["none"]`); `single_view` turns
/// `all` into the attacks that apply to one view.
fn attacks(
    items: &[String],
    base: Option<&AttackConfig>,
    single_view: bool,
    key: &str,
) -> Result<Option<AttackConfig>> {
    let items: Vec<&str> = items.iter().map(|s| s.trim()).filter(|s| !s.is_empty()).collect();
    if items.iter().any(|s| s.eq_ignore_ascii_case("none")) {
        if items.len() > 1 {
            return Err(Error::config(format!("{key}: `none` cannot be combined with attack names")));
        }
        return Ok(None);
    }
    let mut names = AttackName::parse_list(&items).map_err(|e| Error::config(format!("{key}: {e}")))?;
    if single_view && items.iter().any(|s| s.eq_ignore_ascii_case("all")) {
        let explicit: Vec<AttackName> = AttackName::parse_list(
            &items.iter().filter(|s| !s.eq_ignore_ascii_case("all")).collect::<Vec<_>>(),
        )?;
        names.retain(|a| !a.needs_pairs() || explicit.contains(a));
    }
    Ok(Some(AttackConfig { attacks: names, ..base.cloned().unwrap_or_default() }))
}

fn resolve_relink(s: &mut Settings, l: &Layers<'_>) -> Result<()> {
    let r = &mut s.relink;
    if let Some(v) = field!(l, relink.query) {
        r.query_view = v;
        s.explicit.relink_views = true;
    }
    if let Some(v) = field!(l, relink.gallery) {
        r.gallery_view = v;
        s.explicit.relink_views = true;
    }
    if let Some(v) = field!(l, relink.split) {
        r.split = (v != "all").then_some(v);
    }
    if let Some(v) = field!(l, relink.pools) {
        r.pool_sizes = v;
    }
    if let Some(v) = field!(l, relink.trials) {
        r.trials = v;
    }
    if let Some(v) = field!(l, relink.bootstrap) {
        r.bootstrap_replicates = v;
    }
    if let Some(v) = field!(l, relink.hard_negatives) {
        s.hard_negatives = match v {
            Toggle::Bool(true) => HardNegatives::On,
            Toggle::Bool(false) => HardNegatives::Off,
            Toggle::Word(AutoWord::Auto) => HardNegatives::Auto,
        };
    }
    if let Some(v) = field!(l, relink.direction) {
        r.direction = match v.as_str() {
            "both" => Direction::Both,
            "query-to-gallery" => Direction::QueryToGallery,
            other => {
                return Err(Error::config(format!(
                    "relink.direction `{other}`: use both or query-to-gallery"
                )))
            }
        };
    }
    if let Some(v) = field!(l, relink.match_level) {
        r.match_level = match v.as_str() {
            "study" => MatchLevel::Study,
            "patient" => MatchLevel::Patient,
            other => return Err(Error::config(format!("relink.match `{other}`: use study or patient"))),
        };
    }
    if let Some(v) = field!(l, relink.attack_side) {
        r.attack_side = match v.as_str() {
            "auto" => AttackSide::Auto,
            "none" => AttackSide::None,
            split => AttackSide::Split(split.to_string()),
        };
    }
    if let Some(items) = field!(l, relink.attacks) {
        r.attack = attacks(&items, r.attack.as_ref(), false, "relink.attacks")?;
    }
    if let Some(attack) = r.attack.as_mut() {
        if let Some(k) = field!(l, relink.csls_k) {
            attack.csls_k = k;
        }
        if let Some(m) = field!(l, relink.leaked_pairs) {
            attack.leaked_pairs = m;
        }
    }
    Ok(())
}

fn resolve_reid(s: &mut Settings, l: &Layers<'_>) -> Result<()> {
    let r = &mut s.reid;
    if let Some(v) = field!(l, reid.view) {
        r.view = v;
        s.explicit.reid_view = true;
    }
    if let Some(v) = field!(l, reid.split) {
        r.split = v;
    }
    if let Some(v) = field!(l, reid.train_split) {
        r.train_split = v;
    }
    if let Some(v) = field!(l, reid.attacker) {
        r.attackers = attackers(&v, "reid.attacker")?;
    }
    if let Some(v) = field!(l, reid.bootstrap) {
        r.bootstrap_replicates = v;
    }
    if let Some(v) = field!(l, reid.negatives_per_query) {
        r.negatives_per_query = v;
    }
    if let Some(v) = field!(l, reid.include_same_study) {
        r.include_same_study = v;
    }
    if let Some(items) = field!(l, reid.attacks) {
        r.attack = attacks(&items, r.attack.as_ref(), true, "reid.attacks")?;
    }
    if let (Some(attack), Some(k)) = (r.attack.as_mut(), field!(l, reid.csls_k)) {
        attack.csls_k = k;
    }
    Ok(())
}

/// `auto`, `none`, `linear-metric` (beside nearest neighbour, as `linkrisk reid --attacker`).
fn attackers(text: &str, key: &str) -> Result<Attackers> {
    match text.trim() {
        "auto" => Ok(Attackers::Auto),
        "none" | "nearest-neighbour" => Ok(Attackers::NearestNeighbour),
        "linear-metric" | "both" => Ok(Attackers::Both),
        other => Err(Error::config(format!("{key} `{other}`: use auto, none or linear-metric"))),
    }
}

fn resolve_attributes(s: &mut Settings, l: &Layers<'_>) -> Result<()> {
    let a = &mut s.attributes;
    if let Some(v) = field!(l, attributes.view) {
        a.view = v;
        s.explicit.attributes_view = true;
    }
    if let Some(v) = field!(l, attributes.targets) {
        a.targets = v.iter().map(|t| t.parse::<Attribute>()).collect::<Result<_>>()?;
        s.explicit.attribute_targets = true;
    }
    if let Some(v) = field!(l, attributes.age_threshold) {
        a.age_threshold = match v {
            AgeValue::Years(y) => format!("{y}").parse::<AgeThreshold>()?,
            AgeValue::Word(w) => w.parse::<AgeThreshold>()?,
        };
    }
    if let Some(v) = field!(l, attributes.min_group) {
        a.min_group_records = v;
    }
    if let Some(v) = field!(l, attributes.train_split) {
        a.train_split = v;
    }
    if let Some(v) = field!(l, attributes.eval_split) {
        a.eval_split = v;
    }
    if let Some(v) = field!(l, attributes.folds) {
        a.probe = ProbeConfig { n_folds: v, ..a.probe.clone() };
    }
    if let Some(v) = field!(l, attributes.stratify_by_reid) {
        s.stratify_by_reid = v;
    }
    if let Some(v) = field!(l, attributes.reid_attacker) {
        s.reid_attacker = attackers(&v, "attributes.reid_attacker")?;
    }
    Ok(())
}

fn resolve_utility(s: &mut Settings, l: &Layers<'_>) -> Result<()> {
    let u = &mut s.utility;
    if let Some(v) = field!(l, utility.view) {
        u.view = v;
        s.explicit.utility_view = true;
    }
    if let Some(v) = field!(l, utility.train_split) {
        u.train_split = v;
    }
    if let Some(v) = field!(l, utility.eval_split) {
        u.eval_split = v;
    }
    if let Some(v) = field!(l, utility.folds) {
        u.probe = ProbeConfig { n_folds: v, ..u.probe.clone() };
    }
    let uncertain = field!(l, utility.uncertain);
    let blank = field!(l, utility.blank);
    u.labels = LabelPolicy {
        uncertain: match uncertain.as_deref() {
            None => u.labels.uncertain,
            Some("exclude") => UncertainPolicy::Exclude,
            Some("negative") => UncertainPolicy::Negative,
            Some("positive") => UncertainPolicy::Positive,
            Some(other) => {
                return Err(Error::config(format!(
                    "utility.uncertain `{other}`: use exclude, negative or positive"
                )))
            }
        },
        blank: match blank.as_deref() {
            None => u.labels.blank,
            Some("negative") => BlankPolicy::Negative,
            Some("exclude") => BlankPolicy::Exclude,
            Some(other) => {
                return Err(Error::config(format!("utility.blank `{other}`: use negative or exclude")))
            }
        },
    };
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(text: &str) -> AuditConfig {
        AuditConfig::parse(text).unwrap()
    }

    #[test]
    fn a_model_section_overrides_the_top_level_field_by_field() {
        let c = config(
            "seed = 3\n[relink]\npools = [10, 100]\ntrials = 5\nattacks = [\"csls\"]\n\
             [[model]]\nlabel = \"m\"\nseed = 9\n[model.relink]\ntrials = 7\nhard_negatives = false\n\
             [model.reid]\nattacks = [\"all\"]\nattacker = \"none\"\n",
        );
        let top = Settings::resolve(&Settings::defaults(), Some(&c), None).unwrap();
        assert_eq!(
            (top.relink.seed, top.relink.trials, top.relink.pool_sizes.clone()),
            (3, 5, vec![10, 100])
        );
        assert_eq!(top.relink.attack.as_ref().unwrap().attacks, [AttackName::Cosine, AttackName::Csls]);
        assert_eq!(top.hard_negatives, HardNegatives::Auto);
        assert_eq!(top.utility.probe.seed, 3);
        let m = Settings::resolve(&Settings::defaults(), Some(&c), c.model("m")).unwrap();
        assert_eq!((m.relink.seed, m.reid.seed, m.attributes.probe.seed), (9, 9, 9));
        assert_eq!(
            (m.relink.trials, m.relink.pool_sizes.clone()),
            (7, vec![10, 100]),
            "trials from the model, pools from the top"
        );
        assert_eq!(m.hard_negatives, HardNegatives::Off);
        assert_eq!(m.reid.attackers, Attackers::NearestNeighbour);
        // Re-ID's `all` is every single-view attack.
        assert_eq!(m.reid.attack.as_ref().unwrap().attacks, single_view_attacks());
        assert!(single_view_attacks().iter().all(|a| !a.needs_pairs()) && single_view_attacks().len() == 4);
    }

    #[test]
    fn defaults_are_both_directions_and_every_attack() {
        let d = Settings::defaults();
        assert_eq!(d.relink.direction, Direction::Both);
        assert_eq!(d.relink.attack.as_ref().unwrap().attacks, AttackName::ALL.to_vec());
        assert_eq!(d.audits, AuditKind::ALL.to_vec());
        assert!(d.stratify_by_reid && d.reid_attacker == Attackers::NearestNeighbour);
        d.validate().unwrap();
    }

    #[test]
    fn bad_values_name_their_key() {
        for (text, needle) in [
            ("[relink]\ndirection = \"sideways\"\n", "relink.direction"),
            ("[relink]\nmatch = \"record\"\n", "relink.match"),
            ("[relink]\nattacks = [\"none\", \"csls\"]\n", "relink.attacks"),
            ("[relink]\nattacks = [\"magic\"]\n", "magic"),
            ("[relink]\ntrials = 0\n", "--trials"),
            ("[reid]\nattacker = \"oracle\"\n", "reid.attacker"),
            ("[attributes]\ntargets = [\"height\"]\n", "height"),
            ("[attributes]\nage_threshold = -1\n", "--age-threshold"),
            ("[utility]\nblank = \"positive\"\n", "utility.blank"),
            ("audits = [\"relink\", \"dance\"]\n", "dance"),
            ("audits = []\n", "audits"),
        ] {
            let c = config(text);
            let err = Settings::resolve(&Settings::defaults(), Some(&c), None).unwrap_err().to_string();
            assert!(err.contains(needle), "{text:?}: {err}");
        }
    }
}
