"""Task of the ``hessian`` stage: curvature of the study's points, tables, spectra, MLflow runs."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from l2path import atomic
from l2path.config import Params
from l2path.dataset import load_dataset
from l2path.landscape import analyse_study, summary

from . import tracking

_SPECTRUM_METRICS = ("lambda_max", "lambda_min", "lambda_max_residual", "lambda_min_residual", "index_estimate",
                     "index_stderr", "trace", "trace_stderr", "top_converged", "bottom_converged", "hvps")


def spectrum_path(params: Params, key: str) -> Path:
    return Path(params.paths.spectra_dir) / f"{key}.npz"


def log_point(params: Params, point: dict, spectrum_file: Path, checkpoint_run_id: str | None,
              tags: dict[str, str]) -> None:
    """A child run of the study run, linked to the run that trained the point."""
    parent = tracking.parent_run_id(checkpoint_run_id) if checkpoint_run_id else None
    point_tags = {**tags, "l2path.point": point["key"], "l2path.checkpoint_run_id": checkpoint_run_id or "",
                  "l2path.class": point["class"]}
    logged = {"schedule": point["schedule"], "seed": point["seed"], "lambda": point["lambda"],
              **{f"hessian.{k}": v for k, v in params.hessian.model_dump().items()}}
    with tracking.stage_run(params.study.name, f"hessian {point['key']}", logged, point_tags,
                            parent_run_id=parent) as run_id:
        metrics = {k: float(point[k]) for k in _SPECTRUM_METRICS}
        metrics["saddle"] = float(point["class"] == "saddle")
        metrics["certified"] = float(point["certified"])
        tracking.log_metrics(run_id, metrics)
        tracking.log_artifact(run_id, spectrum_file, "spectrum")


@task(name="analyse-curvature", cache_policy=NO_CACHE)
def analyse_curvature(params: Params, tags: dict[str, str]) -> dict:
    """Analyse the selected points; write every table, spectrum file and the metrics JSON."""
    paths, study_config = params.paths, params.lambda_study
    torch.set_num_threads(params.hessian.threads)
    study = pd.read_csv(paths.study_results, keep_default_na=False, na_values=[""])
    steps = pd.read_csv(paths.monotonicity_table)
    data = load_dataset(paths.prepared, torch.float64, n_train=study_config.model.n_train)
    run_ids = dict(zip(study["key"], study["mlflow_run_id"]))
    logger = get_run_logger()

    def on_point(point: dict, spectrum: dict) -> None:
        logger.info("%s: %s, lambda_max=%.4g, lambda_min=%.3g (residual %.1e), index~%.3f, %d HVPs", point["key"],
                    point["class"], point["lambda_max"], point["lambda_min"], point["lambda_min_residual"],
                    point["index_estimate"], point["hvps"])
        target = spectrum_path(params, point["key"])
        with atomic.atomic_path(target) as tmp:
            with open(tmp, "wb") as handle:
                np.savez(handle, **spectrum)
        run_id = run_ids.get(point["key"])
        log_point(params, point, target, run_id if isinstance(run_id, str) and run_id else None, tags)

    results = analyse_study(params.hessian, study_config, study, steps, data, on_point)
    atomic.write_csv(paths.hessian_table, pd.DataFrame(results.points))
    atomic.write_csv(paths.escapes, pd.DataFrame(results.escapes))
    atomic.write_csv(paths.interpolation, pd.DataFrame(results.interpolation))
    atomic.write_csv(paths.saddle_steps, pd.DataFrame(results.steps))
    metrics = summary(results)
    atomic.write_json(paths.hessian_metrics, metrics)
    return metrics
