//! `--device cpu|cuda|cuda:N|auto`, checked against what libtorch can see
//! before any file is written.

use anyhow::{Result, bail};
use std::ffi::{CStr, CString, OsStr};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};
use tch::{Cuda, Device};

/// libtorch's CUDA backend, loaded only when a command asks for CUDA: its
/// libraries take most of a start-up (measured: `--help` 1.3 s and 545 MB
/// with them, 0.55 s and 149 MB without). libtorch looks its CUDA hooks up
/// once, on first use, so this must come before any CUDA query.
pub fn load_cuda() -> Result<()> {
    static LOADED: std::sync::OnceLock<Result<(), String>> = std::sync::OnceLock::new();
    LOADED
        .get_or_init(|| {
            let dir = libtorch_dir();
            let lib = CString::new(dir.join("libtorch_cuda.so").into_os_string().into_vec())
                .map_err(|_| format!("{} holds a NUL byte", dir.display()))?;
            // SAFETY: a NUL-terminated path; the library stays loaded for the
            // process's life, as if it had been linked.
            let handle = unsafe { libc::dlopen(lib.as_ptr(), libc::RTLD_NOW | libc::RTLD_GLOBAL) };
            if handle.is_null() {
                // SAFETY: dlerror returns a message for the failure just seen.
                let why = unsafe { CStr::from_ptr(libc::dlerror()) };
                return Err(why.to_string_lossy().into_owned());
            }
            Ok(())
        })
        .clone()
        .map_err(|why| anyhow::anyhow!("cannot load libtorch's CUDA backend: {why}"))
}

/// The lib folder of the libtorch this process runs on: where the dynamic
/// loader found libtorch_cpu.so. That is the build's folder (the rpath)
/// unless LD_LIBRARY_PATH points elsewhere, as on a machine the binary was
/// copied to; the CUDA backend must come from the same libtorch.
pub fn libtorch_dir() -> PathBuf {
    unsafe extern "C" fn visit(
        info: *mut libc::dl_phdr_info,
        _size: libc::size_t,
        found: *mut libc::c_void,
    ) -> libc::c_int {
        // SAFETY: the loader passes a valid entry; its name is null or a
        // NUL-terminated path, and `found` is the Option given below.
        let (name, found) = unsafe { ((*info).dlpi_name, &mut *found.cast::<Option<PathBuf>>()) };
        if name.is_null() {
            return 0;
        }
        // SAFETY: checked non-null above.
        let path = Path::new(OsStr::from_bytes(
            unsafe { CStr::from_ptr(name) }.to_bytes(),
        ));
        if path.file_name() != Some(OsStr::new("libtorch_cpu.so")) {
            return 0;
        }
        *found = path.parent().map(Path::to_path_buf);
        1
    }
    let mut found: Option<PathBuf> = None;
    // SAFETY: `visit` only reads the entries and writes `found`, which
    // outlives the call.
    unsafe { libc::dl_iterate_phdr(Some(visit), (&raw mut found).cast()) };
    found.unwrap_or_else(|| PathBuf::from(env!("BINCLASS_LIBTORCH_LIB")))
}

pub fn resolve(spec: &str) -> Result<Device> {
    let spec = spec.trim().to_ascii_lowercase();
    let cuda = |index: usize| -> Result<Device> {
        load_cuda().map_err(|e| anyhow::anyhow!("--device {spec}: {e}; use --device cpu"))?;
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
    match spec.as_str() {
        "cpu" => Ok(Device::Cpu),
        "auto" => Ok(match load_cuda() {
            Ok(()) => Device::cuda_if_available(),
            Err(_) => Device::Cpu,
        }),
        "cuda" => cuda(0),
        s => match s.strip_prefix("cuda:").map(str::parse::<usize>) {
            Some(Ok(i)) => cuda(i),
            _ => bail!("unknown device '{spec}': use cpu, cuda, cuda:N or auto"),
        },
    }
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
    // SAFETY: looks up a symbol by name in the libraries already loaded.
    let sym = unsafe { libc::dlsym(libc::RTLD_DEFAULT, c"cudaMemGetInfo".as_ptr()) };
    if sym.is_null() {
        return None;
    }
    // SAFETY: cudaMemGetInfo(size_t* free, size_t* total) -> cudaError_t.
    let f: MemGetInfo = unsafe { std::mem::transmute::<*mut libc::c_void, MemGetInfo>(sym) };
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
