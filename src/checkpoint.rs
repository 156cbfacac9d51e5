//! Keras's `BackupAndRestore`, made exact, for one run or a batch of
//! them alike (a `train` run is a batch of one lane): after every epoch the
//! checkpoint is replaced atomically with everything the next epoch depends
//! on (the parameters, the optimiser's state, the epoch) and, per run, what
//! its files and observers had reached (the CSV's length and a CRC-32 of
//! those bytes, the shuffle stream's position, the best and last accuracy,
//! whether it diverged), so that a resumed run ends byte-identical to one
//! never stopped. A digest over the whole file catches a checkpoint changed
//! or damaged since it was written; the CSV's CRC catches an edited row.
//! `fit` hands the state to [`Keeper::write`] when an epoch ends.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use safetensors::tensor::{Dtype, SafeTensors, TensorView};
use serde::{Deserialize, Serialize};
use tch::{Kind, Tensor};

use crate::callbacks::{BestAndLast, VERSIONS, Versions};
use crate::config::Experiment;
use crate::fit::{EpochEnd, Order, Outcome};
use crate::model_file::{from_metadata, json_text, to_metadata};
use crate::optim::{Resumable, State, state_names};

pub const FORMAT: &str = "binclass-checkpoint";
pub const FORMAT_VERSION: &str = "2";

/// One run of the batch when the epoch ended. Floats are kept as their
/// bits: a summary's accuracies must come back exactly, NaN included.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RunState {
    pub seed: u64,
    /// Its CSV's length in bytes after this epoch (or its last row), and
    /// the CRC-32 of those bytes.
    pub csv_len: u64,
    pub csv_crc32: u32,
    /// Its shuffle stream's position, as text (JSON has no u128).
    pub word_pos: String,
    /// The epoch its loss became NaN or infinite, if it did.
    pub diverged: Option<i64>,
    pub last_bits: u64,
    pub best: Option<(u64, i64)>,
}

/// A batch of runs (one, for `train`) as it stood when an epoch ended.
pub struct Checkpoint {
    pub experiment: Experiment,
    pub device: String,
    pub versions: Versions,
    pub lanes: usize,
    /// The last epoch completed (counting from 0).
    pub epoch: i64,
    /// Each epoch's seconds so far (the batch's runs share them).
    pub epoch_seconds: Vec<f64>,
    pub runs: Vec<RunState>,
    /// The flat parameter variable of every lane, float32.
    pub params: Tensor,
    pub optimizer: State,
}

/// A CRC-32 of every metadata entry but the digest and of every tensor,
/// in name order: what a checkpoint claims, sealed.
pub fn digest(meta: &BTreeMap<String, String>, tensors: &[(String, Vec<u8>)]) -> String {
    let mut h = crc32fast::Hasher::new();
    for (k, v) in meta.iter().filter(|(k, _)| *k != "digest") {
        h.update(format!("{k}={v}\n").as_bytes());
    }
    for (name, bytes) in tensors {
        h.update(name.as_bytes());
        h.update(bytes);
    }
    format!("{:08x}", h.finalize())
}

/// The checkpoint's metadata: every key of the file but the digest, each
/// a field (structured ones as JSON text).
#[derive(Serialize, Deserialize)]
struct Meta {
    format: String,
    format_version: String,
    #[serde(with = "json_text")]
    experiment: Experiment,
    device: String,
    #[serde(with = "json_text")]
    optimizer_step: i64,
    binclass_version: String,
    tch_version: String,
    libtorch_version: String,
    #[serde(with = "json_text")]
    lanes: usize,
    #[serde(with = "json_text")]
    epoch: i64,
    #[serde(with = "json_text")]
    epoch_seconds: Vec<f64>,
    #[serde(with = "json_text")]
    runs: Vec<RunState>,
}

impl Checkpoint {
    /// The file's bytes: `params` and `optimizer.<name>` tensors, float32.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        let mut tensors = vec![("params".to_string(), le_bytes(&self.params)?)];
        for (name, t) in &self.optimizer.tensors {
            tensors.push((format!("optimizer.{name}"), le_bytes(t)?));
        }
        tensors.sort_by(|a, b| a.0.cmp(&b.0));
        let meta = Meta {
            format: FORMAT.into(),
            format_version: FORMAT_VERSION.into(),
            experiment: self.experiment.clone(),
            device: self.device.clone(),
            optimizer_step: self.optimizer.step,
            binclass_version: self.versions.binclass.to_string(),
            tch_version: self.versions.tch.to_string(),
            libtorch_version: self.versions.libtorch.to_string(),
            lanes: self.lanes,
            epoch: self.epoch,
            epoch_seconds: self.epoch_seconds.clone(),
            runs: self.runs.clone(),
        };
        let mut meta: BTreeMap<String, String> = to_metadata(&meta)?.into_iter().collect();
        meta.insert("digest".into(), digest(&meta, &tensors));
        let len = self.params.numel();
        let views = tensors
            .iter()
            .map(|(name, data)| {
                TensorView::new(Dtype::F32, vec![len], data)
                    .map(|v| (name.clone(), v))
                    .map_err(|e| anyhow!("tensor {name}: {e:?}"))
            })
            .collect::<Result<Vec<_>>>()?;
        crate::model_file::serialize(views, meta.into_iter().collect())
            .context("cannot encode the checkpoint")
    }

    /// The checkpoint in `path`, checked whole against its digest.
    pub fn read(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path)
            .with_context(|| format!("cannot read checkpoint {}", path.display()))?;
        Self::from_bytes(&bytes).with_context(|| format!("checkpoint {}", path.display()))
    }

    fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let bad = |e| anyhow!("not a safetensors file ({e:?})");
        let (_, header) = SafeTensors::read_metadata(bytes).map_err(bad)?;
        let st = SafeTensors::deserialize(bytes).map_err(bad)?;
        let mut map = header.metadata().clone().unwrap_or_default();
        let format = (map.get("format"), map.get("format_version"));
        if format != (Some(&FORMAT.into()), Some(&FORMAT_VERSION.into())) {
            bail!("not a binclass checkpoint of format version {FORMAT_VERSION}");
        }
        let mut names: Vec<String> = st.names().into_iter().map(String::from).collect();
        names.sort();
        let tensors = names
            .iter()
            .map(|n| Ok((n.clone(), st.tensor(n).map_err(bad)?.data().to_vec())))
            .collect::<Result<Vec<_>>>()?;
        let sealed = map.remove("digest");
        if sealed != Some(digest(&map.clone().into_iter().collect(), &tensors)) {
            bail!(
                "its contents do not match its digest: it was changed or damaged since it was written"
            );
        }
        let meta: Meta = from_metadata(&map)?;
        let state = state_names(meta.experiment.optimizer)
            .iter()
            .map(|n| Ok((*n, read_tensor(&st, &format!("optimizer.{n}"))?)))
            .collect::<Result<Vec<_>>>()?;
        Ok(Checkpoint {
            device: meta.device,
            versions: Versions {
                binclass: meta.binclass_version.into(),
                tch: meta.tch_version.into(),
                libtorch: meta.libtorch_version.into(),
            },
            lanes: meta.lanes,
            epoch: meta.epoch,
            epoch_seconds: meta.epoch_seconds,
            runs: meta.runs,
            params: read_tensor(&st, "params")?,
            optimizer: State {
                step: meta.optimizer_step,
                tensors: state,
            },
            experiment: meta.experiment,
        })
    }

    /// The runs' seeds, in lane order.
    pub fn seeds(&self) -> Vec<u64> {
        self.runs.iter().map(|r| r.seed).collect()
    }

    /// This checkpoint continues a run (or batch) of `exp` on `device`,
    /// as `against` (a record, or the command) has them, exactly; or an
    /// error names what differs.
    pub fn check(&self, path: &Path, exp: &Experiment, device: &str, against: &str) -> Result<()> {
        let at = path.display();
        if let Some(key) = differing_setting(&self.experiment, exp)? {
            bail!("{at} and {against} differ in the experiment's `{key}`");
        }
        if self.device != device {
            bail!(
                "{at} was written on {}, but {against} says {device}",
                self.device
            );
        }
        if self.versions.libtorch != VERSIONS.libtorch {
            bail!(
                "{at} was written with libtorch {}, this binclass uses {}: the continuation would not be exact",
                self.versions.libtorch,
                VERSIONS.libtorch
            );
        }
        if self.runs.is_empty() || self.runs.len() > self.lanes {
            bail!(
                "{at} holds {} runs in {} lanes",
                self.runs.len(),
                self.lanes
            );
        }
        let params = self.experiment.parameters() * self.lanes as i64;
        if self.params.size() != [params] {
            bail!(
                "{at} holds {} parameters, its runs have {params}",
                self.params.numel()
            );
        }
        Ok(())
    }

    /// Each run's CSV (`csvs`, in lane order) still begins with the bytes
    /// this checkpoint recorded: the header and one whole row per epoch
    /// it counts, unedited. Rows written after it are allowed (they are cut).
    pub fn check_csvs(&self, path: &Path, csvs: &[PathBuf]) -> Result<()> {
        for (csv, run) in csvs.iter().zip(&self.runs) {
            let last_row = run.diverged.unwrap_or(self.epoch);
            check_prefix(csv, run, last_row, path)?;
        }
        Ok(())
    }

    /// Continues the batch: parameters and optimiser state put back, each
    /// CSV cut back to the checkpoint, and where every run's training and
    /// observers start again.
    pub fn restore(self, opt: &mut Resumable, csvs: &[PathBuf], keep: PathBuf) -> Result<Start> {
        opt.restore(&self.params, &self.optimizer)?;
        for (csv, run) in csvs.iter().zip(&self.runs) {
            crate::outputs::truncate(csv, run.csv_len)?;
        }
        let positions = self
            .runs
            .iter()
            .map(|r| r.word_pos.parse::<u128>())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| anyhow!("{}: a shuffle position is not a number", keep.display()))?;
        let keeper = Keeper {
            path: keep,
            experiment: self.experiment,
            device: self.device,
            lanes: self.lanes,
            runs: csvs.iter().cloned().zip(self.runs).collect(),
            epoch_seconds: self.epoch_seconds,
        };
        Ok(keeper.start(self.epoch + 1, &positions))
    }
}

/// A run's summary as the checkpoint left it.
fn summary_of(r: &RunState) -> BestAndLast {
    BestAndLast {
        last: f64::from_bits(r.last_bits),
        best: r.best.map(|(b, e)| (f64::from_bits(b), e)),
        result: None,
    }
}

/// Where a batch starts: its row orders, the runs already ended, and the
/// checkpoint that goes on from there (with each run's summary so far).
pub struct Start {
    pub initial_epoch: i64,
    pub order: Order,
    pub ended: Vec<Option<Outcome>>,
    pub keeper: Keeper,
}

impl Start {
    /// A batch from its first epoch, checkpointed to `path`.
    pub fn fresh(
        path: PathBuf,
        exp: &Experiment,
        device: &str,
        seeds: &[u64],
        csvs: &[PathBuf],
        lanes: usize,
    ) -> Self {
        let run = |(&seed, csv): (&u64, &PathBuf)| {
            (
                csv.clone(),
                RunState {
                    seed,
                    ..<_>::default()
                },
            )
        };
        let keeper = Keeper {
            path,
            experiment: exp.clone(),
            device: device.to_string(),
            lanes,
            runs: seeds.iter().zip(csvs).map(run).collect(),
            epoch_seconds: vec![],
        };
        keeper.start(0, &[])
    }
}

/// Writes the batch's checkpoint when an epoch ends, from what `fit`
/// hands it and what it follows itself: each run's summary (from the
/// epoch's logs) and the CRC of each CSV (from the bytes added since).
pub struct Keeper {
    pub path: PathBuf,
    experiment: Experiment,
    device: String,
    lanes: usize,
    runs: Vec<(PathBuf, RunState)>,
    epoch_seconds: Vec<f64>,
}

impl Keeper {
    /// The batch as this keeper has it, from `initial_epoch` with the
    /// shuffle streams at `positions` (none: from their start).
    fn start(self, initial_epoch: i64, positions: &[u128]) -> Start {
        let seeds: Vec<u64> = self.runs.iter().map(|(_, r)| r.seed).collect();
        Start {
            initial_epoch,
            order: Order::shuffled(&seeds, self.lanes, positions),
            ended: self
                .runs
                .iter()
                .map(|(_, r)| r.diverged.map(|epoch| Outcome::Diverged { epoch }))
                .collect(),
            keeper: self,
        }
    }

    /// Each run's summary as the checkpoint has it.
    pub fn summaries(&self) -> impl Iterator<Item = BestAndLast> + '_ {
        self.runs.iter().map(|(_, r)| summary_of(r))
    }

    pub fn write(&mut self, end: &EpochEnd) -> Result<()> {
        let opt = end
            .optimizer
            .resumable()
            .context("this optimiser's state cannot be checkpointed")?;
        self.epoch_seconds.push(end.seconds);
        let positions = end.order.word_positions();
        for (r, (csv, run)) in self.runs.iter_mut().enumerate() {
            if let Some(logs) = &end.logs[r] {
                let mut s = summary_of(run);
                crate::fit::Callback::on_epoch_end(&mut s, logs)?;
                run.last_bits = s.last.to_bits();
                run.best = s.best.map(|(b, e)| (b.to_bits(), e));
            }
            if let Some(Outcome::Diverged { epoch }) = end.ended[r] {
                run.diverged = Some(epoch);
            }
            run.word_pos = positions.get(r).copied().unwrap_or(0).to_string();
            catch_up(csv, run)?;
        }
        let c = Checkpoint {
            experiment: self.experiment.clone(),
            device: self.device.clone(),
            versions: VERSIONS,
            lanes: self.lanes,
            epoch: end.epoch,
            epoch_seconds: self.epoch_seconds.clone(),
            runs: self.runs.iter().map(|(_, r)| r.clone()).collect(),
            params: opt.params().shallow_clone(),
            optimizer: opt.state(),
        };
        crate::outputs::write_atomic(&self.path, &c.to_bytes()?)
    }

    /// Removes the checkpoint: once every model of the batch is saved.
    pub fn remove(&self) -> Result<()> {
        crate::outputs::remove_file(&self.path)
    }
}

/// Brings a run's CSV length and CRC up to the file as it is now, reading
/// only the bytes added since.
fn catch_up(csv: &Path, run: &mut RunState) -> Result<()> {
    let mut read = || -> std::io::Result<()> {
        let mut f = File::open(csv)?;
        f.seek(SeekFrom::Start(run.csv_len))?;
        let mut added = vec![];
        f.read_to_end(&mut added)?;
        let mut h = crc32fast::Hasher::new_with_initial_len(run.csv_crc32, run.csv_len);
        h.update(&added);
        run.csv_crc32 = h.finalize();
        run.csv_len += added.len() as u64;
        Ok(())
    };
    read().with_context(|| format!("cannot read {}", csv.display()))
}

/// `csv`'s first `run.csv_len` bytes are the header and `last_row + 1`
/// whole rows, with the CRC `ckpt` recorded: trimming there drops only rows
/// written after it, and no row it counts was changed.
fn check_prefix(csv: &Path, run: &RunState, last_row: i64, ckpt: &Path) -> Result<()> {
    let file = File::open(csv).with_context(|| format!("cannot read {}", csv.display()))?;
    let len = file
        .metadata()
        .with_context(|| format!("cannot read {}", csv.display()))?
        .len();
    if len < run.csv_len {
        bail!(
            "{} is {len} bytes, shorter than the {} bytes {} recorded after epoch {last_row}",
            csv.display(),
            run.csv_len,
            ckpt.display()
        );
    }
    let mut head = vec![];
    file.take(run.csv_len)
        .read_to_end(&mut head)
        .with_context(|| format!("cannot read {}", csv.display()))?;
    let lines = head.iter().filter(|b| **b == b'\n').count() as i64;
    if head.last() != Some(&b'\n') || lines != last_row + 2 {
        bail!(
            "{}: its first {} bytes, where {} says epoch {last_row}'s row ends, are not the header and {} whole rows: a corrupt checkpoint",
            csv.display(),
            run.csv_len,
            ckpt.display(),
            last_row + 1
        );
    }
    if crc32fast::hash(&head) != run.csv_crc32 {
        bail!(
            "{}: its rows up to epoch {last_row} are not those {} recorded: an earlier row was changed; resuming would mix two runs",
            csv.display(),
            ckpt.display()
        );
    }
    Ok(())
}

/// The first experiment setting in which `a` and `b` differ, by name.
pub fn differing_setting(a: &Experiment, b: &Experiment) -> Result<Option<String>> {
    let (a, b) = (serde_json::to_value(a)?, serde_json::to_value(b)?);
    let (Some(a), Some(b)) = (a.as_object(), b.as_object()) else {
        return Ok((a != b).then(|| "settings".to_string()));
    };
    Ok(a.keys()
        .chain(b.keys())
        .find(|k| a.get(*k) != b.get(*k))
        .cloned())
}

/// A float32 tensor's values, little-endian.
fn le_bytes(t: &Tensor) -> Result<Vec<u8>> {
    if t.kind() != Kind::Float {
        bail!("checkpoints hold float32 tensors, not {:?}", t.kind());
    }
    Ok(crate::model_file::values(t)?
        .iter()
        .flat_map(|x| x.to_le_bytes())
        .collect())
}

/// A stored one-dimensional float32 tensor, on the CPU.
fn read_tensor(st: &SafeTensors, name: &str) -> Result<Tensor> {
    let view = st
        .tensor(name)
        .map_err(|_| anyhow!("tensor `{name}` is missing"))?;
    if view.dtype() != Dtype::F32 || view.shape().len() != 1 {
        bail!("tensor `{name}` is not a flat F32 tensor");
    }
    // safetensors stores little-endian floats, as the machines libtorch
    // runs binclass on (x86-64, aarch64) hold them.
    let n = view.shape()[0] as i64;
    Ok(Tensor::f_from_data_size(view.data(), &[n], Kind::Float)?)
}
