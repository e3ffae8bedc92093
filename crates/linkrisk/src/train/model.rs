//! The model: an image head and a report head (linear, or linear + GELU + linear) mapping
//! frozen features into one shared space with L2-normalised outputs, and the InfoNCE
//! temperature. All parameters live in one flat vector, so the optimiser, the clipping and
//! the DP noise treat every coordinate alike.

use rand::Rng;
use serde::{Deserialize, Serialize};

use super::linalg::{matmul_nn, matmul_nt, matmul_tn};
use super::real::Real;
use crate::rng;

/// Architecture of a projection head.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum HeadKind {
    /// One affine map `W x + b`.
    Linear,
    /// `W2 gelu(W1 x + b1) + b2` with `hidden` units (GELU in its tanh form).
    Mlp {
        /// Width of the hidden layer.
        hidden: usize,
    },
}

/// Which head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The image head.
    Image,
    /// The report head.
    Report,
}

/// Shape and position (in the flat parameter vector) of one affine layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LayerShape {
    pub in_dim: usize,
    pub out_dim: usize,
    /// Offset of the weight (out_dim x in_dim, row-major).
    pub w: usize,
    /// Offset of the bias (out_dim).
    pub b: usize,
}

/// Where every parameter sits in the flat vector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Layout {
    pub image: Vec<LayerShape>,
    pub report: Vec<LayerShape>,
    /// Index of ln(1 / temperature) when the temperature is learned.
    pub log_scale: Option<usize>,
    pub n_params: usize,
}

impl Layout {
    pub fn new(
        kind: HeadKind,
        image_dim: usize,
        report_dim: usize,
        out_dim: usize,
        learn_temperature: bool,
    ) -> Self {
        let mut offset = 0;
        let mut head = |in_dim: usize| -> Vec<LayerShape> {
            let dims: Vec<(usize, usize)> = match kind {
                HeadKind::Linear => vec![(in_dim, out_dim)],
                HeadKind::Mlp { hidden } => vec![(in_dim, hidden), (hidden, out_dim)],
            };
            dims.into_iter()
                .map(|(i, o)| {
                    let shape = LayerShape { in_dim: i, out_dim: o, w: offset, b: offset + i * o };
                    offset += i * o + o;
                    shape
                })
                .collect()
        };
        let image = head(image_dim);
        let report = head(report_dim);
        let log_scale = learn_temperature.then(|| {
            offset += 1;
            offset - 1
        });
        Layout { image, report, log_scale, n_params: offset }
    }

    pub fn side(&self, side: Side) -> &[LayerShape] {
        match side {
            Side::Image => &self.image,
            Side::Report => &self.report,
        }
    }

    pub fn in_dim(&self, side: Side) -> usize {
        self.side(side)[0].in_dim
    }

    pub fn out_dim(&self) -> usize {
        self.image.last().map_or(0, |l| l.out_dim)
    }
}

/// Parameters of both heads and the temperature.
#[derive(Debug, Clone)]
pub struct Model<T> {
    pub(crate) layout: Layout,
    pub(crate) params: Vec<T>,
    /// ln(1 / temperature) when the temperature is fixed.
    pub(crate) fixed_log_scale: T,
}

/// Forward activations of one head kept for the backward pass.
#[derive(Debug, Clone)]
pub(crate) struct HeadCache<T> {
    /// Pre-activations of every layer but the last (GELU inputs).
    pub pre: Vec<Vec<T>>,
    /// Outputs of the hidden layers (inputs of layers 1..).
    pub hidden: Vec<Vec<T>>,
    /// Norm of each output row before normalisation.
    pub norms: Vec<T>,
    /// Normalised outputs, n x out_dim.
    pub out: Vec<T>,
}

impl<T> HeadCache<T> {
    /// Input of layer `l`: the features for layer 0, else a hidden activation.
    pub fn layer_input<'a>(&'a self, x: &'a [T], l: usize) -> &'a [T] {
        if l == 0 {
            x
        } else {
            &self.hidden[l - 1]
        }
    }
}

/// Added under the square root of the output norm so a zero output has a gradient.
const NORM_EPS: f64 = 1e-12;

impl<T: Real> Model<T> {
    /// Random initial heads (weights uniform in +-1/sqrt(fan_in), zero biases, as PyTorch's
    /// `nn.Linear` scales them) from the stream (`seed`, "train/init"), and the initial
    /// temperature.
    pub(crate) fn init(layout: Layout, seed: u64, temperature: f64) -> Self {
        let mut params = vec![T::of(0.0); layout.n_params];
        for (index, layer) in layout.image.iter().chain(&layout.report).enumerate() {
            let mut rng = rng::stream(seed, "train/init", index as u64);
            let bound = 1.0 / (layer.in_dim as f64).sqrt();
            for w in &mut params[layer.w..layer.w + layer.in_dim * layer.out_dim] {
                *w = T::of(rng.random_range(-bound..bound));
            }
        }
        let log_scale = T::of((1.0 / temperature).ln());
        if let Some(i) = layout.log_scale {
            params[i] = log_scale;
        }
        Model { layout, params, fixed_log_scale: log_scale }
    }

    /// ln(1 / temperature).
    pub(crate) fn log_scale(&self) -> T {
        self.layout.log_scale.map_or(self.fixed_log_scale, |i| self.params[i])
    }

    /// Keep a learned temperature in [0.01, 1] (logit scale at most 100, as CLIP clamps it).
    /// Applied after every update; under DP-SGD it is post-processing.
    pub(crate) fn clamp_log_scale(&mut self) {
        if let Some(i) = self.layout.log_scale {
            let (low, high) = (T::of(0.0), T::of(100f64.ln()));
            let v = self.params[i];
            self.params[i] = if v > high {
                high
            } else if v < low {
                low
            } else {
                v
            };
        }
    }

    /// The temperature.
    pub fn temperature(&self) -> f64 {
        (-self.log_scale().to_f64()).exp()
    }

    /// Run one head on `n` rows of `x` (n x in_dim), keeping what backward needs.
    pub(crate) fn forward(&self, side: Side, x: &[T], n: usize) -> HeadCache<T> {
        let layers = self.layout.side(side);
        let mut cache = HeadCache { pre: Vec::new(), hidden: Vec::new(), norms: Vec::new(), out: Vec::new() };
        let last = layers.len() - 1;
        for (l, layer) in layers.iter().enumerate() {
            let input = cache.layer_input(x, l);
            let mut z = vec![T::of(0.0); n * layer.out_dim];
            let w = &self.params[layer.w..layer.w + layer.in_dim * layer.out_dim];
            matmul_nt(&mut z, false, input, w, n, layer.out_dim, layer.in_dim);
            let b = &self.params[layer.b..layer.b + layer.out_dim];
            for row in z.chunks_exact_mut(layer.out_dim) {
                for (v, &bias) in row.iter_mut().zip(b) {
                    *v += bias;
                }
            }
            if l < last {
                let h = z.iter().map(|&v| gelu(v)).collect();
                cache.pre.push(z);
                cache.hidden.push(h);
            } else {
                let d = layer.out_dim;
                cache.norms = z
                    .chunks_exact(d)
                    .map(|row| (row.iter().map(|&v| v * v).sum::<T>() + T::of(NORM_EPS)).sqrt())
                    .collect();
                for (row, &norm) in z.chunks_exact_mut(d).zip(&cache.norms) {
                    for v in row {
                        *v /= norm;
                    }
                }
                cache.out = z;
            }
        }
        cache
    }

    /// Backward through one head from `du` (gradient w.r.t. the normalised outputs) to the
    /// gradient w.r.t. each layer's pre-activation `z_l` (n x out_dim_l), unscaled.
    pub(crate) fn backward(&self, side: Side, cache: &HeadCache<T>, du: &[T], n: usize) -> Vec<Vec<T>> {
        let layers = self.layout.side(side);
        let d = self.layout.out_dim();
        // u = z / r with r = sqrt(|z|^2 + eps): dz = (du - u (u . du)) / r.
        let mut dz = vec![T::of(0.0); n * d];
        for i in 0..n {
            let u = &cache.out[i * d..(i + 1) * d];
            let g = &du[i * d..(i + 1) * d];
            let r = cache.norms[i];
            let proj = super::linalg::dot(u, g);
            for ((o, &ui), &gi) in dz[i * d..(i + 1) * d].iter_mut().zip(u).zip(g) {
                *o = (gi - ui * proj) / r;
            }
        }
        let mut out = vec![Vec::new(); layers.len()];
        let last = layers.len() - 1;
        out[last] = dz;
        for l in (1..layers.len()).rev() {
            let layer = layers[l];
            let w = &self.params[layer.w..layer.w + layer.in_dim * layer.out_dim];
            let mut dh = vec![T::of(0.0); n * layer.in_dim];
            matmul_nn(&mut dh, false, &out[l], w, n, layer.in_dim, layer.out_dim);
            for (g, &z) in dh.iter_mut().zip(&cache.pre[l - 1]) {
                *g *= gelu_grad(z);
            }
            out[l - 1] = dh;
        }
        out
    }

    /// Write each layer's weight and bias gradient into `grad` (flat layout) from the
    /// (already clip-scaled) pre-activation gradients `dz`: `dW = dz^T h`, `db = 1^T dz`.
    pub(crate) fn weight_gradients(
        &self,
        side: Side,
        x: &[T],
        cache: &HeadCache<T>,
        dz: &[Vec<T>],
        n: usize,
        grad: &mut [T],
    ) {
        for (l, layer) in self.layout.side(side).iter().enumerate() {
            let input = cache.layer_input(x, l);
            let gw = &mut grad[layer.w..layer.w + layer.in_dim * layer.out_dim];
            matmul_tn(gw, false, &dz[l], input, layer.out_dim, layer.in_dim, n);
            let gb = &mut grad[layer.b..layer.b + layer.out_dim];
            gb.fill(T::of(0.0));
            for row in dz[l].chunks_exact(layer.out_dim) {
                for (g, &v) in gb.iter_mut().zip(row) {
                    *g += v;
                }
            }
        }
    }

    /// Apply one head to `n` rows (normalised outputs, n x out_dim).
    pub(crate) fn project(&self, side: Side, x: &[T], n: usize) -> Vec<T> {
        // Blocks keep the hidden activations small for large cohorts.
        const BLOCK: usize = 8192;
        let in_dim = self.layout.in_dim(side);
        let mut out = Vec::with_capacity(n * self.layout.out_dim());
        for start in (0..n).step_by(BLOCK) {
            let rows = BLOCK.min(n - start);
            let cache = self.forward(side, &x[start * in_dim..(start + rows) * in_dim], rows);
            out.extend_from_slice(&cache.out);
        }
        out
    }
}

const GELU_C: f64 = 0.7978845608028654; // sqrt(2 / pi)
const GELU_A: f64 = 0.044715;

/// GELU, tanh form: `0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))` (Hendrycks & Gimpel).
#[inline]
pub(crate) fn gelu<T: Real>(x: T) -> T {
    let t = (T::of(GELU_C) * (x + T::of(GELU_A) * x * x * x)).tanh();
    T::of(0.5) * x * (T::of(1.0) + t)
}

/// Derivative of [`gelu`].
#[inline]
pub(crate) fn gelu_grad<T: Real>(x: T) -> T {
    let inner = T::of(GELU_C) * (x + T::of(GELU_A) * x * x * x);
    let t = inner.tanh();
    let dinner = T::of(GELU_C) * (T::of(1.0) + T::of(3.0 * GELU_A) * x * x);
    T::of(0.5) * (T::of(1.0) + t) + T::of(0.5) * x * (T::of(1.0) - t * t) * dinner
}
