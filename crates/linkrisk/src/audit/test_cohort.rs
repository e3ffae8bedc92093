//! A small synthetic cohort with known signal, for the probe audits' unit tests: findings,
//! sex, age and race each move the embedding along their own direction, patients have
//! their own identity vector, splits are by patient.

use std::path::Path;

use rand::Rng;
use rand_distr::{Distribution, StandardNormal};

use crate::cohort::metadata::MetadataBuilder;
use crate::cohort::{Cohort, Label, View, N_FINDINGS};
use crate::rng;

/// Index of "Pleural Other" in FINDINGS: never positive here, so it must be skipped.
pub const NEVER_POSITIVE: usize = 11;

/// `n_patients` patients with 2-3 records each, `dim`-dimensional `image` view, splits
/// `train` (70% of patients) and `test`. `signal` scales every attribute/finding direction.
pub fn cohort(n_patients: usize, dim: usize, signal: f32, seed: u64) -> Cohort {
    cohort_with_noise(n_patients, dim, signal, seed, &|_| 1.0)
}

/// As [`cohort`], with per-record noise scaled by `noise_of_patient(p)`: noisier patients
/// are both harder to re-identify and carry a weaker attribute signal.
pub fn cohort_with_noise(
    n_patients: usize,
    dim: usize,
    signal: f32,
    seed: u64,
    noise_of_patient: &dyn Fn(usize) -> f32,
) -> Cohort {
    let mut r = rng::stream(seed, "test-cohort", 0);
    let directions: Vec<Vec<f32>> =
        (0..N_FINDINGS + 6).map(|_| (0..dim).map(|_| StandardNormal.sample(&mut r)).collect()).collect();
    let mut b = MetadataBuilder {
        study_ids: Some(Vec::new()),
        splits: Some(Vec::new()),
        findings: Some(Vec::new()),
        sex: Some(Vec::new()),
        age: Some(Vec::new()),
        race: Some(Vec::new()),
        ..Default::default()
    };
    let mut data = Vec::new();
    for p in 0..n_patients {
        let split = if p % 10 < 7 { "train" } else { "test" };
        let female = r.random::<f64>() < 0.5;
        let age: f64 = r.random_range(20.0..90.0);
        let race = ["White", "Black", "Asian", "Other"][match r.random::<f64>() {
            u if u < 0.5 => 0,
            u if u < 0.8 => 1,
            u if u < 0.99 => 2,
            _ => 3,
        }];
        let identity: Vec<f32> = (0..dim).map(|_| StandardNormal.sample(&mut r)).collect();
        let records = 2 + (p % 2);
        for s in 0..records {
            let mut labels = [Label::Blank; N_FINDINGS];
            let mut row: Vec<f32> = identity.iter().map(|v| 0.7 * v).collect();
            for (k, label) in labels.iter_mut().enumerate() {
                let prevalence = if k == NEVER_POSITIVE { 0.0 } else { 0.15 + 0.02 * k as f64 };
                let positive = r.random::<f64>() < prevalence;
                *label = match (positive, r.random::<f64>()) {
                    (true, u) if u < 0.1 => Label::Uncertain,
                    (true, _) => Label::Positive,
                    (false, u) if u < 0.5 => Label::Blank,
                    (false, _) => Label::Negative,
                };
                if positive {
                    row.iter_mut().zip(&directions[k]).for_each(|(v, d)| *v += signal * d);
                }
            }
            let attributes = [female, age >= 65.0, race == "Black", race == "Asian"];
            for (a, &on) in attributes.iter().enumerate() {
                if on {
                    row.iter_mut().zip(&directions[N_FINDINGS + a]).for_each(|(v, d)| *v += signal * d);
                }
            }
            let noise = noise_of_patient(p);
            row.iter_mut().for_each(|v| *v += noise * r.sample::<f32, _>(StandardNormal));
            data.extend(row);
            b.ids.push(format!("r{p}_{s}"));
            b.patient_ids.push(format!("p{p}"));
            if let Some(v) = b.study_ids.as_mut() {
                v.push(format!("s{s}"));
            }
            if let Some(v) = b.splits.as_mut() {
                v.push(split.into());
            }
            if let Some(v) = b.findings.as_mut() {
                v.push(labels);
            }
            if let Some(v) = b.sex.as_mut() {
                v.push(Some(if female { "F" } else { "M" }.into()));
            }
            if let Some(v) = b.age.as_mut() {
                v.push(Some(age));
            }
            if let Some(v) = b.race.as_mut() {
                v.push(Some(race.into()));
            }
        }
    }
    let n = b.ids.len();
    let metadata = b.build(Path::new("<synthetic>"), 0).expect("valid synthetic metadata");
    let view = View::from_memory("image", n, dim, data).expect("finite synthetic embeddings");
    Cohort::from_parts("<synthetic>", metadata, vec![view]).expect("aligned synthetic cohort")
}

/// `cohort` with every record in one `test` split (a hospital's single export).
pub fn test_only(mut cohort: Cohort) -> Cohort {
    let n = cohort.len();
    cohort.metadata.split_names = vec!["test".into()];
    cohort.metadata.split = vec![0; n];
    cohort
}
