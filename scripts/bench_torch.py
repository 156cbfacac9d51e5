#!/usr/bin/env python3
"""The baseline job in eager PyTorch, written as a careful PyTorch user would:
the same data recipe, model (3 tanh Linear layers of 3, one logit), Keras
initialisation (glorot-uniform weights, zero biases), BCE from the logits,
Adam(lr=0.03, eps=1e-7), batch 30 with a fresh shuffle every epoch, training
metrics accumulated on the tensor side and read once per epoch, validation once
per epoch under no_grad. One libtorch thread, as binclass uses (2 measured no
faster for ops this small). Prints the fit time and final metrics.
"""
import argparse
import sys
import time

import torch
from torch import nn


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--epochs", type=int, default=100)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)

    x = torch.rand(10000, 2, dtype=torch.float64)
    keep = (torch.rand(10000, dtype=torch.float64) > 0.0).double() * 2 - 1
    y = ((torch.sign(x[:, 0] - x[:, 1]) * keep + 1) / 2).unsqueeze(1)
    x, y = x.float(), y.float()
    tx, ty, vx, vy = x[:8000], y[:8000], x[8000:], y[8000:]

    layers = []
    width = int(2 * 1.2 + 1)
    fan_in = 2
    for _ in range(3):
        layers += [nn.Linear(fan_in, width), nn.Tanh()]
        fan_in = width
    layers.append(nn.Linear(fan_in, 1))
    model = nn.Sequential(*layers)
    for m in model:
        if isinstance(m, nn.Linear):
            nn.init.xavier_uniform_(m.weight)
            nn.init.zeros_(m.bias)
    opt = torch.optim.Adam(model.parameters(), lr=0.03, eps=1e-7)
    loss_fn = nn.BCEWithLogitsLoss()

    start = time.perf_counter()
    for epoch in range(a.epochs):
        order = torch.randperm(8000)
        ex, ey = tx[order], ty[order]
        loss_sum = torch.zeros(())
        correct = torch.zeros(())
        for i in range(0, 8000, 30):
            xb, yb = ex[i : i + 30], ey[i : i + 30]
            logits = model(xb)
            loss = loss_fn(logits, yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
            with torch.no_grad():
                loss_sum += loss * len(xb)
                correct += ((logits > 0).float() == yb).sum()
        with torch.no_grad():
            vl = model(vx)
            val_loss = loss_fn(vl, vy).item()
            val_acc = ((vl > 0).float() == vy).float().mean().item()
        train_loss, train_acc = loss_sum.item() / 8000, correct.item() / 8000
    fit = time.perf_counter() - start
    print(
        f"fit_seconds={fit:.3f} loss={train_loss:.4f} binary_accuracy={train_acc:.4f} "
        f"val_loss={val_loss:.4f} val_binary_accuracy={val_acc:.4f}",
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()
