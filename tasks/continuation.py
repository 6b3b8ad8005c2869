"""Task of the ``continuation`` stage: the converged chains on their own objective
(``converged_chains``), their tables, their weights (one .npz per chain, a DVC output) and MLflow
runs (a child run per seed and direction, its weights a LoggedModel of that run)."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from edge import tracking
from edge.process_pool import worker_map
from edge.progress import progress
from edge.stage import StageRun
from l2path import atomic
from l2path.config import Params
from l2path.chain import stage as chains
from l2path.chain.records import ChainPoint, ChainRecord
from l2path.rows import write_rows


def _chain_metrics(point: ChainPoint) -> dict[str, float]:
    return {
        "mse": point.mse,
        "objective": point.objective,
        "weight_l2": point.weight_l2,
        "bottom": point.bottom,
        "grad_norm": point.grad_norm,
        "proved_minimum": float(point.proved_minimum),
        "proved_saddle": float(point.proved_saddle),
        "degenerate": float(point.degenerate),
        "escapes": float(point.escapes),
    }


def save_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """``np.load``-able .npz whose bytes depend on the arrays alone (numpy's savez stamps the
    time into each zip entry, which would change the DVC output's hash on every re-run)."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, array in arrays.items():
            buffer = io.BytesIO()
            np.lib.format.write_array(buffer, np.asarray(array), allow_pickle=False)
            entry = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            archive.writestr(entry, buffer.getvalue(), zipfile.ZIP_DEFLATED)


def write_weights(directory: str, files: dict[str, dict[str, np.ndarray]]) -> None:
    """Every chain's .npz (``chains.chain_weights``) into ``directory``, written whole or not at
    all (a temporary directory renamed)."""
    with atomic.atomic_directory(directory) as staging:
        for name, arrays in files.items():
            save_npz(Path(staging) / name, arrays)


def log_chain(
    params: Params, stage: StageRun, record: ChainRecord, results: chains.ChainResults
) -> None:
    """One child run for one chain (or one cold start's points): a point's numbers at step =
    its index, its weights file a LoggedModel of the run (the UI's Models tab)."""
    points = [
        p for p in results.points if p.seed == record.seed and p.direction is record.direction
    ]
    logged = {
        "seed": record.seed,
        "direction": record.direction.value,
        **{f"chain.{k}": v for k, v in params.chain.model_dump().items()},
    }
    tags = {**stage.child_tags("chain"), "l2path.seed": str(record.seed)}
    name = f"converged chain {record.direction.value} seed{record.seed}"
    weights = Path(params.paths.chain_weights) / record.weights
    with tracking.stage_run(
        params.study.name, name, logged, tags, parent_run_id=stage.run_id
    ) as run_id:
        model_params = {"lambdas": len(points), "weights": weights.as_posix()}
        model = f"chain-{record.direction.value}-seed{record.seed}"
        with tracking.logged_model(run_id, model, weights, model_params, tags) as model_id:
            for point in points:
                tracking.log_metrics(
                    run_id, _chain_metrics(point), step=point.index, model_id=model_id
                )


@task(name="converged-chains", cache_policy=NO_CACHE)
def converged_chains(params: Params, stage: StageRun) -> dict:
    """The converged chains of every chain seed (side by side, ``chain.workers`` processes at a
    time, one BLAS thread each); write their tables and metrics."""
    paths, seeds, workers = (
        params.paths,
        params.lambda_study.chain_seeds,
        params.chain.workers,
    )
    logger = get_run_logger()
    plan = chains.plan(params)
    logger.info(
        "converged chains on %d images (%s), %d parameters after the span reduction",
        plan.n_sub,
        plan.device,
        plan.subset.mse.size,
    )
    with (
        worker_map(workers, params.runtime.curvature_threads, logger.info) as (map_, log),
        progress(
            f"converged chains: {len(seeds)} seeds and {len(plan.cold_starts)} cold starts",
            len(seeds),
            "jobs",
            "chain-jobs",
        ) as bar,
    ):
        rounds = []

        def counted(work, pieces):
            """``map_``, counted; a round after the first revises the total (its jobs: the
            descending chains, the cold starts and the steps, known once the first is done)."""
            pieces = list(pieces)
            if rounds:
                bar.advance(0, total=bar.done + len(pieces))
            rounds.append(len(pieces))
            for result in map_(work, pieces):
                bar.advance()
                yield result

        results = chains.execute(plan, seeds, log=log, map_=counted)
    write_weights(paths.chain_weights, chains.chain_weights(plan, results))
    write_rows(paths.chain_points, results.points)
    write_rows(paths.chain_steps, results.steps)
    write_rows(paths.chains, results.chains)
    metrics = chains.summary(plan, results).to_json()
    atomic.write_json(paths.chain_metrics, metrics)
    for record in results.chains:
        log_chain(params, stage, record, results)
    tracking.log_metrics(
        stage.run_id,
        {f"chain.{k}": float(v) for k, v in metrics.items() if isinstance(v, (int, float))},
    )
    return metrics
