//! The article's network: `hidden_layers` Dense layers of `units` with the
//! chosen activation, then one sigmoid unit.
//!
//! The sequence ends at the sigmoid's input (the logit). Keras does the same
//! in effect: its binary cross-entropy notices the sigmoid and computes the
//! loss from the logit, and its accuracy thresholds `sigmoid(logit) > 0.5`.
//! [`probabilities`] applies the sigmoid for predictions.

use tch::{Tensor, nn, nn::Module};

use crate::config::{Activation, Experiment, Init};
use crate::rng::{self, Stream};

pub fn build(vs: &nn::Path, e: &Experiment, seed: u64) -> nn::Sequential {
    let mut r = rng::stream(seed, Stream::Init);
    let mut seq = nn::seq();
    let mut fan_in = e.features;
    for i in 0..e.hidden_layers {
        seq = seq.add(dense(vs / i, fan_in, e.units, e.init, &mut r));
        seq = match e.activation {
            Activation::Tanh => seq.add_fn(|x| x.tanh()),
            Activation::Relu => seq.add_fn(|x| x.relu()),
            Activation::Sigmoid => seq.add_fn(|x| x.sigmoid()),
        };
        fan_in = e.units;
    }
    seq.add(dense(vs / "out", fan_in, 1, e.init, &mut r))
}

/// `sigmoid(logits)`: the model's output as Keras reports it.
pub fn probabilities(net: &impl Module, xs: &Tensor) -> Tensor {
    net.forward(xs).sigmoid()
}

/// A Linear layer whose starting values come from our seeded stream rather
/// than libtorch's generator, so they are the same on CPU and CUDA.
fn dense(
    vs: nn::Path,
    fan_in: i64,
    fan_out: i64,
    init: Init,
    r: &mut impl rand::Rng,
) -> nn::Linear {
    let config = nn::LinearConfig {
        ws_init: nn::Init::Const(0.0),
        bs_init: Some(nn::Init::Const(0.0)),
        bias: true,
    };
    let layer = nn::linear(vs, fan_in, fan_out, config);
    let mut uniform = |n: i64, limit: f64| -> Vec<f32> {
        (0..n)
            .map(|_| ((2.0 * rng::uniform(r) - 1.0) * limit) as f32)
            .collect()
    };
    let (weights, bias) = match init {
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
    };
    tch::no_grad(|| {
        let device = layer.ws.device();
        let mut ws = layer.ws.shallow_clone();
        ws.copy_(
            &Tensor::from_slice(&weights)
                .view([fan_out, fan_in])
                .to(device),
        );
        let mut bs = layer.bs.as_ref().expect("bias").shallow_clone();
        bs.copy_(&Tensor::from_slice(&bias).to(device));
    });
    layer
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Overrides;
    use tch::{Device, Kind};

    fn params(e: &Experiment) -> (nn::VarStore, nn::Sequential) {
        let vs = nn::VarStore::new(Device::Cpu);
        let net = build(&vs.root(), e, 0);
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
        let vars = vs.variables();
        assert_eq!(vars["0.weight"].size(), [7, 5]);
        assert_eq!(vars["2.weight"].size(), [7, 7]);
        assert_eq!(vars["out.weight"].size(), [1, 7]);
        // 5*7+7 + 2*(7*7+7) + 7+1
        assert_eq!(count(&vs), 42 + 112 + 8);
        let out = net.forward(&Tensor::zeros([4, 5], (Kind::Float, Device::Cpu)));
        assert_eq!(out.size(), [4, 1]);
    }

    #[test]
    fn keras_init_is_glorot_uniform_with_zero_bias() {
        let e = Experiment::preset("baseline").unwrap();
        let (vs, _) = params(&e);
        for (name, t) in vs.variables() {
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
        let (vs, _) = params(&e);
        let w = Vec::<f32>::try_from(vs.variables()["1.weight"].flatten(0, -1)).unwrap();
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
        let (vs, _) = params(&e);
        let b = Vec::<f32>::try_from(&vs.variables()["1.bias"]).unwrap();
        assert!(b.iter().any(|&x| x != 0.0));
        assert!(b.iter().all(|x| x.abs() <= 1.0 / 3f32.sqrt()));
    }

    #[test]
    fn same_seed_same_weights() {
        let e = Experiment::preset("baseline").unwrap();
        let (a, _) = params(&e);
        let (b, _) = params(&e);
        for (name, t) in a.variables() {
            assert!(t.equal(&b.variables()[&name]), "{name}");
        }
    }
}
