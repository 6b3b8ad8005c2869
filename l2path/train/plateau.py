"""The stopping rule of the SGD phase: stop when the smoothed objective has plateaued.

After each epoch e the full-batch objective J_e is recorded. Single epochs are noisy (SGD
with a constant rate jitters around its floor), so the rule looks at the running mean over
the last ``window`` epochs, Jbar_e = mean(J_{e-window+1} .. J_e), and stops after epoch
e >= max(min_epochs, window + patience) when it improved by at most rel_tol * |Jbar| over
the last ``patience`` epochs:

    Jbar_{e - patience} - Jbar_e <= rel_tol * |Jbar_{e - patience}|

A running mean that rose also counts as a plateau. ``window = 1`` is the plain rule on
single epochs. Max epochs is the trainer's own limit. Which iterate a stage reports (the
best epoch's, not the last) is ``monitor.EpochMonitor``'s business.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class PlateauRule:
    patience: int
    rel_tol: float
    min_epochs: int
    window: int = 1

    def __post_init__(self) -> None:
        if self.patience < 1 or self.rel_tol < 0 or self.min_epochs < 1 or self.window < 1:
            raise ValueError("need patience >= 1, rel_tol >= 0, min_epochs >= 1, window >= 1")

    def smoothed(self, objectives: list[float]) -> np.ndarray:
        """Jbar after each epoch from the window-th on (running means of ``window`` epochs)."""
        values = np.asarray(objectives, dtype=np.float64)
        if len(values) < self.window:
            return np.empty(0)
        return np.convolve(values, np.full(self.window, 1.0 / self.window), mode="valid")

    def has_plateaued(self, objectives: list[float]) -> bool:
        """``objectives[i]`` is J after epoch i + 1."""
        if len(objectives) < max(self.min_epochs, self.window + self.patience):
            return False
        means = self.smoothed(objectives)
        before, now = means[-1 - self.patience], means[-1]
        return bool(before - now <= self.rel_tol * abs(before))
