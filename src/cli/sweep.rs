//! `binclass sweep`: many seeds of one experiment trained at once, each
//! seed writing the CSV and record `train --seed s` writes.

use std::ops::RangeInclusive;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Result, bail, ensure};
use clap::Args;

use super::{Replace, RunOn, Verbosity};
use crate::callbacks::sweep_bar;
use crate::config::{Experiment, Overrides, whole};
use crate::grid::{Grid, GridSweep, table};
use crate::manifest::Manifest;
use crate::shard::{self, Shard};
use crate::stats::mean_sd_text;
use crate::sweep::{Job, check_diverged, final_and_best};
use crate::{interrupt, layout, outputs};

#[derive(Args, Debug)]
pub struct SweepArgs {
    /// Preset to start from (`binclass experiments` lists them).
    #[arg(long, short = 'e', default_value = "baseline", value_name = "NAME")]
    pub experiment: String,
    /// Seeds to train: `A..B` (B excluded, as in Rust), `A..=B`, or one seed.
    #[arg(long, value_name = "A..B", allow_hyphen_values = true)]
    pub seeds: String,
    #[command(flatten)]
    pub run_on: RunOn,
    /// Folder for the per-seed CSVs, records and summary.csv
    /// [default: runs/<experiment>-seeds<A>-<B>, or the first free -k suffix].
    #[arg(long, value_name = "DIR")]
    pub out_dir: Option<PathBuf>,
    #[command(flatten)]
    pub replace: Replace,
    /// Continue the interrupted sweep in --out-dir (the same command line):
    /// finished seeds are kept, batches continue from their checkpoints,
    /// seeds never started are trained.
    #[arg(long, conflicts_with = "overwrite")]
    pub resume: bool,
    /// Seeds per batched model [default: the seeds shared evenly across the
    /// CPU's cores, within the memory available]. Results do not depend on it.
    #[arg(long, value_parser = whole, allow_hyphen_values = true, value_name = "N")]
    pub chunk: Option<i64>,
    // Not a doc comment: the knobs it names are the settings table's.
    #[arg(long, value_name = "KNOB=V1,V2,…", allow_hyphen_values = true, help = crate::grid::vary_help())]
    pub vary: Vec<String>,
    /// Train only shard K of N (K from 0) of the (setting, seed) replicas,
    /// marked by DIR/manifest.json; `binclass merge` joins the shards' folders.
    #[arg(long, value_parser = shard::parse, value_name = "K/N")]
    pub shard: Option<Shard>,
    /// Train nothing and write nothing: check the command as a run would,
    /// then print what it would train (settings, seeds, epochs, the batches
    /// of replicas trained together) and, last, `share of the work: X`, the
    /// fraction of the command's work in this shard (1 without --shard).
    #[arg(long)]
    pub dry_run: bool,
    #[command(flatten)]
    pub verbosity: Verbosity,
    #[command(flatten)]
    pub extras: crate::callbacks::Extras,
    #[command(flatten)]
    pub overrides: Overrides,
}

/// `A..B`, `A..=B` or `N`, as a non-empty range of seeds.
pub fn parse_seeds(s: &str) -> Result<RangeInclusive<u64>> {
    let num = |t: &str| -> Result<u64> {
        t.trim().parse().map_err(|_| {
            anyhow::anyhow!("--seeds {s}: '{t}' is not a whole number >= 0; use A..B, A..=B or N")
        })
    };
    let empty = || {
        anyhow::anyhow!("--seeds {s} is empty: A..B needs A < B (B is excluded; A..=B includes it)")
    };
    let range = if let Some((a, b)) = s.split_once("..=") {
        num(a)?..=num(b)?
    } else if let Some((a, b)) = s.split_once("..") {
        let (a, b) = (num(a)?, num(b)?);
        a..=b.checked_sub(1).ok_or_else(empty)?
    } else {
        let n = num(s)?;
        n..=n
    };
    if range.is_empty() {
        return Err(empty());
    }
    if range.end() - range.start() >= 10_000_000 {
        bail!("--seeds {s} is more than 10,000,000 seeds; split it into several sweeps");
    }
    Ok(range)
}

pub fn run(args: &SweepArgs) -> Result<()> {
    let exp = Experiment::resolve(&args.experiment, &args.overrides)?;
    let seeds = parse_seeds(&args.seeds)?;
    check_flags(args)?;
    let (device, threads) = args.run_on.resolve(args.verbosity.verbose)?;
    let base = Job {
        dir: args
            .out_dir
            .clone()
            .unwrap_or_else(|| layout::default_sweep(&exp.name, &seeds)),
        exp,
        seeds,
        device,
        overwrite: args.replace.overwrite,
        resume: args.resume,
        chunk: args.chunk.map(|c| c as u64),
        threads,
        setting: String::new(),
        extras: args.extras.clone(),
    };
    let grid = Grid::parse(&base.exp, &args.vary, &args.overrides.given())?;
    let mut sweep = GridSweep::new(&base, grid, args.shard)?;
    if args.dry_run {
        return dry_run(&sweep, args.out_dir.is_none());
    }
    if args.out_dir.is_none() {
        sweep.claim_new_dir()?;
    }
    sweep.prepare()?;
    // On --resume, nothing is left to write once the manifest says the
    // sweep finished (it is marked so last).
    if base.resume && Manifest::find(&sweep.dir)?.is_some_and(|m| m.finished) {
        // Nothing is rewritten: the sweep's files stay as they are.
        outputs::note(&format!(
            "{}: every seed of this sweep has finished; nothing to resume",
            sweep.dir.display()
        ));
        return Ok(());
    }
    interrupt::install();
    let verbose = args.verbosity.verbose;
    // 2: the summary lines without the live bar.
    let bar = sweep_bar(u8::from(verbose == 1), sweep.seed_epochs());
    let start = Instant::now();
    let finals = sweep.run(&bar)?;
    bar.finish_and_clear();
    if verbose > 0 {
        let secs = start.elapsed().as_secs_f64();
        let summary = layout::summary(&sweep.dir);
        outputs::note(&match finals.as_slice() {
            [(values, f)] if values.is_empty() && args.shard.is_none() => {
                let (fin, best) = final_and_best(f);
                format!(
                    "{} seeds of {} in {secs:.2}s: final val_binary_accuracy {}, best {}\nwrote {} CSVs, their records and {}",
                    f.len(),
                    base.exp.name,
                    mean_sd_text(&fin),
                    mean_sd_text(&best),
                    f.len(),
                    summary.display()
                )
            }
            _ => format!(
                "{}{} runs of {} in {secs:.2}s; wrote their files and {}",
                table(&sweep.grid.flags(), &finals),
                finals.iter().map(|(_, f)| f.len()).sum::<usize>(),
                base.exp.name,
                summary.display()
            ),
        });
    }
    finals.iter().try_for_each(|(_, f)| check_diverged(f))
}

/// `--dry-run`: the checks a run makes before writing (of the default
/// folder as if new, when none is given), then what it would train.
fn dry_run(sweep: &GridSweep, default_dir: bool) -> Result<()> {
    match default_dir {
        true => sweep.check_new_dir()?,
        false => sweep.check()?,
    }
    let mut lines = vec![format!(
        "would train {} replicas into {}{}",
        sweep.replicas(),
        sweep.dir.display(),
        if default_dir {
            " (or its first free -k suffix)"
        } else {
            ""
        }
    )];
    lines.extend(sweep.describe()?.iter().map(|l| format!("  {l}")));
    lines.push(shard::share_line(sweep.share));
    outputs::stdout(&(lines.join("\n") + "\n"))
}

/// --chunk, and --resume with what it needs and excludes.
fn check_flags(args: &SweepArgs) -> Result<()> {
    let chunk = args.chunk.unwrap_or(1);
    ensure!(
        chunk >= 1,
        "--chunk must be a whole number >= 1, got {chunk}"
    );
    if args.resume && !args.vary.is_empty() {
        bail!(
            "--resume does not continue a --vary sweep (it keeps no checkpoints); run it again with --overwrite"
        );
    }
    if args.resume && args.out_dir.is_none() {
        bail!("--resume needs --out-dir: the folder of the sweep to continue");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_ranges_parse_like_rust_ranges() {
        assert_eq!(parse_seeds("0..5").unwrap(), 0..=4);
        assert_eq!(parse_seeds("2..=4").unwrap(), 2..=4);
        assert_eq!(parse_seeds("7").unwrap(), 7..=7);
        // The largest seed `train` takes is one seed here too.
        let max = u64::MAX.to_string();
        assert_eq!(parse_seeds(&max).unwrap(), u64::MAX..=u64::MAX);
        for bad in [
            "5..2",
            "3..3",
            "a..4",
            "1..b",
            "",
            "-1..3",
            "1.5..3",
            "0..18446744073709551615",
        ] {
            assert!(parse_seeds(bad).is_err(), "{bad}");
        }
        assert!(
            parse_seeds("5..2")
                .unwrap_err()
                .to_string()
                .contains("is empty")
        );
    }
}
