//! A binclass model opened in PyTorch (scripts/predict_torch.py) and in
//! Keras (scripts/keras_reference.py --predict) predicts what `binclass
//! predict` predicts.

use std::path::Path;
use std::process::Command;

mod common;
use common::{ok, project_python, project_python_with};

/// The `probability` column of a CSV.
fn probabilities(csv: &Path) -> Vec<f64> {
    let mut r = csv::Reader::from_path(csv).unwrap();
    let col = r
        .headers()
        .unwrap()
        .iter()
        .position(|h| h == "probability")
        .unwrap();
    r.records()
        .map(|row| row.unwrap()[col].parse().unwrap())
        .collect()
}

/// Trains, in `d`, the baseline (`b.safetensors`) and `scaled --normalize
/// standard` (`s.safetensors`), with points in each one's raw units
/// (`raw.csv`, `scaled.csv`): [0, 1) for the baseline, [0, 1000) for
/// scaled, which only works through the stored normalisation.
fn two_models(d: &Path) {
    let mut raw = String::from("x0,x1\n");
    let mut scaled = raw.clone();
    for i in 0..500 {
        let (a, b) = ((i * 37 % 500) as f64 / 500.0, (i * 91 % 499) as f64 / 499.0);
        raw += &format!("{a},{b}\n");
        scaled += &format!("{},{}\n", a * 1000.0, b * 1000.0);
    }
    std::fs::write(d.join("raw.csv"), raw).unwrap();
    std::fs::write(d.join("scaled.csv"), scaled).unwrap();
    let small = ["--epochs", "2", "--samples", "600", "--verbose", "0"];
    ok(d, &[&["train", "--out", "b.csv"], &small[..]].concat());
    ok(
        d,
        &[
            &[
                "train",
                "-e",
                "scaled",
                "--normalize",
                "standard",
                "--out",
                "s.csv",
            ],
            &small[..],
        ]
        .concat(),
    );
}

/// `binclass predict`'s probabilities for `model` on `points`, and those
/// `script` (run with `python`; the script and its flags first, then the
/// two paths) writes for them with `--out`: within 1e-6 of each other, on
/// both sides of 0.5.
fn same_probabilities(d: &Path, python: &Path, script: &[&Path], model: &str, points: &str) {
    ok(
        d,
        &[
            "predict",
            "--model",
            model,
            "--input",
            points,
            "--out",
            "ours.csv",
            "--overwrite",
        ],
    );
    let theirs = Command::new(python)
        .args(script)
        .args([model, points, "--out", "theirs.csv"])
        .current_dir(d)
        .env("TF_CPP_MIN_LOG_LEVEL", "2")
        .output()
        .unwrap();
    assert!(
        theirs.status.success(),
        "{}",
        String::from_utf8_lossy(&theirs.stderr)
    );
    let (ours, theirs) = (
        probabilities(&d.join("ours.csv")),
        probabilities(&d.join("theirs.csv")),
    );
    assert_eq!(ours.len(), 500);
    assert_eq!(ours.len(), theirs.len());
    for (i, (a, b)) in ours.iter().zip(&theirs).enumerate() {
        assert!((a - b).abs() <= 1e-6, "{model} point {i}: {a} vs {b}");
    }
    assert!(
        ours.iter().any(|p| *p > 0.5) && ours.iter().any(|p| *p < 0.5),
        "{model}"
    );
}

const CASES: [(&str, &str); 2] = [
    ("b.safetensors", "raw.csv"),
    ("s.safetensors", "scaled.csv"),
];

#[test]
fn pytorch_predicts_binclass_probabilities_within_1e_6() {
    let Some(python) = project_python("safetensors.torch") else {
        return;
    };
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/predict_torch.py");
    let dir = tempfile::tempdir().unwrap();
    two_models(dir.path());
    for (model, points) in CASES {
        same_probabilities(dir.path(), &python, &[&script], model, points);
    }
}

#[test]
fn keras_predicts_binclass_probabilities_within_1e_6() {
    let Some(python) = project_python_with("tf_keras", "--keras") else {
        return;
    };
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/keras_reference.py");
    let dir = tempfile::tempdir().unwrap();
    two_models(dir.path());
    for (model, points) in CASES {
        same_probabilities(
            dir.path(),
            &python,
            &[&script, Path::new("--predict")],
            model,
            points,
        );
    }
}
