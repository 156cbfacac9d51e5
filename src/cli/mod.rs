//! The command line: one module a command, each a short function over the
//! library's calls, and the flag groups they share.

mod compare;
mod evaluate;
mod experiments;
mod merge;
mod parity;
mod predict;
mod reproduce;
mod resume;
mod sweep;
mod train;

use anyhow::Result;
use clap::error::ErrorKind;
use clap::{Args, CommandFactory, Parser, Subcommand};

use crate::config::{self, whole};
use crate::interrupt::Interrupted;
use crate::outputs::note;
use compare::CompareArgs;
use evaluate::EvaluateArgs;
use merge::MergeArgs;
use parity::ParityArgs;
use predict::PredictArgs;
use reproduce::ReproduceArgs;
use resume::ResumeArgs;
use sweep::SweepArgs;
use train::TrainArgs;

/// Where a command trains: `--device` and `--threads`.
#[derive(Args, Debug)]
pub struct RunOn {
    /// cpu, cuda, cuda:N, or auto (cuda when libtorch sees one, else cpu).
    #[arg(long, default_value = "cpu", value_name = "DEVICE")]
    pub device: String,
    /// libtorch CPU threads [default: BINCLASS_THREADS, else 1, fastest for
    /// this tiny network].
    #[arg(long, value_parser = whole, allow_hyphen_values = true, value_name = "N")]
    pub threads: Option<i64>,
}

impl RunOn {
    /// The device and thread count, checked; libtorch set to the threads.
    /// At `-v 2`, `auto` says why it picked the CPU.
    pub fn resolve(&self, verbose: u8) -> Result<(tch::Device, i32)> {
        let threads = config::threads(self.threads)?;
        let (device, why_cpu) = crate::device::resolve_why(&self.device)?;
        if let Some(why) = why_cpu.filter(|_| verbose >= 2) {
            note(&format!("--device auto: training on the cpu: {why}"));
        }
        tch::set_num_threads(threads);
        Ok((device, threads))
    }
}

/// `--overwrite`: what an earlier run of the command wrote at its output
/// may be replaced; nothing else ever is.
#[derive(Args, Debug)]
pub struct Replace {
    /// Replace what an earlier run of this command wrote at the output
    /// (--out and its record, or the files in --out-dir); never other files.
    #[arg(long)]
    pub overwrite: bool,
}

/// `--verbose`, as Keras's `fit(verbose=…)`.
#[derive(Args, Debug)]
pub struct Verbosity {
    /// 0 silent, 1 a live progress bar, 2 lines only: one per epoch (train),
    /// the summary (sweep, reproduce). On stderr.
    #[arg(long, short = 'v', default_value_t = 1, value_parser = clap::value_parser!(u8).range(0..=2), allow_hyphen_values = true, value_name = "0|1|2")]
    pub verbose: u8,
}

/// The Keras binary-classification experiment on libtorch: train, log, compare.
#[derive(Parser)]
#[command(version, about, allow_negative_numbers = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Train one seeded run; per-epoch metrics stream to a Keras-format CSV.
    #[command(after_long_help = KERAS_DIFFERENCES)]
    Train(Box<TrainArgs>),
    /// Continue a killed or interrupted train run from its checkpoint, exactly.
    Resume(Box<ResumeArgs>),
    /// Train many seeds at once as one batched model; per-seed CSVs and a summary.
    Sweep(Box<SweepArgs>),
    /// Compare our runs with Keras's, preset by preset.
    Compare(Box<CompareArgs>),
    /// Every experiment over N seeds, compared with Keras, with figures and REPORT.md.
    Reproduce(Box<ReproduceArgs>),
    /// Join the folders of a command's shards (--shard K/N) into the unsharded one.
    Merge(Box<MergeArgs>),
    /// Replay a Keras run dumped by scripts/keras_reference.py --dump, step by step.
    Parity(Box<ParityArgs>),
    /// A saved model's probability and class for each point of a CSV.
    Predict(Box<PredictArgs>),
    /// A saved model's loss and binary accuracy (Keras's model.evaluate).
    Evaluate(Box<EvaluateArgs>),
    /// List the presets with every resolved setting.
    Experiments,
}

const KERAS_DIFFERENCES: &str = "\
Where binclass differs from the article's Keras run (docs/keras-fidelity.md):
  - Random streams are seeded ChaCha, not numpy's: a seed gives the same data,
    weights and batch order on CPU and CUDA, but not Keras's.
  - Adam adds epsilon (1e-7) to sqrt(v_hat) as libtorch does; Keras adds it before
    the bias correction. The effect is a float-level perturbation of a chaotic
    trajectory (measured: examples/adam_eps_effect.rs); --optimizer keras-adam
    applies Keras's update instead.
  - A NaN/infinite loss stops the run when its epoch ends (that row written,
    exit non-zero); the article's script has no TerminateOnNaN and would go on.
  - Validation runs as one batch (Keras: batches of 30); same mean up to rounding.";

/// Runs the command line; returns the process's exit status.
pub fn main() -> i32 {
    // libtorch's failures arrive as panics carrying a C++ backtrace: the
    // hook stays silent and the failure is reported below, as one line.
    std::panic::set_hook(Box::new(|_| {}));
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if !e.use_stderr() => {
            let _ = e.print(); // --help, --version
            return 0;
        }
        Err(e) if e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            // clap's answer is the whole help, which one line would garble.
            let commands: Vec<String> = Cli::command()
                .get_subcommands()
                .map(|c| c.get_name().to_string())
                .collect();
            note(&format!(
                "error: give a command: {} (`binclass --help` says what each does)",
                commands.join(", ")
            ));
            return 2;
        }
        Err(e) => {
            note(&one_line(&e.to_string()));
            return 2;
        }
    };
    let result = std::panic::catch_unwind(|| match &cli.command {
        Command::Train(args) => train::run(args),
        Command::Resume(args) => resume::run(args),
        Command::Sweep(args) => sweep::run(args),
        Command::Compare(args) => compare::run(args),
        Command::Reproduce(args) => reproduce::run(args),
        Command::Merge(args) => merge::run(args),
        Command::Parity(args) => parity::run(args),
        Command::Predict(args) => predict::run(args),
        Command::Evaluate(args) => evaluate::run(args),
        Command::Experiments => experiments::run(),
    })
    .unwrap_or_else(|payload| Err(crate::failure::to_error(payload.as_ref())));
    match result {
        Ok(()) => 0,
        Err(e) if e.is::<Interrupted>() => {
            note(
                "interrupted: every finished epoch is in the CSVs and their records say where each stopped",
            );
            130
        }
        Err(e) => {
            note(&format!("error: {}", one_line(&format!("{e:#}"))));
            1
        }
    }
}

/// clap's and libtorch's messages span lines; users get one.
fn one_line(msg: &str) -> String {
    msg.lines()
        .map(str::trim)
        .filter(|l| {
            !l.is_empty() && !l.starts_with("For more information") && !l.starts_with("Usage:")
        })
        .collect::<Vec<_>>()
        .join(" ")
}
