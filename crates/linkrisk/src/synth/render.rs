//! Rendering a view from the latents: a fixed random linear map (one unit direction per
//! latent column, scaled by the view's weight) plus isotropic Gaussian noise. The map is a
//! function of the seed only; the noise of each record comes from its own stream, and the
//! matrix product runs in fixed row blocks, so the bytes do not depend on thread count.

use faer::linalg::matmul::matmul;
use faer::{Accum, MatMut, MatRef, Par};
use rand::Rng;
use rand_distr::StandardNormal;
use rayon::prelude::*;

use super::{check_specialization, ReportTransform, SynthConfig};
use super::model::{
    feature_weights, image_weights, report_weights, SynthModel, ViewWeights, ANATOMY_DIM, HISTORY_DIM, IMAGE_FEATURE_WEIGHTS,
    INSTANCE_DIM, NUISANCE_DIM, RACES, REPORT_FEATURE_WEIGHTS,
};
use super::population::{image_cols, report_cols, Population};
use crate::cohort::N_FINDINGS;
use crate::error::Result;
use crate::rng::stream;

/// Rows per block of the latent x map product (fixed, so results do not depend on threads).
const BLOCK_ROWS: usize = 256;

/// The four views of a synthetic cohort.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SynthView {
    /// `image.npy`: image embedding in the pre-trained model's shared space (`--dim`).
    Image,
    /// `report.npy`: report embedding in the same shared space (`--dim`).
    Report,
    /// `image_features.npy`: frozen image-encoder features (`--feature-dim`).
    ImageFeatures,
    /// `report_features.npy`: frozen text-encoder features (`--feature-dim`).
    ReportFeatures,
}

impl SynthView {
    /// All four, in the order they are written.
    pub const ALL: [SynthView; 4] =
        [SynthView::Image, SynthView::Report, SynthView::ImageFeatures, SynthView::ReportFeatures];

    /// The view name (file stem).
    pub fn name(self) -> &'static str {
        match self {
            SynthView::Image => "image",
            SynthView::Report => "report",
            SynthView::ImageFeatures => "image_features",
            SynthView::ReportFeatures => "report_features",
        }
    }

    fn is_image(self) -> bool {
        matches!(self, SynthView::Image | SynthView::ImageFeatures)
    }

    /// The space the view lives in; image and report share the `shared` space.
    fn space(self) -> &'static str {
        match self {
            SynthView::Image | SynthView::Report => "shared",
            SynthView::ImageFeatures => "image_features",
            SynthView::ReportFeatures => "report_features",
        }
    }

    fn weights(self, model: &SynthModel, specialization: f64) -> ViewWeights {
        match self {
            SynthView::Image => image_weights(model, specialization),
            SynthView::Report => report_weights(model, specialization),
            SynthView::ImageFeatures => feature_weights(IMAGE_FEATURE_WEIGHTS, model, specialization),
            SynthView::ReportFeatures => feature_weights(REPORT_FEATURE_WEIGHTS, model, specialization),
        }
    }

    /// The space's name in stream purposes: the frozen features of a model with features
    /// of its own are keyed by its specialization.
    fn space_key(self, model: &SynthModel, specialization: f64) -> String {
        match self {
            SynthView::ImageFeatures | SynthView::ReportFeatures if model.model_features => {
                format!("{}@{specialization}", self.space())
            }
            _ => self.space().to_string(),
        }
    }
}

/// One block of latent columns: its first column, length, weight and direction key.
struct Block {
    first: usize,
    len: usize,
    weight: f64,
    /// Directions are drawn from stream(seed, "synth/direction/<key>", index).
    key: String,
    /// Index of the first direction (the report's history reuses anatomy directions 0..8).
    first_direction: u64,
}

/// The latent blocks of `view` with their weights and direction keys. In the shared space
/// the image's and the report's findings and instance detail use the same directions (that
/// is what makes the space shared), and the report's history reuses the image's first
/// anatomy directions; everything else has directions of its own.
fn blocks(view: SynthView, config: &SynthConfig, specialization: f64) -> Vec<Block> {
    let w = view.weights(&config.model, specialization);
    let space = view.space_key(&config.model, specialization);
    let modality = if view.is_image() { "image" } else { "report" };
    let other_model = view == SynthView::Report && config.report_transform == ReportTransform::OtherModel;
    let shared = |component: &str| {
        if space == "shared" && !other_model {
            format!("shared/{component}")
        } else {
            format!("{space}/{modality}/{component}")
        }
    };
    let own = |component: &str| format!("{space}/{modality}/{component}");
    let block = |first: usize, len: usize, weight: f64, key: String| Block {
        first,
        len,
        weight,
        key,
        first_direction: 0,
    };
    if view.is_image() {
        vec![
            block(image_cols::ANATOMY, ANATOMY_DIM, w.anatomy, shared("anatomy")),
            block(image_cols::FINDINGS, N_FINDINGS, w.findings, shared("findings")),
            block(image_cols::INSTANCE, INSTANCE_DIM, w.instance, shared("instance")),
            block(image_cols::SEX, 1, w.sex, own("sex")),
            block(image_cols::AGE, 1, w.age, own("age")),
            block(image_cols::RACE, RACES.len(), w.race, own("race")),
            block(image_cols::NUISANCE, NUISANCE_DIM, w.nuisance, own("nuisance")),
            block(image_cols::OFFSET, 1, w.offset, own("offset")),
            block(image_cols::SITE, 1, w.site, own("site")),
        ]
    } else {
        vec![
            block(report_cols::HISTORY, HISTORY_DIM, w.anatomy, shared("anatomy")),
            block(report_cols::FINDINGS, N_FINDINGS, w.findings, shared("findings")),
            block(report_cols::INSTANCE, INSTANCE_DIM, w.instance, shared("instance")),
            block(report_cols::NUISANCE, NUISANCE_DIM, w.nuisance, own("nuisance")),
            block(report_cols::OFFSET, 1, w.offset, own("offset")),
            block(report_cols::SITE, 1, w.site, own("site")),
        ]
    }
}

/// The weighted map of `view`: latent columns x `dim`, row-major; row l is the unit
/// direction of latent column l times its weight.
fn weighted_map(config: &SynthConfig, view: SynthView, specialization: f64, latent_len: usize, dim: usize) -> Vec<f32> {
    let seed = config.seed;
    let mut map = vec![0f32; latent_len * dim];
    for block in blocks(view, config, specialization) {
        let purpose = format!("synth/direction/{}", block.key);
        for j in 0..block.len {
            let row = &mut map[(block.first + j) * dim..(block.first + j + 1) * dim];
            let mut rng = stream(seed, &purpose, block.first_direction + j as u64);
            let mut direction: Vec<f64> = (0..dim).map(|_| rng.sample(StandardNormal)).collect();
            let norm = direction.iter().map(|x| x * x).sum::<f64>().sqrt().max(f64::MIN_POSITIVE);
            for x in direction.iter_mut() {
                *x *= block.weight / norm;
            }
            for (out, x) in row.iter_mut().zip(&direction) {
                *out = *x as f32;
            }
        }
    }
    if view == SynthView::Report && config.report_transform == ReportTransform::Rotate {
        map = rotate(&map, latent_len, dim, seed);
    }
    map
}

/// `map` (rows x dim) times a random orthogonal dim x dim matrix (the Q factor of a seeded
/// Gaussian matrix, faer's QR). The noise is isotropic, so rotating the map is the same in
/// distribution as rotating the rendered view.
fn rotate(map: &[f32], rows: usize, dim: usize, seed: u64) -> Vec<f32> {
    let mut rng = stream(seed, "synth/report-rotation", 0);
    let gaussian = faer::Mat::<f64>::from_fn(dim, dim, |_, _| rng.sample(StandardNormal));
    let q = gaussian.qr().compute_Q();
    let m = faer::Mat::<f64>::from_fn(rows, dim, |i, j| f64::from(map[i * dim + j]));
    let rotated = &m * &q;
    let mut out = vec![0f32; rows * dim];
    for i in 0..rows {
        for j in 0..dim {
            out[i * dim + j] = rotated[(i, j)] as f32;
        }
    }
    out
}

impl Population {
    /// Render `view` at `specialization` (only `image` and `report` depend on it): an
    /// n x dim row-major matrix of raw (not normalised) values. Errors when
    /// `specialization` is outside [0, 1].
    pub fn render(&self, view: SynthView, specialization: f64) -> Result<Vec<f32>> {
        check_specialization(specialization)?;
        let (latent, latent_len) = if view.is_image() {
            (&self.image_latent, image_cols::LEN)
        } else {
            (&self.report_latent, report_cols::LEN)
        };
        let dim = match view {
            SynthView::Image | SynthView::Report => self.config.dim,
            SynthView::ImageFeatures | SynthView::ReportFeatures => self.config.feature_dim,
        };
        let seed = self.config.seed;
        let model = &self.config.model;
        let noise_sd = view.weights(model, specialization).noise_sd as f32;
        let map = weighted_map(&self.config, view, specialization, latent_len, dim);
        let n = self.len();
        let mut out = vec![0f32; n * dim];
        let noise_purpose = match view {
            SynthView::ImageFeatures | SynthView::ReportFeatures if model.model_features => {
                format!("synth/noise/{}@{specialization}", view.name())
            }
            _ => format!("synth/noise/{}", view.name()),
        };
        // The records of one study share its report (identical rows); each image has its own
        // noise.
        let record_purposes: Vec<String> = (0..self.config.records_per_study)
            .map(|r| if r == 0 || !view.is_image() { noise_purpose.clone() } else { format!("{noise_purpose}/{r}") })
            .collect();
        out.par_chunks_mut(BLOCK_ROWS * dim)
            .zip(latent.par_chunks(BLOCK_ROWS * latent_len))
            .enumerate()
            .for_each(|(block, (out_block, latent_block))| {
                let rows = out_block.len() / dim;
                for (r, row) in out_block.chunks_mut(dim).enumerate() {
                    let record = block * BLOCK_ROWS + r;
                    let purpose = &record_purposes[usize::from(self.record_numbers[record])];
                    let mut rng = stream(seed, purpose, self.study_keys[record]);
                    for x in row.iter_mut() {
                        *x = noise_sd * rng.sample::<f32, _>(StandardNormal);
                    }
                }
                matmul(
                    MatMut::from_row_major_slice_mut(out_block, rows, dim),
                    Accum::Add,
                    MatRef::from_row_major_slice(latent_block, rows, latent_len),
                    MatRef::from_row_major_slice(&map, latent_len, dim),
                    1.0f32,
                    Par::Seq,
                );
            });
        Ok(out)
    }
}
