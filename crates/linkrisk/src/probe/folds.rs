//! Cross-validation folds grouped by patient. Records of one patient are correlated (same
//! anatomy, same scanner, often the same finding), so a patient in both the fitting and the
//! held-out part of a fold would let the probe score on memorised patients and bias the
//! choice of regularisation towards overfitting. Every patient's records go to one fold.

use std::collections::HashMap;

use rand::seq::SliceRandom;

use crate::error::{Error, Result};
use crate::rng;

/// The most folds [`patient_folds`] accepts (fold indices are stored as `u8`).
pub const MAX_FOLDS: usize = 255;

/// Assign each record to one of `n_folds` folds so that no patient is in two folds and the
/// folds hold about as many records each. `patient[i]` is the patient of record i (any
/// ids). Patients are shuffled with the seeded stream (`seed`, `probe-folds`), then placed
/// largest first into the fold with the fewest records so far (scikit-learn's `GroupKFold`
/// balancing with a seeded order among equal-sized patients).
pub fn patient_folds(patient: &[u32], n_folds: usize, seed: u64) -> Result<Vec<u8>> {
    grouped_folds(patient, n_folds, seed, "probe-folds", "--folds", "a larger training split")
}

/// The fold assignment behind [`patient_folds`] and the audits' cross-fitting
/// (`crate::audit::cross_fit`): records grouped by `group[i]`, every group in one fold, the
/// folds balanced by records, the order among equal-sized groups drawn from the stream
/// (`seed`, `purpose`). Sequential and seeded: the same on any thread count. `flag` and
/// `larger` name the setting and the remedy in the error for too few groups.
pub fn grouped_folds(
    group: &[u32],
    n_folds: usize,
    seed: u64,
    purpose: &str,
    flag: &str,
    larger: &str,
) -> Result<Vec<u8>> {
    if !(2..=MAX_FOLDS).contains(&n_folds) {
        return Err(Error::config(format!(
            "{flag} {n_folds}: cross-validation needs between 2 and {MAX_FOLDS} folds"
        )));
    }
    let mut size_of: HashMap<u32, usize> = HashMap::new();
    let mut patients: Vec<u32> = Vec::new();
    for &p in group {
        let count = size_of.entry(p).or_insert(0);
        if *count == 0 {
            patients.push(p);
        }
        *count += 1;
    }
    if patients.len() < n_folds {
        return Err(Error::config(format!(
            "{flag} {n_folds}: only {} patients to split; folds are grouped by patient, so use \
             at most {} folds or {larger}",
            patients.len(),
            patients.len()
        )));
    }
    patients.shuffle(&mut rng::stream(seed, purpose, 0));
    patients.sort_by_key(|p| std::cmp::Reverse(size_of[p])); // stable: shuffled order among ties
    let mut fold_records = vec![0usize; n_folds];
    let mut fold_of: HashMap<u32, u8> = HashMap::with_capacity(patients.len());
    for p in patients {
        let lightest = (0..n_folds).min_by_key(|&f| fold_records[f]).unwrap_or(0);
        fold_records[lightest] += size_of[&p];
        fold_of.insert(p, lightest as u8);
    }
    Ok(group.iter().map(|p| fold_of[p]).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn no_patient_in_two_folds_and_folds_balanced(
            sizes in proptest::collection::vec(1usize..6, 5..200),
            n_folds in 2usize..8,
            seed in 0u64..1000,
        ) {
            prop_assume!(sizes.len() >= n_folds);
            // records of patient p, interleaved so that patients are not contiguous
            let mut patient = Vec::new();
            let max = *sizes.iter().max().unwrap();
            for round in 0..max {
                for (p, &s) in sizes.iter().enumerate() {
                    if round < s {
                        patient.push(p as u32 * 7 + 3);
                    }
                }
            }
            let folds = patient_folds(&patient, n_folds, seed).unwrap();
            prop_assert_eq!(folds.len(), patient.len());
            let mut fold_of: HashMap<u32, u8> = HashMap::new();
            for (&p, &f) in patient.iter().zip(&folds) {
                prop_assert!((f as usize) < n_folds);
                let first = *fold_of.entry(p).or_insert(f);
                prop_assert_eq!(first, f, "patient {} in two folds", p);
            }
            let mut counts = vec![0usize; n_folds];
            for &f in &folds {
                counts[f as usize] += 1;
            }
            // greedy largest-first: the spread is at most the largest patient
            let spread = counts.iter().max().unwrap() - counts.iter().min().unwrap();
            prop_assert!(spread <= max, "{:?}", counts);
            prop_assert!(counts.iter().all(|&c| c > 0));
            // reproducible
            prop_assert_eq!(folds, patient_folds(&patient, n_folds, seed).unwrap());
        }
    }

    #[test]
    fn seeds_change_the_assignment_and_bad_fold_counts_are_rejected() {
        let patient: Vec<u32> = (0..100).map(|i| i / 2).collect();
        assert_ne!(patient_folds(&patient, 5, 1).unwrap(), patient_folds(&patient, 5, 2).unwrap());
        let err = patient_folds(&patient[..6], 5, 1).unwrap_err().to_string();
        assert!(err.contains("only 3 patients") && err.contains("--folds 5"), "{err}");
        assert!(patient_folds(&patient, 1, 1).unwrap_err().to_string().contains("between 2"));
    }
}
