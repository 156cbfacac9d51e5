//! Statistics over seeds: mean and standard deviation, and behind
//! `compare`'s verdict Welch's t-test and interval, the equivalence test
//! (TOST), a permutation test on the mean curves, and the seeds a side an
//! equivalence test needs. Distributions come from `statrs`.

use statrs::distribution::{ContinuousCDF, Normal, StudentsT};

use crate::rng::permutation;

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

/// mean(a) − mean(b) with its Welch standard error and degrees of freedom.
#[derive(Clone, Copy, Debug)]
pub struct Welch {
    pub diff: f64,
    pub se: f64,
    pub df: f64,
}

pub fn welch(a: &[f64], b: &[f64]) -> Welch {
    let ((ma, sa), (mb, sb)) = (mean_sd(a), mean_sd(b));
    let (na, nb) = (a.len() as f64, b.len() as f64);
    let (va, vb) = (sa * sa / na, sb * sb / nb);
    let se = (va + vb).sqrt();
    let df = if se > 0.0 {
        (va + vb).powi(2) / (va * va / (na - 1.0).max(1.0) + vb * vb / (nb - 1.0).max(1.0))
    } else {
        f64::INFINITY
    };
    Welch {
        diff: ma - mb,
        se,
        df: df.max(1.0),
    }
}

impl Welch {
    /// The two-sided `level` confidence interval of the difference.
    pub fn interval(&self, level: f64) -> (f64, f64) {
        let h = t_quantile(0.5 + level / 2.0, self.df) * self.se;
        (self.diff - h, self.diff + h)
    }

    /// Two-sided p-value of "the means are equal".
    pub fn p(&self) -> f64 {
        if self.se == 0.0 {
            return if self.diff == 0.0 { 1.0 } else { 0.0 };
        }
        let t = (self.diff / self.se).abs();
        match StudentsT::new(0.0, 1.0, self.df) {
            Ok(dist) if self.df < 1e6 => 2.0 * dist.sf(t),
            _ => 2.0 * Normal::standard().sf(t),
        }
    }

    /// TOST: both one-sided tests at 5% reject a difference beyond ±margin,
    /// i.e. the 90% interval lies strictly inside (−margin, +margin).
    pub fn equivalent(&self, margin: f64) -> bool {
        let (lo, hi) = self.interval(0.90);
        lo > -margin && hi < margin
    }

    /// Significant at 5% (two-sided) and larger than the margin.
    pub fn differs(&self, margin: f64) -> bool {
        self.p() < 0.05 && self.diff.abs() > margin
    }
}

/// Pooled standard deviation of two samples.
pub fn pooled_sd(a: &[f64], b: &[f64]) -> f64 {
    let ((_, sa), (_, sb)) = (mean_sd(a), mean_sd(b));
    let (na, nb) = (a.len() as f64, b.len() as f64);
    (((na - 1.0) * sa * sa + (nb - 1.0) * sb * sb) / (na + nb - 2.0).max(1.0)).sqrt()
}

/// Seeds a side for TOST (5% each side) to show equivalence within
/// ±margin with 80% power when the true difference is 0 and the sd is `sd`:
/// the smallest n ≥ 2 with n ≥ 2·(t[0.95; 2n−2] + t[0.90; 2n−2])²·sd²/margin².
/// (The normal approximation, z for t, is where the search starts.)
pub fn seeds_needed(sd: f64, margin: f64) -> u64 {
    let ratio = 2.0 * sd * sd / (margin * margin);
    let need = |n: f64, q: &dyn Fn(f64) -> f64| ratio * (q(0.95) + q(0.90)).powi(2) - n;
    let z = |p: f64| Normal::standard().inverse_cdf(p);
    let start = need(0.0, &z).ceil().clamp(2.0, 1e15);
    let mut n = start;
    // t's quantiles exceed z's, so n only grows from the normal answer, by a
    // few seeds at most; the bound keeps a degenerate input from looping.
    for _ in 0..10_000 {
        let df = 2.0 * n - 2.0;
        if need(n, &|p| t_quantile(p, df)) <= 0.0 {
            break;
        }
        n += 1.0;
    }
    n as u64
}

/// Mean over epochs of |mean of `a` − mean of `b`|, from the per-epoch sums
/// of `a` (`sum_a`) and of all runs (`total`).
fn gap_from_sums(sum_a: &[f64], total: &[f64], na: f64, nb: f64) -> f64 {
    let e = sum_a.len() as f64;
    sum_a
        .iter()
        .zip(total)
        .map(|(sa, t)| (sa / na - (t - sa) / nb).abs())
        .sum::<f64>()
        / e
}

/// The curve gap and its permutation p-value.
#[derive(Clone, Copy, Debug)]
pub struct CurveTest {
    /// Mean over epochs of |mean ours − mean Keras| of validation accuracy.
    pub gap: f64,
    /// Share of relabellings (runs shuffled between the two sides) whose gap
    /// is at least the observed one.
    pub p: f64,
}

/// Every split at most this many: exact; more: this many seeded draws.
const PERMUTATIONS: usize = 5000;
/// Fixed so that the same runs always get the same p-value.
const PERMUTATION_SEED: u64 = 13;

/// Permutation test of "both sides' curves come from one distribution",
/// `a` and `b` each a list of per-epoch series of equal length.
pub fn curve_test(a: &[Vec<f64>], b: &[Vec<f64>]) -> CurveTest {
    let pooled: Vec<&Vec<f64>> = a.iter().chain(b).collect();
    let epochs = pooled[0].len();
    let (na, nb) = (a.len(), b.len());
    let mut total = vec![0.0; epochs];
    for c in &pooled {
        total.iter_mut().zip(c.iter()).for_each(|(t, v)| *t += v);
    }
    let gap_of = |members: &mut dyn Iterator<Item = usize>| {
        let mut sum = vec![0.0; epochs];
        for i in members {
            sum.iter_mut()
                .zip(pooled[i].iter())
                .for_each(|(s, v)| *s += v);
        }
        gap_from_sums(&sum, &total, na as f64, nb as f64)
    };
    let gap = gap_of(&mut (0..na));
    // Rounding differences between relabellings must not count as larger.
    let at_least = |g: f64| g >= gap - 1e-12;
    let n = na + nb;
    let splits = statrs::function::factorial::binomial(n as u64, na as u64);
    let p = if n <= 64 && splits <= PERMUTATIONS as f64 {
        let masks = subsets(n, na);
        let hits = masks
            .iter()
            .filter(|&&m| at_least(gap_of(&mut (0..n).filter(|i| m >> i & 1 == 1))))
            .count();
        hits as f64 / masks.len() as f64
    } else {
        let mut rng = crate::rng::stream(PERMUTATION_SEED, crate::rng::Stream::Shuffle);
        let hits = (0..PERMUTATIONS - 1)
            .filter(|_| {
                let order = permutation(&mut rng, n);
                at_least(gap_of(&mut order[..na].iter().map(|&i| i as usize)))
            })
            .count();
        (hits + 1) as f64 / PERMUTATIONS as f64
    };
    CurveTest { gap, p }
}

/// Every `k`-element subset of `0..n` (n ≤ 64) as a bit mask (Gosper's hack).
fn subsets(n: usize, k: usize) -> Vec<u64> {
    let mut out = vec![];
    if k == 0 || k > n {
        return out;
    }
    let limit = if n == 64 { u64::MAX } else { (1u64 << n) - 1 };
    let mut m: u64 = (1u64 << k) - 1;
    loop {
        out.push(m);
        let c = m & m.wrapping_neg();
        let r = m.wrapping_add(c);
        if r == 0 {
            break;
        }
        m = (((r ^ m) >> 2) / c) | r;
        if m > limit {
            break;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn welch_interval_matches_a_hand_computation() {
        let w = welch(&[1.0, 2.0, 3.0, 4.0], &[2.0, 4.0, 6.0, 8.0]);
        // se = sqrt(1.6667/4 + 6.6667/4) = 1.4434; df = 4.412 -> t(0.975) = 2.6771
        // (by bisection on the regularised incomplete beta function).
        assert!((w.diff + 2.5).abs() < 1e-12);
        assert!((w.se - 1.4434).abs() < 1e-4 && (w.df - 4.412).abs() < 1e-3);
        let (lo, hi) = w.interval(0.95);
        assert!(
            ((hi - lo) / 2.0 - 2.6771 * 1.4434).abs() < 0.001,
            "{lo} {hi}"
        );
        assert!((t_quantile(0.975, 1.0) - 12.706).abs() < 1e-3);
        assert!((t_quantile(0.975, 60.0) - 2.000).abs() < 1e-3);
        assert!((t_quantile(0.975, 1e9) - 1.960).abs() < 1e-3);
    }

    #[test]
    fn welch_p_value_matches_the_interval() {
        // At the 95% interval's edge the two-sided p-value is 5%.
        let w = welch(&[0.1, 0.3, 0.2, 0.25], &[0.2, 0.4, 0.35, 0.5]);
        let (_, hi) = w.interval(0.95);
        let edge = Welch {
            diff: -hi + w.diff,
            ..w
        };
        assert!((edge.p() - 0.05).abs() < 1e-9, "{}", edge.p());
    }

    #[test]
    fn tost_needs_the_90_percent_interval_inside_the_margin() {
        let w = Welch {
            diff: 0.0,
            se: 0.01,
            df: 1e9,
        };
        // 1.645 * 0.01 = 0.01645: inside ±0.02, not inside ±0.015.
        assert!(w.equivalent(0.02) && !w.equivalent(0.015));
        let far = Welch {
            diff: 0.05,
            se: 0.01,
            df: 1e9,
        };
        assert!(far.differs(0.02) && !far.differs(0.06) && !far.equivalent(0.02));
    }

    #[test]
    fn seeds_needed_follows_the_normal_formula_for_many_seeds() {
        // 2·(1.6449 + 1.2816)²·0.07²/0.02² = 209.8 by the normal formula;
        // t's heavier tails add about one seed.
        let n = seeds_needed(0.07, 0.02);
        assert!((210..=212).contains(&n), "{n}");
        // Small spreads still need two seeds a side, t's tails more than z's.
        assert_eq!(seeds_needed(0.0, 0.02), 2);
        assert!(seeds_needed(0.006, 0.02) > 2);
    }

    #[test]
    fn permutation_test_is_exact_for_few_splits_and_seeded_for_many() {
        let a: Vec<Vec<f64>> = (0..3).map(|i| vec![0.9 + 0.001 * i as f64; 4]).collect();
        let b: Vec<Vec<f64>> = (0..3).map(|i| vec![0.5 + 0.001 * i as f64; 4]).collect();
        // 20 splits; only the observed one and its mirror are as far apart.
        let t = curve_test(&a, &b);
        assert!(
            (t.gap - 0.4).abs() < 1e-9 && (t.p - 0.1).abs() < 1e-12,
            "{t:?}"
        );
        assert_eq!(subsets(6, 3).len(), 20);
        let many_a: Vec<Vec<f64>> = (0..10).map(|i| vec![0.9 + 0.001 * i as f64; 4]).collect();
        let many_b: Vec<Vec<f64>> = (0..10).map(|i| vec![0.5 + 0.001 * i as f64; 4]).collect();
        let t1 = curve_test(&many_a, &many_b);
        assert!(t1.p < 0.001, "{t1:?}");
        assert_eq!(t1.p, curve_test(&many_a, &many_b).p);
        let (even, odd): (Vec<_>, Vec<_>) = many_a
            .iter()
            .cloned()
            .enumerate()
            .partition(|(i, _)| i % 2 == 0);
        let strip = |v: Vec<(usize, Vec<f64>)>| v.into_iter().map(|(_, c)| c).collect::<Vec<_>>();
        let same = curve_test(&strip(even), &strip(odd));
        assert!(same.p > 0.01, "{same:?}");
    }
}
