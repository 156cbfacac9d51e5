//! What `predict` and `evaluate` do with a saved model: rebuild its
//! network, scale points as its training rows were scaled, and compute
//! probabilities (Keras's `predict`) or loss and accuracy (Keras's
//! `evaluate`), a chunk at a time so that memory stays bounded.

use std::io::Write;
use std::path::Path;

use anyhow::{Result, bail};
use tch::{Device, Kind, Reduction, Tensor, nn, nn::Module};

use crate::config::{Experiment, Normalize};
use crate::data::Dataset;
use crate::fit::Model;
use crate::keras_csv::python_float;
use crate::model::Network;
use crate::model_file::SavedModel;
use crate::points::{Chunk, Points};

/// Points per chunk: large enough that libtorch's per-call cost vanishes,
/// small enough that a chunk's rows take a few megabytes.
pub const CHUNK: usize = 65_536;

/// A saved model, its network rebuilt on the CPU.
pub struct Loaded {
    pub model: SavedModel,
    net: Network,
    _vs: nn::VarStore,
}

impl Loaded {
    pub fn read(path: &Path) -> Result<Self> {
        let model = SavedModel::read(path)?;
        let vs = nn::VarStore::new(Device::Cpu);
        let net = Network::with_values(&vs.root(), &model.experiment, model.layers.clone());
        Ok(Loaded {
            model,
            net,
            _vs: vs,
        })
    }

    pub fn features(&self) -> usize {
        self.model.experiment.features as usize
    }

    /// The logits of a chunk's points (already scaled), in float32 as
    /// `Dataset::split` makes its rows. A NaN is refused, naming its point:
    /// values within float32 can still overflow inside the network (an
    /// infinity less an infinity), and a NaN probability is no answer.
    fn logits(&self, chunk: &Chunk, points: &Points) -> Result<Tensor> {
        let f = self.features() as i64;
        let xs = Tensor::from_slice(&chunk.features)
            .view([-1, f])
            .to_kind(Kind::Float);
        let logits = tch::no_grad(|| self.net.forward(&xs));
        let nan = logits.isnan().view(-1);
        if bool::try_from(nan.any())? {
            let i = i64::try_from(nan.nonzero().get(0))? as usize;
            bail!(
                "{}: the model's output for this point is NaN (its values overflow float32 inside the network)",
                points.at(&chunk.records[i])
            );
        }
        Ok(logits)
    }
}

/// Writes each point of `points` with its `probability` and `class`
/// (`probability > 0.5`, Keras's rule) to `out` as CSV; returns the count.
/// The first chunk is read before anything is written, so that an input
/// with a bad row in its first [`CHUNK`] points writes nothing, not even to
/// a stream.
pub fn predict(m: &Loaded, points: &mut Points, out: &mut dyn Write) -> Result<u64> {
    let mut next = points.next_chunk(CHUNK)?;
    if points.failed() {
        points.next_chunk(CHUNK)?;
    }
    let mut w = csv::Writer::from_writer(out);
    let mut header: Vec<String> = match &points.header {
        Some(h) => h.iter().map(String::from).collect(),
        None => (0..m.features()).map(|j| format!("x{j}")).collect(),
    };
    header.extend(["probability".into(), "class".into()]);
    w.write_record(&header)?;
    let mut count = 0;
    while let Some(chunk) = next {
        let p = m.logits(&chunk, points)?.sigmoid().view(-1);
        let p = Vec::<f32>::try_from(p)?;
        for (record, p) in chunk.records.iter().zip(p) {
            let class = if p > 0.5 { "1" } else { "0" };
            w.write_record(
                record
                    .iter()
                    .chain([python_float(p as f64).as_str(), class]),
            )?;
        }
        count += chunk.records.len() as u64;
        next = points.next_chunk(CHUNK)?;
    }
    w.flush()?;
    Ok(count)
}

/// Loss and binary accuracy as Keras's `evaluate` reports them, and the
/// number of points they are over.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct Metrics {
    pub loss: f64,
    pub binary_accuracy: f64,
    pub samples: u64,
}

/// The validation rows of experiment `e` drawn with `seed`, scaled by the
/// model's stored normalisation (for the model's own experiment and seed,
/// the very rows and values its run validated on), evaluated as `fit`
/// evaluates them at the end of an epoch.
pub fn evaluate_split(m: &Loaded, e: &Experiment, seed: u64) -> Result<Metrics> {
    if e.features as usize != m.features() {
        bail!(
            "experiment {} has {} features, the model {}",
            e.name,
            e.features,
            m.features()
        );
    }
    let raw = Experiment {
        normalize: Normalize::None,
        ..e.clone()
    };
    let mut d = Dataset::generate(&raw, seed)?;
    for point in d.features.chunks_mut(d.width) {
        m.model.normalization.apply(point);
    }
    let split = d.split(e.train_len() as usize, Device::Cpu)?;
    let metrics = tch::no_grad(|| m.net.metrics(&m.net.forward(&split.val_x), &split.val_y));
    let v = Vec::<f64>::try_from(metrics.to_kind(Kind::Double).flatten(0, -1))?;
    Ok(Metrics {
        loss: v[0],
        binary_accuracy: v[1],
        samples: split.val_y.size()[0] as u64,
    })
}

/// Every labelled point of `points`, evaluated a chunk at a time: the mean
/// per-point loss and the share classified right, in float32 as Keras
/// reports them.
pub fn evaluate_points(m: &Loaded, points: &mut Points) -> Result<Metrics> {
    let (mut loss_sum, mut right, mut n) = (0f64, 0f64, 0u64);
    while let Some(chunk) = points.next_chunk(CHUNK)? {
        let labels = Tensor::from_slice(&chunk.labels)
            .to_kind(Kind::Float)
            .view([-1, 1]);
        let logits = m.logits(&chunk, points)?;
        let losses =
            logits.binary_cross_entropy_with_logits::<Tensor>(&labels, None, None, Reduction::None);
        loss_sum += f64::try_from(losses.to_kind(Kind::Double).sum(Kind::Double))?;
        let hits = logits
            .sigmoid()
            .gt(0.5)
            .to_kind(Kind::Float)
            .eq_tensor(&labels);
        right += f64::try_from(hits.to_kind(Kind::Double).sum(Kind::Double))?;
        n += chunk.labels.len() as u64;
    }
    Ok(Metrics {
        loss: (loss_sum / n as f64) as f32 as f64,
        binary_accuracy: (right / n as f64) as f32 as f64,
        samples: n,
    })
}
