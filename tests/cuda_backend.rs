//! libtorch's CUDA backend is loaded on demand (`device::load_cuda`), not at
//! start-up. Its own test binary: libtorch decides once per process, at the
//! first CUDA query, whether CUDA exists, so nothing may ask before loading.

use tch::{Device, Kind, Tensor};

#[test]
fn loading_the_cuda_backend_registers_it_with_libtorch() {
    binclass::device::load_cuda().unwrap();
    match Tensor::f_zeros([1], (Kind::Float, Device::Cuda(0))) {
        Ok(_) => eprintln!("this machine has CUDA: a tensor was made there"),
        Err(e) => {
            // Unregistered, libtorch cannot even dispatch the call; registered
            // on a machine without a GPU, it looks for a driver and finds none.
            let e = e.to_string();
            assert!(
                !e.contains("from the 'CUDA' backend"),
                "backend missing: {e}"
            );
        }
    }
}

/// Libraries the dynamic loader initialised while running binclass with `args`.
fn loaded(args: &[&str]) -> String {
    loaded_with(args, None)
}

/// [`loaded`], with LD_LIBRARY_PATH set to `lib` if given.
fn loaded_with(args: &[&str], lib: Option<&std::path::Path>) -> String {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_binclass"));
    if let Some(lib) = lib {
        cmd.env("LD_LIBRARY_PATH", lib);
    }
    let out = cmd.args(args).env("LD_DEBUG", "libs").output().unwrap();
    String::from_utf8_lossy(&out.stderr)
        .lines()
        .filter(|l| l.contains("calling init:"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn help_and_version_start_without_cuda_and_a_cuda_device_loads_it() {
    for args in [&["--help"][..], &["--version"], &["train", "--help"]] {
        let libs = loaded(args);
        assert!(libs.contains("libtorch_cpu"), "{args:?}: {libs}");
        assert!(!libs.contains("libtorch_cuda"), "{args:?} loaded CUDA");
    }
    let libs = loaded(&CUDA_RUN.split(' ').collect::<Vec<_>>());
    assert!(libs.contains("libtorch_cuda.so"), "{libs}");
}

const CUDA_RUN: &str =
    "train --device cuda --epochs 1 --samples 300 --verbose 0 --out /dev/null/x.csv";

/// A binary copied to another machine (a GPU node, the device machine) finds
/// that machine's libtorch through LD_LIBRARY_PATH, and the build's folder
/// may not exist there: the CUDA backend must come from the libtorch the
/// binary runs on. Here "elsewhere" is a copy of the folder's links to
/// the same files, so the build's folder is not named in it: libtorch_cuda
/// must be loaded from where libtorch_cpu was mapped (the kernel names the
/// file behind the link).
#[test]
fn the_cuda_backend_comes_from_the_libtorch_the_binary_runs_on() {
    let tmp = tempfile::tempdir().unwrap();
    let elsewhere = tmp.path().join("lib");
    let build = binclass::device::libtorch_dir();
    std::os::unix::fs::symlink(&build, &elsewhere).unwrap();
    let libs = loaded_with(&CUDA_RUN.split(' ').collect::<Vec<_>>(), Some(&elsewhere));
    let cpu = format!("calling init: {}/libtorch_cpu.so", elsewhere.display());
    assert!(
        libs.contains(&cpu),
        "libtorch_cpu.so not loaded from {elsewhere:?}: {libs}"
    );
    let real = elsewhere.canonicalize().unwrap();
    let cuda = format!("calling init: {}/libtorch_cuda.so", real.display());
    assert!(
        libs.contains(&cuda),
        "libtorch_cuda.so not loaded from {real:?}: {libs}"
    );
}
