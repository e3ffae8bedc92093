//! Patient-grouped cross-fitting within the audited split: the attacker's side data when no
//! other split provides any (issue 14). The audited patients are split into K folds
//! (`--side-folds K`, seeded); fold f is attacked by an attacker fitted on the other folds'
//! records only, so every query is attacked exactly once and no patient's records sit on
//! both sides of any fit. The audits that fit something on side data (relink's leaked pairs,
//! query bank and temperature; reid's linear-metric attacker; the probes of `utility` and
//! `attributes`) use one [`CrossFit`] and say which protocol produced each number in a
//! [`SideProtocol`] (`"side": {"source": "cross_fit", "folds": K}` in their JSON).
//!
//! The assignment is `probe::folds::grouped_folds` (balanced by records, every patient in one
//! fold) on its own random stream (`side-folds`): sequential, seeded, the same on any
//! number of threads. The threat model of each cross-fitted attacker is in docs/METHODS.md
//! ("Attacker side data").

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::probe::folds::{grouped_folds, MAX_FOLDS};

/// Default number of cross-fitting folds (`--side-folds`).
pub const DEFAULT_SIDE_FOLDS: usize = 5;

/// The `source` of side data fitted by cross-fitting within the audited split.
pub const CROSS_FIT: &str = "cross_fit";

/// Which protocol produced the numbers of an audit that fits something on side data; its
/// JSON is the `side` object the report and `gate` read (docs/REPORTS.md).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SideProtocol {
    /// `split NAME` (another split's records) or `cross_fit` (folds of the audited split).
    pub source: String,
    /// Cross-fitting folds K (cross-fitting only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub folds: Option<usize>,
    /// Seed of the fold assignment (cross-fitting only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fold_seed: Option<u64>,
    /// Why cross-fitting was used when the setting was `auto` (e.g. no `train` split).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl SideProtocol {
    /// Side data from the records of split `name`.
    pub fn split(name: &str) -> SideProtocol {
        SideProtocol { source: format!("split {name}"), folds: None, fold_seed: None, reason: None }
    }

    /// Side data cross-fitted within the audited split.
    pub fn cross_fit(folds: &CrossFit, reason: Option<String>) -> SideProtocol {
        SideProtocol {
            source: CROSS_FIT.to_string(),
            folds: Some(folds.k()),
            fold_seed: Some(folds.seed),
            reason,
        }
    }

    /// Whether the numbers were cross-fitted.
    pub fn is_cross_fit(&self) -> bool {
        self.source == CROSS_FIT
    }
}

/// Where an audit's side data comes from (`--attack-side`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SideSource {
    /// The audit's side split when it can serve, else cross-fitting within the audited split
    /// (the reason is recorded in `side.reason`).
    #[default]
    Auto,
    /// Always cross-fit within the audited split (`--attack-side audited`).
    Audited,
    /// Only the audit's side split; an error (or, for optional attackers, a listed skip) when
    /// it cannot serve.
    Split,
}

/// Check `--side-folds`.
pub fn validate_folds(k: usize) -> Result<()> {
    if !(2..=MAX_FOLDS).contains(&k) {
        return Err(Error::config(format!(
            "--side-folds {k}: cross-fitting needs between 2 and {MAX_FOLDS} folds (default {DEFAULT_SIDE_FOLDS})"
        )));
    }
    Ok(())
}

/// A patient-grouped fold assignment of the audited records (or queries): fold f's members
/// are attacked by an attacker fitted on the other folds only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrossFit {
    fold: Vec<u8>,
    k: usize,
    seed: u64,
}

impl CrossFit {
    /// Assign `patient[i]` (the patient of item i, any ids) to `k` folds, every patient in
    /// one fold, folds balanced by items, seeded by `seed`. Errors (naming `--side-folds`)
    /// with fewer patients than folds.
    pub fn by_patient(patient: &[u32], k: usize, seed: u64) -> Result<CrossFit> {
        validate_folds(k)?;
        let fold = grouped_folds(
            patient,
            k,
            seed,
            "side-folds",
            "--side-folds",
            "an audited split with more patients",
        )?;
        Ok(CrossFit { fold, k, seed })
    }

    /// The same assignment restricted to items `idx` (e.g. the queries among the records):
    /// item j of the result is item `idx[j]`. A fold may be empty then.
    pub fn restrict(&self, idx: &[usize]) -> CrossFit {
        CrossFit { fold: idx.iter().map(|&i| self.fold[i]).collect(), k: self.k, seed: self.seed }
    }

    /// Number of folds K.
    pub fn k(&self) -> usize {
        self.k
    }

    /// Seed of the assignment.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// Items assigned.
    pub fn len(&self) -> usize {
        self.fold.len()
    }

    /// Whether no item is assigned.
    pub fn is_empty(&self) -> bool {
        self.fold.is_empty()
    }

    /// The fold of item `i`.
    pub fn fold(&self, i: usize) -> usize {
        usize::from(self.fold[i])
    }

    /// Fold of every item.
    pub fn folds(&self) -> &[u8] {
        &self.fold
    }

    /// Items of fold `f` (attacked by fold f's attacker), ascending.
    pub fn members(&self, f: usize) -> Vec<usize> {
        (0..self.fold.len()).filter(|&i| usize::from(self.fold[i]) == f).collect()
    }

    /// Items of every other fold (fold f's attacker is fitted on them), ascending.
    pub fn others(&self, f: usize) -> Vec<usize> {
        (0..self.fold.len()).filter(|&i| usize::from(self.fold[i]) != f).collect()
    }

    /// Items per fold.
    pub fn sizes(&self) -> Vec<usize> {
        let mut sizes = vec![0; self.k];
        for &f in &self.fold {
            sizes[usize::from(f)] += 1;
        }
        sizes
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{HashMap, HashSet};

    use proptest::prelude::*;

    use super::*;

    /// Patients of `sizes.len()` patients with `sizes[p]` items each, interleaved.
    fn interleaved(sizes: &[usize]) -> Vec<u32> {
        let mut patient = Vec::new();
        let max = sizes.iter().copied().max().unwrap_or(0);
        for round in 0..max {
            for (p, &s) in sizes.iter().enumerate() {
                if round < s {
                    patient.push(p as u32 * 5 + 1);
                }
            }
        }
        patient
    }

    proptest! {
        /// Brute force over small inputs: for every fold, attacked and fitting items
        /// partition all items, share no patient, and over all folds every item is attacked
        /// exactly once; the assignment is a function of (patients, K, seed).
        #[test]
        fn every_item_attacked_once_and_no_patient_on_both_sides(
            sizes in proptest::collection::vec(1usize..5, 2..40),
            k in 2usize..7,
            seed in 0u64..500,
        ) {
            prop_assume!(sizes.len() >= k);
            let patient = interleaved(&sizes);
            let cf = CrossFit::by_patient(&patient, k, seed).unwrap();
            prop_assert_eq!(cf.len(), patient.len());
            let mut attacked = vec![0usize; patient.len()];
            for f in 0..k {
                let members = cf.members(f);
                let others = cf.others(f);
                prop_assert!(!members.is_empty(), "fold {} is empty", f);
                prop_assert_eq!(members.len() + others.len(), patient.len());
                let inside: HashSet<u32> = members.iter().map(|&i| patient[i]).collect();
                for &i in &others {
                    prop_assert!(!inside.contains(&patient[i]), "patient {} on both sides", patient[i]);
                }
                for &i in &members {
                    prop_assert_eq!(cf.fold(i), f);
                    attacked[i] += 1;
                }
            }
            prop_assert!(attacked.iter().all(|&a| a == 1), "{:?}", attacked);
            prop_assert_eq!(cf.sizes().iter().sum::<usize>(), patient.len());
            prop_assert_eq!(&cf, &CrossFit::by_patient(&patient, k, seed).unwrap());
            // Restricting to a subset keeps each item's fold.
            let subset: Vec<usize> = (0..patient.len()).step_by(2).collect();
            let restricted = cf.restrict(&subset);
            for (j, &i) in subset.iter().enumerate() {
                prop_assert_eq!(restricted.fold(j), cf.fold(i));
            }
        }
    }

    #[test]
    fn folds_are_balanced_seeded_and_differ_from_the_probe_folds() {
        let patient: Vec<u32> = (0..300).map(|i| i / 3).collect();
        let a = CrossFit::by_patient(&patient, 5, 7).unwrap();
        assert_eq!(a.sizes(), vec![60; 5]);
        assert_ne!(a, CrossFit::by_patient(&patient, 5, 8).unwrap());
        // Its own random stream: not the probes' regularisation folds for the same seed.
        let probe = crate::probe::patient_folds(&patient, 5, 7).unwrap();
        assert_ne!(a.folds(), probe.as_slice());
        let mut fold_of: HashMap<u32, usize> = HashMap::new();
        for (i, &p) in patient.iter().enumerate() {
            assert_eq!(*fold_of.entry(p).or_insert(a.fold(i)), a.fold(i));
        }
        assert_eq!(SideProtocol::cross_fit(&a, None).folds, Some(5));
        let json = serde_json::to_value(SideProtocol::cross_fit(&a, Some("no train split".into()))).unwrap();
        assert_eq!(json["source"], "cross_fit");
        assert_eq!(json["folds"], 5);
        assert_eq!(json["reason"], "no train split");
        let json = serde_json::to_value(SideProtocol::split("train")).unwrap();
        assert_eq!(json, serde_json::json!({"source": "split train"}));
    }

    #[test]
    fn bad_fold_counts_name_the_flag() {
        let patient: Vec<u32> = vec![1, 1, 2, 2, 3];
        let err = CrossFit::by_patient(&patient, 5, 0).unwrap_err().to_string();
        assert!(err.contains("--side-folds 5") && err.contains("only 3 patients"), "{err}");
        assert!(CrossFit::by_patient(&patient, 1, 0).unwrap_err().to_string().contains("--side-folds 1"));
        assert!(validate_folds(256).unwrap_err().to_string().contains("between 2 and 255"));
    }
}
