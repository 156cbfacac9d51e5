//! Running the `binclass` binary from integration tests.
#![allow(dead_code)] // each test crate uses its own part

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub const BIN: &str = env!("CARGO_BIN_EXE_binclass");

/// Runs binclass in `dir`, with no thread setting inherited from the caller.
pub fn binclass(dir: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .current_dir(dir)
        .env_remove("BINCLASS_THREADS")
        .output()
        .expect("binclass runs")
}

/// Like [`binclass`], failing the test unless it succeeds.
pub fn ok(dir: &Path, args: &[&str]) -> Output {
    let out = binclass(dir, args);
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// `base` then `more`, as owned arguments.
pub fn with(base: &[&str], more: &[&str]) -> Vec<String> {
    base.iter().chain(more).map(|s| s.to_string()).collect()
}

/// Owned arguments as the `&str`s [`binclass`] takes.
pub fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

/// [`ok`] with owned arguments.
pub fn run(dir: &Path, args: Vec<String>) -> Output {
    ok(dir, &strs(&args))
}

/// A CSVLogger file's rows, every field a number.
pub fn rows(csv: &Path) -> Vec<Vec<f64>> {
    csv::Reader::from_path(csv)
        .unwrap_or_else(|e| panic!("{}: {e}", csv.display()))
        .records()
        .map(|r| r.unwrap().iter().map(|f| f.parse().unwrap()).collect())
        .collect()
}

/// Everything below `dir`, files and folders, sorted.
pub fn files_in(dir: &Path) -> Vec<PathBuf> {
    let mut all = vec![];
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            all.extend(files_in(&p));
        }
        all.push(p);
    }
    all.sort();
    all
}

/// The python of the project's environment (scripts/setup.sh) if it can
/// import `module`; else `None`, after saying the test is skipped.
pub fn project_python(module: &str) -> Option<PathBuf> {
    let py = project_python_for(module)?;
    if !imports(&py, module) {
        eprintln!(
            "skipped: {module} is not installed in the project environment (scripts/setup.sh)"
        );
        return None;
    }
    Some(py)
}

/// Like [`project_python`], for a module only `setup_flag` installs
/// (`scripts/setup.sh --keras`): the skip names that flag.
pub fn project_python_with(module: &str, setup_flag: &str) -> Option<PathBuf> {
    let py = project_python_for(module)?;
    if !imports(&py, module) {
        eprintln!("skipped: {module} is not installed (scripts/setup.sh {setup_flag})");
        return None;
    }
    Some(py)
}

/// The environment's python, found through the `.libtorch` link setup.sh makes.
fn project_python_for(module: &str) -> Option<PathBuf> {
    let found = std::fs::canonicalize(Path::new(env!("CARGO_MANIFEST_DIR")).join(".libtorch"))
        .ok()
        .and_then(|torch| {
            let venv = torch.to_str()?.split("/lib/python").next()?.to_string();
            Some(Path::new(&venv).join("bin/python"))
        });
    if found.is_none() {
        eprintln!("skipped: no project environment for {module} (run scripts/setup.sh)");
    }
    found
}

fn imports(py: &Path, module: &str) -> bool {
    Command::new(py)
        .args(["-c", &format!("import {module}")])
        .stderr(std::process::Stdio::null()) // the ImportError's traceback: the skip line says it
        .status()
        .is_ok_and(|s| s.success())
}

/// Starts binclass in `dir` without waiting for it.
pub fn spawn<S: AsRef<std::ffi::OsStr>>(dir: &Path, args: &[S]) -> std::process::Child {
    Command::new(BIN)
        .args(args)
        .current_dir(dir)
        .env_remove("BINCLASS_THREADS")
        .spawn()
        .expect("binclass starts")
}

/// Waits until `csv` holds `rows` rows (past its header), `child` still running.
pub fn wait_for_rows(child: &mut std::process::Child, csv: &Path, rows: usize) {
    let start = std::time::Instant::now();
    while epochs(csv).len() < rows {
        assert!(
            child.try_wait().unwrap().is_none(),
            "ended before {rows} rows"
        );
        assert!(
            start.elapsed() < std::time::Duration::from_secs(120),
            "no rows in 120 s"
        );
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
}

/// The epochs a CSV's rows hold, in file order (none for a missing file).
pub fn epochs(csv: &Path) -> Vec<String> {
    std::fs::read_to_string(csv)
        .unwrap_or_default()
        .lines()
        .skip(1)
        .map(|l| l.split(',').next().unwrap().to_string())
        .collect()
}

/// `args` fails in one line saying another binclass process writes what it
/// would write; that line.
pub fn refused_while_written(dir: &Path, args: &[&str]) -> String {
    let out = binclass(dir, args);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "{args:?} succeeded");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(
        err.contains("is being written by another binclass process"),
        "{err}"
    );
    err
}

/// Waits until `csv` holds `rows` rows (past its header), then sends
/// `signal` to `child`; its exit code.
pub fn stop_after_rows(
    child: &mut std::process::Child,
    csv: &Path,
    rows: usize,
    signal: i32,
) -> Option<i32> {
    wait_for_rows(child, csv, rows);
    // SAFETY: signals our own child.
    assert_eq!(unsafe { libc::kill(child.id() as i32, signal) }, 0);
    child.wait().unwrap().code()
}

/// The largest difference between two CSVLogger files' numbers, epoch by
/// epoch (both must have the same epochs).
pub fn max_difference(a: &Path, b: &Path) -> f64 {
    let (ra, rb) = (rows(a), rows(b));
    assert_eq!(
        ra.len(),
        rb.len(),
        "{} and {}: epochs",
        a.display(),
        b.display()
    );
    ra.iter()
        .zip(&rb)
        .flat_map(|(x, y)| x.iter().zip(y).map(|(p, q)| (p - q).abs()))
        .fold(0.0, f64::max)
}

/// A record without what differs between two runs of the same command
/// (the times it took, and where its CSV was).
fn record_sans_times(path: &Path) -> serde_json::Value {
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    for key in ["epoch_seconds", "total_seconds", "csv"] {
        v.as_object_mut().unwrap().remove(key);
    }
    if let Some(m) = v["final_metrics"].as_object_mut() {
        m.remove("seconds");
    }
    v
}

/// A safetensors file's metadata (parsed: its key order is not kept) and
/// its tensors' bytes.
fn model_parts(path: &Path) -> (serde_json::Value, Vec<u8>) {
    let bytes = std::fs::read(path).unwrap();
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
    (header, bytes[8 + n..].to_vec())
}

/// Two output folders hold the same files with the same results: CSVs and
/// summaries byte for byte, models' tensors bit for bit (and the same
/// metadata), records equal but for their timings and CSV path.
pub fn assert_same_outputs(a: &Path, b: &Path) {
    let rel = |d: &Path| -> Vec<PathBuf> {
        files_in(d)
            .into_iter()
            .filter(|p| p.is_file())
            .map(|p| p.strip_prefix(d).unwrap().to_path_buf())
            .collect()
    };
    let files = rel(a);
    assert_eq!(files, rel(b), "{} and {}: files", a.display(), b.display());
    for f in &files {
        let (x, y) = (a.join(f), b.join(f));
        let name = f.to_string_lossy();
        if name.ends_with(".csv.json") {
            assert_eq!(record_sans_times(&x), record_sans_times(&y), "{name}");
        } else if name.ends_with(".safetensors") {
            assert!(model_parts(&x) == model_parts(&y), "{name}");
        } else {
            assert!(
                std::fs::read(&x).unwrap() == std::fs::read(&y).unwrap(),
                "{name}"
            );
        }
    }
}

/// Rewrites the checkpoint (safetensors of flat float32 tensors) at `path`
/// with its tensors (name, bytes) and metadata as `edit` leaves them.
pub fn edit_checkpoint(
    path: &Path,
    edit: impl FnOnce(&mut Vec<(String, Vec<u8>)>, &mut std::collections::HashMap<String, String>),
) {
    let bytes = std::fs::read(path).unwrap();
    let (_, header) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
    let mut meta = header.metadata().clone().unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let mut tensors: Vec<(String, Vec<u8>)> = st
        .tensors()
        .into_iter()
        .map(|(name, view)| (name, view.data().to_vec()))
        .collect();
    edit(&mut tensors, &mut meta);
    // Sealed again, as binclass seals it: what is tested is the check that
    // the edit breaks, not the digest (tests/resume.rs tests that).
    tensors.sort();
    let sorted: std::collections::BTreeMap<String, String> = meta.clone().into_iter().collect();
    meta.insert(
        "digest".into(),
        binclass::checkpoint::digest(&sorted, &tensors),
    );
    let views = tensors.iter().map(|(name, data)| {
        let view = safetensors::tensor::TensorView::new(
            safetensors::Dtype::F32,
            vec![data.len() / 4],
            data,
        );
        (name.clone(), view.unwrap())
    });
    std::fs::write(path, safetensors::serialize(views, Some(meta)).unwrap()).unwrap();
}

/// Writes each of `names` in `dir`, as a kill between link and rename
/// would leave a file's replacement under a temporary name.
pub fn plant(dir: &Path, names: &[&str]) {
    for name in names {
        std::fs::write(dir.join(name), "a replacement").unwrap();
    }
}
