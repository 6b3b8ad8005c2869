"""A verdict for every non-monotone step: why did the in-sample MSE fall as lambda rose?

From the monotonicity steps (``monotonicity.step_table``, metric ``train_mse``), each step
where the MSE fell gets, in this order:

- ``continued optimisation``: the step's same-lambda control (the parent continued at its
  own lambda, same epochs, same stack) got at least as low as the new point, within noise
  (``explained``): the fall needs no change of lambda to happen;
- ``within noise``: the fall is not beyond the within-stage noise of its two ends (one-sided
  test at the study's false-alarm rate);
- ``beyond noise, unexplained``: neither.

The counts per schedule are the study's answer in numbers (``metrics/verdicts.json``).
"""
from __future__ import annotations

import pandas as pd

VERDICTS = ("continued optimisation", "within noise", "beyond noise, unexplained")
EVIDENCE = ["schedule", "seed", "lambda_from", "lambda_to", "value_from", "value_to", "change", "noise_sd", "z",
            "beyond_noise", "run", "run_length", "run_drop", "run_beyond_noise", "cold_sd", "both_certified",
            "control_change", "control_gap", "control_gap_sd", "explained"]


def verdict(step) -> str:
    if step["explained"]:
        return VERDICTS[0]
    return VERDICTS[2] if step["beyond_noise"] else VERDICTS[1]


def verdict_table(steps: pd.DataFrame) -> pd.DataFrame:
    """One row per step of any path where the in-sample MSE fell: the verdict and its evidence."""
    fell = steps[(steps["metric"] == "train_mse") & steps["decrease"].astype(bool)]
    table = fell[EVIDENCE].reset_index(drop=True)
    table["verdict"] = [verdict(step) for _, step in table.iterrows()]
    return table


def verdict_counts(table: pd.DataFrame, schedules: list[str]) -> dict:
    """Per schedule: non-monotone steps and how many got each verdict (keys with underscores)."""
    out = {}
    for schedule in schedules:
        part = table[table["schedule"] == schedule]
        out[schedule] = {"nonmonotone_steps": int(len(part)),
                         **{v.replace(",", "").replace(" ", "_"): int((part["verdict"] == v).sum()) for v in VERDICTS}}
    return out
