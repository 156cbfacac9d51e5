//! scripts/plot.py draws a PNG from a Keras CSVLogger file and from ours;
//! scripts/plot_parity.py draws `binclass parity --out` files.

use std::path::Path;
use std::process::Command;

mod common;

#[test]
fn plot_draws_pngs_from_keras_and_binclass_csvs() {
    let Some(py) = common::project_python("matplotlib") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let keras = dir.path().join("keras.csv");
    std::fs::write(
        &keras,
        "epoch,binary_accuracy,loss,val_binary_accuracy,val_loss\n\
         0,0.9476249814033508,0.11112306267023087,0.9890000224113464,0.028887132182717323\n\
         1,0.9806249737739563,0.04572344943881035,0.9925000071525574,0.019265757873654366\n",
    )
    .unwrap();
    let ours = dir.path().join("ours.csv");
    let status = Command::new(env!("CARGO_BIN_EXE_binclass"))
        .args([
            "train",
            "--epochs",
            "3",
            "--verbose",
            "0",
            "--samples",
            "600",
            "--out",
        ])
        .arg(&ours)
        .status()
        .unwrap();
    assert!(status.success());
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/plot.py");
    let cases: [(&[&Path], &str, Option<&Path>); 3] = [
        (&[&keras], "k.png", None),
        (&[&ours], "o.png", None),
        (&[&ours, &keras], "both.png", Some(dir.path())),
    ];
    for (csvs, png, reference) in cases {
        let out = dir.path().join(png);
        let mut cmd = Command::new(&py);
        cmd.arg(&script).args(csvs).arg("--out").arg(&out);
        if let Some(r) = reference {
            cmd.arg("--reference").arg(r);
        }
        let o = cmd.output().unwrap();
        assert!(
            o.status.success(),
            "{png}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let bytes = std::fs::read(&out).unwrap();
        assert!(
            bytes.starts_with(b"\x89PNG") && bytes.len() > 5_000,
            "{png}"
        );
    }
    let o = Command::new(&py)
        .arg(&script)
        .arg(dir.path().join("k.png"))
        .arg("--out")
        .arg(dir.path().join("x.png"))
        .output()
        .unwrap();
    assert!(!o.status.success(), "a PNG is not a CSV");
}

#[test]
fn plot_parity_draws_the_per_epoch_differences_of_parity_csvs() {
    let Some(py) = common::project_python("matplotlib") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut runs = vec![];
    for (label, fixture) in [
        ("f32", "parity-baseline-seed0"),
        ("f64", "parity-baseline-seed0-f64"),
    ] {
        let csv = dir.path().join(format!("{label}.csv"));
        let status = Command::new(env!("CARGO_BIN_EXE_binclass"))
            .arg("parity")
            .arg(root.join("tests/fixtures").join(fixture))
            .arg("--out")
            .arg(&csv)
            .stdout(std::process::Stdio::null())
            .status()
            .unwrap();
        assert!(status.success());
        runs.push(format!("{label}={}", csv.display()));
    }
    let script = root.join("scripts/plot_parity.py");
    let out = dir.path().join("parity.png");
    let o = Command::new(&py)
        .arg(&script)
        .arg("--pairs")
        .args(&runs)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let bytes = std::fs::read(&out).unwrap();
    assert!(bytes.starts_with(b"\x89PNG") && bytes.len() > 5_000);
    // A CSVLogger file is not a parity file; a path without a label is refused.
    let logger = dir.path().join("logger.csv");
    std::fs::write(&logger, "epoch,binary_accuracy,loss\n0,0.9,0.1\n").unwrap();
    for bad in [
        format!("x={}", logger.display()),
        runs[0].replace("f32=", ""),
    ] {
        let o = Command::new(&py)
            .arg(&script)
            .arg(&bad)
            .arg("--out")
            .arg(dir.path().join("bad.png"))
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success(), "{bad}");
        assert_eq!(err.trim().lines().count(), 1, "{err}");
    }
}

#[test]
fn plot_gives_one_line_errors_and_skips_files_that_are_not_runs() {
    let Some(py) = common::project_python("matplotlib") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let head = "epoch,binary_accuracy,loss,val_binary_accuracy,val_loss\n";
    std::fs::write(
        d.join("a.csv"),
        format!("{head}0,0.9,0.3,0.91,0.3\n1,0.95,0.2,0.96,0.2\n"),
    )
    .unwrap();
    std::fs::write(
        d.join("b.csv"),
        format!("{head}0,0.9,0.3,0.92,0.3\n1,0.95,0.2,0.97,0.2\n2,0.96,0.1,0.98,0.1\n"),
    )
    .unwrap();
    std::fs::write(d.join("short.csv"), format!("{head}0,0.9,0.3\n")).unwrap();
    std::fs::write(
        d.join("summary.csv"),
        "seed,final_val_binary_accuracy\n0,0.9\n",
    )
    .unwrap();
    std::fs::create_dir(d.join("folder")).unwrap();
    std::fs::write(d.join("file"), "").unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/plot.py");
    let plot = |args: &[&str]| {
        Command::new(&py)
            .arg(&script)
            .args(args)
            .current_dir(d)
            .output()
            .unwrap()
    };
    for (args, says) in [
        (&["short.csv", "--out", "x.png"][..], "line 2 has 3 fields"),
        (
            &["a.csv", "--out", "/proc/x.png"],
            "cannot write /proc/x.png",
        ),
        (&["a.csv", "--out", "p.txt"], "ending in .png"),
        (&["a.csv", "--out", "file/x.png"], "is a file, not a folder"),
        (&["a.csv", "--out", "folder"], "is a folder"),
        (
            &["summary.csv", "--out", "x.png"],
            "none of summary.csv is a CSVLogger file",
        ),
    ] {
        let o = plot(args);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{args:?}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{args:?}: {err}");
        assert!(
            err.contains(says) && !err.contains("Traceback"),
            "{args:?}: {err}"
        );
    }
    assert!(!d.join("folder.png").exists() && !d.join("x.png").exists());
    // A glob over a sweep's folder: summary.csv skipped, lengths noted.
    let o = plot(&["a.csv", "b.csv", "summary.csv", "--out", "sweep.png"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(err.contains("skipped summary.csv"), "{err}");
    assert!(err.contains("2 to 3 epochs; drawn to epoch 2"), "{err}");
    assert!(
        std::fs::read(d.join("sweep.png"))
            .unwrap()
            .starts_with(b"\x89PNG")
    );
}
