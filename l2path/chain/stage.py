"""The converged chains of the continuation stage from its params (``plan``), run (``execute``)
and counted (``summary``); the sweep builds its plans with the same ``chain_plan``.

- **problem**: J on the first ``chain.n_sub`` training images (``chain.n_sub_gpu`` on CUDA), with
  lambda/n as in the study, reduced exactly to the span of its images (``chain.span``); the
  lambdas are the study's grid (``study.grid.lambda_grid``);
- **three directions**, every point settled (``chain.settle``: polished, and off every proved
  saddle along its witness):
  - *ascending*, per seed of ``lambda_study.chain_seeds``: from the study's ascending SGD point
    at the grid's first lambda, up the grid until the weights collapse
    (``lambda_study.collapse_ratio``);
  - *descending* = graduated optimisation: from the trivial point w = 0 at the ascending
    chain's last lambda down the same lambdas (``_descending``), its lambda_c beside it
    (``chain.trivial``);
  - *cold*: each of ``chain.cold_seeds``' fresh initialisations settled at every lambda of the
    grid, up to its collapse; no chain, so no steps.
  A seed's descending chain and its ascending steps' verdicts start from its ascending points;
  everything else runs side by side (``execute``, ``map_``);
- **each point** described with its dense Hessian (``chain.points.describe``), **each step**
  judged by pseudo-arclength (``chain.verdicts.judge_step``), or, where ``chain.follow`` says
  ``drops`` for the chain's direction, each step whose MSE fell (the others: "not followed");
  the certificate's scale is the smallest |change| of the chain's steps.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from functools import partial

import numpy as np
import torch

from ..config import Chain, Params
from ..curvature.polish import Polish
from ..data.dataset import load_dataset
from ..model.checkpoint import load_model
from ..model.init import init_stack
from ..objective import Objective
from ..schedules import SCHEDULES
from ..study.grid import lambda_grid
from ..study.results import read_results
from .arclength import ArclengthSettings
from .points import (
    ChainSettings,
    chain_steps,
    describe,
    run_chain,
    smallest_change,
)
from .minima import best_found_drops, graduated, minima_by_lambda
from .records import (
    ChainDirection,
    ChainPoint,
    ChainRecord,
    ChainStep,
    ChainSummary,
    StepVerdictKind,
)
from .span import SpanBasis, reduced_subset, span_basis
from .subset import SubsetProblem, pick_device, polish_from
from .trivial import threshold_at, trivial_point
from .verdicts import VerdictSettings, judge_step


UNFOLLOWED = "no drop, and chain.follow follows only the drops of this direction"


@dataclass(frozen=True)
class ChainPlan:
    """One plan for the stage and the sweep (``chain_plan``): the problem, the lambdas, the
    starts and the settings every chain of the seeds and every cold start runs with."""

    device: torch.device
    n_sub: int
    n_study: int  # the study's training images: lambda_c in the study's lambda
    basis: SpanBasis
    subset: SubsetProblem  # the span-reduced problem
    grid: list[float]  # the study's lambdas, ascending (``study.grid.lambda_grid``)
    starts: dict[int, torch.Tensor]  # the ascending chain's start by seed, reduced
    cold_starts: dict[int, torch.Tensor]  # fresh initialisations by seed, reduced
    settings: ChainSettings
    verdicts: VerdictSettings
    follow: dict[str, str]  # direction -> "all" | "drops": the steps judged by arclength
    directions: tuple[ChainDirection, ...]  # those run (``directions``)


def directions(schedules: list[str]) -> tuple[ChainDirection, ...]:
    """The chain directions of the study's schedules (the registry's ``direction``: +1
    ascending, -1 descending, 0 cold), in the registry's order."""
    by_sign = {1: ChainDirection.UP, -1: ChainDirection.DOWN, 0: ChainDirection.COLD}
    return tuple(by_sign[SCHEDULES[name].direction] for name in SCHEDULES if name in schedules)


def chain_plan(
    params: Params,
    full: SubsetProblem,
    n_study: int,
    starts: dict[int, torch.Tensor],
    device: torch.device,
    follow: dict[str, str] | None = None,
    only: tuple[ChainDirection, ...] | None = None,
) -> ChainPlan:
    """The plan of the chains on ``full`` (the subset problem before the span reduction) from
    the ``chain`` and ``lambda_study`` params; ``starts``: the ascending starts by seed in
    ``full``'s layout; cold starts: ``chain.cold_seeds`` drawn with ``lambda_study.init``; the
    directions: the study's schedules' (``only``: these instead)."""
    config, study = params.chain, params.lambda_study
    run = only if only is not None else directions(study.schedules)
    basis = span_basis(full)
    grid = lambda_grid(study.grid.lambda_start, study.grid.factor, study.grid.lambda_max)
    cold = {
        seed: basis.reduce(
            full.mse.flat(init_stack(full.sizes, [study.init], [seed], torch.float64))
        )
        for seed in (config.cold_seeds if ChainDirection.COLD in run else [])
    }
    polish = polish_from(config)
    return ChainPlan(
        device,
        len(full.x),
        n_study,
        basis,
        reduced_subset(full, basis),
        grid,
        {seed: basis.reduce(theta) for seed, theta in starts.items()},
        {seed: theta.to(device) for seed, theta in cold.items()},
        ChainSettings(polish, study.collapse_ratio, config.fraction, config.max_escapes),
        verdict_settings(config, polish),
        follow or config.follow.model_dump(),
        run,
    )


def _ascending_starts(params: Params, layout: Objective) -> dict[int, torch.Tensor]:
    """The study's ascending SGD point at the grid's first lambda, by chain seed (full layout);
    a seed the study has no such point of is left out."""
    study = params.lambda_study
    warm = [n for n in study.schedules if SCHEDULES[n].warm and SCHEDULES[n].direction == 1]
    first = study.grid.lambda_start
    return {
        p.seed: layout.flat(load_model(p.final_checkpoint, torch.float64)[0]).to(layout.x.device)
        for p in read_results(params.paths.study_results)
        if warm
        and p.schedule == warm[0]
        and p.seed in study.chain_seeds
        and not p.diverged
        and math.isclose(p.lam, first)
    }


def plan(params: Params) -> ChainPlan:
    """The stage's plan: the chain problem on the study's data, the study's ascending SGD points
    as the ascending starts (see the module)."""
    config, model = params.chain, params.lambda_study.model
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
    return chain_plan(params, full, len(data.train.x), _ascending_starts(params, full.mse), device)


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


def _chain_points(
    plan: ChainPlan,
    seed: int,
    direction: ChainDirection,
    lams: list[float],
    start: torch.Tensor,
    log,
) -> tuple[list[ChainPoint], list[torch.Tensor]]:
    """One chain's points (or one cold start's) from ``start``, described, and their reduced
    theta."""
    links = run_chain(plan.subset, start, lams, direction, plan.settings, log)
    thetas = [link.theta for link in links]
    scale = smallest_change(chain_steps_of_mse(plan, links))
    points = []
    for k, link in enumerate(links):
        previous = thetas[k - 1] if k and direction is not ChainDirection.COLD else None
        point = describe(plan.subset, seed, direction, k, link, previous, scale, plan.settings)
        points.append(point)
        log(
            f"{direction.value} seed {seed}, lambda {point.lam:g}: {point.curvature_class} "
            f"({point.escapes} escapes), MSE {point.mse:.6g}"
        )
    return points, thetas


@dataclass(frozen=True)
class StepToJudge:
    """One chain step to follow by pseudo-arclength, with its two points (chain order)."""

    step: ChainStep
    earlier: ChainPoint
    earlier_theta: torch.Tensor
    later: ChainPoint
    later_theta: torch.Tensor


def _steps(
    plan: ChainPlan, points: list[ChainPoint], thetas: list[torch.Tensor]
) -> list[ChainStep | StepToJudge]:
    """A chain's steps in chain order: those ``plan.follow`` leaves unfollowed with their verdict,
    the others to judge."""
    direction = points[0].direction
    steps: list[ChainStep | StepToJudge] = []
    for k, step in enumerate(chain_steps(points, thetas)):
        if plan.follow[direction.value] == "drops" and not step.drop:
            steps.append(replace(step, verdict=StepVerdictKind.NOT_FOLLOWED, reason=UNFOLLOWED))
        else:
            steps.append(StepToJudge(step, points[k], thetas[k], points[k + 1], thetas[k + 1]))
    return steps


def _judge(plan: ChainPlan, item: StepToJudge, log) -> ChainStep:
    step = item.step
    judged = judge_step(
        plan.subset,
        step,
        item.earlier,
        item.earlier_theta,
        item.later,
        item.later_theta,
        plan.verdicts,
    )
    log(
        f"{step.direction.value} seed {step.seed}, lambda {step.lambda_low:g} to "
        f"{step.lambda_high:g}: change {step.change:.3g}, {judged.verdict.value}"
    )
    return judged


def _one_chain(
    plan: ChainPlan,
    seed: int,
    direction: ChainDirection,
    lams: list[float],
    start: torch.Tensor,
    log,
) -> tuple[list[ChainPoint], list[ChainStep], list[torch.Tensor]]:
    """One chain (or one cold start's points) from ``start``: its rows, its steps judged in
    order (none for cold points, which are no chain) and its points' reduced theta."""
    points, thetas = _chain_points(plan, seed, direction, lams, start, log)
    if direction is ChainDirection.COLD:
        return points, [], thetas
    steps = [
        _judge(plan, s, log) if isinstance(s, StepToJudge) else s
        for s in _steps(plan, points, thetas)
    ]
    return points, steps, thetas


def chain_steps_of_mse(plan: ChainPlan, links) -> list[float]:
    """The in-sample MSE changes of a chain's neighbours (the certificate's scale)."""
    mse = [float(plan.subset.mse.value(link.theta)) for link in links]
    return [b - a for a, b in zip(mse, mse[1:])]


@dataclass
class ChainResults:
    points: list[ChainPoint] = field(default_factory=list)
    steps: list[ChainStep] = field(default_factory=list)
    chains: list[ChainRecord] = field(default_factory=list)
    thetas: dict[tuple[int, ChainDirection], list[torch.Tensor]] = field(default_factory=dict)

    def add(
        self,
        points: list[ChainPoint],
        steps: list[ChainStep],
        thetas: list[torch.Tensor],
        **trivial: float | None,
    ) -> None:
        """One chain's rows, its record and its points' reduced theta."""
        first = points[0]
        self.points += points
        self.steps += steps
        self.thetas[(first.seed, first.direction)] = thetas
        self.chains.append(
            ChainRecord(
                seed=first.seed,
                direction=first.direction,
                points=len(points),
                lambda_first=first.lam,
                lambda_last=points[-1].lam,
                escapes=sum(p.escapes for p in points),
                weights=weights_file(first.seed, first.direction),
                **trivial,
            )
        )

    def extend(self, other: "ChainResults") -> None:
        self.points += other.points
        self.steps += other.steps
        self.chains += other.chains
        self.thetas.update(other.thetas)


def weights_file(seed: int, direction: ChainDirection) -> str:
    """A chain's weights file, relative to ``paths.chain_weights``."""
    return f"{direction.value}_seed{seed}.npz"


def _descending(plan: ChainPlan, seed: int, up: list[ChainPoint], last: torch.Tensor, log):
    """Graduated optimisation: from the trivial point at the ascending chain's last lambda (its
    last point with w = 0, ``chain.trivial.trivial_point``) down the ascending chain's lambdas,
    escaping every proved saddle, so the chain follows the branch of minima that leaves w = 0
    near lambda_c. Above that last lambda the ascending chain had collapsed, so the trivial
    point is where a chain from the grid's top would arrive."""
    lams = [p.lam for p in reversed(up)]
    top = plan.subset.at(lams[0])
    start = trivial_point(last, top)
    threshold = threshold_at(top, start, plan.n_study)
    log(f"seed {seed}: the trivial point's lambda_c = {threshold:.6g}")
    points, steps, thetas = _one_chain(plan, seed, ChainDirection.DOWN, lams, start, log)
    alive = plan.settings.collapse_ratio * up[0].weight_l2
    left = max((p.lam for p in points if p.weight_l2 >= alive), default=None)
    return points, steps, thetas, threshold, left


def run_seed(plan: ChainPlan, seed: int, log) -> ChainResults:
    """One seed's ascending chain, then its descending (graduated) one over the same lambdas;
    a seed without an ascending start has none."""
    results = ChainResults()
    if ChainDirection.UP not in plan.directions or seed not in plan.starts:
        log(f"seed {seed}: the study ran no ascending chain, so no converged chain starts")
        return results
    up_points, up_steps, up_thetas = _one_chain(
        plan, seed, ChainDirection.UP, plan.grid, plan.starts[seed], log
    )
    results.add(up_points, up_steps, up_thetas)
    if ChainDirection.DOWN not in plan.directions or len(up_points) < 2:
        return results
    down_points, down_steps, down_thetas, threshold, left = _descending(
        plan, seed, up_points, up_thetas[-1], log
    )
    results.add(
        down_points, down_steps, down_thetas, trivial_threshold=threshold, left_trivial_at=left
    )
    return results


def run_cold(plan: ChainPlan, seed: int, log) -> ChainResults:
    """One fresh initialisation settled at every lambda of the grid, up to its collapse."""
    results = ChainResults()
    points, _, thetas = _one_chain(
        plan, seed, ChainDirection.COLD, plan.grid, plan.cold_starts[seed], log
    )
    results.add(points, [], thetas)
    return results


@dataclass(frozen=True)
class ChainJob:
    """One job of ``execute``: ``kind`` "up" (seed's ascending points), "down" (its descending
    chain, from the ascending ``points`` and last ``theta``), "cold" (cold start ``seed``) or
    "step" (one ascending step, ``step``, to judge)."""

    kind: str
    seed: int
    points: list[ChainPoint] | None = None
    theta: torch.Tensor | None = None
    step: StepToJudge | None = None


def run_job(plan: ChainPlan, log, job: ChainJob):
    """One job of ``execute`` (``ChainJob``)."""
    if job.kind == "up":
        return _chain_points(
            plan, job.seed, ChainDirection.UP, plan.grid, plan.starts[job.seed], log
        )
    if job.kind == "down":
        return _descending(plan, job.seed, job.points, job.theta, log)
    if job.kind == "cold":
        return run_cold(plan, job.seed, log)
    return _judge(plan, job.step, log)


def execute(plan: ChainPlan, seeds: list[int], log=lambda m: None, map_=map) -> ChainResults:
    """Every seed's chains and every cold start, as ``run_seed`` and ``run_cold`` would give them
    (tables in seed order, cold points last), in two rounds of ``map_`` (it spreads a round's
    jobs over workers; it gets a picklable function, a partial of ``run_job``): first each seed's
    ascending points (every other job of the seed starts from them); then, longest first, each
    descending chain, each cold start and each ascending step to judge, one step a job, so the
    workers stay busy to the end (a seed's steps took 5-6 min of the stage in one job)."""
    work = partial(run_job, plan, log)
    up = [s for s in seeds if ChainDirection.UP in plan.directions and s in plan.starts]
    for seed in seeds:
        if seed not in up:
            log(f"seed {seed}: the study ran no ascending chain, so no converged chain starts")
    ascending = dict(zip(up, map_(work, [ChainJob("up", s) for s in up])))
    steps = {s: _steps(plan, *ascending[s]) for s in up}
    down = [s for s in up if ChainDirection.DOWN in plan.directions and len(ascending[s][0]) >= 2]
    judged = [
        (seed, k)
        for seed in up
        for k, item in enumerate(steps[seed])
        if isinstance(item, StepToJudge)
    ]
    judged.sort(key=lambda key: -steps[key[0]][key[1]].step.lambda_high)
    jobs = (
        [ChainJob("down", s, ascending[s][0], ascending[s][1][-1]) for s in down]
        + [ChainJob("cold", s) for s in plan.cold_starts]
        + [ChainJob("step", seed, step=steps[seed][k]) for seed, k in judged]
    )
    done = list(map_(work, jobs))
    downs, colds = dict(zip(down, done)), done[len(down) : len(down) + len(plan.cold_starts)]
    for (seed, k), step in zip(judged, done[len(down) + len(plan.cold_starts) :]):
        steps[seed][k] = step
    results = ChainResults()
    for seed in up:
        results.add(ascending[seed][0], steps[seed], ascending[seed][1])
        if seed in downs:
            points, down_steps, thetas, threshold, left = downs[seed]
            results.add(
                points, down_steps, thetas, trivial_threshold=threshold, left_trivial_at=left
            )
    for part in colds:
        results.extend(part)
    return results


def chain_weights(plan: ChainPlan, results: ChainResults) -> dict[str, dict[str, np.ndarray]]:
    """Per chain's weights file: ``lambda`` (K,), ``theta`` (K, p) in the full network's layout
    (``objective.Objective.flat``; W_1 expanded from the span, ``chain.span``), ``sizes``."""
    files = {}
    for (seed, direction), thetas in results.thetas.items():
        lams = [p.lam for p in results.points if p.seed == seed and p.direction is direction]
        files[weights_file(seed, direction)] = {
            "lambda": np.asarray(lams, dtype=np.float64),
            "theta": torch.stack([plan.basis.expand(t).cpu() for t in thetas]).numpy(),
            "sizes": np.asarray(plan.basis.sizes),
        }
    return files


def _thetas(plan: ChainPlan, results: ChainResults) -> tuple:
    """``minima_by_lambda``'s theta_of and sizes (none where the results hold no thetas)."""
    if not results.thetas:
        return None, None
    return (
        lambda p: results.thetas[(p.seed, p.direction)][p.index].cpu().numpy(),
        plan.subset.sizes,
    )


def summary(plan: ChainPlan, results: ChainResults) -> ChainSummary:
    points, steps = results.points, results.steps
    verdicts = [s.verdict for s in steps]
    ratios = [s.lemma_ratio for s in steps if s.lemma_ratio is not None]
    ratios = [r for r in ratios if math.isfinite(r)]
    folds = [
        sum(s.verdict is StepVerdictKind.FOLD_JUMP for s in steps if s.seed == seed)
        for seed in sorted({s.seed for s in steps})
    ]
    best = minima_by_lambda(points, *_thetas(plan, results))
    compared = graduated(points)
    spreads = [row.mse_spread for row in best if row.minima > 1]
    return ChainSummary(
        n_sub=plan.n_sub,
        parameters=plan.subset.mse.size,
        chains=len(
            {(p.seed, p.direction) for p in points if p.direction is not ChainDirection.COLD}
        ),
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
        cold_points=sum(p.direction is ChainDirection.COLD for p in points),
        escapes=sum(p.escapes for p in points),
        graduated_compared=len(compared),
        graduated_lower=sum(c.lower for c in compared),
        graduated_gain_max=max((c.gain for c in compared), default=None),
        best_found_lambdas=len(best),
        best_found_drops=best_found_drops(best),
        several_minima_lambdas=sum(row.minima > 1 for row in best),
        distinct_minima_max=max((row.minima for row in best), default=0),
        minima_apart_at_same_objective=sum(row.apart_at_same_objective for row in best),
        crevasse_mse_spread_max=max(spreads, default=None),
        fold_jumps_min=min(folds, default=0),
        fold_jumps_max=max(folds, default=0),
    )
