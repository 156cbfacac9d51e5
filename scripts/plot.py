#!/usr/bin/env python3
"""Draws the article's figure from CSVLogger files (Keras's or binclass's).

One CSV: training and validation binary_accuracy per epoch, epochs 1..N on x,
y from 0.5 to 1, legend "training"/"validation" -- the article's figure.
Several CSVs (seeds of one experiment): the mean of each line with a shaded
band of one standard deviation over seeds either side (unlike a min-max band,
it does not widen as seeds are added). --reference DIR adds Keras's validation runs from DIR (its CSVs, or
those in DIR/<preset> for runs named <preset>-seed<N>.csv, so that
reference/keras serves as it does for `binclass compare`) as a band of
their own, to set ours beside them. --finals draws instead what `binclass
compare` judges: the empirical distribution of the runs' final validation
accuracy (the share of runs ending at or below each value), ours and, with
--reference, Keras's, each with its mean dashed and the 0.55 below which a
run counts as failed dotted.

  scripts/plot.py runs/baseline-seed0.csv --out baseline.png
  scripts/plot.py runs/baseline-seeds0-10/*.csv --reference reference/keras/baseline --out b.png
  scripts/plot.py runs/scaled-seeds0-200/*.csv --reference reference/keras --finals --out f.png

Files a glob brings in that are not CSVLogger files (a sweep's summary.csv)
are skipped with a note; runs of different lengths are drawn to the shortest,
with a note.
"""
import argparse
import csv
import glob
import math
import os
import re
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


COLUMNS = ("binary_accuracy", "val_binary_accuracy")


class NotCsvLogger(Exception):
    """A readable CSV without CSVLogger's columns (e.g. a sweep's summary.csv)."""


def read(path: str) -> tuple[list[float], list[float]]:
    """(binary_accuracy, val_binary_accuracy) per epoch."""
    header, rows = read_table(path)
    if not header or any(c not in header for c in COLUMNS):
        raise NotCsvLogger(path)
    if not rows:
        sys.exit(f"plot: {path}: no epochs")
    cols = [header.index(c) for c in COLUMNS]
    curves: tuple[list[float], list[float]] = ([], [])
    for line, row in enumerate(rows, start=2):
        if len(row) != len(header):
            sys.exit(f"plot: {path}: line {line} has {len(row)} fields, the header {len(header)}")
        try:
            for curve, c in zip(curves, cols):
                curve.append(float(row[c]))
        except ValueError:
            sys.exit(f"plot: {path}: line {line}: not a number: {row}")
    return curves


def read_all(paths: list[str]) -> list[tuple[list[float], list[float]]]:
    """Every CSVLogger file of `paths`; others a glob brought in are skipped with a note."""
    runs, skipped = [], []
    for path in paths:
        try:
            runs.append(read(path))
        except NotCsvLogger:
            skipped.append(path)
    if not runs:
        sys.exit(f"plot: none of {', '.join(paths)} is a CSVLogger file with {' and '.join(COLUMNS)}")
    for path in skipped:
        print(f"plot: note: skipped {path}: no {' and '.join(COLUMNS)} columns", file=sys.stderr)
    lengths = {len(r[0]) for r in runs}
    if len(lengths) > 1:
        print(
            f"plot: note: the runs have {min(lengths)} to {max(lengths)} epochs; "
            f"drawn to epoch {min(lengths)}, which all of them reach",
            file=sys.stderr,
        )
    return runs


def fail(message: str):
    """One line on stderr, exit status 1: bad input is never a traceback."""
    sys.exit(f"plot: {message}")


def read_table(path: str, fail=fail):
    """A CSV's header (None if empty) and rows; a file that cannot be read
    is one line through `fail` (plot_grid.py uses this too)."""
    try:
        with open(path, newline="") as f:
            reader = csv.reader(f)
            return next(reader, None), list(reader)
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        fail(f"{path}: {e}")


def check_out(out: str, fail=fail) -> None:
    """Refuses an --out that cannot become a PNG, before drawing; `fail`
    reports in the calling script's name (plot_boundary.py uses this too)."""
    if os.path.isdir(out):
        fail(f"--out {out} is a folder; give a file path such as {out}/figure.png")
    if not out.lower().endswith(".png"):
        fail(f"--out {out}: expected a path ending in .png")
    parent = os.path.dirname(os.path.abspath(out))
    while not os.path.exists(parent):
        parent = os.path.dirname(parent)
    if not os.path.isdir(parent):
        fail(f"--out {out}: {parent} is a file, not a folder")


def band(curves: list[list[float]]):
    """Epochs 1..n, and per epoch the mean and mean -/+ the sample sd (n - 1)."""
    n = min(len(c) for c in curves)
    x, mean, lo, hi = list(range(1, n + 1)), [], [], []
    for e in range(n):
        col = [c[e] for c in curves]
        m = sum(col) / len(col)
        sd = (sum((v - m) ** 2 for v in col) / (len(col) - 1)) ** 0.5 if len(col) > 1 else 0.0
        mean.append(m)
        lo.append(m - sd)
        hi.append(m + sd)
    return x, mean, lo, hi


def draw(ax, curves, label, color, fill=True):
    x, mean, lo, hi = band(curves)
    if len(x) == 1:
        # One epoch (`reproduce --epochs 1`): a line of one point is
        # invisible, and so is a band of no width; a dot and its ± sd bar.
        bar = [[mean[0] - lo[0]], [hi[0] - mean[0]]] if fill and len(curves) > 1 else None
        ax.errorbar(x, mean, yerr=bar, fmt="o", color=color, label=label, capsize=4)
        return
    ax.plot(x, mean, label=label, color=color, linewidth=1.2)
    if fill and len(curves) > 1:
        ax.fill_between(x, lo, hi, color=color, alpha=0.2, linewidth=0)


FAILED_BELOW = 0.55  # as binclass compare counts a failed run


def distribution(ax, finals: list[float], label: str, color: str) -> None:
    """One step per run up to the share of runs ending at or below it, and the mean dashed."""
    xs = sorted(v for v in finals if math.isfinite(v))
    if not xs:
        return
    mean = sum(xs) / len(xs)
    ax.step([xs[0]] + xs, [i / len(xs) for i in range(len(xs) + 1)], where="post", color=color,
            label=f"{label}: {len(xs)} runs, mean {mean:.4f}")
    ax.axvline(mean, color=color, linestyle="--", linewidth=0.8)


def finals(runs, ref, title, out: str) -> None:
    """At the last epoch every run has, as `binclass compare` judges runs of unequal lengths."""
    last = min(len(r[1]) for r in runs + ref)
    fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=110)
    distribution(ax, [r[1][last - 1] for r in runs], "ours", "tab:blue")
    if ref:
        distribution(ax, [r[1][last - 1] for r in ref], "Keras", "tab:green")
    ax.axvline(FAILED_BELOW, color="grey", linestyle=":", linewidth=0.8, label=f"failed below {FAILED_BELOW}")
    ax.set_ylim(0, 1.02)
    ax.set_xlabel(f"Validation accuracy at epoch {last}")
    ax.set_ylabel("Share of runs ending at or below it")
    if title:
        ax.set_title(title)
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    write_png(fig, out)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("csv", nargs="+", help="CSVLogger files (one run, or seeds of one experiment)")
    p.add_argument("--out", required=True, help="PNG to write")
    p.add_argument("--reference", help="folder of Keras CSVs of the same experiment, or of presets' folders")
    p.add_argument("--title", default=None)
    p.add_argument("--finals", action="store_true", help="the distribution of final validation accuracy instead")
    a = p.parse_args()
    check_out(a.out)

    runs = read_all(a.csv)
    if a.finals:
        return finals(runs, read_all(reference_files(a.reference, a.csv)) if a.reference else [], a.title, a.out)
    fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=110)
    many = len(runs) > 1
    draw(ax, [r[0] for r in runs], "training" + (f" (mean of {len(runs)}, ± sd)" if many else ""), "tab:blue")
    draw(ax, [r[1] for r in runs], "validation" + (f" (mean of {len(runs)}, ± sd)" if many else ""), "tab:orange")
    if a.reference:
        ref = [r[1] for r in read_all(reference_files(a.reference, a.csv))]
        draw(ax, ref, f"Keras validation (mean of {len(ref)}, ± sd)", "tab:green")
    ax.set_ylim(0.5, 1)
    save(fig, ax, "Accuracy", a.title, a.out)


def reference_files(folder: str, runs: list[str]) -> list[str]:
    """Keras's CSVs in `folder`; or, given a folder of presets' folders as
    `binclass compare --reference` takes (reference/keras), those of the
    preset the runs' names (<preset>-seed<N>.csv) share."""
    files = sorted(glob.glob(os.path.join(folder, "*.csv")))
    if files:
        return files
    names = [re.fullmatch(r"(.+)-seed\d+(-\d+)?", os.path.splitext(os.path.basename(r))[0]) for r in runs]
    presets = {m.group(1) for m in names if m}
    if len(presets) == 1:
        files = sorted(glob.glob(os.path.join(folder, presets.pop(), "*.csv")))
        if files:
            return files
    sys.exit(f"plot: {folder}: no CSV files, nor a folder of the runs' preset in it "
             f"(give one preset's folder, e.g. {os.path.join(folder, 'baseline')})")


def save(fig, ax, ylabel: str, title, out: str, xlabel: str = "Epochs") -> None:
    """Labels (epochs on x unless told), legend, and the PNG at `out`, its folder made;
    written under a temporary name, then renamed, so a failure leaves no torn file."""
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    write_png(fig, out)


def write_png(fig, out: str, fail=fail) -> None:
    """The PNG at `out`, its folder made; written under a temporary name,
    then renamed, so a failure leaves no torn file."""
    folder = os.path.dirname(os.path.abspath(out))
    tmp = os.path.join(folder, f".{os.path.basename(out)}.{os.getpid()}.tmp")
    try:
        os.makedirs(folder, exist_ok=True)
        fig.savefig(tmp, format="png")
        os.replace(tmp, out)
    except OSError as e:
        if os.path.exists(tmp):
            os.remove(tmp)
        fail(f"cannot write {out}: {e.strerror or e}")


if __name__ == "__main__":
    main()
