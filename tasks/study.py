"""Tasks of the ``study`` stage: the lambda study's rounds, its MLflow child runs, its tables."""
from __future__ import annotations

from typing import Sequence

import pandas as pd
import torch
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE
from threadpoolctl import threadpool_limits

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
def open_study(params: Params, label: str, chain_ids: Sequence[int] | None = None) -> LambdaStudyRunner:
    """Load the data, plan the study (or one shard of its chains) and take every finished
    point from the store."""
    config = params.lambda_study
    # Process-wide, torch's and numpy's BLAS (L-BFGS polish) alike: a reduction's rounding
    # depends on the thread count, and a Dask worker's default (1) differs from a process's.
    torch.set_num_threads(params.runtime.threads)
    threadpool_limits(limits=params.runtime.threads, user_api="blas")
    data = load_dataset(params.paths.prepared, DTYPES[config.model.dtype], n_train=config.model.n_train)
    return LambdaStudyRunner(config, data, PointStore(params.paths.study_dir), file_md5(params.paths.prepared),
                             label, chain_ids)


@task(name="train-round", cache_policy=NO_CACHE)
def train_round(runner: LambdaStudyRunner, batch: list[Point]) -> list[dict]:
    """Train one round of stacked points; their checkpoints and records are on disk on return."""
    return runner.train_round(batch)


def _describe(record: dict) -> str:
    state = record["message"] or ("certified" if record["certified"] else "not certified")
    return (f"{record['key']}: lambda={record['lambda']:g} epochs={record['epochs']} J={record['objective']:.6g} "
            f"train MSE={record['train_mse']:.6g} |grad J|={record['grad_norm']:.2e} ({state})")


@task(name="train-shard", cache_policy=NO_CACHE)
def train_shard(params: Params, chain_ids: list[int], study_run_id: str, tags: dict[str, str]) -> int:
    """Train every unfinished point of one shard's chains, round by round, each logged as a
    child run of the study run (also from a Dask worker: the run id is passed, not looked
    up). Returns how many points the shard finished now."""
    logger = get_run_logger()
    runner = open_study(params, tags["l2path.execution_id"], chain_ids)
    logger.info("shard of %d chains: %d points planned, %d finished earlier",
                len(runner.chains), len(runner.points), runner.resumed)
    for record in runner.results():  # finished before a kill, but never logged
        if record["mlflow_run_id"] is None:
            log_point(params, runner, record, study_run_id, tags)
    trained = 0
    while batch := runner.next_round():
        logger.info("round of %d stacked points: %s ...", len(batch), ", ".join(p.key for p in batch[:4]))
        for record in train_round(runner, batch):
            logger.info(_describe(record))
            log_point(params, runner, record, study_run_id, tags)
            trained += 1
    return trained


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


@task(name="write-study-results", cache_policy=NO_CACHE)
def write_results(params: Params, runner: LambdaStudyRunner) -> dict:
    """Results table, monotonicity steps and metrics; stale points removed from the store."""
    records = runner.results()
    runner.store.prune({r["key"] for r in records})
    table = results_frame(records)
    atomic.write_csv(params.paths.study_results, table)
    steps = step_table(table, params.lambda_study.noise_sigmas)
    atomic.write_csv(params.paths.monotonicity_table, steps)
    metrics = summary(steps, largest_violations(table, params.lambda_study.noise_sigmas))
    atomic.write_json(params.paths.monotonicity_metrics, metrics)
    return metrics
