//! `binclass train`: one seeded run of an experiment, from settings to files.

use std::path::PathBuf;

use anyhow::{Result, bail};
use clap::Args;
use tch::nn;

use super::{Replace, RunOn, Verbosity};
use crate::callbacks::{
    Callback, CsvLogger, KerasProgress, RecordWriter, RunRecord, TerminateOnNaN,
};
use crate::config::{Experiment, Overrides};
use crate::data::Dataset;
use crate::fit::{self, Plan};
use crate::model::Network;
use crate::model_file::{self, SavedModel};
use crate::{interrupt, keras_csv, memory, optim, outputs};

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
        outputs::check_free_run(std::slice::from_ref(out), "--out", args.replace.overwrite)?;
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

    tch::manual_seed(args.seed as i64);
    let vs = nn::VarStore::new(device);
    let mut net = Network::build(&vs.root(), &exp, args.seed);
    let mut opt = optim::build(exp.optimizer, &vs, exp.lr)?;

    let plan = Plan::new(exp.epochs, exp.batch_size, exp.train_len());
    let mut progress = KerasProgress::new(args.verbosity.verbose);
    let mut csv = CsvLogger::new(files.csv.clone());
    let mut record = RecordWriter::new(
        RunRecord::start(exp, args.seed, device, threads, files.csv.clone()),
        files.json.clone(),
        None,
    );
    let callbacks: &mut [&mut dyn Callback] =
        &mut [&mut progress, &mut csv, &mut record, &mut TerminateOnNaN];
    let outcome = fit::fit(&mut net, opt.as_mut(), &data, plan, args.seed, callbacks)?;
    check_outcome(outcome, &files)?;
    save_model(&net, &record.record, &normalization, &files)?;
    if args.verbosity.verbose > 0 {
        outputs::note(&format!(
            "wrote {}, {} and {} ({:.2}s)",
            files.csv.display(),
            files.json.display(),
            files.model().display(),
            record.record.total_seconds
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
