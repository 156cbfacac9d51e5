//! `binclass parity` on the committed fixture: 3 epochs of Keras's baseline
//! (seed 0) dumped by `scripts/keras_reference.py --dump`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_binclass");

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/parity-baseline-seed0")
}

fn parity(dir: &Path, more: &[&str]) -> Output {
    Command::new(BIN)
        .arg("parity")
        .arg(dir)
        .args(more)
        .output()
        .unwrap()
}

#[test]
fn keras_adam_replays_keras_within_tolerance_and_writes_every_step() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("steps.csv");
    // Measured: at most 3.8e-5 in epoch 0 (1e-5 holds for its first 122 steps), 1.2e-4 over 3 epochs.
    let o = parity(
        &fixture(),
        &["--tolerance", "2e-4", "--out", out.to_str().unwrap()],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = String::from_utf8_lossy(&o.stdout);
    assert_eq!(text.lines().count(), 4, "{text}");
    let rows = std::fs::read_to_string(&out).unwrap();
    assert_eq!(rows.lines().count(), 1 + 3 * 267);
}

#[test]
fn a_wrong_setting_fails_parity() {
    // libtorch's Adam with a wrong epsilon, and plain nn::Adam: both part from Keras.
    for more in [
        &["--optimizer", "adam", "--eps", "1e-3"][..],
        &["--optimizer", "adam"],
        &["--eps", "1e-3"],
    ] {
        let o = parity(&fixture(), &[more, &["--tolerance", "2e-4"]].concat());
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success(), "{more:?} passed");
        assert!(err.contains("per-step loss differs from Keras's"), "{err}");
    }
}

#[test]
fn a_dump_with_missing_or_misshaped_files_is_rejected() {
    let tmp = tempfile::tempdir().unwrap();
    let copy = |name: &str| {
        let d = tmp.path().join(name);
        std::fs::create_dir_all(&d).unwrap();
        for f in [
            "data.npz",
            "weights.npz",
            "order.npy",
            "steps.csv",
            "epochs.csv",
        ] {
            std::fs::copy(fixture().join(f), d.join(f)).unwrap();
        }
        d
    };
    let missing = copy("missing");
    std::fs::remove_file(missing.join("order.npy")).unwrap();
    let short = copy("short");
    let steps = std::fs::read_to_string(short.join("steps.csv")).unwrap();
    std::fs::write(
        short.join("steps.csv"),
        steps.lines().take(100).collect::<Vec<_>>().join("\n"),
    )
    .unwrap();
    let swapped = copy("swapped");
    std::fs::copy(fixture().join("weights.npz"), swapped.join("data.npz")).unwrap();
    for (dir, expected) in [
        (missing, "order.npy"),
        (short, "expected 267 steps"),
        (swapped, "data.npz has no array 'x'"),
        (tmp.path().join("nowhere"), "no such folder"),
    ] {
        let o = parity(&dir, &[]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success());
        assert_eq!(err.trim().lines().count(), 1, "{err}");
        assert!(err.contains(expected), "{dir:?}: {err}");
    }
}
