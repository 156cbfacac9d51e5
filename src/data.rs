//! The article's synthetic data set: uniform features, label = x0 > x1, a
//! fraction of labels flipped, then the features transformed (×scale, +shift).

use anyhow::{Context, Result, anyhow};
use tch::{Device, Kind, Tensor};

use crate::config::{Experiment, Normalize};
use crate::rng::{self, Stream};

/// Features (row-major, `samples × features`, float64 as numpy draws them) and labels.
#[derive(Clone, Debug)]
pub struct Dataset {
    pub features: Vec<f64>,
    pub labels: Vec<f64>,
    pub width: usize,
    /// The scaling applied to `features`, which a saved model keeps so that
    /// new points can be scaled as its training rows were.
    pub normalization: Normalization,
}

/// What was done to the features after they were drawn and transformed.
#[derive(Clone, Debug, PartialEq)]
pub enum Normalization {
    None,
    /// z-scores with these per-feature means and standard deviations.
    Standard {
        mean: Vec<f64>,
        sd: Vec<f64>,
    },
}

impl Normalization {
    /// Scales one point (`features` values) as the training rows were scaled,
    /// in float64 with the same operations, so a point given as its raw
    /// values becomes exactly the training row the model saw.
    pub fn apply(&self, point: &mut [f64]) {
        if let Normalization::Standard { mean, sd } = self {
            for ((x, m), s) in point.iter_mut().zip(mean).zip(sd) {
                *x = (*x - m) / s;
            }
        }
    }
}

/// The data on the training device, float32 as Keras's first Dense layer casts it.
pub struct Split {
    pub train_x: Tensor,
    pub train_y: Tensor,
    pub val_x: Tensor,
    pub val_y: Tensor,
}

impl Dataset {
    /// Draws in the article's order: every feature first, then every noise draw.
    pub fn generate(e: &Experiment, seed: u64) -> Result<Self> {
        let (n, f) = (e.samples as usize, e.features as usize);
        let cells = n
            .checked_mul(f)
            .ok_or_else(|| anyhow!("--samples {n} x --features {f} is too large"))?;
        let mut features = Vec::new();
        features.try_reserve_exact(cells).map_err(|_| {
            anyhow!("cannot allocate {n} samples x {f} features: lower --samples or --features")
        })?;
        let mut r = rng::stream(seed, Stream::Data);
        features.extend((0..cells).map(|_| rng::uniform(&mut r)));
        let labels = (0..n)
            .map(|i| {
                // The article's `(rand > NOISE_RATE) * 2 - 1`: keep = +1, flip = -1.
                let keep = if rng::uniform(&mut r) > e.noise_rate {
                    1.0
                } else {
                    -1.0
                };
                let sign = sign(features[i * f] - features[i * f + 1]);
                (sign * keep + 1.0) / 2.0
            })
            .collect();
        // Labels come from the raw features; the transform cannot change them.
        for x in &mut features {
            *x = *x * e.scale + e.shift;
        }
        let mut d = Dataset {
            features,
            labels,
            width: f,
            normalization: Normalization::None,
        };
        if e.normalize == Normalize::Standard {
            d.standardize(e.train_len() as usize);
        }
        Ok(d)
    }

    /// z-scores every feature with the mean and (population) standard
    /// deviation of the first `train_len` rows: validation rows are scaled by
    /// statistics they did not contribute to. A constant feature is only
    /// centred, as scikit-learn's StandardScaler does.
    pub fn standardize(&mut self, train_len: usize) {
        let f = self.width;
        let (mean, sd) = (0..f)
            .map(|j| {
                let col = || self.features[..train_len * f].iter().skip(j).step_by(f);
                let mean = col().sum::<f64>() / train_len as f64;
                let var = col().map(|x| (x - mean).powi(2)).sum::<f64>() / train_len as f64;
                (mean, if var > 0.0 { var.sqrt() } else { 1.0 })
            })
            .unzip();
        let scaling = Normalization::Standard { mean, sd };
        for point in self.features.chunks_mut(f) {
            scaling.apply(point);
        }
        self.normalization = scaling;
    }

    fn len(&self) -> usize {
        self.labels.len()
    }

    /// The first `train_len` rows train, the rest validate; no shuffle first.
    pub fn split(&self, train_len: usize, device: Device) -> Result<Split> {
        let (n, f) = (self.len() as i64, self.width as i64);
        let x = Tensor::from_slice(&self.features)
            .view([n, f])
            .to_kind(Kind::Float);
        let y = Tensor::from_slice(&self.labels)
            .view([n, 1])
            .to_kind(Kind::Float);
        let t = train_len as i64;
        let to = |t: Tensor| {
            t.f_to_device(device)
                .with_context(|| format!("cannot move the data set to {device:?}"))
        };
        Ok(Split {
            train_x: to(x.narrow(0, 0, t))?,
            train_y: to(y.narrow(0, 0, t))?,
            val_x: to(x.narrow(0, t, n - t))?,
            val_y: to(y.narrow(0, t, n - t))?,
        })
    }
}

/// numpy's sign: 0 for 0, so a tie gives the label 0.5 exactly as the article's formula.
fn sign(x: f64) -> f64 {
    if x == 0.0 { 0.0 } else { x.signum() }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Overrides;

    fn exp(o: Overrides) -> Experiment {
        Experiment::resolve("baseline", &o).unwrap()
    }

    #[test]
    fn label_is_one_exactly_when_feature_0_exceeds_feature_1() {
        let d = Dataset::generate(&exp(Overrides::default()), 0).unwrap();
        for i in 0..d.len() {
            let expected = if d.features[2 * i] > d.features[2 * i + 1] {
                1.0
            } else {
                0.0
            };
            assert_eq!(d.labels[i], expected, "row {i}");
        }
        let ones = d.labels.iter().sum::<f64>() / d.len() as f64;
        assert!((ones - 0.5).abs() < 0.02, "{ones}");
    }

    #[test]
    fn noise_flips_about_the_noise_rate() {
        let clean = Dataset::generate(&exp(Overrides::default()), 4).unwrap();
        let noisy = Dataset::generate(
            &exp(Overrides {
                noise_rate: Some(0.2),
                ..Default::default()
            }),
            4,
        )
        .unwrap();
        assert_eq!(clean.features, noisy.features);
        let flipped = clean
            .labels
            .iter()
            .zip(&noisy.labels)
            .filter(|(a, b)| a != b)
            .count() as f64
            / clean.len() as f64;
        // 10,000 draws: sd of the fraction is 0.004.
        assert!((flipped - 0.2).abs() < 0.016, "{flipped}");
    }

    #[test]
    fn dummy_features_do_not_change_labels() {
        let five = Dataset::generate(
            &exp(Overrides {
                features: Some(5),
                ..Default::default()
            }),
            2,
        )
        .unwrap();
        for i in 0..five.len() {
            let row = &five.features[5 * i..5 * i + 5];
            assert_eq!(five.labels[i], if row[0] > row[1] { 1.0 } else { 0.0 });
        }
        // Changing only the dummies leaves every label alone.
        let mut changed = five.clone();
        for i in 0..changed.len() {
            changed.features[5 * i + 2..5 * i + 5].fill(0.123);
        }
        assert_eq!(five.labels, changed.labels);
    }

    #[test]
    fn scale_and_shift_transform_features_and_keep_labels() {
        let plain = Dataset::generate(&exp(Overrides::default()), 9).unwrap();
        let moved = Dataset::generate(
            &exp(Overrides {
                scale: Some(1000.0),
                shift: Some(1000.0),
                ..Default::default()
            }),
            9,
        )
        .unwrap();
        assert_eq!(plain.labels, moved.labels);
        for (a, b) in plain.features.iter().zip(&moved.features) {
            assert_eq!(*b, a * 1000.0 + 1000.0);
        }
    }

    #[test]
    fn standard_normalisation_uses_training_rows_only() {
        let o = |n| Overrides {
            shift: Some(1000.0),
            scale: Some(1000.0),
            normalize: Some(n),
            ..Default::default()
        };
        let raw = Dataset::generate(&exp(o(Normalize::None)), 5).unwrap();
        let norm = Dataset::generate(&exp(o(Normalize::Standard)), 5).unwrap();
        assert_eq!(raw.labels, norm.labels);
        for j in 0..2 {
            let train: Vec<f64> = raw.features[..16000]
                .iter()
                .skip(j)
                .step_by(2)
                .copied()
                .collect();
            let mean = train.iter().sum::<f64>() / 8000.0;
            let sd = (train.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / 8000.0).sqrt();
            for (r, n) in raw
                .features
                .iter()
                .skip(j)
                .step_by(2)
                .zip(norm.features.iter().skip(j).step_by(2))
            {
                assert!(((r - mean) / sd - n).abs() < 1e-9);
            }
            // Training rows standardised exactly; validation rows only nearly.
            let nt: Vec<f64> = norm.features[..16000]
                .iter()
                .skip(j)
                .step_by(2)
                .copied()
                .collect();
            let m = nt.iter().sum::<f64>() / 8000.0;
            let v = nt.iter().map(|x| (x - m).powi(2)).sum::<f64>() / 8000.0;
            assert!(m.abs() < 1e-9 && (v - 1.0).abs() < 1e-9);
            let nv: Vec<f64> = norm.features[16000..]
                .iter()
                .skip(j)
                .step_by(2)
                .copied()
                .collect();
            assert!(
                (nv.iter().sum::<f64>() / 2000.0).abs() > 1e-6,
                "validation rows did not set the mean"
            );
        }
        // Changing only validation rows leaves the training rows' scaling as it was.
        let mut moved = raw.clone();
        moved.features[16000..]
            .iter_mut()
            .for_each(|x| *x += 5000.0);
        moved.standardize(8000);
        assert_eq!(moved.features[..16000], norm.features[..16000]);
    }

    #[test]
    fn split_takes_the_first_rows_for_training() {
        let d = Dataset::generate(&exp(Overrides::default()), 1).unwrap();
        let s = d.split(8000, Device::Cpu).unwrap();
        assert_eq!(s.train_x.size(), [8000, 2]);
        assert_eq!(s.val_x.size(), [2000, 2]);
        assert_eq!(s.val_y.size(), [2000, 1]);
        assert_eq!(s.train_x.kind(), Kind::Float);
        let first_val = f64::try_from(s.val_x.get(0).get(0)).unwrap();
        assert_eq!(first_val, d.features[16000] as f32 as f64);
        let last_train_label = f64::try_from(s.train_y.get(7999).get(0)).unwrap();
        assert_eq!(last_train_label, d.labels[7999]);
    }
}
