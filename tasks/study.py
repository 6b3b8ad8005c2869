"""Tasks of the ``study`` stage: the lambda study's rounds, its MLflow child runs, its tables."""
from __future__ import annotations

import pandas as pd
import torch
from prefect import task
from prefect.cache_policies import NO_CACHE

from l2path import atomic
from l2path.config import Params
from l2path.dataset import load_dataset
from l2path.monotonicity import largest_violations, step_table, summary
from l2path.point_store import PointStore
from l2path.schedules import Point
from l2path.split import file_md5
from l2path.study import HISTORY_KEYS, LambdaStudyRunner
from l2path.training import DTYPES

from . import tracking

_FIRST_COLUMNS = ("key", "schedule", "seed", "lambda", "grid_index", "start", "parent")
# Record fields that are not columns of the results table.
_NOT_COLUMNS = ("history",)
# Record fields logged as MLflow params of a point's run (every run gets every key, same types).
_POINT_PARAMS = ("schedule", "seed", "grid_index", "lambda", "start", "parent", "parent_checkpoint", "fingerprint")


@task(name="open-lambda-study", cache_policy=NO_CACHE)
def open_study(params: Params, label: str) -> LambdaStudyRunner:
    """Load the data, plan the study and take every finished point from the store."""
    config = params.lambda_study
    torch.set_num_threads(params.runtime.threads)
    data = load_dataset(params.paths.prepared, DTYPES[config.model.dtype], n_train=config.model.n_train)
    return LambdaStudyRunner(config, data, PointStore(params.paths.study_dir), file_md5(params.paths.prepared), label)


@task(name="train-round", cache_policy=NO_CACHE)
def train_round(runner: LambdaStudyRunner, batch: list[Point]) -> list[dict]:
    """Train one round of stacked points; their checkpoints and records are on disk on return."""
    return runner.train_round(batch)


def point_params(params: Params, record: dict) -> dict:
    config = params.lambda_study
    return {**{key: record[key] for key in _POINT_PARAMS}, "polished": record["polished"],
            **{f"model.{k}": v for k, v in config.model.model_dump().items()},
            **{f"sgd.{k}": v for k, v in config.sgd.model_dump().items()},
            "polish.grad_tol": config.polish.grad_tol, "polish.max_iter": config.polish.max_iter,
            "polish.continue_from": config.polish.continue_from}


def point_metrics(record: dict) -> dict[str, float]:
    """The record's numbers (booleans as 0/1), for comparing points in the MLflow UI."""
    return {key: float(value) for key, value in record.items()
            if isinstance(value, (int, float)) and key not in ("seed", "grid_index")}


def log_point(params: Params, runner: LambdaStudyRunner, record: dict, study_run_id: str,
              tags: dict[str, str]) -> str:
    """One MLflow child run of the study run for a finished point; its id goes into the record."""
    point_tags = {**tags, "l2path.point": record["key"], "l2path.parent_point": record["parent"] or "",
                  "l2path.parent_checkpoint": record["parent_checkpoint"] or "",
                  "l2path.warm_start_run_id": record["parent_mlflow_run_id"] or "",
                  "l2path.data_md5": runner.data_md5}
    with tracking.stage_run(params.study.name, record["key"], point_params(params, record), point_tags,
                            parent_run_id=study_run_id) as run_id:
        history = [{"epoch": h["epoch"], **{f"sgd.{k}": h[k] for k in HISTORY_KEYS}} for h in record["history"]]
        tracking.log_history(run_id, history)
        tracking.log_metrics(run_id, point_metrics(record), step=record["epochs"])
        tracking.log_artifact(run_id, record["checkpoint"], "checkpoint")
        if record["polished_checkpoint"]:
            tracking.log_artifact(run_id, record["polished_checkpoint"], "checkpoint")
    runner.attach_run(record["key"], run_id)
    return run_id


def results_frame(records: list[dict]) -> pd.DataFrame:
    """One row per point; identity columns first, then the rest by name (records read back
    from disk and fresh ones give the same table)."""
    frame = pd.DataFrame([{k: v for k, v in r.items() if k not in _NOT_COLUMNS} for r in records])
    rest = sorted(set(frame.columns) - set(_FIRST_COLUMNS))
    return frame[[c for c in _FIRST_COLUMNS if c in frame.columns] + rest]


def _write_csv(frame: pd.DataFrame, path: str) -> None:
    with atomic.atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False)


@task(name="write-study-results", cache_policy=NO_CACHE)
def write_results(params: Params, runner: LambdaStudyRunner) -> dict:
    """Results table, monotonicity steps and metrics; stale points removed from the store."""
    records = runner.results()
    runner.store.prune({r["key"] for r in records})
    table = results_frame(records)
    _write_csv(table, params.paths.study_results)
    steps = step_table(table, params.lambda_study.noise_sigmas)
    _write_csv(steps, params.paths.monotonicity_table)
    metrics = summary(steps, largest_violations(table, params.lambda_study.noise_sigmas))
    atomic.write_json(params.paths.monotonicity_metrics, metrics)
    return metrics
