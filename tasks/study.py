"""Tasks of the ``study`` stage: train a shard of the lambda study's chains (each point an
MLflow child run of the study run), then write the results tables from the point store."""

from __future__ import annotations

import math
import time

import pandas as pd
import torch
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE
from threadpoolctl import threadpool_limits

from edge import tracking
from edge.progress import progress as progress_bar
from edge.stage import StageRun
from l2path import atomic
from l2path.config import Params
from l2path.data.dataset import load_dataset, train_count
from l2path.data.split import file_md5
from l2path.model.network import DTYPES
from l2path.decomposition import decomposition_table, histories, paired_table
from l2path.monotonicity import largest_violations, step_table, summary
from l2path.study.planner import StudyPlan
from l2path.study.progress import Progress
from l2path.study.records import PointRecord
from l2path.study.results import write_results
from l2path.study.run import run_study
from l2path.study.schedules import Point
from l2path.study.store import PointStore
from l2path.verdicts import verdict_counts, verdict_table

# Record fields logged as MLflow params of a point's run (every run gets every key, same types).
_POINT_PARAMS = (
    "schedule",
    "seed",
    "grid_index",
    "lambda",
    "start",
    "parent",
    "parent_checkpoint",
    "fingerprint",
    "polished",
)


# The params that name a point's final weights in the Models tab (its metrics are the point's).
_MODEL_PARAMS = ("schedule", "seed", "lambda", "start", "polished")


def _plan(params: Params, chain_ids: list[int] | None = None) -> StudyPlan:
    prepared = params.paths.prepared
    config = params.lambda_study
    return StudyPlan.build(
        config, train_count(prepared, config.model.n_train), file_md5(prepared), chain_ids
    )


def point_params(params: Params, record: PointRecord) -> dict:
    config = params.lambda_study
    row = record.to_row()
    return {
        **{key: row[key] for key in _POINT_PARAMS},
        **{f"model.{k}": v for k, v in config.model.model_dump().items()},
        "model.init": config.init,
        **{f"sgd.{k}": v for k, v in config.sgd.model_dump().items()},
        **{f"polish.{k}": v for k, v in config.polish.model_dump().items() if k != "schedules"},
    }


def point_metrics(record: PointRecord) -> dict[str, float]:
    """The record's numbers (booleans as 0/1), for comparing points in the MLflow UI."""
    return {
        key: float(value)
        for key, value in record.to_row().items()
        if isinstance(value, (int, float)) and key not in ("seed", "grid_index")
    }


def log_point(params: Params, stage: StageRun, record: PointRecord, data_md5: str) -> PointRecord:
    """One MLflow child run of the study run for a finished point or control (tag
    ``l2path.role``); returns the record with the run id."""
    role = "control" if record.control_of else "point"
    tags = {
        **stage.child_tags(role),
        "l2path.role": role,
        "l2path.control_of": record.control_of or "",
        "l2path.point": record.key,
        "l2path.parent_point": record.parent or "",
        "l2path.parent_checkpoint": record.parent_checkpoint or "",
        "l2path.warm_start_run_id": record.parent_mlflow_run_id or "",
        "l2path.data_md5": data_md5,
    }
    # The run spans the point's training: it is logged once the point is finished.
    seconds = sum(s for s in (record.train_seconds, record.polish_seconds) if math.isfinite(s))
    now = time.time()
    with tracking.stage_run(
        params.study.name,
        record.key,
        point_params(params, record),
        tags,
        parent_run_id=stage.run_id,
        start_time=now - seconds,
        end_time=now,
    ) as run_id:
        tracking.log_history(
            run_id,
            [
                {
                    "epoch": h.epoch,
                    **{f"sgd.{k}": v for k, v in h.to_mapping().items() if k != "epoch"},
                }
                for h in record.history
            ],
        )
        for checkpoint in filter(None, (record.checkpoint, record.polished_checkpoint)):
            tracking.log_artifact(run_id, checkpoint, "checkpoint")
        if record.diverged:  # no weights worth a model
            tracking.log_metrics(run_id, point_metrics(record), step=record.epochs)
        else:
            with tracking.logged_model(
                run_id,
                record.key,
                record.final_checkpoint,
                {key: point_params(params, record)[key] for key in _MODEL_PARAMS},
                {"l2path.point": record.key, "l2path.role": role},
            ) as model_id:
                tracking.log_metrics(
                    run_id, point_metrics(record), step=record.epochs, model_id=model_id
                )
    return record.replace(mlflow_run_id=run_id)


def _describe(record: PointRecord) -> str:
    state = record.message or ("critical" if record.critical else "not critical")
    return (
        f"{record.key}: lambda={record.lam:g} epochs={record.epochs} "
        f"J={record.final.objective:.6g} train MSE={record.final.train_mse:.6g} "
        f"|grad J|={record.grad_norm:.2e} ({state})"
    )


@task(name="train-shard", cache_policy=NO_CACHE)
def train_shard(params: Params, chain_ids: list[int], stage: StageRun) -> int:
    """Train every unfinished point of one shard's chains, round by round (also on a Dask
    worker: the study run is named in ``stage``, not looked up). Returns the points trained now."""
    logger = get_run_logger()
    config = params.lambda_study
    # Process-wide, torch's and numpy's BLAS (L-BFGS polish) alike: a reduction's rounding
    # depends on the thread count, and a Dask worker's default (1) differs from a process's.
    torch.set_num_threads(params.runtime.threads)
    threadpool_limits(limits=params.runtime.threads, user_api="blas")
    plan = _plan(params, chain_ids)
    data = load_dataset(
        params.paths.prepared, DTYPES[config.model.dtype], n_train=config.model.n_train
    )
    trained = []
    total = len(plan.points) + len(plan.controls)  # at most: a chain that collapses ends early

    def on_round(batch: list[Point], progress: Progress) -> None:
        bar.advance(
            len(progress.records) - bar.done
        )  # the points found finished, at the first round
        logger.info(
            "%d of at most %d points finished (controls included); next round: %d stacked "
            "points (%s ...)",
            len(progress.records),
            total,
            len(batch),
            ", ".join(p.key for p in batch[:3]),
        )

    def on_point(record: PointRecord) -> PointRecord:
        if record.execution == stage.execution_id:
            trained.append(record.key)
            bar.advance()
            logger.info(_describe(record))
        return log_point(params, stage, record, plan.data_md5)

    with progress_bar(
        f"study shard of {len(plan.chains)} chains",
        total,
        "points",
        f"study-shard-{chain_ids[0] if chain_ids else 'all'}",
    ) as bar:
        progress = run_study(
            plan, data, PointStore.of_study(params.paths), stage.execution_id, on_point, on_round
        )
        bar.advance(len(progress.records) - bar.done, total=len(progress.records))
    logger.info(
        "shard of %d chains: %d points, %d trained now, %d found finished",
        len(plan.chains),
        len(plan.points),
        len(trained),
        progress.resumed,
    )
    return len(trained)


@task(name="write-study-results", cache_policy=NO_CACHE)
def write_study_results(params: Params, stage: StageRun) -> dict:
    """Results tables of the points and their controls, monotonicity steps, the warm steps'
    decomposition (lambda effect and optimisation deficit, paired noise from the histories),
    verdicts and metrics from the store (stale points removed); the metrics are logged on the
    study run."""
    config, paths = params.lambda_study, params.paths
    store = PointStore.of_study(params.paths)
    progress = Progress.resume(_plan(params), store)
    records, controls = progress.results(), progress.control_results()
    store.prune({r.key for r in records + controls})
    table = write_results(paths.study_results, records)
    control_table = write_results(paths.controls, controls) if controls else None
    if control_table is None:
        atomic.write_csv(paths.controls, pd.DataFrame(columns=["key", "control_of"]))
    paired = paired_table(
        control_table, histories(records + controls), config.sgd.window, config.false_alarm
    )
    steps = step_table(table, config.false_alarm, control_table, paired)
    atomic.write_csv(paths.monotonicity_table, steps)
    atomic.write_csv(
        paths.decomposition,
        decomposition_table(table, control_table, paired, config.false_alarm),
    )
    verdicts = verdict_table(steps)
    atomic.write_csv(paths.verdicts, verdicts)
    counts = verdict_counts(verdicts, config.schedules).to_json()
    atomic.write_json(paths.verdicts_metrics, counts)
    metrics = summary(steps, largest_violations(table, config.false_alarm)).to_json()
    atomic.write_json(paths.monotonicity_metrics, metrics)
    tracking.log_metrics(
        stage.run_id,
        {
            f"verdicts.{schedule}.{key}": value
            for schedule, by_key in counts.items()
            for key, value in by_key.items()
        },
    )
    tracking.log_metrics(
        stage.run_id,
        {
            f"{schedule}.{metric}.{key}": value
            for schedule, by_metric in metrics.items()
            for metric, values in by_metric.items()
            for key, value in values.items()
        },
    )
    return metrics
