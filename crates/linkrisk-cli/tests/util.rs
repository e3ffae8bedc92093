//! Shared helpers: a temp-dir cohort writer and the command under test.

use std::path::Path;

use assert_cmd::Command;
use linkrisk::cohort::metadata::MetadataBuilder;
use linkrisk::cohort::write::write_cohort;
use linkrisk::cohort::{Label, N_FINDINGS};

/// The `linkrisk` binary.
pub fn linkrisk() -> Command {
    Command::cargo_bin("linkrisk").expect("binary built")
}

/// xorshift64* with Box-Muller normals: deterministic test data without extra crates.
#[derive(Debug)]
pub struct Noise(u64);

impl Noise {
    pub fn new(seed: u64) -> Self {
        Noise(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    pub fn uniform(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        ((self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }
    pub fn normal(&mut self) -> f32 {
        let (u, v) = (self.uniform(), self.uniform());
        ((-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()) as f32
    }
}

/// Write a cohort with `n_patients` patients (2 records each), an `image` view of `dim`
/// columns in which findings and sex shift the embedding; splits train (70%) / test.
/// "Fracture" is never positive. Returns the record ids.
pub fn write_probe_cohort(dir: &Path, n_patients: usize, dim: usize, seed: u64) -> Vec<String> {
    let mut noise = Noise::new(seed);
    let directions: Vec<Vec<f32>> =
        (0..N_FINDINGS + 1).map(|_| (0..dim).map(|_| noise.normal()).collect()).collect();
    let mut b = MetadataBuilder {
        study_ids: Some(Vec::new()),
        splits: Some(Vec::new()),
        findings: Some(Vec::new()),
        sex: Some(Vec::new()),
        age: Some(Vec::new()),
        ..Default::default()
    };
    let mut data = Vec::new();
    for p in 0..n_patients {
        let female = noise.uniform() < 0.5;
        let identity: Vec<f32> = (0..dim).map(|_| noise.normal()).collect();
        for s in 0..2 {
            let mut row: Vec<f32> = identity.iter().map(|v| 0.5 * v).collect();
            let mut labels = [Label::Blank; N_FINDINGS];
            for (k, label) in labels.iter_mut().enumerate() {
                let positive = k != 12 && noise.uniform() < 0.25;
                *label = if positive {
                    Label::Positive
                } else if noise.uniform() < 0.5 {
                    Label::Negative
                } else {
                    Label::Blank
                };
                if positive {
                    row.iter_mut().zip(&directions[k]).for_each(|(v, d)| *v += 1.5 * d);
                }
            }
            if female {
                row.iter_mut().zip(&directions[N_FINDINGS]).for_each(|(v, d)| *v += 1.5 * d);
            }
            row.iter_mut().for_each(|v| *v += noise.normal());
            data.extend(row);
            b.ids.push(format!("r{p}_{s}"));
            b.patient_ids.push(format!("p{p}"));
            b.study_ids.as_mut().expect("column present").push(format!("s{s}"));
            b.splits.as_mut().expect("column present").push(if p % 10 < 7 { "train" } else { "test" }.into());
            b.findings.as_mut().expect("column present").push(labels);
            b.sex.as_mut().expect("column present").push(Some(if female { "F" } else { "M" }.into()));
            b.age.as_mut().expect("column present").push((p % 5 != 0).then(|| 30.0 + (p * 7 % 60) as f64));
        }
    }
    let ids = b.ids.clone();
    let metadata = b.build(Path::new("metadata.csv"), 2).expect("valid metadata");
    write_cohort(dir, &metadata, &[("image", dim, &data)]).expect("cohort written");
    ids
}
