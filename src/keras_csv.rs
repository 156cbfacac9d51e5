//! What every epoch logs, and Keras's CSVLogger format, written and read.
//!
//! The one list of metrics is `logs!` below: Keras's logs' keys, in its
//! order, from which the CSV's columns (CSVLogger sorts the keys), a
//! record's `final_metrics`, TensorBoard's tags and the progress line all
//! come. The header is `epoch,binary_accuracy,loss,val_binary_accuracy,val_loss`;
//! lines are ended by `\r\n` as Python's csv module ends them, floats as
//! Python's `repr` writes them. Keras's files and ours are read alike.

use std::path::Path;

use anyhow::{Context, Result, bail};

/// Declares what a run logs: the names go in as Keras's logs hold them.
macro_rules! logs {
    ($($name:literal),+) => {
        /// What a model reports on the data it trains on, as Keras names
        /// and orders them: the loss, then each compiled metric.
        pub const TRAINING: &[&str] = &[$($name),+];
        /// Keras's logs' keys: [`TRAINING`], then each on the validation
        /// data, `val_<name>`.
        pub const LOGS: &[&str] = &[$($name,)+ $(concat!("val_", $name)),+];
    };
}
logs!("loss", "binary_accuracy");

/// The CSV's columns after `epoch`: [`LOGS`] sorted, as CSVLogger sorts them.
pub const COLUMNS: [&str; LOGS.len()] = sorted(LOGS);
const EPOCH: &str = "epoch";
/// The column a run's accuracy is judged by (its summary, `compare`).
pub const VAL_ACC: usize = column("val_binary_accuracy");
/// The column Keras's TerminateOnNaN watches.
pub const LOSS: usize = column("loss");
/// Where each of [`LOGS`] is among [`COLUMNS`].
const LOGGED_AT: [usize; LOGS.len()] = {
    let mut at = [0; LOGS.len()];
    let mut i = 0;
    while i < at.len() {
        at[i] = column(LOGS[i]);
        i += 1;
    }
    at
};

/// One epoch's metrics, in [`COLUMNS`]' order: a CSV row after its epoch.
pub type Row = [f64; LOGS.len()];

/// What one epoch logged.
#[derive(Clone, Copy, Debug, PartialEq, serde::Deserialize)]
#[serde(try_from = "Logged")]
pub struct EpochLogs {
    /// Counts from 0, as Keras's CSVLogger writes it.
    pub epoch: i64,
    pub metrics: Row,
    pub seconds: f64,
}

impl EpochLogs {
    /// From values in [`LOGS`]' order, as a model reports them.
    pub fn new(epoch: i64, logged: &[f64], seconds: f64) -> Self {
        let mut metrics = [f64::NAN; LOGS.len()];
        for (&at, &v) in LOGGED_AT.iter().zip(logged) {
            metrics[at] = v;
        }
        EpochLogs {
            epoch,
            metrics,
            seconds,
        }
    }

    /// A CSV row's epoch, as [`read_curve`] reads it (its time not kept).
    pub fn from_row(epoch: i64, metrics: Row) -> Self {
        EpochLogs {
            epoch,
            metrics,
            seconds: 0.0,
        }
    }

    /// Each metric by name, in [`LOGS`]' order.
    pub fn logs(&self) -> impl Iterator<Item = (&'static str, f64)> + '_ {
        LOGS.iter()
            .zip(LOGGED_AT)
            .map(|(&n, at)| (n, self.metrics[at]))
    }
}

/// Named as Keras names them, in its order, `epoch` first and `seconds` last.
impl serde::Serialize for EpochLogs {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = s.serialize_map(Some(LOGS.len() + 2))?;
        map.serialize_entry(EPOCH, &self.epoch)?;
        for (name, v) in self.logs() {
            map.serialize_entry(name, &v)?;
        }
        map.serialize_entry("seconds", &self.seconds)?;
        map.end()
    }
}

/// [`EpochLogs`] as a record holds it. JSON has no NaN or infinity, so
/// serde_json writes a diverged epoch's metric as `null`; it reads back as
/// NaN (the CSV keeps `nan` or `inf`), so the record of a diverged run
/// still reads (`merge`, `compare`, `resume`).
#[derive(serde::Deserialize)]
struct Logged {
    epoch: i64,
    seconds: f64,
    #[serde(flatten)]
    metrics: std::collections::HashMap<String, Option<f64>>,
}

impl TryFrom<Logged> for EpochLogs {
    type Error = String;

    fn try_from(l: Logged) -> Result<Self, String> {
        let mut metrics = [f64::NAN; LOGS.len()];
        for (v, name) in metrics.iter_mut().zip(COLUMNS) {
            let logged = l
                .metrics
                .get(name)
                .ok_or(format!("missing field `{name}`"))?;
            *v = logged.unwrap_or(f64::NAN);
        }
        Ok(EpochLogs {
            epoch: l.epoch,
            metrics,
            seconds: l.seconds,
        })
    }
}

/// Where the metric `name` is among [`COLUMNS`]; a name not there fails
/// the build where it is a constant.
pub const fn column(name: &str) -> usize {
    let mut i = 0;
    while i < COLUMNS.len() {
        if same(COLUMNS[i], name) {
            return i;
        }
        i += 1;
    }
    panic!("not a logged metric")
}

const fn same(a: &str, b: &str) -> bool {
    a.len() == b.len() && !before(a, b) && !before(b, a)
}

/// Python's order of ASCII strings, which CSVLogger sorts by.
const fn before(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let mut i = 0;
    while i < a.len() && i < b.len() {
        if a[i] != b[i] {
            return a[i] < b[i];
        }
        i += 1;
    }
    a.len() < b.len()
}

const fn sorted<const N: usize>(names: &[&'static str]) -> [&'static str; N] {
    let mut out = [""; N];
    let mut i = 0;
    while i < N {
        let mut j = i;
        out[i] = names[i];
        while j > 0 && before(out[j], out[j - 1]) {
            (out[j], out[j - 1]) = (out[j - 1], out[j]);
            j -= 1;
        }
        i += 1;
    }
    out
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
    let names = std::iter::once(EPOCH).chain(COLUMNS).map(String::from);
    line(names).expect("a static header always encodes")
}

/// The row of one epoch: its number, then its metrics.
pub fn row(logs: &EpochLogs) -> Result<Vec<u8>> {
    line(std::iter::once(logs.epoch.to_string()).chain(logs.metrics.map(python_float)))
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

/// One run: a [`Row`] per epoch.
pub type Curve = Vec<Row>;

/// Reads a Keras CSVLogger file (or ours): its columns in any order.
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
                "{}: no `{name}` column (expected {EPOCH},{})",
                path.display(),
                COLUMNS.join(",")
            )
        })
    };
    let idx = COLUMNS.map(col).into_iter().collect::<Result<Vec<_>>>()?;
    let epoch = col(EPOCH)?;
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
        let mut row = [0.0; LOGS.len()];
        for (v, &c) in row.iter_mut().zip(&idx) {
            *v = num(c)?;
        }
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
fn check_row(row: &Row) -> Result<()> {
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
    fn the_csv_holds_keras_logs_sorted_and_a_record_holds_them_in_keras_order() {
        assert_eq!(
            header(),
            b"epoch,binary_accuracy,loss,val_binary_accuracy,val_loss\r\n"
        );
        let logs = EpochLogs::new(3, &[0.25, 0.5, f64::NAN, 0.75], 1.5);
        assert_eq!(row(&logs).unwrap(), b"3,0.5,0.25,0.75,nan\r\n");
        let json = serde_json::to_string(&logs).unwrap();
        assert_eq!(
            json,
            r#"{"epoch":3,"loss":0.25,"binary_accuracy":0.5,"val_loss":null,"val_binary_accuracy":0.75,"seconds":1.5}"#
        );
        let back: EpochLogs = serde_json::from_str(&json).unwrap();
        assert_eq!(
            format!("{back:?}"),
            format!("{logs:?}"),
            "null reads as NaN"
        );
        let err = serde_json::from_str::<EpochLogs>(r#"{"epoch":0,"loss":1,"seconds":0}"#);
        assert!(err.unwrap_err().to_string().contains("binary_accuracy"));
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
