//! `<out>.json`: what produced a CSV (settings, seed, device, versions), how
//! long each epoch took, and how it ended ([`Ending`], data that `resume`,
//! `sweep --resume` and `merge` decide on; `stopped` says it in a sentence
//! for people, and nothing reads it back). Rewritten after every epoch
//! (atomically), so a killed run's record is still valid.

use std::borrow::Cow;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use serde::{Deserialize, Serialize};

use super::{Callback, Control};
use crate::config::Experiment;
use crate::fit::{EpochLogs, Outcome, Plan};

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Versions {
    pub binclass: Cow<'static, str>,
    pub tch: Cow<'static, str>,
    pub libtorch: Cow<'static, str>,
}

pub const VERSIONS: Versions = Versions {
    binclass: Cow::Borrowed(env!("CARGO_PKG_VERSION")),
    tch: Cow::Borrowed(env!("BINCLASS_TCH_VERSION")),
    libtorch: Cow::Borrowed(env!("BINCLASS_LIBTORCH_VERSION")),
};

/// 2: `version` and `ended`. A record without `version` is of version 1,
/// whose ending [`RunRecord::read`] infers from its sentence, once.
pub const RECORD_VERSION: u32 = 2;

/// How a run ended.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Ending {
    Finished,
    /// A signal stopped it during this epoch.
    Interrupted {
        epoch: i64,
    },
    /// Its training loss became NaN or infinite in this epoch.
    Diverged {
        epoch: i64,
    },
    /// A callback stopped it after this epoch.
    Stopped {
        epoch: i64,
    },
    /// An error (a full disk, say) ended it during this epoch.
    Failed {
        epoch: i64,
    },
}

impl Ending {
    /// Whether `resume` may continue it: an interrupted or failed run
    /// would not end the same way again; a diverged or stopped one would.
    pub fn resumable(self) -> bool {
        matches!(self, Ending::Interrupted { .. } | Ending::Failed { .. })
    }

    fn of(outcome: &Outcome) -> Self {
        match *outcome {
            Outcome::Finished => Ending::Finished,
            Outcome::Diverged { epoch } => Ending::Diverged { epoch },
            Outcome::Interrupted { epoch } => Ending::Interrupted { epoch },
            Outcome::Stopped { epoch, .. } => Ending::Stopped { epoch },
        }
    }

    /// The ending a record of version 1 states in its sentence (`stopped`),
    /// as binclass up to then worded it.
    fn of_v1(finished: bool, stopped: Option<&str>, epochs: usize) -> Option<Self> {
        let epoch = epochs as i64;
        match stopped {
            _ if finished => Some(Ending::Finished),
            None => None,
            Some(w) if w.starts_with("loss became") => Some(Ending::Diverged { epoch: epoch - 1 }),
            Some(w) if w.starts_with("interrupted") => Some(Ending::Interrupted { epoch }),
            Some(w) if w.starts_with("failed") => Some(Ending::Failed { epoch }),
            Some(_) => Some(Ending::Stopped { epoch: epoch - 1 }),
        }
    }
}

/// What an older record lacks reads as its default; the experiment and
/// the seed are what make a file a run record.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct RunRecord {
    #[serde(default = "version_1")]
    pub version: u32,
    pub experiment: Experiment,
    pub seed: u64,
    #[serde(default)]
    pub device: String,
    #[serde(default)]
    pub threads: i32,
    #[serde(default)]
    pub versions: Versions,
    #[serde(default)]
    pub csv: PathBuf,
    /// Whether it ended as [`Ending::Finished`], for people and other tools.
    #[serde(default)]
    pub finished: bool,
    /// How it ended; `None` while it runs (or once killed).
    #[serde(default)]
    pub ended: Option<Ending>,
    /// Why it stopped before its last epoch, if it did, in words.
    #[serde(default)]
    pub stopped: Option<String>,
    #[serde(default)]
    pub epochs_completed: usize,
    #[serde(default)]
    pub epoch_seconds: Vec<f64>,
    #[serde(default)]
    pub total_seconds: f64,
    #[serde(default)]
    pub final_metrics: Option<EpochLogs>,
    /// Where its TensorBoard events go (`--tensorboard DIR`'s run folder),
    /// so that a resume without `--tensorboard` can say they stop.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tensorboard: Option<PathBuf>,
    /// The epoch each `binclass resume` of this run started from; absent
    /// (and so the record unchanged) for a run never resumed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resumed: Vec<i64>,
}

fn version_1() -> u32 {
    1
}

impl RunRecord {
    /// The record of a run about to start.
    pub fn start(
        experiment: Experiment,
        seed: u64,
        device: tch::Device,
        threads: i32,
        csv: PathBuf,
    ) -> Self {
        RunRecord {
            version: RECORD_VERSION,
            experiment,
            seed,
            device: crate::device::name(device),
            threads,
            versions: VERSIONS,
            csv,
            ..Default::default()
        }
    }

    /// The record `path` holds, of this version or an older one.
    pub fn read(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let mut r: RunRecord = serde_json::from_str(&text)
            .with_context(|| format!("{}: not a run record", path.display()))?;
        ensure!(
            r.version <= RECORD_VERSION,
            "{}: a run record of version {}, which this binclass (version {RECORD_VERSION}) cannot read; use a newer binclass",
            path.display(),
            r.version
        );
        if r.version == 1 {
            r.ended = Ending::of_v1(r.finished, r.stopped.as_deref(), r.epochs_completed);
        }
        Ok(r)
    }

    /// The record as it is written: pretty JSON, one line a field.
    pub fn to_text(&self) -> Result<String> {
        Ok(serde_json::to_string_pretty(self)? + "\n")
    }

    /// Whether the run ended having trained every epoch.
    pub fn completed(&self) -> bool {
        self.ended == Some(Ending::Finished)
    }
}

/// Keeps the record up to date as the run goes.
pub struct RecordWriter {
    pub record: RunRecord,
    path: PathBuf,
    start: Instant,
    /// Seconds spent before this process took the run over (a resumed run).
    earlier: f64,
    /// `None`: rewritten after every epoch (a single run). `Some(d)`: at
    /// most every `d` (a sweep, where a rewrite of thousands of records
    /// every epoch would cost more than training). Always at start and end.
    interval: Option<Duration>,
    last_save: Instant,
}

impl RecordWriter {
    pub fn new(record: RunRecord, path: PathBuf, interval: Option<Duration>) -> Self {
        RecordWriter {
            record,
            path,
            start: Instant::now(),
            earlier: 0.0,
            interval,
            last_save: Instant::now(),
        }
    }

    /// Continues the record of a run resumed at `epoch`: it counts the
    /// epochs before it, which took `epoch_seconds` (the checkpoint's: the
    /// record may have been saved before or after it).
    pub fn resuming(
        mut record: RunRecord,
        path: PathBuf,
        epoch_seconds: &[f64],
        interval: Option<Duration>,
    ) -> Self {
        let epoch = epoch_seconds.len();
        record.epochs_completed = epoch;
        record.epoch_seconds = epoch_seconds.to_vec();
        record.version = RECORD_VERSION;
        record.finished = false;
        record.ended = None;
        record.stopped = None;
        record.resumed.push(epoch as i64);
        let earlier = record.total_seconds;
        RecordWriter {
            earlier,
            ..RecordWriter::new(record, path, interval)
        }
    }

    fn save(&mut self) -> Result<()> {
        self.record.total_seconds = self.earlier + self.start.elapsed().as_secs_f64();
        crate::outputs::write_atomic(&self.path, self.record.to_text()?.as_bytes())?;
        self.last_save = Instant::now();
        Ok(())
    }

    /// Notes the error that ended the run, if the record can be written.
    pub fn failed(&mut self, e: &anyhow::Error) {
        let epoch = self.record.epochs_completed as i64;
        self.record.ended = Some(Ending::Failed { epoch });
        self.record.stopped = Some(format!("failed in epoch {epoch}: {e:#}"));
        let _ = self.save();
    }
}

impl Callback for RecordWriter {
    fn on_train_begin(&mut self, _plan: &Plan) -> Result<()> {
        self.start = Instant::now();
        self.save()
    }

    fn on_epoch_end(&mut self, logs: &EpochLogs) -> Result<Control> {
        self.record.epochs_completed += 1;
        self.record.epoch_seconds.push(logs.seconds);
        self.record.final_metrics = Some(*logs);
        match self.interval {
            Some(d) if self.last_save.elapsed() < d => {}
            _ => self.save()?,
        }
        Ok(Control::Continue)
    }

    fn on_train_end(&mut self, outcome: &Outcome) -> Result<()> {
        let why = match outcome {
            Outcome::Finished => None,
            Outcome::Diverged { epoch } => {
                Some(format!("loss became NaN or infinite in epoch {epoch}"))
            }
            Outcome::Interrupted { epoch } => Some(format!("interrupted during epoch {epoch}")),
            Outcome::Stopped { epoch, why } => Some(format!("stopped after epoch {epoch}: {why}")),
        };
        // A finished run keeps what `stopped` said, as it always did.
        self.record.finished |= why.is_none();
        self.record.ended = Some(Ending::of(outcome));
        self.record.stopped = why.or(self.record.stopped.take());
        self.save()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_reads_back_typed_and_an_older_one_takes_the_defaults() {
        let e = Experiment::preset("noise").unwrap();
        let r = RunRecord::start(e.clone(), 7, tch::Device::Cpu, 1, "n.csv".into());
        let back: RunRecord = serde_json::from_str(&serde_json::to_string(&r).unwrap()).unwrap();
        assert_eq!(
            (back.experiment, back.seed, back.versions),
            (e, 7, VERSIONS)
        );
        // Written before --optimizer and --normalize existed.
        let old = r#"{"experiment": {"name": "scaled", "samples": 10000, "features": 2,
            "noise_rate": 0.0, "scale": 1000.0, "shift": 0.0, "split": 0.8,
            "hidden_layers": 3, "units": 3, "activation": "tanh", "init": "keras",
            "lr": 0.03, "batch_size": 30, "epochs": 100}, "seed": 2}"#;
        let r: RunRecord = serde_json::from_str(old).unwrap();
        assert_eq!(r.experiment, Experiment::preset("scaled").unwrap());
        assert!(serde_json::from_str::<RunRecord>(r#"{"seed": 1}"#).is_err());
    }

    fn read_back(r: &RunRecord) -> RunRecord {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.csv.json");
        std::fs::write(&path, r.to_text().unwrap()).unwrap();
        RunRecord::read(&path).unwrap()
    }

    /// Version 1 said how a run ended only in words; they are read once, as
    /// binclass then worded them. From version 2 the ending is data and the
    /// words are for people: editing them changes nothing.
    #[test]
    fn a_records_ending_is_data_and_its_sentence_only_words() {
        let e = Experiment::preset("baseline").unwrap();
        let start = RunRecord::start(e, 1, tch::Device::Cpu, 1, "b.csv".into());
        let v1 = |finished: bool, stopped: Option<&str>| RunRecord {
            version: 1,
            finished,
            stopped: stopped.map(String::from),
            epochs_completed: 4,
            ..start.clone()
        };
        let ended = |r: &RunRecord| read_back(r).ended;
        assert_eq!(ended(&v1(true, None)), Some(Ending::Finished));
        assert_eq!(ended(&v1(false, None)), None);
        let diverged = Some("loss became NaN or infinite in epoch 3");
        assert_eq!(
            ended(&v1(false, diverged)),
            Some(Ending::Diverged { epoch: 3 })
        );
        let interrupted = ended(&v1(false, Some("interrupted during epoch 4"))).unwrap();
        assert!(interrupted.resumable());
        let failed = ended(&v1(false, Some("failed in epoch 4: disk full"))).unwrap();
        assert!(failed.resumable());
        let stopped = ended(&v1(false, Some("stopped after epoch 3: enough"))).unwrap();
        assert!(!stopped.resumable());

        let v2 = RunRecord {
            ended: Some(Ending::Interrupted { epoch: 4 }),
            stopped: diverged.map(String::from),
            ..start.clone()
        };
        assert_eq!(ended(&v2), Some(Ending::Interrupted { epoch: 4 }));
        let later = RunRecord {
            version: RECORD_VERSION + 1,
            ..start
        };
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.csv.json");
        std::fs::write(&path, later.to_text().unwrap()).unwrap();
        let err = RunRecord::read(&path).unwrap_err().to_string();
        assert!(err.contains("cannot read; use a newer binclass"), "{err}");
    }
}
