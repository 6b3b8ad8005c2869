"""Seconds per model-epoch of Nielsen's SGD, implemented three ways, side by side in one process.

Setting: [784, 30, 10] sigmoid network, cross-entropy, m = 10, eta = 0.1, lambda = 5, on the
prepared MNIST training split (run `dvc repro prepare` first), one thread:

- per-example numpy: the test suite's independent oracle (tests/nielsen_reference.py),
  float64, one sample at a time as network2.py does it;
- PyTorch autograd: nn.Linear + sigmoid, loss.backward() per mini-batch, torch.optim.SGD
  with weight_decay = lambda/n on the weights only (the same update), float32;
- our engine (l2path.train.sgd.train_sgd), float32: one model, and K models stacked with one
  shared mini-batch order (as the lambda study trains them); the median of three epochs
  after a warm-up epoch.

The floor is FLOP per model-epoch (forward and backward products, about 4.8 GFLOP on 50,000
images) divided by the sgemm rate measured in the same run. Slow baselines run on a subset
(--baseline-n) and are scaled to the full split, stated in the table.

    python benchmarks/sgd_speed.py [--n-train 50000] [--baseline-n 10000] [--stack 8 16 32]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

from l2path.model.costs import get_cost
from l2path.data.dataset import load_dataset
from l2path.model.init import init_model, init_stack
from l2path.train.sgd import SGDSettings, train_sgd

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
import nielsen_reference  # noqa: E402  (the independent per-example oracle)
from machine import describe, sgemm_gflops  # noqa: E402  (benchmarks/machine.py, beside this)

SIZES, ETA, LAM, M = [784, 30, 10], 0.1, 5.0, 10


def flop_per_model_epoch(n: int, sizes: list[int] = SIZES) -> float:
    """2 FLOP per multiply-add: forward W a, weight gradient delta a^T, and delta back through
    every layer but the first (per sample)."""
    products = sum(i * o for i, o in zip(sizes[:-1], sizes[1:]))
    back = sum(i * o for i, o in zip(sizes[1:-1], sizes[2:]))
    return 2.0 * n * (2 * products + back)


def per_example_numpy(x: np.ndarray, y: np.ndarray) -> float:
    """Seconds for one epoch over x."""
    weights, biases = init_model(SIZES, "default", 0)
    n = len(x)
    start = time.perf_counter()
    for begin in range(0, n, M):
        weights, biases = nielsen_reference.update_mini_batch(
            weights,
            biases,
            x[begin : begin + M],
            y[begin : begin + M],
            ETA,
            LAM,
            n,
            "cross_entropy",
        )
    return time.perf_counter() - start


def autograd_loop(x: torch.Tensor, y: torch.Tensor) -> float:
    torch.manual_seed(0)
    layers = [torch.nn.Linear(i, o) for i, o in zip(SIZES[:-1], SIZES[1:])]
    n = len(x)
    optimiser = torch.optim.SGD(
        [
            {"params": [l.weight for l in layers], "weight_decay": LAM / n},
            {"params": [l.bias for l in layers], "weight_decay": 0.0},
        ],
        lr=ETA,
    )
    loss_fn = torch.nn.BCEWithLogitsLoss(
        reduction="sum"
    )  # Nielsen's cross-entropy, summed over outputs
    order = torch.randperm(n)
    start = time.perf_counter()
    for begin in range(0, n, M):
        batch = order[begin : begin + M]
        a = x[batch]
        for layer in layers[:-1]:
            a = torch.sigmoid(layer(a))
        loss = loss_fn(layers[-1](a), y[batch]) / len(batch)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    return time.perf_counter() - start


def engine(x: torch.Tensor, y: torch.Tensor, k: int, repeats: int = 3) -> float:
    """Seconds for one epoch of a stack of k models sharing one mini-batch order: the
    median of ``repeats`` epochs after one warm-up epoch (this machine's timings vary by
    about 10% from run to run)."""
    net = init_stack(SIZES, ["default"] * k, list(range(k)), torch.float32)
    settings = SGDSettings(eta=[ETA] * k, lam=[LAM] * k, seeds=[0] * k, batch_size=M, epochs=1)
    seconds = []
    for _ in range(repeats + 1):
        start = time.perf_counter()
        train_sgd(net, x, y, get_cost("cross_entropy"), settings)
        seconds.append(time.perf_counter() - start)
    return float(np.median(seconds[1:]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="data/prepared/mnist.npz")
    parser.add_argument(
        "--n-train", type=int, default=50_000, help="images per epoch for our engine"
    )
    parser.add_argument(
        "--baseline-n", type=int, default=10_000, help="images timed for the two baselines"
    )
    parser.add_argument("--stack", type=int, nargs="+", default=[8, 16, 32])
    args = parser.parse_args()
    torch.set_num_threads(1)
    data = load_dataset(args.data, torch.float32, n_train=args.n_train)
    x, y = data.train.x, data.train.y
    n, nb = len(x), min(args.baseline_n, len(x))
    scale = n / nb
    gflops = sgemm_gflops()
    floor = flop_per_model_epoch(n) / (gflops * 1e9)
    rows = [
        (
            "per-example numpy (float64)",
            1,
            per_example_numpy(x[:nb].double().numpy(), y[:nb].double().numpy()) * scale,
            nb,
        ),
        ("PyTorch autograd loop", 1, autograd_loop(x[:nb], y[:nb]) * scale, nb),
        ("our engine", 1, engine(x, y, 1), n),
    ]
    rows += [("our engine, stacked", k, engine(x, y, k) / k, n) for k in args.stack]
    baseline = rows[0][2]
    print(describe(gflops))
    print(
        f"torch {torch.__version__}, 1 thread; model-epoch = {n} images, "
        f"{flop_per_model_epoch(n) / 1e9:.2f} GFLOP; sgemm {gflops:.1f} GFLOP/s "
        f"-> floor {floor:.3f} s"
    )
    print(
        f"| {'implementation':<28} | {'K':>3} | {'timed on':>8} | {'s / model-epoch':>15} | "
        f"{'vs per-example':>14} | {'x floor':>7} |"
    )
    print(f"|{'-' * 30}|{'-' * 5}|{'-' * 10}|{'-' * 17}|{'-' * 16}|{'-' * 9}|")
    for name, k, seconds, timed in rows:
        print(
            f"| {name:<28} | {k:>3} | {timed:>8} | {seconds:>15.3f} "
            f"| {baseline / seconds:>13.1f}x | {seconds / floor:>7.2f} |"
        )


if __name__ == "__main__":
    main()
