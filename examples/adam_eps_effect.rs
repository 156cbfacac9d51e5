//! How much Adam's epsilon placement matters on the baseline.
//!
//! Keras adds epsilon (1e-7) after folding the bias correction into the step
//! size; libtorch adds it to sqrt(v̂). In libtorch terms Keras's epsilon is
//! 1e-7 / sqrt(1 - 0.999^t): 3.2e-6 at step 1, 3.2e-7 at step 100, → 1e-7.
//! Training with a constant 1e-7 and with a constant 3.2e-6 brackets Keras's
//! schedule, so their difference bounds the effect. PyTorch's default 1e-8 is
//! shown too. `cargo run --release --example adam_eps_effect`
use binclass::callbacks::History;
use binclass::config::Experiment;
use binclass::data::Dataset;
use binclass::fit::{self, EpochLogs, Plan};
use binclass::keras_csv::{LOSS, VAL_ACC};
use binclass::model::Network;
use tch::Device;
use tch::nn::{self, OptimizerConfig};

fn curve(e: &Experiment, seed: u64, eps: f64) -> Vec<EpochLogs> {
    let data = Dataset::generate(e, seed)
        .unwrap()
        .split(e.train_len() as usize, Device::Cpu)
        .unwrap();
    let vs = nn::VarStore::new(Device::Cpu);
    let mut net = Network::build(&vs.root(), e, seed);
    let adam = nn::Adam {
        eps,
        ..binclass::optim::ADAM
    };
    let mut opt = adam.build(&vs, e.lr).unwrap();
    let plan = Plan::new(e.epochs, e.batch_size, e.train_len());
    let mut logs = History::default();
    fit::fit(&mut net, &mut opt, &data, plan, seed, &mut [&mut logs]).unwrap();
    logs.0
}

fn main() {
    tch::set_num_threads(1);
    let e = Experiment::preset("baseline").unwrap();
    println!(
        "seed  eps       max|Δ val_acc|  final Δ val_acc  max|Δ loss| (vs eps 1e-7, 100 epochs)"
    );
    for seed in 0..5 {
        let ours = curve(&e, seed, 1e-7);
        for eps in [3.2e-6, 1e-8] {
            let other = curve(&e, seed, eps);
            let d = |f: fn(&EpochLogs) -> f64| {
                ours.iter()
                    .zip(&other)
                    .map(|(a, b)| (f(a) - f(b)).abs())
                    .fold(0.0, f64::max)
            };
            let last =
                other.last().unwrap().metrics[VAL_ACC] - ours.last().unwrap().metrics[VAL_ACC];
            println!(
                "{seed:<5} {eps:<9e} {:<15.4} {last:<+16.4} {:.4}",
                d(|l| l.metrics[VAL_ACC]),
                d(|l| l.metrics[LOSS])
            );
        }
    }
}
