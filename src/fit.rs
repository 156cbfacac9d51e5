//! Keras's `fit`: shuffled mini-batches, sample-weighted running training
//! metrics, validation once per epoch. Observers (CSV, progress, run record)
//! are [`Callback`]s, as in Keras, and never live inside the loop.
//!
//! The step loop never waits for the device: each step's loss and logits are
//! kept as tensors and read once per epoch, together with validation.

use std::time::Instant;

use anyhow::Result;
use tch::{Device, Kind, Reduction, Tensor, nn::Module};

use crate::model::Network;
use crate::optim::Step;

use crate::data::Split;
use crate::rng;

/// What one epoch logged, named as Keras names it.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct EpochLogs {
    /// Counts from 0, as Keras's CSVLogger writes it.
    pub epoch: i64,
    pub loss: f64,
    pub binary_accuracy: f64,
    pub val_loss: f64,
    pub val_binary_accuracy: f64,
    pub seconds: f64,
}

/// The shape of the training run, known before the first step.
#[derive(Clone, Copy, Debug)]
pub struct Plan {
    pub epochs: i64,
    pub batch_size: i64,
    pub train_len: i64,
}

impl Plan {
    pub fn steps(&self) -> i64 {
        (self.train_len + self.batch_size - 1) / self.batch_size
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Finished,
    /// The training loss of this epoch was NaN or infinite (Keras's TerminateOnNaN).
    Diverged {
        epoch: i64,
    },
    /// A signal stopped the run during this epoch, which is not logged.
    Interrupted {
        epoch: i64,
    },
}

/// The current epoch's training metrics so far; reading them waits for the
/// device, so observers read only as often as they display.
pub struct Running<'a> {
    pub step: i64,
    acc: &'a Accumulator,
}

impl Running<'_> {
    /// Running (loss, binary_accuracy) over the samples seen this epoch.
    pub fn read(&self) -> (f64, f64) {
        pair(&self.acc.means())
    }

    /// (loss, binary_accuracy) of this step's batch alone, as Keras's
    /// `train_on_batch` returns them: what `binclass parity` compares.
    pub fn read_step(&self) -> (f64, f64) {
        let Some(logits) = self.acc.logits.last() else {
            return (f64::NAN, f64::NAN);
        };
        let seen: i64 = self.acc.logits.iter().map(|l| l.size()[0]).sum();
        let b = logits.size()[0];
        let labels = self.acc.labels.narrow(0, seen - b, b);
        pair(&Tensor::stack(
            &[loss(logits, &labels), accuracy(logits, &labels)],
            0,
        ))
    }
}

fn pair(m: &Tensor) -> (f64, f64) {
    match Vec::<f64>::try_from(m.to_kind(Kind::Double).to_device(Device::Cpu)).as_deref() {
        Ok([a, b]) => (*a, *b),
        _ => (f64::NAN, f64::NAN),
    }
}

/// Where each epoch's row order comes from.
pub enum Order {
    /// A fresh permutation per epoch from the run's shuffle stream.
    Shuffled(Box<rand_chacha::ChaCha8Rng>),
    /// Given orders, `[epochs, train_len]` (a Keras run's, for parity).
    Given(Tensor),
}

impl Order {
    pub fn shuffled(seed: u64) -> Self {
        Order::Shuffled(Box::new(rng::stream(seed, rng::Stream::Shuffle)))
    }

    fn next(&mut self, epoch: i64, train_len: i64, device: Device) -> Tensor {
        match self {
            Order::Shuffled(r) => {
                Tensor::from_slice(&rng::permutation(r.as_mut(), train_len as usize))
                    .to_device(device)
            }
            Order::Given(orders) => orders.get(epoch).to_device(device),
        }
    }
}

pub trait Callback {
    fn on_train_begin(&mut self, _plan: &Plan) -> Result<()> {
        Ok(())
    }
    fn on_epoch_begin(&mut self, _epoch: i64) -> Result<()> {
        Ok(())
    }
    fn on_batch_end(&mut self, _running: &Running) {}
    fn on_epoch_end(&mut self, _logs: &EpochLogs) -> Result<()> {
        Ok(())
    }
    fn on_train_end(&mut self, _outcome: Outcome) -> Result<()> {
        Ok(())
    }
}

/// Keras's History: every epoch's logs, kept in memory.
#[derive(Debug, Default)]
pub struct History(pub Vec<EpochLogs>);

impl Callback for History {
    fn on_epoch_end(&mut self, logs: &EpochLogs) -> Result<()> {
        self.0.push(*logs);
        Ok(())
    }
}

/// Each step's logits, as the weights were at that step, kept on the device.
struct Accumulator {
    logits: Vec<Tensor>,
    /// The epoch's labels in batch order.
    labels: Tensor,
}

impl Accumulator {
    /// [loss, accuracy] as Keras's running means. Keras averages each step's
    /// batch-mean loss weighted by the batch size, which is the mean of the
    /// per-sample losses, so both are computed over the samples seen so far:
    /// no per-step loss op, and the short last batch weighs what it holds.
    fn means(&self) -> Tensor {
        let logits = Tensor::cat(&self.logits, 0);
        let labels = self.labels.narrow(0, 0, logits.size()[0]);
        Tensor::stack(&[loss(&logits, &labels), accuracy(&logits, &labels)], 0)
    }
}

/// Keras's `binary_accuracy` on a sigmoid output: `sigmoid(logit) > 0.5`,
/// in the logits' kind (float32, as Keras's floatx, unless replaying float64).
pub fn accuracy(logits: &Tensor, labels: &Tensor) -> Tensor {
    let kind = logits.kind();
    logits
        .sigmoid()
        .gt(0.5)
        .to_kind(kind)
        .eq_tensor(labels)
        .to_kind(kind)
        .mean(kind)
}

/// Keras's `binary_crossentropy` on a sigmoid output, computed from the logit.
pub fn loss(logits: &Tensor, labels: &Tensor) -> Tensor {
    logits.binary_cross_entropy_with_logits::<Tensor>(labels, None, None, Reduction::Mean)
}

/// Trains `net` in place, shuffling each epoch with `seed`'s stream; stops
/// early only when the loss diverges.
pub fn fit(
    net: &mut Network,
    opt: &mut dyn Step,
    data: &Split,
    plan: Plan,
    seed: u64,
    callbacks: &mut [&mut dyn Callback],
) -> Result<Outcome> {
    fit_in_order(net, opt, data, plan, Order::shuffled(seed), callbacks)
}

/// [`fit`] with the epochs' row orders from `order`.
pub fn fit_in_order(
    net: &mut Network,
    opt: &mut dyn Step,
    data: &Split,
    plan: Plan,
    mut order: Order,
    callbacks: &mut [&mut dyn Callback],
) -> Result<Outcome> {
    if let Order::Given(orders) = &order
        && orders.size() != [plan.epochs, plan.train_len]
    {
        anyhow::bail!(
            "given row orders have shape {:?}, expected [{}, {}]",
            orders.size(),
            plan.epochs,
            plan.train_len
        );
    }
    let device = data.train_x.device();
    let steps = plan.steps();
    let bs = plan.batch_size;
    let mut acc = Accumulator {
        logits: Vec::with_capacity(steps as usize),
        labels: Tensor::new(),
    };
    for cb in callbacks.iter_mut() {
        cb.on_train_begin(&plan)?;
    }
    let mut outcome = Outcome::Finished;
    for epoch in 0..plan.epochs {
        let start = Instant::now();
        for cb in callbacks.iter_mut() {
            cb.on_epoch_begin(epoch)?;
        }
        // One gather per epoch; every batch is then a view.
        let order = order.next(epoch, plan.train_len, device);
        let xs = data.train_x.index_select(0, &order).split(bs, 0);
        acc.labels = data.train_y.index_select(0, &order);
        let ys = acc.labels.split(bs, 0);
        acc.logits.clear();
        for (step, (x, y)) in (0..).zip(xs.iter().zip(&ys)) {
            let logits = net.train_step(x, y);
            opt.step();
            acc.logits.push(logits);
            let running = Running {
                step: step + 1,
                acc: &acc,
            };
            for cb in callbacks.iter_mut() {
                cb.on_batch_end(&running);
            }
            if crate::interrupt::requested() {
                break;
            }
        }
        if crate::interrupt::requested() {
            outcome = Outcome::Interrupted { epoch };
            break;
        }
        let (val_loss, val_acc) = tch::no_grad(|| {
            let logits = net.forward(&data.val_x);
            (loss(&logits, &data.val_y), accuracy(&logits, &data.val_y))
        });
        let all = Tensor::cat(&[acc.means(), val_loss.view([1]), val_acc.view([1])], 0);
        let m = Vec::<f64>::try_from(all.to_kind(Kind::Double).to_device(Device::Cpu))?;
        let logs = EpochLogs {
            epoch,
            loss: m[0],
            binary_accuracy: m[1],
            val_loss: m[2],
            val_binary_accuracy: m[3],
            seconds: start.elapsed().as_secs_f64(),
        };
        for cb in callbacks.iter_mut() {
            cb.on_epoch_end(&logs)?;
        }
        if !logs.loss.is_finite() {
            outcome = Outcome::Diverged { epoch };
            break;
        }
    }
    for cb in callbacks.iter_mut() {
        cb.on_train_end(outcome)?;
    }
    Ok(outcome)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn running_means_weigh_the_short_last_batch_by_its_size() {
        // A step of 3 samples then a step of 1: accuracy 2/3 then 0/1.
        let acc = Accumulator {
            logits: vec![
                Tensor::from_slice(&[1.0f32, 1.0, -1.0]),
                Tensor::from_slice(&[1.0f32]),
            ],
            labels: Tensor::from_slice(&[1.0f32, 1.0, 1.0, 0.0]),
        };
        let m = Vec::<f64>::try_from(acc.means().to_kind(Kind::Double)).unwrap();
        let (right, wrong) = ((1.0 + (-1f64).exp()).ln(), (1.0 + 1f64.exp()).ln());
        let first = (2.0 * right + wrong) / 3.0;
        let weighted = (3.0 * first + wrong) / 4.0;
        assert!((m[0] - weighted).abs() < 1e-6, "{} vs {weighted}", m[0]);
        assert!(
            (m[0] - (first + wrong) / 2.0).abs() > 0.1,
            "unweighted mean"
        );
        assert_eq!(m[1], 0.5, "per-sample accuracy, not the mean of 2/3 and 0");
    }

    #[test]
    fn accuracy_thresholds_the_probability_strictly() {
        let logits = Tensor::from_slice(&[0.0f32, 1e-9, 0.1, -0.1]);
        // sigmoid(1e-9) rounds to exactly 0.5 in float32: not > 0.5, as in Keras.
        let labels = Tensor::from_slice(&[0.0f32, 0.0, 1.0, 0.0]);
        assert_eq!(f64::try_from(accuracy(&logits, &labels)).unwrap(), 1.0);
    }

    #[test]
    fn loss_is_the_stable_logit_form() {
        let logits = Tensor::from_slice(&[200.0f32, -200.0]);
        let labels = Tensor::from_slice(&[0.0f32, 1.0]);
        // A clipped-probability loss would cap at -ln(1e-7) ~ 16.1.
        assert_eq!(f64::try_from(loss(&logits, &labels)).unwrap(), 200.0);
    }
}
