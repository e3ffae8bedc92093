//! Stronger attackers than plain cosine nearest-neighbour (issue 8): hubness corrections
//! (CSLS, inverted softmax, QB-Norm), 1:1 assignment, leaked-pair alignment (Procrustes,
//! ridge), each scored against a control baseline. A risk number is only as good as the
//! strongest attack tried, so audits report every attack and name the strongest.
//!
//! The entry point is [`compare`]: an [`AttackTask`] (queries, gallery, the truth as
//! engine [`Targets`]) and the attacker's [`Side`] data — a [`SideInfo`] task of labelled
//! pairs disjoint from the attacked queries, or a patient-grouped cross-fitting of the
//! attacked queries themselves (fold f attacked with what the other folds give: the
//! inverted-softmax temperature, QB-Norm's query bank, the leaked pairs) — give an
//! [`AttackComparison`] whose JSON holds `strongest_attack`, `attacks` and
//! `skipped_attacks` (docs/REPORTS.md). An attack named in [`AttackConfig::named`] that
//! cannot run is an error; any other that cannot is listed in `skipped_attacks`. Audits embed it: relink attaches one
//! per direction; re-identification can do the same with its own targets (same-view
//! tasks: assignment and alignment need paired views and are skipped there).
//!
//! Every ranking attack is cosine plus a per-gallery-item offset, or cosine after a linear
//! map, so all run in the engine's blocked pass (no n x n matrix); the control is read off
//! the same score rows ([`evaluate()`]). Methods and references: docs/METHODS.md, "Stronger
//! attackers".

pub mod align;
pub mod assignment;
mod compare;
pub mod control;
mod cross_fitted;
pub mod evaluate;
pub mod hubness;
pub mod linear_metric;
pub mod neighbourhood;
mod report;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_grid;
#[cfg(test)]
mod tests_side;

use serde::Serialize;

use crate::audit::cross_fit::CrossFit;
use crate::engine::{BlockSizes, Rows, Targets};
use crate::error::{Error, Result};

pub use assignment::{AssignmentSettings, Solver};
pub use compare::{compare, compare_with_cosine, plain_cosine_pass};
pub use control::{decoy_targets, normalized_risk, Decoys};
pub use evaluate::{evaluate, evaluate_with_columns, Evaluation, QueryOutcome};
pub use hubness::{BetaPoint, DEFAULT_BETA, DEFAULT_BETA_GRID};
pub use report::{AttackComparison, AttackRow, FoldParameters, Parameters, SideReport, SkippedAttack};

/// The attacks linkrisk knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AttackName {
    /// Plain cosine nearest neighbour (the baseline; always run when any attack is).
    Cosine,
    /// Cross-domain similarity local scaling.
    Csls,
    /// Inverted softmax over the attacked queries.
    InvertedSoftmax,
    /// Query-bank normalisation with dynamic inverted softmax.
    QbNorm,
    /// One-to-one assignment of a batch of queries to their batch of matches.
    Assignment,
    /// Orthogonal Procrustes map from leaked pairs.
    Procrustes,
    /// Ridge-regression map from leaked pairs.
    Ridge,
}

impl AttackName {
    /// Every attack, in the order they are run and reported.
    pub const ALL: [AttackName; 7] = [
        AttackName::Cosine,
        AttackName::Csls,
        AttackName::InvertedSoftmax,
        AttackName::QbNorm,
        AttackName::Assignment,
        AttackName::Procrustes,
        AttackName::Ridge,
    ];

    /// The name used on the command line and in the JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            AttackName::Cosine => "cosine",
            AttackName::Csls => "csls",
            AttackName::InvertedSoftmax => "inverted_softmax",
            AttackName::QbNorm => "qb_norm",
            AttackName::Assignment => "assignment",
            AttackName::Procrustes => "procrustes",
            AttackName::Ridge => "ridge",
        }
    }

    /// Parse `--attack` items (`all`, or names; `-` and `_` interchangeable). The result is
    /// sorted, without repeats, and always starts with `cosine` (the baseline).
    pub fn parse_list<S: AsRef<str>>(items: &[S]) -> Result<Vec<AttackName>> {
        let mut out = vec![AttackName::Cosine];
        for item in items {
            let item = item.as_ref().trim().to_ascii_lowercase().replace('-', "_");
            if item == "all" {
                out.extend(AttackName::ALL);
                continue;
            }
            match AttackName::ALL.iter().find(|a| a.as_str() == item) {
                Some(&a) => out.push(a),
                None => {
                    let known: Vec<&str> = AttackName::ALL.iter().map(|a| a.as_str()).collect();
                    return Err(Error::config(format!(
                        "--attack: unknown attack `{item}`; use `all` or some of {}",
                        known.join(", ")
                    )));
                }
            }
        }
        out.sort();
        out.dedup();
        Ok(out)
    }

    /// The attacks of `--attack` items named explicitly (not through `all`; `cosine` only
    /// when named): those must run, or the comparison is an error. Unknown names are errors.
    pub fn parse_named<S: AsRef<str>>(items: &[S]) -> Result<Vec<AttackName>> {
        let mut out = Vec::new();
        for item in items {
            let normalised = item.as_ref().trim().to_ascii_lowercase().replace('-', "_");
            if normalised != "all" {
                out.extend(
                    AttackName::parse_list(&[item.as_ref()])?
                        .into_iter()
                        .filter(|a| *a != AttackName::Cosine || normalised == "cosine"),
                );
            }
        }
        out.sort();
        out.dedup();
        Ok(out)
    }

    /// Whether the attack needs paired views (query i's match is a distinct gallery item).
    pub fn needs_pairs(self) -> bool {
        matches!(self, AttackName::Assignment | AttackName::Procrustes | AttackName::Ridge)
    }

    /// Whether the attack needs the attacker's side data (a temperature tuned on labelled
    /// pairs is optional for the inverted softmax; QB-Norm needs a query bank, alignment
    /// leaked pairs).
    pub fn needs_side(self) -> bool {
        matches!(self, AttackName::QbNorm | AttackName::Procrustes | AttackName::Ridge)
    }

    /// Whether the attack compares the views by cosine (needs one shared dimension).
    pub fn needs_shared_space(self) -> bool {
        !matches!(self, AttackName::Procrustes | AttackName::Ridge)
    }
}

/// Settings of an attack comparison. Audits fill `pool_sizes`, `seed`, `level`, `sizes`
/// from their own configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct AttackConfig {
    /// Attacks to run (cosine is always added).
    pub attacks: Vec<AttackName>,
    /// Attacks named explicitly (`--attack procrustes`): each must produce at least one row,
    /// else the comparison is an error saying why and how to fix it. Attacks requested only
    /// through `all` that cannot run are listed in `skipped_attacks`.
    pub named: Vec<AttackName>,
    /// Neighbours k of CSLS's local-scaling terms.
    pub csls_k: usize,
    /// Inverse temperatures tried when tuning the inverted softmax on the side task.
    pub beta_grid: Vec<f64>,
    /// Numbers of leaked pairs m for Procrustes and ridge.
    pub leaked_pairs: Vec<usize>,
    /// Random-pool sizes reported besides the full database (and the assignment's batches).
    pub pool_sizes: Vec<usize>,
    /// Assignment settings.
    pub assignment: AssignmentSettings,
    /// Seed of decoys, batches, leaked-pair subsets.
    pub seed: u64,
    /// Interval coverage.
    pub level: f64,
    /// Kernel block sizes.
    pub sizes: BlockSizes,
}

impl Default for AttackConfig {
    fn default() -> Self {
        AttackConfig {
            attacks: vec![AttackName::Cosine],
            named: Vec::new(),
            csls_k: 10,
            beta_grid: DEFAULT_BETA_GRID.to_vec(),
            leaked_pairs: vec![10, 100, 1000],
            pool_sizes: vec![10, 100, 1000, 10_000],
            assignment: AssignmentSettings::default(),
            seed: 0,
            level: 0.95,
            sizes: BlockSizes::default(),
        }
    }
}

impl AttackConfig {
    /// Reject bad values with a message naming the flag.
    pub fn validate(&self) -> Result<()> {
        if self.csls_k == 0 {
            return Err(Error::config("--csls-k must be at least 1"));
        }
        crate::limits::check("--csls-k", self.csls_k, 1, crate::limits::MAX_CSLS_K)?;
        if let Some(b) = self.beta_grid.iter().find(|b| !(b.is_finite() && **b > 0.0)) {
            return Err(Error::config(format!("inverted-softmax beta {b} must be positive")));
        }
        if self.beta_grid.is_empty() {
            return Err(Error::config("the inverted-softmax beta grid is empty"));
        }
        if self.leaked_pairs.contains(&0) {
            return Err(Error::config("--leaked-pairs: 0 pairs fit nothing; use 1 or more"));
        }
        if let Some(&s) = self.pool_sizes.iter().find(|&&s| s < 2) {
            return Err(Error::config(format!("--pools: pool size {s} is too small")));
        }
        if !(self.level > 0.0 && self.level < 1.0) {
            return Err(Error::config(format!("interval level must be in (0, 1), got {}", self.level)));
        }
        self.assignment.validate()?;
        self.sizes.validate()
    }
}

/// What is attacked: queries, the gallery and the truth.
#[derive(Debug, Clone, Copy)]
pub struct AttackTask<'a> {
    /// Query rows (unit norm).
    pub queries: Rows<'a>,
    /// Gallery rows (unit norm); of the queries' dimension unless only learned maps
    /// (Procrustes, ridge) are to link them.
    pub gallery: Rows<'a>,
    /// Per query: its true match (anchor) and other positives, and exclusions.
    pub targets: &'a Targets,
    /// Paired views: query i's anchor is a distinct gallery item for every query (enables
    /// assignment and leaked-pair alignment).
    pub paired: bool,
    /// Whether the targets' exclusions are pairs the attacker never sees (re-ID: the
    /// query's own record and study), removed from the hubness corrections' neighbourhoods
    /// too. False for relink, where exclusions are an evaluation convention (the twin
    /// record of a study shares its report) and the attacker sees every pair.
    pub neighbourhood_exclusions: bool,
}

impl AttackTask<'_> {
    fn validate(&self, what: &str) -> Result<()> {
        if self.targets.n_queries() != self.queries.n() || self.targets.n_gallery() != self.gallery.n() {
            return Err(Error::config(format!(
                "{what}: targets describe {} x {} but the task has {} queries x {} gallery items",
                self.targets.n_queries(),
                self.targets.n_gallery(),
                self.queries.n(),
                self.gallery.n()
            )));
        }
        if let Some(q) = (0..self.queries.n()).find(|&q| self.targets.anchor(q).is_none()) {
            return Err(Error::config(format!("{what}: query {q} has no true match")));
        }
        if self.paired {
            let mut seen = vec![false; self.gallery.n()];
            for q in 0..self.queries.n() {
                let a = self.targets.anchor(q).expect("checked");
                if std::mem::replace(&mut seen[a], true) {
                    return Err(Error::config(format!(
                        "{what}: gallery item {a} is the true match of two queries; the task is not paired"
                    )));
                }
            }
        }
        Ok(())
    }
}

/// Labelled pairs the attacker holds besides the attacked queries, disjoint from them.
#[derive(Debug, Clone, Copy)]
pub struct SideInfo<'a> {
    /// The pairs, as a task of their own.
    pub task: AttackTask<'a>,
    /// Where they come from (e.g. `split train`), for the report.
    pub source: &'a str,
}

/// The attacker's side data in a comparison.
#[derive(Debug, Clone, Copy)]
pub enum Side<'a> {
    /// None: the attacks that need it are skipped (or, when named, an error) for this reason.
    None(&'a str),
    /// Labelled pairs disjoint from the attacked queries (e.g. another split).
    Separate(&'a SideInfo<'a>),
    /// Cross-fitting within the attacked task: `folds` assigns each attacked query to a fold
    /// (grouped by patient by the caller); fold f is attacked with what the other folds'
    /// queries and true matches give. `reason` says why (e.g. no `train` split).
    CrossFit {
        /// Fold of each attacked query.
        folds: &'a CrossFit,
        /// Why cross-fitting was chosen, when it was chosen automatically.
        reason: Option<&'a str>,
    },
}

/// Copy rows `idx` of `rows` into one contiguous buffer.
pub fn gather_rows(rows: Rows<'_>, idx: &[usize]) -> Vec<f32> {
    let mut out = Vec::with_capacity(idx.len() * rows.dim());
    for &i in idx {
        out.extend_from_slice(rows.row(i));
    }
    out
}
