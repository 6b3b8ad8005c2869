"""Speed of our Hessian machinery against PyHessian on the [784, 30, 10] network, float64.

At a trained point of the lambda study (run `dvc repro study` first) on the first
--n-train training images, one process, --threads threads:

1. seconds per Hessian-vector product (ours: one backward pass through the gradient's
   graph, built once per point) and per gradient, on the same data;
2. the top and bottom k eigenvalues as the hessian stage gets them (plain Lanczos stopping
   at residual <= 1e-6 * |lambda_max|, at most --lanczos-steps products), and scipy's
   eigsh for the top k, with Ritz residuals;
3. the top eigenvalue at equal accuracy: for each target, the cheapest tolerance of ours
   (plain Lanczos) and of PyHessian's power iteration (``hessian(...).eigenvalues(top_n=1,
   tol=...)``) that reaches it; seconds (median of --repeats, operator set-up included) and
   HVPs side by side. Targets: the relative error of the returned eigenvalue against a tight
   eigsh reference (1e-3 .. 1e-6), and the residual ||H v - (v.Hv) v|| of the returned unit
   vector relative to lambda_max (1e-4 .. 1e-6; the stage's criterion is 1e-6). PyHessian
   0.1 normalises by ||v|| + 1e-6, which biases its eigenvalue by about -2e-6 relative
   whatever its tol; the residual of its vector is free of that bias.

PyHessian's criterion cannot see an L2 term, so the comparison is on the data loss
(lambda = 0), the same Hessian for both. PyHessian is installed for this benchmark only:
``pip install --no-deps pyhessian==0.1``.

    python benchmarks/hessian_speed.py \
        [--checkpoint models/study/ascending/seed0/lambda05.pt] [--n-train 10000]
"""

from __future__ import annotations

import argparse
import importlib
import time

import numpy as np
import torch

from l2path.model.checkpoint import load_model
from l2path.model.costs import get_cost
from l2path.data.dataset import load_dataset
from l2path.objective import Objective
from l2path.curvature.spectrum import extreme_eigenpairs, lanczos_extreme
from machine import describe  # benchmarks/machine.py: the machine, in one line

TOL = 1e-6


def seconds(fn, repeats: int = 3) -> float:
    fn()
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - start) / repeats


def timed(run, repeats: int):
    """(median seconds, first result) of ``run()`` over ``repeats`` calls."""
    times, first = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = run()
        times.append(time.perf_counter() - start)
        first = first or result
    return float(np.median(times)), first


def ours_top(objective: Objective, theta: torch.Tensor, tol: float):
    """(top eigenvalue, its unit vector, HVPs) by the stage's plain Lanczos at residual
    <= tol * |theta_max|."""
    op = objective.operator(theta)
    pairs = lanczos_extreme(op, 1, "LA", tol, max_steps=500)
    return float(pairs.values[-1]), pairs.vectors[:, -1], op.products


def pyhessian_model(net) -> torch.nn.Module:
    layers = []
    for w, b in zip(net.weights, net.biases):
        linear = torch.nn.Linear(w.shape[2], w.shape[1]).double()
        linear.weight.data.copy_(w[0])
        linear.bias.data.copy_(b[0])
        layers += [linear, torch.nn.Sigmoid()]
    return torch.nn.Sequential(*layers)


def pyhessian_top(model, x: torch.Tensor, y: torch.Tensor, tol: float):
    """(top eigenvalue, its vector in our flat layout, HVPs) by PyHessian 0.1's power
    iteration with its relative-change ``tol``."""
    # the package's __init__ shadows its module `hessian` with the class of that name
    pyhessian_module = importlib.import_module("pyhessian.hessian")

    def criterion(output, target):  # the quadratic cost, mean over samples: our data loss
        return 0.5 * (output - target).square().sum(1).mean()

    product = pyhessian_module.hessian_vector_product
    counted = {"hvps": 0}

    def counting(*args, **kwargs):  # count PyHessian's products without changing them
        counted["hvps"] += 1
        return product(*args, **kwargs)

    pyhessian_module.hessian_vector_product = counting
    try:
        torch.manual_seed(0)
        model.zero_grad(set_to_none=True)
        engine = pyhessian_module.hessian(model, criterion, data=(x, y), cuda=False)
        values, vectors = engine.eigenvalues(maxIter=10_000, tol=tol, top_n=1)
    finally:
        pyhessian_module.hessian_vector_product = product
    parts = [
        part.detach() for part in vectors[0]
    ]  # PyHessian: W1, b1, W2, b2; ours: weights, then biases
    flat = torch.cat([part.reshape(-1) for part in parts[0::2] + parts[1::2]]).numpy()
    return float(values[0]), flat, counted["hvps"]


def sweep(run, tols, repeats: int, operator) -> list[dict]:
    """Per tolerance (loosest first): value, seconds, HVPs, and the residual of the returned
    vector v (unit) with its Rayleigh quotient, ||H v - (v.Hv) v||, computed afterwards."""
    rows = []
    for tol in tols:
        secs, (value, vector, hvps) = timed(lambda: run(tol), repeats)
        vector = vector / np.linalg.norm(vector)
        hv = operator.matvec(vector)
        rows.append(
            {
                "tol": tol,
                "value": value,
                "seconds": secs,
                "hvps": hvps,
                "residual": float(np.linalg.norm(hv - (vector @ hv) * vector)),
            }
        )
    return rows


def cheapest(rows: list[dict], good) -> dict | None:
    """The fastest row of a sweep that satisfies ``good(row)``."""
    passing = [row for row in rows if good(row)]
    return min(passing, key=lambda row: row["seconds"]) if passing else None


def equal_accuracy_rows(ours: list[dict], theirs: list[dict], reference: float) -> list[str]:
    """Markdown rows: for each accuracy, each side's cheapest setting and the ratio."""
    criteria = [
        (
            f"eigenvalue error <= {e:g}",
            lambda row, e=e: abs(row["value"] - reference) <= e * abs(reference),
        )
        for e in (1e-3, 1e-4, 1e-5, 1e-6)
    ]
    criteria += [
        (
            f"vector residual <= {e:g} lambda_max",
            lambda row, e=e: row["residual"] <= e * abs(reference),
        )
        for e in (1e-4, 1e-5, 1e-6)
    ]
    lines = []
    for name, good in criteria:
        a, b = cheapest(ours, good), cheapest(theirs, good)
        cell = lambda r: (
            f"{r['hvps']} HVPs, {r['seconds']:.2f} s (tol {r['tol']:g})"
            if r
            else "not reached at any tol"
        )
        ratio = (
            f"{b['seconds'] / a['seconds']:.1f}x time, {b['hvps'] / a['hvps']:.1f}x HVPs"
            if a and b
            else "-"
        )
        lines.append(f"| {name} | {cell(a)} | {cell(b)} | {ratio} |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="data/prepared/mnist.npz")
    parser.add_argument("--checkpoint", default="models/study/ascending/seed0/lambda05.pt")
    parser.add_argument("--n-train", type=int, default=10_000)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--k", type=int, default=5)
    parser.add_argument("--lanczos-steps", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print(describe(), flush=True)
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

    def stage_end(which: str, scale: float | None):
        op = objective.operator(theta)
        start = time.perf_counter()
        pairs = lanczos_extreme(op, args.k, which, TOL, args.lanczos_steps, scale)
        return pairs, time.perf_counter() - start, op.products

    top, top_s, top_n = stage_end("LA", None)
    bottom, bottom_s, bottom_n = stage_end("SA", abs(top.values[-1]))
    operator = objective.operator(theta)
    start = time.perf_counter()
    arpack = extreme_eigenpairs(operator, args.k, "LA", TOL)
    arpack_s, arpack_n = time.perf_counter() - start, operator.products
    reference = extreme_eigenpairs(objective.operator(theta), 1, "LA", 1e-14).values[-1]

    check = objective.operator(theta)  # residuals are measured outside the timings
    ours = sweep(
        lambda tol: ours_top(objective, theta, tol),
        [1e-1, 1e-2, 1e-3, 1e-4, 1e-5, 1e-6],
        args.repeats,
        check,
    )
    model = pyhessian_model(net)
    theirs = sweep(
        lambda tol: pyhessian_top(model, x, y, tol),
        [10.0**-e for e in range(2, 13)],
        args.repeats,
        check,
    )

    print(
        f"[784, 30, 10] at {args.checkpoint}, {len(x)} training images, float64, "
        f"{args.threads} thread(s), quadratic data loss (lambda = 0)"
    )
    print(
        f"HVP {hvp_s:.3f} s, gradient {grad_s:.3f} s: HVP = {hvp_s / grad_s:.2f} gradients "
        f"({hvp_s / (2 * grad_s):.2f} x the cost of two)"
    )
    print()
    print("| task | method | HVPs | seconds | result |")
    print("|---|---|---:|---:|---|")
    for name, method, pairs, secs, hvps, extreme in [
        (f"top {args.k}", "ours (plain Lanczos, as the stage)", top, top_s, top_n, -1),
        (f"top {args.k}", "scipy eigsh (ARPACK)", arpack, arpack_s, arpack_n, -1),
        (
            f"bottom {args.k}",
            f"ours (plain Lanczos, <= {args.lanczos_steps} steps)",
            bottom,
            bottom_s,
            bottom_n,
            0,
        ),
    ]:
        print(
            f"| {name} | {method} | {hvps} | {secs:.1f} | {pairs.converged.sum()}/{args.k} "
            f"at residual <= 1e-6 lambda_max; extreme {pairs.values[extreme]:.8g} "
            f"(residual {pairs.residuals[extreme]:.1e}) |"
        )
    print()
    print(
        f"Top eigenvalue at equal accuracy (reference {reference:.12g}, eigsh at tol 1e-14; "
        f"median of {args.repeats} runs, operator set-up included):"
    )
    print()
    print(
        "| accuracy | ours (plain Lanczos) | PyHessian 0.1 (power iteration) | PyHessian / ours |"
    )
    print("|---|---|---|---|")
    print("\n".join(equal_accuracy_rows(ours, theirs, reference)))
    print()
    print(
        "| method | tol | value | eigenvalue error | vector residual / lambda_max | HVPs "
        "| seconds |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    for method, rows in (("ours", ours), ("PyHessian", theirs)):
        for row in rows:
            print(
                f"| {method} | {row['tol']:g} | {row['value']:.12g} | "
                f"{abs(row['value'] - reference) / abs(reference):.1e} "
                f"| {row['residual'] / abs(reference):.1e} | {row['hvps']} | {row['seconds']:.2f} |"
            )


if __name__ == "__main__":
    main()
