"""Task of the ``hessian`` stage: curvature of the study's points, tables, spectra, MLflow runs."""

from __future__ import annotations
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from edge import tracking
from edge.progress import progress
from edge.stage import StageRun
from l2path import atomic
from l2path.config import Params
from l2path.curvature.classes import PointClass
from l2path.data.dataset import load_dataset
from l2path.landscape import analyse_study, select_points, summary
from l2path.landscape_records import CurvaturePoint, spectrum_path
from l2path.rows import write_rows
from l2path.study.results import read_results
from l2path.study.store import PointStore


def _spectrum_metrics(point: CurvaturePoint) -> dict[str, float]:
    """A point's curvature numbers as MLflow metrics."""
    return {
        "lambda_max": point.lambda_max,
        "lambda_min": point.lambda_min,
        "lambda_max_residual": point.lambda_max_residual,
        "lambda_min_residual": point.lambda_min_residual,
        "index_estimate": point.index_estimate,
        "index_stderr": point.index_stderr,
        "trace": point.trace,
        "trace_stderr": point.trace_stderr,
        "top_converged": point.top_converged,
        "bottom_converged": point.bottom_converged,
        "hvps": point.hvps,
        "saddle": point.curvature_class is PointClass.SADDLE,
        "critical": point.critical,
    }


def log_point(
    params: Params,
    stage: StageRun,
    point: CurvaturePoint,
    spectrum_file: Path,
    checkpoint_run_id: str | None,
) -> None:
    """A child run of the hessian run, linked to the run that trained the point."""
    tags = {
        **stage.child_tags("point"),
        "l2path.point": point.key,
        "l2path.checkpoint_run_id": checkpoint_run_id or "",
        "l2path.class": point.curvature_class,
    }
    logged = {
        "schedule": point.schedule,
        "seed": point.seed,
        "lambda": point.lam,
        **{f"hessian.{k}": v for k, v in params.hessian.model_dump().items()},
    }
    with tracking.stage_run(
        params.study.name, f"hessian {point.key}", logged, tags, parent_run_id=stage.run_id
    ) as run_id:
        tracking.log_metrics(run_id, {k: float(v) for k, v in _spectrum_metrics(point).items()})
        tracking.log_artifact(run_id, spectrum_file, "spectrum")


@task(name="analyse-curvature", cache_policy=NO_CACHE)
def analyse_curvature(params: Params, stage: StageRun) -> dict:
    """Analyse the selected points; write every table, spectrum file and the metrics JSON."""
    paths, study_config = params.paths, params.lambda_study
    torch.set_num_threads(params.runtime.curvature_threads)
    study = read_results(paths.study_results)
    steps = pd.read_csv(paths.monotonicity_table)
    logger = get_run_logger()
    chosen = select_points(study, steps, params.hessian)
    logger.info(
        "loading the data; %d points to analyse (select: %s)", len(chosen), params.hessian.select
    )
    data = load_dataset(paths.prepared, torch.float64, n_train=study_config.model.n_train)
    trained_by = PointStore.of_study(params.paths).run_ids()
    done = []

    def on_point(point: CurvaturePoint, spectrum: dict) -> None:
        done.append(point.key)
        logger.info(
            "%d/%d %s: %s, lambda_max=%.4g, lambda_min=%.3g (residual %.1e), index~%.3f, %d HVPs",
            len(done),
            len(chosen),
            point.key,
            point.curvature_class,
            point.lambda_max,
            point.lambda_min,
            point.lambda_min_residual,
            point.index_estimate,
            point.hvps,
        )
        target = spectrum_path(paths.spectra_dir, point.key)
        with atomic.atomic_path(target) as tmp:
            with open(tmp, "wb") as handle:
                np.savez(handle, **spectrum)
        log_point(params, stage, point, target, trained_by.get(point.key))

    with progress(
        f"curvature of {len(chosen)} points", len(chosen), "points", "hessian-points"
    ) as bar:
        results = analyse_study(
            params.hessian,
            study_config,
            study,
            steps,
            data,
            lambda point, spectrum: (on_point(point, spectrum), bar.advance()),
        )
    write_rows(paths.hessian_table, results.points)
    write_rows(paths.escapes, results.escapes)
    write_rows(paths.interpolation, results.interpolation)
    write_rows(paths.saddle_steps, results.steps)
    metrics = summary(results).to_json()
    atomic.write_json(paths.hessian_metrics, metrics)
    tracking.log_metrics(
        stage.run_id,
        {
            f"{schedule}.{group}.{key}": value
            for schedule, groups in metrics.items()
            for group, counts in groups.items()
            for key, value in counts.items()
        },
    )
    return metrics
