//! `binclass train`: one seeded run of an experiment, from settings to files.

use std::path::PathBuf;

use anyhow::{Result, bail};
use clap::Args;
use tch::nn;

use crate::callbacks::{
    Callback, CsvLogger, KerasProgress, RecordWriter, RunRecord, TerminateOnNaN,
};
use crate::config::{self, Experiment, Overrides, whole};
use crate::data::Dataset;
use crate::fit::{self, Plan};
use crate::model::Network;
use crate::{device, interrupt, keras_csv, memory, optim, outputs};

pub use crate::optim::ADAM;

#[derive(Args, Debug)]
pub struct TrainArgs {
    /// Preset to start from (`binclass experiments` lists them).
    #[arg(long, short = 'e', default_value = "baseline", value_name = "NAME")]
    pub experiment: String,
    /// Seeds the data, the initial weights and the batch order.
    #[arg(long, default_value = "0", value_parser = seed, allow_hyphen_values = true)]
    pub seed: u64,
    /// cpu, cuda, cuda:N, or auto (cuda when libtorch sees one, else cpu).
    #[arg(long, default_value = "cpu", value_name = "DEVICE")]
    pub device: String,
    /// Metrics CSV [default: runs/<experiment>-seed<N>.csv, or the first free -k suffix].
    #[arg(long, value_name = "PATH")]
    pub out: Option<PathBuf>,
    /// Replace --out (and its .json) if they exist.
    #[arg(long)]
    pub overwrite: bool,
    /// 0 silent, 1 progress bar per epoch, 2 one line per epoch (stderr).
    #[arg(long, short = 'v', default_value_t = 1, value_parser = clap::value_parser!(u8).range(0..=2), allow_hyphen_values = true, value_name = "0|1|2")]
    pub verbose: u8,
    /// libtorch CPU threads [default: BINCLASS_THREADS, else 1, fastest for
    /// this tiny network (see README)].
    #[arg(long, value_parser = whole, allow_hyphen_values = true, value_name = "N")]
    pub threads: Option<i64>,
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
    let threads = config::threads(args.threads)?;
    let device = device::resolve(&args.device)?;
    if let Some(out) = &args.out {
        outputs::check_free(std::slice::from_ref(out), args.overwrite)?;
    }
    memory::check(
        memory::train_bytes(&exp),
        device,
        "--samples or --batch-size",
    )?;
    tch::set_num_threads(threads);
    interrupt::install();
    let data = Dataset::generate(&exp, args.seed)?.split(exp.train_len() as usize, device)?;
    let files = outputs::claim(
        args.out.as_deref(),
        &exp.name,
        args.seed,
        &keras_csv::header(),
        args.overwrite,
    )?;

    tch::manual_seed(args.seed as i64);
    let vs = nn::VarStore::new(device);
    let mut net = Network::build(&vs.root(), &exp, args.seed);
    let mut opt = optim::build(exp.optimizer, &vs, exp.lr)?;

    let plan = Plan::new(exp.epochs, exp.batch_size, exp.train_len());
    let mut progress = KerasProgress::new(args.verbose);
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
    if args.verbose > 0 {
        outputs::note(&format!(
            "wrote {} and {} ({:.2}s)",
            files.csv.display(),
            files.json.display(),
            record.record.total_seconds
        ));
    }
    Ok(())
}
