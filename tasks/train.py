"""Task of the ``train`` stage: train one model, write its checkpoint, metrics and history."""

from __future__ import annotations

import pandas as pd
import torch
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from edge import tracking
from edge.progress import progress
from edge.stage import StageRun
from l2path import atomic
from l2path.config import Params
from l2path.data.dataset import load_dataset
from l2path.model.checkpoint import save_model
from l2path.model.network import DTYPES
from l2path.train.training import train_single


@task(name="train-model", cache_policy=NO_CACHE)
def train_model(params: Params, stage: StageRun) -> dict:
    """Train with params.train, every epoch logged; write checkpoint, metrics JSON and per-epoch
    CSV."""
    config, paths = params.train, params.paths
    logger = get_run_logger()
    torch.set_num_threads(params.runtime.threads)
    data = load_dataset(paths.prepared, DTYPES[config.model.dtype], n_train=config.model.n_train)

    model_params = {
        "lambda": config.lam,
        "eta": config.eta,
        "seed": config.seed,
        "epochs": config.epochs,
    }
    # The model's metrics are its training history: each epoch is logged linked to it.
    with (
        tracking.logged_model(
            stage.run_id,
            f"train-lambda{config.lam:g}-seed{config.seed}",
            paths.train_checkpoint,
            model_params,
        ) as model_id,
        progress(f"train: {config.epochs} epochs", config.epochs, "epochs", "train-epochs") as bar,
    ):

        def on_epoch(record: dict) -> None:
            bar.advance()
            logger.info(
                "epoch %d/%d: J=%.5f  train MSE=%.5f  validation acc=%.4f  test acc=%.4f  (%.2f s)",
                record["epoch"],
                config.epochs,
                record["objective"],
                record["train_mse"],
                record["validation_accuracy"],
                record["test_accuracy"],
                record["seconds"],
            )
            tracking.log_metrics(stage.run_id, record, step=int(record["epoch"]), model_id=model_id)

        result = train_single(config, data, on_epoch=on_epoch)
        save_model(
            result.net,
            0,
            paths.train_checkpoint,
            meta={**model_params, "epochs": len(result.history)},
        )
    history = pd.DataFrame(result.history)
    # wall times: never in a DVC output
    stage.timings["epoch_seconds"] = history["seconds"].round(3).tolist()
    summary = {
        **{k: v for k, v in result.final.items() if k != "seconds"},
        "n_train": len(data.train),
        "diverged": result.diverged,
    }

    atomic.write_json(paths.train_metrics, summary)
    atomic.write_csv(paths.train_epochs, history.drop(columns=["seconds"]))
    return summary
