//! docs/cluster's scripts and a sharded `reproduce`, submitted with `sbatch`
//! to a real Slurm: the one-node cluster of `scripts/slurm_local.sh up`
//! (its `slurm.conf` in `BINCLASS_SLURM_DIR`, default /tmp/binclass-slurm),
//! through the scheduler to the merge job, each merged folder checked
//! against the unsharded command run directly.
//!
//! The tests do not start Slurm: that needs root and may install packages,
//! which a `cargo test` should not do behind a user's back. `.ci/run` brings
//! it up before the tests and down after. Where no local Slurm answers, each
//! test prints `SKIPPED <test>: <why>` and returns; with `BINCLASS_REQUIRE_SLURM=1`
//! (set by `.ci/run` once `up` succeeded) that is a failure instead.
mod common;

use common::{BIN, assert_same_outputs, files_in, run, strs, with};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

const REPO: &str = env!("CARGO_MANIFEST_DIR");

/// How long a test waits on one job (an array: all its tasks): the tests run
/// at once on one node, whose CPUs their jobs share.
const TIMEOUT: Duration = Duration::from_secs(300);

/// The local cluster that `scripts/slurm_local.sh up` started.
struct Slurm {
    conf: PathBuf,
}

impl Slurm {
    /// The cluster, or `None` after printing why `test` is skipped.
    fn get(test: &str) -> Option<Slurm> {
        match Slurm::find() {
            Ok(slurm) => Some(slurm),
            Err(why) => {
                let required = std::env::var_os("BINCLASS_REQUIRE_SLURM").is_some_and(|v| v == "1");
                assert!(!required, "{test}: BINCLASS_REQUIRE_SLURM=1, but {why}");
                skipped(test, &why);
                None
            }
        }
    }

    fn find() -> Result<Slurm, String> {
        let dir = std::env::var_os("BINCLASS_SLURM_DIR")
            .map_or_else(|| PathBuf::from("/tmp/binclass-slurm"), PathBuf::from);
        let conf = dir.join("slurm.conf");
        // Without its conf a Slurm client retries for a minute before it
        // fails: look for the file first.
        if !conf.is_file() {
            // SAFETY: geteuid has no preconditions and cannot fail.
            let start = if unsafe { libc::geteuid() } == 0 {
                "`bash scripts/slurm_local.sh up` starts one"
            } else {
                "`scripts/slurm_local.sh up` starts one, as root (this is not root)"
            };
            let installed = if on_path("sbatch") {
                ""
            } else {
                " (and Slurm's commands are not installed)"
            };
            return Err(format!(
                "no local Slurm ({} is missing){installed}; {start}",
                conf.display()
            ));
        }
        let slurm = Slurm { conf };
        let out = slurm
            .command("sinfo")
            .args(["-h", "-o", "%t"])
            .output()
            .map_err(|e| format!("sinfo does not run: {e}"))?;
        let state = String::from_utf8_lossy(&out.stdout).trim().to_string();
        let usable = ["idle", "mix", "alloc"]
            .iter()
            .any(|s| state.starts_with(s));
        let why = if !out.status.success() {
            format!("sinfo fails: {}", first_line(&out.stderr))
        } else if !usable {
            format!("its node is {state:?}")
        } else {
            return Ok(slurm);
        };
        Err(format!(
            "the local Slurm ({}) is not usable: {why}; `bash scripts/slurm_local.sh up` restarts it",
            slurm.conf.display()
        ))
    }

    /// A Slurm client for this cluster, with nothing of a job it may run in
    /// (a test run inside a Slurm job must not submit to that job's cluster).
    fn command(&self, program: &str) -> Command {
        let mut c = Command::new(program);
        for (key, _) in std::env::vars_os() {
            let key = key.to_string_lossy();
            if ["SLURM_", "SBATCH_", "SALLOC_", "SRUN_"]
                .iter()
                .any(|p| key.starts_with(p))
            {
                c.env_remove(key.as_ref());
            }
        }
        c.env("SLURM_CONF", &self.conf)
            .env_remove("BINCLASS_THREADS");
        c
    }

    /// Submits with `sbatch` from `dir` (every variable of this process
    /// exported, as sbatch does, and `env`); the job's id.
    fn sbatch(&self, dir: &Path, args: &[&str], env: &[(&str, &str)]) -> String {
        let out = self
            .command("sbatch")
            .arg("--parsable")
            .arg(format!("--chdir={}", dir.display()))
            .args(args)
            .envs(env.iter().copied())
            .current_dir(dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "sbatch {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        // --parsable: "id" or "id;cluster".
        let id = String::from_utf8_lossy(&out.stdout);
        id.trim().split(';').next().unwrap().to_string()
    }

    /// Waits until job `id` (an array: every task) has left the queue, then
    /// checks that each of its tasks completed; the logs in `logs` are shown
    /// if not.
    fn wait(&self, id: &str, logs: &Path) {
        let start = Instant::now();
        loop {
            let out = self
                .command("squeue")
                .args(["-h", "-r", "-j", id, "-o", "%i %T"])
                .output()
                .unwrap();
            let listed = String::from_utf8_lossy(&out.stdout).trim().to_string();
            // A finished job is listed for MinJobAge (slurm_local.sh: 10 min)
            // with no line in squeue's default states; after that it is unknown.
            let gone = String::from_utf8_lossy(&out.stderr).contains("Invalid job id");
            if (out.status.success() && listed.is_empty()) || gone {
                break;
            }
            if start.elapsed() > TIMEOUT {
                let _ = self.command("scancel").arg(id).status();
                panic!(
                    "job {id} not done in {TIMEOUT:?}: {listed}{}\n{}",
                    first_line(&out.stderr),
                    show_logs(logs)
                );
            }
            std::thread::sleep(Duration::from_millis(500));
        }
        let out = self
            .command("scontrol")
            .args(["show", "job", "-o", id])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        let states: Vec<&str> = text
            .split_whitespace()
            .filter_map(|f| f.strip_prefix("JobState="))
            .collect();
        assert!(
            !states.is_empty() && states.iter().all(|s| *s == "COMPLETED"),
            "job {id}: {states:?}\n{text}\n{}",
            show_logs(logs)
        );
    }
}

/// Says that `test` is skipped and why, on stderr itself: what `eprintln!`
/// prints, the test harness keeps to itself unless the test fails.
fn skipped(test: &str, why: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "SKIPPED {test}: {why}");
}

fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(program).is_file()))
}

fn first_line(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes)
        .lines()
        .next()
        .unwrap_or("")
        .to_string()
}

/// Every job log (`*.out`) below `dir`, for a failure's message.
fn show_logs(dir: &Path) -> String {
    files_in(dir)
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "out"))
        .map(|p| {
            let text = std::fs::read_to_string(&p).unwrap_or_default();
            format!("--- {}\n{text}", p.display())
        })
        .collect()
}

/// `s` as one word for the shell that runs an `sbatch --wrap` command.
fn quoted(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// A file's text, failing the test with the logs if it is missing.
fn read(path: &Path, logs: &Path) -> String {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e}\n{}", path.display(), show_logs(logs)))
}

#[test]
fn sweep_slurm_as_an_array_merges_to_the_unsharded_sweep() {
    let Some(slurm) = Slurm::get("sweep_slurm_as_an_array_merges_to_the_unsharded_sweep") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let sweep = "sweep --seeds 0..5 --epochs 2 --samples 300 --vary noise-rate=0,0.2 --verbose 0";
    let words: Vec<String> = sweep.split(' ').map(String::from).collect();
    run(d, with(&strs(&words), &["--out-dir", "whole"]));
    // The script as docs/cluster says to submit it, but for the size of the
    // array and where its logs go; Slurm makes no folder for them.
    std::fs::create_dir(d.join("shards")).unwrap();
    let start = Instant::now();
    let script = format!("{REPO}/docs/cluster/sweep.slurm");
    let array = slurm.sbatch(
        d,
        &["--array=0-2", "--output=shards/slurm-%A_%a.out", &script],
        &[
            ("SHARDS", "3"),
            ("BINCLASS", BIN),
            ("OUT", "shards"),
            ("MERGED", "merged"),
            ("BINCLASS_SWEEP", sweep),
        ],
    );
    slurm.wait(&array, d);
    // Task 0 submitted the merge (afterok on the array) and printed its id.
    let log = read(&d.join(format!("shards/slurm-{array}_0.out")), d);
    let merge = log
        .lines()
        .find_map(|l| l.strip_prefix("Submitted batch job "))
        .unwrap_or_else(|| panic!("task 0 submitted no merge job:\n{}", show_logs(d)))
        .trim()
        .to_string();
    slurm.wait(&merge, d);
    eprintln!(
        "sweep.slurm: array {array} (3 tasks) and merge job {merge} done in {:.1} s",
        start.elapsed().as_secs_f64()
    );
    assert_same_outputs(&d.join("whole"), &d.join("merged"));
}

#[test]
fn a_sharded_reproduce_as_an_array_merges_to_the_unsharded_reproduction() {
    let Some(slurm) =
        Slurm::get("a_sharded_reproduce_as_an_array_merges_to_the_unsharded_reproduction")
    else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir(d.join("logs")).unwrap();
    let reference = format!("{REPO}/reference/keras");
    let reproduce = [
        "reproduce",
        "--seeds",
        "2",
        "--epochs",
        "1",
        "--verbose",
        "0",
        "--reference",
        &reference,
    ];
    let start = Instant::now();
    let mut task: Vec<String> = [BIN].iter().chain(&reproduce).map(|s| quoted(s)).collect();
    // Expanded by the task's shell: each task its own shard and folder.
    task.push("--shard \"$SLURM_ARRAY_TASK_ID/3\" --out-dir \"part$SLURM_ARRAY_TASK_ID\"".into());
    let array = slurm.sbatch(
        d,
        &[
            "--array=0-2",
            "--job-name=binclass-reproduce",
            "--cpus-per-task=1",
            "--output=logs/reproduce-%A_%a.out",
            &format!("--wrap=exec {}", task.join(" ")),
        ],
        &[],
    );
    let merge = slurm.sbatch(
        d,
        &[
            &format!("--dependency=afterok:{array}"),
            "--job-name=binclass-merge",
            "--cpus-per-task=1",
            "--output=logs/merge-%j.out",
            &format!(
                "--wrap=exec {} merge part0 part1 part2 --out merged",
                quoted(BIN)
            ),
        ],
        &[],
    );
    // The unsharded reproduction, here while the jobs queue and run.
    run(d, with(&reproduce, &["--out-dir", "whole"]));
    slurm.wait(&array, d);
    slurm.wait(&merge, d);
    eprintln!(
        "reproduce: array {array} (3 shards) and merge job {merge} done in {:.1} s \
         (the unsharded reproduction ran beside them)",
        start.elapsed().as_secs_f64()
    );
    let (whole, merged) = (d.join("whole"), d.join("merged"));
    assert_same_outputs(&whole.join("runs"), &merged.join("runs"));
    // The report but its timings, which differ between any two runs.
    let report = |out: &Path| {
        let text = read(&out.join("REPORT.md"), d);
        text.split("## Timings").next().unwrap().to_string()
    };
    assert_eq!(report(&whole), report(&merged));
    let figures = |out: &Path| -> Vec<PathBuf> {
        files_in(&out.join("figures"))
            .into_iter()
            .map(|p| p.strip_prefix(out).unwrap().to_path_buf())
            .collect()
    };
    assert_eq!(figures(&whole), figures(&merged));
    assert!(!figures(&merged).is_empty());
}

/// The python keras.slurm runs by default (its `PYTHON`).
fn keras_python() -> PathBuf {
    let cache = std::env::var_os("XDG_CACHE_HOME").map_or_else(
        || PathBuf::from(std::env::var_os("HOME").unwrap()).join(".cache"),
        PathBuf::from,
    );
    cache.join("binclass/torch-2.11.0/bin/python")
}

fn imports(python: &Path, module: &str) -> bool {
    Command::new(python)
        .args(["-c", &format!("import {module}")])
        .output()
        .is_ok_and(|o: Output| o.status.success())
}

#[test]
fn keras_slurm_as_an_array_writes_the_unsharded_reference_runs() {
    let test = "keras_slurm_as_an_array_writes_the_unsharded_reference_runs";
    let python = keras_python();
    if !imports(&python, "tf_keras") {
        let why = format!(
            "tf-keras is not installed in {} (scripts/setup.sh --keras)",
            python.display()
        );
        skipped(test, &why);
        return;
    }
    let Some(slurm) = Slurm::get(test) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir(d.join("logs")).unwrap();
    let (sharded, whole) = (d.join("sharded"), d.join("whole"));
    let start = Instant::now();
    // keras.slurm runs scripts/keras_reference.py from where it is
    // submitted: the repository's root.
    let array = slurm.sbatch(
        Path::new(REPO),
        &[
            "--array=0-1",
            &format!("--output={}/keras-%A_%a.out", d.join("logs").display()),
            "docs/cluster/keras.slurm",
        ],
        &[
            ("PRESET", "baseline"),
            ("SEEDS", "0..2"),
            ("SHARDS", "2"),
            ("EPOCHS", "2"),
            ("OUT", sharded.to_str().unwrap()),
        ],
    );
    // The same two runs in one process, here while the array runs.
    let out = Command::new(&python)
        .args(["scripts/keras_reference.py", "--preset", "baseline"])
        .args(["--seeds", "0..2", "--epochs", "2", "--threads", "1"])
        .args(["--verbose", "0", "--out-dir", whole.to_str().unwrap()])
        .current_dir(REPO)
        .env("TF_CPP_MIN_LOG_LEVEL", "2")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    slurm.wait(&array, d);
    eprintln!(
        "keras.slurm: array {array} (2 tasks) done in {:.1} s",
        start.elapsed().as_secs_f64()
    );
    // Each seed's CSVLogger file, byte for byte; fit-seconds.log holds times.
    for seed in 0..2 {
        let name = format!("baseline/seed-{seed}.csv");
        let (a, b) = (read(&whole.join(&name), d), read(&sharded.join(&name), d));
        assert_eq!(a.lines().count(), 3, "{name}: a header and 2 epochs");
        assert_eq!(a, b, "{name}");
    }
    let csvs = |out: &Path| -> Vec<PathBuf> {
        files_in(out)
            .into_iter()
            .filter(|p| p.extension().is_some_and(|e| e == "csv"))
            .map(|p| p.strip_prefix(out).unwrap().to_path_buf())
            .collect()
    };
    assert_eq!(csvs(&whole), csvs(&sharded));
}
