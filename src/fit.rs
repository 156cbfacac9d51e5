//! Keras's `fit`, the one training loop of `train`, `sweep` and `parity`:
//! shuffled mini-batches, sample-weighted running training metrics,
//! validation once per epoch. A model trains one network or R replicas side
//! by side ([`Model`]); each replica's run is observed by its own
//! [`CallbackList`] (CSV, record, progress, NaN stop), as Keras's callbacks
//! observe its `fit`, and any callback may stop its run.
//!
//! The step loop never waits for the device: each step's logits are kept as
//! tensors and read once per epoch, together with validation.

use std::time::Instant;

use anyhow::{Result, bail};
use tch::{Device, Kind, Reduction, Tensor};

use crate::data::Split;
pub use crate::keras_csv::EpochLogs;
use crate::keras_csv::{LOGS, TRAINING};
use crate::optim::Step;
use crate::rng;

/// What a callback asks of the run after an epoch.
#[derive(Clone, Debug, PartialEq)]
pub enum Control {
    Continue,
    /// End the run after this epoch (Keras's `model.stop_training = True`),
    /// with this outcome.
    Stop(Outcome),
}

pub trait Callback {
    /// `plan.initial_epoch` is where a continued run starts.
    fn on_train_begin(&mut self, _plan: &Plan) -> Result<()> {
        Ok(())
    }
    fn on_epoch_begin(&mut self, _epoch: i64) -> Result<()> {
        Ok(())
    }
    fn on_batch_end(&mut self, _running: &Running) {}
    fn on_epoch_end(&mut self, _logs: &EpochLogs) -> Result<Control> {
        Ok(Control::Continue)
    }
    fn on_train_end(&mut self, _outcome: &Outcome) -> Result<()> {
        Ok(())
    }
}

/// Keras's CallbackList: the callbacks of one run, called in order.
pub struct CallbackList<'a, 'b>(Vec<&'a mut (dyn Callback + 'b)>);

impl<'a, 'b> CallbackList<'a, 'b> {
    pub fn new(callbacks: impl IntoIterator<Item = &'a mut (dyn Callback + 'b)>) -> Self {
        CallbackList(callbacks.into_iter().collect())
    }

    pub fn train_begin(&mut self, plan: &Plan) -> Result<()> {
        self.0.iter_mut().try_for_each(|c| c.on_train_begin(plan))
    }

    pub fn epoch_begin(&mut self, epoch: i64) -> Result<()> {
        self.0.iter_mut().try_for_each(|c| c.on_epoch_begin(epoch))
    }

    pub fn batch_end(&mut self, running: &Running) {
        self.0.iter_mut().for_each(|c| c.on_batch_end(running));
    }

    /// Every callback sees the logs; the first stop request ends the run.
    pub fn epoch_end(&mut self, logs: &EpochLogs) -> Result<Option<Outcome>> {
        let mut stop = None;
        for c in &mut self.0 {
            if let Control::Stop(outcome) = c.on_epoch_end(logs)? {
                stop.get_or_insert(outcome);
            }
        }
        Ok(stop)
    }

    pub fn train_end(&mut self, outcome: &Outcome) -> Result<()> {
        self.0.iter_mut().try_for_each(|c| c.on_train_end(outcome))
    }
}

/// The shape of the training run, known before the first step.
#[derive(Clone, Copy, Debug)]
pub struct Plan {
    /// The epoch training starts at: 0, or where a continued run left off
    /// (Keras's `initial_epoch`).
    pub initial_epoch: i64,
    pub epochs: i64,
    pub batch_size: i64,
    pub train_len: i64,
}

impl Plan {
    /// A run from its first epoch.
    pub fn new(epochs: i64, batch_size: i64, train_len: i64) -> Self {
        Plan {
            initial_epoch: 0,
            epochs,
            batch_size,
            train_len,
        }
    }

    pub fn steps(&self) -> i64 {
        (self.train_len + self.batch_size - 1) / self.batch_size
    }
}

/// How a run ended.
#[derive(Clone, Debug, PartialEq)]
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
    /// A callback asked to stop after this epoch.
    Stopped {
        epoch: i64,
        why: String,
    },
}

/// What `fit` trains: one network, or replicas side by side whose data,
/// logits and labels carry a trailing replica dimension.
pub trait Model {
    /// One step's forward and backward pass: returns the logits of `xs` and
    /// leaves the gradient of each replica's mean loss in the store.
    fn train_step(&mut self, xs: &Tensor, ys: &Tensor) -> Tensor;
    /// The logits of `xs`, for validation (called under `no_grad`).
    fn logits(&self, xs: &Tensor) -> Tensor;
    /// Per replica the metrics of [`TRAINING`] (`loss`, `binary_accuracy`)
    /// of `logits` against `labels`, as Keras computes them for one run:
    /// shape `[R, TRAINING.len()]`.
    fn metrics(&self, logits: &Tensor, labels: &Tensor) -> Tensor;
}

/// The current epoch's training metrics so far; reading them waits for the
/// device, so observers read only as often as they display.
pub struct Running<'a> {
    pub step: i64,
    acc: &'a Accumulator,
    model: &'a dyn Model,
}

impl Running<'_> {
    /// The running metrics of [`TRAINING`] over the samples seen this
    /// epoch, of the first replica.
    pub fn read(&self) -> Vec<f64> {
        first(&self.acc.means(self.model))
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
        let m = first(&self.model.metrics(logits, &labels));
        (m[0], m[1])
    }
}

/// The first replica's row of a `[R, TRAINING.len()]` metrics tensor.
fn first(m: &Tensor) -> Vec<f64> {
    match Vec::<f64>::try_from(m.get(0).to_kind(Kind::Double).to_device(Device::Cpu)) {
        Ok(v) if v.len() == TRAINING.len() => v,
        _ => vec![f64::NAN; TRAINING.len()],
    }
}

/// Where each epoch's row order comes from.
pub enum Order {
    /// Each run's own permutation per epoch from its shuffle stream: `[t]`
    /// for one network, `[lanes, 1, t]` for replicas, where lanes beyond the
    /// streams (padding) keep the rows in order.
    Shuffled {
        streams: Vec<rand_chacha::ChaCha8Rng>,
        lanes: usize,
    },
    /// Given orders, `[epochs, train_len]` (a Keras run's, for parity).
    Given(Tensor),
}

impl Order {
    /// Each seed's shuffle stream, at a saved position (a checkpoint's)
    /// where `word_pos` has one, else from its start.
    pub fn shuffled(seeds: &[u64], lanes: usize, word_pos: &[u128]) -> Self {
        let mut streams: Vec<_> = seeds
            .iter()
            .map(|&s| rng::stream(s, rng::Stream::Shuffle))
            .collect();
        for (s, &pos) in streams.iter_mut().zip(word_pos) {
            s.set_word_pos(pos);
        }
        Order::Shuffled { streams, lanes }
    }

    /// Each stream's position, which a checkpoint keeps.
    pub fn word_positions(&self) -> Vec<u128> {
        match self {
            Order::Shuffled { streams, .. } => streams.iter().map(|s| s.get_word_pos()).collect(),
            Order::Given(_) => vec![],
        }
    }

    fn next(&mut self, epoch: i64, data: &Split) -> Tensor {
        let (t, device) = (data.train_x.size()[0], data.train_x.device());
        match self {
            Order::Shuffled { streams, .. } if data.train_x.dim() == 2 => {
                Tensor::from_slice(&rng::permutation(&mut streams[0], t as usize)).to_device(device)
            }
            // Sent as int32, half the bytes: a sweep sends R × t of them.
            Order::Shuffled { streams, lanes } => {
                Tensor::from_slice(&rng::permutations(streams, t, *lanes))
                    .view([*lanes as i64, 1, t])
                    .to_device(device)
                    .to_kind(Kind::Int64)
            }
            Order::Given(orders) => orders.get(epoch).to_device(device),
        }
    }

    fn check(&self, plan: &Plan) -> Result<()> {
        if let Order::Given(orders) = self
            && orders.size() != [plan.epochs, plan.train_len]
        {
            bail!(
                "given row orders have shape {:?}, expected [{}, {}]",
                orders.size(),
                plan.epochs,
                plan.train_len
            );
        }
        Ok(())
    }
}

/// The epoch's training rows and labels in `order`: one gather per epoch,
/// after which every batch is a view.
fn epoch_rows(data: &Split, order: &Tensor) -> (Tensor, Tensor) {
    if data.train_x.dim() == 2 {
        (
            data.train_x.index_select(0, order),
            data.train_y.index_select(0, order),
        )
    } else {
        // [t, F, R]: row j of replica r's epoch is its row order[r, 0, j].
        // Gathered with the rows last ([R, F, t] views), where libtorch's
        // gather runs 1.7× faster than along the first dimension, straight
        // into the [t, F, R] tensor the steps slice.
        let gather = |t: &Tensor| {
            let rows = t.empty_like();
            let by_replica = t.permute([2, 1, 0]);
            let size = by_replica.size();
            let _ = by_replica.gather_out(
                &rows.permute([2, 1, 0]),
                2,
                &order.expand(&size, false),
                false,
            );
            rows
        };
        (gather(&data.train_x), gather(&data.train_y))
    }
}

/// Each step's logits, as the weights were at that step, kept on the device.
struct Accumulator {
    logits: Vec<Tensor>,
    /// The epoch's labels in batch order.
    labels: Tensor,
}

impl Accumulator {
    /// Per replica [loss, accuracy] as Keras's running means. Keras averages
    /// each step's batch-mean loss weighted by the batch size, which is the
    /// mean of the per-sample losses, so both are computed over the samples
    /// seen so far: no per-step loss op, and the short last batch weighs
    /// what it holds.
    fn means(&self, model: &dyn Model) -> Tensor {
        let logits = Tensor::cat(&self.logits, 0);
        let labels = self.labels.narrow(0, 0, logits.size()[0]);
        model.metrics(&logits, &labels)
    }
}

/// Keras's `binary_accuracy` on a sigmoid output: `sigmoid(logit) > 0.5`,
/// in the logits' kind (float32, as Keras's floatx, unless replaying float64).
pub fn accuracy(logits: &Tensor, labels: &Tensor) -> Tensor {
    hits(logits, labels).mean(logits.kind())
}

/// 1 where [`accuracy`] counts a logit right, else 0, in the logits' kind.
pub fn hits(logits: &Tensor, labels: &Tensor) -> Tensor {
    let kind = logits.kind();
    let predicted = logits.sigmoid().gt(0.5).to_kind(kind);
    predicted.eq_tensor(labels).to_kind(kind)
}

/// Keras's `binary_crossentropy` on a sigmoid output, computed from the logit.
pub fn loss(logits: &Tensor, labels: &Tensor) -> Tensor {
    logits.binary_cross_entropy_with_logits::<Tensor>(labels, None, None, Reduction::Mean)
}

/// Trains one run of `net` in place, shuffling each epoch with `seed`'s stream.
pub fn fit<M: Model>(
    net: &mut M,
    opt: &mut dyn Step,
    data: &Split,
    plan: Plan,
    seed: u64,
    callbacks: &mut [&mut dyn Callback],
) -> Result<Outcome> {
    fit_in_order(
        net,
        opt,
        data,
        plan,
        Order::shuffled(&[seed], 1, &[]),
        callbacks,
    )
}

/// [`fit`] of one run with the epochs' row orders from `order`.
pub fn fit_in_order<M: Model>(
    net: &mut M,
    opt: &mut dyn Step,
    data: &Split,
    plan: Plan,
    order: Order,
    callbacks: &mut [&mut dyn Callback],
) -> Result<Outcome> {
    let mut runs = [CallbackList::new(callbacks.iter_mut().map(|c| &mut **c))];
    let ended = vec![None];
    let mut outcomes = fit_runs_from(net, opt, data, plan, order, &mut runs, ended, &mut |_| {
        Ok(())
    })?;
    Ok(outcomes.remove(0))
}

/// What a checkpoint reads once every run has seen the epoch: `fit`
/// hands it the state it saves (Keras's BackupAndRestore sees the model).
pub struct EpochEnd<'a> {
    pub epoch: i64,
    pub seconds: f64,
    /// Each run's logs of the epoch; `None` for a run that had ended before it.
    pub logs: &'a [Option<EpochLogs>],
    /// How each run that has ended did so; `None` for those still going.
    pub ended: &'a [Option<Outcome>],
    pub order: &'a Order,
    pub optimizer: &'a dyn Step,
}

/// Trains every run of `net` (one per callback list: the first
/// `runs.len()` replicas; any further ones are padding, never reported)
/// until each has finished or been stopped. Returns each run's outcome.
/// Runs already `ended` (before a checkpoint) are neither trained for nor
/// told anything, and `after_epoch` sees each epoch's end (a sweep's
/// checkpoint, which covers all its runs).
#[allow(clippy::too_many_arguments)]
pub fn fit_runs_from<M: Model>(
    net: &mut M,
    opt: &mut dyn Step,
    data: &Split,
    plan: Plan,
    mut order: Order,
    runs: &mut [CallbackList],
    mut ended: Vec<Option<Outcome>>,
    after_epoch: &mut dyn FnMut(&EpochEnd) -> Result<()>,
) -> Result<Vec<Outcome>> {
    order.check(&plan)?;
    let mut acc = Accumulator {
        logits: Vec::with_capacity(plan.steps() as usize),
        labels: Tensor::new(),
    };
    for (run, _) in runs.iter_mut().zip(&ended).filter(|(_, e)| e.is_none()) {
        run.train_begin(&plan)?;
    }
    for epoch in plan.initial_epoch..plan.epochs {
        let start = Instant::now();
        for (run, _) in runs.iter_mut().zip(&ended).filter(|(_, e)| e.is_none()) {
            run.epoch_begin(epoch)?;
        }
        let (xs, ys) = epoch_rows(data, &order.next(epoch, data));
        acc.labels = ys;
        train_epoch(net, opt, &xs, &mut acc, plan.batch_size, |running| {
            for (run, _) in runs.iter_mut().zip(&ended).filter(|(_, e)| e.is_none()) {
                run.batch_end(running);
            }
        });
        if crate::interrupt::requested() {
            end_all(runs, &mut ended, Outcome::Interrupted { epoch })?;
            break;
        }
        let logs: Vec<Option<EpochLogs>> = epoch_logs(net, data, &acc, epoch, start)?
            .into_iter()
            .zip(&ended)
            .map(|(l, e)| e.is_none().then_some(l))
            .collect();
        for ((run, end), logs) in runs.iter_mut().zip(&mut ended).zip(&logs) {
            if let Some(logs) = logs
                && let Some(outcome) = run.epoch_end(logs)?
            {
                run.train_end(&outcome)?;
                *end = Some(outcome);
            }
        }
        after_epoch(&EpochEnd {
            epoch,
            seconds: logs.iter().flatten().next().map_or(0.0, |l| l.seconds),
            logs: &logs,
            ended: &ended,
            order: &order,
            optimizer: &*opt,
        })?;
        if ended.iter().all(Option::is_some) {
            break;
        }
    }
    end_all(runs, &mut ended, Outcome::Finished)?;
    Ok(ended
        .into_iter()
        .map(|e| e.expect("every run ended"))
        .collect())
}

/// One pass over the epoch's rows `xs` (labels in `acc.labels`), batch by
/// batch, keeping each step's logits; stops early on a signal.
fn train_epoch<M: Model>(
    net: &mut M,
    opt: &mut dyn Step,
    xs: &Tensor,
    acc: &mut Accumulator,
    batch_size: i64,
    mut batch_end: impl FnMut(&Running),
) {
    acc.logits.clear();
    let ys = acc.labels.split(batch_size, 0);
    for (step, (x, y)) in (1..).zip(xs.split(batch_size, 0).iter().zip(&ys)) {
        let logits = net.train_step(x, y);
        opt.step();
        acc.logits.push(logits);
        batch_end(&Running {
            step,
            acc,
            model: &*net,
        });
        if crate::interrupt::requested() {
            break;
        }
    }
}

/// Ends every run still going with `outcome`.
fn end_all(
    runs: &mut [CallbackList],
    ended: &mut [Option<Outcome>],
    outcome: Outcome,
) -> Result<()> {
    for (run, end) in runs.iter_mut().zip(ended) {
        if end.is_none() {
            run.train_end(&outcome)?;
            *end = Some(outcome.clone());
        }
    }
    Ok(())
}

/// Every replica's logs of the epoch: the running training means and one
/// validation pass, read from the device at once.
fn epoch_logs<M: Model>(
    net: &M,
    data: &Split,
    acc: &Accumulator,
    epoch: i64,
    start: Instant,
) -> Result<Vec<EpochLogs>> {
    let val = tch::no_grad(|| {
        let logits = net.logits(&data.val_x);
        net.metrics(&logits, &data.val_y)
    });
    let all = Tensor::cat(&[acc.means(net), val], 1);
    let m = Vec::<f64>::try_from(
        all.to_kind(Kind::Double)
            .to_device(Device::Cpu)
            .flatten(0, -1),
    )?;
    let seconds = start.elapsed().as_secs_f64();
    Ok(m.chunks(LOGS.len())
        .map(|m| EpochLogs::new(epoch, m, seconds))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Experiment;
    use crate::model::Network;

    #[test]
    fn running_means_weigh_the_short_last_batch_by_its_size() {
        let e = Experiment::preset("baseline").unwrap();
        let vs = tch::nn::VarStore::new(Device::Cpu);
        let net = Network::build(&vs.root(), &e, 0);
        // A step of 3 samples then a step of 1: accuracy 2/3 then 0/1.
        let acc = Accumulator {
            logits: vec![
                Tensor::from_slice(&[1.0f32, 1.0, -1.0]),
                Tensor::from_slice(&[1.0f32]),
            ],
            labels: Tensor::from_slice(&[1.0f32, 1.0, 1.0, 0.0]),
        };
        let m = Vec::<f64>::try_from(acc.means(&net).get(0).to_kind(Kind::Double)).unwrap();
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
