"""The power statement of the SGD decomposition, per step, in one sentence of the evidence.

From results/decomposition.csv (``decomposition.COLUMNS``), in-sample MSE rows: a step's
``power_ok`` says the paired test (one-sided at the study's false-alarm rate, power
``decomposition.POWER``) could see a lambda effect as large as the whole step's change,
``detectable`` <= |change|. The sentence counts those steps per schedule, and names the falls
(change < 0) of the ascending chains where the test could not: there a lambda effect "within
noise" says little.
"""

from __future__ import annotations

import pandas as pd

from ..decomposition import POWER


def _step(row: pd.Series) -> str:
    return f"{row['lambda_from']:g} → {row['lambda_to']:g} (seed {row['seed']})"


def power_sentence(decomposition: pd.DataFrame | None, false_alarm: float | None) -> str | None:
    """One sentence: per schedule, at how many steps ``power_ok``; which ascending falls not."""
    if decomposition is None or not len(decomposition) or not false_alarm:
        return None
    rows = decomposition[decomposition["metric"] == "train_mse"]
    if not len(rows):
        return None
    counts = ", ".join(
        f"{int(group['power_ok'].sum())} of {len(group)} {schedule} steps"
        for schedule, group in rows.groupby("schedule", sort=True)
    )
    falls = rows[(rows["schedule"] == "ascending") & (rows["change"] < 0)]
    blind = falls[~falls["power_ok"].astype(bool)]
    if not len(falls):
        about_falls = ""
    elif not len(blind):
        about_falls = f"; at every one of the {len(falls)} ascending falls it could"
    else:
        about_falls = (
            f"; it could not at {len(blind)} of the {len(falls)} ascending falls ("
            + ", ".join(_step(row) for _, row in blind.iterrows())
            + "), where a λ effect within noise says little"
        )
    return (
        f"Power of the paired test (one-sided, α = {false_alarm:g}, power {POWER:g}; "
        f"results/decomposition.csv, columns detectable and power_ok): it could see a λ effect "
        f"as large as the whole step's change in the in-sample MSE at {counts}{about_falls}."
    )
