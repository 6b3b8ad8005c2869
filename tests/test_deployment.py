"""prefect.yaml end to end: a real `prefect server` and a process worker on loopback, the
study deployed and triggered with custom params; its outputs are versioned by DVC and its
stages recorded in MLflow. Server and worker are stopped afterwards."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pandas as pd
import pytest
import yaml
from mlflow import MlflowClient

from repo_copy import tool_env
from servers import free_port, prefect_server_command, start, stop, wait_until_healthy


def schedules(root, env):
    inspected = prefect(
        ["deployment", "inspect", "study-deployment/study", "--output", "json"], root, env
    )
    return [
        (s["schedule"]["cron"], s["schedule"]["timezone"], s["active"])
        for s in json.loads(inspected)["schedules"]
    ]


def deploy(args, root, env):
    out = subprocess.run(
        [sys.executable, "-m", "flows.deploy", *args],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]


def test_deploy_refuses_a_bad_schedule_before_deploying():
    out = subprocess.run(
        [sys.executable, "-m", "flows.deploy", "--cron", "61 * * * *"],
        capture_output=True,
        text=True,
        timeout=120,
        env={
            **tool_env(Path("."), Path("/nonexistent"), shared_prefect=False),
            "PREFECT_API_URL": "http://127.0.0.1:9/api",
        },
    )
    assert out.returncode == 2 and "invalid --cron '61 * * * *'" in out.stderr


def prefect(args, root, env, timeout=300) -> str:
    out = subprocess.run(
        [str(Path(sys.executable).parent / "prefect"), *args],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert out.returncode == 0, (
        f"prefect {args} failed:\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}"
    )
    return out.stdout


# a changed param whose stages are cheap: dynamics and report re-run, the rest is DVC's cache
UI_OVERRIDES = {"dynamics.epochs": 1}
FINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}


def api_call(url: str, body: dict | None = None) -> dict:
    """GET (or POST ``body`` as JSON) on the Prefect server's REST API."""
    request = urllib.request.Request(
        url,
        data=None if body is None else json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
        method="GET" if body is None else "POST",
    )
    with urllib.request.urlopen(request, timeout=30) as answer:
        return json.loads(answer.read())


def wait_for_flow_run(api: str, run_id: str, timeout_s: float) -> str:
    """Poll the flow run until its state is final; its state type."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        state = api_call(f"{api}/flow_runs/{run_id}")["state"]["type"]
        if state in FINAL:
            return state
        time.sleep(5)
    return "TIMED OUT"


@pytest.mark.integration
def test_study_deployment_runs_through_a_worker(pipeline_repro, mirror, tmp_path):
    """On a copy of the session's small pipeline, as a user starts a run from the UI in a
    project already reproduced: the changed param re-runs the dynamics and the report; the
    other stages stay DVC's cached results."""
    root = pipeline_repro.copy_to(tmp_path / "repo")
    (tmp_path / "home" / "prefect").mkdir(parents=True)
    port = free_port()
    env = {
        **tool_env(mirror, tmp_path / "home", shared_prefect=False),
        "PREFECT_API_URL": f"http://127.0.0.1:{port}/api",
    }
    server = start(
        prefect_server_command(port),
        root,
        {k: v for k, v in env.items() if k != "PREFECT_API_URL"},
        tmp_path / "server.log",
    )
    worker = None
    try:
        wait_until_healthy(
            f"http://127.0.0.1:{port}/api/health", server, tmp_path / "server.log", timeout_s=180
        )
        prefect(["work-pool", "create", "l2path", "--type", "process"], root, env)
        deploy(["--nightly", "on", "--cron", "30 2 * * *", "--timezone", "Europe/Paris"], root, env)
        assert schedules(root, env) == [("30 2 * * *", "Europe/Paris", True)]
        deploy([], root, env)  # the defaults: nightly at 03:00 UTC, paused; updated in place
        assert schedules(root, env) == [("0 3 * * *", "UTC", False)]
        worker = start(
            [str(Path(sys.executable).parent / "prefect"), "worker", "start", "--pool", "l2path"],
            root,
            env,
            tmp_path / "worker.log",
        )
        # The UI's "Run > Custom run" with a changed parameter: the same REST call it makes
        api = f"http://127.0.0.1:{port}/api"
        deployment = api_call(f"{api}/deployments/name/study-deployment/study")
        started = api_call(
            f"{api}/deployments/{deployment['id']}/create_flow_run",
            {"parameters": {"overrides": UI_OVERRIDES}},
        )
        state = wait_for_flow_run(api, started["id"], timeout_s=1200)
        assert state == "COMPLETED", state + (tmp_path / "worker.log").read_text()[-4000:]
    finally:
        for process in (worker, server):
            if process is not None:
                stop(process)
    params = yaml.safe_load((root / "params.yaml").read_text())
    # the run's params, applied as a DVC experiment
    assert params["dynamics"]["epochs"] == 1
    question = pd.read_csv(root / "results/dynamics.csv").query("eta == 0.1")
    assert question["epoch"].max() == 1  # 2 in the copied pipeline
    status = subprocess.run(
        [sys.executable, "-m", "dvc", "status"], cwd=root, env=env, capture_output=True, text=True
    )
    assert "up to date" in status.stdout, status.stdout
    exps = subprocess.run(
        [sys.executable, "-m", "dvc", "exp", "list", "--all-commits"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
    )
    assert exps.returncode == 0 and exps.stdout.strip(), exps.stdout + exps.stderr
    for path in (
        "results/study.csv",
        "results/hessian.csv",
        "results/dynamics.csv",
        "reports/index.html",
    ):
        assert (root / path).is_file(), path
    client = MlflowClient(tracking_uri=f"sqlite:///{root / 'mlruns' / 'mlflow.db'}")
    runs = client.search_runs(
        [client.get_experiment_by_name("l2-weight-decay").experiment_id], max_results=1000
    )
    # linked: the runs this UI run made name its flow run
    ours = [r for r in runs if r.data.tags.get("prefect.deployment_flow_run_id") == started["id"]]
    stages = {
        r.data.tags["l2path.stage"]: r for r in ours if "." not in r.data.tags["l2path.stage"]
    }
    assert set(stages) == {"dynamics", "report"}
    assert all(
        r.data.tags["dvc.stage"] == name and len(r.data.tags["prefect.flow_run_id"]) == 36
        for name, r in stages.items()
    )
    assert stages["dynamics"].data.params["dynamics.epochs"] == "1"
    assert (
        len({r.data.tags["l2path.execution_id"] for r in ours}) == 1
    )  # one dvc process ran them all
    # each run carries its stage's dependency md5s, the same as dvc.lock recorded for the run
    lock = yaml.safe_load((root / "dvc.lock").read_text())["stages"]
    for name, run in stages.items():
        tagged = {
            k.removeprefix("dvc.dep."): v
            for k, v in run.data.tags.items()
            if k.startswith("dvc.dep.")
        }
        assert tagged == {dep["path"]: dep["md5"] for dep in lock[name]["deps"]}, name
