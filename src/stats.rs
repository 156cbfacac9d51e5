//! Statistics over seeds: mean and standard deviation, and behind
//! `compare`'s verdict tests whose error rates do not rest on normal
//! outcomes (final accuracies over seeds are skewed, and on the ×1000
//! presets bimodal): a permutation test of the mean difference, a bootstrap-t
//! interval for equivalence, Fisher's exact test of a failure share, Holm's
//! family-wise adjustment, and the seeds an equivalence test needs.
//! Resampling is seeded, so the same runs always get the same answer;
//! distributions come from `statrs`.

use rand_chacha::ChaCha8Rng;
use statrs::distribution::{ContinuousCDF, Discrete, Hypergeometric, Normal, StudentsT};
use statrs::statistics::{Max, Min};

use crate::rng::{Stream, below, stream};

/// `0.9912 ± 0.0031 (sd)`, as summaries print a set of runs.
pub fn mean_sd_text(v: &[f64]) -> String {
    if v.is_empty() {
        return "n/a".into();
    }
    let (mean, sd) = mean_sd(v);
    format!("{mean:.4} ± {sd:.4} (sd)")
}

/// Mean and sample standard deviation (n − 1).
pub fn mean_sd(v: &[f64]) -> (f64, f64) {
    let n = v.len() as f64;
    let mean = v.iter().sum::<f64>() / n;
    let var = if v.len() > 1 {
        v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0)
    } else {
        0.0
    };
    (mean, var.sqrt())
}

/// Student's t distribution's `p` quantile; the normal's for very large df,
/// where the two agree and the incomplete beta function is slow.
fn t_quantile(p: f64, df: f64) -> f64 {
    match StudentsT::new(0.0, 1.0, df.max(1.0)) {
        Ok(t) if df < 1e6 => t.inverse_cdf(p),
        _ => Normal::standard().inverse_cdf(p),
    }
}

/// Draws of each resampling test. With the observed case counted among
/// them a permutation p-value is exact for any number of draws; 1999 puts
/// the interval's 5% and 95% points on whole ranks.
pub const RESAMPLES: usize = 1999;

/// Fixed so that the same runs always get the same p-values and interval.
fn resampling() -> ChaCha8Rng {
    stream(13, Stream::Shuffle)
}

/// A sample's count, Σx and Σx²: a mean and a variance without a second
/// pass, and a complement's as the whole's minus a part's.
#[derive(Clone, Copy, Default)]
struct Sums(f64, f64, f64);

impl Sums {
    fn of(v: impl IntoIterator<Item = f64>) -> Sums {
        v.into_iter().fold(Sums::default(), |s, x| {
            Sums(s.0 + 1.0, s.1 + x, s.2 + x * x)
        })
    }

    fn minus(self, o: Sums) -> Sums {
        Sums(self.0 - o.0, self.1 - o.1, self.2 - o.2)
    }

    fn mean(self) -> f64 {
        self.1 / self.0
    }

    /// The squared standard error of the mean, s²/n.
    fn var_of_mean(self) -> f64 {
        ((self.2 - self.1 * self.1 / self.0) / (self.0 - 1.0)).max(0.0) / self.0
    }
}

/// mean(a) − mean(b) and its Welch standard error.
fn diff_se(a: Sums, b: Sums) -> (f64, f64) {
    (
        a.mean() - b.mean(),
        (a.var_of_mean() + b.var_of_mean()).sqrt(),
    )
}

/// x / se, where two constant samples (se 0) with equal means are no
/// evidence either way and unequal ones infinite evidence.
fn ratio(x: f64, se: f64) -> f64 {
    let t = x / se;
    if t.is_nan() { 0.0 } else { t }
}

/// Two-sided p-value of "both sides' runs come from one distribution", by
/// Welch's t of the mean difference over seeded random relabellings of the
/// pooled runs. Studentizing keeps the test's level right for equal means
/// when the spreads differ (Janssen 1997); no normality is assumed.
pub fn permutation_p(a: &[f64], b: &[f64]) -> f64 {
    let pooled: Vec<f64> = a.iter().chain(b).copied().collect();
    let total = Sums::of(pooled.iter().copied());
    let t_of = |part: Sums| {
        let (d, se) = diff_se(part, total.minus(part));
        ratio(d, se).abs()
    };
    // Only the smaller side is drawn; the other is what is left.
    let small = if a.len() <= b.len() { a } else { b };
    let k = small.len();
    // Relabellings that tie with the observed one, up to rounding, count.
    let observed = t_of(Sums::of(small.iter().copied())) * (1.0 - 1e-9);
    let (mut rng, mut idx) = (resampling(), (0..pooled.len()).collect::<Vec<_>>());
    let hits = (0..RESAMPLES)
        .filter(|_| {
            for i in 0..k {
                let j = i + below(&mut rng, (idx.len() - i) as u64) as usize;
                idx.swap(i, j);
            }
            t_of(Sums::of(idx[..k].iter().map(|&i| pooled[i]))) >= observed
        })
        .count();
    (hits + 1) as f64 / (RESAMPLES + 1) as f64
}

/// The `level` two-sided bootstrap-t interval of mean(a) − mean(b): each
/// side resampled on its own, each resample's difference studentized by its
/// own standard error. It takes its shape from the samples (skew, a lump
/// of failed runs) where a t interval assumes symmetry, and, unlike a
/// percentile interval, it does not narrow at few seeds (which it falls
/// back to only where studentizing is undefined).
pub fn bootstrap_interval(a: &[f64], b: &[f64], level: f64) -> (f64, f64) {
    let (d, se) = diff_se(Sums::of(a.iter().copied()), Sums::of(b.iter().copied()));
    if se == 0.0 {
        return (d, d);
    }
    let mut rng = resampling();
    let mut draw =
        |v: &[f64]| Sums::of((0..v.len()).map(|_| v[below(&mut rng, v.len() as u64) as usize]));
    let resamples: Vec<(f64, f64)> = (0..RESAMPLES).map(|_| diff_se(draw(a), draw(b))).collect();
    let tail = (1.0 - level) / 2.0;
    let rank = |mut v: Vec<f64>, p: f64| {
        v.sort_by(f64::total_cmp);
        v[((RESAMPLES + 1) as f64 * p).round() as usize - 1]
    };
    // A side with few distinct values (runs that all end alike) gives
    // resamples of one value, whose t is infinite: the interval would be
    // unbounded by an artefact. There the percentile interval of the
    // resampled differences, defined for any sample, stands in.
    if resamples.iter().any(|&(ds, ses)| ses == 0.0 && ds != d) {
        let diffs: Vec<f64> = resamples.iter().map(|&(ds, _)| ds).collect();
        return (rank(diffs.clone(), tail), rank(diffs, 1.0 - tail));
    }
    let t: Vec<f64> = resamples
        .iter()
        .map(|&(ds, ses)| ratio(ds - d, ses))
        .collect();
    (d - rank(t.clone(), 1.0 - tail) * se, d - rank(t, tail) * se)
}

/// Two-sided p-value of Fisher's exact test that `fa` failures in `na` runs
/// and `fb` in `nb` share one failure rate: given the failures in all, the
/// chance of a split between the sides no likelier than the one seen.
pub fn fisher_p(fa: u64, na: u64, fb: u64, nb: u64) -> f64 {
    let Ok(h) = Hypergeometric::new(na + nb, fa + fb, na) else {
        return 1.0;
    };
    // Logs: the binomial coefficients of a thousand runs overflow.
    let seen = h.ln_pmf(fa) + 1e-7;
    (h.min()..=h.max())
        .map(|k| h.ln_pmf(k))
        .filter(|&l| l <= seen)
        .map(f64::exp)
        .sum::<f64>()
        .min(1.0)
}

/// Holm's step-down adjustment: test i is rejected at family-wise rate α
/// when its adjusted p-value is at most α.
pub fn holm(p: &[f64]) -> Vec<f64> {
    let mut order: Vec<usize> = (0..p.len()).collect();
    order.sort_by(|&i, &j| p[i].total_cmp(&p[j]));
    let (mut adjusted, mut floor) = (vec![0.0; p.len()], 0.0f64);
    for (rank, &i) in order.iter().enumerate() {
        floor = floor.max(((p.len() - rank) as f64 * p[i]).min(1.0));
        adjusted[i] = floor;
    }
    adjusted
}

/// Pooled standard deviation of two samples.
pub fn pooled_sd(a: &[f64], b: &[f64]) -> f64 {
    let ((_, sa), (_, sb)) = (mean_sd(a), mean_sd(b));
    let (na, nb) = (a.len() as f64, b.len() as f64);
    (((na - 1.0) * sa * sa + (nb - 1.0) * sb * sb) / (na + nb - 2.0).max(1.0)).sqrt()
}

/// Seeds for an equivalence test (5% each side) to show a difference
/// within ±margin with 80% power when it is truly 0 and both sides' sd is
/// `sd`: the smallest n ≥ 2 with (t[0.95; df] + t[0.90; df])² sd² (1/n + 1/m)
/// ≤ margin², where m = `fixed`, the other side's seeds (df n − 1), or m =
/// n, seeds a side (df 2n − 2). None when `fixed` seeds are too few for any n.
pub fn seeds_needed(sd: f64, margin: f64, fixed: Option<u64>) -> Option<u64> {
    let z = |p: f64| Normal::standard().inverse_cdf(p);
    let other = |n: f64| fixed.map_or(n, |m| m as f64);
    let short = |n: f64, q: f64| (q * sd).powi(2) * (1.0 / n + 1.0 / other(n)) > margin * margin;
    let q = z(0.95) + z(0.90);
    if fixed.is_some() && short(f64::INFINITY, q) {
        return None;
    }
    // The normal answer; t's quantiles exceed z's, so n only grows from it,
    // and the bound keeps a degenerate input from looping.
    let room = (margin / (q * sd)).powi(2) - fixed.map_or(0.0, |m| 1.0 / m as f64);
    let mut n = (if fixed.is_some() { 1.0 } else { 2.0 } / room)
        .ceil()
        .clamp(2.0, 1e15);
    for _ in 0..10_000 {
        let df = fixed.map_or(2.0 * n - 2.0, |_| n - 1.0);
        if !short(n, t_quantile(0.95, df) + t_quantile(0.90, df)) {
            break;
        }
        n += 1.0;
    }
    Some(n as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn t_quantiles_match_tables() {
        assert!((t_quantile(0.975, 1.0) - 12.706).abs() < 1e-3);
        assert!((t_quantile(0.975, 60.0) - 2.000).abs() < 1e-3);
        assert!((t_quantile(0.975, 1e9) - 1.960).abs() < 1e-3);
    }

    #[test]
    fn permutation_p_is_exact_in_count_and_tells_apart_what_differs() {
        let a: Vec<f64> = (0..10).map(|i| 0.9 + 0.001 * i as f64).collect();
        let b: Vec<f64> = (0..10).map(|i| 0.5 + 0.001 * i as f64).collect();
        // Only the observed labelling and its mirror are this far apart:
        // 2 in 184,756 splits, so no draw but the observed one counts.
        assert_eq!(permutation_p(&a, &b), 1.0 / (RESAMPLES + 1) as f64);
        let (even, odd): (Vec<f64>, Vec<f64>) = a
            .iter()
            .partition(|x| (**x * 1000.0).round() as i64 % 2 == 0);
        assert!(permutation_p(&even, &odd) > 0.3);
        assert_eq!(permutation_p(&a, &b), permutation_p(&a, &b), "seeded");
        assert_eq!(
            permutation_p(&[0.5; 4], &[0.5; 6]),
            1.0,
            "constant and equal"
        );
    }

    #[test]
    fn permutation_p_of_one_failure_among_few_seeds_is_not_small() {
        // Welch's t-test says p ≈ 0.004 for these; but a side of ten without
        // the failures the other shows one time in ten is a common draw.
        let many: Vec<f64> = (0..200)
            .map(|i| {
                if i % 10 == 0 {
                    0.5
                } else {
                    0.85 + 0.0005 * (i % 7) as f64
                }
            })
            .collect();
        let few: Vec<f64> = (0..10).map(|i| 0.85 + 0.0005 * (i % 7) as f64).collect();
        let p = permutation_p(&many, &few);
        assert!(p > 0.1, "{p}");
    }

    #[test]
    fn bootstrap_t_interval_covers_the_difference_and_widens_for_skew() {
        let a: Vec<f64> = (0..20).map(|i| 0.99 - 0.001 * i as f64).collect();
        let b: Vec<f64> = (0..20).map(|i| 0.98 - 0.001 * i as f64).collect();
        let (lo, hi) = bootstrap_interval(&a, &b, 0.90);
        // Welch's 90% interval is 0.01 ± 1.686 · 0.00187 = [0.0068, 0.0132].
        assert!(
            lo < 0.01 && hi > 0.01 && (hi - lo - 0.0063).abs() < 0.001,
            "{lo} {hi}"
        );
        let mut skewed = b.clone();
        skewed[0] = 0.5;
        let (slo, shi) = bootstrap_interval(&a, &skewed, 0.90);
        // One failure among 20: the interval reaches far on the side the
        // failure pulls, little on the other.
        let d = 0.01 + (0.98 - 0.5) / 20.0;
        assert!(shi - d > 2.0 * (d - slo), "{slo} {d} {shi}");
        assert_eq!(
            bootstrap_interval(&[0.5, 0.5], &[0.5, 0.5], 0.9),
            (0.0, 0.0)
        );
    }

    #[test]
    fn runs_that_all_end_alike_get_a_bounded_interval_around_their_difference() {
        // Ours all alike, Keras's one apart: many resamples of Keras's are
        // constant too, where t is infinite; the interval stays finite.
        let ours = [0.9902; 5];
        let keras = [0.991, 0.99, 0.99, 0.99, 0.99];
        let (lo, hi) = bootstrap_interval(&ours, &keras, 0.90);
        assert!(lo.is_finite() && hi.is_finite(), "{lo} {hi}");
        assert!(
            lo <= 0.0 && hi >= 0.0002 - 1e-12 && hi - lo < 0.002,
            "{lo} {hi}"
        );
        let (lo, hi) = bootstrap_interval(&[0.5; 5], &keras, 0.90);
        assert!(lo > -0.4911 && hi < -0.4899 && lo < hi, "{lo} {hi}");
    }

    #[test]
    fn fisher_p_matches_hand_computed_tables() {
        // 3 of 3 against 0 of 3: 2/20 (the table and its mirror).
        assert!((fisher_p(3, 3, 0, 3) - 0.1).abs() < 1e-12);
        // The tea-tasting table, 3 of 4 against 1 of 4: p = 34/70.
        assert!((fisher_p(3, 4, 1, 4) - 34.0 / 70.0).abs() < 1e-12);
        assert_eq!(fisher_p(0, 10, 0, 200), 1.0);
        assert_eq!(fisher_p(10, 10, 200, 200), 1.0);
        // A thousand runs a side: finite, small.
        let p = fisher_p(100, 1000, 50, 1000);
        assert!(p > 0.0 && p < 1e-4, "{p}");
    }

    #[test]
    fn holm_multiplies_by_rank_and_keeps_order() {
        let adj = holm(&[0.04, 0.01, 0.03]);
        assert_eq!(adj, vec![0.06, 0.03, 0.06]);
        assert_eq!(holm(&[0.6, 0.2]), vec![0.6, 0.4]);
    }

    #[test]
    fn seeds_needed_follows_the_normal_formula_for_many_seeds() {
        // 2·(1.6449 + 1.2816)²·0.07²/0.02² = 209.8 a side by the normal
        // formula; t's heavier tails add about one seed.
        let n = seeds_needed(0.07, 0.02, None).unwrap();
        assert!((210..=212).contains(&n), "{n}");
        assert_eq!(seeds_needed(0.0, 0.02, None), Some(2));
        assert!(seeds_needed(0.006, 0.02, None).unwrap() > 2);
        // Beside 1000 seeds, the other side needs 1/(δ²/(q²s²) − 1/1000):
        // 0.0004/(8.567·0.0049) = 0.009529, less 0.001 → 117.2.
        let n = seeds_needed(0.07, 0.02, Some(1000)).unwrap();
        assert!((118..=120).contains(&n), "{n}");
        // 100 seeds cannot get there: even infinitely many beside them leave
        // the interval wider than ±δ.
        assert_eq!(seeds_needed(0.07, 0.02, Some(100)), None);
    }
}
