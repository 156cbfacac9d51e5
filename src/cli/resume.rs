//! `binclass resume RUN.csv`: a killed or interrupted `train` run continued
//! from its last checkpointed epoch with its own settings, to the CSV an
//! uninterrupted run would have written.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;

use super::Verbosity;

#[derive(Args, Debug)]
pub struct ResumeArgs {
    /// The run's metrics CSV (its .json record and .ckpt checkpoint beside it).
    #[arg(value_name = "RUN.csv")]
    pub csv: PathBuf,
    #[command(flatten)]
    pub verbosity: Verbosity,
    #[command(flatten)]
    pub extras: crate::callbacks::Extras,
}

pub fn run(args: &ResumeArgs) -> Result<()> {
    crate::training::resume(&args.csv, args.verbosity.verbose, &args.extras).map(drop)
}
