//! Keras's CSVLogger: `epoch,binary_accuracy,loss,val_binary_accuracy,val_loss`
//! (epoch first, then the metric names sorted), one row per finished epoch.
//!
//! Each row reaches the file in one `write` call as soon as its epoch ends, so
//! a run killed at any moment leaves a valid CSV of every finished epoch. The
//! file is opened for each row, so a sweep of thousands of seeds holds no
//! descriptors open.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, Result};

use crate::fit::{Callback, EpochLogs, Plan};

pub const HEADER: [&str; 5] = [
    "epoch",
    "binary_accuracy",
    "loss",
    "val_binary_accuracy",
    "val_loss",
];

pub struct CsvLogger {
    path: PathBuf,
}

impl CsvLogger {
    /// Appends to `path`, a file already claimed (and emptied) for this run.
    pub fn new(path: PathBuf) -> Self {
        CsvLogger { path }
    }

    fn write_row<I: IntoIterator<Item = String>>(&mut self, fields: I) -> Result<()> {
        // Keras writes with Python's csv module: lines end in \r\n.
        let mut w = csv::WriterBuilder::new()
            .terminator(csv::Terminator::CRLF)
            .from_writer(Vec::new());
        w.write_record(fields)?;
        let row = w.into_inner().map_err(|e| e.into_error())?;
        OpenOptions::new()
            .append(true)
            .open(&self.path)
            .and_then(|mut f| f.write_all(&row))
            .with_context(|| format!("cannot write {}", self.path.display()))
    }
}

impl Callback for CsvLogger {
    fn on_train_begin(&mut self, _plan: &Plan) -> Result<()> {
        self.write_row(HEADER.map(String::from))
    }

    fn on_epoch_end(&mut self, l: &EpochLogs) -> Result<()> {
        self.write_row([
            l.epoch.to_string(),
            python_float(l.binary_accuracy),
            python_float(l.loss),
            python_float(l.val_binary_accuracy),
            python_float(l.val_loss),
        ])
    }
}

/// A float as Python's `repr` writes it, which is what Keras's CSVLogger
/// produces: shortest round-trip digits, `1e-05` style below 1e-4, `nan`, `inf`.
pub fn python_float(v: f64) -> String {
    if v.is_nan() {
        return "nan".into();
    }
    if v.is_infinite() {
        return if v > 0.0 { "inf" } else { "-inf" }.into();
    }
    let a = v.abs();
    if a != 0.0 && !(1e-4..1e16).contains(&a) {
        let s = format!("{v:e}");
        let (mantissa, exp) = s.split_once('e').expect("{:e} has an exponent");
        let (sign, digits) = exp.strip_prefix('-').map_or(("+", exp), |d| ("-", d));
        return format!("{mantissa}e{sign}{digits:0>2}");
    }
    let s = v.to_string();
    if s.contains('.') { s } else { format!("{s}.0") }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_print_as_python_repr() {
        assert_eq!(python_float(0.99125f32 as f64), "0.9912499785423279");
        assert_eq!(python_float(1.0), "1.0");
        assert_eq!(python_float(0.5), "0.5");
        assert_eq!(python_float(5e-5), "5e-05");
        assert_eq!(python_float(1.25e-7), "1.25e-07");
        assert_eq!(python_float(f64::NAN), "nan");
        assert_eq!(python_float(2e20), "2e+20");
        assert_eq!(python_float(0.0), "0.0");
    }
}
