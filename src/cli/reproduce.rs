//! `binclass reproduce`: every experiment of the article over N seeds,
//! compared with the committed Keras runs, with figures and a report.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;

use super::{Replace, RunOn, Verbosity};
use crate::callbacks::sweep_bar;
use crate::compare::{self, Format};
use crate::reproduce::Reproduction;
use crate::shard::{self, Shard};
use crate::sweep::check_diverged;
use crate::{interrupt, outputs};

#[derive(Args, Debug)]
pub struct ReproduceArgs {
    /// Folder for runs, figures and REPORT.md: empty or new, or an earlier
    /// reproduction's with --overwrite or --resume.
    #[arg(long, value_name = "DIR")]
    pub out_dir: PathBuf,
    /// Seeds per experiment (0..N) [default: 1000 for scaled and
    /// scaled-long, whose outcomes are skewed and bimodal; 100 for the rest].
    #[arg(long, value_parser = clap::value_parser!(u64).range(2..=100_000), allow_hyphen_values = true, value_name = "N")]
    pub seeds: Option<u64>,
    #[command(flatten)]
    pub run_on: RunOn,
    /// Keras reference runs, one folder per preset [default: the copy of
    /// the source tree's reference/keras built into binclass].
    #[arg(long, value_name = "DIR")]
    pub reference: Option<PathBuf>,
    /// Equivalence margin δ of the verdicts (see `binclass compare --help`).
    #[arg(long, default_value_t = compare::DEFAULT_MARGIN, value_parser = compare::parse_margin, allow_hyphen_values = true, value_name = "δ")]
    pub margin: f64,
    #[command(flatten)]
    pub replace: Replace,
    /// Continue the killed or interrupted reproduction in --out-dir (the
    /// same command line): finished experiments are kept, the others
    /// resume from their checkpoints; then the comparison and the report.
    #[arg(long, conflicts_with = "overwrite")]
    pub resume: bool,
    /// Override every experiment's epochs; each is then compared with Keras
    /// over the epochs both sides have (REPORT.md says which).
    #[arg(long, value_parser = clap::value_parser!(i64).range(1..), allow_hyphen_values = true, value_name = "N")]
    pub epochs: Option<i64>,
    /// Train only shard K of N (K from 0) of the (experiment or curve
    /// setting, seed) replicas, marked by DIR/manifest.json; `binclass merge`
    /// joins the shards' folders and writes the figures and REPORT.md.
    #[arg(long, value_parser = shard::parse, value_name = "K/N")]
    pub shard: Option<Shard>,
    /// Train nothing and write nothing: check the command as a run would,
    /// then print what it would train (experiments and curve settings,
    /// seeds, epochs, the batches of replicas trained together) and, last,
    /// `share of the work: X`, the fraction of the reproduction's work in
    /// this shard (1 without --shard).
    #[arg(long)]
    pub dry_run: bool,
    #[command(flatten)]
    pub verbosity: Verbosity,
    #[command(flatten)]
    pub extras: crate::callbacks::Extras,
}

pub fn run(args: &ReproduceArgs) -> Result<()> {
    let (device, threads) = args.run_on.resolve(args.verbosity.verbose)?;
    let r = Reproduction {
        dir: args.out_dir.clone(),
        seeds: args.seeds,
        device,
        threads,
        epochs: args.epochs,
        // Absolute, as its manifest records it: a shard merged, or a
        // folder resumed, from another directory finds the same reference.
        reference: args
            .reference
            .as_deref()
            .map(std::path::absolute)
            .transpose()
            .context("--reference")?,
        margin: args.margin,
        overwrite: args.replace.overwrite,
        resume: args.resume,
        shard: args.shard,
        extras: args.extras.clone(),
    };
    if args.dry_run {
        let plan = r.plan()?;
        let mut lines = vec![format!(
            "would train {} replicas into {}",
            plan.replicas(),
            r.dir.display()
        )];
        lines.extend(plan.describe()?.iter().map(|l| format!("  {l}")));
        lines.push(shard::share_line(plan.share));
        return outputs::stdout(&(lines.join("\n") + "\n"));
    }
    let plan = r.prepare()?;
    interrupt::install();
    // 2: the summary lines without the live bar, as for sweep.
    let bar = sweep_bar(u8::from(args.verbosity.verbose == 1), plan.seed_epochs());
    let trained = r.train(&plan, &bar)?;
    bar.finish_and_clear();
    if let Some(shard) = args.shard {
        r.manifest()?.finish(&r.dir, trained.timings.clone())?;
        if args.verbosity.verbose > 0 {
            outputs::note(&format!(
                "trained shard {}/{} in {:.1}s; `binclass merge` its folder with the others'",
                shard.index,
                shard.count,
                trained.total()
            ));
        }
        return trained.finals.iter().try_for_each(check_diverged);
    }
    let rows = r.finish(&plan, &trained)?;
    r.manifest()?.finish(&r.dir, trained.timings.clone())?;
    if args.verbosity.verbose > 0 {
        let explained: String = compare::explain(&rows)
            .iter()
            .map(|l| format!("{l}\n"))
            .collect();
        outputs::note(&format!(
            "{}{explained}wrote {} ({:.1}s of training)",
            compare::render(&rows, Format::Text)?,
            crate::layout::report(&r.dir).display(),
            trained.total()
        ));
    }
    trained.finals.iter().try_for_each(check_diverged)
}
