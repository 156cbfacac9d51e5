"""binclass's model files and point CSVs, read with the checks binclass applies,
and outputs written as binclass writes them.

predict_torch.py, keras_reference.py --predict and plot_boundary.py read
models and points only through this module, so that a file `binclass
predict` refuses is refused here too, as one line (a BadInput), never a
traceback and never a network built from numbers binclass would not use.
The rules mirror src/model_file.rs and src/points.rs: the same rows are
refused, with the same message after the program's name. Outputs follow
src/outputs.rs: an existing file is replaced only with --overwrite, an
input never, and a file is written under a hidden temporary name beside it
and renamed when complete. Needs numpy and safetensors (imported only
once a model or points are read), not torch.
"""
import contextlib
import csv
import itertools
import json
import math
import os
import re
import sys

FORMAT, FORMAT_VERSION = "binclass-model", "1"
# model_file::MAX_FILE_BYTES: the most parameters (1e8) as float32, and room for the header.
MAX_PARAMETERS = 100_000_000
MAX_FILE_BYTES = 4 * MAX_PARAMETERS + (16 << 20)
F32_MAX_TEXT = "3.4028235e38"  # as Rust's `{:e}` writes f32::MAX
# predict::CHUNK: binclass reads, scales and checks points this many at a time.
CHUNK = 65_536
# What Rust's str::trim strips (char::is_whitespace: Unicode's White_Space).
RUST_WHITESPACE = "\t\n\x0b\x0c\r \x85\xa0\u1680" + "".join(map(chr, range(0x2000, 0x200B))) + "\u2028\u2029\u202f\u205f\u3000"
# What Rust's f64::from_str reads: ASCII digits, no `_`, no hex; inf, infinity and nan in any case.
RUST_FLOAT = re.compile(r"[+-]?(?:inf|infinity|nan|(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:e[+-]?[0-9]+)?)", re.IGNORECASE | re.ASCII)
# A byte that is not UTF-8, as the surrogateescape decoding keeps it.
NOT_UTF8 = re.compile("[\udc80-\udcff]")
# A CR not followed by LF: it ends a record (as csv-core reads), not a line.
LONE_CR = re.compile(rb"(?<=\r)(?!\n)")

csv.field_size_limit(sys.maxsize)  # csv-core has no limit on a field


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


def one_line(msg):
    """A message as binclass prints it (cli::one_line): its lines trimmed
    and joined by a space, blank ones dropped; a field holding a line
    break is shown so too."""
    lines = (l[:-1] if l.endswith("\r") else l for l in msg.split("\n"))
    kept = (l.strip(RUST_WHITESPACE) for l in lines)
    return " ".join(l for l in kept if l and not l.startswith(("For more information", "Usage:")))


class BadInput(Exception):
    """A file binclass refuses too; the message is one line naming it."""

    def __init__(self, message):
        super().__init__(one_line(message))


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

    def network_input(self, path, records, values):
        """Points as the network sees them (float32 [n, features]): `values`
        (the numbers of `records`, (line, fields) each, row-major) scaled in
        float64 as binclass scales them, then float32. A value float32
        cannot hold is refused as binclass refuses it, the field as written."""
        import numpy as np

        x = np.array(values, dtype=np.float64).reshape(-1, self.features)
        if self.mean is not None:
            x = (x - self.mean) / self.sd
        with np.errstate(over="ignore"):
            x32 = x.astype(np.float32)
        bad = np.argwhere(~np.isfinite(x32))
        if bad.size:
            i, j = bad[0]
            line, fields = records[i]
            scaled = f" ({float(x[i, j])!r} once scaled by the model's normalisation)" if self.mean is not None else ""
            raise BadInput(f"{path}: line {line}, column {j + 1}: '{fields[j]}'{scaled} is beyond float32's range (±{F32_MAX_TEXT}), in which the network computes")
        return x32


def _finite_array(path, meta, key, n):
    import numpy as np

    try:
        v = json.loads(meta[key])
        if type(v) is not list or len(v) != n or not all(_real()(x) for x in v):
            raise ValueError
    except (ValueError, KeyError):
        raise BadInput(f"{path}: metadata `{key}` needs {n} finite numbers") from None
    return np.array(v, dtype=np.float64)


def read_model(path):
    """The model in `path`, every check of binclass's model_file applied."""
    try:
        from safetensors import SafetensorError, safe_open
    except ImportError as e:
        raise BadInput(f"{e.name} is not installed: run scripts/setup.sh") from None

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
    import numpy as np

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
            raise BadInput(f"{path}: tensor `{name}` holds {_rust_float(t[~np.isfinite(t)].flat[0])}: a trained model's weights are finite")
    return [(tensors[f"{2 * l}.weight"], tensors[f"{2 * l}.bias"]) for l in range(len(widths) - 1)]


def _rust_float(v):
    """A non-finite float as Rust's Display writes it (NaN, inf, -inf)."""
    return "NaN" if math.isnan(v) else ("inf" if v > 0 else "-inf")


def number(text):
    """The float binclass reads from a field (Rust's parse of the trimmed text), or None."""
    t = text.strip(RUST_WHITESPACE)
    return float(t) if RUST_FLOAT.fullmatch(t) else None


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


def _cannot_read(path, e):
    """An input that cannot be read, worded as binclass words it (Rust's io::Error)."""
    why = f"{e.strerror} (os error {e.errno})" if e.strerror and e.errno else str(e)
    return f"cannot read {path}: {why}"


class _Lines:
    """A file's text as csv.reader takes it, counting lines as binclass does:
    a line is what ends in LF, and a record is on the line where it ends,
    less the line breaks inside its quoted fields. A CR alone ends a
    record but not a line, so it is handed over as an end of its own; a
    UTF-8 byte-order mark at the start of the file is dropped, as
    csv-core drops it; bytes that are not UTF-8 are kept as surrogates,
    for the record's check to name."""

    def __init__(self, f):
        self.f, self.started = f, 0

    def __iter__(self):
        for raw in self.f:
            if self.started == 0 and raw.startswith(b"\xef\xbb\xbf"):
                raw = raw[3:]
            self.started += 1
            for piece in LONE_CR.split(raw):
                if piece:
                    yield piece.decode("utf-8", "surrogateescape")


def records(path):
    """(line, fields) of each record of the CSV at `path`, as binclass's
    csv reader yields them: blank lines skipped, a field that is not UTF-8
    refused with its line and column."""
    try:
        f = open(path, "rb")
    except OSError as e:
        raise BadInput(_cannot_read(path, e)) from None
    with f:
        lines = _Lines(f)
        reader = csv.reader(lines)
        last = 0
        while True:
            try:
                row = next(reader)
            except StopIteration:
                return
            except OSError as e:
                raise BadInput(_cannot_read(path, e)) from None
            except csv.Error as e:
                raise BadInput(f"{path}: line {lines.started}: {e}") from None
            if not row:
                continue
            for c, field in enumerate(row):
                if NOT_UTF8.search(field):
                    raise BadInput(f"{path}: line {lines.started}, column {c + 1}: not UTF-8 text")
            # As binclass: a quote left open at the end of the input takes the
            # last line's break into its field; a record starts after the last.
            last = max(lines.started - sum(v.count("\n") for v in row), last + 1)
            yield last, row


def _finite(where, field):
    """A field as a finite number, or BadInput naming `where`."""
    x = number(field)
    if x is None:
        raise BadInput(f"{where}: '{field}' is not a number")
    if not math.isfinite(x):
        raise BadInput(f"{where}: '{field}' is not finite; every value must be a finite number")
    return x


def read_points(path):
    """((line, fields) of the header or None, [(line, values)]) of a point CSV: blank lines skipped,
    a first row of names a header, every other field a finite number;
    lines numbered as binclass numbers them. The caller checks the widths
    (read_model_points checks everything, in binclass's order)."""
    rows, header = [], None
    for line, row in records(path):
        if not rows and header is None and is_header(row, lambda c: f"{path}: line {line}, column {c + 1}"):
            header = (line, row)
            continue
        rows.append((line, [_finite(f"{path}: line {line}, column {c + 1}", v) for c, v in enumerate(row)]))
    if not rows:
        raise BadInput(f"{path}: empty input, no points{' after the header' if header else ''}")
    return header, rows


def read_model_points(model, path):
    """The points of the CSV at `path` for `model`, read as `binclass
    predict` reads them: ((line, fields) of the header or None, the line of
    each point, the points as the network takes them, float32 [n,
    features]). The first row is a header if every field is a non-number;
    then each row in turn: its width, each field a finite number, and the
    row (scaled by the model's normalisation) within float32, checked a
    chunk at a time as binclass checks them, so that the first bad row in
    file order is the one refused, in binclass's words."""
    import numpy as np

    f = model.features
    rows = records(path)
    first = next(rows, None)
    if first is None:
        raise BadInput(f"{path}: empty input, no points")

    def check_width(line, fields):
        if len(fields) != f:
            raise BadInput(f"{path}: line {line}: {len(fields)} columns, expected {f} (the model's {f} features)")

    header = None
    if is_header(first[1], lambda c: f"{path}: line {first[0]}, column {c + 1}"):
        check_width(*first)
        header = first
    else:
        rows = itertools.chain([first], rows)
    lines, chunks, chunk, values = [], [], [], []
    try:
        for line, fields in rows:
            check_width(line, fields)
            values.extend(_finite(f"{path}: line {line}, column {c + 1}", v) for c, v in enumerate(fields))
            chunk.append((line, fields))
            if len(chunk) == CHUNK:
                chunks.append(model.network_input(path, chunk, values))
                lines += [line for line, _ in chunk]
                chunk, values = [], []
    except BadInput:
        # The rows of the chunk before the bad one were checked first.
        if chunk:
            model.network_input(path, chunk, values[: len(chunk) * f])
        raise
    if chunk:
        chunks.append(model.network_input(path, chunk, values))
        lines += [line for line, _ in chunk]
    if not lines:
        raise BadInput(f"{path}: empty input, no points after the header")
    return header, lines, np.concatenate(chunks)


def check_probabilities(path, lines, prob):
    """Refuses, as binclass does, a point whose output is NaN (finite
    values overflowing float32 inside the network); `lines` are the points'
    lines in `path`."""
    import numpy as np

    nan = np.flatnonzero(np.isnan(np.asarray(prob, dtype=np.float64)))
    if nan.size:
        raise BadInput(f"{path}: line {lines[nan[0]]}: the model's output for this point is NaN (its values overflow float32 inside the network)")


def _check_parent(path, flag):
    """The nearest existing folder above `path` must be a folder (outputs::check_parent)."""
    d = os.path.dirname(path)
    while d:
        try:
            if os.path.isdir(d):
                return
            os.stat(d)
        except FileNotFoundError:
            parent = os.path.dirname(d)
            if parent == d:
                return
            d = parent
            continue
        except OSError as e:
            raise BadInput(f"{flag} {d}: cannot read: {e.strerror or e}") from None
        raise BadInput(f"{flag} {path}: cannot create folder {d}: it is a file")


def check_output(path, overwrite, inputs=(), flag="--out"):
    """Refuses, before anything is read or written, an output file binclass
    would refuse (outputs::check_output): a folder, one under a file, an
    existing file without `overwrite`; and, even with it, one of `inputs`
    ((role, path) each: an input is never written over)."""
    if path == "" or path.endswith("/") or os.path.isdir(path):
        raise BadInput(f"{flag} {path} is a folder; give a file path")
    _check_parent(path, flag)
    for role, given in inputs:
        try:
            same = os.path.samefile(path, given)
        except OSError:
            same = False
        if same:
            raise BadInput(f"{flag} {path} is {role} {given}: an input is never overwritten; choose another output")
    if not overwrite and os.path.exists(path):
        raise BadInput(f"{path} already exists; pass --overwrite to replace it, or choose another output")


def check_output_folder(folder, names, overwrite, flag):
    """Like check_output, for files `names` written into `folder`."""
    if os.path.exists(folder) and not os.path.isdir(folder):
        raise BadInput(f"{flag} {folder} is a file; give a folder")
    _check_parent(folder, flag)
    for name in names:
        path = os.path.join(folder, name)
        if os.path.isdir(path):
            raise BadInput(f"{flag} {folder}: its {name} is a folder")
        if not overwrite and os.path.exists(path):
            raise BadInput(f"{path} already exists; pass --overwrite to replace it, or choose another output")


@contextlib.contextmanager
def pending(path, overwrite):
    """A hidden temporary file beside `path` (its folder made if missing),
    for the caller to write under its name; when the block ends without
    an error it is flushed to disk and renamed `path` (without `overwrite`,
    never over a file that appeared meanwhile), else removed: a failure or
    a crash leaves the old file or the whole new one, never a torn one."""
    folder = os.path.dirname(path) or "."
    os.makedirs(folder, exist_ok=True)
    base = os.path.join(folder, f".{os.path.basename(path)}.{os.getpid()}")
    for k in itertools.count():
        tmp = f"{base}-{k}.partial"
        try:
            os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
            break
        except FileExistsError:
            continue
    try:
        yield tmp
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        if overwrite:
            os.replace(tmp, path)
            return
        try:
            os.link(tmp, path)
        except FileExistsError:
            raise BadInput(f"{path} already exists; pass --overwrite to replace it") from None
        except OSError:
            # A file system without hard links: the check just made, then a rename.
            if os.path.exists(path):
                raise BadInput(f"{path} already exists; pass --overwrite to replace it") from None
            os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def write_output(path, text, overwrite):
    """Writes `text` to `path` through `pending`; a failure is one BadInput."""
    try:
        with pending(path, overwrite) as tmp:
            with open(tmp, "w", newline="") as f:
                f.write(text)
    except OSError as e:
        raise BadInput(f"cannot write {path}: {e.strerror or e}") from None
