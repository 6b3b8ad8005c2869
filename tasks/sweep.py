"""Task of the generality sweep (``l2path.sweep``): every case of a profile, ``workers`` at a
time (processes, one BLAS thread each), its table results/sweep_<name>.csv, and MLflow runs:
one parent run for the sweep, one child run per case with the case's counts as metrics."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import torch
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from edge import tracking
from edge.lineage import git_commit
from edge.process_pool import worker_map
from edge.progress import progress
from l2path.config import Params
from l2path.data.dataset import load_dataset
from l2path.rows import write_rows
from l2path.sweep import SweepProfile, SweepRow, cases, check_subsets, run_case


def table_path(profile: SweepProfile) -> Path:
    return Path("results") / f"sweep_{profile.name}.csv"


def _metrics(row: SweepRow) -> dict[str, float]:
    keep = {k: v for k, v in row.to_json().items() if k not in ("seed", "hidden", "n_sub")}
    return {k: float(v) for k, v in keep.items() if isinstance(v, (int, float))}


@task(name="sweep-cases", cache_policy=NO_CACHE)
def sweep_cases(params: Params, profile: SweepProfile) -> list[SweepRow]:
    """Run every case of ``profile`` and write its table (rows in case order)."""
    logger = get_run_logger()
    model = params.lambda_study.model
    data = load_dataset(params.paths.prepared, torch.float64, n_train=model.n_train)
    check_subsets(profile, len(data.train.x))
    todo = cases(profile)
    logged = {
        "profile": profile.name,
        "seeds": profile.seeds,
        "hidden": profile.hidden,
        "n_sub": profile.n_sub,
        **{f"chain.{k}": v for k, v in params.chain.model_dump().items()},
    }
    tags = {"l2path.sweep": profile.name, "l2path.git_commit": str(git_commit(Path.cwd()))}
    with (
        tracking.stage_run(params.study.name, f"sweep {profile.name}", logged, tags) as parent,
        worker_map(profile.workers, params.runtime.curvature_threads, logger.info) as (map_, log),
        progress(f"sweep {profile.name}", len(todo), "cases", "sweep-cases") as bar,
    ):
        rows = []
        for case, row in zip(todo, map_(partial(run_case, params, data=data, log=log), todo)):
            logger.info(
                "%s: %d drops in %d steps (%.0f s)", case.label, row.drops, row.steps, row.seconds
            )
            case_tags = {**tags, "l2path.seed": str(case.seed)}
            case_params = {"seed": case.seed, "hidden": case.hidden, "n_sub": case.n_sub}
            with tracking.stage_run(
                params.study.name, case.label, case_params, case_tags, parent_run_id=parent
            ) as run_id:
                tracking.log_metrics(run_id, _metrics(row))
            bar.advance()
            rows.append(row)
        write_rows(table_path(profile), rows)
        tracking.log_artifact(parent, table_path(profile))
    return rows
