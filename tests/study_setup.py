"""A small lambda study on synthetic data: the real code path, shrunk data and counts."""

from __future__ import annotations

import numpy as np
import torch
import yaml

from l2path.config import LambdaStudy
from l2path.model.network import DTYPES
from l2path.study.planner import StudyPlan
from l2path.study.progress import Progress
from l2path.study.records import SCALARS, Evaluation, PointRecord
from l2path.study.run import run_study
from l2path.study.store import PointStore

from conftest import REPO, synthetic_dataset
from repo_copy import set_dotted


# params.yaml overrides that shrink the study stage for pipeline tests on real MNIST:
# 3 lambdas, one chain seed, two cold seeds, 2000 training images, 2 epochs per point;
# curvature of the 3 ascending points on 500 images; the converged chains on 32 (one cold
# start); the
# weight-decay dynamics on 1000 images for 2 epochs, one seed.
PIPELINE_STUDY = {
    "lambda_study.model.n_train": 2000,
    "lambda_study.chain_seeds": [0],
    "lambda_study.cold_seeds": [0, 1],
    "lambda_study.grid.lambda_start": 1.0,
    "lambda_study.grid.lambda_max": 4.0,
    "lambda_study.sgd.max_epochs": 2,
    "hessian.select": "all",
    "hessian.n_train": 500,
    "hessian.k": 2,
    "hessian.lanczos_steps": 20,
    "hessian.slq_steps": 10,
    "hessian.trace_probes": 4,
    "chain.lbfgs_iterations": 300,
    "chain.newton_iterations": 30,
    "chain.cg_iterations": 200,
    "chain.workers": 1,
    "chain.n_sub": 32,
    "chain.cold_seeds": [0],
    "dynamics.model.n_train": 1000,
    "dynamics.epochs": 2,
    "dynamics.seeds": [0],
    "dynamics.question_epochs": 1,
    "dynamics.book": None,
    "dynamics.sweep": {"eta": 0.5, "epochs": 2, "lambdas": [1.0, 5.0], "seeds": [0]},
}


def small_config(**changes) -> LambdaStudy:
    """The repository's lambda_study params on a 5-point grid, float64, few epochs.

    ``changes`` are dotted keys, e.g. ``{"sgd.eta": 2.0}``, applied to the raw params.
    """
    raw = yaml.safe_load((REPO / "params.yaml").read_text())["lambda_study"]
    raw.update(chain_seeds=[0, 1], cold_seeds=[0, 1, 2], stack_width=32)
    raw["model"].update(dtype="float64")
    raw["grid"].update(lambda_start=0.5, factor=2.0, lambda_max=8.0)
    raw["sgd"].update(max_epochs=6, min_epochs=2, patience=1, rel_tol=1e-4, window=2)
    raw["polish"].update(schedules=["ascending"], max_iter=30, grad_tol=1e-3)
    for dotted, value in changes.items():
        set_dotted(raw, dotted, value)
    return LambdaStudy.model_validate(raw)


def small_data(n_train: int = 60, dtype: torch.dtype = torch.float64):
    return synthetic_dataset(n_train=n_train, n_eval=20, dtype=dtype)


def small_plan(
    config: LambdaStudy | None = None, n_train: int = 60, data_md5: str = "md5"
) -> StudyPlan:
    return StudyPlan.build(config or small_config(), n_train, data_md5)


def run_small(root, config=None, data=None, label="run") -> Progress:
    """The study's own loop (``l2path.study.run.run_study``) on small data; its final progress."""
    config = config or small_config()
    data = data or small_data(dtype=DTYPES[config.model.dtype])
    return run_study(small_plan(config, len(data.train)), data, PointStore(root), label)


def write_synthetic_split(path, n_train: int = 60, n_eval: int = 20, seed: int = 0) -> None:
    """A prepared ``.npz`` in the prepare stage's format, from random pixels (no MNIST needed)."""
    rng = np.random.default_rng(seed)
    arrays = {}
    for split, count in (("train", n_train), ("validation", n_eval), ("test", n_eval)):
        arrays[f"x_{split}"] = rng.random((count, 784)).astype(np.float32)
        arrays[f"y_{split}"] = rng.integers(0, 10, count).astype(np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as handle:
        np.savez(handle, **arrays)


def point_record(key: str, lam: float, diverged: bool = False) -> PointRecord:
    """A finished point for table-level tests: identity from ``key`` (schedule/seedS/lambdaII),
    every number zero."""
    schedule, seed, index = key.split("/")
    zeros = Evaluation(**{name: 0.0 for name in SCALARS}, layers=())
    return PointRecord(
        key=key,
        schedule=schedule,
        seed=int(seed.removeprefix("seed")),
        grid_index=int(index.removeprefix("lambda")),
        lam=lam,
        log2_lambda=0.0,
        fingerprint="f",
        start="fresh",
        parent=None,
        parent_checkpoint=None,
        parent_mlflow_run_id=None,
        checkpoint=f"{key}.pt",
        polished_checkpoint=None,
        epochs=1,
        best_epoch=1,
        objective_sd=0.0,
        data_loss_sd=0.0,
        train_mse_sd=0.0,
        diverged=diverged,
        message="",
        chain_start_weight_l2=1.0,
        train_seconds=0.0,
        polish_seconds=0.0,
        polished=False,
        polish_iterations=0,
        control_of=None,
        execution="",
        mlflow_run_id=None,
        sgd_grad_norm=0.0,
        grad_norm=0.0,
        critical=False,
        collapsed=False,
        sgd=zeros,
        final=zeros,
    )
