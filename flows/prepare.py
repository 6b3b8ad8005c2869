"""Stage ``prepare``: MNIST from the first source that verifies, then Nielsen's split."""

from __future__ import annotations

from prefect import flow

from edge.stage import open_stage
from l2path.config import load_params
from tasks.prepare import build_split, fetch_raw


@flow(name="prepare", description="Obtain verified MNIST IDX files and write Nielsen's split.")
def prepare(params_file: str = "params.yaml", execution_id: str | None = None) -> dict:
    params = load_params(params_file)
    with open_stage(params, "prepare", execution_id) as stage:
        fetch_raw(params, stage)
        return build_split(params, stage)


if __name__ == "__main__":
    from edge.cli import run_stage

    run_stage(prepare)
