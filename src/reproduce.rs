//! `binclass reproduce`: every experiment of the article over N seeds, the
//! comparison with the committed Keras runs, the figures, and a report.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::Args;

use crate::callbacks::VERSIONS;
use crate::callbacks::sweep_bar;
use crate::compare::{self, Format};
use crate::config::{Experiment, Normalize, Overrides, PRESETS};
use crate::sweep::{self, Job, mean_sd};
use crate::{device, interrupt, outputs};

#[derive(Args, Debug)]
pub struct ReproduceArgs {
    /// Folder for runs, figures and REPORT.md (must be empty or new).
    #[arg(long, value_name = "DIR")]
    pub out_dir: PathBuf,
    /// Seeds per experiment (0..N).
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(2..=100_000), allow_hyphen_values = true)]
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
    /// Override every experiment's epochs; each is then compared with Keras
    /// over the epochs both sides have (REPORT.md says which).
    #[arg(long, value_parser = clap::value_parser!(i64).range(1..), allow_hyphen_values = true, value_name = "N")]
    pub epochs: Option<i64>,
    /// 0 silent, 1 a progress bar (stderr).
    #[arg(long, short = 'v', default_value_t = 1, value_parser = clap::value_parser!(u8).range(0..=1), allow_hyphen_values = true, value_name = "0|1")]
    pub verbose: u8,
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

/// The experiments `reproduce` runs: the article's six, then the two
/// broken ones normalised.
fn variants() -> Vec<(String, &'static str, Normalize)> {
    PRESETS
        .iter()
        .map(|p| (p.name.to_string(), p.name, Normalize::None))
        .chain([
            ("scaled-standard".to_string(), "scaled", Normalize::Standard),
            (
                "shifted-standard".to_string(),
                "shifted",
                Normalize::Standard,
            ),
        ])
        .collect()
}

/// Whether `path`, inside an output folder, is something `reproduce` writes.
fn written_by_reproduce(rel: &Path, labels: &[String]) -> bool {
    let parts: Vec<&str> = rel.iter().filter_map(|p| p.to_str()).collect();
    let is_label = |l: &str| labels.iter().any(|x| x == l);
    match parts.as_slice() {
        ["REPORT.md"] | ["runs"] | ["figures"] => true,
        ["figures", png] => png.strip_suffix(".png").is_some_and(is_label),
        ["runs", label] => is_label(label),
        ["runs", label, file] => {
            let stem = file.strip_suffix(".csv.json").or(file.strip_suffix(".csv"));
            let run = stem
                .and_then(|s| s.rsplit_once("-seed"))
                .is_some_and(|(preset, seed)| {
                    label.starts_with(preset) && seed.parse::<u64>().is_ok()
                });
            is_label(label) && (*file == "summary.csv" || run || file.starts_with('.'))
        }
        _ => false,
    }
}

/// Everything below `dir`, folders after their contents.
fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    for entry in dir
        .read_dir()
        .with_context(|| format!("cannot read {}", dir.display()))?
    {
        let path = entry?.path();
        if path.is_dir() && !path.is_symlink() {
            walk(&path, out)?;
        }
        out.push(path);
    }
    Ok(())
}

/// An output folder must be new or empty; with `--overwrite`, it may hold
/// only what an earlier reproduction wrote, which is removed so that none
/// of its runs mixes into this one. Returns what to remove.
fn previous_outputs(dir: &Path, overwrite: bool) -> Result<Vec<PathBuf>> {
    if dir.exists() && !dir.is_dir() {
        bail!("--out-dir {} is a file", dir.display());
    }
    let mut found = vec![];
    if dir.is_dir() {
        walk(dir, &mut found)?;
    }
    if found.is_empty() {
        return Ok(found);
    }
    if !overwrite {
        bail!(
            "--out-dir {} is not empty; pass --overwrite to replace an earlier reproduction there, or choose another folder",
            dir.display()
        );
    }
    let labels: Vec<String> = variants().into_iter().map(|(l, _, _)| l).collect();
    for path in &found {
        let rel = path.strip_prefix(dir).unwrap_or(path);
        if !written_by_reproduce(rel, &labels) {
            bail!(
                "--out-dir {} holds {}, which reproduce did not write; --overwrite replaces only an earlier reproduction: move it, or choose another folder",
                dir.display(),
                path.display()
            );
        }
    }
    Ok(found)
}

fn remove_all(paths: &[PathBuf]) -> Result<()> {
    for p in paths {
        let removed = if p.is_dir() && !p.is_symlink() {
            std::fs::remove_dir(p)
        } else {
            std::fs::remove_file(p)
        };
        removed.with_context(|| format!("cannot remove {}", p.display()))?;
    }
    Ok(())
}

/// The epochs both sides have, when `--epochs` shortens or lengthens ours.
fn common_epochs(ours: i64, keras: &[compare::Curve]) -> usize {
    keras
        .iter()
        .map(Vec::len)
        .min()
        .unwrap_or(0)
        .min(ours as usize)
}

pub fn run(args: &ReproduceArgs) -> Result<()> {
    let device = device::resolve(&args.device)?;
    let dir = &args.out_dir;
    let previous = previous_outputs(dir, args.overwrite)?;
    let reference_dir = compare::reference_dir(args.reference.as_deref())?;
    let reference = compare::load_reference(&reference_dir)?;
    let names = crate::config::preset_names();
    if let Some(missing) = names.iter().find(|n| !reference.contains_key(**n)) {
        bail!(
            "{} has no Keras runs for '{missing}' (see reference/keras/README.md)",
            reference_dir.display()
        );
    }
    let mut jobs: Vec<(String, Job)> = vec![];
    for (label, preset, normalize) in variants() {
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
            seeds: 0..=args.seeds - 1,
            dir: dir.join("runs").join(&label),
            device,
            overwrite: false,
            chunk: None,
            threads: 1,
        };
        jobs.push((label, job));
    }
    // Everything is checked before the earlier reproduction is removed.
    for (_, job) in &jobs {
        Job {
            overwrite: true,
            ..job.clone()
        }
        .check()?;
    }
    remove_all(&previous)?;
    for (_, job) in &jobs {
        job.prepare()?;
    }
    std::fs::create_dir_all(dir.join("figures"))
        .with_context(|| format!("cannot create {}", dir.display()))?;
    interrupt::install();

    let bar = sweep_bar(
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

    // Comparison with Keras, for the article's six, over the epochs both
    // sides have when --epochs changed ours.
    let mut rows = vec![];
    let mut shortened = vec![];
    for (label, job) in jobs.iter().take(names.len()) {
        let keras = &reference[label.as_str()];
        let common = common_epochs(job.exp.epochs, keras);
        let cut = |c: &compare::Curve| c[..common.min(c.len())].to_vec();
        if keras.iter().any(|c| c.len() != common) || job.exp.epochs as usize != common {
            shortened.push(format!(
                "`{label}`: the first {common} epochs (ours ran {}, Keras's {})",
                job.exp.epochs,
                keras.iter().map(Vec::len).max().unwrap_or(0)
            ));
        }
        // Read directly: these runs may carry a deliberate --epochs override.
        let curves = compare::csvs_in(&job.dir)?
            .iter()
            .map(|f| compare::read_curve(f).map(|c| cut(&c)))
            .collect::<Result<Vec<_>>>()?;
        let keras = &keras.iter().map(cut).collect::<Vec<_>>();
        let optimizer = serde_json::to_value(job.exp.optimizer)?;
        rows.push(compare::compare_preset(
            label,
            optimizer.as_str().unwrap_or_default(),
            &curves,
            keras,
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
    if !shortened.is_empty() {
        let _ = writeln!(
            md,
            "`--epochs {}` differs from the article's runs, so each preset is compared over the epochs both sides have: {}.\n",
            args.epochs.unwrap_or_default(),
            shortened.join("; ")
        );
    }
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
            Normalize::None => format!(
                "The article: {}.",
                PRESETS
                    .iter()
                    .find(|p| p.name == label)
                    .map_or("", |p| p.article)
            ),
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
    outputs::write_atomic(&dir.join("REPORT.md"), md.as_bytes())?;
    if args.verbose > 0 {
        let explained: String = compare::explain(&rows)
            .iter()
            .map(|l| format!("{l}\n"))
            .collect();
        outputs::note(&format!(
            "{}{explained}wrote {} ({total:.1}s of training)",
            compare::render(&rows, Format::Text),
            dir.join("REPORT.md").display()
        ));
    }
    for f in &finals {
        sweep::check_diverged(f)?;
    }
    Ok(())
}
