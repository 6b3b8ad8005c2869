"""The stopping rule of the SGD phase: stop when the smoothed objective has plateaued.

After each epoch e the full-batch objective J_e is recorded. Single epochs are noisy (SGD
with a constant rate jitters around its floor), so the rule looks at the running mean over
the last ``window`` (w) epochs, Jbar_e = mean(J_{e-w+1} .. J_e), and stops after epoch
e >= max(min_epochs, w + patience) when it improved by at most a tolerance over the last
``patience`` (p) epochs:

    Jbar_{e-p} - Jbar_e <= max(rel_tol * |Jbar_{e-p}|,  noise_sds * s_e * sqrt(2 min(p, w)) / w)

The second term scales the stop to the noise the rule sees. s_e is the sample sd of J over
the last w epochs (the point's reported ``objective_sd``). If the J_e were independent with sd
s around a flat floor, the two running means share max(w - p, 0) epochs and their difference
has sd s * sqrt(2 min(p, w)) / w; an improvement within ``noise_sds`` of those sds is not
distinguishable from the floor's jitter. On a steady decline of d per epoch, s_e is about d
while the improvement is p * d, so a trend alone does not stop the rule. ``noise_sds = 0`` is
the plain relative rule.

A running mean that rose also counts as a plateau. ``window = 1`` is the plain rule on single
epochs (s_e is then unknown, and only rel_tol applies). Max epochs is the trainer's own limit.
Which iterate a stage reports (the best epoch's, not the last) is ``monitor.EpochMonitor``'s
business.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class PlateauRule:
    patience: int
    rel_tol: float
    min_epochs: int
    window: int = 1
    noise_sds: float = 0.0

    def __post_init__(self) -> None:
        if (
            self.patience < 1
            or self.rel_tol < 0
            or self.min_epochs < 1
            or self.window < 1
            or self.noise_sds < 0
        ):
            raise ValueError(
                "need patience >= 1, rel_tol >= 0, min_epochs >= 1, window >= 1, noise_sds >= 0"
            )

    def smoothed(self, objectives: list[float]) -> np.ndarray:
        """Jbar after each epoch from the window-th on (running means of ``window`` epochs)."""
        values = np.asarray(objectives, dtype=np.float64)
        if len(values) < self.window:
            return np.empty(0)
        return np.convolve(values, np.full(self.window, 1.0 / self.window), mode="valid")

    def noise_tolerance(self, objectives: list[float]) -> float:
        """noise_sds * s_e * sqrt(2 min(p, w)) / w: the sd of Jbar_{e-p} - Jbar_e on a flat,
        jittering floor, from the sd s_e of the last ``window`` objectives (0 when w = 1)."""
        if self.window < 2 or self.noise_sds == 0 or len(objectives) < self.window:
            return 0.0
        spread = float(np.std(objectives[-self.window :], ddof=1))
        return (
            self.noise_sds * spread * math.sqrt(2 * min(self.patience, self.window)) / self.window
        )

    def has_plateaued(self, objectives: list[float]) -> bool:
        """``objectives[i]`` is J after epoch i + 1."""
        if len(objectives) < max(self.min_epochs, self.window + self.patience):
            return False
        means = self.smoothed(objectives)
        before, now = means[-1 - self.patience], means[-1]
        tolerance = max(self.rel_tol * abs(before), self.noise_tolerance(objectives))
        return bool(before - now <= tolerance)
