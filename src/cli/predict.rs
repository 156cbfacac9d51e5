//! `binclass predict`: a saved model's probability and class for each point
//! of a CSV, streamed a chunk at a time.

use std::path::{Path, PathBuf};

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
        let inputs = [
            (Path::new(&args.model), "model"),
            (Path::new(&args.input), "points"),
        ];
        outputs::check_not_an_input(out, "--out", &inputs)?;
    }
    let model = Loaded::read(&args.model)?;
    let mut points = Points::open(&args.input, &model.model, args.label_column.as_deref())?;
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
                Err(e) => match write_failure(&e) {
                    Some(io) => outputs::stdout_failed(io),
                    None => Err(e),
                },
                Ok(_) => Ok(()),
            }
        }
    }
}

/// The output's I/O error, if that is what stopped `predict`: its reads
/// fail as messages naming the input, never as I/O errors.
fn write_failure(e: &anyhow::Error) -> Option<&std::io::Error> {
    e.chain().find_map(|c| {
        c.downcast_ref::<std::io::Error>().or_else(|| {
            match c.downcast_ref::<csv::Error>()?.kind() {
                csv::ErrorKind::Io(io) => Some(io),
                _ => None,
            }
        })
    })
}
