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
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_binclass"))
        .args(args)
        .env("LD_DEBUG", "libs")
        .output()
        .unwrap();
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
    let run = "train --device cuda --epochs 1 --samples 300 --verbose 0 --out /dev/null/x.csv";
    let libs = loaded(&run.split(' ').collect::<Vec<_>>());
    assert!(libs.contains("libtorch_cuda.so"), "{libs}");
}
