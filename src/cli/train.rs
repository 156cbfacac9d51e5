//! `binclass train`: one seeded run of an experiment, from settings to files.

use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use anyhow::{Result, bail};
use clap::Args;
use tch::nn;

use super::{Replace, RunOn, Verbosity};
use crate::callbacks::{RecordWriter, RunRecord};
use crate::config::{Experiment, Overrides};
use crate::data::Dataset;
use crate::fit::{self, Plan};
use crate::model::Network;
use crate::model_file::{self, SavedModel};
use crate::{interrupt, keras_csv, memory, optim, outputs, resume, rng};

#[derive(Args, Debug)]
pub struct TrainArgs {
    /// Preset to start from (`binclass experiments` lists them).
    #[arg(long, short = 'e', default_value = "baseline", value_name = "NAME")]
    pub experiment: String,
    /// Seeds the data, the initial weights and the batch order.
    #[arg(long, default_value = "0", value_parser = seed, allow_hyphen_values = true)]
    pub seed: u64,
    #[command(flatten)]
    pub run_on: RunOn,
    /// Metrics CSV [default: runs/<experiment>-seed<N>.csv, or the first free -k suffix].
    #[arg(long, value_name = "PATH")]
    pub out: Option<PathBuf>,
    #[command(flatten)]
    pub replace: Replace,
    #[command(flatten)]
    pub verbosity: Verbosity,
    #[command(flatten)]
    pub overrides: Overrides,
}

fn seed(s: &str) -> Result<u64, String> {
    s.trim()
        .parse()
        .map_err(|_| "expected a whole number >= 0".to_string())
}

pub fn run(args: &TrainArgs) -> Result<()> {
    // Everything the user can get wrong is checked before any file is touched.
    let exp = Experiment::resolve(&args.experiment, &args.overrides)?;
    let (device, threads) = args.run_on.resolve()?;
    if let Some(out) = &args.out {
        check_out(out, args.replace.overwrite)?;
    }
    memory::check(
        memory::train_bytes(&exp),
        device,
        "--samples or --batch-size",
    )?;
    interrupt::install();
    let dataset = Dataset::generate(&exp, args.seed)?;
    let normalization = dataset.normalization.clone();
    let data = dataset.split(exp.train_len() as usize, device)?;
    drop(dataset);
    let files = outputs::claim(
        args.out.as_deref(),
        &exp.name,
        args.seed,
        &keras_csv::header(),
        args.replace.overwrite,
    )?;
    outputs::hold(&files.csv)?;

    // The claimed CSV is this run's: a checkpoint beside it is a killed
    // earlier run's (replaced with --overwrite), which must not be resumed
    // against this run's CSV.
    resume::remove_checkpoint(&files.csv)?;
    tch::manual_seed(args.seed as i64);
    let vs = nn::VarStore::new(device);
    let mut net = Network::build(&vs.root(), &exp, args.seed);
    let run = resume::Training {
        // The mirror of nn::Adam, bit-identical to it, whose state a
        // checkpoint can hold (see optim::TorchAdam).
        optimizer: Rc::new(RefCell::new(optim::Resumable::new(
            exp.optimizer,
            &vs,
            exp.lr,
        )?)),
        shuffle: Rc::new(RefCell::new(rng::stream(args.seed, rng::Stream::Shuffle))),
        plan: Plan::new(exp.epochs, exp.batch_size, exp.train_len()),
        record: RecordWriter::new(
            RunRecord::start(exp, args.seed, device, threads, files.csv.clone()),
            files.json.clone(),
            None,
        ),
    };
    let (outcome, record) =
        resume::fit_checkpointed(&mut net, &vs, &data, run, &files, args.verbosity.verbose)?;
    finish(
        &net,
        outcome,
        &record,
        &normalization,
        &files,
        args.verbosity.verbose,
    )
}

/// `--out` is free, or replaced with `--overwrite` but not while another
/// run still writes it: that run would go on appending its rows to this one's.
fn check_out(out: &Path, overwrite: bool) -> Result<()> {
    outputs::check_free_train(out, "--out", overwrite)?;
    if out.is_file() {
        outputs::hold(out)?;
    }
    Ok(())
}

/// What every `train` and `resume` does once training ends: an error for a
/// run that did not finish (its checkpoint kept, to resume an interrupted
/// one), else the model saved and then the checkpoint removed.
pub(super) fn finish(
    net: &Network,
    outcome: fit::Outcome,
    record: &RunRecord,
    normalization: &crate::data::Normalization,
    files: &outputs::RunFiles,
    verbose: u8,
) -> Result<()> {
    // Only an interrupted run can be resumed; a diverged or stopped one
    // would end the same way again.
    if !matches!(
        outcome,
        fit::Outcome::Interrupted { .. } | fit::Outcome::Finished
    ) {
        resume::remove_checkpoint(&files.csv)?;
    }
    check_outcome(outcome, files)?;
    save_model(net, record, normalization, files)?;
    resume::remove_checkpoint(&files.csv)?;
    if verbose > 0 {
        outputs::note(&format!(
            "wrote {}, {} and {} ({:.2}s)",
            files.csv.display(),
            files.json.display(),
            files.model().display(),
            record.total_seconds
        ));
    }
    Ok(())
}

/// The trained network beside its CSV, with what using it alone needs.
fn save_model(
    net: &Network,
    record: &RunRecord,
    normalization: &crate::data::Normalization,
    files: &outputs::RunFiles,
) -> Result<()> {
    let layers = SavedModel::network_layers(net)?;
    model_file::trained(
        &record.experiment,
        record.seed,
        record.epochs_completed,
        normalization,
        layers,
    )
    .save(&files.model())
}

/// A run that did not finish is an error saying where its epochs are.
fn check_outcome(outcome: fit::Outcome, files: &outputs::RunFiles) -> Result<()> {
    match outcome {
        fit::Outcome::Diverged { epoch } => bail!(
            "training loss became NaN or infinite in epoch {epoch}; stopped there (epochs 0..={epoch} are in {})",
            files.csv.display()
        ),
        fit::Outcome::Interrupted { .. } => Err(interrupt::Interrupted.into()),
        fit::Outcome::Stopped { epoch, why } => bail!("stopped after epoch {epoch}: {why}"),
        fit::Outcome::Finished => Ok(()),
    }
}
