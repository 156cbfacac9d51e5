//! `binclass parity DIR`: replays a Keras run dumped by
//! `scripts/keras_reference.py --dump DIR` through binclass's own `fit`.

use std::path::PathBuf;

use anyhow::{Result, bail};
use clap::Args;

use super::Replace;

use crate::config::{Optimizer, number, shown};
use crate::outputs;
use crate::parity::{self, Dtype};

#[derive(Args, Debug)]
pub struct ParityArgs {
    /// A folder written by `scripts/keras_reference.py --dump`.
    pub dir: PathBuf,
    /// adam (libtorch's nn::Adam) or keras-adam (Keras's own update).
    #[arg(long, value_enum, default_value_t = Optimizer::KerasAdam)]
    pub optimizer: Optimizer,
    /// Adam's epsilon (Keras: 1e-7); another value shows the check has teeth.
    #[arg(long, default_value_t = 1e-7, value_parser = number, allow_hyphen_values = true)]
    pub eps: f64,
    /// Largest allowed |our step loss - Keras's| (exit status 1 beyond it).
    #[arg(long, default_value_t = 1e-5, value_parser = number, allow_hyphen_values = true)]
    pub tolerance: f64,
    /// Arithmetic of the replay [default: the dump's, f64 for a dump made
    /// with `keras_reference.py --dtype f64`].
    #[arg(long, value_enum)]
    pub dtype: Option<Dtype>,
    /// Per-step differences CSV [default: none written].
    #[arg(long, value_name = "PATH")]
    pub out: Option<PathBuf>,
    #[command(flatten)]
    pub replace: Replace,
}

pub fn run(args: &ParityArgs) -> Result<()> {
    check(args)?;
    let dump = parity::load(&args.dir)?;
    let dtype = args.dtype.unwrap_or(dump.dtype);
    if dtype != dump.dtype {
        outputs::note(&format!(
            "note: replaying in {} a run Keras made in {}",
            dtype.name(),
            dump.dtype.name()
        ));
    }
    let (rows, ours) = parity::replay(&dump, args.optimizer, args.eps, dtype)?;
    let report = parity::Report::new(&rows, &ours, &dump.epochs, args.tolerance);
    outputs::stdout(&report.text(&rows, &ours, &dump.epochs))?;
    if let Some(out) = &args.out {
        outputs::make_parent(out)?;
        outputs::write_atomic(out, &parity::steps_csv(&rows)?)?;
    }
    report.verdict(&rows, &ours, &dump.epochs)
}

/// The flags' values, and `--out`, before anything is read or written.
fn check(args: &ParityArgs) -> Result<()> {
    if !(args.eps.is_finite() && args.eps > 0.0) {
        bail!("--eps must be a finite number > 0, got {}", shown(args.eps));
    }
    if !(args.tolerance.is_finite() && args.tolerance >= 0.0) {
        bail!(
            "--tolerance must be a finite number >= 0, got {}",
            shown(args.tolerance)
        );
    }
    if let Some(out) = &args.out {
        outputs::check_free(std::slice::from_ref(out), "--out", args.replace.overwrite)?;
    }
    Ok(())
}
