"""Speed of our Hessian machinery against PyHessian on the [784, 30, 10] network, float64.

At a trained point of the lambda study (run `dvc repro study` first) on the first
--n-train training images, one process, --threads threads:

1. seconds per Hessian-vector product (ours: one backward pass through the gradient's
   graph, built once per point) and per gradient, on the same data;
2. the top k eigenvalues (scipy eigsh) and the bottom k (plain Lanczos, --bottom-steps
   steps), with Ritz residuals and how many reached residual <= 1e-6 * |lambda_max|;
3. the top eigenvalue: ours (eigsh, k = 1, residual <= 1e-6 * |lambda_max|) and PyHessian's
   power iteration (``hessian(...).eigenvalues(top_n=1)``) at the loosest of its ``tol``
   settings that matches our value to 1e-6 relative: equal accuracy, seconds and HVPs side
   by side.

PyHessian's criterion cannot see an L2 term, so the comparison is on the data loss
(lambda = 0), the same Hessian for both. PyHessian is installed for this benchmark only:
``pip install --no-deps pyhessian==0.1``.

    python benchmarks/hessian_speed.py [--checkpoint models/study/ascending/seed0/lambda05.pt] [--n-train 10000]
"""
from __future__ import annotations

import argparse
import importlib
import time

import numpy as np
import torch

from l2path.checkpoint import load_model
from l2path.costs import get_cost
from l2path.dataset import load_dataset
from l2path.hessian import Objective
from l2path.spectrum import extreme_eigenpairs, lanczos_smallest

TOL = 1e-6


def seconds(fn, repeats: int = 3) -> float:
    fn()
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - start) / repeats


def ours_top(objective: Objective, theta: torch.Tensor, k: int):
    """The k largest eigenpairs by eigsh: pairs, seconds (graph building included), HVPs."""
    start = time.perf_counter()
    op = objective.operator(theta)
    pairs = extreme_eigenpairs(op, k, "LA", TOL)
    return pairs, time.perf_counter() - start, op.products


def pyhessian_top(net, x: torch.Tensor, y: torch.Tensor, reference: float) -> tuple[float, float, int, float]:
    """(eigenvalue, seconds, HVPs, tol) of PyHessian's power iteration at the loosest tol
    that agrees with ``reference`` to 1e-6 relative (or its tightest tol if none does)."""
    # the package's __init__ shadows its module `hessian` with the class of that name
    pyhessian_module = importlib.import_module("pyhessian.hessian")

    layers = []
    for w, b in zip(net.weights, net.biases):
        linear = torch.nn.Linear(w.shape[2], w.shape[1]).double()
        linear.weight.data.copy_(w[0])
        linear.bias.data.copy_(b[0])
        layers += [linear, torch.nn.Sigmoid()]
    model = torch.nn.Sequential(*layers)

    def criterion(output, target):  # the quadratic cost, mean over samples: our data loss
        return 0.5 * (output - target).square().sum(1).mean()

    product = pyhessian_module.hessian_vector_product
    counted = {"hvps": 0}

    def counting(*args, **kwargs):  # count PyHessian's products without changing them
        counted["hvps"] += 1
        return product(*args, **kwargs)

    result = None
    pyhessian_module.hessian_vector_product = counting
    try:
        for tol in (1e-4, 1e-6, 1e-8, 1e-10, 1e-12):
            torch.manual_seed(0)
            counted["hvps"] = 0
            start = time.perf_counter()
            engine = pyhessian_module.hessian(model, criterion, data=(x, y), cuda=False)
            values, _ = engine.eigenvalues(maxIter=10_000, tol=tol, top_n=1)
            result = (values[0], time.perf_counter() - start, counted["hvps"], tol)
            if abs(values[0] - reference) <= 1e-6 * abs(reference):
                break
    finally:
        pyhessian_module.hessian_vector_product = product
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="data/prepared/mnist.npz")
    parser.add_argument("--checkpoint", default="models/study/ascending/seed0/lambda05.pt")
    parser.add_argument("--n-train", type=int, default=10_000)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--k", type=int, default=5)
    parser.add_argument("--bottom-steps", type=int, default=300)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.set_default_dtype(torch.float64)  # PyHessian draws its vectors in the default dtype
    data = load_dataset(args.data, torch.float64, n_train=args.n_train)
    net, _ = load_model(args.checkpoint, torch.float64)
    x, y = data.train.x, data.train.y
    objective = Objective(net.sizes, x, y, get_cost("quadratic"), 0.0)
    theta = objective.flat(net)
    vector = np.random.default_rng(0).standard_normal(objective.size)
    operator = objective.operator(theta)
    hvp_s = seconds(lambda: operator.matvec(vector))
    grad_s = seconds(lambda: objective.gradient(theta))
    top, top_s, top_n = ours_top(objective, theta, args.k)
    operator = objective.operator(theta)
    start = time.perf_counter()
    bottom = lanczos_smallest(operator, args.k, args.bottom_steps, TOL, abs(top.values[-1]))
    bottom_s, bottom_n = time.perf_counter() - start, operator.products
    one, one_s, one_n = ours_top(objective, theta, 1)
    py_value, py_s, py_n, py_tol = pyhessian_top(net, x, y, float(one.values[-1]))
    print(f"[784, 30, 10] at {args.checkpoint}, {len(x)} training images, float64, {args.threads} thread(s), "
          f"quadratic data loss (lambda = 0)")
    print(f"HVP {hvp_s:.3f} s, gradient {grad_s:.3f} s: HVP = {hvp_s / grad_s:.2f} gradients "
          f"({hvp_s / (2 * grad_s):.2f} x the cost of two)")
    print("| task | method | HVPs | seconds | result |")
    print("|---|---|---:|---:|---|")
    print(f"| top {args.k} | ours (eigsh) | {top_n} | {top_s:.1f} | {top.converged.sum()}/{args.k} at residual "
          f"<= 1e-6 |lambda_max|; lambda_max = {top.values[-1]:.8g} |")
    print(f"| bottom {args.k} | ours (plain Lanczos, {args.bottom_steps} steps) | {bottom_n} | {bottom_s:.1f} | "
          f"{bottom.converged.sum()}/{args.k} converged; lambda_min = {bottom.values[0]:.6g} "
          f"(residual {bottom.residuals[0]:.1e}) |")
    print(f"| top 1 | ours (eigsh) | {one_n} | {one_s:.2f} | {one.values[-1]:.10g} (residual {one.residuals[-1]:.1e}) |")
    print(f"| top 1 | PyHessian 0.1 power iteration, tol {py_tol:g} | {py_n} | {py_s:.2f} | {py_value:.10g} |")
    print(f"PyHessian / ours for the top eigenvalue at equal accuracy: {py_s / one_s:.1f}x time, {py_n / one_n:.1f}x HVPs")


if __name__ == "__main__":
    main()
