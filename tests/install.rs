//! binclass beyond its checkout: the light CPU install `scripts/setup.sh`
//! makes where there is no GPU, and an installed binary that runs with its
//! source tree gone.

mod common;

use std::path::Path;
use std::process::{Command, Output};

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Bytes under `dir`, as `du` counts what a user's disk holds.
fn disk_bytes(dir: &Path) -> u64 {
    let out = Command::new("du")
        .args(["-s", "-B1"])
        .arg(dir)
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    text.split_whitespace().next().unwrap().parse().unwrap()
}

/// A machine with no NVIDIA GPU gets torch without CUDA's wheels, within
/// 1.5 GB; the binary runs on it (its libtorch loaded through
/// LD_LIBRARY_PATH), `--device auto` says it took the CPU, and `--device
/// cuda` says in one line how to get CUDA.
#[test]
fn a_light_install_leaves_cuda_out_fits_in_1_5_gb_and_trains_on_the_cpu() {
    let tmp = tempfile::tempdir().unwrap();
    // setup.sh links `.libtorch` in the checkout it sits in: a copy of it,
    // so this checkout's link stays as it is.
    let checkout = tmp.path().join("checkout");
    std::fs::create_dir_all(checkout.join("scripts")).unwrap();
    let setup = checkout.join("scripts/setup.sh");
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/setup.sh"),
        &setup,
    )
    .unwrap();
    let home = tmp.path().join("home");
    // No nvidia-smi on PATH, as on a machine without a GPU.
    let path = std::env::var("PATH").unwrap_or_default();
    let path: Vec<&str> = path
        .split(':')
        .filter(|d| !Path::new(d).join("nvidia-smi").exists())
        .collect();
    let status = Command::new("bash")
        .arg(&setup)
        .env("BINCLASS_HOME", &home)
        .env("PATH", path.join(":"))
        .env_remove("BINCLASS_VENV")
        .status()
        .unwrap();
    assert!(status.success(), "scripts/setup.sh failed");
    let site = std::fs::read_dir(home.join("torch-2.11.0/lib"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path()
        .join("site-packages");
    // libtorch_cpu.so itself needs CUDA's runtime and CUPTI (`readelf -d`
    // lists libcudart.so.13 and libcupti.so.13): those two wheels (about
    // 60 MB, under nvidia/cu13) and the cuda-toolkit stub that pins them
    // are all of CUDA a light install may hold.
    let needed = [
        "nvidia",
        "nvidia_cuda_runtime",
        "nvidia_cuda_cupti",
        "cuda_toolkit",
    ];
    let cuda: Vec<String> = std::fs::read_dir(&site)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_lowercase())
        .filter(|n| {
            ["nvidia", "cuda", "triton"]
                .iter()
                .any(|c| n.starts_with(c))
        })
        .filter(|n| {
            let dist = n.split('-').next().unwrap();
            !needed.contains(&dist)
        })
        .collect();
    assert!(cuda.is_empty(), "CUDA's wheels installed: {cuda:?}");
    let nvidia = disk_bytes(&site.join("nvidia"));
    assert!(
        nvidia <= 100_000_000,
        "{nvidia} bytes of CUDA under nvidia/"
    );
    let bytes = disk_bytes(&home);
    assert!(bytes <= 1_500_000_000, "{bytes} bytes on disk");
    eprintln!("light install: {bytes} bytes on disk");

    let lib = site.join("torch/lib");
    let run = |device: &str| {
        Command::new(common::BIN)
            .args(["train", "--epochs", "1", "--samples", "300", "-v", "2"])
            .args(["--device", device, "--out", &format!("{device}.csv")])
            .current_dir(tmp.path())
            .env("LD_LIBRARY_PATH", &lib)
            .output()
            .unwrap()
    };
    let cuda = run("cuda");
    assert_eq!(cuda.status.code(), Some(1), "{}", stderr(&cuda));
    let err = stderr(&cuda);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(
        err.contains("`scripts/setup.sh --cuda` installs CUDA's libraries"),
        "{err}"
    );
    assert!(!tmp.path().join("cuda.csv").exists());

    let auto = run("auto");
    assert!(auto.status.success(), "{}", stderr(&auto));
    let err = stderr(&auto);
    assert!(
        err.starts_with(
            "--device auto: training on the cpu: cannot load libtorch's CUDA backend: "
        ),
        "{err}"
    );
    assert_eq!(common::rows(&tmp.path().join("auto.csv")).len(), 1);

    // Python's `import torch` needs all of CUDA on Linux: the script that
    // opens models in PyTorch says in one line how to get it.
    std::fs::write(tmp.path().join("p.csv"), "0.1,0.2\n").unwrap();
    let python = home.join("torch-2.11.0/bin/python");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/predict_torch.py");
    let out = Command::new(python)
        .arg(script)
        .args(["auto.safetensors", "p.csv"])
        .current_dir(tmp.path())
        .output()
        .unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("run scripts/setup.sh --cuda"), "{err}");
}

/// Runs `cmd` and fails the test with its stderr when it fails.
fn succeeds(cmd: &mut Command) -> Output {
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{cmd:?}: {}", stderr(&out));
    out
}

/// A clone (this checkout's files, committed or not), built and installed by
/// `cargo install` into a temporary root, the clone then deleted: `train`,
/// `reproduce` with its figures, REPORT.md and verdicts, and `compare`
/// against the Keras reference built into it, run from an empty folder.
#[test]
fn an_installed_binary_reproduces_and_compares_with_its_source_tree_gone() {
    let tmp = tempfile::tempdir().unwrap();
    let checkout = Path::new(env!("CARGO_MANIFEST_DIR"));
    let (clone, target, root) = (
        tmp.path().join("clone"),
        tmp.path().join("target"),
        tmp.path().join("root"),
    );
    let files = succeeds(
        Command::new("git")
            .args([
                "ls-files",
                "-z",
                "--cached",
                "--others",
                "--exclude-standard",
            ])
            .current_dir(checkout),
    );
    for rel in files.stdout.split(|&b| b == 0).filter(|r| !r.is_empty()) {
        let rel = Path::new(std::str::from_utf8(rel).unwrap());
        if checkout.join(rel).is_file() {
            std::fs::create_dir_all(clone.join(rel).parent().unwrap()).unwrap();
            std::fs::copy(checkout.join(rel), clone.join(rel)).unwrap();
        }
    }
    // This build's compiled dependencies, so that only binclass compiles:
    // with the same LIBTORCH (config.toml's, resolved from this checkout)
    // torch-sys and tch are not built again.
    succeeds(
        Command::new("cp")
            .arg("-a")
            .arg(checkout.join("target"))
            .arg(&target),
    );
    succeeds(Command::new(clone.join("scripts/setup.sh")).current_dir(&clone));
    succeeds(
        Command::new(env!("CARGO"))
            .args(["install", "--locked", "--offline", "--quiet", "--path", "."])
            .arg("--root")
            .arg(&root)
            .arg("--target-dir")
            .arg(&target)
            .env("LIBTORCH", checkout.join(".libtorch"))
            .current_dir(&clone),
    );
    std::fs::remove_dir_all(&clone).unwrap();
    std::fs::remove_dir_all(&target).unwrap();

    let (bin, work, cache) = (
        root.join("bin/binclass"),
        tmp.path().join("work"),
        tmp.path().join("cache"),
    );
    std::fs::create_dir(&work).unwrap();
    let run = |args: &[&str]| {
        succeeds(
            Command::new(&bin)
                .args(args)
                .current_dir(&work)
                .env("XDG_CACHE_HOME", &cache)
                .env_remove("BINCLASS_PLOT_PYTHON"),
        )
    };
    run(&[
        "train",
        "--epochs",
        "1",
        "--samples",
        "300",
        "-v",
        "0",
        "--out",
        "t.csv",
    ]);
    run(&[
        "reproduce",
        "--out-dir",
        "rep",
        "--seeds",
        "2",
        "--epochs",
        "1",
        "-v",
        "0",
    ]);
    run(&["sweep", "--seeds", "0..2", "--out-dir", "sw", "-v", "0"]);
    let out = run(&["compare", "sw"]);
    assert_eq!(common::rows(&work.join("t.csv")).len(), 1);
    let report = std::fs::read_to_string(work.join("rep/REPORT.md")).unwrap();
    assert!(
        report
            .contains("against the Keras runs in the copy of reference/keras built into binclass"),
        "{report}"
    );
    for preset in [
        "baseline",
        "noise",
        "dummy-features",
        "scaled",
        "scaled-long",
        "shifted",
    ] {
        assert!(
            report.contains(&format!("| {preset} | 2/")),
            "{preset}: {report}"
        );
        assert!(
            work.join(format!("rep/figures/{preset}.png")).is_file(),
            "{preset}"
        );
        assert!(
            work.join(format!("rep/figures/{preset}-boundary.png"))
                .is_file(),
            "{preset}"
        );
    }
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        table.lines().any(|l| l.starts_with("baseline  2/20 ")),
        "{table}"
    );
    // The reference and scripts were written out under the user's cache.
    let written: Vec<_> = std::fs::read_dir(cache.join("binclass")).unwrap().collect();
    assert_eq!(written.len(), 1);
}

/// The figures' python is checked before anything is trained, in one line
/// that names it.
#[test]
fn reproduce_without_a_python_that_draws_names_it_and_writes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    for (python, why) in [
        ("/nonexistent/python", "is missing"),
        ("false", "lacks matplotlib"),
    ] {
        let out = Command::new(common::BIN)
            .args([
                "reproduce",
                "--out-dir",
                "rep",
                "--seeds",
                "2",
                "--epochs",
                "1",
                "-v",
                "0",
            ])
            .current_dir(tmp.path())
            .env("BINCLASS_PLOT_PYTHON", python)
            .output()
            .unwrap();
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{err}");
        assert_eq!(err.trim().lines().count(), 1, "{err}");
        assert!(err.contains(&format!("{python} {why}")), "{err}");
        assert!(err.contains("BINCLASS_PLOT_PYTHON"), "{err}");
        assert!(!tmp.path().join("rep").exists());
    }
}
