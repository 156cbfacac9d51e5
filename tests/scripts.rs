//! The Python scripts that open binclass's files (scripts/predict_torch.py,
//! scripts/keras_reference.py --predict) read points as `binclass predict`
//! reads them: the same rows refused, in the same words. Like every binclass
//! command they refuse an existing output without `--overwrite`, never write
//! over their own inputs, and write atomically; and keras_reference.py says
//! in one line what is wrong (a seed range, a missing tf-keras) in every mode.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use binclass::config::{Experiment, Normalize};
use binclass::data::Normalization;
use binclass::model_file::trained;

mod common;
use common::{binclass, project_python, project_python_with};

fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("scripts")
        .join(name)
}

/// `python scripts/<name> args…` in `d`.
fn python(py: &Path, d: &Path, name: &str, args: &[&str]) -> Output {
    Command::new(py)
        .arg(script(name))
        .args(args)
        .current_dir(d)
        .env("TF_CPP_MIN_LOG_LEVEL", "2")
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .output()
        .unwrap()
}

/// The message of a one-line failure `prefix: message` (exit status 1 for
/// the scripts, `error: ` for binclass), asserting its shape.
fn refusal(out: &Output, prefix: &str, what: &str) -> String {
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "{what}: succeeded\n{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{what}: {err}");
    assert!(!err.contains("Traceback"), "{what}: {err}");
    assert!(!err.contains("internal error"), "{what}: {err}");
    err.trim_end()
        .strip_prefix(prefix)
        .unwrap_or_else(|| panic!("{what}: {err} does not start with {prefix}"))
        .to_string()
}

/// The script's one-line refusal (exit status 1), without `name: `.
fn script_refusal(out: &Output, name: &str, what: &str) -> String {
    let msg = refusal(out, &format!("{}: ", name.trim_end_matches(".py")), what);
    assert_eq!(out.status.code(), Some(1), "{what}: {msg}");
    msg
}

/// `binclass predict --model model --input points`'s one-line refusal.
fn binclass_refusal(d: &Path, model: &str, points: &str) -> String {
    let out = binclass(d, &["predict", "--model", model, "--input", points]);
    refusal(
        &out,
        "error: ",
        &format!("binclass predict {model} {points}"),
    )
}

/// Writes the baseline network, untrained, to `d/name`, scaled by `scaling`,
/// its weights as `edit` leaves them.
fn write_model(
    d: &Path,
    name: &str,
    scaling: Normalization,
    edit: impl FnOnce(&mut [(Vec<f32>, Vec<f32>)]),
) {
    let mut e = Experiment::preset("baseline").unwrap();
    if scaling != Normalization::None {
        e.normalize = Normalize::Standard;
    }
    let mut layers = binclass::model::initial_values(&e, 0);
    edit(&mut layers);
    let bytes = trained(&e, 0, 1, &scaling, layers).to_bytes().unwrap();
    std::fs::write(d.join(name), bytes).unwrap();
}

/// Point files `binclass predict` refuses for the baseline's 2 features,
/// each for one reason a reader may get wrong.
const BAD_POINTS: [(&str, &[u8]); 24] = [
    // A UTF-8 byte-order mark is not part of the first field.
    ("bom.csv", b"\xef\xbb\xbf0.1,0.2\n0.3,abc\n"),
    // A line of spaces is a row of one field, not a blank line.
    ("spaces.csv", b"0.1,0.2\n \t \n0.3,0.4\n"),
    // Not UTF-8: the line and column of the field.
    ("latin1.csv", b"0.1,0.2\n0.3,\xff\n"),
    ("latin1-header.csv", b"x\xff,y\n0.1,0.2\n"),
    // Not finite, or beyond float32: the field as written.
    ("nan.csv", b"0.1,0.2\nNaN,0.2\n"),
    ("inf.csv", b"0.1,0.2\n0.3,inf\n"),
    ("infinity.csv", b"0.1,0.2\n0.3,+INFINITY\n"),
    ("huge.csv", b"0.1,0.2\n0.3,1e400\n"),
    ("big.csv", b"0.1,0.2\n0.3,1e39\n"),
    ("minus-big.csv", b"0.1,0.2\n-3.4028236e38,0.3\n"),
    // Blank lines are skipped and counted.
    ("blank.csv", b"\n\n0.1,0.2\n\n0.3,0.4\n\n0.5,x\n"),
    ("crlf.csv", b"x0,x1\r\n\r\n0.1,0.2\r\n0.3,abc\r\n"),
    // A lone CR ends a record, not a line.
    ("cr.csv", b"0.1,0.2\r0.3,x\n"),
    // A quoted line break: the record's first line.
    ("quoted.csv", b"0.1,0.2\n\"0.3\n\",abc\n"),
    // A quote left open at the end: on the line it opens, never line 0.
    ("open-quote.csv", b"\"\n"),
    ("open-quote-later.csv", b"0.1,0.2\n0.3,\"\n"),
    // Numbers as Rust reads them: ASCII, no `_`, trimmed of Unicode's spaces only.
    ("underscore.csv", b"0.1,0.2\n0.3,1_0\n"),
    ("arabic.csv", "0.1,0.2\n0.3,\u{661}\n".as_bytes()),
    ("separator.csv", b"0.1,0.2\n\x1c0.5,0.2\n"),
    // The first error in file order; in a row, its width first.
    ("big-then-text.csv", b"0.1,0.2\n0.3,1e39\n0.3,abc\n"),
    ("wide-text.csv", b"0.1,0.2\nabc,0.2,0.3\n"),
    ("mixed-first.csv", b"0.1,0.2x\n0.3,0.4\n"),
    // No points.
    ("empty.csv", b"\n\r\n\n"),
    ("header-only.csv", b"x0,x1\r\n\r\n"),
];

/// What the Keras script is checked on: the issue's cases (its reader is
/// the one predict_torch.py uses, checked on every case).
const KERAS_BAD: [&str; 9] = [
    "bom.csv",
    "spaces.csv",
    "latin1.csv",
    "nan.csv",
    "inf.csv",
    "big.csv",
    "blank.csv",
    "underscore.csv",
    "scaled.csv",
];

/// A point file `binclass predict` reads: a byte-order mark, blank lines,
/// spaces (Unicode's too) around numbers, quoted fields, a line break in
/// one, a value near float32's largest, an unterminated quote at the end.
const GOOD_POINTS: &[u8] =
    b"\xef\xbb\xbf0.1,0.2\n\n 0.3 ,\xc2\xa00.4\n\r\n+.5,1.\n\"0.1\",0.2\r\n0.3,\"0.4\n\"\r\n0.5,3e38\n0.6,\"0.7";

/// Writes every file of `cases` into `d`.
fn write_all(d: &Path, cases: &[(&str, &[u8])]) {
    for (name, bytes) in cases {
        std::fs::write(d.join(name), bytes).unwrap();
    }
}

/// A folder with the baseline model `m.safetensors`, one standardised by a
/// tiny deviation (`tiny-sd.safetensors`, so that a raw 1.0 is past float32
/// once scaled), every file of BAD_POINTS and GOOD_POINTS (`good.csv`).
fn points_folder() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write_model(d, "m.safetensors", Normalization::None, |_| {});
    let tiny = Normalization::Standard {
        mean: vec![0.5, 0.5],
        sd: vec![1e-39, 0.3],
    };
    write_model(d, "tiny-sd.safetensors", tiny, |_| {});
    write_all(d, &BAD_POINTS);
    std::fs::write(d.join("good.csv"), GOOD_POINTS).unwrap();
    std::fs::write(d.join("scaled.csv"), "0.1,0.2\n1.0,0.2\n0.3,abc\n").unwrap();
    std::fs::create_dir(d.join("folder.csv")).unwrap();
    dir
}

/// The model for each points file: the baseline's, but for `scaled.csv`.
fn model_for(points: &str) -> &'static str {
    if points == "scaled.csv" {
        "tiny-sd.safetensors"
    } else {
        "m.safetensors"
    }
}

/// `binclass predict`'s refusal of each bad points file (BAD_POINTS, then
/// `scaled.csv`, a missing file and a folder), read once for every test.
fn binclass_refusals() -> &'static [(String, String)] {
    static REFUSALS: std::sync::OnceLock<Vec<(String, String)>> = std::sync::OnceLock::new();
    REFUSALS.get_or_init(|| {
        let dir = points_folder();
        let names = BAD_POINTS.iter().map(|(name, _)| *name);
        names
            .chain(["scaled.csv", "missing.csv", "folder.csv"])
            .map(|p| (p.to_string(), binclass_refusal(dir.path(), model_for(p), p)))
            .collect()
    })
}

/// `binclass predict`'s probabilities for `points` (its last-but-one column).
fn binclass_probabilities(d: &Path, model: &str, points: &str) -> Vec<f64> {
    let out = binclass(d, &["predict", "--model", model, "--input", points]);
    assert!(
        out.status.success(),
        "{points}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let mut r = csv::ReaderBuilder::new().from_reader(text.as_bytes());
    r.records()
        .map(|row| {
            let row = row.unwrap();
            row[row.len() - 2].parse().unwrap()
        })
        .collect()
}

/// A script's `probability` column, written to stdout.
fn script_probabilities(out: &Output, what: &str) -> Vec<f64> {
    assert!(
        out.status.success(),
        "{what}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout.clone()).unwrap();
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("probability"), "{what}");
    lines.map(|l| l.parse().unwrap()).collect()
}

fn assert_close(ours: &[f64], theirs: &[f64], what: &str) {
    assert!(!ours.is_empty(), "{what}");
    assert_eq!(ours.len(), theirs.len(), "{what}: {ours:?} {theirs:?}");
    for (a, b) in ours.iter().zip(theirs) {
        assert!((a - b).abs() <= 1e-6, "{what}: {ours:?} {theirs:?}");
    }
}

#[test]
fn predict_torch_refuses_the_rows_binclass_refuses_with_the_same_message() {
    let Some(py) = project_python_with("safetensors.torch", "--cuda") else {
        return;
    };
    let dir = points_folder();
    let d = dir.path();
    for (points, ours) in binclass_refusals() {
        let out = python(&py, d, "predict_torch.py", &[model_for(points), points]);
        let theirs = script_refusal(&out, "predict_torch.py", points);
        assert_eq!(&theirs, ours, "{points}");
    }
    let ours = binclass_probabilities(d, "m.safetensors", "good.csv");
    assert_eq!(ours.len(), 7);
    let out = python(&py, d, "predict_torch.py", &["m.safetensors", "good.csv"]);
    assert_close(&ours, &script_probabilities(&out, "good.csv"), "good.csv");
}

/// Whether the project's python imports tf_keras (`setup.sh --keras`).
fn has_keras(py: &Path) -> bool {
    Command::new(py)
        .args(["-c", "import tf_keras"])
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

#[test]
fn keras_reference_predict_refuses_the_rows_and_models_binclass_refuses() {
    let Some(py) = project_python("safetensors") else {
        return;
    };
    let dir = points_folder();
    let d = dir.path();
    for (points, ours) in binclass_refusals() {
        if !KERAS_BAD.contains(&points.as_str()) {
            continue;
        }
        let args = ["--predict", model_for(points), points];
        let out = python(&py, d, "keras_reference.py", &args);
        let theirs = script_refusal(&out, "keras_reference.py", points);
        assert_eq!(&theirs, ours, "{points}");
    }
    write_model(d, "nan-weight.safetensors", Normalization::None, |l| {
        l[0].0[1] = f32::NAN
    });
    write_model(d, "inf-bias.safetensors", Normalization::None, |l| {
        l[2].1[0] = f32::INFINITY
    });
    let v2 = {
        let bytes = std::fs::read(d.join("m.safetensors")).unwrap();
        let (_, header) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
        let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
        let mut meta = header.metadata().clone().unwrap();
        meta.insert("format_version".into(), "2".into());
        safetensors::serialize(st.tensors(), Some(meta)).unwrap()
    };
    std::fs::write(d.join("v2.safetensors"), v2).unwrap();
    for (model, says) in [
        ("nan-weight.safetensors", "tensor `0.weight` holds NaN"),
        ("inf-bias.safetensors", "tensor `4.bias` holds inf"),
        ("v2.safetensors", "format version 2"),
    ] {
        let ours = binclass_refusal(d, model, "good.csv");
        assert!(ours.contains(says), "{ours}");
        let out = python(
            &py,
            d,
            "keras_reference.py",
            &["--predict", model, "good.csv"],
        );
        let theirs = script_refusal(&out, "keras_reference.py", model);
        assert!(theirs.contains(model) && theirs.contains(says), "{theirs}");
    }
    if !has_keras(&py) {
        eprintln!(
            "skipped: Keras's probabilities for readable points (tf_keras is not installed: scripts/setup.sh --keras)"
        );
        return;
    }
    let ours = binclass_probabilities(d, "m.safetensors", "good.csv");
    let args = ["--predict", "m.safetensors", "good.csv"];
    let out = python(&py, d, "keras_reference.py", &args);
    assert_close(&ours, &script_probabilities(&out, "good.csv"), "good.csv");
}

#[test]
fn keras_reference_without_tf_keras_names_the_fix_in_one_line_in_every_mode() {
    let Some(py) = project_python("safetensors") else {
        return;
    };
    if has_keras(&py) {
        eprintln!("skipped: tf_keras is installed, so no mode can lack it");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write_model(d, "m.safetensors", Normalization::None, |_| {});
    std::fs::write(d.join("p.csv"), "x0,x1\n0.1,0.2\n").unwrap();
    let before = common::files_in(d);
    let modes: [&[&str]; 6] = [
        // The README's example.
        &[
            "--preset",
            "baseline",
            "--seed",
            "0",
            "--tensorboard",
            "tb/keras",
        ],
        &["--seed", "0", "--verbose", "0", "--out", "k.csv"],
        &["--preset", "scaled", "--seeds", "0..2", "--out-dir", "ref"],
        &["--seeds", "0..=2", "--shard", "1/2", "--out-dir", "ref"],
        &["--seed", "0", "--dump", "dump"],
        &["--predict", "m.safetensors", "p.csv", "--out", "o.csv"],
    ];
    for args in modes {
        let out = python(&py, d, "keras_reference.py", args);
        let msg = script_refusal(&out, "keras_reference.py", &format!("{args:?}"));
        assert!(
            msg.ends_with("is not installed: run scripts/setup.sh --keras"),
            "{args:?}: {msg}"
        );
        assert_eq!(common::files_in(d), before, "{args:?} wrote files");
    }
}

#[test]
fn keras_reference_refuses_an_empty_or_malformed_seed_range_in_binclass_words() {
    let Some(py) = project_python("safetensors") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for seeds in [
        "3..1", "3..3", "3..=1", "abc", "-1..2", "1..x", "..3", "1.5",
    ] {
        let flag = format!("--seeds={seeds}");
        let out = binclass(d, &["sweep", &flag, "--out-dir", "sw"]);
        let ours = refusal(&out, "error: ", seeds);
        let out = python(&py, d, "keras_reference.py", &[&flag]);
        let theirs = script_refusal(&out, "keras_reference.py", seeds);
        assert_eq!(theirs, ours, "--seeds {seeds}");
    }
    // `N` counts seeds from 0: none is an empty range too.
    let out = python(&py, d, "keras_reference.py", &["--seeds", "0"]);
    let msg = script_refusal(&out, "keras_reference.py", "--seeds 0");
    assert!(msg.starts_with("--seeds 0 is empty"), "{msg}");
    assert!(common::files_in(d).is_empty(), "{:?}", common::files_in(d));
}

/// The bytes of every file in `d`, by name.
fn contents(d: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    common::files_in(d)
        .into_iter()
        .filter(|p| p.is_file())
        .map(|p| {
            let bytes = std::fs::read(&p).unwrap();
            (p, bytes)
        })
        .collect()
}

/// A folder with `m.safetensors`, 500 points `p.csv` (over 1 KiB of
/// probabilities), an old output `o.csv`, a link `link.csv` to the points
/// and a folder `dd`.
fn outputs_folder() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write_model(d, "m.safetensors", Normalization::None, |_| {});
    let mut points = String::from("x0,x1\n");
    for i in 0..500 {
        points += &format!("{},{}\n", (i % 7) as f64 / 7.0, (i % 11) as f64 / 11.0);
    }
    std::fs::write(d.join("p.csv"), points).unwrap();
    std::fs::write(d.join("o.csv"), "old\n").unwrap();
    std::os::unix::fs::symlink("p.csv", d.join("link.csv")).unwrap();
    std::fs::create_dir(d.join("dd")).unwrap();
    dir
}

/// `args` (a script's run on m.safetensors and p.csv) are refused, each
/// in `says`'s words, and leave every file as it was.
fn outputs_refused(py: &Path, d: &Path, name: &str, cases: &[(Vec<&str>, String)]) {
    let before = contents(d);
    for (args, says) in cases {
        let out = python(py, d, name, args);
        let msg = script_refusal(&out, name, &format!("{args:?}"));
        assert_eq!(&msg, says, "{name} {args:?}");
        assert!(contents(d) == before, "{name} {args:?} changed a file");
    }
}

/// The refusals every script's `--out` gives, for `run` (the script's
/// arguments before `--out`) in [`outputs_folder`].
fn out_refusals<'a>(run: &[&'a str]) -> Vec<(Vec<&'a str>, String)> {
    let with = |more: &[&'a str]| [run, more].concat();
    let input = |out: &str, what: &str| {
        format!("--out {out} is {what}: an input is never overwritten; choose another output")
    };
    vec![
        (
            with(&["--out", "o.csv"]),
            "o.csv already exists; pass --overwrite to replace it, or choose another output".into(),
        ),
        (
            with(&["--out", "p.csv", "--overwrite"]),
            input("p.csv", "the points p.csv"),
        ),
        (
            with(&["--out", "./p.csv", "--overwrite"]),
            input("./p.csv", "the points p.csv"),
        ),
        (
            with(&["--out", "link.csv", "--overwrite"]),
            input("link.csv", "the points p.csv"),
        ),
        (
            with(&["--out", "m.safetensors", "--overwrite"]),
            input("m.safetensors", "the model m.safetensors"),
        ),
        (
            with(&["--out", "dd", "--overwrite"]),
            "--out dd is a folder; give a file path".into(),
        ),
        (
            with(&["--out", "o.csv/x.csv", "--overwrite"]),
            "--out o.csv/x.csv: cannot create folder o.csv: it is a file".into(),
        ),
    ]
}

#[test]
fn predict_torch_refuses_an_existing_out_without_overwrite_and_its_inputs_always() {
    let Some(py) = project_python("safetensors") else {
        return;
    };
    let dir = outputs_folder();
    let cases = out_refusals(&["m.safetensors", "p.csv"]);
    outputs_refused(&py, dir.path(), "predict_torch.py", &cases);
}

#[test]
fn predict_torch_replaces_out_atomically_with_overwrite() {
    let Some(py) = project_python_with("safetensors.torch", "--cuda") else {
        return;
    };
    let dir = outputs_folder();
    let d = dir.path();
    // A write cut short (files limited to 1 KiB) leaves the old file whole,
    // and no temporary beside it.
    let before = contents(d);
    let out = Command::new("bash")
        .arg("-c")
        .arg(r#"ulimit -f 1 && exec "$0" "$@""#)
        .arg(&py)
        .arg(script("predict_torch.py"))
        .args(["m.safetensors", "p.csv", "--out", "o.csv", "--overwrite"])
        .current_dir(d)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .output()
        .unwrap();
    let msg = script_refusal(&out, "predict_torch.py", "ulimit -f 1");
    assert!(msg.starts_with("cannot write o.csv: "), "{msg}");
    assert!(contents(d) == before, "a failed write changed a file");
    let out = python(
        &py,
        d,
        "predict_torch.py",
        &["m.safetensors", "p.csv", "--out", "o.csv", "--overwrite"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(d.join("o.csv")).unwrap();
    assert_eq!(text.lines().count(), 501, "{text}");
    assert!(text.starts_with("probability\n"), "{text}");
    let mut names: Vec<String> = std::fs::read_dir(d)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["dd", "link.csv", "m.safetensors", "o.csv", "p.csv"]);
}

#[test]
fn keras_reference_refuses_existing_outputs_and_its_inputs_before_needing_keras() {
    let Some(py) = project_python("safetensors") else {
        return;
    };
    let dir = outputs_folder();
    let d = dir.path();
    std::fs::write(d.join("dd/steps.csv"), "old\n").unwrap();
    let mut cases = out_refusals(&["--predict", "m.safetensors", "p.csv"]);
    cases.extend([
        (
            vec!["--seed", "0", "--epochs", "1", "--out", "o.csv"],
            "o.csv already exists; pass --overwrite to replace it, or choose another output".into(),
        ),
        (
            vec!["--seed", "0", "--epochs", "1", "--dump", "dd"],
            "dd/steps.csv already exists; pass --overwrite to replace it, or choose another output"
                .into(),
        ),
        (
            vec!["--seed", "0", "--epochs", "1", "--dump", "o.csv"],
            "--dump o.csv is a file; give a folder".into(),
        ),
    ]);
    outputs_refused(&py, d, "keras_reference.py", &cases);
    if has_keras(&py) {
        eprintln!(
            "skipped: runs with --overwrite (tf_keras is installed; tests/torch_loader.rs runs Keras)"
        );
        return;
    }
    // With --overwrite the same runs go on, as far as Keras.
    for args in [
        &["--predict", "m.safetensors", "p.csv", "--out", "o.csv"][..],
        &["--seed", "0", "--epochs", "1", "--out", "o.csv"],
        &["--seed", "0", "--epochs", "1", "--dump", "dd"],
    ] {
        let out = python(
            &py,
            d,
            "keras_reference.py",
            &[args, &["--overwrite"]].concat(),
        );
        let msg = script_refusal(&out, "keras_reference.py", &format!("{args:?}"));
        assert!(msg.ends_with("run scripts/setup.sh --keras"), "{msg}");
    }
}
