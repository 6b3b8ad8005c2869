"""Stage ``train``: one model at one lambda with Nielsen's SGD, tracked every epoch."""

from __future__ import annotations

from prefect import flow

from edge.stage import open_stage
from l2path.config import load_params
from tasks.train import train_model


@flow(name="train", description="Train Nielsen's network at one lambda; log every epoch to MLflow.")
def train(params_file: str = "params.yaml", execution_id: str | None = None) -> dict:
    params = load_params(params_file)
    run_name = f"train lambda={params.train.lam:g} seed={params.train.seed}"
    with open_stage(params, "train", execution_id, run_name) as stage:
        return train_model(params, stage)


if __name__ == "__main__":
    from edge.cli import run_stage

    run_stage(train)
