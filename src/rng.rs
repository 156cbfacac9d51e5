//! Seeded random streams. Every draw binclass makes comes from here, so a seed
//! gives the same data, initial weights and batch order on any device and with
//! any version of `rand`: the conversions below are written out rather than
//! taken from `rand`'s distributions, whose algorithms may change.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Independent ChaCha streams derived from one user seed.
#[derive(Clone, Copy, Debug)]
#[repr(u64)]
pub enum Stream {
    Data = 0,
    Init = 1,
    Shuffle = 2,
}

pub fn stream(seed: u64, which: Stream) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(which as u64);
    rng
}

/// Uniform in [0, 1) with 53 random bits, as numpy's `random_sample`.
pub fn uniform(rng: &mut impl Rng) -> f64 {
    (rng.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}

/// Uniform integer in [0, n), by widening multiply (bias below 2^-40 for
/// the sizes used here).
pub fn below(rng: &mut impl Rng, n: u64) -> u64 {
    ((rng.next_u64() as u128 * n as u128) >> 64) as u64
}

/// A uniformly random permutation of 0..n (Fisher–Yates).
pub fn permutation(rng: &mut impl Rng, n: usize) -> Vec<i64> {
    let mut p: Vec<i64> = (0..n as i64).collect();
    for i in (1..n).rev() {
        let j = below(rng, i as u64 + 1) as usize;
        p.swap(i, j);
    }
    p
}

/// Each replica's next permutation of its `t` training rows, `[lanes, t]`,
/// drawn on all cores (10,000 seeds draw 80 million indices an epoch);
/// padding lanes beyond the seeds take the rows in order.
pub fn permutations(shuffles: &mut [ChaCha8Rng], t: i64, lanes: usize) -> Vec<i32> {
    let mut all = vec![0i32; lanes * t as usize];
    for pad in all[shuffles.len() * t as usize..].chunks_mut(t as usize) {
        pad.iter_mut().zip(0..).for_each(|(o, j)| *o = j);
    }
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(16);
    let per = shuffles.len().div_ceil(threads).max(1);
    std::thread::scope(|scope| {
        for (rngs, out) in shuffles
            .chunks_mut(per)
            .zip(all.chunks_mut(per * t as usize))
        {
            scope.spawn(move || {
                for (rng, out) in rngs.iter_mut().zip(out.chunks_mut(t as usize)) {
                    for (o, p) in out.iter_mut().zip(permutation(rng, t as usize)) {
                        *o = p as i32;
                    }
                }
            });
        }
    });
    all
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_differ_and_repeat() {
        let a = uniform(&mut stream(7, Stream::Data));
        assert_eq!(a, uniform(&mut stream(7, Stream::Data)));
        assert_ne!(a, uniform(&mut stream(7, Stream::Init)));
        assert_ne!(a, uniform(&mut stream(8, Stream::Data)));
    }

    #[test]
    fn permutation_is_a_permutation() {
        let mut p = permutation(&mut stream(1, Stream::Shuffle), 1000);
        assert_ne!(p, (0..1000).collect::<Vec<_>>());
        p.sort();
        assert_eq!(p, (0..1000).collect::<Vec<_>>());
    }

    #[test]
    fn uniform_stays_in_unit_interval() {
        let mut r = stream(3, Stream::Data);
        let xs: Vec<f64> = (0..10_000).map(|_| uniform(&mut r)).collect();
        assert!(xs.iter().all(|x| (0.0..1.0).contains(x)));
        let mean = xs.iter().sum::<f64>() / xs.len() as f64;
        assert!((mean - 0.5).abs() < 0.01, "mean {mean}");
    }

    #[test]
    fn permutations_are_each_replicas_own() {
        let mut a: Vec<_> = [4u64, 9]
            .iter()
            .map(|&s| stream(s, Stream::Shuffle))
            .collect();
        let all = permutations(&mut a, 10, 3);
        let mut r0 = stream(4, Stream::Shuffle);
        let mut r1 = stream(9, Stream::Shuffle);
        let own = |r: &mut ChaCha8Rng| -> Vec<i32> {
            permutation(r, 10).iter().map(|&p| p as i32).collect()
        };
        assert_eq!(&all[..10], own(&mut r0).as_slice());
        assert_eq!(&all[10..20], own(&mut r1).as_slice());
        assert_eq!(
            &all[20..],
            (0..10).collect::<Vec<i32>>().as_slice(),
            "padding lane"
        );
    }
}
