//! The optimiser: libtorch's `nn::Adam` (default), or one resumable Adam
//! ([`Resumable`]) on tensors we own, whose [`Update`] rule is libtorch's
//! (bit-identical to `nn::Adam`'s, tested below, but unlike `nn::Adam`,
//! whose state libtorch keeps out of reach (tch-rs issue #360), its state
//! can be saved in a checkpoint and restored) or Keras's.
//!
//! The rules differ only in where epsilon goes. libtorch: `lr/(1-β1ᵗ) · m / (√v/√(1-β2ᵗ) + ε)`;
//! Keras (tf-keras 2.21, `Adam.update_step`):
//! `α = lr·√(1-β2ᵗ)/(1-β1ᵗ); m += (g-m)(1-β1); v += (g²-v)(1-β2); w -= m·α/(√v + ε)`,
//! where the betas inside `α` are float32-rounded (see [`keras_alpha`]).

use anyhow::{Result, bail};
use tch::{Kind, Tensor, nn, nn::OptimizerConfig};

use crate::config::Optimizer;

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
    /// The optimiser as a checkpoint saves it, if it can be.
    fn resumable(&self) -> Option<&Resumable> {
        None
    }
}

impl Step for nn::Optimizer {
    fn step(&mut self) {
        nn::Optimizer::step(self)
    }
}

/// `value` as a 0-dim tensor of `like`'s kind and device: a scalar operand
/// that libtorch takes down the same kernel path as a scalar argument,
/// without wrapping one on every call.
pub(crate) fn scalar_like(value: f64, like: &Tensor) -> Tensor {
    Tensor::from(value)
        .to_kind(like.kind())
        .to_device(like.device())
}

/// The store's single flat variable, which both hand-written updates expect.
pub fn flat_param(vs: &nn::VarStore, what: &str) -> Result<Tensor> {
    let vars = vs.trainable_variables();
    let [param] = vars.as_slice() else {
        bail!(
            "{what} expects one flat parameter variable, found {}",
            vars.len()
        );
    };
    Ok(param.shallow_clone())
}

/// Adam's update rules, each with its formula and the names its state
/// tensors go under in a checkpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Update {
    /// libtorch's `torch::optim::Adam::step` (torch/csrc/api/src/optim/adam.cpp,
    /// libtorch 2.x, weight decay 0, no amsgrad), bit-identical to `nn::Adam`:
    ///
    /// ```text
    /// step += 1; bc1 = 1 - pow(beta1, step); bc2 = 1 - pow(beta2, step)
    /// exp_avg.mul_(beta1).add_(grad, 1 - beta1)
    /// exp_avg_sq.mul_(beta2).addcmul_(grad, grad, 1 - beta2)
    /// denom = (exp_avg_sq.sqrt() / sqrt(bc2)).add_(eps)
    /// p.addcdiv_(exp_avg, denom, -lr / bc1)
    /// ```
    ///
    /// tch drops the scalar `alpha`/`value` arguments of `add_`, `addcmul_`
    /// and `addcdiv_`, so each scaled operand is formed first with the same
    /// scalar kernel the fused op applies (`value * t1` rounds the same
    /// either way) and the op is called with the value 1, which is exact.
    Torch,
    /// Keras's update, in Keras's order of operations.
    Keras,
}

impl Update {
    /// The names of its state tensors in a checkpoint, in the order its
    /// formula takes them.
    pub fn state_names(self) -> &'static [&'static str] {
        match self {
            Update::Torch => &["exp_avg", "exp_avg_sq"],
            Update::Keras => &["m", "v"],
        }
    }
}

impl From<Optimizer> for Update {
    fn from(o: Optimizer) -> Self {
        match o {
            Optimizer::Adam => Update::Torch,
            Optimizer::KerasAdam => Update::Keras,
        }
    }
}

/// The names of an optimiser's state tensors in a checkpoint.
pub fn state_names(o: Optimizer) -> &'static [&'static str] {
    Update::from(o).state_names()
}

/// An optimiser's state: its step count and its per-element tensors, named.
pub struct State {
    pub step: i64,
    pub tensors: Vec<(&'static str, Tensor)>,
}

impl State {
    fn take(&self, name: &str, like: &Tensor) -> Result<Tensor> {
        let Some((_, t)) = self.tensors.iter().find(|(n, _)| *n == name) else {
            bail!("optimizer state lacks `{name}`");
        };
        if t.size() != like.size() || t.kind() != like.kind() {
            bail!(
                "optimizer state `{name}` is {:?} {:?}, the parameters {:?} {:?}",
                t.kind(),
                t.size(),
                like.kind(),
                like.size()
            );
        }
        Ok(t.to_device(like.device()).copy())
    }
}

/// Adam's constants and per-step values as 0-dim tensors.
struct Scalars {
    beta1: Tensor,
    one_minus_beta1: Tensor,
    beta2: Tensor,
    one_minus_beta2: Tensor,
    eps: Tensor,
    /// Refilled every step.
    per_step: [Tensor; 2],
}

impl Scalars {
    fn new(like: &Tensor, eps: f64) -> Self {
        let t = |v: f64| scalar_like(v, like);
        Scalars {
            beta1: t(ADAM.beta1),
            one_minus_beta1: t(1.0 - ADAM.beta1),
            beta2: t(ADAM.beta2),
            one_minus_beta2: t(1.0 - ADAM.beta2),
            eps: t(eps),
            per_step: [t(0.0), t(0.0)],
        }
    }

    /// Sets this step's values `a` and `b`.
    fn fill(&mut self, a: f64, b: f64) {
        let [ta, tb] = &mut self.per_step;
        let _ = ta.fill_(a);
        let _ = tb.fill_(b);
    }
}

/// Adam on the store's (single, flat) variable by an [`Update`] rule, its
/// state ours, so that it can be saved and restored: what `train` and
/// `sweep` use, so that their runs can be resumed.
///
/// Every scalar is a 0-dim tensor of the parameters' kind, made once (or
/// refilled per step), and every intermediate goes into a tensor made once:
/// libtorch treats a 0-dim operand exactly as it treats a scalar argument
/// (the same kernel, the value cast to the same kind), but wrapping a
/// scalar costs more than the arithmetic on this network's 37 elements.
pub struct Resumable {
    update: Update,
    param: Tensor,
    /// The rule's state tensors, in [`Update::state_names`]' order.
    state: Vec<Tensor>,
    step: i64,
    lr: f64,
    scalars: Scalars,
    /// Two tensors shaped as the parameters, for intermediates.
    scratch: Tensor,
    denom: Tensor,
    /// A batched model's learning rate per replica, in place of `lr`.
    lanes: Option<LaneLr>,
}

impl Resumable {
    /// `update`'s Adam with Keras's epsilon.
    pub fn new(update: impl Into<Update>, vs: &nn::VarStore, lr: f64) -> Result<Self> {
        Self::with_eps(update.into(), vs, lr, ADAM.eps)
    }

    /// `update`'s Adam with an epsilon of choice (parity checks show a
    /// wrong one is caught).
    pub fn with_eps(update: Update, vs: &nn::VarStore, lr: f64, eps: f64) -> Result<Self> {
        let param = flat_param(vs, &format!("{update:?} Adam"))?;
        Ok(Resumable {
            update,
            state: update
                .state_names()
                .iter()
                .map(|_| param.zeros_like())
                .collect(),
            scratch: param.zeros_like(),
            denom: param.zeros_like(),
            scalars: Scalars::new(&param, eps),
            param,
            step: 0,
            lr,
            lanes: None,
        })
    }

    /// [`Resumable::new`] for a batched model with one learning rate per
    /// lane: the scalar path when they are all equal (a seeds sweep).
    pub fn per_lane(update: impl Into<Update>, vs: &nn::VarStore, lrs: Vec<f64>) -> Result<Self> {
        let mut opt = Self::new(update, vs, lrs[0])?;
        if lrs.iter().any(|&lr| lr != lrs[0]) {
            opt.lanes = Some(LaneLr(lrs));
        }
        Ok(opt)
    }

    pub fn state(&self) -> State {
        let names = self.update.state_names().iter().copied();
        State {
            step: self.step,
            tensors: names
                .zip(self.state.iter().map(Tensor::shallow_clone))
                .collect(),
        }
    }

    /// The flat parameter variable it updates (shared storage).
    pub fn params(&self) -> &Tensor {
        &self.param
    }

    /// Puts back saved parameters and optimiser state.
    pub fn restore(&mut self, params: &Tensor, state: &State) -> Result<()> {
        let mut target = self.params().shallow_clone();
        if target.size() != params.size() {
            bail!(
                "the checkpoint holds {} parameters, this network {}",
                params.numel(),
                target.numel()
            );
        }
        tch::no_grad(|| target.f_copy_(&params.to_device(target.device())))?;
        self.state = (self.update.state_names().iter())
            .map(|name| state.take(name, &self.param))
            .collect::<Result<_>>()?;
        self.step = state.step;
        // Keras counts its steps in an int32.
        if self.update == Update::Keras {
            i32::try_from(state.step)?;
        }
        Ok(())
    }

    /// The rule's state tensors, as many as its names.
    fn moments<const N: usize>(state: &mut [Tensor]) -> &mut [Tensor; N] {
        state.try_into().expect("one tensor per state name")
    }

    /// [`Update::Torch`]'s formula.
    fn torch_step(&mut self) {
        let grad = self.param.grad();
        if !grad.defined() {
            return;
        }
        let (beta1, beta2) = (ADAM.beta1, ADAM.beta2);
        self.step += 1;
        // C++'s std::pow(double, int64_t) is pow on doubles, as powf is
        // (powi would round differently).
        let bias_correction1 = 1.0 - beta1.powf(self.step as f64);
        let bias_correction2 = 1.0 - beta2.powf(self.step as f64);
        let k = &mut self.scalars;
        let [exp_avg, exp_avg_sq] = Self::moments(&mut self.state);
        let scaled = &self.scratch;
        // exp_avg.mul_(beta1).add_(grad, 1 - beta1): add_ with alpha is
        // a fused multiply-add, as addcmul_ of (grad, alpha) is.
        let _ = exp_avg.g_mul_(&k.beta1);
        let _ = exp_avg.addcmul_(&grad, &k.one_minus_beta1);
        // exp_avg_sq.mul_(beta2).addcmul_(grad, grad, 1 - beta2):
        // addcmul computes self + (value * t1) * t2.
        let _ = exp_avg_sq.g_mul_(&k.beta2);
        let _ = grad.mul_out(scaled, &k.one_minus_beta2);
        let _ = exp_avg_sq.addcmul_(scaled, &grad);
        k.fill(bias_correction2.sqrt(), -self.lr / bias_correction1);
        let [sqrt_bc2, neg_step_size] = &k.per_step;
        let _ = exp_avg_sq.sqrt_out(&self.denom);
        let _ = self.denom.g_div_(sqrt_bc2).g_add_(&k.eps);
        // p.addcdiv_(exp_avg, denom, -step_size): self + (value * t1) / t2.
        let _ = match &self.lanes {
            None => exp_avg.mul_out(scaled, neg_step_size),
            Some(l) => l.scale_into(scaled, exp_avg, |lr| -lr / bias_correction1),
        };
        let _ = self.param.addcdiv_(scaled, &self.denom);
    }

    /// [`Update::Keras`]'s formula.
    fn keras_step(&mut self) {
        self.step += 1;
        let g = self.param.grad();
        let (t, kind) = (self.step as i32, self.param.kind());
        let k = &mut self.scalars;
        let [m, v] = Self::moments(&mut self.state);
        let s = &mut self.scratch;
        // m += (g - m) * (1 - b1)
        let _ = g.sub_out(s, m);
        let _ = s.g_mul_(&k.one_minus_beta1);
        let _ = m.g_add_(s);
        // v += (g² - v) * (1 - b2)
        let _ = g.square_out(s);
        let _ = s.g_sub_(v).g_mul_(&k.one_minus_beta2);
        let _ = v.g_add_(s);
        // w -= (m * alpha) / (√v + eps)
        let _ = v.sqrt_out(&self.denom);
        let _ = self.denom.g_add_(&k.eps);
        let _ = match &self.lanes {
            None => {
                k.fill(keras_alpha(self.lr, t, kind), 0.0);
                m.mul_out(s, &k.per_step[0])
            }
            Some(l) => l.scale_into(s, m, |lr| keras_alpha(lr, t, kind)),
        };
        let _ = s.g_div_(&self.denom);
        let _ = self.param.g_sub_(s);
    }
}

impl Step for Resumable {
    fn step(&mut self) {
        crate::inference::inference_mode(|| match self.update {
            Update::Torch => self.torch_step(),
            Update::Keras => self.keras_step(),
        })
    }

    fn resumable(&self) -> Option<&Resumable> {
        Some(self)
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

/// libtorch's Adam or another rule's, with an epsilon of choice (parity
/// checks show a wrong one is caught).
pub fn build(kind: Optimizer, vs: &nn::VarStore, lr: f64, eps: f64) -> Result<Box<dyn Step>> {
    Ok(match kind {
        Optimizer::Adam => Box::new(nn::Adam { eps, ..ADAM }.build(vs, lr)?),
        other => Box::new(Resumable::with_eps(other.into(), vs, lr, eps)?),
    })
}

/// A learning rate per replica of a batched model, whose flat parameter
/// has the replica dimension last (`batched`: per layer `[in, out, R]`
/// weights then `[out, R]` biases), so that a `[-1, R]` view of it lines up
/// with one value per replica.
pub struct LaneLr(Vec<f64>);

impl LaneLr {
    /// `t` times `factor(lr)` of each element's replica, into `out`: the factor is
    /// computed in f64 and rounded to `t`'s kind, as a scalar operand of
    /// the same op is, so each replica steps exactly as a one-run optimiser
    /// with its learning rate does.
    fn scale_into(&self, out: &Tensor, t: &Tensor, factor: impl Fn(f64) -> f64) -> Tensor {
        let f: Vec<f64> = self.0.iter().map(|&lr| factor(lr)).collect();
        let f = Tensor::from_slice(&f)
            .to_kind(t.kind())
            .to_device(t.device());
        let lanes = [-1, self.0.len() as i64];
        t.view(lanes).mul_out(&out.view(lanes), &f)
    }
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
        let mut opt = Resumable::with_eps(Update::Keras, &vs, 0.03, 1e-7).unwrap();
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

    /// A flat float32 variable, its optimiser, and a seeded stream of
    /// random gradients (wide-ranging, as real ones are).
    fn run_on_random_gradients(n: i64, steps: usize, torch: bool, device: Device) -> Vec<f32> {
        tch::manual_seed(11);
        let vs = nn::VarStore::new(device);
        let init = Tensor::randn([n], (Kind::Float, Device::Cpu)).to_device(device);
        let p = vs.root().add("params", init, true);
        let mut opt: Box<dyn Step> = if torch {
            Box::new(ADAM.build(&vs, 0.03).unwrap())
        } else {
            Box::new(Resumable::new(Update::Torch, &vs, 0.03).unwrap())
        };
        let mut draws = crate::rng::stream(5, crate::rng::Stream::Data);
        for _ in 0..steps {
            let g: Vec<f32> = (0..n)
                .map(|_| {
                    let u = crate::rng::uniform(&mut draws) - 0.5;
                    (u * 10f64.powf(6.0 * crate::rng::uniform(&mut draws) - 5.0)) as f32
                })
                .collect();
            let mut grad = p.grad();
            if grad.defined() {
                let _ = grad.zero_();
            }
            (&p * Tensor::from_slice(&g).to_device(device))
                .sum(Kind::Float)
                .backward();
            opt.step();
        }
        Vec::<f32>::try_from(p.to_device(Device::Cpu)).unwrap()
    }

    fn assert_bit_identical(device: Device) {
        for n in [37, 2368] {
            let ours = run_on_random_gradients(n, 2000, false, device);
            let theirs = run_on_random_gradients(n, 2000, true, device);
            let differ = ours
                .iter()
                .zip(&theirs)
                .filter(|(a, b)| a.to_bits() != b.to_bits())
                .count();
            assert_eq!(differ, 0, "{differ} of {n} parameters differ on {device:?}");
            let fewer = run_on_random_gradients(n, 1999, true, device);
            assert_ne!(ours, fewer, "steps count");
        }
    }

    #[test]
    fn torch_adam_is_bit_identical_to_libtorchs_adam() {
        assert_bit_identical(Device::Cpu);
    }

    /// CUDA's kernels group `value * t1 * t2` differently from the CPU's in
    /// some libtorch versions; this says whether the mirror holds there too.
    #[test]
    fn torch_adam_is_bit_identical_to_libtorchs_adam_on_cuda() {
        if crate::device::load_cuda().is_err() || !tch::Cuda::is_available() {
            eprintln!("skipped: no CUDA device");
            return;
        }
        assert_bit_identical(Device::Cuda(0));
    }

    #[test]
    fn restored_state_continues_as_if_never_stopped() {
        let vs = nn::VarStore::new(Device::Cpu);
        let p = vs
            .root()
            .add("params", Tensor::from_slice(&[0.5f32, -1.0]), true);
        let mut a = Resumable::new(Update::Torch, &vs, 0.01).unwrap();
        let grad = |g: [f32; 2]| {
            let mut old = p.grad();
            if old.defined() {
                let _ = old.zero_();
            }
            (&p * Tensor::from_slice(&g)).sum(Kind::Float).backward();
        };
        grad([0.3, -0.2]);
        a.step();
        let saved = a.state();
        let copy = State {
            step: saved.step,
            tensors: saved.tensors.iter().map(|(n, t)| (*n, t.copy())).collect(),
        };
        let mut b = Resumable::new(Update::Torch, &vs, 0.01).unwrap();
        b.restore(&p.copy(), &copy).unwrap();
        grad([0.1, 0.4]);
        let before = p.copy();
        a.step();
        let after_a = p.copy();
        tch::no_grad(|| p.shallow_clone().copy_(&before));
        b.step();
        assert_eq!(
            Vec::<f32>::try_from(&p).unwrap(),
            Vec::<f32>::try_from(&after_a).unwrap()
        );
    }

    /// A per-lane learning rate steps each lane exactly as a one-run
    /// optimiser with that learning rate steps its parameters.
    #[test]
    fn a_lane_learning_rate_steps_each_lane_as_its_own_optimiser_would() {
        let lrs = [0.03, 0.001, 0.3];
        let start: Vec<f32> = (0..6).map(|i| i as f32 * 0.25 - 0.6).collect();
        let grads: Vec<Vec<f32>> = (0..5)
            .map(|t| {
                (0..6)
                    .map(|i| ((i * 7 + t * 3) % 11) as f32 * 0.1 - 0.5)
                    .collect()
            })
            .collect();
        // `values` stepped by `grads` under `lr`, or (None) the lanes' rates.
        let run = |kind, lr: Option<f64>, values: &[f32], grads: &[Vec<f32>]| {
            let vs = nn::VarStore::new(Device::Cpu);
            let p = vs.root().add("params", Tensor::from_slice(values), true);
            let mut opt = match lr {
                Some(lr) => Resumable::new(kind, &vs, lr),
                None => Resumable::per_lane(kind, &vs, lrs.to_vec()),
            }
            .unwrap();
            for g in grads {
                let mut old = p.grad();
                if old.defined() {
                    let _ = old.zero_();
                }
                (&p * Tensor::from_slice(g)).sum(Kind::Float).backward();
                opt.step();
            }
            let v = Vec::<f32>::try_from(&p).unwrap();
            v.iter().map(|x| x.to_bits()).collect::<Vec<_>>()
        };
        for kind in [Optimizer::Adam, Optimizer::KerasAdam] {
            // Element i is lane i % 3's, as in a batched model's layout.
            let together = run(kind, None, &start, &grads);
            for (lane, &lr) in lrs.iter().enumerate() {
                let pick = |v: &[f32]| vec![v[lane], v[lane + 3]];
                let own: Vec<Vec<f32>> = grads.iter().map(|g| pick(g)).collect();
                let alone = run(kind, Some(lr), &pick(&start), &own);
                let mine = vec![together[lane], together[lane + 3]];
                assert_eq!(mine, alone, "{kind:?}, lane {lane}");
            }
            assert_ne!(together[0], together[1], "the lanes' rates differ");
        }
    }
}
