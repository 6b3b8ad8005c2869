"""Paired noise of a chain step's split into the lambda effect and the optimisation deficit.

A warm-started point (the *child*, at lambda_k+1) and its same-lambda *control* (at lambda_k)
start from the same weights and see the same mini-batches in the same order, so their per-epoch
values x_e (child) and y_e (control) share most of their SGD noise. The yardstick of the gap
x - y is then the sd of the per-epoch *difference* d_e = x_e - y_e,

    sd_paired = sd(d_e)  over the last ``window`` epochs,

not sqrt(sd(x)^2 + sd(y)^2), which assumes independent noise and overstates it when the two are
positively correlated (Var(x - y) = Var x + Var y - 2 Cov(x, y)).

**Power.** A one-sided test at false-alarm rate alpha detects a true gap g with probability
1 - beta when |g| >= (z_alpha + z_beta) * sd_paired: ``detectable`` is that size, so a table
can say per step whether the test could have seen a gap of the size that matters.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.stats import norm


@dataclass(frozen=True)
class PairedNoise:
    sd_paired: float  # sd of the per-epoch difference child - control
    sd_unpaired: float  # sqrt(sd_child^2 + sd_control^2): the independent-noise yardstick
    correlation: float  # of the two per-epoch series
    epochs: int


def paired_noise(child: np.ndarray, control: np.ndarray, window: int) -> PairedNoise:
    """Noise of the gap from the last ``window`` epochs of two series of equal length that
    share their mini-batch order (epoch e of one is paired with epoch e of the other)."""
    child, control = np.asarray(child, dtype=float), np.asarray(control, dtype=float)
    if child.shape != control.shape or child.ndim != 1:
        raise ValueError(f"paired series must be 1-d of one length: {child.shape}, {control.shape}")
    if window < 2 or len(child) < window:
        raise ValueError(f"need at least window = {window} >= 2 epochs, have {len(child)}")
    x, y = child[-window:], control[-window:]
    sd_x, sd_y = float(x.std(ddof=1)), float(y.std(ddof=1))
    correlation = float(np.corrcoef(x, y)[0, 1]) if sd_x > 0 and sd_y > 0 else math.nan
    return PairedNoise(float((x - y).std(ddof=1)), math.hypot(sd_x, sd_y), correlation, window)


def detectable(sd: float, false_alarm: float, power: float) -> float:
    """The smallest gap a one-sided test at ``false_alarm`` detects with probability ``power``:
    (z_alpha + z_beta) * sd."""
    if not 0 < false_alarm < 1 or not 0 < power < 1:
        raise ValueError(f"false_alarm and power must lie in (0, 1): {false_alarm}, {power}")
    return float((norm.isf(false_alarm) + norm.ppf(power)) * sd)
