//! `binclass resume`: a `train` run killed (or interrupted) at any epoch and
//! resumed ends with the CSV and the model of a run never stopped, and every
//! run that cannot be resumed is a one-line error that changes nothing.

mod common;

use std::path::{Path, PathBuf};

use common::{
    binclass, edit_checkpoint, epochs, files_in, ok, refused_while_written, spawn, stop_after_rows,
    wait_for_rows,
};

/// Small, but with epochs long enough (tens of milliseconds) for a kill to
/// land inside the run.
const SETTINGS: &[&str] = &["--samples", "600", "--epochs", "12", "--batch-size", "1"];

fn train_args<'a>(optimizer: &'a str, out: &'a str) -> Vec<&'a str> {
    let mut a = vec![
        "train",
        "--seed",
        "3",
        "--optimizer",
        optimizer,
        "--out",
        out,
        "-v",
        "0",
    ];
    a.extend_from_slice(SETTINGS);
    a
}

fn record(csv: &Path) -> serde_json::Value {
    let mut p = csv.as_os_str().to_owned();
    p.push(".json");
    serde_json::from_str(&std::fs::read_to_string(PathBuf::from(p)).unwrap()).unwrap()
}

fn ckpt(csv: &Path) -> PathBuf {
    csv.with_extension("ckpt")
}

/// The uninterrupted run's CSV and model bytes.
fn uninterrupted(dir: &Path, optimizer: &str) -> (Vec<u8>, Vec<u8>) {
    ok(dir, &train_args(optimizer, "full.csv"));
    assert!(
        !ckpt(&dir.join("full.csv")).exists(),
        "a finished run keeps no checkpoint"
    );
    (
        std::fs::read(dir.join("full.csv")).unwrap(),
        std::fs::read(dir.join("full.safetensors")).unwrap(),
    )
}

/// Model files hold the same tensors (their metadata may differ only in
/// nothing that matters here: both record 12 epochs).
fn same_model(a: &[u8], b: &[u8]) {
    let (a, b) = (
        safetensors::SafeTensors::deserialize(a).unwrap(),
        safetensors::SafeTensors::deserialize(b).unwrap(),
    );
    let mut names = a.names();
    names.sort();
    assert_eq!(names, {
        let mut n = b.names();
        n.sort();
        n
    });
    for n in names {
        assert_eq!(
            a.tensor(n).unwrap().data(),
            b.tensor(n).unwrap().data(),
            "{n}"
        );
    }
}

fn killed_at_several_epochs_resumes_to_the_uninterrupted_csv(optimizer: &str, signal: i32) {
    let dir = tempfile::tempdir().unwrap();
    let (full_csv, full_model) = uninterrupted(dir.path(), optimizer);
    for rows in [2, 5, 9] {
        let out = format!("k{rows}.csv");
        let csv = dir.path().join(&out);
        let mut child = spawn(dir.path(), &train_args(optimizer, &out));
        stop_after_rows(&mut child, &csv, rows, signal);
        let r = record(&csv);
        assert_eq!(
            r["finished"], false,
            "the kill after {rows} rows came too late"
        );
        assert!(ckpt(&csv).exists());
        ok(dir.path(), &["resume", &out, "-v", "0"]);
        assert_eq!(
            std::fs::read(&csv).unwrap(),
            full_csv,
            "killed after {rows} rows"
        );
        let r = record(&csv);
        assert_eq!(r["finished"], true);
        assert_eq!(r["epochs_completed"], 12);
        assert_eq!(r["epoch_seconds"].as_array().unwrap().len(), 12);
        let resumed = r["resumed"].as_array().unwrap();
        assert_eq!(resumed.len(), 1);
        // From the epoch after the last checkpoint: a kill between a row and
        // its checkpoint leaves the checkpoint one epoch behind the CSV.
        assert!(
            resumed[0].as_i64().unwrap() >= rows as i64 - 1,
            "{resumed:?}"
        );
        assert_eq!(r["stopped"], serde_json::Value::Null);
        same_model(
            &std::fs::read(csv.with_extension("safetensors")).unwrap(),
            &full_model,
        );
        assert!(
            !ckpt(&csv).exists(),
            "the finished run's checkpoint is removed"
        );
    }
}

#[test]
fn adam_run_killed_at_several_epochs_resumes_byte_identical() {
    killed_at_several_epochs_resumes_to_the_uninterrupted_csv("adam", libc::SIGKILL);
}

#[test]
fn keras_adam_run_killed_at_several_epochs_resumes_byte_identical() {
    killed_at_several_epochs_resumes_to_the_uninterrupted_csv("keras-adam", libc::SIGKILL);
}

#[test]
fn run_interrupted_by_ctrl_c_resumes_byte_identical() {
    killed_at_several_epochs_resumes_to_the_uninterrupted_csv("adam", libc::SIGINT);
}

#[test]
fn a_partial_row_after_the_checkpoint_is_trimmed() {
    let dir = tempfile::tempdir().unwrap();
    let (full_csv, _) = uninterrupted(dir.path(), "adam");
    let csv = dir.path().join("p.csv");
    let mut child = spawn(dir.path(), &train_args("adam", "p.csv"));
    stop_after_rows(&mut child, &csv, 4, libc::SIGKILL);
    // A row torn by the kill, and one the checkpoint never saw.
    let mut f = std::fs::OpenOptions::new().append(true).open(&csv).unwrap();
    std::io::Write::write_all(&mut f, b"7,0.1,0.5,0.2,0.").unwrap();
    drop(f);
    ok(dir.path(), &["resume", "p.csv", "-v", "0"]);
    assert_eq!(std::fs::read(&csv).unwrap(), full_csv);
}

/// A one-line error, and every file in `dir` as it was.
fn refused(dir: &Path, args: &[&str], says: &str) {
    let before: Vec<(PathBuf, Vec<u8>)> = files_in(dir)
        .into_iter()
        .filter(|p| p.is_file())
        .map(|p| (p.clone(), std::fs::read(&p).unwrap()))
        .collect();
    let out = binclass(dir, args);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{args:?} succeeded");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(err.contains(says), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    let after: Vec<(PathBuf, Vec<u8>)> = files_in(dir)
        .into_iter()
        .filter(|p| p.is_file())
        .map(|p| (p.clone(), std::fs::read(&p).unwrap()))
        .collect();
    assert!(before == after, "{args:?} changed files");
}

/// A run killed after 3 rows, in `dir` as `k.csv`.
fn killed_run(dir: &Path) -> PathBuf {
    let csv = dir.join("k.csv");
    let mut child = spawn(dir, &train_args("adam", "k.csv"));
    stop_after_rows(&mut child, &csv, 3, libc::SIGKILL);
    csv
}

fn edit_record(csv: &Path, edit: impl FnOnce(&mut serde_json::Value)) {
    let mut r = record(csv);
    edit(&mut r);
    let mut p = csv.as_os_str().to_owned();
    p.push(".json");
    std::fs::write(PathBuf::from(p), serde_json::to_string_pretty(&r).unwrap()).unwrap();
}

#[test]
fn resuming_a_finished_run_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    uninterrupted(dir.path(), "adam");
    refused(
        dir.path(),
        &["resume", "full.csv"],
        "the run finished (12 epochs)",
    );
}

#[test]
fn resuming_a_run_without_a_checkpoint_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let csv = killed_run(dir.path());
    std::fs::remove_file(ckpt(&csv)).unwrap();
    refused(dir.path(), &["resume", "k.csv"], "no checkpoint");
    refused(
        dir.path(),
        &["resume", "none.csv"],
        "none.csv: no such file; give the CSV of the run to resume",
    );
    std::fs::create_dir(dir.path().join("d")).unwrap();
    refused(
        dir.path(),
        &["resume", "d"],
        "d is a folder; give a run's CSV (to continue a sweep: binclass sweep … --out-dir d --resume)",
    );
}

#[test]
fn a_checkpoint_that_does_not_match_the_record_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let csv = killed_run(dir.path());
    let original = record(&csv);
    edit_record(&csv, |r| r["seed"] = 4.into());
    refused(dir.path(), &["resume", "k.csv"], "of seed 3, but");
    edit_record(&csv, |r| *r = original.clone());
    edit_record(&csv, |r| r["experiment"]["lr"] = 0.5.into());
    refused(
        dir.path(),
        &["resume", "k.csv"],
        "differ in the experiment's `lr`",
    );
    edit_record(&csv, |r| *r = original.clone());
    edit_record(&csv, |r| r["device"] = "cuda:0".into());
    refused(
        dir.path(),
        &["resume", "k.csv"],
        "was written on cpu, but k.csv.json says cuda:0",
    );
    edit_record(&csv, |r| *r = original.clone());
    edit_record(&csv, |r| r["epochs_completed"] = 0.into());
    refused(dir.path(), &["resume", "k.csv"], "counts only 0 epochs");
}

#[test]
fn a_record_whose_thread_count_train_would_refuse_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let csv = killed_run(dir.path());
    for threads in [0, 100_000] {
        edit_record(&csv, |r| r["threads"] = threads.into());
        refused(
            dir.path(),
            &["resume", "k.csv"],
            &format!(
                "k.csv.json: the run's thread count: --threads must be a whole number in 1..=1024, got {threads}"
            ),
        );
    }
}

#[test]
fn a_csv_shorter_than_the_checkpoint_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let csv = killed_run(dir.path());
    let text = std::fs::read(&csv).unwrap();
    std::fs::write(&csv, &text[..text.len() / 2]).unwrap();
    refused(dir.path(), &["resume", "k.csv"], "shorter than the");
}

#[test]
fn a_checkpoint_of_another_libtorch_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let csv = killed_run(dir.path());
    edit_checkpoint(&ckpt(&csv), |_, meta| {
        meta.insert("libtorch_version".into(), "1.0.0".into());
    });
    refused(
        dir.path(),
        &["resume", "k.csv"],
        "was written with libtorch",
    );
}

/// What a checkpoint claims is sealed by its digest, and the CSV rows it
/// counts by their CRC: an edit of either is refused, never resumed over.
#[test]
fn a_tampered_checkpoint_or_an_edited_earlier_row_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let csv = killed_run(dir.path());
    let original = std::fs::read(ckpt(&csv)).unwrap();
    let mut changed = original.clone();
    // The last byte is a parameter's: flip a bit of its value.
    *changed.last_mut().unwrap() ^= 1;
    std::fs::write(ckpt(&csv), &changed).unwrap();
    refused(
        dir.path(),
        &["resume", "k.csv"],
        "do not match its digest: it was changed or damaged",
    );
    std::fs::write(ckpt(&csv), &original).unwrap();
    // Epoch 0's loss, one digit changed, the row's length kept.
    let text = std::fs::read_to_string(&csv).unwrap();
    let row = text.lines().nth(1).unwrap().to_string();
    let digit = row.rfind(|c: char| c.is_ascii_digit()).unwrap();
    let mut edited = row.clone();
    let d = if &row[digit..=digit] == "1" { "2" } else { "1" };
    edited.replace_range(digit..=digit, d);
    std::fs::write(&csv, text.replacen(&row, &edited, 1)).unwrap();
    refused(
        dir.path(),
        &["resume", "k.csv"],
        "are not those k.ckpt recorded: an earlier row was changed",
    );
}

#[test]
fn a_corrupt_checkpoint_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let csv = killed_run(dir.path());
    std::fs::write(ckpt(&csv), b"not,a,checkpoint\n").unwrap();
    refused(dir.path(), &["resume", "k.csv"], "not a safetensors file");
}

#[test]
fn a_checkpoint_whose_parameters_are_not_its_networks_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let csv = killed_run(dir.path());
    edit_checkpoint(&ckpt(&csv), |tensors, _| {
        for (name, data) in tensors {
            if name == "params" {
                data.truncate(5 * 4);
            }
        }
    });
    refused(
        dir.path(),
        &["resume", "k.csv"],
        "k.ckpt holds 5 parameters, its runs have 37",
    );
}

#[test]
fn a_checkpoint_that_would_cut_the_csv_off_a_row_boundary_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let csv = killed_run(dir.path());
    let original = std::fs::read(ckpt(&csv)).unwrap();
    // Mid-header, and a count of rows the CSV's length does not end.
    for (key, value, says) in [
        ("csv_len", "5", "its first 5 bytes"),
        ("epoch", "0", "are not the header and 1 whole rows"),
    ] {
        std::fs::write(ckpt(&csv), &original).unwrap();
        edit_checkpoint(&ckpt(&csv), |_, meta| {
            let mut runs: serde_json::Value = serde_json::from_str(&meta["runs"]).unwrap();
            match key {
                "csv_len" => runs[0]["csv_len"] = 5.into(),
                _ => {
                    meta.insert(key.into(), value.into());
                }
            }
            meta.insert("runs".into(), runs.to_string());
        });
        refused(dir.path(), &["resume", "k.csv"], says);
    }
}

#[test]
fn a_run_still_being_written_is_neither_resumed_nor_replaced_under_it() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("w.csv");
    // Long enough (about 9 s) to be running while the others start.
    let mut args = train_args("adam", "w.csv");
    let at = args.iter().position(|a| *a == "--epochs").unwrap();
    args[at + 1] = "150";
    let mut train = spawn(dir.path(), &args);
    wait_for_rows(&mut train, &csv, 2);
    refused_while_written(dir.path(), &["resume", "w.csv", "-v", "0"]);
    let mut again = args.clone();
    again.push("--overwrite");
    refused_while_written(dir.path(), &again);
    assert!(
        train.try_wait().unwrap().is_none(),
        "the run ended too soon"
    );
    // SAFETY: signals our own child.
    assert_eq!(unsafe { libc::kill(train.id() as i32, libc::SIGKILL) }, 0);
    train.wait().unwrap();
    // Once it is dead its run resumes, but only once at a time.
    let rows = epochs(&csv).len();
    let mut resume = spawn(dir.path(), &["resume", "w.csv", "-v", "0"]);
    wait_for_rows(&mut resume, &csv, rows + 2);
    refused_while_written(dir.path(), &["resume", "w.csv", "-v", "0"]);
    assert!(resume.wait().unwrap().success());
    let want: Vec<String> = (0..150).map(|e| e.to_string()).collect();
    assert_eq!(epochs(&csv), want, "each epoch once, in order");
}

#[test]
fn a_run_whose_model_was_not_saved_resumes_to_save_it() {
    let dir = tempfile::tempdir().unwrap();
    let (full_csv, full_model) = uninterrupted(dir.path(), "adam");
    let csv = dir.path().join("u.csv");
    let model = dir.path().join("u.safetensors");
    // A folder in the model's place (checked free at the start) fails its
    // save as a full disk would: after the record says finished.
    let mut child = spawn(dir.path(), &train_args("adam", "u.csv"));
    while epochs(&csv).is_empty() {
        assert!(child.try_wait().unwrap().is_none(), "ended before a row");
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    std::fs::create_dir(&model).unwrap();
    assert!(!child.wait().unwrap().success());
    assert_eq!(record(&csv)["finished"], true);
    std::fs::remove_dir(&model).unwrap();
    ok(dir.path(), &["resume", "u.csv", "-v", "0"]);
    assert_eq!(std::fs::read(&csv).unwrap(), full_csv);
    same_model(&std::fs::read(&model).unwrap(), &full_model);
    assert!(
        !ckpt(&csv).exists(),
        "the checkpoint goes once the model is saved"
    );
}

/// A killed run copied under another name and resumed there is a run of
/// its own: its record names its own CSV, the original's untouched.
#[test]
fn a_copy_of_a_killed_run_resumed_names_its_own_csv() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let csv = killed_run(d);
    for ext in ["csv", "csv.json", "ckpt"] {
        std::fs::copy(csv.with_extension(ext), d.join(format!("copy.{ext}"))).unwrap();
    }
    ok(d, &["resume", "copy.csv", "-v", "0"]);
    assert_eq!(record(&d.join("copy.csv"))["csv"], "copy.csv");
    assert_eq!(record(&csv)["csv"], "k.csv");
}

/// How a run ended is data in its record (`ended`); the sentence beside it
/// (`stopped`) is for people: edited by hand, it changes nothing.
#[test]
fn editing_a_records_sentence_by_hand_changes_no_behaviour() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // Diverged: not resumable, though its sentence now says interrupted.
    let nan = "train --hidden-layers 0 --scale 3e38 --epochs 3 --samples 300 -v 0 --out nan.csv";
    let nan: Vec<&str> = nan.split(' ').collect();
    assert!(!binclass(d, &nan).status.success());
    assert_eq!(record(&d.join("nan.csv"))["ended"]["kind"], "diverged");
    edit_record(&d.join("nan.csv"), |r| {
        r["stopped"] = "interrupted during epoch 1".into()
    });
    refused(d, &["resume", "nan.csv"], "the run ended on its own");
    // Interrupted: resumable, though its sentence now says it diverged.
    let csv = d.join("i.csv");
    let mut child = spawn(d, &train_args("adam", "i.csv"));
    stop_after_rows(&mut child, &csv, 3, libc::SIGINT);
    assert_eq!(record(&csv)["ended"]["kind"], "interrupted");
    edit_record(&csv, |r| {
        r["stopped"] = "loss became NaN or infinite in epoch 2".into()
    });
    ok(d, &["resume", "i.csv", "-v", "0"]);
    assert_eq!(record(&csv)["ended"]["kind"], "finished");
    assert_eq!(epochs(&csv).len(), 12);
}
