#!/usr/bin/env python3
"""Keras reference runs: the article's tf.keras script, runnable today.

The article's code (a Qiita post, "Keras で機械学習に初挑戦した記録", reproduced
in the project's seed text) is kept as it was, changed only where today's
libraries refuse it or where the reference runs need a knob:

  * `TF_USE_LEGACY_KERAS=1` is set before importing TensorFlow, so `tf.keras`
    is tf-keras (Keras 2, as in the article) and not Keras 3.
  * `np.int` -> `int` (numpy removed the alias in 1.24).
  * `Adam(lr=...)` -> `Adam(learning_rate=...)` (Keras dropped `lr`).
  * matplotlib display removed (`import matplotlib.pyplot`, the plot and
    `plt.show()`); the history goes to a CSV written by Keras's own
    `tf.keras.callbacks.CSVLogger` instead (`--out`).
  * argparse: `--preset` picks the article's experiment (below), `--seed`
    seeds python `random`, numpy and TF via `tf.keras.utils.set_random_seed`
    (the article did not seed), `--epochs` overrides the epoch count,
    `--verbose` is passed to `fit` (the article used 1).
  * the fit's wall time is printed to stderr as `fit_seconds=<float>`.
  * `--dump DIR` (for `binclass parity`): the run is replayed step by step so
    that every step can be recorded. Each epoch draws its permutation with
    numpy itself and feeds the batches in that order to
    `model.train_on_batch` (Keras's own train step: the same forward, loss,
    gradient and Adam update `fit` runs; the optimiser state carries over),
    then evaluates the validation rows as `fit` does. DIR gets data.npz (x,
    y as generated, float64), weights.npz (kernel_i [in, out], bias_i, before
    training), order.npy (each epoch's row order, [epochs, 8000]), steps.csv
    (epoch, step, loss, binary_accuracy of every step, before its update) and
    epochs.csv (the CSVLogger columns, training figures as sample-weighted
    means of the steps).
  * `--dtype f64`: `tf.keras.backend.set_floatx('float64')` before the model
    is built, so weights, activations, loss and Adam run in float64 (the
    article ran float32, Keras's default). With `binclass parity --dtype
    f64` it shows whether two float32 trajectories part by rounding.
  * `--predict M.safetensors POINTS.csv [--out CSV]`: no training. The
    article's model (Dense layers, `input_shape` on the first) is built with
    the architecture a binclass model file declares (features, hidden
    layers, units, activation; a sigmoid output unit), given the file's
    weights with `set_weights` (PyTorch's [out, in] weights transposed to
    Keras's [in, out] kernels), and asked for the probability of each point
    of POINTS.csv (the model's feature columns in raw units, a header row
    optional) after the stored normalisation. One probability per line,
    as Python's repr writes a float32, to stdout or --out, like
    scripts/predict_torch.py. The model and the points are read through
    scripts/binclass_files.py, with binclass's checks (a NaN, infinite or
    float32-overflowing value, a NaN weight, a format version other than
    1, …): what `binclass predict` refuses is one line here too, in the
    same words, before TensorFlow is loaded. Needs tf-keras and safetensors.
  * Outputs (`--out`, the files `--dump` writes) are treated as binclass
    treats its own: an existing one is replaced only with `--overwrite`,
    an input (`--predict`'s model and points) never, and each is written
    under a hidden temporary name beside it and renamed when complete, so
    that a failure or a crash leaves the old file or the whole new one.
    Everything is checked before TensorFlow is loaded; without tf-keras
    every mode stops with one line naming `scripts/setup.sh --keras`.

  * `--seeds A..B` (B excluded; `A..=B` includes it; `N` is 0..N) runs every seed of
    the range in one process, each as `--seed` would (the session is
    cleared and reseeded, so a seed's CSV is byte-identical to its own
    process's), into `--out-dir DIR` (default reference/keras) as
    DIR/<preset>/seed-<n>.csv. A seed whose CSV is complete (a header and
    one row per epoch) is skipped, and each CSV is written under a hidden
    partial name and renamed when its run ends: a job cut short goes on
    where it stopped when started again. An empty range is refused, in
    binclass's words. `--shard K/N` (K from 0) runs the
    K-th of N contiguous slices of the range, as binclass's `--shard`
    slices seeds (a Slurm array's task K: docs/cluster/keras.slurm);
    with `--shard-unfinished`, of the seeds of the range not yet finished
    (for workers started together on a range partly done, which contiguous
    slices of the whole range would leave to one of them).
    Each finished run appends `preset,seed,epochs,fit_seconds,threads` to
    DIR/fit-seconds.log.
  * `--threads N` sets TensorFlow's intra- and inter-op thread pools to N
    (default: TensorFlow's own choice, one per core); one thread per process
    lets two processes share two cores without contending.
  * `--tensorboard DIR` attaches Keras's own `tf.keras.callbacks.TensorBoard`
    (log_dir `DIR/<preset>/seed<n>`, so DIR/<preset>/seed<n>/train and
    .../validation), to view real Keras runs beside binclass's
    (`binclass train --tensorboard`).

Presets (the article's sections 3 and 4):
  baseline        2 features, NOISE_RATE 0, 100 epochs
  noise           NOISE_RATE 0.2
  dummy-features  5 features; the label still from features 0 and 1
  scaled          features x1000
  scaled-long     features x1000, 500 epochs
  shifted         features +1000

The labels are computed from the raw [0, 1) features, then the transform is
applied to the features (a comparison, so the label is the same either way).

Examples:
  TF_CPP_MIN_LOG_LEVEL=2 python scripts/keras_reference.py \
      --preset baseline --seed 0 --verbose 0 --out reference/keras/baseline/seed-0.csv
  TF_CPP_MIN_LOG_LEVEL=2 python scripts/keras_reference.py \
      --preset scaled --seeds 0..300 --threads 1 --verbose 0
"""

import argparse
import contextlib
import os
import re
import sys
import time

os.environ["TF_USE_LEGACY_KERAS"] = "1"  # tf.keras = tf-keras (Keras 2), before importing tensorflow

PRESETS = {
    # name: (features, noise rate, transform, epochs)
    "baseline": (2, 0.0, None, 100),
    "noise": (2, 0.2, None, 100),
    "dummy-features": (5, 0.0, None, 100),
    "scaled": (2, 0.0, ("mul", 1000.0), 100),
    "scaled-long": (2, 0.0, ("mul", 1000.0), 500),
    "shifted": (2, 0.0, ("add", 1000.0), 100),
}

parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
parser.add_argument("--preset", choices=sorted(PRESETS), default="baseline")
parser.add_argument("--seed", type=int, default=None, help="seed for python random, numpy and TF (default: unseeded, as the article)")
parser.add_argument("--epochs", type=int, default=None, help="override the preset's epoch count")
parser.add_argument("--out", default=None, help="CSV written by tf.keras.callbacks.CSVLogger")
parser.add_argument("--verbose", type=int, choices=(0, 1, 2), default=1)
parser.add_argument("--dump", default=None, help="folder for a step-by-step record (see above)")
parser.add_argument("--dtype", choices=("f32", "f64"), default="f32", help="Keras floatx (default f32, as the article)")
parser.add_argument("--seeds", default=None, metavar="A..B",
                    help="run every seed of A..B (A..=B includes B) into --out-dir, skipping finished ones")
parser.add_argument("--shard", default=None, metavar="K/N", help="with --seeds: only the K-th of N slices (K from 0)")
parser.add_argument("--shard-unfinished", action="store_true",
                    help="with --shard: slice only the seeds not yet finished, so that workers started together share what is left evenly")
parser.add_argument("--out-dir", default=None, help="with --seeds: DIR/<preset>/seed-<n>.csv (default reference/keras)")
parser.add_argument("--threads", type=int, default=None, help="TensorFlow's intra- and inter-op threads")
parser.add_argument("--tensorboard", default=None, metavar="DIR",
                    help="Keras's TensorBoard callback, log_dir DIR/<preset>/seed<n>")
parser.add_argument("--predict", nargs=2, metavar=("MODEL", "POINTS"), default=None,
                    help="a binclass model's probabilities for a CSV's points, in Keras (see above)")
parser.add_argument("--overwrite", action="store_true",
                    help="replace an existing --out or --dump files (never --predict's inputs)")
args = parser.parse_args()


def fail(message):
    """One line on stderr, exit status 1: bad input is never a traceback."""
    sys.exit(f"keras_reference: {message}")


try:
    import binclass_files as files  # scripts/ beside this one: binclass's readers and output rules
except ImportError as e:
    fail(f"{e.name} is not installed: run scripts/setup.sh")


def checked(f, *a):
    """f(*a), a BadInput as one line."""
    try:
        return f(*a)
    except files.BadInput as e:
        fail(str(e))


def need_keras():
    """TensorFlow with tf-keras as tf.keras, or one line saying how to install them."""
    try:
        import tensorflow as tf
        import tf_keras  # noqa: F401  (what tf.keras is under TF_USE_LEGACY_KERAS)
        if args.tensorboard is not None:
            import tensorboard  # noqa: F401  (Keras's TensorBoard callback needs it)
    except ImportError as e:
        fail(f"{e.name or 'tensorflow'} is not installed: run scripts/setup.sh --keras")
    return tf


def predict(model_path, points_path, out):
    """The --predict mode: the file's network in Keras, its probabilities."""
    if out is not None:
        checked(files.check_output, out, args.overwrite, [("the model", model_path), ("the points", points_path)])
    model = checked(files.read_model, model_path)
    _, lines, x = checked(files.read_model_points, model, points_path)
    tf = need_keras()

    # The article's Sequential of Dense layers, sized by the file; with no
    # hidden layer the output Dense takes the input shape itself.
    widths = [model.features] + [w.shape[0] for w, _ in model.layers]
    layers = [
        tf.keras.layers.Dense(units=w, activation=model.activation if i < len(widths) - 2 else "sigmoid",
                              **({"input_shape": (widths[0],)} if i == 0 else {}))
        for i, w in enumerate(widths[1:])
    ]
    net = tf.keras.models.Sequential(layers)
    net.set_weights([t for w, b in model.layers for t in (w.T, b)])
    prob = net.predict(x, batch_size=65536, verbose=0).reshape(-1)
    checked(files.check_probabilities, points_path, lines, prob)
    text = "".join(["probability\n"] + [f"{float(p)!r}\n" for p in prob])
    if out is None:
        sys.stdout.write(text)
    else:
        checked(files.write_output, out, text, args.overwrite)


if args.predict is not None:
    if args.seeds is not None or args.dump is not None:
        fail("--predict does not go with --seeds or --dump")
    predict(args.predict[0], args.predict[1], args.out)
    sys.exit(0)

n_features, NOISE_RATE, transform, EPOCHS = PRESETS[args.preset]
if args.epochs is not None:
    EPOCHS = args.epochs


def parse_seeds(text):
    """`A..B` (B excluded) or `A..=B` (B included), checked and worded as
    binclass's sweep reads --seeds, or `N` (seeds 0..N, as `binclass
    reproduce --seeds N` counts them); an empty range is refused."""
    def num(t):
        digits = t.strip(files.RUST_WHITESPACE)
        if not re.fullmatch(r"\+?[0-9]+", digits, re.ASCII) or int(digits) >= 2**64:
            fail(f"--seeds {text}: '{t}' is not a whole number >= 0; use A..B, A..=B or N")
        return int(digits)

    if "..=" in text:
        a, b = text.split("..=", 1)
        seeds = range(num(a), num(b) + 1)
    elif ".." in text:
        a, b = text.split("..", 1)
        seeds = range(num(a), num(b))
    else:
        seeds = range(num(text))
        if not seeds:
            fail(f"--seeds {text} is empty: N runs seeds 0..N, and needs N >= 1")
    if not seeds:
        fail(f"--seeds {text} is empty: A..B needs A < B (B is excluded; A..=B includes it)")
    if len(seeds) > 10_000_000:
        fail(f"--seeds {text} is more than 10,000,000 seeds; split it into several sweeps")
    return seeds


def parse_shard(text, seeds):
    """`K/N`, 0 <= K < N, as (K, N); without --shard-unfinished, N at most the seeds."""
    try:
        k, n = (int(v) for v in text.split("/"))
    except ValueError:
        fail(f"--shard {text}: expected K/N")
    if not (n > 0 and 0 <= k < n):
        fail(f"--shard {text}: K must be from 0 to N-1")
    if n > len(seeds) and not args.shard_unfinished:
        fail(f"--shard {text}: more shards than the {len(seeds)} seeds to run")
    return k, n


def shard_of(seeds, shard):
    """The K-th of N contiguous slices of `seeds`, cut where binclass's shard::Shard::slice cuts
    replicas that cost alike (one preset's seeds): by count."""
    k, n = shard
    at = lambda i: len(seeds) * i // n
    return seeds[at(k):at(k + 1)]


if args.seeds is None and (args.shard is not None or args.out_dir is not None):
    fail("--shard and --out-dir go with --seeds")
if args.seeds is not None and (args.seed is not None or args.out is not None or args.dump is not None or args.overwrite):
    fail("--seeds runs many seeds into --out-dir; it does not go with --seed, --out, --dump or --overwrite")
if args.shard_unfinished and args.shard is None:
    fail("--shard-unfinished goes with --shard")
if args.out is not None and args.dump is not None:
    fail("--dump writes its own files into its folder; it does not go with --out")

# Every argument and output is checked before TensorFlow loads (seconds).
DUMP_FILES = ("data.npz", "weights.npz", "order.npy", "steps.csv", "epochs.csv")
if args.seeds is not None:
    seeds = parse_seeds(args.seeds)
    out_dir = args.out_dir or os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "reference", "keras")
    shard = parse_shard(args.shard, seeds) if args.shard is not None else None
if args.out is not None:
    checked(files.check_output, args.out, args.overwrite)
if args.dump is not None:
    checked(files.check_output_folder, args.dump, DUMP_FILES, args.overwrite, "--dump")

tf = need_keras()
import numpy as np
from tensorflow.keras.metrics import binary_accuracy

if args.threads is not None:
    # Before TensorFlow starts its thread pools (the first op).
    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    tf.config.threading.set_inter_op_parallelism_threads(args.threads)


def article(seed):
    """The article's data and compiled model, for `seed` (None: unseeded, as the article)."""
    # A fresh Keras state per run: layer names, the graph, and (below) every
    # random stream, so that a seed gives the same run in any process.
    tf.keras.backend.clear_session()
    if seed is not None:
        tf.keras.utils.set_random_seed(seed)  # python random, numpy, TF
    if args.dtype == "f64":
        tf.keras.backend.set_floatx("float64")

    # データセット準備
    ds_features = np.random.rand(10000, n_features)  # 特徴データ
    ds_noise = (np.random.rand(10000) > NOISE_RATE).astype(int) * 2 - 1  # noiseなし: 1, あり: -1
    ds_labels = (np.sign(ds_features[:, 0] - ds_features[:, 1]) * ds_noise + 1) / 2  # 正解ラベル
    if transform is not None:
        op, k = transform
        ds_features = ds_features * k if op == "mul" else ds_features + k

    # データセットを訓練用と検証用に分割
    SPLIT_RATE = 0.8   # 分割比率
    training_features, validation_features = np.split(ds_features, [int(len(ds_features) * SPLIT_RATE)])
    training_labels, validation_labels = np.split(ds_labels, [int(len(ds_labels) * SPLIT_RATE)])

    # モデル準備
    INPUT_FEATURES = ds_features.shape[1]   # 特徴量の次元
    LAYER1_NEURONS = int(INPUT_FEATURES * 1.2 + 1)   # 入力次元より少し広げる
    LAYER2_NEURONS = LAYER1_NEURONS
    LAYER3_NEURONS = LAYER1_NEURONS  # 隠れ層は3層
    OUTPUT_RESULTS = 1  # 出力は一次元
    ACTIVATION = 'tanh'
    model = tf.keras.models.Sequential([
        tf.keras.layers.Dense(input_shape=(INPUT_FEATURES,), units=LAYER1_NEURONS, activation=ACTIVATION),
        tf.keras.layers.Dense(units=LAYER2_NEURONS, activation=ACTIVATION),
        tf.keras.layers.Dense(units=LAYER3_NEURONS, activation=ACTIVATION),
        tf.keras.layers.Dense(units=OUTPUT_RESULTS, activation='sigmoid'),
    ])
    LOSS = 'binary_crossentropy'
    OPTIMIZER = tf.keras.optimizers.Adam   # 典型的な最適化手法
    LEARNING_RATE = 0.03   # 学習係数のよくある初期値
    model.compile(optimizer=OPTIMIZER(learning_rate=LEARNING_RATE), loss=LOSS, metrics=[binary_accuracy])
    return model, ds_features, ds_labels, (training_features, training_labels), (validation_features, validation_labels)


def dump(folder, model, ds_features, ds_labels, train, val):
    """Replays fit step by step, recording what `binclass parity` needs.
    The files are written under temporary names and renamed together once
    all of them are complete."""
    import csv

    training_features, training_labels = train
    weights = {}
    for i, layer in enumerate(model.layers):
        kernel, bias = layer.get_weights()
        weights[f"kernel_{i}"], weights[f"bias_{i}"] = kernel, bias
    n = len(training_features)
    orders, steps, epochs = [], [], []
    for epoch in range(EPOCHS):
        order = np.random.permutation(n)
        orders.append(order)
        xs, ys = training_features[order], training_labels[order]
        loss_sum = acc_sum = 0.0
        for step, start in enumerate(range(0, n, 30)):
            xb, yb = xs[start:start + 30], ys[start:start + 30]
            m = model.train_on_batch(xb, yb, reset_metrics=True, return_dict=True)
            steps.append((epoch, step, m["loss"], m["binary_accuracy"]))
            loss_sum += m["loss"] * len(xb)
            acc_sum += m["binary_accuracy"] * len(xb)
        v = model.evaluate(val[0], val[1], batch_size=30, verbose=0, return_dict=True)
        epochs.append((epoch, acc_sum / n, loss_sum / n, v["binary_accuracy"], v["loss"]))

    def table(header, rows):
        def write(f):
            w = csv.writer(f)
            w.writerow(header)
            w.writerows(rows)
        return write

    writers = {
        "data.npz": lambda f: np.savez(f, x=ds_features, y=ds_labels),
        "weights.npz": lambda f: np.savez(f, **weights),
        "order.npy": lambda f: np.save(f, np.array(orders, dtype=np.int64)),
        "steps.csv": table(["epoch", "step", "loss", "binary_accuracy"], steps),
        "epochs.csv": table(["epoch", "binary_accuracy", "loss", "val_binary_accuracy", "val_loss"], epochs),
    }
    try:
        with contextlib.ExitStack() as stack:
            for name in DUMP_FILES:
                tmp = stack.enter_context(files.pending(os.path.join(folder, name), args.overwrite))
                text = name.endswith(".csv")
                with open(tmp, "w" if text else "wb", **({"newline": ""} if text else {})) as f:
                    writers[name](f)
    except OSError as e:
        fail(f"--dump {folder}: cannot write: {e.strerror or e}")
    except files.BadInput as e:
        fail(str(e))


def fit(seed, out):
    """The article's `fit`, its history to `out` by Keras's CSVLogger; returns fit's seconds."""
    model, _, _, (training_features, training_labels), validation = article(seed)
    # 学習
    callbacks = []
    if out is not None:
        callbacks.append(tf.keras.callbacks.CSVLogger(out))
    if args.tensorboard is not None:
        run = f"{args.preset}/seed{seed}" if seed is not None else args.preset
        callbacks.append(tf.keras.callbacks.TensorBoard(log_dir=os.path.join(args.tensorboard, run)))
    BATCH_SIZE = 30
    start = time.perf_counter()
    result = model.fit(x=training_features, y=training_labels,
                       validation_data=validation,
                       batch_size=BATCH_SIZE, epochs=EPOCHS, verbose=args.verbose,
                       callbacks=callbacks)
    return time.perf_counter() - start


def finished(path):
    """Whether `path` is a complete CSVLogger file of EPOCHS epochs."""
    try:
        with open(path, newline="") as f:
            rows = f.read().split("\r\n")
    except OSError:
        return False
    return len(rows) == EPOCHS + 2 and rows[-1] == "" and rows[-2].split(",")[0] == str(EPOCHS - 1)


def fit_seeds(seeds, out_dir):
    """Every seed not yet finished, each under a partial name renamed when whole."""
    folder = os.path.join(out_dir, args.preset)
    os.makedirs(folder, exist_ok=True)
    for seed in seeds:
        out = os.path.join(folder, f"seed-{seed}.csv")
        if finished(out):
            continue
        partial = os.path.join(folder, f".seed-{seed}.csv.partial")
        seconds = fit(seed, partial)
        os.replace(partial, out)
        with open(os.path.join(out_dir, "fit-seconds.log"), "a") as f:
            f.write(f"{args.preset},{seed},{EPOCHS},{seconds:.3f},{args.threads or 0}\n")
        print(f"{args.preset} seed {seed}: fit_seconds={seconds:.3f}", file=sys.stderr, flush=True)


if args.seeds is not None:
    if args.shard_unfinished:
        seeds = [s for s in seeds if not finished(os.path.join(out_dir, args.preset, f"seed-{s}.csv"))]
    if shard is not None:
        seeds = shard_of(seeds, shard)
    fit_seeds(seeds, out_dir)
    sys.exit(0)

if args.dump is not None:
    model, ds_features, ds_labels, train, val = article(args.seed)
    start = time.perf_counter()
    dump(args.dump, model, ds_features, ds_labels, train, val)
    print(f"fit_seconds={time.perf_counter() - start:.3f}", file=sys.stderr)
    sys.exit(0)

if args.out is None:
    print(f"fit_seconds={fit(args.seed, None):.3f}", file=sys.stderr)
    sys.exit(0)
# Keras's CSVLogger writes a temporary beside --out, renamed when the fit is done.
try:
    with files.pending(args.out, args.overwrite) as partial:
        seconds = fit(args.seed, partial)
except OSError as e:
    fail(f"cannot write {args.out}: {e.strerror or e}")
except files.BadInput as e:
    fail(str(e))
print(f"fit_seconds={seconds:.3f}", file=sys.stderr)
