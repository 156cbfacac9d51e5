//! Times the parts of one training step of the baseline, to see where a
//! step's time goes: per-op overhead dominates, the arithmetic is ~1k flops.
//! `cargo run --release --example profile_step`
use std::time::Instant;

use binclass::config::Experiment;
use binclass::optim::{ADAM, Resumable, Step, Update};
use binclass::{fit, model::Network};
use tch::nn::{Module, OptimizerConfig};
use tch::{Device, Kind, Tensor, nn};

fn time(label: &str, n: u32, mut f: impl FnMut()) {
    for _ in 0..200 {
        f();
    }
    let t = Instant::now();
    for _ in 0..n {
        f();
    }
    let us = t.elapsed().as_secs_f64() * 1e6 / n as f64;
    println!("{label:<36} {us:>8.1} us");
}

fn main() {
    tch::set_num_threads(1);
    let e = Experiment::preset("baseline").unwrap();
    let x = Tensor::rand([30, 2], (Kind::Float, Device::Cpu));
    let y = Tensor::rand([30, 1], (Kind::Float, Device::Cpu))
        .gt(0.5)
        .to_kind(Kind::Float);
    let n = 20_000;

    let vs = nn::VarStore::new(Device::Cpu);
    let mut net = Network::build(&vs.root(), &e, 0);
    let mut opt = ADAM.build(&vs, e.lr).unwrap();
    time("forward (no grad)", n, || {
        let _ = tch::no_grad(|| net.forward(&x));
    });
    time("forward + loss", n, || {
        let _ = fit::loss(&net.forward(&x), &y);
    });
    time("forward + loss + autograd backward", n, || {
        net.backward(&fit::loss(&net.forward(&x), &y));
    });
    time("train_step (written-out backward)", n, || {
        let _ = net.train_step(&x, &y);
    });
    time("nn::Adam step, flat store", n, || opt.step());
    let mut torch_adam = Resumable::new(Update::Torch, &vs, e.lr).unwrap();
    time("Update::Torch step (train's adam)", n, || torch_adam.step());
    let mut keras_adam = Resumable::new(Update::Keras, &vs, e.lr).unwrap();
    time("Update::Keras step (keras-adam)", n, || keras_adam.step());
    time("full step, flat store (Update::Torch)", n, || {
        let _ = net.train_step(&x, &y);
        torch_adam.step();
    });

    // The same network as eight separate variables, for comparison.
    let plain = nn::VarStore::new(Device::Cpu);
    let mut seq = nn::seq();
    let params = net.parameters();
    for pair in params.chunks(2) {
        let ws = plain
            .root()
            .var_copy(&pair[0].0.replace(".", "_"), &pair[0].1);
        let bs = plain
            .root()
            .var_copy(&pair[1].0.replace(".", "_"), &pair[1].1);
        seq = seq.add(nn::Linear { ws, bs: Some(bs) });
        if !pair[0].0.starts_with("out") {
            seq = seq.add_fn(|x| x.tanh());
        }
    }
    let mut plain_opt = ADAM.build(&plain, e.lr).unwrap();
    time("full step, 8 variables", n, || {
        plain_opt.backward_step(&fit::loss(&seq.forward(&x), &y));
    });
    // After the full steps, so that every variable has a gradient to apply.
    time("adam step, 8 variables", n, || plain_opt.step());
    for r in [1, 100, 1000] {
        batched(r);
    }
}

/// The batched step of `binclass sweep`, for R replicas.
pub fn batched(r: i64) {
    use binclass::batched::BatchedNetwork;
    let e = Experiment::preset("baseline").unwrap();
    let seeds: Vec<u64> = (0..r as u64).collect();
    let vs = nn::VarStore::new(Device::Cpu);
    let mut net = BatchedNetwork::build(&vs.root(), &e, &seeds, seeds.len());
    let mut opt = Resumable::new(Update::Torch, &vs, e.lr).unwrap();
    let x = Tensor::rand([30, 2, r], (Kind::Float, Device::Cpu));
    let y = Tensor::rand([30, 1, r], (Kind::Float, Device::Cpu))
        .gt(0.5)
        .to_kind(Kind::Float);
    let n = (500_000 / r as u32).clamp(200, 5_000);
    time(&format!("batched forward, R={r}"), n, || {
        let _ = tch::no_grad(|| net.forward(&x));
    });
    time(&format!("batched train_step, R={r}"), n, || {
        let _ = net.train_step(&x, &y);
    });
    time(&format!("batched Update::Torch, R={r}"), n, || opt.step());
    time(&format!("batched full step, R={r}"), n, || {
        let _ = net.train_step(&x, &y);
        opt.step();
    });
    // The alternative layout: replicas first, one tiny GEMM per replica.
    let a = Tensor::rand([r, 30, 3], (Kind::Float, Device::Cpu));
    let w = Tensor::rand([r, 3, 3], (Kind::Float, Device::Cpu));
    time(&format!("bmm [R,30,3]x[R,3,3], R={r}"), n, || {
        let _ = a.bmm(&w);
    });
    let a = Tensor::rand([30, 3, r], (Kind::Float, Device::Cpu));
    let w = Tensor::rand([3, 3, r], (Kind::Float, Device::Cpu));
    time(&format!("replicas-last mul+sum, R={r}"), n, || {
        let _ = (a.unsqueeze(2) * w.unsqueeze(0)).sum_dim_intlist(
            [1i64].as_slice(),
            false,
            Kind::Float,
        );
    });
}
