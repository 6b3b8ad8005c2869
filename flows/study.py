"""Stage ``study``: the lambda study (ascending, descending, cold), resumable, one MLflow run per point."""
from __future__ import annotations

from prefect import flow, get_run_logger

from l2path.config import load_params
from tasks import tracking
from tasks.stage import require_inputs, section_params, stage_tags, tracked_stage
from tasks.study import log_point, open_study, train_round, write_results


def _describe(record: dict) -> str:
    state = record["message"] or ("certified" if record["certified"] else "not certified")
    return (f"{record['key']}: lambda={record['lambda']:g} epochs={record['epochs']} J={record['objective']:.6g} "
            f"train MSE={record['train_mse']:.6g} |grad J|={record['grad_norm']:.2e} ({state})")


@flow(name="study", description="Warm-started lambda continuation up and down, and cold starts, on MNIST.")
def study(params_file: str = "params.yaml", execution_id: str | None = None) -> dict:
    params = load_params(params_file)
    require_inputs(params.paths.prepared, hint="run the prepare stage first (dvc repro prepare)")
    logger = get_run_logger()
    logged = {f"lambda_study.{k}": v for k, v in section_params(params, "lambda_study").items()}
    with tracked_stage(params, "study", logged, execution_id, run_name="lambda study") as study_run_id:
        tags = stage_tags("study.point", execution_id)
        runner = open_study(params, label=tags["l2path.execution_id"])
        tracking.log_dataset(study_run_id, params.paths.prepared, "mnist-nielsen-split",
                             digest=runner.data_md5, context="training")
        logger.info("%d points planned in %d chains; %d finished earlier", len(runner.points),
                    len(runner.chains), runner.resumed)
        for record in runner.results():  # finished before a kill, but never logged
            if record["mlflow_run_id"] is None:
                log_point(params, runner, record, study_run_id, tags)
        while batch := runner.next_round():
            logger.info("round of %d stacked points: %s ...", len(batch), ", ".join(p.key for p in batch[:4]))
            for record in train_round(runner, batch):
                logger.info(_describe(record))
                log_point(params, runner, record, study_run_id, tags)
        metrics = write_results(params, runner)
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
