"""Lineage of a stage run: git commit, DVC stage and experiment, Prefect run, execution id.

The execution id groups the stage runs of one pipeline execution:
- ``python -m flows.pipeline`` passes its own flow-run id to every stage;
- under ``dvc repro`` / ``dvc exp run`` each stage is its own process, so the id is
  derived from the DVC process that launched it (same pid and start time for all of
  its stages); ``$L2PATH_EXECUTION_ID`` overrides both.
"""

from __future__ import annotations

import functools
import getpass
import os
import subprocess
from pathlib import Path

import psutil


def _git(root: Path, *args: str) -> str | None:
    try:
        out = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def git_commit(root: Path) -> str | None:
    return _git(root, "rev-parse", "HEAD")


# What defines a computation. dvc.lock and the metrics/plots files are rewritten by the
# pipeline itself, so changes there do not make a run "dirty".
DEFINING_PATHS = (
    "l2path",
    "edge",
    "flows",
    "tasks",
    "params.yaml",
    "dvc.yaml",
    "pyproject.toml",
    "requirements.lock",
)


def git_dirty(root: Path) -> bool | None:
    """Whether code or config (DEFINING_PATHS) differ from the commit; None outside git."""
    status = _git(root, "status", "--porcelain", "--untracked-files=no", "--", *DEFINING_PATHS)
    return None if status is None else bool(status)


def _is_dvc_process(process: psutil.Process) -> bool:
    """`dvc ...`, `python .../bin/dvc ...` or `python -m dvc ...`."""
    try:
        argv = process.cmdline()[:3]
    except (psutil.Error, OSError):
        return False
    return any(Path(arg).name == "dvc" for arg in argv[:2]) or argv[1:3] == ["-m", "dvc"]


def dvc_execution_id() -> str | None:
    """'dvc-<pid>-<start time>' of the nearest ancestor ``dvc`` process, if any."""
    try:
        for process in psutil.Process().parents():
            if _is_dvc_process(process):
                return f"dvc-{process.pid}-{int(process.create_time())}"
    except psutil.Error:
        return None
    return None


def execution_id(explicit: str | None, flow_run_id: str | None) -> str:
    return (
        os.environ.get("L2PATH_EXECUTION_ID") or explicit or dvc_execution_id() or str(flow_run_id)
    )


@functools.lru_cache(maxsize=None)
def dvc_dep_md5s(root: Path, stage: str) -> tuple[tuple[str, str], ...]:
    """(path, md5) of every file and directory dependency of DVC stage ``stage``, as
    dvc.lock records them for this run (a directory's md5 ends in ``.dir``).

    Computed by DVC from the files now, not read from dvc.lock: while ``dvc repro`` runs a
    stage, dvc.lock still holds the previous run's values, and a run without DVC
    (``python -m flows.pipeline``) has none. Params are not here: each run logs its
    stage's params as MLflow params.
    """
    from dvc.dependency.param import ParamsDependency
    from dvc.repo import Repo

    with Repo(str(root)) as repo:
        (dvc_stage,) = repo.stage.collect(stage)
        # DVC names a new file's hash "md5-dos2unix"; the value is the file's plain md5
        return tuple(
            (dep.def_path, dep.get_hash().value)
            for dep in dvc_stage.deps
            if not isinstance(dep, ParamsDependency)
        )


def dvc_dep_tags(root: Path, stage: str) -> dict[str, str]:
    """``dvc.dep.<path>``: md5 per dependency of the stage; ``dvc.deps_error`` says why
    there are none (outside a DVC project, an unknown stage): lineage never stops a stage."""
    try:
        return {f"dvc.dep.{path}": md5 for path, md5 in dvc_dep_md5s(root, stage)}
    except Exception as exc:  # noqa: BLE001 - any DVC failure is reported on the run instead
        return {"dvc.deps_error": f"{type(exc).__name__}: {exc}"[:500]}


DEPLOYMENT_RUN_ENV = "L2PATH_DEPLOYMENT_RUN_ID"  # set by flows/deployment.py for its dvc run


def _deployment_run_tag() -> dict[str, str]:
    """The Prefect flow run of the deployment that started this stage (a run from the UI,
    a schedule or ``prefect deployment run``), so the UI's run finds its MLflow runs."""
    run_id = os.environ.get(DEPLOYMENT_RUN_ENV)
    return {"prefect.deployment_flow_run_id": run_id} if run_id else {}


def lineage_tags(root: Path, stage: str, flow_run_id: str | None, execution: str) -> dict[str, str]:
    """MLflow tags describing where a stage run came from (values are strings).

    ``stage`` is a pipeline stage or one of its child runs (``study.point``): the DVC
    stage is the part before the dot.
    """
    commit = git_commit(root)
    pipeline_stage = stage.split(".")[0]
    tags = {
        "l2path.stage": stage,
        "l2path.execution_id": execution,
        "git.commit": commit or "unknown",
        "git.dirty": str(git_dirty(root)).lower(),
        "dvc.stage": os.environ.get("DVC_STAGE", ""),
        "prefect.flow_run_id": str(flow_run_id or ""),
        **_deployment_run_tag(),
        # the UI's Source and User columns
        "mlflow.source.name": f"flows/{pipeline_stage}.py",
        "mlflow.source.type": "PROJECT" if os.environ.get("DVC_STAGE") else "LOCAL",
        "mlflow.user": _user(),
        **dvc_dep_tags(root, pipeline_stage),
    }
    # only inside `dvc exp run`: an empty experiment name would read as "an experiment named ''"
    tags.update(
        {
            tag: os.environ[variable]
            for tag, variable in (
                ("dvc.exp_name", "DVC_EXP_NAME"),
                ("dvc.exp_baseline_rev", "DVC_EXP_BASELINE_REV"),
            )
            if os.environ.get(variable)
        }
    )
    if commit:
        tags["mlflow.source.git.commit"] = commit
    return tags


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no user name for this uid (some containers)
        return str(os.getuid())
