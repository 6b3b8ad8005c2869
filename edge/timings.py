"""Wall times, kept out of every DVC-tracked output.

A wall time differs on every run, so a file that holds one changes its hash and dirties
dvc.lock even when nothing else changed. Timings go to the stage's MLflow run and to
``timings/<stage>.json`` (git-ignored, not a DVC output): the stage's total seconds, its
run id, and whatever per-item times the stage's task adds (per epoch, per point, ...).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from l2path import atomic

from .project import persistent_root

TIMINGS_DIR = "timings"


def timings_path(stage: str) -> Path:
    return persistent_root() / TIMINGS_DIR / f"{stage}.json"


def write(stage: str, run_id: str, seconds: float, details: dict[str, Any]) -> Path:
    """Replace the stage's timings file: total ``seconds``, ``run_id`` and ``details``."""
    path = timings_path(stage)
    atomic.write_json(
        path, {"stage": stage, "run_id": run_id, "seconds": round(seconds, 3), **details}
    )
    return path
