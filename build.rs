//! Links libtorch so that `target/*/binclass` runs without LD_LIBRARY_PATH:
//! an rpath to libtorch's lib folder.
//!
//! Only libtorch_cpu is linked. tch-rs documents `-ltorch` under
//! `--no-as-needed` to register the CUDA backend at start-up, but that loads
//! CUDA's libraries for every command, `--help` included; binclass loads
//! libtorch_cuda.so when a command asks for CUDA (`device::load_cuda`), from
//! the folder libtorch_cpu.so was loaded from (this one, unless
//! LD_LIBRARY_PATH names another, as on a machine the binary was copied to).
use std::path::{Path, PathBuf};

fn main() {
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
    println!("cargo:rerun-if-changed=Cargo.lock");
    let lib = std::env::var_os("DEP_TCH_LIBTORCH_LIB")
        .map(PathBuf::from)
        .expect("torch-sys did not report libtorch's lib folder: run scripts/setup.sh");
    // The real path, so the binary keeps working if the checkout moves.
    let lib = lib.canonicalize().unwrap_or(lib);
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux") {
        println!("cargo:rustc-link-arg=-Wl,-rpath={}", lib.display());
    }
    println!("cargo:rustc-env=BINCLASS_LIBTORCH_LIB={}", lib.display());
    println!(
        "cargo:rustc-env=BINCLASS_LIBTORCH_VERSION={}",
        libtorch_version(&lib)
    );
    println!("cargo:rustc-env=BINCLASS_TCH_VERSION={}", tch_version());
    // <venv>/lib/pythonX.Y/site-packages/torch/lib -> <venv>/bin/python, for
    // the figures `binclass reproduce` draws with scripts/plot.py.
    let lib_str = lib.to_string_lossy();
    let venv = lib_str.split("/lib/python").next().unwrap_or_default();
    println!("cargo:rustc-env=BINCLASS_VENV_PYTHON={venv}/bin/python");
    shim(&lib);
}

/// The C++ shim for what tch does not expose (src/shim/), compiled against
/// the headers of the same libtorch, as torch-sys compiles its own wrapper.
fn shim(lib: &Path) {
    let source = "src/shim/inference_mode.cpp";
    println!("cargo:rerun-if-changed={source}");
    cc::Build::new()
        .cpp(true)
        .file(source)
        .include(lib.join("../include"))
        .flag("-std=c++17")
        .flag("-D_GLIBCXX_USE_CXX11_ABI=1")
        .warnings(false)
        .compile("binclass_shim");
}

/// The version string of the torch wheel libtorch came from (e.g. `2.11.0+cu130`).
fn libtorch_version(lib: &Path) -> String {
    let version_py = lib.join("../version.py");
    println!("cargo:rerun-if-changed={}", version_py.display());
    std::fs::read_to_string(&version_py)
        .ok()
        .and_then(|text| {
            text.lines()
                .find_map(|l| l.strip_prefix("__version__ = "))
                .map(|v| v.trim().trim_matches(['\'', '"']).to_string())
        })
        .unwrap_or_else(|| "unknown".to_string())
}

/// The tch version Cargo.lock resolved, recorded in every run's JSON.
fn tch_version() -> String {
    let lock = std::fs::read_to_string("Cargo.lock").unwrap_or_default();
    let mut lines = lock.lines();
    while let Some(line) = lines.next() {
        if line == "name = \"tch\""
            && let Some(v) = lines.next().and_then(|l| l.strip_prefix("version = "))
        {
            return v.trim_matches('"').to_string();
        }
    }
    "unknown".to_string()
}
