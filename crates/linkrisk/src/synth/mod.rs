//! Synthetic cohorts with known ground truth (patients, studies, findings, demographics,
//! a model-specialisation knob) for the demo and the tests. Real cohorts (MIMIC-CXR,
//! CheXpert Plus) need credentialed access; these stand in for them with the structure the
//! audits measure: a persistent per-patient anatomy signal (patient re-identification),
//! per-study instance detail shared by image and report (re-linkage beyond the labels),
//! correlated CheXpert findings, demographics that leak weakly into the image, and a domain-
//! shifted external cohort. The generative model is documented in docs/METHODS.md
//! ("Synthetic cohorts"); its constants live in [`model`].
//!
//! [`Population::sample`] draws patients and studies once; [`Population::render`] turns the
//! latents into a view as a model of a given specialization would embed them. [`generate`]
//! does both for one config and returns an in-memory [`SyntheticCohort`].

pub mod model;
mod population;
mod render;

#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};

use serde::Serialize;

pub use population::Population;
pub use render::SynthView;

use crate::cohort::write::{atomic, atomic_dir, write_cohort};
use crate::cohort::{npy, Cohort, Metadata, View, N_FINDINGS};
use crate::error::{Error, Result};

/// Most patients (or external patients) one synthetic cohort may have.
pub const MAX_PATIENTS: usize = 1_000_000;
/// Most studies one patient may have.
pub const MAX_STUDIES_PER_PATIENT: usize = 1000;
/// Largest `--dim` / `--feature-dim`.
pub const MAX_DIM: usize = 65_536;

/// Parameters of a synthetic cohort (the flags of `linkrisk synth`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SynthConfig {
    /// Train/test patients (`--patients`); each is in `test` with probability 0.2.
    pub patients: usize,
    /// Most studies per patient (`--studies-per-patient`); counts are truncated geometric.
    pub studies_per_patient: usize,
    /// Dimension of the shared embedding space, `image.npy` and `report.npy` (`--dim`).
    pub dim: usize,
    /// Dimension of the frozen-encoder features (`--feature-dim`).
    pub feature_dim: usize,
    /// How clinically specialised the embedding model is, in [0, 1] (`--specialization`).
    pub specialization: f64,
    /// Seed of every random stream (`--seed`).
    pub seed: u64,
    /// Patients of the domain-shifted `external` split (`--external-patients`).
    pub external_patients: usize,
}

impl Default for SynthConfig {
    fn default() -> Self {
        SynthConfig {
            patients: 4000,
            studies_per_patient: 5,
            dim: 512,
            feature_dim: 768,
            specialization: 0.5,
            seed: 0,
            external_patients: 800,
        }
    }
}

impl SynthConfig {
    /// Reject values the generator cannot honour, naming the flag and the accepted range.
    pub fn validate(&self) -> Result<()> {
        if self.patients == 0 || self.patients > MAX_PATIENTS {
            return Err(Error::config(format!(
                "--patients must be between 1 and {MAX_PATIENTS}, got {}",
                self.patients
            )));
        }
        if self.studies_per_patient == 0 || self.studies_per_patient > MAX_STUDIES_PER_PATIENT {
            return Err(Error::config(format!(
                "--studies-per-patient must be between 1 and {MAX_STUDIES_PER_PATIENT}, got {}",
                self.studies_per_patient
            )));
        }
        for (flag, value) in [("--dim", self.dim), ("--feature-dim", self.feature_dim)] {
            if !(2..=MAX_DIM).contains(&value) {
                return Err(Error::config(format!("{flag} must be between 2 and {MAX_DIM}, got {value}")));
            }
        }
        check_specialization(self.specialization)?;
        if self.external_patients > MAX_PATIENTS {
            return Err(Error::config(format!(
                "--external-patients must be at most {MAX_PATIENTS}, got {}",
                self.external_patients
            )));
        }
        Ok(())
    }
}

pub(crate) fn check_specialization(specialization: f64) -> Result<()> {
    if !(0.0..=1.0).contains(&specialization) {
        return Err(Error::config(format!(
            "--specialization must be between 0 and 1 (0 = general-domain model, 1 = fully \
             specialised), got {specialization}"
        )));
    }
    Ok(())
}

/// A generated cohort held in memory: metadata, the four raw (not normalised) views and the
/// ground truth the metadata cannot show.
#[derive(Debug, Clone)]
pub struct SyntheticCohort {
    /// The configuration it was generated with.
    pub config: SynthConfig,
    /// One row per record (= study).
    pub metadata: Metadata,
    /// `image.npy`: n x `config.dim`, row-major.
    pub image: Vec<f32>,
    /// `report.npy`: n x `config.dim`.
    pub report: Vec<f32>,
    /// `image_features.npy`: n x `config.feature_dim`.
    pub image_features: Vec<f32>,
    /// `report_features.npy`: n x `config.feature_dim`.
    pub report_features: Vec<f32>,
    /// Per record and finding (metadata column order): truly present, before the labeler's
    /// uncertainty.
    pub truly_positive: Vec<[bool; N_FINDINGS]>,
}

/// Generate the cohort of `config` in memory.
pub fn generate(config: &SynthConfig) -> Result<SyntheticCohort> {
    let population = Population::sample(config)?;
    let s = config.specialization;
    Ok(SyntheticCohort {
        config: config.clone(),
        image: population.render(SynthView::Image, s)?,
        report: population.render(SynthView::Report, s)?,
        image_features: population.render(SynthView::ImageFeatures, s)?,
        report_features: population.render(SynthView::ReportFeatures, s)?,
        truly_positive: population.truly_positive.clone(),
        metadata: population.metadata,
    })
}

impl SyntheticCohort {
    /// Number of records.
    pub fn len(&self) -> usize {
        self.metadata.len()
    }

    /// Whether there are no records (never true for a generated cohort).
    pub fn is_empty(&self) -> bool {
        self.metadata.is_empty()
    }

    /// `(name, dim, rows)` of the four views, in the order they are written.
    pub fn views(&self) -> [(&'static str, usize, &[f32]); 4] {
        let (d, f) = (self.config.dim, self.config.feature_dim);
        [
            (SynthView::Image.name(), d, &self.image),
            (SynthView::Report.name(), d, &self.report),
            (SynthView::ImageFeatures.name(), f, &self.image_features),
            (SynthView::ReportFeatures.name(), f, &self.report_features),
        ]
    }

    /// Write `dir/metadata.csv` and the four `.npy` views (built beside `dir`, then renamed
    /// into place: see [`crate::cohort::write::atomic_dir`]).
    pub fn write(&self, dir: &Path) -> Result<SynthSummary> {
        atomic_dir(dir, |tmp| write_cohort(tmp, &self.metadata, &self.views()))?;
        Ok(SynthSummary::new(dir, &self.config, self.config.specialization, &self.metadata))
    }

    /// The cohort as the audits see it (rows L2-normalised), without touching disk.
    pub fn to_cohort(&self) -> Result<Cohort> {
        let n = self.len();
        let views = self
            .views()
            .into_iter()
            .map(|(name, dim, rows)| View::from_memory(name, n, dim, rows.to_vec()))
            .collect::<Result<Vec<_>>>()?;
        Cohort::from_parts(PathBuf::from("<synthetic>"), self.metadata.clone(), views)
    }
}

impl Population {
    /// Render and write every view at `specialization` into `dir` (with `metadata.csv`),
    /// one view at a time so that memory holds the latents and a single view. The directory
    /// is built beside `dir` and renamed into place ([`crate::cohort::write::atomic_dir`]).
    pub fn write(&self, dir: &Path, specialization: f64) -> Result<SynthSummary> {
        check_specialization(specialization)?;
        atomic_dir(dir, |tmp| {
            write_cohort(tmp, &self.metadata, &[])?;
            for view in SynthView::ALL {
                let rows = self.render(view, specialization)?;
                let dim = rows.len() / self.len();
                atomic(&tmp.join(format!("{}.npy", view.name())), |t| npy::write(t, self.len(), dim, &rows))?;
            }
            Ok(())
        })?;
        Ok(SynthSummary::new(dir, &self.config, specialization, &self.metadata))
    }
}

/// Generate the cohort of `config` straight into `dir` (peak memory: latents plus one view).
pub fn generate_to_dir(config: &SynthConfig, dir: &Path) -> Result<SynthSummary> {
    Population::sample(config)?.write(dir, config.specialization)
}

/// What was written: counts per split and the views, for printing and JSON.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SynthSummary {
    /// The cohort directory.
    pub dir: PathBuf,
    /// Records (= studies = image-report pairs).
    pub records: usize,
    /// Distinct patients (train, test and external).
    pub patients: usize,
    /// Records and patients per split (`train`, `test`, `external`), in first-seen order.
    pub splits: Vec<SplitCount>,
    /// The views written: name and shape.
    pub views: Vec<ViewShape>,
    /// Specialization the shared-space views were rendered at.
    pub specialization: f64,
    /// Seed of the generator.
    pub seed: u64,
}

/// Records and patients in one split.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SplitCount {
    /// Split name.
    pub name: String,
    /// Records in the split.
    pub records: usize,
    /// Distinct patients in the split.
    pub patients: usize,
}

/// Name and shape of one written view.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ViewShape {
    /// View name (file stem).
    pub name: String,
    /// Rows.
    pub rows: usize,
    /// Columns.
    pub dim: usize,
}

impl SynthSummary {
    fn new(dir: &Path, config: &SynthConfig, specialization: f64, metadata: &Metadata) -> SynthSummary {
        let splits = metadata
            .split_names
            .iter()
            .enumerate()
            .map(|(s, name)| {
                let mut patients: Vec<u32> = (0..metadata.len())
                    .filter(|&i| metadata.split[i] as usize == s)
                    .map(|i| metadata.patient[i])
                    .collect();
                let records = patients.len();
                patients.sort_unstable();
                patients.dedup();
                SplitCount { name: name.clone(), records, patients: patients.len() }
            })
            .collect();
        let views = SynthView::ALL
            .iter()
            .map(|v| ViewShape {
                name: v.name().to_string(),
                rows: metadata.len(),
                dim: match v {
                    SynthView::Image | SynthView::Report => config.dim,
                    _ => config.feature_dim,
                },
            })
            .collect();
        SynthSummary {
            dir: dir.to_path_buf(),
            records: metadata.len(),
            patients: metadata.n_patients,
            splits,
            views,
            specialization,
            seed: config.seed,
        }
    }
}
