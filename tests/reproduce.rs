//! `binclass reproduce`, small: 2 seeds, 2 epochs, a hand-made reference.

use std::path::Path;
use std::process::Command;

use binclass::config::PRESETS;

mod common;

const BIN: &str = env!("CARGO_BIN_EXE_binclass");

fn fake_reference(dir: &Path) {
    for p in PRESETS.iter().map(|p| p.name) {
        std::fs::create_dir_all(dir.join(p)).unwrap();
        for s in 0..3 {
            let v = 0.9 + s as f64 * 0.01;
            let text = format!(
                "epoch,binary_accuracy,loss,val_binary_accuracy,val_loss\n0,{v},0.3,{v},0.3\n1,{v},0.2,{v},0.2\n"
            );
            std::fs::write(dir.join(p).join(format!("seed-{s}.csv")), text).unwrap();
        }
    }
}

#[test]
fn reproduce_writes_every_run_figure_and_a_report_naming_every_preset() {
    let dir = tempfile::tempdir().unwrap();
    fake_reference(&dir.path().join("ref"));
    let args = [
        "reproduce",
        "--out-dir",
        "out",
        "--seeds",
        "2",
        "--epochs",
        "2",
        "--reference",
        "ref",
        "--verbose",
        "0",
        "--tensorboard",
        "tb",
    ];
    let o = Command::new(BIN)
        .args(args)
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let out = dir.path().join("out");
    let report = std::fs::read_to_string(out.join("REPORT.md")).unwrap();
    let labels = PRESETS.iter().map(|p| p.name);
    for label in labels.chain(["scaled-standard", "shifted-standard"]) {
        for s in 0..2 {
            let name = label.split("-standard").next().unwrap();
            let csv = out.join(format!("runs/{label}/{name}-seed{s}.csv"));
            assert!(
                csv.exists()
                    && out
                        .join(format!("runs/{label}/{name}-seed{s}.csv.json"))
                        .exists(),
                "{csv:?}"
            );
        }
        assert!(out.join(format!("runs/{label}/summary.csv")).exists());
        let png = std::fs::read(out.join(format!("figures/{label}.png")));
        if let Ok(png) = png {
            assert!(png.starts_with(b"\x89PNG"));
        } else {
            panic!("figures/{label}.png missing");
        }
        assert!(
            report.contains(&format!("### {label}")),
            "{label} not in the report"
        );
        assert!(report.contains(&format!("figures/{label}.png")));
        // What seed 0's model learned, beside the accuracy figure.
        let boundary = format!("figures/{label}-boundary.png");
        assert!(
            std::fs::read(out.join(&boundary)).is_ok_and(|png| png.starts_with(b"\x89PNG")),
            "{boundary} missing"
        );
        assert!(
            report.contains(&format!(
                "<img src=\"figures/{label}.png\" alt=\"{label}: accuracy\" width=\"54%\"> <img src=\"{boundary}\""
            )),
            "{boundary} not beside {label}.png in the report"
        );
        assert!(
            out.join(format!(
                "runs/{label}/{name0}-seed0.safetensors",
                name0 = label.split("-standard").next().unwrap()
            ))
            .exists()
        );
    }
    // Each preset's final accuracies, ours and Keras's, as the verdict sees them.
    for p in PRESETS.iter().map(|p| p.name) {
        let finals = format!("figures/{p}-finals.png");
        assert!(
            std::fs::read(out.join(&finals)).is_ok_and(|png| png.starts_with(b"\x89PNG")),
            "{finals} missing"
        );
        assert!(
            report.contains(&format!("<img src=\"{finals}\"")),
            "{finals}"
        );
    }
    assert!(
        !out.join("figures/scaled-standard-finals.png").exists(),
        "no Keras runs to set beside"
    );
    // TensorBoard runs named by experiment (not preset: `scaled-standard`
    // is not `scaled`) and by curve setting; the curves' HParams
    // experiment in the folder itself.
    let tb = dir.path().join("tb");
    for run in [
        "scaled/seed0",
        "scaled-standard/seed1",
        "noise-rate=0.5/seed0",
        "scale=10000/normalize=standard/seed1",
    ] {
        for sub in ["train", "validation"] {
            let files = common::files_in(&tb.join(run).join(sub));
            assert_eq!(files.len(), 1, "{run}/{sub}: {files:?}");
        }
    }
    let root = std::fs::read_dir(&tb).unwrap().map(|e| e.unwrap().path());
    assert_eq!(root.filter(|p| p.is_file()).count(), 1, "one experiment");
    assert!(report.contains("Right: what seed 0's model learned"));
    assert!(
        report.contains("[0, 1000]² in raw feature units"),
        "scaled's square"
    );
    assert!(
        report.contains("[1000, 1001]² in raw feature units"),
        "shifted's square"
    );
    assert!(
        report.contains("features 2-4 held at their mean 0.5"),
        "dummies' slice"
    );
    for p in PRESETS.iter().map(|p| p.name) {
        let row = report
            .lines()
            .find(|l| l.starts_with(&format!("| {p} | 2/3 | adam |")))
            .unwrap_or_else(|| panic!("{p} not in the comparison table"));
        let verdict = ["consistent", "differs", "inconclusive"]
            .into_iter()
            .find(|v| row.ends_with(&format!("| {v} |")))
            .unwrap_or_else(|| panic!("no verdict: {row}"));
        if verdict == "inconclusive" {
            assert!(
                report.contains(&format!("- {p} (adam): inconclusive at 2/3 seeds; about ")),
                "{p}: seeds needed not stated"
            );
        }
    }
    assert!(report.contains(binclass::compare::RULE));
    assert!(report.contains("## Timings"));
    // The curves beyond the article: a figure, its sentence and its table each.
    assert!(report.contains("## Beyond the article"));
    for (curve, setting) in [
        ("noise-curve", "noise-rate=0.5"),
        ("scale-curve", "scale=10000,normalize=standard"),
        ("shift-curve", "shift=1000,normalize=none"),
    ] {
        let png = std::fs::read(out.join(format!("figures/{curve}.png"))).unwrap();
        assert!(png.starts_with(b"\x89PNG"), "{curve}");
        assert!(report.contains(&format!("<img src=\"figures/{curve}.png\"")));
        let runs = out.join(format!("runs/{curve}/{setting}"));
        assert!(
            runs.join("baseline-seed1.safetensors").exists(),
            "{setting}"
        );
        let summary =
            std::fs::read_to_string(out.join(format!("runs/{curve}/summary.csv"))).unwrap();
        assert!(summary.lines().count() > 2 * 5, "{curve}: {summary}");
    }
    assert!(report.contains("| 0.5 | 2 | "), "the noise curve's table");

    // `compare` takes the folder reproduce wrote as it is; with --epochs 2
    // no run is the article's preset, so each is listed without a reference.
    let o = Command::new(BIN)
        .args(["compare", "out", "--reference", "ref"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let listed = String::from_utf8_lossy(&o.stdout);
    assert!(
        listed.contains("scaled [epochs=2, normalize=standard], adam: 2 seeds, no Keras reference"),
        "{listed}"
    );

    // A second run refuses the non-empty folder, and changes nothing.
    let before = std::fs::read(out.join("REPORT.md")).unwrap();
    let o = Command::new(BIN)
        .args(args)
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains(
        "out already holds a reproduce without --shard; pass --resume to continue it, or --overwrite to replace it"
    ));
    assert_eq!(std::fs::read(out.join("REPORT.md")).unwrap(), before);
}

fn reproduce(dir: &Path, more: &[&str]) -> std::process::Output {
    let mut args = vec![
        "reproduce",
        "--out-dir",
        "out",
        "--reference",
        "ref",
        "--verbose",
        "0",
    ];
    args.extend_from_slice(more);
    Command::new(BIN)
        .args(&args)
        .current_dir(dir)
        .output()
        .unwrap()
}

#[test]
fn overwrite_starts_from_a_clean_folder_and_refuses_one_holding_files_it_did_not_write() {
    let dir = tempfile::tempdir().unwrap();
    fake_reference(&dir.path().join("ref"));
    let o = reproduce(dir.path(), &["--seeds", "3", "--epochs", "2"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = reproduce(
        dir.path(),
        &["--seeds", "2", "--epochs", "2", "--overwrite"],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let out = dir.path().join("out");
    assert!(
        !out.join("runs/baseline/baseline-seed2.csv").exists(),
        "a stale run stayed"
    );
    // Models and boundary figures are reproduce's own: replaced, not refused.
    assert!(
        out.join("runs/baseline/baseline-seed0.safetensors")
            .exists()
    );
    assert!(out.join("figures/baseline-boundary.png").exists());
    assert!(
        !out.join("runs/baseline/baseline-seed2.safetensors")
            .exists()
    );
    assert!(!out.join("runs/baseline/baseline-seed2.csv.json").exists());
    let report = std::fs::read_to_string(out.join("REPORT.md")).unwrap();
    assert!(report.contains("| baseline | 2/3 |"), "{report}");
    assert!(!report.contains("3/3"), "{report}");

    // A file reproduce did not write is never deleted: --overwrite refuses
    // the folder, naming it, and changes nothing.
    std::fs::write(out.join("runs/notes.txt"), "mine").unwrap();
    let before = common::files_in(&out);
    let o = reproduce(
        dir.path(),
        &["--seeds", "2", "--epochs", "1", "--overwrite"],
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert!(
        err.contains("out holds what no reproduce wrote (out/runs/notes.txt): --overwrite deletes only its command's files"),
        "{err}"
    );
    assert_eq!(common::files_in(&out), before);
    std::fs::remove_file(out.join("runs/notes.txt")).unwrap();
    let o = reproduce(
        dir.path(),
        &["--seeds", "2", "--epochs", "1", "--overwrite"],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(
        common::epochs(&out.join("runs/baseline/baseline-seed1.csv")).len(),
        1
    );
    // A folder holding files but no reproduction is not taken for one.
    std::fs::create_dir(dir.path().join("other")).unwrap();
    std::fs::write(dir.path().join("other/thesis.md"), "mine").unwrap();
    let o = Command::new(BIN)
        .args(reproduce_args(
            "other",
            &["--seeds", "2", "--epochs", "1", "--overwrite"],
        ))
        .current_dir(dir.path())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert!(
        err.contains("other holds what no reproduce wrote (other/thesis.md)"),
        "{err}"
    );
    assert_eq!(
        std::fs::read_dir(dir.path().join("other")).unwrap().count(),
        1
    );
}

#[test]
fn other_epochs_are_compared_over_the_epochs_both_sides_have() {
    let dir = tempfile::tempdir().unwrap();
    fake_reference(&dir.path().join("ref"));
    for (epochs, common) in [
        ("3", "the first 2 epochs (ours ran 3, Keras's 2)"),
        ("1", "the first 1 epochs (ours ran 1, Keras's 2)"),
    ] {
        let o = reproduce(
            dir.path(),
            &["--seeds", "2", "--epochs", epochs, "--overwrite"],
        );
        assert!(
            o.status.success(),
            "--epochs {epochs}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let report = std::fs::read_to_string(dir.path().join("out/REPORT.md")).unwrap();
        assert!(
            report.contains(&format!(
                "`--epochs {epochs}` differs from the article's runs"
            )),
            "{report}"
        );
        assert!(
            report.contains(&format!("`baseline`: {common}")),
            "{report}"
        );
        let csv =
            std::fs::read_to_string(dir.path().join("out/runs/noise/noise-seed1.csv")).unwrap();
        assert_eq!(csv.lines().count(), 1 + epochs.parse::<usize>().unwrap());
    }
}

/// Every run's CSV, summary and model tensors below `runs/`, by path (a
/// model's metadata is a hash map, so only its tensor bytes are compared;
/// records hold timings).
fn runs_of(out: &Path) -> Vec<(String, Vec<u8>)> {
    let mut found = vec![];
    for label in std::fs::read_dir(out.join("runs")).unwrap() {
        // A curve's settings are folders of their own.
        for p in common::files_in(&label.unwrap().path()) {
            // A temporary the kill left mid-write is hidden, and not ours to remove.
            let hidden = p
                .file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with('.'));
            if p.is_dir() || hidden {
                continue;
            }
            let name = p.strip_prefix(out).unwrap().to_string_lossy().into_owned();
            let bytes = std::fs::read(&p).unwrap();
            if name.ends_with(".safetensors") {
                let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
                found.push((name, bytes[8 + n..].to_vec()));
            } else if !name.ends_with(".json") {
                found.push((name, bytes));
            }
        }
    }
    found.sort();
    found
}

/// `reproduce` into `out` with the fake reference, quiet, and `more`.
fn reproduce_args(out: &str, more: &[&str]) -> Vec<String> {
    let base = [
        "reproduce",
        "--out-dir",
        out,
        "--reference",
        "ref",
        "--verbose",
        "0",
    ];
    common::with(&base, more)
}

/// Each part's seconds of training, as the manifest keeps them.
fn timings(out: &Path) -> Vec<(String, f64)> {
    let text = std::fs::read_to_string(out.join("manifest.json")).unwrap();
    let m: serde_json::Value = serde_json::from_str(&text).unwrap();
    serde_json::from_value(m["timings"].clone()).unwrap()
}

/// Every part timed before is timed at least as long after.
fn assert_kept(before: &[(String, f64)], after: &[(String, f64)]) {
    for (label, secs) in before {
        let now = after.iter().find(|(l, _)| l == label).map(|t| t.1);
        assert!(now >= Some(*secs), "{label}: {secs}s before, {now:?} after");
    }
}

/// REPORT.md without its timings, which differ between any two runs.
fn report_without_timings(out: &Path) -> String {
    let report = std::fs::read_to_string(out.join("REPORT.md")).unwrap();
    report.split("## Timings").next().unwrap().to_string()
}

#[test]
fn a_killed_or_sharded_reproduction_ends_with_the_uninterrupted_runs_and_report() {
    let dir = tempfile::tempdir().unwrap();
    fake_reference(&dir.path().join("ref"));
    let settings = ["--seeds", "2", "--epochs", "3"];
    let full = |out: &str, more: &[&str]| reproduce_args(out, &[&settings[..], more].concat());
    let o = Command::new(BIN)
        .args(full("whole", &[]))
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let mut child = Command::new(BIN)
        .args(full("out", &[]))
        .current_dir(dir.path())
        .spawn()
        .unwrap();
    // Part-way: the third experiment has begun.
    let csv = dir
        .path()
        .join("out/runs/dummy-features/dummy-features-seed0.csv");
    let start = std::time::Instant::now();
    while std::fs::read_to_string(&csv).map_or(0, |t| t.lines().count()) < 2 {
        assert!(
            child.try_wait().unwrap().is_none(),
            "ended before it was killed"
        );
        assert!(start.elapsed().as_secs() < 120);
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    // SAFETY: signals our own child.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGKILL) }, 0);
    child.wait().unwrap();
    let out = dir.path().join("out");
    assert!(!out.join("REPORT.md").exists(), "killed before the end");
    // The parts finished before the kill keep their time for the report.
    let killed = timings(&out);
    assert!(killed.len() >= 2, "{killed:?}");
    let o = reproduce(
        dir.path(),
        &[&settings[..], &["--resume", "--overwrite"]].concat(),
    );
    assert!(
        String::from_utf8_lossy(&o.stderr)
            .contains("the argument '--resume' cannot be used with '--overwrite'")
    );
    let o = reproduce(dir.path(), &[&settings[..], &["--resume"]].concat());
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let whole = dir.path().join("whole");
    assert_eq!(
        runs_of(&out),
        runs_of(&whole),
        "the same runs, and no checkpoint left"
    );
    assert_eq!(report_without_timings(&out), report_without_timings(&whole));
    assert_kept(&killed, &timings(&out));
    // Resumed again, a finished reproduction keeps its runs and their times.
    let (before, timed) = (runs_of(&out), timings(&out));
    let o = reproduce(dir.path(), &[&settings[..], &["--resume"]].concat());
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(runs_of(&out), before);
    assert_eq!(timings(&out).len(), timed.len());
    assert_kept(&timed, &timings(&out));
    let o = reproduce(dir.path(), &["--seeds", "2", "--epochs", "4", "--resume"]);
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("its `report.epochs` is 3, this command's 4")
    );
    // Another --seeds is another reproduction: refused, never a report
    // whose parts describe different seed counts.
    let o = reproduce(dir.path(), &["--seeds", "3", "--epochs", "3", "--resume"]);
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("its `seeds` is 0..2, this command's 0..3"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(runs_of(&out), before);

    // Sharded over three machines (separate processes and folders), merged.
    let mut shards: Vec<_> = (0..3)
        .map(|k| {
            let shard = format!("{k}/3");
            common::spawn(dir.path(), &full(&format!("part{k}"), &["--shard", &shard]))
        })
        .collect();
    for c in &mut shards {
        assert!(c.wait().unwrap().success());
    }
    assert!(
        !dir.path().join("part0/REPORT.md").exists(),
        "a shard reports nothing"
    );
    // Cut by work: dummy-features' wider replicas weigh 2.4 baseline ones,
    // so shard 0 ends two replicas before a third of the count (22).
    let noise = |part: &str, rate: &str| {
        let run = format!("{part}/runs/noise-curve/noise-rate={rate}/baseline-seed0.csv");
        dir.path().join(run).is_file()
    };
    assert!(noise("part0", "0.1") && !noise("part0", "0.2") && noise("part1", "0.2"));
    // From another folder: each shard's manifest holds --reference ref
    // made absolute, so the merge finds it (issue 26).
    std::fs::create_dir(dir.path().join("elsewhere")).unwrap();
    common::ok(
        &dir.path().join("elsewhere"),
        &[
            "merge",
            "../part2",
            "../part0",
            "../part1",
            "--out",
            "../merged",
        ],
    );
    let merged = dir.path().join("merged");
    assert_eq!(
        runs_of(&merged),
        runs_of(&whole),
        "the same runs, bit for bit"
    );
    assert_eq!(
        report_without_timings(&merged),
        report_without_timings(&whole)
    );
    assert!(merged.join("figures/noise-curve.png").is_file());
}

#[test]
fn a_dry_run_writes_nothing_and_its_shards_shares_of_the_work_sum_to_1() {
    let dir = tempfile::tempdir().unwrap();
    fake_reference(&dir.path().join("ref"));
    let last_line = |more: &[&str]| {
        let args = reproduce_args("out", &[&["--seeds", "3", "--dry-run"][..], more].concat());
        let o = common::run(dir.path(), args);
        let text = String::from_utf8(o.stdout).unwrap();
        text.lines().last().unwrap_or_default().to_string()
    };
    assert_eq!(last_line(&[]), "share of the work: 1");
    let mut sum = 0.0;
    for k in 0..5 {
        let line = last_line(&["--shard", &format!("{k}/5")]);
        let x = line.strip_prefix("share of the work: 0.").expect(&line);
        assert_eq!(x.len(), 4, "{line}");
        sum += format!("0.{x}").parse::<f64>().unwrap();
    }
    assert!((sum - 1.0).abs() <= 5.0 * 0.00005, "{sum}");
    let o = common::run(
        dir.path(),
        reproduce_args("out", &["--seeds", "3", "--dry-run", "--shard", "0/5"]),
    );
    let text = String::from_utf8(o.stdout).unwrap();
    assert!(
        text.contains("  baseline: seeds 0..=2 (3), 100 epochs\n"),
        "{text}"
    );
    assert!(
        text.contains("    batch: 64 lanes (3 replicas), 100 epochs: baseline seeds 0..=2\n"),
        "{text}"
    );
    assert!(!dir.path().join("out").exists(), "a dry run wrote");
    // Refused as the run would be: a folder holding other files.
    std::fs::create_dir(dir.path().join("out")).unwrap();
    std::fs::write(dir.path().join("out/notes.txt"), "mine").unwrap();
    let o = common::binclass(
        dir.path(),
        &common::strs(&reproduce_args("out", &["--dry-run"])),
    );
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("holds no reproduction"));
    assert_eq!(common::files_in(&dir.path().join("out")).len(), 1);
}

#[test]
fn resuming_a_shards_folder_takes_its_own_shard_and_plan() {
    let dir = tempfile::tempdir().unwrap();
    fake_reference(&dir.path().join("ref"));
    let shard = ["--seeds", "2", "--epochs", "1", "--shard", "1/2"];
    let o = reproduce(dir.path(), &shard);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let before = runs_of(&dir.path().join("out"));
    let manifest = std::fs::read(dir.path().join("out/manifest.json")).unwrap();
    for (more, says) in [
        (
            &["--seeds", "2", "--epochs", "1", "--resume"][..],
            "out holds a reproduce --shard 1/2 (manifest.json); resume it with that command line",
        ),
        (
            &[
                "--seeds", "3", "--epochs", "1", "--shard", "1/2", "--resume",
            ],
            "out holds a reproduce of other settings: its `seeds` is 0..2, this command's 0..3",
        ),
    ] {
        let o = reproduce(dir.path(), more);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success(), "{more:?}");
        assert_eq!(err.trim().lines().count(), 1, "{err}");
        assert!(err.contains(says), "{more:?}: {err}");
        assert!(runs_of(&dir.path().join("out")) == before, "{more:?}");
        assert_eq!(
            std::fs::read(dir.path().join("out/manifest.json")).unwrap(),
            manifest
        );
    }
    let o = reproduce(dir.path(), &[&shard[..], &["--resume"]].concat());
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

/// `reproduce` in `dir` with stderr on a terminal (through util-linux's
/// `script`, as the live bar is drawn only there): what the terminal
/// showed, or `None`, after saying the test is skipped, without `script`.
fn on_a_terminal(dir: &Path, args: &[String]) -> Option<String> {
    let line = std::iter::once(BIN.to_string())
        .chain(args.iter().cloned())
        .collect::<Vec<_>>()
        .join(" ");
    let Ok(o) = Command::new("script")
        .args(["-qec", &line, "/dev/null"])
        .current_dir(dir)
        .output()
    else {
        eprintln!("skipped: util-linux's script is not installed");
        return None;
    };
    let text = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(o.status.success(), "{text}");
    Some(text)
}

#[test]
fn verbose_2_prints_the_summary_without_a_live_bar() {
    let dir = tempfile::tempdir().unwrap();
    fake_reference(&dir.path().join("ref"));
    let shard = ["--seeds", "2", "--epochs", "1", "--shard", "0/20"];
    let mut shown = vec![];
    for verbose in ["1", "2"] {
        let mut args = reproduce_args(&format!("v{verbose}"), &shard);
        let at = args.iter().position(|a| a == "--verbose").unwrap();
        args[at + 1] = verbose.to_string();
        let Some(text) = on_a_terminal(dir.path(), &args) else {
            return;
        };
        assert!(text.contains("trained shard 0/20"), "{verbose}: {text}");
        shown.push(text.contains("seed-epochs"));
    }
    assert_eq!(shown, [true, false], "a live bar at --verbose 1, 2");
}

#[test]
fn a_shard_at_verbose_0_prints_nothing() {
    let dir = tempfile::tempdir().unwrap();
    fake_reference(&dir.path().join("ref"));
    let o = reproduce(
        dir.path(),
        &["--seeds", "2", "--epochs", "1", "--shard", "0/20"],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(dir.path().join("out/manifest.json").is_file());
    assert!(
        !dir.path().join("out/figures").exists(),
        "a shard draws no figures"
    );
    assert_eq!(String::from_utf8_lossy(&o.stderr), "");
    assert!(o.stdout.is_empty());
}

#[test]
fn overwrite_of_a_reproduction_still_running_is_refused_and_removes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    fake_reference(&dir.path().join("ref"));
    let args = |more: &[&'static str]| {
        let mut a = vec![
            "reproduce",
            "--out-dir",
            "out",
            "--seeds",
            "2",
            "--epochs",
            "400",
            "--reference",
            "ref",
            "--verbose",
            "0",
        ];
        a.extend_from_slice(more);
        a
    };
    let mut first = common::spawn(dir.path(), &args(&[]));
    let csv = dir.path().join("out/runs/baseline/baseline-seed0.csv");
    common::wait_for_rows(&mut first, &csv, 2);
    for more in [&["--overwrite"][..], &["--resume"][..]] {
        common::refused_while_written(dir.path(), &args(more));
        assert!(
            csv.exists(),
            "{more:?} removed the running reproduction's files"
        );
    }
    assert!(
        first.try_wait().unwrap().is_none(),
        "the first ended too soon"
    );
    // SAFETY: signals our own child.
    assert_eq!(unsafe { libc::kill(first.id() as i32, libc::SIGKILL) }, 0);
    first.wait().unwrap();
}

#[test]
fn a_merge_of_shards_this_binclass_would_not_finish_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    fake_reference(&dir.path().join("ref"));
    for k in 0..2 {
        let out = format!("part{k}");
        let shard = format!("{k}/2");
        let args = reproduce_args(&out, &["--seeds", "2", "--epochs", "1", "--shard", &shard]);
        common::ok(
            dir.path(),
            &args.iter().map(String::as_str).collect::<Vec<_>>(),
        );
        // As another version with other default seeds would have planned it.
        let path = dir.path().join(&out).join("manifest.json");
        let mut m: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        m["plan"]["settings"][0]["seeds"]["last"] = 4.into();
        std::fs::write(&path, m.to_string()).unwrap();
    }
    let o = common::binclass(dir.path(), &["merge", "part0", "part1", "--out", "merged"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert!(
        err.contains(
            "the shards' plan is not one this binclass makes: its `settings[0].seeds.last` is 4"
        ),
        "{err}"
    );
    assert!(!dir.path().join("merged").exists(), "nothing written");
}

/// `--overwrite` replaces what the same command wrote, never another
/// command's folder: a sweep's folder is refused, every file of it kept,
/// and so is a reproduction's folder to a sweep.
#[test]
fn overwrite_refuses_a_folder_of_another_command_and_keeps_it_whole() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    fake_reference(&d.join("ref"));
    let sweep = [
        "sweep",
        "--seeds",
        "0..3",
        "--epochs",
        "1",
        "--samples",
        "300",
        "-v",
        "0",
    ];
    common::ok(d, &[&sweep[..], &["--out-dir", "out"]].concat());
    std::fs::write(d.join("out/NOTES.txt"), "mine").unwrap();
    let before = common::files_in(&d.join("out"));
    let o = reproduce(d, &["--seeds", "2", "--epochs", "1", "--overwrite"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert!(
        err.contains("out holds a sweep without --shard, not a reproduce: --overwrite replaces only what this command wrote"),
        "{err}"
    );
    assert_eq!(common::files_in(&d.join("out")), before);

    common::ok(
        d,
        &common::strs(&reproduce_args("rep", &["--seeds", "2", "--epochs", "1"])),
    );
    let out = common::binclass(
        d,
        &[&sweep[..], &["--out-dir", "rep", "--overwrite"]].concat(),
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("rep holds a reproduce without --shard, not a sweep"),
        "{err}"
    );
    assert!(d.join("rep/REPORT.md").is_file());
}

/// The report counts and draws the runs of its plan only: a run trained
/// into its folder by hand, or a Keras CSV copied there, is named as not
/// part of it, never counted.
#[test]
fn the_report_counts_only_its_own_runs_and_names_the_others() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    fake_reference(&d.join("ref"));
    let o = reproduce(d, &["--seeds", "2", "--epochs", "1"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let hand = "out/runs/baseline/baseline-seed7.csv";
    let train = [
        "train", "--seed", "7", "--lr", "0.3", "--epochs", "1", "-v", "0", "--out", hand,
    ];
    common::ok(d, &train);
    std::fs::copy(
        d.join("ref/noise/seed-0.csv"),
        d.join("out/runs/noise/noise-seed9.csv"),
    )
    .unwrap();
    // `--overwrite` now refuses a folder holding what it did not write
    // (overwrite_starts_from_a_clean_folder_and_refuses_…); `--resume` of
    // the finished reproduction reports again, over the same folder.
    let o = reproduce(d, &["--seeds", "2", "--epochs", "1", "--resume"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let report = std::fs::read_to_string(d.join("out/REPORT.md")).unwrap();
    assert!(report.contains("| baseline | 2/3 |"), "{report}");
    assert!(report.contains("| noise | 2/3 |"), "{report}");
    assert!(
        report.contains("Not runs of this reproduction, so neither counted nor drawn: `out/runs/baseline/baseline-seed7.csv`, `out/runs/noise/noise-seed9.csv`."),
        "{report}"
    );
}
