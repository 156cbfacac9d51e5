//! `<out>.json`: what produced a CSV (settings, seed, device, versions), how
//! long each epoch took, where it ended, and whether it finished. Rewritten
//! after every epoch (atomically), so a killed run's record is still valid.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result};
use serde::Serialize;

use crate::config::Experiment;
use crate::fit::{Callback, EpochLogs, Outcome, Plan};

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
    /// Rewrite after every epoch (a single run), or only at start and end
    /// (a sweep, where thousands of rewrites per epoch would cost more than
    /// training).
    every_epoch: bool,
}

impl RecordWriter {
    pub fn new(record: RunRecord, path: PathBuf, every_epoch: bool) -> Self {
        RecordWriter {
            record,
            path,
            start: Instant::now(),
            every_epoch,
        }
    }

    fn save(&mut self) -> Result<()> {
        self.record.total_seconds = self.start.elapsed().as_secs_f64();
        let text = serde_json::to_string_pretty(&self.record)? + "\n";
        let tmp = crate::outputs::record_path(&self.path.with_extension("tmp"));
        std::fs::write(&tmp, text)
            .and_then(|_| std::fs::rename(&tmp, &self.path))
            .with_context(|| format!("cannot write {}", self.path.display()))
    }
}

impl Callback for RecordWriter {
    fn on_train_begin(&mut self, _plan: &Plan) -> Result<()> {
        self.start = Instant::now();
        self.save()
    }

    fn on_epoch_end(&mut self, logs: &EpochLogs) -> Result<()> {
        self.record.epochs_completed += 1;
        self.record.epoch_seconds.push(logs.seconds);
        self.record.final_metrics = Some(*logs);
        if self.every_epoch {
            self.save()
        } else {
            Ok(())
        }
    }

    fn on_train_end(&mut self, outcome: Outcome) -> Result<()> {
        match outcome {
            Outcome::Finished => self.record.finished = true,
            Outcome::Diverged { epoch } => {
                self.record.stopped = Some(format!("loss became NaN or infinite in epoch {epoch}"))
            }
        }
        self.save()
    }
}
