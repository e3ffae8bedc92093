//! Optimisers over the flat parameter vector. Under DP-SGD they only post-process the
//! noisy gradient, so they cost no privacy.

use serde::{Deserialize, Serialize};

use super::real::Real;

/// The optimiser and its hyper-parameters.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Optimizer {
    /// Adam (Kingma & Ba 2015) with bias correction.
    Adam {
        /// First-moment decay, in [0, 1).
        beta1: f64,
        /// Second-moment decay, in [0, 1).
        beta2: f64,
        /// Added to the root second moment, > 0.
        eps: f64,
    },
    /// Stochastic gradient descent with heavy-ball momentum (0 = plain SGD).
    Sgd {
        /// Momentum, in [0, 1).
        momentum: f64,
    },
}

impl Default for Optimizer {
    fn default() -> Self {
        Optimizer::Adam { beta1: 0.9, beta2: 0.999, eps: 1e-8 }
    }
}

/// Optimiser state (moments) for one parameter vector.
#[derive(Debug, Clone)]
pub(crate) struct OptimizerState<T> {
    kind: Optimizer,
    first: Vec<T>,
    second: Vec<T>,
    steps: u64,
}

impl<T: Real> OptimizerState<T> {
    pub fn new(kind: Optimizer, n_params: usize) -> Self {
        let second =
            if matches!(kind, Optimizer::Adam { .. }) { vec![T::of(0.0); n_params] } else { Vec::new() };
        OptimizerState { kind, first: vec![T::of(0.0); n_params], second, steps: 0 }
    }

    /// One update of `params` with gradient `grad` and learning rate `lr`.
    pub fn step(&mut self, params: &mut [T], grad: &[T], lr: f64) {
        self.steps += 1;
        match self.kind {
            Optimizer::Adam { beta1, beta2, eps } => {
                let t = self.steps as i32;
                let step_size = T::of(lr * (1.0 - beta2.powi(t)).sqrt() / (1.0 - beta1.powi(t)));
                let eps_hat = T::of(eps * (1.0 - beta2.powi(t)).sqrt());
                let (b1, b2) = (T::of(beta1), T::of(beta2));
                let (one_b1, one_b2) = (T::of(1.0 - beta1), T::of(1.0 - beta2));
                for (((p, &g), m), v) in
                    params.iter_mut().zip(grad).zip(&mut self.first).zip(&mut self.second)
                {
                    *m = b1 * *m + one_b1 * g;
                    *v = b2 * *v + one_b2 * g * g;
                    *p -= step_size * *m / (v.sqrt() + eps_hat);
                }
            }
            Optimizer::Sgd { momentum } => {
                let (mu, lr) = (T::of(momentum), T::of(lr));
                for ((p, &g), m) in params.iter_mut().zip(grad).zip(&mut self.first) {
                    *m = mu * *m + g;
                    *p -= lr * *m;
                }
            }
        }
    }
}
