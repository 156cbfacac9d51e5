//! Finding run CSVs below the given paths, reading them (Keras's CSVLogger
//! files and ours alike), and telling which run each one is, so that one
//! run is never counted as two seeds.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail, ensure};

use crate::callbacks::RunRecord;
use crate::config::{Experiment, value_name};
pub use crate::keras_csv::{Curve, VAL_ACC, diverged, read_curve};
use crate::layout::{SUMMARY, record as record_path};
use crate::manifest::Manifest;

/// Which run a CSV of ours is.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Identity {
    pub preset: String,
    /// Settings other than the optimiser changed from the preset, as
    /// `key=value`: Keras ran the presets as they are, so such runs have no
    /// Keras counterpart. Empty for a run of the preset itself.
    pub changed: Vec<String>,
    /// `adam` or `keras-adam` from the record; `unrecorded` without one.
    pub optimizer: String,
    pub seed: u64,
}

impl Identity {
    pub fn has_reference(&self) -> bool {
        self.changed.is_empty()
    }

    /// The preset with what was changed from it, e.g. `scaled [normalize=standard]`.
    pub fn label(&self) -> String {
        if self.changed.is_empty() {
            self.preset.clone()
        } else {
            format!("{} [{}]", self.preset, self.changed.join(", "))
        }
    }
}

/// `<preset>-seed<N>` or `<preset>-seed<N>-<k>` (a repeated `train`).
fn name_parts(csv: &Path) -> Option<(String, u64)> {
    let stem = csv.file_stem()?.to_str()?;
    let i = stem.rfind("-seed").filter(|&i| i > 0)?;
    let digits: String = stem[i + 5..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    Some((stem[..i].to_string(), digits.parse().ok()?))
}

/// `flag=value` for each setting of `run` but the optimizer (reported on
/// its own) that is not `preset`'s, in the flags' alphabetical order, named
/// and written as the flags and `binclass experiments` write them.
fn changed_settings(preset: &Experiment, run: &Experiment) -> Vec<String> {
    let mut changed: Vec<String> = preset
        .settings()
        .into_iter()
        .zip(run.settings())
        .filter(|((flag, want), (_, have))| *flag != "optimizer" && want != have)
        .map(|(_, (flag, have))| format!("{flag}={have}"))
        .collect();
    changed.sort();
    changed
}

/// The run a CSV of ours is: from the `.json` record `train` and `sweep`
/// write beside it, else from its name.
pub fn identify(csv: &Path) -> Result<Identity> {
    let record = record_path(csv);
    if !record.exists() {
        let Some((preset, seed)) = name_parts(csv) else {
            bail!(
                "{}: cannot tell its preset (no .json record, name not <preset>-seed<N>.csv)",
                csv.display()
            );
        };
        return Ok(Identity {
            preset,
            changed: vec![],
            optimizer: "unrecorded".to_string(),
            seed,
        });
    }
    let r = RunRecord::read(&record)?;
    let changed = match Experiment::preset(&r.experiment.name) {
        Ok(preset) => changed_settings(&preset, &r.experiment),
        Err(_) => vec!["not one of the article's presets".to_string()],
    };
    Ok(Identity {
        optimizer: value_name(&r.experiment.optimizer),
        preset: r.experiment.name,
        changed,
        seed: r.seed,
    })
}

/// Whether a CSV found in a folder is a run's: it has a record, or at least
/// CSVLogger's validation column (sweep's summary.csv and parity's step files
/// have neither).
fn looks_like_a_run(csv: &Path) -> bool {
    let has_val = |l: &str| l.split(',').any(|c| c.trim() == "val_binary_accuracy");
    record_path(csv).exists()
        || std::fs::read_to_string(csv).is_ok_and(|t| t.lines().next().is_some_and(has_val))
}

/// What a folder walk passed over, to be named in the notes.
#[derive(Default)]
pub struct Skipped {
    /// CSVs that are not runs.
    pub not_runs: Vec<PathBuf>,
    /// Run CSVs in a command's folder that its manifest does not plan: a
    /// run trained into it by hand, a copied file.
    pub not_planned: Vec<PathBuf>,
}

/// Every run CSV below `dir`, at any depth, sorted. A folder with a
/// manifest (a sweep's, a reproduction's) holds exactly the runs its plan
/// names: its other CSVs go to `skipped.not_planned`. Elsewhere, CSVs that
/// are not runs go to `skipped.not_runs`, except sweep's summary.csv files,
/// which are passed over. Folder links are not followed, so a link loop
/// cannot trap the walk.
pub fn csvs_below(dir: &Path, skipped: &mut Skipped) -> Result<Vec<PathBuf>> {
    if let Some(m) = Manifest::find(dir)? {
        let mut planned: Vec<PathBuf> = m.plan.csvs(dir);
        planned.retain(|p| p.is_file());
        planned.sort();
        let mut all = Skipped::default();
        for p in csvs_below_unplanned(dir, &mut all)? {
            if planned.binary_search(&p).is_err() {
                skipped.not_planned.push(p);
            }
        }
        return Ok(planned);
    }
    csvs_below_unplanned(dir, skipped)
}

/// [`csvs_below`] of a folder whose manifest is not consulted.
fn csvs_below_unplanned(dir: &Path, skipped: &mut Skipped) -> Result<Vec<PathBuf>> {
    let mut found = vec![];
    for p in entries(dir)? {
        if p.is_dir() && !p.is_symlink() {
            found.extend(csvs_below(&p, skipped)?);
        } else if csv_not_summary(&p) && p.is_file() {
            if looks_like_a_run(&p) {
                found.push(p);
            } else {
                skipped.not_runs.push(p);
            }
        }
    }
    Ok(found)
}

/// A folder's entries, sorted.
fn entries(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot read folder {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    entries.sort();
    Ok(entries)
}

/// A CSV, but not a sweep's summary.csv, which sits beside every sweep's
/// runs: passed over without a note.
fn csv_not_summary(p: &Path) -> bool {
    p.extension().is_some_and(|x| x == "csv") && p.file_name().is_some_and(|n| n != SUMMARY)
}

/// The run CSVs directly in a folder (not its summary.csv), sorted.
pub fn csvs_in(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut files = entries(dir)?;
    files.retain(|p| csv_not_summary(p));
    Ok(files)
}

/// One of our runs, read and identified.
pub struct Run {
    pub path: PathBuf,
    pub id: Identity,
    pub curve: Curve,
}

/// Our runs below `paths`, each counted once, with notes on what was
/// merged or skipped.
pub struct Ours {
    pub runs: Vec<Run>,
    pub notes: Vec<String>,
}

/// The files named by `paths` (folders searched at any depth), each once.
fn files_of(paths: &[PathBuf], notes: &mut Vec<String>) -> Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = vec![];
    let mut seen: BTreeMap<PathBuf, PathBuf> = BTreeMap::new();
    let mut skipped = Skipped::default();
    for p in paths {
        if !p.exists() {
            bail!("{}: no such file or folder", p.display());
        }
        let found = if p.is_dir() {
            csvs_below(p, &mut skipped)?
        } else {
            vec![p.clone()]
        };
        if found.is_empty() {
            bail!("{}: no run CSVs below it", p.display());
        }
        for f in found {
            let canon = std::fs::canonicalize(&f).unwrap_or_else(|_| f.clone());
            if let Some(first) = seen.get(&canon) {
                notes.push(format!(
                    "{} is {} again: counted once",
                    f.display(),
                    first.display()
                ));
            } else {
                seen.insert(canon, f.clone());
                files.push(f);
            }
        }
    }
    let names = |ps: &[PathBuf]| {
        let names: Vec<String> = ps.iter().map(|p| p.display().to_string()).collect();
        names.join(", ")
    };
    if !skipped.not_runs.is_empty() {
        notes.push(format!("not runs, skipped: {}", names(&skipped.not_runs)));
    }
    if !skipped.not_planned.is_empty() {
        notes.push(format!(
            "not runs of their folder's command (its {} does not plan them), so not counted: {}",
            crate::layout::MANIFEST,
            names(&skipped.not_planned)
        ));
    }
    Ok(files)
}

/// Exactly equal, NaN rows included.
fn same_curve(a: &Curve, b: &Curve) -> bool {
    a.len() == b.len()
        && a.iter()
            .flatten()
            .zip(b.iter().flatten())
            .all(|(x, y)| x == y || (x.is_nan() && y.is_nan()))
}

/// Reads every run below `paths`, in the order of their identities. A run present twice (the same file given
/// twice, or a copy under another name such as `train`'s `-1` suffix) is
/// counted once; two different runs claiming the same seed are an error.
pub fn load_ours(paths: &[PathBuf]) -> Result<Ours> {
    let mut notes = vec![];
    let files = files_of(paths, &mut notes)?;
    let mut by_id: BTreeMap<Identity, usize> = BTreeMap::new();
    let mut runs: Vec<Run> = vec![];
    for path in files {
        let curve = read_curve(&path)?;
        let id = identify(&path)?;
        if let Some(&i) = by_id.get(&id) {
            let (a, b) = (runs[i].path.display(), path.display());
            let what = format!("{} seed {} ({})", id.label(), id.seed, id.optimizer);
            ensure!(
                same_curve(&runs[i].curve, &curve),
                "{a} and {b} are both {what} but their metrics differ; keep one of them"
            );
            notes.push(format!(
                "{a} and {b} are the same run ({what}): counted once"
            ));
            continue;
        }
        by_id.insert(id.clone(), runs.len());
        runs.push(Run { path, id, curve });
    }
    // The bootstrap resamples runs by position: in the order of their
    // identity (preset, settings, optimizer, seed), the same runs get the
    // same numbers whatever order their files were given or found in.
    runs.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(Ours { runs, notes })
}

/// Keras's curves by preset: `DIR/<preset>/*.csv`.
pub fn load_reference(dir: &Path) -> Result<BTreeMap<String, Vec<Curve>>> {
    let mut by = BTreeMap::new();
    for e in std::fs::read_dir(dir)
        .with_context(|| format!("cannot read reference folder {}", dir.display()))?
    {
        let p = e?.path();
        if p.is_dir() {
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or_default();
            let curves = csvs_in(&p)?
                .iter()
                .map(|f| read_curve(f))
                .collect::<Result<Vec<_>>>()?;
            if !curves.is_empty() {
                by.insert(name.to_string(), curves);
            }
        }
    }
    if by.is_empty() {
        bail!("{}: no <preset>/ folders of CSVs", dir.display());
    }
    Ok(by)
}

/// The Keras reference: `given`, else the copy built into binclass (of the
/// source tree's `reference/keras`, written out under the user's cache).
pub fn reference_dir(given: Option<&Path>) -> Result<PathBuf> {
    match given {
        Some(p) => Ok(p.to_path_buf()),
        None => Ok(crate::embedded::root()?.join(crate::embedded::REFERENCE)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What was changed reads as the flags that change it and as `binclass
    /// experiments` lists settings: `noise-rate=0.1`, `scale=10`, not the
    /// record's field names and float forms (`noise_rate=0.1`, `scale=10.0`).
    #[test]
    fn changed_settings_are_named_and_written_as_their_flags() {
        let preset = Experiment::preset("baseline").unwrap();
        let run = Experiment {
            noise_rate: 0.1,
            scale: 10.0,
            epochs: 1,
            optimizer: crate::config::Optimizer::KerasAdam,
            ..preset.clone()
        };
        assert_eq!(
            changed_settings(&preset, &run),
            ["epochs=1", "noise-rate=0.1", "scale=10"]
        );
        assert!(changed_settings(&preset, &preset).is_empty());
    }

    #[test]
    fn names_give_preset_and_seed_with_or_without_a_repeat_suffix() {
        let parts = |s: &str| name_parts(Path::new(s));
        assert_eq!(
            parts("runs/baseline-seed0.csv"),
            Some(("baseline".into(), 0))
        );
        assert_eq!(parts("baseline-seed0-1.csv"), Some(("baseline".into(), 0)));
        assert_eq!(
            parts("x/scaled-long-seed12.csv"),
            Some(("scaled-long".into(), 12))
        );
        assert_eq!(parts("seed-3.csv"), None);
        assert_eq!(parts("baseline-seedX.csv"), None);
    }
}
