//! A sweep batch's checkpoint, `batch-<first>-<last>.ckpt` in the sweep's
//! folder: what `binclass sweep --resume` continues the batch from, so that
//! every seed's CSV, model and summary row come out as an unbroken sweep's.
//! It holds the whole batch (all lanes share one parameter variable and one
//! optimiser), and per seed what its callbacks and shuffle stream had
//! reached. Rewritten (atomically) after every epoch: the state is a few
//! float32 values per lane, small next to an epoch's work; removed once
//! the batch's models are saved.

use std::cell::RefCell;
use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::rc::Rc;

use anyhow::{Context, Result, anyhow, bail};
use indicatif::ProgressBar;
use serde::{Deserialize, Serialize};
use tch::Tensor;

use crate::callbacks::{
    Callback, CsvLogger, RecordWriter, RunRecord, SeedSummary, Summary, TerminateOnNaN, Tick,
    VERSIONS, Versions,
};
use crate::callbacks::{Stored, encode_state, metadata, read_file};
use crate::config::Experiment;
use crate::fit::{EpochEnd, EpochLogs, Order, Outcome};
use crate::optim::{Resumable, State};
use crate::sweep::{Batch, Finals, Job, SeedRun, Start, record_interval};
use crate::{keras_csv, outputs};

pub const FORMAT: &str = "binclass-sweep-checkpoint";
pub const FORMAT_VERSION: &str = "1";

/// `<dir>/batch-<first>-<last>.ckpt`.
pub fn batch_path(dir: &Path, seeds: &[u64]) -> PathBuf {
    dir.join(format!(
        "batch-{}-{}.ckpt",
        seeds[0],
        seeds[seeds.len() - 1]
    ))
}

/// The batch checkpoints in `dir`, by name.
pub fn find(dir: &Path) -> Result<Vec<PathBuf>> {
    let entries =
        std::fs::read_dir(dir).with_context(|| format!("cannot read {}", dir.display()))?;
    let mut found = vec![];
    for entry in entries {
        let path = entry
            .with_context(|| format!("cannot read {}", dir.display()))?
            .path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if name.starts_with("batch-") && name.ends_with(".ckpt") {
            found.push(path);
        }
    }
    found.sort();
    Ok(found)
}

/// One seed of the batch when the epoch ended. Floats are kept as their
/// bits: a summary's accuracies must come back exactly, NaN included.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SeedState {
    pub seed: u64,
    /// Its CSV's length in bytes after this epoch (or its last row).
    pub csv_len: u64,
    /// Its shuffle stream's position, as text (JSON has no u128).
    pub word_pos: String,
    /// The epoch its loss became NaN or infinite, if it did.
    pub diverged: Option<i64>,
    pub last_bits: u64,
    pub best: Option<(u64, i64)>,
}

/// A sweep batch as it stood when an epoch ended.
pub struct BatchCheckpoint {
    pub experiment: Experiment,
    pub lanes: usize,
    pub device: String,
    pub versions: Versions,
    /// The last epoch completed (counting from 0).
    pub epoch: i64,
    /// Each epoch's seconds so far (the batch's seeds share them).
    pub epoch_seconds: Vec<f64>,
    pub seeds: Vec<SeedState>,
    /// The flat parameter variable of every lane, float32.
    pub params: Tensor,
    pub optimizer: State,
}

impl BatchCheckpoint {
    fn metadata(&self) -> Result<HashMap<String, String>> {
        metadata(
            (FORMAT, FORMAT_VERSION),
            &self.experiment,
            &self.device,
            &self.versions,
            self.optimizer.step,
            vec![
                ("lanes", self.lanes.to_string()),
                ("epoch", self.epoch.to_string()),
                ("epoch_seconds", serde_json::to_string(&self.epoch_seconds)?),
                ("seeds", serde_json::to_string(&self.seeds)?),
            ],
        )
    }

    /// Writes the checkpoint in one step (a kill leaves the old one or the new).
    pub fn write(&self, path: &Path) -> Result<()> {
        let bytes = encode_state(&self.params, &self.optimizer, self.metadata()?)?;
        crate::outputs::write_atomic(path, &bytes)
    }

    /// The checkpoint in `path`, checked for completeness.
    pub fn read(path: &Path) -> Result<Self> {
        read_file(path, Self::from_bytes)
    }

    fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let stored = Stored::open(bytes, FORMAT, FORMAT_VERSION, "binclass sweep checkpoint")?;
        let experiment = stored.experiment()?;
        let (params, optimizer) = stored.state(&experiment)?;
        Ok(BatchCheckpoint {
            lanes: usize::try_from(stored.whole("lanes")?)?,
            device: stored.get("device")?.to_string(),
            versions: stored.versions()?,
            epoch: i64::try_from(stored.whole("epoch")?)?,
            epoch_seconds: stored.json("epoch_seconds")?,
            seeds: stored.json("seeds")?,
            params,
            optimizer,
            experiment,
        })
    }

    /// The batch's seeds, in lane order.
    pub fn seed_list(&self) -> Vec<u64> {
        self.seeds.iter().map(|s| s.seed).collect()
    }

    /// This checkpoint continues a sweep of `exp` on `device` exactly, or
    /// an error says what differs.
    pub fn check(&self, path: &Path, exp: &Experiment, device: &str) -> Result<()> {
        let at = path.display();
        if let Some(key) = crate::resume::differing_setting(&self.experiment, exp)? {
            bail!("{at} is of a sweep with another `{key}` than this command's");
        }
        if self.device != device {
            bail!(
                "{at} was written on {}, this sweep runs on {device}",
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
        if self.seeds.is_empty() || self.seeds.len() > self.lanes {
            bail!(
                "{at} holds {} seeds in {} lanes",
                self.seeds.len(),
                self.lanes
            );
        }
        Ok(())
    }
}

/// Writes the batch's checkpoint when an epoch ends, reading what it
/// shares with the training: the parameter variable (a shallow copy), the
/// optimiser, and each seed's summary.
pub struct Keeper {
    path: PathBuf,
    experiment: Experiment,
    device: String,
    lanes: usize,
    seeds: Vec<u64>,
    csvs: Vec<PathBuf>,
    params: Tensor,
    optimizer: Rc<RefCell<Resumable>>,
    pub epoch_seconds: Vec<f64>,
    pub summaries: Vec<Rc<RefCell<Summary>>>,
}

impl Keeper {
    pub fn new(
        job: &Job,
        batch: &Batch,
        lanes: usize,
        params: Tensor,
        optimizer: Rc<RefCell<Resumable>>,
    ) -> Self {
        Keeper {
            path: batch_path(&job.dir, &batch.seeds),
            experiment: job.exp.clone(),
            device: crate::device::name(job.device),
            lanes,
            seeds: batch.seeds.clone(),
            csvs: batch.csvs.clone(),
            params,
            optimizer,
            epoch_seconds: vec![],
            summaries: vec![],
        }
    }

    pub fn write(&mut self, end: &EpochEnd) -> Result<()> {
        self.epoch_seconds.push(end.seconds);
        let positions = end.order.word_positions();
        let seeds = (0..self.seeds.len())
            .map(|r| self.seed_state(r, &positions, end.ended))
            .collect::<Result<Vec<_>>>()?;
        BatchCheckpoint {
            experiment: self.experiment.clone(),
            lanes: self.lanes,
            device: self.device.clone(),
            versions: VERSIONS,
            epoch: end.epoch,
            epoch_seconds: self.epoch_seconds.clone(),
            seeds,
            params: self.params.shallow_clone(),
            optimizer: self.optimizer.borrow().state(),
        }
        .write(&self.path)
    }

    fn seed_state(
        &self,
        r: usize,
        positions: &[u128],
        ended: &[Option<Outcome>],
    ) -> Result<SeedState> {
        let csv = &self.csvs[r];
        let summary = self.summaries[r].borrow();
        Ok(SeedState {
            seed: self.seeds[r],
            csv_len: std::fs::metadata(csv)
                .with_context(|| format!("cannot read {}", csv.display()))?
                .len(),
            word_pos: positions.get(r).copied().unwrap_or(0).to_string(),
            diverged: match ended.get(r) {
                Some(Some(Outcome::Diverged { epoch })) => Some(*epoch),
                _ => None,
            },
            last_bits: summary.last.to_bits(),
            best: summary.best.map(|(b, e)| (b.to_bits(), e)),
        })
    }
}

/// A batch continued from its checkpoint: parameters and optimiser
/// restored, each CSV cut back to the checkpoint's epoch, each record and
/// summary continued, the shuffle streams where they were.
pub(crate) fn restore(
    job: &Job,
    batch: &Batch,
    path: &Path,
    lanes: usize,
    params: &Tensor,
    optimizer: &Rc<RefCell<Resumable>>,
    bar: &ProgressBar,
) -> Result<Start> {
    let c = BatchCheckpoint::read(path)?;
    c.check(path, &job.exp, &crate::device::name(job.device))?;
    if c.seed_list() != batch.seeds || c.lanes != lanes || c.params.size() != params.size() {
        bail!(
            "{} does not hold this batch's seeds and lanes",
            path.display()
        );
    }
    // A shallow copy of the variable shares its storage: the network sees
    // the copied values.
    let mut target = params.shallow_clone();
    tch::no_grad(|| target.f_copy_(&c.params.to_device(params.device())))?;
    optimizer.borrow_mut().restore(&c.optimizer)?;
    let interval = record_interval(batch.seeds.len());
    let runs = batch
        .csvs
        .iter()
        .zip(&c.seeds)
        .map(|(csv, st)| resumed_run(csv, st, &c, interval, bar))
        .collect::<Result<Vec<_>>>()?;
    let positions = c
        .seeds
        .iter()
        .map(|s| s.word_pos.parse::<u128>())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| anyhow!("{}: a shuffle position is not a number", path.display()))?;
    Ok(Start {
        runs,
        initial_epoch: c.epoch + 1,
        order: Order::per_replica_at(&batch.seeds, lanes, &positions),
        ended: c
            .seeds
            .iter()
            .map(|s| s.diverged.map(|epoch| Outcome::Diverged { epoch }))
            .collect(),
        epoch_seconds: c.epoch_seconds,
    })
}

/// One seed's observers continued from the checkpoint. A seed that had
/// diverged is never called again; its record stays as it is.
fn resumed_run(
    csv: &Path,
    st: &SeedState,
    c: &BatchCheckpoint,
    interval: std::time::Duration,
    bar: &ProgressBar,
) -> Result<SeedRun> {
    let json = outputs::record_path(csv);
    let mut record = RunRecord::read(&json)?;
    crate::resume::trim_csv(csv, st.csv_len)?;
    let record = if st.diverged.is_some() {
        RecordWriter::new(record, json, None)
    } else {
        // The record may have been saved before or after the checkpoint
        // (it is on a timer): the checkpoint's epochs are the truth.
        record.finished = false;
        record.epoch_seconds = c.epoch_seconds.clone();
        RecordWriter::resuming(record, json, c.epoch + 1).every(Some(interval))
    };
    Ok(SeedRun {
        csv: CsvLogger::new(csv.to_path_buf()),
        record,
        summary: Rc::new(RefCell::new(Summary {
            last: f64::from_bits(st.last_bits),
            best: st.best.map(|(b, e)| (f64::from_bits(b), e)),
            result: None,
        })),
        nan: TerminateOnNaN,
        tick: Tick(bar.clone()),
    })
}

/// A seed of the sweep as `--resume` finds it, with no checkpoint covering it.
enum Found {
    /// Finished (its model saved) or diverged: kept as it is.
    Kept(Option<SeedSummary>),
    /// Started, never checkpointed: trained again from its first epoch.
    Started,
    /// No record: never started.
    Absent,
}

impl Job {
    /// What `--resume` does, every file checked before any is changed:
    /// seeds kept (with their summaries) and batches to train, those with
    /// a checkpoint continuing from it.
    pub(crate) fn resume_plan(&self) -> Result<(Finals, Vec<Batch>)> {
        if !self.dir.is_dir() {
            bail!(
                "{}: no such folder, so no sweep to resume",
                self.dir.display()
            );
        }
        let mut batches = vec![];
        let mut covered = BTreeSet::new();
        for path in find(&self.dir)? {
            let batch = self.checkpointed_batch(&path, &covered)?;
            covered.extend(batch.seeds.iter().copied());
            batches.push(batch);
        }
        let (mut kept, mut fresh, mut found) = (vec![], vec![], !batches.is_empty());
        for seed in self.seeds.clone().filter(|s| !covered.contains(s)) {
            match self.found(seed)? {
                Found::Kept(s) => kept.push((seed, s)),
                Found::Started => fresh.push(seed),
                Found::Absent => {
                    fresh.push(seed);
                    continue;
                }
            }
            found = true;
        }
        if !found {
            bail!(
                "{} holds no run of this sweep (no {}-seed<N>.csv.json for seeds {}..={}); run it without --resume",
                self.dir.display(),
                self.exp.name,
                self.seeds.start(),
                self.seeds.end()
            );
        }
        batches.extend(self.fresh_batches(&fresh));
        Ok((kept, batches))
    }

    /// The batch the checkpoint `path` continues, checked against this
    /// command, its seeds' records and CSVs.
    fn checkpointed_batch(&self, path: &Path, covered: &BTreeSet<u64>) -> Result<Batch> {
        let c = BatchCheckpoint::read(path)?;
        c.check(path, &self.exp, &crate::device::name(self.device))?;
        let seeds = c.seed_list();
        if let Some(s) = seeds
            .iter()
            .find(|s| !self.seeds.contains(s) || covered.contains(s))
        {
            bail!(
                "{} holds seed {s}, outside --seeds {}..={} or in another checkpoint",
                path.display(),
                self.seeds.start(),
                self.seeds.end()
            );
        }
        if batch_path(&self.dir, &seeds) != path {
            bail!("{} holds other seeds than its name says", path.display());
        }
        let csvs: Vec<PathBuf> = seeds.iter().map(|&s| self.csv(s)).collect();
        for (csv, st) in csvs.iter().zip(&c.seeds) {
            let json = outputs::record_path(csv);
            self.check_record(&RunRecord::read(&json)?, &json, st.seed)?;
            let len = std::fs::metadata(csv)
                .with_context(|| format!("cannot read {}", csv.display()))?
                .len();
            if len < st.csv_len {
                bail!(
                    "{} is {len} bytes, shorter than the {} bytes {} recorded",
                    csv.display(),
                    st.csv_len,
                    path.display()
                );
            }
            let last_row = st.diverged.unwrap_or(c.epoch);
            crate::resume::check_cut(csv, st.csv_len, last_row, path)?;
        }
        Ok(Batch {
            exps: vec![self.exp.clone(); seeds.len()],
            seeds,
            csvs,
            from_checkpoint: true,
            checkpointed: true,
        })
    }

    fn found(&self, seed: u64) -> Result<Found> {
        let csv = self.csv(seed);
        let json = outputs::record_path(&csv);
        if !json.exists() {
            return Ok(Found::Absent);
        }
        let record = RunRecord::read(&json)?;
        self.check_record(&record, &json, seed)?;
        if record.finished && outputs::model_path(&csv).exists() {
            return Ok(Found::Kept(summary_of(&csv)?));
        }
        if record
            .stopped
            .as_deref()
            .is_some_and(|w| w.starts_with("loss became"))
        {
            return Ok(Found::Kept(None));
        }
        Ok(Found::Started)
    }

    /// The record is of this sweep's experiment and seed, or an error names
    /// the setting that differs, with both values.
    fn check_record(&self, record: &RunRecord, json: &Path, seed: u64) -> Result<()> {
        if record.seed != seed {
            bail!("{} is of seed {}, not {seed}", json.display(), record.seed);
        }
        if let Some(key) = crate::resume::differing_setting(&record.experiment, &self.exp)? {
            let value = |e: &Experiment| {
                serde_json::to_value(e)
                    .ok()
                    .and_then(|v| v.get(&key).map(|v| v.to_string()))
                    .unwrap_or_default()
            };
            bail!(
                "{} was written with `{key}` {}, but this command has {}: not the sweep to resume",
                json.display(),
                value(&record.experiment),
                value(&self.exp)
            );
        }
        Ok(())
    }
}

/// A finished seed's summary, from its CSV, as [`Summary`] made it.
fn summary_of(csv: &Path) -> Result<Option<SeedSummary>> {
    let mut s = Summary::default();
    for (i, row) in keras_csv::read_curve(csv)?.iter().enumerate() {
        s.on_epoch_end(&EpochLogs {
            epoch: i as i64,
            binary_accuracy: row[0],
            loss: row[1],
            val_binary_accuracy: row[keras_csv::VAL_ACC],
            val_loss: row[3],
            seconds: 0.0,
        })?;
    }
    s.on_train_end(&Outcome::Finished)?;
    Ok(s.result)
}
