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
    scripts/predict_torch.py. Needs tf-keras and safetensors.

Presets (the article's sections 3 and 4):
  baseline        2 features, NOISE_RATE 0, 100 epochs
  noise           NOISE_RATE 0.2
  dummy-features  5 features; the label still from features 0 and 1
  scaled          features x1000
  scaled-long     features x1000, 500 epochs
  shifted         features +1000

The labels are computed from the raw [0, 1) features, then the transform is
applied to the features (a comparison, so the label is the same either way).

Example:
  TF_CPP_MIN_LOG_LEVEL=2 python scripts/keras_reference.py \
      --preset baseline --seed 0 --verbose 0 --out reference/keras/baseline/seed-0.csv
"""

import argparse
import os
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
parser.add_argument("--predict", nargs=2, metavar=("MODEL", "POINTS"), default=None,
                    help="a binclass model's probabilities for a CSV's points, in Keras (see above)")
args = parser.parse_args()


def fail(message):
    """One line on stderr, exit status 1: bad input is never a traceback."""
    sys.exit(f"keras_reference: {message}")


def read_model(path):
    """(metadata, tensors by name) of a binclass model file, checked."""
    from safetensors import SafetensorError, safe_open
    from safetensors.numpy import load_file

    try:
        with safe_open(path, framework="np") as f:
            meta = f.metadata()
        tensors = load_file(path)
    except (OSError, SafetensorError) as e:
        fail(f"{path}: not a readable safetensors file ({e})")
    if not meta or meta.get("format") != "binclass-model":
        fail(f"{path}: not a binclass model (no binclass metadata)")
    try:
        features, hidden, units = (int(meta[k]) for k in ("features", "hidden_layers", "units"))
        activation = meta["activation"]
    except (KeyError, ValueError) as e:
        fail(f"{path}: metadata lacks a valid {e}")
    if activation not in ("tanh", "relu", "sigmoid"):
        fail(f"{path}: metadata activation {activation!r} is not tanh, relu or sigmoid")
    # PyTorch's nn.Sequential names: Linear l is module 2l (activations count).
    widths = [features] + [units] * hidden + [1]
    shapes = {}
    for l in range(hidden + 1):
        shapes[f"{2 * l}.weight"] = (widths[l + 1], widths[l])
        shapes[f"{2 * l}.bias"] = (widths[l + 1],)
    found = {k: tuple(v.shape) for k, v in tensors.items()}
    if found != shapes:
        fail(f"{path}: tensors {sorted(found.items())} are not this network's {sorted(shapes.items())}")
    return meta, tensors, widths, activation


def read_points(path, features):
    """The points as float64 rows (binclass parses them so); a header is skipped."""
    import csv
    import numpy as np

    rows = []
    try:
        with open(path, newline="") as f:
            for i, row in enumerate(csv.reader(f)):
                try:
                    values = [float(v) for v in row]
                except ValueError:
                    if i == 0:
                        continue  # a header
                    fail(f"{path}: line {i + 1}: not a number")
                if len(values) != features:
                    fail(f"{path}: line {i + 1}: {len(values)} columns, expected {features}")
                rows.append(values)
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        fail(f"{path}: {e}")
    if not rows:
        fail(f"{path}: no points")
    return np.array(rows, dtype=np.float64).reshape(-1, features)


def predict(model_path, points_path, out):
    """The --predict mode: the file's network in Keras, its probabilities."""
    import json
    import numpy as np

    meta, tensors, widths, activation = read_model(model_path)
    x = read_points(points_path, widths[0])
    if meta.get("normalize") == "standard":
        # In float64, as binclass scales its rows, then float32 for the network.
        mean = np.array(json.loads(meta["normalize_mean"]), dtype=np.float64)
        std = np.array(json.loads(meta["normalize_std"]), dtype=np.float64)
        x = (x - mean) / std
    elif meta.get("normalize") != "none":
        fail(f"{model_path}: metadata normalize {meta.get('normalize')!r} is not none or standard")
    try:
        import tensorflow as tf
        import tf_keras  # noqa: F401  (what tf.keras is under TF_USE_LEGACY_KERAS)
    except ImportError as e:
        fail(f"{e.name} is not installed: run scripts/setup.sh --keras")

    # The article's Sequential of Dense layers, sized by the file; with no
    # hidden layer the output Dense takes the input shape itself.
    layers = [
        tf.keras.layers.Dense(units=w, activation=activation if i < len(widths) - 2 else "sigmoid",
                              **({"input_shape": (widths[0],)} if i == 0 else {}))
        for i, w in enumerate(widths[1:])
    ]
    model = tf.keras.models.Sequential(layers)
    weights = []
    for l in range(len(widths) - 1):
        weights += [tensors[f"{2 * l}.weight"].T, tensors[f"{2 * l}.bias"]]
    model.set_weights(weights)
    prob = model.predict(x.astype(np.float32), batch_size=65536, verbose=0).reshape(-1)
    lines = ["probability\n"] + [f"{float(p)!r}\n" for p in prob]
    if out is None:
        sys.stdout.writelines(lines)
        return
    try:
        with open(out, "w", newline="") as f:
            f.writelines(lines)
    except OSError as e:
        fail(f"cannot write {out}: {e.strerror or e}")


if args.predict is not None:
    predict(args.predict[0], args.predict[1], args.out)
    sys.exit(0)

n_features, NOISE_RATE, transform, EPOCHS = PRESETS[args.preset]
if args.epochs is not None:
    EPOCHS = args.epochs

import tensorflow as tf
import numpy as np
from tensorflow.keras.metrics import binary_accuracy

if args.seed is not None:
    tf.keras.utils.set_random_seed(args.seed)  # python random, numpy, TF
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

def dump(folder):
    """Replays fit step by step, recording what `binclass parity` needs."""
    import csv

    os.makedirs(folder, exist_ok=True)
    np.savez(os.path.join(folder, "data.npz"), x=ds_features, y=ds_labels)
    weights = {}
    for i, layer in enumerate(model.layers):
        kernel, bias = layer.get_weights()
        weights[f"kernel_{i}"], weights[f"bias_{i}"] = kernel, bias
    np.savez(os.path.join(folder, "weights.npz"), **weights)
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
        v = model.evaluate(validation_features, validation_labels, batch_size=30, verbose=0, return_dict=True)
        epochs.append((epoch, acc_sum / n, loss_sum / n, v["binary_accuracy"], v["loss"]))
    np.save(os.path.join(folder, "order.npy"), np.array(orders, dtype=np.int64))
    with open(os.path.join(folder, "steps.csv"), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["epoch", "step", "loss", "binary_accuracy"])
        w.writerows(steps)
    with open(os.path.join(folder, "epochs.csv"), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["epoch", "binary_accuracy", "loss", "val_binary_accuracy", "val_loss"])
        w.writerows(epochs)


if args.dump is not None:
    start = time.perf_counter()
    dump(args.dump)
    print(f"fit_seconds={time.perf_counter() - start:.3f}", file=sys.stderr)
    sys.exit(0)

# 学習
callbacks = []
if args.out is not None:
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    callbacks.append(tf.keras.callbacks.CSVLogger(args.out))
BATCH_SIZE = 30
start = time.perf_counter()
result = model.fit(x=training_features, y=training_labels,
                   validation_data=(validation_features, validation_labels),
                   batch_size=BATCH_SIZE, epochs=EPOCHS, verbose=args.verbose,
                   callbacks=callbacks)
fit_seconds = time.perf_counter() - start
print(f"fit_seconds={fit_seconds:.3f}", file=sys.stderr)
