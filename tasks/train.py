"""Task of the ``train`` stage: train one model, write its checkpoint, metrics and history."""
from __future__ import annotations

import pandas as pd
import torch
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from edge import tracking
from edge.stage import StageRun
from l2path import atomic
from l2path.config import Params
from l2path.data.dataset import load_dataset
from l2path.model.checkpoint import save_model
from l2path.model.network import DTYPES
from l2path.train.training import train_single


@task(name="train-model", cache_policy=NO_CACHE)
def train_model(params: Params, stage: StageRun) -> dict:
    """Train with params.train, every epoch logged; write checkpoint, metrics JSON and per-epoch CSV."""
    config, paths = params.train, params.paths
    logger = get_run_logger()
    torch.set_num_threads(params.runtime.threads)
    data = load_dataset(paths.prepared, DTYPES[config.model.dtype], n_train=config.model.n_train)

    def on_epoch(record: dict) -> None:
        logger.info("epoch %d/%d: J=%.5f  train MSE=%.5f  validation acc=%.4f  test acc=%.4f  (%.2f s)",
                    record["epoch"], config.epochs, record["objective"], record["train_mse"],
                    record["validation_accuracy"], record["test_accuracy"], record["seconds"])
        tracking.log_metrics(stage.run_id, record, step=int(record["epoch"]))

    result = train_single(config, data, on_epoch=on_epoch)
    save_model(result.net, 0, paths.train_checkpoint,
               meta={"lambda": config.lam, "eta": config.eta, "seed": config.seed, "epochs": len(result.history)})
    seconds = [r["seconds"] for r in result.history]
    summary = {**result.final, "n_train": len(data.train), "diverged": result.diverged,
               "seconds_per_epoch": sum(seconds) / len(seconds)}
    atomic.write_json(paths.train_metrics, summary)
    atomic.write_csv(paths.train_epochs, pd.DataFrame(result.history))
    return summary
