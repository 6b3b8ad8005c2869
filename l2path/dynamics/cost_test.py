"""The causal test of why a layer grows: the question's setting trained with both costs.

Under cross-entropy the output layer's error is a - y, without the sigma'(z) factor that the
quadratic cost's (a - y) sigma'(z) carries. If that missing factor is what pushes a layer
outward (r < -1, ``records``), the same runs (same inits, seeds, mini-batch order, eta,
lambda) trained with the quadratic cost should not grow it. ``cost_table`` sets the two side
by side after ``question_epochs`` epochs: per (cost, init, layer) the norm's change
||W_q|| / ||W_0|| (seed mean, min, max), whether every seed grew it, the median of r over
epochs 1..q and the epochs with r < -1, and the validation accuracy at q.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .theory import per_seed

COLUMNS = (
    "cost",
    "init",
    "layer",
    "eta",
    "lambda",
    "seeds",
    "question_epoch",
    "l2_change",
    "l2_change_min",
    "l2_change_max",
    "grows_every_seed",
    "radial_ratio_median",
    "outward_epochs",
    "validation_accuracy",
)


def cost_table(frame: pd.DataFrame, config) -> pd.DataFrame:
    """One row per (cost, init, layer) of the question's setting (``config.eta``, its first
    lambda > 0) for every cost in ``frame`` (the epochs table, column ``cost``); empty
    (with the columns) without ``other_cost`` models. ``config``: the ``dynamics`` section."""
    lam = next(value for value in config.lambdas if value > 0)
    q = config.question_epochs
    setting = frame[(frame["eta"] == config.eta) & (frame["lambda"] == lam) & (frame["epoch"] <= q)]
    if setting["cost"].nunique() < 2:
        return pd.DataFrame(columns=list(COLUMNS))
    rows = []
    for (cost, init), part in setting.groupby(["cost", "init"], sort=True):
        for layer in range(1, len(config.model.sizes)):
            l2 = per_seed(part, f"layer{layer}_l2")
            change = l2.loc[q] / l2.loc[0]
            radial = per_seed(part, f"layer{layer}_radial_ratio").loc[1:q]
            rows.append(
                {
                    "cost": cost,
                    "init": init,
                    "layer": layer,
                    "eta": config.eta,
                    "lambda": lam,
                    "seeds": l2.shape[1],
                    "question_epoch": q,
                    "l2_change": float(change.mean()),
                    "l2_change_min": float(change.min()),
                    "l2_change_max": float(change.max()),
                    "grows_every_seed": bool((change > 1).all()),
                    "radial_ratio_median": float(np.nanmedian(radial.to_numpy())),
                    "outward_epochs": float((radial < -1).sum().mean()),
                    "validation_accuracy": float(
                        per_seed(part, "validation_accuracy").loc[q].mean()
                    ),
                }
            )
    return pd.DataFrame(rows, columns=list(COLUMNS))
