#!/usr/bin/env python3
"""Draws how far binclass's per-step losses are from Keras's, epoch by epoch.

Each input is a `binclass parity DIR --out steps.csv` file, given as
LABEL=PATH; the figure shows, per epoch, the largest |our step loss - Keras's|
on a log scale, one line per input, and the 1e-5 line of the parity target.
Float32 and float64 replays side by side show whether the two trajectories
part by rounding: rounding differences start at each format's precision and
grow at the same rate. `--steps N` draws instead each of the first N steps'
|our step loss - Keras's| (step 0 is the first), to see where two runs part
within an epoch.

  scripts/plot_parity.py --pairs f32=runs/seed0-f32.csv f64=runs/seed0-f64.csv --out parity.png
  scripts/plot_parity.py --steps 100 "seed 0=runs/scaled-seed0-f64.csv" --out first-steps.png
"""
import argparse
import csv
import sys

from plot import save  # scripts/plot.py beside this one; importing it first selects the Agg backend

import matplotlib.pyplot as plt  # noqa: E402


def read(path: str, steps: int | None = None) -> list[float]:
    """Largest abs_diff per epoch; with `steps`, the abs_diff of each of the first `steps` steps."""
    worst: dict[int, float] = {}
    try:
        with open(path, newline="") as f:
            rows = list(csv.DictReader(f))
        if not rows or "abs_diff" not in rows[0] or "epoch" not in rows[0]:
            sys.exit(f"plot_parity: {path}: not a `binclass parity --out` file (no epoch/abs_diff columns)")
        if steps is not None:
            return [float(r["abs_diff"]) for r in rows[:steps]]
        for r in rows:
            e = int(r["epoch"])
            worst[e] = max(worst.get(e, 0.0), float(r["abs_diff"]))
    except (OSError, UnicodeDecodeError, csv.Error, ValueError) as e:
        sys.exit(f"plot_parity: {path}: {e}")
    return [worst[e] for e in sorted(worst)]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("runs", nargs="+", metavar="LABEL=PATH", help="`binclass parity --out` CSVs")
    p.add_argument("--out", required=True, help="PNG to write")
    p.add_argument("--title", default=None)
    p.add_argument("--pairs", action="store_true", help="inputs come in pairs (say float32, float64 of one seed): a pair shares a colour, its second line dashed")
    p.add_argument("--steps", type=int, default=None, metavar="N", help="each of the first N steps instead of each epoch's largest")
    a = p.parse_args()
    if a.steps is not None and a.steps < 1:
        p.error(f"--steps {a.steps}: expected a count of steps, 1 or more")

    fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=110)
    for i, run in enumerate(a.runs):
        label, sep, path = run.partition("=")
        if not sep or not label or not path:
            sys.exit(f"plot_parity: {run}: expected LABEL=PATH")
        worst = read(path, a.steps)
        # A difference of exactly 0 has no place on a log scale; 1e-17 is below any float64 step.
        style = {"color": f"C{i // 2}", "linestyle": "--" if i % 2 else "-"} if a.pairs else {}
        # Epochs count from 1 on the axis (as plot.py's curves), steps from 0 (as parity prints them).
        xs = range(len(worst)) if a.steps is not None else range(1, len(worst) + 1)
        ax.plot(xs, [max(w, 1e-17) for w in worst], label=label, linewidth=1.2, **style)
    ax.axhline(1e-5, color="grey", linestyle="--", linewidth=0.8, label="1e-5")
    ax.set_yscale("log")
    if a.steps is not None:
        save(fig, ax, "|Δ step loss|", a.title, a.out, xlabel="Steps")
    else:
        save(fig, ax, "largest |Δ step loss| in the epoch", a.title, a.out)


if __name__ == "__main__":
    main()
