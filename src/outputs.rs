//! Where a run's files go, claimed before training starts so that no run
//! ever overwrites a user's file unless told to.

use std::fs::OpenOptions;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

/// A run's files, the CSV created (empty) so that no other run takes it.
pub struct RunFiles {
    pub csv: PathBuf,
    /// `<csv>.json`: the run record beside the metrics.
    pub json: PathBuf,
}

pub fn record_path(csv: &Path) -> PathBuf {
    let mut s = csv.as_os_str().to_owned();
    s.push(".json");
    PathBuf::from(s)
}

/// Fails, touching nothing, if any of `csvs` (or its record) exists and may
/// not be replaced, or is a folder.
pub fn check_free(csvs: &[PathBuf], overwrite: bool) -> Result<()> {
    for csv in csvs {
        if csv.is_dir() {
            bail!(
                "{} is a folder; give a file path such as {}/run.csv",
                csv.display(),
                csv.display()
            );
        }
        if !overwrite {
            for p in [csv.clone(), record_path(csv)] {
                if p.exists() {
                    bail!(
                        "{} already exists; pass --overwrite to replace it, or choose another output",
                        p.display()
                    );
                }
            }
        }
    }
    Ok(())
}

/// Creates (or with `overwrite`, empties) `csv` for a run.
pub fn claim_path(csv: &Path, overwrite: bool) -> Result<RunFiles> {
    check_free(&[csv.to_path_buf()], overwrite)?;
    make_parent(csv)?;
    if !create(csv, overwrite)? {
        bail!(
            "{} already exists; pass --overwrite to replace it",
            csv.display()
        );
    }
    Ok(RunFiles {
        csv: csv.to_path_buf(),
        json: record_path(csv),
    })
}

/// `out` as given, or else the first free `runs/<name>-seed<N>[-k].csv`.
pub fn claim(out: Option<&Path>, name: &str, seed: u64, overwrite: bool) -> Result<RunFiles> {
    if let Some(csv) = out {
        return claim_path(csv, overwrite);
    }
    for k in 0.. {
        let stem = if k == 0 {
            format!("{name}-seed{seed}")
        } else {
            format!("{name}-seed{seed}-{k}")
        };
        let csv = Path::new("runs").join(format!("{stem}.csv"));
        if record_path(&csv).exists() {
            continue;
        }
        make_parent(&csv)?;
        if create(&csv, false)? {
            return Ok(RunFiles {
                json: record_path(&csv),
                csv,
            });
        }
    }
    unreachable!("the loop returns or fails")
}

pub fn make_parent(path: &Path) -> Result<()> {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create folder {}", dir.display())),
        _ => Ok(()),
    }
}

/// `false` when the file exists and we may not replace it.
fn create(path: &Path, overwrite: bool) -> Result<bool> {
    let mut o = OpenOptions::new();
    o.write(true);
    if overwrite {
        o.create(true).truncate(true);
    } else {
        o.create_new(true);
    }
    match o.open(path) {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == ErrorKind::AlreadyExists && !overwrite => Ok(false),
        Err(e) => Err(e).with_context(|| format!("cannot write {}", path.display())),
    }
}

/// Writes `text` to stdout; a reader that closed the pipe early (`| head`)
/// is not an error.
pub fn stdout(text: &str) -> Result<()> {
    use std::io::Write;
    match std::io::stdout().lock().write_all(text.as_bytes()) {
        Err(e) if e.kind() != ErrorKind::BrokenPipe => Err(e).context("cannot write to stdout"),
        _ => Ok(()),
    }
}
