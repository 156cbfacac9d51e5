//! What a run promises when its surroundings fail: a closed or full stderr,
//! too little memory, a full disk, a signal, a kill at any moment, another
//! run writing beside it.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

mod common;
use common::{BIN, binclass, ok, strs, wait_for_rows, with};

const SMALL: &[&str] = &["--samples", "600", "--verbose", "0"];

fn cmd(dir: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(BIN);
    c.args(args).current_dir(dir).env_remove("BINCLASS_THREADS");
    c
}

/// Every file below `dir`.
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = vec![];
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p.clone());
            }
            out.push(p);
        }
    }
    out.sort();
    out
}

/// Files named as temporaries are: binclass's `.<name>.<6 random>.tmp`,
/// or `.<name>.<6 random>` (as the atomic-write-file crate names them: a
/// kill of a build that used it left one, so this looks for both).
fn temporaries(dir: &Path) -> Vec<PathBuf> {
    let temporary = |name: &str| {
        let random = name
            .trim_end_matches(".tmp")
            .rsplit('.')
            .next()
            .unwrap_or_default();
        name.starts_with('.')
            && random.len() == 6
            && random.bytes().all(|b| b.is_ascii_alphanumeric())
    };
    files(dir)
        .into_iter()
        .filter(|p| temporary(&p.file_name().unwrap().to_string_lossy()))
        .collect()
}

/// A CSV of whole rows: the header, then rows of five fields, each line ended.
fn assert_whole_rows(csv: &Path) -> usize {
    let text = std::fs::read_to_string(csv).unwrap();
    assert!(
        text.starts_with("epoch,binary_accuracy,loss,val_binary_accuracy,val_loss\r\n"),
        "{}: {text:?}",
        csv.display()
    );
    assert!(text.ends_with("\r\n"), "{} ends mid-row", csv.display());
    for line in text.lines() {
        assert_eq!(line.split(',').count(), 5, "{}: {line:?}", csv.display());
    }
    text.lines().count() - 1
}

fn record(csv: &Path) -> serde_json::Value {
    let mut p = csv.as_os_str().to_owned();
    p.push(".json");
    serde_json::from_str(&std::fs::read_to_string(PathBuf::from(p)).unwrap()).unwrap()
}

#[test]
fn a_closed_stderr_drops_progress_and_the_run_completes() {
    let dir = tempfile::tempdir().unwrap();
    // `2>&1 | head -1`: the reader goes away after one line.
    let mut child = cmd(
        dir.path(),
        &[
            "train",
            "--epochs",
            "50",
            "--verbose",
            "2",
            "--out",
            "a.csv",
        ],
    )
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    let mut first = String::new();
    BufReader::new(child.stderr.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    assert_eq!(first.trim(), "Epoch 1/50");
    let status = child.wait().unwrap();
    assert!(status.success(), "{status:?}");
    assert_eq!(assert_whole_rows(&dir.path().join("a.csv")), 50);

    // `2>/dev/full`, for train and for a sweep.
    for args in [
        with(
            &["train", "--epochs", "3", "--verbose", "2", "--out", "b.csv"],
            &[],
        ),
        with(
            &[
                "sweep",
                "--seeds",
                "0..2",
                "--epochs",
                "3",
                "--out-dir",
                "s",
            ],
            &[],
        ),
    ] {
        let full = std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .unwrap();
        let status = cmd(dir.path(), &strs(&args)).stderr(full).status().unwrap();
        assert!(status.success(), "{args:?}: {status:?}");
    }
    assert_eq!(assert_whole_rows(&dir.path().join("b.csv")), 3);
    assert_eq!(
        assert_whole_rows(&dir.path().join("s/baseline-seed1.csv")),
        3
    );
    // A finished sweep whose stdout and stderr readers are gone (`| head -0`).
    let mut child = cmd(
        dir.path(),
        &[
            "sweep",
            "--seeds",
            "0..2",
            "--epochs",
            "2",
            "--out-dir",
            "t",
        ],
    )
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    drop(child.stdout.take());
    drop(child.stderr.take());
    assert!(child.wait().unwrap().success());
}

fn assert_one_line_error(out: &Output, says: &str) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.starts_with("error: ") && err.contains(says), "{err}");
    assert!(
        !err.contains("please report") && !err.contains("frame #"),
        "{err}"
    );
}

#[test]
fn a_run_too_large_for_memory_is_refused_in_one_line_before_any_file() {
    let dir = tempfile::tempdir().unwrap();
    let limited = |args: &str| {
        Command::new("sh")
            .arg("-c")
            .arg(format!("ulimit -v 5000000 && exec {BIN} {args}"))
            .current_dir(dir.path())
            .output()
            .unwrap()
    };
    let out = limited(
        "train --epochs 1 --verbose 0 --samples 30000000 --batch-size 30000000 --out t.csv",
    );
    assert_one_line_error(&out, "lower --samples or --batch-size");
    let out = limited("sweep --seeds 0..2 --epochs 1 --verbose 0 --samples 30000000 --out-dir s");
    assert_one_line_error(&out, "lower --samples");
    // Inside the documented bounds, and far beyond this machine's memory.
    let out = binclass(
        dir.path(),
        &[
            "sweep",
            "--seeds",
            "0..2",
            "--samples",
            "100000000",
            "--features",
            "10",
            "--epochs",
            "1",
            "--verbose",
            "0",
            "--out-dir",
            "big",
        ],
    );
    assert_one_line_error(&out, "of memory on cpu");
    assert!(files(dir.path()).is_empty(), "{:?}", files(dir.path()));
}

#[test]
fn a_sweep_too_large_for_memory_by_its_chunk_advises_lowering_the_chunk() {
    let dir = tempfile::tempdir().unwrap();
    let sweep = |chunk: &str, samples: &str| {
        let args = [
            "sweep",
            "--seeds",
            "0..10000000",
            "--chunk",
            chunk,
            "--samples",
            samples,
            "--epochs",
            "1",
            "--verbose",
            "0",
            "--out-dir",
            "c",
        ];
        binclass(dir.path(), &args)
    };
    assert_one_line_error(
        &sweep("10000000", "10000"),
        "; lower --chunk (or leave it out",
    );
    // A chunk within one padded batch is not what is too large.
    let out = sweep("64", "100000000");
    assert_one_line_error(&out, "; lower --samples (a batch trains at least 64");
    assert!(files(dir.path()).is_empty(), "{:?}", files(dir.path()));
}

/// A 64 KiB tmpfs, or `None` (with the reason printed) where mounting is not allowed.
struct SmallDisk(PathBuf);

impl SmallDisk {
    fn mount(dir: &Path) -> Option<SmallDisk> {
        let mnt = dir.join("full");
        std::fs::create_dir(&mnt).unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=64k", "tmpfs"])
            .arg(&mnt)
            .output();
        match out {
            Ok(o) if o.status.success() => Some(SmallDisk(mnt)),
            Ok(o) => {
                eprintln!(
                    "skipped: cannot mount a small tmpfs here: {}",
                    String::from_utf8_lossy(&o.stderr).trim()
                );
                None
            }
            Err(e) => {
                eprintln!("skipped: cannot run mount: {e}");
                None
            }
        }
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn a_full_disk_leaves_whole_rows_and_no_temporary_files() {
    let dir = tempfile::tempdir().unwrap();
    let Some(disk) = SmallDisk::mount(dir.path()) else {
        return;
    };
    let out = binclass(
        &disk.0,
        &[
            "sweep",
            "--seeds",
            "0..4",
            "--epochs",
            "300",
            "--verbose",
            "0",
            "--out-dir",
            "s",
        ],
    );
    assert_one_line_error(&out, "No space left on device");
    let csvs: Vec<_> = files(&disk.0)
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "csv") && !p.ends_with("summary.csv"))
        .collect();
    assert!(!csvs.is_empty());
    for csv in &csvs {
        assert_whole_rows(csv);
    }
    assert_eq!(temporaries(&disk.0), Vec::<PathBuf>::new());
    for f in files(&disk.0).iter().filter(|p| p.is_file()) {
        std::fs::remove_file(f).unwrap();
    }
    let out = binclass(
        &disk.0,
        &[
            "train",
            "--epochs",
            "2000",
            "--verbose",
            "0",
            "--out",
            "b.csv",
        ],
    );
    assert_one_line_error(&out, "No space left on device");
    assert_whole_rows(&disk.0.join("b.csv"));
    assert_eq!(temporaries(&disk.0), Vec::<PathBuf>::new());
}

/// A run stopped by a full disk says so in its record where it can, and,
/// once there is room again, resumes to the run it would have been.
#[test]
fn a_run_stopped_by_a_full_disk_resumes_once_there_is_room() {
    let dir = tempfile::tempdir().unwrap();
    let Some(disk) = SmallDisk::mount(dir.path()) else {
        return;
    };
    let args = |out: &str| -> Vec<String> {
        with(
            &["train", "--epochs", "400", "--out", out],
            &["--samples", "300", "--verbose", "0"],
        )
    };
    ok(dir.path(), &strs(&args("whole.csv")));
    let filler = disk.0.join("filler");
    std::fs::write(&filler, vec![0u8; 40 << 10]).unwrap();
    let out = binclass(&disk.0, &strs(&args("b.csv")));
    assert_one_line_error(&out, "No space left on device");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains(".tmp"), "the error names a temporary: {err}");
    let stopped = record(&disk.0.join("b.csv"))["stopped"].clone();
    assert!(
        stopped.is_null() || stopped.as_str().unwrap().starts_with("failed in epoch"),
        "{stopped}"
    );
    std::fs::remove_file(&filler).unwrap();
    ok(&disk.0, &["resume", "b.csv", "--verbose", "0"]);
    assert_eq!(
        std::fs::read(disk.0.join("b.csv")).unwrap(),
        std::fs::read(dir.path().join("whole.csv")).unwrap()
    );
}

fn interrupt(child: &Child) {
    // SAFETY: sends SIGINT to our own child.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGINT) }, 0);
}

/// A record agrees with its CSV: every row in it is counted, the last is
/// its final metrics, and it says the run was interrupted.
fn assert_record_matches(csv: &Path) {
    let rows = assert_whole_rows(csv);
    let j = record(csv);
    assert_eq!(j["epochs_completed"], rows, "{}", csv.display());
    assert_eq!(j["finished"], false);
    assert!(
        j["stopped"].as_str().unwrap().contains("interrupted"),
        "{j}"
    );
    let text = std::fs::read_to_string(csv).unwrap();
    let last = text.lines().last().unwrap();
    let acc: f64 = last.split(',').nth(3).unwrap().parse().unwrap();
    let recorded = j["final_metrics"]["val_binary_accuracy"].as_f64().unwrap();
    // serde_json reads floats to within an ulp or so, not always exactly.
    assert!((recorded - acc).abs() < 1e-12, "{recorded} vs {acc}");
}

#[test]
fn an_interrupted_sweep_or_run_keeps_records_true_to_their_csvs() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = cmd(
        dir.path(),
        &strs(&with(
            &[
                "sweep",
                "--seeds",
                "0..20",
                "--epochs",
                "5000",
                "--out-dir",
                "x",
            ],
            SMALL,
        )),
    )
    .spawn()
    .unwrap();
    wait_for_rows(&mut child, &dir.path().join("x/baseline-seed19.csv"), 3);
    interrupt(&child);
    assert_eq!(child.wait().unwrap().code(), Some(130));
    for s in 0..20 {
        assert_record_matches(&dir.path().join(format!("x/baseline-seed{s}.csv")));
    }

    let mut child = cmd(
        dir.path(),
        &strs(&with(
            &["train", "--epochs", "5000", "--out", "t.csv"],
            SMALL,
        )),
    )
    .spawn()
    .unwrap();
    wait_for_rows(&mut child, &dir.path().join("t.csv"), 3);
    interrupt(&child);
    assert_eq!(child.wait().unwrap().code(), Some(130));
    assert_record_matches(&dir.path().join("t.csv"));
    assert_eq!(temporaries(dir.path()), Vec::<PathBuf>::new());
}

#[test]
fn temporary_names_never_belong_to_another_run() {
    let dir = tempfile::tempdir().unwrap();
    ok(
        dir.path(),
        &strs(&with(
            &["train", "--epochs", "1", "--out", "a.csv.tmp"],
            SMALL,
        )),
    );
    ok(
        dir.path(),
        &strs(&with(&["train", "--epochs", "1", "--out", "a.csv"], SMALL)),
    );
    for f in ["a.csv.tmp", "a.csv.tmp.json", "a.csv", "a.csv.json"] {
        assert!(dir.path().join(f).exists(), "{f} is gone");
    }
    assert_eq!(record(&dir.path().join("a.csv.tmp"))["finished"], true);
}

#[test]
fn two_default_sweeps_started_together_each_get_their_own_folder() {
    // Before the fix about 1 start in 4 collided.
    for _ in 0..10 {
        let dir = tempfile::tempdir().unwrap();
        let args: Vec<&str> = "sweep --seeds 0..4 --epochs 1 --samples 300 --verbose 0"
            .split(' ')
            .collect();
        let a = cmd(dir.path(), &args)
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let b = cmd(dir.path(), &args)
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        for child in [a, b] {
            let out = child.wait_with_output().unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let runs = dir.path().join("runs");
        assert!(runs.join("baseline-seeds0-4/summary.csv").exists());
        assert!(runs.join("baseline-seeds0-4-1/summary.csv").exists());
    }
}

#[test]
fn a_runs_csv_holds_its_header_from_the_moment_it_exists() {
    let dir = tempfile::tempdir().unwrap();
    for i in 0..6 {
        let csv = dir.path().join(format!("w{i}.csv"));
        let out = format!("w{i}.csv");
        let mut child = cmd(
            dir.path(),
            &strs(&with(&["train", "--epochs", "1", "--out", &out], SMALL)),
        )
        .spawn()
        .unwrap();
        // Watch as closely as a loop can, from before the file exists.
        while child.try_wait().unwrap().is_none() {
            if let Ok(m) = std::fs::metadata(&csv) {
                assert!(m.len() > 0, "{} existed empty", csv.display());
            }
        }
        assert_whole_rows(&csv);
    }
}

#[test]
fn a_run_killed_at_any_moment_leaves_no_empty_csv_and_no_temporary_file() {
    let dir = tempfile::tempdir().unwrap();
    let args = with(
        &["train", "--epochs", "3", "--out", "k.csv", "--overwrite"],
        SMALL,
    );
    for i in 0..24u64 {
        let mut child = cmd(dir.path(), &strs(&args)).spawn().unwrap();
        // From before libtorch is loaded to after the first epochs.
        std::thread::sleep(Duration::from_micros(150_000 + i * 12_000));
        child.kill().unwrap();
        child.wait().unwrap();
        let csv = dir.path().join("k.csv");
        if csv.exists() {
            assert_whole_rows(&csv);
        }
    }
    // Temporaries have no name until whole: a killed run leaves none but,
    // killed in the two system calls between link and rename, one of its
    // own files' replacements, which the next run of those files removes.
    let own = |t: &PathBuf| {
        let name = t.file_name().unwrap().to_string_lossy();
        ["k.csv", "k.csv.json", "k.safetensors", "k.ckpt"]
            .iter()
            .any(|f| name.starts_with(&format!(".{f}.")))
    };
    let left = temporaries(dir.path());
    assert!(left.iter().all(own), "{left:?}");
    ok(dir.path(), &strs(&args));
    assert_eq!(temporaries(dir.path()), Vec::<PathBuf>::new());
}

/// What a kill between link and rename leaves (a replacement of one of the
/// run's files, under a temporary name) goes with the next `train
/// --overwrite` or `resume` of that run; a file named like a temporary of
/// anything else stays.
#[test]
fn a_runs_next_train_or_resume_removes_only_its_own_files_temporaries() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let ours = [
        ".k.csv.Ab12Cd.tmp",
        ".k.csv.json.Ab12Cd.tmp",
        ".k.safetensors.zzzzzz.tmp",
        ".k.ckpt.000000.tmp",
    ];
    let theirs = [
        ".k.csv.json.Ab12C.tmp",
        ".k.csv.json.Ab12Cd.tmp.tmp",
        ".kk.csv.Ab12Cd.tmp",
        ".notes.txt.Ab12Cd.tmp",
        "k.csv.Ab12Cd.tmp",
    ];
    let plant = |names: &[&str]| common::plant(d, names);
    plant(&ours);
    plant(&theirs);
    let args = with(&["train", "--epochs", "1", "--out", "k.csv"], SMALL);
    let left = |names: &[&str]| names.iter().filter(|n| d.join(n).exists()).count();
    ok(d, &strs(&args));
    assert_eq!((left(&ours), left(&theirs)), (0, theirs.len()));
    plant(&ours);
    ok(
        d,
        &strs(&[args.clone(), vec!["--overwrite".into()]].concat()),
    );
    assert_eq!((left(&ours), left(&theirs)), (0, theirs.len()));
    // An interrupted run to resume, its checkpoint kept (the replaced CSV
    // held one row: the new one's second is this run's).
    let long = with(
        &[
            "train",
            "--epochs",
            "12",
            "--batch-size",
            "1",
            "--out",
            "k.csv",
        ],
        &[SMALL, &["--overwrite"]].concat(),
    );
    let mut child = cmd(d, &strs(&long)).spawn().unwrap();
    common::stop_after_rows(&mut child, &d.join("k.csv"), 2, libc::SIGINT);
    assert!(d.join("k.ckpt").exists(), "interrupted with a checkpoint");
    plant(&ours);
    ok(d, &["resume", "k.csv", "--verbose", "0"]);
    assert_eq!((left(&ours), left(&theirs)), (0, theirs.len()));
}

#[test]
fn threads_come_from_the_flag_else_the_environment_named_when_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let args = with(&["train", "--epochs", "1", "--out", "e.csv"], SMALL);
    let empty = cmd(dir.path(), &strs(&args))
        .env("BINCLASS_THREADS", "")
        .output()
        .unwrap();
    assert!(
        empty.status.success(),
        "{}",
        String::from_utf8_lossy(&empty.stderr)
    );
    assert_eq!(record(&dir.path().join("e.csv"))["threads"], 1);
    let bad = cmd(dir.path(), &strs(&args))
        .env("BINCLASS_THREADS", "x")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(
        err.contains("BINCLASS_THREADS=x") && !err.contains("--threads"),
        "{err}"
    );
}

#[test]
fn a_non_utf8_output_path_is_named_and_nothing_is_written() {
    use std::os::unix::ffi::OsStrExt;
    let dir = tempfile::tempdir().unwrap();
    let name = std::ffi::OsStr::from_bytes(b"r\xff/x.csv");
    let out = cmd(
        dir.path(),
        &["train", "--verbose", "0", "--epochs", "1", "--out"],
    )
    .arg(name)
    .output()
    .unwrap();
    assert_one_line_error(&out, "not valid UTF-8");
    assert!(String::from_utf8_lossy(&out.stderr).contains("r\u{fffd}/x.csv"));
    assert!(files(dir.path()).is_empty());
}

/// A program may delete only what it can prove it created: files named
/// like a temporary of a process long dead (a run's own output, or a
/// user's) are never taken for a killed writer's leftovers.
#[test]
fn files_named_like_a_dead_writers_temporary_are_never_deleted() {
    let dir = tempfile::tempdir().unwrap();
    // pid 4242424 is above Linux's pid_max ceiling: no live process.
    let theirs = dir.path().join(".thesis.txt.4242424.1.tmp");
    std::fs::write(&theirs, "a user's file").unwrap();
    let run = ".a.csv.999999.0.tmp";
    ok(
        dir.path(),
        &strs(&with(&["train", "--epochs", "1", "--out", run], SMALL)),
    );
    for next in [
        &["train", "--epochs", "1", "--out", "y.csv"][..],
        &[
            "sweep",
            "--seeds",
            "0..2",
            "--epochs",
            "1",
            "--out-dir",
            ".",
        ],
    ] {
        ok(dir.path(), &strs(&with(next, SMALL)));
        assert!(theirs.exists(), "{next:?} deleted a user's file");
        assert!(
            dir.path().join(run).exists(),
            "{next:?} deleted a run's CSV"
        );
    }
}

/// A `--vary` grid holds each setting's folder while it writes it; a grid
/// of more settings than the process may open files still trains, its
/// holds leaving descriptors for the files it writes.
#[test]
fn a_grid_of_more_settings_than_open_files_allowed_trains() {
    let dir = tempfile::tempdir().unwrap();
    let lrs: Vec<String> = (1..=150)
        .map(|i| format!("{}", i as f64 / 1000.0))
        .collect();
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "ulimit -n 100 && exec {BIN} sweep --seeds 0..1 --vary lr={} --epochs 1 --samples 300 --verbose 0 --out-dir g",
            lrs.join(",")
        ))
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary = std::fs::read_to_string(dir.path().join("g/summary.csv")).unwrap();
    assert_eq!(summary.lines().count(), 151, "{summary}");
}
