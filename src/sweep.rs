//! `binclass sweep`: many seeds of one experiment trained at once as one
//! batched model, each seed writing the CSV and record `train --seed s` writes.

use std::collections::BTreeSet;
use std::ops::RangeInclusive;
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use indicatif::ProgressBar;
use tch::nn;
use tch::{Device, Tensor};

use crate::batched::{BatchedNetwork, LANES};
use crate::callbacks::{
    BestAndLast, Callback, Ending, Extras, RecordWriter, RunInfo, RunObservers, RunRecord,
    SeedSummary, Tick, run_name,
};
use crate::checkpoint::{Checkpoint, Start, differing_setting};
use crate::config::Experiment;
use crate::data::{Dataset, Normalization, Split};
use crate::fit::{EpochLogs, Outcome};
use crate::interrupt::Interrupted;
use crate::keras_csv::{self, python_float};
use crate::{device, layout, memory, optim, outputs, training};

/// One sweep: an experiment over a range of seeds, into a folder.
#[derive(Clone)]
pub struct Job {
    pub exp: Experiment,
    pub seeds: RangeInclusive<u64>,
    pub dir: PathBuf,
    pub device: Device,
    pub overwrite: bool,
    /// Continue the sweep already in `dir` (`--resume`).
    pub resume: bool,
    /// Seeds per batched model; `None` shares them across the cores.
    pub chunk: Option<u64>,
    pub threads: i32,
    /// In a `--vary` grid, the setting's folder (`noise-rate=0.1,lr=0.03`).
    pub setting: String,
    pub extras: Extras,
}

pub type Finals = Vec<(u64, Option<SeedSummary>)>;

impl Job {
    /// Its seeds.
    pub fn count(&self) -> u64 {
        self.seeds.end() - self.seeds.start() + 1
    }

    /// Batches train side by side, one per core on a CPU: libtorch runs ops
    /// this small on one thread, so two batches side by side take ~0.6x the
    /// time of one twice the size (measured: 100 seeds, 7.9 s against 13.6 s
    /// on 2 cores). A GPU takes one batch at a time.
    fn workers(&self) -> u64 {
        match self.device {
            Device::Cpu => std::thread::available_parallelism().map_or(1, |n| n.get() as u64),
            _ => 1,
        }
    }

    /// Replicas per batch when `total` of this job's shape train. Results
    /// do not depend on it (see [`batched::LANES`]), so it may follow the
    /// cores and the memory available.
    fn chunk_of(&self, total: u64) -> u64 {
        let (lanes, workers) = (LANES as u64, self.workers());
        let sized = || {
            let even = total.div_ceil(workers).next_multiple_of(lanes);
            let per = memory::replica_bytes(&self.exp).max(1);
            let fits = memory::available(self.device).map_or(even, |free| free / 2 / workers / per);
            even.min((fits / lanes * lanes).max(lanes))
        };
        self.chunk.unwrap_or_else(sized).min(total)
    }

    /// Checks everything but the folder itself: settings, memory, and every
    /// file the sweep will write. Creates nothing.
    pub fn check(&self) -> Result<()> {
        ensure!(
            self.exp.train_len() <= i32::MAX as i64,
            "--samples {} is too large for a sweep (at most {} training rows)",
            self.exp.samples,
            i32::MAX
        );
        let chunk = self.chunk_of(self.count());
        let batches = self.count().div_ceil(chunk).min(self.workers());
        let padded = chunk.next_multiple_of(LANES as u64);
        memory::check(
            (memory::replica_bytes(&self.exp) * padded + memory::draw_bytes(&self.exp)) * batches,
            self.device,
            &self.memory_advice(padded),
        )?;
        if self.dir.is_file() {
            bail!("{} is a file, not a folder", self.dir.display());
        }
        self.check_extras()?;
        if self.resume {
            return self.resume_plan().map(|_| ());
        }
        let csvs: Vec<PathBuf> = self.seeds.clone().map(|s| self.csv(s)).collect();
        outputs::check_free(&csvs, "--out-dir", self.overwrite)?;
        // An unfinished sweep's checkpoint would be continued by a later
        // --resume over this sweep's finished seeds: it must not survive.
        if !self.overwrite
            && self.dir.is_dir()
            && let Some(c) = layout::batch_checkpoints(&self.dir)?.first()
        {
            bail!(
                "{} is the checkpoint of an unfinished sweep; pass --resume to continue it, or --overwrite to replace it",
                c.display()
            );
        }
        let summary = layout::summary(&self.dir);
        outputs::check_path(&summary, "summary")?;
        ensure!(
            self.overwrite || !summary.exists(),
            "{} already exists; pass --overwrite to replace it, or choose another folder",
            summary.display()
        );
        Ok(())
    }

    /// What to lower when a batch of `padded` replicas does not fit. A
    /// `--chunk` above one padded batch is what made it large (without it,
    /// batches are sized to the memory); at or below, only the runs' size helps.
    fn memory_advice(&self, padded: u64) -> String {
        match self.chunk {
            Some(_) if padded > LANES as u64 => {
                "--chunk (or leave it out: batches are then sized to the memory available), or --samples".into()
            }
            _ => format!(
                "--samples (a batch trains at least {LANES} replicas), or train one seed with `binclass train`"
            ),
        }
    }

    /// Refuses, touching nothing, files it may not replace; then makes the folder.
    pub fn prepare(&self) -> Result<()> {
        self.check()?;
        std::fs::create_dir_all(&self.dir)
            .with_context(|| format!("cannot create folder {}", self.dir.display()))?;
        // Before anything there is replaced or cut back: a sweep still
        // writing the folder (or resuming it) would interleave its rows.
        outputs::hold(&self.dir)?;
        if self.overwrite {
            // The replaced sweep's checkpoints go with it (see `check`).
            for c in layout::batch_checkpoints(&self.dir)? {
                outputs::remove_file(&c)?;
            }
        }
        Ok(())
    }

    pub fn seed_epochs(&self) -> u64 {
        self.count() * self.exp.epochs as u64
    }

    /// `seeds` in batches of [`Job::chunk_of`], trained from their first epoch.
    fn fresh_batches(&self, seeds: &[u64]) -> Vec<Batch> {
        let chunk = self.chunk_of(self.count()) as usize;
        let of = |s: &[u64]| Batch::of(s.iter().map(|&seed| (self, seed)), false, true);
        seeds.chunks(chunk).map(of).collect()
    }

    pub(crate) fn csv(&self, seed: u64) -> PathBuf {
        layout::seed_csv(&self.dir, &self.exp.name, seed)
    }

    /// A seed's run as observers name it: `<preset>/seed<N>`, or in a grid
    /// `<knob>=<v>/…/seed<N>`, which sort and group by setting.
    pub(crate) fn run_name(&self, seed: u64) -> String {
        run_name(&self.runs_prefix(), seed)
    }

    fn runs_prefix(&self) -> String {
        match self.setting.as_str() {
            "" => self.exp.name.clone(),
            s => s.replace(',', "/"),
        }
    }

    /// The optional observers' flags, for its runs: refused as `check`
    /// refuses them, unless replaced or resumed.
    pub(crate) fn check_extras(&self) -> Result<()> {
        let names: Vec<String> = self.seeds.clone().map(|s| self.run_name(s)).collect();
        self.extras.check(&names, !(self.overwrite || self.resume))
    }

    /// What `run` trains, reading and writing nothing but on `--resume`
    /// (reading the folder): the seeds kept, with their summaries, and the
    /// batches to train.
    pub fn plan(&self) -> Result<(Finals, Vec<Batch>)> {
        match self.resume {
            true => self.resume_plan(),
            false => Ok((
                vec![],
                self.fresh_batches(&self.seeds.clone().collect::<Vec<_>>()),
            )),
        }
    }

    /// What `--dry-run` says the job trains, named as its runs are:
    /// `noise-rate=0.1/lr=0.03: seeds 0..=99 (100), 100 epochs`.
    pub fn describe(&self) -> String {
        format!(
            "{}: seeds {}..={} ({}), {} epochs",
            self.runs_prefix(),
            self.seeds.start(),
            self.seeds.end(),
            self.count(),
            self.exp.epochs
        )
    }

    /// Trains every seed (on `--resume`, those not yet done), writes their
    /// files and `summary.csv`.
    pub fn run(&self, bar: &ProgressBar) -> Result<Finals> {
        let (mut finals, work) = self.plan()?;
        let summary = layout::summary(&self.dir);
        if work.is_empty() && summary.exists() {
            // A finished sweep: nothing is rewritten.
            return Ok(finals);
        }
        for (batch, summaries) in work.iter().zip(self.train_batches(&work, bar)?) {
            finals.extend(batch.seeds.iter().copied().zip(summaries));
        }
        self.finish(finals)
    }

    /// Sorts a finished job's seeds and writes its `summary.csv`.
    fn finish(&self, mut finals: Finals) -> Result<Finals> {
        finals.sort_by_key(|(seed, _)| *seed);
        write_summary_of(&layout::summary(&self.dir), &[], &[(vec![], &finals)])?;
        Ok(finals)
    }

    /// Trains the batches side by side ([`Job::workers`]); each batch's
    /// summaries, in its replicas' order.
    fn train_batches(
        &self,
        work: &[Batch],
        bar: &ProgressBar,
    ) -> Result<Vec<Vec<Option<SeedSummary>>>> {
        let next = AtomicUsize::new(0);
        let worker = || {
            // libtorch's thread count is per calling thread.
            tch::set_num_threads(self.threads);
            let mut mine = vec![];
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(batch) = work.get(i) else {
                    return mine;
                };
                let r =
                    std::panic::catch_unwind(AssertUnwindSafe(|| train_chunk(self, batch, bar)))
                        .unwrap_or_else(|p| Err(crate::failure::to_error(p.as_ref())));
                if r.is_err() {
                    // Stop the other workers too.
                    next.store(work.len(), Ordering::Relaxed);
                }
                mine.push((i, r));
            }
        };
        let mut done: Vec<(usize, Result<_>)> = std::thread::scope(|scope| {
            let workers = (0..self.workers().min(work.len() as u64)).map(|_| scope.spawn(worker));
            let workers: Vec<_> = workers.collect();
            workers
                .into_iter()
                .flat_map(|h| h.join().unwrap_or_default())
                .collect()
        });
        done.sort_by_key(|(i, _)| *i);
        // An interruption first: it is why the other batches stopped.
        if let Some(pos) = done
            .iter()
            .position(|(_, r)| r.as_ref().is_err_and(|e| e.is::<Interrupted>()))
        {
            return Err(done.swap_remove(pos).1.expect_err("an error"));
        }
        done.into_iter().map(|(_, r)| r).collect()
    }
}

/// Trains several jobs of one sweep (a varied sweep's settings, the same
/// seeds each) together: replicas whose settings differ only in their data
/// or learning rate (the same network and plan) share batched models, the
/// others train in batches of their own, side by side as one job's do.
/// Their flags (device, threads, chunk, overwrite) are the first job's;
/// `--resume` is not supported here (nothing is checkpointed). Each job's
/// seeds' summaries, its `summary.csv` written.
pub fn train_together(jobs: &[Job], bar: &ProgressBar) -> Result<Vec<Finals>> {
    let Some(lead) = jobs.first() else {
        return Ok(vec![]);
    };
    let (batches, owners): (Vec<Batch>, Vec<_>) = batches_together(jobs).into_iter().unzip();
    let mut finals: Vec<Finals> = vec![vec![]; jobs.len()];
    for (rs, summaries) in owners.iter().zip(lead.train_batches(&batches, bar)?) {
        for (&(j, seed), s) in rs.iter().zip(summaries) {
            finals[j].push((seed, s));
        }
    }
    jobs.iter()
        .zip(finals)
        .map(|(job, f)| job.finish(f))
        .collect()
}

/// The batches [`train_together`] trains `jobs` in, each with its replicas
/// as (job, seed): replicas grouped by the shape their settings train,
/// under the first job of that shape, each group in chunks.
pub fn batches_together(jobs: &[Job]) -> Vec<(Batch, Vec<(usize, u64)>)> {
    let mut groups: Vec<Vec<(usize, u64)>> = vec![vec![]; jobs.len()];
    for (j, job) in jobs.iter().enumerate() {
        let shape = job.exp.batch_shape();
        let first = jobs.iter().position(|o| o.exp.batch_shape() == shape);
        groups[first.unwrap_or(j)].extend(job.seeds.clone().map(|s| (j, s)));
    }
    let mut batches = vec![];
    for group in groups.iter().filter(|g| !g.is_empty()) {
        let chunk = jobs[group[0].0].chunk_of(group.len() as u64) as usize;
        for rs in group.chunks(chunk) {
            let replicas = rs.iter().map(|&(j, s)| (&jobs[j], s));
            batches.push((Batch::of(replicas, false, false), rs.to_vec()));
        }
    }
    batches
}

/// Seeds trained together as one batched model, and whether they continue
/// from the batch's checkpoint.
pub struct Batch {
    pub seeds: Vec<u64>,
    pub csvs: Vec<PathBuf>,
    /// Each replica's run name ([`Job::run_name`]).
    pub names: Vec<String>,
    /// Each replica's experiment: the job's, or in a varied sweep its
    /// setting's (all of one [`Experiment::batch_shape`]).
    pub exps: Vec<Experiment>,
    pub from_checkpoint: bool,
    /// Whether it keeps a checkpoint after every epoch (not in a varied
    /// sweep, which cannot be resumed).
    pub checkpointed: bool,
}

impl Batch {
    /// The batch of `replicas`, each a job's seed.
    fn of<'a>(
        replicas: impl Iterator<Item = (&'a Job, u64)> + Clone,
        from_checkpoint: bool,
        checkpointed: bool,
    ) -> Batch {
        Batch {
            seeds: replicas.clone().map(|(_, s)| s).collect(),
            csvs: replicas.clone().map(|(j, s)| j.csv(s)).collect(),
            names: replicas.clone().map(|(j, s)| j.run_name(s)).collect(),
            exps: replicas.map(|(j, _)| j.exp.clone()).collect(),
            from_checkpoint,
            checkpointed,
        }
    }

    /// What `--dry-run` says the batch is: `128 lanes (100 replicas), 100
    /// epochs: noise-rate=0.1 seeds 0..=49, noise-rate=0.2 seeds 0..=49`,
    /// each run of consecutive seeds of a setting as a range.
    pub fn describe(&self) -> String {
        let mut runs: Vec<(&str, u64, u64)> = vec![];
        for (name, &seed) in self.names.iter().zip(&self.seeds) {
            // A run's name is `<setting>/seed<N>` (callbacks::run_name).
            let setting = name.rsplit_once('/').map_or(name.as_str(), |(s, _)| s);
            match runs.last_mut() {
                Some((s, _, last)) if *s == setting && *last + 1 == seed => *last = seed,
                _ => runs.push((setting, seed, seed)),
            }
        }
        let runs: Vec<String> = runs
            .iter()
            .map(|(s, a, b)| format!("{s} seeds {a}..={b}"))
            .collect();
        let n = self.seeds.len();
        format!(
            "{} lanes ({n} replica{}), {} epochs{}: {}",
            n.next_multiple_of(LANES),
            if n == 1 { "" } else { "s" },
            self.exps[0].epochs,
            if self.from_checkpoint {
                ", from its checkpoint"
            } else {
                ""
            },
            runs.join(", ")
        )
    }
}

/// Final and best validation accuracy over the seeds that finished.
pub fn final_and_best(finals: &Finals) -> (Vec<f64>, Vec<f64>) {
    finals
        .iter()
        .filter_map(|(_, s)| s.as_ref().map(|s| (s.final_acc, s.best_acc)))
        .unzip()
}

/// Seeds whose loss diverged, as an error naming them.
pub fn check_diverged(finals: &Finals) -> Result<()> {
    let diverged: Vec<String> = finals
        .iter()
        .filter(|(_, s)| s.is_none())
        .map(|(seed, _)| seed.to_string())
        .collect();
    ensure!(
        diverged.is_empty(),
        "the loss became NaN or infinite for seed(s) {}; their CSVs stop at that epoch",
        diverged.join(", ")
    );
    Ok(())
}

/// A batch's data, replicas last and padded to [`batched::LANES`] with
/// all-zero replicas (`[n, F, R]` rows, `[n, 1, R]` labels), split; each
/// replica's from its own experiment (a varied sweep's data knobs). Also
/// each seed's feature scaling, which its saved model keeps.
fn batch_data(
    exps: &[Experiment],
    seeds: &[u64],
    lanes: usize,
    device: Device,
) -> Result<(Split, Vec<Normalization>)> {
    let (n, f) = (exps[0].samples as usize, exps[0].features as usize);
    let mut xs = vec![0f32; n * f * lanes];
    let mut ys = vec![0f32; n * lanes];
    let mut scalings = vec![];
    for (r, (&s, e)) in seeds.iter().zip(exps).enumerate() {
        let d = Dataset::generate(e, s)?;
        scalings.push(d.normalization.clone());
        for (i, row) in d.features.chunks(f).enumerate() {
            for (j, &v) in row.iter().enumerate() {
                xs[(i * f + j) * lanes + r] = v as f32;
            }
            ys[i * lanes + r] = d.labels[i] as f32;
        }
    }
    let k = seeds.len();
    let moved = || format!("cannot move {k} seeds' data to {device:?}; try a smaller --chunk");
    let to = |v: &[f32], shape: [i64; 3]| -> Result<Tensor> {
        Tensor::f_from_slice(v)?
            .f_view(shape)?
            .f_to_device(device)
            .with_context(moved)
    };
    let (n, f, r, t) = (n as i64, f as i64, lanes as i64, exps[0].train_len());
    let (x, y) = (to(&xs, [n, f, r])?, to(&ys, [n, 1, r])?);
    let data = Split {
        train_x: x.narrow(0, 0, t),
        train_y: y.narrow(0, 0, t),
        val_x: x.narrow(0, t, n - t),
        val_y: y.narrow(0, t, n - t),
    };
    Ok((data, scalings))
}

/// How often a sweep rewrites each seed's record: a sweep of thousands of
/// seeds would spend its time rewriting records after every epoch.
pub(crate) fn record_interval(seeds: usize) -> Duration {
    Duration::from_millis(1000 + 2 * seeds as u64)
}

/// Each seed's run, with its feature scaling: its CSV claimed (holding its
/// header), or in a batch continued from its checkpoint `c`, its record
/// read back. A seed that had diverged is never called again; its record
/// stays as it is.
fn seed_runs<'a>(
    job: &Job,
    batch: &'a Batch,
    scalings: &'a [Normalization],
    c: Option<&Checkpoint>,
    bar: &ProgressBar,
) -> Result<Vec<training::Run<'a>>> {
    let interval = Some(record_interval(batch.seeds.len()));
    // On --resume, a batch that never reached its first checkpoint starts
    // over: its files are this sweep's (checked), so they are replaced.
    let overwrite = job.overwrite || job.resume;
    let seed_run = |r: usize| {
        let (seed, csv, experiment) = (batch.seeds[r], &batch.csvs[r], &batch.exps[r]);
        let record = match c {
            Some(c) => {
                let json = layout::record(csv);
                let record = RunRecord::read(&json)?;
                match c.runs[r].diverged {
                    Some(_) => RecordWriter::new(record, json, None),
                    None => RecordWriter::resuming(record, json, &c.epoch_seconds, interval),
                }
            }
            None => {
                let files = outputs::claim_path(csv, &keras_csv::header(), overwrite)?;
                let (device, threads) = (job.device, job.threads);
                let start = RunRecord::start(experiment.clone(), seed, device, threads, files.csv);
                RecordWriter::new(start, files.json, interval)
            }
        };
        let run = RunInfo {
            name: batch.names[r].clone(),
            csv,
            experiment,
            seed,
        };
        Ok(training::Run {
            observers: RunObservers::new(Box::new(Tick(bar.clone())), &run, record, &job.extras)?,
            experiment,
            seed,
            normalization: &scalings[r],
            csv,
        })
    };
    (0..batch.seeds.len()).map(seed_run).collect()
}

/// What the bar says a batch is: `baseline, normalised: seeds 0..=63`.
fn batch_label(e: &Experiment, seeds: &[u64]) -> String {
    let norm = (e.normalize == crate::config::Normalize::Standard).then_some(", normalised");
    let (first, last) = (seeds[0], seeds[seeds.len() - 1]);
    format!(
        "{}{}: seeds {first}..={last}",
        e.name,
        norm.unwrap_or_default()
    )
}

/// Trains one batch of seeds from its first epoch or its checkpoint,
/// keeping the checkpoint after every epoch; `None` for a seed that did
/// not finish (its loss diverged).
fn train_chunk(job: &Job, batch: &Batch, bar: &ProgressBar) -> Result<Vec<Option<SeedSummary>>> {
    let (e, device, seeds) = (&batch.exps[0], job.device, batch.seeds.as_slice());
    let lanes = seeds.len().next_multiple_of(LANES);
    let (data, scalings) = batch_data(&batch.exps, seeds, lanes, device)?;
    tch::manual_seed(seeds[0] as i64);
    let vs = nn::VarStore::new(device);
    let mut net = BatchedNetwork::build(&vs.root(), e, seeds, lanes);
    // libtorch's Adam mirrored on our tensors (bit-identical on the CPU),
    // whose state the checkpoint can keep.
    let mut lrs: Vec<f64> = batch.exps.iter().map(|e| e.lr).collect();
    lrs.resize(lanes, e.lr);
    let mut opt = optim::Resumable::per_lane(e.optimizer, &vs, lrs)?;
    let path = layout::batch_checkpoint(&job.dir, seeds);
    let (start, mut runs) = if batch.from_checkpoint {
        let c = Checkpoint::read(&path)?;
        c.check(&path, e, &device::name(device), "this command")?;
        ensure!(
            c.seeds() == seeds && c.lanes == lanes,
            "{} does not hold this batch's seeds and lanes",
            path.display()
        );
        let runs = seed_runs(job, batch, &scalings, Some(&c), bar)?;
        (c.restore(&mut opt, &batch.csvs, path)?, runs)
    } else {
        let start = Start::fresh(path, e, &device::name(device), seeds, &batch.csvs, lanes);
        (start, seed_runs(job, batch, &scalings, None, bar)?)
    };
    bar.set_message(batch_label(e, seeds));
    let checkpointed = batch.checkpointed;
    training::fit_checkpointed(&mut net, &mut opt, &data, e, start, &mut runs, checkpointed)?;
    Ok(runs.iter().map(|r| r.observers.summary.result).collect())
}

/// A seed of the sweep as `--resume` finds it, with no checkpoint covering it.
enum Found {
    /// Finished (its model saved) or diverged: kept as it is.
    Kept(Option<SeedSummary>),
    /// Started, never checkpointed: trained again from its first epoch.
    Started,
    /// No record: never started.
    Absent,
}

impl Job {
    /// What `--resume` does, every file checked before any is changed:
    /// seeds kept (with their summaries) and batches to train, those with
    /// a checkpoint continuing from it.
    pub(crate) fn resume_plan(&self) -> Result<(Finals, Vec<Batch>)> {
        ensure!(
            self.dir.is_dir(),
            "{}: no such folder, so no sweep to resume",
            self.dir.display()
        );
        let mut batches = vec![];
        let mut covered = BTreeSet::new();
        for path in layout::batch_checkpoints(&self.dir)? {
            let batch = self.checkpointed_batch(&path, &covered)?;
            covered.extend(batch.seeds.iter().copied());
            batches.push(batch);
        }
        // The folder's manifest, checked before this, says it is this
        // sweep's: one stopped before its first record resumes from nothing.
        let (mut kept, mut fresh) = (vec![], vec![]);
        for seed in self.seeds.clone().filter(|s| !covered.contains(s)) {
            match self.found(seed)? {
                Found::Kept(s) => kept.push((seed, s)),
                Found::Started | Found::Absent => fresh.push(seed),
            }
        }
        batches.extend(self.fresh_batches(&fresh));
        Ok((kept, batches))
    }

    /// The batch the checkpoint `path` continues, checked against this
    /// command, its seeds' records and CSVs.
    fn checkpointed_batch(&self, path: &Path, covered: &BTreeSet<u64>) -> Result<Batch> {
        let c = Checkpoint::read(path)?;
        c.check(path, &self.exp, &device::name(self.device), "this command")?;
        let seeds = c.seeds();
        if let Some(s) = seeds
            .iter()
            .find(|s| !self.seeds.contains(s) || covered.contains(s))
        {
            bail!(
                "{} holds seed {s}, outside --seeds {}..={} or in another checkpoint",
                path.display(),
                self.seeds.start(),
                self.seeds.end()
            );
        }
        if layout::batch_checkpoint(&self.dir, &seeds) != path {
            bail!("{} holds other seeds than its name says", path.display());
        }
        let batch = Batch::of(seeds.iter().map(|&s| (self, s)), true, true);
        for (csv, &seed) in batch.csvs.iter().zip(&seeds) {
            let json = layout::record(csv);
            self.check_record(&RunRecord::read(&json)?, &json, seed)?;
        }
        c.check_csvs(path, &batch.csvs)?;
        Ok(batch)
    }

    fn found(&self, seed: u64) -> Result<Found> {
        let csv = self.csv(seed);
        let json = layout::record(&csv);
        if !json.exists() {
            return Ok(Found::Absent);
        }
        let record = RunRecord::read(&json)?;
        self.check_record(&record, &json, seed)?;
        if record.completed() && layout::model(&csv).exists() {
            return Ok(Found::Kept(summary_of(&csv)?));
        }
        if let Some(Ending::Diverged { .. }) = record.ended {
            return Ok(Found::Kept(None));
        }
        Ok(Found::Started)
    }

    /// The record is of this sweep's experiment and seed, or an error names
    /// the setting that differs, with both values.
    fn check_record(&self, record: &RunRecord, json: &Path, seed: u64) -> Result<()> {
        let s = record.seed;
        ensure!(s == seed, "{} is of seed {s}, not {seed}", json.display());
        if let Some(key) = differing_setting(&record.experiment, &self.exp)? {
            let value = |e: &Experiment| {
                serde_json::to_value(e)
                    .ok()
                    .and_then(|v| v.get(&key).map(|v| v.to_string()))
                    .unwrap_or_default()
            };
            bail!(
                "{} was written with `{key}` {}, but this command has {}: not the sweep to resume",
                json.display(),
                value(&record.experiment),
                value(&self.exp)
            );
        }
        Ok(())
    }
}

/// A finished seed's summary, from its CSV, as [`BestAndLast`] made it.
fn summary_of(csv: &Path) -> Result<Option<SeedSummary>> {
    let mut s = BestAndLast::default();
    for (i, row) in keras_csv::read_curve(csv)?.iter().enumerate() {
        s.on_epoch_end(&EpochLogs::from_row(i as i64, *row))?;
    }
    s.on_train_end(&Outcome::Finished)?;
    Ok(s.result)
}

/// The columns of a sweep's `summary.csv`.
pub const SUMMARY_COLUMNS: [&str; 5] = [
    "seed",
    "final_val_binary_accuracy",
    "best_val_binary_accuracy",
    "best_epoch",
    "finished",
];

/// `summary.csv` of one sweep, or of a varied sweep's settings: a column
/// per knob (`flags`, each row's `values`), then [`SUMMARY_COLUMNS`], a
/// row per seed; a seed that did not finish has no accuracy (`nan`) and no
/// best epoch.
pub fn write_summary_of(
    path: &Path,
    flags: &[&str],
    rows: &[(Vec<String>, &Finals)],
) -> Result<()> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(flags.iter().copied().chain(SUMMARY_COLUMNS))?;
    for (values, finals) in rows {
        for (seed, s) in finals.iter() {
            let row = match s {
                Some(s) => [
                    python_float(s.final_acc),
                    python_float(s.best_acc),
                    s.best_epoch.to_string(),
                    "true".into(),
                ],
                None => ["nan".into(), "nan".into(), String::new(), "false".into()],
            };
            let seed = std::iter::once(seed.to_string());
            w.write_record(values.iter().cloned().chain(seed).chain(row))?;
        }
    }
    let bytes = w.into_inner().map_err(|e| e.into_error())?;
    outputs::write_atomic(path, &bytes)
}
