"""Task of the ``continuation`` stage: the converged chains on their own objective
(``converged_chains``), their tables and MLflow runs (a child run per seed and direction)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import torch
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE
from threadpoolctl import threadpool_limits

from edge import tracking
from edge.progress import progress
from edge.stage import StageRun
from l2path import atomic
from l2path.config import Params
from l2path.chain import stage as chains
from l2path.chain.records import ChainPoint
from l2path.rows import write_rows


def _chain_metrics(point: ChainPoint) -> dict[str, float]:
    return {
        "mse": point.mse,
        "weight_l2": point.weight_l2,
        "bottom": point.bottom,
        "grad_norm": point.grad_norm,
        "proved_minimum": float(point.proved_minimum),
    }


def log_chains(params: Params, stage: StageRun, seed: int, results: chains.ChainResults) -> None:
    """One child run per seed and direction; a point's numbers at step = its index."""
    for direction in {p.direction for p in results.points if p.seed == seed}:
        points = [p for p in results.points if p.seed == seed and p.direction == direction]
        logged = {
            "seed": seed,
            "direction": direction.value,
            **{f"chain.{k}": v for k, v in params.chain.model_dump().items()},
        }
        tags = {**stage.child_tags("chain"), "l2path.seed": str(seed)}
        name = f"converged chain {direction.value} seed{seed}"
        with tracking.stage_run(
            params.study.name, name, logged, tags, parent_run_id=stage.run_id
        ) as run_id:
            for point in points:
                tracking.log_metrics(run_id, _chain_metrics(point), step=point.index)


@task(name="converged-chains", cache_policy=NO_CACHE)
def converged_chains(params: Params, stage: StageRun) -> dict:
    """The converged chains of every chain seed (side by side, ``chain.workers`` at a time,
    one BLAS thread each); write their tables and metrics."""
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
    torch.set_num_threads(1 if workers > 1 else params.runtime.curvature_threads)
    with (
        threadpool_limits(1 if workers > 1 else None),
        ThreadPoolExecutor(max_workers=workers) as pool,
        progress(
            f"converged chains: {len(seeds)} seeds", len(seeds), "seeds", "chain-seeds"
        ) as bar,
    ):

        def counted(work, pieces):
            return pool.map(lambda piece: (work(piece), bar.advance())[0], pieces)

        results = chains.execute(plan, seeds, log=logger.info, map_=counted)
    write_rows(paths.chain_points, results.points)
    write_rows(paths.chain_steps, results.steps)
    metrics = chains.summary(plan, results).to_json()
    atomic.write_json(paths.chain_metrics, metrics)
    for seed in seeds:
        log_chains(params, stage, seed, results)
    tracking.log_metrics(
        stage.run_id,
        {f"chain.{k}": float(v) for k, v in metrics.items() if isinstance(v, (int, float))},
    )
    return metrics
