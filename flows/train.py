"""Stage ``train``: one model at one lambda with Nielsen's SGD, tracked every epoch."""
from __future__ import annotations

from prefect import flow, get_run_logger

from l2path.config import load_params
from l2path.split import file_md5
from tasks import tracking
from tasks.stage import require_inputs, section_params, tracked_stage
from tasks.train import train_model


@flow(name="train", description="Train Nielsen's network at one lambda; log every epoch to MLflow.")
def train(params_file: str = "params.yaml", execution_id: str | None = None) -> dict:
    params = load_params(params_file)
    require_inputs(params.paths.prepared, hint="run the prepare stage first (dvc repro prepare)")
    logger = get_run_logger()
    config = params.train
    run_name = f"train lambda={config.lam:g} seed={config.seed}"
    with tracked_stage(params, "train", section_params(params, "train"), execution_id, run_name) as run_id:
        tracking.log_dataset(run_id, params.paths.prepared, "mnist-nielsen-split",
                             digest=file_md5(params.paths.prepared), context="training")

        def on_epoch(record: dict) -> None:
            logger.info("epoch %d/%d: J=%.5f  train MSE=%.5f  validation acc=%.4f  test acc=%.4f  (%.2f s)",
                        record["epoch"], config.epochs, record["objective"], record["train_mse"],
                        record["validation_accuracy"], record["test_accuracy"], record["seconds"])
            tracking.log_metrics(run_id, record, step=int(record["epoch"]))

        result = train_model(params, on_epoch=on_epoch)
        tracking.log_artifact(run_id, params.paths.train_checkpoint, "checkpoint")
        tracking.log_artifact(run_id, params.paths.train_metrics)
        tracking.log_artifact(run_id, params.paths.train_epochs)
    return result["summary"]


if __name__ == "__main__":
    from flows.cli import run_stage

    run_stage(train)
