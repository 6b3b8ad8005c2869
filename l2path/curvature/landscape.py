"""The ``hessian`` stage's computation: curvature of the study's points and the answer to
"did the non-monotone steps of a chain start from saddles?".

Inputs are the study's points (``study.records.PointRecord``, read from
``results/study.csv``) and its monotonicity steps (``results/monotonicity.csv``). Every step of the analysed chains gets an interpolation
(J on the segment between its two points, under both lambdas). A *non-monotone step* is a step of a continuation chain
where the in-sample MSE fell as lambda rose; its *start point* is the point at the smaller
lambda (the chain's previous stage for ascending chains).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import pandas as pd
import torch

from ..config import Hessian, LambdaStudy
from ..data.dataset import Dataset
from ..model.checkpoint import load_model
from ..model.costs import get_cost
from ..study.records import PointRecord
from .hessian import Objective
from ..train.metrics import split_losses
from .saddle import CurvatureSettings, analyse_point, escape, interpolate


def chain_steps(steps: pd.DataFrame, schedules: list[str]) -> pd.DataFrame:
    """Every in-sample-MSE step of the continuation chains of ``schedules``."""
    chosen = steps[(steps["metric"] == "train_mse") & steps["schedule"].isin(schedules)
                   & (steps["schedule"] != "cold")]
    return chosen.reset_index(drop=True)


def nonmonotone_steps(steps: pd.DataFrame, schedules: list[str]) -> pd.DataFrame:
    chosen = chain_steps(steps, schedules)
    return chosen[chosen["decrease"]].reset_index(drop=True)


def point_key(study: list[PointRecord], schedule: str, seed: int, lam: float) -> str:
    """The key of the study's point of ``schedule`` and ``seed`` at ``lam``."""
    return next(p.key for p in study if p.schedule == schedule and p.seed == seed and np.isclose(p.lam, lam))


def select_points(study: list[PointRecord], steps: pd.DataFrame, config: Hessian) -> list[PointRecord]:
    """The points to analyse, in study order (diverged points never; none with select: none)."""
    if config.select == "none":
        return []
    chosen = [p for p in study if p.schedule in config.schedules and not p.diverged]
    if config.select == "nonmonotone":
        starts = {point_key(study, s.schedule, s.seed, s.lambda_from)
                  for s in nonmonotone_steps(steps, config.schedules).itertuples()}
        chosen = [p for p in chosen if p.key in starts]
    return chosen


@dataclass
class LandscapeResults:
    points: list[dict] = field(default_factory=list)
    escapes: list[dict] = field(default_factory=list)
    interpolation: list[dict] = field(default_factory=list)
    steps: list[dict] = field(default_factory=list)


def analyse_study(config: Hessian, study_config: LambdaStudy, study: list[PointRecord], steps: pd.DataFrame,
                  data: Dataset, on_point: Callable[[dict, dict], None] | None = None) -> LandscapeResults:
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
        point = {"key": record.key, "schedule": record.schedule, "seed": record.seed, "lambda": record.lam,
                 "grad_norm": record.grad_norm, "certified": record.certified, **numbers}
        if numbers["class"] == "saddle":
            full = Objective(net.sizes, x, y, cost, record.lam)
            for result in escape(full, theta, spectrum["min_vector"], numbers["lambda_min"], mse, grad_tol,
                                 config.escape_max_iter, config.escape_drop):
                out.escapes.append({"key": record.key, **result})
        point["escape_lower"] = any(e["lower"] for e in out.escapes if e["key"] == record.key)
        out.points.append(point)
        if on_point is not None:
            on_point(point, spectrum)
    classes = {p["key"]: p for p in out.points}
    ts = np.linspace(0.0, 1.0, config.interpolation_points)
    by_key = {p.key: p for p in study}
    line_objective = Objective(study_config.model.sizes, x, y, cost, 0.0)  # L and R; lambda applied below
    for step in chain_steps(steps, config.schedules).itertuples():
        start = point_key(study, step.schedule, step.seed, step.lambda_from)
        end = point_key(study, step.schedule, step.seed, step.lambda_to)
        a, b = (line_objective.flat(load_model(by_key[key].final_checkpoint, torch.float64)[0])
                for key in (start, end))
        line = interpolate(line_objective, a, b, ts)
        barriers = {}
        for which, lam in (("from", step.lambda_from), ("to", step.lambda_to)):
            values = np.array([p["data_loss"] + lam * p["penalty"] for p in line])
            barriers[which] = float(values.max() - max(values[0], values[-1]))
            for p, value in zip(line, values):
                out.interpolation.append({"start": start, "end": end, "objective_lambda": which, "lambda": lam,
                                          **p, "objective": float(value)})
        if not step.decrease:
            continue
        info = classes.get(start, {})
        out.steps.append({"schedule": step.schedule, "seed": int(step.seed), "start": start, "end": end,
                          "lambda_from": step.lambda_from, "lambda_to": step.lambda_to, "mse_change": step.change,
                          "beyond_noise": bool(step.beyond_noise), "start_class": info.get("class", "not analysed"),
                          "start_lambda_min": info.get("lambda_min", np.nan),
                          "start_index_estimate": info.get("index_estimate", np.nan),
                          "start_escape_lower": info.get("escape_lower", False),
                          "barrier_under_lambda_from": barriers["from"], "barrier_under_lambda_to": barriers["to"]})
    return out


def summary(results: LandscapeResults) -> dict:
    """Per schedule: points per class; non-monotone steps and the class of their start points."""
    out: dict = {}
    for point in results.points:
        classes = out.setdefault(point["schedule"], {"points": {"minimum": 0, "saddle": 0, "not critical": 0}})
        classes["points"][point["class"]] += 1
    for step in results.steps:
        entry = out.setdefault(step["schedule"], {"points": {"minimum": 0, "saddle": 0, "not critical": 0}})
        counts = entry.setdefault("nonmonotone_steps", {"total": 0, "from_saddle": 0, "from_minimum": 0,
                                                        "from_not_critical": 0, "escape_lowered": 0})
        counts["total"] += 1
        key = {"saddle": "from_saddle", "minimum": "from_minimum", "not critical": "from_not_critical"}
        if step["start_class"] in key:
            counts[key[step["start_class"]]] += 1
        counts["escape_lowered"] += int(step["start_escape_lower"])
    return out
