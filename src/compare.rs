//! `binclass compare`: our runs against Keras's, preset by preset, from
//! CSVLogger files (Keras's and ours share the format), with a three-way
//! verdict a statistician would sign: consistent, differs, or inconclusive
//! with the seeds that would settle it.

mod render;
mod runs;

use std::collections::BTreeMap;

use anyhow::{Result, bail};
use clap::ValueEnum;

pub use crate::stats::{CurveTest, Welch, curve_test, mean_sd, pooled_sd, seeds_needed, welch};
pub use render::{explain, render, render_found};
pub use runs::{
    Curve, Identity, Ours, Run, VAL_ACC, csvs_below, csvs_in, diverged, identify, load_ours,
    load_reference, read_curve, reference_dir,
};

/// Default equivalence margin δ: the article quotes accuracies to about two
/// points ("~99 %", "drops by about the noise"), so a port within ±0.02 of
/// Keras's mean tells the same story.
pub const DEFAULT_MARGIN: f64 = 0.02;

/// Verdict rule, stated in `--help`, README and REPORT.md.
pub const RULE: &str = "\
Verdict, per preset and per optimizer of ours, on the final validation accuracy over seeds; \
δ = --margin (default 0.02):
- `differs`: Welch's two-sided t-test finds the means different at 5% and |mean difference| > δ; \
or the curves disagree: their gap G (the mean over epochs of |our mean - Keras's mean| validation \
accuracy) exceeds δ and a permutation test of G (run labels shuffled between the pooled runs: every \
split when there are at most 5000, else 4999 seeded draws) gives p < 0.01.
- `consistent` (when not `differs`): two one-sided Welch t-tests at 5% each (TOST) put the \
difference within ±δ, i.e. its 90% confidence interval lies inside (-δ, +δ).
- `inconclusive`: neither. Shown with the seeds a side TOST needs for 80% power if the true \
difference is 0: the smallest n with n >= 2 (t[0.95; 2n-2] + t[0.90; 2n-2])^2 s^2 / δ^2, s^2 the \
pooled variance of the final accuracies (the normal approximation 2 (1.645 + 1.282)^2 s^2 / δ^2, \
with t for z).

No threshold moves with the number of seeds; only the tests' power does. `epochs in Keras ±sd` \
(information only): the share of epochs at which our mean lies within Keras's mean ± one sd over \
seeds. Diverged runs (NaN or infinite values) are counted apart, not averaged. `--strict` exits \
non-zero on `differs`, `--strict-inconclusive` on `differs` or `inconclusive`.";

pub fn parse_margin(s: &str) -> Result<f64, String> {
    let v: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("'{s}' is not a number"))?;
    if !v.is_finite() || v <= 0.0 || v >= 1.0 {
        return Err(format!(
            "the margin is an accuracy difference, between 0 and 1 exclusive; got {s}"
        ));
    }
    Ok(v)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Text,
    Markdown,
    Csv,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Consistent,
    Differs,
    Inconclusive,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Consistent => "consistent",
            Verdict::Differs => "differs",
            Verdict::Inconclusive => "inconclusive",
        }
    }
}

/// The rule of [`RULE`].
pub fn verdict(final_diff: &Welch, curves: &CurveTest, margin: f64) -> Verdict {
    if final_diff.differs(margin) || (curves.p < 0.01 && curves.gap > margin) {
        Verdict::Differs
    } else if final_diff.equivalent(margin) {
        Verdict::Consistent
    } else {
        Verdict::Inconclusive
    }
}

/// The article's statement for a preset, on Keras's runs and on ours:
/// (statement, (holds, figure) for Keras, (holds, figure) for ours).
pub type Claim = (&'static str, (bool, String), (bool, String));

pub struct Row {
    pub preset: String,
    /// The optimizer our runs used (`adam`, `keras-adam`, or `unrecorded`).
    pub optimizer: String,
    pub n_ours: usize,
    pub n_keras: usize,
    pub diverged_ours: usize,
    pub diverged_keras: usize,
    pub final_ours: (f64, f64),
    pub final_keras: (f64, f64),
    pub best_ours: (f64, f64),
    pub best_keras: (f64, f64),
    pub margin: f64,
    pub welch: Welch,
    pub curves: CurveTest,
    pub in_sd: f64,
    /// Pooled sd of the final accuracies, which the seed estimate uses.
    pub pooled_sd: f64,
    pub seeds_needed: u64,
    pub verdict: Verdict,
    pub claim: Option<Claim>,
}

/// Checks that a preset's runs can be compared: at least 2 seeds a side
/// (the interval needs a spread on both) and every run the same length.
pub fn check_comparable(preset: &str, ours: &[&Curve], keras: &[&Curve]) -> Result<()> {
    if ours.len() < 2 || keras.len() < 2 {
        bail!(
            "preset '{preset}': {} of our runs and {} of Keras's (not counting diverged ones); \
             comparing needs at least 2 seeds on each side",
            ours.len(),
            keras.len()
        );
    }
    let lens = |c: &[&Curve]| {
        c.iter()
            .map(|c| c.len())
            .collect::<std::collections::BTreeSet<_>>()
    };
    let (lo, lk) = (lens(ours), lens(keras));
    if lo.len() > 1 || lk.len() > 1 || lo != lk {
        bail!(
            "preset '{preset}': our runs have {lo:?} epochs and Keras's {lk:?}; compare runs of the same length \
             (a run stopped early, or trained with --epochs, cannot be compared at its last epoch)"
        );
    }
    Ok(())
}

fn last(c: &Curve) -> f64 {
    c[c.len() - 1][VAL_ACC]
}

fn best(c: &Curve) -> f64 {
    c.iter()
        .map(|r| r[VAL_ACC])
        .fold(f64::NEG_INFINITY, f64::max)
}

fn val_series(c: &[&Curve]) -> Vec<Vec<f64>> {
    c.iter()
        .map(|c| c.iter().map(|r| r[VAL_ACC]).collect())
        .collect()
}

/// Share of epochs where our mean lies within Keras's mean ± sd.
fn share_within_sd(ours: &[Vec<f64>], keras: &[Vec<f64>]) -> f64 {
    let epochs = ours[0].len();
    let at = |runs: &[Vec<f64>], e: usize| mean_sd(&runs.iter().map(|c| c[e]).collect::<Vec<_>>());
    let inside = (0..epochs)
        .filter(|&e| {
            let ((mo, _), (mk, sk)) = (at(ours, e), at(keras, e));
            (mo - mk).abs() <= sk
        })
        .count();
    inside as f64 / epochs as f64
}

/// Compares one preset's runs of ours (one optimizer) with Keras's.
pub fn compare_preset(
    preset: &str,
    optimizer: &str,
    ours: &[Curve],
    keras: &[Curve],
    margin: f64,
) -> Result<Row> {
    let (ok_o, ok_k): (Vec<&Curve>, Vec<&Curve>) = (
        ours.iter().filter(|c| !diverged(c)).collect(),
        keras.iter().filter(|c| !diverged(c)).collect(),
    );
    check_comparable(preset, &ok_o, &ok_k)?;
    let fo: Vec<f64> = ok_o.iter().map(|c| last(c)).collect();
    let fk: Vec<f64> = ok_k.iter().map(|c| last(c)).collect();
    let bo: Vec<f64> = ok_o.iter().map(|c| best(c)).collect();
    let bk: Vec<f64> = ok_k.iter().map(|c| best(c)).collect();
    let (so, sk) = (val_series(&ok_o), val_series(&ok_k));
    let w = welch(&fo, &fk);
    let curves = curve_test(&so, &sk);
    let owned = |v: &[&Curve]| v.iter().map(|c| (*c).clone()).collect::<Vec<Curve>>();
    let claim = match (
        article_claim(preset, &owned(&ok_k)),
        article_claim(preset, &owned(&ok_o)),
    ) {
        (Some((what, kh, kv)), Some((_, oh, ov))) => Some((what, (kh, kv), (oh, ov))),
        _ => None,
    };
    Ok(Row {
        preset: preset.to_string(),
        optimizer: optimizer.to_string(),
        n_ours: ok_o.len(),
        n_keras: ok_k.len(),
        diverged_ours: ours.len() - ok_o.len(),
        diverged_keras: keras.len() - ok_k.len(),
        final_ours: mean_sd(&fo),
        final_keras: mean_sd(&fk),
        best_ours: mean_sd(&bo),
        best_keras: mean_sd(&bk),
        margin,
        welch: w,
        curves,
        in_sd: share_within_sd(&so, &sk),
        pooled_sd: pooled_sd(&fo, &fk),
        seeds_needed: seeds_needed(pooled_sd(&fo, &fk), margin),
        verdict: verdict(&w, &curves, margin),
        claim,
    })
}

/// Mean over seeds of (best - final) validation accuracy: how far a run ends
/// below the best it reached, the article's "worse near the final epochs".
fn drop_from_best(curves: &[Curve]) -> f64 {
    let drops: Vec<f64> = curves.iter().map(|c| best(c) - last(c)).collect();
    mean_sd(&drops).0
}

/// The article's statement about a preset, checked on a set of runs:
/// (statement, holds, the measured figure).
pub fn article_claim(preset: &str, curves: &[Curve]) -> Option<(&'static str, bool, String)> {
    use crate::config::Check;
    let claim = &crate::config::PRESETS
        .iter()
        .find(|p| p.name == preset)?
        .claim;
    let fin = mean_sd(&curves.iter().map(last).collect::<Vec<_>>()).0;
    let acc = format!("final val acc {fin:.4}");
    Some(match claim.holds_when {
        Check::FinalAtLeast(min) => (claim.says, fin >= min, acc),
        Check::FinalWithin(lo, hi) => (claim.says, (lo..=hi).contains(&fin), acc),
        Check::DropFromBest(by) => {
            let d = drop_from_best(curves);
            (claim.says, d > by, format!("best - final {d:.4}"))
        }
    })
}

/// Where a preset comes in the article (unknown names last).
fn article_order(preset: &str) -> usize {
    crate::config::PRESETS
        .iter()
        .position(|p| p.name == preset)
        .unwrap_or(usize::MAX)
}

/// Groups of our runs keyed (article order, label, optimizer).
pub type Groups<'a> = BTreeMap<(usize, String, String), Vec<&'a Run>>;

/// Our comparable runs grouped by preset and optimizer, and the rest.
pub fn group(ours: &Ours) -> (Groups<'_>, Groups<'_>) {
    let (mut with_ref, mut without): (Groups, Groups) = Default::default();
    for r in &ours.runs {
        let key = (
            article_order(&r.id.preset),
            r.id.label(),
            r.id.optimizer.clone(),
        );
        let into = if r.id.has_reference() {
            &mut with_ref
        } else {
            &mut without
        };
        into.entry(key).or_default().push(r);
    }
    (with_ref, without)
}

/// Compares every group that has a Keras counterpart.
pub fn compare_groups(
    groups: &Groups,
    keras: &BTreeMap<String, Vec<Curve>>,
    reference: &std::path::Path,
    margin: f64,
) -> Result<Vec<Row>> {
    let mut rows = vec![];
    for ((_, preset, optimizer), runs) in groups {
        let Some(theirs) = keras.get(preset) else {
            bail!(
                "preset '{preset}' has no Keras runs in {} (it has: {})",
                reference.display(),
                keras.keys().cloned().collect::<Vec<_>>().join(", ")
            );
        };
        let curves: Vec<Curve> = runs.iter().map(|r| r.curve.clone()).collect();
        rows.push(compare_preset(preset, optimizer, &curves, theirs, margin)?);
    }
    Ok(rows)
}

/// How a row is named in messages: its preset, with the optimizer when
/// the preset has rows for more than one.
pub fn row_name(r: &Row, rows: &[Row]) -> String {
    if rows.iter().filter(|o| o.preset == r.preset).count() > 1 {
        format!("{} ({})", r.preset, r.optimizer)
    } else {
        r.preset.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn curve(val: &[f64]) -> Curve {
        val.iter().map(|&v| [v, 0.1, v, 0.1]).collect()
    }

    fn runs(n: usize, f: impl Fn(f64) -> Vec<f64>) -> Vec<Curve> {
        (0..n).map(|i| curve(&f(i as f64 * 0.001))).collect()
    }

    #[test]
    fn same_distribution_is_consistent_and_a_shift_differs() {
        let keras = runs(10, |j| vec![0.9, 0.95, 0.98 + j]);
        let same = runs(10, |j| vec![0.9, 0.95, 0.9805 + j]);
        let r = compare_preset("baseline", "adam", &same, &keras, 0.02).unwrap();
        assert_eq!(r.verdict, Verdict::Consistent);
        let worse = runs(10, |j| vec![0.8, 0.85, 0.88 + j]);
        let r = compare_preset("baseline", "adam", &worse, &keras, 0.02).unwrap();
        assert_eq!(r.verdict, Verdict::Differs);
        assert!((r.welch.diff + 0.1).abs() < 1e-9);
        assert_eq!(r.in_sd, 0.0);
    }

    #[test]
    fn curves_apart_for_most_epochs_differ_even_when_they_end_alike() {
        let keras = runs(10, |j| vec![0.9 + j, 0.95 + j, 0.97 + j, 0.98 + j]);
        let slow = runs(10, |j| vec![0.6 + j, 0.7 + j, 0.8 + j, 0.98 + j]);
        let r = compare_preset("baseline", "adam", &slow, &keras, 0.02).unwrap();
        assert!(r.welch.equivalent(0.02), "the final epoch agrees");
        assert!(r.curves.gap > 0.1 && r.curves.p < 0.01, "{:?}", r.curves);
        assert_eq!(r.verdict, Verdict::Differs);
    }

    #[test]
    fn a_wide_spread_with_few_seeds_is_inconclusive_with_a_seed_count() {
        let keras = runs(10, |j| vec![0.9, 0.8 + 20.0 * j]);
        let ours = runs(2, |j| vec![0.9, 0.85 + 50.0 * j]);
        let r = compare_preset("scaled", "keras-adam", &ours, &keras, 0.02).unwrap();
        assert_eq!(r.verdict, Verdict::Inconclusive);
        assert_eq!(r.seeds_needed, seeds_needed(r.pooled_sd, 0.02));
        assert!(r.seeds_needed > 10, "{}", r.seeds_needed);
        assert!(explain(&[r])[0].contains("seeds a side would show equivalence"));
    }

    #[test]
    fn diverged_runs_are_counted_apart_not_averaged() {
        let keras = runs(4, |j| vec![0.9, 0.98 + j]);
        let mut ours = runs(3, |j| vec![0.9, 0.98 + j]);
        ours.push(vec![[0.5, f64::NAN, 0.5, f64::NAN]; 2]);
        let r = compare_preset("baseline", "adam", &ours, &keras, 0.02).unwrap();
        assert_eq!((r.n_ours, r.diverged_ours), (3, 1));
        assert!(r.final_ours.0.is_finite() && r.final_ours.0 > 0.97);
        assert!(
            render(&[r], Format::Markdown)
                .unwrap()
                .contains("| 3+1 diverged/4 |")
        );
    }

    #[test]
    fn the_margin_must_be_a_finite_accuracy_difference() {
        assert_eq!(parse_margin("0.05"), Ok(0.05));
        for bad in ["0", "1", "-0.1", "nan", "inf", "abc", "1.5"] {
            assert!(parse_margin(bad).is_err(), "{bad}");
        }
    }
}
