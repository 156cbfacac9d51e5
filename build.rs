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
    embed();
}

/// What `reproduce` and `compare` read beyond their own folders, built into
/// the binary (src/embedded.rs) so that it runs with its source tree gone:
/// the figure scripts and the Keras reference, whose source of truth stays
/// in the repository.
const EMBEDDED: [&str; 6] = [
    "reference/keras",
    "scripts/plot.py",
    "scripts/plot_boundary.py",
    "scripts/plot_grid.py",
    "scripts/figures.py",
    "scripts/binclass_files.py",
];

fn embed() {
    let root = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets it"));
    let mut files = vec![];
    for entry in EMBEDDED {
        // A folder: cargo reruns this when any file under it changes.
        println!("cargo:rerun-if-changed={entry}");
        collect(&root, Path::new(entry), &mut files);
    }
    files.sort();
    let mut rs = String::from("pub static FILES: &[(&str, &[u8])] = &[\n");
    for rel in &files {
        let abs = root.join(rel);
        rs += &format!("    ({:?}, include_bytes!({:?})),\n", rel, abs);
    }
    rs += "];\n";
    // What was embedded, as listed here: the test that the copy equals the
    // repository walks these, not a list of its own.
    rs += &format!("pub static SOURCES: &[&str] = &{EMBEDDED:?};\n");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets it"));
    std::fs::write(out.join("embedded.rs"), rs).expect("OUT_DIR is writable");
}

/// The files at `rel` (a file, or every file under a folder), relative to `root`.
fn collect(root: &Path, rel: &Path, files: &mut Vec<String>) {
    let abs = root.join(rel);
    if abs.is_dir() {
        let entries = std::fs::read_dir(&abs).unwrap_or_else(|e| panic!("{}: {e}", abs.display()));
        for e in entries {
            let name = e.expect("a readable folder").file_name();
            collect(root, &rel.join(name), files);
        }
    } else {
        let rel = rel.to_str().expect("embedded paths are UTF-8");
        files.push(rel.to_string());
    }
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
