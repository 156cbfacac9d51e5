//! A binclass model opened in PyTorch (scripts/predict_torch.py) and in
//! Keras (scripts/keras_reference.py --predict) predicts what `binclass
//! predict` predicts; the scripts (and scripts/plot_boundary.py) refuse, in
//! one line, the models and points binclass refuses.

use std::path::Path;
use std::process::Command;

use binclass::config::{Activation, Experiment, Normalize};
use binclass::data::Normalization;
use binclass::model_file::trained;
use safetensors::SafeTensors;

mod common;
use common::{binclass, ok, project_python, project_python_with};

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
        .args([model, points, "--out", "theirs.csv", "--overwrite"])
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
    let Some(python) = project_python_with("safetensors.torch", "--cuda") else {
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

/// A baseline network's file, untrained, with `activation`, scaled by
/// `scaling`, its weights as `edit` leaves them.
fn model_bytes_with(
    activation: Activation,
    scaling: Normalization,
    edit: impl FnOnce(&mut [(Vec<f32>, Vec<f32>)]),
) -> Vec<u8> {
    let mut e = Experiment::preset("baseline").unwrap();
    e.activation = activation;
    if scaling != Normalization::None {
        e.normalize = Normalize::Standard;
    }
    let mut layers = binclass::model::initial_values(&e, 0);
    edit(&mut layers);
    trained(&e, 0, 1, &scaling, layers).to_bytes().unwrap()
}

/// [`model_bytes_with`] the baseline's tanh.
fn model_bytes(scaling: Normalization, edit: impl FnOnce(&mut [(Vec<f32>, Vec<f32>)])) -> Vec<u8> {
    model_bytes_with(Activation::Tanh, scaling, edit)
}

/// The file `bytes` with metadata entries replaced.
fn with_metadata(bytes: &[u8], edit: &[(&str, &str)]) -> Vec<u8> {
    let (_, header) = SafeTensors::read_metadata(bytes).unwrap();
    let st = SafeTensors::deserialize(bytes).unwrap();
    let mut meta = header.metadata().clone().unwrap();
    for (k, v) in edit {
        meta.insert(k.to_string(), v.to_string());
    }
    safetensors::serialize(st.tensors(), Some(meta)).unwrap()
}

/// `python script args…` in `d` fails with one line starting `prefix` and
/// holding each of `says`, no traceback.
fn script_refuses(d: &Path, python: &Path, script: &str, args: &[&str], says: &[&str]) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("scripts")
        .join(script);
    let out = Command::new(python)
        .arg(path)
        .args(args)
        .current_dir(d)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{script} {args:?}: {err}");
    assert_eq!(
        err.trim_end().lines().count(),
        1,
        "{script} {args:?}: {err}"
    );
    let prefix = format!("{}: ", script.trim_end_matches(".py"));
    assert!(err.starts_with(&prefix), "{script} {args:?}: {err}");
    for s in says {
        assert!(err.contains(s), "{script} {args:?}: {err} lacks {s}");
    }
}

/// `binclass predict --model model --input points` fails with one line
/// holding each of `says`.
fn binclass_refuses(d: &Path, model: &str, points: &str, says: &[&str]) {
    let out = binclass(d, &["predict", "--model", model, "--input", points]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{model} {points}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    for s in says {
        assert!(err.contains(s), "{model} {points}: {err} lacks {s}");
    }
}

#[test]
fn predict_torch_and_plot_boundary_refuse_every_model_binclass_refuses() {
    let Some(python) = project_python("matplotlib") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let good = model_bytes(Normalization::None, |_| {});
    let standard = model_bytes(
        Normalization::Standard {
            mean: vec![0.5, 0.5],
            sd: vec![0.3, 0.3],
        },
        |_| {},
    );
    let lr0 = {
        let mut e: serde_json::Value =
            serde_json::to_value(Experiment::preset("baseline").unwrap()).unwrap();
        e["lr"] = 0.into();
        e.to_string()
    };
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "cut.safetensors",
            good[..good.len() - 10].to_vec(),
            "not a safetensors",
        ),
        (
            "v2.safetensors",
            with_metadata(&good, &[("format_version", "2")]),
            "format version 2",
        ),
        (
            "sd0.safetensors",
            with_metadata(&standard, &[("normalize_std", "[0.3,0.0]")]),
            "metadata `normalize_std` has a value <= 0",
        ),
        (
            "nan-mean.safetensors",
            with_metadata(&standard, &[("normalize_mean", "[NaN,0.5]")]),
            "metadata `normalize_mean`",
        ),
        (
            "relu.safetensors",
            with_metadata(&good, &[("activation", "relu")]),
            "metadata `activation` is relu but the experiment says tanh",
        ),
        (
            "lr0.safetensors",
            with_metadata(&good, &[("experiment", &lr0)]),
            "metadata `experiment`",
        ),
        (
            "nan-weight.safetensors",
            model_bytes(Normalization::None, |l| l[0].0[1] = f32::NAN),
            "tensor `0.weight` holds",
        ),
        (
            "inf-bias.safetensors",
            model_bytes(Normalization::None, |l| l[2].1[0] = f32::INFINITY),
            "tensor `4.bias` holds",
        ),
    ];
    std::fs::write(d.join("p.csv"), "x0,x1\n0.1,0.2\n").unwrap();
    for (name, bytes, says) in &cases {
        std::fs::write(d.join(name), bytes).unwrap();
        let says = [*name, *says];
        binclass_refuses(d, name, "p.csv", &says);
        script_refuses(d, &python, "predict_torch.py", &[name, "p.csv"], &says);
        script_refuses(
            d,
            &python,
            "plot_boundary.py",
            &[name, "--out", "x.png"],
            &says,
        );
    }
    assert!(!d.join("x.png").exists());
}

#[test]
fn predict_torch_refuses_the_points_binclass_refuses_in_the_same_words() {
    let Some(python) = project_python_with("safetensors.torch", "--cuda") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(
        d.join("m.safetensors"),
        model_bytes(Normalization::None, |_| {}),
    )
    .unwrap();
    let cases: [(&str, &str, &[&str]); 8] = [
        (
            "missing.csv",
            "",
            &["cannot read missing.csv: No such file or directory"],
        ),
        (
            "wide.csv",
            "x0,x1\n0.1,0.2\n0.1,0.2,0.3\n",
            &["wide.csv: line 3: 3 columns, expected 2 (the model's 2 features)"],
        ),
        (
            "nan.csv",
            "0.1,0.2\nNaN,0.2\n",
            &["nan.csv: line 2, column 1: 'NaN' is not finite"],
        ),
        (
            "typo.csv",
            "0.1,0.2x\n0.3,0.4\n",
            &["typo.csv: line 1, column 2: '0.2x' is not a number, and the row is not a header"],
        ),
        (
            "big.csv",
            "0.1,0.2\n0.3,1e39\n",
            &["big.csv: line 2, column 2: ", "is beyond float32's range"],
        ),
        (
            "crlf.csv",
            "x0,x1\r\n\r\n0.1,0.2\r\n0.3,abc\r\n",
            &["crlf.csv: line 4, column 2: 'abc' is not a number"],
        ),
        (
            "names.csv",
            "a,b,c\n0.1,0.2\n",
            &["names.csv: line 1: 3 columns, expected 2 (the model's 2 features)"],
        ),
        (
            "header.csv",
            "x0,x1\r\n\r\n",
            &["header.csv: empty input, no points after the header"],
        ),
    ];
    for (name, text, says) in cases {
        if !text.is_empty() {
            std::fs::write(d.join(name), text).unwrap();
        }
        binclass_refuses(d, "m.safetensors", name, says);
        script_refuses(
            d,
            &python,
            "predict_torch.py",
            &["m.safetensors", name],
            says,
        );
    }
    // Finite points whose output overflows to NaN (+inf from the first
    // layer through relu, times a zero weight) are refused too.
    let overflow = model_bytes_with(Activation::Relu, Normalization::None, |l| {
        l[0].0 = vec![1e30; 6];
        l[1].0[0] = 0.0;
    });
    std::fs::write(d.join("relu.safetensors"), overflow).unwrap();
    std::fs::write(d.join("far.csv"), "0,0\n1e9,1e9\n").unwrap();
    let says = ["far.csv: line 2: the model's output for this point is NaN"];
    binclass_refuses(d, "relu.safetensors", "far.csv", &says);
    script_refuses(
        d,
        &python,
        "predict_torch.py",
        &["relu.safetensors", "far.csv"],
        &says,
    );
    // keras_reference.py reads the first row by the same rule (and says so
    // before it needs TensorFlow).
    script_refuses(
        d,
        &python,
        "keras_reference.py",
        &["--predict", "m.safetensors", "typo.csv"],
        &["typo.csv: line 1, column 2: '0.2x' is not a number, and the row is not a header"],
    );
}

/// The Keras reference job: a Slurm array's tasks run their slices of the
/// seeds (tests run the script outside Slurm, one task after the other), a
/// seed run in the job is byte-identical to it run alone, and a task run
/// again skips what is finished.
#[test]
fn keras_reference_shards_skip_finished_seeds_share_what_is_left_and_match_single_runs() {
    let Some(python) = project_python_with("tf_keras", "--keras") else {
        return;
    };
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("ref");
    let task = |k: &str| {
        let status = std::process::Command::new("bash")
            .arg(root.join("docs/cluster/keras.slurm"))
            .current_dir(root)
            .envs([
                ("SLURM_ARRAY_TASK_ID", k),
                ("SHARDS", "2"),
                ("PRESET", "baseline"),
                ("SEEDS", "0..3"),
                ("EPOCHS", "2"),
                ("PYTHON", python.to_str().unwrap()),
                ("OUT", out.to_str().unwrap()),
            ])
            .status()
            .unwrap();
        assert!(status.success());
    };
    task("0");
    task("1");
    let names: Vec<String> = std::fs::read_dir(out.join("baseline"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names.len(), 3, "{names:?}");
    let seed2 = std::fs::read(out.join("baseline/seed-2.csv")).unwrap();
    let log = std::fs::read_to_string(out.join("fit-seconds.log")).unwrap();
    assert_eq!(log.lines().count(), 3, "{log}");
    task("1");
    let again = std::fs::read_to_string(out.join("fit-seconds.log")).unwrap();
    assert_eq!(again, log, "a finished seed was run again");
    let alone = dir.path().join("alone.csv");
    let status = std::process::Command::new(&python)
        .arg(root.join("scripts/keras_reference.py"))
        .args([
            "--preset",
            "baseline",
            "--seed",
            "2",
            "--epochs",
            "2",
            "--verbose",
            "0",
            "--out",
        ])
        .arg(&alone)
        .env("TF_CPP_MIN_LOG_LEVEL", "2")
        .status()
        .unwrap();
    assert!(status.success());
    assert_eq!(std::fs::read(&alone).unwrap(), seed2);
    // Workers started together on a range partly done share what is left:
    // of 0..5 with 0..=2 finished, shard 0/2 takes seed 3 and 1/2 seed 4.
    for (k, seed) in [("0/2", "3"), ("1/2", "4")] {
        let status = std::process::Command::new(&python)
            .arg(root.join("scripts/keras_reference.py"))
            .args(["--preset", "baseline", "--seeds", "0..5", "--shard", k])
            .args(["--shard-unfinished", "--epochs", "2", "--verbose", "0"])
            .arg("--out-dir")
            .arg(&out)
            .env("TF_CPP_MIN_LOG_LEVEL", "2")
            .status()
            .unwrap();
        assert!(status.success());
        let log = std::fs::read_to_string(out.join("fit-seconds.log")).unwrap();
        let last = log.lines().last().unwrap();
        assert!(
            last.starts_with(&format!("baseline,{seed},2,")),
            "{k}: {log}"
        );
    }
    let log = std::fs::read_to_string(out.join("fit-seconds.log")).unwrap();
    assert_eq!(log.lines().count(), 5, "each seed once: {log}");
}
