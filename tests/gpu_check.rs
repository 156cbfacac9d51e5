//! scripts/gpu_check.sh, the checks a session lent a GPU machine runs there,
//! run here on the CPU at a small size: every check passes, and without a
//! GPU asking for CUDA fails each check that trains, with a report saying so.

mod common;

use std::path::Path;
use std::process::{Command, Output};

fn gpu_check(device: &str, out: &Path) -> Option<Output> {
    let py = common::project_python_with("torch", "--cuda")?;
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    Some(
        Command::new("bash")
            .arg(root.join("scripts/gpu_check.sh"))
            .arg(env!("CARGO_BIN_EXE_binclass"))
            .arg(out)
            .env("GPU_CHECK_PYTHON", py)
            .env("GPU_CHECK_DEVICE", device)
            .env("GPU_CHECK_SEEDS", "2")
            .env("GPU_CHECK_EPOCHS", "3")
            .output()
            .unwrap(),
    )
}

fn report(out: &Path) -> String {
    std::fs::read_to_string(out.join("gpu-check.txt")).unwrap()
}

#[test]
fn gpu_check_passes_every_check_on_the_cpu() {
    let dir = tempfile::tempdir().unwrap();
    let Some(o) = gpu_check("cpu", dir.path()) else {
        return;
    };
    let report = report(dir.path());
    assert!(o.status.success(), "{report}");
    let oks = report.lines().filter(|l| l.starts_with("ok ")).count();
    assert_eq!(oks, 6, "{report}");
    assert!(!report.contains("FAILED"), "{report}");
    assert!(report.contains("sweep of 2 seeds, 3 epochs"), "{report}");
}

#[test]
fn gpu_check_without_a_gpu_fails_and_says_which_checks() {
    if binclass::device::load_cuda().is_ok() && tch::Cuda::is_available() {
        eprintln!("skipped: this machine has CUDA");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let Some(o) = gpu_check("cuda", dir.path()) else {
        return;
    };
    let report = report(dir.path());
    assert_eq!(o.status.code(), Some(1), "{report}");
    assert!(
        report.contains("FAILED  sweep of 2 seeds finished"),
        "{report}"
    );
    assert!(report.contains("some checks FAILED"), "{report}");
    let log = std::fs::read_to_string(dir.path().join("commands.log")).unwrap();
    assert!(log.contains("no CUDA device"), "{log}");
}
