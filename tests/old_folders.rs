//! Folders, records and checkpoints written by binclass 461b9f0 (before
//! manifests and records carried a format version, `tests/fixtures/made-by-461b9f0`)
//! still resume, merge and compare. The fixture's numbers are its machine's,
//! so only what does not depend on the CPU is checked.

mod common;

use std::path::{Path, PathBuf};

use common::{binclass, ok};

/// A copy of the fixture's `part` in a fresh folder, as `part`.
fn copy_of(part: &str) -> (tempfile::TempDir, PathBuf) {
    let from = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/made-by-461b9f0");
    let dir = tempfile::tempdir().unwrap();
    let status = std::process::Command::new("cp")
        .arg("-a")
        .arg(from.join(part))
        .arg(dir.path())
        .status()
        .unwrap();
    assert!(status.success());
    let at = dir.path().join(part);
    (dir, at)
}

fn record(csv: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(format!("{}.json", csv.display())).unwrap();
    serde_json::from_str(&text).unwrap()
}

#[test]
fn a_train_run_interrupted_by_461b9f0_resumes_to_its_last_epoch() {
    let (dir, _) = copy_of("train");
    ok(
        dir.path(),
        &["resume", "train/baseline-seed0.csv", "-v", "0"],
    );
    let csv = dir.path().join("train/baseline-seed0.csv");
    assert_eq!(common::rows(&csv).len(), 150);
    let r = record(&csv);
    assert_eq!(r["version"], 2);
    assert_eq!(r["ended"]["kind"], "finished");
    assert_eq!(r["resumed"], serde_json::json!([33]));
    assert!(
        dir.path()
            .join("train/baseline-seed0.safetensors")
            .is_file()
    );
    assert!(!dir.path().join("train/baseline-seed0.ckpt").exists());
}

#[test]
fn a_sweep_interrupted_by_461b9f0_resumes_with_its_command_line_and_compares() {
    let (dir, _) = copy_of("sweep");
    let args =
        "sweep --seeds 0..3 --epochs 150 --samples 3000 --batch-size 10 -v 0 --out-dir sweep";
    let args: Vec<&str> = args.split(' ').collect();
    // Its manifest of version 1 says what it holds: not a new sweep.
    let out = binclass(dir.path(), &args);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("pass --resume to continue it"), "{err}");
    ok(dir.path(), &[&args[..], &["--resume"]].concat());
    for seed in 0..3 {
        let csv = dir.path().join(format!("sweep/baseline-seed{seed}.csv"));
        assert_eq!(common::rows(&csv).len(), 150, "seed {seed}");
        assert_eq!(record(&csv)["ended"]["kind"], "finished");
    }
    let m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("sweep/manifest.json")).unwrap())
            .unwrap();
    assert_eq!(
        (m["version"].clone(), m["finished"].clone()),
        (2.into(), true.into())
    );
    let out = ok(dir.path(), &["compare", "sweep"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("adam: 3 seeds"), "{text}");
}

#[test]
fn a_sweeps_shards_finished_by_461b9f0_merge_and_compare() {
    let (dir, _) = copy_of("shards");
    let d = dir.path();
    ok(d, &["merge", "shards/part0", "shards/part1", "--out", "m"]);
    for seed in 0..3 {
        let csv = d.join(format!("m/baseline-seed{seed}.csv"));
        assert_eq!(common::rows(&csv).len(), 2);
        // Each record names its CSV in the merged folder.
        assert_eq!(
            record(&csv)["csv"],
            csv.strip_prefix(d).unwrap().to_str().unwrap()
        );
    }
    let summary = std::fs::read_to_string(d.join("m/summary.csv")).unwrap();
    assert_eq!(summary.lines().count(), 1 + 3, "{summary}");
    let out = ok(d, &["compare", "m"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("adam: 3 seeds"), "{text}");
}

#[test]
fn a_reproductions_shards_by_461b9f0_merge_into_a_finished_reproduction() {
    let (dir, _) = copy_of("repro");
    let d = dir.path();
    ok(d, &["merge", "repro/part0", "repro/part1", "--out", "r"]);
    let report = std::fs::read_to_string(d.join("r/REPORT.md")).unwrap();
    assert!(report.contains("| baseline | 2/"), "{report}");
    assert!(d.join("r/figures/baseline.png").is_file());
}
