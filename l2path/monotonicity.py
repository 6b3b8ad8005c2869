"""Is the in-sample MSE monotone in lambda along the study's paths, beyond noise?

Theory (docs/science.md): at global minimisers of J_lambda = L + lambda R, the data loss L
and the optimal value V(lambda) = min J_lambda are non-decreasing in lambda. So along any
path of points ordered by lambda, a *decrease* of the data loss (for the quadratic cost,
the in-sample MSE) or of the objective as lambda rises shows that at least one of the two
points is not a global minimiser (a saddle, another branch, or not converged).

For each path (a continuation chain, or one cold-start seed across the grid) sorted by
lambda, every step lambda_i -> lambda_{i+1} gets ``change = m_{i+1} - m_i`` for m in
``METRICS``.

Noise. A point's m comes from a noisy SGD trajectory; its within-stage noise sd_i is the
sample sd of m over the last epochs of its stage (the ``<m>_sd`` columns, see
``study.records.SGDPhase``). The yardstick of a step is sd = sqrt(sd_i^2 + sd_{i+1}^2) (the sd
of a difference of two independent values), and a decrease is *beyond noise* in a
one-sided test at false-alarm rate alpha when z = -change / sd > z_alpha = Phi^-1(1 - alpha).
The cold starts' seed-to-seed spread at the two lambdas, sqrt(s_i^2 + s_{i+1}^2), is
reported beside it (``cold_sd``): it mixes different basins, so it is not the null here.

Controls. For a step of a continuation chain, the chain point at the step's later end
(the *child*, started from the *parent*) has a same-lambda control: the parent continued at
its own lambda for as many epochs (``study.schedules.controls``). ``control_change`` is
m(control) - m(parent), what continued optimisation alone did; ``control_gap`` is
m(child) - m(control) (``decomposition``: the lambda effect). Child and control share their
start and mini-batch order, so the gap's yardstick is the *paired* sd, the sd of the
per-epoch difference child - control over the last common epochs
(``control_gap_sd_paired``, with the two series' ``control_gap_correlation`` and
``control_gap_detectable``, the smallest gap the one-sided test detects with power
``decomposition.POWER``; all three from ``decomposition.paired_table``, given to
``step_table`` as ``paired``). ``control_gap_sd`` = sqrt(sd_child^2 + sd_control^2) is the
unpaired yardstick, kept beside it. A step on which the chain's value fell (the child below
its parent) is *explained* by continued optimisation when the child is not lower than the
control beyond noise: control_gap >= -z_alpha * control_gap_sd_paired (the unpaired sd where
the paired one is missing: no ``paired`` table, or a history too short).

Runs. Consecutive decreases of a path form a *run* from lambda_i to lambda_j; its
cumulative drop m_i - m_j is tested the same way against sqrt(sd_i^2 + sd_j^2) (the
intermediate values cancel). ``largest_violations`` also finds, per path, the largest drop
between any two lambdas, max over i < j of m_i - m_j, tested the same way.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Mapping, TypeVar

import numpy as np
import pandas as pd
from scipy.stats import norm

from .rows import Row
from .schedules import SCHEDULES, chained
from .schedules import cold as cold_schedules

METRICS = ("train_mse", "data_loss", "objective")
STEP_COLUMNS = [
    "schedule",
    "seed",
    "metric",
    "lambda_from",
    "lambda_to",
    "value_from",
    "value_to",
    "change",
    "decrease",
    "noise_sd",
    "z",
    "beyond_noise",
    "cold_sd",
    "both_critical",
    "run",
    "run_length",
    "run_drop",
    "run_noise_sd",
    "run_beyond_noise",
    "control_change",
    "control_gap",
    "control_gap_sd",
    "control_gap_sd_paired",
    "control_gap_correlation",
    "control_gap_detectable",
    "explained",
]
# the columns of ``decomposition.paired_table`` read by ``step_table`` -> their step columns
PAIRED = {
    "sd_paired": "control_gap_sd_paired",
    "correlation": "control_gap_correlation",
    "detectable": "control_gap_detectable",
}
Paired = Mapping[tuple[str, str], Mapping[str, float]]  # (child key, metric) -> PAIRED values


def threshold(false_alarm: float) -> float:
    """z_alpha of the one-sided test: P(Z > z_alpha) = alpha for a standard normal Z."""
    return float(norm.isf(false_alarm))


def _sd(first: float, second: float) -> float:
    return math.sqrt(first**2 + second**2)


def _beyond(drop: float, sd: float, z_alpha: float) -> bool:
    return bool(drop > 0 and math.isfinite(sd) and drop > z_alpha * sd)


def cold_spread(results: pd.DataFrame, metric: str) -> pd.Series:
    """Sample standard deviation of ``metric`` over cold-start seeds, indexed by lambda."""
    cold = results[results["schedule"].isin(cold_schedules()) & ~results["diverged"]]
    return cold.groupby("lambda")[metric].std(ddof=1)


def _paths(results: pd.DataFrame):
    finished = results[~results["diverged"]]
    for (schedule, seed), path in finished.groupby(["schedule", "seed"], sort=True):
        yield schedule, int(seed), path.sort_values("lambda").reset_index(drop=True)


def _paired_lookup(paired: pd.DataFrame | None) -> Paired:
    """(child key, metric) -> the paired noise of its control's gap, from a ``paired_table``."""
    if paired is None or paired.empty:
        return {}
    return {
        (row["control_of"], row["metric"]): {column: row[column] for column in PAIRED}
        for _, row in paired.iterrows()
    }


def _control_columns(
    path: pd.DataFrame,
    i: int,
    metric: str,
    controls: pd.DataFrame | None,
    z_alpha: float,
    paired: Paired | None = None,
) -> dict:
    """The control of the step between rows i and i + 1 of a path (see the module's docstring)."""
    none = {
        "control_change": math.nan,
        "control_gap": math.nan,
        "control_gap_sd": math.nan,
        **{column: math.nan for column in PAIRED.values()},
        "explained": False,
    }
    if controls is None or "key" not in path or controls.empty:
        return none
    keys, parents = list(path["key"]), list(path["parent"])
    if parents[i + 1] == keys[i]:
        child, parent = i + 1, i  # lambda rises along the chain (ascending)
    elif parents[i] == keys[i + 1]:
        child, parent = i, i + 1  # lambda falls along the chain (descending)
    else:
        return none
    found = controls[controls["control_of"] == keys[child]]
    if found.empty:
        return none
    control = found.iloc[0]
    value, noise = path[metric].to_numpy(), path[f"{metric}_sd"].to_numpy()
    gap, sd = value[child] - control[metric], _sd(noise[child], control[f"{metric}_sd"])
    found = (paired or {}).get((keys[child], metric), {})
    pair = {column: float(found.get(name, math.nan)) for name, column in PAIRED.items()}
    yardstick = pair["control_gap_sd_paired"]
    yardstick = yardstick if math.isfinite(yardstick) else sd
    fell = value[child] < value[parent]
    return {
        "control_change": control[metric] - value[parent],
        "control_gap": gap,
        "control_gap_sd": sd,
        **pair,
        "explained": bool(fell and child == i + 1 and gap >= -z_alpha * yardstick),
    }


def _path_steps(
    schedule: str,
    seed: int,
    path: pd.DataFrame,
    metric: str,
    cold: pd.Series,
    z_alpha: float,
    controls: pd.DataFrame | None = None,
    paired: Paired | None = None,
) -> list[dict]:
    values, noise, lams = (
        path[metric].to_numpy(),
        path[f"{metric}_sd"].to_numpy(),
        path["lambda"].to_numpy(),
    )
    rows = []
    for i in range(len(path) - 1):
        change = values[i + 1] - values[i]
        sd = _sd(noise[i], noise[i + 1])
        rows.append(
            {
                "schedule": schedule,
                "seed": seed,
                "metric": metric,
                "lambda_from": lams[i],
                "lambda_to": lams[i + 1],
                "value_from": values[i],
                "value_to": values[i + 1],
                "change": change,
                "decrease": bool(change < 0),
                "noise_sd": sd,
                "z": -change / sd if sd > 0 else math.nan,
                "beyond_noise": _beyond(-change, sd, z_alpha),
                "cold_sd": _sd(cold.get(lams[i], math.nan), cold.get(lams[i + 1], math.nan)),
                "both_critical": bool(path["critical"].iloc[i] and path["critical"].iloc[i + 1]),
                "run": -1,
                "run_length": 0,
                "run_drop": 0.0,
                "run_noise_sd": math.nan,
                "run_beyond_noise": False,
                **_control_columns(path, i, metric, controls, z_alpha, paired),
            }
        )
    _mark_runs(rows, values, noise, z_alpha)
    return rows


def _mark_runs(rows: list[dict], values: np.ndarray, noise: np.ndarray, z_alpha: float) -> None:
    """Number the runs of consecutive decreases and give each of their steps the run's test."""
    run, i = 0, 0
    while i < len(rows):
        if not rows[i]["decrease"]:
            i += 1
            continue
        j = i
        while j + 1 < len(rows) and rows[j + 1]["decrease"]:
            j += 1
        drop, sd = values[i] - values[j + 1], _sd(noise[i], noise[j + 1])
        for row in rows[i : j + 1]:
            row.update(
                run=run,
                run_length=j - i + 1,
                run_drop=drop,
                run_noise_sd=sd,
                run_beyond_noise=_beyond(drop, sd, z_alpha),
            )
        run, i = run + 1, j + 1


def step_table(
    results: pd.DataFrame,
    false_alarm: float,
    controls: pd.DataFrame | None = None,
    paired: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """One row per (path, lambda step, metric): the change, its noise, the one-sided test at
    ``false_alarm``, the run of consecutive decreases it belongs to (``run`` -1: none) and,
    with ``controls`` (the controls' results), what the step's same-lambda control did, judged
    against the paired noise of ``paired`` (``decomposition.paired_table``) where given."""
    z_alpha = threshold(false_alarm)
    lookup = _paired_lookup(paired)
    rows = []
    for metric in METRICS:
        cold = cold_spread(results, metric)
        for schedule, seed, path in _paths(results):
            rows += _path_steps(schedule, seed, path, metric, cold, z_alpha, controls, lookup)
    return pd.DataFrame(rows, columns=STEP_COLUMNS)


def largest_violations(results: pd.DataFrame, false_alarm: float) -> pd.DataFrame:
    """Per (path, metric): the largest m(lambda_i) - m(lambda_j) over lambda_i < lambda_j (0 if
    none), tested against the within-stage noise of its two ends."""
    z_alpha = threshold(false_alarm)
    rows = []
    for metric in METRICS:
        for schedule, seed, path in _paths(results):
            values, noise, lams = (
                path[metric].to_numpy(),
                path[f"{metric}_sd"].to_numpy(),
                path["lambda"].to_numpy(),
            )
            best = (0.0, -1, -1)
            for j in range(1, len(values)):
                i = int(np.argmax(values[:j]))
                if values[i] - values[j] > best[0]:
                    best = (values[i] - values[j], i, j)
            drop, i, j = best
            sd = _sd(noise[i], noise[j]) if drop > 0 else math.nan
            rows.append(
                {
                    "schedule": schedule,
                    "seed": seed,
                    "metric": metric,
                    "drop": drop,
                    "lambda_from": lams[i] if drop > 0 else math.nan,
                    "lambda_to": lams[j] if drop > 0 else math.nan,
                    "noise_sd": sd,
                    "beyond_noise": _beyond(drop, sd, z_alpha),
                }
            )
    return pd.DataFrame(rows)


R = TypeVar("R")


def by_schedule(kind: str, raw: Mapping, read: Callable[[Mapping], R]) -> dict[str, R]:
    """A metrics object keyed by schedule name, each value read by ``read``; a name that is not
    a registered schedule raises ValueError (a typo would otherwise read as another schedule)."""
    unknown = [name for name in raw if name not in SCHEDULES]
    if unknown:
        raise ValueError(f"{kind}: unknown schedules {unknown}; allowed: {list(SCHEDULES)}")
    return {name: read(value) for name, value in raw.items()}


@dataclass(frozen=True)
class MetricMonotonicity(Row):
    """The steps of one schedule's paths for one metric (see ``summary``)."""

    steps: int
    decreases: int
    decreases_beyond_noise: int
    decreases_between_critical: int
    largest_decrease: float
    total_decrease: float
    runs: int
    longest_run: int
    runs_beyond_noise: int
    # present only when the summary was given ``largest_violations`` (None: left out of the JSON)
    largest_drop_any_pair: float | None = None
    paths_with_drop_beyond_noise: int | None = None


@dataclass(frozen=True)
class ScheduleMonotonicity(Row):
    """One schedule's counts, one field per metric of ``METRICS``."""

    train_mse: MetricMonotonicity
    data_loss: MetricMonotonicity
    objective: MetricMonotonicity


@dataclass(frozen=True)
class MonotonicitySummary:
    """metrics/monotonicity.json: per schedule (registry names), its ``ScheduleMonotonicity``."""

    schedules: Mapping[str, ScheduleMonotonicity]

    def to_json(self) -> dict:
        return {name: counts.to_json() for name, counts in self.schedules.items()}

    @classmethod
    def from_json(cls, raw: Mapping) -> "MonotonicitySummary":
        return cls(by_schedule(cls.__name__, raw, ScheduleMonotonicity.from_json))


def _counts(group: pd.DataFrame) -> dict:
    drops = -group.loc[group["decrease"], "change"]
    runs = group[group["run"] >= 0].drop_duplicates(["seed", "run"])
    return {
        "steps": int(len(group)),
        "decreases": int(group["decrease"].sum()),
        "decreases_beyond_noise": int(group["beyond_noise"].sum()),
        "decreases_between_critical": int((group["decrease"] & group["both_critical"]).sum()),
        "largest_decrease": float(drops.max()) if len(drops) else 0.0,
        "total_decrease": float(np.sum(drops)),
        "runs": int(len(runs)),
        "longest_run": int(runs["run_length"].max()) if len(runs) else 0,
        "runs_beyond_noise": int(runs["run_beyond_noise"].sum()),
    }


def summary(steps: pd.DataFrame, violations: pd.DataFrame | None = None) -> MonotonicitySummary:
    """Per schedule and metric: steps, decreases, decreases beyond noise, between critical
    points, largest and total decrease; runs of consecutive decreases, the longest, and those
    whose cumulative drop is beyond noise; with ``violations``, the largest drop between any
    two lambdas of any path and how many paths have one beyond noise."""
    counts: dict[tuple[str, str], dict] = {
        key: _counts(group) for key, group in steps.groupby(["schedule", "metric"], sort=True)
    }
    if violations is not None:
        for key, group in violations.groupby(["schedule", "metric"], sort=True):
            counts[key].update(
                largest_drop_any_pair=float(group["drop"].max()),
                paths_with_drop_beyond_noise=int(group["beyond_noise"].sum()),
            )
    names = sorted({name for name, _ in counts})
    return MonotonicitySummary(
        {
            name: ScheduleMonotonicity(
                **{metric: MetricMonotonicity(**counts[name, metric]) for metric in METRICS}
            )
            for name in names
        }
    )


def chain_steps(steps: pd.DataFrame, schedules: list[str]) -> pd.DataFrame:
    """Every in-sample-MSE step of the continuation chains of ``schedules``."""
    chosen = steps[
        (steps["metric"] == "train_mse")
        & steps["schedule"].isin(schedules)
        & steps["schedule"].isin(chained())
    ]
    return chosen.reset_index(drop=True)


def nonmonotone_steps(steps: pd.DataFrame, schedules: list[str]) -> pd.DataFrame:
    chosen = chain_steps(steps, schedules)
    return chosen[chosen["decrease"]].reset_index(drop=True)
