//! Every name binclass gives a file or folder on disk, made here and only
//! here: a run's CSV and the files beside it, a sweep's folder and what it
//! holds, a reproduction's report, figures and runs, TensorBoard's event
//! files, and which of them a folder's manifest says a command wrote (all a
//! replacing command may remove).

use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

/// `<csv>.json`: the run record beside its metrics.
pub fn record(csv: &Path) -> PathBuf {
    let mut s = csv.as_os_str().to_owned();
    s.push(RECORD);
    PathBuf::from(s)
}
const RECORD: &str = ".json";

/// Whether `path` is a run record beside its CSV (`….csv.json`).
pub fn is_record(path: &Path) -> bool {
    let csv = path.to_str().and_then(|p| p.strip_suffix(RECORD));
    csv.is_some_and(|csv| Path::new(csv).extension() == Some("csv".as_ref()))
}

/// The CSV a run record `<csv>.json` is beside.
pub fn record_csv(json: &Path) -> PathBuf {
    json.with_extension("")
}

/// `<csv stem>.safetensors`: the trained network beside its metrics
/// (`runs/baseline-seed0.csv` → `runs/baseline-seed0.safetensors`).
pub fn model(csv: &Path) -> PathBuf {
    csv.with_extension("safetensors")
}

/// `<csv stem>.ckpt`: a `train` run's checkpoint while it trains.
pub fn checkpoint(csv: &Path) -> PathBuf {
    csv.with_extension("ckpt")
}

/// A run's files beside its CSV, the CSV last.
pub fn run_files(csv: &Path) -> [PathBuf; 4] {
    [record(csv), model(csv), checkpoint(csv), csv.to_path_buf()]
}

/// `runs/<name>-seed<N>.csv`, or with `-k` for the k-th taken.
pub fn default_run(name: &str, seed: u64, k: usize) -> PathBuf {
    let stem = match k {
        0 => format!("{name}-seed{seed}"),
        k => format!("{name}-seed{seed}-{k}"),
    };
    Path::new("runs").join(format!("{stem}.csv"))
}

/// `runs/<name>-seeds<A>-<B>` (B excluded): a sweep's folder by default.
pub fn default_sweep(name: &str, seeds: &RangeInclusive<u64>) -> PathBuf {
    Path::new("runs").join(format!(
        "{name}-seeds{}-{}",
        seeds.start(),
        *seeds.end() as u128 + 1
    ))
}

/// `<dir>/<name>-seed<N>.csv`: a sweep seed's CSV, as `train` names it.
pub fn seed_csv(dir: &Path, name: &str, seed: u64) -> PathBuf {
    dir.join(format!("{name}-seed{seed}.csv"))
}

/// `<dir>/<name>-seed<N>.csv.json`: a sweep seed's record.
pub fn seed_record(dir: &Path, name: &str, seed: u64) -> PathBuf {
    record(&seed_csv(dir, name, seed))
}

/// `<dir>/summary.csv`: a sweep's (or a grid's) final and best accuracies.
pub fn summary(dir: &Path) -> PathBuf {
    dir.join(SUMMARY)
}
pub const SUMMARY: &str = "summary.csv";

/// `<dir>/manifest.json`: which command, plan and shard a folder holds,
/// written before anything else in it.
pub fn manifest(dir: &Path) -> PathBuf {
    dir.join(MANIFEST)
}
pub const MANIFEST: &str = "manifest.json";

/// `<dir>/batch-<first>-<last>.ckpt`: a sweep batch's checkpoint.
pub fn batch_checkpoint(dir: &Path, seeds: &[u64]) -> PathBuf {
    dir.join(format!(
        "batch-{}-{}.ckpt",
        seeds[0],
        seeds[seeds.len() - 1]
    ))
}

/// Whether a file name is a batch checkpoint's.
pub fn is_batch_checkpoint(name: &str) -> bool {
    name.strip_prefix("batch-")
        .and_then(|n| n.strip_suffix(".ckpt"))
        .and_then(|n| n.split_once('-'))
        .is_some_and(|(a, b)| a.parse::<u64>().is_ok() && b.parse::<u64>().is_ok())
}

/// The batch checkpoints in `dir`, by name.
pub fn batch_checkpoints(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut found = paths_in(dir).with_context(|| format!("cannot read {}", dir.display()))?;
    found.retain(|p| is_batch_checkpoint(&p.file_name().unwrap_or_default().to_string_lossy()));
    found.sort();
    Ok(found)
}

/// Every entry of `dir`, unsorted.
pub fn paths_in(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    std::fs::read_dir(dir)?
        .map(|e| e.map(|e| e.path()))
        .collect()
}

/// A `--vary` setting's folder: `noise-rate=0.1,lr=0.03`.
pub fn setting(flags: &[&str], values: &[String]) -> String {
    flags
        .iter()
        .zip(values)
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// A reproduction's files: its report, its figures and its runs.
pub fn report(dir: &Path) -> PathBuf {
    dir.join("REPORT.md")
}

pub fn figures(dir: &Path) -> PathBuf {
    dir.join("figures")
}

pub fn figure(dir: &Path, label: &str) -> PathBuf {
    figures(dir).join(format!("{label}.png"))
}

pub fn boundary_figure(dir: &Path, label: &str) -> PathBuf {
    figures(dir).join(format!("{label}-boundary.png"))
}

/// A preset's final accuracies, ours and Keras's, as distributions.
pub fn finals_figure(dir: &Path, label: &str) -> PathBuf {
    figures(dir).join(format!("{label}-finals.png"))
}

/// `<dir>/runs`: a reproduction's runs, a folder a preset or curve under it.
pub fn reproduction_runs_dir(dir: &Path) -> PathBuf {
    dir.join(REPRODUCTION_RUNS)
}
const REPRODUCTION_RUNS: &str = "runs";

/// `runs/<label>`: a preset's or curve's runs in a reproduction's folder,
/// as its plan names the folder.
pub fn reproduction_folder(label: &str) -> String {
    format!("{REPRODUCTION_RUNS}/{label}")
}

/// `<dir>/runs/<label>`.
pub fn reproduction_runs(dir: &Path, label: &str) -> PathBuf {
    reproduction_runs_dir(dir).join(label)
}

/// The label of a folder a reproduction's plan names (`runs/<label>`, or
/// a setting's folder below it); `None` for a sweep's.
pub fn reproduction_label(folder: &str) -> Option<&str> {
    folder
        .strip_prefix(REPRODUCTION_RUNS)?
        .strip_prefix('/')?
        .split('/')
        .next()
}

/// `<dir>/events.out.tfevents.<secs>.<host>.<pid>.binclass`: an event file
/// for TensorBoard, named as TensorFlow names them (TensorBoard reads a
/// folder's in name order) and marked as binclass's own.
pub fn event_file(dir: &Path, secs: u64, host: &str, pid: u32) -> PathBuf {
    dir.join(format!("{EVENTS}{secs}.{host}.{pid}{OUR_EVENTS}"))
}
const EVENTS: &str = "events.out.tfevents.";
/// binclass's event files end with this: it replaces only its own.
const OUR_EVENTS: &str = ".binclass";

/// Whether TensorBoard reads a file of this name as events: any name
/// holding `tfevents`, whoever wrote it.
pub fn is_event_file(name: &str) -> bool {
    name.contains("tfevents")
}

/// Whether an event file of this name is binclass's ([`event_file`]).
pub fn is_our_event_file(name: &str) -> bool {
    is_event_file(name) && name.ends_with(OUR_EVENTS)
}

/// The `secs` an event file of this name was named with ([`event_file`]).
pub fn event_file_secs(name: &str) -> Option<u64> {
    name.strip_prefix(EVENTS)?.split('.').next()?.parse().ok()
}

/// Every file a sweep of `name` over `seeds` may have written in `dir`
/// (runs, batch checkpoints aside, and the summary), whether or not it exists.
pub fn sweep_files(dir: &Path, name: &str, seeds: RangeInclusive<u64>) -> Vec<PathBuf> {
    seeds
        .flat_map(|s| run_files(&seed_csv(dir, name, s)))
        .chain([summary(dir)])
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_runs_files_sit_beside_its_csv() {
        let csv = Path::new("runs/baseline-seed0.csv");
        assert_eq!(
            run_files(csv).map(|p| p.display().to_string()),
            [
                "runs/baseline-seed0.csv.json",
                "runs/baseline-seed0.safetensors",
                "runs/baseline-seed0.ckpt",
                "runs/baseline-seed0.csv"
            ]
        );
        assert_eq!(
            default_sweep("noise", &(0..=9)),
            Path::new("runs/noise-seeds0-10")
        );
    }

    #[test]
    fn a_record_is_named_for_its_csv_and_known_by_that_name() {
        let json = seed_record(Path::new("noise-rate=0.1"), "baseline", 7);
        assert_eq!(json, Path::new("noise-rate=0.1/baseline-seed7.csv.json"));
        assert!(is_record(&json));
        for other in ["manifest.json", "x.json", "baseline-seed7.csv", "csv.json"] {
            assert!(!is_record(Path::new(other)), "{other}");
        }
    }

    #[test]
    fn a_reproductions_runs_sit_under_runs_named_by_label() {
        let dir = Path::new("r");
        let folder = reproduction_folder("noise-curve");
        assert_eq!(dir.join(&folder), reproduction_runs(dir, "noise-curve"));
        assert_eq!(reproduction_runs_dir(dir), Path::new("r/runs"));
        let setting = format!("{folder}/noise-rate=0.5");
        assert_eq!(reproduction_label(&setting), Some("noise-curve"));
        assert_eq!(reproduction_label("noise-rate=0.5"), None);
        assert_eq!(reproduction_label("runsx/a"), None);
    }

    #[test]
    fn our_event_files_are_tensorflows_names_marked_as_ours() {
        let f = event_file(Path::new("tb/run/train"), 1700000000, "host", 42);
        let name = f.file_name().unwrap().to_str().unwrap();
        assert_eq!(name, "events.out.tfevents.1700000000.host.42.binclass");
        assert!(is_our_event_file(name));
        assert_eq!(event_file_secs(name), Some(1700000000));
        let theirs = "events.out.tfevents.1700000000.host.42.v2";
        assert!(is_event_file(theirs) && !is_our_event_file(theirs));
    }

    #[test]
    fn only_our_checkpoint_names_are_batch_checkpoints() {
        assert!(is_batch_checkpoint("batch-0-63.ckpt"));
        for other in ["batch-.ckpt", "batch-a-b.ckpt", "batch-1.ckpt", "x.ckpt"] {
            assert!(!is_batch_checkpoint(other), "{other}");
        }
    }
}
