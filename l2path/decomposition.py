"""The SGD chain's formal result: a warm step's change split into a lambda effect and an
optimisation deficit, each with the noise it should be judged by.

A warm-started chain point (the *child*, at lambda_to) starts from its *parent* (at
lambda_from); its same-lambda *control* is the parent continued at lambda_from for as many
epochs, from the same weights, with the same mini-batch order (``study.schedules.controls``).
For a metric m (the in-sample MSE by default) the step's change splits exactly as

    change = m(child) - m(parent)
           = [m(child) - m(control)]    lambda_effect: what changing lambda did
           + [m(control) - m(parent)]   optimisation_deficit: what more epochs alone did

At global minimisers the in-sample MSE is non-decreasing in lambda (docs/science.md), so the
lemma expects ``lemma_sign * lambda_effect >= 0`` with ``lemma_sign`` = +1 on an ascending
step (lambda_to > lambda_from) and -1 on a descending one.

Noise of the lambda effect. Child and control share their start and their mini-batch order,
so their per-epoch values share most of their SGD noise: the yardstick of m(child) -
m(control) is the sample sd of the per-epoch difference (``paired.paired_noise``), not the
unpaired sqrt(sd_child^2 + sd_control^2). Epochs are paired by their number: the child's
epoch e with the control's epoch e, over the last ``window`` epochs that both ran (a control
runs as many epochs as its child, so these are the last ``window`` of each; should the two
differ, the longer one's later epochs have no partner and are left out rather than paired
with another epoch's batch order). With fewer than ``window`` common epochs all of them are
used (``paired_epochs`` says how many); with fewer than two, or a non-finite value among
them, the paired columns are NaN. The noise is the SGD jitter over the last epochs of the
phase (as the points' own ``<m>_sd`` columns), while m is the best epoch's iterate: the sd is
the noise of a value, not a standard error of a mean.

``detectable`` = (z_alpha + z_beta) * sd_paired (``paired.detectable``) is the smallest lambda
effect a one-sided test at the study's false-alarm rate alpha detects with power ``POWER``.
``power_ok``: the paired test could see a lambda effect as large as the whole step,
detectable <= |change|; where it is False, a lambda effect "within noise" says little.

Noise of the optimisation deficit. The parent and the control do not run the same epochs
(the control starts where the parent ended), so its sd is the unpaired
sqrt(sd_parent^2 + sd_control^2) (``deficit_sd``).
"""

from __future__ import annotations

import math
from typing import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd
from scipy.stats import norm

from .monotonicity import METRICS
from .paired import detectable, paired_noise

# Power at which ``detectable`` is stated: the test sees a gap of that size 4 times out of 5.
POWER = 0.8

# One per-epoch record: "epoch" (1-based) and a value per metric (``EpochRecord.to_mapping``).
History = Sequence[Mapping[str, float]]

PAIRED_COLUMNS = [
    "control_of",
    "metric",
    "sd_paired",
    "sd_unpaired",
    "correlation",
    "paired_epochs",
    "detectable",
]
COLUMNS = [
    "schedule",
    "seed",
    "metric",
    "child",
    "control",
    "lambda_from",
    "lambda_to",
    "lemma_sign",
    "value_parent",
    "value_control",
    "value_child",
    "change",
    "lambda_effect",
    "optimisation_deficit",
    "sd_paired",
    "sd_unpaired",
    "correlation",
    "paired_epochs",
    "detectable",
    "power_ok",
    "effect_against_lemma",
    "deficit_sd",
]


def histories(records: Iterable) -> dict[str, list[dict]]:
    """Key -> per-epoch history of every record (anything with ``key`` and ``history`` of
    ``EpochRecord``s, such as ``study.records.PointRecord``)."""
    return {r.key: [h.to_mapping() for h in r.history] for r in records}


def common_epochs(
    child: History, control: History, metric: str, window: int
) -> tuple[np.ndarray, np.ndarray]:
    """The two series of ``metric`` over the last ``window`` epochs (by epoch number) that
    both ran, in epoch order; fewer when fewer are common."""
    x = {int(h["epoch"]): float(h[metric]) for h in child}
    y = {int(h["epoch"]): float(h[metric]) for h in control}
    epochs = sorted(set(x) & set(y))[-window:]
    return np.array([x[e] for e in epochs]), np.array([y[e] for e in epochs])


def _paired_row(child: History, control: History, metric: str, window: int, alpha: float):
    x, y = common_epochs(child, control, metric, window)
    if len(x) < 2 or not (np.isfinite(x).all() and np.isfinite(y).all()):
        return math.nan, math.nan, math.nan, len(x), math.nan
    noise = paired_noise(x, y, len(x))
    found = detectable(noise.sd_paired, alpha, POWER)
    return noise.sd_paired, noise.sd_unpaired, noise.correlation, noise.epochs, found


def paired_table(
    controls: pd.DataFrame | None,
    records: Mapping[str, History],
    window: int,
    false_alarm: float,
) -> pd.DataFrame:
    """One row per (control, metric of ``METRICS``): the paired noise of the gap child -
    control from the two histories in ``records`` (key -> history), and the detectable gap.
    A control whose child or own history is missing gets NaN columns."""
    rows = []
    if controls is not None and not controls.empty:
        for key, child_key in zip(controls["key"], controls["control_of"]):
            child, control = records.get(child_key, ()), records.get(key, ())
            for metric in METRICS:
                values = _paired_row(child, control, metric, window, false_alarm)
                rows.append(dict(zip(PAIRED_COLUMNS, (child_key, metric, *values))))
    return pd.DataFrame(rows, columns=PAIRED_COLUMNS)


def split(parent: float, control: float, child: float) -> tuple[float, float, float]:
    """(change, lambda_effect, optimisation_deficit) = (child - parent, child - control,
    control - parent); the last two add up to the first (up to one rounding each)."""
    return child - parent, child - control, control - parent


def _step(child, parent, control, paired: Mapping, metric: str, z_alpha: float) -> dict:
    change, effect, deficit = split(parent[metric], control[metric], child[metric])
    noise = paired.get((child["key"], metric), {})
    sd_paired = noise.get("sd_paired", math.nan)
    found = noise.get("detectable", math.nan)
    sign = 1 if child["lambda"] > parent["lambda"] else -1
    return {
        "schedule": child["schedule"],
        "seed": int(child["seed"]),
        "metric": metric,
        "child": child["key"],
        "control": control["key"],
        "lambda_from": parent["lambda"],
        "lambda_to": child["lambda"],
        "lemma_sign": sign,
        "value_parent": parent[metric],
        "value_control": control[metric],
        "value_child": child[metric],
        "change": change,
        "lambda_effect": effect,
        "optimisation_deficit": deficit,
        "sd_paired": sd_paired,
        "sd_unpaired": math.hypot(child[f"{metric}_sd"], control[f"{metric}_sd"]),
        "correlation": noise.get("correlation", math.nan),
        "paired_epochs": int(noise.get("paired_epochs", 0)),
        "detectable": found,
        "power_ok": bool(found <= abs(change)),  # False for NaN
        "effect_against_lemma": bool(sign * effect < -z_alpha * sd_paired),  # False for NaN
        "deficit_sd": math.hypot(parent[f"{metric}_sd"], control[f"{metric}_sd"]),
    }


def decomposition_table(
    results: pd.DataFrame,
    controls: pd.DataFrame | None,
    paired: pd.DataFrame,
    false_alarm: float,
    metric: str = "train_mse",
) -> pd.DataFrame:
    """One row per warm step with a control (child, parent and control not diverged): the
    split of ``metric``'s change, its paired noise (``paired``: ``paired_table``'s rows) and
    ``effect_against_lemma``, a lambda effect of the wrong sign beyond noise (one-sided test
    at ``false_alarm`` against sd_paired). Sorted by schedule, seed and lambda_to."""
    if controls is None or controls.empty:
        return pd.DataFrame(columns=COLUMNS)
    z_alpha = float(norm.isf(false_alarm))
    points = results[~results["diverged"].astype(bool)].set_index("key", drop=False)
    noise = {(row["control_of"], row["metric"]): row for _, row in paired.iterrows()}
    rows = []
    for _, control in controls[~controls["diverged"].astype(bool)].iterrows():
        child_key = control["control_of"]
        if child_key not in points.index or points.loc[child_key, "parent"] not in points.index:
            continue
        child = points.loc[child_key]
        rows.append(_step(child, points.loc[child["parent"]], control, noise, metric, z_alpha))
    table = pd.DataFrame(rows, columns=COLUMNS)
    return table.sort_values(["schedule", "seed", "lambda_to"]).reset_index(drop=True)
