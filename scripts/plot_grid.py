#!/usr/bin/env python3
"""Final validation accuracy against a varied knob, from a `binclass sweep
--vary` summary.csv.

The first knob column is the x axis: per value, the mean over seeds as a
line with a band of one standard deviation either side (`--band minmax`:
the seeds' range); a log axis when the values span two decades or more (a
symmetric log axis when 0 is one of them); categories (normalize,
activation) side by side. A second knob draws one line per value. Where the
knob has a known reference it is drawn too: for noise-rate, the ceiling
1 - rate (a model that learns the true boundary is wrong on every flipped
label). Seeds that did not finish (finished = false) are left out, with a
note.

  scripts/plot_grid.py runs/grid/summary.csv --out grid.png
"""
import argparse
import math
import sys

from plot import check_out, read_table, write_png  # scripts/plot.py beside this one; it selects the Agg backend

import matplotlib.pyplot as plt  # noqa: E402

FIXED = ("seed", "final_val_binary_accuracy", "best_val_binary_accuracy", "best_epoch", "finished")


def fail(message: str):
    """One line on stderr, exit status 1: bad input is never a traceback."""
    sys.exit(f"plot_grid: {message}")


def read(path: str):
    """The knob names, and per row its knob values and final accuracy (None: not finished)."""
    header, rows = read_table(path, fail)
    if not header or "seed" not in header or any(c not in header for c in FIXED):
        fail(f"{path}: not a sweep's summary.csv (expected the columns {', '.join(FIXED)})")
    knobs = header[: header.index("seed")]
    if not 1 <= len(knobs) <= 2:
        fail(f"{path}: {len(knobs)} varied knobs; this draws one or two (sweep --vary)")
    if not rows:
        fail(f"{path}: no rows")
    out = []
    for line, row in enumerate(rows, start=2):
        if len(row) != len(header):
            fail(f"{path}: line {line} has {len(row)} fields, the header {len(header)}")
        fin = row[header.index("final_val_binary_accuracy")]
        done = row[header.index("finished")] == "true"
        try:
            out.append((row[: len(knobs)], float(fin) if done else None))
        except ValueError:
            fail(f"{path}: line {line}: not a number: {fin}")
    return knobs, out


def numbers(values: list[str]):
    """The values as numbers, or None if one is not."""
    try:
        return [float(v) for v in values]
    except ValueError:
        return None


def stats(accs: list[float], band: str):
    m = sum(accs) / len(accs)
    if band == "minmax":
        return m, min(accs), max(accs)
    sd = (sum((a - m) ** 2 for a in accs) / (len(accs) - 1)) ** 0.5 if len(accs) > 1 else 0.0
    return m, m - sd, m + sd


def axis(ax, knob: str, xs: list[str]):
    """Positions of the x values, and the axis set up for them."""
    nums = numbers(xs)
    if nums is None:
        ax.set_xticks(range(len(xs)), xs)
        return list(range(len(xs)))
    positive = [v for v in nums if v > 0]
    if positive and max(positive) / min(positive) >= 100 and min(nums) >= 0:
        if min(nums) == 0:
            ax.set_xscale("symlog", linthresh=min(positive))
        else:
            ax.set_xscale("log")
    return nums


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("summary", help="summary.csv of a sweep --vary")
    p.add_argument("--out", required=True, help="PNG to write")
    p.add_argument("--band", choices=["sd", "minmax"], default="sd", help="the seeds' band: ± sd (default) or min-max")
    p.add_argument("--title", default=None)
    a = p.parse_args()
    check_out(a.out, fail)
    knobs, rows = read(a.summary)
    skipped = sum(1 for _, acc in rows if acc is None)
    if skipped:
        print(f"plot_grid: note: {skipped} seed(s) did not finish and are left out", file=sys.stderr)
    xs = list(dict.fromkeys(v[0] for v, _ in rows))
    lines = list(dict.fromkeys(v[1] for v, _ in rows)) if len(knobs) == 2 else [None]
    fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=110)
    pos = axis(ax, knobs[0], xs)
    for i, line in enumerate(lines):
        pts = []
        for x, px in zip(xs, pos):
            accs = [acc for v, acc in rows if v[0] == x and (line is None or v[1] == line) and acc is not None]
            if accs:
                pts.append((px, *stats(accs, a.band), len(accs)))
        if not pts:
            continue
        color = f"C{i}"
        seeds = max(n for *_, n in pts)
        label = (f"{knobs[1]} = {line}" if line is not None else "final validation accuracy") + f" (mean of {seeds} seeds)"
        ax.plot([q[0] for q in pts], [q[1] for q in pts], marker="o", color=color, label=label, linewidth=1.2)
        ax.fill_between([q[0] for q in pts], [q[2] for q in pts], [q[3] for q in pts], color=color, alpha=0.2, linewidth=0)
    if knobs[0] == "noise-rate" and numbers(xs) is not None:
        ax.plot(pos, [1 - v for v in pos], linestyle="--", color="gray", label="ceiling: 1 - noise rate")
    band = "min-max" if a.band == "minmax" else "± sd"
    ax.set_xlabel(knobs[0])
    ax.set_ylabel(f"final validation accuracy (band: {band} over seeds)")
    ax.set_ylim(0.4, 1.02)
    if a.title:
        ax.set_title(a.title)
    ax.legend(loc="lower left", fontsize=8)
    ax.grid(True, alpha=0.3)
    fig.tight_layout()
    write_png(fig, a.out, fail)


if __name__ == "__main__":
    main()
