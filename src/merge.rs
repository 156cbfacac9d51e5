//! `binclass merge`: the folders of a command's shards (`--shard K/N`)
//! joined into the folder the unsharded command would have written: every
//! run's files copied, each `summary.csv` the shards' rows in shard order
//! (the order an unsharded run writes, since shards are contiguous slices:
//! `shard::Shard::slice`), each record naming its CSV in the merged folder.

use std::collections::{BTreeMap, HashSet};
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail, ensure};

use crate::callbacks::RunRecord;
use crate::manifest::{FolderCommand, FolderPlan, Manifest, Takeover};
use crate::model_file::SavedModel;
use crate::shard::Shard;
use crate::{keras_csv, layout, outputs};

/// The merge, checked: what each output file will hold.
pub struct Merge {
    pub out: PathBuf,
    /// Each file to write (relative to `out`) and where it comes from.
    copies: Vec<(PathBuf, PathBuf)>,
    /// Each `summary.csv` (relative) and its shards' copies, in shard order.
    summaries: BTreeMap<PathBuf, Vec<PathBuf>>,
    pub command: FolderCommand,
    pub shards: u64,
    plan: FolderPlan,
    /// Each part's training seconds, summed over the shards.
    timings: Vec<(String, f64)>,
    overwrite: bool,
}

/// Reads and checks the shards' manifests: one command and plan, every
/// shard of it once, each finished. Returns them in shard order.
fn manifests(dirs: &[PathBuf]) -> Result<Vec<(Manifest, PathBuf)>> {
    let mut found: Vec<(Manifest, Shard, PathBuf)> = dirs
        .iter()
        .map(|d| Manifest::read_shard(d).map(|(m, s)| (m, s, d.clone())))
        .collect::<Result<_>>()?;
    let Some((first, n, first_dir)) = found.first().cloned() else {
        bail!("give the shards' folders to merge");
    };
    let n = n.count;
    let other = |(m, s, _): &&(Manifest, Shard, PathBuf)| {
        m.command != first.command || m.plan != first.plan || s.count != n
    };
    if let Some((_, _, dir)) = found.iter().find(other) {
        bail!(
            "{} and {} are shards of different commands or settings; merge the shards of one command",
            first_dir.display(),
            dir.display()
        );
    }
    found.sort_by_key(|(_, s, _)| s.index);
    if let Some([(_, a, x), (_, _, y)]) = found.windows(2).find(|p| p[0].1.index == p[1].1.index) {
        let (x, y, k) = (x.display(), y.display(), a.index);
        bail!("{x} and {y} are both shard {k}/{n}: give each shard once");
    }
    // Each index found is distinct and below the count; at most 10 missing
    // are named, so a huge count costs no more than the shards given.
    let absent = n - found.len() as u64;
    if absent > 0 {
        let missing: Vec<String> = (0..n)
            .filter(|k| !found.iter().any(|(_, s, _)| s.index == *k))
            .take(10)
            .map(|k| k.to_string())
            .collect();
        bail!(
            "shard(s) {}{} of {n} missing: give every shard's folder",
            missing.join(", "),
            if absent > 10 { ", …" } else { "" },
        );
    }
    Ok(found.into_iter().map(|(m, _, d)| (m, d)).collect())
}

impl Merge {
    /// Checks every shard and every output path; writes nothing.
    pub fn plan(dirs: &[PathBuf], out: &Path, overwrite: bool) -> Result<Merge> {
        ensure!(
            !out.exists() || out.is_dir(),
            "--out {} is a file; give the folder to merge into",
            out.display()
        );
        let shards = manifests(dirs)?;
        let (first, _) = &shards[0];
        if first.command == FolderCommand::Reproduce {
            crate::reproduce::Reproduction::check_merged(&first.plan)?;
        }
        let mut m = Merge {
            out: out.to_path_buf(),
            copies: vec![],
            summaries: BTreeMap::new(),
            command: first.command,
            shards: first.shard.map_or(1, |s| s.count),
            plan: first.plan.clone(),
            timings: summed_timings(&shards),
            overwrite,
        };
        let mut owner: BTreeMap<PathBuf, PathBuf> = BTreeMap::new();
        for (manifest, dir) in &shards {
            ensure!(
                out.canonicalize().ok() != dir.canonicalize().ok(),
                "--out {} is one of the shards; merge into another folder",
                out.display()
            );
            m.add_shard(dir, &manifest.plan, &mut owner)?;
        }
        m.check_every_run_given()?;
        if overwrite {
            m.merged().check(out, Takeover::Overwrite)?;
        }
        m.check_outputs()?;
        Ok(m)
    }

    /// The manifest of the folder it writes: the unsharded command's.
    fn merged(&self) -> Manifest {
        Manifest::new(self.command, None, self.plan.clone())
    }

    /// Every run the plan names is in a shard. Shards are cut by their
    /// settings' work, so shards of one command cut by binclass versions
    /// whose cost models differ would otherwise leave seeds out unnoticed.
    fn check_every_run_given(&self) -> Result<()> {
        let given: HashSet<&Path> = self.copies.iter().map(|(rel, _)| rel.as_path()).collect();
        let records = self
            .plan
            .csvs(Path::new(""))
            .into_iter()
            .map(|c| layout::record(&c));
        if let Some(missing) = records.into_iter().find(|f| !given.contains(f.as_path())) {
            bail!(
                "no shard holds {}: give every shard's folder, each trained by the same binclass",
                missing.display()
            );
        }
        Ok(())
    }

    /// No output file exists that may not be replaced.
    fn check_outputs(&self) -> Result<()> {
        let manifest = PathBuf::from(layout::MANIFEST);
        for rel in self
            .copies
            .iter()
            .map(|(r, _)| r)
            .chain(self.summaries.keys())
            .chain([&manifest])
        {
            outputs::check_output(&self.out.join(rel), "--out", self.overwrite)?;
        }
        Ok(())
    }

    /// A shard's files: each run's to copy (its record checked against the
    /// plan; none another shard has, `owner` says whose), each summary to join.
    fn add_shard(
        &mut self,
        dir: &Path,
        plan: &FolderPlan,
        owner: &mut BTreeMap<PathBuf, PathBuf>,
    ) -> Result<()> {
        // Only what the command writes: not a user's notes beside it, nor
        // what a kill left under a temporary name.
        let planned = plan.files(dir);
        let files: Vec<PathBuf> = planned.into_iter().filter(|f| f.is_file()).collect();
        let (mut records, mut summaries) = (vec![], vec![]);
        for file in files {
            let rel = file.strip_prefix(dir)?.to_path_buf();
            let name = rel.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if name == layout::MANIFEST {
                continue;
            }
            if layout::is_batch_checkpoint(name) {
                bail!(
                    "{} is unfinished ({} is a batch's checkpoint): finish it with --resume first",
                    dir.display(),
                    file.display()
                );
            }
            if name == layout::SUMMARY {
                summaries.push(rel.clone());
                self.summaries.entry(rel).or_default().push(file);
                continue;
            }
            if layout::is_record(&rel) {
                records.push((rel.clone(), check_record(&file, &rel, plan)?));
            }
            if let Some(other) = owner.insert(rel.clone(), dir.to_path_buf()) {
                bail!(
                    "{} is in both {} and {}: shards overlap",
                    rel.display(),
                    other.display(),
                    dir.display()
                );
            }
            self.copies.push((rel, file));
        }
        check_complete(dir, plan, &records, &summaries).map_err(|e| {
            anyhow!(
                "shard {} is incomplete: {e:#}; run it again with --overwrite",
                dir.display()
            )
        })
    }

    /// Writes the merged folder, every file atomically. The folder is held
    /// first and its files checked again: a merge into it that began
    /// meanwhile is refused rather than replacing this one's files, or
    /// having its own replaced, without `--overwrite`.
    pub fn write(&self) -> Result<usize> {
        std::fs::create_dir_all(&self.out)
            .with_context(|| format!("cannot create folder {}", self.out.display()))?;
        outputs::hold(&self.out)?;
        // Checked again now that the folder is held; with --overwrite, what
        // the folder's earlier command wrote goes first, so that none of
        // its runs stays beside the merged ones.
        let merged = self.merged();
        if self.overwrite {
            merged.check(&self.out, Takeover::Overwrite)?;
        }
        self.check_outputs()?;
        if self.overwrite {
            merged.claim(&self.out, Takeover::Overwrite)?;
        }
        for (rel, from) in &self.copies {
            let to = self.out.join(rel);
            outputs::make_parent(&to)?;
            let bytes = match layout::is_record(rel) {
                true => record_in(&RunRecord::read(from)?, &to)?,
                false => std::fs::read(from)
                    .with_context(|| format!("cannot read {}", from.display()))?,
            };
            outputs::write_atomic(&to, &bytes)?;
        }
        for (rel, parts) in &self.summaries {
            let to = self.out.join(rel);
            outputs::make_parent(&to)?;
            outputs::write_atomic(&to, &joined_csv(parts)?)?;
        }
        merged.write(&self.out)?;
        if self.command == FolderCommand::Reproduce {
            crate::reproduce::Reproduction::finish_merged(
                &self.out,
                &self.plan,
                self.timings.clone(),
            )?;
        }
        merged.finish(&self.out, self.timings.clone())?;
        Ok(self.copies.len() + self.summaries.len())
    }
}

/// The shards' training seconds per part, in the first shard's order of parts.
fn summed_timings(shards: &[(Manifest, PathBuf)]) -> Vec<(String, f64)> {
    let mut sums: Vec<(String, f64)> = vec![];
    for (m, _) in shards {
        for (label, secs) in &m.timings {
            match sums.iter_mut().find(|(l, _)| l == label) {
                Some((_, s)) => *s += secs,
                None => sums.push((label.clone(), *secs)),
            }
        }
    }
    sums
}

/// The folder (relative, `/`-separated, as the plan names it) of the file `rel`.
fn folder_of(rel: &Path) -> String {
    rel.parent()
        .and_then(|p| p.to_str())
        .unwrap_or_default()
        .replace(std::path::MAIN_SEPARATOR, "/")
}

/// A run's record must be of the setting its folder holds in the plan.
fn check_record(file: &Path, rel: &Path, plan: &FolderPlan) -> Result<RunRecord> {
    let record = RunRecord::read(file)?;
    let folder = folder_of(rel);
    // A reproduction's runs sit in runs/<label>; a sweep's in its setting's folder.
    let at = match folder.as_str() {
        "" => "the shard's top folder".to_string(),
        f => f.to_string(),
    };
    let Some(setting) = plan.setting(&folder) else {
        bail!(
            "{} is in {at}, which is no setting of this shard's command",
            file.display()
        );
    };
    if record.experiment != setting.experiment {
        bail!(
            "{} was written with other settings than its shard's command gives {at}",
            file.display()
        );
    }
    Ok(record)
}

/// Every run a shard's files speak of is there and whole: each seed a
/// setting's `summary.csv` lists has its record, each record its CSV (the
/// header and a whole row per epoch it counts) and, if finished, its model
/// (read and checked: it is what `predict` and `evaluate` would load).
/// Otherwise the merged folder would lack a seed, or carry a cut one, silently.
fn check_complete(
    dir: &Path,
    plan: &FolderPlan,
    records: &[(PathBuf, RunRecord)],
    summaries: &[PathBuf],
) -> Result<()> {
    for (rel, record) in records {
        let csv = layout::record_csv(&dir.join(rel));
        let curve = keras_csv::read_curve(&csv)?;
        if !ends_a_row(&csv)? {
            bail!("{} ends in a cut row", csv.display());
        }
        ensure!(
            curve.len() == record.epochs_completed,
            "{} has {} epochs' rows, but its record counts {}",
            csv.display(),
            curve.len(),
            record.epochs_completed
        );
        if record.completed() {
            check_model(&layout::model(&csv), record)?;
        }
    }
    let have: HashSet<&Path> = records.iter().map(|(rel, _)| rel.as_path()).collect();
    for summary in summaries {
        let folder = folder_of(summary);
        // A --vary sweep's top summary is no setting's: its settings' own list their seeds.
        let Some(setting) = plan.setting(&folder) else {
            continue;
        };
        let (_, rows) = crate::grid::read_summary(&dir.join(summary))?;
        for seed in rows.iter().flat_map(|(_, f)| f.iter().map(|(s, _)| *s)) {
            let at = summary.parent().unwrap_or(Path::new(""));
            let json = layout::seed_record(at, &setting.experiment.name, seed);
            if !have.contains(json.as_path()) {
                bail!(
                    "{} lists seed {seed}, but {} is missing",
                    dir.join(summary).display(),
                    dir.join(&json).display()
                );
            }
        }
    }
    Ok(())
}

/// A finished run's model is there, reads as a model, and is the run's own:
/// its settings, seed and epochs those of the record beside it.
fn check_model(model: &Path, record: &RunRecord) -> Result<()> {
    ensure!(
        model.is_file(),
        "{} is missing, though its run's record says it finished",
        model.display()
    );
    let saved = SavedModel::read(model)?;
    if saved.experiment != record.experiment
        || saved.seed != record.seed
        || saved.epochs_completed != record.epochs_completed
    {
        bail!(
            "{} is not its record's run (seed {}, {} epochs of {}; the record: seed {}, {} epochs of {})",
            model.display(),
            saved.seed,
            saved.epochs_completed,
            saved.experiment.name,
            record.seed,
            record.epochs_completed,
            record.experiment.name
        );
    }
    Ok(())
}

/// Whether the file's last byte ends a line (the CSV just read whole has one).
fn ends_a_row(path: &Path) -> Result<bool> {
    let mut last = [0u8];
    File::open(path)
        .and_then(|mut f| {
            f.seek(SeekFrom::End(-1))?;
            f.read_exact(&mut last)
        })
        .with_context(|| format!("cannot read {}", path.display()))?;
    Ok(last == *b"\n")
}

/// A record with its `csv` naming the run's CSV in the merged folder, as
/// the unsharded command would have written it.
fn record_in(record: &RunRecord, json: &Path) -> Result<Vec<u8>> {
    let record = RunRecord {
        csv: layout::record_csv(json),
        ..record.clone()
    };
    Ok(record.to_text()?.into_bytes())
}

/// The CSVs' rows under their one header, in the order given.
fn joined_csv(parts: &[PathBuf]) -> Result<Vec<u8>> {
    let (mut header, mut out) = (None, String::new());
    for part in parts {
        let text = std::fs::read_to_string(part)
            .with_context(|| format!("cannot read {}", part.display()))?;
        let (head, rows) = text.split_once('\n').unwrap_or((&text, ""));
        if header.is_none() {
            out = format!("{head}\n");
        }
        ensure!(
            *header.get_or_insert_with(|| head.to_string()) == head,
            "{} has another header than {}'s other shards",
            part.display(),
            part.file_name().unwrap_or_default().to_string_lossy()
        );
        out += rows;
    }
    Ok(out.into_bytes())
}
