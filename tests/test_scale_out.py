"""Scale-out of the lambda study: shards of whole chains on a Dask LocalCluster with two
worker processes (prefect-dask) give the same results table as the same shards on
threads; the workers report to the flow's own Prefect API (no temporary server of their
own) and their MLflow runs land under the study run."""

from __future__ import annotations

import json
import subprocess
import sys

import pandas as pd
import pytest
from mlflow import MlflowClient

from edge.scale_out import ScaleOutError, check_workers_can_report
from l2path.study.schedules import plan
from l2path.study.shards import shard_chains

from repo_copy import copy_repo, tool_env
from study_setup import write_synthetic_split
from test_study_flow import SMALL_STUDY, VARYING, results

# Runs the study flow with Prefect's temporary server (no PREFECT_API_URL), then asks that
# same server, still up in this process, which task runs the flow run has.
DRIVER = """
import json
from prefect import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
from flows.study import study
state = study(return_state=True)
flow_run_id = state.state_details.flow_run_id
with get_client(sync_client=True) as client:
    one_run = FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id]))
    runs = client.read_task_runs(flow_run_filter=one_run)
names = sorted([r.name.rsplit("-", 1)[0], r.state.type.value] for r in runs)
print("TASK_RUNS=" + json.dumps(names))
"""


def test_shards_hold_every_chain_once_with_balanced_points():
    chains = plan(["ascending", "descending", "cold"], [0, 1], [0, 1, 2], [0.5, 1.0, 2.0, 4.0, 8.0])
    shards = shard_chains(chains, 3)
    assert sorted(i for shard in shards for i in shard) == list(range(len(chains)))
    loads = [sum(len(chains[i]) for i in shard) for shard in shards]
    assert sum(loads) == 35 and max(loads) - min(loads) <= 1  # 4 chains of 5 points, 15 cold starts
    assert all(shard == sorted(shard) for shard in shards)
    assert shard_chains(chains, 3) == shards  # the split depends only on the plan
    assert shard_chains(chains[:2], 5) == [[0], [1]]  # empty shards dropped
    assert shard_chains(chains, 1) == [list(range(len(chains)))]
    with pytest.raises(ValueError, match="n_shards"):
        shard_chains(chains, 0)


def test_remote_workers_need_reachable_api_and_tracking_server():
    with pytest.raises(ScaleOutError, match="PREFECT_API_URL") as error:
        check_workers_can_report(
            "tcp://10.0.0.5:8786", "http://127.0.0.1:4200/api", "http://10.0.0.2:5000"
        )
    assert "MLFLOW_TRACKING_URI" not in str(error.value)
    with pytest.raises(ScaleOutError, match="MLFLOW_TRACKING_URI"):
        check_workers_can_report(
            "10.0.0.5:8786", "http://10.0.0.2:4200/api", "sqlite:////repo/mlruns/mlflow.db"
        )
    check_workers_can_report("tcp://127.0.0.1:8786", "http://127.0.0.1:4200/api", "sqlite:////x.db")
    check_workers_can_report(None, "http://127.0.0.1:4200/api", "sqlite:////x.db")


def run_sharded_study(tmp_path, name, executor):
    root = copy_repo(
        tmp_path / name,
        {
            **SMALL_STUDY,
            "lambda_study.shards": 2,
            "scale_out.executor": executor,
            "scale_out.local_workers": 2,
        },
    )
    write_synthetic_split(root / "data/prepared/mnist.npz", n_train=400, n_eval=100)
    (tmp_path / f"{name}-home" / "prefect").mkdir(parents=True)
    env = tool_env(root, tmp_path / f"{name}-home", shared_prefect=False)
    out = subprocess.run(
        [sys.executable, "-c", DRIVER],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    log = out.stdout + out.stderr
    assert out.returncode == 0, log[-4000:]
    task_runs = json.loads(log.split("TASK_RUNS=")[1].splitlines()[0])
    return root, log, task_runs


@pytest.mark.integration
def test_dask_local_cluster_matches_threads_and_reports_to_the_flow(tmp_path):
    threads_root, _, _ = run_sharded_study(tmp_path, "threads", "local")
    dask_root, log, task_runs = run_sharded_study(tmp_path, "dask", "dask")

    assert "distributed.scheduler" in log and "Registering Worker plugin" in log  # it ran on Dask
    ours, reference = results(dask_root), results(threads_root)
    assert len(ours) == 35  # 4 chains of 5 points (none collapses) and 15 cold starts
    pd.testing.assert_frame_equal(ours.drop(columns=VARYING), reference.drop(columns=VARYING))

    # The shard tasks ran in the worker processes but reported to the flow's server: it has
    # both shard runs, and no worker started a temporary server.
    assert [run for run in task_runs if run[0] == "train-shard"] == [
        ["train-shard", "COMPLETED"]
    ] * 2
    assert ["write-study-results", "COMPLETED"] in task_runs
    assert log.count("Starting temporary server") == 1, log[-4000:]

    client = MlflowClient(tracking_uri=f"sqlite:///{dask_root / 'mlruns' / 'mlflow.db'}")
    runs = client.search_runs(
        [client.get_experiment_by_name("l2-weight-decay").experiment_id], max_results=1000
    )
    (study_run,) = [r for r in runs if r.data.tags["l2path.stage"] == "study"]
    points = [r for r in runs if r.data.tags["l2path.stage"] == "study.point"]
    assert {r.data.tags["mlflow.parentRunId"] for r in points} == {study_run.info.run_id}
    assert sorted(r.info.run_id for r in points) == sorted(ours["mlflow_run_id"])
    assert all(r.info.status == "FINISHED" for r in points)
