"""edge.tracking against a real SQLite MLflow store; edge.lineage's tags and ids."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from mlflow import MlflowClient

from edge import lineage, relocation, tracking
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
    assert [(m.step, m.value) for m in client.get_metric_history(run_id, "loss")] == [
        (1, 1.0),
        (2, 0.5),
        (3, 1 / 3),
    ]
    assert client.get_metric_history(run_id, "final")[0].step == 7
    experiment = client.get_experiment_by_name("exp")
    assert experiment.artifact_location == (store.resolve() / "mlruns" / "artifacts").as_uri()


def test_run_exists_only_for_runs_of_this_store(store):
    with tracking.stage_run("exp", "a run", {}, {}) as run_id:
        pass
    assert tracking.run_exists(run_id)
    assert not tracking.run_exists("0" * 32)


def test_failed_stage_marks_run_failed_and_records_the_error(store):
    with pytest.raises(RuntimeError):
        with tracking.stage_run("exp", "boom", {}, {}) as run_id:
            raise RuntimeError("stage failed")
    run = MlflowClient(tracking.tracking_uri()).get_run(run_id)
    assert (
        run.info.status == "FAILED"
        and run.data.tags["l2path.error"] == "RuntimeError: stage failed"
    )
    note = run.data.tags["mlflow.note.content"]  # the run's description in the UI
    assert (
        "RuntimeError: stage failed" in note
        and "Traceback" in note
        and "raise RuntimeError" in note
    )


def test_experiment_opens_as_model_training_and_runs_keep_their_real_times(store):
    with tracking.stage_run(
        "exp", "a point", {}, {}, start_time=1_700_000_000.25, end_time=1_700_000_090.5
    ) as run_id:
        pass
    client = MlflowClient(tracking.tracking_uri())
    run = client.get_run(run_id)
    assert (run.info.start_time, run.info.end_time) == (1_700_000_000_250, 1_700_000_090_500)
    assert (
        client.get_experiment_by_name("exp").tags["mlflow.experimentKind"]
        == "custom_model_development"
    )


def test_a_checkpoint_is_logged_as_a_model_with_its_params_and_metrics(store, tmp_path):
    weights = tmp_path / "lambda03.pt"
    weights.write_bytes(b"weights")
    with tracking.stage_run("exp", "a point", {}, {}) as run_id:
        with tracking.logged_model(
            run_id,
            "ascending/seed0/lambda0.5",
            weights,
            {"lambda": 2.0, "seed": 0},
            {"l2path.point": "ascending/seed0/lambda0.5"},
        ) as model_id:
            tracking.log_history(
                run_id,
                [{"epoch": 1, "train_mse": 0.25}, {"epoch": 2, "train_mse": 0.125}],
                model_id=model_id,
            )
    client = MlflowClient(tracking.tracking_uri())
    model = client.get_logged_model(model_id)
    assert model.name == "ascending-seed0-lambda0p5" and model.source_run_id == run_id
    assert str(model.status) in ("READY", "LoggedModelStatus.READY")
    assert (
        model.params == {"lambda": "2.0", "seed": "0"}
        and model.tags["l2path.point"] == "ascending/seed0/lambda0.5"
    )
    assert {(m.key, m.step, m.value) for m in model.metrics} >= {("train_mse", 2, 0.125)}
    # the run's history is logged once, not a second time for the model
    assert [(m.step, m.value) for m in client.get_metric_history(run_id, "train_mse")] == [
        (1, 0.25),
        (2, 0.125),
    ]
    assert (
        mlflow_artifacts_named(model, "lambda03.pt", tmp_path / "model").read_bytes() == b"weights"
    )


def test_a_model_whose_block_fails_is_marked_failed(store, tmp_path):
    (tmp_path / "w.pt").write_bytes(b"w")
    with tracking.stage_run("exp", "a point", {}, {}) as run_id:
        with pytest.raises(ValueError):
            with tracking.logged_model(run_id, "m", tmp_path / "w.pt", {}) as model_id:
                raise ValueError("no weights")
    assert "FAILED" in str(MlflowClient(tracking.tracking_uri()).get_logged_model(model_id).status)


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
    assert tags["mlflow.source.name"] == "flows/train.py" and tags["mlflow.user"]
    assert "dvc.exp_name" not in tags  # not inside `dvc exp run`
    assert "prefect.deployment_flow_run_id" not in tags  # not started by a deployment
    assert lineage.git_commit(tmp_path.parent / "nowhere") is None


def test_a_stage_started_by_a_deployment_names_its_flow_run(tmp_path, monkeypatch):
    monkeypatch.setenv(lineage.DEPLOYMENT_RUN_ENV, "0b1c-flow-run")
    tags = lineage.lineage_tags(tmp_path, "study.point", "abc", "exec-1")
    assert tags["prefect.deployment_flow_run_id"] == "0b1c-flow-run"


def test_a_moved_store_finds_its_artifacts_and_models(tmp_path, monkeypatch):
    """mlruns/ copied to another checkout: MLflow recorded absolute file:// URIs, and the
    first client there points them at the new mlruns/artifacts."""
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    first, second = tmp_path / "first_checkout", tmp_path / "second_checkout"
    first.mkdir()
    monkeypatch.chdir(first)
    (first / "weights.pt").write_bytes(b"weights")
    with tracking.stage_run("exp", "a run", {}, {}) as run_id:
        tracking.log_artifact(run_id, first / "weights.pt", "checkpoint")
        with tracking.logged_model(run_id, "a-model", first / "weights.pt", {}) as model_id:
            pass
    shutil.copytree(first / "mlruns", second / "mlruns")
    shutil.rmtree(first)
    monkeypatch.chdir(second)
    tracking._adopt_once.cache_clear()
    client = tracking.client()
    assert (
        client.get_experiment_by_name("exp").artifact_location
        == (second / "mlruns/artifacts").resolve().as_uri()
    )
    local = client.download_artifacts(run_id, "checkpoint/weights.pt", str(tmp_path))
    assert Path(local).read_bytes() == b"weights"
    model = client.get_logged_model(model_id)
    assert model.artifact_location.startswith((second / "mlruns/artifacts").resolve().as_uri())
    assert mlflow_artifacts_named(model, "weights.pt", tmp_path / "m").read_bytes() == b"weights"
    assert relocation.adopt(second / "mlruns") == 0  # already here: nothing to rewrite


def mlflow_artifacts_named(model, name, target):
    """A file of a logged model, downloaded from the model's artifact location."""
    import mlflow.artifacts

    mlflow.artifacts.download_artifacts(
        artifact_uri=f"{model.artifact_location}/{name}", dst_path=str(target)
    )
    return target / name


def test_the_run_that_wrote_a_file_is_found_by_its_md5(store):
    """Content lineage: the newest finished run of the stage whose dvc.out tag matches."""
    runs = []
    for start, md5 in ((1_000_000, "aaa"), (2_000_000, "bbb"), (3_000_000, "bbb")):
        with tracking.stage_run(
            "exp", "study", {}, {"l2path.stage": "study"}, start_time=start
        ) as run_id:
            tracking.set_tags(run_id, {"dvc.out.results/study.csv": md5})
        runs.append(run_id)
    with pytest.raises(RuntimeError):  # a failed run that wrote the same bytes is not a writer
        with tracking.stage_run(
            "exp", "study", {}, {"l2path.stage": "study"}, start_time=4_000_000
        ) as failed:
            tracking.set_tags(failed, {"dvc.out.results/study.csv": "bbb"})
            raise RuntimeError("killed")
    assert tracking.run_wrote(runs[0], "results/study.csv", "aaa")
    assert not tracking.run_wrote(runs[0], "results/study.csv", "bbb")
    assert not tracking.run_wrote("0" * 32, "results/study.csv", "aaa")  # a run of another store
    assert (
        tracking.run_that_wrote("exp", "study", "results/study.csv", "bbb").info.run_id == runs[2]
    )
    assert tracking.run_that_wrote("exp", "hessian", "results/study.csv", "bbb") is None
    assert tracking.run_that_wrote("no-such-study", "study", "results/study.csv", "bbb") is None


def test_a_stage_names_a_place_where_its_run_opens(monkeypatch, tmp_path):
    """On the local store: its path, the exact `mlflow ui` command and the page it serves
    (a bare URL to a UI nobody started would not open); on a tracking server: its page
    there."""
    from edge.stage import run_location

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.chdir(tmp_path)
    store = f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}"
    assert run_location("http://127.0.0.1:5001", "3", "abc") == (
        f"run abc in {tmp_path / 'mlruns' / 'mlflow.db'}; to browse it: mlflow ui "
        f"--backend-store-uri {store} --host 127.0.0.1 --port 5001, then "
        "http://127.0.0.1:5001/#/experiments/3/runs/abc?workflowType=machine_learning"
    )
    assert run_location(None, "3", "abc") == f"run abc in {tmp_path / 'mlruns' / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://mlflow.example.org:5000")
    assert run_location("http://127.0.0.1:5001", "3", "abc") == (
        "http://mlflow.example.org:5000/#/experiments/3/runs/abc?workflowType=machine_learning"
    )
