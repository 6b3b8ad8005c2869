"""The study stage as users run it (`python -m flows.study`): killed with SIGKILL and re-run,
it finishes with the same results as an uninterrupted run; its MLflow runs, results table
and checkpoints agree with each other."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest
import torch
from mlflow import MlflowClient

from l2path.model.checkpoint import load_model

from repo_copy import copy_repo, tool_env
from study_setup import write_synthetic_split

SMALL_STUDY = {
    "lambda_study.chain_seeds": [0, 1],
    "lambda_study.cold_seeds": [0, 1, 2],
    "lambda_study.model.n_train": 200,
    "lambda_study.grid.lambda_start": 0.5,
    "lambda_study.grid.lambda_max": 8.0,
    "lambda_study.sgd.max_epochs": 3,
    "lambda_study.sgd.min_epochs": 2,
    "lambda_study.sgd.patience": 1,
    # The flow's polish path (polished checkpoints logged, resumed) at a loose tolerance: a few
    # L-BFGS iterations per point. Converging to 1e-4 took 85 % of this study's 4 minutes
    # (Newton-CG; docs/testing.md); the polish itself is tested in test_study.py and
    # test_corrector.py.
    "lambda_study.polish.schedules": ["ascending"],
    "lambda_study.polish.max_iter": 20,
    "lambda_study.polish.grad_tol": 0.05,
}
VARYING = ["train_seconds", "polish_seconds", "execution", "mlflow_run_id", "parent_mlflow_run_id"]


def study_copy(tmp_path_factory, name):
    root = copy_repo(tmp_path_factory.mktemp(name), SMALL_STUDY)
    write_synthetic_split(root / "data/prepared/mnist.npz", n_train=400, n_eval=100)
    env = tool_env(root, tmp_path_factory.mktemp(f"{name}-home"))
    return root, env


def run_study(root, env):
    out = subprocess.run(
        [sys.executable, "-m", "flows.study"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]


def finished_records(root):
    return [p for p in (root / "models/study").rglob("*.json") if not p.name.endswith(".sgd.json")]


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    root, env = study_copy(tmp_path_factory, "whole")
    run_study(root, env)
    return root


@pytest.fixture(scope="module")
def killed_and_resumed(tmp_path_factory):
    root, env = study_copy(tmp_path_factory, "killed")
    process = subprocess.Popen(
        [sys.executable, "-m", "flows.study"],
        cwd=root,
        env=env,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 300
    while not finished_records(root) and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    os.killpg(process.pid, signal.SIGKILL)  # the flow and its temporary Prefect server
    process.wait()
    before = {p: p.stat().st_mtime_ns for p in finished_records(root)}
    run_study(root, env)
    return root, before


def run_fields(root) -> pd.DataFrame:
    """Each point's run fields, from the store's untracked run files (lineage/study_points)."""
    rows = [
        {
            "key": path.relative_to(root / "lineage/study_points").as_posix().removesuffix(".json"),
            **{k: v for k, v in json.loads(path.read_text()).items() if k != "fingerprint"},
        }
        for path in (root / "lineage/study_points").rglob("*.json")
        if not path.name.endswith(".sgd.json")
    ]
    return pd.DataFrame(rows)


def results(root):
    """results/study.csv (which holds no run field: a DVC output) with the run fields beside it."""
    table = pd.read_csv(root / "results/study.csv")
    assert not set(VARYING) & set(table.columns)
    return table.merge(run_fields(root), on="key", how="left", validate="one_to_one")


def test_killed_study_resumes_without_retraining_and_matches(uninterrupted, killed_and_resumed):
    root, before = killed_and_resumed
    table = results(root)
    assert 0 < len(before) < len(table), "the kill must land mid-study"
    labels = table.set_index("key")["execution"]
    first = {p.relative_to(root / "models/study").as_posix().removesuffix(".json") for p in before}
    assert labels[sorted(first)].nunique() == 1 and labels.nunique() == 2  # finished points kept
    pd.testing.assert_frame_equal(
        table.drop(columns=VARYING), results(uninterrupted).drop(columns=VARYING)
    )
    assert table["mlflow_run_id"].notna().all() and table["mlflow_run_id"].is_unique


def test_results_mlflow_and_checkpoints_agree(uninterrupted, tmp_path):
    root = uninterrupted
    table = results(root)
    client = MlflowClient(tracking_uri=f"sqlite:///{root / 'mlruns' / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("l2-weight-decay")
    runs = client.search_runs([experiment.experiment_id], max_results=1000)
    study_runs = [r for r in runs if r.data.tags["l2path.stage"] == "study"]
    children = {r.info.run_id: r for r in runs if r.data.tags["l2path.stage"] == "study.point"}
    assert len(study_runs) == 1 and study_runs[0].info.status == "FINISHED"
    assert len(children) == len(table) and set(table["mlflow_run_id"]) == set(children)
    for _, point in table.iterrows():
        run = children[point["mlflow_run_id"]]
        assert run.data.tags["mlflow.parentRunId"] == study_runs[0].info.run_id
        assert run.data.tags["l2path.point"] == point["key"]
        assert run.data.params["lambda"] == repr(float(point["lambda"]))
        assert run.data.metrics["train_mse"] == pytest.approx(point["train_mse"], rel=1e-12)
        if point["start"] == "warm":
            parent = table.set_index("key").loc[point["parent"]]
            assert run.data.tags["l2path.warm_start_run_id"] == parent["mlflow_run_id"]
            assert point["parent_checkpoint"] == parent["checkpoint"]
    warm = table[table["start"] == "warm"].iloc[0]
    local = client.download_artifacts(
        warm["mlflow_run_id"], f"checkpoint/{warm['key'].split('/')[-1]}.pt", str(tmp_path)
    )
    logged, _ = load_model(local)
    saved, _ = load_model(root / warm["checkpoint"])
    assert all(torch.equal(a, b) for a, b in zip(logged.weights, saved.weights))
    history = client.get_metric_history(warm["mlflow_run_id"], "sgd.objective")
    assert [m.step for m in history] == list(range(1, int(warm["epochs"]) + 1))
