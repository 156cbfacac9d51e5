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
        metadata(
            (FORMAT, FORMAT_VERSION),
            &self.experiment,
            &self.device,
            &self.versions,
            self.optimizer.step,
            vec![
                ("seed", self.seed.to_string()),
                ("epoch", self.epoch.to_string()),
                ("csv_len", self.csv_len.to_string()),
                ("shuffle_word_pos", self.shuffle_word_pos.to_string()),
            ],
        )
    }

    /// The file's bytes: `params` and `optimizer.<name>` tensors, float32.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        encode_state(&self.params, &self.optimizer, self.metadata()?)
    }

    /// The checkpoint in `path`, checked for completeness.
    pub fn read(path: &Path) -> Result<Self> {
        read_file(path, Self::from_bytes)
    }

    fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let stored = Stored::open(bytes, FORMAT, FORMAT_VERSION, "binclass checkpoint")?;
        let experiment = stored.experiment()?;
        let (params, optimizer) = stored.state(&experiment)?;
        if params.size() != [experiment.parameters()] {
            bail!(
                "tensor `params` holds {} values, but its network has {} parameters",
                params.numel(),
                experiment.parameters()
            );
        }
        Ok(Checkpoint {
            seed: u64::try_from(stored.whole("seed")?)?,
            device: stored.get("device")?.to_string(),
            versions: stored.versions()?,
            epoch: i64::try_from(stored.whole("epoch")?)?,
            csv_len: u64::try_from(stored.whole("csv_len")?)?,
            shuffle_word_pos: u128::try_from(stored.whole("shuffle_word_pos")?)?,
            params,
            optimizer,
            experiment,
        })
    }
}

/// The flat parameters and the optimiser's state as a checkpoint stores
/// them (`params`, `optimizer.<name>`, float32), with `meta`.
pub(crate) fn encode_state(
    params: &Tensor,
    optimizer: &State,
    meta: HashMap<String, String>,
) -> Result<Vec<u8>> {
    let mut named = vec![("params".to_string(), le_bytes(params)?)];
    for (name, t) in &optimizer.tensors {
        named.push((format!("optimizer.{name}"), le_bytes(t)?));
    }
    let len = params.numel();
    let views = named
        .iter()
        .map(|(name, data)| {
            TensorView::new(Dtype::F32, vec![len], data)
                .map(|v| (name.clone(), v))
                .map_err(|e| anyhow!("tensor {name}: {e:?}"))
        })
        .collect::<Result<Vec<_>>>()?;
    crate::model_file::serialize(views, meta).context("cannot encode the checkpoint")
}

/// The checkpoint in `path`, decoded by `from_bytes`; errors name the file.
pub(crate) fn read_file<T>(path: &Path, from_bytes: fn(&[u8]) -> Result<T>) -> Result<T> {
    let bytes = std::fs::read(path)
        .with_context(|| format!("cannot read checkpoint {}", path.display()))?;
    from_bytes(&bytes).with_context(|| format!("checkpoint {}", path.display()))
}

/// The metadata every checkpoint carries; `more` adds its own.
pub(crate) fn metadata(
    (format, version): (&str, &str),
    experiment: &Experiment,
    device: &str,
    versions: &Versions,
    optimizer_step: i64,
    more: Vec<(&str, String)>,
) -> Result<HashMap<String, String>> {
    let common = [
        ("format", format.to_string()),
        ("format_version", version.to_string()),
        ("experiment", serde_json::to_string(experiment)?),
        ("device", device.to_string()),
        ("optimizer_step", optimizer_step.to_string()),
        ("binclass_version", versions.binclass.to_string()),
        ("tch_version", versions.tch.to_string()),
        ("libtorch_version", versions.libtorch.to_string()),
    ];
    Ok(common
        .into_iter()
        .chain(more)
        .map(|(k, v)| (k.to_string(), v))
        .collect())
}

/// A checkpoint's tensors and metadata, its format checked.
pub(crate) struct Stored<'a> {
    st: SafeTensors<'a>,
    meta: HashMap<String, String>,
    what: &'static str,
}

impl<'a> Stored<'a> {
    pub(crate) fn open(
        bytes: &'a [u8],
        format: &str,
        version: &str,
        what: &'static str,
    ) -> Result<Self> {
        let (_, header) = SafeTensors::read_metadata(bytes)
            .map_err(|e| anyhow!("not a safetensors file ({e:?})"))?;
        let st = SafeTensors::deserialize(bytes)
            .map_err(|e| anyhow!("not a safetensors file ({e:?})"))?;
        let stored = Stored {
            st,
            meta: header.metadata().clone().unwrap_or_default(),
            what,
        };
        if stored.get("format")? != format || stored.get("format_version")? != version {
            bail!("not a {what} of format version {version}");
        }
        Ok(stored)
    }

    pub(crate) fn get(&self, key: &str) -> Result<&str> {
        self.meta
            .get(key)
            .map(String::as_str)
            .ok_or_else(|| anyhow!("metadata has no `{key}`: not a {}", self.what))
    }

    pub(crate) fn whole(&self, key: &str) -> Result<i128> {
        self.get(key)?
            .parse()
            .map_err(|_| anyhow!("metadata `{key}` is not a whole number"))
    }

    pub(crate) fn json<T: serde::de::DeserializeOwned>(&self, key: &str) -> Result<T> {
        serde_json::from_str(self.get(key)?).map_err(|e| anyhow!("metadata `{key}`: {e}"))
    }

    pub(crate) fn experiment(&self) -> Result<Experiment> {
        self.json("experiment")
    }

    pub(crate) fn versions(&self) -> Result<Versions> {
        Ok(Versions {
            binclass: self.get("binclass_version")?.to_string().into(),
            tch: self.get("tch_version")?.to_string().into(),
            libtorch: self.get("libtorch_version")?.to_string().into(),
        })
    }

    /// The parameters and the optimiser state `experiment`'s optimiser keeps.
    pub(crate) fn state(&self, experiment: &Experiment) -> Result<(Tensor, State)> {
        let names: &[&'static str] = match experiment.optimizer {
            crate::optim::Optimizer::Adam => &["exp_avg", "exp_avg_sq"],
            crate::optim::Optimizer::KerasAdam => &["m", "v"],
        };
        let tensors = names
            .iter()
            .map(|n| Ok((*n, read_tensor(&self.st, &format!("optimizer.{n}"))?)))
            .collect::<Result<Vec<_>>>()?;
        let step = i64::try_from(self.whole("optimizer_step")?)?;
        Ok((read_tensor(&self.st, "params")?, State { step, tensors }))
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
