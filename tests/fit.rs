//! The training loop against hand-computed expectations.

use binclass::config::{Experiment, Overrides};
use binclass::data::Dataset;
use binclass::fit::{self, History, Plan};
use binclass::{model::Network, train::ADAM};
use tch::nn::{self, Module, OptimizerConfig};
use tch::{Device, Kind};

/// With a learning rate too small to move any weight, the epoch's running
/// means must equal the metrics of the whole training set at the initial
/// weights — which holds only if the last short batch weighs its true size.
#[test]
fn running_means_weigh_the_last_short_batch_by_its_size() {
    let e = Experiment::resolve(
        "baseline",
        &Overrides {
            batch_size: Some(7999), // batches of 7999 and 1
            lr: Some(1e-20),
            epochs: Some(1),
            ..Default::default()
        },
    )
    .unwrap();
    let data = Dataset::generate(&e, 0)
        .unwrap()
        .split(8000, Device::Cpu)
        .unwrap();
    let vs = nn::VarStore::new(Device::Cpu);
    let mut net = Network::build(&vs.root(), &e, 0);
    let (full_loss, full_acc) = tch::no_grad(|| {
        let logits = net.forward(&data.train_x);
        (
            f64::try_from(fit::loss(&logits, &data.train_y).to_kind(Kind::Double)).unwrap(),
            f64::try_from(fit::accuracy(&logits, &data.train_y).to_kind(Kind::Double)).unwrap(),
        )
    });
    let mut opt = ADAM.build(&vs, e.lr).unwrap();
    let mut logs = History::default();
    let plan = Plan {
        epochs: 1,
        batch_size: e.batch_size,
        train_len: 8000,
    };
    fit::fit(&mut net, &mut opt, &data, plan, 0, &mut [&mut logs]).unwrap();
    let l = logs.0[0];
    assert!(
        (l.loss - full_loss).abs() < 1e-6,
        "{} vs {full_loss}",
        l.loss
    );
    assert!(
        (l.binary_accuracy - full_acc).abs() < 1e-6,
        "{} vs {full_acc}",
        l.binary_accuracy
    );
}
