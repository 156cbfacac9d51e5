//! scripts/plot.py draws a PNG from a Keras CSVLogger file and from ours,
//! curves or (`--finals`) the distributions of final accuracy;
//! scripts/plot_parity.py draws `binclass parity --out` files;
//! scripts/plot_boundary.py draws what saved models learned.

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
    // --finals: what `compare` judges, at the last epoch both have (2 of 3).
    let finals = dir.path().join("finals.png");
    let o = Command::new(&py)
        .arg(&script)
        .args([&ours, &keras])
        .arg("--reference")
        .arg(dir.path())
        .arg("--finals")
        .arg("--out")
        .arg(&finals)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(std::fs::read(&finals).unwrap().starts_with(b"\x89PNG"));
    let o = Command::new(&py)
        .arg(&script)
        .arg(dir.path().join("k.png"))
        .arg("--out")
        .arg(dir.path().join("x.png"))
        .output()
        .unwrap();
    assert!(!o.status.success(), "a PNG is not a CSV");
}

/// `--reference` takes `compare`'s folder of presets too: the runs'
/// names say which preset's Keras CSVs to draw.
#[test]
fn plot_takes_the_runs_preset_from_a_folder_of_presets() {
    let Some(py) = common::project_python("matplotlib") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for out in ["baseline-seed0.csv", "mine.csv"] {
        let status = Command::new(env!("CARGO_BIN_EXE_binclass"))
            .args([
                "train",
                "--epochs",
                "2",
                "--verbose",
                "0",
                "--samples",
                "600",
            ])
            .arg("--out")
            .arg(d.join(out))
            .status()
            .unwrap();
        assert!(status.success());
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let plot = |csv: &str, png: &str| {
        Command::new(&py)
            .arg(root.join("scripts/plot.py"))
            .arg(d.join(csv))
            .arg("--reference")
            .arg(root.join("reference/keras"))
            .arg("--out")
            .arg(d.join(png))
            .output()
            .unwrap()
    };
    let o = plot("baseline-seed0.csv", "b.png");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(is_png(&d.join("b.png")));
    // A name that says no preset: one line asking for the preset's folder.
    let o = plot("mine.csv", "m.png");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("give one preset's folder, e.g."), "{err}");
    assert!(!d.join("m.png").exists());
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
    // --steps N: each of the first N steps of a run that parts within its epoch.
    let scaled = dir.path().join("scaled.csv");
    Command::new(env!("CARGO_BIN_EXE_binclass"))
        .arg("parity")
        .arg(root.join("tests/fixtures/parity-scaled-seed0-f64"))
        .arg("--out")
        .arg(&scaled)
        .output()
        .unwrap();
    let steps = dir.path().join("steps.png");
    let o = Command::new(&py)
        .arg(&script)
        .args(["--steps", "100"])
        .arg(format!("scaled={}", scaled.display()))
        .arg("--out")
        .arg(&steps)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(std::fs::read(&steps).unwrap().starts_with(b"\x89PNG"));
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

/// Trains small models in `d` (2 epochs, 600 samples): `<name>.safetensors`
/// for each (name, extra flags).
fn small_models(d: &Path, models: &[(&str, &[&str])]) {
    for (name, flags) in models {
        let out = format!("{name}.csv");
        let mut args = vec![
            "train",
            "--epochs",
            "2",
            "--samples",
            "600",
            "--verbose",
            "0",
            "--out",
            &out,
        ];
        args.extend_from_slice(flags);
        common::ok(d, &args);
    }
}

fn is_png(path: &Path) -> bool {
    std::fs::read(path).is_ok_and(|b| b.starts_with(b"\x89PNG") && b.len() > 5_000)
}

#[test]
fn plot_boundary_draws_models_in_their_raw_units_alone_and_side_by_side() {
    let Some(py) = common::project_python("matplotlib") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    small_models(
        d,
        &[
            ("baseline", &[]),
            ("scaled", &["-e", "scaled"]),
            ("dummies", &["-e", "dummy-features"]),
            ("shifted", &["-e", "shifted", "--normalize", "standard"]),
        ],
    );
    // Points with labels (as x0,x1,label) and without, in [0, 1)².
    let mut labelled = String::from("x0,x1,label\n");
    let mut bare = String::new();
    for i in 0..200 {
        let (a, b) = ((i * 37 % 200) as f64 / 200.0, (i * 91 % 199) as f64 / 199.0);
        labelled += &format!("{a},{b},{}\n", u8::from(a > b));
        bare += &format!("{a},{b}\n");
    }
    std::fs::write(d.join("labelled.csv"), labelled).unwrap();
    std::fs::write(d.join("bare.csv"), bare).unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/plot_boundary.py");
    let cases: [(&[&str], &str); 6] = [
        (&["baseline.safetensors"], "baseline.png"),
        (&["scaled.safetensors"], "scaled.png"),
        (&["dummies.safetensors"], "dummies.png"),
        (&["shifted.safetensors"], "shifted.png"),
        (
            &[
                "baseline.safetensors",
                "scaled.safetensors",
                "shifted.safetensors",
                "--points",
                "labelled.csv",
                "--title",
                "three models",
            ],
            "three.png",
        ),
        (
            &["baseline.safetensors", "--points", "bare.csv"],
            "bare.png",
        ),
    ];
    for (args, png) in cases {
        let o = Command::new(&py)
            .arg(&script)
            .args(args)
            .args(["--out", png])
            .current_dir(d)
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        assert!(is_png(&d.join(png)), "{png}");
    }
}

#[test]
fn plot_boundary_gives_one_line_errors_and_writes_nothing() {
    let Some(py) = common::project_python("matplotlib") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    small_models(d, &[("m", &[])]);
    std::fs::write(d.join("m2.safetensors"), b"not a model at all").unwrap();
    std::fs::write(d.join("words.csv"), "x0,x1\n0.1,zero\n").unwrap();
    std::fs::write(d.join("wide.csv"), "0.1,0.2,1,4\n").unwrap();
    std::fs::write(d.join("typo.csv"), "0.1,0.2x\n0.3,0.4\n").unwrap();
    std::fs::write(d.join("label.csv"), "0.1,0.2,2\n").unwrap();
    std::fs::write(d.join("file"), "").unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/plot_boundary.py");
    for (args, says) in [
        (
            &["m.csv", "--out", "x.png"][..],
            "m.csv: not a safetensors model file",
        ),
        (
            &["m2.safetensors", "--out", "x.png"],
            "m2.safetensors: not a safetensors model file",
        ),
        (
            &["gone.safetensors", "--out", "x.png"],
            "gone.safetensors: no such file",
        ),
        (&["m.safetensors", "--out", "p.txt"], "ending in .png"),
        (
            &["m.safetensors", "--out", "file/x.png"],
            "is a file, not a folder",
        ),
        (
            &["m.safetensors", "--out", "/proc/x.png"],
            "cannot write /proc/x.png",
        ),
        (
            &["m.safetensors", "--points", "words.csv", "--out", "x.png"],
            "words.csv: line 2, column 2: 'zero' is not a number",
        ),
        (
            &["m.safetensors", "--points", "typo.csv", "--out", "x.png"],
            "typo.csv: line 1, column 2: '0.2x' is not a number, and the row is not a header",
        ),
        (
            &["m.safetensors", "--points", "wide.csv", "--out", "x.png"],
            "wide.csv: line 1: 4 columns",
        ),
        (
            &["m.safetensors", "--points", "label.csv", "--out", "x.png"],
            "label 2 is not 0 or 1",
        ),
        (
            &["m.safetensors", "--points", "none.csv", "--out", "x.png"],
            "none.csv: No such file",
        ),
    ] {
        let o = Command::new(&py)
            .arg(&script)
            .args(args)
            .current_dir(d)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{args:?}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{args:?}: {err}");
        assert!(
            err.starts_with("plot_boundary: ") && err.contains(says) && !err.contains("Traceback"),
            "{args:?}: {err}"
        );
    }
    assert!(!d.join("x.png").exists() && !d.join("p.txt").exists());
}

#[test]
fn plot_grid_draws_a_varied_sweeps_summary_and_refuses_others_in_one_line() {
    let Some(py) = common::project_python("matplotlib") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    common::ok(
        dir.path(),
        &[
            "sweep",
            "--seeds",
            "0..2",
            "--vary",
            "noise-rate=0,0.25,0.5",
            "--vary",
            "normalize=none,standard",
            "--epochs",
            "2",
            "--samples",
            "600",
            "--verbose",
            "0",
            "--out-dir",
            "g",
        ],
    );
    common::ok(
        dir.path(),
        &[
            "sweep",
            "--seeds",
            "0..2",
            "--epochs",
            "1",
            "--samples",
            "300",
            "--verbose",
            "0",
            "--out-dir",
            "plain",
        ],
    );
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/plot_grid.py");
    let plot = |summary: &str, more: &[&str]| {
        Command::new(&py)
            .arg(&script)
            .arg(summary)
            .args(more)
            .current_dir(dir.path())
            .output()
            .unwrap()
    };
    for (band, png) in [("sd", "sd.png"), ("minmax", "mm.png")] {
        let o = plot("g/summary.csv", &["--out", png, "--band", band]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let bytes = std::fs::read(dir.path().join(png)).unwrap();
        assert!(bytes.starts_with(b"\x89PNG") && bytes.len() > 10_000);
    }
    for (summary, expected) in [
        ("plain/summary.csv", "0 varied knobs"),
        (
            "g/noise-rate=0,normalize=none/baseline-seed0.csv",
            "not a sweep's summary.csv",
        ),
        ("missing.csv", "missing.csv"),
    ] {
        let o = plot(summary, &["--out", "x.png"]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success(), "{summary}");
        assert_eq!(err.trim().lines().count(), 1, "{err}");
        assert!(err.contains(expected), "{summary}: {err}");
    }
    assert!(!dir.path().join("x.png").exists());
}

/// A run of one epoch (`reproduce --epochs 1`) is drawn as a dot with its
/// ± sd bar, not as a line of one point, which shows nothing.
#[test]
fn plot_draws_a_single_epoch_as_a_visible_point() {
    let Some(py) = common::project_python("matplotlib") else {
        return;
    };
    let scripts = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts");
    let check = "import sys; sys.path.insert(0, sys.argv[1]); sys.argv[1:] = []\n\
        import matplotlib; matplotlib.use('Agg')\n\
        import matplotlib.pyplot as plt, plot\n\
        for curves in ([[0.9]], [[0.9], [0.95]]):\n\
        \x20   ax = plt.figure().gca(); plot.draw(ax, curves, 'v', 'tab:blue')\n\
        \x20   dots = [l for l in ax.lines if l.get_marker() == 'o']\n\
        \x20   assert len(dots) == 1 and list(dots[0].get_xdata()) == [1], ax.lines\n\
        \x20   assert (len(ax.collections) == 1) == (len(curves) > 1), ax.collections\n";
    let o = Command::new(&py)
        .arg("-c")
        .arg(check)
        .arg(&scripts)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

/// `scripts/figures.py` draws several figures in one Python (what
/// `reproduce` does), each byte for byte as its script alone draws it;
/// the first that fails stops the rest, its one-line message on stderr and
/// its position on stdout.
#[test]
fn figures_draws_each_figure_as_its_script_alone_and_names_the_one_that_fails() {
    let Some(py) = common::project_python("matplotlib") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let train = "train --epochs 3 --samples 300 -v 0 --out a.csv";
    common::ok(d, &train.split(' ').collect::<Vec<_>>());
    let scripts = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts");
    let run = |script: &str, args: &[&str]| {
        Command::new(&py)
            .arg(scripts.join(script))
            .args(args)
            .current_dir(d)
            .output()
            .unwrap()
    };
    let alone = run("plot.py", &["a.csv", "--out", "alone.png"]);
    assert!(
        alone.status.success(),
        "{}",
        String::from_utf8_lossy(&alone.stderr)
    );
    let args = [
        "plot.py",
        "a.csv",
        "--out",
        "one.png",
        "---",
        "plot_boundary.py",
        "a.safetensors",
        "--out",
        "two.png",
        "---",
        "plot.py",
        "missing.csv",
        "--out",
        "three.png",
        "---",
        "plot.py",
        "a.csv",
        "--out",
        "four.png",
    ];
    let o = run("figures.py", &args);
    assert!(!o.status.success());
    assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), "2");
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("missing.csv"), "{err}");
    assert_eq!(
        std::fs::read(d.join("one.png")).unwrap(),
        std::fs::read(d.join("alone.png")).unwrap()
    );
    assert!(d.join("two.png").is_file());
    assert!(!d.join("three.png").exists() && !d.join("four.png").exists());
}
