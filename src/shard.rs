//! `--shard K/N`: a deterministic slice of a command's (setting, seed)
//! replicas, so that the slices can train on different machines into
//! different folders, each marked by its manifest ([`crate::manifest`])
//! that `binclass merge` reads to join them.
//!
//! Slices are cut by work, not by count: an array's tasks are sized by its
//! slowest shard, and one setting's replica may cost hundreds of another's
//! (`scaled-long`'s 500 epochs against the others' 100). They stay
//! contiguous in the command's order, since `merge` joins each
//! `summary.csv` from the shards' rows in shard order.

use std::ops::{Range, RangeInclusive};

use anyhow::{Result, bail};
use serde::{Deserialize, Serialize};

/// Shard `index` of `count` (`--shard K/N`, K counting from 0, as
/// `SLURM_ARRAY_TASK_ID` and `JOB_COMPLETION_INDEX` do).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shard {
    pub index: u64,
    pub count: u64,
}

/// Consecutive replicas of a command that cost alike: one setting's seeds,
/// `work` each (`Experiment::work`, in its own units; only ratios matter).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Unit {
    pub replicas: u64,
    pub work: u128,
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

/// The work of all of `units`.
fn total_work(units: &[Unit]) -> u128 {
    ends(units).last().map_or(0, |&(_, work)| work)
}

/// Where each unit ends: the replicas and the work up to its end.
fn ends(units: &[Unit]) -> Vec<(u64, u128)> {
    let mut end = (0u64, 0u128);
    let mut step = |u: &Unit| {
        let whole = u.work.saturating_mul(u.replicas as u128);
        end = (end.0 + u.replicas, end.1.saturating_add(whole));
        end
    };
    units.iter().map(&mut step).collect()
}

/// The last replica boundary (the replicas before it, in the command's
/// order) whose cumulative work is at most `target`; `ends` are `units`'.
fn boundary_at_or_below(units: &[Unit], ends: &[(u64, u128)], target: u128) -> u64 {
    let whole = ends.partition_point(|&(_, work)| work <= target);
    let (replicas, work) = whole.checked_sub(1).map_or((0, 0), |i| ends[i]);
    match units.get(whole) {
        Some(u) => replicas + u.replicas.min(((target - work) / u.work.max(1)) as u64),
        None => replicas,
    }
}

impl Shard {
    /// This shard's replicas of `units`, numbered in the command's order
    /// (setting by setting, seeds ascending): a contiguous block, the blocks
    /// of shards 0..N in turn covering every replica once. Cut k is the
    /// last replica boundary whose cumulative work is at most k/N of the
    /// total (moved only so that every shard holds a replica), so a
    /// shard's work is less than 1/N of the total plus the costliest
    /// replica's, and where every replica costs alike the cuts are by count.
    /// Cuts use exact integers: every machine cuts a command alike.
    pub fn slice(&self, units: &[Unit]) -> Result<Range<u64>> {
        let ends = ends(units);
        let (total, work) = ends.last().copied().unwrap_or_default();
        if self.count > total {
            bail!(
                "--shard {}/{}: more shards than the {total} replicas (settings × seeds) to train",
                self.index,
                self.count
            );
        }
        // floor(k·work/N) without overflowing k·work.
        let n = self.count as u128;
        let target = |k: u64| (k as u128) * (work / n) + (k as u128) * (work % n) / n;
        let (mut start, mut end) = (0, 0);
        for k in 1..=self.index + 1 {
            let at = boundary_at_or_below(units, &ends, target(k));
            (start, end) = (end, at.max(end + 1).min(total - (self.count - k)));
        }
        Ok(start..end)
    }

    /// This shard's part of each unit, as each unit's own replica numbers.
    pub fn split(&self, units: &[Unit]) -> Result<Vec<Range<u64>>> {
        Ok(within_units(units, self.slice(units)?))
    }
}

/// The replicas `slice` (numbered over all of `units`) as each unit's own.
fn within_units(units: &[Unit], slice: Range<u64>) -> Vec<Range<u64>> {
    let mut start = 0;
    let part = |u: &Unit| {
        let within = |x: u64| x.clamp(start, start + u.replicas) - start;
        let r = within(slice.start)..within(slice.end);
        start += u.replicas;
        r
    };
    units.iter().map(part).collect()
}

/// Each unit's replicas that `shard` trains (all of them without one).
pub fn ranges(shard: Option<Shard>, units: &[Unit]) -> Result<Vec<Range<u64>>> {
    match shard {
        Some(s) => s.split(units),
        None => Ok(units.iter().map(|u| 0..u.replicas).collect()),
    }
}

/// The share of `units`' work held by `ranges` (each unit's part, as
/// [`Shard::split`] gives them): 1 for all of it.
pub fn share(units: &[Unit], ranges: &[Range<u64>]) -> f64 {
    let part: Vec<Unit> = units
        .iter()
        .zip(ranges)
        .map(|(u, r)| Unit {
            replicas: r.end - r.start,
            work: u.work,
        })
        .collect();
    total_work(&part) as f64 / total_work(units).max(1) as f64
}

/// The last line of `--dry-run`: `share of the work: 0.2513`, or `1` for
/// all of it.
pub fn share_line(share: f64) -> String {
    match share {
        1.0 => "share of the work: 1".into(),
        s => format!("share of the work: {s:.4}"),
    }
}

/// The seeds of `seeds` at a unit's replica numbers `part` (a range of
/// [`Shard::split`]), or `None` where it holds none.
pub fn seeds_in(seeds: &RangeInclusive<u64>, part: &Range<u64>) -> Option<RangeInclusive<u64>> {
    (!part.is_empty()).then(|| seeds.start() + part.start..=seeds.start() + part.end - 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alike(total: u64) -> Vec<Unit> {
        vec![Unit {
            replicas: total,
            work: 7,
        }]
    }

    #[test]
    fn shards_cover_every_replica_once_in_order() {
        for (total, n) in [(10, 3), (7, 7), (100, 4), (5, 1)] {
            let mut next = 0;
            for k in 0..n {
                let s = Shard { index: k, count: n }.slice(&alike(total)).unwrap();
                assert_eq!(s.start, next);
                assert!(!s.is_empty());
                next = s.end;
            }
            assert_eq!(next, total);
        }
        assert!(Shard { index: 0, count: 4 }.slice(&alike(3)).is_err());
    }

    #[test]
    fn replicas_that_cost_alike_are_cut_by_count_as_before() {
        // Earlier binclass cut replica k·total/N (rounded down): folders it
        // sharded are the same slices now.
        for (total, n) in [(10u64, 3u64), (12, 5), (2600, 4), (7, 7), (5, 1)] {
            for k in 0..n {
                let s = Shard { index: k, count: n }.slice(&alike(total)).unwrap();
                assert_eq!(s, total * k / n..total * (k + 1) / n, "{k}/{n} of {total}");
            }
        }
    }

    #[test]
    fn a_shards_work_exceeds_its_nth_by_less_than_its_costliest_replica() {
        // Settings whose replicas cost 1 to 500 (epochs), in runs of seeds.
        let plans: [&[(u64, u128)]; 4] = [
            &[
                (100, 100),
                (100, 100),
                (100, 140),
                (1000, 100),
                (1000, 500),
                (100, 100),
            ],
            &[(3, 1), (3, 500), (3, 1), (3, 2)],
            &[(1, 1000), (50, 1), (1, 1000)],
            &[(17, 3), (5, 11), (29, 7)],
        ];
        for plan in plans {
            let units: Vec<Unit> = plan
                .iter()
                .map(|&(replicas, work)| Unit { replicas, work })
                .collect();
            let (total, costliest) = (total_work(&units), units.iter().map(|u| u.work).max());
            for n in [1u64, 2, 3, 4, 7] {
                let mut shares = 0.0;
                for k in 0..n {
                    let ranges = Shard { index: k, count: n }.split(&units).unwrap();
                    let part: u128 = units
                        .iter()
                        .zip(&ranges)
                        .map(|(u, r)| u.work * (r.end - r.start) as u128)
                        .sum();
                    assert!(
                        part * (n as u128) < total + costliest.unwrap() * (n as u128),
                        "{plan:?} {k}/{n}: {part} of {total}"
                    );
                    shares += share(&units, &ranges);
                }
                assert!((shares - 1.0).abs() < 1e-12, "{plan:?} /{n}: {shares}");
            }
        }
    }

    #[test]
    fn a_costly_setting_is_split_among_shards_not_given_to_one() {
        // A default reproduction's shape: scaled-long's 1000 seeds × 500
        // epochs in the middle of 4200 replicas of 100 epochs.
        let units = [
            Unit {
                replicas: 1300,
                work: 100,
            },
            Unit {
                replicas: 1000,
                work: 500,
            },
            Unit {
                replicas: 2900,
                work: 100,
            },
        ];
        for k in 0..4 {
            let ranges = Shard { index: k, count: 4 }.split(&units).unwrap();
            let s = share(&units, &ranges);
            assert!((s - 0.25).abs() < 0.001, "{k}/4: {s}");
        }
        let count_cut = |k: u64| 5200 * k / 4..5200 * (k + 1) / 4;
        let slice = Shard { index: 1, count: 4 }.slice(&units).unwrap();
        assert_ne!(slice, count_cut(1));
    }

    #[test]
    fn every_shard_holds_a_replica_even_when_one_replica_outweighs_a_share() {
        let units = [
            Unit {
                replicas: 1,
                work: 1000,
            },
            Unit {
                replicas: 2,
                work: 1,
            },
        ];
        let slices: Vec<Range<u64>> = (0..3)
            .map(|k| Shard { index: k, count: 3 }.slice(&units).unwrap())
            .collect();
        assert_eq!(slices, [0..1, 1..2, 2..3]);
    }

    #[test]
    fn a_split_gives_each_unit_its_part_of_the_slice() {
        // 3 + 5 + 2 replicas of one cost, 3 shards: 0..3, 3..6, 6..10.
        let units: Vec<Unit> = [3, 5, 2]
            .map(|replicas| Unit { replicas, work: 4 })
            .to_vec();
        let s = Shard { index: 1, count: 3 };
        assert_eq!(s.split(&units).unwrap(), [3..3, 0..3, 0..0]);
        let s = Shard { index: 2, count: 3 };
        assert_eq!(s.split(&units).unwrap(), [3..3, 3..5, 0..2]);
        assert_eq!(ranges(None, &units).unwrap(), [0..3, 0..5, 0..2]);
    }

    #[test]
    fn a_units_part_is_a_contiguous_range_of_its_seeds() {
        let seeds = 5..=8;
        assert_eq!(seeds_in(&seeds, &(0..4)), Some(5..=8));
        assert_eq!(seeds_in(&seeds, &(1..3)), Some(6..=7));
        assert_eq!(seeds_in(&seeds, &(2..2)), None);
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
