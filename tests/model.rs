//! Saved models: what `train` and `sweep` write, and `predict` and
//! `evaluate` over them, with every bad input refused in one line.

use std::collections::HashMap;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use binclass::config::{Activation, Experiment, Normalize, Overrides};
use binclass::data::{Dataset, Normalization};
use binclass::keras_csv::python_float;
use binclass::model_file::{Layers, trained};
use safetensors::SafeTensors;
use safetensors::tensor::{Dtype, TensorView};

mod common;
use common::{BIN, binclass, ok, run, with};

/// Small and quick: 600 samples, 480 train in 16 steps of 30.
const SMALL: &[&str] = &["train", "--verbose", "0", "--samples", "600"];

/// Each tensor's name and shape, sorted.
type Shapes = Vec<(String, Vec<usize>)>;

fn metadata(path: &Path) -> (Shapes, HashMap<String, String>) {
    let bytes = std::fs::read(path).unwrap();
    let (_, header) = SafeTensors::read_metadata(&bytes).unwrap();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    let mut tensors: Vec<(String, Vec<usize>)> = st
        .tensors()
        .into_iter()
        .map(|(n, v)| {
            assert_eq!(v.dtype(), Dtype::F32, "{n}");
            (n, v.shape().to_vec())
        })
        .collect();
    tensors.sort();
    (tensors, header.metadata().clone().unwrap())
}

/// The last row of a CSVLogger file, as text fields.
fn last_row(csv: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(csv).unwrap();
    let line = text.lines().last().unwrap();
    line.split(',').map(String::from).collect()
}

#[test]
fn train_saves_the_pytorch_state_dict_names_and_shapes_with_metadata() {
    let dir = tempfile::tempdir().unwrap();
    run(
        dir.path(),
        with(SMALL, &["--epochs", "2", "--out", "x.csv"]),
    );
    let (tensors, meta) = metadata(&dir.path().join("x.safetensors"));
    let expected: Vec<(String, Vec<usize>)> = [
        ("0.bias", vec![3]),
        ("0.weight", vec![3, 2]),
        ("2.bias", vec![3]),
        ("2.weight", vec![3, 3]),
        ("4.bias", vec![3]),
        ("4.weight", vec![3, 3]),
        ("6.bias", vec![1]),
        ("6.weight", vec![1, 3]),
    ]
    .into_iter()
    .map(|(n, s)| (n.to_string(), s))
    .collect();
    assert_eq!(tensors, expected);
    for (k, v) in [
        ("format", "binclass-model"),
        ("format_version", "1"),
        ("features", "2"),
        ("hidden_layers", "3"),
        ("units", "3"),
        ("activation", "tanh"),
        ("init", "keras"),
        ("normalize", "none"),
        ("seed", "0"),
        ("epochs_completed", "2"),
        ("binclass_version", env!("CARGO_PKG_VERSION")),
    ] {
        assert_eq!(meta.get(k).map(String::as_str), Some(v), "{k}");
    }
    let e: Experiment = serde_json::from_str(&meta["experiment"]).unwrap();
    assert_eq!((e.name.as_str(), e.samples, e.epochs), ("baseline", 600, 2));
    assert!(meta.contains_key("tch_version") && meta.contains_key("libtorch_version"));
}

#[test]
fn a_standardised_model_keeps_its_training_rows_mean_and_sd() {
    let dir = tempfile::tempdir().unwrap();
    let args = [
        "--epochs",
        "1",
        "-e",
        "scaled",
        "--normalize",
        "standard",
        "--seed",
        "3",
    ];
    run(
        dir.path(),
        with(SMALL, &[&args[..], &["--out", "s.csv"]].concat()),
    );
    let (_, meta) = metadata(&dir.path().join("s.safetensors"));
    assert_eq!(meta["normalize"], "standard");
    let mean: Vec<f64> = serde_json::from_str(&meta["normalize_mean"]).unwrap();
    let sd: Vec<f64> = serde_json::from_str(&meta["normalize_std"]).unwrap();
    let e = Experiment::resolve(
        "scaled",
        &Overrides {
            samples: Some(600),
            normalize: Some(Normalize::None),
            ..Default::default()
        },
    )
    .unwrap();
    let raw = Dataset::generate(&e, 3).unwrap();
    for j in 0..2 {
        let col: Vec<f64> = raw.features[..480 * 2]
            .iter()
            .skip(j)
            .step_by(2)
            .copied()
            .collect();
        let m = col.iter().sum::<f64>() / 480.0;
        let s = (col.iter().map(|x| (x - m).powi(2)).sum::<f64>() / 480.0).sqrt();
        assert_eq!((mean[j], sd[j]), (m, s), "feature {j}");
    }
    assert!(mean[0] > 100.0, "raw units, before scaling: {mean:?}");
}

#[test]
fn an_existing_model_is_refused_before_the_run_creates_anything() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("x.safetensors"), "keep").unwrap();
    let out = binclass(
        dir.path(),
        &with(SMALL, &["--out", "x.csv"])
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("x.safetensors already exists"), "{err}");
    assert!(!dir.path().join("x.csv").exists());
    assert_eq!(
        std::fs::read(dir.path().join("x.safetensors")).unwrap(),
        b"keep"
    );
}

#[test]
fn evaluate_reproduces_the_last_row_of_the_models_own_run() {
    let dir = tempfile::tempdir().unwrap();
    run(
        dir.path(),
        with(SMALL, &["--epochs", "3", "--seed", "4", "--out", "r.csv"]),
    );
    let out = ok(dir.path(), &["evaluate", "--model", "r.safetensors"]);
    let text = String::from_utf8(out.stdout).unwrap();
    let row = last_row(&dir.path().join("r.csv"));
    // epoch,binary_accuracy,loss,val_binary_accuracy,val_loss
    assert!(
        text.contains(&format!("loss {}\n", row[4])),
        "{text} vs {row:?}"
    );
    assert!(
        text.contains(&format!("binary_accuracy {}\n", row[3])),
        "{text} vs {row:?}"
    );
    assert!(text.contains("samples 120\n"), "{text}");
}

#[test]
fn a_sweep_seeds_model_predicts_its_last_rows_validation_metrics() {
    let dir = tempfile::tempdir().unwrap();
    ok(
        dir.path(),
        &[
            "sweep",
            "--seeds",
            "0..3",
            "--epochs",
            "3",
            "--samples",
            "600",
            "--verbose",
            "0",
            "--out-dir",
            "s",
        ],
    );
    for seed in 0..=2 {
        let model = format!("s/baseline-seed{seed}.safetensors");
        let out = ok(
            dir.path(),
            &["evaluate", "--model", &model, "--format", "json"],
        );
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let row = last_row(&dir.path().join(format!("s/baseline-seed{seed}.csv")));
        let (val_acc, val_loss): (f64, f64) = (row[3].parse().unwrap(), row[4].parse().unwrap());
        assert_eq!(
            v["binary_accuracy"].as_f64().unwrap(),
            val_acc,
            "seed {seed}"
        );
        // The batched forward pass rounds differently from one network's.
        let loss = v["loss"].as_f64().unwrap();
        assert!(
            (loss - val_loss).abs() <= 1e-6 * val_loss,
            "seed {seed}: {loss} vs {val_loss}"
        );
    }
}

/// The raw validation points of baseline with 600 samples, seed `seed`, as
/// a CSV with a header and a label column.
fn validation_csv(seed: u64) -> String {
    let e = Experiment::resolve(
        "baseline",
        &Overrides {
            samples: Some(600),
            ..Default::default()
        },
    )
    .unwrap();
    let d = Dataset::generate(&e, seed).unwrap();
    let mut text = String::from("a,b,label\n");
    for i in 480..600 {
        let (x0, x1) = (d.features[2 * i], d.features[2 * i + 1]);
        text += &format!(
            "{},{},{}\n",
            python_float(x0),
            python_float(x1),
            d.labels[i]
        );
    }
    text
}

#[test]
fn predict_and_evaluate_on_a_labelled_csv_agree_with_the_runs_validation() {
    let dir = tempfile::tempdir().unwrap();
    run(
        dir.path(),
        with(SMALL, &["--epochs", "3", "--seed", "2", "--out", "r.csv"]),
    );
    std::fs::write(dir.path().join("val.csv"), validation_csv(2)).unwrap();
    let own = ok(
        dir.path(),
        &["evaluate", "--model", "r.safetensors", "--format", "json"],
    );
    let own: serde_json::Value = serde_json::from_slice(&own.stdout).unwrap();
    let file = ok(
        dir.path(),
        &[
            "evaluate",
            "--model",
            "r.safetensors",
            "--input",
            "val.csv",
            "--label-column",
            "label",
            "--format",
            "json",
        ],
    );
    let file: serde_json::Value = serde_json::from_slice(&file.stdout).unwrap();
    assert_eq!(file["binary_accuracy"], own["binary_accuracy"]);
    assert_eq!(file["samples"], 120);
    let (a, b) = (
        file["loss"].as_f64().unwrap(),
        own["loss"].as_f64().unwrap(),
    );
    assert!((a - b).abs() <= 1e-6 * b, "{a} vs {b}");

    ok(
        dir.path(),
        &[
            "predict",
            "--model",
            "r.safetensors",
            "--input",
            "val.csv",
            "--label-column",
            "label",
            "--out",
            "p.csv",
        ],
    );
    let text = std::fs::read_to_string(dir.path().join("p.csv")).unwrap();
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("a,b,label,probability,class"));
    let mut right = 0;
    for (line, input) in lines.zip(validation_csv(2).lines().skip(1)) {
        let f: Vec<&str> = line.split(',').collect();
        assert!(
            line.starts_with(input),
            "the input columns pass through: {line}"
        );
        let p: f64 = f[3].parse().unwrap();
        assert_eq!(f[4], if p > 0.5 { "1" } else { "0" });
        right += usize::from(f[4].parse::<f64>().unwrap() == f[2].parse::<f64>().unwrap());
    }
    assert_eq!(
        (right as f64 / 120.0) as f32 as f64,
        file["binary_accuracy"].as_f64().unwrap()
    );
}

#[test]
fn predict_streams_from_stdin_to_stdout_without_a_header() {
    let dir = tempfile::tempdir().unwrap();
    run(
        dir.path(),
        with(SMALL, &["--epochs", "1", "--out", "r.csv"]),
    );
    let mut child = Command::new(BIN)
        .args(["predict", "--model", "r.safetensors"])
        .current_dir(dir.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    // More rows than one chunk, so that chunks join seamlessly.
    let rows = 70_000;
    let mut input = String::new();
    for i in 0..rows {
        input += &format!("{},{}\n", (i % 100) as f64 / 100.0, (i % 37) as f64 / 37.0);
    }
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()).unwrap());
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "x0,x1,probability,class");
    assert_eq!(lines.len(), rows + 1);
    // The points repeat every 3700 rows (100 × 37), across chunk boundaries too.
    for i in [3700, 65_530, 65_535, 65_536, 65_540] {
        assert_eq!(lines[1 + i], lines[1 + i - 3700], "row {i}");
    }
}

/// A command that must fail with one line on stderr containing each of
/// `says`, leaving no `left` file.
fn refused(dir: &Path, args: &[&str], says: &[&str], left: &str) {
    let out = binclass(dir, args);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{args:?} succeeded");
    assert_eq!(err.trim_end().lines().count(), 1, "{args:?}: {err}");
    for s in says {
        assert!(err.contains(s), "{args:?}: {err} lacks {s}");
    }
    assert!(!dir.join(left).exists(), "{args:?} left {left}");
}

/// A copy of `model`'s file with its tensors renamed or reshaped by `edit`.
fn edited(model: &Path, to: &Path, edit: impl Fn(&str, &[usize]) -> (String, Vec<usize>)) {
    let bytes = std::fs::read(model).unwrap();
    let (_, header) = SafeTensors::read_metadata(&bytes).unwrap();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    let tensors: Vec<(String, Vec<usize>, Vec<u8>)> = st
        .tensors()
        .into_iter()
        .map(|(n, v)| {
            let (name, shape) = edit(&n, v.shape());
            let len: usize = shape.iter().product::<usize>() * 4;
            let mut data = v.data().to_vec();
            data.resize(len, 0);
            (name, shape, data)
        })
        .collect();
    let views: Vec<(String, TensorView)> = tensors
        .iter()
        .map(|(n, s, d)| {
            (
                n.clone(),
                TensorView::new(Dtype::F32, s.clone(), d).unwrap(),
            )
        })
        .collect();
    std::fs::write(
        to,
        safetensors::serialize(views, header.metadata().clone()).unwrap(),
    )
    .unwrap();
}

#[test]
fn every_bad_input_is_one_line_naming_where_and_leaves_no_output() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    run(d, with(SMALL, &["--epochs", "1", "--out", "r.csv"]));
    let model = d.join("r.safetensors");
    for (name, text) in [
        ("cols.csv", "x0,x1\n0.1,0.2\n0.3,0.4,0.5\n"),
        ("word.csv", "0.1,0.2\n0.3,abc\n"),
        ("nan.csv", "0.1,0.2\n0.3,0.4\nNaN,0.1\n"),
        ("inf.csv", "0.1,inf\n"),
        ("empty.csv", ""),
        ("header.csv", "x0,x1\n"),
        ("label.csv", "a,b,y\n0.1,0.2,0.5\n"),
    ] {
        std::fs::write(d.join(name), text).unwrap();
    }
    let p = |input: &str| -> Vec<String> {
        [
            "predict",
            "--model",
            "r.safetensors",
            "--input",
            input,
            "--out",
            "o.csv",
        ]
        .map(String::from)
        .to_vec()
    };
    let cases: Vec<(Vec<String>, Vec<&str>)> = vec![
        (
            p("cols.csv"),
            vec!["cols.csv: line 3", "3 columns, expected 2"],
        ),
        (
            p("word.csv"),
            vec!["word.csv: line 2, column 2", "'abc' is not a number"],
        ),
        (
            p("nan.csv"),
            vec!["nan.csv: line 3, column 1", "not finite"],
        ),
        (
            p("inf.csv"),
            vec!["inf.csv: line 1, column 2", "not finite"],
        ),
        (p("empty.csv"), vec!["empty.csv: empty input"]),
        (p("header.csv"), vec!["header.csv: empty input"]),
        (p("missing.csv"), vec!["cannot read missing.csv"]),
        (
            [
                "evaluate",
                "--model",
                "r.safetensors",
                "--input",
                "label.csv",
                "--label-column",
                "y",
            ]
            .map(String::from)
            .to_vec(),
            vec!["label.csv: line 2, column 3", "not 0 or 1"],
        ),
    ];
    for (args, says) in &cases {
        refused(
            d,
            &args.iter().map(String::as_str).collect::<Vec<_>>(),
            says,
            "o.csv",
        );
    }
    // To stdout, a bad row within the first chunk leaves it empty: no header
    // and no rows that a pipeline would take for a whole, shorter result.
    for input in ["cols.csv", "word.csv", "nan.csv", "inf.csv"] {
        let out = binclass(
            d,
            &["predict", "--model", "r.safetensors", "--input", input],
        );
        assert!(!out.status.success(), "{input}");
        assert_eq!(String::from_utf8_lossy(&out.stdout), "", "{input}");
    }
    // Bad model files.
    std::fs::copy(d.join("r.csv"), d.join("csv.safetensors")).unwrap();
    let bytes = std::fs::read(&model).unwrap();
    std::fs::write(d.join("cut.safetensors"), &bytes[..bytes.len() - 10]).unwrap();
    edited(&model, &d.join("names.safetensors"), |n, s| {
        (n.replace("2.", "1."), s.to_vec())
    });
    edited(&model, &d.join("shape.safetensors"), |n, s| {
        (
            n.to_string(),
            if n == "0.weight" {
                vec![3, 5]
            } else {
                s.to_vec()
            },
        )
    });
    std::fs::write(d.join("points.csv"), "0.1,0.2\n").unwrap();
    // A file (sparse: no disk used) larger than any model, read no further.
    let big = std::fs::File::create(d.join("big.safetensors")).unwrap();
    big.set_len(binclass::model_file::MAX_FILE_BYTES + 1)
        .unwrap();
    for (m, says) in [
        ("none.safetensors", "cannot read model none.safetensors"),
        (
            "big.safetensors",
            "larger than any binclass model (416 MB at most); not a model file",
        ),
        ("csv.safetensors", "not a safetensors file"),
        ("cut.safetensors", "not a safetensors file"),
        (
            "names.safetensors",
            "is not part of this network (expected 0.weight, 0.bias, 2.weight",
        ),
        (
            "shape.safetensors",
            "tensor `0.weight` has shape [3, 5], expected [3, 2]",
        ),
    ] {
        for cmd in ["predict", "evaluate"] {
            let mut args = vec![cmd, "--model", m];
            if cmd == "predict" {
                args.extend(["--input", "points.csv", "--out", "o.csv"]);
            }
            refused(d, &args, &[m, says], "o.csv");
        }
    }
    // An existing --out is kept unless --overwrite.
    std::fs::write(d.join("o.csv"), "keep").unwrap();
    let out = binclass(
        d,
        &[
            "predict",
            "--model",
            "r.safetensors",
            "--input",
            "points.csv",
            "--out",
            "o.csv",
        ],
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("o.csv already exists"));
    assert_eq!(std::fs::read(d.join("o.csv")).unwrap(), b"keep");
    ok(
        d,
        &[
            "predict",
            "--model",
            "r.safetensors",
            "--input",
            "points.csv",
            "--out",
            "o.csv",
            "--overwrite",
        ],
    );
    assert!(
        std::fs::read_to_string(d.join("o.csv"))
            .unwrap()
            .starts_with("x0,x1,probability,class\n")
    );
    let hidden: Vec<_> = std::fs::read_dir(d)
        .unwrap()
        .filter_map(|e| e.unwrap().file_name().into_string().ok())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(hidden.is_empty(), "temporaries left: {hidden:?}");
}

#[test]
fn a_model_whose_architecture_keys_disagree_with_its_experiment_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    run(d, with(SMALL, &["--epochs", "1", "--out", "r.csv"]));
    let bytes = std::fs::read(d.join("r.safetensors")).unwrap();
    let (_, header) = SafeTensors::read_metadata(&bytes).unwrap();
    std::fs::write(d.join("points.csv"), "0.1,0.2\n").unwrap();
    for (key, was, edited) in [
        ("activation", "tanh", "relu"),
        ("init", "keras", "torch"),
        ("normalize", "none", "standard"),
    ] {
        let mut meta = header.metadata().clone().unwrap();
        assert_eq!(meta[key], was);
        meta.insert(key.into(), edited.into());
        if key == "normalize" {
            // Complete, so that only the disagreement is wrong.
            meta.insert("normalize_mean".into(), "[0.5,0.5]".into());
            meta.insert("normalize_std".into(), "[0.3,0.3]".into());
        }
        let st = SafeTensors::deserialize(&bytes).unwrap();
        let model = format!("{key}.safetensors");
        std::fs::write(
            d.join(&model),
            safetensors::serialize(st.tensors(), Some(meta)).unwrap(),
        )
        .unwrap();
        let line = format!("metadata `{key}` is {edited} but the experiment says {was}");
        let says = [model.as_str(), line.as_str()];
        let predict = [
            "predict",
            "--model",
            &model,
            "--input",
            "points.csv",
            "--out",
            "o.csv",
        ];
        refused(d, &predict, &says, "o.csv");
        refused(d, &["evaluate", "--model", &model], &says, "o.csv");
    }
}

#[test]
fn an_input_that_cannot_be_read_is_refused_as_unreadable_not_at_a_line() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    run(d, with(SMALL, &["--epochs", "1", "--out", "r.csv"]));
    std::fs::create_dir(d.join("points")).unwrap();
    let says = ["cannot read points: Is a directory"];
    refused(
        d,
        &[
            "predict",
            "--model",
            "r.safetensors",
            "--input",
            "points",
            "--out",
            "o.csv",
        ],
        &says,
        "o.csv",
    );
    refused(
        d,
        &[
            "evaluate",
            "--model",
            "r.safetensors",
            "--input",
            "points",
            "--label-column",
            "y",
        ],
        &says,
        "o.csv",
    );
}

#[test]
fn predict_to_a_full_stdout_says_it_cannot_write_to_stdout() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    run(d, with(SMALL, &["--epochs", "1", "--out", "r.csv"]));
    std::fs::write(d.join("points.csv"), "0.1,0.2\n").unwrap();
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .unwrap();
    let out = Command::new(BIN)
        .args([
            "predict",
            "--model",
            "r.safetensors",
            "--input",
            "points.csv",
        ])
        .current_dir(d)
        .stdout(full)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert_eq!(
        err.trim_end(),
        "error: cannot write to stdout: No space left on device (os error 28)"
    );
}

/// A baseline network saved at `path` without training: its initial
/// weights as `edit` leaves them, with `activation`, scaled by `scaling`.
fn crafted_with(
    path: &Path,
    activation: Activation,
    scaling: Normalization,
    edit: impl FnOnce(&mut Layers),
) {
    let mut e = Experiment::preset("baseline").unwrap();
    e.activation = activation;
    if scaling != Normalization::None {
        e.normalize = Normalize::Standard;
    }
    let mut layers = binclass::model::initial_values(&e, 0);
    edit(&mut layers);
    trained(&e, 0, 1, &scaling, layers).save(path).unwrap();
}

/// [`crafted_with`] the baseline's tanh.
fn crafted(path: &Path, scaling: Normalization, edit: impl FnOnce(&mut Layers)) {
    crafted_with(path, Activation::Tanh, scaling, edit);
}

/// `predict` of `input` to `o.csv` and `evaluate` of `labelled` (label
/// column `y`) with `model`: both refused in one line with each of `says`.
fn both_refuse(d: &Path, model: &str, input: &str, labelled: &str, says: &[&str]) {
    let predict = [
        "predict", "--model", model, "--input", input, "--out", "o.csv",
    ];
    refused(d, &predict, says, "o.csv");
    let evaluate = [
        "evaluate",
        "--model",
        model,
        "--input",
        labelled,
        "--label-column",
        "y",
    ];
    refused(d, &evaluate, says, "o.csv");
}

#[test]
fn a_value_float32_cannot_hold_once_scaled_is_refused_naming_its_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    crafted(&d.join("raw.safetensors"), Normalization::None, |_| {});
    // The network sees values after the stored scaling: a deviation of 1e10
    // brings 1e39 within float32, one of 1e-10 takes 1e30 out of it.
    let sd = |s: f64| Normalization::Standard {
        mean: vec![0.0, 0.0],
        sd: vec![1.0, s],
    };
    crafted(&d.join("wide.safetensors"), sd(1e10), |_| {});
    crafted(&d.join("narrow.safetensors"), sd(1e-10), |_| {});
    std::fs::write(d.join("big.csv"), "0.1,0.2\n0.3,1e39\n").unwrap();
    std::fs::write(d.join("big-y.csv"), "a,b,y\n0.3,1e39,0\n").unwrap();
    std::fs::write(d.join("mid.csv"), "0.1,0.2\n0.3,1e30\n").unwrap();
    std::fs::write(d.join("mid-y.csv"), "y,a,b\n1,0.1,0.2\n0,0.3,1e30\n").unwrap();
    let says = ["line 2, column 2: '1e39' is beyond float32's range"];
    both_refuse(d, "raw.safetensors", "big.csv", "big-y.csv", &says);
    let says = [
        "line 3, column 3: '1e30' (1e+40 once scaled by the model's normalisation) is beyond float32's range",
    ];
    refused(
        d,
        &[
            "evaluate",
            "--model",
            "narrow.safetensors",
            "--input",
            "mid-y.csv",
            "--label-column",
            "y",
        ],
        &says,
        "o.csv",
    );
    let out = ok(
        d,
        &[
            "predict",
            "--model",
            "wide.safetensors",
            "--input",
            "big.csv",
        ],
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(!text.contains("nan"), "{text}");
    ok(
        d,
        &[
            "predict",
            "--model",
            "raw.safetensors",
            "--input",
            "mid.csv",
        ],
    );
}

#[test]
fn a_point_whose_output_overflows_inside_the_network_is_refused_not_predicted_nan() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // Weights of 1e30 make a point of 1e9s (well within float32) +inf in
    // every first-layer unit, which relu passes on, and a zero weight
    // after it makes 0 × inf: NaN.
    crafted_with(
        &d.join("m.safetensors"),
        Activation::Relu,
        Normalization::None,
        |l| {
            l[0].0 = vec![1e30; 6];
            l[1].0[0] = 0.0;
        },
    );
    std::fs::write(d.join("p.csv"), "x0,x1\r\n0,0\r\n1e9,1e9\r\n").unwrap();
    std::fs::write(d.join("p-y.csv"), "x0,x1,y\r\n0,0,1\r\n1e9,1e9,1\r\n").unwrap();
    let says = ["line 3: the model's output for this point is NaN"];
    both_refuse(d, "m.safetensors", "p.csv", "p-y.csv", &says);
}

#[test]
fn a_first_row_mixing_numbers_and_non_numbers_is_refused_not_taken_for_a_header() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    crafted(&d.join("m.safetensors"), Normalization::None, |_| {});
    std::fs::write(d.join("typo.csv"), "0.1,0.2x\n0.3,0.4\n").unwrap();
    std::fs::write(d.join("typo-y.csv"), "0.1,0.2,y\n0.3,0.4,1\n").unwrap();
    let says = ["typo.csv: line 1, column 2: '0.2x' is not a number, and the row is not a header"];
    refused(
        d,
        &[
            "predict",
            "--model",
            "m.safetensors",
            "--input",
            "typo.csv",
            "--out",
            "o.csv",
        ],
        &says,
        "o.csv",
    );
    let says = ["typo-y.csv: line 1, column 3: 'y' is not a number, and the row is not a header"];
    refused(
        d,
        &[
            "evaluate",
            "--model",
            "m.safetensors",
            "--input",
            "typo-y.csv",
            "--label-column",
            "y",
        ],
        &says,
        "o.csv",
    );
    // Names throughout are a header, numbers throughout a point.
    for (text, rows) in [("a,b\n0.3,0.4\n", 1), ("0.1,0.2\n0.3,0.4\n", 2)] {
        std::fs::write(d.join("p.csv"), text).unwrap();
        let out = ok(
            d,
            &["predict", "--model", "m.safetensors", "--input", "p.csv"],
        );
        assert_eq!(
            out.stdout.iter().filter(|b| **b == b'\n').count(),
            1 + rows,
            "{text}"
        );
    }
}

#[test]
fn csv_errors_name_the_editors_line_in_crlf_files_and_after_blank_lines() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    crafted(&d.join("m.safetensors"), Normalization::None, |_| {});
    for (name, text, says) in [
        (
            "crlf.csv",
            "x0,x1\r\n0.1,0.2\r\n0.3,0.4\r\n0.5,0.6\r\n0.7,abc\r\n",
            "line 5, column 2: 'abc'",
        ),
        (
            "blank.csv",
            "x0,x1\n0.1,0.2\n\n\n0.7,abc\n",
            "line 5, column 2: 'abc'",
        ),
        (
            "both.csv",
            "\r\nx0,x1\r\n\r\n0.1,0.2\r\n\r\n0.3,0.4,0.5\r\n",
            "line 6: 3 columns",
        ),
        (
            "quoted.csv",
            "\"x\n0\",x1\n\n0.1,0.2\n0.3,nan\n",
            "line 5, column 2: 'nan' is not finite",
        ),
        (
            "utf8.csv",
            "x0,x1\r\n\r\n0.1,\u{ff}\r\n0.1,0.2\r\n",
            "line 3, column 2: '\u{ff}'",
        ),
    ] {
        std::fs::write(d.join(name), text).unwrap();
        let args = [
            "predict",
            "--model",
            "m.safetensors",
            "--input",
            name,
            "--out",
            "o.csv",
        ];
        refused(d, &args, &[name, says], "o.csv");
    }
    std::fs::write(d.join("bytes.csv"), b"x0,x1\r\n\r\n0.1,\xff\r\n").unwrap();
    let args = [
        "predict",
        "--model",
        "m.safetensors",
        "--input",
        "bytes.csv",
    ];
    refused(
        d,
        &args,
        &["bytes.csv: line 3, column 2: not UTF-8 text"],
        "o.csv",
    );
    // And a CRLF file with blank lines reads whole, its fields passed through.
    std::fs::write(d.join("ok.csv"), "x0,x1\r\n\r\n0.1,0.2\r\n\r\n0.3,0.4\r\n").unwrap();
    let out = ok(
        d,
        &["predict", "--model", "m.safetensors", "--input", "ok.csv"],
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let rows: Vec<&str> = text.lines().collect();
    assert_eq!(rows.len(), 3, "{text}");
    assert!(
        rows[1].starts_with("0.1,0.2,") && rows[2].starts_with("0.3,0.4,"),
        "{text}"
    );
}

#[test]
fn a_model_with_nan_or_infinite_weights_is_refused_in_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    crafted(&d.join("nan.safetensors"), Normalization::None, |l| {
        l[1].0[4] = f32::NAN
    });
    crafted(&d.join("inf.safetensors"), Normalization::None, |l| {
        l[3].1[0] = f32::NEG_INFINITY
    });
    std::fs::write(d.join("p.csv"), "0.1,0.2\n").unwrap();
    std::fs::write(d.join("p-y.csv"), "a,b,y\n0.1,0.2,1\n").unwrap();
    for (model, says) in [
        ("nan.safetensors", "tensor `2.weight` holds NaN"),
        ("inf.safetensors", "tensor `6.bias` holds -inf"),
    ] {
        both_refuse(d, model, "p.csv", "p-y.csv", &[model, says]);
        refused(d, &["evaluate", "--model", model], &[model, says], "o.csv");
    }
}

/// To stdout, a bad row after the first chunk stops the stream exactly
/// there: every point before it is written, the chunk it falls in
/// included, then the error naming its line.
#[test]
fn predict_to_stdout_writes_every_point_before_a_bad_row_further_on() {
    let dir = tempfile::tempdir().unwrap();
    run(
        dir.path(),
        with(SMALL, &["--epochs", "1", "--out", "r.csv"]),
    );
    let good = 100_000;
    let mut input = String::new();
    for i in 0..good {
        input += &format!("{},{}\n", (i % 100) as f64 / 100.0, (i % 37) as f64 / 37.0);
    }
    input += "0.5,oops\n0.1,0.2\n";
    std::fs::write(dir.path().join("p.csv"), input).unwrap();
    let out = binclass(
        dir.path(),
        &["predict", "--model", "r.safetensors", "--input", "p.csv"],
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(
        err.contains(&format!(
            "p.csv: line {}, column 2: 'oops' is not a number",
            good + 1
        )),
        "{err}"
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(
        text.lines().count(),
        good + 1,
        "the header and every good point"
    );
    assert!(text.ends_with('\n'));
}

/// `--overwrite` replaces an earlier output, never an input: `--out` naming
/// the points or the model, under any name, is refused and both are kept.
#[test]
fn predict_never_writes_over_its_own_inputs() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    run(d, with(SMALL, &["--epochs", "1", "--out", "r.csv"]));
    std::fs::write(d.join("p.csv"), "0.1,0.2\n0.3,0.1\n").unwrap();
    std::os::unix::fs::symlink("p.csv", d.join("link.csv")).unwrap();
    let model = std::fs::read(d.join("r.safetensors")).unwrap();
    for (out, says) in [
        ("./p.csv", "--out ./p.csv is the points p.csv"),
        ("link.csv", "--out link.csv is the points p.csv"),
        (
            "r.safetensors",
            "--out r.safetensors is the model r.safetensors",
        ),
    ] {
        let args = [
            "predict",
            "--model",
            "r.safetensors",
            "--input",
            "p.csv",
            "--out",
            out,
            "--overwrite",
        ];
        refused(
            d,
            &args,
            &[says, "an input is never overwritten"],
            "none.csv",
        );
    }
    assert_eq!(
        std::fs::read_to_string(d.join("p.csv")).unwrap(),
        "0.1,0.2\n0.3,0.1\n"
    );
    assert_eq!(std::fs::read(d.join("r.safetensors")).unwrap(), model);
}
