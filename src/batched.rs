//! The article's network for R seeds at once: every tensor gains a leading
//! replica dimension (weights `[R, in, out]`, batched matmuls), so one step
//! trains every seed with the operations one seed needs.
//!
//! Replica r starts from exactly the weights `binclass train --seed seeds[r]`
//! starts from. Its gradient is that of its own mean loss (the total loss is
//! the sum of the replicas' means), and Adam is element-wise, so replicas
//! never influence each other.

use tch::{Kind, Tensor, nn, nn::Module};

use crate::config::{Activation, Experiment};
use crate::model::{activation_backward, add_activation, initial_values, layer_shapes};

/// A Dense layer per replica: `xs [R, n, in] → [R, n, out]`.
#[derive(Debug)]
pub struct BatchedLinear {
    /// `[R, in, out]`: Keras's kernel layout, per replica.
    pub ws: Tensor,
    /// `[R, 1, out]`
    pub bs: Tensor,
}

impl Module for BatchedLinear {
    fn forward(&self, xs: &Tensor) -> Tensor {
        self.bs.baddbmm(xs, &self.ws, 1.0, 1.0)
    }
}

/// Like [`crate::model::Network`]: one flat variable in the store, layers
/// viewing slices of it, and a written-out backward pass.
#[derive(Debug)]
pub struct BatchedNetwork {
    pub seq: nn::Sequential,
    pub replicas: i64,
    layers: Vec<(Tensor, Tensor)>,
    grad_slices: Vec<(Tensor, Tensor)>,
    activation: Activation,
}

impl BatchedNetwork {
    pub fn build(vs: &nn::Path, e: &Experiment, seeds: &[u64]) -> Self {
        let shapes = layer_shapes(e);
        let r = seeds.len();
        let per_replica: Vec<Vec<(Vec<f32>, Vec<f32>)>> =
            seeds.iter().map(|&s| initial_values(e, s)).collect();
        // Flat layout: per layer, [R, in, out] weights then [R, 1, out] biases.
        let mut values: Vec<f32> = vec![];
        for (l, (_, fan_in, fan_out)) in shapes.iter().enumerate() {
            let (fi, fo) = (*fan_in as usize, *fan_out as usize);
            for init in &per_replica {
                let w = &init[l].0; // [out, in]
                values.extend((0..fi).flat_map(|i| (0..fo).map(move |o| w[o * fi + i])));
            }
            for init in &per_replica {
                values.extend(&init[l].1);
            }
        }
        let flat = vs.var("params", &[values.len() as i64], nn::Init::Const(0.0));
        tch::no_grad(|| {
            let mut f = flat.shallow_clone();
            f.copy_(&Tensor::from_slice(&values).to(flat.device()));
        });
        // Gives the flat variable a gradient tensor that train_step then fills.
        (flat.sum(Kind::Float) * 0.0).backward();
        let (storage, grad) = (flat.detach(), flat.grad());
        let r = r as i64;
        let mut offset = 0;
        let mut take = |shape: [i64; 3]| {
            let n: i64 = shape.iter().product();
            let t = (
                storage.narrow(0, offset, n).view(shape),
                grad.narrow(0, offset, n).view(shape),
            );
            offset += n;
            t
        };
        let mut seq = nn::seq();
        let (mut layers, mut grad_slices) = (vec![], vec![]);
        for (name, fan_in, fan_out) in &shapes {
            let (ws, gw) = take([r, *fan_in, *fan_out]);
            let (bs, gb) = take([r, 1, *fan_out]);
            layers.push((ws.shallow_clone(), bs.shallow_clone()));
            grad_slices.push((gw, gb));
            seq = seq.add(BatchedLinear { ws, bs });
            if name != "out" {
                seq = add_activation(seq, e.activation);
            }
        }
        BatchedNetwork {
            seq,
            replicas: r,
            layers,
            grad_slices,
            activation: e.activation,
        }
    }

    /// Forward and written-out backward for `xs [R, n, F]`, `ys [R, n, 1]`:
    /// returns the logits `[R, n, 1]` and writes, for every replica, the
    /// gradient of its mean binary cross-entropy into the store.
    pub fn train_step(&mut self, xs: &Tensor, ys: &Tensor) -> Tensor {
        tch::no_grad(|| {
            let outs = self.seq.forward_all(xs, None);
            let logits = outs.last().expect("at least the output layer");
            let mut g = (logits.sigmoid() - ys) / xs.size()[1] as f64;
            for (l, (gw, gb)) in self.grad_slices.iter().enumerate().rev() {
                let input = if l == 0 { xs } else { &outs[2 * l - 1] };
                let _ = input.transpose(1, 2).bmm_out(gw, &g);
                let _ = g.sum_intlist_out(gb, [1i64].as_slice(), true, Kind::Float);
                if l > 0 {
                    let upstream = g.bmm(&self.layers[l].0.transpose(1, 2));
                    g = activation_backward(self.activation, &upstream, input);
                }
            }
            logits.shallow_clone()
        })
    }
}

impl Module for BatchedNetwork {
    fn forward(&self, xs: &Tensor) -> Tensor {
        self.seq.forward(xs)
    }
}

/// Per replica [loss, accuracy] of `logits [R, n, 1]` against `labels`,
/// as Keras computes them for one run: shape `[R, 2]`.
pub fn metrics(logits: &Tensor, labels: &Tensor) -> Tensor {
    let loss = logits
        .binary_cross_entropy_with_logits::<Tensor>(labels, None, None, tch::Reduction::None)
        .mean_dim([1i64, 2].as_slice(), false, Kind::Float);
    let acc = logits
        .sigmoid()
        .gt(0.5)
        .to_kind(Kind::Float)
        .eq_tensor(labels)
        .to_kind(Kind::Float)
        .mean_dim([1i64, 2].as_slice(), false, Kind::Float);
    Tensor::stack(&[loss, acc], 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Network;
    use tch::Device;
    use tch::nn::OptimizerConfig;

    /// Replica r of a batch computes what a single network for seed r does.
    #[test]
    fn each_replica_matches_its_single_network() {
        let e = Experiment::preset("dummy-features").unwrap();
        let seeds = [3u64, 0, 7];
        let vs = nn::VarStore::new(Device::Cpu);
        let mut batch = BatchedNetwork::build(&vs.root(), &e, &seeds);
        let xs = Tensor::rand([3, 6, 5], (Kind::Float, Device::Cpu));
        let ys = Tensor::rand([3, 6, 1], (Kind::Float, Device::Cpu))
            .gt(0.5)
            .to_kind(Kind::Float);
        let logits = batch.train_step(&xs, &ys);
        for (r, &seed) in seeds.iter().enumerate() {
            let svs = nn::VarStore::new(Device::Cpu);
            let mut single = Network::build(&svs.root(), &e, seed);
            let (x, y) = (xs.get(r as i64), ys.get(r as i64));
            let expected = single.train_step(&x, &y);
            assert!(
                logits.get(r as i64).allclose(&expected, 1e-6, 1e-6, false),
                "replica {r}"
            );
            let sgrad = svs.variables()["params"].grad();
            let bgrad = vs.variables()["params"].grad();
            // Compare the output layer's weight gradient: [1, 7] single, [R, 7, 1] batched.
            let n = sgrad.size()[0];
            let single_out_w = sgrad.narrow(0, n - 8, 7);
            let batched_out_w = bgrad.narrow(0, bgrad.size()[0] - 3 - 21 + 7 * r as i64, 7);
            assert!(
                single_out_w.allclose(&batched_out_w, 1e-6, 1e-6, false),
                "grad {r}"
            );
        }
    }

    /// Changing one replica's data changes nothing, not even a bit, in the others.
    #[test]
    fn changing_one_replicas_data_leaves_the_others_bit_identical() {
        let e = Experiment::preset("baseline").unwrap();
        let seeds = [0u64, 1, 2];
        let xs = Tensor::rand([3, 30, 2], (Kind::Float, Device::Cpu));
        let ys = Tensor::rand([3, 30, 1], (Kind::Float, Device::Cpu))
            .gt(0.5)
            .to_kind(Kind::Float);
        let mut changed = xs.copy();
        let _ = changed.get(0).fill_(0.25);
        let train = |x: &Tensor| {
            let vs = nn::VarStore::new(Device::Cpu);
            let mut net = BatchedNetwork::build(&vs.root(), &e, &seeds);
            let mut opt = crate::train::ADAM.build(&vs, e.lr).unwrap();
            for _ in 0..20 {
                let _ = net.train_step(x, &ys);
                opt.step();
            }
            let logits = tch::no_grad(|| net.forward(x));
            (
                logits,
                net.layers
                    .iter()
                    .map(|(w, b)| (w.copy(), b.copy()))
                    .collect::<Vec<_>>(),
            )
        };
        let (la, pa) = train(&xs);
        let (lb, pb) = train(&changed);
        for r in [1, 2] {
            assert!(la.get(r).equal(&lb.get(r)), "replica {r} logits");
            for ((wa, ba), (wb, bb)) in pa.iter().zip(&pb) {
                assert!(
                    wa.get(r).equal(&wb.get(r)) && ba.get(r).equal(&bb.get(r)),
                    "replica {r} params"
                );
            }
        }
        assert!(
            !pa[0].0.get(0).equal(&pb[0].0.get(0)),
            "replica 0 did see its new data"
        );
    }
}
