"""binclass's model files and point CSVs, read with the checks binclass applies.

predict_torch.py and plot_boundary.py read models and points only through
this module, so that a file `binclass predict` refuses is refused here too,
as one line (a BadInput), never a traceback and never a network built from
numbers binclass would not use. The rules mirror src/model_file.rs and
src/points.rs; keras_reference.py shares the header rule. Needs numpy and
safetensors, not torch.
"""
import csv
import json
import math
import os
import re

import numpy as np

FORMAT, FORMAT_VERSION = "binclass-model", "1"
# model_file::MAX_FILE_BYTES: the most parameters (1e8) as float32, and room for the header.
MAX_PARAMETERS = 100_000_000
MAX_FILE_BYTES = 4 * MAX_PARAMETERS + (16 << 20)
F32_MAX = float(np.finfo(np.float32).max)


def _whole(lo, hi):
    return lambda v: type(v) is int and lo <= v <= hi


def _real(ok=lambda v: True):
    return lambda v: type(v) in (int, float) and math.isfinite(v) and ok(v)


# config.rs's settings table: what a missing setting reads as (the
# baseline's, as serde's default fills it) and the values it allows.
SETTINGS = {
    "name": ("baseline", lambda v: type(v) is str),
    "samples": (10_000, _whole(1, 100_000_000)),
    "features": (2, _whole(2, 10_000)),
    "noise_rate": (0.0, _real(lambda v: 0 <= v <= 1)),
    "scale": (1.0, _real()),
    "shift": (0.0, _real()),
    "split": (0.8, _real(lambda v: 0 < v < 1)),
    "normalize": ("none", ("none", "standard").__contains__),
    "hidden_layers": (3, _whole(0, 1_000)),
    "units": (3, _whole(1, 10_000)),
    "activation": ("tanh", ("tanh", "relu", "sigmoid").__contains__),
    "init": ("keras", ("keras", "torch").__contains__),
    "lr": (0.03, _real(lambda v: 0 < v <= 1e30)),
    "optimizer": ("adam", ("adam", "keras-adam").__contains__),
    "batch_size": (30, _whole(1, 100_000_000)),
    "epochs": (100, _whole(1, 100_000_000)),
}
# The keys that also describe the network: each must say what the experiment says.
DECLARED = ("features", "hidden_layers", "units", "activation", "init", "normalize")


class BadInput(Exception):
    """A file binclass refuses too; the message is one line naming it."""


class Model:
    """A checked binclass model: its settings, scaling (float64) and layers (float32)."""

    def __init__(self, path, meta, experiment, layers):
        self.path, self.meta, self.experiment, self.layers = path, meta, experiment, layers
        self.features = experiment["features"]
        self.activation = experiment["activation"]
        self.mean = self.sd = None
        if experiment["normalize"] == "standard":
            self.mean, self.sd = (_finite_array(path, meta, k, self.features) for k in ("normalize_mean", "normalize_std"))
            if (self.sd <= 0).any():
                raise BadInput(f"{path}: metadata `normalize_std` has a value <= 0")

    def network_input(self, rows, where):
        """Raw points [n, features] as the network sees them: scaled in float64
        as binclass scales them, then float32. A value float32 cannot hold
        is refused, as binclass refuses it; `where(i, j)` names row i, feature j."""
        x = np.array(rows, dtype=np.float64).reshape(-1, self.features)
        if self.mean is not None:
            x = (x - self.mean) / self.sd
        with np.errstate(over="ignore"):
            x32 = x.astype(np.float32)
        bad = np.argwhere(~np.isfinite(x32))
        if bad.size:
            i, j = bad[0]
            scaled = f" ({x[i, j]!r} once scaled by the model's normalisation)" if self.mean is not None else ""
            raise BadInput(f"{where(i, j)}: {rows[i][j]!r}{scaled} is beyond float32's range (±{F32_MAX:.8g}), in which the network computes")
        return x32


def _finite_array(path, meta, key, n):
    try:
        v = json.loads(meta[key])
        if type(v) is not list or len(v) != n or not all(_real()(x) for x in v):
            raise ValueError
    except (ValueError, KeyError):
        raise BadInput(f"{path}: metadata `{key}` needs {n} finite numbers") from None
    return np.array(v, dtype=np.float64)


def read_model(path):
    """The model in `path`, every check of binclass's model_file applied."""
    from safetensors import SafetensorError, safe_open

    if os.path.isdir(path):
        raise BadInput(f"{path} is a folder, not a model file")
    try:
        if os.path.getsize(path) > MAX_FILE_BYTES:
            raise BadInput(f"{path}: larger than any binclass model ({MAX_FILE_BYTES // 1_000_000} MB at most); not a model file")
        with safe_open(path, framework="np") as f:
            meta = f.metadata() or {}
            found = {k: (f.get_slice(k).get_dtype(), tuple(f.get_slice(k).get_shape())) for k in f.keys()}
            # Only float32 is loaded: another dtype is refused by name below,
            # and numpy cannot even hold some (bfloat16).
            tensors = {k: f.get_tensor(k) for k in f.keys() if found[k][0] == "F32"}
    except FileNotFoundError:
        raise BadInput(f"{path}: no such file") from None
    except (OSError, SafetensorError, ValueError) as e:
        raise BadInput(f"{path}: not a safetensors model file ({str(e).splitlines()[0] if str(e) else type(e).__name__})") from None

    def get(key):
        if key not in meta:
            raise BadInput(f"{path}: metadata has no `{key}`: not a binclass model")
        return meta[key]

    if get("format") != FORMAT:
        raise BadInput(f"{path}: metadata format is `{meta['format']}`, not {FORMAT}")
    if get("format_version") != FORMAT_VERSION:
        raise BadInput(f"{path}: format version {meta['format_version']} (this reader reads version {FORMAT_VERSION})")
    e = _experiment(path, get("experiment"))
    for key in DECLARED:
        if get(key) != str(e[key]):
            raise BadInput(f"{path}: metadata `{key}` is {meta[key]} but the experiment says {e[key]}")
    for key in ("seed", "epochs_completed"):
        if not re.fullmatch(r"\+?[0-9]+", get(key)) or int(meta[key]) >= 2**64:
            raise BadInput(f"{path}: metadata `{key}` is not a whole number")
    for key in ("binclass_version", "tch_version", "libtorch_version"):
        get(key)
    return Model(path, meta, e, _layers(path, e, found, tensors))


def _experiment(path, text):
    try:
        given = json.loads(text)
        if type(given) is not dict:
            raise ValueError
    except ValueError:
        raise BadInput(f"{path}: metadata `experiment` is not an experiment") from None
    e = {k: given.get(k, default) for k, (default, _) in SETTINGS.items()}
    for k, (_, ok) in SETTINGS.items():
        if not ok(e[k]):
            raise BadInput(f"{path}: metadata `experiment`: {k} {e[k]!r} is not a value binclass allows")
    f, u, h = e["features"], e["units"], e["hidden_layers"]
    params = f + 1 if h == 0 else f * u + u + (h - 1) * (u * u + u) + u + 1
    if params > MAX_PARAMETERS or e["samples"] * f > 1_000_000_000:
        raise BadInput(f"{path}: metadata `experiment`: a network or data set larger than binclass allows")
    if not 1 <= int(e["samples"] * e["split"]) < e["samples"]:
        raise BadInput(f"{path}: metadata `experiment`: its split leaves a side empty")
    return e


def _layers(path, e, found, tensors):
    """(weight [out, in], bias) per Linear layer: exactly the declared network's
    tensors (PyTorch's nn.Sequential names: Linear l is module 2l), float32, finite."""
    widths = [e["features"]] + [e["units"]] * e["hidden_layers"] + [1]
    expected = {}
    for l in range(len(widths) - 1):
        expected[f"{2 * l}.weight"] = ("F32", (widths[l + 1], widths[l]))
        expected[f"{2 * l}.bias"] = ("F32", (widths[l + 1],))
    shown = lambda t: "absent" if t is None else f"{t[0]} {list(t[1])}"  # noqa: E731
    for name in sorted(set(found) | set(expected)):
        if found.get(name) != expected.get(name):
            raise BadInput(f"{path}: tensor `{name}` is {shown(found.get(name))}, the declared network's {shown(expected.get(name))}")
    for name, t in tensors.items():
        if not np.isfinite(t).all():
            raise BadInput(f"{path}: tensor `{name}` holds {t[~np.isfinite(t)].flat[0]}: a trained model's weights are finite")
    return [(tensors[f"{2 * l}.weight"], tensors[f"{2 * l}.bias"]) for l in range(len(widths) - 1)]


def number(text):
    """The float binclass reads from a field (Rust's parse: ASCII, no `_`), or None."""
    t = text.strip()
    if not t.isascii() or "_" in t:
        return None
    try:
        return float(t)
    except ValueError:
        return None


def is_header(row, where):
    """Whether a first row is a header: every field a non-number. A row that
    mixes numbers and non-numbers is refused: a typo in the first point
    must not make it a header (and drop it). `where(c)` names column c."""
    values = [number(v) for v in row]
    if all(v is None for v in values):
        return True
    if any(v is None for v in values):
        c = values.index(None)
        raise BadInput(f"{where(c)}: '{row[c]}' is not a number, and the row is not a header: its other fields are numbers")
    return False


def read_points(path):
    """((line, fields) of the header or None, [(line, values)]) of a point CSV: blank lines skipped,
    a first row of names a header, every other field a finite number;
    lines numbered as in an editor. The caller checks the widths."""
    rows, header = [], None
    try:
        with open(path, newline="") as f:
            reader = csv.reader(f)
            for row in reader:
                if not row:
                    continue
                line = reader.line_num - sum(v.count("\n") for v in row)
                if not rows and header is None and is_header(row, lambda c: f"{path}: line {line}, column {c + 1}"):
                    header = (line, row)
                    continue
                values = []
                for c, v in enumerate(row):
                    x = number(v)
                    where = f"{path}: line {line}, column {c + 1}"
                    if x is None:
                        raise BadInput(f"{where}: '{v}' is not a number")
                    if not math.isfinite(x):
                        raise BadInput(f"{where}: '{v}' is not finite; every value must be a finite number")
                    values.append(x)
                rows.append((line, values))
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise BadInput(f"cannot read {path}: {e.strerror if isinstance(e, OSError) and e.strerror else e}") from None
    if not rows:
        raise BadInput(f"{path}: empty input, no points{' after the header' if header else ''}")
    return header, rows
