//! `binclass sweep --resume`: a sweep killed or interrupted part-way and
//! resumed with the same command line ends with the CSVs, models and
//! summary of a sweep never stopped; a finished sweep is left as it is; a
//! folder that is not this sweep is a one-line error that changes nothing.

mod common;

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use common::{
    binclass, edit_checkpoint, epochs, files_in, ok, refused_while_written, spawn, stop_after_rows,
    strs, wait_for_rows,
};

/// Epochs long enough (batch size 1) for a kill to land inside the sweep.
fn sweep(out: &str, more: &[&str]) -> Vec<String> {
    let mut a: Vec<String> = [
        "sweep",
        "--seeds",
        "0..3",
        "--epochs",
        "12",
        "--samples",
        "600",
        "--batch-size",
        "1",
        "--verbose",
        "0",
        "--out-dir",
        out,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    a.extend(more.iter().map(|s| s.to_string()));
    a
}

/// A safetensors file as (header, tensor bytes): its metadata map's order
/// is a hash map's, so the header is compared as JSON.
fn model(bytes: &[u8]) -> (serde_json::Value, Vec<u8>) {
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
    (header, bytes[8 + n..].to_vec())
}

/// Asserts `a` holds the CSVs, models and summary of `b`, and no checkpoint.
fn assert_same_outputs(a: &Path, b: &Path) {
    let names = |d: &Path| -> Vec<String> {
        files_in(d)
            .iter()
            .filter(|p| !p.to_string_lossy().ends_with(".json"))
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect()
    };
    // Records hold timings: they differ between any two runs.
    assert_eq!(names(a), names(b), "the same files (and no checkpoint)");
    for name in names(b) {
        let (x, y) = (
            std::fs::read(a.join(&name)).unwrap(),
            std::fs::read(b.join(&name)).unwrap(),
        );
        if name.ends_with(".safetensors") {
            assert!(model(&x) == model(&y), "{name} differs");
        } else {
            assert!(x == y, "{name} differs");
        }
    }
}

fn checkpoints(dir: &Path) -> Vec<PathBuf> {
    files_in(dir)
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "ckpt"))
        .collect()
}

/// Kills (or interrupts) a sweep after `rows` rows of seed 0, resumes it,
/// and compares every CSV, model and the summary with an unbroken sweep's.
fn kill_and_resume(signal: i32, rows: usize, more: &[&str]) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    ok(dir, &strs(&sweep("full", more)));
    assert!(
        checkpoints(&dir.join("full")).is_empty(),
        "a finished sweep keeps no checkpoint"
    );
    let mut child = spawn(dir, &sweep("s", more));
    let code = stop_after_rows(&mut child, &dir.join("s/baseline-seed0.csv"), rows, signal);
    if signal == libc::SIGINT {
        assert_eq!(code, Some(130));
    }
    assert!(
        !dir.join("s/summary.csv").exists(),
        "stopped before the end"
    );
    assert!(
        !checkpoints(&dir.join("s")).is_empty(),
        "a checkpoint to resume from"
    );
    // What a kill between link and rename leaves (CI caught one): a
    // replacement of a file of the sweep's under a temporary name.
    let left = [
        ".batch-0-2.ckpt.JnpDdW.tmp",
        ".baseline-seed1.csv.json.a1B2c3.tmp",
    ];
    common::plant(&dir.join("s"), &left);
    ok(dir, &strs(&sweep("s", &[more, &["--resume"]].concat())));
    assert_same_outputs(&dir.join("s"), &dir.join("full"));
    let record: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("s/baseline-seed0.csv.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(record["finished"], true);
    assert_eq!(record["epochs_completed"], 12);
    assert!(
        record["resumed"].as_array().is_some_and(|r| !r.is_empty()),
        "{record}"
    );
}

#[test]
fn a_sweep_killed_part_way_resumes_to_the_same_outputs() {
    kill_and_resume(libc::SIGKILL, 4, &[]);
}

#[test]
fn a_sweep_interrupted_in_two_batches_resumes_to_the_same_outputs() {
    kill_and_resume(libc::SIGINT, 6, &["--chunk", "2"]);
}

fn snapshot(dir: &Path) -> Vec<(PathBuf, Vec<u8>, SystemTime)> {
    files_in(dir)
        .into_iter()
        .filter(|p| p.is_file())
        .map(|p| {
            let modified = std::fs::metadata(&p).unwrap().modified().unwrap();
            (p.clone(), std::fs::read(&p).unwrap(), modified)
        })
        .collect()
}

#[test]
fn resuming_a_finished_sweep_changes_nothing_and_bad_resumes_are_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let short = |out: &str, more: &[&str]| {
        let mut a = sweep(out, more);
        a[4] = "3".into(); // --epochs 3
        a
    };
    ok(dir, &strs(&short("done", &[])));
    let before = snapshot(&dir.join("done"));
    let out = ok(dir, &strs(&short("done", &["--resume"])));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("nothing to resume"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::create_dir(dir.join("empty")).unwrap();
    let bad: [(Vec<String>, &str); 5] = [
        (
            short("done", &["--resume", "--lr", "0.5"]),
            "done holds a sweep of other settings: its `settings[0].experiment.lr` is 0.03, this command's 0.5",
        ),
        (
            short("done", &["--resume", "--overwrite"]),
            "the argument '--resume' cannot be used with '--overwrite'",
        ),
        (
            short("empty", &["--resume"]),
            "empty holds no sweep to resume (no manifest.json); run it without --resume",
        ),
        (short("missing", &["--resume"]), "no such folder"),
        (
            short("done", &["--resume"])
                .into_iter()
                .filter(|a| a != "--out-dir" && a != "done")
                .collect(),
            "--resume needs --out-dir",
        ),
    ];
    for (args, says) in bad {
        let out = binclass(dir, &strs(&args));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} succeeded");
        assert!(err.contains(says), "{args:?}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{err}");
    }
    assert_eq!(snapshot(&dir.join("done")), before, "nothing rewritten");
    assert!(!dir.join("missing").exists());
    assert!(files_in(&dir.join("empty")).is_empty());
    // A stray checkpoint is refused (a later --resume must not continue it
    // over finished seeds), and so is --overwrite: with no manifest, the
    // folder is no sweep's, and its files are not binclass's to delete.
    std::fs::create_dir(dir.join("stray")).unwrap();
    std::fs::write(dir.join("stray/batch-0-63.ckpt"), b"old").unwrap();
    let out = binclass(dir, &strs(&short("stray", &[])));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("checkpoint of an unfinished sweep"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = binclass(dir, &strs(&short("stray", &["--overwrite"])));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("stray holds what no sweep wrote (stray/batch-0-63.ckpt)"),
        "{err}"
    );
    assert_eq!(
        std::fs::read(dir.join("stray/batch-0-63.ckpt")).unwrap(),
        b"old"
    );
}

#[test]
fn a_batch_checkpoint_that_would_cut_a_csv_off_its_rows_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let mut child = spawn(dir, &sweep("s", &[]));
    stop_after_rows(
        &mut child,
        &dir.join("s/baseline-seed0.csv"),
        4,
        libc::SIGKILL,
    );
    let ckpt = checkpoints(&dir.join("s")).pop().expect("a checkpoint");
    let before = snapshot(&dir.join("s"));
    edit_checkpoint(&ckpt, |_, meta| {
        meta.insert("epoch".into(), "0".into());
    });
    let csvs = |snap: Vec<(PathBuf, Vec<u8>, SystemTime)>| {
        snap.into_iter()
            .filter(|(p, _, _)| p.extension().is_some_and(|e| e == "csv"))
            .collect::<Vec<_>>()
    };
    let out = binclass(dir, &strs(&sweep("s", &["--resume"])));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(
        err.contains("says epoch 0's row ends, are not the header and 1 whole rows"),
        "{err}"
    );
    assert_eq!(csvs(snapshot(&dir.join("s"))), csvs(before), "CSVs changed");
}

#[test]
fn resuming_a_finished_shard_changes_nothing_and_says_so() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let mut args = sweep("part", &["--shard", "1/2"]);
    args[4] = "2".into(); // --epochs 2
    ok(dir, &strs(&args));
    let before = snapshot(&dir.join("part"));
    args.push("--resume".into());
    let out = ok(dir, &strs(&args));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("part: every seed of this sweep has finished; nothing to resume"),
        "{err}"
    );
    assert_eq!(snapshot(&dir.join("part")), before, "nothing rewritten");
}

/// A shard killed after its last seed but before its manifest says it
/// finished (the last thing it writes) is not finished: `--resume` marks
/// it, as the uninterrupted shard did, and `merge` can then take the folder.
#[test]
fn resuming_a_shard_killed_before_its_manifest_says_finished_marks_it() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let mut args = sweep("part", &["--shard", "1/2"]);
    args[4] = "2".into(); // --epochs 2
    ok(dir, &strs(&args));
    let manifest = dir.join("part/manifest.json");
    let whole = std::fs::read_to_string(&manifest).unwrap();
    std::fs::write(
        &manifest,
        whole.replace("\"finished\": true", "\"finished\": false"),
    )
    .unwrap();
    let merge = ["merge", "part", "--out", "m"];
    let out = binclass(dir, &merge);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("holds shard 1/2 unfinished"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    args.push("--resume".into());
    ok(dir, &strs(&args));
    assert_eq!(std::fs::read_to_string(&manifest).unwrap(), whole);
}

#[test]
fn a_sweep_still_being_written_is_neither_resumed_nor_replaced_under_it() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let csv = dir.join("s/baseline-seed0.csv");
    // Long enough to be running while the others start.
    let long = |more: &[&str]| {
        let mut a = sweep("s", more);
        let at = a.iter().position(|x| x == "--epochs").unwrap();
        a[at + 1] = "150".into();
        a
    };
    let mut first = spawn(dir, &long(&[]));
    wait_for_rows(&mut first, &csv, 2);
    refused_while_written(dir, &strs(&long(&["--overwrite"])));
    refused_while_written(dir, &strs(&long(&["--resume"])));
    // Nor is one of its seeds' files, by a command of another kind.
    let seed0 = "s/baseline-seed0.csv";
    let train = [
        "train",
        "--epochs",
        "1",
        "-v",
        "0",
        "--out",
        seed0,
        "--overwrite",
    ];
    refused_while_written(dir, &train);
    refused_while_written(
        dir,
        &["train", "--epochs", "1", "-v", "0", "--out", "s/x.csv"],
    );
    refused_while_written(dir, &["resume", seed0, "-v", "0"]);
    let predict = [
        "predict",
        "--model",
        "m.safetensors",
        "--out",
        seed0,
        "--overwrite",
    ];
    ok(
        dir,
        &[
            "train",
            "--epochs",
            "1",
            "-v",
            "0",
            "--samples",
            "300",
            "--out",
            "m.csv",
        ],
    );
    refused_while_written(dir, &predict);
    assert!(
        first.try_wait().unwrap().is_none(),
        "the sweep ended too soon"
    );
    // SAFETY: signals our own child.
    assert_eq!(unsafe { libc::kill(first.id() as i32, libc::SIGKILL) }, 0);
    first.wait().unwrap();
    // Once it is dead the sweep resumes, but only once at a time.
    let rows = epochs(&csv).len();
    let mut resume = spawn(dir, &long(&["--resume"]));
    wait_for_rows(&mut resume, &csv, rows + 2);
    refused_while_written(dir, &strs(&long(&["--resume"])));
    assert!(resume.wait().unwrap().success());
    let want: Vec<String> = (0..150).map(|e| e.to_string()).collect();
    for seed in 0..3 {
        let csv = dir.join(format!("s/baseline-seed{seed}.csv"));
        assert_eq!(epochs(&csv), want, "seed {seed}: each epoch once, in order");
    }
}

/// A grid's folder, which `--resume` cannot continue, is refused with the
/// one way forward; a plain sweep's with both.
#[test]
fn a_folder_refused_without_overwrite_names_only_what_would_take_it() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let small = [
        "--seeds",
        "0..2",
        "--epochs",
        "1",
        "--samples",
        "300",
        "-v",
        "0",
    ];
    for (out, vary) in [("g", &["--vary", "lr=0.01,0.03"][..]), ("s", &[][..])] {
        let args = [&["sweep", "--out-dir", out][..], &small, vary].concat();
        ok(d, &args);
        let again = binclass(d, &args);
        let err = String::from_utf8_lossy(&again.stderr);
        assert!(!again.status.success());
        assert_eq!(err.contains("--resume"), vary.is_empty(), "{err}");
        assert!(err.contains("--overwrite to replace it"), "{err}");
    }
}

/// A sweep stopped before its first record (its folder holds only its
/// manifest) is resumed from nothing, as the refusal of a plain rerun
/// says, and ends as an uninterrupted sweep does.
#[test]
fn a_sweep_stopped_before_its_first_record_resumes_from_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let args = [
        "sweep",
        "--seeds",
        "0..3",
        "--epochs",
        "2",
        "--samples",
        "300",
        "-v",
        "0",
    ];
    ok(d, &[&args[..], &["--out-dir", "whole"]].concat());
    ok(d, &[&args[..], &["--out-dir", "s"]].concat());
    let mut manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(d.join("s/manifest.json")).unwrap()).unwrap();
    manifest["finished"] = false.into();
    std::fs::remove_dir_all(d.join("s")).unwrap();
    std::fs::create_dir(d.join("s")).unwrap();
    std::fs::write(d.join("s/manifest.json"), manifest.to_string()).unwrap();
    let again = binclass(d, &[&args[..], &["--out-dir", "s"]].concat());
    let err = String::from_utf8_lossy(&again.stderr);
    assert!(err.contains("pass --resume to continue it"), "{err}");
    ok(d, &[&args[..], &["--out-dir", "s", "--resume"]].concat());
    for seed in 0..3 {
        let name = format!("baseline-seed{seed}.csv");
        assert_eq!(
            std::fs::read(d.join("s").join(&name)).unwrap(),
            std::fs::read(d.join("whole").join(&name)).unwrap(),
            "{name}"
        );
    }
}
