#!/usr/bin/env python3
"""Step 0's gradient of a `keras_reference.py --dump DIR` run: TensorFlow's against libtorch's.

From the dump's starting weights and first batch, the article's model is built
in tf.keras (GradientTape, in the dump's dtype) and in PyTorch (autograd,
libtorch's CPU kernels, as binclass uses them); prints both losses, the loss
Keras would give if it clipped probabilities instead of taking the logit, and
per parameter the largest relative difference of the two gradients. Before
any update, this separates the arithmetic of one step from its amplification
by training: on the `scaled` preset (inputs in the hundreds) the first
layer's gradient flows only through units whose tanh is within a few ulps of
1, so its 1 - y^2 carries each kernel's last bits. Needs `scripts/setup.sh --keras`.

  ~/.cache/binclass/torch-2.11.0/bin/python scripts/step0_gradients.py DIR
"""
import argparse
import os

os.environ["TF_USE_LEGACY_KERAS"] = "1"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import torch  # noqa: E402

p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
p.add_argument("dump", help="a keras_reference.py --dump folder")
p.add_argument("--batch", type=int, default=30)
a = p.parse_args()
tf.config.threading.set_intra_op_parallelism_threads(1)
tf.config.threading.set_inter_op_parallelism_threads(1)
torch.set_num_threads(1)

data, w = np.load(os.path.join(a.dump, "data.npz")), np.load(os.path.join(a.dump, "weights.npz"))
rows = np.load(os.path.join(a.dump, "order.npy"))[0][: a.batch]
x, y = data["x"][rows], data["y"][rows]
layers = sum(1 for k in w.files if k.startswith("kernel_"))
names = [f"{k}_{i}" for i in range(layers) for k in ("kernel", "bias")]
dtype = w["kernel_0"].dtype
x, y = x.astype(dtype), y.astype(dtype)
tf.keras.backend.set_floatx("float64" if dtype == np.float64 else "float32")

units = [w[f"kernel_{i}"].shape[1] for i in range(layers)]
model = tf.keras.Sequential(
    [tf.keras.layers.Dense(units[0], activation="tanh", input_shape=(x.shape[1],))]
    + [tf.keras.layers.Dense(u, activation="tanh") for u in units[1:-1]]
    + [tf.keras.layers.Dense(units[-1], activation="sigmoid")]
)
model.set_weights([w[n] for n in names])
bce = tf.keras.losses.BinaryCrossentropy()


@tf.function
def keras_step(x, y):
    with tf.GradientTape() as tape:
        p = model(x, training=True)
        loss = bce(y[:, None], p)
    return loss, p, tape.gradient(loss, model.trainable_variables)


loss_tf, prob, grads_tf = keras_step(tf.constant(x), tf.constant(y))
params = [torch.tensor(w[n], requires_grad=True) for n in names]
h = torch.tensor(x)
for i in range(layers - 1):
    h = torch.tanh(h @ params[2 * i] + params[2 * i + 1])
logit = (h @ params[-2] + params[-1])[:, 0]
loss_torch = torch.nn.functional.binary_cross_entropy_with_logits(logit, torch.tensor(y))
loss_torch.backward()

eps = 1e-7
pc = np.clip(prob.numpy()[:, 0], eps, 1 - eps)
clipped = -float(np.mean(y * np.log(pc + eps) + (1 - y) * np.log(1 - pc + eps)))
print(f"loss: TensorFlow {float(loss_tf)!r}, libtorch {loss_torch.item()!r}, clipped probabilities {clipped!r}")
z = np.abs(x @ w["kernel_0"] + w["bias_0"])
print(f"layer 1: |z| median {np.median(z):.3g}; {np.sum(z < 17.7)} of {z.size} below 17.7 (where TensorFlow's float64 tanh is not yet exactly 1)")
print(f"{'parameter':10} {'largest |g|':>12} {'largest relative difference':>28}")
for n, g_tf, q in zip(names, grads_tf, params):
    g_tf, g_t = g_tf.numpy(), q.grad.numpy()
    rel = np.max(np.abs(g_tf - g_t) / np.maximum(np.abs(g_t), np.finfo(dtype).tiny))
    print(f"{n:10} {np.abs(g_t).max():12.2e} {rel:28.2e}")
