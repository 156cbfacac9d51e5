#!/usr/bin/env python3
"""A binclass model in PyTorch: probabilities for the points of a CSV.

    predict_torch.py M.safetensors POINTS.csv [--out CSV]

Builds the torch.nn.Sequential the file's metadata describes (Linear layers
of `units` with the activation after each hidden one, then one output unit),
loads the file's tensors into it with load_state_dict(strict=True), scales
the points with the stored normalisation (the training rows' mean and
standard deviation, for --normalize standard), and prints (or writes to
--out) one probability per point, sigmoid of the output, as Python's repr
writes a float32. POINTS.csv holds the model's feature columns, a header
row optional. Needs torch and safetensors (scripts/setup.sh installs both).
"""

import argparse
import csv
import json
import sys

import torch
from safetensors import safe_open
from safetensors.torch import load_file

ACTIVATIONS = {"tanh": torch.nn.Tanh, "relu": torch.nn.ReLU, "sigmoid": torch.nn.Sigmoid}


def network(meta):
    """The nn.Sequential whose state_dict names are the file's tensor names."""
    features, hidden, units = (int(meta[k]) for k in ("features", "hidden_layers", "units"))
    layers, width = [], features
    for _ in range(hidden):
        layers += [torch.nn.Linear(width, units), ACTIVATIONS[meta["activation"]]()]
        width = units
    layers.append(torch.nn.Linear(width, 1))
    return torch.nn.Sequential(*layers)


def read_points(path, features):
    """Rows of floats (float64, as binclass parses them); a header is skipped."""
    rows = []
    with open(path, newline="") as f:
        for i, row in enumerate(csv.reader(f)):
            try:
                rows.append([float(v) for v in row])
            except ValueError:
                if i == 0:
                    continue  # a header
                sys.exit(f"{path}: line {i + 1}: not a number")
            if len(rows[-1]) != features:
                sys.exit(f"{path}: line {i + 1}: {len(row)} columns, expected {features}")
    return torch.tensor(rows, dtype=torch.float64).reshape(-1, features)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("model")
    p.add_argument("points")
    p.add_argument("--out", default=None, help="CSV of probabilities (default: stdout)")
    a = p.parse_args()
    with safe_open(a.model, framework="pt") as f:
        meta = f.metadata()
    if meta is None or meta.get("format") != "binclass-model":
        sys.exit(f"{a.model}: not a binclass model")
    net = network(meta)
    net.load_state_dict(load_file(a.model), strict=True)
    x = read_points(a.points, int(meta["features"]))
    if meta["normalize"] == "standard":
        # In float64, as binclass scales its rows, then float32.
        mean = torch.tensor(json.loads(meta["normalize_mean"]), dtype=torch.float64)
        std = torch.tensor(json.loads(meta["normalize_std"]), dtype=torch.float64)
        x = (x - mean) / std
    with torch.no_grad():
        prob = torch.sigmoid(net(x.to(torch.float32))).reshape(-1)
    out = open(a.out, "w", newline="") if a.out else sys.stdout
    out.write("probability\n")
    out.writelines(f"{p!r}\n" for p in prob.tolist())
    if a.out:
        out.close()


if __name__ == "__main__":
    main()
