//! Sampling the population: patients, their studies, findings, demographics and the latent
//! vectors that every rendered view is a linear function of. Each patient draws from its own
//! stream and each study from its own, so the population is the same on any thread count.

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;
use rayon::prelude::*;

use super::model::{
    Demographics, ANATOMY_DIM, CARDIAC_PERSISTENCE, EXTERNAL_DEMOGRAPHICS, EXTERNAL_NUISANCE_SCALE,
    HISTORY_DIM, INSTANCE_DIM, INTERNAL_DEMOGRAPHICS, MEAN_YEARS_BETWEEN_STUDIES, NORMALITY_CLAMP,
    NUISANCE_DIM, N_PATHOLOGIES, PATHOLOGIES, RACES, REPORT_CODE_NEGATIVE, REPORT_CODE_POSITIVE,
    REPORT_CODE_UNCERTAIN, SEVERITY_PERSISTENCE, STUDY_COUNT_RATIO, TEST_FRACTION,
};
use super::SynthConfig;
use crate::cohort::metadata::MetadataBuilder;
use crate::cohort::{Label, Metadata, N_FINDINGS};
use crate::error::Result;
use crate::metrics::interval::normal_quantile;
use crate::rng::stream;

/// Key offset of external patients, so their streams never meet those of train/test patients.
const EXTERNAL_PATIENT_KEY: u64 = 1 << 40;
/// Bits of a study key that hold the study number within its patient.
const STUDY_BITS: u32 = 16;

/// Column blocks of the image latent vector (each row of [`Population::image_latent`]).
pub(crate) mod image_cols {
    use super::*;
    pub const ANATOMY: usize = 0;
    pub const FINDINGS: usize = ANATOMY + ANATOMY_DIM;
    pub const INSTANCE: usize = FINDINGS + N_FINDINGS;
    pub const SEX: usize = INSTANCE + INSTANCE_DIM;
    pub const AGE: usize = SEX + 1;
    pub const RACE: usize = AGE + 1;
    pub const NUISANCE: usize = RACE + RACES.len();
    pub const OFFSET: usize = NUISANCE + NUISANCE_DIM;
    pub const SITE: usize = OFFSET + 1;
    pub const LEN: usize = SITE + 1;
}

/// Column blocks of the report latent vector.
pub(crate) mod report_cols {
    use super::*;
    pub const HISTORY: usize = 0;
    pub const FINDINGS: usize = HISTORY + HISTORY_DIM;
    pub const INSTANCE: usize = FINDINGS + N_FINDINGS;
    pub const NUISANCE: usize = INSTANCE + INSTANCE_DIM;
    pub const OFFSET: usize = NUISANCE + NUISANCE_DIM;
    pub const SITE: usize = OFFSET + 1;
    pub const LEN: usize = SITE + 1;
}

/// A sampled population: metadata plus, per record, the latent vectors of its image and its
/// report. Views are rendered from it by [`Population::render`](super::Population::render);
/// the population does not depend on the specialization, so one population can be rendered
/// as several models see it.
#[derive(Debug, Clone)]
pub struct Population {
    pub(crate) config: SynthConfig,
    pub(crate) metadata: Metadata,
    /// n x `image_cols::LEN`, row-major.
    pub(crate) image_latent: Vec<f32>,
    /// n x `report_cols::LEN`, row-major.
    pub(crate) report_latent: Vec<f32>,
    /// Study key per record: the index of its noise streams.
    pub(crate) study_keys: Vec<u64>,
    /// Whether each record's study is truly positive for each pathology (ground truth
    /// before the labeler's uncertainty), in metadata column order (`No Finding` first).
    pub(crate) truly_positive: Vec<[bool; N_FINDINGS]>,
}

/// Which population a patient is drawn from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Origin {
    Internal,
    External,
}

/// Label thresholds of one population on the standard-normal pathology latents.
#[derive(Debug, Clone, Copy)]
struct Thresholds {
    /// Latent above this: positive.
    positive: [f64; N_PATHOLOGIES],
    /// Latent in (uncertain, positive]: uncertain (-1).
    uncertain: [f64; N_PATHOLOGIES],
    /// Shift added to the latent before the image sees it, so that the image shows as much
    /// pathology as the population has (zero for the internal population).
    visible_shift: [f64; N_PATHOLOGIES],
}

impl Thresholds {
    fn new(origin: Origin) -> Thresholds {
        let mut t = Thresholds {
            positive: [0.0; N_PATHOLOGIES],
            uncertain: [0.0; N_PATHOLOGIES],
            visible_shift: [0.0; N_PATHOLOGIES],
        };
        for (k, p) in PATHOLOGIES.iter().enumerate() {
            let prevalence = match origin {
                Origin::Internal => p.prevalence,
                Origin::External => p.external_prevalence,
            };
            t.positive[k] = normal_quantile(1.0 - prevalence);
            t.uncertain[k] = normal_quantile(1.0 - prevalence * (1.0 + p.uncertain_ratio));
            t.visible_shift[k] = normal_quantile(1.0 - p.prevalence) - t.positive[k];
        }
        t
    }
}

/// One sampled record before it is laid out in columns.
struct RecordDraw {
    patient_index: u64,
    origin: Origin,
    study_number: usize,
    test: bool,
    labels: [Label; N_FINDINGS],
    truly_positive: [bool; N_FINDINGS],
    female: bool,
    age_years: f64,
    race: Option<&'static str>,
    study_key: u64,
    image_latent: [f32; image_cols::LEN],
    report_latent: [f32; report_cols::LEN],
}

fn normal(rng: &mut ChaCha8Rng) -> f64 {
    rng.sample(StandardNormal)
}

/// Number of studies: truncated geometric on 1..=max, P(j) proportional to ratio^(j-1).
fn study_count(rng: &mut ChaCha8Rng, max: usize) -> usize {
    let total: f64 = (0..max).map(|j| STUDY_COUNT_RATIO.powi(j as i32)).sum();
    let mut u = rng.random::<f64>() * total;
    for j in 0..max {
        let w = STUDY_COUNT_RATIO.powi(j as i32);
        if u < w {
            return j + 1;
        }
        u -= w;
    }
    max
}

fn categorical(rng: &mut ChaCha8Rng, probabilities: &[f64]) -> usize {
    let total: f64 = probabilities.iter().sum();
    let mut u = rng.random::<f64>() * total;
    for (i, &p) in probabilities.iter().enumerate() {
        if u < p {
            return i;
        }
        u -= p;
    }
    probabilities.len() - 1
}

/// Sample every study of one patient.
fn sample_patient(
    config: &SynthConfig,
    origin: Origin,
    patient_index: u64,
    thresholds: &Thresholds,
) -> Vec<RecordDraw> {
    let (patient_key, demographics): (u64, &Demographics) = match origin {
        Origin::Internal => (patient_index, &INTERNAL_DEMOGRAPHICS),
        Origin::External => (EXTERNAL_PATIENT_KEY + patient_index, &EXTERNAL_DEMOGRAPHICS),
    };
    let mut rng = stream(config.seed, "synth/patient", patient_key);
    let n_studies = study_count(&mut rng, config.studies_per_patient);
    let test = rng.random::<f64>() < TEST_FRACTION;
    let female = rng.random::<f64>() < demographics.female;
    let first_age = (demographics.age_mean + demographics.age_sd * normal(&mut rng)).clamp(18.0, 95.0);
    let race_index = categorical(&mut rng, &demographics.race);
    let race_blank = rng.random::<f64>() < demographics.race_blank;
    let mut anatomy = [0f32; ANATOMY_DIM];
    for a in anatomy.iter_mut() {
        *a = normal(&mut rng) as f32;
    }
    let severity_propensity = normal(&mut rng);
    let cardiac_propensity = normal(&mut rng);

    let mut records = Vec::with_capacity(n_studies);
    let mut age = first_age;
    for study_number in 0..n_studies {
        let study_key = (patient_key << STUDY_BITS) | study_number as u64;
        let mut rng = stream(config.seed, "synth/study", study_key);
        let gap_years = -MEAN_YEARS_BETWEEN_STUDIES * (1.0 - rng.random::<f64>()).ln();
        if study_number > 0 {
            age += gap_years;
        }
        let severity = SEVERITY_PERSISTENCE * severity_propensity
            + (1.0 - SEVERITY_PERSISTENCE.powi(2)).sqrt() * normal(&mut rng);
        let cardiac = CARDIAC_PERSISTENCE * cardiac_propensity
            + (1.0 - CARDIAC_PERSISTENCE.powi(2)).sqrt() * normal(&mut rng);
        let parenchymal = normal(&mut rng);
        let pleural = normal(&mut rng);
        let factors = [severity, cardiac, parenchymal, pleural];

        let mut labels = [Label::Blank; N_FINDINGS];
        let mut truly_positive = [false; N_FINDINGS];
        let mut image_latent = [0f32; image_cols::LEN];
        let mut report_latent = [0f32; report_cols::LEN];
        let mut worst_margin = f64::NEG_INFINITY;
        let mut abnormal = false;
        for (k, pathology) in PATHOLOGIES.iter().enumerate() {
            let loading_sq: f64 = pathology.loadings.iter().map(|l| l * l).sum();
            let latent: f64 = pathology.loadings.iter().zip(&factors).map(|(l, f)| l * f).sum::<f64>()
                + (1.0 - loading_sq).sqrt() * normal(&mut rng);
            let negation_draw = rng.random::<f64>();
            let column = k + 1;
            let (label, code) = if latent > thresholds.positive[k] {
                (Label::Positive, REPORT_CODE_POSITIVE)
            } else if latent > thresholds.uncertain[k] {
                (Label::Uncertain, REPORT_CODE_UNCERTAIN)
            } else if negation_draw < pathology.negation_rate {
                (Label::Negative, REPORT_CODE_NEGATIVE)
            } else {
                (Label::Blank, 0.0)
            };
            labels[column] = label;
            truly_positive[column] = latent > thresholds.positive[k];
            report_latent[report_cols::FINDINGS + column] = code;
            image_latent[image_cols::FINDINGS + column] =
                (pathology.visibility * (latent + thresholds.visible_shift[k])) as f32;
            if pathology.counts_against_no_finding {
                worst_margin = worst_margin.max(latent - thresholds.uncertain[k]);
                abnormal |= matches!(label, Label::Positive | Label::Uncertain);
            }
        }
        if !abnormal {
            labels[0] = Label::Positive;
            truly_positive[0] = true;
            report_latent[report_cols::FINDINGS] = REPORT_CODE_POSITIVE;
        }
        image_latent[image_cols::FINDINGS] = (-worst_margin).clamp(-NORMALITY_CLAMP, NORMALITY_CLAMP) as f32;

        for j in 0..INSTANCE_DIM {
            let detail = normal(&mut rng) as f32;
            image_latent[image_cols::INSTANCE + j] = detail;
            report_latent[report_cols::INSTANCE + j] = detail;
        }
        let nuisance_scale = match origin {
            Origin::Internal => 1.0,
            Origin::External => EXTERNAL_NUISANCE_SCALE,
        };
        for j in 0..NUISANCE_DIM {
            image_latent[image_cols::NUISANCE + j] = (nuisance_scale * normal(&mut rng)) as f32;
        }
        for j in 0..NUISANCE_DIM {
            report_latent[report_cols::NUISANCE + j] = normal(&mut rng) as f32;
        }
        image_latent[image_cols::ANATOMY..image_cols::ANATOMY + ANATOMY_DIM].copy_from_slice(&anatomy);
        report_latent[report_cols::HISTORY..report_cols::HISTORY + HISTORY_DIM]
            .copy_from_slice(&anatomy[..HISTORY_DIM]);
        image_latent[image_cols::SEX] = if female { 1.0 } else { -1.0 };
        image_latent[image_cols::AGE] = ((age - super::model::AGE_CENTER) / super::model::AGE_SCALE) as f32;
        image_latent[image_cols::RACE + race_index] = 1.0;
        let site = if origin == Origin::External { 1.0 } else { 0.0 };
        image_latent[image_cols::OFFSET] = 1.0;
        image_latent[image_cols::SITE] = site;
        report_latent[report_cols::OFFSET] = 1.0;
        report_latent[report_cols::SITE] = site;

        records.push(RecordDraw {
            patient_index,
            origin,
            study_number,
            test,
            labels,
            truly_positive,
            female,
            age_years: age.min(100.0).floor(),
            race: (!race_blank).then_some(RACES[race_index]),
            study_key,
            image_latent,
            report_latent,
        });
    }
    records
}

impl Population {
    /// Sample the population of `config` (validated first).
    pub fn sample(config: &SynthConfig) -> Result<Population> {
        config.validate()?;
        let internal = Thresholds::new(Origin::Internal);
        let external = Thresholds::new(Origin::External);
        let patients: Vec<(Origin, u64)> = (0..config.patients as u64)
            .map(|p| (Origin::Internal, p))
            .chain((0..config.external_patients as u64).map(|p| (Origin::External, p)))
            .collect();
        let draws: Vec<Vec<RecordDraw>> = patients
            .par_iter()
            .map(|&(origin, index)| {
                let thresholds = if origin == Origin::Internal { &internal } else { &external };
                sample_patient(config, origin, index, thresholds)
            })
            .collect();
        let n: usize = draws.iter().map(Vec::len).sum();
        let mut builder = MetadataBuilder {
            study_ids: Some(Vec::with_capacity(n)),
            splits: Some(Vec::with_capacity(n)),
            findings: Some(Vec::with_capacity(n)),
            sex: Some(Vec::with_capacity(n)),
            age: Some(Vec::with_capacity(n)),
            race: Some(Vec::with_capacity(n)),
            ..Default::default()
        };
        let mut image_latent = Vec::with_capacity(n * image_cols::LEN);
        let mut report_latent = Vec::with_capacity(n * report_cols::LEN);
        let mut study_keys = Vec::with_capacity(n);
        let mut truly_positive = Vec::with_capacity(n);
        for record in draws.into_iter().flatten() {
            let (prefix, split) = match (record.origin, record.test) {
                (Origin::External, _) => ("x", "external"),
                (Origin::Internal, true) => ("p", "test"),
                (Origin::Internal, false) => ("p", "train"),
            };
            let number = format!("{prefix}{:07}", record.patient_index);
            let study = record.study_number + 1;
            builder.ids.push(format!("r{number}_{study:02}"));
            builder.patient_ids.push(number.clone());
            push(&mut builder.study_ids, format!("s{number}_{study:02}"));
            push(&mut builder.splits, split.to_string());
            push(&mut builder.findings, record.labels);
            push(&mut builder.sex, Some(if record.female { "F" } else { "M" }.to_string()));
            push(&mut builder.age, Some(record.age_years));
            push(&mut builder.race, record.race.map(str::to_string));
            image_latent.extend_from_slice(&record.image_latent);
            report_latent.extend_from_slice(&record.report_latent);
            study_keys.push(record.study_key);
            truly_positive.push(record.truly_positive);
        }
        let metadata = builder.build(std::path::Path::new("<synthetic>"), 0)?;
        Ok(Population {
            config: config.clone(),
            metadata,
            image_latent,
            report_latent,
            study_keys,
            truly_positive,
        })
    }

    /// The metadata of every record (ids, patients, studies, splits, findings, demographics).
    pub fn metadata(&self) -> &Metadata {
        &self.metadata
    }

    /// The configuration the population was sampled with.
    pub fn config(&self) -> &SynthConfig {
        &self.config
    }

    /// Number of records.
    pub fn len(&self) -> usize {
        self.metadata.len()
    }

    /// Whether there are no records (never true: a validated config has a patient).
    pub fn is_empty(&self) -> bool {
        self.metadata.is_empty()
    }

    /// Ground truth per record: whether each finding is truly present (in metadata column
    /// order). Uncertain labels hide a latent just below the positive threshold, so they are
    /// `false` here; `No Finding` is `true` when the label is.
    pub fn truly_positive(&self) -> &[[bool; N_FINDINGS]] {
        &self.truly_positive
    }
}

fn push<T>(column: &mut Option<Vec<T>>, value: T) {
    if let Some(values) = column {
        values.push(value);
    }
}
