//! The optimiser: libtorch's `nn::Adam` (default), or Keras's own Adam update.
//!
//! They differ only in where epsilon goes. libtorch: `lr/(1-β1ᵗ) · m / (√v/√(1-β2ᵗ) + ε)`;
//! Keras (tf-keras 2.21, `Adam.update_step`):
//! `α = lr·√(1-β2ᵗ)/(1-β1ᵗ); m += (g-m)(1-β1); v += (g²-v)(1-β2); w -= m·α/(√v + ε)`,
//! where the betas inside `α` are float32-rounded (see [`keras_alpha`]).

use anyhow::{Result, bail};
use clap::ValueEnum;
use serde::Serialize;
use tch::{Kind, Tensor, nn, nn::OptimizerConfig};

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Serialize, serde::Deserialize)]
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
            let alpha = keras_alpha(self.lr, self.t, self.param.kind());
            let _ = self.m.g_add_(&((&g - &self.m) * (1.0 - b1)));
            let _ = self.v.g_add_(&((g.square() - &self.v) * (1.0 - b2)));
            let _ = self
                .param
                .g_sub_(&((&self.m * alpha) / (self.v.sqrt() + self.eps)));
        })
    }
}

/// Keras's step size `lr·√(1-β2ᵗ)/(1-β1ᵗ)`, computed as Keras computes it.
///
/// Keras writes `tf.pow(tf.cast(self.beta_2, dtype), t)`, and `tf.cast` of a
/// Python float goes through a float32 tensor: the betas in the bias
/// correction are float32-rounded even under float64 (0.999 becomes
/// 0.99900001287), which makes the first step 6e-6 (relative) smaller than
/// the exact formula. Under float32 the whole expression is float32.
pub fn keras_alpha(lr: f64, t: i32, kind: Kind) -> f64 {
    let (b1, b2) = (ADAM.beta1 as f32, ADAM.beta2 as f32);
    if kind == Kind::Float {
        let (lr, t) = (lr as f32, t as f32);
        (lr * (1.0 - b2.powf(t)).sqrt() / (1.0 - b1.powf(t))) as f64
    } else {
        let (b1, b2, t) = (b1 as f64, b2 as f64, t as f64);
        lr * (1.0 - b2.powf(t)).sqrt() / (1.0 - b1.powf(t))
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
    use tch::Device;

    /// Two float64 steps on known gradients against Keras's formula.
    #[test]
    fn keras_adam_follows_the_keras_update() {
        let vs = nn::VarStore::new(Device::Cpu);
        let p = vs
            .root()
            .add("params", Tensor::from_slice(&[0.5f64; 3]), true);
        let mut opt = KerasAdam::new(&vs, 0.03, 1e-7).unwrap();
        let grads = [[0.1f64, -0.02, 1e-6], [0.05, 0.3, -1e-6]];
        // Keras's betas in the bias correction (float32-rounded), and the exact ones.
        let betas = |b: f64| [(b as f32) as f64, b];
        let (mut w, mut m, mut v) = ([[0.5f64; 3]; 2], [0.0f64; 3], [0.0f64; 3]);
        for (t, g) in grads.iter().enumerate() {
            // Set the gradient: backward of sum(p * g).
            let mut grad = p.grad();
            if grad.defined() {
                let _ = grad.zero_();
            }
            (&p * Tensor::from_slice(g)).sum(Kind::Double).backward();
            opt.step();
            let t = t as i32 + 1;
            for i in 0..3 {
                m[i] += (g[i] - m[i]) * 0.1;
                v[i] += (g[i] * g[i] - v[i]) * 0.001;
            }
            for (k, (b1, b2)) in betas(0.9).into_iter().zip(betas(0.999)).enumerate() {
                let alpha = 0.03 * (1.0 - b2.powi(t)).sqrt() / (1.0 - b1.powi(t));
                for i in 0..3 {
                    w[k][i] -= m[i] * alpha / (v[i].sqrt() + 1e-7);
                }
            }
        }
        let got = Vec::<f64>::try_from(&p).unwrap();
        for i in 0..3 {
            assert!(
                (got[i] - w[0][i]).abs() < 1e-15,
                "{i}: {} vs {}",
                got[i],
                w[0][i]
            );
        }
        // The exact betas would be a different update, so the check can tell.
        assert!((got[0] - w[1][0]).abs() > 1e-8, "{} vs {}", got[0], w[1][0]);
        // A gradient of 1e-6 is where epsilon's place shows: libtorch's Adam
        // would move that weight by ~0.03 · 1e-6/(1e-6 + 3.2e-6) at step 1.
        assert!((got[2] - 0.5).abs() < 0.03 * 0.9, "{}", got[2]);
    }

    /// The values tf-keras 2.21's Adam uses (its `alpha`, computed in numpy
    /// from float32 betas, which reproduces a float64 Keras step exactly).
    #[test]
    fn keras_alpha_is_what_tf_keras_computes() {
        for (t, f64_alpha, f32_alpha) in [
            (1, 0.009486769648880972, 0.009486769326031208),
            (2, 0.007059454743747759, 0.007059431169182062),
            (100, 0.00925692012508864, 0.009256918914616108),
        ] {
            assert!((keras_alpha(0.03, t, Kind::Double) - f64_alpha).abs() < 1e-17);
            assert_eq!(keras_alpha(0.03, t, Kind::Float), f32_alpha, "t = {t}");
        }
    }
}
