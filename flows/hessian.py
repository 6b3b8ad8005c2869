"""Stage ``hessian``: curvature of J_lambda at the study's points; did non-monotone steps start at saddles?"""
from __future__ import annotations

from prefect import flow, get_run_logger

from l2path.config import load_params
from tasks import tracking
from tasks.hessian import analyse_curvature
from tasks.stage import require_inputs, section_params, stage_tags, tracked_stage


@flow(name="hessian", description="Hessian spectra, saddle classification, escapes and interpolations.")
def hessian(params_file: str = "params.yaml", execution_id: str | None = None) -> dict:
    params = load_params(params_file)
    paths = params.paths
    require_inputs(paths.study_results, paths.monotonicity_table, hint="run the study stage first (dvc repro study)")
    logger = get_run_logger()
    with tracked_stage(params, "hessian", section_params(params, "hessian"), execution_id) as run_id:
        metrics = analyse_curvature(params, stage_tags("hessian.point", execution_id))
        for path in (paths.hessian_table, paths.escapes, paths.interpolation, paths.saddle_steps, paths.hessian_metrics):
            tracking.log_artifact(run_id, path)
        tracking.log_metrics(run_id, {f"{schedule}.{group}.{key}": value for schedule, groups in metrics.items()
                                      for group, counts in groups.items() for key, value in counts.items()})
        logger.info("classes and non-monotone steps: %s", metrics)
    return metrics


if __name__ == "__main__":
    from flows.cli import run_stage

    run_stage(hessian)
