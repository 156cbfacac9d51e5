//! `binclass sweep --vary KNOB=V1,V2,…`: settings of one experiment (the
//! Cartesian product of the knobs' values), each over the same seeds, each
//! in a folder of its own, with one `summary.csv` over all of them.
//!
//! A setting is the experiment `train` resolves with that knob's flag
//! (`--vary noise-rate=0.1,0.2` is `train --noise-rate 0.1` and `… 0.2`),
//! parsed and checked by the settings table ([`Experiment::set`], the same
//! bounds); its runs are a sweep's ([`crate::sweep::Job`]), and settings
//! that differ only in their data or learning rate share batched models
//! ([`crate::sweep::train_together`]).

use std::fmt::Write as _;

use std::ops::{Range, RangeInclusive};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail, ensure};
use indicatif::ProgressBar;

use crate::callbacks::SeedSummary;
use crate::config::{Experiment, VARY, Vary, default_units};
use crate::manifest::{
    FolderCommand, FolderPlan, KnobValues, Manifest, PlannedSetting, SeedRange, Seeds, Takeover,
};
use crate::shard::{self, Shard, Unit};
use crate::stats::mean_sd_text;
use crate::sweep::{Batch, Finals, Job, batches_together, final_and_best, write_summary_of};
use crate::{layout, outputs};

/// The `--vary` knobs whose values share batched models (`true`) or train
/// in batches of their own (`false`), in the settings table's order.
fn knobs(sharing: bool) -> Vec<&'static str> {
    let knob = |v: Vary| v != Vary::Not && v.shares_batches() == sharing;
    VARY.iter()
        .filter(|(_, v)| knob(*v))
        .map(|(f, _)| *f)
        .collect()
}

/// Every `--vary` knob: those sharing batched models first.
fn all_knobs() -> Vec<&'static str> {
    [knobs(true), knobs(false)].concat()
}

/// The help of `sweep --vary`, naming the knobs and how they train.
pub fn vary_help() -> String {
    format!(
        "Vary a setting: KNOB=V1,V2,… (repeatable: every combination of their values), \
         each setting over every seed, in a folder of its own (`DIR/noise-rate=0.2`), with one \
         summary.csv over them. Knobs: {} (sharing batched models); {} (batches of their own)",
        knobs(true).join(", "),
        knobs(false).join(", ")
    )
}

/// Each setting's knob values and its seeds' summaries.
pub type Settings = Vec<(Vec<String>, Finals)>;

/// One varied knob and its values, each as the settings table shows it.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Knob {
    pub flag: &'static str,
    pub values: Vec<String>,
}

/// One point of the grid: each knob's value, and the experiment it makes.
#[derive(Clone, Debug)]
pub struct GridPoint {
    pub values: Vec<String>,
    pub exp: Experiment,
}

/// The knobs and every setting they make, first knob outermost.
#[derive(Clone, Debug)]
pub struct Grid {
    pub knobs: Vec<Knob>,
    pub settings: Vec<GridPoint>,
}

/// `KNOB=V1,V2,…`, each value parsed and checked as its flag would be.
pub fn parse_knob(base: &Experiment, spec: &str) -> Result<Knob> {
    let Some((name, list)) = spec.split_once('=') else {
        bail!("--vary {spec}: expected KNOB=V1,V2,… (e.g. noise-rate=0,0.1,0.2)");
    };
    let (name, knobs) = (name.trim(), all_knobs());
    let Some(&flag) = knobs.iter().find(|k| **k == name) else {
        bail!(
            "--vary {spec}: '{name}' cannot be varied; choose one of {}",
            knobs.join(", ")
        );
    };
    let mut values: Vec<String> = vec![];
    let mut settings: Vec<Experiment> = vec![];
    for text in list.split(',') {
        if text.trim().is_empty() {
            bail!("--vary {spec}: an empty value in the list; give KNOB=V1,V2,…");
        }
        let mut e = base.clone();
        e.set(flag, text)
            .and_then(|()| e.validate())
            .with_context(|| format!("--vary {spec}"))?;
        let shown = shown_value(&e, flag);
        // Compared as settings, not as text: -0 and 0 are shown apart but
        // train alike, and would make two folders of one setting.
        if let Some(at) = settings.iter().position(|s| *s == e) {
            let other = &values[at];
            ensure!(*other != shown, "--vary {spec}: {shown} is listed twice");
            bail!("--vary {spec}: {other} and {shown} are the same value; list it once");
        }
        values.push(shown);
        settings.push(e);
    }
    Ok(Knob { flag, values })
}

/// A setting's value as `binclass experiments` and the records show it.
fn shown_value(e: &Experiment, flag: &str) -> String {
    e.settings()
        .into_iter()
        .find(|(f, _)| *f == flag)
        .map(|(_, v)| v)
        .unwrap_or_default()
}

impl Grid {
    /// The grid of `--vary` flags over `base` (the preset with the other
    /// overrides, `given`: their flags). A knob may not be given as a flag
    /// too; with `--units` given, the width does not follow a varied
    /// `features` (as in [`Experiment::resolve`]).
    pub fn parse(base: &Experiment, specs: &[String], given: &[&str]) -> Result<Grid> {
        let mut knobs: Vec<Knob> = vec![];
        for spec in specs {
            let knob = parse_knob(base, spec)?;
            ensure!(
                !given.contains(&knob.flag),
                "--vary {0} and --{0} are both given; give its values in --vary only",
                knob.flag
            );
            ensure!(
                knobs.iter().all(|k| k.flag != knob.flag),
                "--vary {} is given twice; give each knob once, with all its values",
                knob.flag
            );
            knobs.push(knob);
        }
        let mut settings = vec![GridPoint {
            values: vec![],
            exp: base.clone(),
        }];
        for knob in &knobs {
            settings = settings
                .iter()
                .flat_map(|s| knob.values.iter().map(move |v| (s, v)))
                .map(|(s, v)| {
                    let mut exp = s.exp.clone();
                    exp.set(knob.flag, v)?;
                    let values = [s.values.clone(), vec![v.clone()]].concat();
                    Ok(GridPoint { values, exp })
                })
                .collect::<Result<_>>()?;
        }
        // The width follows the features unless it is set, by flag or knob.
        let units_set = given.contains(&"units") || knobs.iter().any(|k| k.flag == "units");
        for s in &mut settings {
            if !units_set {
                s.exp.units = default_units(s.exp.features);
            }
            s.exp
                .validate()
                .with_context(|| format!("--vary setting {}", folder(&knobs, &s.values)))?;
        }
        Ok(Grid { knobs, settings })
    }

    pub fn flags(&self) -> Vec<&'static str> {
        self.knobs.iter().map(|k| k.flag).collect()
    }

    /// What `--shard` cuts: each setting's `seeds` replicas, at its work.
    pub fn units(&self, seeds: u64) -> Vec<Unit> {
        let unit = |s: &GridPoint| Unit {
            replicas: seeds,
            work: s.exp.work(),
        };
        self.settings.iter().map(unit).collect()
    }
}

/// Knobs as the HParams plugin's hyperparameters: names and values.
pub fn hparams(knobs: &[Knob]) -> Vec<(String, Vec<String>)> {
    knobs
        .iter()
        .map(|k| (k.flag.to_string(), k.values.clone()))
        .collect()
}

/// A setting's folder name: `noise-rate=0.2`, `noise-rate=0.2,scale=10`.
pub fn folder(knobs: &[Knob], values: &[String]) -> String {
    layout::setting(&knobs.iter().map(|k| k.flag).collect::<Vec<_>>(), values)
}

/// The printed table (and REPORT.md's, as Markdown): per setting, its
/// seeds' final and best validation accuracy as mean ± sd.
pub fn table(flags: &[&str], rows: &[(Vec<String>, Finals)]) -> String {
    let mut t = String::new();
    let head = [flags, &["seeds", "final val_binary_accuracy", "best"]].concat();
    let _ = writeln!(
        t,
        "| {} |\n|{}",
        head.join(" | "),
        "---|".repeat(head.len())
    );
    for (values, finals) in rows {
        let (fin, best) = final_and_best(finals);
        // Cells joined as the header's are: a sharded seeds sweep has no
        // knob, and its rows must not start with an empty one.
        let mut cells = values.clone();
        cells.extend([
            finals.len().to_string(),
            mean_sd_text(&fin),
            mean_sd_text(&best),
        ]);
        let _ = writeln!(t, "| {} |", cells.join(" | "));
    }
    t
}

/// A varied sweep's `summary.csv` read back: its knobs, and per setting
/// (rows in the file's order) its values and seeds' summaries.
pub fn read_summary(path: &Path) -> Result<(Vec<String>, Settings)> {
    let bad = || format!("{} is not a sweep's summary.csv", path.display());
    let mut r = csv::Reader::from_path(path).with_context(bad)?;
    let header = r.headers().with_context(bad)?.clone();
    let k = header.iter().position(|h| h == "seed").with_context(bad)?;
    let mut rows: Settings = vec![];
    for rec in r.records() {
        let rec = rec.with_context(bad)?;
        let field = |i: usize| rec.get(i).unwrap_or_default();
        let values: Vec<String> = (0..k).map(|i| field(i).to_string()).collect();
        let seed = field(k).parse().ok().with_context(bad)?;
        let summary = (field(k + 4) == "true")
            .then(|| -> Option<SeedSummary> {
                Some(SeedSummary {
                    final_acc: field(k + 1).parse().ok()?,
                    best_acc: field(k + 2).parse().ok()?,
                    best_epoch: field(k + 3).parse().ok()?,
                })
            })
            .map(|s| s.with_context(bad))
            .transpose()?;
        match rows.last_mut() {
            Some((v, f)) if *v == values => f.push((seed, summary)),
            _ => rows.push((values, vec![(seed, summary)])),
        }
    }
    Ok((header.iter().take(k).map(String::from).collect(), rows))
}

/// A sweep over a grid (or one shard of a sweep): a job per setting, each
/// in its folder under `dir`, and the files that join them.
#[derive(Clone)]
pub struct GridSweep {
    pub dir: PathBuf,
    pub grid: Grid,
    /// Each setting with seeds in this shard: its values and its job.
    pub jobs: Vec<(Vec<String>, Job)>,
    pub shard: Option<Shard>,
    /// Its jobs' share of the whole grid's work (1 unsharded).
    pub share: f64,
    seeds: RangeInclusive<u64>,
    /// How the `sweep` command takes the folder (its manifest); `None` for
    /// a reproduction's curve, whose folder is the reproduction's.
    pub claim: Option<Takeover>,
}

impl GridSweep {
    /// `base`'s seeds over every setting of `grid` (none: `base` alone),
    /// restricted to `shard`'s slice; each job's folder is its setting's.
    pub fn new(base: &Job, grid: Grid, shard: Option<Shard>) -> Result<Self> {
        let parts = shard::ranges(shard, &grid.units(base.count()))?;
        let mut sweep = Self::in_parts(base, grid, &parts);
        sweep.shard = shard;
        sweep.claim = Some(Takeover::of(base.resume, base.overwrite));
        Ok(sweep)
    }

    /// The replicas `parts[i]` of each setting i's seeds (numbered from 0,
    /// as [`Shard::split`] gives them; a reproduction's shard): no manifest
    /// of its own.
    pub fn in_parts(base: &Job, grid: Grid, parts: &[Range<u64>]) -> Self {
        let mut base = base.clone();
        // The knobs are a varied sweep's hyperparameters, unless the
        // command set its own (a reproduction's, over all its curves).
        if base.extras.tensorboard.hparams.is_empty() {
            base.extras.tensorboard.hparams = hparams(&grid.knobs);
        }
        let mut jobs = vec![];
        for (setting, part) in grid.settings.iter().zip(parts) {
            if let Some(seeds) = shard::seeds_in(&base.seeds, part) {
                let job = Job {
                    exp: setting.exp.clone(),
                    seeds,
                    ..base.clone()
                };
                jobs.push((setting.values.clone(), job));
            }
        }
        let share = shard::share(&grid.units(base.count()), parts);
        let mut sweep = GridSweep {
            dir: base.dir.clone(),
            grid,
            jobs,
            shard: None,
            share,
            seeds: base.seeds.clone(),
            claim: None,
        };
        sweep.place(&base.dir.clone());
        sweep
    }

    /// The replicas it trains: settings × seeds (in this shard).
    pub fn replicas(&self) -> u64 {
        self.jobs.iter().map(|(_, j)| j.count()).sum()
    }

    fn varied(&self) -> bool {
        !self.grid.knobs.is_empty()
    }

    /// Puts the sweep in `dir`, each setting in its folder there.
    fn place(&mut self, dir: &Path) {
        self.dir = dir.to_path_buf();
        for (values, job) in &mut self.jobs {
            job.setting = folder(&self.grid.knobs, values);
            job.dir = match values.is_empty() {
                true => dir.to_path_buf(),
                false => dir.join(&job.setting),
            };
        }
    }

    /// What `merge` checks its shards against: the command's settings and seeds.
    pub fn plan(&self) -> FolderPlan {
        FolderPlan {
            knobs: self
                .grid
                .knobs
                .iter()
                .map(|k| KnobValues {
                    flag: k.flag.into(),
                    values: k.values.clone(),
                })
                .collect(),
            seeds: Seeds::Range(SeedRange::of(&self.seeds)),
            settings: self.planned_settings("", SeedRange::of(&self.seeds)),
            report: None,
        }
    }

    /// Each setting's folder (below `under`), experiment and `seeds`,
    /// which `merge` checks every record against.
    pub fn planned_settings(&self, under: &str, seeds: SeedRange) -> Vec<PlannedSetting> {
        self.grid
            .settings
            .iter()
            .map(|s| {
                let name = folder(&self.grid.knobs, &s.values);
                let folder = match (under, name.as_str()) {
                    ("", n) | (n, "") => n.to_string(),
                    (u, n) => format!("{u}/{n}"),
                };
                PlannedSetting {
                    folder,
                    experiment: s.exp.clone(),
                    seeds,
                }
            })
            .collect()
    }

    /// The manifest the `sweep` command writes first in its folder.
    fn manifest(&self) -> Manifest {
        Manifest::new(FolderCommand::Sweep, self.shard, self.plan())
    }

    /// Checks the folder's manifest, every job and the grid's own files;
    /// creates nothing.
    pub fn check(&self) -> Result<()> {
        // The manifest first: another command's folder is named as that,
        // not as a folder holding none of this command's runs.
        if let Some(claim) = self.claim {
            self.manifest().check(&self.dir, claim)?;
        }
        for (_, job) in &self.jobs {
            job.check()?;
        }
        if self.varied() {
            let overwrite = self.claim != Some(Takeover::New);
            outputs::check_output(&layout::summary(&self.dir), "summary", overwrite)?;
        }
        Ok(())
    }

    /// Checks, creating nothing, what [`GridSweep::claim_new_dir`] checks
    /// before it claims a folder.
    pub fn check_new_dir(&self) -> Result<()> {
        // With the command's own flags: the trial below replaces files.
        for (_, job) in &self.jobs {
            job.check_extras()?;
        }
        let mut trial = self.clone();
        for (_, job) in &mut trial.jobs {
            job.overwrite = true;
        }
        // The folder it will claim is new: no manifest there to check (the
        // one at `dir` may be another sweep's, started together).
        trial.claim = None;
        trial.check()
    }

    /// Claims a folder that did not exist, the first free `dir`, `dir-1`,
    /// … once its names are checked: two sweeps started together never
    /// share one.
    pub fn claim_new_dir(&mut self) -> Result<()> {
        self.check_new_dir()?;
        let dir = outputs::claim_new_dir(&self.dir)?;
        self.place(&dir);
        Ok(())
    }

    /// Refuses, touching nothing, files it may not replace; then makes the folders.
    pub fn prepare(&self) -> Result<()> {
        self.check()?;
        if let Some(claim) = self.claim {
            std::fs::create_dir_all(&self.dir)
                .with_context(|| format!("cannot create folder {}", self.dir.display()))?;
            // Before anything there is replaced or cut back: a sweep still
            // writing the folder (or resuming it) would interleave its rows.
            outputs::hold(&self.dir)?;
            self.manifest().claim(&self.dir, claim)?;
        }
        for (_, job) in &self.jobs {
            job.prepare()?;
        }
        match &self.jobs[..] {
            [(_, job), ..] if self.claim.is_some() => job.extras.tensorboard.write_experiment(),
            _ => Ok(()),
        }
    }

    pub fn seed_epochs(&self) -> u64 {
        self.jobs.iter().map(|(_, j)| j.seed_epochs()).sum()
    }

    /// The batches `run` trains, reading nothing but a `--resume`'s folder.
    pub fn batches(&self) -> Result<Vec<Batch>> {
        match self.jobs.as_slice() {
            [(_, job)] if !self.varied() => Ok(job.plan()?.1),
            jobs => {
                let only: Vec<Job> = jobs.iter().map(|(_, j)| j.clone()).collect();
                Ok(batches_together(&only)
                    .into_iter()
                    .map(|(b, _)| b)
                    .collect())
            }
        }
    }

    /// What `--dry-run` prints of it: each setting's seeds and epochs, then
    /// each batch of replicas trained together.
    pub fn describe(&self) -> Result<Vec<String>> {
        let mut lines: Vec<String> = self.jobs.iter().map(|(_, j)| j.describe()).collect();
        let batches = self.batches()?;
        lines.extend(batches.iter().map(|b| format!("batch: {}", b.describe())));
        Ok(lines)
    }

    /// Trains every setting (a plain sweep as `sweep` does, with
    /// `--resume`), writes the grid's `summary.csv` and marks the manifest
    /// finished; each setting's values and seeds' summaries.
    pub fn run(&self, bar: &ProgressBar) -> Result<Settings> {
        if self.jobs.is_empty() {
            return Ok(vec![]); // none of its replicas is in this shard
        }
        let finals = match self.jobs.as_slice() {
            [(values, job)] if !self.varied() => vec![(values.clone(), job.run(bar)?)],
            jobs => {
                let only: Vec<Job> = jobs.iter().map(|(_, j)| j.clone()).collect();
                let values = jobs.iter().map(|(v, _)| v.clone());
                values
                    .zip(crate::sweep::train_together(&only, bar)?)
                    .collect()
            }
        };
        if self.varied() {
            let rows: Vec<(Vec<String>, &Finals)> =
                finals.iter().map(|(v, f)| (v.clone(), f)).collect();
            write_summary_of(&layout::summary(&self.dir), &self.grid.flags(), &rows)?;
        }
        if self.claim.is_some() {
            self.manifest().finish(&self.dir, vec![])?;
        }
        Ok(finals)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> Experiment {
        Experiment::preset("baseline").unwrap()
    }

    #[test]
    fn a_grid_is_the_product_of_its_knobs_first_outermost() {
        let g = Grid::parse(
            &base(),
            &["noise-rate=0,0.1".into(), "features=2,5".into()],
            &[],
        )
        .unwrap();
        let names: Vec<String> = g
            .settings
            .iter()
            .map(|s| folder(&g.knobs, &s.values))
            .collect();
        assert_eq!(
            names,
            [
                "noise-rate=0,features=2",
                "noise-rate=0,features=5",
                "noise-rate=0.1,features=2",
                "noise-rate=0.1,features=5"
            ]
        );
        // The width follows the features, as `train --features 5` has it.
        assert_eq!(g.settings[1].exp.units, 7);
        assert_eq!(g.settings[2].exp.noise_rate, 0.1);
    }

    #[test]
    fn the_knobs_are_the_settings_tables_varied_ones_sharing_batches_first() {
        let sharing = ["noise-rate", "scale", "shift", "normalize", "lr"];
        assert_eq!(knobs(true), sharing);
        let own = [
            "samples",
            "features",
            "split",
            "hidden-layers",
            "units",
            "activation",
            "batch-size",
            "epochs",
        ];
        assert_eq!(knobs(false), own);
        let help = vary_help();
        assert!(help.contains(
            "Knobs: noise-rate, scale, shift, normalize, lr (sharing batched models); samples,"
        ));
        assert!(
            help.ends_with("batch-size, epochs (batches of their own)"),
            "{help}"
        );
    }

    #[test]
    fn values_are_named_as_the_settings_table_shows_them() {
        let k = parse_knob(&base(), "lr=0.010, 1e-3").unwrap();
        assert_eq!(k.values, ["0.01", "0.001"]);
        let k = parse_knob(&base(), "normalize=none,standard").unwrap();
        assert_eq!(k.values, ["none", "standard"]);
    }

    #[test]
    fn values_equal_as_numbers_are_refused_as_one_value_listed_twice() {
        for (spec, expected) in [
            ("scale=-0,0", "-0 and 0 are the same value; list it once"),
            (
                "noise-rate=0,-0.0",
                "0 and -0 are the same value; list it once",
            ),
            ("shift=1,-0,1e0", "1 is listed twice"),
        ] {
            let err = format!("{:#}", parse_knob(&base(), spec).unwrap_err());
            assert!(err.contains(expected), "{spec}: {err}");
        }
    }

    #[test]
    fn bad_knobs_and_values_are_one_line_errors() {
        for (spec, expected) in [
            ("nope=1,2", "'nope' cannot be varied"),
            ("init=keras", "'init' cannot be varied"),
            ("noise-rate", "expected KNOB=V1,V2"),
            ("noise-rate=", "an empty value"),
            ("noise-rate=0.1,,0.2", "an empty value"),
            ("noise-rate=0.1,x", "expected a number"),
            ("noise-rate=0.1,2", "--noise-rate must be in [0, 1], got 2"),
            ("epochs=0", "--epochs must be a whole number in 1..="),
            ("lr=0.1,0.10", "0.1 is listed twice"),
        ] {
            let err = format!("{:#}", parse_knob(&base(), spec).unwrap_err());
            assert!(err.contains(expected), "{spec}: {err}");
            assert!(!err.contains('\n'), "{spec}: {err}");
        }
        let twice = Grid::parse(&base(), &["lr=0.1".into(), "lr=0.2".into()], &[]);
        let err = twice.unwrap_err().to_string();
        assert!(err.contains("--vary lr is given twice"), "{err}");
        let both = Grid::parse(&base(), &["lr=0.1".into()], &["epochs", "lr"]);
        let err = both.unwrap_err().to_string();
        assert!(err.contains("--vary lr and --lr are both given"), "{err}");
        // --units given: the width stays as given when the features vary.
        let g = Grid::parse(&base(), &["features=2,5".into()], &["units"]).unwrap();
        assert_eq!(g.settings[1].exp.units, 3);
        let varied = ["features=2,5".into(), "units=4,6".into()];
        let g = Grid::parse(&base(), &varied, &[]).unwrap();
        let units: Vec<i64> = g.settings.iter().map(|s| s.exp.units).collect();
        assert_eq!(units, [4, 6, 4, 6]);
    }
}
