//! Heads one can ship: trained image and report heads written as one safetensors file with
//! their privacy ledger and the feature normalisation in its metadata, read back by
//! `linkrisk apply-heads` to turn any cohort's frozen features into head embeddings.
//!
//! `DIR/heads.safetensors` holds, per head and layer `l` (0 for linear heads; 0 and 1 for
//! MLP heads), `image.l.weight` (out x in, row-major), `image.l.bias` (out), the same for
//! `report`, and `log_inverse_temperature` (1 value), all float32. The string metadata
//! holds `format` (`linkrisk-heads`), `format_version` (`1`), `heads` (architecture, JSON),
//! `feature_normalisation` (what to do to a feature row before the first layer, JSON),
//! `privacy` (the ledger, JSON, as `privacy.json`) and `linkrisk_version`. `DIR/privacy.json`
//! repeats the ledger for people. The layout is documented in docs/FORMATS.md.
//!
//! The file stores the applied model's float32 parameters bit for bit, and projection goes
//! through the same code, so heads read back project a cohort to exactly the embeddings the
//! heads that were exported produce.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use ::safetensors::tensor::{Dtype, SafeTensors, TensorView};
use serde::{Deserialize, Serialize};

use super::model::{HeadKind, Layout, Model, Side};
use super::{PrivacyLedger, ProjectionRecord, TrainedHeads};
use crate::cohort::write::atomic_bytes;
use crate::error::{Error, Result};

/// File name of exported heads inside an export directory.
pub const HEADS_FILE: &str = "heads.safetensors";
/// Value of the `format` metadata key.
pub const FORMAT: &str = "linkrisk-heads";
/// Value of the `format_version` metadata key.
pub const FORMAT_VERSION: &str = "1";

/// The architecture of exported heads (metadata key `heads`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HeadsSpec {
    /// Head architecture (both heads).
    pub head: HeadKind,
    /// Dimension of the shared output space.
    pub dim: usize,
    /// Input dimension of the image head (the image features' dimension).
    pub image_input_dim: usize,
    /// Input dimension of the report head.
    pub report_input_dim: usize,
    /// Hidden activation of MLP heads (`gelu_tanh`), null for linear heads.
    pub activation: Option<String>,
    /// What is done to each head's output: `l2_normalise_rows`.
    pub output: String,
    /// Whether the temperature was learned (it matters for training only).
    pub learned_temperature: bool,
}

/// What a feature row goes through before a head's first layer (metadata key
/// `feature_normalisation`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureNormalisation {
    /// The image side.
    pub image: SideNormalisation,
    /// The report side.
    pub report: SideNormalisation,
    /// The public input projection the heads were trained behind; already folded into the
    /// first layer's weight and bias, so nothing is left to apply (recorded for provenance).
    pub public_projection: Option<ProjectionRecord>,
}

/// One side of [`FeatureNormalisation`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SideNormalisation {
    /// The cohort view the features are read from (e.g. `image_features`).
    pub view: String,
    /// Its dimension.
    pub dim: usize,
    /// Steps in order: `l2_normalise_rows` (each row divided by its Euclidean norm, as
    /// linkrisk loads every view).
    pub steps: Vec<String>,
}

impl TrainedHeads {
    /// The cohort view the image head reads.
    pub fn image_view(&self) -> &str {
        &self.image_view
    }

    /// The cohort view the report head reads.
    pub fn report_view(&self) -> &str {
        &self.report_view
    }

    /// Read features from other views (e.g. a cohort whose features are named otherwise).
    pub fn with_views(mut self, image_view: impl Into<String>, report_view: impl Into<String>) -> Self {
        self.image_view = image_view.into();
        self.report_view = report_view.into();
        self
    }

    /// The architecture, as exported.
    pub fn spec(&self) -> HeadsSpec {
        HeadsSpec {
            head: self.ledger.head,
            dim: self.dim(),
            image_input_dim: self.image_input_dim(),
            report_input_dim: self.report_input_dim(),
            activation: matches!(self.ledger.head, HeadKind::Mlp { .. }).then(|| "gelu_tanh".to_string()),
            output: "l2_normalise_rows".into(),
            learned_temperature: self.applied.layout.log_scale.is_some(),
        }
    }

    /// The feature normalisation, as exported.
    pub fn feature_normalisation(&self) -> FeatureNormalisation {
        let side = |view: &str, dim: usize| SideNormalisation {
            view: view.to_string(),
            dim,
            steps: vec!["l2_normalise_rows".to_string()],
        };
        FeatureNormalisation {
            image: side(&self.image_view, self.image_input_dim()),
            report: side(&self.report_view, self.report_input_dim()),
            public_projection: self.ledger.input_projection.clone(),
        }
    }

    /// Write `dir/heads.safetensors` and `dir/privacy.json` (each atomically; `dir` is
    /// created). Returns the path of the safetensors file.
    pub fn export(&self, dir: &Path) -> Result<PathBuf> {
        std::fs::create_dir_all(dir).map_err(|e| Error::write(dir, e))?;
        let metadata: HashMap<String, String> = [
            ("format".to_string(), FORMAT.to_string()),
            ("format_version".to_string(), FORMAT_VERSION.to_string()),
            ("heads".to_string(), json("heads", &self.spec())?),
            (
                "feature_normalisation".to_string(),
                json("feature_normalisation", &self.feature_normalisation())?,
            ),
            ("privacy".to_string(), json("privacy", &self.ledger)?),
            ("linkrisk_version".to_string(), crate::VERSION.to_string()),
        ]
        .into_iter()
        .collect();
        let model = &self.applied;
        let mut tensors: Vec<(String, Vec<usize>, Vec<u8>)> = Vec::new();
        for (side, name) in [(Side::Image, "image"), (Side::Report, "report")] {
            for (l, layer) in model.layout.side(side).iter().enumerate() {
                let w = &model.params[layer.w..layer.w + layer.in_dim * layer.out_dim];
                let b = &model.params[layer.b..layer.b + layer.out_dim];
                tensors.push((format!("{name}.{l}.weight"), vec![layer.out_dim, layer.in_dim], le_bytes(w)));
                tensors.push((format!("{name}.{l}.bias"), vec![layer.out_dim], le_bytes(b)));
            }
        }
        tensors.push(("log_inverse_temperature".into(), vec![1], le_bytes(&[model.log_scale()])));
        let views = tensors
            .iter()
            .map(|(name, shape, bytes)| {
                TensorView::new(Dtype::F32, shape.clone(), bytes).map(|v| (name.clone(), v))
            })
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|e| Error::config(format!("building the heads tensors: {e}")))?;
        let bytes = ::safetensors::tensor::serialize(views, &Some(metadata))
            .map_err(|e| Error::config(format!("serialising the heads: {e}")))?;
        let path = dir.join(HEADS_FILE);
        atomic_bytes(&path, &bytes)?;
        let ledger = serde_json::to_string_pretty(&self.ledger)
            .map_err(|e| Error::config(format!("serialising privacy.json: {e}")))?;
        atomic_bytes(&dir.join("privacy.json"), format!("{ledger}\n").as_bytes())?;
        Ok(path)
    }

    /// Read heads written by [`TrainedHeads::export`] from `path` (the safetensors file, or
    /// the directory holding `heads.safetensors`).
    pub fn load(path: &Path) -> Result<TrainedHeads> {
        if !path.exists() {
            return Err(Error::input(
                path,
                format!("no such file or directory; give the directory --export-heads wrote (holding {HEADS_FILE}) or that file"),
            ));
        }
        let file = if path.is_dir() { path.join(HEADS_FILE) } else { path.to_path_buf() };
        if !file.is_file() {
            return Err(Error::input(
                &file,
                format!("no {HEADS_FILE} here; give the directory --export-heads wrote, or the file itself"),
            ));
        }
        let bytes = std::fs::read(&file).map_err(|e| Error::io(&file, e))?;
        let bad = |message: String| Error::input(&file, message);
        let (_, header) = SafeTensors::read_metadata(&bytes).map_err(|e| {
            bad(format!("not a safetensors file ({e}); give the heads.safetensors that --export-heads wrote"))
        })?;
        let meta = header.metadata().clone().unwrap_or_default();
        let key = |k: &str| -> Result<&String> {
            meta.get(k).ok_or_else(|| {
                bad(format!(
                    "no `{k}` in the safetensors metadata: not heads exported by linkrisk (--export-heads writes them)"
                ))
            })
        };
        if key("format")? != FORMAT {
            return Err(bad(format!("metadata `format` is `{}`, not `{FORMAT}`", key("format")?)));
        }
        if key("format_version")? != FORMAT_VERSION {
            return Err(bad(format!(
                "heads format version {} is not supported (this linkrisk reads version {FORMAT_VERSION})",
                key("format_version")?
            )));
        }
        let parse = |k: &str| -> Result<serde_json::Value> {
            serde_json::from_str(key(k)?).map_err(|e| bad(format!("metadata `{k}` is not valid JSON: {e}")))
        };
        let spec: HeadsSpec =
            serde_json::from_value(parse("heads")?).map_err(|e| bad(format!("metadata `heads`: {e}")))?;
        let norm: FeatureNormalisation = serde_json::from_value(parse("feature_normalisation")?)
            .map_err(|e| bad(format!("metadata `feature_normalisation`: {e}")))?;
        let ledger: PrivacyLedger =
            serde_json::from_value(parse("privacy")?).map_err(|e| bad(format!("metadata `privacy`: {e}")))?;
        for (side, s) in [("image", &norm.image), ("report", &norm.report)] {
            if s.steps != ["l2_normalise_rows"] {
                return Err(bad(format!(
                    "the {side} features' normalisation {:?} is not supported (expected [\"l2_normalise_rows\"])",
                    s.steps
                )));
            }
        }
        if spec.output != "l2_normalise_rows" {
            return Err(bad(format!(
                "output `{}` is not supported (expected l2_normalise_rows)",
                spec.output
            )));
        }
        let layout = Layout::new(
            spec.head,
            spec.image_input_dim,
            spec.report_input_dim,
            spec.dim,
            spec.learned_temperature,
        );
        let tensors =
            SafeTensors::deserialize(&bytes).map_err(|e| bad(format!("reading the tensors: {e}")))?;
        let read = |name: &str, shape: &[usize]| -> Result<Vec<f32>> {
            let t = tensors.tensor(name).map_err(|_| bad(format!("no tensor `{name}`")))?;
            if t.dtype() != Dtype::F32 || t.shape() != shape {
                return Err(bad(format!(
                    "tensor `{name}` is {:?} {:?}; the architecture in `heads` needs F32 {shape:?}",
                    t.dtype(),
                    t.shape()
                )));
            }
            let values: Vec<f32> =
                t.data().chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
            if let Some(i) = values.iter().position(|v| !v.is_finite()) {
                return Err(bad(format!("tensor `{name}` holds a non-finite value at index {i}")));
            }
            Ok(values)
        };
        let mut params = vec![0f32; layout.n_params];
        for (side, name) in [(Side::Image, "image"), (Side::Report, "report")] {
            for (l, layer) in layout.side(side).iter().enumerate() {
                let w = read(&format!("{name}.{l}.weight"), &[layer.out_dim, layer.in_dim])?;
                let b = read(&format!("{name}.{l}.bias"), &[layer.out_dim])?;
                params[layer.w..layer.w + w.len()].copy_from_slice(&w);
                params[layer.b..layer.b + b.len()].copy_from_slice(&b);
            }
        }
        let log_scale = read("log_inverse_temperature", &[1])?[0];
        if let Some(i) = layout.log_scale {
            params[i] = log_scale;
        }
        let model = Model { layout, params, fixed_log_scale: log_scale };
        Ok(TrainedHeads {
            applied: model.clone(),
            model,
            projection: None,
            image_view: norm.image.view,
            report_view: norm.report.view,
            ledger,
        })
    }
}

/// Little-endian bytes of float32 values.
fn le_bytes(values: &[f32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

/// Compact JSON of a metadata value.
fn json<T: Serialize>(what: &str, value: &T) -> Result<String> {
    serde_json::to_string(value).map_err(|e| Error::config(format!("serialising `{what}`: {e}")))
}
