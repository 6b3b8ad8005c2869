"""Where the decay tails off: the per-epoch log-shrink relative to pure decay, its trend and
the epoch at which that trend crosses a stated fraction.

For epoch e the *rate* is ln(||W_e|| / ||W_{e-1}||) / ln(theory factor): 1 while the layer
shrinks as pure decay predicts, 0 once its norm no longer changes, below 0 while it grows.
The *trend* is its centred moving mean over ``window`` epochs (fewer at the ends). The
decay has tailed off at the first epoch where the trend falls below ``fraction``, linearly
interpolated between epochs, provided the trend was at or above it before (a layer that
never decays has no tail-off).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd


def rates(l2: pd.DataFrame, theory_factor: float) -> pd.DataFrame:
    """Rows epoch 1.., columns seed: the rate of each epoch (``l2``: rows epoch 0.., columns
    seed)."""
    return (np.log(l2 / l2.shift(1)) / math.log(theory_factor)).iloc[1:]


def trend(rate: pd.Series | pd.DataFrame, window: int) -> pd.Series | pd.DataFrame:
    return rate.rolling(window, center=True, min_periods=1).mean()


def crossing(trended: pd.Series, fraction: float) -> float:
    """The fractional epoch where ``trended`` (index epoch) first falls below ``fraction``
    after being at or above it; NaN if it never does."""
    values, epochs = trended.to_numpy(), trended.index.to_numpy(dtype=float)
    above = False
    for i, value in enumerate(values):
        if value >= fraction:
            above = True
        elif above:
            previous = values[i - 1]
            return float(
                epochs[i - 1]
                + (previous - fraction) / (previous - value) * (epochs[i] - epochs[i - 1])
            )
    return math.nan


def value_at(series: pd.Series, epoch: float) -> float:
    """``series`` (index epoch, positive values) at a fractional epoch, interpolated in log."""
    return float(
        np.exp(np.interp(epoch, series.index.to_numpy(dtype=float), np.log(series.to_numpy())))
    )


def tail_off(
    l2: pd.DataFrame, rms: pd.DataFrame, theory_factor: float, fraction: float, window: int
) -> dict:
    """Per seed the crossing epoch and the RMS there; their means and ranges over seeds.

    ``l2``, ``rms``: rows epoch 0.., columns seed. Keys: tail_off_epoch (mean over the seeds
    that cross), tail_off_epoch_min/max, tail_off_rms (and _min/_max), tail_off_seeds (how
    many cross)."""
    trended = trend(rates(l2, theory_factor), window)
    epochs = {seed: crossing(trended[seed], fraction) for seed in trended.columns}
    crossed = {seed: e for seed, e in epochs.items() if not math.isnan(e)}
    at = [value_at(rms[seed], e) for seed, e in crossed.items()]
    numbers = {"tail_off_seeds": len(crossed)}
    for name, values in (("epoch", list(crossed.values())), ("rms", at)):
        numbers[f"tail_off_{name}"] = float(np.mean(values)) if values else math.nan
        numbers[f"tail_off_{name}_min"] = float(np.min(values)) if values else math.nan
        numbers[f"tail_off_{name}_max"] = float(np.max(values)) if values else math.nan
    return numbers


def band(l2: pd.DataFrame, theory_factor: float, window: int) -> pd.DataFrame:
    """Per epoch the rate's seed mean, min and max and the trend of the mean (for plots)."""
    rate = rates(l2, theory_factor)
    mean = rate.mean(axis=1)
    return pd.DataFrame(
        {
            "mean": mean,
            "min": rate.min(axis=1),
            "max": rate.max(axis=1),
            "trend": trend(mean, window),
        }
    )
