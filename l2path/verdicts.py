"""A verdict for every non-monotone step: why did the in-sample MSE fall as lambda rose?

From the monotonicity steps (``monotonicity.step_table``, metric ``train_mse``), each step
where the MSE fell gets, in this order:

- ``continued optimisation``: the step's same-lambda control (the parent continued at its
  own lambda, same epochs, same stack) got at least as low as the new point, within the
  paired noise of the two (``explained``; ``monotonicity``'s module docstring): the fall
  needs no change of lambda to happen;
- ``within noise``: the fall is not beyond the within-stage noise of its two ends (one-sided
  test at the study's false-alarm rate);
- ``beyond noise, unexplained``: neither.

The counts per schedule are the study's answer in numbers (``metrics/verdicts.json``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Mapping

import pandas as pd

from .monotonicity import by_schedule
from .rows import Row

VERDICTS = ("continued optimisation", "within noise", "beyond noise, unexplained")
EVIDENCE = [
    "schedule",
    "seed",
    "lambda_from",
    "lambda_to",
    "value_from",
    "value_to",
    "change",
    "noise_sd",
    "z",
    "beyond_noise",
    "run",
    "run_length",
    "run_drop",
    "run_beyond_noise",
    "cold_sd",
    "both_critical",
    "control_change",
    "control_gap",
    "control_gap_sd",
    "control_gap_sd_paired",
    "control_gap_correlation",
    "control_gap_detectable",
    "explained",
]


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


@dataclass(frozen=True)
class VerdictCounts(Row):
    """One schedule's non-monotone steps and how many got each verdict."""

    nonmonotone_steps: int
    continued_optimisation: int
    within_noise: int
    beyond_noise_unexplained: int


# the field of VerdictCounts that counts each verdict (the verdict's words, underscored)
VERDICT_FIELDS = dict(
    zip(VERDICTS, ("continued_optimisation", "within_noise", "beyond_noise_unexplained"))
)


@dataclass(frozen=True)
class VerdictSummary:
    """metrics/verdicts.json: per schedule of the study (registry names), its counts."""

    schedules: Mapping[str, VerdictCounts]

    def to_json(self) -> dict:
        return {name: counts.to_json() for name, counts in self.schedules.items()}

    @classmethod
    def from_json(cls, raw: Mapping) -> "VerdictSummary":
        return cls(by_schedule(cls.__name__, raw, VerdictCounts.from_json))


def verdict_counts(table: pd.DataFrame, schedules: Iterable[str]) -> VerdictSummary:
    """Per schedule: non-monotone steps and how many got each verdict."""
    out = {}
    for name in schedules:
        part = table[table["schedule"] == name]
        out[name] = VerdictCounts(
            nonmonotone_steps=int(len(part)),
            **{VERDICT_FIELDS[v]: int((part["verdict"] == v).sum()) for v in VERDICTS},
        )
    return VerdictSummary(out)
