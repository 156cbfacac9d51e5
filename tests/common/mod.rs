//! Running the `binclass` binary from integration tests.
#![allow(dead_code)] // each test crate uses its own part

use std::path::Path;
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
