//! Keras's CSVLogger format, written and read: the header
//! `epoch,binary_accuracy,loss,val_binary_accuracy,val_loss` (epoch first,
//! then the metric names sorted), lines ended by `\r\n` as Python's csv
//! module ends them, floats as Python's `repr` writes them. Keras's files
//! and ours are read alike.

use std::path::Path;

use anyhow::{Context, Result, bail};

pub const HEADER: [&str; 5] = [
    "epoch",
    "binary_accuracy",
    "loss",
    "val_binary_accuracy",
    "val_loss",
];

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

/// The row of one epoch: its number, then the metrics in [`HEADER`]'s order.
pub fn row(epoch: i64, metrics: [f64; 4]) -> Result<Vec<u8>> {
    line(std::iter::once(epoch.to_string()).chain(metrics.map(python_float)))
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

/// One run: per epoch, `[binary_accuracy, loss, val_binary_accuracy, val_loss]`.
pub type Curve = Vec<[f64; 4]>;

pub const VAL_ACC: usize = 2;
const COLUMNS: [&str; 4] = ["binary_accuracy", "loss", "val_binary_accuracy", "val_loss"];

/// Reads a Keras CSVLogger file (or ours): the five columns in any order.
/// NaN or infinite losses are kept (the run diverged, see [`diverged`]);
/// values no run can produce are errors naming the file and row.
pub fn read_curve(path: &Path) -> Result<Curve> {
    let mut r =
        csv::Reader::from_path(path).with_context(|| format!("cannot read {}", path.display()))?;
    let header = r
        .headers()
        .with_context(|| format!("{}: unreadable CSV header", path.display()))?
        .clone();
    if header.iter().all(str::is_empty) {
        bail!("{}: empty file, not a CSVLogger file", path.display());
    }
    let col = |name: &str| {
        header.iter().position(|h| h == name).with_context(|| {
            format!(
                "{}: no `{name}` column (expected {})",
                path.display(),
                HEADER.join(",")
            )
        })
    };
    let idx = COLUMNS.map(col).into_iter().collect::<Result<Vec<_>>>()?;
    let epoch = col("epoch")?;
    let mut curve = vec![];
    for (i, rec) in r.records().enumerate() {
        let rec = rec.with_context(|| format!("{}: row {} is malformed", path.display(), i + 1))?;
        let num = |c: usize| -> Result<f64> {
            let f = rec.get(c).unwrap_or("");
            f.trim().parse().with_context(|| {
                format!("{}: row {}: '{f}' is not a number", path.display(), i + 1)
            })
        };
        if num(epoch)? != i as f64 {
            bail!(
                "{}: row {} has epoch {}, expected {i}",
                path.display(),
                i + 1,
                num(epoch)?
            );
        }
        let row = [num(idx[0])?, num(idx[1])?, num(idx[2])?, num(idx[3])?];
        check_row(&row)
            .with_context(|| format!("{}: row {} (epoch {i})", path.display(), i + 1))?;
        curve.push(row);
    }
    if curve.is_empty() {
        bail!("{}: no epochs", path.display());
    }
    Ok(curve)
}

/// Accuracies are shares of samples and losses are cross-entropies: a value
/// outside their range means the file is not what it claims to be.
fn check_row(row: &[f64; 4]) -> Result<()> {
    for (name, v) in COLUMNS.iter().zip(row) {
        if name.ends_with("accuracy") && !v.is_nan() && !(0.0..=1.0).contains(v) {
            bail!("{name} {v} is outside [0, 1]");
        }
        if name.ends_with("loss") && *v < 0.0 {
            bail!("{name} {v} is negative");
        }
    }
    Ok(())
}

/// A NaN or infinite value anywhere: the run diverged, and its numbers
/// after that say nothing about the experiment.
pub fn diverged(c: &Curve) -> bool {
    c.iter().flatten().any(|v| !v.is_finite())
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

    #[test]
    fn impossible_values_are_refused_and_nan_is_divergence() {
        assert!(check_row(&[0.5, 0.1, 0.5, 0.1]).is_ok());
        assert!(check_row(&[0.5, f64::NAN, f64::NAN, f64::INFINITY]).is_ok());
        let err = |r: [f64; 4]| check_row(&r).unwrap_err().to_string();
        assert_eq!(
            err([0.5, 0.1, 2.5, 0.1]),
            "val_binary_accuracy 2.5 is outside [0, 1]"
        );
        assert_eq!(
            err([-0.5, 0.1, 0.5, 0.1]),
            "binary_accuracy -0.5 is outside [0, 1]"
        );
        assert_eq!(err([0.5, -0.1, 0.5, 0.1]), "loss -0.1 is negative");
        assert!(diverged(&vec![
            [0.5, 0.1, 0.5, 0.1],
            [0.5, f64::NAN, 0.5, 0.1]
        ]));
        assert!(!diverged(&vec![[0.5, 0.1, 0.5, 0.1]]));
    }
}
