//! Keras's CSVLogger: one row per finished epoch, appended to a run's CSV.
//!
//! Each row reaches the file in one `write` call as soon as its epoch ends, so
//! a run killed at any moment leaves a valid CSV of every finished epoch; a
//! write that fails part-way is cut back to the last whole row. The file is
//! opened for each row, so a sweep of thousands of seeds holds no
//! descriptors open.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, Result};

use super::{Callback, Control};
use crate::fit::EpochLogs;
use crate::keras_csv;

pub struct CsvLogger {
    path: PathBuf,
}

impl CsvLogger {
    /// Appends rows to `path`, a file claimed for this run: it holds the
    /// header from its creation (`outputs::claim`), and, when a run
    /// continues (Keras's `append=True`), the rows of its earlier epochs.
    pub fn new(path: PathBuf) -> Self {
        CsvLogger { path }
    }

    /// Appends one whole row. A write that fails part-way (a full disk) is
    /// cut back to the last complete row, so the file never ends mid-row.
    fn write_row(&mut self, row: &[u8]) -> Result<()> {
        let mut f = OpenOptions::new()
            .append(true)
            .open(&self.path)
            .with_context(|| format!("cannot write {}", self.path.display()))?;
        let complete = f.metadata().map(|m| m.len());
        if let Err(e) = f.write_all(row) {
            let kept = complete.and_then(|len| f.set_len(len));
            return Err(e).with_context(|| match kept {
                Ok(()) => format!(
                    "cannot write {} (it keeps every complete row)",
                    self.path.display()
                ),
                Err(_) => format!("cannot write {}", self.path.display()),
            });
        }
        Ok(())
    }
}

impl Callback for CsvLogger {
    fn on_epoch_end(&mut self, logs: &EpochLogs) -> Result<Control> {
        self.write_row(&keras_csv::row(
            logs.epoch,
            [
                logs.binary_accuracy,
                logs.loss,
                logs.val_binary_accuracy,
                logs.val_loss,
            ],
        )?)?;
        Ok(Control::Continue)
    }
}
