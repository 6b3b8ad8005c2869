"""The lambda grid of the study: a geometric sequence.

lambda_i = lambda_start * factor**i for i = 0, 1, ... while lambda_i <= lambda_max
(with a relative slack of 1e-9 so that an exact power is kept despite rounding).
ln(factor) is the grid's step on a log scale: 0.69 for factor 2.
"""

from __future__ import annotations

import math


def lambda_grid(lambda_start: float, factor: float, lambda_max: float) -> list[float]:
    if lambda_start <= 0:
        raise ValueError(f"lambda_start must be > 0 (got {lambda_start})")
    if factor <= 1:
        raise ValueError(f"factor must be > 1 (got {factor})")
    if lambda_max < lambda_start:
        raise ValueError(f"lambda_max ({lambda_max}) must be >= lambda_start ({lambda_start})")
    count = math.floor(math.log(lambda_max / lambda_start) / math.log(factor) + 1e-9) + 1
    return [lambda_start * factor**i for i in range(count)]
