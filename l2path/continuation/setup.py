"""The continuation stage from its params: where it runs, on how many images, from which SGD
points, and which steps it judges (``plan``); then the run itself (``execute``).

- **device** (``runtime.device``): auto = CUDA when present, else the CPU;
- **n_sub**, the images of the subset problem: ``continuation.n_sub`` on the CPU; on CUDA
  ``continuation.n_sub_gpu``, or every training image when that is null;
- **chains**: the warm schedules that run up the grid (``l2path.schedules``): a branch is
  followed up from each non-monotone step's start;
- **points**: those chains' SGD points up to ``lambda_end`` (null: the largest lambda_to of
  their non-monotone steps), diverged points never;
- **steps**: their non-monotone in-sample-MSE steps, the smallest change setting the
  certificate's scale.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import pandas as pd
import torch

from ..config import Continuation as ContinuationParams
from ..config import Params
from ..data.dataset import load_dataset
from ..model.checkpoint import load_model
from ..monotonicity import nonmonotone_steps
from ..objective import Objective
from ..study.records import PointRecord
from ..study.results import read_results
from ..schedules import upward_chains
from .study import (
    Continuation,
    ContinuationResults,
    SGDPoint,
    Step,
    SubsetProblem,
    run,
    settings_from,
)


def pick_device(choice: str) -> torch.device:
    """``runtime.device``: auto = CUDA when present, else the CPU; cuda without a GPU fails here."""
    if choice == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(
            "runtime.device is 'cuda' but torch sees no CUDA device; use 'auto' or 'cpu'"
        )
    return torch.device("cuda" if choice != "cpu" and torch.cuda.is_available() else "cpu")


def subset_size(config: ContinuationParams, device: torch.device, n_train: int) -> int:
    """The images of the subset problem (see the module)."""
    if device.type != "cuda":
        return config.n_sub
    return n_train if config.n_sub_gpu is None else config.n_sub_gpu


def chain_points(
    study: list[PointRecord], objective: Objective, seed: int, lam_end: float, device: torch.device
) -> list[SGDPoint]:
    """The upward chains' points of ``seed`` up to lam_end (diverged points never), float64 on
    ``device``, in the study's order."""
    chains = upward_chains()
    chosen = [
        p
        for p in study
        if p.schedule in chains
        and p.seed == seed
        and p.lam <= lam_end * (1 + 1e-12)
        and not p.diverged
    ]
    return [
        SGDPoint(
            seed, p.lam, objective.flat(load_model(p.final_checkpoint, torch.float64)[0]).to(device)
        )
        for p in chosen
    ]


@dataclass(frozen=True)
class Plan:
    """What the stage runs: the subset problem, the SGD points, the judged steps, the settings."""

    device: torch.device
    n_sub: int
    lam_end: float
    subset: SubsetProblem
    points: list[SGDPoint]
    steps: list[Step]
    smallest_change: float  # the smallest |change| judged: the certificate's scale
    settings: Continuation


def plan(params: Params) -> Plan:
    """The stage's plan from the params and the study's tables (see the module)."""
    paths, config, model = params.paths, params.continuation, params.lambda_study.model
    device = pick_device(params.runtime.device)
    steps = nonmonotone_steps(pd.read_csv(paths.monotonicity_table), upward_chains())
    lam_end = config.lambda_end or (float(steps["lambda_to"].max()) if len(steps) else 0.0)
    data = load_dataset(paths.prepared, torch.float64, n_train=model.n_train)
    n_sub = subset_size(config, device, len(data.train.x))
    subset = SubsetProblem(
        model.sizes,
        data.train.x.to(device),
        data.train.y.to(device),
        model.cost,
        len(data.train.x),
        n_sub,
    )
    judged = [
        Step(int(s.seed), float(s.lambda_from), float(s.lambda_to), float(s.change))
        for s in steps.itertuples()
    ]
    study = read_results(paths.study_results)
    points = [
        p
        for seed in params.lambda_study.chain_seeds
        for p in chain_points(study, subset.mse, seed, lam_end, device)
    ]
    return Plan(
        device,
        n_sub,
        lam_end,
        subset,
        points,
        judged,
        min((abs(s.change) for s in judged), default=1.0),
        replace(settings_from(config), n_sub=n_sub),
    )


def execute(plan: Plan, log=lambda message: None, map_=map) -> ContinuationResults:
    """Run the plan (``study.run``; ``map_`` spreads its independent pieces over workers) and
    return its tables in a fixed order."""
    results = ContinuationResults()
    run(
        plan.subset,
        plan.points,
        plan.steps,
        plan.settings,
        plan.smallest_change,
        results,
        log,
        map_,
    )

    return results.ordered()
