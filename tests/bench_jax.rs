//! scripts/bench_jax.py, the JAX peer of scripts/bench.sh, trains and writes a
//! Keras CSVLogger file. Runs only where `scripts/setup.sh --bench` installed JAX.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The python of the JAX environment (`scripts/setup.sh --jax-env` names it), if JAX is there.
fn python() -> Option<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = Command::new("bash")
        .arg(root.join("scripts/setup.sh"))
        .arg("--jax-env")
        .output()
        .ok()?;
    let venv = String::from_utf8(out.stdout).ok()?;
    let py = Path::new(venv.trim()).join("bin/python");
    let ok = out.status.success()
        && Command::new(&py)
            .args(["-c", "import jax"])
            .status()
            .is_ok_and(|s| s.success());
    if !ok {
        eprintln!("skipped: JAX is not installed (scripts/setup.sh --bench)");
    }
    ok.then_some(py)
}

#[test]
fn bench_jax_trains_seeds_under_vmap_and_writes_a_keras_csv() {
    let Some(py) = python() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("jax.csv");
    let o = Command::new(&py)
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/bench_jax.py"))
        .args(["--epochs", "2", "--seeds", "2", "--out"])
        .arg(&csv)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(err.contains("seeds=2 mean_val_binary_accuracy="), "{err}");
    let text = std::fs::read_to_string(&csv).unwrap();
    let lines: Vec<&str> = text.split_terminator("\r\n").collect();
    assert_eq!(
        lines[0], "epoch,binary_accuracy,loss,val_binary_accuracy,val_loss",
        "{text:?}"
    );
    assert_eq!(lines.len(), 3, "{text:?}");
    for (epoch, line) in lines[1..].iter().enumerate() {
        let fields: Vec<&str> = line.split(',').collect();
        assert_eq!(fields.len(), 5, "{line}");
        assert_eq!(fields[0], epoch.to_string(), "{line}");
        let val_acc: f64 = fields[3].parse().unwrap();
        let val_loss: f64 = fields[4].parse().unwrap();
        assert!(val_acc > 0.9 && val_acc <= 1.0, "{line}");
        assert!(val_loss.is_finite() && val_loss > 0.0, "{line}");
    }
}
