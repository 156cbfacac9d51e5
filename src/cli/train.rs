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
        outputs::check_free(std::slice::from_ref(out), "--out", args.replace.overwrite)?;
    }
    memory::check(
        memory::train_bytes(&exp),
        device,
        "--samples or --batch-size",
    )?;
    interrupt::install();
    let data = Dataset::generate(&exp, args.seed)?.split(exp.train_len() as usize, device)?;
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
    match outcome {
        fit::Outcome::Diverged { epoch } => bail!(
            "training loss became NaN or infinite in epoch {epoch}; stopped there (epochs 0..={epoch} are in {})",
            files.csv.display()
        ),
        fit::Outcome::Interrupted { .. } => return Err(interrupt::Interrupted.into()),
        fit::Outcome::Stopped { epoch, why } => bail!("stopped after epoch {epoch}: {why}"),
        fit::Outcome::Finished => {}
    }
    if args.verbosity.verbose > 0 {
        outputs::note(&format!(
            "wrote {} and {} ({:.2}s)",
            files.csv.display(),
            files.json.display(),
            record.record.total_seconds
        ));
    }
    Ok(())
}
