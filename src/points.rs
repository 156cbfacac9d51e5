//! Points to predict or evaluate, read from a CSV in chunks: one row per
//! point, the model's feature columns (a header row optional) and, where
//! asked for, a label column named in the header. Every value is checked as
//! it is read; a bad one is a one-line error naming the file, line and
//! column.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};

use anyhow::{Context, Result, anyhow, bail};
use csv::StringRecord;

use crate::data::Normalization;
use crate::keras_csv::python_float;
use crate::model_file::SavedModel;

/// A point file being read.
pub struct Points {
    reader: csv::Reader<Lines>,
    /// How errors name the input: its path, or `stdin`.
    pub source: String,
    features: usize,
    /// The model's scaling, applied as each point is read.
    scaling: Normalization,
    /// Where the label is, if the input has one.
    label: Option<usize>,
    /// The header row, if the input starts with one.
    pub header: Option<StringRecord>,
    /// A data row read while looking for the header.
    pending: Option<StringRecord>,
    /// A bad row met after good ones of the same chunk: the chunk is
    /// returned, and this next.
    failed: Option<anyhow::Error>,
    /// The line the last record read started on.
    last_line: u64,
    rows: u64,
}

/// Up to a chunk of rows: the fields as given, the features as the network
/// takes them (row-major, scaled by the model's normalisation, float64) and
/// the labels (when the input has them).
pub struct Chunk {
    pub records: Vec<StringRecord>,
    pub features: Vec<f64>,
    pub labels: Vec<f64>,
}

impl Points {
    /// Opens `input` (a path, or `-` for stdin) for `model`; `label` names
    /// the label column, which needs a header.
    pub fn open(input: &str, model: &SavedModel, label: Option<&str>) -> Result<Self> {
        let (source, stream): (String, Box<dyn BufRead>) = if input == "-" {
            ("stdin".into(), Box::new(std::io::stdin().lock()))
        } else {
            let f = File::open(input).with_context(|| format!("cannot read {input}"))?;
            (input.to_string(), Box::new(BufReader::new(f)))
        };
        let reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .from_reader(Lines {
                inner: stream,
                started: 0,
                at_start: true,
            });
        let mut p = Points {
            reader,
            source,
            features: model.experiment.features as usize,
            scaling: model.normalization.clone(),
            label: None,
            header: None,
            pending: None,
            failed: None,
            last_line: 0,
            rows: 0,
        };
        p.read_header(label)?;
        Ok(p)
    }

    /// Columns each row must have.
    pub fn columns(&self) -> usize {
        self.features + usize::from(self.label.is_some())
    }

    /// The first row is a header when every field is a non-number, data when
    /// every field is a number; one that mixes them is refused, so that a
    /// typo in the first point is not taken for a header (and the point
    /// silently dropped).
    fn read_header(&mut self, label: Option<&str>) -> Result<()> {
        let Some(first) = self.next_record()? else {
            bail!("{}: empty input, no points", self.source);
        };
        let numbers: Vec<bool> = first.iter().map(|f| parse(f).is_some()).collect();
        if numbers.iter().all(|n| !n) {
            if let Some(name) = label {
                let at = first.iter().position(|h| h.trim() == name);
                self.label = Some(at.ok_or_else(|| {
                    anyhow!("{}: no column `{name}` in the header", self.at(&first))
                })?);
            }
            self.check_width(&first)?;
            self.header = Some(first);
        } else if let Some(c) = numbers.iter().position(|n| !n) {
            bail!(
                "{}: '{}' is not a number, and the row is not a header: its other fields are numbers",
                self.at_column(&first, c),
                &first[c]
            );
        } else {
            if let Some(name) = label {
                bail!(
                    "{}: --label-column {name} needs a header row naming the columns (line {} is data)",
                    self.source,
                    line(&first)
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
            Ok(true) => {
                let breaks = r.iter().map(|f| f.matches('\n').count()).sum::<usize>();
                // A quote left open at the end of the input takes the last
                // line's break into its field, a break no line followed: a
                // record starts after the one before it, whatever it holds.
                let line = (self.reader.get_ref().started - breaks as u64).max(self.last_line + 1);
                self.last_line = line;
                let mut at = csv::Position::new();
                at.set_line(line);
                r.set_position(Some(at));
                Ok(Some(r))
            }
            Ok(false) => Ok(None),
            // A failed read is the input's, not a line's (a folder fails
            // before any line): worded as opening a missing file is.
            Err(e) => match e.kind() {
                csv::ErrorKind::Io(io) => bail!("cannot read {}: {io}", self.source),
                csv::ErrorKind::Utf8 { err, .. } => bail!(
                    "{}: line {}, column {}: not UTF-8 text",
                    self.source,
                    self.reader.get_ref().started,
                    err.field() + 1
                ),
                _ => bail!("{}: {}", self.source, one_line(&e.to_string())),
            },
        }
    }

    fn check_width(&self, r: &StringRecord) -> Result<()> {
        if r.len() != self.columns() {
            let label = self.label.map_or("", |_| " and the label");
            bail!(
                "{}: {} columns, expected {} (the model's {} features{label})",
                self.at(r),
                r.len(),
                self.columns(),
                self.features
            );
        }
        Ok(())
    }

    /// The next rows, at most `max`; `None` when the input is done. An
    /// input without a single point is an error. A bad row ends the chunk
    /// before it, so that the points before it are predicted like any
    /// other (a stream holds every point up to the bad row), and is the
    /// error of the next call ([`Points::failed`] tells it is coming).
    pub fn next_chunk(&mut self, max: usize) -> Result<Option<Chunk>> {
        if let Some(e) = self.failed.take() {
            return Err(e);
        }
        let mut chunk = Chunk {
            records: Vec::with_capacity(max),
            features: Vec::with_capacity(max * self.features),
            labels: vec![],
        };
        while chunk.records.len() < max {
            match self.next_point(&mut chunk) {
                Ok(true) => {}
                Ok(false) => break,
                Err(e) if !chunk.records.is_empty() => {
                    self.failed = Some(e);
                    break;
                }
                Err(e) => return Err(e),
            }
        }
        self.rows += chunk.records.len() as u64;
        // Rows read so far are none only if this chunk is empty too.
        if self.rows == 0 {
            bail!("{}: empty input, no points after the header", self.source);
        }
        Ok((!chunk.records.is_empty()).then_some(chunk))
    }

    /// Whether a bad row ended the last chunk: the next call fails.
    pub fn failed(&self) -> bool {
        self.failed.is_some()
    }

    /// Reads one point into `chunk`, whole or not at all; false at the end.
    fn next_point(&mut self, chunk: &mut Chunk) -> Result<bool> {
        let Some(r) = self.next_record()? else {
            return Ok(false);
        };
        self.check_width(&r)?;
        let mut point = Vec::with_capacity(self.features);
        let mut label = None;
        for (c, field) in r.iter().enumerate() {
            let v = self.number(&r, c, field)?;
            if Some(c) == self.label {
                if v != 0.0 && v != 1.0 {
                    bail!("{}: label '{field}' is not 0 or 1", self.at_column(&r, c));
                }
                label = Some(v);
            } else {
                point.push(v);
            }
        }
        self.scale(&r, &mut point)?;
        chunk.features.extend(point);
        chunk.labels.extend(label);
        chunk.records.push(r);
        Ok(true)
    }

    /// A field as a finite number.
    fn number(&self, r: &StringRecord, c: usize, field: &str) -> Result<f64> {
        let at = || self.at_column(r, c);
        let v = parse(field).ok_or_else(|| anyhow!("{}: '{field}' is not a number", at()))?;
        if !v.is_finite() {
            bail!(
                "{}: '{field}' is not finite; every value must be a finite number",
                at()
            );
        }
        Ok(v)
    }

    /// Scales a point as the model's training rows were scaled, in float64,
    /// and checks each value fits float32. The check comes after the
    /// scaling because float32 is where the network first sees a value: a
    /// raw 1e39 standardised by a large deviation is a fine input, and a
    /// raw value within float32 divided by a tiny one may not be; an
    /// overflow would reach the network as an infinity and leave a NaN
    /// probability.
    fn scale(&self, r: &StringRecord, point: &mut [f64]) -> Result<()> {
        self.scaling.apply(point);
        let Some(j) = point.iter().position(|x| !(*x as f32).is_finite()) else {
            return Ok(());
        };
        let c = (0..r.len())
            .filter(|c| Some(*c) != self.label)
            .nth(j)
            .unwrap_or(j);
        let scaled = match self.scaling {
            Normalization::None => String::new(),
            _ => format!(
                " ({} once scaled by the model's normalisation)",
                python_float(point[j])
            ),
        };
        bail!(
            "{}: '{}'{scaled} is beyond float32's range (±{:e}), in which the network computes",
            self.at_column(r, c),
            &r[c],
            f32::MAX
        )
    }

    /// Where a record starts, as errors name it: `source: line N`.
    pub fn at(&self, r: &StringRecord) -> String {
        format!("{}: line {}", self.source, line(r))
    }

    fn at_column(&self, r: &StringRecord, c: usize) -> String {
        format!("{}, column {}", self.at(r), c + 1)
    }
}

/// A field as Rust reads a number (surrounding spaces allowed).
fn parse(field: &str) -> Option<f64> {
    field.trim().parse().ok()
}

/// The input, handed to the csv reader at most one line per read, counting
/// the lines begun. csv's own record positions are where its reader stood
/// before the record: a line short after a `\r\n` (the `\r` ends the
/// record, the `\n` is read with the next one) and before any blank lines
/// it skipped. As the csv reader refills its buffer only once it is used
/// up, it never holds bytes past the line a record ends on: `started` is
/// that line's number when the record is returned.
struct Lines {
    inner: Box<dyn BufRead>,
    started: u64,
    at_start: bool,
}

impl Read for Lines {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let available = self.inner.fill_buf()?;
        let line = available
            .iter()
            .position(|&b| b == b'\n')
            .map_or(available.len(), |i| i + 1);
        let n = line.min(buf.len());
        buf[..n].copy_from_slice(&available[..n]);
        self.inner.consume(n);
        if n > 0 {
            self.started += u64::from(self.at_start);
            self.at_start = buf[n - 1] == b'\n';
        }
        Ok(n)
    }
}

/// The line a record starts on.
pub fn line(r: &StringRecord) -> u64 {
    r.position().map_or(0, |p| p.line())
}

fn one_line(msg: &str) -> String {
    msg.split_whitespace().collect::<Vec<_>>().join(" ")
}
