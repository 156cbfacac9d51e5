//! The article's network: `hidden_layers` Dense layers of `units` with the
//! chosen activation, then one sigmoid unit.
//!
//! The sequence ends at the sigmoid's input (the logit). Keras does the same
//! in effect: its binary cross-entropy notices the sigmoid and computes the
//! loss from the logit, and its accuracy thresholds `sigmoid(logit) > 0.5`.

use tch::{Tensor, nn, nn::Module};

use crate::config::{Activation, Experiment, Init};
use crate::optim::scalar_like;
use crate::rng::{self, Stream};

/// The network and its parameters.
///
/// The VarStore holds a single flat variable, and each `nn::Linear`'s weight
/// and bias are leaf tensors aliasing slices of it. nn::Adam then updates one
/// tensor per step instead of eight: its per-tensor overhead, not arithmetic,
/// dominates this tiny network (measured here: 105 µs → 13 µs a step, see
/// `examples/profile_step.rs`). Adam is element-wise, so the update is the
/// same as with separate variables.
#[derive(Debug)]
pub struct Network {
    pub seq: nn::Sequential,
    /// `(name, tensor)` per layer weight and bias, in flat order.
    params: Vec<(String, Tensor)>,
    /// The flat variable's gradient, which Adam reads.
    flat_grad: Tensor,
    /// Per layer, what the written-out step reads and writes.
    layers: Vec<Layer>,
    /// The step's intermediate tensors, one set per batch size seen (a
    /// run has two: full batches and the short last one).
    scratch: Vec<Scratch>,
    activation: Activation,
}

/// One Dense layer's views of the flat parameter and of its gradient.
#[derive(Debug)]
struct Layer {
    /// The weight `[out, in]` and, viewed transposed, `[in, out]` as `mm` takes it.
    w: Tensor,
    wt: Tensor,
    b: Tensor,
    gw: Tensor,
    gb: Tensor,
}

/// A step's intermediate tensors for batches of `rows`, reused from step to
/// step: at this size allocating them costs as much as computing them.
#[derive(Debug)]
struct Scratch {
    rows: i64,
    /// `rows` as a 0-dim tensor, the mean's divisor.
    divisor: Tensor,
    /// Each hidden layer's output `[rows, out]`.
    acts: Vec<Tensor>,
    /// The gradient at each layer's output, and viewed transposed.
    grads: Vec<Tensor>,
    grads_t: Vec<Tensor>,
    /// The gradient at each layer's input, before the activation's (`l > 0`).
    ups: Vec<Tensor>,
}

impl Scratch {
    fn new(rows: i64, layers: &[Layer], like: &Tensor) -> Self {
        let opts = (like.kind(), like.device());
        let out = |l: &Layer| Tensor::empty([rows, l.w.size()[0]], opts);
        let grads: Vec<Tensor> = layers.iter().map(out).collect();
        Scratch {
            rows,
            divisor: scalar_like(rows as f64, like),
            acts: layers[..layers.len() - 1].iter().map(out).collect(),
            grads_t: grads.iter().map(Tensor::tr).collect(),
            grads,
            ups: layers
                .iter()
                .map(|l| Tensor::empty([rows, l.w.size()[1]], opts))
                .collect(),
        }
    }
}

impl Network {
    pub fn build(vs: &nn::Path, e: &Experiment, seed: u64) -> Self {
        Self::with_values(vs, e, initial_values(e, seed))
    }

    /// The network with given starting values: per layer, weight ([out, in],
    /// row-major) and bias, as [`initial_values`] returns them.
    pub fn with_values(vs: &nn::Path, e: &Experiment, init: Vec<(Vec<f32>, Vec<f32>)>) -> Self {
        let values: Vec<f32> = init
            .into_iter()
            .flat_map(|(w, b)| w.into_iter().chain(b))
            .collect();
        Self::from_flat(vs, e, Tensor::from_slice(&values))
    }

    /// The network whose parameters, laid out as [`Network::with_values`]
    /// concatenates them, start as `flat`; they keep its kind (float32, or
    /// float64 for `parity --dtype f64`).
    pub fn from_flat(vs: &nn::Path, e: &Experiment, flat: Tensor) -> Self {
        let shapes = layer_shapes(e);
        let expected: i64 = shapes.iter().map(|(_, i, o)| (i + 1) * o).sum();
        assert_eq!(flat.size(), [expected], "flat parameter count");
        let flat = flat_variable(vs, &flat);
        let flat_grad = flat.grad();
        let mut take = slices(&flat);
        let mut seq = nn::seq();
        let (mut params, mut layers) = (vec![], vec![]);
        for (name, fan_in, fan_out) in &shapes {
            let ((w, gw), (b, gb)) = (take(&[*fan_out, *fan_in]), take(&[*fan_out]));
            let ws = w.shallow_clone().set_requires_grad(true);
            let bs = b.shallow_clone().set_requires_grad(true);
            params.push((format!("{name}.weight"), ws.shallow_clone()));
            params.push((format!("{name}.bias"), bs.shallow_clone()));
            seq = seq.add(nn::Linear { ws, bs: Some(bs) });
            if name != "out" {
                seq = add_activation(seq, e.activation);
            }
            let wt = w.tr();
            layers.push(Layer { w, wt, b, gw, gb });
        }
        Network {
            seq,
            params,
            flat_grad,
            layers,
            scratch: vec![],
            activation: e.activation,
        }
    }

    pub fn parameters(&self) -> &[(String, Tensor)] {
        &self.params
    }

    /// One training step's forward and backward pass: returns the logits of
    /// `xs` and writes the gradient of their mean binary cross-entropy against
    /// `ys` into the store (replacing it), ready for `opt.step()`.
    ///
    /// The backward pass is the chain rule written out, each gradient going
    /// straight into its slice of the flat gradient. It computes what autograd
    /// computes (`backward` below, checked against it in the tests) in about a
    /// third of the operations, without the autograd engine's per-call cost:
    /// for this network that overhead, not arithmetic, is the step time. The
    /// forward is Keras's Dense (`matmul`, then `bias_add`) written into
    /// reused tensors; `nn::Linear`'s `addmm` gives the same bits here
    /// (checked in the tests) but costs a copy of the bias more.
    pub fn train_step(&mut self, xs: &Tensor, ys: &Tensor) -> Tensor {
        let rows = xs.size()[0];
        let s = for_rows(
            &mut self.scratch,
            rows,
            |s| s.rows,
            || Scratch::new(rows, &self.layers, xs),
        );
        let (layers, activation) = (&self.layers, self.activation);
        crate::inference::inference_mode(|| {
            let last = layers.len() - 1;
            for (l, layer) in layers[..last].iter().enumerate() {
                let input = if l == 0 { xs } else { &s.acts[l - 1] };
                let _ = input.mm_out(&s.acts[l], &layer.wt);
                let _ = s.acts[l].g_add_(&layer.b);
                activate(activation, &mut s.acts[l]);
            }
            let input = if last == 0 { xs } else { &s.acts[last - 1] };
            let mut logits = input.mm(&layers[last].wt);
            let _ = logits.g_add_(&layers[last].b);
            // d mean(BCE(sigmoid(z), y)) / dz = (sigmoid(z) - y) / n
            let _ = logits.sigmoid_out(&s.grads[last]);
            let _ = s.grads[last].g_sub_(ys).g_div_(&s.divisor);
            for (l, layer) in layers.iter().enumerate().rev() {
                let input = if l == 0 { xs } else { &s.acts[l - 1] };
                let g = &s.grads[l];
                let _ = s.grads_t[l].mm_out(&layer.gw, input);
                let _ = g.sum_intlist_out(&layer.gb, [0i64].as_slice(), false, g.kind());
                if l > 0 {
                    let _ = g.mm_out(&s.ups[l], &layer.w);
                    activation_backward_into(activation, &s.grads[l - 1], &s.ups[l], input);
                }
            }
            logits
        })
    }

    /// The same gradient as [`Network::train_step`] writes, by autograd: the
    /// reference it is tested against.
    pub fn backward(&mut self, loss: &Tensor) {
        let leaves: Vec<&Tensor> = self.params.iter().map(|(_, t)| t).collect();
        let grads = Tensor::run_backward(&[loss], &leaves, false, false);
        let grads: Vec<Tensor> = grads.iter().map(|g| g.view(-1)).collect();
        tch::no_grad(|| self.flat_grad.copy_(&Tensor::cat(&grads, 0)));
    }
}

impl Module for Network {
    fn forward(&self, xs: &Tensor) -> Tensor {
        self.seq.forward(xs)
    }
}

impl crate::fit::Model for Network {
    fn train_step(&mut self, xs: &Tensor, ys: &Tensor) -> Tensor {
        Network::train_step(self, xs, ys)
    }

    fn logits(&self, xs: &Tensor) -> Tensor {
        self.forward(xs)
    }

    fn metrics(&self, logits: &Tensor, labels: &Tensor) -> Tensor {
        use crate::fit::{accuracy, loss};
        Tensor::stack(&[loss(logits, labels), accuracy(logits, labels)], 0).view([1, -1])
    }
}

/// The store's one trainable variable "params", a copy of `values` (so
/// training never writes into the caller's tensor), with a gradient tensor
/// already allocated for the written-out backward pass to fill.
pub fn flat_variable(vs: &nn::Path, values: &Tensor) -> Tensor {
    let flat = vs.add("params", values.to_device(vs.device()).copy(), true);
    (flat.sum(flat.kind()) * 0.0).backward();
    flat
}

/// Consecutive slices of the flat variable and of its gradient, each
/// viewed as the shape asked for: a layer's parameters and their gradient.
pub(crate) fn slices(flat: &Tensor) -> impl FnMut(&[i64]) -> (Tensor, Tensor) + use<> {
    let (storage, grad) = (flat.detach(), flat.grad());
    let mut offset = 0;
    move |shape| {
        let n: i64 = shape.iter().product();
        let t = (
            storage.narrow(0, offset, n).view(shape),
            grad.narrow(0, offset, n).view(shape),
        );
        offset += n;
        t
    }
}

/// `(name, fan_in, fan_out)` of each Dense layer, the output layer last.
pub fn layer_shapes(e: &Experiment) -> Vec<(String, i64, i64)> {
    let fan_in = |i| if i == 0 { e.features } else { e.units };
    (0..e.hidden_layers)
        .map(|i| (i.to_string(), fan_in(i), e.units))
        .chain([("out".to_string(), fan_in(e.hidden_layers), 1)])
        .collect()
}

/// Each layer's starting weight ([out, in], row-major) and bias for `seed`.
pub fn initial_values(e: &Experiment, seed: u64) -> Vec<(Vec<f32>, Vec<f32>)> {
    let mut r = rng::stream(seed, Stream::Init);
    layer_shapes(e)
        .iter()
        .map(|(_, fan_in, fan_out)| initial(*fan_in, *fan_out, e.init, &mut r))
        .collect()
}

pub fn add_activation(seq: nn::Sequential, a: Activation) -> nn::Sequential {
    match a {
        Activation::Tanh => seq.add_fn(|x| x.tanh()),
        Activation::Relu => seq.add_fn(|x| x.relu()),
        Activation::Sigmoid => seq.add_fn(|x| x.sigmoid()),
    }
}

/// The step's tensors for batches of `rows` in `cache`, made on first use.
pub(crate) fn for_rows<S>(
    cache: &mut Vec<S>,
    rows: i64,
    rows_of: impl Fn(&S) -> i64,
    make: impl FnOnce() -> S,
) -> &mut S {
    let i = (cache.iter().position(|s| rows_of(s) == rows)).unwrap_or_else(|| {
        cache.push(make());
        cache.len() - 1
    });
    &mut cache[i]
}

/// The activation, in place.
pub(crate) fn activate(a: Activation, t: &mut Tensor) {
    let _ = match a {
        Activation::Tanh => t.tanh_(),
        Activation::Relu => t.relu_(),
        Activation::Sigmoid => t.sigmoid_(),
    };
}

/// The gradient at an activation's input from the gradient at its
/// `output`, written into `into`.
pub(crate) fn activation_backward_into(
    a: Activation,
    into: &Tensor,
    upstream: &Tensor,
    output: &Tensor,
) {
    let _ = match a {
        Activation::Tanh => Tensor::tanh_backward_grad_input(into, upstream, output),
        Activation::Sigmoid => Tensor::sigmoid_backward_grad_input(into, upstream, output),
        Activation::Relu => output.threshold_backward_grad_input(into, upstream, 0),
    };
}

/// Starting weight ([out, in], row-major) and bias of one layer, drawn from
/// our seeded stream rather than libtorch's generator, so they are the same
/// on CPU and CUDA.
fn initial(fan_in: i64, fan_out: i64, init: Init, r: &mut impl rand::Rng) -> (Vec<f32>, Vec<f32>) {
    let mut uniform = |n: i64, limit: f64| -> Vec<f32> {
        (0..n)
            .map(|_| ((2.0 * rng::uniform(r) - 1.0) * limit) as f32)
            .collect()
    };
    match init {
        // glorot_uniform kernel, zeros bias.
        Init::Keras => (
            uniform(fan_in * fan_out, (6.0 / (fan_in + fan_out) as f64).sqrt()),
            vec![0.0; fan_out as usize],
        ),
        // nn.Linear.reset_parameters: kaiming_uniform(a=√5) = ±1/√fan_in, bias likewise.
        Init::Torch => {
            let bound = 1.0 / (fan_in as f64).sqrt();
            (uniform(fan_in * fan_out, bound), uniform(fan_out, bound))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Overrides;
    use tch::{Device, Kind};

    impl Network {
        pub(super) fn parameter(&self, name: &str) -> &Tensor {
            &self
                .params
                .iter()
                .find(|(n, _)| n == name)
                .expect("known parameter")
                .1
        }
    }

    fn params(e: &Experiment) -> (nn::VarStore, Network) {
        let vs = nn::VarStore::new(Device::Cpu);
        let net = Network::build(&vs.root(), e, 0);
        (vs, net)
    }

    fn count(vs: &nn::VarStore) -> i64 {
        vs.trainable_variables()
            .iter()
            .map(|t| t.numel() as i64)
            .sum()
    }

    #[test]
    fn two_features_give_37_parameters() {
        let (vs, _) = params(&Experiment::preset("baseline").unwrap());
        assert_eq!(count(&vs), 37);
    }

    #[test]
    fn five_features_give_width_7() {
        let e = Experiment::preset("dummy-features").unwrap();
        let (vs, net) = params(&e);
        assert_eq!(net.parameter("0.weight").size(), [7, 5]);
        assert_eq!(net.parameter("2.weight").size(), [7, 7]);
        assert_eq!(net.parameter("out.weight").size(), [1, 7]);
        // 5*7+7 + 2*(7*7+7) + 7+1
        assert_eq!(count(&vs), 42 + 112 + 8);
        let out = net.forward(&Tensor::zeros([4, 5], (Kind::Float, Device::Cpu)));
        assert_eq!(out.size(), [4, 1]);
    }

    #[test]
    fn keras_init_is_glorot_uniform_with_zero_bias() {
        let e = Experiment::preset("baseline").unwrap();
        let (_vs, net) = params(&e);
        for (name, t) in net.parameters() {
            let t = Vec::<f32>::try_from(t.flatten(0, -1)).unwrap();
            if name.ends_with("bias") {
                assert!(t.iter().all(|&b| b == 0.0), "{name}");
            } else {
                let (fan_out, fan_in) = if name.starts_with("out") {
                    (1, 3)
                } else {
                    (3, if name.starts_with('0') { 2 } else { 3 })
                };
                let limit = (6.0f64 / (fan_in + fan_out) as f64).sqrt() as f32;
                assert!(t.iter().all(|w| w.abs() <= limit), "{name}");
                assert!(t.iter().any(|w| w.abs() > limit / 4.0), "{name} too small");
            }
        }
    }

    #[test]
    fn glorot_draws_fill_the_range_evenly() {
        // A wide layer: the sample's extremes and spread reveal the bound.
        let e = Experiment::resolve(
            "baseline",
            &Overrides {
                units: Some(200),
                hidden_layers: Some(2),
                ..Default::default()
            },
        )
        .unwrap();
        let (_vs, net) = params(&e);
        let w = Vec::<f32>::try_from(net.parameter("1.weight").flatten(0, -1)).unwrap();
        let limit = (6.0f32 / 400.0).sqrt();
        let max = w.iter().fold(0f32, |m, x| m.max(x.abs()));
        assert!(max <= limit && max > 0.99 * limit, "{max} vs {limit}");
        let var = w.iter().map(|x| x * x).sum::<f32>() / w.len() as f32;
        assert!((var / (limit * limit / 3.0) - 1.0).abs() < 0.02, "{var}");
    }

    #[test]
    fn torch_init_has_nonzero_bias_within_one_over_sqrt_fan_in() {
        let e = Experiment::resolve(
            "baseline",
            &Overrides {
                init: Some(Init::Torch),
                ..Default::default()
            },
        )
        .unwrap();
        let (_vs, net) = params(&e);
        let b = Vec::<f32>::try_from(net.parameter("1.bias")).unwrap();
        assert!(b.iter().any(|&x| x != 0.0));
        assert!(b.iter().all(|x| x.abs() <= 1.0 / 3f32.sqrt()));
    }

    #[test]
    fn same_seed_same_weights() {
        let e = Experiment::preset("baseline").unwrap();
        let (_, a) = params(&e);
        let (_, b) = params(&e);
        for (name, t) in a.parameters() {
            assert!(t.equal(b.parameter(name)), "{name}");
        }
    }
}

#[cfg(test)]
mod flat_store_tests {
    use super::*;
    use crate::optim::ADAM;
    use tch::Device;
    use tch::nn::OptimizerConfig;

    /// One Adam step over the flat store equals one over separate variables.
    #[test]
    fn adam_on_the_flat_store_matches_adam_on_separate_layers() {
        let e = Experiment::preset("baseline").unwrap();
        let vs = nn::VarStore::new(Device::Cpu);
        let mut net = Network::build(&vs.root(), &e, 1);
        let mut opt = ADAM.build(&vs, e.lr).unwrap();

        let plain = nn::VarStore::new(Device::Cpu);
        let mut seq = nn::seq();
        let mut reference = vec![];
        for (i, (name, t)) in net.parameters().iter().enumerate() {
            let v = plain.root().var_copy(&name.replace(".", "_"), t);
            reference.push(v.shallow_clone());
            if i % 2 == 1 {
                let ws = reference[i - 1].shallow_clone();
                seq = seq.add(nn::Linear { ws, bs: Some(v) });
                if !name.starts_with("out") {
                    seq = seq.add_fn(|x| x.tanh());
                }
            }
        }
        let mut plain_opt = ADAM.build(&plain, e.lr).unwrap();

        let before: Vec<Tensor> = reference.iter().map(|t| t.copy()).collect();
        let x = Tensor::from_slice(&[0.1f32, 0.9, 0.7, 0.2, 0.5, 0.4]).view([3, 2]);
        let y = Tensor::from_slice(&[0.0f32, 1.0, 1.0]).view([3, 1]);
        for _ in 0..3 {
            let _ = net.train_step(&x, &y);
            opt.step();
            plain_opt.backward_step(&crate::fit::loss(&seq.forward(&x), &y));
        }
        for ((name, t), r) in net.parameters().iter().zip(&reference) {
            assert!(t.allclose(r, 1e-6, 1e-7, false), "{name}: {t:?} vs {r:?}");
        }
        assert!(
            reference.iter().zip(&before).all(|(r, b)| !r.equal(b)),
            "every tensor moved"
        );
    }
}

#[cfg(test)]
mod gradient_tests {
    use super::*;
    use crate::config::Overrides;
    use tch::Device;
    use tch::Kind;

    fn flat_grad_of(net: &Network) -> Vec<f32> {
        Vec::<f32>::try_from(&net.flat_grad).unwrap()
    }

    /// The written-out backward pass equals autograd's, for every activation,
    /// a deep-enough net, and a batch of any size.
    #[test]
    fn train_step_gradient_equals_autograd() {
        for activation in [Activation::Tanh, Activation::Relu, Activation::Sigmoid] {
            for hidden_layers in [0, 1, 3] {
                let e = Experiment::resolve(
                    "baseline",
                    &Overrides {
                        activation: Some(activation),
                        hidden_layers: Some(hidden_layers),
                        features: Some(4),
                        init: Some(Init::Torch),
                        ..Default::default()
                    },
                )
                .unwrap();
                let vs = nn::VarStore::new(Device::Cpu);
                let mut net = Network::build(&vs.root(), &e, 11);
                let x = Tensor::randn([7, 4], (Kind::Float, Device::Cpu));
                let y = Tensor::from_slice(&[0.0f32, 1.0, 1.0, 0.0, 1.0, 0.0, 1.0]).view([7, 1]);
                let logits = net.train_step(&x, &y);
                let manual = flat_grad_of(&net);
                let reference_loss = crate::fit::loss(&net.forward(&x), &y);
                net.backward(&reference_loss);
                let auto = flat_grad_of(&net);
                assert!(manual.iter().any(|g| *g != 0.0));
                for (i, (m, a)) in manual.iter().zip(&auto).enumerate() {
                    assert!(
                        (m - a).abs() <= 1e-6 + 1e-5 * a.abs(),
                        "{activation:?} x{hidden_layers} [{i}]: {m} vs {a}"
                    );
                }
                // Keras's matmul-then-bias gives nn::Linear's addmm bits here.
                assert!(
                    logits.equal(&net.forward(&x)),
                    "{activation:?} x{hidden_layers}"
                );
            }
        }
    }

    /// The step's tensors are reused: batches of other sizes in between
    /// leave nothing behind, each gradient is the one a fresh network gives.
    #[test]
    fn reused_step_tensors_carry_nothing_from_one_batch_to_the_next() {
        let e = Experiment::preset("dummy-features").unwrap();
        let batch = |n: i64| {
            let x = Tensor::randn([n, 5], (Kind::Float, Device::Cpu));
            let y = Tensor::randn([n, 1], (Kind::Float, Device::Cpu))
                .gt(0.0)
                .to_kind(Kind::Float);
            (x, y)
        };
        let batches = [batch(30), batch(20), batch(30), batch(1)];
        let vs = nn::VarStore::new(Device::Cpu);
        let mut reused = Network::build(&vs.root(), &e, 4);
        for (x, y) in &batches {
            let logits = reused.train_step(x, y);
            let fresh_vs = nn::VarStore::new(Device::Cpu);
            let mut fresh = Network::build(&fresh_vs.root(), &e, 4);
            assert!(logits.equal(&fresh.train_step(x, y)));
            assert_eq!(flat_grad_of(&reused), flat_grad_of(&fresh));
        }
    }
}
