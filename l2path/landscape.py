"""The ``hessian`` stage's computation: curvature of the study's points and the answer to
"did the non-monotone steps of a chain start from saddles?".

Inputs are the study's points (``study.records.PointRecord``, read from
``results/study.csv``) and its monotonicity steps (``results/monotonicity.csv``). Every step
of the analysed chains gets an interpolation (J on the segment between its two points, under
both lambdas). A *non-monotone step* is a step of a continuation chain where the in-sample MSE
fell as lambda rose; its *start point* is the point at the smaller lambda (the chain's previous
stage for ascending chains). The tables and the metrics are the typed rows of
``landscape_records``.

"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from typing import Callable

import numpy as np
import pandas as pd
import torch

from .config import Hessian, LambdaStudy
from .objective import Objective
from .curvature.classes import PointClass
from .curvature.saddle import CurvatureSettings, analyse_point, escape, interpolate
from .data.dataset import Dataset
from .landscape_records import (
    NOT_ANALYSED,
    ClassCounts,
    CurvaturePoint,
    EscapeRow,
    HessianSummary,
    InterpolationRow,
    SaddleStep,
    ScheduleCurvature,
    StepStarts,
)
from .model.checkpoint import load_model
from .model.costs import get_cost
from .monotonicity import chain_steps, nonmonotone_steps
from .study.records import PointRecord
from .train.metrics import split_losses


def point_key(study: list[PointRecord], schedule: str, seed: int, lam: float) -> str:
    """The key of the study's point of ``schedule`` and ``seed`` at ``lam``."""
    return next(
        p.key for p in study if p.schedule == schedule and p.seed == seed and np.isclose(p.lam, lam)
    )


def select_points(
    study: list[PointRecord], steps: pd.DataFrame, config: Hessian
) -> list[PointRecord]:
    """The points to analyse, in study order (diverged points never; none with select: none)."""
    if config.select == "none":
        return []
    chosen = [p for p in study if p.schedule in config.schedules and not p.diverged]
    if config.select == "nonmonotone":
        starts = {
            point_key(study, s.schedule, s.seed, s.lambda_from)
            for s in nonmonotone_steps(steps, config.schedules).itertuples()
        }
        chosen = [p for p in chosen if p.key in starts]
    return chosen


@dataclass
class LandscapeResults:
    """The stage's four tables, in the order they were made."""

    points: list[CurvaturePoint] = field(default_factory=list)
    escapes: list[EscapeRow] = field(default_factory=list)
    interpolation: list[InterpolationRow] = field(default_factory=list)
    steps: list[SaddleStep] = field(default_factory=list)


def analyse_study(
    config: Hessian,
    study_config: LambdaStudy,
    study: list[PointRecord],
    steps: pd.DataFrame,
    data: Dataset,
    on_point: Callable[[CurvaturePoint, dict], None] | None = None,
) -> LandscapeResults:
    """Curvature (on the first ``config.n_train`` images, else all), escapes at saddles and
    interpolations (on all training images) for the selected points and steps."""
    cost = get_cost(study_config.model.cost)
    settings = CurvatureSettings.from_params(config)
    grad_tol = study_config.polish.grad_tol
    x, y = data.train.x.to(torch.float64), data.train.y.to(torch.float64)
    n_curvature = config.n_train or len(x)
    out = LandscapeResults()

    def mse(net) -> float:
        return float(split_losses(net, data.train, cost)["mse"][0])

    for record in select_points(study, steps, config):
        net, _ = load_model(record.final_checkpoint, torch.float64)
        curvature = Objective(net.sizes, x[:n_curvature], y[:n_curvature], cost, record.lam)
        theta = curvature.flat(net)
        numbers, spectrum = analyse_point(curvature, theta, record.grad_norm, grad_tol, settings)
        # from_row: the analysis's numbers must be exactly the table's columns
        point = CurvaturePoint.from_row(
            {
                "key": record.key,
                "schedule": record.schedule,
                "seed": record.seed,
                "lambda": record.lam,
                "grad_norm": record.grad_norm,
                "critical": record.critical,
                **numbers,
                "escape_lower": False,
            }
        )
        if point.curvature_class is PointClass.SADDLE:
            full = Objective(net.sizes, x, y, cost, record.lam)
            escapes = [
                EscapeRow.from_row({"key": record.key, **result})
                for result in escape(
                    full,
                    theta,
                    spectrum["min_vector"],
                    point.lambda_min,
                    mse,
                    grad_tol,
                    config.escape_max_iter,
                    config.escape_drop,
                )
            ]
            out.escapes.extend(escapes)
            point = replace(point, escape_lower=any(e.lower for e in escapes))
        out.points.append(point)
        if on_point is not None:
            on_point(point, spectrum)
    analysed = {p.key: p for p in out.points}
    ts = np.linspace(0.0, 1.0, config.interpolation_points)
    by_key = {p.key: p for p in study}
    # L and R only: each lambda is applied below
    line_objective = Objective(study_config.model.sizes, x, y, cost, 0.0)
    for step in chain_steps(steps, config.schedules).itertuples():
        start = point_key(study, step.schedule, step.seed, step.lambda_from)
        end = point_key(study, step.schedule, step.seed, step.lambda_to)
        a, b = (
            line_objective.flat(load_model(by_key[key].final_checkpoint, torch.float64)[0])
            for key in (start, end)
        )
        line = interpolate(line_objective, a, b, ts)
        barriers = {}
        for which, lam in (("from", step.lambda_from), ("to", step.lambda_to)):
            values = np.array([p["data_loss"] + lam * p["penalty"] for p in line])
            barriers[which] = float(values.max() - max(values[0], values[-1]))
            for p, value in zip(line, values):
                out.interpolation.append(
                    InterpolationRow.from_row(
                        {
                            "start": start,
                            "end": end,
                            "objective_lambda": which,
                            "lambda": lam,
                            **p,
                            "objective": float(value),
                        }
                    )
                )
        if not step.decrease:
            continue
        info = analysed.get(start)
        out.steps.append(
            SaddleStep(
                schedule=step.schedule,
                seed=int(step.seed),
                start=start,
                end=end,
                lambda_from=step.lambda_from,
                lambda_to=step.lambda_to,
                mse_change=step.change,
                beyond_noise=bool(step.beyond_noise),
                start_class=info.curvature_class if info else NOT_ANALYSED,
                start_lambda_min=info.lambda_min if info else np.nan,
                start_index_estimate=info.index_estimate if info else np.nan,
                start_escape_lower=info.escape_lower if info else False,
                barrier_under_lambda_from=barriers["from"],
                barrier_under_lambda_to=barriers["to"],
            )
        )
    return out


def summary(results: LandscapeResults) -> HessianSummary:
    """Per schedule (those with points first, in the order met): points per class; its
    non-monotone steps and the class of their start points."""
    names = dict.fromkeys(
        [p.schedule for p in results.points] + [s.schedule for s in results.steps]
    )
    out = {}
    for name in names:
        points = ClassCounts.count(p.curvature_class for p in results.points if p.schedule == name)
        steps = [s for s in results.steps if s.schedule == name]
        starts = [s.start_class for s in steps]
        out[name] = ScheduleCurvature(
            points=points,
            nonmonotone_steps=StepStarts(
                total=len(steps),
                from_saddle=starts.count(PointClass.SADDLE),
                from_minimum=starts.count(PointClass.MINIMUM),
                from_not_critical=starts.count(PointClass.NOT_CRITICAL),
                escape_lowered=sum(1 for s in steps if s.start_escape_lower),
            )
            if steps
            else None,
        )
    return HessianSummary(out)
