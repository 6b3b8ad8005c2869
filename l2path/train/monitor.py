"""Per-epoch monitoring of a stack during SGD: the plateau stop, the best epoch's iterate and
the within-stage noise (an ``sgd.EpochCallback``)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
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
    its J is non-finite or ``rule`` says its running mean has plateaued.

    ``history[k]`` holds model k's records (dicts with "epoch" and those numbers), one per
    epoch it trained; ``best[k]`` is a copy of model k at its lowest full-batch J so far
    (``best_epoch[k]``): the iterate a stage reports, never simply the last one.

    A model with ``follow[k] = j`` ignores the rule and stops when model j stops (a control
    trains for as many epochs as its chain point); ``stop_after[k] = e`` stops it after epoch e.
    """

    train: Split
    cost: Cost
    lams: list[float]
    rule: PlateauRule
    history: list[list[dict]] = field(default_factory=list)
    stopped: list[bool] = field(default_factory=list)
    best: list[StackedMLP | None] = field(default_factory=list)
    best_epoch: list[int] = field(default_factory=list)
    best_objective: list[float] = field(default_factory=list)
    follow: list[int | None] = field(default_factory=list)
    stop_after: list[int | None] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.follow = self.follow or [None] * len(self.lams)
        self.stop_after = self.stop_after or [None] * len(self.lams)
        self.history = [[] for _ in self.lams]
        self.stopped = [False] * len(self.lams)
        self.best = [None] * len(self.lams)
        self.best_epoch = [0] * len(self.lams)
        self.best_objective = [math.inf] * len(self.lams)

    def noise(self, k: int, key: str) -> float:
        """Sample standard deviation of ``key`` over model k's last ``rule.window`` epochs
        (NaN with fewer than two): the within-stage noise of its SGD phase."""
        values = [r[key] for r in self.history[k][-self.rule.window :]]
        return float(np.std(values, ddof=1)) if len(values) > 1 else math.nan

    def __call__(self, epoch: int, net: StackedMLP) -> list[bool]:
        finite = net.is_finite().tolist()
        active = [k for k in range(len(self.lams)) if not self.stopped[k] and finite[k]]
        self.stopped = [s or not f for s, f in zip(self.stopped, finite)]
        if active:
            sub = net.select(torch.tensor(active))
            losses, squares = split_losses(sub, self.train, self.cost), weight_penalty(sub)
            n = len(self.train)
            for j, k in enumerate(active):
                record = {
                    "epoch": epoch,
                    "objective": float(losses["loss"][j] + self.lams[k] * squares[j] / (2 * n)),
                    "data_loss": float(losses["loss"][j]),
                    "train_mse": float(losses["mse"][j]),
                    "train_accuracy": float(losses["accuracy"][j]),
                    "weight_l2": float(squares[j].sqrt()),
                }
                self.history[k].append(record)
                if self.best[k] is None or record["objective"] < self.best_objective[k]:
                    self.best[k], self.best_epoch[k], self.best_objective[k] = (
                        sub.model(j),
                        epoch,
                        record["objective"],
                    )
                objectives = [r["objective"] for r in self.history[k]]
                ruled = self.follow[k] is None and self.stop_after[k] is None
                self.stopped[k] = not math.isfinite(objectives[-1]) or (
                    ruled and self.rule.has_plateaued(objectives)
                )
        for k, (leader, last) in enumerate(zip(self.follow, self.stop_after)):
            self.stopped[k] = (
                self.stopped[k]
                or (leader is not None and self.stopped[leader])
                or (last is not None and epoch >= last)
            )
        return list(self.stopped)
