//! Keras's CSVLogger: one row per finished epoch, appended to a run's CSV.
//!
//! Each row reaches the file in one `write` call as soon as its epoch ends, so
//! a run killed at any moment leaves a valid CSV of every finished epoch; a
//! write that fails part-way is cut back to the last whole row. The file is
//! opened for each row, so a sweep of thousands of seeds holds no
//! descriptors open.

use std::path::PathBuf;

use anyhow::Result;

use super::{Callback, Control};
use crate::fit::EpochLogs;
use crate::{keras_csv, outputs};

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
}

impl Callback for CsvLogger {
    fn on_epoch_end(&mut self, logs: &EpochLogs) -> Result<Control> {
        outputs::append(&self.path, &keras_csv::row(logs)?, "row")?;
        Ok(Control::Continue)
    }
}
