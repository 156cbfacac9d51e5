#!/usr/bin/env python3
"""How far TensorFlow's and libtorch's float32 (or float64) tanh and sigmoid are apart.

Where float32 parity starts: the same input gives results a few units in the
last place (ulps) apart, because TensorFlow's CPU kernels are Eigen's fast
rational approximations and libtorch's are close to correctly rounded. Also
prints where each tanh first returns exactly +-1, which decides whether a
saturated unit's gradient 1 - y^2 is 0. `--dtype f64` does the same in
float64 (the exact values from numpy's long double), where the `scaled`
preset's replay parts (docs/parity.md). Needs `scripts/setup.sh --keras`.

  ~/.cache/binclass/torch-2.11.0/bin/python scripts/kernel_ulps.py [--dtype f64]
"""
import argparse
import os

os.environ["TF_USE_LEGACY_KERAS"] = "1"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import torch  # noqa: E402

p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
p.add_argument("--dtype", choices=("f32", "f64"), default="f32")
a = p.parse_args()
# float32 against float64 as exact; float64 against long double (x86's 64-bit mantissa).
dtype, wide, ints, name, edge, top = {
    "f32": (np.float32, np.float64, np.int32, "float32", 7.8, 12),
    "f64": (np.float64, np.longdouble, np.int64, "float64", 19.0, 22),
}[a.dtype]


def ulps(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.abs(a.view(ints).astype(np.int64) - b.view(ints).astype(np.int64))


x = np.linspace(-edge, edge, 2_000_001).astype(dtype)
xw = x.astype(wide)
exact = {"tanh": np.tanh(xw), "sigmoid": 1 / (1 + np.exp(-xw))}
print(f"{len(x)} points in [-{edge}, {edge}], {name}")
for fn, tf_f, torch_f in [("tanh", tf.math.tanh, torch.tanh), ("sigmoid", tf.math.sigmoid, torch.sigmoid)]:
    a, b = tf_f(x).numpy(), torch_f(torch.from_numpy(x)).numpy()
    err = [float(np.max(np.abs(v.astype(wide) - exact[fn]) / np.spacing(np.abs(v)))) for v in (a, b)]
    print(
        f"{fn:8} differ at {100 * np.mean(a != b):.0f}% of points, at most {ulps(a, b).max()} ulps apart; "
        f"largest error: TensorFlow {err[0]:.2f} ulps, libtorch {err[1]:.2f} ulps"
    )
big = np.linspace(0, top, 1_200_001).astype(dtype)
for label, y in [("TensorFlow", tf.math.tanh(big).numpy()), ("libtorch", torch.tanh(torch.from_numpy(big)).numpy())]:
    print(f"{label:10} tanh(x) == 1 from x = {big[np.argmax(y == 1)]:.4f}")
