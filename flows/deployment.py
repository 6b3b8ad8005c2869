"""Entry points of the Prefect deployments in prefect.yaml. They run the study *through
DVC* (`dvc repro`, or `dvc exp run -S key=value ...` when a run asks for other params), so
however a study is started its data and checkpoints end up in dvc.lock and the DVC cache,
and each stage still runs as its own flow with the same MLflow lineage."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

import yaml
from prefect import flow, get_run_logger
from prefect.runtime import flow_run

from l2path.config import load_params, parse_params
from edge import tracking
from edge.lineage import DEPLOYMENT_RUN_ENV
from edge.project import project_root


def validated_overrides(overrides: dict[str, Any]) -> list[str]:
    """``-S key=value`` arguments for dvc, after checking the params they produce (a bad or
    unknown key fails here, naming it, before any stage runs)."""
    raw = yaml.safe_load((project_root() / "params.yaml").read_text())
    for dotted, value in overrides.items():
        node = raw
        *parents, leaf = dotted.split(".")
        for key in parents:
            if not isinstance(node.get(key), dict):
                raise ValueError(f"unknown params key {dotted!r}")
            node = node[key]
        node[leaf] = value
    parse_params(raw)
    return [
        arg
        for dotted, value in overrides.items()
        for arg in (
            "-S",
            f"{dotted}={_flow_yaml(value)}",
        )
    ]


def run_through_dvc(overrides: dict[str, Any], targets: list[str]) -> dict:
    logger = get_run_logger()
    load_params(project_root() / "params.yaml")
    settings = validated_overrides(overrides)
    command = [
        sys.executable,
        "-m",
        "dvc",
        *(["exp", "run", *settings] if settings else ["repro"]),
        *targets,
    ]
    logger.info("running %s in %s", " ".join(command[2:]), project_root())
    this_run = str(flow_run.id)
    done = subprocess.run(
        command,
        cwd=project_root(),
        capture_output=True,
        text=True,
        env={**os.environ, DEPLOYMENT_RUN_ENV: this_run},
    )
    for line in (done.stdout + done.stderr).splitlines()[-40:]:
        logger.info(line)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command[2:])} failed with exit code {done.returncode}")
    status = subprocess.run(
        [sys.executable, "-m", "dvc", "status"], cwd=project_root(), capture_output=True, text=True
    )
    logger.info(
        "MLflow: every stage run of this flow run carries the tag "
        "prefect.deployment_flow_run_id = '%s' (runs view: %s)",
        this_run,
        _runs_filter_link(this_run),
    )
    return {
        "command": " ".join(command[2:]),
        "dvc_status": status.stdout.strip(),
        "flow_run_id": this_run,
    }


def _runs_filter_link(run_id: str) -> str:
    """The MLflow UI's runs view filtered to this flow run's stage runs (the UI named by
    ``report.mlflow_ui``), or the filter alone when no UI is configured."""
    query = f"tags.`prefect.deployment_flow_run_id` = '{run_id}'"
    params = load_params(project_root() / "params.yaml")
    if params.report.mlflow_ui is None:
        return query
    experiment = tracking.experiment_id(tracking.client(), params.study.name)
    return tracking.search_url(params.report.mlflow_ui, experiment, query)


@flow(
    name="study-deployment", description="The whole study through DVC (dvc repro / dvc exp run -S)."
)
def study_deployment(overrides: dict[str, Any] | None = None) -> dict:
    """``overrides``: dotted params keys and values, e.g. {"lambda_study.grid.factor": 4.0}."""
    return run_through_dvc(overrides or {}, [])


@flow(
    name="dynamics-deployment",
    description="Nielsen's weight-decay study through DVC, then the report.",
)
def dynamics_deployment(overrides: dict[str, Any] | None = None) -> dict:
    """``overrides`` of the ``dynamics`` section only, e.g. {"dynamics.epochs": 60}."""
    foreign = [key for key in (overrides or {}) if not key.startswith("dynamics.")]
    if foreign:
        raise ValueError(f"the dynamics deployment only takes dynamics.* params, not {foreign}")
    return run_through_dvc(overrides or {}, ["dynamics"])


def _flow_yaml(value) -> str:
    """A param value as one line of YAML (``dvc exp run -S`` parses it)."""
    return yaml.safe_dump(value, default_flow_style=True).strip().removesuffix("...").strip()
