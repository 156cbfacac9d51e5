//! `binclass resume RUN.csv`: a killed or interrupted `train` run continued
//! from its last checkpointed epoch with its own settings, to the CSV an
//! uninterrupted run would have written.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use tch::nn;

use super::Verbosity;
use crate::data::Dataset;
use crate::model::Network;
use crate::{config, device, interrupt, resume};

#[derive(Args, Debug)]
pub struct ResumeArgs {
    /// The run's metrics CSV (its .json record and .ckpt checkpoint beside it).
    #[arg(value_name = "RUN.csv")]
    pub csv: PathBuf,
    #[command(flatten)]
    pub verbosity: Verbosity,
}

pub fn run(args: &ResumeArgs) -> Result<()> {
    // Every check comes before the CSV is trimmed.
    let stopped = resume::open(&args.csv)?;
    let record = &stopped.record;
    let device = device::resolve(&record.device)
        .with_context(|| format!("the run trained on {}", record.device))?;
    // The run's thread count: CPU reductions may split work by thread.
    let threads = config::threads(Some(record.threads.into()))
        .with_context(|| format!("{}: the run's thread count", stopped.files.json.display()))?;
    tch::set_num_threads(threads);
    let exp = record.experiment.clone();
    let dataset = Dataset::generate(&exp, record.seed)?;
    let normalization = dataset.normalization.clone();
    let data = dataset.split(exp.train_len() as usize, device)?;
    drop(dataset);
    interrupt::install();
    tch::manual_seed(record.seed as i64);
    let vs = nn::VarStore::new(device);
    let mut net = Network::from_flat(&vs.root(), &exp, stopped.checkpoint.params.shallow_clone());
    let training = resume::restored(&stopped, &vs)?;
    resume::trim_csv(&stopped.files.csv, stopped.checkpoint.csv_len)?;
    let (outcome, record) = resume::fit_checkpointed(
        &mut net,
        &vs,
        &data,
        training,
        &stopped.files,
        args.verbosity.verbose,
    )?;
    super::train::finish(
        &net,
        outcome,
        &record,
        &normalization,
        &stopped.files,
        args.verbosity.verbose,
    )
}
