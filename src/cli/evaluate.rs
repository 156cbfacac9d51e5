//! `binclass evaluate`: a saved model's loss and binary accuracy, as Keras's
//! `model.evaluate` reports them, on its own run's validation rows, on
//! freshly drawn data, or on a labelled CSV.

use std::path::PathBuf;

use anyhow::{Result, bail};
use clap::{Args, ValueEnum};

use crate::config::Experiment;
use crate::keras_csv::python_float;
use crate::points::Points;
use crate::predict::{Loaded, Metrics, evaluate_points, evaluate_split};

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum Format {
    Text,
    Json,
}

#[derive(Args, Debug)]
pub struct EvaluateArgs {
    /// A model saved by train or sweep (<run>.safetensors).
    #[arg(long, value_name = "MODEL")]
    pub model: PathBuf,
    /// Draw data as this preset does [default: the model's own settings].
    #[arg(long, value_name = "NAME", conflicts_with = "input")]
    pub experiment: Option<String>,
    /// The seed to draw data with [default: the model's own]; another seed
    /// than the training one is a true held-out set.
    #[arg(long, value_name = "N", conflicts_with = "input")]
    pub seed: Option<u64>,
    /// Labelled points instead (a header naming --label-column).
    #[arg(long, value_name = "CSV|-", requires = "label_column")]
    pub input: Option<String>,
    /// The label column of --input (values 0 or 1).
    #[arg(long, value_name = "NAME", requires = "input")]
    pub label_column: Option<String>,
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

pub fn run(args: &EvaluateArgs) -> Result<()> {
    let model = Loaded::read(&args.model)?;
    let (metrics, data) = match (&args.input, &args.label_column) {
        (Some(input), Some(label)) => {
            let mut points = Points::open(input, &model.model, Some(label))?;
            (evaluate_points(&model, &mut points)?, input.clone())
        }
        (None, None) => {
            let e = match &args.experiment {
                Some(name) => Experiment::preset(name)?,
                None => model.model.experiment.clone(),
            };
            let seed = args.seed.unwrap_or(model.model.seed);
            let m = evaluate_split(&model, &e, seed)?;
            (m, format!("validation rows of {} seed {seed}", e.name))
        }
        _ => bail!("--input and --label-column go together"),
    };
    crate::outputs::stdout(&render(&metrics, &data, args.format)?)
}

/// Text: Python's float repr, the digits a CSVLogger file holds.
fn render(m: &Metrics, data: &str, format: Format) -> Result<String> {
    Ok(match format {
        Format::Text => format!(
            "loss {}\nbinary_accuracy {}\nsamples {}\ndata {data}\n",
            python_float(m.loss),
            python_float(m.binary_accuracy),
            m.samples
        ),
        Format::Json => {
            let mut v = serde_json::to_value(m)?;
            v["data"] = data.into();
            serde_json::to_string_pretty(&v)? + "\n"
        }
    })
}
