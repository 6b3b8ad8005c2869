"""edge.tracking against a real SQLite MLflow store; edge.lineage's tags and ids."""
from __future__ import annotations

import subprocess

import pytest
from mlflow import MlflowClient

from edge import lineage, tracking
from edge.project import persistent_root


@pytest.fixture
def store(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return tmp_path


def test_store_is_absolute_sqlite_under_mlruns(store):
    assert tracking.tracking_uri() == f"sqlite:///{store.resolve()}/mlruns/mlflow.db"


def test_stage_run_logs_params_history_and_status(store):
    history = [{"epoch": e, "loss": 1.0 / e, "acc": 0.5 + e / 10} for e in (1, 2, 3)]
    with tracking.stage_run("exp", "a run", {"lambda": 0.5, "mirror": None}, {"k": "v"}) as run_id:
        tracking.log_history(run_id, history)
        tracking.log_metrics(run_id, {"final": 2.5}, step=7)
    client = MlflowClient(tracking.tracking_uri())
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED" and run.data.tags["k"] == "v"
    assert run.data.params == {"lambda": "0.5", "mirror": "null"}
    assert [(m.step, m.value) for m in client.get_metric_history(run_id, "loss")] == [(1, 1.0), (2, 0.5), (3, 1 / 3)]
    assert client.get_metric_history(run_id, "final")[0].step == 7
    experiment = client.get_experiment_by_name("exp")
    assert experiment.artifact_location == (store.resolve() / "mlruns" / "artifacts").as_uri()


def test_run_exists_only_for_runs_of_this_store(store):
    with tracking.stage_run("exp", "a run", {}, {}) as run_id:
        pass
    assert tracking.run_exists(run_id)
    assert not tracking.run_exists("0" * 32)


def test_failed_stage_marks_run_failed(store):
    with pytest.raises(RuntimeError):
        with tracking.stage_run("exp", "boom", {}, {}) as run_id:
            raise RuntimeError("stage failed")
    assert MlflowClient(tracking.tracking_uri()).get_run(run_id).info.status == "FAILED"


def test_dvc_temp_workspace_maps_to_real_repo(tmp_path, monkeypatch):
    workspace = tmp_path / "repo" / ".dvc" / "tmp" / "exps" / "tmpabc123"
    workspace.mkdir(parents=True)
    monkeypatch.chdir(workspace)
    assert persistent_root() == (tmp_path / "repo").resolve()


def test_execution_id_precedence(monkeypatch):
    monkeypatch.delenv("L2PATH_EXECUTION_ID", raising=False)
    assert lineage.execution_id("explicit", "flow") == "explicit"
    monkeypatch.setenv("L2PATH_EXECUTION_ID", "from-env")
    assert lineage.execution_id("explicit", "flow") == "from-env"


def test_dirty_flag_follows_code_not_outputs(tmp_path):
    run = lambda *a: subprocess.run(["git", *a], cwd=tmp_path, check=True, capture_output=True)  # noqa: E731
    run("init", "-q")
    (tmp_path / "params.yaml").write_text("a: 1\n")
    (tmp_path / "dvc.lock").write_text("x\n")
    run("add", "-A")
    run("-c", "user.name=t", "-c", "user.email=t@e.invalid", "commit", "-qm", "c")
    assert lineage.git_dirty(tmp_path) is False
    (tmp_path / "dvc.lock").write_text("y\n")
    assert lineage.git_dirty(tmp_path) is False
    (tmp_path / "params.yaml").write_text("a: 2\n")
    assert lineage.git_dirty(tmp_path) is True
    tags = lineage.lineage_tags(tmp_path, "train", "abc", "exec-1")
    assert tags["git.commit"] == lineage.git_commit(tmp_path) and tags["l2path.stage"] == "train"
    assert lineage.git_commit(tmp_path.parent / "nowhere") is None
