"""What the converged chain (``l2path.chain.points``) costs on its subset problem.

Runs the ascending converged chain of --seed from the study's SGD point at the grid's first
lambda (run `dvc repro study` first) for --points points on the first --n-sub images, describes
each point (certificate, bottom Ritz pair, the lemma's slope) and judges each step by
pseudo-arclength with the stage's settings (``chain.stage.verdict_settings``), printing
one row per point:

    lambda | polish s | iterations | describe s | MSE | ||w|| | bottom | class | verdict | s

    python benchmarks/chain_speed.py [--n-sub N] [--points 4] [--seed 0] [--threads 2]
        [--full] [--no-verdicts] [--step S] [--max-step S]
        [--bottom-every-point]

The chain runs in the span of the subset's images (``chain.span``) unless --full.
"""

from __future__ import annotations

import argparse
import math
import time
from dataclasses import replace

import torch

from l2path.config import load_params
from l2path.chain.points import ChainSettings, chain_steps, describe, run_chain
from l2path.chain.records import ChainDirection
from l2path.chain.stage import verdict_settings
from l2path.chain.verdicts import judge_step
from l2path.chain.span import reduced_subset, span_basis
from l2path.chain.subset import SubsetProblem, polish_from
from l2path.data.dataset import load_dataset
from l2path.model.checkpoint import load_model
from machine import describe  # benchmarks/machine.py: the machine, in one line


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-sub", type=int, help="images (chain.n_sub)")
    parser.add_argument("--points", type=int, default=4, help="0: the whole grid (to collapse)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--full", action="store_true", help="no span reduction")
    parser.add_argument("--step", type=float, help="first arclength step (chain.arc_step)")
    parser.add_argument("--max-step", type=float, help="largest one (chain.arc_max_step)")
    parser.add_argument(
        "--bottom-every-point", action="store_true", help="mu at every arclength point"
    )
    parser.add_argument("--no-verdicts", action="store_true", help="polish and describe only")
    args = parser.parse_args()
    print(describe(), flush=True)
    torch.set_num_threads(args.threads)
    params = load_params("params.yaml")
    study, model = params.lambda_study, params.lambda_study.model
    data = load_dataset(params.paths.prepared, torch.float64, n_train=model.n_train)
    n_sub = args.n_sub or params.chain.n_sub
    subset = SubsetProblem(
        model.sizes, data.train.x, data.train.y, model.cost, len(data.train.x), n_sub
    )
    grid = study.grid
    count = args.points or round(math.log(grid.lambda_max / grid.lambda_start, grid.factor)) + 1
    lams = [grid.lambda_start * grid.factor**k for k in range(count)]
    checkpoint = f"{params.paths.study_dir}/ascending/seed{args.seed}/lambda00.pt"
    start = subset.mse.flat(load_model(checkpoint, torch.float64)[0])
    if not args.full:
        basis = span_basis(subset)
        subset, start = reduced_subset(subset, basis), basis.reduce(start)
        print(f"span reduction: {subset.mse.size} parameters", flush=True)
    polish = polish_from(params.chain)
    settings = ChainSettings(polish, study.collapse_ratio)
    clock = time.perf_counter()
    links = run_chain(subset, start, lams, ChainDirection.UP, settings, print)
    print(f"chain polished in {time.perf_counter() - clock:.1f} s", flush=True)
    rows = []
    for k, link in enumerate(links):
        clock = time.perf_counter()
        previous = links[k - 1].theta if k else None
        point = describe(subset, args.seed, ChainDirection.UP, k, link, previous, 1e-4, settings)
        rows.append((point, link.seconds, time.perf_counter() - clock))
        print(f"described lambda {link.lam:g} in {rows[-1][2]:.1f} s", flush=True)
    points = [row[0] for row in rows]
    steps = chain_steps(points, [link.theta for link in links])
    verdicts = verdict_settings(params.chain, polish)
    arclength = replace(
        verdicts.arclength,
        bottom_at_every_point=args.bottom_every_point,
        step=args.step or verdicts.arclength.step,
        max_step=args.max_step or verdicts.arclength.max_step,
    )
    verdicts = replace(verdicts, arclength=arclength)
    judged = []
    for k, step in enumerate([] if args.no_verdicts else steps):
        clock = time.perf_counter()
        a, b = links[k], links[k + 1]
        verdict = judge_step(subset, step, points[k], a.theta, points[k + 1], b.theta, verdicts)
        judged.append((verdict, time.perf_counter() - clock))
        print(f"judged step {k} in {judged[-1][1]:.1f} s: {verdict.verdict.value}", flush=True)
    print(f"ascending seed {args.seed}, n_sub {n_sub}; {args.threads} threads")
    print(
        "| lambda | polish s | iterations | describe s | MSE | ||w|| | bottom | class "
        "| step verdict | lemma ratio | verdict s |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---|---|---:|---:|")
    for k, (point, polish_s, describe_s) in enumerate(rows):
        verdict, seconds = judged[k] if k < len(judged) else (None, math.nan)
        print(
            f"| {point.lam:g} | {polish_s:.1f} | {point.lbfgs_iterations}+"
            f"{point.newton_iterations} | {describe_s:.1f} | {point.mse:.6g} "
            f"| {point.weight_l2:.4g} | {point.bottom:.3g} | {point.curvature_class} "
            f"({point.class_proof.value}) | {verdict.verdict.value if verdict else ''} "
            f"| {verdict.lemma_ratio if verdict else ''} | {seconds:.1f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
