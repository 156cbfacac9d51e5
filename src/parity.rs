//! `binclass parity DIR`: replays a Keras run recorded by
//! `scripts/keras_reference.py --dump DIR` (same data, starting weights and
//! batch order) through binclass's own `fit`, and reports, step by step, how
//! far binclass's losses are from Keras's.

use std::collections::HashMap;
use std::path::Path;

use anyhow::{Context, Result, bail};
use clap::ValueEnum;
use tch::{Device, Kind, Tensor, nn};

use crate::callbacks::{Callback, History, TerminateOnNaN};
use crate::compare::read_curve;
use crate::config::Optimizer;
use crate::config::{Experiment, Overrides};
use crate::data::Split;
use crate::fit::{self, Order, Plan, Running};
use crate::keras_csv::{LOSS, Row, VAL_ACC, column, python_float};
use crate::model::Network;
use crate::optim;

/// How close two validation accuracies count as the same (the 1e-3).
const VAL_ACC_CLOSE: f64 = 1e-3;
/// The report's other columns.
const ACC: usize = column("binary_accuracy");
const VAL_LOSS: usize = column("val_loss");

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Dtype {
    F32,
    F64,
}

impl Dtype {
    pub fn kind(self) -> Kind {
        match self {
            Dtype::F32 => Kind::Float,
            Dtype::F64 => Kind::Double,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Dtype::F32 => "float32",
            Dtype::F64 => "float64",
        }
    }
}

fn npz(path: &Path) -> Result<HashMap<String, Tensor>> {
    let items =
        Tensor::read_npz(path).with_context(|| format!("cannot read {}", path.display()))?;
    Ok(items.into_iter().collect())
}

fn get<'a>(m: &'a HashMap<String, Tensor>, file: &str, name: &str) -> Result<&'a Tensor> {
    m.get(name)
        .with_context(|| format!("{file} has no array '{name}'"))
}

/// What a dump holds.
pub struct Dump {
    pub exp: Experiment,
    /// The features `[samples, features]` and labels `[samples, 1]` as
    /// generated (float64).
    pub x: Tensor,
    pub y: Tensor,
    /// The starting parameters, flat in [`Network::from_flat`]'s layout.
    pub init: Tensor,
    /// The arithmetic Keras ran in (the weights' dtype).
    pub dtype: Dtype,
    /// `[epochs, train_len]`
    pub order: Tensor,
    /// Per epoch, per step: (loss, binary_accuracy).
    pub steps: Vec<Vec<(f64, f64)>>,
    /// Keras's epoch figures, as a CSVLogger curve.
    pub epochs: Vec<Row>,
}

pub fn load(dir: &Path) -> Result<Dump> {
    if !dir.is_dir() {
        bail!(
            "{}: no such folder (write one with scripts/keras_reference.py --dump)",
            dir.display()
        );
    }
    let (x, y) = read_data(dir)?;
    let (n, f) = (x.size()[0], x.size()[1]);
    let (init, dtype, shape) = read_weights(dir, f)?;
    let order = Tensor::read_npy(dir.join("order.npy"))
        .with_context(|| format!("cannot read {}", dir.join("order.npy").display()))?;
    let epochs = order.size().first().copied().unwrap_or(0);
    let overrides = Overrides {
        samples: Some(n),
        features: Some(f),
        hidden_layers: Some(shape.0),
        units: Some(shape.1),
        epochs: Some(epochs.max(1)),
        ..Default::default()
    };
    let exp = Experiment::resolve("baseline", &overrides)?;
    let t = exp.train_len();
    let shape = order.size();
    if shape != [epochs, t] || epochs < 1 {
        bail!("order.npy has shape {shape:?}, expected [epochs, {t}]");
    }
    let order = checked_order(order, t)?;
    let steps = read_steps(dir, epochs as usize, exp.steps_per_epoch() as usize)?;
    let curve = read_curve(&dir.join("epochs.csv"))?;
    if curve.len() != epochs as usize {
        bail!("epochs.csv has {} epochs, order.npy {epochs}", curve.len());
    }
    Ok(Dump {
        exp,
        x: x.to_kind(Kind::Double),
        y: y.to_kind(Kind::Double).view([n, 1]),
        init: Tensor::cat(&init, 0),
        dtype,
        order,
        steps,
        epochs: curve,
    })
}

/// order.npy's rows, each a permutation of the training rows `0..t`, as
/// int64 (Keras's shuffled indices); anything else would index past the data.
fn checked_order(order: Tensor, t: i64) -> Result<Tensor> {
    let kind = order.kind();
    if !matches!(kind, Kind::Int64 | Kind::Int) {
        bail!("order.npy holds {kind:?}, expected whole numbers (int64)");
    }
    let order = order.to_kind(Kind::Int64);
    let rows = Tensor::arange(t, (Kind::Int64, Device::Cpu)).expand_as(&order);
    if !order.sort(1, false).0.equal(&rows) {
        bail!("order.npy: each epoch's row must be a permutation of the training rows 0..{t}");
    }
    Ok(order)
}

/// data.npz: the features `x [samples, features]` and labels `y [samples]`.
fn read_data(dir: &Path) -> Result<(Tensor, Tensor)> {
    let data = npz(&dir.join("data.npz"))?;
    let (x, y) = (get(&data, "data.npz", "x")?, get(&data, "data.npz", "y")?);
    let n = match x.size().as_slice() {
        [n, f] if *f >= 2 => *n,
        s => bail!("data.npz: x has shape {s:?}, expected [samples, features >= 2]"),
    };
    if y.size() != [n] {
        bail!("data.npz: y has shape {:?}, expected [{n}]", y.size());
    }
    Ok((x.shallow_clone(), y.shallow_clone()))
}

/// weights.npz: Keras's starting kernels and biases, chained from `f`
/// inputs to one output; our flat layout, their dtype, and the network's
/// (hidden layers, units).
fn read_weights(dir: &Path, f: i64) -> Result<(Vec<Tensor>, Dtype, (i64, i64))> {
    let weights = npz(&dir.join("weights.npz"))?;
    let layers = (0..)
        .take_while(|i| weights.contains_key(&format!("kernel_{i}")))
        .count();
    if layers == 0 {
        bail!("weights.npz has no kernel_0");
    }
    let k = get(&weights, "weights.npz", "kernel_0")?.kind();
    let Some(dtype) = [Dtype::F32, Dtype::F64].into_iter().find(|d| d.kind() == k) else {
        bail!("weights.npz: kernel_0 is {k:?}, expected float32 or float64")
    };
    let (mut init, mut fan_in, mut units) = (vec![], f, 1);
    for i in 0..layers {
        let k = get(&weights, "weights.npz", &format!("kernel_{i}"))?;
        let b = get(&weights, "weights.npz", &format!("bias_{i}"))?;
        let [kin, kout] = k.size()[..] else {
            bail!("weights.npz: kernel_{i} is not 2-D")
        };
        if kin != fan_in || b.size() != [kout] || (i + 1 == layers && kout != 1) {
            bail!(
                "weights.npz: kernel_{i} {:?} / bias_{i} {:?} do not chain from {fan_in} inputs",
                k.size(),
                b.size()
            );
        }
        // Keras's kernel is [in, out]; ours is [out, in].
        init.push(k.tr().flatten(0, -1).to_kind(dtype.kind()));
        init.push(b.to_kind(dtype.kind()));
        if i == 0 && layers > 1 {
            units = kout;
        }
        fan_in = kout;
    }
    Ok((init, dtype, (layers as i64 - 1, units)))
}

/// steps.csv: per epoch, each step's (loss, binary_accuracy).
fn read_steps(dir: &Path, epochs: usize, per_epoch: usize) -> Result<Vec<Vec<(f64, f64)>>> {
    let mut steps = vec![vec![]; epochs];
    let mut r = csv::Reader::from_path(dir.join("steps.csv"))
        .with_context(|| format!("cannot read {}", dir.join("steps.csv").display()))?;
    for rec in r.records() {
        let rec = rec.context("steps.csv: malformed row")?;
        let v = |i: usize| -> Result<f64> {
            rec.get(i)
                .unwrap_or("")
                .parse()
                .with_context(|| format!("steps.csv: bad number in {rec:?}"))
        };
        let e = v(0)? as usize;
        if e >= steps.len() {
            bail!("steps.csv: epoch {e} beyond order.npy's {epochs}");
        }
        steps[e].push((v(2)?, v(3)?));
    }
    if steps.iter().any(|s| s.len() != per_epoch) {
        bail!("steps.csv: expected {per_epoch} steps in each of {epochs} epochs");
    }
    Ok(steps)
}

/// One step: (epoch, step, keras loss, our loss, keras acc, our acc).
pub type StepRow = (i64, i64, f64, f64, f64, f64);

/// Per step a [`StepRow`]; per epoch: our figures.
pub type Replay = (Vec<StepRow>, Vec<Row>);

/// Each step's (loss, binary_accuracy), as `fit` runs it.
#[derive(Default)]
struct Steps(Vec<(f64, f64)>);

impl Callback for Steps {
    fn on_batch_end(&mut self, running: &Running) {
        self.0.push(running.read_step());
    }
}

/// Replays the dump in `dtype` through [`fit::fit_in_order`], the loop
/// `binclass train` runs, with Keras's batch orders. Float32 inputs are the
/// float64 data rounded, as Keras rounds numpy's float64 arrays to its floatx.
pub fn replay(d: &Dump, optimizer: Optimizer, eps: f64, dtype: Dtype) -> Result<Replay> {
    let kind = dtype.kind();
    let vs = nn::VarStore::new(Device::Cpu);
    let mut net = Network::from_flat(&vs.root(), &d.exp, d.init.to_kind(kind));
    let mut opt = optim::build(optimizer, &vs, d.exp.lr, eps)?;
    let (x, y, t) = (d.x.to_kind(kind), d.y.to_kind(kind), d.exp.train_len());
    let n = x.size()[0];
    let split = Split {
        train_x: x.narrow(0, 0, t),
        train_y: y.narrow(0, 0, t),
        val_x: x.narrow(0, t, n - t),
        val_y: y.narrow(0, t, n - t),
    };
    let plan = Plan::new(d.epochs.len() as i64, d.exp.batch_size, d.exp.train_len());
    let (mut steps, mut history) = (Steps::default(), History::default());
    fit::fit_in_order(
        &mut net,
        opt.as_mut(),
        &split,
        plan,
        Order::Given(d.order.shallow_clone()),
        &mut [&mut steps, &mut history, &mut TerminateOnNaN],
    )?;
    let per_epoch = plan.steps() as usize;
    let rows = steps
        .0
        .iter()
        .enumerate()
        .map(|(i, (l, a))| {
            let (e, s) = (i / per_epoch, i % per_epoch);
            let (kl, ka) = d.steps[e][s];
            (e as i64, s as i64, kl, *l, ka, *a)
        })
        .collect();
    let ours = history.0.iter().map(|l| l.metrics).collect();
    Ok((rows, ours))
}

/// Largest of `diffs`; NaN if any is NaN (never within a tolerance).
fn largest(diffs: impl Iterator<Item = f64>) -> f64 {
    diffs.fold(0.0, |m: f64, d| if d.is_nan() { d } else { m.max(d) })
}

/// What a replay shows against Keras's run, held to a tolerance.
pub struct Report {
    pub tolerance: f64,
    /// The first step whose loss is beyond the tolerance.
    pub first_apart: Option<usize>,
    /// The first epoch whose loss or val_loss is beyond the tolerance.
    pub epoch_apart: Option<usize>,
}

impl Report {
    pub fn new(rows: &[StepRow], ours: &[Row], keras: &[Row], tolerance: f64) -> Self {
        // NaN is never within tolerance.
        let apart = |o: f64, k: f64| {
            let d = (o - k).abs();
            d.is_nan() || d > tolerance
        };
        // The epoch figures come from `fit`'s own averaging; accuracies move in
        // steps of one sample, so only the losses are held to the tolerance.
        Report {
            tolerance,
            first_apart: rows.iter().position(|r| apart(r.3, r.2)),
            epoch_apart: ours
                .iter()
                .zip(keras)
                .position(|(o, k)| apart(o[LOSS], k[LOSS]) || apart(o[VAL_LOSS], k[VAL_LOSS])),
        }
    }

    /// Per epoch the largest step-loss difference and both sides' figures,
    /// then the summary lines.
    pub fn text(&self, rows: &[StepRow], ours: &[Row], keras: &[Row]) -> String {
        let mut text = String::from(
            "epoch  max|Δ step loss|  loss ours/keras        acc ours/keras         val_loss ours/keras    val_acc ours/keras\n",
        );
        for (e, (o, k)) in ours.iter().zip(keras).enumerate() {
            let worst = largest(
                rows.iter()
                    .filter(|r| r.0 == e as i64)
                    .map(|r| (r.3 - r.2).abs()),
            );
            text += &format!(
                "{e:<6} {worst:<16.3e} {:.6}/{:.6}    {:.6}/{:.6}    {:.6}/{:.6}    {:.6}/{:.6}\n",
                o[LOSS], k[LOSS], o[ACC], k[ACC], o[VAL_LOSS], k[VAL_LOSS], o[VAL_ACC], k[VAL_ACC]
            );
        }
        text + &self.summary(rows, ours, keras)
    }

    fn summary(&self, rows: &[StepRow], ours: &[Row], keras: &[Row]) -> String {
        let (tol, n, epochs) = (self.tolerance, rows.len(), ours.len());
        let mut text = match self.first_apart {
            Some(i) => {
                let (e, s, ..) = rows[i];
                format!(
                    "step loss: first beyond {tol:.0e} at epoch {e} step {s} (step {} of {n})\n",
                    i + 1
                )
            }
            None => format!("step loss: within {tol:.0e} at all {n} steps\n"),
        };
        // 2,000 validation rows in the baseline: 1e-3 is two rows classified differently.
        let close: Vec<bool> = ours
            .iter()
            .zip(keras)
            .map(|(o, k)| (o[VAL_ACC] - k[VAL_ACC]).abs() <= VAL_ACC_CLOSE)
            .collect();
        text += &format!(
            "val_binary_accuracy: within {VAL_ACC_CLOSE:.0e} at {} of {} epochs{}\n",
            close.iter().filter(|c| **c).count(),
            close.len(),
            match close.iter().position(|c| !c) {
                Some(e) => format!(", first apart at epoch {e}"),
                None => String::new(),
            }
        );
        text + &match self.epoch_apart {
            Some(e) => format!("epoch loss, val_loss: first beyond {tol:.0e} at epoch {e}\n"),
            None => format!("epoch loss, val_loss: within {tol:.0e} at all {epochs} epochs\n"),
        }
    }

    /// Fails when binclass stopped early or went beyond the tolerance.
    pub fn verdict(&self, rows: &[StepRow], ours: &[Row], keras: &[Row]) -> Result<()> {
        if ours.len() < keras.len() {
            bail!(
                "binclass stopped after epoch {}: its training loss was not finite (Keras's run has {} epochs)",
                ours.len().saturating_sub(1),
                keras.len()
            );
        }
        let tol = self.tolerance;
        if let Some(i) = self.first_apart {
            let (worst, (e, s, ..)) = (largest(rows.iter().map(|r| (r.3 - r.2).abs())), rows[i]);
            bail!(
                "per-step loss differs from Keras's by up to {worst:.3e} (tolerance {tol:.0e}), first beyond it at epoch {e} step {s}"
            );
        }
        if let Some(e) = self.epoch_apart {
            let ([_, ol, _, ov], [_, kl, _, kv]) = (ours[e], keras[e]);
            bail!(
                "epoch {e}'s figures differ from Keras's beyond {tol:.0e}: loss {ol} vs {kl}, val_loss {ov} vs {kv}"
            );
        }
        Ok(())
    }
}

/// The per-step differences as a CSV (`parity --out`).
pub fn steps_csv(rows: &[StepRow]) -> Result<Vec<u8>> {
    let mut w = csv::Writer::from_writer(vec![]);
    // The header as the file's first line reads.
    let head =
        "epoch,step,keras_loss,ours_loss,abs_diff,keras_binary_accuracy,ours_binary_accuracy";
    w.write_record(head.split(','))?;
    for (e, s, kl, l, ka, a) in rows {
        let floats = [*kl, *l, (l - kl).abs(), *ka, *a].map(python_float);
        w.write_record([e.to_string(), s.to_string()].iter().chain(&floats))?;
    }
    Ok(w.into_inner().map_err(|e| e.into_error())?)
}
