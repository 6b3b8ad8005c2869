"""A per-model stopping rule for the SGD phase: stop when the objective has plateaued.

Model k stops after epoch e >= min_epochs when its objective improved by at most
rel_tol * |J_{e - patience}| over the last ``patience`` epochs:

    J_{e - patience} - J_e <= rel_tol * |J_{e - patience}|

An objective that rose over the window also counts as a plateau (SGD noise floor).
Used as an ``EpochCallback`` of ``sgd.train_sgd``; max epochs is the trainer's own limit.
"""
from __future__ import annotations

from typing import Callable

import torch

from .network import StackedMLP


class PlateauStop:
    def __init__(self, objective: Callable[[StackedMLP], torch.Tensor], patience: int = 3,
                 rel_tol: float = 1e-3, min_epochs: int = 1):
        if patience < 1 or rel_tol < 0 or min_epochs < 1:
            raise ValueError("need patience >= 1, rel_tol >= 0, min_epochs >= 1")
        self.objective, self.patience, self.rel_tol, self.min_epochs = objective, patience, rel_tol, min_epochs
        self.history: list[torch.Tensor] = []  # (K,) objective after each epoch

    def __call__(self, epoch: int, net: StackedMLP) -> list[bool]:
        self.history.append(self.objective(net).to(torch.float64))
        if epoch < self.min_epochs or len(self.history) <= self.patience:
            return [False] * net.n_models
        before, now = self.history[-1 - self.patience], self.history[-1]
        return ((before - now) <= self.rel_tol * before.abs()).tolist()
