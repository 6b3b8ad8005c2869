"""One small `dvc repro` per test session, on the MNIST mirror; each test that needs a finished
pipeline works on a copy of it (``copy_to``) and never on the original.

Before, `test_end_to_end.py`, `test_kill_stages.py` and `test_deployment.py` each ran the
pipeline from scratch (docs/testing.md, "Where the time goes"); one run per session is the
largest cut in the suite's time.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from filelock import FileLock

from repo_copy import copy_finished, copy_repo, tool_env
from study_setup import PIPELINE_STUDY

# the small pipeline: 3000 training images for 2 epochs, and PIPELINE_STUDY's study, curvature,
# converged chains and dynamics
SMALL = {"train.model.n_train": 3000, "train.epochs": 2, **PIPELINE_STUDY}
STAGES = ("prepare", "train", "study", "hessian", "continuation", "dynamics", "report")


@dataclass(frozen=True)
class PipelineRepro:
    """A repo copy after `dvc repro` with ``SMALL`` params; ``log`` holds its output and
    errors, as a user's `dvc repro > log 2>&1` would."""

    root: Path
    log: Path

    def copy_to(self, dest: Path) -> Path:
        """A copy of the finished repo for a test to change (``repo_copy.copy_finished``)."""
        return copy_finished(self.root, dest)


def run_pipeline_repro(workdir: Path, mirror: Path) -> PipelineRepro:
    """`dvc repro` of a fresh copy of this repository in ``workdir`` with ``SMALL`` params."""
    root = copy_repo(workdir / "repo", SMALL)
    (workdir / "home").mkdir()
    log = workdir / "repro.log"
    with open(log, "w") as out:
        done = subprocess.run(
            [sys.executable, "-m", "dvc", "repro"],
            cwd=root,
            env=tool_env(mirror, workdir / "home"),
            stdout=out,
            stderr=subprocess.STDOUT,
            timeout=900,
        )
    assert done.returncode == 0, f"dvc repro failed:\n{log.read_text()[-8000:]}"
    return PipelineRepro(root, log)


def shared_pipeline_repro(workdir: Path, mirror: Path) -> PipelineRepro:
    """The repro in ``workdir``, built once for every pytest process that asks for it (the
    workers of a ``pytest -n`` run): the first builds it under a file lock, the others wait
    and take it. A build that failed is started again from an empty ``workdir``."""
    done = workdir / "done"
    with FileLock(f"{workdir}.lock"):
        if not done.exists():
            shutil.rmtree(workdir, ignore_errors=True)
            workdir.mkdir(parents=True)
            run_pipeline_repro(workdir, mirror)
            done.touch()
    return PipelineRepro(workdir / "repo", workdir / "repro.log")
