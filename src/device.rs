//! `--device cpu|cuda|cuda:N|auto`, checked against what libtorch can see
//! before any file is written.

use anyhow::{Result, bail};
use std::path::{Path, PathBuf};
use tch::{Cuda, Device};

/// libtorch's CUDA backend, loaded only when a command asks for CUDA: its
/// libraries take most of a start-up (measured: `--help` 1.3 s and 545 MB
/// with them, 0.55 s and 149 MB without). libtorch looks its CUDA hooks up
/// once, on first use, so this must come before any CUDA query.
pub fn load_cuda() -> Result<()> {
    use libloading::os::unix::{Library, RTLD_GLOBAL, RTLD_NOW};
    static LOADED: std::sync::OnceLock<Result<(), String>> = std::sync::OnceLock::new();
    LOADED
        .get_or_init(|| {
            let lib = libtorch_dir().join("libtorch_cuda.so");
            // SAFETY: libtorch's own CUDA library, whose initialisers only
            // register its CUDA hooks; it stays loaded for the process's life
            // (into_raw), as if it had been linked.
            unsafe { Library::open(Some(&lib), RTLD_NOW | RTLD_GLOBAL) }
                .map(|l| {
                    l.into_raw();
                })
                .map_err(|e| e.to_string())
        })
        .clone()
        .map_err(|why| anyhow::anyhow!("cannot load libtorch's CUDA backend: {why}"))
}

/// The lib folder of the libtorch this process runs on: where the dynamic
/// loader found libtorch_cpu.so. That is the build's folder (the rpath)
/// unless LD_LIBRARY_PATH points elsewhere, as on a machine the binary was
/// copied to; the CUDA backend must come from the same libtorch.
pub fn libtorch_dir() -> PathBuf {
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap_or_default();
    maps.lines()
        .filter_map(|l| l.split_whitespace().nth(5))
        .map(Path::new)
        .find(|p| p.file_name().is_some_and(|n| n == "libtorch_cpu.so"))
        .and_then(Path::parent)
        .map_or_else(
            || PathBuf::from(env!("BINCLASS_LIBTORCH_LIB")),
            Path::to_path_buf,
        )
}

/// How a CPU-only (light) install gets CUDA: scripts/setup.sh leaves CUDA's
/// libraries out where nvidia-smi finds no GPU, so libtorch_cuda.so is there
/// but does not load.
const GET_CUDA: &str = "`scripts/setup.sh --cuda` installs CUDA's libraries";

pub fn resolve(spec: &str) -> Result<Device> {
    resolve_why(spec).map(|(device, _)| device)
}

/// The device, and for `auto` on the CPU, why no CUDA device was taken.
pub fn resolve_why(spec: &str) -> Result<(Device, Option<String>)> {
    let spec = spec.trim().to_ascii_lowercase();
    let cuda = |index: usize| -> Result<Device> {
        load_cuda().map_err(|e| {
            anyhow::anyhow!("--device {spec}: {e} ({GET_CUDA}); or use --device cpu")
        })?;
        let count = Cuda::device_count().max(0) as usize;
        if !Cuda::is_available() || count == 0 {
            bail!(
                "--device {spec}: libtorch finds no CUDA device on this machine; use --device cpu (or auto)"
            );
        }
        if index >= count {
            bail!(
                "--device {spec}: this machine has {count} CUDA device(s), cuda:0 to cuda:{}",
                count - 1
            );
        }
        Ok(Device::Cuda(index))
    };
    let device = match spec.as_str() {
        "cpu" => Device::Cpu,
        "auto" => {
            return Ok(match load_cuda() {
                Err(e) => (Device::Cpu, Some(format!("{e} ({GET_CUDA})"))),
                Ok(()) if Cuda::is_available() => (Device::Cuda(0), None),
                Ok(()) => (Device::Cpu, Some("libtorch finds no CUDA device".into())),
            });
        }
        "cuda" => cuda(0)?,
        s => match s.strip_prefix("cuda:").map(str::parse::<usize>) {
            Some(Ok(i)) => cuda(i)?,
            _ => bail!("unknown device '{spec}': use cpu, cuda, cuda:N or auto"),
        },
    };
    Ok((device, None))
}

/// `cpu`, `cuda:0`: how the run record and the user name it.
pub fn name(d: Device) -> String {
    match d {
        Device::Cuda(i) => format!("cuda:{i}"),
        _ => "cpu".into(),
    }
}

/// Free bytes on the current CUDA device, from the CUDA runtime libtorch has
/// loaded (`None` without one). tch exposes no memory query of its own.
pub fn cuda_free_memory() -> Option<u64> {
    type MemGetInfo = unsafe extern "C" fn(*mut usize, *mut usize) -> i32;
    let this = libloading::os::unix::Library::this();
    // SAFETY: cudaMemGetInfo(size_t* free, size_t* total) -> cudaError_t,
    // looked up in the libraries already loaded.
    let f = unsafe { this.get::<MemGetInfo>(b"cudaMemGetInfo\0") }.ok()?;
    let (mut free, mut total) = (0usize, 0usize);
    // SAFETY: both pointers are valid for the call.
    (unsafe { f(&mut free, &mut total) } == 0).then_some(free as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_and_auto_always_resolve() {
        assert_eq!(resolve("cpu").unwrap(), Device::Cpu);
        assert_eq!(resolve("CPU").unwrap(), Device::Cpu);
        resolve("auto").unwrap();
    }

    #[test]
    fn unknown_devices_name_the_choices() {
        for bad in ["gpu", "cuda:x", "cuda:-1", ""] {
            let e = resolve(bad).unwrap_err().to_string();
            assert!(e.contains("use cpu, cuda, cuda:N or auto"), "{e}");
        }
    }

    #[test]
    fn cuda_without_a_device_is_a_clear_error() {
        if Cuda::is_available() {
            eprintln!("skipped: this machine has CUDA");
            return;
        }
        let e = resolve("cuda").unwrap_err().to_string();
        assert!(e.contains("no CUDA device"), "{e}");
        assert!(resolve("cuda:1").is_err());
    }
}
