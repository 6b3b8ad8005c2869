"""The scale at which a layer levels off, and whether it depends on lambda.

A layer has levelled off when the trend of its rate (``tail_off``) over the last ``window``
epochs is within ``level_off_rate`` of zero: its norm changes by less than that share of
what pure decay would take off. There one step keeps ||W|| in expectation, which to second
order (``theory.second_order_factor`` with factor 1) is the balance

    r = -1 + eta^2 E||g_B||^2 / ||W||^2 / (2 eta lambda / n),

r being the data term's share along W: (lambda/n) W = -dL/dW along W (r = -1) plus the
mini-batch growth. Read first order, the balance sets the scale where the data's outward push
equals (lambda/n)||W||, so it moves with lambda; a fixed 1/sqrt(n_w) scale would not.
``slopes`` fits ln RMS = a + b ln lambda over the levelled lambdas of each layer.

A layer not levelled within its run gets the epoch at which it would be (``level_epoch``):
near its level a norm approaches it geometrically, so the trend of the rate falls as
exp(-k t); k is fitted to ln|trend| over the run's last ``2 window`` epochs and the epoch is
where |trend| = level_off_rate.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from .tail_off import rates, trend


def level_off(
    l2: pd.DataFrame,
    rms: pd.DataFrame,
    radial: pd.DataFrame,
    noise: pd.DataFrame,
    theory_factor: float,
    eta: float,
    lam: float,
    n: int,
    level_off_rate: float,
    window: int,
) -> dict:
    """The last epochs of one (eta, init, lambda, layer), seed means; frames rows epoch 0..,
    columns seed; ``noise`` is eta^2 E||g_B||^2 / ||W||^2."""
    last = slice(-window, None)
    trended = trend(rates(l2, theory_factor).mean(axis=1), window)
    rate = float(trended.iloc[last].mean())
    levelled = bool(abs(rate) < level_off_rate)
    return {
        "equilibrium_rms": float(rms.iloc[-1].mean()),
        "equilibrium_rms_min": float(rms.iloc[-1].min()),
        "equilibrium_rms_max": float(rms.iloc[-1].max()),
        "equilibrium_rate": rate,
        "equilibrium_levelled": levelled,
        "equilibrium_level_epoch": (
            math.nan if levelled else level_epoch(trended.iloc[-2 * window :], level_off_rate)
        ),
        "equilibrium_radial_ratio": float(radial.iloc[last].to_numpy().mean()),
        "equilibrium_balance_radial_ratio": float(
            -1 + noise.iloc[last].to_numpy().mean() / (2 * eta * lam / n)
        ),
    }


def level_epoch(trended: pd.Series, level_off_rate: float) -> float:
    """The epoch at which |trended| (index epoch) reaches ``level_off_rate``, extrapolated
    from the least-squares fit ln|trended| = c - k t; NaN where the trend changes sign or
    does not fall (k <= 0)."""
    values = trended.to_numpy(dtype=float)
    if len(values) < 2 or not (np.all(values > 0) or np.all(values < 0)):
        return math.nan
    epochs = trended.index.to_numpy(dtype=float)
    slope, intercept = np.polyfit(epochs, np.log(np.abs(values)), 1)
    if slope >= 0:
        return math.nan
    return float((math.log(level_off_rate) - intercept) / slope)


def slopes(theory: pd.DataFrame) -> pd.DataFrame:
    """One row per (eta, init, layer) with at least two levelled lambdas: the least-squares
    slope b of ln equilibrium_rms on ln lambda, its standard error (NaN with two points) and
    the lambdas and RMS it used."""
    rows = []
    for (eta, init, layer), part in theory.groupby(["eta", "init", "layer"], sort=True):
        level = part[part["equilibrium_levelled"].astype(bool)].sort_values("lambda")
        if len(level) < 2:
            continue
        x, y = np.log(level["lambda"].to_numpy()), np.log(level["equilibrium_rms"].to_numpy())
        design = np.stack([np.ones_like(x), x], axis=1)
        coefficients, *_ = np.linalg.lstsq(design, y, rcond=None)
        residuals = y - design @ coefficients
        if len(x) > 2:
            variance = residuals @ residuals / (len(x) - 2)
            se = math.sqrt(variance / ((x - x.mean()) @ (x - x.mean())))
        else:
            se = math.nan
        rows.append(
            {
                "eta": eta,
                "init": init,
                "layer": int(layer),
                "equilibrium_slope": float(coefficients[1]),
                "equilibrium_slope_se": se,
                "equilibrium_lambdas": " ".join(f"{v:g}" for v in level["lambda"]),
                "equilibrium_rms_values": " ".join(f"{v:.4g}" for v in level["equilibrium_rms"]),
            }
        )
    return pd.DataFrame(rows)
