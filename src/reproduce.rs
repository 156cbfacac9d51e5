//! `binclass reproduce`: every experiment of the article over N seeds, the
//! comparison with the committed Keras runs, the figures, and a report.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::Args;

use crate::compare::{self, Format};
use crate::config::{Experiment, Normalize, Overrides, PRESETS};
use crate::device;
use crate::record::VERSIONS;
use crate::sweep::{self, Job, mean_sd};

#[derive(Args, Debug)]
pub struct ReproduceArgs {
    /// Folder for runs, figures and REPORT.md (must be empty or new).
    #[arg(long, value_name = "DIR")]
    pub out_dir: PathBuf,
    /// Seeds per experiment (0..N).
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(2..=100_000))]
    pub seeds: u64,
    /// cpu, cuda, cuda:N, or auto.
    #[arg(long, default_value = "cpu", value_name = "DEVICE")]
    pub device: String,
    /// Keras reference runs, one folder per preset [default: reference/keras
    /// here, else the project's beside the binary].
    #[arg(long, value_name = "DIR")]
    pub reference: Option<PathBuf>,
    /// Equivalence margin δ of the verdicts (see `binclass compare --help`).
    #[arg(long, default_value_t = compare::DEFAULT_MARGIN, value_parser = compare::parse_margin, allow_hyphen_values = true, value_name = "δ")]
    pub margin: f64,
    /// Use a non-empty --out-dir, replacing what an earlier reproduction wrote.
    #[arg(long)]
    pub overwrite: bool,
    /// Override every experiment's epochs (a quick look; the reference has the article's).
    #[arg(long, value_parser = clap::value_parser!(i64).range(1..), value_name = "N")]
    pub epochs: Option<i64>,
    /// 0 silent, 1 a progress bar (stderr).
    #[arg(long, short = 'v', default_value_t = 1, value_parser = clap::value_parser!(u8).range(0..=1), value_name = "0|1")]
    pub verbose: u8,
}

/// The article's claim for each preset, as the report quotes it.
fn claim(preset: &str) -> &'static str {
    match preset {
        "baseline" => "reaches about 99 % almost at once",
        "noise" => "accuracy drops by about the noise (20 %)",
        "dummy-features" => "still learns despite three dummy features, a little noisier",
        "scaled" => "features ×1000: training does not settle, worse near the end",
        "scaled-long" => "features ×1000 over 500 epochs: still unstable",
        "shifted" => "features +1000: about 50 %, nothing learned",
        _ => "",
    }
}

/// The interpreter that draws figures: the project environment's.
fn python() -> PathBuf {
    std::env::var_os("BINCLASS_PLOT_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("BINCLASS_VENV_PYTHON")))
}

fn plot(csvs: &[PathBuf], reference: Option<&Path>, title: &str, out: &Path) -> Result<()> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/plot.py");
    let mut cmd = Command::new(python());
    cmd.arg(&script)
        .args(csvs)
        .arg("--out")
        .arg(out)
        .arg("--title")
        .arg(title);
    if let Some(r) = reference {
        cmd.arg("--reference").arg(r);
    }
    let o = cmd.output().with_context(|| {
        format!(
            "cannot run {} (set BINCLASS_PLOT_PYTHON to a python with matplotlib)",
            python().display()
        )
    })?;
    if !o.status.success() {
        bail!(
            "scripts/plot.py failed for {}: {}",
            out.display(),
            String::from_utf8_lossy(&o.stderr).trim()
        );
    }
    Ok(())
}

pub fn run(args: &ReproduceArgs) -> Result<()> {
    let device = device::resolve(&args.device)?;
    let dir = &args.out_dir;
    if dir.is_file() {
        bail!("--out-dir {} is a file", dir.display());
    }
    if !args.overwrite && dir.read_dir().is_ok_and(|mut d| d.next().is_some()) {
        bail!(
            "--out-dir {} is not empty; pass --overwrite to reuse it, or choose another folder",
            dir.display()
        );
    }
    let reference_dir = compare::reference_dir(args.reference.as_deref())?;
    let reference = compare::load_reference(&reference_dir)?;
    let names: Vec<&str> = PRESETS.iter().map(|(n, _)| *n).collect();
    if let Some(missing) = names.iter().find(|n| !reference.contains_key(**n)) {
        bail!(
            "{} has no Keras runs for '{missing}' (see reference/keras/README.md)",
            reference_dir.display()
        );
    }

    // The article's six experiments, then the two broken ones normalised.
    let mut jobs: Vec<(String, Job)> = vec![];
    let variants = names
        .iter()
        .map(|n| (n.to_string(), *n, Normalize::None))
        .chain([
            ("scaled-standard".to_string(), "scaled", Normalize::Standard),
            (
                "shifted-standard".to_string(),
                "shifted",
                Normalize::Standard,
            ),
        ]);
    for (label, preset, normalize) in variants {
        let exp = Experiment::resolve(
            preset,
            &Overrides {
                normalize: Some(normalize),
                epochs: args.epochs,
                ..Default::default()
            },
        )?;
        let job = Job {
            exp,
            seeds: 0..args.seeds,
            dir: dir.join("runs").join(&label),
            device,
            overwrite: args.overwrite,
            chunk: None,
            threads: 1,
        };
        jobs.push((label, job));
    }
    for (label, job) in &jobs {
        if let Some(keras) = reference.get(label.as_str())
            && keras.iter().any(|c| c.len() as i64 != job.exp.epochs)
        {
            bail!(
                "{}: Keras's '{label}' runs are not {} epochs long; --epochs must match the reference",
                reference_dir.display(),
                job.exp.epochs
            );
        }
        job.prepare()?;
    }
    std::fs::create_dir_all(dir.join("figures"))
        .with_context(|| format!("cannot create {}", dir.display()))?;

    let bar = sweep::progress(
        args.verbose,
        jobs.iter().map(|(_, j)| j.seed_epochs()).sum(),
    );
    let mut timings = vec![];
    let mut finals = vec![];
    for (label, job) in &jobs {
        let start = Instant::now();
        let f = job.run(&bar)?;
        timings.push((label.clone(), start.elapsed().as_secs_f64()));
        finals.push(f);
    }
    bar.finish_and_clear();

    // Comparison with Keras, for the article's six.
    let mut rows = vec![];
    for (label, job) in jobs.iter().take(names.len()) {
        // Read directly: these runs may carry a deliberate --epochs override.
        let curves = compare::csvs_in(&job.dir)?
            .iter()
            .map(|f| compare::read_curve(f))
            .collect::<Result<Vec<_>>>()?;
        let optimizer = serde_json::to_value(job.exp.optimizer)?;
        rows.push(compare::compare_preset(
            label,
            optimizer.as_str().unwrap_or_default(),
            &curves,
            &reference[label.as_str()],
            args.margin,
        )?);
    }

    // Figures: ours with Keras's band, and the normalised pair.
    for (label, job) in &jobs {
        let keras_dir = reference
            .contains_key(label.as_str())
            .then(|| reference_dir.join(label));
        let title = match job.exp.normalize {
            Normalize::Standard => format!(
                "{} with --normalize standard ({} seeds)",
                job.exp.name, args.seeds
            ),
            Normalize::None => format!(
                "{label} ({} seeds; Keras: {})",
                args.seeds,
                reference.get(label.as_str()).map_or(0, Vec::len)
            ),
        };
        plot(
            &compare::csvs_in(&job.dir)?,
            keras_dir.as_deref(),
            &title,
            &dir.join("figures").join(format!("{label}.png")),
        )?;
    }

    let mut md = String::new();
    let _ = writeln!(md, "# binclass: the article reproduced\n");
    let _ = writeln!(
        md,
        "`binclass reproduce --seeds {}{}` on {} (binclass {}, tch {}, libtorch {}), against the Keras runs in `{}`.\n",
        args.seeds,
        args.epochs
            .map_or(String::new(), |e| format!(" --epochs {e}")),
        device::name(device),
        VERSIONS.binclass,
        VERSIONS.tch,
        VERSIONS.libtorch,
        reference_dir.display()
    );
    let _ = writeln!(md, "## Comparison with Keras\n");
    md += &compare::render(&rows, Format::Markdown);
    for line in compare::explain(&rows) {
        let _ = writeln!(md, "- {line}");
    }
    let _ = writeln!(md, "\n{}\n", compare::RULE);
    let _ = writeln!(md, "## Figures\n");
    for ((label, job), f) in jobs.iter().zip(&finals) {
        let (fin, _) = sweep::final_and_best(f);
        let what = match job.exp.normalize {
            Normalize::Standard => format!(
                "The fix the article points to: the same data as `{}`, each feature z-scored with the training rows' statistics.",
                job.exp.name
            ),
            Normalize::None => format!("The article: {}.", claim(label)),
        };
        let _ = writeln!(
            md,
            "### {label}\n\n{what} Ours: final validation accuracy {}.\n\n![{label}](figures/{label}.png)\n",
            mean_sd(&fin)
        );
    }
    let _ = writeln!(
        md,
        "## Timings\n\n| experiment | seeds | training time (s) |\n|---|---|---|"
    );
    for (label, secs) in &timings {
        let _ = writeln!(md, "| {label} | {} | {secs:.1} |", args.seeds);
    }
    let total: f64 = timings.iter().map(|(_, s)| s).sum();
    let _ = writeln!(md, "| all | | {total:.1} |");
    std::fs::write(dir.join("REPORT.md"), md)
        .with_context(|| format!("cannot write {}/REPORT.md", dir.display()))?;
    if args.verbose > 0 {
        eprint!("{}", compare::render(&rows, Format::Text));
        for line in compare::explain(&rows) {
            eprintln!("{line}");
        }
        eprintln!(
            "wrote {} ({total:.1}s of training)",
            dir.join("REPORT.md").display()
        );
    }
    for f in &finals {
        sweep::check_diverged(f)?;
    }
    Ok(())
}
