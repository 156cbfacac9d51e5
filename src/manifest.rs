//! `manifest.json`: the first file a sweep or reproduction writes in its
//! folder, and the folder's contract. It says which command, plan
//! (settings and seeds) and shard the folder holds, and, once the command
//! ends, that it finished. The plan names every file the command may write
//! ([`FolderPlan::written`]): those files are the folder's, and only those.
//! `--resume` continues only the command line that wrote it; `--overwrite`
//! removes exactly the files the plan names and refuses a folder holding
//! anything else; `merge` joins only finished shards of one plan; `compare`
//! and a reproduction's report count only the plan's runs. docs/folders.md
//! states the rule for users.
//!
//! Typed throughout; a manifest of format version 1 (binclass before the
//! version field, whose seeds were a pair, a count or `"default"`) is read
//! through [`from_v1`], the one place that knows its shape.

use std::collections::{BTreeSet, HashSet};
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail, ensure};
use serde::{Deserialize, Serialize};

use crate::config::Experiment;
use crate::layout;
use crate::shard::Shard;

const FORMAT: &str = "binclass-folder";
/// 2: typed seeds (`Seeds`, a [`SeedRange`] per setting) and this field.
pub const VERSION: u32 = 2;

/// The command whose folder it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FolderCommand {
    Sweep,
    Reproduce,
}

impl std::fmt::Display for FolderCommand {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str(match self {
            FolderCommand::Sweep => "sweep",
            FolderCommand::Reproduce => "reproduce",
        })
    }
}

/// Seeds `first..=last`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeedRange {
    pub first: u64,
    pub last: u64,
}

impl SeedRange {
    pub fn of(seeds: &RangeInclusive<u64>) -> Self {
        SeedRange {
            first: *seeds.start(),
            last: *seeds.end(),
        }
    }

    /// The seeds `0..n`.
    pub fn count(n: u64) -> Self {
        Self::of(&(0..=n.saturating_sub(1)))
    }

    pub fn seeds(&self) -> RangeInclusive<u64> {
        self.first..=self.last
    }
}

/// The seeds a command was given.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Seeds {
    /// `sweep --seeds A..B`, or `reproduce --seeds N` (`0..N`).
    Range(SeedRange),
    /// `reproduce` without `--seeds`: each experiment's own default count.
    PerExperiment,
}

/// As `--seeds` takes them (`0..3`: 0, 1 and 2), for people.
impl std::fmt::Display for Seeds {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        match self {
            Seeds::Range(SeedRange { first, last }) => match last.checked_add(1) {
                Some(end) => write!(f, "{first}..{end}"),
                None => write!(f, "{first}..={last}"),
            },
            Seeds::PerExperiment => f.write_str("each experiment's default"),
        }
    }
}

/// A `--vary` knob and its values, as the settings table shows them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct KnobValues {
    pub flag: String,
    pub values: Vec<String>,
}

/// One setting of the plan: its runs' folder (relative, `/`-separated),
/// experiment and seeds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PlannedSetting {
    pub folder: String,
    pub experiment: Experiment,
    pub seeds: SeedRange,
}

/// What a reproduction compares its runs with.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReportPlan {
    pub epochs: Option<i64>,
    pub margin: f64,
    /// `--reference`, absolute; `None` for the copy built into binclass.
    pub reference: Option<PathBuf>,
}

/// A command's whole plan, equal across its shards.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FolderPlan {
    /// A sweep's `--vary` knobs; none for a plain sweep or a reproduction.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub knobs: Vec<KnobValues>,
    /// Read by people too, in a refused `--resume`'s message.
    pub seeds: Seeds,
    pub settings: Vec<PlannedSetting>,
    /// A reproduction's report; `None` for a sweep.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub report: Option<ReportPlan>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub format: String,
    pub version: u32,
    pub command: FolderCommand,
    /// The slice this folder trains, if the command was sharded.
    pub shard: Option<Shard>,
    pub plan: FolderPlan,
    pub finished: bool,
    /// Seconds each part took to train (a reproduction's experiments and
    /// curves), summed by `merge` for the report.
    #[serde(default)]
    pub timings: Vec<(String, f64)>,
}

/// How a command takes its folder.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Takeover {
    /// A folder holding no other command's manifest.
    New,
    /// Replacing what the command in its manifest wrote.
    Overwrite,
    /// Continuing the command in its manifest, which must be this one.
    Resume,
}

impl Takeover {
    /// How a command given `--resume` and `--overwrite` takes its folder.
    pub fn of(resume: bool, overwrite: bool) -> Takeover {
        match (resume, overwrite) {
            (true, _) => Takeover::Resume,
            (_, true) => Takeover::Overwrite,
            _ => Takeover::New,
        }
    }
}

/// The most foreign entries an `--overwrite` refusal names.
const NAMED: usize = 5;

impl FolderPlan {
    /// Each setting's folder in `dir` with its experiment and seeds.
    pub fn settings_in<'a>(
        &'a self,
        dir: &'a Path,
    ) -> impl Iterator<Item = (PathBuf, &'a PlannedSetting)> + 'a {
        self.settings.iter().map(move |s| (dir.join(&s.folder), s))
    }

    /// The setting whose runs sit in `folder` (as the plan names it).
    pub fn setting(&self, folder: &str) -> Option<&PlannedSetting> {
        self.settings.iter().find(|s| s.folder == folder)
    }

    /// Every run CSV the plan names in `dir`, whether or not it exists.
    pub fn csvs(&self, dir: &Path) -> Vec<PathBuf> {
        self.settings_in(dir)
            .flat_map(|(at, s)| {
                let name = s.experiment.name.clone();
                s.seeds
                    .seeds()
                    .map(move |seed| layout::seed_csv(&at, &name, seed))
            })
            .collect()
    }

    /// Every file (and folder, after its contents) the plan's command may
    /// write in `dir`, whether or not it exists, and the temporaries a kill
    /// left of them.
    pub fn written(&self, dir: &Path) -> Vec<PathBuf> {
        let (mut files, mut folders) = self.files_and_folders(dir);
        files.extend(self.temporaries_among(dir, &files));
        files.sort();
        // Deepest folders first, so each is empty (if only ours were there) when reached.
        folders.sort_by_key(|f| std::cmp::Reverse(f.components().count()));
        folders.dedup();
        files.extend(folders.into_iter().filter(|f| f != dir));
        files
    }

    /// The temporaries of the plan's files in `dir`: what a writer killed
    /// between link and rename left ([`crate::outputs::temporaries_in`]).
    pub fn temporaries(&self, dir: &Path) -> Vec<PathBuf> {
        self.temporaries_among(dir, &self.files(dir))
    }

    /// The temporaries of `files` (the plan's, sorted) and of batch
    /// checkpoints, which the plan does not name ahead, in its settings'
    /// folders: each folder listed once.
    fn temporaries_among(&self, dir: &Path, files: &[PathBuf]) -> Vec<PathBuf> {
        let settings: HashSet<PathBuf> = self.settings_in(dir).map(|(at, _)| at).collect();
        let folders: BTreeSet<&Path> = files.iter().filter_map(|f| f.parent()).collect();
        (folders.into_iter())
            .flat_map(|at| {
                let batch = settings.contains(at);
                crate::outputs::temporaries_in(at, |n| {
                    (batch && layout::is_batch_checkpoint(n))
                        || files.binary_search(&at.join(n)).is_ok()
                })
            })
            .collect()
    }

    /// The files the plan names in `dir`, with the batch checkpoints there
    /// and without temporaries, whether or not they exist.
    pub fn files(&self, dir: &Path) -> Vec<PathBuf> {
        self.files_and_folders(dir).0
    }

    /// [`FolderPlan::files`], and the plan's folders.
    fn files_and_folders(&self, dir: &Path) -> (Vec<PathBuf>, Vec<PathBuf>) {
        let mut files = vec![];
        let mut folders = vec![layout::reproduction_runs_dir(dir), layout::figures(dir)];
        for (at, s) in self.settings_in(dir) {
            files.extend(layout::sweep_files(
                &at,
                &s.experiment.name,
                s.seeds.seeds(),
            ));
            files.extend(layout::batch_checkpoints(&at).unwrap_or_default());
            if let Some(label) = layout::reproduction_label(&s.folder) {
                files.extend([
                    layout::figure(dir, label),
                    layout::boundary_figure(dir, label),
                    layout::finals_figure(dir, label),
                ]);
            }
            let inner: Vec<PathBuf> = Path::new(&s.folder)
                .ancestors()
                .map(|a| dir.join(a))
                .collect();
            files.extend(inner.iter().map(|f| layout::summary(f)));
            folders.extend(inner);
        }
        files.extend([layout::report(dir), layout::manifest(dir)]);
        // A setting's summary is both its runs' and its folder's.
        files.sort();
        files.dedup();
        (files, folders)
    }

    /// What in `dir` the plan does not name (at most [`NAMED`], then `…`),
    /// found by walking the folder; empty if it holds only the plan's files.
    pub fn foreign(&self, dir: &Path) -> Result<Vec<String>> {
        let ours: HashSet<PathBuf> = self.written(dir).into_iter().collect();
        let mut found = vec![];
        let mut stack = vec![dir.to_path_buf()];
        while let Some(at) = stack.pop() {
            let mut entries = layout::paths_in(&at)
                .with_context(|| format!("cannot read folder {}", at.display()))?;
            entries.sort();
            for p in entries {
                let is_dir = p.symlink_metadata().is_ok_and(|m| m.is_dir());
                if !ours.contains(&p) {
                    found.push(p.display().to_string());
                } else if is_dir {
                    stack.push(p);
                }
                if found.len() > NAMED {
                    found[NAMED] = "…".into();
                    found.truncate(NAMED + 1);
                    return Ok(found);
                }
            }
        }
        Ok(found)
    }

    /// Whether `--resume` continues it: a `--vary` grid keeps no checkpoints.
    fn resumable(&self) -> bool {
        self.knobs.is_empty()
    }
}

impl Manifest {
    pub fn new(command: FolderCommand, shard: Option<Shard>, plan: FolderPlan) -> Self {
        Manifest {
            format: FORMAT.into(),
            version: VERSION,
            command,
            shard,
            plan,
            finished: false,
            timings: vec![],
        }
    }

    pub fn write(&self, dir: &Path) -> Result<()> {
        let text = serde_json::to_string_pretty(self)? + "\n";
        crate::outputs::write_atomic(&layout::manifest(dir), text.as_bytes())
    }

    /// The manifest in `dir`, or `None` where there is none.
    pub fn find(dir: &Path) -> Result<Option<Self>> {
        let path = layout::manifest(dir);
        let text = match std::fs::read_to_string(&path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            r => r.with_context(|| format!("cannot read {}", path.display()))?,
        };
        let m = Self::parse(&text).with_context(|| format!("{}", path.display()))?;
        if let Some(Shard { index, count }) = m.shard.filter(|s| s.index >= s.count) {
            let path = path.display();
            bail!("{path} is not a binclass manifest: shard {index}/{count} (K/N needs K < N)");
        }
        Ok(Some(m))
    }

    /// A manifest from its text, of this version or an older one.
    fn parse(text: &str) -> Result<Self> {
        let value: serde_json::Value =
            serde_json::from_str(text).context("not a binclass manifest (not JSON)")?;
        ensure!(
            value["format"] == FORMAT,
            "not a binclass manifest (no `format` \"{FORMAT}\")"
        );
        match value["version"].as_u64() {
            None => from_v1(value).context("not a binclass manifest of version 1"),
            Some(v) if v == VERSION as u64 => serde_json::from_value(value)
                .map_err(|e| anyhow::anyhow!("not a binclass manifest: {e}")),
            Some(v) => bail!(
                "a binclass manifest of version {v}, which this binclass (version {VERSION}) cannot read; use a newer binclass"
            ),
        }
    }

    /// The manifest a shard's folder holds, finished.
    pub fn read_shard(dir: &Path) -> Result<(Self, Shard)> {
        let m = Self::find(dir)?.with_context(|| {
            format!(
                "{} is not a shard's folder: it has no {}",
                dir.display(),
                layout::MANIFEST
            )
        })?;
        let Some(shard) = m.shard else {
            bail!(
                "{} holds an unsharded {}, not a shard",
                dir.display(),
                m.command
            );
        };
        ensure!(
            m.finished,
            "{} holds shard {}/{} unfinished; finish it with its command and --resume",
            dir.display(),
            shard.index,
            shard.count
        );
        Ok((m, shard))
    }

    /// What this command line is, as the user would give it.
    fn described(&self) -> String {
        match self.shard {
            Some(s) => format!("{} --shard {}/{}", self.command, s.index, s.count),
            None => format!("{} without --shard", self.command),
        }
    }

    /// Whether `--resume` continues what it holds.
    fn resumable(&self) -> bool {
        self.command != FolderCommand::Sweep || self.plan.resumable()
    }

    /// Checks, writing nothing, that this command may take `dir` as `claim`
    /// says: an error names the command line the folder holds, or what in
    /// it `--overwrite` would have to delete that is not its command's.
    /// Returns the manifest found there, if any.
    pub fn check(&self, dir: &Path, claim: Takeover) -> Result<Option<Manifest>> {
        ensure!(
            claim != Takeover::Resume || dir.exists(),
            "{}: no such folder, so no {} to resume",
            dir.display(),
            self.command
        );
        let found = Self::find(dir)?;
        match (claim, &found) {
            (Takeover::Resume, None) => bail!(
                "{} holds no {} to resume (no {}); run it without --resume",
                dir.display(),
                self.command,
                layout::MANIFEST
            ),
            (Takeover::Resume, Some(m)) if (m.command, m.shard) != (self.command, self.shard) => {
                bail!(
                    "{} holds a {} ({}); resume it with that command line",
                    dir.display(),
                    m.described(),
                    layout::MANIFEST
                )
            }
            (Takeover::Resume, Some(m)) if let Some(key) = plan_difference(&m.plan, &self.plan) => {
                bail!(
                    "{} holds a {} of other settings: its {key} ({}); resume it with the command line that started it",
                    dir.display(),
                    m.command,
                    layout::MANIFEST
                )
            }
            (Takeover::Overwrite, Some(m)) if m.command != self.command => bail!(
                "{} holds a {}, not a {}: --overwrite replaces only what this command wrote; choose another folder, or remove that one yourself",
                dir.display(),
                m.described(),
                self.command
            ),
            (Takeover::New, Some(m)) if m.resumable() => bail!(
                "{} already holds a {}; pass --resume to continue it, or --overwrite to replace it",
                dir.display(),
                m.described()
            ),
            (Takeover::New, Some(m)) => bail!(
                "{} already holds a {} of a grid (--vary), which cannot be resumed; pass --overwrite to replace it",
                dir.display(),
                m.described()
            ),
            (Takeover::Overwrite, _) if dir.is_dir() => {
                // Only what a manifest names is ours to delete; without one,
                // nothing in the folder is, and this command's own files
                // (same names) would replace whatever they are.
                let foreign = match &found {
                    Some(m) => m.plan.foreign(dir)?,
                    None => FolderPlan::empty().foreign(dir)?,
                };
                ensure!(
                    foreign.is_empty(),
                    "{} holds what no {} wrote ({}): --overwrite deletes only its command's files, never anything else; move those away, or choose another folder",
                    dir.display(),
                    found.as_ref().map_or(self.command, |m| m.command),
                    foreign.join(", ")
                );
                Ok(found)
            }
            _ => Ok(found),
        }
    }

    /// Takes `dir` for this command (checked by [`Manifest::check`]): with
    /// `Overwrite`, first removes every file the manifest's plan names;
    /// with `Resume`, the temporaries a kill left of them; then writes this
    /// manifest, unfinished.
    pub fn claim(&self, dir: &Path, claim: Takeover) -> Result<()> {
        if let Some(old) = Self::find(dir)? {
            match claim {
                Takeover::Overwrite => {
                    for path in old.plan.written(dir) {
                        remove(&path)?;
                    }
                }
                Takeover::Resume => {
                    for path in old.plan.temporaries(dir) {
                        crate::outputs::remove_file(&path)?;
                    }
                }
                Takeover::New => {}
            }
        }
        if claim != Takeover::Resume {
            self.write(dir)?;
        }
        Ok(())
    }

    /// Marks the folder finished, with the parts' timings.
    pub fn finish(mut self, dir: &Path, timings: Vec<(String, f64)>) -> Result<()> {
        self.finished = true;
        self.timings = timings;
        self.write(dir)
    }
}

impl FolderPlan {
    /// The plan of no command: a folder holding only a manifest-less nothing.
    fn empty() -> Self {
        FolderPlan {
            knobs: vec![],
            seeds: Seeds::PerExperiment,
            settings: vec![],
            report: None,
        }
    }
}

/// Removes a file, or a folder if it is empty; what is not there, or a
/// folder still holding what is not ours, is left.
fn remove(path: &Path) -> Result<()> {
    let done = match std::fs::symlink_metadata(path) {
        Err(_) => return Ok(()),
        Ok(m) if m.is_dir() => match std::fs::remove_dir(path) {
            Err(e) if e.kind() == std::io::ErrorKind::DirectoryNotEmpty => Ok(()),
            r => r,
        },
        Ok(_) => std::fs::remove_file(path),
    };
    done.with_context(|| format!("cannot remove {}", path.display()))
}

/// A manifest of version 1, as binclass wrote it before versions (up to
/// 461b9f0 and after): the plan's `seeds` a sweep's `[first, last]`, a
/// reproduction's count or `"default"`; a reproduction's settings each a
/// count from 0 (or none: the top's); its default reference the checkout's
/// `reference/keras`, which the built-in copy now is.
fn from_v1(mut v: serde_json::Value) -> Result<Manifest> {
    use serde_json::Value;
    let range = |s: &Value| -> Result<SeedRange> {
        match s {
            Value::Array(ab) if ab.len() == 2 => Ok(SeedRange {
                first: ab[0].as_u64().context("seeds")?,
                last: ab[1].as_u64().context("seeds")?,
            }),
            n => Ok(SeedRange::count(n.as_u64().context("seeds")?)),
        }
    };
    let mut plan = v["plan"].take();
    let top = plan["seeds"].clone();
    let seeds = match &top {
        Value::String(d) if d == "default" => Seeds::PerExperiment,
        s => Seeds::Range(range(s)?),
    };
    let mut settings = vec![];
    for s in plan["settings"].as_array().context("settings")? {
        settings.push(PlannedSetting {
            folder: s["folder"].as_str().context("folder")?.into(),
            experiment: serde_json::from_value(s["experiment"].clone())?,
            seeds: range(s.get("seeds").unwrap_or(&top))?,
        });
    }
    let report = match v["command"].as_str() {
        Some("reproduce") => Some(ReportPlan {
            epochs: plan["epochs"].as_i64(),
            margin: plan["margin"].as_f64().context("margin")?,
            reference: match plan["reference"].as_str() {
                None | Some("reference/keras") => None,
                Some(p) => Some(p.into()),
            },
        }),
        _ => None,
    };
    Ok(Manifest {
        format: FORMAT.into(),
        version: VERSION,
        command: serde_json::from_value(v["command"].clone())?,
        shard: serde_json::from_value(v["shard"].clone())?,
        plan: FolderPlan {
            knobs: serde_json::from_value(plan["knobs"].take()).unwrap_or_default(),
            seeds,
            settings,
            report,
        },
        finished: v["finished"].as_bool().unwrap_or(false),
        timings: serde_json::from_value(v["timings"].take()).unwrap_or_default(),
    })
}

/// Where plan `a` first differs from `b`, with both values, if it does.
pub fn plan_difference(a: &FolderPlan, b: &FolderPlan) -> Option<String> {
    if a.seeds != b.seeds {
        return Some(format!(
            "`seeds` is {}, this command's {}",
            a.seeds, b.seeds
        ));
    }
    let value = |p| serde_json::to_value(p).unwrap_or_default();
    (a != b).then(|| differing_key(&value(a), &value(b)))
}

/// Where two plans first differ (`settings[0].experiment.lr`), with both values.
fn differing_key(a: &serde_json::Value, b: &serde_json::Value) -> String {
    use serde_json::Value;
    let mut path = String::new();
    let (mut a, mut b) = (a, b);
    loop {
        let next = match (a, b) {
            (Value::Object(x), Value::Object(y)) => x
                .keys()
                .chain(y.keys())
                .find(|k| x.get(*k) != y.get(*k))
                .map(|k| (format!(".{k}"), &a[k.as_str()], &b[k.as_str()])),
            // Into a list of settings, not of numbers: `seeds` is shown whole.
            (Value::Array(x), Value::Array(y))
                if x.len() == y.len() && x.iter().all(Value::is_object) =>
            {
                (0..x.len())
                    .find(|&i| x[i] != y[i])
                    .map(|i| (format!("[{i}]"), &x[i], &y[i]))
            }
            _ => None,
        };
        let Some((step, x, y)) = next else { break };
        path.push_str(&step);
        (a, b) = (x, y);
    }
    let short = |v: &Value| {
        Some(v.to_string())
            .filter(|t| t.len() <= 40)
            .unwrap_or("…".into())
    };
    format!(
        "`{}` is {}, this command's {}",
        path.trim_start_matches('.'),
        short(a),
        short(b)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sweep_plan(first: u64, last: u64) -> FolderPlan {
        FolderPlan {
            knobs: vec![],
            seeds: Seeds::Range(SeedRange { first, last }),
            settings: vec![PlannedSetting {
                folder: String::new(),
                experiment: Experiment::preset("baseline").unwrap(),
                seeds: SeedRange { first, last },
            }],
            report: None,
        }
    }

    /// Version 1's seeds (a sweep's pair, a reproduction's count or
    /// "default", settings with or without their own count) read as the
    /// typed plan this binclass makes for the same command line.
    #[test]
    fn a_version_1_manifest_reads_as_the_typed_plan_of_the_same_command() {
        let e = serde_json::to_value(Experiment::preset("baseline").unwrap()).unwrap();
        let sweep = serde_json::json!({"format": FORMAT, "command": "sweep", "shard": null,
            "plan": {"knobs": [], "seeds": [2, 5], "settings": [{"folder": "", "experiment": e}]},
            "finished": true, "timings": [["all", 1.5]]});
        let m = Manifest::parse(&sweep.to_string()).unwrap();
        assert_eq!(
            m,
            Manifest {
                finished: true,
                timings: vec![("all".into(), 1.5)],
                ..Manifest::new(FolderCommand::Sweep, None, sweep_plan(2, 5))
            }
        );
        let reproduction = |seeds: serde_json::Value, own: Option<u64>| {
            let mut s = serde_json::json!({"folder": "runs/baseline", "experiment": e});
            if let Some(n) = own {
                s["seeds"] = n.into();
            }
            let v = serde_json::json!({"format": FORMAT, "command": "reproduce",
                "shard": {"index": 1, "count": 2}, "finished": false,
                "plan": {"seeds": seeds, "epochs": 3, "margin": 0.02,
                    "reference": "reference/keras", "settings": [s]}});
            Manifest::parse(&v.to_string()).unwrap()
        };
        let m = reproduction(serde_json::json!("default"), Some(100));
        assert_eq!(m.plan.seeds, Seeds::PerExperiment);
        assert_eq!(m.plan.settings[0].seeds, SeedRange::count(100));
        assert_eq!(m.plan.settings[0].folder, "runs/baseline");
        assert_eq!(m.shard, Some(Shard { index: 1, count: 2 }));
        let report = m.plan.report.unwrap();
        assert_eq!((report.epochs, report.margin), (Some(3), 0.02));
        // The checkout's reference was then the default; the built-in copy is now.
        assert_eq!(report.reference, None);
        let m = reproduction(serde_json::json!(7), None);
        assert_eq!(m.plan.seeds, Seeds::Range(SeedRange::count(7)));
        assert_eq!(m.plan.settings[0].seeds, SeedRange::count(7));
    }

    #[test]
    fn a_manifest_of_a_later_version_or_another_format_is_refused_in_one_line() {
        let mut v =
            serde_json::to_value(Manifest::new(FolderCommand::Sweep, None, sweep_plan(0, 1)))
                .unwrap();
        assert!(Manifest::parse(&v.to_string()).is_ok());
        v["version"] = 9.into();
        let err = format!("{:#}", Manifest::parse(&v.to_string()).unwrap_err());
        assert!(
            err.contains("of version 9, which this binclass (version 2) cannot read"),
            "{err}"
        );
        v["format"] = "other".into();
        let err = format!("{:#}", Manifest::parse(&v.to_string()).unwrap_err());
        assert!(err.contains("not a binclass manifest"), "{err}");
    }

    /// `--overwrite` deletes only what a plan names: anything else in the
    /// folder is named, at most a few of them.
    #[test]
    fn what_a_plan_does_not_name_is_foreign() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let plan = sweep_plan(0, 1);
        std::fs::write(layout::seed_csv(d, "baseline", 0), "").unwrap();
        std::fs::write(layout::manifest(d), "").unwrap();
        assert!(plan.foreign(d).unwrap().is_empty());
        std::fs::write(layout::seed_csv(d, "baseline", 2), "").unwrap();
        for i in 0..7 {
            std::fs::create_dir_all(d.join(format!("notes{i}"))).unwrap();
        }
        let foreign = plan.foreign(d).unwrap();
        assert_eq!(foreign.len(), NAMED + 1);
        assert!(foreign[0].ends_with("baseline-seed2.csv"), "{foreign:?}");
        assert_eq!(foreign[NAMED], "…");
    }

    /// `merge` copies a plan's files: one named twice (a setting's summary
    /// is its runs' and its folder's) would be joined twice.
    #[test]
    fn a_plan_names_each_of_its_files_once() {
        let d = Path::new("s");
        let files = sweep_plan(0, 2).files(d);
        let mut once = files.clone();
        once.dedup();
        assert_eq!(files, once);
        assert_eq!(files.len(), 3 * 4 + 3, "runs, summary, report and manifest");
    }
}
