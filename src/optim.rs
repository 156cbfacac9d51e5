//! The optimiser: libtorch's `nn::Adam` (default), or Keras's own Adam update.
//!
//! They differ only in where epsilon goes. libtorch: `lr/(1-β1ᵗ) · m / (√v/√(1-β2ᵗ) + ε)`;
//! Keras (tf-keras 2.21, `Adam.update_step`):
//! `α = lr·√(1-β2ᵗ)/(1-β1ᵗ); m += (g-m)(1-β1); v += (g²-v)(1-β2); w -= m·α/(√v + ε)`.

use anyhow::{Result, bail};
use clap::ValueEnum;
use serde::Serialize;
use tch::{Tensor, nn, nn::OptimizerConfig};

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Optimizer {
    /// libtorch's nn::Adam, epsilon 1e-7.
    Adam,
    /// Keras's Adam update, operation for operation.
    KerasAdam,
}

/// Keras's Adam: PyTorch's betas, but epsilon 1e-7 (PyTorch's is 1e-8).
pub const ADAM: nn::Adam = nn::Adam {
    beta1: 0.9,
    beta2: 0.999,
    wd: 0.0,
    eps: 1e-7,
    amsgrad: false,
};

/// One update of every parameter from its current gradient.
pub trait Step {
    fn step(&mut self);
}

impl Step for nn::Optimizer {
    fn step(&mut self) {
        nn::Optimizer::step(self)
    }
}

/// Keras's update on the store's (single, flat) variable.
pub struct KerasAdam {
    param: Tensor,
    m: Tensor,
    v: Tensor,
    t: i32,
    lr: f64,
    eps: f64,
}

impl KerasAdam {
    pub fn new(vs: &nn::VarStore, lr: f64, eps: f64) -> Result<Self> {
        let vars = vs.trainable_variables();
        let [param] = vars.as_slice() else {
            bail!(
                "keras-adam expects one flat parameter variable, found {}",
                vars.len()
            );
        };
        Ok(KerasAdam {
            m: param.zeros_like(),
            v: param.zeros_like(),
            param: param.shallow_clone(),
            t: 0,
            lr,
            eps,
        })
    }
}

impl Step for KerasAdam {
    fn step(&mut self) {
        tch::no_grad(|| {
            self.t += 1;
            let (b1, b2) = (ADAM.beta1, ADAM.beta2);
            let g = self.param.grad();
            let alpha = self.lr * (1.0 - b2.powi(self.t)).sqrt() / (1.0 - b1.powi(self.t));
            let _ = self.m.g_add_(&((&g - &self.m) * (1.0 - b1)));
            let _ = self.v.g_add_(&((g.square() - &self.v) * (1.0 - b2)));
            let _ = self
                .param
                .g_sub_(&((&self.m * alpha) / (self.v.sqrt() + self.eps)));
        })
    }
}

pub fn build(kind: Optimizer, vs: &nn::VarStore, lr: f64) -> Result<Box<dyn Step>> {
    build_with_eps(kind, vs, lr, ADAM.eps)
}

/// [`build`] with another epsilon (parity checks show a wrong one is caught).
pub fn build_with_eps(
    kind: Optimizer,
    vs: &nn::VarStore,
    lr: f64,
    eps: f64,
) -> Result<Box<dyn Step>> {
    Ok(match kind {
        Optimizer::Adam => Box::new(nn::Adam { eps, ..ADAM }.build(vs, lr)?),
        Optimizer::KerasAdam => Box::new(KerasAdam::new(vs, lr, eps)?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    /// Two steps on known gradients against the Keras formula in float64.
    #[test]
    fn keras_adam_follows_the_keras_update() {
        let vs = nn::VarStore::new(Device::Cpu);
        let p = vs.root().var("params", &[3], nn::Init::Const(0.5));
        let mut opt = KerasAdam::new(&vs, 0.03, 1e-7).unwrap();
        let grads = [[0.1f64, -0.02, 1e-6], [0.05, 0.3, -1e-6]];
        let (mut w, mut m, mut v) = ([0.5f64; 3], [0.0f64; 3], [0.0f64; 3]);
        for (t, g) in grads.iter().enumerate() {
            // Set the gradient: backward of sum(p * g).
            let gt = Tensor::from_slice(g).to_kind(Kind::Float);
            let mut grad = p.grad();
            if grad.defined() {
                let _ = grad.zero_();
            }
            (&p * &gt).sum(Kind::Float).backward();
            opt.step();
            let t = t as i32 + 1;
            let alpha = 0.03 * (1.0 - 0.999f64.powi(t)).sqrt() / (1.0 - 0.9f64.powi(t));
            for i in 0..3 {
                m[i] += (g[i] - m[i]) * 0.1;
                v[i] += (g[i] * g[i] - v[i]) * 0.001;
                w[i] -= m[i] * alpha / (v[i].sqrt() + 1e-7);
            }
        }
        let got = Vec::<f64>::try_from(p.to_kind(Kind::Double)).unwrap();
        for i in 0..3 {
            assert!((got[i] - w[i]).abs() < 1e-6, "{i}: {} vs {}", got[i], w[i]);
        }
        // A gradient of 1e-6 is where epsilon's place shows: libtorch's Adam
        // would move that weight by ~0.03 · 1e-6/(1e-6 + 3.2e-6) at step 1.
        assert!((got[2] - 0.5).abs() < 0.03 * 0.9, "{}", got[2]);
    }
}
