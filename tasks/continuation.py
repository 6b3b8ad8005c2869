"""Task of the ``continuation`` stage: certified branches through the ascending chains' points,
curvature verdicts of their non-monotone steps, tables and MLflow runs (one child run per seed)."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pandas as pd
import torch
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE
from threadpoolctl import threadpool_limits

from edge import tracking
from edge.progress import progress
from edge.stage import StageRun
from l2path import atomic
from l2path.config import Params
from l2path.continuation.study import ContinuationResults, SGDPoint, Step, SubsetProblem, run, settings_from, summary
from l2path.curvature.hessian import Objective
from l2path.curvature.landscape import nonmonotone_steps
from l2path.data.dataset import load_dataset
from l2path.model.checkpoint import load_model
from l2path.study.results import read_results


def pick_device(choice: str) -> torch.device:
    """``runtime.device``: auto = CUDA when present, else the CPU; cuda without a GPU fails here."""
    if choice == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("runtime.device is 'cuda' but torch sees no CUDA device; use 'auto' or 'cpu'")
    return torch.device("cuda" if choice != "cpu" and torch.cuda.is_available() else "cpu")


def chain_points(params: Params, objective: Objective, seed: int, lam_end: float, device: torch.device) -> list[SGDPoint]:
    """The ascending chain's points of ``seed`` up to lam_end (diverged points never), float64 on ``device``."""
    return [SGDPoint(seed, p.lam, objective.flat(load_model(p.final_checkpoint, torch.float64)[0]).to(device))
            for p in read_results(params.paths.study_results)
            if p.schedule == "ascending" and p.seed == seed and p.lam <= lam_end * (1 + 1e-12) and not p.diverged]


def log_seed(params: Params, stage: StageRun, seed: int, results: ContinuationResults) -> None:
    rows = [p for p in results.points if p["seed"] == seed]
    logged = {"seed": seed, **{f"continuation.{k}": v for k, v in params.continuation.model_dump().items()}}
    with tracking.stage_run(params.study.name, f"continuation seed{seed}", logged,
                            {**stage.child_tags("seed"), "l2path.seed": str(seed)}, parent_run_id=stage.run_id) as run_id:
        for index, row in enumerate(sorted(rows, key=lambda r: (r["lambda"], r["kind"]))):
            tracking.log_metrics(run_id, {f"{row['kind']}.{k}": float(row[k]) for k in
                                          ("grad_norm", "bottom", "bottom_residual", "data_loss", "certified")},
                                 step=index)


@task(name="continue-branches", cache_policy=NO_CACHE)
def continue_branches(params: Params, stage: StageRun) -> dict:
    """Run every chain seed (side by side, ``continuation.workers`` at a time); write the tables."""
    paths, config = params.paths, params.continuation
    device = pick_device(params.runtime.device)
    logger = get_run_logger()
    steps = nonmonotone_steps(pd.read_csv(paths.monotonicity_table), ["ascending"])
    lam_end = config.lambda_end or (float(steps["lambda_to"].max()) if len(steps) else 0.0)
    settings = settings_from(config)
    if device.type == "cuda" and config.n_sub_gpu is not None:
        settings = type(settings)(config.n_sub_gpu, settings.step, settings.branch, settings.fraction,
                                  settings.same_point_tol)
    data = load_dataset(paths.prepared, torch.float64, n_train=params.lambda_study.model.n_train)
    n_sub = len(data.train.x) if device.type == "cuda" and config.n_sub_gpu is None else settings.n_sub
    model = params.lambda_study.model
    subset = SubsetProblem(model.sizes, data.train.x.to(device), data.train.y.to(device), model.cost,
                           len(data.train.x), n_sub)
    flat = Objective(model.sizes, subset.x, subset.y, subset.cost, 0.0)
    judged = [Step(int(s.seed), float(s.lambda_from), float(s.lambda_to), float(s.change)) for s in steps.itertuples()]
    smallest = min((abs(s.change) for s in judged), default=1.0)
    logger.info("continuation on %d images (%s), lambda up to %g; %d non-monotone steps, smallest change %.3g",
                n_sub, device, lam_end, len(judged), smallest)
    results = ContinuationResults()
    torch.set_num_threads(1 if config.workers > 1 else params.runtime.curvature_threads)

    points = [p for seed in params.lambda_study.chain_seeds for p in chain_points(params, flat, seed, lam_end, device)]
    # One BLAS thread per worker: OpenBLAS's own threads, two per call, made side-by-side seeds
    # 9x slower on 2 cores (docs/benchmarks.md, "Certified continuation per point").
    with threadpool_limits(1 if config.workers > 1 else None), ThreadPoolExecutor(max_workers=config.workers) as pool, \
            progress(f"continuation: {len(points)} points, {len(judged)} steps", len(points) + len(judged), "items",
                     "continuation-items") as bar:
        def counted(work, items):  # each polished point and each judged step advances the bar
            return pool.map(lambda item: (work(item), bar.advance())[0], items)

        run(subset, points, judged, settings, smallest, results, log=logger.info, map_=counted)
    for table, rows in ((paths.continuation_points, results.points), (paths.continuation_branch, results.branch),
                        (paths.continuation_folds, results.folds), (paths.continuation_steps, results.steps)):
        ordered = sorted(rows, key=lambda r: (r["seed"], *(r.get(k, 0) for k in ("lambda", "lambda_from", "lambda_low")),
                                              r.get("kind", ""), r.get("step_from", 0), r.get("direction", "")))  # workers finish in any order
        atomic.write_csv(table, pd.DataFrame(ordered))
    metrics = summary(results, n_sub)
    atomic.write_json(paths.continuation_metrics, metrics)
    for seed in params.lambda_study.chain_seeds:
        log_seed(params, stage, seed, results)
    tracking.log_metrics(stage.run_id, {k: float(v) for k, v in metrics.items() if isinstance(v, (int, float))})
    return metrics
