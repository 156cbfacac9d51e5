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
/// binary runs on. Here "elsewhere" is a link to the same folder.
#[test]
fn the_cuda_backend_comes_from_the_libtorch_the_binary_runs_on() {
    let tmp = tempfile::tempdir().unwrap();
    let elsewhere = tmp.path().join("lib");
    std::os::unix::fs::symlink(binclass::device::libtorch_dir(), &elsewhere).unwrap();
    let libs = loaded_with(&CUDA_RUN.split(' ').collect::<Vec<_>>(), Some(&elsewhere));
    for lib in ["libtorch_cpu.so", "libtorch_cuda.so"] {
        let from = format!("calling init: {}/{lib}", elsewhere.display());
        assert!(
            libs.contains(&from),
            "{lib} not loaded from {elsewhere:?}: {libs}"
        );
    }
}
