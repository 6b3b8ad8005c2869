"""Stage ``study``: the lambda study (ascending, descending, cold), resumable, one MLflow run per
point.

The chains are split into ``lambda_study.shards`` shards (``l2path.study.shards``); each
shard is one ``train-shard`` task, run where ``scale_out`` says (threads, or Dask workers).
The results tables are then written from the point store, in plan order.
"""

from __future__ import annotations

from prefect import flow

from edge.scale_out import shard_runner
from edge.stage import open_stage
from l2path.config import load_params
from l2path.study.planner import study_chains
from l2path.study.shards import shard_chains
from tasks.study import train_shard, write_study_results


@flow(
    name="study",
    description="Warm-started lambda continuation up and down, and cold starts, on MNIST.",
)
def study(params_file: str = "params.yaml", execution_id: str | None = None) -> dict:
    params = load_params(params_file)
    with open_stage(params, "study", execution_id, run_name="lambda study") as stage:
        shards = shard_chains(study_chains(params.lambda_study), params.lambda_study.shards)
        with shard_runner(params.scale_out, len(shards)) as runner:
            futures = [
                runner.submit(
                    train_shard,
                    parameters={"params": params, "chain_ids": chain_ids, "stage": stage},
                )
                for chain_ids in shards
            ]
            for future in futures:
                future.result()
        return write_study_results(params, stage)


if __name__ == "__main__":
    from edge.cli import run_stage

    run_stage(study)
