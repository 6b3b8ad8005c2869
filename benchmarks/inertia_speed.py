"""What the inertia certificate (``l2path.curvature.inertia``) costs on the continuation's problem.

For each --n-sub it polishes the ascending chain's SGD point of --seed at grid index --index (run
`dvc repro study` first) on the first n_sub images, as the continuation does, then times the dense
Hessian from p products, its Cholesky certificate (LDL^T inertia where Cholesky breaks down) and,
for comparison, the bottom Ritz pair by Lanczos, and prints one row per n_sub:

    n_sub | p | polish s | dense H s | certificate s | Lanczos s | lower bound | Lanczos bottom |
    proves minimum | negatives | memory GB

    python benchmarks/inertia_speed.py [--n-sub 1000] [--index 4] [--seed 0] [--threads 2]

The products run one at a time through ``objective.CountingOperator`` (one backward pass each);
the matrix takes p^2 * 8 bytes twice (the Hessian and the factor), 4.6 GB each at p = 23,860.
"""

from __future__ import annotations

import argparse
import time

import torch

from l2path.config import load_params
from l2path.continuation.branch import Settings
from l2path.continuation.study import SubsetProblem
from l2path.curvature.inertia import certify_positive_definite, dense_hessian
from l2path.curvature.polish import polish
from l2path.curvature.spectrum import lanczos_extreme
from l2path.data.dataset import load_dataset
from l2path.model.checkpoint import load_model


def measure(params, data, n_sub: int, checkpoint: str, lam: float) -> dict:
    model = params.lambda_study.model
    subset = SubsetProblem(
        model.sizes, data.train.x, data.train.y, model.cost, len(data.train.x), n_sub
    )
    settings = Settings()
    problem = subset.at(lam)
    theta = problem.flat(load_model(checkpoint, torch.float64)[0])
    clock = time.perf_counter()
    polished = polish(problem, theta, settings.polish).theta
    times = {"polish": time.perf_counter() - clock}
    clock = time.perf_counter()
    hessian = dense_hessian(problem.operator(polished))
    times["dense"] = time.perf_counter() - clock
    clock = time.perf_counter()
    certificate = certify_positive_definite(hessian)
    times["certificate"] = time.perf_counter() - clock
    clock = time.perf_counter()
    pair = lanczos_extreme(
        problem.operator(polished), 1, "SA", settings.eig_tol, settings.eig_steps
    )
    times["lanczos"] = time.perf_counter() - clock
    return {
        **times,
        "p": problem.size,
        "lower_bound": certificate.lower_bound,
        "bottom": float(pair.values[0]),
        "proves": certificate.proves_minimum,
        "negatives": certificate.inertia.negative if certificate.inertia else 0,
        "memory": 2 * problem.size**2 * 8 / 1e9,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-sub", type=int, nargs="+", default=[1000])
    parser.add_argument("--index", type=int, default=4, help="grid index (4: lambda = 2^-4)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    params = load_params("params.yaml")
    grid = params.lambda_study.grid
    lam = grid.lambda_start * grid.factor**args.index
    checkpoint = f"{params.paths.study_dir}/ascending/seed{args.seed}/lambda{args.index:02d}.pt"
    data = load_dataset(params.paths.prepared, torch.float64)
    print(f"ascending seed {args.seed}, lambda = {lam:g}; {args.threads} threads")
    print(
        "| n_sub | p | polish s | dense H s | certificate s | Lanczos s | lower bound "
        "| Lanczos bottom | proves minimum | negatives | memory GB |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|")
    for n_sub in args.n_sub:
        row = measure(params, data, n_sub, checkpoint, lam)
        print(
            f"| {n_sub} | {row['p']} | {row['polish']:.1f} | {row['dense']:.1f} "
            f"| {row['certificate']:.1f} | {row['lanczos']:.1f} | {row['lower_bound']:.3g} "
            f"| {row['bottom']:.3g} | {row['proves']} | {row['negatives']} "
            f"| {row['memory']:.1f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
