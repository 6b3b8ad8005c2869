"""The stopping rule of the SGD phase: stop when the objective has plateaued.

After epoch e >= min_epochs (objectives J_1 .. J_e recorded after each epoch), stop when
the objective improved by at most rel_tol * |J_{e - patience}| over the last ``patience``
epochs:

    J_{e - patience} - J_e <= rel_tol * |J_{e - patience}|

An objective that rose over the window also counts as a plateau (SGD noise floor). Max
epochs is the trainer's own limit.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PlateauRule:
    patience: int
    rel_tol: float
    min_epochs: int

    def __post_init__(self) -> None:
        if self.patience < 1 or self.rel_tol < 0 or self.min_epochs < 1:
            raise ValueError("need patience >= 1, rel_tol >= 0, min_epochs >= 1")

    def has_plateaued(self, objectives: list[float]) -> bool:
        """``objectives[i]`` is J after epoch i + 1."""
        epoch = len(objectives)
        if epoch < self.min_epochs or epoch <= self.patience:
            return False
        before, now = objectives[-1 - self.patience], objectives[-1]
        return before - now <= self.rel_tol * abs(before)
