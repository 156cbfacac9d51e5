//! Keras's CSVLogger: `epoch,binary_accuracy,loss,val_binary_accuracy,val_loss`
//! (epoch first, then the metric names sorted), one row per finished epoch.
//!
//! Each row reaches the file in one `write` call as soon as its epoch ends, so
//! a run killed at any moment leaves a valid CSV of every finished epoch; a
//! write that fails part-way is cut back to the last whole row. The
//! file is opened for each row, so a sweep of thousands of seeds holds no
//! descriptors open.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, Result};

use crate::fit::{Callback, EpochLogs};

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

/// One CSV line as Keras writes it, with Python's csv module: `\r\n` ends it.
pub fn line<I: IntoIterator<Item = String>>(fields: I) -> Result<Vec<u8>> {
    let mut w = csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .from_writer(Vec::new());
    w.write_record(fields)?;
    Ok(w.into_inner().map_err(|e| e.into_error())?)
}

/// The header line, which a run's CSV holds from the moment it exists.
pub fn header() -> Vec<u8> {
    line(HEADER.map(String::from)).expect("a static header always encodes")
}

impl CsvLogger {
    /// Appends rows to `path`, a file claimed for this run (holding its
    /// header, and the rows of earlier epochs when a run continues).
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
    fn on_epoch_end(&mut self, l: &EpochLogs) -> Result<()> {
        self.write_row(&line([
            l.epoch.to_string(),
            python_float(l.binary_accuracy),
            python_float(l.loss),
            python_float(l.val_binary_accuracy),
            python_float(l.val_loss),
        ])?)
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
