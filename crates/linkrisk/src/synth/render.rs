//! Rendering a view from the latents: a fixed random linear map (one unit direction per
//! latent column, scaled by the view's weight) plus isotropic Gaussian noise. The map is a
//! function of the seed only; the noise of each record comes from its own stream, and the
//! matrix product runs in fixed row blocks, so the bytes do not depend on thread count.

use faer::linalg::matmul::matmul;
use faer::{Accum, MatMut, MatRef, Par};
use rand::Rng;
use rand_distr::StandardNormal;
use rayon::prelude::*;

use super::check_specialization;
use super::model::{
    image_weights, report_weights, ViewWeights, ANATOMY_DIM, HISTORY_DIM, IMAGE_FEATURE_WEIGHTS,
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

    fn weights(self, specialization: f64) -> ViewWeights {
        match self {
            SynthView::Image => image_weights(specialization),
            SynthView::Report => report_weights(specialization),
            SynthView::ImageFeatures => IMAGE_FEATURE_WEIGHTS,
            SynthView::ReportFeatures => REPORT_FEATURE_WEIGHTS,
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
fn blocks(view: SynthView, specialization: f64) -> Vec<Block> {
    let w = view.weights(specialization);
    let space = view.space();
    let modality = if view.is_image() { "image" } else { "report" };
    let shared = |component: &str| {
        if space == "shared" {
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
fn weighted_map(seed: u64, view: SynthView, specialization: f64, latent_len: usize, dim: usize) -> Vec<f32> {
    let mut map = vec![0f32; latent_len * dim];
    for block in blocks(view, specialization) {
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
    map
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
        let noise_sd = view.weights(specialization).noise_sd as f32;
        let map = weighted_map(seed, view, specialization, latent_len, dim);
        let n = self.len();
        let mut out = vec![0f32; n * dim];
        let noise_purpose = format!("synth/noise/{}", view.name());
        out.par_chunks_mut(BLOCK_ROWS * dim)
            .zip(latent.par_chunks(BLOCK_ROWS * latent_len))
            .enumerate()
            .for_each(|(block, (out_block, latent_block))| {
                let rows = out_block.len() / dim;
                for (r, row) in out_block.chunks_mut(dim).enumerate() {
                    let key = self.study_keys[block * BLOCK_ROWS + r];
                    let mut rng = stream(seed, &noise_purpose, key);
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
