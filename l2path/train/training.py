"""The ``train`` stage's computation: one model at one lambda, evaluated every epoch."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

from ..model.costs import get_cost
from ..data.dataset import Dataset
from ..model.init import init_stack
from .metrics import evaluate
from ..model.network import DTYPES, StackedMLP
from .sgd import SGDSettings, train_sgd


@dataclass
class TrainResult:
    net: StackedMLP
    history: list[
        dict[str, float]
    ]  # one record per epoch: "epoch", "seconds" and metrics.evaluate's keys
    final: dict[str, float]
    diverged: bool


def train_single(
    config, data: Dataset, on_epoch: Callable[[dict[str, float]], None] | None = None
) -> TrainResult:
    """Train one model with the ``train`` params (``l2path.config.Train``) on ``data``.

    ``on_epoch`` receives each epoch's record as soon as it is computed (for progress and
    tracking); evaluation time is not counted in "seconds".
    """
    cost = get_cost(config.model.cost)
    net = init_stack(config.model.sizes, [config.init], [config.seed], DTYPES[config.model.dtype])
    settings = SGDSettings(
        eta=[config.eta],
        lam=[config.lam],
        seeds=[config.seed],
        batch_size=config.batch_size,
        epochs=config.epochs,
    )
    history: list[dict[str, float]] = []
    clock = {"last": time.perf_counter()}

    def record_epoch(epoch: int, trained: StackedMLP) -> bool:
        seconds = time.perf_counter() - clock["last"]
        record = {
            "epoch": epoch,
            "seconds": seconds,
            **evaluate(trained, data, cost, [config.lam])[0],
        }
        history.append(record)
        if on_epoch is not None:
            on_epoch(record)
        clock["last"] = time.perf_counter()
        return False

    outcome = train_sgd(net, data.train.x, data.train.y, cost, settings, callbacks=[record_epoch])
    return TrainResult(
        net=outcome.net, history=history, final=history[-1], diverged=outcome.diverged[0]
    )
