//! Times the parts of one training step of the baseline, to see where a
//! step's time goes (per-op overhead dominates: the arithmetic is ~1k flops).
//! `cargo run --release --example profile_step`
use std::time::Instant;

use binclass::config::Experiment;
use binclass::{fit, model, train::ADAM};
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
    println!(
        "{label:<28} {:>8.1} us",
        t.elapsed().as_secs_f64() * 1e6 / n as f64
    );
}

fn main() {
    tch::set_num_threads(1);
    let e = Experiment::preset("baseline").unwrap();
    let vs = nn::VarStore::new(Device::Cpu);
    let net = model::build(&vs.root(), &e, 0);
    let mut opt = ADAM.build(&vs, e.lr).unwrap();
    let x = Tensor::rand([30, 2], (Kind::Float, Device::Cpu));
    let y = Tensor::rand([30, 1], (Kind::Float, Device::Cpu))
        .gt(0.5)
        .to_kind(Kind::Float);
    let n = 20_000;
    time("forward (no grad)", n, || {
        let _ = tch::no_grad(|| net.forward(&x));
    });
    time("forward", n, || {
        let _ = net.forward(&x);
    });
    time("forward + loss", n, || {
        let _ = fit::loss(&net.forward(&x), &y);
    });
    time("forward + loss + backward", n, || {
        opt.zero_grad();
        fit::loss(&net.forward(&x), &y).backward();
    });
    time("adam step alone", n, || opt.step());
    time("zero_grad alone", n, || opt.zero_grad());
    time("full step", n, || {
        let l = fit::loss(&net.forward(&x), &y);
        opt.backward_step(&l);
    });
    flat_variant();
    leaf_view_variant();
    time("tanh on [30,3]", n, || {
        let _ = x.tanh();
    });
}

#[allow(dead_code)]
pub fn flat_variant() {
    let vs = nn::VarStore::new(Device::Cpu);
    let flat = vs
        .root()
        .var("flat", &[37], nn::Init::Uniform { lo: -0.5, up: 0.5 });
    let mut off = 0;
    let mut take = |shape: &[i64]| {
        let n: i64 = shape.iter().product();
        let t = flat.narrow(0, off, n).view(shape);
        off += n;
        t
    };
    let dims = [(2, 3), (3, 3), (3, 3), (3, 1)];
    let mut seq = nn::seq();
    for (i, (fi, fo)) in dims.iter().enumerate() {
        let lin = nn::Linear {
            ws: take(&[*fo, *fi]),
            bs: Some(take(&[*fo])),
        };
        seq = seq.add(lin);
        if i < 3 {
            seq = seq.add_fn(|x| x.tanh());
        }
    }
    let mut opt = ADAM.build(&vs, 0.03).unwrap();
    let x = Tensor::rand([30, 2], (Kind::Float, Device::Cpu));
    let y = Tensor::rand([30, 1], (Kind::Float, Device::Cpu))
        .gt(0.5)
        .to_kind(Kind::Float);
    time("flat: fwd+loss+backward", 20_000, || {
        opt.zero_grad();
        fit::loss(&seq.forward(&x), &y).backward();
    });
    time("flat: adam step alone", 20_000, || opt.step());
    time("flat: full step", 20_000, || {
        let l = fit::loss(&seq.forward(&x), &y);
        opt.backward_step(&l);
    });
}

#[allow(dead_code)]
pub fn leaf_view_variant() {
    let vs = nn::VarStore::new(Device::Cpu);
    let flat = vs
        .root()
        .var("flat", &[37], nn::Init::Uniform { lo: -0.5, up: 0.5 });
    tch::no_grad(|| ());
    (flat.sum(Kind::Float) * 0.0).backward();
    let mut flat_grad = flat.grad();
    let mut off = 0;
    let mut leaves = vec![];
    let mut take = |shape: &[i64]| {
        let n: i64 = shape.iter().product();
        let t = flat
            .detach()
            .narrow(0, off, n)
            .view(shape)
            .set_requires_grad(true);
        off += n;
        leaves.push(t.shallow_clone());
        t
    };
    let dims = [(2, 3), (3, 3), (3, 3), (3, 1)];
    let mut seq = nn::seq();
    for (i, (fi, fo)) in dims.iter().enumerate() {
        let lin = nn::Linear {
            ws: take(&[*fo, *fi]),
            bs: Some(take(&[*fo])),
        };
        seq = seq.add(lin);
        if i < 3 {
            seq = seq.add_fn(|x| x.tanh());
        }
    }
    let mut opt = ADAM.build(&vs, 0.03).unwrap();
    let x = Tensor::rand([30, 2], (Kind::Float, Device::Cpu));
    let y = Tensor::rand([30, 1], (Kind::Float, Device::Cpu))
        .gt(0.5)
        .to_kind(Kind::Float);
    time("leafview: fwd+loss+grad", 20_000, || {
        let l = fit::loss(&seq.forward(&x), &y);
        Tensor::run_backward(&[&l], &leaves, false, false);
    });
    time("leafview: full step", 20_000, || {
        let l = fit::loss(&seq.forward(&x), &y);
        let g = Tensor::run_backward(&[&l], &leaves, false, false);
        let g: Vec<Tensor> = g.iter().map(|g| g.view(-1)).collect();
        tch::no_grad(|| {
            flat_grad.copy_(&Tensor::cat(&g, 0));
        });
        opt.step();
    });
}
