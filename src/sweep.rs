//! `binclass sweep`: many seeds of one experiment trained at once as one
//! batched model, each seed writing the CSV and record `train --seed s` writes.

use std::cell::RefCell;
use std::ops::RangeInclusive;
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use indicatif::ProgressBar;
use tch::nn;
use tch::{Device, Tensor};

use crate::batched::{BatchedNetwork, LANES};
use crate::callbacks::{
    Callback, CallbackList, CsvLogger, RecordWriter, RunRecord, SeedSummary, Summary,
    TerminateOnNaN, Tick,
};
use crate::config::Experiment;
use crate::data::{Dataset, Normalization, Split};
use crate::fit::{self, Order, Outcome, Plan};
use crate::interrupt::Interrupted;
use crate::keras_csv::{self, python_float};
use crate::{memory, model_file, optim, outputs, sweep_checkpoint};

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
}

pub type Finals = Vec<(u64, Option<SeedSummary>)>;

impl Job {
    fn csvs(&self) -> Vec<PathBuf> {
        self.seeds
            .clone()
            .map(|s| self.dir.join(format!("{}-seed{s}.csv", self.exp.name)))
            .collect()
    }

    fn count(&self) -> u64 {
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

    /// Seeds per batch. Results do not depend on it (see [`batched::LANES`]),
    /// so it may follow the cores and the memory available.
    fn chunk(&self) -> u64 {
        let total = self.count();
        self.chunk
            .unwrap_or_else(|| {
                let even = total
                    .div_ceil(self.workers())
                    .next_multiple_of(LANES as u64);
                let per = memory::replica_bytes(&self.exp).max(1);
                let fits = memory::available(self.device)
                    .map_or(even, |free| free / 2 / self.workers() / per);
                even.min((fits / LANES as u64 * LANES as u64).max(LANES as u64))
            })
            .min(total)
    }

    /// Checks everything but the folder itself: settings, memory, and every
    /// file the sweep will write. Creates nothing.
    pub fn check(&self) -> Result<()> {
        if self.exp.train_len() > i32::MAX as i64 {
            bail!(
                "--samples {} is too large for a sweep (at most {} training rows)",
                self.exp.samples,
                i32::MAX
            );
        }
        let chunk = self.chunk();
        let batches = self.count().div_ceil(chunk).min(self.workers());
        let padded = chunk.next_multiple_of(LANES as u64);
        memory::check(
            (memory::replica_bytes(&self.exp) * padded + memory::draw_bytes(&self.exp)) * batches,
            self.device,
            &format!(
                "--samples (a batch trains at least {LANES} replicas), or train one seed with `binclass train`"
            ),
        )?;
        if self.dir.is_file() {
            bail!("{} is a file, not a folder", self.dir.display());
        }
        if self.resume {
            return self.resume_plan().map(|_| ());
        }
        outputs::check_free_run(&self.csvs(), "--out-dir", self.overwrite)?;
        // An unfinished sweep's checkpoint would be continued by a later
        // --resume over this sweep's finished seeds: it must not survive.
        if !self.overwrite
            && self.dir.is_dir()
            && let Some(c) = sweep_checkpoint::find(&self.dir)?.first()
        {
            bail!(
                "{} is the checkpoint of an unfinished sweep; pass --resume to continue it, or --overwrite to replace it",
                c.display()
            );
        }
        let summary = self.dir.join("summary.csv");
        outputs::check_path(&summary, "summary")?;
        if !self.overwrite && summary.exists() {
            bail!(
                "{} already exists; pass --overwrite to replace it, or choose another folder",
                summary.display()
            );
        }
        Ok(())
    }

    /// Claims a folder that did not exist, the first free `dir`, `dir-1`,
    /// … once its names are checked: two sweeps started together never
    /// share one.
    pub fn claim_new_dir(&mut self) -> Result<()> {
        Job {
            overwrite: true,
            ..self.clone()
        }
        .check()?;
        self.dir = outputs::claim_new_dir(&self.dir)?;
        Ok(())
    }

    /// Refuses, touching nothing, files it may not replace; then makes the folder.
    pub fn prepare(&self) -> Result<()> {
        self.check()?;
        std::fs::create_dir_all(&self.dir)
            .with_context(|| format!("cannot create folder {}", self.dir.display()))?;
        if self.overwrite {
            // The replaced sweep's checkpoints go with it (see `check`).
            for c in sweep_checkpoint::find(&self.dir)? {
                crate::resume::remove_file(&c)?;
            }
        }
        Ok(())
    }

    pub fn seed_epochs(&self) -> u64 {
        self.count() * self.exp.epochs as u64
    }

    /// `seeds` in batches of [`Job::chunk`], trained from their first epoch.
    pub(crate) fn fresh_batches(&self, seeds: &[u64]) -> Vec<Batch> {
        seeds
            .chunks(self.chunk() as usize)
            .map(|s| Batch {
                csvs: s.iter().map(|&seed| self.csv(seed)).collect(),
                seeds: s.to_vec(),
                from_checkpoint: false,
            })
            .collect()
    }

    pub(crate) fn csv(&self, seed: u64) -> PathBuf {
        self.dir.join(format!("{}-seed{seed}.csv", self.exp.name))
    }

    /// On `--resume`: nothing is left to train and `summary.csv` is written.
    pub fn finished(&self) -> Result<bool> {
        Ok(self.resume_plan()?.1.is_empty() && self.dir.join("summary.csv").exists())
    }

    /// Trains every seed (on `--resume`, those not yet done), writes their
    /// files and `summary.csv`.
    pub fn run(&self, bar: &ProgressBar) -> Result<Finals> {
        let seeds: Vec<u64> = self.seeds.clone().collect();
        let (mut finals, work) = if self.resume {
            self.resume_plan()?
        } else {
            (vec![], self.fresh_batches(&seeds))
        };
        let summary = self.dir.join("summary.csv");
        if work.is_empty() && summary.exists() {
            // A finished sweep: nothing is rewritten.
            return Ok(finals);
        }
        finals.extend(self.train_batches(&work, bar)?);
        finals.sort_by_key(|(seed, _)| *seed);
        write_summary(&summary, &finals)?;
        Ok(finals)
    }

    /// Trains the batches side by side ([`Job::workers`]); each seed's summary.
    fn train_batches(&self, work: &[Batch], bar: &ProgressBar) -> Result<Finals> {
        let next = AtomicUsize::new(0);
        let mut done: Vec<(usize, Result<Vec<Option<SeedSummary>>>)> =
            std::thread::scope(|scope| {
                let handles: Vec<_> = (0..self.workers().min(work.len() as u64))
                    .map(|_| {
                        scope.spawn(|| {
                            // libtorch's thread count is per calling thread.
                            tch::set_num_threads(self.threads);
                            let mut mine = vec![];
                            loop {
                                let i = next.fetch_add(1, Ordering::Relaxed);
                                let Some(batch) = work.get(i) else { break };
                                let r = std::panic::catch_unwind(AssertUnwindSafe(|| {
                                    train_chunk(self, batch, bar)
                                }))
                                .unwrap_or_else(|p| Err(crate::failure::to_error(p.as_ref())));
                                let failed = r.is_err();
                                mine.push((i, r));
                                if failed {
                                    // Stop the other workers too.
                                    next.store(work.len(), Ordering::Relaxed);
                                }
                            }
                            mine
                        })
                    })
                    .collect();
                handles
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
        let mut finals = vec![];
        for (i, r) in done {
            finals.extend(work[i].seeds.iter().copied().zip(r?));
        }
        Ok(finals)
    }
}

/// Seeds trained together as one batched model, and whether they continue
/// from the batch's checkpoint.
pub struct Batch {
    pub seeds: Vec<u64>,
    pub csvs: Vec<PathBuf>,
    pub from_checkpoint: bool,
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
        .map(|(s, _)| s.to_string())
        .collect();
    if !diverged.is_empty() {
        bail!(
            "the loss became NaN or infinite for seed(s) {}; their CSVs stop at that epoch",
            diverged.join(", ")
        );
    }
    Ok(())
}

/// A batch's data, replicas last and padded to [`batched::LANES`] with
/// all-zero replicas: `([n, F, R], [n, 1, R])`.
/// Also each seed's feature scaling, which its saved model keeps.
fn batch_data(
    e: &Experiment,
    seeds: &[u64],
    lanes: usize,
    device: Device,
) -> Result<(Tensor, Tensor, Vec<Normalization>)> {
    let (n, f) = (e.samples as usize, e.features as usize);
    let mut xs = vec![0f32; n * f * lanes];
    let mut ys = vec![0f32; n * lanes];
    let mut scalings = vec![];
    for (r, &s) in seeds.iter().enumerate() {
        let d = Dataset::generate(e, s)?;
        scalings.push(d.normalization.clone());
        for (i, row) in d.features.chunks(f).enumerate() {
            for (j, &v) in row.iter().enumerate() {
                xs[(i * f + j) * lanes + r] = v as f32;
            }
            ys[i * lanes + r] = d.labels[i] as f32;
        }
    }
    let to = |v: &[f32], shape: [i64; 3]| -> Result<Tensor> {
        Tensor::f_from_slice(v)?
            .f_view(shape)?
            .f_to_device(device)
            .with_context(|| {
                format!(
                    "cannot move {} seeds' data to {device:?}; try a smaller --chunk",
                    seeds.len()
                )
            })
    };
    let (n, f, r) = (n as i64, f as i64, lanes as i64);
    Ok((to(&xs, [n, f, r])?, to(&ys, [n, 1, r])?, scalings))
}

/// One seed's observers: its CSV, its record (rewritten on a timer: a
/// sweep of thousands of seeds would spend its time rewriting records after
/// every epoch), its summary (shared with the batch's checkpoint, which
/// keeps it), the NaN stop, and a tick of the shared bar.
pub(crate) struct SeedRun {
    pub csv: CsvLogger,
    pub record: RecordWriter,
    pub summary: Rc<RefCell<Summary>>,
    pub nan: TerminateOnNaN,
    pub tick: Tick,
}

impl SeedRun {
    fn callbacks(&mut self) -> CallbackList<'_, '_> {
        CallbackList::new([
            &mut self.csv as &mut dyn Callback,
            &mut self.record,
            &mut self.summary,
            &mut self.nan,
            &mut self.tick,
        ])
    }
}

/// How often a sweep rewrites each seed's record.
pub(crate) fn record_interval(seeds: usize) -> Duration {
    Duration::from_millis(1000 + 2 * seeds as u64)
}

fn seed_runs(job: &Job, batch: &Batch, bar: &ProgressBar) -> Result<Vec<SeedRun>> {
    let interval = record_interval(batch.seeds.len());
    let header = keras_csv::header();
    // On --resume, a batch that never reached its first checkpoint starts
    // over: its files are this sweep's (checked), so they are replaced.
    let overwrite = job.overwrite || job.resume;
    batch
        .seeds
        .iter()
        .zip(&batch.csvs)
        .map(|(&seed, csv)| {
            let files = outputs::claim_path(csv, &header, overwrite)?;
            let record = RunRecord::start(
                job.exp.clone(),
                seed,
                job.device,
                job.threads,
                files.csv.clone(),
            );
            Ok(SeedRun {
                csv: CsvLogger::new(files.csv),
                record: RecordWriter::new(record, files.json, Some(interval)),
                summary: Rc::default(),
                nan: TerminateOnNaN,
                tick: Tick(bar.clone()),
            })
        })
        .collect()
}

/// What the bar says a batch is: `baseline, normalised: seeds 0..=63`.
fn batch_label(e: &Experiment, seeds: &[u64]) -> String {
    let norm = if e.normalize == crate::config::Normalize::Standard {
        ", normalised"
    } else {
        ""
    };
    format!(
        "{}{norm}: seeds {}..={}",
        e.name,
        seeds[0],
        seeds[seeds.len() - 1]
    )
}

/// Where a batch starts: its runs, the epoch, the row orders, the seeds
/// already ended and the epochs' seconds so far.
pub(crate) struct Start {
    pub runs: Vec<SeedRun>,
    pub initial_epoch: i64,
    pub order: Order,
    pub ended: Vec<Option<Outcome>>,
    pub epoch_seconds: Vec<f64>,
}

/// Trains one batch of seeds through [`fit::fit_runs_from`], from its first
/// epoch or its checkpoint, keeping the checkpoint after every epoch;
/// `None` for a seed that did not finish (its loss diverged).
fn train_chunk(job: &Job, batch: &Batch, bar: &ProgressBar) -> Result<Vec<Option<SeedSummary>>> {
    let (e, device, seeds) = (&job.exp, job.device, batch.seeds.as_slice());
    let lanes = seeds.len().next_multiple_of(LANES);
    let (x, y, scalings) = batch_data(e, seeds, lanes, device)?;
    let (n, t) = (e.samples, e.train_len());
    let data = Split {
        train_x: x.narrow(0, 0, t),
        train_y: y.narrow(0, 0, t),
        val_x: x.narrow(0, t, n - t),
        val_y: y.narrow(0, t, n - t),
    };
    tch::manual_seed(seeds[0] as i64);
    let vs = nn::VarStore::new(device);
    let mut net = BatchedNetwork::build(&vs.root(), e, seeds, lanes);
    // libtorch's Adam mirrored on our tensors (bit-identical on the CPU),
    // whose state the checkpoint can keep.
    let opt = Rc::new(RefCell::new(optim::Resumable::new(e.optimizer, &vs, e.lr)?));
    let params = optim::flat_param(&vs, "a sweep batch")?;
    let path = sweep_checkpoint::batch_path(&job.dir, seeds);
    let start = if batch.from_checkpoint {
        sweep_checkpoint::restore(job, batch, &path, lanes, &params, &opt, bar)?
    } else {
        Start {
            runs: seed_runs(job, batch, bar)?,
            initial_epoch: 0,
            order: Order::per_replica(seeds, lanes),
            ended: vec![None; seeds.len()],
            epoch_seconds: vec![],
        }
    };
    bar.set_message(batch_label(e, seeds));
    let keeper = sweep_checkpoint::Keeper::new(job, batch, lanes, params, opt.clone());
    let outcomes = run_batch(&mut net, &opt, &data, job, start, keeper)?;
    if outcomes
        .iter()
        .any(|(o, _)| matches!(o, Outcome::Interrupted { .. }))
    {
        return Err(Interrupted.into());
    }
    for (r, ((&seed, csv), (outcome, _))) in
        seeds.iter().zip(&batch.csvs).zip(&outcomes).enumerate()
    {
        if *outcome == Outcome::Finished {
            let layers = net.replica_layers(r)?;
            let model = model_file::trained(e, seed, e.epochs as usize, &scalings[r], layers);
            model.save(&outputs::model_path(csv))?;
        }
    }
    // Only once every model is saved: until then a kill resumes the batch.
    crate::resume::remove_file(&path)?;
    Ok(outcomes.into_iter().map(|(_, s)| s).collect())
}

/// The batch's training from `start`, the checkpoint kept after every
/// epoch; each seed's outcome and summary.
fn run_batch(
    net: &mut BatchedNetwork,
    opt: &Rc<RefCell<optim::Resumable>>,
    data: &Split,
    job: &Job,
    start: Start,
    mut keeper: sweep_checkpoint::Keeper,
) -> Result<Vec<(Outcome, Option<SeedSummary>)>> {
    let e = &job.exp;
    let Start {
        mut runs,
        initial_epoch,
        order,
        ended,
        epoch_seconds,
    } = start;
    keeper.epoch_seconds = epoch_seconds;
    keeper.summaries = runs.iter().map(|r| r.summary.clone()).collect();
    let plan = Plan {
        initial_epoch,
        ..Plan::new(e.epochs, e.batch_size, e.train_len())
    };
    let mut lists: Vec<CallbackList> = runs.iter_mut().map(SeedRun::callbacks).collect();
    let mut step = opt.clone();
    let outcomes = fit::fit_runs_from(
        net,
        &mut step,
        data,
        plan,
        order,
        &mut lists,
        ended,
        &mut |end| keeper.write(end),
    )?;
    drop(lists);
    Ok(outcomes
        .into_iter()
        .zip(runs)
        .map(|(o, r)| (o, r.summary.borrow().result))
        .collect())
}

fn write_summary(path: &Path, finals: &[(u64, Option<SeedSummary>)]) -> Result<()> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record([
        "seed",
        "final_val_binary_accuracy",
        "best_val_binary_accuracy",
        "best_epoch",
        "finished",
    ])?;
    for (seed, s) in finals {
        match s {
            Some(s) => w.write_record([
                seed.to_string(),
                python_float(s.final_acc),
                python_float(s.best_acc),
                s.best_epoch.to_string(),
                "true".into(),
            ])?,
            None => w.write_record([
                seed.to_string(),
                "nan".into(),
                "nan".into(),
                String::new(),
                "false".into(),
            ])?,
        }
    }
    let bytes = w.into_inner().map_err(|e| e.into_error())?;
    outputs::write_atomic(path, &bytes)
}
