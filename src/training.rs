//! `binclass train` and `binclass resume` as library jobs, and the one
//! checkpointed training of a batch of runs that they and `sweep` share:
//! a run is trained with its observers ([`RunObservers`]) and a checkpoint
//! after every epoch, from its first epoch or from where the checkpoint
//! left it, so that a resumed run ends byte-identical to one never stopped;
//! then each finished run's model is saved, and the checkpoint removed.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use tch::{Device, nn};

use crate::batched::BatchedNetwork;
use crate::callbacks::{
    CallbackList, Extras, KerasProgress, RecordWriter, RunInfo, RunObservers, RunRecord, run_name,
};
use crate::checkpoint::{Checkpoint, Start};
use crate::config::Experiment;
use crate::data::{Dataset, Normalization, Split};
use crate::fit::{self, Model, Outcome, Plan};
use crate::model::Network;
use crate::model_file::{self, Layers, SavedModel};
use crate::optim::Resumable;
use crate::outputs::{self, RunFiles};
use crate::{config, device, interrupt, keras_csv, layout, memory};

/// A network whose runs are saved one by one: a [`Network`] is one run, a
/// [`BatchedNetwork`] one a lane.
pub trait Lanes: Model {
    /// Run `r`'s layers, as its model file holds them.
    fn layers_of(&self, r: usize) -> Result<Layers>;
}

impl Lanes for Network {
    fn layers_of(&self, _: usize) -> Result<Layers> {
        SavedModel::network_layers(self)
    }
}

impl Lanes for BatchedNetwork {
    fn layers_of(&self, r: usize) -> Result<Layers> {
        self.replica_layers(r)
    }
}

/// One run of a batch: its observers, and what its model file holds beside
/// its layers.
pub struct Run<'a> {
    pub observers: RunObservers,
    pub experiment: &'a Experiment,
    pub seed: u64,
    pub normalization: &'a Normalization,
    /// Its CSV, which names its model file.
    pub csv: &'a Path,
}

/// Trains a batch's runs from `start`, the checkpoint kept after every
/// epoch when `checkpointed`; then saves each finished run's model, and
/// removes the checkpoint only once every model is saved: until then a
/// kill resumes the batch. Each run's outcome; an interrupted batch is an
/// error, its checkpoint kept.
pub fn fit_checkpointed<M: Lanes>(
    net: &mut M,
    opt: &mut Resumable,
    data: &Split,
    exp: &Experiment,
    start: Start,
    runs: &mut [Run],
    checkpointed: bool,
) -> Result<Vec<Outcome>> {
    let (order, ended, mut keeper) = (start.order, start.ended, start.keeper);
    for (run, s) in runs.iter_mut().zip(keeper.summaries()) {
        run.observers.summary = s;
    }
    let plan = Plan {
        initial_epoch: start.initial_epoch,
        ..Plan::new(exp.epochs, exp.batch_size, exp.train_len())
    };
    let mut lists: Vec<CallbackList> = runs.iter_mut().map(|r| r.observers.list()).collect();
    let outcomes = fit::fit_runs_from(net, opt, data, plan, order, &mut lists, ended, &mut |end| {
        if checkpointed {
            keeper.write(end)?;
        }
        Ok(())
    });
    drop(lists);
    // Said in each record, if it can still be written (a full disk may
    // refuse it too): a record that says nothing looks alive.
    let failed = |e: &anyhow::Error| runs.iter_mut().for_each(|r| r.observers.record.failed(e));
    let outcomes = outcomes.inspect_err(failed)?;
    if outcomes
        .iter()
        .any(|o| matches!(o, Outcome::Interrupted { .. }))
    {
        return Err(interrupt::Interrupted.into());
    }
    for (r, (run, outcome)) in runs.iter().zip(&outcomes).enumerate() {
        if *outcome == Outcome::Finished {
            let epochs = run.observers.record.record.epochs_completed;
            let layers = net.layers_of(r)?;
            model_file::trained(run.experiment, run.seed, epochs, run.normalization, layers)
                .save(&layout::model(run.csv))?;
        }
    }
    // A diverged or stopped run is not resumed either: it would end the
    // same way again.
    if checkpointed {
        keeper.remove()?;
    }
    Ok(outcomes)
}

/// What `binclass train` runs.
pub struct TrainJob {
    pub exp: Experiment,
    pub seed: u64,
    pub device: Device,
    pub threads: i32,
    /// The metrics CSV, or the first free `runs/<name>-seed<N>[-k].csv`.
    pub out: Option<PathBuf>,
    pub overwrite: bool,
    pub verbose: u8,
    pub extras: Extras,
}

impl TrainJob {
    /// Everything the user can get wrong, checked before any file is touched.
    pub fn check(&self) -> Result<()> {
        if let Some(out) = &self.out {
            outputs::check_free(std::slice::from_ref(out), "--out", self.overwrite)?;
            // Replaced with --overwrite, but not while another run still
            // writes it: that run would go on appending its rows to this one's.
            if out.is_file() {
                outputs::hold(out)?;
            }
        }
        memory::check(
            memory::train_bytes(&self.exp),
            self.device,
            "--samples or --batch-size",
        )?;
        let name = run_name(&self.exp.name, self.seed);
        self.extras.check(&[name], !self.overwrite)
    }

    /// Trains the run into its files; an error for a run that did not finish.
    pub fn run(&self) -> Result<RunFiles> {
        self.check()?;
        interrupt::install();
        let (data, normalization) = split(&self.exp, self.seed, self.device)?;
        let files = outputs::claim(
            self.out.as_deref(),
            &self.exp.name,
            self.seed,
            &keras_csv::header(),
            self.overwrite,
        )?;
        outputs::hold(&files.csv)?;
        // The claimed CSV is this run's: a checkpoint beside it is a killed
        // earlier run's (replaced with --overwrite), which must not be
        // resumed against this run's CSV; so are its files' temporaries.
        outputs::remove_file(&layout::checkpoint(&files.csv))?;
        outputs::remove_temporaries_of(&layout::run_files(&files.csv))?;
        let start = RunRecord::start(
            self.exp.clone(),
            self.seed,
            self.device,
            self.threads,
            files.csv.clone(),
        );
        let name = run_name(&self.exp.name, self.seed);
        let record = RunRecord {
            tensorboard: self.extras.tensorboard.run_dir(&name),
            ..start
        };
        let record = RecordWriter::new(record, files.json.clone(), None);
        let (verbose, extras) = (self.verbose, &self.extras);
        train_one(&data, &normalization, record, None, &files, verbose, extras)?;
        Ok(files)
    }
}

/// The run's data set, split, and its feature scaling.
fn split(exp: &Experiment, seed: u64, device: Device) -> Result<(Split, Normalization)> {
    let dataset = Dataset::generate(exp, seed)?;
    let split = dataset.split(exp.train_len() as usize, device)?;
    Ok((split, dataset.normalization))
}

/// One run trained with `train`'s observers (`--verbose`, the optional
/// ones), from its first epoch or from `checkpoint`, its model saved.
fn train_one(
    data: &Split,
    normalization: &Normalization,
    record: RecordWriter,
    checkpoint: Option<Checkpoint>,
    files: &RunFiles,
    verbose: u8,
    extras: &Extras,
) -> Result<()> {
    let exp = record.record.experiment.clone();
    let seed = record.record.seed;
    tch::manual_seed(seed as i64);
    let vs = nn::VarStore::new(data.train_x.device());
    let mut net = Network::build(&vs.root(), &exp, seed);
    // The optimiser whose state a checkpoint can hold (for `adam`,
    // bit-identical to nn::Adam).
    let mut opt = Resumable::new(exp.optimizer, &vs, exp.lr)?;
    let (csvs, path) = ([files.csv.clone()], layout::checkpoint(&files.csv));
    let start = match checkpoint {
        Some(c) => c.restore(&mut opt, &csvs, path)?,
        None => Start::fresh(path, &exp, &record.record.device, &[seed], &csvs, 1),
    };
    let progress = Box::new(KerasProgress::new(verbose));
    let run = RunInfo {
        name: run_name(&exp.name, seed),
        csv: &files.csv,
        experiment: &exp,
        seed,
    };
    let observers = RunObservers::new(progress, &run, record, extras)?;
    let mut runs = [Run {
        observers,
        experiment: &exp,
        seed,
        normalization,
        csv: &files.csv,
    }];
    let outcomes = fit_checkpointed(&mut net, &mut opt, data, &exp, start, &mut runs, true)?;
    let outcome = outcomes.into_iter().next().context("one run")?;
    check_outcome(outcome, files)?;
    if verbose > 0 {
        let r = &runs[0].observers.record.record;
        outputs::note(&format!(
            "wrote {}, {} and {} ({:.2}s)",
            files.csv.display(),
            files.json.display(),
            files.model().display(),
            r.total_seconds
        ));
    }
    Ok(())
}

/// A run that did not finish is an error saying where its epochs are.
fn check_outcome(outcome: Outcome, files: &RunFiles) -> Result<()> {
    match outcome {
        Outcome::Diverged { epoch } => bail!(
            "training loss became NaN or infinite in epoch {epoch}; stopped there (epochs 0..={epoch} are in {})",
            files.csv.display()
        ),
        Outcome::Interrupted { .. } => Err(interrupt::Interrupted.into()),
        Outcome::Stopped { epoch, why } => bail!("stopped after epoch {epoch}: {why}"),
        Outcome::Finished => Ok(()),
    }
}

/// `binclass resume`: continues the killed or interrupted `train` run
/// whose CSV is `csv` from its checkpoint, with its own settings, every
/// file checked against the others before any is changed.
pub fn resume(csv: &Path, verbose: u8, extras: &Extras) -> Result<RunFiles> {
    if csv.is_dir() {
        bail!(
            "{} is a folder; give a run's CSV (to continue a sweep: binclass sweep … --out-dir {} --resume)",
            csv.display(),
            csv.display()
        );
    }
    if !csv.is_file() {
        bail!(
            "{}: no such file; give the CSV of the run to resume",
            csv.display()
        );
    }
    // Before anything is read: a run still writing it (the train, or
    // another resume) would interleave its rows with ours.
    outputs::hold(csv)?;
    let files = RunFiles::of(csv);
    let record = RunRecord::read(&files.json)?;
    extras.check(&[run_name(&record.experiment.name, record.seed)], false)?;
    let c = resumable_checkpoint(&files, &record)?;
    // A kill between link and rename leaves a replacement beside its file:
    // the run goes on from the files in place.
    outputs::remove_temporaries_of(&layout::run_files(csv))?;
    if let Some(tb) = record
        .tensorboard
        .as_ref()
        .filter(|_| extras.tensorboard.dir.is_none())
    {
        outputs::note(&format!(
            "warning: the run wrote TensorBoard events to {}; without --tensorboard, they stop at epoch {}",
            tb.display(),
            c.epoch
        ));
    }
    let device = device::resolve(&record.device)
        .with_context(|| format!("the run trained on {}", record.device))?;
    // The run's thread count: CPU reductions may split work by thread.
    let threads = config::threads(Some(record.threads.into()))
        .with_context(|| format!("{}: the run's thread count", files.json.display()))?;
    tch::set_num_threads(threads);
    let (data, normalization) = split(&record.experiment, record.seed, device)?;
    interrupt::install();
    // A copy of a run, resumed, is a run of its own: its record names it.
    let record = RunRecord {
        csv: csv.to_path_buf(),
        ..record
    };
    let record = RecordWriter::resuming(record, files.json.clone(), &c.epoch_seconds, None);
    train_one(
        &data,
        &normalization,
        record,
        Some(c),
        &files,
        verbose,
        extras,
    )?;
    Ok(files)
}

/// The checkpoint `resume` continues `files`' run from, checked against its
/// record and CSV: an error for a run that cannot be resumed.
fn resumable_checkpoint(files: &RunFiles, record: &RunRecord) -> Result<Checkpoint> {
    let ckpt = layout::checkpoint(&files.csv);
    // The record says finished before the model is saved, and the
    // checkpoint goes only after it: a run killed (or out of disk) between
    // the two is resumed from its last epoch's checkpoint to save the model.
    let unsaved = record.completed() && ckpt.exists() && !files.model().exists();
    if record.completed() && !unsaved {
        bail!(
            "{}: the run finished ({} epochs); there is nothing to resume",
            files.csv.display(),
            record.epochs_completed
        );
    }
    if let Some(ended) = record
        .ended
        .filter(|e| !e.resumable() && !record.completed())
    {
        bail!(
            "{}: the run ended on its own ({}); resuming cannot change that",
            files.csv.display(),
            record.stopped.as_deref().unwrap_or(&format!("{ended:?}"))
        );
    }
    if !ckpt.exists() {
        bail!(
            "{}: no checkpoint {}: it is written after the run's first epoch (a run stopped before then has nothing to resume; train it again)",
            files.csv.display(),
            ckpt.display()
        );
    }
    let c = Checkpoint::read(&ckpt)?;
    let json = files.json.display().to_string();
    c.check(&ckpt, &record.experiment, &record.device, &json)?;
    if let [seed] = c.seeds()[..]
        && seed != record.seed
    {
        bail!(
            "{} is of seed {seed}, but {json} of seed {}",
            ckpt.display(),
            record.seed
        );
    }
    if record.epochs_completed < c.epoch as usize + 1 {
        bail!(
            "{} is at epoch {}, but {} counts only {} epochs",
            ckpt.display(),
            c.epoch,
            files.json.display(),
            record.epochs_completed
        );
    }
    c.check_csvs(&ckpt, std::slice::from_ref(&files.csv))?;
    Ok(c)
}
