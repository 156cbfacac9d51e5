//! `binclass train`: one seeded run of an experiment, from settings to files.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;

use super::{Replace, RunOn, Verbosity};
use crate::callbacks::Extras;
use crate::config::{Experiment, Overrides};
use crate::training::TrainJob;

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
    pub extras: Extras,
    #[command(flatten)]
    pub overrides: Overrides,
}

fn seed(s: &str) -> Result<u64, String> {
    s.trim()
        .parse()
        .map_err(|_| "expected a whole number >= 0".to_string())
}

pub fn run(args: &TrainArgs) -> Result<()> {
    let exp = Experiment::resolve(&args.experiment, &args.overrides)?;
    let (device, threads) = args.run_on.resolve(args.verbosity.verbose)?;
    TrainJob {
        exp,
        seed: args.seed,
        device,
        threads,
        out: args.out.clone(),
        overwrite: args.replace.overwrite,
        verbose: args.verbosity.verbose,
        extras: args.extras.clone(),
    }
    .run()
    .map(drop)
}
