#!/usr/bin/env python3
"""A binclass model in PyTorch: probabilities for the points of a CSV.

    predict_torch.py M.safetensors POINTS.csv [--out CSV [--overwrite]]

Builds the torch.nn.Sequential the file's metadata describes (Linear layers
of `units` with the activation after each hidden one, then one output unit),
loads the file's tensors into it with load_state_dict(strict=True), scales
the points with the stored normalisation (the training rows' mean and
standard deviation, for --normalize standard), and prints (or writes to
--out) one probability per point, sigmoid of the output, as Python's repr
writes a float32. POINTS.csv holds the model's feature columns, a header
row optional. The model and the points are read through binclass_files.py,
with binclass's checks: what `binclass predict` refuses is one line here
too, in the same words. --out is written as binclass writes its outputs:
an existing file is replaced only with --overwrite, the model or the
points never, and the file appears whole (written under a hidden name
beside it, then renamed) or not at all. Needs torch, numpy and safetensors
(scripts/setup.sh installs them).
"""

import argparse
import sys

try:
    from binclass_files import BadInput, check_output, check_probabilities, read_model, read_model_points, write_output  # scripts/ beside this one
except ImportError as e:
    sys.exit(f"predict_torch: {e.name} is not installed: run scripts/setup.sh")


def import_torch():
    """Python's torch, or one line saying how to get it: on Linux its import
    loads CUDA's libraries even on a CPU, which a light install leaves out."""
    try:
        import torch
    except (ImportError, OSError) as e:
        sys.exit(f"predict_torch: Python's torch cannot load ({str(e).splitlines()[0]}): run scripts/setup.sh --cuda, which installs the CUDA libraries its import needs")
    return torch


def network(model):
    """The nn.Sequential whose state_dict names are the file's tensor names."""
    torch = import_torch()

    activation = {"tanh": torch.nn.Tanh, "relu": torch.nn.ReLU, "sigmoid": torch.nn.Sigmoid}[model.activation]
    e = model.experiment
    layers, width = [], e["features"]
    for _ in range(e["hidden_layers"]):
        layers += [torch.nn.Linear(width, e["units"]), activation()]
        width = e["units"]
    layers.append(torch.nn.Linear(width, 1))
    return torch.nn.Sequential(*layers)


def predict(model_path, points_path):
    """Each point's probability (float32 as Python floats). Everything is
    read and checked before torch is imported: bad input is refused at once."""
    model = read_model(model_path)
    _, lines, x = read_model_points(model, points_path)
    torch = import_torch()

    net = network(model)
    state = {}
    for l, (w, b) in enumerate(model.layers):
        state[f"{2 * l}.weight"], state[f"{2 * l}.bias"] = torch.from_numpy(w), torch.from_numpy(b)
    net.load_state_dict(state, strict=True)
    with torch.no_grad():
        prob = torch.sigmoid(net(torch.from_numpy(x))).reshape(-1)
    check_probabilities(points_path, lines, prob.numpy())
    return prob.tolist()


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("model")
    p.add_argument("points")
    p.add_argument("--out", default=None, help="CSV of probabilities (default: stdout)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out (never the model or the points)")
    a = p.parse_args()
    try:
        if a.out is not None:
            check_output(a.out, a.overwrite, [("the model", a.model), ("the points", a.points)])
        text = "".join(["probability\n"] + [f"{p!r}\n" for p in predict(a.model, a.points)])
        if a.out is None:
            sys.stdout.write(text)
        else:
            write_output(a.out, text, a.overwrite)
    except BadInput as e:
        sys.exit(f"predict_torch: {e}")


if __name__ == "__main__":
    main()
