"""Seconds per certified point of the continuation (``l2path.continuation``), by problem size.

For each --n-sub it
polishes the ascending chain's SGD point of --seed at grid index --index (run
`dvc repro study` first) the way ``continuation.study.run_seed`` does (L-BFGS, then
trust-region Newton-CG, then the certificate and the tangent), with the defaults of
``continuation.branch.Settings``, in float64, one thread on the CPU, and prints one row per n_sub:

    device | n_sub | polish s | certify s | tangent s | total s | ||grad J|| | certified | class

    python benchmarks/continuation_speed.py [--n-sub 500 1000 2000] [--index 3] [--seed 0]

The CPU only: ``objective.CountingOperator`` keeps its products on the CPU (the GPU
path is part of the certified-continuation issue).
"""

from __future__ import annotations

import argparse
import time

import torch

from l2path.config import load_params
from l2path.continuation.branch import Settings, tangent
from l2path.continuation.study import SubsetProblem
from l2path.curvature.certificate import certify
from l2path.curvature.polish import polish
from l2path.data.dataset import load_dataset
from l2path.model.checkpoint import load_model


def synchronise(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def measure(
    params, data, device: torch.device, n_sub: int, checkpoint: str, lam: float, smallest: float
) -> dict:
    model = params.lambda_study.model
    n = len(data.train.x)
    subset = SubsetProblem(
        model.sizes, data.train.x.to(device), data.train.y.to(device), model.cost, n, n_sub or n
    )
    settings = Settings()
    problem = subset.at(lam)
    theta = problem.flat(load_model(checkpoint, torch.float64)[0]).to(device)
    times = {}
    start = time.perf_counter()
    result = polish(problem, theta, settings.polish)
    synchronise(device)
    times["polish"] = time.perf_counter() - start
    start = time.perf_counter()
    certificate = certify(
        problem, subset.mse, result.theta, smallest, 0.01, settings.eig_tol, settings.eig_steps
    )
    synchronise(device)
    times["certify"] = time.perf_counter() - start
    start = time.perf_counter()
    tangent(problem, result.theta, settings)
    synchronise(device)
    times["tangent"] = time.perf_counter() - start
    return {
        **times,
        "total": sum(times.values()),
        "grad_norm": result.grad_norm,
        "certified": certificate.certified,
        "class": certificate.curvature_class,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-sub", type=int, nargs="+", default=[500, 1000, 2000])
    parser.add_argument(
        "--index", type=int, default=3, help="grid index of the ascending point (3: lambda = 2^-5)"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--smallest-change", type=float, default=1.3e-4, help="the smallest SGD drop judged"
    )
    args = parser.parse_args()
    torch.set_num_threads(1)
    params = load_params("params.yaml")
    grid = params.lambda_study.grid
    lam = grid.lambda_start * grid.factor**args.index
    checkpoint = f"{params.paths.study_dir}/ascending/seed{args.seed}/lambda{args.index:02d}.pt"
    data = load_dataset(
        params.paths.prepared, torch.float64, n_train=params.lambda_study.model.n_train
    )
    devices = [torch.device("cpu")]
    print(
        f"ascending seed {args.seed}, lambda = {lam:g}; torch {torch.__version__}; "
        + "CPU, one thread"
    )
    print(
        "| device | n_sub | polish s | certify s | tangent s | total s | ||grad J|| | certified "
        "| class |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---|---|")
    for device in devices:
        for n_sub in args.n_sub:
            if device.type == "cpu" and n_sub == 0:
                continue
            row = measure(params, data, device, n_sub, checkpoint, lam, args.smallest_change)
            print(
                f"| {device.type} | {n_sub or len(data.train.x)} | {row['polish']:.1f} "
                f"| {row['certify']:.1f} | {row['tangent']:.1f} | {row['total']:.1f} "
                f"| {row['grad_norm']:.1e} | {row['certified']} | {row['class']} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
