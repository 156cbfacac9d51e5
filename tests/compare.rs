//! `binclass compare` on small hand-made CSVs with known answers.

use std::path::Path;
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_binclass");
const HEADER: &str = "epoch,binary_accuracy,loss,val_binary_accuracy,val_loss\n";

fn binclass(dir: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap()
}

/// A CSV whose validation accuracy is `vals`, epoch by epoch.
fn write_curve(path: &Path, vals: &[f64]) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let mut text = HEADER.to_string();
    for (e, v) in vals.iter().enumerate() {
        text += &format!("{e},{v},0.1,{v},0.1\n");
    }
    std::fs::write(path, text).unwrap();
}

/// Ten Keras seeds of `preset` around `level`, and ten of ours at `ours`.
fn setup(dir: &Path, preset: &str, level: f64, ours: f64) {
    for s in 0..10 {
        let jitter = s as f64 * 0.001;
        write_curve(
            &dir.join(format!("ref/{preset}/seed-{s}.csv")),
            &[level - 0.05, level + jitter, level + jitter],
        );
        write_curve(
            &dir.join(format!("ours/{preset}-seed{s}.csv")),
            &[ours - 0.05, ours + jitter, ours + jitter],
        );
    }
}

#[test]
fn matching_runs_are_consistent_and_shifted_runs_differ() {
    let dir = tempfile::tempdir().unwrap();
    setup(dir.path(), "baseline", 0.98, 0.9805);
    setup(dir.path(), "noise", 0.80, 0.70);
    let out = binclass(dir.path(), &["compare", "ours", "--reference", "ref"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = |p: &str| {
        text.lines()
            .find(|l| l.starts_with(p))
            .unwrap_or_else(|| panic!("{p}: {text}"))
    };
    assert!(line("baseline ").ends_with("consistent"), "{text}");
    assert!(line("noise ").ends_with("differs"), "{text}");
    assert!(
        line("noise ").contains("-0.1000"),
        "mean difference: {text}"
    );
    // The article's statements, on Keras's runs and ours.
    assert!(text.contains("falls by about the noise"), "{text}");

    let strict = binclass(
        dir.path(),
        &["compare", "ours", "--reference", "ref", "--strict"],
    );
    assert!(!strict.status.success());
    assert!(String::from_utf8_lossy(&strict.stderr).contains("noise differ"));

    let md = binclass(
        dir.path(),
        &[
            "compare",
            "ours",
            "--reference",
            "ref",
            "--format",
            "markdown",
        ],
    );
    assert!(String::from_utf8_lossy(&md.stdout).contains("| baseline | 10/10 |"));
    let csv = binclass(
        dir.path(),
        &["compare", "ours", "--reference", "ref", "--format", "csv"],
    );
    let csv = String::from_utf8_lossy(&csv.stdout);
    assert!(
        csv.starts_with("preset,") && csv.lines().count() == 3,
        "{csv}"
    );
}

#[test]
fn keras_csvlogger_files_and_ours_are_both_read() {
    let dir = tempfile::tempdir().unwrap();
    // Keras's own CSVLogger output, as written by tf-keras 2.21.
    let keras = "epoch,binary_accuracy,loss,val_binary_accuracy,val_loss\n\
                 0,0.9476249814033508,0.11112306267023087,0.9890000224113464,0.028887132182717323\n\
                 1,0.9806249737739563,0.04572344943881035,0.9925000071525574,0.019265757873654366\n";
    for s in 0..3 {
        std::fs::create_dir_all(dir.path().join("ref/baseline")).unwrap();
        std::fs::write(dir.path().join(format!("ref/baseline/seed-{s}.csv")), keras).unwrap();
    }
    // Ours from binclass itself: with its .json record, the --epochs override
    // is refused (Keras ran the preset as it is) ...
    for seed in ["0", "1"] {
        let out = format!("mine/baseline-seed{seed}.csv");
        let args = [
            "train",
            "--epochs",
            "2",
            "--verbose",
            "0",
            "--seed",
            seed,
            "--out",
            &out,
        ];
        assert!(binclass(dir.path(), &args).status.success());
    }
    let out = binclass(dir.path(), &["compare", "mine", "--reference", "ref"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("trained with epochs changed from the 'baseline' preset")
    );
    // ... and without it, the preset comes from the file name.
    for seed in ["0", "1"] {
        std::fs::remove_file(
            dir.path()
                .join(format!("mine/baseline-seed{seed}.csv.json")),
        )
        .unwrap();
    }
    let out = binclass(dir.path(), &["compare", "mine", "--reference", "ref"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("baseline  2/3"));
}

#[test]
fn malformed_or_mismatched_input_is_rejected_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    setup(dir.path(), "baseline", 0.98, 0.98);
    let bad: &[(&str, &str, &str)] = &[
        ("empty.csv", "", "empty file"),
        ("headonly.csv", HEADER, "no epochs"),
        (
            "nocol.csv",
            "epoch,loss\n0,0.1\n",
            "no `binary_accuracy` column",
        ),
        (
            "text.csv",
            &format!("{HEADER}0,abc,0.1,0.9,0.1\n"),
            "'abc' is not a number",
        ),
        (
            "gap.csv",
            &format!("{HEADER}0,0.9,0.1,0.9,0.1\n2,0.9,0.1,0.9,0.1\n"),
            "has epoch 2, expected 1",
        ),
    ];
    for (name, text, expected) in bad {
        let p = dir
            .path()
            .join("bad")
            .join(format!("baseline-seed0-{name}"));
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, text).unwrap();
        let out = binclass(
            dir.path(),
            &["compare", p.to_str().unwrap(), "--reference", "ref"],
        );
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{name}");
        assert_eq!(err.trim().lines().count(), 1, "{err}");
        assert!(err.contains(expected), "{name}: {err}");
    }
    let out = binclass(dir.path(), &["compare", "missing", "--reference", "ref"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("missing: no such file or folder"));
    // Runs of other lengths than Keras's, or a single seed, are refused.
    write_curve(
        &dir.path().join("long/baseline-seed0.csv"),
        &[0.9, 0.9, 0.9, 0.9],
    );
    write_curve(
        &dir.path().join("long/baseline-seed1.csv"),
        &[0.9, 0.9, 0.9, 0.9],
    );
    let out = binclass(dir.path(), &["compare", "long", "--reference", "ref"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("compare runs of the same length"));
    let out = binclass(
        dir.path(),
        &["compare", "long/baseline-seed0.csv", "--reference", "ref"],
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("at least 2 seeds on each side"));
    write_curve(&dir.path().join("other/shifted-seed0.csv"), &[0.5, 0.5]);
    let out = binclass(dir.path(), &["compare", "other", "--reference", "ref"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("preset 'shifted' has no Keras runs"));
}
