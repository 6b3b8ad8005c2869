"""Task of the ``train`` stage: train one model, write its checkpoint, metrics and history."""
from __future__ import annotations

from typing import Callable

import pandas as pd
import torch
from prefect import task
from prefect.cache_policies import NO_CACHE

from l2path import atomic
from l2path.checkpoint import save_model
from l2path.config import Params
from l2path.dataset import load_dataset
from l2path.training import DTYPES, train_single


@task(name="train-model", cache_policy=NO_CACHE)
def train_model(params: Params, on_epoch: Callable[[dict], None] | None = None) -> dict:
    """Train with params.train; write checkpoint, metrics JSON and per-epoch CSV. Returns the summary."""
    config, paths = params.train, params.paths
    torch.set_num_threads(params.runtime.threads)
    data = load_dataset(paths.prepared, DTYPES[config.dtype], n_train=config.n_train)
    result = train_single(config, data, on_epoch=on_epoch)
    save_model(result.net, 0, paths.train_checkpoint,
               meta={"lambda": config.lam, "eta": config.eta, "seed": config.seed, "epochs": len(result.history)})
    seconds = [r["seconds"] for r in result.history]
    summary = {**result.final, "n_train": len(data.train), "diverged": result.diverged,
               "seconds_per_epoch": sum(seconds) / len(seconds)}
    atomic.write_json(paths.train_metrics, summary)
    atomic.write_csv(paths.train_epochs, pd.DataFrame(result.history))
    return {"summary": summary, "history": result.history}
