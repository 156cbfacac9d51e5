//! `<out>.json`: what produced a CSV (settings, seed, device, versions), how
//! long each epoch took, where it ended, and whether it finished. Rewritten
//! after every epoch (atomically), so a killed run's record is still valid.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Result;
use serde::Serialize;

use super::{Callback, Control};
use crate::config::Experiment;
use crate::fit::{EpochLogs, Outcome, Plan};

#[derive(Serialize)]
pub struct Versions {
    pub binclass: &'static str,
    pub tch: &'static str,
    pub libtorch: &'static str,
}

pub const VERSIONS: Versions = Versions {
    binclass: env!("CARGO_PKG_VERSION"),
    tch: env!("BINCLASS_TCH_VERSION"),
    libtorch: env!("BINCLASS_LIBTORCH_VERSION"),
};

#[derive(Serialize)]
pub struct RunRecord {
    pub experiment: Experiment,
    pub seed: u64,
    pub device: String,
    pub threads: i32,
    pub versions: Versions,
    pub csv: PathBuf,
    pub finished: bool,
    /// Why the run stopped before its last epoch, if it did.
    pub stopped: Option<String>,
    pub epochs_completed: usize,
    pub epoch_seconds: Vec<f64>,
    pub total_seconds: f64,
    pub final_metrics: Option<EpochLogs>,
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
            finished: false,
            stopped: None,
            epochs_completed: 0,
            epoch_seconds: vec![],
            total_seconds: 0.0,
            final_metrics: None,
        }
    }
}

/// Keeps the record up to date as the run goes.
pub struct RecordWriter {
    pub record: RunRecord,
    path: PathBuf,
    start: Instant,
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
            interval,
            last_save: Instant::now(),
        }
    }

    fn save(&mut self) -> Result<()> {
        self.record.total_seconds = self.start.elapsed().as_secs_f64();
        let text = serde_json::to_string_pretty(&self.record)? + "\n";
        crate::outputs::write_atomic(&self.path, text.as_bytes())?;
        self.last_save = Instant::now();
        Ok(())
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
        match outcome {
            Outcome::Finished => self.record.finished = true,
            Outcome::Diverged { epoch } => {
                self.record.stopped = Some(format!("loss became NaN or infinite in epoch {epoch}"))
            }
            Outcome::Interrupted { epoch } => {
                self.record.stopped = Some(format!("interrupted during epoch {epoch}"))
            }
            Outcome::Stopped { epoch, why } => {
                self.record.stopped = Some(format!("stopped after epoch {epoch}: {why}"))
            }
        }
        self.save()
    }
}
