//! The article's network for R seeds at once: every tensor gains a trailing
//! replica dimension (rows `[n, features, R]`, weights `[in, out, R]`), so one
//! step trains every seed with the operations one seed needs.
//!
//! Replicas go last so that every product is an element-wise multiply and a
//! short sum vectorised across replicas: for matrices of 2–7 rows, batched
//! matmul (one tiny GEMM per replica) measured 2–3× slower on CPU and far
//! slower on a GPU (`examples/profile_step.rs`).
//!
//! Replica r starts from exactly the weights `binclass train --seed seeds[r]`
//! starts from. Its gradient is that of its own mean loss (the total loss is
//! the sum of the replicas' means), and Adam is element-wise, so replicas
//! never influence each other.

use tch::{Kind, Tensor, nn, nn::Module};

use crate::config::{Activation, Experiment};
use crate::model::{
    activate, activation_backward_into, add_activation, flat_variable, for_rows, initial_values,
    layer_shapes, slices,
};
use crate::optim::scalar_like;

/// Replicas per batch are padded to a multiple of this, so that a seed's
/// numbers never depend on which seeds share its batch. libtorch's CPU
/// kernels take the innermost (replica) dimension in blocks of up to four
/// vectors (64 float32 lanes with AVX-512) and handle a ragged end another
/// way (single vectors, then scalars) whose rounding differs: measured, seed
/// 0 differed after one epoch between batches of 2, 3 and 17 seeds, and was
/// bit-identical across batches of 32, 64, 70 and 128. Padding replicas
/// train on all-zero data from all-zero weights and are never reported.
pub const LANES: usize = 64;

/// A Dense layer per replica: `xs [n, in, R] → [n, out, R]`.
#[derive(Debug)]
pub struct BatchedLinear {
    /// `[in, out, R]`: Keras's kernel layout, per replica.
    pub ws: Tensor,
    /// `[out, R]`
    pub bs: Tensor,
}

impl Module for BatchedLinear {
    fn forward(&self, xs: &Tensor) -> Tensor {
        (xs.unsqueeze(2) * self.ws.unsqueeze(0)).sum_dim_intlist(
            [1i64].as_slice(),
            false,
            Kind::Float,
        ) + &self.bs
    }
}

/// Like [`crate::model::Network`]: one flat variable in the store, layers
/// viewing slices of it, and a written-out backward pass.
#[derive(Debug)]
pub struct BatchedNetwork {
    pub seq: nn::Sequential,
    layers: Vec<Layer>,
    /// The step's intermediate tensors, one set per batch size seen.
    scratch: Vec<Scratch>,
    activation: Activation,
}

/// One layer's views of the flat parameter and of its gradient.
#[derive(Debug)]
struct Layer {
    /// `[in, out, R]`, and viewed as `[1, in, out, R]` to meet a batch.
    ws: Tensor,
    ws_wide: Tensor,
    bs: Tensor,
    gw: Tensor,
    gb: Tensor,
}

/// A step's intermediate tensors for batches of `rows`, reused from step to
/// step, with the broadcasting views of them the products need.
#[derive(Debug)]
struct Scratch {
    rows: i64,
    divisor: Tensor,
    /// Per layer, the element-wise products `[rows, in, out, R]` before
    /// their sum.
    products: Vec<Tensor>,
    /// Each hidden layer's output `[rows, out, R]`, and as `[rows, out, 1, R]`.
    acts: Vec<Tensor>,
    acts_wide: Vec<Tensor>,
    /// The gradient at each layer's output, and as `[rows, 1, out, R]`.
    grads: Vec<Tensor>,
    grads_wide: Vec<Tensor>,
    /// The gradient at each layer's input, before the activation's.
    ups: Vec<Tensor>,
}

impl Scratch {
    fn new(rows: i64, layers: &[Layer], like: &Tensor) -> Self {
        let opts = (like.kind(), like.device());
        let r = layers[0].ws.size()[2];
        let out = |l: &Layer| Tensor::empty([rows, l.ws.size()[1], r], opts);
        let acts: Vec<Tensor> = layers[..layers.len() - 1].iter().map(out).collect();
        let grads: Vec<Tensor> = layers.iter().map(out).collect();
        Scratch {
            rows,
            divisor: scalar_like(rows as f64, like),
            // `[rows, in, out, R]`: every row times the `[in, out, R]` weights.
            products: layers
                .iter()
                .map(|l| Tensor::empty([vec![rows], l.ws.size()].concat(), opts))
                .collect(),
            acts_wide: acts.iter().map(|a| a.unsqueeze(2)).collect(),
            acts,
            grads_wide: grads.iter().map(|g| g.unsqueeze(1)).collect(),
            grads,
            ups: layers
                .iter()
                .map(|l| Tensor::empty([rows, l.ws.size()[0], r], opts))
                .collect(),
        }
    }
}

impl BatchedNetwork {
    /// Replica r < seeds.len() starts as `train --seed seeds[r]`; the rest,
    /// up to `lanes`, are padding starting from zeros.
    pub fn build(vs: &nn::Path, e: &Experiment, seeds: &[u64], lanes: usize) -> Self {
        let shapes = layer_shapes(e);
        let mut per_replica: Vec<Vec<(Vec<f32>, Vec<f32>)>> =
            seeds.iter().map(|&s| initial_values(e, s)).collect();
        let zeros: Vec<(Vec<f32>, Vec<f32>)> = shapes
            .iter()
            .map(|(_, i, o)| (vec![0.0; (i * o) as usize], vec![0.0; *o as usize]))
            .collect();
        per_replica.resize(lanes.max(seeds.len()), zeros);
        // Flat layout: per layer, [in, out, R] weights then [out, R] biases.
        let mut values: Vec<f32> = vec![];
        for (l, (_, fan_in, fan_out)) in shapes.iter().enumerate() {
            let (fi, fo) = (*fan_in as usize, *fan_out as usize);
            for i in 0..fi {
                for o in 0..fo {
                    values.extend(per_replica.iter().map(|init| init[l].0[o * fi + i]));
                }
            }
            for o in 0..fo {
                values.extend(per_replica.iter().map(|init| init[l].1[o]));
            }
        }
        let mut take = slices(&flat_variable(vs, &Tensor::from_slice(&values)));
        let r = per_replica.len() as i64;
        let mut seq = nn::seq();
        let mut layers = vec![];
        for (name, fan_in, fan_out) in &shapes {
            let (ws, gw) = take(&[*fan_in, *fan_out, r]);
            let (bs, gb) = take(&[*fan_out, r]);
            layers.push(Layer {
                ws_wide: ws.unsqueeze(0),
                ws: ws.shallow_clone(),
                bs: bs.shallow_clone(),
                gw,
                gb,
            });
            seq = seq.add(BatchedLinear { ws, bs });
            if name != "out" {
                seq = add_activation(seq, e.activation);
            }
        }
        BatchedNetwork {
            seq,
            layers,
            scratch: vec![],
            activation: e.activation,
        }
    }

    /// Replica `r`'s layers in one network's layout: weights back from
    /// `[in, out, R]` to PyTorch's `[out, in]`, as `train --seed` would hold them.
    pub fn replica_layers(&self, r: usize) -> anyhow::Result<crate::model_file::Layers> {
        let r = r as i64;
        self.layers
            .iter()
            .map(|Layer { ws, bs, .. }| {
                Ok((
                    crate::model_file::values(&ws.select(2, r).tr())?,
                    crate::model_file::values(&bs.select(1, r))?,
                ))
            })
            .collect()
    }

    /// Forward and written-out backward for `xs [n, F, R]`, `ys [n, 1, R]`:
    /// returns the logits `[n, 1, R]` and writes, for every replica, the
    /// gradient of its mean binary cross-entropy into the store. The
    /// arithmetic is [`BatchedLinear`]'s, written into reused tensors.
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
            let xs_wide = xs.unsqueeze(2);
            let logits = s.forward(layers, activation, &xs_wide);
            let last = layers.len() - 1;
            let _ = logits.sigmoid_out(&s.grads[last]);
            let _ = s.grads[last].g_sub_(ys).g_div_(&s.divisor);
            s.backward(layers, activation, &xs_wide);
            logits
        })
    }
}

impl Scratch {
    /// Layer `l`'s input as `[rows, in, 1, R]`.
    fn input<'a>(&'a self, l: usize, xs_wide: &'a Tensor) -> &'a Tensor {
        if l == 0 {
            xs_wide
        } else {
            &self.acts_wide[l - 1]
        }
    }

    /// The forward pass, keeping each hidden layer's output; returns the
    /// logits as a tensor of their own.
    fn forward(&mut self, layers: &[Layer], activation: Activation, xs_wide: &Tensor) -> Tensor {
        let sum_in = [1i64];
        let last = layers.len() - 1;
        for (l, layer) in layers[..last].iter().enumerate() {
            let _ = self
                .input(l, xs_wide)
                .mul_out(&self.products[l], &layer.ws_wide);
            let _ = self.products[l].sum_intlist_out(
                &self.acts[l],
                sum_in.as_slice(),
                false,
                Kind::Float,
            );
            let _ = self.acts[l].g_add_(&layer.bs);
            activate(activation, &mut self.acts[l]);
        }
        let _ = self
            .input(last, xs_wide)
            .mul_out(&self.products[last], &layers[last].ws_wide);
        let mut logits = self.products[last].sum_dim_intlist(sum_in.as_slice(), false, Kind::Float);
        let _ = logits.g_add_(&layers[last].bs);
        logits
    }

    /// The backward pass from the gradient at the logits (`grads[last]`),
    /// each layer's gradients written into the store.
    fn backward(&self, layers: &[Layer], activation: Activation, xs_wide: &Tensor) {
        let (sum_rows, sum_out) = ([0i64], [2i64]);
        for (l, layer) in layers.iter().enumerate().rev() {
            let product = &self.products[l];
            // dW[i, o, r] = Σ_n input[n, i, r] · g[n, o, r]
            let _ = self.input(l, xs_wide).mul_out(product, &self.grads_wide[l]);
            let _ = product.sum_intlist_out(&layer.gw, sum_rows.as_slice(), false, Kind::Float);
            let _ =
                self.grads[l].sum_intlist_out(&layer.gb, sum_rows.as_slice(), false, Kind::Float);
            if l > 0 {
                // upstream[n, i, r] = Σ_o g[n, o, r] · W[i, o, r]
                let _ = self.grads_wide[l].mul_out(product, &layer.ws_wide);
                let _ =
                    product.sum_intlist_out(&self.ups[l], sum_out.as_slice(), false, Kind::Float);
                activation_backward_into(
                    activation,
                    &self.grads[l - 1],
                    &self.ups[l],
                    &self.acts[l - 1],
                );
            }
        }
    }
}

impl Module for BatchedNetwork {
    fn forward(&self, xs: &Tensor) -> Tensor {
        self.seq.forward(xs)
    }
}

impl crate::fit::Model for BatchedNetwork {
    fn train_step(&mut self, xs: &Tensor, ys: &Tensor) -> Tensor {
        BatchedNetwork::train_step(self, xs, ys)
    }

    fn logits(&self, xs: &Tensor) -> Tensor {
        self.forward(xs)
    }

    /// Per replica [loss, accuracy] of `logits [n, 1, R]` against `labels`,
    /// each as [`crate::fit::loss`] and [`crate::fit::accuracy`] compute it
    /// for one run, in the logits' kind.
    fn metrics(&self, logits: &Tensor, labels: &Tensor) -> Tensor {
        let kind = logits.kind();
        let loss = logits
            .binary_cross_entropy_with_logits::<Tensor>(labels, None, None, tch::Reduction::None)
            .mean_dim([0i64, 1].as_slice(), false, kind);
        let acc = crate::fit::hits(logits, labels).mean_dim([0i64, 1].as_slice(), false, kind);
        Tensor::stack(&[loss, acc], 1)
    }
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
        let mut batch = BatchedNetwork::build(&vs.root(), &e, &seeds, seeds.len());
        let xs = Tensor::rand([6, 5, 3], (Kind::Float, Device::Cpu));
        let ys = Tensor::rand([6, 1, 3], (Kind::Float, Device::Cpu))
            .gt(0.5)
            .to_kind(Kind::Float);
        let logits = batch.train_step(&xs, &ys);
        let bgrad = vs.variables()["params"].grad();
        // The output layer's weight gradient: [7, 1, R], before its [1, R] bias.
        let n = bgrad.size()[0];
        let batched_out_w = bgrad.narrow(0, n - 3 - 21, 21).view([7, 3]);
        for (r, &seed) in seeds.iter().enumerate() {
            let r = r as i64;
            let svs = nn::VarStore::new(Device::Cpu);
            let mut single = Network::build(&svs.root(), &e, seed);
            let expected = single.train_step(&xs.select(2, r), &ys.select(2, r));
            assert!(
                logits.select(2, r).allclose(&expected, 1e-6, 1e-6, false),
                "replica {r}"
            );
            let sgrad = svs.variables()["params"].grad();
            let single_out_w = sgrad.narrow(0, sgrad.size()[0] - 8, 7);
            let got = batched_out_w.select(1, r);
            assert!(
                single_out_w.allclose(&got, 1e-6, 1e-6, false),
                "grad {r}: {single_out_w:?} {got:?}"
            );
        }
    }

    /// The step's tensors are reused across batches of different sizes
    /// without carrying anything over.
    #[test]
    fn reused_step_tensors_carry_nothing_from_one_batch_to_the_next() {
        let e = Experiment::preset("baseline").unwrap();
        let seeds = [1u64, 2];
        let batch = |n: i64| {
            let x = Tensor::rand([n, 2, 2], (Kind::Float, Device::Cpu));
            let y = Tensor::rand([n, 1, 2], (Kind::Float, Device::Cpu))
                .gt(0.5)
                .to_kind(Kind::Float);
            (x, y)
        };
        let grad = |vs: &nn::VarStore| vs.variables()["params"].grad().copy();
        let vs = nn::VarStore::new(Device::Cpu);
        let mut reused = BatchedNetwork::build(&vs.root(), &e, &seeds, 2);
        for (x, y) in [batch(30), batch(20), batch(30)] {
            let logits = reused.train_step(&x, &y);
            let fresh_vs = nn::VarStore::new(Device::Cpu);
            let mut fresh = BatchedNetwork::build(&fresh_vs.root(), &e, &seeds, 2);
            assert!(logits.equal(&fresh.train_step(&x, &y)));
            assert!(grad(&vs).equal(&grad(&fresh_vs)));
            assert!(logits.equal(&tch::no_grad(|| reused.forward(&x))));
        }
    }

    /// Changing one replica's data changes nothing, not even a bit, in the others.
    #[test]
    fn changing_one_replicas_data_leaves_the_others_bit_identical() {
        let e = Experiment::preset("baseline").unwrap();
        let seeds = [0u64, 1, 2];
        let xs = Tensor::rand([30, 2, 3], (Kind::Float, Device::Cpu));
        let ys = Tensor::rand([30, 1, 3], (Kind::Float, Device::Cpu))
            .gt(0.5)
            .to_kind(Kind::Float);
        let changed = xs.copy();
        let _ = changed.select(2, 0).fill_(0.25);
        let train = |x: &Tensor| {
            let vs = nn::VarStore::new(Device::Cpu);
            let mut net = BatchedNetwork::build(&vs.root(), &e, &seeds, seeds.len());
            let mut opt = crate::optim::ADAM.build(&vs, e.lr).unwrap();
            for _ in 0..20 {
                let _ = net.train_step(x, &ys);
                opt.step();
            }
            let logits = tch::no_grad(|| net.forward(x));
            (
                logits,
                net.layers
                    .iter()
                    .map(|l| (l.ws.copy(), l.bs.copy()))
                    .collect::<Vec<_>>(),
            )
        };
        let (la, pa) = train(&xs);
        let (lb, pb) = train(&changed);
        let at = |t: &Tensor, r: i64| t.select(t.dim() as i64 - 1, r);
        for r in [1, 2] {
            assert!(at(&la, r).equal(&at(&lb, r)), "replica {r} logits");
            for ((wa, ba), (wb, bb)) in pa.iter().zip(&pb) {
                assert!(
                    at(wa, r).equal(&at(wb, r)) && at(ba, r).equal(&at(bb, r)),
                    "replica {r} params"
                );
            }
        }
        assert!(
            !at(&pa[0].0, 0).equal(&at(&pb[0].0, 0)),
            "replica 0 did see its new data"
        );
    }
}
