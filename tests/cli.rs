//! The `binclass` binary as a user runs it: files, formats, and refusals.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod common;
use common::{BIN, binclass, files_in, ok, rows, run, with};

/// Small and quick: 600 samples, 480 train in 16 steps of 30.
const SMALL: &[&str] = &["train", "--verbose", "0", "--samples", "600"];

#[test]
fn csv_has_the_keras_header_and_epochs_from_zero() {
    let dir = tempfile::tempdir().unwrap();
    run(
        dir.path(),
        with(SMALL, &["--epochs", "3", "--out", "m.csv"]),
    );
    let text = std::fs::read_to_string(dir.path().join("m.csv")).unwrap();
    let mut lines = text.lines();
    assert_eq!(
        lines.next(),
        Some("epoch,binary_accuracy,loss,val_binary_accuracy,val_loss")
    );
    let epochs: Vec<_> = lines
        .map(|l| l.split(',').next().unwrap().to_string())
        .collect();
    assert_eq!(epochs, ["0", "1", "2"]);
    for row in rows(&dir.path().join("m.csv")) {
        assert!((0.0..=1.0).contains(&row[1]) && (0.0..=1.0).contains(&row[3]));
        assert!(row[2] > 0.0 && row[4] > 0.0);
    }
}

#[test]
fn same_seed_gives_byte_identical_csvs_and_another_seed_does_not() {
    let dir = tempfile::tempdir().unwrap();
    for (seed, out) in [("5", "a.csv"), ("5", "b.csv"), ("6", "c.csv")] {
        run(
            dir.path(),
            with(SMALL, &["--epochs", "4", "--seed", seed, "--out", out]),
        );
    }
    let read = |f: &str| std::fs::read(dir.path().join(f)).unwrap();
    assert_eq!(read("a.csv"), read("b.csv"));
    assert_ne!(read("a.csv"), read("c.csv"));
}

#[test]
fn baseline_reaches_95_percent_validation_accuracy_within_5_epochs() {
    let dir = tempfile::tempdir().unwrap();
    ok(
        dir.path(),
        &["train", "--verbose", "0", "--epochs", "5", "--out", "b.csv"],
    );
    let best = rows(&dir.path().join("b.csv"))
        .iter()
        .map(|r| r[3])
        .fold(0.0, f64::max);
    assert!(best >= 0.95, "best val_binary_accuracy {best}");
}

#[test]
fn record_json_describes_the_run() {
    let dir = tempfile::tempdir().unwrap();
    run(
        dir.path(),
        with(SMALL, &["--epochs", "2", "--seed", "3", "--out", "r.csv"]),
    );
    let text = std::fs::read_to_string(dir.path().join("r.csv.json")).unwrap();
    let j: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(j["finished"], true);
    assert_eq!(j["seed"], 3);
    assert_eq!(j["device"], "cpu");
    assert_eq!(j["experiment"]["samples"], 600);
    assert_eq!(j["experiment"]["units"], 3);
    assert_eq!(j["epochs_completed"], 2);
    assert_eq!(j["epoch_seconds"].as_array().unwrap().len(), 2);
    assert!(
        j["versions"]["libtorch"]
            .as_str()
            .unwrap()
            .starts_with("2.11.0")
    );
    assert!(j["versions"]["tch"].as_str().unwrap().starts_with("0.24"));
    let last = rows(&dir.path().join("r.csv")).pop().unwrap();
    assert_eq!(
        j["final_metrics"]["val_binary_accuracy"].as_f64().unwrap(),
        last[3]
    );
}

#[test]
fn default_out_never_overwrites_a_previous_run() {
    let dir = tempfile::tempdir().unwrap();
    let args = with(SMALL, &["--epochs", "1", "-e", "noise", "--seed", "2"]);
    run(dir.path(), args.clone());
    let first = std::fs::read(dir.path().join("runs/noise-seed2.csv")).unwrap();
    run(dir.path(), args.clone());
    run(dir.path(), args);
    assert_eq!(
        std::fs::read(dir.path().join("runs/noise-seed2.csv")).unwrap(),
        first
    );
    for f in [
        "noise-seed2-1.csv",
        "noise-seed2-1.csv.json",
        "noise-seed2-2.csv",
    ] {
        assert!(dir.path().join("runs").join(f).exists(), "{f}");
    }
}

#[test]
fn overwrite_replaces_an_existing_out() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("o.csv"), "mine").unwrap();
    run(
        dir.path(),
        with(SMALL, &["--epochs", "1", "--out", "o.csv", "--overwrite"]),
    );
    assert_eq!(rows(&dir.path().join("o.csv")).len(), 1);
}

/// Each bad input: one line on stderr naming the problem, non-zero exit,
/// no panic, and nothing created or changed.
/// A folder name past Linux's 255-byte limit, and a file name whose record
/// and temporary names would pass it.
const LONG_FOLDER: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa/x.csv";
const LONG_NAME: &str = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb.csv";

#[test]
fn bad_input_is_one_clear_line_and_touches_nothing() {
    let cases: &[(&[&str], &str)] = &[
        (&["-e", "nope"], "unknown experiment 'nope'"),
        (&["--activation", "swish"], "'swish'"),
        (&["--init", "he"], "'he'"),
        (&["--normalize", "minmax"], "'minmax'"),
        (&["--device", "tpu"], "unknown device 'tpu'"),
        (
            &["--noise-rate", "1.5"],
            "--noise-rate must be in [0, 1], got 1.5",
        ),
        (&["--noise-rate", "-0.1"], "--noise-rate must be in [0, 1]"),
        (&["--split", "1"], "--split must be in (0, 1)"),
        (&["--split", "0"], "--split must be in (0, 1)"),
        (
            &["--features", "1"],
            "--features must be a whole number in 2..=10000, got 1",
        ),
        (
            &["--samples", "0"],
            "--samples must be a whole number in 1..=",
        ),
        (
            &["--samples", "-3"],
            "--samples must be a whole number in 1..=100000000, got -3",
        ),
        (
            &["--batch-size", "0"],
            "--batch-size must be a whole number in 1..=",
        ),
        (
            &["--epochs", "0"],
            "--epochs must be a whole number in 1..=",
        ),
        (&["--units", "0"], "--units must be a whole number in 1..="),
        (
            &["--units", "9000", "--hidden-layers", "3"],
            "parameters (at most 1e8)",
        ),
        (
            &["--samples", "100000000", "--features", "20"],
            "more than 1e9 values",
        ),
        (
            &["--batch-size", "9223372036854775807"],
            "--batch-size must be a whole number in",
        ),
        (&["--lr", "0"], "--lr must be in (0, 1e30]"),
        (&["--lr", "-0.03"], "--lr must be in (0, 1e30], got -0.03"),
        (
            &["--samples", "4", "--split", "0.1"],
            "leaves 0 training and 4 validation rows",
        ),
        (&["--samples", "1"], "leaves 0 training"),
        (&["--lr", "abc"], "invalid value 'abc' for '--lr"),
        (&["--epochs", "2.5"], "expected a whole number"),
        (&["--seed", "-1"], "invalid value '-1' for '--seed"),
        (&["--lr", "NaN"], "--lr must be a finite number, got NaN"),
        (
            &["--scale", "inf"],
            "--scale must be a finite number, got inf",
        ),
        (&["--shift", "-inf"], "--shift must be a finite number"),
        (
            &["--noise-rate", "nan"],
            "--noise-rate must be a finite number",
        ),
        (&["--threads", "0"], "--threads must be"),
        (&["--verbose", "3"], "'3'"),
        (&["--out", "blocker/x.csv"], "cannot create folder blocker"),
        (&["--out", "sub"], "is a folder"),
        (
            &["--out", "taken.csv"],
            "taken.csv already exists; pass --overwrite",
        ),
        (&["--out", "taken2.csv"], "taken2.csv.json already exists"),
        (&["--verbose", "-1"], "invalid value '-1' for '--verbose"),
        (
            &["--threads", "-2"],
            "--threads must be a whole number in 1..=1024, got -2",
        ),
        (&["--lr", "1e31"], "--lr must be in (0, 1e30], got 1e+31"),
        (&["--out", "a/b/c/x.csv/"], "is a folder"),
        (&["--out", LONG_FOLDER], "longer than 255 bytes"),
        (&["--out", LONG_NAME], "leaves room for its record"),
        (&["--out", "c.csv"], "its record c.csv.json is a folder"),
        (
            &["--out", "x.ckpt"],
            "the checkpoint is written to <stem>.ckpt, which would replace the CSV",
        ),
        (
            &["--out", "mine.csv"],
            "mine.ckpt already exists; pass --overwrite",
        ),
        (&["--out", "d.csv"], "its checkpoint d.ckpt is a folder"),
    ];
    for (args, expected) in cases {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("blocker"), "a file, not a folder").unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        std::fs::write(dir.path().join("taken.csv"), "precious").unwrap();
        std::fs::write(dir.path().join("taken2.csv.json"), "precious").unwrap();
        std::fs::create_dir(dir.path().join("c.csv.json")).unwrap();
        std::fs::write(dir.path().join("mine.ckpt"), "precious").unwrap();
        std::fs::create_dir(dir.path().join("d.ckpt")).unwrap();
        let before = files_in(dir.path());
        let mut full = vec!["train"];
        full.extend_from_slice(args);
        if !args.contains(&"--verbose") {
            full.extend(["--verbose", "0"]);
        }
        let out = binclass(dir.path(), &full);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} succeeded");
        assert_eq!(
            err.trim().lines().count(),
            1,
            "{args:?}: not one line: {err}"
        );
        assert!(err.starts_with("error: "), "{args:?}: {err}");
        assert!(
            err.contains(expected),
            "{args:?}: {err:?} lacks {expected:?}"
        );
        assert!(
            !err.contains("panicked") && !err.contains("backtrace"),
            "{err}"
        );
        assert_eq!(
            files_in(dir.path()),
            before,
            "{args:?} created or removed files"
        );
        assert_eq!(
            std::fs::read(dir.path().join("taken.csv")).unwrap(),
            b"precious"
        );
        assert_eq!(
            std::fs::read(dir.path().join("taken2.csv.json")).unwrap(),
            b"precious"
        );
        assert_eq!(
            std::fs::read(dir.path().join("mine.ckpt")).unwrap(),
            b"precious"
        );
    }
}

#[test]
fn cuda_without_a_gpu_fails_before_writing_anything() {
    let dir = tempfile::tempdir().unwrap();
    let out = binclass(dir.path(), &["train", "--device", "cuda", "--verbose", "0"]);
    if out.status.success() {
        eprintln!("skipped: this machine has CUDA");
        return;
    }
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no CUDA device") && err.contains("--device cpu"),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1);
    assert!(files_in(dir.path()).is_empty());
}

#[test]
fn diverging_loss_stops_keeps_written_rows_and_exits_non_zero() {
    // No hidden layer and features at 3e38: the logit overflows at once.
    let dir = tempfile::tempdir().unwrap();
    let out = binclass(
        dir.path(),
        &with(
            SMALL,
            &[
                "--hidden-layers",
                "0",
                "--shift",
                "3e38",
                "--scale",
                "0",
                "--epochs",
                "50",
                "--out",
                "n.csv",
            ],
        )
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>(),
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("NaN or infinite in epoch 0"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    let text = std::fs::read_to_string(dir.path().join("n.csv")).unwrap();
    assert_eq!(
        text.lines().count(),
        2,
        "header and the epoch that diverged:\n{text}"
    );
    assert!(text.lines().nth(1).unwrap().contains("nan") || text.contains("inf"));
    let j: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("n.csv.json")).unwrap())
            .unwrap();
    assert_eq!(j["finished"], false);
    assert!(j["stopped"].as_str().unwrap().contains("NaN"));
}

#[test]
fn a_run_killed_mid_way_leaves_a_parseable_csv() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("k.csv");
    let mut child = Command::new(BIN)
        .args(with(SMALL, &["--epochs", "100000", "--out", "k.csv"]))
        .current_dir(dir.path())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while std::fs::read_to_string(&csv).map_or(0, |t| t.lines().count()) < 4 {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "no rows after 60 s"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // Kill at a random-ish moment within an epoch.
    std::thread::sleep(Duration::from_millis(7));
    child.kill().unwrap(); // SIGKILL: no chance to clean up
    child.wait().unwrap();
    let text = std::fs::read_to_string(&csv).unwrap();
    assert!(text.ends_with('\n'), "a partial row was left: {text:?}");
    let rows = rows(&csv);
    assert!(rows.len() >= 3);
    for (i, row) in rows.iter().enumerate() {
        assert_eq!(row.len(), 5);
        assert_eq!(row[0], i as f64);
    }
    let j: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("k.csv.json")).unwrap())
            .unwrap();
    assert_eq!(j["finished"], false);
}

#[test]
fn experiments_lists_every_preset_with_resolved_settings() {
    let dir = tempfile::tempdir().unwrap();
    let out = ok(dir.path(), &["experiments"]);
    let text = String::from_utf8_lossy(&out.stdout);
    for name in [
        "baseline",
        "noise",
        "dummy-features",
        "scaled",
        "scaled-long",
        "shifted",
    ] {
        assert!(text.contains(&format!("{name}: ")), "{name}");
    }
    assert!(text.contains("features=5") && text.contains("units=7"));
    assert!(
        text.contains("scale=1000") && text.contains("epochs=500") && text.contains("shift=1000")
    );
    assert!(text.contains("noise-rate=0.2"));
}

#[test]
fn every_command_names_the_flag_and_value_it_refuses() {
    let dir = tempfile::tempdir().unwrap();
    for (args, says) in [
        (
            &[][..],
            "error: give a command: train, resume, sweep, compare, reproduce, merge, parity, predict, evaluate, experiments",
        ),
        (
            &["reproduce", "--out-dir", "r", "--seeds", "-3"],
            "invalid value '-3' for '--seeds",
        ),
        (
            &["sweep", "--seeds", "0..2", "--verbose", "-1"],
            "invalid value '-1' for '--verbose",
        ),
        (
            &["sweep", "--seeds", "0..2", "--threads", "-2"],
            "--threads must be a whole number in 1..=1024, got -2",
        ),
        (
            &["parity", "d", "--tolerance", "-1"],
            "--tolerance must be a finite number >= 0, got -1",
        ),
        (
            &["parity", "d", "--eps", "0"],
            "--eps must be a finite number > 0, got 0",
        ),
    ] {
        let out = binclass(dir.path(), args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?}");
        assert_eq!(err.trim().lines().count(), 1, "{args:?}: {err}");
        assert!(err.contains(says), "{args:?}: {err}");
    }
    assert_eq!(files_in(dir.path()), Vec::<PathBuf>::new());
}

#[test]
fn a_default_out_passes_over_a_checkpoint_it_did_not_write() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("runs")).unwrap();
    let mine = dir.path().join("runs/baseline-seed0.ckpt");
    std::fs::write(&mine, "precious").unwrap();
    ok(
        dir.path(),
        &[
            "train",
            "--epochs",
            "1",
            "--samples",
            "300",
            "--verbose",
            "0",
        ],
    );
    assert_eq!(std::fs::read(&mine).unwrap(), b"precious");
    assert!(dir.path().join("runs/baseline-seed0-1.csv").exists());
    assert!(!dir.path().join("runs/baseline-seed0.csv").exists());
}

#[test]
fn train_help_points_to_where_binclass_differs_from_keras() {
    let dir = tempfile::tempdir().unwrap();
    let out = ok(dir.path(), &["train", "--help"]);
    let help = String::from_utf8_lossy(&out.stdout);
    let line = help
        .lines()
        .find(|l| l.starts_with("Where binclass differs"))
        .unwrap_or_else(|| panic!("{help}"));
    let doc = line
        .split(['(', ')'])
        .nth(1)
        .unwrap_or_else(|| panic!("{line}"));
    let text = std::fs::read_to_string(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(doc))
        .unwrap_or_else(|e| panic!("{line}: {e}"));
    assert!(text.contains("Where it differs"), "{doc}");
}

/// Without --units the width follows --features: a width too wide is then
/// blamed on --features, the flag given, and --units only when it is given.
#[test]
fn a_width_too_wide_for_the_features_given_names_features_not_units() {
    let dir = tempfile::tempdir().unwrap();
    for (args, says, not) in [
        (
            &["--features", "10000"][..],
            "--features 10000 makes the default width int(10000 × 1.2 + 1) = 12001 units, more than 10000: lower --features or give --units",
            "--units must",
        ),
        (
            &["--features", "5000"],
            "parameters (at most 1e8): lower --features or --hidden-layers, or give a smaller --units",
            "lower --units",
        ),
        (
            &["--features", "10000", "--units", "12002"],
            "--units must be a whole number in 1..=10000, got 12002",
            "--features",
        ),
    ] {
        let out = binclass(dir.path(), &[&["train", "--out", "x.csv"], args].concat());
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{args:?}: {err}");
        assert!(err.contains(says) && !err.contains(not), "{args:?}: {err}");
    }
    assert!(files_in(dir.path()).is_empty());
}
