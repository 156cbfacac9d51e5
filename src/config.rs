//! Experiment settings: the article's presets, command-line overrides, and
//! the checks that turn a bad value into a one-line error before anything runs.

use anyhow::{Result, anyhow, bail, ensure};
use clap::{Args, ValueEnum, value_parser};
use serde::{Deserialize, Serialize};

/// The optimiser: libtorch's Adam (default), or Keras's own update (see `optim`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Optimizer {
    /// libtorch's nn::Adam, epsilon 1e-7.
    Adam,
    /// Keras's Adam update, operation for operation.
    KerasAdam,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Activation {
    Tanh,
    Relu,
    Sigmoid,
}

/// How layer weights start.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Init {
    /// Keras Dense: glorot-uniform kernel, zero bias.
    Keras,
    /// PyTorch nn.Linear: uniform(±1/sqrt(fan_in)) for kernel and bias.
    Torch,
}

/// Feature scaling applied before training.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Normalize {
    /// The features as generated (the article).
    None,
    /// z-score per feature with the training rows' mean and standard deviation.
    Standard,
}

/// What varying a setting across a sweep's replicas (`sweep --vary`)
/// changes, which decides the replicas that can share one batched model.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Vary {
    /// Not a `--vary` knob.
    Not,
    /// Only each replica's data, which a batch draws from each replica's
    /// own experiment: its values share batched models.
    Data,
    /// A value the optimiser takes per lane (the learning rate, handed to
    /// `optim` lane by lane when a batch is built): its values share
    /// batched models.
    PerLane,
    /// The network, the data's shape or the plan: each value trains in
    /// batches of its own.
    Shape,
}

impl Vary {
    /// Whether replicas differing in such a knob train in one batched model.
    pub fn shares_batches(self) -> bool {
        matches!(self, Vary::Data | Vary::PerLane)
    }
}

/// Declares every setting once, with its flag, default, parser, bounds,
/// help and what varying it changes; the [`Experiment`] struct, the
/// [`Overrides`] flags, defaults, overriding, range checks, the `name=value`
/// list and the `--vary` knobs ([`VARY`], [`Experiment::batch_shape`]) all
/// come from it.
macro_rules! settings {
    ($(
        $(#[doc = $doc:literal])*
        $field:ident: $ty:ty = $default:expr,
            flag $flag:literal, value $value_name:literal, parse $parser:expr, bounds $bounds:expr,
            vary $vary:ident;
    )*) => {
        /// Every setting of one training run except the seed and the device.
        /// Missing fields of an older record read as the baseline's.
        #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
        #[serde(default)]
        pub struct Experiment {
            pub name: String,
            $($(#[doc = $doc])* pub $field: $ty,)*
        }

        impl Default for Experiment {
            fn default() -> Self {
                Experiment {
                    name: "baseline".to_string(),
                    $($field: $default,)*
                }
            }
        }

        /// Flags that override any preset setting.
        #[derive(Args, Clone, Debug, Default)]
        pub struct Overrides {
            $(
                $(#[doc = $doc])*
                #[arg(long = $flag, value_parser = $parser, allow_hyphen_values = true, value_name = $value_name)]
                pub $field: Option<$ty>,
            )*
        }

        impl Overrides {
            /// The flags given (those set), by name.
            pub fn given(&self) -> Vec<&'static str> {
                let mut given = vec![];
                $(if self.$field.is_some() { given.push($flag); })*
                given
            }
        }

        impl Experiment {
            /// The overrides given, applied (the width rule aside: see [`Experiment::resolve`]).
            fn apply(&mut self, o: &Overrides) {
                $(if let Some(v) = o.$field.clone() { self.$field = v; })*
            }

            /// Sets one setting from its flag name and a value as the flag takes it.
            pub fn set(&mut self, flag: &str, text: &str) -> Result<()> {
                match flag {
                    $($flag => {
                        self.$field = Setting::from_flag(text)
                            .map_err(|e| anyhow!("--{flag} {text}: {e}"))?;
                    })*
                    _ => bail!("unknown setting '{flag}'"),
                }
                Ok(())
            }

            /// `name=value` pairs, for `binclass experiments` and the run record.
            pub fn settings(&self) -> Vec<(&'static str, String)> {
                vec![$(($flag, self.$field.shown()),)*]
            }

            /// Each setting within its own bounds.
            fn check_bounds(&self) -> Result<()> {
                $(Bounds::check(&$bounds, $flag, &self.$field)?;)*
                Ok(())
            }

            /// What replicas sharing one batched model must have in common:
            /// every setting but those whose values share batches
            /// ([`Vary::shares_batches`]), which are the baseline's here.
            pub fn batch_shape(&self) -> Experiment {
                let base = Experiment::default();
                let mut shape = self.clone();
                $(if Vary::$vary.shares_batches() { shape.$field = base.$field; })*
                shape
            }
        }

        /// Every setting's flag and what varying it changes, in the table's order.
        pub const VARY: &[(&str, Vary)] = &[$(($flag, Vary::$vary),)*];
    };
}

settings! {
    /// Number of samples generated (train + validation).
    samples: i64 = 10_000, flag "samples", value "N", parse whole, bounds Bounds::Whole(1, 100_000_000), vary Shape;
    /// Input features (>= 2); all beyond the first two are dummies.
    features: i64 = 2, flag "features", value "F", parse whole, bounds Bounds::Whole(2, 10_000), vary Shape;
    /// Probability that a label is flipped, in [0, 1].
    noise_rate: f64 = 0.0, flag "noise-rate", value "P", parse number, bounds Bounds::Within(0.0, 1.0), vary Data;
    /// Multiply every feature by this (after labelling).
    scale: f64 = 1.0, flag "scale", value "X", parse number, bounds Bounds::Finite, vary Data;
    /// Add this to every feature (after scaling and labelling).
    shift: f64 = 0.0, flag "shift", value "X", parse number, bounds Bounds::Finite, vary Data;
    /// Fraction of rows, from the start, that train; in (0, 1).
    split: f64 = 0.8, flag "split", value "FRACTION", parse number, bounds Bounds::Between(0.0, 1.0), vary Shape;
    /// Feature scaling: none (the article) or standard (z-score from the
    /// training rows only).
    normalize: Normalize = Normalize::None, flag "normalize", value "NORMALIZE", parse value_parser!(Normalize), bounds Bounds::Any, vary Data;
    /// Hidden Dense layers.
    hidden_layers: i64 = 3, flag "hidden-layers", value "N", parse whole, bounds Bounds::Whole(0, 1_000), vary Shape;
    /// Units per hidden layer [default: int(features * 1.2 + 1)].
    units: i64 = default_units(2), flag "units", value "N", parse whole, bounds Bounds::Whole(1, MAX_UNITS), vary Shape;
    /// Hidden-layer activation.
    activation: Activation = Activation::Tanh, flag "activation", value "ACTIVATION", parse value_parser!(Activation), bounds Bounds::Any, vary Shape;
    /// Weight initialisation.
    init: Init = Init::Keras, flag "init", value "INIT", parse value_parser!(Init), bounds Bounds::Any, vary Not;
    /// Adam learning rate.
    lr: f64 = 0.03, flag "lr", value "LR", parse number, bounds Bounds::Positive(1e30), vary PerLane;
    /// adam (libtorch's nn::Adam) or keras-adam (Keras's update: epsilon
    /// added after the bias correction).
    optimizer: Optimizer = Optimizer::Adam, flag "optimizer", value "OPTIMIZER", parse value_parser!(Optimizer), bounds Bounds::Any, vary Not;
    /// Samples per training step; the last step takes what is left.
    batch_size: i64 = 30, flag "batch-size", value "N", parse whole, bounds Bounds::Whole(1, 100_000_000), vary Shape;
    /// Passes over the training rows.
    epochs: i64 = 100, flag "epochs", value "N", parse whole, bounds Bounds::Whole(1, 100_000_000), vary Shape;
}

/// What values a setting allows; upper bounds keep every size computation
/// far from overflow and every allocation small enough to fail as an error.
pub enum Bounds {
    Any,
    /// A whole number in `min..=max`.
    Whole(i64, i64),
    Finite,
    /// Finite, in `[min, max]`.
    Within(f64, f64),
    /// Finite, in `(min, max)`.
    Between(f64, f64),
    /// Finite, in `(0, max]`.
    Positive(f64),
}

impl Bounds {
    pub fn check(&self, flag: &str, v: &impl Setting) -> Result<()> {
        let Some(x) = v.number() else { return Ok(()) };
        if !x.is_finite() && !matches!(self, Bounds::Any) {
            bail!("--{flag} must be a finite number, got {}", shown(x));
        }
        let (ok, allowed) = match *self {
            Bounds::Any | Bounds::Finite => (true, String::new()),
            Bounds::Whole(min, max) => {
                let n = x as i64;
                if !(min..=max).contains(&n) {
                    bail!("--{flag} must be a whole number in {min}..={max}, got {n}");
                }
                (true, String::new())
            }
            Bounds::Within(lo, hi) => ((lo..=hi).contains(&x), format!("[{lo}, {hi}]")),
            Bounds::Between(lo, hi) => (x > lo && x < hi, format!("({lo}, {hi}) exclusive")),
            Bounds::Positive(hi) => (x > 0.0 && x <= hi, format!("(0, {hi:e}]")),
        };
        ensure!(ok, "--{flag} must be in {allowed}, got {}", shown(x));
        Ok(())
    }
}

/// A setting's value: parsed from its flag's text, shown as `binclass
/// experiments` and the run record list it, and as the bounds checks see it.
pub trait Setting: Sized {
    fn from_flag(s: &str) -> Result<Self, String>;
    fn shown(&self) -> String;
    fn number(&self) -> Option<f64> {
        None
    }
}

macro_rules! setting_by_number {
    ($($t:ty: $parse:ident),*) => {$(impl Setting for $t {
        fn from_flag(s: &str) -> Result<Self, String> {
            $parse(s)
        }

        fn shown(&self) -> String {
            self.to_string()
        }

        fn number(&self) -> Option<f64> {
            Some(*self as f64)
        }
    })*};
}
setting_by_number!(i64: whole, f64: number);

macro_rules! setting_by_name {
    ($($t:ty),*) => {$(impl Setting for $t {
        fn from_flag(s: &str) -> Result<Self, String> {
            <$t as ValueEnum>::from_str(s.trim(), false)
        }

        fn shown(&self) -> String {
            value_name(self)
        }
    })*};
}
setting_by_name!(Normalize, Activation, Init, Optimizer);

/// The article's presets, in its order: what each one shows, what the
/// article says of it, and the settings it changes from the baseline.
pub struct Preset {
    pub name: &'static str,
    /// One line for `binclass experiments`.
    pub what: &'static str,
    /// The article's finding, as the report quotes it.
    pub article: &'static str,
    /// The same finding as a statement `compare` checks on runs, and when
    /// the runs bear it out.
    pub says: &'static str,
    pub holds_when: Check,
    pub changes: &'static [(&'static str, &'static str)],
}

pub enum Check {
    /// Mean final validation accuracy at least this.
    FinalAtLeast(f64),
    /// Mean final validation accuracy within these bounds.
    FinalWithin(f64, f64),
    /// The runs end, on average, more than this below their best.
    DropFromBest(f64),
}

pub const PRESETS: &[Preset] = &[
    Preset {
        name: "baseline",
        what: "2 features, no noise: ~99% accuracy almost at once",
        article: "reaches about 99 % almost at once",
        says: "reaches about 0.99",
        holds_when: Check::FinalAtLeast(0.98),
        changes: &[],
    },
    Preset {
        name: "noise",
        what: "20% of labels flipped: accuracy drops by about the noise",
        article: "accuracy drops by about the noise (20 %)",
        says: "falls by about the noise (to ~0.8)",
        holds_when: Check::FinalWithin(0.75, 0.85),
        changes: &[("noise-rate", "0.2")],
    },
    Preset {
        name: "dummy-features",
        what: "5 features, 3 of them unrelated dummies: still learns, noisier",
        article: "still learns despite three dummy features, a little noisier",
        says: "still learns (>= 0.95)",
        holds_when: Check::FinalAtLeast(0.95),
        changes: &[("features", "5")],
    },
    Preset {
        name: "scaled",
        what: "features x1000: training becomes unstable",
        article: "features ×1000: training does not settle, worse near the end",
        says: "is unstable: ends well below its best (by > 0.02)",
        holds_when: Check::DropFromBest(0.02),
        changes: &[("scale", "1000")],
    },
    Preset {
        name: "scaled-long",
        what: "features x1000 over 500 epochs: stays unstable",
        article: "features ×1000 over 500 epochs: still unstable",
        says: "is unstable: ends well below its best (by > 0.02)",
        holds_when: Check::DropFromBest(0.02),
        changes: &[("scale", "1000"), ("epochs", "500")],
    },
    Preset {
        name: "shifted",
        what: "features +1000: ~50%, nothing is learned",
        article: "features +1000: about 50 %, nothing learned",
        says: "stays about 0.5 (0.45..0.55)",
        holds_when: Check::FinalWithin(0.45, 0.55),
        changes: &[("shift", "1000")],
    },
];

/// Hidden width of the article: `int(F * 1.2 + 1)`.
pub fn default_units(features: i64) -> i64 {
    (features as f64 * 1.2 + 1.0) as i64
}

pub fn preset_names() -> Vec<&'static str> {
    PRESETS.iter().map(|p| p.name).collect()
}

impl Experiment {
    pub fn preset(name: &str) -> Result<Self> {
        let p = PRESETS.iter().find(|p| p.name == name).ok_or_else(|| {
            anyhow!(
                "unknown experiment '{name}': choose one of {}",
                preset_names().join(", ")
            )
        })?;
        let mut e = Experiment {
            name: name.to_string(),
            ..Default::default()
        };
        for (flag, value) in p.changes {
            e.set(flag, value)?;
        }
        e.units = default_units(e.features);
        Ok(e)
    }

    /// A preset with the user's overrides applied, checked.
    pub fn resolve(name: &str, o: &Overrides) -> Result<Self> {
        let mut e = Self::preset(name)?;
        e.apply(o);
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

    /// What one replica of this setting costs to train in a sweep, in
    /// units of about a row's pass through one parameter: the cost model
    /// `--shard` cuts by (docs/sweep.md#what-a-replica-costs). It depends
    /// on the settings only, never on the machine, so every shard of a
    /// command, wherever it runs, cuts alike. Per epoch: each step's
    /// libtorch calls, about 400 a layer whatever the rows (a step's time
    /// at 64 lanes is mostly per-call overhead); each training row through
    /// the parameters three times (forward, and the backward's two
    /// products) and each validation row once; 100 a row for the shuffle's
    /// gather and the metrics. Fitted to the CPU time of 64-lane batches of
    /// ten shapes (batch size 1–120, 0–10 hidden layers, 3–12 units, 2–5
    /// features, 2,000–10,000 samples), each predicted within 7 % on a
    /// quiet machine (within 28 % on a loaded one); batches of 1,000 rows
    /// cost 25 % more than this (they outgrow the caches).
    /// Activations, data knobs and the learning rate are taken to cost
    /// alike; drawing the data, once a run, is left out.
    pub fn work(&self) -> u128 {
        const STEP_PER_LAYER: u128 = 400;
        const ROW: u128 = 100;
        let layers = self.hidden_layers as u128 + 1;
        let (rows, train) = (self.samples as u128, self.train_len() as u128);
        let steps = self.steps_per_epoch() as u128;
        let passes = 3 * train + (rows - train);
        let epoch =
            STEP_PER_LAYER * steps * layers + passes * self.parameters() as u128 + ROW * rows;
        self.epochs as u128 * epoch
    }

    pub fn validate(&self) -> Result<()> {
        // Unless --units is given, the width follows --features: one out of
        // bounds is then the features' doing, and named as the flag given.
        let (samples, f, units) = (self.samples, self.features, self.units);
        let width_from_features = units == default_units(f);
        if let Err(err) = self.check_bounds() {
            if width_from_features && units > MAX_UNITS {
                bail!(
                    "--features {f} makes the default width int({f} × 1.2 + 1) = {units} units, more than {MAX_UNITS}: lower --features or give --units"
                );
            }
            return Err(err);
        }
        ensure!(
            samples * f <= 1_000_000_000,
            "--samples {samples} x --features {f} is more than 1e9 values; lower one of them"
        );
        let params = self.parameters();
        if params > MAX_PARAMETERS {
            let lower = if width_from_features {
                "--features or --hidden-layers, or give a smaller --units"
            } else {
                "--units or --hidden-layers"
            };
            bail!("the network would have {params} parameters (at most 1e8): lower {lower}");
        }
        let train = self.train_len();
        ensure!(
            train >= 1 && train < samples,
            "--split {} of {samples} samples leaves {train} training and {} validation rows; both must be >= 1",
            shown(self.split),
            samples - train
        );
        Ok(())
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

/// The widest hidden layer.
pub const MAX_UNITS: i64 = 10_000;

/// The most trainable parameters a network may have (1e8).
pub const MAX_PARAMETERS: i64 = 100_000_000;

/// libtorch CPU threads: `--threads`, else `BINCLASS_THREADS` (unset or
/// empty: 1, fastest for this tiny network).
pub fn threads(flag: Option<i64>) -> Result<i32> {
    let (n, from) = match flag {
        Some(n) => (n, "--threads"),
        None => {
            // Not Unicode: refused, shown lossily, as any other bad value.
            let v = std::env::var_os("BINCLASS_THREADS").unwrap_or_default();
            let v = v.to_string_lossy();
            if v.trim().is_empty() {
                return Ok(1);
            }
            let n = v.trim().parse().map_err(|_| {
                anyhow!("BINCLASS_THREADS={v}: expected a whole number in 1..=1024")
            })?;
            (n, "BINCLASS_THREADS")
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_setting_reads_back_from_its_name_and_value() {
        let o = Overrides {
            lr: Some(0.5),
            activation: Some(Activation::Relu),
            ..Default::default()
        };
        let e = Experiment::resolve("dummy-features", &o).unwrap();
        let mut back = Experiment::preset("baseline").unwrap();
        back.name = e.name.clone();
        for (flag, value) in e.settings() {
            back.set(flag, &value).unwrap();
        }
        assert_eq!(back, e);
        let err = back.set("nope", "1").unwrap_err().to_string();
        assert!(err.contains("unknown setting 'nope'"), "{err}");
        assert!(back.set("epochs", "x").is_err());
    }

    #[test]
    fn batch_shape_forgets_only_the_settings_whose_values_share_batches() {
        let base = Experiment::preset("baseline").unwrap();
        let varied = |flag: &str, value: &str| {
            let mut e = base.clone();
            e.set(flag, value).unwrap();
            e
        };
        for (flag, value) in [
            ("noise-rate", "0.2"),
            ("lr", "0.1"),
            ("normalize", "standard"),
        ] {
            assert_eq!(
                varied(flag, value).batch_shape(),
                base.batch_shape(),
                "{flag}"
            );
        }
        for (flag, value) in [("units", "4"), ("epochs", "3"), ("init", "torch")] {
            assert_ne!(
                varied(flag, value).batch_shape(),
                base.batch_shape(),
                "{flag}"
            );
        }
    }

    #[test]
    fn width_rule_matches_the_article() {
        assert_eq!(default_units(2), 3);
        assert_eq!(default_units(5), 7);
    }

    #[test]
    fn every_preset_resolves_and_validates() {
        for p in PRESETS {
            let e = Experiment::resolve(p.name, &Overrides::default()).unwrap();
            assert_eq!(e.name, p.name);
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
    fn a_replicas_work_follows_its_epochs_and_shape_not_its_data() {
        let work = |name: &str| Experiment::preset(name).unwrap().work();
        let base = work("baseline");
        assert_eq!(work("scaled-long"), 5 * work("scaled"));
        for data_only in ["noise", "scaled", "shifted"] {
            assert_eq!(work(data_only), base, "{data_only}");
        }
        // Wider layers (5 features, 7 units) and smaller batches cost more:
        // measured 2.2x and 1.6x the baseline's CPU time, predicted 2.4x, 1.6x.
        let wider = work("dummy-features") as f64 / base as f64;
        assert!((2.2..2.5).contains(&wider), "{wider}");
        let mut small = Experiment::preset("baseline").unwrap();
        small.batch_size = 7;
        let smaller = small.work() as f64 / base as f64;
        assert!((1.5..1.7).contains(&smaller), "{smaller}");
        // The largest settings the bounds allow cost a finite number.
        let mut huge = Experiment::preset("baseline").unwrap();
        (huge.epochs, huge.samples, huge.batch_size) = (100_000_000, 100_000_000, 1);
        (huge.hidden_layers, huge.units) = (1_000, MAX_UNITS);
        assert!(huge.work() > base);
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
