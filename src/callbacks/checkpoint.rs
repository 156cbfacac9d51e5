//! Keras's `BackupAndRestore`, made exact: after every epoch, `<csv stem>.ckpt`
//! (safetensors) is replaced atomically with everything the run's next epoch
//! depends on: the parameters, the optimiser's state, the shuffle stream's
//! position, and the CSV's length, so that `binclass resume` continues the
//! run as if it had never stopped. It comes after the CSV logger in the
//! callback list, so the length it records includes this epoch's row.

use std::cell::RefCell;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use anyhow::{Context, Result, anyhow, bail};
use rand_chacha::ChaCha8Rng;
use safetensors::tensor::{Dtype, SafeTensors, TensorView};
use tch::{Kind, Tensor};

use super::{Callback, Control, VERSIONS, Versions};
use crate::config::Experiment;
use crate::fit::EpochLogs;
use crate::optim::{Resumable, State};

pub const FORMAT: &str = "binclass-checkpoint";
pub const FORMAT_VERSION: &str = "1";

/// `<csv stem>.ckpt` beside the CSV (`runs/baseline-seed0.ckpt`).
pub fn checkpoint_path(csv: &Path) -> PathBuf {
    csv.with_extension("ckpt")
}

/// A run as it stood when an epoch ended.
pub struct Checkpoint {
    pub experiment: Experiment,
    pub seed: u64,
    pub device: String,
    pub versions: Versions,
    /// The last epoch completed (counting from 0).
    pub epoch: i64,
    /// The CSV's length in bytes once that epoch's row was written.
    pub csv_len: u64,
    /// The shuffle stream's position (`ChaCha8Rng::get_word_pos`).
    pub shuffle_word_pos: u128,
    /// The flat parameter variable, float32.
    pub params: Tensor,
    pub optimizer: State,
}

impl Checkpoint {
    fn metadata(&self) -> Result<HashMap<String, String>> {
        Ok([
            ("format", FORMAT.to_string()),
            ("format_version", FORMAT_VERSION.to_string()),
            ("experiment", serde_json::to_string(&self.experiment)?),
            ("seed", self.seed.to_string()),
            ("device", self.device.clone()),
            ("epoch", self.epoch.to_string()),
            ("csv_len", self.csv_len.to_string()),
            ("shuffle_word_pos", self.shuffle_word_pos.to_string()),
            ("optimizer_step", self.optimizer.step.to_string()),
            ("binclass_version", self.versions.binclass.to_string()),
            ("tch_version", self.versions.tch.to_string()),
            ("libtorch_version", self.versions.libtorch.to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect())
    }

    /// The file's bytes: `params` and `optimizer.<name>` tensors, float32.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        let mut named = vec![("params".to_string(), le_bytes(&self.params)?)];
        for (name, t) in &self.optimizer.tensors {
            named.push((format!("optimizer.{name}"), le_bytes(t)?));
        }
        let len = self.params.numel();
        let views = named
            .iter()
            .map(|(name, data)| {
                let view = TensorView::new(Dtype::F32, vec![len], data)
                    .map_err(|e| anyhow!("tensor {name}: {e:?}"))?;
                Ok((name.clone(), view))
            })
            .collect::<Result<Vec<_>>>()?;
        safetensors::serialize(views, &Some(self.metadata()?))
            .map_err(|e| anyhow!("cannot encode the checkpoint: {e:?}"))
    }

    /// The checkpoint in `path`, checked for completeness.
    pub fn read(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path)
            .with_context(|| format!("cannot read checkpoint {}", path.display()))?;
        Self::from_bytes(&bytes).with_context(|| format!("checkpoint {}", path.display()))
    }

    fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let (_, header) = SafeTensors::read_metadata(bytes)
            .map_err(|e| anyhow!("not a safetensors file ({e:?})"))?;
        let st = SafeTensors::deserialize(bytes)
            .map_err(|e| anyhow!("not a safetensors file ({e:?})"))?;
        let meta = header.metadata().clone().unwrap_or_default();
        let get = |key: &str| -> Result<&str> {
            meta.get(key)
                .map(String::as_str)
                .ok_or_else(|| anyhow!("metadata has no `{key}`: not a binclass checkpoint"))
        };
        if get("format")? != FORMAT || get("format_version")? != FORMAT_VERSION {
            bail!("not a binclass checkpoint of format version {FORMAT_VERSION}");
        }
        let number = |key: &str| -> Result<u128> {
            get(key)?
                .parse()
                .map_err(|_| anyhow!("metadata `{key}` is not a whole number"))
        };
        let experiment: Experiment = serde_json::from_str(get("experiment")?)
            .map_err(|e| anyhow!("metadata `experiment` is not an experiment: {e}"))?;
        let tensor = |name: &str| read_tensor(&st, name);
        let optimizer_names: &[&'static str] = match experiment.optimizer {
            crate::optim::Optimizer::Adam => &["exp_avg", "exp_avg_sq"],
            crate::optim::Optimizer::KerasAdam => &["m", "v"],
        };
        let tensors = optimizer_names
            .iter()
            .map(|n| Ok((*n, tensor(&format!("optimizer.{n}"))?)))
            .collect::<Result<Vec<_>>>()?;
        Ok(Checkpoint {
            seed: u64::try_from(number("seed")?)?,
            device: get("device")?.to_string(),
            versions: Versions {
                binclass: get("binclass_version")?.to_string().into(),
                tch: get("tch_version")?.to_string().into(),
                libtorch: get("libtorch_version")?.to_string().into(),
            },
            epoch: i64::try_from(number("epoch")?)?,
            csv_len: u64::try_from(number("csv_len")?)?,
            shuffle_word_pos: number("shuffle_word_pos")?,
            params: tensor("params")?,
            optimizer: State {
                step: i64::try_from(number("optimizer_step")?)?,
                tensors,
            },
            experiment,
        })
    }
}

/// A float32 tensor's values, little-endian.
pub(crate) fn le_bytes(t: &Tensor) -> Result<Vec<u8>> {
    if t.kind() != Kind::Float {
        bail!("checkpoints hold float32 tensors, not {:?}", t.kind());
    }
    Ok(crate::model_file::values(t)?
        .iter()
        .flat_map(|x| x.to_le_bytes())
        .collect())
}

/// A stored one-dimensional float32 tensor, on the CPU.
pub(crate) fn read_tensor(st: &SafeTensors, name: &str) -> Result<Tensor> {
    let view = st
        .tensor(name)
        .map_err(|_| anyhow!("tensor `{name}` is missing"))?;
    if view.dtype() != Dtype::F32 || view.shape().len() != 1 {
        bail!("tensor `{name}` is not a flat F32 tensor");
    }
    let values: Vec<f32> = view
        .data()
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    Ok(Tensor::from_slice(&values))
}

/// Writes the checkpoint after every epoch, reading the state it needs from
/// what it shares with the run: the parameter variable (a shallow copy), the
/// optimiser and the shuffle stream (both also held by `fit`, which does not
/// touch them while callbacks run).
pub struct CheckpointWriter {
    pub path: PathBuf,
    csv: PathBuf,
    experiment: Experiment,
    seed: u64,
    device: String,
    params: Tensor,
    optimizer: Rc<RefCell<Resumable>>,
    shuffle: Rc<RefCell<ChaCha8Rng>>,
}

/// What a checkpoint of a run shares with its training.
pub struct Shared {
    pub params: Tensor,
    pub optimizer: Rc<RefCell<Resumable>>,
    pub shuffle: Rc<RefCell<ChaCha8Rng>>,
}

impl CheckpointWriter {
    pub fn new(csv: PathBuf, experiment: Experiment, seed: u64, shared: Shared) -> Self {
        CheckpointWriter {
            path: checkpoint_path(&csv),
            device: crate::device::name(shared.params.device()),
            csv,
            experiment,
            seed,
            params: shared.params,
            optimizer: shared.optimizer,
            shuffle: shared.shuffle,
        }
    }
}

impl Callback for CheckpointWriter {
    fn on_epoch_end(&mut self, logs: &EpochLogs) -> Result<Control> {
        let csv_len = std::fs::metadata(&self.csv)
            .with_context(|| format!("cannot read {}", self.csv.display()))?
            .len();
        let checkpoint = Checkpoint {
            experiment: self.experiment.clone(),
            seed: self.seed,
            device: self.device.clone(),
            versions: VERSIONS,
            epoch: logs.epoch,
            csv_len,
            shuffle_word_pos: self.shuffle.borrow().get_word_pos(),
            params: self.params.shallow_clone(),
            optimizer: self.optimizer.borrow().state(),
        };
        crate::outputs::write_atomic(&self.path, &checkpoint.to_bytes()?)?;
        Ok(Control::Continue)
    }
}
