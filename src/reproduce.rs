//! `binclass reproduce`: every experiment of the article over N seeds, the
//! comparison with the committed Keras runs, the figures, and a report.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, bail};

use crate::callbacks::{Extras, VERSIONS};
use crate::compare::{self, Format};
use crate::config::{Experiment, Normalize, Overrides, PRESETS, value_name};
use crate::grid::{self, Grid, GridSweep};
use crate::manifest::{
    self, FolderCommand, FolderPlan, Manifest, PlannedSetting, ReportPlan, SeedRange, Seeds,
    Takeover,
};
use crate::shard::{self, Shard, Unit};
use crate::stats::mean_sd_text;
use crate::sweep::{self, Finals, Job};
use crate::{device, layout};

/// The interpreter that draws figures: `BINCLASS_PLOT_PYTHON`, else the
/// python of the environment binclass was built against (scripts/setup.sh's,
/// recorded by build.rs).
fn python() -> PathBuf {
    std::env::var_os("BINCLASS_PLOT_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("BINCLASS_VENV_PYTHON")))
}

/// Refuses, before anything is trained, a python that cannot draw.
pub fn check_python() -> Result<()> {
    let py = python();
    let lacks = match Command::new(&py).args(["-c", "import matplotlib"]).output() {
        Err(_) => "is missing",
        Ok(o) if !o.status.success() => "lacks matplotlib",
        Ok(_) => return Ok(()),
    };
    bail!(
        "the figures need a python with matplotlib, and {} {lacks} (the set-up's, recorded when binclass was built): run scripts/setup.sh, or set BINCLASS_PLOT_PYTHON to another",
        py.display()
    )
}

/// A figure to draw: one of the figure scripts and its arguments.
struct Figure {
    script: &'static str,
    args: Vec<OsString>,
    out: PathBuf,
}

impl Figure {
    /// `scripts/plot.py`'s figure of `csvs` (`finals`: the distributions of
    /// final accuracy, not the curves), with Keras's runs in `keras`.
    fn plot(csvs: &[PathBuf], keras: Option<&Path>, title: &str, out: &Path, finals: bool) -> Self {
        let mut args: Vec<OsString> = csvs.iter().map(|c| c.into()).collect();
        args.extend(["--out".into(), out.into(), "--title".into(), title.into()]);
        args.extend(finals.then(|| "--finals".into()));
        if let Some(r) = keras {
            args.extend(["--reference".into(), r.into()]);
        }
        Figure {
            script: "plot.py",
            args,
            out: out.to_path_buf(),
        }
    }
}

/// Draws `figures` in one run of `scripts/figures.py`, as built into
/// binclass, with [`python`]: Python and matplotlib start once, not once a
/// figure. A failure is one line, the failing script's own (they print one
/// line, never a traceback).
fn draw(figures: &[Figure]) -> Result<()> {
    let Some(first) = figures.first() else {
        return Ok(());
    };
    let driver = crate::embedded::root()?.join("scripts/figures.py");
    let mut command = Command::new(python());
    command.arg(&driver);
    for (i, f) in figures.iter().enumerate() {
        command
            .args((i > 0).then_some("---"))
            .arg(f.script)
            .args(&f.args);
    }
    let o = command.output().with_context(|| {
        format!(
            "cannot run {} (set BINCLASS_PLOT_PYTHON to a python with matplotlib)",
            python().display()
        )
    })?;
    if !o.status.success() {
        // figures.py says which figure failed on stdout.
        let index = String::from_utf8_lossy(&o.stdout).trim().parse::<usize>();
        let failed = index.ok().and_then(|i| figures.get(i)).unwrap_or(first);
        bail!(
            "scripts/{} failed for {}: {}",
            failed.script,
            failed.out.display(),
            String::from_utf8_lossy(&o.stderr).trim()
        );
    }
    Ok(())
}

/// A curve beyond the article: the baseline with knobs varied.
pub struct CurveSpec {
    pub label: &'static str,
    /// `--vary` flags, the first on the x axis.
    pub vary: &'static [&'static str],
    /// What it shows, for REPORT.md.
    pub shows: &'static str,
}

/// The preset every curve varies.
const CURVE_PRESET: &str = "baseline";

pub const CURVES: &[CurveSpec] = &[
    CurveSpec {
        label: "noise-curve",
        vary: &["noise-rate=0,0.1,0.2,0.3,0.4,0.5"],
        shows: "Label noise costs what it flips: final accuracy follows the ceiling 1 − rate (a model that learns the true boundary is wrong on every flipped label), down to chance at 0.5.",
    },
    CurveSpec {
        label: "scale-curve",
        vary: &["scale=1,10,100,1000,10000", "normalize=none,standard"],
        shows: "Raw features train less stably the larger they are: up to ×100 runs still reach ≈ 0.99 at their best, but end further below it as the scale grows (tanh saturates), and from ×1000 on a growing share never learns; z-scored, every scale trains as the baseline does.",
    },
    CurveSpec {
        label: "shift-curve",
        vary: &["shift=0,1,10,100,1000", "normalize=none,standard"],
        shows: "Raw features lose accuracy as the shift grows and learn nothing from +100 on (every input saturates tanh alike); z-scored, every shift trains as the baseline does.",
    },
];

/// Every curve's knobs with all their values: one HParams experiment for
/// them all, since TensorBoard shows one.
fn curves_knobs(base: &Experiment) -> Result<Vec<(String, Vec<String>)>> {
    let mut knobs: Vec<grid::Knob> = vec![];
    for spec in CURVES.iter().flat_map(|c| c.vary) {
        let k = grid::parse_knob(base, spec)?;
        match knobs.iter_mut().find(|o| o.flag == k.flag) {
            Some(o) => o.values.extend(
                k.values
                    .into_iter()
                    .filter(|v| !o.values.contains(v))
                    .collect::<Vec<_>>(),
            ),
            None => knobs.push(k),
        }
    }
    Ok(grid::hparams(&knobs))
}

/// The experiments `reproduce` runs: the article's six, then the two
/// broken ones normalised.
fn variants() -> impl Iterator<Item = (String, &'static str, Normalize)> {
    let fixed = ["scaled", "shifted"].map(|p| (format!("{p}-standard"), p, Normalize::Standard));
    let article = PRESETS
        .iter()
        .map(|p| (p.name.to_string(), p.name, Normalize::None));
    article.chain(fixed)
}

/// The curves a reproduction trains, and whether each is already finished.
pub type Curves = Vec<(&'static CurveSpec, GridSweep, bool)>;

/// What a reproduction, or a shard of it, trains: its experiments, its
/// curves, and its share of the whole reproduction's work.
type Share = (Vec<(String, Job)>, Curves, f64);

/// Seeds a side where outcomes are skewed and bimodal (the ×1000 presets:
/// about one run in ten ends near chance), so that the cheap side is the
/// large one and the verdict's power rests on Keras's count alone.
pub const CHAOTIC_SEEDS: u64 = 1000;
/// Seeds of every other experiment and curve point, when not told.
pub const SEEDS: u64 = 100;
/// The experiments that get [`CHAOTIC_SEEDS`].
const CHAOTIC: [&str; 2] = ["scaled", "scaled-long"];

/// One reproduction of the article: every experiment over seeds `0..n`.
#[derive(Clone)]
pub struct Reproduction {
    pub dir: PathBuf,
    /// `--seeds`, for every experiment; `None`: [`CHAOTIC_SEEDS`] for the
    /// chaotic presets, [`SEEDS`] for the rest.
    pub seeds: Option<u64>,
    pub device: tch::Device,
    pub threads: i32,
    pub epochs: Option<i64>,
    /// The Keras runs, one folder per preset (`--reference`); `None`: the
    /// copy built into binclass.
    pub reference: Option<PathBuf>,
    pub margin: f64,
    pub overwrite: bool,
    /// Continue the reproduction in `dir` (`--resume`): experiments
    /// finished are kept, the others resume as `sweep --resume` does.
    pub resume: bool,
    /// Train only this slice of the (experiment or curve setting, seed)
    /// replicas; `merge` joins the shards and makes the report.
    pub shard: Option<Shard>,
    pub extras: Extras,
}

/// What a reproduction trains and compares, checked and ready.
pub struct Stages {
    pub jobs: Vec<(String, Job)>,
    /// The curves beyond the article ([`CURVES`]), and whether each is
    /// already finished (on `--resume`).
    pub curves: Curves,
    keras: BTreeMap<String, Vec<compare::Curve>>,
    /// Its share of the whole reproduction's work (1 unsharded).
    pub share: f64,
}

impl Stages {
    /// The replicas it trains, finished ones (on `--resume`) included.
    pub fn replicas(&self) -> u64 {
        let curves = self.curves.iter().map(|(_, g, _)| g.replicas());
        self.jobs.iter().map(|(_, j)| j.count()).sum::<u64>() + curves.sum::<u64>()
    }

    /// What `--dry-run` prints of it: each experiment's seeds and epochs
    /// and its batches, then each curve's left to train.
    pub fn describe(&self) -> Result<Vec<String>> {
        let mut lines = vec![];
        for (_, job) in &self.jobs {
            lines.push(job.describe());
            let (_, batches) = job.plan()?;
            lines.extend(batches.iter().map(|b| format!("  batch: {}", b.describe())));
        }
        for (spec, curve, _) in self.curves.iter().filter(|(_, _, done)| !done) {
            lines.push(format!("{}:", spec.label));
            lines.extend(curve.describe()?.iter().map(|l| format!("  {l}")));
        }
        Ok(lines)
    }

    pub fn seed_epochs(&self) -> u64 {
        let curves = self.curves.iter().filter(|(_, _, done)| !done);
        self.jobs.iter().map(|(_, j)| j.seed_epochs()).sum::<u64>()
            + curves.map(|(_, g, _)| g.seed_epochs()).sum::<u64>()
    }
}

/// What the training gave: each experiment's time and its seeds' results.
#[derive(Default)]
pub struct Trained {
    pub timings: Vec<(String, f64)>,
    pub finals: Vec<Finals>,
}

impl Reproduction {
    /// Keras's runs of every preset, from the reference folder.
    fn keras_runs(&self) -> Result<BTreeMap<String, Vec<compare::Curve>>> {
        let dir = self.reference_dir()?;
        let keras = compare::load_reference(&dir)?;
        if let Some(missing) = PRESETS.iter().find(|p| !keras.contains_key(p.name)) {
            bail!(
                "{} has no Keras runs for '{}' (see reference/keras/README.md)",
                dir.display(),
                missing.name
            );
        }
        Ok(keras)
    }

    fn reference_dir(&self) -> Result<PathBuf> {
        compare::reference_dir(self.reference.as_deref())
    }

    /// Where the report says the Keras runs come from.
    fn reference_name(&self) -> String {
        self.reference.as_ref().map_or_else(
            || "the copy of reference/keras built into binclass".into(),
            |r| format!("`{}`", r.display()),
        )
    }

    /// The manifest written first in the folder.
    pub fn manifest(&self) -> Result<Manifest> {
        Ok(Manifest::new(
            FolderCommand::Reproduce,
            self.shard,
            self.shard_plan()?,
        ))
    }

    /// Checks everything (the folder, its manifest, the reference, every
    /// experiment and file), then takes the folder: an earlier reproduction
    /// there is removed (`--overwrite`) or continued (`--resume`: each
    /// experiment whose folder holds runs resumes them, the others start).
    pub fn prepare(&self) -> Result<Stages> {
        let plan = self.plan()?;
        std::fs::create_dir_all(&self.dir)
            .with_context(|| format!("cannot create {}", self.dir.display()))?;
        crate::outputs::hold(&self.dir)?;
        let claim = Takeover::of(self.resume, self.overwrite);
        self.manifest()?.claim(&self.dir, claim)?;
        for (_, job) in &plan.jobs {
            job.prepare()?;
        }
        for (_, curve, _) in plan.curves.iter().filter(|(_, _, done)| !done) {
            curve.prepare()?;
        }
        if let Some((_, curve, _)) = plan.curves.first() {
            curve.jobs[0].1.extras.tensorboard.write_experiment()?;
        }
        Ok(plan)
    }

    /// What [`Reproduction::prepare`] checks, writing nothing: the plan it
    /// would train (`--dry-run` stops here).
    pub fn plan(&self) -> Result<Stages> {
        if self.dir.exists() && !self.dir.is_dir() {
            bail!("--out-dir {} is a file", self.dir.display());
        }
        // A shard draws nothing: its merge does.
        if self.shard.is_none() {
            check_python()?;
        }
        // Before an earlier reproduction is removed or resumed: one still
        // running there would lose its files under it.
        if self.dir.is_dir() {
            crate::outputs::hold(&self.dir)?;
        }
        let (manifest, claim) = (self.manifest()?, Takeover::of(self.resume, self.overwrite));
        let found = manifest.check(&self.dir, claim)?;
        let others = std::fs::read_dir(&self.dir).is_ok_and(|mut d| d.next().is_some());
        if others && found.is_none() {
            bail!(
                "--out-dir {} is not empty and holds no reproduction ({}); reproduce replaces only what it wrote: move its files, or choose another folder",
                self.dir.display(),
                layout::MANIFEST
            );
        }
        let keras = self.keras_runs()?;
        let (mut jobs, mut curves, share) = self.share()?;
        let names: Vec<String> = (jobs.iter().map(|(_, j)| j))
            .chain(
                curves
                    .iter()
                    .flat_map(|(_, c, _)| c.jobs.iter().map(|(_, j)| j)),
            )
            .flat_map(|j| j.seeds.clone().map(|s| j.run_name(s)))
            .collect();
        self.extras.check(&names, claim == Takeover::New)?;
        for (_, job) in &mut jobs {
            job.resume = self.resume && job.dir.read_dir().is_ok_and(|mut d| d.next().is_some());
            job.overwrite = !job.resume;
            job.check()?;
        }
        for (_, curve, done) in &mut curves {
            // A curve is kept once its summary is written; else it starts over.
            *done = self.resume && layout::summary(&curve.dir).is_file();
            if !*done {
                for (_, job) in &mut curve.jobs {
                    job.overwrite = true;
                }
                curve.check()?;
            }
        }
        Ok(Stages {
            jobs,
            curves,
            keras,
            share,
        })
    }

    /// What this reproduction trains: every experiment and curve, or with
    /// `--shard` its slice of their replicas (experiments first, in order,
    /// then the curves' settings, each cut by its work), leaving out those
    /// with none in it; and that slice's share of the whole's work.
    fn share(&self) -> Result<Share> {
        let jobs: Vec<(String, Job)> = variants()
            .map(|(label, preset, normalize)| {
                Ok((label.clone(), self.job(preset, normalize, &label)?))
            })
            .collect::<Result<_>>()?;
        // The curves beyond the article, over the same epochs (and seeds,
        // when --seeds gives one count for all).
        let grids: Vec<(&'static CurveSpec, Job, Grid)> = CURVES
            .iter()
            .map(|c| {
                let mut base = self.job(CURVE_PRESET, Normalize::None, c.label)?;
                base.extras.tensorboard.hparams = curves_knobs(&base.exp)?;
                let vary: Vec<String> = c.vary.iter().map(|v| v.to_string()).collect();
                let grid = Grid::parse(&base.exp, &vary, &[])?;
                Ok((c, base, grid))
            })
            .collect::<Result<_>>()?;
        let mut units: Vec<Unit> = jobs
            .iter()
            .map(|(_, j)| Unit {
                replicas: j.count(),
                work: j.exp.work(),
            })
            .collect();
        units.extend(grids.iter().flat_map(|(_, b, g)| g.units(b.count())));
        let parts = shard::ranges(self.shard, &units)?;
        let share = shard::share(&units, &parts);
        let (job_parts, mut curve_parts) = parts.split_at(jobs.len());
        let jobs = jobs
            .into_iter()
            .zip(job_parts)
            .filter_map(|((label, job), part)| {
                let seeds = shard::seeds_in(&job.seeds, part)?;
                Some((label, Job { seeds, ..job }))
            })
            .collect();
        let mut curves = vec![];
        for (c, base, grid) in grids {
            let (parts, rest) = curve_parts.split_at(grid.settings.len());
            curve_parts = rest;
            let curve = GridSweep::in_parts(&base, grid, parts);
            if curve.replicas() > 0 {
                curves.push((c, curve, false));
            }
        }
        Ok((jobs, curves, share))
    }

    /// The whole reproduction's settings, which every shard's `manifest.json`
    /// holds and `merge` checks the records against.
    pub fn shard_plan(&self) -> Result<FolderPlan> {
        let whole = Reproduction {
            shard: None,
            ..self.clone()
        };
        let (jobs, curves, _) = whole.share()?;
        let mut settings: Vec<PlannedSetting> = jobs
            .iter()
            .map(|(l, j)| PlannedSetting {
                folder: layout::reproduction_folder(l),
                experiment: j.exp.clone(),
                seeds: SeedRange::of(&j.seeds),
            })
            .collect();
        for (c, g, _) in &curves {
            let seeds = SeedRange::count(self.seeds_of(c.label));
            settings.extend(g.planned_settings(&layout::reproduction_folder(c.label), seeds));
        }
        Ok(FolderPlan {
            knobs: vec![],
            seeds: self
                .seeds
                .map_or(Seeds::PerExperiment, |n| Seeds::Range(SeedRange::count(n))),
            settings,
            report: Some(ReportPlan {
                epochs: self.epochs,
                margin: self.margin,
                reference: self.reference.clone(),
            }),
        })
    }

    /// A sweep of `preset`, scaled by `normalize`, over the reproduction's
    /// seeds and epochs into `runs/<label>`.
    fn job(&self, preset: &str, normalize: Normalize, label: &str) -> Result<Job> {
        let overrides = Overrides {
            normalize: Some(normalize),
            epochs: self.epochs,
            ..Default::default()
        };
        Ok(Job {
            exp: Experiment::resolve(preset, &overrides)?,
            seeds: 0..=self.seeds_of(label) - 1,
            dir: layout::reproduction_runs(&self.dir, label),
            device: self.device,
            overwrite: false,
            resume: false,
            chunk: None,
            threads: self.threads,
            // Its runs' names: `scaled-standard/seed0`, not `scaled/…`.
            setting: label.to_string(),
            extras: self.extras.clone(),
        })
    }

    /// The seeds experiment (or curve) `label` trains.
    fn seeds_of(&self, label: &str) -> u64 {
        match self.seeds {
            Some(n) => n,
            None if CHAOTIC.contains(&label) => CHAOTIC_SEEDS,
            None => SEEDS,
        }
    }

    /// Trains every experiment in turn. Each part's seconds are added to
    /// those earlier sessions of a resumed reproduction spent on it, and
    /// kept in the manifest as each part ends: the report times the whole
    /// training, not only the session that finished it.
    pub fn train(&self, plan: &Stages, bar: &indicatif::ProgressBar) -> Result<Trained> {
        let mut manifest = self.manifest()?;
        let earlier = match self.resume {
            true => Manifest::find(&self.dir)?.map_or(vec![], |m| m.timings),
            false => vec![],
        };
        let mut finals = vec![];
        let mut timed = |label: &str, start: Instant| {
            let before = earlier
                .iter()
                .find(|(l, _)| l == label)
                .map_or(0.0, |t| t.1);
            let secs = before + start.elapsed().as_secs_f64();
            manifest.timings.push((label.to_string(), secs));
            manifest.write(&self.dir)
        };
        for (label, job) in &plan.jobs {
            let start = Instant::now();
            finals.push(job.run(bar)?);
            timed(label, start)?;
        }
        for (spec, curve, done) in &plan.curves {
            let start = Instant::now();
            if !done {
                curve.run(bar)?;
            }
            timed(spec.label, start)?;
        }
        let timings = manifest.timings;
        Ok(Trained { timings, finals })
    }

    /// The article's six against Keras's runs, over the epochs both sides
    /// have when `--epochs` changed ours; with a note of each such cut.
    pub fn compare(&self, plan: &Stages) -> Result<(Vec<compare::Row>, Vec<String>)> {
        let (mut rows, mut shortened) = (vec![], vec![]);
        for (label, job) in plan.jobs.iter().take(PRESETS.len()) {
            let keras = &plan.keras[label.as_str()];
            // The epochs both sides have, when `--epochs` shortens or lengthens ours.
            let shortest = keras.iter().map(Vec::len).min().unwrap_or(0);
            let common = shortest.min(job.exp.epochs as usize);
            let cut = |c: &compare::Curve| c[..common.min(c.len())].to_vec();
            if keras.iter().any(|c| c.len() != common) || job.exp.epochs as usize != common {
                shortened.push(format!(
                    "`{label}`: the first {common} epochs (ours ran {}, Keras's {})",
                    job.exp.epochs,
                    keras.iter().map(Vec::len).max().unwrap_or(0)
                ));
            }
            // Read directly: these runs may carry a deliberate --epochs override.
            let curves = planned_csvs(job)
                .iter()
                .map(|f| compare::read_curve(f).map(|c| cut(&c)))
                .collect::<Result<Vec<_>>>()?;
            let keras = &keras.iter().map(cut).collect::<Vec<_>>();
            rows.push(compare::compare_preset(
                label,
                &value_name(&job.exp.optimizer),
                &curves,
                keras,
                self.margin,
            )?);
        }
        Ok((rows, shortened))
    }

    /// Every experiment's figures: ours with Keras's band where it has one,
    /// and what its first finished seed's model learned.
    pub fn figures(&self, plan: &Stages) -> Result<()> {
        let figures = layout::figures(&self.dir);
        std::fs::create_dir_all(&figures)
            .with_context(|| format!("cannot create {}", figures.display()))?;
        let reference = self.reference_dir()?;
        let mut todo = vec![];
        for (label, job) in &plan.jobs {
            let keras_dir = plan
                .keras
                .contains_key(label.as_str())
                .then(|| reference.join(label));
            let (name, n) = (&job.exp.name, job.count());
            let keras_runs = plan.keras.get(label.as_str()).map_or(0, Vec::len);
            let title = match job.exp.normalize {
                Normalize::Standard => format!("{name} with --normalize standard ({n} seeds)"),
                Normalize::None => format!("{label} ({n} seeds; Keras: {keras_runs})"),
            };
            let csvs = planned_csvs(job);
            let figure = layout::figure(&self.dir, label);
            let keras = keras_dir.as_deref();
            todo.push(Figure::plot(&csvs, keras, &title, &figure, false));
            if keras_dir.is_some() {
                let finals = layout::finals_figure(&self.dir, label);
                todo.push(Figure::plot(&csvs, keras, &title, &finals, true));
            }
            // What the model learned, drawn over its input square.
            if let Some((_, model)) = drawn_model(job) {
                let out = layout::boundary_figure(&self.dir, label);
                let args = vec![model.into(), "--out".into(), out.clone().into()];
                todo.push(Figure {
                    script: "plot_boundary.py",
                    args,
                    out,
                });
            }
        }
        for (spec, curve, _) in &plan.curves {
            let out = layout::figure(&self.dir, spec.label);
            let (knob, n) = (curve.grid.knobs[0].flag, self.seeds_of(spec.label));
            let title = format!("{knob}: final validation accuracy ({n} seeds a point)");
            let args = [layout::summary(&curve.dir), "--out".into(), out.clone()];
            let mut args: Vec<OsString> = args.into_iter().map(|a| a.into()).collect();
            args.extend(["--title".into(), title.into()]);
            todo.push(Figure {
                script: "plot_grid.py",
                args,
                out,
            });
        }
        draw(&todo)
    }

    /// After training: the comparison, the figures and `REPORT.md`.
    pub fn finish(&self, plan: &Stages, trained: &Trained) -> Result<Vec<compare::Row>> {
        let (rows, shortened) = self.compare(plan)?;
        self.figures(plan)?;
        let report = self.report(plan, trained, &rows, &shortened)?;
        crate::outputs::write_atomic(&layout::report(&self.dir), report.as_bytes())?;
        Ok(rows)
    }

    /// A merged reproduction's folder (`binclass merge` of its shards,
    /// every run finished) completed as the unsharded one is: continued
    /// as `--resume` does, nothing left to train, then [`Reproduction::finish`];
    /// the timings are the shards' summed.
    pub fn finish_merged(dir: &Path, plan: &FolderPlan, timings: Vec<(String, f64)>) -> Result<()> {
        let r = Self::merged(dir, plan)?;
        let p = r.prepare()?;
        let mut trained = r.train(&p, &indicatif::ProgressBar::hidden())?;
        trained.timings = timings;
        r.finish(&p, &trained).map(|_| ())
    }

    /// Refuses, before `merge` writes anything, shards that this binclass
    /// would not finish: planned by another version (other default seeds),
    /// or compared with a reference that is gone.
    pub fn check_merged(plan: &FolderPlan) -> Result<()> {
        let r = Self::merged(Path::new("."), plan)?;
        if let Some(key) = manifest::plan_difference(plan, &r.shard_plan()?) {
            bail!(
                "the shards' plan is not one this binclass makes: its {key}; merge them with the binclass that trained them"
            );
        }
        check_python()?;
        r.keras_runs().map(|_| ())
    }

    /// The reproduction a merged folder's plan describes, continued as
    /// `--resume` does.
    fn merged(dir: &Path, plan: &FolderPlan) -> Result<Reproduction> {
        let report = plan
            .report
            .as_ref()
            .context("the shards' plan is not a reproduction's")?;
        Ok(Reproduction {
            dir: dir.to_path_buf(),
            seeds: match plan.seeds {
                Seeds::PerExperiment => None,
                Seeds::Range(r) => Some(r.last + 1),
            },
            device: tch::Device::Cpu,
            threads: 1,
            epochs: report.epochs,
            reference: report.reference.clone(),
            margin: report.margin,
            overwrite: false,
            resume: true,
            shard: None,
            extras: Extras::default(),
        })
    }

    /// REPORT.md: the comparison, the rule, a figure per experiment, timings.
    pub fn report(
        &self,
        plan: &Stages,
        trained: &Trained,
        rows: &[compare::Row],
        shortened: &[String],
    ) -> Result<String> {
        let mut md = format!(
            "# binclass: the article reproduced\n\n`binclass reproduce{}{}` on {} (binclass {}, tch {}, libtorch {}), against the Keras runs in {}.{}\n\n## Comparison with Keras\n\n",
            self.seeds
                .map_or(String::new(), |n| format!(" --seeds {n}")),
            self.epochs
                .map_or(String::new(), |e| format!(" --epochs {e}")),
            device::name(self.device),
            VERSIONS.binclass,
            VERSIONS.tch,
            VERSIONS.libtorch,
            self.reference_name(),
            match self.seeds {
                Some(_) => String::new(),
                None => format!(
                    " Seeds: {CHAOTIC_SEEDS} for {}, whose outcomes are skewed and bimodal; {SEEDS} for every other experiment and curve point.",
                    CHAOTIC.join(" and ")
                ),
            }
        );
        let strays: Vec<String> = plan
            .jobs
            .iter()
            .map(|(_, job)| strays(job))
            .collect::<Result<Vec<_>>>()?
            .concat();
        if !strays.is_empty() {
            let _ = writeln!(
                md,
                "Not runs of this reproduction, so neither counted nor drawn: {}.\n",
                strays.join(", ")
            );
        }
        if !shortened.is_empty() {
            let _ = writeln!(
                md,
                "`--epochs {}` differs from the article's runs, so each preset is compared over the epochs both sides have: {}.\n",
                self.epochs.unwrap_or_default(),
                shortened.join("; ")
            );
        }
        md += &compare::render(rows, Format::Markdown)?;
        for line in compare::explain(rows) {
            let _ = writeln!(md, "- {line}");
        }
        let _ = writeln!(md, "\n{}\n\n## Figures\n", compare::RULE);
        for ((label, job), f) in plan.jobs.iter().zip(&trained.finals) {
            let (fin, _) = sweep::final_and_best(f);
            let _ = writeln!(
                md,
                "### {label}\n\n{} Ours: final validation accuracy {}.\n\n{}\n",
                what_it_shows(label, &job.exp),
                mean_sd_text(&fin),
                figures_md(label, job)
            );
            if plan.keras.contains_key(label.as_str()) {
                let _ = writeln!(
                    md,
                    "What the verdict judges: each run's final validation accuracy, ours and Keras's, as the share of runs ending at or below each value (means dashed, failed runs left of the dotted 0.55).\n\n<img src=\"figures/{label}-finals.png\" alt=\"{label}: final accuracies\" width=\"54%\">\n"
                );
            }
        }
        md += &curves_md(plan)?;
        Ok(md + &self.timings(trained))
    }

    fn timings(&self, trained: &Trained) -> String {
        let mut md =
            "## Timings\n\n| experiment | seeds | training time (s) |\n|---|---|---|\n".to_string();
        for (label, secs) in &trained.timings {
            let _ = writeln!(md, "| {label} | {} | {secs:.1} |", self.seeds_of(label));
        }
        let _ = writeln!(md, "| all | | {:.1} |", trained.total());
        md
    }
}

impl Trained {
    pub fn total(&self) -> f64 {
        self.timings.iter().map(|(_, s)| s).sum()
    }
}

/// REPORT.md's curves beyond the article: what each shows, its figure and
/// its table (read back from its summary, so a resumed reproduction's
/// report equals an uninterrupted one's).
fn curves_md(plan: &Stages) -> Result<String> {
    let mut md = "## Beyond the article\n\nThe baseline with one setting varied, every point over the same seeds (`binclass sweep --vary`; drawn by `scripts/plot_grid.py`, mean line and ± sd band).\n\n".to_string();
    for (spec, curve, _) in &plan.curves {
        let (flags, rows) = grid::read_summary(&layout::summary(&curve.dir))?;
        let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
        let _ = writeln!(
            md,
            "### {0}\n\n{1} (`--vary {2}`.)\n\n<img src=\"figures/{0}.png\" alt=\"{0}\" width=\"60%\">\n\n{3}",
            spec.label,
            spec.shows,
            spec.vary.join(" --vary "),
            grid::table(&flags, &rows)
        );
    }
    Ok(md)
}

/// The sentence REPORT.md puts above an experiment's figure.
fn what_it_shows(label: &str, exp: &Experiment) -> String {
    match exp.normalize {
        Normalize::Standard => format!(
            "The fix the article points to: the same data as `{}`, each feature z-scored with the training rows' statistics.",
            exp.name
        ),
        Normalize::None => format!(
            "The article: {}.",
            PRESETS
                .iter()
                .find(|p| p.name == label)
                .map_or("", |p| p.article)
        ),
    }
}

/// The seed whose model the boundary figure draws, and its file: the first
/// seed that finished (a seed whose loss diverged leaves no model).
fn drawn_model(job: &Job) -> Option<(u64, PathBuf)> {
    job.seeds
        .clone()
        .map(|s| {
            let csv = layout::seed_csv(&job.dir, &job.exp.name, s);
            (s, layout::model(&csv))
        })
        .find(|(_, model)| model.is_file())
}

/// The line and figures REPORT.md shows for an experiment: its accuracy,
/// and beside it what a model learned over which square (the features' raw
/// range, as drawn).
fn figures_md(label: &str, job: &Job) -> String {
    let accuracy =
        format!("<img src=\"figures/{label}.png\" alt=\"{label}: accuracy\" width=\"54%\">");
    let Some((seed, _)) = drawn_model(job) else {
        return format!("No seed finished, so no model is drawn.\n\n{accuracy}");
    };
    let e = &job.exp;
    let (a, b) = (e.shift, e.scale + e.shift);
    let dummies = if e.features > 2 {
        format!(
            ", features 2-{} held at their mean {}",
            e.features - 1,
            0.5 * e.scale + e.shift
        )
    } else {
        String::new()
    };
    format!(
        "Left: accuracy per epoch. Right: what seed {seed}'s model learned: its probability of class 1 over the input square [{}, {}]² in raw feature units{dummies}, the true boundary x0 = x1 dashed, its own p = 0.5 line solid.\n\n{accuracy} <img src=\"figures/{label}-boundary.png\" alt=\"{label}: what seed {seed} learned\" width=\"42%\">",
        a.min(b),
        a.max(b)
    )
}

/// The CSVs of a part's planned seeds, in seed order: what the report
/// counts and draws, whatever else its folder holds.
fn planned_csvs(job: &Job) -> Vec<PathBuf> {
    job.seeds.clone().map(|seed| job.csv(seed)).collect()
}

/// Run CSVs in a part's folder that are not of its planned seeds (a run
/// trained into it by hand, a copied file), as the report names them.
fn strays(job: &Job) -> Result<Vec<String>> {
    let planned = planned_csvs(job);
    Ok(compare::csvs_in(&job.dir)?
        .into_iter()
        .filter(|f| !planned.contains(f))
        .map(|f| format!("`{}`", f.display()))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reproduction(seeds: Option<u64>) -> Reproduction {
        Reproduction {
            dir: "r".into(),
            seeds,
            device: tch::Device::Cpu,
            threads: 1,
            epochs: None,
            reference: None,
            margin: compare::DEFAULT_MARGIN,
            overwrite: false,
            resume: false,
            shard: None,
            extras: Extras::default(),
        }
    }

    #[test]
    fn by_default_the_chaotic_presets_get_a_thousand_seeds_and_the_rest_a_hundred() {
        let (jobs, curves, share) = reproduction(None).share().unwrap();
        assert_eq!(share, 1.0);
        for (label, job) in &jobs {
            let want = if label == "scaled" || label == "scaled-long" {
                1000
            } else {
                100
            };
            assert_eq!(job.count(), want, "{label}");
        }
        assert!(!curves.is_empty());
        // What --overwrite removes and merge copies follows each setting's seeds.
        let plan = reproduction(None).shard_plan().unwrap();
        let written = plan.written(Path::new("r"));
        let has = |p: &str| written.contains(&PathBuf::from(p));
        assert!(has("r/runs/scaled/scaled-seed999.csv"));
        assert!(has("r/runs/baseline/baseline-seed99.csv"));
        assert!(!has("r/runs/baseline/baseline-seed100.csv"));
        assert!(has("r/runs/noise-curve/noise-rate=0.5/baseline-seed99.csv"));
        assert!(!has(
            "r/runs/noise-curve/noise-rate=0.5/baseline-seed100.csv"
        ));
        // --seeds N is every experiment's.
        let (jobs, _, _) = reproduction(Some(7)).share().unwrap();
        assert!(jobs.iter().all(|(_, j)| j.count() == 7));
    }

    #[test]
    fn the_default_reproductions_four_shards_each_hold_about_a_quarter_of_its_work() {
        // Cut by count, the shard holding scaled-long's 1000 seeds × 500
        // epochs held 0.57 of the work (docs/sweep.md).
        let mut shares = vec![];
        for index in 0..4 {
            let mut r = reproduction(None);
            r.shard = Some(Shard { index, count: 4 });
            let (_, _, share) = r.share().unwrap();
            assert!(share <= 0.30, "{index}/4: {share}");
            shares.push(share);
        }
        assert!(
            (shares.iter().sum::<f64>() - 1.0).abs() < 1e-12,
            "{shares:?}"
        );
    }
}
