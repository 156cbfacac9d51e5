#!/usr/bin/env python3
"""How far TensorFlow's and libtorch's float32 tanh and sigmoid are apart.

Where float32 parity starts: the same input gives results a few units in the
last place (ulps) apart, because TensorFlow's CPU kernels are Eigen's fast
rational approximations and libtorch's are close to correctly rounded. Also
prints where each tanh first returns exactly +-1, which decides whether a
saturated unit's gradient 1 - y^2 is 0. Needs `scripts/setup.sh --keras`.

  ~/.cache/binclass/torch-2.11.0/bin/python scripts/kernel_ulps.py
"""
import os

os.environ["TF_USE_LEGACY_KERAS"] = "1"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import torch  # noqa: E402


def ulps(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.abs(a.view(np.int32).astype(np.int64) - b.view(np.int32).astype(np.int64))


x = np.linspace(-7.8, 7.8, 2_000_001).astype(np.float32)
exact = {"tanh": np.tanh(x.astype(np.float64)), "sigmoid": 1 / (1 + np.exp(-x.astype(np.float64)))}
print(f"{len(x)} points in [-7.8, 7.8], float32")
for name, tf_f, torch_f in [("tanh", tf.math.tanh, torch.tanh), ("sigmoid", tf.math.sigmoid, torch.sigmoid)]:
    a, b = tf_f(x).numpy(), torch_f(torch.from_numpy(x)).numpy()
    err = [np.max(np.abs(v - exact[name]) / np.spacing(np.abs(v))) for v in (a, b)]
    print(
        f"{name:8} differ at {100 * np.mean(a != b):.0f}% of points, at most {ulps(a, b).max()} ulps apart; "
        f"largest error: TensorFlow {err[0]:.2f} ulps, libtorch {err[1]:.2f} ulps"
    )
big = np.linspace(0, 12, 1_200_001).astype(np.float32)
for label, y in [("TensorFlow", tf.math.tanh(big).numpy()), ("libtorch", torch.tanh(torch.from_numpy(big)).numpy())]:
    print(f"{label:10} tanh(x) == 1 from x = {big[np.argmax(y == 1)]:.4f}")
