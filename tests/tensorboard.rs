//! `--tensorboard DIR`: event files TensorBoard's own reader and server read
//! as they read Keras's TensorBoard callback's, every scalar the CSV's
//! float32 value, a resumed run one line, a `--vary` grid in the HPARAMS
//! tab, and bad folders refused before anything is written.

mod common;

use std::path::Path;
use std::process::Command;

use common::{binclass, ok, project_python, project_python_with, rows, spawn, stop_after_rows};
use serde_json::Value;

/// Every run under a logdir as `event_accumulator` reads it (purging as
/// TensorBoard does): per run, each scalar tag's `[step, value]` points and
/// each HParams tag's message as JSON.
const READ: &str = r#"
import json, os, sys
from google.protobuf import json_format
from tensorboard.backend.event_processing import event_accumulator as ea
from tensorboard.plugins.hparams import plugin_data_pb2
from tensorboard.util import tensor_util
root, out = sys.argv[1], {}
for d, _, files in os.walk(root):
    if not any("tfevents" in f for f in files):
        continue
    acc = ea.EventAccumulator(d, size_guidance={ea.TENSORS: 0})
    acc.Reload()
    tags = {}
    for tag in acc.Tags()["tensors"]:
        plugin = acc.SummaryMetadata(tag).plugin_data
        if plugin.plugin_name == "scalars":
            tags[tag] = [[e.step, float(tensor_util.make_ndarray(e.tensor_proto))] for e in acc.Tensors(tag)]
        elif plugin.plugin_name == "hparams":
            data = plugin_data_pb2.HParamsPluginData.FromString(plugin.content)
            tags[tag] = json_format.MessageToDict(data)
    out[os.path.relpath(d, root)] = tags
print(json.dumps(out))
"#;

/// A real `tensorboard` on 127.0.0.1 (argv: logdir, --load_fast, the run
/// whose scalars to fetch, how many points it must have): its HTTP API's
/// runs, scalar tags, that run's `epoch_loss`, and the HParams experiment
/// and session groups, once it has loaded them.
const SERVE: &str = r#"
import json, re, subprocess, sys, threading, time, urllib.parse, urllib.request
logdir, fast, run, points = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
p = subprocess.Popen([sys.executable, "-m", "tensorboard.main", "--logdir", logdir, "--host", "127.0.0.1",
                      "--port", "0", "--load_fast", fast, "--reload_interval", "1"],
                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
try:
    url = None
    for line in p.stderr:
        m = re.search(r"(http://127\.0\.0\.1:\d+)/", line)
        if m:
            url = m.group(1)
            break
    threading.Thread(target=lambda: [None for _ in p.stderr], daemon=True).start()
    def get(path, body=None):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(url + path, data=data, headers={"Content-Type": "application/json"})
        return json.load(urllib.request.urlopen(req, timeout=30))
    q = urllib.parse.urlencode({"run": run, "tag": "epoch_loss"})
    deadline = time.time() + 90
    while True:
        try:
            scalars = get("/data/plugin/scalars/scalars?" + q)
            if len(scalars) >= points:
                break
        except Exception:
            if time.time() > deadline:
                raise
        if time.time() > deadline:
            break
        time.sleep(0.5)
    time.sleep(2)  # the other runs, loaded alongside
    body = {"experimentName": "", "startIndex": 0, "sliceSize": 1000, "colParams": [],
            "allowedStatuses": ["STATUS_UNKNOWN", "STATUS_SUCCESS", "STATUS_FAILURE", "STATUS_RUNNING"]}
    print(json.dumps({
        "runs": get("/data/runs"),
        "tags": get("/data/plugin/scalars/tags"),
        "scalars": get("/data/plugin/scalars/scalars?" + q),
        "experiment": get("/data/plugin/hparams/experiment", {"experimentName": ""}),
        "groups": get("/data/plugin/hparams/session_groups", body),
    }))
finally:
    p.terminate()
    p.wait()
"#;

fn python_json(py: &Path, script: &str, args: &[&str]) -> Value {
    let o = Command::new(py)
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    serde_json::from_slice(&o.stdout).unwrap()
}

fn read(py: &Path, logdir: &Path) -> Value {
    python_json(py, READ, &[logdir.to_str().unwrap()])
}

/// `[step, value]` points as (step, float32).
fn points(v: &Value) -> Vec<(i64, f32)> {
    v.as_array()
        .unwrap_or_else(|| panic!("not points: {v}"))
        .iter()
        .map(|p| (p[0].as_i64().unwrap(), p[1].as_f64().unwrap() as f32))
        .collect()
}

/// Keras's tags, each scalar the CSV's float32 value at its step, once:
/// train's loss and accuracy at step = epoch; validation's the same, and
/// `evaluation_*_vs_iterations` at step = optimizer steps so far.
fn assert_run_is_its_csv(events: &Value, run: &str, csv: &Path, steps: i64) -> Vec<f32> {
    let rows = rows(csv);
    let col = |c: usize, step: &dyn Fn(i64) -> i64| -> Vec<(i64, f32)> {
        rows.iter()
            .map(|r| (step(r[0] as i64), r[c] as f32))
            .collect()
    };
    let epoch = |e: i64| e;
    let iterations = |e: i64| (e + 1) * steps;
    let train = &events[format!("{run}/train")];
    let val = &events[format!("{run}/validation")];
    let keys = |v: &Value| -> Vec<String> { v.as_object().unwrap().keys().cloned().collect() };
    assert_eq!(
        keys(train),
        ["epoch_binary_accuracy", "epoch_loss"],
        "{run}"
    );
    assert_eq!(
        points(&train["epoch_binary_accuracy"]),
        col(1, &epoch),
        "{run}"
    );
    assert_eq!(points(&train["epoch_loss"]), col(2, &epoch), "{run}");
    assert_eq!(
        points(&val["epoch_binary_accuracy"]),
        col(3, &epoch),
        "{run}"
    );
    assert_eq!(points(&val["epoch_loss"]), col(4, &epoch), "{run}");
    let acc = &val["evaluation_binary_accuracy_vs_iterations"];
    assert_eq!(points(acc), col(3, &iterations), "{run}");
    let loss = &val["evaluation_loss_vs_iterations"];
    assert_eq!(points(loss), col(4, &iterations), "{run}");
    rows.iter().map(|r| r[3] as f32).collect()
}

/// The event files in `dir`.
fn event_files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("tfevents"))
        .collect();
    names.sort();
    names
}

const SMALL: &[&str] = &["--samples", "400", "--epochs", "4", "-v", "0"];

#[test]
fn train_writes_kerass_runs_and_tags_with_the_csvs_float32_values() {
    let Some(py) = project_python("tensorboard") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ok(
        d,
        &[&["train", "--out", "r.csv", "--tensorboard", "tb"], SMALL].concat(),
    );
    let events = read(&py, &d.join("tb"));
    let runs: Vec<&String> = events.as_object().unwrap().keys().collect();
    assert_eq!(runs.len(), 2, "{runs:?}");
    // 320 training rows in batches of 30.
    assert_run_is_its_csv(&events, "baseline/seed0", &d.join("r.csv"), 11);
    for sub in ["train", "validation"] {
        let files = event_files(&d.join("tb/baseline/seed0").join(sub));
        assert_eq!(files.len(), 1, "{files:?}");
        assert!(files[0].starts_with("events.out.tfevents."), "{files:?}");
    }
}

#[test]
fn a_killed_run_resumed_shows_every_epoch_once_with_the_csvs_values() {
    let Some(py) = project_python("tensorboard") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let slow = ["--samples", "600", "--epochs", "12", "--batch-size", "1"];
    let args = [
        &["train", "--seed", "3", "--out", "k.csv", "-v", "0"],
        &slow[..],
    ]
    .concat();
    let mut child = spawn(d, &[&args[..], &["--tensorboard", "tb"]].concat());
    stop_after_rows(&mut child, &d.join("k.csv"), 5, libc::SIGKILL);
    // An earlier file of the run's, with other values at every step: the
    // resumed run's file replaces it.
    let other = [
        &["train", "--seed", "4", "--out", "o.csv", "-v", "0"],
        &slow[..],
    ]
    .concat();
    ok(d, &[&other[..], &["--tensorboard", "other"]].concat());
    let theirs = d.join("other/baseline/seed4/train");
    std::fs::copy(
        theirs.join(&event_files(&theirs)[0]),
        d.join("tb/baseline/seed3/train/events.out.tfevents.1000000000.h.1.binclass"),
    )
    .unwrap();
    ok(d, &["resume", "k.csv", "-v", "0", "--tensorboard", "tb"]);
    assert_eq!(rows(&d.join("k.csv")).len(), 12);
    let events = read(&py, &d.join("tb"));
    assert_run_is_its_csv(&events, "baseline/seed3", &d.join("k.csv"), 480);
    let train = event_files(&d.join("tb/baseline/seed3/train"));
    assert_eq!(train.len(), 1, "earlier files replaced: {train:?}");
}

#[test]
fn a_killed_sweep_resumed_shows_every_seeds_epochs_once() {
    let Some(py) = project_python("tensorboard") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let args = [
        "sweep",
        "--seeds",
        "0..3",
        "--samples",
        "600",
        "--epochs",
        "12",
        "--batch-size",
        "1",
        "--out-dir",
        "s",
        "-v",
        "0",
        "--tensorboard",
        "tb",
    ];
    let mut child = spawn(d, &args);
    stop_after_rows(
        &mut child,
        &d.join("s/baseline-seed0.csv"),
        4,
        libc::SIGKILL,
    );
    ok(d, &[&args[..], &["--resume"]].concat());
    let events = read(&py, &d.join("tb"));
    for s in 0..3 {
        let csv = d.join(format!("s/baseline-seed{s}.csv"));
        assert_eq!(rows(&csv).len(), 12);
        assert_run_is_its_csv(&events, &format!("baseline/seed{s}"), &csv, 480);
    }
}

/// A grid of 2 × 2 settings over seeds 0 and 1 into `tb`, its runs in `g`.
fn grid(d: &Path, more: &[&str]) {
    let args = [
        "sweep",
        "--seeds",
        "0..2",
        "--vary",
        "noise-rate=0,0.2",
        "--vary",
        "normalize=none,standard",
        "--tensorboard",
        "tb",
    ];
    ok(d, &[&args[..], SMALL, more].concat());
}

#[test]
fn a_grid_writes_hparams_sessions_grouped_by_setting_and_their_experiment() {
    let Some(py) = project_python("tensorboard") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    grid(d, &["--out-dir", "g"]);
    let events = read(&py, &d.join("tb"));
    let experiment = &events["."]["_hparams_/experiment"]["experiment"];
    let names: Vec<&Value> = experiment["hparamInfos"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| &h["name"])
        .collect();
    assert_eq!(names, ["noise-rate", "normalize"]);
    assert_eq!(
        experiment["hparamInfos"][0]["domainDiscrete"],
        serde_json::json!([0.0, 0.2])
    );
    let metrics: Vec<&Value> = experiment["metricInfos"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| &m["name"])
        .collect();
    assert_eq!(
        metrics,
        [
            &serde_json::json!({"group": "validation", "tag": "epoch_binary_accuracy"}),
            &serde_json::json!({"group": "validation", "tag": "epoch_best_binary_accuracy"})
        ]
    );
    for (noise, norm) in [("0", "none"), ("0", "standard"), ("0.2", "none")] {
        for s in 0..2 {
            let setting = format!("noise-rate={noise}/normalize={norm}");
            let run = format!("{setting}/seed{s}");
            let csv = d.join(format!(
                "g/noise-rate={noise},normalize={norm}/baseline-seed{s}.csv"
            ));
            let val = assert_run_is_its_csv(&events, &run, &csv, 11);
            let best: Vec<f32> = val
                .iter()
                .scan(f32::NEG_INFINITY, |b, &v| {
                    *b = b.max(v);
                    Some(*b)
                })
                .collect();
            let shown = points(&events[format!("{run}/validation")]["epoch_best_binary_accuracy"]);
            assert_eq!(shown.iter().map(|p| p.1).collect::<Vec<_>>(), best);
            let start = &events[&run]["_hparams_/session_start_info"]["sessionStartInfo"];
            assert_eq!(start["groupName"], setting.as_str());
            let noise: f64 = noise.parse().unwrap();
            assert_eq!(
                start["hparams"],
                serde_json::json!({"noise-rate": noise, "normalize": norm})
            );
            let end = &events[&run]["_hparams_/session_end_info"]["sessionEndInfo"];
            assert_eq!(end["status"], "STATUS_SUCCESS");
        }
    }
    // Two shards of the same grid write the same runs as the whole one.
    for k in ["0/2", "1/2"] {
        let out = format!("shard{}", &k[..1]);
        ok(
            d,
            &[
                &["sweep", "--seeds", "0..2", "--vary", "noise-rate=0,0.2"][..],
                &["--vary", "normalize=none,standard", "--shard", k],
                &["--out-dir", &out, "--tensorboard", "tbs"],
                SMALL,
            ]
            .concat(),
        );
    }
    let sharded = read(&py, &d.join("tbs"));
    let runs = |v: &Value| -> Vec<String> { v.as_object().unwrap().keys().cloned().collect() };
    assert_eq!(runs(&sharded), runs(&events));
}

#[test]
fn tensorboard_serves_runs_tags_scalars_and_a_grids_hparams() {
    let Some(py) = project_python("tensorboard") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    grid(d, &["--out-dir", "g"]);
    // A killed run resumed, with its killed file put back beside the new
    // one, as a kill between the new file and the old one's removal
    // leaves them: the new one's START drops the old one's epochs.
    let args = [
        &["train", "--seed", "3", "--out", "k.csv", "-v", "0"][..],
        &["--samples", "600", "--epochs", "12", "--batch-size", "1"],
        &["--tensorboard", "tb"],
    ]
    .concat();
    let mut child = spawn(d, &args);
    stop_after_rows(&mut child, &d.join("k.csv"), 5, libc::SIGKILL);
    let train = d.join("tb/baseline/seed3/train");
    let killed = train.join(&event_files(&train)[0]);
    let bytes = std::fs::read(&killed).unwrap();
    ok(d, &["resume", "k.csv", "-v", "0", "--tensorboard", "tb"]);
    std::fs::write(&killed, bytes).unwrap();
    assert_eq!(event_files(&train).len(), 2);
    let losses: Vec<(i64, f32)> = (0..)
        .zip(rows(&d.join("k.csv")).iter().map(|r| r[2] as f32))
        .collect();
    // The Rust data server TensorBoard starts by default where it has
    // one, and its Python loader.
    for fast in ["auto", "false"] {
        let run = "baseline/seed3/train";
        let got = python_json(
            &py,
            SERVE,
            &[d.join("tb").to_str().unwrap(), fast, run, "12"],
        );
        let runs = got["runs"].as_array().unwrap();
        let grid_run = "noise-rate=0.2/normalize=standard/seed1";
        for r in [
            run.to_string(),
            format!("{grid_run}/train"),
            format!("{grid_run}/validation"),
        ] {
            assert!(
                runs.contains(&Value::from(r.clone())),
                "{fast}: {r} not in {runs:?}"
            );
        }
        let tags = &got["tags"][run];
        assert!(tags.get("epoch_loss").is_some() && tags.get("epoch_binary_accuracy").is_some());
        let served: Vec<(i64, f32)> = got["scalars"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| (p[1].as_i64().unwrap(), p[2].as_f64().unwrap() as f32))
            .collect();
        assert_eq!(served, losses, "{fast}: every epoch once, the CSV's");
        let infos = got["experiment"]["hparamInfos"].as_array().unwrap();
        assert_eq!(infos.len(), 2, "{fast}: {infos:?}");
        let groups = got["groups"]["sessionGroups"].as_array().unwrap();
        assert_eq!(groups.len(), 4, "{fast}: a row per setting");
        let group = groups
            .iter()
            .find(|g| g["name"] == "noise-rate=0.2/normalize=standard")
            .unwrap();
        assert_eq!(group["sessions"].as_array().unwrap().len(), 2, "two seeds");
        assert_eq!(group["hparams"]["noise-rate"], 0.2);
    }
}

/// `args` fails with one line containing `says`, and `d` is left as it was.
fn refused(d: &Path, args: &[&str], says: &str) {
    let before = common::files_in(d);
    let out = binclass(d, args);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(err.contains(says), "{args:?}: {err}");
    assert_eq!(common::files_in(d), before, "{args:?} wrote something");
}

#[test]
fn bad_folders_and_runs_with_events_are_refused_before_anything_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("f"), "").unwrap();
    let train =
        |tb: &'static str| [&["train", "--out", "r.csv", "--tensorboard", tb][..], SMALL].concat();
    refused(d, &train("f"), "--tensorboard f is a file; give a folder");
    refused(d, &train("f/tb"), "cannot create folder f: it is a file");
    ok(
        d,
        &[
            &["train", "--out", "a.csv", "--tensorboard", "tb"][..],
            SMALL,
        ]
        .concat(),
    );
    let taken = "pass --overwrite to replace that run's events";
    refused(d, &train("tb"), taken);
    let sweep = ["sweep", "--seeds", "0..2", "--tensorboard", "tb"];
    refused(d, &[&sweep[..], SMALL].concat(), taken);
    refused(d, &[&sweep[..], &["--out-dir", "s"], SMALL].concat(), taken);
    // Another writer's events in a run's folder would show beside its own:
    // refused even with --overwrite, which replaces only binclass's.
    let keras = d.join("tb/baseline/seed0/train/events.out.tfevents.1.h.2.v2");
    std::fs::write(&keras, "").unwrap();
    let overwrite = [&train("tb")[..], &["--overwrite"]].concat();
    refused(d, &overwrite, "was not written by binclass");
    std::fs::remove_file(&keras).unwrap();
    let before = event_files(&d.join("tb/baseline/seed0/train"));
    ok(d, &overwrite);
    let after = event_files(&d.join("tb/baseline/seed0/train"));
    assert!(after.len() == 1 && after != before, "{before:?} {after:?}");
}

#[test]
fn keras_references_tensorboard_runs_have_binclasss_layout_and_tags() {
    let Some(py) = project_python_with("tf_keras", "--keras") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/keras_reference.py");
    let o = Command::new(&py)
        .arg(&script)
        .args(["--preset", "baseline", "--seed", "0", "--epochs", "2"])
        .args(["--verbose", "0", "--threads", "1", "--out", "k.csv"])
        .args(["--tensorboard", "keras"])
        .env("TF_CPP_MIN_LOG_LEVEL", "3")
        .current_dir(d)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    ok(
        d,
        &[
            "train",
            "--epochs",
            "2",
            "-v",
            "0",
            "--out",
            "b.csv",
            "--tensorboard",
            "ours",
        ],
    );
    let (keras, ours) = (read(&py, &d.join("keras")), read(&py, &d.join("ours")));
    let shape = |v: &Value| -> Vec<(String, String, Vec<i64>)> {
        let mut all = vec![];
        for (run, tags) in v.as_object().unwrap() {
            for (tag, pts) in tags.as_object().unwrap() {
                all.push((
                    run.clone(),
                    tag.clone(),
                    points(pts).iter().map(|p| p.0).collect(),
                ));
            }
        }
        all
    };
    assert_eq!(shape(&keras), shape(&ours), "runs, tags and steps");
    // 8000 training rows in batches of 30, as the article's.
    assert_run_is_its_csv(&keras, "baseline/seed0", &d.join("k.csv"), 267);
    assert_run_is_its_csv(&ours, "baseline/seed0", &d.join("b.csv"), 267);
}

/// A run folder held per seed takes a descriptor each: a sweep of more
/// seeds than `ulimit -n` allows descriptors still runs, holding fewer.
#[test]
fn a_sweep_with_tensorboard_runs_under_a_low_descriptor_limit() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new("bash")
        .arg("-c")
        .arg(format!(
            "ulimit -n 64 && exec {} sweep --seeds 0..100 --epochs 1 --samples 300 -v 0 --out-dir s --tensorboard tb",
            common::BIN
        ))
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(rows(&dir.path().join("s/baseline-seed99.csv")).len(), 1);
}

/// A run's event file replaced by a symbolic link mid-run is not written
/// through: the run stops with a one-line error, the link's target intact.
#[test]
fn an_event_file_replaced_by_a_link_mid_run_is_not_written_through() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let args = [
        "train",
        "--out",
        "k.csv",
        "-v",
        "0",
        "--samples",
        "600",
        "--epochs",
        "40",
        "--batch-size",
        "1",
        "--tensorboard",
        "tb",
    ];
    let mut child = spawn(d, &args);
    common::wait_for_rows(&mut child, &d.join("k.csv"), 2);
    let train = d.join("tb/baseline/seed0/train");
    let event = train.join(&event_files(&train)[0]);
    std::fs::write(d.join("target"), "a user's file").unwrap();
    std::fs::remove_file(&event).unwrap();
    std::os::unix::fs::symlink(d.join("target"), &event).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(!out.status.success());
    assert_eq!(
        std::fs::read_to_string(d.join("target")).unwrap(),
        "a user's file"
    );
}

/// A `--tensorboard` folder that cannot be written (a link to nowhere, a
/// link loop, a run's folder that is a dangling link) is refused before
/// any output exists: no CSV, no sweep folder.
#[test]
fn an_unusable_tensorboard_folder_is_refused_before_any_output_exists() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::os::unix::fs::symlink("nowhere", d.join("dangling")).unwrap();
    std::os::unix::fs::symlink("loop", d.join("loop")).unwrap();
    std::fs::create_dir_all(d.join("runs-tb/baseline")).unwrap();
    std::os::unix::fs::symlink("nowhere", d.join("runs-tb/baseline/seed0")).unwrap();
    for (tb, says) in [
        (
            "dangling",
            "--tensorboard dangling is a link that leads to no folder",
        ),
        (
            "loop",
            "--tensorboard loop is a link that leads to no folder",
        ),
        (
            "runs-tb",
            "--tensorboard runs-tb/baseline/seed0 is a link that leads to no folder",
        ),
    ] {
        let train = [
            "train",
            "--epochs",
            "1",
            "--samples",
            "300",
            "-v",
            "0",
            "--out",
            "t.csv",
        ];
        let sweep = [
            "sweep",
            "--seeds",
            "0..2",
            "--epochs",
            "1",
            "--samples",
            "300",
            "-v",
            "0",
            "--out-dir",
            "s",
        ];
        for args in [&train[..], &sweep[..]] {
            refused(d, &[args, &["--tensorboard", tb]].concat(), says);
            assert!(
                !d.join("t.csv").exists() && !d.join("s").exists(),
                "{tb}: {args:?}"
            );
        }
    }
}

/// A run that wrote TensorBoard events, resumed without `--tensorboard`,
/// says that its events stop there (issue 26): the run's folder is not
/// silently left behind. With the flag, no warning.
#[test]
fn resuming_without_tensorboard_a_run_that_had_it_warns_that_its_events_stop() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let slow = ["--samples", "600", "--epochs", "12", "--batch-size", "1"];
    for (seed, flags) in [("3", &[][..]), ("4", &["--tensorboard", "tb"][..])] {
        let csv = format!("k{seed}.csv");
        let args = [
            &["train", "--seed", seed, "--out", &csv, "-v", "0"],
            &slow[..],
            &["--tensorboard", "tb"],
        ]
        .concat();
        let mut child = spawn(d, &args);
        stop_after_rows(&mut child, &d.join(&csv), 3, libc::SIGINT);
        let out = ok(d, &[&["resume", &csv, "-v", "0"][..], flags].concat());
        let err = String::from_utf8_lossy(&out.stderr);
        let says = format!(
            "warning: the run wrote TensorBoard events to tb/baseline/seed{seed}; without --tensorboard, they stop at epoch"
        );
        assert_eq!(err.contains(&says), flags.is_empty(), "{flags:?}: {err}");
    }
}
