//! `binclass predict`: a saved model's probability and class for each point
//! of a CSV, streamed a chunk at a time.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;

use super::Replace;

use crate::outputs::{self, Pending};
use crate::points::Points;
use crate::predict::{Loaded, predict};

#[derive(Args, Debug)]
pub struct PredictArgs {
    /// A model saved by train or sweep (<run>.safetensors).
    #[arg(long, value_name = "MODEL")]
    pub model: PathBuf,
    /// Points, one row each: the model's feature columns, a header optional.
    #[arg(long, default_value = "-", value_name = "CSV|-")]
    pub input: String,
    /// Where the points go with `probability` and `class`.
    #[arg(long, default_value = "-", value_name = "CSV|-")]
    pub out: String,
    /// A label column in the input (named in its header), passed through.
    #[arg(long, value_name = "NAME")]
    pub label_column: Option<String>,
    #[command(flatten)]
    pub replace: Replace,
}

pub fn run(args: &PredictArgs) -> Result<()> {
    // Everything that can be wrong before reading points is checked first.
    let out = (args.out != "-").then(|| PathBuf::from(&args.out));
    if let Some(out) = &out {
        outputs::check_output(out, "--out", args.replace.overwrite)?;
    }
    let model = Loaded::read(&args.model)?;
    let mut points = Points::open(&args.input, model.features(), args.label_column.as_deref())?;
    match out {
        // Written under a temporary name, renamed only when every point is done.
        Some(out) => {
            let mut file = Pending::create(&out)?;
            predict(&model, &mut points, &mut file)?;
            file.commit(args.replace.overwrite)
        }
        None => {
            let stdout = std::io::stdout();
            let mut lock = std::io::BufWriter::with_capacity(1 << 20, stdout.lock());
            match predict(&model, &mut points, &mut lock) {
                Err(e) if is_broken_pipe(&e) => Ok(()),
                r => r.map(|_| ()),
            }
        }
    }
}

/// A reader that closed the pipe early (`| head`) is not an error.
fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            || c.downcast_ref::<csv::Error>().is_some_and(
                |c| matches!(c.kind(), csv::ErrorKind::Io(io) if io.kind() == std::io::ErrorKind::BrokenPipe),
            )
    })
}
