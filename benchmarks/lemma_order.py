"""The lemma ratio's order of convergence in the arclength step, on a step of the network.

On a step the chain stage judges "one branch of minima", ``lemma_ratio`` is the trapezoid
integral of the predicted dL/dlambda along the followed branch over the realised change of L:
1 up to the trapezoid's O(h^2) error in the arclength step h. This follows that step again
with a uniform step h (first step = largest step = h), halving h, and prints
|lemma_ratio - 1| and the observed order log2(error(h) / error(h/2)):

    h | arclength points | lemma ratio | |ratio - 1| | order

    python benchmarks/lemma_order.py [--seed 0] [--step 5] [--h 1.0] [--halvings 4]
        [--threads 2]

--step k is the chain's step from its k-th to its (k+1)-th lambda (the ascending chain of
--seed from the study's SGD point, run `dvc repro study` first), on the stage's subset.
"""

from __future__ import annotations

import argparse
import math
from dataclasses import replace

import torch

from l2path.chain.points import ChainSettings, chain_steps, describe, run_chain
from l2path.chain.records import ChainDirection, StepVerdictKind
from l2path.chain.span import reduced_subset, span_basis
from l2path.chain.stage import verdict_settings
from l2path.chain.subset import SubsetProblem, polish_from
from l2path.chain.verdicts import judge_step
from l2path.config import load_params
from l2path.data.dataset import load_dataset
from l2path.model.checkpoint import load_model
from machine import describe  # benchmarks/machine.py: the machine, in one line


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--step", type=int, default=5, help="the chain's k-th step")
    parser.add_argument("--h", type=float, default=1.0, help="the largest arclength step")
    parser.add_argument("--halvings", type=int, default=4)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    print(describe(), flush=True)
    torch.set_num_threads(args.threads)
    params = load_params("params.yaml")
    study, model = params.lambda_study, params.lambda_study.model
    data = load_dataset(params.paths.prepared, torch.float64, n_train=model.n_train)
    full = SubsetProblem(
        model.sizes, data.train.x, data.train.y, model.cost, len(data.train.x), params.chain.n_sub
    )
    basis = span_basis(full)
    subset = reduced_subset(full, basis)
    checkpoint = f"{params.paths.study_dir}/ascending/seed{args.seed}/lambda00.pt"
    start = basis.reduce(full.mse.flat(load_model(checkpoint, torch.float64)[0]))
    grid = study.grid
    lams = [grid.lambda_start * grid.factor**k for k in range(args.step + 2)]
    polish = polish_from(params.chain)
    settings = ChainSettings(polish, study.collapse_ratio)
    links = run_chain(subset, start, lams, ChainDirection.UP, settings, lambda message: None)
    k = args.step
    if len(links) < k + 2:
        raise SystemExit(f"the chain ended before its step {k}")
    points = [
        describe(subset, args.seed, ChainDirection.UP, i, link, None, 1e-4, settings)
        for i, link in enumerate(links)
    ]
    step = chain_steps(points, [link.theta for link in links])[k]
    base = verdict_settings(params.chain, polish)
    print(f"seed {args.seed}, step {k}: lambda {lams[k]:g} to {lams[k + 1]:g}")
    print("| h | arclength points | lemma ratio | abs(ratio - 1) | order |")
    print("|---:|---:|---:|---:|---:|")
    previous = None
    for halving in range(args.halvings + 1):
        h = args.h / 2**halving
        arclength = replace(base.arclength, step=h, max_step=h)
        verdict = judge_step(
            subset,
            step,
            points[k],
            links[k].theta,
            points[k + 1],
            links[k + 1].theta,
            replace(base, arclength=arclength),
        )
        if verdict.verdict is not StepVerdictKind.ONE_BRANCH:
            raise SystemExit(f"step {k} is {verdict.verdict.value}, not one branch of minima")
        error = abs(verdict.lemma_ratio - 1)
        order = math.log2(previous / error) if previous else math.nan
        print(
            f"| {h:g} | {verdict.arc_points} | {verdict.lemma_ratio:.10f} | {error:.3g} "
            f"| {order:.2f} |",
            flush=True,
        )
        previous = error


if __name__ == "__main__":
    main()
