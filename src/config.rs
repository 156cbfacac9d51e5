//! Experiment settings: the article's presets, command-line overrides, and
//! the checks that turn a bad value into a one-line error before anything runs.

use anyhow::{Result, anyhow, bail};
use clap::{Args, ValueEnum};
use serde::Serialize;

pub use crate::optim::Optimizer;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Activation {
    Tanh,
    Relu,
    Sigmoid,
}

/// How layer weights start.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Init {
    /// Keras Dense: glorot-uniform kernel, zero bias.
    Keras,
    /// PyTorch nn.Linear: uniform(±1/sqrt(fan_in)) for kernel and bias.
    Torch,
}

/// Feature scaling applied before training.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Normalize {
    /// The features as generated (the article).
    None,
    /// z-score per feature with the training rows' mean and standard deviation.
    Standard,
}

/// Every setting of one training run except the seed and the device.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Experiment {
    pub name: String,
    pub samples: i64,
    pub features: i64,
    pub noise_rate: f64,
    pub scale: f64,
    pub shift: f64,
    pub split: f64,
    pub normalize: Normalize,
    pub hidden_layers: i64,
    pub units: i64,
    pub activation: Activation,
    pub init: Init,
    pub lr: f64,
    pub optimizer: Optimizer,
    pub batch_size: i64,
    pub epochs: i64,
}

/// The article's presets, in its order, with what each one shows.
pub const PRESETS: &[(&str, &str)] = &[
    (
        "baseline",
        "2 features, no noise: ~99% accuracy almost at once",
    ),
    (
        "noise",
        "20% of labels flipped: accuracy drops by about the noise",
    ),
    (
        "dummy-features",
        "5 features, 3 of them unrelated dummies: still learns, noisier",
    ),
    ("scaled", "features x1000: training becomes unstable"),
    (
        "scaled-long",
        "features x1000 over 500 epochs: stays unstable",
    ),
    ("shifted", "features +1000: ~50%, nothing is learned"),
];

/// Hidden width of the article: `int(F * 1.2 + 1)`.
pub fn default_units(features: i64) -> i64 {
    (features as f64 * 1.2 + 1.0) as i64
}

impl Experiment {
    pub fn preset(name: &str) -> Result<Self> {
        let mut e = Experiment {
            name: name.to_string(),
            samples: 10_000,
            features: 2,
            noise_rate: 0.0,
            scale: 1.0,
            shift: 0.0,
            split: 0.8,
            normalize: Normalize::None,
            hidden_layers: 3,
            units: default_units(2),
            activation: Activation::Tanh,
            init: Init::Keras,
            lr: 0.03,
            optimizer: Optimizer::Adam,
            batch_size: 30,
            epochs: 100,
        };
        match name {
            "baseline" => {}
            "noise" => e.noise_rate = 0.2,
            "dummy-features" => {
                e.features = 5;
                e.units = default_units(5);
            }
            "scaled" => e.scale = 1000.0,
            "scaled-long" => {
                e.scale = 1000.0;
                e.epochs = 500;
            }
            "shifted" => e.shift = 1000.0,
            _ => {
                let names: Vec<_> = PRESETS.iter().map(|(n, _)| *n).collect();
                bail!(
                    "unknown experiment '{name}': choose one of {}",
                    names.join(", ")
                )
            }
        }
        Ok(e)
    }

    /// A preset with the user's overrides applied, checked.
    pub fn resolve(name: &str, o: &Overrides) -> Result<Self> {
        let mut e = Self::preset(name)?;
        macro_rules! set {
            ($($field:ident),*) => { $(if let Some(v) = o.$field { e.$field = v; })* };
        }
        set!(
            samples,
            features,
            noise_rate,
            scale,
            shift,
            split,
            normalize,
            hidden_layers,
            activation,
            init,
            lr,
            optimizer,
            batch_size,
            epochs
        );
        // The width follows the feature count unless it is set explicitly.
        e.units = o.units.unwrap_or_else(|| default_units(e.features));
        e.validate()?;
        Ok(e)
    }

    /// Trainable parameters of the network.
    pub fn parameters(&self) -> i64 {
        let (f, u, h) = (self.features, self.units, self.hidden_layers);
        if h == 0 {
            f + 1
        } else {
            (f * u + u) + (h - 1) * (u * u + u) + u + 1
        }
    }

    /// Rows that train: numpy's `int(len * SPLIT_RATE)`.
    pub fn train_len(&self) -> i64 {
        (self.samples as f64 * self.split) as i64
    }

    pub fn steps_per_epoch(&self) -> i64 {
        (self.train_len() + self.batch_size - 1) / self.batch_size
    }

    pub fn validate(&self) -> Result<()> {
        fn finite(flag: &str, v: f64) -> Result<()> {
            if !v.is_finite() {
                bail!("--{flag} must be a finite number, got {}", shown(v));
            }
            Ok(())
        }
        // Upper bounds keep every size computation far from overflow and
        // every allocation small enough to fail as an error, not an abort.
        fn within(flag: &str, v: i64, min: i64, max: i64) -> Result<()> {
            if v < min || v > max {
                bail!("--{flag} must be a whole number in {min}..={max}, got {v}");
            }
            Ok(())
        }
        within("samples", self.samples, 1, 100_000_000)?;
        within("features", self.features, 2, 10_000)?;
        within("hidden-layers", self.hidden_layers, 0, 1_000)?;
        within("units", self.units, 1, 10_000)?;
        within("batch-size", self.batch_size, 1, 100_000_000)?;
        within("epochs", self.epochs, 1, 100_000_000)?;
        if self.samples * self.features > 1_000_000_000 {
            bail!(
                "--samples {} x --features {} is more than 1e9 values; lower one of them",
                self.samples,
                self.features
            );
        }
        let params = self.parameters();
        if params > 100_000_000 {
            bail!(
                "the network would have {params} parameters (at most 1e8): lower --units or --hidden-layers"
            );
        }
        finite("noise-rate", self.noise_rate)?;
        finite("scale", self.scale)?;
        finite("shift", self.shift)?;
        finite("split", self.split)?;
        finite("lr", self.lr)?;
        if !(0.0..=1.0).contains(&self.noise_rate) {
            bail!(
                "--noise-rate must be in [0, 1], got {}",
                shown(self.noise_rate)
            );
        }
        if !(self.split > 0.0 && self.split < 1.0) {
            bail!(
                "--split must be in (0, 1) exclusive, got {}",
                shown(self.split)
            );
        }
        // Adam's first step is lr/(1-beta1) in float32: beyond 1e30 libtorch refuses it.
        if !(self.lr > 0.0 && self.lr <= 1e30) {
            bail!("--lr must be in (0, 1e30], got {}", shown(self.lr));
        }
        let train = self.train_len();
        if train < 1 || train >= self.samples {
            bail!(
                "--split {} of {} samples leaves {} training and {} validation rows; both must be >= 1",
                shown(self.split),
                self.samples,
                train,
                self.samples - train
            );
        }
        Ok(())
    }

    /// `name=value` lines, for `binclass experiments` and the run record.
    pub fn settings(&self) -> Vec<(&'static str, String)> {
        vec![
            ("samples", self.samples.to_string()),
            ("features", self.features.to_string()),
            ("noise-rate", self.noise_rate.to_string()),
            ("scale", self.scale.to_string()),
            ("shift", self.shift.to_string()),
            ("split", self.split.to_string()),
            ("normalize", value_name(&self.normalize)),
            ("hidden-layers", self.hidden_layers.to_string()),
            ("units", self.units.to_string()),
            ("activation", value_name(&self.activation)),
            ("init", value_name(&self.init)),
            ("lr", self.lr.to_string()),
            ("optimizer", value_name(&self.optimizer)),
            ("batch-size", self.batch_size.to_string()),
            ("epochs", self.epochs.to_string()),
        ]
    }
}

/// A value as a message shows it: shortest digits (`1e+31`, not 32 of them).
pub fn shown(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else {
        crate::keras_csv::python_float(v)
    }
}

/// The spelling the command line accepts, e.g. `tanh`.
pub fn value_name<T: ValueEnum>(v: &T) -> String {
    v.to_possible_value()
        .map(|v| v.get_name().to_string())
        .unwrap_or_default()
}

/// libtorch CPU threads: `--threads`, else `BINCLASS_THREADS` (unset or
/// empty: 1, fastest for this tiny network).
pub fn threads(flag: Option<i64>) -> Result<i32> {
    let (n, from) = match flag {
        Some(n) => (n, "--threads"),
        None => match std::env::var("BINCLASS_THREADS") {
            Err(std::env::VarError::NotPresent) => return Ok(1),
            Err(std::env::VarError::NotUnicode(v)) => {
                bail!(
                    "BINCLASS_THREADS={}: expected a whole number in 1..=1024",
                    v.to_string_lossy()
                )
            }
            Ok(v) if v.trim().is_empty() => return Ok(1),
            Ok(v) => (
                v.trim().parse().map_err(|_| {
                    anyhow!("BINCLASS_THREADS={v}: expected a whole number in 1..=1024")
                })?,
                "BINCLASS_THREADS",
            ),
        },
    };
    if !(1..=1024).contains(&n) {
        bail!("{from} must be a whole number in 1..=1024, got {n}");
    }
    Ok(n as i32)
}

/// Parses a whole number; range checks live in [`Experiment::validate`] so
/// that they name the flag and what it allows.
pub fn whole(s: &str) -> Result<i64, String> {
    s.trim()
        .parse()
        .map_err(|_| "expected a whole number".to_string())
}

/// Parses a number; NaN and infinities parse here and are refused by
/// [`Experiment::validate`] with the flag's allowed range.
pub fn number(s: &str) -> Result<f64, String> {
    s.trim()
        .parse()
        .map_err(|_| "expected a number".to_string())
}

/// Flags that override any preset setting.
#[derive(Args, Clone, Debug, Default)]
pub struct Overrides {
    /// Number of samples generated (train + validation).
    #[arg(long, value_parser = whole, allow_hyphen_values = true, value_name = "N")]
    pub samples: Option<i64>,
    /// Input features (>= 2); all beyond the first two are dummies.
    #[arg(long, value_parser = whole, allow_hyphen_values = true, value_name = "F")]
    pub features: Option<i64>,
    /// Probability that a label is flipped, in [0, 1].
    #[arg(long, value_parser = number, allow_hyphen_values = true, value_name = "P")]
    pub noise_rate: Option<f64>,
    /// Multiply every feature by this (after labelling).
    #[arg(long, value_parser = number, allow_hyphen_values = true, value_name = "X")]
    pub scale: Option<f64>,
    /// Add this to every feature (after scaling and labelling).
    #[arg(long, value_parser = number, allow_hyphen_values = true, value_name = "X")]
    pub shift: Option<f64>,
    /// Fraction of rows, from the start, that train; in (0, 1).
    #[arg(long, value_parser = number, allow_hyphen_values = true, value_name = "FRACTION")]
    pub split: Option<f64>,
    /// Feature scaling: none (the article) or standard (z-score from the
    /// training rows only).
    #[arg(long, value_enum)]
    pub normalize: Option<Normalize>,
    /// Hidden Dense layers.
    #[arg(long, value_parser = whole, allow_hyphen_values = true, value_name = "N")]
    pub hidden_layers: Option<i64>,
    /// Units per hidden layer [default: int(features * 1.2 + 1)].
    #[arg(long, value_parser = whole, allow_hyphen_values = true, value_name = "N")]
    pub units: Option<i64>,
    /// Hidden-layer activation.
    #[arg(long, value_enum)]
    pub activation: Option<Activation>,
    /// Weight initialisation.
    #[arg(long, value_enum)]
    pub init: Option<Init>,
    /// Adam learning rate.
    #[arg(long, value_parser = number, allow_hyphen_values = true, value_name = "LR")]
    pub lr: Option<f64>,
    /// adam (libtorch's nn::Adam) or keras-adam (Keras's update: epsilon
    /// added after the bias correction).
    #[arg(long, value_enum)]
    pub optimizer: Option<Optimizer>,
    /// Samples per training step; the last step takes what is left.
    #[arg(long, value_parser = whole, allow_hyphen_values = true, value_name = "N")]
    pub batch_size: Option<i64>,
    /// Passes over the training rows.
    #[arg(long, value_parser = whole, allow_hyphen_values = true, value_name = "N")]
    pub epochs: Option<i64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn width_rule_matches_the_article() {
        assert_eq!(default_units(2), 3);
        assert_eq!(default_units(5), 7);
    }

    #[test]
    fn every_preset_resolves_and_validates() {
        for (name, _) in PRESETS {
            let e = Experiment::resolve(name, &Overrides::default()).unwrap();
            assert_eq!(&e.name, name);
        }
        let d = Experiment::preset("dummy-features").unwrap();
        assert_eq!((d.features, d.units), (5, 7));
        assert_eq!(Experiment::preset("scaled-long").unwrap().epochs, 500);
    }

    #[test]
    fn features_override_moves_the_default_width_but_not_an_explicit_one() {
        let o = Overrides {
            features: Some(5),
            ..Default::default()
        };
        assert_eq!(Experiment::resolve("baseline", &o).unwrap().units, 7);
        let o = Overrides {
            features: Some(5),
            units: Some(4),
            ..Default::default()
        };
        assert_eq!(Experiment::resolve("baseline", &o).unwrap().units, 4);
    }

    #[test]
    fn parameter_count_matches_the_article() {
        assert_eq!(Experiment::preset("baseline").unwrap().parameters(), 37);
        assert_eq!(
            Experiment::preset("dummy-features").unwrap().parameters(),
            162
        );
    }

    #[test]
    fn baseline_has_267_steps_with_a_short_last_batch() {
        let e = Experiment::preset("baseline").unwrap();
        assert_eq!(e.train_len(), 8000);
        assert_eq!(e.steps_per_epoch(), 267);
    }

    #[test]
    fn unknown_preset_names_the_choices() {
        let err = Experiment::preset("nope").unwrap_err().to_string();
        assert!(err.contains("'nope'") && err.contains("baseline, noise"));
    }
}
