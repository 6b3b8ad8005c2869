"""Two studies started at once, from two checkouts, against one MLflow store: both finish,
and every run lands under its own study with nothing lost or mixed up."""

from __future__ import annotations

import subprocess
import sys

import pytest
from mlflow import MlflowClient

from repo_copy import copy_repo, tool_env
from study_setup import PIPELINE_STUDY


@pytest.mark.integration
def test_two_studies_at_once_share_one_store(mirror, tmp_path):
    store = f"sqlite:///{tmp_path / 'shared' / 'mlflow.db'}"
    (tmp_path / "shared").mkdir()
    roots, envs = [], []
    for name, seed in (("a", 0), ("b", 1)):
        root = copy_repo(tmp_path / name, {**PIPELINE_STUDY, "lambda_study.chain_seeds": [seed]})
        (tmp_path / f"home-{name}" / "prefect").mkdir(parents=True)
        env = {**tool_env(mirror, tmp_path / f"home-{name}"), "MLFLOW_TRACKING_URI": store}
        done = subprocess.run(
            [sys.executable, "-m", "flows.prepare"],
            cwd=root,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert done.returncode == 0, done.stderr[-3000:]
        roots.append(root)
        envs.append(env)
    studies = [
        subprocess.Popen(
            [sys.executable, "-m", "flows.study"],
            cwd=root,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for root, env in zip(roots, envs)
    ]
    outputs = [study.communicate(timeout=900)[0] for study in studies]
    assert [study.returncode for study in studies] == [0, 0], "\n".join(o[-3000:] for o in outputs)

    client = MlflowClient(tracking_uri=store)
    runs = client.search_runs(
        [client.get_experiment_by_name("l2-weight-decay").experiment_id], max_results=1000
    )
    study_runs = [r for r in runs if r.data.tags["l2path.stage"] == "study"]
    assert len(study_runs) == 2
    for study_run in study_runs:
        children = [
            r for r in runs if r.data.tags.get("mlflow.parentRunId") == study_run.info.run_id
        ]
        roles = [r.data.tags["l2path.role"] for r in children]
        assert (
            roles.count("point") == 3 + 3 + 2 * 3 and roles.count("control") == 2 + 2
        )  # a control per warm point
        assert all(r.info.status == "FINISHED" for r in children)
        assert {r.data.tags["l2path.execution_id"] for r in children} == {
            study_run.data.tags["l2path.execution_id"]
        }
        seeds = {r.data.params["seed"] for r in children if r.data.params["schedule"] != "cold"}
        assert len(seeds) == 1  # each study's chains carry its own seed only
    chain_seeds = {
        r.data.params["seed"]
        for r in runs
        if r.data.tags["l2path.stage"] == "study.point" and r.data.params["schedule"] == "ascending"
    }
    assert chain_seeds == {"0", "1"}
