#!/usr/bin/env python3
"""The baseline job in JAX, written as a JAX engineer would for speed: one
`jax.jit` of the whole training, a `lax.scan` over epochs around a `lax.scan`
over each epoch's 267 steps, `jax.vmap` over seeds. Same recipe as binclass:
numpy data from the seed (10,000 uniform rows of 2 features, label x0 > x1,
the first 8,000 train), 3 tanh Dense layers of 3 and one logit, Keras
initialisation (glorot-uniform kernels, zero biases), binary cross-entropy from
the logits, Keras's Adam (lr 0.03, epsilon 1e-7 after the bias correction),
batch 30 over a fresh permutation every epoch. The short last batch (20 rows)
is padded to 30 and its padded rows weighted 0 in the step's mean loss, so its
gradient is that of the mean over its 20 rows. Training metrics (running means
over the epoch's samples) and validation are computed inside the scan and read
once at the end. float32, CPU, one thread. Prints the fit time and seed 0's
final metrics (and the mean over seeds) on stderr; --out writes seed 0's epochs
as a Keras CSVLogger file. Run it with the environment of `scripts/setup.sh --bench`.
"""
import argparse
import csv
import os
import sys
import time

# Before jax is imported. With jax 0.10.2 the one XLA flag that keeps the CPU
# backend on one thread is --xla_cpu_multi_thread_eigen=false (Eigen's matrix
# products and convolutions single-threaded); the old companion
# `intra_op_parallelism_threads=1` is not an XLA flag (a "--" form is refused as
# unknown, the bare form silently ignored), so it is not set. For ops this small
# XLA emits its own loops and the flag changed nothing measurable here; a run
# still shows ~100-140% CPU, from XLA's compiler threads.
os.environ["JAX_PLATFORMS"] = "cpu"
os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_cpu_multi_thread_eigen=false").strip()

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from jax import lax  # noqa: E402

SAMPLES, TRAIN, BATCH = 10_000, 8_000, 30
STEPS = -(-TRAIN // BATCH)  # 267, the last of 20 rows
SIZES = [2, 3, 3, 3, 1]  # 2 features, 3 tanh layers of int(2 * 1.2 + 1), one logit
# float32 constants, as tf-keras holds its hyperparameters (1 - B1 rounds as there)
LR, B1, B2, EPS = np.float32(0.03), np.float32(0.9), np.float32(0.999), np.float32(1e-7)


def data(seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.random((SAMPLES, 2))
    return x.astype(np.float32), (x[:, 0] > x[:, 1]).astype(np.float32)


def init(key):
    glorot = jax.nn.initializers.glorot_uniform()  # uniform in ±sqrt(6 / (fan_in + fan_out)), as Keras
    keys = jax.random.split(key, len(SIZES) - 1)
    return [(glorot(k, (i, o), jnp.float32), jnp.zeros(o, jnp.float32)) for k, i, o in zip(keys, SIZES, SIZES[1:])]


def logits(params, x):
    for w, b in params[:-1]:
        x = jnp.tanh(x @ w + b)
    w, b = params[-1]
    return (x @ w + b)[..., 0]


def bce(z, y):  # Keras's binary cross-entropy from the logits, per row
    return jax.nn.softplus(z) - z * y


def shuffle(key, n: int):
    """A uniform permutation of range(n < 2**13) in two rounds of sorting random keys.

    jax.random.permutation does this too (rounds of random uint32 keys), but as
    a two-operand sort, which XLA's CPU sort runs 5x slower than a one-operand
    uint32 sort (measured: 1.45 against 0.26 ms for 8,000 rows; for 100 seeds the
    shuffles took a third of the run). So each round sorts one uint32 per row: 19
    random bits over the row's position; a tie in the random bits keeps the
    order of the previous round, itself random.
    """
    position = jnp.arange(n, dtype=jnp.uint32)
    order = position
    for k in jax.random.split(key, 2):
        packed = (jax.random.bits(k, (n,)) & ~jnp.uint32(0x1FFF)) | position
        order = order[jnp.sort(packed) & 0x1FFF]
    return order.astype(jnp.int32)


def train(key, x, y, epochs: int):
    """One seed's whole fit; returns (epochs, 4): loss, accuracy, val_loss, val_accuracy."""
    tx, ty, vx, vy = x[:TRAIN], y[:TRAIN], x[TRAIN:], y[TRAIN:]
    key, k = jax.random.split(key)
    params = init(k)
    zeros = jax.tree.map(jnp.zeros_like, params)
    pad = STEPS * BATCH - TRAIN
    weight = jnp.concatenate([jnp.ones(TRAIN), jnp.zeros(pad)]).reshape(STEPS, BATCH)

    def loss_fn(params, xb, yb, wb):
        z = logits(params, xb)
        return jnp.sum(wb * bce(z, yb)) / jnp.sum(wb), z

    def step(carry, batch):
        params, m, v, t, loss_sum, hits = carry
        xb, yb, wb = batch
        (loss, z), g = jax.value_and_grad(loss_fn, has_aux=True)(params, xb, yb, wb)
        t = t + 1
        alpha = LR * jnp.sqrt(1 - jnp.float32(B2) ** t) / (1 - jnp.float32(B1) ** t)
        m = jax.tree.map(lambda m, g: m + (g - m) * (1 - B1), m, g)
        v = jax.tree.map(lambda v, g: v + (g * g - v) * (1 - B2), v, g)
        params = jax.tree.map(lambda p, m, v: p - m * alpha / (jnp.sqrt(v) + EPS), params, m, v)
        loss_sum += loss * jnp.sum(wb)
        hits += jnp.sum(wb * ((z > 0) == (yb > 0.5)))
        return (params, m, v, t, loss_sum, hits), None

    def epoch(carry, _):
        params, m, v, t, key = carry
        key, k = jax.random.split(key)
        order = jnp.concatenate([shuffle(k, TRAIN), jnp.zeros(pad, jnp.int32)])
        order = order.reshape(STEPS, BATCH)
        (params, m, v, t, loss_sum, hits), _ = lax.scan(
            step, (params, m, v, t, jnp.float32(0), jnp.float32(0)), (tx[order], ty[order], weight)
        )
        z = logits(params, vx)
        metrics = jnp.stack(
            [loss_sum / TRAIN, hits / TRAIN, jnp.mean(bce(z, vy)), jnp.mean((z > 0) == (vy > 0.5))]
        )
        return (params, m, v, t, key), metrics

    _, metrics = lax.scan(epoch, (params, zeros, zeros, jnp.float32(0), key), None, length=epochs)
    return metrics


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seeds", type=int, default=1, help="seeds 0..N-1, trained at once under vmap")
    p.add_argument("--epochs", type=int, default=100)
    p.add_argument("--out", help="write seed 0's epochs here as a Keras CSVLogger file")
    a = p.parse_args()
    if a.seeds < 1 or a.epochs < 1:
        p.error("--seeds and --epochs must be at least 1")

    start = time.perf_counter()
    x, y = map(np.stack, zip(*(data(s) for s in range(a.seeds))))
    keys = jax.vmap(jax.random.key)(jnp.arange(a.seeds))
    fit = jax.jit(jax.vmap(train, in_axes=(0, 0, 0, None)), static_argnums=3)
    compiled = fit.lower(keys, x, y, a.epochs).compile()
    compiled_at = time.perf_counter()
    metrics = np.asarray(compiled(keys, x, y))  # (seeds, epochs, 4), waits for the result
    done = time.perf_counter()

    loss, acc, val_loss, val_acc = metrics[0, -1]
    print(
        f"compile_seconds={compiled_at - start:.3f} fit_seconds={done - compiled_at:.3f} "
        f"loss={loss:.4f} binary_accuracy={acc:.4f} val_loss={val_loss:.4f} val_binary_accuracy={val_acc:.4f}",
        file=sys.stderr,
    )
    if a.seeds > 1:
        finals = metrics[:, -1, 3]
        print(
            f"seeds={a.seeds} mean_val_binary_accuracy={finals.mean():.4f} min={finals.min():.4f} max={finals.max():.4f}",
            file=sys.stderr,
        )
    if a.out:
        with open(a.out, "w", newline="") as f:  # csv's excel dialect: \r\n, as CSVLogger
            w = csv.writer(f)
            w.writerow(["epoch", "binary_accuracy", "loss", "val_binary_accuracy", "val_loss"])
            for e, (loss, acc, val_loss, val_acc) in enumerate(metrics[0].tolist()):
                w.writerow([e, acc, loss, val_acc, val_loss])


if __name__ == "__main__":
    main()
