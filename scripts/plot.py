#!/usr/bin/env python3
"""Draws the article's figure from CSVLogger files (Keras's or binclass's).

One CSV: training and validation binary_accuracy per epoch, epochs 1..N on x,
y from 0.5 to 1, legend "training"/"validation" -- the article's figure.
Several CSVs (seeds of one experiment): the mean of each line with a shaded
band of one standard deviation over seeds either side (unlike a min-max band,
it does not widen as seeds are added). --reference DIR adds Keras's validation runs from DIR (its CSVs)
as a band of their own, to set ours beside them.

  scripts/plot.py runs/baseline-seed0.csv --out baseline.png
  scripts/plot.py runs/baseline-seeds0-10/*.csv --reference reference/keras/baseline --out b.png
"""
import argparse
import csv
import glob
import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def read(path: str) -> tuple[list[float], list[float]]:
    """(binary_accuracy, val_binary_accuracy) per epoch."""
    try:
        with open(path, newline="") as f:
            rows = list(csv.DictReader(f))
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        sys.exit(f"plot: {path}: {e}")
    if not rows or "val_binary_accuracy" not in rows[0] or "binary_accuracy" not in rows[0]:
        sys.exit(f"plot: {path}: not a CSVLogger file with binary_accuracy and val_binary_accuracy")
    try:
        return [float(r["binary_accuracy"]) for r in rows], [float(r["val_binary_accuracy"]) for r in rows]
    except ValueError as e:
        sys.exit(f"plot: {path}: {e}")


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
    ax.plot(x, mean, label=label, color=color, linewidth=1.2)
    if fill and len(curves) > 1:
        ax.fill_between(x, lo, hi, color=color, alpha=0.2, linewidth=0)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("csv", nargs="+", help="CSVLogger files (one run, or seeds of one experiment)")
    p.add_argument("--out", required=True, help="PNG to write")
    p.add_argument("--reference", help="folder of Keras CSVs of the same experiment")
    p.add_argument("--title", default=None)
    a = p.parse_args()

    runs = [read(f) for f in a.csv]
    fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=110)
    many = len(runs) > 1
    draw(ax, [r[0] for r in runs], "training" + (f" (mean of {len(runs)}, ± sd)" if many else ""), "tab:blue")
    draw(ax, [r[1] for r in runs], "validation" + (f" (mean of {len(runs)}, ± sd)" if many else ""), "tab:orange")
    if a.reference:
        files = sorted(glob.glob(os.path.join(a.reference, "*.csv")))
        if not files:
            sys.exit(f"plot: {a.reference}: no CSV files")
        ref = [read(f)[1] for f in files]
        draw(ax, ref, f"Keras validation (mean of {len(ref)}, ± sd)", "tab:green")
    ax.set_ylim(0.5, 1)
    save(fig, ax, "Accuracy", a.title, a.out)


def save(fig, ax, ylabel: str, title, out: str) -> None:
    """Labels (epochs on x), legend, and the PNG at `out`, its folder made."""
    ax.set_xlabel("Epochs")
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    fig.savefig(out)


if __name__ == "__main__":
    main()
