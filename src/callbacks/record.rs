//! `<out>.json`: what produced a CSV (settings, seed, device, versions), how
//! long each epoch took, where it ended, and whether it finished. Rewritten
//! after every epoch (atomically), so a killed run's record is still valid.

use std::borrow::Cow;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
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

/// What an older record lacks reads as its default; the experiment and
/// the seed are what make a file a run record.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct RunRecord {
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
    #[serde(default)]
    pub finished: bool,
    /// Why the run stopped before its last epoch, if it did.
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
    /// The epoch each `binclass resume` of this run started from; absent
    /// (and so the record unchanged) for a run never resumed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resumed: Vec<i64>,
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
            experiment,
            seed,
            device: crate::device::name(device),
            threads,
            versions: VERSIONS,
            csv,
            ..Default::default()
        }
    }

    /// The record `path` holds.
    pub fn read(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        serde_json::from_str(&text).with_context(|| format!("{}: not a run record", path.display()))
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
        record.finished = false;
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
        let text = serde_json::to_string_pretty(&self.record)? + "\n";
        crate::outputs::write_atomic(&self.path, text.as_bytes())?;
        self.last_save = Instant::now();
        Ok(())
    }

    /// Notes the error that ended the run, if the record can be written.
    pub fn failed(&mut self, e: &anyhow::Error) {
        self.record.stopped = Some(format!(
            "failed in epoch {}: {e:#}",
            self.record.epochs_completed
        ));
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
}
