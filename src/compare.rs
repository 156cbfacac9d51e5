//! `binclass compare`: our runs against Keras's, preset by preset, from
//! CSVLogger files (Keras's and ours share the format), with a three-way
//! verdict a statistician would sign: consistent, differs, or inconclusive
//! with the seeds that would settle it.

mod render;
mod runs;

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};

use anyhow::{Result, bail};
use clap::ValueEnum;

use crate::stats::{bootstrap_interval, fisher_p, holm, permutation_p};
pub use crate::stats::{mean_sd, pooled_sd, seeds_needed};
pub use render::{explain, render, render_found};
pub use runs::{
    Curve, Identity, Ours, Run, VAL_ACC, csvs_below, csvs_in, diverged, identify, load_ours,
    load_reference, read_curve, reference_dir,
};

/// Default equivalence margin δ: the article quotes accuracies to about two
/// points ("~99 %", "drops by about the noise"), so a port within ±0.02 of
/// Keras's mean tells the same story.
pub const DEFAULT_MARGIN: f64 = 0.02;

/// A run whose final validation accuracy ends below this failed: chance is
/// 0.5, and of 1300 `scaled` runs the 150 that fail end below 0.536, the
/// rest above 0.586.
pub const FAILED_BELOW: f64 = 0.55;

/// The family-wise rate of a false `differs`.
pub const ALPHA: f64 = 0.05;

/// Verdict rule, stated in `--help`, README and REPORT.md.
pub const RULE: &str = "\
Verdict, per preset and per optimizer of ours, on the final validation accuracies over seeds \
(any number a side); δ = --margin (default 0.02). No test assumes normal outcomes: final \
accuracies are skewed, and on the ×1000 presets about one run in nine fails (ends near 0.5).
- `differs`: a test of the family {permutation test of the mean difference (Welch's t of the \
pooled runs relabelled, 1999 seeded draws), Fisher's exact test of the share of failed runs \
(final accuracy below 0.55, or diverged)} rejects at family-wise 5% (Holm: p-values shown \
adjusted, rejected at <= 0.05), and the difference it tests exceeds δ: |mean difference| > δ, or \
the failure shares differ by more than δ.
- `consistent` (when not `differs`): the 90% bootstrap-t interval of the mean difference (each \
side resampled on its own, 1999 seeded draws) lies inside (-δ, +δ): equivalence at 5%.
- `inconclusive`: neither. Shown with the seeds that would settle it, for the side that has \
fewer: with the other side's n fixed, the smallest n with (t[0.95; n-1] + t[0.90; n-1])^2 s^2 \
(1/n + 1/n_other) <= δ^2, 80% power for the equivalence test if the true difference is 0, s the \
sd of the side with more seeds, where it is estimated most precisely. Seeds a side \
(2 (t[0.95; 2n-2] + t[0.90; 2n-2])^2 s^2 / δ^2 <= n) when both sides have as many (s pooled), or \
when no number beside the other side's would do.

No threshold moves with the number of seeds; only the tests' power does. On random splits of \
1300-seed sweeps (docs/compare.md) a false `differs` came in 0-6% of draws, each count within a \
binomial allowance for a 5% rate. `curve gap` (mean over epochs of |our mean - Keras's mean| validation accuracy) and \
`epochs in Keras ±sd` (the share of epochs at which our mean lies within Keras's mean ± one sd) \
are information, not tests. Diverged runs (NaN or infinite values) are counted apart, not \
averaged. `--strict` exits non-zero on `differs`, `--strict-inconclusive` on `differs` or \
`inconclusive`.";

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

/// What decides the verdict, from final accuracies alone.
#[derive(Clone, Copy, Debug)]
pub struct Judged {
    /// Our mean final accuracy minus Keras's.
    pub diff: f64,
    /// Its 90% bootstrap-t interval.
    pub interval: (f64, f64),
    /// Failed runs (diverged ones included): ours, Keras's.
    pub failed: (u64, u64),
    /// Holm-adjusted p-values of the permutation test and of Fisher's test.
    pub p_mean: f64,
    pub p_failed: f64,
    pub verdict: Verdict,
}

/// The rule of [`RULE`] on both sides' final accuracies (diverged runs
/// apart, counted as failed).
pub fn judge(ours: &[f64], keras: &[f64], diverged: (usize, usize), margin: f64) -> Judged {
    let failed = |v: &[f64], d: usize| (v.iter().filter(|&&x| x < FAILED_BELOW).count() + d) as u64;
    let failed = (failed(ours, diverged.0), failed(keras, diverged.1));
    let runs = (
        (ours.len() + diverged.0) as u64,
        (keras.len() + diverged.1) as u64,
    );
    let p = holm(&[
        permutation_p(ours, keras),
        fisher_p(failed.0, runs.0, failed.1, runs.1),
    ]);
    let diff = mean_sd(ours).0 - mean_sd(keras).0;
    let share_diff = failed.0 as f64 / runs.0 as f64 - failed.1 as f64 / runs.1 as f64;
    let interval = bootstrap_interval(ours, keras, 0.90);
    let verdict =
        if (p[0] <= ALPHA && diff.abs() > margin) || (p[1] <= ALPHA && share_diff.abs() > margin) {
            Verdict::Differs
        } else if interval.0 > -margin && interval.1 < margin {
            Verdict::Consistent
        } else {
            Verdict::Inconclusive
        };
    Judged {
        diff,
        interval,
        failed,
        p_mean: p[0],
        p_failed: p[1],
        verdict,
    }
}

/// The seeds that would settle an inconclusive verdict.
#[derive(Clone, Debug)]
pub struct Need {
    pub seeds: u64,
    /// Whose: `Keras`, `ours`, or `a side`.
    pub side: &'static str,
    /// The sd it assumes, and where that comes from.
    pub sd: f64,
    pub sd_from: String,
}

/// [`seeds_needed`] for the side with fewer seeds, the other's fixed, from
/// the sd of the side with more, where it is estimated most precisely.
pub fn need(ours: &[f64], keras: &[f64], margin: f64) -> Need {
    let (no, nk) = (ours.len() as u64, keras.len() as u64);
    let spread = |v: &[f64], whose| (mean_sd(v).1, format!("from {whose} {} seeds", v.len()));
    let ((sd, sd_from), fixed, side) = match no.cmp(&nk) {
        Ordering::Equal => ((pooled_sd(ours, keras), "pooled".into()), None, "a side"),
        Ordering::Greater => (spread(ours, "our"), Some(no), "Keras"),
        Ordering::Less => (spread(keras, "Keras's"), Some(nk), "ours"),
    };
    let (seeds, side) = match seeds_needed(sd, margin, fixed) {
        Some(n) => (n, side),
        None => (seeds_needed(sd, margin, None).unwrap_or(2), "a side"),
    };
    Need {
        seeds,
        side,
        sd,
        sd_from,
    }
}

/// The article's statement for a preset, on Keras's runs and on ours:
/// (statement, (holds, figure) for Keras, (holds, figure) for ours).
pub type ArticleClaim = (&'static str, (bool, String), (bool, String));

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
    pub judged: Judged,
    /// Mean over epochs of |our mean − Keras's mean| validation accuracy.
    pub gap: f64,
    pub in_sd: f64,
    pub need: Need,
    pub verdict: Verdict,
    pub claim: Option<ArticleClaim>,
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
    let lens = |c: &[&Curve]| c.iter().map(|c| c.len()).collect::<BTreeSet<_>>();
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

/// `f` of each curve.
fn each(curves: &[&Curve], f: impl Fn(&Curve) -> f64) -> Vec<f64> {
    curves.iter().map(|c| f(c)).collect()
}

/// The curve gap (mean over epochs of |our mean − Keras's mean|) and the
/// share of epochs where our mean lies within Keras's mean ± sd.
fn curve_agreement(ours: &[&Curve], keras: &[&Curve]) -> (f64, f64) {
    let epochs = ours[0].len();
    let at = |runs: &[&Curve], e: usize| {
        mean_sd(&runs.iter().map(|c| c[e][VAL_ACC]).collect::<Vec<_>>())
    };
    let (mut gap, mut inside) = (0.0, 0);
    for e in 0..epochs {
        let ((mo, _), (mk, sk)) = (at(ours, e), at(keras, e));
        gap += (mo - mk).abs();
        inside += usize::from((mo - mk).abs() <= sk);
    }
    (gap / epochs as f64, inside as f64 / epochs as f64)
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
    let (fo, fk) = (each(&ok_o, last), each(&ok_k, last));
    let (gap, in_sd) = curve_agreement(&ok_o, &ok_k);
    let diverged = (ours.len() - ok_o.len(), keras.len() - ok_k.len());
    let judged = judge(&fo, &fk, diverged, margin);
    Ok(Row {
        preset: preset.to_string(),
        optimizer: optimizer.to_string(),
        n_ours: ok_o.len(),
        n_keras: ok_k.len(),
        diverged_ours: diverged.0,
        diverged_keras: diverged.1,
        final_ours: mean_sd(&fo),
        final_keras: mean_sd(&fk),
        best_ours: mean_sd(&each(&ok_o, best)),
        best_keras: mean_sd(&each(&ok_k, best)),
        margin,
        judged,
        gap,
        in_sd,
        need: need(&fo, &fk, margin),
        verdict: judged.verdict,
        claim: article_claim(preset, &ok_k, &ok_o),
    })
}

/// The article's statement about a preset, checked on Keras's runs and on
/// ours: whether it holds on each, with the measured figure.
pub fn article_claim(preset: &str, keras: &[&Curve], ours: &[&Curve]) -> Option<ArticleClaim> {
    use crate::config::Check;
    let p = crate::config::PRESETS.iter().find(|p| p.name == preset)?;
    let holds = |curves: &[&Curve]| {
        let fin = mean_sd(&each(curves, last)).0;
        let acc = format!("final val acc {fin:.4}");
        match p.holds_when {
            Check::FinalAtLeast(min) => (fin >= min, acc),
            Check::FinalWithin(lo, hi) => ((lo..=hi).contains(&fin), acc),
            Check::DropFromBest(by) => {
                // Mean over seeds of (best - final) validation accuracy: how far
                // a run ends below its best, the article's "worse near the final
                // epochs".
                let d = mean_sd(&each(curves, |c| best(c) - last(c))).0;
                (d > by, format!("best - final {d:.4}"))
            }
        }
    };
    Some((p.says, holds(keras), holds(ours)))
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
    let mut groups: [Groups; 2] = Default::default();
    for r in &ours.runs {
        let key = (
            article_order(&r.id.preset),
            r.id.label(),
            r.id.optimizer.clone(),
        );
        // With a reference first, then without.
        let into = &mut groups[usize::from(!r.id.has_reference())];
        into.entry(key).or_default().push(r);
    }
    groups.into()
}

/// Compares every group that has a Keras counterpart.
pub fn compare_groups(
    groups: &Groups,
    keras: &BTreeMap<String, Vec<Curve>>,
    reference: &std::path::Path,
    margin: f64,
) -> Result<Vec<Row>> {
    groups
        .iter()
        .map(|((_, preset, optimizer), runs)| {
            let Some(theirs) = keras.get(preset) else {
                bail!(
                    "preset '{preset}' has no Keras runs in {} (it has: {})",
                    reference.display(),
                    keras.keys().cloned().collect::<Vec<_>>().join(", ")
                );
            };
            let curves: Vec<Curve> = runs.iter().map(|r| r.curve.clone()).collect();
            compare_preset(preset, optimizer, &curves, theirs, margin)
        })
        .collect()
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
        assert!((r.judged.diff + 0.1).abs() < 1e-9);
        assert_eq!(r.in_sd, 0.0);
    }

    #[test]
    fn curves_apart_before_the_end_are_reported_not_judged() {
        let keras = runs(10, |j| vec![0.9 + j, 0.95 + j, 0.97 + j, 0.98 + j]);
        let slow = runs(10, |j| vec![0.6 + j, 0.7 + j, 0.8 + j, 0.98 + j]);
        let r = compare_preset("baseline", "adam", &slow, &keras, 0.02).unwrap();
        assert!((r.gap - 0.18).abs() < 1e-9, "{}", r.gap);
        assert_eq!(r.verdict, Verdict::Consistent, "the final epoch agrees");
    }

    #[test]
    fn a_failure_share_beyond_the_margin_differs_where_the_means_agree() {
        // A third of ours fail, the rest end high; Keras's never fail but
        // spread wide: equal means, so only Fisher's test can tell.
        let keras: Vec<Curve> = (0..30)
            .map(|i| curve(&[0.9, 0.65 + 0.012 * i as f64]))
            .collect();
        let ours: Vec<Curve> = (0..30)
            .map(|i| curve(&[0.9, if i % 3 == 0 { 0.5 } else { 0.986 }]))
            .collect();
        let r = compare_preset("scaled", "adam", &ours, &keras, 0.02).unwrap();
        assert!(
            r.judged.diff.abs() < 1e-3 && r.judged.p_mean > 0.5,
            "{:?}",
            r.judged
        );
        assert_eq!(r.judged.failed, (10, 0));
        assert!(r.judged.p_failed < 0.01, "{:?}", r.judged);
        assert_eq!(r.verdict, Verdict::Differs);
        // One failure in 30 against none: within δ of the same share.
        let one = judge(
            &[[0.98; 29].as_slice(), &[0.5]].concat(),
            &[0.98; 30],
            (0, 0),
            0.5,
        );
        assert_eq!((one.failed, one.p_failed), ((1, 0), 1.0));
    }

    #[test]
    fn a_wide_spread_with_few_seeds_is_inconclusive_with_a_seed_count() {
        let keras = runs(10, |j| vec![0.9, 0.8 + 20.0 * j]);
        let ours = runs(2, |j| vec![0.9, 0.85 + 50.0 * j]);
        let r = compare_preset("scaled", "keras-adam", &ours, &keras, 0.02).unwrap();
        assert_eq!(r.verdict, Verdict::Inconclusive);
        // Keras's 10 seeds cannot get the interval inside ±δ beside any
        // number of ours, so the count is a side's, from Keras's spread.
        assert_eq!(
            (r.need.side, r.need.sd_from.as_str()),
            ("a side", "from Keras's 10 seeds")
        );
        assert_eq!(Some(r.need.seeds), seeds_needed(r.need.sd, 0.02, None));
        assert!(r.need.seeds > 10, "{}", r.need.seeds);
        assert!(explain(&[r])[0].contains("seeds a side would show equivalence"));
    }

    #[test]
    fn seeds_needed_go_to_the_side_with_fewer_from_the_spread_of_the_other() {
        let sd = |n: usize, s: f64| {
            (0..n)
                .map(|i| 0.9 + s * if i % 2 == 0 { 1.0 } else { -1.0 })
                .collect::<Vec<_>>()
        };
        let n = need(&sd(1000, 0.03), &sd(10, 0.2), 0.02);
        assert_eq!(
            (n.side, n.sd_from.as_str()),
            ("Keras", "from our 1000 seeds")
        );
        assert_eq!(Some(n.seeds), seeds_needed(n.sd, 0.02, Some(1000)));
        let n = need(&sd(10, 0.2), &sd(300, 0.03), 0.02);
        assert_eq!(n.side, "ours");
        assert_eq!(need(&sd(10, 0.03), &sd(10, 0.03), 0.02).side, "a side");
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
