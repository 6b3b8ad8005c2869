"""Task of the ``dynamics`` stage: Nielsen's weight-decay exercise, its tables and MLflow runs."""

from __future__ import annotations

import math
import shutil
import time
from pathlib import Path

import pandas as pd
import torch
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from edge import tracking
from edge.progress import progress
from edge.stage import StageRun
from l2path import atomic
from l2path.config import Params
from l2path.data.dataset import load_dataset
from l2path.data.split import file_md5
from l2path.dynamics.budget import budget_table
from l2path.dynamics.cost_test import cost_table
from l2path.dynamics.plan import Model, cost_name, model_epochs
from l2path.dynamics.tables import PLOT_NAMES, plot_tables, summarise
from l2path.dynamics.theory import theory_table
from l2path.dynamics.training import run_dynamics
from l2path.model.checkpoint import save_model
from l2path.model.costs import get_cost
from l2path.model.network import DTYPES


def model_key(model: Model) -> str:
    """``<init>_seed<s>_eta<eta>_lambda<lam>``, then ``_<cost>`` for a comparison-cost model."""
    key = f"{model.init}_seed{model.seed}_eta{model.eta:g}_lambda{model.lam:g}"
    return f"{key}_{model.cost}" if model.cost else key


def log_model_run(
    params: Params,
    stage: StageRun,
    model: Model,
    history: list[dict],
    checkpoint: Path,
    data_md5: str,
) -> None:
    """A child run of the stage run: one model's per-epoch metrics and final weights."""
    logged = {
        "init": model.init,
        "seed": model.seed,
        "eta": model.eta,
        "lambda": model.lam,
        "cost": cost_name(model, params.dynamics),
        "epochs": len(history) - 1,
        **{
            f"dynamics.{k}": v
            for k, v in params.dynamics.model_dump().items()
            if k not in ("inits", "seeds", "lambdas", "eta", "epochs", "book", "sweep")
        },
    }
    run_tags = {
        **stage.child_tags("model"),
        "l2path.model": model_key(model),
        "l2path.data_md5": data_md5,
    }
    with tracking.stage_run(
        params.study.name,
        f"dynamics {model_key(model)}",
        logged,
        run_tags,
        parent_run_id=stage.run_id,
    ) as run_id:
        numeric = [
            {
                k: v
                for k, v in row.items()
                if isinstance(v, (int, float))
                and math.isfinite(v)
                and k not in ("seed", "eta", "lambda", "cost")
            }
            for row in history
        ]
        tracking.log_artifact(run_id, checkpoint, "checkpoint")
        with tracking.logged_model(
            run_id,
            f"dynamics-{model_key(model)}",
            checkpoint,
            {
                "init": model.init,
                "seed": model.seed,
                "eta": model.eta,
                "lambda": model.lam,
                "cost": cost_name(model, params.dynamics),
                "epochs": len(history) - 1,
            },
        ) as model_id:
            tracking.log_history(run_id, numeric, model_id=model_id)


def _flat(numbers: dict, prefix: str = ""):
    """(dotted key, number) for every numeric leaf of the nested metrics (flags as 0/1)."""
    for key, value in numbers.items():
        if isinstance(value, dict):
            yield from _flat(value, f"{prefix}{key}.")
        elif isinstance(value, (int, float)) and math.isfinite(value):
            yield f"{prefix}{key}", float(value)


@task(name="weight-decay-dynamics", cache_policy=NO_CACHE)
def study_dynamics(params: Params, stage: StageRun) -> dict:
    """Train, write every table and checkpoint, log a child run per model and the theory
    numbers on the stage run; return the metrics."""
    config, paths = params.dynamics, params.paths
    torch.set_num_threads(params.runtime.threads)
    data = load_dataset(paths.prepared, DTYPES[config.model.dtype], n_train=config.model.n_train)
    logger = get_run_logger()
    layers = range(1, len(config.model.sizes))

    planned = model_epochs(config)

    def on_epoch(model: Model, row: dict) -> None:
        bar.advance()
        if (
            model.init == config.inits[0]
            and model.eta == config.eta
            and model.lam == config.lambdas[0]
            and not model.cost
        ):
            logger.info(
                "seed %d (%d/%d) epoch %d/%d: %s layer RMS %s, gradient/decay %s (%.1f s)",
                model.seed,
                config.seeds.index(model.seed) + 1,
                len(config.seeds),
                row["epoch"],
                planned[model],
                model.init,
                [round(row[f"layer{l}_rms"], 4) for l in layers],
                [round(row.get(f"layer{l}_ratio", math.nan), 3) for l in layers],
                row["seconds"],
            )

    with progress(
        f"dynamics: {len(planned)} models",
        sum(e + 1 for e in planned.values()),
        "model-epochs",
        "dynamics-epochs",
    ) as bar:
        result = run_dynamics(config, data, on_epoch=on_epoch)
    theory = theory_table(result.epochs, config, len(data.train))
    stage.timings["stack_epoch_seconds"] = float(
        result.epochs["seconds"].sum()
    )  # wall times: never in a DVC output
    atomic.write_csv(paths.dynamics_epochs, result.epochs.drop(columns=["seconds"]))
    atomic.write_csv(paths.dynamics_theory, theory)
    atomic.write_csv(paths.dynamics_costs, cost_table(result.epochs, config))
    if config.sweep is not None:
        started = time.perf_counter()
        budget = budget_table(
            result.final,
            planned,
            data,
            get_cost(config.model.cost),
            config.sweep.eta,
            config.batch_size,
            config.along_points,
        )
        logger.info(
            "the sweep's models stepped through one more epoch (%d rows) in %.1f s",
            len(budget),
            time.perf_counter() - started,
        )
    else:
        budget = pd.DataFrame()
    atomic.write_csv(paths.dynamics_budget, budget)
    tables = plot_tables(result.epochs, theory, config)
    for name in PLOT_NAMES:
        atomic.write_csv(Path(paths.dynamics_plots_dir) / f"{name}.csv", tables[name])
    numbers = summarise(theory).to_json()
    atomic.write_json(paths.dynamics_metrics, numbers)

    models_dir = Path(paths.dynamics_dir)
    shutil.rmtree(models_dir, ignore_errors=True)  # a DVC output: only this run's models
    data_md5 = file_md5(paths.prepared)
    for model, net in result.final.items():
        checkpoint = models_dir / f"{model_key(model)}.pt"
        history = result.epochs[
            (result.epochs["init"] == model.init)
            & (result.epochs["seed"] == model.seed)
            & (result.epochs["eta"] == model.eta)
            & (result.epochs["lambda"] == model.lam)
            & (result.epochs["cost"] == cost_name(model, config))
        ].to_dict("records")
        save_model(
            net,
            0,
            checkpoint,
            meta={
                "init": model.init,
                "seed": model.seed,
                "lambda": model.lam,
                "eta": model.eta,
                "cost": cost_name(model, config),
                "epochs": len(history) - 1,
            },
        )
        log_model_run(params, stage, model, history, checkpoint, data_md5)
    tracking.log_metrics(stage.run_id, dict(_flat(numbers)))
    for row in theory[theory["measured_factor"].notna()].to_dict("records"):
        logger.info(
            "%s init, eta %g, lambda %g, layer %d: measured factor %.6f per epoch against theory "
            "%.6f",
            row["init"],
            row["eta"],
            row["lambda"],
            row["layer"],
            row["measured_factor"],
            row["theory_factor"],
        )
    return numbers
