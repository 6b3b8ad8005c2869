"""Per-epoch monitoring of a stack during SGD, and the plateau stop (an ``sgd.EpochCallback``)."""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from ..data.dataset import Split
from ..model.costs import Cost
from ..model.network import StackedMLP
from .metrics import split_losses, weight_penalty
from .plateau import PlateauRule


@dataclass
class EpochMonitor:
    """After each epoch, for every model still training: J_lambda = L + lambda ||w||^2 / (2n),
    the data loss L, in-sample MSE and accuracy on ``train`` and ||w||; a model stops when
    its J is non-finite or ``rule`` says it has plateaued.

    ``history[k]`` holds model k's records (dicts with "epoch" and those numbers), one per
    epoch it trained.
    """

    train: Split
    cost: Cost
    lams: list[float]
    rule: PlateauRule
    history: list[list[dict]] = field(default_factory=list)
    stopped: list[bool] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.history = [[] for _ in self.lams]
        self.stopped = [False] * len(self.lams)

    def __call__(self, epoch: int, net: StackedMLP) -> list[bool]:
        finite = net.is_finite().tolist()
        active = [k for k in range(len(self.lams)) if not self.stopped[k] and finite[k]]
        self.stopped = [s or not f for s, f in zip(self.stopped, finite)]
        if active:
            sub = net.select(torch.tensor(active))
            losses, squares = split_losses(sub, self.train, self.cost), weight_penalty(sub)
            n = len(self.train)
            for j, k in enumerate(active):
                record = {"epoch": epoch, "objective": float(losses["loss"][j] + self.lams[k] * squares[j] / (2 * n)),
                          "data_loss": float(losses["loss"][j]), "train_mse": float(losses["mse"][j]),
                          "train_accuracy": float(losses["accuracy"][j]), "weight_l2": float(squares[j].sqrt())}
                self.history[k].append(record)
                objectives = [r["objective"] for r in self.history[k]]
                self.stopped[k] = not math.isfinite(objectives[-1]) or self.rule.has_plateaued(objectives)
        return list(self.stopped)
