"""Is the in-sample MSE monotone in lambda along the study's paths?

Theory (docs/science.md): at global minimisers of J_lambda = L + lambda R, the data loss L
and the optimal value V(lambda) = min J_lambda are non-decreasing in lambda. So along any
path of points ordered by lambda, a *decrease* of the data loss (for the quadratic cost,
the in-sample MSE) or of the objective as lambda rises shows that at least one of the two
points is not a global minimiser (a saddle, another branch, or not converged).

For each path (a continuation chain, or one cold-start seed across the grid) sorted by
lambda, every step lambda_i -> lambda_{i+1} gets ``change = m(lambda_{i+1}) - m(lambda_i)``
for m in ``METRICS``. A decrease is *beyond noise* when -change > noise_sigmas * sd, with
sd the larger of the cold starts' sample standard deviations (over seeds) at the two
lambdas; without two cold seeds at both lambdas the noise is unknown (NaN, not judged).

Small steps can add up: ``largest_violations`` also finds, per path, the largest drop
between any two lambdas, max over lambda_i < lambda_j of m(lambda_i) - m(lambda_j), and
judges it against the same noise at those two lambdas.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

METRICS = ("train_mse", "data_loss", "objective")


def cold_noise(results: pd.DataFrame, metric: str) -> pd.Series:
    """Sample standard deviation of ``metric`` over cold-start seeds, indexed by lambda."""
    cold = results[(results["schedule"] == "cold") & ~results["diverged"]]
    return cold.groupby("lambda")[metric].std(ddof=1)


def step_table(results: pd.DataFrame, noise_sigmas: float) -> pd.DataFrame:
    """One row per (path, lambda step, metric): the change and whether it is a decrease beyond noise."""
    rows = []
    finished = results[~results["diverged"]]
    for metric in METRICS:
        noise = cold_noise(results, metric)
        for (schedule, seed), path in finished.groupby(["schedule", "seed"], sort=True):
            path = path.sort_values("lambda")
            for (_, low), (_, high) in zip(path.iterrows(), path.iloc[1:].iterrows()):
                change = high[metric] - low[metric]
                sd = max(noise.get(low["lambda"], math.nan), noise.get(high["lambda"], math.nan))
                decrease = bool(change < 0)
                rows.append({
                    "schedule": schedule, "seed": int(seed), "metric": metric,
                    "lambda_from": low["lambda"], "lambda_to": high["lambda"],
                    "value_from": low[metric], "value_to": high[metric], "change": change,
                    "decrease": decrease, "noise_sd": sd,
                    "beyond_noise": decrease and not math.isnan(sd) and -change > noise_sigmas * sd,
                    "both_certified": bool(low["certified"] and high["certified"]),
                })
    return pd.DataFrame(rows, columns=["schedule", "seed", "metric", "lambda_from", "lambda_to", "value_from",
                                       "value_to", "change", "decrease", "noise_sd", "beyond_noise",
                                       "both_certified"])


def largest_violations(results: pd.DataFrame, noise_sigmas: float) -> pd.DataFrame:
    """Per (path, metric): the largest m(lambda_i) - m(lambda_j) over lambda_i < lambda_j (0 if none)."""
    rows = []
    finished = results[~results["diverged"]]
    for metric in METRICS:
        noise = cold_noise(results, metric)
        for (schedule, seed), path in finished.groupby(["schedule", "seed"], sort=True):
            values = path.sort_values("lambda")[["lambda", metric]].to_numpy()
            best = (0.0, math.nan, math.nan)
            for j in range(1, len(values)):
                i = int(np.argmax(values[:j, 1]))
                if values[i, 1] - values[j, 1] > best[0]:
                    best = (values[i, 1] - values[j, 1], values[i, 0], values[j, 0])
            drop, low, high = best
            sd = max(noise.get(low, math.nan), noise.get(high, math.nan)) if drop > 0 else math.nan
            rows.append({"schedule": schedule, "seed": int(seed), "metric": metric, "drop": drop,
                         "lambda_from": low, "lambda_to": high, "noise_sd": sd,
                         "beyond_noise": bool(drop > 0 and not math.isnan(sd) and drop > noise_sigmas * sd)})
    return pd.DataFrame(rows)


def summary(steps: pd.DataFrame, violations: pd.DataFrame | None = None) -> dict:
    """Per schedule and metric: steps, decreases, decreases beyond noise, largest and total
    decrease; with ``violations``, the largest drop between any two lambdas of any path."""
    out: dict = {}
    for (schedule, metric), group in steps.groupby(["schedule", "metric"], sort=True):
        drops = -group.loc[group["decrease"], "change"]
        out.setdefault(schedule, {})[metric] = {
            "steps": int(len(group)),
            "decreases": int(group["decrease"].sum()),
            "decreases_beyond_noise": int(group["beyond_noise"].sum()),
            "decreases_between_certified": int((group["decrease"] & group["both_certified"]).sum()),
            "largest_decrease": float(drops.max()) if len(drops) else 0.0,
            "total_decrease": float(np.sum(drops)),
        }
    if violations is not None:
        for (schedule, metric), group in violations.groupby(["schedule", "metric"], sort=True):
            out[schedule][metric]["largest_drop_any_pair"] = float(group["drop"].max())
            out[schedule][metric]["paths_with_drop_beyond_noise"] = int(group["beyond_noise"].sum())
    return out
