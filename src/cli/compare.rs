//! `binclass compare`: our runs against Keras's, preset by preset.

use std::path::PathBuf;

use anyhow::{Result, bail};
use clap::Args;

use crate::compare::{
    DEFAULT_MARGIN, Format, RULE, Row, Verdict, compare_groups, explain, group, load_ours,
    load_reference, parse_margin, reference_dir, render, render_found, row_name,
};
use crate::outputs;

#[derive(Args, Debug)]
#[command(after_long_help = RULE)]
pub struct CompareArgs {
    /// Our CSVs, or folders searched at any depth for them (each run is
    /// identified by its .json record, else by a `<preset>-seed<N>` name).
    #[arg(required = true, value_name = "OURS")]
    pub ours: Vec<PathBuf>,
    /// Keras reference: one folder per preset holding its CSVs [default: the
    /// copy of the source tree's reference/keras built into binclass].
    #[arg(long, value_name = "DIR")]
    pub reference: Option<PathBuf>,
    /// Equivalence margin δ on final validation accuracy (0 < δ < 1).
    #[arg(long, default_value_t = DEFAULT_MARGIN, value_parser = parse_margin, allow_hyphen_values = true, value_name = "δ")]
    pub margin: f64,
    /// Exit non-zero when any preset differs.
    #[arg(long)]
    pub strict: bool,
    /// Exit non-zero when any preset differs or is inconclusive.
    #[arg(long)]
    pub strict_inconclusive: bool,
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

pub fn run(args: &CompareArgs) -> Result<()> {
    let ours = load_ours(&args.ours)?;
    let reference = reference_dir(args.reference.as_deref())?;
    let keras = load_reference(&reference)?;
    let (with_ref, without) = group(&ours);
    let rows = compare_groups(&with_ref, &keras, &reference, args.margin)?;
    let found = render_found(&with_ref, &without);
    let mut notes = explain(&rows);
    if !without.is_empty() {
        notes.push(
            "Keras ran the article's presets as they are: runs with other settings \
             (the optimizer aside) have no reference and are listed, not compared"
                .to_string(),
        );
    }
    notes.extend(ours.notes.iter().cloned());
    let tables = render(&rows, args.format)?;
    if args.format == Format::Csv {
        outputs::stdout(&tables)?;
        found.iter().chain(&notes).for_each(|l| outputs::note(l));
    } else {
        let bullet = if args.format == Format::Markdown {
            "- "
        } else {
            "  "
        };
        let list = |head: &str, lines: &[String]| {
            let items: String = lines.iter().map(|l| format!("{bullet}{l}\n")).collect();
            format!("{head}\n{items}\n")
        };
        let mut out = list("runs found (preset, optimizer: seeds):", &found);
        out += &tables;
        if !notes.is_empty() {
            out += &list("notes:", &notes);
        }
        outputs::stdout(&out)?;
    }
    check_strict(args, &rows)
}

fn check_strict(args: &CompareArgs, rows: &[Row]) -> Result<()> {
    let named = |v: Verdict| {
        rows.iter()
            .filter(|r| r.verdict == v)
            .map(|r| row_name(r, rows))
            .collect::<Vec<_>>()
    };
    let (differ, unsure) = (named(Verdict::Differs), named(Verdict::Inconclusive));
    let mut problems = vec![];
    if (args.strict || args.strict_inconclusive) && !differ.is_empty() {
        problems.push(format!("{} differ(s) from Keras", differ.join(", ")));
    }
    if args.strict_inconclusive && !unsure.is_empty() {
        problems.push(format!(
            "{} inconclusive (more seeds needed, see the table)",
            unsure.join(", ")
        ));
    }
    if !problems.is_empty() {
        let flag = if args.strict_inconclusive {
            "--strict-inconclusive"
        } else {
            "--strict"
        };
        bail!("{flag}: {}", problems.join("; "));
    }
    Ok(())
}
