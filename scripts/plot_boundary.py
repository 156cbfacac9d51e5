#!/usr/bin/env python3
"""Draws what binclass models learned: their probability over the input square.

  scripts/plot_boundary.py runs/baseline-seed0.safetensors --out boundary.png
  scripts/plot_boundary.py a.safetensors b.safetensors --out ab.png --points val.csv

Each model gets a panel: the probability of class 1 (sigmoid of the output)
as a filled contour over features 0 and 1, in the model's raw feature units
-- the square its experiment draws them from, [0, 1)·scale + shift, read from
the file's metadata ([0, 1000]² for `scaled`, [1000, 1001]² for `shifted`) --
with the true boundary x0 = x1 dashed and the model's own (p = 0.5) solid.
Dummy features (features beyond the first two) are held at their mean,
0.5·scale + shift: the panel is that slice. The stored normalisation is
applied before the network, as binclass predict does. Models are read
through binclass_files.py, with binclass's checks: a file binclass refuses
is refused here too. The network is computed in numpy (float32), so only
numpy, matplotlib and safetensors are needed, not torch.

--points CSV adds points (columns x0,x1 or x0,x1,label with labels 0/1, a
header row optional) as small dots, coloured by label when there is one.
"""
import argparse
import sys

from binclass_files import BadInput, read_model  # scripts/ beside this one
from binclass_files import read_points as read_points_csv
from plot import check_out, write_png  # scripts/plot.py beside this one; it selects the Agg backend

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402

GRID = 241  # points per side: smooth enough at the figure's size, fast in numpy
ACTIVATIONS = {
    "tanh": np.tanh,
    "relu": lambda h: np.maximum(h, np.float32(0)),
    "sigmoid": lambda h: np.float32(0.5) * (np.float32(1) + np.tanh(np.float32(0.5) * h)),
}


def fail(message: str):
    """One line on stderr, exit status 1: bad input is never a traceback."""
    sys.exit(f"plot_boundary: {message}")


class Model:
    """A binclass model (read with binclass's checks): its network in numpy
    (float32), scaling and square."""

    def __init__(self, path: str):
        try:
            m = read_model(path)
        except BadInput as e:
            fail(str(e))
        e = m.experiment
        self.features, self.mean, self.sd, self.layers = m.features, m.mean, m.sd, m.layers
        self.activation = ACTIVATIONS[e["activation"]]
        self.scale, self.shift = float(e["scale"]), float(e["shift"])
        self.name, self.seed, self.epochs = e["name"], m.meta["seed"], m.meta["epochs_completed"]

    def square(self) -> tuple[float, float]:
        """The range each feature is drawn from, [0, 1)·scale + shift, lowest first."""
        lo, hi = sorted((self.shift, self.scale + self.shift))
        if hi - lo <= 0:  # --scale 0: every point the same; show its neighbourhood
            lo, hi = lo - 0.5, hi + 0.5
        return lo, hi

    def probability(self, x: np.ndarray) -> np.ndarray:
        """Sigmoid of the output for raw points x [n, features] (float64)."""
        if self.mean is not None:
            x = (x - self.mean) / self.sd  # float64, as binclass scales its rows
        h = x.astype(np.float32)
        for i, (w, b) in enumerate(self.layers):
            h = h @ w.T + b
            if i < len(self.layers) - 1:
                h = self.activation(h)
        return ACTIVATIONS["sigmoid"](h).reshape(-1)


def read_points(path: str):
    """(x0, x1, labels or None) from a CSV of x0,x1[,label], read as binclass
    reads points (binclass_files.read_points: a header row optional)."""
    try:
        _, rows = read_points_csv(path)
    except BadInput as e:
        fail(str(e))
    width = len(rows[0][1])
    for line, values in rows:
        if len(values) not in (2, 3) or len(values) != width:
            fail(f"{path}: line {line}: {len(values)} columns, expected x0,x1 or x0,x1,label throughout")
        if len(values) == 3 and values[2] not in (0.0, 1.0):
            fail(f"{path}: line {line}: label {values[2]:g} is not 0 or 1")
    a = np.array([v for _, v in rows])
    return a[:, 0], a[:, 1], (a[:, 2] if a.shape[1] == 3 else None)


def panel(ax, model: Model, points):
    lo, hi = model.square()
    axis = np.linspace(lo, hi, GRID)
    x0, x1 = np.meshgrid(axis, axis)
    x = np.full((x0.size, model.features), 0.5 * model.scale + model.shift)  # dummies at their mean
    x[:, 0], x[:, 1] = x0.ravel(), x1.ravel()
    p = model.probability(x).reshape(x0.shape)
    filled = ax.contourf(x0, x1, p, levels=np.linspace(0, 1, 21), cmap="RdBu_r", vmin=0, vmax=1)
    crosses = bool(p.min() < 0.5 < p.max())  # else the model calls the whole square one class
    if crosses:
        ax.contour(x0, x1, p, levels=[0.5], colors="black", linewidths=1.2)
    ax.plot([lo, hi], [lo, hi], "k--", linewidth=1.2)
    if points is not None:
        px, py, labels = points
        if labels is None:
            ax.scatter(px, py, s=3, c="black", linewidths=0, alpha=0.6)
        else:
            for value, color in ((0, "tab:blue"), (1, "tab:red")):
                mine = labels == value
                ax.scatter(px[mine], py[mine], s=3, c=color, edgecolors="white", linewidths=0.2)
    ax.set_xlim(lo, hi)
    ax.set_ylim(lo, hi)
    ax.set_aspect("equal")
    ax.set_xlabel("feature 0")
    ax.set_ylabel("feature 1")
    title = f"{model.name}, seed {model.seed}, {model.epochs} epochs"
    if model.mean is not None:
        title += "\n(--normalize standard)"
    if model.features > 2:
        title += f"\nfeatures 2-{model.features - 1} at their mean {0.5 * model.scale + model.shift:g}"
    ax.set_title(title, fontsize=9)
    ax.tick_params(labelsize=8)
    return filled, crosses


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", nargs="+", help="binclass model files (.safetensors); one panel each")
    p.add_argument("--out", required=True, help="PNG to write")
    p.add_argument("--points", help="CSV of x0,x1[,label] drawn as dots (raw feature units)")
    p.add_argument("--title", default=None)
    a = p.parse_args()
    check_out(a.out, fail)
    models = [Model(m) for m in a.model]
    points = read_points(a.points) if a.points else None

    n = len(models)
    # Constrained layout keeps the panels' labels and the shared colour bar apart.
    fig, axes = plt.subplots(
        1, n, figsize=(3.3 * n + 0.9, 3.7 + (0.3 if a.title else 0)), dpi=110, squeeze=False, layout="constrained"
    )
    drawn = [panel(ax, model, points) for ax, model in zip(axes[0], models)]
    filled = drawn[0][0]
    bar = fig.colorbar(filled, ax=list(axes[0]), shrink=0.9)
    bar.set_label("probability of class 1", fontsize=8)
    bar.ax.tick_params(labelsize=8)
    handles = [Line2D([], [], color="black", linestyle="--", linewidth=1.2, label="true boundary x0 = x1")]
    if any(crosses for _, crosses in drawn):
        handles.append(Line2D([], [], color="black", linewidth=1.2, label="model's p = 0.5"))
    axes[0][0].legend(
        handles=handles,
        loc="upper left",
        fontsize=7,
        framealpha=0.8,
    )
    if a.title:
        fig.suptitle(a.title, fontsize=10)
    write_png(fig, a.out, fail)


if __name__ == "__main__":
    main()
