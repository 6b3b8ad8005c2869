"""The converged chains of the continuation stage from its params (``plan``), run (``execute``)
and counted (``summary``).

- **problem**: J on the first ``chain.n_sub`` training images (``chain.n_sub_gpu`` on CUDA), with
  lambda/n as in the study, reduced exactly to the span of its images (``chain.span``);
- **chains**, per seed of ``lambda_study.chain_seeds``: *ascending* from the study's ascending
  SGD point at the grid's first lambda, up the grid until the weights collapse
  (``lambda_study.collapse_ratio``); then *descending* over the same lambdas, from the study's
  descending SGD point at the largest of them where that point has not collapsed, down to the
  grid's first (``_descending_lams``). One seed's two chains run in order, seeds side by side
  (``map_``);
- **each point** described with its dense Hessian (``chain.points.describe``), **each step**
  judged by pseudo-arclength (``chain.verdicts.judge_step``), or, where ``chain.follow`` says
  ``drops`` for the chain's direction, each step whose MSE fell (the others: "not followed");
  the certificate's scale is the smallest |change| of the seed's steps.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import torch

from ..config import Chain, Params
from ..curvature.polish import Polish
from ..data.dataset import load_dataset
from ..model.checkpoint import load_model
from ..objective import Objective
from ..schedules import SCHEDULES
from ..study.records import PointRecord
from ..study.results import read_results
from .arclength import ArclengthSettings
from .points import (
    ChainSettings,
    chain_steps,
    describe,
    run_chain,
    smallest_change,
    weight_norm,
)
from .records import ChainDirection, ChainPoint, ChainStep, ChainSummary, StepVerdictKind
from .span import SpanBasis, reduced_subset, span_basis
from .subset import SubsetProblem, pick_device, polish_from
from .verdicts import VerdictSettings, judge_step


UNFOLLOWED = "no drop, and chain.follow follows only the drops of this direction"


@dataclass(frozen=True)
class ChainPlan:
    device: torch.device
    n_sub: int
    basis: SpanBasis
    subset: SubsetProblem  # the span-reduced problem
    grid: list[float]  # the study's lambdas, ascending
    # the study's SGD points by (seed, direction), reduced; a direction the study did not run
    # is absent
    starts: dict[tuple[int, ChainDirection], dict[float, torch.Tensor]]
    settings: ChainSettings
    verdicts: VerdictSettings
    follow: dict[str, str]  # direction -> "all" | "drops": the steps judged by arclength


def _warm_schedule(direction: int, run: list[str]) -> str | None:
    """The study's warm schedule (among those it ``run``) that goes in ``direction``."""
    names = [n for n in run if SCHEDULES[n].warm and SCHEDULES[n].direction == direction]
    return names[0] if names else None


def _sgd_points(
    study: list[PointRecord], schedule: str, seed: int, basis: SpanBasis, layout: Objective
) -> dict[float, torch.Tensor]:
    """A schedule's SGD points of one seed by lambda, as reduced theta (``layout``: the full
    problem's, for the order of theta)."""
    return {
        p.lam: basis.reduce(layout.flat(load_model(p.final_checkpoint, torch.float64)[0]))
        for p in study
        if p.schedule == schedule and p.seed == seed and not p.diverged
    }


def plan(params: Params) -> ChainPlan:
    """The chains' plan from the params and the study's table (see the module)."""
    config, model, study = params.chain, params.lambda_study.model, params.lambda_study
    device = pick_device(params.runtime.device)
    data = load_dataset(params.paths.prepared, torch.float64, n_train=model.n_train)
    n_sub = config.n_sub_gpu if device.type == "cuda" and config.n_sub_gpu else config.n_sub
    full = SubsetProblem(
        model.sizes,
        data.train.x.to(device),
        data.train.y.to(device),
        model.cost,
        len(data.train.x),
        n_sub,
    )
    basis = span_basis(full)
    records = read_results(params.paths.study_results)
    directions = {
        direction: _warm_schedule(sign, study.schedules)
        for direction, sign in ((ChainDirection.UP, 1), (ChainDirection.DOWN, -1))
    }
    starts = {
        (seed, direction): _sgd_points(records, schedule, seed, basis, full.mse)
        for seed in study.chain_seeds
        for direction, schedule in directions.items()
        if schedule is not None
    }
    grid = [
        study.grid.lambda_start * study.grid.factor**k
        for k in range(
            round(math.log(study.grid.lambda_max / study.grid.lambda_start, study.grid.factor)) + 1
        )
    ]
    polish = polish_from(config)
    return ChainPlan(
        device,
        n_sub,
        basis,
        reduced_subset(full, basis),
        grid,
        starts,
        ChainSettings(polish, study.collapse_ratio, config.fraction),
        verdict_settings(config, polish),
        config.follow.model_dump(),
    )


def verdict_settings(config: Chain, polish: Polish) -> VerdictSettings:
    """How a step is followed by pseudo-arclength, from the ``chain`` params (mu only on a
    fold's approach: the ends' classes are the chain rows' inertia proofs)."""
    return VerdictSettings(
        ArclengthSettings(
            step=config.arc_step,
            max_step=config.arc_max_step,
            tol=polish.tol,
            corrector_iterations=config.corrector_iterations,
            linear_iterations=config.gmres_restarts,
            linear_rtol=config.gmres_rtol,
            fold_tol=config.fold_tol,
            bottom_at_every_point=False,
        ),
        polish,
        config.same_point_tol,
    )


def _start(plan: ChainPlan, seed: int, direction: ChainDirection, lam: float) -> torch.Tensor:
    points = plan.starts[(seed, direction)]
    match = [theta for point_lam, theta in points.items() if math.isclose(point_lam, lam)]
    if not match:
        raise ValueError(
            f"the study has no {direction.value} SGD point of seed {seed} at lambda {lam:g}: "
            "run `dvc repro study` with that schedule and seed"
        )
    return match[0]


def _one_chain(
    plan: ChainPlan, seed: int, direction: ChainDirection, lams: list[float], log
) -> tuple[list[ChainPoint], list[ChainStep], list[float]]:
    links = run_chain(
        plan.subset, _start(plan, seed, direction, lams[0]), lams, direction, plan.settings, log
    )
    thetas = [link.theta for link in links]
    rough = chain_steps_of_mse(plan, links)
    scale = smallest_change(rough)
    points = []
    for k, link in enumerate(links):
        previous = thetas[k - 1] if k else None
        point = describe(plan.subset, seed, direction, k, link, previous, scale, plan.settings)
        points.append(point)
        log(
            f"{direction.value} seed {seed}, lambda {point.lam:g}: {point.curvature_class} "
            f"({point.class_proof.value}), MSE {point.mse:.6g}"
        )
    steps = []
    for k, step in enumerate(chain_steps(points, thetas)):
        later = k + 1
        if plan.follow[direction.value] == "drops" and not step.drop:
            steps.append(replace(step, verdict=StepVerdictKind.NOT_FOLLOWED, reason=UNFOLLOWED))
            continue
        steps.append(
            judge_step(
                plan.subset, step, points[k], thetas[k], points[later], thetas[later], plan.verdicts
            )
        )
        log(
            f"{direction.value} seed {seed}, lambda {step.lambda_low:g} to "
            f"{step.lambda_high:g}: change {step.change:.3g}, {steps[-1].verdict.value}"
        )
    return points, steps, [link.lam for link in links]


def chain_steps_of_mse(plan: ChainPlan, links) -> list[float]:
    """The in-sample MSE changes of a chain's neighbours (the certificate's scale)."""
    mse = [float(plan.subset.mse.value(link.theta)) for link in links]
    return [b - a for a, b in zip(mse, mse[1:])]


def _descending_lams(
    plan: ChainPlan, seed: int, lams: list[float], first_norm: float
) -> list[float]:
    """The descending chain's lambdas: the ascending chain's, from the largest whose descending
    SGD point has not collapsed (||w|| >= collapse_ratio * ``first_norm``, the ascending
    chain's first point's) down to the grid's first. From a collapsed point the polish lands
    on the trivial critical point w = 0 (a saddle) and, being exact, never leaves it; SGD
    leaves it by its noise, and the question is about the branches it reaches."""
    sgd = plan.starts[(seed, ChainDirection.DOWN)]
    layout = plan.subset.mse
    alive = [
        lam
        for lam in lams
        for point_lam, theta in sgd.items()
        if math.isclose(point_lam, lam)
        and weight_norm(layout, theta) >= plan.settings.collapse_ratio * first_norm
    ]
    top = max(alive, default=None)
    return [lam for lam in reversed(lams) if top is not None and lam <= top]


def run_seed(plan: ChainPlan, seed: int, log) -> tuple[list[ChainPoint], list[ChainStep]]:
    """One seed's ascending chain, then its descending one over the same lambdas; a chain
    whose warm schedule the study did not run is left out (the descending one needs both)."""
    if (seed, ChainDirection.UP) not in plan.starts:
        log(f"seed {seed}: the study ran no ascending chain, so no converged chain starts")
        return [], []
    up_points, up_steps, lams = _one_chain(plan, seed, ChainDirection.UP, plan.grid, log)
    if (seed, ChainDirection.DOWN) not in plan.starts:
        log(f"seed {seed}: the study ran no descending chain, so none is converged")
        return up_points, up_steps
    down_lams = _descending_lams(plan, seed, lams, up_points[0].weight_l2)
    if len(down_lams) < 2:
        log(f"seed {seed}: every descending SGD point has collapsed, so none is converged")
        return up_points, up_steps
    down_points, down_steps, _ = _one_chain(plan, seed, ChainDirection.DOWN, down_lams, log)
    return up_points + down_points, up_steps + down_steps


@dataclass
class ChainResults:
    points: list[ChainPoint]
    steps: list[ChainStep]


def execute(plan: ChainPlan, seeds: list[int], log=lambda m: None, map_=map) -> ChainResults:
    """Every seed's chains (``map_`` spreads the seeds over workers), tables in seed order."""
    results = list(map_(lambda seed: run_seed(plan, seed, log), seeds))
    return ChainResults(
        [p for points, _ in results for p in points], [s for _, steps in results for s in steps]
    )


def summary(plan: ChainPlan, results: ChainResults) -> ChainSummary:
    points, steps = results.points, results.steps
    verdicts = [s.verdict for s in steps]
    ratios = [s.lemma_ratio for s in steps if s.lemma_ratio is not None]
    ratios = [r for r in ratios if math.isfinite(r)]
    return ChainSummary(
        n_sub=plan.n_sub,
        parameters=plan.subset.mse.size,
        chains=len({(p.seed, p.direction) for p in points}),
        points=len(points),
        converged_points=sum(p.converged for p in points),
        proved_minima=sum(p.proved_minimum for p in points),
        proved_saddles=sum(p.proved_saddle for p in points),
        degenerate_points=sum(p.degenerate for p in points),
        steps=len(steps),
        drops=sum(s.drop for s in steps),
        one_branch_of_minima=verdicts.count(StepVerdictKind.ONE_BRANCH),
        fold_jumps=verdicts.count(StepVerdictKind.FOLD_JUMP),
        saddle_branches=verdicts.count(StepVerdictKind.SADDLE_BRANCH),
        branch_switches=verdicts.count(StepVerdictKind.BRANCH_SWITCH),
        branches_lost=verdicts.count(StepVerdictKind.BRANCH_LOST),
        not_followed=verdicts.count(StepVerdictKind.NOT_FOLLOWED),
        lemma_ratio_min=min(ratios, default=None),
        lemma_ratio_max=max(ratios, default=None),
        drops_on_one_branch_of_minima=sum(
            s.drop and s.verdict is StepVerdictKind.ONE_BRANCH for s in steps
        ),
    )
