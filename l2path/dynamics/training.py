"""Train every model of the dynamics stage, one stack per (seed, eta), and record every epoch.

Each stack runs in its own process when ``workers`` > 1 (spawned, one torch thread each):
its per-step work is small, so two stacks side by side on two cores take about as long as
one. The rows come back through a queue, in each stack's order, and the final weights as
arrays.
"""

from __future__ import annotations

import multiprocessing
import os
import queue as queues
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np
import pandas as pd
import torch

from ..data.dataset import Dataset
from ..model.costs import get_cost
from ..model.init import init_stack
from ..model.network import DTYPES, StackedMLP
from ..train.sgd import SGDSettings, train_sgd
from .plan import Model, cost_name, model_epochs, stacks
from .records import epoch_records, weight_records


def layer_names(sizes: list[int]) -> list[str]:
    return [f"layer{layer}" for layer in range(1, len(sizes))]


def _rename_weight_stats(record: dict[str, float]) -> dict[str, float]:
    """``layerL_weight_l2`` (metrics.layer_statistics) -> ``layerL_l2``: one naming per table."""
    return {key.replace("_weight_", "_"): value for key, value in record.items()}


@dataclass
class DynamicsResult:
    epochs: pd.DataFrame  # one row per (init, seed, eta, lambda, epoch)
    final: dict[Model, StackedMLP]  # each model's weights after its last epoch (a stack of one)


def fully_recorded(config, model: Model, epoch: int, last: int) -> bool:
    """Whether ``epoch`` of a model that runs ``last`` epochs gets the full record (the pass over
    the training split: its losses, the gradient terms, saturation) or only the weight record:
    the question's setting in its first ``question_epochs`` epochs, every model at epoch 0,
    every ``gradient_every``-th epoch and in its last ``trend_epochs`` epochs. A lambda = 0
    control has no decay term to set its gradient terms against: the weight record always,
    but at epoch 0."""
    if model.lam == 0:
        return epoch == 0
    if epoch == 0 or epoch % config.gradient_every == 0 or epoch > last - config.trend_epochs:
        return True
    return model.eta == config.eta and epoch <= config.question_epochs


def train_stack(
    config,
    data: Dataset,
    models: list[Model],
    epochs: dict[Model, int],
    emit: Callable[[Model, dict], None],
) -> dict[Model, StackedMLP]:
    """Train one stack (models sharing a seed and a cost) with Nielsen's SGD, each for its own
    number of epochs, and ``emit`` every model's row of every epoch (epoch 0: the initial
    weights)."""
    cost = get_cost(cost_name(models[0], config))
    dtype = DTYPES[config.model.dtype]
    seed = models[0].seed
    x, y = data.train.x.to(dtype), data.train.y.to(dtype)
    net = init_stack(
        config.model.sizes, [model.init for model in models], [seed] * len(models), dtype
    )
    settings = SGDSettings(
        eta=[model.eta for model in models],
        lam=[model.lam for model in models],
        seeds=[seed] * len(models),
        batch_size=config.batch_size,
        epochs=max(epochs[model] for model in models),
    )
    clock = {"last": time.perf_counter()}

    def record(epoch: int, trained: StackedMLP) -> list[bool]:
        active = [k for k, model in enumerate(models) if epochs[model] >= epoch]
        full = [k for k in active if fully_recorded(config, models[k], epoch, epochs[models[k]])]
        light = [k for k in active if k not in full]
        values = {}
        if full:
            part = trained.select(torch.tensor(full))
            values.update(
                zip(
                    full,
                    epoch_records(
                        part,
                        data,
                        cost,
                        [models[k].eta for k in full],
                        [models[k].lam for k in full],
                        config.batch_size,
                        config.mechanism_images,
                    ),
                )
            )
        if light:
            values.update(
                zip(light, weight_records(trained.select(torch.tensor(light)), data, cost))
            )
        seconds = time.perf_counter() - clock["last"]
        for k in active:
            model = models[k]
            emit(
                model,
                {
                    "init": model.init,
                    "seed": seed,
                    "eta": model.eta,
                    "lambda": model.lam,
                    "cost": cost.name,
                    "epoch": epoch,
                    "seconds": seconds if epoch else 0.0,
                    **_rename_weight_stats(values[k]),
                },
            )
        clock["last"] = time.perf_counter()
        return [epochs[model] <= epoch for model in models]

    record(0, net)
    trained = train_sgd(net, x, y, cost, settings, callbacks=[record]).net
    return {model: trained.model(k) for k, model in enumerate(models)}


def jobs(config) -> list[tuple[list[Model], dict[Model, int]]]:
    """The stacks: per seed, one per (eta, cost) (they share the seed's mini-batch order but
    not their length or cost), the largest first (by model-epochs) so that parallel workers
    finish together."""
    epochs = model_epochs(config)
    found = []
    for models in stacks(epochs).values():
        for eta, cost in dict.fromkeys((model.eta, model.cost) for model in models):
            part = [model for model in models if (model.eta, model.cost) == (eta, cost)]
            found.append((part, {model: epochs[model] for model in part}))
    return sorted(found, key=lambda job: -sum(job[1].values()))


def run_dynamics(
    config, data: Dataset, on_epoch: Callable[[Model, dict], None] | None = None
) -> DynamicsResult:
    """Train every model of ``plan.model_epochs`` and record each of its epochs.

    ``config`` is the ``dynamics`` params section (``l2path.config.Dynamics``). Each stack
    equals its models trained alone (the fast path of ``sgd.train_sgd``, with the exact
    decay W = s V in every dtype). With ``config.workers`` > 1 the stacks run in that many
    processes. Rows carry ``seconds``, the stack's wall time for the epoch; the table lists
    the stacks in ``jobs`` order, each in its own order.
    """
    work = jobs(config)
    rows: dict[int, list[dict]] = {index: [] for index in range(len(work))}
    final: dict[Model, StackedMLP] = {}

    def collect(index: int, model: Model, row: dict) -> None:
        rows[index].append(row)
        if on_epoch is not None:
            on_epoch(model, row)

    if config.workers == 1:
        for index, (models, epochs) in enumerate(work):
            final.update(
                train_stack(
                    config, data, models, epochs, lambda model, row, i=index: collect(i, model, row)
                )
            )
    else:
        final.update(_in_processes(config, data, work, config.workers, collect))
    return DynamicsResult(
        pd.DataFrame([row for index in sorted(rows) for row in rows[index]]), final
    )


def _worker(
    config,
    data: Dataset,
    index: int,
    models: list[Model],
    epochs: dict[Model, int],
    out,
    parent: int,
) -> None:
    """One stack in a spawned process: rows and then the final weights (as arrays) go to ``out``."""
    torch.set_num_threads(1)

    def emit(model: Model, row: dict) -> None:
        if os.getppid() != parent:  # the stage was killed: stop, nobody reads the rows
            os._exit(1)
        out.put(("row", index, (model, row)))

    try:
        final = train_stack(config, data, models, epochs, emit)
        out.put(
            (
                "done",
                index,
                {
                    model: ([w.numpy() for w in net.weights], [b.numpy() for b in net.biases])
                    for model, net in final.items()
                },
            )
        )
    except BaseException as error:  # reported to the parent, which raises it
        out.put(("error", index, f"{type(error).__name__}: {error}"))


def _in_processes(config, data: Dataset, work, workers: int, collect) -> dict[Model, StackedMLP]:
    context = multiprocessing.get_context("spawn")
    out = context.Queue()
    pending, running, final = list(enumerate(work)), {}, {}
    try:
        while pending or running:
            while pending and len(running) < workers:
                index, (models, epochs) = pending.pop(0)
                process = context.Process(
                    target=_worker,
                    args=(config, data, index, models, epochs, out, os.getpid()),
                    daemon=True,
                )
                process.start()
                running[index] = process
            try:
                kind, index, payload = out.get(timeout=5)
            except queues.Empty:
                dead = [i for i, process in running.items() if not process.is_alive()]
                if dead:
                    raise RuntimeError(
                        f"a dynamics worker died (exit code {running[dead[0]].exitcode})"
                    )
                continue
            if kind == "row":
                collect(index, *payload)
            elif kind == "error":
                raise RuntimeError(f"a dynamics worker failed: {payload}")
            else:
                final.update(
                    {
                        model: StackedMLP(
                            [torch.from_numpy(w) for w in weights],
                            [torch.from_numpy(b) for b in biases],
                        )
                        for model, (weights, biases) in payload.items()
                    }
                )
                running.pop(index).join()
    finally:
        for process in running.values():
            process.kill()
    return final
