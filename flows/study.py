"""Stage ``study``: the lambda study (ascending, descending, cold), resumable, one MLflow run per point.

The chains are split into ``lambda_study.shards`` shards (``l2path.shards``); each shard
is one ``train-shard`` task, run where ``scale_out`` says (threads, or Dask workers).
The results table is then built from the point store, in plan order.
"""
from __future__ import annotations

from prefect import flow, get_run_logger

from flows.scale_out import shard_runner
from l2path.config import load_params
from l2path.shards import shard_chains
from l2path.study import study_chains
from tasks import tracking
from tasks.stage import require_inputs, section_params, stage_tags, tracked_stage
from tasks.study import open_study, train_shard, write_results


@flow(name="study", description="Warm-started lambda continuation up and down, and cold starts, on MNIST.")
def study(params_file: str = "params.yaml", execution_id: str | None = None) -> dict:
    params = load_params(params_file)
    require_inputs(params.paths.prepared, hint="run the prepare stage first (dvc repro prepare)")
    logger = get_run_logger()
    logged = {f"lambda_study.{k}": v for k, v in section_params(params, "lambda_study").items()}
    with tracked_stage(params, "study", logged, execution_id, run_name="lambda study") as study_run_id:
        tags = stage_tags("study.point", execution_id)
        shards = shard_chains(study_chains(params.lambda_study), params.lambda_study.shards)
        logger.info("%d chains in %d shard(s), run by the %s executor", sum(map(len, shards)), len(shards),
                    params.scale_out.executor)
        with shard_runner(params.scale_out, len(shards), tracking.tracking_uri()) as task_runner:
            futures = [task_runner.submit(train_shard, parameters={"params": params, "chain_ids": chain_ids,
                                                                    "study_run_id": study_run_id, "tags": tags})
                       for chain_ids in shards]
            trained = [future.result() for future in futures]
        logger.info("%d points trained now", sum(trained))
        whole_study = open_study(params, label=tags["l2path.execution_id"])  # every shard's points, from the store
        tracking.log_dataset(study_run_id, params.paths.prepared, "mnist-nielsen-split",
                             digest=whole_study.data_md5, context="training")
        metrics = write_results(params, whole_study)
        for path in (params.paths.study_results, params.paths.monotonicity_table, params.paths.monotonicity_metrics):
            tracking.log_artifact(study_run_id, path)
        tracking.log_metrics(study_run_id, {f"{schedule}.{metric}.{key}": value
                                            for schedule, by_metric in metrics.items()
                                            for metric, values in by_metric.items()
                                            for key, value in values.items()})
    return metrics


if __name__ == "__main__":
    from flows.cli import run_stage

    run_stage(study)
