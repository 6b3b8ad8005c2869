"""A throw-away copy of this repository (its tracked and unignored files) as a fresh git repo."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from edge.relocation import adopt

from conftest import REPO
from servers import SHARED_PREFECT


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=cwd, check=True, capture_output=True, text=True
    ).stdout


def set_dotted(mapping: dict, dotted: str, value) -> None:
    """mapping["a"]["b"]["c"] = value for dotted = "a.b.c"."""
    *sections, key = dotted.split(".")
    for section in sections:
        mapping = mapping[section]
    mapping[key] = value


SETUP_BUILT = (".dvc/plots/offline.html",)  # `dvc plots show`'s offline template


def copy_repo(dest: Path, overrides: dict | None = None) -> Path:
    """Copy the working tree's files (as git sees them) to ``dest``, apply params overrides,
    commit."""
    listed = git(REPO, "ls-files", "-z", "--cached", "--others", "--exclude-standard").split("\0")
    for name in filter(None, listed):
        source = REPO / name
        if source.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / name)
    for built in SETUP_BUILT:  # what setup.sh builds, git-ignored
        if (REPO / built).is_file():
            (dest / built).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / built, dest / built)
    if overrides:
        params = yaml.safe_load((dest / "params.yaml").read_text())
        for dotted, value in overrides.items():
            set_dotted(params, dotted, value)
        (dest / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    git(dest, "init", "-q")
    git(dest, "add", "-A")
    git(
        dest,
        "-c",
        "user.name=test",
        "-c",
        "user.email=test@example.invalid",
        "commit",
        "-qm",
        "copy",
    )
    return dest


def copy_finished(source: Path, dest: Path) -> Path:
    """A copy of a repo copy whose stages have run (git history, DVC cache, outputs with their
    modification times, so DVC sees nothing changed), its MLflow store pointed at its own
    artifacts as a moved store is (``edge.relocation.adopt``)."""
    shutil.copytree(source, dest, symlinks=True)
    adopt(dest / "mlruns")
    return dest


def tool_env(mirror: Path, home: Path, shared_prefect: bool = True) -> dict[str, str]:
    """Environment for running the project's commands: this venv first on PATH, the mirror
    selected, Prefect state isolated, telemetry off, no inherited tracking server. Flows
    report to the session's one Prefect server (``servers.SHARED_PREFECT``), or, with
    ``shared_prefect=False``, each starts its own temporary server."""
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["MNIST_MIRROR"] = str(mirror)
    env["PREFECT_HOME"] = str(home / "prefect")
    env.update(
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        MLFLOW_DISABLE_TELEMETRY="true",
        DVC_NO_ANALYTICS="1",
        # a fresh PREFECT_HOME migrates its database first: slow on 2 busy cores
        PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS="180",
    )
    for key in (
        "MLFLOW_TRACKING_URI",
        "PREFECT_API_URL",
        "L2PATH_EXECUTION_ID",
        "L2PATH_DEPLOYMENT_RUN_ID",
    ):
        env.pop(key, None)
    if shared_prefect:
        env["PREFECT_API_URL"] = SHARED_PREFECT.api_url()
    return env
