"""The Prefect path: the pipeline flow in-process, and bad params refused before any work."""

from __future__ import annotations

import copy
import subprocess
import sys

import pytest
import yaml
from mlflow import MlflowClient
from prefect.client.orchestration import get_client
from prefect.testing.utilities import prefect_test_harness

from l2path.config import ParamsError

from conftest import REPO
from repo_copy import copy_repo, tool_env
from study_setup import PIPELINE_STUDY


@pytest.fixture
def bad_params(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    bad = copy.deepcopy(raw)
    bad["train"]["lambda"] = -0.5
    bad["train"]["model"]["cost"] = "hinge"
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump(bad))
    return tmp_path / "bad.yaml"


def test_cli_refuses_bad_params_before_any_work(bad_params, capsys):
    from edge.cli import run_stage
    from flows.train import train

    with pytest.raises(SystemExit) as info:
        run_stage(train, ["--params", str(bad_params)])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert (
        "train.lambda" in err
        and "train.model.cost" in err
        and "'quadratic' or 'cross_entropy'" in err
    )
    assert not (bad_params.parent / "mlruns").exists()


def test_a_stage_says_it_started_before_its_heavy_imports(bad_params):
    """The first line comes from the flows package, before Prefect, MLflow and torch load."""
    out = subprocess.run(
        [sys.executable, "-m", "flows.train", "--params", str(bad_params)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    lines = out.stderr.splitlines()
    assert out.returncode == 2 and lines[0].endswith("stage train: starting"), out.stderr[-2000:]
    assert lines[1].startswith("error: invalid params") and "train.lambda" in out.stderr


def test_flow_refuses_bad_params_before_opening_a_run(prefect_api, bad_params):
    from flows.prepare import prepare

    with pytest.raises(ParamsError, match="train.lambda"):
        prepare(params_file=str(bad_params))
    assert not (bad_params.parent / "mlruns").exists()
    assert not (bad_params.parent / "data").exists()


@pytest.fixture
def own_prefect_server():
    """A Prefect server of this test's own: the test reads every artifact the server holds,
    and the session's shared server holds other tests' reports too."""
    with prefect_test_harness(server_startup_timeout=120):
        yield


@pytest.mark.integration
def test_pipeline_flow_runs_every_stage_with_one_execution_id(
    own_prefect_server, mirror, tmp_path, monkeypatch
):
    from flows.pipeline import pipeline

    root = copy_repo(
        tmp_path,
        {
            "train.model.n_train": 1000,
            "train.epochs": 1,
            "train.model.dtype": "float64",
            **PIPELINE_STUDY,
        },
    )
    monkeypatch.chdir(root)
    monkeypatch.setenv("MNIST_MIRROR", str(mirror))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    result = pipeline()
    assert result["prepare"]["counts"]["train"] == 50000
    assert result["train"]["n_train"] == 1000 and result["train"]["epoch"] == 1
    assert (root / "models/train/model.pt").is_file()
    client = MlflowClient(tracking_uri=f"sqlite:///{root / 'mlruns' / 'mlflow.db'}")
    runs = client.search_runs([client.get_experiment_by_name("l2-weight-decay").experiment_id])
    executions = {r.data.tags["l2path.execution_id"] for r in runs}
    assert {r.data.tags["l2path.stage"] for r in runs} == {
        "prepare",
        "train",
        "study",
        "study.point",
        "study.control",
        "hessian",
        "hessian.point",
        "continuation",
        "continuation.chain",
        "dynamics",
        "dynamics.model",
        "report",
    }
    assert (root / "reports/index.html").is_file() and result["report"]["points"] == 3 + 3 + 2 * 3
    assert len(executions) == 1 and executions.pop().startswith("prefect-")
    assert set(result["study"]) == {"ascending", "descending", "cold"}
    assert {r.data.tags["dvc.stage"] for r in runs} == {""}
    with get_client(sync_client=True) as prefect:
        artifacts = {
            a.key: a for a in prefect.read_artifacts() if a.key
        }  # the server also keeps unkeyed ones
    # every long task left a progress artifact, finished at 100 %
    assert {
        "train-epochs",
        "hessian-points",
        "chain-jobs",
        "dynamics-epochs",
    } <= set(artifacts)
    assert any(key.startswith("study-shard-") for key in artifacts)
    assert all(a.data == 100.0 for key, a in artifacts.items() if a.type == "progress"), artifacts
    summary = artifacts[
        "l2path-report"
    ].data  # figures inlined: the Prefect UI has no directory beside it
    assert "](figures/" not in summary and summary.count("](data:image/png;base64,") >= 5
    stage_runs = [r for r in runs if "." not in r.data.tags["l2path.stage"]]
    assert "## MLflow runs" in summary and all(r.info.run_id in summary for r in stage_runs)
    # outputs made outside `dvc repro` are recorded by `dvc commit` (docs/orchestration.md)
    env = tool_env(mirror, tmp_path / "dvc-home")
    committed = subprocess.run(
        [sys.executable, "-m", "dvc", "commit", "-f"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
    )
    assert committed.returncode == 0, committed.stderr[-3000:]
    status = subprocess.run(
        [sys.executable, "-m", "dvc", "status"], cwd=root, env=env, capture_output=True, text=True
    )
    assert "up to date" in status.stdout, status.stdout
