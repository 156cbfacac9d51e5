//! Where a run's files go, claimed before training starts so that no run
//! ever overwrites a user's file unless told to.

use std::fs::{File, OpenOptions};
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

pub struct RunFiles {
    pub csv: PathBuf,
    /// `<csv>.json`: the run record beside the metrics.
    pub json: PathBuf,
    pub csv_file: File,
}

pub fn record_path(csv: &Path) -> PathBuf {
    let mut s = csv.as_os_str().to_owned();
    s.push(".json");
    PathBuf::from(s)
}

/// Opens the metrics CSV: `out` as given (refusing to replace it or its record
/// without `overwrite`), or else the first free `runs/<name>-seed<N>[-k].csv`.
pub fn claim(out: Option<&Path>, name: &str, seed: u64, overwrite: bool) -> Result<RunFiles> {
    if let Some(csv) = out {
        let json = record_path(csv);
        if csv.is_dir() {
            bail!(
                "--out {} is a folder; give a file path such as {}/run.csv",
                csv.display(),
                csv.display()
            );
        }
        if !overwrite {
            for p in [csv, json.as_path()] {
                if p.exists() {
                    bail!(
                        "{} already exists; pass --overwrite to replace it, or choose another --out",
                        p.display()
                    );
                }
            }
        }
        make_parent(csv)?;
        let file = open(csv, overwrite)?.with_context(|| {
            format!(
                "{} already exists; pass --overwrite to replace it",
                csv.display()
            )
        })?;
        return Ok(RunFiles {
            csv: csv.to_path_buf(),
            json,
            csv_file: file,
        });
    }
    let dir = Path::new("runs");
    for k in 0.. {
        let stem = if k == 0 {
            format!("{name}-seed{seed}")
        } else {
            format!("{name}-seed{seed}-{k}")
        };
        let csv = dir.join(format!("{stem}.csv"));
        let json = record_path(&csv);
        if json.exists() {
            continue;
        }
        make_parent(&csv)?;
        if let Some(file) = open(&csv, false)? {
            return Ok(RunFiles {
                csv,
                json,
                csv_file: file,
            });
        }
    }
    unreachable!("the loop returns or fails")
}

fn make_parent(path: &Path) -> Result<()> {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create folder {} for --out", dir.display())),
        _ => Ok(()),
    }
}

/// `None` when the file exists and we may not replace it.
fn open(path: &Path, overwrite: bool) -> Result<Option<File>> {
    let mut o = OpenOptions::new();
    o.write(true);
    if overwrite {
        o.create(true).truncate(true);
    } else {
        o.create_new(true);
    }
    match o.open(path) {
        Ok(f) => Ok(Some(f)),
        Err(e) if e.kind() == ErrorKind::AlreadyExists && !overwrite => Ok(None),
        Err(e) => Err(e).with_context(|| format!("cannot write {}", path.display())),
    }
}
