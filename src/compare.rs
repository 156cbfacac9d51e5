//! `binclass compare`: our runs against Keras's, preset by preset, from
//! CSVLogger files (Keras's and ours share the format).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::{Args, ValueEnum};

use crate::csv_logger::HEADER;

/// Verdict rule, stated in `--help` and README.
pub const RULE: &str = "A preset is `consistent` when (1) the 95% confidence interval of the \
difference in mean final validation accuracy (ours - Keras, Welch) reaches within 0.01 of zero, \
and (2) our mean validation accuracy lies inside Keras's seed band (min..max over seeds) at \
80% of the epochs or more, the band widened by 0.005 for rounding. Otherwise it `differs`.";

#[derive(Args, Debug)]
#[command(after_long_help = RULE)]
pub struct CompareArgs {
    /// Our CSVs, or folders of them (each CSV's preset comes from its .json
    /// record, else from a `<preset>-seed<N>` file name).
    #[arg(required = true, value_name = "OURS")]
    pub ours: Vec<PathBuf>,
    /// Keras reference: one folder per preset holding its CSVs.
    #[arg(long, default_value = "reference/keras", value_name = "DIR")]
    pub reference: PathBuf,
    /// Exit non-zero when any preset differs.
    #[arg(long)]
    pub strict: bool,
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Text,
    Markdown,
    Csv,
}

/// One run: per epoch, `[binary_accuracy, loss, val_binary_accuracy, val_loss]`.
pub type Curve = Vec<[f64; 4]>;

/// Reads a Keras CSVLogger file (or ours): the five columns in any order.
pub fn read_curve(path: &Path) -> Result<Curve> {
    let mut r =
        csv::Reader::from_path(path).with_context(|| format!("cannot read {}", path.display()))?;
    let header = r
        .headers()
        .with_context(|| format!("{}: unreadable CSV header", path.display()))?
        .clone();
    if header.iter().all(str::is_empty) {
        bail!("{}: empty file, not a CSVLogger file", path.display());
    }
    let col = |name: &str| {
        header.iter().position(|h| h == name).with_context(|| {
            format!(
                "{}: no `{name}` column (expected {})",
                path.display(),
                HEADER.join(",")
            )
        })
    };
    let idx = [
        col("binary_accuracy")?,
        col("loss")?,
        col("val_binary_accuracy")?,
        col("val_loss")?,
    ];
    let epoch = col("epoch")?;
    let mut curve = vec![];
    for (i, rec) in r.records().enumerate() {
        let rec = rec.with_context(|| format!("{}: row {} is malformed", path.display(), i + 1))?;
        let num = |c: usize| -> Result<f64> {
            let f = rec.get(c).unwrap_or("");
            f.trim().parse().with_context(|| {
                format!("{}: row {}: '{f}' is not a number", path.display(), i + 1)
            })
        };
        if num(epoch)? != i as f64 {
            bail!(
                "{}: row {} has epoch {}, expected {i}",
                path.display(),
                i + 1,
                num(epoch)?
            );
        }
        curve.push([num(idx[0])?, num(idx[1])?, num(idx[2])?, num(idx[3])?]);
    }
    if curve.is_empty() {
        bail!("{}: no epochs", path.display());
    }
    Ok(curve)
}

/// The preset a CSV of ours belongs to.
fn preset_of(csv: &Path) -> Result<String> {
    let record = crate::outputs::record_path(csv);
    if let Ok(text) = std::fs::read_to_string(&record) {
        let v: serde_json::Value = serde_json::from_str(&text)
            .with_context(|| format!("{}: not a run record", record.display()))?;
        if let Some(name) = v["experiment"]["name"].as_str() {
            // Runs with overrides are not the article's preset.
            if let Ok(preset) = crate::config::Experiment::preset(name) {
                let expected = serde_json::to_value(&preset)?;
                let changed: Vec<&str> = expected
                    .as_object()
                    .into_iter()
                    .flatten()
                    .filter(|(k, want)| v["experiment"][k.as_str()] != **want)
                    .map(|(k, _)| k.as_str())
                    .collect();
                if !changed.is_empty() {
                    bail!(
                        "{}: trained with {} changed from the '{name}' preset; Keras ran the presets as they are",
                        csv.display(),
                        changed.join(", ")
                    );
                }
            }
            return Ok(name.to_string());
        }
    }
    let stem = csv.file_stem().and_then(|s| s.to_str()).unwrap_or("");
    match stem.rfind("-seed") {
        Some(i) if i > 0 => Ok(stem[..i].to_string()),
        _ => bail!(
            "{}: cannot tell its preset (no .json record, name not <preset>-seed<N>.csv)",
            csv.display()
        ),
    }
}

/// The run CSVs in a folder (not its summary.csv), sorted.
pub fn csvs_in(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot read folder {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.extension().is_some_and(|x| x == "csv")
                && p.file_name().is_some_and(|n| n != "summary.csv")
        })
        .collect();
    files.sort();
    Ok(files)
}

/// Our curves by preset.
pub fn load_ours(paths: &[PathBuf]) -> Result<BTreeMap<String, Vec<Curve>>> {
    let mut by: BTreeMap<String, Vec<Curve>> = BTreeMap::new();
    for p in paths {
        if !p.exists() {
            bail!("{}: no such file or folder", p.display());
        }
        let files = if p.is_dir() {
            csvs_in(p)?
        } else {
            vec![p.clone()]
        };
        if files.is_empty() {
            bail!("{}: no CSV files", p.display());
        }
        for f in files {
            by.entry(preset_of(&f)?).or_default().push(read_curve(&f)?);
        }
    }
    Ok(by)
}

/// Keras's curves by preset: `DIR/<preset>/*.csv`.
pub fn load_reference(dir: &Path) -> Result<BTreeMap<String, Vec<Curve>>> {
    let mut by = BTreeMap::new();
    for e in std::fs::read_dir(dir)
        .with_context(|| format!("cannot read reference folder {}", dir.display()))?
    {
        let p = e?.path();
        if p.is_dir() {
            let name = p
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default()
                .to_string();
            let curves = csvs_in(&p)?
                .iter()
                .map(|f| read_curve(f))
                .collect::<Result<Vec<_>>>()?;
            if !curves.is_empty() {
                by.insert(name, curves);
            }
        }
    }
    if by.is_empty() {
        bail!("{}: no <preset>/ folders of CSVs", dir.display());
    }
    Ok(by)
}

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

/// Student's t 0.975 quantile: exact table values for df 1..=30 (linear in
/// 1/df between them), the Cornish–Fisher expansion above (error < 0.01%).
fn t975(df: f64) -> f64 {
    const T: [f64; 30] = [
        12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160,
        2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056,
        2.052, 2.048, 2.045, 2.042,
    ];
    let df = df.max(1.0);
    if df <= 30.0 {
        let (lo, hi) = (df.floor(), df.ceil());
        if lo == hi {
            return T[lo as usize - 1];
        }
        // Interpolate in 1/df, in which the quantile is nearly linear.
        let w = (1.0 / lo - 1.0 / df) / (1.0 / lo - 1.0 / hi);
        return T[lo as usize - 1] * (1.0 - w) + T[hi as usize - 1] * w;
    }
    let z: f64 = 1.959_963_985;
    let (z3, z5, z7) = (z.powi(3), z.powi(5), z.powi(7));
    z + (z3 + z) / (4.0 * df)
        + (5.0 * z5 + 16.0 * z3 + 3.0 * z) / (96.0 * df * df)
        + (3.0 * z7 + 19.0 * z5 + 17.0 * z3 - 15.0 * z) / (384.0 * df.powi(3))
}

/// Welch's 95% interval for mean(a) - mean(b).
pub fn diff_ci(a: &[f64], b: &[f64]) -> (f64, f64, f64) {
    let ((ma, sa), (mb, sb)) = (mean_sd(a), mean_sd(b));
    let (va, vb) = (sa * sa / a.len() as f64, sb * sb / b.len() as f64);
    let se = (va + vb).sqrt();
    let d = ma - mb;
    if se == 0.0 {
        return (d, d, d);
    }
    let df = (va + vb).powi(2)
        / (va * va / (a.len() as f64 - 1.0).max(1.0) + vb * vb / (b.len() as f64 - 1.0).max(1.0));
    let h = t975(df.max(1.0)) * se;
    (d, d - h, d + h)
}

pub struct Row {
    pub preset: String,
    pub n_ours: usize,
    pub n_keras: usize,
    pub final_ours: (f64, f64),
    pub final_keras: (f64, f64),
    pub best_ours: (f64, f64),
    pub best_keras: (f64, f64),
    pub diff: (f64, f64, f64),
    pub in_band: f64,
    pub consistent: bool,
}

const VAL_ACC: usize = 2;

/// Checks that a preset's runs can be compared: at least 2 seeds a side
/// (the interval needs a spread on both) and every run the same length.
pub fn check_comparable(preset: &str, ours: &[Curve], keras: &[Curve]) -> Result<()> {
    if ours.len() < 2 || keras.len() < 2 {
        bail!(
            "preset '{preset}': {} of our runs and {} of Keras's; comparing needs at least 2 seeds on each side",
            ours.len(),
            keras.len()
        );
    }
    let lens = |c: &[Curve]| {
        c.iter()
            .map(Vec::len)
            .collect::<std::collections::BTreeSet<_>>()
    };
    let (lo, lk) = (lens(ours), lens(keras));
    if lo.len() > 1 || lk.len() > 1 || lo != lk {
        bail!(
            "preset '{preset}': our runs have {lo:?} epochs and Keras's {lk:?}; compare runs of the same length \
             (a run stopped early, or trained with --epochs, cannot be compared at its last epoch)"
        );
    }
    Ok(())
}

pub fn compare_preset(preset: &str, ours: &[Curve], keras: &[Curve]) -> Row {
    let last = |c: &Curve| c[c.len() - 1][VAL_ACC];
    let best = |c: &Curve| {
        c.iter()
            .map(|r| r[VAL_ACC])
            .fold(f64::NEG_INFINITY, f64::max)
    };
    let fo: Vec<f64> = ours.iter().map(last).collect();
    let fk: Vec<f64> = keras.iter().map(last).collect();
    let bo: Vec<f64> = ours.iter().map(best).collect();
    let bk: Vec<f64> = keras.iter().map(best).collect();
    let epochs = ours.iter().chain(keras).map(Vec::len).min().unwrap_or(0);
    let inside = (0..epochs)
        .filter(|&e| {
            let (m, _) = mean_sd(&ours.iter().map(|c| c[e][VAL_ACC]).collect::<Vec<_>>());
            let k: Vec<f64> = keras.iter().map(|c| c[e][VAL_ACC]).collect();
            let lo = k.iter().copied().fold(f64::INFINITY, f64::min) - 0.005;
            let hi = k.iter().copied().fold(f64::NEG_INFINITY, f64::max) + 0.005;
            (lo..=hi).contains(&m)
        })
        .count() as f64
        / epochs.max(1) as f64;
    let diff = diff_ci(&fo, &fk);
    let consistent = diff.1 <= 0.01 && diff.2 >= -0.01 && inside >= 0.8;
    Row {
        preset: preset.to_string(),
        n_ours: ours.len(),
        n_keras: keras.len(),
        final_ours: mean_sd(&fo),
        final_keras: mean_sd(&fk),
        best_ours: mean_sd(&bo),
        best_keras: mean_sd(&bk),
        diff,
        in_band: inside,
        consistent,
    }
}

/// Mean over seeds of (best - final) validation accuracy: how far a run ends
/// below the best it reached, the article's "worse near the final epochs".
fn drop_from_best(curves: &[Curve]) -> f64 {
    let drops: Vec<f64> = curves
        .iter()
        .map(|c| {
            c.iter()
                .map(|r| r[VAL_ACC])
                .fold(f64::NEG_INFINITY, f64::max)
                - c[c.len() - 1][VAL_ACC]
        })
        .collect();
    mean_sd(&drops).0
}

/// The article's statement about a preset, checked on a set of runs:
/// (statement, holds, the measured figure).
pub fn article_claim(preset: &str, curves: &[Curve]) -> Option<(&'static str, bool, String)> {
    let fin = mean_sd(
        &curves
            .iter()
            .map(|c| c[c.len() - 1][VAL_ACC])
            .collect::<Vec<_>>(),
    )
    .0;
    let acc = format!("final val acc {fin:.4}");
    Some(match preset {
        "baseline" => ("reaches about 0.99", fin >= 0.98, acc),
        "noise" => (
            "falls by about the noise (to ~0.8)",
            (0.75..=0.85).contains(&fin),
            acc,
        ),
        "dummy-features" => ("still learns (>= 0.95)", fin >= 0.95, acc),
        "scaled" | "scaled-long" => {
            let d = drop_from_best(curves);
            (
                "is unstable: ends well below its best (by > 0.02)",
                d > 0.02,
                format!("best - final {d:.4}"),
            )
        }
        "shifted" => (
            "stays about 0.5 (0.45..0.55)",
            (0.45..=0.55).contains(&fin),
            acc,
        ),
        _ => return None,
    })
}

fn pm((m, s): (f64, f64)) -> String {
    format!("{m:.4} ± {s:.4}")
}

pub fn render(
    rows: &[Row],
    claims: &[(String, &str, bool, String, bool, String)],
    format: Format,
) -> String {
    let head = [
        "preset",
        "seeds ours/keras",
        "final ours",
        "final keras",
        "best ours",
        "best keras",
        "final diff [95% CI]",
        "epochs in band",
        "verdict",
    ];
    let table: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            vec![
                r.preset.clone(),
                format!("{}/{}", r.n_ours, r.n_keras),
                pm(r.final_ours),
                pm(r.final_keras),
                pm(r.best_ours),
                pm(r.best_keras),
                format!("{:+.4} [{:+.4}, {:+.4}]", r.diff.0, r.diff.1, r.diff.2),
                format!("{:.0}%", r.in_band * 100.0),
                if r.consistent {
                    "consistent"
                } else {
                    "differs"
                }
                .to_string(),
            ]
        })
        .collect();
    let claim_head = ["preset", "the article says", "keras", "ours"];
    let claim_rows: Vec<Vec<String>> = claims
        .iter()
        .map(|(p, what, kh, kv, oh, ov)| {
            let mark =
                |h: &bool, v: &str| format!("{} ({v})", if *h { "holds" } else { "does not hold" });
            vec![p.clone(), what.to_string(), mark(kh, kv), mark(oh, ov)]
        })
        .collect();
    let mut out = String::new();
    match format {
        Format::Csv => {
            let mut w = csv::Writer::from_writer(vec![]);
            let _ = w.write_record(head);
            for r in &table {
                let _ = w.write_record(r);
            }
            out = String::from_utf8(w.into_inner().unwrap_or_default()).unwrap_or_default();
        }
        Format::Markdown => {
            for (h, rows) in [(&head[..], &table), (&claim_head[..], &claim_rows)] {
                let _ = writeln!(out, "| {} |", h.join(" | "));
                let _ = writeln!(out, "|{}", "---|".repeat(h.len()));
                for r in rows {
                    let _ = writeln!(out, "| {} |", r.join(" | "));
                }
                out.push('\n');
            }
        }
        Format::Text => {
            for (h, rows) in [(&head[..], &table), (&claim_head[..], &claim_rows)] {
                let mut widths: Vec<usize> = h.iter().map(|s| s.chars().count()).collect();
                for r in rows.iter() {
                    for (w, c) in widths.iter_mut().zip(r) {
                        *w = (*w).max(c.chars().count());
                    }
                }
                let line = |cells: Vec<String>| {
                    cells
                        .iter()
                        .zip(&widths)
                        .map(|(c, w)| format!("{c:<w$}"))
                        .collect::<Vec<_>>()
                        .join("  ")
                };
                let _ = writeln!(
                    out,
                    "{}",
                    line(h.iter().map(|s| s.to_string()).collect()).trim_end()
                );
                for r in rows.iter() {
                    let _ = writeln!(out, "{}", line(r.clone()).trim_end());
                }
                out.push('\n');
            }
        }
    }
    out
}

pub fn run(args: &CompareArgs) -> Result<()> {
    let ours = load_ours(&args.ours)?;
    let keras = load_reference(&args.reference)?;
    let mut rows = vec![];
    let mut claims = vec![];
    for (preset, curves) in &ours {
        let Some(reference) = keras.get(preset) else {
            bail!(
                "preset '{preset}' has no Keras runs in {} (it has: {})",
                args.reference.display(),
                keras.keys().cloned().collect::<Vec<_>>().join(", ")
            );
        };
        check_comparable(preset, curves, reference)?;
        rows.push(compare_preset(preset, curves, reference));
        if let (Some((what, kh, kv)), Some((_, oh, ov))) = (
            article_claim(preset, reference),
            article_claim(preset, curves),
        ) {
            claims.push((preset.clone(), what, kh, kv, oh, ov));
        }
    }
    crate::outputs::stdout(&render(&rows, &claims, args.format))?;
    let differing: Vec<&str> = rows
        .iter()
        .filter(|r| !r.consistent)
        .map(|r| r.preset.as_str())
        .collect();
    if args.strict && !differing.is_empty() {
        bail!("--strict: {} differ(s) from Keras", differing.join(", "));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn curve(val: &[f64]) -> Curve {
        val.iter().map(|&v| [v, 0.1, v, 0.1]).collect()
    }

    #[test]
    fn welch_interval_matches_a_hand_computation() {
        let a = [1.0, 2.0, 3.0, 4.0];
        let b = [2.0, 4.0, 6.0, 8.0];
        let (d, lo, hi) = diff_ci(&a, &b);
        // se = sqrt(1.6667/4 + 6.6667/4) = 1.4434; df = 4.412 -> t(0.975) = 2.6771
        // (by bisection on the regularised incomplete beta function).
        assert!((d + 2.5).abs() < 1e-12);
        assert!(
            ((hi - lo) / 2.0 - 2.6771 * 1.4434).abs() < 0.01,
            "{lo} {hi}"
        );
        assert_eq!(t975(1.0), 12.706);
        assert!((t975(60.0) - 2.000).abs() < 0.001 && (t975(1e9) - 1.960).abs() < 0.001);
    }

    #[test]
    fn same_distribution_is_consistent_and_a_shift_differs() {
        let keras: Vec<Curve> = (0..10)
            .map(|i| curve(&[0.9, 0.95, 0.98 + i as f64 * 0.001]))
            .collect();
        let same: Vec<Curve> = (0..10)
            .map(|i| curve(&[0.9, 0.95, 0.9805 + i as f64 * 0.001]))
            .collect();
        assert!(compare_preset("baseline", &same, &keras).consistent);
        let worse: Vec<Curve> = (0..10)
            .map(|i| curve(&[0.8, 0.85, 0.88 + i as f64 * 0.001]))
            .collect();
        let r = compare_preset("baseline", &worse, &keras);
        assert!(!r.consistent);
        assert!((r.diff.0 + 0.1).abs() < 1e-9);
        assert_eq!(r.in_band, 0.0);
    }
}
