//! `binclass compare`: small hand-made CSVs with known answers; the
//! committed Keras runs (`reference/keras`, seeds 0..10 of each preset)
//! relabelled, halved and subsampled, where the right verdict is known by
//! construction; and the verdict's error rates, measured on random splits
//! of large binclass sweeps (`tests/fixtures/calibration`).

mod common;

use std::path::{Path, PathBuf};

use binclass::compare::{self, Curve, Verdict};
use common::binclass;

const HEADER: &str = "epoch,binary_accuracy,loss,val_binary_accuracy,val_loss\n";

/// A CSV whose validation accuracy is `vals`, epoch by epoch.
fn write_curve(path: &Path, vals: &[f64]) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let mut text = HEADER.to_string();
    for (e, v) in vals.iter().enumerate() {
        text += &format!("{e},{v},0.1,{v},0.1\n");
    }
    std::fs::write(path, text).unwrap();
}

/// Ten Keras seeds of `preset` around `level`, and ten of ours at `ours`.
fn setup(dir: &Path, preset: &str, level: f64, ours: f64) {
    for s in 0..10 {
        let jitter = s as f64 * 0.001;
        write_curve(
            &dir.join(format!("ref/{preset}/seed-{s}.csv")),
            &[level - 0.05, level + jitter, level + jitter],
        );
        write_curve(
            &dir.join(format!("ours/{preset}-seed{s}.csv")),
            &[ours - 0.05, ours + jitter, ours + jitter],
        );
    }
}

#[test]
fn matching_runs_are_consistent_and_shifted_runs_differ() {
    let dir = tempfile::tempdir().unwrap();
    setup(dir.path(), "baseline", 0.98, 0.9805);
    setup(dir.path(), "noise", 0.80, 0.70);
    let out = binclass(dir.path(), &["compare", "ours", "--reference", "ref"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = |p: &str| {
        text.lines()
            .find(|l| l.starts_with(p))
            .unwrap_or_else(|| panic!("{p}: {text}"))
    };
    assert!(line("baseline ").ends_with("consistent"), "{text}");
    assert!(line("noise ").ends_with("differs"), "{text}");
    assert!(
        line("noise ").contains("-0.1000"),
        "mean difference: {text}"
    );
    // The article's statements, on Keras's runs and ours.
    assert!(text.contains("falls by about the noise"), "{text}");

    let strict = binclass(
        dir.path(),
        &["compare", "ours", "--reference", "ref", "--strict"],
    );
    assert!(!strict.status.success());
    assert!(String::from_utf8_lossy(&strict.stderr).contains("noise differ"));

    let md = binclass(
        dir.path(),
        &[
            "compare",
            "ours",
            "--reference",
            "ref",
            "--format",
            "markdown",
        ],
    );
    assert!(String::from_utf8_lossy(&md.stdout).contains("| baseline | 10/10 |"));
    let csv = binclass(
        dir.path(),
        &["compare", "ours", "--reference", "ref", "--format", "csv"],
    );
    let csv = String::from_utf8_lossy(&csv.stdout);
    assert!(
        csv.starts_with("preset,") && csv.lines().count() == 3,
        "{csv}"
    );
}

#[test]
fn keras_csvlogger_files_and_ours_are_both_read() {
    let dir = tempfile::tempdir().unwrap();
    // Keras's own CSVLogger output, as written by tf-keras 2.21.
    let keras = "epoch,binary_accuracy,loss,val_binary_accuracy,val_loss\n\
                 0,0.9476249814033508,0.11112306267023087,0.9890000224113464,0.028887132182717323\n\
                 1,0.9806249737739563,0.04572344943881035,0.9925000071525574,0.019265757873654366\n";
    for s in 0..3 {
        std::fs::create_dir_all(dir.path().join("ref/baseline")).unwrap();
        std::fs::write(dir.path().join(format!("ref/baseline/seed-{s}.csv")), keras).unwrap();
    }
    // Ours from binclass itself: with its .json record, the --epochs override
    // makes them runs Keras has no counterpart for, listed as such ...
    for seed in ["0", "1"] {
        let out = format!("mine/baseline-seed{seed}.csv");
        let args = [
            "train",
            "--epochs",
            "2",
            "--verbose",
            "0",
            "--seed",
            seed,
            "--out",
            &out,
        ];
        assert!(binclass(dir.path(), &args).status.success());
    }
    let out = binclass(dir.path(), &["compare", "mine", "--reference", "ref"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stdout)
            .contains("baseline [epochs=2], adam: 2 seeds, no Keras reference")
    );
    // ... and without it, the preset comes from the file name.
    for seed in ["0", "1"] {
        std::fs::remove_file(
            dir.path()
                .join(format!("mine/baseline-seed{seed}.csv.json")),
        )
        .unwrap();
    }
    let out = binclass(dir.path(), &["compare", "mine", "--reference", "ref"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("baseline  2/3"));
}

#[test]
fn malformed_or_mismatched_input_is_rejected_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    setup(dir.path(), "baseline", 0.98, 0.98);
    let bad: &[(&str, &str, &str)] = &[
        ("empty.csv", "", "empty file"),
        ("headonly.csv", HEADER, "no epochs"),
        (
            "nocol.csv",
            "epoch,loss\n0,0.1\n",
            "no `binary_accuracy` column",
        ),
        (
            "text.csv",
            &format!("{HEADER}0,abc,0.1,0.9,0.1\n"),
            "'abc' is not a number",
        ),
        (
            "gap.csv",
            &format!("{HEADER}0,0.9,0.1,0.9,0.1\n2,0.9,0.1,0.9,0.1\n"),
            "has epoch 2, expected 1",
        ),
    ];
    for (name, text, expected) in bad {
        let p = dir
            .path()
            .join("bad")
            .join(format!("baseline-seed0-{name}"));
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, text).unwrap();
        let out = binclass(
            dir.path(),
            &["compare", p.to_str().unwrap(), "--reference", "ref"],
        );
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{name}");
        assert_eq!(err.trim().lines().count(), 1, "{err}");
        assert!(err.contains(expected), "{name}: {err}");
    }
    let out = binclass(dir.path(), &["compare", "missing", "--reference", "ref"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("missing: no such file or folder"));
    // Runs of other lengths than Keras's, or a single seed, are refused.
    write_curve(
        &dir.path().join("long/baseline-seed0.csv"),
        &[0.9, 0.9, 0.9, 0.9],
    );
    write_curve(
        &dir.path().join("long/baseline-seed1.csv"),
        &[0.9, 0.9, 0.9, 0.9],
    );
    let out = binclass(dir.path(), &["compare", "long", "--reference", "ref"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("compare runs of the same length"));
    let out = binclass(
        dir.path(),
        &["compare", "long/baseline-seed0.csv", "--reference", "ref"],
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("at least 2 seeds on each side"));
    write_curve(&dir.path().join("other/shifted-seed0.csv"), &[0.5, 0.5]);
    let out = binclass(dir.path(), &["compare", "other", "--reference", "ref"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("preset 'shifted' has no Keras runs"));
}

/// The committed Keras runs.
/// `binclass compare ours --reference REFERENCE` in `dir`.
fn compare_ours(dir: &Path, reference: &Path) -> std::process::Output {
    binclass(
        dir,
        &[
            "compare",
            "ours",
            "--reference",
            reference.to_str().unwrap(),
        ],
    )
}

/// A failed command's one line of stderr.
fn one_line_error(o: &std::process::Output) -> String {
    let (_, err) = text(o);
    assert!(!o.status.success(), "succeeded");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    err
}

fn keras_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("reference/keras")
}

fn keras_csv(preset: &str, seed: usize) -> PathBuf {
    keras_dir().join(format!("{preset}/seed-{seed}.csv"))
}

/// Seeds 0..10 of every preset's Keras runs copied to `dir/ref10`, so that
/// what a test expects does not move as `reference/keras` grows.
fn ten_seed_reference(dir: &Path) -> PathBuf {
    let to = dir.join("ref10");
    for p in binclass::config::preset_names() {
        std::fs::create_dir_all(to.join(p)).unwrap();
        for s in 0..10 {
            std::fs::copy(keras_csv(p, s), to.join(format!("{p}/seed-{s}.csv"))).unwrap();
        }
    }
    to
}

/// Keras's `from` runs of `seeds`, copied to `dir/<to>-seed<N>.csv` as if ours.
fn keras_as_ours(dir: &Path, from: &str, to: &str, seeds: impl IntoIterator<Item = usize>) {
    std::fs::create_dir_all(dir).unwrap();
    for s in seeds {
        std::fs::copy(keras_csv(from, s), dir.join(format!("{to}-seed{s}.csv"))).unwrap();
    }
}

fn text(out: &std::process::Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The comparison table's row of `preset` (the first line that starts with it).
fn row<'a>(stdout: &'a str, preset: &str) -> &'a str {
    stdout
        .lines()
        .find(|l| l.starts_with(&format!("{preset} ")))
        .unwrap_or_else(|| panic!("no row for {preset}: {stdout}"))
}

#[test]
fn keras_runs_of_another_preset_relabelled_as_ours_differ() {
    for (from, to) in [
        ("shifted", "baseline"),
        ("noise", "baseline"),
        ("baseline", "shifted"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        keras_as_ours(&dir.path().join("ours"), from, to, 0..10);
        let reference = keras_dir();
        let args = [
            "compare",
            "ours",
            "--reference",
            reference.to_str().unwrap(),
        ];
        let (out, err) = text(&binclass(dir.path(), &args));
        assert!(
            row(&out, to).ends_with("differs"),
            "{from} as {to}: {out}{err}"
        );
        let strict = binclass(dir.path(), &[&args[..], &["--strict"]].concat());
        let (_, err) = text(&strict);
        assert!(!strict.status.success());
        assert!(err.contains(&format!("--strict: {to} differ")), "{err}");
    }
}

/// `ours/<preset>-seed<N>.csv` for `ours_seeds` and `ref/<preset>/seed-<N>.csv`
/// for `ref_seeds`, every preset, both from the committed Keras runs.
fn split_reference(dir: &Path, ours_seeds: &[usize], ref_seeds: &[usize]) {
    for p in binclass::config::preset_names() {
        keras_as_ours(&dir.join("ours"), p, p, ours_seeds.iter().copied());
        std::fs::create_dir_all(dir.join("ref").join(p)).unwrap();
        for &s in ref_seeds {
            std::fs::copy(keras_csv(p, s), dir.join(format!("ref/{p}/seed-{s}.csv"))).unwrap();
        }
    }
}

#[test]
fn two_halves_of_the_keras_reference_never_differ() {
    let halves: [&[usize]; 2] = [&[0, 1, 2, 3, 4], &[5, 6, 7, 8, 9]];
    for (ours, theirs) in [(halves[0], halves[1]), (halves[1], halves[0])] {
        let dir = tempfile::tempdir().unwrap();
        split_reference(dir.path(), ours, theirs);
        let out = binclass(dir.path(), &["compare", "ours", "--reference", "ref"]);
        let (out, err) = text(&out);
        for p in binclass::config::preset_names() {
            let line = row(&out, p);
            assert!(
                line.ends_with("consistent") || line.ends_with("inconclusive"),
                "{ours:?} against {theirs:?}: {line}\n{err}"
            );
        }
    }
}

#[test]
fn two_seeds_of_scaled_are_inconclusive_with_the_seeds_needed() {
    let dir = tempfile::tempdir().unwrap();
    keras_as_ours(&dir.path().join("ours"), "scaled", "scaled", 0..2);
    let reference = ten_seed_reference(dir.path());
    let (out, err) = text(&compare_ours(dir.path(), &reference));
    let line = row(&out, "scaled");
    assert!(line.ends_with("inconclusive"), "{line}\n{err}");
    // Beside Keras's 10 no number of ours would do: the count is a side's,
    // from Keras's sd of 0.07 over its 10 seeds, ~200 for ±0.02.
    let at = line.find(" a side").expect("seeds a side");
    let needed: u64 = line[..at].rsplit(' ').next().unwrap().parse().unwrap();
    assert!((100..1000).contains(&needed), "{line}");
    assert!(
        out.contains(&format!(
            "about {needed} seeds a side would show equivalence within ±0.02"
        )) && out.contains("from Keras's 10 seeds"),
        "{out}"
    );
}

/// Every 5-seed subset of a preset's 10 Keras runs.
fn five_of_ten(all: &[Curve]) -> impl Iterator<Item = Vec<Curve>> + '_ {
    (0u32..1 << 10)
        .filter(|m| m.count_ones() == 5)
        .map(move |m| {
            (0..10)
                .filter(|i| m >> i & 1 == 1)
                .map(|i| all[i].clone())
                .collect()
        })
}

#[test]
fn every_five_seed_subset_of_the_reference_against_all_ten_never_differs() {
    let mut trials = 0;
    for p in binclass::config::preset_names() {
        // Seeds 0..10 by name: the reference may hold more.
        let all: Vec<Curve> = (0..10)
            .map(|s| compare::read_curve(&keras_csv(p, s)).unwrap())
            .collect();
        for subset in five_of_ten(&all) {
            let r =
                compare::compare_preset(p, "adam", &subset, &all, compare::DEFAULT_MARGIN).unwrap();
            assert_ne!(r.verdict, Verdict::Differs, "{p}: {:?}", r.judged);
            trials += 1;
        }
    }
    assert_eq!(trials, 6 * 252);
}

#[test]
fn every_split_of_the_reference_into_two_halves_rarely_differs() {
    let mut lines = vec![];
    for p in binclass::config::preset_names() {
        let finals: Vec<f64> = (0..10)
            .map(|s| {
                *compare::read_curve(&keras_csv(p, s))
                    .unwrap()
                    .last()
                    .unwrap()
            })
            .map(|row| row[compare::VAL_ACC])
            .collect();
        let mut counts = [0; 3];
        for m in (0u32..1 << 10).filter(|m| m.count_ones() == 5) {
            let side = |inside: bool| {
                (0..10)
                    .filter(|i| (m >> i & 1 == 1) == inside)
                    .map(|i| finals[i])
                    .collect::<Vec<_>>()
            };
            let j = compare::judge(&side(true), &side(false), (0, 0), compare::DEFAULT_MARGIN);
            counts[j.verdict as usize] += 1;
        }
        lines.push(format!(
            "| {p} | {} | {} | {} |",
            counts[0], counts[1], counts[2]
        ));
        // The 252 splits are every relabelling of one sample: a test right
        // about its level rejects on at most 5% of them (12.6).
        assert!(counts[1] <= 12, "{p}: {counts:?}");
    }
    println!("{}", lines.join("\n"));
}

#[test]
fn the_same_run_given_twice_or_under_two_names_counts_once() {
    let dir = tempfile::tempdir().unwrap();
    // The case: `train` twice, the second writing baseline-seed0-1.csv.
    for _ in 0..2 {
        let args = [
            "train",
            "--epochs",
            "2",
            "--samples",
            "600",
            "--verbose",
            "0",
        ];
        common::ok(dir.path(), &args);
    }
    let (out, _) = text(&common::ok(
        dir.path(),
        &[
            "compare",
            "runs",
            "--reference",
            keras_dir().to_str().unwrap(),
        ],
    ));
    assert!(out.contains("adam: 1 seed, no Keras reference"), "{out}");
    assert!(
        out.contains("runs/baseline-seed0-1.csv and runs/baseline-seed0.csv are the same run"),
        "{out}"
    );

    // Against Keras: a copy under a second name, and a file given twice.
    let ours = dir.path().join("ours");
    keras_as_ours(&ours, "baseline", "baseline", 0..2);
    std::fs::copy(
        ours.join("baseline-seed0.csv"),
        ours.join("baseline-seed0-1.csv"),
    )
    .unwrap();
    let reference = ten_seed_reference(dir.path());
    let args = [
        "compare",
        "ours",
        "ours/baseline-seed1.csv",
        "--reference",
        reference.to_str().unwrap(),
    ];
    let (out, err) = text(&binclass(dir.path(), &args));
    assert!(
        row(&out, "baseline").starts_with("baseline  2/10 "),
        "{out}{err}"
    );
    assert!(out.contains("ours/baseline-seed1.csv is ours/baseline-seed1.csv again: counted once"));
    assert!(out.contains(
        "ours/baseline-seed0-1.csv and ours/baseline-seed0.csv are the same run (baseline seed 0"
    ));

    // Two different runs claiming one seed: which to keep is the user's call.
    std::fs::copy(keras_csv("baseline", 2), ours.join("baseline-seed0-2.csv")).unwrap();
    let o = binclass(dir.path(), &args);
    let err = one_line_error(&o);
    assert!(
        err.contains("are both baseline seed 0 (unrecorded) but their metrics differ"),
        "{err}"
    );
}

#[test]
fn two_seeds_one_edited_to_end_at_half_are_not_consistent() {
    let dir = tempfile::tempdir().unwrap();
    let ours = dir.path().join("ours");
    keras_as_ours(&ours, "baseline", "baseline", 0..2);
    let path = ours.join("baseline-seed1.csv");
    let text_of = std::fs::read_to_string(&path).unwrap();
    let mut lines: Vec<String> = text_of.lines().map(str::to_string).collect();
    let last = lines.pop().unwrap();
    let mut cells: Vec<&str> = last.split(',').collect();
    cells[3] = "0.5"; // val_binary_accuracy
    lines.push(cells.join(","));
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    let reference = keras_dir();
    let args = [
        "compare",
        "ours",
        "--reference",
        reference.to_str().unwrap(),
    ];
    let (out, _) = text(&binclass(dir.path(), &args));
    let line = row(&out, "baseline");
    assert!(!line.ends_with("consistent"), "{line}");
    let o = binclass(
        dir.path(),
        &[&args[..], &["--strict-inconclusive"]].concat(),
    );
    let (_, err) = text(&o);
    assert!(!o.status.success(), "{out}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("--strict-inconclusive: baseline"), "{err}");
}

#[test]
fn impossible_values_are_one_line_errors_naming_file_and_row() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            "0.9,0.1,2.5,0.1",
            "row 2 (epoch 1): val_binary_accuracy 2.5 is outside [0, 1]",
        ),
        (
            "-0.5,0.1,0.9,0.1",
            "row 2 (epoch 1): binary_accuracy -0.5 is outside [0, 1]",
        ),
        ("0.9,-0.1,0.9,0.1", "row 2 (epoch 1): loss -0.1 is negative"),
        ("0.9,0.1,0.9,x", "row 2: 'x' is not a number"),
    ];
    for (i, (values, expected)) in cases.iter().enumerate() {
        let folder = dir.path().join(format!("case{i}/deep/er"));
        std::fs::create_dir_all(&folder).unwrap();
        let csv = folder.join("baseline-seed0.csv");
        std::fs::write(&csv, format!("{HEADER}0,0.9,0.1,0.9,0.1\n1,{values}\n")).unwrap();
        let o = binclass(dir.path(), &["compare", &format!("case{i}")]);
        let err = one_line_error(&o);
        assert!(
            err.contains(&format!("case{i}/deep/er/baseline-seed0.csv: {expected}")),
            "{err}"
        );
    }
}

#[test]
fn a_diverged_run_is_reported_as_diverged_not_averaged() {
    let dir = tempfile::tempdir().unwrap();
    let ours = dir.path().join("ours");
    keras_as_ours(&ours, "baseline", "baseline", 0..3);
    let mut text_of = HEADER.to_string();
    for e in 0..100 {
        let loss = if e < 40 { "0.1" } else { "nan" };
        text_of += &format!("{e},0.5,{loss},0.5,{loss}\n");
    }
    std::fs::write(ours.join("baseline-seed3.csv"), text_of).unwrap();
    let reference = ten_seed_reference(dir.path());
    let o = compare_ours(dir.path(), &reference);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{err}");
    let line = row(&out, "baseline");
    assert!(line.starts_with("baseline  3+1 diverged/10 "), "{line}");
    // The diverged run's 0.5 is not in our mean.
    assert!(line.contains("  0.99"), "{line}");
}

#[test]
fn a_reproduce_style_folder_compares_keras_adam_and_adam_apart_and_lists_variants() {
    let dir = tempfile::tempdir().unwrap();
    let sweeps: [(&str, &[&str]); 3] = [
        ("R/runs/baseline", &[]),
        ("R/runs/baseline-keras-adam", &["--optimizer", "keras-adam"]),
        (
            "R/runs/scaled-standard",
            &["--normalize", "standard", "--epochs", "2"],
        ),
    ];
    for (out_dir, extra) in sweeps {
        let preset = if out_dir.contains("scaled") {
            "scaled"
        } else {
            "baseline"
        };
        let args = [
            "sweep",
            "-e",
            preset,
            "--seeds",
            "0..3",
            "--verbose",
            "0",
            "--out-dir",
            out_dir,
        ];
        common::ok(dir.path(), &[&args[..], extra].concat());
    }
    let r = dir.path().join("R");
    std::fs::create_dir_all(r.join("figures")).unwrap();
    std::fs::write(r.join("figures/baseline.png"), b"\x89PNG").unwrap();
    std::fs::write(r.join("REPORT.md"), "# report\n").unwrap();
    std::fs::write(r.join("runs/steps.csv"), "step,loss\n0,0.1\n").unwrap();
    // No --reference: found beside the binary, as a user outside the checkout would.
    let (out, err) = text(&common::ok(dir.path(), &["compare", "R"]));
    let rows: Vec<&str> = out.lines().filter(|l| l.starts_with("baseline ")).collect();
    let adam = rows
        .iter()
        .find(|l| l.contains(" adam "))
        .expect("an adam row");
    let keras_adam = rows
        .iter()
        .find(|l| l.contains(" keras-adam "))
        .expect("a keras-adam row");
    let keras_seeds = compare::csvs_in(&keras_dir().join("baseline"))
        .unwrap()
        .len();
    for line in [adam, keras_adam] {
        assert!(
            line.starts_with(&format!("baseline  3/{keras_seeds} ")),
            "{line}"
        );
        assert!(!line.ends_with("differs"), "{line}\n{err}");
    }
    assert!(
        out.contains("  baseline, adam: 3 seeds\n  baseline, keras-adam: 3 seeds\n"),
        "{out}"
    );
    assert!(
        out.contains("scaled [epochs=2, normalize=standard], adam: 3 seeds, no Keras reference"),
        "{out}"
    );
    assert!(
        out.contains("not runs, skipped: R/runs/steps.csv\n"),
        "{out}"
    );
    assert!(!out.contains("summary.csv"), "{out}");
}

#[test]
fn the_margin_is_checked_and_the_rule_is_in_the_help() {
    let dir = tempfile::tempdir().unwrap();
    setup(dir.path(), "baseline", 0.98, 0.98);
    for bad in ["0", "1", "-0.02", "nan", "inf", "two"] {
        let o = binclass(
            dir.path(),
            &["compare", "ours", "--reference", "ref", "--margin", bad],
        );
        let (_, err) = text(&o);
        assert!(!o.status.success(), "{bad}");
        assert_eq!(err.trim().lines().count(), 1, "{err}");
        assert!(err.contains("--margin"), "{err}");
    }
    let (help, _) = text(&common::ok(dir.path(), &["compare", "--help"]));
    for part in [
        "permutation test of the mean difference",
        "Fisher's exact test",
        "Holm",
        "bootstrap-t interval",
        "inconclusive",
        "(t[0.95; n-1] + t[0.90; n-1])^2 s^2 (1/n + 1/n_other) <= δ^2",
    ] {
        assert!(help.contains(part), "{part}: {help}");
    }
}

/// Final validation accuracies of a calibration fixture
/// (`tests/fixtures/calibration/`, made as docs/compare.md says): a sweep's
/// summary.csv cut to its knob, seed and final columns; only the rows whose
/// `noise-rate` is `rate`, when given.
fn calibration_finals(name: &str, rate: Option<&str>) -> Vec<f64> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(format!("tests/fixtures/calibration/{name}.csv"));
    let mut r = csv::Reader::from_path(&path).unwrap();
    let head = r.headers().unwrap().clone();
    let col = |name: &str| head.iter().position(|h| h == name);
    let fin = col("final_val_binary_accuracy").unwrap();
    r.records()
        .map(Result::unwrap)
        .filter(|row| rate.is_none_or(|rate| row.get(col("noise-rate").unwrap()) == Some(rate)))
        .map(|row| row[fin].parse().unwrap())
        .collect()
}

/// [consistent, differs, inconclusive, a test of the family rejects
/// whatever the size of the difference] over `trials` seeded draws of
/// disjoint seeds, `na` of `a`'s runs as ours against `nb` of `b`'s as
/// Keras's, judged by the verdict `compare` gives.
fn verdicts(a: &[f64], b: &[f64], (na, nb): (usize, usize), trials: usize) -> [usize; 4] {
    use rand::SeedableRng;
    use rand::seq::SliceRandom;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64((na * 100_000 + nb) as u64);
    let mut seeds: Vec<usize> = (0..a.len().min(b.len())).collect();
    let mut counts = [0; 4];
    for _ in 0..trials {
        seeds.shuffle(&mut rng);
        let ours: Vec<f64> = seeds[..na].iter().map(|&s| a[s]).collect();
        let keras: Vec<f64> = seeds[na..na + nb].iter().map(|&s| b[s]).collect();
        let j = compare::judge(&ours, &keras, (0, 0), compare::DEFAULT_MARGIN);
        counts[j.verdict as usize] += 1;
        counts[3] += usize::from(j.p_mean.min(j.p_failed) <= compare::ALPHA);
    }
    counts
}

/// The most times an event of rate 5% may come in `trials` before the
/// count is evidence (one-sided, at 0.1%) that its rate is higher.
fn allowance(trials: usize) -> usize {
    use statrs::distribution::{Binomial, DiscreteCDF};
    let b = Binomial::new(0.05, trials as u64).unwrap();
    (0..=trials).find(|&c| b.sf(c as u64) < 0.001).unwrap()
}

/// A row of docs/compare.md's calibration tables.
fn rates(label: &str, (na, nb): (usize, usize), c: [usize; 4]) -> String {
    let trials = c[..3].iter().sum::<usize>();
    let share = |k: usize| 100.0 * c[k] as f64 / trials as f64;
    format!(
        "| {label} | {na} vs {nb} | {trials} | {:.1} % | {:.1} % | {:.1} % | {:.1} % | {} |",
        share(0),
        share(1),
        share(2),
        share(3),
        allowance(trials)
    )
}

#[test]
fn calibration_a_false_differs_comes_at_most_one_time_in_twenty_on_splits_of_one_sweep() {
    for preset in ["scaled", "baseline"] {
        let runs = calibration_finals(preset, None);
        for (sides, trials) in [
            ((10, 190), 400),
            ((30, 970), 400),
            ((300, 1000), 200),
            ((5, 5), 400),
            ((10, 10), 400),
            ((100, 100), 400),
            ((650, 650), 200),
        ] {
            let c = verdicts(&runs, &runs, sides, trials);
            println!("{}", rates(preset, sides, c));
            // `differs` needs a test of the family to reject (Holm, 5%): that
            // rejection, before δ filters it, is what must stay rare.
            assert!(c[3] <= allowance(trials), "{}", rates(preset, sides, c));
        }
    }
}

#[test]
fn calibration_consistent_is_rarely_said_where_the_truth_differs_by_more_than_the_margin() {
    let at = |rate| calibration_finals("noise", Some(rate));
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    for (ra, rb) in [("0.1", "0.15"), ("0.1", "0.125")] {
        let (a, b) = (at(ra), at(rb));
        // The truth, over all 1300 seeds of each.
        let truth = mean(&a) - mean(&b);
        assert!(truth > compare::DEFAULT_MARGIN, "{truth}");
        let label = format!("noise-rate {ra} vs {rb}");
        println!("{label}: difference of means over 1300 seeds {truth:+.4}");
        for sides in [
            (2, 2),
            (3, 3),
            (5, 5),
            (10, 10),
            (30, 30),
            (10, 190),
            (190, 10),
        ] {
            let c = verdicts(&a, &b, sides, 400);
            println!("{}", rates(&label, sides, c));
            assert!(c[0] <= allowance(400), "{}", rates(&label, sides, c));
        }
    }
}

/// The bootstrap resamples runs in a canonical order (preset, optimizer,
/// seed), not the order files were found in: the same runs given in
/// another order get the same numbers and verdicts, to the last digit.
#[test]
fn the_same_runs_given_in_any_order_get_the_same_report() {
    let dir = tempfile::tempdir().unwrap();
    let reference = ten_seed_reference(dir.path());
    keras_as_ours(&dir.path().join("p"), "scaled", "scaled", [7, 1, 4]);
    keras_as_ours(&dir.path().join("q"), "scaled", "scaled", [0, 9, 3, 5]);
    keras_as_ours(&dir.path().join("p"), "noise", "noise", [2, 8]);
    keras_as_ours(&dir.path().join("q"), "noise", "noise", [0, 5, 6]);
    let report = |order: [&str; 2]| {
        let mut args = vec!["compare"];
        args.extend(order);
        args.extend(["--reference", reference.to_str().unwrap()]);
        text(&common::ok(dir.path(), &args)).0
    };
    assert_eq!(report(["p", "q"]), report(["q", "p"]));
}

/// A sweep's folder holds the runs its manifest plans: a run trained into
/// it by hand is named in the notes, never counted (issue 26, finding 1).
#[test]
fn a_folder_with_a_manifest_counts_only_the_runs_its_plan_names() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let small = ["--epochs", "1", "--samples", "300", "-v", "0"];
    common::ok(
        d,
        &[&["sweep", "--seeds", "0..3", "--out-dir", "s"][..], &small].concat(),
    );
    let stray = ["train", "--seed", "7", "--out", "s/baseline-seed7.csv"];
    common::ok(d, &[&stray[..], &small].concat());
    let out = common::ok(d, &["compare", "s"]);
    let (stdout, _) = text(&out);
    assert!(stdout.contains("adam: 3 seeds"), "{stdout}");
    assert!(
        stdout.contains("so not counted: s/baseline-seed7.csv"),
        "{stdout}"
    );
    // Given by name, the same file is a run like any other.
    let out = common::ok(d, &["compare", "s", "s/baseline-seed7.csv"]);
    assert!(text(&out).0.contains("adam: 4 seeds"), "{}", text(&out).0);
}
