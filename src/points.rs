//! Points to predict or evaluate, read from a CSV in chunks: one row per
//! point, the model's feature columns (a header row optional) and, where
//! asked for, a label column named in the header. Every value is checked as
//! it is read; a bad one is a one-line error naming the file, line and
//! column.

use std::fs::File;
use std::io::Read;

use anyhow::{Context, Result, anyhow, bail};
use csv::StringRecord;

/// A point file being read.
pub struct Points {
    reader: csv::Reader<Box<dyn Read>>,
    /// How errors name the input: its path, or `stdin`.
    pub source: String,
    features: usize,
    /// Where the label is, if the input has one.
    label: Option<usize>,
    /// The header row, if the input starts with one.
    pub header: Option<StringRecord>,
    /// A data row read while looking for the header.
    pending: Option<StringRecord>,
    rows: u64,
}

/// Up to a chunk of rows: the fields as given, the features (row-major, as
/// read: not scaled) and the labels (when the input has them).
pub struct Chunk {
    pub records: Vec<StringRecord>,
    pub features: Vec<f64>,
    pub labels: Vec<f64>,
}

impl Points {
    /// Opens `input` (a path, or `-` for stdin) for a model of `features`
    /// features; `label` names the label column, which needs a header.
    pub fn open(input: &str, features: usize, label: Option<&str>) -> Result<Self> {
        let (source, stream): (String, Box<dyn Read>) = if input == "-" {
            ("stdin".into(), Box::new(std::io::stdin()))
        } else {
            let f = File::open(input).with_context(|| format!("cannot read {input}"))?;
            (input.to_string(), Box::new(f))
        };
        let reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .from_reader(stream);
        let mut p = Points {
            reader,
            source,
            features,
            label: None,
            header: None,
            pending: None,
            rows: 0,
        };
        p.read_header(label)?;
        Ok(p)
    }

    /// Columns each row must have.
    pub fn columns(&self) -> usize {
        self.features + usize::from(self.label.is_some())
    }

    /// The first row is a header when any of its fields is not a number.
    fn read_header(&mut self, label: Option<&str>) -> Result<()> {
        let Some(first) = self.next_record()? else {
            bail!("{}: empty input, no points", self.source);
        };
        let is_header = first.iter().any(|f| f.trim().parse::<f64>().is_err());
        if is_header {
            if let Some(name) = label {
                let at = first.iter().position(|h| h.trim() == name);
                self.label = Some(at.ok_or_else(|| {
                    anyhow!("{}: line 1: no column `{name}` in the header", self.source)
                })?);
            }
            self.check_width(&first)?;
            self.header = Some(first);
        } else {
            if let Some(name) = label {
                bail!(
                    "{}: --label-column {name} needs a header row naming the columns (line 1 is data)",
                    self.source
                );
            }
            self.pending = Some(first);
        }
        Ok(())
    }

    fn next_record(&mut self) -> Result<Option<StringRecord>> {
        if let Some(r) = self.pending.take() {
            return Ok(Some(r));
        }
        let mut r = StringRecord::new();
        match self.reader.read_record(&mut r) {
            Ok(true) => Ok(Some(r)),
            Ok(false) => Ok(None),
            // A failed read is the input's, not a line's (a folder fails
            // before any line): worded as opening a missing file is.
            Err(e) => match e.kind() {
                csv::ErrorKind::Io(io) => bail!("cannot read {}: {io}", self.source),
                _ => {
                    let line = e.position().map_or(0, |p| p.line());
                    bail!("{}: line {line}: {}", self.source, one_line(&e.to_string()))
                }
            },
        }
    }

    fn check_width(&self, r: &StringRecord) -> Result<()> {
        if r.len() != self.columns() {
            let label = if self.label.is_some() {
                " and the label"
            } else {
                ""
            };
            bail!(
                "{}: line {}: {} columns, expected {} (the model's {} features{label})",
                self.source,
                line(r),
                r.len(),
                self.columns(),
                self.features
            );
        }
        Ok(())
    }

    /// The next rows, at most `max`; `None` when the input is done. An
    /// input without a single point is an error.
    pub fn next_chunk(&mut self, max: usize) -> Result<Option<Chunk>> {
        let mut chunk = Chunk {
            records: Vec::with_capacity(max),
            features: Vec::with_capacity(max * self.features),
            labels: vec![],
        };
        while chunk.records.len() < max {
            let Some(r) = self.next_record()? else { break };
            self.check_width(&r)?;
            for (c, field) in r.iter().enumerate() {
                let v = self.number(&r, c, field)?;
                if Some(c) == self.label {
                    if v != 0.0 && v != 1.0 {
                        bail!(
                            "{}: line {}, column {}: label '{field}' is not 0 or 1",
                            self.source,
                            line(&r),
                            c + 1
                        );
                    }
                    chunk.labels.push(v);
                } else {
                    chunk.features.push(v);
                }
            }
            chunk.records.push(r);
        }
        self.rows += chunk.records.len() as u64;
        if chunk.records.is_empty() {
            if self.rows == 0 {
                bail!("{}: empty input, no points after the header", self.source);
            }
            return Ok(None);
        }
        Ok(Some(chunk))
    }

    /// A field as a finite number.
    fn number(&self, r: &StringRecord, c: usize, field: &str) -> Result<f64> {
        let at = || format!("{}: line {}, column {}", self.source, line(r), c + 1);
        let v: f64 = field
            .trim()
            .parse()
            .map_err(|_| anyhow!("{}: '{field}' is not a number", at()))?;
        if !v.is_finite() {
            bail!(
                "{}: '{field}' is not finite; every value must be a finite number",
                at()
            );
        }
        Ok(v)
    }
}

fn line(r: &StringRecord) -> u64 {
    r.position().map_or(0, |p| p.line())
}

fn one_line(msg: &str) -> String {
    msg.split_whitespace().collect::<Vec<_>>().join(" ")
}
