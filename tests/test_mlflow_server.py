"""The stages against a real `mlflow server` on loopback (SQLite backend, local artifact
root), read back through the REST client; and a clear early error when it is down."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import mlflow
import pytest
import torch
from mlflow import MlflowClient

from l2path.model.checkpoint import load_model

from repo_copy import copy_repo, tool_env
from servers import free_port, start, stop, wait_until_healthy
from study_setup import PIPELINE_STUDY


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory):
    """The documented one command (``python -m edge.tracking_server``, docs/sharing.md):
    `mlflow server` on 127.0.0.1 with a SQLite store and served artifacts; stopped after."""
    root = tmp_path_factory.mktemp("mlflow-server")
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "edge.tracking_server",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--data",
        str(root),
    ]
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"}
    server = start(command, root, env, root / "server.log")
    uri = f"http://127.0.0.1:{port}"
    wait_until_healthy(f"{uri}/health", server, root / "server.log", timeout_s=120)
    yield uri
    stop(server)


def home(tmp_path):
    path = tmp_path / "home"
    (path / "prefect").mkdir(parents=True, exist_ok=True)
    return path


def run_stage(stage: str, root, env) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", f"flows.{stage}"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )


@pytest.mark.integration
def test_study_against_a_tracking_server(mlflow_server, mirror, tmp_path):
    """The stages log through the server; then the clone moves away (as a colleague's
    would be elsewhere) and its checkpoints and LoggedModels still open through the server:
    their URIs name the server's artifact store, not the clone's path."""
    root = copy_repo(tmp_path / "repo", PIPELINE_STUDY)
    env = {**tool_env(mirror, home(tmp_path)), "MLFLOW_TRACKING_URI": mlflow_server}
    for stage in ("prepare", "study"):
        done = run_stage(stage, root, env)
        assert done.returncode == 0, done.stderr[-4000:]
    assert not (root / "mlruns" / "mlflow.db").exists()  # nothing went to the local store
    moved = tmp_path / "moved" / "repo"
    moved.parent.mkdir()
    shutil.move(root, moved)
    root = moved
    client = MlflowClient(tracking_uri=mlflow_server)
    experiment = client.get_experiment_by_name("l2-weight-decay")
    runs = client.search_runs([experiment.experiment_id])
    study = [r for r in runs if r.data.tags["l2path.stage"] == "study"]
    points = [r for r in runs if r.data.tags["l2path.stage"] == "study.point"]
    assert len(study) == 1 and len(points) == 3 + 3 + 2 * 3
    assert {r.data.tags["mlflow.parentRunId"] for r in points} == {study[0].info.run_id}
    assert {"train_mse", "objective", "grad_norm"} <= set(points[0].data.metrics)
    history = client.get_metric_history(points[0].info.run_id, "sgd.objective")
    assert len(history) == int(points[0].data.metrics["epochs"])
    key = points[0].data.tags["l2path.point"]
    local = client.download_artifacts(
        points[0].info.run_id, f"checkpoint/{key.split('/')[-1]}.pt", str(tmp_path)
    )
    served, _ = load_model(local)
    saved, _ = load_model(root / "models/study" / f"{key}.pt")
    assert all(torch.equal(a, b) for a, b in zip(served.weights, saved.weights))
    assert points[0].info.artifact_uri.startswith("mlflow-artifacts:/")
    models = client.search_logged_models([experiment.experiment_id])
    model = next(m for m in models if m.source_run_id == points[0].info.run_id)
    assert model.artifact_location.startswith("mlflow-artifacts:/")
    files = mlflow.artifacts.download_artifacts(
        artifact_uri=model.artifact_location,
        dst_path=str(tmp_path / "model"),
        tracking_uri=mlflow_server,
    )
    (checkpoint,) = [p for p in Path(files).iterdir() if p.suffix == ".pt"]
    from_model, _ = load_model(checkpoint)
    assert all(torch.equal(a, b) for a, b in zip(from_model.weights, saved.weights))
    logged = {a.path for a in client.list_artifacts(study[0].info.run_id, "results")}
    assert {"results/study.csv", "results/monotonicity.csv"} <= logged


@pytest.mark.integration
def test_unreachable_tracking_server_fails_before_any_training(mirror, tmp_path):
    root = copy_repo(tmp_path / "repo", {"train.model.n_train": 1000, "train.epochs": 1})
    env = {
        **tool_env(mirror, home(tmp_path)),
        "MLFLOW_TRACKING_URI": f"http://127.0.0.1:{free_port()}",
    }
    assert run_stage("prepare", root, {**env, "MLFLOW_TRACKING_URI": ""}).returncode == 0
    started = time.monotonic()
    done = run_stage("train", root, env)
    assert done.returncode != 0
    assert "MLflow tracking server http://127.0.0.1:" in done.stderr + done.stdout
    assert "is unreachable" in done.stderr + done.stdout
    assert not (root / "models/train/model.pt").exists()
    assert time.monotonic() - started < 120
