//! The constants of the generative model: finding prevalences and their factor loadings,
//! demographics, latent sizes and the weight each latent gets in each view. Every number
//! here is quoted in docs/METHODS.md ("Synthetic cohorts"); change both together.

use crate::cohort::N_FINDINGS;

/// Number of pathology findings with a latent of their own: the 14 CheXpert columns minus
/// `No Finding`, which is derived from the others.
pub const N_PATHOLOGIES: usize = N_FINDINGS - 1;

/// Dimensions of the per-patient anatomy vector (drives patient re-identification).
pub const ANATOMY_DIM: usize = 32;
/// Dimensions of the anatomy vector that reports mention (prior surgery, chronic changes).
pub const HISTORY_DIM: usize = 8;
/// Dimensions of the per-study instance-detail vector shared by image and report.
pub const INSTANCE_DIM: usize = 32;
/// Dimensions of the per-study, per-modality nuisance vector (acquisition, writing style).
pub const NUISANCE_DIM: usize = 32;
/// Race categories, in the order of their latent one-hot columns.
pub const RACES: [&str; 5] = ["White", "Black", "Hispanic", "Asian", "Other"];

/// Ratio of the truncated geometric distribution of studies per patient:
/// P(j studies) is proportional to `STUDY_COUNT_RATIO^(j-1)` for j = 1..=K.
pub const STUDY_COUNT_RATIO: f64 = 0.6;
/// Probability that a (non-external) patient is in the `test` split; the rest are `train`.
pub const TEST_FRACTION: f64 = 0.2;

/// Loadings of the patient-persistent propensity on the study severity factor:
/// severity = `SEVERITY_PERSISTENCE` * u_patient + sqrt(1 - ..^2) * e_study.
pub const SEVERITY_PERSISTENCE: f64 = 0.6;
/// The same for the cardiac factor (chronic heart disease persists across studies).
pub const CARDIAC_PERSISTENCE: f64 = 0.7;

/// One CheXpert pathology in the generative model.
#[derive(Debug, Clone, Copy)]
pub struct Pathology {
    /// Column name in metadata.csv.
    pub name: &'static str,
    /// P(label = 1) in the train/test population.
    pub prevalence: f64,
    /// P(label = 1) in the external cohort (shifted, CheXpert-like inpatient mix).
    pub external_prevalence: f64,
    /// P(label = -1) as a fraction of `prevalence`: the band of the latent just below the
    /// positive threshold is reported as uncertain.
    pub uncertain_ratio: f64,
    /// P(label = 0 | not positive or uncertain): how often a report explicitly negates the
    /// finding; otherwise the cell is blank.
    pub negation_rate: f64,
    /// Loadings on the (severity, cardiac, parenchymal, pleural) factors; the idiosyncratic
    /// part has variance 1 - sum of squares, so the latent is standard normal.
    pub loadings: [f64; 4],
    /// Whether the pathology counts against `No Finding` (CheXpert: all but Support Devices).
    pub counts_against_no_finding: bool,
    /// How visible the pathology is on the image: its image latent is multiplied by this
    /// (devices and effusions are easy to see, fractures and pneumonia are not).
    pub visibility: f64,
}

/// The 13 pathologies, in CheXpert column order (after `No Finding`).
pub const PATHOLOGIES: [Pathology; N_PATHOLOGIES] = [
    p("Enlarged Cardiomediastinum", 0.04, 0.05, 0.5, 0.25, [0.40, 0.50, 0.0, 0.0], true, 0.7),
    p("Cardiomegaly", 0.18, 0.14, 0.25, 0.30, [0.35, 0.60, 0.0, 0.0], true, 1.3),
    p("Lung Opacity", 0.25, 0.40, 0.15, 0.05, [0.50, 0.0, 0.50, 0.0], true, 1.0),
    p("Lung Lesion", 0.03, 0.04, 0.25, 0.05, [0.20, 0.0, 0.30, 0.0], true, 0.7),
    p("Edema", 0.12, 0.20, 0.5, 0.35, [0.50, 0.40, 0.20, 0.0], true, 1.1),
    p("Consolidation", 0.05, 0.06, 0.8, 0.35, [0.45, 0.0, 0.55, 0.0], true, 0.9),
    p("Pneumonia", 0.07, 0.04, 1.0, 0.15, [0.40, 0.0, 0.50, 0.0], true, 0.6),
    p("Atelectasis", 0.20, 0.25, 0.6, 0.05, [0.45, 0.0, 0.30, 0.30], true, 0.9),
    p("Pneumothorax", 0.04, 0.08, 0.2, 0.60, [0.30, 0.0, 0.0, 0.40], true, 1.2),
    p("Pleural Effusion", 0.24, 0.32, 0.25, 0.60, [0.50, 0.30, 0.0, 0.40], true, 1.5),
    p("Pleural Other", 0.01, 0.012, 0.5, 0.02, [0.20, 0.0, 0.0, 0.40], true, 0.6),
    p("Fracture", 0.02, 0.03, 0.3, 0.05, [0.25, 0.0, 0.0, 0.0], true, 0.5),
    p("Support Devices", 0.30, 0.45, 0.02, 0.02, [0.60, 0.0, 0.0, 0.0], false, 1.8),
];

const fn p(
    name: &'static str,
    prevalence: f64,
    external_prevalence: f64,
    uncertain_ratio: f64,
    negation_rate: f64,
    loadings: [f64; 4],
    counts_against_no_finding: bool,
    visibility: f64,
) -> Pathology {
    Pathology {
        name,
        prevalence,
        external_prevalence,
        uncertain_ratio,
        negation_rate,
        loadings,
        counts_against_no_finding,
        visibility,
    }
}

/// Demographic distribution of one population (train/test, or external).
#[derive(Debug, Clone, Copy)]
pub struct Demographics {
    /// P(sex = F).
    pub female: f64,
    /// Mean and standard deviation of the age at the first study (years; clamped 18..=95).
    pub age_mean: f64,
    /// See `age_mean`.
    pub age_sd: f64,
    /// P(race) in [`RACES`] order.
    pub race: [f64; 5],
    /// P(race cell left blank) in metadata.csv (the latent race still exists).
    pub race_blank: f64,
}

/// Train/test population (MIMIC-CXR-like).
pub const INTERNAL_DEMOGRAPHICS: Demographics = Demographics {
    female: 0.52,
    age_mean: 62.0,
    age_sd: 17.0,
    race: [0.62, 0.18, 0.08, 0.05, 0.07],
    race_blank: 0.04,
};
/// External population (CheXpert-like): older, more male, another race mix.
pub const EXTERNAL_DEMOGRAPHICS: Demographics = Demographics {
    female: 0.44,
    age_mean: 66.0,
    age_sd: 16.0,
    race: [0.55, 0.08, 0.17, 0.14, 0.06],
    race_blank: 0.04,
};
/// Mean years between consecutive studies of a patient (exponential gaps).
pub const MEAN_YEARS_BETWEEN_STUDIES: f64 = 0.75;
/// Centre and scale of the standardised age latent.
pub const AGE_CENTER: f64 = 62.0;
/// See [`AGE_CENTER`].
pub const AGE_SCALE: f64 = 17.0;
/// External images have this much more acquisition nuisance (different scanners).
pub const EXTERNAL_NUISANCE_SCALE: f64 = 1.25;

/// Per-component weights of one rendered view: view = sum_c weight_c * direction_c * latent_c
/// + noise_sd * N(0, I).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ViewWeights {
    /// Patient anatomy (image) or its reported history part (report).
    pub anatomy: f64,
    /// Findings: continuous pathology latents (image) or label codes (report).
    pub findings: f64,
    /// Instance detail shared by the pair.
    pub instance: f64,
    /// Sex (+1 F, -1 M); image only.
    pub sex: f64,
    /// Standardised age; image only.
    pub age: f64,
    /// Race one-hot; image only.
    pub race: f64,
    /// Modality nuisance.
    pub nuisance: f64,
    /// Constant offset of the modality (modality gap / feature mean).
    pub offset: f64,
    /// Offset added to external records only (site / scanner / template shift).
    pub site: f64,
    /// Standard deviation of the isotropic noise per dimension.
    pub noise_sd: f64,
}

/// Weights of `image.npy` at specialization `s` (the shared space of a pre-trained VLM).
/// Instance detail and finding signal grow with `s`; everything else is fixed.
pub fn image_weights(s: f64) -> ViewWeights {
    ViewWeights {
        anatomy: 2.0,
        findings: 0.8 * (1.0 + 0.5 * s),
        instance: 0.8 + 0.9 * s,
        sex: 0.6,
        age: 0.5,
        race: 0.15,
        nuisance: 2.6,
        offset: 10.0,
        site: 6.0,
        noise_sd: 1.0,
    }
}

/// Weights of `report.npy` at specialization `s`. Reports state their findings plainly, so
/// the finding weight is larger than the image's (whose probe AUROC stays near 0.8).
pub fn report_weights(s: f64) -> ViewWeights {
    ViewWeights {
        anatomy: 1.0,
        findings: 5.0 * (1.0 + 0.5 * s),
        instance: 0.8 + 0.9 * s,
        sex: 0.0,
        age: 0.0,
        race: 0.0,
        nuisance: 2.6,
        offset: 10.0,
        site: 4.0,
        noise_sd: 1.0,
    }
}

/// Weights of `image_features.npy` (frozen image encoder; independent of specialization).
pub const IMAGE_FEATURE_WEIGHTS: ViewWeights = ViewWeights {
    anatomy: 2.5,
    findings: 1.0,
    instance: 1.4,
    sex: 0.6,
    age: 0.6,
    race: 0.2,
    nuisance: 2.5,
    offset: 8.0,
    site: 6.0,
    noise_sd: 1.0,
};

/// Weights of `report_features.npy` (frozen text encoder).
pub const REPORT_FEATURE_WEIGHTS: ViewWeights = ViewWeights {
    anatomy: 0.5,
    findings: 1.2,
    instance: 1.4,
    sex: 0.0,
    age: 0.0,
    race: 0.0,
    nuisance: 2.5,
    offset: 8.0,
    site: 4.0,
    noise_sd: 1.0,
};

/// Report-side code of each label: what a text encoder sees.
pub const REPORT_CODE_POSITIVE: f32 = 1.0;
/// See [`REPORT_CODE_POSITIVE`].
pub const REPORT_CODE_UNCERTAIN: f32 = 0.5;
/// See [`REPORT_CODE_POSITIVE`]: an explicit negation is a mention too.
pub const REPORT_CODE_NEGATIVE: f32 = -0.25;
/// Largest magnitude of the image's "normality" latent for `No Finding`.
pub const NORMALITY_CLAMP: f64 = 2.0;
