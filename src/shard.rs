//! `--shard K/N`: a deterministic slice of a command's (setting, seed)
//! replicas, so that the slices can train on different machines into
//! different folders, each marked by its manifest ([`crate::manifest`])
//! that `binclass merge` reads to join them.

use anyhow::{Result, bail};
use serde::{Deserialize, Serialize};

/// Shard `index` of `count` (`--shard K/N`, K counting from 0, as
/// `SLURM_ARRAY_TASK_ID` and `JOB_COMPLETION_INDEX` do).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shard {
    pub index: u64,
    pub count: u64,
}

/// `K/N` with 0 <= K < N.
pub fn parse(s: &str) -> Result<Shard, String> {
    let number = |t: &str| t.trim().parse::<u64>().ok();
    match s.split_once('/').map(|(k, n)| (number(k), number(n))) {
        Some((Some(index), Some(count))) if index < count => Ok(Shard { index, count }),
        _ => Err(format!(
            "'{s}': expected K/N with 0 <= K < N (e.g. 0/4, the first of four)"
        )),
    }
}

impl Shard {
    /// This shard's replicas of `total`, numbered in the command's order
    /// (setting by setting, seeds ascending): a contiguous block, the
    /// blocks of shards 0..N in turn covering every replica once.
    pub fn slice(&self, total: u64) -> Result<std::ops::Range<u64>> {
        if self.count > total {
            bail!(
                "--shard {}/{}: more shards than the {total} replicas (settings × seeds) to train",
                self.index,
                self.count
            );
        }
        let at = |k: u64| (total as u128 * k as u128 / self.count as u128) as u64;
        Ok(at(self.index)..at(self.index + 1))
    }

    /// This shard's part of each of several units of work (in order,
    /// `sizes[i]` replicas each), as each unit's own replica numbers.
    pub fn split(&self, sizes: &[u64]) -> Result<Vec<std::ops::Range<u64>>> {
        let slice = self.slice(sizes.iter().sum())?;
        let mut start = 0;
        let part = |n: u64| {
            let within = |x: u64| x.clamp(start, start + n) - start;
            let r = within(slice.start)..within(slice.end);
            start += n;
            r
        };
        Ok(sizes.iter().copied().map(part).collect())
    }

    /// The seeds of `seeds` (the `setting`-th setting's) that fall in
    /// `slice` of the replicas, or `None`.
    pub fn seeds_in(
        setting: u64,
        seeds: &std::ops::RangeInclusive<u64>,
        slice: &std::ops::Range<u64>,
    ) -> Option<std::ops::RangeInclusive<u64>> {
        let per = seeds.end() - seeds.start() + 1;
        let (first, end) = (setting * per, (setting + 1) * per);
        let (a, b) = (slice.start.max(first), slice.end.min(end));
        (a < b).then(|| seeds.start() + (a - first)..=seeds.start() + (b - first - 1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_cover_every_replica_once_in_order() {
        for (total, n) in [(10, 3), (7, 7), (100, 4), (5, 1)] {
            let mut next = 0;
            for k in 0..n {
                let s = Shard { index: k, count: n }.slice(total).unwrap();
                assert_eq!(s.start, next);
                assert!(!s.is_empty());
                next = s.end;
            }
            assert_eq!(next, total);
        }
        assert!(Shard { index: 0, count: 4 }.slice(3).is_err());
    }

    #[test]
    fn a_slice_gives_each_setting_a_contiguous_range_of_seeds() {
        let shard = Shard { index: 1, count: 3 };
        // 3 settings x seeds 5..=8 = 12 replicas; shard 1 holds 4..8.
        let slice = shard.slice(12).unwrap();
        let seeds = 5..=8;
        assert_eq!(Shard::seeds_in(0, &seeds, &slice), None);
        assert_eq!(Shard::seeds_in(1, &seeds, &slice), Some(5..=8));
        assert_eq!(Shard::seeds_in(2, &seeds, &slice), None);
        let slice = Shard { index: 0, count: 2 }.slice(12).unwrap();
        assert_eq!(Shard::seeds_in(1, &seeds, &slice), Some(5..=6));
    }

    #[test]
    fn a_split_gives_each_unit_its_part_of_the_slice() {
        // 3 + 5 + 2 replicas, 3 shards: 0..3, 3..6, 6..10.
        let s = Shard { index: 1, count: 3 };
        assert_eq!(s.split(&[3, 5, 2]).unwrap(), [3..3, 0..3, 0..0]);
        let s = Shard { index: 2, count: 3 };
        assert_eq!(s.split(&[3, 5, 2]).unwrap(), [3..3, 3..5, 0..2]);
    }

    #[test]
    fn shard_flags_parse_as_k_of_n() {
        assert_eq!(parse("0/4"), Ok(Shard { index: 0, count: 4 }));
        assert_eq!(parse("3/4"), Ok(Shard { index: 3, count: 4 }));
        for bad in ["4/4", "1", "a/2", "-1/2", "1/0", ""] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }
}
