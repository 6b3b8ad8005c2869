"""Seconds per SGD epoch of the engine on the prepared MNIST split (run `dvc repro prepare` first).

Nielsen's setting: [784, 30, 10], cross-entropy, m = 10, eta = 0.5, lambda = 5.0, one
thread. Prints a table: models stacked (K), dtype, seconds per epoch for the whole
stack, and seconds per model-epoch. Evaluation is not timed.

    python benchmarks/epoch_time.py [--epochs 3] [--stack 1 8] [--data data/prepared/mnist.npz]
"""
from __future__ import annotations

import argparse
import time

import torch

from l2path.costs import get_cost
from l2path.dataset import load_dataset
from l2path.init import init_stack
from l2path.sgd import SGDSettings, train_sgd


def seconds_per_epoch(data, k: int, dtype: torch.dtype, epochs: int) -> float:
    net = init_stack([784, 30, 10], ["default"] * k, list(range(k)), dtype)
    settings = SGDSettings(eta=[0.5] * k, lam=[5.0] * k, seeds=list(range(k)), batch_size=10, epochs=epochs)
    x, y = data.train.x.to(dtype), data.train.y.to(dtype)
    start = time.perf_counter()
    train_sgd(net, x, y, get_cost("cross_entropy"), settings)
    return (time.perf_counter() - start) / epochs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="data/prepared/mnist.npz")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--stack", type=int, nargs="+", default=[1, 8])
    args = parser.parse_args()
    torch.set_num_threads(1)
    data = load_dataset(args.data)
    print(f"n_train={len(data.train)}  epochs={args.epochs}  threads=1  torch {torch.__version__}")
    print(f"{'K':>3} {'dtype':>8} {'s/epoch (stack)':>16} {'s/model-epoch':>14}")
    for dtype in (torch.float32, torch.float64):
        for k in args.stack:
            seconds = seconds_per_epoch(data, k, dtype, args.epochs)
            print(f"{k:>3} {str(dtype).removeprefix('torch.'):>8} {seconds:>16.3f} {seconds / k:>14.3f}")


if __name__ == "__main__":
    main()
