//! The training loop against hand-computed expectations.

use binclass::callbacks::History;
use binclass::config::{Experiment, Overrides};
use binclass::data::Dataset;
use binclass::fit::{self, Plan};
use binclass::keras_csv::column;
use binclass::{model::Network, optim::ADAM};
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
    let plan = Plan::new(1, e.batch_size, 8000);
    fit::fit(&mut net, &mut opt, &data, plan, 0, &mut [&mut logs]).unwrap();
    let l = logs.0[0].metrics;
    let (loss, acc) = (l[column("loss")], l[column("binary_accuracy")]);
    assert!((loss - full_loss).abs() < 1e-6, "{loss} vs {full_loss}");
    assert!((acc - full_acc).abs() < 1e-6, "{acc} vs {full_acc}");
}

/// Given orders are the batches, in that order: the reversed rows give the
/// same epoch as the rows reversed by hand, and a wrong shape is an error.
#[test]
fn given_orders_set_the_batches_and_must_match_the_plan() {
    let e = Experiment::resolve(
        "baseline",
        &Overrides {
            samples: Some(100),
            epochs: Some(1),
            ..Default::default()
        },
    )
    .unwrap();
    let data = Dataset::generate(&e, 0)
        .unwrap()
        .split(80, Device::Cpu)
        .unwrap();
    let plan = Plan::new(1, e.batch_size, 80);
    let run = |data: &binclass::data::Split, order: fit::Order| {
        let vs = nn::VarStore::new(Device::Cpu);
        let mut net = Network::build(&vs.root(), &e, 0);
        let mut opt = ADAM.build(&vs, e.lr).unwrap();
        let mut logs = History::default();
        fit::fit_in_order(&mut net, &mut opt, data, plan, order, &mut [&mut logs])
            .map(|_| logs.0[0].metrics[column("val_loss")])
    };
    let reversed = tch::Tensor::arange_start_step(79, -1, -1, (Kind::Int64, Device::Cpu));
    let flipped = binclass::data::Split {
        train_x: data.train_x.flip([0]),
        train_y: data.train_y.flip([0]),
        val_x: data.val_x.shallow_clone(),
        val_y: data.val_y.shallow_clone(),
    };
    let identity = tch::Tensor::arange(80, (Kind::Int64, Device::Cpu));
    let a = run(&data, fit::Order::Given(reversed.view([1, 80]))).unwrap();
    let b = run(&flipped, fit::Order::Given(identity.view([1, 80]))).unwrap();
    let c = run(&data, fit::Order::Given(identity.view([1, 80]))).unwrap();
    assert_eq!(a, b);
    assert_ne!(a, c, "the order changes the run");
    let err = run(&data, fit::Order::Given(identity.view([2, 40]))).unwrap_err();
    assert!(err.to_string().contains("expected [1, 80]"), "{err}");
}

/// A run started at `initial_epoch` trains and logs only the epochs from
/// there, and callbacks are told where it starts (Keras's `initial_epoch`).
#[test]
fn a_run_starts_at_its_initial_epoch_and_callbacks_are_told() {
    struct Start(Option<i64>);
    impl binclass::callbacks::Callback for Start {
        fn on_train_begin(&mut self, plan: &Plan) -> anyhow::Result<()> {
            self.0 = Some(plan.initial_epoch);
            Ok(())
        }
    }
    let e = Experiment::resolve(
        "baseline",
        &Overrides {
            samples: Some(300),
            ..Default::default()
        },
    )
    .unwrap();
    let data = Dataset::generate(&e, 0)
        .unwrap()
        .split(240, Device::Cpu)
        .unwrap();
    let vs = nn::VarStore::new(Device::Cpu);
    let mut net = Network::build(&vs.root(), &e, 0);
    let mut opt = ADAM.build(&vs, e.lr).unwrap();
    let (mut logs, mut start) = (History::default(), Start(None));
    let plan = Plan {
        initial_epoch: 3,
        ..Plan::new(5, e.batch_size, 240)
    };
    fit::fit(
        &mut net,
        &mut opt,
        &data,
        plan,
        0,
        &mut [&mut logs, &mut start],
    )
    .unwrap();
    assert_eq!(start.0, Some(3));
    let epochs: Vec<i64> = logs.0.iter().map(|l| l.epoch).collect();
    assert_eq!(epochs, [3, 4]);
}

/// CSVLogger continues a file, as Keras's `append=True` does: rows after
/// the existing ones, no second header.
#[test]
fn csv_logger_continues_an_existing_file_without_a_second_header() {
    use binclass::callbacks::{Callback, CsvLogger};
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("run.csv");
    let header = binclass::keras_csv::header();
    let first = "0,0.5,0.7,0.5,0.7\r\n";
    std::fs::write(&csv, [header.as_slice(), first.as_bytes()].concat()).unwrap();
    let mut logger = CsvLogger::new(csv.clone());
    let logs = fit::EpochLogs::new(1, &[0.25, 0.875, 0.125, 0.75], 0.0);
    logger.on_epoch_end(&logs).unwrap();
    let text = std::fs::read_to_string(&csv).unwrap();
    assert_eq!(
        text,
        format!(
            "{}{first}1,0.875,0.25,0.75,0.125\r\n",
            String::from_utf8(header).unwrap()
        )
    );
}
